# hftpd — build, test and run.  See README.md.
CC       ?= cc
CSTD      = -std=c11 -D_GNU_SOURCE
WARN      = -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
OPT      ?= -O2 -g
CFLAGS   += $(CSTD) $(WARN) $(OPT) -Ishared -Iworker -Imaster
LDFLAGS  +=
BUILD    ?= build
PYTHON   := $(shell test -x /usr/bin/python3 && echo /usr/bin/python3 || echo python3)

LIB_SRC    = $(wildcard shared/*.c) $(filter-out worker/worker_main.c,$(wildcard worker/*.c)) \
             $(filter-out master/main.c,$(wildcard master/*.c))
LIB_OBJ    = $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
MAIN_OBJ   = $(BUILD)/obj/master/main.o
UNIT_SRC   = $(wildcard tests/unit/test_*.c)
UNIT_BIN   = $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
BENCH_SRC  = $(wildcard bench/*.c)

.PHONY: all run test unit integration valgrind asan asan-test bench-smoke clang deps clean
all: $(BUILD)/hftpd $(if $(BENCH_SRC),$(BUILD)/hftp-bench)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libhftpd.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/hftpd: $(MAIN_OBJ) $(BUILD)/libhftpd.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^

$(BUILD)/hftp-bench: $(BENCH_SRC) $(BUILD)/libhftpd.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -pthread $(LDFLAGS) -o $@ $(BENCH_SRC) $(BUILD)/libhftpd.a -lm

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libhftpd.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libhftpd.a -lcmocka

# make run: build and serve conf/sample/ on port 19500 in the foreground.
run: $(BUILD)/hftpd
	@mkdir -p conf/sample
	$(BUILD)/hftpd -f -d conf/sample -p 19500

# make test: install missing test dependencies, then every suite.
test: deps
	$(MAKE) all
	$(MAKE) clang
	$(MAKE) unit
	$(MAKE) bench-smoke
	$(MAKE) integration
	$(MAKE) asan-test
	$(MAKE) valgrind

deps:
	sh tests/install-deps.sh

unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; $$t; done

integration: $(BUILD)/hftpd
	cd tests/integration && HFTPD_BIN=$(CURDIR)/$(BUILD)/hftpd $(PYTHON) -m pytest -q -p no:cacheprovider .

valgrind: $(BUILD)/hftpd
	cd tests/integration && HFTPD_BIN=$(CURDIR)/$(BUILD)/hftpd HFTPD_VALGRIND=1 \
	    $(PYTHON) -m pytest -q -p no:cacheprovider -m "not slow" .

asan:
	$(MAKE) BUILD=build/asan OPT="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined" \
	    LDFLAGS="-fsanitize=address,undefined" build/asan/hftpd

asan-test: asan
	cd tests/integration && HFTPD_BIN=$(CURDIR)/build/asan/hftpd HFTPD_ASAN=1 \
	    $(PYTHON) -m pytest -q -p no:cacheprovider .

# make clang: the whole tree (daemon, load generator, unit tests) built by
# clang into build/clang, with the same zero-warning flags.
clang:
	$(MAKE) CC=clang BUILD=build/clang all $(UNIT_SRC:tests/unit/%.c=build/clang/tests/%)

bench-smoke: $(BUILD)/hftpd $(BUILD)/hftp-bench
	sh bench/smoke.sh $(BUILD)

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
