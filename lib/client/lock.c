// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * The vdisk's exclusive lock (docs/protocol.md, "The exclusive lock"): the
 * three requests, their answers, and the epoch a handle's writes carry.
 */
#include <errno.h>
#include <string.h>
#include <syslog.h>

#include "internal.h"
#include "vxhs/kvset.h"

static int need_lock(struct vxhs_vdisk *vd, uint16_t opcode)
{
	if (vd_features(vd) & VXHS_FEAT_LOCK)
		return 0;
	return set_error(-EOPNOTSUPP, "vdisk %s: the agent does not offer %s",
			 vd->id, vxhs_opcode_name(opcode));
}

/* A lock request, stamped with the epoch this handle holds (the agent
 * reads it for ACQUIRE and RELEASE). Only ACQUIRE sends the owner. */
static int lock_submit(struct vxhs_vdisk *vd, uint16_t opcode,
		       const char *owner, size_t len, uint16_t tag,
		       struct vxhs_lock_info *info, vxhs_done_fn done,
		       void *opaque, struct vxhs_req **out)
{
	bool send = opcode == VXHS_OP_LOCK_ACQUIRE;
	struct iovec iov = { NULL, send ? len : 0 };
	struct vxhs_req *req;
	int ret = need_lock(vd, opcode);

	if (!ret)
		ret = vd_req_new(vd, opcode, &iov, send ? 1 : 0, tag,
				 iov.iov_len, done, opaque, &req);
	if (ret)
		return ret;
	if (owner) {
		memset(req->owner, 0, sizeof(req->owner));
		memcpy(req->owner, owner, len);
		if (send)
			req->iov[0].iov_base = req->owner;
	}
	req->epoch = atomic_load(&vd->lock_epoch);
	req->lock_info = info;
	if (out)
		*out = req;
	else
		loop_submit(vd->loop, &req->msg);
	return 0;
}

static size_t owner_len(const char *owner)
{
	return owner ? strnlen(owner, VXHS_LOCK_OWNER_MAX + 1) : 0;
}

static int owner_check(const char *owner, size_t len, const char *what)
{
	if (owner && vxhs_lock_owner_valid(owner, len))
		return 0;
	return set_error(
		-EINVAL,
		"%s: the owner must be 1 to %d printable characters without spaces",
		what, VXHS_LOCK_OWNER_MAX);
}

int vxhs_lock_acquire(struct vxhs_vdisk *vd, const char *owner, uint16_t tag,
		      struct vxhs_lock_info *info, vxhs_done_fn done,
		      void *opaque)
{
	size_t len = owner_len(owner);
	int ret = owner_check(owner, len, "LOCK_ACQUIRE");

	return ret ? ret :
		     lock_submit(vd, VXHS_OP_LOCK_ACQUIRE, owner, len, tag,
				 info, done, opaque, NULL);
}

int vxhs_lock_resume(struct vxhs_vdisk *vd, const char *owner, uint64_t epoch,
		     vxhs_done_fn done, void *opaque)
{
	size_t len = owner_len(owner);
	struct vxhs_req *req;
	int ret = owner_check(owner, len, "lock resume");

	if (!ret && !epoch)
		ret = set_error(-EINVAL, "lock resume: epoch 0 is no lock");
	if (!ret)
		ret = lock_submit(vd, VXHS_OP_LOCK_QUERY, owner, len, 0, NULL,
				  done, opaque, &req);
	if (ret)
		return ret;
	req->resume = true;
	req->epoch = epoch;
	loop_submit(vd->loop, &req->msg);
	return 0;
}

int vxhs_lock_release(struct vxhs_vdisk *vd, vxhs_done_fn done, void *opaque)
{
	return lock_submit(vd, VXHS_OP_LOCK_RELEASE, NULL, 0, 0, NULL, done,
			   opaque, NULL);
}

int vxhs_lock_query(struct vxhs_vdisk *vd, struct vxhs_lock_info *info,
		    vxhs_done_fn done, void *opaque)
{
	return lock_submit(vd, VXHS_OP_LOCK_QUERY, NULL, 0, 0, info, done,
			   opaque, NULL);
}

uint64_t vxhs_lock_epoch(struct vxhs_vdisk *vd)
{
	return atomic_load(&vd->lock_epoch);
}

struct lock_answer {
	struct vxhs_lock_info info;
	bool have_epoch, have_held, have_owner;
};

/* An owner's name from an agent: checked like one we would send, since it
 * goes into logs. */
