#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
"""Wire-level checks of vxhsd, written independently of the C codec.

Starts vxhsd on a scratch directory, speaks QNIO v34 to it with struct, and
checks the header bytes it sends back: marker, echoed cookie and opcode, the
SYNC_RESP rule, exact payload sizes, the STAT kvset layout and order, and
that bad requests get an error answer (or a closed connection) while the
agent keeps serving other clients.
"""
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time

MARKER = 0x5CA1AB1E
READ, WRITE, STAT, FAILOVER = 0x1FFF, 0x2FFF, 1005, 2020
CAW = 0x3F04  # our COMPARE_AND_WRITE extension (docs/protocol.md)
ACQUIRE, RELEASE, QUERY = 0x3F05, 0x3F06, 0x3F07  # the exclusive lock
SAME = 0x3F08  # WRITE_SAME: the payload's pattern over io_size bytes
COPY = 0x3F09  # COPY: payload the source offset (le64) and vdisk id
ESTALE = 116  # fenced
REQ, RESP, NEED_ACK, NEED_RESP, SYNC_REQ, SYNC_RESP = 1, 2, 8, 0x10, 0x20, 0x40
# marker payload data_type err cookie crc pad opcode pad io_offset io_size
# io_nbytes io_seqno io_flags flags remote_hdl remote_flags target unused
HDR = struct.Struct("<IQIiQBBH4xQQQQQQQI64s96x")
assert HDR.size == 256

passed = failures = 0


def check(cond, what):
    global passed, failures
    if cond:
        passed += 1
        print(f"ok - {what}")
    else:
        failures += 1
        print(f"not ok - {what}")


def header(opcode, cookie, target, offset=0, size=0, payload=0, flags=None,
           data_type=1, marker=MARKER, epoch=0):
    if flags is None:
        flags = {READ: REQ | NEED_RESP, WRITE: REQ | NEED_ACK}.get(
            opcode, SYNC_REQ | NEED_RESP)
    io_flags = 0x100 if opcode in (READ, WRITE) else 0
    return HDR.pack(marker, payload, data_type, 0, cookie, cookie & 0xFF, 0,
                    opcode, offset, size, 0, 0, io_flags, flags, epoch, 0,
                    target.encode() if isinstance(target, str) else target)


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError(f"connection closed after {len(buf)} of {n} bytes")
        buf += chunk
    return buf


def answer(sock):
    raw = recv_exact(sock, 256)
    f = HDR.unpack(raw)
    keys = ("marker payload data_type err cookie crc pad opcode io_offset "
            "io_size io_nbytes io_seqno io_flags flags remote_hdl "
            "remote_flags target").split()
    a = dict(zip(keys, f))
    a["raw"] = raw
    a["data"] = recv_exact(sock, a["payload"]) if a["payload"] else b""
    return a


def parse_kvset(buf):
    magic, length, count = struct.unpack_from(">III", buf, 0)
    off, keys = 12, []
    for _ in range(count):
        typ, klen = struct.unpack_from(">II", buf, off)
        off += 8
        key = buf[off:off + klen].decode()
        off += klen + 4  # flags
        if typ == 5:
            val = struct.unpack_from(">Q", buf, off)[0]
            off += 8
        elif typ == 3:
            val = struct.unpack_from(">I", buf, off)[0]
            off += 4
        elif typ == 1:
            val = bool(buf[off])
            off += 1
        elif typ == 6:
            n = struct.unpack_from(">I", buf, off)[0]
            val = buf[off + 4:off + 4 + n].decode()
            off += 4 + n
        else:
            raise ValueError(f"unexpected type {typ}")
        keys.append((key, typ, val))
    return magic, length, keys, off


def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    return s


