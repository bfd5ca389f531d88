#!/bin/bash
# The Python binding (python/): its pytest suite (python/tests), one TAP
# line per pytest test. Needs Debian's python3-pytest (tests/deps.txt); the
# package loads the library from the build tree (build/libkite.so.0).
. "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/../.." || exit 1
py=/usr/bin/python3
if ! $py -c 'import pytest' 2>/dev/null; then
	not_ok "python: pytest importable by $py" "install python3-pytest (make deps)"
	exit 0
fi
if [ ! -e build/libkite.so.0 ]; then
	not_ok "python: build/libkite.so.0 built" "run make first"
	exit 0
fi
export KITE_TAP=$tmpdir/tap PYTHONDONTWRITEBYTECODE=1
: >"$KITE_TAP"
# -p no:cacheprovider: nothing written into the tree.
$py -m pytest -q -p no:cacheprovider -rfE python/tests >"$tmpdir/log" 2>&1
rc=$?
cat "$KITE_TAP"
if [ $rc -ne 0 ]; then
	grep -q '^not ok' "$KITE_TAP" || not_ok "python: pytest exited $rc"
	tail -n 60 "$tmpdir/log" | sed 's/^/# /'
fi
grep -q '^ok' "$KITE_TAP" || not_ok "python: pytest ran no test"
