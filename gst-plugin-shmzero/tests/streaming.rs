// SPDX-License-Identifier: MPL-2.0
//! Writer and reader in separate processes: zero copy (pool, fd and copy paths), caps
//! change mid-stream, flushing seek, EOS.

mod common;

use common::{Proc, TestDir, assert_no_criticals, field, gst_launch, last_line_with, probe};

/// Runs a reader probe to EOS against a writer started by `writer`, returns both outputs.
fn run_pair(dir: &TestDir, writer: impl FnOnce(&str) -> std::process::Command) -> (Proc, Proc) {
    let socket = dir.socket("s");
    let mut writer = Proc::spawn("writer", writer(&socket));
    let mut reader_cmd = probe();
    reader_cmd.args(["read", "--socket", &socket, "--not-live"]);
    let mut reader = Proc::spawn("reader", reader_cmd);
    let reader_status = reader.wait();
    let writer_status = writer.wait();
    assert!(
        reader_status.success() && writer_status.success(),
        "reader {reader_status}, writer {writer_status}\n{}\n{}",
        reader.dump(),
        writer.dump()
    );
    assert_no_criticals(&writer);
    assert_no_criticals(&reader);
    (writer, reader)
}

fn sink_stats(writer: &Proc) -> String {
    let lines = writer.lines();
    lines
        .iter()
        .find(|l| l.contains("shmzerosink-stats"))
        .cloned()
        .unwrap_or_else(|| panic!("no stats message from the sink\n{}", writer.dump()))
}

fn frame_lines(reader: &Proc) -> Vec<String> {
    reader
        .lines()
        .into_iter()
        .filter(|l| l.starts_with("frame "))
        .collect()
}

#[test]
fn videotestsrc_videoconvert_writes_into_the_pool_without_any_copy() {
    let dir = TestDir::new("zc");
    let (writer, reader) = run_pair(&dir, |socket| {
        let mut cmd = gst_launch();
        cmd.args([
            "videotestsrc",
            "num-buffers=60",
            "!",
            "video/x-raw,format=RGBA,width=320,height=240",
            "!",
            "videoconvert",
            "!",
            "shmzerosink",
            &format!("socket-path={socket}"),
            "wait-for-connection=true",
            "block-on-slow-readers=true",
            "sync=false",
        ]);
        cmd
    });
    let stats = sink_stats(&writer);
    assert_eq!(field(&stats, "copied-buffers"), Some(0), "{stats}");
    assert_eq!(field(&stats, "zero-copy-buffers"), Some(60), "{stats}");
    let frames = frame_lines(&reader);
    assert_eq!(frames.len(), 60, "{}", reader.dump());
    // The reader's bytes lie inside a read-only shared memfd mapping of the reader process.
    assert!(
        frames.iter().all(|l| l.contains("zero-copy=1")),
        "{}",
        reader.dump()
    );
    assert!(
        frames.iter().all(|l| l.contains("video=320x240")),
        "{}",
        reader.dump()
    );
    let lines = reader.lines();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("event caps video/x-raw, format=(string)RGBA, width=(int)320"))
    );
    assert!(
        lines.iter().any(|l| l.starts_with("event eos")),
        "{}",
        reader.dump()
    );
    // Nothing left in the socket dir once the writer stopped.
    assert!(dir.entries().is_empty(), "left behind: {:?}", dir.entries());
}

/// `shmzero-probe write` with `frames` frames, the probe options `extra` and the sink
/// properties `sink_props`, against one probe reader.
fn probe_writer_pair(
    dir: &TestDir,
    frames: &str,
    extra: &[&str],
    sink_props: &str,
) -> (Proc, Proc) {
    run_pair(dir, |socket| {
        let mut cmd = probe();
        cmd.args(["write", "--socket", socket, "--frames", frames])
            .args(extra)
            .args(["--sink-props", sink_props]);
        cmd
    })
}

/// 40 frames of videotestsrc whose memory the probe replaces according to `upstream_flag`
/// (`--no-pool`: system memory, `--fd-memory`: sealed memfd `GstFdMemory`), with
/// back-pressure so the reader sees every one.
fn forty_frames_from_upstream(dir: &TestDir, upstream_flag: &str) -> (Proc, Proc) {
    probe_writer_pair(dir, "40", &[upstream_flag], "block-on-slow-readers=true")
}

