#!/usr/bin/env bash
# ./x setup hook: build (or reuse from ~/.cache/mediapass/vmlab) the VM-lab kernel that
# tests/tests/vmlab_smoke.rs and the stateless-decoder tests boot. Cold: ~8-16 min on
# 2 cores, once per (kernel.config, linux-source, gcc); warm: well under a second.
# Packages (linux-source-6.12, flex, bison, bc, libelf-dev, qemu-system-x86) come
# from tools/setup.sh.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
kernel=$(nice -n 10 "$ROOT/tests/vmlab/build-kernel.sh")
echo "vmlab: kernel ready: $kernel" >&2
