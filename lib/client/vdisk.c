// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * The public vdisk API: argument checks on the caller's thread, then a
 * message to the I/O thread. Nothing here blocks except open and close.
 * And what the vdisk knows of itself: the VDISK_STAT answer parsed.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "internal.h"
#include "vxhs/kvset.h"

#define MIN_SPLIT 4096u
#define MAX_SPLIT (64u << 20)

void vxhs_open_opts_init(struct vxhs_open_opts *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->conns_per_agent = 8;
	opts->max_io_size = 1u << 20;
	opts->connect_timeout_ms = 5000;
	opts->io_timeout_ms = 30000;
	opts->failover_deadline_ms = 60000;
	opts->retry_queue_max = 4096;
	opts->max_attempts = 5;
	opts->shm_fd = -1;
}

static int check_opts(const char *id, const struct vxhs_open_opts *o)
{
	if (!vxhs_vdisk_id_valid(id))
		return set_error(
			-EINVAL,
			"vdisk id '%.80s' is invalid: use 1 to %d of A-Z a-z 0-9 . _ - { }, not starting with '.'",
			id, VXHS_VDISK_ID_MAX);
	if (o->nr_agents < 1 || o->nr_agents > VXHS_MAX_AGENTS)
		return set_error(-EINVAL,
				 "vdisk %s: %u agents given, 1 to %d allowed",
				 id, o->nr_agents, VXHS_MAX_AGENTS);
	if (o->conns_per_agent < 1 || o->conns_per_agent > 64)
		return set_error(
			-EINVAL,
			"vdisk %s: %u connections per agent, 1 to 64 allowed",
			id, o->conns_per_agent);
	if (o->max_io_size < MIN_SPLIT || o->max_io_size > MAX_SPLIT)
		return set_error(
			-EINVAL,
			"vdisk %s: maximum I/O size %u is outside %u..%u", id,
			o->max_io_size, MIN_SPLIT, MAX_SPLIT);
	for (unsigned int i = 0; i < o->nr_agents; i++) {
		char name[VXHS_HOST_MAX + 16];

		if (o->agents[i].is_unix || o->tls_dir || o->allow_plaintext)
			continue;
		vxhs_agent_addr_format(&o->agents[i], name, sizeof(name));
		return set_error(
			-EINVAL,
			"vdisk %s: agent %s is reached over TCP without TLS: "
			"name a TLS credentials directory, or allow plaintext "
			"explicitly (no encryption, no authentication)",
			id, name);
	}
	if (o->shm_len && (o->shm_fd < 0 || !o->shm_base))
		return set_error(
			-EINVAL,
			"vdisk %s: shared memory needs a descriptor and its address",
			id);
	if (!o->connect_timeout_ms || !o->io_timeout_ms ||
	    !o->failover_deadline_ms || !o->retry_queue_max || !o->max_attempts)
		return set_error(
			-EINVAL,
			"vdisk %s: timeouts, deadline, retry queue and attempts must be positive",
			id);
	return 0;
}

int vxhs_vdisk_open(struct vxhs_ctx *ctx, const char *vdisk_id,
		    const struct vxhs_open_opts *opts, struct vxhs_vdisk **out)
{
	struct vxhs_msg msg = { .type = MSG_OPEN };
	struct vxhs_vdisk *vd;
	int ret;

	ret = check_opts(vdisk_id, opts);
	if (ret)
		return ret;
	vd = calloc(1, sizeof(*vd));
	if (!vd)
		return set_error(-ENOMEM, "vdisk %s: out of memory", vdisk_id);
	for (unsigned int i = 0; i < opts->nr_agents; i++) {
		ret = agent_resolve(&opts->agents[i], &vd->res[i]);
		if (ret) {
			set_error(ret, "vdisk %s: %s", vdisk_id, vxhs_errmsg());
			goto free_vd;
		}
	}
	if (opts->tls_dir) {
		ret = tls_creds_get(opts->tls_dir, &vd->tls);
		if (ret) {
			set_error(ret, "vdisk %s: %s", vdisk_id, vxhs_errmsg());
			goto free_vd;
		}
	}
	strcpy(vd->id, vdisk_id);
	vd->loop = ctx_pick_loop(ctx);
	vd->opts = *opts;
	vd->opts.tls_dir = vd->tls ? vd->tls->dir : NULL;
	vd->nr_agents = opts->nr_agents;
	atomic_init(&vd->state, VD_OPENING);
	atomic_init(&vd->split_size, opts->max_io_size);
	list_init(&vd->retry);
	list_init(&vd->trouble_link);
	list_init(&vd->link);
	pthread_mutex_init(&vd->info_lock, NULL);
	vd->info.max_io_size = opts->max_io_size;
	vd->open_msg = &msg;
	msg.vd = vd;

	loop_submit_wait(vd->loop, &msg);
	if (vd->open_result) {
		ret = set_error(vd->open_result, "cannot open vdisk %s: %s",
				vd->id,
				vd->open_errors[0] ?
					vd->open_errors :
					strerror(-vd->open_result));
		pthread_mutex_destroy(&vd->info_lock);
		ctx_vdisk_closed(vd->loop);
		goto free_vd;
	}
	*out = vd;
	return 0;

free_vd:
	tls_creds_put(vd->tls);
	free(vd);
	return ret;
}

