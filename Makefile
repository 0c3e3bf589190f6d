# happac - HAProxy Patroni PgBouncer Agent Checker
#   make build     bin/happac (also plain `make`)
#   make test      every test: the style check, unit (cmocka), integration,
#                  cluster (both stacks) and systemd (pytest), then the same
#                  tests against an ASan+UBSan build
#   make check-style  line length, tabs, banned calls, name prefixes (scripts/style-check)
#   make install   PREFIX=/usr/local DESTDIR=
#   make deps      install the Debian packages that building and testing need
#   make bench     performance figures (bench/)
#   make demo      a real three-node Patroni cluster, HAProxy and happac

VERSION    := 0.1.0
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
CC         ?= cc
PKGS       := libevent libcurl libpq
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
# Only libevent is linked. libcurl (HTTPS to Patroni) and libpq
# (--pg-conninfo) are loaded with dlopen() when configured (why, and what it
# saves: docs/ARCHITECTURE.md, "Libraries loaded when configured"). Their
# headers stay a build dependency.
LINK_PKGS  := libevent
PKG_LIBS   := $(shell pkg-config --libs $(LINK_PKGS) 2>/dev/null)
WARN       := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wstrict-prototypes \
              -Wmissing-prototypes -Wno-unused-parameter
# snprintf truncation is how bounded strings are made here, not a bug.
ifeq ($(findstring clang,$(CC)),)
WARN       += -Wno-format-truncation
endif
CFLAGS     ?= -O2 -g
ALL_CFLAGS := -std=c11 -D_GNU_SOURCE -DHAPPAC_VERSION='"$(VERSION)"' $(WARN) \
              $(PKG_CFLAGS) $(CFLAGS)
# -rfEs lists failures, errors and every skip; tests/conftest.py fails the
# run on a skip whose reason is not on tests/skip-allowed.txt (a missing
# optional tool only).
PYTEST     := /usr/bin/python3 -m pytest

# The tests, the demo and the benchmark run as root (CI does): let the
# daemons they start do so too. happac refuses root otherwise.
export HAPPAC_RUN_AS_ROOT := 1

