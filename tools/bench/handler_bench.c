// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * The gateway's path without a kernel: loads a tcmu-runner handler module
 * through the handler tests' stand-in for tcmu-runner (tests/handler/
 * tcmu_stub.c) and keeps QD reads or writes in flight on one LUN, as
 * tcmu-runner's command thread would. This thread submits; a module that
 * asks tcmu-runner for threads (nr_threads > 0, as handler_qcow.so) has
 * its callouts run on that many worker threads, as tcmu-runner's work
 * queue does; an asynchronous module (handler_vxhs.so) completes from
 * its own threads. Prints one line of results:
 *
 *   ops=N secs=S iops=I lat_us=MEAN p99_us=P gw_cpu_us=C agent_cpu_us=A
 *
 * where the CPU times are per I/O: this process's (the gateway), and the
 * process --agent-pid names (the agent; 0 without one).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "tcmu_stub.h"

struct slot {
	struct stub_cmd c; /* first: the completion hook gets &c */
	struct iovec iov;
	void *buf;
	uint64_t off, t0;
	struct slot *next; /* in a queue */
};

/* A queue of slots between threads. */
struct queue {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct slot *head, **tail;
	bool stop;
};

static struct {
	struct tcmur_handler *h;
	struct tcmu_device dev;
	uint64_t size, bs;
	bool write, random;
	uint64_t seq_off, rng;
	struct queue done; /* completed, back to the submitter */
	struct queue work; /* for the worker threads of a sync module */
} b;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void queue_init(struct queue *q)
{
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->cond, NULL);
	q->head = NULL;
	q->tail = &q->head;
	q->stop = false;
}

static void queue_push(struct queue *q, struct slot *s)
{
	pthread_mutex_lock(&q->lock);
	s->next = NULL;
	*q->tail = s;
	q->tail = &s->next;
	pthread_cond_signal(&q->cond);
	pthread_mutex_unlock(&q->lock);
}

/* The next slot, or NULL once the queue is stopped. */
static struct slot *queue_pop(struct queue *q)
{
	struct slot *s;

	pthread_mutex_lock(&q->lock);
	while (!q->head && !q->stop)
		pthread_cond_wait(&q->cond, &q->lock);
	s = q->head;
	if (s) {
		q->head = s->next;
		if (!q->head)
			q->tail = &q->head;
	}
	pthread_mutex_unlock(&q->lock);
	return s;
}

static void on_complete(struct stub_cmd *c, int status)
{
	struct slot *s = (struct slot *)c;

	c->status = status;
	queue_push(&b.done, s);
}

static uint64_t next_offset(void)
{
	uint64_t blocks = b.size / b.bs, off;

	if (b.random) {
		/* xorshift64: the same offsets on every run */
		b.rng ^= b.rng << 13;
		b.rng ^= b.rng >> 7;
		b.rng ^= b.rng << 17;
		return (b.rng % blocks) * b.bs;
	}
	off = b.seq_off;
	b.seq_off = (b.seq_off + b.bs) % (blocks * b.bs);
	return off;
}

/* One callout, as tcmu-runner makes it; its status if it ended at once. */
static int call(struct slot *s)
{
	struct tcmur_cmd *cmd = &s->c.cmd;

	s->iov.iov_base = s->buf;
	s->iov.iov_len = b.bs;
	if (b.write)
		return b.h->write(&b.dev, cmd, &s->iov, 1, b.bs, (off_t)s->off);
	return b.h->read(&b.dev, cmd, &s->iov, 1, b.bs, (off_t)s->off);
}

static void *worker(void *arg)
{
	struct slot *s;

	(void)arg;
	while ((s = queue_pop(&b.work)))
		on_complete(&s->c, call(s));
	return NULL;
}

static void submit(struct slot *s)
{
	int rc;

	s->off = next_offset();
	s->t0 = now_ns();
	if (b.h->nr_threads > 0) {
		queue_push(&b.work, s);
		return;
	}
	rc = call(s);
	if (rc != TCMU_STS_OK)
		on_complete(&s->c, rc);
}

