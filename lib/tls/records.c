// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * TLS 1.3 record protection in user space, for when the kernel does not
 * make the records (kernel.c). GnuTLS still runs the handshake, derives
 * the keys and, unless Intel's ipsec-mb does AES-GCM faster (gcm.c),
 * the cipher; here we only frame records (RFC 8446, 5.2 and 5.3) with
 * the keys GnuTLS hands over, as the kernel would.
 * What that removes: GnuTLS's allocation of each record and its copy
 * into it, our gather before and copy after; on receiving, two reads per
 * record and the copy through GnuTLS's buffer.
 *
 * Only TLS 1.3 AEAD ciphers with a 12-byte IV: anything else keeps
 * GnuTLS's records.
 */
#include <errno.h>
#include <gnutls/crypto.h>
#include <stdio.h>
#include <string.h>

#include "tls/tls.h"

#define REC_DATA 23
#define TAG_SIZE VXHS_TLS_TAG

int vxhs_tls_aead_init(struct vxhs_tls_aead *a, gnutls_session_t session,
		       bool rx, char *why, size_t whylen)
{
	gnutls_protocol_t v = gnutls_protocol_get_version(session);
	gnutls_cipher_algorithm_t cipher = gnutls_cipher_get(session);
	gnutls_datum_t key, iv;
	uint8_t seq[8];
	int ret;

	a->hd = NULL;
	a->gcm = NULL;
	if (v != GNUTLS_TLS1_3)
		return vxhs_tls_fail(why, whylen, -ENOTSUP, "%s",
				     gnutls_protocol_get_name(v));
	if (cipher != GNUTLS_CIPHER_AES_128_GCM &&
	    cipher != GNUTLS_CIPHER_AES_256_GCM &&
	    cipher != GNUTLS_CIPHER_CHACHA20_POLY1305)
		return vxhs_tls_fail(why, whylen, -ENOTSUP, "cipher %s",
				     gnutls_cipher_get_name(cipher));
	ret = gnutls_record_get_state(session, rx, NULL, &iv, &key, seq);
	if (ret < 0)
		return vxhs_tls_fail(why, whylen, -EINVAL, "%s",
				     gnutls_strerror(ret));
	if (iv.size != sizeof(a->iv))
		return vxhs_tls_fail(why, whylen, -ENOTSUP, "an IV of %u bytes",
				     iv.size);
	if (cipher != GNUTLS_CIPHER_CHACHA20_POLY1305) {
		a->gcm = vxhs_tls_gcm_new(key.data, key.size);
		if (!a->gcm && errno != ENOTSUP)
			return vxhs_tls_fail(why, whylen, -ENOMEM,
					     "no memory for a key");
	}
	ret = a->gcm ? 0 : gnutls_aead_cipher_init(&a->hd, cipher, &key);
	if (ret < 0) {
		a->hd = NULL;
		return vxhs_tls_fail(why, whylen, -ENOMEM, "%s",
				     gnutls_strerror(ret));
	}
	memcpy(a->iv, iv.data, sizeof(a->iv));
	a->seq = 0;
	for (int i = 0; i < 8; i++)
		a->seq = a->seq << 8 | seq[i];
	a->left = VXHS_TLS_KEY_BYTES;
	return 0;
}

void vxhs_tls_aead_deinit(struct vxhs_tls_aead *a)
{
	if (a->hd)
		gnutls_aead_cipher_deinit(a->hd);
	vxhs_tls_gcm_free(a->gcm);
	a->hd = NULL;
	a->gcm = NULL;
	gnutls_memset(a->iv, 0, sizeof(a->iv));
}

/* RFC 8446, 5.3: the IV with the sequence number xored into its end. */
static void nonce(const struct vxhs_tls_aead *a, uint8_t out[12])
{
	memcpy(out, a->iv, 12);
	for (int i = 0; i < 8; i++)
		out[11 - i] ^= (uint8_t)(a->seq >> (8 * i));
}

