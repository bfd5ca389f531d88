/* Big-endian fields of LAN frames, read and written byte by byte (frames
 * lie at any alignment inside a datagram). */
#ifndef KITE_LAN_BYTES_H
#define KITE_LAN_BYTES_H

#include <stdint.h>

static inline void lan_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}
static inline void lan_put32(uint8_t *p, uint32_t v)
{
	lan_put16(p, (uint16_t)(v >> 16));
	lan_put16(p + 2, (uint16_t)v);
}
static inline void lan_put64(uint8_t *p, uint64_t v)
{
	lan_put32(p, (uint32_t)(v >> 32));
	lan_put32(p + 4, (uint32_t)v);
}
static inline uint16_t lan_get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline uint32_t lan_get32(const uint8_t *p)
{
	return (uint32_t)lan_get16(p) << 16 | lan_get16(p + 2);
}
static inline uint64_t lan_get64(const uint8_t *p)
{
	return (uint64_t)lan_get32(p) << 32 | lan_get32(p + 4);
}

#endif
