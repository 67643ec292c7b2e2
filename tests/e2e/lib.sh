# SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
# shellcheck shell=bash
#
# Helpers for e2e scenarios, sourced by guest.sh inside the guest.

VDISKS=/var/lib/vxhsd
VXHSD="$E2E_BUILD/server/vxhsd"
VXHSADM="$E2E_BUILD/tools/vxhsadm"
TARGET_IP=10.199.0.1
REMOTE_IP=10.199.0.2

say() { printf '== %s\n' "$*"; }

fail() {
	printf 'FAIL: %s\n' "$*"
	exit 1
}

# expect_eq WHAT ACTUAL EXPECTED
expect_eq() {
	[ "$2" = "$3" ] || fail "$1: got '$2', expected '$3'"
	printf 'ok: %s = %s\n' "$1" "$3"
}

# expect_in WHAT TEXT NEEDLE
expect_in() {
	case "$2" in
	*"$3"*) printf 'ok: %s contains "%s"\n' "$1" "$3" ;;
	*) fail "$1: '$3' not in: $2" ;;
	esac
}

expect_not_in() {
	case "$2" in
	*"$3"*) fail "$1: '$3' unexpectedly in: $2" ;;
	*) printf 'ok: %s lacks "%s"\n' "$1" "$3" ;;
	esac
}

# Runs targetcli commands (one per argument) in a single targetcli start,
# which costs seconds under TCG.
tcli() {
	printf '%s\n' "$@" | targetcli 2>&1
}

wait_for() {
	local what=$1 tries=$2
	shift 2
	for _ in $(seq "$tries"); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.5
	done
	fail "timed out waiting for $what"
}

tcmu_on_bus() {
	dbus-send --system --print-reply --dest=org.kernel.TCMUService1 \
		/org/kernel/TCMUService1 \
		org.freedesktop.DBus.ObjectManager.GetManagedObjects |
		grep -q vxhs
}

start_tcmu_runner() {
	mkdir -p "$E2E_WORK/tcmu-logs"
	tcmu-runner --handler-path "$E2E_BUILD/handler" \
		--tcmu-log-dir "$E2E_WORK/tcmu-logs" -d \
		>>"$E2E_WORK/tcmu-runner.out" 2>&1 &
	TCMU_PID=$!
	wait_for "tcmu-runner on the system bus" 60 tcmu_on_bus
}

stop_tcmu_runner() {
	kill "$TCMU_PID"
	wait "$TCMU_PID" || true
}

start_vxhsd() {
	mkdir -p "$VDISKS" /run/vxhsd
	"$VXHSD" --dir "$VDISKS" --unix /run/vxhsd/vxhsd.sock --port 9999 \
		--log-level info >>"$E2E_WORK/vxhsd.log" 2>&1 &
	VXHSD_PID=$!
	wait_for "vxhsd" 40 test -S /run/vxhsd/vxhsd.sock
}

# Established TCP connections to vxhsd's port.
agent_connections() {
	ss -Htn state established '( sport = :9999 )' | wc -l
}

# The /dev/sdX of the tcm_loop LUN (the model string is generic).
loopback_disk() {
	local b
	for b in /sys/block/sd*; do
		[ -e "$b" ] || continue
		if readlink -f "$b" | grep -q tcm_loop; then
			echo "/dev/${b##*/}"
			return 0
		fi
	done
	return 1
}

wait_loopback_disk() {
	wait_for "the loopback disk" 60 loopback_disk
	DISK=$(loopback_disk)
	wait_for "$DISK" 20 test -b "$DISK"
}

net_up() {
	local ip=$1
	ip link set lo up
	modprobe virtio_net 2>/dev/null || true
	ip link set eth0 up
	ip addr add "$ip/24" dev eth0
}

guest_setup() {
	hostname "e2e-$E2E_ROLE"
	ln -sfn /proc/self/fd /dev/fd # devtmpfs lacks it; bash needs it
	ip link set lo up
	modprobe -a configfs target_core_mod target_core_user tcm_loop \
		iscsi_target_mod sd_mod sg iscsi_tcp
	mountpoint -q /sys/kernel/config ||
		mount -t configfs configfs /sys/kernel/config
	# The kernel writes APTPL state here; without them PR OUT fails.
	mkdir -p /etc/target/pr /etc/rtslib-fb-target/pr /var/target/pr \
		/run/dbus /var/lib/dbus
	dbus-uuidgen --ensure
	dbus-daemon --system --fork
	say "guest $E2E_ROLE up: $(uname -r), $(nproc) CPUs"
}
