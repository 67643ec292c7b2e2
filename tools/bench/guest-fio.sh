#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
#
# Benchmark: the path users run, in one e2e guest boot
# (tests/e2e/scenarios/bench_fio.sh): fio on loopback LUNs of LIO fileio,
# tcmu-runner's user:qcow, user:vxhs over UNIX, TCP and TLS, iblock on
# kernel NBD + nbdkit, user:vxhs over UNIX with 1 MiB commands, over UNIX
# with local_reads=no and local_writes=no (every read and write through
# vxhsd, the data in the shared TCMU data area: local I/O measured against
# it in the same boot) and with shared_memory=no as well (the data through
# the socket: the shared data area measured against it), interleaved in
# rounds, each round starting at another backstore. Prints the medians
# (IOPS) and
# the ratios the goals are stated in. A TCG guest on a busy host: read the
# ratios, not the figures. BENCH_RESULTS=FILE prints the table of an
# earlier run's results.txt without booting a guest.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
. "$ROOT/tools/bench/lib.sh"
RES=${BENCH_RESULTS:-$(guest_bench bench_fio)}
med() { awk -v j="$1" -v b="$2" '$1 == j && $2 == b { print $4 }' "$RES" | median; }

printf 'fio IOPS, medians of %s rounds (tcm_loop, direct, libaio)\n\n' \
	"$(result_rounds "$RES")"
printf '%-18s %8s %8s %9s %9s %9s %9s %9s %9s %9s | %8s %8s %8s %8s %8s %8s\n' \
	job fileio qcow vxhs-unix vxhs-tcp vxhs-tls iblk-nbd unix-1m unix-sock \
	unix-agent "unix/qcow" "tcp/qcow" "unix/nbd" "1m/64k" "shm/sock" \
	"local/agt"
for job in $(result_jobs "$RES"); do
	f=$(med "$job" fileio) q=$(med "$job" qcow) u=$(med "$job" vxhs-unix)
	t=$(med "$job" vxhs-tcp) s=$(med "$job" vxhs-tls) n=$(med "$job" iblock-nbd)
	m=$(med "$job" vxhs-unix-1m) k=$(med "$job" vxhs-unix-socket)
	l=$(med "$job" vxhs-unix-nolocal)
	printf '%-18s %8s %8s %9s %9s %9s %9s %9s %9s %9s | %7sx %7sx %7sx %7sx %7sx %7sx\n' \
		"$job" "$f" "$q" "$u" "$t" "$s" "$n" "$m" "$k" "$l" \
		"$(ratio "$q" "$u")" "$(ratio "$q" "$t")" "$(ratio "$n" "$u")" \
		"$(ratio "$u" "$m")" "$(ratio "$k" "$l")" "$(ratio "$l" "$u")"
done
