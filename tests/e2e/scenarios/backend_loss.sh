# SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
# shellcheck shell=bash
# e2e-roles: target
#
# Scenario 8: the only agent stops. Commands get BUSY (never a data error),
# the handler reports the connection lost, its own reconnect thread reopens
# the vdisk once the agent is back (tcmu-runner 1.5.4 does not for a LUN
# with only a loopback port), and I/O resumes with the data intact.

scenario_target() {
	loopback_lun 32M "disk1@127.0.0.1;plaintext;failover_timeout=3;io_timeout=2;connect_timeout=1"
	head -c 4M /dev/urandom >/tmp/pattern
	dd if=/tmp/pattern of="$DISK" bs=1M seek=4 oflag=direct status=none
	sync

	say "stopping the only agent"
	kill -KILL "$VXHSD_PID"
	wait "$VXHSD_PID" 2>/dev/null || true
	# Raw READs, no retries by the kernel: what does the initiator see?
	statuses=()
	for _ in $(seq 3); do
		out=$(sg_raw -r 512 "$DISK" 28 00 00 00 20 00 00 00 01 00 2>&1 || true)
		if [[ "$out" == *"SCSI Status:"* ]]; then
			statuses+=("$(sed -n 's/.*SCSI Status: \([A-Za-z ]*\).*/\1/p' <<<"$out" | head -n1)")
			[[ "$out" == *"Sense key"* ]] && statuses+=("sense: $(grep -o 'Sense key: [A-Za-z ]*' <<<"$out")")
		else
			statuses+=("Good")
		fi
		sleep 1
	done
	printf 'status while the agent is down: %s\n' "${statuses[@]}" | sort | uniq -c
	all="${statuses[*]}"
	expect_in "statuses" "$all" "Busy"
	expect_not_in "statuses" "$all" "Medium Error"
	expect_not_in "statuses" "$all" "Hardware Error"
	grep -q "until the vdisk is reopened" "$E2E_WORK"/tcmu-logs/tcmu-runner.log ||
		fail "the handler did not report the lost agent"
	echo "ok: the handler reported the lost agent to tcmu-runner"

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
