/* The LAN tag (src/lan_key.c, computed by libsodium loaded at run time)
 * against hashlib's keyed BLAKE2b: digests computed with /usr/bin/python3
 * hashlib.blake2b(data, key=key, digest_size=16), data byte i = (7i + 3)
 * mod 256, key byte i = (13i + 1) mod 256, a 32-byte key as in a key
 * file; lengths around the 128-byte block edge, where a final-block
 * mistake shows. The same bytes the hand-written BLAKE2b of kite 0.x put
 * on the wire, so old and new hosts understand each other. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "lan_key.h"
#include "lan_sodium.h"

static const struct {
	size_t len;
	const char *hex;
} vectors[] = {
	{0, "61c8bdf0b53996b1d5d3ba14af8de408"},
	{1, "c9947999615e41ef0f94fb41b42fe13e"},
	{127, "4e1883ab8563af7b96be091d06ad62a8"},
	{128, "b1a1661bd58be9a02c8edb7caba5268f"},
	{129, "d860d58d9e561fb6b05b0effa735c601"},
	{1000, "18d3a055e687f8764552a9426aa03b98"},
};

static void hex(const uint8_t *b, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", b[i]);
}

static void fill(uint8_t *data, struct lan_keys *k)
{
	for (size_t i = 0; i < 1000; i++)
		data[i] = (uint8_t)(7 * i + 3);
	memset(k, 0, sizeof *k);
	k->n = 1;
	for (size_t i = 0; i < LAN_KEY_LEN; i++)
		k->key[0][i] = (uint8_t)(13 * i + 1);
}

/* The library's first use raced by 8 threads (handles opening keyed at
 * once): each gets the right tag, none a half-loaded table of functions.
 * (Runs first: nothing has loaded libsodium yet.) */
static void *tag_129(void *arg)
{
	uint8_t data[1000], tag[LAN_TAG_LEN];
	struct lan_keys k;
	char *got = arg;
	fill(data, &k);
	ki_lan_tag(&k, 0, data, 129, tag);
	hex(tag, LAN_TAG_LEN, got);
	return NULL;
}

static void test_first_use_raced(void **state)
{
	(void)state;
	pthread_t t[8];
	char got[8][33];
	for (int i = 0; i < 8; i++)
		assert_int_equal(pthread_create(&t[i], NULL, tag_129, got[i]), 0);
	for (int i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		assert_string_equal(got[i], vectors[4].hex);
	}
}

/* A process forked after the library loaded (a keyed handle's program
 * that forks workers) tags as its parent does. */
static void test_after_fork(void **state)
{
	(void)state;
	char got[33];
	tag_129(got);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char child[33];
		tag_129(child);
		_exit(strcmp(child, vectors[4].hex) != 0);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void test_libsodium_loads(void **state)
{
	(void)state;
	char why[300] = "";
	assert_non_null(ki_sodium(why, sizeof why));
	assert_string_equal(why, "");
}

static void test_keyed_vectors(void **state)
{
	(void)state;
	uint8_t data[1000], tag[LAN_TAG_LEN];
	struct lan_keys k;
	char got[33];
	fill(data, &k);
	for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
		ki_lan_tag(&k, 0, data, vectors[i].len, tag);
		hex(tag, LAN_TAG_LEN, got);
		assert_string_equal(got, vectors[i].hex);
	}
}

/* Key 1 of two (a rotation): the same digests. */
static void test_second_key(void **state)
{
	(void)state;
	uint8_t data[1000], tag[LAN_TAG_LEN];
	struct lan_keys k;
	char got[33];
	fill(data, &k);
	memcpy(k.key[1], k.key[0], LAN_KEY_LEN);
	memset(k.key[0], 0xee, LAN_KEY_LEN);
	k.n = 2;
	ki_lan_tag(&k, 1, data, 129, tag);
	hex(tag, LAN_TAG_LEN, got);
	assert_string_equal(got, vectors[4].hex);
}

/* Accepted under either key; any one flipped bit of the tag, of the data
 * or of the key refused. */
static void test_tag_ok(void **state)
{
	(void)state;
	uint8_t data[1000], tag[LAN_TAG_LEN];
	struct lan_keys k;
	fill(data, &k);
	ki_lan_tag(&k, 0, data, 200, tag);
	assert_true(ki_lan_tag_ok(&k, data, 200, tag));
	for (size_t bit = 0; bit < 8 * LAN_TAG_LEN; bit++) {
		tag[bit / 8] ^= (uint8_t)(1u << bit % 8);
		assert_false(ki_lan_tag_ok(&k, data, 200, tag));
		tag[bit / 8] ^= (uint8_t)(1u << bit % 8);
	}
	data[199] ^= 1;
	assert_false(ki_lan_tag_ok(&k, data, 200, tag));
	data[199] ^= 1;
	struct lan_keys rotated = k;
	rotated.n = 2;
	memset(rotated.key[0], 0x55, LAN_KEY_LEN);
	memcpy(rotated.key[1], k.key[0], LAN_KEY_LEN);
	assert_true(ki_lan_tag_ok(&rotated, data, 200, tag));
	rotated.n = 1;
	assert_false(ki_lan_tag_ok(&rotated, data, 200, tag));
	k.key[0][31] ^= 0x80;
	assert_false(ki_lan_tag_ok(&k, data, 200, tag));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_first_use_raced),
		cmocka_unit_test(test_after_fork),
		cmocka_unit_test(test_libsodium_loads),
		cmocka_unit_test(test_keyed_vectors),
		cmocka_unit_test(test_second_key),
		cmocka_unit_test(test_tag_ok),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
