/* Keyed BLAKE2b (src/lan_blake2b.c) against hashlib's: digests computed
 * with /usr/bin/python3 hashlib.blake2b(data, key=key, digest_size=16),
 * data byte i = (7i + 3) mod 256, key byte i = (13i + 1) mod 256; lengths
 * around the 128-byte block edge, where a final-block mistake shows. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "lan_blake2b.h"

static const struct {
	size_t key_len, len;
	const char *hex;
} vectors[] = {
	{1, 0, "fa0f524ee9146b7f3b4f904994c95a3c"},
	{1, 1, "a705bed1c6c8ef76ab4eb4dfc5cf22ad"},
	{1, 127, "3d3bdca7c1efc8734791e7ad3da1d0dc"},
	{1, 128, "729cbe37f44f5b7826e4da2fbedb6508"},
	{1, 129, "7918d695a5907e2eee232fed0815b549"},
	{1, 1000, "253cc0a85b9e5d979a2cdc3050b03ca4"},
	{32, 0, "61c8bdf0b53996b1d5d3ba14af8de408"},
	{32, 1, "c9947999615e41ef0f94fb41b42fe13e"},
	{32, 127, "4e1883ab8563af7b96be091d06ad62a8"},
	{32, 128, "b1a1661bd58be9a02c8edb7caba5268f"},
	{32, 129, "d860d58d9e561fb6b05b0effa735c601"},
	{32, 1000, "18d3a055e687f8764552a9426aa03b98"},
	{64, 0, "ca84527796bafa12edfaf924195309ce"},
	{64, 1, "555e2526087427e35246bfe5edda73ef"},
	{64, 127, "d75614d4c29be917a74192934d500c79"},
	{64, 128, "c814599612b45ba69a330f1f1b19b791"},
	{64, 129, "ebce44f4cbed06840900b9e9ba6c847b"},
	{64, 1000, "8c2601b197df90a1ba5df91c0c0d9cee"},
};

static void hex(const uint8_t *b, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", b[i]);
}

static void fill(uint8_t *data, uint8_t *key)
{
	for (size_t i = 0; i < 1000; i++)
		data[i] = (uint8_t)(7 * i + 3);
	for (size_t i = 0; i < 64; i++)
		key[i] = (uint8_t)(13 * i + 1);
}

static void test_keyed_vectors(void **state)
{
	(void)state;
	uint8_t data[1000], key[64], tag[16];
	char got[33];
	fill(data, key);
	for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
		assert_int_equal(ki_blake2b(tag, 16, key, vectors[i].key_len, data, vectors[i].len), 0);
		hex(tag, 16, got);
		assert_string_equal(got, vectors[i].hex);
	}
}

/* The same digests fed in pieces of every awkward size: the buffering of
 * a full last block is where incremental hashing goes wrong. */
static void test_incremental_matches(void **state)
{
	(void)state;
	uint8_t data[1000], key[64], tag[16];
	char got[33];
	fill(data, key);
	for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++)
		for (size_t piece = 1; piece <= 129; piece += 64) {
			struct blake2b s;
			assert_int_equal(ki_blake2b_init(&s, 16, key, vectors[i].key_len), 0);
			for (size_t at = 0; at < vectors[i].len; at += piece)
				ki_blake2b_update(&s, data + at,
						  vectors[i].len - at < piece ? vectors[i].len - at : piece);
			ki_blake2b_final(&s, tag);
			hex(tag, 16, got);
			assert_string_equal(got, vectors[i].hex);
		}
}

/* Unkeyed, full length: RFC 7693 appendix A's "abc". */
static void test_rfc_abc(void **state)
{
	(void)state;
	uint8_t out[64];
	char got[129];
	assert_int_equal(ki_blake2b(out, 64, NULL, 0, "abc", 3), 0);
	hex(out, 64, got);
	assert_string_equal(got, "ba80a53f981c4d0d6a2797b69f12f6e94c212f14685ac4b74b12bb6fdbffa2d1"
				 "7d87c5392aab792dc252d5de4533cc9518d38aa8dbf1925ab92386edd4009923");
}

static void test_bad_parameters(void **state)
{
	(void)state;
	uint8_t out[64], key[65] = {0};
	assert_int_equal(ki_blake2b(out, 0, key, 1, "", 0), -EINVAL);
	assert_int_equal(ki_blake2b(out, 65, key, 1, "", 0), -EINVAL);
	assert_int_equal(ki_blake2b(out, 16, key, 65, "", 0), -EINVAL);
	assert_int_equal(ki_blake2b(out, 16, NULL, 8, "", 0), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keyed_vectors),
		cmocka_unit_test(test_incremental_matches),
		cmocka_unit_test(test_rfc_abc),
		cmocka_unit_test(test_bad_parameters),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
