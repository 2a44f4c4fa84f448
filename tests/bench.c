#define _POSIX_C_SOURCE 200809L
#define RSBUS_IMPLEMENTATION
#include "../rsbus.h"
#include "test.h"
#include "redis_server.h"
#include "redis_cluster.h"

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
   W3  consume + ack, COUNT 100 (rsbus_run, and an rsbus_poll loop, vs a naive XREADGROUP/XACK loop, a
       pipelined one, and the server's limit: two XREADGROUPs in flight, XACKs pipelined)
   W4  end to end latency at 5,000 events/s (a forked publisher; rsbus_run vs an XREADGROUP BLOCK loop)
   W5  claiming 100,000 pending entries of a dead consumer (rsbus_claim vs XAUTOCLAIM + XACK)
   W6  JSON reader and writer (rsbus only)
   W7  allocator calls per 1,000 events in steady state (rsbus only; target 0), foreign entries too
   W8  W3 over foreign entries: eventsource-py's layout (event_id, event_type, aggregate_id, aggregate_type,
       tenant_id, occurred_at, payload), read with accept_foreign and type_field/id_field/data_field; every
       field is handed to the handler (msg->fields); the hiredis sides read and acknowledge the same entries
   W9  partitions 1/4/8 on one server: publish and consume of a partitioned stream against the unpartitioned
       one (rsbus only; goal >= 0.9), and XREADGROUP calls per 1000 events (one read for all partitions)
   W11 partitions 1/4/8 on a local Redis Cluster (3 masters, no replicas): publish and consume rates, the
       XADDs each master took (the spread), and the time of an empty rsbus_poll (one round trip to every
       master at once: it must not grow with the partitions); on a 2-core machine the cluster's three
       servers share the cores, so its totals cannot exceed one server's
   W12 mem:// (the in-process bus, no server): rsbus_publish, rsbus_publish_batch (100), rsbus_poll and
       rsbus_run (COUNT 100) on one namespace, events/s and client CPU per event, with the ratio to the same
       rsbus calls on Redis measured by W1-W3 in this run; then W7's allocation count on mem://
   W10 replicated publish against a local replica: rsbus_publish / rsbus_publish_batch (100) with
       publish_wait_replicas 1 vs hiredis appending XADD (or MULTI/XADD.../EXEC) and WAIT 1 in one write;
       and rsbus without WAIT in the same run, for what WAIT costs per publish

   Exit status 0 whatever the numbers are; 1 when the run itself failed (an rsbus call failed, a side did
   not do all of its work). */

#include <stdarg.h>
#include <sys/utsname.h>

#define MAX_ROUNDS 50

/* Profiling one side: each side's timed loop is its own function, kept out of line so that a profiler
   can select it (gcc may rename it w3_rsbus_poll.constprop.0, hence the '*'):
       valgrind --tool=callgrind --toggle-collect='w1_rsbus*' build/bench --quick --only W1
   That gives the side's instruction counts; its call counts (calls=) still cover the whole run. Built
   with -DBENCH_CALLGRIND (needs valgrind's headers) the timed part of each side is dumped as a part of
   its own ("desc: Trigger: Client Request: w1_rsbus"), call counts included:
       cc ... -DBENCH_CALLGRIND tests/bench.c -o build/bench-cg ...
       valgrind --tool=callgrind --compress-strings=no build/bench-cg --quick --only W1
       callgrind_annotate --inclusive=yes callgrind.out.PID.N    (self costs of a part: read the file) */
#if defined(__GNUC__) || defined(__clang__)
#  define SIDE_FN static __attribute__((noinline))
#else
#  define SIDE_FN static
#endif
#ifdef BENCH_CALLGRIND
#  include <valgrind/callgrind.h>
#  define PROF_BEGIN() CALLGRIND_ZERO_STATS
#  define PROF_END(name) CALLGRIND_DUMP_STATS_AT(name)
#else
#  define PROF_BEGIN() ((void)0)
#  define PROF_END(name) ((void)0)
#endif

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
enum { T_W1, T_W2_100, T_W2_1000, T_W3_NAIVE, T_W3_PIPE, T_W3_POLL_NAIVE, T_W3_POLL_PIPE, T_W3_LIMIT, T_W5,
       T_W8_NAIVE, T_W8_PIPE, T_W8_POLL_NAIVE, T_W8_POLL_PIPE, T_W8_LIMIT, T_W10_1, T_W10_100, T_COUNT };
