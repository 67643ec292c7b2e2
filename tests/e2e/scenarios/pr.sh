# SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
# shellcheck shell=bash
# e2e-roles: target remote
#
# Scenario 4: SCSI-3 persistent reservations across a local (loopback) and
# a remote (iSCSI) initiator of the same user:vxhs LUN, emulated by LIO:
# Write Exclusive, Write Exclusive - Registrants Only, Exclusive Access,
# RELEASE, PREEMPT and CLEAR with their unit attentions, and APTPL registrations
# surviving a tcmu-runner restart and a re-created target configuration.

KEY_LOCAL=0xa1
KEY_REMOTE=0xb2

prout() {
	sg_persist --out "$@" "$PRDISK" >/dev/null 2>&1 ||
		fail "sg_persist --out $* on $PRDISK"
}

scenario_target() {
	iscsi_target 32M
	PRDISK=$DISK
	signal target-ready

	prout --register --param-sark=$KEY_LOCAL
	await remote-registered
	out=$(sg_persist --in --read-keys "$DISK")
	expect_in "keys" "$out" "$KEY_LOCAL"
	expect_in "keys" "$out" "$KEY_REMOTE"

	say "Write Exclusive"
	prout --reserve --param-rk=$KEY_LOCAL --prout-type=1
	expect_eq "holder writes" "$(scsi_try write "$DISK")" ok
	signal we
	await we-checked

	say "Write Exclusive - Registrants Only"
	prout --release --param-rk=$KEY_LOCAL --prout-type=1
	prout --reserve --param-rk=$KEY_LOCAL --prout-type=5
	out=$(sg_persist --in --read-reservation "$DISK")
	expect_in "reservation" "$out" "Write Exclusive, registrants only"
	signal wero
	await wero-checked

	say "Exclusive Access"
	prout --release --param-rk=$KEY_LOCAL --prout-type=5
	prout --reserve --param-rk=$KEY_LOCAL --prout-type=3
	signal ea
	await preempted

	say "PREEMPT by the remote host"
	expect_in "unit attention after PREEMPT" "$(pending_ua "$DISK")" \
		"egistrations preempted"
	expect_eq "preempted host writes" "$(scsi_try write "$DISK")" conflict
	prout --register --param-sark=$KEY_LOCAL
	prout --clear --param-rk=$KEY_LOCAL
	expect_eq "write after CLEAR" "$(scsi_try write "$DISK")" ok
	signal cleared
	await clear-checked

	say "APTPL: registrations survive tcmu-runner and the configuration"
	# LIO restores APTPL registrations of initiators it has an ACL for:
	# the remote host's. It registered with APTPL and logged out.
	await aptpl-registered
	# targetcli saves on exit, so keep the saved state aside first.
	tcli "saveconfig /tmp/saved.json" >/dev/null
	tcli "clearconfig confirm=True" >/dev/null
	stop_tcmu_runner
	start_tcmu_runner
	out=$(tcli "restoreconfig /tmp/saved.json")
	expect_not_in "restoreconfig" "$out" "rror"
	wait_loopback_disk
	sg_turs "$DISK" >/dev/null 2>&1 || true
	out=$(sg_persist --in --read-keys "$DISK")
	expect_in "keys after restore" "$out" "$KEY_REMOTE"
	signal restored
}

scenario_remote() {
	net_up "$REMOTE_IP"
	start_iscsid
	await target-ready
	iscsiadm -m discovery -t sendtargets -p "$TARGET_IP" >/dev/null
	expect_in "login" "$(iscsi_login "$CHAP_SECRET")" "successful"
	wait_for "the iSCSI disk" 60 iscsi_disk
	PRDISK=$(iscsi_disk)
	sg_turs "$PRDISK" >/dev/null 2>&1 || true
	prout --register --param-sark=$KEY_REMOTE
	signal remote-registered

	await we
	expect_eq "registrant writes under WE" "$(scsi_try write "$PRDISK")" conflict
	expect_eq "registrant reads under WE" "$(scsi_try read "$PRDISK")" ok
	signal we-checked

	await wero
	expect_eq "registrant writes under WERO" "$(scsi_try write "$PRDISK")" ok
	prout --register --param-rk=$KEY_REMOTE --param-sark=0
	expect_eq "unregistered writes under WERO" "$(scsi_try write "$PRDISK")" conflict
	prout --register --param-sark=$KEY_REMOTE
	signal wero-checked

	await ea
	# Releasing a registrants-only reservation tells the registrants.
	expect_in "unit attention after RELEASE of WERO" \
		"$(pending_ua "$PRDISK")" "eservations released"
	expect_eq "registrant reads under EA" "$(scsi_try read "$PRDISK")" conflict
	expect_eq "registrant writes under EA" "$(scsi_try write "$PRDISK")" conflict
	prout --preempt --param-rk=$KEY_REMOTE --param-sark=$KEY_LOCAL --prout-type=3
	expect_eq "preempting host writes" "$(scsi_try write "$PRDISK")" ok
	signal preempted

	await cleared
	expect_in "unit attention after CLEAR" "$(pending_ua "$PRDISK")" \
		"eservations preempted"
	out=$(sg_persist --in --read-keys "$PRDISK")
	expect_in "keys after CLEAR" "$out" "NO registered reservation keys"
	signal clear-checked

	prout --register --param-sark=$KEY_REMOTE --param-aptpl
	iscsiadm -m node -T "$IQN_TARGET" -p "$TARGET_IP" --logout >/dev/null
	signal aptpl-registered
	await restored
}
