# SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
# shellcheck shell=bash
# e2e-roles: target remote
#
# Scenario 5: QEMU opens the loopback LUN as scsi-block with a
# pr-manager-helper object connected to qemu-pr-helper, and a persistent
# reservation made through qemu-pr-helper reaches LIO and is seen by the
# remote iSCSI initiator.
#
# A guest inside this TCG guest (TCG in TCG) would take many minutes to
# boot, so the PERSISTENT RESERVE commands a guest would send through its
# virtio-scsi disk are sent by tests/e2e/pr_helper_client.py, which speaks
# qemu-pr-helper's documented socket protocol exactly as QEMU's
# pr-manager-helper does: same socket, same file descriptor passing, same
# commands.

PRH_SOCK=/run/qemu-pr-helper.sock
QMP_SOCK=/run/qemu-qmp.sock
KEY=0xc3

qmp() {
	python3 - "$QMP_SOCK" "$1" <<'PY'
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
f = s.makefile("rw")
json.loads(f.readline())  # greeting
for cmd in ("qmp_capabilities", sys.argv[2]):
    f.write(json.dumps({"execute": cmd}) + "\n")
    f.flush()
    while True:
        msg = json.loads(f.readline())
        if "return" in msg or "error" in msg:
            break
print(json.dumps(msg))
PY
}

scenario_target() {
	iscsi_target 32M

	say "qemu-pr-helper and QEMU with $DISK as scsi-block"
	qemu-pr-helper -k "$PRH_SOCK" >>"$E2E_WORK/qemu-pr-helper.log" 2>&1 &
	wait_for "qemu-pr-helper" 40 test -S "$PRH_SOCK"
	qemu-system-x86_64 -S -machine accel=tcg -display none -nodefaults \
		-qmp "unix:$QMP_SOCK,server=on,wait=off" \
		-object "pr-manager-helper,id=prh,path=$PRH_SOCK" \
		-device virtio-scsi-pci,id=scsi0 \
		-blockdev "driver=host_device,node-name=lun,filename=$DISK,pr-manager=prh" \
		-device scsi-block,drive=lun,bus=scsi0.0 \
		>>"$E2E_WORK/qemu.log" 2>&1 &
	wait_for "QEMU's QMP socket" 60 test -S "$QMP_SOCK"
	out=$(qmp query-named-block-nodes)
	expect_in "QEMU block node" "$out" "\"filename\": \"$DISK\""
	expect_in "QEMU block node" "$out" "\"drv\": \"host_device\""
	out=$(qmp query-pr-managers)
	expect_in "pr-manager" "$out" '"connected": true'

	say "PERSISTENT RESERVE through qemu-pr-helper, as QEMU sends it"
	out=$(python3 "$E2E_SRC/tests/e2e/pr_helper_client.py" "$PRH_SOCK" "$DISK" register $KEY)
	expect_in "register via the helper" "$out" "status=0x00"
	out=$(python3 "$E2E_SRC/tests/e2e/pr_helper_client.py" "$PRH_SOCK" "$DISK" reserve $KEY 5)
	expect_in "reserve via the helper" "$out" "status=0x00"
	out=$(python3 "$E2E_SRC/tests/e2e/pr_helper_client.py" "$PRH_SOCK" "$DISK" read-keys)
	expect_in "keys via the helper" "$out" "keys=$KEY"
	signal reserved
	await remote-checked
}

scenario_remote() {
	net_up "$REMOTE_IP"
	start_iscsid
	await reserved
	iscsiadm -m discovery -t sendtargets -p "$TARGET_IP" >/dev/null
	expect_in "login" "$(iscsi_login "$CHAP_SECRET")" "successful"
	wait_for "the iSCSI disk" 60 iscsi_disk
	disk=$(iscsi_disk)
	sg_turs "$disk" >/dev/null 2>&1 || true
	out=$(sg_persist --in --read-keys "$disk")
	expect_in "keys seen over iSCSI" "$out" "$KEY"
	out=$(sg_persist --in --read-reservation "$disk")
	expect_in "reservation seen over iSCSI" "$out" "Write Exclusive, registrants only"
	expect_eq "unregistered remote write" "$(scsi_try write "$disk")" conflict
	expect_eq "unregistered remote read" "$(scsi_try read "$disk")" ok
	iscsiadm -m node -T "$IQN_TARGET" -p "$TARGET_IP" --logout >/dev/null
	signal remote-checked
}
