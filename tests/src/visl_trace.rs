// SPDX-License-Identifier: MPL-2.0
//! visl's trace, as data: which V4L2 stateless control structs a decoder submitted,
//! frame by frame, field by field.
//!
//! visl (the kernel's virtual stateless decoder) emits one trace event per control
//! struct per decode job, e.g. `v4l2_ctrl_vp9_frame`, `v4l2_ctrl_h264_sps`, printing every
//! field. [`capture_argv`] wraps a guest command so the events are recorded to a file;
//! [`parse`] turns that text into [`Frame`]s of [`Control`]s; [`compare`] lists the fields
//! where two runs (e.g. our decoder and GStreamer's `v4l2sl*dec`) disagree.
//!
//! The text is ftrace's: a header line per event
//! (`TASK-PID [CPU] FLAGS TIMESTAMP: EVENT: ...`) followed by the event's own lines,
//! `name value` pairs, one per line (or several per line for the short events).
//! Values are single words (`8`, `0x1f`, `KEY_FRAME|SHOW_FRAME`, `{0x1,0x0,0xff}`) or
//! brace groups holding a hex dump spread over several lines (`{00 01 ...}`).

use std::ffi::OsString;
use std::fmt;
use std::path::Path;

/// The first event visl emits for each decode job, per codec (see `visl_trace_ctrls` in
/// drivers/media/test-drivers/visl/visl-dec.c): each one opens a new [`Frame`].
pub const FRAME_START_EVENTS: &[&str] = &[
    "v4l2_ctrl_fwht_params",
    "v4l2_ctrl_mpeg2_sequence",
    "v4l2_ctrl_vp8_frame",
    "v4l2_ctrl_vp9_frame",
    "v4l2_ctrl_h264_sps",
    "v4l2_ctrl_hevc_sps",
    "v4l2_ctrl_av1_sequence",
];

/// One control struct as visl printed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Control {
    /// Trace event name, e.g. `v4l2_ctrl_vp9_frame` or `v4l2_h264_dpb_entry`.
    pub event: String,
    /// Array element index, for per-entry events printed as `[i]: ...` (DPB, ref lists).
    pub index: Option<u32>,
    /// `(field, value)` in printed order. Nested fields keep their dotted names
    /// (`lf.level`); brace groups keep their braces with whitespace collapsed.
    pub fields: Vec<(String, String)>,
}

impl Control {
    pub fn get(&self, field: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(name, _)| name == field)
            .map(|(_, v)| v.as_str())
    }

    /// A numeric field (decimal, negative or `0x` hex; u64 timestamps fit too).
    pub fn number(&self, field: &str) -> Option<i128> {
        parse_number(self.get(field)?)
    }

    /// The names set in a flags field (`KEY_FRAME|SHOW_FRAME`); empty when none is set.
    pub fn flags(&self, field: &str) -> Option<Vec<&str>> {
        let value = self.get(field)?;
        Some(value.split('|').filter(|f| !f.is_empty()).collect())
    }

    /// The elements of an array field: `{0x1,0x0,0xff}` or a hex dump `{00 01 ff}`
    /// (the latter read as hex bytes).
    pub fn array(&self, field: &str) -> Option<Vec<i128>> {
        let inner = self.get(field)?.strip_prefix('{')?.strip_suffix('}')?;
        if inner.contains(',') {
            inner.split(',').map(|e| parse_number(e.trim())).collect()
        } else {
            inner
                .split_whitespace()
                .map(|b| i128::from_str_radix(b, 16).ok())
                .collect()
        }
    }
}

/// The controls visl received for one decode job, in emission order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frame {
    pub controls: Vec<Control>,
}

impl Frame {
    /// The first control of that event in this frame.
    pub fn control(&self, event: &str) -> Option<&Control> {
        self.controls.iter().find(|c| c.event == event)
    }

    /// Every control of that event (DPB entries, reference lists, ...).
    pub fn controls<'a>(&'a self, event: &'a str) -> impl Iterator<Item = &'a Control> + 'a {
        self.controls.iter().filter(move |c| c.event == event)
    }
}

