// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * EXTENDED COPY (LID1) parameter lists, checked in the order SPC-4 implies
 * (lengths before counts, counts before types, types before fields), so
 * every malformed list gets the one sense the standard names for it.
 */
#include <string.h>

#include "scsi_field.h"
#include "xcopy_list.h"

/* Byte 1 of the header: LIST ID USAGE. */
#define LIST_ID_USAGE(b) (((b) >> 3) & 3)
#define LIST_ID_HOLD	 0 /* 00b: status held for COPY STATUS */
#define LIST_ID_NONE	 3 /* 11b: no list identifier (SNLID) */
#define LIST_ID_RESERVED 1

/* Byte 1 of an identification CSCD descriptor. */
#define LU_ID_TYPE(b)	   ((b) >> 6)
#define TARGET_NUL	   0x20
#define PERIPHERAL_TYPE(b) ((b)&0x1f)

/* Byte 4, 5 and 8 of its designation descriptor. */
#define CODE_SET_BINARY		1
#define DESIGNATOR_NAA		3
#define NAA_REGISTERED_EXTENDED 6

static enum xcopy_error fail(enum xcopy_error err, const char *field,
			     const char **what)
{
	*what = field;
	return err;
}

static enum xcopy_error parse_target(const uint8_t *d, struct xcopy_target *t,
				     const char **what)
{
	if (d[0] != XCOPY_TARGET_ID)
		return fail(XCOPY_TARGET_TYPE, "CSCD descriptor type code",
			    what);
	/* Only LU ID TYPE 00b (LUN); proxy tokens are not offered and the
	 * other values are reserved. */
	if (LU_ID_TYPE(d[1]))
		return fail(XCOPY_INVALID_FIELD, "LU ID TYPE", what);
	if (d[1] & TARGET_NUL)
		return fail(XCOPY_UNREACHABLE, "NUL", what);
	if (PERIPHERAL_TYPE(d[1]))
		return fail(XCOPY_TARGET_DEVICE, "PERIPHERAL DEVICE TYPE",
			    what);
	/* Our LUNs are known by the NAA designator of their Device
	 * Identification page; a copy manager may support any subset. */
	if ((d[4] & 0x0f) != CODE_SET_BINARY || (d[5] & 0x30) ||
	    (d[5] & 0x0f) != DESIGNATOR_NAA || d[7] != XCOPY_NAA_LEN ||
	    d[8] >> 4 != NAA_REGISTERED_EXTENDED)
		return fail(XCOPY_UNREACHABLE, "designator (not NAA 6)", what);
	memcpy(t->naa, d + 8, XCOPY_NAA_LEN);
	t->block_size = (uint32_t)scsi_get_be(d + 29, 3);
	if (!t->block_size)
		return fail(XCOPY_INVALID_FIELD, "DISK BLOCK LENGTH", what);
	return XCOPY_OK;
}

static enum xcopy_error parse_segment(const uint8_t *d, unsigned int nr_targets,
				      struct xcopy_segment *s,
				      const char **what)
{
	if (d[0] != XCOPY_SEGMENT_B2B)
		return fail(XCOPY_SEGMENT_TYPE, "segment descriptor type code",
			    what);
	if (scsi_get_be(d + 2, 2) != XCOPY_SEGMENT_LEN - 4)
		return fail(XCOPY_INVALID_FIELD, "DESCRIPTOR LENGTH", what);
	s->src = (uint16_t)scsi_get_be(d + 4, 2);
	s->dst = (uint16_t)scsi_get_be(d + 6, 2);
	if (s->src >= nr_targets || s->dst >= nr_targets)
		return fail(XCOPY_BAD_INDEX, "CSCD DESCRIPTOR INDEX", what);
	s->blocks = (uint16_t)scsi_get_be(d + 10, 2);
	s->src_lba = scsi_get_be(d + 12, 8);
	s->dst_lba = scsi_get_be(d + 20, 8);
	return XCOPY_OK;
}

/* Counts the segment descriptors, each as long as its header says. */
static enum xcopy_error count_segments(const uint8_t *d, size_t len,
				       unsigned int *count, const char **what)
{
	*count = 0;
	while (len) {
		size_t n;

		if (len < 4)
			return fail(XCOPY_LIST_LENGTH,
				    "SEGMENT DESCRIPTOR LIST LENGTH", what);
		n = 4 + (size_t)scsi_get_be(d + 2, 2);
		if (n > len)
			return fail(XCOPY_LIST_LENGTH,
				    "SEGMENT DESCRIPTOR LIST LENGTH", what);
		if (++*count > XCOPY_MAX_SEGMENTS)
			return fail(XCOPY_TOO_MANY_SEGMENTS,
				    "segment descriptors", what);
		d += n;
		len -= n;
	}
	return XCOPY_OK;
}