def main():
    vxhsd = sys.argv[1]
    with tempfile.TemporaryDirectory() as tmp:
        vdir = os.path.join(tmp, "vdisks")
        os.mkdir(vdir)
        with open(os.path.join(vdir, "disk0"), "wb") as f:
            f.truncate(1 << 20)
        with open(os.path.join(tmp, "outside"), "wb") as f:
            f.write(b"secret" * 100)
        os.symlink(os.path.join(tmp, "outside"), os.path.join(vdir, "link"))
        portfile = os.path.join(tmp, "port")
        logfile = os.path.join(tmp, "vxhsd.log")
        with open(logfile, "w") as log:
            proc = subprocess.Popen([vxhsd, "--dir", vdir, "--port", "0",
                                     "--listen", "127.0.0.1", "--max-io",
                                     "1M", "--allow-plaintext",
                                     "--port-file", portfile,
                                     "--header-timeout", "2",
                                     "--log-level", "info"], stderr=log)
        try:
            for _ in range(500):
                if os.path.exists(portfile):
                    break
                time.sleep(0.01)
            port = int(open(portfile).read())
            run_checks(port)
            large_writes(port, logfile)
            answers_in_step(port, proc.pid)
            peer = flood_of_refusals(port)
            log = open(logfile).read()
            check(log.count(peer + ": rejecting UNKNOWN") == 16 and
                  "further refused requests on this connection" in log,
                  "a flood of refused requests logs 16 lines, then one")
            check("x\\x0a2026-01-01" in log and
                  "\n2026-01-01 vxhsd warning: audit: forged" not in log and
                  "\x1b" not in log,
                  "a peer's vdisk id reaches the log escaped, not as a line")
        finally:
            proc.terminate()
            rc = proc.wait(timeout=20)
            check(rc == 0, f"vxhsd exits 0 on SIGTERM (got {rc})")
            if failures:
                with open(logfile) as log:
                    sys.stdout.write("vxhsd's log:\n" + log.read())
    print(f"{passed} passed, {failures} failed")
    return 1 if failures else 0