/// A parsed capture.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VislTrace {
    pub frames: Vec<Frame>,
    /// ftrace dropped events (ring buffer overrun): the capture is incomplete.
    pub lost_events: bool,
}

impl VislTrace {
    /// How many controls of that event the whole capture holds.
    pub fn count(&self, event: &str) -> usize {
        self.frames.iter().map(|f| f.controls(event).count()).sum()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line of the trace text.
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "visl trace line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ParseError {}

/// Parses the text of `/sys/kernel/tracing/trace` recorded with visl's events enabled.
/// Comment lines (`#`) and events before the first frame start are kept (the latter in
/// a leading frame); an event body that is not `name value` pairs is an error.
pub fn parse(text: &str) -> Result<VislTrace, ParseError> {
    let mut trace = VislTrace::default();
    // (line number of the header, event name, body text)
    let mut pending: Option<(usize, String, String)> = None;
    for (i, line) in text.lines().enumerate() {
        if line.starts_with('#') {
            continue;
        }
        if line.contains("[LOST ") && line.contains(" EVENTS]") {
            trace.lost_events = true;
            continue;
        }
        if let Some((event, rest)) = split_event_header(line) {
            push_control(&mut trace, pending.take())?;
            pending = Some((i + 1, event.to_owned(), rest.to_owned()));
        } else if let Some((_, _, body)) = pending.as_mut() {
            body.push('\n');
            body.push_str(line);
        } else if !line.trim().is_empty() {
            return Err(ParseError {
                line: i + 1,
                message: format!("text outside any event: {line:?}"),
            });
        }
    }
    push_control(&mut trace, pending.take())?;
    Ok(trace)
}

fn push_control(
    trace: &mut VislTrace,
    pending: Option<(usize, String, String)>,
) -> Result<(), ParseError> {
    let Some((line, event, body)) = pending else {
        return Ok(());
    };
    let control = parse_control(event, &body).map_err(|message| ParseError { line, message })?;
    if trace.frames.is_empty() || FRAME_START_EVENTS.contains(&control.event.as_str()) {
        trace.frames.push(Frame::default());
    }
    if let Some(frame) = trace.frames.last_mut() {
        frame.controls.push(control);
    }
    Ok(())
}

/// `  gst-launch-1.0-97   [001] .....   12.345678: v4l2_ctrl_vp9_frame: rest`
/// → `("v4l2_ctrl_vp9_frame", "rest")`. `None` for anything else.
fn split_event_header(line: &str) -> Option<(&str, &str)> {
    // The CPU column, "[001]", comes after the task name (which may hold anything).
    let mut search_from = 0;
    let cpu_end = loop {
        let open = search_from + line[search_from..].find('[')?;
        let close = open + line[open..].find(']')?;
        let inside = &line[open + 1..close];
        if !inside.is_empty() && inside.bytes().all(|b| b.is_ascii_digit()) {
            break close + 1;
        }
        search_from = open + 1;
    };
    let after_cpu = &line[cpu_end..];
    // The timestamp column, "12.345678:", then " EVENT:".
    let mut offset = 0;
    while let Some(pos) = after_cpu[offset..].find(": ") {
        let colon = offset + pos;
        let word_start = after_cpu[..colon]
            .rfind(|c: char| c.is_ascii_whitespace())
            .map_or(0, |p| p + 1);
        if is_timestamp(&after_cpu[word_start..colon]) {
            let tail = &after_cpu[colon + 2..];
            let name_end = tail.find(':')?;
            let event = &tail[..name_end];
            if event.is_empty()
                || !event
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_')
            {
                return None;
            }
            let rest = &tail[name_end + 1..];
            return Some((event, rest.strip_prefix(' ').unwrap_or(rest)));
        }
        offset = colon + 2;
    }
    None
}

fn is_timestamp(word: &str) -> bool {
    let Some((secs, frac)) = word.split_once('.') else {
        return false;
    };
    !secs.is_empty()
        && !frac.is_empty()
        && secs.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit())
}

fn parse_control(event: String, body: &str) -> Result<Control, String> {
    let mut body = body.trim_start();
    let mut index = None;
    // Per-entry events start with "[i]: ".
    if let Some(rest) = body.strip_prefix('[')
        && let Some((digits, rest)) = rest.split_once("]:")
        && let Ok(i) = digits.parse::<u32>()
    {
        index = Some(i);
        body = rest.strip_prefix(' ').unwrap_or(rest);
    }
    let mut fields = Vec::new();
    for logical in logical_lines(body)? {
        let logical = logical.trim_start();
        if logical.trim().is_empty() {
            continue;
        }
        let words = split_words(logical);
        for pair in words.chunks(2) {
            let name = pair[0].strip_suffix(':').unwrap_or(&pair[0]);
            if !is_field_name(name) {
                return Err(format!("{event}: expected a field name, found {name:?}"));
            }
            let value = pair.get(1).map_or("", String::as_str);
            fields.push((name.to_owned(), normalize_value(value)));
        }
    }
    Ok(Control {
        event,
        index,
        fields,
    })
}

/// Splits at newlines outside braces (a hex dump inside braces spans several lines).
fn logical_lines(body: &str) -> Result<Vec<String>, String> {
    let mut lines = Vec::new();
    let mut current = String::new();
    let mut depth = 0usize;
    for c in body.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.checked_sub(1).ok_or("unbalanced '}'")?,
            '\n' if depth == 0 => {
                lines.push(std::mem::take(&mut current));
                continue;
            }
            '\n' => {
                current.push(' ');
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    if depth != 0 {
        return Err("unterminated '{' (truncated trace?)".into());
    }
    lines.push(current);
    Ok(lines)
}

/// Splits at single spaces outside braces, keeping empty words: visl prints an empty
/// flags set as nothing, so `flags  colorspace 0` is `flags` = "" then `colorspace` = 0.
fn split_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut depth = 0usize;
    for c in line.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            ' ' if depth == 0 => {
                words.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    words.push(current);
    words
}

fn is_field_name(name: &str) -> bool {
    name.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.[]".contains(c))
}

fn normalize_value(value: &str) -> String {
    if let Some(inner) = value.strip_prefix('{').and_then(|v| v.strip_suffix('}')) {
        let words: Vec<&str> = inner.split_whitespace().collect();
        format!("{{{}}}", words.join(" "))
    } else {
        // "reference_ts 0, pic_num 1": the comma separates fields, it is not part of the value.
        value.strip_suffix(',').unwrap_or(value).to_owned()
    }
}

fn parse_number(s: &str) -> Option<i128> {
    let (negative, digits) = match s.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, s),
    };
    let magnitude = match digits.strip_prefix("0x") {
        Some(hex) => i128::from_str_radix(hex, 16).ok()?,
        None => digits.parse::<i128>().ok()?,
    };
    Some(if negative { -magnitude } else { magnitude })
}

