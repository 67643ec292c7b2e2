// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * The client library against a real vxhsd: data integrity, pipelining,
 * extensions and errors; and against the fake agent: protocol violations.
 */
#include <dirent.h>
#include <linux/falloc.h>
#include <linux/magic.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/util.h"
#include "harness.h"
#include "vxhs/wire.h"

#define DISK_SIZE (64ull << 20)

struct env {
	char dir[256];
	struct agent agent;
	struct vxhs_ctx *ctx;
};

static struct env env;

static int setup(void **state)
{
	scratch_make(env.dir, sizeof(env.dir));
	vdisk_make(env.dir, "disk0", DISK_SIZE);
	vdisk_make(env.dir, "disk1", DISK_SIZE);
	vdisk_make(env.dir, "disk2", DISK_SIZE);
	agent_start(&env.agent, env.dir, 0);
	env.ctx = test_ctx();
	return 0;
}

static int teardown(void **state)
{
	vxhs_ctx_free(env.ctx);
	agent_kill(&env.agent, SIGTERM);
	scratch_remove(env.dir);
	return 0;
}

static struct vxhs_vdisk *open_disk(const char *id, uint32_t split)
{
	const struct agent *a[] = { &env.agent };
	struct vxhs_open_opts o;
	struct vxhs_vdisk *vd;

	agent_opts(&o, a, 1);
	if (split)
		o.max_io_size = split;
	assert_int_equal(vxhs_vdisk_open(env.ctx, id, &o, &vd), 0);
	return vd;
}

static void fill_random(uint8_t *p, size_t n, unsigned int *seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)rand_r(seed);
}

/* Reads the backing file directly, bypassing the agent. */
static void file_pread(const char *id, void *buf, size_t len, off_t off)
{
	char path[512];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", env.dir, id);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, buf, len, off), (ssize_t)len);
	close(fd);
}

/* Splits buf into up to 8 iovecs at random points, some empty. */
static int scatter(uint8_t *buf, size_t len, struct iovec *iov,
		   unsigned int *seed)
{
	int n = 0;

	while (len && n < 7) {
		size_t part = (size_t)rand_r(seed) % (len + 1);

		iov[n].iov_base = buf;
		iov[n++].iov_len = part;
		buf += part;
		len -= part;
	}
	iov[n].iov_base = buf;
	iov[n++].iov_len = len;
	return n;
}

static void random_round_trips_keep_data(void **state)
{
	struct vxhs_vdisk *vd = open_disk("disk0", 64 * 1024);
	uint8_t *out = malloc(1 << 20), *in = malloc(1 << 20),
		*file = malloc(1 << 20);
	unsigned int seed = 1234;

	for (int i = 0; i < 150; i++) {
		size_t len = 1 + (size_t)rand_r(&seed) % (300 * 1024);
		uint64_t off = (uint64_t)rand_r(&seed) % (DISK_SIZE - len);
		struct iovec wiov[8], riov[8];
		int wn, rn;

		fill_random(out, len, &seed);
		memset(in, 0, len);
		wn = scatter(out, len, wiov, &seed);
		rn = scatter(in, len, riov, &seed);
		assert_int_equal(vxhs_writev_sync(vd, wiov, wn, off), 0);
		assert_int_equal(vxhs_readv_sync(vd, riov, rn, off), 0);
		assert_memory_equal(in, out, len);
		file_pread("disk0", file, len, (off_t)off);
		assert_memory_equal(file, out, len);
	}
	free(out);
	free(in);
	free(file);
	vxhs_vdisk_close(vd);
}

/*
 * Writes of half a MiB and more leave from the caller's pages (vmsplice)
 * on a UNIX socket, by copy over TCP, and reach the file through the
 * agent's pipes: whole and scattered buffers at unaligned addresses, sizes
 * across the 1 MiB split.
 */
static void large_writes_from_pages(void **state)
{
	const struct agent *a[] = { &env.agent };
	const size_t max = 4 << 20;
	uint8_t *out = malloc(max + 4096), *in = malloc(max),
		*file = malloc(max);
	unsigned int seed = 4321;

	for (int unix_socket = 0; unix_socket < 2; unix_socket++) {
		struct vxhs_open_opts o;
		struct vxhs_vdisk *vd;

		if (unix_socket)
			agent_opts_unix(&o, &env.agent);
		else
			agent_opts(&o, a, 1);
		assert_int_equal(vxhs_vdisk_open(env.ctx, "disk2", &o, &vd), 0);
		for (int i = 0; i < 24; i++) {
			size_t len =
				512 * 1024 + (size_t)rand_r(&seed) % (max / 2);
			uint8_t *buf = out + rand_r(&seed) % 4096;
			uint64_t off =
				(uint64_t)rand_r(&seed) % (DISK_SIZE - len);
			struct iovec wiov[8] = { { buf, len } };
			int wn = 1;

			fill_random(buf, len, &seed);
			if (i % 2)
				wn = scatter(buf, len, wiov, &seed);
			assert_int_equal(vxhs_writev_sync(vd, wiov, wn, off),
					 0);
			memset(in, 0, len);
			assert_int_equal(sync_pread(vd, in, len, off), 0);
			assert_memory_equal(in, buf, len);
			file_pread("disk2", file, len, (off_t)off);
			assert_memory_equal(file, buf, len);
		}
		vxhs_vdisk_close(vd);
	}
	free(out);
	free(in);
	free(file);
}

static void count_event(struct vxhs_vdisk *vd, enum vxhs_vdisk_event event,
			unsigned int agent, void *opaque)
{
	(void)vd;
	(void)event;
	(void)agent;
	atomic_fetch_add((atomic_uint *)opaque, 1);
}

/*
 * With no descriptor left for a pipe (the kernel could refuse one for
 * other reasons too), large writes on a UNIX socket go by copy: they
 * succeed on the same connection, with no failover.
 */
static void large_writes_without_pipes(void **state)
{
	const size_t len = 1 << 20;
	struct vxhs_ctx *ctx = test_ctx();
	uint8_t *out = malloc(len), *in = malloc(len);
	struct vxhs_open_opts o;
	struct vxhs_vdisk *vd;
	struct rlimit old, low;
	atomic_uint events = 0;
	unsigned int seed = 8;
	int fds[1024], nr = 0;

	agent_opts_unix(&o, &env.agent);
	o.conns_per_agent = 1;
	o.event = count_event;
	o.event_opaque = &events;
	assert_int_equal(vxhs_vdisk_open(ctx, "disk1", &o, &vd), 0);
	fill_random(out, len, &seed);
	/* The one connection is up (open asked STAT over it); now use up
	 * every descriptor the process may have. */
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	low = old;
	low.rlim_cur = MIN(old.rlim_cur, 1024);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	while (nr < 1024 && (fds[nr] = dup(0)) >= 0)
		nr++;
	assert_true(nr < 1024);
	assert_int_equal(sync_pwrite(vd, out, len, 8192), 0);
	while (nr)
		close(fds[--nr]);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
	assert_int_equal(atomic_load(&events), 0);
	assert_int_equal(sync_pread(vd, in, len, 8192), 0);
	assert_memory_equal(in, out, len);
	vxhs_vdisk_close(vd);
	vxhs_ctx_free(ctx);
	free(out);
	free(in);
}

