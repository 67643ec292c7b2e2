// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * libtcmu's sense helpers as tcmu-runner provides them to the module
 * (fixed-format sense data), for the tests that stand in for tcmu-runner:
 * test_handler's stub, test_status and the fuzzer of the handler's CDBs.
 */
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#include "libtcmu_common.h"

int tcmu_sense_set_data(uint8_t *sense, uint8_t key, uint16_t asc_ascq)
{
	memset(sense, 0, 18);
	sense[0] = 0x70;
	sense[2] = key;
	sense[7] = 0xa; /* additional sense length */
	sense[12] = (uint8_t)(asc_ascq >> 8);
	sense[13] = (uint8_t)asc_ascq;
	return TCMU_STS_PASSTHROUGH_ERR;
}

void tcmu_sense_set_info(uint8_t *sense, uint32_t info)
{
	sense[0] |= 0x80; /* VALID */
	sense[3] = (uint8_t)(info >> 24);
	sense[4] = (uint8_t)(info >> 16);
	sense[5] = (uint8_t)(info >> 8);
	sense[6] = (uint8_t)info;
}