/// One field on which two captures disagree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    pub frame: usize,
    /// `event` or `event[i]` (per-entry events), plus `#n` for the n-th repeat in a frame.
    pub control: String,
    pub field: String,
    pub left: Option<String>,
    pub right: Option<String>,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "(absent)".into());
        write!(
            f,
            "frame {} {} {}: {} != {}",
            self.frame,
            self.control,
            self.field,
            show(&self.left),
            show(&self.right)
        )
    }
}

/// Field-by-field differences between two captures, frame by frame, ignoring the named
/// fields (e.g. buffer timestamps such as `reference_ts`, which depend on how each
/// decoder numbers its buffers). A frame or control missing on one side shows up with
/// `field` set to `(frame)` or `(control)`.
pub fn compare(left: &VislTrace, right: &VislTrace, ignore_fields: &[&str]) -> Vec<Difference> {
    let mut diffs = Vec::new();
    let frames = left.frames.len().max(right.frames.len());
    for n in 0..frames {
        let (l, r) = (left.frames.get(n), right.frames.get(n));
        let (Some(l), Some(r)) = (l, r) else {
            diffs.push(Difference {
                frame: n,
                control: String::new(),
                field: "(frame)".into(),
                left: l.map(|_| "present".into()),
                right: r.map(|_| "present".into()),
            });
            continue;
        };
        let (lk, rk) = (keyed(l), keyed(r));
        for (key, lc) in &lk {
            match rk.iter().find(|(k, _)| k == key) {
                None => diffs.push(Difference {
                    frame: n,
                    control: key.clone(),
                    field: "(control)".into(),
                    left: Some("present".into()),
                    right: None,
                }),
                Some((_, rc)) => compare_fields(n, key, lc, rc, ignore_fields, &mut diffs),
            }
        }
        for (key, _) in rk.iter().filter(|(k, _)| !lk.iter().any(|(lk, _)| lk == k)) {
            diffs.push(Difference {
                frame: n,
                control: key.clone(),
                field: "(control)".into(),
                left: None,
                right: Some("present".into()),
            });
        }
    }
    diffs
}

