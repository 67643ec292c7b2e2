#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
"""Bad command lines and configuration files get a clear error and the
documented exit code (2: usage, 1: the operation failed) from vxhsd and
vxhsadm; good ones work."""
import os
import re
import socket
import subprocess
import sys
import tempfile

from agentlib import check, finish, start_vxhsd

# TLS credentials this machine may have in /etc/vxhs/tls play no part.
os.environ["VXHS_TLS_DIR"] = "/nonexistent/vxhs-tls"

def expect(cmd, code, text, what):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    out = r.stdout + r.stderr
    check(r.returncode == code and text in out, what,
          f"exit {r.returncode}, wanted {code} and {text!r} in:\n{out}")


def bench_reports(vxhsd, adm, d):
    """vxhsadm bench against a live agent prints its figures, the client's
    CPU per I/O among them, in both of its forms."""
    sock = os.path.join(d, "bench.sock")
    subprocess.run([adm, "create", "--dir", d, "b", "16M"], check=True,
                   capture_output=True)
    agent = start_vxhsd(vxhsd, d, sock)
    try:
        r = subprocess.run([adm, "bench", "--agent", "unix:" + sock,
                            "--time", "1", "--qd", "4", "--parseable", "b"],
                           capture_output=True, text=True, timeout=60)
    finally:
        agent.terminate()
        agent.wait(timeout=30)
    out = r.stdout + r.stderr
    m = re.search(r"^iops=(\d+) mibps=[\d.]+ p50_us=[\d.]+ "
                  r"p99_us=[\d.]+ cpu_us=([\d.]+)$", r.stdout, re.M)
    check(r.returncode == 0 and m and int(m.group(1)) > 0 and
          float(m.group(2)) > 0 and "client CPU" in r.stdout,
          "bench prints IOPS and the client's CPU per I/O", out)


def sparse_and_pipes(vxhsd, adm, d):
    """write and read keep zeroes out of the vdisk and the output file
    (a 64 MiB image holding 5 bytes stays small on both sides), and both
    take '-' for a pipe."""
    sock = os.path.join(d, "sparse.sock")
    img, back = os.path.join(d, "img"), os.path.join(d, "back")
    subprocess.run([adm, "create", "--dir", d, "s", "64M"], check=True,
                   capture_output=True)
    with open(img, "wb") as f:
        f.truncate(64 << 20)
        f.seek(40 << 20)
        f.write(b"hello")
    agent = start_vxhsd(vxhsd, d, sock)
    agent_addr = "unix:" + sock
    try:
        expect([adm, "write", "--agent", agent_addr, "s", img], 0,
               "bytes of zeroes not sent as data", "write of a sparse image")
        vdisk_kib = os.stat(os.path.join(d, "s")).st_blocks // 2
        check(vdisk_kib <= 2048, "the vdisk stays sparse",
              f"{vdisk_kib} KiB allocated for 5 bytes")
        expect([adm, "read", "--agent", agent_addr, "s", back], 0, "",
               "read into a file")
        check(open(back, "rb").read() == open(img, "rb").read(),
              "the bytes read back are the image's")
        back_kib = os.stat(back).st_blocks // 2
        check(back_kib <= 2048, "the output file stays sparse",
              f"{back_kib} KiB allocated for 5 bytes")
        data = os.urandom(3 << 20)
        r = subprocess.run([adm, "write", "--agent", agent_addr,
                            "--offset", "1M", "s", "-"], input=data,
                           capture_output=True, timeout=60)
        check(r.returncode == 0 and b"wrote 3145728 bytes" in r.stdout,
              "write from standard input, until it ends",
              (r.stdout + r.stderr).decode(errors="replace"))
        check(b"MiB/s" not in r.stderr,
              "no progress when stderr is not a terminal",
              r.stderr.decode(errors="replace"))
        r = subprocess.run([adm, "read", "--agent", agent_addr, "--progress",
                            "--length", "3M", "s", os.devnull],
                           capture_output=True, text=True, timeout=60)
        check(r.returncode == 0 and
              re.search(r"^read: 3 MiB in \d+ s, [0-9.]+ MiB/s$", r.stderr,
                        re.M) is not None,
              "--progress in a log: a last line with the rate", r.stderr)
        r = subprocess.run([adm, "read", "--agent", agent_addr, "--offset",
                            "1M", "--length", "3M", "s", "-"],
                           capture_output=True, timeout=60)
        check(r.returncode == 0 and r.stdout == data,
              "read to standard output (a pipe)",
              r.stderr.decode(errors="replace"))
    finally:
        agent.terminate()
        agent.wait(timeout=30)


