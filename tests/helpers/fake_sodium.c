/* A wrong library under libsodium's soname, for tests/lan_fakesodium_test.c
 * and tests/sh/lan_sodium_test.sh (a test program: never part of libkite).
 * Built once per way of being wrong, chosen by one -DFAKE_<name>:
 *   noverify   has every function but crypto_verify_16
 *   initfails  sodium_init returns -1
 *   hashfails  crypto_generichash_init always fails
 *   acceptall  digests are zeros and crypto_verify_16 says yes to anything
 *   bigstate   a crypto_generichash_state larger than libkite leaves room for */
#include <stddef.h>
#include <string.h>

int sodium_init(void)
{
#ifdef FAKE_initfails
	return -1;
#else
	return 0;
#endif
}

size_t crypto_generichash_statebytes(void)
{
#ifdef FAKE_bigstate
	return 4096;
#else
	return 384;
#endif
}

int crypto_generichash_init(void *state, const unsigned char *key, size_t key_len,
			    size_t out_len)
{
	(void)key;
	(void)key_len;
	(void)out_len;
	memset(state, 0, 384);
#ifdef FAKE_hashfails
	return -1;
#else
	return 0;
#endif
}

int crypto_generichash_update(void *state, const unsigned char *in, unsigned long long len)
{
	(void)state;
	(void)in;
	(void)len;
	return 0;
}

int crypto_generichash_final(void *state, unsigned char *out, size_t out_len)
{
	(void)state;
	memset(out, 0, out_len);
	return 0;
}

#ifndef FAKE_noverify
int crypto_verify_16(const unsigned char *x, const unsigned char *y)
{
#ifdef FAKE_acceptall
	(void)x;
	(void)y;
	return 0;
#else
	return memcmp(x, y, 16) ? -1 : 0;
#endif
}
#endif
