/* SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later */
/*
 * Descriptors over UNIX sockets (SCM_RIGHTS), for the extensions that pass
 * them with a message: REGION_ADD (client to agent) and the answers to
 * LOCAL_OPEN and LOCAL_OPEN_RW (agent to client).
 */
#ifndef VXHS_COMMON_FDPASS_H
#define VXHS_COMMON_FDPASS_H

#include <sys/types.h>

/* sendmsg of len bytes with nfds (1 to 4) descriptors attached to the
 * first; MSG_NOSIGNAL. Bytes sent, or -1 and errno. */
ssize_t fd_send(int sock, const void *buf, size_t len, const int *fds,
		size_t nfds);

/*
 * recvmsg of up to len bytes. The descriptors that came with them (close
 * on exec) go to slots[0], slots[1]... in order, each closing what the
 * slot held; any past nslots go to the last slot in turn. A peer's
 * message leaves what it should, and descriptors sent for nothing are
 * not left open. Bytes received, or -1 and errno.
 */
ssize_t fd_recv(int sock, void *buf, size_t len, int *slots, size_t nslots);

#endif /* VXHS_COMMON_FDPASS_H */
