# SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
# shellcheck shell=bash
# e2e-roles: target
#
# Benchmark (not a test; tools/bench/guest-profile.sh runs it): where the
# guest's CPU goes per I/O, thread by thread, for fio on user:qcow and on
# user:vxhs over UNIX (local I/O), over UNIX through the agent and over
# TCP, the LUNs and set-up of bench_fio. One run of each job on each
# backstore, tools/bench/thread_cpu.py snapshots around it; "job backstore
# iops group us-per-io" lines go to results.txt, and "[vxhsd on-loop %]":
# the share of the requests vxhsd saw that its network threads ran.

# shellcheck source=tests/e2e/scenarios/bench_fio.sh
. "$E2E_SRC/tests/e2e/scenarios/bench_fio.sh"
SECS=10
PROFILED="qcow vxhs-unix vxhs-unix-nolocal vxhs-tcp"
JOBS="4k-randread-qd1 randread 4k 1
4k-randread-qd32 randread 4k 32
4k-randwrite-qd32 randwrite 4k 32
1m-read-qd8 read 1m 8
1m-write-qd8 write 1m 8"

scenario_target() {
	local cpu="$E2E_SRC/tools/bench/thread_cpu.py" names b i iops
	local ctl=/run/vxhsd/bench.ctl seen loop
	local -A lun
	start_vxhsd --control "$ctl"
	start_tls_vxhsd
	TCMU_DEBUG=no TCMU_HANDLER_PATH=$(both_handlers_dir) start_tcmu_runner
	setup_backstores
	read -ra names <<<"$BACKSTORES"
	for i in "${!names[@]}"; do lun[${names[$i]}]=$i; done
	while read -r name rw bs qd; do
		for b in $PROFILED; do
			i=${lun[$b]}
			seen=$(($(agent_count $ctl read) + $(agent_count $ctl write)))
			loop=$(agent_count $ctl on-loop)
			python3 "$cpu" snap "$E2E_WORK/before.json"
			iops=$(run_fio "$(lun_disk "$i")" "$rw" "$bs" "$qd")
			python3 "$cpu" snap "$E2E_WORK/after.json"
			seen=$(($(agent_count $ctl read) + $(agent_count $ctl write) - seen))
			loop=$(($(agent_count $ctl on-loop) - loop))
			if [ "$seen" -gt 0 ]; then
				echo "$name $b $iops [vxhsd_on-loop_%] $((loop * 100 / seen))" |
					tee -a "$E2E_WORK/results.txt"
			fi
			python3 "$cpu" diff "$E2E_WORK/before.json" \
				"$E2E_WORK/after.json" $((iops * SECS)) |
				sed "s/^/$name $b $iops /" |
				tee -a "$E2E_WORK/results.txt"
		done
	done <<<"$JOBS"
	echo "ok: results in $E2E_WORK/results.txt"
}
