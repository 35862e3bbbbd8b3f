// SPDX-License-Identifier: MPL-2.0
//! What the differential tests on visl share (GStreamer's C decoder and ours on the same
//! stream, in one lab boot): generated streams cached per build, the guest script line
//! that runs one decoder under visl's trace with visl's bitstream dumps kept, loading what
//! that run left, counting the requests with no difference, and comparing the bitstream
//! bytes of every request.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::LazyLock;

use crate::visl_trace::{self, VislTrace};
use crate::vmlab::{LabCommand, lab_dir};
use crate::{plugin_dir, workspace_root};

/// visl dumps every OUTPUT buffer it decodes to debugfs (kernel command line: the module
/// is built in and these parameters are read-only at run time).
const BITSTREAM_DUMP_ARGS: &[&str] = &[
    "visl.bitstream_trace_frame_start=0",
    "visl.bitstream_trace_nframes=1000000",
];

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

/// The lab command running a differential test's guest `script`, which writes its
/// results to `results`: one boot, with visl's bitstream dumps on.
pub fn differential_command(script: &str, results: &Path) -> LabCommand {
    BITSTREAM_DUMP_ARGS
        .iter()
        .fold(LabCommand::shell(script).rw_dir(results), |cmd, arg| {
            cmd.kernel_arg(*arg)
        })
}

/// One line of a guest shell script: runs `command` with visl's trace events recorded and
/// visl's bitstream dumps copied out before the decoder stops streaming (which deletes
/// them), leaving `<base>.trace`, `.checksums` (its stdout), `.stderr`, `.status` and the
/// `.bitstream/` directory on a share.
pub fn traced_run_line(base: &Path, command: &str) -> String {
    format!(
        "rm -rf {base}.bitstream; mkdir {base}.bitstream; \
         timeout 300 {trace} {base}.trace \
         env MEDIAPASS_VISL_BITSTREAM_OUT={base}.bitstream LD_PRELOAD={keeper} {command} \
         >{base}.checksums 2>{base}.stderr; echo $? >{base}.status\n",
        trace = lab_dir().join("visl-trace.sh").display(),
        keeper = BITSTREAM_KEEPER.display(),
        base = base.display(),
    )
}

/// `tests/vmlab/visl-bitstream-keeper.c` built as an `LD_PRELOAD` library (once per test
/// process, next to the plugins, which the guest sees read-only).
static BITSTREAM_KEEPER: LazyLock<PathBuf> = LazyLock::new(|| {
    let source = lab_dir().join("visl-bitstream-keeper.c");
    let library = plugin_dir().join("visl-bitstream-keeper.so");
    let tmp = plugin_dir().join(format!("visl-bitstream-keeper.{}.so", std::process::id()));
    let out = Command::new("cc")
        .args(["-O2", "-Wall", "-Werror", "-shared", "-fPIC", "-o"])
        .arg(&tmp)
        .arg(&source)
        .arg("-ldl")
        .output()
        .expect("cc runs (gcc: tools/setup.sh installs it for the lab kernel)");
    assert!(
        out.status.success(),
        "building {}: {}",
        source.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::rename(&tmp, &library).unwrap();
    library
});

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

/// The bitstream bytes of every decode job of the run filed as `<results>/<stem>.<side>`,
/// in decoding order, as visl dumped them (see `tests/vmlab/visl-bitstream-keeper.c`).
pub fn load_bitstreams(results: &Path, stem: &str, side: &str) -> Result<Vec<Vec<u8>>, String> {
    let dir = results.join(format!("{stem}.{side}.bitstream"));
    let error = dir.join("error");
    if error.exists() {
        return Err(read(&error));
    }
    let mut blobs = Vec::new();
    for entry in std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        let path = entry.map_err(|e| e.to_string())?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let key = name
            .strip_suffix(".bin")
            .and_then(|n| n.split_once('-'))
            .and_then(|(e, s)| Some((e.parse::<u32>().ok()?, s.parse::<u32>().ok()?)))
            .ok_or_else(|| format!("unexpected file {}", path.display()))?;
        blobs.push((key, path));
    }
    blobs.sort();
    // visl numbers the buffers of one streaming session from 0: a gap is a lost dump.
    for (n, ((epoch, sequence), _)) in blobs.iter().enumerate() {
        let first = blobs.iter().position(|((e, _), _)| e == epoch).unwrap_or(n);
        if *sequence as usize != n - first {
            return Err(format!(
                "{}: dump {epoch}-{sequence} where {epoch}-{} was expected",
                dir.display(),
                n - first
            ));
        }
    }
    blobs
        .into_iter()
        .map(|(_, path)| std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display())))
        .collect()
}

/// How the bitstreams of the C decoder's and our run of one stream compare.
#[derive(Debug, Default)]
pub struct BitstreamComparison {
    /// Requests whose OUTPUT buffer held the same bytes in both runs.
    pub identical: usize,
    /// Why the bitstreams are not identical for every request (empty when they are).
    pub failures: Vec<String>,
}

