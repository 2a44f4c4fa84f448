# rsbus - GNU make.
#
#   make            build the tests and the examples (build/)
#   make test       compile checks (gcc, clang x c99, c11, RSBUS_STATIC; g++, clang++), then every test
#                   program plain, in variants, and under ASan+UBSan: one final line "N passed, N failed"
#   make test-hiredis1  the same against hiredis 1.2.0 with TLS (-DRSBUS_TLS), built from source in
#                   build/hiredis1/ (needs npm and libssl-dev): see its section at the end
#   make test-cross the tests built with Debian's cross compilers for armhf (32-bit ARM) and s390x
#                   (big-endian), run under qemu-user against a native redis-server: see its section
#   make size       code and data sizes of the full implementation, a publish-only gateway and a worker
#                   (build switches, -Os, gc-sections), and the heap a gateway bus holds
#   make demo       run examples/demo.c against a throwaway redis-server
#   make demo-gateway  examples/gateway.c fed readings while its redis-server is killed and restarted
#   make demo-cluster  a throwaway 3+3 Redis Cluster, 8 partitions, two workers, a master killed mid-way
#   make chaos-failover  Sentinel failovers under load (master kills, paused replicas), lost 0 with WAIT
#   make demo-mem   the same demo on mem:// (RSBUS_URL=mem://demo): no redis-server at all
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
FUZZ_CC ?= clang
FUZZ_SECONDS ?= 60
FUZZ_NAMES := $(sort $(patsubst tests/fuzz_%.c,%,$(wildcard tests/fuzz_*.c)))
FUZZ_FLAGS = -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
export JSONTESTSUITE

# Evaluated once, when first used (after tests/deps.sh may have installed hiredis and pkg-config).
HIREDIS_CFLAGS = $(eval HIREDIS_CFLAGS := $(shell pkg-config --cflags hiredis 2>/dev/null))$(HIREDIS_CFLAGS)
HIREDIS_LIBS = $(eval HIREDIS_LIBS := $(shell pkg-config --libs hiredis 2>/dev/null || echo -lhiredis))$(HIREDIS_LIBS)

# libmicrohttpd (Debian libmicrohttpd-dev) gives rsbusctl its "exporter" command (RSBUSCTL_EXPORTER);
# where pkg-config does not find it, rsbusctl is built without that command and tests/test_exporter.c
# skips what needs it, saying so.
MHD_CFLAGS = $(eval MHD_CFLAGS := $(shell pkg-config --exists libmicrohttpd 2>/dev/null && \
                 echo -DRSBUSCTL_EXPORTER $$(pkg-config --cflags libmicrohttpd)))$(MHD_CFLAGS)
MHD_LIBS = $(eval MHD_LIBS := $(shell pkg-config --libs libmicrohttpd 2>/dev/null))$(MHD_LIBS)

STD  = -std=c99
WARN = -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wstrict-prototypes -Wmissing-prototypes \
       -Wwrite-strings -Wcast-qual
TEST_CFLAGS    = $(STD) $(WARN) -Werror -g -O1 -I.
EXAMPLE_CFLAGS = $(STD) $(WARN) -Werror -O2 -I.
SAN_FLAGS      = -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
CXX_CHECK_FLAGS = -std=c++11 -Wall -Wextra -Werror -I.
# -pthread: mem:// (the in-process bus) uses POSIX threads (in libc itself from glibc 2.34)
LIBS = $(HIREDIS_LIBS) -lm -pthread

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
                $(if $(wildcard tests/test_unit.c),$(BUILD)/test_unit_static) \
                $(if $(wildcard tests/chaos.c),$(BUILD)/chaos_short)

# Under valgrind memcheck too (no errors, no definite leaks): the allocation-failure, hostile-server and
# unit tests. build/vg/NAME is a two-line script that runs build/NAME under valgrind.
VG_BINS := $(foreach t,test_alloc_fail test_hostile test_unit,$(if $(wildcard tests/$(t).c),$(BUILD)/vg/$(t)))
VALGRIND = valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite --child-silent-after-fork=yes

# Build switches (RSBUS_NO_<PART>, rsbus.h's CONFIG MACROS): SW_<part> are the flags of one, SW_all of all.
SW_PARTS   := spool schema dedupe admin cluster mem
$(foreach p,$(SW_PARTS),$(eval SW_$(p) := -DRSBUS_NO_$(shell echo $(p) | tr a-z A-Z)))
SW_all     := $(foreach p,$(SW_PARTS),$(SW_$(p)))
# the set a publish-only gateway builds with (everything but the spool switched off)
SW_gateway := $(filter-out $(SW_spool),$(SW_all))

# Compile checks: built (and linked), not run; a failure stops make test. A name's words after the
# compiler and the standard: "static" adds -DRSBUS_STATIC, "no<part>" adds SW_<part> (noall: every switch).
C_CHECKS   := $(foreach c,gcc clang,$(foreach s,c99 c11,$(BUILD)/compile/$(c)-$(s) $(BUILD)/compile/$(c)-$(s)-static)) \
              $(foreach c,gcc clang,$(foreach p,$(SW_PARTS) all,$(BUILD)/compile/$(c)-c99-no$(p)) \
                                    $(BUILD)/compile/$(c)-c11-noall-static)
