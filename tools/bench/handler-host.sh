#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
#
# Benchmark of the gateway without a kernel (issue "the gateway's data
# path"): build/tools/handler-bench drives handler_vxhs.so against a vxhsd
# on a UNIX socket and, in the same run, Debian's handler_qcow.so (the
# file handler tcmu-runner ships) on a raw file, both through the handler
# tests' tcmu-runner stand-in. Every job runs BENCH_ROUNDS times (default
# 3) for BENCH_SECONDS (default 3), the two sides alternating; medians of
# IOPS, mean latency, and CPU per I/O of the gateway (the process holding
# the handler) and of the agent (vxhsd) are printed with their ratios.
# Then instruction counts per I/O under valgrind --tool=callgrind (stable
# where seconds are not): each side runs BENCH_CG_OPS and twice as many
# I/Os, and the difference is divided, so start-up cancels out.
#
# BENCH_BASE=DIR adds a third side, the handler and vxhsd of another build
# directory (an earlier commit), alternating with the others: the change
# measured in the same run.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${E2E_BUILD:-$ROOT/build}
. "$ROOT/tools/bench/lib.sh"
ROUNDS=${BENCH_ROUNDS:-3}
SECS=${BENCH_SECONDS:-3}
CG_OPS=${BENCH_CG_OPS:-2000}
SIZE=$((256 << 20))
QCOW_SO=/usr/lib/x86_64-linux-gnu/tcmu-runner/handler_qcow.so
BENCH=$BUILD/tools/handler-bench
VXHS_SO=$BUILD/handler/handler_vxhs.so
BASE=${BENCH_BASE:-}
SIDES="vxhs qcow${BASE:+ base}"

[ -x "$BENCH" ] && [ -e "$VXHS_SO" ] || "$ROOT/tools/setup.sh" >&2
[ -e "$QCOW_SO" ] || {
	echo "handler-host.sh: $QCOW_SO is missing (Debian's tcmu-runner; tools/setup.sh installs it)" >&2
	exit 1
}
command -v valgrind >/dev/null || {
	echo "handler-host.sh: valgrind is missing (tools/setup.sh installs it)" >&2
	exit 1
}

# The jobs: name rw bs qd.
JOBS="4k-randread-qd1 randread 4096 1
4k-randread-qd32 randread 4096 32
4k-randwrite-qd1 randwrite 4096 1
4k-randwrite-qd32 randwrite 4096 32
1m-read-qd1 read 1048576 1
1m-read-qd32 read 1048576 32
1m-write-qd1 write 1048576 1
1m-write-qd32 write 1048576 32"

# vxhsd_up BUILD NAME [VALGRIND...]: the vxhsd of BUILD on $WORK over
# $WORK/NAME.sock only; prints its pid.
vxhsd_up() {
	local build=$1 name=$2
	shift 2
	rm -f "$WORK/$name.sock"
	"$@" "$build/server/vxhsd" --dir "$WORK" --unix "$WORK/$name.sock" \
		--no-tcp --log-level warning >>"$WORK/$name.log" 2>&1 &
	echo $!
	for _ in $(seq 600); do
		[ -S "$WORK/$name.sock" ] && return 0
		sleep 0.1
	done
	echo "handler-host.sh: vxhsd did not start: $(cat "$WORK/$name.log")" >&2
	exit 1
}

# start_agent [VALGRIND...]: this build's vxhsd; sets AGENT (its pid).
start_agent() {
	AGENT=$(vxhsd_up "$BUILD" vxhsd "$@")
	PIDS+=("$AGENT")
}

# Not a child of this shell (started in a command substitution): wait
# for it to be gone, so callgrind has written its counts.
stop_agent() {
	kill "$AGENT"
	while kill -0 "$AGENT" 2>/dev/null; do sleep 0.1; done
}

# side SIDE ARGS...: one handler-bench run of handler SIDE (vxhs, qcow).
side() {
	local s=$1
	shift
	case $s in
	vxhs) "$BENCH" --module "$VXHS_SO" --size $SIZE \
		--cfgstring "vxhs/bench@$WORK/vxhsd.sock" --agent-pid "$AGENT" "$@" ;;
	qcow) "$BENCH" --module "$QCOW_SO" --size $SIZE \
		--cfgstring "qcow/$WORK/qcow.raw" "$@" ;;
	base) "$BENCH" --module "$BASE/handler/handler_vxhs.so" --size $SIZE \
		--cfgstring "vxhs/bench@$WORK/base.sock" --agent-pid "$BASE_AGENT" \
		"$@" ;;
	esac
}

bench_file "$BUILD/tools/vxhsadm" 256M
mv "$WORK/bench" "$WORK/qcow.raw"
bench_file "$BUILD/tools/vxhsadm" 256M
start_agent
if [ -n "$BASE" ]; then
	BASE_AGENT=$(vxhsd_up "$BASE" base)
	PIDS+=("$BASE_AGENT")
fi

# "job side round key=value..." lines.
for r in $(seq "$ROUNDS"); do
	while read -r name rw bs qd; do
		for s in $SIDES; do
			echo "$name $s $r $(side $s --rw "$rw" --bs "$bs" \
				--qd "$qd" --secs "$SECS")"
		done
	done <<<"$JOBS"
done >"$WORK/results.txt"

