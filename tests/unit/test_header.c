// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/* The 256-byte header against byte vectors taken from the reference. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "vxhs/wire.h"

/* An async read as the original client sends it, byte by byte. */
static void build_read_vector(uint8_t *b)
{
	memset(b, 0, VXHS_HDR_SIZE);
	b[0] = 0x1E;
	b[1] = 0xAB;
	b[2] = 0xA1;
	b[3] = 0x5C; /* marker */
	b[12] = 1;   /* data_type */
	b[20] = 0x88;
	b[21] = 0x77;
	b[22] = 0x66;
	b[23] = 0x55; /* cookie */
	b[24] = 0x44;
	b[25] = 0x33;
	b[26] = 0x22;
	b[27] = 0x11;
	b[28] = 0x88; /* crc */
	b[30] = 0xFF;
	b[31] = 0x1F; /* opcode */
	b[36] = 0x00;
	b[37] = 0x10; /* offset 4096 */
	b[44] = 0x00;
	b[45] = 0x02; /* size 512 */
	b[68] = 0x00;
	b[69] = 0x01; /* io_flags */
	b[76] = 0x11; /* flags */
	memcpy(b + 96, "vdisk-1", 7);
}

static void encode_matches_reference_bytes(void **state)
{
	uint8_t want[VXHS_HDR_SIZE], got[VXHS_HDR_SIZE];
	struct vxhs_hdr h;

	build_read_vector(want);
	assert_int_equal(vxhs_hdr_init_request(&h, VXHS_OP_READ, "vdisk-1",
					       0x1122334455667788ull, 4096, 512,
					       false),
			 0);
	vxhs_hdr_encode(&h, got);
	assert_memory_equal(got, want, VXHS_HDR_SIZE);
}

static void decode_reads_every_field(void **state)
{
	uint8_t b[VXHS_HDR_SIZE];
	struct vxhs_hdr h;

	build_read_vector(b);
	b[4] = 0x34;
	b[5] = 0x12; /* payload 0x1234 */
	b[16] = 0xFE;
	b[17] = 0xFF;
	b[18] = 0xFF;
	b[19] = 0xFF; /* err -2 */
	assert_int_equal(vxhs_hdr_decode(b, &h), 0);
	assert_int_equal(h.payload_size, 0x1234);
	assert_int_equal(h.data_type, 1);
	assert_int_equal(h.err, -2);
	assert_int_equal(h.cookie, 0x1122334455667788ull);
	assert_int_equal(h.crc, 0x88);
	assert_int_equal(h.opcode, VXHS_OP_READ);
	assert_int_equal(h.io_offset, 4096);
	assert_int_equal(h.io_size, 512);
	assert_int_equal(h.io_flags, 0x100);
	assert_int_equal(h.flags, 0x11);
	assert_string_equal(h.target, "vdisk-1");
}

static void round_trip_keeps_everything(void **state)
{
	struct vxhs_hdr in = {
		.payload_size = UINT64_MAX, .data_type = 2, .err = INT32_MIN,
		.cookie = 0xFEDCBA9876543210ull, .crc = 0x10, .opcode = 2020,
		.io_offset = 1ull << 62, .io_size = 7, .io_nbytes = 8,
		.io_seqno = 9, .io_flags = 10, .flags = 0x40,
		.io_remote_hdl = 11, .io_remote_flags = 12,
	}, out;
	uint8_t b[VXHS_HDR_SIZE];

	memset(in.target, 'x', VXHS_VDISK_ID_MAX);
	vxhs_hdr_encode(&in, b);
	assert_int_equal(b[VXHS_HDR_SIZE - 1], 0);
	assert_int_equal(b[96 + VXHS_VDISK_ID_MAX], 0);
	assert_int_equal(vxhs_hdr_decode(b, &out), 0);
	assert_memory_equal(&in, &out, sizeof(in));
}

static void bad_marker_is_an_error(void **state)
{
	uint8_t b[VXHS_HDR_SIZE];
	struct vxhs_hdr h;

	build_read_vector(b);
	b[0] ^= 1;
	assert_int_equal(vxhs_hdr_decode(b, &h), -EBADMSG);
}

static void unterminated_target_is_reported(void **state)
{
	uint8_t b[VXHS_HDR_SIZE];
	struct vxhs_hdr h;

	build_read_vector(b);
	memset(b + 96, 'a', 64);
	assert_int_equal(vxhs_hdr_decode(b, &h), -ENAMETOOLONG);
	/* still usable for an answer, truncated and terminated */
	assert_int_equal(strlen(h.target), 63);
	assert_int_equal(h.opcode, VXHS_OP_READ);
}