/* User and system time of this process, or of /proc/PID/stat's. */
static uint64_t cpu_us(pid_t pid)
{
	unsigned long utime, stime;
	char path[64], line[1024], *p;
	struct rusage ru;
	FILE *f;

	if (!pid) {
		getrusage(RUSAGE_SELF, &ru);
		return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) *
			       1000000u +
		       (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
	}
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f || !fgets(line, sizeof(line), f)) {
		fprintf(stderr, "handler-bench: cannot read %s\n", path);
		exit(1);
	}
	fclose(f);
	/* Fields 14 and 15, counted after the command name's ')'. */
	p = strrchr(line, ')');
	if (!p || sscanf(p + 2,
			 "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u "
			 "%*u %lu %lu",
			 &utime, &stime) != 2) {
		fprintf(stderr, "handler-bench: cannot parse %s\n", path);
		exit(1);
	}
	return (uint64_t)(utime + stime) * 1000000u /
	       (uint64_t)sysconf(_SC_CLK_TCK);
}

/* Latencies in 1 us buckets up to LAT_BUCKETS us (the last takes the
 * rest): constant work per I/O, so instruction counts stay linear. */
#define LAT_BUCKETS 100000
static uint64_t lat_hist[LAT_BUCKETS];

static double lat_p99_us(uint64_t n)
{
	uint64_t want = n - n / 100, seen = 0;

	for (size_t i = 0; i < LAT_BUCKETS; i++) {
		seen += lat_hist[i];
		if (seen >= want)
			return (double)i;
	}
	return LAT_BUCKETS;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: handler-bench --module SO --cfgstring CFG --size BYTES\n"
		"         --rw read|write|randread|randwrite --bs BYTES --qd N\n"
		"         (--secs S | --ops N) [--agent-pid PID]\n");
}

