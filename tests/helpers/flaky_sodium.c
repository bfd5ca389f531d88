/* libsodium as it would be if it started failing after it was loaded, for
 * tests/lan_fakesodium_test.c (a test program: never part of libkite).
 * Every function forwards to the real libsodium.so.23, so the loader's
 * known-answer test passes; once the test sets flaky_sodium_failing,
 * crypto_generichash_final still writes the right digest but returns -1.
 * A tag computed then must match nothing, even one equal to those bytes. */
#include <dlfcn.h>
#include <stddef.h>
#include <stdlib.h>

int flaky_sodium_failing;

static void *real(const char *name)
{
	static void *lib;
	if (!lib && !(lib = dlopen("libsodium.so.23", RTLD_NOW | RTLD_LOCAL)))
		abort();
	void *fn = dlsym(lib, name);
	if (!fn)
		abort();
	return fn;
}

int sodium_init(void)
{
	return ((int (*)(void))real("sodium_init"))();
}

size_t crypto_generichash_statebytes(void)
{
	return ((size_t (*)(void))real("crypto_generichash_statebytes"))();
}

int crypto_generichash_init(void *state, const unsigned char *key, size_t key_len,
			    size_t out_len)
{
	return ((int (*)(void *, const unsigned char *, size_t, size_t))real(
		"crypto_generichash_init"))(state, key, key_len, out_len);
}

int crypto_generichash_update(void *state, const unsigned char *in, unsigned long long len)
{
	return ((int (*)(void *, const unsigned char *, unsigned long long))real(
		"crypto_generichash_update"))(state, in, len);
}

int crypto_generichash_final(void *state, unsigned char *out, size_t out_len)
{
	int rc = ((int (*)(void *, unsigned char *, size_t))real("crypto_generichash_final"))(
		state, out, out_len);
	return flaky_sodium_failing ? -1 : rc;
}

int crypto_verify_16(const unsigned char *x, const unsigned char *y)
{
	return ((int (*)(const unsigned char *, const unsigned char *))real("crypto_verify_16"))(x,
												 y);
}
