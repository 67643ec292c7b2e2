// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * Agents and their connection pools. One pool per (address, pool size, TLS
 * directory) is shared by every vdisk open on that agent; requests fill
 * one connection up to a load, then move on to the next (agent_pick_conn).
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include <syslog.h>

#include "internal.h"

int vxhs_agent_addr_parse(const char *text, struct vxhs_agent_addr *addr)
{
	const char *host = text, *port = NULL;
	size_t host_len;
	uint64_t v;

	memset(addr, 0, sizeof(*addr));
	if (!text || !*text)
		return set_error(-EINVAL, "empty agent address");

	if (!strncmp(text, "unix:", 5) || text[0] == '/') {
		const char *path = text[0] == '/' ? text : text + 5;
		size_t max = sizeof(((struct sockaddr_un *)0)->sun_path) - 1;

		if (path[0] != '/')
			return set_error(
				-EINVAL,
				"agent socket '%s': path must be absolute",
				path);
		if (strlen(path) > max)
			return set_error(
				-ENAMETOOLONG,
				"agent socket '%s': path longer than %zu bytes",
				path, max);
		addr->is_unix = true;
		strcpy(addr->host, path);
		return 0;
	}

	if (text[0] == '[') {
		const char *end = strchr(text, ']');

		if (!end)
			return set_error(
				-EINVAL,
				"agent '%s': missing ']' after IPv6 address",
				text);
		host = text + 1;
		host_len = (size_t)(end - host);
		if (end[1] == ':' || end[1] == '/')
			port = end + 2;
		else if (end[1])
			return set_error(
				-EINVAL,
				"agent '%s': unexpected text after ']'", text);
	} else {
		const char *colon = strchr(text, ':');
		const char *slash = strchr(text, '/');

		/* host/port, as the cfgstring writes it (targetcli takes no
		 * ':'), is the same address as host:port. */
		if (slash) {
			host_len = (size_t)(slash - text);
			port = slash + 1;
		} else if (colon && !strchr(colon + 1, ':')) {
			/* More than one colon: a bare IPv6 literal, no port. */
			host_len = (size_t)(colon - text);
			port = colon + 1;
		} else {
			host_len = strlen(text);
		}
	}
	if (host_len == 0)
		return set_error(-EINVAL, "agent '%s': empty host name", text);
	if (host_len >= sizeof(addr->host))
		return set_error(-ENAMETOOLONG,
				 "agent '%s': host name too long", text);
	memcpy(addr->host, host, host_len);
	addr->host[host_len] = '\0';

	addr->port = VXHS_DEFAULT_PORT;
	if (port) {
		if (vxhs_parse_uint(port, 1, 65535, &v))
			return set_error(
				-EINVAL,
				"agent '%s': port '%s' is not a number from 1 to 65535",
				text, port);
		addr->port = (uint16_t)v;
	}
	return 0;
}

void vxhs_agent_addr_format(const struct vxhs_agent_addr *addr, char *buf,
			    size_t len)
{
	if (addr->is_unix)
		snprintf(buf, len, "unix:%s", addr->host);
	else if (strchr(addr->host, ':'))
		snprintf(buf, len, "[%s]:%u", addr->host, addr->port);
	else
		snprintf(buf, len, "%s:%u", addr->host, addr->port);
}

/* Runs on the opener's thread: name resolution may block, I/O may not. */
int agent_resolve(const struct vxhs_agent_addr *addr, struct vxhs_resolved *res)
{
	struct addrinfo hints = {
		.ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM,
		.ai_flags = AI_NUMERICSERV,
	};
	struct addrinfo *list, *ai;
	char port[8], name[VXHS_HOST_MAX + 16];
	int ret;

	memset(res, 0, sizeof(*res));
	if (addr->is_unix) {
		struct sockaddr_un *sun = (struct sockaddr_un *)&res->sa[0];

		sun->sun_family = AF_UNIX;
		strcpy(sun->sun_path, addr->host);
		res->sa_len[0] = sizeof(*sun);
		res->nr = 1;
		return 0;
	}

	snprintf(port, sizeof(port), "%u", addr->port);
	ret = getaddrinfo(addr->host, port, &hints, &list);
	if (ret) {
		vxhs_agent_addr_format(addr, name, sizeof(name));
		return set_error(-EHOSTUNREACH, "cannot resolve agent %s: %s",
				 name, gai_strerror(ret));
	}
	for (ai = list; ai && res->nr < MAX_SOCKADDRS; ai = ai->ai_next) {
		if (ai->ai_addrlen > sizeof(res->sa[0]))
			continue;
		memcpy(&res->sa[res->nr], ai->ai_addr, ai->ai_addrlen);
		res->sa_len[res->nr++] = ai->ai_addrlen;
	}
	freeaddrinfo(list);
	if (!res->nr) {
		vxhs_agent_addr_format(addr, name, sizeof(name));
		return set_error(-EHOSTUNREACH,
				 "agent %s has no usable address", name);
	}
	return 0;
}

static bool same_addr(const struct vxhs_agent_addr *a,
		      const struct vxhs_agent_addr *b)
{
	return a->is_unix == b->is_unix && a->port == b->port &&
	       !strcmp(a->host, b->host);
}

/* The loop's notes on an address, made on first use. */
static struct agent_notes *notes_get(struct vxhs_loop *loop, const char *name)
{
	struct agent_notes *n;

