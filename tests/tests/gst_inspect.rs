// SPDX-License-Identifier: MPL-2.0
//! Every built plugin loads in a real `gst-inspect-1.0`, and everything it registers is
//! documented well enough for a user's `gst-inspect-1.0 <element>` to be useful.

use mediapass_tests::inspect::{parse_element, parse_plugin};
use mediapass_tests::{PLUGINS, built_plugin, gst_command};

fn inspect(arg: &str) -> String {
    let out = gst_command("gst-inspect-1.0")
        .arg(arg)
        .output()
        .expect("gst-inspect-1.0 runs (install gstreamer1.0-tools: ./x setup)");
    assert!(
        out.status.success(),
        "gst-inspect-1.0 {arg} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn every_plugin_loads_and_every_element_is_documented() {
    let mut problems = Vec::new();
    for (name, file) in PLUGINS {
        let path = built_plugin(file);
        let plugin = parse_plugin(&inspect(name));
        assert_eq!(&plugin.name, name, "plugin name");
        assert_eq!(
            std::path::Path::new(&plugin.filename),
            path,
            "{name} was loaded from somewhere else than this build"
        );
        assert_eq!(plugin.license, "MPL", "{name} license");
        assert!(!plugin.description.is_empty(), "{name} has no description");
        for element in &plugin.elements {
            let details = parse_element(&inspect(element));
            // gst-inspect 1.22 prints the "doc-uri" metadata as "Doc-uri".
            for key in ["Long-name", "Klass", "Description", "Author", "Doc-uri"] {
                match details.factory_field(key) {
                    Some(v) if !v.is_empty() => {}
                    _ => problems.push(format!("{element}: factory detail {key} missing")),
                }
            }
            for (prop, blurb) in &details.properties {
                // GstObject's own "name" and "parent" come documented from GStreamer.
                if blurb.is_empty() || blurb == prop {
                    problems.push(format!("{element}: property {prop} has no blurb"));
                }
            }
        }
    }
    assert!(problems.is_empty(), "undocumented: {problems:#?}");
}