def lock_command(vxhsd, adm, d):
    """vxhsadm lock shows a vdisk's lock and --break fences its holder;
    stat shows it too; delete and create take a vdisk's lock record with
    it (a new vdisk of an old name is not locked)."""
    sock = os.path.join(d, "lock.sock")
    record = os.path.join(d, ".l.lock")
    subprocess.run([adm, "create", "--dir", d, "l", "1M"], check=True,
                   capture_output=True)
    agent = start_vxhsd(vxhsd, d, sock)
    at = ["--agent", "unix:" + sock]
    try:
        expect([adm, "lock"] + at + ["l"], 0, "free (never taken)",
               "vxhsadm lock of a vdisk never locked")
        expect([adm, "lock", "--break"] + at + ["l"], 0,
               "broke the lock of vdisk l: epoch 1, free now",
               "vxhsadm lock --break")
        expect([adm, "lock"] + at + ["l"], 0,
               "free (last held by vxhsadm@", "vxhsadm lock after a break")
        expect([adm, "stat"] + at + ["l"], 0, "epoch 1",
               "vxhsadm stat shows the lock")
        expect([adm, "lock"] + at, 2, "lock", "vxhsadm lock without a vdisk")
        expect([adm, "lock", "--brake"] + at + ["l"], 2, "unrecognized",
               "vxhsadm lock with an unknown option")
    finally:
        agent.terminate()
        agent.wait(timeout=30)
    check(os.path.exists(record), "the lock record is beside the vdisk")
    expect([adm, "delete", "--dir", d, "l"], 0, "deleted vdisk l",
           "vxhsadm delete of a vdisk that was locked")
    check(not os.path.exists(record), "delete removed the lock record")
    open(record, "wb").close()
    expect([adm, "create", "--dir", d, "l", "1M"], 0, "created vdisk l",
           "vxhsadm create where an old lock record lies")
    check(not os.path.exists(record), "create removed the old lock record")


def tls_speed(tool):
    """The TLS benchmark's helper measures the cipher and a TLS 1.3 session
    both ways and refuses a duration it cannot use."""
    r = subprocess.run([tool, "0.2"], capture_output=True, text=True,
                       timeout=60)
    m = re.fullmatch(r"encrypt_mibps=(\d+) decrypt_mibps=(\d+) "
                     r"send_mibps=(\d+) recv_mibps=(\d+) "
                     r"aes_gcm=(GnuTLS|ipsec-mb-[A-Z0-9]+)\n", r.stdout)
    check(r.returncode == 0 and m and
          all(int(v) > 0 for v in m.groups()[:4]),
          "tls-speed measures AES-128-GCM and TLS 1.3 records",
          r.stdout + r.stderr)
    for bad in ["0", "fast", "61", "1s"]:
        expect([tool, bad], 2, "tls-speed [SECONDS]",
               f"tls-speed refuses {bad!r}")


