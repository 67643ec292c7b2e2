// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/* The handler's cfgstring grammar and agent groups file. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "cfgstring.h"
#include "common/util.h"

static char groups_file[] = "/tmp/vxhs-groups-XXXXXX";

static const char groups[] =
	"# agents for the tests\n"
	"[prod]\n"
	"agents = 10.0.0.5; storage2:7000 ; [fd00::7]:9999; /run/a.sock\n"
	"conns = 4\n"
	"io_timeout = 20\n"
	"tls = /etc/vxhs/tls/prod\n"
	"[noagents]\n"
	"conns = 2\n"
	"[toomany]\n"
	"agents = a;b;c;d;e\n"
	"[badkey]\n"
	"agents = a\n"
	"colour = blue\n"
	"[badvalue]\n"
	"agents = a\n"
	"conns = lots\n"
	"[badagent]\n"
	"agents = a:99999\n"
	"[lab]\n"
	"agents = 10.0.0.9\n"
	"plaintext = yes\n"
	"[badbool]\n"
	"agents = a\n"
	"plaintext = maybe\n";

static int setup(void **state)
{
	int fd = mkstemp(groups_file);

	(void)state;
	if (fd < 0)
		return -1;
	if (write(fd, groups, sizeof(groups) - 1) != sizeof(groups) - 1)
		return -1;
	close(fd);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(groups_file);
	return 0;
}

static void parse_ok(const char *s, struct vxhs_cfg *cfg)
{
	char err[512] = "";

	if (vxhs_cfg_parse(s, groups_file, cfg, err, sizeof(err)))
		fail_msg("'%s' rejected: %s", s, err);
}

static void test_short_form(void **state)
{
	struct vxhs_cfg cfg;

	(void)state;
	parse_ok("vxhs/disk1", &cfg);
	assert_string_equal(cfg.vdisk, "disk1");
	assert_true(cfg.default_agent);
	assert_int_equal(cfg.nr_agents, 1);
	assert_true(cfg.agents[0].is_unix);
	assert_string_equal(cfg.agents[0].host, VXHS_CFG_DEFAULT_SOCKET);
	assert_int_equal(cfg.conns, 0);

	/* Every character a vdisk id may hold. */
	parse_ok("vxhs/{a-B_9.x}", &cfg);
	assert_string_equal(cfg.vdisk, "{a-B_9.x}");
}

static void test_agents(void **state)
{
	struct vxhs_cfg cfg;

	(void)state;
	parse_ok("vxhs/d@10.0.0.5+storage-2.example.com/7000+[fd00--5]/9998+"
		 "/run/vxhsd/other.sock;plaintext",
		 &cfg);
	assert_false(cfg.default_agent);
	assert_int_equal(cfg.nr_agents, 4);
	assert_string_equal(cfg.agents[0].host, "10.0.0.5");
	assert_int_equal(cfg.agents[0].port, VXHS_DEFAULT_PORT);
	assert_string_equal(cfg.agents[1].host, "storage-2.example.com");
	assert_int_equal(cfg.agents[1].port, 7000);
	assert_string_equal(cfg.agents[2].host, "fd00::5");
	assert_int_equal(cfg.agents[2].port, 9998);
	assert_true(cfg.agents[3].is_unix);
	assert_string_equal(cfg.agents[3].host, "/run/vxhsd/other.sock");

	parse_ok("vxhs/d@[--1];plaintext", &cfg);
	assert_string_equal(cfg.agents[0].host, "::1");
	assert_int_equal(cfg.agents[0].port, VXHS_DEFAULT_PORT);
}

static void test_options(void **state)
{
	struct vxhs_open_opts o;
	struct vxhs_cfg cfg;

	(void)state;
	parse_ok("vxhs/d@h;conns=3;connect_timeout=2;io_timeout=7;"
		 "failover_timeout=90;tcmur_cmd_time_out=30;plaintext",
		 &cfg);
	assert_int_equal(cfg.conns, 3);
	assert_int_equal(cfg.cmd_time_out, 30);
	vxhs_cfg_open_opts(&cfg, &o);
	assert_int_equal(o.nr_agents, 1);
	assert_int_equal(o.conns_per_agent, 3);
	assert_int_equal(o.connect_timeout_ms, 2000);
	assert_int_equal(o.io_timeout_ms, 7000);
	assert_int_equal(o.failover_deadline_ms, 90000);

	/* With no agent: fail (the default) or wait without a deadline. */
	parse_ok("vxhs/d;no_agent=fail", &cfg);
	assert_int_equal(cfg.no_agent, VXHS_NO_AGENT_FAIL);
	parse_ok("vxhs/d;no_agent=queue", &cfg);
	assert_int_equal(cfg.no_agent, VXHS_NO_AGENT_QUEUE);
	vxhs_cfg_open_opts(&cfg, &o);
	assert_int_equal(o.failover_deadline_ms, VXHS_DEADLINE_NEVER);

	/* LUNs that may copy to each other (EXTENDED COPY). */
	parse_ok("vxhs/d;copy_domain=rack-1.a", &cfg);
	assert_string_equal(cfg.copy_domain, "rack-1.a");

	/* Unset options keep the library's defaults. */
	parse_ok("vxhs/d", &cfg);
	assert_string_equal(cfg.copy_domain, "");
	vxhs_cfg_open_opts(&cfg, &o);
	assert_int_equal(o.conns_per_agent, 8);
	assert_int_equal(o.failover_deadline_ms, 60000);
}

