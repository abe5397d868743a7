# budgie build. `make` builds lib/libbudgie.a and bin/budgie; `make test` runs
# the CPU suite; `make test-gpu` the CUDA suite (it says so when it skips);
# `make test SAN=1` runs the CPU suite under AddressSanitizer + UBSan;
# `make test-emu` runs the CUDA suite on the CPU emulator (tools/emu), which
# any EMU=1 build uses in place of the GPU (its own build-emu/ folder;
# EMU=1 SAN=1 and EMU=1 TSAN=1 add AddressSanitizer or ThreadSanitizer).
# With nvcc on PATH (or in /usr/local/cuda/bin) the CUDA sources compile too;
# CUDA_ARCH overrides the targets. Sources are globbed per folder: a new file
# in engine/, ops/, models/, augment/, train/, search/, kernels/, tools/, bench/ or tests/ needs no edit here.

CC      ?= cc
CXX     ?= g++
COMMA   := ,
SAN     ?= 0
TSAN    ?= 0
EMU     ?= 0
NVCC    ?= $(shell command -v nvcc 2>/dev/null || ls /usr/local/cuda/bin/nvcc 2>/dev/null)
CUDA_ARCH ?= -gencode arch=compute_86,code=sm_86 -gencode arch=compute_90,code=sm_90 \
             -gencode arch=compute_90,code=compute_90

SUFFIX  := $(if $(filter 1,$(EMU)),-emu,)$(if $(filter 1,$(SAN)),-san,)$(if $(filter 1,$(TSAN)),-tsan,)
BUILD   := build$(SUFFIX)
CFLAGS  := -std=c11 -O2 -g -Wall -Wextra -Wno-unused-parameter -fopenmp -D_GNU_SOURCE -MMD -MP -I.
LDLIBS  := -ljansson -lturbojpeg -lpng -lz -lm -lpthread -ldl
LDFLAGS := -fopenmp
ifeq ($(SAN),1)
CFLAGS  += -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif
# ThreadSanitizer: meant for the emulated build (make EMU=1 TSAN=1), where each
# CUDA thread is a TSan fiber (docs/emulator.md)
ifeq ($(TSAN),1)
CFLAGS  += -O1 -fsanitize=thread -fno-omit-frame-pointer
LDFLAGS += -fsanitize=thread
endif
SAN_FLAGS := $(if $(filter 1,$(SAN)),-fsanitize=address -fsanitize=undefined -fno-omit-frame-pointer,)$(if $(filter 1,$(TSAN)),-fsanitize=thread -fno-omit-frame-pointer,)

# --- dependencies: name the Debian package of anything missing ----------------
DEPS := jansson.h:libjansson-dev turbojpeg.h:libturbojpeg0-dev png.h:libpng-dev zlib.h:zlib1g-dev
HASH    := \#
MISSING := $(foreach d,$(DEPS),$(if $(shell printf '$(HASH)include <%s>\n' $(word 1,$(subst :, ,$(d))) | $(CC) -E - >/dev/null 2>&1 && echo y),,$(word 2,$(subst :, ,$(d)))))
ifneq ($(strip $(MISSING)),)
$(error missing libraries; install them with: apt-get install $(MISSING))
endif

LIB_SRC  := $(sort $(wildcard engine/*.c ops/*.c ops/fast/*.c kernels/cpu/*.c models/*.c augment/*.c train/*.c search/*.c search/batch/*.c search/drive/*.c))
TOOL_SRC := $(sort $(wildcard tools/*.c bench/*.c))
TEST_SRC := $(sort $(wildcard tests/*.c))
CU_SRC   := $(sort $(wildcard kernels/*.cu kernels/*/*.cu))

