// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * Non-blocking record I/O. Gathering queued bytes into one record turns a
 * batch of small requests or answers into one record and one send.
 */
#include <errno.h>
#include <string.h>

#include "tls/tls.h"

ssize_t vxhs_tls_sendv(gnutls_session_t session, uint8_t *stage,
		       size_t *pending, const struct iovec *iov, int n,
		       int *gerr)
{
	size_t len = 0;
	ssize_t ret;

	if (*pending) {
		ret = gnutls_record_send(session, NULL, 0);
	} else if (n > 0 && iov[0].iov_len >= VXHS_TLS_RECORD_MAX) {
		/* A whole record's worth in place: no gathering copy. */
		len = VXHS_TLS_RECORD_MAX;
		ret = gnutls_record_send(session, iov[0].iov_base, len);
	} else {
		for (int i = 0; i < n && len < VXHS_TLS_RECORD_MAX; i++) {
			size_t take = iov[i].iov_len;

			if (take > VXHS_TLS_RECORD_MAX - len)
				take = VXHS_TLS_RECORD_MAX - len;
			memcpy(stage + len, iov[i].iov_base, take);
			len += take;
		}
		ret = gnutls_record_send(session, stage, len);
	}
	if (ret == GNUTLS_E_AGAIN || ret == GNUTLS_E_INTERRUPTED) {
		if (!*pending)
			*pending = len;
		return -EAGAIN;
	}
	*pending = 0;
	if (ret < 0) {
		*gerr = (int)ret;
		return -EPIPE;
	}
	return ret;
}

ssize_t vxhs_tls_recv(gnutls_session_t session, void *buf, size_t len,
		      int *gerr)
{
	ssize_t ret = gnutls_record_recv(session, buf, len);

	if (ret >= 0)
		return ret;
	if (ret == GNUTLS_E_AGAIN || ret == GNUTLS_E_INTERRUPTED)
		return -EAGAIN;
	/* Peers usually just close: that is an end of stream, not an
	 * attack on it (the protocol's own framing catches truncation). */
	if (ret == GNUTLS_E_PREMATURE_TERMINATION)
		return 0;
	*gerr = (int)ret;
	return -EPROTO;
}
