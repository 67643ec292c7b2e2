# SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
# shellcheck shell=bash
# e2e-roles: target remote
#
# Benchmark (not a test; tools/bench/guest-remote.sh runs it): user:vxhs
# over TCP with the agent on another host, as TCP agents are deployed,
# against tcmu-runner's own user:qcow on the gateway. The target guest
# runs vxhsd only; the remote guest is the gateway: tcmu-runner (without
# its debug log), two user:qcow LUNs on raw files and two user:vxhs LUNs
# on vdisks of the target's vxhsd, over plaintext TCP, placed in mirror
# order (q v v q), LIO's default 64 KiB commands. fio jobs, rounds and
# rotation as bench_fio's; "job LUN round iops" lines go to results.txt.
# Each guest has one vCPU here (rig.sh, two guests), and both are
# emulated on the same host CPUs: the agent's host is not a free one. The
# link between them has jumbo frames (MTU 9000), as storage networks do.

# shellcheck source=tests/e2e/scenarios/bench_fio.sh
. "$E2E_SRC/tests/e2e/scenarios/bench_fio.sh"
BACKSTORES="qcow-a tcp-a tcp-b qcow-b"

setup_backstores() {
	local b l=0 cmds=() luns=()
	mkdir -p "$DIR"
	for b in $BACKSTORES; do
		case $b in
		qcow-*) add_qcow "$b" $l ;;
		*) add_vxhs "$b" $l "$b@$TARGET_IP;plaintext" ;;
		esac
		l=$((l + 1))
	done
	make_luns
}

# The agent's host: vxhsd and the vdisks, until the gateway is done.
scenario_target() {
	local b
	net_up "$TARGET_IP"
	ip link set eth0 mtu 9000
	start_vxhsd
	for b in $BACKSTORES; do
		case $b in
		tcp-*) new_vdisk "$b" ;;
		esac
	done
	signal target-ready
	await remote-done 3600
}

# The gateway: the LUNs, and fio on each in turn.
scenario_remote() {
	net_up "$REMOTE_IP"
	ip link set eth0 mtu 9000
	await target-ready
	TCMU_DEBUG=no TCMU_HANDLER_PATH=$(both_handlers_dir) start_tcmu_runner
	setup_backstores
	run_rounds
	signal remote-done
}