/* Many iovec segments: more than IOV_MAX and more than one split. */
static void many_segments_are_not_truncated(void **state)
{
	struct vxhs_vdisk *vd = open_disk("disk0", 0);
	int n = 3000;
	struct iovec *iov = calloc((size_t)n, sizeof(*iov));
	uint8_t *out = malloc((size_t)n * 512),
		*in = calloc(1, (size_t)n * 512);
	unsigned int seed = 99;

	fill_random(out, (size_t)n * 512, &seed);
	for (int i = 0; i < n; i++) {
		iov[i].iov_base = out + i * 512;
		iov[i].iov_len = 512;
	}
	assert_int_equal(vxhs_writev_sync(vd, iov, n, 4096), 0);
	for (int i = 0; i < n; i++)
		iov[i].iov_base = in + i * 512;
	assert_int_equal(vxhs_readv_sync(vd, iov, n, 4096), 0);
	assert_memory_equal(in, out, (size_t)n * 512);
	free(iov);
	free(out);
	free(in);
	vxhs_vdisk_close(vd);
}

#define PIPELINE 256

/* 256 requests in flight on each of three vdisks at once. */
/* The names of this process's threads that start with prefix. */
static unsigned int count_threads(const char *prefix)
{
	char path[300], comm[32];
	unsigned int n = 0;
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;

	assert_non_null(d);
	while ((e = readdir(d))) {
		FILE *f;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm",
			 e->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(comm, sizeof(comm), f) &&
		    !strncmp(comm, prefix, strlen(prefix)))
			n++;
		fclose(f);
	}
	closedir(d);
	return n;
}

struct in_callback {
	struct vxhs_vdisk *vd;
	struct tally t;
	int sync_result;
};

static void call_sync_from_callback(void *opaque, int result)
{
	struct in_callback *c = opaque;

	c->sync_result = vxhs_flush_sync(c->vd);
	tally_done(&c->t, result);
}

/*
 * The context runs the I/O threads it was asked for, and a synchronous call
 * from a completion (which would wait for its own thread) fails at once.
 */
static void io_threads_and_sync_calls(void **state)
{
	struct in_callback c = { .vd = open_disk("disk0", 0) };
	struct vxhs_ctx_opts o;
	struct vxhs_ctx *ctx;
	uint8_t buf[512] = { 0 };
	struct iovec iov = { buf, sizeof(buf) };

	(void)state;
	assert_int_equal(vxhs_ctx_io_threads(env.ctx), TEST_IO_THREADS);
	assert_int_equal(count_threads("vxhs-io"), TEST_IO_THREADS);

	tally_init(&c.t);
	tally_add(&c.t);
	assert_int_equal(
		vxhs_readv(c.vd, &iov, 1, 0, call_sync_from_callback, &c), 0);
	assert_int_equal(tally_wait(&c.t, 10000), 0);
	assert_int_equal(c.t.ok, 1);
	assert_int_equal(c.sync_result, -EDEADLK);
	assert_int_equal(vxhs_flush_sync(c.vd), 0);
	vxhs_vdisk_close(c.vd);

	vxhs_ctx_opts_init(&o);
	o.io_threads = 65;
	assert_int_equal(vxhs_ctx_new(&o, &ctx), -EINVAL);
	assert_non_null(strstr(vxhs_errmsg(), "at most 64"));
}

static void pipelines_256_requests_per_vdisk(void **state)
{
	struct vxhs_vdisk *vd[3] = { open_disk("disk0", 0),
				     open_disk("disk1", 0),
				     open_disk("disk2", 0) };
	uint8_t *bufs = malloc(3 * PIPELINE * 4096);
	struct tally t;

	for (int d = 0; d < 3; d++)
		for (int i = 0; i < PIPELINE; i++)
			memset(bufs + (d * PIPELINE + i) * 4096,
			       d * 16 + i % 16, 4096);
	tally_init(&t);
	for (int d = 0; d < 3; d++) {
		for (int i = 0; i < PIPELINE; i++) {
			struct iovec iov = { bufs + (d * PIPELINE + i) * 4096,
					     4096 };

			tally_add(&t);
			assert_int_equal(vxhs_writev(vd[d], &iov, 1,
						     (uint64_t)i * 4096,
						     tally_done, &t),
					 0);
		}
	}
	assert_int_equal(tally_wait(&t, 60000), 0);
	assert_int_equal(t.ok, 3 * PIPELINE);

	memset(bufs, 0, 3 * PIPELINE * 4096);
	for (int d = 0; d < 3; d++) {
		for (int i = 0; i < PIPELINE; i++) {
			struct iovec iov = { bufs + (d * PIPELINE + i) * 4096,
					     4096 };

			tally_add(&t);
			assert_int_equal(vxhs_readv(vd[d], &iov, 1,
						    (uint64_t)i * 4096,
						    tally_done, &t),
					 0);
		}
	}
	assert_int_equal(tally_wait(&t, 60000), 0);
	assert_int_equal(t.ok, 6 * PIPELINE);
	for (int d = 0; d < 3; d++)
		for (int i = 0; i < PIPELINE; i++) {
			uint8_t *p = bufs + (d * PIPELINE + i) * 4096;

			assert_int_equal(p[0], d * 16 + i % 16);
			assert_int_equal(p[4095], d * 16 + i % 16);
		}
	free(bufs);
	for (int d = 0; d < 3; d++)
		vxhs_vdisk_close(vd[d]);
}

/*
 * The requests in flight on each of an agent's connections, from its
 * status socket (JSON): how many connections carry any, and the most one
 * carries. Fails the test if the report cannot be had.
 */
static unsigned int conns_in_flight(const char *status, unsigned int *most,
				    unsigned int *total)
{
	static const char key[] = "\"in_flight\":";
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char *buf = malloc(1 << 16), *p, *end;
	unsigned int conns = 0;
	size_t len = 0;
	ssize_t n;
	int fd;

	assert_non_null(buf);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", status);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(write(fd, "json\n", 5), 5);
	while ((n = read(fd, buf + len, (1 << 16) - 1 - len)) > 0)
		len += (size_t)n;
	close(fd);
	buf[len] = '\0';
	end = strstr(buf, "],\"vdisks\":[");
	assert_non_null(end);
	*most = *total = 0;
	for (p = strstr(buf, key); p && p < end; p = strstr(p, key)) {
		unsigned int v;

		p += strlen(key);
		v = (unsigned int)strtoul(p, NULL, 10);
		conns += v > 0;
		*total += v;
		*most = MAX(*most, v);
	}
	free(buf);
	return conns;
}

/*
 * nr reads of len bytes submitted at once while the agent holds every
 * answer: the connections that carry them, and the most on one.
 */
static unsigned int spread_of_reads(const struct agent *a, const char *status,
				    struct vxhs_vdisk *vd, uint8_t *buf,
				    unsigned int nr, uint64_t len,
				    unsigned int *most)
{
	unsigned int conns = 0, total = 0;
	struct tally t;

	agent_fault(a, "pause");
	tally_init(&t);
	for (unsigned int i = 0; i < nr; i++) {
		struct iovec iov = { buf + i * len, len };

		tally_add(&t);
		assert_int_equal(
			vxhs_readv(vd, &iov, 1, i * len, tally_done, &t), 0);
	}
	for (int i = 0; i < 1000 && total < nr; i++) {
		conns = conns_in_flight(status, most, &total);
		if (total < nr)
			usleep(10000);
	}
	assert_int_equal(total, nr);
	agent_fault(a, "resume");
	assert_int_equal(tally_wait(&t, 30000), 0);
	assert_int_equal(t.ok, nr);
	return conns;
}

/*
 * Small requests close together share one connection, up to 32 in
 * flight, so both ends move them in few system calls; large ones go one
 * per connection over the pool.
 */
