#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
"""Speaks qemu-pr-helper's socket protocol (QEMU docs/interop/pr-helper.rst)
the way QEMU's pr-manager-helper object does, for the qemu scenario: a
nested guest issuing PERSISTENT RESERVE through virtio-scsi is too slow to
boot under TCG-in-TCG, so this program stands in for QEMU's side.

  pr_helper_client.py SOCKET DEVICE register KEY
  pr_helper_client.py SOCKET DEVICE reserve KEY TYPE
  pr_helper_client.py SOCKET DEVICE read-keys

Prints the SCSI status (and keys); exits 1 unless the status is GOOD.
"""
import array
import os
import socket
import struct
import sys

PR_IN, PR_OUT = 0x5E, 0x5F
SA_REGISTER, SA_RESERVE, SA_READ_KEYS = 0x00, 0x01, 0x00
REPLY_HEADER = 4 + 4 + 96  # status, payload size, sense


def recv_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            sys.exit("qemu-pr-helper closed the connection")
        data += chunk
    return data


def command(path, dev, cdb, params=b""):
    fd = os.open(dev, os.O_RDWR)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(path)
            struct.unpack(">I", recv_exact(s, 4))  # supported features
            s.sendall(struct.pack(">I", 0))  # requested: none defined
            fds = array.array("i", [fd])
            s.sendmsg([cdb], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)])
            if params:
                s.sendall(params)
            status, size = struct.unpack(">II", recv_exact(s, 8))
            sense = recv_exact(s, 96)
            payload = recv_exact(s, size) if size else b""
            return status, sense, payload
    finally:
        os.close(fd)


def prout(sa, prtype, params):
    cdb = struct.pack(">BBB2xI7x", PR_OUT, sa, prtype, len(params))
    return cdb, params


def main():
    path, dev, op = sys.argv[1:4]
    if op == "register":
        key = int(sys.argv[4], 0)
        cdb, params = prout(SA_REGISTER, 0, struct.pack(">QQ8x", 0, key))
    elif op == "reserve":
        key, prtype = int(sys.argv[4], 0), int(sys.argv[5], 0)
        cdb, params = prout(SA_RESERVE, prtype, struct.pack(">QQ8x", key, 0))
    elif op == "read-keys":
        cdb, params = struct.pack(">BB5xH7x", PR_IN, SA_READ_KEYS, 8192), b""
    else:
        sys.exit(f"unknown operation {op}")
    assert len(cdb) == 16
    status, sense, payload = command(path, dev, cdb, params)
    print(f"status=0x{status:02x}")
    if status == 0x02:
        print(f"sense key=0x{sense[2] & 0xf:x} asc=0x{sense[12]:02x}{sense[13]:02x}")
    if op == "read-keys" and status == 0:
        gen, length = struct.unpack(">II", payload[:8])
        keys = struct.unpack(f">{length // 8}Q", payload[8:8 + length])
        print("keys=" + " ".join(f"0x{k:x}" for k in keys))
    return 0 if status == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
