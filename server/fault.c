// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * Fault injection, for testing clients, gateways and failover against an
 * agent that misbehaves on purpose. Off unless vxhsd was started with
 * --control=PATH: a UNIX socket (mode 0600) that takes one command line
 * per connection and answers "ok ..." or "error: ..." (docs/agent.md):
 *
 *   fail OPCODE VDISK ERRNO [COUNT]   answer matching requests with ERRNO
 *   delay OPCODE VDISK MS [COUNT]     hold them MS milliseconds first
 *   truncate OPCODE VDISK [COUNT]     send half the answer's header, close
 *   pause | resume                    hold every answer / let them go
 *   stop-reading WHO | resume-reading WHO
 *   drop WHO                          close connections
 *   forget-regions WHO                forget their shared regions, as
 *                                     when idle
 *   clear                             remove every rule, release delays
 *   list                              the rules and how often each hit
 *   counters                          request memory in use,
 *                                     requests seen per opcode, and
 *                                     how many a network thread ran
 *
 * OPCODE is read, write, flush, discard, write-zeroes, compare-and-write,
 * write-same, copy, lock-acquire, lock-release, lock-query, stat,
 * failover-ready, local-open, local-open-rw or any; VDISK a shell
 * pattern; WHO "all", a peer ("127.0.0.1:40000"), an address or an
 * identity. Rules apply on the
 * workers: while any is in force, no request runs on a network thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

#include "common/util.h"
#include "vxhsd.h"

#define MAX_RULES 16
#define LINE_MAX_ 512

enum fault_kind { FAULT_FAIL, FAULT_DELAY, FAULT_TRUNCATE };

struct fault_rule {
	enum fault_kind kind;
	int opcode; /* -1: any */
	char vdisk[VXHS_TARGET_SIZE];
	int32_t err;	 /* FAIL: wire err */
	unsigned int ms; /* DELAY */
	long left;	 /* matches still to hit; -1: no end */
	unsigned long hits;
};

static const struct {
	const char *name;
	int opcode;
} opcodes[] = {
	{ "read", VXHS_OP_READ },
	{ "write", VXHS_OP_WRITE },
	{ "flush", VXHS_OP_FLUSH },
	{ "discard", VXHS_OP_DISCARD },
	{ "write-zeroes", VXHS_OP_WRITE_ZEROES },
	{ "compare-and-write", VXHS_OP_COMPARE_AND_WRITE },
	{ "write-same", VXHS_OP_WRITE_SAME },
	{ "copy", VXHS_OP_COPY },
	{ "lock-acquire", VXHS_OP_LOCK_ACQUIRE },
	{ "lock-release", VXHS_OP_LOCK_RELEASE },
	{ "lock-query", VXHS_OP_LOCK_QUERY },
	{ "stat", VXHS_OP_STAT },
	{ "failover-ready", VXHS_OP_FAILOVER_READY },
	{ "local-open", VXHS_OP_LOCAL_OPEN },
	{ "local-open-rw", VXHS_OP_LOCAL_OPEN_RW },
	{ "any", -1 },
};

static const struct {
	const char *name;
	int err;
} errnos[] = {
	{ "EIO", EIO },
	{ "ENOSPC", ENOSPC },
	{ "EAGAIN", EAGAIN },
	{ "EINVAL", EINVAL },
	{ "ENOENT", ENOENT },
	{ "EACCES", EACCES },
	{ "ERANGE", ERANGE },
	{ "EMSGSIZE", EMSGSIZE },
	{ "EOPNOTSUPP", EOPNOTSUPP },
	/* outside the protocol's set, as a broken agent might send */
	{ "EROFS", EROFS },
	{ "EBUSY", EBUSY },
	{ "ETIMEDOUT", ETIMEDOUT },
	{ "ENOTCONN", ENOTCONN },
	{ "ECANCELED", ECANCELED },
};

