// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * handler_vxhs.so loaded as tcmu-runner loads it, driven through its
 * callouts against real vxhsd processes (and the fake v34 agent where a
 * behaviour vxhsd cannot show is needed: no extensions, media errors).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <scsi/scsi.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
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
#include "tcmu_stub.h"

#ifndef WRITE_VERIFY_16
#define WRITE_VERIFY_16 0x8e
#endif

#define MiB	 (1024u * 1024u)
#define LUN_SIZE (8 * MiB)

static struct tcmur_handler *handler;

struct rig {
	char dir[256];
	struct agent agent;
	struct tcmu_device dev;
	bool opened;
};

static void rig_start(struct rig *r, uint64_t vdisk_size)
{
	memset(r, 0, sizeof(*r));
	scratch_make(r->dir, sizeof(r->dir));
	vdisk_make(r->dir, "disk1", vdisk_size);
	agent_start(&r->agent, r->dir, 0);
	stub_log_clear();
}

static int rig_open(struct rig *r, const char *opts, uint64_t lun_size)
{
	char cfg[512];
	int ret;

	snprintf(cfg, sizeof(cfg), "vxhs/disk1@127.0.0.1/%u%s;plaintext",
		 r->agent.port, opts ? opts : "");
	stub_dev_init(&r->dev, cfg, lun_size, 512);
	ret = handler->open(&r->dev, false);
	r->opened = !ret;
	return ret;
}

static void rig_stop(struct rig *r)
{
	if (r->opened)
		handler->close(&r->dev);
	assert_null(r->dev.priv);
	agent_kill(&r->agent, SIGTERM);
	scratch_remove(r->dir);
}

/* Splits buf into n iovecs of uneven sizes, as the kernel's ring does. */
static int rw(struct tcmu_device *dev, struct stub_cmd *c, bool write,
	      void *buf, size_t len, uint64_t off, int n)
{
	struct iovec iov[16];
	size_t done = 0;
	int rc;

	assert_true(n > 0 && n <= 16);
	for (int i = 0; i < n; i++) {
		size_t piece = i == n - 1 ? len - done : (len / n) - 8 * i;

		iov[i].iov_base = (char *)buf + done;
		iov[i].iov_len = piece;
		done += piece;
	}
	stub_cmd_init(c, write ? WRITE_10 : READ_10);
	rc = write ? handler->write(dev, &c->cmd, iov, (size_t)n, len,
				    (off_t)off) :
		     handler->read(dev, &c->cmd, iov, (size_t)n, len,
				   (off_t)off);
	return stub_cmd_wait(c, rc);
}

static int rw_simple(struct tcmu_device *dev, bool write, void *buf, size_t len,
		     uint64_t off)
{
	struct stub_cmd c;

	return rw(dev, &c, write, buf, len, off, 1);
}

static void fill_random(uint8_t *buf, size_t len, unsigned int seed)
{
	for (size_t i = 0; i < len; i++) {
		seed = seed * 1103515245u + 12345u;
		buf[i] = (uint8_t)(seed >> 16);
	}
}

static void file_read(const char *dir, const char *id, void *buf, size_t len,
		      off_t off)
{
	char path[512];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, id);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, buf, len, off), (ssize_t)len);
	close(fd);
}

static bool all_bytes(const uint8_t *buf, size_t len, uint8_t v)
{
	for (size_t i = 0; i < len; i++)
		if (buf[i] != v)
			return false;
	return true;
}

static void test_registration(void **state)
{
	(void)state;
	assert_string_equal(handler->subtype, "vxhs");
	assert_int_equal(handler->nr_threads, 0);
	assert_non_null(strstr(handler->cfg_desc, "Example:"));
	assert_non_null(strstr(handler->cfg_desc, "group="));
	assert_non_null(handler->check_config);
	assert_non_null(handler->open);
	assert_non_null(handler->close);
	assert_non_null(handler->reconfig);
	assert_non_null(handler->read);
	assert_non_null(handler->write);
	assert_non_null(handler->flush);
	assert_non_null(handler->unmap);
	assert_non_null(handler->writesame);
}

static void expect_reason(const char *cfg, const char *needle)
{
	char *reason = NULL;

	if (handler->check_config(cfg, &reason))
		fail_msg("'%s' accepted", cfg);
	assert_non_null(reason);
	if (getenv("STUB_LOG"))
		fprintf(stderr, "'%s' refused: %s\n", cfg, reason);
	if (!strstr(reason, needle))
		fail_msg("'%s': reason '%s' lacks '%s'", cfg, reason, needle);
	free(reason);
}

static void test_check_config(void **state)
{
	struct rig r;
	char cfg[512], *reason = NULL;

	(void)state;
	rig_start(&r, LUN_SIZE);
	snprintf(cfg, sizeof(cfg), "vxhs/disk1@127.0.0.1/%u;plaintext",
		 r.agent.port);
	assert_true(handler->check_config(cfg, &reason));
	/* TCP without TLS only when asked for. */
	snprintf(cfg, sizeof(cfg), "vxhs/disk1@127.0.0.1/%u", r.agent.port);
	expect_reason(cfg, "agent 127.0.0.1:");
	expect_reason(cfg, "is reached over TCP, and no TLS credentials are "
			   "set up: put ca.pem, cert.pem and key.pem in "
			   "/nonexistent/vxhs-tls or name a directory with "
			   "tls=DIR; or add plaintext=yes");
	snprintf(cfg, sizeof(cfg), "vxhs/disk1@%s;tcmur_cmd_time_out=30",
		 r.agent.sock);
	assert_true(handler->check_config(cfg, &reason));

	/* Well formed, but the vdisk or the agent is not there. */
	snprintf(cfg, sizeof(cfg), "vxhs/nosuchdisk@127.0.0.1/%u;plaintext",
		 r.agent.port);
	expect_reason(cfg, "nosuchdisk");
	expect_reason("vxhs/disk1@/nonexistent/agent.sock",
		      "/nonexistent/agent.sock");
	/* Malformed: the parser's reason reaches the caller. */
	expect_reason("vxhs/disk1@host:9999", "':'");
	expect_reason("vxhs/disk1;conns=0", "conns");
	expect_reason(
		"vxhs/disk1@127.0.0.1;tls=/nonexistent/tls",
		"TLS directory /nonexistent/tls: No such file or directory");
	expect_reason("rbd/disk1", "vxhs/");
	rig_stop(&r);
}

static void test_round_trip(void **state)
{
	size_t len = 3 * MiB + 4096;
	uint8_t *out = malloc(len), *in = malloc(len), *file = malloc(len);
	struct stub_cmd c;
	struct rig r;

	(void)state;
	rig_start(&r, LUN_SIZE);
	assert_int_equal(rig_open(&r, NULL, LUN_SIZE), 0);
	fill_random(out, len, 1);
	assert_int_equal(rw(&r.dev, &c, true, out, len, 4096, 7), TCMU_STS_OK);
	assert_int_equal(rw(&r.dev, &c, false, in, len, 4096, 5), TCMU_STS_OK);
	assert_memory_equal(in, out, len);
	/* The bytes are in the agent's file, where they were written. */
	file_read(r.dir, "disk1", file, len, 4096);
	assert_memory_equal(file, out, len);
	/* READ and WRITE of zero blocks transfer nothing and succeed. */
	stub_cmd_init(&c, READ_10);
	assert_int_equal(
		stub_cmd_wait(&c, handler->read(&r.dev, &c.cmd, NULL, 0, 0, 0)),
		TCMU_STS_OK);
	stub_cmd_init(&c, WRITE_10);
	assert_int_equal(stub_cmd_wait(&c, handler->write(&r.dev, &c.cmd, NULL,
							  0, 0, 0)),
			 TCMU_STS_OK);
	rig_stop(&r);
	free(out);
	free(in);
	free(file);
}

/*
 * Many commands in flight on 64 LUNs of one process at once, spread over
 * the I/O threads VXHS_IO_THREADS asks for.
 */
static void test_many_luns_in_flight(void **state)
{
	enum { LUNS = 64, CMDS = 16, BS = 4096 };
	static struct stub_cmd cmds[LUNS][CMDS];
	static uint8_t bufs[LUNS][CMDS][BS], check[BS];
	struct tcmu_device devs[LUNS];
	struct rig r;

	(void)state;
	setenv("VXHS_IO_THREADS", "3", 1);
	rig_start(&r, LUN_SIZE);
	for (int l = 0; l < LUNS; l++) {
		char id[16], cfg[512];

		snprintf(id, sizeof(id), "lun%d", l);
		vdisk_make(r.dir, id, LUN_SIZE);
		snprintf(cfg, sizeof(cfg), "vxhs/%s@%s", id, r.agent.sock);
		stub_dev_init(&devs[l], cfg, LUN_SIZE, 512);
		assert_int_equal(handler->open(&devs[l], false), 0);
	}
	for (int pass = 0; pass < 2; pass++) {
		bool write = pass == 0;

		for (int l = 0; l < LUNS; l++) {
			for (int i = 0; i < CMDS; i++) {
				struct iovec iov = { bufs[l][i], BS };
				struct stub_cmd *c = &cmds[l][i];
				int rc;

				if (write)
					memset(bufs[l][i], l * CMDS + i, BS);
				stub_cmd_init(c, write ? WRITE_10 : READ_10);
				rc = write ? handler->write(&devs[l], &c->cmd,
							    &iov, 1, BS,
							    i * BS) :
					     handler->read(&devs[l], &c->cmd,
							   &iov, 1, BS, i * BS);
				assert_int_equal(rc, TCMU_STS_OK);
			}
		}
		for (int l = 0; l < LUNS; l++)
			for (int i = 0; i < CMDS; i++)
				assert_int_equal(stub_cmd_wait(&cmds[l][i],
							       TCMU_STS_OK),
						 TCMU_STS_OK);
	}
	for (int l = 0; l < LUNS; l++) {
		for (int i = 0; i < CMDS; i++) {
			memset(check, l * CMDS + i, BS);
			assert_memory_equal(bufs[l][i], check, BS);
		}
		handler->close(&devs[l]);
	}
	rig_stop(&r);

	/* A bad setting is named in the log; the default serves. */
	setenv("VXHS_IO_THREADS", "many", 1);
	rig_start(&r, LUN_SIZE);
	assert_int_equal(rig_open(&r, NULL, LUN_SIZE), 0);
	assert_true(stub_log_contains("VXHS_IO_THREADS='many' is not a "
				      "number from 1 to 64"));
	rig_stop(&r);
	unsetenv("VXHS_IO_THREADS");
}

static int run_flush(struct tcmu_device *dev)
{
	struct stub_cmd c;

	stub_cmd_init(&c, SYNCHRONIZE_CACHE);
	return stub_cmd_wait(&c, handler->flush(dev, &c.cmd));
}

static int run_unmap(struct tcmu_device *dev, uint64_t off, uint64_t len)
{
	struct stub_cmd c;

	stub_cmd_init(&c, UNMAP);
	return stub_cmd_wait(&c, handler->unmap(dev, &c.cmd, off, len));
}

static int run_writesame(struct tcmu_device *dev, uint8_t *block, uint64_t off,
			 uint64_t len)
{
	struct iovec iov = { block, 512 };
	struct stub_cmd c;

	stub_cmd_init(&c, WRITE_SAME_16);
	return stub_cmd_wait(&c, handler->writesame(dev, &c.cmd, off, len, &iov,
						    1));
}

