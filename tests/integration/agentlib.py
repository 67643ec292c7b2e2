# SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
"""What the Python checks share: a pass/fail tally, and a vxhsd on a UNIX
socket in a scratch directory."""
import os
import socket
import subprocess
import sys
import time

failed = 0


def check(ok, what, detail=""):
    """Reports one assertion; finish() exits non-zero if any failed."""
    global failed
    print(("ok - " if ok else "not ok - ") + what)
    if not ok:
        failed += 1
        if detail:
            print("#   " + str(detail).replace("\n", "\n#   "))
    return ok


def finish(name):
    if failed:
        sys.exit(f"{name}: {failed} check(s) failed")
    print(f"{name}: ok")


def accepts(path):
    """Whether a UNIX socket is there and listening: its file appears at
    bind, a moment before listen, when a connect is still refused."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        try:
            s.connect(path)
        except (FileNotFoundError, ConnectionRefusedError):
            return False
    return True


def start_vxhsd(vxhsd, vdir, sock, *extra):
    """vxhsd serving vdir on sock alone; returns once it accepts, and its
    control and status sockets (opened after the listeners) do too."""
    agent = subprocess.Popen([vxhsd, "--dir", vdir, "--no-tcp", "--unix",
                              sock, "--log-level", "warning", *extra])
    sockets = [sock] + [extra[i + 1] for i, a in enumerate(extra[:-1])
                        if a in ("--status", "--control")]
    for _ in range(200):
        if all(accepts(s) for s in sockets):
            return agent
        if agent.poll() is not None:
            sys.exit(f"vxhsd exited with {agent.returncode} at start")
        time.sleep(0.05)
    agent.kill()
    sys.exit("vxhsd did not create its sockets in 10 s")


def stop_vxhsd(agent):
    """SIGTERM, and vxhsd must exit 0 (it finishes what is in flight)."""
    agent.terminate()
    rc = agent.wait(timeout=60)
    check(rc == 0, "vxhsd exits 0 on SIGTERM", f"exit {rc}")


def nbdkit(plugin, args, run, timeout=120):
    """nbdkit with our plugin on a private socket, running a command (run
    None: nbdkit's own output, for --help)."""
    cmd = ["nbdkit", "-U", "-", plugin, *args]
    if run:
        cmd += ["--run", run]
    return subprocess.run(cmd, capture_output=True, text=True,
                          timeout=timeout)
