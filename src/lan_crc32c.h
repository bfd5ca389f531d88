/* CRC32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of LAN
 * frames: UDP's own checksum is 16 bits, weak and optional, so kite checks
 * its own. Check value: CRC32C("123456789") = 0xE3069283. */
#ifndef KITE_LAN_CRC32C_H
#define KITE_LAN_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continue a CRC over len more bytes: start with crc = 0, feed the pieces
 * in order; the result is the CRC of their concatenation. Uses the CPU's
 * crc32 instruction (SSE4.2) when it has one. */
uint32_t ki_crc32c(uint32_t crc, const void *data, size_t len);

/* The same, always in portable C (tests compare the two). */
uint32_t ki_crc32c_portable(uint32_t crc, const void *data, size_t len);

/* Tests: how many implementations this CPU can run (1..3), and the CRC
 * through one of them: 0 portable, 1 one crc32 chain (SSE4.2), 2 three
 * chains joined by carry-less multiplies (SSE4.2 and PCLMULQDQ; short
 * buffers take one chain there too). */
int ki_crc32c_paths(void);
uint32_t ki_crc32c_path(int path, uint32_t crc, const void *data, size_t len);

#endif
