// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * From a client result (0 or a negative errno, include/vxhs/client.h) to
 * the TCMU status an initiator sees. Precise where SCSI has a precise
 * answer: a media error is a MEDIUM ERROR on the right direction, a refused
 * write is DATA PROTECT, resource shortage is TASK SET FULL, no agent
 * after failover_timeout is NOT READY (LOGICAL UNIT COMMUNICATION FAILURE),
 * and anything that may clear by itself is BUSY so initiators retry.
 */
#include <errno.h>
#include <scsi/scsi.h>

#include "vxhs_handler.h"

/* SPC-4 additional sense codes used here (ASC << 8 | ASCQ). */
#define ASC_WRITE_PROTECTED	     0x2700
#define ASC_SPACE_ALLOC_FAILED_WP    0x2707
#define ASC_ACCESS_DENIED_NO_RIGHTS  0x2002
#define ASC_LU_COMMUNICATION_FAILURE 0x0800

int vxhs_status(int result, bool write, uint8_t *sense)
{
	switch (result) {
	case 0:
		return TCMU_STS_OK;
	case -EIO:
		return write ? TCMU_STS_WR_ERR : TCMU_STS_RD_ERR;
	case -ERANGE:
		return TCMU_STS_RANGE;
	case -EAGAIN:
	case -ENOMEM:
		return TCMU_STS_NO_RESOURCE;
	case -ETIMEDOUT:
		return TCMU_STS_TIMEOUT;
	case -ENOTCONN:
		/* failover_timeout passed with no agent: the kernel hands
		 * this up at once (no retries) and multipath fails the
		 * path, as when its own cmd_time_out expires. */
		if (!sense)
			return TCMU_STS_BUSY;
		tcmu_sense_set_data(sense, NOT_READY,
				    ASC_LU_COMMUNICATION_FAILURE);
		return TCMU_STS_PASSTHROUGH_ERR;
	case -ECANCELED: /* the vdisk was replaced or closed under it */
	case -EBADF:
	case -ESTALE: /* fenced: tcmu-runner takes the lock back first */
		return TCMU_STS_BUSY;
	case -EOPNOTSUPP:
		return TCMU_STS_INVALID_CMD;
	case -ENOSPC:
		if (!sense)
			return TCMU_STS_WR_ERR;
		tcmu_sense_set_data(sense, DATA_PROTECT,
				    ASC_SPACE_ALLOC_FAILED_WP);
		return TCMU_STS_PASSTHROUGH_ERR;
	case -EACCES:
	case -EPERM:
		if (!sense)
			return TCMU_STS_HW_ERR;
		if (write)
			tcmu_sense_set_data(sense, DATA_PROTECT,
					    ASC_WRITE_PROTECTED);
		else
			tcmu_sense_set_data(sense, ILLEGAL_REQUEST,
					    ASC_ACCESS_DENIED_NO_RIGHTS);
		return TCMU_STS_PASSTHROUGH_ERR;
	default:
		/* ENOENT (vdisk gone), EPROTO, EMSGSIZE...: not the
		 * initiator's doing and not going to clear by retrying. */
		return TCMU_STS_HW_ERR;
	}
}
