# SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
# shellcheck shell=bash
#
# Helpers for e2e scenarios, sourced by guest.sh inside the guest.

VDISKS=/var/lib/vxhsd
VXHSD="$E2E_BUILD/server/vxhsd"
VXHSADM="$E2E_BUILD/tools/vxhsadm"
VXHS_EXPORT="$E2E_SRC/targetcli/vxhs-export"
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

# Asks the bus who owns tcmu-runner's name instead of calling it: a call
# to a name nobody owns yet makes dbus-daemon activate the distribution's
# tcmu-runner (default handler directory, no vxhs), which may then take the
# name first. The owner must be the tcmu-runner started here.
tcmu_on_bus() {
	dbus-send --system --print-reply --dest=org.freedesktop.DBus \
		/org/freedesktop/DBus \
		org.freedesktop.DBus.GetConnectionUnixProcessID \
		string:org.kernel.TCMUService1 2>/dev/null |
		grep -qw "uint32 $TCMU_PID"
}

# Debug logging (every SCSI command) unless TCMU_DEBUG=no, which
# benchmarks need: the log costs more than the I/O. Handlers from the build
# tree unless TCMU_HANDLER_PATH names another directory.
start_tcmu_runner() {
	local debug=-d
	[ "${TCMU_DEBUG:-yes}" = no ] && debug=
	mkdir -p "$E2E_WORK/tcmu-logs"
	# shellcheck disable=SC2086 # empty or one word
	tcmu-runner --handler-path "${TCMU_HANDLER_PATH:-$E2E_BUILD/handler}" \
		--tcmu-log-dir "$E2E_WORK/tcmu-logs" $debug \
		>>"$E2E_WORK/tcmu-runner.out" 2>&1 &
	TCMU_PID=$!
	wait_for "tcmu-runner on the system bus" 60 tcmu_on_bus
}

# CAW_LBA holds a decimal counter (20 digits, then zeroes) that
# caw_count DISK N adds 1 to, N times, by COMPARE AND WRITE: read it,
# compare with what was read and write one more, again on MISCOMPARE
# (another initiator won that round). Prints how often it lost a round.
CAW_LBA=6144
caw_block() { # VALUE: the counter's 512-byte block
	printf '%020d' "$1"
	head -c 492 /dev/zero
}
caw_count() {
	local done=0 lost=0 cur rc
	while [ "$done" -lt "$2" ]; do
		cur=$(dd if="$1" bs=512 skip=$CAW_LBA count=1 iflag=direct \
			status=none | head -c 20)
		{ caw_block "$((10#$cur))"; caw_block "$((10#$cur + 1))"; } >/tmp/caw
		rc=0
		sg_compare_and_write --quiet --in=/tmp/caw --lba=$CAW_LBA \
			"$1" 2>/tmp/caw.err || rc=$?
		case $rc in
		0) done=$((done + 1)) ;;
		14) lost=$((lost + 1)) ;; # MISCOMPARE
		*) fail "COMPARE AND WRITE through $1: exit $rc: $(cat /tmp/caw.err)" ;;
		esac
	done
	echo "$lost"
}

# A handler directory with both our handler and Debian's qcow handler
# (tcmu-runner's own, for comparisons); prints its path.
both_handlers_dir() {
	mkdir -p /run/both-handlers
	ln -sf "$E2E_BUILD/handler/handler_vxhs.so" /run/both-handlers/
	ln -sf /usr/lib/x86_64-linux-gnu/tcmu-runner/handler_qcow.so \
		/run/both-handlers/
	echo /run/both-handlers
}

stop_tcmu_runner() {
	kill "$TCMU_PID"
	wait "$TCMU_PID" || true
}

# start_vxhsd [OPTION...]: vxhsd on $VDISKS, its default UNIX socket and
# plaintext TCP port 9999, with any further options given.
start_vxhsd() {
	mkdir -p "$VDISKS" /run/vxhsd
	"$VXHSD" --dir "$VDISKS" --unix /run/vxhsd/vxhsd.sock --port 9999 \
		--allow-plaintext \
		--log-level info "$@" >>"$E2E_WORK/vxhsd.log" 2>&1 &
	VXHSD_PID=$!
	wait_for "vxhsd" 40 test -S /run/vxhsd/vxhsd.sock
}