/* Writes a pattern, unmaps the middle, and checks what reads back. */
static void check_unmap_zeroes(struct tcmu_device *dev)
{
	uint8_t *buf = malloc(2 * MiB);

	memset(buf, 0x5a, 2 * MiB);
	assert_int_equal(rw_simple(dev, true, buf, 2 * MiB, MiB), TCMU_STS_OK);
	assert_int_equal(run_unmap(dev, MiB + 4096, MiB), TCMU_STS_OK);
	assert_int_equal(rw_simple(dev, false, buf, 2 * MiB, MiB), TCMU_STS_OK);
	assert_true(all_bytes(buf, 4096, 0x5a));
	assert_true(all_bytes(buf + 4096, MiB, 0));
	assert_true(all_bytes(buf + 4096 + MiB, MiB - 4096, 0x5a));
	free(buf);
}

/* A non-zero pattern over more than the fill buffer, and zeroes. */
static void check_writesame(struct tcmu_device *dev)
{
	uint64_t off = 512, len = 3 * MiB + 1536;
	uint8_t block[512], *buf = malloc(len + 1024);

	for (int i = 0; i < 512; i++)
		block[i] = (uint8_t)(i * 7 + 1);
	memset(buf, 0xee, len + 1024);
	assert_int_equal(rw_simple(dev, true, buf, len + 1024, 0), TCMU_STS_OK);
	assert_int_equal(run_writesame(dev, block, off, len), TCMU_STS_OK);
	assert_int_equal(rw_simple(dev, false, buf, len + 1024, 0),
			 TCMU_STS_OK);
	assert_true(all_bytes(buf, 512, 0xee));
	for (uint64_t b = 0; b < len / 512; b++)
		assert_memory_equal(buf + off + b * 512, block, 512);
	assert_true(all_bytes(buf + off + len, 512, 0xee));

	memset(block, 0, sizeof(block));
	assert_int_equal(run_writesame(dev, block, off, len), TCMU_STS_OK);
	assert_int_equal(rw_simple(dev, false, buf, len + 1024, 0),
			 TCMU_STS_OK);
	assert_true(all_bytes(buf + off, len, 0));
	assert_true(all_bytes(buf, 512, 0xee));
	free(buf);
}

static void test_vxhsd_extensions(void **state)
{
	uint8_t buf[4096];
	struct stub_cmd c;
	struct iovec iov = { buf, sizeof(buf) };
	unsigned long flushes, same;
	struct rig r;

	(void)state;
	rig_start(&r, LUN_SIZE);
	assert_int_equal(rig_open(&r, NULL, LUN_SIZE), 0);
	/* vxhsd offers FLUSH and DISCARD: cache and thin provisioning on. */
	assert_true(r.dev.write_cache);
	assert_true(r.dev.unmap_enabled);
	assert_int_equal(r.dev.opt_unmap_gran, 8);
	assert_true(r.dev.unmap_gran_align > 0);
	assert_false(r.dev.split_unmaps);
	/* SYNCHRONIZE CACHE is a FLUSH the agent executes, not a shortcut. */
	flushes = agent_counter(&r.agent, "flush");
	assert_int_equal(run_flush(&r.dev), TCMU_STS_OK);
	assert_int_equal(agent_counter(&r.agent, "flush"), flushes + 1);

	/* WRITE(10) with FUA: written, then flushed, then completed. */
	memset(buf, 0x77, sizeof(buf));
	stub_cmd_init(&c, WRITE_10);
	c.cdb[1] = 0x08;
	assert_int_equal(stub_cmd_wait(&c, handler->write(&r.dev, &c.cmd, &iov,
							  1, sizeof(buf), 0)),
			 TCMU_STS_OK);
	assert_int_equal(agent_counter(&r.agent, "flush"), flushes + 2);
	check_unmap_zeroes(&r.dev);
	/* A pattern goes as one WRITE_SAME the agent writes out; zeroes as
	 * WRITE_ZEROES. */
	same = agent_counter(&r.agent, "write-same");
	check_writesame(&r.dev);
	assert_int_equal(agent_counter(&r.agent, "write-same"), same + 1);
	rig_stop(&r);
}

/* A LUN on the fake v34 agent. */
static void fake_open(struct fake_agent *f, enum fake_mode mode,
		      struct tcmu_device *dev)
{
	char cfg[128];

	fake_start(f, mode, LUN_SIZE);
	snprintf(cfg, sizeof(cfg), "vxhs/legacy@127.0.0.1/%u;plaintext",
		 f->port);
	stub_dev_init(dev, cfg, LUN_SIZE, 512);
	assert_int_equal(handler->open(dev, false), 0);
}

/* An agent with nothing but v34: no cache, zeroes written for UNMAP. */
static void test_v34_agent(void **state)
{
	struct tcmulib_cfg_info wc = { .type = TCMULIB_CFG_WRITE_CACHE,
				       .data.write_cache = true };
	struct fake_agent f;
	struct tcmu_device dev;

	(void)state;
	fake_open(&f, FAKE_GOOD, &dev);
	assert_false(dev.write_cache);
	assert_false(dev.unmap_enabled);
	assert_int_equal(run_flush(&dev), TCMU_STS_OK);
	check_unmap_zeroes(&dev);
	check_writesame(&dev);
	assert_int_equal(f.unknown_opcodes, 0); /* only v34 was sent */
	stub_log_clear();
	assert_int_equal(handler->reconfig(&dev, &wc), -EOPNOTSUPP);
	assert_true(stub_log_contains("no FLUSH"));
	handler->close(&dev);
	fake_stop(&f);
}

static void test_media_errors(void **state)
{
	uint8_t buf[4096];
	struct fake_agent f;
	struct tcmu_device dev;
	struct stub_cmd c;

	(void)state;
	fake_open(&f, FAKE_MEDIA_ERROR, &dev);
	assert_int_equal(rw(&dev, &c, false, buf, sizeof(buf), 0, 1),
			 TCMU_STS_RD_ERR);
	assert_int_equal(rw(&dev, &c, true, buf, sizeof(buf), 0, 1),
			 TCMU_STS_WR_ERR);
	/* A media error is not a lost agent: no failover, no reopen. */
	assert_int_equal(atomic_load(&dev.conn_lost), 0);
	assert_int_equal(f.failover_probes, 0);
	handler->close(&dev);
	fake_stop(&f);
}

/*
 * What an agent answers reaches the initiator as the status SCSI has for
 * it (vxhsd's fault injection makes it answer so): media errors by
 * direction, no space as DATA PROTECT / SPACE ALLOCATION FAILED, EAGAIN
 * as TASK SET FULL; a slow FLUSH is waited for; a truncated answer is
 * retried. None of it is a lost backend.
 */
static void test_agent_faults(void **state)
{
	uint8_t buf[4096];
	struct stub_cmd c;
	struct rig r;

	(void)state;
	rig_start(&r, LUN_SIZE);
	assert_int_equal(rig_open(&r, NULL, LUN_SIZE), 0);
	agent_fault(&r.agent, "fail read disk1 EIO 1");
	assert_int_equal(rw(&r.dev, &c, false, buf, sizeof(buf), 0, 1),
			 TCMU_STS_RD_ERR);
	agent_fault(&r.agent, "fail write disk1 EIO 1");
	assert_int_equal(rw(&r.dev, &c, true, buf, sizeof(buf), 0, 1),
			 TCMU_STS_WR_ERR);
	agent_fault(&r.agent, "fail write disk1 ENOSPC 1");
	assert_int_equal(rw(&r.dev, &c, true, buf, sizeof(buf), 0, 1),
			 TCMU_STS_PASSTHROUGH_ERR);
	assert_int_equal(stub_sense_key(&c), DATA_PROTECT);
	assert_int_equal(stub_sense_asc(&c), 0x2707);
	agent_fault(&r.agent, "fail write disk1 EAGAIN 1");
	assert_int_equal(rw(&r.dev, &c, true, buf, sizeof(buf), 0, 1),
			 TCMU_STS_NO_RESOURCE);
	agent_fault(&r.agent, "fail flush disk1 EIO 1");
	assert_int_equal(run_flush(&r.dev), TCMU_STS_WR_ERR);
	agent_fault(&r.agent, "delay flush disk1 200 1");
	assert_int_equal(run_flush(&r.dev), TCMU_STS_OK);
	/* Outside the protocol's set: a media error, not a lost LUN. */
	agent_fault(&r.agent, "fail read disk1 ENOTCONN 1");
	assert_int_equal(rw(&r.dev, &c, false, buf, sizeof(buf), 0, 1),
			 TCMU_STS_RD_ERR);
	agent_fault(&r.agent, "fail write disk1 902 1");
	assert_int_equal(rw(&r.dev, &c, true, buf, sizeof(buf), 0, 1),
			 TCMU_STS_WR_ERR);
	agent_fault(&r.agent, "fail read disk1 ECANCELED 1");
	assert_int_equal(rw(&r.dev, &c, false, buf, sizeof(buf), 0, 1),
			 TCMU_STS_RD_ERR);
	agent_fault(&r.agent, "truncate read disk1 1");
	assert_int_equal(rw(&r.dev, &c, false, buf, sizeof(buf), 0, 1),
			 TCMU_STS_OK);
	assert_int_equal(atomic_load(&r.dev.conn_lost), 0);
	rig_stop(&r);
}

static bool cmd_done(struct stub_cmd *c)
{
	bool done;

	pthread_mutex_lock(&c->lock);
	done = c->done;
	pthread_mutex_unlock(&c->lock);
	return done;
}

/*
 * An agent that hangs (answers held: connected, reading, silent), stops
 * reading, or drops its connections: commands wait and then complete, the
 * LUN is not lost.
 */
static void test_agent_hangs(void **state)
{
	static uint8_t buf[4096];
	struct iovec iov = { buf, sizeof(buf) };
	struct stub_cmd c;
	struct rig r;
	int rc;

	(void)state;
	rig_start(&r, LUN_SIZE);
	assert_int_equal(rig_open(&r, ";io_timeout=1;conns=2", LUN_SIZE), 0);
	agent_fault(&r.agent, "pause");
	stub_cmd_init(&c, READ_10);
	rc = handler->read(&r.dev, &c.cmd, &iov, 1, sizeof(buf), 0);
	assert_int_equal(rc, TCMU_STS_OK);
	/* Held past its io_timeout: still waiting, not failed. */
	usleep(1500000);
	assert_false(cmd_done(&c));
	agent_fault(&r.agent, "resume");
	assert_int_equal(stub_cmd_wait(&c, rc), TCMU_STS_OK);

	agent_fault(&r.agent, "stop-reading all");
	assert_int_equal(rw(&r.dev, &c, false, buf, sizeof(buf), 0, 1),
			 TCMU_STS_OK);
	agent_fault(&r.agent, "drop all");
	assert_int_equal(rw(&r.dev, &c, true, buf, sizeof(buf), 0, 1),
			 TCMU_STS_OK);
	assert_int_equal(atomic_load(&r.dev.conn_lost), 0);
	rig_stop(&r);
}

/*
 * Close while commands wait for failover, at moments around the failover
 * deadline: before it, as it expires (waiting commands fail, the loss is
 * reported, a reconnect thread starts) and after it (the reconnect thread
 * retrying). Every command completes exactly once, by the time close
 * returns; nothing of the LUN is touched after (ASan and TSan run this).
 * The narrowest interleaving (the deadline's tick between close taking
 * the vdisk away and the I/O thread closing it) is not forced here; the
 * handler rules it out by construction (device.c, handler_close).
 */
