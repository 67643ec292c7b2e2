// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * Failover against real vxhsd processes: an agent killed under load while
 * another serves the same directory, a single agent restarted within the
 * deadline, the deadline passing, and the bounded retry queue.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/util.h"
#include "harness.h"

#define DISK_SIZE (16ull << 20)
#define BLOCK	  4096
#define SLOTS	  32

/*
 * A closed loop of SLOTS workers, each writing a block with a pattern that
 * names the block and the round, reading it back and checking it, from the
 * completion callbacks. Every request must succeed and every byte match.
 */
struct load;

struct load_slot {
	struct load *l;
	uint8_t buf[BLOCK];
	uint64_t block;
	uint32_t round;
	bool reading;
};

struct load {
	struct vxhs_vdisk *vd;
	struct load_slot slots[SLOTS];
	atomic_bool stop;
	atomic_uint ops, failures, mismatches;
	atomic_int first_error;
	struct tally running;
};

static void pattern(uint8_t *buf, uint64_t block, uint32_t round)
{
	for (int i = 0; i < BLOCK; i += 8) {
		uint64_t v = block << 32 | round;

		memcpy(buf + i, &v, 8);
	}
}

static void load_step(struct load_slot *s);

static void load_done(void *opaque, int result)
{
	struct load_slot *s = opaque;
	struct load *l = s->l;

	if (result) {
		int zero = 0;

		atomic_fetch_add(&l->failures, 1);
		atomic_compare_exchange_strong(&l->first_error, &zero, result);
	} else if (s->reading) {
		uint8_t want[BLOCK];

		pattern(want, s->block, s->round);
		if (memcmp(want, s->buf, BLOCK))
			atomic_fetch_add(&l->mismatches, 1);
	}
	atomic_fetch_add(&l->ops, 1);
	if (atomic_load(&l->stop) || result) {
		tally_done(&l->running, 0);
		return;
	}
	if (s->reading) {
		s->block = (s->block + SLOTS) % (DISK_SIZE / BLOCK);
		s->round++;
	}
	s->reading = !s->reading;
	load_step(s);
}

static void load_step(struct load_slot *s)
{
	struct iovec iov = { s->buf, BLOCK };
	int ret;

	if (!s->reading)
		pattern(s->buf, s->block, s->round);
	else
		memset(s->buf, 0, BLOCK);
	ret = s->reading ? vxhs_readv(s->l->vd, &iov, 1, s->block * BLOCK,
				      load_done, s) :
			   vxhs_writev(s->l->vd, &iov, 1, s->block * BLOCK,
				       load_done, s);
	if (ret)
		load_done(s, ret);
}

static void load_start(struct load *l, struct vxhs_vdisk *vd)
{
	memset(l, 0, sizeof(*l));
	l->vd = vd;
	tally_init(&l->running);
	for (int i = 0; i < SLOTS; i++) {
		l->slots[i].l = l;
		l->slots[i].block = (uint64_t)i;
		tally_add(&l->running);
	}
	for (int i = 0; i < SLOTS; i++)
		load_step(&l->slots[i]);
}

static void load_stop(struct load *l)
{
	atomic_store(&l->stop, true);
	assert_int_equal(tally_wait(&l->running, 120000), 0);
	if (atomic_load(&l->failures))
		fprintf(stderr, "first failure: %s\n",
			strerror(-atomic_load(&l->first_error)));
	assert_int_equal(atomic_load(&l->failures), 0);
	assert_int_equal(atomic_load(&l->mismatches), 0);
}

/* Waits until the load has done at least n operations: an event, with
 * a deadline far beyond what a slow machine needs. */
static bool wait_ops(struct load *l, unsigned int n)
{
	uint64_t until = vxhs_now_ns() + 60 * NSEC_PER_SEC;

	while (atomic_load(&l->ops) < n && vxhs_now_ns() < until)
		usleep(10000);
	return atomic_load(&l->ops) >= n;
}

struct events {
	atomic_uint quiesce, active, failed;
};

static void on_event(struct vxhs_vdisk *vd, enum vxhs_vdisk_event ev,
		     unsigned int agent, void *opaque)
{
	struct events *e = opaque;

	if (ev == VXHS_EVENT_QUIESCE)
		atomic_fetch_add(&e->quiesce, 1);
	else if (ev == VXHS_EVENT_ACTIVE)
		atomic_fetch_add(&e->active, 1);
	else
		atomic_fetch_add(&e->failed, 1);
}

static void setup_dir(char *dir, size_t len)
{
	scratch_make(dir, len);
	vdisk_make(dir, "shared", DISK_SIZE);
}

