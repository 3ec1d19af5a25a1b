# HAI Bot build. `make` builds build/haibot; `make test` builds the sanitizer
# suite and runs it; `make run` starts the daemon. Every target that compiles
# first makes sure the Debian -dev packages it needs are present.

CC       ?= cc
PKGS      = libuv libwebsockets libcurl libcjson inih sqlite3 openssl zlib libsystemd libedit cairo \
            libpq libzstd
TEST_PKGS = cmocka
# Libraries without a pkg-config file: found by their header in `deps`.
NOPC_LIBS = -lhttp_parser
# Debian package for each pkg-config name above (same order as the names),
# then the ones without pkg-config (http-parser). `make` and `make run`
# need APT_PKGS; `make test` also APT_TEST_PKGS (systemd brings
# systemd-analyze, which checks the unit in dist/; postgresql the server
# the storage and ledger tests also run against, tools/pg-cluster.sh).
APT_PKGS  = pkg-config libuv1-dev libwebsockets-dev libwebsockets-evlib-uv \
            libcurl4-openssl-dev libcjson-dev libinih-dev libsqlite3-dev \
            libssl-dev zlib1g-dev libsystemd-dev libedit-dev libcairo2-dev libpq-dev \
            libzstd-dev libhttp-parser-dev
APT_TEST_PKGS = libcmocka-dev systemd postgresql

WARN      = -std=c11 -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes \
            -Wmissing-prototypes -Wformat=2 -Wvla
ifdef CI
WARN     += -Werror
endif

# pkg-config runs lazily (recursive `=`), after `deps` has had its chance.
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS))
PKG_LIBS   = $(shell pkg-config --libs $(PKGS)) $(NOPC_LIBS) -lpthread -lm
CPPFLAGS  += -D_GNU_SOURCE -I.

OPT_CFLAGS  = -O2 -g
ASAN_CFLAGS = -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined,float-cast-overflow \
              -fno-sanitize-recover=undefined

SRC       := $(wildcard base/*.c net/*.c bot/*.c core/*.c storage/*.c adapters/*/*.c)
LIB_SRC   := $(filter-out bot/main.c,$(SRC))
FUZZ_SRC  := $(wildcard tests/fuzz/fuzz_*.c)
TEST_SRC  := $(filter-out $(FUZZ_SRC),$(wildcard tests/*.c tests/*/*.c))
BENCH_SRC := $(wildcard bench/*.c tests/fake/*.c)

OBJ       := $(SRC:%.c=build/obj/%.o)
ASAN_OBJ  := $(SRC:%.c=build/asan/%.o)
ASAN_LIB  := $(LIB_SRC:%.c=build/asan/%.o)
TEST_OBJ  := $(TEST_SRC:%.c=build/asan/%.o)
BENCH_OBJ := $(BENCH_SRC:%.c=build/obj/%.o)
LIB_OBJ   := $(LIB_SRC:%.c=build/obj/%.o)

.PHONY: all deps test-deps test run install man valgrind bench clean format format-check check-layers check-clang \
        clang-install

# Quiet compile lines; `make V=1` shows the full commands.
ifndef V
Q = @
endif

all: deps
	@$(MAKE) --no-print-directory build/haibot

deps:
	@missing=""; \
	for p in $(PKGS); do \
	  pkg-config --exists $$p 2>/dev/null || missing="$$missing $$p"; \
	done; \
	[ -f /usr/lib/x86_64-linux-gnu/libwebsockets-evlib_uv.so ] || \
	  ls /usr/lib/*/libwebsockets-evlib_uv.so >/dev/null 2>&1 || missing="$$missing lws-evlib-uv"; \
	[ -f /usr/include/http_parser.h ] || missing="$$missing http-parser"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "deps: installing Debian packages for:$$missing"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PKGS)) >build-deps.log 2>&1 \
	      || { cat build-deps.log; exit 1; }; rm -f build-deps.log; \
	  else \
	    echo "deps: missing:$$missing"; \
	    echo "deps: run: sudo apt-get install -y $(APT_PKGS)"; exit 1; \
	  fi; \
	fi

# What only the tests need (cmocka; systemd-analyze, whose test skips
# without it; a PostgreSQL server), on top of deps.
test-deps: deps
	@missing=""; \
	for p in $(TEST_PKGS); do \
	  pkg-config --exists $$p 2>/dev/null || missing="$$missing $$p"; \
	done; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "test-deps: installing Debian packages for:$$missing"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_TEST_PKGS)) \
	      >build-deps.log 2>&1 || { cat build-deps.log; exit 1; }; rm -f build-deps.log; \
	  else \
	    echo "test-deps: missing:$$missing"; \
	    echo "test-deps: run: sudo apt-get install -y $(APT_TEST_PKGS)"; exit 1; \
	  fi; \
	fi

