# SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
# shellcheck shell=bash
# e2e-roles: target remote
#
# Scenario 3: the vdisk exported over iSCSI (with CHAP) to a remote host,
# a second guest with its own kernel and open-iscsi. Data written through
# the loopback LUN reads back through iSCSI and the other way round. Then
# both initiators race COMPARE AND WRITE on one block, each adding 1 to a
# counter there CAW_ROUNDS times: no increment may be lost (each round
# exactly one of them wins).

CAW_ROUNDS=20

scenario_target() {
	iscsi_target 64M
	head -c 1M /dev/urandom >"$E2E_WORK/pattern-local"
	dd if="$E2E_WORK/pattern-local" of="$DISK" bs=1M seek=1 oflag=direct status=none
	echo "ok: 1 MiB written at 1 MiB through the loopback LUN $DISK"
	signal target-ready

	await remote-wrote
	dd if="$DISK" of=/tmp/back bs=1M skip=2 count=1 iflag=direct status=none
	cmp /tmp/back "$E2E_WORK/pattern-remote" ||
		fail "what the remote host wrote does not read back locally"
	echo "ok: the remote host's 1 MiB at 2 MiB reads back through loopback"

	say "COMPARE AND WRITE races between the loopback and iSCSI initiators"
	caw_block 0 | dd of="$DISK" bs=512 seek=$CAW_LBA oflag=direct status=none
	signal caw-start
	lost=$(caw_count "$DISK" $CAW_ROUNDS) ||
		fail "COMPARE AND WRITE through the loopback LUN failed"
	await caw-done
	cur=$(dd if="$DISK" bs=512 skip=$CAW_LBA count=1 iflag=direct \
		status=none | head -c 20)
	echo "loopback lost $lost rounds, iSCSI $(cat "$E2E_WORK/caw-lost")"
	expect_eq "the counter" "$((10#$cur))" $((2 * CAW_ROUNDS))
	signal target-done
}

scenario_remote() {
	net_up "$REMOTE_IP"
	start_iscsid
	await target-ready
	out=$(iscsiadm -m discovery -t sendtargets -p "$TARGET_IP" 2>&1)
	expect_in "discovery" "$out" "$TARGET_IP:3260,1 $IQN_TARGET"

	out=$(iscsi_login wrong-secret-123 || true)
	expect_in "login with a wrong CHAP secret" "$out" "uthorization failure"
	out=$(iscsi_login "$CHAP_SECRET")
	expect_in "login" "$out" "successful"
	wait_for "the iSCSI disk" 60 iscsi_disk
	disk=$(iscsi_disk)
	say "iSCSI LUN is $disk"
	out=$(sg_readcap "$disk" 2>&1 || sg_readcap "$disk")
	expect_in "sg_readcap" "$out" "Last LBA=$((64 * 2048 - 1))"

	dd if="$disk" of=/tmp/back bs=1M skip=1 count=1 iflag=direct status=none
	cmp /tmp/back "$E2E_WORK/pattern-local" ||
		fail "what the target host wrote does not read back over iSCSI"
	echo "ok: the target's 1 MiB at 1 MiB reads back over iSCSI"
	head -c 1M /dev/urandom >"$E2E_WORK/pattern-remote"
	dd if="$E2E_WORK/pattern-remote" of="$disk" bs=1M seek=2 oflag=direct status=none
	sync
	signal remote-wrote
	await caw-start
	caw_count "$disk" $CAW_ROUNDS >"$E2E_WORK/caw-lost" ||
		fail "COMPARE AND WRITE over iSCSI failed"
	signal caw-done
	await target-done
	iscsiadm -m node -T "$IQN_TARGET" -p "$TARGET_IP" --logout >/dev/null
}
