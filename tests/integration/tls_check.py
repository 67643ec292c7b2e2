#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
"""vxhsd against hostile and foreign peers, from outside the C code.

Python's ssl module is OpenSSL, so this is also the interoperability test
with an OpenSSL client presenting a client certificate, as the original
HyperScale library does. Checks, each within a bounded time and with the
agent serving a good client afterwards:
  - an OpenSSL client with a good certificate: STAT and READ work;
  - no client certificate, an expired one, one from another CA: refused,
    and the agent's log says why;
  - a plaintext client on the TLS port: dropped, the log says so;
  - a handshake never started, half a header then silence, part of a
    payload then silence, a header trickled a byte at a time: closed
    after --header-timeout;
  - the access list: another vdisk's STAT gets EACCES and no data; over the
    UNIX socket the peer's uid decides;
  - --max-conns: the connection over the limit is refused, the others work;
  - a client that never stops sending requests does not keep the network
    thread it shares from another client;
  - vxhsd runs as an unprivileged user with only its directory and key.
Usage: tls_check.py VXHSD PKI_DIR
"""
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wire_check import (READ, STAT, answer, check, header,  # noqa: E402
                        parse_kvset)
import wire_check  # noqa: E402

EACCES = 13
HEADER_TIMEOUT = 2


def context(pki, creds):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_verify_locations(os.path.join(pki, "agent", "ca.pem"))
    if creds:
        ctx.load_cert_chain(os.path.join(pki, creds, "cert.pem"),
                            os.path.join(pki, creds, "key.pem"))
    return ctx


def tls_connect(port, pki, creds):
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    return context(pki, creds).wrap_socket(raw, server_hostname="localhost")


def stat(sock, vdisk, cookie=1):
    sock.sendall(header(STAT, cookie, vdisk))
    return answer(sock)


def closed_without_answer(sock, what, limit=HEADER_TIMEOUT + 8):
    """The agent closes sock (or fails it) within limit seconds."""
    start = time.monotonic()
    sock.settimeout(limit)
    try:
        data = sock.recv(256)
        ok = data == b""
    except (ssl.SSLError, ConnectionError) as e:
        ok = True
        what += f" ({type(e).__name__})"
    except socket.timeout:
        ok = False
    check(ok and time.monotonic() - start < limit,
          f"{what}: closed without an answer in "
          f"{time.monotonic() - start:.1f} s")
    sock.close()


def refused_client(port, pki, creds, what):
    """In TLS 1.3 the client's handshake ends before the agent has judged
    its certificate: the refusal arrives on the first read."""
    try:
        s = tls_connect(port, pki, creds)
    except (ssl.SSLError, ConnectionError) as e:
        check(True, f"{what}: refused during the handshake ({e})")
        return
    try:
        s.sendall(header(STAT, 7, "disk-a"))
    except (ssl.SSLError, ConnectionError):
        pass
    closed_without_answer(s, what)


class Agent:
    def __init__(self, vxhsd, vdir, log, *args, user=None):
        self.log = log
        portfile = os.path.join(os.path.dirname(log), "port")
        if os.path.exists(portfile):
            os.unlink(portfile)
        pre = None
        if user:
            pw = pwd.getpwnam(user)

            def pre():
                os.setgid(pw.pw_gid)
                os.setgroups([])
                os.setuid(pw.pw_uid)
        self.proc = subprocess.Popen(
            [vxhsd, "--dir", vdir, "--listen", "127.0.0.1", "--port", "0",
             "--port-file", portfile, "--log-level", "info",
             "--header-timeout", str(HEADER_TIMEOUT), *args],
            stderr=open(log, "w"), preexec_fn=pre)
        for _ in range(500):
            if os.path.exists(portfile) and open(portfile).read().strip():
                self.port = int(open(portfile).read())
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.01)
        print(open(log).read())
        raise SystemExit("Bail out! vxhsd did not start")

    def logged(self, text):
        # The agent logs after closing; give it a moment.
        for _ in range(50):
            if text in open(self.log).read():
                return True
            time.sleep(0.05)
        return False

    def stop(self):
        self.proc.terminate()
        check(self.proc.wait(timeout=30) == 0, "agent exits 0 on SIGTERM")


def good_client_works(agent, pki, what):
    with tls_connect(agent.port, pki, "gw-a") as s:
        a = stat(s, "disk-a")
        check(a["err"] == 0 and a["payload"] > 0,
              f"a good client is served ({what})")