/// The reader got `expected` frames, each inside a read-only shared mapping of its own.
fn assert_frames_in_shared_memory(reader: &Proc, expected: usize) {
    let frames = frame_lines(reader);
    assert_eq!(frames.len(), expected, "{}", reader.dump());
    assert!(
        frames.iter().all(|l| l.contains("zero-copy=1")),
        "{}",
        reader.dump()
    );
}

#[test]
fn foreign_system_memory_is_copied_once_and_counted() {
    let dir = TestDir::new("copy");
    let (writer, reader) = forty_frames_from_upstream(&dir, "--no-pool");
    let stats = sink_stats(&writer);
    assert_eq!(field(&stats, "copied-buffers"), Some(40), "{stats}");
    assert_eq!(field(&stats, "zero-copy-buffers"), Some(0), "{stats}");
    assert_frames_in_shared_memory(&reader, 40);
}

#[test]
fn upstream_fd_memory_is_passed_by_fd_not_copied() {
    let dir = TestDir::new("fd");
    let (writer, reader) = forty_frames_from_upstream(&dir, "--fd-memory");
    let stats = sink_stats(&writer);
    assert_eq!(field(&stats, "fd-buffers"), Some(40), "{stats}");
    assert_eq!(field(&stats, "copied-buffers"), Some(0), "{stats}");
    assert_frames_in_shared_memory(&reader, 40);
    let reader_stats = last_line_with(&reader.lines(), "stats ").unwrap();
    assert_eq!(field(&reader_stats, "in-flight"), Some(0), "{reader_stats}");
}

#[test]
fn caps_change_mid_stream_reaches_the_reader_without_restart() {
    let dir = TestDir::new("caps");
    let (writer, reader) = probe_writer_pair(
        &dir,
        "60",
        &["--caps-change-at", "30"],
        "block-on-slow-readers=true",
    );
    let stats = sink_stats(&writer);
    assert_eq!(field(&stats, "copied-buffers"), Some(0), "{stats}");
    let lines = reader.lines();
    let caps: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with("event caps"))
        .collect();
    assert_eq!(caps.len(), 2, "{}", reader.dump());
    assert!(
        caps[0].contains("width=(int)320") && caps[1].contains("width=(int)640"),
        "{caps:?}"
    );
    let frames = frame_lines(&reader);
    assert_eq!(frames.len(), 60, "{}", reader.dump());
    let small = frames
        .iter()
        .filter(|l| l.contains("video=320x240"))
        .count();
    let big = frames
        .iter()
        .filter(|l| l.contains("video=640x480"))
        .count();
    assert!(
        small > 0 && big > 0 && small + big == 60,
        "{small} + {big}\n{}",
        reader.dump()
    );
    // Buffers of the new size come after the new caps, never before.
    let caps2_at = lines
        .iter()
        .position(|l| l.starts_with("event caps") && l.contains("640"))
        .unwrap();
    assert!(
        lines[..caps2_at]
            .iter()
            .all(|l| !l.contains("video=640x480"))
    );
    assert!(frames.iter().all(|l| l.contains("zero-copy=1")));
}

#[test]
fn flushing_seek_on_the_writer_flushes_the_reader_and_continues() {
    let dir = TestDir::new("seek");
    // Paced by the clock (sync=true), so the seek (from another thread) lands mid-stream.
    let (writer, reader) = probe_writer_pair(
        &dir,
        "60",
        &["--seek-at", "20"],
        "block-on-slow-readers=true sync=true",
    );
    assert!(
        writer.lines().iter().any(|l| l == "seek done ok=true"),
        "{}",
        writer.dump()
    );
    let lines = reader.lines();
    let events: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("event "))
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    let pos = |name: &str| events.iter().position(|e| *e == name);
    let (Some(start), Some(stop)) = (pos("flush-start"), pos("flush-stop")) else {
        panic!("no flush pair: {events:?}");
    };
    assert!(start < stop, "{events:?}");
    assert!(
        events[stop..].contains(&"segment"),
        "no segment after the flush: {events:?}"
    );
    assert_eq!(events.last(), Some(&"eos"), "{events:?}");
    let stats = last_line_with(&lines, "stats ").unwrap();
    assert_eq!(field(&stats, "bad-events"), Some(0), "{stats}");
    // After the seek the stream restarts at 0.
    let pts: Vec<u64> = frame_lines(&reader)
        .iter()
        .filter_map(|l| field(l, "pts"))
        .collect();
    assert!(
        pts.windows(2).any(|w| w[1] < w[0]),
        "timestamps never went back: {pts:?}"
    );
}