# med JOB SIDE KEY: the median of KEY over the rounds.
med() {
	grep "^$1 $2 " "$WORK/results.txt" | sed -n "s/.* $3=\([0-9.]*\).*/\1/p" |
		median
}

printf 'handler_vxhs.so (vxhsd over UNIX) and handler_qcow.so (raw file), medians of %s rounds of %s s\n' \
	"$ROUNDS" "$SECS"
printf '%-18s %9s %9s %6s  %8s %8s  %8s %8s %8s %8s %6s\n' job \
	"vxhs IOPS" "qcow IOPS" ratio "vxhs us" "qcow us" "gw CPU" \
	"agent" "vxhs" "qcow" ratio
while read -r name _; do
	vi=$(med "$name" vxhs iops) qi=$(med "$name" qcow iops)
	gw=$(med "$name" vxhs gw_cpu_us) ag=$(med "$name" vxhs agent_cpu_us)
	qc=$(med "$name" qcow gw_cpu_us)
	tot=$(awk -v a="$gw" -v b="$ag" 'BEGIN { printf "%.2f", a + b }')
	printf '%-18s %9s %9s %6s  %8s %8s  %8s %8s %8s %8s %6s\n' "$name" \
		"$vi" "$qi" "$(ratio "$qi" "$vi")" "$(med "$name" vxhs lat_us)" \
		"$(med "$name" qcow lat_us)" "$gw" "$ag" "$tot" "$qc" \
		"$(ratio "$qc" "$tot")"
done <<<"$JOBS"
echo "(IOPS ratio: vxhs / qcow; latency: mean us; CPU: us per I/O, gateway"
echo " and agent of vxhs, their sum, qcow's gateway, and sum / qcow)"
if [ -n "$BASE" ]; then
	echo
	echo "Against $BASE in the same run (this build / base):"
	printf '%-18s %9s %9s %6s  %9s %9s %6s\n' job "IOPS" "base" ratio \
		"CPU/IO" "base" ratio
	while read -r name _; do
		vi=$(med "$name" vxhs iops) bi=$(med "$name" base iops)
		vc=$(awk -v a="$(med "$name" vxhs gw_cpu_us)" \
			-v b="$(med "$name" vxhs agent_cpu_us)" \
			'BEGIN { printf "%.2f", a + b }')
		bc=$(awk -v a="$(med "$name" base gw_cpu_us)" \
			-v b="$(med "$name" base agent_cpu_us)" \
			'BEGIN { printf "%.2f", a + b }')
		printf '%-18s %9s %9s %6s  %9s %9s %6s\n' "$name" "$vi" "$bi" \
			"$(ratio "$bi" "$vi")" "$vc" "$bc" "$(ratio "$bc" "$vc")"
	done <<<"$JOBS"
fi

# Instructions per I/O under callgrind: total Ir of a run of 2N I/Os
# less that of N, over N.
ir() { # callgrind output file
	sed -n 's/^summary: *\([0-9]*\).*/\1/p' "$1" | head -n1
}
cg() { # OUT_PREFIX COMMAND...: Ir of COMMAND under callgrind
	local out=$1
	shift
	valgrind --tool=callgrind --callgrind-out-file="$out" "$@" \
		>/dev/null 2>>"$WORK/valgrind.log"
	ir "$out"
}
per_io() { # IR_N IR_2N
	awk -v a="$1" -v b="$2" -v n="$CG_OPS" 'BEGIN { printf "%.0f", (b - a) / n }'
}

echo
echo "Instructions per I/O (callgrind; $CG_OPS and $((2 * CG_OPS)) I/Os, the difference over $CG_OPS):"
printf '%-18s %12s %12s %12s %12s %6s\n' job "vxhs gateway" "vxhs agent" \
	"vxhs sum" "qcow" ratio
while read -r name rw bs qd; do
	case $name in 4k-*) ;; *) continue ;; esac
	args=(--rw "$rw" --bs "$bs" --qd "$qd")
	g=() a=() q=()
	for n in "$CG_OPS" $((2 * CG_OPS)); do
		# The gateway under callgrind, the agent native...
		g+=("$(cg "$WORK/cg.gw" "$BENCH" --module "$VXHS_SO" --size $SIZE \
			--cfgstring "vxhs/bench@$WORK/vxhsd.sock" "${args[@]}" --ops "$n")")
		# ...the agent under callgrind (its count is written at exit)...
		stop_agent
		start_agent valgrind --tool=callgrind \
			--callgrind-out-file="$WORK/cg.agent"
		side vxhs "${args[@]}" --ops "$n" >/dev/null
		stop_agent
		a+=("$(ir "$WORK/cg.agent")")
		start_agent
		# ...and qcow.
		q+=("$(cg "$WORK/cg.qcow" "$BENCH" --module "$QCOW_SO" --size $SIZE \
			--cfgstring "qcow/$WORK/qcow.raw" "${args[@]}" --ops "$n")")
	done
	gi=$(per_io "${g[@]}") ai=$(per_io "${a[@]}") qi=$(per_io "${q[@]}")
	printf '%-18s %12s %12s %12s %12s %6s\n' "$name" "$gi" "$ai" \
		"$((gi + ai))" "$qi" "$(ratio "$qi" "$((gi + ai))")"
done <<<"$JOBS"