static void agent_killed_under_load_fails_over(void **state)
{
	struct agent a, b;
	const struct agent *both[] = { &a, &b };
	struct vxhs_ctx *ctx = test_ctx();
	struct vxhs_open_opts o;
	struct vxhs_vdisk *vd;
	struct vxhs_vdisk_info info;
	struct events ev = { 0 };
	struct load l;
	char dir[256];
	unsigned int before;

	setup_dir(dir, sizeof(dir));
	agent_start(&a, dir, 0);
	agent_start(&b, dir, 0);
	agent_opts(&o, both, 2);
	o.event = on_event;
	o.event_opaque = &ev;
	assert_int_equal(vxhs_vdisk_open(ctx, "shared", &o, &vd), 0);

	load_start(&l, vd);
	assert_true(wait_ops(&l, 100));
	before = atomic_load(&l.ops);
	agent_kill(&a, SIGKILL);
	/* Goes on, on the other agent. */
	assert_true(wait_ops(&l, before + 100));
	load_stop(&l);
	vxhs_vdisk_get_info(vd, &info);
	assert_int_equal(info.agent, 1);
	assert_true(atomic_load(&ev.quiesce) >= 1);
	assert_true(atomic_load(&ev.active) >= 1);
	assert_int_equal(atomic_load(&ev.failed), 0);

	vxhs_vdisk_close(vd);
	vxhs_ctx_free(ctx);
	agent_kill(&b, SIGTERM);
	scratch_remove(dir);
}

static void restarted_agent_within_deadline_loses_nothing(void **state)
{
	struct agent a;
	const struct agent *one[] = { &a };
	struct vxhs_ctx *ctx = test_ctx();
	struct vxhs_open_opts o;
	struct vxhs_vdisk *vd;
	struct load l;
	char dir[256];
	unsigned int port, before;

	setup_dir(dir, sizeof(dir));
	agent_start(&a, dir, 0);
	port = a.port;
	agent_opts(&o, one, 1);
	o.failover_deadline_ms = 20000;
	assert_int_equal(vxhs_vdisk_open(ctx, "shared", &o, &vd), 0);

	load_start(&l, vd);
	assert_true(wait_ops(&l, 100));
	agent_kill(&a, SIGKILL);
	before = atomic_load(&l.ops);
	/* Nothing may complete while no agent runs (a check that something
	 * does not happen: a wait, not a threshold on speed). */
	usleep(1000000);
	assert_true(atomic_load(&l.ops) - before <= SLOTS);
	agent_start(&a, dir, port);
	assert_true(wait_ops(&l, before + 100));
	load_stop(&l);

	vxhs_vdisk_close(vd);
	vxhs_ctx_free(ctx);
	agent_kill(&a, SIGTERM);
	scratch_remove(dir);
}

static void deadline_fails_waiting_requests(void **state)
{
	struct agent a;
	const struct agent *one[] = { &a };
	struct vxhs_ctx *ctx = test_ctx();
	struct vxhs_open_opts o;
	struct vxhs_vdisk *vd;
	struct events ev = { 0 };
	struct tally t;
	uint8_t buf[BLOCK];
	char dir[256];
	uint64_t t0;

	setup_dir(dir, sizeof(dir));
	agent_start(&a, dir, 0);
	agent_opts(&o, one, 1);
	o.failover_deadline_ms = 1500;
	o.event = on_event;
	o.event_opaque = &ev;
	assert_int_equal(vxhs_vdisk_open(ctx, "shared", &o, &vd), 0);
	agent_kill(&a, SIGKILL);

	tally_init(&t);
	t0 = vxhs_now_ns();
	for (int i = 0; i < 10; i++) {
		struct iovec iov = { buf, BLOCK };

		tally_add(&t);
		assert_int_equal(vxhs_readv(vd, &iov, 1, 0, tally_done, &t), 0);
	}
	assert_int_equal(tally_wait(&t, 10000), 0);
	assert_int_equal(t.failed, 10);
	assert_int_equal(t.first_error, -ENOTCONN);
	assert_true(vxhs_now_ns() - t0 >= 1400 * NSEC_PER_MSEC);
	assert_true(vxhs_now_ns() - t0 < 6 * NSEC_PER_SEC);
	assert_int_equal(atomic_load(&ev.failed), 1);
	/* failed until reopened: refused at once */
	assert_int_equal(sync_pread(vd, buf, BLOCK, 0), -ENOTCONN);

	vxhs_vdisk_close(vd);
	vxhs_ctx_free(ctx);
	scratch_remove(dir);
}

