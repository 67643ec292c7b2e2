// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * lib/tls/gcm.c, AES-GCM by Intel's ipsec-mb, against GnuTLS's AES-GCM:
 * the same ciphertext and tag for both key sizes, data of every length
 * around the cipher's block and stride sizes cut into uneven pieces, and
 * in-place opening that refuses a changed tag, ciphertext or header.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tls/tls.h"

#define MAX_LEN 5000

/* Lengths where a block, a 4- or 16-block stride or a record ends. */
static const size_t lengths[] = { 0,	1,    15,   16,	  17,	63,
				  64,	65,   255,  256,  257,	1023,
				  1024, 1025, 4095, 4096, 4097, 4999 };

static void fill(uint8_t *buf, size_t len, unsigned int seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(i * 131 + seed + (i >> 8));
}

/*
 * Cuts len bytes of buf into up to 5 pieces of uneven sizes (some empty),
 * as vxhs_tls_seal hands over a message's header, payload and type byte.
 */
static int cut(uint8_t *buf, size_t len, unsigned int seed, struct iovec *iov)
{
	static const size_t sizes[] = { 3, 0, 16, 1, 100, 4096 };
	size_t off = 0;
	int n = 0;

	while (off < len && n < 4) {
		size_t take = sizes[(seed + (unsigned int)n) % 6];

		if (take > len - off)
			take = len - off;
		iov[n++] = (struct iovec){ buf + off, take };
		off += take;
	}
	iov[n++] = (struct iovec){ buf + off, len - off };
	return n;
}

static void same_as_gnutls(size_t keylen)
{
	gnutls_cipher_algorithm_t alg = keylen == 16 ?
						GNUTLS_CIPHER_AES_128_GCM :
						GNUTLS_CIPHER_AES_256_GCM;
	uint8_t key[32], nonce[12], ad[VXHS_TLS_HEADER] = { 23, 3, 3, 1, 2 };
	static uint8_t plain[MAX_LEN], ours[MAX_LEN + VXHS_TLS_TAG];
	static uint8_t theirs[MAX_LEN + VXHS_TLS_TAG];
	gnutls_datum_t k = { key, (unsigned int)keylen };
	gnutls_aead_cipher_hd_t hd;
	struct vxhs_tls_gcm *g;

	fill(key, sizeof(key), (unsigned int)keylen);
	g = vxhs_tls_gcm_new(key, keylen);
	assert_non_null(g);
	assert_int_equal(gnutls_aead_cipher_init(&hd, alg, &k), 0);
	for (size_t i = 0; i < sizeof(lengths) / sizeof(lengths[0]); i++) {
		size_t len = lengths[i], tlen = sizeof(theirs);
		struct iovec iov[5];
		int n;

		fill(plain, len, (unsigned int)i);
		fill(nonce, sizeof(nonce), (unsigned int)i * 7);
		n = cut(plain, len, (unsigned int)i, iov);
		vxhs_tls_gcm_seal(g, nonce, ad, sizeof(ad), iov, n, ours,
				  ours + len);
		assert_int_equal(
			gnutls_aead_cipher_encrypt(hd, nonce, sizeof(nonce), ad,
						   sizeof(ad), VXHS_TLS_TAG,
						   plain, len, theirs, &tlen),
			0);
		assert_int_equal(tlen, len + VXHS_TLS_TAG);
		assert_memory_equal(ours, theirs, tlen);

		/* GnuTLS's record opens in place with ours. */
		assert_true(vxhs_tls_gcm_open(g, nonce, ad, sizeof(ad), theirs,
					      len, theirs + len));
		assert_memory_equal(theirs, plain, len);
	}
	gnutls_aead_cipher_deinit(hd);
	vxhs_tls_gcm_free(g);
}

static void aes128_is_gnutls_aes128(void **state)
{
	(void)state;
	same_as_gnutls(16);
}

static void aes256_is_gnutls_aes256(void **state)
{
	(void)state;
	same_as_gnutls(32);
}

/* A flipped bit in the tag, the ciphertext or the header is refused. */
static void changed_records_do_not_open(void **state)
{
	uint8_t key[16] = { 5 }, nonce[12] = { 9 };
	uint8_t ad[VXHS_TLS_HEADER] = { 23, 3, 3, 0, 77 };
	uint8_t plain[60], rec[60 + VXHS_TLS_TAG], copy[sizeof(rec)];
	struct iovec iov = { plain, sizeof(plain) };
	struct vxhs_tls_gcm *g = vxhs_tls_gcm_new(key, sizeof(key));

	(void)state;
	assert_non_null(g);
	fill(plain, sizeof(plain), 3);
	vxhs_tls_gcm_seal(g, nonce, ad, sizeof(ad), &iov, 1, rec,
			  rec + sizeof(plain));
	for (size_t bit = 0; bit < 8 * sizeof(rec); bit += 37) {
		memcpy(copy, rec, sizeof(rec));
		copy[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		assert_false(vxhs_tls_gcm_open(g, nonce, ad, sizeof(ad), copy,
					       sizeof(plain),
					       copy + sizeof(plain)));
	}
	ad[4] ^= 1;
	memcpy(copy, rec, sizeof(rec));
	assert_false(vxhs_tls_gcm_open(g, nonce, ad, sizeof(ad), copy,
				       sizeof(plain), copy + sizeof(plain)));
	ad[4] ^= 1;
	memcpy(copy, rec, sizeof(rec));
	assert_true(vxhs_tls_gcm_open(g, nonce, ad, sizeof(ad), copy,
				      sizeof(plain), copy + sizeof(plain)));
	assert_memory_equal(copy, plain, sizeof(plain));
	vxhs_tls_gcm_free(g);
}

/* Key sizes other than AES's 128 and 256 bits are not taken. */
static void other_keys_are_refused(void **state)
{
	uint8_t key[32] = { 0 };

	(void)state;
	assert_null(vxhs_tls_gcm_new(key, 24));
	assert_int_equal(errno, ENOTSUP);
	vxhs_tls_gcm_off = true;
	assert_null(vxhs_tls_gcm_new(key, 16));
	assert_null(vxhs_tls_gcm_name());
	vxhs_tls_gcm_off = false;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(aes128_is_gnutls_aes128),
		cmocka_unit_test(aes256_is_gnutls_aes256),
		cmocka_unit_test(changed_records_do_not_open),
		cmocka_unit_test(other_keys_are_refused),
	};

	/* A build with ipsec-mb on a CPU with AES-NI must use it. */
	if (!vxhs_tls_gcm_name()) {
		fprintf(stderr,
			"test_tls_gcm: this build%s has no ipsec-mb "
			"AES-GCM; nothing to test\n",
#ifdef VXHS_HAVE_IPSEC_MB
			" (with ipsec-mb) or this CPU"
#else
			""
#endif
		);
#ifdef VXHS_HAVE_IPSEC_MB
		if (__builtin_cpu_supports("aes") &&
		    __builtin_cpu_supports("pclmul"))
			return 1;
#endif
		return 77;
	}
	fprintf(stderr, "test_tls_gcm: ipsec-mb %s\n", vxhs_tls_gcm_name());
	return cmocka_run_group_tests(tests, NULL, NULL);
}
