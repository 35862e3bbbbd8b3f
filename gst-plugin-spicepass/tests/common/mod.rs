// SPDX-License-Identifier: MPL-2.0
//! Two-process harness: `spicepass-peer` guest and client processes, their stdout collected
//! line by line, clips made at test time with real encoders.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

pub use mediapass_tests::peer_process::PeerProcess;

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

/// A running `spicepass-peer` and everything it printed so far (killed when dropped).
pub type Peer = PeerProcess;

/// `Peer::spawn(name, args)`: runs `spicepass-peer ARGS` (stdin /dev/null).
pub trait SpawnPeer {
    fn spawn(name: &str, args: &[&str]) -> Peer {
        Self::spawn_with(name, args, |_| {})
    }
    /// The same, with `tweak` applied to the command first (environment, stdin).
    fn spawn_with(name: &str, args: &[&str], tweak: impl FnOnce(&mut Command)) -> Peer;
}

impl SpawnPeer for Peer {
    fn spawn_with(name: &str, args: &[&str], tweak: impl FnOnce(&mut Command)) -> Peer {
        let mut cmd = Command::new(PEER);
        cmd.args(args).stdin(Stdio::null());
        tweak(&mut cmd);
        PeerProcess::start(name, cmd)
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
