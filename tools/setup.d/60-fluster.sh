#!/usr/bin/env bash
# ./x setup hook: Fluster (PyPI fluster-conformance), the decoder conformance runner that
# tools/fluster/mediapass-fluster drives, in a private venv under ~/.cache/mediapass.
# Pinned; idempotent (a marker file names the installed version; a half-made venv is
# replaced, never reused).
set -euo pipefail
[ "$(id -u)" = 0 ] && SUDO=() || SUDO=(sudo)
VERSION=0.8.0
venv="${XDG_CACHE_HOME:-$HOME/.cache}/mediapass/fluster-venv"
marker="$venv/.mediapass-fluster-$VERSION"
[ -e "$marker" ] && exit 0

# Debian's python3 makes venvs only with python3-venv (ensurepip).
if ! /usr/bin/python3 -c 'import ensurepip, venv' 2>/dev/null; then
  echo "fluster: installing python3-venv" >&2
  install() { "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >/dev/null; }
  install || { "${SUDO[@]}" apt-get update -qq && install; }
fi
echo "fluster: installing fluster-conformance==$VERSION into $venv" >&2
rm -rf "$venv"
mkdir -p "$(dirname "$venv")"
/usr/bin/python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check --no-input "fluster-conformance==$VERSION"
"$venv/bin/python" -c 'import fluster.main'
touch "$marker"