build/haibot: $(OBJ)
	@echo "  LD      $@"
	$(Q)$(CC) $(OPT_CFLAGS) -o $@ $(OBJ) $(PKG_LIBS)

build/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $@"
	$(Q)$(CC) $(CPPFLAGS) $(WARN) $(OPT_CFLAGS) $(PKG_CFLAGS) -MMD -MP -c -o $@ $<

build/asan/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $@"
	$(Q)$(CC) $(CPPFLAGS) $(WARN) $(ASAN_CFLAGS) $(PKG_CFLAGS) -MMD -MP -c -o $@ $<

build/asan/haibot: $(ASAN_OBJ)
	@echo "  LD      $@"
	$(Q)$(CC) $(ASAN_CFLAGS) -o $@ $(ASAN_OBJ) $(PKG_LIBS)

build/asan/haibot-tests: $(TEST_OBJ) $(ASAN_LIB)
	@echo "  LD      $@"
	$(Q)$(CC) $(ASAN_CFLAGS) -o $@ $(TEST_OBJ) $(ASAN_LIB) $(PKG_LIBS) -lcmocka -lutil

# Valgrind needs a build without ASan.
build/vg/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $@"
	$(Q)$(CC) $(CPPFLAGS) $(WARN) -O1 -g $(PKG_CFLAGS) -MMD -MP -c -o $@ $<

build/vg/haibot: $(SRC:%.c=build/vg/%.o)
	@echo "  LD      $@"
	$(Q)$(CC) -g -o $@ $^ $(PKG_LIBS)

build/vg/haibot-tests: $(TEST_SRC:%.c=build/vg/%.o) $(LIB_SRC:%.c=build/vg/%.o)
	@echo "  LD      $@"
	$(Q)$(CC) -g -o $@ $^ $(PKG_LIBS) -lcmocka -lutil

build/haibot-bench: $(BENCH_OBJ) $(LIB_OBJ)
	@echo "  LD      $@"
	$(Q)$(CC) $(OPT_CFLAGS) -o $@ $^ $(PKG_LIBS)

ASAN_ENV = ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1 \
           UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
           LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp:print_suppressions=0

# TESTS= narrows the run to some groups: make test TESTS="config ledger".
# A whole run also runs every fuzz target over its seeds (fuzz-check).
# The tests run beside a throwaway PostgreSQL in a fresh build/pg.XXXXXX
# (HAIBOT_TEST_PG_URL names it), stopped when they end, pass, fail or are
# interrupted; its log stays in that directory when they fail.
PG_RUN = pgdir=$$(mktemp -d $(CURDIR)/build/pg.XXXXXX) && tools/pg-cluster.sh run $$pgdir

test: test-deps check-layers
	@$(MAKE) --no-print-directory build/asan/haibot build/asan/haibot-tests build/haibot
	@$(MAKE) --no-print-directory $(NPM_OPENAI)
	@if [ -z "$(TESTS)" ]; then $(MAKE) --no-print-directory fuzz-check; fi
	@$(PG_RUN) env $(ASAN_ENV) HAIBOT_BIN=$(CURDIR)/build/asan/haibot \
	  tools/test-tail.sh build/asan/tests.log build/asan/haibot-tests $(TESTS)

# The official OpenAI client library, for the API's client test
# (tests/bot/test_daemon_api.c): installed into build/npm when node and npm
# are present. Without them, or without the registry, that test says so and
# is skipped; the build never fails for it.
NPM_OPENAI = build/npm/node_modules/openai/package.json
$(NPM_OPENAI):
	@if command -v node >/dev/null && command -v npm >/dev/null; then \
	  mkdir -p build/npm; echo "  NPM     openai@4 (build/npm)"; \
	  npm install --prefix build/npm --no-audit --no-fund --loglevel=error openai@4 \
	    >build/npm.log 2>&1 || echo "npm: openai@4 not installed (see build/npm.log); the \
	OpenAI client test will be skipped"; \
	else echo "npm: node or npm missing; the OpenAI client test will be skipped"; fi

valgrind: test-deps
	@$(MAKE) --no-print-directory build/vg/haibot build/vg/haibot-tests
	@$(PG_RUN) env HAIBOT_BIN=$(CURDIR)/build/vg/haibot HAIBOT_VALGRIND=1 valgrind --error-exitcode=99 \
	  --leak-check=full --errors-for-leak-kinds=definite --quiet \
	  --suppressions=$(CURDIR)/tests/valgrind.supp build/vg/haibot-tests $(TESTS)

