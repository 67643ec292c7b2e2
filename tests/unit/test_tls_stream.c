// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * The TLS record I/O of lib/tls/stream.c between two in-process GnuTLS
 * sessions on a socket pair: records held while the socket is full and
 * finished by the next call, gathering of scattered buffers, read-ahead
 * that the socket no longer announces, end of stream; and the key the
 * kernel's TLS would take over (lib/tls/kernel.c), checked by a record
 * made from it that the peer's GnuTLS must accept.
 */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <gnutls/crypto.h>
#include <linux/tls.h>

#include "tls/tls.h"

/* The product's suites, keyed by a pre-shared key: no certificates. */
#define TEST_PRIORITY VXHS_TLS_PRIORITY ":-KX-ALL:+ECDHE-PSK"

struct pair {
	int fd[2];
	gnutls_session_t s[2]; /* [0] client, [1] server */
	struct vxhs_tls_io *io[2];
	gnutls_psk_client_credentials_t ccred;
	gnutls_psk_server_credentials_t scred;
};

static const uint8_t psk_bytes[32] = { 7, 1, 9, 3 };
/* What the next pair alone negotiates, and the cipher the last one got. */
static const char *pair_priority = TEST_PRIORITY;
static gnutls_cipher_algorithm_t pair_cipher;

static int server_psk(gnutls_session_t s, const char *user, gnutls_datum_t *key)
{
	(void)s;
	(void)user;
	key->data = gnutls_malloc(sizeof(psk_bytes));
	if (!key->data)
		return -1;
	memcpy(key->data, psk_bytes, sizeof(psk_bytes));
	key->size = sizeof(psk_bytes);
	return 0;
}

/*
 * A connected pair. With exact set, the server reads its handshake as a
 * session whose records the kernel will read (no read-ahead); early bytes
 * of data leave the client as soon as its side of the handshake is done,
 * before the server has finished, as a client's first requests do.
 */
static struct pair *pair_new(bool exact, const void *early, size_t n)
{
	const gnutls_datum_t key = { (uint8_t *)psk_bytes, sizeof(psk_bytes) };
	struct pair *p = calloc(1, sizeof(*p));
	int done[2] = { 0, 0 };
	bool sent = !n;

	assert_non_null(p);
	assert_int_equal(
		socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, p->fd), 0);
	assert_int_equal(gnutls_psk_allocate_client_credentials(&p->ccred), 0);
	assert_int_equal(gnutls_psk_set_client_credentials(
				 p->ccred, "test", &key, GNUTLS_PSK_KEY_RAW),
			 0);
	assert_int_equal(gnutls_psk_allocate_server_credentials(&p->scred), 0);
	gnutls_psk_set_server_credentials_function(p->scred, server_psk);
	assert_int_equal(gnutls_init(&p->s[0], GNUTLS_CLIENT | GNUTLS_NONBLOCK),
			 0);
	assert_int_equal(gnutls_init(&p->s[1], GNUTLS_SERVER | GNUTLS_NONBLOCK),
			 0);
	assert_int_equal(
		gnutls_credentials_set(p->s[0], GNUTLS_CRD_PSK, p->ccred), 0);
	assert_int_equal(
		gnutls_credentials_set(p->s[1], GNUTLS_CRD_PSK, p->scred), 0);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(gnutls_priority_set_direct(
					 p->s[i], pair_priority, NULL),
				 0);
		p->io[i] = vxhs_tls_io_new(p->s[i], p->fd[i]);
		assert_non_null(p->io[i]);
	}
	p->io[1]->exact_reads = exact;
	for (int round = 0; round < 100 && !(done[0] && done[1]); round++) {
		for (int i = 0; i < 2; i++) {
			struct iovec iov = { (void *)early, n };
			int ret, gerr;

			if (done[0] && !sent) {
				assert_int_equal(vxhs_tls_sendv(p->s[0],
								p->io[0], &iov,
								1, &gerr),
						 (ssize_t)n);
				sent = true;
			}
			if (done[i])
				continue;
			ret = gnutls_handshake(p->s[i]);
			if (ret == 0)
				done[i] = 1;
			else if (ret != GNUTLS_E_AGAIN)
				fail_msg("handshake: %s", gnutls_strerror(ret));
		}
	}
	assert_true(done[0] && done[1] && sent);
	pair_cipher = gnutls_cipher_get(p->s[0]);
	pair_priority = TEST_PRIORITY;
	return p;
}

static int setup(void **state)
{
	*state = pair_new(false, NULL, 0);
	return 0;
}

/* Side 0 makes and reads records itself (records.c), side 1 too if both. */
static struct pair *pair_ours(bool both)
{
	struct pair *p = pair_new(false, NULL, 0);
	char why[128];

	for (int i = 0; i < (both ? 2 : 1); i++) {
		assert_int_equal(vxhs_tls_user_start(p->s[i], p->io[i], why,
						     sizeof(why)),
				 0);
		assert_true(p->io[i]->user_tx && p->io[i]->user_rx);
	}
	return p;
}

static int setup_ours(void **state)
{
	*state = pair_ours(true);
	return 0;
}

static int teardown(void **state)
{
	struct pair *p = *state;

	for (int i = 0; i < 2; i++) {
		gnutls_deinit(p->s[i]);
		vxhs_tls_io_free(p->io[i]);
		if (p->fd[i] >= 0)
			close(p->fd[i]);
	}
	gnutls_psk_free_client_credentials(p->ccred);
	gnutls_psk_free_server_credentials(p->scred);
	free(p);
	return 0;
}

