# crossrec - Makefile
#
# Targets:
#   all      build/crossrec, build/libcrossrec.a, build/libcrossrec.so (default)
#   test     build and run every test in tests/ (cmocka); needs no Python
#   demo     run the bundled MovieLens job end to end
#   bench    side-by-side benchmarks against the PyTorch twins: kernels and the ranker
#   bench-serve, bench-lm, bench-ilm   the serving, language-model and ILM benchmarks
#   install  copy the binary, libraries and header under PREFIX (/usr/local)
#   clean    remove build/
#   deps     check (and as root, install) the Debian packages the build needs
#
# Toggles:
#   OMP=0        build without OpenMP (one thread)
#   BLAS=0       portable GEMM only; BLAS=openblas (default) or BLAS=blis
#   SAN=1        AddressSanitizer + UndefinedBehaviorSanitizer (builds in build/san)
#   DEBUG=1      -O0 -g (builds in build/debug)
#   NATIVE=1     build the ISA-independent code for this machine (-march=native); the
#                default targets x86-64-v2 and picks its kernels at run time (isa block)
#   CC=clang     any C17 compiler

CC      ?= cc
PREFIX  ?= /usr/local
OMP     ?= 1
BLAS    ?= openblas
SAN     ?= 0
DEBUG   ?= 0

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

