#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
"""TLS with peers that behave as the original HyperScale client and agent.

The original code (OpenSSL) handles one message per socket-readable event
and never drains the plaintext OpenSSL has buffered: a second message in
the same TLS record waits until something else makes the socket readable,
which may be never. Both peers here (Python's ssl, so OpenSSL) do exactly
that, so any record that carries bytes of two messages stalls them:

  - as a client of vxhsd: 32 pipelined READs, then one answer per
    readable event; every answer must come (vxhsd packs answers only for
    clients that say they take them);
  - as an agent for our client (vxhsadm write, read and bench): one
    request per readable event; everything must complete (our client packs
    requests only for agents that announce it, which this one does not).

With --kernel-tls, our ends hand their records to the kernel's TLS, which
must take both directions (the e2e guest runs it so): vxhsd reads an
OpenSSL client's records, and our client skips the session tickets the
OpenSSL agent sends after its handshake.

Usage: tls_original_peer.py VXHSD VXHSADM PKI_DIR [--kernel-tls]
"""
import os
import select
import socket
import ssl
import subprocess
import sys
import tempfile
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wire_check import HDR, READ, STAT, WRITE, check, header  # noqa: E402
import wire_check  # noqa: E402
from tls_check import Agent, context  # noqa: E402
from tls_slow_reader import agent_context, answer, kvset_size  # noqa: E402

SIZE = 8 << 20
WAIT = 5  # seconds without a readable event that mean a stalled peer
KERNEL = []  # ["--kernel-tls"]: our ends with the kernel's TLS


def read_message(sock):
    """One message, as the original reads it: the header, then exactly
    the payload it announces."""
    def exact(n):
        buf = b""
        while len(buf) < n:
            chunk = sock.recv(n - len(buf))
            if not chunk:
                raise EOFError
            buf += chunk
        return buf
    raw = exact(256)
    return raw, exact(HDR.unpack(raw)[1])


def readable(sock):
    """Waits for the socket, as the original's event loop does; OpenSSL's
    buffered plaintext does not count."""
    return bool(select.select([sock], [], [], WAIT)[0])


def original_client(vxhsd, pki, tmp):
    vdir = os.path.join(tmp, "v")
    os.mkdir(vdir)
    with open(os.path.join(vdir, "disk-a"), "wb") as f:
        f.write(os.urandom(1 << 20))
    agent = Agent(vxhsd, vdir, os.path.join(tmp, "vxhsd.log"),
                  "--tls-dir", os.path.join(pki, "agent"), *KERNEL)
    try:
        raw = socket.create_connection(("127.0.0.1", agent.port), timeout=10)
        s = context(pki, "gw-a").wrap_socket(raw,
                                              server_hostname="localhost")
        for i in range(32):  # one record each, as the original sends
            s.sendall(header(READ, i + 1, "disk-a", i * 4096, 4096))
        got = 0
        while got < 32 and readable(s):
            hdr, data = read_message(s)
            if HDR.unpack(hdr)[3] == 0 and len(data) == 4096:
                got += 1
        check(got == 32, f"an original-style client gets all 32 answers, "
              f"one per readable event ({got})")
        s.close()
        if KERNEL:
            check("records made and read by the kernel" in
                  open(agent.log).read(),
                  "vxhsd: the kernel makes and reads the records")
    finally:
        agent.stop()


def original_agent(vxhsadm, pki, tmp):
    ctx = agent_context(pki)
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(16)
    port = lsock.getsockname()[1]
    disk = bytearray(SIZE)

    def serve(conn):
        try:
            while True:
                if not readable(conn):
                    continue  # a request stuck in OpenSSL's buffer stays
                req, data = read_message(conn)
                f = HDR.unpack(req)
                opcode, off, size = f[7], f[8], f[9]
                if opcode == STAT:
                    conn.sendall(answer(req, payload=kvset_size(SIZE)))
                elif opcode == WRITE:
                    disk[off:off + len(data)] = data
                    conn.sendall(answer(req))
                elif opcode == READ:
                    conn.sendall(answer(req, payload=bytes(
                        disk[off:off + size]), data_type=1))
                else:
                    conn.sendall(answer(req, err=95))
        except (EOFError, OSError, ssl.SSLError):
            pass

    def acceptor():
        while True:
            try:
                c, _ = lsock.accept()
                t = ctx.wrap_socket(c, server_side=True)
            except (OSError, ssl.SSLError):
                continue
            threading.Thread(target=serve, args=(t,), daemon=True).start()

    threading.Thread(target=acceptor, daemon=True).start()
    common = ["--agent", f"127.0.0.1:{port}", "--tls-dir",
              os.path.join(pki, "gw-a"), "--timeout", "4000", *KERNEL]
    src, back = os.path.join(tmp, "image"), os.path.join(tmp, "back")
    data = os.urandom(SIZE)
    with open(src, "wb") as f:
        f.write(data)

    def run(what, *args):
        r = subprocess.run([vxhsadm, *args], capture_output=True, text=True,
                           timeout=300)
        check(r.returncode == 0 and "timed out" not in r.stderr,
              f"{what} against an original-style agent "
              f"({r.returncode}: {r.stderr.strip()[-200:]!r})")
        if KERNEL:
            check("records made and read by the kernel" in r.stderr and
                  "kernel_tls:" not in r.stderr,
                  f"{what}: the kernel makes and reads the records")

    run("vxhsadm write", "write", "-v", *common, "disk", src)
    run("vxhsadm read", "read", "-v", *common, "disk", back)
    check(open(back, "rb").read() == data, "the data read back is the file")
    run("vxhsadm bench", "bench", "-v", *common, "--qd", "32", "--time",
        "2", "disk")


def main():
    vxhsd, vxhsadm, pki = sys.argv[1:4]
    if sys.argv[4:] == ["--kernel-tls"]:
        KERNEL.append("--kernel-tls")
    elif sys.argv[4:]:
        print(__doc__.split("Usage: ")[1], file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        original_client(vxhsd, pki, tmp)
        original_agent(vxhsadm, pki, tmp)
    print(f"# {wire_check.passed} passed, {wire_check.failures} failed")
    return 1 if wire_check.failures else 0


if __name__ == "__main__":
    sys.exit(main())
