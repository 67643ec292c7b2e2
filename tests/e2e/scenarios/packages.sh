# SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
# shellcheck shell=bash
# e2e-roles: target
#
# Scenario: the Debian packages (tools/build-debs.sh, in build-deb/) are
# installed with dpkg; the loopback scenario runs on the installed files
# alone (vxhsd as the package's user with its shipped configuration,
# Debian's tcmu-runner loading handlers from its own directory,
# vxhs-export, vxhsadm, the nbdkit plugin, libvxhs-dev's example); then
# dpkg --purge leaves nothing behind.

MULTIARCH=$(gcc -print-multiarch)
PACKAGES="vxhsd tcmu-runner-handler-vxhs vxhs-utils nbdkit-plugin-vxhs
libvxhs0 libvxhs-dev"

# Files created or changed after the marker (ctime: dpkg keeps the
# packages' own modification times), but for what the scenario writes
# and what dpkg, ldconfig and man-db keep for themselves. System users stay
# after a purge, as Debian's policy wants. Only the overlays' upper
# directories hold what the guest changed (tests/e2e/initramfs-init.sh):
# walking them, not /usr over 9p, keeps this to seconds under TCG.
OVERLAY=/run/e2e-overlay
KEPT='^/(var/lib/dpkg|var/log|var/cache|var/lib/vxhsd|var/lib/dbus|var/target'
KEPT+='|etc/rtslib-fb-target|etc/target)(/|$)'
KEPT+='|^/etc/((passwd|group|shadow|gshadow)-?|\.pwd\.lock|subuid|subgid'
KEPT+='|ld\.so\.cache)$'
changed_since_install() {
	local d
	for d in etc usr var; do
		[ -d "$OVERLAY/$d/upper" ] ||
			fail "no $OVERLAY/$d/upper: the guest's initramfs predates it"
	done
	for d in etc usr var; do
		(cd "$OVERLAY/$d/upper" &&
			find . \( -type f -o -type l \) -cnewer /tmp/before-install \
				-print) | sed "s|^\.|/$d|"
	done | grep -Ev "$KEPT" || true
}

