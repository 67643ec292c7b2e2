/* SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later */
/* Big-endian fields of CDBs and parameter lists, n bytes wide (n <= 8). */
#ifndef VXHS_HANDLER_SCSI_FIELD_H
#define VXHS_HANDLER_SCSI_FIELD_H

#include <stdint.h>

static inline uint64_t scsi_get_be(const uint8_t *p, int n)
{
	uint64_t v = 0;

	for (int i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

static inline void scsi_put_be(uint8_t *p, uint64_t v, int n)
{
	for (int i = n - 1; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

#endif /* VXHS_HANDLER_SCSI_FIELD_H */