static void small_requests_share_a_connection(void **state)
{
	uint8_t *buf = malloc(8 << 20);
	const struct agent *ap[1];
	const char *extra[4];
	struct vxhs_open_opts o;
	struct vxhs_vdisk *vd;
	unsigned int most, conns = 0;
	char status[300];
	struct agent a;

	assert_non_null(buf);
	snprintf(status, sizeof(status), "%s/.status-%d", env.dir, getpid());
	extra[0] = "--allow-plaintext";
	extra[1] = "--status";
	extra[2] = status;
	extra[3] = NULL;
	agent_start_args(&a, env.dir, 0, extra);
	ap[0] = &a;
	agent_opts(&o, ap, 1);
	assert_int_equal(o.conns_per_agent, 8);
	assert_int_equal(vxhs_vdisk_open(env.ctx, "disk0", &o, &vd), 0);

	/* 1 MiB each: one per connection, once the pool is all up. */
	for (int i = 0; i < 50 && conns < 8; i++)
		conns = spread_of_reads(&a, status, vd, buf, 8, 1 << 20, &most);
	assert_int_equal(conns, 8);
	assert_int_equal(most, 1);
	/* 4 KiB each: 32 on the connection in turn, 32 on the next. */
	assert_int_equal(spread_of_reads(&a, status, vd, buf, 64, 4096, &most),
			 2);
	assert_int_equal(most, 32);

	vxhs_vdisk_close(vd);
	agent_kill(&a, SIGTERM);
	free(buf);
}

/* Vdisk id of one agent, opened with default options. */
static struct vxhs_vdisk *open_on(const struct agent *a, const char *id)
{
	const struct agent *ap[1] = { a };
	struct vxhs_open_opts o;
	struct vxhs_vdisk *vd;

	agent_opts(&o, ap, 1);
	assert_int_equal(vxhs_vdisk_open(env.ctx, id, &o, &vd), 0);
	return vd;
}

/* A scratch directory on the tmpfs /dev/shm. */
static void scratch_shm(char *dir, size_t len)
{
	struct statfs fs;

	assert_int_equal(statfs("/dev/shm", &fs), 0);
	if (fs.f_type != TMPFS_MAGIC)
		fail_msg("/dev/shm is not a tmpfs: this test needs one");
	snprintf(dir, len, "/dev/shm/vxhs-test-XXXXXX");
	assert_non_null(mkdtemp(dir));
}

/* Reads of cached data on an agent serving dir: how many of n ran on a
 * network thread. */
static unsigned long reads_on_loop(const char *dir, unsigned int n)
{
	uint8_t buf[4096], back[4096];
	unsigned long before;
	struct vxhs_vdisk *vd;
	struct agent a;

	vdisk_make(dir, "cached", DISK_SIZE);
	agent_start(&a, dir, 0);
	vd = open_on(&a, "cached");
	memset(buf, 0x5A, sizeof(buf));
	for (unsigned int i = 0; i < n; i++)
		assert_int_equal(sync_pwrite(vd, buf, sizeof(buf), i * 8192ull),
				 0);
	before = agent_counter(&a, "on-loop");
	for (unsigned int i = 0; i < n; i++) {
		assert_int_equal(
			sync_pread(vd, back, sizeof(back), i * 8192ull), 0);
		assert_memory_equal(buf, back, sizeof(back));
	}
	before = agent_counter(&a, "on-loop") - before;
	vxhs_vdisk_close(vd);
	agent_kill(&a, SIGTERM);
	return before;
}

/*
 * A read of cached data runs on the agent's network thread, not a
 * worker's (two thread switches fewer): told by RWF_NOWAIT where the file
 * system can, by mincore on tmpfs, where Linux 6.1 refuses RWF_NOWAIT.
 */
static void cached_reads_run_on_the_network_thread(void **state)
{
	char shm[256];

	assert_int_equal(reads_on_loop(env.dir, 16), 16);

	scratch_shm(shm, sizeof(shm));
	assert_int_equal(reads_on_loop(shm, 16), 16);
	scratch_remove(shm);
}

/*
 * Cached reads asked together are made together, through the network
 * thread's io_uring (counted as "ring"); with --no-io-uring each is a
 * system call of its own. Every read must get its own block's data.
 */
#define BATCH_READS 64

static void batch_of_reads(const struct agent *a, bool by_ring)
{
	const size_t len = 4096;
	uint8_t *buf = malloc(BATCH_READS * len),
		*back = malloc(BATCH_READS * len);
	unsigned long ring, loop;
	unsigned int seed = 5;
	struct vxhs_vdisk *vd;
	struct tally t;

	assert_non_null(buf);
	assert_non_null(back);
	fill_random(buf, BATCH_READS * len, &seed);
	vd = open_on(a, "batch");
	/* Every other block: reads far apart in the file as in one buffer. */
	for (unsigned int i = 0; i < BATCH_READS; i++)
		assert_int_equal(
			sync_pwrite(vd, buf + i * len, len, 2 * i * len), 0);
	memset(back, 0, BATCH_READS * len);
	ring = agent_counter(a, "ring");
	loop = agent_counter(a, "on-loop");
	tally_init(&t);
	for (unsigned int i = 0; i < BATCH_READS; i++) {
		struct iovec iov = { back + i * len, len };

		tally_add(&t);
		assert_int_equal(vxhs_readv(vd, &iov, 1, 2 * i * len,
					    tally_done, &t),
				 0);
	}
	assert_int_equal(tally_wait(&t, 30000), 0);
	assert_int_equal(t.ok, BATCH_READS);
	assert_memory_equal(buf, back, BATCH_READS * len);
	assert_int_equal(agent_counter(a, "on-loop") - loop, BATCH_READS);
	assert_int_equal(agent_counter(a, "ring") - ring,
			 by_ring ? BATCH_READS : 0);
	vxhs_vdisk_close(vd);
	free(back);
	free(buf);
}

static void cached_reads_are_made_in_batches(void **state)
{
	static const char *const no_ring[] = { "--allow-plaintext",
					       "--no-io-uring", NULL };
	bool nowait = dir_reads_nowait(env.dir);
	struct agent a;

	(void)state;
	vdisk_make(env.dir, "batch", DISK_SIZE);
	agent_start(&a, env.dir, 0);
	batch_of_reads(&a, nowait);
	agent_kill(&a, SIGTERM);

	agent_start_args(&a, env.dir, 0, no_ring);
	batch_of_reads(&a, false);
	agent_kill(&a, SIGTERM);
}

/*
 * A read of 64 KiB or more whose pages are not all cached goes to a
 * worker, once the cache was asked (the answer would have gone from the
 * cache, by sendfile); the next one, cached by then, goes out on the
 * network thread. The data must be right either way.
 */
#define UNCACHED_LEN (128u * 1024)

