#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
#
# Benchmark: two builds against each other, in the same run on the same
# file, with compare-nbd.sh's four lines: two vxhsd under one vxhsadm bench
# ("agent"), or two vxhsadm bench (the client library) against one vxhsd
# ("client"). The two sides alternate in ROUNDS rounds (this machine is
# shared and noisy) and the medians are printed with their ratio (B / A;
# above 1.00 means B is faster).
#
#   tools/bench/ab.sh agent VXHSD-A VXHSD-B [SECONDS] [ROUNDS] [FILE-SIZE]
#   tools/bench/ab.sh client VXHSADM-A VXHSADM-B [SECONDS] [ROUNDS] [FILE-SIZE]
#
# With AB_TLS=1 every connection is TLS (the test PKI), else plaintext.
#
# For example, the build before a change against the one after it:
#   git worktree add /tmp/before HEAD~1 && (cd /tmp/before && tools/setup.sh)
#   tools/bench/ab.sh agent /tmp/before/build/server/vxhsd build/server/vxhsd
#   tools/bench/ab.sh client /tmp/before/build/tools/vxhsadm build/tools/vxhsadm
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
usage() {
	echo "usage: $0 agent|client BINARY-A BINARY-B [SECONDS] [ROUNDS] [FILE-SIZE]" >&2
	exit 2
}
[ $# -ge 3 ] || usage
MODE=$1 A=$2 B=$3 SECS=${4:-3} ROUNDS=${5:-3} SIZE=${6:-1G}
case "$MODE" in agent | client) ;; *) usage ;; esac
[[ $SECS =~ ^[1-9][0-9]*$ && $ROUNDS =~ ^[1-9][0-9]*$ ]] || usage
[ -x "$A" ] && [ -x "$B" ] || usage
VXHSD="$ROOT/build/server/vxhsd" VXHSADM="$ROOT/build/tools/vxhsadm"
[ -x "$VXHSADM" ] && [ -x "$VXHSD" ] || "$ROOT/tools/setup.sh"

. "$ROOT/tools/bench/lib.sh"
bench_file "$VXHSADM" "$SIZE"
AGENT_TRANSPORT=(--allow-plaintext)
if [ "${AB_TLS:-0}" = 1 ]; then
	"$ROOT/tests/tls/make-certs.sh" "$WORK/pki" >/dev/null
	AGENT_TRANSPORT=(--tls-dir "$WORK/pki/agent")
fi
start_agent() {	# binary side
	"$1" --dir "$WORK" --listen 127.0.0.1 --port 0 \
		--port-file "$WORK/port-$2" "${AGENT_TRANSPORT[@]}" \
		--log-level warning &
	PIDS+=($!)
	for _ in $(seq 100); do
		[ -s "$WORK/port-$2" ] && return
		sleep 0.05
	done
	echo "$1 did not start" >&2
	exit 1
}
# agent: a vxhsd per side; client: one vxhsd for both.
if [ "$MODE" = agent ]; then
	start_agent "$A" a
	start_agent "$B" b
else
	start_agent "$VXHSD" a
	cp "$WORK/port-a" "$WORK/port-b"
fi

# Builds from before plaintext needed saying so do not know the option.
plain_opt() {
	if [ "${AB_TLS:-0}" = 1 ]; then
		echo "--tls-dir $WORK/pki/gw-a"
		return
	fi
	"$1" bench --help | grep -q -- --allow-plaintext && echo --allow-plaintext
	true
}
ADM_A=$VXHSADM ADM_B=$VXHSADM
[ "$MODE" = client ] && ADM_A=$A ADM_B=$B
PLAIN_A=$(plain_opt "$ADM_A") PLAIN_B=$(plain_opt "$ADM_B")

run() {	# side pattern rw bs qd -> iops
	local adm=$ADM_A plain=$PLAIN_A
	[ "$1" = b ] && adm=$ADM_B plain=$PLAIN_B
	# shellcheck disable=SC2086 # empty, one word or an option and its value
	"$adm" bench --agent "127.0.0.1:$(cat "$WORK/port-$1")" $plain \
		--pattern "$2" --rw "$3" --bs "$4" --qd "$5" --time "$SECS" \
		--parseable bench |
		sed -n 's/^iops=\([0-9.]*\) .*/\1/p'
}

printf '%s rounds of %s s, alternating, %s; %s A = %s, B = %s\n\n' \
	"$ROUNDS" "$SECS" "$([ "${AB_TLS:-0}" = 1 ] && echo TLS || echo plaintext)" \
	"$MODE" "$A" "$B"
printf '%-28s %12s %12s %7s\n' test "A IOPS" "B IOPS" "B / A"
while read -r name pattern rw bs qd; do
	read -r ma mb < <(rounds 'run a "$pattern" "$rw" "$bs" "$qd"' \
		'run b "$pattern" "$rw" "$bs" "$qd"')
	printf '%-28s %12s %12s %6sx\n' "$name" "$ma" "$mb" "$(ratio "$ma" "$mb")"
done < <(bench_lines)
