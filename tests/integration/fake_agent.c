// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * A fake QNIO v34 agent on loopback whose misbehaviour a test chooses:
 * the answers a real agent must never give, to see the client cope.
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "vxhs/kvset.h"
#include "vxhs/wire.h"

#define MAX_CLIENTS 32

static bool recv_all(int fd, void *buf, size_t len)
{
	return recv(fd, buf, len, MSG_WAITALL) == (ssize_t)len;
}

static void send_answer(int fd, const struct vxhs_hdr *req, int32_t err,
			uint64_t cookie, const void *data, uint64_t len)
{
	struct vxhs_hdr a = *req;
	uint8_t raw[VXHS_HDR_SIZE];

	a.flags = vxhs_hdr_response_flags(req->flags);
	a.err = err;
	a.cookie = cookie;
	a.payload_size = len;
	vxhs_hdr_encode(&a, raw);
	if (send(fd, raw, sizeof(raw), MSG_NOSIGNAL) < 0)
		return;
	if (len)
		send(fd, data, len, MSG_NOSIGNAL);
}

/* Handles one request; false when the connection should go. */
static bool serve_one(struct fake_agent *f, int fd)
{
	uint8_t raw[VXHS_HDR_SIZE], kv[256];
	struct vxhs_kvset_builder b;
	struct vxhs_hdr h;
	uint64_t cookie;
	bool bad;

	if (!recv_all(fd, raw, sizeof(raw)) || vxhs_hdr_decode(raw, &h))
		return false;
	cookie = h.cookie;
	switch (h.opcode) {
	case VXHS_OP_STAT:
		vxhs_kvset_begin(&b, kv, sizeof(kv));
		vxhs_kvset_add_u64(&b, VXHS_KEY_SIZE, f->size);
		if (f->mode == FAKE_ODD_NAME)
			vxhs_kvset_add_string(&b, VXHS_KEY_AGENT,
					      "evil\n2026 forged line\x1b[2J");
		if (f->mode == FAKE_CAW_BAD_OFFSET)
			vxhs_kvset_add_u64(&b, VXHS_KEY_FEATURES,
					   VXHS_FEAT_COMPARE_AND_WRITE);
		if (f->mode == FAKE_LOCK_LIES)
			vxhs_kvset_add_u64(&b, VXHS_KEY_FEATURES,
					   VXHS_FEAT_LOCK);
		send_answer(fd, &h, 0, cookie, kv,
			    (uint64_t)vxhs_kvset_end(&b));
		return true;
	case VXHS_OP_FAILOVER_READY:
		f->failover_probes++;
		send_answer(fd, &h, 0, cookie, NULL, 0);
		return true;
	case VXHS_OP_WRITE:
		if (h.payload_size > f->size ||
		    h.io_offset + h.payload_size > f->size)
			return false;
		if (!recv_all(fd, f->data + h.io_offset, h.payload_size))
			return false;
		send_answer(fd, &h, f->mode == FAKE_MEDIA_ERROR ? EIO : 0,
			    cookie, NULL, 0);
		return true;
	case VXHS_OP_COMPARE_AND_WRITE:
		if (f->mode != FAKE_CAW_BAD_OFFSET ||
		    h.io_size > VXHS_CAW_MAX || h.payload_size != 2 * h.io_size)
			break;
		{
			uint8_t payload[2 * VXHS_CAW_MAX];
			struct vxhs_hdr past = h;

			if (!recv_all(fd, payload, h.payload_size))
				return false;
			past.io_nbytes = h.io_size; /* one past the range */
			f->bad_answers++;
			send_answer(fd, &past, EILSEQ, cookie, NULL, 0);
		}
		return true;
	case VXHS_OP_LOCK_ACQUIRE:
	case VXHS_OP_LOCK_QUERY:
		if (f->mode != FAKE_LOCK_LIES ||
		    h.payload_size > VXHS_LOCK_OWNER_MAX ||
		    (h.payload_size && !recv_all(fd, kv, h.payload_size)))
			break;
		vxhs_kvset_begin(&b, kv, sizeof(kv));
		vxhs_kvset_add_u64(&b, VXHS_LOCK_KEY_EPOCH, 5);
		vxhs_kvset_add_bool(&b, VXHS_LOCK_KEY_HELD, true);
		vxhs_kvset_add_string(&b, VXHS_LOCK_KEY_OWNER,
				      h.opcode == VXHS_OP_LOCK_QUERY ?
					      "evil\x1b[2J" :
					      "someone-else");
		f->bad_answers++;
		send_answer(fd, &h, 0, cookie, kv,
			    (uint64_t)vxhs_kvset_end(&b));
		return true;
	case VXHS_OP_READ:
		if (h.io_offset + h.io_size > f->size)
			return false;
		f->reads++;
		bad = f->mode == FAKE_BAD_COOKIE_ALWAYS ||
		      (f->mode == FAKE_BAD_COOKIE_ONCE && f->reads == 1);
		if (bad) {
			f->bad_answers++;
			cookie ^= 0x5A5A000000000000ull;
		}
		if (f->mode == FAKE_MEDIA_ERROR) {
			send_answer(fd, &h, EIO, cookie, NULL, 0);
		} else if (f->mode == FAKE_SHORT_READ) {
			f->bad_answers++;
			send_answer(fd, &h, 0, cookie, f->data + h.io_offset,
				    h.io_size - 1);
		} else {
			send_answer(fd, &h, 0, cookie, f->data + h.io_offset,
				    h.io_size);
		}
		return true;
	}
	f->unknown_opcodes++;
	send_answer(fd, &h, EOPNOTSUPP, cookie, NULL, 0);
	return true;
}

