# SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
# shellcheck shell=bash
# e2e-roles: target
#
# Scenario: the TCMU data area shared with vxhsd on its UNIX socket (the
# default agent). vxhsd maps the LUN's /dev/uioN, fio verifies data over
# the whole LUN through it, the bytes are in the vdisk file, and
# tcmu-runner's log has no fallback. Removing the LUN lets the mapping go
# (vxhsd's session ends with the handler's connections); a LUN with
# shared_memory=no gets its data through the socket and vxhsd maps
# nothing.

LUN_MB=32

# vxhsd's mappings of TCMU data areas.
uio_maps() {
	grep -c ' /dev/uio' "/proc/$VXHSD_PID/maps" || true
}

fio_verify() {
	fio --name=verify --filename="$DISK" --direct=1 --ioengine=libaio \
		--iodepth=16 --rw=randwrite --bsrange=4k-1m --size=100% \
		--verify=crc32c --verify_fatal=1 --do_verify=1 \
		--randrepeat=0 --output="$E2E_WORK/fio-$1.txt"
	out=$(cat "$E2E_WORK/fio-$1.txt")
	expect_in "fio ($1)" "$out" "err= 0"
	expect_not_in "fio ($1)" "$out" "verify: bad"
}

bytes_in_vdisk_file() {
	head -c 1M /dev/urandom >/tmp/pattern
	dd if=/tmp/pattern of="$DISK" bs=1M seek=7 oflag=direct status=none
	dd if="$VDISKS/disk1" of=/tmp/in-file bs=1M skip=7 count=1 status=none
	cmp /tmp/pattern /tmp/in-file ||
		fail "vdisk file differs from what was written ($1)"
	echo "ok: 1 MiB written at 7 MiB is in the vdisk file ($1)"
}

scenario_target() {
	loopback_lun ${LUN_MB}M
	say "fio through the shared data area"
	fio_verify shared
	maps=$(uio_maps)
	[ "$maps" -gt 0 ] || fail "vxhsd maps no TCMU data area"
	echo "ok: vxhsd maps the data area ($maps mappings, one per connection)"
	bytes_in_vdisk_file shared
	expect_not_in "tcmu-runner.log" \
		"$(cat "$E2E_WORK"/tcmu-logs/tcmu-runner.log)" \
		"shared memory refused"
	unexport_disk1
	wait_for "vxhsd to let the data area go" 45 \
		test "$(uio_maps)" = 0

	say "shared_memory=no: the data goes through the socket"
	EXPORTED=$("$VXHS_EXPORT" add disk1 --size ${LUN_MB}M \
		--cfgstring "disk1;shared_memory=no" --no-iscsi 2>&1) ||
		fail "vxhs-export add: $EXPORTED"
	found_loopback_lun
	fio_verify socket
	expect_eq "vxhsd mappings of data areas" "$(uio_maps)" 0
	bytes_in_vdisk_file socket
	unexport_disk1
}