static void uncached_large_reads_go_to_the_workers(void **state)
{
	uint8_t *buf = malloc(UNCACHED_LEN), *back = malloc(UNCACHED_LEN);
	unsigned long loop;
	struct vxhs_vdisk *vd;
	struct agent a;

	(void)state;
	assert_non_null(buf);
	assert_non_null(back);
	for (unsigned int i = 0; i < UNCACHED_LEN; i++)
		buf[i] = (uint8_t)(i * 7 + i / 4096);
	vdisk_make(env.dir, "uncached", DISK_SIZE);
	vdisk_write_uncached(env.dir, "uncached", buf, UNCACHED_LEN);
	agent_start(&a, env.dir, 0);
	vd = open_on(&a, "uncached");

	/* Not cached: a worker reads it. */
	loop = agent_counter(&a, "on-loop");
	assert_int_equal(sync_pread(vd, back, UNCACHED_LEN, 0), 0);
	assert_memory_equal(buf, back, UNCACHED_LEN);
	assert_int_equal(agent_counter(&a, "on-loop") - loop, 0);

	/* Cached by that read: from the page cache, on the network thread. */
	memset(back, 0, UNCACHED_LEN);
	loop = agent_counter(&a, "on-loop");
	assert_int_equal(sync_pread(vd, back, UNCACHED_LEN, 0), 0);
	assert_memory_equal(buf, back, UNCACHED_LEN);
	assert_int_equal(agent_counter(&a, "on-loop") - loop, 1);

	vxhs_vdisk_close(vd);
	agent_kill(&a, SIGTERM);
	free(back);
	free(buf);
}

/*
 * A cached read of 64 KiB or more goes from the page cache (sendfile) to a
 * UNIX socket, and to TCP only with --tcp-sendfile; by copy otherwise. The
 * data must be right every way.
 */
static void cached_large_reads_by_copy_or_sendfile(void **state)
{
	static const char *const tcp_sendfile[] = { "--allow-plaintext",
						    "--tcp-sendfile", NULL };
	const size_t len = 1 << 20;
	uint8_t *buf = malloc(len), *back = malloc(len);
	unsigned int seed = 77;
	struct agent plain, sf;

	(void)state;
	assert_non_null(buf);
	assert_non_null(back);
	fill_random(buf, len, &seed);
	vdisk_make(env.dir, "cached", DISK_SIZE);
	agent_start(&plain, env.dir, 0);
	agent_start_args(&sf, env.dir, 0, tcp_sendfile);

	/* TCP, the UNIX socket, TCP with --tcp-sendfile */
	for (int way = 0; way < 3; way++) {
		const struct agent *a[] = { way < 2 ? &plain : &sf };
		struct vxhs_open_opts o;
		struct vxhs_vdisk *vd;
		unsigned long before;

		if (way == 1)
			agent_opts_unix(&o, a[0]);
		else
			agent_opts(&o, a, 1);
		assert_int_equal(vxhs_vdisk_open(env.ctx, "cached", &o, &vd),
				 0);
		buf[0] = (uint8_t)way; /* each way its own data */
		assert_int_equal(sync_pwrite(vd, buf, len, 0), 0);
		memset(back, 0, len);
		before = agent_counter(a[0], "sendfile");
		assert_int_equal(sync_pread(vd, back, len, 0), 0);
		assert_memory_equal(buf, back, len);
		assert_int_equal(agent_counter(a[0], "sendfile") - before,
				 way ? 1 : 0);
		vxhs_vdisk_close(vd);
	}
	agent_kill(&sf, SIGTERM);
	agent_kill(&plain, SIGTERM);
	free(back);
	free(buf);
}

/* A process that takes cpu from others there most of the time: runs 15
 * ms, sleeps 2 ms, at real-time priority, until killed or 10 s passed. */
static pid_t hog_start(int cpu)
{
	struct sched_param sp = { .sched_priority = 1 };
	cpu_set_t set;
	int status;
	pid_t pid;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		uint64_t end = vxhs_now_ns() + 10 * NSEC_PER_SEC;

		if (sched_setaffinity(0, sizeof(set), &set) ||
		    sched_setscheduler(0, SCHED_FIFO, &sp))
			_exit(1);
		while (vxhs_now_ns() < end) {
			uint64_t busy = vxhs_now_ns() + 15 * NSEC_PER_MSEC;

			while (vxhs_now_ns() < busy)
				;
			usleep(2000);
		}
		_exit(0);
	}
	usleep(20000);
	if (waitpid(pid, &status, WNOHANG) == pid)
		fail_msg("cannot run a real-time process to preempt vxhsd "
			 "(this test needs root)");
	return pid;
}

/*
 * A small write runs on the agent's network thread, and only one that
 * slept there (a slow disk) sends the vdisk's writes to the workers for a
 * while. One that took long because the thread was preempted does not: a
 * host short of CPU would otherwise pay two more hand-offs per write. The
 * agent shares one CPU with a real-time process that takes it 15 ms of
 * every 17 while 16 writes of 64 KiB are kept in flight, so many writes
 * are preempted mid-way; all must stay on the network thread, also when
 * the hold of the lock record's gate begins again (fence.c).
 */
#define BUSY_WRITES 16
#define BUSY_LEN    (64u * 1024)

/* Writes for a second, BUSY_WRITES in flight: how many. */
static unsigned int busy_writes(struct vxhs_vdisk *vd, uint8_t *buf)
{
	struct iovec iov = { buf, BUSY_LEN };
	uint64_t end = vxhs_now_ns() + NSEC_PER_SEC;
	unsigned int n = 0;
	struct tally t;

	tally_init(&t);
	while (vxhs_now_ns() < end) {
		for (unsigned int i = 0; i < BUSY_WRITES; i++, n++) {
			tally_add(&t);
			assert_int_equal(vxhs_writev(vd, &iov, 1,
						     i * (uint64_t)BUSY_LEN,
						     tally_done, &t),
					 0);
		}
		assert_int_equal(tally_wait(&t, 10000), 0);
	}
	assert_int_equal(t.ok, n);
	return n;
}

static void preempted_writes_stay_on_the_network_thread(void **state)
{
	int cpu = (int)sysconf(_SC_NPROCESSORS_ONLN) - 1;
	uint8_t *buf = malloc(BUSY_LEN);
	cpu_set_t one, all;
	unsigned int n;
	unsigned long on_loop;
	char shm[256];
	struct vxhs_vdisk *vd;
	struct agent a;
	pid_t hog;

	(void)state;
	/* tmpfs: no journal, so no write there sleeps for the disk. */
	scratch_shm(shm, sizeof(shm));
	vdisk_make(shm, "busy", DISK_SIZE);
	/* The agent inherits this process's cpu set at its start. */
	assert_int_equal(sched_getaffinity(0, sizeof(all), &all), 0);
	CPU_ZERO(&one);
	CPU_SET(cpu, &one);
	assert_int_equal(sched_setaffinity(0, sizeof(one), &one), 0);
	agent_start(&a, shm, 0);
	assert_int_equal(sched_setaffinity(0, sizeof(all), &all), 0);
	vd = open_on(&a, "busy");
	memset(buf, 0xC3, BUSY_LEN);
	/* Allocated first: a write into a new tmpfs page may sleep. */
	for (unsigned int i = 0; i < BUSY_WRITES; i++)
		assert_int_equal(sync_pwrite(vd, buf, BUSY_LEN, i * BUSY_LEN),
				 0);

	hog = hog_start(cpu);
	on_loop = agent_counter(&a, "on-loop");
	/* The agent's hold of the lock record's gate ends after each pause
	 * and begins again on the network thread: with the record empty,
	 * then with a lock in it (on tmpfs, read once mincore says it can). */
	n = busy_writes(vd, buf);
	assert_int_equal(vxhs_lock_acquire_sync(vd, "busy", 1, NULL), 0);
	n += busy_writes(vd, buf);
	kill(hog, SIGKILL);
	waitpid(hog, NULL, 0);
	on_loop = agent_counter(&a, "on-loop") - on_loop;
	print_message("%u writes beside a busy cpu, %lu on the network "
		      "thread\n",
		      n, on_loop);
	assert_int_equal(on_loop, n);

	vxhs_vdisk_close(vd);
	agent_kill(&a, SIGTERM);
	scratch_remove(shm);
	free(buf);
}

