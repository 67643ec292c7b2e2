#!/bin/bash
# SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
#
# PID 1 of an e2e guest, in the host's root file system: brings up what the
# scenario needs (LIO and configfs, a system D-Bus, vxhsd, tcmu-runner with
# the handler from the build tree), runs the scenario, records its exit
# status in $E2E_WORK/<role>.status and powers off.
#
# Kernel command line (set by rig.sh): E2E_WORK, E2E_BUILD, E2E_SRC,
# E2E_SCENARIO, E2E_ROLE (target or remote).
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root LANG=C.UTF-8 TERM=dumb
cd /tmp

status=1
finish() {
	echo "$status" >"$E2E_WORK/$E2E_ROLE.status"
	sync
	busybox poweroff -f
}
trap finish EXIT

# shellcheck source=lib.sh
source "$E2E_SRC/tests/e2e/lib.sh"
(
	set -e
	guest_setup
	# shellcheck disable=SC1090
	source "$E2E_SRC/tests/e2e/scenarios/$E2E_SCENARIO.sh"
	scenario_"$E2E_ROLE"
) 2>&1 | tee "$E2E_WORK/$E2E_ROLE.log"
status=${PIPESTATUS[0]}
# Let another guest waiting for this one give up at once.
[ "$status" = 0 ] || touch "$E2E_WORK/sync.abort"
