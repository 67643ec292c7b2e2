// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * Records that are not application data, once the kernel (kernel.c) or we
 * (records.c) decrypt a session's records. GnuTLS no longer sees them, so
 * what it would have done is done here: a TLS 1.3 peer may send session
 * tickets (ignored: nothing is resumed), a key update (which neither
 * Linux 6.1's TLS nor GnuTLS, its keys handed over, can follow: the
 * connection must end) and alerts. Bytes come as the kernel returns them,
 * a record or part of one at a time, and a handshake message may span
 * records: the parser keeps its place.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "tls/tls.h"

#define REC_ALERT     21
#define REC_HANDSHAKE 22
#define REC_DATA      23

#define HS_NEW_SESSION_TICKET 4
#define HS_KEY_UPDATE	      24

/*
 * RFC 8446 4.6.1 bounds a ticket: a 4-byte lifetime and age, a nonce of up
 * to 255 bytes, a ticket of up to 2^16 - 1 and extensions of up to
 * 2^16 - 2, with their length fields.
 */
#define TICKET_MAX (4 + 4 + 1 + 255 + 2 + 65535 + 2 + 65534)

/* A handshake message's header is complete in c->hdr. */
static int handshake_message(struct vxhs_tls_ctl *c, char *why, size_t whylen)
{
	uint32_t len = (uint32_t)c->hdr[1] << 16 | (uint32_t)c->hdr[2] << 8 |
		       c->hdr[3];

	c->have = 0;
	switch (c->hdr[0]) {
	case HS_NEW_SESSION_TICKET:
		if (c->server)
			return vxhs_tls_fail(why, whylen, -EPROTO,
					     "a session ticket from a client");
		if (len > TICKET_MAX)
			return vxhs_tls_fail(why, whylen, -EPROTO,
					     "a session ticket of %u bytes",
					     (unsigned int)len);
		c->skip = len;
		return 0;
	case HS_KEY_UPDATE:
		return vxhs_tls_fail(
			why, whylen, -EKEYEXPIRED,
			"the peer updated its keys, which a session whose "
			"records left GnuTLS cannot follow");
	default:
		return vxhs_tls_fail(why, whylen, -EPROTO,
				     "handshake message %u after the handshake",
				     (unsigned int)c->hdr[0]);
	}
}

/* Bytes of an alert record: two, its level and description. */
static int alert(struct vxhs_tls_ctl *c, const uint8_t *p, size_t n, char *why,
		 size_t whylen)
{
	const char *name;

	if (c->have + n > 2)
		return vxhs_tls_fail(why, whylen, -EPROTO,
				     "an alert record of %u bytes",
				     (unsigned int)(c->have + n));
	memcpy(c->hdr + c->have, p, n);
	c->have += (unsigned int)n;
	if (c->have < 2)
		return 0;
	/* A record of its own each: the next starts afresh. */
	c->type = 0;
	c->have = 0;
	if (c->hdr[1] == GNUTLS_A_CLOSE_NOTIFY)
		return 1;
	c->alert = c->hdr[1];
	name = gnutls_alert_get_strname((gnutls_alert_description_t)c->hdr[1]);
	snprintf(why, whylen, "the peer sent alert %s (%u)",
		 name ? name : "unknown", c->hdr[1]);
	return -EPROTO;
}

int vxhs_tls_ctl_feed(struct vxhs_tls_ctl *c, uint8_t type, const uint8_t *p,
		      size_t n, char *why, size_t whylen)
{
	/* RFC 8446 5.1: a handshake message split over records has no
	 * other record between its pieces. */
	if (c->type && c->type != type && (c->have || c->skip))
		return vxhs_tls_fail(
			why, whylen, -EPROTO,
			"a record of type %u inside another message",
			(unsigned int)type);
	if (type == REC_DATA)
		return 0;
	if (c->type != type)
		c->have = 0;
	c->type = type;
	if (type == REC_ALERT)
		return n ? alert(c, p, n, why, whylen) : 0;
	if (type != REC_HANDSHAKE)
		return vxhs_tls_fail(why, whylen, -EPROTO,
				     "a record of type %u after the handshake",
				     (unsigned int)type);
	while (n) {
		size_t take;
		int ret;

		if (c->skip) {
			take = n < c->skip ? n : c->skip;
			c->skip -= (uint32_t)take;
			p += take;
			n -= take;
			continue;
		}
		take = sizeof(c->hdr) - c->have;
		if (take > n)
			take = n;
		memcpy(c->hdr + c->have, p, take);
		c->have += (unsigned int)take;
		p += take;
		n -= take;
		if (c->have < sizeof(c->hdr))
			break;
		ret = handshake_message(c, why, whylen);
		if (ret)
			return ret;
	}
	return 0;
}
