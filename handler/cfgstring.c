// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * Parsing of the handler's cfgstring. rtslib refuses ':' and the kernel
 * splits its control file on ',' and newlines, so agents are joined with
 * '+', ports follow a '/', and IPv6 literals spell ':' as '-' inside
 * brackets ("[fd00--5]/9999"), the convention of ipv6-literal.net names.
 * Longer agent lists live in the groups file, whose syntax has no such
 * limits.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <glib.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfgstring.h"
#include "common/keyfile.h"
#include <sys/stat.h>

#include "common/util.h"

enum opt_kind {
	OPT_UINT,
	OPT_PATH,
	OPT_NAME,
	OPT_BOOL,   /* "plaintext" alone means plaintext=yes */
	OPT_CHOICE, /* one of choices, stored as its index */
};

struct opt_desc {
	const char *name;
	enum opt_kind kind;
	unsigned int min, max;
	size_t offset;		    /* of the field in struct vxhs_cfg */
	size_t size;		    /* of that field, for strings */
	bool in_group;		    /* may also appear in the groups file */
	const char *const *choices; /* OPT_CHOICE, NULL-terminated */
};

static const char *const no_agent_choices[] = { "fail", "queue", NULL };

#define UINT_OPT(n, lo, hi)                                              \
	{                                                                \
		.name = #n, .kind = OPT_UINT, .min = lo, .max = hi,      \
		.offset = offsetof(struct vxhs_cfg, n), .in_group = true \
	}
#define STR_OPT(n, field, k, grp)                                              \
	{                                                                      \
		.name = n, .kind = k,                                          \
		.offset = offsetof(struct vxhs_cfg, field),                    \
		.size = sizeof(((struct vxhs_cfg *)0)->field), .in_group = grp \
	}

static const struct opt_desc options[] = {
	STR_OPT("group", group, OPT_NAME, false),
	STR_OPT("tls", tls_dir, OPT_PATH, true),
	STR_OPT("gateway", gateway, OPT_NAME, true),
	STR_OPT("copy_domain", copy_domain, OPT_NAME, true),
	{ .name = "plaintext",
	  .kind = OPT_BOOL,
	  .offset = offsetof(struct vxhs_cfg, plaintext),
	  .in_group = true },
	{ .name = "shared_memory",
	  .kind = OPT_BOOL,
	  .offset = offsetof(struct vxhs_cfg, shared_memory),
	  .in_group = true },
	{ .name = "local_reads",
	  .kind = OPT_BOOL,
	  .offset = offsetof(struct vxhs_cfg, local_reads),
	  .in_group = true },
	{ .name = "local_writes",
	  .kind = OPT_BOOL,
	  .offset = offsetof(struct vxhs_cfg, local_writes),
	  .in_group = true },
	{ .name = "kernel_tls",
	  .kind = OPT_BOOL,
	  .offset = offsetof(struct vxhs_cfg, kernel_tls),
	  .in_group = true },
	UINT_OPT(conns, 1, 64),
	UINT_OPT(connect_timeout, 1, 600),
	UINT_OPT(io_timeout, 1, 3600),
	UINT_OPT(failover_timeout, 1, 86400),
	{ .name = "no_agent",
	  .kind = OPT_CHOICE,
	  .offset = offsetof(struct vxhs_cfg, no_agent),
	  .in_group = true,
	  .choices = no_agent_choices },
	/* tcmu-runner's own; it strips it before open, we only accept it. */
	{ .name = "tcmur_cmd_time_out",
	  .kind = OPT_UINT,
	  .max = 86400,
	  .offset = offsetof(struct vxhs_cfg, cmd_time_out) },
};

/* The options a user may give, for the error naming an unknown one; the
 * last is tcmu-runner's own. */
static const char *known_options(char *list, size_t len)
{
	size_t n = 0;

	list[0] = '\0';
	for (size_t i = 0; i + 1 < ARRAY_SIZE(options) && n < len; i++)
		n += (size_t)snprintf(list + n, len - n, "%s%s", n ? ", " : "",
				      options[i].name);
	return list;
}

__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t len,
						      const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static const struct opt_desc *find_option(const char *name, size_t len)
{
	for (size_t i = 0; i < ARRAY_SIZE(options); i++)
		if (strlen(options[i].name) == len &&
		    !strncmp(options[i].name, name, len))
			return &options[i];
	return NULL;
}

static bool is_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
}

