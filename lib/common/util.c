// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

void iov_cursor_init(struct iov_cursor *c, const struct iovec *iov, int cnt)
{
	c->iov = iov;
	c->cnt = cnt;
	c->idx = 0;
	c->off = 0;
	/* Zero-length segments would make fill() return empty entries. */
	while (c->idx < c->cnt && c->iov[c->idx].iov_len == 0)
		c->idx++;
}

void iov_cursor_advance(struct iov_cursor *c, uint64_t n)
{
	while (n && c->idx < c->cnt) {
		size_t room = c->iov[c->idx].iov_len - c->off;

		if (n < room) {
			c->off += n;
			return;
		}
		n -= room;
		c->idx++;
		c->off = 0;
	}
	while (c->idx < c->cnt && c->iov[c->idx].iov_len == 0)
		c->idx++;
}

int iov_cursor_fill(const struct iov_cursor *c, struct iovec *out, int max,
		    uint64_t len, uint64_t *bytes)
{
	int i = c->idx, n = 0;
	size_t off = c->off;
	uint64_t total = 0;

	while (n < max && i < c->cnt && total < len) {
		size_t room = c->iov[i].iov_len - off;

		if (room) {
			if (room > len - total)
				room = len - total;
			out[n].iov_base = (char *)c->iov[i].iov_base + off;
			out[n].iov_len = room;
			total += room;
			n++;
		}
		i++;
		off = 0;
	}
	*bytes = total;
	return n;
}

void iov_cursor_copy_in(struct iov_cursor *c, const void *buf, size_t len)
{
	const char *p = buf;

	while (len && c->idx < c->cnt) {
		size_t room = c->iov[c->idx].iov_len - c->off;
		size_t n = room < len ? room : len;

		memcpy((char *)c->iov[c->idx].iov_base + c->off, p, n);
		p += n;
		len -= n;
		iov_cursor_advance(c, n);
	}
}

uint64_t iov_total(const struct iovec *iov, int cnt)
{
	uint64_t total = 0;

	for (int i = 0; i < cnt; i++)
		total += iov[i].iov_len;
	return total;
}

int vxhs_parse_uint(const char *text, uint64_t min, uint64_t max, uint64_t *out)
{
	unsigned long long v;
	char *end;

	if (!text || !*text || *text == '-' || *text == '+')
		return -EINVAL;
	errno = 0;
	v = strtoull(text, &end, 10);
	if (*end)
		return -EINVAL;
	if (errno == ERANGE || v < min || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

int vxhs_parse_size(const char *text, uint64_t *out)
{
	static const char units[] = "KMGTP";
	unsigned long long v;
	char *end;
	int shift = 0;

	if (!text || !*text || *text == '-' || *text == '+' || *text == ' ')
		return -EINVAL;
	errno = 0;
	v = strtoull(text, &end, 10);
	if (end == text)
		return -EINVAL;
	if (errno == ERANGE)
		return -ERANGE;
	if (*end) {
		const char *u = strchr(units, *end & ~0x20);

		if (!u || !*u)
			return -EINVAL;
		shift = 10 * (int)(u - units + 1);
		end++;
		if (!strcasecmp(end, "ib") || !strcasecmp(end, "b"))
			end += strlen(end);
		if (*end)
			return -EINVAL;
	}
	if (shift && v > (UINT64_MAX >> shift))
		return -ERANGE;
	*out = (uint64_t)v << shift;
	return 0;
}

void vxhs_format_size(uint64_t bytes, char *buf, size_t len)
{
	static const char *const units[] = { "KiB", "MiB", "GiB", "TiB",
					     "PiB" };
	int u = -1;
	uint64_t v = bytes;

	while (v >= 1024 && (v % 1024) == 0 && u < 4) {
		v /= 1024;
		u++;
	}
	if (u < 0)
		snprintf(buf, len, "%llu bytes", (unsigned long long)bytes);
	else
		snprintf(buf, len, "%llu %s", (unsigned long long)v, units[u]);
}

void vxhs_lock_record_name(const char *id, char *buf, size_t len)
{
	snprintf(buf, len, ".%s.lock", id);
}

void vxhs_sleep_until_ns(uint64_t when)
{
	struct timespec ts = {
		.tv_sec = (time_t)(when / NSEC_PER_SEC),
		.tv_nsec = (long)(when % NSEC_PER_SEC),
	};

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) ==
	       EINTR)
		;
}

bool vxhs_range_cached(const void *map, uint64_t map_len, uint64_t off,
		       uint64_t len)
{
	unsigned char vec[VXHS_CACHED_CHECK_MAX / 4096 + 2];
	long page = sysconf(_SC_PAGESIZE);
	uint64_t first, span, pages;

	if (!map || page < 4096 || len > VXHS_CACHED_CHECK_MAX ||
	    off + len < off || off + len > map_len)
		return false;
	first = off / (uint64_t)page * (uint64_t)page;
	span = off + len - first;
	if (mincore((uint8_t *)map + first, span, vec))
		return false;
	pages = (span + (uint64_t)page - 1) / (uint64_t)page;
	for (uint64_t i = 0; i < pages; i++)
		if (!(vec[i] & 1))
			return false;
	return true;
}
