// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/* kvsets: the reference STAT example, building, and hostile input. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "vxhs/kvset.h"
#include "vxhs/wire.h"

/* The example STAT answer: one key, uint64 67112960. */
static const uint8_t stat_example[] = {
	0x50, 0x53, 0x31, 0x30, 0x00, 0x00, 0x00, 0x30, 0x00, 0x00, 0x00, 0x01,
	0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00, 0x10, 'v',  'd',  'i',  's',
	'k',  '_',  's',  'i',	'z',  'e',  '_',  'b',	'y',  't',  'e',  's',
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x10, 0x00,
};

static void parses_the_reference_stat_answer(void **state)
{
	uint64_t size = 0;

	assert_int_equal(sizeof(stat_example), 0x30);
	assert_int_equal(vxhs_kvset_get_u64(stat_example, sizeof(stat_example),
					    VXHS_KEY_SIZE, &size),
			 0);
	assert_int_equal(size, 67112960);
}

static void builds_the_reference_stat_answer(void **state)
{
	struct vxhs_kvset_builder b;
	uint8_t buf[64];

	vxhs_kvset_begin(&b, buf, sizeof(buf));
	vxhs_kvset_add_u64(&b, VXHS_KEY_SIZE, 67112960);
	assert_int_equal(vxhs_kvset_end(&b), sizeof(stat_example));
	assert_memory_equal(buf, stat_example, sizeof(stat_example));
}

static void builder_reports_overflow(void **state)
{
	struct vxhs_kvset_builder b;
	uint8_t buf[40];

	vxhs_kvset_begin(&b, buf, sizeof(buf));
	vxhs_kvset_add_u64(&b, VXHS_KEY_SIZE, 1);
	assert_int_equal(vxhs_kvset_end(&b), -ENOSPC);
}

struct seen {
	int n;
	int strings;
	int max_depth;
};

static int count(const struct vxhs_kv *kv, void *opaque)
{
	struct seen *s = opaque;

	s->n++;
	if (kv->type == VXHS_KV_STRING)
		s->strings++;
	if ((int)kv->depth > s->max_depth)
		s->max_depth = (int)kv->depth;
	return 0;
}

static void every_value_type_parses(void **state)
{
	struct vxhs_kvset_builder b;
	struct seen s = { 0 };
	uint8_t buf[256];
	int len;

	vxhs_kvset_begin(&b, buf, sizeof(buf));
	vxhs_kvset_add_bool(&b, "a", true);
	vxhs_kvset_add_u32(&b, "b", 7);
	vxhs_kvset_add_string(&b, "c", "hello");
	vxhs_kvset_add_u64(&b, "d", 9);
	len = vxhs_kvset_end(&b);
	assert_true(len > 0);
	assert_int_equal(vxhs_kvset_parse(buf, (size_t)len, count, &s), 0);
	assert_int_equal(s.n, 4);
	assert_int_equal(s.strings, 1);
}

/* Writes a big-endian u32 and returns the next position. */
static uint8_t *be32(uint8_t *p, uint32_t v)
{
	vxhs_put_be32(p, v);
	return p + 4;
}

/* A kvset with one nested set holding one uint32, nested depth times. */
static size_t nested(uint8_t *buf, int depth)
{
	uint8_t *p = buf + 12;

	for (int i = 0; i < depth; i++) {
		p = be32(p, VXHS_KV_SET);
		p = be32(p, 1);
		*p++ = 'n';
		p = be32(p, 0);
		p = be32(p, 1); /* count */
	}
	p = be32(p, VXHS_KV_UINT32);
	p = be32(p, 1);
	*p++ = 'v';
	p = be32(p, 0);
	p = be32(p, 42);
	be32(buf, VXHS_KVSET_MAGIC);
	be32(buf + 4, (uint32_t)(p - buf));
	be32(buf + 8, 1);
	return (size_t)(p - buf);
}

static void nested_sets_are_visited(void **state)
{
	uint8_t buf[1024];
	struct seen s = { 0 };
	size_t len = nested(buf, 3);

	assert_int_equal(vxhs_kvset_parse(buf, len, count, &s), 0);
	assert_int_equal(s.n, 4);
	assert_int_equal(s.max_depth, 3);
}

static void nesting_too_deep_is_refused(void **state)
{
	uint8_t buf[1024];
	size_t len = nested(buf, VXHS_KVSET_MAX_DEPTH + 1);

	assert_int_equal(vxhs_kvset_parse(buf, len, NULL, NULL), -ELOOP);
}

static void bad_magic_is_an_error(void **state)
{
	uint8_t buf[sizeof(stat_example)];
	uint64_t v;

	memcpy(buf, stat_example, sizeof(buf));
	buf[0] = 'X';
	assert_int_equal(vxhs_kvset_get_u64(buf, sizeof(buf), VXHS_KEY_SIZE,
					    &v),
			 -EBADMSG);
}

