# SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
# shellcheck shell=bash
# e2e-roles: target
#
# Scenario 1: targetcli lists user:vxhs, shows our help, creates a backstore
# with the documented syntax, refuses malformed ones with the handler's
# reason, and deleting the backstore closes the agent connections. Then
# the operator's helper vxhs-export and the example saved configuration.

# refused CFGSTRING REASON
refused() {
	local out
	out=$(tcli "/backstores/user:vxhs create name=bad size=64M cfgstring=$1")
	expect_in "cfgstring=$1" "$out" "$2"
}

scenario_target() {
	start_vxhsd
	start_tcmu_runner
	"$VXHSADM" create --dir "$VDISKS" disk1 64M

	out=$(tcli "ls /backstores")
	expect_in "backstores" "$out" "user:vxhs"

	out=$(tcli "/backstores/user:vxhs help create")
	expect_in "help create" "$out" "VDISK[@AGENT[+AGENT...]]"
	expect_in "help create" "$out" "Example: cfgstring=disk1@"

	# Malformed strings: refused, the handler's reason shown.
	refused "disk1;conns=99" "conns='99': not a whole number from 1 to 64"
	refused "disk1@[fd00--5;io_timeout=1" "missing ']' after the IPv6 address"
	refused "nosuchdisk@127.0.0.1;plaintext" "no such vdisk"
	# TCP without TLS only when asked for.
	refused "disk1@127.0.0.1" "agent 127.0.0.1:9999 is reached over TCP, and no TLS credentials are set up"
	out=$(tcli "ls /backstores/user:vxhs")
	expect_not_in "refused backstores" "$out" "bad"

	# The documented syntax: agent with port, options.
	out=$(tcli "/backstores/user:vxhs create name=disk1 size=64M cfgstring=disk1@127.0.0.1/9999;plaintext;conns=4;io_timeout=10")
	expect_not_in "create" "$out" "rror"
	out=$(tcli "ls /backstores/user:vxhs")
	expect_in "created backstore" "$out" "disk1"
	expect_in "created backstore" "$out" "disk1@127.0.0.1/9999;plaintext;conns=4;io_timeout=10"
	# What the kernel hands tcmu-runner: the subtype, then our string.
	cfg=$(cat /sys/kernel/config/target/core/user_*/disk1/info)
	expect_in "configfs info" "$cfg" "vxhs/disk1@127.0.0.1/9999;plaintext;conns=4;io_timeout=10"

	# Opened only when the LUN is enabled: give it one.
	tcli "/loopback create" >/dev/null
	wwn=$(ls /sys/kernel/config/target/loopback | grep naa. | head -n1)
	tcli "/loopback/$wwn/luns create /backstores/user:vxhs/disk1" >/dev/null
	wait_loopback_disk
	expect_eq "agent connections with a LUN open" "$(agent_connections)" 4

	tcli "/loopback delete $wwn" "/backstores/user:vxhs delete disk1" >/dev/null
	wait_for "connections to close" 20 test "$(agent_connections)" -eq 0
	expect_eq "agent connections after delete" "$(agent_connections)" 0
	out=$(tcli "ls /backstores/user:vxhs")
	expect_not_in "after delete" "$out" "disk1"

	vxhs_export
}

