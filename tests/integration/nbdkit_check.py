#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
"""nbdkit-vxhs-plugin: a qcow2 image goes into a vdisk with qemu-img
convert and comes back; the bytes match, and zeroes stay holes both ways.
Bad parameters are refused with a message naming them."""
import json
import os
import subprocess
import sys
import tempfile

from agentlib import check, finish, nbdkit, start_vxhsd, stop_vxhsd

MiB = 1 << 20


def allocated_in_qcow2(path):
    out = subprocess.run(["qemu-img", "map", "--output=json", path],
                         check=True, capture_output=True, text=True).stdout
    return sum(e["length"] for e in json.loads(out) if e["data"])


def refusals(plugin, sock):
    for args, text, what in [
            ([], "vdisk=ID is required", "no vdisk"),
            (["vdisk=../x"], "not a vdisk id", "a bad vdisk id"),
            (["vdisk=d", "agent=host:99999"], "agent=host:99999",
             "an agent with a bad port"),
            (["vdisk=d", "conns=0"], "conns=0: must be 1 to 64",
             "zero connections"),
            (["vdisk=d", "colour=blue"], "unknown parameter 'colour'",
             "an unknown parameter"),
            (["vdisk=d", "agent=192.0.2.1"], "no TLS credentials",
             "a TCP agent without TLS or plaintext=true"),
            (["vdisk=d", "agent=192.0.2.1", "plaintext=true",
              "tls=/nonexistent"], "choose one", "TLS and plaintext"),
            (["vdisk=missing", "agent=unix:" + sock],
             "vdisk missing", "a vdisk the agent does not have")]:
        r = nbdkit(plugin, args, "qemu-img info \"$uri\"", timeout=60)
        check(r.returncode != 0 and text in r.stderr,
              f"refused: {what}", r.stderr)


def main():
    plugin, vxhsd, vxhsadm = sys.argv[1:4]
    os.environ["VXHS_TLS_DIR"] = "/nonexistent/vxhs-tls"
    with tempfile.TemporaryDirectory() as tmp:
        vdir = os.path.join(tmp, "vdisks")
        os.mkdir(vdir)
        sock = os.path.join(tmp, "vxhsd.sock")
        img = os.path.join(tmp, "img.qcow2")
        back = os.path.join(tmp, "back.qcow2")
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", img,
                        "64M"], check=True)
        subprocess.run(["qemu-io", "-f", "qcow2",
                        "-c", "write -P 0xa5 8M 1M",
                        "-c", "write -P 0x5a 40M 64k",
                        "-c", "write -z 48M 1M", img], check=True,
                       stdout=subprocess.DEVNULL)
        agent = start_vxhsd(vxhsd, vdir, sock)
        try:
            subprocess.run([vxhsadm, "create", "--dir", vdir, "d", "64M"],
                           check=True, capture_output=True)
            refusals(plugin, sock)
            args = ["vdisk=d", "agent=unix:" + sock]
            r = nbdkit(plugin, args, "qemu-img convert -n -f qcow2 "
                       f"-O raw {img} \"$uri\"")
            check(r.returncode == 0, "qemu-img convert into the vdisk",
                  r.stderr)
            vdisk = os.path.join(vdir, "d")
            kib = os.stat(vdisk).st_blocks // 2
            check(kib <= 4096, "the vdisk holds the data, not the zeroes",
                  f"{kib} KiB allocated for 1 MiB + 64 KiB")
            raw = os.path.join(tmp, "raw")
            subprocess.run(["qemu-img", "convert", "-f", "qcow2", "-O",
                            "raw", img, raw], check=True)
            check(open(raw, "rb").read() == open(vdisk, "rb").read(),
                  "the vdisk's bytes are the image's")
            r = nbdkit(plugin, args, "qemu-img convert -f raw -O qcow2 "
                       f"\"$uri\" {back}")
            check(r.returncode == 0, "qemu-img convert out of the vdisk",
                  r.stderr)
            r = subprocess.run(["qemu-img", "compare", img, back],
                               capture_output=True, text=True)
            check(r.returncode == 0, "qemu-img compare: identical",
                  r.stdout + r.stderr)
            alloc = allocated_in_qcow2(back)
            check(alloc <= 2 * MiB, "the copy back is sparse",
                  f"{alloc} bytes allocated")
            r = nbdkit(plugin, args, "qemu-io -f raw -c 'discard 8M 1M' "
                       "-c 'read -P 0 8M 1M' \"$uri\"")
            check(r.returncode == 0 and "read 1048576" in r.stdout,
                  "discard through NBD leaves zeroes", r.stdout + r.stderr)
        finally:
            stop_vxhsd(agent)
    finish("nbdkit_check")


if __name__ == "__main__":
    main()
