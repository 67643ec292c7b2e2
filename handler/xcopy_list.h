/* SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later */
/*
 * EXTENDED COPY (LID1) parameter lists (SPC-4 6.4) as the handler's copy
 * manager takes them: identification CSCD descriptors (0xE4) naming LUNs
 * by their NAA designator, block-to-block segment descriptors (0x02).
 * Pure parsing, so the unit tests and the fuzzer drive it alone.
 */
#ifndef VXHS_HANDLER_XCOPY_LIST_H
#define VXHS_HANDLER_XCOPY_LIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What RECEIVE COPY RESULTS (OPERATING PARAMETERS) announces. */
#define XCOPY_MAX_TARGETS   4
#define XCOPY_MAX_SEGMENTS  4
#define XCOPY_MAX_DESC_LIST 1024
/* One agent COPY request (VXHS_COPY_MAX). */
#define XCOPY_MAX_SEGMENT_BYTES (256u << 20)

#define XCOPY_HEADER_LEN  16
#define XCOPY_TARGET_LEN  32
#define XCOPY_SEGMENT_LEN 28 /* block to block: 4 + 0x18 */
#define XCOPY_NAA_LEN	  16

#define XCOPY_TARGET_ID	  0xe4
#define XCOPY_SEGMENT_B2B 0x02

struct xcopy_target {
	uint8_t naa[XCOPY_NAA_LEN]; /* NAA IEEE Registered Extended */
	uint32_t block_size;	    /* the descriptor's DISK BLOCK LENGTH */
};

struct xcopy_segment {
	uint16_t src, dst; /* indexes into targets, checked */
	uint16_t blocks;
	uint64_t src_lba, dst_lba;
};

struct xcopy_list {
	uint8_t list_id;
	bool held; /* LIST ID USAGE 00b: its status kept for COPY STATUS */
	unsigned int nr_targets, nr_segments;
	struct xcopy_target targets[XCOPY_MAX_TARGETS];
	struct xcopy_segment segments[XCOPY_MAX_SEGMENTS];
};

/* Why a list is refused: the sense SPC-4 names for each. */
enum xcopy_error {
	XCOPY_OK,
	XCOPY_LIST_LENGTH,	 /* PARAMETER LIST LENGTH ERROR */
	XCOPY_INVALID_FIELD,	 /* INVALID FIELD IN PARAMETER LIST */
	XCOPY_TOO_MANY_TARGETS,	 /* TOO MANY TARGET DESCRIPTORS */
	XCOPY_TOO_MANY_SEGMENTS, /* TOO MANY SEGMENT DESCRIPTORS */
	XCOPY_TARGET_TYPE,	 /* UNSUPPORTED TARGET DESCRIPTOR TYPE CODE */
	XCOPY_SEGMENT_TYPE,	 /* UNSUPPORTED SEGMENT DESCRIPTOR TYPE CODE */
	XCOPY_BAD_INDEX,	 /* COPY ABORTED: UNREACHABLE COPY TARGET */
	XCOPY_UNREACHABLE,	 /* COPY ABORTED: COPY TARGET NOT REACHABLE */
	XCOPY_TARGET_DEVICE,	 /* COPY ABORTED: INVALID COPY TARGET TYPE */
};

/*
 * Parses the len bytes of a parameter list (len > 0). On an error, *what
 * says which field, for the log.
 */
enum xcopy_error xcopy_parse(const uint8_t *par, size_t len,
			     struct xcopy_list *list, const char **what);

/* What COPY STATUS reports of a finished copy. */
struct xcopy_result {
	bool failed;
	uint16_t segments; /* processed */
	uint64_t bytes;	   /* copied */
};

/*
 * The copies of one LUN whose status may still be asked for, by list
 * identifier: the newest few, a reused identifier replacing its old copy.
 * TCMU does not say which initiator sent a command, so identifiers are
 * per LUN rather than per I_T nexus.
 */
#define XCOPY_HELD 8
struct xcopy_history {
	struct {
		bool used;
		uint8_t list_id;
		struct xcopy_result r;
	} slot[XCOPY_HELD];
	unsigned int next;
};

void xcopy_history_put(struct xcopy_history *h, uint8_t list_id,
		       const struct xcopy_result *r);
const struct xcopy_result *xcopy_history_find(const struct xcopy_history *h,
					      uint8_t list_id);

/* The COPY STATUS data (SPC-4 6.18.3) of a finished copy. */
#define XCOPY_STATUS_LEN 12
size_t xcopy_copy_status(uint8_t buf[XCOPY_STATUS_LEN],
			 const struct xcopy_result *r);

/* The Third-party Copy VPD page (SPC-4 7.8.17) for a LUN's block size. */
#define XCOPY_VPD_PAGE 0x8f
#define XCOPY_VPD_LEN  100
size_t xcopy_vpd_page(uint8_t buf[XCOPY_VPD_LEN], uint32_t block_size);

/* The OPERATING PARAMETERS data (SPC-4 6.18.4) for a LUN's block size;
 * returns its length. */
#define XCOPY_OP_PARAMS_LEN 46
size_t xcopy_op_params(uint8_t buf[XCOPY_OP_PARAMS_LEN], uint32_t block_size);

/* The NAA designator tcmu-runner's Device Identification VPD page gives
 * a LUN of this unit serial (OpenFabrics IEEE company id, then the hex
 * digits of the serial, one per nibble). */
void xcopy_naa_from_serial(const char *serial, uint8_t naa[XCOPY_NAA_LEN]);

#endif /* VXHS_HANDLER_XCOPY_LIST_H */
