// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * vxhsadm status: asks a vxhsd, on its status socket, who is connected,
 * what each connection has in flight and what it did with each vdisk.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "vxhsadm.h"

#define DEFAULT_STATUS_SOCKET "/run/vxhsd/status.sock"

static const char help[] =
	"Usage: vxhsadm status [--socket=PATH] [--json]\n"
	"Show a vxhsd's connections (peer, identity, transport, age, requests\n"
	"in flight) and, for each vdisk in use, its connections, reads, writes,\n"
	"bytes and errors since they connected.\n"
	"\n"
	"  -s, --socket=PATH    vxhsd's status socket (default " DEFAULT_STATUS_SOCKET
	";\n"
	"                       vxhsd --status=PATH, or vxhsd-status.socket)\n"
	"      --json           one JSON document instead of tables\n";

int cmd_status(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = DEFAULT_STATUS_SOCKET;
	bool json = false, any = false;
	char buf[16384];
	ssize_t n;
	int opt, fd;

	while ((opt = getopt_long(argc, argv, "s:h", opts, NULL)) != -1) {
		if (opt == 's')
			path = optarg;
		else if (opt == 'j')
			json = true;
		else
			help_or_die("status", help, opt);
	}
	expect_args("status", argc - optind, 0);
	fd = unix_request(path, json ? "json\n" : "text\n", 5,
			  "is vxhsd running with --status, or "
			  "vxhsd-status.socket enabled? root only");
	if (fd < 0)
		return EXIT_FAIL;
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		if (!any && !strncmp(buf, "error:", 6)) {
			errorf("%s: %.*s", path, (int)strcspn(buf, "\n"), buf);
			close(fd);
			return EXIT_FAIL;
		}
		any = true;
		fwrite(buf, 1, (size_t)n, stdout);
	}
	close(fd);
	if (!any) {
		errorf("%s gave no answer", path);
		return EXIT_FAIL;
	}
	return EXIT_OK;
}
