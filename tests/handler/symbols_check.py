#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
"""Checks that handler_vxhs.so can be dlopen()ed by Debian's tcmu-runner.

tcmu-runner loads handlers with RTLD_NOW: every undefined symbol must be
exported by the tcmu-runner binary, by libtcmu.so.2, or by a library the
module itself names as NEEDED. A symbol that is merely declared in
tcmu-runner's headers (most of them are not exported) makes the dlopen fail
at run time, so this compares against the installed binaries, not the
headers. The module must also export nothing but handler_init.
"""
import os
import subprocess
import sys

TCMU_RUNNER = "/usr/bin/tcmu-runner"
LIBTCMU = "/usr/lib/x86_64-linux-gnu/libtcmu.so.2"


def dynsyms(path, defined):
    flag = "--defined-only" if defined else "--undefined-only"
    out = subprocess.run(["nm", "-D", flag, path], check=True,
                         capture_output=True, text=True).stdout
    syms = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2:
            syms[parts[-1].split("@")[0]] = parts[-2]
    return syms


def needed_libs(path):
    """The module's NEEDED libraries, resolved as the loader would."""
    out = subprocess.run(["ldd", path], check=True, capture_output=True,
                         text=True).stdout
    libs = []
    for line in out.splitlines():
        if "=>" in line:
            target = line.split("=>")[1].split("(")[0].strip()
            if target == "not found":
                sys.exit(f"FAIL: {line.strip()}")
            if target:
                libs.append(target)
        elif line.strip().startswith("/"):  # the dynamic loader itself
            libs.append(line.split("(")[0].strip())
    return libs


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: symbols_check.py handler_vxhs.so")
    module = sys.argv[1]
    for path in (TCMU_RUNNER, LIBTCMU):
        if not os.path.exists(path):
            sys.exit(f"FAIL: {path} missing: install tcmu-runner "
                     "(tools/setup.sh does)")

    runner = set(dynsyms(TCMU_RUNNER, True))
    libtcmu = set(dynsyms(LIBTCMU, True))
    # The check must tell exported from merely declared functions.
    assert "tcmur_cmd_complete" in runner, "tcmu-runner exports nothing?"
    assert "tcmu_get_runner_handler" not in runner | libtcmu

    allowed = runner | libtcmu
    for lib in needed_libs(module):
        allowed |= set(dynsyms(lib, True))

    missing = sorted(name for name, kind in dynsyms(module, False).items()
                     if kind == "U" and name not in allowed)
    exported = sorted(name for name in dynsyms(module, True)
                      if name not in ("_init", "_fini"))
    ok = True
    if missing:
        ok = False
        print("FAIL: tcmu-runner would refuse to load the module; "
              "symbols nobody exports:\n  " + "\n  ".join(missing))
    if exported != ["handler_init"]:
        ok = False
        print("FAIL: the module must export only handler_init, "
              f"it exports {exported}")
    used = sorted(n for n in dynsyms(module, False) if n in runner | libtcmu)
    print(f"{module}: {len(used)} symbols from tcmu-runner/libtcmu, "
          "all exported")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
