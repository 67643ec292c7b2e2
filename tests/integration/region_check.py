#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
"""vxhsd's shared regions on the wire (docs/protocol.md, "Shared memory"),
against a peer that gets everything wrong, one thing at a time:

  - REGION_ADD outside a UNIX socket, without a descriptor, with an id
    outside 1-64, a length not a multiple of the page size, a payload, or
    a descriptor that cannot be mapped: each answered with its error;
  - by-reference READ and WRITE with a short or ragged segment list, more
    than 1024 segments, a count that disagrees with the list, lengths that
    do not add up to io_size, a segment past the region, an unknown
    region, or on a TCP connection: each answered with its error;
  - a region whose file was truncated under it: EFAULT, and vxhsd lives;
  - a good region: data both ways, through the region and the file;
  - descriptors sent in bulk, with a refused REGION_ADD, or with no
    REGION_ADD, are not kept: none of the peer's files is open in the
    agent once the peer leaves.

Usage: region_check.py VXHSD VXHSADM
"""
import mmap
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from agentlib import check, finish  # noqa: E402
from wire_check import READ, WRITE, answer, header  # noqa: E402

REGION_ADD = 0x3F0A
BY_REF = 0x20000
EINVAL, EBADF, ENXIO, EFAULT, EOPNOTSUPP = 22, 9, 6, 14, 95
PAGE = mmap.PAGESIZE
MiB = 1 << 20


