// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * The TLS transport (GnuTLS). Credentials are loaded on the opener's
 * thread and shared, refcounted, by every agent opened with the same
 * directory. Sessions live on the I/O thread: a connection that has
 * connected runs a non-blocking handshake, then its bytes go through
 * GnuTLS records.
 *
 * Record I/O itself is lib/tls/stream.c, shared with vxhsd.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "internal.h"
#include "tls/tls.h"
#include "transport.h"

/* An agent judges our certificate within this long after the handshake. */
#define TLS_REFUSAL_WINDOW_NS (2 * NSEC_PER_SEC)

int tls_creds_get(const char *dir, struct vxhs_tls **out)
{
	struct vxhs_tls *tls;
	char err[512];
	size_t len = strlen(dir);
	int ret;

	tls = calloc(1, sizeof(*tls) + len + 1);
	if (!tls)
		return set_error(-ENOMEM, "out of memory");
	memcpy(tls->dir, dir, len + 1);
	atomic_init(&tls->refs, 1);
	ret = vxhs_tls_creds_load(dir, &tls->creds, err, sizeof(err));
	if (ret) {
		free(tls);
		return set_error(ret, "TLS credentials: %s", err);
	}
	*out = tls;
	return 0;
}

struct vxhs_tls *tls_creds_ref(struct vxhs_tls *tls)
{
	if (tls)
		atomic_fetch_add(&tls->refs, 1);
	return tls;
}

void tls_creds_put(struct vxhs_tls *tls)
{
	if (!tls || atomic_fetch_sub(&tls->refs, 1) != 1)
		return;
	gnutls_certificate_free_credentials(tls->creds);
	free(tls);
}

static bool is_ip_literal(const char *host)
{
	unsigned char buf[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, host, buf) == 1 ||
	       inet_pton(AF_INET6, host, buf) == 1;
}

/* Reports a TLS failure once per distinct reason, not once per retry. */
static void report_tls_error(struct vxhs_conn *conn, const char *why)
{
	struct vxhs_agent *agent = conn->agent;

	if (strcmp(agent->notes->tls_error, why)) {
		snprintf(agent->notes->tls_error,
			 sizeof(agent->notes->tls_error), "%s", why);
		loop_log(conn->loop, LOG_ERR, "agent %s: %s", agent->name, why);
	}
}

static int tls_start(struct vxhs_conn *conn)
{
	struct vxhs_agent *agent = conn->agent;
	const char *host = agent->addr.host;
	gnutls_session_t s;
	int ret;

	ret = gnutls_init(&s,
			  GNUTLS_CLIENT | GNUTLS_NONBLOCK | GNUTLS_NO_TICKETS);
	if (ret < 0)
		return -ENOMEM;
	if (gnutls_priority_set_direct(s, VXHS_TLS_PRIORITY, NULL) < 0 ||
	    gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE,
				   agent->tls->creds) < 0) {
		gnutls_deinit(s);
		return -EINVAL;
	}
	/* Names go in SNI; IP addresses are checked against the
	 * certificate's IP address entries. */
	if (!is_ip_literal(host))
		gnutls_server_name_set(s, GNUTLS_NAME_DNS, host, strlen(host));
	/* The agent's certificate must name it and be meant for a TLS
	 * server: a gateway's client certificate for the same host name
	 * must not pass for an agent. */
	conn->tls_verify[0].type = GNUTLS_DT_DNS_HOSTNAME;
	conn->tls_verify[0].data = (unsigned char *)host;
	conn->tls_verify[0].size = 0;
	conn->tls_verify[1].type = GNUTLS_DT_KEY_PURPOSE_OID;
	conn->tls_verify[1].data = (unsigned char *)GNUTLS_KP_TLS_WWW_SERVER;
	conn->tls_verify[1].size = 0;
	gnutls_session_set_verify_cert2(s, conn->tls_verify,
					ARRAY_SIZE(conn->tls_verify), 0);
	conn->tls_io = vxhs_tls_io_new(s, conn->fd);
	if (!conn->tls_io) {
		gnutls_deinit(s);
		return -ENOMEM;
	}
	conn->tls_io->exact_reads = agent->kernel_tls;
	gnutls_handshake_set_timeout(s, 0);
	conn->tls_session = s;
	conn->tls_alert = NULL;
	return -EINPROGRESS;
}

static void tls_end(struct vxhs_conn *conn)
{
	if (!conn->tls_session)
		return;
	gnutls_deinit(conn->tls_session);
	conn->tls_session = NULL;
	vxhs_tls_io_free(conn->tls_io);
	conn->tls_io = NULL;
}

static bool tls_wants_write(const struct vxhs_conn *conn)
{
	return (conn->tls_io && vxhs_tls_send_held(conn->tls_io)) ||
	       (conn->state == CONN_HANDSHAKE &&
		gnutls_record_get_direction(conn->tls_session) == 1);
}

