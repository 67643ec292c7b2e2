#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
#
# Benchmark: CPU microseconds per I/O in the e2e guest, by thread, for fio
# on user:qcow and on user:vxhs over UNIX (local I/O), over UNIX through
# vxhsd, and over TCP (tests/e2e/scenarios/bench_profile.sh). Shows where
# the time of the path users run goes, which the IOPS of guest-fio.sh do
# not. A TCG guest: every microsecond here is emulated; read the shares.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
. "$ROOT/tools/bench/lib.sh"
RES=$(guest_bench bench_profile)
BACKSTORES="qcow vxhs-unix vxhs-unix-nolocal vxhs-tcp"

for job in $(result_jobs "$RES"); do
	printf '\n%s: CPU us per I/O by thread (IOPS in the first row)\n' "$job"
	printf '%-34s' thread
	for b in $BACKSTORES; do printf ' %18s' "$b"; done
	printf '\n%-34s' IOPS
	for b in $BACKSTORES; do
		printf ' %18s' "$(awk -v j="$job" -v b="$b" \
			'$1 == j && $2 == b { print $3; exit }' "$RES")"
	done
	printf '\n'
	# Threads by their largest cost on any backstore, at least 5 us.
	awk -v j="$job" '$1 == j && $5 >= 5 { if ($5 > m[$4]) m[$4] = $5 }
		END { for (t in m) print m[t], t }' "$RES" | sort -rn |
		while read -r _ t; do
			printf '%-34s' "$t"
			for b in $BACKSTORES; do
				printf ' %18s' "$(awk -v j="$job" -v b="$b" -v t="$t" \
					'$1 == j && $2 == b && $4 == t { v = $5 }
					END { print v ? v : "-" }' "$RES")"
			done
			printf '\n'
		done
done