/* Receives on side 1 until it would block; returns the bytes added. */
static size_t drain(struct pair *p, uint8_t *buf, size_t *at, size_t cap,
		    size_t chunk)
{
	size_t before = *at;
	int gerr = 0;

	while (*at < cap) {
		size_t want = cap - *at < chunk ? cap - *at : chunk;
		ssize_t got = vxhs_tls_recv(p->s[1], p->io[1], buf + *at, want,
					    &gerr);

		if (got == -EAGAIN)
			break;
		if (got <= 0)
			fail_msg("recv: %zd (%s)", got, gnutls_strerror(gerr));
		*at += (size_t)got;
	}
	return *at - before;
}

/* iov over data[skip..], in the uneven pieces a request queue has. */
static int pieces(uint8_t *data, size_t len, size_t skip, struct iovec *iov,
		  int max)
{
	static const size_t sizes[] = { 256, 1, 40000, 4096, 17, 16384, 9000 };
	size_t at = 0;
	int n = 0;

	for (unsigned int k = 0; at < len && n < max; k++) {
		size_t take = sizes[k % 7];
		size_t end = at + take > len ? len : at + take;

		if (end > skip) {
			size_t from = at > skip ? at : skip;

			iov[n].iov_base = data + from;
			iov[n++].iov_len = end - from;
		}
		at = end;
	}
	return n;
}

/*
 * A megabyte in scattered buffers into a socket that takes 16 KiB: sends
 * stop with records held; the next call finishes them without looking at
 * its iov, and reports them only then. Every byte arrives once, in order.
 */
