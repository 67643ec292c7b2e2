// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * vxhsd's real session code over a socketpair: the input is the byte
 * stream a peer sends, written in pieces of varying size (so headers and
 * payloads arrive split), with the agent's answers read back between
 * pieces. Everything from the receive state machine to the answers runs as
 * in the agent, but on this one thread: the loop is driven by hand and the
 * workers run each request at once. After the peer hangs up, every byte
 * of request memory must be back in the budget and every request retired.
 *
 * The session is a UNIX one whose peer passed a memfd of REGION_LEN bytes
 * before its first byte: a REGION_ADD in the input maps it (with the page
 * size as io_size, or its whole length), and READs and WRITEs by
 * reference then run against it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <syslog.h>
#include <unistd.h>

#include "common/util.h"
#include "fuzz.h"
#include "vxhsd.h"

#define VDISK_SIZE (1u << 20)
#define REGION_LEN (64u << 10)

struct vxhsd_config config;
static struct loop loop;
static int region_fd;

/* workers.c's pool, without threads: each request runs to completion. */
void workers_queue(struct session *s, struct list_head *reqs)
{
	struct list_head done;

	list_init(&done);
	while (!list_empty(reqs)) {
		struct request *r =
			list_first_entry(reqs, struct request, link);

		list_del(&r->link);
		while (!request_execute(r))
			;
		list_add_tail(&r->link, &done);
	}
	session_answer(s, &done);
}

void workers_forget(struct session *s, struct list_head *out)
{
	(void)s;
	(void)out;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static char dir[] = "/tmp/vxhs-fuzz-session-XXXXXX";
	char path[128];
	FILE *f;

	(void)argc;
	(void)argv;
	if (!mkdtemp(dir))
		fuzz_fail_sys("mkdtemp");
	for (int i = 0; i < 2; i++) {
		int fd;

		snprintf(path, sizeof(path), "%s/disk-%c", dir, 'a' + i);
		fd = open(path, O_CREAT | O_RDWR, 0600);
		if (fd < 0 || ftruncate(fd, VDISK_SIZE))
			fuzz_fail_sys("a vdisk file");
		close(fd);
	}
	snprintf(path, sizeof(path), "%s.acl", dir);
	f = fopen(path, "w");
	fprintf(f, "uid:%u disk-a rw\nuid:%u disk-* ro\n", (unsigned)getuid(),
		(unsigned)getuid());
	fclose(f);
	region_fd = memfd_create("fuzz-region", MFD_CLOEXEC);
	if (region_fd < 0 || ftruncate(region_fd, REGION_LEN))
		fuzz_fail_sys("the region memfd");
	config.max_io = 64 * 1024;
	config.max_conns = 16;
	config.max_unauth = 16;
	config.max_conns_per_addr = 16;
	config.max_conns_per_identity = 16;
	config.max_reqs_per_conn = 32;
	config.memory_limit = 16u << 20;
	config.identity_memory = 4u << 20;
	config.max_conn_buffer = 1u << 20;
	config.header_timeout_s = 10;
	config.min_payload_rate = 1u << 20;
	config.log_level = LOG_CRIT;
	log_init(LOG_CRIT);
	if (store_open(dir) || acl_load(path))
		fuzz_fail("the store or the ACL did not load");
	loop.epfd = epoll_create1(EPOLL_CLOEXEC);
	if (loop.epfd < 0)
		fuzz_fail_sys("epoll_create1");
	list_init(&loop.sessions);
	list_init(&loop.inbox);
	list_init(&loop.again);
	/* Cached reads in batches, as vxhsd makes them by default. */
	config.io_uring = true;
	loop.reads = ring_reads_new();
	return 0;
}

/* A piece of the input; the first carries the region's descriptor (a
 * stream socket sends descriptors only with bytes). */
static ssize_t put(int sock, const uint8_t *p, size_t n, bool first)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int))];
	} ctl;
	struct iovec iov = { (void *)p, n };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *c;

	if (first) {
		msg.msg_control = ctl.buf;
		msg.msg_controllen = sizeof(ctl.buf);
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &region_fd, sizeof(int));
	}
	return sendmsg(sock, &msg, 0);
}

/* Reads whatever the agent answered, so its sends never block for long. */
static void drain(int fd)
{
	char buf[65536];

	while (read(fd, buf, sizeof(buf)) > 0)
		;
}

/* Delivers what the loop thread would: events, then the tick. */
static void run_loop(struct session *s)
{
	for (int i = 0; i < 4 && s->state != RX_CLOSING; i++) {
		session_on_events(s, EPOLLIN | EPOLLOUT);
		while (s->state != RX_CLOSING && !list_empty(&loop.again)) {
			list_del(&s->again_link);
			session_on_events(s, EPOLLIN);
		}
		if (s->state != RX_CLOSING)
			session_tick(s, vxhs_now_ns());
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t pieces[] = { 300, 1, 4096, 97, 65536, 256, 7 };
	struct session *s;
	const char *why;
	size_t off = 0;
	int fds[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
		       fds))
		fuzz_fail_sys("socketpair");
	s = session_new(fds[0], "fuzz", "fuzz", SESSION_UNIX);
	if (!s || admit_register(s, &why))
		fuzz_fail("a session could not be made or admitted");
	/* Ours, so that s outlives its closing (the loop's is dropped). */
	atomic_fetch_add(&s->refs, 1);
	s->loop = &loop;
	list_add_tail(&s->link, &loop.sessions);
	atomic_fetch_add(&loop.nr_sessions, 1);
	pthread_mutex_lock(&s->tx_lock);
	session_update_watch(s);
	pthread_mutex_unlock(&s->tx_lock);

	for (unsigned int i = 0; off < size && s->state != RX_CLOSING; i++) {
		size_t n = MIN(pieces[i % ARRAY_SIZE(pieces)], size - off);
		ssize_t sent = put(fds[1], data + off, n, off == 0);

		if (sent > 0)
			off += (size_t)sent;
		run_loop(s);
		drain(fds[1]);
	}
	shutdown(fds[1], SHUT_WR);
	for (int i = 0; i < 64 && s->state != RX_CLOSING; i++) {
		run_loop(s);
		drain(fds[1]);
	}
	if (s->state != RX_CLOSING) /* throttled for good: a bug */
		fuzz_fail("a throttled session never closed");
	session_put(s);
	close(fds[1]);
	/* Every request retired, every byte of memory given back. */
	if (!loops_drained() || budget_in_use())
		fuzz_fail("a request or its memory outlived the session");
	return 0;
}