static int set_option(struct vxhs_cfg *cfg, const struct opt_desc *o,
		      const char *value, char *err, size_t errlen)
{
	char *field = (char *)cfg + o->offset;
	uint64_t v;

	switch (o->kind) {
	case OPT_UINT:
		if (vxhs_parse_uint(value, o->min, o->max, &v))
			return fail(err, errlen,
				    "%s='%s': not a whole number from %u to %u",
				    o->name, value, o->min, o->max);
		*(unsigned int *)field = (unsigned int)v;
		return 0;
	case OPT_BOOL:
		if (!strcmp(value, "yes") || !strcmp(value, "true") ||
		    !strcmp(value, "1"))
			*(bool *)field = true;
		else if (!strcmp(value, "no") || !strcmp(value, "false") ||
			 !strcmp(value, "0"))
			*(bool *)field = false;
		else
			return fail(err, errlen,
				    "%s='%s': say yes or no (also true, "
				    "false, 1, 0)",
				    o->name, value);
		return 0;
	case OPT_CHOICE:
		for (unsigned int i = 0; o->choices[i]; i++) {
			if (!strcmp(value, o->choices[i])) {
				*(enum vxhs_cfg_no_agent *)field =
					(enum vxhs_cfg_no_agent)i;
				return 0;
			}
		}
		return fail(err, errlen, "%s='%s': say %s or %s", o->name,
			    value, o->choices[0], o->choices[1]);
	case OPT_PATH:
		if (value[0] != '/')
			return fail(err, errlen,
				    "%s='%s': the path must be absolute",
				    o->name, value);
		break;
	case OPT_NAME:
		if (!value[0])
			return fail(err, errlen, "%s=: empty name", o->name);
		for (const char *p = value; *p; p++)
			if (!is_name_char(*p))
				return fail(err, errlen,
					    "%s='%s': character '%c' is not "
					    "allowed (letters, digits, - _ .)",
					    o->name, value, *p);
		break;
	}
	if (strlen(value) >= o->size)
		return fail(err, errlen, "%s='%s': longer than %zu bytes",
			    o->name, value, o->size - 1);
	strcpy(field, value);
	return 0;
}

/* RFC 1123 host names; all-numeric names must be IPv4 addresses. */
static int check_host(const char *host, const char *tok, char *err,
		      size_t errlen)
{
	size_t total = strlen(host), label = 0;
	bool numeric = true;
	struct in_addr a4;

	if (!total)
		return fail(err, errlen, "agent '%s': empty host name", tok);
	if (total > 253)
		return fail(err, errlen,
			    "agent '%s': host name longer than 253 bytes", tok);
	for (const char *p = host; *p; p++) {
		if (*p == '.') {
			if (!label || p[-1] == '-')
				return fail(err, errlen,
					    "agent '%s': malformed host name",
					    tok);
			label = 0;
			continue;
		}
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '-'))
			return fail(err, errlen,
				    "agent '%s': character '%c' is not allowed "
				    "in a host name",
				    tok, *p);
		if ((*p == '-' && !label) || ++label > 63)
			return fail(err, errlen,
				    "agent '%s': malformed host name", tok);
		if (*p < '0' || *p > '9')
			numeric = false;
	}
	if (!label || host[total - 1] == '-')
		return fail(err, errlen, "agent '%s': malformed host name",
			    tok);
	if (numeric && inet_pton(AF_INET, host, &a4) != 1)
		return fail(err, errlen,
			    "agent '%s': '%s' is not a valid IPv4 address", tok,
			    host);
	return 0;
}

/* One agent of the cfgstring: /path, host[/port] or [v6][/port]. */
static int parse_agent(const char *tok, struct vxhs_agent_addr *addr, char *err,
		       size_t errlen)
{
	char host[VXHS_HOST_MAX];
	const char *port = NULL, *end;
	size_t len;
	uint64_t v;

	memset(addr, 0, sizeof(*addr));
	if (!tok[0])
		return fail(err, errlen, "empty agent (check the '@' and '+')");
	if (tok[0] == '/') {
		if (vxhs_agent_addr_parse(tok, addr))
			return fail(err, errlen, "agent '%s': %s", tok,
				    vxhs_errmsg());
		return 0;
	}

	if (tok[0] == '[') {
		struct in6_addr a6;

		end = strchr(tok, ']');
		if (!end)
			return fail(err, errlen,
				    "agent '%s': missing ']' after the IPv6 "
				    "address",
				    tok);
		len = (size_t)(end - tok - 1);
		if (end[1] == '/')
			port = end + 2;
		else if (end[1])
			return fail(err, errlen,
				    "agent '%s': only '/port' may follow ']'",
				    tok);
		if (!len || len >= INET6_ADDRSTRLEN)
			return fail(err, errlen,
				    "agent '%s': not an IPv6 address", tok);
		for (size_t i = 0; i < len; i++)
			host[i] = tok[1 + i] == '-' ? ':' : tok[1 + i];
		host[len] = '\0';
		if (inet_pton(AF_INET6, host, &a6) != 1)
			return fail(err, errlen,
				    "agent '%s': '%s' is not an IPv6 address "
				    "(write each ':' as '-')",
				    tok, host);
	} else {
		end = strchr(tok, '/');
		len = end ? (size_t)(end - tok) : strlen(tok);
		if (end)
			port = end + 1;
		if (len >= sizeof(host))
			return fail(err, errlen,
				    "agent '%s': host name too long", tok);
		memcpy(host, tok, len);
		host[len] = '\0';
		if (check_host(host, tok, err, errlen))
			return -EINVAL;
	}

	addr->port = VXHS_DEFAULT_PORT;
	if (port) {
		if (vxhs_parse_uint(port, 1, 65535, &v))
			return fail(err, errlen,
				    "agent '%s': port '%s' is not a number "
				    "from 1 to 65535",
				    tok, port);
		addr->port = (uint16_t)v;
	}
	strcpy(addr->host, host);
	return 0;
}

