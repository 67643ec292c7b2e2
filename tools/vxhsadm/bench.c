// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * vxhsadm bench: a closed-loop load generator. Each of --qd slots resubmits
 * from its completion callback, so the queue depth stays constant.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "common/util.h"
#include "vxhsadm.h"

/* Latency histogram: 64 powers of two, each cut in 16 linear steps. */
#define SUB	   16
#define NR_BUCKETS (64 * SUB)

/* What every vdisk of the run shares. */
struct run {
	bool write, random;
	uint64_t bs;
	_Atomic bool stop;
	struct waiter active;
};

struct bench;

struct slot {
	struct bench *b;
	struct iovec iov;
	uint64_t offset;
	uint64_t started;
};

/* One vdisk: touched only by the I/O thread that serves it. */
struct bench {
	struct run *run;
	struct vxhs_vdisk *vd;
	uint64_t span, next_seq, rng;
	uint64_t ops, bytes;
	_Atomic uint64_t errors;
	int first_error;
	uint64_t hist[NR_BUCKETS];
};

static unsigned int bucket(uint64_t ns)
{
	unsigned int msb, sub;

	if (ns < SUB)
		return (unsigned int)ns;
	msb = 63 - (unsigned int)__builtin_clzll(ns);
	sub = (unsigned int)(ns >> (msb - 4)) & (SUB - 1);
	return (msb - 3) * SUB + sub;
}

static uint64_t bucket_value(unsigned int i)
{
	unsigned int msb = i / SUB + 3, sub = i % SUB;

	if (i < SUB)
		return i;
	return ((uint64_t)(SUB + sub) << (msb - 4));
}

static uint64_t percentile(const struct bench *b, double p)
{
	uint64_t want = (uint64_t)(p * (double)b->ops), seen = 0;

	for (unsigned int i = 0; i < NR_BUCKETS; i++) {
		seen += b->hist[i];
		if (seen > want)
			return bucket_value(i);
	}
	return 0;
}

static uint64_t next_offset(struct bench *b)
{
	uint64_t bs = b->run->bs, blocks = b->span / bs, off;

	if (b->run->random) {
		/* xorshift64: cheap, good enough to spread offsets */
		b->rng ^= b->rng << 13;
		b->rng ^= b->rng >> 7;
		b->rng ^= b->rng << 17;
		return (b->rng % blocks) * bs;
	}
	off = b->next_seq;
	b->next_seq = (b->next_seq + bs) % (blocks * bs);
	return off;
}

/* CPU time, user and system, of the whole process (its I/O thread). */
static uint64_t cpu_ns(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru))
		return 0;
	return ((uint64_t)ru.ru_utime.tv_sec + (uint64_t)ru.ru_stime.tv_sec) *
		       1000000000ull +
	       ((uint64_t)ru.ru_utime.tv_usec + (uint64_t)ru.ru_stime.tv_usec) *
		       1000ull;
}

static void submit(struct slot *s);

/* Offsets come from the thread that serves the vdisk once it runs. */
static void done(void *opaque, int result)
{
	struct slot *s = opaque;
	struct bench *b = s->b;

	if (result) {
		if (!b->errors++)
			b->first_error = result;
	} else {
		b->ops++;
		b->bytes += b->run->bs;
		b->hist[bucket(vxhs_now_ns() - s->started)]++;
	}
	if (atomic_load(&b->run->stop) || b->errors) {
		waiter_done(&b->run->active, 0);
		return;
	}
	s->offset = next_offset(b);
	submit(s);
}

static void submit(struct slot *s)
{
	struct bench *b = s->b;
	int ret;

	s->started = vxhs_now_ns();
	ret = b->run->write ?
		      vxhs_writev(b->vd, &s->iov, 1, s->offset, done, s) :
		      vxhs_readv(b->vd, &s->iov, 1, s->offset, done, s);
	if (ret) {
		if (!b->errors++)
			b->first_error = ret;
		waiter_done(&b->run->active, 0);
	}
}

