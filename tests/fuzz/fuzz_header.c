// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * The 256-byte header decoder: any 256 bytes decode or are refused, and
 * whatever decodes encodes back to a header that decodes the same.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "vxhs/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t buf[VXHS_HDR_SIZE] = { 0 }, again[VXHS_HDR_SIZE];
	struct vxhs_hdr h, h2;

	memcpy(buf, data, size < sizeof(buf) ? size : sizeof(buf));
	if (vxhs_hdr_decode(buf, &h))
		return 0;
	vxhs_opcode_known(h.opcode);
	vxhs_vdisk_id_valid(h.target);
	vxhs_wire_err_to_errno(h.err);
	vxhs_hdr_encode(&h, again);
	if (vxhs_hdr_decode(again, &h2) || memcmp(&h, &h2, sizeof(h)))
		fuzz_fail("a decoded header does not encode back to itself");
	return 0;
}