static void count_line(void *opaque, int level, const char *msg)
{
	(void)level;
	(void)msg;
	atomic_fetch_add((atomic_uint *)opaque, 1);
}

/*
 * A single agent down for the whole failover deadline (6 s, a probe every
 * half second): the library's log holds a bounded number of lines, not a
 * few per probe.
 */
static void outage_log_is_bounded(void **state)
{
	struct agent a;
	const struct agent *one[] = { &a };
	struct vxhs_ctx_opts co;
	struct vxhs_ctx *ctx;
	struct vxhs_open_opts o;
	struct vxhs_vdisk *vd;
	struct tally t;
	uint8_t buf[BLOCK];
	struct iovec iov = { buf, BLOCK };
	atomic_uint lines = 0;
	char dir[256];

	vxhs_ctx_opts_init(&co);
	co.log_level = LOG_INFO;
	co.log = count_line;
	co.log_opaque = &lines;
	assert_int_equal(vxhs_ctx_new(&co, &ctx), 0);
	setup_dir(dir, sizeof(dir));
	agent_start(&a, dir, 0);
	agent_opts(&o, one, 1);
	o.failover_deadline_ms = 6000;
	o.connect_timeout_ms = 200;
	assert_int_equal(vxhs_vdisk_open(ctx, "shared", &o, &vd), 0);
	agent_kill(&a, SIGKILL);
	atomic_store(&lines, 0);

	tally_init(&t);
	tally_add(&t);
	assert_int_equal(vxhs_readv(vd, &iov, 1, 0, tally_done, &t), 0);
	assert_int_equal(tally_wait(&t, 30000), 0);
	assert_int_equal(t.first_error, -ENOTCONN);
	/* lost, held for failover, one of each repeating kind, given up */
	assert_in_range(atomic_load(&lines), 2, 8);

	vxhs_vdisk_close(vd);
	vxhs_ctx_free(ctx);
	scratch_remove(dir);
}

struct errcount {
	struct tally t;
	atomic_uint again;
};

static void count_again(void *opaque, int result)
{
	struct errcount *e = opaque;

	if (result == -EAGAIN)
		atomic_fetch_add(&e->again, 1);
	tally_done(&e->t, result);
}

static void retry_queue_is_bounded(void **state)
{
	struct agent a;
	const struct agent *one[] = { &a };
	struct vxhs_ctx *ctx = test_ctx();
	struct vxhs_open_opts o;
	struct vxhs_vdisk *vd;
	struct events ev = { 0 };
	struct errcount e = { 0 };
	uint8_t buf[BLOCK];
	char dir[256];
	struct iovec iov = { buf, BLOCK };

	setup_dir(dir, sizeof(dir));
	agent_start(&a, dir, 0);
	agent_opts(&o, one, 1);
	o.failover_deadline_ms = 2000;
	o.retry_queue_max = 8;
	o.event = on_event;
	o.event_opaque = &ev;
	assert_int_equal(vxhs_vdisk_open(ctx, "shared", &o, &vd), 0);
	agent_kill(&a, SIGKILL);

	/* the first request finds the agent gone and starts the failover */
	tally_init(&e.t);
	tally_add(&e.t);
	assert_int_equal(vxhs_readv(vd, &iov, 1, 0, count_again, &e), 0);
	/* until it waits in the retry queue (the vdisk says QUIESCE) */
	for (int i = 0; i < 6000 && !atomic_load(&ev.quiesce); i++)
		usleep(10000);
	assert_int_equal(atomic_load(&ev.quiesce), 1);
	for (int i = 0; i < 30; i++) {
		tally_add(&e.t);
		assert_int_equal(vxhs_readv(vd, &iov, 1, 0, count_again, &e),
				 0);
	}
	assert_int_equal(tally_wait(&e.t, 10000), 0);
	assert_int_equal(e.t.failed, 31);
	assert_int_equal(atomic_load(&e.again), 31 - 8);

	vxhs_vdisk_close(vd);
	vxhs_ctx_free(ctx);
	scratch_remove(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(agent_killed_under_load_fails_over),
		cmocka_unit_test(restarted_agent_within_deadline_loses_nothing),
		cmocka_unit_test(deadline_fails_waiting_requests),
		cmocka_unit_test(outage_log_is_bounded),
		cmocka_unit_test(retry_queue_is_bounded),
	};

	test_select_from_env(tests);
	return cmocka_run_group_tests_name("failover", tests, NULL, NULL);
}