static int parse_agents(char *list, struct vxhs_cfg *cfg, char *err,
			size_t errlen)
{
	char *save = NULL, *tok;
	unsigned int n = 0;

	/* strtok_r would skip empty tokens; "a++b" must be an error. */
	for (tok = list;; tok = save) {
		save = strchr(tok, '+');
		if (save)
			*save++ = '\0';
		if (n == VXHS_MAX_AGENTS)
			return fail(err, errlen,
				    "more than %d agents (use a group in the "
				    "agents file for failover lists)",
				    VXHS_MAX_AGENTS);
		if (parse_agent(tok, &cfg->agents[n++], err, errlen))
			return -EINVAL;
		if (!save)
			break;
	}
	cfg->nr_agents = n;
	return 0;
}

static int check_vdisk(const char *id, char *err, size_t errlen)
{
	if (!id[0])
		return fail(err, errlen,
			    "no vdisk id after '" VXHS_CFG_PREFIX "'");
	if (strlen(id) > VXHS_VDISK_ID_MAX)
		return fail(err, errlen,
			    "vdisk id '%s' is longer than %d bytes", id,
			    VXHS_VDISK_ID_MAX);
	if (id[0] == '.')
		return fail(err, errlen, "vdisk id '%s' starts with '.'", id);
	for (const char *p = id; *p; p++)
		if (!is_name_char(*p) && *p != '{' && *p != '}')
			return fail(err, errlen,
				    "vdisk id '%s': character '%c' is not "
				    "allowed (letters, digits, . _ - { })",
				    id, *p);
	/* The wire codec has the last word on what an id is. */
	if (!vxhs_vdisk_id_valid(id))
		return fail(err, errlen, "vdisk id '%s' is not valid", id);
	return 0;
}

/* Names the first character no cfgstring may contain, if any. */
static int check_chars(const char *s, char *err, size_t errlen)
{
	for (const char *p = s; *p; p++) {
		unsigned char c = (unsigned char)*p;
		const char *why = NULL;

		if (c == ':')
			why = "':' (targetcli refuses it; write a port as "
			      "host/port)";
		else if (c == ',')
			why = "',' (the kernel splits on it; join agents "
			      "with '+')";
		else if (c == ' ' || c == '\t')
			why = "a space";
		else if (c < 0x20 || c >= 0x7f)
			why = "a control or non-ASCII character";
		if (why)
			return fail(err, errlen, "character %zu of '%s' is %s",
				    (size_t)(p - s) + 1, s, why);
	}
	return 0;
}

