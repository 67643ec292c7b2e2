// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * The client library against a real vxhsd whose fault injection (--control)
 * makes it misbehave: errors the agent answers reach the caller as they
 * are, delays and held answers are waited out or timed out and retried, a
 * dropped connection or a truncated answer is retried on a new one, and a
 * hung agent (answers held, not dead) is left for the other agent within
 * io_timeout. Waits are for completions, never for time to pass.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/util.h"
#include "harness.h"

#define DISK_SIZE (4ull << 20)
#define BLOCK	  4096
/* Long enough that nothing but a fault makes a request take it. */
#define WAIT_MS 20000

struct env {
	char dir[256];
	struct agent agent;
	struct vxhs_ctx *ctx;
	struct vxhs_vdisk *vd;
};

static struct env *env_open(struct env *e, unsigned int io_timeout_ms,
			    unsigned int max_attempts)
{
	const struct agent *one[] = { &e->agent };
	struct vxhs_open_opts o;

	scratch_make(e->dir, sizeof(e->dir));
	vdisk_make(e->dir, "disk", DISK_SIZE);
	agent_start(&e->agent, e->dir, 0);
	agent_opts(&o, one, 1);
	if (io_timeout_ms)
		o.io_timeout_ms = io_timeout_ms;
	if (max_attempts)
		o.max_attempts = max_attempts;
	e->ctx = test_ctx();
	assert_int_equal(vxhs_vdisk_open(e->ctx, "disk", &o, &e->vd), 0);
	return e;
}

static void env_close(struct env *e)
{
	vxhs_vdisk_close(e->vd);
	vxhs_ctx_free(e->ctx);
	agent_kill(&e->agent, SIGTERM);
	scratch_remove(e->dir);
}

static void fill(uint8_t *buf, uint8_t seed)
{
	for (int i = 0; i < BLOCK; i++)
		buf[i] = (uint8_t)(seed + i * 7);
}

/* Errors the agent answers reach the caller as they are, once each. */
static void errors_reach_the_caller(void **state)
{
	struct env e;
	uint8_t buf[BLOCK];

	env_open(&e, 0, 0);
	agent_fault(&e.agent, "fail read disk EIO 1");
	assert_int_equal(sync_pread(e.vd, buf, BLOCK, 0), -EIO);
	assert_int_equal(sync_pread(e.vd, buf, BLOCK, 0), 0);

	agent_fault(&e.agent, "fail write disk ENOSPC 1");
	assert_int_equal(sync_pwrite(e.vd, buf, BLOCK, 0), -ENOSPC);
	assert_int_equal(sync_pwrite(e.vd, buf, BLOCK, 0), 0);

	agent_fault(&e.agent, "fail flush disk EIO 1");
	assert_int_equal(vxhs_flush_sync(e.vd), -EIO);
	assert_int_equal(vxhs_flush_sync(e.vd), 0);

	agent_fault(&e.agent, "fail write-zeroes disk EACCES 1");
	assert_int_equal(vxhs_write_zeroes_sync(e.vd, 0, BLOCK), -EACCES);
	assert_non_null(strstr(agent_fault(&e.agent, "list"), "hits=1"));

	/* Codes outside the protocol's set are EIO, whatever they would mean
	 * to the library (ENOTCONN: failover gave up; 902 likewise). */
	agent_fault(&e.agent, "fail read disk ENOTCONN 1");
	assert_int_equal(sync_pread(e.vd, buf, BLOCK, 0), -EIO);
	agent_fault(&e.agent, "fail read disk 902 1");
	assert_int_equal(sync_pread(e.vd, buf, BLOCK, 0), -EIO);
	agent_fault(&e.agent, "fail write disk ECANCELED 1");
	assert_int_equal(sync_pwrite(e.vd, buf, BLOCK, 0), -EIO);
	agent_fault(&e.agent, "fail flush disk ETIMEDOUT 1");
	assert_int_equal(vxhs_flush_sync(e.vd), -EIO);
	assert_int_equal(sync_pread(e.vd, buf, BLOCK, 0), 0);
	env_close(&e);
}

/* EAGAIN from the agent: the caller is told to try again, nothing is
 * lost, and the next attempt works. */
static void eagain_is_transient(void **state)
{
	struct env e;
	uint8_t out[BLOCK], in[BLOCK];

	env_open(&e, 0, 0);
	fill(out, 3);
	agent_fault(&e.agent, "fail write disk EAGAIN 1");
	assert_int_equal(sync_pwrite(e.vd, out, BLOCK, 8192), -EAGAIN);
	assert_int_equal(sync_pwrite(e.vd, out, BLOCK, 8192), 0);
	assert_int_equal(sync_pread(e.vd, in, BLOCK, 8192), 0);
	assert_memory_equal(in, out, BLOCK);
	env_close(&e);
}

/* A slow FLUSH is waited for, and it is the agent that was asked. */
static void delayed_flush_completes(void **state)
{
	struct env e;
	unsigned long before;

	env_open(&e, 0, 0);
	before = agent_counter(&e.agent, "flush");
	agent_fault(&e.agent, "delay flush disk 300 1");
	assert_int_equal(vxhs_flush_sync(e.vd), 0);
	assert_int_equal(agent_counter(&e.agent, "flush"), before + 1);
	assert_non_null(strstr(agent_fault(&e.agent, "list"), "hits=1"));
	env_close(&e);
}