atomic_bool faults_armed;
static atomic_bool paused;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct fault_rule rules[MAX_RULES];
static unsigned int nr_rules;
static unsigned int generation; /* bumped by clear: delays end early */
static int control_fd = -1;
static atomic_bool counting; /* set once --control is open */
static char *control_path;
/* Requests seen per opcode, in the order of opcodes[] (last: others). */
static _Atomic unsigned long seen[ARRAY_SIZE(opcodes)];
/* Of those, run on a network thread (request_try_inline). */
static _Atomic unsigned long seen_on_loop;
/* Read answers sent from the page cache (answer_from_cache). */
static _Atomic unsigned long seen_sendfile;
/* Reads made in a network thread's batch (ring_reads.c). */
static _Atomic unsigned long seen_ring;

bool fault_paused(void)
{
	return atomic_load(&paused);
}

void fault_count(uint16_t opcode, bool on_loop)
{
	size_t i;

	/* Only for tests: production pays nothing on the request path. */
	if (!atomic_load_explicit(&counting, memory_order_relaxed))
		return;
	for (i = 0; i < ARRAY_SIZE(opcodes) - 1; i++)
		if (opcodes[i].opcode == opcode)
			break;
	atomic_fetch_add(&seen[i], 1);
	if (on_loop)
		atomic_fetch_add(&seen_on_loop, 1);
}

void fault_count_sendfile(void)
{
	if (atomic_load_explicit(&counting, memory_order_relaxed))
		atomic_fetch_add(&seen_sendfile, 1);
}

void fault_count_ring(void)
{
	if (atomic_load_explicit(&counting, memory_order_relaxed))
		atomic_fetch_add(&seen_ring, 1);
}

/* Caller holds lock: the first rule of r's opcode and vdisk with hits
 * left, taking one. */
static struct fault_rule *match(const struct request *r)
{
	for (unsigned int i = 0; i < nr_rules; i++) {
		struct fault_rule *f = &rules[i];

		if ((f->opcode >= 0 && f->opcode != r->hdr.opcode) ||
		    fnmatch(f->vdisk, r->hdr.target, 0) || !f->left)
			continue;
		if (f->left > 0)
			f->left--;
		f->hits++;
		return f;
	}
	return NULL;
}

/* Sleeps up to ms, in slices, until clear is given. */
static void delay(unsigned int ms, unsigned int gen)
{
	for (unsigned int slept = 0; slept < ms; slept += 10) {
		unsigned int now;

		pthread_mutex_lock(&lock);
		now = generation;
		pthread_mutex_unlock(&lock);
		if (now != gen)
			return;
		usleep(10000);
	}
}

int32_t fault_before(struct request *r)
{
	struct fault_rule f, *hit;
	unsigned int gen;

	if (!atomic_load(&faults_armed))
		return 0;
	pthread_mutex_lock(&lock);
	hit = match(r);
	if (hit)
		f = *hit;
	gen = generation;
	pthread_mutex_unlock(&lock);
	if (!hit)
		return 0;
	switch (f.kind) {
	case FAULT_FAIL:
		return f.err;
	case FAULT_DELAY:
		delay(f.ms, gen);
		return 0;
	case FAULT_TRUNCATE:
		r->truncate = true;
		return 0;
	}
	return 0;
}

static int parse_opcode(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(opcodes); i++)
		if (!strcmp(name, opcodes[i].name))
			return opcodes[i].opcode;
	return -2;
}

static const char *opcode_label(int opcode)
{
	for (size_t i = 0; i < ARRAY_SIZE(opcodes); i++)
		if (opcodes[i].opcode == opcode)
			return opcodes[i].name;
	return "?";
}

static int parse_errno(const char *text)
{
	uint64_t v;

	for (size_t i = 0; i < ARRAY_SIZE(errnos); i++)
		if (!strcmp(text, errnos[i].name))
			return errnos[i].err;
	if (!vxhs_parse_uint(text, 1, 4095, &v))
		return (int)v;
	return 0;
}

