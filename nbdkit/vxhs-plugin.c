/* SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later */
/*
 * nbdkit-vxhs-plugin: a vdisk as an NBD export, through libvxhs.
 *
 *   nbdkit vxhs vdisk=disk1 [agent=ADDR]... [tls=DIR | plaintext=true]
 *
 * Every NBD tool then reaches vdisks: qemu-img convert, nbdcopy, nbdinfo,
 * fio's nbd engine, the kernel's NBD client. Each NBD connection opens the
 * vdisk once; requests are synchronous calls into the library, which nbdkit
 * runs on its own threads in parallel.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>
#include <vxhs/client.h>
#include <vxhs/wire.h>

#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL

#define DEFAULT_AGENT	"unix:/run/vxhsd/vxhsd.sock"
#define DEFAULT_TLS_DIR VXHS_CONFDIR "/tls"

static char *vdisk_id;
static struct vxhs_open_opts open_opts;
static unsigned int io_threads;
static bool tls_named;
static struct vxhs_ctx *ctx;

static void vxhs_plugin_load(void)
{
	vxhs_open_opts_init(&open_opts);
}

static void vxhs_plugin_unload(void)
{
	free(vdisk_id);
	free((char *)open_opts.tls_dir);
}

static int parse_uint(const char *key, const char *value, unsigned int max,
		      unsigned int *out)
{
	unsigned int v;

	if (nbdkit_parse_unsigned(key, value, &v) == -1)
		return -1;
	if (v == 0 || v > max) {
		nbdkit_error("%s=%s: must be 1 to %u", key, value, max);
		return -1;
	}
	*out = v;
	return 0;
}

static int vxhs_plugin_config(const char *key, const char *value)
{
	struct vxhs_agent_addr *addr;
	int r;

	if (!strcmp(key, "vdisk")) {
		if (!vxhs_vdisk_id_valid(value)) {
			nbdkit_error("vdisk=%s: not a vdisk id (1 to 63 of "
				     "A-Z a-z 0-9 _ . { } -, not starting "
				     "with '.')",
				     value);
			return -1;
		}
		free(vdisk_id);
		vdisk_id = strdup(value);
		return vdisk_id ? 0 : -1;
	}
	if (!strcmp(key, "agent")) {
		if (open_opts.nr_agents == VXHS_MAX_AGENTS) {
			nbdkit_error("agent=%s: at most %d agents", value,
				     VXHS_MAX_AGENTS);
			return -1;
		}
		addr = &open_opts.agents[open_opts.nr_agents];
		if (vxhs_agent_addr_parse(value, addr)) {
			nbdkit_error("agent=%s: %s", value, vxhs_errmsg());
			return -1;
		}
		open_opts.nr_agents++;
		return 0;
	}
	if (!strcmp(key, "tls")) {
		if (value[0] != '/') {
			nbdkit_error("tls=%s: an absolute directory path",
				     value);
			return -1;
		}
		free((char *)open_opts.tls_dir);
		open_opts.tls_dir = strdup(value);
		tls_named = true;
		return open_opts.tls_dir ? 0 : -1;
	}
	if (!strcmp(key, "plaintext")) {
		r = nbdkit_parse_bool(value);
		if (r == -1)
			return -1;
		open_opts.allow_plaintext = r;
		return 0;
	}
	if (!strcmp(key, "conns"))
		return parse_uint(key, value, 64, &open_opts.conns_per_agent);
	if (!strcmp(key, "io-threads"))
		return parse_uint(key, value, 64, &io_threads);
	if (!strcmp(key, "timeout"))
		return parse_uint(key, value, 3600000,
				  &open_opts.io_timeout_ms);
	if (!strcmp(key, "failover-timeout")) {
		unsigned int s;

		if (parse_uint(key, value, 3600, &s))
			return -1;
		open_opts.failover_deadline_ms = s * 1000;
		return 0;
	}
	nbdkit_error("unknown parameter '%s' (nbdkit vxhs --help lists them)",
		     key);
	return -1;
}

/* TCP agents need TLS or an explicit plaintext=true, as in the handler. */
static int vxhs_plugin_config_complete(void)
{
	const char *dir = getenv("VXHS_TLS_DIR");
	char name[VXHS_HOST_MAX + 16];
	struct stat st;
	unsigned int i;

	if (!vdisk_id) {
		nbdkit_error("vdisk=ID is required");
		return -1;
	}
	if (!open_opts.nr_agents) {
		vxhs_agent_addr_parse(DEFAULT_AGENT, &open_opts.agents[0]);
		open_opts.nr_agents = 1;
	}
	if (tls_named && open_opts.allow_plaintext) {
		nbdkit_error("both tls= and plaintext=true given: choose one");
		return -1;
	}
	for (i = 0; i < open_opts.nr_agents; i++)
		if (!open_opts.agents[i].is_unix)
			break;
	if (i == open_opts.nr_agents || tls_named || open_opts.allow_plaintext)
		return 0;
	if (!dir || !dir[0])
		dir = DEFAULT_TLS_DIR;
	if (!stat(dir, &st) && S_ISDIR(st.st_mode)) {
		open_opts.tls_dir = strdup(dir);
		return open_opts.tls_dir ? 0 : -1;
	}
	vxhs_agent_addr_format(&open_opts.agents[i], name, sizeof(name));
	nbdkit_error("agent %s is reached over TCP, and no TLS credentials are "
		     "set up: put ca.pem, cert.pem and key.pem in %s or give "
		     "tls=DIR; or plaintext=true to send data unencrypted to "
		     "an unauthenticated agent",
		     name, dir);
	return -1;
}

