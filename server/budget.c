// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * Memory for requests (--memory-limit), in shares so that no peer can hold
 * it all while others wait. A request is charged its buffer and its
 * bookkeeping (REQUEST_OVERHEAD, error answers too) against three limits:
 *
 *   its connection's      --max-conn-buffer
 *   its identity's        --identity-memory (a certificate name, a UNIX
 *                          uid, or a plaintext peer's address)
 *   everyone's            --memory-limit, of which the last eighth is a
 *                          reserve only connections holding nothing may
 *                          use, for one request of at most RESERVE_REQ
 *
 * A lone request always fits its own connection's and identity's shares
 * (or one as large as --max-io could never run). The reserve is what keeps
 * a quiet client's requests going while busy ones fill the rest.
 *
 * Accounts are also where admission.c counts an identity's connections.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vxhsd.h"

#define RESERVE_REQ (1ull << 20)
#define NR_BUCKETS  256

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct account *buckets[NR_BUCKETS];
static _Atomic uint64_t in_use;

static unsigned int hash(const char *key)
{
	unsigned int h = 5381;

	while (*key)
		h = h * 33 + (unsigned char)*key++;
	return h % NR_BUCKETS;
}

struct account *account_get(const char *key)
{
	struct account **slot = &buckets[hash(key)], *a;

	pthread_mutex_lock(&lock);
	for (a = *slot; a; a = a->next)
		if (!strcmp(a->key, key))
			break;
	if (!a) {
		a = calloc(1, sizeof(*a));
		if (a) {
			snprintf(a->key, sizeof(a->key), "%s", key);
			a->next = *slot;
			*slot = a;
		}
	}
	if (a)
		a->refs++;
	pthread_mutex_unlock(&lock);
	return a;
}

void account_put(struct account *a)
{
	struct account **p;

	pthread_mutex_lock(&lock);
	if (--a->refs) {
		pthread_mutex_unlock(&lock);
		return;
	}
	for (p = &buckets[hash(a->key)]; *p != a; p = &(*p)->next)
		;
	*p = a->next;
	pthread_mutex_unlock(&lock);
	free(a);
}

/*
 * Lock-free, as it is on every request's path: each share is taken
 * optimistically and given back if it went over, so two requests racing
 * for the last room may both be refused, never both admitted past it.
 */
bool budget_charge(struct session *s, uint64_t bytes)
{
	uint64_t mine = atomic_load(&s->buffered);
	uint64_t reserve = config.memory_limit / 8, id = 0, all;

	if (mine && mine + bytes > config.max_conn_buffer)
		return false;
	if (s->acct) {
		id = atomic_fetch_add(&s->acct->bytes, bytes);
		if (id && id + bytes > config.identity_memory)
			goto give_back_identity;
	}
	all = atomic_fetch_add(&in_use, bytes);
	if (all && all + bytes > config.memory_limit - reserve &&
	    (mine || bytes > RESERVE_REQ || all + bytes > config.memory_limit))
		goto give_back_all;
	atomic_fetch_add(&s->buffered, bytes);
	return true;

give_back_all:
	atomic_fetch_sub(&in_use, bytes);
give_back_identity:
	if (s->acct)
		atomic_fetch_sub(&s->acct->bytes, bytes);
	return false;
}

void budget_release(struct session *s, uint64_t bytes)
{
	atomic_fetch_sub(&in_use, bytes);
	if (s->acct)
		atomic_fetch_sub(&s->acct->bytes, bytes);
	atomic_fetch_sub(&s->buffered, bytes);
}

uint64_t budget_in_use(void)
{
	return atomic_load(&in_use);
}
