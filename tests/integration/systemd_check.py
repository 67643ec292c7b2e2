#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
"""vxhsd under systemd's protocols, without systemd running:

- sd_notify: READY=1 once listening, STOPPING=1 on SIGTERM, through a
  NOTIFY_SOCKET datagram socket as systemd provides it;
- socket activation: systemd-socket-activate passes a listening socket, and
  a client served through it gets answers (vxhsadm stat);
- the shipped units: the UNIX socket's group exists once the sysusers file
  is applied.
"""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

# TLS credentials this machine may have in /etc/vxhs/tls play no part.
os.environ["VXHS_TLS_DIR"] = "/nonexistent/vxhs-tls"

passed = failed = 0


def check(cond, what):
    global passed, failed
    print(("ok - " if cond else "not ok - ") + what)
    if cond:
        passed += 1
    else:
        failed += 1


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def notify(vxhsd, tmp, vdir):
    path = os.path.join(tmp, "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(10)
    env = dict(os.environ, NOTIFY_SOCKET=path)
    proc = subprocess.Popen([vxhsd, "--dir", vdir, "--listen", "127.0.0.1",
                             "--port", "0", "--log-level", "warning",
                             "--allow-plaintext"],
                            env=env)
    try:
        msg = sock.recv(4096).decode()
        check("READY=1" in msg.split("\n"), f"READY=1 once listening ({msg!r})")
        proc.send_signal(signal.SIGTERM)
        msg = sock.recv(4096).decode()
        check("STOPPING=1" in msg.split("\n"),
              f"STOPPING=1 on SIGTERM ({msg!r})")
    finally:
        check(proc.wait(timeout=30) == 0, "exits 0 after SIGTERM")
        sock.close()


def activation(vxhsd, vxhsadm, tmp, vdir):
    activate = shutil.which("systemd-socket-activate")
    if not activate:
        print("Bail out! systemd-socket-activate is missing (package systemd)")
        sys.exit(1)
    port = free_port()
    status = os.path.join(tmp, "status.sock")
    proc = subprocess.Popen([activate, "-l", f"127.0.0.1:{port}",
                             "-l", status, "--fdname=vxhsd:status", vxhsd,
                             "--dir", vdir, "--log-level", "warning",
                             "--allow-plaintext"],
                            stderr=subprocess.PIPE)
    try:
        out = None
        for _ in range(100):
            r = subprocess.run([vxhsadm, "stat", "--agent",
                                f"127.0.0.1:{port}", "--allow-plaintext",
                                "disk0"],
                               capture_output=True, text=True)
            if r.returncode == 0:
                out = r.stdout
                break
            time.sleep(0.1)
        check(out is not None and "size:        1048576 bytes" in out,
              "a client is served through the socket systemd passed")
        r = subprocess.run([vxhsadm, "status", "--socket", status],
                           capture_output=True, text=True)
        check(r.returncode == 0 and "serving " + vdir in r.stdout,
              "the socket named 'status' answers vxhsadm status")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    err = proc.stderr.read().decode()
    check("listening on" not in err,
          "vxhsd opened no sockets of its own when given one")


def shipped_config(vxhsd, conf, vdir):
    """The installed vxhsd.conf is TLS by default: without credentials
    the agent refuses to start and names the missing directory. Checked
    on a copy whose TLS directory is one that surely does not exist, so
    that a host with /etc/vxhs/vxhsd-tls proves the same."""
    text = open(conf).read()
    check("tls-dir=/etc/vxhs/vxhsd-tls" in text.replace(" ", ""),
          "shipped vxhsd.conf names /etc/vxhs/vxhsd-tls")
    missing = os.path.join(os.path.dirname(vdir), "no-tls-here")
    copy = os.path.join(os.path.dirname(vdir), "vxhsd.conf")
    with open(copy, "w") as f:
        f.write(text.replace("/etc/vxhs/vxhsd-tls", missing))
    r = subprocess.run([vxhsd, "--config", copy, "--dir", vdir,
                        "--listen", "127.0.0.1", "--port", "0"],
                       capture_output=True, text=True, timeout=30)
    check(r.returncode != 0 and
          f"TLS directory {missing}: No such file or directory"
          in r.stderr,
          f"shipped vxhsd.conf wants TLS credentials ({r.stderr.strip()!r})")


def socket_group(unit, sysusers, tmp):
    """The UNIX socket's group is one the shipped sysusers file creates,
    so the users of the access list's user: rules can reach the socket."""
    group = None
    for line in open(unit):
        if line.startswith("SocketGroup="):
            group = line.split("=", 1)[1].strip()
    check(group is not None and group != "root",
          f"vxhsd.socket gives its UNIX socket a group ({group})")
    tool = shutil.which("systemd-sysusers")
    if not tool:
        print("Bail out! systemd-sysusers is missing (package systemd)")
        sys.exit(1)
    root = os.path.join(tmp, "sysroot")
    os.makedirs(os.path.join(root, "etc"))
    subprocess.run([tool, f"--root={root}", sysusers], check=True,
                   capture_output=True)
    groups = [l.split(":")[0] for l in open(os.path.join(root, "etc/group"))]
    check(group in groups,
          f"the sysusers file creates group {group} (made: {groups})")


def main():
    vxhsd, vxhsadm, conf = sys.argv[1], sys.argv[2], sys.argv[3]
    sysdir = os.path.dirname(conf)
    with tempfile.TemporaryDirectory() as tmp:
        vdir = os.path.join(tmp, "vdisks")
        os.mkdir(vdir)
        with open(os.path.join(vdir, "disk0"), "wb") as f:
            f.truncate(1 << 20)
        notify(vxhsd, tmp, vdir)
        activation(vxhsd, vxhsadm, tmp, vdir)
        shipped_config(vxhsd, conf, vdir)
        socket_group(os.path.join(sysdir, "vxhsd.socket"),
                     os.path.join(sysdir, "vxhsd.sysusers"), tmp)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
