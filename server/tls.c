// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * TLS on vxhsd's TCP listeners (--tls-dir): the agent presents its
 * certificate and requires one from every client, signed by the CA in the
 * same directory (and not revoked, when a crl.pem is there). The loop
 * thread runs the handshake before a single request is read, and takes the
 * client's names for the access list from its certificate.
 *
 * After the handshake the session has one receiver (the loop thread) and
 * one sender at a time (whoever holds tx_lock), which GnuTLS allows.
 * Session tickets are off: nothing is ever resumed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <gnutls/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "tls/tls.h"
#include "vxhsd.h"

/*
 * The credentials new sessions get. SIGHUP loads new ones (a renewed
 * certificate, a new CRL) and swaps them in; sessions keep those they
 * started with, counted, until they end.
 */
struct server_creds {
	gnutls_certificate_credentials_t c;
	atomic_uint refs;
};

static pthread_mutex_t creds_lock = PTHREAD_MUTEX_INITIALIZER;
static struct server_creds *creds;
static atomic_bool enabled;
static gnutls_typed_vdata_st client_purpose = {
	.type = GNUTLS_DT_KEY_PURPOSE_OID,
	.data = (unsigned char *)GNUTLS_KP_TLS_WWW_CLIENT,
};
static gnutls_priority_t priority;

static void creds_put(struct server_creds *c)
{
	if (!c || atomic_fetch_sub(&c->refs, 1) != 1)
		return;
	gnutls_certificate_free_credentials(c->c);
	free(c);
}

static int creds_load(const char *dir, struct server_creds **out)
{
	struct server_creds *c = calloc(1, sizeof(*c));
	char err[512];
	int ret;

	if (!c)
		return -ENOMEM;
	ret = vxhs_tls_creds_load(dir, &c->c, err, sizeof(err));
	if (ret) {
		vlog(LOG_ERR, "TLS: %s", err);
		free(c);
		return ret;
	}
	atomic_init(&c->refs, 1);
	*out = c;
	return 0;
}

int tls_server_init(const char *dir)
{
	int ret = creds_load(dir, &creds);

	if (ret)
		return ret;
	if (gnutls_priority_init(&priority, VXHS_TLS_PRIORITY, NULL) < 0) {
		creds_put(creds);
		creds = NULL;
		return -EINVAL;
	}
	atomic_store(&enabled, true);
	return 0;
}

int tls_server_reload(const char *dir)
{
	struct server_creds *c, *old;
	int ret;

	if (!atomic_load(&enabled))
		return 0;
	ret = creds_load(dir, &c);
	if (ret)
		return ret;
	pthread_mutex_lock(&creds_lock);
	old = creds;
	creds = c;
	pthread_mutex_unlock(&creds_lock);
	creds_put(old);
	return 0;
}

void tls_server_exit(void)
{
	if (!atomic_load(&enabled))
		return;
	gnutls_priority_deinit(priority);
	creds_put(creds);
	creds = NULL;
	atomic_store(&enabled, false);
}

bool tls_server_enabled(void)
{
	return atomic_load(&enabled);
}

int session_tls_start(struct session *s)
{
	struct server_creds *c;
	gnutls_session_t t;

	if (gnutls_init(&t, GNUTLS_SERVER | GNUTLS_NONBLOCK |
				    GNUTLS_NO_TICKETS) < 0)
		return -ENOMEM;
	pthread_mutex_lock(&creds_lock);
	c = creds;
	atomic_fetch_add(&c->refs, 1);
	pthread_mutex_unlock(&creds_lock);
	s->tls_creds = c;
	if (gnutls_priority_set(t, priority) < 0 ||
	    gnutls_credentials_set(t, GNUTLS_CRD_CERTIFICATE, c->c) < 0) {
		gnutls_deinit(t);
		return -EINVAL;
	}
	gnutls_certificate_server_set_request(t, GNUTLS_CERT_REQUIRE);
	/* Verified against the CA (and CRL) during the handshake, and it
	 * must be meant for a TLS client: an agent's server certificate
	 * must not pass for a gateway. */
	gnutls_session_set_verify_cert2(t, &client_purpose, 1, 0);
	s->tls_io = vxhs_tls_io_new(t, s->fd);
	if (!s->tls_io) {
		gnutls_deinit(t);
		return -ENOMEM;
	}
	s->tls_io->exact_reads = config.kernel_tls;
	s->tls_io->ctl.server = true;
	s->tls = t;
	return 0;
}

