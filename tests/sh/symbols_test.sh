#!/bin/bash
# libkite exports exactly its API: nm -D lists the functions that kite.h and
# kite/handoff.h declare with KITE_API, and nothing else; a program that
# defines the names libkite's internals once had links statically and
# dynamically and still gets libkite's own behaviour.
. "$(dirname "$0")/lib.sh"
need binutils:nm
build=$(dirname "$KITE")
so=$build/libkite.so.0
a=$build/libkite.a

declared=$(sed -n 's/^KITE_API [^(]*[ *]\(kite_[a-z_]*\)(.*/\1/p' include/kite.h include/kite/handoff.h | sort)
exported=$(nm -D --defined-only "$so" | awk '$2 == "T" || $2 == "D" || $2 == "B" || $2 == "R" {print $3}' |
	sed 's/@.*//' | sort)
check "kite.h and kite/handoff.h declare the API (at least 18 functions)" \
	test "$(echo "$declared" | wc -l)" -ge 18
if [ "$declared" = "$exported" ]; then
	ok "nm -D libkite.so.0 lists exactly the declared kite_* functions ($(echo "$exported" | wc -l))"
else
	not_ok "nm -D libkite.so.0 lists exactly the declared kite_* functions" \
		"$(diff <(echo "$declared") <(echo "$exported") | grep '^[<>]' | tr '\n' ' ')"
fi
check "every exported symbol carries the version node KITE_0.1" \
	bash -c "! nm -D --defined-only '$so' | awk '\$2 == \"T\"' | grep -v '@@KITE_0.1\$'"
check "the map file lists the same functions" \
	test "$(sed -n 's/^[[:space:]]*\(kite_[a-z_]*\);/\1/p' src/libkite.map | sort)" = "$declared"
internal=$(nm --defined-only "$a" 2>/dev/null | awk '$2 ~ /^[TDBR]$/ {print $3}' | grep -v '^kite_\|^ki_' | sort -u)
check "libkite.a defines nothing outside kite_* (API) and ki_* (internal)" test -z "$internal"

prog=tests/programs/shadow_internals.c
if cc -std=c11 -D_GNU_SOURCE -Iinclude "$prog" "$a" -pthread -o "$tmpdir/shadow_static" 2>"$tmpdir/cc1.err"; then
	ok "a program defining realtime_ns, ring_write, ... links with libkite.a"
	check "... and its messages carry the real clock, not its realtime_ns()" \
		"$tmpdir/shadow_static"
else
	not_ok "a program defining realtime_ns, ring_write, ... links with libkite.a" \
		"$(head -c 300 "$tmpdir/cc1.err")"
fi
if cc -std=c11 -D_GNU_SOURCE -Iinclude "$prog" -L"$build" -l:libkite.so.0 -pthread \
	-o "$tmpdir/shadow_shared" 2>"$tmpdir/cc2.err"; then
	check "linked with libkite.so, libkite still uses its own internals" \
		env LD_LIBRARY_PATH="$build" "$tmpdir/shadow_shared"
else
	not_ok "the same program links with libkite.so" "$(head -c 300 "$tmpdir/cc2.err")"
fi
check "libkite.so's own calls to its internals need no PLT entries (hidden)" \
	bash -c "! objdump -d '$so' | grep -q '<ki_[a-z_]*@plt>'"

# libkite and kite link against libc alone: libsodium, which computes the
# tags of keyed LAN channels, is dlopen'ed when a key file is given
# (src/lan_sodium.c), never a link-time dependency. (A sanitizer build
# also needs its runtimes.)
for bin in "$so" "$build/kite"; do
	needed=$(ldd "$bin" | awk '$1 !~ /^(linux-vdso|\/lib64\/ld-linux|libasan|libubsan|libstdc\+\+|libm\.|libgcc_s)/ {print $1}' |
		tr '\n' ' ')
	check "ldd $(basename "$bin"): libc alone ($needed)" [ "$needed" = "libc.so.6 " ]
done
check "libkite.so.0 names libsodium only as a soname to dlopen" \
	bash -c "strings '$so' | grep -qx 'libsodium.so.23' && ! readelf -d '$so' | grep -q 'NEEDED.*sodium'"
