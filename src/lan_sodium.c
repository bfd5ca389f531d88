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
