#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
#
# Benchmark: TLS with the kernel's records (made and read by it) against
# TLS with ours (made and read by vxhs after GnuTLS's handshake, the
# default) and against plaintext TCP, user:vxhs to the guest's
# own vxhsd in one e2e guest boot, two LUNs of each kind in mirror order
# (tests/e2e/scenarios/bench_tls.sh). Prints the median IOPS of each kind
# (both its LUNs, every round) and the ratios. A TCG guest on a busy
# host, where AES is emulated too: read the ratios, not the figures.
# BENCH_RESULTS=FILE prints the table of an earlier run's results.txt
# without booting a guest.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
. "$ROOT/tools/bench/lib.sh"
RES=${BENCH_RESULTS:-$(guest_bench bench_tls)}
med() { kind_median "$RES" "$@"; }

printf 'fio IOPS, medians of 2 LUNs x %s rounds (tcm_loop, direct, libaio)\n\n' \
	"$(result_rounds "$RES")"
printf '%-18s %8s %9s %9s | %10s %10s %10s\n' job tcp tls-kern tls-ours \
	"kern/ours" "kern/tcp" "ours/tcp"
for job in $(result_jobs "$RES"); do
	t=$(med "$job" tcp) k=$(med "$job" ktls) g=$(med "$job" utls)
	printf '%-18s %8s %9s %9s | %9sx %9sx %9sx\n' "$job" "$t" "$k" "$g" \
		"$(ratio "$g" "$k")" "$(ratio "$t" "$k")" "$(ratio "$t" "$g")"
done
