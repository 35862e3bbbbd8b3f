// SPDX-License-Identifier: MPL-2.0
//! Test helpers: run the encoders Debian ships to make streams, and read back
//! `ffmpeg -bsf:v trace_headers` (libavcodec's CBS, an independent parser) as an oracle.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Absolute path of a required tool; panics with the package to install.
pub fn require_tool(name: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!("`{name}` is required by this test: install the Debian package `{package}` (./x setup does)")
        })
}

/// A fresh directory for one test's streams under cargo's per-target tmp dir.
pub fn work_dir(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("codecparsers-h26x")
        .join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create test work dir");
    dir
}

/// Runs a command, panicking with its stderr if it fails.
pub fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut all = out.stdout;
    all.extend_from_slice(&out.stderr);
    all
}

/// A y4m test source (moving test pattern with a fade, so encoders use weights).
pub fn y4m_source(dir: &Path, frames: u32, size: &str, pix_fmt: &str) -> PathBuf {
    let ffmpeg = require_tool("ffmpeg", "ffmpeg");
    let path = dir.join(format!("src-{size}-{pix_fmt}-{frames}.y4m"));
    run(Command::new(ffmpeg)
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
        ])
        .arg(format!("testsrc2=size={size}:rate=25,fade=in:0:8"))
        .args(["-frames:v", &frames.to_string(), "-pix_fmt", pix_fmt])
        .args(["-strict", "-1", "-f", "yuv4mpegpipe"])
        .arg(&path));
    path
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceField {
    /// Bit position inside the unit (RBSP, NAL header included for H.264).
    pub pos: usize,
    pub name: String,
    pub bits: usize,
    pub value: i64,
}

#[derive(Debug, Clone, Default)]
pub struct TraceUnit {
    pub title: String,
    pub fields: Vec<TraceField>,
}

impl TraceUnit {
    /// Values of every field with this exact name, in order.
    pub fn values(&self, name: &str) -> Vec<i64> {
        self.fields
            .iter()
            .filter(|f| f.name == name)
            .map(|f| f.value)
            .collect()
    }

    pub fn first(&self, name: &str) -> Option<&TraceField> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// Bits spanned by the first contiguous run of fields whose base name is in `names`
    /// (from the first such field to the field that follows the run).
    pub fn span_bits(&self, names: &[&str]) -> usize {
        let is_in = |f: &TraceField| names.contains(&base_name(&f.name));
        let Some(first) = self.fields.iter().position(is_in) else {
            return 0;
        };
        let last = first + self.fields[first..].iter().take_while(|f| is_in(f)).count() - 1;
        let end = self
            .fields
            .get(last + 1)
            .map(|f| f.pos)
            .unwrap_or(self.fields[last].pos + self.fields[last].bits);
        end - self.fields[first].pos
    }

    /// Groups values by full name (subscripts included).
    pub fn by_name(&self) -> HashMap<String, Vec<i64>> {
        let mut map: HashMap<String, Vec<i64>> = HashMap::new();
        for f in &self.fields {
            map.entry(f.name.clone()).or_default().push(f.value);
        }
        map
    }
}

pub fn base_name(name: &str) -> &str {
    name.split('[').next().unwrap_or(name)
}

/// Runs `ffmpeg -bsf:v trace_headers` on a file and returns the traced units of the
/// packets (the extradata block, which repeats parameter sets, is skipped).
pub fn trace_headers(input: &Path) -> Vec<TraceUnit> {
    let ffmpeg = require_tool("ffmpeg", "ffmpeg");
    let out = run(Command::new(ffmpeg)
        .args(["-hide_banner", "-nostats", "-i"])
        .arg(input)
        .args(["-c:v", "copy", "-bsf:v", "trace_headers", "-f", "null", "-"]));
    let text = String::from_utf8_lossy(&out);
    let mut units = Vec::new();
    let mut in_packets = false;
    let mut current: Option<TraceUnit> = None;
    for line in text.lines() {
        let Some(idx) = line.find("[trace_headers @ ") else {
            continue;
        };
        let rest = &line[idx..];
        let Some(body) = rest.split_once("] ").map(|(_, b)| b) else {
            continue;
        };
        if body.starts_with("Packet:") {
            in_packets = true;
            continue;
        }
        if !in_packets {
            continue;
        }
        let tokens: Vec<&str> = body.split_whitespace().collect();
        let is_field = tokens.first().is_some_and(|t| t.parse::<usize>().is_ok());
        if !is_field {
            if let Some(unit) = current.take() {
                units.push(unit);
            }
            current = Some(TraceUnit {
                title: body.trim().to_string(),
                fields: Vec::new(),
            });
            continue;
        }
        // "<pos> <name> <bits> = <value>"
        if let [pos, name, bits, "=", value] = tokens[..]
            && let (Ok(pos), Ok(value)) = (pos.parse(), value.parse())
            && let Some(unit) = current.as_mut()
        {
            unit.fields.push(TraceField {
                pos,
                name: name.to_string(),
                bits: bits.len(),
                value,
            });
        }
    }
    units.extend(current);
    // Sub-headers (e.g. an SEI payload) are printed as their own titled blocks: fold
    // field-less titles into the next unit so units match NAL units.
    let mut merged: Vec<TraceUnit> = Vec::new();
    for unit in units {
        match merged.last_mut() {
            Some(prev) if !unit.title.is_empty() && is_sub_header(&unit.title) => {
                prev.fields.extend(unit.fields)
            }
            _ => merged.push(unit),
        }
    }
    merged
}

fn is_sub_header(title: &str) -> bool {
    // Titles of SEI payloads and of MPEG-2 extension bodies belong to the enclosing
    // start-code unit; only these titles start a unit.
    !matches!(
        title,
        "Sequence Parameter Set"
            | "Picture Parameter Set"
            | "Slice Header"
            | "Supplemental Enhancement Information"
            | "Access Unit Delimiter"
            | "End of Sequence"
            | "End of Stream"
            | "Filler Data"
            | "Sequence Header"
            | "Extension Data"
            | "Group of Pictures Header"
            | "Picture Header"
            | "User Data"
            | "Sequence End"
    )
}
