/* SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later */
/* The entry points libFuzzer calls, and how a harness stops a run. */
#ifndef VXHS_FUZZ_H
#define VXHS_FUZZ_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * Stops the run with the input kept by libFuzzer. A bare abort() leaves a
 * CI log with a stack of libFuzzer's frames only: say which check failed,
 * and for a system call or a library the machine's reason, so that a
 * failure of the rig is told apart from a bug found.
 */
static inline __attribute__((noreturn)) void
fuzz_fail_at(const char *file, int line, const char *what, int err)
{
	if (err)
		fprintf(stderr, "%s:%d: %s: %s\n", file, line, what,
			strerror(err));
	else
		fprintf(stderr, "%s:%d: %s\n", file, line, what);
	abort();
}

/* A property of the code under test does not hold. */
#define fuzz_fail(what) fuzz_fail_at(__FILE__, __LINE__, (what), 0)
/* The rig could not be set up: a system call failed, errno says why. */
#define fuzz_fail_sys(what) fuzz_fail_at(__FILE__, __LINE__, (what), errno)

#endif