scenario_target() {
	local debs d out
	# shellcheck disable=SC2010 # plain names
	debs=$(ls "$E2E_SRC"/build-deb/*.deb 2>/dev/null | grep -v dbgsym) ||
		fail "no packages in $E2E_SRC/build-deb: run tools/build-debs.sh"
	# man-db's index update costs minutes under TCG and is not tested.
	echo 'man-db man-db/auto-update boolean false' |
		debconf-set-selections
	touch /tmp/before-install
	sleep 1

	say "dpkg -i: $(echo "$debs" | xargs -n1 basename | tr '\n' ' ')"
	# shellcheck disable=SC2086 # one word per package
	dpkg -i $debs >"$E2E_WORK/dpkg-install.log" 2>&1 ||
		fail "dpkg -i: $(tail -20 "$E2E_WORK/dpkg-install.log")"
	for f in /usr/sbin/vxhsd /usr/bin/vxhsadm /usr/sbin/vxhs-export \
		"/usr/lib/$MULTIARCH/tcmu-runner/handler_vxhs.so" \
		"/usr/lib/$MULTIARCH/libvxhs.so.0" \
		"/usr/lib/$MULTIARCH/nbdkit/plugins/nbdkit-vxhs-plugin.so" \
		/etc/vxhs/vxhsd.conf /lib/systemd/system/vxhsd.socket \
		/usr/share/bash-completion/completions/vxhsadm; do
		test -e "$f" || fail "not installed: $f"
	done
	getent passwd vxhsd >/dev/null || fail "no user vxhsd (sysusers)"
	getent group vxhs >/dev/null || fail "no group vxhs (sysusers)"
	for p in vxhsd vxhsadm vxhs-export handler_vxhs vxhsd.conf vxhsd.acl \
		vxhs-agents.conf nbdkit-vxhs-plugin; do
		man -w "$p" >/dev/null || fail "no manual page $p"
	done
	expect_eq "pkg-config" "$(pkg-config --modversion vxhs)" \
		"$(dpkg-query -W -f='${Version}' libvxhs-dev)"
	changed_since_install | grep -qx /usr/sbin/vxhsd ||
		fail "the check for files left behind cannot see installed ones"
	echo "ok: files, users, manual pages, vxhs.pc"

	say "vxhsd as its package runs it: user vxhsd, the shipped vxhsd.conf"
	"$E2E_SRC/tests/tls/make-certs.sh" /tmp/pki >/dev/null
	install -d -o root -g vxhsd -m 750 /etc/vxhs/vxhsd-tls
	install -o root -g vxhsd -m 640 /tmp/pki/agent/* /etc/vxhs/vxhsd-tls/
	install -d -o vxhsd -g vxhsd -m 700 /var/lib/vxhsd
	install -d -o vxhsd -g vxhs -m 755 /run/vxhsd
	setpriv --reuid vxhsd --regid vxhsd --init-groups \
		/usr/sbin/vxhsd --config /etc/vxhs/vxhsd.conf \
		--unix /run/vxhsd/vxhsd.sock --status /run/vxhsd/status.sock \
		>>"$E2E_WORK/vxhsd.log" 2>&1 &
	VXHSD_PID=$!
	wait_for "vxhsd" 40 test -S /run/vxhsd/vxhsd.sock

	say "tcmu-runner with the handlers of its own directory"
	TCMU_HANDLER_PATH=/usr/lib/$MULTIARCH/tcmu-runner start_tcmu_runner
	/usr/bin/vxhsadm create disk1 64M
	EXPORTED=$(/usr/sbin/vxhs-export add disk1 --size 64M --no-iscsi 2>&1) ||
		fail "vxhs-export add: $EXPORTED"
	found_loopback_lun
	head -c 1M /dev/urandom >/tmp/pattern
	dd if=/tmp/pattern of="$DISK" bs=1M seek=3 oflag=direct status=none
	dd if=/var/lib/vxhsd/disk1 of=/tmp/in-file bs=1M skip=3 count=1 \
		status=none
	cmp /tmp/pattern /tmp/in-file || fail "the vdisk file differs"
	echo "ok: 1 MiB through $DISK is in the vdisk file"
	out=$(/usr/bin/vxhsadm status)
	expect_in "vxhsadm status" "$out" "uid:0"
	expect_in "vxhsadm status" "$out" "disk1 "
	out=$(/usr/bin/vxhsadm delete disk1 2>&1) &&
		fail "delete of the exported vdisk went ahead"
	expect_in "vxhsadm delete" "$out" "in use"

	say "nbdkit plugin and libvxhs-dev's example, installed"
	out=$(nbdkit -U - vxhs vdisk=disk1 --run 'qemu-img info "$uri"' 2>&1)
	expect_in "nbdkit vxhs" "$out" "virtual size: 64 MiB"
	d=/usr/share/doc/libvxhs-dev/examples
	gcc -Wall -Werror "$d/vdisk-info.c" $(pkg-config --cflags --libs vxhs) \
		-o /tmp/vdisk-info || fail "the example does not build"
	out=$(/tmp/vdisk-info unix:/run/vxhsd/vxhsd.sock disk1)
	expect_in "vdisk-info" "$out" "size 67108864"

	/usr/sbin/vxhs-export remove disk1 >/dev/null
	stop_tcmu_runner
	kill "$VXHSD_PID"
	wait "$VXHSD_PID" || fail "vxhsd did not exit 0"
	rm -rf /etc/vxhs/vxhsd-tls

	say "dpkg --purge"
	# shellcheck disable=SC2086 # one word per package
	dpkg --purge $PACKAGES >"$E2E_WORK/dpkg-purge.log" 2>&1 ||
		fail "dpkg --purge: $(tail -20 "$E2E_WORK/dpkg-purge.log")"
	out=$(changed_since_install)
	[ -z "$out" ] || fail "left behind after purge: $out"
	test -e /etc/vxhs && fail "/etc/vxhs left behind"
	echo "ok: nothing left behind"
}
