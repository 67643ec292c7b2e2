#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
"""Under systemd, vxhsd's lines about a connection reach the journal with
PEER, IDENTITY, VDISK and OP fields.

No journald runs here, so the test is the journal: vxhsd runs in a mount
namespace where /run is a scratch directory holding our datagram socket at
systemd/journal/socket, with stderr a pipe named by JOURNAL_STREAM (what
systemd gives a service). Needs root (unshare, mount)."""
import os
import socket
import subprocess
import sys
import tempfile
import time

from agentlib import check, finish


def parse(datagram):
    """The journal's native protocol: KEY=value lines (no binary values
    are expected from vxhsd)."""
    fields = {}
    for line in datagram.decode(errors="replace").split("\n"):
        key, sep, value = line.partition("=")
        if sep:
            fields[key] = value
    return fields


def main():
    vxhsd, adm = sys.argv[1:3]
    if os.geteuid() != 0:
        sys.exit("journal_check needs root (unshare --mount)")
    with tempfile.TemporaryDirectory() as tmp:
        run = os.path.join(tmp, "run")
        os.makedirs(os.path.join(run, "systemd", "journal"))
        journal = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        journal.bind(os.path.join(run, "systemd", "journal", "socket"))
        journal.settimeout(0.2)
        vdir = os.path.join(tmp, "vdisks")
        os.mkdir(vdir)
        sock = os.path.join(tmp, "vxhsd.sock")
        subprocess.run([adm, "create", "--dir", vdir, "d", "1M"],
                       check=True, capture_output=True)
        acl = os.path.join(tmp, "acl")
        with open(acl, "w") as f:
            f.write("user:root d ro\n")
        rfd, wfd = os.pipe()
        st = os.fstat(wfd)
        env = dict(os.environ, JOURNAL_STREAM=f"{st.st_dev}:{st.st_ino}")
        agent = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c",
             f"mount --bind {run} /run && exec \"$0\" \"$@\"", vxhsd,
             "--dir", vdir, "--no-tcp", "--unix", sock, "--acl", acl,
             "--log-level", "info"], stderr=wfd, env=env)
        os.close(wfd)
        try:
            for _ in range(100):
                if os.path.exists(sock):
                    break
                time.sleep(0.05)
            # A write the access list denies: an audit line naming the
            # vdisk and the operation.
            subprocess.run([adm, "write", "--agent", "unix:" + sock, "d",
                            "/etc/hostname"],
                           capture_output=True, timeout=60)
            got = []
            deadline = time.time() + 10
            while time.time() < deadline:
                try:
                    got.append(parse(journal.recv(65536)))
                except socket.timeout:
                    if any("VDISK" in f for f in got) and any(
                            "connection closed" in f.get("MESSAGE", "")
                            for f in got):
                        break
        finally:
            agent.terminate()
            agent.wait(timeout=30)
            stderr = os.read(rfd, 65536).decode(errors="replace")
            os.close(rfd)
        closed = [f for f in got
                  if "connection closed" in f.get("MESSAGE", "")]
        check(closed and closed[0].get("PEER", "").startswith("unix") and
              closed[0].get("IDENTITY") == f"uid:{os.getuid()}" and
              closed[0].get("SYSLOG_IDENTIFIER") == "vxhsd" and
              closed[0].get("PRIORITY") == "6",
              "a connection's close carries PEER, IDENTITY, a priority",
              got)
        denied = [f for f in got if "denied" in f.get("MESSAGE", "")]
        check(denied and denied[0].get("VDISK") == "d" and
              denied[0].get("OP") == "WRITE" and
              denied[0].get("IDENTITY") == "uid:0" and
              denied[0].get("PRIORITY") == "4",
              "a denied request carries VDISK, OP and IDENTITY", got)
        check("<5>vxhsd " in stderr,
              "lines about no connection still go to stderr with a "
              "priority prefix", stderr)
    finish("journal_check")


if __name__ == "__main__":
    main()