ifneq ($(strip $(NVCC)),)
CUDA_HOME ?= $(patsubst %/bin/nvcc,%,$(NVCC))
CFLAGS    += -DBG_WITH_CUDA -I$(CUDA_HOME)/include
NVFLAGS   := -O3 -std=c++17 $(CUDA_ARCH) -I. -DBG_WITH_CUDA -Xcompiler -Wall,-Wextra,-Wno-unused-parameter -MMD -MP
CU_OBJ    := $(CU_SRC:%.cu=$(BUILD)/%.o)
ifeq ($(EMU),1)
# The emulator: the same sources through tools/emu/nvcc-emu, linked with its
# runtime in place of libcudart (and its NVRTC, found first through RPATH).
EMU_DIR   := $(BUILD)/emu
EMU_REWRITE := $(EMU_DIR)/rewrite
EMU_RT    := $(EMU_DIR)/libbgemu.a
EMU_NVRTC := $(EMU_DIR)/libnvrtc.so
EMU_DEPS  := $(EMU_REWRITE) tools/emu/nvcc-emu tools/emu/prelude.h tools/emu/bgemu.h
NVCC_CMD  := BGEMU_REWRITE=$(EMU_REWRITE) CUDA_HOME=$(CUDA_HOME) tools/emu/nvcc-emu
NVFLAGS   += $(foreach f,$(SAN_FLAGS),-Xcompiler $(f))
LDLIBS    += $(EMU_RT) -lstdc++ -ldl -rdynamic -Wl,--disable-new-dtags,-rpath,$(abspath $(EMU_DIR))
LINK_DEPS := $(EMU_RT) $(EMU_NVRTC)
CUDA_NOTE := CUDA: building kernels for the CPU emulator (tools/emu) into $(BUILD)/
else
NVCC_CMD  := $(NVCC)
LDLIBS    += -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcudart -lstdc++
CUDA_NOTE := CUDA: building kernels with $(NVCC)
endif
else
CU_OBJ    :=
CUDA_NOTE := CUDA: nvcc not found, building the CPU-only engine
endif