void vxhs_vdisk_close(struct vxhs_vdisk *vd)
{
	struct vxhs_msg msg = { .type = MSG_CLOSE, .vd = vd };

	if (!vd)
		return;
	loop_submit_wait(vd->loop, &msg);
	ctx_vdisk_closed(vd->loop);
	pthread_mutex_destroy(&vd->info_lock);
	tls_creds_put(vd->tls);
	free(vd);
}

void vxhs_vdisk_get_info(struct vxhs_vdisk *vd, struct vxhs_vdisk_info *info)
{
	pthread_mutex_lock(&vd->info_lock);
	*info = vd->info;
	pthread_mutex_unlock(&vd->info_lock);
	info->agent = vd->cur;
}

const char *vxhs_vdisk_id(const struct vxhs_vdisk *vd)
{
	return vd->id;
}

uint64_t vd_features(struct vxhs_vdisk *vd)
{
	uint64_t f;

	pthread_mutex_lock(&vd->info_lock);
	f = vd->info.features;
	pthread_mutex_unlock(&vd->info_lock);
	return f;
}

int vd_req_new(struct vxhs_vdisk *vd, uint16_t opcode, const struct iovec *iov,
	       int iovcnt, uint64_t offset, uint64_t len, vxhs_done_fn done,
	       void *opaque, struct vxhs_req **out)
{
	struct vxhs_req *req;

	if (!done)
		return set_error(-EINVAL, "%s: no completion callback",
				 vxhs_opcode_name(opcode));
	switch (vd_state(vd)) {
	case VD_FAILED:
		return set_error(
			-ENOTCONN,
			"vdisk %s: failed (no agent took over); reopen it",
			vd->id);
	case VD_CLOSED:
		return set_error(-EBADF, "vdisk %s: closed", vd->id);
	default:
		break;
	}
	req = req_alloc(vd, opcode, iov, iovcnt, offset, len);
	if (!req)
		return set_error(-ENOMEM, "vdisk %s: out of memory", vd->id);
	req->done = done;
	req->opaque = opaque;
	/* Made under the lock this handle holds now, if any: a retry after
	 * the lock moved on must not land (docs/protocol.md). */
	if (vxhs_opcode_fenced(opcode))
		req->epoch = atomic_load(&vd->lock_epoch);
	*out = req;
	return 0;
}

static int submit(struct vxhs_vdisk *vd, uint16_t opcode,
		  const struct iovec *iov, int iovcnt, uint64_t offset,
		  uint64_t len, uint64_t *miscompare, vxhs_done_fn done,
		  void *opaque)
{
	struct vxhs_req *req;
	int ret;

	ret = vd_req_new(vd, opcode, iov, iovcnt, offset, len, done, opaque,
			 &req);
	if (ret)
		return ret;
	req->miscompare = miscompare;
	loop_submit(vd->loop, &req->msg);
	return 0;
}

static int submit_data(struct vxhs_vdisk *vd, uint16_t opcode,
		       const struct iovec *iov, int iovcnt, uint64_t offset,
		       vxhs_done_fn done, void *opaque)
{
	uint64_t len;

	if (iovcnt < 0 || (iovcnt && !iov))
		return set_error(-EINVAL, "%s: bad iovec array",
				 vxhs_opcode_name(opcode));
	len = iov_total(iov, iovcnt);
	if (!len)
		return set_error(-EINVAL, "%s: zero-length request",
				 vxhs_opcode_name(opcode));
	if (offset + len < offset)
		return set_error(-EINVAL, "%s: offset %llu + length wraps",
				 vxhs_opcode_name(opcode),
				 (unsigned long long)offset);
	return submit(vd, opcode, iov, iovcnt, offset, len, NULL, done, opaque);
}

int vxhs_readv(struct vxhs_vdisk *vd, const struct iovec *iov, int iovcnt,
	       uint64_t offset, vxhs_done_fn done, void *opaque)
{
	return submit_data(vd, VXHS_OP_READ, iov, iovcnt, offset, done, opaque);
}

