#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
#
# Benchmark: many vdisks through one client context (as tcmu-runner serves
# many LUNs), with one I/O thread against several. Each vdisk runs 4 KiB
# random reads at queue depth 32; plaintext and TLS to one local vxhsd.
# The two sides alternate in ROUNDS rounds and the medians are printed
# with their ratio (N threads / 1 thread), and the client's resident
# memory per open vdisk.
#
#   tools/bench/many-luns.sh [SECONDS] [ROUNDS] [THREADS] [COUNTS]
#
# THREADS defaults to the library's default (one per CPU, at most 4);
# COUNTS to "16 64".
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SECS=${1:-3} ROUNDS=${2:-3} THREADS=${3:-$(($(nproc) < 4 ? $(nproc) : 4))}
COUNTS=${4:-16 64}
VXHSD="$ROOT/build/server/vxhsd"
VXHSADM="$ROOT/build/tools/vxhsadm"
[ -x "$VXHSADM" ] && [ -x "$VXHSD" ] || "$ROOT/tools/setup.sh"

. "$ROOT/tools/bench/lib.sh"
MAX=0
for n in $COUNTS; do [ "$n" -gt "$MAX" ] && MAX=$n; done
IDS=()
for i in $(seq 0 $((MAX - 1))); do
	"$VXHSADM" create --dir "$WORK" "lun$i" 16M >/dev/null
	# Allocated and cached: the agent's disk is not what is measured.
	dd if=/dev/zero of="$WORK/lun$i" bs=1M count=16 conv=notrunc status=none
	IDS+=("lun$i")
done
"$ROOT/tests/tls/make-certs.sh" "$WORK/pki" >/dev/null
"$VXHSD" --dir "$WORK" --listen 127.0.0.1 --port 0 --port-file "$WORK/port" \
	--allow-plaintext --log-level warning &
PIDS+=($!)
"$VXHSD" --dir "$WORK" --listen 127.0.0.1 --port 0 --port-file "$WORK/tls-port" \
	--tls-dir "$WORK/pki/agent" --log-level warning &
PIDS+=($!)
for _ in $(seq 100); do
	[ -s "$WORK/port" ] && [ -s "$WORK/tls-port" ] && break
	sleep 0.05
done

run() {	# threads count transport -> "iops kib-per-vdisk"
	local args=(--agent "127.0.0.1:$(cat "$WORK/port")" --allow-plaintext)
	[ "$3" = tls ] && args=(--agent "localhost:$(cat "$WORK/tls-port")"
		--tls-dir "$WORK/pki/gw-a")
	"$VXHSADM" bench "${args[@]}" --io-threads "$1" --conns 2 \
		--pattern rand --rw read --bs 4K --qd 32 --time "$SECS" \
		--parseable "${IDS[@]:0:$2}" |
		awk '/per open vdisk/ { for (i = 1; i <= NF; i++)
						if ($i == "memory") m = $(i + 1) }
		     /^iops=/ { sub("iops=", "", $1); print $1, m }'
}

printf '%s rounds of %s s, alternating; 4 KiB random read, QD 32 per vdisk\n\n' \
	"$ROUNDS" "$SECS"
printf '%-20s %12s %12s %8s %14s\n' test "1 thread" "$THREADS threads" ratio \
	"KiB per vdisk"
for transport in plain tls; do
	for n in $COUNTS; do
		r1=() rn=() mem=()
		for _ in $(seq "$ROUNDS"); do
			read -r iops m < <(run 1 "$n" "$transport")
			r1+=("$iops") mem+=("$m")
			read -r iops m < <(run "$THREADS" "$n" "$transport")
			rn+=("$iops")
		done
		m1=$(printf '%s\n' "${r1[@]}" | median)
		mn=$(printf '%s\n' "${rn[@]}" | median)
		printf '%-20s %12s %12s %7sx %14s\n' "$n vdisks, $transport" \
			"$m1" "$mn" \
			"$(ratio "$m1" "$mn")" \
			"$(printf '%s\n' "${mem[@]}" | median)"
	done
done
