#!/usr/bin/env bash
# Idempotent machine setup for mediapass (Debian 12 / Ubuntu, as root or with sudo).
# Installs GStreamer dev + runtime packages, the build tools, the kernel uAPI headers
# v4l2r needs (>= 6.5, from bookworm-backports, unpacked under a cache dir, never
# installed over the system headers), and the VM-lab tools. Safe to run repeatedly.
set -euo pipefail
log() { echo "setup: $*" >&2; }
[ "$(id -u)" = 0 ] && SUDO=() || SUDO=(sudo)
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/mediapass

PKGS=(
  pkg-config libglib2.0-dev
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libgstreamer-plugins-bad1.0-dev
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad gstreamer1.0-libav
  libclang-dev clang meson ninja-build
  # VM lab: kernel build and QEMU
  linux-source-6.12 flex bison bc libelf-dev xz-utils v4l-utils perl
  # test-stream generators and oracles
  vpx-tools ffmpeg x264
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

# bookworm-backports carries linux-libc-dev 6.12 (uAPI headers with the V4L2 AV1 controls v4l2r binds).
BACKPORTS=/etc/apt/sources.list.d/mediapass-backports.sources
if . /etc/os-release && [ "${VERSION_CODENAME:-}" = bookworm ] && [ ! -f "$BACKPORTS" ]; then
  log "adding bookworm-backports (used only for 'apt-get download linux-libc-dev')"
  printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
    | "${SUDO[@]}" tee "$BACKPORTS" >/dev/null
  need_update=1
fi

UAPI_DIR=$CACHE/uapi
if [ ${#missing[@]} -gt 0 ] || [ -n "${need_update:-}" ] || [ ! -f "$UAPI_DIR/usr/include/linux/videodev2.h" ]; then
  log "apt-get update"
  "${SUDO[@]}" apt-get update -qq
fi
if [ ${#missing[@]} -gt 0 ]; then
  log "installing: ${missing[*]}"
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# QEMU: machines of this kind ship qemu-utils from bookworm-backports, whose Breaks forbid
# bookworm's own qemu-system; take qemu-system-x86 from the same suite as qemu-utils then.
if ! dpkg-query -W -f='${Status}' qemu-system-x86 2>/dev/null | grep -q 'install ok installed'; then
  qemu_opts=()
  dpkg-query -W -f='${Version}' qemu-utils 2>/dev/null | grep -q bpo && qemu_opts=(-t bookworm-backports)
  log "installing qemu-system-x86 ${qemu_opts[*]}"
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${qemu_opts[@]}" qemu-system-x86 >/dev/null
fi

if [ ! -f "$UAPI_DIR/usr/include/linux/videodev2.h" ]; then
  log "fetching linux-libc-dev from backports into $UAPI_DIR"
  tmp=$(mktemp -d)
  (cd "$tmp" && apt-get download -qq -t bookworm-backports linux-libc-dev >/dev/null 2>&1 || apt-get download -qq linux-libc-dev)
  rm -rf "$UAPI_DIR"; mkdir -p "$UAPI_DIR"
  dpkg -x "$tmp"/linux-libc-dev_*.deb "$UAPI_DIR"
  rm -rf "$tmp"
  grep -q V4L2_CID_STATELESS_AV1_SEQUENCE "$UAPI_DIR/usr/include/linux/v4l2-controls.h" \
    || { log "linux-libc-dev in $UAPI_DIR is too old for v4l2r (no AV1 controls)"; exit 1; }
fi

# Rust toolchain pieces (the machine's rustup toolchain; components only).
if command -v rustup >/dev/null; then
  rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy rustfmt >/dev/null 2>&1 || true
fi
log "ok"
