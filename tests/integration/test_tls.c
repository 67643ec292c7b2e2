// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * TLS between the client library and vxhsd, with the test PKI that
 * tests/tls/make-certs.sh builds (the path comes in $VXHS_TEST_PKI): data
 * over TLS, the access list, each refusal with the reason it must name,
 * within a bounded time, and the agent serving the others meanwhile.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/util.h"
#include "harness.h"

#define VDISK_SIZE (8u << 20)
/* Every refusal must come well within the connect timeout given below. */
#define REFUSAL_MAX_NS (5 * NSEC_PER_SEC)

struct env {
	char dir[256];
	char acl[300];
	struct agent agent;
	struct vxhs_ctx *ctx;
};

static const char *pki(const char *name)
{
	static char path[4][512];
	static unsigned int next;
	const char *base = getenv("VXHS_TEST_PKI");
	char *p = path[next++ % 4];

	if (!base)
		fail_msg("VXHS_TEST_PKI is not set (ctest sets it)");
	snprintf(p, sizeof(path[0]), "%s/%s", base, name);
	return p;
}

/* An agent with TLS (credentials dir agent_creds) and this access list. */
static void start_tls_agent(struct env *e, const char *agent_creds)
{
	const char *args[] = { "--tls-dir", pki(agent_creds), "--acl", e->acl,
			       NULL };

	agent_start_args(&e->agent, e->dir, 0, args);
}

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	FILE *f;

	scratch_make(e->dir, sizeof(e->dir));
	vdisk_make(e->dir, "disk-a", VDISK_SIZE);
	vdisk_make(e->dir, "disk-b", VDISK_SIZE);
	snprintf(e->acl, sizeof(e->acl), "%s.acl", e->dir);
	f = fopen(e->acl, "w");
	assert_non_null(f);
	fputs("# gw-a may use disk-a; gw-ro may only read it\n"
	      "dns:gw-a.test   disk-a  rw\n"
	      "dns:gw-ro.test  disk-*  ro\n",
	      f);
	fclose(f);
	start_tls_agent(e, "agent");
	e->ctx = test_ctx();
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;

	vxhs_ctx_free(e->ctx);
	agent_kill(&e->agent, SIGTERM);
	scratch_remove(e->dir);
	unlink(e->acl);
	free(e);
	return 0;
}

/* Opens id on the agent as host:port with the client credentials creds. */
static int open_as(struct env *e, const char *host, const char *creds,
		   const char *id, struct vxhs_vdisk **vd)
{
	struct vxhs_open_opts o;
	char addr[64];

	vxhs_open_opts_init(&o);
	snprintf(addr, sizeof(addr), "%s:%u", host, e->agent.port);
	assert_int_equal(vxhs_agent_addr_parse(addr, &o.agents[0]), 0);
	o.nr_agents = 1;
	o.conns_per_agent = 2;
	o.connect_timeout_ms = 3000;
	o.io_timeout_ms = 3000;
	o.tls_dir = creds ? pki(creds) : NULL;
	o.allow_plaintext = !creds; /* a plaintext client, on purpose */
	return vxhs_vdisk_open(e->ctx, id, &o, vd);
}

/* open must fail with err, quickly, and name the reason. */
static void refused(struct env *e, const char *host, const char *creds,
		    const char *id, int err, const char *reason)
{
	struct vxhs_vdisk *vd = NULL;
	uint64_t start = vxhs_now_ns();
	int ret = open_as(e, host, creds, id, &vd);

	if (ret != err || !strstr(vxhs_errmsg(), reason))
		fail_msg("open %s as %s: got %d '%s', expected %d naming '%s'",
			 id, creds ? creds : "plaintext", ret, vxhs_errmsg(),
			 err, reason);
	assert_true(vxhs_now_ns() - start < REFUSAL_MAX_NS);
}

/* The agent still serves a well-behaved client. */
static void still_serving(struct env *e)
{
	struct vxhs_vdisk *vd;
	char buf[4096];

	assert_int_equal(open_as(e, "127.0.0.1", "gw-a", "disk-a", &vd), 0);
	assert_int_equal(sync_pread(vd, buf, sizeof(buf), 0), 0);
	vxhs_vdisk_close(vd);
}

static void data_over_tls(void **state)
{
	struct env *e = *state;
	struct vxhs_vdisk *vd;
	size_t len = 3u << 20; /* several records and requests */
	uint8_t *out = malloc(len), *in = malloc(len);

	for (size_t i = 0; i < len; i++)
		out[i] = (uint8_t)(i * 7 + 3);
	/* By address and by name: both are in the agent's certificate. */
	assert_int_equal(open_as(e, "127.0.0.1", "gw-a", "disk-a", &vd), 0);
	assert_int_equal(sync_pwrite(vd, out, len, 4096 + 17), 0);
	assert_int_equal(vxhs_flush_sync(vd), 0);
	vxhs_vdisk_close(vd);
	assert_int_equal(open_as(e, "localhost", "gw-ro", "disk-a", &vd), 0);
	assert_int_equal(sync_pread(vd, in, len, 4096 + 17), 0);
	assert_memory_equal(in, out, len);
	vxhs_vdisk_close(vd);
	free(out);
	free(in);
}

