// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/* Every client result the handler can see, as the initiator will see it. */
#include <errno.h>
#include <scsi/scsi.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "vxhs_handler.h"

struct row {
	int result;
	bool write;
	int status;
	uint8_t key; /* for TCMU_STS_PASSTHROUGH_ERR */
	uint16_t asc;
};

static const struct row rows[] = {
	{ 0, false, TCMU_STS_OK, 0, 0 },
	{ -EIO, false, TCMU_STS_RD_ERR, 0, 0 },
	{ -EIO, true, TCMU_STS_WR_ERR, 0, 0 },
	{ -ERANGE, false, TCMU_STS_RANGE, 0, 0 },
	{ -EAGAIN, true, TCMU_STS_NO_RESOURCE, 0, 0 }, /* TASK SET FULL */
	{ -ENOMEM, false, TCMU_STS_NO_RESOURCE, 0, 0 },
	{ -ETIMEDOUT, false, TCMU_STS_TIMEOUT, 0, 0 }, /* BUSY */
	/* no agent after failover_timeout: LOGICAL UNIT COMMUNICATION
	 * FAILURE, not retried by the initiator */
	{ -ENOTCONN, true, TCMU_STS_PASSTHROUGH_ERR, NOT_READY, 0x0800 },
	{ -ENOTCONN, false, TCMU_STS_PASSTHROUGH_ERR, NOT_READY, 0x0800 },
	{ -ECANCELED, false, TCMU_STS_BUSY, 0, 0 },
	{ -EOPNOTSUPP, true, TCMU_STS_INVALID_CMD, 0, 0 },
	{ -ENOSPC, true, TCMU_STS_PASSTHROUGH_ERR, DATA_PROTECT, 0x2707 },
	{ -EACCES, true, TCMU_STS_PASSTHROUGH_ERR, DATA_PROTECT, 0x2700 },
	{ -EACCES, false, TCMU_STS_PASSTHROUGH_ERR, ILLEGAL_REQUEST, 0x2002 },
	{ -ENOENT, false, TCMU_STS_HW_ERR, 0, 0 },
	{ -EPROTO, true, TCMU_STS_HW_ERR, 0, 0 },
	{ -EMSGSIZE, true, TCMU_STS_HW_ERR, 0, 0 },
};

static void test_status_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct row *r = &rows[i];
		uint8_t sense[96] = { 0 };
		int sts = vxhs_status(r->result, r->write, sense);

		if (sts != r->status)
			fail_msg("%s %s: status %d, expected %d",
				 strerror(-r->result),
				 r->write ? "write" : "read", sts, r->status);
		if (sts != TCMU_STS_PASSTHROUGH_ERR)
			continue;
		assert_int_equal(sense[2], r->key);
		assert_int_equal(sense[12] << 8 | sense[13], r->asc);
		/* Without a sense buffer there is still an answer. */
		assert_int_not_equal(vxhs_status(r->result, r->write, NULL),
				     TCMU_STS_PASSTHROUGH_ERR);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_status_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