def run_checks(port):
    s = connect(port)

    # VDISK_STAT, sync request: SYNC_RESP, kvset with the size first.
    s.sendall(header(STAT, 0x1122334455667788, "disk0", data_type=2))
    a = answer(s)
    check(a["raw"][:4] == bytes([0x1E, 0xAB, 0xA1, 0x5C]),
          "answer starts with the marker bytes 1E AB A1 5C")
    check(a["cookie"] == 0x1122334455667788, "STAT answer echoes the cookie")
    check(a["opcode"] == STAT, "STAT answer carries opcode 1005")
    check(a["flags"] & SYNC_RESP and not a["flags"] & RESP,
          f"sync request gets SYNC_RESP, not RESP (flags {a['flags']:#x})")
    check(a["err"] == 0 and a["data_type"] == 2, "STAT succeeds as a kvset")
    magic, length, keys, used = parse_kvset(a["data"])
    check(magic == 0x50533130 and length == len(a["data"]) == used,
          "kvset magic and total length are exact")
    names = [k for k, _, _ in keys]
    check(names == sorted(names) and names[0] == "vdisk_size_bytes",
          f"keys in strcmp order with vdisk_size_bytes first: {names}")
    check(keys[0][1] == 5 and keys[0][2] == 1 << 20,
          "vdisk_size_bytes is uint64 1048576")
    check(a["raw"][96:101] == b"disk0" and a["raw"][101] == 0,
          "target echoed NUL-terminated at offset 96")

    # Async write then async read: RESP, exact payload lengths.
    data = bytes(range(256)) * 16
    s.sendall(header(WRITE, 7, "disk0", offset=8192, size=4096,
                     payload=4096) + data)
    a = answer(s)
    check(a["err"] == 0 and a["payload"] == 0 and a["cookie"] == 7,
          "write answered with err 0 and no payload")
    check(a["flags"] & RESP and not a["flags"] & SYNC_RESP,
          f"async write gets RESP (flags {a['flags']:#x})")
    s.sendall(header(READ, 8, "disk0", offset=8192, size=4096))
    a = answer(s)
    check(a["payload"] == 4096 and a["data"] == data,
          "read returns exactly io_size bytes, the ones written")
    # Sync write (flags 0x28): the original sample server got this wrong.
    s.sendall(header(WRITE, 9, "disk0", offset=0, size=512, payload=512,
                     flags=SYNC_REQ | NEED_ACK) + b"x" * 512)
    a = answer(s)
    check(a["flags"] & SYNC_RESP, "sync write gets SYNC_RESP")
    s.sendall(header(FAILOVER, 10, "disk0"))
    a = answer(s)
    check(a["err"] == 0 and a["opcode"] == FAILOVER,
          "CHECK_IO_FAILOVER_READY answers 0 for a served vdisk")

    # COMPARE_AND_WRITE: the range holds data[:512] at 8192.
    s.sendall(header(CAW, 11, "disk0", offset=8192, size=512, payload=1024)
              + data[:512] + b"z" * 512)
    a = answer(s)
    check(a["err"] == 0 and a["payload"] == 0 and a["io_nbytes"] == 512,
          "COMPARE_AND_WRITE of equal data: written, err 0")
    cmp = bytearray(b"z" * 512)
    cmp[77] = 0
    s.sendall(header(CAW, 12, "disk0", offset=8192, size=512, payload=1024)
              + bytes(cmp) + b"w" * 512)
    a = answer(s)
    check(a["err"] == 84 and a["io_nbytes"] == 77 and a["payload"] == 0,
          f"COMPARE_AND_WRITE of other data: EILSEQ at byte 77 "
          f"(err {a['err']}, io_nbytes {a['io_nbytes']})")
    s.sendall(header(READ, 13, "disk0", offset=8192, size=512))
    check(answer(s)["data"] == b"z" * 512,
          "a COMPARE_AND_WRITE that differed wrote nothing")
    s.sendall(header(SAME, 15, "disk0", offset=8192, size=300, payload=3)
              + b"abc")
    a = answer(s)
    check(a["err"] == 0 and a["payload"] == 0 and a["io_nbytes"] == 300,
          "WRITE_SAME of a 3-byte pattern over 300 bytes: err 0")
    s.sendall(header(READ, 16, "disk0", offset=8192, size=304))
    check(answer(s)["data"] == b"abc" * 100 + b"z" * 4,
          "WRITE_SAME wrote the pattern over its range and no further")
    s.sendall(header(COPY, 17, "disk0", offset=8192 + 512, size=300,
                     payload=13) + struct.pack("<Q", 8192) + b"disk0")
    a = answer(s)
    check(a["err"] == 0 and a["payload"] == 0 and a["io_nbytes"] == 300,
          "COPY of 300 bytes within disk0: err 0")
    s.sendall(header(READ, 18, "disk0", offset=8192 + 512, size=300))
    check(answer(s)["data"] == b"abc" * 100,
          "COPY wrote the source's bytes over its range")
    s.sendall(header(WRITE, 14, "disk0", offset=8192, size=4096,
                     payload=4096) + data)
    answer(s)

    lock_checks(s, data)

    # Bad requests: each gets an error answer, connection keeps working.
    cases = [
        ("read past the end", header(READ, 20, "disk0", offset=1 << 20,
                                     size=512), 34),
        ("missing vdisk", header(READ, 21, "nope", size=512), 2),
        ("path traversal in the id", header(READ, 22, "../outside",
                                            size=512), 22),
        ("symlink out of the directory", header(READ, 23, "link",
                                                size=512), 13),
        ("unknown opcode", header(0x4242, 24, "disk0"), 95),
        ("read larger than --max-io", header(READ, 25, "disk0",
                                             size=2 << 20), 90),
        ("write with payload != io_size",
         header(WRITE, 26, "disk0", size=512, payload=256) + b"y" * 256, 22),
        ("64-character vdisk id", header(READ, 27, b"a" * 64, size=512), 36),
        ("COMPARE_AND_WRITE with payload != 2 * io_size",
         header(CAW, 29, "disk0", size=512, payload=512) + b"c" * 512, 22),
        ("COMPARE_AND_WRITE of no bytes", header(CAW, 31, "disk0"), 22),
        ("COMPARE_AND_WRITE over 64 KiB",
         header(CAW, 32, "disk0", size=128 << 10, payload=256 << 10)
         + b"c" * (256 << 10), 22),
        ("COMPARE_AND_WRITE past the end",
         header(CAW, 33, "disk0", offset=(1 << 20) - 256, size=512,
                payload=1024) + b"c" * 1024, 34),
        ("LOCK_ACQUIRE without an owner", header(ACQUIRE, 34, "disk0"), 22),
        ("LOCK_ACQUIRE with a 65-byte owner",
         header(ACQUIRE, 35, "disk0", payload=65) + b"o" * 65, 22),
        ("LOCK_ACQUIRE with a space in the owner",
         header(ACQUIRE, 36, "disk0", payload=5) + b"gw 1\n", 22),
        ("LOCK_ACQUIRE with a tag above 65535",
         header(ACQUIRE, 37, "disk0", offset=70000, payload=3) + b"gw1", 22),
        ("LOCK_ACQUIRE with io_size",
         header(ACQUIRE, 38, "disk0", size=3, payload=3) + b"gw1", 22),
        ("LOCK_RELEASE with a payload",
         header(RELEASE, 39, "disk0", payload=3) + b"gw1", 22),
        ("a vdisk id that would forge a log line",
         header(READ, 28, b"x\n2026-01-01 vxhsd warning: audit: forged\x1b[2J",
                size=512), 22),
        ("COPY with a payload too short for a source",
         header(COPY, 80, "disk0", size=512, payload=8) + b"\0" * 8, 22),
        ("COPY with a payload too long for a source",
         header(COPY, 81, "disk0", size=512, payload=72) + b"\0" * 8
         + b"a" * 64, 22),
        ("COPY of no bytes",
         header(COPY, 82, "disk0", payload=13) + b"\0" * 8 + b"disk0", 22),
        ("COPY of more than 256 MiB",
         header(COPY, 83, "disk0", size=(256 << 20) + 1, payload=13)
         + b"\0" * 8 + b"disk0", 22),
        ("COPY from an invalid vdisk id",
         header(COPY, 84, "disk0", size=512, payload=14) + b"\0" * 8
         + b"../etc", 22),
        ("COPY from a vdisk id with a NUL",
         header(COPY, 85, "disk0", size=512, payload=14) + b"\0" * 8
         + b"disk0\0", 22),
        ("COPY from a missing vdisk",
         header(COPY, 86, "disk0", size=512, payload=12) + b"\0" * 8
         + b"nope", 2),
        ("COPY from past the source's end",
         header(COPY, 87, "disk0", size=512, payload=13)
         + struct.pack("<Q", (1 << 20) - 256) + b"disk0", 34),
        ("COPY from an offset that wraps",
         header(COPY, 88, "disk0", size=512, payload=13)
         + struct.pack("<Q", (1 << 64) - 256) + b"disk0", 22),
        ("WRITE_SAME without a pattern",
         header(SAME, 70, "disk0", size=512), 22),
        ("WRITE_SAME of a pattern over 64 KiB",
         header(SAME, 71, "disk0", size=(64 << 10) + 1,
                payload=(64 << 10) + 1) + b"p" * ((64 << 10) + 1), 22),
        ("WRITE_SAME of no bytes",
         header(SAME, 72, "disk0", payload=4) + b"pppp", 22),
        ("WRITE_SAME over a length the pattern does not divide",
         header(SAME, 73, "disk0", size=10, payload=4) + b"pppp", 22),
        ("WRITE_SAME past the end",
         header(SAME, 74, "disk0", offset=(1 << 20) - 256, size=512,
                payload=512) + b"p" * 512, 34),
    ]
    for what, msg, err in cases:
        s.sendall(msg)
        a = answer(s)
        check(a["err"] == err and a["payload"] == 0,
              f"{what}: err {a['err']} (want {err}), no payload")
    s.sendall(header(READ, 30, "disk0", offset=8192, size=16))
    check(answer(s)["data"] == data[:16], "connection still serves after errors")

    # Protocol violations that close the connection, not the agent.
    for what, msg in [
        ("bad marker", header(READ, 40, "disk0", size=16, marker=0xDEADBEEF)),
        ("huge payload_size", header(WRITE, 41, "disk0", size=1 << 40,
                                     payload=1 << 40)),
    ]:
        c = connect(port)
        c.sendall(msg)
        closed = False
        try:
            while True:
                if not c.recv(4096):
                    closed = True
                    break
        except (ConnectionResetError, socket.timeout):
            closed = True
        check(closed, f"{what}: connection closed")
        c.close()
    # Half a header and a clean hang-up.
    c = connect(port)
    c.sendall(header(READ, 50, "disk0", size=16)[:100])
    c.close()

    s.sendall(header(READ, 60, "disk0", offset=8192, size=16))
    check(answer(s)["data"] == data[:16],
          "other clients still served after protocol violations")
    s.close()


