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

# multipath_failover: fio through the map; the lock holder's TPG
# disabled while it runs.
multipath_failover() {
	local out holder map fio_pid rc=0
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
	map=$(mpath_dev)
	out=$(multipath -ll 2>&1)
	printf '%s\n' "$out"
	expect_in "multipath -ll" "$out" "hwhandler='1 alua'"
	expect_eq "paths in the map" "$(printf '%s\n' "$out" | grep -c 'sd[a-z] ')" 2

	fio --name=failover --filename="$map" --rw=write --bs=64k \
		--size=16M --loops=6 --ioengine=libaio --iodepth=4 \
		--direct=1 --verify=crc32c --verify_fatal=1 \
		--output="$E2E_WORK/fio-failover.txt" &
	fio_pid=$!
	sleep 8
	holder=$("$VXHSADM" lock ha | sed -n 's/.*held by \(gw[12]\).*/\1/p')
	say "Disabling $holder's TPG under fio"
	if [ "$holder" = gw1 ]; then
		echo 0 >/sys/kernel/config/target/iscsi/$IQN_HA/tpgt_1/enable
	else
		signal disable-gw2
	fi
	wait "$fio_pid" || rc=$?
	cat "$E2E_WORK/fio-failover.txt"
	[ "$rc" -eq 0 ] || fail "fio through the multipath device failed ($rc)"
	expect_in "fio" "$(cat "$E2E_WORK/fio-failover.txt")" "err= 0"
	out=$("$VXHSADM" lock ha)
	expect_not_in "the lock after the failover" "$out" "held by $holder"
	echo "ok: I/O moved off $holder; $out"
	multipath -F >/dev/null 2>&1 || true
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
		# A path whose gateway is gone fails in 5 s, for multipath.
		iscsiadm -m node -T "$IQN_HA" -p "$p" --op update \
			-n node.session.timeo.replacement_timeout -v 5 >/dev/null
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

	say "dm-multipath: a gateway fails under fio"
	multipath_failover

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
	# Until the target is done: disable this gateway's TPG when asked.
	for _ in $(seq 1200); do
		[ -e "$E2E_WORK/sync.target-done" ] && break
		[ -e "$E2E_WORK/sync.abort" ] && fail "the other guest failed"
		if [ -e "$E2E_WORK/sync.disable-gw2" ]; then
			rm -f "$E2E_WORK/sync.disable-gw2"
			echo 0 >/sys/kernel/config/target/iscsi/$IQN_HA/tpgt_2/enable
			echo "ok: gw2's TPG disabled"
		fi
		sleep 0.5
	done
	[ -e "$E2E_WORK/sync.target-done" ] || fail "the target never finished"
	grep -h "took vdisk ha from gw1" "$E2E_WORK"/tcmu-logs/*.log \
		"$E2E_WORK/tcmu-runner.out" 2>/dev/null | head -n 1 | grep -q . ||
		fail "gw2's tcmu-runner did not log taking the lock from gw1"
	echo "ok: gw2's tcmu-runner logged taking the lock from gw1"
}