SRCS := $(wildcard src/*.c)
LIB_SRCS := $(filter-out src/main.c,$(SRCS))

# Each build flavour lives in its own directory: build/release, build/asan.
O ?= build/release
OBJS := $(patsubst src/%.c,$(O)/%.o,$(SRCS))

UNIT_TESTS := $(patsubst tests/unit/%.c,%,$(wildcard tests/unit/test_*.c))

.PHONY: all build install uninstall test test-unit test-integration test-cluster test-systemd test-asan \
        deps check-deps bench demo deb clean test-stress stress test-valgrind fuzz \
        haproxy-configs check-style

all: build
build: bin/happac

# Replaced by rename, so a running bin/happac (tests, demo) does not block it.
bin/happac: $(O)/happac
	@mkdir -p bin
	cp $< $@.tmp && mv -f $@.tmp $@

$(O)/happac: $(OBJS)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $(OBJS) $(PKG_LIBS)

$(O)/%.o: src/%.c
	@mkdir -p $(O)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

-include $(OBJS:.o=.d)

# --- unit tests (cmocka): each tests/unit/test_X.c links the library objects
$(O)/tests/%: tests/unit/%.c $(filter-out $(O)/main.o,$(OBJS))
	@mkdir -p $(O)/tests
	$(CC) $(ALL_CFLAGS) -Isrc -o $@ $^ $(PKG_LIBS) $(shell pkg-config --libs cmocka)

test-unit: $(addprefix $(O)/tests/,$(UNIT_TESTS))
	@set -e; for t in $^; do echo "== $$t"; $$t; done

# Integration suites that need no Patroni cluster; tests/cluster is separate
# (it starts etcd, three Patroni nodes and HAProxy).
IT_SUITES := tests/integration tests/ops tests/ctl tests/recipe

test-integration: bin/happac
	HAPPAC_BIN=$(CURDIR)/$(O)/happac $(PYTEST) -q -rfEs $(IT_SUITES)

# The same tests against an ASan+UBSan build (clang), in build/asan.
ASAN_FLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer \
              -fno-sanitize-recover=all
test-asan:
	$(MAKE) --no-print-directory O=build/asan CC=clang CFLAGS="$(ASAN_FLAGS)" \
	    LDFLAGS="$(ASAN_FLAGS)" build/asan/happac test-unit
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
	    HAPPAC_BIN=$(CURDIR)/build/asan/happac HAPPAC_OBJ_DIR=build/asan \
	    $(PYTEST) -q -rfEs $(IT_SUITES) --deselect tests/recipe/test_recipe_deb.py
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
	    HAPPAC_BIN=$(CURDIR)/build/asan/happac $(PYTEST) -q -rfEs tests/cluster

# The failure matrix on a real three-node Patroni cluster (etcd, PostgreSQL,
# PgBouncer, happac, HAProxy on 127.0.0.11-13); root, about two minutes.
# STACK: whose programs the cluster runs. debian12 (default): the host's;
# debian13: Debian 13's, chrooted in build/stack/debian13 (built on first
# use by scripts/stack-prepare.sh with debootstrap, about a minute).
# happac and the test driver run on the host either way.
STACK ?= debian12
export HAPPAC_STACK := $(STACK)
test-cluster: bin/happac
	scripts/stack-prepare.sh $(STACK)
	HAPPAC_BIN=$(CURDIR)/$(O)/happac $(PYTEST) -v -rfEs tests/cluster

# The package's unit under a real systemd: a Debian 12 root (debootstrap,
# cached in build/rootfs), booted with systemd-nspawn on the host's network,
# against the lab cluster (tests/systemd); root, about four minutes (plus
# about six for debootstrap the first time).
test-systemd: bin/happac
	HAPPAC_BIN=$(CURDIR)/$(O)/happac $(PYTEST) -v -rfEs tests/systemd

# haproxy/scenario-*.cfg are `happac recipe haproxy` output for the lab.
haproxy-configs: bin/happac
	for x in a b c; do \
	    bin/happac $$(/usr/bin/python3 -c "import sys; sys.path[:0] = ['tests/cluster', 'tests/lib']; \
	        import cluster; print(' '.join(cluster.recipe_argv('$$x')))") \
	        > haproxy/scenario-$$x.cfg || exit 1; \
	done

# Hostile clients, floods, faulty backends and a million-check soak
# (tests/stress, about two minutes; -m "not soak and not flood" for less).
# make test runs them for what must hold anywhere (no check lost, the right
# lines, fds and memory bounded); `make stress` adds the latency bounds,
# which are speed targets and need a quiet machine.
test-stress: bin/happac
	HAPPAC_BIN=$(CURDIR)/$(O)/happac $(PYTEST) -q -rfEs tests/stress

# bench/floor: test_flood measures it beside happac (the machine's share).
stress: bin/happac
	$(MAKE) -s -C bench floor
	STRESS_TIMING=1 HAPPAC_BIN=$(CURDIR)/$(O)/happac $(PYTEST) -q -rA tests/stress

# libFuzzer targets (clang-14): replay the regressions, then fuzz each target
# for FUZZ_SECONDS (CI: 20 s each, with a fixed FUZZ_SEED so that every clean
# clone explores the same inputs; `make fuzz` draws a new seed each run).
FUZZ_SECONDS ?= 60
FUZZ_SEED ?=
fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_SEED=$(FUZZ_SEED) fuzz/run.sh

# The core integration tests with happac under valgrind memcheck: any memory
# error or leak fails the test (scripts/valgrind-happac exits 99).
test-valgrind: build
	HAPPAC_BIN=$(CURDIR)/scripts/valgrind-happac $(PYTEST) -q -rfEs \
	    tests/integration/test_agent.py tests/integration/test_http.py \
	    tests/integration/test_routing.py tests/integration/test_profiles.py \
	    tests/integration/test_reload.py \
	    --deselect tests/integration/test_http.py::test_reload_rebinds_changed_and_keeps_unchanged

check-deps:
	@scripts/deps.sh --check || scripts/deps.sh

# The house layout of the C (scripts/style-check says which rules): first the
# checker's own tests, then the tree. A few seconds; no build needed.
check-style:
	$(PYTEST) -q tests/style
	scripts/style-check

deps:
	scripts/deps.sh

test: check-deps
	$(MAKE) --no-print-directory check-style
	$(MAKE) --no-print-directory build
	$(MAKE) --no-print-directory test-unit
	$(MAKE) --no-print-directory test-integration
	$(MAKE) --no-print-directory test-cluster STACK=debian12
	$(MAKE) --no-print-directory test-cluster STACK=debian13
	$(MAKE) --no-print-directory test-systemd
	$(MAKE) --no-print-directory test-stress
	$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=20 FUZZ_SEED=1
	$(MAKE) --no-print-directory test-valgrind
	$(MAKE) --no-print-directory test-asan

MANDIR     ?= $(PREFIX)/share/man
UNITDIR    ?= $(PREFIX)/lib/systemd/system
SYSCONFDIR ?= /etc

# The unit names the binary by its path: rewritten for the PREFIX in use.
# An existing env file is an operator's: never overwritten.
install: bin/happac
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(UNITDIR) \
	    $(DESTDIR)$(SYSCONFDIR)/haproxy
	install -m 0755 bin/happac $(DESTDIR)$(BINDIR)/happac
	install -m 0644 man/happac.8 $(DESTDIR)$(MANDIR)/man8/happac.8
	for u in happac.service happac@.service; do \
	    sed 's|/usr/local/bin/happac|$(BINDIR)/happac|' systemd/$$u > $(DESTDIR)$(UNITDIR)/$$u; \
	    chmod 0644 $(DESTDIR)$(UNITDIR)/$$u; \
	done
	[ -e $(DESTDIR)$(SYSCONFDIR)/haproxy/happac.env ] || \
	    install -m 0644 systemd/happac.env $(DESTDIR)$(SYSCONFDIR)/haproxy/happac.env
	@# The units run with Group=happac (who may use `happac ctl`); the package's
	@# postinst makes it, and so does a real install (not into a DESTDIR).
	@if [ -z "$(DESTDIR)" ] && ! getent group happac >/dev/null; then \
	    groupadd --system happac || \
	    echo "make install: create the group happac (groupadd --system happac)" >&2; \
	fi

# The env file stays: it holds the operator's settings.
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/happac $(DESTDIR)$(MANDIR)/man8/happac.8 \
	    $(DESTDIR)$(UNITDIR)/happac.service $(DESTDIR)$(UNITDIR)/happac@.service

bench: check-deps build
	bench/run

# Debian package, built by dpkg-buildpackage in a scratch copy of the tree:
# build/deb/happac_$(VERSION)_ARCH.deb, lintian-checked.
deb: check-deps
	scripts/deb.sh

demo: check-deps build
	scripts/stack-prepare.sh $(STACK)
	demo/demo.sh

clean:
	rm -rf build bin
