// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * tls-speed: what TLS costs on this machine apart from the network. It
 * measures AES-128-GCM alone on full records, as the records we make use
 * it (ipsec-mb's where lib/tls/gcm.c has it, else GnuTLS's), then a TLS 1.3
 * session (the same cipher) sending and receiving full records through
 * memory: the record layer as a whole, less one copy of each record (the
 * copy a socket makes for plaintext as well). The TLS benchmark turns both
 * into bounds on what TLS can reach against plaintext when both ends share
 * the CPUs.
 *
 *   tls-speed [SECONDS]
 *
 * prints "encrypt_mibps=N decrypt_mibps=N send_mibps=N recv_mibps=N
 * aes_gcm=WHOSE" (ipsec-mb-AVX512, say, or GnuTLS).
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
/* Records between clock reads: keeps the clock out of the figures. */
#define BATCH 64
/* Room for a batch of records on their way from one session to the other. */
#define PIPE_SIZE (2 * BATCH * VXHS_TLS_RECORD_ROOM)

/* The record pair's cipher and version, made certain below. */
#define RECORD_PRIORITY \
	"NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+AES-128-GCM:+ECDHE-PSK"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double mibps(double bytes, double secs)
{
	return secs > 0 ? bytes / secs / (1 << 20) : 0;
}

/*
 * A step less the copy a socket would make anyway. Where the copy timed
 * longer than half the step (an instrumented memcpy, under a sanitizer),
 * the estimate is worthless: the step is reported whole.
 */
static double less_copy(double step, double copy)
{
	return copy < step / 2 ? step - copy : step;
}

/* One direction of the in-memory transport between the two sessions. */
struct mem_pipe {
	unsigned char *buf;
	size_t start, end;
};

static ssize_t pipe_push(gnutls_transport_ptr_t ptr, const void *data,
			 size_t len)
{
	struct mem_pipe *p = ptr;

	if (p->start == p->end)
		p->start = p->end = 0;
	if (len > PIPE_SIZE - p->end) {
		errno = EAGAIN;
		return -1;
	}
	memcpy(p->buf + p->end, data, len);
	p->end += len;
	return (ssize_t)len;
}

static ssize_t pipe_pull(gnutls_transport_ptr_t ptr, void *data, size_t len)
{
	struct mem_pipe *p = ptr;
	size_t have = p->end - p->start;

	if (!have) {
		errno = EAGAIN;
		return -1;
	}
	if (have > len)
		have = len;
	memcpy(data, p->buf + p->start, have);
	p->start += have;
	return (ssize_t)have;
}

static int psk_lookup(gnutls_session_t session, const char *user,
		      gnutls_datum_t *key)
{
	(void)session;
	(void)user;
	key->data = gnutls_malloc(16);
	if (!key->data)
		return -1;
	memset(key->data, 0x42, 16);
	key->size = 16;
	return 0;
}

/* A client and a server session joined by two pipes, handshake done. */
struct record_pair {
	gnutls_session_t client, server;
	gnutls_psk_client_credentials_t client_cred;
	gnutls_psk_server_credentials_t server_cred;
	struct mem_pipe to_server, to_client;
};

static int session_setup(gnutls_session_t *s, unsigned int flags,
			 struct mem_pipe *in, struct mem_pipe *out)
{
	int ret = gnutls_init(s, flags | GNUTLS_NONBLOCK | GNUTLS_NO_TICKETS);

	if (ret < 0)
		return ret;
	gnutls_transport_set_ptr2(*s, in, out);
	gnutls_transport_set_push_function(*s, pipe_push);
	gnutls_transport_set_pull_function(*s, pipe_pull);
	return gnutls_priority_set_direct(*s, RECORD_PRIORITY, NULL);
}

static int pair_handshake(struct record_pair *rp)
{
	bool client_done = false, server_done = false;

	/* each side's flight needs the other's: a few turns suffice */
	for (int turn = 0; turn < 20 && !(client_done && server_done); turn++) {
		int ret;

		if (!client_done) {
			ret = gnutls_handshake(rp->client);
			if (ret < 0 && gnutls_error_is_fatal(ret))
				return ret;
			client_done = !ret;
		}
		if (!server_done) {
			ret = gnutls_handshake(rp->server);
			if (ret < 0 && gnutls_error_is_fatal(ret))
				return ret;
			server_done = !ret;
		}
	}
	return client_done && server_done ? 0 : GNUTLS_E_AGAIN;
}

static void pair_free(struct record_pair *rp)
{
	if (rp->client)
		gnutls_deinit(rp->client);
	if (rp->server)
		gnutls_deinit(rp->server);
	if (rp->client_cred)
		gnutls_psk_free_client_credentials(rp->client_cred);
	if (rp->server_cred)
		gnutls_psk_free_server_credentials(rp->server_cred);
	free(rp->to_server.buf);
	free(rp->to_client.buf);
}

