/* kite_strerror: one message for every code the library returns. */
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
	case KITE_ETIMEOUT: return "timed out: nothing arrived";
	case KITE_EAGAIN: return "nothing ready yet";
	case KITE_EPROTO: return "a peer broke the kite protocol";
	case KITE_ENOTSUB: return "not subscribed to that pattern";
	case KITE_ERING: return "a ring failed validation (size, layout or seals)";
	}
	if (code < 0 && code > -4096)
		return strerror(-code);
	return "unknown kite error";
}
