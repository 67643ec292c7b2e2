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

struct bench;

struct slot {
	struct bench *b;
	struct iovec iov;
	uint64_t offset;
	uint64_t started;
};

struct bench {
	struct vxhs_vdisk *vd;
	bool write, random;
	uint64_t bs, span, next_seq, rng;
	_Atomic bool stop;
	/* touched only by the library's single I/O thread */
	uint64_t ops, bytes;
	_Atomic uint64_t errors;
	int first_error;
	uint64_t hist[NR_BUCKETS];
	struct waiter active;
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
	uint64_t blocks = b->span / b->bs, off;

	if (b->random) {
		/* xorshift64: cheap, good enough to spread offsets */
		b->rng ^= b->rng << 13;
		b->rng ^= b->rng >> 7;
		b->rng ^= b->rng << 17;
		return (b->rng % blocks) * b->bs;
	}
	off = b->next_seq;
	b->next_seq = (b->next_seq + b->bs) % (blocks * b->bs);
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

static void done(void *opaque, int result)
{
	struct slot *s = opaque;
	struct bench *b = s->b;

	if (result) {
		if (!b->errors++)
			b->first_error = result;
	} else {
		b->ops++;
		b->bytes += b->bs;
		b->hist[bucket(vxhs_now_ns() - s->started)]++;
	}
	if (atomic_load(&b->stop) || b->errors) {
		waiter_done(&b->active, 0);
		return;
	}
	submit(s);
}

static void submit(struct slot *s)
{
	struct bench *b = s->b;
	int ret;

	s->offset = next_offset(b);
	s->started = vxhs_now_ns();
	ret = b->write ? vxhs_writev(b->vd, &s->iov, 1, s->offset, done, s) :
			 vxhs_readv(b->vd, &s->iov, 1, s->offset, done, s);
	if (ret) {
		if (!b->errors++)
			b->first_error = ret;
		waiter_done(&b->active, 0);
	}
}

static const char help[] =
	"Usage: vxhsadm bench [OPTION]... VDISK\n"
	"Measure IOPS, throughput and latency against a vdisk. Writes destroy\n"
	"the data in the range they touch.\n"
	"\n" CONN_HELP "  -p, --pattern=P      rand or seq (default rand)\n"
	"  -w, --rw=OP          read or write (default read)\n"
	"  -b, --bs=SIZE        block size (default 4K)\n"
	"  -q, --qd=N           requests in flight (default 32)\n"
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

int cmd_bench(int argc, char **argv)
{
	struct conn_args ca;
	struct bench *b;
	struct slot *slots;
	struct vxhs_vdisk_info info;
	struct vxhs_ctx *ctx;
	uint64_t qd = 32, secs = 10, t0, elapsed, cpu0, cpu;
	bool parseable = false;
	uint8_t *mem;
	int opt, ret = EXIT_FAIL;
	double s, iops, mibs, p50, p99, cpu_per_io;

	b = calloc(1, sizeof(*b));
	if (!b)
		return EXIT_FAIL;
	b->random = true;
	b->bs = 4096;
	b->rng = 0x9E3779B97F4A7C15ull;
	conn_args_init(&ca);
	while ((opt = getopt_long(argc, argv, CONN_SHORT_OPTS "p:w:b:q:t:s:h",
				  opts, NULL)) != -1) {
		if (conn_args_parse("bench", &ca, opt, optarg))
			continue;
		switch (opt) {
		case 'p':
			if (strcmp(optarg, "rand") && strcmp(optarg, "seq"))
				die_usage("bench", "--pattern is rand or seq");
			b->random = !strcmp(optarg, "rand");
			break;
		case 'w':
			if (strcmp(optarg, "read") && strcmp(optarg, "write"))
				die_usage("bench", "--rw is read or write");
			b->write = !strcmp(optarg, "write");
			break;
		case 'b':
			b->bs = parse_size_arg("bench", "block size", optarg);
			if (!b->bs || b->bs > (64u << 20))
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
			b->span = parse_size_arg("bench", "span", optarg);
			break;
		case 'P':
			parseable = true;
			break;
		default:
			help_or_die("bench", help, opt);
		}
	}
	expect_args("bench", argc - optind, 1);

	if (open_vdisk(&ca, argv[optind], &ctx, &b->vd))
		goto free_b;
	vxhs_vdisk_get_info(b->vd, &info);
	if (!b->span || b->span > info.size)
		b->span = info.size;
	if (b->span < b->bs) {
		errorf("vdisk %s (%" PRIu64 " bytes) is smaller than one block",
		       argv[optind], info.size);
		goto close;
	}
	slots = calloc(qd, sizeof(*slots));
	mem = aligned_alloc(4096, (qd * b->bs + 4095) & ~4095ull);
	if (!slots || !mem) {
		errorf("out of memory for %" PRIu64 " buffers of %" PRIu64
		       " bytes",
		       qd, b->bs);
		goto free_slots;
	}
	memset(mem, 0xA5, qd * b->bs);

	waiter_init(&b->active);
	t0 = vxhs_now_ns();
	cpu0 = cpu_ns();
	for (uint64_t i = 0; i < qd; i++) {
		slots[i].b = b;
		slots[i].iov.iov_base = mem + i * b->bs;
		slots[i].iov.iov_len = b->bs;
		waiter_add(&b->active);
	}
	/* Offsets come from the I/O thread once running; the first batch
	 * is submitted before any completion can race with it. */
	for (uint64_t i = 0; i < qd; i++)
		submit(&slots[i]);
	for (uint64_t waited = 0; waited < secs * 10 && !b->errors; waited++)
		usleep(100000);
	atomic_store(&b->stop, true);
	waiter_wait(&b->active, 0);
	elapsed = vxhs_now_ns() - t0;
	cpu = cpu_ns() - cpu0;

	if (b->errors) {
		errorf("%" PRIu64 " requests failed, first: %s", b->errors,
		       strerror(-b->first_error));
		goto free_slots;
	}
	s = (double)elapsed / 1e9;
	iops = (double)b->ops / s;
	mibs = (double)b->bytes / s / (1 << 20);
	p50 = (double)percentile(b, 0.50) / 1000.0;
	p99 = (double)percentile(b, 0.99) / 1000.0;
	cpu_per_io = b->ops ? (double)cpu / 1000.0 / (double)b->ops : 0;
	printf("%s%s bs=%" PRIu64 " qd=%" PRIu64
	       ": %.0f IOPS, %.1f MiB/s, latency p50 %.1f us, p99 %.1f us, "
	       "client CPU %.1f us per I/O\n",
	       b->random ? "rand" : "seq", b->write ? "write" : "read", b->bs,
	       qd, iops, mibs, p50, p99, cpu_per_io);
	if (parseable)
		printf("iops=%.0f mibps=%.2f p50_us=%.1f p99_us=%.1f "
		       "cpu_us=%.2f\n",
		       iops, mibs, p50, p99, cpu_per_io);
	ret = EXIT_OK;
free_slots:
	free(slots);
	free(mem);
close:
	close_vdisk(ctx, b->vd);
free_b:
	free(b);
	return ret;
}
