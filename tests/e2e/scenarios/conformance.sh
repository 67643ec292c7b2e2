# SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
# shellcheck shell=bash
# e2e-roles: target
#
# Scenario 6: libiscsi's conformance suite (iscsi-test-cu --dataloss, the
# SCSI family) over LIO's iSCSI target, against a user:vxhs LUN and, in the
# same run, a fileio LUN and a user:qcow LUN (tcmu-runner's own handler,
# Debian's handler_qcow.so) on raw files of the same size. Fails if a test
# that passes on fileio or user:qcow fails on user:vxhs, unless
# docs/conformance.md lists it with its cause.

SIZE=64M

# Suites that do not apply to a disk exported this way.
NOT_A_DISK='^SCSI\.(NoMedia|ReadOnly|MultipathIO|Sanitize)\.'

# results LUN OUT: one "name result" line per test.
run_suite() {
	local lun=$1 out=$2
	iscsi-test-cu --dataloss --test=SCSI --verbose \
		"iscsi://127.0.0.1/$IQN_TARGET/$lun" >"$out.raw" 2>&1 || true
	# CUnit's verbose output: "Suite: S", "  Test: T ...", messages, and
	# the verdict at the end of the test's first or a later line.
	awk '/^Suite: / { suite = $2; next }
	     /^  Test: / { name = $2; skipped = 0 }
	     name && /\[SKIPPED\]/ { skipped = 1 }
	     name && /(\.\.\.|^)(passed|FAILED)$/ {
		r = /passed$/ ? (skipped ? "skipped" : "passed") : "FAILED"
		print "SCSI." suite "." name, r
		name = ""
	     }' "$out.raw" | grep -Ev "$NOT_A_DISK" | sort -u >"$out"
	[ -s "$out" ] || fail "no results from iscsi-test-cu on LUN $lun (see $out.raw)"
}

# rerun TEST LUN: runs one test alone; true if it passed.
rerun() {
	iscsi-test-cu --dataloss --test="$1" --verbose \
		"iscsi://127.0.0.1/$IQN_TARGET/$2" 2>&1 |
		tee -a "$E2E_WORK/reruns.txt" |
		grep -Eq '^ *Test: .*\.\.\.passed$|^passed$'
}

# A difference not listed in docs/conformance.md is forgiven only when it
# is not ours: TEST runs alone RERUNS times on user:vxhs and on LUN (the
# backstore it passed on), alternating. True if it failed there too (the
# test's own flakiness), or if it never failed alone on user:vxhs and the
# suite run saw it fail on a third backstore as well (FAILED_ELSEWHERE:
# it depends on what earlier tests left, as Reserve6.ITNexusLoss does).
# An intermittent failure on user:vxhs alone is a bug, not noise.
RERUNS=3
# Tests no backstore can change: LIO's core answers RESERVE(6) and
# RELEASE(6) for all three (TCMU passes no reservation to user space), and
# their outcome is a race in LIO between a session's end and the next
# initiator's RESERVE(6): after the suite's earlier tests Reserve6.Logout
# fails on every backstore most of the time, ITNexusLoss, next, now and
# then, and alone Logout failed 1 time in 3 on user:vxhs and 0 in 3 on
# user:qcow in one run (docs/conformance.md). They are rerun for the
# record, never judged.
LIO_ONLY="SCSI.Reserve6.Logout SCSI.Reserve6.ITNexusLoss"
flaky_on_both() {
	local name=$1 lun=$2 failed_elsewhere=$3 vxhs_failed=0 other_failed=0
	for _ in $(seq $RERUNS); do
		rerun "$name" 0 || vxhs_failed=$((vxhs_failed + 1))
		rerun "$name" "$lun" || other_failed=$((other_failed + 1))
	done
	echo "$name run alone $RERUNS times: failed $vxhs_failed on user:vxhs," \
		"$other_failed on LUN $lun"
	[ "$other_failed" -gt 0 ] ||
		{ [ "$vxhs_failed" = 0 ] && [ "$failed_elsewhere" = yes ]; }
}