static int pair_open(struct record_pair *rp)
{
	unsigned char key_bytes[16];
	gnutls_datum_t key = { key_bytes, sizeof(key_bytes) };
	int ret;

	memset(rp, 0, sizeof(*rp));
	memset(key_bytes, 0x42, sizeof(key_bytes));
	rp->to_server.buf = malloc(PIPE_SIZE);
	rp->to_client.buf = malloc(PIPE_SIZE);
	if (!rp->to_server.buf || !rp->to_client.buf) {
		ret = GNUTLS_E_MEMORY_ERROR;
		goto err_free_pair;
	}
	ret = gnutls_psk_allocate_client_credentials(&rp->client_cred);
	if (ret < 0)
		goto err_free_pair;
	ret = gnutls_psk_set_client_credentials(rp->client_cred, "bench", &key,
						GNUTLS_PSK_KEY_RAW);
	if (ret < 0)
		goto err_free_pair;
	ret = gnutls_psk_allocate_server_credentials(&rp->server_cred);
	if (ret < 0)
		goto err_free_pair;
	gnutls_psk_set_server_credentials_function(rp->server_cred, psk_lookup);
	ret = session_setup(&rp->client, GNUTLS_CLIENT, &rp->to_client,
			    &rp->to_server);
	if (ret < 0)
		goto err_free_pair;
	ret = session_setup(&rp->server, GNUTLS_SERVER, &rp->to_server,
			    &rp->to_client);
	if (ret < 0)
		goto err_free_pair;
	ret = gnutls_credentials_set(rp->client, GNUTLS_CRD_PSK,
				     rp->client_cred);
	if (!ret)
		ret = gnutls_credentials_set(rp->server, GNUTLS_CRD_PSK,
					     rp->server_cred);
	if (!ret)
		ret = pair_handshake(rp);
	if (ret < 0)
		goto err_free_pair;
	return 0;

err_free_pair:
	pair_free(rp);
	return ret;
}

/* Receives exactly len bytes of records already in the client's pipe. */
static int recv_all(gnutls_session_t s, unsigned char *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t ret = gnutls_record_recv(s, buf, VXHS_TLS_RECORD_MAX);

		if (ret <= 0)
			return ret ? (int)ret : GNUTLS_E_PREMATURE_TERMINATION;
		got += (size_t)ret;
	}
	return 0;
}

/* Seconds spent in each step, summed over the rounds. */
struct timings {
	double encrypt, decrypt, send, recv, copy;
	unsigned long records;
};

/* ipsec-mb's AES-GCM with the same key, when our records use it. */
static struct vxhs_tls_gcm *gcm;

/* A batch of full records through the cipher alone, both ways. */
static int cipher_round(gnutls_aead_cipher_hd_t h, const unsigned char *plain,
			const unsigned char *sealed, struct timings *t)
{
	static unsigned char in_place[BATCH][VXHS_TLS_RECORD_MAX + TAG_SIZE];
	unsigned char iv[IV_SIZE] = { 0 };
	unsigned char aad[5] = { 0x17, 0x03, 0x03, 0, 0 };
	unsigned char out[VXHS_TLS_RECORD_MAX + TAG_SIZE];
	struct iovec iov = { (void *)plain, VXHS_TLS_RECORD_MAX };
	double t0, t1;
	int ret = 0;

	/* ipsec-mb opens in place, as records.c does: fresh copies each. */
	for (int i = 0; gcm && i < BATCH; i++)
		memcpy(in_place[i], sealed, sizeof(in_place[i]));
	t0 = now_s();
	for (int i = 0; i < BATCH && !ret; i++) {
		size_t len = sizeof(out);

		if (gcm)
			vxhs_tls_gcm_seal(gcm, iv, aad, sizeof(aad), &iov, 1,
					  out, out + VXHS_TLS_RECORD_MAX);
		else
			ret = gnutls_aead_cipher_encrypt(
				h, iv, sizeof(iv), aad, sizeof(aad), TAG_SIZE,
				plain, VXHS_TLS_RECORD_MAX, out, &len);
	}
	t1 = now_s();
	for (int i = 0; i < BATCH && !ret; i++) {
		size_t len = sizeof(out);

		if (gcm)
			ret = vxhs_tls_gcm_open(
				      gcm, iv, aad, sizeof(aad), in_place[i],
				      VXHS_TLS_RECORD_MAX,
				      in_place[i] + VXHS_TLS_RECORD_MAX) ?
				      0 :
				      GNUTLS_E_DECRYPTION_FAILED;
		else
			ret = gnutls_aead_cipher_decrypt(
				h, iv, sizeof(iv), aad, sizeof(aad), TAG_SIZE,
				sealed, VXHS_TLS_RECORD_MAX + TAG_SIZE, out,
				&len);
	}
	t->encrypt += t1 - t0;
	t->decrypt += now_s() - t1;
	return ret;
}

/*
 * The server sends a batch of full records, the client receives them, and
 * the bytes they took through the pipe are copied once more to time the
 * copy each pipe end makes: a socket copies plaintext as well, so that copy
 * is taken off each direction.
 */
