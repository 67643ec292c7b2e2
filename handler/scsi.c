// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * The CDBs the handler answers before tcmu-runner's emulation sees them
 * (handle_cmd): where tcmu-runner 1.5.4 falls short of SBC-4 and of LIO's
 * own fileio backstore. Everything else goes on to tcmu-runner
 * (TCMU_STS_NOT_HANDLED).
 *
 * tcmu-runner 1.5.4 cannot complete a command taken here asynchronously
 * (it sets no completion for it), so what needs the agent runs on
 * tcmu-runner's command thread, with the synchronous calls: only VERIFY
 * and EXTENDED COPY (xcopy.c), which initiators send rarely.
 */
#include <endian.h>
#include <errno.h>
#include <scsi/scsi.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "scsi_field.h"
#include "vxhs_handler.h"

#ifndef VERIFY_16
#define VERIFY_16 0x8f
#endif
#ifndef WRITE_VERIFY_16
#define WRITE_VERIFY_16 0x8e
#endif
#ifndef COMPARE_AND_WRITE
#define COMPARE_AND_WRITE 0x89
#endif

/* VERIFY reads the range in pieces of this size. */
#define VERIFY_PIECE (1u << 20)

/* Byte 1 of READ, WRITE and COMPARE AND WRITE CDBs. */
#define CDB_DPO 0x10
#define CDB_FUA 0x08

/* Byte 1 of INQUIRY. */
#define CDB_EVPD 0x01

/* Byte 1 of WRITE SAME (10/16). */
#define CDB_ANCHOR 0x10

/* RDPROTECT, WRPROTECT, VRPROTECT: bits 7-5 of byte 1. */
static bool protect_field(const uint8_t *cdb)
{
	return cdb[1] & 0xe0;
}

void copy_from_iovec(uint8_t *dst, const struct iovec *iov, size_t cnt,
		     size_t off, size_t len)
{
	for (size_t i = 0; i < cnt && len; i++) {
		size_t n;

		if (off >= iov[i].iov_len) {
			off -= iov[i].iov_len;
			continue;
		}
		n = MIN(len, iov[i].iov_len - off);
		memcpy(dst, (const uint8_t *)iov[i].iov_base + off, n);
		dst += n;
		len -= n;
		off = 0;
	}
}

void copy_to_iovec(struct iovec *iov, size_t cnt, const uint8_t *src,
		   size_t len)
{
	for (size_t i = 0; i < cnt && len; i++) {
		size_t n = MIN(len, iov[i].iov_len);

		memcpy(iov[i].iov_base, src, n);
		src += n;
		len -= n;
	}
}

/*
 * VERIFY (10) and (16): BYTCHK 0 reads the range (a media error is what
 * the check finds); 1 compares it with the data-out buffer; 3 compares
 * each block with the one block sent. MISCOMPARE names the first byte
 * that differs, as for COMPARE AND WRITE.
 */
