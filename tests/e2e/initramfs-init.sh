#!/bin/busybox sh
# SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
#
# /init of the e2e guests' initramfs: mounts the host's root file system
# (9p, read-only) with writable tmpfs and overlays where a running system
# writes, mounts the shared work directory at the same path as on the host,
# and hands over to the guest script ($E2E_GUEST, from the kernel command
# line) in that root.
set -e
bb=/bin/busybox
$bb mkdir -p /proc /sys /dev /newroot /ovl
$bb mount -t proc proc /proc
$bb mount -t sysfs sysfs /sys
$bb mount -t devtmpfs devtmpfs /dev
for m in $($bb cat /modules.order); do
	$bb insmod "/modules/$m"
done

opts=trans=virtio,version=9p2000.L,msize=262144,cache=loose
$bb mount -t 9p -o "$opts,ro" hostroot /newroot
$bb mount -t tmpfs tmpfs /newroot/run
# Writable /etc, /var, /root, /tmp and /usr over the host's, changes kept
# in memory. /tmp too, not an empty tmpfs: the tree under test may live
# there; /usr for the packages scenario's dpkg.
$bb mount -t tmpfs tmpfs /ovl
for d in etc var root tmp usr; do
	$bb mkdir -p "/ovl/$d/upper" "/ovl/$d/work"
	$bb mount -t overlay overlay \
		-o "lowerdir=/newroot/$d,upperdir=/ovl/$d/upper,workdir=/ovl/$d/work" \
		"/newroot/$d"
done
$bb mount -t 9p -o "trans=virtio,version=9p2000.L,msize=262144" work \
	"/newroot$E2E_WORK"

# The overlays' upper directories stay reachable in the guest, so a
# scenario can list what it changed without walking the host's tree over
# 9p (the packages scenario's check for files left behind).
$bb mkdir -p /newroot/run/e2e-overlay
$bb mount --move /ovl /newroot/run/e2e-overlay
for d in dev proc sys; do
	$bb mount --move "/$d" "/newroot/$d"
done
exec $bb switch_root /newroot /bin/bash "$E2E_GUEST"
