#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
"""vxhsd's status socket and the in-use lock, with a real client writing:
vxhsadm status lists the connection, its identity and what it did with
the vdisk; vxhsadm delete and shrinking resize refuse the vdisk while it is
in use (growing is allowed) and work once the client is gone."""
import json
import os
import socket
import stat
import subprocess
import sys
import tempfile
import time

from agentlib import check, finish, start_vxhsd, stop_vxhsd


def run(*cmd):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


def main():
    vxhsd, adm = sys.argv[1:3]
    with tempfile.TemporaryDirectory() as tmp:
        vdir = os.path.join(tmp, "vdisks")
        os.mkdir(vdir)
        sock = os.path.join(tmp, "vxhsd.sock")
        status = os.path.join(tmp, "status.sock")
        r = run(adm, "status", "--socket", status)
        check(r.returncode == 1 and "vxhsd-status.socket" in r.stderr,
              "no status socket: exit 1 with what to check", r.stderr)
        precious = os.path.join(tmp, "precious")
        with open(precious, "w") as f:
            f.write("not a socket")
        r = run(vxhsd, "--dir", vdir, "--no-tcp", "--unix", sock,
                "--status", precious)
        check(r.returncode == 1 and "exists and is not a socket" in r.stderr
              and open(precious).read() == "not a socket",
              "--status naming a regular file: refused, the file kept",
              r.stderr)
        ctl = os.path.join(tmp, "control.sock")
        # A socket left by a run that crashed: replaced, not refused.
        with socket.socket(socket.AF_UNIX) as s:
            s.bind(sock)
        agent = start_vxhsd(vxhsd, vdir, sock, "--status", status,
                            "--control", ctl)
        try:
            # Each socket is bound under a name of its own, then renamed
            # into place once it listens: none of those names is left.
            left = sorted(n for n in os.listdir(tmp)
                          if n.endswith(".%d" % agent.pid))
            check(not left, "no socket left under a temporary name", left)
            mode = stat.S_IMODE(os.stat(status).st_mode)
            check(mode == 0o600, "the status socket is the owner's only",
                  oct(mode))
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(status)
                s.sendall(b"gimme\n")
                answer = s.recv(4096).decode()
            check(answer.startswith("error: send 'text' or 'json'"),
                  "a bad request gets an error line", answer)
            r = run(adm, "status", "--socket", status)
            check(r.returncode == 0 and "0 connections" in r.stdout,
                  "an idle agent: no connections", r.stdout + r.stderr)

            run(adm, "create", "--dir", vdir, "d", "64M")
            # What VDISK_STAT offers, and the test agent's "hide".
            r = run(adm, "stat", "--agent", "unix:" + sock, "d")
            check("compare-and-write" in r.stdout,
                  "vxhsadm stat names COMPARE_AND_WRITE", r.stdout)
            r = run(adm, "fault", "--control", ctl, "hide", "bogus")
            check(r.returncode == 1 and "no extension 'bogus'" in r.stdout,
                  "hide of an unknown extension: refused by name",
                  r.stdout + r.stderr)
            run(adm, "fault", "--control", ctl, "hide", "compare-and-write")
            r = run(adm, "stat", "--agent", "unix:" + sock, "d")
            check("compare-and-write" not in r.stdout and
                  "discard" in r.stdout,
                  "hide takes one extension out of VDISK_STAT", r.stdout)
            run(adm, "fault", "--control", ctl, "show", "all")
            bench = subprocess.Popen(
                [adm, "bench", "--agent", "unix:" + sock, "--conns", "1",
                 "--io-threads", "1", "--rw", "write", "--qd", "4",
                 "--time", "4", "d"], stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, text=True)
            doc = None
            for _ in range(40):
                time.sleep(0.1)
                r = run(adm, "status", "--socket", status, "--json")
                doc = json.loads(r.stdout)
                if doc["vdisks"] and doc["vdisks"][0]["writes"]:
                    break
            conns = doc["connections"]
            check(len(conns) == 1 and conns[0]["transport"] == "unix" and
                  conns[0]["identity"] == f"uid:{os.getuid()}" and
                  conns[0]["authenticated"],
                  "status --json: the connection and who it is", doc)
            v = doc["vdisks"][0] if doc["vdisks"] else {}
            check(v.get("id") == "d" and v.get("connections") == 1 and
                  v.get("writes", 0) > 0 and
                  v.get("bytes_written") == 4096 * v.get("writes", 0),
                  "status --json: the vdisk, its writes and bytes", doc)
            r = run(adm, "status", "--socket", status)
            check(r.returncode == 0 and "1 connection\n" in r.stdout and
                  f"uid:{os.getuid()}" in r.stdout and
                  "\nd " in r.stdout, "status as tables", r.stdout)

            r = run(adm, "delete", "--dir", vdir, "d")
            check(r.returncode == 1 and "in use" in r.stderr and
                  os.path.exists(os.path.join(vdir, "d")),
                  "delete refuses a vdisk in use", r.stderr)
            r = run(adm, "resize", "--dir", vdir, "--shrink", "d", "32M")
            check(r.returncode == 1 and "in use" in r.stderr,
                  "resize refuses to shrink a vdisk in use", r.stderr)
            r = run(adm, "resize", "--dir", vdir, "d", "128M")
            check(r.returncode == 0, "a vdisk in use grows", r.stderr)
            out, _ = bench.communicate(timeout=60)
            check(bench.returncode == 0, "the writer was not disturbed",
                  out)
            # The connection's end releases the lock.
            for _ in range(50):
                r = run(adm, "status", "--socket", status, "--json")
                if not json.loads(r.stdout)["connections"]:
                    break
                time.sleep(0.1)
            r = run(adm, "delete", "--dir", vdir, "d")
            check(r.returncode == 0, "delete once nobody uses it",
                  r.stderr)

            run(adm, "create", "--dir", vdir, "e", "1M")
            holder = subprocess.Popen(
                [adm, "bench", "--agent", "unix:" + sock, "--conns", "1",
                 "--time", "3", "e"], stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL)
            for _ in range(40):
                time.sleep(0.1)
                r = run(adm, "status", "--socket", status, "--json")
                if json.loads(r.stdout)["vdisks"]:
                    break
            r = run(adm, "delete", "--dir", vdir, "--force", "e")
            check(r.returncode == 0 and "in use" in r.stderr and
                  not os.path.exists(os.path.join(vdir, "e")),
                  "delete --force deletes a vdisk in use, saying so",
                  r.stderr)
            holder.wait(timeout=60)
        finally:
            stop_vxhsd(agent)
        check(not os.path.exists(status), "vxhsd removes its status socket")
    finish("status_check")


if __name__ == "__main__":
    main()
