#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
#
# Benchmark: vxhsadm bench against vxhsd over loopback TCP, side by side
# with qemu-img bench against nbdkit's file plugin over loopback TCP, on the
# same file in the same run. Prints both and the ratios (vxhs / nbd; above
# 1.00 means vxhs is faster). Then TLS against plaintext vxhsd: 4 KiB random
# and 1 MiB sequential reads (ratio TLS / plaintext), with the bounds on that
# ratio which the cipher sets on this machine: on its CPUs as a whole, and
# on the one vxhsd network thread that serves a connection.
#
#   tools/bench/compare-nbd.sh [SECONDS-PER-TEST] [FILE-SIZE] [ROUNDS]
#
# Every line runs ROUNDS times (default 3), the two sides alternating which
# goes first (this machine is shared and noisy); the figures are medians.
#
# qemu-img bench has no random mode: its "random" lines step through the
# file by a large prime number of 4 KiB blocks, so successive requests are
# far apart; vxhsadm uses uniformly random offsets. Both run at the same
# queue depth with one client process each.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SECS=${1:-5}
SIZE=${2:-1G}
ROUNDS=${3:-3}
[[ $SECS =~ ^[1-9][0-9]*$ && $ROUNDS =~ ^[1-9][0-9]*$ ]] || {
	echo "usage: $0 [SECONDS-PER-TEST] [FILE-SIZE] [ROUNDS]" \
		"(seconds and rounds: whole numbers from 1)" >&2
	exit 2
}
VXHSD="$ROOT/build/server/vxhsd"
VXHSADM="$ROOT/build/tools/vxhsadm"
TLS_SPEED="$ROOT/build/tools/tls-speed"
if [ ! -x "$VXHSD" ] || [ ! -x "$TLS_SPEED" ]; then "$ROOT/tools/setup.sh"; fi
command -v nbdkit >/dev/null && command -v qemu-img >/dev/null ||
	{ echo "needs nbdkit and qemu-utils: run tools/setup.sh" >&2; exit 1; }

. "$ROOT/tools/bench/lib.sh"
bench_file "$VXHSADM" "$SIZE"
FILE_BYTES=$(stat -c %s "$WORK/bench")

"$VXHSD" --dir "$WORK" --listen 127.0.0.1 --port 0 --port-file "$WORK/port" --allow-plaintext \
	--log-level warning &
PIDS+=($!)
PLAIN_PID=$!
NBD_PORT=$((20000 + RANDOM % 20000))
nbdkit --foreground --exit-with-parent --ipaddr 127.0.0.1 --port "$NBD_PORT" \
	file file="$WORK/bench" &
PIDS+=($!)
# The same vdisks through a second vxhsd with TLS, for the TLS lines.
"$ROOT/tests/tls/make-certs.sh" "$WORK/pki" >/dev/null
"$VXHSD" --dir "$WORK" --listen 127.0.0.1 --port 0 --port-file "$WORK/tls-port" \
	--tls-dir "$WORK/pki/agent" --log-level warning &
PIDS+=($!)
TLS_PID=$!
for _ in $(seq 100); do [ -s "$WORK/port" ] && [ -s "$WORK/tls-port" ] && break; sleep 0.05; done
VXHS_PORT=$(cat "$WORK/port")
TLS_PORT=$(cat "$WORK/tls-port")
sleep 0.5