static struct { const char *name; int have; double rsbus, plain, rsbus_cpu, plain_cpu; } g_table[T_COUNT] = {
    { "W1 publish (events/s)", 0, 0, 0, 0, 0 },
    { "W2 batch 100 (events/s)", 0, 0, 0, 0, 0 },
    { "W2 batch 1000 (events/s)", 0, 0, 0, 0, 0 },
    { "W3 run vs naive (events/s)", 0, 0, 0, 0, 0 },
    { "W3 run vs pipelined (events/s)", 0, 0, 0, 0, 0 },
    { "W3 poll vs naive (events/s)", 0, 0, 0, 0, 0 },
    { "W3 poll vs pipelined (events/s)", 0, 0, 0, 0, 0 },
    { "W3 run vs 2 reads in flight (ev/s)", 0, 0, 0, 0, 0 },
    { "W5 claim (events/s)", 0, 0, 0, 0, 0 },
    { "W8 run vs naive (events/s)", 0, 0, 0, 0, 0 },
    { "W8 run vs pipelined (events/s)", 0, 0, 0, 0, 0 },
    { "W8 poll vs naive (events/s)", 0, 0, 0, 0, 0 },
    { "W8 poll vs pipelined (events/s)", 0, 0, 0, 0, 0 },
    { "W8 run vs 2 reads in flight (ev/s)", 0, 0, 0, 0, 0 },
    { "W10 publish + WAIT 1 (events/s)", 0, 0, 0, 0, 0 },
    { "W10 batch 100 + WAIT 1 (events/s)", 0, 0, 0, 0, 0 },
};
static int g_foreign;                   /* W8: streams in eventsource-py's layout, buses that read it */

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
static int64_t cpu_ns(void) {             /* this process's CPU time, user + system */
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* One timed run of a side: events/s, and the client's CPU time per event in us (this process, user +
   system: getrusage's split between the two is tick-sampled, useless at this scale, so only the sum). */
typedef struct span { int64_t wall, cpu; } span;
typedef struct meas { double eps, cpu_us; } meas;
static span span_begin(void) {
    span s;
    s.cpu = cpu_ns();
    s.wall = now_ns();
    return s;
}
static void meas_end(meas *m, const span *s, double events) {
    m->eps = events / secs_since(s->wall);
    m->cpu_us = (double)(cpu_ns() - s->cpu) / 1e3 / events;
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
static void print_head(void) { printf("    %-38s %12s %12s %12s\n", "", "median", "min", "max"); }
static void print_row(const char *label, const double *v, size_t n) {
    bstats s = stats_of(v, n);
    printf("    %-38s %12.1f %12.1f %12.1f\n", label, s.med, s.min, s.max);
}
/* ratio a/b of the medians, and the median (min..max) of the per-round ratios */
static double print_ratio(const char *label, const double *a, const double *b, size_t n, const char *meaning) {
    double r[MAX_ROUNDS];
    size_t i;
    bstats sa = stats_of(a, n), sb = stats_of(b, n), sr;
    for (i = 0; i < n; i++) r[i] = b[i] > 0 ? a[i] / b[i] : 0;
    sr = stats_of(r, n);
    printf("    %-38s %12.3f   per round %.3f (%.3f..%.3f)   %s\n", label, sb.med > 0 ? sa.med / sb.med : 0,
           sr.med, sr.min, sr.max, meaning);
    return sb.med > 0 ? sa.med / sb.med : 0;
}
/* a column of n measurements: 0 events/s, 1 client CPU us/event */
static const double *col(const meas *m, size_t n, int which, double *out) {
    size_t i;
    for (i = 0; i < n; i++) out[i] = which == 0 ? m[i].eps : m[i].cpu_us;
    return out;
}
#define HIGHER_BETTER "(throughput: > 1 means rsbus is faster)"
#define LOWER_BETTER "(latency: < 1 means rsbus is faster)"
#define CHEAPER "(CPU: < 1 means rsbus costs the caller less)"

/* the medians of a workload for the final table */
static void table_set(int t, const meas *a, const meas *b, size_t n) {
    double x[MAX_ROUNDS] = { 0 };
    g_table[t].have = 1;
    g_table[t].rsbus = stats_of(col(a, n, 0, x), n).med;
    g_table[t].plain = stats_of(col(b, n, 0, x), n).med;
    g_table[t].rsbus_cpu = stats_of(col(a, n, 1, x), n).med;
    g_table[t].plain_cpu = stats_of(col(b, n, 1, x), n).med;
}
/* the client's CPU time per event (this process, user + system): what each library costs the caller,
   less sensitive than events/s to a busy machine or to the server */
static void print_cpu(const meas *a, const meas *b, size_t n) {
    double x[MAX_ROUNDS] = { 0 }, y[MAX_ROUNDS] = { 0 };
    print_row("rsbus   client CPU (us/event)", col(a, n, 1, x), n);
    print_row("hiredis client CPU (us/event)", col(b, n, 1, y), n);
    print_ratio("ratio client CPU rsbus/hiredis", x, y, n, CHEAPER);
}

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


/* XADD key MAXLEN ~ 100000 * type T id <32 hex> ts <ms> v 1 data <json>. The argv is kept between
   events and only id, ts (and data) change: what a careful hand-written publisher does. */
#define PLAIN_ARGC 16
typedef struct plain_ev {
    const char *argv[PLAIN_ARGC];
    size_t len[PLAIN_ARGC];
    char id[33], ts[24];
    uint64_t s0, s1;                   /* xorshift128+ state for the event ids */
} plain_ev;

static void plain_ev_init(plain_ev *p, const char *key, const char *data, size_t data_len) {
    static const char *const head[PLAIN_ARGC] = { "XADD", NULL, "MAXLEN", "~", MAX_LEN, "*", "type", TYPE,
                                                  "id", NULL, "ts", NULL, "v", "1", "data", NULL };
    int i;
    memset(p, 0, sizeof *p);
    for (i = 0; i < PLAIN_ARGC; i++) {
        p->argv[i] = head[i];
        p->len[i] = head[i] ? strlen(head[i]) : 0;
    }
    p->argv[1] = key; p->len[1] = strlen(key);
    p->argv[9] = p->id; p->len[9] = 32;
    p->argv[15] = data; p->len[15] = data_len;
    p->s0 = (uint64_t)now_ns() | 1;
    p->s1 = UINT64_C(0x9E3779B97F4A7C15) ^ (uint64_t)getpid();
}
/* a new event id (32 hex digits) and ts (wall clock ms) */
static void plain_ev_next(plain_ev *p) {
    static const char hex[] = "0123456789abcdef";
    struct timespec ts;
    char *s;
    int k, i;
    for (k = 0; k < 2; k++) {
        uint64_t x = p->s0, y = p->s1, r;
        p->s0 = y;
        x ^= x << 23;
        p->s1 = x ^ y ^ (x >> 17) ^ (y >> 26);
        r = p->s1 + y;
        for (i = 0; i < 16; i++) { p->id[k * 16 + i] = hex[r & 15]; r >>= 4; }
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    s = utoa_end(p->ts + sizeof p->ts, (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000);
    p->argv[11] = s;
    p->len[11] = (size_t)(p->ts + sizeof p->ts - s);
}

static int admin_ok(redisReply *rep, const char *what) {
    if (!rep) return fail("%s: %s", what, g_admin->errstr);
    if (rep->type == REDIS_REPLY_ERROR) {
        fail("%s: %s", what, rep->str);
        freeReplyObject(rep);
        return -1;
    }
    freeReplyObject(rep);
    return 0;
}
static int del_key(const char *key) {
    return admin_ok((redisReply *)redisCommand(g_admin, "DEL %s", key), "DEL");
}
static int create_group(const char *key) {
    return admin_ok((redisReply *)redisCommand(g_admin, "XGROUP CREATE %s %s 0 MKSTREAM", key, GROUP), "XGROUP CREATE");
}
static long long admin_int(redisReply *rep) {
    long long v = rep && rep->type == REDIS_REPLY_INTEGER ? rep->integer : -1;
    if (rep) freeReplyObject(rep);
    return v;
}
static long long xlen(const char *key) { return admin_int((redisReply *)redisCommand(g_admin, "XLEN %s", key)); }
/* the group's pending count (XPENDING summary), -1 on error */
static long long pending_count(const char *key) {
    redisReply *rep = (redisReply *)redisCommand(g_admin, "XPENDING %s %s", key, GROUP);
    long long v = -1;
    if (rep && rep->type == REDIS_REPLY_ARRAY && rep->elements >= 1 && rep->element[0]->type == REDIS_REPLY_INTEGER)
        v = rep->element[0]->integer;
    if (rep) freeReplyObject(rep);
    return v;
}
static int check_len(const char *key, long n, const char *who) {
    long long got = xlen(key);
    if (got != n) return fail("%s: stream %s has %lld entries, expected %ld", who, key, got, n);
    return 0;
}
static int check_done(const char *key, long handled, long n, const char *who) {
    long long p = pending_count(key);
    if (handled != n) return fail("%s: handled %ld entries, expected %ld", who, handled, n);
    if (p != 0) return fail("%s: %lld entries still pending", who, p);
    return 0;
}

/* Reads the replies of k pipelined XADDs of the admin connection (the fills' setup). */
static int fill_replies(long k) {
    long i;
    for (i = 0; i < k; i++) {
        void *v = NULL;
        int bad;
        if (redisGetReply(g_admin, &v) != REDIS_OK) return fail("fill: %s", g_admin->errstr);
        bad = ((redisReply *)v)->type != REDIS_REPLY_STRING;
        freeReplyObject(v);
        if (bad) return fail("fill: XADD failed");
    }
    return 0;
}
/* Fills key with n entries in the wire format (pipelined, 1000 at a time; untimed setup). */
static int fill_stream(const char *key, long n) {
    plain_ev pe;
    long done = 0;
    plain_ev_init(&pe, key, g_payload, g_payload_len);
    while (done < n) {
        long k = n - done < 1000 ? n - done : 1000, i;
        for (i = 0; i < k; i++) {
            plain_ev_next(&pe);
            if (redisAppendCommandArgv(g_admin, PLAIN_ARGC, pe.argv, pe.len) != REDIS_OK)
                return fail("fill: %s", g_admin->errstr);
        }
        if (fill_replies(k)) return -1;
        done += k;
    }
    return check_len(key, n, "fill");
}
/* Fills key with n entries in eventsource-py's layout, the payload of the others (untimed setup). */
static int fill_foreign(const char *key, long n) {
    const char *argv[19] = { "XADD", key, "MAXLEN", "~", MAX_LEN, "*", "event_id", NULL, "event_type", "OrderCreated",
                             "aggregate_id", "5f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0", "aggregate_type", "Order",
                             "tenant_id", "", "occurred_at", "2026-01-02T03:04:05.006000+00:00", "payload" };
    const char *av[20];
    size_t len[20], i;
    long done = 0, seq = 0;
    char id[64];
    for (i = 0; i < 19; i++) { av[i] = argv[i]; len[i] = argv[i] ? strlen(argv[i]) : 0; }
    av[19] = g_payload; len[19] = g_payload_len;
    while (done < n) {
        long k = n - done < 1000 ? n - done : 1000, j;
        for (j = 0; j < k; j++) {
            snprintf(id, sizeof id, "9b2f4c1e-7d0a-4e63-9f0e-%012ld", seq++);
            av[7] = id; len[7] = strlen(id);
            if (redisAppendCommandArgv(g_admin, 20, av, len) != REDIS_OK) return fail("fill: %s", g_admin->errstr);
        }
        if (fill_replies(k)) return -1;
        done += k;
    }
    return check_len(key, n, "fill (foreign)");
}

/* The entries of an XREADGROUP reply; NULL when there are none; *bad for a reply of another shape. */
static const redisReply *xread_entries(const redisReply *rep, int *bad) {
    const redisReply *s;
    *bad = 0;
    if (rep->type == REDIS_REPLY_NIL) return NULL;
    if (rep->type != REDIS_REPLY_ARRAY) { *bad = 1; return NULL; }
    if (rep->elements == 0) return NULL;
    s = rep->element[0];
    if (s->type != REDIS_REPLY_ARRAY || s->elements != 2 || s->element[1]->type != REDIS_REPLY_ARRAY) {
        *bad = 1;
        return NULL;
    }
    return s->element[1]->elements ? s->element[1] : NULL;
}

/* Reads every entry of key into consumer "dead" without acknowledging them (W5's setup). */
static int read_into_dead(const char *key, long n) {
    long got = 0;
    for (;;) {
        redisReply *rep = (redisReply *)redisCommand(g_admin, "XREADGROUP GROUP %s dead COUNT 10000 STREAMS %s >",
                                                     GROUP, key);
        const redisReply *e;
        int bad;
        if (!rep) return fail("XREADGROUP (dead): %s", g_admin->errstr);
        e = xread_entries(rep, &bad);
        if (bad) { freeReplyObject(rep); return fail("XREADGROUP (dead): unexpected reply"); }
        if (!e) { freeReplyObject(rep); break; }
        got += (long)e->elements;
        freeReplyObject(rep);
    }
    if (got != n || pending_count(key) != n) return fail("dead consumer read %ld of %ld entries", got, n);
    return 0;
}

/* The handlers: they only count. The plain side finds type and data first, as a dispatcher would. */
static rsbus_verdict count_handler(const rsbus_msg *m, void *user) {
    (void)m;
    (*(long *)user)++;
    return RSBUS_ACK;
}
static void plain_dispatch(const redisReply *entry, long *count) {
    const redisReply *f;
    const char *type = NULL, *data = NULL;
    size_t i;
    if (entry->type != REDIS_REPLY_ARRAY || entry->elements != 2 || entry->element[1]->type != REDIS_REPLY_ARRAY)
        return;
    f = entry->element[1];
    for (i = 0; i + 1 < f->elements; i += 2) {   /* W8: the same, by eventsource-py's names */
        const redisReply *k = f->element[i];
        if (g_foreign ? k->len == 10 && memcmp(k->str, "event_type", 10) == 0 : k->len == 4 && memcmp(k->str, "type", 4) == 0)
            type = f->element[i + 1]->str;
        else if (g_foreign ? k->len == 7 && memcmp(k->str, "payload", 7) == 0 : k->len == 4 && memcmp(k->str, "data", 4) == 0)
            data = f->element[i + 1]->str;
    }
    if (type && data) (*count)++;
}

/* XACK key g <the ids of entries>: returns argc (3 when there is nothing to acknowledge). */
#define ACK_MAX 10000
static const char *g_ackv[3 + ACK_MAX];
static size_t g_ackl[3 + ACK_MAX];
static int ack_argv(const char *key, const redisReply *entries) {
    size_t i, k = 3;
    g_ackv[0] = "XACK"; g_ackl[0] = 4;
    g_ackv[1] = key; g_ackl[1] = strlen(key);
    g_ackv[2] = GROUP; g_ackl[2] = sizeof GROUP - 1;
    for (i = 0; i < entries->elements && k < 3 + ACK_MAX; i++) {
        const redisReply *e = entries->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2) continue;   /* nil: trimmed */
        g_ackv[k] = e->element[0]->str;
        g_ackl[k] = e->element[0]->len;
        k++;
    }
    return (int)k;
}
static int ack_reply_ok(redisReply *rep, long long expect, const char *who) {
    int ok = rep && rep->type == REDIS_REPLY_INTEGER && rep->integer == expect;
    if (!ok) fail("%s: XACK: %s", who, !rep ? "no reply" : rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected reply");
    if (rep) freeReplyObject(rep);
    return ok ? 0 : -1;
}

static rsbus *open_bus(const char *key, int publish_only, const char *consumer, int block_ms,
                       const rsbus_allocator *a) {
    rsbus_config cfg;
    rsbus_error err;
    rsbus *bus;
    memset(&cfg, 0, sizeof cfg);
    cfg.url = g_redis.unix_url;
    cfg.stream = key;
    cfg.group = GROUP;
    cfg.consumer = consumer ? consumer : "c1";
    cfg.group_start = "0";
    cfg.publish_only = publish_only;
    cfg.block_ms = block_ms;
    if (g_foreign) {
        cfg.accept_foreign = 1;
        cfg.type_field = "event_type"; cfg.id_field = "event_id"; cfg.data_field = "payload";
    }
    if (a) cfg.allocator = *a;
    bus = rsbus_open(&cfg, &err);
    if (!bus) fail("rsbus_open: %s: %s", rsbus_result_str(err.code), err.msg);
    return bus;
}
static redisContext *plain_connect(void) {
    redisContext *c = test_redis_connect(&g_redis);
    if (!c) fail("cannot connect with hiredis");
    return c;
}
static void event_init(rsbus_event *ev) {
    memset(ev, 0, sizeof *ev);
    ev->type = TYPE;
    ev->data = g_payload;
    ev->data_len = g_payload_len;
}

/* ---- W1: single publish ---------------------------------------------------------------------- */

/* n publishes, one round trip each; lat (NULL: not kept) gets each call's time in us */
SIDE_FN int w1_rsbus(rsbus *bus, long n, double *lat, meas *m) {
    rsbus_event ev;
    span t0 = span_begin();
    long i;
    event_init(&ev);
    PROF_BEGIN();
    for (i = 0; i < n; i++) {
        int64_t t = now_ns();
        rsbus_result r = rsbus_publish(bus, &ev, NULL);
        if (lat) lat[i] = (double)(now_ns() - t) / 1e3;
        if (r != RSBUS_OK) return fail("W1 rsbus_publish: %s: %s", rsbus_result_str(r), rsbus_errmsg(bus));
    }
    PROF_END("w1_rsbus");
    meas_end(m, &t0, (double)n);
    return 0;
}
SIDE_FN int w1_plain(redisContext *c, plain_ev *pe, long n, double *lat, meas *m) {
    span t0 = span_begin();
    long i;
    PROF_BEGIN();
    for (i = 0; i < n; i++) {
        int64_t t = now_ns();
        redisReply *rep;
        int ok;
        plain_ev_next(pe);
        rep = (redisReply *)redisCommandArgv(c, PLAIN_ARGC, pe->argv, pe->len);
        if (lat) lat[i] = (double)(now_ns() - t) / 1e3;
        ok = rep && rep->type == REDIS_REPLY_STRING;
        if (rep) freeReplyObject(rep);
        if (!ok) return fail("W1 hiredis XADD: %s", c->errstr[0] ? c->errstr : "error reply");
    }
    PROF_END("w1_plain");
    meas_end(m, &t0, (double)n);
    return 0;
}

static int w1(void) {
    const char *key = "bench:w1";
    long n = scaled(20000, 2000), warm = scaled(2000, 200);
    double p50[2][MAX_ROUNDS], p99[2][MAX_ROUNDS], e0[MAX_ROUNDS] = { 0 }, e1[MAX_ROUNDS] = { 0 };
    meas ms[2][MAX_ROUNDS], d;
    double *lat = (double *)malloc((size_t)n * sizeof *lat);
    rsbus *bus = open_bus(key, 1, NULL, 0, NULL);
    redisContext *c = plain_connect();
    plain_ev pe;
    int r, side, rc = -1;
    size_t nr = (size_t)g_rounds;
    printf("\nW1 single publish: %ld events per round, one XADD per round trip, %d rounds\n", n, g_rounds);
    if (!lat || !bus || !c) goto out;
    plain_ev_init(&pe, key, g_payload, g_payload_len);
    if (w1_rsbus(bus, warm, NULL, &d) || w1_plain(c, &pe, warm, NULL, &d)) goto out;
    for (r = 0; r < g_rounds; r++) {
        for (side = 0; side < 2; side++) {
            if (del_key(key)) goto out;
            if (side == 0 ? w1_rsbus(bus, n, lat, &ms[0][r]) : w1_plain(c, &pe, n, lat, &ms[1][r])) goto out;
            if (check_len(key, n, side == 0 ? "W1 rsbus" : "W1 hiredis")) goto out;
            qsort(lat, (size_t)n, sizeof *lat, cmp_double);
            p50[side][r] = pct_sorted(lat, (size_t)n, 50);
            p99[side][r] = pct_sorted(lat, (size_t)n, 99);
        }
    }
    print_head();
    print_row("rsbus   events/s", col(ms[0], nr, 0, e0), nr);
    print_row("hiredis events/s", col(ms[1], nr, 0, e1), nr);
    print_row("rsbus   p50 latency (us)", p50[0], nr);
    print_row("hiredis p50 latency (us)", p50[1], nr);
    print_row("rsbus   p99 latency (us)", p99[0], nr);
    print_row("hiredis p99 latency (us)", p99[1], nr);
    print_ratio("ratio events/s rsbus/hiredis", e0, e1, nr, HIGHER_BETTER);
    print_ratio("ratio p50 rsbus/hiredis", p50[0], p50[1], nr, LOWER_BETTER);
    print_ratio("ratio p99 rsbus/hiredis", p99[0], p99[1], nr, LOWER_BETTER);
    table_set(T_W1, ms[0], ms[1], nr);
    print_cpu(ms[0], ms[1], nr);
    rc = 0;
out:
    free(lat);
    rsbus_close(bus);
    if (c) redisFree(c);
    return rc;
}

/* ---- W2: batch publish ----------------------------------------------------------------------- */

SIDE_FN int w2_rsbus(rsbus *bus, const rsbus_event *evs, size_t batch, long calls, meas *m) {
    span t0 = span_begin();
    long i;
    PROF_BEGIN();
    for (i = 0; i < calls; i++) {
        rsbus_result r = rsbus_publish_batch(bus, evs, batch, NULL);
        if (r != RSBUS_OK) return fail("W2 rsbus_publish_batch: %s: %s", rsbus_result_str(r), rsbus_errmsg(bus));
    }
    PROF_END("w2_rsbus");
    meas_end(m, &t0, (double)calls * (double)batch);
    return 0;
}
/* MULTI, batch x XADD, EXEC appended, then the batch + 2 replies read and checked */
SIDE_FN int w2_plain(redisContext *c, plain_ev *pe, size_t batch, long calls, meas *m) {
    static const char *multi = "MULTI", *exec = "EXEC";
    static const size_t multi_len = 5, exec_len = 4;
    span t0 = span_begin();
    long k;
    PROF_BEGIN();
    for (k = 0; k < calls; k++) {
        size_t i;
        if (redisAppendCommandArgv(c, 1, &multi, &multi_len) != REDIS_OK) return fail("W2 hiredis: %s", c->errstr);
        for (i = 0; i < batch; i++) {
            plain_ev_next(pe);
            if (redisAppendCommandArgv(c, PLAIN_ARGC, pe->argv, pe->len) != REDIS_OK)
                return fail("W2 hiredis: %s", c->errstr);
        }
        if (redisAppendCommandArgv(c, 1, &exec, &exec_len) != REDIS_OK) return fail("W2 hiredis: %s", c->errstr);
        for (i = 0; i < batch + 2; i++) {
            void *v = NULL;
            const redisReply *rep;
            int ok;
            if (redisGetReply(c, &v) != REDIS_OK) return fail("W2 hiredis: %s", c->errstr);
            rep = (const redisReply *)v;
            if (i == 0 || i <= batch) ok = rep->type == REDIS_REPLY_STATUS;   /* OK, then QUEUED */
            else ok = rep->type == REDIS_REPLY_ARRAY && rep->elements == batch &&
                      rep->element[0]->type == REDIS_REPLY_STRING;
            freeReplyObject(v);
            if (!ok) return fail("W2 hiredis: unexpected reply %lu of the MULTI/EXEC", (unsigned long)i);
        }
    }
    PROF_END("w2_plain");
    meas_end(m, &t0, (double)calls * (double)batch);
    return 0;
}

static int w2(size_t batch, int table) {
    const char *key = "bench:w2";
    long n = scaled(100000, 10000), calls = n / (long)batch;
    double e0[MAX_ROUNDS] = { 0 }, e1[MAX_ROUNDS] = { 0 };
    meas ms[2][MAX_ROUNDS], d;
    rsbus_event *evs = (rsbus_event *)malloc(batch * sizeof *evs);
    rsbus *bus = open_bus(key, 1, NULL, 0, NULL);
    redisContext *c = plain_connect();
    plain_ev pe;
    size_t i, nr = (size_t)g_rounds;
    int r, side, rc = -1;
    printf("\nW2 batch publish, %lu events per call (MULTI/XADD.../EXEC): %ld events per round, %d rounds\n",
           (unsigned long)batch, calls * (long)batch, g_rounds);
    if (!evs || !bus || !c) goto out;
    for (i = 0; i < batch; i++) event_init(&evs[i]);
    plain_ev_init(&pe, key, g_payload, g_payload_len);
    if (w2_rsbus(bus, evs, batch, 5, &d) || w2_plain(c, &pe, batch, 5, &d)) goto out;   /* warm-up */
    for (r = 0; r < g_rounds; r++) {
        for (side = 0; side < 2; side++) {
            if (del_key(key)) goto out;
            if (side == 0 ? w2_rsbus(bus, evs, batch, calls, &ms[0][r]) : w2_plain(c, &pe, batch, calls, &ms[1][r]))
                goto out;
            if (check_len(key, calls * (long)batch, side == 0 ? "W2 rsbus" : "W2 hiredis")) goto out;
        }
    }
    print_head();
    print_row("rsbus   events/s", col(ms[0], nr, 0, e0), nr);
    print_row("hiredis events/s", col(ms[1], nr, 0, e1), nr);
    print_ratio("ratio events/s rsbus/hiredis", e0, e1, nr, HIGHER_BETTER);
    table_set(table, ms[0], ms[1], nr);
    print_cpu(ms[0], ms[1], nr);
    rc = 0;
out:
    free(evs);
    rsbus_close(bus);
    if (c) redisFree(c);
    return rc;
}

/* ---- W3: consume, dispatch, ack ------------------------------------------------------------ */

static int w3_prepare(const char *key, long n) {
    if (del_key(key) || (g_foreign ? fill_foreign(key, n) : fill_stream(key, n)) || create_group(key)) return -1;
    return 0;
}
/* rsbus_run: the XACK of batch k goes out with a read ahead, two reads in flight (as the "2 in flight"
   side), so Redis answers the next read while the handlers run.
   The handler counts and calls rsbus_stop (allowed from a handler) once it has seen the n pre-filled
   entries; rsbus_run then returns after sending the last batch's XACK and reading its reply, so the
   timed span includes it. A SIGALRM sets the stop flag if the entries never all arrive. */
static volatile sig_atomic_t g_run_stop;
static void on_alarm_stop(int sig) { (void)sig; g_run_stop = 1; }
typedef struct w3_run_ctx { rsbus *bus; long count, n; } w3_run_ctx;
static rsbus_verdict w3_run_handler(const rsbus_msg *m, void *user) {
    w3_run_ctx *x = (w3_run_ctx *)user;
    (void)m;
    if (++x->count >= x->n) rsbus_stop(x->bus);
    return RSBUS_ACK;
}
/* rsbus_run with the safety alarm (seconds) armed; restores SIGALRM's default action after */
static rsbus_result run_with_alarm(rsbus *bus, unsigned seconds) {
    struct sigaction sa;
    rsbus_result r;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm_stop;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
    g_run_stop = 0;
    alarm(seconds);
    r = rsbus_run(bus, &g_run_stop);
    alarm(0);
    signal(SIGALRM, SIG_DFL);
    return r;
}
SIDE_FN int w3_rsbus_run(const char *key, long n, meas *m) {
    w3_run_ctx x;
    rsbus_stats st;
    rsbus_result r;
    span t0;
    rsbus *bus = open_bus(key, 0, "c1", 1000, NULL);
    if (!bus) return -1;
    x.bus = bus; x.count = 0; x.n = n;
    if (rsbus_subscribe(bus, "*", w3_run_handler, &x) <= 0) { rsbus_close(bus); return fail("rsbus_subscribe"); }
    t0 = span_begin();
    PROF_BEGIN();
    r = run_with_alarm(bus, 120);
    PROF_END("w3_rsbus_run");
    meas_end(m, &t0, (double)n);
    rsbus_stats_get(bus, &st);
    if (r != RSBUS_OK) {
        fail("W3 rsbus_run: %s: %s", rsbus_result_str(r), rsbus_errmsg(bus));
        rsbus_close(bus);
        return -1;
    }
    if (g_run_stop) { rsbus_close(bus); return fail("W3 rsbus_run: stopped by the safety alarm after %ld of %ld entries", x.count, n); }
    /* the last batch's XACK was sent and its reply read before rsbus_run returned (before rsbus_close) */
    if (st.delivered != (uint64_t)n || st.acked != (uint64_t)n) {
        fail("W3 rsbus_run: delivered %llu and acked %llu when rsbus_run returned, expected %ld",
             (unsigned long long)st.delivered, (unsigned long long)st.acked, n);
        rsbus_close(bus);
        return -1;
    }
    if (pending_count(key) != 0) {   /* checked before rsbus_close, which would flush a deferred XACK too */
        rsbus_close(bus);
        return fail("W3 rsbus_run: entries still pending when rsbus_run returned");
    }
    rsbus_close(bus);
    return check_done(key, x.count, n, "W3 rsbus_run");
}
/* an rsbus_poll loop: rsbus_poll acknowledges each batch before it returns, two round trips per batch */
SIDE_FN int w3_rsbus_poll(const char *key, long n, meas *m) {
    long count = 0, total = 0;
    int k;
    span t0;
    rsbus *bus = open_bus(key, 0, "c1", 0, NULL);
    if (!bus) return -1;
    if (rsbus_subscribe(bus, "*", count_handler, &count) <= 0) { rsbus_close(bus); return fail("rsbus_subscribe"); }
    t0 = span_begin();
    PROF_BEGIN();
    while ((k = rsbus_poll(bus, -1)) > 0) total += k;
    PROF_END("w3_rsbus_poll");
    meas_end(m, &t0, (double)n);
    if (k < 0) {
        fail("W3 rsbus_poll: %s: %s", rsbus_result_str((rsbus_result)k), rsbus_errmsg(bus));
        rsbus_close(bus);
        return -1;
    }
    rsbus_close(bus);
    if (total != n) return fail("W3 rsbus_poll: rsbus_poll returned %ld entries in all, expected %ld", total, n);
    return check_done(key, count, n, "W3 rsbus_poll");
}

#define XRG_ARGV(key, block) { "XREADGROUP", "GROUP", GROUP, "c1", "COUNT", "100", "BLOCK", block, "STREAMS", key, ">" }
/* naive: XREADGROUP COUNT 100, dispatch, XACK: two round trips per batch */
SIDE_FN int w3_naive(redisContext *c, const char *key, long n, meas *m) {
    const char *xv[] = XRG_ARGV(key, "");
    size_t xl[11];
    long count = 0;
    int i;
    span t0;
    /* without BLOCK: drop slots 6 and 7 */
    memmove(&xv[6], &xv[8], 3 * sizeof *xv);
    for (i = 0; i < 9; i++) xl[i] = strlen(xv[i]);
    t0 = span_begin();
    PROF_BEGIN();
    for (;;) {
        redisReply *rep = (redisReply *)redisCommandArgv(c, 9, xv, xl);
        const redisReply *entries;
        size_t j;
        int bad;
        if (!rep) return fail("W3 hiredis: %s", c->errstr);
        entries = xread_entries(rep, &bad);
        if (bad) { freeReplyObject(rep); return fail("W3 hiredis: unexpected XREADGROUP reply"); }
        if (!entries) { freeReplyObject(rep); break; }
        for (j = 0; j < entries->elements; j++) plain_dispatch(entries->element[j], &count);
        i = ack_argv(key, entries);
        if (ack_reply_ok((redisReply *)redisCommandArgv(c, i, g_ackv, g_ackl), i - 3, "W3 hiredis")) {
            freeReplyObject(rep);
            return -1;
        }
        freeReplyObject(rep);
    }
    PROF_END("w3_naive");
    meas_end(m, &t0, (double)n);
    return check_done(key, count, n, "W3 hiredis");
}
/* pipelined: the XACK of batch k goes out with the XREADGROUP of batch k+1 (one round trip per batch) */
SIDE_FN int w3_pipelined(redisContext *c, const char *key, long n, meas *m) {
    const char *xv[] = XRG_ARGV(key, "");
    size_t xl[11];
    long count = 0;
    int i;
    void *v = NULL;
    redisReply *rep;
    span t0;
    memmove(&xv[6], &xv[8], 3 * sizeof *xv);
    for (i = 0; i < 9; i++) xl[i] = strlen(xv[i]);
    t0 = span_begin();
    PROF_BEGIN();
    if (redisAppendCommandArgv(c, 9, xv, xl) != REDIS_OK || redisGetReply(c, &v) != REDIS_OK)
        return fail("W3 hiredis pipelined: %s", c->errstr);
    rep = (redisReply *)v;
    for (;;) {
        const redisReply *entries;
        size_t j;
        int bad;
        long long nack;
        entries = xread_entries(rep, &bad);
        if (bad) { freeReplyObject(rep); return fail("W3 hiredis pipelined: unexpected XREADGROUP reply"); }
        if (!entries) break;
        for (j = 0; j < entries->elements; j++) plain_dispatch(entries->element[j], &count);
        i = ack_argv(key, entries);
        nack = i - 3;
        if (redisAppendCommandArgv(c, i, g_ackv, g_ackl) != REDIS_OK || redisAppendCommandArgv(c, 9, xv, xl) != REDIS_OK) {
            freeReplyObject(rep);
            return fail("W3 hiredis pipelined: %s", c->errstr);
        }
        freeReplyObject(rep);
        if (redisGetReply(c, &v) != REDIS_OK) return fail("W3 hiredis pipelined: %s", c->errstr);
        if (ack_reply_ok((redisReply *)v, nack, "W3 hiredis pipelined")) return -1;
        if (redisGetReply(c, &v) != REDIS_OK) return fail("W3 hiredis pipelined: %s", c->errstr);
        rep = (redisReply *)v;
    }
    freeReplyObject(rep);
    PROF_END("w3_pipelined");
    meas_end(m, &t0, (double)n);
    return check_done(key, count, n, "W3 hiredis pipelined");
}

/* the server's limit: two XREADGROUPs in flight, so Redis answers the next read while this batch is
   dispatched; the XACK of batch k goes out with the XREADGROUP of batch k+2. The replies come as
   R1 R2 A1 R3 A2 R4 ...: after batch k (k >= 2) come the XACK of batch k-1 and the read of batch k+1. */
SIDE_FN int w3_two_in_flight(redisContext *c, const char *key, long n, meas *m) {
    const char *xv[] = XRG_ARGV(key, "");
    size_t xl[11];
    long count = 0, batch = 0;
    long long prev_nack = -1;   /* the XACK whose reply comes next, -1: none */
    int i;
    void *v = NULL;
    redisReply *rep;
    span t0;
    memmove(&xv[6], &xv[8], 3 * sizeof *xv);
    for (i = 0; i < 9; i++) xl[i] = strlen(xv[i]);
    t0 = span_begin();
    PROF_BEGIN();
    if (redisAppendCommandArgv(c, 9, xv, xl) != REDIS_OK || redisAppendCommandArgv(c, 9, xv, xl) != REDIS_OK ||
        redisGetReply(c, &v) != REDIS_OK)
        return fail("W3 hiredis 2 in flight: %s", c->errstr);
    rep = (redisReply *)v;
    for (;;) {
        const redisReply *entries;
        size_t j;
        int bad;
        long long nack;
        entries = xread_entries(rep, &bad);
        if (bad) { freeReplyObject(rep); return fail("W3 hiredis 2 in flight: unexpected XREADGROUP reply"); }
        if (!entries) break;
        batch++;
        for (j = 0; j < entries->elements; j++) plain_dispatch(entries->element[j], &count);
        i = ack_argv(key, entries);
        nack = i - 3;
        if (redisAppendCommandArgv(c, i, g_ackv, g_ackl) != REDIS_OK || redisAppendCommandArgv(c, 9, xv, xl) != REDIS_OK) {
            freeReplyObject(rep);
            return fail("W3 hiredis 2 in flight: %s", c->errstr);
        }
        freeReplyObject(rep);
        if (prev_nack >= 0) {
            if (redisGetReply(c, &v) != REDIS_OK) return fail("W3 hiredis 2 in flight: %s", c->errstr);
            if (ack_reply_ok((redisReply *)v, prev_nack, "W3 hiredis 2 in flight")) return -1;
        }
        prev_nack = nack;
        if (redisGetReply(c, &v) != REDIS_OK) return fail("W3 hiredis 2 in flight: %s", c->errstr);
        rep = (redisReply *)v;
    }
    freeReplyObject(rep);
    /* still in flight: the last XACK and one more read (empty: the stream is drained) */
    if (prev_nack >= 0) {
        if (redisGetReply(c, &v) != REDIS_OK) return fail("W3 hiredis 2 in flight: %s", c->errstr);
        if (ack_reply_ok((redisReply *)v, prev_nack, "W3 hiredis 2 in flight")) return -1;
        if (redisGetReply(c, &v) != REDIS_OK) return fail("W3 hiredis 2 in flight: %s", c->errstr);
        freeReplyObject((redisReply *)v);
    }
    PROF_END("w3_two_in_flight");
    meas_end(m, &t0, (double)n);
    (void)batch;
    return check_done(key, count, n, "W3 hiredis 2 in flight");
}

static int w3_any(int foreign);
static int w3(void) { return w3_any(0); }
static int w8(void) { return w3_any(1); }
static int w3_any(int foreign) {
    const char *key = foreign ? "bench:w8" : "bench:w3";
    long n = scaled(100000, 10000);
    double ev[5][MAX_ROUNDS], cpu[5][MAX_ROUNDS];
    meas ms[5][MAX_ROUNDS], d;
    redisContext *c = plain_connect();
    size_t nr = (size_t)g_rounds;
    int r, side, rc = -1;
    int t0 = foreign ? T_W8_NAIVE : T_W3_NAIVE;
    g_foreign = foreign;
    if (foreign)
        printf("\nW8 = W3 over foreign entries (eventsource-py's 7 fields; accept_foreign, type_field event_type,\n"
               "    id_field event_id, data_field payload; msg->fields holds all 7)\n");
    printf("\n%s consume + dispatch + ack, COUNT 100, handler only counts: %ld pre-filled entries per round, %d rounds\n"
           "    (rsbus_run: the XACK of batch k goes with the XREADGROUP of batch k+1, the handler calls rsbus_stop\n"
           "    after the last entry, the last XACK is sent and read before rsbus_run returns; rsbus_poll(bus, -1)\n"
           "    loop: XREADGROUP then XACK, a round trip each; hiredis naive: XREADGROUP then XACK; hiredis\n"
           "    pipelined: XACK of batch k sent with the XREADGROUP of batch k+1; hiredis 2 in flight, the\n"
           "    server's limit: two XREADGROUPs always in flight, XACKs pipelined)\n", foreign ? "W8" : "W3", n, g_rounds);
    if (!c) goto out;
    /* warm-up, a tenth of a round each */
    if (w3_prepare(key, n / 10) || w3_rsbus_run(key, n / 10, &d) || w3_prepare(key, n / 10) || w3_naive(c, key, n / 10, &d) ||
        w3_prepare(key, n / 10) || w3_rsbus_poll(key, n / 10, &d) || w3_prepare(key, n / 10) ||
        w3_pipelined(c, key, n / 10, &d) || w3_prepare(key, n / 10) || w3_two_in_flight(c, key, n / 10, &d))
        goto out;
    for (r = 0; r < g_rounds; r++) {
        for (side = 0; side < 5; side++) {   /* rsbus_run, naive, rsbus_poll, pipelined, 2 in flight */
            if (w3_prepare(key, n)) goto out;
            if (side == 0 ? w3_rsbus_run(key, n, &ms[0][r])
                : side == 1 ? w3_naive(c, key, n, &ms[1][r])
                : side == 2 ? w3_rsbus_poll(key, n, &ms[2][r])
                : side == 3 ? w3_pipelined(c, key, n, &ms[3][r]) : w3_two_in_flight(c, key, n, &ms[4][r]))
                goto out;
        }
    }
    for (side = 0; side < 5; side++) { col(ms[side], nr, 0, ev[side]); col(ms[side], nr, 1, cpu[side]); }
    print_head();
    print_row("rsbus_run         events/s", ev[0], nr);
    print_row("rsbus_poll        events/s", ev[2], nr);
    print_row("hiredis naive     events/s", ev[1], nr);
    print_row("hiredis pipelined events/s", ev[3], nr);
    print_row("hiredis 2 in flight events/s", ev[4], nr);
    print_ratio("ratio rsbus_run/naive", ev[0], ev[1], nr, HIGHER_BETTER);
    print_ratio("ratio rsbus_run/pipelined", ev[0], ev[3], nr, HIGHER_BETTER);
    print_ratio("ratio rsbus_run/2 in flight", ev[0], ev[4], nr, HIGHER_BETTER);
    print_ratio("ratio rsbus_poll/naive", ev[2], ev[1], nr, HIGHER_BETTER);
    print_ratio("ratio rsbus_poll/pipelined", ev[2], ev[3], nr, HIGHER_BETTER);
    table_set(t0, ms[0], ms[1], nr);
    table_set(t0 + 1, ms[0], ms[3], nr);
    table_set(t0 + 2, ms[2], ms[1], nr);
    table_set(t0 + 3, ms[2], ms[3], nr);
    table_set(t0 + 4, ms[0], ms[4], nr);
    print_row("rsbus_run         client CPU (us/event)", cpu[0], nr);
    print_row("rsbus_poll        client CPU (us/event)", cpu[2], nr);
    print_row("hiredis naive     client CPU (us/event)", cpu[1], nr);
    print_row("hiredis pipelined client CPU (us/event)", cpu[3], nr);
    print_row("hiredis 2 in flight client CPU (us/event)", cpu[4], nr);
    print_ratio("ratio client CPU rsbus_run/naive", cpu[0], cpu[1], nr, CHEAPER);
    print_ratio("ratio client CPU rsbus_run/pipelined", cpu[0], cpu[3], nr, CHEAPER);
    print_ratio("ratio client CPU rsbus_poll/naive", cpu[2], cpu[1], nr, CHEAPER);
    rc = 0;
out:
    if (c) redisFree(c);
    del_key(key);
    g_foreign = 0;
    return rc;
}

/* ---- W4: end-to-end latency at a steady rate ------------------------------------------------ */

static volatile sig_atomic_t g_w4_stop;
static void w4_on_alarm(int sig) { (void)sig; g_w4_stop = 1; }

typedef struct w4_sink {
    long expected, got, bad;
    double *lat;                 /* us, expected of them */
    int64_t first_sent, last_sent;
    rsbus *bus;
} w4_sink;

static void w4_record(w4_sink *s, const char *data, size_t len) {
    int64_t now = now_ns(), sent = doc_sent_ns(data, len);
    if (sent <= 0) { s->bad++; return; }
    if (s->got < s->expected) s->lat[s->got] = (double)(now - sent) / 1e3;
    if (s->got == 0 || sent < s->first_sent) s->first_sent = sent;
    if (sent > s->last_sent) s->last_sent = sent;
    s->got++;
}
static rsbus_verdict w4_handler(const rsbus_msg *m, void *user) {
    w4_sink *s = (w4_sink *)user;
    w4_record(s, m->data, m->data_len);
    if (s->got >= s->expected) rsbus_stop(s->bus);
    return RSBUS_ACK;
}

/* The forked publisher: n events at rate/s, each carrying its send time (CLOCK_MONOTONIC ns). */
static void w4_publisher(int use_rsbus, const char *key, long n, long rate) {
    char buf[512];
    int64_t t0, interval = 1000000000 / rate;
    long i;
    int ok = 1;
    rsbus *bus = NULL;
    redisContext *c = NULL;
    plain_ev pe;
    rsbus_event ev;
    if (use_rsbus) bus = open_bus(key, 1, NULL, 0, NULL);
    else c = test_redis_connect(&g_redis);
    if (!bus && !c) _exit(2);
    plain_ev_init(&pe, key, buf, 0);
    event_init(&ev);
    ev.data = buf;
    t0 = now_ns() + 2000000;
    for (i = 0; i < n && ok; i++) {
        size_t len;
        sleep_until_ns(t0 + i * interval);
        len = make_doc(buf, sizeof buf, now_ns(), 1);
        if (use_rsbus) {
            ev.data_len = len;
            ok = rsbus_publish(bus, &ev, NULL) == RSBUS_OK;
        } else {
            redisReply *rep;
            plain_ev_next(&pe);
            pe.len[15] = len;
            rep = (redisReply *)redisCommandArgv(c, PLAIN_ARGC, pe.argv, pe.len);
            ok = rep && rep->type == REDIS_REPLY_STRING;
            if (rep) freeReplyObject(rep);
        }
    }
    if (!ok) fprintf(stderr, "bench: W4 publisher: publish failed\n");
    _exit(ok ? 0 : 1);
}
static pid_t w4_fork_publisher(int use_rsbus, const char *key, long n, long rate) {
    pid_t pid;
    fflush(NULL);
    pid = fork();
    if (pid == 0) w4_publisher(use_rsbus, key, n, rate);
    if (pid < 0) fail("fork: %s", strerror(errno));
    return pid;
}
static int w4_reap(pid_t pid, const char *who) {
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) return fail("%s: the publisher process failed", who);
    return 0;
}

static int w4_rsbus(const char *key, long n, long rate, int seconds, w4_sink *s) {
    rsbus *bus;
    pid_t pid;
    rsbus_result r;
    int rc;
    if (del_key(key) || !(bus = open_bus(key, 0, "w", 100, NULL))) return -1;
    s->bus = bus;
    if (rsbus_subscribe(bus, "*", w4_handler, s) <= 0) { rsbus_close(bus); return fail("rsbus_subscribe"); }
    if ((pid = w4_fork_publisher(1, key, n, rate)) < 0) { rsbus_close(bus); return -1; }
    g_w4_stop = 0;
    alarm((unsigned)seconds + 20);
    r = rsbus_run(bus, &g_w4_stop);
    alarm(0);
    rc = w4_reap(pid, "W4 rsbus");
    if (r != RSBUS_OK) rc = fail("W4 rsbus_run: %s: %s", rsbus_result_str(r), rsbus_errmsg(bus));
    rsbus_close(bus);
    if (rc == 0 && (s->got != n || s->bad)) rc = fail("W4 rsbus: received %ld of %ld events (%ld bad)", s->got, n, s->bad);
    return rc;
}
static int w4_plain(const char *key, long n, long rate, int seconds, w4_sink *s) {
    const char *xv[] = XRG_ARGV(key, "100");
    size_t xl[11];
    redisContext *c;
    pid_t pid;
    int64_t deadline;
    int i, rc = 0;
    xv[3] = "w";
    for (i = 0; i < 11; i++) xl[i] = strlen(xv[i]);
    if (del_key(key) || create_group(key) || !(c = plain_connect())) return -1;
    if ((pid = w4_fork_publisher(0, key, n, rate)) < 0) { redisFree(c); return -1; }
    deadline = now_ns() + ((int64_t)seconds + 20) * 1000000000;
    while (s->got < n && now_ns() < deadline) {
        redisReply *rep = (redisReply *)redisCommandArgv(c, 11, xv, xl);
        const redisReply *entries;
        size_t j, k;
        int bad;
        if (!rep) { rc = fail("W4 hiredis: %s", c->errstr); break; }
        entries = xread_entries(rep, &bad);
        if (bad) { freeReplyObject(rep); rc = fail("W4 hiredis: unexpected XREADGROUP reply"); break; }
        if (!entries) { freeReplyObject(rep); continue; }
        for (j = 0; j < entries->elements; j++) {
            const redisReply *f = entries->element[j]->element[1];
            for (k = 0; f->type == REDIS_REPLY_ARRAY && k + 1 < f->elements; k += 2)
                if (f->element[k]->len == 4 && memcmp(f->element[k]->str, "data", 4) == 0)
                    w4_record(s, f->element[k + 1]->str, f->element[k + 1]->len);
        }
        i = ack_argv(key, entries);
        if (ack_reply_ok((redisReply *)redisCommandArgv(c, i, g_ackv, g_ackl), i - 3, "W4 hiredis")) rc = -1;
        freeReplyObject(rep);
        if (rc) break;
    }
    redisFree(c);
    if (w4_reap(pid, "W4 hiredis")) rc = -1;
    if (rc == 0 && (s->got != n || s->bad)) rc = fail("W4 hiredis: received %ld of %ld events (%ld bad)", s->got, n, s->bad);
    return rc;
}

static int w4(void) {
    const char *key = "bench:w4";
    const long rate = 5000;
    int seconds = g_quick ? 1 : 3;
    long n = g_quick ? rate / 2 : rate * seconds;
    double p50[2][MAX_ROUNDS], p99[2][MAX_ROUNDS], mx[2][MAX_ROUNDS], got_rate[2][MAX_ROUNDS];
    double *lat = (double *)malloc((size_t)n * sizeof *lat);
    size_t nr = (size_t)g_rounds;
    struct sigaction sa;
    int r, side, rc = -1;
    printf("\nW4 end-to-end latency: a forked publisher at %ld events/s for %ld events, the worker records\n"
           "    receive - send per event (rsbus: rsbus_publish -> rsbus_run with block_ms 100;\n"
           "    hiredis: XADD -> XREADGROUP COUNT 100 BLOCK 100 loop + XACK), %d rounds\n", rate, n, g_rounds);
    if (!lat) return fail("out of memory");
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = w4_on_alarm;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
    for (r = 0; r < g_rounds; r++) {
        for (side = 0; side < 2; side++) {
            w4_sink s;
            memset(&s, 0, sizeof s);
            s.expected = n;
            s.lat = lat;
            if (side == 0 ? w4_rsbus(key, n, rate, seconds, &s) : w4_plain(key, n, rate, seconds, &s)) goto out;
            qsort(lat, (size_t)n, sizeof *lat, cmp_double);
            p50[side][r] = pct_sorted(lat, (size_t)n, 50);
            p99[side][r] = pct_sorted(lat, (size_t)n, 99);
            mx[side][r] = lat[n - 1];
            got_rate[side][r] = s.last_sent > s.first_sent ? (double)(n - 1) * 1e9 / (double)(s.last_sent - s.first_sent) : 0;
        }
    }
    print_head();
    print_row("rsbus   p50 latency (us)", p50[0], nr);
    print_row("hiredis p50 latency (us)", p50[1], nr);
    print_row("rsbus   p99 latency (us)", p99[0], nr);
    print_row("hiredis p99 latency (us)", p99[1], nr);
    print_row("rsbus   max latency (us)", mx[0], nr);
    print_row("hiredis max latency (us)", mx[1], nr);
    print_row("rsbus   publish rate reached (/s)", got_rate[0], nr);
    print_row("hiredis publish rate reached (/s)", got_rate[1], nr);
    print_ratio("ratio p50 rsbus/hiredis", p50[0], p50[1], nr, LOWER_BETTER);
    print_ratio("ratio p99 rsbus/hiredis", p99[0], p99[1], nr, LOWER_BETTER);
    rc = 0;
out:
    signal(SIGALRM, SIG_DFL);
    free(lat);
    del_key(key);
    return rc;
}

/* ---- W5: claiming the pending entries of a dead consumer ----------------------------------- */

static int w5_prepare(const char *key, long n) {
    if (del_key(key) || fill_stream(key, n) || create_group(key) || read_into_dead(key, n)) return -1;
    return 0;
}
SIDE_FN int w5_rsbus(const char *key, long n, meas *m) {
    long count = 0;
    span t0;
    int64_t handled = 0;
    rsbus *bus = open_bus(key, 0, "claimer", 0, NULL);
    if (!bus) return -1;
    if (rsbus_subscribe(bus, "*", count_handler, &count) <= 0) { rsbus_close(bus); return fail("rsbus_subscribe"); }
    t0 = span_begin();
    PROF_BEGIN();
    for (;;) {
        rsbus_claim_stats cs;
        rsbus_result r = rsbus_claim(bus, 0, 1000, &cs);
        if (r != RSBUS_OK) {
            fail("W5 rsbus_claim: %s: %s", rsbus_result_str(r), rsbus_errmsg(bus));
            rsbus_close(bus);
            return -1;
        }
        handled += cs.handled;
        if (cs.checked == 0 || (cs.claimed == 0 && cs.deleted == 0)) break;
    }
    PROF_END("w5_rsbus");
    meas_end(m, &t0, (double)n);
    rsbus_close(bus);
    if (handled != n) return fail("W5 rsbus: rsbus_claim handled %lld entries, expected %ld", (long long)handled, n);
    return check_done(key, count, n, "W5 rsbus");
}
/* XAUTOCLAIM key g claimer 0 <cursor> COUNT 1000, dispatch, XACK the page; until the cursor is 0-0 */
SIDE_FN int w5_plain(redisContext *c, const char *key, long n, meas *m) {
    char cursor[64] = "0-0";
    const char *xv[8];
    size_t xl[8];
    long count = 0;
    int i;
    span t0;
    xv[0] = "XAUTOCLAIM"; xv[1] = key; xv[2] = GROUP; xv[3] = "claimer"; xv[4] = "0";
    xv[5] = cursor; xv[6] = "COUNT"; xv[7] = "1000";
    for (i = 0; i < 8; i++) xl[i] = strlen(xv[i]);
    t0 = span_begin();
    PROF_BEGIN();
    for (;;) {
        redisReply *rep = (redisReply *)redisCommandArgv(c, 8, xv, xl);
        const redisReply *entries;
        size_t j;
        if (!rep) return fail("W5 hiredis: %s", c->errstr);
        if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 2 || rep->element[0]->type != REDIS_REPLY_STRING ||
            rep->element[0]->len >= sizeof cursor || rep->element[1]->type != REDIS_REPLY_ARRAY) {
            fail("W5 hiredis: unexpected XAUTOCLAIM reply%s%s", rep->type == REDIS_REPLY_ERROR ? ": " : "",
                 rep->type == REDIS_REPLY_ERROR ? rep->str : "");
            freeReplyObject(rep);
            return -1;
        }
        entries = rep->element[1];
        for (j = 0; j < entries->elements; j++) plain_dispatch(entries->element[j], &count);
        i = ack_argv(key, entries);
        if (i > 3 && ack_reply_ok((redisReply *)redisCommandArgv(c, i, g_ackv, g_ackl), i - 3, "W5 hiredis")) {
            freeReplyObject(rep);
            return -1;
        }
        memcpy(cursor, rep->element[0]->str, rep->element[0]->len + 1);
        xl[5] = rep->element[0]->len;
        freeReplyObject(rep);
        if (strcmp(cursor, "0-0") == 0) break;
    }
    PROF_END("w5_plain");
    meas_end(m, &t0, (double)n);
    return check_done(key, count, n, "W5 hiredis");
}

static int w5(void) {
    const char *key = "bench:w5";
    long n = scaled(100000, 10000);
    double e0[MAX_ROUNDS] = { 0 }, e1[MAX_ROUNDS] = { 0 };
    meas ms[2][MAX_ROUNDS], d;
    redisContext *c = plain_connect();
    size_t nr = (size_t)g_rounds;
    int r, side, rc = -1;
    printf("\nW5 claim %ld pending entries of a dead consumer, %d rounds\n"
           "    (rsbus_claim(bus, 0, 1000, &cs) until nothing is pending, default batch_size 100;\n"
           "    hiredis: XAUTOCLAIM ... 0 <cursor> COUNT 1000 + XACK of each page)\n", n, g_rounds);
    if (!c) goto out;
    if (w5_prepare(key, n / 10) || w5_rsbus(key, n / 10, &d) || w5_prepare(key, n / 10) || w5_plain(c, key, n / 10, &d))
        goto out;
    for (r = 0; r < g_rounds; r++) {
        for (side = 0; side < 2; side++) {
            if (w5_prepare(key, n)) goto out;
            if (side == 0 ? w5_rsbus(key, n, &ms[0][r]) : w5_plain(c, key, n, &ms[1][r])) goto out;
        }
    }
    print_head();
    print_row("rsbus   events/s", col(ms[0], nr, 0, e0), nr);
    print_row("hiredis events/s", col(ms[1], nr, 0, e1), nr);
    print_ratio("ratio events/s rsbus/hiredis", e0, e1, nr, HIGHER_BETTER);
    table_set(T_W5, ms[0], ms[1], nr);
    print_cpu(ms[0], ms[1], nr);
    rc = 0;
out:
    if (c) redisFree(c);
    del_key(key);
    return rc;
}

/* ---- W6: JSON -------------------------------------------------------------------------------- */

static volatile size_t g_sink;

/* builds make_doc(.., 1)'s document with the writer */
static size_t w6_write(char *buf, size_t size, int64_t sent) {
    rsbus_jw w;
    size_t len = 0;
    rsbus_jw_init(&w, buf, size);
    rsbus_jw_obj(&w);
    rsbus_jw_key(&w, "sent_ns"); rsbus_jw_int(&w, sent);
    rsbus_jw_key(&w, "order_id"); rsbus_jw_int(&w, 48213);
    rsbus_jw_key(&w, "items");
    rsbus_jw_arr(&w);
    rsbus_jw_obj(&w);
    rsbus_jw_key(&w, "sku"); rsbus_jw_str(&w, "SKU-00001");
    rsbus_jw_key(&w, "qty"); rsbus_jw_int(&w, 1);
    rsbus_jw_key(&w, "price"); rsbus_jw_num(&w, 9.99);
    rsbus_jw_obj_end(&w);
    rsbus_jw_arr_end(&w);
    rsbus_jw_key(&w, "customer");
    rsbus_jw_obj(&w);
    rsbus_jw_key(&w, "id"); rsbus_jw_str(&w, "c-000123");
    rsbus_jw_key(&w, "name"); rsbus_jw_str(&w, "Ada Lovelace");
    rsbus_jw_key(&w, "address");
    rsbus_jw_obj(&w);
    rsbus_jw_key(&w, "city"); rsbus_jw_str(&w, "London");
    rsbus_jw_key(&w, "zip"); rsbus_jw_str(&w, "NW1 2DB");
    rsbus_jw_obj_end(&w);
    rsbus_jw_obj_end(&w);
    rsbus_jw_key(&w, "total"); rsbus_jw_num(&w, 44.48);
    rsbus_jw_key(&w, "currency"); rsbus_jw_str(&w, "EUR");
    rsbus_jw_obj_end(&w);
    return rsbus_jw_result(&w, &len) ? len : 0;
}

/* operations per second of one JSON operation over at least min_s seconds; what: 0 validate, 1 get, 2 write */
static double w6_rate(int what, const char *doc, size_t len, double min_s) {
    char out[512];
    long iters = 0;
    int64_t t0 = now_ns();
    double el;
    size_t acc = 0;
    do {
        int i;
        for (i = 0; i < 64; i++) {
            rsbus_jval v;
            if (what == 0) acc += (size_t)(rsbus_json_validate(doc, len, NULL) == RSBUS_OK);
            else if (what == 1) acc += rsbus_json_get(doc, len, "customer.address.zip", &v) == RSBUS_OK ? v.len : 0;
            else acc += w6_write(out, sizeof out, (int64_t)iters + i);
        }
        iters += 64;
        el = secs_since(t0);
    } while (el < min_s);
    g_sink += acc;
    return (double)iters / el;
}

static int w6(void) {
    static char big[70000];
    char small[512], wrote[512];
    size_t small_len = make_doc(small, sizeof small, now_ns(), 1), big_len, wlen;
    double vs[MAX_ROUNDS], gs[MAX_ROUNDS], vb[MAX_ROUNDS], gb[MAX_ROUNDS], wr[MAX_ROUNDS];
    double min_s = g_quick ? 0.05 : 0.25;
    size_t nr = (size_t)g_rounds;
    int items = 1, r;
    rsbus_jval v;
    while ((big_len = make_doc(big, sizeof big, now_ns(), items + 1)) != 0 && big_len <= 65536) items++;
    big_len = make_doc(big, sizeof big, now_ns(), items);
    wlen = w6_write(wrote, sizeof wrote, now_ns());
    printf("\nW6 JSON (rsbus only): validate and get(\"customer.address.zip\", after the items) on a %lu-byte and a\n"
           "    %lu-byte document; the writer building the %lu-byte document (fixed buffer), %d rounds\n",
           (unsigned long)small_len, (unsigned long)big_len, (unsigned long)wlen, g_rounds);
    if (rsbus_json_validate(small, small_len, NULL) != RSBUS_OK || rsbus_json_validate(big, big_len, NULL) != RSBUS_OK)
        return fail("W6: the test documents are not valid JSON");
    if (rsbus_json_get(big, big_len, "customer.address.zip", &v) != RSBUS_OK || v.type != RSBUS_JSTRING ||
        v.len != 9 || memcmp(v.ptr, "\"NW1 2DB\"", 9) != 0)
        return fail("W6: rsbus_json_get did not find customer.address.zip");
    if (!wlen || rsbus_json_validate(wrote, wlen, NULL) != RSBUS_OK) return fail("W6: the writer failed");
    for (r = 0; r < g_rounds; r++) {
        vs[r] = w6_rate(0, small, small_len, min_s) * (double)small_len / 1e6;
        gs[r] = w6_rate(1, small, small_len, min_s) * (double)small_len / 1e6;
        vb[r] = w6_rate(0, big, big_len, min_s) * (double)big_len / 1e6;
        gb[r] = w6_rate(1, big, big_len, min_s) * (double)big_len / 1e6;
        wr[r] = w6_rate(2, NULL, 0, min_s);
    }
    print_head();
    print_row("validate 200 B      (MB/s)", vs, nr);
    print_row("get      200 B      (MB/s)", gs, nr);
    print_row("validate 64 KiB     (MB/s)", vb, nr);
    print_row("get      64 KiB     (MB/s)", gb, nr);
    print_row("writer   200 B doc  (docs/s)", wr, nr);
    printf("    %-38s %12.0f\n", "validate 200 B      (docs/s, median)", stats_of(vs, nr).med * 1e6 / (double)small_len);
    return 0;
}

/* ---- W7: allocations ------------------------------------------------------------------------- */

typedef struct count_alloc { unsigned long allocs, reallocs, frees; } count_alloc;
static void *ca_alloc(void *user, size_t size) { ((count_alloc *)user)->allocs++; return malloc(size); }
static void *ca_realloc(void *user, void *p, size_t old_size, size_t new_size) {
    (void)old_size;
    ((count_alloc *)user)->reallocs++;
    return realloc(p, new_size);
}
static void ca_free(void *user, void *p, size_t size) { (void)size; ((count_alloc *)user)->frees++; free(p); }

/* rsbus_run's handler in W7: the counters are zeroed at entry start and copied at entry end (then it stops) */
typedef struct w7_run_ctx { rsbus *bus; count_alloc *ca, window; long count, start, end; } w7_run_ctx;
static rsbus_verdict w7_run_handler(const rsbus_msg *m, void *user) {
    w7_run_ctx *x = (w7_run_ctx *)user;
    (void)m;
    x->count++;
    if (x->count == x->start) memset(x->ca, 0, sizeof *x->ca);
    if (x->count == x->end) { x->window = *x->ca; rsbus_stop(x->bus); }
    return RSBUS_ACK;
}

static void w7_print(const char *what, const count_alloc *ca, long events) {
    printf("    %-38s %10.2f %10.2f %10.2f   %s\n", what, (double)ca->allocs * 1000.0 / (double)events,
           (double)ca->reallocs * 1000.0 / (double)events, (double)ca->frees * 1000.0 / (double)events,
           ca->allocs + ca->reallocs == 0 ? "ok (0)" : "ABOVE TARGET (0)");
}
/* mem://'s publishing: each stored entry is one allocation (freed when trimmed), so 1000 per 1000 events */
static void w7_print_mem(const char *what, const count_alloc *ca, long events) {
    double per = (double)ca->allocs * 1000.0 / (double)events;
    printf("    %-38s %10.2f %10.2f %10.2f   %s\n", what, per, (double)ca->reallocs * 1000.0 / (double)events,
           (double)ca->frees * 1000.0 / (double)events, per <= 1000.0 ? "ok (the entries: 1000)" : "ABOVE TARGET (1000)");
}
/* W7's steady state on bus, whose allocator counts into ca: n publishes, n/100 batches of 100, then polls
   of n entries (subscribed with count), each measured after a warm-up; pub_print prints the publishing
   rows. 0, or -1 when an rsbus call failed. */
static int w7_steady(rsbus *bus, count_alloc *ca, rsbus_event *evs, long n, long *count,
                     void (*pub_print)(const char *, const count_alloc *, long)) {
    long i, got = 0;
    int k;
    for (i = 0; i < 1000; i++) if (rsbus_publish(bus, &evs[0], NULL) != RSBUS_OK) return -1;
    memset(ca, 0, sizeof *ca);
    for (i = 0; i < n; i++) if (rsbus_publish(bus, &evs[0], NULL) != RSBUS_OK) return -1;
    pub_print("rsbus_publish", ca, n);
    for (i = 0; i < 10; i++) if (rsbus_publish_batch(bus, evs, 100, NULL) != RSBUS_OK) return -1;
    memset(ca, 0, sizeof *ca);
    for (i = 0; i < n / 100; i++) if (rsbus_publish_batch(bus, evs, 100, NULL) != RSBUS_OK) return -1;
    pub_print("rsbus_publish_batch (100)", ca, n / 100 * 100);
    /* poll: the stream now holds 2000 + 2n entries, all new to the group */
    if (rsbus_subscribe(bus, "*", count_handler, count) <= 0) return -1;
    for (i = 0; i < 20; i++) if ((k = rsbus_poll(bus, -1)) <= 0) return -1;
    memset(ca, 0, sizeof *ca);
    while (got < n) {
        if ((k = rsbus_poll(bus, -1)) <= 0) return -1;
        got += k;
    }
    w7_print("rsbus_poll (COUNT 100)", ca, got);
    return 0;
}

static int w7(void) {
    const char *key = "bench:w7";
    long n = scaled(10000, 2000), i, count = 0, got = 0;
    count_alloc ca;
    rsbus_allocator a;
    rsbus_event evs[100];
    rsbus *bus;
    int k;
    memset(&ca, 0, sizeof ca);
    a.alloc_fn = ca_alloc; a.realloc_fn = ca_realloc; a.free_fn = ca_free; a.user = &ca;
    printf("\nW7 allocator calls per 1,000 events in steady state (after a warm-up), %ld events each (target: 0)\n",
           n);
    if (del_key(key) || !(bus = open_bus(key, 0, "c1", 0, &a))) return -1;
    printf("    (rsbus_open: %lu allocs, %lu reallocs)\n", ca.allocs, ca.reallocs);
    printf("    %-38s %10s %10s %10s\n", "", "alloc", "realloc", "free");
    for (i = 0; i < 100; i++) event_init(&evs[i]);
    if (w7_steady(bus, &ca, evs, n, &count, w7_print) != 0) goto failed;
    rsbus_close(bus);
    /* rsbus_run: another consumer of the group reads the n entries left; the window is its entries after
       the first fifth (after its first claim and trim check, and the first batches) */
    {
        w7_run_ctx x;
        rsbus_result r;
        memset(&x, 0, sizeof x);
        if (!(bus = open_bus(key, 0, "c2", 1000, &a))) return -1;
        x.bus = bus; x.ca = &ca; x.start = n / 5; x.end = n;
        if (rsbus_subscribe(bus, "*", w7_run_handler, &x) <= 0) goto failed;
        r = run_with_alarm(bus, 120);
        if (r != RSBUS_OK || g_run_stop || x.count != n) goto failed;
        w7_print("rsbus_run (COUNT 100)", &x.window, n - x.start);
    }
    rsbus_close(bus);
    del_key(key);
    /* rsbus_poll over foreign entries (W8's layout): msg->fields comes from the bus's scratch */
    if (fill_foreign(key, n + 2000) || create_group(key)) return -1;
    g_foreign = 1;
    bus = open_bus(key, 0, "c1", 0, &a);
    g_foreign = 0;
    if (!bus) return -1;
    count = got = 0;
    if (rsbus_subscribe(bus, "*", count_handler, &count) <= 0) goto failed;
    for (i = 0; i < 20; i++) if ((k = rsbus_poll(bus, -1)) <= 0) goto failed;
    memset(&ca, 0, sizeof ca);
    while (got < n) {
        if ((k = rsbus_poll(bus, -1)) <= 0) goto failed;
        got += k;
    }
    w7_print("rsbus_poll foreign (COUNT 100)", &ca, got);
    rsbus_close(bus);
    del_key(key);
    return 0;
failed:
    fail("W7: an rsbus call failed: %s", rsbus_errmsg(bus));
    rsbus_close(bus);
    return -1;
}

/* ---- W12: mem:// ------------------------------------------------------------------------------ */

static rsbus *open_mem_bus(const char *consumer, int publish_only, const rsbus_allocator *a) {
    rsbus_config cfg;
    rsbus_error err;
    rsbus *bus;
    memset(&cfg, 0, sizeof cfg);
    cfg.url = "mem://bench";
    cfg.stream = "bench:w9";
    cfg.group = GROUP;
    cfg.consumer = consumer;
    cfg.group_start = "0";
    cfg.publish_only = publish_only;
    cfg.block_ms = 1000;
    cfg.max_len = 2000000;   /* never reached: memory is what the rounds publish */
    if (a) cfg.allocator = *a;
    bus = rsbus_open(&cfg, &err);
    if (!bus) fail("rsbus_open mem://: %s: %s", rsbus_result_str(err.code), err.msg);
    return bus;
}
typedef struct w12_run_ctx { rsbus *bus; long count, n; } w12_run_ctx;
static rsbus_verdict w12_run_handler(const rsbus_msg *m, void *user) {
    w12_run_ctx *x = (w12_run_ctx *)user;
    (void)m;
    if (++x->count == x->n) rsbus_stop(x->bus);
    return RSBUS_ACK;
}
/* One round: n single publishes, n in batches of 100, then a group reads them: half with rsbus_poll, half
   with rsbus_run. The namespace lives while 'keep' is open; the stream is deleted after the round. */
SIDE_FN int w12_round(long n, meas *pub, meas *batch, meas *poll, meas *run) {
    rsbus *keep = open_mem_bus("keep", 0, NULL), *bus = NULL;
    rsbus_event evs[100];
    long i, count = 0, got = 0;
    span t0;
    if (!keep) return -1;
    for (i = 0; i < 100; i++) event_init(&evs[i]);
    if (!(bus = open_mem_bus("pub", 1, NULL))) goto failed;
    t0 = span_begin();
    for (i = 0; i < n; i++) if (rsbus_publish(bus, &evs[0], NULL) != RSBUS_OK) goto failed;
    meas_end(pub, &t0, (double)n);
    t0 = span_begin();
    for (i = 0; i < n / 100; i++) if (rsbus_publish_batch(bus, evs, 100, NULL) != RSBUS_OK) goto failed;
    meas_end(batch, &t0, (double)(n / 100 * 100));
    rsbus_close(bus);
    if (!(bus = open_mem_bus("c1", 0, NULL))) goto failed;
    if (rsbus_subscribe(bus, "*", count_handler, &count) <= 0) goto failed;
    t0 = span_begin();
    while (got < n) {
        int k = rsbus_poll(bus, -1);
        if (k <= 0) goto failed;
        got += k;
    }
    meas_end(poll, &t0, (double)got);
    rsbus_close(bus);
    {
        w12_run_ctx x;
        long left = n / 100 * 100 + n - got;
        if (!(bus = open_mem_bus("c2", 0, NULL))) goto failed;
        x.bus = bus; x.count = 0; x.n = left;
        if (rsbus_subscribe(bus, "*", w12_run_handler, &x) <= 0) goto failed;
        t0 = span_begin();
        if (run_with_alarm(bus, 120) != RSBUS_OK || x.count != left) goto failed;
        meas_end(run, &t0, (double)left);
        rsbus_close(bus);
    }
    rsbus_close(keep);   /* the last bus of the namespace: it is freed */
    return 0;
failed:
    fail("W12: an rsbus call failed on mem://: %s", bus ? rsbus_errmsg(bus) : "open");
    if (bus) rsbus_close(bus);
    rsbus_close(keep);
    return -1;
}
static void w12_line(const char *label, const meas *m, int rounds, int t) {
    double x[MAX_ROUNDS] = { 0 }, y[MAX_ROUNDS] = { 0 };
    bstats e = stats_of(col(m, (size_t)rounds, 0, x), (size_t)rounds), c = stats_of(col(m, (size_t)rounds, 1, y), (size_t)rounds);
    printf("    %-30s %12.0f %12.0f %12.0f %10.2f", label, e.med, e.min, e.max, c.med);
    if (t >= 0 && g_table[t].have && g_table[t].rsbus > 0) printf("   %8.1f x Redis (%s)\n", e.med / g_table[t].rsbus, g_table[t].name);
    else printf("   (run W1-W3 too for the ratio to Redis)\n");
}
/* W7's line for a publish on mem://: one allocation per event is the entry the namespace keeps */
static int w12(void) {
    long n = scaled(100000, 10000), i;
    meas pub[MAX_ROUNDS], batch[MAX_ROUNDS], poll[MAX_ROUNDS], run[MAX_ROUNDS];
    int r;
    printf("\nW12 mem:// (in-process, no server), %ld events per side and round, %d rounds\n", n, g_rounds);
    printf("    %-30s %12s %12s %12s %10s\n", "events/s", "median", "min", "max", "CPU us/ev");
    for (r = 0; r < g_rounds; r++) if (w12_round(n, &pub[r], &batch[r], &poll[r], &run[r])) return -1;
    w12_line("rsbus_publish", pub, g_rounds, T_W1);
    w12_line("rsbus_publish_batch (100)", batch, g_rounds, T_W2_100);
    w12_line("rsbus_poll (COUNT 100)", poll, g_rounds, T_W3_POLL_NAIVE);
    w12_line("rsbus_run (COUNT 100)", run, g_rounds, T_W3_NAIVE);
    {   /* W7 on mem:// */
        count_alloc ca;
        rsbus_allocator a;
        rsbus_event evs[100];
        rsbus *keep, *bus;
        long count = 0;
        memset(&ca, 0, sizeof ca);
        a.alloc_fn = ca_alloc; a.realloc_fn = ca_realloc; a.free_fn = ca_free; a.user = &ca;
        for (i = 0; i < 100; i++) event_init(&evs[i]);
        printf("  W7 on mem:// (allocator calls per 1,000 events; the namespace's memory comes from the same allocator:\n"
               "  a published entry is one allocation, freed when it is trimmed, so publishing's target is 1000 allocs)\n");
        printf("    %-38s %10s %10s %10s\n", "", "alloc", "realloc", "free");
        if (!(keep = open_mem_bus("keep", 0, &a))) return -1;
        if (!(bus = open_mem_bus("c1", 0, &a))) { rsbus_close(keep); return -1; }
        if (w7_steady(bus, &ca, evs, n, &count, w7_print_mem) != 0) goto failed;
        rsbus_close(bus);
        rsbus_close(keep);
        return 0;
    failed:
        fail("W12 (W7 on mem://): an rsbus call failed: %s", rsbus_errmsg(bus));
        rsbus_close(bus);
        rsbus_close(keep);
        return -1;
    }
}

/* ---- main ------------------------------------------------------------------------------------ */

static void print_machine(void) {
    char line[512], model[256] = "unknown";
    struct utsname u;
    FILE *f = fopen("/proc/cpuinfo", "r");
    redisReply *rep;
    const char *ver = "unknown";
    size_t vlen = 7;
    if (f) {
        while (fgets(line, sizeof line, f)) {
            char *p = strchr(line, ':');
            if (strncmp(line, "model name", 10) != 0 || !p) continue;
            for (p++; *p == ' ' || *p == '\t'; p++) {}
            p[strcspn(p, "\n")] = '\0';
            snprintf(model, sizeof model, "%s", p);
            break;
        }
        fclose(f);
    }
    if (uname(&u) != 0) memset(&u, 0, sizeof u);
    printf("rsbus bench: rsbus %s vs plain hiredis\n", RSBUS_VERSION_STRING);
    printf("machine: %ld cpus online, %s, %s %s %s\n", sysconf(_SC_NPROCESSORS_ONLN), model, u.sysname, u.release,
           u.machine);
    rep = (redisReply *)redisCommand(g_admin, "INFO server");
    if (rep && rep->type == REDIS_REPLY_STRING) {
        const char *p = strstr(rep->str, "redis_version:");
        if (p) { ver = p + 14; vlen = strcspn(ver, "\r\n"); }
    }
    if ((f = fopen("/proc/loadavg", "r")) != NULL) {
        double l1 = 0;
        if (fscanf(f, "%lf", &l1) == 1)
            printf("load average (1 min) at start: %.2f%s\n", l1, l1 > 0.5 * (double)sysconf(_SC_NPROCESSORS_ONLN) ?
                   "  -- the machine is busy: expect noisy numbers, compare the per-round ratios" : "");
        fclose(f);
    }
    printf("redis-server %.*s (unix socket, no persistence), hiredis %d.%d.%d\n", (int)vlen, ver, HIREDIS_MAJOR,
           HIREDIS_MINOR, HIREDIS_PATCH);
    if (rep) freeReplyObject(rep);
    printf("payload: %lu bytes of JSON, type %s, %d rounds%s\n", (unsigned long)g_payload_len, TYPE, g_rounds,
           g_quick ? " (--quick)" : "");
}

/* ---- W10: replicated publish (publish_wait_replicas 1) against a local replica --------------------- */

/* A replica of the bench's server (started on first use, stopped at exit): WAIT 1 has someone to wait for. */
static test_redis g_replica;
static int g_replica_up;
#define W10_WAIT_MS 1000                  /* both sides: WAIT 1 1000 (a busy machine should not fall short) */
static int w10_replica(void) {
    char conf[128];
    int64_t deadline;
    if (g_replica_up) return 0;
    if (admin_ok((redisReply *)redisCommand(g_admin, "CONFIG SET repl-diskless-sync-delay 0"), "CONFIG SET")) return -1;
    snprintf(conf, sizeof conf, "replicaof 127.0.0.1 %d\n", g_redis.port);
    if (test_redis_start(&g_replica, conf) != 0) return fail("W10: the replica did not start");
    g_replica_up = 1;
    /* ready once the master lists it with an acknowledged offset (WAIT counts it from then on) */
    for (deadline = now_ns() + (int64_t)15000000000; now_ns() < deadline; ) {
        redisReply *rep = (redisReply *)redisCommand(g_admin, "ROLE");
        int ok = rep && rep->type == REDIS_REPLY_ARRAY && rep->elements >= 3 && rep->element[2]->type == REDIS_REPLY_ARRAY &&
                 rep->element[2]->elements == 1 && rep->element[2]->element[0]->elements >= 3 &&
                 atol(rep->element[2]->element[0]->element[2]->str) > 0;
        if (rep) freeReplyObject(rep);
        if (ok) return 0;
        sleep_until_ns(now_ns() + 10000000);
    }
    return fail("W10: the replica did not sync within 15 s");
}
static rsbus *w10_bus(const char *key, int wait) {
    rsbus_config cfg;
    rsbus_error err;
    rsbus *bus;
    memset(&cfg, 0, sizeof cfg);
    cfg.url = g_redis.unix_url;
    cfg.stream = key;
    cfg.publish_only = 1;
    cfg.publish_wait_replicas = wait;
    cfg.publish_wait_ms = W10_WAIT_MS;
    bus = rsbus_open(&cfg, &err);
    if (!bus) fail("rsbus_open: %s: %s", rsbus_result_str(err.code), err.msg);
    return bus;
}
/* calls x (one publish or a batch); lat (NULL: not kept) gets each call's time in us; a WAIT that fell
   short is counted in *shorts, not a failure */
SIDE_FN int w10_rsbus(rsbus *bus, const rsbus_event *evs, size_t batch, long calls, double *lat, long *shorts,
                     meas *m) {
    span t0 = span_begin();
    long i;
    PROF_BEGIN();
    for (i = 0; i < calls; i++) {
        int64_t t = now_ns();
        rsbus_result r = batch == 1 ? rsbus_publish(bus, evs, NULL) : rsbus_publish_batch(bus, evs, batch, NULL);
        if (lat) lat[i] = (double)(now_ns() - t) / 1e3;
        if (r == RSBUS_E_REPLICAS) ++*shorts;
        else if (r != RSBUS_OK) return fail("W10 rsbus publish: %s: %s", rsbus_result_str(r), rsbus_errmsg(bus));
    }
    PROF_END("w10_rsbus");
    meas_end(m, &t0, (double)calls * (double)batch);
    return 0;
}
/* XADD (or MULTI, batch x XADD, EXEC) and WAIT 1 W10_WAIT_MS appended, one write, the replies read */
SIDE_FN int w10_plain(redisContext *c, plain_ev *pe, size_t batch, long calls, double *lat, long *shorts, meas *m) {
    static const char *multi = "MULTI", *exec = "EXEC";
    static const size_t multi_len = 5, exec_len = 4;
    const char *wait_argv[3] = { "WAIT", "1", NULL };
    size_t wait_len[3] = { 4, 1, 0 };
    char wait_ms[16];
    span t0 = span_begin();
    long k;
    snprintf(wait_ms, sizeof wait_ms, "%d", W10_WAIT_MS);
    wait_argv[2] = wait_ms;
    wait_len[2] = strlen(wait_ms);
    PROF_BEGIN();
    for (k = 0; k < calls; k++) {
        int64_t t = now_ns();
        size_t i, nrep = batch == 1 ? 2 : batch + 3;
        if (batch > 1 && redisAppendCommandArgv(c, 1, &multi, &multi_len) != REDIS_OK) return fail("W10 hiredis: %s", c->errstr);
        for (i = 0; i < batch; i++) {
            plain_ev_next(pe);
            if (redisAppendCommandArgv(c, PLAIN_ARGC, pe->argv, pe->len) != REDIS_OK) return fail("W10 hiredis: %s", c->errstr);
        }
        if (batch > 1 && redisAppendCommandArgv(c, 1, &exec, &exec_len) != REDIS_OK) return fail("W10 hiredis: %s", c->errstr);
        if (redisAppendCommandArgv(c, 3, wait_argv, wait_len) != REDIS_OK) return fail("W10 hiredis: %s", c->errstr);
        for (i = 0; i < nrep; i++) {
            void *v = NULL;
            const redisReply *rep;
            int ok;
            if (redisGetReply(c, &v) != REDIS_OK) return fail("W10 hiredis: %s", c->errstr);
            rep = (const redisReply *)v;
            if (i == nrep - 1) {
                ok = rep->type == REDIS_REPLY_INTEGER;
                if (ok && rep->integer < 1) ++*shorts;
            } else if (batch == 1) {
                ok = rep->type == REDIS_REPLY_STRING;
            } else if (i <= batch) {
                ok = rep->type == REDIS_REPLY_STATUS;
            } else {
                ok = rep->type == REDIS_REPLY_ARRAY && rep->elements == batch;
            }
            freeReplyObject(v);
            if (!ok) return fail("W10 hiredis: unexpected reply %lu", (unsigned long)i);
        }
        if (lat) lat[k] = (double)(now_ns() - t) / 1e3;
    }
    PROF_END("w10_plain");
    meas_end(m, &t0, (double)calls * (double)batch);
    return 0;
}

/* sides: 0 rsbus with publish_wait_replicas 1, 1 hiredis XADD + WAIT, 2 rsbus without WAIT (what WAIT costs) */
static int w10(size_t batch, int table) {
    const char *key = "bench:w10";
    long n = batch == 1 ? scaled(10000, 1000) : scaled(100000, 10000), calls = n / (long)batch;
    double p50[3][MAX_ROUNDS], p99[3][MAX_ROUNDS], e[3][MAX_ROUNDS];
    meas ms[3][MAX_ROUNDS], d;
    double *lat = (double *)malloc((size_t)calls * sizeof *lat);
    rsbus_event *evs = (rsbus_event *)malloc(batch * sizeof *evs);
    rsbus *bus = NULL, *nowait = NULL;
    redisContext *c = NULL;
    plain_ev pe;
    long shorts[3] = { 0, 0, 0 };
    size_t i, nr = (size_t)g_rounds;
    int r, side, rc = -1;
    printf("\nW10 replicated publish, %lu event%s per call, WAIT 1 %d after each (one round trip), a local replica:"
           " %ld events per round, %d rounds\n", (unsigned long)batch, batch == 1 ? "" : "s", W10_WAIT_MS,
           calls * (long)batch, g_rounds);
    if (!lat || !evs || w10_replica() != 0) goto out;
    bus = w10_bus(key, 1);
    nowait = w10_bus(key, 0);
    c = plain_connect();
    if (!bus || !nowait || !c) goto out;
    for (i = 0; i < batch; i++) event_init(&evs[i]);
    plain_ev_init(&pe, key, g_payload, g_payload_len);
    if (w10_rsbus(bus, evs, batch, 5, NULL, &shorts[0], &d) || w10_plain(c, &pe, batch, 5, NULL, &shorts[1], &d)) goto out;
    shorts[0] = shorts[1] = 0;
    for (r = 0; r < g_rounds; r++) {
        for (side = 0; side < 3; side++) {
            if (del_key(key)) goto out;
            if (side == 1 ? w10_plain(c, &pe, batch, calls, lat, &shorts[1], &ms[1][r])
                          : w10_rsbus(side == 0 ? bus : nowait, evs, batch, calls, lat, &shorts[side], &ms[side][r]))
                goto out;
            if (check_len(key, calls * (long)batch, side == 1 ? "W10 hiredis" : "W10 rsbus")) goto out;
            qsort(lat, (size_t)calls, sizeof *lat, cmp_double);
            p50[side][r] = pct_sorted(lat, (size_t)calls, 50);
            p99[side][r] = pct_sorted(lat, (size_t)calls, 99);
        }
    }
    print_head();
    print_row("rsbus WAIT   events/s", col(ms[0], nr, 0, e[0]), nr);
    print_row("hiredis WAIT events/s", col(ms[1], nr, 0, e[1]), nr);
    print_row("rsbus no WAIT events/s", col(ms[2], nr, 0, e[2]), nr);
    print_row("rsbus WAIT   p50 per call (us)", p50[0], nr);
    print_row("hiredis WAIT p50 per call (us)", p50[1], nr);
    print_row("rsbus no WAIT p50 per call (us)", p50[2], nr);
    print_row("rsbus WAIT   p99 per call (us)", p99[0], nr);
    print_row("hiredis WAIT p99 per call (us)", p99[1], nr);
    print_row("rsbus no WAIT p99 per call (us)", p99[2], nr);
    print_ratio("ratio events/s rsbus/hiredis", e[0], e[1], nr, HIGHER_BETTER);
    print_ratio("ratio p50 rsbus/hiredis", p50[0], p50[1], nr, LOWER_BETTER);
    print_ratio("ratio events/s WAIT/no WAIT (rsbus)", e[0], e[2], nr, "(what WAIT 1 keeps of the rate)");
    printf("    WAITs that fell short (not counted as failures): rsbus %ld, hiredis %ld\n", shorts[0], shorts[1]);
    table_set(table, ms[0], ms[1], nr);
    print_cpu(ms[0], ms[1], nr);
    rc = 0;
out:
    free(lat);
    free(evs);
    rsbus_close(bus);
    rsbus_close(nowait);
    if (c) redisFree(c);
    return rc;
}

static void print_table(void) {
    int i;
    printf("\nsummary (medians; ratio = rsbus / hiredis: > 1 means rsbus is faster)\n");
    printf("%-36s | %14s | %14s | %7s\n", "workload", "rsbus median", "hiredis median", "ratio");
    for (i = 0; i < T_COUNT; i++) {
        if (!g_table[i].have) { printf("%-36s | %14s | %14s | %7s\n", g_table[i].name, "-", "-", "-"); continue; }
        printf("%-36s | %14.0f | %14.0f | %7.3f\n", g_table[i].name, g_table[i].rsbus, g_table[i].plain,
               g_table[i].plain > 0 ? g_table[i].rsbus / g_table[i].plain : 0);
    }
    printf("\nclient CPU per event, user + system (medians, us; ratio < 1 means rsbus costs the caller less)\n");
    printf("%-36s | %14s | %14s | %7s\n", "workload", "rsbus", "hiredis", "ratio");
    for (i = 0; i < T_COUNT; i++) {
        if (!g_table[i].have) continue;
        printf("%-36.*s | %14.2f | %14.2f | %7.3f\n", (int)strcspn(g_table[i].name, "("), g_table[i].name,
               g_table[i].rsbus_cpu, g_table[i].plain_cpu,
               g_table[i].plain_cpu > 0 ? g_table[i].rsbus_cpu / g_table[i].plain_cpu : 0);
    }
}

static void usage(FILE *f) {
    fprintf(f, "usage: bench [--quick] [--rounds N] [--only W1|...|W12[,...]]...\n");
}


/* ---- W9: partitions on one server ----------------------------------------------------------- */

/* Publishing (batches of 100, keys k0..k999) and consuming (rsbus_run, COUNT 100 from each partition) of
   one stream made of N partitions, N = 1 (unpartitioned), 4 and 8, against the same server; the ratio of
   each N to the unpartitioned stream in the same round, and XREADGROUP calls per 1000 events consumed
   (one read names every partition: it must not grow with N). */
/* Calls of a command a server counted (INFO commandstats), on connection c; cmdstat_calls: the bench's server. */
static long long cmdstat_calls_on(redisContext *c, const char *cmd) {
    redisReply *rep = c ? (redisReply *)redisCommand(c, "INFO commandstats") : NULL;
    char key[64];
    const char *p;
    long long v = 0;
    snprintf(key, sizeof key, "cmdstat_%s:calls=", cmd);
    if (rep && rep->type == REDIS_REPLY_STRING && (p = strstr(rep->str, key)) != NULL) v = strtoll(p + strlen(key), NULL, 10);
    if (rep) freeReplyObject(rep);
    return v;
}
static long long cmdstat_calls(const char *cmd) { return cmdstat_calls_on(g_admin, cmd); }
static int w9_del(const char *stream, int nparts) {
    int i;
    char key[96];
    for (i = 0; i < (nparts > 1 ? nparts : 1); i++) {
        if (nparts > 1) snprintf(key, sizeof key, "%s:p%d", stream, i); else snprintf(key, sizeof key, "%s", stream);
        if (del_key(key)) return -1;
        snprintf(key, sizeof key, nparts > 1 ? "{%s:p%d}:dlq" : "{%s}:dlq", stream, i);
        if (nparts <= 1) snprintf(key, sizeof key, "{%s}:dlq", stream);
        if (del_key(key)) return -1;
    }
    snprintf(key, sizeof key, "{%s}:meta", stream);
    return del_key(key);
}
/* W9 and W11: n events published in batches of 100 (keys k0..k999), then consumed by rsbus_run; the bus
   is the caller's (opened on the stream with its partitions) and stays open. */
SIDE_FN int parts_pub_con(rsbus *bus, long n, meas *pub, meas *con, const char *w) {
    rsbus_event evs[100];
    char keys[100][8];
    w3_run_ctx x;
    span t0;
    long i, k;
    rsbus_result r;
    for (k = 0; k < 100; k++) event_init(&evs[k]);
    t0 = span_begin();
    for (i = 0; i < n; i += 100) {
        for (k = 0; k < 100; k++) {
            snprintf(keys[k], sizeof keys[k], "k%ld", (i + k) % 1000);
            evs[k].key = keys[k];
        }
        if ((r = rsbus_publish_batch(bus, evs, 100, NULL)) != RSBUS_OK)
            return fail("%s rsbus_publish_batch: %s: %s", w, rsbus_result_str(r), rsbus_errmsg(bus));
    }
    meas_end(pub, &t0, (double)n);
    x.bus = bus; x.count = 0; x.n = n;
    if (rsbus_subscribe(bus, "*", w3_run_handler, &x) <= 0) return fail("rsbus_subscribe");
    t0 = span_begin();
    r = run_with_alarm(bus, 120);
    meas_end(con, &t0, (double)n);
    if (r != RSBUS_OK || g_run_stop || x.count != n) return fail("%s rsbus_run: handled %ld of %ld", w, x.count, n);
    return 0;
}
/* A bus for W9 and W11 on url, the stream in nparts partitions (0: unpartitioned). */
static rsbus *parts_bus(const char *url, const char *stream, int nparts, const char *w) {
    rsbus_config cfg;
    rsbus_error err;
    rsbus *bus;
    memset(&cfg, 0, sizeof cfg);
    cfg.url = url;
    cfg.stream = stream;
    cfg.group = GROUP;
    cfg.consumer = "c1";
    cfg.group_start = "0";
    cfg.block_ms = 1000;
    cfg.partitions = nparts;
    if (!(bus = rsbus_open(&cfg, &err))) fail("%s rsbus_open: %s: %s", w, rsbus_result_str(err.code), err.msg);
    return bus;
}
/* W9 and W11's table: rates of partitions 1, 4, 8, one more row per count (what it measured), ratios. */
static void parts_table(meas pub[3][MAX_ROUNDS], meas con[3][MAX_ROUNDS], double more[3][MAX_ROUNDS],
                        const char *more_label, const char *goal) {
    static const int counts[3] = { 1, 4, 8 };
    double x[MAX_ROUNDS] = { 0 }, y[MAX_ROUNDS] = { 0 };
    size_t nr = (size_t)g_rounds;
    char label[80];
    int j;
    print_head();
    for (j = 0; j < 3; j++) {
        snprintf(label, sizeof label, "publish events/s, partitions %d", counts[j]);
        print_row(label, col(pub[j], nr, 0, x), nr);
    }
    for (j = 0; j < 3; j++) {
        snprintf(label, sizeof label, "consume events/s, partitions %d", counts[j]);
        print_row(label, col(con[j], nr, 0, x), nr);
    }
    for (j = 0; j < 3; j++) {
        snprintf(label, sizeof label, "%s, %d", more_label, counts[j]);
        print_row(label, more[j], nr);
    }
    for (j = 1; j < 3; j++) {
        snprintf(label, sizeof label, "ratio publish %d / unpartitioned", counts[j]);
        print_ratio(label, col(pub[j], nr, 0, x), col(pub[0], nr, 0, y), nr, goal);
        snprintf(label, sizeof label, "ratio consume %d / unpartitioned", counts[j]);
        print_ratio(label, col(con[j], nr, 0, x), col(con[0], nr, 0, y), nr, goal);
    }
}
SIDE_FN int w9_side(const char *stream, int nparts, long n, meas *pub, meas *con, double *reads_per_k) {
    rsbus *bus = parts_bus(g_redis.unix_url, stream, nparts, "W9");
    long long reads0 = cmdstat_calls("xreadgroup");
    int bad;
    if (!bus) return -1;
    bad = parts_pub_con(bus, n, pub, con, "W9");
    *reads_per_k = (double)(cmdstat_calls("xreadgroup") - reads0) * 1000.0 / (double)n;
    rsbus_close(bus);
    return bad;
}
static int w9(void) {
    static const int counts[3] = { 1, 4, 8 };
    long n = scaled(100000, 10000);
    meas pub[3][MAX_ROUNDS], con[3][MAX_ROUNDS];
    double reads[3][MAX_ROUNDS];
    int r, j;
    char stream[64];
    printf("\nW9 partitions on one server: publish (batches of 100, 1000 keys) and consume (rsbus_run, COUNT 100)\n"
           "   %ld events per round, %d rounds; partitions 1 (unpartitioned), 4, 8 in turn\n", n, g_rounds);
    for (r = 0; r < g_rounds; r++) {
        for (j = 0; j < 3; j++) {
            snprintf(stream, sizeof stream, "bench:w9:%d:%d", counts[j], r);
            if (w9_side(stream, counts[j] > 1 ? counts[j] : 0, n, &pub[j][r], &con[j][r], &reads[j][r])) return -1;
            if (w9_del(stream, counts[j])) return -1;
        }
    }
    parts_table(pub, con, reads, "XREADGROUP per 1000 events", "(goal >= 0.9)");
    return 0;
}

/* ---- W11: partitions on a local Redis Cluster --------------------------------------------------- */

static long long node_calls(const test_redis *n, const char *cmd) {
    redisContext *c = test_redis_connect(n);
    long long v = cmdstat_calls_on(c, cmd);
    if (c) redisFree(c);
    return v;
}
SIDE_FN int w11_side(test_cluster *cl, const char *stream, int nparts, long n, meas *pub, meas *con, double *poll_us,
                     long long *xadds) {
    rsbus *bus = parts_bus(cl->url, stream, nparts, "W11");
    long long before[TEST_CLUSTER_MAX];
    long i;
    int m;
    if (!bus) return -1;
    for (m = 0; m < cl->n; m++) before[m] = node_calls(&cl->node[m], "xadd");
    if (parts_pub_con(bus, n, pub, con, "W11")) { rsbus_close(bus); return -1; }
    for (m = 0; m < cl->n; m++) xadds[m] = node_calls(&cl->node[m], "xadd") - before[m];
    {   /* empty polls: every partition read, nothing there */
        double t = (double)now_ns();
        for (i = 0; i < 200; i++)
            if (rsbus_poll(bus, 0) != 0) { rsbus_close(bus); return fail("W11 empty poll: %s", rsbus_errmsg(bus)); }
        *poll_us = ((double)now_ns() - t) / 1000.0 / 200.0;
    }
    rsbus_close(bus);
    return 0;
}
static int w11(void) {
    static const int counts[3] = { 1, 4, 8 };
    long n = scaled(50000, 5000);
    meas pub[3][MAX_ROUNDS], con[3][MAX_ROUNDS];
    double polls[3][MAX_ROUNDS];
    long long xadds[3][TEST_CLUSTER_MAX];
    int r, j, m;
    char stream[64];
    test_cluster cl;
    if (test_cluster_start(&cl, 3, 0) != 0) { test_cluster_stop(&cl); return fail("W11: the cluster did not start"); }
    printf("\nW11 partitions on a local Redis Cluster of 3 masters: publish (batches of 100, 1000 keys) and consume\n"
           "   (rsbus_run), %ld events per round, %d rounds; partitions 1, 4, 8 in turn. The three servers share this\n"
           "   machine's cores with the client: the totals show the cost, the XADD spread shows the gain\n", n, g_rounds);
    memset(xadds, 0, sizeof xadds);
    for (r = 0; r < g_rounds; r++) {
        for (j = 0; j < 3; j++) {
            long long xa[TEST_CLUSTER_MAX];
            snprintf(stream, sizeof stream, "bench:w11:%d:%d", counts[j], r);
            if (w11_side(&cl, stream, counts[j] > 1 ? counts[j] : 0, n, &pub[j][r], &con[j][r], &polls[j][r], xa)) {
                test_cluster_stop(&cl);
                return -1;
            }
            for (m = 0; m < cl.n; m++) xadds[j][m] += xa[m];
        }
    }
    test_cluster_stop(&cl);
    parts_table(pub, con, polls, "empty rsbus_poll us", "");
    for (j = 0; j < 3; j++) {   /* over the rounds (each round's stream has its own slots) */
        long long total = 0;
        for (m = 0; m < cl.n; m++) total += xadds[j][m];
        printf("    XADDs per master, partitions %d:", counts[j]);
        for (m = 0; m < cl.n; m++) printf(" %5.1f%%", total ? 100.0 * (double)xadds[j][m] / (double)total : 0.0);
        printf("\n");
    }
    return 0;
}

int main(int argc, char **argv) {
    int i, rounds_set = 0;
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) g_quick = 1;
        else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) {
            g_rounds = atoi(argv[++i]);
            rounds_set = 1;
            if (g_rounds < 1 || g_rounds > MAX_ROUNDS) { fprintf(stderr, "--rounds: 1..%d\n", MAX_ROUNDS); return 1; }
        } else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc) {
            char *s = argv[++i], *tok;
            for (tok = strtok(s, ","); tok && g_nonly < 32; tok = strtok(NULL, ",")) {
                char *end;
                long w = (tok[0] | 0x20) == 'w' ? strtol(tok + 1, &end, 10) : 0;
                if ((tok[0] | 0x20) != 'w' || !tok[1] || *end || w < 1 || w > 12) {
                    fprintf(stderr, "--only: %s is not one of W1..W12\n", tok);
                    return 1;
                }
                g_only[g_nonly++] = tok;
            }
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 1;
        }
    }
    (void)test_summary;                  /* test.h's harness is not used here: a bench has no checks that pass */
    (void)test__fail;
    if (g_quick && !rounds_set) g_rounds = 2;
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (test_redis_start(&g_redis, "appendonly no\nsave \"\"\n") != 0) return 1;
    if (!(g_admin = test_redis_connect(&g_redis))) { test_redis_stop(&g_redis); return 1; }
    g_payload_len = make_doc(g_payload, sizeof g_payload, now_ns(), 1);
    print_machine();

    if (selected("W1")) w1();
    if (selected("W2")) { w2(100, T_W2_100); w2(1000, T_W2_1000); }
    if (selected("W3")) w3();
    if (selected("W4")) w4();
    if (selected("W5")) w5();
    if (selected("W6")) w6();
    if (selected("W7")) w7();
    if (selected("W8")) w8();
    if (selected("W9")) w9();
    if (selected("W10")) { w10(1, T_W10_1); w10(100, T_W10_100); }
    if (selected("W11")) w11();
    if (selected("W12")) w12();
    print_table();
    if (g_replica_up) test_redis_stop(&g_replica);

    redisFree(g_admin);
    test_redis_stop(&g_redis);
    if (g_failed) fprintf(stderr, "bench: the run failed (see above)\n");
    return g_failed ? 1 : 0;
}
