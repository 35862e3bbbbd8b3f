// SPDX-License-Identifier: MPL-2.0
//! Helpers for the two-process tests: spawn `shmzero-probe` / `gst-launch-1.0` children,
//! follow their stdout line by line, signal them, and give each test a private socket dir.

#![allow(dead_code)] // each test file uses a different subset

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Generous: the machine is a loaded 2-core VM. Tests never assert on time, only use it to
/// fail instead of hanging.
pub const PATIENCE: Duration = Duration::from_secs(30);

pub fn probe() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_shmzero-probe"));
    // The probe links the plugin statically; keep the registry private anyway.
    let dir = mediapass_tests::plugin_dir();
    cmd.env("GST_REGISTRY", dir.join("mediapass-test-registry.bin"))
        .env("GST_REGISTRY_FORK", "no");
    cmd
}

pub fn gst_launch() -> Command {
    mediapass_tests::built_plugin("libgstshmzero.so");
    let mut cmd = mediapass_tests::gst_command("gst-launch-1.0");
    cmd.arg("-m");
    cmd
}

/// A private directory for one test's sockets, removed on drop.
pub struct TestDir(pub PathBuf);

impl TestDir {
    pub fn new(name: &str) -> TestDir {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "shmzero-test-{}-{}-{name}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create test dir");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        TestDir(dir)
    }

    pub fn socket(&self, name: &str) -> String {
        self.0.join(format!("{name}.sock")).display().to_string()
    }

    pub fn entries(&self) -> Vec<String> {
        sorted_entries(&self.0)
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[derive(Default)]
struct Output {
    lines: Vec<String>,
    closed: bool,
}

/// A running child whose stdout is collected line by line.
pub struct Proc {
    pub name: String,
    child: Child,
    output: Arc<(Mutex<Output>, Condvar)>,
    status: Option<ExitStatus>,
}

impl Proc {
    pub fn spawn(name: &str, mut cmd: Command) -> Proc {
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(Stdio::null());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn {name}: {e}"));
        let output: Arc<(Mutex<Output>, Condvar)> = Arc::default();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let output = output.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    let (lock, cond) = &*output;
                    lock.lock().unwrap().lines.push(line);
                    cond.notify_all();
                }
                let (lock, cond) = &*output;
                lock.lock().unwrap().closed = true;
                cond.notify_all();
            });
        }
        Proc {
            name: name.to_owned(),
            child,
            output,
            status: None,
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn lines(&self) -> Vec<String> {
        self.output.0.lock().unwrap().lines.clone()
    }

    pub fn count(&self, pred: impl Fn(&str) -> bool) -> usize {
        self.output
            .0
            .lock()
            .unwrap()
            .lines
            .iter()
            .filter(|l| pred(l))
            .count()
    }

    /// Waits until `pred` holds for the collected lines; panics with the output otherwise.
    pub fn wait_until(&self, what: &str, pred: impl Fn(&[String]) -> bool) {
        let deadline = Instant::now() + PATIENCE;
        let (lock, cond) = &*self.output;
        let mut out = lock.lock().unwrap();
        while !pred(&out.lines) {
            let now = Instant::now();
            if now >= deadline {
                panic!(
                    "{}: timed out waiting for {what}; output:\n{}",
                    self.name,
                    out.lines.join("\n")
                );
            }
            out = cond.wait_timeout(out, deadline - now).unwrap().0;
        }
    }

    pub fn wait_line(&self, what: &str, pred: impl Fn(&str) -> bool) {
        self.wait_until(what, |lines| lines.iter().any(|l| pred(l)));
    }

    /// Frames reported so far (`frame N ...` lines).
    pub fn frames(&self) -> usize {
        self.count(|l| l.starts_with("frame "))
    }

    pub fn wait_frames(&self, n: usize) {
        self.wait_until(&format!("{n} frames"), |lines| {
            lines.iter().filter(|l| l.starts_with("frame ")).count() >= n
        });
    }

    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child's pid; no memory is involved.
        unsafe {
            libc::kill(self.pid(), signal);
        }
    }

    /// Waits for the process to exit (killing it after the patience runs out) and for its
    /// output to be fully collected.
    pub fn wait(&mut self) -> ExitStatus {
        if let Some(status) = self.status {
            return status;
        }
        let deadline = Instant::now() + PATIENCE;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let status = self.child.wait().expect("wait");
                panic!(
                    "{} did not exit in {PATIENCE:?} ({status}); output:\n{}",
                    self.name,
                    self.lines().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        self.status = Some(status);
        let (lock, cond) = &*self.output;
        let mut out = lock.lock().unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !out.closed && Instant::now() < deadline {
            out = cond
                .wait_timeout(out, Duration::from_millis(100))
                .unwrap()
                .0;
        }
        status
    }

    pub fn kill9(&mut self) {
        self.signal(libc::SIGKILL);
        self.wait();
    }

    pub fn fd_count(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .map(|it| it.count())
            .unwrap_or(0)
    }

    pub fn rss_kb(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    pub fn dump(&self) -> String {
        format!("--- {} ---\n{}", self.name, self.lines().join("\n"))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// GLib criticals mean bad input reached a GStreamer API unchecked: never acceptable.
pub fn assert_no_criticals(proc_: &Proc) {
    let bad: Vec<String> = proc_
        .lines()
        .into_iter()
        .filter(|l| l.contains("-CRITICAL **") || l.contains("panicked"))
        .collect();
    assert!(bad.is_empty(), "{}: {bad:#?}", proc_.name);
}

/// `key=(type)value` or `key=value` from a line, as u64.
pub fn field(line: &str, key: &str) -> Option<u64> {
    let start = line.find(&format!("{key}="))? + key.len() + 1;
    let rest = &line[start..];
    // Skip a GStreamer type annotation such as `(guint64)`.
    let rest = match rest.strip_prefix('(') {
        Some(typed) => typed.split_once(')').map_or(rest, |(_, value)| value),
        None => rest,
    };
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok()
}

pub fn last_line_with(lines: &[String], prefix: &str) -> Option<String> {
    lines.iter().rev().find(|l| l.starts_with(prefix)).cloned()
}

/// Entries of /dev/shm, to check that nothing is left behind.
pub fn dev_shm() -> Vec<String> {
    sorted_entries(std::path::Path::new("/dev/shm"))
}

/// Names in `dir`, sorted (empty if it cannot be read).
fn sorted_entries(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|it| {
            it.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Fails if /dev/shm gained an entry that one of `pids` (our children) could have made. Other
/// jobs on the machine may add their own entries meanwhile; those are not ours to judge.
pub fn assert_no_new_shm(before: &[String], pids: &[i32]) {
    let new: Vec<String> = dev_shm()
        .into_iter()
        .filter(|name| !before.contains(name))
        .collect();
    let ours: Vec<&String> = new
        .iter()
        .filter(|name| {
            name.contains("shmzero")
                || pids.iter().any(|pid| {
                    name.split(|c: char| !c.is_ascii_digit())
                        .any(|n| n == pid.to_string())
                })
        })
        .collect();
    assert!(ours.is_empty(), "left in /dev/shm: {ours:?}");
}

pub fn exists(path: &str) -> bool {
    Path::new(path).exists()
}
