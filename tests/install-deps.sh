#!/bin/sh
# Installs what the test suites need and is missing: cmocka, pytest (for the
# system python3), valgrind, clang and its sanitizer / libFuzzer runtimes,
# haproxy and iproute2 (the namespace suite), the Debian packaging tools
# (dpkg-dev, debhelper, dh-python, lintian),
# mandoc, systemd's tools and logrotate.  Debian packages only; runs apt-get as root, or
# through sudo when not root.  Safe to run again: it installs nothing present.
set -eu
missing=""
[ -f /usr/include/cmocka.h ] || missing="$missing libcmocka-dev"
/usr/bin/python3 -c 'import pytest' 2>/dev/null || missing="$missing python3-pytest"
# The client's packaging test (pip install --no-build-isolation in a venv)
# and its type check; curl for bench/client-compare.
/usr/bin/python3 -c 'import ensurepip' 2>/dev/null || missing="$missing python3-venv"
/usr/bin/python3 -c 'import setuptools' 2>/dev/null || missing="$missing python3-setuptools"
/usr/bin/python3 -c 'import wheel' 2>/dev/null || missing="$missing python3-wheel"
/usr/bin/python3 -c 'import pip' 2>/dev/null || missing="$missing python3-pip"
/usr/bin/python3 -c 'import mypy' 2>/dev/null || missing="$missing python3-mypy"
command -v curl >/dev/null 2>&1 || missing="$missing curl"
# The namespace suite (test_haproxy_netns.py): ip netns and a real HAProxy.
command -v ip >/dev/null 2>&1 || [ -x /usr/sbin/ip ] || [ -x /sbin/ip ] || missing="$missing iproute2"
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || missing="$missing haproxy"
# Operations: the Debian package test, man page lint, the units' checks and
# socket activation, the logrotate file's test.
command -v dpkg-buildpackage >/dev/null 2>&1 || missing="$missing dpkg-dev"
command -v dh >/dev/null 2>&1 || missing="$missing debhelper"
command -v dh_python3 >/dev/null 2>&1 || missing="$missing dh-python"
command -v unshare >/dev/null 2>&1 || missing="$missing util-linux"
command -v lintian >/dev/null 2>&1 || missing="$missing lintian"
command -v mandoc >/dev/null 2>&1 || missing="$missing mandoc"
command -v systemd-socket-activate >/dev/null 2>&1 || missing="$missing systemd"
command -v logrotate >/dev/null 2>&1 || missing="$missing logrotate"
command -v git >/dev/null 2>&1 || missing="$missing git"
command -v valgrind >/dev/null 2>&1 || missing="$missing valgrind"
command -v cc >/dev/null 2>&1 || missing="$missing gcc"
command -v make >/dev/null 2>&1 || missing="$missing make"
# libFuzzer and the sanitizer runtimes are only a Recommends of clang.
fuzz_probe='int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return d[0] & (int)n; }'
if ! command -v clang >/dev/null 2>&1; then
	missing="$missing clang libclang-rt-dev"
elif ! echo "$fuzz_probe" | clang -x c -fsanitize=fuzzer,address,undefined \
    -o /dev/null - >/dev/null 2>&1; then
	missing="$missing libclang-rt-dev"
fi
[ -z "$missing" ] && { echo "test dependencies present"; exit 0; }
echo "installing:$missing"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo -n"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq < /dev/null
$SUDO apt-get install -y -qq --no-install-recommends $missing < /dev/null