/*
 * A burst of writes that TLS reads ahead of a throttled connection: no
 * socket event announces them when the throttle lifts, yet they are
 * served, well within the client's request timeout.
 */
static void burst_past_request_limit(void **state)
{
	struct env *e = *state;
	const char *args[] = { "--tls-dir",	 pki("agent"), "--acl", e->acl,
			       "--max-requests", "2",	       NULL };
	enum { BURST = 96, LEN = 20000 };
	static uint8_t out[BURST][LEN], in[BURST][LEN];
	struct vxhs_vdisk *vd;
	uint64_t start;
	struct tally t;

	agent_kill(&e->agent, SIGTERM);
	agent_start_args(&e->agent, e->dir, 0, args);
	assert_int_equal(open_as(e, "127.0.0.1", "gw-a", "disk-a", &vd), 0);
	tally_init(&t);
	start = vxhs_now_ns();
	for (int i = 0; i < BURST; i++) {
		struct iovec iov = { out[i], LEN };

		memset(out[i], i + 1, LEN);
		tally_add(&t);
		assert_int_equal(vxhs_writev(vd, &iov, 1, (uint64_t)i * LEN,
					     tally_done, &t),
				 0);
	}
	assert_int_equal(tally_wait(&t, 10000), 0);
	assert_int_equal(t.ok, BURST);
	assert_true(vxhs_now_ns() - start < 2 * NSEC_PER_SEC);
	for (int i = 0; i < BURST; i++)
		assert_int_equal(sync_pread(vd, in[i], LEN, (uint64_t)i * LEN),
				 0);
	assert_memory_equal(in, out, sizeof(in));
	vxhs_vdisk_close(vd);
}

static void access_list_enforced(void **state)
{
	struct env *e = *state;
	struct vxhs_vdisk *vd;
	char buf[4096] = { 1 };

	/* gw-a: disk-a only; not even the size of disk-b. */
	refused(e, "127.0.0.1", "gw-a", "disk-b", -EACCES, "Permission denied");
	/* gw-ro: reads, but no write, flush, zeroing or discard. */
	assert_int_equal(open_as(e, "127.0.0.1", "gw-ro", "disk-b", &vd), 0);
	assert_int_equal(sync_pread(vd, buf, sizeof(buf), 0), 0);
	assert_int_equal(sync_pwrite(vd, buf, sizeof(buf), 0), -EACCES);
	assert_int_equal(vxhs_flush_sync(vd), -EACCES);
	assert_int_equal(vxhs_write_zeroes_sync(vd, 0, 4096), -EACCES);
	assert_int_equal(vxhs_discard_sync(vd, 0, 4096), -EACCES);
	assert_int_equal(vxhs_write_same_sync(vd, buf, 512, 0, 4096), -EACCES);
	assert_int_equal(vxhs_copy_sync(vd, "disk-b", 0, 4096, 4096), -EACCES);
	vxhs_vdisk_close(vd);
	/* COPY reads its source with the rights of whoever asks: gw-a may
	 * copy within disk-a, not out of disk-b. */
	assert_int_equal(open_as(e, "127.0.0.1", "gw-a", "disk-a", &vd), 0);
	assert_int_equal(vxhs_copy_sync(vd, "disk-a", 0, 4096, 4096), 0);
	assert_int_equal(vxhs_copy_sync(vd, "disk-b", 0, 4096, 4096), -EACCES);
	vxhs_vdisk_close(vd);
	still_serving(e);
}

static void untrusted_agent(void **state)
{
	struct env *e = *state;

	refused(e, "127.0.0.1", "gw-wrongca", "disk-a", -EKEYREJECTED,
		"The certificate issuer is unknown");
	/* Reported the same way each time it is tried, never a hang. */
	refused(e, "127.0.0.1", "gw-wrongca", "disk-a", -EKEYREJECTED,
		"NOT trusted");
	still_serving(e);
}

static void wrong_agent_name(void **state)
{
	struct env *e = *state;

	agent_kill(&e->agent, SIGTERM);
	start_tls_agent(e, "agent-wrongname");
	refused(e, "127.0.0.1", "gw-a", "disk-a", -EKEYREJECTED,
		"does not match the expected");
}

static void agent_refuses_client(void **state)
{
	struct env *e = *state;

	/* A certificate from another CA: the agent ends the handshake. */
	refused(e, "127.0.0.1", "gw-foreign", "disk-a", -EKEYREJECTED,
		"refused our certificate");
	/* A revoked one, with the agent reading the CA's CRL. */
	agent_kill(&e->agent, SIGTERM);
	start_tls_agent(e, "agent-crl");
	refused(e, "127.0.0.1", "gw-revoked", "disk-a", -EKEYREJECTED,
		"refused our certificate");
	still_serving(e);
}

