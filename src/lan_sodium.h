/* libsodium, loaded at run time for keyed LAN channels: libkite links
 * against libc alone, and only a handle given a key file needs the MAC
 * (docs/scopes.md). Loaded once per process, on first use. */
#ifndef KITE_LAN_SODIUM_H
#define KITE_LAN_SODIUM_H

#include <stddef.h>

/* The soname dlopen asks for: Debian's libsodium23 package ships it. */
#define KI_SODIUM_SONAME "libsodium.so.23"
#define KI_SODIUM_PACKAGE "libsodium23"

/* Room for a crypto_generichash_state (384 bytes in libsodium 1.0.18,
 * 64-byte aligned); ki_sodium refuses a library whose state is larger. */
#define KI_SODIUM_STATE_MAX 512
#define KI_SODIUM_STATE_ALIGN 64

/* The functions the tags need, resolved from the library. */
struct ki_sodium {
	size_t (*statebytes)(void);
	int (*init)(void *state, const unsigned char *key, size_t key_len, size_t out_len);
	int (*update)(void *state, const unsigned char *in, unsigned long long len);
	int (*final)(void *state, unsigned char *out, size_t out_len);
	int (*verify_16)(const unsigned char *x, const unsigned char *y);
};

/* The loaded library, or NULL if it could not be loaded, lacks a
 * function, fails sodium_init, or fails a known-answer test of its tags
 * (a wrong library under the soname: then why, if not NULL, says what
 * failed and which package to install). Thread-safe;
 * the first call loads, later ones return the same answer. */
const struct ki_sodium *ki_sodium(char *why, size_t why_len);

/* Tests only: the soname the first ki_sodium call will ask for, so that a
 * test sees a host without libsodium (ldconfig would find the real one
 * whatever LD_LIBRARY_PATH says). No effect after the first load. */
void ki_sodium_soname_for_test(const char *soname);

#endif
