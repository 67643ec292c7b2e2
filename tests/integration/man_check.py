#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
"""The manual pages format without a warning (man --warnings), and every
option a program's --help lists appears in its page, so the pages cannot
fall behind the programs."""
import os
import re
import subprocess
import sys

from agentlib import check, finish, nbdkit

OPTION = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")


def render(page):
    env = dict(os.environ, MANWIDTH="100", LC_ALL="C.UTF-8", MAN_KEEP_FORMATTING="")
    r = subprocess.run(["man", "--warnings", "-E", "UTF-8", "-l", page],
                       capture_output=True, text=True, env=env)
    check(r.returncode == 0 and not r.stderr.strip(),
          f"{os.path.basename(page)} formats without warnings", r.stderr)
    # Undo hyphenation at line ends, and the typographic hyphens.
    return re.sub(r"-\n\s*", "-", r.stdout.replace("\u2010", "-"))


def help_text(*cmd):
    return subprocess.run(list(cmd), capture_output=True, text=True,
                          check=True).stdout


def options_in(page_text, helps, what):
    want = set()
    for h in helps:
        want |= set(OPTION.findall(h))
    want.discard("--")
    missing = sorted(o for o in want if o not in page_text)
    check(not missing, f"{what}: every option of --help is in the page",
          f"missing: {missing}")


def main():
    mandir, source, vxhsd, vxhsadm, export = sys.argv[1:6]
    plugin = sys.argv[6] if len(sys.argv) > 6 else None
    pages = sorted(os.listdir(mandir))
    text = {p: render(os.path.join(mandir, p)) for p in pages}

    options_in(text["vxhsd.8"], [help_text(vxhsd, "--help")], "vxhsd")

    top = help_text(vxhsadm, "--help")
    commands = re.findall(r"^  ([a-z]+) ", top, re.M)
    check(len(commands) >= 9, "vxhsadm lists its commands", top)
    for c in commands:
        check(re.search(rf"^\s+{c}\b", text["vxhsadm.8"], re.M) is not None,
              f"vxhsadm.8 describes the command {c}")
    options_in(text["vxhsadm.8"],
               [help_text(vxhsadm, c, "--help") for c in commands],
               "vxhsadm")

    subs = ["add", "remove", "list"]
    options_in(text["vxhs-export.8"],
               [help_text(export, "--help")] +
               [help_text(export, s, "--help") for s in subs],
               "vxhs-export")

    # The handler's options, from its table of them.
    src = open(os.path.join(source, "handler", "cfgstring.c")).read()
    table = src[src.index("options[] = {"):]
    table = table[:table.index("};")]
    names = set(re.findall(r'STR_OPT\("(\w+)"', table))
    names |= set(re.findall(r"UINT_OPT\((\w+),", table))
    names |= set(re.findall(r'\.name = "(\w+)"', table))
    check(len(names) >= 8, "the handler's option table was read",
          sorted(names))
    missing = sorted(n for n in names
                     if not re.search(rf"\b{n}(=|\[|\b)",
                                      text["handler_vxhs.8"]))
    check(not missing, "handler_vxhs.8 has every cfgstring option",
          f"missing: {missing}")

    if not plugin:
        print("# the plugin's page is checked against the plugin in the "
              "plain build (no plugin in sanitizer builds)")
    else:
        r = nbdkit(plugin, ["--help"], None)
        check(r.returncode == 0, "nbdkit vxhs --help", r.stderr)
        out = r.stdout
        keys = set(re.findall(r"^([a-z-]+)=<", out, re.M))
        check(len(keys) >= 6, "the plugin lists its parameters", out)
        missing = sorted(k for k in keys
                         if k + "=" not in text["nbdkit-vxhs-plugin.1"])
        check(not missing, "nbdkit-vxhs-plugin.1 has every parameter",
              f"missing: {missing}")
    finish("man_check")


if __name__ == "__main__":
    main()
