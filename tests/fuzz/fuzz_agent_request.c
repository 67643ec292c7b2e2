// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * vxhsd's request path without the network: the input is a stream of
 * headers (each followed by the payload it announces, as far as the input
 * goes), taken through the steps session.c takes: decode, request_admit
 * (validation and the access list), then execution against real vdisk
 * files and the answer.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "fuzz.h"
#include "vxhsd.h"

#define VDISK_SIZE (1u << 20)

struct vxhsd_config config;
atomic_bool draining;
static struct session sess;

/* workers.c's accounting is not linked in. */
bool mem_reserve(uint64_t bytes)
{
	(void)bytes;
	return true;
}

void mem_release(uint64_t bytes)
{
	(void)bytes;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static char dir[] = "/tmp/vxhs-fuzz-agent-XXXXXX";
	char path[128];
	FILE *f;

	(void)argc;
	(void)argv;
	if (!mkdtemp(dir))
		abort();
	for (int i = 0; i < 2; i++) {
		int fd;

		snprintf(path, sizeof(path), "%s/disk-%c", dir, 'a' + i);
		fd = open(path, O_CREAT | O_RDWR, 0600);
		if (fd < 0 || ftruncate(fd, VDISK_SIZE))
			abort();
		close(fd);
	}
	snprintf(path, sizeof(path), "%s.acl", dir);
	f = fopen(path, "w");
	fputs("dns:gw.test disk-a rw\ndns:gw.test disk-* ro\n", f);
	fclose(f);
	config.max_io = 64 * 1024;
	config.log_level = LOG_CRIT;
	log_init(LOG_CRIT);
	if (store_open(dir) || acl_load(path))
		abort();
	sess.ident.kind = IDENT_TLS;
	sess.ident.names[0] = strdup("dns:gw.test");
	sess.ident.nr_names = 1;
	snprintf(sess.peer, sizeof(sess.peer), "fuzz");
	return 0;
}

static void one_request(const uint8_t *raw, const uint8_t **p, size_t *left)
{
	struct vxhs_hdr h;
	struct request *r;
	const char *why;
	uint64_t buf_len;
	int32_t err;
	int decoded = vxhs_hdr_decode(raw, &h);

	if (decoded == -EBADMSG)
		return; /* the session closes the connection */
	err = request_admit(&sess, &h, decoded, &why, &buf_len);
	if (h.payload_size > config.max_io)
		return; /* answered EMSGSIZE, then the connection closes */
	r = calloc(1, sizeof(*r));
	r->buf = buf_len ? calloc(1, buf_len) : NULL;
	r->hdr = h;
	r->err = err;
	r->buf_len = buf_len;
	r->s = &sess;
	atomic_fetch_add(&sess.buffered, buf_len);
	/* The payload, as much as the input has. */
	if (h.payload_size) {
		size_t n = *left < h.payload_size ? *left : h.payload_size;

		if (!err)
			memcpy(r->buf, *p, n);
		*p += n;
		*left -= n;
	}
	if (err || !request_try_inline(r))
		request_execute(r);
	request_free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *p = data;
	size_t left = size;

	while (left >= VXHS_HDR_SIZE) {
		const uint8_t *raw = p;

		p += VXHS_HDR_SIZE;
		left -= VXHS_HDR_SIZE;
		one_request(raw, &p, &left);
	}
	return 0;
}