static int load_group(struct vxhs_cfg *cfg, const char *file, const bool *given,
		      char *err, size_t errlen)
{
	g_autoptr(GKeyFile) kf = g_key_file_new();
	g_autoptr(GError) gerr = NULL;
	g_auto(GStrv) keys = NULL, agents = NULL;
	char *value;
	gsize n = 0;
	int ret;

	if (!vxhs_keyfile_load(kf, file, &gerr))
		return fail(err, errlen, "group '%s': cannot read %s: %s",
			    cfg->group, file, gerr->message);
	if (!g_key_file_has_group(kf, cfg->group))
		return fail(err, errlen, "group '%s' is not defined in %s",
			    cfg->group, file);

	agents = g_key_file_get_string_list(kf, cfg->group, "agents", &n, NULL);
	if (!agents || !n)
		return fail(err, errlen,
			    "group '%s' in %s: no agents= list (agents=host; "
			    "host:port; [v6]:port; /socket)",
			    cfg->group, file);
	if (n > VXHS_MAX_AGENTS)
		return fail(err, errlen,
			    "group '%s' in %s: %zu agents, at most %d",
			    cfg->group, file, (size_t)n, VXHS_MAX_AGENTS);
	for (gsize i = 0; i < n; i++) {
		g_strstrip(agents[i]);
		if (vxhs_agent_addr_parse(agents[i], &cfg->agents[i]))
			return fail(err, errlen, "group '%s' in %s: %s",
				    cfg->group, file, vxhs_errmsg());
	}
	cfg->nr_agents = (unsigned int)n;

	keys = g_key_file_get_keys(kf, cfg->group, NULL, NULL);
	for (char **k = keys; k && *k; k++) {
		const struct opt_desc *o;

		if (!strcmp(*k, "agents"))
			continue;
		o = find_option(*k, strlen(*k));
		if (!o || !o->in_group)
			return fail(err, errlen,
				    "group '%s' in %s: unknown key '%s'",
				    cfg->group, file, *k);
		/* The cfgstring's own options win over the group's. */
		if (given[o - options])
			continue;
		value = g_key_file_get_string(kf, cfg->group, *k, NULL);
		if (!value)
			return fail(err, errlen,
				    "group '%s' in %s: cannot read key '%s'",
				    cfg->group, file, *k);
		ret = set_option(cfg, o, g_strstrip(value), err, errlen);
		g_free(value);
		if (ret) {
			char msg[256];

			snprintf(msg, sizeof(msg), "%s", err);
			return fail(err, errlen, "group '%s' in %s: %s",
				    cfg->group, file, msg);
		}
	}
	return 0;
}

static int parse_options(char *opts, struct vxhs_cfg *cfg, bool *given,
			 char *err, size_t errlen)
{
	char *tok, *next, *eq, known[512];

	for (tok = opts; tok; tok = next) {
		const struct opt_desc *o;

		next = strchr(tok, ';');
		if (next)
			*next++ = '\0';
		if (!tok[0])
			return fail(err, errlen,
				    "empty option (two ';' in a row, or one at "
				    "the end)");
		eq = strchr(tok, '=');
		o = find_option(tok, eq ? (size_t)(eq - tok) : strlen(tok));
		if (!o) {
			if (eq)
				*eq = '\0';
			return fail(err, errlen,
				    "unknown option '%s' (known: %s)", tok,
				    known_options(known, sizeof(known)));
		}
		if (!eq && o->kind != OPT_BOOL)
			return fail(err, errlen, "option '%s' needs a value",
				    o->name);
		if (given[o - options])
			return fail(err, errlen, "option '%s' given twice",
				    o->name);
		given[o - options] = true;
		if (set_option(cfg, o, eq ? eq + 1 : "yes", err, errlen))
			return -EINVAL;
	}
	return 0;
}

/* The credentials directory used when tls= is not given. */
static const char *default_tls_dir(void)
{
	const char *dir = getenv(VXHS_CFG_TLS_DIR_ENV);

	return dir && dir[0] ? dir : VXHS_CFG_DEFAULT_TLS_DIR;
}

/*
 * TCP agents get TLS unless plaintext was asked for: with the credentials
 * of tls=, else of the default directory; with neither, the LUN is
 * refused, saying what to do.
 */
static int check_transport(struct vxhs_cfg *cfg, char *err, size_t errlen)
{
	const struct vxhs_agent_addr *tcp = NULL;
	const char *dir;
	char name[VXHS_HOST_MAX + 16];
	struct stat st;

	for (unsigned int i = 0; i < cfg->nr_agents && !tcp; i++)
		if (!cfg->agents[i].is_unix)
			tcp = &cfg->agents[i];
	if (cfg->plaintext && cfg->tls_dir[0])
		return fail(err, errlen,
			    "both plaintext and tls= given: choose one");
	if (cfg->plaintext && cfg->kernel_tls)
		return fail(err, errlen,
			    "kernel_tls=yes with plaintext: there is no TLS "
			    "for the kernel to take over");
	if (!tcp || cfg->plaintext || cfg->tls_dir[0])
		return 0;
	dir = default_tls_dir();
	if (!stat(dir, &st) && S_ISDIR(st.st_mode) &&
	    strlen(dir) < sizeof(cfg->tls_dir)) {
		strcpy(cfg->tls_dir, dir);
		return 0;
	}
	vxhs_agent_addr_format(tcp, name, sizeof(name));
	return fail(err, errlen,
		    "agent %s is reached over TCP, and no TLS credentials "
		    "are set up: put ca.pem, cert.pem and key.pem in %s or "
		    "name a directory with tls=DIR; or add plaintext=yes "
		    "to send data unencrypted to an unauthenticated agent",
		    name, dir);
}

