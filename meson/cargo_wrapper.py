#!/usr/bin/env python3
"""Build the plugin crates with cargo and copy the .so files where meson expects them."""
import argparse
import os
import shutil
import subprocess
import sys

parser = argparse.ArgumentParser()
parser.add_argument("--source-root", required=True)
parser.add_argument("--build-dir", required=True)
parser.add_argument("--profile", choices=["debug", "release"], required=True)
parser.add_argument("--plugins", nargs="+", required=True)
args = parser.parse_args()

# CARGO_TARGET_DIR lets a developer (and ./x test) share cargo's cache with meson.
target_dir = os.environ.get("CARGO_TARGET_DIR") or os.path.join(args.build_dir, "target")
cmd = ["cargo", "build", "--locked", "--target-dir", target_dir,
       "--manifest-path", os.path.join(args.source_root, "Cargo.toml")]
if args.profile == "release":
    cmd.append("--release")
for plugin in args.plugins:
    cmd += ["-p", f"gst-plugin-{plugin}"]
print(" ".join(cmd), flush=True)
rc = subprocess.call(cmd, cwd=args.source_root)
if rc != 0:
    sys.exit(rc)
for plugin in args.plugins:
    name = f"libgst{plugin}.so"
    shutil.copy2(os.path.join(target_dir, args.profile, name), os.path.join(args.build_dir, name))
