#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
#
# Prepares a Debian 12 machine to build and test tcmu-vxhs, then builds.
# Idempotent: installs only missing packages, fetches the tcmu-runner
# headers only once, and reuses the build directory.
#
#   tools/setup.sh            install, fetch, build (build/)
#   tools/setup.sh --no-build install and fetch only
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEPS="$ROOT/.deps"
TCMU_VERSION=1.5.4
TCMU_DEB_VERSION=1.5.4-4.1
TCMU_DIR="$DEPS/tcmu-runner-$TCMU_VERSION"

# Build and test dependencies, from Debian's archive only.
PACKAGES=(
	cmake make gcc pkg-config python3 xz-utils clang-format
	libcmocka-dev libsystemd-dev libglib2.0-dev libgnutls28-dev liburing-dev
	libipsec-mb-dev
	# TLS test certificates, the OpenSSL interoperability test, fuzzing
	gnutls-bin openssl clang libclang-rt-dev
	nbdkit qemu-utils binutils
	# the nbdkit plugin; Debian packages and their checks; man pages
	nbdkit-plugin-dev debhelper lintian fakeroot bash-completion man-db
	tcmu-runner
	# the end-to-end tier: a guest kernel and the real target stack
	linux-image-amd64 qemu-system-x86 busybox-static cpio kmod
	targetcli-fb open-iscsi sg3-utils libiscsi-bin fio dbus iproute2
	util-linux multipath-tools
	# benchmarks: iblock on the kernel's NBD client (tools/bench/guest-fio.sh)
	nbd-client
)

say() { printf '==> %s\n' "$*"; }

install_packages() {
	local missing=() p
	for p in "${PACKAGES[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
			grep -q 'install ok installed' || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	if [ "$(id -u)" -ne 0 ]; then
		echo "setup: missing packages: ${missing[*]}; run as root to install them" >&2
		exit 1
	fi
	say "installing ${missing[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		--no-install-recommends "${missing[@]}" >/dev/null
}

# Debian ships tcmu-runner without headers: take them from the source
# package of the same version, through a private deb-src list so the
# system's package lists stay as they are.
fetch_tcmu_headers() {
	[ -f "$TCMU_DIR/tcmu-runner.h" ] && return 0
	say "fetching the tcmu-runner $TCMU_VERSION headers (Debian source package)"
	local work="$DEPS/apt" src
	mkdir -p "$work/lists/partial" "$work/parts" "$work/src"
	src=/etc/apt/sources.list.d/debian.sources
	if [ ! -f "$src" ]; then
		echo "setup: $src not found: cannot locate Debian's source archive" >&2
		exit 1
	fi
	sed 's/^Types: deb$/Types: deb-src/' "$src" >"$work/parts/debsrc.sources"
	local opts=(-o "Dir::Etc::SourceParts=$work/parts"
		-o "Dir::Etc::SourceList=/dev/null"
		-o "Dir::State::Lists=$work/lists"
		-o "APT::Sandbox::User=root")
	apt-get "${opts[@]}" update -qq
	(cd "$work/src" &&
		apt-get "${opts[@]}" source --download-only -qq \
			"tcmu=$TCMU_DEB_VERSION")
	mkdir -p "$TCMU_DIR.tmp"
	tar -xf "$work/src/tcmu_$TCMU_VERSION.orig.tar.xz" \
		-C "$TCMU_DIR.tmp" --strip-components=1
	rm -rf "$TCMU_DIR"
	mv "$TCMU_DIR.tmp" "$TCMU_DIR"
	rm -rf "$work"
}

build() {
	say "building in build/"
	cmake -S "$ROOT" -B "$ROOT/build" -DVXHS_WERROR=ON \
		-DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	if ! cmake --build "$ROOT/build" -j"$(nproc)" >"$ROOT/build/build.log" 2>&1; then
		cat "$ROOT/build/build.log" >&2
		echo "setup: the build failed (log above, also in build/build.log)" >&2
		exit 1
	fi
}

install_packages
fetch_tcmu_headers
[ "${1:-}" = "--no-build" ] || build
