# SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
# shellcheck shell=bash
# e2e-roles: target
#
# Scenario 7: grow the vdisk with the CLI and the LUN through configfs; the
# initiator gets CAPACITY DATA HAS CHANGED and READ CAPACITY reports the new
# size. Growing the LUN past the vdisk is refused by the handler.

scenario_target() {
	loopback_lun 64M
	attr=$(echo /sys/kernel/config/target/core/user_*/disk1/attrib/dev_size)
	expect_eq "LUN size" "$(cat "$attr")" $((64 << 20))

	say "a LUN larger than the vdisk is refused"
	if echo $((96 << 20)) >"$attr" 2>/dev/null; then
		fail "dev_size beyond the vdisk was accepted"
	fi
	expect_eq "LUN size after the refusal" "$(cat "$attr")" $((64 << 20))
	grep -q "larger than the vdisk" "$E2E_WORK"/tcmu-logs/tcmu-runner.log ||
		fail "tcmu-runner.log does not say why"
	echo "ok: refused, and the log says why"
	sg_turs "$DISK" >/dev/null 2>&1 || true

	say "grow the vdisk, then the LUN"
	"$VXHSADM" resize --dir "$VDISKS" disk1 96M
	echo $((96 << 20)) >"$attr" || fail "dev_size write refused"
	expect_eq "LUN size" "$(cat "$attr")" $((96 << 20))

	out=$(sg_turs -v "$DISK" 2>&1 || true)
	expect_in "next command" "$out" "Capacity data has changed"
	out=$(sg_readcap "$DISK")
	expect_in "sg_readcap" "$out" "Last LBA=$((96 * 2048 - 1))"
	echo 1 >"/sys/block/${DISK#/dev/}/device/rescan"
	expect_eq "blockdev size" "$(blockdev --getsize64 "$DISK")" $((96 << 20))

	# The new end is usable.
	head -c 1M /dev/urandom >/tmp/pattern
	dd if=/tmp/pattern of="$DISK" bs=1M seek=95 oflag=direct status=none
	dd if="$VDISKS/disk1" of=/tmp/in-file bs=1M skip=95 status=none
	cmp /tmp/pattern /tmp/in-file || fail "last MiB differs"
	echo "ok: the last MiB of the grown LUN is the vdisk's"
	unexport_disk1
}
