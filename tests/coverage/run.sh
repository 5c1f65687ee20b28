#!/bin/sh
# make coverage: line coverage of master/, worker/ and shared/ (gcc
# --coverage, gcovr), first from the unit tests alone, then from every
# suite: the unit tests and the integration suite run against the coverage
# build of hftpd.  Ends with exactly two lines:
#     unit: NN.N% of lines
#     all: NN.N% of lines
# The per-file tables are left in build/coverage/unit.txt and all.txt.
#
# Everything is built into build/coverage, so the normal builds are
# untouched.  Every process of a server writes its counts into the same
# .gcda files (libgcov locks them while it merges): the master at exit,
# each worker at its _exit (tests/coverage/dump.c).  The integration
# suite's servers write under $GCOV_PREFIX, a folder in /tmp that every
# user can write, with every .gcda made in advance writable by all, so the
# workers of the tests that drop root to nobody are counted too, even from
# a clone in a private folder.  Chrooted workers cannot reach it and are
# not counted; nor are the children of unit tests that drop root.
#
# COVERAGE_TESTS="test_a.py test_b.py" runs only those integration files
# (for trying the target out; the figures are then not the suite's).
set -eu
MAKE=${MAKE:-make}
CC=gcc
PYTHON=${PYTHON:-python3}
B=build/coverage
ROOT=$(pwd -P)
TESTS=${COVERAGE_TESTS:-.}

command -v gcovr >/dev/null || { echo "gcovr missing: make deps" >&2; exit 1; }
command -v gcov >/dev/null || { echo "gcov missing: make deps" >&2; exit 1; }

# The figure for master/ worker/ shared/ together, from the .gcda files
# under $B/obj; the table for each file goes to $B/$1.txt, worst first.
summary() {
	out=$(gcovr -r "$ROOT" --object-directory "$B/obj" \
	    -f 'master/' -f 'worker/' -f 'shared/' \
	    --sort-percentage -o "$B/$1.txt" --print-summary)
	echo "$out" | awk -v name="$1" '$1 == "lines:" {
	    gsub(/[()]/, ""); printf "%s: %.1f%% of lines\n", name, 100 * $3 / $6 }' \
	    > "$B/$1.line"
	[ -s "$B/$1.line" ] || { echo "gcovr gave no line figure: $out" >&2; exit 1; }
}

mkdir -p "$B"
# dump.o is no prerequisite of the Makefile's: a new one relinks by hand
if [ ! -f "$B/dump.o" ] || [ tests/coverage/dump.c -nt "$B/dump.o" ]; then
	$CC -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -O0 -DCOVERAGE_OBJ_DIR="\"$ROOT/$B/obj\"" \
	    -c tests/coverage/dump.c -o "$B/dump.o"
	rm -f "$B/hftpd" "$B"/tests/test_*
fi
set -- CC=gcc BUILD="$B" OPT="-O0 -g --coverage" LDFLAGS="--coverage -Wl,--wrap=_exit $ROOT/$B/dump.o"
$MAKE "$@" "$B/hftpd"

find "$B" -name '*.gcda' -delete
$MAKE "$@" unit
summary unit

prefix=$(mktemp -d /tmp/hftpd-coverage.XXXXXX)
trap 'rm -rf "$prefix"' EXIT INT TERM
# The unit tests' counts go along; hftpd -V makes the .gcda files they did
# not touch (main.c's, ...); then every user may write each of them.
(cd "$ROOT" && find "$B" -name '*.gcda') | while read -r f; do
	mkdir -p "$prefix$ROOT/${f%/*}"
	cp "$f" "$prefix$ROOT/$f"
done
GCOV_PREFIX=$prefix "$B/hftpd" -V >/dev/null
find "$prefix" -type d -exec chmod a+rwx {} +
find "$prefix" -name '*.gcda' -exec chmod a+rw {} +

mkdir -p build/pytest-tmp
status=0
(cd tests/integration && GCOV_PREFIX=$prefix HFTPD_BIN="$ROOT/$B/hftpd" \
    $PYTHON -m pytest -q -p no:cacheprovider --basetemp="$ROOT/build/pytest-tmp/coverage" $TESTS) ||
    status=$?

(cd "$prefix$ROOT" && find "$B" -name '*.gcda') | while read -r f; do
	cp "$prefix$ROOT/$f" "$f"
done
summary all
[ "$status" -eq 0 ] || echo "coverage: the integration suite failed (pytest exit $status)" >&2
cat "$B/unit.line" "$B/all.line"
exit "$status"
