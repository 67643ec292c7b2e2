# SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
# shellcheck shell=bash
# e2e-roles: target
#
# A benchmark, not a ctest (tools/bench/guest-xcopy.sh): COPY_MB copied
# from one user:vxhs LUN to another of the same copy domain, by sg_xcopy
# (EXTENDED COPY: the handler asks vxhsd to COPY, no data crosses the
# gateway) and by dd through the loopback initiator (1 MiB direct reads
# and writes), alternating in rounds. Each copy is checked against the
# source file, and the agent's request counters say what reached it.
# "method round secs=S copy=N read=N write=N" lines go to results.txt.
# TCG guest on a busy host: read the ratio, not the figures.

COPY_MB=${BENCH_XCOPY_MB:-256}
ROUNDS=${BENCH_ROUNDS:-3}
CTL=/run/vxhsd-control.sock

# export_vdisk NAME: the /dev/sdX of NAME exported through a loopback LUN.
export_vdisk() {
	local out disk
	out=$("$VXHS_EXPORT" add "$1" --size ${COPY_MB}M --no-iscsi \
		--cfgstring "$1;copy_domain=bench" 2>&1) ||
		fail "vxhs-export add $1: $out"
	disk=$(sed -n 's|^loopback .* -> \(/dev/sd[a-z]*\)$|\1|p' <<<"$out")
	[ -b "$disk" ] || fail "no loopback disk for $1: $out"
	sg_turs "$disk" >/dev/null 2>&1 || true # the UA of the new LUN
	echo "$disk"
}

# run METHOD ROUND COMMAND...: times COMMAND, checks the copy, and
# empties the destination again for the next one.
run() {
	local method=$1 round=$2 t0 t1 c r w
	shift 2
	c=$(agent_count $CTL copy) r=$(agent_count $CTL read)
	w=$(agent_count $CTL write)
	t0=$(date +%s.%N)
	"$@" >>"$E2E_WORK/copies.log" 2>&1 || fail "$method: $*"
	t1=$(date +%s.%N)
	cmp "$VDISKS/src" "$VDISKS/dst" || fail "$method: the copy differs"
	printf '%s %s secs=%s copy=%s read=%s write=%s\n' "$method" "$round" \
		"$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')" \
		$(($(agent_count $CTL copy) - c)) \
		$(($(agent_count $CTL read) - r)) \
		$(($(agent_count $CTL write) - w)) |
		tee -a "$E2E_WORK/results.txt"
	truncate -s 0 "$VDISKS/dst"
	truncate -s ${COPY_MB}M "$VDISKS/dst"
}

scenario_target() {
	local src dst r blocks=$((COPY_MB * 2048))
	start_vxhsd --control $CTL
	TCMU_DEBUG=no start_tcmu_runner
	"$VXHSADM" create --dir "$VDISKS" src ${COPY_MB}M
	"$VXHSADM" create --dir "$VDISKS" dst ${COPY_MB}M
	dd if=/dev/urandom of="$VDISKS/src" bs=1M count=$COPY_MB \
		conv=notrunc status=none
	src=$(export_vdisk src)
	dst=$(export_vdisk dst)
	for r in $(seq "$ROUNDS"); do
		# 16 MiB segments: 16 EXTENDED COPY commands for 256 MiB.
		run xcopy "$r" sg_xcopy if="$(sg_node "$src")" \
			of="$(sg_node "$dst")" bs=512 \
			count=$blocks bpt=32768
		run dd "$r" dd if="$src" of="$dst" bs=1M count=$COPY_MB \
			iflag=direct oflag=direct status=none
	done
	echo "ok: results in $E2E_WORK/results.txt"
}