# start_tls_vxhsd [OPTION...]: a second vxhsd on the same vdisks with
# TLS on port 9998, credentials from the test PKI (tests/tls/make-certs.sh)
# in /tmp/pki.
start_tls_vxhsd() {
	"$E2E_SRC/tests/tls/make-certs.sh" /tmp/pki >/dev/null
	"$VXHSD" --dir "$VDISKS" --port 9998 --tls-dir /tmp/pki/agent \
		--log-level info "$@" >>"$E2E_WORK/vxhsd-tls.log" 2>&1 &
	wait_for "vxhsd with TLS" 40 grep -q "serving" "$E2E_WORK/vxhsd-tls.log"
}

# agent_count CONTROL OPCODE: how many requests of that opcode (fault.c's
# names: flush, write-same...) the vxhsd with that control socket saw.
agent_count() {
	"$VXHSADM" fault --control "$1" counters | tr ' ' '\n' |
		sed -n "s/^$2=//p"
}

# Established TCP connections to vxhsd's port.
agent_connections() {
	ss -Htn state established '( sport = :9999 )' | wc -l
}

# The SCSI generic node of /dev/sdX: sg_xcopy finds none by itself here.
sg_node() {
	local n
	n=$(ls "/sys/block/${1#/dev/}/device/scsi_generic" 2>/dev/null)
	[ -c "/dev/$n" ] || fail "no SCSI generic node for $1"
	echo "/dev/$n"
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
	# The kernel keeps APTPL state under its db_root; without it PR OUT
	# fails with NOT READY.
	mkdir -p /etc/target/pr /etc/rtslib-fb-target/pr /var/target/pr \
		/run/dbus /var/lib/dbus
	modprobe -a configfs target_core_mod target_core_user tcm_loop \
		iscsi_target_mod sd_mod sg iscsi_tcp
	mountpoint -q /sys/kernel/config ||
		mount -t configfs configfs /sys/kernel/config
	echo /etc/target >/sys/kernel/config/target/dbroot 2>/dev/null || true
	dbus-uuidgen --ensure
	dbus-daemon --system --fork
	say "guest $E2E_ROLE up: $(uname -r), $(nproc) CPUs"
}

# Guests meet through files in the shared work directory; await waits
# 300 s, or $2 seconds.
signal() { touch "$E2E_WORK/sync.$1"; }
await() {
	for _ in $(seq $((${2:-300} * 2))); do
		[ -e "$E2E_WORK/sync.$1" ] && return 0
		[ -e "$E2E_WORK/sync.abort" ] && fail "the other guest failed"
		sleep 0.5
	done
	fail "timed out waiting for '$1' from the other guest"
}

IQN_TARGET=iqn.2026-11.test.vxhs:target
IQN_REMOTE=iqn.2026-11.test.vxhs:remote
CHAP_USER=vxhs-remote
CHAP_SECRET=e2e-chap-secret-16

start_iscsid() {
	mkdir -p /etc/iscsi /run/lock/iscsi /var/lib/iscsi
	echo "InitiatorName=$IQN_REMOTE" >/etc/iscsi/initiatorname.iscsi
	iscsid -f >>"$E2E_WORK/iscsid.log" 2>&1 &
	wait_for "iscsid" 40 iscsid_up
}

# With iscsid up, listing sessions answers 0 or 21 (none yet).
iscsid_up() {
	local rc=0
	iscsiadm -m session >/dev/null 2>&1 || rc=$?
	[ "$rc" -eq 0 ] || [ "$rc" -eq 21 ]
}

# iscsi_login SECRET: logs in to the target's LUN with CHAP.
iscsi_login() {
	local node=(-m node -T "$IQN_TARGET" -p "$TARGET_IP")
	iscsiadm "${node[@]}" --op update -n node.session.auth.authmethod -v CHAP >/dev/null
	iscsiadm "${node[@]}" --op update -n node.session.auth.username -v "$CHAP_USER" >/dev/null
	iscsiadm "${node[@]}" --op update -n node.session.auth.password -v "$1" >/dev/null
	iscsiadm "${node[@]}" --login 2>&1
}

