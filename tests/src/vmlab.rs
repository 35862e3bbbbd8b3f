// SPDX-License-Identifier: MPL-2.0
//! The VM lab from Rust: run one command in a QEMU guest that has the V4L2 test
//! drivers (visl, vicodec, vim2m) and get its status, output and files back.
//!
//! The lab is `tests/vmlab/run-vm.sh` booting the kernel that `tests/vmlab/build-kernel.sh`
//! caches (`./x setup` builds it). The guest sees the host's root filesystem read-only,
//! so the command can run anything installed or built here; it writes its results into
//! directories shared read-write ([`LabCommand::rw_dir`], typically one from
//! [`Lab::scratch_dir`]).
//!
//! A test that needs the lab must fail, never skip, when the lab cannot start:
//! ```no_run
//! use mediapass_tests::vmlab::{Lab, LabCommand};
//! let lab = Lab::new().unwrap_or_else(|e| panic!("{e}"));
//! let out = lab.run(&LabCommand::new("ls").arg("/dev")).unwrap_or_else(|e| panic!("{e}"));
//! assert!(out.success(), "{}", out.describe());
//! ```

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::{plugin_dir, workspace_root};

/// What to run in the guest, and with which shares, kernel and QEMU extras.
#[derive(Debug, Clone)]
pub struct LabCommand {
    argv: Vec<OsString>,
    rw_dirs: Vec<PathBuf>,
    env: Vec<(String, String)>,
    kernel_args: Vec<String>,
    qemu_args: Vec<String>,
    icount_shift: Option<u8>,
    timeout: Duration,
}

impl LabCommand {
    /// Default hard limit for one VM run (boot included). Generous: the lab runs under
    /// TCG on a shared 2-core machine.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

    pub fn new(program: impl Into<OsString>) -> Self {
        Self {
            argv: vec![program.into()],
            rw_dirs: Vec::new(),
            env: Vec::new(),
            kernel_args: Vec::new(),
            qemu_args: Vec::new(),
            icount_shift: None,
            timeout: Self::DEFAULT_TIMEOUT,
        }
    }

    /// `bash -c SCRIPT` in the guest.
    pub fn shell(script: &str) -> Self {
        Self::new("bash").arg("-c").arg(script)
    }

    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.argv.push(arg.into());
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: Into<OsString>>(mut self, args: I) -> Self {
        self.argv.extend(args.into_iter().map(Into::into));
        self
    }

    /// Share a host directory read-write at the same path (the rest of `/` is read-only).
    pub fn rw_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.rw_dirs.push(dir.into());
        self
    }

    /// Set an environment variable in the guest.
    pub fn env(mut self, name: &str, value: impl Into<String>) -> Self {
        self.env.push((name.to_owned(), value.into()));
        self
    }

    /// Append to the guest kernel command line (e.g. `visl.keep_bitstream_buffers=1`).
    pub fn kernel_arg(mut self, arg: impl Into<String>) -> Self {
        self.kernel_args.push(arg.into());
        self
    }

    /// One extra QEMU argument, verbatim (e.g. `-device`, `virtio-serial-pci`).
    pub fn qemu_arg(mut self, arg: impl Into<String>) -> Self {
        self.qemu_args.push(arg.into());
        self
    }

    /// Single-threaded TCG with `-icount shift=N,sleep=off`: the guest clock advances by
    /// 2^N ns per emulated instruction, so CPU times measured in the guest count
    /// instructions and do not depend on the host's load (benchmarks). Slower to run.
    pub fn icount(mut self, shift: u8) -> Self {
        self.icount_shift = Some(shift);
        self
    }

    /// Hard limit for the whole VM run; past it the guest is killed and
    /// [`Lab::run`] returns [`LabError::DidNotFinish`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// What the command did inside the guest.
#[derive(Debug, Clone)]
pub struct LabOutput {
    /// The command's exit status (128 + N when killed by signal N, as the shell reports it).
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
    /// The guest's serial console: kernel messages and the lab init's progress lines.
    pub console: String,
}

impl LabOutput {
    pub fn success(&self) -> bool {
        self.status == 0
    }

