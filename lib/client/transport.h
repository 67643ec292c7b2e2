/* SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later */
/*
 * What carries a connection's bytes, under conn.c: the plain socket (with
 * zero-copy sends of large payloads) or TLS. An operation returns what
 * happened and never changes the connection's state: conn.c decides what
 * a result means (up, down, wait for the socket).
 */
#ifndef VXHS_CLIENT_TRANSPORT_H
#define VXHS_CLIENT_TRANSPORT_H

#include <stdbool.h>
#include <sys/types.h>
#include <sys/uio.h>

struct vxhs_conn;
struct vxhs_io;

struct transport_ops {
	const char *name;
	/* The socket is connected: 0 when bytes may flow, -EINPROGRESS
	 * when a handshake must run first, or a negative errno. */
	int (*start)(struct vxhs_conn *conn);
	/* One step of the handshake: 0 done, -EAGAIN to wait for the
	 * socket (wants_write says which way), or a negative errno (the
	 * reason already logged). */
	int (*handshake)(struct vxhs_conn *conn);
	/* As writev and readv, but a negative errno instead of -1 and
	 * errno. A receive may fill the first segment only. */
	ssize_t (*sendv)(struct vxhs_conn *conn, const struct iovec *iov,
			 int n);
	ssize_t (*recvv)(struct vxhs_conn *conn, const struct iovec *iov,
			 int n);
	/* After a receive of got bytes where asked were room: whether it
	 * took all the socket had, so that the next read can wait for the
	 * next event (epoll is level-triggered) instead of being told
	 * EAGAIN. */
	bool (*drained)(const struct vxhs_conn *conn, size_t got, size_t asked);
	/* Sends the payload of the queue's head io from the caller's pages:
	 * whether this io should go so, and payload bytes sent or a
	 * negative errno (-ENOTSUP: go on with sendv from where it
	 * stopped). NULL: never. */
	bool (*pages_wanted)(struct vxhs_conn *conn, const struct vxhs_io *io);
	ssize_t (*send_pages)(struct vxhs_conn *conn, struct vxhs_io *io);
	/* Whether a send must end after one message (so that each message
	 * is a record of its own for an original peer). */
	bool (*one_message_per_send)(const struct vxhs_conn *conn);
	/* Whether it waits to write (a handshake, or data held back). */
	bool (*wants_write)(const struct vxhs_conn *conn);
	/* Bytes received and decoded that the socket no longer signals. */
	bool (*has_pending)(const struct vxhs_conn *conn);
	/* Why the connection ended, for failover: err, or a better one. */
	int (*explain_loss)(struct vxhs_conn *conn, int err);
	/* Frees what start made; the socket is conn.c's. */
	void (*end)(struct vxhs_conn *conn);
};

extern const struct transport_ops transport_plain;
extern const struct transport_ops transport_tls;

#endif /* VXHS_CLIENT_TRANSPORT_H */
