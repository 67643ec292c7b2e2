/* SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later */
/*
 * TLS shared by the client library and vxhsd: credentials from one
 * directory holding the CA that signs the peers (ca.pem, optional crl.pem),
 * our certificate chain (cert.pem) and its private key (key.pem); and
 * non-blocking record I/O over a session.
 */
#ifndef VXHS_TLS_H
#define VXHS_TLS_H

#include <gnutls/gnutls.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#define VXHS_TLS_CA   "ca.pem"
#define VXHS_TLS_CRL  "crl.pem"
#define VXHS_TLS_CERT "cert.pem"
#define VXHS_TLS_KEY  "key.pem"

/* TLS 1.3, and 1.2 for older peers; nothing below. */
#define VXHS_TLS_PRIORITY "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

/*
 * Loads the credentials in dir. Refuses a key that others may read, and a
 * certificate of our own that is expired or not yet valid. Returns 0, or a
 * negative errno with a message naming the file and the problem in err.
 */
int vxhs_tls_creds_load(const char *dir, gnutls_certificate_credentials_t *out,
			char *err, size_t errlen);

/*
 * Why the peer's certificate was refused, for a session whose handshake
 * failed: "certificate expired", "signed by an unknown CA", ...
 */
void vxhs_tls_describe_failure(gnutls_session_t session, int gnutls_err,
			       char *buf, size_t len);

/* The largest TLS record payload: what one vxhs_tls_sendv call takes. */
#define VXHS_TLS_RECORD_MAX (16 * 1024)

/*
 * Sends up to one record gathered from iov through stage (a buffer of
 * VXHS_TLS_RECORD_MAX bytes). When GnuTLS cannot send at once it keeps the
 * record; *pending then holds its length, and the next call finishes that
 * record whatever iov says (the caller has not advanced past those bytes).
 * Returns the bytes sent, -EAGAIN, or -EPIPE with the GnuTLS code in *gerr.
 */
ssize_t vxhs_tls_sendv(gnutls_session_t session, uint8_t *stage,
		       size_t *pending, const struct iovec *iov, int n,
		       int *gerr);
/*
 * Receives into buf. Returns bytes (0: the peer closed, with or without
 * close_notify), -EAGAIN, or -EPROTO with the GnuTLS code in *gerr.
 */
ssize_t vxhs_tls_recv(gnutls_session_t session, void *buf, size_t len,
		      int *gerr);

#endif /* VXHS_TLS_H */