# The operator's helper, targetcli/vxhs-export: refusals name the problem
# and leave nothing behind; add exports everything, remove takes it all
# away; the example saved configuration restores with targetctl.
vxhs_export() {
	local out
	(umask 077 && echo "$CHAP_SECRET" >/tmp/chap-secret)
	export_refused "needs --acl INITIATOR_IQN" add disk1 --size 64M
	export_refused "--acl 'bogus': not an iSCSI name" \
		add disk1 --size 64M --acl bogus
	export_refused "--portal '10.0.0.300': '10.0.0.300' is not an IP" \
		add disk1 --size 64M --acl "$IQN_REMOTE" --portal 10.0.0.300
	export_refused "refused by handler_vxhs: conns='0'" \
		add disk1 --size 64M --cfgstring "disk1;conns=0" --no-iscsi
	export_refused "refused by handler_vxhs: cannot open vdisk nosuchdisk: agent unix:/run/vxhsd/vxhsd.sock: no such vdisk" \
		add disk1 --size 64M --cfgstring nosuchdisk --no-iscsi
	chmod 644 /tmp/chap-secret
	export_refused "readable by others" add disk1 --size 64M \
		--acl "$IQN_REMOTE" --chap-user u --chap-secret-file /tmp/chap-secret
	chmod 600 /tmp/chap-secret
	# Fails after the backstore exists (a LUN of the same iSCSI name is
	# there already): the backstore is undone.
	tcli "/iscsi create $IQN_TARGET" >/dev/null
	export_refused "already exists" add disk1 --size 64M \
		--iqn "$IQN_TARGET" --acl "$IQN_REMOTE"
	tcli "/iscsi delete $IQN_TARGET" >/dev/null
	expect_no_exports

	EXPORTED=$("$VXHS_EXPORT" add disk1 --size 64M --iqn "$IQN_TARGET" \
		--portal 127.0.0.1:3260 --acl "$IQN_REMOTE" --chap-user "$CHAP_USER" \
		--chap-secret-file /tmp/chap-secret 2>&1) || fail "add: $EXPORTED"
	printf '%s\n' "$EXPORTED"
	found_loopback_lun
	local tpg=/sys/kernel/config/target/iscsi/$IQN_TARGET/tpgt_1
	local so
	so=$(ls -d /sys/kernel/config/target/core/user_*/disk1)
	# 1 MiB commands, not LIO's 64 KiB for user backstores
	expect_eq "hw_max_sectors" "$(cat "$so/attrib/hw_max_sectors")" 2048
	expect_eq "data area" "$(cat "$so/attrib/max_data_area_mb")" 64
	expect_eq "tpg enabled" "$(cat $tpg/enable)" 1
	expect_eq "tpg authentication" "$(cat $tpg/attrib/authentication)" 1
	expect_eq "portal" "$(ls $tpg/np)" "127.0.0.1:3260"
	expect_eq "ACL CHAP user" "$(cat $tpg/acls/$IQN_REMOTE/auth/userid)" "$CHAP_USER"
	expect_eq "ACL LUN" "$(ls $tpg/acls/$IQN_REMOTE | grep lun_)" "lun_0"
	out=$("$VXHS_EXPORT" list)
	expect_in "list" "$out" "disk1  disk1  67108864 bytes"
	expect_in "list" "$out" "iscsi     $IQN_TARGET LUN 0"
	expect_in "list" "$out" "$DISK"
	out=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))
print(" ".join(so["config"] for so in d["storage_objects"]))' \
		/etc/rtslib-fb-target/saveconfig.json)
	expect_eq "saved configuration" "$out" "vxhs/disk1"
	export_refused "backstore user:disk1 already exists" add disk1 --size 64M --no-iscsi
	unexport_disk1
	export_refused "no vxhs backstore named 'disk1'" remove disk1

	# targetctl answers 0 even when it restored nothing: check its words.
	out=$(targetctl restore "$E2E_SRC/targetcli/examples/vxhs-saveconfig.json" 2>&1) ||
		fail "targetctl restore: $out"
	[ -z "$out" ] || fail "targetctl restore: $out"
	echo "ok: targetctl restore accepted the example"
	out=$("$VXHS_EXPORT" list)
	expect_in "restored" "$out" "disk1  disk1;conns=4  67108864 bytes"
	expect_in "restored" "$out" "loopback"
	expect_in "restored" "$out" "iscsi     iqn.2026-11.com.example.storage:vxhs-disk1 LUN 0"
	wait_loopback_disk
	dd if="$DISK" of=/dev/null bs=1M count=1 iflag=direct status=none ||
		fail "the restored LUN does not read"
	echo "ok: the restored loopback LUN $DISK reads"
	unexport_disk1
}

# export_refused REASON ARGS...: vxhs-export fails naming REASON.
export_refused() {
	local reason=$1 out rc=0
	shift
	out=$("$VXHS_EXPORT" "$@" 2>&1) || rc=$?
	[ "$rc" -ne 0 ] || fail "vxhs-export $* succeeded"
	expect_in "vxhs-export $*" "$out" "$reason"
	expect_not_in "vxhs-export $*" "$out" "Traceback"
}
