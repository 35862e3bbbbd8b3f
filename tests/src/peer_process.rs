// SPDX-License-Identifier: MPL-2.0
//! A child process that prints one line per thing it saw (`spicepass-peer` prints one per
//! buffer, event and bus message), its stdout and stderr collected by reader threads, so
//! two-process tests can wait for a line, compare stories and explain failures.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

/// A running process and everything it printed so far. Killed when dropped.
pub struct PeerProcess {
    pub child: Child,
    pub name: String,
    lines: Arc<Mutex<Vec<String>>>,
    rx: mpsc::Receiver<String>,
    stderr: Arc<Mutex<String>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl PeerProcess {
    /// Spawns `cmd` with stdout and stderr piped (stdin as the caller set it, else
    /// /dev/null) and `GST_REGISTRY_FORK=no`.
    pub fn start(name: &str, mut cmd: Command) -> Self {
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env("GST_REGISTRY_FORK", "no");
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {name} ({:?}): {e}", cmd.get_program()));
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let l = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                lock(&l).push(line.clone());
                let _ = tx.send(line);
            }
        });
        let err = Arc::new(Mutex::new(String::new()));
        let e = err.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut e = lock(&e);
                e.push_str(&line);
                e.push('\n');
            }
        });
        Self {
            child,
            name: name.to_owned(),
            lines,
            rx,
            stderr: err,
        }
    }

    /// Waits for a new line starting with `prefix`; panics with the story on timeout or
    /// when the process exits first.
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

    /// Waits until at least `n` lines start with `prefix`.
    pub fn wait_count(&self, prefix: &str, n: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.lines_with(prefix).len() < n {
            assert!(
                Instant::now() < deadline,
                "{}: fewer than {n} '{prefix}' lines within {timeout:?}\n{}",
                self.name,
                self.story()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for the process to exit (killing it and panicking after `timeout`) and
    /// returns its exit code (-1 for a signal).
    pub fn finish(&mut self, timeout: Duration) -> i32 {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("waiting for a child") {
                // Let the reader threads drain the pipes.
                std::thread::sleep(Duration::from_millis(200));
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
        lock(&self.lines).clone()
    }

    pub fn lines_with(&self, prefix: &str) -> Vec<String> {
        self.lines()
            .into_iter()
            .filter(|l| l.starts_with(prefix))
            .collect()
    }

    pub fn stderr(&self) -> String {
        lock(&self.stderr).clone()
    }

    /// Everything it printed, for failure messages (buffer lines counted, not shown).
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
        assert!(
            !self.stderr().contains("panicked"),
            "{} panicked:\n{}",
            self.name,
            self.story()
        );
    }
}

impl Drop for PeerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