def lock_state(s, cookie):
    s.sendall(header(QUERY, cookie, "disk0", data_type=2))
    a = answer(s)
    if a["err"] or a["data_type"] != 2:
        return a["err"], {}
    return 0, {k: v for k, _, v in parse_kvset(a["data"])[2]}


def lock_checks(s, data):
    """The exclusive lock on the wire: its kvset answers, and a WRITE
    fenced unless it carries the epoch in io_remote_hdl."""
    err, kv = lock_state(s, 100)
    check(err == 0 and kv == {"epoch": 0, "held": False, "owner": "",
                              "since": 0, "tag": 0},
          f"LOCK_QUERY of a vdisk never locked: {kv}")
    s.sendall(header(ACQUIRE, 101, "disk0", offset=5, payload=4) + b"gw-a")
    a = answer(s)
    kv = dict((k, v) for k, _, v in parse_kvset(a["data"])[2]) \
        if a["payload"] else {}
    check(a["err"] == 0 and a["data_type"] == 2 and kv.get("epoch") == 1
          and kv.get("held") is True and kv.get("owner") == "gw-a"
          and kv.get("previous_owner") == "" and kv.get("tag") == 5,
          f"LOCK_ACQUIRE: epoch 1, held by gw-a, tag 5: {kv}")
    names = [k for k, _, _ in parse_kvset(a["data"])[2]] if kv else []
    check(names == sorted(names), f"lock kvset keys in strcmp order: {names}")
    block = data[:512]
    for what, epoch, want in [("without an epoch", 0, ESTALE),
                              ("under another epoch", 7, ESTALE),
                              ("under the lock's epoch", 1, 0)]:
        s.sendall(header(WRITE, 102, "disk0", offset=8192, size=512,
                         payload=512, epoch=epoch) + block)
        a = answer(s)
        check(a["err"] == want,
              f"WRITE {what} while locked: err {a['err']} (want {want})")
    s.sendall(header(RELEASE, 103, "disk0", epoch=9))
    check(answer(s)["err"] == ESTALE, "LOCK_RELEASE of another epoch: ESTALE")
    s.sendall(header(RELEASE, 104, "disk0", epoch=1))
    check(answer(s)["err"] == 0, "LOCK_RELEASE of the lock's epoch: err 0")
    err, kv = lock_state(s, 105)
    check(err == 0 and kv.get("held") is False and kv.get("epoch") == 1,
          f"released: free, epoch 1 kept: {kv}")
    s.sendall(header(WRITE, 106, "disk0", offset=8192, size=512, payload=512)
              + block)
    check(answer(s)["err"] == 0, "WRITE without an epoch once released: 0")


