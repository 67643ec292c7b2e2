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

/* ipsec-mb's entry points for one key size. */
struct gcm_ops {
	aes_gcm_pre_t pre;
	aes_gcm_init_t init;
	aes_gcm_enc_dec_update_t enc, dec;
	aes_gcm_enc_dec_finalize_t enc_tag, dec_tag;
};

struct vxhs_tls_gcm {
	struct gcm_key_data key; /* aligned for the AVX-512 loads: below */
	const struct gcm_ops *ops;
};

/* Set once (mgr_init), read only after: the code for this CPU. */
static const char *mgr_name;
static struct gcm_ops aes128, aes256;
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
	    arch >= IMB_ARCH_NUM || !names[arch])
		goto free_mgr;
	/* The manager only picks the code; the direct calls need no more. */
	aes128 = (struct gcm_ops){
		m->gcm128_pre,		m->gcm128_init,
		m->gcm128_enc_update,	m->gcm128_dec_update,
		m->gcm128_enc_finalize, m->gcm128_dec_finalize
	};
	aes256 = (struct gcm_ops){
		m->gcm256_pre,		m->gcm256_init,
		m->gcm256_enc_update,	m->gcm256_dec_update,
		m->gcm256_enc_finalize, m->gcm256_dec_finalize
	};
	mgr_name = names[arch];
free_mgr:
	free_mb_mgr(m);
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
	g->ops = len == 32 ? &aes256 : &aes128;
	g->ops->pre(key, &g->key);
	return g;
}

void vxhs_tls_gcm_free(struct vxhs_tls_gcm *g)
{
	if (!g)
		return;
	gnutls_memset(g, 0, sizeof(*g));
	free(g);
}

void vxhs_tls_gcm_seal(const struct vxhs_tls_gcm *g, const uint8_t *nonce,
		       const uint8_t *ad, size_t adlen, const struct iovec *in,
		       int n, uint8_t *out, uint8_t *tag)
{
	struct gcm_context_data c;

	g->ops->init(&g->key, &c, nonce, ad, adlen);
	for (int i = 0; i < n; i++) {
		g->ops->enc(&g->key, &c, out, in[i].iov_base, in[i].iov_len);
		out += in[i].iov_len;
	}
	g->ops->enc_tag(&g->key, &c, tag, VXHS_TLS_TAG);
}

bool vxhs_tls_gcm_open(const struct vxhs_tls_gcm *g, const uint8_t *nonce,
		       const uint8_t *ad, size_t adlen, uint8_t *text,
		       size_t len, const uint8_t *tag)
{
	struct gcm_context_data c;
	uint8_t want[VXHS_TLS_TAG], diff = 0;

	g->ops->init(&g->key, &c, nonce, ad, adlen);
	g->ops->dec(&g->key, &c, text, text, len);
	g->ops->dec_tag(&g->key, &c, want, sizeof(want));
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
