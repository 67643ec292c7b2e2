// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * vxhsadm fault: drives the fault injection of a vxhsd started with
 * --control=PATH (docs/agent.md): sends one command line, prints the
 * answer, exits 0 when the agent said "ok".
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "vxhsadm.h"

#define LINE_MAX_ 512

static const char help[] =
	"Usage: vxhsadm fault --control=PATH COMMAND [ARG]...\n"
	"Make a vxhsd started with --control=PATH misbehave on purpose, for\n"
	"tests (off in production).\n\n"
	"  -c, --control=PATH   the agent's control socket\n\n"
	"Commands:\n"
	"  fail OPCODE VDISK ERRNO [COUNT]  answer matching requests with ERRNO\n"
	"  delay OPCODE VDISK MS [COUNT]    hold them MS milliseconds first\n"
	"  truncate OPCODE VDISK [COUNT]    cut their answers short, then close\n"
	"  pause | resume                   hold every answer / let them go\n"
	"  stop-reading WHO | resume-reading WHO\n"
	"  drop WHO                         close connections\n"
	"  hide EXT... | show EXT...        leave extensions out of VDISK_STAT\n"
	"                                   (flush, write-zeroes, discard,\n"
	"                                   compare-and-write, lock,\n"
	"                                   write-same, copy, all)\n"
	"  clear                            remove every rule, end delays\n"
	"  list                             the rules and their hits\n"
	"  counters                         requests seen per opcode\n\n"
	"OPCODE: read, write, flush, discard, write-zeroes, compare-and-write,\n"
	"write-same, copy, lock-acquire, lock-release, lock-query, stat,\n"
	"failover-ready or any. VDISK: a shell pattern. ERRNO: EIO,\n"
	"ENOSPC, EAGAIN... or a number. WHO: all, a peer (127.0.0.1:40000),\n"
	"an address or an identity.\n";

int cmd_fault(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "control", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = NULL;
	char line[LINE_MAX_], answer[4096];
	size_t len = 0, got = 0;
	int opt, fd;

	while ((opt = getopt_long(argc, argv, "+c:h", opts, NULL)) != -1) {
		if (opt == 'c')
			path = optarg;
		else
			help_or_die("fault", help, opt);
	}
	if (!path)
		die_usage("fault", "--control is required");
	if (optind >= argc)
		die_usage("fault", "no command");
	if (strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
		die_usage("fault", "--control path too long");
	for (int i = optind; i < argc; i++) {
		size_t n = strlen(argv[i]);

		if (!n || strchr(argv[i], ' ') || strchr(argv[i], '\n') ||
		    len + n + 2 > sizeof(line))
			die_usage(
				"fault",
				"argument '%s' is empty, too long or has spaces",
				argv[i]);
		memcpy(line + len, argv[i], n);
		len += n;
		line[len++] = i + 1 < argc ? ' ' : '\n';
	}
	fd = unix_request(path, line, len, "was vxhsd started with --control?");
	if (fd < 0)
		return EXIT_FAIL;
	while (got < sizeof(answer) - 1) {
		ssize_t n = read(fd, answer + got, sizeof(answer) - 1 - got);

		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	answer[got] = '\0';
	if (!got) {
		errorf("%s gave no answer", path);
		return EXIT_FAIL;
	}
	fputs(answer, stdout);
	return strncmp(answer, "ok", 2) ? EXIT_FAIL : EXIT_OK;
}
