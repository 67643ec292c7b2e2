// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * The handler's cfgstring parser: any string is parsed or refused with a
 * message, never overrunning; a groups file is fuzzed by the same input
 * after the first newline.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "cfgstring.h"

static char groups[64];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	snprintf(groups, sizeof(groups), "/tmp/vxhs-fuzz-groups-%d", getpid());
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1), *nl;
	struct vxhs_cfg cfg;
	char err[512];
	FILE *f;

	memcpy(text, data, size);
	text[size] = '\0';
	nl = strchr(text, '\n');
	if (nl) {
		*nl = '\0';
		f = fopen(groups, "w");
		if (f) {
			fputs(nl + 1, f);
			fclose(f);
		}
	}
	err[0] = '\0';
	if (vxhs_cfg_parse(text, nl ? groups : "/nonexistent/agents.conf", &cfg,
			   err, sizeof(err)))
		if (!err[0] || !memchr(err, '\0', sizeof(err)))
			fuzz_fail("a refusal without a reason");
	free(text);
	return 0;
}