def main():
    vxhsd, pki = sys.argv[1], sys.argv[2]
    tmp = tempfile.mkdtemp(prefix="vxhs-tls-")
    try:
        vdir = os.path.join(tmp, "vdisks")
        os.mkdir(vdir)
        for name in ("disk-a", "disk-b"):
            with open(os.path.join(vdir, name), "wb") as f:
                f.truncate(1 << 20)
        acl = os.path.join(tmp, "acl")
        with open(acl, "w") as f:
            f.write("dns:gw-a.test disk-a rw\nuid:0 disk-a rw\n")
        sock_path = os.path.join(tmp, "vxhsd.sock")
        agent = Agent(vxhsd, vdir, os.path.join(tmp, "vxhsd.log"),
                      "--tls-dir", os.path.join(pki, "agent"), "--acl", acl,
                      "--unix", sock_path, "--max-conns", "6")
        try:
            run_checks(agent, pki, sock_path)
        finally:
            agent.stop()
        unprivileged(vxhsd, pki, tmp)
        reload_on_sighup(vxhsd, pki, tmp, vdir)
        flood_shares_the_thread(vxhsd, pki, tmp, vdir)
        kernel_tls_either_way(vxhsd, pki, tmp, vdir)
    finally:
        if not os.environ.get("KEEP"):
            shutil.rmtree(tmp)
        else:
            print("# kept", tmp)
    print(f"# {wire_check.passed} passed, {wire_check.failures} failed")
    return 1 if wire_check.failures else 0


def run_checks(agent, pki, sock_path):
    # OpenSSL client, as the original library: STAT, then a READ.
    with tls_connect(agent.port, pki, "gw-a") as s:
        check(s.version() in ("TLSv1.3", "TLSv1.2"),
              f"OpenSSL client negotiates {s.version()}")
        a = stat(s, "disk-a")
        _, _, keys, _ = parse_kvset(a["data"])
        check(a["err"] == 0 and keys[0] == ("vdisk_size_bytes", 5, 1 << 20),
              "OpenSSL client: STAT answers the size")
        s.sendall(header(READ, 2, "disk-a", 4096, 4096))
        a = answer(s)
        check(a["err"] == 0 and a["data"] == b"\0" * 4096,
              "OpenSSL client: READ answers 4096 bytes")
        # The access list: another vdisk gets EACCES and nothing else.
        a = stat(s, "disk-b", cookie=3)
        check(a["err"] == EACCES and a["payload"] == 0,
              "STAT of a vdisk not in the access list: EACCES, no data")
        s.sendall(header(READ, 4, "disk-b", 0, 4096))
        a = answer(s)
        check(a["err"] == EACCES and a["payload"] == 0,
              "READ of a vdisk not in the access list: EACCES, no data")
    check(agent.logged("audit: denied VDISK_STAT of vdisk 'disk-b' to "
                       "dn:CN=gw-a"),
          "the denial is in the audit log with the identity")

    refused_client(agent.port, pki, None, "no client certificate")
    check(agent.logged("the client sent no certificate"),
          "the log says the client sent no certificate")
    refused_client(agent.port, pki, "gw-expired", "expired client cert")
    check(agent.logged("expired"), "the log says the certificate expired")
    refused_client(agent.port, pki, "gw-foreign", "client cert of another CA")
    check(agent.logged("issuer is unknown"),
          "the log says the issuer is unknown")
    good_client_works(agent, pki, "after refusals")

    s = socket.create_connection(("127.0.0.1", agent.port), timeout=10)
    s.sendall(header(STAT, 1, "disk-a"))
    closed_without_answer(s, "plaintext client on the TLS port")
    check(agent.logged("(a client without TLS?)"),
          "the log suggests a client without TLS")

    # Slowloris: no handshake at all; half a header inside TLS.
    s = socket.create_connection(("127.0.0.1", agent.port), timeout=10)
    closed_without_answer(s, "a connection that never starts TLS")
    s = tls_connect(agent.port, pki, "gw-a")
    s.sendall(header(STAT, 1, "disk-a")[:100])
    closed_without_answer(s, "half a header, then silence")
    # Part of a write's payload, then silence.
    s = tls_connect(agent.port, pki, "gw-a")
    s.sendall(header(wire_check.WRITE, 1, "disk-a", 0, 4096, 4096) +
              b"x" * 1000)
    closed_without_answer(s, "part of a payload, then silence")
    # Slowloris proper: a byte of header every half second keeps the
    # connection busy but the header never completes.
    s = tls_connect(agent.port, pki, "gw-a")
    raw, start, closed = header(STAT, 1, "disk-a"), time.monotonic(), False
    for i in range(len(raw) - 1):
        try:
            s.sendall(raw[i:i + 1])
            time.sleep(0.5)
        except (ssl.SSLError, ConnectionError, BrokenPipeError):
            closed = True
            break
    check(closed and time.monotonic() - start < HEADER_TIMEOUT + 3,
          f"a header trickled byte by byte: closed after "
          f"{time.monotonic() - start:.1f} s")
    s.close()
    good_client_works(agent, pki, "after stalled peers")

    # The UNIX socket: the peer's uid is its identity (this test is root).
    u = socket.socket(socket.AF_UNIX)
    u.connect(sock_path)
    check(stat(u, "disk-a")["err"] == 0, "uid:0 over the UNIX socket: STAT")
    check(stat(u, "disk-b", 2)["err"] == EACCES,
          "uid:0 over the UNIX socket: disk-b denied")
    u.close()

    # --max-conns 6: six held open, the seventh is refused at once.
    held = [tls_connect(agent.port, pki, "gw-a") for _ in range(6)]
    for i, s in enumerate(held):
        stat(s, "disk-a", cookie=i + 1)
    extra = socket.create_connection(("127.0.0.1", agent.port), timeout=10)
    closed_without_answer(extra, "a connection over --max-conns", limit=5)
    check(agent.logged("--max-conns"), "the log names --max-conns")
    check(all(stat(s, "disk-a", 9)["err"] == 0 for s in held),
          "the connections within the limit keep working")
    for s in held:
        s.close()
    time.sleep(0.3)
    good_client_works(agent, pki, "after the connection limit")


