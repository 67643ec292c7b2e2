// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * The vdisk's exclusive lock against real vxhsd agents sharing one
 * directory, as agents of several gateways share a vdisk's storage: who
 * holds it, that taking it fences the previous owner (writes in flight
 * and queued in an agent included), that it stays in the storage across
 * failover and restarts, and what a damaged record does.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/util.h"
#include "harness.h"
#include "vxhs/wire.h"

#define DISK_SIZE (16ull << 20)
#define BLOCK	  4096

static char dir[256];
static struct agent agents[2];
static struct vxhs_ctx *ctx;

static int setup(void **state)
{
	scratch_make(dir, sizeof(dir));
	agent_start(&agents[0], dir, 0);
	agent_start(&agents[1], dir, 0);
	ctx = test_ctx();
	return 0;
}

static int teardown(void **state)
{
	vxhs_ctx_free(ctx);
	agent_kill(&agents[0], SIGTERM);
	agent_kill(&agents[1], SIGTERM);
	scratch_remove(dir);
	return 0;
}

/* A handle on id through the given agents, in order. */
static struct vxhs_vdisk *open_via(const char *id, const struct agent *a0,
				   const struct agent *a1)
{
	const struct agent *a[] = { a0, a1 };
	struct vxhs_open_opts o;
	struct vxhs_vdisk *vd;

	agent_opts(&o, a, a1 ? 2 : 1);
	o.io_timeout_ms = 3000;
	assert_int_equal(vxhs_vdisk_open(ctx, id, &o, &vd), 0);
	return vd;
}

static int write_byte(struct vxhs_vdisk *vd, uint8_t byte, uint64_t off)
{
	uint8_t buf[BLOCK];

	memset(buf, byte, sizeof(buf));
	return sync_pwrite(vd, buf, sizeof(buf), off);
}

/* The first byte of the block at off, as the file holds it. */
static uint8_t file_byte(const char *id, uint64_t off)
{
	char path[512];
	uint8_t b = 0;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, id);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &b, 1, (off_t)off), 1);
	close(fd);
	return b;
}

static void expect_lock(struct vxhs_vdisk *vd, bool held, uint64_t epoch,
			const char *owner, uint16_t tag)
{
	struct vxhs_lock_info info;

	assert_int_equal(vxhs_lock_query_sync(vd, &info), 0);
	assert_int_equal(info.held, held);
	assert_int_equal(info.epoch, epoch);
	assert_string_equal(info.owner, owner);
	if (held)
		assert_int_equal(info.tag, tag);
}

/*
 * Two gateways, each through its own agent, and a client that never
 * locks: the owner writes, the others are fenced; taking the lock breaks
 * the owner; asking again keeps the epoch; releasing frees the vdisk.
 */
