#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
"""vxhsd against hostile peers: one bad peer must not hurt the others.

Attackers connect from 127.0.0.2 and up (their own address, so their own
identity), victims from 127.0.0.1 and the UNIX socket. Checked:

  - shares: a slow reader (large READs, answers never read) and a
    trickling writer (a large WRITE payload, a byte at a time) hold
    memory; a victim's 4 KiB READs of another vdisk are each answered
    within VICTIM_BOUND seconds, its connection is never closed, and the
    attackers are closed by --send-timeout and --min-payload-rate, after
    which their memory is free again; the same with eight slow readers
    and the default memory limits (what they hold stays within one
    identity's share);
  - admission: raw TCP sockets that never start TLS, and TLS sessions of
    a certificate with no rights, do not lock out a gateway or the UNIX
    socket; --max-conns-per-addr, --max-conns-per-identity and
    --max-unauth refuse what is over them, named in the log;
  - a FLUSH held by fault injection does not delay READ answers of other
    sessions or vdisks, and is answered once released.

The agent's request memory is read through its control socket (vxhsd
--control, "counters"): the test waits for events, not for time to pass.
Usage: hostile_check.py VXHSD VXHSADM PKI_DIR
"""
import os
import select
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wire_check import (READ, STAT, WRITE, answer, check,  # noqa: E402
                        header)
import wire_check  # noqa: E402
from tls_check import Agent, context  # noqa: E402

FLUSH = 0x3F01
# Normally well under a millisecond; generous for a loaded 2-core machine.
VICTIM_BOUND = 3.0
SEND_TIMEOUT = 3
# Long enough for the steps that need squatters alive on a slow machine.
SQUAT_TIMEOUT = 10
MiB = 1 << 20