def unprivileged(vxhsd, pki, tmp):
    """vxhsd as nobody: its own directory and credentials, nothing else."""
    home = os.path.join(tmp, "nobody")
    creds = os.path.join(home, "tls")
    vdir = os.path.join(home, "vdisks")
    shutil.copytree(os.path.join(pki, "agent"), creds)
    os.mkdir(vdir)
    with open(os.path.join(vdir, "disk-a"), "wb") as f:
        f.truncate(1 << 20)
    pw = pwd.getpwnam("nobody")
    for root, dirs, files in os.walk(home):
        for n in dirs + files + [""]:
            os.chown(os.path.join(root, n), pw.pw_uid, pw.pw_gid)
    os.chmod(tmp, 0o755)
    log = os.path.join(home, "vxhsd.log")
    agent = Agent(vxhsd, vdir, log, "--tls-dir", creds, user="nobody")
    try:
        with tls_connect(agent.port, pki, "gw-a") as s:
            s.sendall(header(STAT, 1, "disk-a"))
            check(answer(s)["err"] == 0, "vxhsd runs as nobody and serves")
    finally:
        agent.stop()


def wait_logged(agent, text, count=1, limit=10):
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if open(agent.log).read().count(text) >= count:
            return True
        time.sleep(0.05)
    return False


def kernel_tls_either_way(vxhsd, pki, tmp, vdir):
    """--kernel-tls: where the kernel has TLS it makes the answers'
    records, elsewhere (this host's kernel has none) GnuTLS does; either
    way an OpenSSL client reads the same answers, and the log says which
    and why."""
    with open(os.path.join(vdir, "disk-k"), "wb") as f:
        f.write(bytes(range(256)) * 4096)
    agent = Agent(vxhsd, vdir, os.path.join(tmp, "ktls.log"),
                  "--tls-dir", os.path.join(pki, "agent"), "--kernel-tls")
    try:
        with tls_connect(agent.port, pki, "gw-a") as s:
            for cookie, (off, size) in enumerate([(0, 4096), (512, 70000),
                                                  (1 << 19, 1 << 19)], 1):
                s.sendall(header(READ, cookie, "disk-k", off, size))
                a = answer(s)
                want = (bytes(range(256)) * 4096)[off:off + size]
                check(a["err"] == 0 and a["data"] == want,
                      f"--kernel-tls: READ of {size} bytes at {off}")
        log = open(agent.log).read()
        check("records made and read by the kernel" in log or
              "records made by vxhsd, not the kernel: the kernel has no "
              "TLS module" in log,
              "--kernel-tls: the session's log line says who makes the "
              "records")
    finally:
        agent.stop()


