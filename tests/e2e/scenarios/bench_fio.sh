# SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
# shellcheck shell=bash
# e2e-roles: target
#
# Benchmark (not a test; tools/bench/guest-fio.sh runs it): the path users
# run, fio on tcm_loop LUNs, for one backstore after another: LIO's
# fileio, tcmu-runner's own user:qcow on a raw file, user:vxhs over the
# local vxhsd's UNIX socket, over TCP and over TLS, and iblock on the
# kernel's NBD client with nbdkit; and user:vxhs over UNIX once more with
# 1 MiB commands (hw_max_sectors 2048, a 64 MiB data area) where LIO's
# default for user backstores splits at 64 KiB; and user:vxhs over UNIX
# with local_reads=no and local_writes=no, every read and write through
# vxhsd with the TCMU data area shared (vxhs-unix reads cached data and
# writes the vdisk file itself), and with shared_memory=no as well, the
# data through the socket. Every backing file is in one tmpfs directory;
# tcmu-runner runs without its debug log. ROUNDS rounds, the backstores
# interleaved within each, each round starting at another backstore: a
# backstore's place in the order (what ran just before it) showed in the
# 1 MiB lines, and the medians should not inherit it. "job backstore round
# iops" lines go to results.txt.

SIZE_MB=64 SECS=5 ROUNDS=3
DIR=/var/lib/bench
BACKSTORES="fileio qcow vxhs-unix vxhs-tcp vxhs-tls iblock-nbd vxhs-unix-1m vxhs-unix-socket vxhs-unix-nolocal"

# name rw bs iodepth
JOBS="4k-randread-qd1 randread 4k 1
4k-randread-qd32 randread 4k 32
4k-randwrite-qd32 randwrite 4k 32
1m-read-qd8 read 1m 8
1m-write-qd8 write 1m 8"

# The /dev/sdX of loopback LUN number $1.
lun_disk() {
	local d
	for d in /sys/block/sd*; do
		case "$(basename "$(readlink -f "$d/device")")" in
		*:*:*:"$1") echo "/dev/${d##*/}" ;;
		esac
	done
}

