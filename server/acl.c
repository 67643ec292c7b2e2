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

static struct rule *rules;
static size_t nr_rules;
static bool enabled;

bool acl_enabled(void)
{
	return enabled;
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

static int add_rule(const char *file, unsigned int line, char *fields[3])
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
	grown = realloc(rules, (nr_rules + 1) * sizeof(*rules));
	if (!r.vdisks || !grown) {
		free(r.who);
		free(r.vdisks);
		if (grown)
			rules = grown;
		return -ENOMEM;
	}
	rules = grown;
	rules[nr_rules++] = r;
	return 0;
}

int acl_load(const char *path)
{
	char *text = NULL;
	size_t cap = 0;
	unsigned int line = 0;
	FILE *f = fopen(path, "re");
	int ret = 0;

	if (!f) {
		fprintf(stderr, "vxhsd: access list %s: %s\n", path,
			strerror(errno));
		return -errno;
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
		ret = add_rule(path, line, fields);
	}
	free(text);
	fclose(f);
	if (ret) {
		acl_free();
		return ret;
	}
	enabled = true;
	return 0;
}

void acl_free(void)
{
	for (size_t i = 0; i < nr_rules; i++) {
		free(rules[i].who);
		free(rules[i].vdisks);
	}
	free(rules);
	rules = NULL;
	nr_rules = 0;
	enabled = false;
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

	if (!enabled)
		return ACL_RW;
	for (size_t i = 0; i < nr_rules && best != ACL_RW; i++)
		if (rules[i].right > best && who_matches(rules[i].who, id) &&
		    !fnmatch(rules[i].vdisks, vdisk, 0))
			best = rules[i].right;
	return best;
}

bool acl_any_rights(const struct identity *id)
{
	if (!enabled)
		return true;
	for (size_t i = 0; i < nr_rules; i++)
		if (rules[i].right > ACL_NONE && who_matches(rules[i].who, id))
			return true;
	return false;
}

bool acl_allows(enum acl_right right, uint16_t opcode)
{
	switch (opcode) {
	case VXHS_OP_READ:
	case VXHS_OP_STAT:
	case VXHS_OP_FAILOVER_READY:
		return right >= ACL_RO;
	default:
		/* Writes, flushes, zeroing, discards and anything new. */
		return right >= ACL_RW;
	}
}