# Beside a throwaway PostgreSQL (durable: fsync and synchronous_commit on),
# for the ledger_pg figures.
bench: test-deps
	@$(MAKE) --no-print-directory build/haibot build/haibot-bench
	@$(PG_RUN) sh -c 'HAIBOT_BENCH_PG_URL="$$HAIBOT_TEST_PG_URL" \
	  HAIBOT_BIN=$(CURDIR)/build/haibot build/haibot-bench $(BENCHES)'

# Builds on every core, unless the command line already chose (make -jN run).
RUN_JOBS = $(if $(findstring jobserver,$(MAKEFLAGS)),,-j$$(nproc 2>/dev/null || echo 2))

run: deps
	@$(MAKE) --no-print-directory $(RUN_JOBS) build/haibot
	@if [ -f bot.conf ]; then conf=bot.conf; else conf=bot.conf.example; \
	  echo "run: no bot.conf, starting on bot.conf.example (copy it to bot.conf to make it yours)"; fi; \
	exec build/haibot -c $$conf

# The manual pages come out of the binary (bot/config_man.c writes them from
# the schema table that checks the config), so they never disagree with it.
MAN_PAGES = build/man/haibot.1 build/man/bot.conf.5

man: all
	@$(MAKE) --no-print-directory $(MAN_PAGES)

build/man/haibot.1: build/haibot
	@mkdir -p $(dir $@)
	@echo "  MAN     $@"
	$(Q)build/haibot --man 1 >$@.tmp && mv $@.tmp $@

build/man/bot.conf.5: build/haibot
	@mkdir -p $(dir $@)
	@echo "  MAN     $@"
	$(Q)build/haibot --man 5 >$@.tmp && mv $@.tmp $@

# FHS paths (README.md, "Install and run as a service"). DESTDIR stages the
# tree for a package; the unit gets the binary's path of this PREFIX. An
# existing /etc/haibot/bot.conf is never touched.
PREFIX      ?= /usr/local
BINDIR      ?= $(PREFIX)/bin
MANDIR      ?= $(PREFIX)/share/man
UNITDIR     ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
SYSCONFDIR  ?= /etc/haibot
STATEDIR    ?= /var/lib/haibot

install: man
	install -D -m 755 build/haibot $(DESTDIR)$(BINDIR)/haibot
	install -D -m 644 build/man/haibot.1 $(DESTDIR)$(MANDIR)/man1/haibot.1
	install -D -m 644 build/man/bot.conf.5 $(DESTDIR)$(MANDIR)/man5/bot.conf.5
	install -d -m 755 $(DESTDIR)$(SYSCONFDIR)
	install -m 644 bot.conf.example $(DESTDIR)$(SYSCONFDIR)/bot.conf.example
	install -d -m 700 $(DESTDIR)$(STATEDIR)
	install -d -m 755 $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSUSERSDIR)
	sed 's|/usr/local/bin/haibot|$(BINDIR)/haibot|g' dist/haibot.service \
	  >$(DESTDIR)$(UNITDIR)/haibot.service
	chmod 644 $(DESTDIR)$(UNITDIR)/haibot.service
	install -m 644 dist/haibot.sysusers $(DESTDIR)$(SYSUSERSDIR)/haibot.conf
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ] && command -v systemd-sysusers >/dev/null; then \
	  systemd-sysusers $(SYSUSERSDIR)/haibot.conf && chown haibot:haibot $(STATEDIR); fi

# Every source must also compile with clang, warnings as errors: it
# refuses some things GCC accepts (a declaration right after a case label
# before clang 18, a non-literal format passed to a va_list function).
# Syntax only, one file per job, so `make -j` spreads it.
CLANG        ?= clang
CLANG_SRC    := $(sort $(SRC) $(TEST_SRC) $(BENCH_SRC) $(FUZZ_SRC))
CLANG_CHECKS := $(CLANG_SRC:%=check-clang/%)

# clang from Debian brings libFuzzer (libclang-rt) with it.
clang-install:
	@command -v $(CLANG) >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "clang: installing clang"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang) \
	      >build-deps.log 2>&1 || { cat build-deps.log; exit 1; }; rm -f build-deps.log; \
	  else echo "clang: $(CLANG) not found; run: sudo apt-get install -y clang"; exit 1; fi; }

check-clang: test-deps clang-install
	@$(MAKE) --no-print-directory $(CLANG_CHECKS)
	@echo "check-clang: $(words $(CLANG_SRC)) files compile with $(CLANG) -Werror"

.PHONY: $(CLANG_CHECKS)
$(CLANG_CHECKS): check-clang/%:
	$(Q)$(CLANG) $(CPPFLAGS) $(WARN) -Werror $(PKG_CFLAGS) -fsyntax-only $*

