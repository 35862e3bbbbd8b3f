#!/bin/sh
# Runs INSIDE the lab guest: record visl's trace events (one per stateless control
# struct per decoded frame) while COMMAND runs, and save the trace text to OUT.
#   usage: visl-trace.sh OUT COMMAND [ARGS...]      exit status: COMMAND's
# Parse OUT with mediapass_tests::visl_trace::parse.
set -u
out=${1:?usage: visl-trace.sh OUT COMMAND [ARGS...]}
shift
T=/sys/kernel/tracing
[ -d $T/events ] || { echo "visl-trace.sh: no tracefs at $T (not in the lab guest?)" >&2; exit 125; }
echo 0 >$T/tracing_on
# Per-CPU ring buffer; VP9's probability tables take ~8 KB of text per frame.
echo 8192 >$T/buffer_size_kb
: >$T/trace
for e in "$T"/events/visl_*; do echo 1 >"$e/enable"; done
echo 1 >$T/tracing_on
"$@"
rc=$?
echo 0 >$T/tracing_on
cat $T/trace >"$out"
for e in "$T"/events/visl_*; do echo 0 >"$e/enable"; done
exit $rc