/* Key purposes, both ways: a certificate for TLS servers only is no
 * gateway's, one for TLS clients only is no agent's. */
static void key_purpose_checked(void **state)
{
	struct env *e = *state;

	refused(e, "127.0.0.1", "gw-serveronly", "disk-a", -EKEYREJECTED,
		"refused our certificate");
	still_serving(e);
	agent_kill(&e->agent, SIGTERM);
	start_tls_agent(e, "agent-clientonly");
	refused(e, "127.0.0.1", "gw-a", "disk-a", -EKEYREJECTED, "NOT trusted");
}

static void own_credentials_checked(void **state)
{
	struct env *e = *state;
	char copy[600], cmd[1300];

	/* Caught before connecting, with the file named. */
	refused(e, "127.0.0.1", "gw-expired", "disk-a", -EKEYEXPIRED,
		"our certificate expired");
	refused(e, "127.0.0.1", "no-such-dir", "disk-a", -ENOENT,
		"no-such-dir: No such file or directory");
	snprintf(copy, sizeof(copy), "%s/creds", e->dir);
	snprintf(cmd, sizeof(cmd), "cp -r '%s' '%s' && chmod 644 '%s/key.pem'",
		 pki("gw-a"), copy, copy);
	assert_int_equal(system(cmd), 0);
	{
		struct vxhs_open_opts o;
		struct vxhs_vdisk *vd;
		char addr[64];

		vxhs_open_opts_init(&o);
		snprintf(addr, sizeof(addr), "127.0.0.1:%u", e->agent.port);
		assert_int_equal(vxhs_agent_addr_parse(addr, &o.agents[0]), 0);
		o.nr_agents = 1;
		o.tls_dir = copy;
		assert_int_equal(vxhs_vdisk_open(e->ctx, "disk-a", &o, &vd),
				 -EPERM);
		assert_non_null(strstr(vxhs_errmsg(), "key.pem: private key "
						      "readable or writable by "
						      "others"));
	}
}

static void plaintext_and_tls_mismatch(void **state)
{
	struct env *e = *state;
	struct agent plain;
	char dir[256];

	/* A plaintext client on the TLS port: the agent drops it. */
	refused(e, "127.0.0.1", NULL, "disk-a", -ECONNRESET,
		"Connection reset");
	/* A TLS client on a plaintext port: the hint says so. */
	scratch_make(dir, sizeof(dir));
	vdisk_make(dir, "disk-a", VDISK_SIZE);
	agent_start(&plain, dir, 0);
	{
		struct agent saved = e->agent;

		e->agent = plain;
		refused(e, "127.0.0.1", "gw-a", "disk-a", -EKEYREJECTED,
			"does the agent speak TLS on this port?");
		e->agent = saved;
	}
	agent_kill(&plain, SIGTERM);
	scratch_remove(dir);
	still_serving(e);
}

static void restart_redoes_handshake(void **state)
{
	struct env *e = *state;
	struct vxhs_open_opts o;
	struct vxhs_vdisk *vd;
	char addr[64], buf[4096];
	unsigned int port = e->agent.port;
	const char *args[] = { "--tls-dir", pki("agent"), "--acl", e->acl,
			       NULL };

	vxhs_open_opts_init(&o);
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", port);
	assert_int_equal(vxhs_agent_addr_parse(addr, &o.agents[0]), 0);
	o.nr_agents = 1;
	o.failover_deadline_ms = 20000;
	o.tls_dir = pki("gw-a");
	assert_int_equal(vxhs_vdisk_open(e->ctx, "disk-a", &o, &vd), 0);
	assert_int_equal(sync_pread(vd, buf, sizeof(buf), 0), 0);
	agent_kill(&e->agent, SIGKILL);
	agent_start_args(&e->agent, e->dir, port, args);
	/* Waits in the retry queue, then goes out over a new handshake. */
	assert_int_equal(sync_pread(vd, buf, sizeof(buf), 0), 0);
	vxhs_vdisk_close(vd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(data_over_tls, setup, teardown),
		cmocka_unit_test_setup_teardown(burst_past_request_limit, setup,
						teardown),
		cmocka_unit_test_setup_teardown(access_list_enforced, setup,
						teardown),
		cmocka_unit_test_setup_teardown(untrusted_agent, setup,
						teardown),
		cmocka_unit_test_setup_teardown(wrong_agent_name, setup,
						teardown),
		cmocka_unit_test_setup_teardown(agent_refuses_client, setup,
						teardown),
		cmocka_unit_test_setup_teardown(key_purpose_checked, setup,
						teardown),
		cmocka_unit_test_setup_teardown(own_credentials_checked, setup,
						teardown),
		cmocka_unit_test_setup_teardown(plaintext_and_tls_mismatch,
						setup, teardown),
		cmocka_unit_test_setup_teardown(restart_redoes_handshake, setup,
						teardown),
	};

	test_select_from_env(tests);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
