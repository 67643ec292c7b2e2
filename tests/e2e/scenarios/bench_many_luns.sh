# SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
# shellcheck shell=bash
# e2e-roles: target
#
# Benchmark (not a test; tools/bench/guest-many-luns.sh runs it): 64
# loopback LUNs of 16 MiB on one tcmu-runner, each a vdisk of one local
# vxhsd over TCP, plaintext and then TLS. For each, tcmu-runner runs with
# VXHS_IO_THREADS=1 and =2 in turn (ROUNDS rounds, alternating); fio
# reads 4 KiB at random from all LUNs at once for SECS seconds. Writes
# "transport threads iops rss-kib-per-lun" lines to results.txt.

LUNS=64 SIZE=16M SECS=10 ROUNDS=2

# The LIO-ORG disks the loopback target shows, one a line.
lun_disks() {
	local d
	for d in /sys/block/sd*; do
		grep -q LIO-ORG "$d/device/vendor" 2>/dev/null &&
			echo "/dev/${d##*/}"
	done
}

all_luns_up() {
	local n=0 d
	for d in $(lun_disks); do
		sg_turs "$d" >/dev/null 2>&1 && n=$((n + 1))
	done
	[ "$n" -eq "$LUNS" ]
}

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$TCMU_PID/status"; }

# restart THREADS: tcmu-runner again with that many I/O threads; it
# reopens every LUN.
restart() {
	[ -n "${TCMU_PID:-}" ] && stop_tcmu_runner
	TCMU_DEBUG=no VXHS_IO_THREADS=$1 start_tcmu_runner
	wait_for "$LUNS LUNs to answer" 240 all_luns_up
}

# fio over every LUN: 4 jobs of 16 LUNs each, 64 requests in flight per
# job. Prints the total IOPS.
run_fio() {
	local args=() disks i=0
	mapfile -t disks < <(lun_disks)
	for j in 0 1 2 3; do
		local files=()
		for ((i = j; i < ${#disks[@]}; i += 4)); do files+=("${disks[$i]}"); done
		args+=(--name="j$j" --filename="$(IFS=:; echo "${files[*]}")")
	done
	fio --ioengine=libaio --direct=1 --rw=randread --bs=4k --iodepth=64 \
		--file_service_type=roundrobin --runtime="$SECS" --time_based \
		--group_reporting --output-format=json "${args[@]}" |
		python3 -c 'import json, sys
print(int(json.load(sys.stdin)["jobs"][0]["read"]["iops"]))'
}

# create CFG-FORMAT: the LUNs, lun0..lun63, with cfgstrings from a printf
# format taking the vdisk id.
create_luns() {
	local cmds=() i
	for ((i = 0; i < LUNS; i++)); do
		# shellcheck disable=SC2059 # the format is the argument
		cmds+=("/backstores/user:vxhs create name=lun$i size=$SIZE cfgstring=$(printf "$1" "lun$i")")
	done
	cmds+=("/loopback create")
	tcli "${cmds[@]}" >/dev/null
	WWN=$(ls /sys/kernel/config/target/loopback | grep naa. | head -n1)
	cmds=()
	for ((i = 0; i < LUNS; i++)); do
		cmds+=("/loopback/$WWN/luns create /backstores/user:vxhs/lun$i")
	done
	tcli "${cmds[@]}" >/dev/null
	wait_for "$LUNS LUNs to answer" 240 all_luns_up
}

delete_luns() {
	local cmds=("/loopback delete $WWN") i
	for ((i = 0; i < LUNS; i++)); do
		cmds+=("/backstores/user:vxhs delete lun$i")
	done
	tcli "${cmds[@]}" >/dev/null
}

scenario_target() {
	local i
	start_vxhsd
	start_tls_vxhsd
	for ((i = 0; i < LUNS; i++)); do
		"$VXHSADM" create --dir "$VDISKS" "lun$i" $SIZE >/dev/null
	done
	TCMU_DEBUG=no start_tcmu_runner
	base=$(rss_kib)
	for transport in plain tls; do
		fmt="%s@127.0.0.1;plaintext"
		[ $transport = tls ] && fmt="%s@127.0.0.1/9998;tls=/tmp/pki/gw-a"
		say "$LUNS LUNs, $transport"
		create_luns "$fmt"
		for round in $(seq $ROUNDS); do
			for threads in 1 2; do
				restart $threads
				mem=$(( ($(rss_kib) - base) / LUNS ))
				iops=$(run_fio)
				echo "$transport $threads $iops $mem" | tee -a "$E2E_WORK/results.txt"
			done
		done
		delete_luns
	done
	echo "ok: results in $E2E_WORK/results.txt"
}
