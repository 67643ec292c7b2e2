# SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
# shellcheck shell=bash
#
# Two gateway guests exporting one vdisk (vxhs-export --gateway), for the
# scenarios that need them (gateway_pair, bench_failover): gw1 is the
# target guest (vxhsd, and the initiator), gw2 the remote guest, which
# reaches vxhsd over the network.

IQN_HA=iqn.2026-12.test.vxhs:pair
SERIAL=e2e-pair-serial

# export_as NAME CFGSTRING: this guest's half of the export.
export_as() {
	# EXPORTED: what vxhs-export printed (the multipath stanza)
	EXPORTED=$("$VXHS_EXPORT" add ha --size 64M --wwn "$SERIAL" --iqn "$IQN_HA" \
		--cfgstring "$2" --acl "$IQN_REMOTE" \
		--gateway "gw1=$TARGET_IP" --gateway "gw2=$REMOTE_IP" \
		--this-gateway "$1" 2>&1) || fail "vxhs-export add ($1): $EXPORTED"
	expect_in "vxhs-export add ($1)" "$EXPORTED" "reservations off"
}

# The map dm-multipath made of the two paths.
mpath_dev() {
	local name
	name=$(dmsetup ls --target multipath 2>/dev/null | awk 'NR == 1 { print $1 }')
	[ -n "$name" ] && [ -b "/dev/mapper/$name" ] && echo "/dev/mapper/$name"
}

# disk_of PORTAL: the disk of the iSCSI session through that portal.
disk_of() {
	iscsiadm -m session -P 3 2>/dev/null | awk -v p="$1" '
		/Current Portal:/ { mine = index($0, p ":3260") > 0 }
		mine && /Attached scsi disk/ { print "/dev/" $4; exit }'
}

# pair_target_up [VXHSD OPTION...]: gw1's half (its cfgstring
# $GW1_CFGSTRING, default "ha"), then the initiator logged
# in through both portals (a path whose gateway is gone fails in 5 s, for
# multipath); D1 and D2 are the disks of gw1's and gw2's paths.
pair_target_up() {
	net_up "$TARGET_IP"
	start_vxhsd "$@"
	TCMU_DEBUG=no start_tcmu_runner
	"$VXHSADM" create --dir "$VDISKS" ha 64M
	export_as gw1 "${GW1_CFGSTRING:-ha}"
	signal target-ready
	await remote-ready
	start_iscsid
	for p in "$TARGET_IP" "$REMOTE_IP"; do
		iscsiadm -m discovery -t sendtargets -p "$p" >/dev/null ||
			fail "discovery through $p"
		iscsiadm -m node -T "$IQN_HA" -p "$p" --op update \
			-n node.session.timeo.replacement_timeout -v 5 >/dev/null
		iscsiadm -m node -T "$IQN_HA" -p "$p" --login >/dev/null ||
			fail "login through $p"
	done
	wait_for "the disk through gw1" 60 test -n "$(disk_of "$TARGET_IP")"
	wait_for "the disk through gw2" 60 test -n "$(disk_of "$REMOTE_IP")"
	D1=$(disk_of "$TARGET_IP")
	D2=$(disk_of "$REMOTE_IP")
	echo "gw1's path: $D1, gw2's path: $D2"
}

# pair_multipath: dm-multipath over both paths, with the multipath.conf
# stanza vxhs-export printed; MAP is its device.
pair_multipath() {
	local out
	modprobe -a dm_multipath scsi_dh_alua
	# multipath takes only devices udev has seen: udevd for the paths.
	/lib/systemd/systemd-udevd --daemon >/dev/null 2>&1 ||
		fail "cannot start systemd-udevd"
	udevadm trigger --action=add --subsystem-match=block
	udevadm settle --timeout=60 || true
	{
		echo 'defaults {'
		echo '        user_friendly_names no'
		echo '        find_multipaths no'
		echo '}'
		printf '%s\n' "$EXPORTED" | sed -n '/^devices {/,/^}/p'
	} >/etc/multipath.conf
	multipath -v3 >"$E2E_WORK/multipath.log" 2>&1 || true
	dmsetup mknodes
	mpath_dev >/dev/null || {
		tail -n 40 "$E2E_WORK/multipath.log"
		dmsetup ls
		fail "no multipath map (multipath -v3 in multipath.log)"
	}
	MAP=$(mpath_dev)
	out=$(multipath -ll 2>&1)
	printf '%s\n' "$out"
	expect_in "multipath -ll" "$out" "hwhandler='1 alua'"
	expect_eq "paths in the map" "$(printf '%s\n' "$out" | grep -c 'sd[a-z] ')" 2
}

# lock_holder: gw1 or gw2.
lock_holder() {
	"$VXHSADM" lock ha | sed -n 's/.*held by \(gw[12]\).*/\1/p'
}

# pair_reinstate GATEWAY: once the gateway's path answers again (iscsid
# logs in again by itself), its path goes back into the map; without
# multipathd nobody else checks failed paths.
pair_reinstate() {
	local disk
	disk=$([ "$1" = gw1 ] && echo "$D1" || echo "$D2")
	wait_for "$1's path" 120 sg_turs "$disk"
	dmsetup message "${MAP#/dev/mapper/}" 0 "reinstate_path $(
		cat "/sys/class/block/${disk#/dev/}/dev")" ||
		fail "cannot reinstate $1's path"
}

# set_tpg GATEWAY 0|1: disables or enables that gateway's TPG (gw2's
# through the remote guest, which answers with sync.tpg-done).
set_tpg() {
	if [ "$1" = gw1 ]; then
		echo "$2" >/sys/kernel/config/target/iscsi/$IQN_HA/tpgt_1/enable
		return
	fi
	rm -f "$E2E_WORK/sync.tpg-done"
	echo "$2" >"$E2E_WORK/tpg-gw2.new"
	mv "$E2E_WORK/tpg-gw2.new" "$E2E_WORK/tpg-gw2"
	await tpg-done
}

# pair_remote_serve: gw2's half; then sets its TPG as the target asks
# until the target is done.
pair_remote_serve() {
	net_up "$REMOTE_IP"
	await target-ready
	TCMU_DEBUG=no start_tcmu_runner
	export_as gw2 "ha@$TARGET_IP;plaintext"
	signal remote-ready
	for _ in $(seq 2400); do
		[ -e "$E2E_WORK/sync.target-done" ] && return 0
		[ -e "$E2E_WORK/sync.abort" ] && fail "the other guest failed"
		if [ -e "$E2E_WORK/tpg-gw2" ]; then
			cat "$E2E_WORK/tpg-gw2" >/sys/kernel/config/target/iscsi/$IQN_HA/tpgt_2/enable
			echo "gw2's TPG enable = $(cat "$E2E_WORK/tpg-gw2")"
			rm -f "$E2E_WORK/tpg-gw2"
			signal tpg-done
		fi
		sleep 0.2
	done
	fail "the target never finished"
}