/* Ended with NOT READY, LOGICAL UNIT COMMUNICATION FAILURE: no agent. */
static bool is_no_agent(struct stub_cmd *c, int rc)
{
	return stub_cmd_wait(c, rc) == TCMU_STS_PASSTHROUGH_ERR &&
	       stub_sense_key(c) == NOT_READY && stub_sense_asc(c) == 0x0800;
}

static void test_close_during_failover(void **state)
{
	static const unsigned int delays_ms[] = { 0,	700,  950, 1000,
						  1050, 1300, 2500 };
	enum { CMDS = 4 };
	static uint8_t bufs[CMDS][4096];

	(void)state;
	for (size_t d = 0; d < ARRAY_SIZE(delays_ms); d++) {
		struct stub_cmd cmds[CMDS];
		int rcs[CMDS];
		struct rig r;

		rig_start(&r, LUN_SIZE);
		assert_int_equal(
			rig_open(&r, ";failover_timeout=1;connect_timeout=1",
				 LUN_SIZE),
			0);
		agent_kill(&r.agent, SIGKILL);
		for (int i = 0; i < CMDS; i++) {
			struct iovec iov = { bufs[i], 4096 };

			stub_cmd_init(&cmds[i], READ_10);
			rcs[i] = handler->read(&r.dev, &cmds[i].cmd, &iov, 1,
					       4096, i * 4096);
		}
		usleep(delays_ms[d] * 1000);
		handler->close(&r.dev);
		r.opened = false;
		for (int i = 0; i < CMDS; i++) {
			pthread_mutex_lock(&cmds[i].lock);
			/* completed by the time close returned */
			assert_true(cmds[i].done || rcs[i] != TCMU_STS_OK);
			pthread_mutex_unlock(&cmds[i].lock);
			/* cancelled by close, or past the deadline */
			assert_true(is_no_agent(&cmds[i], rcs[i]) ||
				    stub_cmd_wait(&cmds[i], rcs[i]) ==
					    TCMU_STS_BUSY);
		}
		rig_stop(&r);
	}
}

/* The vdisk shrinks under the LUN: reads past its end are out of range. */
static void test_out_of_range(void **state)
{
	uint8_t buf[4096];
	char path[512];
	struct rig r;

	(void)state;
	rig_start(&r, LUN_SIZE);
	assert_int_equal(rig_open(&r, NULL, LUN_SIZE), 0);
	snprintf(path, sizeof(path), "%s/disk1", r.dir);
	assert_int_equal(truncate(path, LUN_SIZE / 2), 0);
	assert_int_equal(rw_simple(&r.dev, false, buf, sizeof(buf),
				   LUN_SIZE - sizeof(buf)),
			 TCMU_STS_RANGE);
	assert_int_equal(rw_simple(&r.dev, false, buf, sizeof(buf), 0),
			 TCMU_STS_OK);
	rig_stop(&r);
}

static void test_sizes(void **state)
{
	struct tcmulib_cfg_info grow = { .type = TCMULIB_CFG_DEV_SIZE };
	uint8_t buf[4096];
	char path[512];
	struct rig r;

	(void)state;
	rig_start(&r, LUN_SIZE);
	/* Larger than the vdisk: refused, and the operator is told why. */
	assert_int_equal(rig_open(&r, NULL, 2 * LUN_SIZE), -EINVAL);
	assert_true(stub_log_contains("larger than the vdisk"));
	assert_true(stub_log_contains("vxhsadm resize"));
	/* Smaller: the LUN is the vdisk's first bytes. */
	assert_int_equal(rig_open(&r, NULL, LUN_SIZE / 2), 0);

	/* Grown within the vdisk, then beyond it, then with the vdisk. */
	grow.data.dev_size = LUN_SIZE;
	assert_int_equal(handler->reconfig(&r.dev, &grow), 0);
	grow.data.dev_size = 2 * LUN_SIZE;
	assert_int_equal(handler->reconfig(&r.dev, &grow), -EINVAL);
	snprintf(path, sizeof(path), "%s/disk1", r.dir);
	assert_int_equal(truncate(path, 2 * LUN_SIZE), 0);
	assert_int_equal(handler->reconfig(&r.dev, &grow), 0);
	r.dev.num_lbas = 2 * LUN_SIZE / 512; /* what tcmu-runner then does */
	memset(buf, 0x3c, sizeof(buf));
	assert_int_equal(rw_simple(&r.dev, true, buf, sizeof(buf),
				   2 * LUN_SIZE - sizeof(buf)),
			 TCMU_STS_OK);
	rig_stop(&r);
}

/* A new cfgstring moves the LUN to another agent and vdisk. */
static void test_reconfig_cfgstring(void **state)
{
	struct tcmulib_cfg_info rc = { .type = TCMULIB_CFG_DEV_CFGSTR };
	uint8_t buf[4096];
	struct rig a, b;
	char cfg[512];

	(void)state;
	rig_start(&a, LUN_SIZE);
	rig_start(&b, LUN_SIZE);
	assert_int_equal(rig_open(&a, NULL, LUN_SIZE), 0);
	memset(buf, 0x22, sizeof(buf));
	assert_int_equal(rw_simple(&a.dev, true, buf, sizeof(buf), 0),
			 TCMU_STS_OK);

	snprintf(cfg, sizeof(cfg), "vxhs/disk1@%s;conns=2", b.agent.sock);
	rc.data.dev_cfgstring = cfg;
	assert_int_equal(handler->reconfig(&a.dev, &rc), 0);
	assert_int_equal(rw_simple(&a.dev, false, buf, sizeof(buf), 0),
			 TCMU_STS_OK);
	assert_true(all_bytes(buf, sizeof(buf), 0)); /* b's vdisk */

	/* A bad one changes nothing. */
	rc.data.dev_cfgstring = "vxhs/disk1@/nonexistent.sock";
	assert_int_not_equal(handler->reconfig(&a.dev, &rc), 0);
	rc.data.dev_cfgstring = "vxhs/disk1;conns=99";
	assert_int_equal(handler->reconfig(&a.dev, &rc), -EINVAL);
	assert_true(stub_log_contains("conns"));
	assert_int_equal(rw_simple(&a.dev, false, buf, sizeof(buf), 0),
			 TCMU_STS_OK);
	rig_stop(&a);
	rig_stop(&b);
}

/*
 * The only agent dies: commands wait out failover_timeout, then end with
 * NOT READY, LOGICAL UNIT COMMUNICATION FAILURE (as do new ones, at once),
 * tcmu-runner is told once, and I/O resumes once the agent is back, with
 * the lock the gateway held.
 */
static void test_agent_killed(void **state)
{
	enum { CMDS = 8 };
	static uint8_t bufs[CMDS][4096];
	struct stub_cmd cmds[CMDS], late;
	struct iovec one = { bufs[0], 4096 };
	int rcs[CMDS];
	unsigned int port;
	uint64_t t0, waited;
	struct rig r;

	(void)state;
	rig_start(&r, LUN_SIZE);
	assert_int_equal(
		rig_open(&r,
			 ";failover_timeout=2;connect_timeout=1;gateway=gw-a",
			 LUN_SIZE),
		0);
	assert_int_equal(handler->lock(&r.dev, 1), TCMU_STS_OK);
	port = r.agent.port;
	agent_kill(&r.agent, SIGKILL);
	t0 = vxhs_now_ns();
	for (int i = 0; i < CMDS; i++) {
		struct iovec iov = { bufs[i], 4096 };

		stub_cmd_init(&cmds[i], READ_10);
		/* Not into cmds[i].status: the completion writes that. */
		rcs[i] = handler->read(&r.dev, &cmds[i].cmd, &iov, 1, 4096,
				       i * 4096);
	}
	for (int i = 0; i < CMDS; i++)
		assert_true(is_no_agent(&cmds[i], rcs[i]));
	/* At the documented time: not before failover_timeout. */
	waited = vxhs_now_ns() - t0;
	assert_true(waited >= 1900 * NSEC_PER_MSEC);
	assert_int_equal(atomic_load(&r.dev.conn_lost), 1);
	assert_true(stub_log_contains("until the vdisk is reopened"));
	/* A new command does not wait again. */
	stub_cmd_init(&late, READ_10);
	t0 = vxhs_now_ns();
	assert_true(is_no_agent(&late, handler->read(&r.dev, &late.cmd, &one, 1,
						     4096, 0)));
	assert_true(vxhs_now_ns() - t0 < 1000 * NSEC_PER_MSEC);

	/* The handler reopens by itself once the agent is back (tcmu-runner
	 * would not for a loopback-only LUN)... */
	agent_start(&r.agent, r.dir, port);
	for (int i = 0; i < 100; i++) {
		if (rw_simple(&r.dev, false, bufs[0], 4096, 0) == TCMU_STS_OK)
			break;
		usleep(100000);
	}
	assert_int_equal(rw_simple(&r.dev, false, bufs[0], 4096, 0),
			 TCMU_STS_OK);
	/* The lock is still this gateway's, in the storage and here. */
	assert_int_equal(handler->get_lock_state(&r.dev),
			 TCMUR_DEV_LOCK_WRITE_LOCKED);
	assert_int_equal(rw_simple(&r.dev, true, bufs[0], 4096, 0),
			 TCMU_STS_OK);
	assert_int_equal(atomic_load(&r.dev.lock_lost), 0);

	/* ...and tcmu-runner's own close and reopen work too. */
	handler->close(&r.dev);
	r.opened = false;
	assert_int_equal(handler->open(&r.dev, true), 0);
	r.opened = true;
	assert_int_equal(rw_simple(&r.dev, false, bufs[0], 4096, 0),
			 TCMU_STS_OK);
	rig_stop(&r);
}

/*
 * no_agent=queue: commands wait for an agent however long it is gone, and
 * complete once it is back. The outage policy is checked against the
 * backstore's cmd_time_out, which the kernel enforces whatever we do.
 */
static void test_outage_policies(void **state)
{
	static uint8_t buf[4096];
	struct iovec iov = { buf, sizeof(buf) };
	struct stub_cmd c;
	unsigned int port;
	struct rig r;
	int rc;

	(void)state;
	rig_start(&r, LUN_SIZE);
	assert_int_equal(
		rig_open(&r, ";no_agent=queue;connect_timeout=1", LUN_SIZE), 0);
	/* The stub's backstore has the kernel's default of 30 s. */
	assert_true(stub_log_contains("no_agent=queue, but the backstore's "
				      "cmd_time_out (30 s) still ends "
				      "commands"));
	port = r.agent.port;
	agent_kill(&r.agent, SIGKILL);
	stub_cmd_init(&c, READ_10);
	rc = handler->read(&r.dev, &c.cmd, &iov, 1, 4096, 0);
	assert_int_equal(rc, TCMU_STS_OK);
	sleep(3); /* longer than any failover_timeout of these tests */
	pthread_mutex_lock(&c.lock);
	assert_false(c.done);
	pthread_mutex_unlock(&c.lock);
	agent_start(&r.agent, r.dir, port);
	assert_int_equal(stub_cmd_wait(&c, rc), TCMU_STS_OK);
	assert_int_equal(atomic_load(&r.dev.conn_lost), 0);
	rig_stop(&r);

	/* A failover_timeout the kernel's timer would beat is named. */
	rig_start(&r, LUN_SIZE);
	assert_int_equal(rig_open(&r, ";failover_timeout=40", LUN_SIZE), 0);
	assert_true(stub_log_contains("failover_timeout (40 s) is not below "
				      "the backstore's cmd_time_out (30 s)"));
	rig_stop(&r);
}

