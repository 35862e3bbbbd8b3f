#!/bin/sh
# PID 1 of the VM-lab guest (run-vm.sh passes it as init=). The root filesystem is the
# host's, shared read-only over 9p. The exchange share "vmlab_exchange" (mounted at
# /run/vmlab) carries the command in (cmd.sh, rw-dirs) and its results out (stdout,
# stderr, exit-status). There is no udev and no service manager: only this script.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
say() { echo "vmlab-init: [$(cut -d' ' -f1 /proc/uptime)s] $*" >/dev/console; }
NINEP=trans=virtio,version=9p2000.L,msize=512000

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mountpoint -q /dev || mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm 2>/dev/null
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs -o mode=0755 tmpfs /run
mount -t debugfs debugfs /sys/kernel/debug
mount -t tracefs tracefs /sys/kernel/tracing
# Writable views of the host's scratch dirs: host content stays visible (e.g. caches),
# guest writes stay in guest RAM.
for d in /tmp /var/tmp /root; do
    [ -d "$d" ] || continue
    n=$(echo "$d" | tr / _)
    mkdir -p "/run/overlay/$n/upper" "/run/overlay/$n/work"
    mount -t overlay overlay -o "lowerdir=$d,upperdir=/run/overlay/$n/upper,workdir=/run/overlay/$n/work" "$d" ||
        mount -t tmpfs -o mode=1777 tmpfs "$d"
done
mkdir -p /run/vmlab
if ! mount -t 9p -o "$NINEP" vmlab_exchange /run/vmlab; then
    say "cannot mount the exchange share; powering off"
    perl -e 'syscall(169, 0xfee1dead, 672274793, 0x1234567)'
fi
# Read-write host directories (run-vm.sh -w), mounted at their host paths in listed order.
i=0
while IFS= read -r d; do
    [ -n "$d" ] || continue
    mount -t 9p -o "$NINEP" "vmlab_rw$i" "$d" || say "cannot mount $d read-write"
    i=$((i + 1))
done </run/vmlab/rw-dirs
# What udev would do: /dev/virtio-ports/NAME for each named virtio-serial port
# (run-vm.sh -q '... -device virtserialport,chardev=c0,name=NAME').
for p in /sys/class/virtio-ports/*; do
    [ -r "$p/name" ] || continue
    read -r name <"$p/name" || continue
    [ -n "$name" ] || continue
    mkdir -p /dev/virtio-ports
    ln -sf "../${p##*/}" "/dev/virtio-ports/$name"
done
hostname vmlab
say "init done, running the command"
/bin/bash /run/vmlab/cmd.sh </dev/null >/run/vmlab/stdout 2>/run/vmlab/stderr
rc=$?
# exit-status is written last and renamed into place: its presence means "the command finished".
echo "$rc" >/run/vmlab/exit-status.tmp && mv /run/vmlab/exit-status.tmp /run/vmlab/exit-status
say "command exited with status $rc"
sync
# reboot(2) with LINUX_REBOOT_CMD_RESTART: QEMU runs with -no-reboot, so it exits. Works
# with or without ACPI and needs no tool beyond perl (169 = SYS_reboot on x86-64).
perl -e 'syscall(169, 0xfee1dead, 672274793, 0x1234567)'
# Not reached; if it were, PID 1 exiting panics and panic=-1 reboots at once.
exit "$rc"
