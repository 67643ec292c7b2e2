# SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
# shellcheck shell=bash
# e2e-roles: target
#
# Scenario 1: targetcli lists user:vxhs, shows our help, creates a backstore
# with the documented syntax, refuses malformed ones with the handler's
# reason, and deleting the backstore closes the agent connections.

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
	refused "nosuchdisk@127.0.0.1" "no such vdisk"
	out=$(tcli "ls /backstores/user:vxhs")
	expect_not_in "refused backstores" "$out" "bad"

	# The documented syntax: agent with port, options.
	out=$(tcli "/backstores/user:vxhs create name=disk1 size=64M cfgstring=disk1@127.0.0.1/9999;conns=4;io_timeout=10")
	expect_not_in "create" "$out" "rror"
	out=$(tcli "ls /backstores/user:vxhs")
	expect_in "created backstore" "$out" "disk1"
	expect_in "created backstore" "$out" "disk1@127.0.0.1/9999;conns=4;io_timeout=10"
	# What the kernel hands tcmu-runner: the subtype, then our string.
	cfg=$(cat /sys/kernel/config/target/core/user_*/disk1/info)
	expect_in "configfs info" "$cfg" "vxhs/disk1@127.0.0.1/9999;conns=4;io_timeout=10"

	# Opened only when the LUN is enabled: give it one.
	tcli "/loopback create" "/loopback/ create" >/dev/null || true
	wwn=$(ls /sys/kernel/config/target/loopback | grep naa. | head -n1)
	tcli "/loopback/$wwn/luns create /backstores/user:vxhs/disk1" >/dev/null
	wait_loopback_disk
	expect_eq "agent connections with a LUN open" "$(agent_connections)" 4

	tcli "/loopback delete $wwn" "/backstores/user:vxhs delete disk1" >/dev/null
	wait_for "connections to close" 20 test "$(agent_connections)" -eq 0
	expect_eq "agent connections after delete" "$(agent_connections)" 0
	out=$(tcli "ls /backstores/user:vxhs")
	expect_not_in "after delete" "$out" "disk1"
}