/* A CDB through handle_cmd; the status it ends with. */
static int scsi_cmd(struct tcmu_device *dev, struct stub_cmd *c,
		    const uint8_t *cdb, size_t cdb_len, struct iovec *iov,
		    size_t iov_cnt)
{
	stub_cmd_init(c, cdb[0]);
	memcpy(c->cdb, cdb, cdb_len);
	c->lib.iovec = iov;
	c->lib.iov_cnt = iov_cnt;
	return handler->handle_cmd(dev, &c->cmd);
}

static uint32_t sense_info(const struct stub_cmd *c)
{
	const uint8_t *s = c->lib.sense_buf;

	return (uint32_t)s[3] << 24 | (uint32_t)s[4] << 16 |
	       (uint32_t)s[5] << 8 | s[6];
}

/*
 * What the handler answers itself before tcmu-runner: protection fields
 * on a LUN without protection information, and VERIFY (10/16) with each
 * BYTCHK, checked against the vdisk's bytes.
 */
static void test_scsi_conformance(void **state)
{
	static uint8_t data[8 * 512], out[8 * 512];
	struct iovec iov = { out, sizeof(out) }, one = { out, 512 };
	uint8_t read_rdprotect[10] = { READ_10, 0x20, 0, 0, 0, 0, 0, 0, 1, 0 };
	uint8_t write16_wrprotect[16] = { WRITE_16, 0x40 };
	uint8_t read_plain[10] = { READ_10, 0, 0, 0, 0, 0, 0, 0, 1, 0 };
	/* VERIFY (10): LBA 8, 8 blocks */
	uint8_t v10[10] = { VERIFY, 0, 0, 0, 0, 8, 0, 0, 8, 0 };
	uint8_t v16[16] = {
		0x8f, 0x02, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 8, 0, 0
	};
	struct stub_cmd c;
	struct rig r;

	(void)state;
	rig_start(&r, LUN_SIZE);
	assert_int_equal(rig_open(&r, NULL, LUN_SIZE), 0);
	fill_random(data, sizeof(data), 5);
	assert_int_equal(rw_simple(&r.dev, true, data, sizeof(data), 8 * 512),
			 TCMU_STS_OK);

	assert_int_equal(scsi_cmd(&r.dev, &c, read_rdprotect, 10, NULL, 0),
			 TCMU_STS_INVALID_CDB);
	assert_int_equal(scsi_cmd(&r.dev, &c, write16_wrprotect, 16, NULL, 0),
			 TCMU_STS_INVALID_CDB);
	assert_int_equal(scsi_cmd(&r.dev, &c, read_plain, 10, NULL, 0),
			 TCMU_STS_NOT_HANDLED);

	/* BYTCHK 0: the medium is read, nothing compared. */
	memset(out, 0, sizeof(out));
	assert_int_equal(scsi_cmd(&r.dev, &c, v10, 10, NULL, 0), TCMU_STS_OK);
	/* BYTCHK 1: equal, then one byte off at 700. */
	v10[1] = 0x02;
	memcpy(out, data, sizeof(out));
	assert_int_equal(scsi_cmd(&r.dev, &c, v10, 10, &iov, 1), TCMU_STS_OK);
	out[700] ^= 1;
	assert_int_equal(scsi_cmd(&r.dev, &c, v10, 10, &iov, 1),
			 TCMU_STS_MISCOMPARE);
	assert_int_equal(sense_info(&c), 700);
	assert_int_equal(scsi_cmd(&r.dev, &c, v16, 16, &iov, 1),
			 TCMU_STS_MISCOMPARE);
	/* A data-out buffer shorter than the range: refused, not compared
	 * in part with nothing. */
	one.iov_base = out;
	assert_int_equal(scsi_cmd(&r.dev, &c, v10, 10, &one, 1),
			 TCMU_STS_INVALID_CDB);
	/* BYTCHK 3: one block against each; the blocks differ. With a
	 * block sent for each, it is refused the same way. */
	v10[1] = 0x06;
	assert_int_equal(scsi_cmd(&r.dev, &c, v10, 10, &one, 1),
			 TCMU_STS_MISCOMPARE);
	assert_int_equal(scsi_cmd(&r.dev, &c, v10, 10, &iov, 1),
			 TCMU_STS_INVALID_CDB);
	/* VRPROTECT, BYTCHK 2, beyond the end, no blocks. */
	v10[1] = 0x20;
	assert_int_equal(scsi_cmd(&r.dev, &c, v10, 10, NULL, 0),
			 TCMU_STS_INVALID_CDB);
	v10[1] = 0x04;
	assert_int_equal(scsi_cmd(&r.dev, &c, v10, 10, NULL, 0),
			 TCMU_STS_INVALID_CDB);
	v10[1] = 0;
	v10[2] = 0xff;
	assert_int_equal(scsi_cmd(&r.dev, &c, v10, 10, NULL, 0),
			 TCMU_STS_RANGE);
	v10[2] = 0;
	v10[8] = 0;
	assert_int_equal(scsi_cmd(&r.dev, &c, v10, 10, NULL, 0), TCMU_STS_OK);
	rig_stop(&r);
}

/*
 * Left to tcmu-runner, but not as they were: the data-in buffer of an
 * emulated command is zeroed first (the kernel sends all of it, and
 * tcmu-runner writes only its answer), DPO and FUA are refused as MODE
 * SENSE does not offer them, COMPARE AND WRITE's buffer must match its
 * CDB, WRITE SAME's ANCHOR is refused and SYNCHRONIZE CACHE checks its
 * range.
 */
static void test_scsi_before_emulation(void **state)
{
	static uint8_t buf[260];
	struct iovec iov[2] = { { buf, 100 }, { buf + 100, 160 } };
	uint8_t inquiry[6] = { INQUIRY, 0, 0, 1, 4, 0 };
	uint8_t mode_sense[10] = { MODE_SENSE_10, 0, 0x3f, 0, 0, 0, 0, 1, 4, 0 };
	uint8_t write10[10] = { WRITE_10, 0, 0, 0, 0, 0, 0, 0, 1, 0 };
	uint8_t caw[16] = { COMPARE_AND_WRITE };
	uint8_t ws10[10] = { WRITE_SAME, 0, 0, 0, 0, 0, 0, 0, 1, 0 };
	uint8_t ws16[16] = { WRITE_SAME_16, 0, [13] = 1 };
	uint8_t wv16[16] = { WRITE_VERIFY_16, 0, [13] = 1 };
	uint8_t verify10[10] = { VERIFY, 0, 0, 0, 0, 0, 0, 0, 1, 0 };
	static uint8_t caw_data[2 * 512];
	struct iovec caw_iov = { caw_data, sizeof(caw_data) };
	/* SYNCHRONIZE CACHE (16): the last block, then one past it */
	uint8_t sync16[16] = { SYNCHRONIZE_CACHE_16 };
	uint64_t last = LUN_SIZE / 512 - 1;
	struct stub_cmd c;
	struct rig r;

	(void)state;
	rig_start(&r, LUN_SIZE);
	assert_int_equal(rig_open(&r, NULL, LUN_SIZE), 0);

	memset(buf, 0xa5, sizeof(buf));
	assert_int_equal(scsi_cmd(&r.dev, &c, inquiry, 6, iov, 2),
			 TCMU_STS_NOT_HANDLED);
	for (size_t i = 0; i < sizeof(buf); i++)
		assert_int_equal(buf[i], 0);
	memset(buf, 0xa5, sizeof(buf));
	assert_int_equal(scsi_cmd(&r.dev, &c, mode_sense, 10, iov, 2),
			 TCMU_STS_NOT_HANDLED);
	assert_int_equal(buf[259], 0);
	/* A data-out buffer is never touched. */
	memset(buf, 0xa5, sizeof(buf));
	assert_int_equal(scsi_cmd(&r.dev, &c, write10, 10, iov, 1),
			 TCMU_STS_NOT_HANDLED);
	assert_int_equal(buf[0], 0xa5);

	/* DPO or FUA, which MODE SENSE does not offer; COMPARE AND WRITE
	 * whose data-out buffer is not twice its blocks (256 blocks wrap to
	 * 0 in the CDB); the same with the right length goes on. */
	write10[1] = 0x08;
	assert_int_equal(scsi_cmd(&r.dev, &c, write10, 10, iov, 1),
			 TCMU_STS_INVALID_CDB);
	write10[1] = 0x10;
	assert_int_equal(scsi_cmd(&r.dev, &c, write10, 10, iov, 1),
			 TCMU_STS_INVALID_CDB);
	caw[13] = 0;
	assert_int_equal(scsi_cmd(&r.dev, &c, caw, 16, &caw_iov, 1),
			 TCMU_STS_INVALID_CDB);
	caw[13] = 1;
	caw_iov.iov_len = 512;
	assert_int_equal(scsi_cmd(&r.dev, &c, caw, 16, &caw_iov, 1),
			 TCMU_STS_INVALID_CDB);
	caw_iov.iov_len = sizeof(caw_data);
	assert_int_equal(scsi_cmd(&r.dev, &c, caw, 16, &caw_iov, 1),
			 TCMU_STS_NOT_HANDLED);
	/* DPO on WRITE AND VERIFY and VERIFY, not offered either. */
	wv16[1] = 0x10;
	assert_int_equal(scsi_cmd(&r.dev, &c, wv16, 16, iov, 1),
			 TCMU_STS_INVALID_CDB);
	verify10[1] = 0x10;
	assert_int_equal(scsi_cmd(&r.dev, &c, verify10, 10, NULL, 0),
			 TCMU_STS_INVALID_CDB);
	/* WRITE SAME with ANCHOR (and UNMAP): no anchored blocks here. */
	ws16[1] = 0x18;
	assert_int_equal(scsi_cmd(&r.dev, &c, ws16, 16, iov, 1),
			 TCMU_STS_INVALID_CDB);
	ws10[1] = 0x10;
	assert_int_equal(scsi_cmd(&r.dev, &c, ws10, 10, iov, 1),
			 TCMU_STS_INVALID_CDB);
	ws10[1] = 0x08;
	assert_int_equal(scsi_cmd(&r.dev, &c, ws10, 10, iov, 1),
			 TCMU_STS_NOT_HANDLED);

	for (int i = 0; i < 8; i++)
		sync16[2 + i] = (uint8_t)(last >> (56 - 8 * i));
	sync16[13] = 1;
	assert_int_equal(scsi_cmd(&r.dev, &c, sync16, 16, NULL, 0),
			 TCMU_STS_NOT_HANDLED);
	sync16[13] = 2;
	assert_int_equal(scsi_cmd(&r.dev, &c, sync16, 16, NULL, 0),
			 TCMU_STS_RANGE);
	rig_stop(&r);
}

/*
 * COMPARE AND WRITE: done by the agent when it offers the extension, here
 * when it does not ("hide" takes it out of VDISK_STAT); both write when
 * the data are equal and answer MISCOMPARE naming the first differing
 * byte when not. The agent's counter tells which did it.
 */