bool session_tls_still_trusted(struct session *s)
{
	const gnutls_datum_t *der;
	gnutls_x509_trust_list_t tl;
	gnutls_x509_crt_t *crts;
	struct server_creds *c;
	unsigned int n = 0, i, status = 1;

	der = gnutls_certificate_get_peers(s->tls, &n);
	if (!der || !n)
		return false;
	crts = calloc(n, sizeof(*crts));
	if (!crts)
		return true; /* no memory is no reason to close it */
	for (i = 0; i < n; i++)
		if (gnutls_x509_crt_init(&crts[i]) < 0 ||
		    gnutls_x509_crt_import(crts[i], &der[i],
					   GNUTLS_X509_FMT_DER) < 0)
			goto free_crts;
	pthread_mutex_lock(&creds_lock);
	c = creds;
	atomic_fetch_add(&c->refs, 1);
	pthread_mutex_unlock(&creds_lock);
	gnutls_certificate_get_trust_list(c->c, &tl);
	if (gnutls_x509_trust_list_verify_crt2(tl, crts, n, &client_purpose, 1,
					       0, &status, NULL) < 0)
		status = 1;
	creds_put(c);
free_crts:
	for (unsigned int j = 0; j < n && crts[j]; j++)
		gnutls_x509_crt_deinit(crts[j]);
	free(crts);
	return status == 0;
}

void session_tls_end(struct session *s)
{
	if (s->tls)
		gnutls_deinit(s->tls);
	s->tls = NULL;
	vxhs_tls_io_free(s->tls_io);
	s->tls_io = NULL;
	creds_put(s->tls_creds);
	s->tls_creds = NULL;
}

static int add_name(struct identity *id, const char *prefix, const char *name,
		    size_t len)
{
	size_t plen = strlen(prefix);
	char *n;

	if (id->nr_names >= IDENT_NAMES_MAX)
		return 0;
	/* A NUL inside a name would make it compare as another name. */
	if (memchr(name, '\0', len))
		return 0;
	n = malloc(plen + len + 1);
	if (!n)
		return -ENOMEM;
	memcpy(n, prefix, plen);
	memcpy(n + plen, name, len);
	n[plen + len] = '\0';
	id->names[id->nr_names++] = n;
	return 0;
}

