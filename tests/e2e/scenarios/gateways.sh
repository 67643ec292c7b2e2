# SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
# shellcheck shell=bash
# e2e-roles: target
#
# One gateway of two, as vxhs-export --gateway sets it up (docs/ha.md):
# the LIO layout (one TPG per gateway, only ours enabled; implicit ALUA
# groups; the same serial; reservations off), what an iSCSI initiator on
# this host sees (two target port groups; PERSISTENT RESERVE refused),
# and tcmu-runner driving the vdisk's lock through the handler: the first
# write takes it, and when it is broken (the holder fenced, as another
# gateway taking it would) the next write takes it back and lands.

IQN_HA=iqn.2026-12.test.vxhs:ha
SERIAL=e2e-ha-serial

# check_layout: what vxhs-export made of the two gateways, in configfs.
check_layout() {
	local core t=/sys/kernel/config/target
	core=$(ls -d $t/core/user_*/ha)
	expect_eq "emulate_pr" "$(cat "$core/attrib/emulate_pr")" 0
	expect_in "unit serial" "$(cat "$core/wwn/vpd_unit_serial")" "$SERIAL"
	expect_eq "gw-gw1 id" "$(cat "$core/alua/gw-gw1/tg_pt_gp_id")" 11
	expect_eq "gw-gw2 id" "$(cat "$core/alua/gw-gw2/tg_pt_gp_id")" 12
	expect_in "gw-gw1 access" "$(cat "$core/alua/gw-gw1/alua_access_type")" "Implicit"
	expect_eq "gw-gw1 state" "$(cat "$core/alua/gw-gw1/alua_access_state")" 0
	expect_eq "gw-gw2 state" "$(cat "$core/alua/gw-gw2/alua_access_state")" 1
	expect_eq "TPG 1 (gw1) enabled" "$(cat $t/iscsi/$IQN_HA/tpgt_1/enable)" 1
	expect_eq "TPG 2 (gw2) enabled" "$(cat $t/iscsi/$IQN_HA/tpgt_2/enable)" 0
	expect_eq "TPG 2 portals" "$(ls $t/iscsi/$IQN_HA/tpgt_2/np)" ""
	expect_in "TPG 1 LUN's group" \
		"$(cat $t/iscsi/$IQN_HA/tpgt_1/lun/lun_0/alua_tg_pt_gp)" gw-gw1
	expect_in "TPG 2 LUN's group" \
		"$(cat $t/iscsi/$IQN_HA/tpgt_2/lun/lun_0/alua_tg_pt_gp)" gw-gw2
	expect_in "the handler's cfgstring" "$(cat "$core/info")" "gateway=gw1"
	expect_eq "loopback LUNs" "$(ls $t/loopback 2>/dev/null | grep naa.)" ""
}

# lock_line: vxhsadm's line about the vdisk's lock.
lock_line() {
	"$VXHSADM" lock ha 2>&1
}

scenario_target() {
	local out disk
	start_vxhsd
	TCMU_DEBUG=no start_tcmu_runner
	"$VXHSADM" create --dir "$VDISKS" ha 64M

	say "vxhs-export add with two gateways, this one gw1"
	out=$("$VXHS_EXPORT" add ha --size 64M --wwn "$SERIAL" --iqn "$IQN_HA" \
		--acl "$IQN_REMOTE" --gateway gw1=127.0.0.1 \
		--gateway gw2=10.199.0.9 --this-gateway gw1 2>&1) ||
		fail "vxhs-export add: $out"
	printf '%s\n' "$out"
	expect_in "vxhs-export output" "$out" "reservations off"
	expect_in "vxhs-export output" "$out" 'hardware_handler       "1 alua"'
	out=$("$VXHS_EXPORT" add ha2 --size 64M --wwn "$SERIAL" --iqn "$IQN_HA" \
		--acl "$IQN_REMOTE" --gateway gw1=127.0.0.1 \
		--gateway gw2=10.199.0.9 --this-gateway gw1 --pr 2>&1) &&
		fail "--pr with two gateways was accepted"
	expect_in "--pr with two gateways" "$out" "cannot be kept coherent"

	say "The LIO layout"
	check_layout

	say "The saved configuration brings it all back (as at boot)"
	out=$(targetctl clear 2>&1) || fail "targetctl clear: $out"
	expect_no_exports
	out=$(targetctl restore 2>&1) || fail "targetctl restore: $out"
	check_layout

	say "An initiator logs in through gw1's portal"
	start_iscsid
	iscsiadm -m discovery -t sendtargets -p 127.0.0.1 >/dev/null
	iscsiadm -m node -T "$IQN_HA" -p 127.0.0.1 --login >/dev/null ||
		fail "iSCSI login"
	wait_for "the iSCSI disk" 60 iscsi_disk
	disk=$(iscsi_disk)
	sg_turs "$disk" >/dev/null 2>&1 || true
	out=$(sg_rtpg "$disk" 2>&1) || fail "sg_rtpg: $out"
	printf '%s\n' "$out"
	expect_in "REPORT TARGET PORT GROUPS" "$out" "target port group id : 0xb"
	expect_in "REPORT TARGET PORT GROUPS" "$out" "target port group id : 0xc"
	out=$(sg_persist --in -k "$disk" 2>&1) &&
		fail "PERSISTENT RESERVE IN was answered: $out"
	expect_in "PERSISTENT RESERVE IN" "$out" "Illegal request"
	expect_eq "the lock before any write" "$(lock_line)" \
		"lock:        free (never taken)"

	say "The first write makes tcmu-runner take the lock"
	head -c 1M /dev/urandom >/tmp/one
	dd if=/tmp/one of="$disk" bs=1M oflag=direct status=none ||
		fail "the first write through gw1"
	out=$(lock_line)
	expect_in "the lock" "$out" "held by gw1 since"
	expect_in "the lock" "$out" "epoch 1"

	say "The lock broken (gw1 fenced); the next write takes it back"
	out=$("$VXHSADM" lock --break ha 2>&1) || fail "vxhsadm lock --break: $out"
	expect_in "vxhsadm lock --break" "$out" "fencing gw1"
	head -c 1M /dev/urandom >/tmp/two
	dd if=/tmp/two of="$disk" bs=1M oflag=direct status=none ||
		fail "the write after the lock was broken"
	dd if="$disk" of=/tmp/back bs=1M count=1 iflag=direct status=none
	cmp /tmp/two /tmp/back || fail "the write after the takeover did not land"
	echo "ok: the second write landed"
	out=$(lock_line)
	expect_in "the lock" "$out" "held by gw1 since"
	expect_in "the lock" "$out" "epoch 3"
	out=$(cat "$E2E_WORK/vxhsd.log")
	expect_in "vxhsd's log" "$out" "fenced WRITE of vdisk ha made under lock epoch 1"
	out=$(cat "$E2E_WORK"/tcmu-logs/*.log "$E2E_WORK/tcmu-runner.out" 2>/dev/null)
	expect_in "tcmu-runner's log" "$out" "fenced: the lock is another gateway's"
	expect_in "tcmu-runner's log" "$out" "gateway gw1 took vdisk ha at epoch 3"

	say "Cleaning up"
	iscsiadm -m node -T "$IQN_HA" -p 127.0.0.1 --logout >/dev/null
	out=$("$VXHS_EXPORT" remove ha 2>&1) || fail "vxhs-export remove: $out"
	expect_no_exports
}