static void test_compare_and_write(void **state)
{
	static uint8_t buf[2 * 512], now[512];
	struct iovec iov = { buf, sizeof(buf) };
	unsigned long before;
	struct stub_cmd c;
	struct rig r;

	(void)state;
	for (int here = 0; here < 2; here++) {
		rig_start(&r, LUN_SIZE);
		if (here)
			agent_fault(&r.agent, "hide compare-and-write");
		assert_int_equal(rig_open(&r, NULL, LUN_SIZE), 0);
		before = agent_counter(&r.agent, "compare-and-write");
		memset(buf, 0x11, 512);
		assert_int_equal(rw_simple(&r.dev, true, buf, 512, 4096),
				 TCMU_STS_OK);
		memset(buf + 512, 0x22, 512);
		stub_cmd_init(&c, COMPARE_AND_WRITE);
		assert_int_equal(stub_cmd_wait(&c, handler->caw(&r.dev, &c.cmd,
								4096, 512, &iov,
								1)),
				 TCMU_STS_OK);
		file_read(r.dir, "disk1", now, sizeof(now), 4096);
		assert_true(all_bytes(now, sizeof(now), 0x22));

		memset(buf, 0x22, 512);
		buf[300] = 0;
		memset(buf + 512, 0x33, 512);
		stub_cmd_init(&c, COMPARE_AND_WRITE);
		assert_int_equal(stub_cmd_wait(&c, handler->caw(&r.dev, &c.cmd,
								4096, 512, &iov,
								1)),
				 TCMU_STS_MISCOMPARE);
		assert_int_equal(sense_info(&c), 300);
		file_read(r.dir, "disk1", now, sizeof(now), 4096);
		assert_true(all_bytes(now, sizeof(now), 0x22));
		assert_int_equal(agent_counter(&r.agent, "compare-and-write"),
				 here ? before : before + 2);
		rig_stop(&r);
	}
}

/*
 * EXTENDED COPY parameter lists as initiators build them: identification
 * CSCD descriptors naming LUNs by the NAA designator of their Device
 * Identification page, block-to-block segments.
 */
#define SERIAL_A "0123456789abcdef0123456789abcdef"
#define SERIAL_B "1123456789abcdef0123456789abcdef"
/* What tcmu-runner's page 0x83 shows for them, worked out by hand. */
static const uint8_t naa_a[16] = { 0x60, 0x01, 0x40, 0x50, 0x12, 0x34,
				   0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0,
				   0x12, 0x34, 0x56, 0x78 };
static const uint8_t naa_b[16] = { 0x60, 0x01, 0x40, 0x51, 0x12, 0x34,
				   0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0,
				   0x12, 0x34, 0x56, 0x78 };

struct xlist {
	uint8_t buf[1100];
	size_t len;
	unsigned int targets, segments;
	bool with_list_id; /* else LIST ID USAGE 11b, none */
	uint8_t list_id_usage, list_id;
};