def reload_on_sighup(vxhsd, pki, tmp, vdir):
    """SIGHUP reads the access list and the TLS credentials again: a new
    rule applies to a connection already open, a connection whose
    certificate the new CRL revokes or whose rights the new list takes
    away is closed, the others stay; a broken access list leaves the
    previous one in force."""
    tlsdir = os.path.join(tmp, "reload-tls")
    shutil.copytree(os.path.join(pki, "agent"), tlsdir)
    acl = os.path.join(tmp, "reload-acl")
    with open(acl, "w") as f:
        f.write("dns:gw-a.test disk-a rw\ndns:gw-ro.test disk-a ro\n")
    agent = Agent(vxhsd, vdir, os.path.join(tmp, "reload.log"),
                  "--tls-dir", tlsdir, "--acl", acl)
    try:
        gw = tls_connect(agent.port, pki, "gw-a")
        check(stat(gw, "disk-b")["err"] == EACCES,
              "before SIGHUP: disk-b denied to gw-a")
        revoked = tls_connect(agent.port, pki, "gw-revoked")
        check(stat(revoked, "disk-a")["err"] == 0,
              "before SIGHUP: gw-revoked is served (no CRL yet)")
        ro = tls_connect(agent.port, pki, "gw-ro")
        check(stat(ro, "disk-a")["err"] == 0,
              "before SIGHUP: gw-ro is served")
        with open(acl, "w") as f:
            f.write("dns:gw-a.test disk-a rw\ndns:gw-a.test disk-b ro\n")
        shutil.copy(os.path.join(pki, "agent-crl", "crl.pem"), tlsdir)
        agent.proc.send_signal(signal.SIGHUP)
        check(wait_logged(agent, "SIGHUP: reloaded"), "SIGHUP reloads")
        check(agent.proc.poll() is None, "vxhsd keeps running on SIGHUP")
        check(stat(gw, "disk-b", cookie=2)["err"] == 0,
              "after SIGHUP: the open connection gets the new rule")
        closed_without_answer(revoked, "after SIGHUP: the open session "
                              "of the certificate the CRL revokes", limit=5)
        closed_without_answer(ro, "after SIGHUP: the open session of "
                              "gw-ro, whose rights the new list took", limit=5)
        check(agent.logged("no longer allowed"),
              "the log says why they were closed")
        refused_client(agent.port, pki, "gw-revoked",
                       "after SIGHUP: a new gw-revoked handshake")
        with open(acl, "w") as f:
            f.write("dns:gw-a.test disk-a sometimes\n")
        agent.proc.send_signal(signal.SIGHUP)
        check(wait_logged(agent, "not reloaded"),
              "a broken access list is not taken (logged)")
        check(stat(gw, "disk-b", cookie=3)["err"] == 0,
              "the previous access list stays in force")
        gw.close()
    finally:
        agent.stop()


def flood(port, pki, until, got):
    """Sends small READs without pause and takes the answers as they come,
    keeping records waiting in the agent's read-ahead all the time."""
    batch = b"".join(header(READ, i + 1, "disk-a", 512 * i, 16)
                     for i in range(256))
    with tls_connect(port, pki, "gw-a") as s:
        s.setblocking(False)
        out = b""
        while time.monotonic() < until:
            if not out:
                out = batch
            try:
                out = out[s.send(out):]
            except (ssl.SSLWantWriteError, ssl.SSLWantReadError):
                pass
            try:
                while True:
                    chunk = s.recv(1 << 20)
                    if not chunk:
                        return
                    got[0] += len(chunk)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                pass


def flood_shares_the_thread(vxhsd, pki, tmp, vdir):
    """One network thread, two TLS clients: one floods it with requests,
    the other asks once and must be answered while the flood goes on."""
    agent = Agent(vxhsd, vdir, os.path.join(tmp, "flood.log"), "--tls-dir",
                  os.path.join(pki, "agent"), "--loops", "1")
    try:
        got = [0]
        until = time.monotonic() + 8
        t = threading.Thread(target=flood, args=(agent.port, pki, until, got))
        t.start()
        time.sleep(1)
        start = time.monotonic()
        with tls_connect(agent.port, pki, "gw-a") as s:
            a = stat(s, "disk-a")
        waited = time.monotonic() - start
        flooded = got[0]
        check(a["err"] == 0 and waited < 3 and time.monotonic() < until,
              f"a client is served while another floods the same thread "
              f"(answered in {waited:.1f} s)")
        t.join()
        check(got[0] > flooded > 0,
              f"the flood was answered throughout ({got[0]} bytes)")
    finally:
        agent.stop()


if __name__ == "__main__":
    sys.exit(main())
