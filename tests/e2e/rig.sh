#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
#
# Runs one end-to-end scenario in QEMU guests booting Debian's kernel, with
# the host's root file system shared read-only, so the guests run the
# binaries just built. Docs: tests/e2e/README.md.
#
#   tests/e2e/rig.sh SCENARIO        scenarios/SCENARIO.sh
#
# Environment: E2E_BUILD (build tree, default build/), E2E_ACCEL (tcg or
# kvm, default tcg), E2E_TIMEOUT (seconds per boot, default 900).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
E2E="$ROOT/tests/e2e"
BUILD=$(cd "${E2E_BUILD:-$ROOT/build}" && pwd)
ACCEL=${E2E_ACCEL:-tcg}
TIMEOUT=${E2E_TIMEOUT:-900}

die() {
	echo "e2e: $*" >&2
	exit 1
}

[ $# -eq 1 ] || die "usage: rig.sh SCENARIO"
SCENARIO=$1
SCRIPT="$E2E/scenarios/$SCENARIO.sh"
[ -f "$SCRIPT" ] || die "no scenario $SCRIPT"

# Every prerequisite missing is an error, never a skipped test.
need() {
	local what=$1 hint=$2
	[ -e "$what" ] || command -v "$what" >/dev/null 2>&1 ||
		die "missing $what ($hint; tools/setup.sh installs it)"
}
need qemu-system-x86_64 "package qemu-system-x86"
need /bin/busybox "package busybox-static"
need cpio "package cpio"
need tcmu-runner "package tcmu-runner"
need targetcli "package targetcli-fb"
need "$BUILD/handler/handler_vxhs.so" "build the tree first"
need "$BUILD/server/vxhsd" "build the tree first"
KERNEL=$(ls -1 /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n1 || true)
[ -n "$KERNEL" ] || die "no /boot/vmlinuz-* (package linux-image-amd64)"
KVER=${KERNEL#/boot/vmlinuz-}
[ -d "/lib/modules/$KVER" ] || die "no /lib/modules/$KVER"

CACHE="$BUILD/e2e/cache"
mkdir -p "$CACHE"

# The ELF kernel inside the bzImage boots faster (PVH) than the bzImage.
vmlinux() {
	local out="$CACHE/vmlinux-$KVER" off
	if [ ! -s "$out" ]; then
		off=$(grep -obUaP '\xfd7zXZ\x00' "$KERNEL" | head -n1 | cut -d: -f1)
		if [ -n "$off" ]; then
			tail -c +"$((off + 1))" "$KERNEL" | xz -dc >"$out.tmp" 2>/dev/null || true
		fi
		if [ -s "$out.tmp" ] && head -c4 "$out.tmp" | grep -q ELF; then
			mv "$out.tmp" "$out"
		else
			rm -f "$out.tmp"
			echo "$KERNEL"
			return
		fi
	fi
	echo "$out"
}

# busybox, the modules for virtio, 9p and overlayfs, and our /init.
initramfs() {
	local out="$CACHE/initramfs-$KVER.cpio.gz" dir m
	if [ -s "$out" ] && [ "$out" -nt "$E2E/initramfs-init.sh" ]; then
		echo "$out"
		return
	fi
	dir=$(mktemp -d)
	mkdir -p "$dir/bin" "$dir/modules"
	cp /bin/busybox "$dir/bin/busybox"
	cp "$E2E/initramfs-init.sh" "$dir/init"
	chmod 755 "$dir/init"
	for m in 9pnet_virtio 9p overlay virtio_pci virtio_net; do
		modprobe -S "$KVER" --show-depends "$m" | awk '$1 == "insmod" { print $2 }'
	done | awk '!seen[$0]++' | while read -r m; do
		cp "$m" "$dir/modules/"
		basename "$m" >>"$dir/modules.order"
	done
	(cd "$dir" && find . | cpio -o -H newc --quiet | gzip -1) >"$out.tmp"
	mv "$out.tmp" "$out"
	rm -rf "$dir"
	echo "$out"
}

KIMG=$(vmlinux)
INITRD=$(initramfs)
WORK="$BUILD/e2e/$SCENARIO"
rm -rf "$WORK"
mkdir -p "$WORK"

# A scenario names the guests it needs: "# e2e-roles: target remote".
read -r -a ROLES < <(sed -n 's/^# e2e-roles: *//p' "$SCRIPT")
[ ${#ROLES[@]} -gt 0 ] || ROLES=(target)

case "$ACCEL" in
kvm) accel=(-accel kvm -cpu host) ;;
tcg) accel=(-accel tcg,thread=multi -cpu max) ;;
*) die "E2E_ACCEL must be tcg or kvm" ;;
esac

# Guests reach each other over a QEMU socket network on these two UDP
# ports (this one and the next): over a TCP one, each small exchange
# waited about 45 ms (tests/e2e/README.md).
NETPORT=$((20000 + RANDOM % 20000))

boot() {
	local role=$1 idx=$2 net=() mem=2G smp=2
	if [ ${#ROLES[@]} -gt 1 ]; then
		local me=$((NETPORT + idx)) peer=$((NETPORT + 1 - idx))
		net=(-netdev "socket,id=n0,udp=127.0.0.1:$peer,localaddr=127.0.0.1:$me"
			-device "virtio-net-pci,netdev=n0,mac=52:54:00:e2:e0:0$idx")
		mem=1G
		smp=1
	fi
	timeout --foreground -k 10 "$TIMEOUT" qemu-system-x86_64 \
		"${accel[@]}" -smp "$smp" -m "$mem" \
		-nodefaults -display none -no-reboot \
		-serial "file:$WORK/$role.console" \
		-kernel "$KIMG" -initrd "$INITRD" \
		-append "console=ttyS0 panic=-1 quiet loglevel=4 E2E_GUEST=$E2E/guest.sh E2E_WORK=$WORK E2E_BUILD=$BUILD E2E_SRC=$ROOT E2E_SCENARIO=$SCENARIO E2E_ROLE=$role E2E_INDEX=$idx" \
		-virtfs "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap" \
		-virtfs "local,path=$WORK,mount_tag=work,security_model=none,multidevs=remap" \
		-device virtio-rng-pci \
		"${net[@]}"
}

echo "e2e: $SCENARIO: booting ${ROLES[*]} ($ACCEL, kernel $KVER)"
start=$SECONDS
pids=()
for i in "${!ROLES[@]}"; do
	boot "${ROLES[$i]}" "$i" &
	pids+=($!)
	sleep 1 # the listening guest first
done
for p in "${pids[@]}"; do
	wait "$p" || true
done

rc=0
for role in "${ROLES[@]}"; do
	if [ "$(cat "$WORK/$role.status" 2>/dev/null)" != 0 ]; then
		rc=1
		echo "e2e: $SCENARIO: $role FAILED (status $(cat "$WORK/$role.status" 2>/dev/null || echo 'none: guest died or timed out'))"
		echo "---- $role log ----"
		cat "$WORK/$role.log" 2>/dev/null || true
		echo "---- $role console (last 40 lines) ----"
		tail -n 40 "$WORK/$role.console" 2>/dev/null || true
	fi
done
echo "e2e: $SCENARIO: $([ $rc = 0 ] && echo passed || echo FAILED) in $((SECONDS - start)) s; logs in $WORK"
exit $rc
