// SPDX-License-Identifier: MPL-2.0
//! Test helpers: streams generated on demand with vpxenc (cached under the cargo target
//! dir), ffmpeg's `trace_headers` oracle, and cros-codecs' test vectors.
#![allow(dead_code)]

use mediapass_codecparsers::ivf::IvfReader;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Returns the bytes of a generated stream (see `tests/gen/vpx-streams.sh`), creating
/// it on first use. Panics with the generator's message if a tool is missing.
pub fn stream(name: &str) -> Vec<u8> {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("vpx-streams");
    std::fs::create_dir_all(&dir).expect("create stream cache dir");
    let path = dir.join(format!("{name}.ivf"));
    if !path.exists() {
        let tmp = dir.join(format!(
            "{name}.{}.{:?}.tmp",
            std::process::id(),
            std::thread::current().id()
        ));
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/gen/vpx-streams.sh");
        let output = Command::new("bash")
            .arg(&script)
            .arg(name)
            .arg(&tmp)
            .output()
            .expect("run bash");
        assert!(
            output.status.success(),
            "generating {name} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        std::fs::rename(&tmp, &path).expect("move generated stream into the cache");
    }
    std::fs::read(&path).expect("read generated stream")
}

pub fn stream_path(name: &str) -> PathBuf {
    stream(name);
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("vpx-streams")
        .join(format!("{name}.ivf"))
}

/// The frames (IVF payloads) of a stream.
pub fn ivf_frames(data: &[u8]) -> Vec<Vec<u8>> {
    IvfReader::new(data)
        .expect("IVF header")
        .map(|f| f.expect("IVF frame").data.to_vec())
        .collect()
}

/// One syntax element as ffmpeg's `trace_headers` prints it.
#[derive(Debug, Clone)]
pub struct TraceElement {
    pub bit_pos: usize,
    pub bit_len: usize,
    pub name: String,
    pub value: i64,
}

/// Runs `ffmpeg -bsf:v trace_headers` on a file and returns, per coded frame (not per
/// packet: superframes are split), the elements of its uncompressed header.
pub fn ffmpeg_trace(path: &Path) -> Vec<Vec<TraceElement>> {
    let output = Command::new("ffmpeg")
        .args(["-nostdin", "-hide_banner", "-i"])
        .arg(path)
        .args(["-c:v", "copy", "-bsf:v", "trace_headers", "-f", "null", "-"])
        .output()
        .expect("ffmpeg is missing: run ./x setup (apt-get install ffmpeg)");
    assert!(
        output.status.success(),
        "ffmpeg failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let log = String::from_utf8_lossy(&output.stderr);
    let mut frames: Vec<Vec<TraceElement>> = Vec::new();
    let mut in_frame = false;
    for line in log.lines() {
        let Some(start) = line.find("[trace_headers @") else {
            continue;
        };
        let Some(close) = line[start..].find("] ") else {
            continue;
        };
        let body = line[start + close + 2..].trim();
        if body == "Frame" {
            frames.push(Vec::new());
            in_frame = true;
            continue;
        }
        if body.starts_with("Packet:") || body.starts_with("Superframe") {
            in_frame = false;
            continue;
        }
        if !in_frame {
            continue;
        }
        let Some((left, value)) = body.rsplit_once(" = ") else {
            continue;
        };
        let mut tokens = left.split_whitespace();
        let (Some(pos), Some(name)) = (tokens.next(), tokens.next()) else {
            continue;
        };
        let bits = tokens.next().unwrap_or("");
        let (Ok(bit_pos), Ok(value)) = (pos.parse(), value.trim().parse()) else {
            continue;
        };
        frames.last_mut().unwrap().push(TraceElement {
            bit_pos,
            bit_len: bits.len(),
            name: name.to_string(),
            value,
        });
    }
    frames
}

/// Splits `name[1][2].field` into `("name.field", [1, 2])`.
pub fn split_indices(name: &str) -> (String, Vec<usize>) {
    let mut base = String::new();
    let mut indices = Vec::new();
    let mut rest = name;
    while let Some(open) = rest.find('[') {
        base.push_str(&rest[..open]);
        let close = rest[open..].find(']').map_or(rest.len(), |c| open + c);
        if let Ok(i) = rest[open + 1..close].parse() {
            indices.push(i);
        }
        rest = rest.get(close + 1..).unwrap_or("");
    }
    base.push_str(rest);
    (base, indices)
}

/// Path of a test vector shipped in the cros-codecs crate (a dev-dependency, so cargo
/// has unpacked it in its registry).
pub fn cros_codecs_file(relative: &str) -> PathBuf {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .expect("CARGO_HOME or HOME");
    let registry = cargo_home.join("registry/src");
    let entries = std::fs::read_dir(&registry).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (cros-codecs dev-dependency not unpacked?)",
            registry.display()
        )
    });
    entries
        .flatten()
        .map(|index| index.path().join("cros-codecs-0.0.6").join(relative))
        .find(|p| p.exists())
        .unwrap_or_else(|| {
            panic!(
                "{relative} not found in any cros-codecs-0.0.6 under {}",
                registry.display()
            )
        })
}
