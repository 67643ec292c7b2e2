// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * Payloads by reference through a shared region, against a real vxhsd on
 * its UNIX socket: the data lands where it should, the agent really maps
 * the region (its /proc/PID/maps names our memfd), and every way the
 * region can be unusable falls back to the socket without an error.
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
#include <sys/mman.h>
#include <syslog.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/util.h"
#include "harness.h"
#include "vxhs/wire.h"

#define DISK_SIZE   (16ull << 20)
#define REGION_SIZE (4ull << 20)

static struct {
	char dir[256];
	struct agent agent;
	struct vxhs_ctx *ctx;
	atomic_uint refusals; /* "shared memory refused" logged */
} env;

static void count_refusals(void *opaque, int level, const char *msg)
{
	(void)opaque;
	(void)level;
	if (strstr(msg, "shared memory refused"))
		atomic_fetch_add(&env.refusals, 1);
}

struct region {
	char name[32];
	int fd;
	uint8_t *base;
};

static int setup(void **state)
{
	(void)state;
	scratch_make(env.dir, sizeof(env.dir));
	vdisk_make(env.dir, "disk0", DISK_SIZE);
	agent_start(&env.agent, env.dir, 0);
	{
		struct vxhs_ctx_opts o;

		vxhs_ctx_opts_init(&o);
		o.log_level = LOG_WARNING;
		o.log = count_refusals;
		o.io_threads = 2;
		assert_int_equal(vxhs_ctx_new(&o, &env.ctx), 0);
	}
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	vxhs_ctx_free(env.ctx);
	agent_kill(&env.agent, SIGTERM);
	scratch_remove(env.dir);
	return 0;
}

static void region_make(struct region *r, const char *name)
{
	snprintf(r->name, sizeof(r->name), "%s", name);
	r->fd = memfd_create(name, MFD_CLOEXEC);
	assert_true(r->fd >= 0);
	assert_int_equal(ftruncate(r->fd, REGION_SIZE), 0);
	r->base = mmap(NULL, REGION_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
		       r->fd, 0);
	assert_true(r->base != MAP_FAILED);
}

static void region_free(struct region *r)
{
	munmap(r->base, REGION_SIZE);
	close(r->fd);
}

static struct vxhs_vdisk *open_shared(int fd, void *base, size_t len)
{
	struct vxhs_open_opts o;
	struct vxhs_vdisk *vd;

	agent_opts_unix(&o, &env.agent);
	o.shm_fd = fd;
	o.shm_base = base;
	o.shm_len = len;
	assert_int_equal(vxhs_vdisk_open(env.ctx, "disk0", &o, &vd), 0);
	return vd;
}

/* Whether the agent has our memfd mapped. */
static bool agent_maps(const char *name);

/* A region forgotten is unmapped when the last request using it ends. */
static bool agent_unmaps(const char *name)
{
	for (int i = 0; i < 500; i++) {
		if (!agent_maps(name))
			return true;
		usleep(10000);
	}
	return false;
}

static bool agent_maps(const char *name)
{
	char path[64], line[512], needle[64];
	bool found = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)env.agent.pid);
	snprintf(needle, sizeof(needle), "/memfd:%s ", name);
	f = fopen(path, "r");
	assert_non_null(f);
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, needle) != NULL;
	fclose(f);
	return found;
}

static void file_pread(void *buf, size_t len, off_t off)
{
	char path[512];
	int fd;

	snprintf(path, sizeof(path), "%s/disk0", env.dir);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, buf, len, off), (ssize_t)len);
	close(fd);
}

static void fill(uint8_t *p, size_t n, unsigned int seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)rand_r(&seed);
}

/* Writes len bytes from three pieces of buf, reads them back into two
 * pieces of back, and checks both the answer and the file. */
static void round_trip(struct vxhs_vdisk *vd, uint8_t *buf, uint8_t *back,
		       size_t len, uint64_t off, unsigned int seed)
{
	struct iovec w[3] = { { buf, len / 4 },
			      { buf + len / 4, len / 2 },
			      { buf + 3 * len / 4, len - 3 * len / 4 } };
	struct iovec r[2] = { { back, len / 3 },
			      { back + len / 3, len - len / 3 } };
	uint8_t *file = malloc(len);

	assert_non_null(file);
	fill(buf, len, seed);
	memset(back, 0, len);
	assert_int_equal(vxhs_writev_sync(vd, w, 3, off), 0);
	assert_int_equal(vxhs_readv_sync(vd, r, 2, off), 0);
	assert_memory_equal(buf, back, len);
	file_pread(file, len, (off_t)off);
	assert_memory_equal(buf, file, len);
	free(file);
}