fn keyed(frame: &Frame) -> Vec<(String, &Control)> {
    let mut out: Vec<(String, &Control)> = Vec::new();
    for c in &frame.controls {
        let base = match c.index {
            Some(i) => format!("{}[{i}]", c.event),
            None => c.event.clone(),
        };
        let repeats = out
            .iter()
            .filter(|(k, _)| k == &base || k.starts_with(&format!("{base}#")))
            .count();
        let key = if repeats == 0 {
            base
        } else {
            format!("{base}#{repeats}")
        };
        out.push((key, c));
    }
    out
}

fn compare_fields(
    frame: usize,
    key: &str,
    l: &Control,
    r: &Control,
    ignore: &[&str],
    diffs: &mut Vec<Difference>,
) {
    let mut names: Vec<&str> = l.fields.iter().map(|(n, _)| n.as_str()).collect();
    for (n, _) in &r.fields {
        if !names.contains(&n.as_str()) {
            names.push(n);
        }
    }
    for name in names.into_iter().filter(|n| !ignore.contains(n)) {
        let (lv, rv) = (l.get(name), r.get(name));
        if lv != rv {
            diffs.push(Difference {
                frame,
                control: key.to_owned(),
                field: name.to_owned(),
                left: lv.map(str::to_owned),
                right: rv.map(str::to_owned),
            });
        }
    }
}

