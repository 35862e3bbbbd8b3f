// SPDX-License-Identifier: MPL-2.0
//! Helpers shared by mediapass's integration tests.
//!
//! The tests drive the *built* plugins the way users do: `gst-inspect-1.0` and
//! `gst-launch-1.0` subprocesses with `GST_PLUGIN_PATH` pointing at cargo's
//! output directory, and a private registry so nothing leaks between runs.

pub mod fluster;
pub mod fwht;
pub mod inspect;
pub mod measure;
pub mod mpeg2_fields;
pub mod v4l2stateless;
pub mod visl_differential;
pub mod visl_trace;
pub mod vmlab;

use std::path::{Path, PathBuf};
use std::process::Command;

/// Plugins of the workspace: (plugin name as GStreamer knows it, shared object file name).
pub const PLUGINS: &[(&str, &str)] = &[
    ("spicepass", "libgstspicepass.so"),
    ("shmzero", "libgstshmzero.so"),
    ("v4l2stateless", "libgstv4l2stateless.so"),
];

/// The workspace root (the folder holding the top-level `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests crate lives in the workspace root")
        .to_path_buf()
}

/// Where cargo put the plugin `.so` files for this build.
///
/// `MEDIAPASS_PLUGIN_DIR` overrides it (e.g. a meson install prefix); otherwise
/// it is the profile directory holding the running test binary (`target/<profile>/deps/..`).
pub fn plugin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("MEDIAPASS_PLUGIN_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("test binary path");
    let deps = exe.parent().expect("binary has a parent dir");
    let profile = if deps.ends_with("deps") {
        deps.parent().expect("deps has a parent")
    } else {
        deps
    };
    profile.to_path_buf()
}

/// A `Command` for a GStreamer tool that sees only our built plugins besides the system ones,
/// with a registry private to this build so stale entries never hide a failure.
pub fn gst_command(tool: &str) -> Command {
    let dir = plugin_dir();
    let mut cmd = Command::new(tool);
    cmd.env("GST_PLUGIN_PATH", &dir)
        .env("GST_REGISTRY", dir.join("mediapass-test-registry.bin"))
        .env("GST_REGISTRY_FORK", "no")
        .env_remove("GST_PLUGIN_PATH_1_0")
        .env("PAGER", "cat")
        .env("GST_INSPECT_NO_COLORS", "1");
    cmd
}

/// Path of a built plugin, with a clear message when it is missing.
pub fn built_plugin(file: &str) -> PathBuf {
    let path = plugin_dir().join(file);
    assert!(
        path.is_file(),
        "{} is not built: run `cargo build --workspace` (or `./x test`) first",
        path.display()
    );
    path
}
