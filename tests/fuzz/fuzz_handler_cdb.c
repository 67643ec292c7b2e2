// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * The CDBs the handler answers itself (handler/scsi.c), before
 * tcmu-runner's emulation, with any CDB and any data-out buffer: every
 * command ends with a status tcmu-runner knows, never reads the vdisk
 * outside the LUN, and never touches memory outside its buffers (ASan).
 * libtcmu's device accessors and the synchronous read are stood in for by
 * a 1 MiB LUN in memory, its sense helpers by tests/handler's.
 *
 * Input: 16 bytes of CDB, 2 bytes (big-endian) where the data-out buffer
 * splits into two iovecs, then the data-out buffer.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "fuzz.h"
#include "common/util.h"
#include "scsi_field.h"
#include "vxhs_handler.h"
#include "xcopy_list.h"

#define BLOCK 512u
#define LBAS  2048u

struct tcmu_device {
	int unused;
};

static struct tcmu_device dev;
static uint8_t lun[BLOCK * LBAS];

void *tcmur_dev_get_private(struct tcmu_device *d)
{
	(void)d;
	return lun; /* only ever handed back to vxhs_lun_read_sync */
}

uint32_t tcmu_dev_get_block_size(struct tcmu_device *d)
{
	(void)d;
	return BLOCK;
}

uint64_t tcmu_dev_get_num_lbas(struct tcmu_device *d)
{
	(void)d;
	return LBAS;
}

int vxhs_lun_read_sync(struct vxhs_dev *vdev, void *buf, size_t len,
		       uint64_t off)
{
	(void)vdev;
	if (off > sizeof(lun) || len > sizeof(lun) - off)
		fuzz_fail("an access past the LUN: a range check missed");
	memcpy(buf, lun + off, len);
	return 0;
}

/*
 * EXTENDED COPY and RECEIVE COPY RESULTS: their parsing and answers
 * (xcopy_list.c) with the copy itself left out, which needs LUNs and an
 * agent (tests/handler drives it).
 */
int handler_xcopy(struct tcmu_device *d, struct tcmulib_cmd *cmd)
{
	size_t len = (size_t)scsi_get_be(cmd->cdb + 10, 4);
	struct xcopy_list list;
	const char *what = NULL;
	uint8_t *par;

	(void)d;
	len = MIN(len, iov_total(cmd->iovec, (int)cmd->iov_cnt));
	if (!len)
		return TCMU_STS_OK;
	par = malloc(len);
	if (!par)
		return TCMU_STS_NO_RESOURCE;
	copy_from_iovec(par, cmd->iovec, cmd->iov_cnt, 0, len);
	if (xcopy_parse(par, len, &list, &what) == XCOPY_OK) {
		for (unsigned int i = 0; i < list.nr_segments; i++)
			if (list.segments[i].src >= list.nr_targets ||
			    list.segments[i].dst >= list.nr_targets)
				fuzz_fail(
					"a segment names a target past the list");
	} else if (!what) {
		fuzz_fail("a refusal without a reason");
	}
	free(par);
	return TCMU_STS_OK;
}

int handler_copy_results(struct tcmu_device *d, struct tcmulib_cmd *cmd)
{
	uint8_t buf[XCOPY_OP_PARAMS_LEN];

	copy_to_iovec(cmd->iovec, cmd->iov_cnt, buf,
		      xcopy_op_params(buf, tcmu_dev_get_block_size(d)));
	return TCMU_STS_OK;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	for (size_t i = 0; i < sizeof(lun); i++)
		lun[i] = (uint8_t)(i * 31 + i / BLOCK);
	return 0;
}

static bool known_status(int sts)
{
	switch (sts) {
	case TCMU_STS_NOT_HANDLED:
	case TCMU_STS_OK:
	case TCMU_STS_NO_RESOURCE:
	case TCMU_STS_PASSTHROUGH_ERR:
	case TCMU_STS_BUSY:
	case TCMU_STS_RD_ERR:
	case TCMU_STS_MISCOMPARE:
	case TCMU_STS_INVALID_CDB:
	case TCMU_STS_RANGE:
	case TCMU_STS_TIMEOUT:
		return true;
	}
	return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tcmulib_cmd lib = { 0 };
	struct tcmur_cmd cmd = { 0 };
	uint8_t cdb[16], *out;
	struct iovec iov[2];
	size_t len, split;

	if (size < 18)
		return 0;
	memcpy(cdb, data, 16);
	split = (size_t)data[16] << 8 | data[17];
	len = size - 18;
	/* A buffer of its own, so ASan sees any access past its end. */
	out = malloc(len ? len : 1);
	if (!out)
		return 0;
	memcpy(out, data + 18, len);
	split = len ? split % (len + 1) : 0;
	iov[0] = (struct iovec){ out, split };
	iov[1] = (struct iovec){ out + split, len - split };
	lib.cdb = cdb;
	lib.iovec = iov;
	lib.iov_cnt = 2;
	cmd.lib_cmd = &lib;
	if (!known_status(handler_handle_cmd(&dev, &cmd)))
		fuzz_fail("a status the handler may not return");
	free(out);
	return 0;
}