	list_for_each_entry (n, &loop->agent_notes, link)
		if (!strcmp(n->name, name))
			return n;
	n = calloc(1, sizeof(*n));
	if (!n)
		return NULL;
	snprintf(n->name, sizeof(n->name), "%s", name);
	list_add_tail(&n->link, &loop->agent_notes);
	return n;
}

void agent_notes_free(struct vxhs_loop *loop)
{
	while (!list_empty(&loop->agent_notes)) {
		struct agent_notes *n = list_first_entry(
			&loop->agent_notes, struct agent_notes, link);

		list_del(&n->link);
		free(n);
	}
}

int agent_get(struct vxhs_loop *loop, const struct vxhs_open_opts *o,
	      unsigned int idx, const struct vxhs_resolved *res,
	      struct vxhs_tls *tls, struct vxhs_agent **out)
{
	const struct vxhs_agent_addr *addr = &o->agents[idx];
	unsigned int nr_conns = o->conns_per_agent;
	bool kernel_tls = o->kernel_tls;
	struct vxhs_agent *agent;

	/* TLS does not apply to UNIX sockets: the agent knows its peer
	 * from SO_PEERCRED there. */
	if (addr->is_unix)
		tls = NULL;
	list_for_each_entry (agent, &loop->agents, link) {
		if (same_addr(&agent->addr, addr) &&
		    agent->nr_conns == nr_conns && !!agent->tls == !!tls &&
		    (!tls || (!strcmp(agent->tls->dir, tls->dir) &&
			      agent->kernel_tls == kernel_tls))) {
			agent->refs++;
			*out = agent;
			return 0;
		}
	}

	agent = calloc(1, sizeof(*agent));
	if (!agent)
		return -ENOMEM;
	vxhs_agent_addr_format(addr, agent->name, sizeof(agent->name));
	agent->notes = notes_get(loop, agent->name);
	if (!agent->notes)
		goto free_agent;
	agent->conns = calloc(nr_conns, sizeof(*agent->conns));
	if (!agent->conns)
		goto free_agent;
	for (unsigned int i = 0; i < nr_conns; i++) {
		agent->conns[i] = conn_new(loop, agent);
		if (!agent->conns[i])
			goto free_conns;
		agent->nr_conns++;
	}
	agent->loop = loop;
	agent->addr = *addr;
	agent->res = *res;
	agent->refs = 1;
	agent->connect_timeout_ms = o->connect_timeout_ms;
	agent->tls = tls_creds_ref(tls);
	agent->kernel_tls = kernel_tls;
	/* The caller allowed it explicitly; still worth a line. */
	if (!tls && !addr->is_unix && !agent->notes->plaintext_warned) {
		agent->notes->plaintext_warned = true;
		loop_log(loop, LOG_WARNING,
			 "agent %s: plaintext TCP: the data is not encrypted "
			 "and the agent is not authenticated",
			 agent->name);
	}
	list_add_tail(&agent->link, &loop->agents);
	*out = agent;
	return 0;

free_conns:
	for (unsigned int i = 0; i < agent->nr_conns; i++)
		conn_free(agent->conns[i]);
	free(agent->conns);
free_agent:
	free(agent);
	return -ENOMEM;
}

void agent_put(struct vxhs_agent *agent)
{
	if (--agent->refs)
		return;
	for (unsigned int i = 0; i < agent->nr_conns; i++) {
		if (agent->conns[i]->state != CONN_DOWN)
			conn_fail(agent->conns[i], -ECANCELED,
				  "agent released");
		conn_free(agent->conns[i]);
	}
	list_del(&agent->link);
	tls_creds_put(agent->tls);
	free(agent->conns);
	free(agent);
}

/*
 * A connection takes new requests until it has STICKY_IOS of them, or
 * STICKY_BYTES of data to move through its socket, in flight; then the
 * next usable one does. Small requests close together so share one
 * connection, and each end moves many of them per system call (the agent
 * reads them in one receive, answers them in one send); large ones, and
 * heavy load, spread over the pool, where several agent threads and TCP
 * windows work at once. With requests taken round-robin, 4 KiB reads at
 * QD 32 cost 1.4x the CPU (docs/performance.md, "Requests batched on one
 * connection").
 */
#define STICKY_IOS   32
#define STICKY_BYTES (256 * 1024)

/*
 * Connections that are down are restarted at most once per CONN_RETRY_NS
 * when the turn comes to them, so a dead agent is not hammered.
 */
struct vxhs_conn *agent_pick_conn(struct vxhs_agent *agent, uint64_t len)
{
	struct vxhs_conn *fallback = NULL;
	struct vxhs_conn *conn;
	uint64_t now;

	conn = agent->conns[agent->rr % agent->nr_conns];
	if (conn->state == CONN_UP && conn->nr_ios < STICKY_IOS &&
	    conn->io_bytes + len <= STICKY_BYTES)
		return conn;
	now = vxhs_now_ns();
	for (unsigned int n = 0; n < agent->nr_conns; n++) {
		conn = agent->conns[++agent->rr % agent->nr_conns];
		if (conn->state == CONN_DOWN && now >= conn->retry_at)
			conn_start(conn);
		if (conn->state == CONN_UP)
			return conn;
		if ((conn->state == CONN_CONNECTING ||
		     conn->state == CONN_HANDSHAKE) &&
		    !fallback)
			fallback = conn;
	}
	return fallback;
}

/* After a successful failover probe: bring the whole pool up again. */
void agent_wake_pool(struct vxhs_agent *agent)
{
	for (unsigned int i = 0; i < agent->nr_conns; i++)
		if (agent->conns[i]->state == CONN_DOWN)
			conn_start(agent->conns[i]);
}
