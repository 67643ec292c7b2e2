// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * kvset parsing and building. The parser never trusts a length: each one is
 * checked against the bytes that remain before it is used, and every loop
 * consumes at least one byte per iteration, so hostile counts cannot spin.
 */
#include <errno.h>
#include <string.h>

#include "vxhs/kvset.h"
#include "vxhs/wire.h"

struct cursor {
	const uint8_t *p;
	size_t left;
};

static int take(struct cursor *c, size_t n, const uint8_t **out)
{
	if (n > c->left)
		return -EPROTO;
	*out = c->p;
	c->p += n;
	c->left -= n;
	return 0;
}

static int take_u32(struct cursor *c, uint32_t *v)
{
	const uint8_t *p;
	int ret = take(c, 4, &p);

	if (!ret)
		*v = vxhs_get_be32(p);
	return ret;
}

static int walk_entries(struct cursor *c, uint32_t count, unsigned int depth,
			vxhs_kv_visit_fn fn, void *opaque);

/* Fixed encoded size of a scalar type, or 0 for variable-length types. */
static size_t scalar_size(uint32_t type)
{
	switch (type) {
	case VXHS_KV_BOOL:
		return 1;
	case VXHS_KV_INT32:
	case VXHS_KV_UINT32:
		return 4;
	case VXHS_KV_INT64:
	case VXHS_KV_UINT64:
	case VXHS_KV_TIME:
		return 8;
	case VXHS_KV_GUID:
		return 16;
	}
	return 0;
}

static uint64_t scalar_value(uint32_t type, const uint8_t *p)
{
	switch (type) {
	case VXHS_KV_BOOL:
		return p[0];
	case VXHS_KV_INT32:
		return (uint64_t)(int64_t)(int32_t)vxhs_get_be32(p);
	case VXHS_KV_UINT32:
		return vxhs_get_be32(p);
	case VXHS_KV_INT64:
	case VXHS_KV_UINT64:
	case VXHS_KV_TIME:
		return vxhs_get_be64(p);
	}
	return 0;
}

/*
 * Consumes one value of the given type. For a nested set, fn (which may be
 * NULL for a validation-only pass) sees the children.
 */
static int walk_value(struct cursor *c, uint32_t type, unsigned int depth,
		      vxhs_kv_visit_fn fn, void *opaque, struct vxhs_kv *kv)
{
	const uint8_t *p;
	uint32_t n;
	size_t fixed;
	int ret;

	if (type & VXHS_KV_ARRAY) {
		uint32_t base = type & ~VXHS_KV_ARRAY;

		if (base & VXHS_KV_ARRAY)
			return -EPROTO;
		ret = take_u32(c, &n);
		if (ret)
			return ret;
		kv->value = c->p;
		for (uint32_t i = 0; i < n; i++) {
			struct vxhs_kv elem;

			/* Elements are not visited; nested sets inside arrays
			 * are still validated. */
			ret = walk_value(c, base, depth, NULL, NULL, &elem);
			if (ret)
				return ret;
		}
		kv->value_len = (size_t)(c->p - kv->value);
		return 0;
	}

	fixed = scalar_size(type);
	if (fixed) {
		ret = take(c, fixed, &p);
		if (ret)
			return ret;
		kv->value = p;
		kv->value_len = fixed;
		kv->num = scalar_value(type, p);
		return 0;
	}

	switch (type) {
	case VXHS_KV_STRING:
	case VXHS_KV_BINARY:
		ret = take_u32(c, &n);
		if (!ret)
			ret = take(c, n, &p);
		if (ret)
			return ret;
		kv->value = p;
		kv->value_len = n;
		return 0;
	case VXHS_KV_SET:
		if (depth + 1 >= VXHS_KVSET_MAX_DEPTH)
			return -ELOOP;
		ret = take_u32(c, &n);
		if (ret)
			return ret;
		kv->value = c->p;
		ret = walk_entries(c, n, depth + 1, fn, opaque);
		kv->value_len = (size_t)(c->p - kv->value);
		return ret;
	}
	return -EPROTO;
}

static int walk_entries(struct cursor *c, uint32_t count, unsigned int depth,
			vxhs_kv_visit_fn fn, void *opaque)
{
	for (uint32_t i = 0; i < count; i++) {
		struct vxhs_kv kv = { .depth = depth };
		struct cursor value_start;
		uint32_t keylen;
		const uint8_t *key;
		int ret;

		ret = take_u32(c, &kv.type);
		if (!ret)
			ret = take_u32(c, &keylen);
		if (!ret && keylen > VXHS_KVSET_MAX_KEY)
			ret = -EPROTO;
		if (!ret)
			ret = take(c, keylen, &key);
		if (!ret)
			ret = take_u32(c, &kv.flags);
		if (ret)
			return ret;
		kv.key = (const char *)key;
		kv.key_len = keylen;

		if (!fn) {
			ret = walk_value(c, kv.type, depth, NULL, NULL, &kv);
			if (ret)
				return ret;
			continue;
		}

		/* The caller validated the whole set first, so this measuring
		 * pass cannot fail; it lets the parent be visited before its
		 * children with its value length known. */
		value_start = *c;
		ret = walk_value(c, kv.type, depth, NULL, NULL, &kv);
		if (ret)
			return ret;
		ret = fn(&kv, opaque);
		if (ret)
			return ret;
		if (kv.type == VXHS_KV_SET) {
			struct vxhs_kv ignored;

			ret = walk_value(&value_start, kv.type, depth, fn,
					 opaque, &ignored);
			if (ret)
				return ret;
		}
	}
	return 0;
}