/* "fail|delay|truncate OPCODE VDISK [ARG] [COUNT]" */
static int add_rule(char **argv, int argc, char *out, size_t len)
{
	struct fault_rule f = { .left = -1 };
	int need = 3, e;
	uint64_t v;

	if (!strcmp(argv[0], "fail"))
		f.kind = FAULT_FAIL, need = 4;
	else if (!strcmp(argv[0], "delay"))
		f.kind = FAULT_DELAY, need = 4;
	else
		f.kind = FAULT_TRUNCATE;
	if (argc < need || argc > need + 1) {
		snprintf(out, len, "error: usage: %s OPCODE VDISK%s [COUNT]",
			 argv[0],
			 f.kind == FAULT_FAIL  ? " ERRNO" :
			 f.kind == FAULT_DELAY ? " MS" :
						 "");
		return -EINVAL;
	}
	f.opcode = parse_opcode(argv[1]);
	if (f.opcode == -2) {
		int n = snprintf(out, len, "error: unknown opcode '%s' (",
				 argv[1]);

		for (size_t i = 0;
		     i < ARRAY_SIZE(opcodes) && n > 0 && (size_t)n < len; i++)
			n += snprintf(out + n, len - (size_t)n, "%s%s",
				      opcodes[i].name,
				      i + 1 < ARRAY_SIZE(opcodes) ? ", " : ")");
		return -EINVAL;
	}
	if (strlen(argv[2]) >= sizeof(f.vdisk)) {
		snprintf(out, len, "error: vdisk pattern too long");
		return -EINVAL;
	}
	snprintf(f.vdisk, sizeof(f.vdisk), "%s", argv[2]);
	if (f.kind == FAULT_FAIL) {
		e = parse_errno(argv[3]);
		if (!e) {
			snprintf(
				out, len,
				"error: unknown error '%s' (a name such as EIO or ENOSPC, or a number 1-4095)",
				argv[3]);
			return -EINVAL;
		}
		/* As given, even outside the protocol's set: clients must
		 * cope with agents that send anything. */
		f.err = e;
	} else if (f.kind == FAULT_DELAY) {
		if (vxhs_parse_uint(argv[3], 1, 3600000, &v)) {
			snprintf(out, len,
				 "error: delay must be 1-3600000 milliseconds");
			return -EINVAL;
		}
		f.ms = (unsigned int)v;
	}
	if (argc == need + 1) {
		if (vxhs_parse_uint(argv[need], 1, 1000000000, &v)) {
			snprintf(out, len, "error: COUNT must be 1 or more");
			return -EINVAL;
		}
		f.left = (long)v;
	}
	pthread_mutex_lock(&lock);
	if (nr_rules == MAX_RULES) {
		pthread_mutex_unlock(&lock);
		snprintf(out, len, "error: %d rules already", MAX_RULES);
		return -ENOSPC;
	}
	rules[nr_rules++] = f;
	atomic_store(&faults_armed, true);
	pthread_mutex_unlock(&lock);
	snprintf(out, len, "ok");
	return 0;
}

static void list_rules(char *out, size_t len)
{
	size_t n;

	pthread_mutex_lock(&lock);
	n = (size_t)snprintf(out, len, "ok paused=%s rules=%u",
			     fault_paused() ? "yes" : "no", nr_rules);
	for (unsigned int i = 0; i < nr_rules && n < len; i++) {
		const struct fault_rule *f = &rules[i];

		n += (size_t)snprintf(out + n, len - n, "\n%s %s %s",
				      f->kind == FAULT_FAIL  ? "fail" :
				      f->kind == FAULT_DELAY ? "delay" :
							       "truncate",
				      opcode_label(f->opcode), f->vdisk);
		if (n >= len)
			break;
		if (f->kind == FAULT_FAIL)
			n += (size_t)snprintf(out + n, len - n, " %d", f->err);
		else if (f->kind == FAULT_DELAY)
			n += (size_t)snprintf(out + n, len - n, " %u", f->ms);
		if (n < len)
			n += (size_t)snprintf(out + n, len - n,
					      " left=%ld hits=%lu", f->left,
					      f->hits);
	}
	pthread_mutex_unlock(&lock);
}

