# SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
# Sourced by the benchmarks: a scratch directory removed at exit with the
# servers started into PIDS, and the file they serve.

WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/vxhs-bench.XXXXXX")
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT

# bench_file VXHSADM SIZE: $WORK/bench, fully allocated (no side pays for
# block allocation) and read once (both start from a warm page cache).
bench_file() {
	"$1" create --dir "$WORK" bench "$2" >/dev/null
	dd if=/dev/zero of="$WORK/bench" bs=1M \
		count=$(($(stat -c %s "$WORK/bench") >> 20)) conv=notrunc \
		status=none
	cat "$WORK/bench" >/dev/null
}

# The four lines every agent benchmark runs: name pattern rw bs qd.
bench_lines() {
	cat <<'EOT'
4KiB-random-read-qd32 rand read 4K 32
4KiB-random-write-qd32 rand write 4K 32
1MiB-sequential-read-qd8 seq read 1M 8
1MiB-sequential-write-qd8 seq write 1M 8
EOT
}

# The median of the numbers on standard input, one a line.
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# kind_median RESULTS JOB KIND: the median IOPS of JOB over the LUNs
# named KIND-a, KIND-b... and every round (lines "job LUN round iops").
kind_median() {
	awk -v j="$2" -v k="$3" '$1 == j && $2 ~ "^" k "-" { print $4 }' "$1" | median
}

# result_jobs RESULTS: the jobs of a results.txt, in the order they ran.
result_jobs() { awk '!seen[$1]++ { print $1 }' "$1"; }

# result_rounds RESULTS: how many rounds a results.txt holds.
result_rounds() { awk '{ print $3 }' "$1" | sort -u | wc -l; }

# rounds "cmd-a args..." "cmd-b args..." -> the medians of each field of
# both sides' outputs over $ROUNDS rounds, a's then b's, on one line. The
# side that goes first alternates.
rounds() {
	local r out_a=() out_b=()
	for ((r = 0; r < ROUNDS; r++)); do
		if ((r % 2)); then
			out_b+=("$(eval "$2")")
			out_a+=("$(eval "$1")")
		else
			out_a+=("$(eval "$1")")
			out_b+=("$(eval "$2")")
		fi
	done
	{ medians "${out_a[@]}"; medians "${out_b[@]}"; } | paste -sd ' '
}
medians() {	# "f1 f2..." per round -> the median of each field
	local f nf
	nf=$(awk '{ print NF; exit }' <<<"$1")
	for ((f = 1; f <= nf; f++)); do
		printf '%s\n' "$@" | awk -v f="$f" '{ print $f }' | median
	done | paste -sd ' '
}

# ratio A B: B / A with two decimals.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b / a }'; }

# guest_bench SCENARIO: runs an e2e benchmark scenario in the guest and
# prints the path of its results.txt; the rig's output only on failure.
guest_bench() {
	local build=${E2E_BUILD:-$ROOT/build}
	[ -x "$build/tools/vxhsadm" ] || "$ROOT/tools/setup.sh" >&2
	# Benchmarks run longer than a test's boot may (rig.sh: 900 s).
	E2E_TIMEOUT=${E2E_TIMEOUT:-2400} \
		"$ROOT/tests/e2e/rig.sh" "$1" >"$WORK/rig.log" 2>&1 || {
		cat "$WORK/rig.log" >&2
		exit 1
	}
	echo "$build/e2e/$1/results.txt"
}
