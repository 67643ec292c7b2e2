// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * AES-GCM for the records we make and read ourselves (records.c), from
 * Intel's ipsec-mb when the build has it. GnuTLS 3.7's AES-GCM does not
 * use VAES and VPCLMULQDQ; on a CPU that has them, ipsec-mb seals a 4 KiB
 * record in a third of the time, and the cipher is most of what TLS adds
 * to vxhsd's network thread. Its SSE and AVX2 code is still a little
 * faster than GnuTLS's, so it is used on any CPU with AES-NI; without
 * that, or in a build without ipsec-mb, GnuTLS's cipher stays.
 *
 * Only the cipher comes from here: keys, nonces and record framing are
 * records.c's, and the keys still come from GnuTLS's handshake.
 */
#include <errno.h>
#include <gnutls/gnutls.h>
#include <stdlib.h>

#include "tls/tls.h"

bool vxhs_tls_gcm_off;

#ifdef VXHS_HAVE_IPSEC_MB
#include <intel-ipsec-mb.h>
#include <pthread.h>

struct vxhs_tls_gcm {
	struct gcm_key_data key; /* aligned for the AVX-512 loads: below */
	bool aes256;
};

/* Read only once set up: the direct GCM calls keep no state in it. */
static IMB_MGR *mgr;
static const char *mgr_name;
static pthread_once_t mgr_once = PTHREAD_ONCE_INIT;

static void mgr_init(void)
{
	static const char *const names[IMB_ARCH_NUM] = {
		[IMB_ARCH_SSE] = "SSE",
		[IMB_ARCH_AVX] = "AVX",
		[IMB_ARCH_AVX2] = "AVX2",
		[IMB_ARCH_AVX512] = "AVX512",
	};
	IMB_ARCH arch = IMB_ARCH_NONE;
	IMB_MGR *m = alloc_mb_mgr(0);

	if (!m)
		return;
	init_mb_mgr_auto(m, &arch);
	if (imb_get_errno(m) || arch <= IMB_ARCH_NOAESNI ||
	    arch >= IMB_ARCH_NUM || !names[arch]) {
		free_mb_mgr(m);
		return;
	}
	mgr_name = names[arch];
	mgr = m;
}

const char *vxhs_tls_gcm_name(void)
{
	pthread_once(&mgr_once, mgr_init);
	return vxhs_tls_gcm_off ? NULL : mgr_name;
}

struct vxhs_tls_gcm *vxhs_tls_gcm_new(const uint8_t *key, size_t len)
{
	struct vxhs_tls_gcm *g;

	if (!vxhs_tls_gcm_name() || (len != 16 && len != 32)) {
		errno = ENOTSUP;
		return NULL;
	}
	/* Not aligned_alloc: C11 wants the size a multiple of 64 there. */
	if (posix_memalign((void **)&g, 64, sizeof(*g))) {
		errno = ENOMEM;
		return NULL;
	}
	g->aes256 = len == 32;
	if (g->aes256)
		IMB_AES256_GCM_PRE(mgr, key, &g->key);
	else
		IMB_AES128_GCM_PRE(mgr, key, &g->key);
	return g;
}

void vxhs_tls_gcm_free(struct vxhs_tls_gcm *g)
{
	if (!g)
		return;
	gnutls_memset(g, 0, sizeof(*g));
	free(g);
}

static void gcm_start(const struct vxhs_tls_gcm *g, struct gcm_context_data *c,
		      const uint8_t *nonce, const uint8_t *ad, size_t adlen)
{
	if (g->aes256)
		IMB_AES256_GCM_INIT(mgr, &g->key, c, nonce, ad, adlen);
	else
		IMB_AES128_GCM_INIT(mgr, &g->key, c, nonce, ad, adlen);
}

void vxhs_tls_gcm_seal(const struct vxhs_tls_gcm *g, const uint8_t *nonce,
		       const uint8_t *ad, size_t adlen, const struct iovec *in,
		       int n, uint8_t *out, uint8_t *tag)
{
	struct gcm_context_data c;

	gcm_start(g, &c, nonce, ad, adlen);
	for (int i = 0; i < n; i++) {
		if (g->aes256)
			IMB_AES256_GCM_ENC_UPDATE(mgr, &g->key, &c, out,
						  in[i].iov_base,
						  in[i].iov_len);
		else
			IMB_AES128_GCM_ENC_UPDATE(mgr, &g->key, &c, out,
						  in[i].iov_base,
						  in[i].iov_len);
		out += in[i].iov_len;
	}
	if (g->aes256)
		IMB_AES256_GCM_ENC_FINALIZE(mgr, &g->key, &c, tag,
					    VXHS_TLS_TAG);
	else
		IMB_AES128_GCM_ENC_FINALIZE(mgr, &g->key, &c, tag,
					    VXHS_TLS_TAG);
}

bool vxhs_tls_gcm_open(const struct vxhs_tls_gcm *g, const uint8_t *nonce,
		       const uint8_t *ad, size_t adlen, uint8_t *text,
		       size_t len, const uint8_t *tag)
{
	struct gcm_context_data c;
	uint8_t want[VXHS_TLS_TAG], diff = 0;

	gcm_start(g, &c, nonce, ad, adlen);
	if (g->aes256) {
		IMB_AES256_GCM_DEC_UPDATE(mgr, &g->key, &c, text, text, len);
		IMB_AES256_GCM_DEC_FINALIZE(mgr, &g->key, &c, want,
					    sizeof(want));
	} else {
		IMB_AES128_GCM_DEC_UPDATE(mgr, &g->key, &c, text, text, len);
		IMB_AES128_GCM_DEC_FINALIZE(mgr, &g->key, &c, want,
					    sizeof(want));
	}
	/* In constant time: how much of a forged tag matched stays hidden. */
	for (size_t i = 0; i < sizeof(want); i++)
		diff |= want[i] ^ tag[i];
	return !diff;
}

#else /* !VXHS_HAVE_IPSEC_MB */

const char *vxhs_tls_gcm_name(void)
{
	return NULL;
}

struct vxhs_tls_gcm *vxhs_tls_gcm_new(const uint8_t *key, size_t len)
{
	(void)key;
	(void)len;
	errno = ENOTSUP;
	return NULL;
}

void vxhs_tls_gcm_free(struct vxhs_tls_gcm *g)
{
	(void)g;
}

void vxhs_tls_gcm_seal(const struct vxhs_tls_gcm *g, const uint8_t *nonce,
		       const uint8_t *ad, size_t adlen, const struct iovec *in,
		       int n, uint8_t *out, uint8_t *tag)
{
	(void)g, (void)nonce, (void)ad, (void)adlen;
	(void)in, (void)n, (void)out, (void)tag;
}

bool vxhs_tls_gcm_open(const struct vxhs_tls_gcm *g, const uint8_t *nonce,
		       const uint8_t *ad, size_t adlen, uint8_t *text,
		       size_t len, const uint8_t *tag)
{
	(void)g, (void)nonce, (void)ad, (void)adlen;
	(void)text, (void)len, (void)tag;
	return false;
}

#endif
