#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
#
# Benchmark: user:vxhs over TCP with vxhsd in another guest (the agent on
# another host, as TCP agents are deployed) against user:qcow on the
# gateway, two LUNs of each in mirror order, in one two-guest e2e boot
# (tests/e2e/scenarios/bench_remote.sh). Prints the median IOPS of each
# kind (both its LUNs, every round) and the ratio. Each guest has one
# vCPU, both emulated on this host's CPUs; a TCG guest on a busy host:
# read the ratios, not the figures. BENCH_RESULTS=FILE prints the table
# of an earlier run's results.txt without booting the guests.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
. "$ROOT/tools/bench/lib.sh"
RES=${BENCH_RESULTS:-$(guest_bench bench_remote)}
med() { kind_median "$RES" "$@"; }

printf 'fio IOPS on the gateway guest, medians of 2 LUNs x %s rounds (tcm_loop, direct, libaio)\n\n' \
	"$(result_rounds "$RES")"
printf '%-18s %8s %9s | %9s\n' job qcow vxhs-tcp "tcp/qcow"
for job in $(result_jobs "$RES"); do
	q=$(med "$job" qcow) t=$(med "$job" tcp)
	printf '%-18s %8s %9s | %8sx\n' "$job" "$q" "$t" "$(ratio "$q" "$t")"
done
