// SPDX-License-Identifier: MPL-2.0
//! The decoder scan of `gst-plugin-v4l2stateless` against the kernel's real test drivers
//! in the VM lab: visl and vicodec's stateless decoder are found through the media
//! controller topology alone (no udev), vim2m (not a decoder) is passed over with a reason.

use mediapass_tests::plugin_dir;
use mediapass_tests::vmlab::{Lab, LabCommand};

#[test]
fn scan_finds_visl_and_vicodec_through_the_media_topology() {
    let probe = plugin_dir().join("examples/v4l2stateless-probe");
    assert!(
        probe.is_file(),
        "{} is not built: run `cargo build --workspace --all-targets` (./x test does)",
        probe.display()
    );
    let lab = Lab::new().unwrap_or_else(|e| panic!("{e}"));
    let out = lab
        .run(&LabCommand::new(&probe))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(out.success(), "{}", out.describe());
    let lines: Vec<&str> = out.stdout.lines().collect();
    let decoder = |driver: &str, codec: &str| {
        lines
            .iter()
            .find(|l| {
                l.starts_with("decoder ")
                    && l.contains(&format!("driver={driver} "))
                    && l.contains(&format!(" codec={codec} "))
            })
            .copied()
    };
    for codec in ["mpeg2", "vp8", "vp9", "h264"] {
        let line = decoder("visl", codec)
            .unwrap_or_else(|| panic!("visl {codec} not found\n{}", out.describe()));
        assert!(line.contains("mplane=true"), "{line}");
        assert!(
            line.ends_with(&format!("element=v4l2stateless{codec}dec")),
            "{line}"
        );
    }
    // vicodec comes first (media0), so the plain FWHT name is its; visl's FWHT carries its node.
    let fwht = decoder("vicodec", "fwht").unwrap_or_else(|| panic!("{}", out.describe()));
    assert!(fwht.ends_with("element=v4l2statelessfwhtdec"), "{fwht}");
    assert!(fwht.contains("mplane=false"), "{fwht}");
    let visl_fwht = decoder("visl", "fwht").unwrap_or_else(|| panic!("{}", out.describe()));
    assert!(
        visl_fwht.contains("element=v4l2statelessvideo") && visl_fwht.ends_with("fwhtdec"),
        "{visl_fwht}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("skipped ") && l.contains("vim2m: no video decoder entity")),
        "vim2m should be passed over with a reason\n{}",
        out.describe()
    );
}
