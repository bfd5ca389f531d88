/* Internal: the origin block, how a message relayed from another system
 * (kite_publish_origin) carries its remote sender's claim through a ring.
 *
 * A record whose flags have SLOT_ORIGIN set starts its payload with one
 * origin block; the application's bytes follow it. The block, in host byte
 * order (a ring never leaves its machine):
 *
 *   0  u32 block_len   the whole block, strings included
 *   4  u16 version     ORIGIN_VERSION
 *   6  u16 reserved    0
 *   8  i64 pid, 16 i64 uid (-1 unknown), 24 u64 publisher, 32 u64 seq
 *  40  u16 system_len, u16 subject_len, u16 host_len, u16 reserved (0),
 *  48  u32 headers_len
 *  52  system, subject, host, headers: each followed by one NUL
 *
 * Subscribers decode it as untrusted bytes: a block that does not add up
 * exactly costs its own message (reported lost), nothing else. */
#ifndef KITE_ORIGIN_H
#define KITE_ORIGIN_H

#include <stddef.h>
#include <stdint.h>

#include "kite.h"

#define ORIGIN_VERSION 1
#define ORIGIN_FIXED 52
#define ORIGIN_SYSTEM_MAX 64 /* bytes of origin->system */

/* Bytes origin encodes to, or -EINVAL (system or subject missing or empty,
 * a string longer than its field, pid/uid below -1) or KITE_ETOOBIG (more
 * than KITE_ORIGIN_MAX). */
int64_t ki_origin_size(const struct kite_origin *origin);

/* Encode origin into out (ki_origin_size() bytes, already checked). */
void ki_origin_encode(const struct kite_origin *origin, void *out);

/* Decode the block at the start of data[0..len): fills *out with pointers
 * into data and returns the block's length, or -EBADMSG if it is not a
 * well-formed block that fits. */
int64_t ki_origin_decode(const void *data, size_t len, struct kite_origin *out);

#endif
