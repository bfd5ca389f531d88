/* dlopen of libsodium for the LAN tags (lan_sodium.h). RTLD_LOCAL keeps
 * its symbols out of the program's namespace; the handle is never closed,
 * since tags are computed until the process ends. */
#include "lan_sodium.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

static pthread_once_t once = PTHREAD_ONCE_INIT;
static const char *soname = KI_SODIUM_SONAME;
static struct ki_sodium fns;
static int loaded;
static char failure[240];

static void *resolve(void *lib, const char *name, int *missing)
{
	void *f = dlsym(lib, name);
	if (!f && !*missing) {
		*missing = 1;
		snprintf(failure, sizeof failure, "%s has no %s", soname, name);
	}
	return f;
}

/* libsodium's keyed BLAKE2b-128 of the byte 0x03 under the 32-byte key
 * whose byte i is 13i + 1 (hashlib's answer, as in tests/lan_tag_test.c). */
static const unsigned char known_tag[16] = {
	0xc9, 0x94, 0x79, 0x99, 0x61, 0x5e, 0x41, 0xef,
	0x0f, 0x94, 0xfb, 0x41, 0xb4, 0x2f, 0xe1, 0x3e};

/* A library under the soname that is not libsodium, or a broken one, must
 * not become a check that accepts forged frames (a crypto_verify_16 that
 * says yes to anything, digests that are all zeros): it must give the
 * known tag and tell it from one a bit away. 0 if it does. */
static int known_answer(void)
{
	_Alignas(KI_SODIUM_STATE_ALIGN) unsigned char state[KI_SODIUM_STATE_MAX];
	unsigned char key[32], tag[16], near[16];
	const unsigned char data = 3;
	for (unsigned i = 0; i < sizeof key; i++)
		key[i] = (unsigned char)(13 * i + 1);
	if (fns.init(state, key, sizeof key, sizeof tag) || fns.update(state, &data, 1) ||
	    fns.final(state, tag, sizeof tag))
		return -1;
	memcpy(near, known_tag, sizeof near);
	near[15] ^= 1;
	return fns.verify_16(tag, known_tag) == 0 && fns.verify_16(near, known_tag) != 0 ? 0 : -1;
}

static void load(void)
{
	void *lib = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
	if (!lib) {
		const char *e = dlerror();
		snprintf(failure, sizeof failure, "%s", e ? e : soname);
		return;
	}
	int missing = 0;
	int (*sodium_init)(void) = (int (*)(void))resolve(lib, "sodium_init", &missing);
	fns.statebytes = (size_t(*)(void))resolve(lib, "crypto_generichash_statebytes", &missing);
	fns.init = (int (*)(void *, const unsigned char *, size_t, size_t))resolve(
		lib, "crypto_generichash_init", &missing);
	fns.update = (int (*)(void *, const unsigned char *, unsigned long long))resolve(
		lib, "crypto_generichash_update", &missing);
	fns.final = (int (*)(void *, unsigned char *, size_t))resolve(
		lib, "crypto_generichash_final", &missing);
	fns.verify_16 = (int (*)(const unsigned char *, const unsigned char *))resolve(
		lib, "crypto_verify_16", &missing);
	if (missing)
		return;
	/* sodium_init: 0 first time, 1 already initialised, -1 failure. */
	if (sodium_init() < 0) {
		snprintf(failure, sizeof failure, "sodium_init failed in %s", soname);
		return;
	}
	if (fns.statebytes() > KI_SODIUM_STATE_MAX) {
		snprintf(failure, sizeof failure, "%s: crypto_generichash_state of %zu bytes "
			 "(at most %d expected)", soname, fns.statebytes(), KI_SODIUM_STATE_MAX);
		return;
	}
	if (known_answer()) {
		snprintf(failure, sizeof failure, "%s: crypto_generichash or crypto_verify_16 "
			 "fails a known-answer test (not libsodium's keyed BLAKE2b?)", soname);
		return;
	}
	loaded = 1;
}

const struct ki_sodium *ki_sodium(char *why, size_t why_len)
{
	pthread_once(&once, load);
	if (loaded)
		return &fns;
	if (why && why_len)
		snprintf(why, why_len, "keyed LAN channels need libsodium at run time "
			 "(apt install %s): %s", KI_SODIUM_PACKAGE, failure);
	return NULL;
}

void ki_sodium_soname_for_test(const char *name)
{
	soname = name;
}
