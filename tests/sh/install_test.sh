#!/bin/bash
# make install into a staging folder; build the example against the
# installed header, library and pkg-config file, and run it.
. "$(dirname "$0")/lib.sh"
stage=$tmpdir/stage
if ! make -s install DESTDIR="$stage" PREFIX=/usr >"$tmpdir/install.log" 2>&1; then
	not_ok "make install" "$(tail -n 3 "$tmpdir/install.log" | tr '\n' ' ')"
	exit 0
fi
ok "make install into DESTDIR"
for f in usr/bin/kite usr/include/kite.h usr/lib/libkite.a usr/lib/libkite.so.0 \
	usr/lib/pkgconfig/kite.pc usr/share/man/man1/kite-sub.1 usr/share/man/man3/kite.3; do
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