static void put_be(uint8_t *p, uint64_t v, int n)
{
	for (int i = n - 1; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static void xlist_target(struct xlist *x, const uint8_t *naa)
{
	uint8_t *d = x->buf + 16 + 32 * x->targets++;

	memset(d, 0, 32);
	d[0] = 0xe4;
	d[4] = 0x01; /* binary */
	d[5] = 0x03; /* NAA, logical unit */
	d[7] = 16;
	memcpy(d + 8, naa, 16);
	put_be(d + 29, 512, 3);
	x->len = 16 + 32 * x->targets;
}

static void xlist_segment(struct xlist *x, uint16_t src, uint16_t dst,
			  uint16_t blocks, uint64_t src_lba, uint64_t dst_lba)
{
	uint8_t *d = x->buf + 16 + 32 * x->targets + 28 * x->segments++;

	memset(d, 0, 28);
	d[0] = 0x02;
	d[3] = 0x18;
	put_be(d + 4, src, 2);
	put_be(d + 6, dst, 2);
	put_be(d + 10, blocks, 2);
	put_be(d + 12, src_lba, 8);
	put_be(d + 20, dst_lba, 8);
	x->len = 16 + 32 * x->targets + 28 * x->segments;
}

static int xcopy(struct tcmu_device *dev, struct stub_cmd *c, struct xlist *x)
{
	uint8_t cdb[16] = { 0x83 };
	struct iovec iov = { x->buf, x->len };

	x->buf[0] = x->list_id;
	x->buf[1] = (x->with_list_id ? x->list_id_usage : 3) << 3;
	put_be(x->buf + 2, 32 * x->targets, 2);
	put_be(x->buf + 8, 28 * x->segments, 4);
	put_be(cdb + 10, x->len, 4);
	return scsi_cmd(dev, c, cdb, sizeof(cdb), &iov, 1);
}

static void expect_sense(int sts, const struct stub_cmd *c, uint8_t key,
			 uint16_t asc)
{
	assert_int_equal(sts, TCMU_STS_PASSTHROUGH_ERR);
	assert_int_equal(stub_sense_key(c), key);
	assert_int_equal(stub_sense_asc(c), asc);
}

/* A second LUN on the rig's agent, in the same copy domain or not. */
static void open_second(struct rig *r, struct tcmu_device *dev,
			const char *vdisk, const char *serial, const char *opts)
{
	char cfg[256];

	vdisk_make(r->dir, vdisk, LUN_SIZE);
	snprintf(cfg, sizeof(cfg), "vxhs/%s@127.0.0.1/%u;plaintext%s", vdisk,
		 r->agent.port, opts);
	stub_dev_init(dev, cfg, LUN_SIZE, 512);
	snprintf(dev->wwn, sizeof(dev->wwn), "%s", serial);
	assert_int_equal(handler->open(dev, false), 0);
}

/* Malformed lists: the sense SPC-4 names, nothing written. */
static void check_xcopy_refusals(struct rig *r)
{
	uint8_t cdb[16] = { 0x83 }, now[512];
	struct xlist x = { 0 };
	struct stub_cmd c;

	/* No parameter list: nothing to do. */
	assert_int_equal(scsi_cmd(&r->dev, &c, cdb, 16, NULL, 0), TCMU_STS_OK);
	cdb[1] = 0x01; /* EXTENDED COPY (LID4): not offered */
	assert_int_equal(scsi_cmd(&r->dev, &c, cdb, 16, NULL, 0),
			 TCMU_STS_INVALID_CDB);

	xlist_target(&x, naa_a);
	xlist_segment(&x, 0, 0, 8, 0, 12000);
	x.len--; /* the segment cut short */
	assert_int_equal(xcopy(&r->dev, &c, &x),
			 TCMU_STS_INVALID_PARAM_LIST_LEN);
	x.len = 47; /* the target cut short */
	assert_int_equal(xcopy(&r->dev, &c, &x),
			 TCMU_STS_INVALID_PARAM_LIST_LEN);

	memset(&x, 0, sizeof(x));
	for (int i = 0; i < 5; i++)
		xlist_target(&x, naa_a);
	xlist_segment(&x, 0, 0, 8, 0, 12000);
	assert_int_equal(xcopy(&r->dev, &c, &x), TCMU_STS_TOO_MANY_TGT_DESC);

	memset(&x, 0, sizeof(x));
	xlist_target(&x, naa_a);
	for (int i = 0; i < 5; i++)
		xlist_segment(&x, 0, 0, 8, 0, 12000);
	assert_int_equal(xcopy(&r->dev, &c, &x), TCMU_STS_TOO_MANY_SEG_DESC);

	/* More than the maximum descriptor list length. */
	memset(&x, 0, sizeof(x));
	xlist_target(&x, naa_a);
	for (int i = 0; i < 36; i++)
		xlist_segment(&x, 0, 0, 8, 0, 12000);
	assert_int_equal(xcopy(&r->dev, &c, &x),
			 TCMU_STS_INVALID_PARAM_LIST_LEN);

	memset(&x, 0, sizeof(x));
	xlist_target(&x, naa_a);
	xlist_segment(&x, 0, 0, 8, 0, 12000);
	x.buf[16] = 0xe0; /* Fibre Channel N_Port_Name */
	assert_int_equal(xcopy(&r->dev, &c, &x),
			 TCMU_STS_NOTSUPP_TGT_DESC_TYPE);
	x.buf[16] = 0xe4;
	x.buf[48] = 0x03; /* stream to stream */
	assert_int_equal(xcopy(&r->dev, &c, &x),
			 TCMU_STS_NOTSUPP_SEG_DESC_TYPE);
	x.buf[48] = 0x02;
	x.buf[17] = 2 << 6; /* a reserved LU ID TYPE */
	assert_int_equal(xcopy(&r->dev, &c, &x), TCMU_STS_INVALID_PARAM_LIST);
	x.buf[17] = 0x20; /* NUL */
	assert_int_equal(xcopy(&r->dev, &c, &x), TCMU_STS_CP_TGT_DEV_NOTCONN);
	x.buf[17] = 0;
	put_be(x.buf + 16 + 29, 4096, 3); /* not the LUN's block size */
	assert_int_equal(xcopy(&r->dev, &c, &x), TCMU_STS_INVALID_PARAM_LIST);
	put_be(x.buf + 16 + 29, 512, 3);

	memset(&x, 0, sizeof(x));
	xlist_target(&x, naa_a);
	xlist_segment(&x, 0, 1, 8, 0, 12000); /* no target 1 */
	expect_sense(xcopy(&r->dev, &c, &x), &c, 0x0a, 0x0804);

	memset(&x, 0, sizeof(x));
	xlist_target(&x, naa_a);
	xlist_segment(&x, 0, 0, 8, 0, 12000);
	xlist_segment(&x, 0, 0, 8, 0, LUN_SIZE / 512 - 1); /* beyond */
	assert_int_equal(xcopy(&r->dev, &c, &x), TCMU_STS_CP_TGT_DEV_NOTCONN);

	/* A LUN this handler does not serve. */
	memset(&x, 0, sizeof(x));
	xlist_target(&x, naa_a);
	xlist_target(&x, naa_a);
	x.buf[16 + 32 + 8 + 15] ^= 0xff;
	xlist_segment(&x, 0, 1, 8, 0, 12000);
	assert_int_equal(xcopy(&r->dev, &c, &x), TCMU_STS_CP_TGT_DEV_NOTCONN);
	assert_true(stub_log_contains("does not serve"));

	/* Nothing of the refused lists was copied (the first segment
	 * of the list beyond the end included). */
	file_read(r->dir, "disk1", now, sizeof(now), 12000 * 512);
	assert_true(all_bytes(now, sizeof(now), 0));
}

static void check_xcopy_op_params(struct rig *r)
{
	uint8_t cdb[16] = { 0x84, 0x03 }, buf[64];
	struct iovec iov = { buf, sizeof(buf) };
	struct stub_cmd c;

	memset(buf, 0xee, sizeof(buf));
	assert_int_equal(scsi_cmd(&r->dev, &c, cdb, 16, &iov, 1), TCMU_STS_OK);
	assert_int_equal(buf[3], 42); /* AVAILABLE DATA */
	assert_int_equal(buf[4], 1);  /* SNLID */
	assert_int_equal(buf[9], 4);  /* targets */
	assert_int_equal(buf[11], 4); /* segments */
	assert_int_equal(buf[37], 9); /* 512-byte granularity */
	assert_int_equal(buf[43], 2);
	assert_int_equal(buf[44], 0x02);
	assert_int_equal(buf[45], 0xe4);
	assert_true(all_bytes(buf + 46, sizeof(buf) - 46, 0));
}

static int copy_status(struct tcmu_device *dev, uint8_t list_id,
		       uint8_t buf[12])
{
	uint8_t cdb[16] = { 0x84, 0x00, list_id };
	struct iovec iov = { buf, 12 };
	struct stub_cmd c;

	put_be(cdb + 10, 12, 4);
	return scsi_cmd(dev, &c, cdb, 16, &iov, 1);
}

/* COPY STATUS of the copies whose list asked for it (LIST ID USAGE 00b),
 * finished or failed; not of the others. */
static void check_copy_status(struct rig *r)
{
	struct xlist x;
	struct stub_cmd c;
	uint8_t buf[12];

	assert_int_equal(copy_status(&r->dev, 5, buf), TCMU_STS_INVALID_CDB);
	memset(&x, 0, sizeof(x));
	x.with_list_id = true;
	x.list_id_usage = 0; /* held */
	x.list_id = 5;
	xlist_target(&x, naa_a);
	xlist_segment(&x, 0, 0, 8, 0, 100);
	xlist_segment(&x, 0, 0, 4, 0, 200);
	assert_int_equal(xcopy(&r->dev, &c, &x), TCMU_STS_OK);
	assert_int_equal(copy_status(&r->dev, 5, buf), TCMU_STS_OK);
	assert_int_equal(buf[3], 8);	/* AVAILABLE DATA */
	assert_int_equal(buf[4], 0x01); /* completed, no held data */
	assert_int_equal(buf[6], 2);	/* segments processed */
	assert_int_equal(buf[7], 0);	/* in bytes */
	assert_int_equal(buf[10] << 8 | buf[11], 12 * 512);

	/* Beyond the end: refused before any segment is copied. */
	x.list_id = 6;
	xlist_segment(&x, 0, 0, 4, 0, LUN_SIZE / 512 - 2);
	assert_int_not_equal(xcopy(&r->dev, &c, &x), TCMU_STS_OK);
	assert_int_equal(copy_status(&r->dev, 6, buf), TCMU_STS_OK);
	assert_int_equal(buf[4], 0x02); /* completed with errors */
	assert_int_equal(buf[6], 0);

	/* 10b: a list identifier, but nothing held. */
	memset(&x, 0, sizeof(x));
	x.with_list_id = true;
	x.list_id_usage = 2;
	x.list_id = 7;
	xlist_target(&x, naa_a);
	xlist_segment(&x, 0, 0, 8, 0, 100);
	assert_int_equal(xcopy(&r->dev, &c, &x), TCMU_STS_OK);
	assert_int_equal(copy_status(&r->dev, 7, buf), TCMU_STS_INVALID_CDB);
	assert_int_equal(copy_status(&r->dev, 5, buf), TCMU_STS_OK);
}

static int inquiry_vpd(struct tcmu_device *dev, uint8_t page, uint8_t *buf,
		       size_t len)
{
	uint8_t cdb[6] = { 0x12, 0x01, page, 0, (uint8_t)len };
	struct iovec iov = { buf, len };
	struct stub_cmd c;

	memset(buf, 0xee, len);
	return scsi_cmd(dev, &c, cdb, sizeof(cdb), &iov, 1);
}

/* The Supported VPD Pages list names the Third-party Copy page, which
 * describes the copy manager with the limits it enforces. */
static void check_third_party_copy_vpd(struct rig *r)
{
	static const uint16_t types[] = { 0x0001, 0x0004, 0x0008, 0x000c,
					  0x8001 };
	uint8_t buf[255];
	size_t off = 4;

	assert_int_equal(inquiry_vpd(&r->dev, 0x00, buf, sizeof(buf)),
			 TCMU_STS_OK);
	assert_int_equal(buf[3], 7);
	assert_memory_equal(
		buf + 4,
		((const uint8_t[]){ 0x00, 0x80, 0x83, 0x8f, 0xb0, 0xb1, 0xb2 }),
		7);
	assert_true(all_bytes(buf + 11, sizeof(buf) - 11, 0));

	assert_int_equal(inquiry_vpd(&r->dev, 0x8f, buf, sizeof(buf)),
			 TCMU_STS_OK);
	assert_int_equal(buf[1], 0x8f);
	assert_int_equal(buf[2] << 8 | buf[3], 96);
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		const uint8_t *d = buf + off;

		assert_true(off + 4 <= 100);
		assert_int_equal(d[0] << 8 | d[1], types[i]);
		switch (types[i]) {
		case 0x0001: /* 0x83 SA 0; 0x84 SA 3 (COPY STATUS: not) */
			assert_memory_equal(d + 4,
					    ((const uint8_t[]){ 6, 0x83, 1, 0,
								0x84, 1, 3,
								0 }),
					    8);
			break;
		case 0x0004:
			assert_int_equal(d[9], 4);  /* CSCD descriptors */
			assert_int_equal(d[11], 4); /* segments */
			assert_int_equal(d[14], 4); /* 1024-byte lists */
			break;
		case 0x8001:
			assert_int_equal(d[7], 1);     /* one copy at a time */
			assert_int_equal(d[12], 0x10); /* 256 MiB segments */
			assert_int_equal(d[16], 9);    /* 512-byte blocks */
			break;
		}
		off += 4 + (size_t)(d[2] << 8 | d[3]);
	}
	assert_int_equal(off, 100);
	assert_true(all_bytes(buf + 100, sizeof(buf) - 100, 0));

	/* A short allocation length gets the page's start. */
	assert_int_equal(inquiry_vpd(&r->dev, 0x8f, buf, 6), TCMU_STS_OK);
	assert_int_equal(buf[1], 0x8f);
	assert_int_equal(buf[5], 0x01);
}

/*
 * EXTENDED COPY within a LUN and between two LUNs of one copy domain: by
 * the agent (no READ or WRITE reaches it), or through the gateway when
 * the agent hides COPY; overlapping ranges as if read first; a LUN outside
 * the copy domain is not reachable.
 */
static void test_extended_copy(void **state)
{
	static uint8_t data[4096 * 512], now[4096 * 512];
	struct tcmu_device dev2, dev3;
	unsigned long copies, reads, writes;
	struct xlist x;
	struct stub_cmd c;
	struct rig r;

	(void)state;
	for (int by_agent = 1; by_agent >= 0; by_agent--) {
		rig_start(&r, LUN_SIZE);
		if (!by_agent)
			agent_fault(&r.agent, "hide copy");
		assert_int_equal(rig_open(&r, ";copy_domain=rack1", LUN_SIZE),
				 0);
		snprintf(r.dev.wwn, sizeof(r.dev.wwn), "%s", SERIAL_A);
		open_second(&r, &dev2, "disk2", SERIAL_B, ";copy_domain=rack1");
		open_second(&r, &dev3, "disk3", "feedfeed", "");
		fill_random(data, sizeof(data), 17);
		assert_int_equal(rw_simple(&r.dev, true, data, sizeof(data), 0),
				 TCMU_STS_OK);
		copies = agent_counter(&r.agent, "copy");
		reads = agent_counter(&r.agent, "read");
		writes = agent_counter(&r.agent, "write");

		/* Within disk1, then to disk2, in one list. */
		memset(&x, 0, sizeof(x));
		xlist_target(&x, naa_a);
		xlist_target(&x, naa_b);
		xlist_segment(&x, 0, 0, 256, 0, 8000);
		xlist_segment(&x, 0, 1, 128, 64, 2000);
		assert_int_equal(xcopy(&r.dev, &c, &x), TCMU_STS_OK);
		file_read(r.dir, "disk1", now, 256 * 512, 8000 * 512);
		assert_memory_equal(now, data, 256 * 512);
		file_read(r.dir, "disk2", now, 128 * 512, 2000 * 512);
		assert_memory_equal(now, data + 64 * 512, 128 * 512);
		if (by_agent) {
			assert_int_equal(agent_counter(&r.agent, "copy"),
					 copies + 2);
			assert_int_equal(agent_counter(&r.agent, "read"),
					 reads);
			assert_int_equal(agent_counter(&r.agent, "write"),
					 writes);
		} else {
			assert_int_equal(agent_counter(&r.agent, "copy"),
					 copies);
		}

		/* Overlapping, forward and backward, over more than one
		 * piece: as if the source were read first. */
		memset(&x, 0, sizeof(x));
		xlist_target(&x, naa_a);
		xlist_segment(&x, 0, 0, 4096, 0, 8);
		assert_int_equal(xcopy(&r.dev, &c, &x), TCMU_STS_OK);
		file_read(r.dir, "disk1", now, sizeof(now), 8 * 512);
		assert_memory_equal(now, data, sizeof(data));
		memset(&x, 0, sizeof(x));
		xlist_target(&x, naa_a);
		xlist_segment(&x, 0, 0, 4000, 8, 0);
		assert_int_equal(xcopy(&r.dev, &c, &x), TCMU_STS_OK);
		file_read(r.dir, "disk1", now, 4000 * 512, 0);
		assert_memory_equal(now, data, 4000 * 512);

		/* The order of the descriptors does not matter, the
		 * sending LUN may be the destination only. */
		memset(&x, 0, sizeof(x));
		xlist_target(&x, naa_b);
		xlist_target(&x, naa_a);
		xlist_segment(&x, 0, 1, 16, 2000, 9000);
		assert_int_equal(xcopy(&dev2, &c, &x), TCMU_STS_OK);
		file_read(r.dir, "disk1", now, 16 * 512, 9000 * 512);
		assert_memory_equal(now, data + 64 * 512, 16 * 512);

		/* disk3 is in no copy domain: it reaches only itself. */
		memset(&x, 0, sizeof(x));
		xlist_target(&x, naa_a);
		xlist_target(&x, naa_a);
		xlist_segment(&x, 0, 1, 16, 0, 3000);
		assert_int_equal(xcopy(&dev3, &c, &x),
				 TCMU_STS_CP_TGT_DEV_NOTCONN);
		assert_true(stub_log_contains("copy domain"));

		check_xcopy_refusals(&r);
		check_xcopy_op_params(&r);
		check_copy_status(&r);
		check_third_party_copy_vpd(&r);
		handler->close(&dev3);
		handler->close(&dev2);
		rig_stop(&r);
	}
}

/* Two agents on one store: losing the first costs nothing but time. */
static void test_failover_to_second_agent(void **state)
{
	struct agent second;
	uint8_t buf[4096];
	char opts[64];
	struct rig r;

	(void)state;
	rig_start(&r, LUN_SIZE);
	agent_start(&second, r.dir, 0);
	snprintf(opts, sizeof(opts), "+127.0.0.1/%u", second.port);
	assert_int_equal(rig_open(&r, opts, LUN_SIZE), 0);
	memset(buf, 0x44, sizeof(buf));
	assert_int_equal(rw_simple(&r.dev, true, buf, sizeof(buf), 0),
			 TCMU_STS_OK);
	agent_kill(&r.agent, SIGKILL);
	memset(buf, 0, sizeof(buf));
	assert_int_equal(rw_simple(&r.dev, false, buf, sizeof(buf), 0),
			 TCMU_STS_OK);
	assert_true(all_bytes(buf, sizeof(buf), 0x44));
	assert_int_equal(atomic_load(&r.dev.conn_lost), 0);
	rig_stop(&r);
	agent_kill(&second, SIGTERM);
}

/*
 * Two gateways (two LUNs, each through its own agent) on one vdisk, as
 * tcmu-runner drives them under implicit ALUA: the lock moves with
 * lock(), the gateway that lost it has its writes fenced (BUSY, and
 * tcmu-runner told the lock is lost), get_lock_state asks the storage.
 */
static void test_lock_between_gateways(void **state)
{
	struct tcmu_device gw2;
	struct agent second;
	uint8_t buf[4096];
	char cfg[256];
	struct rig r;

	(void)state;
	rig_start(&r, LUN_SIZE);
	assert_int_equal(rig_open(&r, ";gateway=gw-a", LUN_SIZE), 0);
	agent_start(&second, r.dir, 0);
	snprintf(cfg, sizeof(cfg),
		 "vxhs/disk1@127.0.0.1/%u;plaintext;gateway=gw-b", second.port);
	stub_dev_init(&gw2, cfg, LUN_SIZE, 512);
	assert_int_equal(handler->open(&gw2, false), 0);

	assert_int_equal(handler->get_lock_state(&r.dev),
			 TCMUR_DEV_LOCK_UNLOCKED);
	assert_int_equal(handler->lock(&r.dev, 1), TCMU_STS_OK);
	assert_int_equal(handler->get_lock_state(&r.dev),
			 TCMUR_DEV_LOCK_WRITE_LOCKED);
	memset(buf, 0xA1, sizeof(buf));
	assert_int_equal(rw_simple(&r.dev, true, buf, sizeof(buf), 0),
			 TCMU_STS_OK);
	/* gw-b writes without the lock: fenced. */
	assert_int_equal(rw_simple(&gw2, true, buf, sizeof(buf), 0),
			 TCMU_STS_BUSY);
	assert_int_equal(atomic_load(&gw2.lock_lost), 1);

	stub_log_clear();
	assert_int_equal(handler->lock(&gw2, 2), TCMU_STS_OK);
	assert_true(
		stub_log_contains("gateway gw-b took vdisk disk1 from gw-a"));
	assert_int_equal(handler->get_lock_state(&r.dev),
			 TCMUR_DEV_LOCK_UNLOCKED);
	assert_int_equal(handler->get_lock_state(&gw2),
			 TCMUR_DEV_LOCK_WRITE_LOCKED);
	memset(buf, 0xB2, sizeof(buf));
	assert_int_equal(rw_simple(&r.dev, true, buf, sizeof(buf), 0),
			 TCMU_STS_BUSY);
	assert_int_equal(atomic_load(&r.dev.lock_lost), 1);
	assert_int_equal(rw_simple(&gw2, true, buf, sizeof(buf), 0),
			 TCMU_STS_OK);
	file_read(r.dir, "disk1", buf, sizeof(buf), 0);
	assert_true(all_bytes(buf, sizeof(buf), 0xB2));

	/* Reads need no lock; only the owner lets it go. */
	assert_int_equal(rw_simple(&r.dev, false, buf, sizeof(buf), 0),
			 TCMU_STS_OK);
	assert_int_equal(handler->unlock(&r.dev), TCMU_STS_OK);
	assert_int_equal(handler->get_lock_state(&gw2),
			 TCMUR_DEV_LOCK_WRITE_LOCKED);
	assert_int_equal(handler->unlock(&gw2), TCMU_STS_OK);
	assert_int_equal(handler->get_lock_state(&gw2),
			 TCMUR_DEV_LOCK_UNLOCKED);
	assert_int_equal(rw_simple(&r.dev, true, buf, sizeof(buf), 0),
			 TCMU_STS_OK);
	handler->close(&gw2);
	agent_kill(&second, SIGTERM);
	rig_stop(&r);
}

/*
 * A new cfgstring opens a new handle: the lock this gateway holds goes with
 * it (no lock lost, no new epoch), unless the gateway's name changed, when
 * the lock is the old name's and writes are fenced until tcmu-runner takes
 * it again.
 */
static void test_lock_across_reconfig(void **state)
{
	struct tcmulib_cfg_info rc = { .type = TCMULIB_CFG_DEV_CFGSTR };
	uint8_t buf[4096];
	char cfg[256];
	struct rig r;

	(void)state;
	rig_start(&r, LUN_SIZE);
	assert_int_equal(rig_open(&r, ";gateway=gw-a", LUN_SIZE), 0);
	assert_int_equal(handler->lock(&r.dev, 1), TCMU_STS_OK);
	memset(buf, 0xC3, sizeof(buf));
	assert_int_equal(rw_simple(&r.dev, true, buf, sizeof(buf), 0),
			 TCMU_STS_OK);
	snprintf(cfg, sizeof(cfg),
		 "vxhs/disk1@127.0.0.1/%u;plaintext;gateway=gw-a;conns=2",
		 r.agent.port);
	rc.data.dev_cfgstring = cfg;
	stub_log_clear();
	assert_int_equal(handler->reconfig(&r.dev, &rc), 0);
	assert_false(stub_log_contains("carry over"));
	assert_int_equal(handler->get_lock_state(&r.dev),
			 TCMUR_DEV_LOCK_WRITE_LOCKED);
	assert_int_equal(rw_simple(&r.dev, true, buf, sizeof(buf), 4096),
			 TCMU_STS_OK);
	assert_int_equal(atomic_load(&r.dev.lock_lost), 0);

	/* Another name: the lock stays gw-a's, so this handle is fenced. */
	snprintf(cfg, sizeof(cfg),
		 "vxhs/disk1@127.0.0.1/%u;plaintext;gateway=gw-c",
		 r.agent.port);
	assert_int_equal(handler->reconfig(&r.dev, &rc), 0);
	assert_true(stub_log_contains(
		"the lock held at epoch 1 does not carry over to gateway gw-c: not its lock now"));
	assert_int_equal(handler->get_lock_state(&r.dev),
			 TCMUR_DEV_LOCK_UNLOCKED);
	assert_int_equal(rw_simple(&r.dev, true, buf, sizeof(buf), 8192),
			 TCMU_STS_BUSY);
	assert_int_equal(atomic_load(&r.dev.lock_lost), 1);
	file_read(r.dir, "disk1", buf, sizeof(buf), 8192);
	assert_true(all_bytes(buf, sizeof(buf), 0));
	assert_int_equal(handler->lock(&r.dev, 1), TCMU_STS_OK);
	memset(buf, 0xC3, sizeof(buf));
	assert_int_equal(rw_simple(&r.dev, true, buf, sizeof(buf), 8192),
			 TCMU_STS_OK);
	rig_stop(&r);
}

/* An agent without the lock: several gateways cannot be made safe. */
static void test_lock_without_agent_support(void **state)
{
	struct fake_agent f;
	struct tcmu_device dev;

	(void)state;
	fake_open(&f, FAKE_GOOD, &dev);
	stub_log_clear();
	assert_int_equal(handler->lock(&dev, 1), TCMU_STS_HW_ERR);
	assert_true(stub_log_contains("the agent keeps no locks"));
	assert_int_equal(handler->get_lock_state(&dev),
			 TCMUR_DEV_LOCK_UNLOCKED);
	handler->close(&dev);
	fake_stop(&f);
}

static void test_agent_absent(void **state)
{
	struct tcmu_device dev;

	(void)state;
	stub_log_clear();
	stub_dev_init(&dev,
		      "vxhs/disk1@127.0.0.1/1;connect_timeout=1;plaintext",
		      LUN_SIZE, 512);
	assert_int_not_equal(handler->open(&dev, false), 0);
	assert_true(stub_log_contains("cannot open vdisk disk1: agent "
				      "127.0.0.1:1: Connection refused"));
	assert_null(dev.priv);
}

/* Run under ASan (tools/test.sh does), this finds any leak. */
/* Opens the rig's LUN on the agent's UNIX socket, with options. */
static void rig_open_unix(struct rig *r, const char *opts)
{
	char cfg[512];

	snprintf(cfg, sizeof(cfg), "vxhs/disk1@%s%s", r->agent.sock,
		 opts ? opts : "");
	stub_dev_init(&r->dev, cfg, LUN_SIZE, 512);
	assert_int_equal(handler->open(&r->dev, false), 0);
	r->opened = true;
}

/* Writes a pattern at off, reads it back in pieces; returns how many
 * READs the agent saw meanwhile. */
static unsigned long write_read_back(struct rig *r, size_t len, uint64_t off,
				     unsigned int seed)
{
	uint8_t *buf = malloc(len), *back = calloc(1, len);
	struct stub_cmd c;
	unsigned long reads;

	assert_non_null(buf);
	assert_non_null(back);
	fill_random(buf, len, seed);
	assert_int_equal(rw_simple(&r->dev, true, buf, len, off), TCMU_STS_OK);
	reads = agent_counter(&r->agent, "read");
	assert_int_equal(rw(&r->dev, &c, false, back, len, off, 5),
			 TCMU_STS_OK);
	assert_memory_equal(buf, back, len);
	reads = agent_counter(&r->agent, "read") - reads;
	free(back);
	free(buf);
	return reads;
}

/*
 * Local reads: over the UNIX socket, cached data comes from the vdisk's
 * file on tcmu-runner's thread, with what the agent wrote just before;
 * after a failover the agent is asked again. Off with local_reads=no, and
 * when the agent does not offer them.
 */
static void test_local_reads(void **state)
{
	struct rig r;

	(void)state;
	rig_start(&r, LUN_SIZE);
	rig_open_unix(&r, ";local_writes=no");
	assert_int_equal(agent_counter(&r.agent, "local-open"), 1);
	assert_int_equal(write_read_back(&r, 64 * 1024, 12288, 1), 0);
	assert_int_equal(write_read_back(&r, 64 * 1024, 12288, 2), 0);
	assert_int_equal(write_read_back(&r, MiB, 3 * MiB, 3), 0);

	/* Connections lost and back: the next read asks the agent whether
	 * it still serves the same file, and goes on locally. */
	agent_fault(&r.agent, "drop all");
	assert_int_equal(write_read_back(&r, 4096, 0, 4), 0);
	assert_int_equal(agent_counter(&r.agent, "local-open"), 2);
	assert_int_equal(write_read_back(&r, 4096, 0, 5), 0);
	assert_int_equal(agent_counter(&r.agent, "local-open"), 2);
	handler->close(&r.dev);
	r.opened = false;

	/* Not wanted: every read goes to the agent. */
	rig_open_unix(&r, ";local_reads=no;local_writes=no");
	assert_int_equal(agent_counter(&r.agent, "local-open"), 2);
	assert_int_equal(write_read_back(&r, 4096, 0, 6), 1);
	handler->close(&r.dev);
	r.opened = false;

	/* Not offered: the same, without asking. */
	agent_fault(&r.agent, "hide local-read");
	rig_open_unix(&r, ";local_writes=no");
	assert_int_equal(agent_counter(&r.agent, "local-open"), 2);
	assert_int_equal(write_read_back(&r, 4096, 0, 7), 1);
	handler->close(&r.dev);
	r.opened = false;

	/* Refused: a warning, and reads through the agent. */
	agent_fault(&r.agent, "show local-read");
	agent_fault(&r.agent, "fail local-open disk1 EACCES 1");
	stub_log_clear();
	rig_open_unix(&r, ";local_writes=no");
	assert_true(stub_log_contains("local reads refused"));
	assert_int_equal(write_read_back(&r, 4096, 0, 8), 1);
	rig_stop(&r);
}

/* Holds the copy thread in its completion until released. */
static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool held, release;
} copy_hold = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false,
		false };