    /// Everything a failing assertion should show.
    pub fn describe(&self) -> String {
        format!(
            "guest command exited with {}\n--- stdout\n{}\n--- stderr\n{}\n--- console (tail)\n{}",
            self.status,
            self.stdout,
            self.stderr,
            tail_lines(&self.console, 30)
        )
    }
}

/// Why a lab run produced no command status.
#[derive(Debug)]
pub enum LabError {
    /// QEMU or the lab kernel is missing: the machine is not set up.
    NotReady(String),
    /// The guest never reported a status: timeout, kernel panic, init failure.
    DidNotFinish {
        reason: String,
        console_tail: String,
    },
    Io(std::io::Error),
}

impl fmt::Display for LabError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LabError::NotReady(what) => write!(
                f,
                "the VM lab cannot start: {what}\n\
                 Run `./x setup` (it installs QEMU and builds the lab kernel once, ~10-16 min \
                 on 2 cores; later runs reuse ~/.cache/mediapass/vmlab), then rerun the tests."
            ),
            LabError::DidNotFinish {
                reason,
                console_tail,
            } => write!(
                f,
                "the VM lab command did not finish: {reason}\n--- guest console (tail)\n{console_tail}"
            ),
            LabError::Io(e) => write!(f, "VM lab I/O error: {e}"),
        }
    }
}

impl std::error::Error for LabError {}

impl From<std::io::Error> for LabError {
    fn from(e: std::io::Error) -> Self {
        LabError::Io(e)
    }
}

/// A ready-to-boot lab: QEMU and the kernel matching the current `kernel.config` exist.
#[derive(Debug, Clone)]
pub struct Lab {
    run_vm: PathBuf,
    kernel: PathBuf,
    scratch_root: PathBuf,
}

static RUN_COUNTER: AtomicU32 = AtomicU32::new(0);
/// Tests of one binary run in parallel threads; their VMs take turns (run-vm.sh also
/// serializes across processes, this just keeps the waiting out of its timeouts).
static ONE_VM_AT_A_TIME: Mutex<()> = Mutex::new(());

impl Lab {
    /// Finds QEMU and the cached kernel for the current `tests/vmlab/kernel.config`
    /// (`VMLAB_KERNEL` overrides the kernel). Never builds anything.
    pub fn new() -> Result<Self, LabError> {
        let kernel = match std::env::var_os("VMLAB_KERNEL") {
            Some(k) => PathBuf::from(k),
            None => expected_kernel_path()?,
        };
        Self::with_kernel(kernel)
    }

    /// A lab booting the given bzImage.
    pub fn with_kernel(kernel: impl Into<PathBuf>) -> Result<Self, LabError> {
        let kernel = kernel.into();
        let run_vm = lab_dir().join("run-vm.sh");
        if !run_vm.is_file() {
            return Err(LabError::NotReady(format!(
                "{} is missing",
                run_vm.display()
            )));
        }
        if !in_path("qemu-system-x86_64") {
            return Err(LabError::NotReady(
                "qemu-system-x86_64 is not installed".into(),
            ));
        }
        if !kernel.is_file() {
            return Err(LabError::NotReady(format!(
                "no lab kernel at {} (the kernel is built for the current tests/vmlab/kernel.config, \
                 linux-source and gcc; one of them changed or it was never built)",
                kernel.display()
            )));
        }
        Ok(Self {
            run_vm,
            kernel,
            scratch_root: plugin_dir().join("vmlab"),
        })
    }

    pub fn kernel(&self) -> &Path {
        &self.kernel
    }

    /// A fresh, empty directory under the build's target dir, to share read-write.
    pub fn scratch_dir(&self, name: &str) -> std::io::Result<PathBuf> {
        let dir = self.scratch_root.join(name);
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        std::fs::create_dir_all(&dir)?;
        Ok(dir)
    }