busy_ticks() {	# -> clock ticks all CPUs spent on anything but idling
	awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 }' /proc/stat
}
vxhs_run() {	# pattern rw bs qd [options] -> "iops mibps cpu-us-per-io"
	local t0 line transport=(--allow-plaintext)
	case " ${*:5} " in *" --tls-dir "*) transport=() ;; esac
	t0=$(busy_ticks)
	line=$("$VXHSADM" bench --agent "127.0.0.1:$VXHS_PORT" "${transport[@]}" --pattern "$1" \
		--rw "$2" --bs "$3" --qd "$4" --time "$SECS" --parseable \
		"${@:5}" bench | grep '^iops=')
	awk -v t="$(($(busy_ticks) - t0))" -v hz="$(getconf CLK_TCK)" \
		-v secs="$SECS" -v line="$line" 'BEGIN {
		split(line, kv, /[ =]/)
		cpu = kv[2] > 0 ? t / hz * 1e6 / (kv[2] * secs) : 0
		printf "%s %s %.2f\n", kv[2], kv[4], cpu
	}'
}
net_thread_ns() {	# PID -> nanoseconds its vxhsd-net threads have run
	local t sum=0
	for t in /proc/"$1"/task/*; do
		[ "$(cat "$t/comm" 2>/dev/null)" = vxhsd-net ] || continue
		sum=$((sum + $(cut -d ' ' -f 1 "$t/schedstat")))
	done
	echo "$sum"
}
# vxhs_net_run PID pattern rw bs qd [options] -> vxhs_run's three fields,
# then what the network threads of the vxhsd with PID ran: microseconds
# per I/O, and percent of one CPU (one connection is one thread's work).
vxhs_net_run() {
	local pid=$1 n0 line
	shift
	n0=$(net_thread_ns "$pid")
	line=$(vxhs_run "$@")
	awk -v n="$(($(net_thread_ns "$pid") - n0))" -v secs="$SECS" \
		-v line="$line" 'BEGIN {
		split(line, f, " ")
		us = f[1] > 0 ? n / 1000 / (f[1] * secs) : 0
		printf "%s %.2f %.0f\n", line, us, n / 1e7 / secs
	}'
}
nbd_run() {	# pattern rw bs qd -> "iops mibps"
	local bs_bytes count step args=() secs
	bs_bytes=$(numfmt --from=iec "$3")
	# a short calibration run sizes the real one to about SECS seconds
	count=$((2000 * 4096 / bs_bytes + 200))
	step=$bs_bytes
	[ "$1" = rand ] && step=$((4096 * 7919))
	[ "$2" = write ] && args+=(-w)
	secs=$(qemu-img bench -f raw "${args[@]}" -c "$count" -d "$4" -s "$3" \
		-S "$step" "nbd://127.0.0.1:$NBD_PORT" 2>&1 |
		sed -n 's/^Run completed in \([0-9.]*\) seconds./\1/p')
	count=$(awk -v c="$count" -v s="$secs" -v t="$SECS" \
		'BEGIN { n = int(c * t / (s > 0 ? s : 0.001)); print (n > c ? n : c) }')
	secs=$(qemu-img bench -f raw "${args[@]}" -c "$count" -d "$4" -s "$3" \
		-S "$step" "nbd://127.0.0.1:$NBD_PORT" 2>&1 |
		sed -n 's/^Run completed in \([0-9.]*\) seconds./\1/p')
	awk -v c="$count" -v s="$secs" -v b="$bs_bytes" \
		'BEGIN { printf "%.0f %.2f\n", c / s, c * b / s / 1048576 }'
}

printf 'file: %s bytes on %s; %s s per test, medians of %s rounds; %s CPUs\n\n' \
	"$FILE_BYTES" "$(df --output=fstype "$WORK" | tail -1)" "$SECS" \
	"$ROUNDS" "$(nproc)"
printf '%-28s %12s %12s %12s %12s %7s\n' test "vxhs IOPS" "vxhs MiB/s" \
	"nbd IOPS" "nbd MiB/s" ratio
worst=
while read -r name pattern rw bs qd; do
	read -r vi vm _ ni nm < <(rounds \
		'vxhs_run "$pattern" "$rw" "$bs" "$qd"' \
		'nbd_run "$pattern" "$rw" "$bs" "$qd"')
	ratio=$(awk -v a="$vi" -v b="$ni" 'BEGIN { printf "%.2f", a / b }')
	printf '%-28s %12s %12s %12s %12s %6sx\n' "$name" "$vi" "$vm" "$ni" \
		"$nm" "$ratio"
	worst=$(awk -v w="${worst:-99}" -v r="$ratio" \
		'BEGIN { print (r < w ? r : w) }')
done < <(bench_lines)
printf '\nlowest ratio: %sx (goal: 1.00x or more on every line)\n' "$worst"

# TLS against plaintext, both vxhsd, in the same run (goal: TLS costs at
# most 25% at 4 KiB and 40% at 1 MiB, i.e. ratios of 0.75 and 0.60).
#
# The CPU each I/O costs (the whole machine's busy time, both ends and the
# kernel's network work between them) is measured too, and what TLS costs
# apart from the network (tls-speed): the cipher alone, and GnuTLS's whole
# record layer (a TLS 1.3 session through memory). TLS does all that
# plaintext does plus that, so when both ends share this machine's CPUs it
# can at best reach NCPU / ((plaintext CPU + its cost) x plaintext IOPS)
# of plaintext: the two "ceiling" columns, upper bounds that leave out
# every other cost of TLS (vxhs's own buffering, the kernel's). Other load
# on the machine inflates the CPU figures.
read -r ENC DEC SEND RECV AES_GCM < <("$TLS_SPEED" 2 | awk -F '[ =]' '
	NF == 10 && $1 == "encrypt_mibps" && $3 == "decrypt_mibps" &&
	$5 == "send_mibps" && $7 == "recv_mibps" && $9 == "aes_gcm" {
		print $2, $4, $6, $8, $10 }')
[ -n "$AES_GCM" ] || { echo "tls-speed failed: no figures" >&2; exit 1; }
printf '\n%-28s %10s %10s %10s %10s %6s %6s %7s %7s\n' test "TLS IOPS" \
	"TLS MiB/s" "plain IOPS" "plain MiB/s" ratio goal ceiling ceiling
printf '%-28s %10s %10s %10s %10s %6s %6s %7s %7s\n' "" "" "" "" "" "" "" \
	cipher GnuTLS
CPU_LINES=()
NET_LINES=()
while read -r name pattern rw bs qd goal; do
	read -r ti tm tc tn tb pi pm pc pn pb < <(rounds \
		'VXHS_PORT=$TLS_PORT vxhs_net_run "$TLS_PID" "$pattern" "$rw" \
			"$bs" "$qd" --tls-dir "$WORK/pki/gw-a"' \
		'vxhs_net_run "$PLAIN_PID" "$pattern" "$rw" "$bs" "$qd"')
	read -r ratio cipher records ceil_c ceil_r enc ceil_n < <(awk \
		-v ti="$ti" -v pi="$pi" -v pc="$pc" -v pn="$pn" -v enc="$ENC" \
		-v dec="$DEC" -v send="$SEND" -v recv="$RECV" \
		-v ncpu="$(nproc)" -v bs="$(numfmt --from=iec "$bs")" '
		function ceiling(extra,  c) {
			c = ncpu / ((pc + extra) * 1e-6 * pi)
			return c > 1 ? 1 : c
		}
		BEGIN {
			mib = bs / 1048576 * 1e6
			cipher = mib * (1 / enc + 1 / dec)
			records = mib * (1 / send + 1 / recv)
			# vxhsd encrypts each answer on its network thread
			one = mib / enc
			thread = pn > 0 ? pn / (pn + one) : 0
			printf "%.2f %.2f %.2f %.2f %.2f %.2f %.2f\n", ti / pi,
			       cipher, records, ceiling(cipher),
			       ceiling(records), one, thread
		}')
	printf '%-28s %10s %10s %10s %10s %5sx %5sx %6sx %6sx\n' "$name" \
		"$ti" "$tm" "$pi" "$pm" "$ratio" "$goal" "$ceil_c" "$ceil_r"
	CPU_LINES+=("$(printf '%-28s %10s %10s %10s %10s' "$name" "$tc" \
		"$pc" "$cipher" "$records")")
	NET_LINES+=("$(printf '%-28s %8s %8s %6s%% %6s%% %8s %7sx' "$name" \
		"$tn" "$pn" "$tb" "$pb" "$enc" "$ceil_n")")
done <<'EOT'
TLS-4KiB-random-read-qd32 rand read 4K 32 0.75
TLS-1MiB-sequential-read-qd8 seq read 1M 8 0.60
EOT
printf '\nCPU per I/O, whole machine (us). Here AES-128-GCM (%s) encrypts %s MiB/s\n' \
	"$AES_GCM" "$ENC"
printf 'and decrypts %s MiB/s; GnuTLS sends %s MiB/s and receives %s MiB/s\n' \
	"$DEC" "$SEND" "$RECV"
printf 'of TLS 1.3 records (the cipher, the record layer, one copy less).\n' 
printf '%-28s %10s %10s %10s %10s\n' test TLS plain cipher GnuTLS
printf '%s\n' "${CPU_LINES[@]}"

# One connection is one vxhsd network thread's work, and with plaintext
# that thread is nearly always busy (the "busy" columns): TLS adds at least
# the encryption of each answer to it, which bounds TLS at plain / (plain +
# cipher) of plaintext however cheap the rest of TLS were.
printf '\nvxhsd network threads: CPU per I/O (us), share of one CPU, and the\n'
printf 'bound the encryption of each answer sets on that thread.\n'
printf '%-28s %8s %8s %7s %7s %8s %8s\n' test TLS plain "TLS" plain \
	cipher ceiling
printf '%-28s %8s %8s %7s %7s %8s %8s\n' "" "" "" busy busy "" thread
printf '%s\n' "${NET_LINES[@]}"