static void taking_the_lock_fences_the_previous_owner(void **state)
{
	struct vxhs_vdisk *gw1, *gw2, *plain;
	struct vxhs_lock_info info;
	uint8_t buf[BLOCK];

	vdisk_make(dir, "fence", DISK_SIZE);
	gw1 = open_via("fence", &agents[0], NULL);
	gw2 = open_via("fence", &agents[1], NULL);
	plain = open_via("fence", &agents[0], NULL);

	expect_lock(plain, false, 0, "", 0);
	assert_int_equal(write_byte(plain, 0x01, 0), 0);

	assert_int_equal(vxhs_lock_acquire_sync(gw1, "gw1", 1, &info), 0);
	assert_true(info.held);
	assert_int_equal(info.epoch, 1);
	assert_string_equal(info.owner, "gw1");
	assert_string_equal(info.broken, "");
	assert_int_equal(vxhs_lock_epoch(gw1), 1);
	assert_int_equal(write_byte(gw1, 0x11, 0), 0);
	assert_int_equal(vxhs_flush_sync(gw1), 0);
	/* Locked: writes without its epoch are fenced, reads are not. */
	assert_int_equal(write_byte(plain, 0x02, 0), -ESTALE);
	assert_int_equal(vxhs_write_zeroes_sync(plain, 0, BLOCK), -ESTALE);
	assert_int_equal(vxhs_discard_sync(plain, 0, BLOCK), -ESTALE);
	assert_int_equal(vxhs_flush_sync(plain), -ESTALE);
	assert_int_equal(sync_pread(plain, buf, BLOCK, 0), 0);
	assert_int_equal(buf[0], 0x11);
	expect_lock(gw2, true, 1, "gw1", 1);

	/* gw2 takes it from gw1 through the other agent. */
	assert_int_equal(vxhs_lock_acquire_sync(gw2, "gw2", 2, &info), 0);
	assert_int_equal(info.epoch, 2);
	assert_string_equal(info.broken, "gw1");
	assert_int_equal(write_byte(gw1, 0x12, 0), -ESTALE);
	assert_int_equal(vxhs_lock_epoch(gw1), 0); /* it knows it lost it */
	assert_int_equal(file_byte("fence", 0), 0x11);
	assert_int_equal(write_byte(gw2, 0x21, 0), 0);
	assert_int_equal(file_byte("fence", 0), 0x21);
	expect_lock(gw1, true, 2, "gw2", 2);

	/* Asking again keeps the epoch (and takes a new tag). */
	assert_int_equal(vxhs_lock_acquire_sync(gw2, "gw2", 3, &info), 0);
	assert_int_equal(info.epoch, 2);
	assert_string_equal(info.broken, "");
	expect_lock(gw1, true, 2, "gw2", 3);

	/* Only the owner can let it go; then everyone writes again. */
	assert_int_equal(vxhs_lock_release_sync(gw1), -ESTALE);
	assert_int_equal(vxhs_lock_release_sync(gw2), 0);
	assert_int_equal(vxhs_lock_epoch(gw2), 0);
	expect_lock(plain, false, 2, "gw2", 0);
	assert_int_equal(write_byte(plain, 0x03, 0), 0);
	assert_int_equal(write_byte(gw1, 0x13, BLOCK), 0);
	assert_int_equal(write_byte(gw2, 0x23, 2 * BLOCK), 0);

	/* Bad owners are refused before anything is sent. */
	assert_int_equal(vxhs_lock_acquire_sync(gw1, "", 0, NULL), -EINVAL);
	assert_int_equal(vxhs_lock_acquire_sync(gw1, "two words", 0, NULL),
			 -EINVAL);
	memset(buf, 'x', VXHS_LOCK_OWNER_MAX + 1);
	buf[VXHS_LOCK_OWNER_MAX + 1] = 0;
	assert_int_equal(vxhs_lock_acquire_sync(gw1, (char *)buf, 0, NULL),
			 -EINVAL);

	vxhs_vdisk_close(plain);
	vxhs_vdisk_close(gw2);
	vxhs_vdisk_close(gw1);
}

/*
 * A second handle of the owner (a gateway reopening the vdisk) carries on
 * its lock with vxhs_lock_resume: same epoch, nothing fenced. It is
 * refused for another owner, another epoch, or once the lock moved on.
 */
static void a_new_handle_resumes_the_owners_lock(void **state)
{
	struct vxhs_vdisk *old, *next, *other;

	vdisk_make(dir, "resume", DISK_SIZE);
	old = open_via("resume", &agents[0], NULL);
	next = open_via("resume", &agents[1], NULL);
	other = open_via("resume", &agents[0], NULL);
	assert_int_equal(vxhs_lock_acquire_sync(old, "gw1", 1, NULL), 0);
	assert_int_equal(write_byte(next, 0x31, 0), -ESTALE);

	assert_int_equal(vxhs_lock_resume_sync(next, "gw2", 1), -ESTALE);
	assert_int_equal(vxhs_lock_resume_sync(next, "gw1", 2), -ESTALE);
	assert_int_equal(vxhs_lock_resume_sync(next, "gw1", 0), -EINVAL);
	assert_int_equal(vxhs_lock_resume_sync(next, "g w", 1), -EINVAL);
	assert_int_equal(vxhs_lock_epoch(next), 0);
	assert_int_equal(vxhs_lock_resume_sync(next, "gw1", 1), 0);
	assert_int_equal(vxhs_lock_epoch(next), 1);
	assert_int_equal(write_byte(next, 0x32, 0), 0);
	assert_int_equal(file_byte("resume", 0), 0x32);
	expect_lock(other, true, 1, "gw1", 1);

	/* Taken by someone else: the resumed handle is fenced, and a late
	 * resume of the old epoch is refused. */
	vxhs_vdisk_close(old);
	old = open_via("resume", &agents[0], NULL);
	assert_int_equal(vxhs_lock_acquire_sync(other, "gw3", 3, NULL), 0);
	assert_int_equal(write_byte(next, 0x33, 0), -ESTALE);
	assert_int_equal(file_byte("resume", 0), 0x32);
	assert_int_equal(vxhs_lock_resume_sync(old, "gw1", 1), -ESTALE);
	assert_int_equal(vxhs_lock_epoch(old), 0);

	vxhs_vdisk_close(other);
	vxhs_vdisk_close(next);
	vxhs_vdisk_close(old);
}

/*
 * A write the owner's agent holds (fault injection: delayed 1.5 s before
 * it runs) while another gateway takes the lock and writes the same block
 * must never land: it comes back fenced, and the block keeps the new
 * owner's data.
 */