static void hold_the_copy_thread(struct stub_cmd *c, int status)
{
	char name[16];

	pthread_getname_np(pthread_self(), name, sizeof(name));
	if (!strcmp(name, "vxhs-copy")) {
		pthread_mutex_lock(&copy_hold.lock);
		copy_hold.held = true;
		pthread_cond_broadcast(&copy_hold.cond);
		while (!copy_hold.release)
			pthread_cond_wait(&copy_hold.cond, &copy_hold.lock);
		pthread_mutex_unlock(&copy_hold.lock);
	}
	stub_cmd_done(c, status);
}

static void wait_for_the_hold(void)
{
	struct timespec until;
	int ret = 0;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 10;
	pthread_mutex_lock(&copy_hold.lock);
	while (!copy_hold.held && ret != ETIMEDOUT)
		ret = pthread_cond_timedwait(&copy_hold.cond, &copy_hold.lock,
					     &until);
	pthread_mutex_unlock(&copy_hold.lock);
	if (ret == ETIMEDOUT)
		fail_msg("the read was not handed to the copy thread");
}

/*
 * Large local reads: one of 64 KiB or more is copied on the copy thread
 * while that is idle, and on tcmu-runner's thread while it is busy; a
 * smaller one stays on tcmu-runner's thread; a range not cached goes from
 * the copy thread to the agent. The data is right every way.
 */
