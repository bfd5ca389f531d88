/* Loading the LAN keys and tagging frames with them. The file is a
 * secret: refused unless only its owner may read or write it. */
#include "lan_key.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hex_digit.h"
#include "kite.h"
#include "lan_sodium.h"

/* Two lines and their newlines, and room to see that there is more. */
#define KEY_FILE_MAX (LAN_KEYS_MAX * (2 * LAN_KEY_LEN + 1) + 1)

/* text[0..n): 1 or 2 lines of exactly 64 hex digits, each ended by a
 * newline (the last one's may be missing). */
static int parse_keys(const char *text, size_t n, struct lan_keys *out)
{
	size_t at = 0;
	out->n = 0;
	while (at < n) {
		if (out->n == LAN_KEYS_MAX || n - at < 2 * LAN_KEY_LEN)
			return -EINVAL;
		for (size_t i = 0; i < LAN_KEY_LEN; i++) {
			int hi = ki_hex_digit(text[at + 2 * i]), lo = ki_hex_digit(text[at + 2 * i + 1]);
			if (hi < 0 || lo < 0)
				return -EINVAL;
			out->key[out->n][i] = (uint8_t)(hi << 4 | lo);
		}
		at += 2 * LAN_KEY_LEN;
		if (at < n && text[at++] != '\n')
			return -EINVAL;
		out->n++;
	}
	return out->n ? 0 : -EINVAL;
}

int ki_lan_keys_load(const char *path, struct lan_keys *out, char *why, size_t why_len)
{
	memset(out, 0, sizeof *out);
	/* O_NONBLOCK: a FIFO (or a device) named as the key must be refused
	 * below as not a regular file, not hang kite_open until some writer
	 * opens it. (It changes nothing for a regular file.) */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		int e = errno;
		snprintf(why, why_len, "key file %s: %s", path, strerror(e));
		return -e;
	}
	struct stat st;
	char text[KEY_FILE_MAX];
	ssize_t n = -1;
	int rc = 0;
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		snprintf(why, why_len, "key file %s: %s", path, strerror(-rc));
	} else if (!S_ISREG(st.st_mode)) {
		rc = -EINVAL;
		snprintf(why, why_len, "key file %s: not a regular file", path);
	} else if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		rc = -EACCES;
		snprintf(why, why_len, "key file %s has mode %04o: group or others may access it "
			 "(chmod 600 it)", path, (unsigned)(st.st_mode & 07777));
	} else if (st.st_uid != geteuid() && st.st_uid != 0) {
		/* As ssh asks of its keys: whoever owns the file can rewrite
		 * it, and so choose the key a root process trusts. */
		rc = -EACCES;
		snprintf(why, why_len, "key file %s is owned by uid %u: only uid %u (this "
			 "process) or root may own it (chown it)", path, (unsigned)st.st_uid,
			 (unsigned)geteuid());
	} else if ((n = read(fd, text, sizeof text)) < 0) {
		rc = -errno;
		snprintf(why, why_len, "key file %s: %s", path, strerror(-rc));
	} else if (parse_keys(text, (size_t)n, out)) {
		rc = -EINVAL;
		snprintf(why, why_len, "key file %s: expected one or two lines of 64 hex digits "
			 "(a 32-byte key each)", path);
	}
	memset(text, 0, sizeof text);
	close(fd);
	/* The tags are libsodium's: a key without it would be a handle that
	 * can neither sign nor check a frame. */
	if (!rc && !ki_sodium(why, why_len))
		rc = KITE_ENOSODIUM;
	if (rc)
		memset(out, 0, sizeof *out);
	return rc;
}

/* Keyed BLAKE2b-128 (RFC 7693) of buf[0..len) under key i into tag:
 * libsodium's generichash with a 32-byte key and a 16-byte output. 0, or
 * -1 if there is no libsodium (no key file loads then, so no keyed handle
 * exists) or it failed. */
static int compute(const struct ki_sodium *na, const struct lan_keys *k, unsigned i,
		   const uint8_t *buf, size_t len, uint8_t tag[LAN_TAG_LEN])
{
	_Alignas(KI_SODIUM_STATE_ALIGN) unsigned char state[KI_SODIUM_STATE_MAX];
	if (!na || na->init(state, k->key[i], LAN_KEY_LEN, LAN_TAG_LEN) ||
	    na->update(state, buf, len) || na->final(state, tag, LAN_TAG_LEN))
		return -1;
	return 0;
}

/* A tag that could not be computed is zeros, which ki_lan_tag_ok never
 * accepts. */
void ki_lan_tag(const struct lan_keys *k, unsigned i, const uint8_t *buf, size_t len,
		uint8_t tag[LAN_TAG_LEN])
{
	if (compute(ki_sodium(NULL, 0), k, i, buf, len, tag))
		memset(tag, 0, LAN_TAG_LEN);
}

int ki_lan_tag_ok(const struct lan_keys *k, const uint8_t *buf, size_t len,
		  const uint8_t tag[LAN_TAG_LEN])
{
	const struct ki_sodium *na = ki_sodium(NULL, 0);
	int ok = 0;
	for (unsigned i = 0; na && i < k->n; i++) {
		uint8_t want[LAN_TAG_LEN];
		/* A tag not computed matches nothing: comparing the zeros
		 * ki_lan_tag leaves would accept a frame tagged with zeros. */
		int made = compute(na, k, i, buf, len, want) == 0;
		/* crypto_verify_16 takes the same time wherever bytes differ;
		 * every key is tried, so the time does not say which matched. */
		ok |= made & (na->verify_16(want, tag) == 0);
	}
	return ok;
}
