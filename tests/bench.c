#define _POSIX_C_SOURCE 200809L
#define RSBUS_IMPLEMENTATION
#include "../rsbus.h"
#include "test.h"
#include "redis_server.h"

/* bench.c - rsbus against hand-written hiredis doing the same work ("As fast as hand-written hiredis").

       make bench                     every workload, 5 rounds (about two minutes)
       build/bench --quick            fewer events and 2 rounds (a CI smoke run)
       build/bench --rounds 9 --only W3 --only W5

   It starts a private redis-server (unix socket, no persistence). Each workload runs rsbus and plain
   hiredis alternately (rsbus, hiredis, rsbus, hiredis, ...), each round on a fresh stream (DEL first),
   with the same wire format (XADD key MAXLEN ~ 100000 * type T id <32 hex> ts <ms> v 1 data <json>),
   the same ~200-byte JSON payload and the same batch sizes. Per side it prints the median, min and max
   over the rounds, then the ratio rsbus / hiredis of the medians, and the median (min..max) of the
   per-round ratios (round i of rsbus against round i of hiredis).

   W1  single publish (rsbus_publish vs redisCommandArgv): events/s, per-call latency p50/p99
   W2  batch publish of 100 and 1000 (rsbus_publish_batch vs MULTI + n x XADD + EXEC pipelined)
   W3  consume + ack, COUNT 100 (rsbus_poll vs a naive XREADGROUP/XACK loop and a pipelined one)
   W4  end to end latency at 5,000 events/s (a forked publisher; rsbus_run vs an XREADGROUP BLOCK loop)
   W5  claiming 100,000 pending entries of a dead consumer (rsbus_claim vs XAUTOCLAIM + XACK)
   W6  JSON reader and writer (rsbus only)
   W7  allocator calls per 1,000 events in steady state (rsbus only; target 0)

   Exit status 0 whatever the numbers are; 1 when the run itself failed (an rsbus call failed, a side did
   not do all of its work). */

#include <stdarg.h>
#include <sys/utsname.h>

#define MAX_ROUNDS 50
#define TYPE "order.created"
#define GROUP "g"
#define MAX_LEN "100000"

/* ---- options, globals ------------------------------------------------------------------------ */

static int g_rounds = 5;
static int g_quick;
static const char *g_only[32];
static int g_nonly;
static test_redis g_redis;
static redisContext *g_admin;           /* setup and checks, never timed */
static char g_payload[512];             /* the ~200-byte JSON payload of W1-W3, W5, W7 */
static size_t g_payload_len;
static int g_failed;

/* the final table */
enum { T_W1, T_W2_100, T_W2_1000, T_W3_NAIVE, T_W3_PIPE, T_W5, T_COUNT };
static struct { const char *name; int have; double rsbus, plain; } g_table[T_COUNT] = {
    { "W1 publish (events/s)", 0, 0, 0 },
    { "W2 batch 100 (events/s)", 0, 0, 0 },
    { "W2 batch 1000 (events/s)", 0, 0, 0 },
    { "W3 consume vs naive (events/s)", 0, 0, 0 },
    { "W3 consume vs pipelined (events/s)", 0, 0, 0 },
    { "W5 claim (events/s)", 0, 0, 0 },
};

#if defined(__GNUC__) || defined(__clang__)
static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#endif
/* Reports a failure of the run itself; returns -1 for "return fail(...)". */
static int fail(const char *fmt, ...) {
    va_list ap;
    fflush(stdout);
    fprintf(stderr, "bench: FAILED: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    g_failed = 1;
    return -1;
}

static int selected(const char *name) {
    int i;
    if (g_nonly == 0) return 1;
    for (i = 0; i < g_nonly; i++) {
        const char *a = g_only[i], *b = name;
        while (*a && *b && (*a | 0x20) == (*b | 0x20)) { a++; b++; }
        if (!*a && !*b) return 1;
    }
    return 0;
}
static long scaled(long full, long quick) { return g_quick ? quick : full; }

/* ---- time and small helpers ------------------------------------------------------------------ */

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}
static double secs_since(int64_t t0) { return (double)(now_ns() - t0) / 1e9; }
static void sleep_until_ns(int64_t t) {
    struct timespec ts;
    ts.tv_sec = (time_t)(t / 1000000000);
    ts.tv_nsec = (long)(t % 1000000000);
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {}
}
static char *utoa_end(char *end, uint64_t v) {   /* writes backwards, returns the start */
    do { *--end = (char)('0' + v % 10); v /= 10; } while (v);
    return end;
}

