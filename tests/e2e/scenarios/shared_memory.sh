# SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
# shellcheck shell=bash
# e2e-roles: target
#
# Scenario: the local fast paths with vxhsd on its UNIX socket (the
# default agent).
# - Local reads and writes (the default): fio verifies data over the whole
#   LUN with no WRITE at vxhsd, the bytes are in the vdisk file, and once
#   cached the whole LUN reads back with no READ at vxhsd.
# - With local_reads=no and local_writes=no, the TCMU data area is shared:
#   vxhsd maps the LUN's /dev/uioN, fio verifies data through it, every
#   WRITE at vxhsd, and tcmu-runner's log has no fallback. Removing the
#   LUN lets the mapping go (vxhsd's session ends with the handler's
#   connections).
# - With shared_memory=no as well, the data goes through the socket,
#   every read at vxhsd, and vxhsd maps nothing.

LUN_MB=32
CTL=/run/vxhsd/control.sock
# shellcheck disable=SC2034 # loopback_lun passes it to vxhsd
VXHSD_EXTRA=(--control "$CTL")

# vxhsd's mappings of TCMU data areas.
uio_maps() {
	grep -c ' /dev/uio' "/proc/$VXHSD_PID/maps" || true
}

no_uio_maps() {
	[ "$(uio_maps)" = 0 ]
}

# fio_verify WHAT: random writes of 4 KiB to 1 MiB over the whole LUN,
# verified; WRITES: the WRITEs vxhsd saw meanwhile.
fio_verify() {
	local before
	before=$(agent_count "$CTL" write)
	fio --name=verify --filename="$DISK" --direct=1 --ioengine=libaio \
		--iodepth=16 --rw=randwrite --bsrange=4k-1m --size=100% \
		--verify=crc32c --verify_fatal=1 --do_verify=1 \
		--randrepeat=0 --output="$E2E_WORK/fio-$1.txt"
	out=$(cat "$E2E_WORK/fio-$1.txt")
	expect_in "fio ($1)" "$out" "err= 0"
	expect_not_in "fio ($1)" "$out" "verify: bad"
	WRITES=$(($(agent_count "$CTL" write) - before))
}

bytes_in_vdisk_file() {
	head -c 1M /dev/urandom >/tmp/pattern
	dd if=/tmp/pattern of="$DISK" bs=1M seek=7 oflag=direct status=none
	dd if="$VDISKS/disk1" of=/tmp/in-file bs=1M skip=7 count=1 status=none
	cmp /tmp/pattern /tmp/in-file ||
		fail "vdisk file differs from what was written ($1)"
	echo "ok: 1 MiB written at 7 MiB is in the vdisk file ($1)"
}

# lun_reads WHAT: reads the whole LUN twice (the first brings every page
# into the cache), compares the second with the vdisk file, and sets
# READS to the READs vxhsd saw during the second.
lun_reads() {
	local before
	dd if="$DISK" of=/dev/null bs=1M iflag=direct status=none
	before=$(agent_count "$CTL" read)
	dd if="$DISK" of=/tmp/lun-copy bs=64k iflag=direct status=none
	READS=$(($(agent_count "$CTL" read) - before))
	cmp /tmp/lun-copy "$VDISKS/disk1" ||
		fail "the LUN read back differs from the vdisk file ($1)"
	echo "ok: the LUN reads back the vdisk file ($1)"
}

# export_disk1 CFGSTRING
export_disk1() {
	EXPORTED=$("$VXHS_EXPORT" add disk1 --size ${LUN_MB}M \
		--cfgstring "$1" --no-iscsi 2>&1) ||
		fail "vxhs-export add: $EXPORTED"
	found_loopback_lun
}

scenario_target() {
	loopback_lun ${LUN_MB}M
	say "local reads and writes"
	fio_verify local
	expect_eq "WRITEs vxhsd saw during fio, local writes" "$WRITES" 0
	bytes_in_vdisk_file local
	expect_in "tcmu-runner.log" \
		"$(cat "$E2E_WORK"/tcmu-logs/tcmu-runner.log)" \
		"cached data read from, and writes go to the agent's file"
	lun_reads cached
	expect_eq "READs vxhsd saw for the whole LUN, cached" "$READS" 0
	unexport_disk1
	wait_for "vxhsd to let the data area go" 45 no_uio_maps

	say "local_reads=no, local_writes=no: the shared data area"
	export_disk1 "disk1;local_reads=no;local_writes=no"
	fio_verify shared
	[ "$WRITES" -gt 0 ] || fail "local_writes=no: vxhsd saw no WRITE"
	echo "ok: local_writes=no: vxhsd saw $WRITES WRITEs"
	maps=$(uio_maps)
	[ "$maps" -gt 0 ] || fail "vxhsd maps no TCMU data area"
	echo "ok: vxhsd maps the data area ($maps mappings, one per connection)"
	bytes_in_vdisk_file shared
	expect_not_in "tcmu-runner.log" \
		"$(cat "$E2E_WORK"/tcmu-logs/tcmu-runner.log)" \
		"shared memory refused"
	unexport_disk1
	wait_for "vxhsd to let the data area go" 45 no_uio_maps

	say "shared_memory=no: the data goes through the socket"
	export_disk1 "disk1;shared_memory=no;local_reads=no;local_writes=no"
	fio_verify socket
	expect_eq "vxhsd mappings of data areas" "$(uio_maps)" 0
	bytes_in_vdisk_file socket
	lun_reads "local_reads=no"
	[ "$READS" -ge $((LUN_MB * 16)) ] ||
		fail "local_reads=no: vxhsd saw $READS READs for $LUN_MB MiB"
	echo "ok: local_reads=no: vxhsd saw $READS READs"
	unexport_disk1
}
