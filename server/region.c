// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * Shared regions of a UNIX session (docs/protocol.md, "Shared memory"): a
 * gateway on this host hands over a descriptor of its buffers once (for
 * tcmu-runner, the TCMU data area), then READs and WRITEs name segments
 * of it instead of carrying data, so the data is copied once, between
 * those pages and the page cache.
 *
 * The region's pages are touched only by preadv and pwritev: a segment the
 * peer has no page behind (a truncated file, a TCMU block not allocated)
 * makes the system call fail with EFAULT instead of raising SIGBUS here.
 * A region unused for REGION_IDLE_NS is unmapped (the peer may have closed
 * the LUN it belongs to; a mapped TCMU area keeps the kernel's device
 * alive); the peer adds it again when told ENXIO.
 *
 * The peer may reuse a page once its request is answered, or once this
 * end of the socket is shut or closed: it cannot know what a worker still
 * does with a request it will never hear of. So before a session lets go
 * of its socket, its regions are revoked: the pages are replaced by an
 * inaccessible mapping, and a worker still busy with one of its requests
 * fails with EFAULT instead of touching memory the peer has moved on to.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <syslog.h>
#include <unistd.h>

#include "common/fdpass.h"
#include "common/util.h"
#include "vxhsd.h"

#define REGION_IDLE_NS (30 * NSEC_PER_SEC)
#define REGION_LEN_MAX (1ull << 40)
/* Mappings are address space and entries in the kernel's map table
 * (vm.max_map_count): bounded for all peers together. */
#define REGIONS_MAX	 4096
#define REGION_BYTES_MAX (16ull << 40)

static atomic_uint regions_mapped;
static _Atomic uint64_t region_bytes;

struct region {
	atomic_uint refs; /* the session's table, and requests using it */
	void *base;
	uint64_t len;
	_Atomic uint64_t used_at;
	bool revoked; /* region_lock */
};

static void region_put(struct region *rg)
{
	if (!rg || atomic_fetch_sub(&rg->refs, 1) != 1)
		return;
	munmap(rg->base, rg->len);
	atomic_fetch_sub(&regions_mapped, 1);
	atomic_fetch_sub(&region_bytes, rg->len);
	free(rg);
}

/* Room for one more region of len bytes, taken. */
static bool reserve(uint64_t len)
{
	if (atomic_fetch_add(&regions_mapped, 1) >= REGIONS_MAX ||
	    atomic_fetch_add(&region_bytes, len) + len > REGION_BYTES_MAX) {
		atomic_fetch_sub(&regions_mapped, 1);
		atomic_fetch_sub(&region_bytes, len);
		return false;
	}
	return true;
}

/* The last descriptor waits for its REGION_ADD; any other is one the peer
 * sent for nothing. */
ssize_t region_recv(struct session *s, void *buf, size_t len)
{
	return fd_recv(s->fd, buf, len, &s->pending_fd, 1);
}

int32_t region_add(struct session *s, const struct vxhs_hdr *h, int32_t err,
		   const char **why)
{
	uint64_t id = h->io_offset, len = h->io_size;
	int fd = s->pending_fd;
	struct region *rg;
	void *base;

	s->pending_fd = -1;
	if (err) {
		if (fd >= 0)
			close(fd);
		return err;
	}
	if (!s->is_unix) {
		*why = "REGION_ADD outside a UNIX socket";
		return EOPNOTSUPP;
	}
	if (fd < 0) {
		*why = "REGION_ADD without a file descriptor";
		return EBADF;
	}
	if (!reserve(len)) {
		close(fd);
		*why = "too many shared regions mapped";
		return EAGAIN;
	}
	base = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (base == MAP_FAILED) {
		*why = "the region cannot be mapped";
		err = EINVAL;
		goto unreserve;
	}
	rg = malloc(sizeof(*rg));
	if (!rg) {
		munmap(base, len);
		*why = "out of memory";
		err = EAGAIN;
		goto unreserve;
	}
	atomic_init(&rg->refs, 1);
	rg->revoked = false;
	rg->base = base;
	rg->len = len;
	atomic_init(&rg->used_at, vxhs_now_ns());
	pthread_mutex_lock(&s->region_lock);
	region_put(s->regions[id - 1]);
	s->regions[id - 1] = rg;
	s->has_regions = true;
	pthread_mutex_unlock(&s->region_lock);
	slog(s, h->target, h->opcode, LOG_DEBUG,
	     "%s: region %llu of %llu bytes added", s->peer,
	     (unsigned long long)id, (unsigned long long)len);
	return 0;

unreserve:
	atomic_fetch_sub(&regions_mapped, 1);
	atomic_fetch_sub(&region_bytes, len);
	return err;
}

int32_t region_check_add(const struct vxhs_hdr *h, const char **why)
{
	if (h->io_offset < 1 || h->io_offset > VXHS_REGION_MAX) {
		*why = "REGION_ADD id outside 1 to 64";
		return EINVAL;
	}
	if (!h->io_size || h->io_size > REGION_LEN_MAX ||
	    h->io_size % (uint64_t)sysconf(_SC_PAGESIZE)) {
		*why = "REGION_ADD length not a multiple of the page size up to 1 TiB";
		return EINVAL;
	}
	return 0;
}