    /// Boots the guest, runs the command, powers off. `Ok` whenever the command ran to its
    /// end, whatever its status; `Err` when it could not start or never reported back.
    pub fn run(&self, cmd: &LabCommand) -> Result<LabOutput, LabError> {
        for dir in &cmd.rw_dirs {
            if !dir.is_dir() {
                return Err(LabError::Io(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("read-write share {} is not a directory", dir.display()),
                )));
            }
        }
        let n = RUN_COUNTER.fetch_add(1, Ordering::Relaxed);
        let exchange = self.scratch_dir(&format!("exchange-{}-{n}", std::process::id()))?;
        let secs = cmd.timeout.as_secs().max(1);

        let mut run = Command::new(&self.run_vm);
        run.arg("-k")
            .arg(&self.kernel)
            .arg("-o")
            .arg(&exchange)
            .arg("-t")
            .arg(secs.to_string());
        for dir in &cmd.rw_dirs {
            run.arg("-w").arg(dir);
        }
        for (name, value) in &cmd.env {
            run.arg("-e").arg(format!("{name}={value}"));
        }
        for arg in &cmd.kernel_args {
            run.arg("-a").arg(arg);
        }
        for arg in &cmd.qemu_args {
            run.arg("-Q").arg(arg);
        }
        if let Some(shift) = cmd.icount_shift {
            run.arg("--icount").arg(shift.to_string());
        }
        run.arg("--").args(&cmd.argv);
        // Same plugin view as `gst_command`, with a registry private to the lab: the host
        // warms it (fast) and the guest works on a copy.
        let dir = plugin_dir();
        run.env("GST_PLUGIN_PATH", &dir)
            .env("GST_REGISTRY", dir.join("mediapass-vmlab-registry.bin"))
            .env("GST_REGISTRY_FORK", "no")
            .env_remove("GST_PLUGIN_PATH_1_0")
            .env_remove("VMLAB_QEMU_ARGS")
            .env_remove("VMLAB_APPEND");

        let result = {
            let _turn = ONE_VM_AT_A_TIME
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            run.output()?
        };
        let read = |name: &str| std::fs::read_to_string(exchange.join(name)).unwrap_or_default();
        let console = read("console.log");
        let status = read("exit-status");
        if let Ok(status) = status.trim().parse::<i32>() {
            let output = LabOutput {
                status,
                stdout: read("stdout"),
                stderr: read("stderr"),
                console,
            };
            let _ = std::fs::remove_dir_all(&exchange);
            return Ok(output);
        }
        let runner_stderr = String::from_utf8_lossy(&result.stderr).into_owned();
        if result.status.code() == Some(2) {
            return Err(LabError::NotReady(runner_stderr.trim().to_owned()));
        }
        let reason = match read("vmlab-error").trim() {
            "" => format!("run-vm.sh exited with {}: {runner_stderr}", result.status),
            reason => reason.to_owned(),
        };
        // The exchange dir stays for a post-mortem (console.log, stdout, stderr, cmd.sh).
        let reason = format!("{reason} (files kept in {})", exchange.display());
        Err(LabError::DidNotFinish {
            reason,
            console_tail: tail_lines(&console, 30),
        })
    }
}

/// `tests/vmlab/` in the workspace.
pub fn lab_dir() -> PathBuf {
    workspace_root().join("tests").join("vmlab")
}

fn expected_kernel_path() -> Result<PathBuf, LabError> {
    let script = lab_dir().join("build-kernel.sh");
    let out = Command::new(&script)
        .arg("--print-path")
        .output()
        .map_err(|e| LabError::NotReady(format!("cannot run {}: {e}", script.display())))?;
    if !out.status.success() {
        return Err(LabError::NotReady(
            String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        ));
    }
    Ok(PathBuf::from(
        String::from_utf8_lossy(&out.stdout).trim().to_owned(),
    ))
}

fn in_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|p| p.join(program).is_file()))
}

fn tail_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_kernel_names_the_setup_command() {
        let err = Lab::with_kernel("/nonexistent/bzImage").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("./x setup"), "{text}");
        assert!(matches!(err, LabError::NotReady(_)), "{err:?}");
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        assert_eq!(tail_lines("a\nb\nc\n", 2), "b\nc");
        assert_eq!(tail_lines("a", 5), "a");
        assert_eq!(tail_lines("", 5), "");
    }
}
