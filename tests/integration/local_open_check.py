#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
"""LOCAL_OPEN and LOCAL_OPEN_RW on the wire (docs/protocol.md, "Local
reads", "Local writes"):

  - on the UNIX socket LOCAL_OPEN's answer carries one descriptor: the
    vdisk's file, read-only (a write through it fails), with the bytes
    written before;
  - LOCAL_OPEN_RW's carries two: the vdisk's file, whose writes the agent
    then reads, and the lock record, read-only: it takes the gate shared,
    never exclusively, and cannot be written;
  - with io_offset or io_size, for a missing vdisk, or with a payload:
    each answered with its error and no descriptor;
  - over TCP, or from an agent started with --no-local-reads (or
    --no-local-writes): EOPNOTSUPP and no descriptor; a peer with
    read-only rights gets LOCAL_OPEN and EACCES for LOCAL_OPEN_RW.

Usage: local_open_check.py VXHSD VXHSADM
"""
import fcntl
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from agentlib import check, finish, start_vxhsd, stop_vxhsd  # noqa: E402
from region_check import unix  # noqa: E402
from wire_check import HDR, READ, WRITE, answer, header  # noqa: E402

LOCAL_OPEN, LOCAL_OPEN_RW = 0x3F0B, 0x3F0C
NAMES = {LOCAL_OPEN: "LOCAL_OPEN", LOCAL_OPEN_RW: "LOCAL_OPEN_RW"}
EACCES, EINVAL, ENOENT, EOPNOTSUPP = 13, 22, 2, 95
GATE_BYTE = 4097


def local_open(sock, target="disk0", offset=0, size=0, payload=b"",
               opcode=LOCAL_OPEN):
    """LOCAL_OPEN(_RW); the answer's err and the descriptors that came."""
    sock.sendall(header(opcode, 7, target, offset=offset, size=size,
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


def refused(sock, what, opcodes=(LOCAL_OPEN, LOCAL_OPEN_RW),
            want=EOPNOTSUPP):
    for op in opcodes:
        err, fds = local_open(sock, opcode=op)
        check(err == want and not fds,
              f"{NAMES[op]} {what}: err {want}, no descriptor",
              f"err {err}, {len(fds)} descriptors")
        closes(fds)
    sock.close()


def granted(sock, what, opcode):
    err, fds = local_open(sock, opcode=opcode)
    check(err == 0 and fds, f"{NAMES[opcode]} {what}: granted",
          f"err {err}, {len(fds)} descriptors")
    closes(fds)
    sock.close()


def refused_by_os(action, what):
    """Checks that action raises OSError."""
    try:
        action()
    except OSError:
        check(True, what)
        return
    check(False, what)


def gate_lock(fd, kind):
    """An OFD lock of kind on the gate byte, as a gateway takes it."""
    fcntl.fcntl(fd, fcntl.F_OFD_SETLK,
                struct.pack("hhqqi", kind, os.SEEK_SET, GATE_BYTE, 1, 0))


def check_rw(s, tmp):
    err, fds = local_open(s, opcode=LOCAL_OPEN_RW)
    if not check(err == 0 and len(fds) == 2,
                 "LOCAL_OPEN_RW on the UNIX socket: err 0, two descriptors",
                 f"err {err}, {len(fds)} descriptors"):
        closes(fds)
        return
    data, record = fds
    check(os.fstat(data).st_ino ==
          os.stat(os.path.join(tmp, "disk0")).st_ino,
          "the first descriptor is the vdisk's file")
    check(os.fstat(record).st_ino ==
          os.stat(os.path.join(tmp, ".disk0.lock")).st_ino,
          "the second is its lock record")
    os.pwrite(data, b"W" * 4096, 16384)
    s.sendall(header(READ, 3, "disk0", offset=16384, size=4096))
    a = answer(s)
    check(a["err"] == 0 and a["data"] == b"W" * 4096,
          "the agent reads what was written through the descriptor")
    refused_by_os(lambda: os.pwrite(record, b"x", 0),
                  "the lock record cannot be written")
    try:
        gate_lock(record, fcntl.F_RDLCK)
        gate_lock(record, fcntl.F_UNLCK)
        check(True, "the gate can be taken shared")
    except OSError as e:
        check(False, "the gate can be taken shared", str(e))
    refused_by_os(lambda: gate_lock(record, fcntl.F_WRLCK),
                  "the gate cannot be taken exclusively")
    closes(fds)


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
        refused_by_os(lambda: os.pwrite(fd, b"x", 0),
                      "a write through the descriptor fails")
    closes(fds)
    check_rw(s, tmp)

    for op in (LOCAL_OPEN, LOCAL_OPEN_RW):
        for what, kw, want in (
                ("with io_size", {"size": 4096}, EINVAL),
                ("with io_offset", {"offset": 4096}, EINVAL),
                ("with a payload", {"payload": b"xy"}, EINVAL),
                ("of a missing vdisk", {"target": "nope"}, ENOENT)):
            err, fds = local_open(s, opcode=op, **kw)
            check(err == want and not fds,
                  f"{NAMES[op]} {what}: err {want}, no descriptor",
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
        # One refused, the other granted: by the agent's options, and by
        # read-only rights.
        acl = os.path.join(tmp, "acl")
        with open(acl, "w") as f:
            f.write(f"uid:{os.getuid()} * ro\n")
        for what, options, no, yes, err in (
                ("to vxhsd --no-local-reads", ["--no-local-reads"],
                 LOCAL_OPEN, LOCAL_OPEN_RW, EOPNOTSUPP),
                ("to vxhsd --no-local-writes", ["--no-local-writes"],
                 LOCAL_OPEN_RW, LOCAL_OPEN, EOPNOTSUPP),
                ("with read-only rights", ["--acl", acl],
                 LOCAL_OPEN_RW, LOCAL_OPEN, EACCES)):
            agent = start_vxhsd(vxhsd, tmp, sock_path, *options)
            try:
                refused(unix(sock_path), what, (no,), err)
                granted(unix(sock_path), what, yes)
            finally:
                stop_vxhsd(agent)
    finish("local_open_check")


def wait_for_file(path):
    for _ in range(200):
        if os.path.exists(path) and os.path.getsize(path):
            return
        time.sleep(0.05)
    sys.exit(f"{path} did not appear in 10 s")


if __name__ == "__main__":
    main()