def write_in_pieces(socks, writes, piece):
    """Sends several writes at once, piece by piece in turn, so that no two
    consecutive pieces of one payload are adjacent in the sender's memory
    and the agent's kernel cannot merge them into fewer pipe slots."""
    msgs = [header(WRITE, 70 + i, "disk0", offset=off, size=len(data),
                   payload=len(data)) + data
            for i, (off, data) in enumerate(writes)]
    for pos in range(0, max(len(m) for m in msgs), piece):
        for sock, msg in zip(socks, msgs):
            if pos < len(msg):
                sock.sendall(msg[pos:pos + piece])
    return [answer(sock) for sock in socks]


def flood_of_refusals(port):
    """Sixty requests with an unknown opcode on one connection: each
    answered, but not each logged."""
    s = connect(port)
    peer = "127.0.0.1:%d" % s.getsockname()[1]
    s.sendall(b"".join(header(0x4343, 100 + i, "disk0") for i in range(60)))
    errs = [answer(s)["err"] for _ in range(60)]
    check(errs == [95] * 60, "sixty refused requests answered EOPNOTSUPP")
    s.close()
    return peer


def write_calls(pid):
    with open(f"/proc/{pid}/io") as f:
        return int(dict(line.split(": ") for line in f)["syscw"])


def answers_in_step(port, pid):
    """A batch of small cached reads is answered in steps of twelve, so
    the client works on the first answers while vxhsd serves the rest; a
    batch of fewer leaves in one writev (server/session.c)."""
    s = connect(port)
    data = os.urandom(32 * 4096)
    s.sendall(header(WRITE, 70, "disk0", offset=0, size=len(data),
                     payload=len(data)) + data)
    check(answer(s)["err"] == 0, "a 128 KiB write for the batched reads")
    for count, least, most in ((8, 1, 1), (32, 2, 4), (8, 1, 1)):
        before = write_calls(pid)
        s.sendall(b"".join(header(READ, 100 + i, "disk0", offset=4096 * i,
                                  size=4096) for i in range(count)))
        got = b"".join(answer(s)["data"] for _ in range(count))
        sends = write_calls(pid) - before
        check(got == data[:4096 * count] and least <= sends <= most,
              f"{count} cached 4 KiB reads in one batch: answered in "
              f"{sends} writes (want {least} to {most})")
    s.close()


