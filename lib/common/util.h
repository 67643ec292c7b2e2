/* SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later */
/* Small helpers shared by the library, the agent and the tools. */
#ifndef VXHS_COMMON_UTIL_H
#define VXHS_COMMON_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>
#include <time.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#ifndef MIN
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#endif
#ifndef MAX
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#endif

#define NSEC_PER_MSEC 1000000ull
#define NSEC_PER_SEC  1000000000ull

static inline uint64_t vxhs_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

/* Sleeps until vxhs_now_ns() reaches when (at once if it has). */
void vxhs_sleep_until_ns(uint64_t when);

/*
 * For the threads that end holds left idle (the agent's fence.c, the
 * gateway's local_write.c): true when a hold last used at since has been
 * idle linger ns, else lowers *wake to when it will have been, so that
 * the thread sleeps until the first hold is due and no longer.
 */
static inline bool vxhs_idle_for(uint64_t since, uint64_t linger,
				 uint64_t *wake)
{
	uint64_t due = since + linger;

	if (vxhs_now_ns() >= due)
		return true;
	if (due < *wake)
		*wake = due;
	return false;
}

/* A position inside an iovec array, advanced as bytes move. */
struct iov_cursor {
	const struct iovec *iov;
	int cnt;
	int idx;
	size_t off;
};

void iov_cursor_init(struct iov_cursor *c, const struct iovec *iov, int cnt);
void iov_cursor_advance(struct iov_cursor *c, uint64_t n);
/*
 * Describes up to len bytes from the cursor in at most max entries of out
 * (the cursor does not move). Returns the number of entries; *bytes gets the
 * byte count they cover.
 */
int iov_cursor_fill(const struct iov_cursor *c, struct iovec *out, int max,
		    uint64_t len, uint64_t *bytes);
/* Copies len bytes from buf at the cursor and advances it. */
void iov_cursor_copy_in(struct iov_cursor *c, const void *buf, size_t len);
uint64_t iov_total(const struct iovec *iov, int cnt);

/*
 * Parses a byte count with an optional K/M/G/T/P suffix (powers of 1024,
 * "KiB" and "KB" alike) and returns 0 or -EINVAL/-ERANGE.
 */
int vxhs_parse_size(const char *text, uint64_t *out);
/* Parses a decimal unsigned integer in [min, max]. */
int vxhs_parse_uint(const char *text, uint64_t min, uint64_t max,
		    uint64_t *out);
/*
 * Whether every page of [off, off + len) of a file mapped at map (map_len
 * bytes) is in the page cache, by mincore. len at most
 * VXHS_CACHED_CHECK_MAX.
 */
#define VXHS_CACHED_CHECK_MAX (8u << 20)
bool vxhs_range_cached(const void *map, uint64_t map_len, uint64_t off,
		       uint64_t len);

/* Formats a byte count for people: "10 GiB", "4 KiB", "123 bytes". */
void vxhs_format_size(uint64_t bytes, char *buf, size_t len);

/*
 * The name of a vdisk's lock record in the agent's directory (vxhsd's
 * server/lock.c): ".ID.lock", which no vdisk can be named. Fits in
 * VXHS_LOCK_RECORD_NAME_MAX bytes.
 */
#define VXHS_LOCK_RECORD_NAME_MAX 72
void vxhs_lock_record_name(const char *id, char *buf, size_t len);

#endif /* VXHS_COMMON_UTIL_H */
