# rsbus - GNU make.
#
#   make            build the tests and the examples (build/)
#   make test       compile checks (gcc, clang x c99, c11, RSBUS_STATIC; g++, clang++), then every test
#                   program plain, in variants, and under ASan+UBSan: one final line "N passed, N failed"
#   make demo       run examples/demo.c against a throwaway redis-server
#   make examples | cxx | sanitize | valgrind | bench | fuzz | clean
#
# A test is any tests/test_*.c (one file, its own main, ending with test_summary()): it is found, built
# and run without touching this file. Missing compilers, hiredis or redis-server are installed by
# tests/deps.sh when run as root on Debian/Ubuntu; otherwise it says what to install.

CC ?= cc
# the compiler of the ASan+UBSan builds (clang's UBSan also flags arithmetic on NULL); SAN_CC=gcc works too
SAN_CC ?= clang
BUILD = build
JSONTESTSUITE ?= ../shared/testdata/JSONTestSuite/test_parsing
export JSONTESTSUITE

# Evaluated once, when first used (after tests/deps.sh may have installed hiredis and pkg-config).
HIREDIS_CFLAGS = $(eval HIREDIS_CFLAGS := $(shell pkg-config --cflags hiredis 2>/dev/null))$(HIREDIS_CFLAGS)
HIREDIS_LIBS = $(eval HIREDIS_LIBS := $(shell pkg-config --libs hiredis 2>/dev/null || echo -lhiredis))$(HIREDIS_LIBS)

STD  = -std=c99
WARN = -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wstrict-prototypes -Wmissing-prototypes \
       -Wwrite-strings -Wcast-qual
TEST_CFLAGS    = $(STD) $(WARN) -Werror -g -O1 -I.
EXAMPLE_CFLAGS = $(STD) $(WARN) -Werror -O2 -I.
SAN_FLAGS      = -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
CXX_CHECK_FLAGS = -std=c++11 -Wall -Wextra -Werror -I.
LIBS = $(HIREDIS_LIBS) -lm

# Sanitizer errors abort, so the tests' SIGABRT handler stops their redis-servers.
ASAN_OPTIONS ?= abort_on_error=1
UBSAN_OPTIONS ?= abort_on_error=1:print_stacktrace=1
export ASAN_OPTIONS UBSAN_OPTIONS