static int take_owner(const struct vxhs_kv *kv, char *out)
{
	if (kv->type != VXHS_KV_STRING || kv->value_len > VXHS_LOCK_OWNER_MAX ||
	    (kv->value_len &&
	     !vxhs_lock_owner_valid((const char *)kv->value, kv->value_len)))
		return -EPROTO;
	memcpy(out, kv->value, kv->value_len);
	out[kv->value_len] = '\0';
	return 0;
}

static int lock_visit(const struct vxhs_kv *kv, void *opaque)
{
	struct lock_answer *a = opaque;

#define KEY_IS(k) (kv->key_len == strlen(k) && !memcmp(kv->key, k, kv->key_len))
	if (kv->depth)
		return 0;
	if (KEY_IS(VXHS_LOCK_KEY_EPOCH)) {
		if (kv->type != VXHS_KV_UINT64)
			return -EPROTO;
		a->info.epoch = kv->num;
		a->have_epoch = true;
	} else if (KEY_IS(VXHS_LOCK_KEY_HELD)) {
		if (kv->type != VXHS_KV_BOOL)
			return -EPROTO;
		a->info.held = kv->num != 0;
		a->have_held = true;
	} else if (KEY_IS(VXHS_LOCK_KEY_OWNER)) {
		a->have_owner = true;
		return take_owner(kv, a->info.owner);
	} else if (KEY_IS(VXHS_LOCK_KEY_PREV)) {
		return take_owner(kv, a->info.broken);
	} else if (KEY_IS(VXHS_LOCK_KEY_SINCE)) {
		if (kv->type != VXHS_KV_UINT64)
			return -EPROTO;
		a->info.since = kv->num;
	} else if (KEY_IS(VXHS_LOCK_KEY_TAG)) {
		if (kv->type != VXHS_KV_UINT32 || kv->num > VXHS_LOCK_TAG_MAX)
			return -EPROTO;
		a->info.tag = (uint16_t)kv->num;
	}
#undef KEY_IS
	return 0;
}

/* The lock is still the one the resume names: the handle takes its epoch
 * (unless it took one of its own meanwhile). */
static int resume_apply(struct vxhs_req *req, const struct vxhs_lock_info *info)
{
	uint64_t none = 0;

	if (!info->held || info->epoch != req->epoch ||
	    strlen(info->owner) != strnlen(req->owner, sizeof(req->owner)) ||
	    strncmp(info->owner, req->owner, sizeof(req->owner)))
		return -ESTALE;
	atomic_compare_exchange_strong(&req->vd->lock_epoch, &none, req->epoch);
	return 0;
}

int lock_answer_apply(struct vxhs_req *req, int result, const uint8_t *kv,
		      size_t len)
{
	struct vxhs_vdisk *vd = req->vd;
	struct lock_answer a = { 0 };
	uint64_t held = req->epoch;
	int ret;

	if (req->opcode == VXHS_OP_LOCK_RELEASE) {
		/* Let go, or found lost: either way not ours now. */
		if (!result || result == -ESTALE)
			atomic_compare_exchange_strong(&vd->lock_epoch, &held,
						       0);
		return result;
	}
	if (result)
		return result;
	ret = vxhs_kvset_parse(kv, len, lock_visit, &a);
	if (!ret && (!a.have_epoch || !a.have_held || !a.have_owner))
		ret = -EPROTO;
	/* An acquire that succeeded holds the lock it names. */
	if (!ret && req->opcode == VXHS_OP_LOCK_ACQUIRE &&
	    (!a.info.held || !a.info.epoch ||
	     strncmp(a.info.owner, req->owner, sizeof(req->owner)) ||
	     strlen(a.info.owner) != req->len))
		ret = -EPROTO;
	if (ret) {
		loop_log(vd->loop, LOG_ERR,
			 "vdisk %s: malformed %s answer (%s)", vd->id,
			 vxhs_opcode_name(req->opcode), strerror(-ret));
		return -EPROTO;
	}
	if (req->opcode == VXHS_OP_LOCK_ACQUIRE)
		atomic_store(&vd->lock_epoch, a.info.epoch);
	if (req->resume)
		return resume_apply(req, &a.info);
	if (req->lock_info)
		*req->lock_info = a.info;
	return 0;
}

void lock_fenced(struct vxhs_req *req)
{
	struct vxhs_vdisk *vd = req->vd;
	uint64_t epoch = req->epoch;

	if (epoch && atomic_compare_exchange_strong(&vd->lock_epoch, &epoch, 0))
		loop_log(
			vd->loop, LOG_WARNING,
			"vdisk %s: lock lost: a %s made under epoch %llu was fenced (another owner took the lock)",
			vd->id, vxhs_opcode_name(req->opcode),
			(unsigned long long)req->epoch);
}
