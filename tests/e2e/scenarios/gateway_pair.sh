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

IQN_HA=iqn.2026-12.test.vxhs:pair
SERIAL=e2e-pair-serial

# export_as NAME CFGSTRING: this guest's half of the export.
export_as() {
	local out
	out=$("$VXHS_EXPORT" add ha --size 64M --wwn "$SERIAL" --iqn "$IQN_HA" \
		--cfgstring "$2" --acl "$IQN_REMOTE" \
		--gateway "gw1=$TARGET_IP" --gateway "gw2=$REMOTE_IP" \
		--this-gateway "$1" 2>&1) || fail "vxhs-export add ($1): $out"
	expect_in "vxhs-export add ($1)" "$out" "reservations off"
}

# disk_of PORTAL: the disk of the iSCSI session through that portal.
disk_of() {
	iscsiadm -m session -P 3 2>/dev/null | awk -v p="$1" '
		/Current Portal:/ { mine = index($0, p ":3260") > 0 }
		mine && /Attached scsi disk/ { print "/dev/" $4; exit }'
}

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

scenario_target() {
	local out d1 d2
	net_up "$TARGET_IP"
	start_vxhsd
	TCMU_DEBUG=no start_tcmu_runner
	"$VXHSADM" create --dir "$VDISKS" ha 64M
	export_as gw1 ha
	signal target-ready
	await remote-ready

	say "The initiator logs in through both gateways"
	start_iscsid
	for p in "$TARGET_IP" "$REMOTE_IP"; do
		iscsiadm -m discovery -t sendtargets -p "$p" >/dev/null ||
			fail "discovery through $p"
		iscsiadm -m node -T "$IQN_HA" -p "$p" --login >/dev/null ||
			fail "login through $p"
	done
	wait_for "the disk through gw1" 60 test -n "$(disk_of "$TARGET_IP")"
	wait_for "the disk through gw2" 60 test -n "$(disk_of "$REMOTE_IP")"
	d1=$(disk_of "$TARGET_IP")
	d2=$(disk_of "$REMOTE_IP")
	echo "gw1's path: $d1, gw2's path: $d2"
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

	say "Cleaning up"
	iscsiadm -m node -T "$IQN_HA" --logout >/dev/null 2>&1 || true
	signal target-done
}

scenario_remote() {
	net_up "$REMOTE_IP"
	await target-ready
	TCMU_DEBUG=no start_tcmu_runner
	export_as gw2 "ha@$TARGET_IP;plaintext"
	signal remote-ready
	await target-done
	grep -h "took vdisk ha from gw1" "$E2E_WORK"/tcmu-logs/*.log \
		"$E2E_WORK/tcmu-runner.out" 2>/dev/null | head -n 1 | grep -q . ||
		fail "gw2's tcmu-runner did not log taking the lock from gw1"
	echo "ok: gw2's tcmu-runner logged taking the lock from gw1"
}