# make_luns: the caller's backstores (targetcli commands in cmds) and
# their loopback LUNs (luns: "BACKSTORE lun=N", N from 0); waits for the
# disks.
make_luns() {
	local l
	tcli "${cmds[@]}" "/loopback create" >"$E2E_WORK/targetcli.out"
	WWN=$(basename /sys/kernel/config/target/loopback/naa.*)
	tcli "${luns[@]/#//loopback/$WWN/luns create }" >>"$E2E_WORK/targetcli.out"
	for l in $(seq 0 $((${#luns[@]} - 1))); do
		wait_for "LUN $l" 60 sh -c "test -n \"\$(ls /sys/block/*/device/scsi_device 2>/dev/null | grep ':$l\$')\""
	done
	sleep 2
}

# add_qcow NAME LUN [ATTRIBUTES]: a user:qcow backstore on a new raw file
# and its LUN, added to the caller's cmds and luns for make_luns.
add_qcow() {
	dd if=/dev/zero of="$DIR/$1.raw" bs=1M count=$SIZE_MB status=none
	cmds+=("/backstores/user:qcow create name=$1 size=${SIZE_MB}M cfgstring=$DIR/$1.raw${3:+ $3}")
	luns+=("/backstores/user:qcow/$1 lun=$2")
}

# add_vxhs NAME LUN CFGSTRING [ATTRIBUTES]: a user:vxhs backstore and its
# LUN, likewise.
add_vxhs() {
	cmds+=("/backstores/user:vxhs create name=$1 size=${SIZE_MB}M cfgstring=$3${4:+ $4}")
	luns+=("/backstores/user:vxhs/$1 lun=$2")
}

# new_vdisk NAME: a vdisk of SIZE_MB in vxhsd's directory, every block
# written, as the raw files are.
new_vdisk() {
	"$VXHSADM" create --dir "$VDISKS" "$1" ${SIZE_MB}M >/dev/null
	dd if=/dev/zero of="$VDISKS/$1" bs=1M count=$SIZE_MB conv=notrunc status=none
}

setup_backstores() {
	local size=${SIZE_MB}M
	mkdir -p "$DIR"
	for f in fileio qcow nbd; do
		dd if=/dev/zero of="$DIR/$f.raw" bs=1M count=$SIZE_MB status=none
	done
	for v in vunix vtcp vtls v1m vsock vnol; do
		new_vdisk $v
	done
	modprobe nbd nbds_max=1
	nbdkit --port 10809 --ipaddr 127.0.0.1 file file="$DIR/nbd.raw"
	wait_for "nbdkit" 20 bash -c 'exec 3<>/dev/tcp/127.0.0.1/10809'
	nbd-client 127.0.0.1 10809 /dev/nbd0 -N "" >/dev/null 2>&1 ||
		fail "nbd-client could not connect /dev/nbd0"
	tcli "/backstores/fileio create name=fileio file_or_dev=$DIR/fileio.raw size=$size" \
		"/backstores/user:qcow create name=qcow size=$size cfgstring=$DIR/qcow.raw" \
		"/backstores/user:vxhs create name=vunix size=$size cfgstring=vunix" \
		"/backstores/user:vxhs create name=vtcp size=$size cfgstring=vtcp@127.0.0.1;plaintext" \
		"/backstores/user:vxhs create name=vtls size=$size cfgstring=vtls@127.0.0.1/9998;tls=/tmp/pki/gw-a" \
		"/backstores/block create name=nbd dev=/dev/nbd0" \
		"/backstores/user:vxhs create name=v1m size=$size cfgstring=v1m hw_max_sectors=2048 control=max_data_area_mb=64" \
		"/backstores/user:vxhs create name=vsock size=$size cfgstring=vsock;shared_memory=no;local_reads=no;local_writes=no" \
		"/backstores/user:vxhs create name=vnol size=$size cfgstring=vnol;local_reads=no;local_writes=no" \
		"/loopback create" >"$E2E_WORK/targetcli.out"
	WWN=$(ls /sys/kernel/config/target/loopback | grep naa. | head -n1)
	tcli "/loopback/$WWN/luns create /backstores/fileio/fileio lun=0" \
		"/loopback/$WWN/luns create /backstores/user:qcow/qcow lun=1" \
		"/loopback/$WWN/luns create /backstores/user:vxhs/vunix lun=2" \
		"/loopback/$WWN/luns create /backstores/user:vxhs/vtcp lun=3" \
		"/loopback/$WWN/luns create /backstores/user:vxhs/vtls lun=4" \
		"/loopback/$WWN/luns create /backstores/block/nbd lun=5" \
		"/loopback/$WWN/luns create /backstores/user:vxhs/v1m lun=6" \
		"/loopback/$WWN/luns create /backstores/user:vxhs/vsock lun=7" \
		"/loopback/$WWN/luns create /backstores/user:vxhs/vnol lun=8" \
		>>"$E2E_WORK/targetcli.out"
	for l in 0 1 2 3 4 5 6 7 8; do
		wait_for "LUN $l" 60 sh -c "test -n \"\$(ls /sys/block/*/device/scsi_device 2>/dev/null | grep ':$l\$')\""
	done
	sleep 2
}

run_fio() {	# disk rw bs iodepth -> iops
	fio --name=b --filename="$1" --ioengine=libaio --direct=1 --rw="$2" \
		--bs="$3" --iodepth="$4" --runtime="$SECS" --time_based \
		--output-format=json |
		python3 -c 'import json, sys
j = json.load(sys.stdin)["jobs"][0]
print(int(j["read"]["iops"] + j["write"]["iops"]))'
}

scenario_target() {
	start_vxhsd
	start_tls_vxhsd
	TCMU_DEBUG=no TCMU_HANDLER_PATH=$(both_handlers_dir) start_tcmu_runner
	setup_backstores
	run_rounds
}

# run_rounds: fio's JOBS on the LUNs of BACKSTORES (LUN i the i-th), in
# ROUNDS rounds, into results.txt.
run_rounds() {
	local disks=() b i=0
	for b in $BACKSTORES; do
		disks+=("$(lun_disk $i)")
		[ -b "${disks[$i]}" ] || fail "no disk for $b (LUN $i)"
		echo "$b: ${disks[$i]}"
		i=$((i + 1))
	done
	local names n start k
	read -ra names <<<"$BACKSTORES"
	n=${#names[@]}
	for round in $(seq $ROUNDS); do
		# Rounds start spread over the order: 0, n/3, 2n/3 for 3.
		start=$(((round - 1) * n / ROUNDS))
		while read -r name rw bs qd; do
			for k in $(seq 0 $((n - 1))); do
				i=$(((start + k) % n))
				iops=$(run_fio "${disks[$i]}" "$rw" "$bs" "$qd")
				echo "$name ${names[$i]} $round $iops" | tee -a "$E2E_WORK/results.txt"
			done
		done <<<"$JOBS"
	done
	echo "ok: results in $E2E_WORK/results.txt"
}
