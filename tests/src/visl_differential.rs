// SPDX-License-Identifier: MPL-2.0
//! What the differential tests on visl share (GStreamer's C decoder and ours on the same
//! stream, in one lab boot): generated streams cached per build, the guest script line
//! that runs one decoder under visl's trace, loading what that run left, and counting the
//! requests with no difference.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::visl_trace::{self, VislTrace};
use crate::vmlab::lab_dir;
use crate::{plugin_dir, workspace_root};

/// The stream `name` made by the codec parsers' generator script `script` (a file in
/// `codecparsers/tests/gen/`), cached in the build directory as `<name>.<extension>`.
pub fn generated_stream(script: &str, name: &str, extension: &str) -> PathBuf {
    let dir = plugin_dir().join("v4l2stateless-streams");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.{extension}"));
    if !path.exists() {
        let tmp = dir.join(format!("{name}.{}.tmp", std::process::id()));
        let script = workspace_root()
            .join("gst-plugin-v4l2stateless/codecparsers/tests/gen")
            .join(script);
        let out = Command::new("bash")
            .arg(&script)
            .arg(name)
            .arg(&tmp)
            .output()
            .expect("bash runs");
        assert!(
            out.status.success(),
            "generating {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::rename(&tmp, &path).unwrap();
    }
    path
}

/// One line of a guest shell script: runs `command` with visl's trace events recorded,
/// leaving `<base>.trace`, `.checksums` (its stdout), `.stderr` and `.status` on a share.
pub fn traced_run_line(base: &Path, command: &str) -> String {
    format!(
        "timeout 300 {trace} {base}.trace {command} >{base}.checksums 2>{base}.stderr; \
         echo $? >{base}.status\n",
        trace = lab_dir().join("visl-trace.sh").display(),
        base = base.display(),
    )
}

/// What the run filed as `<results>/<stem>.<side>.*` left: its trace and the number of
/// frames it output. Fails the test when the run failed or ftrace lost events.
pub fn load_run(results: &Path, stem: &str, side: &str) -> (VislTrace, usize) {
    let file = |ext: &str| results.join(format!("{stem}.{side}.{ext}"));
    let status = read(&file("status"));
    assert_eq!(
        status.trim(),
        "0",
        "{stem} with the {side} decoder failed:\n{}",
        read(&file("stderr"))
    );
    let trace =
        visl_trace::parse(&read(&file("trace"))).unwrap_or_else(|e| panic!("{stem} {side}: {e}"));
    assert!(!trace.lost_events, "{stem} {side}: ftrace lost events");
    let shown = read(&file("checksums")).lines().count();
    (trace, shown)
}

/// Requests (over the longer trace) for which `differs` finds no difference.
pub fn identical_requests(
    c: &VislTrace,
    ours: &VislTrace,
    differs: impl Fn(usize) -> bool,
) -> usize {
    (0..c.frames.len().max(ours.frames.len()))
        .filter(|&n| !differs(n))
        .count()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
