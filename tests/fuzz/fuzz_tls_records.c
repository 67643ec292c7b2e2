// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * The TLS 1.3 records the client and vxhsd read themselves (lib/tls/
 * records.c and stream.c), from a peer that sends anything. The input is
 * a list of chunks: raw bytes for the socket, or a record sealed with the
 * session's key around inner content the input chooses (any content type,
 * padding or none, any length), so that what lies past the tag check is
 * reached too. Every read must end in data, the end of the stream or an
 * error, within the buffers given.
 */
#include <errno.h>
#include <gnutls/crypto.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz.h"
#include "tls/tls.h"

static const uint8_t key_bytes[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9 };
static const uint8_t iv_bytes[12] = { 9, 8, 7, 6, 5, 4, 3, 2, 1 };
/* Ciphertext a test sends at most: a few dozen records. */
#define STREAM_MAX (160 * 1024)

static gnutls_session_t session;
static gnutls_aead_cipher_hd_t sealer;
static uint8_t stream[STREAM_MAX];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	gnutls_datum_t key = { (uint8_t *)key_bytes, sizeof(key_bytes) };

	(void)argc;
	(void)argv;
	if (gnutls_init(&session, GNUTLS_CLIENT) < 0 ||
	    gnutls_aead_cipher_init(&sealer, GNUTLS_CIPHER_AES_128_GCM, &key) <
		    0)
		fuzz_fail("the GnuTLS session or the sealing key");
	return 0;
}

/* A record around inner (content, type, padding) as a peer would seal it. */
static size_t seal(uint64_t seq, const uint8_t *inner, size_t len, uint8_t *out)
{
	size_t clen = len + 16;
	uint8_t nonce[12];

	memcpy(nonce, iv_bytes, sizeof(nonce));
	for (int i = 0; i < 8; i++)
		nonce[11 - i] ^= (uint8_t)(seq >> (8 * i));
	out[0] = 23;
	out[1] = 3;
	out[2] = 3;
	out[3] = (uint8_t)(clen >> 8);
	out[4] = (uint8_t)clen;
	if (gnutls_aead_cipher_encrypt(sealer, nonce, sizeof(nonce), out, 5, 16,
				       inner, len, out + 5, &clen) < 0)
		fuzz_fail("sealing a record");
	return 5 + clen;
}

/* The stream the input describes: chunks of kind, 2-byte length, bytes. */
static size_t make_stream(const uint8_t *data, size_t size)
{
	size_t at = 0;
	uint64_t seq = 0;

	while (size >= 3) {
		size_t len = (size_t)data[1] | (size_t)data[2] << 8;
		bool sealed = data[0] & 1;

		data += 3;
		size -= 3;
		if (len > size)
			len = size;
		if (at + len + 5 + 16 > sizeof(stream))
			break;
		if (sealed && len <= 0xffff - 16)
			at += seal(seq++, data, len, stream + at);
		else {
			memcpy(stream + at, data, len);
			at += len;
		}
		data += len;
		size -= len;
	}
	return at;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	gnutls_datum_t key = { (uint8_t *)key_bytes, sizeof(key_bytes) };
	static uint8_t small[700], large[70000];
	struct vxhs_tls_io *io;
	size_t len;
	int fd[2];

	if (size < 1)
		return 0;
	len = make_stream(data + 1, size - 1);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fd) < 0)
		fuzz_fail_sys("socketpair");
	io = vxhs_tls_io_new(session, fd[1]);
	if (!io)
		fuzz_fail("vxhs_tls_io_new: out of memory");
	io->ctl.server = data[0] & 1;
	if (gnutls_aead_cipher_init(&io->rx.hd, GNUTLS_CIPHER_AES_128_GCM,
				    &key) < 0)
		fuzz_fail("the opening key");
	memcpy(io->rx.iv, iv_bytes, sizeof(iv_bytes));
	io->rx.seq = 0;
	io->rx.left = VXHS_TLS_KEY_BYTES;
	io->user_rx = true;
	for (size_t off = 0, stuck = 0; off < len && stuck < 2;) {
		ssize_t n = write(fd[0], stream + off, len - off);

		/* A reader that stopped leaves the socket full. */
		if (n > 0) {
			off += (size_t)n;
			stuck = 0;
		} else {
			stuck++;
		}
		/* Read as the socket fills, as a network thread would. */
		for (int i = 0; i < 64; i++) {
			struct iovec iov[2] = { { small, sizeof(small) },
						{ large, sizeof(large) } };
			int gerr;
			ssize_t got = vxhs_tls_recvv(
				session, io, iov, data[0] & 2 ? 2 : 1, &gerr);

			if (got > (ssize_t)(sizeof(small) + sizeof(large)))
				fuzz_fail("a read longer than the buffers");
			if (got <= 0 && !(got == -EAGAIN &&
					  vxhs_tls_has_pending(session, io)))
				break;
		}
	}
	close(fd[0]);
	for (int i = 0; i < 1024; i++) {
		uint8_t buf[4096];
		int gerr;
		ssize_t got =
			vxhs_tls_recv(session, io, buf, sizeof(buf), &gerr);

		if (got > (ssize_t)sizeof(buf))
			fuzz_fail("a read longer than the buffer");
		/* The end: 0, or an error with its reason. */
		if (got == 0 || (got < 0 && got != -EAGAIN))
			break;
		/* A caller would now wait for the socket: it must wake, since
		 * the peer has gone and its close is there to read. */
		if (got == -EAGAIN && !vxhs_tls_has_pending(session, io) &&
		    poll(&(struct pollfd){ .fd = fd[1], .events = POLLIN }, 1,
			 1000) != 1)
			fuzz_fail("EAGAIN, nothing pending, and a socket that "
				  "never wakes");
	}
	vxhs_tls_io_free(io);
	close(fd[1]);
	return 0;
}
