# SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
# shellcheck shell=bash
# e2e-roles: target
#
# The demo's second half (tools/demo.sh): a vdisk on vxhsd exported by
# targetcli/vxhs-export through LIO and tcmu-runner with handler_vxhs.so as
# a loopback LUN and an iSCSI target; this host logs in over iSCSI too, so
# the same vdisk is seen through both paths; data crosses from one path to
# the other, a persistent reservation taken on one is seen on the other.

IQN_DEMO_INITIATOR=iqn.2026-11.demo.vxhs:initiator

# cross FROM TO AT_MIB MIB: random data written through one path reads
# back the same through the other.
cross() {
	head -c "$4M" /dev/urandom >/tmp/written
	dd if=/tmp/written of="$1" bs=1M seek="$3" oflag=direct status=none
	dd if="$2" of=/tmp/read bs=1M skip="$3" count="$4" iflag=direct status=none
	cmp /tmp/written /tmp/read || fail "$2 reads other bytes than $1 wrote"
	echo "match: $(sha256sum </tmp/written | cut -c1-16)... on both paths"
}

prout() {
	sg_persist --out "$@" >/dev/null 2>&1 || fail "sg_persist --out $*"
}

scenario_target() {
	say "vxhsd serves $VDISKS; tcmu-runner loads handler_vxhs.so from the build tree"
	start_vxhsd
	start_tcmu_runner
	"$VXHSADM" create --dir "$VDISKS" demo 256M

	say "vxhs-export add: user:vxhs backstore, loopback LUN, iSCSI target with an ACL and CHAP"
	(umask 077 && echo "$CHAP_SECRET" >/tmp/chap-secret)
	echo "\$ vxhs-export add demo --size 256M --iqn $IQN_TARGET --portal 127.0.0.1" \
		"--acl $IQN_DEMO_INITIATOR --chap-user $CHAP_USER --chap-secret-file /tmp/chap-secret"
	EXPORTED=$("$VXHS_EXPORT" add demo --size 256M --iqn "$IQN_TARGET" \
		--portal 127.0.0.1 --acl "$IQN_DEMO_INITIATOR" \
		--chap-user "$CHAP_USER" --chap-secret-file /tmp/chap-secret 2>&1) ||
		fail "vxhs-export add: $EXPORTED"
	printf '%s\n' "$EXPORTED"
	found_loopback_lun
	tcli "ls /" | sed -n '/o- \//,/o- xen-pvscsi/p'

	say "The local host sees the loopback LUN $DISK"
	lsblk -o NAME,SIZE,MODEL,TRAN "$DISK"
	sg_inq "$DISK" | grep -E "identification|revision"
	sg_readcap "$DISK" | grep -E "Last LBA|block length"

	say "iscsiadm: discovery and login to $IQN_TARGET at 127.0.0.1 with CHAP"
	IQN_REMOTE=$IQN_DEMO_INITIATOR start_iscsid
	iscsiadm -m discovery -t sendtargets -p 127.0.0.1
	TARGET_IP=127.0.0.1 iscsi_login "$CHAP_SECRET"
	wait_for "the iSCSI disk" 60 iscsi_disk
	SDISK=$(iscsi_disk)
	sg_turs "$SDISK" >/dev/null 2>&1 || true
	echo "The iSCSI session's disk is $SDISK"
	lsblk -o NAME,SIZE,MODEL,TRAN "$SDISK"

	say "Writing 32 MiB through the loopback LUN, reading it through iSCSI"
	cross "$DISK" "$SDISK" 16 32
	dd if="$VDISKS/demo" of=/tmp/in-file bs=1M skip=16 count=32 status=none
	cmp /tmp/written /tmp/in-file || fail "the vdisk file differs"
	echo "and in the agent's vdisk file $VDISKS/demo"

	say "Writing 8 MiB through iSCSI, reading it through the loopback LUN"
	cross "$SDISK" "$DISK" 64 8

	say "Persistent reservation: both paths register, the loopback path reserves (Write Exclusive)"
	prout --register --param-sark=0xa1 "$DISK"
	prout --register --param-sark=0xb2 "$SDISK"
	prout --reserve --param-rk=0xa1 --prout-type=1 "$DISK"
	sg_persist --in --read-full-status "$SDISK" | sed 's/^/  /'
	expect_eq "write through the holder ($DISK)" "$(scsi_try write "$DISK")" ok
	expect_eq "write through the other path ($SDISK)" "$(scsi_try write "$SDISK")" conflict
	expect_eq "read through the other path" "$(scsi_try read "$SDISK")" ok
	prout --clear --param-rk=0xa1 "$DISK"
	echo "Cleared: no registrations or reservation left"

	say "fio through the loopback LUN: 4 KiB random reads, queue depth 32, 10 s (TCG guest: slow CPU)"
	fio --name=randread --filename="$DISK" --direct=1 --ioengine=libaio \
		--iodepth=32 --rw=randread --bs=4k --runtime=10 --time_based \
		--group_reporting | grep -E "IOPS"

	say "Using the LUN from QEMU with persistent reservations passed through"
	cat <<EOT
  qemu-pr-helper -k /run/qemu-pr-helper.sock &
  qemu-system-x86_64 ... \\
    -object pr-manager-helper,id=pr0,path=/run/qemu-pr-helper.sock \\
    -drive if=none,id=vxhs0,file=$DISK,format=raw,file.pr-manager=pr0 \\
    -device virtio-scsi-pci,id=scsi0 \\
    -device scsi-block,drive=vxhs0,bus=scsi0.0
  (the guest's sg_persist then reaches LIO, as tests/e2e/scenarios/qemu.sh checks)
EOT

	say "The handler's log"
	grep -h "vdisk demo" "$E2E_WORK"/tcmu-logs/tcmu-runner.log | tail -n3

	say "Cleaning up: iscsiadm logout, vxhs-export remove demo"
	iscsiadm -m node -T "$IQN_TARGET" -p 127.0.0.1 --logout
	"$VXHS_EXPORT" remove demo
}
