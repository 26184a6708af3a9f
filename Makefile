# gmem: the README's commands. Each installs missing Debian packages first,
# then configures and builds out of tree with CMake.
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all deps build check check-asan check-tsan demo install clean format check-format

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
		ctest --output-on-failure -j 2 --timeout 900 -L threads

demo: build
	scripts/demo.sh $(BUILD)

install: build
	cmake --install $(BUILD)

format:
	git ls-files '*.c' '*.h' | xargs clang-format -i

check-format:
	scripts/check-format.sh

clean:
	rm -rf $(BUILD)
