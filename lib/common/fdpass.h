/* SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later */
/*
 * Descriptors over UNIX sockets (SCM_RIGHTS), for the extensions that pass
 * one with a message: REGION_ADD (client to agent) and the answer to
 * LOCAL_OPEN (agent to client).
 */
#ifndef VXHS_COMMON_FDPASS_H
#define VXHS_COMMON_FDPASS_H

#include <sys/types.h>

/* sendmsg of len bytes with fd attached to the first; MSG_NOSIGNAL.
 * Bytes sent, or -1 and errno. */
ssize_t fd_send(int sock, const void *buf, size_t len, int fd);

/*
 * recvmsg of up to len bytes. Descriptors that came with them (close on
 * exec) go to *slot one after the other, each closing the one before: a
 * peer gets one kept per message, and those it sends for nothing are not
 * left open. Bytes received, or -1 and errno.
 */
ssize_t fd_recv(int sock, void *buf, size_t len, int *slot);

#endif /* VXHS_COMMON_FDPASS_H */