static void data_goes_by_reference(void **state)
{
	unsigned long writes, reads, ring;
	struct vxhs_vdisk *vd;
	struct region rg;

	(void)state;
	region_make(&rg, "vxhs-test-ref");
	vd = open_shared(rg.fd, rg.base, REGION_SIZE);
	writes = agent_counter(&env.agent, "write");
	reads = agent_counter(&env.agent, "read");
	ring = agent_counter(&env.agent, "ring");
	round_trip(vd, rg.base, rg.base + (2 << 20), 4096, 8192, 1);
	round_trip(vd, rg.base + 512, rg.base + (2 << 20) + 4096, 1 << 20,
		   (3 << 20) + 512, 2);
	assert_true(agent_maps(rg.name));
	/* Counted, and so subject to the same rules, as READ and WRITE. */
	assert_int_equal(agent_counter(&env.agent, "write"), writes + 2);
	assert_int_equal(agent_counter(&env.agent, "read"), reads + 2);
	/* Cached by the writes: into the region's pages, in the network
	 * thread's batch. */
	assert_int_equal(agent_counter(&env.agent, "ring") - ring,
			 dir_reads_nowait(env.dir) ? 2 : 0);
	vxhs_vdisk_close(vd);
	region_free(&rg);
}

static void buffers_outside_go_through_the_socket(void **state)
{
	uint8_t *heap = malloc(2 * 65536);
	struct vxhs_vdisk *vd;
	struct region rg;

	(void)state;
	assert_non_null(heap);
	region_make(&rg, "vxhs-test-out");
	vd = open_shared(rg.fd, rg.base, REGION_SIZE);
	round_trip(vd, heap, heap + 65536, 65536, 0, 3);
	/* Half in the region, half outside: all through the socket. */
	{
		struct iovec w[2] = { { rg.base, 4096 }, { heap, 4096 } };
		uint8_t back[8192], expect[8192];

		fill(rg.base, 4096, 4);
		fill(heap, 4096, 5);
		memcpy(expect, rg.base, 4096);
		memcpy(expect + 4096, heap, 4096);
		assert_int_equal(vxhs_writev_sync(vd, w, 2, 1 << 20), 0);
		file_pread(back, sizeof(back), 1 << 20);
		assert_memory_equal(back, expect, sizeof(back));
	}
	vxhs_vdisk_close(vd);
	region_free(&rg);
	free(heap);
}

static void writes_in_parallel(struct vxhs_vdisk *vd, struct region *rg);

static void forgotten_region_is_added_again(void **state)
{
	struct vxhs_vdisk *vd;
	struct region rg;

	(void)state;
	region_make(&rg, "vxhs-test-again");
	vd = open_shared(rg.fd, rg.base, REGION_SIZE);
	round_trip(vd, rg.base, rg.base + 65536, 65536, 0, 6);
	assert_true(agent_maps(rg.name));
	/* Every connection gets to carry a request. */
	writes_in_parallel(vd, &rg);
	agent_fault(&env.agent, "forget-regions all");
	assert_true(agent_unmaps(rg.name));
	/* ENXIO, REGION_ADD anew, the same request again: no error, and no
	 * connection gives up on the region, whichever one a resent
	 * request lands on. */
	atomic_store(&env.refusals, 0);
	writes_in_parallel(vd, &rg);
	round_trip(vd, rg.base, rg.base + 65536, 65536, 65536, 7);
	assert_true(agent_maps(rg.name));
	assert_int_equal(atomic_load(&env.refusals), 0);
	vxhs_vdisk_close(vd);
	region_free(&rg);
}

/* 512 WRITEs of 4 KiB from the region at once, checked in the file: a
 * connection takes 32 in flight before the next one does (agent.c), so
 * every one of the 8 gets some. */
#define PARALLEL 512

static void writes_in_parallel(struct vxhs_vdisk *vd, struct region *rg)
{
	uint8_t *file = malloc(PARALLEL * 4096);
	struct tally t;

	assert_non_null(file);
	fill(rg->base + (1 << 20), PARALLEL * 4096, 60);
	tally_init(&t);
	for (unsigned int i = 0; i < PARALLEL; i++) {
		struct iovec iov = { rg->base + (1 << 20) + i * 4096, 4096 };

		tally_add(&t);
		assert_int_equal(vxhs_writev(vd, &iov, 1, (8 << 20) + i * 4096,
					     tally_done, &t),
				 0);
	}
	assert_int_equal(tally_wait(&t, 30000), 0);
	assert_int_equal(t.failed, 0);
	file_pread(file, PARALLEL * 4096, 8 << 20);
	assert_memory_equal(file, rg->base + (1 << 20), PARALLEL * 4096);
	free(file);
}

static void region_the_agent_cannot_map(void **state)
{
	uint8_t *heap = malloc(2 * 65536);
	struct vxhs_vdisk *vd;
	int p[2];

	(void)state;
	assert_non_null(heap);
	assert_int_equal(pipe(p), 0);
	/* A pipe cannot be mapped: REGION_ADD fails, the socket it is. */
	atomic_store(&env.refusals, 0);
	vd = open_shared(p[0], heap, 2 * 65536);
	for (unsigned int i = 0; i < 16; i++)
		round_trip(vd, heap, heap + 65536, 65536, i * 65536ull, 8 + i);
	assert_int_equal(atomic_load(&env.refusals), 1); /* once per agent */
	vxhs_vdisk_close(vd);
	close(p[0]);
	close(p[1]);
	free(heap);
}

