#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
"""COMPARE AND WRITE operations per second on one block of a SCSI disk:
for SECONDS, read the block (a decimal counter), then COMPARE AND WRITE it
with what was read and the counter plus one, through SG_IO (no process per
command). Prints "wins=N lost=M ops_per_s=X": a win added one, a lost
round (MISCOMPARE) means another initiator added one first.

Usage: caw_ops.py DEVICE LBA SECONDS"""
import ctypes
import fcntl
import os
import sys
import time

SG_IO = 0x2285
TO_DEV, FROM_DEV = -2, -3
BLOCK = 512
MISCOMPARE = 0x0E


class SgIoHdr(ctypes.Structure):
    _fields_ = [("interface_id", ctypes.c_int),
                ("dxfer_direction", ctypes.c_int),
                ("cmd_len", ctypes.c_ubyte),
                ("mx_sb_len", ctypes.c_ubyte),
                ("iovec_count", ctypes.c_ushort),
                ("dxfer_len", ctypes.c_uint),
                ("dxferp", ctypes.c_void_p),
                ("cmdp", ctypes.c_void_p),
                ("sbp", ctypes.c_void_p),
                ("timeout", ctypes.c_uint),
                ("flags", ctypes.c_uint),
                ("pack_id", ctypes.c_int),
                ("usr_ptr", ctypes.c_void_p),
                ("status", ctypes.c_ubyte),
                ("masked_status", ctypes.c_ubyte),
                ("msg_status", ctypes.c_ubyte),
                ("sb_len_wr", ctypes.c_ubyte),
                ("host_status", ctypes.c_ushort),
                ("driver_status", ctypes.c_ushort),
                ("resid", ctypes.c_int),
                ("duration", ctypes.c_uint),
                ("info", ctypes.c_uint)]


def sg_io(fd, cdb, direction, buf):
    """Status byte and sense key of one command."""
    c = (ctypes.c_ubyte * len(cdb)).from_buffer_copy(bytes(cdb))
    sense = (ctypes.c_ubyte * 32)()
    h = SgIoHdr(interface_id=ord("S"), dxfer_direction=direction,
                cmd_len=len(cdb), mx_sb_len=32, dxfer_len=len(buf),
                dxferp=ctypes.addressof(buf), cmdp=ctypes.addressof(c),
                sbp=ctypes.addressof(sense), timeout=60000)
    fcntl.ioctl(fd, SG_IO, h)
    if h.host_status or h.driver_status & ~0x08:
        sys.exit(f"SG_IO: host status {h.host_status}, "
                 f"driver status {h.driver_status}")
    return h.status, sense[2] & 0x0F


def block_of(value):
    return f"{value:020d}".encode().ljust(BLOCK, b"\0")


def main():
    dev, lba, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    fd = os.open(dev, os.O_RDWR)
    read10 = [0x28, 0] + list(lba.to_bytes(4, "big")) + [0, 0, 1, 0]
    caw = [0x89, 0] + list(lba.to_bytes(8, "big")) + [0, 0, 0, 1, 0, 0]
    rbuf = (ctypes.c_ubyte * BLOCK)()
    wins = lost = 0
    end = time.monotonic() + seconds
    start = time.monotonic()
    while time.monotonic() < end:
        status, _ = sg_io(fd, read10, FROM_DEV, rbuf)
        if status:
            sys.exit(f"READ (10): status {status:#x}")
        now = int(bytes(rbuf)[:20] or b"0")
        wbuf = (ctypes.c_ubyte * (2 * BLOCK)).from_buffer_copy(
            block_of(now) + block_of(now + 1))
        status, key = sg_io(fd, caw, TO_DEV, wbuf)
        if status == 0:
            wins += 1
        elif status == 2 and key == MISCOMPARE:
            lost += 1
        else:
            sys.exit(f"COMPARE AND WRITE: status {status:#x}, key {key:#x}")
    took = time.monotonic() - start
    print(f"wins={wins} lost={lost} ops_per_s={(wins + lost) / took:.1f}")


if __name__ == "__main__":
    main()
