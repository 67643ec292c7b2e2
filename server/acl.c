// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * The access list (--acl FILE): which peer may use which vdisks, read-only
 * or read-write. One rule per line, '#' starts a comment:
 *
 *   WHO            VDISKS     RIGHTS
 *   dns:gw1.example.com   *          rw
 *   dn:CN=backup,O=Example   vm-*    ro
 *   uid:0          *          rw
 *   user:tcmu      disk*      rw
 *   plaintext      lab-*      rw
 *
 * WHO is one of a TLS client certificate's names (dn: the subject, dns:,
 * ip:, uri:, email: its alternative names), a UNIX socket peer (uid:,
 * user:), or "plaintext" for any client of a TCP port without TLS. WHO
 * (after its prefix) and VDISKS are shell patterns. A peer's rights on a
 * vdisk are the widest any matching rule gives; no matching rule, no
 * access. Without --acl every peer that got in has read-write access to
 * every vdisk (vxhsd says so when it starts).
 */
#include <errno.h>
#include <fnmatch.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>

#include "common/util.h"
#include "vxhsd.h"

struct rule {
	char *who; /* "dns:pattern", "uid:123", "plaintext" */
	char *vdisks;
	enum acl_right right;
};

/* One loaded list; SIGHUP loads a new one and swaps it in whole. */
struct rules {
	struct rule *r;
	size_t n;
};

static pthread_rwlock_t lock = PTHREAD_RWLOCK_INITIALIZER;
static struct rules *cur;   /* NULL: no access list */
static atomic_bool enabled; /* cur != NULL, for the request path */
static atomic_uint generation;

bool acl_enabled(void)
{
	return atomic_load(&enabled);
}

unsigned int acl_generation(void)
{
	return atomic_load(&generation);
}

static void free_rules(struct rules *set)
{
	if (!set)
		return;
	for (size_t i = 0; i < set->n; i++) {
		free(set->r[i].who);
		free(set->r[i].vdisks);
	}
	free(set->r);
	free(set);
}

static int parse_who(const char *file, unsigned int line, const char *text,
		     char **out)
{
	static const char *const prefixes[] = { "dn:",	"dns:",	  "ip:",
						"uri:", "email:", "uid:" };
	char buf[64];

	if (!strcmp(text, "plaintext")) {
		*out = strdup(text);
		return *out ? 0 : -ENOMEM;
	}
	if (!strncmp(text, "user:", 5)) {
		struct passwd *pw = getpwnam(text + 5);

		if (!pw) {
			fprintf(stderr, "vxhsd: %s:%u: no user '%s'\n", file,
				line, text + 5);
			return -EINVAL;
		}
		snprintf(buf, sizeof(buf), "uid:%u", (unsigned int)pw->pw_uid);
		*out = strdup(buf);
		return *out ? 0 : -ENOMEM;
	}
	for (size_t i = 0; i < ARRAY_SIZE(prefixes); i++) {
		size_t n = strlen(prefixes[i]);

		if (strncmp(text, prefixes[i], n))
			continue;
		if (!text[n]) {
			fprintf(stderr, "vxhsd: %s:%u: empty name after '%s'\n",
				file, line, prefixes[i]);
			return -EINVAL;
		}
		*out = strdup(text);
		return *out ? 0 : -ENOMEM;
	}
	fprintf(stderr,
		"vxhsd: %s:%u: '%s' names nobody: use dn:, dns:, ip:, uri:, email:, uid:, user: or plaintext\n",
		file, line, text);
	return -EINVAL;
}

static int add_rule(struct rules *set, const char *file, unsigned int line,
		    char *fields[3])
{
	struct rule r = { 0 };
	struct rule *grown;
	int ret;

	if (!strcmp(fields[2], "ro")) {
		r.right = ACL_RO;
	} else if (!strcmp(fields[2], "rw")) {
		r.right = ACL_RW;
	} else {
		fprintf(stderr, "vxhsd: %s:%u: rights '%s': use ro or rw\n",
			file, line, fields[2]);
		return -EINVAL;
	}
	ret = parse_who(file, line, fields[0], &r.who);
	if (ret)
		return ret;
	r.vdisks = strdup(fields[1]);
	grown = realloc(set->r, (set->n + 1) * sizeof(*set->r));
	if (!r.vdisks || !grown) {
		free(r.who);
		free(r.vdisks);
		if (grown)
			set->r = grown;
		return -ENOMEM;
	}
	set->r = grown;
	set->r[set->n++] = r;
	return 0;
}