def unix(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(path)
    return s


def memfd(size, name="region-check"):
    fd = os.memfd_create(name)
    os.ftruncate(fd, size)
    return fd


def add(sock, rid, size, fds=None, payload=b"", cookie=1):
    """REGION_ADD; the answer's err."""
    msg = header(REGION_ADD, cookie, "disk0", offset=rid, size=size,
                 payload=len(payload)) + payload
    if fds is None:
        sock.sendall(msg)
    else:
        socket.send_fds(sock, [msg], fds)
    return answer(sock)["err"]


def ref_list(rid, segs, count=None):
    body = b"".join(struct.pack("<QQ", o, n) for o, n in segs)
    return struct.pack("<II", rid, len(segs) if count is None else count) + body


def by_ref(sock, op, offset, size, lst, cookie=2):
    flags = {READ: 0x01 | 0x10, WRITE: 0x01 | 0x08}[op] | BY_REF
    sock.sendall(header(op, cookie, "disk0", offset=offset, size=size,
                        payload=len(lst), flags=flags) + lst)
    return answer(sock)


def peer_fds(pid, pipe_ino):
    """The agent's descriptors of files this peer sent it."""
    mine = []
    for f in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{f}")
        except FileNotFoundError:
            continue
        if "memfd:region-check" in link or link == f"pipe:[{pipe_ino}]":
            mine.append(link)
    return mine


def main():
    vxhsd, vxhsadm = sys.argv[1:3]
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([vxhsadm, "create", "--dir", tmp, "disk0", "16M"],
                       check=True, capture_output=True)
        sock_path = os.path.join(tmp, "s.sock")
        agent = subprocess.Popen([vxhsd, "--dir", tmp, "--unix", sock_path,
                                  "--port", "0", "--allow-plaintext",
                                  "--log-level", "warning"])
        try:
            for _ in range(200):
                if os.path.exists(sock_path):
                    break
                time.sleep(0.05)
            time.sleep(0.2)
            run(agent, sock_path, tmp)
        finally:
            agent.terminate()
            agent.wait(timeout=30)
    finish("region_check")


def tcp_port(pid):
    out = subprocess.run(["ss", "-Htlnp"], capture_output=True,
                         text=True).stdout
    for line in out.splitlines():
        if f"pid={pid}," in line and "0.0.0.0:" in line:
            return int(line.split()[3].rsplit(":", 1)[1])
    return None


def run(agent, sock_path, tmp):
    s = unix(sock_path)

    fd = memfd(MiB)
    check(add(s, 0, MiB, [fd]) == EINVAL, "REGION_ADD id 0: EINVAL")
    check(add(s, 65, MiB, [fd]) == EINVAL, "REGION_ADD id 65: EINVAL")
    check(add(s, 1, MiB + 1, [fd]) == EINVAL,
          "REGION_ADD of a length not a multiple of the page: EINVAL")
    check(add(s, 1, 0, [fd]) == EINVAL, "REGION_ADD of no bytes: EINVAL")
    check(add(s, 1, MiB) == EBADF, "REGION_ADD without a descriptor: EBADF")
    check(add(s, 1, MiB, [fd], payload=b"x") == EINVAL,
          "REGION_ADD with a payload: EINVAL")
    r, w = os.pipe()
    pipe_ino = os.fstat(r).st_ino
    check(add(s, 1, MiB, [r]) == EINVAL,
          "REGION_ADD of a pipe, which cannot be mapped: EINVAL")
    os.close(r)
    os.close(w)

    lst = ref_list(1, [(0, 4096)])
    check(by_ref(s, WRITE, 0, 4096, lst)["err"] == ENXIO,
          "by reference to a region never added: ENXIO")

    check(add(s, 1, MiB, [fd]) == 0, "REGION_ADD of a memfd: ok")
    region = mmap.mmap(fd, MiB)
    region[0:8192] = os.urandom(8192)
    a = by_ref(s, WRITE, 4096, 8192, ref_list(1, [(4096, 4096), (0, 4096)]))
    check(a["err"] == 0 and a["payload"] == 0,
          "WRITE by reference, two segments: ok, no payload")
    with open(os.path.join(tmp, "disk0"), "rb") as f:
        f.seek(4096)
        got = f.read(8192)
    check(got == region[4096:8192] + region[0:4096],
          "the file holds the segments in list order")
    a = by_ref(s, READ, 4096, 8192, ref_list(1, [(MiB - 8192, 8192)]))
    check(a["err"] == 0 and a["payload"] == 0,
          "READ by reference: ok, answered without payload")
    check(region[MiB - 8192:] == got, "the region holds what was read")

    bad = [
        ("a list of the header alone", 4096, struct.pack("<II", 1, 0),
         EINVAL),
        ("a ragged list", 4096, ref_list(1, [(0, 4096)]) + b"xyz", EINVAL),
        ("a count that disagrees with the list", 4096,
         ref_list(1, [(0, 4096)], count=2), EINVAL),
        ("lengths short of io_size", 8192, ref_list(1, [(0, 4096)]), EINVAL),
        ("lengths beyond io_size", 4096, ref_list(1, [(0, 4096)] * 2),
         EINVAL),
        ("a segment of no bytes", 4096,
         ref_list(1, [(0, 0), (0, 4096)]), EINVAL),
        ("a segment past the region", 4096, ref_list(1, [(MiB - 2048,
                                                           4096)]), EINVAL),
        ("an offset that wraps", 4096, ref_list(1, [(2**64 - 2048, 4096)]),
         EINVAL),
        ("more than 1024 segments", 1025 * 512,
         ref_list(1, [(0, 512)] * 1025), EINVAL),
        ("an unknown region", 4096, ref_list(7, [(0, 4096)]), ENXIO),
    ]
    for what, size, lst, err in bad:
        for op in (READ, WRITE):
            a = by_ref(s, op, 0, size, lst)
            check(a["err"] == err,
                  f"{'READ' if op == READ else 'WRITE'} by reference with "
                  f"{what}: err {err} (got {a['err']})")

    # The peer truncates the file under the agent's mapping.
    os.ftruncate(fd, 0)
    for op in (READ, WRITE):
        a = by_ref(s, op, 0, 4096, ref_list(1, [(0, 4096)]))
        check(a["err"] == EFAULT,
              f"{'READ' if op == READ else 'WRITE'} by reference into a "
              f"truncated region: EFAULT (got {a['err']})")
    check(agent.poll() is None, "vxhsd still runs")
    region.close()

    # Descriptors for nothing, many at once.
    extra = [memfd(PAGE) for _ in range(8)]
    socket.send_fds(s, [header(0x3FFF, 9, "disk0")], extra)
    check(answer(s)["err"] == EOPNOTSUPP,
          "an unknown opcode carrying descriptors: EOPNOTSUPP")
    for x in extra:
        os.close(x)
    s.close()
    os.close(fd)

    port = tcp_port(agent.pid)
    if check(port is not None, "vxhsd listens on TCP"):
        t = socket.create_connection(("127.0.0.1", port), timeout=10)
        check(add(t, 1, MiB) == EOPNOTSUPP,
              "REGION_ADD over TCP: EOPNOTSUPP")
        check(by_ref(t, WRITE, 0, 4096, ref_list(1, [(0, 4096)]))["err"]
              == ENXIO, "by reference over TCP: ENXIO")
        t.close()

    for _ in range(100):
        if not peer_fds(agent.pid, pipe_ino):
            break
        time.sleep(0.05)
    left = peer_fds(agent.pid, pipe_ino)
    check(not left, f"no descriptor of the peer kept once it left: {left}")


if __name__ == "__main__":
    main()
