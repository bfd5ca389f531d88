#!/bin/bash
# make install into a staging folder; build the example against the
# installed header, library and pkg-config file, and run it.
. "$(dirname "$0")/lib.sh"
need pkg-config:pkg-config
stage=$tmpdir/stage
if ! make -s install DESTDIR="$stage" PREFIX=/usr >"$tmpdir/install.log" 2>&1; then
	not_ok "make install" "$(tail -n 3 "$tmpdir/install.log" | tr '\n' ' ')"
	exit 0
fi
ok "make install into DESTDIR"
for f in usr/bin/kite usr/include/kite.h usr/include/kite/handoff.h usr/lib/libkite.a \
	usr/lib/libkite.so.0 usr/lib/pkgconfig/kite.pc usr/share/man/man1/kite-sub.1 \
	usr/share/man/man3/kite.3 usr/share/man/man3/kite_handoff_accept.3 \
	usr/share/bash-completion/completions/kite; do
	check "installs /$f" test -e "$stage/$f"
done
check "the installed kite runs" bash -c "'$stage/usr/bin/kite' --version | grep -q '^kite '"
flags=$(PKG_CONFIG_SYSROOT_DIR=$stage PKG_CONFIG_LIBDIR=$stage/usr/lib/pkgconfig pkg-config --cflags --libs kite)
check "pkg-config knows kite" test -n "$flags"
# shellcheck disable=SC2086
if cc examples/hello.c $flags -o "$tmpdir/hello" 2>"$tmpdir/cc.err"; then
	ok "examples/hello.c builds against the installed library"
	LD_LIBRARY_PATH=$stage/usr/lib "$tmpdir/hello" >"$tmpdir/hello.out" 2>&1
	check "the example receives its message, with the sender's pid" \
		grep -Eq "^greetings\.world seq=1 from pid [0-9]+: hello$" "$tmpdir/hello.out"
	check "the example links libkite.so dynamically" \
		bash -c "LD_LIBRARY_PATH='$stage/usr/lib' ldd '$tmpdir/hello' | grep -q 'libkite.so.0 => $stage'"
else
	not_ok "examples/hello.c builds against the installed library" "$(head -c 300 "$tmpdir/cc.err")"
fi

# A worker includes <kite/handoff.h> alone.
printf '#include <kite/handoff.h>\nint main(void){return kite_handoff_fd() == -ENOENT ? 0 : 1;}\n' >"$tmpdir/worker.c"
# shellcheck disable=SC2086
check "a hand-off worker builds against <kite/handoff.h> alone" \
	cc -include errno.h "$tmpdir/worker.c" $flags -o "$tmpdir/worker"

# uninstall removes everything install put down (empty folders may stay).
if make -s uninstall DESTDIR="$stage" PREFIX=/usr >"$tmpdir/uninstall.log" 2>&1; then
	left=$(find "$stage" -type f -o -type l)
	check "make uninstall leaves no file behind${left:+ (left: $(echo $left | head -c 200))}" test -z "$left"
else
	not_ok "make uninstall" "$(tail -n 3 "$tmpdir/uninstall.log" | tr '\n' ' ')"
fi
