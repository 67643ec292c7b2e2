/* SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later */
/*
 * TLS shared by the client library and vxhsd: credentials from one
 * directory holding the CA that signs the peers (ca.pem, optional crl.pem),
 * our certificate chain (cert.pem) and its private key (key.pem); and
 * non-blocking record I/O over a session.
 */
#ifndef VXHS_TLS_H
#define VXHS_TLS_H

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

/* Older C libraries lack it; the kernel's value. */
#ifndef SOL_TLS
#define SOL_TLS 282
#endif

#define VXHS_TLS_CA   "ca.pem"
#define VXHS_TLS_CRL  "crl.pem"
#define VXHS_TLS_CERT "cert.pem"
#define VXHS_TLS_KEY  "key.pem"

/*
 * TLS 1.3, and 1.2 for older peers; nothing below. Forward secrecy (no
 * static RSA key exchange) and AEAD ciphers only, AES-128-GCM first: the cipher
 * is most of what TLS costs a storage link, and AES-128 takes 10 rounds a block
 * to AES-256's 14.
 */
#define VXHS_TLS_PRIORITY                                              \
	"NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-RSA:-CIPHER-ALL:" \
	"+AES-128-GCM:+AES-256-GCM:+CHACHA20-POLY1305:+AES-128-CCM:"   \
	"+AES-256-CCM"

/*
 * Loads the credentials in dir. Refuses a key that others may read, and a
 * certificate of our own that is expired or not yet valid. Returns 0, or a
 * negative errno with a message naming the file and the problem in err.
 */
int vxhs_tls_creds_load(const char *dir, gnutls_certificate_credentials_t *out,
			char *err, size_t errlen);

