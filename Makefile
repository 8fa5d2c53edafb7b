# apigres build. `make` builds ./apigres; see README.md for the other targets.
CC      ?= cc
BUILD   ?= build
PKGS    := libuv libpq libcjson libcurl
CFLAGS  ?= -O2 -g
# CFLAGS/LDFLAGS are the caller's (optimisation, sanitizers); the rest is always on.
ALL_CFLAGS = $(CFLAGS) -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter \
           -Wmissing-prototypes -Wstrict-prototypes -I. $(shell pkg-config --cflags $(PKGS))
# libpg_query (Debian libpg-query-dev) has no .pc file; it carries its own protobuf-c.
LDLIBS  := $(shell pkg-config --libs $(PKGS)) -lssl -lcrypto -lpg_query
SAN     := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

PROXY_SRC := $(wildcard proxy/*.c)
LIB_SRC   := $(filter-out proxy/main.c,$(PROXY_SRC)) $(wildcard upstream/*.c sync/*.c parser/*.c)
LIB_OBJ   := $(LIB_SRC:%.c=$(BUILD)/%.o)
UNIT_SRC  := $(wildcard tests/unit/unit_*.c)
ITEST_SRC := $(wildcard tests/integration/*.c)
FUZZ_BINS := $(BUILD)/fuzz/fuzz_pgwire $(BUILD)/fuzz/fuzz_classify $(BUILD)/fuzz/fuzz_copy_rows
TEST_BINS := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%) $(ITEST_SRC:tests/integration/%.c=$(BUILD)/tests/%)

.PHONY: all deps test test-programs check-asan run bench bench-upstream bench-backfill bench-parser bench-writes fuzz clean
all: apigres

# copied through a rename so that a running ./apigres does not make cp fail
apigres: $(BUILD)/apigres
	cp $< $@.tmp && mv -f $@.tmp $@

$(BUILD)/apigres: $(BUILD)/proxy/main.o $(LIB_OBJ)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/%.o: %.c $(wildcard proxy/*.h upstream/*.h sync/*.h parser/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/tests/unit_%: tests/unit/unit_%.c tests/unit/unit.h $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(LIB_OBJ) $(LDLIBS)

$(BUILD)/tests/%: tests/integration/%.c tests/integration/itest.h $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(LIB_OBJ) $(LDLIBS)

test-programs: $(TEST_BINS) $(FUZZ_BINS)

deps:
	bash scripts/deps.sh

# The one command that installs, builds and passes every test (README, .ci/run).
test: deps
	$(MAKE) all test-programs
	BUILD=$(abspath $(BUILD)) tests/run.sh

# The same tests against a build with AddressSanitizer and UndefinedBehaviorSanitizer.
check-asan: deps
	$(MAKE) BUILD=build-asan CFLAGS="-O1 -g $(SAN)" LDFLAGS="$(SAN)" build-asan/apigres test-programs
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  BUILD=$(abspath build-asan) tests/run.sh

# Runs only the client matrix (tests/clients/) and writes its table into README.md.
client-matrix: deps
	$(MAKE) all test-programs
	SKIP_UNIT=1 UPDATE_README=1 BUILD=$(abspath $(BUILD)) tests/run.sh 78_clients

run: deps all
	bash scripts/run.sh

bench: deps all
	bash bench/pgbench

$(BUILD)/bench/upstream_client: bench/upstream_client.c $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(LIB_OBJ) $(LDLIBS)

bench-upstream: deps $(BUILD)/bench/upstream_client
	bash bench/upstream

bench-backfill: deps all
	bash bench/backfill

$(BUILD)/bench/parser: bench/parser.c $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(LIB_OBJ) $(LDLIBS)

bench-parser: deps $(BUILD)/bench/parser
	$(BUILD)/bench/parser

bench-writes: deps all
	bash bench/writes

clean:
	rm -rf build build-asan apigres

# libFuzzer targets (clang); FUZZ_SECONDS per target, corpus in tests/fuzz/corpus/NAME.
FUZZ_SECONDS ?= 60
FUZZ_FLAGS := -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -I. $(shell pkg-config --cflags $(PKGS))
$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c proxy/pgwire.c proxy/pgwire.h
	@mkdir -p $(dir $@)
	clang $(FUZZ_FLAGS) -o $@ $< proxy/pgwire.c

$(BUILD)/fuzz/fuzz_classify: tests/fuzz/fuzz_classify.c parser/tree.c parser/tree.h parser/classify.c parser/classify.h parser/format.c parser/format.h parser/rewrite.c parser/rewrite_returning.c parser/rewrite.h parser/rewrite_internal.h
	@mkdir -p $(dir $@)
	clang $(FUZZ_FLAGS) -o $@ $< parser/tree.c parser/classify.c parser/format.c parser/rewrite.c parser/rewrite_returning.c -lpg_query

COPY_ROWS_SRC := sync/copy_rows.c sync/schema.c upstream/json_scan.c upstream/stripe_collections.c \
                 upstream/provider.c upstream/error.c proxy/pgwire.c
$(BUILD)/fuzz/fuzz_copy_rows: tests/fuzz/fuzz_copy_rows.c $(COPY_ROWS_SRC) sync/copy_rows.h upstream/json_scan.h
	@mkdir -p $(dir $@)
	clang $(FUZZ_FLAGS) -o $@ $< $(COPY_ROWS_SRC) -lcjson

fuzz: deps $(FUZZ_BINS)
	@for t in $(FUZZ_BINS); do \
	  name=$${t##*/fuzz_}; mkdir -p $(BUILD)/fuzz/corpus-$$name; \
	  $$t -max_total_time=$(FUZZ_SECONDS) -max_len=4096 \
	    $(BUILD)/fuzz/corpus-$$name tests/fuzz/corpus/$$name || exit 1; \
	done