enum xcopy_error xcopy_parse(const uint8_t *par, size_t len,
			     struct xcopy_list *list, const char **what)
{
	uint64_t tdll, sdll, inline_len;
	const uint8_t *seg;
	enum xcopy_error err;

	memset(list, 0, sizeof(*list));
	if (len < XCOPY_HEADER_LEN)
		return fail(XCOPY_LIST_LENGTH, "PARAMETER LIST LENGTH", what);
	if (LIST_ID_USAGE(par[1]) == LIST_ID_RESERVED ||
	    (LIST_ID_USAGE(par[1]) == LIST_ID_NONE && par[0]))
		return fail(XCOPY_INVALID_FIELD, "LIST ID USAGE", what);
	list->list_id = par[0];
	list->held = LIST_ID_USAGE(par[1]) == LIST_ID_HOLD;
	tdll = scsi_get_be(par + 2, 2);
	sdll = scsi_get_be(par + 8, 4);
	inline_len = scsi_get_be(par + 12, 4);
	if (tdll + sdll > XCOPY_MAX_DESC_LIST)
		return fail(XCOPY_LIST_LENGTH, "descriptor list lengths", what);
	if (XCOPY_HEADER_LEN + tdll + sdll + inline_len > len)
		return fail(XCOPY_LIST_LENGTH, "PARAMETER LIST LENGTH", what);
	if (tdll % XCOPY_TARGET_LEN)
		return fail(XCOPY_INVALID_FIELD, "CSCD DESCRIPTOR LIST LENGTH",
			    what);
	if (tdll / XCOPY_TARGET_LEN > XCOPY_MAX_TARGETS)
		return fail(XCOPY_TOO_MANY_TARGETS, "CSCD descriptors", what);
	list->nr_targets = (unsigned int)(tdll / XCOPY_TARGET_LEN);
	seg = par + XCOPY_HEADER_LEN + tdll;
	err = count_segments(seg, (size_t)sdll, &list->nr_segments, what);
	if (err)
		return err;
	for (unsigned int i = 0; i < list->nr_targets; i++) {
		err = parse_target(par + XCOPY_HEADER_LEN +
					   i * XCOPY_TARGET_LEN,
				   &list->targets[i], what);
		if (err)
			return err;
	}
	for (unsigned int i = 0; i < list->nr_segments; i++) {
		err = parse_segment(seg, list->nr_targets, &list->segments[i],
				    what);
		if (err)
			return err;
		seg += XCOPY_SEGMENT_LEN;
	}
	return XCOPY_OK;
}

static uint8_t log2_of(uint32_t block_size)
{
	uint8_t n = 0;

	while ((1u << n) < block_size && n < 31)
		n++;
	return n;
}

size_t xcopy_op_params(uint8_t buf[XCOPY_OP_PARAMS_LEN], uint32_t block_size)
{
	uint8_t log2_block = log2_of(block_size);

	memset(buf, 0, XCOPY_OP_PARAMS_LEN);
	scsi_put_be(buf, XCOPY_OP_PARAMS_LEN - 4, 4); /* AVAILABLE DATA */
	buf[4] = 0x01; /* SNLID: LIST ID USAGE 11b accepted */
	scsi_put_be(buf + 8, XCOPY_MAX_TARGETS, 2);
	scsi_put_be(buf + 10, XCOPY_MAX_SEGMENTS, 2);
	scsi_put_be(buf + 12, XCOPY_MAX_DESC_LIST, 4);
	scsi_put_be(buf + 16, XCOPY_MAX_SEGMENT_BYTES, 4);
	/* No inline or held data, no stream devices (bytes 20-31). The
	 * copy runs while the command waits: one at a time per LUN. */
	scsi_put_be(buf + 34, 1, 2); /* TOTAL CONCURRENT COPIES */
	buf[36] = 1;		     /* MAXIMUM CONCURRENT COPIES */
	buf[37] = log2_block;	     /* DATA SEGMENT GRANULARITY */
	buf[38] = log2_block;	     /* INLINE DATA GRANULARITY */
	buf[39] = log2_block;	     /* HELD DATA GRANULARITY */
	buf[43] = 2;		     /* IMPLEMENTED DESCRIPTOR LIST LENGTH */
	buf[44] = XCOPY_SEGMENT_B2B;
	buf[45] = XCOPY_TARGET_ID;
	return XCOPY_OP_PARAMS_LEN;
}

void xcopy_history_put(struct xcopy_history *h, uint8_t list_id,
		       const struct xcopy_result *r)
{
	unsigned int i;

	for (i = 0; i < XCOPY_HELD; i++)
		if (h->slot[i].used && h->slot[i].list_id == list_id)
			break;
	if (i == XCOPY_HELD) {
		i = h->next;
		h->next = (h->next + 1) % XCOPY_HELD;
	}
	h->slot[i].used = true;
	h->slot[i].list_id = list_id;
	h->slot[i].r = *r;
}