def large_writes(port, logfile):
    """Payloads of half a MiB and more go through a pipe (spliced) unless
    they arrive in pieces too small for one: then they spill to a buffer."""
    half = 512 * 1024
    s = connect(port)
    data = os.urandom(1 << 20)
    s.sendall(header(WRITE, 60, "disk0", offset=0, size=len(data),
                     payload=len(data)) + data)
    a = answer(s)
    check(a["err"] == 0, f"1 MiB write in one piece: err {a['err']}")
    s.sendall(header(READ, 61, "disk0", offset=0, size=len(data)))
    check(answer(s)["data"] == data, "1 MiB write in one piece reads back")

    socks = [connect(port), connect(port)]
    for c in socks:
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    writes = [(0, os.urandom(half)), (half, os.urandom(half))]
    answers = write_in_pieces(socks, writes, 256)
    check(all(a["err"] == 0 for a in answers),
          "two half-MiB writes in 256-byte pieces succeed")
    s.sendall(header(READ, 62, "disk0", offset=0, size=1 << 20))
    check(answer(s)["data"] == writes[0][1] + writes[1][1],
          "writes in small pieces read back")
    # Once more on the same connections: those now skip pipes.
    writes2 = [(0, os.urandom(half)), (half, os.urandom(half))]
    answers = write_in_pieces(socks, writes2, 64 * 1024)
    check(all(a["err"] == 0 for a in answers),
          "the next writes on those connections succeed")
    s.sendall(header(READ, 63, "disk0", offset=0, size=1 << 20))
    check(answer(s)["data"] == writes2[0][1] + writes2[1][1],
          "writes after a spill read back")
    with open(logfile) as log:
        check("did not fit its pipes" in log.read(),
              "the small pieces filled the pipe (the agent logged it)")

    # A spliced payload cut short: the stall is timed out (--header-timeout),
    # the hang-up handled, and large writes go on working.
    for what, hang_up in (("stalls", False), ("hangs up", True)):
        c = connect(port)
        c.sendall(header(WRITE, 80, "disk0", size=1 << 20,
                         payload=1 << 20) + data[:300 * 1024])
        start = time.monotonic()
        if hang_up:
            c.close()
        else:
            c.settimeout(8)
            try:
                closed = c.recv(256) == b""
            except (ConnectionResetError, socket.timeout):
                closed = False
            check(closed and time.monotonic() - start < 6,
                  "a client that stalls inside a 1 MiB payload is closed "
                  f"after {time.monotonic() - start:.1f} s")
            c.close()
        s.sendall(header(WRITE, 81, "disk0", size=1 << 20, payload=1 << 20)
                  + data)
        check(answer(s)["err"] == 0,
              f"after a client that {what} inside a payload, a large "
              "write succeeds")
    for c in socks + [s]:
        c.close()


if __name__ == "__main__":
    sys.exit(main())
