# shellcheck shell=bash
# Sourced (after lib.sh) by the ops tools' tests: ports, who, lock.

# nobody_dir: a folder in $tmpdir that user nobody may write, holding a copy
# of hold_sockets.py (the checkout itself may be closed to nobody).
nobody_dir() {
	chmod 711 "$tmpdir"
	mkdir -p "$tmpdir/nb" && chmod 777 "$tmpdir/nb"
	cp "$(dirname "${BASH_SOURCE[0]}")/hold_sockets.py" "$tmpdir/nb/"
	chmod 755 "$tmpdir/nb/hold_sockets.py"
	echo "$tmpdir/nb"
}

# "${as_nobody[@]}" COMMAND...: run as user nobody, no groups (an array, not
# a function, so that spawn's $LAST_PID is the process itself).
as_nobody=(setpriv --reuid=nobody --regid=nogroup --clear-groups)

# can_nobody: we are root (to become nobody), user nobody exists and a
# python3 it may run is there; nobody_missing says which is lacking.
can_nobody() { is_root && id nobody >/dev/null 2>&1 && [ -x /usr/bin/python3 ]; }
nobody_missing() {
	if ! is_root; then echo "needs root to run a process as user nobody"
	else echo "no user nobody or no /usr/bin/python3"; fi
}
