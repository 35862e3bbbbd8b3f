#!/usr/bin/env bash
# ./x setup hook: the SPICE server in QEMU (-spice, -chardev spiceport) for
# tests/tests/spicepass_spice_port.rs. Debian ships it as a separate QEMU module package
# that must come from the same suite as qemu-system-x86 (bookworm-backports on these
# machines). Idempotent.
set -euo pipefail
[ "$(id -u)" = 0 ] && SUDO=() || SUDO=(sudo)

# `-spice help` exits 1 even when it works: look at what it prints.
has_spice() { local help; help=$(qemu-system-x86_64 -spice help 2>&1 || true); [[ $help == 'spice options'* ]]; }
if has_spice; then
  exit 0
fi
opts=()
qemu_version=$(dpkg-query -W -f='${Version}' qemu-system-x86 2>/dev/null || true)
case $qemu_version in *bpo*) opts=(-t bookworm-backports) ;; esac
echo "spice: installing qemu-system-modules-spice ${opts[*]}" >&2
install() { "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${opts[@]}" qemu-system-modules-spice >/dev/null; }
install || { "${SUDO[@]}" apt-get update -qq && install; }
has_spice || { echo "spice: QEMU still has no -spice after installing qemu-system-modules-spice" >&2; exit 1; }
