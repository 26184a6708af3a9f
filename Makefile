# gmem: the README's commands. Each installs missing Debian packages first,
# then configures and builds out of tree with CMake.
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all deps build check check-asan check-tsan demo install clean format check-format bench fuzz

all: build

deps:
	@scripts/install-deps.sh

$(BUILD)/CMakeCache.txt: | deps
	cmake -S . -B $(BUILD) $(CMAKE_FLAGS)

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

check: build
	scripts/check-format.sh
	cd $(BUILD) && ctest --output-on-failure -j 2 --timeout 600

# The same tests under AddressSanitizer + UBSan, and ThreadSanitizer.
check-asan: deps
	cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DGMEM_SANITIZE=address $(CMAKE_FLAGS)
	cmake --build build-asan -j $(JOBS)
	cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		ctest --output-on-failure -j 2 --timeout 900 -LE nosan

check-tsan: deps
	cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DGMEM_SANITIZE=thread $(CMAKE_FLAGS)
	cmake --build build-tsan -j $(JOBS)
	cd build-tsan && TSAN_OPTIONS=halt_on_error=1 \
		ctest --output-on-failure -j 2 --timeout 900 -L "store|threads"

demo: build
	scripts/demo.sh $(BUILD)

install: build
	cmake --install $(BUILD)

# Benchmarks against the physical floor (docs/performance.md): an optimised
# build in build-bench/, results in $(BUILD)/bench/results.json, then
# bench/check fails if a target is missed. QUICK=1: under three minutes.
BENCH_BUILD ?= build-bench
bench: deps
	cmake -S . -B $(BENCH_BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)
	cmake --build $(BENCH_BUILD) -j $(JOBS) --target bench-all
	mkdir -p $(BUILD)/bench
	$(BENCH_BUILD)/bench/gmem-bench $(if $(QUICK),--quick) \
		--out $(BUILD)/bench/results.json
	bench/check $(BUILD)/bench/results.json

# libFuzzer targets (clang) in build-fuzz/, each run for FUZZ_SECONDS.
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
fuzz: deps
	CC=clang cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGMEM_FUZZ=ON $(CMAKE_FLAGS)
	cmake --build $(FUZZ_BUILD) -j $(JOBS) --target fuzz-all
	fuzz/run.sh $(FUZZ_BUILD)/fuzz $(FUZZ_SECONDS)

format:
	git ls-files '*.c' '*.h' | xargs clang-format -i

check-format:
	scripts/check-format.sh

clean:
	rm -rf $(BUILD)
