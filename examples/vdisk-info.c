/* SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later */
/*
 * A program outside the tree that uses libvxhs: it opens a vdisk, prints
 * what the agent says of it and the CRC-32 of its first sector.
 *
 *   cc vdisk-info.c $(pkg-config --cflags --libs vxhs) -o vdisk-info
 *   ./vdisk-info unix:/run/vxhsd/vxhsd.sock disk1
 *
 * TCP agents need TLS credentials in $VXHS_TLS_DIR (ca.pem, cert.pem,
 * key.pem), or VXHS_ALLOW_PLAINTEXT=1 in a closed lab.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vxhs/client.h>

#define SECTOR 512

static uint32_t crc32_ieee(const unsigned char *p, size_t len)
{
	uint32_t crc = 0xffffffffu;

	while (len--) {
		crc ^= *p++;
		for (int bit = 0; bit < 8; bit++)
			crc = (crc >> 1) ^ (0xedb88320u & -(crc & 1));
	}
	return ~crc;
}

int main(int argc, char **argv)
{
	struct vxhs_ctx_opts copts;
	struct vxhs_open_opts oopts;
	struct vxhs_vdisk_info info;
	struct vxhs_ctx *ctx;
	struct vxhs_vdisk *vd;
	unsigned char sector[SECTOR];
	struct iovec iov = { sector, sizeof(sector) };
	const char *plain;
	int ret;

	if (argc != 3) {
		fprintf(stderr, "usage: %s AGENT VDISK\n", argv[0]);
		return 2;
	}

	vxhs_open_opts_init(&oopts);
	ret = vxhs_agent_addr_parse(argv[1], &oopts.agents[0]);
	if (ret) {
		fprintf(stderr, "%s: %s\n", argv[1], vxhs_errmsg());
		return 2;
	}
	oopts.nr_agents = 1;
	oopts.tls_dir = getenv("VXHS_TLS_DIR");
	plain = getenv("VXHS_ALLOW_PLAINTEXT");
	oopts.allow_plaintext = plain && strcmp(plain, "1") == 0;

	vxhs_ctx_opts_init(&copts);
	copts.io_threads = 1;
	ret = vxhs_ctx_new(&copts, &ctx);
	if (ret) {
		fprintf(stderr, "context: %s\n", strerror(-ret));
		return 1;
	}

	ret = vxhs_vdisk_open(ctx, argv[2], &oopts, &vd);
	if (ret) {
		fprintf(stderr, "%s: %s\n", argv[2], vxhs_errmsg());
		goto free_ctx;
	}

	vxhs_vdisk_get_info(vd, &info);
	printf("vdisk %s\n", vxhs_vdisk_id(vd));
	printf("size %" PRIu64 "\n", info.size);
	printf("features 0x%" PRIx64 "\n", info.features);
	printf("agent %s\n", info.agent_name[0] ? info.agent_name : "-");

	if (info.size >= SECTOR) {
		ret = vxhs_readv_sync(vd, &iov, 1, 0);
		if (ret) {
			fprintf(stderr, "read: %s\n", strerror(-ret));
			goto close_vdisk;
		}
		printf("crc32 of sector 0 %08" PRIx32 "\n",
		       crc32_ieee(sector, sizeof(sector)));
	}

close_vdisk:
	vxhs_vdisk_close(vd);
free_ctx:
	vxhs_ctx_free(ctx);
	return ret ? 1 : 0;
}
