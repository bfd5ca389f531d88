#!/bin/bash
# Run every test and end with one line: "N passed, N failed, N skipped".
#   tests/run.sh BUILD_DIR...   C tests and fuzz replays run once per build
#                               folder; shell tests (tests/sh/*.sh) run once,
#                               against the first folder's kite binary.
# KITE_SKIP_C_TESTS=REASON (make check without cmocka) reports each C test
# as skipped with REASON instead of running it.
# Every test speaks TAP ("ok", "not ok", "# SKIP"); a program that crashes or
# outlives its time limit counts as one more failure.
set -u
cd "$(dirname "$0")/.."
builds=("$@")
[ ${#builds[@]} -gt 0 ] || builds=(build)
pass=0 fail=0 skip=0
failed_names=()
TEST_TIMEOUT=${TEST_TIMEOUT:-300}

tally() { # suite, command...
	local suite=$1; shift
	local out rc
	out=$(CMOCKA_MESSAGE_OUTPUT=TAP timeout -k 10 "$TEST_TIMEOUT" "$@" 2>&1)
	rc=$?
	local notok=0 line
	while IFS= read -r line; do
		case "$line" in
		# cmocka's TAP marks a skipped test "not ok N # SKIP"
		"ok"*"# SKIP"*|"ok"*"# skip"*|"not ok"*"# SKIP"*|"not ok"*"# skip"*)
			skip=$((skip + 1)); echo "  $suite: $line";;
		"not ok"*) fail=$((fail + 1)); notok=$((notok + 1))
			failed_names+=("$suite: $line"); echo "  $suite: $line";;
		"ok"*) pass=$((pass + 1)); echo "  $suite: $line";;
		"#"*) echo "  $suite: $line";;
		esac
	done <<<"$out"
	if [ $rc -ne 0 ] && [ $notok -eq 0 ]; then
		fail=$((fail + 1))
		failed_names+=("$suite: exited $rc")
		echo "  $suite: not ok - exited with status $rc$([ $rc -eq 124 ] && echo ' (timed out)')"
		echo "$out" | tail -n 20 | sed 's/^/    | /'
	elif [ $notok -ne 0 ]; then
		echo "$out" | grep -v '^ok' | tail -n 40 | sed 's/^/    | /'
	fi
}

for b in "${builds[@]}"; do
	echo "== $b"
	if [ -n "${KITE_SKIP_C_TESTS:-}" ]; then
		for t in tests/*_test.c; do
			tally "$b/$(basename "$t" .c)" echo "ok - $(basename "$t" .c) # SKIP $KITE_SKIP_C_TESTS"
		done
	else
		for t in "$b"/tests/*_test; do
			[ -x "$t" ] && tally "$b/$(basename "$t")" "$t"
		done
	fi
	for f in "$b"/fuzz/*-replay; do
		[ -x "$f" ] && tally "$b/$(basename "$f")" "$f"
	done
done

echo "== shell tests (kite = ${builds[0]}/kite)"
export KITE="$PWD/${builds[0]}/kite"
for s in tests/sh/*_test.sh; do
	[ -f "$s" ] && tally "$(basename "$s")" bash "$s"
done

if [ ${#failed_names[@]} -gt 0 ]; then
	echo "== failures"
	printf '  %s\n' "${failed_names[@]}"
fi
echo "$pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