iscsi_disk() {
	local b
	for b in /sys/block/sd*; do
		[ -e "$b" ] && readlink -f "$b" | grep -q session && {
			echo "/dev/${b##*/}"
			return 0
		}
	done
	return 1
}

# One block written or read with a raw CDB: "ok", "conflict" or the error.
scsi_try() {
	local op=$1 disk=$2 out rc=0
	if [ "$op" = write ]; then
		head -c 512 /dev/zero >/tmp/blk
		out=$(sg_raw -s 512 -i /tmp/blk "$disk" 2a 00 00 00 00 00 00 00 01 00 2>&1) || rc=$?
	else
		out=$(sg_raw -r 512 "$disk" 28 00 00 00 00 00 00 00 01 00 2>&1) || rc=$?
	fi
	if [ "$rc" = 0 ]; then
		echo ok
	elif [[ "$out" == *"Reservation Conflict"* ]]; then
		echo conflict
	else
		echo "error: $out"
	fi
}

# The pending unit attention, as sg_turs describes it.
pending_ua() {
	sg_turs -v "$1" 2>&1 || true
}

# loopback_lun SIZE [CFGSTRING]: vxhsd and tcmu-runner up, vdisk disk1 of
# SIZE as backstore disk1 (cfgstring default: disk1 on the local vxhsd),
# exported through a loopback LUN by vxhs-export: sets DISK and WWN.
loopback_lun() {
	start_vxhsd "${VXHSD_EXTRA[@]}"
	start_tcmu_runner
	"$VXHSADM" create --dir "$VDISKS" disk1 "$1"
	EXPORTED=$("$VXHS_EXPORT" add disk1 --size "$1" \
		--cfgstring "${2:-disk1}" --no-iscsi 2>&1) ||
		fail "vxhs-export add: $EXPORTED"
	found_loopback_lun
}

# Options loopback_lun gives vxhsd.
VXHSD_EXTRA=()

# iscsi_target SIZE: the network, then disk1 of SIZE exported by
# vxhs-export through loopback and over iSCSI on $TARGET_IP, to
# $IQN_REMOTE only, with CHAP.
iscsi_target() {
	net_up "$TARGET_IP"
	start_vxhsd
	start_tcmu_runner
	"$VXHSADM" create --dir "$VDISKS" disk1 "$1"
	(umask 077 && echo "$CHAP_SECRET" >/tmp/chap-secret)
	EXPORTED=$("$VXHS_EXPORT" add disk1 --size "$1" --iqn "$IQN_TARGET" \
		--portal "$TARGET_IP" --acl "$IQN_REMOTE" \
		--chap-user "$CHAP_USER" --chap-secret-file /tmp/chap-secret 2>&1) ||
		fail "vxhs-export add: $EXPORTED"
	found_loopback_lun
}

# The loopback disk that vxhs-export reported, checked against sysfs.
found_loopback_lun() {
	WWN=$(ls /sys/kernel/config/target/loopback | grep naa. | head -n1)
	wait_loopback_disk
	expect_in "vxhs-export add" "$EXPORTED" "-> $DISK"
	sg_turs "$DISK" >/dev/null 2>&1 || true # the UA of the new LUN
}

# vxhs-export remove disk1, and nothing of the export is left.
unexport_disk1() {
	local out
	out=$("$VXHS_EXPORT" remove disk1 2>&1) || fail "vxhs-export remove: $out"
	expect_in "vxhs-export remove" "$out" "removed /backstores/user:disk1"
	expect_no_exports
}

# Nothing of an export is left in LIO's configuration.
expect_no_exports() {
	local t=/sys/kernel/config/target
	expect_eq "user backstores" "$(ls -d $t/core/user_*/* 2>/dev/null | grep -v hba_)" ""
	expect_eq "loopback targets" "$(ls $t/loopback 2>/dev/null | grep naa.)" ""
	expect_eq "iSCSI targets" "$(ls $t/iscsi 2>/dev/null | grep iqn.)" ""
}