/* Resident memory of the process, for the cost of an open vdisk. */
static uint64_t rss_bytes(void)
{
	unsigned long long size, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (!f)
		return 0;
	if (fscanf(f, "%llu %llu", &size, &resident) != 2)
		resident = 0;
	fclose(f);
	return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

static const char help[] =
	"Usage: vxhsadm bench [OPTION]... VDISK...\n"
	"Measure IOPS, throughput and latency against vdisks, all at once, each\n"
	"with its own queue. Writes destroy the data in the range they touch.\n"
	"\n" CONN_HELP "  -p, --pattern=P      rand or seq (default rand)\n"
	"  -w, --rw=OP          read or write (default read)\n"
	"  -b, --bs=SIZE        block size (default 4K)\n"
	"  -q, --qd=N           requests in flight per vdisk (default 32)\n"
	"  -t, --time=SEC       duration in seconds (default 10)\n"
	"  -s, --span=SIZE      use only the first SIZE bytes (default: all)\n"
	"      --parseable      also print one key=value line for scripts\n";

static const struct option opts[] = {
	CONN_LONG_OPTS,
	{ "pattern", required_argument, NULL, 'p' },
	{ "rw", required_argument, NULL, 'w' },
	{ "bs", required_argument, NULL, 'b' },
	{ "qd", required_argument, NULL, 'q' },
	{ "time", required_argument, NULL, 't' },
	{ "span", required_argument, NULL, 's' },
	{ "parseable", no_argument, NULL, 'P' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

/* Opens every vdisk, each with its own slots; prints the memory cost. */
static int open_all(struct conn_args *ca, struct vxhs_ctx *ctx,
		    struct bench *benches, char **ids, unsigned int n,
		    uint64_t span)
{
	struct vxhs_vdisk_info info;
	uint64_t rss0 = rss_bytes();
	unsigned int i;

	for (i = 0; i < n; i++) {
		struct bench *b = &benches[i];

		if (vxhs_vdisk_open(ctx, ids[i], &ca->opts, &b->vd)) {
			errorf("%s", vxhs_errmsg());
			goto close;
		}
		vxhs_vdisk_get_info(b->vd, &info);
		b->span = !span || span > info.size ? info.size : span;
		b->rng = 0x9E3779B97F4A7C15ull + i;
		if (b->span < b->run->bs) {
			errorf("vdisk %s (%" PRIu64
			       " bytes) is smaller than one block",
			       ids[i], info.size);
			i++;
			goto close;
		}
	}
	if (n > 1)
		printf("%u vdisks on %u I/O threads: client memory %.1f KiB "
		       "per open vdisk\n",
		       n, vxhs_ctx_io_threads(ctx),
		       (double)(rss_bytes() - rss0) / 1024.0 / n);
	return 0;

close:
	while (i--)
		vxhs_vdisk_close(benches[i].vd);
	return -1;
}

/* Sums the vdisks' counts into the first. */
static void merge(struct bench *benches, unsigned int n)
{
	struct bench *sum = &benches[0];

	for (unsigned int i = 1; i < n; i++) {
		sum->ops += benches[i].ops;
		sum->bytes += benches[i].bytes;
		if (benches[i].errors && !sum->errors)
			sum->first_error = benches[i].first_error;
		sum->errors += benches[i].errors;
		for (unsigned int k = 0; k < NR_BUCKETS; k++)
			sum->hist[k] += benches[i].hist[k];
	}
}

int cmd_bench(int argc, char **argv)
{
	struct conn_args ca;
	struct run run = { .random = true, .bs = 4096 };
	struct bench *benches, *b;
	struct slot *slots = NULL;
	struct vxhs_ctx *ctx;
	uint64_t qd = 32, secs = 10, span = 0, t0, elapsed, cpu0, cpu;
	unsigned int nr, total;
	bool parseable = false;
	uint8_t *mem = NULL;
	int opt, ret = EXIT_FAIL;
	double s, iops, mibs, p50, p99, cpu_per_io;

	conn_args_init(&ca, "bench");
	while ((opt = getopt_long(argc, argv, CONN_SHORT_OPTS "p:w:b:q:t:s:h",
				  opts, NULL)) != -1) {
		if (conn_args_parse("bench", &ca, opt, optarg))
			continue;
		switch (opt) {
		case 'p':
			if (strcmp(optarg, "rand") && strcmp(optarg, "seq"))
				die_usage("bench", "--pattern is rand or seq");
			run.random = !strcmp(optarg, "rand");
			break;
		case 'w':
			if (strcmp(optarg, "read") && strcmp(optarg, "write"))
				die_usage("bench", "--rw is read or write");
			run.write = !strcmp(optarg, "write");
			break;
		case 'b':
			run.bs = parse_size_arg("bench", "block size", optarg);
			if (!run.bs || run.bs > (64u << 20))
				die_usage("bench",
					  "--bs must be 1 byte to 64M");
			break;
		case 'q':
			if (vxhs_parse_uint(optarg, 1, 4096, &qd))
				die_usage("bench", "--qd takes 1 to 4096");
			break;
		case 't':
			if (vxhs_parse_uint(optarg, 1, 86400, &secs))
				die_usage("bench",
					  "--time takes 1 to 86400 seconds");
			break;
		case 's':
			span = parse_size_arg("bench", "span", optarg);
			break;
		case 'P':
			parseable = true;
			break;
		default:
			help_or_die("bench", help, opt);
		}
	}
	if (optind >= argc)
		die_usage("bench", "expected one or more vdisks");
	if (argc - optind > 1024)
		die_usage("bench", "at most 1024 vdisks");
	nr = (unsigned int)(argc - optind);
	if (qd * nr > 65536 || qd * nr * run.bs > (4ull << 30))
		die_usage("bench",
			  "%u vdisks at --qd %" PRIu64 " and --bs %" PRIu64
			  " need too many buffers",
			  nr, qd, run.bs);
	total = (unsigned int)qd * nr;

	benches = calloc(nr, sizeof(*benches));
	if (!benches)
		return EXIT_FAIL;
	for (unsigned int i = 0; i < nr; i++)
		benches[i].run = &run;
	if (open_ctx(&ca, &ctx))
		goto free_benches;
	if (open_all(&ca, ctx, benches, argv + optind, nr, span))
		goto free_ctx;
	slots = calloc(total, sizeof(*slots));
	mem = aligned_alloc(4096, (total * run.bs + 4095) & ~4095ull);
	if (!slots || !mem) {
		errorf("out of memory for %u buffers of %" PRIu64 " bytes",
		       total, run.bs);
		goto close;
	}
	memset(mem, 0xA5, total * run.bs);

	waiter_init(&run.active);
	t0 = vxhs_now_ns();
	cpu0 = cpu_ns();
	for (unsigned int i = 0; i < total; i++) {
		slots[i].b = &benches[i / qd];
		slots[i].iov.iov_base = mem + i * run.bs;
		slots[i].iov.iov_len = run.bs;
		waiter_add(&run.active);
	}
	/* The first offsets before the first request: completions, on
	 * the vdisks' I/O threads, draw the next ones. */
	for (unsigned int i = 0; i < total; i++)
		slots[i].offset = next_offset(slots[i].b);
	for (unsigned int i = 0; i < total; i++)
		submit(&slots[i]);
	for (uint64_t waited = 0; waited < secs * 10; waited++) {
		bool failed = false;

		for (unsigned int i = 0; i < nr; i++)
			failed |= atomic_load(&benches[i].errors) != 0;
		if (failed)
			break;
		usleep(100000);
	}
	atomic_store(&run.stop, true);
	waiter_wait(&run.active, 0);
	elapsed = vxhs_now_ns() - t0;
	cpu = cpu_ns() - cpu0;
	merge(benches, nr);
	b = &benches[0];

	if (b->errors) {
		errorf("%" PRIu64 " requests failed, first: %s", b->errors,
		       strerror(-b->first_error));
		goto close;
	}
	s = (double)elapsed / 1e9;
	iops = (double)b->ops / s;
	mibs = (double)b->bytes / s / (1 << 20);
	p50 = (double)percentile(b, 0.50) / 1000.0;
	p99 = (double)percentile(b, 0.99) / 1000.0;
	cpu_per_io = b->ops ? (double)cpu / 1000.0 / (double)b->ops : 0;
	printf("%s%s bs=%" PRIu64 " qd=%" PRIu64
	       "%s: %.0f IOPS, %.1f MiB/s, latency p50 %.1f us, p99 %.1f us, "
	       "client CPU %.1f us per I/O\n",
	       run.random ? "rand" : "seq", run.write ? "write" : "read",
	       run.bs, qd, nr > 1 ? " per vdisk" : "", iops, mibs, p50, p99,
	       cpu_per_io);
	if (parseable)
		printf("iops=%.0f mibps=%.2f p50_us=%.1f p99_us=%.1f "
		       "cpu_us=%.2f\n",
		       iops, mibs, p50, p99, cpu_per_io);
	ret = EXIT_OK;
close:
	free(slots);
	free(mem);
	for (unsigned int i = 0; i < nr; i++)
		vxhs_vdisk_close(benches[i].vd);
free_ctx:
	vxhs_ctx_free(ctx);
free_benches:
	free(benches);
	return ret;
}