static void queued_writes_of_a_fenced_owner_never_land(void **state)
{
	struct vxhs_vdisk *gw1, *gw2;
	static uint8_t old[BLOCK];
	struct iovec iov = { old, sizeof(old) };
	struct tally t;

	vdisk_make(dir, "queued", DISK_SIZE);
	gw1 = open_via("queued", &agents[0], NULL);
	gw2 = open_via("queued", &agents[1], NULL);
	assert_int_equal(vxhs_lock_acquire_sync(gw1, "gw1", 1, NULL), 0);

	agent_fault(&agents[0], "delay write queued 1500 1");
	memset(old, 0xAA, sizeof(old));
	tally_init(&t);
	for (unsigned int i = 0; i < 4; i++) {
		tally_add(&t);
		assert_int_equal(vxhs_writev(gw1, &iov, 1, i * BLOCK,
					     tally_done, &t),
				 0);
	}
	usleep(300 * 1000); /* the first is held in the agent now */
	assert_int_equal(vxhs_lock_acquire_sync(gw2, "gw2", 2, NULL), 0);
	for (unsigned int i = 0; i < 4; i++)
		assert_int_equal(write_byte(gw2, 0xBB, i * BLOCK), 0);
	assert_int_equal(tally_wait(&t, 10000), 0);
	/* The held one was fenced at least; whatever ran before the
	 * acquire was overwritten by gw2. */
	assert_true(t.failed >= 1);
	assert_int_equal(t.first_error, -ESTALE);
	for (unsigned int i = 0; i < 4; i++)
		assert_int_equal(file_byte("queued", i * BLOCK), 0xBB);
	agent_fault(&agents[0], "clear");
	vxhs_vdisk_close(gw2);
	vxhs_vdisk_close(gw1);
}

/* Keeps writing its byte to one block until a write is fenced (or, if
 * fencing fails, 20 s have passed: -ETIMEDOUT). */
struct writer {
	struct vxhs_vdisk *vd;
	uint8_t byte;
	unsigned int written;
	int error;
};

static void *write_until_fenced(void *arg)
{
	struct writer *w = arg;
	uint64_t end = vxhs_now_ns() + 20 * NSEC_PER_SEC;

	while (!w->error) {
		w->error = write_byte(w->vd, w->byte, 0);
		if (!w->error)
			w->written++;
		if (!w->error && vxhs_now_ns() > end)
			w->error = -ETIMEDOUT;
	}
	return NULL;
}

/*
 * The lock moves back and forth between two gateways while the one that
 * loses it keeps writing through four threads: after each move, the new
 * owner's write is what the block holds, once every writer of the old
 * owner has stopped (fenced).
 */
static void the_lock_moves_under_a_stream_of_writes(void **state)
{
	struct vxhs_vdisk *gw[2];
	pthread_t t[4];
	struct writer w[4];

	vdisk_make(dir, "stream", DISK_SIZE);
	gw[0] = open_via("stream", &agents[0], NULL);
	gw[1] = open_via("stream", &agents[1], NULL);
	assert_int_equal(vxhs_lock_acquire_sync(gw[0], "gw0", 0, NULL), 0);
	for (unsigned int round = 0; round < 10; round++) {
		unsigned int from = round % 2, to = 1 - from;
		uint8_t mark = (uint8_t)(0x40 + round);

		for (unsigned int i = 0; i < 4; i++) {
			w[i] = (struct writer){ .vd = gw[from],
						.byte = (uint8_t)(0x80 + i) };
			assert_int_equal(pthread_create(&t[i], NULL,
							write_until_fenced,
							&w[i]),
					 0);
		}
		usleep(50 * 1000);
		assert_int_equal(vxhs_lock_acquire_sync(
					 gw[to], to ? "gw1" : "gw0", 0, NULL),
				 0);
		assert_int_equal(write_byte(gw[to], mark, 0), 0);
		for (unsigned int i = 0; i < 4; i++) {
			pthread_join(t[i], NULL);
			assert_int_equal(w[i].error, -ESTALE);
		}
		assert_int_equal(file_byte("stream", 0), mark);
	}
	vxhs_vdisk_close(gw[1]);
	vxhs_vdisk_close(gw[0]);
}

/*
 * The lock is the storage's: a gateway whose agent dies keeps it on the
 * next agent (its writes go on), and an agent started afresh on the
 * directory finds it as it was.
 */