/*
 * The most buffers one record is encrypted from: a record of many small
 * messages (a batch of write acknowledgements) ends early instead.
 */
#define SEAL_PARTS 64

ssize_t vxhs_tls_seal(struct vxhs_tls_aead *a, const struct iovec *iov, int n,
		      size_t skip, uint8_t *rec)
{
	static const uint8_t type = REC_DATA;
	giovec_t parts[SEAL_PARTS + 1];
	giovec_t ad = { rec, VXHS_TLS_HEADER };
	size_t len = 0, clen;
	uint8_t nc[12];
	int cnt = 0, i = 0;

	while (i < n && skip >= iov[i].iov_len)
		skip -= iov[i++].iov_len;
	for (; i < n && cnt < SEAL_PARTS && len < VXHS_TLS_RECORD_MAX;
	     i++, skip = 0) {
		size_t take = iov[i].iov_len - skip;

		if (take > VXHS_TLS_RECORD_MAX - len)
			take = VXHS_TLS_RECORD_MAX - len;
		parts[cnt].iov_base = (uint8_t *)iov[i].iov_base + skip;
		parts[cnt++].iov_len = take;
		len += take;
	}
	if (!len)
		return 0;
	/* The content type follows the data, inside the encryption. */
	parts[cnt].iov_base = (void *)&type;
	parts[cnt++].iov_len = 1;
	clen = len + VXHS_TLS_SEALED_EXTRA;
	rec[0] = REC_DATA;
	rec[1] = 3;
	rec[2] = 3;
	rec[3] = (uint8_t)(clen >> 8);
	rec[4] = (uint8_t)clen;
	nonce(a, nc);
	if (a->gcm)
		vxhs_tls_gcm_seal(a->gcm, nc, rec, VXHS_TLS_HEADER, parts, cnt,
				  rec + VXHS_TLS_HEADER,
				  rec + VXHS_TLS_HEADER + len + 1);
	else if (gnutls_aead_cipher_encryptv(a->hd, nc, sizeof(nc), &ad, 1,
					     TAG_SIZE, parts, cnt,
					     rec + VXHS_TLS_HEADER, &clen) < 0)
		return -1;
	a->seq++;
	a->left -= len < a->left ? len : a->left;
	return (ssize_t)len;
}

int vxhs_tls_open(struct vxhs_tls_aead *a, uint8_t *rec, size_t *len,
		  uint8_t *type, char *why, size_t whylen)
{
	size_t body = (size_t)rec[3] << 8 | rec[4];
	giovec_t ad = { rec, VXHS_TLS_HEADER };
	giovec_t text = { rec + VXHS_TLS_HEADER, body - TAG_SIZE };
	uint8_t *tag = rec + VXHS_TLS_HEADER + body - TAG_SIZE;
	uint8_t n[12];
	size_t end;
	bool ok;

	nonce(a, n);
	if (a->gcm)
		ok = vxhs_tls_gcm_open(a->gcm, n, rec, VXHS_TLS_HEADER,
				       text.iov_base, text.iov_len, tag);
	else
		ok = gnutls_aead_cipher_decryptv2(a->hd, n, sizeof(n), &ad, 1,
						  &text, 1, tag, TAG_SIZE) >= 0;
	if (!ok)
		return vxhs_tls_fail(why, whylen, -EPROTO,
				     "a record that does not decrypt "
				     "(bad_record_mac)");
	a->seq++;
	/* The content type is the last byte that is not padding. */
	end = body - TAG_SIZE;
	while (end && !rec[VXHS_TLS_HEADER + end - 1])
		end--;
	if (!end)
		return vxhs_tls_fail(why, whylen, -EPROTO,
				     "a record of padding only");
	*type = rec[VXHS_TLS_HEADER + end - 1];
	*len = end - 1;
	if (*len > VXHS_TLS_RECORD_MAX)
		return vxhs_tls_fail(why, whylen, -EPROTO,
				     "a record of %zu bytes (record_overflow)",
				     *len);
	return 0;
}

