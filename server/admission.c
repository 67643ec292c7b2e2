// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * Who may connect. Connection slots are kept apart so that one kind of
 * peer cannot lock out another:
 *
 *   --max-conns               every connection
 *   --unix-reserved           of those, slots only the UNIX socket may take
 *                             (tcmu-runner on this host still gets in when
 *                             TCP is full)
 *   --max-unauth              TCP connections still in the TLS handshake
 *   --max-conns-per-addr      TCP connections from one address
 *   --max-conns-per-identity  authenticated connections of one identity
 *
 * and a TLS client whose certificate has no rights in the access list is
 * let go right after the handshake. Also the list of every session, for
 * fault injection's commands that act on connections.
 *
 * Lock order: this file's lock, then a session's tx_lock.
 */
#include <errno.h>
#include <glib.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <syslog.h>

#include "vxhsd.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct list_head all = { &all, &all };
static unsigned int nr_total, nr_unix, nr_unauth;
static GHashTable *per_addr; /* address -> TCP connections */

static unsigned int addr_count(const char *addr)
{
	return per_addr ?
		       GPOINTER_TO_UINT(g_hash_table_lookup(per_addr, addr)) :
		       0;
}

static void addr_add(const char *addr, int delta)
{
	unsigned int n = addr_count(addr) + (unsigned int)delta;

	if (!per_addr)
		per_addr = g_hash_table_new_full(g_str_hash, g_str_equal,
						 g_free, NULL);
	if (n)
		g_hash_table_insert(per_addr, g_strdup(addr),
				    GUINT_TO_POINTER(n));
	else
		g_hash_table_remove(per_addr, addr);
}

/* Caller holds lock. */
static const char *refusal(const struct session *s)
{
	if (nr_total >= config.max_conns)
		return "already serving --max-conns connections";
	if (s->is_unix)
		return NULL;
	if (nr_total - nr_unix + config.unix_reserved >= config.max_conns)
		return "TCP has all slots but --unix-reserved";
	if (addr_count(s->addr) >= config.max_conns_per_addr)
		return "--max-conns-per-addr connections from this address";
	if (s->state == RX_HANDSHAKE && nr_unauth >= config.max_unauth)
		return "--max-unauth connections still in the TLS handshake";
	return NULL;
}

int admit_register(struct session *s, const char **why)
{
	pthread_mutex_lock(&lock);
	*why = refusal(s);
	if (*why) {
		pthread_mutex_unlock(&lock);
		return -EBUSY;
	}
	nr_total++;
	if (s->is_unix)
		nr_unix++;
	else
		addr_add(s->addr, 1);
	if (s->state == RX_HANDSHAKE)
		nr_unauth++;
	list_add_tail(&s->all_link, &all);
	pthread_mutex_unlock(&lock);
	if (s->state == RX_HANDSHAKE)
		return 0;
	return admit_identity(s, why);
}

/* The key an identity's shares are kept under. */
static void identity_key(const struct session *s, char *buf, size_t len)
{
	if (s->ident.kind == IDENT_PLAIN)
		snprintf(buf, len, "plaintext@%s", s->addr);
	else
		snprintf(buf, len, "%s", s->ident.label);
}

int admit_identity(struct session *s, const char **why)
{
	char key[160];

	if (!acl_any_rights(&s->ident)) {
		slog(s, NULL, -1, LOG_WARNING,
		     "audit: %s (%s) has no rights in the access list; closing",
		     s->ident.label, s->peer);
		*why = "no rights in the access list";
		return -EACCES;
	}
	identity_key(s, key, sizeof(key));
	s->acct = account_get(key);
	if (!s->acct) {
		*why = "out of memory";
		return -ENOMEM;
	}
	pthread_mutex_lock(&lock);
	if (s->acct->conns >= config.max_conns_per_identity) {
		pthread_mutex_unlock(&lock);
		*why = "--max-conns-per-identity connections of this identity";
		return -EBUSY;
	}
	s->acct->conns++;
	s->authenticated = true;
	if (!s->is_unix && s->ident.kind == IDENT_TLS)
		nr_unauth--;
	pthread_mutex_unlock(&lock);
	return 0;
}

void admit_unregister(struct session *s)
{
	pthread_mutex_lock(&lock);
	if (!list_linked(&s->all_link)) {
		pthread_mutex_unlock(&lock);
		return;
	}
	list_del(&s->all_link);
	nr_total--;
	if (s->is_unix)
		nr_unix--;
	else
		addr_add(s->addr, -1);
	if (s->authenticated)
		s->acct->conns--;
	else if (s->ident.kind == IDENT_TLS)
		nr_unauth--;
	pthread_mutex_unlock(&lock);
}

static bool matches(const struct session *s, const char *pattern)
{
	return !pattern || !strcmp(pattern, "all") ||
	       !strcmp(pattern, s->peer) || !strcmp(pattern, s->addr) ||
	       !strcmp(pattern, s->ident.label);
}

unsigned int admit_for_each(const char *pattern,
			    void (*fn)(struct session *, void *), void *arg)
{
	struct session *s;
	unsigned int n = 0;

	pthread_mutex_lock(&lock);
	list_for_each_entry (s, &all, all_link) {
		if (!matches(s, pattern))
			continue;
		fn(s, arg);
		n++;
	}
	pthread_mutex_unlock(&lock);
	return n;
}

static void recheck(struct session *s, void *arg)
{
	unsigned int *closed = arg;
	const char *why = NULL;

	/* A handshake still going on meets the new credentials itself. */
	if (!s->authenticated)
		return;
	if (acl_enabled() && !acl_any_rights(&s->ident))
		why = "no rights in the reloaded access list";
	else if (s->tls && !session_tls_still_trusted(s))
		why = "its certificate fails the reloaded CA or CRL";
	if (!why)
		return;
	slog(s, NULL, -1, LOG_WARNING, "audit: %s (%s): %s; closing",
	     s->ident.label, s->peer, why);
	atomic_store(&s->revoked, true);
	session_shutdown(s); /* the loop sees it at once */
	(*closed)++;
}

unsigned int admit_recheck(void)
{
	unsigned int closed = 0;

	admit_for_each(NULL, recheck, &closed);
	return closed;
}