scenario_target() {
	start_vxhsd
	TCMU_HANDLER_PATH=$(both_handlers_dir) start_tcmu_runner
	"$VXHSADM" create --dir "$VDISKS" disk1 $SIZE
	truncate -s $SIZE /var/lib/fileio.img /var/lib/qcow.raw
	local tpg="/iscsi/$IQN_TARGET/tpg1"
	tcli "/backstores/user:vxhs create name=disk1 size=$SIZE cfgstring=disk1" \
		"/backstores/fileio create name=file1 file_or_dev=/var/lib/fileio.img size=$SIZE" \
		"/backstores/user:qcow create name=qcow1 size=$SIZE cfgstring=/var/lib/qcow.raw" \
		"/iscsi create $IQN_TARGET" \
		"$tpg/portals delete 0.0.0.0 3260" \
		"$tpg/portals create 127.0.0.1 3260" \
		"$tpg/luns create /backstores/user:vxhs/disk1 lun=0" \
		"$tpg/luns create /backstores/fileio/file1 lun=1" \
		"$tpg/luns create /backstores/user:qcow/qcow1 lun=2" \
		"$tpg set attribute authentication=0 generate_node_acls=1 demo_mode_write_protect=0 cache_dynamic_acls=1" >/dev/null

	say "iscsi-test-cu on user:vxhs (LUN 0)"
	run_suite 0 "$E2E_WORK/vxhs.txt"
	say "iscsi-test-cu on fileio (LUN 1)"
	run_suite 1 "$E2E_WORK/fileio.txt"
	say "iscsi-test-cu on user:qcow (LUN 2)"
	run_suite 2 "$E2E_WORK/qcow.txt"

	say "results (test, fileio, user:qcow, user:vxhs)"
	join -a1 -a2 -e missing -o 0,1.2,2.2 "$E2E_WORK/fileio.txt" \
		"$E2E_WORK/qcow.txt" >"$E2E_WORK/others.txt"
	join -a1 -a2 -e missing -o 0,1.2,1.3,2.2 "$E2E_WORK/others.txt" \
		"$E2E_WORK/vxhs.txt" >"$E2E_WORK/table.txt"
	column -t "$E2E_WORK/table.txt"
	for f in fileio qcow vxhs; do
		echo "$f: $(grep -c ' passed' "$E2E_WORK/$f.txt") passed," \
			"$(grep -c ' FAILED' "$E2E_WORK/$f.txt") failed," \
			"$(grep -c ' skipped' "$E2E_WORK/$f.txt") skipped"
	done

	# Differences documented in docs/conformance.md: "| SCSI.X.Y | cause |".
	known=$(sed -n 's/^| *\(SCSI\.[^ |]*\) *|.*/\1/p' "$E2E_SRC/docs/conformance.md")
	bad=0
	while read -r name on_file on_qcow on_vxhs; do
		[ "$on_vxhs" != passed ] || continue
		if [ "$on_file" = passed ]; then
			other=fileio lun=1 elsewhere=$on_qcow
		elif [ "$on_qcow" = passed ]; then
			other=user:qcow lun=2 elsewhere=$on_file
		else
			continue
		fi
		[ "$elsewhere" = FAILED ] && elsewhere=yes
		grep -qwF "$name" <<<"$LIO_ONLY" && elsewhere=yes
		if grep -qxF "$name" <<<"$known"; then
			echo "known difference: $name ($on_vxhs)"
		elif grep -qwF "$name" <<<"$LIO_ONLY"; then
			flaky_on_both "$name" "$lun" yes || true
			echo "not judged: $name (LIO's core answers it on every backstore)"
		elif flaky_on_both "$name" "$lun" "$elsewhere"; then
			echo "not ours: $name (flaky, or order-dependent in the suite)"
		else
			echo "REGRESSION: $name passes on $other, $on_vxhs on user:vxhs"
			bad=1
		fi
	done <"$E2E_WORK/table.txt"
	[ "$bad" = 0 ] ||
		fail "user:vxhs fails tests fileio or user:qcow passes (not in docs/conformance.md)"
	echo "ok: every test passing on fileio or user:qcow passes on user:vxhs, or is documented"
}