static void the_lock_survives_failover_and_restart(void **state)
{
	struct vxhs_lock_info info;
	struct vxhs_vdisk *gw1;
	struct agent third;

	vdisk_make(dir, "durable", DISK_SIZE);
	agent_start(&third, dir, 0);
	gw1 = open_via("durable", &third, &agents[1]);
	assert_int_equal(vxhs_lock_acquire_sync(gw1, "gw1", 7, &info), 0);
	assert_int_equal(write_byte(gw1, 0x31, 0), 0);
	agent_kill(&third, SIGKILL);
	assert_int_equal(write_byte(gw1, 0x32, 0), 0);
	assert_int_equal(file_byte("durable", 0), 0x32);
	assert_int_equal(vxhs_lock_epoch(gw1), info.epoch);
	vxhs_vdisk_close(gw1);

	agent_start(&third, dir, 0);
	gw1 = open_via("durable", &third, NULL);
	expect_lock(gw1, true, info.epoch, "gw1", 7);
	/* A new handle holds nothing: fenced until it takes the lock. */
	assert_int_equal(write_byte(gw1, 0x33, 0), -ESTALE);
	assert_int_equal(vxhs_lock_acquire_sync(gw1, "gw1", 7, NULL), 0);
	assert_int_equal(vxhs_lock_epoch(gw1), info.epoch + 1);
	assert_int_equal(write_byte(gw1, 0x33, 0), 0);
	vxhs_vdisk_close(gw1);
	agent_kill(&third, SIGTERM);
}

/*
 * A record that is not one (both copies damaged) stops every change of
 * the vdisk, with EIO, until removed; reads go on.
 */
static void a_damaged_record_stops_writes(void **state)
{
	struct vxhs_vdisk *vd;
	struct vxhs_lock_info info;
	uint8_t junk[512], buf[BLOCK];
	char path[512];
	int fd;

	vdisk_make(dir, "damaged", DISK_SIZE);
	snprintf(path, sizeof(path), "%s/.damaged.lock", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	memset(junk, 0x5A, sizeof(junk));
	assert_int_equal(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
	close(fd);
	vd = open_via("damaged", &agents[0], NULL);
	assert_int_equal(write_byte(vd, 0x01, 0), -EIO);
	assert_int_equal(vxhs_lock_query_sync(vd, &info), -EIO);
	assert_int_equal(vxhs_lock_acquire_sync(vd, "gw1", 0, NULL), -EIO);
	assert_int_equal(sync_pread(vd, buf, BLOCK, 0), 0);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(write_byte(vd, 0x01, 0), 0);
	vxhs_vdisk_close(vd);
}

/* An agent that does not offer the extension: refused in the library. */
static void an_agent_without_locks(void **state)
{
	struct vxhs_vdisk *vd;

	vdisk_make(dir, "nolock", DISK_SIZE);
	agent_fault(&agents[0], "hide lock");
	vd = open_via("nolock", &agents[0], NULL);
	assert_int_equal(vxhs_lock_acquire_sync(vd, "gw1", 0, NULL),
			 -EOPNOTSUPP);
	assert_int_equal(vxhs_lock_query_sync(vd, NULL), -EOPNOTSUPP);
	assert_int_equal(write_byte(vd, 0x01, 0), 0);
	agent_fault(&agents[0], "show lock");
	vxhs_vdisk_close(vd);
}

/* An agent whose lock answers do not hold together: refused, no epoch
 * taken from it, nothing it named printed. */
static void lock_answers_that_lie_are_refused(void **state)
{
	struct vxhs_lock_info info = { .epoch = 42 };
	struct vxhs_open_opts o;
	struct fake_agent f;
	struct vxhs_vdisk *vd;

	fake_start(&f, FAKE_LOCK_LIES, 1 << 20);
	vxhs_open_opts_init(&o);
	o.nr_agents = 1;
	o.allow_plaintext = true;
	snprintf(o.agents[0].host, sizeof(o.agents[0].host), "127.0.0.1");
	o.agents[0].port = (uint16_t)f.port;
	assert_int_equal(vxhs_vdisk_open(ctx, "d", &o, &vd), 0);
	assert_int_equal(vxhs_lock_acquire_sync(vd, "gw1", 0, &info), -EPROTO);
	assert_int_equal(vxhs_lock_epoch(vd), 0);
	assert_int_equal(vxhs_lock_query_sync(vd, &info), -EPROTO);
	assert_int_equal(info.epoch, 42);
	assert_int_equal(f.bad_answers, 2);
	vxhs_vdisk_close(vd);
	fake_stop(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(taking_the_lock_fences_the_previous_owner),
		cmocka_unit_test(a_new_handle_resumes_the_owners_lock),
		cmocka_unit_test(queued_writes_of_a_fenced_owner_never_land),
		cmocka_unit_test(the_lock_moves_under_a_stream_of_writes),
		cmocka_unit_test(the_lock_survives_failover_and_restart),
		cmocka_unit_test(a_damaged_record_stops_writes),
		cmocka_unit_test(an_agent_without_locks),
		cmocka_unit_test(lock_answers_that_lie_are_refused),
	};

	test_select_from_env(tests);
	return cmocka_run_group_tests(tests, setup, teardown);
}