static void list_counters(char *out, size_t len)
{
	size_t n = (size_t)snprintf(out, len, "ok memory=%llu",
				    (unsigned long long)budget_in_use());

	for (size_t i = 0; i < ARRAY_SIZE(opcodes) && n < len; i++)
		n += (size_t)snprintf(
			out + n, len - n, " %s=%lu",
			i + 1 < ARRAY_SIZE(opcodes) ? opcodes[i].name : "other",
			atomic_load(&seen[i]));
	if (n < len)
		snprintf(out + n, len - n, " on-loop=%lu sendfile=%lu ring=%lu",
			 atomic_load(&seen_on_loop),
			 atomic_load(&seen_sendfile), atomic_load(&seen_ring));
}

static void kick(struct session *s, void *arg)
{
	pthread_mutex_lock(&s->tx_lock);
	if (s->state != RX_CLOSING)
		answers_flush_locked(s);
	pthread_mutex_unlock(&s->tx_lock);
}

static void set_reading(struct session *s, void *arg)
{
	atomic_store(&s->stop_reading, *(bool *)arg);
	pthread_mutex_lock(&s->tx_lock);
	session_update_watch(s);
	pthread_mutex_unlock(&s->tx_lock);
}

static void forget_regions(struct session *s, void *arg)
{
	(void)arg;
	regions_drop_idle(s, UINT64_MAX);
}

static void drop(struct session *s, void *arg)
{
	atomic_store(&s->dropped, true);
	session_shutdown(s); /* the loop sees it at once */
}

/* Extensions VDISK_STAT leaves out, as an original agent would. */
static _Atomic uint64_t hidden;

uint64_t fault_features(void)
{
	return VXHS_FEAT_ALL & ~atomic_load(&hidden);
}

/* "hide" and "show": "flush", "write-zeroes", "discard",
 * "compare-and-write", "lock", "write-same", "copy", "shared-memory",
 * "local-read", "local-write" or "all". */
static int set_hidden(char **argv, int argc, char *out, size_t len)
{
	static const struct {
		const char *name;
		uint64_t bit;
	} feats[] = {
		{ "flush", VXHS_FEAT_FLUSH },
		{ "write-zeroes", VXHS_FEAT_WRITE_ZEROES },
		{ "discard", VXHS_FEAT_DISCARD },
		{ "compare-and-write", VXHS_FEAT_COMPARE_AND_WRITE },
		{ "lock", VXHS_FEAT_LOCK },
		{ "write-same", VXHS_FEAT_WRITE_SAME },
		{ "copy", VXHS_FEAT_COPY },
		{ "shared-memory", VXHS_FEAT_SHARED_MEMORY },
		{ "local-read", VXHS_FEAT_LOCAL_READ },
		{ "local-write", VXHS_FEAT_LOCAL_WRITE },
		{ "all", VXHS_FEAT_ALL },
	};
	bool hide = argv[0][0] == 'h';

	for (int i = 1; i < argc; i++) {
		size_t f = 0;

		while (f < ARRAY_SIZE(feats) && strcmp(argv[i], feats[f].name))
			f++;
		if (f == ARRAY_SIZE(feats)) {
			snprintf(
				out, len,
				"error: no extension '%s' (flush, write-zeroes, discard, compare-and-write, lock, write-same, copy, shared-memory, local-read, local-write, all)",
				argv[i]);
			return -EINVAL;
		}
		if (hide)
			atomic_fetch_or(&hidden, feats[f].bit);
		else
			atomic_fetch_and(&hidden, ~feats[f].bit);
	}
	snprintf(out, len, "ok: VDISK_STAT offers %#llx",
		 (unsigned long long)fault_features());
	return 0;
}

