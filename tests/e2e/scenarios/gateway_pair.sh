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
# A write gw1 sent, held in vxhsd while gw2 takes the lock, never lands.
# Then dm-multipath over both paths, with the multipath.conf stanza
# vxhs-export prints: fio writes and verifies through the multipath
# device while the gateway holding the lock has its TPG disabled; I/O
# moves to the other gateway, which takes the lock, with no fio error;
# the first gateway comes back and I/O fails back to it the same way.

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

# fenced_held_write: gw1 sends a write while it holds the lock; vxhsd
# holds it (fault injection) while gw2 takes the lock and writes the same
# blocks, and gw1 goes away (its TPG disabled, as when the initiator
# fails over from a gateway that hangs). The held write must never land:
# the vdisk keeps gw2's bytes. (With gw1 still there, the initiator would
# retry the write after its BUSY, rightly, as a new write under a new
# epoch, and the bytes could not tell the two apart.)
fenced_held_write() {
	local ctl=/run/vxhsd/control.sock pid rc=0 out
	head -c 64k /dev/zero | tr '\0' '\104' >/tmp/held
	"$VXHSADM" fault --control "$ctl" delay write ha 20000 1 >/dev/null ||
		fail "cannot set the delay rule"
	# WRITE (10) of 128 blocks at LBA 8192 (4 MiB), through gw1.
	sg_raw -t 90 -s 65536 -i /tmp/held "$1" \
		2a 00 00 00 20 00 00 00 80 00 >"$E2E_WORK/held.txt" 2>&1 &
	pid=$!
	wait_for "gw1's write held in vxhsd" 30 sh -c \
		"\"$VXHSADM\" fault --control $ctl list | grep -q 'hits=1'"
	through "$2" 0x55
	expect_in "the lock" "$("$VXHSADM" lock ha)" "held by gw2"
	# Returns once LIO has the held command back from tcmu-runner.
	set_tpg gw1 0
	wait "$pid" || rc=$?
	out=$(cat "$E2E_WORK/held.txt")
	echo "$out"
	[ "$rc" -ne 0 ] || fail "the held write completed GOOD: $out"
	expect_in "vxhsd's log" "$(cat "$E2E_WORK/vxhsd.log")" \
		"fenced WRITE of vdisk ha made under lock epoch 3"
	"$VXHSADM" fault --control "$ctl" clear >/dev/null
	dd if="$VDISKS/ha" of=/tmp/back bs=1M skip=4 count=1 status=none
	cmp /tmp/pattern /tmp/back ||
		fail "the vdisk does not hold gw2's write: the held write landed"
	echo "ok: gw1's held write was fenced; the vdisk holds gw2's bytes"
	set_tpg gw1 1
	wait_for "gw1's path back" 120 sg_turs "$1"
}

# fio_across_failover N: fio writes and verifies through the map while
# the gateway holding the lock has its TPG disabled; I/O must move to
# the other gateway with no fio error. FAILED_GW is the gateway disabled.
fio_across_failover() {
	local rc=0 out fio_pid
	fio --name=failover --filename="$MAP" --rw=write --bs=64k \
		--size=16M --loops=6 --ioengine=libaio --iodepth=4 \
		--direct=1 --verify=crc32c --verify_fatal=1 \
		--output="$E2E_WORK/fio-failover$1.txt" &
	fio_pid=$!
	sleep 8
	FAILED_GW=$(lock_holder)
	say "Failover $1: disabling $FAILED_GW's TPG under fio"
	set_tpg "$FAILED_GW" 0
	wait "$fio_pid" || rc=$?
	out=$(cat "$E2E_WORK/fio-failover$1.txt")
	echo "$out"
	[ "$rc" -eq 0 ] || fail "fio through the multipath device failed ($rc)"
	expect_in "fio" "$out" "err= 0"
	out=$("$VXHSADM" lock ha)
	expect_not_in "the lock after failover $1" "$out" "held by $FAILED_GW"
	echo "ok: I/O moved off $FAILED_GW; $out"
}

# multipath_failover: a failover under fio, the failed gateway back (its
# TPG enabled, iscsid logged in again, the path reinstated in the map),
# then a failover of the other gateway under fio: I/O and the lock fail
# back to the first.
multipath_failover() {
	local first
	pair_multipath
	fio_across_failover 1
	first=$FAILED_GW
	set_tpg "$first" 1
	pair_reinstate "$first"
	fio_across_failover 2
	expect_in "the lock after the failback" "$("$VXHSADM" lock ha)" \
		"held by $first"
	multipath -F >/dev/null 2>&1 || true
}

scenario_target() {
	local out d1 d2
	# Only a write sent to vxhsd can be held there: gw1 does not write the
	# vdisk's file itself (docs/handler.md, "Local reads and writes";
	# test_local_writes checks fencing on that path).
	GW1_CFGSTRING="ha;local_writes=no"
	pair_target_up --control /run/vxhsd/control.sock
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

	say "A write of gw1's held in vxhsd while gw2 takes the lock"
	fenced_held_write "$d1" "$d2"

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
