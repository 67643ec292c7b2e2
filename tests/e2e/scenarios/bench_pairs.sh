# SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
# shellcheck shell=bash
# e2e-roles: target
#
# Benchmark (not a test; tools/bench/guest-pairs.sh runs it): user:vxhs
# over the local vxhsd's UNIX socket against tcmu-runner's own user:qcow,
# each with LIO's default 64 KiB commands and with 1 MiB ones (as
# vxhs-export and docs/handler.md create LUNs), two LUNs of each kind
# placed in mirror order (q64 v64 v1m q1m q1m v1m v64 q64), so that no
# kind owes its figures to its place among the LUNs: in bench_fio's nine
# LUNs of different kinds the 1 MiB lines moved up to 3x with a LUN's
# place. fio jobs and rounds as bench_fio's; "job LUN round iops" lines
# go to results.txt, the LUN named by its kind and a or b.

# shellcheck source=tests/e2e/scenarios/bench_fio.sh
. "$E2E_SRC/tests/e2e/scenarios/bench_fio.sh"
BACKSTORES="q64-a v64-a v1m-a q1m-a q1m-b v1m-b v64-b q64-b"

setup_backstores() {
	local b l=0 big cmds=() luns=()
	mkdir -p "$DIR"
	for b in $BACKSTORES; do
		big=
		case $b in
		*1m*) big="hw_max_sectors=2048 control=max_data_area_mb=64" ;;
		esac
		case $b in
		q*) add_qcow "$b" $l "$big" ;;
		*)
			new_vdisk "$b"
			add_vxhs "$b" $l "$b" "$big"
			;;
		esac
		l=$((l + 1))
	done
	make_luns
}