/*
 * A record header as it arrives: the outer type and version of every
 * TLS 1.3 record after the handshake, and a length RFC 8446, 5.2 allows.
 * Returns the record's whole size, or -EPROTO with the reason in why.
 */
ssize_t vxhs_tls_record_size(const uint8_t *hdr, char *why, size_t whylen)
{
	size_t body = (size_t)hdr[3] << 8 | hdr[4];

	if (hdr[0] != REC_DATA)
		return vxhs_tls_fail(why, whylen, -EPROTO,
				     "a record of type %u after the handshake",
				     (unsigned int)hdr[0]);
	if (hdr[1] != 3 || hdr[2] != 3)
		return vxhs_tls_fail(why, whylen, -EPROTO,
				     "a record of version %u.%u",
				     (unsigned int)hdr[1],
				     (unsigned int)hdr[2]);
	if (body < TAG_SIZE + 1 ||
	    VXHS_TLS_HEADER + body > VXHS_TLS_RECORD_WIRE_MAX)
		return vxhs_tls_fail(why, whylen, -EPROTO,
				     "a record of %zu bytes (record_overflow)",
				     body);
	return (ssize_t)(VXHS_TLS_HEADER + body);
}

int vxhs_tls_user_start(gnutls_session_t session, struct vxhs_tls_io *io,
			char *why, size_t whylen)
{
	int ret;

	/* Our sequence numbers start where GnuTLS's stop: nothing of its
	 * may be left to send, or to hand over. */
	if (!io->kernel_tx &&
	    (vxhs_tls_send_held(io) || gnutls_record_check_corked(session)))
		return vxhs_tls_fail(why, whylen, -EBUSY,
				     "records still unsent");
	if (!io->kernel_rx && gnutls_record_check_pending(session) > 0)
		return vxhs_tls_fail(why, whylen, -EBUSY,
				     "data already decrypted");
	if (!io->kernel_tx) {
		ret = vxhs_tls_aead_init(&io->tx, session, false, why, whylen);
		if (ret)
			return ret;
	}
	if (!io->kernel_rx) {
		ret = vxhs_tls_aead_init(&io->rx, session, true, why, whylen);
		if (ret)
			goto deinit_tx;
	}
	io->user_tx = !io->kernel_tx;
	io->user_rx = !io->kernel_rx;
	/* What was read past the handshake is the first records'. */
	io->rx_plain = io->rx_plain_end = 0;
	return 0;

deinit_tx:
	vxhs_tls_aead_deinit(&io->tx);
	return ret;
}

int vxhs_tls_records_start(gnutls_session_t session, struct vxhs_tls_io *io,
			   bool kernel, const char *us, char *how,
			   size_t howlen)
{
	char kwhy[256] = "", uwhy[256];
	int kret = 0, uret;

	if (kernel)
		kret = vxhs_tls_kernel_start(session, io, kwhy, sizeof(kwhy));
	if (kernel && !kret) {
		snprintf(how, howlen, "records made and read by the kernel");
		return 0;
	}
	uret = vxhs_tls_user_start(session, io, uwhy, sizeof(uwhy));
	if (kret > 0)
		snprintf(how, howlen,
			 "records made by the kernel, read by %s: %s",
			 uret ? "GnuTLS" : us, kwhy);
	else if (uret)
		snprintf(how, howlen, "records made and read by GnuTLS: %s",
			 uwhy);
	else if (kret < 0)
		snprintf(how, howlen, "records made by %s, not the kernel: %s",
			 us, kwhy);
	else
		snprintf(how, howlen, "records made and read by %s", us);
	/* Which AES-GCM: it decides what TLS costs on this host. */
	if (!uret && (io->tx.gcm || io->rx.gcm)) {
		size_t len = strlen(how);

		snprintf(how + len, howlen - len, "; AES-GCM by ipsec-mb %s",
			 vxhs_tls_gcm_name());
	}
	return kret;
}