static void every_truncation_is_an_error(void **state)
{
	uint8_t buf[sizeof(stat_example)];
	uint64_t v;

	for (size_t n = 0; n < sizeof(stat_example); n++) {
		memcpy(buf, stat_example, sizeof(buf));
		/* keep the length field consistent so the entry parser, not
		 * the total check, has to catch it */
		vxhs_put_be32(buf + 4, (uint32_t)n);
		assert_true(vxhs_kvset_get_u64(buf, n, VXHS_KEY_SIZE, &v) < 0);
	}
}

static void length_field_must_match(void **state)
{
	uint8_t buf[sizeof(stat_example) + 4];
	uint64_t v;

	memcpy(buf, stat_example, sizeof(stat_example));
	memset(buf + sizeof(stat_example), 0, 4);
	assert_int_equal(vxhs_kvset_get_u64(buf, sizeof(buf), VXHS_KEY_SIZE,
					    &v),
			 -EBADMSG);
}

static void huge_lengths_do_not_overrun(void **state)
{
	uint8_t buf[sizeof(stat_example)];
	uint64_t v;

	memcpy(buf, stat_example, sizeof(buf));
	vxhs_put_be32(buf + 16, 0xFFFFFFF0u); /* keylen */
	assert_int_equal(vxhs_kvset_get_u64(buf, sizeof(buf), VXHS_KEY_SIZE,
					    &v),
			 -EPROTO);
	memcpy(buf, stat_example, sizeof(buf));
	vxhs_put_be32(buf + 8, 0xFFFFFFFFu); /* count */
	assert_int_equal(vxhs_kvset_get_u64(buf, sizeof(buf), VXHS_KEY_SIZE,
					    &v),
			 -EPROTO);
}

static void unknown_type_and_wrong_type(void **state)
{
	uint8_t buf[sizeof(stat_example)];
	uint64_t v;

	memcpy(buf, stat_example, sizeof(buf));
	vxhs_put_be32(buf + 12, 0x77);
	assert_int_equal(vxhs_kvset_get_u64(buf, sizeof(buf), VXHS_KEY_SIZE,
					    &v),
			 -EPROTO);
	/* int64 is 8 bytes too: parses, but is not the uint64 we need */
	memcpy(buf, stat_example, sizeof(buf));
	vxhs_put_be32(buf + 12, VXHS_KV_INT64);
	assert_int_equal(vxhs_kvset_get_u64(buf, sizeof(buf), VXHS_KEY_SIZE,
					    &v),
			 -EPROTO);
	memcpy(buf, stat_example, sizeof(buf));
	assert_int_equal(vxhs_kvset_get_u64(buf, sizeof(buf), "other", &v),
			 -ENOENT);
}

static void arrays_are_validated(void **state)
{
	uint8_t buf[128], *p = buf + 12;
	struct seen s = { 0 };

	p = be32(p, VXHS_KV_ARRAY | VXHS_KV_STRING);
	p = be32(p, 1);
	*p++ = 'k';
	p = be32(p, 0);
	p = be32(p, 2); /* two strings */
	p = be32(p, 2);
	*p++ = 'h';
	*p++ = 'i';
	p = be32(p, 0);
	be32(buf, VXHS_KVSET_MAGIC);
	be32(buf + 4, (uint32_t)(p - buf));
	be32(buf + 8, 1);
	assert_int_equal(vxhs_kvset_parse(buf, (size_t)(p - buf), count, &s),
			 0);
	assert_int_equal(s.n, 1);
	/* claim three elements: the third runs off the end */
	vxhs_put_be32(buf + 12 + 13, 3);
	assert_int_equal(vxhs_kvset_parse(buf, (size_t)(p - buf), NULL, NULL),
			 -EPROTO);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(parses_the_reference_stat_answer),
		cmocka_unit_test(builds_the_reference_stat_answer),
		cmocka_unit_test(builder_reports_overflow),
		cmocka_unit_test(every_value_type_parses),
		cmocka_unit_test(nested_sets_are_visited),
		cmocka_unit_test(nesting_too_deep_is_refused),
		cmocka_unit_test(bad_magic_is_an_error),
		cmocka_unit_test(every_truncation_is_an_error),
		cmocka_unit_test(length_field_must_match),
		cmocka_unit_test(huge_lengths_do_not_overrun),
		cmocka_unit_test(unknown_type_and_wrong_type),
		cmocka_unit_test(arrays_are_validated),
	};

	return cmocka_run_group_tests_name("kvset", tests, NULL, NULL);
}
