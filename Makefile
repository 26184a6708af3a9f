# gmem: the README's commands. Each installs missing Debian packages first,
# then configures and builds out of tree with CMake.
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all deps build check demo install clean format check-format

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
