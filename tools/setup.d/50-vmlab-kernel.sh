#!/usr/bin/env bash
# ./x setup hook: build (or reuse from ~/.cache/mediapass/vmlab) the VM-lab kernel that
# tests/tests/vmlab_smoke.rs and the stateless-decoder tests boot. Cold: ~7-16 min on
# 2 cores, once per (kernel.config, linux-source, gcc); warm: well under a second.
# tools/setup.sh installs QEMU and most packages; this hook adds whatever the kernel
# build and the lab's guest-side tools still lack (idempotent).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
[ "$(id -u)" = 0 ] && SUDO=() || SUDO=(sudo)

need=(gcc make libc6-dev flex bison bc libelf-dev xz-utils perl linux-source-6.12 v4l-utils)
missing=()
for p in "${need[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "vmlab: installing ${missing[*]}" >&2
  install() { "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }
  install || { "${SUDO[@]}" apt-get update -qq && install; }
fi
command -v qemu-system-x86_64 >/dev/null || { echo "vmlab: qemu-system-x86_64 missing (tools/setup.sh installs it)" >&2; exit 1; }

kernel=$(nice -n 10 "$ROOT/tests/vmlab/build-kernel.sh")
echo "vmlab: kernel ready: $kernel" >&2