static void request_flags_match_the_original_client(void **state)
{
	struct vxhs_hdr h;

	vxhs_hdr_init_request(&h, VXHS_OP_WRITE, "d", 1, 0, 4096, false);
	assert_int_equal(h.flags, 0x09);
	assert_int_equal(h.payload_size, 4096);
	assert_int_equal(h.io_flags, 0x100);
	vxhs_hdr_init_request(&h, VXHS_OP_READ, "d", 1, 0, 4096, false);
	assert_int_equal(h.flags, 0x11);
	vxhs_hdr_init_request(&h, VXHS_OP_WRITE, "d", 1, 0, 4096, true);
	assert_int_equal(h.flags, 0x28);
	vxhs_hdr_init_request(&h, VXHS_OP_STAT, "d", 1, 0, 0, true);
	assert_int_equal(h.flags, 0x30);
	assert_int_equal(h.data_type, 2);
	assert_int_equal(h.io_flags, 0);
	vxhs_hdr_init_request(&h, VXHS_OP_FAILOVER_READY, "d", 1, 0, 0, true);
	assert_int_equal(h.flags, 0x30);
}

static void id_of_64_characters_is_refused(void **state)
{
	char id[65];
	struct vxhs_hdr h;

	memset(id, 'a', 64);
	id[64] = '\0';
	assert_int_equal(vxhs_hdr_init_request(&h, VXHS_OP_READ, id, 1, 0, 1,
					       false),
			 -ENAMETOOLONG);
	assert_false(vxhs_vdisk_id_valid(id));
	id[63] = '\0';
	assert_true(vxhs_vdisk_id_valid(id));
}

static void vdisk_ids_are_checked(void **state)
{
	assert_true(
		vxhs_vdisk_id_valid("{c3e9095a-a5ee-4dce-afeb-2a59fb387410}"));
	assert_true(vxhs_vdisk_id_valid("disk_1.img"));
	assert_false(vxhs_vdisk_id_valid(""));
	assert_false(vxhs_vdisk_id_valid("."));
	assert_false(vxhs_vdisk_id_valid(".."));
	assert_false(vxhs_vdisk_id_valid("../etc/passwd"));
	assert_false(vxhs_vdisk_id_valid("a/b"));
	assert_false(vxhs_vdisk_id_valid(".hidden"));
	assert_false(vxhs_vdisk_id_valid("sp ace"));
	assert_false(vxhs_vdisk_id_valid("semi;colon"));
}

static void response_flags_follow_the_sync_rule(void **state)
{
	assert_int_equal(vxhs_hdr_response_flags(0x28), VXHS_FLAG_SYNC_RESP);
	assert_int_equal(vxhs_hdr_response_flags(0x30), VXHS_FLAG_SYNC_RESP);
	assert_int_equal(vxhs_hdr_response_flags(0x09), VXHS_FLAG_RESP);
	assert_int_equal(vxhs_hdr_response_flags(0x11), VXHS_FLAG_RESP);
}

static void wire_errors_map_to_errno(void **state)
{
	assert_int_equal(vxhs_wire_err_to_errno(0), 0);
	assert_int_equal(vxhs_wire_err_to_errno(EIO), -EIO);
	assert_int_equal(vxhs_wire_err_to_errno(-ENOSPC), -ENOSPC);
	assert_int_equal(vxhs_wire_err_to_errno(901), -ECONNRESET);
	/* Outside the protocol's set: the library's own meanings cannot be
	 * produced by an agent. */
	assert_int_equal(vxhs_wire_err_to_errno(902), -EIO);
	assert_int_equal(vxhs_wire_err_to_errno(ENOTCONN), -EIO);
	assert_int_equal(vxhs_wire_err_to_errno(-ECANCELED), -EIO);
	assert_int_equal(vxhs_wire_err_to_errno(ETIMEDOUT), -EIO);
	assert_int_equal(vxhs_wire_err_to_errno(EAGAIN), -EAGAIN);
	/* Found by fuzz_header: a negation that overflowed. */
	assert_int_equal(vxhs_wire_err_to_errno(INT32_MIN), -EIO);
	assert_int_equal(vxhs_wire_err_to_errno(-4096), -EIO);
	assert_int_equal(vxhs_wire_err_to_errno(123456), -EIO);
	assert_int_equal(vxhs_errno_to_wire_err(-ERANGE), ERANGE);
	assert_int_equal(vxhs_errno_to_wire_err(0), 0);
	assert_int_equal(vxhs_errno_to_wire_err(-EROFS), EACCES);
	assert_int_equal(vxhs_errno_to_wire_err(-ENOTCONN), EIO);
	assert_int_equal(vxhs_errno_to_wire_err(VXHS_ERR_HUP), EIO);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(encode_matches_reference_bytes),
		cmocka_unit_test(decode_reads_every_field),
		cmocka_unit_test(round_trip_keeps_everything),
		cmocka_unit_test(bad_marker_is_an_error),
		cmocka_unit_test(unterminated_target_is_reported),
		cmocka_unit_test(request_flags_match_the_original_client),
		cmocka_unit_test(id_of_64_characters_is_refused),
		cmocka_unit_test(vdisk_ids_are_checked),
		cmocka_unit_test(response_flags_follow_the_sync_rule),
		cmocka_unit_test(wire_errors_map_to_errno),
	};

	return cmocka_run_group_tests_name("wire header", tests, NULL, NULL);
}