/* Holds the file's lock for a while: tmpfs allocates (and zeroes) 1 GiB
 * past the end, under the inode lock, then gives it back. */
static void *hold_file_lock(void *arg)
{
	int fd = *(int *)arg;

	assert_int_equal(fallocate(fd, FALLOC_FL_KEEP_SIZE, DISK_SIZE, 1 << 30),
			 0);
	assert_int_equal(fallocate(fd,
				   FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				   DISK_SIZE, 1 << 30),
			 0);
	return NULL;
}

/*
 * The other side of the guard: a write on the network thread that sleeps
 * (here on the file's lock, which another process holds as a slow disk
 * would) sends the vdisk's writes to the workers for a second, so that a
 * slow disk does not hold up every connection of the thread.
 */
static void sleeping_writes_go_to_the_workers(void **state)
{
	uint8_t buf[4096];
	unsigned long on_loop;
	unsigned int n = 0;
	char shm[256], path[300];
	struct vxhs_vdisk *vd;
	struct agent a;
	pthread_t holder;
	uint64_t end;
	int fd;

	(void)state;
	scratch_shm(shm, sizeof(shm));
	vdisk_make(shm, "slow", DISK_SIZE);
	agent_start(&a, shm, 0);
	vd = open_on(&a, "slow");
	memset(buf, 0x3C, sizeof(buf));
	/* The first opens the lock record, the second learns that tmpfs
	 * refuses RWF_NOWAIT: both on a worker. */
	for (unsigned int i = 0; i < 3; i++)
		assert_int_equal(sync_pwrite(vd, buf, sizeof(buf), 0), 0);
	snprintf(path, sizeof(path), "%s/slow", shm);
	fd = open(path, O_RDWR);
	assert_true(fd >= 0);

	on_loop = agent_counter(&a, "on-loop");
	assert_int_equal(pthread_create(&holder, NULL, hold_file_lock, &fd), 0);
	end = vxhs_now_ns() + 300 * NSEC_PER_MSEC;
	while (vxhs_now_ns() < end || pthread_tryjoin_np(holder, NULL)) {
		assert_int_equal(sync_pwrite(vd, buf, sizeof(buf), 0), 0);
		n++;
	}
	/* Within the second after the slow one: on the workers. */
	for (unsigned int i = 0; i < 8; i++, n++)
		assert_int_equal(sync_pwrite(vd, buf, sizeof(buf), 0), 0);
	on_loop = agent_counter(&a, "on-loop") - on_loop;
	print_message("%u writes beside a held file lock, %lu on the "
		      "network thread\n",
		      n, on_loop);
	assert_true(on_loop + 8 <= n);

	close(fd);
	vxhs_vdisk_close(vd);
	agent_kill(&a, SIGTERM);
	scratch_remove(shm);
}

static void stat_reports_size_and_extensions(void **state)
{
	struct vxhs_vdisk *vd = open_disk("disk1", 0);
	struct vxhs_vdisk_info info;

	vxhs_vdisk_get_info(vd, &info);
	assert_int_equal(info.size, DISK_SIZE);
	assert_int_equal(info.features, VXHS_FEAT_ALL);
	assert_int_equal(info.agent_max_io, 8u << 20);
	assert_string_equal(info.agent_name, "vxhsd " VXHS_VERSION);
	vxhs_vdisk_close(vd);
}

static uint64_t blocks_of(const char *id)
{
	char path[512];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", env.dir, id);
	assert_int_equal(stat(path, &st), 0);
	return (uint64_t)st.st_blocks;
}

static void flush_zeroes_and_discard(void **state)
{
	struct vxhs_vdisk *vd = open_disk("disk2", 0);
	size_t len = 1 << 20;
	uint8_t *buf = malloc(len), *zero = calloc(1, len);
	uint64_t before;

	memset(buf, 0xEE, len);
	assert_int_equal(sync_pwrite(vd, buf, len, 8 << 20), 0);
	assert_int_equal(vxhs_flush_sync(vd), 0);
	file_pread("disk2", buf, len, 8 << 20);
	assert_int_equal(buf[0], 0xEE);

	/* write zeroes over the first half */
	assert_int_equal(vxhs_write_zeroes_sync(vd, 8 << 20, len / 2), 0);
	assert_int_equal(sync_pread(vd, buf, len, 8 << 20), 0);
	assert_memory_equal(buf, zero, len / 2);
	assert_int_equal(buf[len / 2], 0xEE);

	/* discard reads back as zeroes and gives the space back */
	before = blocks_of("disk2");
	assert_int_equal(vxhs_discard_sync(vd, 8 << 20, len), 0);
	assert_int_equal(sync_pread(vd, buf, len, 8 << 20), 0);
	assert_memory_equal(buf, zero, len);
	assert_true(blocks_of("disk2") < before);

	/* a range past the end is refused */
	assert_int_equal(vxhs_write_zeroes_sync(vd, DISK_SIZE - 512, 1024),
			 -ERANGE);
	free(buf);
	free(zero);
	vxhs_vdisk_close(vd);
}

/*
 * WRITE SAME: the agent writes the pattern over the range in pieces (two
 * here), each starting on a pattern boundary even for a pattern length
 * that divides no power of two; only the pattern crossed the network
 * (one request, no WRITE). Bad lengths and ranges get precise errors, and
 * an agent that does not offer it is not sent it.
 */
static void write_same_by_the_agent(void **state)
{
	struct vxhs_vdisk *vd = open_disk("disk2", 0);
	uint64_t off = 4096, len = 520ull * 40000; /* 20.8 MB */
	unsigned long writes, same;
	uint8_t pattern[520], *buf = malloc(len + 1024);

	(void)state;
	for (size_t i = 0; i < sizeof(pattern); i++)
		pattern[i] = (uint8_t)(i * 13 + 7);
	memset(buf, 0xEE, len + 1024);
	assert_int_equal(sync_pwrite(vd, buf, len + 1024, off - 512), 0);
	writes = agent_counter(&env.agent, "write");
	same = agent_counter(&env.agent, "write-same");
	assert_int_equal(vxhs_write_same_sync(vd, pattern, sizeof(pattern), off,
					      len),
			 0);
	assert_int_equal(agent_counter(&env.agent, "write-same"), same + 1);
	assert_int_equal(agent_counter(&env.agent, "write"), writes);
	file_pread("disk2", buf, len + 1024, off - 512);
	assert_true(buf[0] == 0xEE && buf[511] == 0xEE);
	for (uint64_t o = 0; o < len; o += sizeof(pattern))
		assert_memory_equal(buf + 512 + o, pattern, sizeof(pattern));
	assert_true(buf[512 + len] == 0xEE && buf[len + 1023] == 0xEE);

	assert_int_equal(vxhs_write_same_sync(vd, pattern, 0, off, 512),
			 -EINVAL);
	assert_int_equal(vxhs_write_same_sync(vd, pattern, 512, off, 0),
			 -EINVAL);
	assert_int_equal(vxhs_write_same_sync(vd, pattern, 512, off, 1000),
			 -EINVAL);
	assert_non_null(strstr(vxhs_errmsg(), "not a non-zero multiple"));
	assert_int_equal(vxhs_write_same_sync(vd, buf, (64 << 10) + 1, 0,
					      (64 << 10) + 1),
			 -EINVAL);
	assert_int_equal(vxhs_write_same_sync(vd, pattern, 512, DISK_SIZE - 512,
					      1024),
			 -ERANGE);
	vxhs_vdisk_close(vd);

	agent_fault(&env.agent, "hide write-same");
	vd = open_disk("disk2", 0);
	assert_int_equal(vxhs_write_same_sync(vd, pattern, 512, 0, 512),
			 -EOPNOTSUPP);
	vxhs_vdisk_close(vd);
	agent_fault(&env.agent, "show all");
	free(buf);
}