const struct xcopy_result *xcopy_history_find(const struct xcopy_history *h,
					      uint8_t list_id)
{
	for (unsigned int i = 0; i < XCOPY_HELD; i++)
		if (h->slot[i].used && h->slot[i].list_id == list_id)
			return &h->slot[i].r;
	return NULL;
}

size_t xcopy_copy_status(uint8_t buf[XCOPY_STATUS_LEN],
			 const struct xcopy_result *r)
{
	memset(buf, 0, XCOPY_STATUS_LEN);
	scsi_put_be(buf, XCOPY_STATUS_LEN - 4, 4); /* AVAILABLE DATA */
	/* COPY MANAGER STATUS: completed, without or with errors; no held
	 * data (HDD 0). Nothing is ever in progress: the copy ends before
	 * its command does. */
	buf[4] = r->failed ? 0x02 : 0x01;
	scsi_put_be(buf + 5, r->segments, 2);
	/* TRANSFER COUNT UNITS 0 (bytes): at most 4 segments of 256 MiB. */
	scsi_put_be(buf + 8, r->bytes, 4);
	return XCOPY_STATUS_LEN;
}

/* Third-party copy descriptors: type and length of what follows. */
static uint8_t *tpc_descriptor(uint8_t *p, uint16_t type, uint16_t len)
{
	scsi_put_be(p, type, 2);
	scsi_put_be(p + 2, len, 2);
	return p + 4;
}

size_t xcopy_vpd_page(uint8_t buf[XCOPY_VPD_LEN], uint32_t block_size)
{
	uint8_t *p = buf + 4;

	memset(buf, 0, XCOPY_VPD_LEN);
	buf[1] = XCOPY_VPD_PAGE;
	scsi_put_be(buf + 2, XCOPY_VPD_LEN - 4, 2);
	/* Supported Commands: EXTENDED COPY (LID1); RECEIVE COPY RESULTS
	 * with OPERATING PARAMETERS. COPY STATUS is answered but not
	 * announced: SPC-4 keeps list identifiers per I_T nexus, and TCMU
	 * does not say which nexus sent a command, so the handler keeps
	 * them per LUN, where one initiator may see another's copy. */
	p = tpc_descriptor(p, 0x0001, 8);
	p[0] = 6; /* the command support list's length */
	memcpy(p + 1, (const uint8_t[]){ 0x83, 1, 0x00, 0x84, 1, 0x03 }, 6);
	p += 8;
	/* Parameter Data: the limits OPERATING PARAMETERS gives. */
	p = tpc_descriptor(p, 0x0004, 0x1c);
	scsi_put_be(p + 4, XCOPY_MAX_TARGETS, 2);
	scsi_put_be(p + 6, XCOPY_MAX_SEGMENTS, 2);
	scsi_put_be(p + 8, XCOPY_MAX_DESC_LIST, 4);
	p += 0x1c; /* MAXIMUM INLINE DATA LENGTH 0 */
	/* Supported Descriptors: block to block, identification CSCD. */
	p = tpc_descriptor(p, 0x0008, 4);
	p[0] = 2;
	p[1] = XCOPY_SEGMENT_B2B;
	p[2] = XCOPY_TARGET_ID;
	p += 4;
	/* Supported CSCD Descriptor IDs: none. */
	p = tpc_descriptor(p, 0x000c, 4);
	p += 4;
	/* General Copy Operations: one copy at a time per LUN. */
	p = tpc_descriptor(p, 0x8001, 0x20);
	scsi_put_be(p, 1, 4);
	scsi_put_be(p + 4, 1, 4);
	scsi_put_be(p + 8, XCOPY_MAX_SEGMENT_BYTES, 4);
	p[12] = log2_of(block_size);
	p += 0x20;
	return (size_t)(p - buf);
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

void xcopy_naa_from_serial(const char *serial, uint8_t naa[XCOPY_NAA_LEN])
{
	/* NAA 6, IEEE company id 00-14-05, then 25 nibbles of the serial
	 * from the low half of byte 3 on; other characters are skipped. */
	static const uint8_t prefix[4] = { 0x60, 0x01, 0x40, 0x50 };
	unsigned int nibble = 7; /* of 32: 7 are the prefix */

	memset(naa, 0, XCOPY_NAA_LEN);
	memcpy(naa, prefix, sizeof(prefix));
	for (const char *p = serial; *p && nibble < 2 * XCOPY_NAA_LEN; p++) {
		int v = hex_digit(*p);

		if (v < 0)
			continue;
		naa[nibble / 2] |= (uint8_t)(nibble % 2 ? v : v << 4);
		nibble++;
	}
}