# The fast CPU kernels (kernels/cpu/isa/*.c) are compiled once per instruction
# set, each copy with its own function names (kernels/cpu/isa.h); the
# context picks one at run time (engine/cpu_isa.h).
CPU_ISA_SRC := $(sort $(wildcard kernels/cpu/isa/*.c))
ifneq ($(filter x86_64% i386% i486% i586% i686%,$(shell $(CC) -dumpmachine)),)
CPU_ISAS := generic avx2 avx512
CFLAGS   += -DBG_CPU_X86_ISA
else
CPU_ISAS := generic
endif
ISA_FLAGS_generic := -DBG_ISA=0
ISA_FLAGS_avx2    := -DBG_ISA=1 -mavx2 -mfma
ISA_FLAGS_avx512  := -DBG_ISA=2 -mavx512f -mavx512bw -mavx512dq -mavx512vl -mavx2 -mfma -mprefer-vector-width=512
CPU_ISA_OBJ := $(foreach i,$(CPU_ISAS),$(CPU_ISA_SRC:%.c=$(BUILD)/%.$(i).o))
define cpu_isa_rule
$(BUILD)/kernels/cpu/isa/%.$(1).o: kernels/cpu/isa/%.c
	@mkdir -p $$(dir $$@)
	$$(CC) $$(CFLAGS) -O3 -ffp-contract=fast $$(ISA_FLAGS_$(1)) -c $$< -o $$@
endef
$(foreach i,$(CPU_ISAS),$(eval $(call cpu_isa_rule,$(i))))

LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o) $(CPU_ISA_OBJ) $(CU_OBJ)
TOOL_OBJ := $(TOOL_SRC:%.c=$(BUILD)/%.o)
TEST_OBJ := $(TEST_SRC:%.c=$(BUILD)/%.o)
LIB      := lib/libbudgie$(SUFFIX).a
BIN      := bin/budgie$(SUFFIX)
TESTBIN  := $(BUILD)/tests/run

.PHONY: all test test-gpu clean note FORCE
all: note $(LIB) $(BIN)

# What `budgie --version` reports (engine/version.c): the commit, "-dirty" for
# uncommitted changes, rewritten only when it changes so nothing else rebuilds.
BG_COMMIT_NOW := $(shell c=$$(git rev-parse --short=12 HEAD 2>/dev/null) && { git diff --quiet HEAD -- 2>/dev/null || c=$$c-dirty; echo $$c; } || echo unknown)
BG_TARGETS := $(patsubst code=%,%,$(filter code=sm_%,$(subst $(COMMA), ,$(CUDA_ARCH))))
$(BUILD)/commit.txt: FORCE
	@mkdir -p $(BUILD)
	@echo '$(BG_COMMIT_NOW)' | cmp -s - $@ || echo '$(BG_COMMIT_NOW)' > $@
$(BUILD)/engine/version.o: $(BUILD)/commit.txt
$(BUILD)/engine/version.o: CFLAGS += -DBG_COMMIT='"$(BG_COMMIT_NOW)"' -DBG_CUDA_TARGETS='"$(BG_TARGETS) (+ sm_90a for the wgmma GEMM)"' $(if $(filter 1,$(EMU)),-DBG_EMU_BUILD,)

note:
	@echo "$(CUDA_NOTE)"

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/%.o: %.cu $(EMU_DEPS)
	@mkdir -p $(dir $@)
	$(NVCC_CMD) $(NVFLAGS) -c $< -o $@

# Hopper-only code (wgmma, TMA) needs the arch-specific sm_90a target; make
# prefers this rule for *_sm90a.cu (shorter stem). NVRTC is dlopen'ed (-ldl).
SM90A_FLAGS := -O3 -std=c++17 -gencode arch=compute_90a,code=sm_90a -I. -DBG_WITH_CUDA -DBG_SM90A_BUILD=1 \
               -Xcompiler -Wall,-Wextra,-Wno-unused-parameter -MMD -MP
$(BUILD)/%_sm90a.o: %_sm90a.cu $(EMU_DEPS)
	@mkdir -p $(dir $@)
	$(NVCC_CMD) $(SM90A_FLAGS) -c $< -o $@

$(LIB): $(LIB_OBJ)
	@mkdir -p lib
	rm -f $@ && ar rcs $@ $^

$(BIN): $(TOOL_OBJ) $(LIB) $(LINK_DEPS)
	@mkdir -p bin
	$(CC) $(LDFLAGS) -o $@ $(TOOL_OBJ) $(LIB) $(LDLIBS)

# The tests link the command line's option parser too (tests/test_options.c).
$(TESTBIN): $(TEST_OBJ) $(BUILD)/tools/options.o $(LIB) $(LINK_DEPS)
	$(CC) $(LDFLAGS) -o $@ $(TEST_OBJ) $(BUILD)/tools/options.o $(LIB) $(LDLIBS)

# The search's Slurm launcher against a real single-node Slurm that
# tools/slurm/test-slurm.sh starts here (root; Debian's slurm-wlm and munge).
# Where the daemons cannot start it says why and reports "skipped" (status 0);
# a real failure fails.
.PHONY: test-slurm
test-slurm: $(BIN)
	@tools/slurm/test-slurm.sh; rc=$$?; \
	if [ $$rc = 77 ]; then echo "test-slurm: skipped (the line above says why)"; exit 0; fi; \
	exit $$rc

# The CPU suite. TEST_ARGS filters (e.g. TEST_ARGS=conv2d).
test: note $(TESTBIN) $(BIN)
	./$(TESTBIN) $(TEST_ARGS)

# The CUDA suite: every op case on the CUDA backend against the CPU reference.
test-gpu: note $(TESTBIN) $(BIN)
	BUDGIE_BIN=$(BIN) ./$(TESTBIN) --gpu $(TEST_ARGS)

clean:
	rm -rf build build-san build-tsan build-emu build-emu-san build-emu-tsan build-mutants build-fuzz lib bin

-include $(LIB_OBJ:.o=.d) $(TOOL_OBJ:.o=.d) $(TEST_OBJ:.o=.d)

# ---- the CUDA emulator (tools/emu/README.md, docs/emulator.md) ------------------
# `make test-emu` builds everything with EMU=1 into build-emu/ and runs the
# CUDA suite on the emulator under three schedules (forward threads with
# cp.async completing at the wait; reverse with early completion; seeded
# random; the model oracles under the forward one only), at the small test
# shapes (BG_TEST_SIZE=small); `make
# test-emu-full` at full size. `make emu-selftest` checks the PTX
# instructions against worked examples; `make test-emu-mutants` breaks the
# kernels on purpose and checks that the emulated suite notices every fault.
EMU_RT_SRC := $(sort $(wildcard tools/emu/rt/*.cpp))
# Under TSAN the runtime is not instrumented (its bookkeeping is no CUDA
# thread's): it only tells ThreadSanitizer about fibers and barriers.
EMU_RT_SAN := $(if $(filter 1,$(TSAN)),-DBGEMU_TSAN_HOOKS=1,$(SAN_FLAGS))
EMU_CXXFLAGS := -std=c++17 -O2 -g -Wall -Wextra -Wno-unused-parameter -fPIC -I$(CUDA_HOME)/include -MMD -MP $(EMU_RT_SAN)
ifeq ($(EMU),1)
EMU_RT_OBJ := $(EMU_RT_SRC:%.cpp=$(BUILD)/%.o) $(BUILD)/tools/emu/rt/fiber.o

$(EMU_REWRITE): tools/emu/rewrite.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -O2 -g -Wall -Wextra -D_GNU_SOURCE -o $@ $<

$(BUILD)/tools/emu/rt/%.o: tools/emu/rt/%.cpp
	@mkdir -p $(dir $@)
	$(CXX) $(EMU_CXXFLAGS) -c $< -o $@

$(BUILD)/tools/emu/rt/fiber.o: tools/emu/rt/fiber.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -O2 -g -Wall -Wextra -fPIC $(EMU_RT_SAN) -MMD -MP -c $< -o $@

$(EMU_RT): $(EMU_RT_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(EMU_NVRTC): tools/emu/rt/nvrtc.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -O2 -g -Wall -Wextra -fPIC -shared -I$(CUDA_HOME)/include \
	    -DBGEMU_NVCC='"$(abspath tools/emu/nvcc-emu)"' -DBGEMU_REWRITE='"$(abspath $(EMU_REWRITE))"' -o $@ $<

$(EMU_DIR)/selftest: tools/emu/selftest.cu $(EMU_DEPS) $(EMU_RT) $(EMU_NVRTC)
	$(NVCC_CMD) -std=c++17 -I. -MMD -MP $(foreach f,$(SAN_FLAGS),-Xcompiler $(f)) -c $< -o $(EMU_DIR)/selftest.o
	$(CXX) -o $@ $(EMU_DIR)/selftest.o $(EMU_RT) -ldl -rdynamic -lpthread $(SAN_FLAGS)

-include $(EMU_RT_OBJ:.o=.d)

# The self-test (against the hardware's results too, once a GPU recorded
# them), then the suite under each schedule; the closing line sums the runs.
EMU_SIZE ?= small
EMU_HW_FIXTURE := $(wildcard tools/emu/fixtures/hw-sm90.txt)
EMU_SELFTEST := ./$(EMU_DIR)/selftest $(if $(EMU_HW_FIXTURE),--fixture $(EMU_HW_FIXTURE),)
test-emu-run: note $(TESTBIN) $(BIN) $(EMU_DIR)/selftest
	$(EMU_SELFTEST)
	BUDGIE_BIN=$(BIN) BG_TEST_SIZE=$(EMU_SIZE) tools/emu/run-suite.sh ./$(TESTBIN) $(TEST_ARGS)

emu-selftest-run: $(EMU_DIR)/selftest
	$(EMU_SELFTEST)
endif

.PHONY: test-emu test-emu-full emu-selftest test-emu-mutants test-emu-run emu-selftest-run
test-emu:
	@$(MAKE) --no-print-directory EMU=1 test-emu-run
test-emu-full:
	@$(MAKE) --no-print-directory EMU=1 EMU_SIZE=full test-emu-run
emu-selftest:
	@$(MAKE) --no-print-directory EMU=1 emu-selftest-run
test-emu-mutants:
	tools/emu/mutants/run.sh

# ---- fuzzing (docs/fuzz.md; not part of `make test` or CI) ------------------
# `make fuzz` builds one libFuzzer harness per reader (tools/fuzz/fuzz_*.c)
# into build-fuzz/ with clang, ASan and UBSan, CPU-only, seeds a corpus, and
# runs each for FUZZ_SECONDS. FUZZ_ONLY picks harnesses (e.g. FUZZ_ONLY=pack).
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 30
FUZZ_ONLY    ?= safetensors idx cifar pack jpeg mads_params
FUZZ_OUT     := build-fuzz
FUZZ_CFLAGS  := -std=c11 -O1 -g -Wall -Wextra -Wno-unused-parameter -D_GNU_SOURCE -I. \
                -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_BASE    := engine/context.c engine/cpu_isa.c engine/status.c engine/alloc.c
FUZZ_SRC_safetensors := engine/safetensors.c engine/tensor.c engine/dtype.c
FUZZ_SRC_idx         := augment/read_idx.c augment/dataset.c
FUZZ_SRC_cifar       := augment/read_cifar.c augment/dataset.c
FUZZ_SRC_pack        := augment/pack.c augment/dataset.c
FUZZ_SRC_jpeg        := augment/jpeg_decode.c augment/resize.c augment/transforms.c augment/autoaugment.c
FUZZ_SRC_mads_params := search/batch/mads_params.c search/mads_problem.c
FUZZ_LIBS    := -ljansson -lturbojpeg -lz -lm
FUZZ_ST_SEED := $(addprefix tests/fixtures/ops/,reshape_pooled.safetensors radix_softmax_r1_c4.safetensors \
                  softmax_xent_ls0.safetensors add.safetensors concat2.safetensors)
FUZZ_JPG_SEED := $(wildcard tests/fixtures/augment/in_0.jpg .cache/cifar10/test/airplane/0000.jpg)

define FUZZ_template
$(FUZZ_OUT)/fuzz_$(1): tools/fuzz/fuzz_$(1).c tools/fuzz/fuzz_common.h $(FUZZ_BASE) $(FUZZ_SRC_$(1))
	@mkdir -p $(FUZZ_OUT)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $$@ $$< $(FUZZ_BASE) $(FUZZ_SRC_$(1)) $(FUZZ_LIBS)
endef
$(foreach h,safetensors idx cifar pack jpeg mads_params,$(eval $(call FUZZ_template,$(h))))

$(FUZZ_OUT)/make_corpus: tools/fuzz/make_corpus.c $(FUZZ_BASE) $(FUZZ_SRC_pack)
	@mkdir -p $(FUZZ_OUT)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $^ $(FUZZ_LIBS)

$(FUZZ_OUT)/seeds/.done: $(FUZZ_OUT)/make_corpus $(FUZZ_ST_SEED) $(FUZZ_JPG_SEED)
	./$(FUZZ_OUT)/make_corpus $(FUZZ_OUT)/seeds
	@mkdir -p $(FUZZ_OUT)/seeds/safetensors $(FUZZ_OUT)/seeds/jpeg
	cp $(FUZZ_ST_SEED) $(FUZZ_OUT)/seeds/safetensors/
	cp $(FUZZ_JPG_SEED) $(FUZZ_OUT)/seeds/jpeg/
	touch $@

.PHONY: fuzz fuzz-build
fuzz-build: $(addprefix $(FUZZ_OUT)/fuzz_,$(FUZZ_ONLY)) $(FUZZ_OUT)/seeds/.done

fuzz: fuzz-build
	@fail=; for h in $(FUZZ_ONLY); do \
	  mkdir -p $(FUZZ_OUT)/corpus/$$h $(FUZZ_OUT)/artifacts; \
	  echo "== fuzz_$$h for $(FUZZ_SECONDS) s (log: $(FUZZ_OUT)/fuzz_$$h.log)"; \
	  ./$(FUZZ_OUT)/fuzz_$$h -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
	    -artifact_prefix=$(FUZZ_OUT)/artifacts/$$h- $(FUZZ_OUT)/corpus/$$h $(FUZZ_OUT)/seeds/$$h \
	    >$(FUZZ_OUT)/fuzz_$$h.log 2>&1 || fail="$$fail $$h"; \
	  grep -E '^stat::number_of_executed_units|^stat::average_exec_per_sec|^#[0-9]+.*DONE' $(FUZZ_OUT)/fuzz_$$h.log; \
	done; \
	if [ -n "$$fail" ]; then echo "fuzz: FAILED:$$fail (see $(FUZZ_OUT)/artifacts/)"; exit 1; fi; echo "fuzz: all clean"
