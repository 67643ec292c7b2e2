#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
"""Argument checks of targetcli/vxhs-export (no LIO needed): every bad
argument is refused with a message naming it, before LIO is touched."""

import contextlib
import importlib.machinery
import importlib.util
import io
import os
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
PATH = os.path.join(HERE, "..", "..", "targetcli", "vxhs-export")
loader = importlib.machinery.SourceFileLoader("vxhs_export", PATH)
spec = importlib.util.spec_from_loader("vxhs_export", loader)
vx = importlib.util.module_from_spec(spec)
loader.exec_module(vx)


def run(*argv):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(
            io.StringIO()):
        try:
            rc = vx.main(list(argv))
        except SystemExit as e:  # argparse
            rc = e.code
    return rc, err.getvalue()


class Parsing(unittest.TestCase):
    def test_sizes(self):
        self.assertEqual(vx.parse_size("10G"), 10 << 30)
        self.assertEqual(vx.parse_size("512"), 512)
        self.assertEqual(vx.parse_size("64MiB"), 64 << 20)
        self.assertEqual(vx.parse_size("1t"), 1 << 40)
        for bad in ("", "0", "-1G", "1.5G", "10X", "G"):
            with self.assertRaises(vx.UsageError, msg=bad):
                vx.parse_size(bad)

    def test_portals(self):
        self.assertEqual(vx.parse_portal("10.0.0.1"), ("10.0.0.1", 3260))
        self.assertEqual(vx.parse_portal("10.0.0.1:3261"), ("10.0.0.1", 3261))
        self.assertEqual(vx.parse_portal("[fd00::5]:860"), ("fd00::5", 860))
        self.assertEqual(vx.parse_portal("[::]"), ("::", 3260))
        self.assertEqual(vx.parse_portal("fd00::5"), ("fd00::5", 3260))
        for bad in ("host.example", "10.0.0.1:0", "10.0.0.1:70000",
                    "[fd00::5", "10.0.0.1:x", "[zz::1]:3260"):
            with self.assertRaises(vx.UsageError, msg=bad):
                vx.parse_portal(bad)

    def test_initiators(self):
        ok = "iqn.1994-05.com.redhat:abc123"
        self.assertEqual(vx.check_initiator(ok.upper().replace("IQN", "iqn"),
                                            "--acl"), ok.lower())
        vx.check_initiator("eui.0123456789abcdef", "--acl")
        for bad in ("bogus", "iqn.94-05.com:x", "iqn.1994-05.com:a b",
                    "eui.0123"):
            with self.assertRaises(vx.UsageError, msg=bad):
                vx.check_initiator(bad, "--acl")

    def test_default_iqn(self):
        iqn = vx.default_iqn("Disk_1")
        self.assertTrue(iqn.endswith(":vxhs-disk-1"), iqn)
        vx.check_initiator(iqn, "--iqn")


class Refusals(unittest.TestCase):
    def refused(self, reason, *argv):
        rc, err = run(*argv)
        self.assertEqual(rc, 2, err)
        self.assertIn(reason, err)
        self.assertNotIn("Traceback", err)

    def test_add(self):
        acl = "iqn.2026-11.com.example:h1"
        self.refused("required: --size", "add", "disk1")
        self.refused("name 'a/b'", "add", "a/b", "--size", "1G")
        self.refused("--size 'lots'", "add", "d", "--size", "lots")
        self.refused("needs --acl", "add", "d", "--size", "1G")
        self.refused("exclude each other", "add", "d", "--size", "1G",
                     "--acl", acl, "--any-initiator")
        self.refused("exports nothing", "add", "d", "--size", "1G",
                     "--no-iscsi", "--no-loopback")
        self.refused("iSCSI options given with --no-iscsi", "add", "d",
                     "--size", "1G", "--no-iscsi", "--acl", acl)
        self.refused("go together", "add", "d", "--size", "1G", "--acl",
                     acl, "--chap-user", "u")
        self.refused("--cfgstring: empty", "add", "d", "--size", "1G",
                     "--no-iscsi", "--cfgstring", "vxhs/")
        self.refused("No such file", "add", "d", "--size", "1G", "--acl",
                     acl, "--chap-user", "u", "--chap-secret-file",
                     "/nonexistent/secret")

    def test_chap_secret_file(self):
        acl = "iqn.2026-11.com.example:h1"
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "secret")
            with open(path, "w") as f:
                f.write("short\n")
            os.chmod(path, 0o600)
            self.refused("12-255 printable", "add", "d", "--size", "1G",
                         "--acl", acl, "--chap-user", "u",
                         "--chap-secret-file", path)
            os.chmod(path, 0o640)
            self.refused("readable by others", "add", "d", "--size", "1G",
                         "--acl", acl, "--chap-user", "u",
                         "--chap-secret-file", path)

    def test_remove(self):
        self.refused("name '../x'", "remove", "../x")
        self.refused("required", "remove")


@unittest.skipIf(os.path.isdir("/sys/kernel/config/target"),
                 "this host has LIO; the e2e tier covers it")
class NoLio(unittest.TestCase):
    def test_says_what_is_missing(self):
        rc, err = run("list")
        self.assertEqual(rc, 1)
        if os.geteuid() == 0:
            self.assertIn("/sys/kernel/config/target is missing", err)
        else:
            self.assertIn("must run as root", err)


if __name__ == "__main__":
    sys.exit(unittest.main())