TEST_SRCS    := $(sort $(wildcard tests/test_*.c))
TEST_HDRS    := $(wildcard tests/*.h)
TEST_BINS    := $(TEST_SRCS:tests/%.c=$(BUILD)/%)
SAN_BINS     := $(TEST_SRCS:tests/%.c=$(BUILD)/san/%)
EXAMPLE_SRCS := $(sort $(wildcard examples/*.c))
EXAMPLE_BINS := $(EXAMPLE_SRCS:examples/%.c=$(BUILD)/%)

# Variants: the same test source with other compile-time settings, run by make test too.
VARIANT_BINS := $(if $(wildcard tests/test_json.c),$(BUILD)/test_json_depth8) \
                $(if $(wildcard tests/test_unit.c),$(BUILD)/test_unit_static)

# Compile checks: built (and linked), not run; a failure stops make test.
C_CHECKS   := $(foreach c,gcc clang,$(foreach s,c99 c11,$(BUILD)/compile/$(c)-$(s) $(BUILD)/compile/$(c)-$(s)-static))
CXX_CHECKS := $(BUILD)/compile/g++-c++11 $(BUILD)/compile/clang++-c++11

RUN_TESTS = bash tests/run_tests.sh
DEPS = CC="$(CC)" SAN_CC="$(SAN_CC)" bash tests/deps.sh

.PHONY: all test demo examples cxx sanitize valgrind bench fuzz clean \
        build-all build-test build-tests build-examples build-cxx build-san build-demo build-bench build-snippets
.DELETE_ON_ERROR:

all:
	@$(DEPS) build
	@$(MAKE) --no-print-directory build-all

# deps first, then a fresh make (so pkg-config and the compilers it may have installed are seen),
# then one run_tests.sh over every program: its last line is the total for the whole of make test.
test:
	@$(DEPS) test
	@$(MAKE) --no-print-directory build-test
	@$(RUN_TESTS) $(TEST_BINS) $(VARIANT_BINS) $(SAN_BINS)

sanitize:
	@$(DEPS) sanitize
	@$(MAKE) --no-print-directory build-san
	@$(RUN_TESTS) $(SAN_BINS)

valgrind:
	@$(DEPS) valgrind
	@$(MAKE) --no-print-directory build-tests
	@TEST_WRAP="valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite" \
	    $(RUN_TESTS) $(TEST_BINS)

demo:
	@$(DEPS) demo
	@$(MAKE) --no-print-directory build-demo
	@bash examples/run_demo.sh $(BUILD)/demo

examples:
	@$(DEPS) build
	@$(MAKE) --no-print-directory build-examples

cxx:
	@$(DEPS) cxx
	@$(MAKE) --no-print-directory build-cxx

bench:
ifneq ($(wildcard tests/bench.c),)
	@$(DEPS) bench
	@$(MAKE) --no-print-directory build-bench
	$(BUILD)/bench
else
	@echo "bench: tests/bench.c does not exist yet"
endif

fuzz:
	@echo "fuzz: no fuzz targets yet"

clean:
	rm -rf $(BUILD)

# what the targets above build (": ;" keeps make from saying "Nothing to be done")
build-all: build-tests build-examples ; @:
build-tests: $(TEST_BINS) ; @:
build-examples: $(EXAMPLE_BINS) ; @:
build-cxx: $(CXX_CHECKS) ; @:
build-san: $(SAN_BINS) ; @:
build-demo: $(BUILD)/demo ; @:
build-bench: $(BUILD)/bench ; @:
build-test: $(C_CHECKS) $(CXX_CHECKS) $(TEST_BINS) $(VARIANT_BINS) $(SAN_BINS) $(EXAMPLE_BINS) build-snippets ; @:

# README.md's code blocks and the TL;DR of rsbus.h's manual, compiled with the tests' warnings;
# tests/test_docs.c runs them against a real redis-server.
build-snippets: | $(BUILD)
	@sh tests/extract_snippets.sh $(BUILD)/snippets
	@for f in $(BUILD)/snippets/*.c; do \
	    $(CC) $(STD) $(WARN) -Werror -O1 -I. $(HIREDIS_CFLAGS) "$$f" -o "$${f%.c}" $(LIBS) || exit 1; done

$(BUILD) $(BUILD)/san $(BUILD)/compile:
	mkdir -p $@

$(BUILD)/test_%: tests/test_%.c rsbus.h $(TEST_HDRS) | $(BUILD)
	$(CC) $(TEST_CFLAGS) $(HIREDIS_CFLAGS) $(CPPFLAGS) $(CFLAGS) $< -o $@ $(LDFLAGS) $(LIBS)

$(BUILD)/san/test_%: tests/test_%.c rsbus.h $(TEST_HDRS) | $(BUILD)/san
	$(SAN_CC) $(TEST_CFLAGS) $(SAN_FLAGS) $(HIREDIS_CFLAGS) $(CPPFLAGS) $(CFLAGS) $< -o $@ $(LDFLAGS) $(LIBS)

$(BUILD)/test_json_depth8: tests/test_json.c rsbus.h $(TEST_HDRS) | $(BUILD)
	$(CC) $(TEST_CFLAGS) -DRSBUS_JSON_MAX_DEPTH=8 $(HIREDIS_CFLAGS) $(CPPFLAGS) $(CFLAGS) $< -o $@ $(LDFLAGS) $(LIBS)

$(BUILD)/test_unit_static: tests/test_unit.c rsbus.h $(TEST_HDRS) | $(BUILD)
	$(CC) $(TEST_CFLAGS) -DRSBUS_STATIC $(HIREDIS_CFLAGS) $(CPPFLAGS) $(CFLAGS) $< -o $@ $(LDFLAGS) $(LIBS)

$(BUILD)/%: examples/%.c rsbus.h | $(BUILD)
	$(CC) $(EXAMPLE_CFLAGS) $(HIREDIS_CFLAGS) $(CPPFLAGS) $(CFLAGS) $< -o $@ $(LDFLAGS) $(LIBS)

$(BUILD)/bench: tests/bench.c rsbus.h $(TEST_HDRS) | $(BUILD)
	$(CC) $(STD) $(WARN) -Werror -O2 -g -I. $(HIREDIS_CFLAGS) $(CPPFLAGS) $(CFLAGS) $< -o $@ $(LDFLAGS) $(LIBS)

# $(BUILD)/compile/<compiler>-<std>[-static]
$(BUILD)/compile/%: tests/compile_c99.c rsbus.h | $(BUILD)/compile
	$(word 1,$(subst -, ,$*)) -std=$(word 2,$(subst -, ,$*)) $(WARN) -Werror \
	    $(if $(filter static,$(subst -, ,$*)),-DRSBUS_STATIC) -I. $(HIREDIS_CFLAGS) $< -o $@ $(LIBS)

$(BUILD)/compile/g++-c++11 $(BUILD)/compile/clang++-c++11: $(BUILD)/compile/%-c++11: tests/compile_cpp.cpp rsbus.h | $(BUILD)/compile
	$* $(CXX_CHECK_FLAGS) $(HIREDIS_CFLAGS) $< -o $@ $(LIBS)
