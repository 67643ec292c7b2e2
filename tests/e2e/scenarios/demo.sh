# SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
# shellcheck shell=bash
# e2e-roles: target
#
# The demo's second half (tools/demo.sh): a vdisk on vxhsd exported as a
# SCSI disk through LIO and tcmu-runner with handler_vxhs.so, used through
# the loopback LUN, exported over iSCSI, shown at each step.

scenario_target() {
	say "vxhsd serves $VDISKS; tcmu-runner loads handler_vxhs.so from the build tree"
	start_vxhsd
	start_tcmu_runner
	"$VXHSADM" create --dir "$VDISKS" demo 256M

	say "targetcli: a user:vxhs backstore, a loopback LUN and an iSCSI target"
	tcli "/backstores/user:vxhs create name=demo size=256M cfgstring=demo" \
		"/loopback create" \
		"/iscsi create $IQN_TARGET" \
		"/iscsi/$IQN_TARGET/tpg1/portals delete 0.0.0.0 3260" \
		"/iscsi/$IQN_TARGET/tpg1/portals create 127.0.0.1 3260" \
		"/iscsi/$IQN_TARGET/tpg1/luns create /backstores/user:vxhs/demo" >/dev/null
	wwn=$(ls /sys/kernel/config/target/loopback | grep naa. | head -n1)
	tcli "/loopback/$wwn/luns create /backstores/user:vxhs/demo" >/dev/null
	tcli "ls /" | sed -n '/o- \//,$p' | grep -v "^/> exit"
	wait_loopback_disk
	sg_turs "$DISK" >/dev/null 2>&1 || true

	say "The local host sees $DISK"
	lsblk -o NAME,SIZE,MODEL,TRAN "$DISK"
	sg_inq "$DISK" | grep -E "identification|revision"
	sg_readcap "$DISK" | grep -E "Last LBA|block length"

	say "Writing 32 MiB through $DISK and finding it in the vdisk file"
	head -c 32M /dev/urandom >/tmp/written
	dd if=/tmp/written of="$DISK" bs=1M seek=16 oflag=direct status=none
	dd if="$VDISKS/demo" of=/tmp/in-file bs=1M skip=16 count=32 status=none
	cmp /tmp/written /tmp/in-file || fail "the vdisk file differs"
	echo "match: $(sha256sum </tmp/written | cut -c1-16)..."

	say "fio: 4 KiB random reads, queue depth 32, 10 seconds (TCG guest: slow CPU)"
	fio --name=randread --filename="$DISK" --direct=1 --ioengine=libaio \
		--iodepth=32 --rw=randread --bs=4k --runtime=10 --time_based \
		--group_reporting | grep -E "IOPS"

	say "The handler's log"
	grep -h "vdisk demo" "$E2E_WORK"/tcmu-logs/tcmu-runner.log | tail -n3
}