CXX_CHECKS := $(BUILD)/compile/g++-c++11 $(BUILD)/compile/clang++-c++11 \
              $(BUILD)/compile/g++-c++11-noall $(BUILD)/compile/clang++-c++11-noall

# The switch matrix's runs: PROGRAM:PART is tests/PROGRAM.c built with SW_PART into build/sw/PROGRAM-noPART
# and run by make test. With every switch: the unit and bus tests; each switch alone (the compile checks
# above build them all): the test program its absence changes (RSBUS_NO_CLUSTER: test_partitions, which then
# checks that partitions are refused; RSBUS_NO_MEM: test_mem); the gateway build: test_gateway against
# examples/gateway.c built with SW_gateway (build/sw/test_gateway-nogateway runs it).
SW_RUNS := test_unit:all test_bus:all test_spool:spool test_schema:schema test_dedupe:dedupe test_bus:admin \
           test_partitions:cluster test_mem:mem
SW_BINS := $(foreach r,$(SW_RUNS),$(if $(wildcard tests/$(word 1,$(subst :, ,$(r))).c),\
               $(BUILD)/sw/$(word 1,$(subst :, ,$(r)))-no$(word 2,$(subst :, ,$(r))))) \
           $(if $(wildcard tests/test_gateway.c),$(BUILD)/sw/test_gateway-nogateway)

# The in-process bus (mem://): MEM_PROGS run a second time with RSBUS_TEST_TRANSPORT=mem, on mem:// instead of
# their redis-server, with the same expectations (tests/bus_util.h lists the tests that need a real server,
# and why); build/mem/NAME is a two-line script that runs build/NAME so, build/mem/san/NAME the ASan+UBSan
# build. tests/test_mem.c (threads, blocking reads, namespaces, Redis's error texts) runs plain, under
# ASan+UBSan like every test, and under ThreadSanitizer (TSAN_CC, build/tsan/test_mem).
MEM_PROGS    := $(foreach t,test_bus test_dedupe test_schema test_interop test_alloc_fail test_partitions,$(if $(wildcard tests/$(t).c),$(t)))
MEM_BINS     := $(MEM_PROGS:%=$(BUILD)/mem/%) $(foreach t,test_bus test_dedupe,$(if $(wildcard tests/$(t).c),$(BUILD)/mem/san/$(t)))
TSAN_CC      ?= clang
TSAN_BINS    := $(if $(wildcard tests/test_mem.c),$(BUILD)/tsan/test_mem)

RUN_TESTS = bash tests/run_tests.sh
DEPS = CC="$(CC)" SAN_CC="$(SAN_CC)" bash tests/deps.sh

.PHONY: test-cluster-long demo-cluster
.PHONY: all test demo examples cxx sanitize valgrind bench fuzz chaos chaos-failover clean \
        build-all build-test build-tests build-examples build-cxx build-san build-demo build-bench build-snippets build-fuzz
.DELETE_ON_ERROR:

all:
	@$(DEPS) build
	@$(MAKE) --no-print-directory build-all

# deps first, then a fresh make (so pkg-config and the compilers it may have installed are seen),
# then one run_tests.sh over every program: its last line is the total for the whole of make test.
test:
	@$(DEPS) test
	@bash tests/interop/setup.sh $(BUILD)
	@$(MAKE) --no-print-directory build-test
	@$(RUN_TESTS) $(TEST_BINS) $(VARIANT_BINS) $(MEM_BINS) $(TSAN_BINS) $(SW_BINS) $(SAN_BINS) $(VG_BINS)

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

# The chaos run (tests/chaos.c): 60 s of publishers, consumers, SIGKILLs, CLIENT KILLs, freezes and two
# AOF restarts, then proof that no acknowledged event was lost; then 30 s more with the publishers
# spooling offline and the consumers deduplicating; then 30 s on a 3+3 Redis Cluster (--cluster: the
# stream's master killed and a replica promoted, its slots resharded, under the same faults). make test
# runs a 15 s build of the first.
chaos:
	@$(DEPS) test
	@$(MAKE) --no-print-directory $(BUILD)/chaos $(BUILD)/chaos_spool_dedupe $(BUILD)/chaos_cluster
	@$(RUN_TESTS) $(BUILD)/chaos $(BUILD)/chaos_spool_dedupe $(BUILD)/chaos_cluster

$(BUILD)/chaos_cluster: $(BUILD)/chaos
	@printf '#!/bin/sh\nexec $(CURDIR)/$(BUILD)/chaos --seconds 30 --cluster "$$@"\n' > $@
	@chmod +x $@

# The long forms of the cluster runs (CI runs the short ones): tests/test_cluster.c with 20000 events per
# load run, and 120 s of chaos on a cluster.
test-cluster-long:
	@$(DEPS) test
	@$(MAKE) --no-print-directory $(BUILD)/test_cluster $(BUILD)/chaos
	@RSBUS_CLUSTER_LONG=1 $(RUN_TESTS) $(BUILD)/test_cluster
	@$(BUILD)/chaos --seconds 120 --cluster

