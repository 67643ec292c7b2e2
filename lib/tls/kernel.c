// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * Kernel TLS. After GnuTLS's handshake the kernel takes the write key and
 * sequence number and makes the records itself, encrypting while it copies
 * into the socket: no record layer in user space, no copy into it, one
 * system call for any number of records. It can take the read key as well
 * and decrypt while it copies to the reader, straight into the caller's
 * buffers; what a peer may send after the handshake that is not data
 * (session tickets, alerts) then comes to us to parse (control.c).
 *
 * Only TLS 1.3 with AES-GCM, what our peers and OpenSSL's negotiate: the
 * only combination the tests run. Anything else, or a kernel without the
 * "tls" upper layer, keeps GnuTLS's records.
 */
#include <errno.h>
#include <linux/tls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "tls/tls.h"

union ktls_info {
	struct tls_crypto_info base;
	struct tls12_crypto_info_aes_gcm_128 aes128;
	struct tls12_crypto_info_aes_gcm_256 aes256;
};

/* The AES-GCM structures differ only in the key's size. */
#define FILL_GCM(c, key, iv, seq)                                              \
	do {                                                                   \
		memcpy((c).salt, (iv)->data, sizeof((c).salt));                \
		memcpy((c).iv, (iv)->data + sizeof((c).salt), sizeof((c).iv)); \
		memcpy((c).key, (key)->data, sizeof((c).key));                 \
		memcpy((c).rec_seq, (seq), sizeof((c).rec_seq));               \
	} while (0)

/*
 * Fills what the kernel needs from GnuTLS's write state: TLS 1.3's
 * 12-byte IV is the kernel's 4-byte salt then its 8-byte IV. Returns the
 * size of the structure, or 0 with the reason in why.
 */
size_t vxhs_tls_kernel_info(gnutls_cipher_algorithm_t cipher,
			    const gnutls_datum_t *key, const gnutls_datum_t *iv,
			    const uint8_t seq[8], void *out, size_t outlen,
			    char *why, size_t whylen)
{
	union ktls_info info = { .base.version = TLS_1_3_VERSION };
	size_t size;

	if (iv->size !=
	    TLS_CIPHER_AES_GCM_128_SALT_SIZE + TLS_CIPHER_AES_GCM_128_IV_SIZE) {
		snprintf(why, whylen, "an IV of %u bytes", iv->size);
		return 0;
	}
	if (cipher == GNUTLS_CIPHER_AES_128_GCM &&
	    key->size == TLS_CIPHER_AES_GCM_128_KEY_SIZE) {
		info.base.cipher_type = TLS_CIPHER_AES_GCM_128;
		FILL_GCM(info.aes128, key, iv, seq);
		size = sizeof(info.aes128);
	} else if (cipher == GNUTLS_CIPHER_AES_256_GCM &&
		   key->size == TLS_CIPHER_AES_GCM_256_KEY_SIZE) {
		info.base.cipher_type = TLS_CIPHER_AES_GCM_256;
		FILL_GCM(info.aes256, key, iv, seq);
		size = sizeof(info.aes256);
	} else {
		snprintf(why, whylen, "cipher %s",
			 gnutls_cipher_get_name(cipher));
		return 0;
	}
	if (outlen < size) {
		snprintf(why, whylen, "no room for the key");
		size = 0;
	} else {
		memcpy(out, &info, size);
	}
	gnutls_memset(&info, 0, sizeof(info));
	return size;
}

/* The kernel takes TLS 1.3 only here; why names what the session has. */
static bool tls13(gnutls_session_t session, char *why, size_t whylen)
{
	gnutls_protocol_t v = gnutls_protocol_get_version(session);

	if (v == GNUTLS_TLS1_3)
		return true;
	snprintf(why, whylen, "%s", gnutls_protocol_get_name(v));
	return false;
}

size_t vxhs_tls_kernel_state(gnutls_session_t session, bool rx, void *out,
			     size_t outlen, char *why, size_t whylen)
{
	gnutls_datum_t key, iv;
	uint8_t seq[8];
	int ret;

	if (!tls13(session, why, whylen))
		return 0;
	ret = gnutls_record_get_state(session, rx, NULL, &iv, &key, seq);
	if (ret < 0) {
		snprintf(why, whylen, "%s", gnutls_strerror(ret));
		return 0;
	}
	return vxhs_tls_kernel_info(gnutls_cipher_get(session), &key, &iv, seq,
				    out, outlen, why, whylen);
}

/* Hands one direction's key to the socket's TLS layer. */
static int hand_over(gnutls_session_t session, struct vxhs_tls_io *io, bool rx,
		     char *why, size_t whylen)
{
	union ktls_info info;
	size_t len;
	int ret = 0;

	len = vxhs_tls_kernel_state(session, rx, &info, sizeof(info), why,
				    whylen);
	if (!len)
		return -ENOTSUP;
	if (setsockopt(io->fd, SOL_TLS, rx ? TLS_RX : TLS_TX, &info,
		       (socklen_t)len) < 0) {
		ret = -errno;
		snprintf(why, whylen, "%s: %s", rx ? "TLS_RX" : "TLS_TX",
			 strerror(-ret));
	}
	gnutls_memset(&info, 0, sizeof(info));
	return ret;
}

int vxhs_tls_kernel_tx(gnutls_session_t session, struct vxhs_tls_io *io,
		       char *why, size_t whylen)
{
	int ret;

	if (!tls13(session, why, whylen))
		return -ENOTSUP;
	/* Nothing of GnuTLS's may still wait to be sent: the kernel's
	 * sequence numbers start where GnuTLS's stop. */
	if (vxhs_tls_send_held(io) || gnutls_record_check_corked(session)) {
		snprintf(why, whylen, "records still unsent");
		return -EBUSY;
	}
	if (setsockopt(io->fd, IPPROTO_TCP, TCP_ULP, "tls", sizeof("tls")) <
	    0) {
		ret = -errno;
		if (ret == -ENOENT)
			snprintf(why, whylen, "the kernel has no TLS module");
		else if (ret == -ENOTCONN)
			snprintf(why, whylen, "the peer already closed");
		else
			snprintf(why, whylen, "TCP_ULP: %s", strerror(-ret));
		return ret;
	}
	/* Without a key the upper layer sends as TCP does: GnuTLS's
	 * records go on as before. */
	ret = hand_over(session, io, false, why, whylen);
	if (ret)
		return ret;
	io->kernel_tx = true;
	io->kernel_key_left = VXHS_TLS_KEY_BYTES;
	return 0;
}

int vxhs_tls_kernel_rx(gnutls_session_t session, struct vxhs_tls_io *io,
		       char *why, size_t whylen)
{
	int ret;

	if (!io->kernel_tx) {
		snprintf(why, whylen, "the kernel does not send either");
		return -ENOTSUP;
	}
	/* The kernel reads from the socket on: a record GnuTLS or our
	 * read-ahead already took would be lost to it. */
	if (vxhs_tls_has_pending(session, io)) {
		snprintf(why, whylen, "records already read");
		return -EBUSY;
	}
	ret = hand_over(session, io, true, why, whylen);
	if (ret)
		return ret;
	io->kernel_rx = true;
	return 0;
}

int vxhs_tls_kernel_start(gnutls_session_t session, struct vxhs_tls_io *io,
			  char *why, size_t whylen)
{
	int ret;

	io->exact_reads = false;
	ret = vxhs_tls_kernel_tx(session, io, why, whylen);
	if (ret)
		return ret;
	return vxhs_tls_kernel_rx(session, io, why, whylen) ? 1 : 0;
}
