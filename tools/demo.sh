#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
#
# The demo: starts vxhsd on a demo vdisk, writes data to it over TCP with
# vxhsadm, reads it back over the UNIX socket, checks the bytes, asks the
# agent for the vdisk's size and extensions, runs a short benchmark, then
# exports a vdisk as a SCSI disk through LIO, tcmu-runner and handler_vxhs.so
# in a guest kernel: loopback LUN and iSCSI login, data across both paths, a
# persistent reservation (set VXHS_DEMO_SCSI=0 to skip that part).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=${VXHS_DEMO_DIR:-/tmp/vxhs-demo}
BIN="$ROOT/build"
step=0

say() { step=$((step + 1)); printf '\n[%d] %s\n' "$step" "$*"; }

"$ROOT/tools/setup.sh"
VXHSD="$BIN/server/vxhsd"
VXHSADM="$BIN/tools/vxhsadm"

rm -rf "$WORK"
mkdir -p "$WORK/vdisks"
AGENT_PID=
cleanup() {
	if [ -n "$AGENT_PID" ] && kill -0 "$AGENT_PID" 2>/dev/null; then
		kill -TERM "$AGENT_PID"
		wait "$AGENT_PID" || true
	fi
}
trap cleanup EXIT

say "Creating a 1 GiB demo vdisk (a sparse file) in $WORK/vdisks"
"$VXHSADM" create --dir "$WORK/vdisks" demo 1G

say "Starting vxhsd on 127.0.0.1 and unix:$WORK/vxhsd.sock (log: $WORK/vxhsd.log)"
"$VXHSD" --dir "$WORK/vdisks" --listen 127.0.0.1 --port 0 \
	--port-file "$WORK/port" --unix "$WORK/vxhsd.sock" --allow-plaintext \
	--log-level notice 2>"$WORK/vxhsd.log" &
AGENT_PID=$!
for _ in $(seq 200); do
	[ -s "$WORK/port" ] && break
	kill -0 "$AGENT_PID" 2>/dev/null || { cat "$WORK/vxhsd.log"; exit 1; }
	sleep 0.05
done
PORT=$(cat "$WORK/port")
echo "vxhsd (pid $AGENT_PID) is listening on 127.0.0.1:$PORT"

say "Asking the agent about the vdisk (VDISK_STAT over TCP, in plaintext: both sides allow that only when told)"
"$VXHSADM" stat --agent "127.0.0.1:$PORT" --allow-plaintext demo

say "Writing 64 MiB of random data at offset 1 MiB over TCP"
head -c 64M /dev/urandom >"$WORK/written"
"$VXHSADM" write --agent "127.0.0.1:$PORT" --allow-plaintext --offset 1M \
	demo "$WORK/written"

say "Reading it back over the UNIX socket"
"$VXHSADM" read --agent "unix:$WORK/vxhsd.sock" --offset 1M --length 64M \
	demo "$WORK/read"
if cmp -s "$WORK/written" "$WORK/read"; then
	echo "The bytes read back match what was written:" \
		"$(sha256sum <"$WORK/read" | cut -c1-16)..."
else
	echo "MISMATCH between $WORK/written and $WORK/read" >&2
	exit 1
fi

say "Benchmark: 4 KiB random reads at queue depth 32 for 3 seconds"
"$VXHSADM" bench --agent "127.0.0.1:$PORT" --allow-plaintext --time 3 demo

say "The vdisk directory"
"$VXHSADM" list --dir "$WORK/vdisks"

# The same vdisk store exported as a SCSI disk needs the kernel's LIO target,
# which runs in a QEMU guest booting Debian's kernel (tests/e2e/README.md).
if [ "${VXHS_DEMO_SCSI:-1}" = 1 ]; then
	say "Exporting a vdisk as a SCSI disk: LIO + tcmu-runner + handler_vxhs.so in a guest kernel (about 1 minute)"
	# The guest's log, as it is written (the rig's own output goes to a
	# file, shown only if the guest fails).
	log="$BIN/e2e/demo/target.log"
	rm -f "$log"
	"$ROOT/tests/e2e/rig.sh" demo >"$WORK/rig.log" 2>&1 &
	rig=$!
	# tail reports the log missing before the guest creates it (and so
	# fails); the rig's status below is what counts.
	tail -n +1 -F --pid=$rig "$log" 2>/dev/null |
		sed -u 's/^== /\n  -- /' || true
	if ! wait $rig; then
		cat "$WORK/rig.log" >&2
		exit 1
	fi
fi

cat <<EOT

Done. vxhsd is stopped when this script exits. To serve vdisks yourself,
and to export them through LIO (docs/handler.md, targetcli/README.md):
  $VXHSD --dir DIR --tls-dir TLS-DIR [--listen ADDR] [--unix PATH]   (docs/security.md)
  $VXHSADM --help
  $ROOT/targetcli/vxhs-export add NAME --size SIZE --acl INITIATOR_IQN
EOT