static void test_large_local_reads_on_the_copy_thread(void **state)
{
	uint8_t *a = malloc(MiB), *b = malloc(MiB), *back = malloc(MiB),
		*held_back = malloc(MiB);
	struct stub_cmd c, held;
	unsigned long reads;
	struct iovec iov;
	char self[16];
	struct rig r;

	(void)state;
	assert_non_null(a);
	assert_non_null(b);
	assert_non_null(back);
	assert_non_null(held_back);
	pthread_getname_np(pthread_self(), self, sizeof(self));
	fill_random(a, MiB, 21);
	fill_random(b, MiB, 22);
	rig_start(&r, LUN_SIZE);
	vdisk_write_uncached(r.dir, "disk1", a, MiB);
	rig_open_unix(&r, ";local_writes=no");

	/* Not cached: the copy thread asks the agent. */
	reads = agent_counter(&r.agent, "read");
	assert_int_equal(rw(&r.dev, &c, false, back, MiB, 0, 4), TCMU_STS_OK);
	assert_memory_equal(a, back, MiB);
	assert_int_equal(agent_counter(&r.agent, "read") - reads, 1);
	assert_string_equal(c.done_by, "vxhs-io0");

	/* Cached by the agent's read: the copy thread copies it. */
	memset(back, 0, MiB);
	assert_int_equal(rw(&r.dev, &c, false, back, MiB, 0, 4), TCMU_STS_OK);
	assert_memory_equal(a, back, MiB);
	assert_string_equal(c.done_by, "vxhs-copy");

	/* Small: tcmu-runner's thread. */
	assert_int_equal(rw(&r.dev, &c, false, back, 4096, 0, 1), TCMU_STS_OK);
	assert_memory_equal(a, back, 4096);
	assert_string_equal(c.done_by, self);
	assert_int_equal(agent_counter(&r.agent, "read") - reads, 1);

	/* The copy thread busy: tcmu-runner's thread copies the next. */
	assert_int_equal(rw_simple(&r.dev, true, b, MiB, MiB), TCMU_STS_OK);
	stub_complete_hook = hold_the_copy_thread;
	iov = (struct iovec){ .iov_base = held_back, .iov_len = MiB };
	stub_cmd_init(&held, READ_10);
	assert_int_equal(handler->read(&r.dev, &held.cmd, &iov, 1, MiB, 0),
			 TCMU_STS_OK);
	wait_for_the_hold();
	memset(back, 0, MiB);
	assert_int_equal(rw(&r.dev, &c, false, back, MiB, MiB, 3), TCMU_STS_OK);
	assert_memory_equal(b, back, MiB);
	assert_string_equal(c.done_by, self);
	pthread_mutex_lock(&copy_hold.lock);
	copy_hold.release = true;
	pthread_cond_broadcast(&copy_hold.cond);
	pthread_mutex_unlock(&copy_hold.lock);
	assert_int_equal(stub_cmd_wait(&held, TCMU_STS_OK), TCMU_STS_OK);
	assert_memory_equal(a, held_back, MiB);
	assert_string_equal(held.done_by, "vxhs-copy");
	assert_int_equal(agent_counter(&r.agent, "read") - reads, 1);
	stub_complete_hook = NULL;
	copy_hold.held = copy_hold.release = false;

	rig_stop(&r);
	free(held_back);
	free(back);
	free(b);
	free(a);
}

/* Writes 4 KiB of v at off through dev: the status. */
static int write_bytes(struct tcmu_device *dev, uint8_t v, uint64_t off)
{
	uint8_t buf[4096];

	memset(buf, v, sizeof(buf));
	return rw_simple(dev, true, buf, sizeof(buf), off);
}

static bool file_holds(struct rig *r, uint8_t v, uint64_t off)
{
	uint8_t buf[4096];

	file_read(r->dir, "disk1", buf, sizeof(buf), off);
	return all_bytes(buf, sizeof(buf), v);
}

struct writer {
	struct tcmu_device *dev;
	atomic_bool stop;
	atomic_ulong ok;
};

/* Writes without a pause, as a busy initiator does. */
static void *writer_main(void *arg)
{
	struct writer *w = arg;

	while (!atomic_load(&w->stop)) {
		if (write_bytes(w->dev, 0x5A, 65536) == TCMU_STS_OK)
			atomic_fetch_add(&w->ok, 1);
	}
	return NULL;
}

/*
 * Local writes: over the UNIX socket, writes land in the vdisk's file from
 * tcmu-runner's thread, inside the lock record's gate. None reaches the
 * agent; another gateway's acquire is held up neither by a LUN that wrote
 * a moment ago nor by one writing without a pause; once the lock is the
 * other gateway's, no write from here lands (the agent fences it). Off
 * with local_writes=no, when not offered, and when refused.
 */
static void test_local_writes(void **state)
{
	struct tcmu_device gw2;
	struct writer w = { 0 };
	unsigned long writes;
	pthread_t writer;
	char cfg[256];
	struct rig r;

	(void)state;
	rig_start(&r, LUN_SIZE);
	rig_open_unix(&r, ";gateway=gw-a");
	assert_int_equal(agent_counter(&r.agent, "local-open-rw"), 1);
	assert_int_equal(agent_counter(&r.agent, "local-open"), 0);
	writes = agent_counter(&r.agent, "write");
	assert_int_equal(write_read_back(&r, 64 * 1024, 12288, 1), 0);
	assert_int_equal(write_read_back(&r, MiB, 3 * MiB, 2), 0);
	assert_int_equal(write_bytes(&r.dev, 0xC3, 8192), TCMU_STS_OK);
	assert_true(file_holds(&r, 0xC3, 8192));
	/* Past the file's end: the agent refuses it. */
	assert_int_not_equal(write_bytes(&r.dev, 0xC3, LUN_SIZE), TCMU_STS_OK);
	assert_int_equal(agent_counter(&r.agent, "write"), writes + 1);

	/* Under this gateway's lock: still here. */
	assert_int_equal(handler->lock(&r.dev, 1), TCMU_STS_OK);
	assert_int_equal(write_bytes(&r.dev, 0xD4, 0), TCMU_STS_OK);
	assert_true(file_holds(&r, 0xD4, 0));
	assert_int_equal(agent_counter(&r.agent, "write"), writes + 1);

	/* Another gateway takes the lock a moment after a write (the hold
	 * lingers): it gets it, and the next write here is fenced. */
	snprintf(cfg, sizeof(cfg),
		 "vxhs/disk1@127.0.0.1/%u;plaintext;gateway=gw-b",
		 r.agent.port);
	stub_dev_init(&gw2, cfg, LUN_SIZE, 512);
	assert_int_equal(handler->open(&gw2, false), 0);
	assert_int_equal(handler->lock(&gw2, 2), TCMU_STS_OK);
	assert_int_equal(write_bytes(&r.dev, 0xE5, 0), TCMU_STS_BUSY);
	assert_int_equal(atomic_load(&r.dev.lock_lost), 1);
	assert_true(file_holds(&r, 0xD4, 0));
	assert_int_equal(agent_counter(&r.agent, "write"), writes + 2);

	/* This gateway takes it back while writing without a pause. */
	assert_int_equal(handler->lock(&r.dev, 1), TCMU_STS_OK);
	w.dev = &r.dev;
	assert_int_equal(pthread_create(&writer, NULL, writer_main, &w), 0);
	while (!atomic_load(&w.ok))
		usleep(1000);
	assert_int_equal(handler->lock(&gw2, 2), TCMU_STS_OK);
	atomic_store(&w.stop, true);
	pthread_join(writer, NULL);
	assert_int_equal(write_bytes(&gw2, 0xF6, 65536), TCMU_STS_OK);
	assert_int_equal(write_bytes(&r.dev, 0x5A, 65536), TCMU_STS_BUSY);
	assert_true(file_holds(&r, 0xF6, 65536));
	assert_int_equal(handler->unlock(&gw2), TCMU_STS_OK);
	handler->close(&gw2);
	handler->close(&r.dev);
	r.opened = false;

	/* Not wanted: writes go to the agent (reads still local). */
	rig_open_unix(&r, ";local_writes=no");
	assert_int_equal(agent_counter(&r.agent, "local-open-rw"), 1);
	writes = agent_counter(&r.agent, "write");
	assert_int_equal(write_read_back(&r, 4096, 0, 3), 0);
	assert_int_equal(agent_counter(&r.agent, "write"), writes + 1);
	handler->close(&r.dev);
	r.opened = false;

	/* Not offered: the same, without asking. */
	agent_fault(&r.agent, "hide local-write");
	rig_open_unix(&r, NULL);
	assert_int_equal(agent_counter(&r.agent, "local-open-rw"), 1);
	assert_int_equal(write_read_back(&r, 4096, 0, 4), 0);
	assert_int_equal(agent_counter(&r.agent, "write"), writes + 2);
	handler->close(&r.dev);
	r.opened = false;

	/* Refused: a warning, writes through the agent, reads local. */
	agent_fault(&r.agent, "show local-write");
	agent_fault(&r.agent, "fail local-open-rw disk1 EACCES 1");
	stub_log_clear();
	rig_open_unix(&r, NULL);
	assert_true(stub_log_contains("local writes refused"));
	assert_int_equal(write_read_back(&r, 4096, 0, 5), 0);
	assert_int_equal(agent_counter(&r.agent, "write"), writes + 3);
	rig_stop(&r);
}

static void test_open_close_loop(void **state)
{
	const char *env = getenv("VXHS_OPEN_LOOPS");
	int loops = env ? atoi(env) : 1000;
	struct rig r;

	(void)state;
	rig_start(&r, LUN_SIZE);
	for (int i = 0; i < loops; i++) {
		assert_int_equal(rig_open(&r, NULL, LUN_SIZE), 0);
		handler->close(&r.dev);
		r.opened = false;
	}
	rig_stop(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_registration),
		cmocka_unit_test(test_check_config),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_many_luns_in_flight),
		cmocka_unit_test(test_vxhsd_extensions),
		cmocka_unit_test(test_v34_agent),
		cmocka_unit_test(test_media_errors),
		cmocka_unit_test(test_agent_faults),
		cmocka_unit_test(test_agent_hangs),
		cmocka_unit_test(test_out_of_range),
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_reconfig_cfgstring),
		cmocka_unit_test(test_agent_killed),
		cmocka_unit_test(test_outage_policies),
		cmocka_unit_test(test_scsi_conformance),
		cmocka_unit_test(test_scsi_before_emulation),
		cmocka_unit_test(test_compare_and_write),
		cmocka_unit_test(test_extended_copy),
		cmocka_unit_test(test_close_during_failover),
		cmocka_unit_test(test_failover_to_second_agent),
		cmocka_unit_test(test_lock_between_gateways),
		cmocka_unit_test(test_lock_across_reconfig),
		cmocka_unit_test(test_lock_without_agent_support),
		cmocka_unit_test(test_agent_absent),
		cmocka_unit_test(test_local_reads),
		cmocka_unit_test(test_large_local_reads_on_the_copy_thread),
		cmocka_unit_test(test_local_writes),
		cmocka_unit_test(test_open_close_loop),
	};

	signal(SIGPIPE, SIG_IGN);
	handler = stub_load(HANDLER_PATH);
	/* TLS credentials this machine may have in /etc/vxhs/tls play no
	 * part. */
	setenv("VXHS_TLS_DIR", "/nonexistent/vxhs-tls", 1);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