static void *fake_thread(void *arg)
{
	struct fake_agent *f = arg;
	struct pollfd p[MAX_CLIENTS + 2];
	int n = 2;

	p[0].fd = f->wake[0];
	p[0].events = POLLIN;
	p[1].fd = f->listen_fd;
	p[1].events = POLLIN;
	for (;;) {
		if (poll(p, (nfds_t)n, -1) < 0)
			continue;
		if (p[0].revents)
			break;
		if ((p[1].revents & POLLIN) && n < MAX_CLIENTS + 2) {
			int fd = accept(f->listen_fd, NULL, NULL);

			if (fd >= 0) {
				p[n].fd = fd;
				p[n].events = POLLIN;
				p[n++].revents = 0;
				f->connections++;
			}
		}
		for (int i = 2; i < n; i++) {
			if (!p[i].revents)
				continue;
			if (!serve_one(f, p[i].fd)) {
				close(p[i].fd);
				p[i--] = p[--n];
			}
		}
	}
	for (int i = 2; i < n; i++)
		close(p[i].fd);
	return NULL;
}

void fake_start(struct fake_agent *f, enum fake_mode mode, uint64_t size)
{
	struct sockaddr_in sin = {
		.sin_family = AF_INET,
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	};
	socklen_t len = sizeof(sin);

	memset(f, 0, sizeof(*f));
	f->mode = mode;
	f->size = size;
	f->data = calloc(1, size);
	assert_non_null(f->data);
	for (uint64_t i = 0; i < size; i++)
		f->data[i] = (uint8_t)(i * 7 + 3);
	f->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(f->listen_fd >= 0);
	assert_int_equal(
		bind(f->listen_fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(f->listen_fd, 64), 0);
	getsockname(f->listen_fd, (struct sockaddr *)&sin, &len);
	f->port = ntohs(sin.sin_port);
	assert_int_equal(pipe(f->wake), 0);
	assert_int_equal(pthread_create(&f->thread, NULL, fake_thread, f), 0);
}

void fake_stop(struct fake_agent *f)
{
	assert_int_equal(write(f->wake[1], "x", 1), 1);
	pthread_join(f->thread, NULL);
	close(f->listen_fd);
	close(f->wake[0]);
	close(f->wake[1]);
	free(f->data);
}
