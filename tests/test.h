/* test.h - the small harness every rsbus test program uses.

   TEST(name) { ... CHECK(x); CHECK_EQ_INT(a, b); REQUIRE(y); ... }
   int main(void) { RUN(name); ...; return test_summary("test_x"); }

   A test passes when none of its checks failed. REQUIRE ends the test at once. WAIT_UNTIL polls a
   condition with a deadline instead of sleeping (a failed check when the deadline passes). Each program ends with "<name>: N passed, N failed"
   and exits non-zero on any failure; tests/run_tests.sh adds the programs' lines up. SKIP(why) ends a
   test as skipped - neither passed nor failed, counted on a line "<name>: N skipped" before the summary -
   and is only for a test whose server or tool cannot be installed where it runs. */
#ifndef RSBUS_TEST_H
#define RSBUS_TEST_H

#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#if defined(__GNUC__) || defined(__clang__)
#  define TEST__UNUSED __attribute__((unused))
#else
#  define TEST__UNUSED
#endif

static int test__passed, test__failed, test__cur_failed, test__skipped;
TEST__UNUSED static int test__cur_skipped;   /* set by SKIP, read by RUN (a program may use neither) */
static const char *test__cur = "";

TEST__UNUSED static int64_t test_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
TEST__UNUSED static void test_sleep_ms(int ms) {
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (long)(ms % 1000) * 1000000L;
    nanosleep(&ts, NULL);
}
static void test__fail(const char *file, int line, const char *what) {
    if (!test__cur_failed) fprintf(stderr, "FAIL %s\n", test__cur);
    fprintf(stderr, "  %s:%d: %s\n", file, line, what);
    test__cur_failed = 1;
}

#define TEST(name) static void name(void)
/* TEST_EXCLUDED(name): why a test does not run in this run of the program (NULL: it runs). bus_util.h
   redefines it for the tests that run on two transports (Redis and mem://). */
#define TEST_EXCLUDED(name) ((const char *)0)
#define RUN(name) do { \
        const char *test__why = TEST_EXCLUDED(#name); \
        test__cur = #name; test__cur_failed = 0; test__cur_skipped = 0; \
        if (test__why) { fprintf(stderr, "SKIP %s: %s\n", #name, test__why); test__skipped++; break; } \
        fprintf(stderr, "-- %s\n", #name); \
        name(); \
        if (test__cur_failed) test__failed++; else if (test__cur_skipped) test__skipped++; else test__passed++; \
    } while (0)
#define SKIP(why) do { fprintf(stderr, "SKIP %s: %s\n", test__cur, (why)); test__cur_skipped = 1; return; } while (0)
#define CHECK(c) do { if (!(c)) test__fail(__FILE__, __LINE__, #c); } while (0)
#define REQUIRE(c) do { if (!(c)) { test__fail(__FILE__, __LINE__, #c); return; } } while (0)
#define CHECK_EQ_INT(a, b) do { long long test__a = (long long)(a), test__b = (long long)(b); \
        if (test__a != test__b) { char test__m[512]; \
            snprintf(test__m, sizeof test__m, "%s == %s (%lld != %lld)", #a, #b, test__a, test__b); \
            test__fail(__FILE__, __LINE__, test__m); } } while (0)
#define CHECK_EQ_STR(a, b) do { const char *test__a = (a), *test__b = (b); \
        if (!test__a || !test__b || strcmp(test__a, test__b) != 0) { char test__m[768]; \
            snprintf(test__m, sizeof test__m, "%s == %s (\"%.300s\" != \"%.300s\")", #a, #b, \
                     test__a ? test__a : "(null)", test__b ? test__b : "(null)"); \
            test__fail(__FILE__, __LINE__, test__m); } } while (0)
#define CHECK_CONTAINS(hay, needle) do { const char *test__h = (hay); \
        if (!test__h || !strstr(test__h, (needle))) { char test__m[768]; \
            snprintf(test__m, sizeof test__m, "\"%.300s\" contains \"%.200s\"", test__h ? test__h : "(null)", \
                     (needle)); test__fail(__FILE__, __LINE__, test__m); } } while (0)
#define CHECK_NOT_CONTAINS(hay, needle) do { const char *test__h = (hay); \
        if (test__h && strstr(test__h, (needle))) { char test__m[768]; \
            snprintf(test__m, sizeof test__m, "\"%.300s\" must not contain \"%.200s\"", test__h, (needle)); \
            test__fail(__FILE__, __LINE__, test__m); } } while (0)
/* Polls cond every 2 ms until it holds; a failed check if timeout_ms passes first. */
#define WAIT_UNTIL(cond, timeout_ms) do { int64_t test__dl = test_now_ms() + (timeout_ms); \
        while (!(cond)) { if (test_now_ms() > test__dl) { \
            test__fail(__FILE__, __LINE__, "timed out waiting for: " #cond); break; } test_sleep_ms(2); } \
    } while (0)

/* Build switches (make test builds some programs with -DRSBUS_NO_<PART>): RUN_WITH(PART, name) runs a
   test that needs that part, or says it is skipped because the build compiled the part out. A skipped
   test counts neither as passed nor as failed; the summary line says how many were skipped. */
#ifdef RSBUS_NO_SPOOL
#  define TEST_HAVE_SPOOL 0
#else
#  define TEST_HAVE_SPOOL 1
#endif
#ifdef RSBUS_NO_SCHEMA
#  define TEST_HAVE_SCHEMA 0
#else
#  define TEST_HAVE_SCHEMA 1
#endif
#ifdef RSBUS_NO_DEDUPE
#  define TEST_HAVE_DEDUPE 0
#else
#  define TEST_HAVE_DEDUPE 1
#endif
#ifdef RSBUS_NO_ADMIN
#  define TEST_HAVE_ADMIN 0
#else
#  define TEST_HAVE_ADMIN 1
#endif
#define RUN_WITH(part, name) do { \
        if (TEST_HAVE_##part) RUN(name); \
        else { test__skipped++; fprintf(stderr, "-- %s: skipped (compiled out by RSBUS_NO_%s)\n", #name, #part); } \
    } while (0)

static int test_summary(const char *name) {
    if (test__skipped) printf("%s: %d skipped\n", name, test__skipped);
    printf("%s: %d passed, %d failed\n", name, test__passed, test__failed);
    fflush(stdout);
    return test__failed ? 1 : 0;
}

#endif