static void agent_without_the_extension(void **state)
{
	struct vxhs_vdisk *vd;
	struct region rg;

	(void)state;
	agent_fault(&env.agent, "hide shared-memory");
	region_make(&rg, "vxhs-test-hidden");
	vd = open_shared(rg.fd, rg.base, REGION_SIZE);
	round_trip(vd, rg.base, rg.base + 65536, 65536, 0, 30);
	assert_false(agent_maps(rg.name));
	vxhs_vdisk_close(vd);
	region_free(&rg);
	agent_fault(&env.agent, "show shared-memory");
}

static void reopened_vdisk_uses_its_own_region(void **state)
{
	struct region a, b;
	struct vxhs_vdisk *vd;

	(void)state;
	region_make(&a, "vxhs-test-first");
	region_make(&b, "vxhs-test-second");
	vd = open_shared(a.fd, a.base, REGION_SIZE);
	round_trip(vd, a.base, a.base + 65536, 65536, 0, 40);
	vxhs_vdisk_close(vd);
	/* The same id on the same connections: the new region replaces
	 * the old one, and no byte comes from the old one. */
	memset(a.base, 0xEE, REGION_SIZE);
	vd = open_shared(b.fd, b.base, REGION_SIZE);
	for (unsigned int i = 0; i < 32; i++)
		round_trip(vd, b.base, b.base + 65536, 65536, i * 65536ull,
			   41 + i);
	assert_true(agent_maps(b.name));
	vxhs_vdisk_close(vd);
	region_free(&a);
	region_free(&b);
}

/*
 * A worker stuck on a by-reference WRITE past the gateway's io_timeout:
 * the gateway retries it elsewhere only once the agent let go of the
 * pages, so reusing them after the request completes cannot change what
 * the stuck worker writes.
 */
static void timed_out_request_never_writes_reused_pages(void **state)
{
	struct vxhs_open_opts o;
	struct vxhs_vdisk *vd;
	struct region rg;
	uint8_t expect[65536], file[65536];
	struct iovec iov;

	(void)state;
	region_make(&rg, "vxhs-test-stuck");
	agent_opts_unix(&o, &env.agent);
	o.shm_fd = rg.fd;
	o.shm_base = rg.base;
	o.shm_len = REGION_SIZE;
	o.io_timeout_ms = 300;
	assert_int_equal(vxhs_vdisk_open(env.ctx, "disk0", &o, &vd), 0);
	fill(rg.base, sizeof(expect), 50);
	memcpy(expect, rg.base, sizeof(expect));
	iov.iov_base = rg.base;
	iov.iov_len = sizeof(expect);
	/* The first attempt is held 2 s on a worker; the retry is not. */
	agent_fault(&env.agent, "delay write disk0 2000 1");
	assert_int_equal(vxhs_writev_sync(vd, &iov, 1, 5 << 20), 0);
	/* The caller's pages are its own again: reuse them at once. */
	memset(rg.base, 0xEE, sizeof(expect));
	usleep(2500 * 1000); /* the held worker wakes meanwhile */
	file_pread(file, sizeof(file), 5 << 20);
	assert_memory_equal(file, expect, sizeof(file));
	agent_fault(&env.agent, "clear");
	vxhs_vdisk_close(vd);
	region_free(&rg);
}

static void bad_options_are_refused(void **state)
{
	struct vxhs_open_opts o;
	struct vxhs_vdisk *vd;

	(void)state;
	vxhs_open_opts_init(&o);
	assert_int_equal(
		vxhs_agent_addr_parse("unix:/nonexistent", &o.agents[0]), 0);
	o.nr_agents = 1;
	o.shm_len = 4096; /* no descriptor, no address */
	assert_int_equal(vxhs_vdisk_open(env.ctx, "disk0", &o, &vd), -EINVAL);
	assert_non_null(strstr(vxhs_errmsg(), "shared memory"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(data_goes_by_reference),
		cmocka_unit_test(buffers_outside_go_through_the_socket),
		cmocka_unit_test(forgotten_region_is_added_again),
		cmocka_unit_test(region_the_agent_cannot_map),
		cmocka_unit_test(agent_without_the_extension),
		cmocka_unit_test(reopened_vdisk_uses_its_own_region),
		cmocka_unit_test(timed_out_request_never_writes_reused_pages),
		cmocka_unit_test(bad_options_are_refused),
	};

	test_select_from_env(tests);
	return cmocka_run_group_tests_name("shared_memory", tests, setup,
					   teardown);
}