/* The subject and alternative names of the client's certificate. */
static int peer_names(struct session *s)
{
	const gnutls_datum_t *chain;
	unsigned int n = 0;
	gnutls_x509_crt_t crt;
	gnutls_datum_t dn = { NULL, 0 };
	int ret;

	chain = gnutls_certificate_get_peers(s->tls, &n);
	if (!chain || !n)
		return -EACCES;
	if (gnutls_x509_crt_init(&crt) < 0)
		return -ENOMEM;
	ret = gnutls_x509_crt_import(crt, &chain[0], GNUTLS_X509_FMT_DER);
	if (ret < 0)
		goto deinit_crt;
	if (gnutls_x509_crt_get_dn3(crt, &dn, 0) >= 0) {
		ret = add_name(&s->ident, "dn:", (const char *)dn.data,
			       dn.size);
		gnutls_free(dn.data);
		if (ret)
			goto deinit_crt;
	}
	for (unsigned int i = 0;; i++) {
		char buf[512], ip[INET6_ADDRSTRLEN];
		size_t len = sizeof(buf);
		unsigned int critical;
		int type = gnutls_x509_crt_get_subject_alt_name(
			crt, i, buf, &len, &critical);

		if (type == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
			break;
		if (type == GNUTLS_E_SHORT_MEMORY_BUFFER)
			continue; /* absurdly long: not a name we match */
		if (type < 0)
			break;
		ret = 0;
		if (type == GNUTLS_SAN_DNSNAME)
			ret = add_name(&s->ident, "dns:", buf, len);
		else if (type == GNUTLS_SAN_URI)
			ret = add_name(&s->ident, "uri:", buf, len);
		else if (type == GNUTLS_SAN_RFC822NAME)
			ret = add_name(&s->ident, "email:", buf, len);
		else if (type == GNUTLS_SAN_IPADDRESS &&
			 (len == 4 || len == 16) &&
			 inet_ntop(len == 4 ? AF_INET : AF_INET6, buf, ip,
				   sizeof(ip)))
			ret = add_name(&s->ident, "ip:", ip, strlen(ip));
		if (ret)
			goto deinit_crt;
	}
	ret = 0;
deinit_crt:
	gnutls_x509_crt_deinit(crt);
	return ret < 0 ? ret : 0;
}

/*
 * With --kernel-tls, hands the session's records to the kernel; note gets
 * what its log line says of them ("" without the option).
 */
int session_tls_handshake(struct session *s)
{
	char why[512];
	int ret;

	do {
		ret = gnutls_handshake(s->tls);
	} while (ret == GNUTLS_E_INTERRUPTED);
	if (ret == GNUTLS_E_AGAIN)
		return 0;
	if (ret == GNUTLS_E_PUSH_ERROR || ret == GNUTLS_E_PULL_ERROR ||
	    ret == GNUTLS_E_PREMATURE_TERMINATION) {
		vlog(LOG_INFO, "%s: gone during the TLS handshake", s->peer);
		return -1;
	}
	if (ret == GNUTLS_E_CERTIFICATE_REQUIRED ||
	    ret == GNUTLS_E_NO_CERTIFICATE_FOUND) {
		slog(s, NULL, -1, LOG_WARNING,
		     "%s: TLS handshake failed: the client sent no certificate",
		     s->peer);
		return -1;
	}
	if (ret < 0) {
		vxhs_tls_describe_failure(s->tls, ret, why, sizeof(why));
		slog(s, NULL, -1, LOG_WARNING, "%s: %s%s", s->peer, why,
		     ret == GNUTLS_E_UNEXPECTED_PACKET_LENGTH ||
				     ret == GNUTLS_E_UNEXPECTED_PACKET ||
				     ret == GNUTLS_E_UNSUPPORTED_VERSION_PACKET ?
			     " (a client without TLS?)" :
			     "");
		return -1;
	}
	if (peer_names(s) < 0) {
		vlog(LOG_WARNING, "%s: cannot read the client certificate",
		     s->peer);
		return -1;
	}
	snprintf(s->ident.label, sizeof(s->ident.label), "%s",
		 s->ident.nr_names ? s->ident.names[0] : "(no names)");
	vxhs_tls_records_start(s->tls, s->tls_io, config.kernel_tls, "vxhsd",
			       why, sizeof(why));
	slog(s, NULL, -1, LOG_INFO, "%s: %s, client %s, %s", s->peer,
	     gnutls_protocol_get_name(gnutls_protocol_get_version(s->tls)),
	     s->ident.label, why);
	return 1;
}

bool session_tls_wants_write(const struct session *s)
{
	return (s->tls_io && vxhs_tls_send_held(s->tls_io)) ||
	       (s->state == RX_HANDSHAKE &&
		gnutls_record_get_direction(s->tls) == 1);
}

bool session_tls_has_pending(const struct session *s)
{
	return s->tls && s->state != RX_HANDSHAKE &&
	       vxhs_tls_has_pending(s->tls, s->tls_io);
}

/* Same contract as writev and read, for session.c. */
ssize_t session_send(struct session *s, const struct iovec *iov, int n)
{
	int gerr = 0;
	ssize_t ret;

	if (!s->tls)
		return writev(s->fd, iov, n);
	ret = vxhs_tls_sendv(s->tls, s->tls_io, iov, n, &gerr);
	if (ret >= 0)
		return ret;
	if (gerr)
		vlog(LOG_INFO, "%s: TLS send: %s", s->peer,
		     gnutls_strerror(gerr));
	if (ret == -EKEYEXPIRED)
		vlog(LOG_NOTICE,
		     "%s: the kernel's TLS key has carried all it should; "
		     "closing for the client to reconnect with a new one",
		     s->peer);
	errno = (int)-ret;
	return -1;
}

ssize_t session_recv(struct session *s, void *buf, size_t len)
{
	int gerr = 0;
	ssize_t ret;

	if (!s->tls)
		return s->is_unix ? region_recv(s, buf, len) :
				    read(s->fd, buf, len);
	ret = vxhs_tls_recv(s->tls, s->tls_io, buf, len, &gerr);
	if (ret >= 0)
		return ret;
	if (ret == -EPROTO)
		slog(s, NULL, -1, LOG_WARNING, "%s: TLS receive: %s", s->peer,
		     vxhs_tls_strerror(s->tls_io, gerr));
	if (ret == -EKEYEXPIRED)
		vlog(LOG_NOTICE, "%s: %s; closing for the client to reconnect",
		     s->peer, vxhs_tls_strerror(s->tls_io, gerr));
	errno = (int)-ret;
	return -1;
}
