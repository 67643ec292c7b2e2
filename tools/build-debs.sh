#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
#
# Builds the Debian packages from the tree and checks them with lintian.
#
#   tools/build-debs.sh [OUTDIR]     (default build-deb/)
#
# dpkg-buildpackage writes next to the source directory, so the tree (the
# files git knows, and the tcmu-runner headers tools/setup.sh fetched) is
# copied into OUTDIR/src first; the .deb files end up in OUTDIR. Fails on
# any lintian error or warning.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=$(realpath -m "${1:-$ROOT/build-deb}")
TCMU_DIR=.deps/tcmu-runner-1.5.4

if [ ! -f "$ROOT/$TCMU_DIR/tcmu-runner.h" ]; then
	echo "build-debs: $TCMU_DIR missing: run tools/setup.sh --no-build" >&2
	exit 1
fi
rm -rf "$OUT"
mkdir -p "$OUT/src"
(cd "$ROOT" && git ls-files -z --cached --others --exclude-standard |
	xargs -0 cp --parents -t "$OUT/src" &&
	cp -r --parents "$TCMU_DIR" "$OUT/src")

echo "==> dpkg-buildpackage (log: $OUT/build.log)"
if ! (cd "$OUT/src" && dpkg-buildpackage -us -uc -b) >"$OUT/build.log" 2>&1
then
	tail -40 "$OUT/build.log" >&2
	exit 1
fi
ls "$OUT"/*.deb

echo "==> lintian"
# --fail-on error,warning: exit non-zero on either (info and pedantic tags
# are allowed). Not as root, as lintian asks.
lint=(lintian --fail-on error,warning --tag-display-limit 0 "$OUT"/*.changes)
if [ "$(id -u)" -eq 0 ]; then
	HOME=/tmp runuser -u nobody -- "${lint[@]}"
else
	"${lint[@]}"
fi
echo "lintian: no errors or warnings"