int32_t region_check_refs(const struct vxhs_hdr *h, const char **why)
{
	uint64_t segs =
		(h->payload_size - VXHS_REF_HDR_SIZE) / VXHS_REF_SEG_SIZE;

	if (h->opcode != VXHS_OP_READ && h->opcode != VXHS_OP_WRITE) {
		*why = "by reference, but not a READ or WRITE";
		return EINVAL;
	}
	if (h->payload_size < VXHS_REF_HDR_SIZE + VXHS_REF_SEG_SIZE ||
	    (h->payload_size - VXHS_REF_HDR_SIZE) % VXHS_REF_SEG_SIZE ||
	    segs > VXHS_REF_SEGS_MAX) {
		*why = "segment list of no, partial or more than 1024 segments";
		return EINVAL;
	}
	return 0;
}

/*
 * The segment list in r->buf becomes, in place, the iovecs into the region
 * (a segment is 16 bytes, an iovec no more), checked against the region
 * and io_size. The request holds the region until it is freed.
 */
_Static_assert(sizeof(struct iovec) <= VXHS_REF_SEG_SIZE,
	       "iovecs are built over the segments");

int region_resolve(struct request *r)
{
	const uint8_t *p = r->buf;
	struct iovec *iov =
		(struct iovec *)(void *)(r->buf + VXHS_REF_HDR_SIZE);
	struct session *s = r->s;
	uint32_t id = vxhs_get_le32(p), n = vxhs_get_le32(p + 4);
	uint64_t total = 0;
	struct region *rg;

	if ((uint64_t)n * VXHS_REF_SEG_SIZE + VXHS_REF_HDR_SIZE !=
	    r->hdr.payload_size)
		return -EINVAL;
	if (id < 1 || id > VXHS_REGION_MAX)
		return -ENXIO;
	pthread_mutex_lock(&s->region_lock);
	rg = s->regions[id - 1];
	if (rg)
		atomic_fetch_add(&rg->refs, 1);
	pthread_mutex_unlock(&s->region_lock);
	if (!rg)
		return -ENXIO;
	atomic_store(&rg->used_at, vxhs_now_ns());
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *seg =
			p + VXHS_REF_HDR_SIZE + i * VXHS_REF_SEG_SIZE;
		uint64_t off = vxhs_get_le64(seg), len = vxhs_get_le64(seg + 8);

		if (!len || off > rg->len || len > rg->len - off ||
		    len > r->hdr.io_size - total) {
			region_put(rg);
			return -EINVAL;
		}
		total += len;
		iov[i].iov_base = (uint8_t *)rg->base + off;
		iov[i].iov_len = len;
	}
	if (total != r->hdr.io_size) {
		region_put(rg);
		return -EINVAL;
	}
	r->region = rg;
	r->ref_iov = iov;
	r->ref_cnt = (int)n;
	return 0;
}

void region_release(struct request *r)
{
	region_put(r->region);
	r->region = NULL;
}

/* now UINT64_MAX: all of them; requests using one keep it until they end. */
void regions_drop_idle(struct session *s, uint64_t now)
{
	pthread_mutex_lock(&s->region_lock);
	for (unsigned int i = 0; i < VXHS_REGION_MAX; i++) {
		struct region *rg = s->regions[i];

		if (!rg || (now != UINT64_MAX &&
			    (atomic_load(&rg->refs) > 1 ||
			     now - atomic_load(&rg->used_at) < REGION_IDLE_NS)))
			continue;
		s->regions[i] = NULL;
		region_put(rg);
	}
	pthread_mutex_unlock(&s->region_lock);
}

bool regions_revoke(struct session *s)
{
	bool any = false;

	pthread_mutex_lock(&s->region_lock);
	for (unsigned int i = 0; i < VXHS_REGION_MAX; i++) {
		struct region *rg = s->regions[i];

		if (!rg || rg->revoked)
			continue;
		/* In place: the address stays reserved until the last
		 * request holding the region puts it. */
		if (mmap(rg->base, rg->len, PROT_NONE,
			 MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS |
				 MAP_NORESERVE,
			 -1, 0) == MAP_FAILED)
			vlog(LOG_ERR, "%s: cannot revoke a shared region: %m",
			     s->peer);
		rg->revoked = true;
		any = true;
	}
	pthread_mutex_unlock(&s->region_lock);
	return any;
}

void session_shutdown(struct session *s)
{
	regions_revoke(s);
	shutdown(s->fd, SHUT_RDWR);
}

void regions_free(struct session *s)
{
	for (unsigned int i = 0; i < VXHS_REGION_MAX; i++)
		region_put(s->regions[i]);
	if (s->pending_fd >= 0)
		close(s->pending_fd);
	pthread_mutex_destroy(&s->region_lock);
}