/// Guest argv that runs `command` with visl's events recorded into `out` (a path on a
/// read-write share); its exit status is the command's. Several captures can run in one
/// boot (e.g. `bash -c` with one `visl-trace.sh` line per pipeline).
pub fn capture_argv<I, S>(out: &Path, command: I) -> Vec<OsString>
where
    I: IntoIterator<Item = S>,
    S: Into<OsString>,
{
    let mut argv = vec![
        crate::vmlab::lab_dir()
            .join("visl-trace.sh")
            .into_os_string(),
        out.as_os_str().to_owned(),
    ];
    argv.extend(command.into_iter().map(Into::into));
    argv
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // Real captures from the lab (see tests/fixtures/visl/README.md).
    const VP9: &str = include_str!("../fixtures/visl/vp9-2frames.trace");
    const VP8: &str = include_str!("../fixtures/visl/vp8.trace");
    const H264: &str = include_str!("../fixtures/visl/h264-2frames.trace");
    const MPEG2: &str = include_str!("../fixtures/visl/mpeg2.trace");
    const FWHT: &str = include_str!("../fixtures/visl/fwht.trace");

    #[test]
    fn vp9_frames_controls_and_fields() {
        let t = parse(VP9).unwrap();
        assert!(!t.lost_events);
        assert_eq!(t.frames.len(), 2);
        for frame in &t.frames {
            let events: Vec<&str> = frame.controls.iter().map(|c| c.event.as_str()).collect();
            assert_eq!(
                events,
                [
                    "v4l2_ctrl_vp9_frame",
                    "v4l2_ctrl_vp9_compressed_hdr",
                    "v4l2_ctrl_vp9_compressed_coeff",
                    "v4l2_vp9_mv_probs"
                ]
            );
        }
        let key = t.frames[0].control("v4l2_ctrl_vp9_frame").unwrap();
        assert_eq!(key.fields.len(), 33, "every field of the printk format");
        assert_eq!(key.get("lf.ref_deltas"), Some("{0x1,0x0,0xff,0xff}"));
        assert_eq!(key.array("lf.ref_deltas"), Some(vec![1, 0, 0xff, 0xff]));
        assert_eq!(key.number("lf.level"), Some(8));
        assert_eq!(
            key.flags("lf.flags"),
            Some(vec!["DELTA_ENABLED", "DELTA_UPDATE"])
        );
        assert_eq!(key.flags("seg.flags"), Some(vec![]), "empty flag set");
        assert_eq!(key.array("seg.feature_data").map(|d| d.len()), Some(64));
        assert_eq!(key.number("frame_width_minus_1"), Some(63));
        assert_eq!(key.number("frame_height_minus_1"), Some(47));
        assert_eq!(
            key.get("reference_mode"),
            Some("REFERENCE_MODE_SINGLE_REFERENCE")
        );
        assert!(key.flags("flags").unwrap().contains(&"KEY_FRAME"));
        let inter = t.frames[1].control("v4l2_ctrl_vp9_frame").unwrap();
        assert!(!inter.flags("flags").unwrap().contains(&"KEY_FRAME"));
        // The coefficient table is one 1728-byte hex dump spread over 54 lines (coef[4][2][2][6][6][3]).
        let coef = t.frames[0]
            .control("v4l2_ctrl_vp9_compressed_coeff")
            .unwrap();
        assert_eq!(coef.fields.len(), 1);
        assert_eq!(
            coef.array("coef").map(|c| c.len()),
            Some(4 * 2 * 2 * 6 * 6 * 3)
        );
    }

    #[test]
    fn h264_per_entry_events_and_comma_separated_fields() {
        let t = parse(H264).unwrap();
        assert_eq!(t.frames.len(), 2);
        let frame = &t.frames[1];
        assert_eq!(frame.controls("v4l2_h264_ref_pic_list0").count(), 32);
        assert_eq!(frame.controls("v4l2_h264_dpb_entry").count(), 16);
        let dpb0 = frame.controls("v4l2_h264_dpb_entry").next().unwrap();
        assert_eq!(dpb0.index, Some(0));
        assert_eq!(
            dpb0.get("reference_ts"),
            Some("0"),
            "the trailing comma is a separator"
        );
        assert_eq!(dpb0.flags("flags"), Some(vec!["VALID", "ACTIVE"]));
        let dpb1 = frame.controls("v4l2_h264_dpb_entry").nth(1).unwrap();
        assert_eq!(dpb1.index, Some(1));
        assert_eq!(
            dpb1.get("fields"),
            Some(""),
            "empty flags between two spaces"
        );
        assert_eq!(dpb1.number("top_field_order_cnt"), Some(0));
        let sps = frame.control("v4l2_ctrl_h264_sps").unwrap();
        assert_eq!(sps.number("profile_idc"), Some(66));
        assert_eq!(sps.number("pic_width_in_mbs_minus1"), Some(3));
        let slice = frame.control("v4l2_ctrl_h264_slice_params").unwrap();
        assert_eq!(slice.number("slice_qp_delta"), Some(-4));
        assert_eq!(slice.get("slice_type"), Some("P"));
    }

    #[test]
    fn mpeg2_colon_names_and_u64_timestamps() {
        let t = parse(MPEG2).unwrap();
        assert_eq!(t.frames.len(), 3);
        let pic = t.frames[0].control("v4l2_ctrl_mpeg2_picture").unwrap();
        assert_eq!(pic.number("picture_coding_type"), Some(1), "`name:` form");
        assert_eq!(pic.number("backward_ref_ts"), Some(u64::MAX as i128));
        assert_eq!(pic.array("f_code"), Some(vec![0xf, 0xf, 0xf, 0xf]));
        let seq = t.frames[2].control("v4l2_ctrl_mpeg2_sequence").unwrap();
        assert_eq!(seq.number("horizontal_size"), Some(64));
        assert_eq!(seq.number("vertical_size"), Some(48));
    }

    #[test]
    fn fwht_single_line_events() {
        let t = parse(FWHT).unwrap();
        assert_eq!(t.frames.len(), 6);
        let p = t.frames[1].control("v4l2_ctrl_fwht_params").unwrap();
        assert_eq!(p.number("width"), Some(1280));
        assert_eq!(p.number("height"), Some(720));
        assert_eq!(
            p.flags("flags"),
            Some(vec!["I_FRAME", "PIXENC_YUV", "0x20000"])
        );
        assert_eq!(p.number("quantization"), Some(0));
        assert_eq!(p.fields.len(), 9);
    }

    #[test]
    fn vp8_frame_and_entropy() {
        let t = parse(VP8).unwrap();
        assert_eq!(t.frames.len(), 3);
        let f = t.frames[0].control("v4l2_ctrl_vp8_frame").unwrap();
        assert_eq!(
            (f.number("width"), f.number("height")),
            (Some(64), Some(48))
        );
        assert_eq!(f.array("dct_part_sizes").map(|v| v[0]), Some(0x161));
        assert!(t.frames[0].control("v4l2_ctrl_vp8_entropy").is_some());
    }

    #[test]
    fn compare_finds_exactly_the_changed_field() {
        let a = parse(VP9).unwrap();
        assert!(compare(&a, &a, &[]).is_empty());
        let changed = VP9.replacen("lf.level 8", "lf.level 9", 1);
        let b = parse(&changed).unwrap();
        let diffs = compare(&a, &b, &[]);
        assert_eq!(diffs.len(), 1, "{diffs:?}");
        assert_eq!(diffs[0].frame, 0);
        assert_eq!(diffs[0].control, "v4l2_ctrl_vp9_frame");
        assert_eq!(diffs[0].field, "lf.level");
        assert_eq!(diffs[0].left.as_deref(), Some("8"));
        assert_eq!(diffs[0].right.as_deref(), Some("9"));
        assert!(compare(&a, &b, &["lf.level"]).is_empty());
    }

    #[test]
    fn compare_reports_missing_frames_and_entries() {
        let full = parse(H264).unwrap();
        let mut short = full.clone();
        short.frames.pop();
        let diffs = compare(&full, &short, &[]);
        assert_eq!(diffs.len(), 1);
        assert_eq!((diffs[0].frame, diffs[0].field.as_str()), (1, "(frame)"));

        let mut fewer = full.clone();
        let dpb = fewer.frames[0]
            .controls
            .iter()
            .rposition(|c| c.event == "v4l2_h264_dpb_entry")
            .unwrap();
        fewer.frames[0].controls.remove(dpb);
        let diffs = compare(&full, &fewer, &[]);
        assert_eq!(diffs.len(), 1, "{diffs:?}");
        assert_eq!(diffs[0].control, "v4l2_h264_dpb_entry[15]");
        assert_eq!(diffs[0].right, None);
    }

    #[test]
    fn lost_events_and_garbage_are_reported() {
        let lost = format!("{VP8}CPU:1 [LOST 12 EVENTS]\n");
        assert!(parse(&lost).unwrap().lost_events);
        assert!(parse("not a trace\n").is_err());
        let truncated = &VP9[..VP9.find(" coef {").unwrap() + 20];
        let err = parse(truncated).unwrap_err();
        assert!(err.message.contains("unterminated"), "{err}");
    }

    #[test]
    fn header_lines() {
        assert_eq!(
            split_event_header(
                "  ivfparse0:sink-105     [000] .....     7.179138: v4l2_ctrl_vp9_frame: "
            ),
            Some(("v4l2_ctrl_vp9_frame", ""))
        );
        assert_eq!(
            split_event_header("  x [y] z-7 (  7) [001] d..1. 1.5: ev_1: [3]: a 1"),
            Some(("ev_1", "[3]: a 1"))
        );
        assert_eq!(split_event_header("lf.level 8"), None);
        // Found by the fuzzer: a multi-byte whitespace before ": " (byte offsets, not chars).
        assert_eq!(split_event_header("a-1 [0] x\u{a0}: y: z"), None);
        assert_eq!(split_event_header("a-1 [0] x\u{a0}1.5: y: z"), None);
        assert_eq!(split_event_header("00 01 02 03"), None);
    }

    #[test]
    fn capture_argv_wraps_the_command() {
        let argv = capture_argv(Path::new("/r/x.trace"), ["gst-launch-1.0", "fakesrc"]);
        let script = crate::vmlab::lab_dir().join("visl-trace.sh");
        assert!(script.is_file(), "{} missing", script.display());
        assert_eq!(
            argv,
            [
                script.into_os_string(),
                "/r/x.trace".into(),
                "gst-launch-1.0".into(),
                "fakesrc".into()
            ]
        );
    }

    fn field_name() -> impl Strategy<Value = String> {
        "[a-z_][a-z0-9_]{0,8}(\\.[a-z_][a-z0-9_]{0,8})?"
    }

    fn field_value() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<i64>().prop_map(|n| n.to_string()),
            any::<u32>().prop_map(|n| format!("0x{n:x}")),
            proptest::collection::vec("[A-Z][A-Z_]{0,10}", 0..4).prop_map(|f| f.join("|")),
            proptest::collection::vec(any::<u8>(), 1..8).prop_map(|a| {
                let items: Vec<String> = a.iter().map(|b| format!("0x{b:x}")).collect();
                format!("{{{}}}", items.join(","))
            }),
        ]
    }

    fn hex_dump(bytes: &[u8]) -> String {
        // As __print_hex_dump prints it: a newline, then rows of 32 bytes, each ending in a newline.
        let rows: Vec<String> = bytes
            .chunks(32)
            .map(|row| {
                row.iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        format!("{{\n{}\n}}", rows.join("\n"))
    }

    proptest! {
        #[test]
        fn never_panics(text in "(\\PC|\n|\\{|\\}|\\[|\\]|:| ){0,400}") {
            let _ = parse(&text);
        }

        #[test]
        fn multi_line_events_round_trip(
            fields in proptest::collection::vec((field_name(), field_value()), 1..12),
            dump in proptest::collection::vec(any::<u8>(), 1..100),
        ) {
            let mut body = String::new();
            for (name, value) in &fields {
                body.push_str(&format!("\n{name} {value}"));
            }
            body.push_str(&format!("\ndump {}\n", hex_dump(&dump)));
            let text = format!(" task-1 [001] ..... 1.000001: v4l2_ctrl_vp9_frame: {body}\n");
            let t = parse(&text).unwrap();
            prop_assert_eq!(t.frames.len(), 1);
            let c = &t.frames[0].controls[0];
            prop_assert_eq!(c.fields.len(), fields.len() + 1);
            for ((name, value), (got_name, got_value)) in fields.iter().zip(&c.fields) {
                prop_assert_eq!(name, got_name);
                prop_assert_eq!(value, got_value);
            }
            let got: Vec<u8> = c.array("dump").unwrap().iter().map(|&b| b as u8).collect();
            prop_assert_eq!(got, dump);
        }

        #[test]
        fn single_line_events_round_trip(
            index in any::<u8>(),
            fields in proptest::collection::vec((field_name(), field_value()), 1..8),
        ) {
            let pairs: Vec<String> = fields.iter().map(|(n, v)| format!("{n} {v}")).collect();
            let text = format!(
                " t-1 [000] ..... 2.5: v4l2_h264_dpb_entry: [{index}]: {}\n",
                pairs.join(" ")
            );
            let t = parse(&text).unwrap();
            let c = &t.frames[0].controls[0];
            prop_assert_eq!(c.index, Some(u32::from(index)));
            prop_assert_eq!(&c.fields, &fields);
        }
    }
}