static void held_records_are_finished(void **state)
{
	struct pair *p = *state;
	size_t len = (1u << 20) + 12345, done = 0, got = 0;
	uint8_t *out = malloc(len), *in = malloc(len);
	int small = 16 * 1024, held = 0;

	assert_non_null(out);
	assert_non_null(in);
	for (size_t i = 0; i < len; i++)
		out[i] = (uint8_t)(i * 131 + (i >> 11));
	setsockopt(p->fd[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	setsockopt(p->fd[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	for (int rounds = 0; done < len; rounds++) {
		struct iovec iov[64];
		int n = pieces(out, len, done, iov, 64), gerr = 0;
		ssize_t sent = vxhs_tls_sendv(p->s[0], p->io[0], iov, n, &gerr);

		assert_true(rounds < 100000);
		if (sent == -EAGAIN) {
			assert_true(vxhs_tls_send_held(p->io[0]));
			held++;
			drain(p, in, &got, len, 3000);
			/* Held records go first, whatever comes with them. */
			sent = vxhs_tls_sendv(p->s[0], p->io[0], NULL, 0,
					      &gerr);
			if (sent == -EAGAIN)
				continue;
		}
		assert_true(sent > 0);
		done += (size_t)sent;
		assert_true(done <= len);
	}
	while (got < len)
		assert_true(drain(p, in, &got, len, 70000) > 0 ||
			    vxhs_tls_has_pending(p->s[1], p->io[1]));
	assert_true(held > 0);
	assert_memory_equal(in, out, len);
	free(out);
	free(in);
}

/*
 * The peer can never read more than the sender was told has gone: it may
 * act on a request (and answer it) as soon as its records arrive, so the
 * sender must count them sent by then, not when the last held record of
 * the batch leaves.
 */
static void sent_counted_before_peer_reads(void **state)
{
	struct pair *p = *state;
	size_t len = 4u << 20, done = 0, got = 0;
	uint8_t *out = malloc(len), *in = malloc(len);
	int small = 24 * 1024, partial = 0;

	assert_non_null(out);
	assert_non_null(in);
	for (size_t i = 0; i < len; i++)
		out[i] = (uint8_t)(i * 7 + (i >> 13));
	setsockopt(p->fd[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	setsockopt(p->fd[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	for (int rounds = 0; done < len; rounds++) {
		struct iovec iov = { out + done, len - done };
		int gerr = 0;
		ssize_t sent =
			vxhs_tls_sendv(p->s[0], p->io[0], &iov, 1, &gerr);

		assert_true(rounds < 100000);
		assert_true(sent > 0 || sent == -EAGAIN);
		if (sent > 0) {
			done += (size_t)sent;
			partial += vxhs_tls_send_held(p->io[0]);
		}
		/* Everything the peer can decrypt now was reported sent. */
		drain(p, in, &got, len, 70000);
		assert_true(got <= done);
	}
	while (got < len)
		assert_true(drain(p, in, &got, len, 70000) > 0 ||
			    vxhs_tls_has_pending(p->s[1], p->io[1]));
	/* Some records were reported while others of theirs were held. */
	assert_true(partial > 0);
	assert_memory_equal(in, out, len);
	free(out);
	free(in);
}

/*
 * Small records that all arrived at once: after the first receive the
 * socket has nothing to announce, yet the read-ahead holds the rest.
 */
static void read_ahead_is_pending(void **state)
{
	struct pair *p = *state;
	uint8_t out[50][100], in[sizeof(out)];
	struct pollfd pfd = { .fd = p->fd[1], .events = POLLIN };
	size_t got = 0;
	int gerr = 0;

	for (int i = 0; i < 50; i++) {
		struct iovec iov = { out[i], sizeof(out[i]) };

		memset(out[i], i + 1, sizeof(out[i]));
		assert_int_equal(vxhs_tls_sendv(p->s[0], p->io[0], &iov, 1,
						&gerr),
				 sizeof(out[i]));
	}
	/* One whole record: GnuTLS itself holds nothing more. */
	assert_true(drain(p, in, &got, 100, 100) == 100);
	assert_int_equal(gnutls_record_check_pending(p->s[1]), 0);
	assert_int_equal(poll(&pfd, 1, 0), 0);
	assert_true(vxhs_tls_has_pending(p->s[1], p->io[1]));
	while (vxhs_tls_has_pending(p->s[1], p->io[1]))
		assert_true(drain(p, in, &got, sizeof(in), 64) > 0);
	assert_int_equal(got, sizeof(in));
	assert_memory_equal(in, out, sizeof(in));
	assert_int_equal(vxhs_tls_recv(p->s[1], p->io[1], in, sizeof(in),
				       &gerr),
			 -EAGAIN);
}

/*
 * TLS 1.3 with AES-GCM adds 22 bytes to a record: a 5-byte header, the
 * content type, a 16-byte tag.
 */
#define RECORD_WIRE_EXTRA 22

/*
 * Records of several sizes, all sent before the first read: the stream
 * says it is drained (the caller may wait for the next socket event) only
 * when nothing is left to read, in the socket or held back, and it does
 * say so once all is read. The fifth record is sized so that the read
 * that takes the first header fills the read-ahead exactly, with the
 * sixth still in the socket: an empty read-ahead alone does not mean
 * drained.
 */
static void drained_only_when_nothing_is_left(void **state)
{
	static const size_t sizes[] = {
		VXHS_TLS_RECORD_MAX,
		VXHS_TLS_RECORD_MAX,
		VXHS_TLS_RECORD_MAX,
		VXHS_TLS_RECORD_MAX,
		VXHS_TLS_READ_AHEAD + VXHS_TLS_HEADER -
			4 * (VXHS_TLS_RECORD_MAX + RECORD_WIRE_EXTRA) -
			RECORD_WIRE_EXTRA,
		100,
		VXHS_TLS_RECORD_MAX,
		VXHS_TLS_RECORD_MAX,
		100,
		7,
	};
	static uint8_t out[9 * VXHS_TLS_RECORD_MAX], in[sizeof(out)];
	struct pair *p = *state;
	struct pollfd pfd = { .fd = p->fd[1], .events = POLLIN };
	size_t done = 0, got = 0;
	int gerr = 0, reads = 0;

	for (size_t i = 0; i < sizeof(out); i++)
		out[i] = (uint8_t)(i * 13 + (i >> 9));
	for (unsigned int k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		struct iovec iov = { out + done, sizes[k] };

		assert_true(done + sizes[k] <= sizeof(out));
		assert_int_equal(vxhs_tls_sendv(p->s[0], p->io[0], &iov, 1,
						&gerr),
				 sizes[k]);
		done += sizes[k];
	}
	while (got < done) {
		ssize_t n = vxhs_tls_recv(p->s[1], p->io[1], in + got,
					  done - got, &gerr);

		assert_true(n > 0);
		got += (size_t)n;
		reads++;
		if (vxhs_tls_drained(p->s[1], p->io[1])) {
			assert_false(vxhs_tls_has_pending(p->s[1], p->io[1]));
			assert_int_equal(poll(&pfd, 1, 0), 0);
		}
	}
	assert_memory_equal(in, out, done);
	/* GnuTLS hands over one record per call; we fill what is asked. */
	if (p->io[1]->user_rx)
		assert_true(reads < 5);
	else
		assert_int_equal(reads, sizeof(sizes) / sizeof(sizes[0]));
	assert_true(vxhs_tls_drained(p->s[1], p->io[1]));
	assert_int_equal(vxhs_tls_recv(p->s[1], p->io[1], in, sizeof(in),
				       &gerr),
			 -EAGAIN);
}

/* A peer that closes without close_notify is an end of stream. */
static void peer_close_is_end_of_stream(void **state)
{
	struct pair *p = *state;
	uint8_t buf[16];
	int gerr = 0;

	close(p->fd[0]);
	p->fd[0] = -1;
	assert_int_equal(
		vxhs_tls_recv(p->s[1], p->io[1], buf, sizeof(buf), &gerr), 0);
}

/* Sending to a closed peer is the socket's error, not a GnuTLS one. */
static void send_to_closed_peer(void **state)
{
	struct pair *p = *state;
	uint8_t buf[100] = { 0 };
	struct iovec iov = { buf, sizeof(buf) };
	int gerr = -1;

	close(p->fd[1]);
	p->fd[1] = -1;
	assert_int_equal(vxhs_tls_sendv(p->s[0], p->io[0], &iov, 1, &gerr),
			 -EPIPE);
	assert_int_equal(gerr, 0);
}

/*
 * The record the kernel would send next, made here from what
 * vxhs_tls_kernel_info gives it (TLS 1.3: the nonce is salt and IV xor
 * the sequence number; the type byte after the data; the header is the
 * additional data). GnuTLS on the other side must accept it: a wrong
 * split of the IV or an off-by-one sequence number fails its tag.
 */
static void kernel_key_continues_session(void **state)
{
	struct pair *p = *state;
	struct tls12_crypto_info_aes_gcm_128 info;
	uint8_t first[300] = { 1 }, in[600], rec[5 + 600], nonce[12];
	uint8_t plain[sizeof(first) + 1];
	struct iovec iov = { first, sizeof(first) };
	gnutls_datum_t key, iv;
	gnutls_aead_cipher_hd_t aead;
	size_t got = 0, clen = sizeof(rec) - 5;
	uint8_t seq[8];
	char why[128];
	int gerr;

	/* One record from GnuTLS first: the sequence is not at 0. */
	assert_int_equal(vxhs_tls_sendv(p->s[0], p->io[0], &iov, 1, &gerr),
			 (ssize_t)sizeof(first));
	drain(p, in, &got, sizeof(first), sizeof(first));
	assert_int_equal(got, sizeof(first));

	assert_int_equal(
		gnutls_record_get_state(p->s[0], 0, NULL, &iv, &key, seq), 0);
	assert_int_equal(vxhs_tls_kernel_info(gnutls_cipher_get(p->s[0]), &key,
					      &iv, seq, &info, sizeof(info),
					      why, sizeof(why)),
			 sizeof(info));
	assert_int_equal(info.info.version, TLS_1_3_VERSION);
	assert_int_equal(info.info.cipher_type, TLS_CIPHER_AES_GCM_128);
	assert_int_equal(info.rec_seq[7], 1);

	memcpy(nonce, info.salt, 4);
	memcpy(nonce + 4, info.iv, 8);
	for (int i = 0; i < 8; i++)
		nonce[4 + i] ^= info.rec_seq[i];
	for (size_t i = 0; i < sizeof(first); i++)
		plain[i] = (uint8_t)(i * 7 + 3);
	plain[sizeof(first)] = 23; /* application data */
	rec[0] = 23;
	rec[1] = rec[2] = 3;
	rec[3] = (uint8_t)((sizeof(plain) + 16) >> 8);
	rec[4] = (uint8_t)(sizeof(plain) + 16);
	key.data = info.key;
	key.size = sizeof(info.key);
	assert_int_equal(
		gnutls_aead_cipher_init(&aead, GNUTLS_CIPHER_AES_128_GCM, &key),
		0);
	assert_int_equal(gnutls_aead_cipher_encrypt(
				 aead, nonce, sizeof(nonce), rec, 5, 16, plain,
				 sizeof(plain), rec + 5, &clen),
			 0);
	gnutls_aead_cipher_deinit(aead);
	assert_int_equal(write(p->fd[0], rec, 5 + clen), (ssize_t)(5 + clen));

	got = 0;
	drain(p, in, &got, sizeof(first), sizeof(in));
	assert_int_equal(got, sizeof(first));
	assert_memory_equal(in, plain, sizeof(first));
}

/* Only AES-GCM with TLS 1.3's 12-byte IV goes to the kernel. */
static void kernel_key_refuses_others(void **state)
{
	uint8_t bytes[32] = { 0 }, seq[8] = { 0 };
	struct tls12_crypto_info_aes_gcm_256 info;
	gnutls_datum_t key = { bytes, 32 }, iv = { bytes, 12 };
	char why[128];

	(void)state;
	assert_int_equal(vxhs_tls_kernel_info(GNUTLS_CIPHER_CHACHA20_POLY1305,
					      &key, &iv, seq, &info,
					      sizeof(info), why, sizeof(why)),
			 0);
	assert_non_null(strstr(why, "CHACHA20"));
	iv.size = 4;
	assert_int_equal(vxhs_tls_kernel_info(GNUTLS_CIPHER_AES_256_GCM, &key,
					      &iv, seq, &info, sizeof(info),
					      why, sizeof(why)),
			 0);
	assert_non_null(strstr(why, "IV of 4 bytes"));
	iv.size = 12;
	assert_int_equal(vxhs_tls_kernel_info(GNUTLS_CIPHER_AES_256_GCM, &key,
					      &iv, seq, &info, sizeof(info),
					      why, sizeof(why)),
			 sizeof(info));
	assert_int_equal(info.info.cipher_type, TLS_CIPHER_AES_GCM_256);
}

/*
 * Where the kernel cannot take the session (here a UNIX socket, which has
 * no TLS layer), it says why and GnuTLS goes on making the records.
 */
static void kernel_refusal_keeps_records(void **state)
{
	struct pair *p = *state;
	uint8_t out[5000], in[5000];
	struct iovec iov = { out, sizeof(out) };
	size_t got = 0;
	char why[128] = "";
	int gerr;

	assert_true(vxhs_tls_kernel_tx(p->s[0], p->io[0], why, sizeof(why)) <
		    0);
	assert_true(why[0] != '\0');
	assert_false(p->io[0]->kernel_tx);
	memset(out, 0x5a, sizeof(out));
	assert_int_equal(vxhs_tls_sendv(p->s[0], p->io[0], &iov, 1, &gerr),
			 (ssize_t)sizeof(out));
	drain(p, in, &got, sizeof(in), sizeof(in));
	assert_int_equal(got, sizeof(in));
	assert_memory_equal(in, out, sizeof(out));
}

/*
 * Once the kernel's key has carried its share, sends end: the kernel
 * cannot take a new one. (The socket pair has no kernel TLS; the bytes go
 * out as they are, which is all this counts.)
 */
static void kernel_key_wears_out(void **state)
{
	struct pair *p = *state;
	uint8_t out[600] = { 0 };
	struct iovec iov = { out, sizeof(out) };
	int gerr;

	p->io[0]->kernel_tx = true;
	p->io[0]->kernel_key_left = 1000;
	assert_int_equal(vxhs_tls_sendv(p->s[0], p->io[0], &iov, 1, &gerr),
			 600);
	assert_int_equal(p->io[0]->kernel_key_left, 400);
	assert_int_equal(vxhs_tls_sendv(p->s[0], p->io[0], &iov, 1, &gerr),
			 600);
	assert_int_equal(vxhs_tls_sendv(p->s[0], p->io[0], &iov, 1, &gerr),
			 -EKEYEXPIRED);
	assert_int_equal(read(p->fd[1], out, sizeof(out)), sizeof(out));
}

/* The server's session has received what the client sent before its
 * handshake ended only if it read ahead: returns the read-ahead's bytes. */
static size_t early_bytes_taken(bool exact)
{
	static const char early[] = "the first requests";
	struct pair *p = pair_new(exact, early, sizeof(early));
	void *state = p;
	size_t ahead = p->io[1]->rx_end - p->io[1]->rx_start;
	uint8_t peek[64];

	/* Read ahead or not, the bytes are somewhere, whole. */
	if (!ahead)
		assert_true(recv(p->fd[1], peek, sizeof(peek), MSG_PEEK) >
			    (ssize_t)sizeof(early));
	assert_int_equal(vxhs_tls_has_pending(p->s[1], p->io[1]), ahead > 0);
	teardown(&state);
	return ahead;
}

/*
 * The kernel can read only what is still in the socket: a handshake read
 * without read-ahead leaves the client's first records there, where one
 * with it would have taken them.
 */
static void exact_handshake_leaves_records(void **state)
{
	(void)state;
	assert_true(early_bytes_taken(false) > 0);
	assert_int_equal(early_bytes_taken(true), 0);
}

/*
 * The read key handed to the kernel: the next record the peer's GnuTLS
 * makes opens with it (nonce from salt, IV and sequence number; the
 * header as additional data), as the kernel would open it.
 */
static void kernel_read_key_continues_session(void **state)
{
	struct pair *p = *state;
	struct tls12_crypto_info_aes_gcm_128 info;
	uint8_t data[300], in[600], rec[5 + 600], nonce[12];
	uint8_t plain[sizeof(data) + 1];
	struct iovec iov = { data, sizeof(data) };
	gnutls_aead_cipher_hd_t aead;
	gnutls_datum_t key;
	size_t got = 0, plen = sizeof(plain);
	ssize_t rlen;
	char why[128];
	int gerr;

	/* One record through GnuTLS first: the sequence is not at 0. */
	memset(data, 0x11, sizeof(data));
	assert_int_equal(vxhs_tls_sendv(p->s[0], p->io[0], &iov, 1, &gerr),
			 (ssize_t)sizeof(data));
	drain(p, in, &got, sizeof(data), sizeof(data));
	assert_int_equal(got, sizeof(data));

	assert_int_equal(vxhs_tls_kernel_state(p->s[1], true, &info,
					       sizeof(info), why, sizeof(why)),
			 sizeof(info));
	assert_int_equal(info.info.version, TLS_1_3_VERSION);
	assert_int_equal(info.rec_seq[7], 1);

	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 5 + 1);
	assert_int_equal(vxhs_tls_sendv(p->s[0], p->io[0], &iov, 1, &gerr),
			 (ssize_t)sizeof(data));
	rlen = read(p->fd[1], rec, sizeof(rec));
	assert_int_equal(rlen, 5 + sizeof(plain) + 16);
	memcpy(nonce, info.salt, 4);
	memcpy(nonce + 4, info.iv, 8);
	for (int i = 0; i < 8; i++)
		nonce[4 + i] ^= info.rec_seq[i];
	key.data = info.key;
	key.size = sizeof(info.key);
	assert_int_equal(
		gnutls_aead_cipher_init(&aead, GNUTLS_CIPHER_AES_128_GCM, &key),
		0);
	assert_int_equal(gnutls_aead_cipher_decrypt(
				 aead, nonce, sizeof(nonce), rec, 5, 16,
				 rec + 5, (size_t)rlen - 5, plain, &plen),
			 0);
	gnutls_aead_cipher_deinit(aead);
	assert_int_equal(plen, sizeof(plain));
	assert_memory_equal(plain, data, sizeof(data));
	assert_int_equal(plain[sizeof(data)], 23); /* application data */
}

/* The kernel takes nothing while records wait in user space. */
static void kernel_read_refused_after_read_ahead(void **state)
{
	struct pair *p = *state;
	char why[128] = "";

	assert_true(vxhs_tls_kernel_rx(p->s[1], p->io[1], why, sizeof(why)) <
		    0);
	assert_non_null(strstr(why, "does not send"));
	p->io[1]->kernel_tx = true; /* as if the kernel sent */
	p->io[1]->rx_start = 0;
	p->io[1]->rx_end = 10;
	assert_int_equal(vxhs_tls_kernel_rx(p->s[1], p->io[1], why,
					    sizeof(why)),
			 -EBUSY);
	assert_non_null(strstr(why, "already read"));
	assert_false(p->io[1]->kernel_rx);
}

/*
 * With the kernel reading the records, what it decrypted comes straight
 * into every buffer given, and a short read says the socket ran dry. (The
 * socket pair has no kernel TLS: its bytes are what the kernel would
 * hand over, with no record type, which is data.)
 */
static void kernel_reads_into_every_buffer(void **state)
{
	struct pair *p = *state;
	uint8_t out[3000], a[1000], b[1500], c[4000];
	struct iovec iov[3] = { { a, sizeof(a) },
				{ b, sizeof(b) },
				{ c, sizeof(c) } };
	int gerr;

	for (size_t i = 0; i < sizeof(out); i++)
		out[i] = (uint8_t)(i * 13);
	p->io[1]->kernel_rx = true;
	assert_int_equal(write(p->fd[0], out, sizeof(out)), sizeof(out));
	assert_int_equal(vxhs_tls_recvv(p->s[1], p->io[1], iov, 3, &gerr),
			 sizeof(out));
	assert_memory_equal(a, out, sizeof(a));
	assert_memory_equal(b, out + sizeof(a), sizeof(b));
	assert_memory_equal(c, out + sizeof(a) + sizeof(b),
			    sizeof(out) - sizeof(a) - sizeof(b));
	assert_true(vxhs_tls_drained(p->s[1], p->io[1]));
	assert_int_equal(vxhs_tls_recvv(p->s[1], p->io[1], iov, 3, &gerr),
			 -EAGAIN);
	close(p->fd[0]);
	p->fd[0] = -1;
	assert_int_equal(vxhs_tls_recvv(p->s[1], p->io[1], iov, 3, &gerr), 0);
}

/* Feeds bytes in pieces of at most step; the last result. */
static int feed_in_steps(struct vxhs_tls_ctl *c, uint8_t type, const uint8_t *p,
			 size_t n, size_t step, char *why)
{
	int ret = 0;

	for (size_t at = 0; at < n && !ret; at += step)
		ret = vxhs_tls_ctl_feed(c, type, p + at,
					n - at < step ? n - at : step, why,
					128);
	return ret;
}

/* What a peer may send after the handshake, as the kernel hands it over. */
static void control_records_are_parsed(void **state)
{
	/* Two session tickets of 7 and 0 bytes, then a key update. */
	static const uint8_t tickets[] = { 4, 0, 0, 7, 1, 2, 3, 4,
					   5, 6, 7, 4, 0, 0, 0 };
	static const uint8_t key_update[] = { 24, 0, 0, 1, 0 };
	static const uint8_t cert_request[] = { 13, 0, 0, 1, 0 };
	static const uint8_t huge_ticket[] = { 4, 0x7f, 0xff, 0xff };
	static const uint8_t close_notify[] = { 1, 0 };
	static const uint8_t failure[] = { 2, 40 };
	struct vxhs_tls_ctl c;
	char why[128];

	(void)state;
	for (size_t step = 1; step <= sizeof(tickets); step++) {
		memset(&c, 0, sizeof(c));
		assert_int_equal(feed_in_steps(&c, 22, tickets, sizeof(tickets),
					       step, why),
				 0);
		assert_int_equal(c.have + c.skip, 0);
		assert_int_equal(vxhs_tls_ctl_feed(&c, 23, NULL, 0, why, 128),
				 0);
	}
	/* Tickets come from servers only. */
	memset(&c, 0, sizeof(c));
	c.server = true;
	assert_int_equal(vxhs_tls_ctl_feed(&c, 22, tickets, 4, why, 128),
			 -EPROTO);
	assert_non_null(strstr(why, "from a client"));
	/* Data inside a ticket breaks RFC 8446's rule. */
	memset(&c, 0, sizeof(c));
	assert_int_equal(vxhs_tls_ctl_feed(&c, 22, tickets, 6, why, 128), 0);
	assert_int_equal(vxhs_tls_ctl_feed(&c, 23, NULL, 0, why, 128), -EPROTO);
	assert_non_null(strstr(why, "inside another message"));

	memset(&c, 0, sizeof(c));
	assert_int_equal(feed_in_steps(&c, 22, key_update, sizeof(key_update),
				       2, why),
			 -EKEYEXPIRED);
	assert_non_null(strstr(why, "updated its keys"));
	memset(&c, 0, sizeof(c));
	assert_int_equal(feed_in_steps(&c, 22, cert_request,
				       sizeof(cert_request), 5, why),
			 -EPROTO);
	assert_non_null(strstr(why, "handshake message 13"));
	memset(&c, 0, sizeof(c));
	assert_int_equal(feed_in_steps(&c, 22, huge_ticket, sizeof(huge_ticket),
				       4, why),
			 -EPROTO);
	assert_non_null(strstr(why, "session ticket of 8388607 bytes"));

	memset(&c, 0, sizeof(c));
	assert_int_equal(feed_in_steps(&c, 21, close_notify,
				       sizeof(close_notify), 1, why),
			 1);
	memset(&c, 0, sizeof(c));
	assert_int_equal(feed_in_steps(&c, 21, failure, sizeof(failure), 2,
				       why),
			 -EPROTO);
	assert_non_null(strstr(why, "(40)"));
	assert_int_equal(c.alert, 40); /* for the caller to name it */
	memset(&c, 0, sizeof(c));
	assert_int_equal(vxhs_tls_ctl_feed(&c, 21, tickets, 3, why, 128),
			 -EPROTO);
	assert_non_null(strstr(why, "alert record of 3 bytes"));
	memset(&c, 0, sizeof(c));
	assert_int_equal(vxhs_tls_ctl_feed(&c, 20, tickets, 1, why, 128),
			 -EPROTO);
	assert_non_null(strstr(why, "type 20"));
}

/*
 * Our records against GnuTLS's, both ways: side 0 makes and reads its own,
 * side 1 is GnuTLS alone. Scattered buffers of every size up to several
 * records arrive whole and in order, read into scattered buffers: a wrong
 * nonce, header, content type or sequence number fails GnuTLS's tag or
 * ours.
 */
static void our_records_are_gnutls_records(void **state)
{
	struct pair *p = pair_ours(false);
	size_t len = 3 * VXHS_TLS_RECORD_MAX + 777;
	uint8_t *out = malloc(len), *in = malloc(len);

	(void)state;
	assert_non_null(out);
	assert_non_null(in);
	/* AES-GCM by ipsec-mb wherever it runs, unless told not to. */
	if (pair_cipher != GNUTLS_CIPHER_CHACHA20_POLY1305 &&
	    vxhs_tls_gcm_name()) {
		assert_non_null(p->io[0]->tx.gcm);
		assert_non_null(p->io[0]->rx.gcm);
	} else {
		assert_null(p->io[0]->tx.gcm);
		assert_null(p->io[0]->rx.gcm);
	}
	for (size_t i = 0; i < len; i++)
		out[i] = (uint8_t)(i * 29 + (i >> 10));
	for (int way = 0; way < 2; way++) {
		int from = way, to = !way;

		for (size_t size = 1; size <= len; size = size * 5 + 3) {
			struct iovec iov[64], into[3];
			size_t done = 0, got = 0;
			int gerr = 0;

			while (done < size) {
				int n = pieces(out, size, done, iov, 64);
				ssize_t sent = vxhs_tls_sendv(
					p->s[from], p->io[from], iov, n, &gerr);

				assert_true(sent > 0);
				done += (size_t)sent;
			}
			while (got < size) {
				size_t left = size - got;
				ssize_t n;

				into[0] = (struct iovec){ in + got, left };
				if (left >= 3) {
					into[0].iov_len = left / 3;
					into[1] = (struct iovec){
						in + got + left / 3, 1
					};
					into[2] = (struct iovec){
						in + got + left / 3 + 1,
						left - left / 3 - 1
					};
				}
				n = vxhs_tls_recvv(p->s[to], p->io[to], into,
						   left >= 3 ? 3 : 1, &gerr);
				assert_true(n > 0);
				got += (size_t)n;
			}
			assert_memory_equal(in, out, size);
		}
	}
	free(out);
	free(in);
	teardown((void **)&p);
}

/*
 * The same with ChaCha20-Poly1305, which our records take too (AES-256-GCM
 * goes with SHA-384, which this test's SHA-256 key cannot).
 */
static void chacha_records_are_gnutls_records(void **state)
{
	pair_priority = TEST_PRIORITY ":-CIPHER-ALL:+CHACHA20-POLY1305";
	our_records_are_gnutls_records(state);
	assert_int_equal(pair_cipher, GNUTLS_CIPHER_CHACHA20_POLY1305);
}

/* The same with GnuTLS's AES-GCM, as on a host without ipsec-mb. */
static void gnutls_gcm_records_are_gnutls_records(void **state)
{
	vxhs_tls_gcm_off = true;
	our_records_are_gnutls_records(state);
	vxhs_tls_gcm_off = false;
}

/*
 * Many small buffers (a batch of write acknowledgements): a record takes
 * at most 64 of them and the next goes on from there; GnuTLS's peer reads
 * every byte in order.
 */
static void many_buffers_make_more_records(void **state)
{
	struct pair *p = pair_ours(false);
	uint8_t out[200][7], in[sizeof(out)];
	struct iovec iov[200];
	size_t got = 0;
	int gerr;

	(void)state;
	for (int i = 0; i < 200; i++) {
		memset(out[i], i, sizeof(out[i]));
		iov[i] = (struct iovec){ out[i], sizeof(out[i]) };
	}
	assert_int_equal(vxhs_tls_sendv(p->s[0], p->io[0], iov, 200, &gerr),
			 (ssize_t)sizeof(out));
	assert_int_equal(p->io[0]->nr_recs, 4);
	while (got < sizeof(in)) {
		ssize_t n = vxhs_tls_recv(p->s[1], p->io[1], in + got,
					  sizeof(in) - got, &gerr);

		assert_true(n > 0);
		got += (size_t)n;
	}
	assert_memory_equal(in, out, sizeof(out));
	teardown((void **)&p);
}

/*
 * What the server read past its handshake (a client's first requests) is
 * the first of the records it then reads itself.
 */
static void read_ahead_goes_to_our_records(void **state)
{
	static const char early[] = "the first requests";
	struct pair *p = pair_new(false, early, sizeof(early));
	char why[128], in[64];
	int gerr;

	(void)state;
	assert_true(p->io[1]->rx_end > p->io[1]->rx_start);
	assert_int_equal(
		vxhs_tls_user_start(p->s[1], p->io[1], why, sizeof(why)), 0);
	assert_true(vxhs_tls_has_pending(p->s[1], p->io[1]));
	assert_int_equal(vxhs_tls_recv(p->s[1], p->io[1], in, sizeof(in),
				       &gerr),
			 (ssize_t)sizeof(early));
	assert_string_equal(in, early);
	teardown((void **)&p);
}

/*
 * Once our key has protected its share, GnuTLS sends a KeyUpdate from our
 * sequence number on and we make the records with the next key: the peer
 * reads on without a break, which it could not without the update.
 */
static void our_key_is_updated(void **state)
{
	struct pair *p = pair_ours(false);
	uint8_t out[600], in[3 * sizeof(out)];
	struct iovec iov = { out, sizeof(out) };
	size_t got = 0;
	int gerr;

	(void)state;
	memset(out, 0x5a, sizeof(out));
	p->io[0]->tx.left = 1000;
	for (int i = 0; i < 3; i++)
		assert_int_equal(vxhs_tls_sendv(p->s[0], p->io[0], &iov, 1,
						&gerr),
				 (ssize_t)sizeof(out));
	/* Ours still, with a key that made one record since the update. */
	assert_true(p->io[0]->user_tx);
	assert_int_equal(p->io[0]->tx.seq, 1);
	assert_int_equal(p->io[0]->tx.left, VXHS_TLS_KEY_BYTES - sizeof(out));
	while (got < sizeof(in)) {
		ssize_t n = vxhs_tls_recv(p->s[1], p->io[1], in + got,
					  sizeof(in) - got, &gerr);

		assert_true(n > 0);
		got += (size_t)n;
	}
	for (size_t i = 0; i < sizeof(in); i++)
		assert_int_equal(in[i], 0x5a);
	teardown((void **)&p);
}

/* What side 0 reads after bytes written raw to the socket by side 1. */
static ssize_t read_after_raw(const void *raw, size_t len, char *why,
			      size_t whylen)
{
	struct pair *p = pair_ours(false);
	uint8_t in[64];
	int gerr;
	ssize_t ret;

	assert_int_equal(write(p->fd[1], raw, len), (ssize_t)len);
	ret = vxhs_tls_recv(p->s[0], p->io[0], in, sizeof(in), &gerr);
	snprintf(why, whylen, "%s", vxhs_tls_strerror(p->io[0], gerr));
	/* The stream stays stopped. */
	assert_int_equal(
		vxhs_tls_recv(p->s[0], p->io[0], in, sizeof(in), &gerr), ret);
	teardown((void **)&p);
	return ret;
}

/* A peer's bad record ends the stream with the reason. */
static void bad_records_are_refused(void **state)
{
	static const uint8_t handshake[] = { 22, 3, 3, 0, 40 };
	static const uint8_t old[] = { 23, 3, 1, 0, 40 };
	static const uint8_t huge[] = { 23, 3, 3, 0x41, 0x11 };
	static const uint8_t tiny[] = { 23, 3, 3, 0, 16 };
	uint8_t forged[5 + 40] = { 23, 3, 3, 0, 40 };
	char why[128];

	(void)state;
	assert_int_equal(read_after_raw(handshake, sizeof(handshake), why,
					sizeof(why)),
			 -EPROTO);
	assert_string_equal(why, "a record of type 22 after the handshake");
	assert_int_equal(read_after_raw(old, sizeof(old), why, sizeof(why)),
			 -EPROTO);
	assert_string_equal(why, "a record of version 3.1");
	assert_int_equal(read_after_raw(huge, sizeof(huge), why, sizeof(why)),
			 -EPROTO);
	assert_string_equal(why, "a record of 16657 bytes (record_overflow)");
	assert_int_equal(read_after_raw(tiny, sizeof(tiny), why, sizeof(why)),
			 -EPROTO);
	assert_string_equal(why, "a record of 16 bytes (record_overflow)");
	memset(forged + 5, 0x77, 40);
	assert_int_equal(read_after_raw(forged, sizeof(forged), why,
					sizeof(why)),
			 -EPROTO);
	assert_string_equal(why,
			    "a record that does not decrypt (bad_record_mac)");
}

/*
 * What GnuTLS's peer sends that is not data reaches the parser: a key
 * update ends the stream with the reason, a fatal alert with its name,
 * close_notify as an end of stream after the data before it.
 */
static void gnutls_control_records_reach_the_parser(void **state)
{
	static const char data[] = "before close_notify";
	struct pair *p = pair_ours(false);
	struct iovec iov = { (void *)data, sizeof(data) };
	char in[64];
	int gerr;

	(void)state;
	assert_int_equal(gnutls_session_key_update(p->s[1], 0), 0);
	assert_int_equal(vxhs_tls_recv(p->s[0], p->io[0], in, sizeof(in),
				       &gerr),
			 -EKEYEXPIRED);
	assert_non_null(
		strstr(vxhs_tls_strerror(p->io[0], gerr), "updated its keys"));
	teardown((void **)&p);

	p = pair_ours(false);
	assert_int_equal(gnutls_alert_send(p->s[1], GNUTLS_AL_FATAL,
					   GNUTLS_A_BAD_CERTIFICATE),
			 0);
	assert_int_equal(vxhs_tls_recv(p->s[0], p->io[0], in, sizeof(in),
				       &gerr),
			 -EPROTO);
	assert_int_equal(p->io[0]->ctl.alert, GNUTLS_A_BAD_CERTIFICATE);
	teardown((void **)&p);

	p = pair_ours(false);
	assert_int_equal(vxhs_tls_sendv(p->s[1], p->io[1], &iov, 1, &gerr),
			 (ssize_t)sizeof(data));
	assert_int_equal(gnutls_bye(p->s[1], GNUTLS_SHUT_WR), 0);
	assert_int_equal(vxhs_tls_recv(p->s[0], p->io[0], in, sizeof(in),
				       &gerr),
			 (ssize_t)sizeof(data));
	assert_false(vxhs_tls_drained(p->s[0], p->io[0]));
	assert_int_equal(
		vxhs_tls_recv(p->s[0], p->io[0], in, sizeof(in), &gerr), 0);
	teardown((void **)&p);
}

/* The tests of the record I/O that hold for our records too. */
#define OURS(f)                                                    \
	{                                                          \
#f " (our records)", f, setup_ours, teardown, NULL \
	}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(held_records_are_finished,
						setup, teardown),
		cmocka_unit_test_setup_teardown(sent_counted_before_peer_reads,
						setup, teardown),
		cmocka_unit_test_setup_teardown(read_ahead_is_pending, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			drained_only_when_nothing_is_left, setup, teardown),
		cmocka_unit_test_setup_teardown(peer_close_is_end_of_stream,
						setup, teardown),
		cmocka_unit_test_setup_teardown(send_to_closed_peer, setup,
						teardown),
		cmocka_unit_test_setup_teardown(kernel_key_continues_session,
						setup, teardown),
		cmocka_unit_test(kernel_key_refuses_others),
		cmocka_unit_test_setup_teardown(kernel_refusal_keeps_records,
						setup, teardown),
		cmocka_unit_test_setup_teardown(kernel_key_wears_out, setup,
						teardown),
		cmocka_unit_test(exact_handshake_leaves_records),
		cmocka_unit_test_setup_teardown(
			kernel_read_key_continues_session, setup, teardown),
		cmocka_unit_test_setup_teardown(
			kernel_read_refused_after_read_ahead, setup, teardown),
		cmocka_unit_test_setup_teardown(kernel_reads_into_every_buffer,
						setup, teardown),
		cmocka_unit_test(control_records_are_parsed),
		OURS(held_records_are_finished),
		OURS(sent_counted_before_peer_reads),
		OURS(read_ahead_is_pending),
		OURS(drained_only_when_nothing_is_left),
		OURS(peer_close_is_end_of_stream),
		OURS(send_to_closed_peer),
		cmocka_unit_test(our_records_are_gnutls_records),
		cmocka_unit_test(chacha_records_are_gnutls_records),
		cmocka_unit_test(gnutls_gcm_records_are_gnutls_records),
		cmocka_unit_test(many_buffers_make_more_records),
		cmocka_unit_test(read_ahead_goes_to_our_records),
		cmocka_unit_test(our_key_is_updated),
		cmocka_unit_test(bad_records_are_refused),
		cmocka_unit_test(gnutls_control_records_reach_the_parser),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
