// SPDX-License-Identifier: MPL-2.0
//! Shared by the spicepass lab tests: running `spicepass-peer` (built with the workspace),
//! which prints one line per buffer (timestamps, flags, size, checksum) and per event.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use mediapass_tests::plugin_dir;
use mediapass_tests::vmlab::{LabError, LabOutput};

pub const DELTA_UNIT: u32 = 0x2000;

/// Every client buffer is one the guest sent, in the guest's order (nothing mis-framed,
/// nothing invented; drops allowed). Returns the first offending line.
pub fn first_not_sent<'a>(sent: &[String], got: &'a [String]) -> Option<&'a String> {
    let mut cursor = 0;
    for line in got {
        match sent[cursor..].iter().position(|s| s == line) {
            Some(i) => cursor += i + 1,
            None => return Some(line),
        }
    }
    None
}

pub fn peer_binary() -> PathBuf {
    let peer = plugin_dir().join("spicepass-peer");
    assert!(
        peer.is_file(),
        "{} is missing: build the workspace first (cargo build --workspace --all-targets)",
        peer.display()
    );
    peer
}

pub fn make_clip(path: &Path, frames: u32) {
    let status = Command::new("gst-launch-1.0")
        .args([
            "-q",
            "videotestsrc",
            &format!("num-buffers={frames}"),
            "pattern=ball",
        ])
        .args(["!", "video/x-raw,width=320,height=240,framerate=30/1"])
        .args([
            "!",
            "vp8enc",
            "deadline=1",
            "keyframe-max-dist=30",
            "!",
            "webmmux",
        ])
        .args(["!", "filesink", &format!("location={}", path.display())])
        .env("GST_REGISTRY_FORK", "no")
        .status()
        .expect("gst-launch-1.0 runs (./x setup installs it)");
    assert!(status.success(), "making {} failed", path.display());
}

/// Encodes `frames` frames at 30 fps into an MP4 (H.264 by openh264, keyframe every 30),
/// which the guest plays through qtdemux.
pub fn make_mp4_clip(path: &Path, frames: u32) {
    let status = Command::new("gst-launch-1.0")
        .args([
            "-q",
            "videotestsrc",
            &format!("num-buffers={frames}"),
            "pattern=ball",
        ])
        .args(["!", "video/x-raw,width=320,height=240,framerate=30/1"])
        .args([
            "!",
            "openh264enc",
            "gop-size=30",
            "!",
            "h264parse",
            "!",
            "mp4mux",
        ])
        .args(["!", "filesink", &format!("location={}", path.display())])
        .env("GST_REGISTRY_FORK", "no")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("gst-launch-1.0 runs (./x setup installs it)");
    assert!(status.success(), "making {} failed", path.display());
}

/// A host-side `spicepass-peer client` and the lines it printed.
pub struct Client {
    pub child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<String>>,
}

impl Client {
    /// `spicepass-peer client URI EXTRA...`; `stdin` becomes the child's fd 0 (for
    /// `spicepass+fd://0`), otherwise stdin is /dev/null.
    pub fn spawn(uri: &str, extra: &[&str], stdin: Option<OwnedFd>) -> Self {
        let mut child = Command::new(peer_binary())
            .arg("client")
            .arg(uri)
            .args(extra)
            .arg("timeout-s=200")
            .stdin(stdin.map_or_else(Stdio::null, Stdio::from))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env("GST_REGISTRY_FORK", "no")
            .spawn()
            .expect("spawning spicepass-peer");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let (out, l) = (child.stdout.take().unwrap(), lines.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                l.lock().unwrap().push(line);
            }
        });
        let (err, e) = (child.stderr.take().unwrap(), stderr.clone());
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = BufReader::new(err).read_to_string(&mut s);
            e.lock().unwrap().push_str(&s);
        });
        Self {
            child,
            lines,
            stderr,
        }
    }

    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    pub fn story(&self) -> String {
        let lines = self.lines();
        let bufs = lines.iter().filter(|l| l.starts_with("BUF")).count();
        let mut s = format!("--- host client ({bufs} BUF lines) ---\n");
        for l in lines.iter().filter(|l| !l.starts_with("BUF")) {
            s.push_str(&l.chars().take(300).collect::<String>());
            s.push('\n');
        }
        s + "--- stderr ---\n" + &self.stderr.lock().unwrap()
    }

    pub fn wait_buffers(&self, n: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while with_prefix(&self.lines(), "BUF").len() < n {
            assert!(
                Instant::now() < deadline,
                "client got fewer than {n} buffers within {timeout:?}\n{}",
                self.story()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn finish(&mut self, timeout: Duration) -> i32 {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(200));
                return status.code().unwrap_or(-1);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("client did not finish within {timeout:?}\n{}", self.story());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn with_prefix(lines: &[String], prefix: &str) -> Vec<String> {
    lines
        .iter()
        .filter(|l| l.starts_with(prefix))
        .cloned()
        .collect()
}

pub fn flags_of(buf_line: &str) -> u32 {
    buf_line
        .split_whitespace()
        .find_map(|f| f.strip_prefix("flags=0x"))
        .and_then(|f| u32::from_str_radix(f, 16).ok())
        .unwrap_or_else(|| panic!("no flags in {buf_line}"))
}

pub fn pts_of(buf_line: &str) -> u64 {
    buf_line
        .split_whitespace()
        .find_map(|f| f.strip_prefix("pts="))
        .and_then(|f| f.parse().ok())
        .unwrap_or_else(|| panic!("no pts in {buf_line}"))
}

/// The guest's output so far (it writes to a read-write share as it goes).
pub fn guest_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Waits up to `limit` for a guest phase's exit status file (`<share>/<phase>.rc`); fails
/// with the VM's output if it ended first.
pub fn wait_guest_phase(
    share: &Path,
    phase: &str,
    vm: &mpsc::Receiver<Result<LabOutput, LabError>>,
    limit: Duration,
) -> i32 {
    let rc = share.join(format!("{phase}.rc"));
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(text) = std::fs::read_to_string(&rc)
            && let Ok(code) = text.trim().parse()
        {
            return code;
        }
        match vm.recv_timeout(Duration::from_millis(200)) {
            Ok(Ok(out)) => panic!("the VM ended before guest {phase} did:\n{}", out.describe()),
            Ok(Err(e)) => panic!("{e}"),
            Err(_) => {}
        }
        assert!(Instant::now() < deadline, "guest {phase} never finished");
    }
}

/// The guest phase's events and stderr (buffer lines counted, not listed), for failures.
pub fn guest_story(share: &Path, phase: &str) -> String {
    let lines = guest_lines(&share.join(format!("{phase}.out")));
    let bufs = lines.iter().filter(|l| l.starts_with("BUF")).count();
    let mut s = format!("--- guest {phase} ({bufs} BUF lines) ---\n");
    for l in lines.iter().filter(|l| !l.starts_with("BUF")) {
        s.push_str(&l.chars().take(300).collect::<String>());
        s.push('\n');
    }
    s + "--- guest stderr ---\n"
        + &std::fs::read_to_string(share.join(format!("{phase}.err"))).unwrap_or_default()
}

/// The lines of `lines` from the first one starting with `prefix` on.
pub fn lines_after<'a>(lines: &'a [String], prefix: &str) -> &'a [String] {
    let at = lines
        .iter()
        .position(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix} line"));
    &lines[at..]
}