static int walk_top(const uint8_t *buf, size_t len, vxhs_kv_visit_fn fn,
		    void *opaque)
{
	struct cursor c = { .p = buf, .left = len };
	uint32_t magic, total, count;
	int ret;

	if (len < 12)
		return -EBADMSG;
	take_u32(&c, &magic);
	take_u32(&c, &total);
	take_u32(&c, &count);
	if (magic != VXHS_KVSET_MAGIC || total != len)
		return -EBADMSG;
	ret = walk_entries(&c, count, 0, fn, opaque);
	if (ret)
		return ret;
	return c.left ? -EBADMSG : 0;
}

int vxhs_kvset_parse(const uint8_t *buf, size_t len, vxhs_kv_visit_fn fn,
		     void *opaque)
{
	int ret = walk_top(buf, len, NULL, NULL);

	if (ret || !fn)
		return ret;
	return walk_top(buf, len, fn, opaque);
}

struct find_u64 {
	const char *key;
	size_t key_len;
	uint64_t value;
	int status;
};

static int find_u64_visit(const struct vxhs_kv *kv, void *opaque)
{
	struct find_u64 *f = opaque;

	if (kv->depth != 0 || kv->key_len != f->key_len ||
	    memcmp(kv->key, f->key, f->key_len) != 0)
		return 0;
	if (kv->type != VXHS_KV_UINT64) {
		f->status = -EPROTO;
		return 1;
	}
	f->value = kv->num;
	f->status = 0;
	return 1;
}

int vxhs_kvset_get_u64(const uint8_t *buf, size_t len, const char *key,
		       uint64_t *out)
{
	struct find_u64 f = {
		.key = key,
		.key_len = strlen(key),
		.status = -ENOENT,
	};
	int ret = vxhs_kvset_parse(buf, len, find_u64_visit, &f);

	if (ret < 0)
		return ret;
	if (!f.status)
		*out = f.value;
	return f.status;
}

void vxhs_kvset_begin(struct vxhs_kvset_builder *b, uint8_t *buf, size_t cap)
{
	memset(b, 0, sizeof(*b));
	b->buf = buf;
	b->cap = cap;
	b->len = 12; /* magic, length, count: written by _end */
	b->overflow = cap < 12;
}

static uint8_t *reserve(struct vxhs_kvset_builder *b, size_t n)
{
	uint8_t *p;

	if (b->overflow || n > b->cap - b->len) {
		b->overflow = true;
		return NULL;
	}
	p = b->buf + b->len;
	b->len += n;
	return p;
}

/* Writes type, key and flags; returns where value_size bytes go. */
static uint8_t *add_entry(struct vxhs_kvset_builder *b, uint32_t type,
			  const char *key, size_t value_size)
{
	size_t keylen = strlen(key);
	uint8_t *p = reserve(b, 12 + keylen + value_size);

	if (!p)
		return NULL;
	vxhs_put_be32(p, type);
	vxhs_put_be32(p + 4, (uint32_t)keylen);
	memcpy(p + 8, key, keylen);
	vxhs_put_be32(p + 8 + keylen, 0);
	b->count++;
	return p + 12 + keylen;
}

void vxhs_kvset_add_bool(struct vxhs_kvset_builder *b, const char *key, bool v)
{
	uint8_t *p = add_entry(b, VXHS_KV_BOOL, key, 1);

	if (p)
		p[0] = v;
}

void vxhs_kvset_add_u32(struct vxhs_kvset_builder *b, const char *key,
			uint32_t v)
{
	uint8_t *p = add_entry(b, VXHS_KV_UINT32, key, 4);

	if (p)
		vxhs_put_be32(p, v);
}

void vxhs_kvset_add_u64(struct vxhs_kvset_builder *b, const char *key,
			uint64_t v)
{
	uint8_t *p = add_entry(b, VXHS_KV_UINT64, key, 8);

	if (p)
		vxhs_put_be64(p, v);
}

void vxhs_kvset_add_string(struct vxhs_kvset_builder *b, const char *key,
			   const char *v)
{
	size_t n = strlen(v);
	uint8_t *p = add_entry(b, VXHS_KV_STRING, key, 4 + n);

	if (p) {
		vxhs_put_be32(p, (uint32_t)n);
		memcpy(p + 4, v, n);
	}
}

int vxhs_kvset_end(struct vxhs_kvset_builder *b)
{
	if (b->overflow)
		return -ENOSPC;
	vxhs_put_be32(b->buf, VXHS_KVSET_MAGIC);
	vxhs_put_be32(b->buf + 4, (uint32_t)b->len);
	vxhs_put_be32(b->buf + 8, b->count);
	return (int)b->len;
}