# ---- isa: kernels chosen at run time (docs/kernels.md, "Kernel sets") --------
# Everything is built for the baseline ISA_BASE except src/kernels/isa/*.c,
# which is compiled once per level of ISA_LEVELS with that level's flags
# (objects name.LEVEL.o); each level's table (isa/kset.c) is one
# cr_kernel_set, and dispatch.c picks one at run time from CPUID or
# CROSSREC_ISA. NATIVE=1 builds the baseline code for this machine instead
# (the levels keep their own flags, so the binary still runs every level
# this CPU has, and only it).
NATIVE  ?= 0
CR_TARGET := $(shell $(CC) -dumpmachine 2>/dev/null)
ifneq ($(findstring aarch64,$(CR_TARGET)),)
ISA_BASE   := -march=armv8-a
ISA_LEVELS := scalar neon
ISA_ID_scalar := CR_ISA_SCALAR
ISA_ID_neon   := CR_ISA_NEON
ISA_FLAGS_neon :=
else
ISA_BASE   := -march=x86-64-v2
ISA_LEVELS := scalar avx2 avx512 avx512bf16
ISA_ID_scalar     := CR_ISA_SCALAR
ISA_ID_avx2       := CR_ISA_AVX2
ISA_ID_avx512     := CR_ISA_AVX512
ISA_ID_avx512bf16 := CR_ISA_AVX512BF16
ISA_FLAGS_avx2       := -mavx2 -mfma -mf16c
ISA_FLAGS_avx512     := $(ISA_FLAGS_avx2) -mavx512f -mavx512bw -mavx512vl -mavx512dq
ISA_FLAGS_avx512bf16 := $(ISA_FLAGS_avx512) -mavx512bf16 -mavx512vnni
endif
ISA_FLAGS_scalar :=
ARCH := $(ISA_BASE)
ifeq ($(NATIVE),1)
ARCH  := -march=native
BUILD := $(BUILD)/native
endif
ISA_SRC := $(wildcard src/kernels/isa/*.c)
# `make test` runs these again with each lower kernel set forced, so a CI
# machine with AVX-512 also runs the AVX2 and scalar kernels end to end.
ISA_TESTS  := test_kernels_gemm test_kernels_packed test_kernels_bf16 test_gemm_bf16 \
              test_kernels_grad test_kernels_embed test_kernels_attn test_decoder \
              test_decoder_bf16 test_ranker test_twin_rank test_model_api test_request test_fit
ifneq ($(findstring aarch64,$(CR_TARGET)),)
ISA_FORCED := scalar
else
ISA_FORCED := avx2 scalar
endif
ISA_OBJ := $(foreach l,$(ISA_LEVELS),$(ISA_SRC:%.c=$(BUILD)/%.$(l).o))
# ---- end isa ------------------------------------------------------------------

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
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o) $(ISA_OBJ)
CLI_SRC  := $(wildcard cli/*.c)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_SRC := $(wildcard tests/test_*.c)
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
TEST_UTIL:= $(wildcard tests/util/*.c)
TEST_UOBJ:= $(TEST_UTIL:%.c=$(BUILD)/%.o)
BENCH_SRC:= $(wildcard bench/*.c)
BENCH_BIN:= $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)
DEPS_OK  := build/.deps-ok

.PHONY: all test demo bench bench-serve bench-lm bench-ilm install clean deps check-layers
.SECONDARY:
all: $(BUILD)/crossrec $(BUILD)/libcrossrec.a $(BUILD)/libcrossrec.so

# ---- Debian packages -------------------------------------------------------
# Checked once (stamp file); installed automatically when run as root.
PKGS := libopenblas-openmp-dev libblis-openmp-dev libyaml-dev libcjson-dev \
        libmicrohttpd-dev libcmocka-dev pkg-config
deps: $(DEPS_OK)
$(DEPS_OK):
	@mkdir -p build
	@missing=""; for p in $(PKGS); do \
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

# isa: one rule per level, the baseline flags but the level's target
define CR_ISA_RULE
$$(BUILD)/src/kernels/isa/%.$(1).o: src/kernels/isa/%.c | $$(DEPS_OK)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(filter-out $$(ARCH),$$(CFLAGS)) $$(ISA_BASE) $$(ISA_FLAGS_$(1)) \
	  -DCR_ISA_LEVEL=$(1) -DCR_ISA_ID=$$(ISA_ID_$(1)) -MMD -MP -c $$< -o $$@
endef
$(foreach l,$(ISA_LEVELS),$(eval $(call CR_ISA_RULE,$(l))))

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
	if [ -x tests/cli.sh ]; then \
	  if CR_BUILD=$(BUILD) tests/cli.sh > $(BUILD)/tests/cli.log 2>&1; then pass=$$((pass+1)); \
	  else fail=$$((fail+1)); echo "FAILED: tests/cli.sh"; tail -n 30 $(BUILD)/tests/cli.log; fi; \
	fi; \
	for isa in $(ISA_FORCED); do for n in $(ISA_TESTS); do t=$(BUILD)/tests/$$n; \
	  if CROSSREC_ISA=$$isa CR_BUILD=$(BUILD) $$t > $$t.$$isa.log 2>&1; then pass=$$((pass+1)); \
	  else fail=$$((fail+1)); echo "FAILED: CROSSREC_ISA=$$isa $$t (log: $$t.$$isa.log)"; \
	    tail -n 30 $$t.$$isa.log; fi; \
	done; done; \
	echo "$$pass passed, $$fail failed"; [ $$fail = 0 ]

# A layer may include only layers below it (see LAYERS).
check-layers:
	@bad=0; i=0; for l in $(LAYERS); do \
	  j=0; for u in $(LAYERS); do \
	    if [ $$j -gt $$i ] && grep -l "\.\./$$u/" src/$$l/*.[ch] src/$$l/*/*.[ch] 2>/dev/null | grep -q .; then \
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

# ---- arm64: cross-built, run under qemu (docs/kernels.md, "arm64") ------------
# `make test-arm64` builds the library for armv8-a with Debian's cross
# compiler (BLAS=0; the isa block gives it the scalar and neon kernel sets),
# then the kernel, ranker-forward and decoder tests, and runs them under
# qemu-aarch64, once as they choose (neon) and once with the scalar set
# forced. OMP=0: under qemu-user two OpenMP threads ran a 150x70x300 product
# for minutes instead of 0.1 s (the emulated synchronisation, not our
# code), and the threaded paths are the same C on every architecture. And
# qemu-user hangs in fork() on these machines, so test_isa's decoder forward
# per level runs here, one process per level, and the test compares them
# (CR_TEST_DECODER_DIR). It installs what it needs when run as root: the cross compiler
# and qemu-user, and through Debian multiarch the arm64 builds of the three
# libraries those tests link (libyaml, libcjson, cmocka). The cross compiler
# also searches /usr/include, so the library's other headers (microhttpd.h)
# are the host's -dev packages (PKGS); no test here links libmicrohttpd.
ARM64_CC    := aarch64-linux-gnu-gcc
ARM64_BUILD := $(patsubst build%,build/arm64%,$(BUILD))/noomp
ARM64_QEMU  := qemu-aarch64 -L /usr/aarch64-linux-gnu
ARM64_TESTS := test_isa test_kernels_gemm test_kernels_packed test_kernels_bf16 \
               test_kernels_grad test_kernels_embed test_kernels_attn test_kernels_loss \
               test_kernels_qf test_ranker test_twin_rank test_model_api test_decoder \
               test_decoder_bf16
ARM64_PKGS  := gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user \
               libyaml-dev:arm64 libcjson-dev:arm64 libcmocka-dev:arm64
ARM64_OK    := build/.deps-arm64-ok
.PHONY: test-arm64 deps-arm64
deps-arm64: $(ARM64_OK)
$(ARM64_OK):
	@mkdir -p build
	@missing=""; for p in $(ARM64_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != 0 ]; then \
	    echo "make test-arm64 needs these Debian packages; run as root:"; \
	    echo "  dpkg --add-architecture arm64 && apt-get update && apt-get install -y$$missing"; exit 1; \
	  fi; \
	  echo "installing Debian packages:$$missing"; \
	  dpkg --print-foreign-architectures | grep -qx arm64 || dpkg --add-architecture arm64; \
	  (apt-get -o DPkg::Lock::Timeout=900 update -qq && DEBIAN_FRONTEND=noninteractive \
	   apt-get -o DPkg::Lock::Timeout=900 install -y -qq $$missing) || exit 1; \
	fi
	@touch $@
test-arm64: $(ARM64_OK)
	@$(MAKE) --no-print-directory CC=$(ARM64_CC) BLAS=0 OMP=0 BUILD=$(ARM64_BUILD) \
	  LDLIBS="-lyaml -lcjson -lm -lpthread" $(ARM64_TESTS:%=$(ARM64_BUILD)/tests/%)
	@fail=0; pass=0; d=$(ARM64_BUILD)/tests/isa-decoder; rm -rf $$d; mkdir -p $$d; \
	for isa in scalar neon; do \
	  CROSSREC_ISA=$$isa $(ARM64_QEMU) $(ARM64_BUILD)/tests/test_isa --child-decoder \
	    $$d/dec_$$isa.bin || { fail=$$((fail+1)); echo "FAILED: the $$isa decoder forward"; }; \
	done; \
	for isa in auto scalar; do for n in $(ARM64_TESTS); do t=$(ARM64_BUILD)/tests/$$n; \
	  if CROSSREC_ISA=$$isa CR_BUILD=$(ARM64_BUILD) CR_TEST_DECODER_DIR=$$d \
	     $(ARM64_QEMU) $$t > $$t.$$isa.log 2>&1; then pass=$$((pass+1)); \
	  else fail=$$((fail+1)); echo "FAILED: CROSSREC_ISA=$$isa $(ARM64_QEMU) $$t (log: $$t.$$isa.log)"; \
	    tail -n 30 $$t.$$isa.log; fi; \
	done; done; \
	echo "arm64: $$pass passed, $$fail failed"; [ $$fail = 0 ]
# ---- end arm64 -----------------------------------------------------------------

-include $(shell find build -name '*.d' 2>/dev/null)
