/* CRC32C: slicing-by-8 tables in portable C, and the SSE4.2 crc32
 * instruction (about ten times faster, which matters for 64 KiB messages),
 * three chains at once where the CPU also has PCLMULQDQ (about three times
 * faster again on long buffers), chosen once at run time. */
#include "lan_crc32c.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#define POLY 0x82F63B78u

static uint32_t table[8][256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void table_build(void)
{
	for (uint32_t n = 0; n < 256; n++) {
		uint32_t c = n;
		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ POLY : c >> 1;
		table[0][n] = c;
	}
	for (uint32_t n = 0; n < 256; n++)
		for (int t = 1; t < 8; t++)
			table[t][n] = (table[t - 1][n] >> 8) ^ table[0][table[t - 1][n] & 0xff];
}

uint32_t ki_crc32c_portable(uint32_t crc, const void *data, size_t len)
{
	pthread_once(&table_once, table_build);
	const uint8_t *p = data;
	crc = ~crc;
	while (len >= 8) {
		uint32_t lo, hi;
		memcpy(&lo, p, 4);
		memcpy(&hi, p + 4, 4);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
		lo = __builtin_bswap32(lo);
		hi = __builtin_bswap32(hi);
#endif
		lo ^= crc;
		crc = table[7][lo & 0xff] ^ table[6][(lo >> 8) & 0xff] ^
		      table[5][(lo >> 16) & 0xff] ^ table[4][lo >> 24] ^
		      table[3][hi & 0xff] ^ table[2][(hi >> 8) & 0xff] ^
		      table[1][(hi >> 16) & 0xff] ^ table[0][hi >> 24];
		p += 8;
		len -= 8;
	}
	while (len--)
		crc = (crc >> 8) ^ table[0][(crc ^ *p++) & 0xff];
	return ~crc;
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

/* One crc32 instruction takes 3 cycles, but the CPU starts one a cycle:
 * a single chain over the buffer runs at a third of what the unit can do.
 * Long buffers are cut into three equal blocks, one chain each, the three
 * chains interleaved; the blocks' CRCs are then joined by shifting the
 * earlier ones over the later blocks' length (a carry-less multiply by
 * x^(8 block bytes) mod P, reduced by the crc32 instruction itself).
 * Blocks are 64 << j bytes: the constants are made once. */
#define BLOCK_MIN 64
#define BLOCK_SIZES 8 /* 64 B .. 8 KiB */

/* x^(8 * (64 << j) - 33) mod P, bit-reflected like the CRC register: a
 * carry-less product of a CRC register value and this constant, fed to
 * crc32 (which multiplies by x^33 as it reduces), is that value shifted
 * over 64 << j zero bytes. */
static uint32_t shift_const[BLOCK_SIZES];
static pthread_once_t shift_once = PTHREAD_ONCE_INIT;

static uint32_t x_pow_mod_p(uint64_t n)
{
	uint32_t v = 0x80000000u; /* x^0, reflected */
	while (n--)
		v = (v & 1) ? (v >> 1) ^ POLY : v >> 1;
	return v;
}

static void shift_build(void)
{
	for (int j = 0; j < BLOCK_SIZES; j++)
		shift_const[j] = x_pow_mod_p(8ull * ((uint64_t)BLOCK_MIN << j) - 33);
}

__attribute__((target("sse4.2,pclmul")))
static uint32_t shift_over(uint32_t crc, uint32_t k)
{
	__m128i p = _mm_clmulepi64_si128(_mm_cvtsi32_si128((int)crc), _mm_cvtsi32_si128((int)k), 0);
	return (uint32_t)__builtin_ia32_crc32di(0, (uint64_t)_mm_cvtsi128_si64(p));
}

__attribute__((target("sse4.2")))
static uint64_t chain(uint64_t c, const uint8_t *p, size_t len)
{
	for (; len >= 8; p += 8, len -= 8) {
		uint64_t v;
		memcpy(&v, p, 8);
		c = __builtin_ia32_crc32di(c, v);
	}
	uint32_t c32 = (uint32_t)c;
	while (len--)
		c32 = __builtin_ia32_crc32qi(c32, *p++);
	return c32;
}

__attribute__((target("sse4.2,pclmul")))
static uint32_t crc32c_sse42_x3(uint32_t crc, const void *data, size_t len)
{
	pthread_once(&shift_once, shift_build);
	const uint8_t *p = data;
	uint64_t c = ~crc;
	int j = BLOCK_SIZES - 1;
	while (len >= 3 * BLOCK_MIN) {
		while ((size_t)3 * (BLOCK_MIN << j) > len)
			j--;
		size_t block = (size_t)BLOCK_MIN << j;
		const uint8_t *b1 = p + block, *b2 = b1 + block;
		uint64_t c1 = 0, c2 = 0;
		for (size_t at = 0; at < block; at += 8) {
			uint64_t v0, v1, v2;
			memcpy(&v0, p + at, 8);
			memcpy(&v1, b1 + at, 8);
			memcpy(&v2, b2 + at, 8);
			c = __builtin_ia32_crc32di(c, v0);
			c1 = __builtin_ia32_crc32di(c1, v1);
			c2 = __builtin_ia32_crc32di(c2, v2);
		}
		uint32_t k = shift_const[j];
		c = shift_over(shift_over((uint32_t)c, k) ^ (uint32_t)c1, k) ^ (uint32_t)c2;
		p += 3 * block;
		len -= 3 * block;
	}
	return ~(uint32_t)chain(c, p, len);
}

/* One chain: buffers too short for three. */
__attribute__((target("sse4.2")))
static uint32_t crc32c_sse42(uint32_t crc, const void *data, size_t len)
{
	return ~(uint32_t)chain(~crc, data, len);
}

/* What the CPU offers: 0 nothing, 1 crc32 (SSE4.2), 2 crc32 and a
 * carry-less multiply (PCLMULQDQ) to join chains. */
static int cpu_level(void)
{
	/* Every thread that races here computes the same answer. */
	static _Atomic int known = -1;
	int k = atomic_load_explicit(&known, memory_order_relaxed);
	if (k < 0) {
		k = !__builtin_cpu_supports("sse4.2")  ? 0
		    : !__builtin_cpu_supports("pclmul") ? 1
							: 2;
		atomic_store_explicit(&known, k, memory_order_relaxed);
	}
	return k;
}

int ki_crc32c_paths(void) { return cpu_level() + 1; }

uint32_t ki_crc32c_path(int path, uint32_t crc, const void *data, size_t len)
{
	switch (path < cpu_level() ? path : cpu_level()) {
	case 2:
		return crc32c_sse42_x3(crc, data, len);
	case 1:
		return crc32c_sse42(crc, data, len);
	default:
		return ki_crc32c_portable(crc, data, len);
	}
}

uint32_t ki_crc32c(uint32_t crc, const void *data, size_t len)
{
	int level = cpu_level();
	if (level == 2 && len >= 3 * BLOCK_MIN)
		return crc32c_sse42_x3(crc, data, len);
	if (level >= 1)
		return crc32c_sse42(crc, data, len);
	return ki_crc32c_portable(crc, data, len);
}
#else
int ki_crc32c_paths(void) { return 1; }

uint32_t ki_crc32c_path(int path, uint32_t crc, const void *data, size_t len)
{
	(void)path;
	return ki_crc32c_portable(crc, data, len);
}

uint32_t ki_crc32c(uint32_t crc, const void *data, size_t len)
{
	return ki_crc32c_portable(crc, data, len);
}
#endif