/* Formats the reason for a failure into err; returns ret. */
int vxhs_tls_fail(char *err, size_t len, int ret, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/*
 * Why the peer's certificate was refused, for a session whose handshake
 * failed: "certificate expired", "signed by an unknown CA", ...
 */
void vxhs_tls_describe_failure(gnutls_session_t session, int gnutls_err,
			       char *buf, size_t len);

/* The largest TLS record payload, and a record's header. */
#define VXHS_TLS_RECORD_MAX (16 * 1024)
#define VXHS_TLS_HEADER	    5
/* What follows the data in a TLS 1.3 record: its content type, the tag. */
#define VXHS_TLS_TAG	      16
#define VXHS_TLS_SEALED_EXTRA (1 + VXHS_TLS_TAG)
/* Records sent with one system call; each takes at most this much room. */
#define VXHS_TLS_SEND_RECORDS 4
#define VXHS_TLS_RECORD_ROOM  (VXHS_TLS_RECORD_MAX + 256)
/* The largest record RFC 8446, 5.2 lets a peer send, header included. */
#define VXHS_TLS_RECORD_WIRE_MAX (VXHS_TLS_HEADER + VXHS_TLS_RECORD_MAX + 256)
/*
 * Ciphertext read past the record GnuTLS asked for (see stream.c), or the
 * records we read ourselves (records.c): one read takes several.
 */
#define VXHS_TLS_READ_AHEAD (4 * VXHS_TLS_RECORD_ROOM)

/*
 * What one AES-GCM key may encrypt: 2^24 full records (RFC 8446, 5.5,
 * allows 2^24.5; GnuTLS updates its keys after 2^24 records).
 */
#define VXHS_TLS_KEY_BYTES ((uint64_t)VXHS_TLS_RECORD_MAX << 24)

/*
 * One direction of a TLS 1.3 session whose records we make or read
 * ourselves (records.c), with the key GnuTLS's handshake agreed.
 */
struct vxhs_tls_aead {
	gnutls_aead_cipher_hd_t hd;
	struct vxhs_tls_gcm *gcm; /* AES-GCM not by GnuTLS (gcm.c), or NULL */
	uint8_t iv[12];
	uint64_t seq;  /* the next record's sequence number */
	uint64_t left; /* plaintext bytes the key may still protect */
};

/*
 * What the kernel hands over of records that are not application data,
 * once it decrypts what a session receives: handshake messages (split
 * across records as the peer likes) and alerts, parsed as they come.
 */
struct vxhs_tls_ctl {
	bool server;	   /* our end is the server: no tickets come */
	uint8_t type;	   /* the record type being parsed, 0 if none */
	uint8_t hdr[4];	   /* a handshake message's header, or an alert */
	unsigned int have; /* bytes of hdr received */
	uint32_t skip;	   /* bytes of a message's body still to skip */
	int alert;	   /* a fatal alert's description, else -1 */
};

/*
 * The socket under one session, and the buffers of its record I/O. One
 * thread receives and one at a time sends, as with GnuTLS itself.
 */
struct vxhs_tls_io {
	int fd;
	bool kernel_tx; /* the kernel makes the records we send */
	bool kernel_rx; /* the kernel reads the records we receive */
	bool user_tx;	/* we make them, with tx (records.c) */
	bool user_rx;	/* we read them, with rx */
	struct vxhs_tls_aead tx, rx;
	/* No read-ahead: the handshake must leave every byte after it in
	 * the socket, for the kernel to decrypt. */
	bool exact_reads;
	struct vxhs_tls_ctl ctl; /* vxhs_tls_io_new sets it up */
	char why[128]; /* what was wrong with a record the kernel read */
	/* Bytes the kernel's key may still encrypt (below). */
	uint64_t kernel_key_left;
	bool tx_gather; /* records go to tx_out, not the socket */
	/* Each record in tx_out: where it ends, the plaintext it carries;
	 * those before rec_next are already reported to the caller. */
	size_t rec_end[VXHS_TLS_SEND_RECORDS];
	size_t rec_plain[VXHS_TLS_SEND_RECORDS];
	unsigned int nr_recs, rec_next;
	size_t tx_start; /* tx_out bytes already sent... */
	size_t tx_end;	 /* ...and written */
	size_t rx_start; /* read-ahead not yet handed to GnuTLS, or */
	size_t rx_end;	 /* records not yet opened (user_rx) */
	/* With user_rx, the opened record's data not yet handed over. */
	size_t rx_plain, rx_plain_end;
	bool rx_dry; /* the last socket read took all the socket had */
	/* user_rx: after what is left, the stream ended (1: close_notify)
	 * or failed (a negative errno, the reason in why). */
	int rx_stop;
	uint8_t rx_ahead[VXHS_TLS_READ_AHEAD];
	uint8_t tx_stage[VXHS_TLS_RECORD_MAX];
	uint8_t tx_out[VXHS_TLS_SEND_RECORDS * VXHS_TLS_RECORD_ROOM];
};

/*
 * Makes session send and receive on fd through a new vxhs_tls_io (freed
 * with vxhs_tls_io_free after gnutls_deinit). NULL when out of memory.
 */
struct vxhs_tls_io *vxhs_tls_io_new(gnutls_session_t session, int fd);
void vxhs_tls_io_free(struct vxhs_tls_io *io);

/*
 * Decrypted or received bytes that no socket event will announce: the
 * caller must read again before waiting.
 */
bool vxhs_tls_has_pending(gnutls_session_t session,
			  const struct vxhs_tls_io *io);

/*
 * Nothing received is held back here, and the last socket read took all
 * the socket had: what arrives later, the socket announces. With
 * level-triggered epoll the caller may wait for the next event instead of
 * reading once more only to be told EAGAIN.
 */
bool vxhs_tls_drained(gnutls_session_t session, const struct vxhs_tls_io *io);

/* Records made but not all sent yet: the next vxhs_tls_sendv sends them. */
static inline bool vxhs_tls_send_held(const struct vxhs_tls_io *io)
{
	return io->tx_end > io->tx_start;
}

/*
 * Sends what iov holds as up to VXHS_TLS_SEND_RECORDS records, in one
 * system call when the socket takes them. Returns the plaintext bytes of
 * the records that have gone to the socket whole (as soon as they have:
 * the peer may act on them, and answer, before the rest is sent), -EAGAIN
 * when none has, the socket's negative errno, or -EPIPE with the GnuTLS
 * code in *gerr (else 0). Records not yet sent stay held, and the next
 * call sends them first whatever iov says: the caller advances by what it
 * is told and passes the rest again. With the kernel's records, the bytes
 * the socket took, or -EKEYEXPIRED once its key has carried
 * VXHS_TLS_KEY_BYTES: the kernel cannot take a new key, so the session
 * ends and its client reconnects, with a new one.
 */
ssize_t vxhs_tls_sendv(gnutls_session_t session, struct vxhs_tls_io *io,
		       const struct iovec *iov, int n, int *gerr);

/*
 * Hands what session sends to the kernel's TLS (see kernel.c): right
 * after the handshake, before any data. Returns 0, or a negative errno
 * with the reason in why (no TLS in the kernel, TLS 1.2, another cipher):
 * the session then goes on with GnuTLS's records.
 */
int vxhs_tls_kernel_tx(gnutls_session_t session, struct vxhs_tls_io *io,
		       char *why, size_t whylen);

/*
 * The kernel's crypto_info for a TLS 1.3 write state, into out: its
 * size, or 0 with the reason in why. Apart for its unit test.
 */
size_t vxhs_tls_kernel_info(gnutls_cipher_algorithm_t cipher,
			    const gnutls_datum_t *key, const gnutls_datum_t *iv,
			    const uint8_t seq[8], void *out, size_t outlen,
			    char *why, size_t whylen);

/*
 * Hands both directions of session to the kernel's TLS, right after the
 * handshake, which ran with exact_reads set. Returns 0 (both), 1 (sending
 * only: why says why not receiving), or a negative errno (neither: GnuTLS
 * makes and reads the records, why says why).
 */
int vxhs_tls_kernel_start(gnutls_session_t session, struct vxhs_tls_io *io,
			  char *why, size_t whylen);

/*
 * Hands what session receives to the kernel's TLS as well, after
 * vxhs_tls_kernel_tx succeeded and with nothing received since the
 * handshake (exact_reads set before it). Returns 0, or a negative errno
 * with the reason in why: GnuTLS then goes on reading the records.
 */
int vxhs_tls_kernel_rx(gnutls_session_t session, struct vxhs_tls_io *io,
		       char *why, size_t whylen);

/*
 * The kernel's crypto_info for the session's write (rx false) or read
 * state, into out: its size, or 0 with the reason in why.
 */
size_t vxhs_tls_kernel_state(gnutls_session_t session, bool rx, void *out,
			     size_t outlen, char *why, size_t whylen);

/*
 * Makes and reads the records of session ourselves from now on (records.c),
 * in each direction the kernel does not: right after the handshake, with
 * nothing received that GnuTLS has not handed over. Returns 0, or a
 * negative errno with the reason in why (TLS 1.2, a cipher without a
 * 12-byte nonce): GnuTLS then goes on with the records.
 */
int vxhs_tls_user_start(gnutls_session_t session, struct vxhs_tls_io *io,
			char *why, size_t whylen);

/*
 * Who makes and reads session's records from now on, right after its
 * handshake: the kernel when asked (kernel) and able, else us (records.c,
 * named us in how), else GnuTLS. Says so in how ("records made and read
 * by the kernel", "records made by vxhsd, not the kernel: why", ...).
 * Returns 0, or, when the kernel was asked, its refusal: 1 (it sends
 * only) or a negative errno.
 */
int vxhs_tls_records_start(gnutls_session_t session, struct vxhs_tls_io *io,
			   bool kernel, const char *us, char *how,
			   size_t howlen);

/* One direction's key and sequence number, from GnuTLS's state. */
int vxhs_tls_aead_init(struct vxhs_tls_aead *a, gnutls_session_t session,
		       bool rx, char *why, size_t whylen);
void vxhs_tls_aead_deinit(struct vxhs_tls_aead *a);

/*
 * AES-GCM by Intel's ipsec-mb (gcm.c): the name of the code it runs on
 * this CPU ("AVX512"), or NULL when the build or the CPU has none, and
 * GnuTLS's cipher is used. vxhs_tls_gcm_off (tests) keeps GnuTLS's.
 */
extern bool vxhs_tls_gcm_off;
const char *vxhs_tls_gcm_name(void);
/* An expanded 16- or 32-byte key, or NULL (errno ENOTSUP: use GnuTLS). */
struct vxhs_tls_gcm *vxhs_tls_gcm_new(const uint8_t *key, size_t len);
void vxhs_tls_gcm_free(struct vxhs_tls_gcm *g);
/* Encrypts n buffers of in into out, one after the other. */
void vxhs_tls_gcm_seal(const struct vxhs_tls_gcm *g, const uint8_t *nonce,
		       const uint8_t *ad, size_t adlen, const struct iovec *in,
		       int n, uint8_t *out, uint8_t *tag);
/* Decrypts text in place; false if tag does not verify. */
bool vxhs_tls_gcm_open(const struct vxhs_tls_gcm *g, const uint8_t *nonce,
		       const uint8_t *ad, size_t adlen, uint8_t *text,
		       size_t len, const uint8_t *tag);

/*
 * Makes one record at rec (VXHS_TLS_RECORD_ROOM bytes) of up to
 * VXHS_TLS_RECORD_MAX bytes of iov, from skip bytes into it, encrypted
 * straight from there. Returns the bytes of iov it carries (the record
 * is that plus VXHS_TLS_HEADER and VXHS_TLS_SEALED_EXTRA), 0 when iov
 * has none left, or -1 if the cipher failed.
 */
ssize_t vxhs_tls_seal(struct vxhs_tls_aead *a, const struct iovec *iov, int n,
		      size_t skip, uint8_t *rec);

/*
 * Opens the whole record at rec in place: its inner content type in type,
 * its data's size in len (at rec + VXHS_TLS_HEADER). Returns 0 or -EPROTO
 * with the reason in why.
 */
int vxhs_tls_open(struct vxhs_tls_aead *a, uint8_t *rec, size_t *len,
		  uint8_t *type, char *why, size_t whylen);

/*
 * The size of the record whose header is at hdr, or -EPROTO with the
 * reason in why (not a TLS 1.3 record, or longer than RFC 8446 allows).
 */
ssize_t vxhs_tls_record_size(const uint8_t *hdr, char *why, size_t whylen);

/*
 * Feeds n bytes of a record of the given type that is not application
 * data (or, with n 0, announces application data). Returns 0 (session
 * tickets from a server, which are ignored), 1 (close_notify: the stream
 * ends), -EKEYEXPIRED (the peer updated its keys, which Linux 6.1 cannot
 * follow), or -EPROTO; the last two with the reason in why, and a fatal
 * alert's description in c->alert.
 */
int vxhs_tls_ctl_feed(struct vxhs_tls_ctl *c, uint8_t type, const uint8_t *p,
		      size_t n, char *why, size_t whylen);

/*
 * Receives into iov (with GnuTLS's records, into the first segment only).
 * Returns bytes (0: the peer closed, with or without close_notify),
 * -EAGAIN, the socket's negative errno, -EKEYEXPIRED, or -EPROTO with the
 * GnuTLS code in *gerr (0 when the kernel read the record: see
 * vxhs_tls_strerror).
 */
ssize_t vxhs_tls_recvv(gnutls_session_t session, struct vxhs_tls_io *io,
		       const struct iovec *iov, int n, int *gerr);

static inline ssize_t vxhs_tls_recv(gnutls_session_t session,
				    struct vxhs_tls_io *io, void *buf,
				    size_t len, int *gerr)
{
	struct iovec one = { buf, len };

	return vxhs_tls_recvv(session, io, &one, 1, gerr);
}

/* What went wrong with the last record received, for a log line. */
const char *vxhs_tls_strerror(const struct vxhs_tls_io *io, int gerr);

#endif /* VXHS_TLS_H */
