// SPDX-License-Identifier: MPL-2.0
//! Two-process harness: `spicepass-peer` guest and client processes, their stdout collected
//! line by line, clips made at test time with real encoders.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const PEER: &str = env!("CARGO_BIN_EXE_spicepass-peer");

/// Generous: the machine is a loaded 2-core box.
pub const LONG: Duration = Duration::from_secs(90);

/// A private temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "spicepass-{tag}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Encodes `frames` frames of test video at 30 fps into a WebM (VP8) file, keyframe every 30.
pub fn make_clip(dir: &TempDir, frames: u32) -> PathBuf {
    let path = dir.path("clip.webm");
    let status = Command::new("gst-launch-1.0")
        .args([
            "-q",
            "videotestsrc",
            &format!("num-buffers={frames}"),
            "pattern=ball",
            "!",
            "video/x-raw,width=320,height=240,framerate=30/1",
            "!",
            "vp8enc",
            "deadline=1",
            "keyframe-max-dist=30",
            "!",
            "webmmux",
            "!",
            "filesink",
            &format!("location={}", path.display()),
        ])
        .env("GST_REGISTRY_FORK", "no")
        .status()
        .expect("gst-launch-1.0 runs (./x setup installs it)");
    assert!(status.success(), "making the test clip failed");
    path
}

/// Encodes `frames` frames at 30 fps into an MP4 (H.264 by openh264, keyframe every 30):
/// the guest then plays it with qtdemux.
pub fn make_mp4_clip(dir: &TempDir, frames: u32) -> PathBuf {
    let path = dir.path("clip.mp4");
    let status = Command::new("gst-launch-1.0")
        .args([
            "-q",
            "videotestsrc",
            &format!("num-buffers={frames}"),
            "pattern=ball",
            "!",
            "video/x-raw,width=320,height=240,framerate=30/1",
            "!",
            "openh264enc",
            "gop-size=30",
            "!",
            "h264parse",
            "!",
            "mp4mux",
            "!",
            "filesink",
            &format!("location={}", path.display()),
        ])
        .env("GST_REGISTRY_FORK", "no")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("gst-launch-1.0 runs (./x setup installs it)");
    assert!(status.success(), "making the MP4 test clip failed");
    path
}

/// A running peer process and everything it printed so far.
pub struct Peer {
    pub child: Child,
    pub name: String,
    lines: Arc<Mutex<Vec<String>>>,
    rx: mpsc::Receiver<String>,
    stderr: Arc<Mutex<String>>,
}

impl Peer {
    pub fn spawn(name: &str, args: &[&str]) -> Peer {
        Self::spawn_with(name, args, |_| {})
    }

    pub fn spawn_with(name: &str, args: &[&str], tweak: impl FnOnce(&mut Command)) -> Peer {
        let mut cmd = Command::new(PEER);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env("GST_REGISTRY_FORK", "no");
        tweak(&mut cmd);
        let mut child = cmd.spawn().expect("spawning spicepass-peer");
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let l = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                l.lock().unwrap().push(line.clone());
                let _ = tx.send(line);
            }
        });
        let err = Arc::new(Mutex::new(String::new()));
        let e = err.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut e = e.lock().unwrap();
                e.push_str(&line);
                e.push('\n');
            }
        });
        Peer {
            child,
            name: name.to_owned(),
            lines,
            rx,
            stderr: err,
        }
    }

    /// Waits for a line starting with `prefix`; panics with the peer's story on timeout.
    pub fn wait_line(&self, prefix: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left.min(Duration::from_millis(200))) {
                Ok(line) if line.starts_with(prefix) => return line,
                Ok(_) => {}
                Err(mpsc::RecvTimeoutError::Timeout) if left.is_zero() => {
                    panic!(
                        "{}: no '{prefix}' line within {timeout:?}\n{}",
                        self.name,
                        self.story()
                    )
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    std::thread::sleep(Duration::from_millis(100));
                    panic!("{}: exited before '{prefix}'\n{}", self.name, self.story())
                }
            }
        }
    }

    /// Waits for the process to exit (killing it after `timeout`) and returns its exit code.
    pub fn finish(&mut self, timeout: Duration) -> i32 {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Let the reader threads drain the pipes.
                std::thread::sleep(Duration::from_millis(100));
                return status.code().unwrap_or(-1);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "{}: did not finish within {timeout:?}\n{}",
                    self.name,
                    self.story()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    pub fn lines_with(&self, prefix: &str) -> Vec<String> {
        self.lines()
            .into_iter()
            .filter(|l| l.starts_with(prefix))
            .collect()
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Everything it printed, for failure messages (buffer lines elided).
    pub fn story(&self) -> String {
        let lines = self.lines();
        let buffers = lines.iter().filter(|l| l.starts_with("BUF")).count();
        let mut s = format!("--- {} ({buffers} BUF lines) ---\n", self.name);
        for l in lines.iter().filter(|l| !l.starts_with("BUF")) {
            s.push_str(&l.chars().take(300).collect::<String>());
            s.push('\n');
        }
        s.push_str("--- stderr ---\n");
        s.push_str(&self.stderr());
        s
    }

    pub fn assert_no_panic(&self) {
        let err = self.stderr();
        assert!(
            !err.contains("panicked"),
            "{} panicked:\n{}",
            self.name,
            self.story()
        );
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Guest pipeline head playing a clip file.
pub fn play_clip(clip: &Path) -> String {
    let demuxer = if clip.extension().is_some_and(|e| e == "mp4") {
        "qtdemux"
    } else {
        "matroskademux"
    };
    format!("filesrc location={} ! {demuxer}", clip.display())
}

/// Number of open fds of a process.
pub fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Resident set size of a process, in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Runs guest and client to EOS and checks that every buffer arrived byte-identical with
/// equal timestamps, flags and offsets, and that the sticky events arrived equal.
pub fn assert_identical_stream(guest: &Peer, client: &Peer) {
    let sent = guest.lines_with("BUF");
    let received = client.lines_with("BUF");
    assert!(
        sent.len() > 10,
        "guest sent only {} buffers\n{}",
        sent.len(),
        guest.story()
    );
    assert_eq!(
        sent.len(),
        received.len(),
        "buffer count differs\n{}\n{}",
        guest.story(),
        client.story()
    );
    for (i, (s, r)) in sent.iter().zip(&received).enumerate() {
        assert_eq!(s, r, "buffer {i} differs");
    }
    for kind in [
        "EVENT caps",
        "EVENT segment",
        "EVENT stream-start",
        "EVENT eos",
    ] {
        let g = guest.lines_with(kind);
        let c = client.lines_with(kind);
        assert!(!g.is_empty(), "guest saw no {kind}");
        assert_eq!(g, c, "{kind} events differ");
    }
}
