# SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
# shellcheck shell=bash
# e2e-roles: target
#
# Scenario 2: a loopback LUN for the local host. The disk appears with the
# right identity and capacity, fio verifies data over the whole LUN, the
# bytes land in the agent's vdisk file, and SYNCHRONIZE CACHE, UNMAP and
# WRITE SAME do what docs/handler.md says for an agent with extensions
# (vxhsd: the agent's request counters show what reached it), and VERIFY
# finds a changed byte; sg_xcopy copies to a second LUN inside vxhsd.
# Then what
# the handler answers before tcmu-runner's emulation. The
# handler talks to the agent over TLS here.

LUN_MB=64

scenario_target() {
	# The handler reaches the agent over TCP with TLS (mutual certificates),
	# and both ask for the kernel's TLS, which Debian's kernel has: it
	# makes and reads the records both ways (vxhsd's answers, the
	# handler's requests) for disk1, and vxhsd's side of disk2 (where the
	# handler's own records stay GnuTLS's, the default).
	mkdir -p "$VDISKS"
	ctl=/run/vxhsd-tls-control.sock
	start_tls_vxhsd --control "$ctl" --kernel-tls
	loopback_lun ${LUN_MB}M \
		"disk1@127.0.0.1/9998;tls=/tmp/pki/gw-a;copy_domain=e2e;kernel_tls=yes"
	say "loopback LUN is $DISK"
	expect_in "agent log" "$(cat "$E2E_WORK/vxhsd-tls.log")" \
		"TLS1.3, client dn:CN=gw-a, records made and read by the kernel"
	expect_not_in "agent log" \
		"$(grep -v 'the peer already closed' "$E2E_WORK/vxhsd-tls.log")" \
		"records made by vxhsd"
	expect_in "tcmu-runner log" "$(cat "$E2E_WORK"/tcmu-logs/*)" \
		"agent 127.0.0.1:9998: TLS up (TLS1.3), records made and read by the kernel"
	awk '$1 ~ /^TlsCurr[TR]xSw$/ && $2 >= 2 { n++ } END { exit n != 2 }' \
		/proc/net/tls_stat ||
		fail "kernel TLS for no session both ways: $(tr '\n' ' ' </proc/net/tls_stat)"
	# Peers that are OpenSSL, as the original client and agent are: vxhsd
	# reads a client's records with the kernel's TLS, and our client
	# skips the session tickets an OpenSSL agent sends after the
	# handshake, which only the kernel's reading hands to us.
	python3 "$E2E_SRC/tests/integration/tls_original_peer.py" "$VXHSD" \
		"$VXHSADM" /tmp/pki --kernel-tls >"$E2E_WORK/original-peer.log" 2>&1 ||
		fail "OpenSSL peers with the kernel's TLS: $(tail -5 "$E2E_WORK/original-peer.log")"

	out=$(sg_inq "$DISK")
	expect_in "sg_inq" "$out" "Vendor identification: LIO-ORG"
	expect_in "sg_inq" "$out" "Product identification: TCMU device"
	out=$(sg_readcap "$DISK")
	expect_in "sg_readcap" "$out" "Last LBA=$((LUN_MB * 2048 - 1))"
	expect_in "sg_readcap" "$out" "Logical block length=512 bytes"
	expect_eq "blockdev size" "$(blockdev --getsize64 "$DISK")" \
		$((LUN_MB * 1024 * 1024))

	# vxhsd offers FLUSH and DISCARD: write-back cache, thin provisioning.
	dev=${DISK#/dev/}
	expect_eq "write cache" "$(cat /sys/block/$dev/queue/write_cache)" \
		"write back"
	out=$(sg_vpd --page=lbpv "$DISK")
	expect_in "LBP VPD" "$out" "Unmap command supported (LBPU): 1"
	expect_in "LBP VPD" "$out" "(LBPRZ): 1"

	say "fio: random writes of mixed sizes, queue depth 32, crc32c verify"
	fio --name=verify --filename="$DISK" --direct=1 --ioengine=libaio \
		--iodepth=32 --rw=randwrite --bsrange=4k-128k --size=100% \
		--verify=crc32c --verify_fatal=1 --do_verify=1 \
		--randrepeat=0 --output="$E2E_WORK/fio.txt"
	out=$(cat "$E2E_WORK/fio.txt")
	expect_in "fio" "$out" "err= 0"
	expect_not_in "fio" "$out" "verify: bad"

	say "the bytes are in the vdisk file"
	head -c 1M /dev/urandom >/tmp/pattern
	dd if=/tmp/pattern of="$DISK" bs=1M seek=5 oflag=direct status=none
	dd if="$VDISKS/disk1" of=/tmp/in-file bs=1M skip=5 count=1 status=none
	cmp /tmp/pattern /tmp/in-file || fail "vdisk file differs from what was written"
	echo "ok: 1 MiB written at 5 MiB is in $VDISKS/disk1"

	say "SYNCHRONIZE CACHE (FLUSH on vxhsd)"
	before=$(agent_count "$ctl" flush)
	sg_sync "$DISK" || fail "sg_sync"
	after=$(agent_count "$ctl" flush)
	[ "$after" -gt "$before" ] || fail "no FLUSH reached vxhsd ($before -> $after)"
	echo "ok: sg_sync reached vxhsd as FLUSH ($before -> $after)"

	say "WRITE SAME with a pattern: done by vxhsd (WRITE_SAME)"
	head -c 512 /dev/urandom >/tmp/block
	before=$(agent_count "$ctl" write-same)
	sg_write_same --16 --in=/tmp/block --lba=$((12 << 11)) --num=4096 "$DISK" ||
		fail "sg_write_same"
	expect_eq "WRITE_SAME requests vxhsd saw" \
		"$(agent_count "$ctl" write-same)" $((before + 1))
	python3 -c 'import sys
sys.stdout.buffer.write(open("/tmp/block", "rb").read() * 4096)' >/tmp/same
	dd if="$VDISKS/disk1" of=/tmp/in-file bs=1M skip=12 count=2 status=none
	cmp /tmp/same /tmp/in-file || fail "the vdisk file does not hold the pattern"
	echo "ok: 2 MiB at 12 MiB of $VDISKS/disk1 hold the block 4096 times"

	say "UNMAP deallocates and reads back zeroes"
	before=$(stat -c %b "$VDISKS/disk1")
	blkdiscard -o $((8 << 20)) -l $((16 << 20)) "$DISK"
	after=$(stat -c %b "$VDISKS/disk1")
	[ "$after" -lt "$before" ] || fail "vdisk file blocks $before -> $after"
	echo "ok: vdisk file blocks $before -> $after"
	dd if="$DISK" bs=1M skip=8 count=16 iflag=direct status=none | cmp - <(head -c 16M /dev/zero) ||
		fail "unmapped range does not read as zeroes"
	echo "ok: unmapped range reads as zeroes"

	say "VERIFY (16) with BYTCHK 1: the data written, then one byte changed"
	head -c 4096 /dev/urandom >/tmp/v
	dd if=/tmp/v of="$DISK" bs=4096 seek=$((20 << 8)) oflag=direct status=none
	sg_verify --16 --lba=$((20 << 11)) --count=8 --ndo=4096 --in=/tmp/v \
		"$DISK" || fail "VERIFY of the data just written"
	echo "ok: VERIFY of the data just written: GOOD"
	python3 -c 'd = bytearray(open("/tmp/v", "rb").read()); d[1000] ^= 0xff
open("/tmp/v", "wb").write(d)'
	lba=$(printf '%016x' $((20 << 11)) | sed 's/../& /g')
	# shellcheck disable=SC2086 # one byte a word
	out=$(sg_raw -s 4096 -i /tmp/v "$DISK" 8f 02 $lba 00 00 00 08 00 00 2>&1) &&
		fail "VERIFY with a changed byte answered GOOD: $out"
	expect_in "VERIFY with byte 1000 changed" "$out" "Miscompare"
	expect_in "VERIFY with byte 1000 changed" "$out" "Info fld=0x3e8"

	say "EXTENDED COPY from disk1 to disk2 (sg_xcopy): done by vxhsd (COPY)"
	"$VXHSADM" create --dir "$VDISKS" disk2 ${LUN_MB}M
	out=$("$VXHS_EXPORT" add disk2 --size ${LUN_MB}M --no-iscsi --cfgstring \
		"disk2@127.0.0.1/9998;tls=/tmp/pki/gw-a;copy_domain=e2e" 2>&1) ||
		fail "vxhs-export add disk2: $out"
	disk2=$(sed -n 's|^loopback .* -> \(/dev/sd[a-z]*\)$|\1|p' <<<"$out")
	[ -b "$disk2" ] || fail "no loopback disk for disk2: $out"
	sg_turs "$disk2" >/dev/null 2>&1 || true # the UA of the new LUN
	expect_in "Third-party Copy VPD" "$(sg_vpd --page=0x8f "$disk2")" \
		"Extended copy(LID1)"
	head -c 4M /dev/urandom >/tmp/xsrc
	dd if=/tmp/xsrc of="$DISK" bs=1M seek=30 oflag=direct status=none
	copies=$(agent_count "$ctl" copy)
	reads=$(agent_count "$ctl" read)
	writes=$(agent_count "$ctl" write)
	sg_xcopy if="$(sg_node "$DISK")" of="$(sg_node "$disk2")" bs=512 skip=$((30 << 11)) \
		seek=$((2 << 11)) count=8192 bpt=8192 ||
		fail "sg_xcopy from $DISK to $disk2"
	expect_eq "COPY requests vxhsd saw" "$(agent_count "$ctl" copy)" \
		$((copies + 1))
	expect_eq "READ requests vxhsd saw" "$(agent_count "$ctl" read)" "$reads"
	expect_eq "WRITE requests vxhsd saw" "$(agent_count "$ctl" write)" \
		"$writes"
	dd if="$VDISKS/disk2" bs=1M skip=2 count=4 status=none | cmp /tmp/xsrc - ||
		fail "disk2's vdisk file does not hold the copy"
	dd if="$disk2" bs=1M skip=2 count=4 iflag=direct status=none |
		cmp /tmp/xsrc - || fail "$disk2 does not read back the copy"
	echo "ok: 4 MiB copied from disk1 to disk2 by one COPY, no data through the gateway"
	out=$("$VXHS_EXPORT" remove disk2 2>&1) || fail "vxhs-export remove disk2: $out"
	# disk1 reports the change of LUNs once (REPORTED LUNS DATA HAS CHANGED).
	pending_ua "$DISK" >/dev/null

	say "what tcmu-runner alone answers wrongly (docs/conformance.md)"
	# INQUIRY with 255 bytes: all past the standard data is zero (the
	# rest of the buffer used to be whatever the data area held).
	sg_raw -b -r 255 "$DISK" 12 00 00 00 ff 00 2>/dev/null >/tmp/inq
	expect_eq "INQUIRY bytes" "$(stat -c %s /tmp/inq)" 255
	expect_eq "INQUIRY bytes 36-254 that are not zero" \
		"$(tail -c +37 /tmp/inq | tr -d '\0' | wc -c)" 0
	# SYNCHRONIZE CACHE (16) of the block past the end.
	lba=$(printf '%016x' $((LUN_MB * 2048)) | sed 's/../& /g')
	# shellcheck disable=SC2086 # one byte a word
	out=$(sg_raw "$DISK" 91 00 $lba 00 00 00 01 00 00 2>&1) || true
	expect_in "SYNCHRONIZE CACHE (16) past the end" "$out" \
		"Logical block address out of range"

	unexport_disk1
}
