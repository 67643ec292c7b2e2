#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
# Bash completion for vxhsadm, vxhsd and vxhs-export: commands, options
# (from each program's --help), vdisk names and option values.
#   completion_check.sh COMPLETION_FILE DIR_WITH_PROGRAMS...
set -u
file=$1
shift
for d in "$@"; do PATH=$d:$PATH; done
if [ ! -f /usr/share/bash-completion/bash_completion ]; then
	echo "Bail out! bash-completion is missing (tools/setup.sh installs it)"
	exit 1
fi
# shellcheck disable=SC1091
. /usr/share/bash-completion/bash_completion
# shellcheck disable=SC1090
. "$file"
# Outside a real completion, compopt only complains.
compopt() { :; }

failed=0
# complete FUNCTION WORD... : COMPREPLY for the last word
complete_line() {
	local fn=$1
	shift
	COMP_WORDS=("$@")
	COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
	COMP_LINE="$*"
	COMP_POINT=${#COMP_LINE}
	COMPREPLY=()
	"$fn" "$1" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
}
expect() { # WHAT WANTED... -- FUNCTION WORD...
	local what=$1 want=() w
	shift
	while [ "$1" != -- ]; do want+=("$1"); shift; done
	shift
	complete_line "$@"
	for w in "${want[@]}"; do
		if ! printf '%s\n' "${COMPREPLY[@]}" | grep -qx -- "$w"; then
			echo "not ok - $what: no '$w' in: ${COMPREPLY[*]}"
			failed=$((failed + 1))
			return
		fi
	done
	echo "ok - $what"
}

vdir=$(mktemp -d)
trap 'rm -rf "$vdir"' EXIT
: >"$vdir/disk1"
: >"$vdir/disk2"

expect "vxhsadm commands" create status bench -- _vxhsadm vxhsadm ""
expect "vxhsadm status options" --json --socket= -- _vxhsadm vxhsadm status --
expect "vxhsadm delete options" --force --dir= -- _vxhsadm vxhsadm delete --
expect "vxhsadm write options" --progress --allow-plaintext -- \
	_vxhsadm vxhsadm write --
expect "vdisk names from --dir" disk1 disk2 -- \
	_vxhsadm vxhsadm delete --dir "$vdir" disk
expect "bench --rw values" read write -- _vxhsadm vxhsadm bench --rw ""
expect "vxhsd options" --status= --tls-dir= --allow-plaintext -- \
	_vxhsd vxhsd --
expect "vxhsd --log-level values" debug warning -- \
	_vxhsd vxhsd --log-level ""
expect "vxhs-export commands" add remove list -- _vxhs_export vxhs-export ""
expect "vxhs-export add options" --size --cfgstring --chap-secret-file -- \
	_vxhs_export vxhs-export add --

if [ "$failed" -ne 0 ]; then
	echo "completion_check: $failed failed"
	exit 1
fi
echo "completion_check: ok"
