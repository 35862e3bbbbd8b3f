// SPDX-License-Identifier: MPL-2.0
//! `gst-plugin-v4l2stateless` on a machine without decoders (the host): nothing
//! registers, `GST_DEBUG` says why; with `GST_V4L2STATELESS_FAKE_DEVICES` the elements
//! register against a fake device, are documented, and fail cleanly (an error message
//! naming the device, no hang, no crash) when a pipeline tries to use them.

use std::process::Output;
use std::time::Duration;

use mediapass_tests::inspect::{parse_element, parse_plugin};
use mediapass_tests::{gst_command, plugin_dir};

const FAKE: &str = "GST_V4L2STATELESS_FAKE_DEVICES";

fn run(tool: &str, args: &[&str], fake: bool) -> Output {
    let mut cmd = gst_command(tool);
    // A registry of its own: the fake registration must not leak into other tests.
    cmd.env(
        "GST_REGISTRY",
        plugin_dir().join("v4l2stateless-elements-registry.bin"),
    );
    if fake {
        cmd.env(FAKE, "1");
    } else {
        cmd.env_remove(FAKE);
    }
    cmd.env("GST_DEBUG", "v4l2statelessdec:5");
    cmd.args(args).output().expect("gstreamer tool runs")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn without_devices_nothing_registers_and_the_debug_log_says_why() {
    // The host has no /dev/media* decoder (the lab tests cover real ones).
    if std::fs::read_dir("/dev")
        .unwrap()
        .flatten()
        .any(|e| e.file_name().to_string_lossy().starts_with("media"))
    {
        eprintln!("this machine has media devices; the empty case is not checkable here");
        return;
    }
    let out = run("gst-inspect-1.0", &["v4l2stateless"], false);
    assert!(out.status.success(), "{}", text(&out));
    let plugin = parse_plugin(&String::from_utf8_lossy(&out.stdout));
    assert!(plugin.elements.is_empty(), "{:?}", plugin.elements);
    assert!(
        text(&out).contains("no V4L2 stateless decoder found"),
        "{}",
        text(&out)
    );
}

#[test]
fn fake_devices_register_documented_elements() {
    let out = run("gst-inspect-1.0", &["v4l2stateless"], true);
    assert!(out.status.success(), "{}", text(&out));
    let plugin = parse_plugin(&String::from_utf8_lossy(&out.stdout));
    let mut names = plugin.elements.clone();
    names.sort();
    assert_eq!(
        names,
        [
            "v4l2statelessfwhtdec",
            "v4l2statelessh264dec",
            "v4l2statelessmpeg2dec",
            "v4l2statelessvp8dec",
            "v4l2statelessvp9dec"
        ]
    );
    for name in names {
        let out = run("gst-inspect-1.0", &[&name], true);
        assert!(out.status.success(), "{}", text(&out));
        let details = parse_element(&String::from_utf8_lossy(&out.stdout));
        assert_eq!(
            details.factory_field("Doc-uri"),
            Some("gst-plugin-v4l2stateless/README.md")
        );
        assert_eq!(details.factory_field("Rank"), Some("none (0)"));
        let stdout = String::from_utf8_lossy(&out.stdout);
        for needle in [
            "/dev/media-fake",
            "/dev/video-fake",
            "render-delay",
            "GstV4l2StatelessDec",
        ] {
            assert!(stdout.contains(needle), "{name}: no {needle} in\n{stdout}");
        }
    }
}

#[test]
fn a_missing_device_is_a_clear_error_not_a_hang() {
    let out = run(
        "timeout",
        &[
            &Duration::from_secs(120).as_secs().to_string(),
            "gst-launch-1.0",
            "--no-fault",
            "videotestsrc",
            "num-buffers=3",
            "!",
            "vp8enc",
            "!",
            "v4l2statelessvp8dec",
            "!",
            "fakesink",
        ],
        true,
    );
    let all = text(&out);
    assert!(!out.status.success(), "gst-launch should fail:\n{all}");
    assert_ne!(out.status.code(), Some(124), "timed out:\n{all}");
    assert!(
        all.contains("ERROR: from element") && all.contains("cannot open /dev/video-fake"),
        "{all}"
    );
}
