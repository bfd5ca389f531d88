"""KiteError: every failure libkite reports, as a Python exception."""
from __future__ import annotations

from typing import Optional

from . import _lib

EBADNAME = _lib.EBADNAME  #: channel name or pattern is malformed
ETOOBIG = _lib.ETOOBIG    #: payload larger than 4 GiB - 1
ENOTSUB = _lib.ENOTSUB    #: unsubscribe of a pattern never subscribed
ENOSODIUM = _lib.ENOSODIUM  #: a LAN key file given, libsodium not installed (or not working)


class KiteError(OSError):
    """A libkite call failed.

    ``code`` is the library's negative code (``-errno`` or one of
    ``kite.EBADNAME``, ``kite.ETOOBIG``, ``kite.ENOTSUB``, ``kite.ENOSODIUM``);
    ``strerror`` is ``kite_strerror(code)``; ``errno`` is the positive errno
    value where the code is one, else None; ``what`` names the call or the
    argument.
    Being an OSError, it is caught by ``except OSError`` too.
    """

    code: int
    what: Optional[str]

    def __init__(self, code: int, what: Optional[str] = None) -> None:
        text = _lib.strerror(code)
        if -1000 < code < 0:  # kite's own codes start at -1000
            super().__init__(-code, text)
        else:
            super().__init__(text)
            self.strerror = text
        self.code = code
        self.what = what

    def __str__(self) -> str:
        where = f"{self.what}: " if self.what else ""
        tag = f"[Errno {self.errno}] " if self.errno is not None else f"[kite {self.code}] "
        return f"{tag}{where}{self.strerror}"

    def __reduce__(self):  # pickles as KiteError(code, what)
        return (type(self), (self.code, self.what))


def check(rc: int, what: Optional[str] = None) -> int:
    """rc if it is not negative, else raise KiteError(rc)."""
    if rc < 0:
        raise KiteError(rc, what)
    return rc
