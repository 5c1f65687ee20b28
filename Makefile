# hftpd — build, test and run.  See README.md.
CC       ?= cc
CSTD      = -std=c11 -D_GNU_SOURCE
WARN      = -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
OPT      ?= -O2 -g
# Installation layout (make install, and the paths compiled into hftpd).
PREFIX        ?= /usr/local
SBINDIR       ?= $(PREFIX)/sbin
BINDIR        ?= $(PREFIX)/bin
MANDIR        ?= $(PREFIX)/share/man
SYSCONFDIR    ?= $(PREFIX)/etc
LOCALSTATEDIR ?= /var
RUNSTATEDIR   ?= /run
DOCDIR        ?= $(PREFIX)/share/doc/hftpd
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
# systemd reads sysusers.d and tmpfiles.d under /usr/local/lib and /usr/lib;
# logrotate reads /etc/logrotate.d only, whatever the prefix.
SYSUSERSDIR   ?= $(PREFIX)/lib/sysusers.d
TMPFILESDIR   ?= $(PREFIX)/lib/tmpfiles.d
LOGROTATEDIR  ?= /etc/logrotate.d
# the client's Python package (hftp/), imported by the hftp command only
CLIENTDIR     ?= $(PREFIX)/lib/hftp
PIDFILE       ?= $(RUNSTATEDIR)/hftpd.pid
DESTDIR       ?=
PATHS     = -DHFTPD_CONF_PATH='"$(SYSCONFDIR)/hftpd/hftpd.conf"' \
            -DHFTPD_PID_FILE='"$(PIDFILE)"' \
            -DHFTPD_ERROR_LOG_FALLBACK='"$(LOCALSTATEDIR)/log/hftpd/error.log"' \
            -DHFTPD_BUILD_CC='"$(CC)"' -DHFTPD_BUILD_FLAGS='"$(strip $(ENV_CFLAGS) $(OPT))"'
# what the caller passed (dpkg-buildflags, ...), for hftpd -V
ENV_CFLAGS := $(CFLAGS)
CFLAGS   += $(CSTD) $(WARN) $(OPT) $(PATHS) -Ishared -Iworker -Imaster
LDFLAGS  +=
BUILD    ?= build
PYTHON   := $(shell test -x /usr/bin/python3 && echo /usr/bin/python3 || echo python3)