/* COPY of len bytes at from to to within vdisk "copysrc", which first
 * holds data; the file must then hold what memmove would make of it. */
static void copy_within(struct vxhs_vdisk *vd, const uint8_t *data,
			uint8_t *got, uint64_t from, uint64_t to, uint64_t len)
{
	assert_int_equal(sync_pwrite(vd, data, len + 4096, 0), 0);
	assert_int_equal(vxhs_copy_sync(vd, "copysrc", from, to, len), 0);
	file_pread("copysrc", got, len, (off_t)to);
	assert_memory_equal(got, data + from, len);
}

/*
 * COPY: the agent copies from another vdisk and within one, in pieces
 * (20 MiB is two), overlapping ranges in both directions as if the source
 * were read first; no data crosses the network (no READ or WRITE at the
 * agent). Bad lengths, sources and ranges get precise errors, and an
 * agent that does not offer it is not sent it.
 */
static void copy_by_the_agent(void **state)
{
	uint64_t len = 20 << 20;
	uint8_t *data = malloc(len + 4096), *got = malloc(len + 4096);
	unsigned long reads, writes, copies;
	struct vxhs_vdisk *src, *dst;
	unsigned int seed = 7;

	(void)state;
	vdisk_make(env.dir, "copysrc", DISK_SIZE);
	vdisk_make(env.dir, "copydst", DISK_SIZE);
	src = open_disk("copysrc", 0);
	dst = open_disk("copydst", 0);
	fill_random(data, len + 4096, &seed);
	assert_int_equal(sync_pwrite(src, data, len + 4096, 0), 0);
	reads = agent_counter(&env.agent, "read");
	writes = agent_counter(&env.agent, "write");
	copies = agent_counter(&env.agent, "copy");
	assert_int_equal(vxhs_copy_sync(dst, "copysrc", 4096, 1 << 20, len), 0);
	assert_int_equal(agent_counter(&env.agent, "copy"), copies + 1);
	assert_int_equal(agent_counter(&env.agent, "read"), reads);
	assert_int_equal(agent_counter(&env.agent, "write"), writes);
	file_pread("copydst", got, len, 1 << 20);
	assert_memory_equal(got, data + 4096, len);

	copy_within(src, data, got, 0, 512, len);	  /* forward overlap */
	copy_within(src, data, got, 4096, 512, len);	  /* backward overlap */
	copy_within(src, data, got, 0, len + 1024, 2048); /* apart */

	assert_int_equal(vxhs_copy_sync(dst, "copysrc", 0, 0, 0), -EINVAL);
	assert_int_equal(vxhs_copy_sync(dst, "copysrc", 0, 0,
					VXHS_COPY_MAX + 1ull),
			 -EINVAL);
	assert_int_equal(vxhs_copy_sync(dst, "../copysrc", 0, 0, 512), -EINVAL);
	assert_int_equal(vxhs_copy_sync(dst, "nosuchdisk", 0, 0, 512), -ENOENT);
	assert_int_equal(vxhs_copy_sync(dst, "copysrc", DISK_SIZE - 512, 0,
					1024),
			 -ERANGE);
	assert_int_equal(vxhs_copy_sync(dst, "copysrc", 0, DISK_SIZE - 512,
					1024),
			 -ERANGE);
	vxhs_vdisk_close(dst);
	agent_fault(&env.agent, "hide copy");
	dst = open_disk("copydst", 0);
	assert_int_equal(vxhs_copy_sync(dst, "copysrc", 0, 0, 512),
			 -EOPNOTSUPP);
	agent_fault(&env.agent, "show all");
	vxhs_vdisk_close(dst);
	vxhs_vdisk_close(src);
	free(got);
	free(data);
}

/* Adds one to the counter at offset 0 by COMPARE AND WRITE, n times. */
struct counter_worker {
	struct vxhs_vdisk *vd;
	unsigned int n;
	unsigned int retries;
	int error;
};

static void *count_up(void *arg)
{
	struct counter_worker *w = arg;
	uint64_t pair[2], at;
	struct iovec iov = { pair, sizeof(pair) };

	for (unsigned int i = 0; i < w->n && !w->error;) {
		int ret = sync_pread(w->vd, pair, 8, 0);

		if (ret) {
			w->error = ret;
			break;
		}
		pair[1] = pair[0] + 1;
		ret = vxhs_compare_and_write_sync(w->vd, &iov, 1, 0, 8, &at);
		if (ret == -EILSEQ) {
			w->retries++;
			continue;
		}
		w->error = ret;
		i++;
	}
	return NULL;
}

/*
 * COMPARE AND WRITE: written when equal, -EILSEQ with the first differing
 * byte when not, bad arguments refused; and atomic: two clients through
 * two agents on the same directory count up a shared counter without
 * losing one increment.
 */
static void compare_and_write(void **state)
{
	struct vxhs_vdisk *vd = open_disk("disk1", 0);
	struct counter_worker w[2] = { { .n = 300 }, { .n = 300 } };
	const struct agent *a[1];
	struct vxhs_open_opts o;
	struct agent second;
	uint8_t buf[2 * 4096], now[4096];
	struct iovec iov = { buf, sizeof(buf) };
	pthread_t t[2];
	uint64_t at = 0, count = 0;

	memset(buf, 0x11, 4096);
	memset(buf + 4096, 0x22, 4096);
	assert_int_equal(sync_pwrite(vd, buf, 4096, 65536), 0);
	assert_int_equal(
		vxhs_compare_and_write_sync(vd, &iov, 1, 65536, 4096, &at), 0);
	file_pread("disk1", now, sizeof(now), 65536);
	assert_memory_equal(now, buf + 4096, 4096);
	/* The range holds 0x22 now: comparing with 0x11 fails at byte 0,
	 * and with 0x22 except one byte, at that byte. */
	assert_int_equal(vxhs_compare_and_write_sync(vd, &iov, 1, 65536, 4096,
						     &at),
			 -EILSEQ);
	assert_int_equal(at, 0);
	memset(buf, 0x22, 4096);
	buf[1000] = 0;
	memset(buf + 4096, 0x33, 4096);
	assert_int_equal(vxhs_compare_and_write_sync(vd, &iov, 1, 65536, 4096,
						     &at),
			 -EILSEQ);
	assert_int_equal(at, 1000);
	file_pread("disk1", now, sizeof(now), 65536);
	assert_int_equal(now[0], 0x22);
	assert_int_equal(vxhs_compare_and_write_sync(vd, &iov, 1, 65536, 0,
						     &at),
			 -EINVAL);
	assert_int_equal(vxhs_compare_and_write_sync(vd, &iov, 1, 65536, 2048,
						     &at),
			 -EINVAL);
	assert_int_equal(vxhs_compare_and_write_sync(
				 vd, &iov, 1, DISK_SIZE - 2048, 4096, &at),
			 -ERANGE);

	/* The counter, through two agents. */
	assert_int_equal(sync_pwrite(vd, &count, 8, 0), 0);
	agent_start(&second, env.dir, 0);
	a[0] = &second;
	agent_opts(&o, a, 1);
	w[0].vd = vd;
	assert_int_equal(vxhs_vdisk_open(env.ctx, "disk1", &o, &w[1].vd), 0);
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, count_up, &w[i]),
				 0);
	for (int i = 0; i < 2; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(w[i].error, 0);
	}
	assert_int_equal(sync_pread(vd, &count, 8, 0), 0);
	assert_int_equal(count, 600);
	vxhs_vdisk_close(w[1].vd);
	agent_kill(&second, SIGTERM);
	vxhs_vdisk_close(vd);
}

