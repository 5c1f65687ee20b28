#!/bin/sh
# smoke.sh BUILD_DIR — 30-second smoke run of hftp-bench against hftpd.
#
# Starts BUILD_DIR/hftpd on 127.0.0.1 (a free port, 2 workers) serving a
# temporary directory that holds a 4 MiB random file, then runs hftp-bench
# three times for 10 s each: get_metadata, base64 get_slice and raw get_slice,
# the two slice runs decoding and comparing 1 payload in 64 with the file.
# A run passes when it completed at least one request with 0 errors and
# 0 timeouts (and, for slices, verified at least one payload).  The server is
# stopped by its pid on exit.  Then bench/bare-compare --smoke: hftpd and the
# bare answerer, 1 s each per figure, so neither rots.  The last line is
# "N passed, M failed".
set -u

BUILD=${1:-build}
HFTPD=$BUILD/hftpd
BENCH=$BUILD/hftp-bench
SECS=${SMOKE_SECONDS:-10}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

for bin in "$HFTPD" "$BENCH"; do
    if [ ! -x "$bin" ]; then
        echo "smoke: $bin is missing (run make first)"
        echo "0 passed, 1 failed"
        exit 1
    fi
done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/hftp-smoke.XXXXXX") || exit 1
SERVER_PID=
cleanup() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null
        i=0
        while kill -0 "$SERVER_PID" 2>/dev/null && [ $i -lt 50 ]; do
            sleep 0.1
            i=$((i + 1))
        done
        kill -9 "$SERVER_PID" 2>/dev/null
        wait "$SERVER_PID" 2>/dev/null
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# The server runs as the user running this script (-u), like make run.
mkdir "$TMP/data"
head -c 4194304 /dev/urandom > "$TMP/data/smoke.bin"

PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$HFTPD" -f -d "$TMP/data" -p "$PORT" -a 127.0.0.1 -w 2 -u "$(id -un)" > "$TMP/hftpd.log" 2>&1 &
SERVER_PID=$!

# Wait (at most 10 s) for the port to accept connections.
if ! "$PY" - "$PORT" <<'EOF'
import socket, sys, time
deadline = time.time() + 10
while time.time() < deadline:
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.05)
sys.exit(1)
EOF
then
    echo "smoke: hftpd did not listen on 127.0.0.1:$PORT"
    cat "$TMP/hftpd.log"
    echo "0 passed, 1 failed"
    exit 1
fi

passed=0
failed=0

# field NAME JSON: the numeric value of "NAME" in hftp-bench's JSON line.
field() {
    printf '%s\n' "$2" | sed -n "s/.*\"$1\": \([0-9.]*\).*/\1/p"
}

run() {
    name=$1
    need_verified=$2
    shift 2
    out=$("$BENCH" --proto hftp --host 127.0.0.1 --port "$PORT" --conns 16 --threads 2 \
          --duration "$SECS" --file smoke.bin --file-path "$TMP/data/smoke.bin" --json "$@" \
          2> "$TMP/bench.err")
    rc=$?
    req=$(field requests "$out")
    err=$(field errors "$out")
    tmo=$(field timeouts "$out")
    ver=$(field verified "$out")
    rps=$(field rps "$out")
    if [ $rc -eq 0 ] && [ -n "$req" ] && [ "$req" -gt 0 ] && [ "$err" = 0 ] && [ "$tmo" = 0 ] &&
       { [ "$need_verified" = 0 ] || [ "${ver:-0}" -gt 0 ]; }; then
        echo "ok   $name: $req requests ($rps/s), 0 errors, 0 timeouts, ${ver:-0} payloads verified"
        passed=$((passed + 1))
    else
        echo "FAIL $name: exit $rc, requests=${req:-?} errors=${err:-?} timeouts=${tmo:-?} verified=${ver:-?}"
        cat "$TMP/bench.err"
        failed=$((failed + 1))
    fi
}

run metadata 0 --workload metadata
run slice 1 --workload slice --size 65536
run raw 1 --workload raw --size 65536

# The bare answerer and bench/bare-compare (servers of their own, stopped by it).
if out=$("$PY" "$(dirname "$0")/bare-compare" --smoke --no-make --build "$BUILD" 2>&1); then
    echo "ok   bare-compare: $(printf '%s\n' "$out" | grep -c '^| tiny\|^| the same') figures measured"
    passed=$((passed + 1))
else
    echo "FAIL bare-compare"
    printf '%s\n' "$out"
    failed=$((failed + 1))
fi

if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "FAIL hftpd exited during the runs"
    cat "$TMP/hftpd.log"
    failed=$((failed + 1))
fi

echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