/// The client got exactly what the guest sent: `buffers` identical buffers, the same
/// sticky events, and one EOS.
pub fn assert_delivered_identically(
    sent: &[String],
    got: &[String],
    buffers: usize,
    story: impl Fn() -> String,
) {
    assert_eq!(with_prefix(sent, "BUF").len(), buffers, "{}", story());
    assert_eq!(
        with_prefix(sent, "BUF"),
        with_prefix(got, "BUF"),
        "{}",
        story()
    );
    for kind in [
        "EVENT stream-start",
        "EVENT caps",
        "EVENT segment",
        "EVENT eos",
    ] {
        assert!(!with_prefix(got, kind).is_empty(), "no {kind}\n{}", story());
        assert_eq!(
            with_prefix(sent, kind),
            with_prefix(got, kind),
            "{kind}\n{}",
            story()
        );
    }
    assert_eq!(with_prefix(got, "EOS").len(), 1, "{}", story());
}

/// A client's seek to 8 s (`seek-to-ms=8000`) reached the guest once; the guest's flush
/// reached the client, followed by the 8 s segment and buffers from about 8 s on, with
/// nothing lost or altered after the flush; the guest skipped most of the 300-buffer clip.
pub fn assert_seek_moved_guest(guest_seen: &[String], got: &[String], story: impl Fn() -> String) {
    let seeks = with_prefix(guest_seen, "UPEVENT seek");
    assert_eq!(
        seeks.len(),
        1,
        "the guest did not get the seek\n{}",
        story()
    );
    assert!(seeks[0].contains("cur=(gint64)8000000000"), "{}", seeks[0]);
    for kind in ["EVENT flush-start", "EVENT flush-stop"] {
        let g = with_prefix(guest_seen, kind);
        assert_eq!(g.len(), 1, "guest {kind}\n{}", story());
        assert_eq!(
            g,
            with_prefix(got, kind),
            "the client sees the guest's {kind}\n{}",
            story()
        );
    }
    let after = lines_after(got, "EVENT flush-stop");
    let segment = after
        .iter()
        .find(|l| l.starts_with("EVENT segment"))
        .unwrap_or_else(|| panic!("no segment after the flush\n{}", story()));
    assert!(segment.contains("start=(guint64)8000000000"), "{segment}");
    let first = after
        .iter()
        .find(|l| l.starts_with("BUF"))
        .unwrap_or_else(|| panic!("no buffer after the seek\n{}", story()));
    assert!(
        pts_of(first) >= 7_000_000_000,
        "first buffer after the seek: {first}"
    );
    assert_eq!(
        with_prefix(lines_after(guest_seen, "EVENT flush-stop"), "BUF"),
        with_prefix(after, "BUF"),
        "{}",
        story()
    );
    assert!(
        with_prefix(got, "BUF").len() < 280,
        "the guest did not jump\n{}",
        story()
    );
    assert_eq!(with_prefix(got, "EOS").len(), 1, "{}", story());
}
