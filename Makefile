# crossrec - Makefile
#
# Targets:
#   all      build/crossrec, build/libcrossrec.a, build/libcrossrec.so (default)
#   test     build and run every test: tests/ (cmocka, shell) and python/tests (pytest)
#   demo     run the bundled MovieLens job end to end
#   bench    side-by-side benchmarks against the PyTorch twins: kernels and the ranker
#   bench-serve, bench-lm, bench-ilm   the serving, language-model and ILM benchmarks
#   bench-mpi   data-parallel training at 1 and 2 ranks beside PyTorch DDP (bench/mpi.sh)
#   fuzz     build the libFuzzer harnesses of tests/fuzz (clang) and run each for
#            FUZZ_SECONDS (default 20) on its corpus, seeded from the repository
#   install  the command, libraries, header, crossrec.pc, man pages and docs under
#            $(DESTDIR)$(PREFIX) (PREFIX /usr/local)
#   python   pip-install the Python package (python/) over this build's library
#   clean    remove build/
#   deps     check (and as root, install) the Debian packages the build needs
#   ort      onnxruntime-node from the npm registry into build/node (for make test)
#
# Toggles:
#   OMP=0        build without OpenMP (one thread)
#   BLAS=0       portable GEMM only; BLAS=openblas (default) or BLAS=blis
#   SAN=1        AddressSanitizer + UndefinedBehaviorSanitizer (builds in build/san)
#   DEBUG=1      -O0 -g (builds in build/debug)
#   NATIVE=1     build the ISA-independent code for this machine (-march=native); the
#                default targets x86-64-v2 and picks its kernels at run time (isa block)
#   MPI=1        with Open MPI (builds in build/mpi): train, label, score and experiment
#                run under mpirun -np N (docs/distributed.md); `make test` also builds
#                and tests it whenever mpirun is installed
#   CC=clang     any C17 compiler

CC      ?= cc
PREFIX  ?= /usr/local
OMP     ?= 1
BLAS    ?= openblas
SAN     ?= 0
DEBUG   ?= 0
MPI     ?= 0

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
ifeq ($(MPI),1)
BUILD := $(BUILD)/mpi
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
           -fvisibility=hidden \
           -ffp-contract=off \
           -Iinclude -I/usr/include/cjson $(EXTRA_CFLAGS)
LDLIBS  := -lyaml -lcjson -lmicrohttpd -lprotobuf-c -lgsl -lm -lpthread

ifeq ($(DEBUG),1)
CFLAGS  += -O0 -g
else
# The cost model is gcc's (clang has no such flag, so ask the compiler once).
VECTFLAG := $(shell $(CC) -fvect-cost-model=dynamic -E -x c /dev/null >/dev/null 2>&1 \
              && echo -fvect-cost-model=dynamic)
CFLAGS  += -O2 -g -fno-math-errno $(VECTFLAG)
endif
SANFLAGS :=
ifeq ($(SAN),1)
SANFLAGS := -fsanitize=address,undefined
CFLAGS  += $(SANFLAGS) -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += $(SANFLAGS)
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

# Open MPI as Debian ships it (what `mpicc --showme` says); only src/core/dist.c reads CR_MPI.
OMPI_DIR := /usr/lib/x86_64-linux-gnu/openmpi
ifeq ($(MPI),1)
CFLAGS  += -DCR_MPI -I$(OMPI_DIR)/include -I$(OMPI_DIR)/include/openmpi
LDLIBS  += -L$(OMPI_DIR)/lib -Wl,-rpath,$(OMPI_DIR)/lib -lmpi
endif

# GSL (the study's distributions and resampling, src/rank/stats.c) calls
# CBLAS only in routines crossrec does not use, but libgsl must find the
# symbols: GSL's own CBLAS comes last, so a BLAS above keeps cblas_sgemm.
LDLIBS  += -lgslcblas

