// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * cipher-speed: how fast GnuTLS encrypts and decrypts full TLS records with
 * AES-128-GCM on this machine (the cipher vxhs negotiates first). The TLS
 * benchmark uses it to tell what the cipher alone costs each I/O, which
 * bounds what TLS can reach against plaintext when both ends share the CPUs.
 *
 *   cipher-speed [SECONDS]     prints "encrypt_mibps=N decrypt_mibps=N"
 */
#include <errno.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tls/tls.h"

#define TAG_SIZE 16
#define IV_SIZE	 12

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Runs one direction for about secs seconds; MiB/s of plaintext. */
static int measure(gnutls_aead_cipher_hd_t h, bool enc, unsigned char *plain,
		   unsigned char *sealed, double secs, double *mibps)
{
	unsigned char iv[IV_SIZE] = { 0 };
	unsigned char aad[5] = { 0x17, 0x03, 0x03, 0, 0 };
	unsigned char out[VXHS_TLS_RECORD_MAX + TAG_SIZE];
	double start = now_s(), elapsed;
	unsigned long n = 0;

	do {
		/* 64 records between clock reads keep the clock out of it */
		for (int i = 0; i < 64; i++, n++) {
			size_t len = sizeof(out);
			int ret;

			if (enc)
				ret = gnutls_aead_cipher_encrypt(
					h, iv, sizeof(iv), aad, sizeof(aad),
					TAG_SIZE, plain, VXHS_TLS_RECORD_MAX,
					out, &len);
			else
				ret = gnutls_aead_cipher_decrypt(
					h, iv, sizeof(iv), aad, sizeof(aad),
					TAG_SIZE, sealed,
					VXHS_TLS_RECORD_MAX + TAG_SIZE, out,
					&len);
			if (ret < 0) {
				fprintf(stderr, "cipher-speed: %s: %s\n",
					enc ? "encrypt" : "decrypt",
					gnutls_strerror(ret));
				return -1;
			}
		}
		elapsed = now_s() - start;
	} while (elapsed < secs);
	*mibps = (double)n * VXHS_TLS_RECORD_MAX / elapsed / (1 << 20);
	return 0;
}

int main(int argc, char **argv)
{
	static unsigned char plain[VXHS_TLS_RECORD_MAX];
	static unsigned char sealed[VXHS_TLS_RECORD_MAX + TAG_SIZE];
	unsigned char key_bytes[16] = { 0 }, iv[IV_SIZE] = { 0 };
	unsigned char aad[5] = { 0x17, 0x03, 0x03, 0, 0 };
	gnutls_datum_t key = { key_bytes, sizeof(key_bytes) };
	gnutls_aead_cipher_hd_t h;
	double secs = 1.0, enc, dec;
	size_t len = sizeof(sealed);
	char *end;
	int ret;

	if (argc == 2) {
		errno = 0;
		secs = strtod(argv[1], &end);
		if (errno || *end)
			secs = -1;
	}
	if (argc > 2 || !(secs > 0) || secs > 60) {
		fprintf(stderr, "usage: cipher-speed [SECONDS]: more than 0, "
				"at most 60\n");
		return 2;
	}
	memset(plain, 0x5a, sizeof(plain));
	ret = gnutls_aead_cipher_init(&h, GNUTLS_CIPHER_AES_128_GCM, &key);
	if (ret < 0) {
		fprintf(stderr, "cipher-speed: AES-128-GCM: %s\n",
			gnutls_strerror(ret));
		return 1;
	}
	/* a real sealed record, so that decryption checks a valid tag */
	ret = gnutls_aead_cipher_encrypt(h, iv, sizeof(iv), aad, sizeof(aad),
					 TAG_SIZE, plain, sizeof(plain), sealed,
					 &len);
	if (ret < 0 || measure(h, true, plain, sealed, secs / 2, &enc) ||
	    measure(h, false, plain, sealed, secs / 2, &dec)) {
		if (ret < 0)
			fprintf(stderr, "cipher-speed: %s\n",
				gnutls_strerror(ret));
		gnutls_aead_cipher_deinit(h);
		return 1;
	}
	gnutls_aead_cipher_deinit(h);
	printf("encrypt_mibps=%.0f decrypt_mibps=%.0f\n", enc, dec);
	return 0;
}
