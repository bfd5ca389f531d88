/* The LAN key file (`key=FILE` in the lan option): one or two 32-byte
 * keys, 64 hex digits a line. Line 1 signs what this host sends; a frame
 * signed with any line is accepted, so keys rotate without a flag day
 * (docs/channels.md). */
#ifndef KITE_LAN_KEY_H
#define KITE_LAN_KEY_H

#include <stddef.h>
#include <stdint.h>

#define LAN_KEY_LEN 32
#define LAN_KEYS_MAX 2
/* The tag after each authenticated frame's payload. */
#define LAN_TAG_LEN 16

struct lan_keys {
	unsigned n; /* 0: no key, frames are not authenticated */
	uint8_t key[LAN_KEYS_MAX][LAN_KEY_LEN];
};

/* Read path once: 0, or -EACCES (group or others may access it), -EINVAL
 * (not one or two lines of 64 hex digits), KITE_ENOSODIUM (libsodium,
 * which computes the tags, cannot be loaded), or a failed call's -errno;
 * why says which, for the caller to print. */
int ki_lan_keys_load(const char *path, struct lan_keys *out, char *why, size_t why_len);

/* The tag of buf[0..len) under key i: keyed BLAKE2b-128 (RFC 7693), by
 * libsodium (zeros if it cannot be computed: no key accepts them). */
void ki_lan_tag(const struct lan_keys *k, unsigned i, const uint8_t *buf, size_t len,
		uint8_t tag[LAN_TAG_LEN]);

/* 1 if tag is buf's under any of k's keys (compared in constant time);
 * 0 if it is not, or no tag could be computed. */
int ki_lan_tag_ok(const struct lan_keys *k, const uint8_t *buf, size_t len,
		  const uint8_t tag[LAN_TAG_LEN]);

#endif