static void bad_requests_get_precise_errors(void **state)
{
	const struct agent *a[] = { &env.agent };
	struct vxhs_open_opts o;
	struct vxhs_vdisk *vd;
	char id[70];
	uint8_t buf[4096];

	agent_opts(&o, a, 1);
	assert_int_equal(vxhs_vdisk_open(env.ctx, "missing", &o, &vd), -ENOENT);
	assert_non_null(strstr(vxhs_errmsg(), "no such vdisk"));
	memset(id, 'a', 64);
	id[64] = '\0';
	assert_int_equal(vxhs_vdisk_open(env.ctx, id, &o, &vd), -EINVAL);
	assert_int_equal(vxhs_vdisk_open(env.ctx, "../etc", &o, &vd), -EINVAL);
	o.nr_agents = 0;
	assert_int_equal(vxhs_vdisk_open(env.ctx, "disk0", &o, &vd), -EINVAL);

	vd = open_disk("disk0", 0);
	assert_int_equal(sync_pread(vd, buf, 4096, DISK_SIZE), -ERANGE);
	assert_int_equal(sync_pread(vd, buf, 4096, DISK_SIZE - 2048), -ERANGE);
	assert_int_equal(sync_pread(vd, buf, 0, 0), -EINVAL);
	assert_int_equal(sync_pread(vd, buf, 4096, UINT64_MAX - 100), -EINVAL);
	/* and the vdisk still works */
	assert_int_equal(sync_pread(vd, buf, 4096, 0), 0);
	vxhs_vdisk_close(vd);
}

static void count_line(void *opaque, int level, const char *msg)
{
	(void)level;
	(void)msg;
	atomic_fetch_add((atomic_uint *)opaque, 1);
}

/*
 * A vdisk reopened every second against an agent that is down (as the
 * handler does after a loss) logs its connection trouble once, not at
 * every attempt: what the loop knows of an agent outlives the attempt.
 */
static void reopening_against_a_dead_agent_logs_once(void **state)
{
	atomic_uint lines = 0;
	struct vxhs_ctx_opts co;
	struct vxhs_open_opts o;
	struct vxhs_ctx *ctx;
	struct vxhs_vdisk *vd;

	(void)state;
	vxhs_ctx_opts_init(&co);
	co.log_level = LOG_INFO;
	co.log = count_line;
	co.log_opaque = &lines;
	co.io_threads = 1;
	assert_int_equal(vxhs_ctx_new(&co, &ctx), 0);
	vxhs_open_opts_init(&o);
	vxhs_agent_addr_parse("127.0.0.1:1", &o.agents[0]);
	o.nr_agents = 1;
	o.allow_plaintext = true;
	for (int i = 0; i < 10; i++)
		assert_int_equal(vxhs_vdisk_open(ctx, "disk0", &o, &vd),
				 -ECONNREFUSED);
	/* plaintext warning, asking the agent, connect refused */
	assert_true(atomic_load(&lines) <= 3);
	vxhs_ctx_free(ctx);
}

/* TCP without TLS only when the caller says so; UNIX sockets need no TLS. */
static void plaintext_tcp_needs_consent(void **state)
{
	const struct agent *a[] = { &env.agent };
	struct vxhs_open_opts o;
	struct vxhs_vdisk *vd;

	(void)state;
	agent_opts(&o, a, 1);
	o.allow_plaintext = false;
	assert_int_equal(vxhs_vdisk_open(env.ctx, "disk0", &o, &vd), -EINVAL);
	assert_non_null(strstr(vxhs_errmsg(), "is reached over TCP without "
					      "TLS"));
	assert_non_null(strstr(vxhs_errmsg(), "127.0.0.1:"));
	o.allow_plaintext = true;
	assert_int_equal(vxhs_vdisk_open(env.ctx, "disk0", &o, &vd), 0);
	vxhs_vdisk_close(vd);
}

static void unreachable_agent_fails_open_quickly(void **state)
{
	struct vxhs_open_opts o;
	struct vxhs_vdisk *vd;
	uint64_t t0 = vxhs_now_ns();

	vxhs_open_opts_init(&o);
	vxhs_agent_addr_parse("127.0.0.1:1", &o.agents[0]);
	vxhs_agent_addr_parse("unix:/nonexistent/sock", &o.agents[1]);
	o.nr_agents = 2;
	o.allow_plaintext = true;
	assert_int_equal(vxhs_vdisk_open(env.ctx, "disk0", &o, &vd),
			 -ECONNREFUSED);
	assert_non_null(strstr(vxhs_errmsg(), "127.0.0.1:1"));
	assert_non_null(strstr(vxhs_errmsg(), "unix:/nonexistent/sock"));
	assert_true(vxhs_now_ns() - t0 < 5 * NSEC_PER_SEC);
}

static void unix_socket_transport(void **state)
{
	struct vxhs_open_opts o;
	struct vxhs_vdisk *vd;
	uint8_t buf[4096] = { 1, 2, 3 }, back[4096];

	agent_opts_unix(&o, &env.agent);
	assert_int_equal(vxhs_vdisk_open(env.ctx, "disk1", &o, &vd), 0);
	assert_int_equal(sync_pwrite(vd, buf, sizeof(buf), 12345), 0);
	assert_int_equal(sync_pread(vd, back, sizeof(back), 12345), 0);
	assert_memory_equal(buf, back, sizeof(buf));
	vxhs_vdisk_close(vd);
}

static void open_close_loop_releases_everything(void **state)
{
	for (int i = 0; i < 300; i++) {
		struct vxhs_vdisk *vd = open_disk(i % 2 ? "disk1" : "disk2", 0);
		uint8_t buf[512];

		if (i % 10 == 0)
			assert_int_equal(sync_pread(vd, buf, 512, 0), 0);
		vxhs_vdisk_close(vd);
	}
}

static void close_with_requests_in_flight_cancels_them(void **state)
{
	struct vxhs_vdisk *vd = open_disk("disk0", 0);
	uint8_t *buf = malloc(64 * 65536);
	struct tally t;

	/* The agent holds its answers: none can complete before close. */
	agent_fault(&env.agent, "pause");
	tally_init(&t);
	for (int i = 0; i < 64; i++) {
		struct iovec iov = { buf + i * 65536, 65536 };

		tally_add(&t);
		assert_int_equal(vxhs_readv(vd, &iov, 1, (uint64_t)i * 65536,
					    tally_done, &t),
				 0);
	}
	vxhs_vdisk_close(vd);
	/* every callback ran before close returned, each cancelled */
	assert_int_equal(tally_wait(&t, 0), 0);
	assert_int_equal(t.failed, 64);
	assert_int_equal(t.first_error, -ECANCELED);
	agent_fault(&env.agent, "resume");
	free(buf);
}

/* Against the fake agent. */