static void test_group(void **state)
{
	struct vxhs_cfg cfg;

	(void)state;
	parse_ok("vxhs/d;group=prod", &cfg);
	assert_string_equal(cfg.group, "prod");
	assert_int_equal(cfg.nr_agents, 4);
	assert_string_equal(cfg.agents[1].host, "storage2");
	assert_int_equal(cfg.agents[1].port, 7000);
	assert_string_equal(cfg.agents[2].host, "fd00::7");
	assert_true(cfg.agents[3].is_unix);
	assert_int_equal(cfg.conns, 4);
	assert_int_equal(cfg.io_timeout, 20);
	assert_string_equal(cfg.tls_dir, "/etc/vxhs/tls/prod");

	/* The cfgstring's options win over the group's. */
	parse_ok("vxhs/d;conns=6;group=prod", &cfg);
	assert_int_equal(cfg.conns, 6);
	assert_int_equal(cfg.io_timeout, 20);
}

struct reject {
	const char *cfg;
	const char *reason; /* a piece of the message */
};

static const struct reject rejects[] = {
	{ "", "empty" },
	{ "disk1", "must start with 'vxhs/'" },
	{ "rbd/pool/img", "must start with 'vxhs/'" },
	{ "vxhs/", "no vdisk id" },
	{ "vxhs/@h", "no vdisk id" },
	{ "vxhs/;conns=2", "no vdisk id" },
	{ "vxhs/.hidden", "starts with '.'" },
	{ "vxhs/a/b", "character '/' is not allowed" },
	{ "vxhs/a*b", "character '*' is not allowed" },
	{ "vxhs/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	  "longer than 63" },
	{ "vxhs/d@host:9999", "character 7 of 'd@host:9999' is ':'" },
	{ "vxhs/d@a,b", "','" },
	{ "vxhs/d@a b", "a space" },
	{ "vxhs/d@a\nb", "control" },
	{ "vxhs/d@", "empty agent" },
	{ "vxhs/d@a++b", "empty agent" },
	{ "vxhs/d@a+", "empty agent" },
	{ "vxhs/d@a+b+c+d+e", "more than 4 agents" },
	{ "vxhs/d@h/0", "port '0'" },
	{ "vxhs/d@h/65536", "port '65536'" },
	{ "vxhs/d@h/", "port ''" },
	{ "vxhs/d@h/9x", "port '9x'" },
	{ "vxhs/d@-h", "malformed host name" },
	{ "vxhs/d@h-", "malformed host name" },
	{ "vxhs/d@a..b", "malformed host name" },
	{ "vxhs/d@h_1", "character '_'" },
	{ "vxhs/d@10.0.0.256", "not a valid IPv4 address" },
	{ "vxhs/d@[fd00--5", "missing ']'" },
	{ "vxhs/d@[]", "not an IPv6 address" },
	{ "vxhs/d@[zz--1]", "not an IPv6 address" },
	{ "vxhs/d@[--1]x", "only '/port' may follow ']'" },
	{ "vxhs/d@relative/path.sock", "port 'path.sock'" },
	{ "vxhs/d;", "empty option" },
	{ "vxhs/d;;conns=2", "empty option" },
	{ "vxhs/d;colour=blue", "unknown option 'colour'" },
	/* The list of known options comes from the table: all of them. */
	{ "vxhs/d;colour=blue", "gateway, copy_domain, plaintext" },
	{ "vxhs/d;colour=blue", "kernel_tls, conns" },
	{ "vxhs/d;colour=blue", "no_agent)" },
	{ "vxhs/d;conns", "option 'conns' needs a value" },
	{ "vxhs/d;conns=", "conns=''" },
	{ "vxhs/d;conns=0", "from 1 to 64" },
	{ "vxhs/d;conns=65", "from 1 to 64" },
	{ "vxhs/d;conns=-1", "from 1 to 64" },
	{ "vxhs/d;conns=2;conns=3", "given twice" },
	{ "vxhs/d;io_timeout=99999", "from 1 to 3600" },
	{ "vxhs/d;tls=relative", "must be absolute" },
	{ "vxhs/d;group=", "empty name" },
	{ "vxhs/d;group=a/b", "character '/'" },
	{ "vxhs/d;copy_domain=", "copy_domain=: empty name" },
	{ "vxhs/d;copy_domain=rack*1", "copy_domain='rack*1': character '*'" },
	{ "vxhs/d@h;group=prod", "not both" },
	{ "vxhs/d;group=nosuch", "group 'nosuch' is not defined" },
	{ "vxhs/d;group=noagents", "no agents=" },
	{ "vxhs/d;group=toomany", "5 agents, at most 4" },
	{ "vxhs/d;group=badkey", "unknown key 'colour'" },
	{ "vxhs/d;group=badvalue", "conns='lots'" },
	{ "vxhs/d;group=badagent", "port '99999'" },
	{ "vxhs/d;group=badbool", "plaintext='maybe': say yes or no" },
	{ "vxhs/d@h", "agent h:9999 is reached over TCP, and no TLS "
		      "credentials are set up: put ca.pem, cert.pem and "
		      "key.pem in /nonexistent/tls or name a directory with "
		      "tls=DIR; or add plaintext=yes" },
	{ "vxhs/d@/run/a.sock+h/7000", "agent h:7000 is reached over TCP" },
	{ "vxhs/d@h;plaintext=no", "no TLS credentials" },
	{ "vxhs/d@h;plaintext=maybe", "say yes or no" },
	{ "vxhs/d@h;plaintext;tls=/x", "both plaintext and tls= given" },
	{ "vxhs/d@h;plaintext;kernel_tls=yes",
	  "kernel_tls=yes with plaintext" },
	{ "vxhs/d@h;plaintext;plaintext", "given twice" },
	{ "vxhs/d;local_reads=maybe", "local_reads='maybe': say yes or no" },
	{ "vxhs/d;local_reads=no;local_reads", "given twice" },
	{ "vxhs/d;local_writes=2", "local_writes='2': say yes or no" },
	{ "vxhs/d;local_writes;local_writes=no", "given twice" },
	{ "vxhs/d;kernel_tls=maybe", "kernel_tls='maybe': say yes or no" },
	{ "vxhs/d;no_agent=maybe", "no_agent='maybe': say fail or queue" },
	{ "vxhs/d;no_agent", "option 'no_agent' needs a value" },
	{ "vxhs/d;no_agent=queue;failover_timeout=5",
	  "no_agent=queue waits without a deadline" },
};

static void test_rejects(void **state)
{
	struct vxhs_cfg cfg;
	char err[512];

	(void)state;
	for (size_t i = 0; i < sizeof(rejects) / sizeof(rejects[0]); i++) {
		const struct reject *r = &rejects[i];

		err[0] = '\0';
		if (!vxhs_cfg_parse(r->cfg, groups_file, &cfg, err,
				    sizeof(err)))
			fail_msg("'%s' accepted", r->cfg);
		if (!strstr(err, r->reason))
			fail_msg("'%s': message '%s' lacks '%s'", r->cfg, err,
				 r->reason);
	}
}

static void test_limits(void **state)
{
	char s[VXHS_CFG_MAX + 2], err[256];
	struct vxhs_cfg cfg;
	size_t n;

	(void)state;
	/* Exactly 255 bytes fit; 256 do not. */
	n = (size_t)snprintf(s, sizeof(s), "vxhs/d@/");
	memset(s + n, 'p', VXHS_CFG_MAX - n);
	s[VXHS_CFG_MAX] = '\0';
	/* Too long for a socket path, but not for the cfgstring rules. */
	assert_int_equal(vxhs_cfg_parse(s, groups_file, &cfg, err, sizeof(err)),
			 -EINVAL);
	assert_null(strstr(err, "bytes long"));
	s[VXHS_CFG_MAX] = 'p';
	s[VXHS_CFG_MAX + 1] = '\0';
	assert_int_equal(vxhs_cfg_parse(s, groups_file, &cfg, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "256 bytes long; at most 255"));

	/* NULL and a missing groups file are errors, not crashes. */
	assert_int_equal(vxhs_cfg_parse(NULL, NULL, &cfg, err, sizeof(err)),
			 -EINVAL);
	assert_int_equal(vxhs_cfg_parse("vxhs/d;group=prod",
					"/nonexistent/agents.conf", &cfg, err,
					sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "/nonexistent/agents.conf"));
}

/* Bytes that are not UTF-8, in a value or a key: the file and line. */
static void test_groups_bad_bytes(void **state)
{
	static const char *const texts[] = {
		"[prod]\nagents=h1\xff;h2\n",
		"[prod]\nagents=h1\nconns\xc3=2\n",
		"[prod]\nagents=h1\n\0conns=2\n",
	};
	static const char *const why[] = {
		"line 2: not valid UTF-8",
		"line 3: not valid UTF-8",
		"a NUL byte",
	};
	char path[] = "/tmp/vxhs-groups-bad-XXXXXX", err[256];
	struct vxhs_cfg cfg;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(texts); i++) {
		int fd = mkstemp(path);
		size_t len = strlen(texts[i]) + (i == 2 ? 9 : 0);

		assert_true(fd >= 0);
		assert_int_equal(write(fd, texts[i], len), (ssize_t)len);
		close(fd);
		assert_int_equal(vxhs_cfg_parse("vxhs/d;group=prod", path, &cfg,
						err, sizeof(err)),
				 -EINVAL);
		assert_non_null(strstr(err, path));
		assert_non_null(strstr(err, why[i]));
		unlink(path);
		strcpy(path, "/tmp/vxhs-groups-bad-XXXXXX");
	}
}