/* ---- stats ----------------------------------------------------------------------------------- */

typedef struct bstats { double med, min, max; } bstats;

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}
/* nearest-rank percentile of sorted v */
static double pct_sorted(const double *v, size_t n, double p) {
    size_t k;
    if (n == 0) return 0;
    k = (size_t)ceil(p / 100.0 * (double)n);
    if (k < 1) k = 1;
    if (k > n) k = n;
    return v[k - 1];
}
static bstats stats_of(const double *v, size_t n) {
    double tmp[MAX_ROUNDS];
    bstats s = { 0, 0, 0 };
    if (n == 0 || n > MAX_ROUNDS) return s;
    memcpy(tmp, v, n * sizeof *v);
    qsort(tmp, n, sizeof *tmp, cmp_double);
    s.min = tmp[0];
    s.max = tmp[n - 1];
    s.med = n % 2 ? tmp[n / 2] : (tmp[n / 2 - 1] + tmp[n / 2]) / 2;
    return s;
}
static void print_head(void) { printf("    %-34s %12s %12s %12s\n", "", "median", "min", "max"); }
static void print_row(const char *label, const double *v, size_t n) {
    bstats s = stats_of(v, n);
    printf("    %-34s %12.1f %12.1f %12.1f\n", label, s.med, s.min, s.max);
}
/* ratio a/b of the medians, and the median (min..max) of the per-round ratios */
static double print_ratio(const char *label, const double *a, const double *b, size_t n, const char *meaning) {
    double r[MAX_ROUNDS];
    size_t i;
    bstats sa = stats_of(a, n), sb = stats_of(b, n), sr;
    for (i = 0; i < n; i++) r[i] = b[i] > 0 ? a[i] / b[i] : 0;
    sr = stats_of(r, n);
    printf("    %-34s %12.3f   per round %.3f (%.3f..%.3f)   %s\n", label, sb.med > 0 ? sa.med / sb.med : 0,
           sr.med, sr.min, sr.max, meaning);
    return sb.med > 0 ? sa.med / sb.med : 0;
}
#define HIGHER_BETTER "(throughput: > 1 means rsbus is faster)"
#define LOWER_BETTER "(latency: < 1 means rsbus is faster)"

/* ---- the payload ----------------------------------------------------------------------------- */

/* {"sent_ns":N,"order_id":..,"items":[nitems x {...}],"customer":{..."address":{..."zip":..}},...}
   sent_ns comes first (W4 reads it back), customer.address.zip after the items (json_get scans). */
static size_t make_doc(char *buf, size_t size, int64_t sent_ns, int nitems) {
    size_t n = 0;
    int i, k;
    k = snprintf(buf, size, "{\"sent_ns\":%lld,\"order_id\":48213,\"items\":[", (long long)sent_ns);
    if (k < 0 || (size_t)k >= size) return 0;
    n = (size_t)k;
    for (i = 0; i < nitems; i++) {
        k = snprintf(buf + n, size - n, "%s{\"sku\":\"SKU-%05d\",\"qty\":%d,\"price\":9.99}", i ? "," : "",
                     i + 1, i % 5 + 1);
        if (k < 0 || (size_t)k >= size - n) return 0;
        n += (size_t)k;
    }
    k = snprintf(buf + n, size - n, "],\"customer\":{\"id\":\"c-000123\",\"name\":\"Ada Lovelace\","
                 "\"address\":{\"city\":\"London\",\"zip\":\"NW1 2DB\"}},\"total\":44.48,\"currency\":\"EUR\"}");
    if (k < 0 || (size_t)k >= size - n) return 0;
    return n + (size_t)k;
}
/* sent_ns of a payload made by make_doc; -1 if it is not one */
static int64_t doc_sent_ns(const char *s, size_t n) {
    static const char pre[] = "{\"sent_ns\":";
    int64_t v = 0;
    size_t i = sizeof pre - 1;
    if (n < i || memcmp(s, pre, i) != 0) return -1;
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) v = v * 10 + (s[i] - '0');
    return v;
}

/* ---- plain hiredis: the event and the admin helpers ---------------------------------------- */

