// SPDX-License-Identifier: MPL-2.0
//! Fluster from Rust: generate mediapass's own test suites (`tools/fluster/mediapass-make-suite`)
//! and run Fluster through our wrapper (`tools/fluster/mediapass-fluster`), reading its
//! per-vector results from its output.
//!
//! Fluster itself lives in the venv `./x setup` makes (`tools/setup.d/60-fluster.sh`).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::workspace_root;

/// One generated stream, as `vectors.tsv` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vector {
    /// Fluster test suite name, e.g. `MEDIAPASS-VP9`.
    pub suite: String,
    /// Vector name, e.g. `vp9-altref`.
    pub name: String,
    /// `vp8`, `vp9`, `h264` or `mpeg2`.
    pub codec: String,
    pub path: PathBuf,
    pub width: u32,
    pub height: u32,
    /// Frames the software decoder output.
    pub frames: u32,
    /// MD5 of all decoded frames (I420, unpadded), Fluster's expected result.
    pub md5: String,
}

impl Vector {
    /// Bytes of one I420 frame.
    pub fn frame_size(&self) -> u64 {
        u64::from(self.width) * u64::from(self.height) * 3 / 2
    }
}

/// A directory made by `mediapass-make-suite`.
#[derive(Debug, Clone)]
pub struct Suite {
    pub dir: PathBuf,
    pub vectors: Vec<Vector>,
}

impl Suite {
    /// Generates the suites of `codecs` (`["vp8", "vp9"]`, ...) into a fresh `dir`.
    pub fn generate(dir: &Path, codecs: &[&str]) -> Result<Self, String> {
        if dir.exists() {
            std::fs::remove_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        let script = tools_dir().join("mediapass-make-suite");
        let out = Command::new(&script)
            .arg(dir)
            .arg("--codecs")
            .arg(codecs.join(","))
            .output()
            .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
        if !out.status.success() {
            return Err(format!(
                "{} failed ({}):\n{}",
                script.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Self::open(dir)
    }

    /// Reads an existing suite directory's `vectors.tsv`.
    pub fn open(dir: &Path) -> Result<Self, String> {
        let index = dir.join("vectors.tsv");
        let text =
            std::fs::read_to_string(&index).map_err(|e| format!("{}: {e}", index.display()))?;
        let vectors = text
            .lines()
            .map(parse_vector_line)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("{}: {e}", index.display()))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            vectors,
        })
    }

    pub fn test_suites_dir(&self) -> PathBuf {
        self.dir.join("test_suites")
    }

    pub fn resources_dir(&self) -> PathBuf {
        self.dir.join("resources")
    }

    /// Arguments that point Fluster at this suite, to put before its subcommand.
    pub fn fluster_args(&self) -> Vec<String> {
        vec![
            "-ne".into(),
            "-tsd".into(),
            self.test_suites_dir().display().to_string(),
            "-r".into(),
            self.resources_dir().display().to_string(),
        ]
    }
}

fn parse_vector_line(line: &str) -> Result<Vector, String> {
    let fields: Vec<&str> = line.split('\t').collect();
    let [suite, name, codec, path, width, height, frames, md5] = fields[..] else {
        return Err(format!("expected 8 tab-separated fields: {line:?}"));
    };
    let number = |s: &str| {
        s.parse::<u32>()
            .map_err(|e| format!("{s:?} in {line:?}: {e}"))
    };
    Ok(Vector {
        suite: suite.into(),
        name: name.into(),
        codec: codec.into(),
        path: path.into(),
        width: number(width)?,
        height: number(height)?,
        frames: number(frames)?,
        md5: md5.into(),
    })
}

/// `tools/fluster/` in the workspace.
pub fn tools_dir() -> PathBuf {
    workspace_root().join("tools").join("fluster")
}

/// The wrapper: Fluster with our decoders registered.
pub fn fluster_command() -> Command {
    Command::new(tools_dir().join("mediapass-fluster"))
}

/// One line of Fluster's run output: `[SUITE] (DECODER) VECTOR ... RESULT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VectorResult {
    pub suite: String,
    pub decoder: String,
    pub vector: String,
    /// `Success`, `Fail`, `Error`, `Timeout`, `Not Run`, ... (Fluster's text results, `-ne`).
    pub result: String,
}

/// Every per-vector result line in Fluster's output (run with `-ne`, plain text results).
pub fn parse_results(stdout: &str) -> Vec<VectorResult> {
    stdout.lines().filter_map(parse_result_line).collect()
}

fn parse_result_line(line: &str) -> Option<VectorResult> {
    let rest = line.trim().strip_prefix('[')?;
    let (suite, rest) = rest.split_once(']')?;
    let rest = rest.trim_start().strip_prefix('(')?;
    let (decoder, rest) = rest.split_once(')')?;
    let (vector, result) = rest.split_once("...")?;
    let (suite, decoder, vector, result) =
        (suite.trim(), decoder.trim(), vector.trim(), result.trim());
    // The table header has the same shape.
    if suite == "TEST SUITE" || vector.is_empty() || result.is_empty() {
        return None;
    }
    Some(VectorResult {
        suite: suite.into(),
        decoder: decoder.into(),
        vector: vector.into(),
        result: result.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_lines_are_parsed_and_headers_skipped() {
        let out = "\
[TEST SUITE   ] (DECODER             ) TEST VECTOR         ... RESULT
----------------------------------------------------------------------
[MEDIAPASS-VP8] (GStreamer-VP8-libvpx) vp8-rt              ... Success
[MEDIAPASS-VP9] (GStreamer-VP9-V4L2STATELESS) vp9-altref ... Fail
Ran 4/4 tests successfully, in 1.213 secs
";
        let results = parse_results(out);
        assert_eq!(
            results,
            vec![
                VectorResult {
                    suite: "MEDIAPASS-VP8".into(),
                    decoder: "GStreamer-VP8-libvpx".into(),
                    vector: "vp8-rt".into(),
                    result: "Success".into(),
                },
                VectorResult {
                    suite: "MEDIAPASS-VP9".into(),
                    decoder: "GStreamer-VP9-V4L2STATELESS".into(),
                    vector: "vp9-altref".into(),
                    result: "Fail".into(),
                },
            ]
        );
    }

    #[test]
    fn vector_lines_need_eight_fields_and_numbers() {
        let v = parse_vector_line("S\tv\tvp9\t/x.ivf\t176\t144\t30\tabc").unwrap();
        assert_eq!((v.width, v.height, v.frames), (176, 144, 30));
        assert_eq!(v.frame_size(), 176 * 144 * 3 / 2);
        assert!(parse_vector_line("S\tv\tvp9\t/x.ivf\t176\t144\t30").is_err());
        assert!(parse_vector_line("S\tv\tvp9\t/x.ivf\twide\t144\t30\tabc").is_err());
    }
}
