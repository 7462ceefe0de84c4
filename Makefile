# crossrec - Makefile
#
# Targets:
#   all      build/crossrec, build/libcrossrec.a, build/libcrossrec.so (default)
#   test     build and run every test in tests/ (cmocka); needs no Python
#   demo     run the bundled MovieLens job end to end
#   bench    side-by-side benchmarks against the PyTorch twins: kernels and the ranker
#   bench-serve, bench-lm, bench-ilm   the serving, language-model and ILM benchmarks
#   fuzz     build the libFuzzer harnesses of tests/fuzz (clang) and run each for
#            FUZZ_SECONDS (default 20) on its corpus, seeded from the repository
#   install  copy the binary, libraries and header under PREFIX (/usr/local)
#   clean    remove build/
#   deps     check (and as root, install) the Debian packages the build needs
#
# Toggles:
#   OMP=0        build without OpenMP (one thread)
#   BLAS=0       portable GEMM only; BLAS=openblas (default) or BLAS=blis
#   SAN=1        AddressSanitizer + UndefinedBehaviorSanitizer (builds in build/san)
#   DEBUG=1      -O0 -g (builds in build/debug)
#   AVX2=1       target AVX2 instead of the host (for valgrind, which cannot run AVX-512)
#   CC=clang     any C17 compiler

CC      ?= cc
PREFIX  ?= /usr/local
OMP     ?= 1
BLAS    ?= openblas
SAN     ?= 0
DEBUG   ?= 0
AVX2    ?= 0

BUILD := build
ifeq ($(SAN),1)
BUILD := build/san
endif
ifeq ($(DEBUG),1)
BUILD := build/debug
endif
ifneq ($(BLAS),openblas)
BUILD := $(BUILD)/blas-$(BLAS)
endif
ifeq ($(OMP),0)
BUILD := $(BUILD)/noomp
endif
ifeq ($(AVX2),1)
BUILD := $(BUILD)/avx2
endif

ARCH := -march=native
ifeq ($(AVX2),1)
ARCH := -mavx2 -mfma
endif

# -ffp-contract=off: what gcc does under -std=c17 anyway; clang would
# otherwise fuse a*b+c where kernels and their tests expect two roundings.
WARN    := -Wall -Wextra -Wshadow -Wpointer-arith -Wstrict-prototypes -Wmissing-prototypes \
           -Wno-unused-parameter -Wvla
CFLAGS  := -std=c17 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE $(ARCH) $(WARN) -fPIC \
           -ffp-contract=off \
           -Iinclude -I/usr/include/cjson $(EXTRA_CFLAGS)
LDLIBS  := -lyaml -lcjson -lmicrohttpd -lm -lpthread

ifeq ($(DEBUG),1)
CFLAGS  += -O0 -g
else
# The cost model is gcc's (clang has no such flag, so ask the compiler once).
VECTFLAG := $(shell $(CC) -fvect-cost-model=dynamic -E -x c /dev/null >/dev/null 2>&1 \
              && echo -fvect-cost-model=dynamic)
CFLAGS  += -O2 -g -fno-math-errno $(VECTFLAG)
endif
ifeq ($(SAN),1)
CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif
ifeq ($(OMP),1)
CFLAGS  += -fopenmp
LDFLAGS += -fopenmp
endif

OPENBLAS_DIR := /usr/lib/x86_64-linux-gnu/openblas-openmp
BLIS_DIR     := /usr/lib/x86_64-linux-gnu/blis-openmp
ifeq ($(BLAS),openblas)
CFLAGS  += -DCR_BLAS_OPENBLAS -I/usr/include/x86_64-linux-gnu/openblas-openmp
LDLIBS  += -L$(OPENBLAS_DIR) -Wl,-rpath,$(OPENBLAS_DIR) -lopenblas
else ifeq ($(BLAS),blis)
CFLAGS  += -DCR_BLAS_BLIS -I/usr/include/x86_64-linux-gnu/blis-openmp
LDLIBS  += -L$(BLIS_DIR) -Wl,-rpath,$(BLIS_DIR) -lblis
else ifneq ($(BLAS),0)
$(error BLAS must be openblas, blis or 0, not '$(BLAS)')
endif