int vxhs_writev(struct vxhs_vdisk *vd, const struct iovec *iov, int iovcnt,
		uint64_t offset, vxhs_done_fn done, void *opaque)
{
	return submit_data(vd, VXHS_OP_WRITE, iov, iovcnt, offset, done,
			   opaque);
}

static int submit_ext(struct vxhs_vdisk *vd, uint16_t opcode, uint64_t feat,
		      uint64_t offset, uint64_t len, vxhs_done_fn done,
		      void *opaque)
{
	if (!(vd_features(vd) & feat))
		return set_error(-EOPNOTSUPP,
				 "vdisk %s: the agent does not offer %s",
				 vd->id, vxhs_opcode_name(opcode));
	if (offset + len < offset)
		return set_error(-EINVAL, "%s: offset %llu + length wraps",
				 vxhs_opcode_name(opcode),
				 (unsigned long long)offset);
	return submit(vd, opcode, NULL, 0, offset, len, NULL, done, opaque);
}

int vxhs_flush(struct vxhs_vdisk *vd, vxhs_done_fn done, void *opaque)
{
	return submit_ext(vd, VXHS_OP_FLUSH, VXHS_FEAT_FLUSH, 0, 0, done,
			  opaque);
}

int vxhs_write_zeroes(struct vxhs_vdisk *vd, uint64_t offset, uint64_t len,
		      vxhs_done_fn done, void *opaque)
{
	if (!len)
		return set_error(-EINVAL, "WRITE_ZEROES: zero length");
	return submit_ext(vd, VXHS_OP_WRITE_ZEROES, VXHS_FEAT_WRITE_ZEROES,
			  offset, len, done, opaque);
}

int vxhs_discard(struct vxhs_vdisk *vd, uint64_t offset, uint64_t len,
		 vxhs_done_fn done, void *opaque)
{
	if (!len)
		return set_error(-EINVAL, "DISCARD: zero length");
	return submit_ext(vd, VXHS_OP_DISCARD, VXHS_FEAT_DISCARD, offset, len,
			  done, opaque);
}

int vxhs_compare_and_write(struct vxhs_vdisk *vd, const struct iovec *iov,
			   int iovcnt, uint64_t offset, uint64_t len,
			   uint64_t *miscompare, vxhs_done_fn done,
			   void *opaque)
{
	static const char op[] = "COMPARE_AND_WRITE";

	if (!(vd_features(vd) & VXHS_FEAT_COMPARE_AND_WRITE))
		return set_error(-EOPNOTSUPP,
				 "vdisk %s: the agent does not offer %s",
				 vd->id, op);
	if (!len || len > VXHS_CAW_MAX)
		return set_error(-EINVAL, "%s: length %llu (1 to %u bytes)", op,
				 (unsigned long long)len, VXHS_CAW_MAX);
	if (iovcnt < 0 || (iovcnt && !iov) || iov_total(iov, iovcnt) != 2 * len)
		return set_error(-EINVAL,
				 "%s: the buffers must hold twice the length",
				 op);
	if (offset + len < offset)
		return set_error(-EINVAL, "%s: offset %llu + length wraps", op,
				 (unsigned long long)offset);
	return submit(vd, VXHS_OP_COMPARE_AND_WRITE, iov, iovcnt, offset, len,
		      miscompare, done, opaque);
}

int vxhs_write_same(struct vxhs_vdisk *vd, const void *pattern,
		    size_t pattern_len, uint64_t offset, uint64_t len,
		    vxhs_done_fn done, void *opaque)
{
	static const char op[] = "WRITE_SAME";
	struct iovec iov = { (void *)pattern, pattern_len };

	if (!(vd_features(vd) & VXHS_FEAT_WRITE_SAME))
		return set_error(-EOPNOTSUPP,
				 "vdisk %s: the agent does not offer %s",
				 vd->id, op);
	if (!pattern || !pattern_len || pattern_len > VXHS_SAME_PATTERN_MAX)
		return set_error(-EINVAL, "%s: a pattern of 1 to %u bytes", op,
				 VXHS_SAME_PATTERN_MAX);
	if (!len || len % pattern_len)
		return set_error(
			-EINVAL,
			"%s: length %llu is not a non-zero multiple of the pattern's %zu bytes",
			op, (unsigned long long)len, pattern_len);
	if (offset + len < offset)
		return set_error(-EINVAL, "%s: offset %llu + length wraps", op,
				 (unsigned long long)offset);
	return submit(vd, VXHS_OP_WRITE_SAME, &iov, 1, offset, len, NULL, done,
		      opaque);
}