int acl_load(const char *path)
{
	struct rules *set = calloc(1, sizeof(*set)), *old;
	char *text = NULL;
	size_t cap = 0;
	unsigned int line = 0;
	FILE *f = fopen(path, "re");
	int ret = 0;

	if (!f || !set) {
		ret = f ? -ENOMEM : -errno;
		fprintf(stderr, "vxhsd: access list %s: %s\n", path,
			strerror(-ret));
		if (f)
			fclose(f);
		free(set);
		return ret;
	}
	while (!ret && getline(&text, &cap, f) >= 0) {
		char *fields[4] = { NULL }, *save = NULL, *hash;
		unsigned int n = 0;

		line++;
		hash = strchr(text, '#');
		if (hash)
			*hash = '\0';
		for (char *tok = strtok_r(text, " \t\r\n", &save); tok;
		     tok = strtok_r(NULL, " \t\r\n", &save))
			if (n < 4)
				fields[n++] = tok;
			else
				n++;
		if (!n)
			continue;
		if (n != 3) {
			fprintf(stderr,
				"vxhsd: %s:%u: expected WHO VDISKS RIGHTS, found %u fields\n",
				path, line, n);
			ret = -EINVAL;
			break;
		}
		ret = add_rule(set, path, line, fields);
	}
	free(text);
	fclose(f);
	if (ret) {
		free_rules(set);
		return ret;
	}
	pthread_rwlock_wrlock(&lock);
	old = cur;
	cur = set;
	atomic_store(&enabled, true);
	atomic_fetch_add(&generation, 1);
	pthread_rwlock_unlock(&lock);
	free_rules(old);
	return 0;
}

void acl_free(void)
{
	pthread_rwlock_wrlock(&lock);
	free_rules(cur);
	cur = NULL;
	atomic_store(&enabled, false);
	pthread_rwlock_unlock(&lock);
}

/* Does rule pattern who ("dns:*.example.com") name this identity? */
static bool who_matches(const char *who, const struct identity *id)
{
	const char *colon = strchr(who, ':');
	size_t plen;

	if (!colon)
		return id->kind == IDENT_PLAIN && !strcmp(who, "plaintext");
	plen = (size_t)(colon - who) + 1;
	for (unsigned int i = 0; i < id->nr_names; i++) {
		const char *name = id->names[i];

		if (strncmp(name, who, plen))
			continue;
		/* Host names compare without regard to case. */
		if (!fnmatch(colon + 1, name + plen,
			     !strncmp(who, "dns:", 4) ? FNM_CASEFOLD : 0))
			return true;
	}
	return false;
}

enum acl_right acl_rights(const struct identity *id, const char *vdisk)
{
	enum acl_right best = ACL_NONE;

	pthread_rwlock_rdlock(&lock);
	if (!cur)
		best = ACL_RW;
	for (size_t i = 0; cur && i < cur->n && best != ACL_RW; i++)
		if (cur->r[i].right > best && who_matches(cur->r[i].who, id) &&
		    !fnmatch(cur->r[i].vdisks, vdisk, 0))
			best = cur->r[i].right;
	pthread_rwlock_unlock(&lock);
	return best;
}

bool acl_any_rights(const struct identity *id)
{
	bool any = false;

	pthread_rwlock_rdlock(&lock);
	any = !cur;
	for (size_t i = 0; cur && i < cur->n && !any; i++)
		any = cur->r[i].right > ACL_NONE &&
		      who_matches(cur->r[i].who, id);
	pthread_rwlock_unlock(&lock);
	return any;
}

bool acl_allows(enum acl_right right, uint16_t opcode)
{
	switch (opcode) {
	case VXHS_OP_READ:
	case VXHS_OP_STAT:
	case VXHS_OP_FAILOVER_READY:
	case VXHS_OP_LOCK_QUERY:
	case VXHS_OP_REGION_ADD: /* read-only peers read by reference too */
	case VXHS_OP_LOCAL_OPEN: /* and from the file itself */
		return right >= ACL_RO;
	default:
		/* Writes, flushes, zeroing, discards and anything new. */
		return right >= ACL_RW;
	}
}
