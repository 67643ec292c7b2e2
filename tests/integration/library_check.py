#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
"""libvxhs as a program outside the tree sees it.

Installs the build into a throw-away root, then checks that:
- libvxhs.so.0 exports exactly the functions include/vxhs/ declares, each
  in the version node lib/libvxhs.map gives it (VXHS_0 for 0.1, then one
  node per release that added functions), and its SONAME is libvxhs.so.0;
- examples/vdisk-info.c builds with the installed headers and vxhs.pc
  alone (-Wall -Werror) and links to the installed libvxhs.so.0;
- it runs against a real vxhsd: the size it prints is the vdisk's, and the
  CRC of sector 0 is that of the bytes written there.
"""
import os
import re
import subprocess
import sys
import tempfile
import zlib

from agentlib import check, finish, start_vxhsd, stop_vxhsd


def declared_functions(include_dir):
    names = set()
    proto = re.compile(r"^[a-z][\w \*]*?\b(vxhs_\w+)\(", re.M)
    for name in os.listdir(include_dir):
        text = open(os.path.join(include_dir, name)).read()
        for m in proto.finditer(text):
            line = text[m.start():text.index("\n", m.start())]
            if not line.startswith(("static", "typedef", "#")):
                names.add(m.group(1))
    return names


def exported(lib):
    out = subprocess.run(["nm", "-D", "--defined-only", lib], check=True,
                         capture_output=True, text=True).stdout
    syms = {}
    for line in out.splitlines():
        sym = line.split()[-1]
        name, _, version = sym.partition("@")
        syms[name] = version.lstrip("@")
    return syms


def version_nodes(map_file):
    """Function -> the version node the linker script puts it in."""
    nodes = {}
    node = None
    for line in open(map_file):
        line = line.split("/*")[0].strip()
        m = re.match(r"^(VXHS_[\w.]+)\s*\{", line)
        if m:
            node = m.group(1)
        elif node and re.match(r"^vxhs_\w+;$", line):
            nodes[line[:-1]] = node
    return nodes


def main():
    build, source, vxhsd, vxhsadm = sys.argv[1:5]
    cflags = sys.argv[5].split() if len(sys.argv) > 5 else []
    with tempfile.TemporaryDirectory() as tmp:
        root = os.path.join(tmp, "root")
        env = dict(os.environ, DESTDIR=root)
        subprocess.run(["cmake", "--install", build],
                       env=env, check=True, stdout=subprocess.DEVNULL)
        libdir = subprocess.run(
            ["find", root, "-name", "libvxhs.so.0", "-not", "-path", "*/build/*"],
            check=True, capture_output=True, text=True).stdout.split()
        if not check(len(libdir) == 1, "one libvxhs.so.0 installed",
                     libdir):
            finish("library_check")
        lib = libdir[0]
        pcdir = os.path.join(os.path.dirname(lib), "pkgconfig")

        want = declared_functions(os.path.join(source, "include", "vxhs"))
        have = exported(lib)
        nodes = version_nodes(os.path.join(source, "lib", "libvxhs.map"))
        names = {n for n in have if n not in set(nodes.values())}
        check(names == want,
              f"exports = declarations (extra {sorted(names - want)}, "
              f"missing {sorted(want - names)})")
        wrong = sorted(n for n in names if have[n] != nodes.get(n))
        check(not wrong, "every export is in its version node", wrong)
        dyn = subprocess.run(["readelf", "-d", lib], check=True,
                             capture_output=True, text=True).stdout
        check("[libvxhs.so.0]" in dyn, "SONAME libvxhs.so.0")

        penv = dict(os.environ, PKG_CONFIG_PATH=pcdir,
                    PKG_CONFIG_SYSROOT_DIR=root)
        flags = subprocess.run(["pkg-config", "--cflags", "--libs", "vxhs"],
                               env=penv, check=True, capture_output=True,
                               text=True).stdout.split()
        exe = os.path.join(tmp, "vdisk-info")
        subprocess.run(["cc", "-std=c11", "-Wall", "-Wextra", "-Werror",
                        *cflags, os.path.join(source, "examples",
                                              "vdisk-info.c"),
                        *flags, "-o", exe], check=True)
        renv = dict(os.environ, LD_LIBRARY_PATH=os.path.dirname(lib))
        ldd = subprocess.run(["ldd", exe], env=renv, check=True,
                             capture_output=True, text=True).stdout
        check(f"libvxhs.so.0 => {lib}" in ldd,
              "the example links the installed libvxhs.so.0")

        vdir = os.path.join(tmp, "vdisks")
        os.mkdir(vdir)
        sock = os.path.join(tmp, "vxhsd.sock")
        agent = start_vxhsd(vxhsd, vdir, sock)
        try:
            subprocess.run([vxhsadm, "create", "--dir", vdir, "disk1",
                            "1M"], check=True)
            data = bytes(range(256)) * 2
            with open(os.path.join(vdir, "disk1"), "r+b") as f:
                f.write(data)
            out = subprocess.run([exe, "unix:" + sock, "disk1"], env=renv,
                                 check=True, capture_output=True,
                                 text=True).stdout
            check("size 1048576\n" in out, f"size printed: {out!r}")
            crc = "%08x" % zlib.crc32(data)
            check(f"crc32 of sector 0 {crc}\n" in out,
                  f"sector 0 read through the library: {out!r}")
        finally:
            stop_vxhsd(agent)
    finish("library_check")


if __name__ == "__main__":
    main()