static void library_log(void *opaque, int level, const char *msg)
{
	if (level <= LOG_ERR)
		nbdkit_error("%s", msg);
	else
		nbdkit_debug("%s", msg);
}

/* The library's threads start after nbdkit has forked into the background. */
static int vxhs_plugin_after_fork(void)
{
	struct vxhs_ctx_opts opts;
	int ret;

	vxhs_ctx_opts_init(&opts);
	opts.log = library_log;
	opts.log_level = LOG_INFO;
	opts.io_threads = io_threads;
	ret = vxhs_ctx_new(&opts, &ctx);
	if (ret) {
		nbdkit_error("cannot start the vxhs client: %s",
			     strerror(-ret));
		return -1;
	}
	return 0;
}

static void vxhs_plugin_cleanup(void)
{
	if (ctx)
		vxhs_ctx_free(ctx);
	ctx = NULL;
}

static void *vxhs_plugin_open(int readonly)
{
	struct vxhs_vdisk *vd;
	int ret;

	ret = vxhs_vdisk_open(ctx, vdisk_id, &open_opts, &vd);
	if (ret) {
		nbdkit_error("vdisk %s: %s", vdisk_id, vxhs_errmsg());
		nbdkit_set_error(-ret);
		return NULL;
	}
	return vd;
}

static void vxhs_plugin_close(void *handle)
{
	vxhs_vdisk_close(handle);
}

static uint64_t features(void *handle)
{
	struct vxhs_vdisk_info info;

	vxhs_vdisk_get_info(handle, &info);
	return info.features;
}

static int64_t vxhs_plugin_get_size(void *handle)
{
	struct vxhs_vdisk_info info;

	vxhs_vdisk_get_info(handle, &info);
	return info.size;
}

static int vxhs_plugin_can_flush(void *handle)
{
	return !!(features(handle) & VXHS_FEAT_FLUSH);
}

static int vxhs_plugin_can_fua(void *handle)
{
	return vxhs_plugin_can_flush(handle) ? NBDKIT_FUA_EMULATE :
					       NBDKIT_FUA_NONE;
}

static int vxhs_plugin_can_trim(void *handle)
{
	return !!(features(handle) & VXHS_FEAT_DISCARD);
}

/* Without the extension, nbdkit writes zeroes itself (EOPNOTSUPP below). */
static int vxhs_plugin_can_zero(void *handle)
{
	return 1;
}

static int vxhs_plugin_can_fast_zero(void *handle)
{
	return !!(features(handle) & VXHS_FEAT_WRITE_ZEROES);
}

/* An agent's FLUSH makes every completed write of the vdisk stable. */
static int vxhs_plugin_can_multi_conn(void *handle)
{
	return vxhs_plugin_can_flush(handle);
}

static int vxhs_plugin_is_rotational(void *handle)
{
	return 0;
}

