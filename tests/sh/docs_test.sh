#!/bin/bash
# Man pages render without warnings and have the sections every page needs;
# kite(1) names every subcommand; each page names every option its command's
# --help shows; bash completion finds subcommands and options by itself.
. "$(dirname "$0")/lib.sh"
root=$(cd "$(dirname "$0")/../.." && pwd)
man=$root/docs/man

if command -v groff >/dev/null; then
	for page in "$man"/*.[1-8]; do
		out=$(LC_ALL=C.UTF-8 groff -man -Tutf8 -ww -z "$page" 2>&1)
		check "$(basename "$page") renders without warnings" [ -z "$out" ]
	done
else
	skip "man pages render" "groff not installed"
fi

for page in "$man"/kite*.1; do
	missing=""
	for s in NAME SYNOPSIS DESCRIPTION OPTIONS "EXIT STATUS" EXAMPLES "SEE ALSO"; do
		grep -q "^\.SH \"\?$s\"\?\$" "$page" || missing="$missing $s"
	done
	check "$(basename "$page") has every section${missing:+ (missing:$missing)}" [ -z "$missing" ]
done

commands=$("$KITE" --help | awk '/^Commands:/ { on = 1; next } on && /^  [a-z]/ { print $1 } on && !/^  / { on = 0 }')
check "kite --help lists commands" [ -n "$commands" ]
# Every description starts in one column, and every line fits 80 columns.
cols=$("$KITE" --help | awk '/^Commands:/ { on = 1; next } on && /^  [a-z]/ { match($0, /^  [a-z]+ +/); print RLENGTH } on && !/^  / { on = 0 }' | sort -u)
check "kite --help aligns every description (columns: $(echo $cols))" [ "$(echo "$cols" | wc -l)" = 1 ]
check "kite --help fits 80 columns" bash -c "! '$KITE' --help | awk 'length(\$0) > 80' | grep -q ."
for c in $(printf "%s\n" pub sub ports who lock fifo ping doctor statsd serve $commands | sort -u); do
	check "kite.1 describes '$c'" grep -q "^\.B $c\$" "$man/kite.1"
done
for code in 0 1 2 100 111; do
	check "kite.1 explains exit code $code" grep -q "^\.B $code\$" "$man/kite.1"
done

# Every long option of a command's --help is in its page (man escapes '-').
for c in $commands; do
	page="$man/kite-$c.1"
	if [ ! -f "$page" ]; then
		skip "kite-$c.1 names every option" "no page yet"
		continue
	fi
	text=$(sed 's/\\-/-/g' "$page")
	missing=""
	# (--help is every command's; kite(1) says so once.)
	for o in $("$KITE" "$c" --help | grep -oE -- '--[a-z][a-z0-9-]*' | grep -vx -- --help | sort -u); do
		grep -qF -- "$o" <<<"$text" || missing="$missing $o"
	done
	check "kite-$c.1 names every option${missing:+ (missing:$missing)}" [ -z "$missing" ]
done

# Completion, driven as bash drives it.
comp() {
	bash -c '
		kite="$1"; shift
		source "$0"
		COMP_WORDS=("$kite" "$@"); COMP_CWORD=$#; COMPREPLY=()
		_kite; printf "%s\n" "${COMPREPLY[@]}"' \
		"$root/completions/kite.bash" "$KITE" "$@"
}
check "completion: subcommands from kite --help" \
	[ "$(comp "" | grep -v '^--' | sort)" = "$(sort <<<"$commands")" ]
check "completion: prefix" [ "$(comp po)" = ports ]
out=$(comp ports --)
check "completion: kite ports -- offers --json and --udp" bash -c "grep -qx -- --json <<<'$out' && grep -qx -- --udp <<<'$out'"
out=$(comp who --k)
check "completion: kite who --k offers --kill" [ "$out" = "--kill" ]
out=$(comp lock --)
check "completion: kite lock -- offers --wait" bash -c "grep -qx -- --wait <<<'$out'"

# README's "Layout" section has a line for every folder of the tree (two
# levels, tracked files only) and names no folder that is gone.
layout=$(awk '/^## Layout/ { on = 1; next } on && /^## / { on = 0 } on && /^    [^ ]/ { print $1 }' "$root/README.md")
folders=$(cd "$root" && git ls-files 2>/dev/null | awk -F/ 'NF > 1 { print $1 "/" } NF > 2 { print $1 "/" $2 "/" }' | sort -u)
if [ -n "$folders" ]; then
	missing=$(comm -23 <(echo "$folders") <(sort -u <<<"$layout") | tr '\n' ' ')
	stale=$(comm -13 <(echo "$folders") <(sort -u <<<"$layout") | tr '\n' ' ')
	check "README Layout names every folder${missing:+ (missing: $missing)}" [ -z "$missing" ]
	check "README Layout names no folder that is gone${stale:+ (gone: $stale)}" [ -z "$stale" ]
else
	skip "README Layout names every folder" "not a git checkout"
fi
