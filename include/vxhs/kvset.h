/* SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later */
/*
 * QNIO property sets ("kvsets"): the big-endian key/value payload of
 * VDISK_STAT. The parser walks a buffer without allocating and checks every
 * length against what remains; the builder writes into a caller's buffer.
 */
#ifndef VXHS_KVSET_H
#define VXHS_KVSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VXHS_KVSET_MAGIC     0x50533130u /* "PS10" */
#define VXHS_KVSET_MAX_DEPTH 8
#define VXHS_KVSET_MAX_KEY   1024

#define VXHS_KV_BOOL   0x1
#define VXHS_KV_INT32  0x2
#define VXHS_KV_UINT32 0x3
#define VXHS_KV_INT64  0x4
#define VXHS_KV_UINT64 0x5
#define VXHS_KV_STRING 0x6
#define VXHS_KV_BINARY 0x8
#define VXHS_KV_GUID   0x9
#define VXHS_KV_SET    0xA
#define VXHS_KV_TIME   0x10005
#define VXHS_KV_ARRAY  0x80000000u

/* One entry as the parser sees it; pointers point into the parsed buffer. */
struct vxhs_kv {
	uint32_t type;
	uint32_t flags;
	unsigned int depth; /* 0 for top-level entries */
	const char *key;    /* not NUL-terminated */
	size_t key_len;
	const uint8_t *value; /* encoded value, after any length prefix */
	size_t value_len;
	uint64_t num; /* scalars: the value (signed ones sign-extended) */
};

/* Return non-zero to stop the walk; that value is returned by the parser. */
typedef int (*vxhs_kv_visit_fn)(const struct vxhs_kv *kv, void *opaque);

/*
 * Validates a whole kvset of exactly len bytes and calls fn for every entry,
 * nested entries included (after their parent). Returns 0, the callback's
 * non-zero value, -EBADMSG (bad magic or a length that does not match the
 * buffer), -EPROTO (an entry overruns, unknown type) or -ELOOP (nesting
 * deeper than VXHS_KVSET_MAX_DEPTH).
 */
int vxhs_kvset_parse(const uint8_t *buf, size_t len, vxhs_kv_visit_fn fn,
		     void *opaque);

/*
 * Finds a top-level uint64 key. Returns 0, -ENOENT when absent, -EPROTO when
 * present with another type, or a parse error.
 */
int vxhs_kvset_get_u64(const uint8_t *buf, size_t len, const char *key,
		       uint64_t *out);

struct vxhs_kvset_builder {
	uint8_t *buf;
	size_t cap;
	size_t len;
	uint32_t count;
	bool overflow;
};

/* Keys must be added in strcmp order: the original client relies on it. */
void vxhs_kvset_begin(struct vxhs_kvset_builder *b, uint8_t *buf, size_t cap);
void vxhs_kvset_add_bool(struct vxhs_kvset_builder *b, const char *key, bool v);
void vxhs_kvset_add_u32(struct vxhs_kvset_builder *b, const char *key,
			uint32_t v);
void vxhs_kvset_add_u64(struct vxhs_kvset_builder *b, const char *key,
			uint64_t v);
void vxhs_kvset_add_string(struct vxhs_kvset_builder *b, const char *key,
			   const char *v);
/* Returns the total length, or -ENOSPC if the buffer was too small. */
int vxhs_kvset_end(struct vxhs_kvset_builder *b);

#ifdef __cplusplus
}
#endif

#endif /* VXHS_KVSET_H */