def connect(port, source="127.0.0.1", rcvbuf=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.bind((source, 0))
    s.settimeout(10)
    s.connect(("127.0.0.1", port))
    return s


def connect_unix(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(path)
    return s


def tls(port, pki, creds, source="127.0.0.1"):
    return context(pki, creds).wrap_socket(connect(port, source),
                                           server_hostname="localhost")


class Control:
    def __init__(self, vxhsadm, path):
        self.vxhsadm, self.path = vxhsadm, path

    def __call__(self, *words):
        r = subprocess.run([self.vxhsadm, "fault", "--control", self.path,
                            *words], capture_output=True, text=True)
        if r.returncode:
            raise SystemExit(f"Bail out! fault {words}: {r.stdout}"
                             f"{r.stderr}")
        return r.stdout

    def memory(self):
        for word in self("counters").split():
            if word.startswith("memory="):
                return int(word[7:])
        raise SystemExit("Bail out! no memory= in counters")

    def wait_memory(self, pred, what, limit=20):
        end = time.monotonic() + limit
        while time.monotonic() < end:
            m = self.memory()
            if pred(m):
                return m
            time.sleep(0.05)
        check(False, f"{what} (memory {self.memory()})")
        return None


def victim_reads(sock, what, vdisk="disk-v", n=20):
    """n READs of 4 KiB, one at a time; the slowest and whether all came."""
    worst, done = 0.0, 0
    try:
        for i in range(n):
            t = time.monotonic()
            sock.sendall(header(READ, 1000 + i, vdisk, (i % 64) * 4096,
                                4096))
            a = answer(sock)
            worst = max(worst, time.monotonic() - t)
            if a["err"] == 0 and len(a["data"]) == 4096:
                done += 1
    except (OSError, EOFError) as e:
        check(False, f"{what}: connection failed after {done} reads: {e}")
        return
    check(done == n and worst < VICTIM_BOUND,
          f"{what}: {done}/{n} READs answered, slowest {worst:.3f} s "
          f"(bound {VICTIM_BOUND} s)")
    sock.sendall(header(STAT, 99, vdisk))
    check(answer(sock)["err"] == 0, f"{what}: still connected afterwards")


def slow_reader(port, vdisk, n, size, source="127.0.0.2"):
    """Asks for n READs of size bytes and never reads an answer."""
    s = connect(port, source, rcvbuf=4096)
    s.sendall(b"".join(header(READ, i + 1, vdisk, 0, size)
                       for i in range(n)))
    return s


def trickler(port, vdisk, size, stop, source="127.0.0.2"):
    """Starts a WRITE of size bytes and sends its payload a byte at a
    time, until the agent closes the connection or stop is set."""
    s = connect(port, source)
    s.sendall(header(WRITE, 1, vdisk, 0, size, payload=size))

    def run():
        try:
            while not stop.is_set():
                s.sendall(b"x")
                stop.wait(0.1)
        except OSError:
            pass
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return s, t


def vdisks(vdir, sizes):
    for name, size in sizes.items():
        with open(os.path.join(vdir, name), "wb") as f:
            f.truncate(size)


def shares(vxhsd, vxhsadm, tmp):
    vdir = os.path.join(tmp, "v1")
    os.mkdir(vdir)
    vdisks(vdir, {"disk-v": MiB, "disk-x": 16 * MiB})
    sock = os.path.join(tmp, "v1.sock")
    ctl = Control(vxhsadm, os.path.join(tmp, "v1.ctl"))
    agent = Agent(vxhsd, vdir, os.path.join(tmp, "v1.log"),
                  "--allow-plaintext", "--unix", sock, "--control", ctl.path,
                  "--memory-limit", "16M", "--max-io", "4M",
                  "--max-conn-buffer", "8M", "--send-timeout",
                  str(SEND_TIMEOUT), "--min-payload-rate", "1M")
    stop = threading.Event()
    try:
        reader = slow_reader(agent.port, "disk-x", 8, 4 * MiB)
        writer, wt = trickler(agent.port, "disk-x", 4 * MiB, stop)
        # The attackers' identity holds its share (4 MiB) and more.
        ctl.wait_memory(lambda m: m >= 4 * MiB,
                        "the attackers hold request memory")
        victim_reads(connect(agent.port), "TCP victim during the attack")
        victim_reads(connect_unix(sock), "UNIX victim during the attack")
        check(ctl.memory() <= 8 * MiB + MiB,
              "the attackers' identity holds no more than its share and "
              "one request")
        check(log_count(agent, "answers not read within --send-timeout",
                        1, SEND_TIMEOUT + 20),
              "the slow reader is closed by --send-timeout")
        check(log_count(agent, "payload slower than --min-payload-rate",
                        1, SEND_TIMEOUT + 20),
              "the trickling writer is closed by --min-payload-rate")
        ctl.wait_memory(lambda m: m == 0,
                        "the attackers' memory is free once they are closed")
        reader.close()
        writer.close()
    finally:
        stop.set()
        agent.stop()

    # Eight slow readers of 8 x 8 MiB, the default memory limits.
    agent = Agent(vxhsd, vdir, os.path.join(tmp, "v2.log"),
                  "--allow-plaintext", "--control", ctl.path,
                  "--send-timeout", str(SEND_TIMEOUT))
    vdisks(vdir, {"disk-x": 64 * MiB})
    try:
        readers = [slow_reader(agent.port, "disk-x", 8, 8 * MiB)
                   for _ in range(8)]
        ctl.wait_memory(lambda m: m >= 64 * MiB,
                        "eight slow readers hold request memory")
        victim_reads(connect(agent.port), "victim beside eight slow readers")
        check(ctl.memory() <= 128 * MiB + 8 * MiB + MiB,
              "eight slow readers hold no more than one identity's share "
              "(a quarter of --memory-limit) and one request")
        check(log_count(agent, "answers not read within --send-timeout",
                        8, 4 * SEND_TIMEOUT + 20),
              "all eight slow readers are closed by --send-timeout")
        ctl.wait_memory(lambda m: m == 0, "their memory is free again")
        for r in readers:
            r.close()
    finally:
        agent.stop()


def log_count(agent, text, n, limit):
    """Waits up to limit seconds for n lines of the agent's log with text
    (each attacker is closed by a timer, so this is an event, bounded)."""
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if sum(1 for line in open(agent.log) if text in line) >= n:
            return True
        time.sleep(0.1)
    return False


def refused(sock, what):
    """The agent closes sock without a word (EOF or reset)."""
    sock.settimeout(10)
    try:
        data = sock.recv(1)
        ok = data == b""
    except (ssl.SSLError, ConnectionError):
        ok = True
    except socket.timeout:
        ok = False
    check(ok, what)
    sock.close()


def stat_ok(sock, what, vdisk="disk-a"):
    try:
        sock.sendall(header(STAT, 5, vdisk))
        check(answer(sock)["err"] == 0, what)
    except (OSError, EOFError) as e:
        check(False, f"{what}: {e}")


def admission(vxhsd, vxhsadm, pki, tmp):
    vdir = os.path.join(tmp, "v3")
    os.mkdir(vdir)
    vdisks(vdir, {"disk-a": MiB})
    acl = os.path.join(tmp, "acl")
    with open(acl, "w") as f:
        f.write("dns:gw-a.test * rw\nuid:0 * rw\n")  # gw-ro: no rights
    sock = os.path.join(tmp, "v3.sock")
    agent = Agent(vxhsd, vdir, os.path.join(tmp, "v3.log"),
                  "--tls-dir", os.path.join(pki, "agent"), "--acl", acl,
                  "--unix", sock, "--max-conns", "16", "--max-unauth", "4",
                  "--max-conns-per-addr", "3", "--max-conns-per-identity",
                  "2", "--header-timeout", str(SQUAT_TIMEOUT))
    try:
        # Raw TCP that never starts TLS, from one address: 3 get in.
        raw = [connect(agent.port, "127.0.0.2") for _ in range(8)]
        gw = tls(agent.port, pki, "gw-a")
        stat_ok(gw, "a gateway connects beside 8 raw sockets")
        stat_ok(connect_unix(sock), "the UNIX socket beside 8 raw sockets")
        check(agent.logged("--max-conns-per-addr"),
              "raw sockets over --max-conns-per-addr are refused (logged)")
        # From other addresses, handshakes never started fill --max-unauth
        # (a fourth): the next TCP client is refused, the UNIX socket is
        # not; once --header-timeout closes the squatters, a gateway gets
        # in again.
        squat = [connect(agent.port, f"127.0.0.{30 + i}") for i in range(2)]
        late = connect(agent.port, "127.0.0.40")
        refused(late, "a TCP client over --max-unauth is refused")
        check(agent.logged("--max-unauth"),
              "--max-unauth is named in the log")
        stat_ok(connect_unix(sock),
                "the UNIX socket while --max-unauth is full")
        check(log_count(agent, "TLS handshake not done within "
                        "--header-timeout", 4, SQUAT_TIMEOUT + 20),
              "the squatting handshakes are closed by --header-timeout")
        stat_ok(tls(agent.port, pki, "gw-a", "127.0.0.41"),
                "a gateway gets in once the squatters are gone")
        # Certificates with no rights, from several addresses.
        for i in range(6):
            try:
                s = tls(agent.port, pki, "gw-ro", f"127.0.0.{3 + i}")
                s.sendall(header(STAT, 1, "disk-a"))
                refused(s, f"no-rights certificate #{i + 1} is let go")
            except (ssl.SSLError, ConnectionError):
                check(True, f"no-rights certificate #{i + 1} is let go")
        check(agent.logged("has no rights in the access list"),
              "the audit log names the certificate without rights")
        gw2 = tls(agent.port, pki, "gw-a", "127.0.0.20")
        stat_ok(gw2, "a gateway connects after the no-rights flood")
        # gw-a now holds 2 (gw and gw2): the third is refused.
        extra = tls(agent.port, pki, "gw-a", "127.0.0.21")
        try:
            extra.sendall(header(STAT, 1, "disk-a"))
        except OSError:
            pass
        refused(extra, "a third gw-a session is over "
                "--max-conns-per-identity")
        check(agent.logged("--max-conns-per-identity"),
              "--max-conns-per-identity is named in the log")
        for s in raw + squat + [gw, gw2]:
            s.close()
    finally:
        agent.stop()


def readable(sock, wait):
    return bool(select.select([sock], [], [], wait)[0])


def held_flush(vxhsd, vxhsadm, tmp):
    vdir = os.path.join(tmp, "v4")
    os.mkdir(vdir)
    vdisks(vdir, {"disk-a": MiB, "disk-b": MiB})
    ctl = Control(vxhsadm, os.path.join(tmp, "v4.ctl"))
    agent = Agent(vxhsd, vdir, os.path.join(tmp, "v4.log"),
                  "--allow-plaintext", "--control", ctl.path,
                  "--workers", "2")
    try:
        ctl("delay", "flush", "disk-a", "600000")
        flusher = connect(agent.port)
        flusher.sendall(b"".join(header(FLUSH, i + 1, "disk-a")
                                 for i in range(4)))
        other_vdisk = connect(agent.port)
        same_vdisk = connect(agent.port)
        victim_reads(other_vdisk, "READs of another vdisk while FLUSHes "
                     "are held", vdisk="disk-b")
        victim_reads(same_vdisk, "READs of the same vdisk on another "
                     "session while FLUSHes are held", vdisk="disk-a")
        check(not readable(flusher, 0), "the held FLUSHes are still "
              "unanswered")
        ctl("clear")
        got = []
        try:
            for _ in range(4):
                got.append(answer(flusher)["err"])
        except (OSError, EOFError):
            pass
        check(got == [0, 0, 0, 0], f"the FLUSHes are answered once released "
              f"({got})")
        check("flush=4" in ctl("counters"), "the agent counted 4 FLUSHes")
    finally:
        agent.stop()


def main():
    vxhsd, vxhsadm, pki = sys.argv[1:4]
    tmp = tempfile.mkdtemp(prefix="vxhs-hostile.")
    try:
        shares(vxhsd, vxhsadm, tmp)
        admission(vxhsd, vxhsadm, pki, tmp)
        held_flush(vxhsd, vxhsadm, tmp)
    finally:
        if os.environ.get("KEEP"):
            print("# kept", tmp)
        else:
            shutil.rmtree(tmp)
    print(f"# {wire_check.passed} passed, {wire_check.failures} failed")
    return 1 if wire_check.failures else 0


if __name__ == "__main__":
    sys.exit(main())