def main():
    vxhsd, adm, speed = sys.argv[1], sys.argv[2], sys.argv[3]
    with tempfile.TemporaryDirectory() as d:
        conf = os.path.join(d, "bad.conf")
        with open(conf, "w") as f:
            f.write("[vxhsd]\ndir=/tmp\nporrt=1\n")
        expect([vxhsd], 2, "no vdisk directory", "vxhsd without --dir")
        expect([vxhsd, "--dir", d, "--port", "70000"], 2,
               "invalid value '70000' for --port (out of range)",
               "vxhsd port out of range")
        expect([vxhsd, "--dir", d, "--max-io", "lots"], 2,
               "invalid value 'lots' for --max-io", "vxhsd bad size")
        expect([vxhsd, "--dir", d, "--bogus"], 2, "unrecognized option",
               "vxhsd unknown option")
        expect([vxhsd, "--config", conf], 2, "key 'porrt': unknown key",
               "configuration file with an unknown key")
        # Another program on the IPv4 port: vxhsd does not serve the
        # IPv6 address alone (part of the clients would reach the other).
        squat = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        squat.bind(("0.0.0.0", 0))
        squat.listen(1)
        port = str(squat.getsockname()[1])
        expect([vxhsd, "--dir", d, "--port", port, "--allow-plaintext"], 1,
               "cannot listen on 0.0.0.0:" + port,
               "vxhsd refuses to serve some addresses when another "
               "program holds the port on one")
        squat.close()
        # resize looks before it opens: a FIFO would hang it, a hard
        # link may be another file's name.
        fifo_dir = os.path.join(d, "odd")
        os.mkdir(fifo_dir)
        os.mkfifo(os.path.join(fifo_dir, "fifo"))
        expect([adm, "resize", "--dir", fifo_dir, "fifo", "1M"], 1,
               "not a regular file", "vxhsadm resize of a FIFO")
        with open(os.path.join(d, "elsewhere"), "wb") as f:
            f.truncate(4096)
        os.link(os.path.join(d, "elsewhere"),
                os.path.join(fifo_dir, "linked"))
        expect([adm, "resize", "--dir", fifo_dir, "linked", "1M"], 1,
               "hard links", "vxhsadm resize of a file with another name")
        check(os.path.getsize(os.path.join(d, "elsewhere")) == 4096,
              "the hard-linked file kept its size", "it was resized")
        badutf = os.path.join(d, "utf.conf")
        with open(badutf, "wb") as f:
            f.write(b"[vxhsd]\ndir=/tmp\nacl=/etc/\xff\n")
        expect([vxhsd, "--config", badutf], 2, "line 3: not valid UTF-8",
               "configuration file with a byte that is not UTF-8")
        expect([vxhsd, "--config", os.path.join(d, "none.conf")], 2,
               "none.conf", "missing configuration file named explicitly")
        expect([vxhsd, "--dir", os.path.join(d, "nope"), "--no-tcp",
                "--unix", os.path.join(d, "s")], 1,
               "cannot open the vdisk directory", "vxhsd missing directory")
        expect([vxhsd, "--dir", d, "--no-tcp"], 1,
               "nothing to listen on", "vxhsd with nothing to listen on")
        expect([vxhsd, "--help"], 0, "Usage: vxhsd", "vxhsd --help")
        # TCP is TLS or, when asked for, plaintext; never silently either.
        expect([vxhsd, "--dir", d, "--port", "0"], 1,
               "TCP without TLS is off", "vxhsd TCP without TLS")
        expect([vxhsd, "--dir", d, "--tls-dir", d, "--allow-plaintext"], 2,
               "exclude each other", "vxhsd TLS and plaintext together")
        expect([vxhsd, "--dir", d, "--allow-plaintext", "--kernel-tls"], 2,
               "--kernel-tls without --tls-dir",
               "vxhsd kernel TLS without TLS")
        expect([vxhsd, "--dir", d, "--port", "0", "--tls-dir",
                os.path.join(d, "nope")], 1,
               "TLS directory " + os.path.join(d, "nope"),
               "vxhsd missing TLS directory")
        acl = os.path.join(d, "acl")
        for text, why in [("dns:gw rw\n", "expected WHO VDISKS RIGHTS"),
                          ("dns:gw * rwx\n", "rights 'rwx'"),
                          ("host:gw * ro\n", "'host:gw' names nobody"),
                          ("user:no-such-user-x * ro\n", "no user"),
                          ("dns: * ro\n", "empty name after 'dns:'")]:
            with open(acl, "w") as f:
                f.write("# comment\n" + text)
            expect([vxhsd, "--dir", d, "--no-tcp", "--acl", acl], 2,
                   f"{acl}:2: {why}", f"access list line '{text.strip()}'")

        # A vdisk created by root in the directory of an agent running as
        # its own user belongs to that user.
        # Needs root (as the tests run, README): never skipped silently.
        if check(os.geteuid() == 0, "running as root",
                 "run the tests as root"):
            owned = os.path.join(d, "owned")
            os.mkdir(owned)
            os.chown(owned, 65534, 65534)
            expect([adm, "create", "--dir", owned, "v", "1M"], 0,
                   "created vdisk v", "vxhsadm create as root")
            st = os.stat(os.path.join(owned, "v"))
            check((st.st_uid, st.st_gid) == (65534, 65534),
                  "the new vdisk belongs to the directory's owner",
                  f"owner {st.st_uid}:{st.st_gid}")

        expect([adm], 2, "Usage: vxhsadm", "vxhsadm without a command")
        expect([adm, "frobnicate"], 2, "unknown command 'frobnicate'",
               "vxhsadm unknown command")
        for c in ["create", "resize", "delete", "list", "stat", "lock",
                  "read", "write", "bench"]:
            expect([adm, c, "--help"], 0, f"Usage: vxhsadm {c}",
                   f"vxhsadm {c} --help")
        expect([adm, "create", "--dir", d, "../x", "1G"], 2,
               "vdisk id '../x' is invalid", "create with a path in the id")
        expect([adm, "create", "--dir", d, "a" * 64, "1G"], 2,
               "is invalid", "create with a 64-character id")
        expect([adm, "create", "--dir", d, "v", "1000"], 2,
               "multiple of 512", "create with an odd size")
        expect([adm, "create", "--dir", d, "v", "12Q"], 2, "not a size",
               "create with a bad size")
        expect([adm, "create", "--dir", d, "v", "1M"], 0, "created vdisk v",
               "create")
        expect([adm, "create", "--dir", d, "v", "1M"], 1,
               "it already exists", "create over an existing vdisk")
        expect([adm, "resize", "--dir", d, "v", "512K"], 1, "add --shrink",
               "shrinking needs --shrink")
        expect([adm, "resize", "--dir", d, "v", "2M"], 0,
               "from 1 MiB to 2 MiB", "resize")
        expect([adm, "list", "--dir", d], 0, "2 MiB", "list")
        expect([adm, "delete", "--dir", d, "nope"], 1, "no vdisk nope",
               "delete a missing vdisk")
        expect([adm, "stat", "--agent", "127.0.0.1:1", "v"], 2,
               "agent 127.0.0.1:1 is reached over TCP, and no TLS "
               "credentials are set up: put ca.pem, cert.pem and key.pem in "
               "/nonexistent/vxhs-tls or give --tls-dir; or "
               "--allow-plaintext", "TCP without TLS is refused by default")
        expect([adm, "stat", "--agent", "127.0.0.1:1", "--allow-plaintext",
                "v"], 1, "Connection refused",
               "stat against no agent, plaintext allowed")
        expect([adm, "stat", "--agent", "h", "--tls-dir", "/x",
                "--allow-plaintext", "v"], 2,
               "both --tls-dir and --allow-plaintext given",
               "TLS and plaintext at once")
        expect([adm, "stat", "--agent", "127.0.0.1:1", "--allow-plaintext",
                "--kernel-tls", "v"], 2,
               "--kernel-tls is for TLS to TCP agents, and there is none",
               "kernel TLS without TLS")
        expect([adm, "stat", "--agent", "unix:/x", "--kernel-tls", "v"], 2,
               "--kernel-tls is for TLS to TCP agents",
               "kernel TLS to a UNIX socket")
        expect([adm, "stat", "--agent", "unix:/nonexistent/sock", "v"], 1,
               "agent unix:/nonexistent/sock: Connection refused",
               "a UNIX socket needs no TLS")
        expect([adm, "stat", "v"], 1, "unix:/run/vxhsd/vxhsd.sock",
               "the default agent is the local vxhsd's socket")
        expect([adm, "stat", "--agent", "127.0.0.1:0", "v"], 2,
               "port '0' is not a number from 1 to 65535", "bad agent port")
        expect([adm, "stat", "--agent", "[::1", "v"], 2, "missing ']'",
               "bad IPv6 agent address")
        expect([adm, "bench", "--qd", "0", "v"], 2, "--qd takes 1 to 4096",
               "bench with queue depth 0")
        expect([adm, "bench", "--io-threads", "0", "v"], 2,
               "--io-threads takes a number from 1 to 64",
               "no I/O threads")
        expect([adm, "bench", "--io-threads", "65", "v"], 2,
               "--io-threads takes a number from 1 to 64",
               "too many I/O threads")
        expect([adm, "bench"], 2, "expected one or more vdisks",
               "bench without a vdisk")
        expect([adm, "delete", "--dir", d, "v"], 0, "deleted vdisk v",
               "delete")
        sparse_and_pipes(vxhsd, adm, d)
        bench_reports(vxhsd, adm, d)
        lock_command(vxhsd, adm, d)
    tls_speed(speed)
    finish("cli_check")


if __name__ == "__main__":
    main()
