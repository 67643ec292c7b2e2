// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/* Sizes, iovec cursors and agent addresses. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/util.h"
#include "vxhs/client.h"

static void sizes_parse_with_suffixes(void **state)
{
	uint64_t v;

	assert_int_equal(vxhs_parse_size("4096", &v), 0);
	assert_int_equal(v, 4096);
	assert_int_equal(vxhs_parse_size("4K", &v), 0);
	assert_int_equal(v, 4096);
	assert_int_equal(vxhs_parse_size("10GiB", &v), 0);
	assert_int_equal(v, 10ull << 30);
	assert_int_equal(vxhs_parse_size("1t", &v), 0);
	assert_int_equal(v, 1ull << 40);
	assert_int_equal(vxhs_parse_size("", &v), -EINVAL);
	assert_int_equal(vxhs_parse_size("-1", &v), -EINVAL);
	assert_int_equal(vxhs_parse_size("12X", &v), -EINVAL);
	assert_int_equal(vxhs_parse_size("1KX", &v), -EINVAL);
	assert_int_equal(vxhs_parse_size("99999999999P", &v), -ERANGE);
	assert_int_equal(vxhs_parse_size("99999999999999999999", &v), -ERANGE);
}

static void uints_are_range_checked(void **state)
{
	uint64_t v;

	assert_int_equal(vxhs_parse_uint("8", 1, 64, &v), 0);
	assert_int_equal(v, 8);
	assert_int_equal(vxhs_parse_uint("0", 1, 64, &v), -ERANGE);
	assert_int_equal(vxhs_parse_uint("65", 1, 64, &v), -ERANGE);
	assert_int_equal(vxhs_parse_uint("8x", 1, 64, &v), -EINVAL);
	assert_int_equal(vxhs_parse_uint("+8", 1, 64, &v), -EINVAL);
}

static void cursor_walks_across_segments(void **state)
{
	char a[3], b[0], c[5];
	struct iovec iov[] = { { a, 3 }, { b, 0 }, { c, 5 } }, out[4];
	struct iov_cursor cur;
	uint64_t bytes;
	int n;

	iov_cursor_init(&cur, iov, 3);
	iov_cursor_advance(&cur, 2);
	n = iov_cursor_fill(&cur, out, 4, 4, &bytes);
	assert_int_equal(n, 2);
	assert_int_equal(bytes, 4);
	assert_ptr_equal(out[0].iov_base, a + 2);
	assert_int_equal(out[0].iov_len, 1);
	assert_ptr_equal(out[1].iov_base, c);
	assert_int_equal(out[1].iov_len, 3);
	iov_cursor_copy_in(&cur, "xyz", 3);
	assert_int_equal(a[2], 'x');
	assert_memory_equal(c, "yz", 2);
	assert_int_equal(cur.idx, 2);
	assert_int_equal(cur.off, 2);
	assert_int_equal(iov_total(iov, 3), 8);
}

/* Addresses that parse, with the host and port they name. */
static const struct {
	const char *text, *host;
	uint16_t port;
} good_addrs[] = {
	{ "10.0.0.1", "10.0.0.1", 9999 },
	{ "agent.example:1234", "agent.example", 1234 },
	{ "[fe80::1]:77", "fe80::1", 77 },
	{ "::1", "::1", 9999 },
	/* The cfgstring's form, taken everywhere. */
	{ "agent.example/1234", "agent.example", 1234 },
	{ "[fe80::1]/77", "fe80::1", 77 },
	{ "fe80::2/78", "fe80::2", 78 },
};

static void agent_addresses_parse(void **state)
{
	struct vxhs_agent_addr a;
	char buf[300];

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(good_addrs); i++) {
		assert_int_equal(vxhs_agent_addr_parse(good_addrs[i].text, &a),
				 0);
		assert_string_equal(a.host, good_addrs[i].host);
		assert_int_equal(a.port, good_addrs[i].port);
	}
	assert_int_equal(vxhs_agent_addr_parse("[fe80::1]:77", &a), 0);
	vxhs_agent_addr_format(&a, buf, sizeof(buf));
	assert_string_equal(buf, "[fe80::1]:77");
	assert_int_equal(vxhs_agent_addr_parse("host/x", &a), -EINVAL);
	assert_int_equal(vxhs_agent_addr_parse("h/", &a), -EINVAL);
	assert_int_equal(vxhs_agent_addr_parse("unix:/run/x.sock", &a), 0);
	assert_true(a.is_unix);
	assert_string_equal(a.host, "/run/x.sock");
	assert_int_equal(vxhs_agent_addr_parse("/run/y.sock", &a), 0);
	assert_true(a.is_unix);

	assert_int_equal(vxhs_agent_addr_parse("", &a), -EINVAL);
	assert_int_equal(vxhs_agent_addr_parse("host:0", &a), -EINVAL);
	assert_int_equal(vxhs_agent_addr_parse("host:65536", &a), -EINVAL);
	assert_int_equal(vxhs_agent_addr_parse("host:x", &a), -EINVAL);
	assert_int_equal(vxhs_agent_addr_parse("[::1", &a), -EINVAL);
	assert_int_equal(vxhs_agent_addr_parse("[::1]x", &a), -EINVAL);
	assert_int_equal(vxhs_agent_addr_parse(":9999", &a), -EINVAL);
	assert_int_equal(vxhs_agent_addr_parse("unix:relative", &a), -EINVAL);
	assert_non_null(strstr(vxhs_errmsg(), "absolute"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(sizes_parse_with_suffixes),
		cmocka_unit_test(uints_are_range_checked),
		cmocka_unit_test(cursor_walks_across_segments),
		cmocka_unit_test(agent_addresses_parse),
	};

	return cmocka_run_group_tests_name("util", tests, NULL, NULL);
}
