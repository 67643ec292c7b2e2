#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
#
# Benchmark: two vxhsd builds against each other, in the same run on the
# same file, with the same vxhsadm bench (compare-nbd.sh's four lines).
# The two sides alternate in ROUNDS rounds (this machine is shared and
# noisy) and the medians are printed with their ratio (B / A; above 1.00
# means B is faster).
#
#   tools/bench/ab-agent.sh VXHSD-A VXHSD-B [SECONDS] [ROUNDS] [FILE-SIZE]
#
# For example, the agent before a change against the one after it:
#   git worktree add /tmp/before HEAD~1 && (cd /tmp/before && tools/setup.sh)
#   tools/bench/ab-agent.sh /tmp/before/build/server/vxhsd build/server/vxhsd
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
if [ $# -lt 2 ] || [ ! -x "$1" ] || [ ! -x "$2" ]; then
	echo "usage: $0 VXHSD-A VXHSD-B [SECONDS] [ROUNDS] [FILE-SIZE]" >&2
	exit 2
fi
A=$1 B=$2 SECS=${3:-3} ROUNDS=${4:-3} SIZE=${5:-1G}
VXHSADM="$ROOT/build/tools/vxhsadm"
[ -x "$VXHSADM" ] || "$ROOT/tools/setup.sh"

. "$ROOT/tools/bench/lib.sh"
bench_file "$VXHSADM" "$SIZE"
for side in a b; do
	bin=$A
	[ $side = b ] && bin=$B
	"$bin" --dir "$WORK" --listen 127.0.0.1 --port 0 \
		--port-file "$WORK/port-$side" --allow-plaintext \
		--log-level warning &
	PIDS+=($!)
done
for _ in $(seq 100); do
	[ -s "$WORK/port-a" ] && [ -s "$WORK/port-b" ] && break
	sleep 0.05
done

run() {	# port pattern rw bs qd -> iops
	"$VXHSADM" bench --agent "127.0.0.1:$1" --allow-plaintext \
		--pattern "$2" --rw "$3" \
		--bs "$4" --qd "$5" --time "$SECS" --parseable bench |
		sed -n 's/^iops=\([0-9.]*\) .*/\1/p'
}
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

printf '%s rounds of %s s, alternating; A = %s, B = %s\n\n' "$ROUNDS" "$SECS" "$A" "$B"
printf '%-28s %12s %12s %7s\n' test "A IOPS" "B IOPS" "B / A"
while read -r name pattern rw bs qd; do
	ra=() rb=()
	for _ in $(seq "$ROUNDS"); do
		ra+=("$(run "$(cat "$WORK/port-a")" "$pattern" "$rw" "$bs" "$qd")")
		rb+=("$(run "$(cat "$WORK/port-b")" "$pattern" "$rw" "$bs" "$qd")")
	done
	ma=$(printf '%s\n' "${ra[@]}" | median)
	mb=$(printf '%s\n' "${rb[@]}" | median)
	printf '%-28s %12s %12s %6sx\n' "$name" "$ma" "$mb" \
		"$(awk -v a="$ma" -v b="$mb" 'BEGIN { printf "%.2f", b / a }')"
done < <(bench_lines)