LIB_SRC    = $(wildcard shared/*.c) $(wildcard worker/*.c) \
             $(filter-out master/main.c,$(wildcard master/*.c))
LIB_OBJ    = $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
MAIN_OBJ   = $(BUILD)/obj/master/main.o
UNIT_SRC   = $(wildcard tests/unit/test_*.c)
UNIT_BIN   = $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
# bench/base64-bench.c and bench/bare-answerer.c are programs of their own;
# the rest is hftp-bench.
B64_BENCH  = bench/base64-bench.c
BARE_SRC   = bench/bare-answerer.c
BENCH_SRC  = $(filter-out $(B64_BENCH) $(BARE_SRC),$(wildcard bench/*.c))
# make fuzz: every tests/fuzz/fuzz_*.c is a libFuzzer harness, built by clang
# against the library and run FUZZ_SECONDS each on a corpus kept in
# build/fuzz/corpus/NAME/ (seeded from tests/fuzz/corpus/NAME/ if present).
FUZZ_SRC   = $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN   = $(FUZZ_SRC:tests/fuzz/%.c=build/fuzz/%)
FUZZ_SECONDS ?= 10
FUZZ_SAN   = -fsanitize=address,undefined -fno-sanitize-recover=undefined

.PHONY: all run test unit layers integration coverage valgrind asan asan-test bench-smoke clang fuzz fuzz-lib fuzz-smoke deps clean install install-daemon install-client uninstall man-lint
all: $(BUILD)/hftpd $(if $(BENCH_SRC),$(BUILD)/hftp-bench) $(BUILD)/base64-bench \
    $(BUILD)/bare-answerer

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libhftpd.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/hftpd: $(MAIN_OBJ) $(BUILD)/libhftpd.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^

$(BUILD)/hftp-bench: $(BENCH_SRC) $(BUILD)/libhftpd.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -pthread $(LDFLAGS) -o $@ $(BENCH_SRC) $(BUILD)/libhftpd.a -lm

$(BUILD)/base64-bench: $(B64_BENCH) $(BUILD)/libhftpd.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(B64_BENCH) $(BUILD)/libhftpd.a

# The bar hftpd is measured against (bench/bare-compare): Linux epoll, no library.
$(BUILD)/bare-answerer: $(BARE_SRC)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(BARE_SRC)

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libhftpd.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libhftpd.a -lcmocka

# make run [PORT=N] [DIR=path]: build and serve DIR in the foreground, as
# the user who runs make (-u: root's workers would become nobody, who may
# not reach a clone in a private folder; root gets a warning).
PORT ?= 19500
DIR  ?= conf/sample
run: $(BUILD)/hftpd
	@mkdir -p $(DIR)
	$(BUILD)/hftpd -f -d $(DIR) -p $(PORT) -u "$$(id -un)"

# make install [PREFIX=/usr/local] [DESTDIR=] [SBINDIR= MANDIR= SYSCONFDIR=
# ...]: the daemon and the client.  install-daemon: hftpd, hftpd(8),
# hftpd.conf(5), a commented config serving /srv/hftp with `user = hftpd`
# (kept if one is there: the new one goes next to it as hftpd.conf.new),
# the systemd units, the sysusers.d and tmpfiles.d files (the hftpd user,
# /srv/hftp, the log folder owned by hftpd) and the logrotate file, their
# paths filled in from the variables above.  Without DESTDIR, as root, it
# also applies the sysusers.d and tmpfiles.d files at once (systemd would
# at the next boot).  install-client: the hftp command, its Python package
# in CLIENTDIR, hftp(1).
SUBST     = sed -e 's|@SBINDIR@|$(SBINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
                -e 's|@LOCALSTATEDIR@|$(LOCALSTATEDIR)|g' -e 's|@CLIENTDIR@|$(CLIENTDIR)|g' \
                -e 's|@PYTHON3@|$(INSTALL_PYTHON)|g'
INSTALL_PYTHON ?= $(shell test -x /usr/bin/python3 && echo /usr/bin/python3 || command -v python3)
MAN_PAGES = docs/man/hftpd.8 docs/man/hftpd.conf.5 docs/man/hftp.1
INSTALLED_CONF = $(DESTDIR)$(SYSCONFDIR)/hftpd/hftpd.conf
install: install-daemon install-client

install-daemon: $(BUILD)/hftpd
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(MANDIR)/man5 \
	    $(DESTDIR)$(SYSCONFDIR)/hftpd $(DESTDIR)$(SYSTEMDUNITDIR) $(DESTDIR)$(SYSUSERSDIR) \
	    $(DESTDIR)$(TMPFILESDIR) $(DESTDIR)$(LOGROTATEDIR) $(DESTDIR)$(DOCDIR)
	install -m 0755 $(BUILD)/hftpd $(DESTDIR)$(SBINDIR)/hftpd
	install -m 0644 docs/man/hftpd.8 $(DESTDIR)$(MANDIR)/man8/hftpd.8
	install -m 0644 docs/man/hftpd.conf.5 $(DESTDIR)$(MANDIR)/man5/hftpd.conf.5
	sed -e 's|^directory = sample$$|directory = /srv/hftp|' \
	    -e '0,/^#user =/s/^#user =.*/user = hftpd/' conf/hftpd.conf > $(BUILD)/hftpd.conf.inst
	test "$$(grep -c -e '^directory = /srv/hftp$$' -e '^user = hftpd$$' $(BUILD)/hftpd.conf.inst)" = 2
	if [ -e $(INSTALLED_CONF) ]; then \
	    install -m 0644 $(BUILD)/hftpd.conf.inst $(INSTALLED_CONF).new; \
	else install -m 0644 $(BUILD)/hftpd.conf.inst $(INSTALLED_CONF); fi
	$(SUBST) conf/hftpd.service.in > $(BUILD)/hftpd.service
	install -m 0644 $(BUILD)/hftpd.service $(DESTDIR)$(SYSTEMDUNITDIR)/hftpd.service
	install -m 0644 conf/hftpd.socket $(DESTDIR)$(SYSTEMDUNITDIR)/hftpd.socket
	install -m 0644 conf/hftpd.sysusers $(DESTDIR)$(SYSUSERSDIR)/hftpd.conf
	$(SUBST) conf/hftpd.tmpfiles.in > $(BUILD)/hftpd.tmpfiles
	install -m 0644 $(BUILD)/hftpd.tmpfiles $(DESTDIR)$(TMPFILESDIR)/hftpd.conf
	$(SUBST) conf/hftpd.logrotate.in > $(BUILD)/hftpd.logrotate
	install -m 0644 $(BUILD)/hftpd.logrotate $(DESTDIR)$(LOGROTATEDIR)/hftpd
	install -m 0644 LICENSE README.md $(DESTDIR)$(DOCDIR)/
	@if [ -n "$(DESTDIR)" ]; then :; \
	elif [ "$$(id -u)" -ne 0 ]; then echo "not root: the hftpd user and folders come at the next boot"; \
	elif command -v systemd-sysusers >/dev/null && command -v systemd-tmpfiles >/dev/null; then \
	    echo "systemd-sysusers, systemd-tmpfiles --create: the hftpd user, /srv/hftp, the log folder"; \
	    systemd-sysusers $(SYSUSERSDIR)/hftpd.conf && \
	    systemd-tmpfiles --create $(TMPFILESDIR)/hftpd.conf; \
	else echo "no systemd-sysusers: create the hftpd user and the folders of $(TMPFILESDIR)/hftpd.conf"; fi

install-client:
	@mkdir -p $(BUILD)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(CLIENTDIR)/hftp $(DESTDIR)$(MANDIR)/man1
	install -m 0644 client/hftp/*.py client/hftp/py.typed $(DESTDIR)$(CLIENTDIR)/hftp/
	$(SUBST) client/hftp.in > $(BUILD)/hftp
	install -m 0755 $(BUILD)/hftp $(DESTDIR)$(BINDIR)/hftp
	install -m 0644 docs/man/hftp.1 $(DESTDIR)$(MANDIR)/man1/hftp.1

# Removes what install put there (and the bytecode Python wrote beside the
# client), except a config file that may be edited.  Like a package's
# remove, it keeps the hftpd user, /srv/hftp and the logs.
uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/hftpd $(DESTDIR)$(MANDIR)/man8/hftpd.8 \
	    $(DESTDIR)$(MANDIR)/man5/hftpd.conf.5 $(DESTDIR)$(MANDIR)/man1/hftp.1 \
	    $(DESTDIR)$(SYSTEMDUNITDIR)/hftpd.service $(DESTDIR)$(SYSTEMDUNITDIR)/hftpd.socket \
	    $(DESTDIR)$(SYSUSERSDIR)/hftpd.conf $(DESTDIR)$(TMPFILESDIR)/hftpd.conf \
	    $(DESTDIR)$(LOGROTATEDIR)/hftpd $(DESTDIR)$(DOCDIR)/LICENSE $(DESTDIR)$(DOCDIR)/README.md \
	    $(INSTALLED_CONF).new $(DESTDIR)$(BINDIR)/hftp
	rm -f $(patsubst client/%,$(DESTDIR)$(CLIENTDIR)/%,$(wildcard client/hftp/*.py) client/hftp/py.typed)
	rm -rf $(DESTDIR)$(CLIENTDIR)/hftp/__pycache__
	-rmdir $(DESTDIR)$(CLIENTDIR)/hftp $(DESTDIR)$(CLIENTDIR) $(DESTDIR)$(DOCDIR)
	@[ ! -e $(INSTALLED_CONF) ] || echo "kept $(INSTALLED_CONF)"

# The man pages must be lint-clean (mandoc from Debian's mandoc package).
man-lint:
	mandoc -T lint -W warning $(MAN_PAGES)

# make test: install missing test dependencies, then every suite.
test: deps
	$(MAKE) all
	$(MAKE) clang
	$(MAKE) man-lint
	$(MAKE) layers
	$(MAKE) unit
	$(MAKE) fuzz-smoke
	$(MAKE) bench-smoke
	$(MAKE) integration
	$(MAKE) asan-test
	$(MAKE) valgrind

deps:
	sh tests/install-deps.sh

# make layers: the calls between the files of a folder run one way (no
# circle, read from the objects' symbols), and no function of master/,
# worker/ or shared/ is over 60 lines.
layers: $(LIB_OBJ)
	$(PYTHON) tests/check-layers --build $(BUILD) master worker
	$(PYTHON) tests/check-layers --lengths master worker shared

unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; $$t; done

# Each run has a temp folder of its own (other pytest sessions of the same
# user would clean up /tmp/pytest-of-USER under it).
PYTEST_TMP = $(CURDIR)/build/pytest-tmp

integration: $(BUILD)/hftpd
	@mkdir -p $(PYTEST_TMP)
	cd tests/integration && HFTPD_BIN=$(CURDIR)/$(BUILD)/hftpd $(PYTHON) -m pytest -q -p no:cacheprovider \
	    --basetemp=$(PYTEST_TMP)/integration .

valgrind: $(BUILD)/hftpd
	@mkdir -p $(PYTEST_TMP)
	cd tests/integration && HFTPD_BIN=$(CURDIR)/$(BUILD)/hftpd HFTPD_VALGRIND=1 \
	    $(PYTHON) -m pytest -q -p no:cacheprovider --basetemp=$(PYTEST_TMP)/valgrind -m "not slow" .

asan:
	$(MAKE) BUILD=build/asan OPT="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined" \
	    LDFLAGS="-fsanitize=address,undefined" build/asan/hftpd

asan-test: asan
	@mkdir -p $(PYTEST_TMP)
	cd tests/integration && HFTPD_BIN=$(CURDIR)/build/asan/hftpd HFTPD_ASAN=1 \
	    $(PYTHON) -m pytest -q -p no:cacheprovider --basetemp=$(PYTEST_TMP)/asan .

# make clang: the whole tree (daemon, load generator, unit tests) built by
# clang into build/clang, with the same zero-warning flags.
# make coverage: line coverage of master/ worker/ shared/ from the unit
# tests, then from every suite (tests/coverage/run.sh says how); gcc only.
coverage:
	MAKE="$(MAKE)" PYTHON=$(PYTHON) sh tests/coverage/run.sh

clang:
	$(MAKE) CC=clang BUILD=build/clang all $(UNIT_SRC:tests/unit/%.c=build/clang/tests/%)

# The harnesses link a library of their own: instrumented for coverage
# (fuzzer-no-link) and the sanitizers; libFuzzer's main goes into each
# harness only.
fuzz-lib:
	$(MAKE) CC=clang BUILD=build/fuzz OPT="-O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link $(FUZZ_SAN)" \
	    build/fuzz/libhftpd.a

build/fuzz/fuzz_%: tests/fuzz/fuzz_%.c build/fuzz/libhftpd.a
	clang $(CSTD) $(WARN) -O1 -g -fno-omit-frame-pointer -Ishared -Iworker -Imaster \
	    -fsanitize=fuzzer $(FUZZ_SAN) -o $@ $< build/fuzz/libhftpd.a

fuzz: fuzz-lib
	$(MAKE) $(FUZZ_BIN)
	@set -e; for f in $(FUZZ_BIN); do \
	    name=$${f##*/}; corpus=build/fuzz/corpus/$$name; seeds=tests/fuzz/corpus/$$name; \
	    mkdir -p $$corpus; [ -d $$seeds ] || seeds=; \
	    echo "== $$name: $(FUZZ_SECONDS) s, corpus $$corpus $$seeds"; \
	    $$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 $$corpus $$seeds; \
	done

fuzz-smoke:
	$(MAKE) fuzz FUZZ_SECONDS=3

bench-smoke: $(BUILD)/hftpd $(BUILD)/hftp-bench $(BUILD)/bare-answerer
	sh bench/smoke.sh $(BUILD)

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
