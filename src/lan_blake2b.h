/* Keyed BLAKE2b (RFC 7693), the MAC of authenticated LAN frames. Written
 * here so that libkite stays libc-only; one-shot and incremental. */
#ifndef KITE_LAN_BLAKE2B_H
#define KITE_LAN_BLAKE2B_H

#include <stddef.h>
#include <stdint.h>

#define BLAKE2B_BLOCK 128
#define BLAKE2B_KEY_MAX 64
#define BLAKE2B_OUT_MAX 64

struct blake2b {
	uint64_t h[8];
	uint64_t count;           /* bytes compressed so far (frames < 2^64) */
	uint8_t block[BLAKE2B_BLOCK];
	size_t fill;              /* bytes waiting in block */
	size_t out_len;
};

/* out_len 1..64, key_len 0..64 (key may be NULL when 0): 0 or -EINVAL. */
int ki_blake2b_init(struct blake2b *s, size_t out_len, const void *key, size_t key_len);
void ki_blake2b_update(struct blake2b *s, const void *data, size_t len);
/* Writes s->out_len bytes to out. */
void ki_blake2b_final(struct blake2b *s, uint8_t *out);

/* One shot: 0 or -EINVAL. */
int ki_blake2b(uint8_t *out, size_t out_len, const void *key, size_t key_len,
	       const void *data, size_t len);

#endif