static void test_groups_env(void **state)
{
	struct vxhs_cfg cfg;
	char err[256];

	(void)state;
	setenv(VXHS_CFG_GROUPS_ENV, groups_file, 1);
	assert_int_equal(vxhs_cfg_parse("vxhs/d;group=prod", NULL, &cfg, err,
					sizeof(err)),
			 0);
	assert_int_equal(cfg.nr_agents, 4);
	unsetenv(VXHS_CFG_GROUPS_ENV);
}

/*
 * TCP agents: TLS with tls=, else with the default directory when it
 * exists; plaintext only when asked for; UNIX sockets need neither.
 */
static void test_transport(void **state)
{
	char dir[] = "/tmp/vxhs-tls-XXXXXX";
	struct vxhs_open_opts o;
	struct vxhs_cfg cfg;

	(void)state;
	parse_ok("vxhs/d@/run/a.sock", &cfg);
	assert_string_equal(cfg.tls_dir, "");
	assert_false(cfg.plaintext);

	parse_ok("vxhs/d@h;plaintext", &cfg);
	assert_true(cfg.plaintext);
	assert_string_equal(cfg.tls_dir, "");
	vxhs_cfg_open_opts(&cfg, &o);
	assert_true(o.allow_plaintext);
	assert_null(o.tls_dir);
	parse_ok("vxhs/d@h;plaintext=yes", &cfg);
	assert_true(cfg.plaintext);

	/* The local fast path: on unless said otherwise. */
	parse_ok("vxhs/d", &cfg);
	assert_true(cfg.shared_memory);
	assert_true(cfg.local_reads);
	assert_true(cfg.local_writes);
	parse_ok("vxhs/d;local_reads=no;shared_memory=no", &cfg);
	assert_false(cfg.local_reads);
	assert_false(cfg.shared_memory);
	assert_true(cfg.local_writes);
	parse_ok("vxhs/d;local_writes=no", &cfg);
	assert_true(cfg.local_reads);
	assert_false(cfg.local_writes);
	parse_ok("vxhs/d;group=lab", &cfg);
	assert_true(cfg.plaintext);

	parse_ok("vxhs/d@h;tls=/etc/pki/gw", &cfg);
	vxhs_cfg_open_opts(&cfg, &o);
	assert_string_equal(o.tls_dir, "/etc/pki/gw");
	assert_false(o.allow_plaintext);
	assert_false(o.kernel_tls);
	parse_ok("vxhs/d@h;tls=/etc/pki/gw;kernel_tls=yes", &cfg);
	vxhs_cfg_open_opts(&cfg, &o);
	assert_true(o.kernel_tls);

	/* The default directory, once it exists. */
	assert_non_null(mkdtemp(dir));
	setenv(VXHS_CFG_TLS_DIR_ENV, dir, 1);
	parse_ok("vxhs/d@h", &cfg);
	assert_string_equal(cfg.tls_dir, dir);
	parse_ok("vxhs/d@h;plaintext", &cfg);
	assert_string_equal(cfg.tls_dir, "");
	setenv(VXHS_CFG_TLS_DIR_ENV, "/nonexistent/tls", 1);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_short_form),
		cmocka_unit_test(test_agents),
		cmocka_unit_test(test_options),
		cmocka_unit_test(test_group),
		cmocka_unit_test(test_rejects),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_groups_bad_bytes),
		cmocka_unit_test(test_groups_env),
		cmocka_unit_test(test_transport),
	};

	/* Whatever this machine has in /etc/vxhs/tls. */
	setenv(VXHS_CFG_TLS_DIR_ENV, "/nonexistent/tls", 1);
	return cmocka_run_group_tests_name("cfgstring", tests, setup, teardown);
}
