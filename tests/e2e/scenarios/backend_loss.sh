# SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
# shellcheck shell=bash
# e2e-roles: target
#
# Scenario 8: the only agent stops. Commands wait failover_timeout, then
# end with NOT READY, LOGICAL UNIT COMMUNICATION FAILURE (never a media
# error), new ones at once; the handler reports the connection lost and
# logs a bounded number of lines while the agent stays away; its own
# reconnect thread reopens the vdisk once the agent is back (tcmu-runner
# 1.5.4 does not for a LUN with only a loopback port), and I/O resumes with
# the data intact.

FAILOVER_S=3

# ms since the epoch
ms() { echo $(($(date +%s%N) / 1000000)); }

# read_once: one raw READ (no retries by the kernel); prints sg_raw's words.
read_once() {
	sg_raw -r 512 "$DISK" 28 00 00 00 20 00 00 00 01 00 2>&1 || true
}

scenario_target() {
	loopback_lun 32M "disk1@127.0.0.1;plaintext;failover_timeout=$FAILOVER_S;io_timeout=2;connect_timeout=1"
	head -c 4M /dev/urandom >/tmp/pattern
	dd if=/tmp/pattern of="$DISK" bs=1M seek=4 oflag=direct status=none
	sync
	grep -q "commands end with LOGICAL UNIT COMMUNICATION FAILURE after $FAILOVER_S s" \
		"$E2E_WORK"/tcmu-logs/tcmu-runner.log ||
		fail "the handler did not log what an outage does to commands"
	echo "ok: the outage policy is in tcmu-runner's log"

	say "stopping the only agent"
	kill -KILL "$VXHSD_PID"
	wait "$VXHSD_PID" 2>/dev/null || true
	lines0=$(wc -l <"$E2E_WORK"/tcmu-logs/tcmu-runner.log)
	t0=$(ms)
	out=$(read_once)
	took=$(($(ms) - t0))
	expect_in "READ while no agent" "$out" "Not Ready"
	expect_in "READ while no agent" "$out" "Logical unit communication failure"
	expect_not_in "READ while no agent" "$out" "Medium Error"
	# At failover_timeout: not before it, and not at the kernel's 30 s.
	[ "$took" -ge $((FAILOVER_S * 1000 - 500)) ] && [ "$took" -lt 20000 ] ||
		fail "the first READ ended after $took ms, not after ${FAILOVER_S} s"
	echo "ok: the first READ ended after $took ms (failover_timeout ${FAILOVER_S} s)"
	t0=$(ms)
	out=$(read_once)
	took=$(($(ms) - t0))
	expect_in "a later READ" "$out" "Logical unit communication failure"
	[ "$took" -lt 2000 ] || fail "a later READ waited $took ms"
	echo "ok: a later READ ends at once ($took ms)"
	# Through the block layer: an I/O error, not minutes of retries.
	t0=$(ms)
	if dd if="$DISK" of=/dev/null bs=4k count=1 iflag=direct status=none 2>/dev/null; then
		fail "a read succeeded with no agent"
	fi
	took=$(($(ms) - t0))
	[ "$took" -lt 10000 ] || fail "dd took $took ms to see the error"
	echo "ok: dd gets an I/O error in $took ms"
	grep -q "until the vdisk is reopened" "$E2E_WORK"/tcmu-logs/tcmu-runner.log ||
		fail "the handler did not report the lost agent"
	echo "ok: the handler reported the lost agent to tcmu-runner"
	# Ten more seconds without an agent add a bounded number of lines at
	# tcmu-runner's default level (this rig logs debug lines too): the
	# loss, the failed reopen, a line per command that failed.
	sleep 10
	lines=$(tail -n +$((lines0 + 1)) "$E2E_WORK"/tcmu-logs/tcmu-runner.log |
		grep -vc '\[DEBUG' || true)
	[ "$lines" -le 20 ] ||
		fail "$lines log lines in about 15 s without an agent"
	echo "ok: $lines log lines (info and above) in about 15 s without an agent"

	say "starting the agent again"
	start_vxhsd
	wait_for "the LUN to answer again" 60 \
		sg_raw -r 512 "$DISK" 28 00 00 00 20 00 00 00 01 00
	grep -q "vdisk disk1 reconnected by the handler" \
		"$E2E_WORK"/tcmu-logs/tcmu-runner.log ||
		fail "no reconnect by the handler in tcmu-runner.log"
	echo "ok: the handler's reconnect thread reopened the vdisk"
	dd if="$DISK" of=/tmp/back bs=1M skip=4 count=4 iflag=direct status=none
	cmp /tmp/pattern /tmp/back || fail "data changed across the outage"
	echo "ok: the data written before the outage is intact"
	dd if=/tmp/pattern of="$DISK" bs=1M seek=12 oflag=direct status=none
	echo "ok: writes work again"
}