/// Compares the bitstream bytes of request k between the C decoder's run and ours, for
/// every k; each run must have left one dump per traced request.
pub fn compare_bitstreams(
    results: &Path,
    stem: &str,
    c: &VislTrace,
    ours: &VislTrace,
) -> BitstreamComparison {
    let mut out = BitstreamComparison::default();
    let (c_blobs, our_blobs) = match (
        load_bitstreams(results, stem, "c"),
        load_bitstreams(results, stem, "ours"),
    ) {
        (Ok(c), Ok(ours)) => (c, ours),
        (c, ours) => {
            for (side, e) in [("C", c.err()), ("ours", ours.err())] {
                if let Some(e) = e {
                    out.failures
                        .push(format!("{stem}: no bitstream dumps of the {side} run: {e}"));
                }
            }
            return out;
        }
    };
    for (side, blobs, trace) in [("C", &c_blobs, c), ("ours", &our_blobs, ours)] {
        if blobs.len() != trace.frames.len() {
            out.failures.push(format!(
                "{stem}: the {side} run made {} requests but visl dumped {} bitstreams",
                trace.frames.len(),
                blobs.len()
            ));
        }
    }
    let mut differing = Vec::new();
    for k in 0..c_blobs.len().max(our_blobs.len()) {
        match (c_blobs.get(k), our_blobs.get(k)) {
            (Some(c), Some(ours)) if c == ours => out.identical += 1,
            (Some(c), Some(ours)) => {
                let at = c.iter().zip(ours).position(|(a, b)| a != b);
                let at = at.unwrap_or(c.len().min(ours.len()));
                differing.push(format!(
                    "request {k}: C queued {} bytes, ours {}, first difference at byte {at}",
                    c.len(),
                    ours.len()
                ));
            }
            (c, _) => differing.push(format!(
                "request {k}: only the {} run made it",
                if c.is_some() { "C" } else { "our" }
            )),
        }
    }
    if !differing.is_empty() {
        out.failures.push(format!(
            "{stem}: {} requests with different bitstream bytes, first ones:\n  {}",
            differing.len(),
            differing[..differing.len().min(10)].join("\n  ")
        ));
    }
    out
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::visl_trace::Frame;

    /// (file name, contents) of the files in one run's `.bitstream/` directory.
    type Dumps<'a> = &'a [(&'a str, &'a [u8])];

    /// A fresh results directory holding `s.<side>.bitstream/` with these dumps.
    fn results_with(test: &str, dumps: &[(&str, Dumps)]) -> PathBuf {
        let results = std::env::temp_dir().join(format!(
            "mediapass-visl-differential-{test}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&results);
        for (side, files) in dumps {
            let dir = results.join(format!("s.{side}.bitstream"));
            std::fs::create_dir_all(&dir).unwrap();
            for (name, bytes) in *files {
                std::fs::write(dir.join(name), bytes).unwrap();
            }
        }
        results
    }

    fn trace(requests: usize) -> VislTrace {
        VislTrace {
            frames: vec![Frame::default(); requests],
            lost_events: false,
        }
    }

    #[test]
    fn dumps_load_in_decoding_order_across_output_restarts() {
        // Names sort "0-10" before "0-2" as text: the order must be numeric.
        let names: Vec<String> = (0..11).rev().map(|s| format!("0-{s}.bin")).collect();
        let mut files: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b"x"[..])).collect();
        files[10].1 = b"a";
        files[8].1 = b"c";
        files[0].1 = b"k";
        files.push(("1-0.bin", b"l"));
        let results = results_with("order", &[("c", &files)]);
        let blobs = load_bitstreams(&results, "s", "c").unwrap();
        assert_eq!(blobs.len(), 12);
        assert_eq!((&blobs[0][..], &blobs[2][..]), (&b"a"[..], &b"c"[..]));
        assert_eq!((&blobs[10][..], &blobs[11][..]), (&b"k"[..], &b"l"[..]));
        std::fs::remove_dir_all(results).unwrap();
    }

    #[test]
    fn a_missing_dump_or_a_copy_error_is_an_error() {
        let gap: &[(&str, &[u8])] = &[("0-0.bin", b"a"), ("0-2.bin", b"c")];
        let error: &[(&str, &[u8])] = &[("0-0.bin", b"a"), ("error", b"copy failed")];
        let results = results_with("errors", &[("c", gap), ("ours", error)]);
        let gap = load_bitstreams(&results, "s", "c").unwrap_err();
        assert!(gap.contains("0-2 where 0-1 was expected"), "{gap}");
        let error = load_bitstreams(&results, "s", "ours").unwrap_err();
        assert!(error.contains("copy failed"), "{error}");
        std::fs::remove_dir_all(results).unwrap();
    }

    #[test]
    fn one_flipped_byte_fails_that_request_only() {
        let c: &[(&str, &[u8])] = &[("0-0.bin", b"abc"), ("0-1.bin", b"def")];
        let ours: &[(&str, &[u8])] = &[("0-0.bin", b"abc"), ("0-1.bin", b"dEf")];
        let results = results_with("flip", &[("c", c), ("ours", ours)]);
        let out = compare_bitstreams(&results, "s", &trace(2), &trace(2));
        assert_eq!(out.identical, 1);
        assert_eq!(out.failures.len(), 1, "{:?}", out.failures);
        assert!(
            out.failures[0]
                .contains("request 1: C queued 3 bytes, ours 3, first difference at byte 1"),
            "{}",
            out.failures[0]
        );
        std::fs::remove_dir_all(results).unwrap();
    }

    #[test]
    fn fewer_dumps_than_traced_requests_fail() {
        let dumps: &[(&str, &[u8])] = &[("0-0.bin", b"abc")];
        let results = results_with("count", &[("c", dumps), ("ours", dumps)]);
        let out = compare_bitstreams(&results, "s", &trace(2), &trace(1));
        assert_eq!(out.identical, 1);
        assert_eq!(out.failures.len(), 1, "{:?}", out.failures);
        assert!(out.failures[0].contains("the C run made 2 requests but visl dumped 1"));
        std::fs::remove_dir_all(results).unwrap();
    }
}