static int verify(struct tcmu_device *dev, struct tcmulib_cmd *cmd)
{
	struct vxhs_dev *vdev = tcmur_dev_get_private(dev);
	const uint8_t *cdb = cmd->cdb;
	bool is16 = cdb[0] == VERIFY_16;
	uint64_t lba = is16 ? scsi_get_be(cdb + 2, 8) : scsi_get_be(cdb + 2, 4);
	uint64_t blocks = is16 ? scsi_get_be(cdb + 10, 4) :
				 scsi_get_be(cdb + 7, 2);
	uint32_t bs = tcmu_dev_get_block_size(dev);
	unsigned int bytchk = (cdb[1] >> 1) & 3;
	uint64_t off = lba * bs, len = blocks * bs, done = 0;
	uint8_t *buf, *want = NULL;
	int sts = TCMU_STS_OK;

	/* DPO too: MODE SENSE does not offer it (DPOFUA 0). */
	if (protect_field(cdb) || bytchk == 2 || (cdb[1] & CDB_DPO))
		return TCMU_STS_INVALID_CDB;
	if (lba > tcmu_dev_get_num_lbas(dev) ||
	    blocks > tcmu_dev_get_num_lbas(dev) - lba)
		return TCMU_STS_RANGE;
	if (!blocks)
		return TCMU_STS_OK;
	/* The data sent must be what BYTCHK names (the range, or one block):
	 * anything else would be compared in part with nothing. */
	if (bytchk && iov_total(cmd->iovec, (int)cmd->iov_cnt) !=
			      (bytchk == 1 ? len : bs))
		return TCMU_STS_INVALID_CDB;
	buf = malloc(VERIFY_PIECE);
	if (bytchk)
		want = malloc(VERIFY_PIECE);
	if (!buf || (bytchk && !want)) {
		sts = TCMU_STS_NO_RESOURCE;
		goto free_bufs;
	}
	while (done < len) {
		size_t n = (size_t)MIN((uint64_t)VERIFY_PIECE, len - done);
		int ret = vxhs_lun_read_sync(vdev, buf, n, off + done);

		if (ret) {
			sts = vxhs_status(ret, false, cmd->sense_buf);
			break;
		}
		if (bytchk == 1) {
			copy_from_iovec(want, cmd->iovec, cmd->iov_cnt, done,
					n);
		} else if (bytchk == 3) {
			copy_from_iovec(want, cmd->iovec, cmd->iov_cnt, 0, bs);
			for (size_t b = bs; b < n; b += bs)
				memcpy(want + b, want, bs);
		}
		if (bytchk) {
			for (size_t i = 0; i < n; i++) {
				if (buf[i] == want[i])
					continue;
				tcmu_sense_set_info(cmd->sense_buf,
						    (uint32_t)(done + i));
				sts = TCMU_STS_MISCOMPARE;
				goto free_bufs;
			}
		}
		done += n;
	}
free_bufs:
	free(want);
	free(buf);
	return sts;
}

/*
 * Commands tcmu-runner answers from its own emulation with data: it
 * writes only the bytes of its answer, and the kernel sends the whole
 * buffer, whose rest is whatever the data area held before (another
 * command's data, maybe another initiator's). Zeroed first, the rest is
 * padding.
 */
static bool emulated_data_in(uint8_t opcode)
{
	switch (opcode) {
	case INQUIRY:
	case MODE_SENSE:
	case MODE_SENSE_10:
	case READ_CAPACITY:
	case SERVICE_ACTION_IN_16:
	case REQUEST_SENSE:
	case MAINTENANCE_IN:
	case RECEIVE_COPY_RESULTS:
	case LOG_SENSE:
		return true;
	}
	return false;
}

static void zero_iovec(struct iovec *iov, size_t cnt)
{
	for (size_t i = 0; i < cnt; i++)
		memset(iov[i].iov_base, 0, iov[i].iov_len);
}

/* SYNCHRONIZE CACHE (10/16) names a range; beyond the end it is refused,
 * as every other command with an LBA. */
static int sync_cache_range(struct tcmu_device *dev, const uint8_t *cdb)
{
	bool is16 = cdb[0] == SYNCHRONIZE_CACHE_16;
	uint64_t lba = is16 ? scsi_get_be(cdb + 2, 8) : scsi_get_be(cdb + 2, 4);
	uint64_t blocks = is16 ? scsi_get_be(cdb + 10, 4) :
				 scsi_get_be(cdb + 7, 2);
	uint64_t lbas = tcmu_dev_get_num_lbas(dev);

	if (lba > lbas || blocks > lbas - lba)
		return TCMU_STS_RANGE;
	return TCMU_STS_NOT_HANDLED;
}

/*
 * COMPARE AND WRITE's data-out buffer holds two copies of its blocks. One
 * of another size contradicts the CDB (a count of 256 blocks wraps to 0 in
 * its one-byte field, and the data came anyway): INVALID FIELD IN CDB, as
 * LIO answers such commands, where tcmu-runner gives HARDWARE ERROR or,
 * for zero blocks, GOOD.
 */