/*
 * Answers held (a hung agent, single): the request stays pending while
 * they are held, the client's io_timeout retries it, and once the agent
 * answers again it completes with the right data.
 */
static void paused_agent_is_waited_out(void **state)
{
	struct env e;
	struct tally t;
	uint8_t out[BLOCK], in[BLOCK];
	struct iovec iov = { in, BLOCK };

	env_open(&e, 300, 0);
	fill(out, 9);
	assert_int_equal(sync_pwrite(e.vd, out, BLOCK, 0), 0);
	agent_fault(&e.agent, "pause");
	tally_init(&t);
	tally_add(&t);
	assert_int_equal(vxhs_readv(e.vd, &iov, 1, 0, tally_done, &t), 0);
	/* Held: nothing comes back for several io_timeouts. */
	assert_int_equal(tally_wait(&t, 1000), 1);
	agent_fault(&e.agent, "resume");
	assert_int_equal(tally_wait(&t, WAIT_MS), 0);
	assert_int_equal(t.ok, 1);
	assert_memory_equal(in, out, BLOCK);
	env_close(&e);
}

/* The agent stops reading every connection it has: a request times out
 * on each in turn (each is replaced) until one on a new connection is
 * read; enough attempts for all of the pool's connections. */
static void stopped_reading_is_retried(void **state)
{
	struct env e;
	uint8_t buf[BLOCK];

	env_open(&e, 300, 16);
	assert_int_equal(sync_pread(e.vd, buf, BLOCK, 0), 0);
	agent_fault(&e.agent, "stop-reading all");
	assert_int_equal(sync_pread(e.vd, buf, BLOCK, 0), 0);
	env_close(&e);
}

/* Dropped connections and a truncated answer: the request goes again on
 * a new connection and the data is right. */
static void dropped_and_truncated_are_retried(void **state)
{
	struct env e;
	uint8_t out[BLOCK], in[BLOCK];

	env_open(&e, 0, 0);
	fill(out, 5);
	assert_int_equal(sync_pwrite(e.vd, out, BLOCK, 4096), 0);
	assert_non_null(strstr(agent_fault(&e.agent, "drop all"), "ok"));
	memset(in, 0, BLOCK);
	assert_int_equal(sync_pread(e.vd, in, BLOCK, 4096), 0);
	assert_memory_equal(in, out, BLOCK);

	agent_fault(&e.agent, "truncate read disk 1");
	memset(in, 0, BLOCK);
	assert_int_equal(sync_pread(e.vd, in, BLOCK, 4096), 0);
	assert_memory_equal(in, out, BLOCK);
	assert_non_null(strstr(agent_fault(&e.agent, "list"), "hits=1"));
	env_close(&e);
}

/*
 * Two agents on one directory; the first hangs (answers held, process
 * alive and connected). A read moves to the second within io_timeout and
 * completes there.
 */
static void hung_agent_fails_over(void **state)
{
	struct agent a, b;
	const struct agent *both[] = { &a, &b };
	struct vxhs_ctx *ctx = test_ctx();
	struct vxhs_open_opts o;
	struct vxhs_vdisk *vd;
	struct vxhs_vdisk_info info;
	uint8_t out[BLOCK], in[BLOCK];
	char dir[256];
	unsigned long reads;

	scratch_make(dir, sizeof(dir));
	vdisk_make(dir, "shared", DISK_SIZE);
	agent_start(&a, dir, 0);
	agent_start(&b, dir, 0);
	agent_opts(&o, both, 2);
	o.io_timeout_ms = 500;
	o.failover_deadline_ms = WAIT_MS;
	assert_int_equal(vxhs_vdisk_open(ctx, "shared", &o, &vd), 0);
	fill(out, 11);
	assert_int_equal(sync_pwrite(vd, out, BLOCK, 0), 0);
	vxhs_vdisk_get_info(vd, &info);
	assert_int_equal(info.agent, 0);

	reads = agent_counter(&b, "read");
	agent_fault(&a, "pause");
	assert_int_equal(sync_pread(vd, in, BLOCK, 0), 0);
	assert_memory_equal(in, out, BLOCK);
	assert_true(agent_counter(&b, "read") > reads);
	vxhs_vdisk_get_info(vd, &info);
	assert_int_equal(info.agent, 1);

	vxhs_vdisk_close(vd);
	vxhs_ctx_free(ctx);
	agent_kill(&a, SIGTERM);
	agent_kill(&b, SIGTERM);
	scratch_remove(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(errors_reach_the_caller),
		cmocka_unit_test(eagain_is_transient),
		cmocka_unit_test(delayed_flush_completes),
		cmocka_unit_test(paused_agent_is_waited_out),
		cmocka_unit_test(stopped_reading_is_retried),
		cmocka_unit_test(dropped_and_truncated_are_retried),
		cmocka_unit_test(hung_agent_fails_over),
	};

	signal(SIGPIPE, SIG_IGN);
	test_select_from_env(tests);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
