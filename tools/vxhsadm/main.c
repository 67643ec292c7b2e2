// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/* vxhsadm: one command for vdisk administration and diagnostics. */
#include <stdio.h>
#include <string.h>

#include "vxhsadm.h"

static const struct command commands[] = {
	{ "create", "create a vdisk file in an agent's directory", cmd_create },
	{ "resize", "grow (or --shrink) a vdisk", cmd_resize },
	{ "delete", "delete a vdisk", cmd_delete },
	{ "list", "list the vdisks in an agent's directory", cmd_list },
	{ "stat", "ask an agent for a vdisk's size and extensions", cmd_stat },
	{ "read", "copy a vdisk into a file", cmd_read },
	{ "write", "copy a file into a vdisk", cmd_write },
	{ "lock", "who holds a vdisk's lock; --break it", cmd_lock },
	{ "status", "who is connected to a vxhsd, and what each does",
	  cmd_status },
	{ "bench", "measure IOPS, throughput and latency", cmd_bench },
	{ "fault", "make a test agent misbehave (vxhsd --control)", cmd_fault },
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: vxhsadm COMMAND [OPTION]... [ARG]...\n"
		"Administer and test vdisks served by HyperScale agents and vxhsd.\n\n"
		"Commands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-8s %s\n", commands[i].name,
			commands[i].summary);
	fprintf(f, "\n'vxhsadm COMMAND --help' describes a command.\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
	    !strcmp(argv[1], "help")) {
		usage(stdout);
		return EXIT_OK;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
		printf("vxhsadm %s\n", VXHS_VERSION);
		return EXIT_OK;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].run(argc - 1, argv + 1);
	fprintf(stderr, "vxhsadm: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return EXIT_USAGE;
}
