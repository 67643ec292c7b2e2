# SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
# shellcheck shell=bash
# e2e-roles: target remote
#
# A benchmark, not a ctest (tools/bench/guest-failover.sh): the two
# gateways of gateway_pair behind dm-multipath.
# - Steady state: fio 4 KiB random writes at QD 16 through the multipath
#   device against the same through gw1's path alone, alternating in
#   rounds.
# - Failover: fio writes 4 KiB at QD 1 through the multipath device,
#   logging every completion, while the gateway holding the lock has its
#   TPG disabled, then enabled again and its path reinstated, FAILOVERS
#   times. Each failover's time is the gap in completions around it (the
#   last I/O on the old gateway to the first on the new one); the time
#   the lock took to move is measured too.
# Results in results.txt; TCG guests on a busy host: read the ratios.

. "$E2E_SRC/tests/e2e/pair.sh"

ROUNDS=${BENCH_ROUNDS:-3}
FAILOVERS=${BENCH_FAILOVERS:-10}

steady() { # DEVICE -> IOPS
	fio --name=steady --filename="$1" --rw=randwrite --bs=4k --iodepth=16 \
		--ioengine=libaio --direct=1 --time_based --runtime=8 \
		--size=32M --output-format=json |
		python3 -c 'import json, sys
print(int(json.load(sys.stdin)["jobs"][0]["write"]["iops"]))'
}

now_ms() { echo $(($(date +%s%N) / 1000000)); }

scenario_target() {
	local holder other t0 t1 pid i
	pair_target_up
	pair_multipath
	for round in $(seq "$ROUNDS"); do
		echo "steady multipath $round $(steady "$MAP")" |
			tee -a "$E2E_WORK/results.txt"
		echo "steady single $round $(steady "$D1")" |
			tee -a "$E2E_WORK/results.txt"
	done

	fio --name=fo --filename="$MAP" --rw=randwrite --bs=4k --iodepth=1 \
		--ioengine=libaio --direct=1 --time_based --runtime=3600 \
		--size=32M --write_lat_log="$E2E_WORK/fo" --log_avg_msec=0 \
		--output="$E2E_WORK/fio-fo.txt" &
	pid=$!
	sleep 5
	for i in $(seq "$FAILOVERS"); do
		holder=$(lock_holder)
		[ -n "$holder" ] || fail "nobody holds the lock before failover $i"
		other=$([ "$holder" = gw1 ] && echo gw2 || echo gw1)
		t0=$(now_ms)
		set_tpg "$holder" 0
		wait_for "the lock on $other" 600 \
			sh -c "\"$VXHSADM\" lock ha | grep -q 'held by $other'"
		t1=$(now_ms)
		echo "failover $i $holder-$other lock_moved_ms $((t1 - t0))" |
			tee -a "$E2E_WORK/results.txt"
		sleep 3
		set_tpg "$holder" 1
		pair_reinstate "$holder"
		sleep 3
	done
	kill -INT "$pid"
	wait "$pid" || true
	grep -q "err= 0" "$E2E_WORK/fio-fo.txt" ||
		fail "fio saw errors across the failovers: $(cat "$E2E_WORK/fio-fo.txt")"
	# The FAILOVERS longest gaps between completions.
	awk -F, '{ print $1 }' "$E2E_WORK"/fo_lat.1.log | sort -n |
		awk 'NR > 1 { print $1 - prev } { prev = $1 }' | sort -n |
		tail -n "$FAILOVERS" | awk '{ print "gap " NR " io_gap_ms " $1 }' |
		tee -a "$E2E_WORK/results.txt"
	echo "ok: results in $E2E_WORK/results.txt"
	iscsiadm -m node -T "$IQN_HA" --logout >/dev/null 2>&1 || true
	signal target-done
}

scenario_remote() {
	pair_remote_serve
}
