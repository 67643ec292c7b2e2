#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
"""Where a machine's CPU time goes per I/O, thread by thread.

    thread_cpu.py snap FILE          record every thread's run time now
    thread_cpu.py diff A B IOS       print CPU microseconds per I/O between
                                     the snapshots A and B, by thread

Run time comes from /proc/PID/task/TID/schedstat (nanoseconds, user and
kernel time of that thread, system calls included); interrupts, softirqs
and idle time from /proc/stat. Threads are grouped as "process/thread"
with digits dropped from thread names (tcmu-runner names a LUN's thread
after its uio device), so one LUN's run reads the same as another's.
Benchmarks use it to show which thread of the path users run costs what
(docs/performance.md).
"""
import json
import os
import re
import sys

TICK_NS = 1e9 / os.sysconf("SC_CLK_TCK")


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:  # the thread ended meanwhile
        return None


def snapshot():
    threads = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        proc = read(f"/proc/{pid}/comm")
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            sched = read(f"/proc/{pid}/task/{tid}/schedstat")
            name = read(f"/proc/{pid}/task/{tid}/comm")
            if sched is None or name is None or proc is None:
                continue
            threads[tid] = [group(proc.strip(), name.strip()),
                            int(sched.split()[0])]
    cpu = read("/proc/stat").splitlines()[0].split()[1:]
    # user nice system idle iowait irq softirq steal
    ticks = [int(v) for v in cpu[:8]]
    return {"threads": threads, "irq": ticks[5] + ticks[6],
            "idle": ticks[3] + ticks[4]}


def group(proc, thread):
    # Kernel workers and per-CPU threads by kind, not by instance.
    thread = re.sub(r"[0-9]+", "", thread).replace(" ", "_")
    proc = re.sub(r"[0-9]+", "", proc).replace(" ", "_")
    return proc if thread == proc else f"{proc}/{thread}"


def diff(a, b, ios):
    per = {}
    for tid, (name, ns) in b["threads"].items():
        before = a["threads"].get(tid)
        # A thread born during the run counts from zero.
        start = before[1] if before and before[0] == name else 0
        per[name] = per.get(name, 0) + ns - start
    per["[irq+softirq]"] = (b["irq"] - a["irq"]) * TICK_NS
    per["[idle]"] = (b["idle"] - a["idle"]) * TICK_NS
    return {k: v / 1000 / ios for k, v in per.items() if v > 0}


def main(argv):
    if len(argv) == 3 and argv[1] == "snap":
        with open(argv[2], "w") as f:
            json.dump(snapshot(), f)
        return 0
    if len(argv) == 5 and argv[1] == "diff":
        ios = int(argv[4]) if argv[4].isdigit() else 0
        if ios <= 0:
            print("thread_cpu.py: IOS must be a positive count",
                  file=sys.stderr)
            return 2
        with open(argv[2]) as f:
            a = json.load(f)
        with open(argv[3]) as f:
            b = json.load(f)
        for name, us in sorted(diff(a, b, ios).items(),
                               key=lambda kv: -kv[1]):
            if us >= 1:
                print(f"{name} {us:.0f}")
        return 0
    print(__doc__.split("\n\n")[1], file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