static bool caw_length_ok(struct tcmu_device *dev, struct tcmulib_cmd *cmd)
{
	uint64_t want = 2ull * cmd->cdb[13] * tcmu_dev_get_block_size(dev);

	return iov_total(cmd->iovec, (int)cmd->iov_cnt) == want;
}

/*
 * INQUIRY's Supported VPD Pages and Third-party Copy pages; tcmu-runner
 * answers the others. Its list lacks the copy page: it has no copy
 * manager of its own to describe.
 */
static int inquiry_vpd(struct tcmu_device *dev, struct tcmulib_cmd *cmd)
{
	static const uint8_t pages[] = { 0x00, 0x80, 0x83, XCOPY_VPD_PAGE,
					 0xb0, 0xb1, 0xb2 };
	uint8_t buf[XCOPY_VPD_LEN] = { 0 };
	size_t n;

	if (!(cmd->cdb[1] & CDB_EVPD))
		return TCMU_STS_NOT_HANDLED;
	switch (cmd->cdb[2]) {
	case 0x00:
		buf[3] = sizeof(pages);
		memcpy(buf + 4, pages, sizeof(pages));
		n = 4 + sizeof(pages);
		break;
	case XCOPY_VPD_PAGE:
		n = xcopy_vpd_page(buf, tcmu_dev_get_block_size(dev));
		break;
	default:
		return TCMU_STS_NOT_HANDLED;
	}
	copy_to_iovec(cmd->iovec, cmd->iov_cnt, buf, n);
	return TCMU_STS_OK;
}

int handler_handle_cmd(struct tcmu_device *dev, struct tcmur_cmd *tcmur_cmd)
{
	struct tcmulib_cmd *cmd = tcmur_cmd->lib_cmd;
	const uint8_t *cdb = cmd->cdb;

	if (emulated_data_in(cdb[0])) {
		zero_iovec(cmd->iovec, cmd->iov_cnt);
		if (cdb[0] == INQUIRY)
			return inquiry_vpd(dev, cmd);
		return cdb[0] == RECEIVE_COPY_RESULTS ?
			       handler_copy_results(dev, cmd) :
			       TCMU_STS_NOT_HANDLED;
	}
	switch (cdb[0]) {
	case EXTENDED_COPY:
		return handler_xcopy(dev, cmd);
	case SYNCHRONIZE_CACHE:
	case SYNCHRONIZE_CACHE_16:
		return sync_cache_range(dev, cdb);
	case COMPARE_AND_WRITE:
		if (!caw_length_ok(dev, cmd))
			return TCMU_STS_INVALID_CDB;
		/* fall through */
	case READ_10:
	case READ_12:
	case READ_16:
	case WRITE_10:
	case WRITE_12:
	case WRITE_16:
		/* tcmu-runner's MODE SENSE says DPOFUA 0: DPO and FUA are
		 * not offered (Linux sends them only where they are). */
		if (cdb[1] & (CDB_DPO | CDB_FUA))
			return TCMU_STS_INVALID_CDB;
		/* fall through */
	case WRITE_VERIFY:
	case WRITE_VERIFY_16:
		/* No protection information on these LUNs: a non-zero
		 * RDPROTECT or WRPROTECT asks for what is not there; nor
		 * DPO, which MODE SENSE does not offer. */
		if (protect_field(cdb) || (cdb[1] & CDB_DPO))
			return TCMU_STS_INVALID_CDB;
		return TCMU_STS_NOT_HANDLED;
	case WRITE_SAME:
	case WRITE_SAME_16:
		/* Nor anchored blocks (Logical Block Provisioning VPD:
		 * ANC_SUP 0), which tcmu-runner would write as unmapped. */
		if (protect_field(cdb) || (cdb[1] & CDB_ANCHOR))
			return TCMU_STS_INVALID_CDB;
		return TCMU_STS_NOT_HANDLED;
	case VERIFY:
	case VERIFY_16:
		return verify(dev, cmd);
	}
	return TCMU_STS_NOT_HANDLED;
}