int vxhs_cfg_parse(const char *cfgstring, const char *groups_file,
		   struct vxhs_cfg *cfg, char *err, size_t errlen)
{
	bool given[ARRAY_SIZE(options)] = { false };
	size_t plen = strlen(VXHS_CFG_PREFIX);
	char buf[VXHS_CFG_MAX + 1];
	char *opts, *at;

	memset(cfg, 0, sizeof(*cfg));
	cfg->shared_memory = true;
	cfg->local_reads = true;
	cfg->local_writes = true;
	if (!cfgstring || !cfgstring[0])
		return fail(err, errlen, "empty configuration string");
	if (strlen(cfgstring) > VXHS_CFG_MAX)
		return fail(err, errlen,
			    "configuration is %zu bytes long; at most %d fit "
			    "(put long agent lists in a group)",
			    strlen(cfgstring), VXHS_CFG_MAX);
	if (strncmp(cfgstring, VXHS_CFG_PREFIX, plen))
		return fail(err, errlen,
			    "configuration must start with '" VXHS_CFG_PREFIX
			    "'");
	if (check_chars(cfgstring + plen, err, errlen))
		return -EINVAL;
	strcpy(buf, cfgstring + plen);

	opts = strchr(buf, ';');
	if (opts)
		*opts++ = '\0';
	at = strchr(buf, '@');
	if (at)
		*at++ = '\0';
	if (check_vdisk(buf, err, errlen))
		return -EINVAL;
	strcpy(cfg->vdisk, buf);
	if (at && parse_agents(at, cfg, err, errlen))
		return -EINVAL;
	if (opts && parse_options(opts, cfg, given, err, errlen))
		return -EINVAL;

	if (cfg->group[0]) {
		if (at)
			return fail(err, errlen,
				    "name the agents either after '@' or with "
				    "group=, not both");
		if (!groups_file)
			groups_file = getenv(VXHS_CFG_GROUPS_ENV);
		if (!groups_file || !groups_file[0])
			groups_file = VXHS_CFG_GROUPS_FILE;
		if (load_group(cfg, groups_file, given, err, errlen))
			return -EINVAL;
	} else if (!at) {
		cfg->default_agent = true;
		cfg->nr_agents = 1;
		cfg->agents[0].is_unix = true;
		strcpy(cfg->agents[0].host, VXHS_CFG_DEFAULT_SOCKET);
	}
	if (cfg->no_agent == VXHS_NO_AGENT_QUEUE && cfg->failover_timeout)
		return fail(err, errlen,
			    "no_agent=queue waits without a deadline: "
			    "failover_timeout does not apply");
	return check_transport(cfg, err, errlen);
}

void vxhs_cfg_open_opts(const struct vxhs_cfg *cfg, struct vxhs_open_opts *opts)
{
	vxhs_open_opts_init(opts);
	memcpy(opts->agents, cfg->agents, sizeof(cfg->agents));
	opts->nr_agents = cfg->nr_agents;
	if (cfg->conns)
		opts->conns_per_agent = cfg->conns;
	if (cfg->connect_timeout)
		opts->connect_timeout_ms = cfg->connect_timeout * 1000;
	if (cfg->io_timeout)
		opts->io_timeout_ms = cfg->io_timeout * 1000;
	if (cfg->failover_timeout)
		opts->failover_deadline_ms = cfg->failover_timeout * 1000;
	if (cfg->no_agent == VXHS_NO_AGENT_QUEUE)
		opts->failover_deadline_ms = VXHS_DEADLINE_NEVER;
	/* Points into cfg, which outlives the open (the library copies). */
	opts->tls_dir = cfg->tls_dir[0] ? cfg->tls_dir : NULL;
	opts->allow_plaintext = cfg->plaintext;
	opts->kernel_tls = cfg->kernel_tls;
}

void vxhs_cfg_format_agents(const struct vxhs_cfg *cfg, char *buf, size_t len)
{
	size_t used = 0;

	buf[0] = '\0';
	for (unsigned int i = 0; i < cfg->nr_agents && used < len; i++) {
		char one[VXHS_HOST_MAX + 16];

		vxhs_agent_addr_format(&cfg->agents[i], one, sizeof(one));
		used += (size_t)snprintf(buf + used, len - used, "%s%s",
					 i ? ", " : "", one);
	}
}
