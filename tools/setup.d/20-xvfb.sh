#!/usr/bin/env bash
# ./x setup hook: a headless X server and GStreamer's X sinks for the spicepass window
# geometry test (gst-plugin-spicepass/tests/window_geometry.rs runs ximagesink under
# Xvfb). Idempotent.
set -euo pipefail
[ "$(id -u)" = 0 ] && SUDO=() || SUDO=(sudo)

missing=()
command -v Xvfb >/dev/null || missing+=(xvfb)
gst-inspect-1.0 ximagesink >/dev/null 2>&1 || missing+=(gstreamer1.0-x)
[ ${#missing[@]} = 0 ] && exit 0
echo "xvfb: installing ${missing[*]}" >&2
install() { "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }
install || { "${SUDO[@]}" apt-get update -qq && install; }
command -v Xvfb >/dev/null || { echo "xvfb: Xvfb still missing" >&2; exit 1; }
gst-inspect-1.0 ximagesink >/dev/null 2>&1 || { echo "xvfb: ximagesink still missing" >&2; exit 1; }