static int tls_handshake(struct vxhs_conn *conn)
{
	struct vxhs_agent *agent = conn->agent;
	char why[512], how[512];
	int ret;

	do {
		ret = gnutls_handshake(conn->tls_session);
	} while (ret == GNUTLS_E_INTERRUPTED);
	if (ret == GNUTLS_E_AGAIN)
		return -EAGAIN;
	if (ret < 0) {
		vxhs_tls_describe_failure(conn->tls_session, ret, why,
					  sizeof(why));
		/* A plaintext agent closes on our ClientHello. */
		if (ret == GNUTLS_E_PREMATURE_TERMINATION ||
		    ret == GNUTLS_E_PULL_ERROR ||
		    ret == GNUTLS_E_UNEXPECTED_PACKET_LENGTH)
			strncat(why,
				" (does the agent speak TLS on this port?)",
				sizeof(why) - strlen(why) - 1);
		report_tls_error(conn, why);
		return -EKEYREJECTED;
	}
	if (agent->notes->tls_error[0]) {
		loop_log(conn->loop, LOG_NOTICE, "agent %s: TLS works again",
			 agent->name);
		agent->notes->tls_error[0] = '\0';
	}
	conn->tls_up_at = vxhs_now_ns();
	ret = vxhs_tls_records_start(conn->tls_session, conn->tls_io,
				     agent->kernel_tls, "libvxhs", how,
				     sizeof(how));
	/* Once per agent, not per connection. */
	if (ret && !agent->notes->kernel_tls_warned)
		loop_log(conn->loop, LOG_NOTICE, "agent %s: kernel_tls: %s",
			 agent->name, how);
	agent->notes->kernel_tls_warned = ret != 0;
	loop_log(conn->loop, LOG_DEBUG, "agent %s: TLS up (%s), %s",
		 agent->name,
		 gnutls_protocol_get_name(
			 gnutls_protocol_get_version(conn->tls_session)),
		 how);
	return 0;
}

static ssize_t tls_sendv(struct vxhs_conn *conn, const struct iovec *iov, int n)
{
	int gerr = 0;
	ssize_t ret =
		vxhs_tls_sendv(conn->tls_session, conn->tls_io, iov, n, &gerr);

	if (ret < 0 && gerr)
		loop_log(conn->loop, LOG_INFO, "agent %s: TLS send: %s",
			 conn->agent->name, gnutls_strerror(gerr));
	if (ret == -EKEYEXPIRED)
		loop_log(conn->loop, LOG_NOTICE,
			 "agent %s: the kernel's TLS key has carried all it "
			 "should; reconnecting for a new one",
			 conn->agent->name);
	return ret;
}

static ssize_t tls_recvv(struct vxhs_conn *conn, const struct iovec *iov, int n)
{
	int gerr = 0;
	ssize_t ret =
		vxhs_tls_recvv(conn->tls_session, conn->tls_io, iov, n, &gerr);

	if (ret >= 0)
		return ret;
	if (ret == -EKEYEXPIRED)
		loop_log(conn->loop, LOG_NOTICE, "agent %s: %s; reconnecting",
			 conn->agent->name,
			 vxhs_tls_strerror(conn->tls_io, gerr));
	if (gerr == GNUTLS_E_FATAL_ALERT_RECEIVED) {
		conn->tls_alert = gnutls_alert_get_name(
			gnutls_alert_get(conn->tls_session));
		return -ECONNRESET;
	}
	/* Read by the kernel or by us, an agent's refusal of our certificate
	 * comes in an alert handed over (TLS 1.3 checks it late). */
	if (conn->tls_io->ctl.alert >= 0) {
		conn->tls_alert = gnutls_alert_get_name(
			(gnutls_alert_description_t)conn->tls_io->ctl.alert);
		return -ECONNRESET;
	}
	if (ret == -EPROTO)
		loop_log(conn->loop, LOG_WARNING, "agent %s: TLS receive: %s",
			 conn->agent->name,
			 vxhs_tls_strerror(conn->tls_io, gerr));
	return ret;
}

/*
 * In TLS 1.3 the agent checks our certificate after our side of the
 * handshake is done: a refusal shows up as an alert, or as a connection
 * that dies before the first answer. Say so instead of "broken pipe".
 */
static int tls_explain_loss(struct vxhs_conn *conn, int err)
{
	char why[256];

	/* Only a loss right after the handshake: later, an agent that
	 * restarts is just that. */
	if (!conn->tls_session || conn->state != CONN_UP || conn->answered ||
	    err == -ECANCELED || err == -ETIMEDOUT ||
	    vxhs_now_ns() - conn->tls_up_at > TLS_REFUSAL_WINDOW_NS)
		return err;
	if (conn->tls_alert)
		snprintf(
			why, sizeof(why),
			"the agent refused our certificate (TLS alert: %s); see its log",
			conn->tls_alert);
	else
		snprintf(
			why, sizeof(why),
			"the agent closed the TLS session before any answer (%s): it probably refused our certificate; see its log",
			strerror(-err));
	report_tls_error(conn, why);
	return -EKEYREJECTED;
}

static bool tls_has_pending(const struct vxhs_conn *conn)
{
	return conn->tls_session &&
	       vxhs_tls_has_pending(conn->tls_session, conn->tls_io);
}

/* A record at a time comes back, so the socket says when it ran dry (an
 * answer just parsed may have ended the session). */
static bool tls_drained(const struct vxhs_conn *conn, size_t got, size_t asked)
{
	(void)got;
	(void)asked;
	return !conn->tls_session ||
	       vxhs_tls_drained(conn->tls_session, conn->tls_io);
}

/* One message per record unless the agent announced that it packs. */
static bool tls_one_message_per_send(const struct vxhs_conn *conn)
{
	return !conn->agent->tls_packs;
}

const struct transport_ops transport_tls = {
	.name = "TLS",
	.start = tls_start,
	.handshake = tls_handshake,
	.sendv = tls_sendv,
	.recvv = tls_recvv,
	.drained = tls_drained,
	.one_message_per_send = tls_one_message_per_send,
	.wants_write = tls_wants_write,
	.has_pending = tls_has_pending,
	.explain_loss = tls_explain_loss,
	.end = tls_end,
};