# Failovers through Sentinel (tests/test_sentinel.c's long form; make test runs 3 rounds): a master, two
# replicas and three sentinels; CHAOS_FAILOVER_ROUNDS rounds of a publisher and a consumer in rsbus_run
# while the master is SIGKILLed, cycling through: WAIT 1; no WAIT with both replicas paused and cut off
# (reported only: the contrast); WAIT 1 with both paused; WAIT 1 with one paused; no WAIT. Verdict: with
# WAIT every publish that returned RSBUS_OK is in the new master's stream and consumed; each round prints
# its counts and the outage (kill to the first write, the first RSBUS_OK, the first consumed event).
CHAOS_FAILOVER_ROUNDS ?= 12
chaos-failover:
	@$(DEPS) chaos-failover
	@$(MAKE) --no-print-directory $(BUILD)/test_sentinel
	@printf '#!/bin/sh\nexec $(CURDIR)/$(BUILD)/test_sentinel --rounds $(CHAOS_FAILOVER_ROUNDS) "$$@"\n' > $(BUILD)/chaos_failover
	@chmod +x $(BUILD)/chaos_failover
	@$(RUN_TESTS) $(BUILD)/chaos_failover

$(BUILD)/chaos_spool_dedupe: $(BUILD)/chaos
	@printf '#!/bin/sh\nexec $(CURDIR)/$(BUILD)/chaos --seconds 30 --spool --dedupe "$$@"\n' > $@
	@chmod +x $@

$(BUILD)/chaos: tests/chaos.c rsbus.h $(TEST_HDRS) | $(BUILD)
	$(CC) $(TEST_CFLAGS) $(HIREDIS_CFLAGS) $(CPPFLAGS) $(CFLAGS) $< -o $@ $(LDFLAGS) $(LIBS)

$(BUILD)/chaos_short: tests/chaos.c rsbus.h $(TEST_HDRS) | $(BUILD)
	$(CC) $(TEST_CFLAGS) -DCHAOS_DEFAULT_SECONDS=15 $(HIREDIS_CFLAGS) $(CPPFLAGS) $(CFLAGS) $< -o $@ $(LDFLAGS) $(LIBS)