static int record_round(struct record_pair *rp, const unsigned char *plain,
			unsigned char *scratch, struct timings *t)
{
	double t0 = now_s(), t1, t2;
	size_t sealed;
	int ret;

	for (int i = 0; i < BATCH; i++) {
		ssize_t sent = gnutls_record_send(rp->server, plain,
						  VXHS_TLS_RECORD_MAX);

		if (sent != VXHS_TLS_RECORD_MAX)
			return sent < 0 ? (int)sent : GNUTLS_E_AGAIN;
	}
	t1 = now_s();
	sealed = rp->to_client.end - rp->to_client.start;
	ret = recv_all(rp->client, scratch, BATCH * VXHS_TLS_RECORD_MAX);
	if (ret < 0)
		return ret;
	t2 = now_s();
	memcpy(scratch, rp->to_client.buf, sealed);
	t->copy += now_s() - t2;
	t->send += t1 - t0;
	t->recv += t2 - t1;
	t->records += BATCH;
	return 0;
}

/* Alternates the two kinds of round, so that both see the same machine. */
static int measure(double secs, struct timings *t)
{
	static unsigned char plain[VXHS_TLS_RECORD_MAX];
	static unsigned char sealed[VXHS_TLS_RECORD_MAX + TAG_SIZE];
	static unsigned char scratch[PIPE_SIZE];
	unsigned char key_bytes[16] = { 0 }, iv[IV_SIZE] = { 0 };
	unsigned char aad[5] = { 0x17, 0x03, 0x03, 0, 0 };
	gnutls_datum_t key = { key_bytes, sizeof(key_bytes) };
	gnutls_aead_cipher_hd_t h;
	struct record_pair rp;
	size_t len = sizeof(sealed);
	const char *step = "AES-128-GCM";
	double start;
	int ret;

	memset(t, 0, sizeof(*t));
	memset(plain, 0x5a, sizeof(plain));
	ret = gnutls_aead_cipher_init(&h, GNUTLS_CIPHER_AES_128_GCM, &key);
	if (ret < 0)
		goto out;
	/* a real sealed record, so that decryption checks a valid tag */
	ret = gnutls_aead_cipher_encrypt(h, iv, sizeof(iv), aad, sizeof(aad),
					 TAG_SIZE, plain, sizeof(plain), sealed,
					 &len);
	if (ret < 0)
		goto out_deinit_cipher;
	gcm = vxhs_tls_gcm_new(key_bytes, sizeof(key_bytes));
	step = "TLS 1.3 session in memory";
	ret = pair_open(&rp);
	if (ret < 0)
		goto out_deinit_cipher;
	/* the figures are for what vxhs negotiates first, nothing else */
	if (gnutls_protocol_get_version(rp.server) != GNUTLS_TLS1_3 ||
	    gnutls_cipher_get(rp.server) != GNUTLS_CIPHER_AES_128_GCM) {
		char *desc = gnutls_session_get_desc(rp.server);

		fprintf(stderr,
			"tls-speed: the session in memory negotiated "
			"%s, not TLS 1.3 with AES-128-GCM\n",
			desc ? desc : "something else");
		gnutls_free(desc);
		ret = 1;
		goto out_free_pair;
	}
	start = now_s();
	do {
		step = "AES-128-GCM";
		ret = cipher_round(h, plain, sealed, t);
		if (!ret) {
			step = "TLS 1.3 records";
			ret = record_round(&rp, plain, scratch, t);
		}
	} while (!ret && now_s() - start < secs);
out_free_pair:
	pair_free(&rp);
out_deinit_cipher:
	vxhs_tls_gcm_free(gcm);
	gnutls_aead_cipher_deinit(h);
out:
	if (ret < 0)
		fprintf(stderr, "tls-speed: %s: %s\n", step,
			gnutls_strerror(ret));
	return ret ? -1 : 0;
}

int main(int argc, char **argv)
{
	double secs = 1.0, bytes;
	struct timings t;
	char *end;

	if (argc == 2) {
		errno = 0;
		secs = strtod(argv[1], &end);
		if (errno || *end)
			secs = -1;
	}
	if (argc > 2 || !(secs > 0) || secs > 60) {
		fprintf(stderr, "usage: tls-speed [SECONDS]: more than 0, "
				"at most 60\n");
		return 2;
	}
	if (measure(secs, &t))
		return 1;
	bytes = (double)t.records * VXHS_TLS_RECORD_MAX;
	printf("encrypt_mibps=%.0f decrypt_mibps=%.0f send_mibps=%.0f "
	       "recv_mibps=%.0f aes_gcm=%s%s\n",
	       mibps(bytes, t.encrypt), mibps(bytes, t.decrypt),
	       mibps(bytes, less_copy(t.send, t.copy)),
	       mibps(bytes, less_copy(t.recv, t.copy)),
	       vxhs_tls_gcm_name() ? "ipsec-mb-" : "GnuTLS",
	       vxhs_tls_gcm_name() ? vxhs_tls_gcm_name() : "");
	return 0;
}
