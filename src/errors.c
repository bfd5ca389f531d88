/* kite_strerror: one message for every code the library returns. */
#include <errno.h>
#include <string.h>

#include "kite.h"

const char *kite_strerror(int code)
{
	switch (code) {
	case 0: return "success";
	case KITE_EBADNAME:
		return "bad channel name or pattern (1-32 dot-separated tokens of "
		       "[A-Za-z0-9_-], at most 200 bytes; '*' and a final '>' in "
		       "patterns only)";
	case KITE_ETOOBIG: return "message larger than KITE_MSG_MAX (4 GiB - 1)";
	case -ETIMEDOUT: return "timed out: nothing arrived";
	case -EAGAIN: return "nothing ready yet";
	case KITE_ENOTSUB: return "not subscribed to that pattern";
	case KITE_ENOCLAIM:
		return "no open claim on that channel (kite_claim first; a claim is "
		       "committed or aborted once)";
	case KITE_ENOSODIUM:
		return "keyed LAN channels need libsodium at run time: apt install libsodium23";
	case -EBUSY:
		return "a claim is open on that channel: kite_commit or kite_abort it first";
	case -EMSGSIZE:
		return "too large to claim: kite_claim takes up to a quarter of the ring's "
		       "pool (2 MiB with default rings); kite_publish sends larger messages";
	}
	if (code < 0 && code > -4096)
		return strerror(-code);
	return "unknown kite error";
}