# libFuzzer targets (tests/fuzz/): clang, ASan and UBSan. The library is
# built once more with coverage hooks; each target links what it uses.
# `make fuzz` runs each for FUZZ_SECONDS, keeping what it finds in
# build/fuzz/corpus/<target>; `make fuzz-check` (part of `make test`) runs
# each over its seeds in tests/fuzz/corpus/<target> and FUZZ_CHECK_SECONDS
# more, so a crash found once stays a regression test.
FUZZ_SECONDS       ?= 60
FUZZ_CHECK_SECONDS ?= 4
FUZZ_CFLAGS = -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
              -fno-sanitize-recover=undefined
FUZZ_NAMES := $(FUZZ_SRC:tests/fuzz/%.c=%)
FUZZ_BIN   := $(FUZZ_NAMES:%=build/fuzz/%)
FUZZ_LIB   := build/fuzz/libhaibot.a

build/fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  FUZZCC  $@"
	$(Q)$(CLANG) $(CPPFLAGS) $(WARN) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link $(PKG_CFLAGS) \
	  -MMD -MP -c -o $@ $<

$(FUZZ_LIB): $(LIB_SRC:%.c=build/fuzz/obj/%.o)
	@rm -f $@
	$(Q)ar rcs $@ $^

build/fuzz/fuzz_%: build/fuzz/obj/tests/fuzz/fuzz_%.o $(FUZZ_LIB)
	@echo "  LD      $@"
	$(Q)$(CLANG) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_LIB) $(PKG_LIBS)

.PHONY: fuzz fuzz-build fuzz-check
fuzz-build: deps clang-install
	@$(MAKE) --no-print-directory $(FUZZ_BIN)

fuzz: fuzz-build
	@for t in $(FUZZ_NAMES); do \
	  mkdir -p build/fuzz/corpus/$$t; \
	  echo "fuzz: $$t for $(FUZZ_SECONDS) s"; \
	  build/fuzz/$$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    -artifact_prefix=build/fuzz/crash-$$t- build/fuzz/corpus/$$t tests/fuzz/corpus/$$t \
	    2>build/fuzz/$$t.log || { tail -40 build/fuzz/$$t.log; exit 1; }; \
	  grep -E "stat::number_of_executed_units|stat::average_exec_per_sec" build/fuzz/$$t.log; \
	done

# Seeds first (every file, then a short run from them); nothing found is
# written back to the repository's corpus.
fuzz-check: fuzz-build
	@for t in $(FUZZ_NAMES); do \
	  mkdir -p build/fuzz/check/$$t; \
	  build/fuzz/$$t -max_total_time=$(FUZZ_CHECK_SECONDS) -print_final_stats=1 \
	    -artifact_prefix=build/fuzz/crash-$$t- build/fuzz/check/$$t tests/fuzz/corpus/$$t \
	    >build/fuzz/$$t.check.log 2>&1 || { tail -40 build/fuzz/$$t.check.log; \
	    echo "fuzz-check: $$t FAILED (input in build/fuzz/crash-$$t-*)"; exit 1; }; \
	  rm -rf build/fuzz/check/$$t; \
	done; echo "fuzz-check: $(words $(FUZZ_NAMES)) targets, seeds and $(FUZZ_CHECK_SECONDS) s each: no crash"

# Wrong-way includes (README.md, Layout) fail the build and CI.
check-layers:
	@sh tools/check-layers.sh

FORMAT_FILES = $(SRC) $(TEST_SRC) $(BENCH_SRC) $(FUZZ_SRC) $(wildcard */*.h */*/*.h)

format:
	clang-format -i $(FORMAT_FILES)

# Fails, naming the lines, when any file differs from what `make format` writes.
format-check:
	@command -v clang-format >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang-format; } >/dev/null 2>&1 \
	  || { echo "format-check: needs clang-format (apt-get install clang-format)"; exit 1; }
	@clang-format --dry-run --Werror $(FORMAT_FILES) && echo "format: every file as .clang-format writes it"

clean:
	rm -rf build

VG_OBJ := $(SRC:%.c=build/vg/%.o) $(TEST_SRC:%.c=build/vg/%.o)
FUZZ_OBJ := $(LIB_SRC:%.c=build/fuzz/obj/%.o) $(FUZZ_SRC:%.c=build/fuzz/obj/%.o)
-include $(OBJ:.o=.d) $(ASAN_OBJ:.o=.d) $(TEST_OBJ:.o=.d) $(BENCH_OBJ:.o=.d) $(VG_OBJ:.o=.d) \
         $(FUZZ_OBJ:.o=.d)
