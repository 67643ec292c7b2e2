/* SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later */
/*
 * Test harness: real vxhsd processes on scratch directories, a scriptable
 * fake agent for misbehaviour real agents must not show, and synchronous
 * wrappers over the asynchronous client API.
 */
#ifndef VXHS_TEST_HARNESS_H
#define VXHS_TEST_HARNESS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "vxhs/client.h"

struct agent {
	pid_t pid;
	char dir[256];
	char sock[300];
	char ctl[300]; /* fault injection (vxhsd --control) */
	unsigned int port;
};

/* A scratch directory under $TMPDIR, removed by scratch_remove. */
void scratch_make(char *dir, size_t len);
void scratch_remove(const char *dir);
void vdisk_make(const char *dir, const char *id, uint64_t size);
/* Writes buf at the start of dir/id and drops it from the page cache
 * (fails the test on tmpfs, which keeps it). Before an agent reads it. */
void vdisk_write_uncached(const char *dir, const char *id, const void *buf,
			  size_t len);

/* Starts vxhsd on dir; port 0 picks one. Fails the test on error. */
void agent_start(struct agent *a, const char *dir, unsigned int port);
/* The same with extra vxhsd arguments (NULL-terminated) instead of
 * --allow-plaintext. */
void agent_start_args(struct agent *a, const char *dir, unsigned int port,
		      const char *const *extra);
void agent_kill(struct agent *a, int sig);
/* Sends one fault injection command (vxhsd --control, docs/agent.md);
 * fails the test unless the agent answers "ok". Returns the answer. */
const char *agent_fault(const struct agent *a, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* The agent's count of requests of one opcode ("read", "flush"...), or
 * another of its counters ("on-loop", "ring"...). */
unsigned long agent_counter(const struct agent *a, const char *opcode);
/* Whether the file system of dir reads with RWF_NOWAIT (tmpfs in Linux
 * 6.1 does not: the agent asks mincore there, and makes no batches). */
bool dir_reads_nowait(const char *dir);
void agent_opts(struct vxhs_open_opts *o, const struct agent *const *agents,
		unsigned int n);
/* Default options naming one agent by its UNIX socket. */
void agent_opts_unix(struct vxhs_open_opts *o, const struct agent *a);

/* Runs only the tests whose names match $VXHS_TEST (a glob), if set;
 * exits with a message when it matches none of them. */
void test_select_from_env_of(const struct CMUnitTest *tests, size_t n);
#define test_select_from_env(tests) \
	test_select_from_env_of(tests, sizeof(tests) / sizeof((tests)[0]))

#define TEST_IO_THREADS 3
struct vxhs_ctx *test_ctx(void);

/* Synchronous wrappers: return the completion result. */
int sync_pread(struct vxhs_vdisk *vd, void *buf, uint64_t len, uint64_t off);
int sync_pwrite(struct vxhs_vdisk *vd, const void *buf, uint64_t len,
		uint64_t off);

/* Counts completions across threads. */
struct tally {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned int pending;
	unsigned int ok;
	unsigned int failed;
	int first_error;
};

void tally_init(struct tally *t);
void tally_add(struct tally *t);
void tally_done(void *opaque, int result);
/* Waits for pending to reach 0 or timeout_ms; returns pending left. */
unsigned int tally_wait(struct tally *t, unsigned int timeout_ms);

/* fake_agent.c: a TCP agent whose answers the test scripts. */
enum fake_mode {
	FAKE_GOOD,		/* a plain v34 agent, no extensions */
	FAKE_BAD_COOKIE_ONCE,	/* first READ answered with a wrong cookie */
	FAKE_BAD_COOKIE_ALWAYS, /* every READ answered with a wrong cookie */
	FAKE_SHORT_READ,	/* every READ answered with io_size - 1 bytes */
	FAKE_MEDIA_ERROR,	/* every READ and WRITE answered err EIO */
	FAKE_ODD_NAME,		/* names itself with control characters */
	/* offers COMPARE_AND_WRITE, and answers each with EILSEQ at an
	 * offset past the range compared */
	FAKE_CAW_BAD_OFFSET,
	/* offers the lock, and answers LOCK_ACQUIRE naming another owner,
	 * LOCK_QUERY with an owner of control characters */
	FAKE_LOCK_LIES,
};

struct fake_agent {
	pthread_t thread;
	int listen_fd;
	int wake[2];
	unsigned int port;
	enum fake_mode mode;
	uint64_t size;
	uint8_t *data;
	/* what it saw */
	atomic_uint reads, bad_answers, connections, failover_probes;
	atomic_uint unknown_opcodes;
};

void fake_start(struct fake_agent *f, enum fake_mode mode, uint64_t size);
void fake_stop(struct fake_agent *f);

#endif