int vxhs_copy(struct vxhs_vdisk *vd, const char *src_id, uint64_t src_offset,
	      uint64_t offset, uint64_t len, vxhs_done_fn done, void *opaque)
{
	static const char op[] = "COPY";
	size_t n = src_id ? strnlen(src_id, VXHS_TARGET_SIZE) : 0;
	struct iovec iov = { NULL, 8 + n };
	struct vxhs_req *req;
	int ret;

	if (!(vd_features(vd) & VXHS_FEAT_COPY))
		return set_error(-EOPNOTSUPP,
				 "vdisk %s: the agent does not offer %s",
				 vd->id, op);
	if (!src_id || !vxhs_vdisk_id_valid(src_id))
		return set_error(-EINVAL, "%s: invalid source vdisk id", op);
	if (!len || len > VXHS_COPY_MAX)
		return set_error(-EINVAL, "%s: length %llu (1 to %u bytes)", op,
				 (unsigned long long)len, VXHS_COPY_MAX);
	if (offset + len < offset || src_offset + len < src_offset)
		return set_error(-EINVAL, "%s: an offset + length wraps", op);
	ret = vd_req_new(vd, VXHS_OP_COPY, &iov, 1, offset, len, done, opaque,
			 &req);
	if (ret)
		return ret;
	vxhs_put_le64(req->copy_source, src_offset);
	memcpy(req->copy_source + 8, src_id, n);
	req->iov[0].iov_base = req->copy_source;
	loop_submit(vd->loop, &req->msg);
	return 0;
}

int vxhs_stat(struct vxhs_vdisk *vd, vxhs_done_fn done, void *opaque)
{
	return submit(vd, VXHS_OP_STAT, NULL, 0, 0, 0, NULL, done, opaque);
}

/* What the agent says of the vdisk, from a VDISK_STAT answer. */

struct stat_result {
	uint64_t size;
	uint64_t features;
	uint64_t max_io;
	char agent[64];
	int have_size;
};

static int stat_visit(const struct vxhs_kv *kv, void *opaque)
{
	struct stat_result *r = opaque;
	size_t n;

#define KEY_IS(k) (kv->key_len == strlen(k) && !memcmp(kv->key, k, kv->key_len))
	if (kv->depth)
		return 0;
	if (KEY_IS(VXHS_KEY_SIZE)) {
		if (kv->type != VXHS_KV_UINT64)
			return -EPROTO;
		r->size = kv->num;
		r->have_size = 1;
	} else if (KEY_IS(VXHS_KEY_FEATURES) && kv->type == VXHS_KV_UINT64) {
		r->features = kv->num & VXHS_FEAT_ALL;
	} else if (KEY_IS(VXHS_KEY_MAX_IO) && kv->type == VXHS_KV_UINT64) {
		r->max_io = kv->num;
	} else if (KEY_IS(VXHS_KEY_AGENT) && kv->type == VXHS_KV_STRING) {
		/* It goes into logs and onto terminals: printable ASCII
		 * only, or the agent could forge lines or move cursors. */
		n = MIN(kv->value_len, sizeof(r->agent) - 1);
		for (size_t i = 0; i < n; i++)
			r->agent[i] = kv->value[i] >= 0x20 &&
						      kv->value[i] < 0x7f ?
					      (char)kv->value[i] :
					      '?';
		r->agent[n] = '\0';
	}
#undef KEY_IS
	return 0;
}

int vd_stat_apply(struct vxhs_vdisk *vd, const uint8_t *kv, size_t len)
{
	struct stat_result r = { 0 };
	uint32_t split = vd->opts.max_io_size;
	int ret;

	ret = vxhs_kvset_parse(kv, len, stat_visit, &r);
	if (!ret && !r.have_size)
		ret = -EPROTO;
	if (ret) {
		loop_log(vd->loop, LOG_ERR,
			 "vdisk %s: malformed VDISK_STAT answer (%s)", vd->id,
			 strerror(-ret));
		return -EPROTO;
	}
	/* Stay within what the agent said it accepts. */
	if (r.max_io && r.max_io < split)
		split = (uint32_t)MAX(r.max_io, 512);

	pthread_mutex_lock(&vd->info_lock);
	vd->info.size = r.size;
	vd->info.features = r.features;
	vd->info.agent_max_io = r.max_io;
	vd->info.max_io_size = split;
	memcpy(vd->info.agent_name, r.agent, sizeof(r.agent));
	pthread_mutex_unlock(&vd->info_lock);
	atomic_store(&vd->split_size, split);
	return 0;
}