static int run(char **argv, int argc, char *out, size_t len)
{
	const char *cmd = argv[0];
	unsigned int n;
	bool stop;

	if (!strcmp(cmd, "fail") || !strcmp(cmd, "delay") ||
	    !strcmp(cmd, "truncate"))
		return add_rule(argv, argc, out, len);
	if (!strcmp(cmd, "pause") || !strcmp(cmd, "resume")) {
		atomic_store(&paused, cmd[0] == 'p');
		if (cmd[0] == 'r')
			admit_for_each(NULL, kick, NULL);
		snprintf(out, len, "ok");
		return 0;
	}
	if (!strcmp(cmd, "clear")) {
		pthread_mutex_lock(&lock);
		nr_rules = 0;
		generation++;
		atomic_store(&faults_armed, false);
		pthread_mutex_unlock(&lock);
		snprintf(out, len, "ok");
		return 0;
	}
	if ((!strcmp(cmd, "hide") || !strcmp(cmd, "show")) && argc > 1)
		return set_hidden(argv, argc, out, len);
	if (!strcmp(cmd, "list")) {
		list_rules(out, len);
		return 0;
	}
	if (!strcmp(cmd, "counters")) {
		list_counters(out, len);
		return 0;
	}
	if (argc != 2 ||
	    (strcmp(cmd, "stop-reading") && strcmp(cmd, "resume-reading") &&
	     strcmp(cmd, "drop") && strcmp(cmd, "forget-regions"))) {
		snprintf(
			out, len,
			"error: unknown command or wrong arguments: '%s' (fail, delay, truncate, pause, resume, stop-reading, resume-reading, drop, forget-regions, hide, show, clear, list, counters)",
			cmd);
		return -EINVAL;
	}
	stop = !strcmp(cmd, "stop-reading");
	n = admit_for_each(argv[1],
			   cmd[0] == 'd' ? drop :
			   cmd[0] == 'f' ? forget_regions :
					   set_reading,
			   &stop);
	snprintf(out, len, "ok %u connection%s", n, n == 1 ? "" : "s");
	return 0;
}

/* Splits a line into words; every byte must be printable ASCII. */
static int split(char *line, char **argv, int max)
{
	int argc = 0;

	for (char *p = line; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
			return -EINVAL;
	for (char *tok = strtok(line, " "); tok; tok = strtok(NULL, " ")) {
		if (argc == max)
			return -E2BIG;
		argv[argc++] = tok;
	}
	return argc ? argc : -EINVAL;
}

void fault_control_accept(void)
{
	struct timeval tv = { .tv_sec = 2 };
	char line[LINE_MAX_], out[4096], *argv[8];
	size_t got = 0;
	int fd, argc;

	fd = accept4(control_fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return;
	/* A client that says nothing must not hold the main thread. */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	while (got < sizeof(line) - 1) {
		ssize_t n = read(fd, line + got, sizeof(line) - 1 - got);

		if (n <= 0)
			break;
		got += (size_t)n;
		if (memchr(line, '\n', got))
			break;
	}
	line[got] = '\0';
	line[strcspn(line, "\n")] = '\0';
	argc = split(line, argv, (int)ARRAY_SIZE(argv));
	if (argc < 0)
		snprintf(out, sizeof(out),
			 "error: expected one line of printable words");
	else
		run(argv, argc, out, sizeof(out));
	vlog(LOG_NOTICE, "fault injection: %s -> %.*s",
	     argc > 0 ? argv[0] : "(bad line)", (int)strcspn(out, "\n"), out);
	strcat(out, "\n");
	if (write(fd, out, strlen(out)) < 0)
		vlog(LOG_INFO, "fault injection: cannot answer: %m");
	close(fd);
}

int fault_control_open(const char *path)
{
	int fd = listen_unix_private(path, "--control");

	if (fd < 0)
		return fd;
	control_fd = fd;
	control_path = strdup(path);
	atomic_store(&counting, true);
	vlog(LOG_WARNING,
	     "fault injection enabled on %s: for tests only, never in production",
	     path);
	return 0;
}

int fault_control_fd(void)
{
	return control_fd;
}

void fault_control_close(void)
{
	char *clear[] = { "clear" }, *resume[] = { "resume" }, out[64];

	if (control_fd < 0)
		return;
	run(clear, 1, out, sizeof(out));
	run(resume, 1, out, sizeof(out));
	close(control_fd);
	unlink(control_path);
	free(control_path);
	control_fd = -1;
}
