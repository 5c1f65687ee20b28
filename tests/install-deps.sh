#!/bin/sh
# Installs what the test suites need and is missing: cmocka, pytest (for the
# system python3), valgrind, clang and its sanitizer / libFuzzer runtimes,
# haproxy and iproute2 (the namespace suite), openssl (test certificates),
# the Debian packaging tools (dpkg-dev, debhelper, dh-python, lintian),
# mandoc, systemd's tools and logrotate, gcovr (make coverage), strace (the
# metadata cache's system-call count), prometheus (promtool, and a real
# Prometheus scraping /metrics), chromium (the status page in a headless
# browser), gnuplot (bench/plot-metrics).  Debian
# packages only; runs apt-get
# as root, or through sudo when not root.  Safe to run again: it installs
# nothing present, and needs no privilege when nothing is missing.
set -eu
missing=""
# A command, also where a user's PATH does not look (/usr/sbin, /sbin).
have() {
	command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ]
}
[ -f /usr/include/cmocka.h ] || missing="$missing libcmocka-dev"
/usr/bin/python3 -c 'import pytest' 2>/dev/null || missing="$missing python3-pytest"
# The client's packaging test (pip install --no-build-isolation in a venv)
# and its type check; curl for bench/client-compare.
/usr/bin/python3 -c 'import ensurepip' 2>/dev/null || missing="$missing python3-venv"
/usr/bin/python3 -c 'import setuptools' 2>/dev/null || missing="$missing python3-setuptools"
/usr/bin/python3 -c 'import wheel' 2>/dev/null || missing="$missing python3-wheel"
/usr/bin/python3 -c 'import pip' 2>/dev/null || missing="$missing python3-pip"
/usr/bin/python3 -c 'import mypy' 2>/dev/null || missing="$missing python3-mypy"
have curl || missing="$missing curl"
# The namespace suite (test_haproxy_netns.py): ip netns and a real HAProxy.
have ip || missing="$missing iproute2"
have haproxy || missing="$missing haproxy"
# Certificates for the TLS tests (test_client_tls.py, the namespace suite).
have openssl || missing="$missing openssl"
# Operations: the Debian package test, man page lint, the units' checks and
# socket activation, the logrotate file's test.
have dpkg-buildpackage || missing="$missing dpkg-dev"
have dh || missing="$missing debhelper"
have dh_python3 || missing="$missing dh-python"
have unshare || missing="$missing util-linux"
have lintian || missing="$missing lintian"
have mandoc || missing="$missing mandoc"
have systemd-socket-activate || missing="$missing systemd"
have logrotate || missing="$missing logrotate"
# promtool (Debian's prometheus package) checks the status listener's /metrics.
have promtool || missing="$missing prometheus"
have git || missing="$missing git"
have valgrind || missing="$missing valgrind"
# test_metadata_cache.py counts a worker's stat and open calls.
have strace || missing="$missing strace"
# The status page in a real browser, headless (test_status_page.py); the
# prometheus package above also runs test_prometheus.py's real scrape.
have chromium || missing="$missing chromium"
# bench/plot-metrics draws with gnuplot (test_plot_metrics.py).
have gnuplot || missing="$missing gnuplot-nox"
# make coverage: gcov comes with gcc, gcovr sums it up.
have gcovr || missing="$missing gcovr"
have cc || missing="$missing gcc"
have make || missing="$missing make"
# libFuzzer and the sanitizer runtimes are only a Recommends of clang.
fuzz_probe='int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return d[0] & (int)n; }'
if ! have clang; then
	missing="$missing clang libclang-rt-dev"
elif ! echo "$fuzz_probe" | clang -x c -fsanitize=fuzzer,address,undefined \
    -o /dev/null - >/dev/null 2>&1; then
	missing="$missing libclang-rt-dev"
fi
[ -z "$missing" ] && { echo "test dependencies present"; exit 0; }
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	if ! command -v sudo >/dev/null 2>&1 || ! sudo -n true 2>/dev/null; then
		echo "missing test dependencies:$missing" >&2
		echo "not root, and sudo cannot run apt-get without a password: as root, run" >&2
		echo "  apt-get install --no-install-recommends$missing" >&2
		exit 1
	fi
	SUDO="sudo -n"
fi
echo "installing:$missing"
export DEBIAN_FRONTEND=noninteractive
# Waits for another apt/dpkg run (an unattended upgrade, say) instead of failing.
APT_WAIT="-o DPkg::Lock::Timeout=300"
$SUDO apt-get $APT_WAIT update -qq < /dev/null
$SUDO apt-get $APT_WAIT install -y -qq --no-install-recommends $missing < /dev/null