static uint64_t number(const char *opt, const char *arg, uint64_t min,
		       uint64_t max)
{
	uint64_t v;

	if (vxhs_parse_uint(arg, min, max, &v)) {
		fprintf(stderr,
			"handler-bench: --%s wants a number from %" PRIu64
			" to %" PRIu64 ", not '%s'\n",
			opt, min, max, arg);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "module", required_argument, NULL, 'm' },
		{ "cfgstring", required_argument, NULL, 'c' },
		{ "size", required_argument, NULL, 's' },
		{ "rw", required_argument, NULL, 'r' },
		{ "bs", required_argument, NULL, 'b' },
		{ "qd", required_argument, NULL, 'q' },
		{ "secs", required_argument, NULL, 't' },
		{ "ops", required_argument, NULL, 'o' },
		{ "agent-pid", required_argument, NULL, 'a' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	const char *module = NULL, *cfg = NULL, *rw = "randread";
	uint64_t qd = 1, secs = 0, ops = 0, done = 0, lat_sum = 0, area_slot;
	uint64_t t_start, t_end, gw0, ag0, gw1, ag1;
	pid_t agent = 0;
	pthread_t *workers;
	struct slot *slots;
	int c;

	b.bs = 4096;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'm':
			module = optarg;
			break;
		case 'c':
			cfg = optarg;
			break;
		case 's':
			b.size = number("size", optarg, 1, UINT64_MAX);
			break;
		case 'r':
			rw = optarg;
			break;
		case 'b':
			b.bs = number("bs", optarg, 512, 64u << 20);
			break;
		case 'q':
			qd = number("qd", optarg, 1, 1024);
			break;
		case 't':
			secs = number("secs", optarg, 1, 86400);
			break;
		case 'o':
			ops = number("ops", optarg, 1, UINT32_MAX);
			break;
		case 'a':
			agent = (pid_t)number("agent-pid", optarg, 1,
					      INT32_MAX);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc || !module || !cfg || !b.size || !secs == !ops) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(rw, "read") || !strcmp(rw, "write") ||
	    !strcmp(rw, "randread") || !strcmp(rw, "randwrite")) {
		b.write = strstr(rw, "write") != NULL;
		b.random = !strncmp(rw, "rand", 4);
	} else {
		fprintf(stderr,
			"handler-bench: --rw '%s': read, write, "
			"randread or randwrite\n",
			rw);
		return 2;
	}
	if (b.size < b.bs || b.size % 512 || b.bs % 512) {
		fprintf(stderr,
			"handler-bench: --size and --bs must be "
			"multiples of 512, the size at least one I/O\n");
		return 2;
	}
	b.rng = 0x9e3779b97f4a7c15ull;
	b.h = stub_load(module);
	stub_dev_init(&b.dev, cfg, b.size, 512);
	/* The buffers live in a data area, as tcmu-runner's live in the
	 * TCMU ring, which a handler may share with its agent. */
	area_slot = (b.bs + 4095) & ~(uint64_t)4095;
	if (stub_dev_map(&b.dev, qd * area_slot)) {
		fprintf(stderr, "handler-bench: no memory for the data area\n");
		return 1;
	}
	if (b.h->open(&b.dev, false)) {
		fprintf(stderr, "handler-bench: %s did not open '%s'\n", module,
			cfg);
		return 1;
	}
	stub_complete_hook = on_complete;
	queue_init(&b.done);
	queue_init(&b.work);
	workers = calloc((size_t)b.h->nr_threads + 1, sizeof(*workers));
	slots = calloc(qd, sizeof(*slots));
	if (!workers || !slots)
		return 1;
	for (int i = 0; i < b.h->nr_threads; i++)
		pthread_create(&workers[i], NULL, worker, NULL);
	for (uint64_t i = 0; i < qd; i++) {
		stub_cmd_init(&slots[i].c, b.write ? 0x8a : 0x88);
		slots[i].buf = (uint8_t *)b.dev.map + i * area_slot;
		memset(slots[i].buf, (int)(i + 1), b.bs);
		slots[i].c.lib.iovec = &slots[i].iov;
		slots[i].c.lib.iov_cnt = 1;
	}

	gw0 = cpu_us(0);
	ag0 = agent ? cpu_us(agent) : 0;
	t_start = now_ns();
	t_end = t_start + secs * 1000000000ull;
	for (uint64_t i = 0; i < qd && (!ops || i < ops); i++)
		submit(&slots[i]);
	for (uint64_t inflight = MIN(qd, ops ? ops : qd); inflight;) {
		struct slot *s = queue_pop(&b.done);
		uint64_t t = now_ns();

		inflight--;
		if (s->c.status != TCMU_STS_OK) {
			fprintf(stderr,
				"handler-bench: %s at %" PRIu64
				" ended with status %d\n",
				b.write ? "write" : "read", s->off,
				s->c.status);
			return 1;
		}
		lat_hist[MIN((t - s->t0) / 1000, LAT_BUCKETS - 1)]++;
		done++;
		lat_sum += t - s->t0;
		if (ops ? done + inflight < ops : t < t_end) {
			submit(s);
			inflight++;
		}
	}
	t_end = now_ns();
	gw1 = cpu_us(0);
	ag1 = agent ? cpu_us(agent) : 0;

	printf("ops=%" PRIu64 " secs=%.3f iops=%.0f lat_us=%.1f p99_us=%.1f "
	       "gw_cpu_us=%.2f agent_cpu_us=%.2f\n",
	       done, (double)(t_end - t_start) / 1e9,
	       (double)done * 1e9 / (double)(t_end - t_start),
	       (double)lat_sum / (double)done / 1e3, lat_p99_us(done),
	       (double)(gw1 - gw0) / (double)done,
	       (double)(ag1 - ag0) / (double)done);

	pthread_mutex_lock(&b.work.lock);
	b.work.stop = true;
	pthread_cond_broadcast(&b.work.cond);
	pthread_mutex_unlock(&b.work.lock);
	for (int i = 0; i < b.h->nr_threads; i++)
		pthread_join(workers[i], NULL);
	stub_complete_hook = NULL;
	b.h->close(&b.dev);
	stub_dev_unmap(&b.dev);
	free(slots);
	free(workers);
	return 0;
}