# Layers, bottom to top; each may include only the ones before it.
LAYERS   := core kernels nn data train rank ilm serve
LIB_SRC  := $(foreach l,$(LAYERS),$(wildcard src/$(l)/*.c))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o) $(BUILD)/gen/onnx.pb-c.o $(ISA_OBJ)
CLI_SRC  := $(wildcard cli/*.c)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_SRC := $(wildcard tests/test_*.c)
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
# serve_fixture (an HTTP server for the server tests) goes only into the
# tests that use it: the others link without libmicrohttpd (test-arm64).
TEST_UTIL:= $(filter-out tests/util/serve_fixture.c,$(wildcard tests/util/*.c))
TEST_UOBJ:= $(TEST_UTIL:%.c=$(BUILD)/%.o)
SERVE_FIX:= $(BUILD)/tests/util/serve_fixture.o
BENCH_SRC:= $(wildcard bench/*.c)
BENCH_BIN:= $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)
DEPS_OK  := build/.deps-ok

.PHONY: all test demo bench bench-serve bench-lm bench-ilm bench-mpi install clean deps ort check-layers python fuzz
.SECONDARY:
all: $(BUILD)/crossrec $(BUILD)/libcrossrec.a $(BUILD)/libcrossrec.so

# ---- Debian packages -------------------------------------------------------
# Checked once (stamp file); installed automatically when run as root.
PKGS := libopenblas-openmp-dev libblis-openmp-dev libyaml-dev libcjson-dev \
        libmicrohttpd-dev libcmocka-dev libgsl-dev pkg-config curl \
        python3 python3-numpy python3-pandas python3-cffi python3-pytest python3-dask \
        python3-distributed python3-tqdm python3-matplotlib python3-nbconvert python3-ipykernel jupyter-core jupyter-nbconvert \
        python3-pip python3-setuptools python3-venv python3-yaml \
        libprotobuf-c-dev protobuf-c-compiler python3-onnx
ifeq ($(MPI),1)
PKGS    += libopenmpi-dev openmpi-bin
DEPS_OK := build/.deps-mpi-ok
endif
FUZZ_PKGS := clang libclang-rt-14-dev
deps: $(DEPS_OK)
$(DEPS_OK): PKG_LIST = $(PKGS)
build/.fuzz-deps-ok: PKG_LIST = $(FUZZ_PKGS)
$(DEPS_OK) build/.fuzz-deps-ok: Makefile
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

# ---- ONNX ------------------------------------------------------------------------
# The ONNX export writes protobuf through protobuf-c, with C code generated
# here from the onnx.proto that Debian's python3-onnx ships (no hand-written
# encoder; the schema is the one the checker in make test reads back).
ONNX_PROTO ?= /usr/lib/python3/dist-packages/onnx/onnx.proto
$(BUILD)/gen/onnx.proto: | $(DEPS_OK)
	@mkdir -p $(dir $@)
	@test -f $(ONNX_PROTO) || { echo "$(ONNX_PROTO) is missing: apt-get install -y python3-onnx" \
	  "(or set ONNX_PROTO to an onnx.proto)"; exit 1; }
	cp $(ONNX_PROTO) $@
$(BUILD)/gen/onnx.pb-c.c: $(BUILD)/gen/onnx.proto
	protoc-c --proto_path=$(dir $<) --c_out=$(dir $<) $<
$(BUILD)/gen/onnx.pb-c.h: $(BUILD)/gen/onnx.pb-c.c ;
$(BUILD)/gen/onnx.pb-c.o: $(BUILD)/gen/onnx.pb-c.c Makefile
	$(CC) $(CFLAGS) -c $< -o $@
$(BUILD)/src/rank/export_onnx.o: $(BUILD)/gen/onnx.pb-c.h
$(BUILD)/src/rank/export_onnx.o: CFLAGS += -I$(BUILD)/gen

# onnxruntime-node (its CPU binaries are inside the npm package, so
# ONNXRUNTIME_NODE_INSTALL=skip downloads nothing else) for the check that
# scores exported graphs in ONNX Runtime. node and npm come from Debian when
# missing; the package from the npm registry.
ORT_VERSION := 1.31.1
ORT_OK      := build/node/.ort-$(ORT_VERSION)
ort: $(ORT_OK)
$(ORT_OK): | $(DEPS_OK)
	@if ! command -v node >/dev/null || ! command -v npm >/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm) || exit 1; \
	  else echo "the ONNX Runtime check needs node and npm; run as root:"; \
	    echo "  apt-get install -y nodejs npm"; exit 1; fi; \
	fi
	ONNXRUNTIME_NODE_INSTALL=skip npm install --prefix build/node --no-audit --no-fund --silent \
	  onnxruntime-node@$(ORT_VERSION)
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

# The shared library exports only what crossrec.h declares with CR_API
# (objects are built with -fvisibility=hidden); its SONAME carries the major
# version, and libcrossrec.so links to it for -lcrossrec.
VERSION := $(shell sed -n 's/^\#define CR_VERSION "\(.*\)"/\1/p' include/crossrec.h)
SOMAJOR := $(firstword $(subst ., ,$(VERSION)))
$(BUILD)/libcrossrec.so: $(LIB_OBJ)
	$(CC) -shared $(LDFLAGS) -Wl,-soname,libcrossrec.so.$(SOMAJOR) -o $@.$(VERSION) $^ $(LDLIBS)
	ln -sf libcrossrec.so.$(VERSION) $(BUILD)/libcrossrec.so.$(SOMAJOR)
	ln -sf libcrossrec.so.$(VERSION) $@

$(BUILD)/crossrec: $(CLI_OBJ) $(BUILD)/libcrossrec.a
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(BUILD)/libcrossrec.a $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/tests/%.o $(TEST_UOBJ) $(BUILD)/libcrossrec.a
	$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(BUILD)/libcrossrec.a $(LDLIBS) -lcmocka
$(BUILD)/tests/test_server $(BUILD)/tests/test_server_limits $(BUILD)/tests/test_kserve: $(SERVE_FIX)

$(BUILD)/bench/%: $(BUILD)/bench/%.o $(BUILD)/libcrossrec.a
	$(CC) $(LDFLAGS) -o $@ $< $(BUILD)/libcrossrec.a $(LDLIBS)

# ---- test ---------------------------------------------------------------------------
# Every test binary runs from the repository root (fixtures are relative).
# Shell tests: the CLI (cli.sh), the exported symbols (symbols.sh), ...
TEST_SH  := $(filter-out tests/mpi.sh,$(wildcard tests/*.sh)) # mpi.sh: below, on the MPI=1 build
test: $(TEST_BIN) $(BUILD)/crossrec $(BUILD)/libcrossrec.so check-layers $(ORT_OK)
	@fail=0; pass=0; skips=$(BUILD)/tests/skipped.txt; : > $$skips; \
	for t in $(TEST_BIN); do \
	  if CR_BUILD=$(BUILD) $$t > $$t.log 2>&1; then pass=$$((pass+1)); \
	    tests/util/skipped.sh $$(basename $$t) $$t.log >> $$skips; \
	  else fail=$$((fail+1)); echo "FAILED: $$t (log: $$t.log)"; tail -n 30 $$t.log; fi; \
	done; \
	for t in $(TEST_SH); do \
	  log=$(BUILD)/tests/$$(basename $$t .sh).log; \
	  if CR_BUILD=$(BUILD) $$t > $$log 2>&1; then pass=$$((pass+1)); \
	  else fail=$$((fail+1)); echo "FAILED: $$t (log: $$log)"; tail -n 30 $$log; fi; \
	done; \
	if [ "$(MPI)" != 1 ] && command -v mpirun >/dev/null; then \
	  if $(MAKE) --no-print-directory MPI=1 $(BUILD)/mpi/crossrec > $(BUILD)/tests/mpi-build.log 2>&1 \
	     && CR_BUILD=$(BUILD)/mpi tests/mpi.sh > $(BUILD)/tests/mpi.log 2>&1; then pass=$$((pass+1)); \
	  else fail=$$((fail+1)); echo "FAILED: tests/mpi.sh"; tail -n 30 $(BUILD)/tests/mpi-build.log $(BUILD)/tests/mpi.log; fi; \
	elif [ "$(MPI)" = 1 ]; then \
	  if CR_BUILD=$(BUILD) tests/mpi.sh > $(BUILD)/tests/mpi.log 2>&1; then pass=$$((pass+1)); \
	  else fail=$$((fail+1)); echo "FAILED: tests/mpi.sh"; tail -n 30 $(BUILD)/tests/mpi.log; fi; \
	fi; \
	for isa in $(ISA_FORCED); do for n in $(ISA_TESTS); do t=$(BUILD)/tests/$$n; \
	  if CROSSREC_ISA=$$isa CR_BUILD=$(BUILD) $$t > $$t.$$isa.log 2>&1; then pass=$$((pass+1)); \
	    tests/util/skipped.sh "$$n (CROSSREC_ISA=$$isa)" $$t.$$isa.log >> $$skips; \
	  else fail=$$((fail+1)); echo "FAILED: CROSSREC_ISA=$$isa $$t (log: $$t.$$isa.log)"; \
	    tail -n 30 $$t.$$isa.log; fi; \
	done; done; \
	sed 's/^/SKIPPED: /' $$skips; \
	echo "$$pass passed, $$fail failed, $$(wc -l < $$skips) tests skipped"; [ $$fail = 0 ]

# A layer may include only layers below it (see LAYERS), in any spelling;
# cli/ uses include/ only; bench/ reaches internals through scripts/layers_allow.txt.
check-layers:
	@scripts/check_layers.sh

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

bench-mpi:
	$(MAKE) MPI=1 $(BUILD)/mpi/crossrec $(BUILD)/mpi/bench/rank
	bench/mpi.sh $(BUILD)/mpi

# ---- Python ----------------------------------------------------------------------
# The crossrec package over this build's library (Debian's python3; no network).
# Debian marks its python3 externally managed: outside a virtual environment
# pip needs --break-system-packages to install beside Debian's packages.
PYTHON ?= /usr/bin/python3
PIP_SYSTEM = $(shell $(PYTHON) -c 'import os, sys, sysconfig; \
  print("--break-system-packages" if sys.prefix == sys.base_prefix and \
  os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")) else "")')
python: $(BUILD)/libcrossrec.so
	CROSSREC_BUILD=$(abspath $(BUILD)) $(PYTHON) -m pip install --no-build-isolation --no-deps \
	  $(PIP_SYSTEM) ./python

# ---- install / clean ------------------------------------------------------------
install: all
	LIBS_PRIVATE="$(LDFLAGS) $(LDLIBS)" SANFLAGS="$(SANFLAGS)" \
	  scripts/install.sh $(BUILD) $(PREFIX) $(DESTDIR)

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
# are the host's -dev packages (PKGS); no test here links libmicrohttpd,
# nor GSL (none of them reaches the study's statistics, src/rank/stats.c).
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
	skips=$(ARM64_BUILD)/tests/skipped.txt; : > $$skips; \
	for isa in scalar neon; do \
	  CROSSREC_ISA=$$isa $(ARM64_QEMU) $(ARM64_BUILD)/tests/test_isa --child-decoder \
	    $$d/dec_$$isa.bin || { fail=$$((fail+1)); echo "FAILED: the $$isa decoder forward"; }; \
	done; \
	for isa in auto scalar; do for n in $(ARM64_TESTS); do t=$(ARM64_BUILD)/tests/$$n; \
	  if CROSSREC_ISA=$$isa CR_BUILD=$(ARM64_BUILD) CR_TEST_DECODER_DIR=$$d \
	     $(ARM64_QEMU) $$t > $$t.$$isa.log 2>&1; then pass=$$((pass+1)); \
	    tests/util/skipped.sh "$$n (CROSSREC_ISA=$$isa)" $$t.$$isa.log >> $$skips; \
	  else fail=$$((fail+1)); echo "FAILED: CROSSREC_ISA=$$isa $(ARM64_QEMU) $$t (log: $$t.$$isa.log)"; \
	    tail -n 30 $$t.$$isa.log; fi; \
	done; done; \
	sed 's/^/SKIPPED: /' $$skips; \
	echo "arm64: $$pass passed, $$fail failed, $$(wc -l < $$skips) tests skipped"; [ $$fail = 0 ]
# ---- end arm64 -----------------------------------------------------------------

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
FUZZ_LIBS   := -lyaml -lcjson -lmicrohttpd -lprotobuf-c -lgsl -lm -lpthread -lcmocka \
               -L$(OPENBLAS_DIR) -Wl,-rpath,$(OPENBLAS_DIR) -lopenblas -lgslcblas
FUZZ_SRC    := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN    := $(FUZZ_SRC:tests/fuzz/%.c=$(FUZZ_DIR)/%)
FUZZ_OBJ    := $(LIB_SRC:%.c=$(FUZZ_DIR)/%.o) $(TEST_UTIL:%.c=$(FUZZ_DIR)/%.o) \
               $(FUZZ_DIR)/gen/onnx.pb-c.o $(foreach l,$(ISA_LEVELS),$(ISA_SRC:%.c=$(FUZZ_DIR)/%.$(l).o))

$(FUZZ_DIR)/%.o: %.c | build/.fuzz-deps-ok $(DEPS_OK)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -MMD -MP -c $< -o $@
# the generated ONNX protobuf code and the per-ISA kernels, as in the main build
$(FUZZ_DIR)/gen/onnx.pb-c.o: $(BUILD)/gen/onnx.pb-c.c | build/.fuzz-deps-ok
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c $< -o $@
$(FUZZ_DIR)/src/rank/export_onnx.o: $(BUILD)/gen/onnx.pb-c.h
$(FUZZ_DIR)/src/rank/export_onnx.o: FUZZ_CFLAGS += -I$(BUILD)/gen
define CR_FUZZ_ISA_RULE
$$(FUZZ_DIR)/src/kernels/isa/%.$(1).o: src/kernels/isa/%.c | build/.fuzz-deps-ok $$(DEPS_OK)
	@mkdir -p $$(dir $$@)
	$$(FUZZ_CC) $$(FUZZ_CFLAGS) $$(ISA_FLAGS_$(1)) -DCR_ISA_LEVEL=$(1) -DCR_ISA_ID=$$(ISA_ID_$(1)) \
	  -MMD -MP -c $$< -o $$@
endef
$(foreach l,$(ISA_LEVELS),$(eval $(call CR_FUZZ_ISA_RULE,$(l))))

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