static struct vxhs_vdisk *open_fake(struct fake_agent *f, unsigned int deadline)
{
	struct vxhs_open_opts o;
	struct vxhs_vdisk *vd;
	char addr[64];

	vxhs_open_opts_init(&o);
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", f->port);
	vxhs_agent_addr_parse(addr, &o.agents[0]);
	o.nr_agents = 1;
	o.allow_plaintext = true;
	o.conns_per_agent = 2;
	o.failover_deadline_ms = deadline;
	o.io_timeout_ms = 2000;
	o.max_attempts = 3;
	assert_int_equal(vxhs_vdisk_open(env.ctx, "fake", &o, &vd), 0);
	return vd;
}

static void v34_agent_gets_only_v34_opcodes(void **state)
{
	struct fake_agent f;
	struct vxhs_vdisk *vd;
	struct vxhs_vdisk_info info;
	uint8_t buf[8192];

	fake_start(&f, FAKE_GOOD, 1 << 20);
	vd = open_fake(&f, 5000);
	vxhs_vdisk_get_info(vd, &info);
	assert_int_equal(info.size, 1 << 20);
	assert_int_equal(info.features, 0);
	assert_int_equal(vxhs_flush_sync(vd), -EOPNOTSUPP);
	assert_int_equal(vxhs_write_zeroes_sync(vd, 0, 4096), -EOPNOTSUPP);
	assert_int_equal(vxhs_discard_sync(vd, 0, 4096), -EOPNOTSUPP);
	assert_int_equal(
		vxhs_compare_and_write_sync(vd, &(struct iovec){ buf, 8192 }, 1,
					    0, 4096, NULL),
		-EOPNOTSUPP);
	assert_int_equal(sync_pread(vd, buf, sizeof(buf), 100), 0);
	assert_int_equal(buf[0], (uint8_t)(100 * 7 + 3));
	vxhs_vdisk_close(vd);
	fake_stop(&f);
	assert_int_equal(f.unknown_opcodes, 0);
}

static void unknown_cookie_drops_the_connection_and_recovers(void **state)
{
	struct fake_agent f;
	struct vxhs_vdisk *vd;
	uint8_t buf[4096];
	unsigned int conns;

	fake_start(&f, FAKE_BAD_COOKIE_ONCE, 1 << 20);
	vd = open_fake(&f, 10000);
	conns = f.connections;
	assert_int_equal(sync_pread(vd, buf, sizeof(buf), 4096), 0);
	assert_int_equal(buf[1], (uint8_t)(4097 * 7 + 3));
	assert_int_equal(f.bad_answers, 1);
	assert_true(f.reads >= 2);
	/* the bad connection was dropped, then failover probed the agent */
	assert_true(f.connections > conns);
	assert_int_equal(f.failover_probes, 1);
	vxhs_vdisk_close(vd);
	fake_stop(&f);
}

static void persistent_protocol_errors_fail_the_request(void **state)
{
	enum fake_mode modes[] = { FAKE_BAD_COOKIE_ALWAYS, FAKE_SHORT_READ,
				   FAKE_CAW_BAD_OFFSET };

	for (size_t m = 0; m < ARRAY_SIZE(modes); m++) {
		struct fake_agent f;
		struct vxhs_vdisk *vd;
		uint8_t buf[4096];
		struct iovec iov = { buf, sizeof(buf) };
		uint64_t t0, at = 7;

		fake_start(&f, modes[m], 1 << 20);
		vd = open_fake(&f, 20000);
		t0 = vxhs_now_ns();
		if (modes[m] == FAKE_CAW_BAD_OFFSET) {
			/* A difference reported outside the range: the
			 * answer is refused, the offset left alone. */
			assert_int_equal(vxhs_compare_and_write_sync(
						 vd, &iov, 1, 0, 2048, &at),
					 -EPROTO);
			assert_int_equal(at, 7);
		} else {
			assert_int_equal(sync_pread(vd, buf, sizeof(buf), 0),
					 -EPROTO);
		}
		assert_true(vxhs_now_ns() - t0 < 10 * NSEC_PER_SEC);
		assert_int_equal(f.bad_answers, 3); /* max_attempts */
		vxhs_vdisk_close(vd);
		fake_stop(&f);
	}
}

static void media_errors_are_not_failed_over(void **state)
{
	struct fake_agent f;
	struct vxhs_vdisk *vd;
	uint8_t buf[4096] = { 0 };

	fake_start(&f, FAKE_MEDIA_ERROR, 1 << 20);
	vd = open_fake(&f, 5000);
	assert_int_equal(sync_pread(vd, buf, sizeof(buf), 0), -EIO);
	assert_int_equal(sync_pwrite(vd, buf, sizeof(buf), 0), -EIO);
	/* answered once, not retried, no failover probe */
	assert_int_equal(f.reads, 1);
	assert_int_equal(f.failover_probes, 0);
	vxhs_vdisk_close(vd);
	fake_stop(&f);
}

/* An agent's self-reported name reaches callers (logs, terminals) with
 * nothing but printable ASCII in it. */
static void agent_name_is_made_printable(void **state)
{
	struct fake_agent f;
	struct vxhs_vdisk *vd;
	struct vxhs_vdisk_info info;

	fake_start(&f, FAKE_ODD_NAME, 1 << 20);
	vd = open_fake(&f, 5000);
	vxhs_vdisk_get_info(vd, &info);
	assert_string_equal(info.agent_name, "evil?2026 forged line?[2J");
	vxhs_vdisk_close(vd);
	fake_stop(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(random_round_trips_keep_data),
		cmocka_unit_test(many_segments_are_not_truncated),
		cmocka_unit_test(large_writes_from_pages),
		cmocka_unit_test(large_writes_without_pipes),
		cmocka_unit_test(cached_large_reads_by_copy_or_sendfile),
		cmocka_unit_test(cached_reads_are_made_in_batches),
		cmocka_unit_test(pipelines_256_requests_per_vdisk),
		cmocka_unit_test(small_requests_share_a_connection),
		cmocka_unit_test(cached_reads_run_on_the_network_thread),
		cmocka_unit_test(uncached_large_reads_go_to_the_workers),
		cmocka_unit_test(preempted_writes_stay_on_the_network_thread),
		cmocka_unit_test(sleeping_writes_go_to_the_workers),
		cmocka_unit_test(io_threads_and_sync_calls),
		cmocka_unit_test(stat_reports_size_and_extensions),
		cmocka_unit_test(flush_zeroes_and_discard),
		cmocka_unit_test(compare_and_write),
		cmocka_unit_test(write_same_by_the_agent),
		cmocka_unit_test(copy_by_the_agent),
		cmocka_unit_test(bad_requests_get_precise_errors),
		cmocka_unit_test(plaintext_tcp_needs_consent),
		cmocka_unit_test(reopening_against_a_dead_agent_logs_once),
		cmocka_unit_test(unreachable_agent_fails_open_quickly),
		cmocka_unit_test(unix_socket_transport),
		cmocka_unit_test(open_close_loop_releases_everything),
		cmocka_unit_test(close_with_requests_in_flight_cancels_them),
		cmocka_unit_test(v34_agent_gets_only_v34_opcodes),
		cmocka_unit_test(
			unknown_cookie_drops_the_connection_and_recovers),
		cmocka_unit_test(persistent_protocol_errors_fail_the_request),
		cmocka_unit_test(media_errors_are_not_failed_over),
		cmocka_unit_test(agent_name_is_made_printable),
	};

	test_select_from_env(tests);
	return cmocka_run_group_tests_name("client", tests, setup, teardown);
}