# libFuzzer targets tests/fuzz_NAME.c (clang -fsanitize=fuzzer: Debian/Ubuntu libclang-rt-NN-dev, Debian 12:
# libclang-rt-14-dev). Each runs FUZZ_SECONDS over a fresh copy of tests/corpus/NAME in $(BUILD)/corpus/NAME; a
# crash, leak, timeout, OOM or failed invariant fails make fuzz and leaves the input in $(BUILD)/fuzz-NAME-crash-*.
fuzz:
	@$(DEPS) test
	@mkdir -p $(BUILD)
	@printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n);\nint LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { return d && n > 1 && !d[0]; }\n' \
	    > $(BUILD)/fuzz-check.c
	@$(FUZZ_CC) -fsanitize=fuzzer $(BUILD)/fuzz-check.c -o $(BUILD)/fuzz-check >/dev/null 2>&1 || { \
	    echo "fuzz: '$(FUZZ_CC) -fsanitize=fuzzer' cannot link libFuzzer: install libclang-rt-NN-dev for your clang-NN" \
	         "(Debian 12: libclang-rt-14-dev; elsewhere LLVM's compiler-rt)"; exit 1; }
	@$(MAKE) --no-print-directory build-fuzz
	@for t in $(FUZZ_NAMES); do \
	    rm -rf $(BUILD)/corpus/$$t && mkdir -p $(BUILD)/corpus/$$t && cp tests/corpus/$$t/* $(BUILD)/corpus/$$t/ || exit 1; \
	    echo "== fuzz_$$t: $(FUZZ_SECONDS) s over $(BUILD)/corpus/$$t"; \
	    if $(BUILD)/fuzz_$$t -max_len=4096 -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 \
	           -print_final_stats=1 -artifact_prefix=$(BUILD)/fuzz-$$t- $(BUILD)/corpus/$$t > $(BUILD)/fuzz-$$t.log 2>&1; then \
	        grep -E '(DONE|stat::number_of_executed_units|stat::peak_rss_mb)' $(BUILD)/fuzz-$$t.log; \
	    else \
	        tail -n 40 $(BUILD)/fuzz-$$t.log; \
	        echo "fuzz_$$t: FAILED (log $(BUILD)/fuzz-$$t.log; input $$(ls $(BUILD)/fuzz-$$t-* 2>/dev/null | head -n 1))"; \
	        exit 1; \
	    fi; \
	done; \
	echo "fuzz: $(FUZZ_NAMES): no failure in $(FUZZ_SECONDS) s each"

build-fuzz: $(FUZZ_NAMES:%=$(BUILD)/fuzz_%) ; @:

$(BUILD)/fuzz_%: tests/fuzz_%.c rsbus.h | $(BUILD)
	$(FUZZ_CC) $(STD) $(WARN) -Werror $(FUZZ_FLAGS) -I. $(HIREDIS_CFLAGS) $(CPPFLAGS) $(CFLAGS) $< -o $@ $(LDFLAGS) $(LIBS)

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
build-test: $(C_CHECKS) $(CXX_CHECKS) $(TEST_BINS) $(VARIANT_BINS) $(MEM_BINS) $(TSAN_BINS) $(SW_BINS) $(SAN_BINS) $(VG_BINS) $(EXAMPLE_BINS) \
            build-snippets ; @:

$(BUILD)/mem/san/%: $(BUILD)/san/% | $(BUILD)
	@mkdir -p $(BUILD)/mem/san
	@printf '#!/bin/sh\nRSBUS_TEST_TRANSPORT=mem exec $(CURDIR)/$(BUILD)/san/$* "$$@"\n' > $@
	@chmod +x $@
$(BUILD)/mem/%: $(BUILD)/% | $(BUILD)
	@mkdir -p $(BUILD)/mem
	@printf '#!/bin/sh\nRSBUS_TEST_TRANSPORT=mem exec $(CURDIR)/$(BUILD)/$* "$$@"\n' > $@
	@chmod +x $@
$(BUILD)/tsan/%: tests/%.c rsbus.h $(TEST_HDRS) | $(BUILD)
	@mkdir -p $(BUILD)/tsan
	$(TSAN_CC) $(TEST_CFLAGS) -fsanitize=thread $(HIREDIS_CFLAGS) $(CPPFLAGS) $(CFLAGS) $< -o $@ $(LDFLAGS) $(LIBS)

$(BUILD)/vg/%: $(BUILD)/% | $(BUILD)
	@mkdir -p $(BUILD)/vg
	@printf '#!/bin/sh\nexec $(VALGRIND) $(CURDIR)/$(BUILD)/$* "$$@"\n' > $@
	@chmod +x $@

# README.md's code blocks and the TL;DR of rsbus.h's manual, compiled with the tests' warnings;
# tests/test_docs.c runs them against a real redis-server.
build-snippets: | $(BUILD)
	@sh tests/extract_snippets.sh $(BUILD)/snippets
	@for f in $(BUILD)/snippets/*.c; do \
	    $(CC) $(STD) $(WARN) -Werror -O1 -I. $(HIREDIS_CFLAGS) "$$f" -o "$${f%.c}" $(LIBS) || exit 1; done

$(BUILD) $(BUILD)/san $(BUILD)/compile $(BUILD)/sw:
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
	$(CC) $(EXAMPLE_CFLAGS) $(HIREDIS_CFLAGS) $(CTL_CFLAGS) $(CPPFLAGS) $(CFLAGS) $< -o $@ $(LDFLAGS) $(LIBS) $(CTL_LIBS)

# rsbusctl with its exporter when libmicrohttpd is there (empty for the other examples)
$(BUILD)/rsbusctl $(BUILD)/san/rsbusctl: CTL_CFLAGS = $(MHD_CFLAGS)
$(BUILD)/rsbusctl $(BUILD)/san/rsbusctl: CTL_LIBS = $(MHD_LIBS)

# test_rsbusctl and test_exporter run the tool next to them: the sanitized tests run a sanitized tool
$(BUILD)/san/rsbusctl: examples/rsbusctl.c rsbus.h | $(BUILD)/san
	$(SAN_CC) $(EXAMPLE_CFLAGS) $(SAN_FLAGS) $(HIREDIS_CFLAGS) $(CTL_CFLAGS) $(CPPFLAGS) $(CFLAGS) $< -o $@ $(LDFLAGS) $(LIBS) $(CTL_LIBS)
$(BUILD)/test_rsbusctl $(BUILD)/test_exporter: $(BUILD)/rsbusctl
$(BUILD)/san/test_rsbusctl $(BUILD)/san/test_exporter: $(BUILD)/san/rsbusctl
# test_gateway runs examples/gateway.c the same way
$(BUILD)/san/gateway: examples/gateway.c rsbus.h | $(BUILD)/san
	$(SAN_CC) $(EXAMPLE_CFLAGS) $(SAN_FLAGS) $(HIREDIS_CFLAGS) $(CPPFLAGS) $(CFLAGS) $< -o $@ $(LDFLAGS) $(LIBS)
$(BUILD)/test_gateway: $(BUILD)/gateway
$(BUILD)/san/test_gateway: $(BUILD)/san/gateway

# the switch matrix (SW_RUNS above)
define SW_RULE
$(BUILD)/sw/$(1)-no$(2): tests/$(1).c rsbus.h $(TEST_HDRS) | $(BUILD)/sw
	$$(CC) $$(TEST_CFLAGS) $$(SW_$(2)) $$(HIREDIS_CFLAGS) $$(CPPFLAGS) $$(CFLAGS) $$< -o $$@ $$(LDFLAGS) $$(LIBS)
endef
$(foreach r,$(SW_RUNS),$(eval $(call SW_RULE,$(word 1,$(subst :, ,$(r))),$(word 2,$(subst :, ,$(r))))))
$(BUILD)/sw/gateway-nogateway: examples/gateway.c rsbus.h | $(BUILD)/sw
	$(CC) $(EXAMPLE_CFLAGS) $(SW_gateway) $(HIREDIS_CFLAGS) $(CPPFLAGS) $(CFLAGS) $< -o $@ $(LDFLAGS) $(LIBS)
$(BUILD)/sw/test_gateway-nogateway: $(BUILD)/test_gateway $(BUILD)/sw/gateway-nogateway | $(BUILD)/sw
	@printf '#!/bin/sh\nexec $(CURDIR)/$(BUILD)/test_gateway $(CURDIR)/$(BUILD)/sw/gateway-nogateway "$$@"\n' > $@
	@chmod +x $@

$(BUILD)/bench: tests/bench.c rsbus.h $(TEST_HDRS) | $(BUILD)
	$(CC) $(STD) $(WARN) -Werror -O2 -g -I. $(HIREDIS_CFLAGS) $(CPPFLAGS) $(CFLAGS) $< -o $@ $(LDFLAGS) $(LIBS)

# $(BUILD)/compile/<compiler>-<std>[-static][-no<part>]
SW_FLAGS_OF = $(foreach w,$(filter no%,$(subst -, ,$(1))),$(SW_$(w:no%=%)))
$(BUILD)/compile/%: tests/compile_c99.c rsbus.h | $(BUILD)/compile
	$(word 1,$(subst -, ,$*)) -std=$(word 2,$(subst -, ,$*)) $(WARN) -Werror \
	    $(if $(filter static,$(subst -, ,$*)),-DRSBUS_STATIC) $(call SW_FLAGS_OF,$*) -I. $(HIREDIS_CFLAGS) $< -o $@ $(LIBS)

$(BUILD)/compile/g++-c++11 $(BUILD)/compile/clang++-c++11: $(BUILD)/compile/%-c++11: tests/compile_cpp.cpp rsbus.h | $(BUILD)/compile
	$* $(CXX_CHECK_FLAGS) $(HIREDIS_CFLAGS) $< -o $@ $(LIBS)
$(BUILD)/compile/g++-c++11-noall $(BUILD)/compile/clang++-c++11-noall: $(BUILD)/compile/%-c++11-noall: tests/compile_cpp.cpp rsbus.h | $(BUILD)/compile
	$* $(CXX_CHECK_FLAGS) $(SW_all) $(HIREDIS_CFLAGS) $< -o $@ $(LIBS)

# ---- make size: what an embedded gateway carries (tests/size.sh says how each figure is made) ----------
.PHONY: size demo-gateway demo-mem
# ---- make demo-mem: examples/demo.c on the in-process bus, switched by RSBUS_URL alone -------------------
demo-mem:
	@$(DEPS) build
	@$(MAKE) --no-print-directory build-demo
	RSBUS_URL=mem://demo $(BUILD)/demo

size:
	@$(DEPS) demo
	@CC="$(CC)" bash tests/size.sh $(BUILD)

# ---- make demo-gateway: examples/gateway.c rides out a Redis restart with nothing lost ----------------
# A throwaway 3+3 Redis Cluster, a stream in 8 partitions, two workers, a master killed mid-way
# (examples/run_cluster_demo.sh).
demo-cluster:
	@$(DEPS) demo
	@$(MAKE) --no-print-directory $(BUILD)/publisher $(BUILD)/worker $(BUILD)/rsbusctl
	@bash examples/run_cluster_demo.sh $(BUILD)

demo-gateway:
	@$(DEPS) demo
	@$(MAKE) --no-print-directory $(BUILD)/gateway
	@bash examples/run_gateway_demo.sh $(BUILD)/gateway

# ---- make test-hiredis1: the second lane, hiredis 1.2.0 with TLS ----------------------------------------
# Debian 12 has hiredis 0.14.1 only. tests/hiredis1.sh builds hiredis 1.2.0 with USE_SSL=1 (static
# libhiredis.a and libhiredis_ssl.a, headers as <hiredis/...>) from the C sources the npm package
# redis-fast-driver@2.2.6 carries in deps/hiredis, into build/hiredis1/ (once; never committed). Against
# it, with -DRSBUS_TLS, into build/h1/: the compile checks (gcc, clang x c99, c11, RSBUS_STATIC; g++,
# clang++) and README's C blocks, built, not run; every tests/test_*.c and every example, built and run
# (test_tls.c makes its CA and certificates with openssl and runs redis-servers on TLS ports), and
# test_tls, test_bus and test_faults under ASan+UBSan, and test_tls without -DRSBUS_TLS (hiredis 1.x
# without TLS). One final line "N passed, N failed".
# test_docs is built but not run here: it runs the snippets and tools of build/, make test's lane.
H1          = $(BUILD)/h1
H1_PREFIX   = $(BUILD)/hiredis1/prefix
H1_STAMP    = $(H1_PREFIX)/.built
H1_CFLAGS   = -DRSBUS_TLS -I$(H1_PREFIX)/include
H1_LIBS     = $(H1_PREFIX)/lib/libhiredis_ssl.a $(H1_PREFIX)/lib/libhiredis.a -lssl -lcrypto -lm -pthread
H1_TEST_BINS    := $(TEST_SRCS:tests/%.c=$(H1)/%)
H1_EXAMPLE_BINS := $(EXAMPLE_SRCS:examples/%.c=$(H1)/%)
# under ASan+UBSan too: the programs whose traffic goes through hiredis 1.2's reader and TLS layer
H1_SAN_BINS     := $(patsubst tests/%.c,$(H1)/san/%,$(wildcard tests/test_tls.c tests/test_bus.c tests/test_faults.c))
H1_C_CHECKS     := $(foreach c,gcc clang,$(foreach s,c99 c11,$(H1)/compile/$(c)-$(s) $(H1)/compile/$(c)-$(s)-static))
H1_CXX_CHECKS   := $(H1)/compile/g++-c++11 $(H1)/compile/clang++-c++11
# hiredis 1.2 without -DRSBUS_TLS (a user's hiredis 1.x without TLS): rediss:// must say how to get TLS
H1_NOTLS_BINS   := $(patsubst tests/%.c,$(H1)/notls/%,$(wildcard tests/test_tls.c))
# test_bus on mem:// too: the in-process bus feeds hiredis 1.2's reader through a socketless context
H1_MEM_BINS     := $(patsubst tests/%.c,$(H1)/mem/%,$(wildcard tests/test_bus.c))
H1_RUN          := $(filter-out $(H1)/test_docs,$(H1_TEST_BINS)) $(H1_SAN_BINS) $(H1_NOTLS_BINS) $(H1_MEM_BINS)

.PHONY: test-hiredis1 build-hiredis1 build-h1-snippets

test-hiredis1:
	@$(DEPS) hiredis1
	@CC="$(CC)" bash tests/hiredis1.sh $(BUILD)
	@$(MAKE) --no-print-directory build-hiredis1
	@$(RUN_TESTS) $(H1_RUN)

build-hiredis1: $(H1_C_CHECKS) $(H1_CXX_CHECKS) $(H1_TEST_BINS) $(H1_EXAMPLE_BINS) $(H1_SAN_BINS) $(H1_NOTLS_BINS) $(H1_MEM_BINS) \
                build-h1-snippets ; @:

$(H1_STAMP):
	@CC="$(CC)" bash tests/hiredis1.sh $(BUILD)

$(H1) $(H1)/san $(H1)/notls $(H1)/compile:
	mkdir -p $@
$(H1_MEM_BINS): $(H1)/mem/%: $(H1)/%
	@mkdir -p $(H1)/mem
	@printf '#!/bin/sh\nRSBUS_TEST_TRANSPORT=mem exec $(CURDIR)/$(H1)/$* "$$@"\n' > $@
	@chmod +x $@

build-h1-snippets: $(H1_STAMP) | $(H1)
	@sh tests/extract_snippets.sh $(H1)/snippets
	@for f in $(H1)/snippets/*.c; do \
	    $(CC) $(STD) $(WARN) -Werror -O1 -I. $(H1_CFLAGS) "$$f" -o "$${f%.c}" $(H1_LIBS) || exit 1; done

$(H1_TEST_BINS): $(H1)/%: tests/%.c rsbus.h $(TEST_HDRS) $(H1_STAMP) | $(H1)
	$(CC) $(TEST_CFLAGS) $(H1_CFLAGS) $(CPPFLAGS) $(CFLAGS) $< -o $@ $(LDFLAGS) $(H1_LIBS)

$(H1_SAN_BINS): $(H1)/san/%: tests/%.c rsbus.h $(TEST_HDRS) $(H1_STAMP) | $(H1)/san
	$(SAN_CC) $(TEST_CFLAGS) $(SAN_FLAGS) $(H1_CFLAGS) $(CPPFLAGS) $(CFLAGS) $< -o $@ $(LDFLAGS) $(H1_LIBS)

$(H1_NOTLS_BINS): $(H1)/notls/%: tests/%.c rsbus.h $(TEST_HDRS) $(H1_STAMP) | $(H1)/notls
	$(CC) $(TEST_CFLAGS) -I$(H1_PREFIX)/include $(CPPFLAGS) $(CFLAGS) $< -o $@ $(LDFLAGS) $(H1_PREFIX)/lib/libhiredis.a -lm -pthread

$(H1_EXAMPLE_BINS): $(H1)/%: examples/%.c rsbus.h $(H1_STAMP) | $(H1)
	$(CC) $(EXAMPLE_CFLAGS) $(H1_CFLAGS) $(CTL_CFLAGS) $(CPPFLAGS) $(CFLAGS) $< -o $@ $(LDFLAGS) $(H1_LIBS) $(CTL_LIBS)
$(H1)/rsbusctl: CTL_CFLAGS = $(MHD_CFLAGS)
$(H1)/rsbusctl: CTL_LIBS = $(MHD_LIBS)
$(H1)/test_rsbusctl $(H1)/test_exporter: $(H1)/rsbusctl

# $(H1)/compile/<compiler>-<std>[-static]
$(H1_C_CHECKS): $(H1)/compile/%: tests/compile_c99.c rsbus.h $(H1_STAMP) | $(H1)/compile
	$(word 1,$(subst -, ,$*)) -std=$(word 2,$(subst -, ,$*)) $(WARN) -Werror \
	    $(if $(filter static,$(subst -, ,$*)),-DRSBUS_STATIC) -I. $(H1_CFLAGS) $< -o $@ $(H1_LIBS)

$(H1_CXX_CHECKS): $(H1)/compile/%-c++11: tests/compile_cpp.cpp rsbus.h $(H1_STAMP) | $(H1)/compile
	$* $(CXX_CHECK_FLAGS) $(H1_CFLAGS) $< -o $@ $(H1_LIBS)
$(H1)/test_gateway: $(H1)/gateway

# ---- make test-cross: 32-bit ARM and big-endian s390x, under qemu-user -----------------------------------
# Debian's cross compilers (gcc-arm-linux-gnueabihf, gcc-s390x-linux-gnu, with libc6-dev-ARCH-cross) build
# the tests against Debian's multiarch hiredis of that architecture (libhiredis-dev:armhf / :s390x, its
# libhiredis.a), into build/cross/ARCH/; qemu-arm / qemu-s390x run them against the native redis-servers
# the tests start themselves (a guest's execve of the native redis-server runs it natively). The guest's
# loader and libc are the multiarch ones libhiredis-dev:ARCH brings (/lib/ld-linux-armhf.so.3,
# /lib/ld64.so.1), so qemu runs without -L: with -L /usr/TRIPLET the cross ld.so would load the multiarch
# libc.so.6 of another glibc build and every program would abort. build/cross/ARCH/run/NAME is a two-line
# script that runs build/cross/ARCH/NAME under qemu (tests/run_tests.sh runs those).
#   CROSS_TESTS   what runs under emulation, chosen by what it proves on a 32-bit and a big-endian CPU:
#                 the unit, JSON (and JSONTestSuite: JSONTESTSUITE=...) and URL parsers, schemas, the spool
#                 (its file format and offsets), dedupe, the bus on a real server, the gateway example, and
#                 partitions (the slot hash on a 32-bit and a big-endian CPU, routing, the merged DLQ),
#                 and the in-process bus (test_mem: its answers compared with the native redis-server's)
#   CROSS_FULL=1  adds the fault, hostile-reply, allocation-failure, security and rsbusctl tests (about 3 more
#                 minutes). Not test_harness: it tests the tests' server handling, and a redis-server started
#                 by an emulated process does not get PR_SET_PDEATHSIG's signal when qemu is SIGKILLed
# and, per architecture:
#   spool-ARCH-to-native, spool-native-to-ARCH  tests/spool_xarch.c: a spool written by one machine is
#                 flushed by the other, every field checked (tests/spool_xarch.sh); and spool-same: the
#                 spools that x86-64 and every ARCH write of the same events are byte for byte the same
#   s390x only: test_json_broken_fallback  test_json built with -DRSBUS__JSON_BREAK_FALLBACK, which breaks
#                 the big-endian fallback of the SWAR JSON scanner on purpose: it must FAIL (counted as
#                 passed when it does), which shows this lane runs that fallback; native/test_json_broken
#                 is the same build on x86-64, where the macro must change nothing
# One final line "N passed, N failed".
CROSS_ARCHS ?= armhf s390x
CROSS_TRIPLET_armhf = arm-linux-gnueabihf
CROSS_TRIPLET_s390x = s390x-linux-gnu
CROSS_QEMU_armhf = qemu-arm
CROSS_QEMU_s390x = qemu-s390x
CROSS = $(BUILD)/cross
# hiredis.pc of that architecture (-D_FILE_OFFSET_BITS=64: 64-bit file offsets on a 32-bit CPU too)
CROSS_CFLAGS_OF = $(shell PKG_CONFIG_LIBDIR=/usr/lib/$(CROSS_TRIPLET_$(1))/pkgconfig pkg-config --cflags hiredis 2>/dev/null \
                      || echo -D_FILE_OFFSET_BITS=64)
CROSS_TESTS ?= test_unit test_json test_json_suite test_url test_schema test_spool test_dedupe test_bus test_gateway \
               test_partitions test_mem
CROSS_LONG  := test_faults test_hostile test_alloc_fail test_security test_rsbusctl
CROSS_RUN_TESTS := $(filter $(patsubst tests/%.c,%,$(TEST_SRCS)),$(CROSS_TESTS) $(if $(filter 1,$(CROSS_FULL)),$(CROSS_LONG)))
CROSS_TOOLS := gateway rsbusctl spool_xarch
CROSS_RUNS := $(foreach a,$(CROSS_ARCHS),$(CROSS_RUN_TESTS:%=$(CROSS)/$(a)/run/%) \
                  $(CROSS)/$(a)/run/spool-$(a)-to-native $(CROSS)/$(a)/run/spool-native-to-$(a)) \
              $(if $(filter s390x,$(CROSS_ARCHS)),$(CROSS)/s390x/run/test_json_broken_fallback $(CROSS)/native/test_json_broken) \
              $(CROSS)/spool-same

# built through pattern rules as prerequisites of their wrappers: kept, not deleted as intermediates
CROSS_BINS := $(foreach a,$(CROSS_ARCHS),$(addprefix $(CROSS)/$(a)/,$(CROSS_RUN_TESTS) $(CROSS_TOOLS) test_json_broken))
.SECONDARY: $(CROSS_BINS)

.PHONY: test-cross build-cross
test-cross:
	@CROSS_ARCHS="$(CROSS_ARCHS)" $(DEPS) cross
	@$(MAKE) --no-print-directory build-cross
	@$(RUN_TESTS) $(CROSS_RUNS)

build-cross: $(CROSS_RUNS) ; @:

# cross_rules ARCH: its programs, its qemu wrappers, its spool runs
define CROSS_RULES
$(CROSS)/$(1)/%: tests/%.c rsbus.h $(TEST_HDRS)
	@mkdir -p $$(@D)
	$(CROSS_TRIPLET_$(1))-gcc $$(TEST_CFLAGS) $$(call CROSS_CFLAGS_OF,$(1)) $$(CPPFLAGS) $$(CFLAGS) $$< -o $$@ /usr/lib/$(CROSS_TRIPLET_$(1))/libhiredis.a -lm
$(CROSS)/$(1)/%: examples/%.c rsbus.h
	@mkdir -p $$(@D)
	$(CROSS_TRIPLET_$(1))-gcc $$(EXAMPLE_CFLAGS) $$(call CROSS_CFLAGS_OF,$(1)) $$(CPPFLAGS) $$(CFLAGS) $$< -o $$@ /usr/lib/$(CROSS_TRIPLET_$(1))/libhiredis.a -lm
$(CROSS)/$(1)/test_json_broken: tests/test_json.c rsbus.h $(TEST_HDRS)
	@mkdir -p $$(@D)
	$(CROSS_TRIPLET_$(1))-gcc $$(TEST_CFLAGS) $$(call CROSS_CFLAGS_OF,$(1)) -DRSBUS__JSON_BREAK_FALLBACK $$< -o $$@ /usr/lib/$(CROSS_TRIPLET_$(1))/libhiredis.a -lm
# the wrapper of a test: the tools it runs are wrappers too (GATEWAY, RSBUSCTL), so that they run under qemu
$(CROSS)/$(1)/run/%: $(CROSS)/$(1)/% $(CROSS_TOOLS:%=$(CROSS)/$(1)/%)
	@mkdir -p $$(@D)
	@for t in $(CROSS_TOOLS); do printf '#!/bin/sh\nexec $(CROSS_QEMU_$(1)) $(CURDIR)/$(CROSS)/$(1)/'$$$$t' "$$$$@"\n' \
	    > $(CROSS)/$(1)/run/$$$$t.qemu; chmod +x $(CROSS)/$(1)/run/$$$$t.qemu; done
	@printf '#!/bin/sh\nGATEWAY=$(CURDIR)/$(CROSS)/$(1)/run/gateway.qemu RSBUSCTL=$(CURDIR)/$(CROSS)/$(1)/run/rsbusctl.qemu exec $(CROSS_QEMU_$(1)) $(CURDIR)/$$< "$$$$@"\n' > $$@
	@chmod +x $$@
$(CROSS)/$(1)/run/spool-$(1)-to-native: $(CROSS)/$(1)/run/spool_xarch $(BUILD)/spool_xarch
	@printf '#!/bin/sh\nexec bash $(CURDIR)/tests/spool_xarch.sh "$(CURDIR)/$(CROSS)/$(1)/run/spool_xarch" "$(CURDIR)/$(BUILD)/spool_xarch"\n' > $$@
	@chmod +x $$@
$(CROSS)/$(1)/run/spool-native-to-$(1): $(CROSS)/$(1)/run/spool_xarch $(BUILD)/spool_xarch
	@printf '#!/bin/sh\nexec bash $(CURDIR)/tests/spool_xarch.sh "$(CURDIR)/$(BUILD)/spool_xarch" "$(CURDIR)/$(CROSS)/$(1)/run/spool_xarch"\n' > $$@
	@chmod +x $$@
endef
$(foreach a,$(CROSS_ARCHS),$(eval $(call CROSS_RULES,$(a))))

$(BUILD)/spool_xarch: tests/spool_xarch.c rsbus.h $(TEST_HDRS) | $(BUILD)
	$(CC) $(TEST_CFLAGS) $(HIREDIS_CFLAGS) $(CPPFLAGS) $(CFLAGS) $< -o $@ $(LDFLAGS) $(LIBS)

$(CROSS)/spool-same: $(BUILD)/spool_xarch $(foreach a,$(CROSS_ARCHS),$(CROSS)/$(a)/run/spool_xarch)
	@printf '#!/bin/sh\nexec bash $(CURDIR)/tests/spool_xarch.sh --same $(CURDIR)/$(BUILD)/spool_xarch $(foreach a,$(CROSS_ARCHS),$(CURDIR)/$(CROSS)/$(a)/run/spool_xarch)\n' > $@
	@chmod +x $@

# the broken fallback must fail on s390x: its wrapper inverts the verdict
$(CROSS)/s390x/run/test_json_broken_fallback: $(CROSS)/s390x/run/test_json_broken
	@printf '#!/bin/sh\nexec bash $(CURDIR)/tests/expect_fail.sh test_json_broken_fallback $(CURDIR)/$<\n' > $@
	@chmod +x $@
$(CROSS)/native/test_json_broken: tests/test_json.c rsbus.h $(TEST_HDRS)
	@mkdir -p $(@D)
	$(CC) $(TEST_CFLAGS) -DRSBUS__JSON_BREAK_FALLBACK $(HIREDIS_CFLAGS) $(CPPFLAGS) $(CFLAGS) $< -o $@ $(LDFLAGS) $(LIBS)
