# SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
# shellcheck shell=bash
# e2e-roles: target
#
# Benchmark (not a test; tools/bench/guest-tls.sh runs it): user:vxhs to
# the guest's own vxhsd over plaintext TCP, over TLS with the records
# made and read by vxhs itself at both ends after GnuTLS's handshake (the
# default), and over TLS with the records made and read by the kernel's
# TLS at both ends (kernel_tls=yes, and a vxhsd started with
# --kernel-tls). Two LUNs of each kind in mirror order
# (tcp ktls utls utls ktls tcp), 1 MiB commands as vxhs-export creates
# LUNs; bench_fio's jobs and rounds. "job LUN round iops" lines go to
# results.txt. Fails unless each TLS kind made its records where it says.

# shellcheck source=tests/e2e/scenarios/bench_fio.sh
. "$E2E_SRC/tests/e2e/scenarios/bench_fio.sh"
BACKSTORES="tcp-a ktls-a utls-a utls-b ktls-b tcp-b"

setup_backstores() {
	local b l=0 cfg cmds=() luns=()
	"$VXHSD" --dir "$VDISKS" --port 9997 --tls-dir /tmp/pki/agent \
		--kernel-tls --log-level info \
		>>"$E2E_WORK/vxhsd-ktls.log" 2>&1 &
	wait_for "vxhsd with kernel TLS" 40 \
		grep -q "serving" "$E2E_WORK/vxhsd-ktls.log"
	for b in $BACKSTORES; do
		case $b in
		tcp*) cfg="$b@127.0.0.1;plaintext" ;;
		ktls*) cfg="$b@127.0.0.1/9997;tls=/tmp/pki/gw-a;kernel_tls=yes" ;;
		utls*) cfg="$b@127.0.0.1/9998;tls=/tmp/pki/gw-a" ;;
		esac
		new_vdisk "$b"
		add_vxhs "$b" $l "$cfg" \
			"hw_max_sectors=2048 control=max_data_area_mb=64"
		l=$((l + 1))
	done
	make_luns
	# What the figures are of: every session of the --kernel-tls agent
	# with the kernel's records, none of the other's, and the kernel's
	# TLS sending for both ends of those LUNs' connections.
	expect_in "--kernel-tls agent" "$(cat "$E2E_WORK/vxhsd-ktls.log")" \
		"records made and read by the kernel"
	expect_not_in "--kernel-tls agent" \
		"$(grep -v 'the peer already closed' "$E2E_WORK/vxhsd-ktls.log")" \
		"records made by vxhsd"
	expect_in "default agent" "$(cat "$E2E_WORK/vxhsd-tls.log")" \
		"records made and read by vxhsd"
	expect_not_in "default agent" "$(cat "$E2E_WORK/vxhsd-tls.log")" \
		"records made by the kernel"
	cat /proc/net/tls_stat >"$E2E_WORK/tls_stat.txt"
	awk '$1 ~ /^TlsCurr[TR]xSw$/ && $2 >= 2 { n++ } END { exit n != 2 }' \
		/proc/net/tls_stat ||
		fail "the kernel's TLS for no session both ways: $(tr '\n' ' ' </proc/net/tls_stat)"
}