# Layers, bottom to top; each may include only the ones before it.
LAYERS   := core kernels nn data train rank ilm serve
LIB_SRC  := $(foreach l,$(LAYERS),$(wildcard src/$(l)/*.c))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_SRC  := $(wildcard cli/*.c)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_SRC := $(wildcard tests/test_*.c)
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
TEST_UTIL:= $(wildcard tests/util/*.c)
TEST_UOBJ:= $(TEST_UTIL:%.c=$(BUILD)/%.o)
BENCH_SRC:= $(wildcard bench/*.c)
BENCH_BIN:= $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)
DEPS_OK  := build/.deps-ok

.PHONY: all test demo bench bench-serve bench-lm bench-ilm install clean deps check-layers fuzz
.SECONDARY:
all: $(BUILD)/crossrec $(BUILD)/libcrossrec.a $(BUILD)/libcrossrec.so

# ---- Debian packages -------------------------------------------------------
# Checked once (stamp file); installed automatically when run as root.
PKGS := libopenblas-openmp-dev libblis-openmp-dev libyaml-dev libcjson-dev \
        libmicrohttpd-dev libcmocka-dev pkg-config
FUZZ_PKGS := clang libclang-rt-14-dev
deps: $(DEPS_OK)
$(DEPS_OK): PKG_LIST = $(PKGS)
build/.fuzz-deps-ok: PKG_LIST = $(FUZZ_PKGS)
$(DEPS_OK) build/.fuzz-deps-ok:
	@mkdir -p build
	@missing=""; for p in $(PKG_LIST); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian packages:$$missing"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing) || exit 1; \
	  else \
	    echo "crossrec needs these Debian packages; run as root:"; \
	    echo "  apt-get install -y$$missing"; exit 1; \
	  fi; \
	fi
	@touch $@

# ---- build ---------------------------------------------------------------------
$(BUILD)/%.o: %.c | $(DEPS_OK)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libcrossrec.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/libcrossrec.so: $(LIB_OBJ)
	$(CC) -shared $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/crossrec: $(CLI_OBJ) $(BUILD)/libcrossrec.a
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(BUILD)/libcrossrec.a $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/tests/%.o $(TEST_UOBJ) $(BUILD)/libcrossrec.a
	$(CC) $(LDFLAGS) -o $@ $< $(TEST_UOBJ) $(BUILD)/libcrossrec.a $(LDLIBS) -lcmocka

$(BUILD)/bench/%: $(BUILD)/bench/%.o $(BUILD)/libcrossrec.a
	$(CC) $(LDFLAGS) -o $@ $< $(BUILD)/libcrossrec.a $(LDLIBS)

# ---- test ---------------------------------------------------------------------------
# Every test binary runs from the repository root (fixtures are relative).
test: $(TEST_BIN) $(BUILD)/crossrec check-layers
	@fail=0; pass=0; \
	for t in $(TEST_BIN); do \
	  if CR_BUILD=$(BUILD) $$t > $$t.log 2>&1; then pass=$$((pass+1)); \
	  else fail=$$((fail+1)); echo "FAILED: $$t (log: $$t.log)"; tail -n 30 $$t.log; fi; \
	done; \
	for t in tests/*.sh; do \
	  log=$(BUILD)/tests/$$(basename $$t .sh).log; \
	  if CR_BUILD=$(BUILD) $$t > $$log 2>&1; then pass=$$((pass+1)); \
	  else fail=$$((fail+1)); echo "FAILED: $$t"; tail -n 30 $$log; fi; \
	done; \
	echo "$$pass passed, $$fail failed"; [ $$fail = 0 ]

# A layer may include only layers below it (see LAYERS).
check-layers:
	@bad=0; i=0; for l in $(LAYERS); do \
	  j=0; for u in $(LAYERS); do \
	    if [ $$j -gt $$i ] && grep -l "\.\./$$u/" src/$$l/*.[ch] 2>/dev/null | grep -q .; then \
	      echo "layering: src/$$l includes src/$$u"; bad=1; fi; j=$$((j+1)); \
	  done; i=$$((i+1)); \
	done; [ $$bad = 0 ]

# ---- demo and bench -------------------------------------------------------------
demo: $(BUILD)/crossrec
	./scripts/demo.sh $(BUILD)

bench: $(BUILD)/crossrec $(BENCH_BIN)
	./scripts/bench.sh $(BUILD)

bench-serve: $(BUILD)/crossrec $(BENCH_BIN)
	./scripts/bench_serve.sh $(BUILD)

bench-lm: $(BUILD)/crossrec $(BENCH_BIN)
	./scripts/bench_lm.sh $(BUILD)

bench-ilm: $(BUILD)/crossrec $(BENCH_BIN)
	./scripts/bench_ilm.sh $(BUILD)

# ---- install / clean ------------------------------------------------------------
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include
	install -m 755 $(BUILD)/crossrec $(DESTDIR)$(PREFIX)/bin/
	install -m 644 $(BUILD)/libcrossrec.a $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(BUILD)/libcrossrec.so $(DESTDIR)$(PREFIX)/lib/
	install -m 644 include/crossrec.h $(DESTDIR)$(PREFIX)/include/

clean:
	rm -rf build

-include $(shell find build -name '*.d' 2>/dev/null)

# ---- fuzzing ---------------------------------------------------------------------
# libFuzzer harnesses (tests/fuzz/fuzz_*.c) over a copy of the library built
# with clang, AddressSanitizer, UBSan and coverage, one thread (OMP=0), in
# build/fuzz. Each runs FUZZ_SECONDS on build/fuzz/corpus/<harness>, seeded
# by tests/fuzz/seeds.sh from the repository's files; crashes land in
# build/fuzz/crashes/<harness>/.
FUZZ_SECONDS ?= 20
FUZZ_CC     := clang
FUZZ_DIR    := build/fuzz
FUZZ_SAN    := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_CFLAGS := -std=c17 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE $(ARCH) $(WARN) -ffp-contract=off \
               -Iinclude -I/usr/include/cjson -O1 -g -fsanitize=fuzzer-no-link $(FUZZ_SAN) \
               -DCR_BLAS_OPENBLAS -I/usr/include/x86_64-linux-gnu/openblas-openmp
FUZZ_LIBS   := -lyaml -lcjson -lmicrohttpd -lm -lpthread -lcmocka \
               -L$(OPENBLAS_DIR) -Wl,-rpath,$(OPENBLAS_DIR) -lopenblas
FUZZ_SRC    := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN    := $(FUZZ_SRC:tests/fuzz/%.c=$(FUZZ_DIR)/%)
FUZZ_OBJ    := $(LIB_SRC:%.c=$(FUZZ_DIR)/%.o) $(TEST_UTIL:%.c=$(FUZZ_DIR)/%.o)

$(FUZZ_DIR)/%.o: %.c | build/.fuzz-deps-ok $(DEPS_OK)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -MMD -MP -c $< -o $@

$(FUZZ_DIR)/fuzz_%: $(FUZZ_DIR)/tests/fuzz/fuzz_%.o $(FUZZ_OBJ)
	$(FUZZ_CC) -fsanitize=fuzzer $(FUZZ_SAN) -o $@ $^ $(FUZZ_LIBS)

$(FUZZ_DIR)/.seeded: tests/fuzz/seeds.sh $(wildcard tests/fuzz/regress/*/*) $(BUILD)/crossrec
	tests/fuzz/seeds.sh $(FUZZ_DIR)/seeds $(BUILD)/crossrec
	@touch $@

fuzz: $(FUZZ_BIN) $(FUZZ_DIR)/.seeded
	@fail=0; for b in $(FUZZ_BIN); do n=$$(basename $$b); \
	  mkdir -p $(FUZZ_DIR)/corpus/$$n $(FUZZ_DIR)/crashes/$$n; \
	  echo "fuzz: $$n for $(FUZZ_SECONDS) s"; \
	  if ! OMP_WAIT_POLICY=passive $$b -max_total_time=$(FUZZ_SECONDS) -max_len=262144 -rss_limit_mb=2048 \
	       -timeout=20 -print_final_stats=1 -artifact_prefix=$(FUZZ_DIR)/crashes/$$n/ \
	       $(FUZZ_DIR)/corpus/$$n $(FUZZ_DIR)/seeds/$$n > $(FUZZ_DIR)/$$n.log 2>&1; then \
	    fail=1; echo "FAILED: $$n (log: $(FUZZ_DIR)/$$n.log)"; tail -n 40 $(FUZZ_DIR)/$$n.log; \
	  else grep -E "^(#[0-9]+[[:space:]]+DONE|stat::number_of_executed_units)" $(FUZZ_DIR)/$$n.log | tail -n 2; fi; \
	done; [ $$fail = 0 ]

