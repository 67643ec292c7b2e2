#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
"""LOCAL_OPEN on the wire (docs/protocol.md, "Local reads"):

  - on the UNIX socket the answer carries one descriptor: the vdisk's file,
    read-only (a write through it fails), with the bytes written before;
  - with io_offset or io_size, for a missing vdisk, or with a payload:
    each answered with its error and no descriptor;
  - over TCP, or from an agent started with --no-local-reads: EOPNOTSUPP
    and no descriptor.

Usage: local_read_check.py VXHSD VXHSADM
"""
import os
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from agentlib import check, finish, start_vxhsd, stop_vxhsd  # noqa: E402
from region_check import unix  # noqa: E402
from wire_check import HDR, WRITE, answer, header  # noqa: E402

LOCAL_OPEN = 0x3F0B
EINVAL, ENOENT, EOPNOTSUPP = 22, 2, 95


def local_open(sock, target="disk0", offset=0, size=0, payload=b""):
    """LOCAL_OPEN; the answer's err and the descriptors that came."""
    sock.sendall(header(LOCAL_OPEN, 7, target, offset=offset, size=size,
                        payload=len(payload)) + payload)
    raw, fds, _, _ = socket.recv_fds(sock, 256, 4)
    while len(raw) < 256:
        more, extra, _, _ = socket.recv_fds(sock, 256 - len(raw), 4)
        if not more:
            raise EOFError("connection closed in an answer")
        raw += more
        fds += extra
    return HDR.unpack(raw)[3], fds


def closes(fds):
    for fd in fds:
        os.close(fd)


def refused(sock, what):
    err, fds = local_open(sock)
    check(err == EOPNOTSUPP and not fds,
          f"LOCAL_OPEN {what}: EOPNOTSUPP, no descriptor",
          f"err {err}, {len(fds)} descriptors")
    closes(fds)
    sock.close()


def run(sock_path, tmp):
    s = unix(sock_path)
    s.sendall(header(WRITE, 1, "disk0", offset=8192, size=4096,
                     payload=4096) + b"L" * 4096)
    check(answer(s)["err"] == 0, "a WRITE of 4 KiB: err 0")
    err, fds = local_open(s)
    if check(err == 0 and len(fds) == 1,
             "LOCAL_OPEN on the UNIX socket: err 0 and one descriptor",
             f"err {err}, {len(fds)} descriptors"):
        fd = fds[0]
        check(os.pread(fd, 4096, 8192) == b"L" * 4096,
              "the descriptor reads what the WRITE put there")
        check(os.fstat(fd).st_ino == os.stat(os.path.join(tmp, "disk0")).st_ino,
              "the descriptor is the vdisk's file")
        try:
            os.pwrite(fd, b"x", 0)
            check(False, "a write through the descriptor fails")
        except OSError:
            check(True, "a write through the descriptor fails")
    closes(fds)

    for what, kw, want in (
            ("with io_size", {"size": 4096}, EINVAL),
            ("with io_offset", {"offset": 4096}, EINVAL),
            ("with a payload", {"payload": b"xy"}, EINVAL),
            ("of a missing vdisk", {"target": "nope"}, ENOENT)):
        err, fds = local_open(s, **kw)
        check(err == want and not fds,
              f"LOCAL_OPEN {what}: err {want}, no descriptor",
              f"err {err}, {len(fds)} descriptors")
        closes(fds)
    s.sendall(header(WRITE, 2, "disk0", offset=0, size=512, payload=512)
              + b"k" * 512)
    check(answer(s)["err"] == 0, "the connection works after the errors")
    s.close()


def main():
    vxhsd, vxhsadm = sys.argv[1:3]
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([vxhsadm, "create", "--dir", tmp, "disk0", "1M"],
                       check=True, capture_output=True)
        sock_path = os.path.join(tmp, "s.sock")
        agent = start_vxhsd(vxhsd, tmp, sock_path)
        try:
            run(sock_path, tmp)
        finally:
            stop_vxhsd(agent)

        # Refused over TCP, and by an agent started with --no-local-reads.
        agent = subprocess.Popen([vxhsd, "--dir", tmp, "--unix", sock_path,
                                  "--listen", "127.0.0.1", "--port", "0",
                                  "--port-file", f"{tmp}/port",
                                  "--allow-plaintext", "--log-level",
                                  "warning"])
        try:
            wait_for_file(f"{tmp}/port")
            port = int(open(f"{tmp}/port").read())
            refused(socket.create_connection(("127.0.0.1", port),
                                             timeout=10), "over TCP")
        finally:
            stop_vxhsd(agent)
        agent = start_vxhsd(vxhsd, tmp, sock_path, "--no-local-reads")
        try:
            refused(unix(sock_path), "to vxhsd --no-local-reads")
        finally:
            stop_vxhsd(agent)
    finish("local_read_check")


def wait_for_file(path):
    for _ in range(200):
        if os.path.exists(path) and os.path.getsize(path):
            return
        time.sleep(0.05)
    sys.exit(f"{path} did not appear in 10 s")


if __name__ == "__main__":
    main()
