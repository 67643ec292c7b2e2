# SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
# shellcheck shell=bash
# e2e-roles: target remote
#
# Two gateways, each a guest with its own kernel, LIO and tcmu-runner,
# exporting one vdisk as vxhs-export --gateway sets them up: gw1 (the
# target guest, also running vxhsd and the initiator) and gw2 (the remote
# guest, reaching vxhsd over the network). The initiator logs in through
# both portals and writes through one path, then the other, then the
# first again: each time the other gateway's tcmu-runner takes the
# vdisk's lock from the first (fencing it), and every write lands where
# the other path reads it. PERSISTENT RESERVE is refused on both paths.
# Then dm-multipath over both paths, with the multipath.conf stanza
# vxhs-export prints: fio writes and verifies through the multipath
# device while the gateway holding the lock has its TPG disabled; I/O
# moves to the other gateway, which takes the lock, with no fio error.

. "$E2E_SRC/tests/e2e/pair.sh"

# through DISK BYTE: 1 MiB of BYTE written at 4 MiB through DISK.
through() {
	head -c 1M /dev/zero | tr '\0' "\\$(printf '%03o' "$2")" >/tmp/pattern
	dd if=/tmp/pattern of="$1" bs=1M seek=4 oflag=direct status=none ||
		fail "write through $1"
}

# reads DISK: what DISK reads at 4 MiB is the last pattern written.
reads() {
	dd if="$1" of=/tmp/back bs=1M skip=4 count=1 iflag=direct status=none ||
		fail "read through $1"
	cmp /tmp/pattern /tmp/back || fail "$1 does not read the last write"
	echo "ok: $1 reads the last write"
}

# multipath_failover: fio through the map; the lock holder's TPG
# disabled while it runs.
multipath_failover() {
	local out holder fio_pid rc=0
	pair_multipath
	fio --name=failover --filename="$MAP" --rw=write --bs=64k \
		--size=16M --loops=6 --ioengine=libaio --iodepth=4 \
		--direct=1 --verify=crc32c --verify_fatal=1 \
		--output="$E2E_WORK/fio-failover.txt" &
	fio_pid=$!
	sleep 8
	holder=$(lock_holder)
	say "Disabling $holder's TPG under fio"
	set_tpg "$holder" 0
	wait "$fio_pid" || rc=$?
	cat "$E2E_WORK/fio-failover.txt"
	[ "$rc" -eq 0 ] || fail "fio through the multipath device failed ($rc)"
	expect_in "fio" "$(cat "$E2E_WORK/fio-failover.txt")" "err= 0"
	out=$("$VXHSADM" lock ha)
	expect_not_in "the lock after the failover" "$out" "held by $holder"
	echo "ok: I/O moved off $holder; $out"
	multipath -F >/dev/null 2>&1 || true
}

scenario_target() {
	local out d1 d2
	pair_target_up
	d1=$D1 d2=$D2
	for d in "$d1" "$d2"; do
		sg_turs "$d" >/dev/null 2>&1 || true
		expect_in "$d: unit serial" "$(sg_inq -p 0x80 "$d" 2>&1)" "$SERIAL"
		out=$(sg_persist --in -k "$d" 2>&1) &&
			fail "PERSISTENT RESERVE IN answered through $d: $out"
		expect_in "$d: PERSISTENT RESERVE IN" "$out" "Illegal request"
	done

	say "Writes through gw1, then gw2, then gw1: the lock follows them"
	through "$d1" 0x11
	reads "$d2"
	expect_in "the lock" "$("$VXHSADM" lock ha)" "held by gw1"
	through "$d2" 0x22
	reads "$d1"
	expect_in "the lock" "$("$VXHSADM" lock ha)" "held by gw2"
	through "$d1" 0x33
	reads "$d2"
	out=$("$VXHSADM" lock ha)
	expect_in "the lock" "$out" "held by gw1"
	expect_in "the lock" "$out" "epoch 3"
	out=$(cat "$E2E_WORK/vxhsd.log")
	expect_in "vxhsd's log" "$out" "lock taken by gw2"
	expect_in "vxhsd's log" "$out" "broken from gw1"
	expect_in "vxhsd's log" "$out" "broken from gw2"

	say "dm-multipath: a gateway fails under fio"
	multipath_failover

	say "Cleaning up"
	iscsiadm -m node -T "$IQN_HA" --logout >/dev/null 2>&1 || true
	signal target-done
}

scenario_remote() {
	pair_remote_serve
	grep -h "took vdisk ha from gw1" "$E2E_WORK"/tcmu-logs/*.log \
		"$E2E_WORK/tcmu-runner.out" 2>/dev/null | head -n 1 | grep -q . ||
		fail "gw2's tcmu-runner did not log taking the lock from gw1"
	echo "ok: gw2's tcmu-runner logged taking the lock from gw1"
}
