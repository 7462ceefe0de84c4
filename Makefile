# crossrec - Makefile
#
# Targets:
#   all      build/crossrec, build/libcrossrec.a, build/libcrossrec.so (default)
#   test     build and run every test: tests/ (cmocka, shell) and python/tests (pytest)
#   demo     run the bundled MovieLens job end to end
#   bench    side-by-side benchmarks against the PyTorch twins: kernels and the ranker
#   bench-serve, bench-lm, bench-ilm   the serving, language-model and ILM benchmarks
#   bench-mpi   data-parallel training at 1 and 2 ranks beside PyTorch DDP (bench/mpi.sh)
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
#   AVX2=1       target AVX2 instead of the host (for valgrind, which cannot run AVX-512)
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
AVX2    ?= 0
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
ifeq ($(AVX2),1)
BUILD := $(BUILD)/avx2
endif
ifeq ($(MPI),1)
BUILD := $(BUILD)/mpi
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
           -fvisibility=hidden \
           -ffp-contract=off \
           -Iinclude -I/usr/include/cjson $(EXTRA_CFLAGS)
LDLIBS  := -lyaml -lcjson -lmicrohttpd -lprotobuf-c -lm -lpthread

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

# Layers, bottom to top; each may include only the ones before it.
LAYERS   := core kernels nn data train rank ilm serve
LIB_SRC  := $(foreach l,$(LAYERS),$(wildcard src/$(l)/*.c))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o) $(BUILD)/gen/onnx.pb-c.o
CLI_SRC  := $(wildcard cli/*.c)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_SRC := $(wildcard tests/test_*.c)
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
TEST_UTIL:= $(wildcard tests/util/*.c)
TEST_UOBJ:= $(TEST_UTIL:%.c=$(BUILD)/%.o)
BENCH_SRC:= $(wildcard bench/*.c)
BENCH_BIN:= $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)
DEPS_OK  := build/.deps-ok

.PHONY: all test demo bench bench-serve bench-lm bench-ilm bench-mpi install clean deps ort check-layers python
.SECONDARY:
all: $(BUILD)/crossrec $(BUILD)/libcrossrec.a $(BUILD)/libcrossrec.so

# ---- Debian packages -------------------------------------------------------
# Checked once (stamp file); installed automatically when run as root.
PKGS := libopenblas-openmp-dev libblis-openmp-dev libyaml-dev libcjson-dev \
        libmicrohttpd-dev libcmocka-dev pkg-config curl \
        python3 python3-numpy python3-pandas python3-cffi python3-pytest python3-dask \
        python3-distributed python3-tqdm python3-matplotlib python3-nbconvert python3-ipykernel \
        python3-pip python3-setuptools python3-venv python3-yaml \
        libprotobuf-c-dev protobuf-c-compiler python3-onnx
ifeq ($(MPI),1)
PKGS    += libopenmpi-dev openmpi-bin
DEPS_OK := build/.deps-mpi-ok
endif
deps: $(DEPS_OK)
$(DEPS_OK): Makefile
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
	$(CC) $(LDFLAGS) -o $@ $< $(TEST_UOBJ) $(BUILD)/libcrossrec.a $(LDLIBS) -lcmocka

$(BUILD)/bench/%: $(BUILD)/bench/%.o $(BUILD)/libcrossrec.a
	$(CC) $(LDFLAGS) -o $@ $< $(BUILD)/libcrossrec.a $(LDLIBS)

# ---- test ---------------------------------------------------------------------------
# Every test binary runs from the repository root (fixtures are relative).
# Shell tests: the CLI (cli.sh), the exported symbols (symbols.sh), ...
TEST_SH  := $(filter-out tests/mpi.sh,$(wildcard tests/*.sh)) # mpi.sh: below, on the MPI=1 build
test: $(TEST_BIN) $(BUILD)/crossrec $(BUILD)/libcrossrec.so check-layers $(ORT_OK)
	@fail=0; pass=0; \
	for t in $(TEST_BIN); do \
	  if CR_BUILD=$(BUILD) $$t > $$t.log 2>&1; then pass=$$((pass+1)); \
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
	echo "$$pass passed, $$fail failed"; [ $$fail = 0 ]

# A layer may include only layers below it (see LAYERS), in any spelling;
# cli/ and bench/ reach internals only through scripts/layers_allow.txt.
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

-include $(shell find build -name '*.d' 2>/dev/null)