static int result(void *handle, const char *op, int ret)
{
	if (!ret)
		return 0;
	nbdkit_error("vdisk %s: %s: %s", vxhs_vdisk_id(handle), op,
		     strerror(-ret));
	nbdkit_set_error(-ret);
	return -1;
}

static int vxhs_plugin_pread(void *handle, void *buf, uint32_t count,
			     uint64_t offset, uint32_t flags)
{
	struct iovec iov = { buf, count };

	return result(handle, "read", vxhs_readv_sync(handle, &iov, 1, offset));
}

static int vxhs_plugin_pwrite(void *handle, const void *buf, uint32_t count,
			      uint64_t offset, uint32_t flags)
{
	struct iovec iov = { (void *)buf, count };

	return result(handle, "write",
		      vxhs_writev_sync(handle, &iov, 1, offset));
}

static int vxhs_plugin_flush(void *handle, uint32_t flags)
{
	return result(handle, "flush", vxhs_flush_sync(handle));
}

static int vxhs_plugin_trim(void *handle, uint32_t count, uint64_t offset,
			    uint32_t flags)
{
	return result(handle, "discard",
		      vxhs_discard_sync(handle, offset, count));
}

/*
 * A DISCARD reads back as zeroes on every agent that has it (docs/protocol.md),
 * so where the client allows holes it is the zeroing that keeps the vdisk
 * sparse (qemu-img convert zeroes a whole target that way).
 */
static int vxhs_plugin_zero(void *handle, uint32_t count, uint64_t offset,
			    uint32_t flags)
{
	uint64_t feat = features(handle);

	if ((flags & NBDKIT_FLAG_MAY_TRIM) && (feat & VXHS_FEAT_DISCARD))
		return result(handle, "discard",
			      vxhs_discard_sync(handle, offset, count));
	if (!(feat & VXHS_FEAT_WRITE_ZEROES)) {
		nbdkit_set_error(EOPNOTSUPP);
		return -1;
	}
	return result(handle, "write zeroes",
		      vxhs_write_zeroes_sync(handle, offset, count));
}

static struct nbdkit_plugin plugin = {
	.name = "vxhs",
	.longname = "HyperScale (VxHS) vdisks through libvxhs",
	.version = VXHS_VERSION,
	.description = "Serve a vdisk of a HyperScale agent or vxhsd.",
	.load = vxhs_plugin_load,
	.unload = vxhs_plugin_unload,
	.config = vxhs_plugin_config,
	.config_complete = vxhs_plugin_config_complete,
	.config_help =
		"vdisk=<ID>              (required) the vdisk to serve\n"
		"agent=<ADDR>            agent: HOST[:PORT], [IPV6]:PORT or\n"
		"                        unix:/PATH; repeat for failover (up\n"
		"                        to 4; default " DEFAULT_AGENT ")\n"
		"tls=<DIR>               TLS to TCP agents: ca.pem, cert.pem,\n"
		"                        key.pem (default " DEFAULT_TLS_DIR
		", if it exists)\n"
		"plaintext=true          TCP agents without TLS\n"
		"conns=<N>               connections per agent (default 8)\n"
		"io-threads=<N>          the library's I/O threads\n"
		"timeout=<MS>            per-request timeout (default 30000)\n"
		"failover-timeout=<S>    how long requests wait for an agent\n"
		"                        (default 60)",
	.magic_config_key = "vdisk",
	.after_fork = vxhs_plugin_after_fork,
	.cleanup = vxhs_plugin_cleanup,
	.open = vxhs_plugin_open,
	.close = vxhs_plugin_close,
	.get_size = vxhs_plugin_get_size,
	.can_flush = vxhs_plugin_can_flush,
	.can_fua = vxhs_plugin_can_fua,
	.can_trim = vxhs_plugin_can_trim,
	.can_zero = vxhs_plugin_can_zero,
	.can_fast_zero = vxhs_plugin_can_fast_zero,
	.can_multi_conn = vxhs_plugin_can_multi_conn,
	.is_rotational = vxhs_plugin_is_rotational,
	.pread = vxhs_plugin_pread,
	.pwrite = vxhs_plugin_pwrite,
	.flush = vxhs_plugin_flush,
	.trim = vxhs_plugin_trim,
	.zero = vxhs_plugin_zero,
	.errno_is_preserved = 0,
};

NBDKIT_REGISTER_PLUGIN(plugin)
