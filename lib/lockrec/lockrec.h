/* SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later */
/*
 * A vdisk's lock record (docs/protocol.md, "The exclusive lock") and the
 * gate in it, shared by vxhsd, which keeps the record, and a gateway that
 * writes the vdisk's file itself ("Local writes"), which must pass the
 * same gate and obey the same epoch as the agent's own writes.
 */
#ifndef VXHS_LOCKREC_H
#define VXHS_LOCKREC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <vxhs/wire.h> /* VXHS_LOCK_OWNER_MAX */

/* Two slots of 256 bytes; past them, two bytes that are locked, never
 * written: the gate, and the intent byte an acquire holds while it waits
 * for the gate. */
#define LOCK_SLOT_SIZE	 256
#define LOCK_RECORD_SIZE (2 * LOCK_SLOT_SIZE)
#define LOCK_INTENT_BYTE 4096
#define LOCK_GATE_BYTE	 4097

struct lock_record {
	uint64_t seq;	/* versions written */
	uint64_t epoch; /* grows with every change of owner */
	uint64_t since; /* taken at, Unix time */
	bool held;
	uint32_t tag;
	char owner[VXHS_LOCK_OWNER_MAX + 1];
};

/* The record from the file's first n bytes: 0 (n 0: a vdisk never
 * locked), or -EUCLEAN (neither slot valid, or a file of another size). */
int lock_record_decode(const uint8_t *buf, size_t n, struct lock_record *rec);
/* rec's next version (seq incremented) into slot; its offset in the file. */
off_t lock_record_encode(struct lock_record *rec, uint8_t slot[LOCK_SLOT_SIZE]);

/* Whether a change made under epoch token must not land: with the lock
 * held, anything but its epoch; free, an epoch that is not the last. */
bool lock_record_fences(const struct lock_record *rec, uint64_t token);

/* An OFD lock of type on one byte (F_OFD_SETLK or F_OFD_SETLKW), retried
 * on EINTR: 0 or a negative errno. */
int byte_lock(int fd, int cmd, short type, off_t byte);
/* Takes the gate shared, past the intent byte: 0, -EAGAIN (!wait and an
 * acquire holds either byte) or a negative errno. */
int gate_take(int fd, bool wait);
/* Drops this description's share of the gate. */
void gate_drop(int fd);
/* Whether an acquire (of any agent) holds the intent byte. */
bool gate_acquire_waiting(int fd);

#endif /* VXHS_LOCKREC_H */
