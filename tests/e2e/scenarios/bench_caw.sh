# SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
# shellcheck shell=bash
# e2e-roles: target remote
#
# A benchmark, not a ctest (tools/bench/guest-caw.sh): COMPARE AND WRITE
# operations per second on one block of a user:vxhs LUN (the agent does
# each atomically), from one initiator (the target's loopback LUN) and
# from two at once (loopback and the remote guest over iSCSI, racing on
# the same counter), alternating in rounds. tools/bench/caw_ops.py counts
# the rounds each won and lost. Results in results.txt; TCG guests on a
# busy host: read the ratio, not the figures.

ROUNDS=${BENCH_ROUNDS:-3}
SECONDS_EACH=${BENCH_SECONDS:-10}
CAW_OPS="$E2E_SRC/tools/bench/caw_ops.py"

scenario_target() {
	local r out remote
	TCMU_DEBUG=no iscsi_target 64M
	caw_block 0 | dd of="$DISK" bs=512 seek=$CAW_LBA oflag=direct status=none
	signal target-ready
	await remote-ready
	for r in $(seq "$ROUNDS"); do
		out=$(python3 "$CAW_OPS" "$DISK" $CAW_LBA "$SECONDS_EACH") ||
			fail "caw_ops.py alone: $out"
		echo "one $r $out" | tee -a "$E2E_WORK/results.txt"
		signal "go-$r"
		out=$(python3 "$CAW_OPS" "$DISK" $CAW_LBA "$SECONDS_EACH") ||
			fail "caw_ops.py with the remote initiator: $out"
		await "done-$r"
		remote=$(cat "$E2E_WORK/remote-$r")
		echo "two $r local $out remote $remote" |
			tee -a "$E2E_WORK/results.txt"
	done
	# Every win added one: the counter is the sum of the wins.
	wins=$(grep -o 'wins=[0-9]*' "$E2E_WORK/results.txt" |
		awk -F= '{ s += $2 } END { print s }')
	cur=$(dd if="$DISK" bs=512 skip=$CAW_LBA count=1 iflag=direct \
		status=none | head -c 20)
	expect_eq "the counter" "$((10#$cur))" "$wins"
	echo "ok: results in $E2E_WORK/results.txt"
	signal target-done
}

scenario_remote() {
	local r disk
	net_up "$REMOTE_IP"
	start_iscsid
	await target-ready
	iscsiadm -m discovery -t sendtargets -p "$TARGET_IP" >/dev/null ||
		fail "discovery"
	iscsi_login "$CHAP_SECRET" >/dev/null || fail "iSCSI login"
	wait_for "the iSCSI disk" 60 iscsi_disk
	disk=$(iscsi_disk)
	signal remote-ready
	for r in $(seq "$ROUNDS"); do
		await "go-$r"
		python3 "$CAW_OPS" "$disk" $CAW_LBA "$SECONDS_EACH" \
			>"$E2E_WORK/remote-$r" || fail "caw_ops.py over iSCSI"
		signal "done-$r"
	done
	await target-done
	iscsiadm -m node -T "$IQN_TARGET" -p "$TARGET_IP" --logout >/dev/null
}
