// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * The client library's answer handling. A fake agent on a UNIX socket
 * answers the open's VDISK_STAT correctly, then sends the fuzz input as the
 * answer stream to whatever comes next: a READ, a WRITE and a STAT. Every
 * request must complete (with data or an error) within the deadlines, and
 * nothing from the input may be used as anything but data.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

#include "fuzz.h"
#include "vxhs/client.h"
#include "vxhs/kvset.h"
#include "vxhs/wire.h"

static struct vxhs_ctx *ctx;
static char sock_path[108];
static int listen_fd;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static const uint8_t *input;
static size_t input_len;

static int read_full(int fd, uint8_t *buf, size_t len)
{
	while (len) {
		ssize_t n = read(fd, buf, len);

		if (n <= 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* A correct VDISK_STAT answer to h. */
static void answer_stat(int fd, const struct vxhs_hdr *h)
{
	uint8_t kv[256], out[VXHS_HDR_SIZE];
	struct vxhs_kvset_builder b;
	struct vxhs_hdr a = *h;
	int len;

	vxhs_kvset_begin(&b, kv, sizeof(kv));
	vxhs_kvset_add_u64(&b, "vdisk_size_bytes", 1u << 20);
	len = vxhs_kvset_end(&b);
	a.flags = VXHS_FLAG_RESP |
		  (h->flags & VXHS_FLAG_SYNC_REQ ? VXHS_FLAG_SYNC_RESP : 0);
	a.payload_size = (uint64_t)len;
	a.err = 0;
	vxhs_hdr_encode(&a, out);
	if (write(fd, out, sizeof(out)) < 0 || write(fd, kv, (size_t)len) < 0)
		return;
}

/* Each connection: STAT probes get real answers; anything else gets the
 * fuzz input, after which the connection closes. */
static void *serve_conn(void *arg)
{
	int fd = (int)(intptr_t)arg;
	uint8_t raw[VXHS_HDR_SIZE];
	struct vxhs_hdr h;

	while (read_full(fd, raw, sizeof(raw)) == 0) {
		if (vxhs_hdr_decode(raw, &h))
			break;
		if (h.opcode == VXHS_OP_STAT &&
		    (h.flags & VXHS_FLAG_SYNC_REQ)) {
			answer_stat(fd, &h);
			continue;
		}
		pthread_mutex_lock(&lock);
		if (input_len && write(fd, input, input_len) < 0)
			input_len = 0;
		pthread_mutex_unlock(&lock);
		break;
	}
	close(fd);
	return NULL;
}

static void *acceptor(void *arg)
{
	(void)arg;
	for (;;) {
		pthread_t t;
		int fd = accept(listen_fd, NULL, NULL);

		if (fd < 0)
			continue;
		if (pthread_create(&t, NULL, serve_conn, (void *)(intptr_t)fd))
			close(fd);
		else
			pthread_detach(t);
	}
	return NULL;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct vxhs_ctx_opts o;
	pthread_t t;
	int err;

	(void)argc;
	(void)argv;
	snprintf(sock_path, sizeof(sock_path), "/tmp/vxhs-fuzz-%d.sock",
		 getpid());
	unlink(sock_path);
	strcpy(sun.sun_path, sock_path);
	listen_fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (listen_fd < 0 ||
	    bind(listen_fd, (struct sockaddr *)&sun, sizeof(sun)) ||
	    listen(listen_fd, 64))
		fuzz_fail_sys("the fake agent's socket");
	err = pthread_create(&t, NULL, acceptor, NULL);
	if (err)
		fuzz_fail_at(__FILE__, __LINE__, "the fake agent's thread",
			     err);
	vxhs_ctx_opts_init(&o);
	o.log_level = LOG_CRIT;
	if (vxhs_ctx_new(&o, &ctx))
		fuzz_fail("vxhs_ctx_new");
	return 0;
}

struct waiter {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned int pending;
};

static void done(void *opaque, int result)
{
	struct waiter *w = opaque;

	(void)result;
	pthread_mutex_lock(&w->lock);
	w->pending--;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct waiter w = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
			    0 };
	static uint8_t rbuf[8192], wbuf[4096];
	struct iovec riov = { rbuf, sizeof(rbuf) };
	struct iovec wiov = { wbuf, sizeof(wbuf) };
	struct vxhs_open_opts o;
	struct vxhs_vdisk *vd;

	pthread_mutex_lock(&lock);
	input = data;
	input_len = size;
	pthread_mutex_unlock(&lock);

	vxhs_open_opts_init(&o);
	vxhs_agent_addr_parse(sock_path, &o.agents[0]);
	o.nr_agents = 1;
	o.conns_per_agent = 1;
	o.connect_timeout_ms = 200;
	o.io_timeout_ms = 100;
	o.failover_deadline_ms = 150;
	o.max_attempts = 1;
	if (vxhs_vdisk_open(ctx, "disk", &o, &vd))
		fuzz_fail("the open the fake agent answers failed");
	w.pending = 3;
	if (vxhs_readv(vd, &riov, 1, 4096, done, &w))
		w.pending--;
	if (vxhs_writev(vd, &wiov, 1, 0, done, &w))
		w.pending--;
	if (vxhs_stat(vd, done, &w))
		w.pending--;
	pthread_mutex_lock(&w.lock);
	while (w.pending)
		pthread_cond_wait(&w.cond, &w.lock);
	pthread_mutex_unlock(&w.lock);
	vxhs_vdisk_close(vd);

	pthread_mutex_lock(&lock);
	input = NULL;
	input_len = 0;
	pthread_mutex_unlock(&lock);
	return 0;
}
