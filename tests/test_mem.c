/* test_mem.c - what only the in-process bus (mem://) has: threads sharing a namespace, blocking reads
   woken by another thread's publish, namespaces kept apart and freed with their last bus, the configs it
   refuses, and its answers to bad commands compared with a real redis-server's, command by command.
   (The semantics it shares with Redis are tested by test_bus, test_dedupe, test_schema and test_interop,
   which make test runs a second time on mem://.) make test also runs this program built with
   ThreadSanitizer (build/tsan/test_mem). */
#define _POSIX_C_SOURCE 200809L
#define RSBUS_IMPLEMENTATION
#include "../rsbus.h"
#include "test.h"
#include "redis_server.h"
#include "bus_util.h"
#include <pthread.h>

#ifdef RSBUS_NO_MEM
/* Built with RSBUS_NO_MEM: mem:// is refused, saying why. */
TEST(mem_compiled_out) {
    rsbus_config c = test_cfg("t:nomem", "g", "c");
    rsbus_error err;
    c.url = "mem://";
    CHECK(rsbus_open(&c, &err) == NULL);
    CHECK_EQ_INT(err.code, RSBUS_E_ARG);
    CHECK_EQ_STR(err.msg, "url: mem:// is compiled out by RSBUS_NO_MEM");
}
int main(void) {
    fprintf(stderr, "test_mem: built with RSBUS_NO_MEM: testing what such a build promises\n");
    RUN(mem_compiled_out);
    return test_summary("test_mem");
}
#else
static rsbus *open_mem(const char *url, const char *stream, const char *group, const char *consumer) {
    rsbus_config c = test_cfg(stream, group, consumer);
    c.url = url;
    c.log = NULL;
    return open_cfg(&c);
}
static rsbus_result pub_id(rsbus *bus, const char *type, const char *id) {
    rsbus_event ev;
    memset(&ev, 0, sizeof ev);
    ev.type = type;
    ev.id = id;
    ev.data = "{}";
    return rsbus_publish(bus, &ev, NULL);
}

/* ---- a publisher thread, consumer threads of one group and one of a second group ---- */
#define T_EVENTS 20000
#define T_CONSUMERS 3
static pthread_mutex_t seen_mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned char seen_g1[T_EVENTS], seen_g2[T_EVENTS];
static int handled_g1, handled_g2, dup_g1, bad_ids, exited;

typedef struct tconsumer { const char *group, *name; unsigned char *seen; rsbus_result r; int opened; rsbus *bus; } tconsumer;
/* Each consumer stops itself when it gets a "t.stop" event (rsbus_stop from its own thread): the main
   thread publishes those until every consumer is gone. */
static rsbus_verdict thread_handler(const rsbus_msg *m, void *user) {
    tconsumer *t = (tconsumer *)user;
    unsigned char *seen = t->seen;
    long v = m->id ? strtol(m->id, NULL, 10) : -1;
    if (strcmp(m->type, "t.stop") == 0) { rsbus_stop(t->bus); return RSBUS_ACK; }
    pthread_mutex_lock(&seen_mu);
    if (v < 0 || v >= T_EVENTS) bad_ids++;
    else {
        if (seen[v]) { if (seen == seen_g1) dup_g1++; }
        else if (seen == seen_g1) handled_g1++;
        else handled_g2++;
        seen[v] = 1;
    }
    pthread_mutex_unlock(&seen_mu);
    return RSBUS_ACK;
}
static void *consumer_main(void *p) {
    tconsumer *t = (tconsumer *)p;
    rsbus *bus = open_mem("mem://threads", "t:threads", t->group, t->name);
    t->r = RSBUS_E_ARG;
    if (bus) {
        t->opened = 1;
        t->bus = bus;
        if (rsbus_subscribe(bus, "*", thread_handler, t) > 0) t->r = rsbus_run(bus, NULL);
        rsbus_close(bus);
    }
    pthread_mutex_lock(&seen_mu);
    exited++;
    pthread_mutex_unlock(&seen_mu);
    return NULL;
}
static int all_exited(rsbus *pub) {
    int n;
    pthread_mutex_lock(&seen_mu);
    n = exited;
    pthread_mutex_unlock(&seen_mu);
    if (n < T_CONSUMERS + 1) (void)pub_id(pub, "t.stop", NULL);
    return n == T_CONSUMERS + 1;
}
static int published_ok;
static void *publisher_main(void *p) {
    rsbus *bus = open_mem("mem://threads", "t:threads", "g1", "pub");
    int i;
    (void)p;
    if (!bus) return NULL;
    for (i = 0; i < T_EVENTS; i++) {
        char id[16];
        snprintf(id, sizeof id, "%d", i);
        if (pub_id(bus, "t.ev", id) == RSBUS_OK) published_ok++;
    }
    rsbus_close(bus);
    return NULL;
}
static int handled_all(void) {
    int done;
    pthread_mutex_lock(&seen_mu);
    done = handled_g1 == T_EVENTS && handled_g2 == T_EVENTS;
    pthread_mutex_unlock(&seen_mu);
    return done;
}

TEST(threads_share_a_namespace_and_lose_nothing) {
    pthread_t pub, cons[T_CONSUMERS + 1];
    tconsumer tc[T_CONSUMERS + 1];
    static const char *names[T_CONSUMERS] = { "c1", "c2", "c3" };
    rsbus *keep;
    int i;
    /* the groups exist before the first publish, so each gets every event */
    keep = open_mem("mem://threads", "t:threads", "g1", "keeper");
    REQUIRE(keep != NULL);
    {
        rsbus *g2 = open_mem("mem://threads", "t:threads", "g2", "keeper");
        REQUIRE(g2 != NULL);
        rsbus_close(g2);
    }
    for (i = 0; i <= T_CONSUMERS; i++) {
        memset(&tc[i], 0, sizeof tc[i]);
        tc[i].group = i < T_CONSUMERS ? "g1" : "g2";
        tc[i].name = i < T_CONSUMERS ? names[i] : "solo";
        tc[i].seen = i < T_CONSUMERS ? seen_g1 : seen_g2;
        REQUIRE(pthread_create(&cons[i], NULL, consumer_main, &tc[i]) == 0);
    }
    REQUIRE(pthread_create(&pub, NULL, publisher_main, NULL) == 0);
    pthread_join(pub, NULL);
    CHECK_EQ_INT(published_ok, T_EVENTS);
    WAIT_UNTIL(handled_all(), 60000);
    WAIT_UNTIL(all_exited(keep), 30000);
    for (i = 0; i <= T_CONSUMERS; i++) {
        pthread_join(cons[i], NULL);
        CHECK(tc[i].opened);
        CHECK_EQ_INT(tc[i].r, RSBUS_OK);
    }
    CHECK_EQ_INT(handled_g1, T_EVENTS);   /* lost: 0 */
    CHECK_EQ_INT(handled_g2, T_EVENTS);
    CHECK_EQ_INT(bad_ids, 0);
    fprintf(stderr, "  %d events, %d consumers of g1 (%d handled twice), 1 of g2\n", T_EVENTS, T_CONSUMERS, dup_g1);
    {
        rsbus_group_info gi;
        CHECK_EQ_INT(rsbus_group_info_get(keep, "g1", &gi), RSBUS_OK);
        CHECK_EQ_INT(gi.pending, 0);
        CHECK_EQ_INT(gi.lag, 0);
        CHECK_EQ_INT(gi.consumers, T_CONSUMERS);   /* the keeper never read: no consumer, as on Redis */
    }
    rsbus_close(keep);
}

/* ---- a blocking read, woken by a publish from another thread; a stop ends a blocked run ---- */
static void *late_publisher(void *p) {
    rsbus *bus = open_mem("mem://wake", "t:wake", "g", "pub");
    (void)p;
    if (bus) { (void)pub_id(bus, "t.wake", "w1"); rsbus_close(bus); }
    return NULL;
}
static int woke_calls;
static rsbus_verdict wake_handler(const rsbus_msg *m, void *user) { (void)m; (void)user; woke_calls++; return RSBUS_ACK; }
static volatile sig_atomic_t stop_flag;
static void on_usr1(int sig) { (void)sig; stop_flag = 1; }
static pthread_t main_thread;
static void *stopper(void *p) {   /* a signal to the thread in rsbus_run: its handler sets the stop flag */
    (void)p;
    pthread_kill(main_thread, SIGUSR1);
    return NULL;
}
TEST(blocking_read_woken_by_another_thread_and_stopped) {
    rsbus *bus = open_mem("mem://wake", "t:wake", "g", "c");
    pthread_t th;
    int64_t t0;
    int n;
    REQUIRE(bus != NULL);
    CHECK(rsbus_subscribe(bus, "*", wake_handler, NULL) > 0);
    CHECK_EQ_INT(rsbus_poll(bus, 0), 0);   /* nothing yet */
    REQUIRE(pthread_create(&th, NULL, late_publisher, NULL) == 0);
    t0 = test_now_ms();
    n = rsbus_poll(bus, 20000);            /* BLOCK 20 s: the publish must end it */
    pthread_join(th, NULL);
    if (n == 0) n = rsbus_poll(bus, 20000);   /* published before the read began: the next read has it */
    CHECK_EQ_INT(n, 1);
    CHECK_EQ_INT(woke_calls, 1);
    CHECK(test_now_ms() - t0 < 20000);
    /* rsbus_run blocked in a read (block_ms 20 s) notices a stop flag set by another thread */
    rsbus_close(bus);
    {
        rsbus_config c = test_cfg("t:wake", "g", "c");
        struct sigaction sa;
        c.url = "mem://wake";
        c.block_ms = 20000;
        c.log = NULL;
        bus = open_cfg(&c);
        REQUIRE(bus != NULL);
        CHECK(rsbus_subscribe(bus, "*", wake_handler, NULL) > 0);
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_usr1;
        sigaction(SIGUSR1, &sa, NULL);
        stop_flag = 0;
        main_thread = pthread_self();
        REQUIRE(pthread_create(&th, NULL, stopper, NULL) == 0);
        t0 = test_now_ms();
        CHECK_EQ_INT(rsbus_run(bus, &stop_flag), RSBUS_OK);
        pthread_join(th, NULL);
        CHECK(test_now_ms() - t0 < 20000);
        rsbus_close(bus);
    }
}

/* ---- namespaces: apart by name, freed with their last bus, through the bus's allocator ---- */
static pthread_mutex_t alloc_mu = PTHREAD_MUTEX_INITIALIZER;
static int64_t live_bytes, live_blocks;
static void *cnt_alloc(void *u, size_t n) {
    void *p = malloc(n);
    (void)u;
    pthread_mutex_lock(&alloc_mu);
    if (p) { live_bytes += (int64_t)n; live_blocks++; }
    pthread_mutex_unlock(&alloc_mu);
    return p;
}
static void *cnt_realloc(void *u, void *p, size_t o, size_t n) {
    void *q = realloc(p, n);
    (void)u;
    pthread_mutex_lock(&alloc_mu);
    if (q) live_bytes += (int64_t)n - (int64_t)o;
    pthread_mutex_unlock(&alloc_mu);
    return q;
}
static void cnt_free(void *u, void *p, size_t n) {
    (void)u;
    pthread_mutex_lock(&alloc_mu);
    live_bytes -= (int64_t)n; live_blocks--;
    pthread_mutex_unlock(&alloc_mu);
    free(p);
}
TEST(namespaces_apart_and_freed_with_their_last_bus) {
    rsbus_config c = test_cfg("t:ns", "g", "c");
    rsbus *a1, *a2, *b;
    rsbus_stream_info si;
    int i;
    c.log = NULL;
    c.allocator.alloc_fn = cnt_alloc; c.allocator.realloc_fn = cnt_realloc; c.allocator.free_fn = cnt_free;
    c.url = "mem://ns-a";
    a1 = open_cfg(&c);
    a2 = open_cfg(&c);
    c.url = "mem://ns-b";
    b = open_cfg(&c);
    REQUIRE(a1 && a2 && b);
    for (i = 0; i < 50; i++) CHECK_EQ_INT(pub_id(a1, "t.ns", NULL), RSBUS_OK);
    CHECK_EQ_INT(rsbus_stream_info_get(a2, &si), RSBUS_OK);
    CHECK_EQ_INT(si.length, 50);                 /* a2 shares a1's namespace */
    CHECK_EQ_INT(rsbus_stream_info_get(b, &si), RSBUS_OK);
    CHECK_EQ_INT(si.length, 0);                  /* b's is another */
    rsbus_close(a1);
    CHECK_EQ_INT(rsbus_stream_info_get(a2, &si), RSBUS_OK);
    CHECK_EQ_INT(si.length, 50);                 /* kept while a bus of it is open */
    rsbus_close(a2);
    c.url = "mem://ns-a";
    a1 = open_cfg(&c);
    REQUIRE(a1 != NULL);
    CHECK_EQ_INT(rsbus_stream_info_get(a1, &si), RSBUS_OK);
    CHECK_EQ_INT(si.length, 0);                  /* the last bus closed: it was freed */
    rsbus_close(a1);
    rsbus_close(b);
    CHECK_EQ_INT(live_bytes, 0);                 /* everything went back through the allocator */
    CHECK_EQ_INT(live_blocks, 0);
}

/* ---- the engine out of memory: every allocation of the namespace fails in turn ---- */
static long oom_every, oom_seen;
static void *oom_alloc(void *u, size_t n) {
    if (oom_every && ++oom_seen % oom_every == 0) return NULL;
    return cnt_alloc(u, n);
}
static void *oom_realloc(void *u, void *p, size_t o, size_t n) {
    if (oom_every && ++oom_seen % oom_every == 0) return NULL;
    return cnt_realloc(u, p, o, n);
}
#define OOM_EVENTS 400
static unsigned char oom_handled[OOM_EVENTS];
static rsbus_verdict oom_handler(const rsbus_msg *m, void *user) {
    long v = m->id ? strtol(m->id, NULL, 10) : -1;
    (void)user;
    if (v >= 0 && v < OOM_EVENTS) oom_handled[v] = 1;
    return RSBUS_ACK;
}
static int oom_all_handled(const unsigned char *published) {
    int i;
    for (i = 0; i < OOM_EVENTS; i++) if (published[i] && !oom_handled[i]) return 0;
    return 1;
}
/* One namespace whose every 'every'-th allocation fails while events are published and consumed. */
static void oom_round(long every) {
    rsbus_config c = test_cfg("t:oom", "g", "c");
    rsbus *bus;
    unsigned char published[OOM_EVENTS];
    int i, nomem = 0, ok = 0;
    int64_t deadline;
    c.url = "mem://oom";
    c.log = NULL;
    c.allocator.alloc_fn = oom_alloc; c.allocator.realloc_fn = oom_realloc; c.allocator.free_fn = cnt_free;
    live_bytes = live_blocks = 0;
    bus = open_cfg(&c);   /* its allocator is the namespace's: the engine's allocations fail too */
    if (!bus) { CHECK(bus != NULL); return; }
    CHECK(rsbus_subscribe(bus, "*", oom_handler, NULL) > 0);
    memset(published, 0, sizeof published);
    memset(oom_handled, 0, sizeof oom_handled);
    oom_every = every;
    for (i = 0; i < OOM_EVENTS; i++) {
        char id[16];
        rsbus_result r;
        int n;
        snprintf(id, sizeof id, "%d", i);
        r = pub_id(bus, "t.oom", id);
        CHECK(r == RSBUS_OK || r == RSBUS_E_NOMEM);
        if (r == RSBUS_OK) { published[i] = 1; ok++; } else nomem++;
        n = rsbus_poll(bus, 0);
        CHECK(n >= 0 || n == RSBUS_E_NOMEM);
    }
    oom_every = 0;
    CHECK(ok > 0);
    deadline = test_now_ms() + 20000;   /* what a failed poll left pending comes back */
    while (!oom_all_handled(published) && test_now_ms() < deadline) {
        rsbus_claim_stats cs;
        (void)rsbus_poll(bus, 0);
        (void)rsbus_claim(bus, 0, 0, &cs);
        test_sleep_ms(5);
    }
    CHECK(oom_all_handled(published));   /* lost: 0 */
    fprintf(stderr, "  every %ld: %d publishes ok, %d refused with RSBUS_E_NOMEM\n", every, ok, nomem);
    rsbus_close(bus);
    CHECK_EQ_INT(live_bytes, 0);
    CHECK_EQ_INT(live_blocks, 0);
}
TEST(engine_out_of_memory_loses_nothing) {
    static const long every[] = { 3, 5, 7, 13 };
    size_t i;
    for (i = 0; i < sizeof every / sizeof every[0]; i++) oom_round(every[i]);
}

/* ---- memory bounded by max_len and dlq_max_len ---- */
TEST(memory_bounded_by_max_len) {
    rsbus_config c = test_cfg("t:bound", "g", "c");
    rsbus *bus;
    rsbus_stream_info si;
    int i;
    c.url = "mem://bound";
    c.log = NULL;
    c.max_len = 1000;
    c.publish_only = 1;
    bus = open_cfg(&c);
    REQUIRE(bus != NULL);
    for (i = 0; i < 20000; i++) CHECK_EQ_INT(pub_id(bus, "t.b", NULL), RSBUS_OK);
    CHECK_EQ_INT(rsbus_stream_info_get(bus, &si), RSBUS_OK);
    /* MAXLEN ~ removes whole nodes of 100 entries, as Redis does: between max_len and max_len + 100 */
    CHECK(si.length >= 1000 && si.length <= 1100);
    CHECK_EQ_INT(si.entries_added, 20000);
    rsbus_close(bus);
}

/* ---- configs that cannot apply ---- */
TEST(refuses_what_cannot_apply) {
    rsbus_config c = test_cfg("t:refuse", "g", "c");
    rsbus_error err;
    static const char *bad_urls[] = { "mem://user:pw@x", "mem://x:6379", "mem://x/0", "mem://x?db=1",
        "mem://aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" };
    size_t i;
    c.log = NULL;
    for (i = 0; i < sizeof bad_urls / sizeof bad_urls[0]; i++) {
        c.url = bad_urls[i];
        CHECK(rsbus_open(&c, &err) == NULL);
        CHECK_EQ_INT(err.code, RSBUS_E_ARG);
        CHECK_CONTAINS(err.msg, "mem://");
        CHECK_NOT_CONTAINS(err.msg, "pw");
    }
    c.url = "mem://";
    c.require_tls = 1;
    CHECK(rsbus_open(&c, &err) == NULL);
    CHECK_EQ_INT(err.code, RSBUS_E_ARG);
    CHECK_CONTAINS(err.msg, "require_tls: mem:// has no TLS");
    c.require_tls = 0;
    c.spool_path = "/tmp/never-made.spool";
    CHECK(rsbus_open(&c, &err) == NULL);
    CHECK_EQ_INT(err.code, RSBUS_E_ARG);
    CHECK_CONTAINS(err.msg, "spool_path: mem:// has no spool");
    c.spool_path = NULL;
    {   /* mem:// (the default namespace) opens */
        rsbus *bus = rsbus_open(&c, &err);
        CHECK(bus != NULL);
        rsbus_close(bus);
    }
}

/* ---- the same mistakes get the same answers as from Redis ---- */
#ifdef TEST_MEM_RAW
static redisReply *cmd_on(int mem, const char *const *argv) {
    const char *v[16];
    size_t l[16];
    int n = 0;
    while (argv[n] && n < 16) { v[n] = argv[n]; l[n] = strlen(argv[n]); n++; }
    if (mem) {
        char *cmd = NULL;
        long long len = redisFormatCommandArgv(&cmd, n, v, l);
        return mem_raw_cmd(cmd, len);
    }
    if (!raw_ctx) raw_ctx = test_redis_connect(&srv);
    return raw_ctx ? (redisReply *)redisCommandArgv(raw_ctx, n, v, l) : NULL;
}
#endif
/* Two replies alike in every part. */
static int same_reply(const redisReply *a, const redisReply *b) {
    size_t i;
    if (a->type != b->type) return 0;
    if (a->type == REDIS_REPLY_INTEGER) return a->integer == b->integer;
    if (a->type == REDIS_REPLY_ARRAY) {
        if (a->elements != b->elements) return 0;
        for (i = 0; i < a->elements; i++) if (!same_reply(a->element[i], b->element[i])) return 0;
        return 1;
    }
    if (a->type == REDIS_REPLY_NIL) return 1;
    return a->len == b->len && memcmp(a->str, b->str, a->len) == 0;
}
TEST(same_errors_as_redis) {
#ifdef TEST_MEM_RAW
    /* each row: a command; run on a fresh key set on both (the setup rows first), replies compared */
    static const char *const cmds[][12] = {
        { "XADD", "e:s", "1-1", "f", "v", NULL },
        { "XGROUP", "CREATE", "e:s", "g", "0", NULL },
        { "SET", "e:str", "v", NULL },
        { "XADD", "e:s", "1-1", "f", "v", NULL },
        { "XADD", "e:s", "0-0", "f", "v", NULL },
        { "XADD", "e:s", "1-*", "f", "v", NULL },
        { "XADD", "e:s", "notanid", "f", "v", NULL },
        { "XADD", "e:s", "*", "f", NULL },
        { "XADD", "e:s", "MAXLEN", "-1", "*", "f", "v", NULL },
        { "XADD", "e:s", "MAXLEN", "x", "*", "f", "v", NULL },
        { "XADD", "e:s", "MAXLEN", "10", "LIMIT", "5", "*", "f", "v", NULL },
        { "XADD", "e:str", "*", "f", "v", NULL },
        { "XLEN", "e:str", NULL },
        { "XLEN", NULL },
        { "GET", "e:s", NULL },
        { "XREADGROUP", "GROUP", "nog", "c", "STREAMS", "e:s", ">", NULL },
        { "XREADGROUP", "GROUP", "g", "c", "STREAMS", "nokey", ">", NULL },
        { "XREADGROUP", "GROUP", "g", "c", "STREAMS", "e:s", NULL },
        { "XREADGROUP", "GROUP", "g", "c", "STREAMS", "e:s", "$", NULL },
        { "XREADGROUP", "GROUP", "g", "c", "BLOCK", "-1", "STREAMS", "e:s", ">", NULL },
        { "XREADGROUP", "GROUP", "g", "c", "COUNT", "x", "STREAMS", "e:s", ">", NULL },
        { "XREADGROUP", "GROUP", "g", "c", "STREAMS", "e:s", "bad", NULL },
        { "XREAD", "STREAMS", "e:s", ">", NULL },
        { "XREAD", "STREAMS", "nokey", "0", NULL },
        { "XACK", "e:s", "g", "bad", NULL },
        { "XACK", "e:s", "nog", "1-1", NULL },
        { "XPENDING", "e:s", "nog", NULL },
        { "XPENDING", "e:s", "g", NULL },
        { "XPENDING", "e:s", "g", "-", "+", "x", NULL },
        { "XPENDING", "e:s", "g", "bad", "+", "10", NULL },
        { "XPENDING", "e:s", "g", "-", NULL },
        { "XCLAIM", "e:s", "nog", "c", "0", "1-1", NULL },
        { "XCLAIM", "e:s", "g", "c", "x", "1-1", NULL },
        { "XRANGE", "e:s", "bad", "+", NULL },
        { "XRANGE", "e:s", "-", "+", "COUNT", NULL },
        { "XRANGE", "nokey", "-", "+", NULL },
        { "XINFO", "STREAM", "nokey", NULL },
        { "XINFO", "CONSUMERS", "e:s", "nog", NULL },
        { "XINFO", "NOSUCH", "e:s", NULL },
        { "XGROUP", "CREATE", "nokey", "g", "0", NULL },
        { "XGROUP", "CREATE", "e:s", "g", "0", NULL },
        { "XGROUP", "CREATE", "e:s", "g2", "bad", NULL },
        { "XGROUP", "SETID", "e:s", "nog", "0", NULL },
        { "XGROUP", "SETID", "nokey", "g", "0", NULL },
        { "XGROUP", "DELCONSUMER", "e:s", "nog", "c", NULL },
        { "XTRIM", "e:s", "MAXLEN", "-1", NULL },
        { "XTRIM", "e:s", "FOO", "1", NULL },
        { "XTRIM", "e:s", "MAXLEN", "=", "10", "LIMIT", "5", NULL },
        { "XDEL", "e:s", "bad", NULL },
        { "SET", "e:k", "v", "PX", "0", NULL },
        { "SET", "e:k", "v", "PX", "x", NULL },
        { "SET", "e:k", "v", "NX", "XX", NULL },
        { "EXEC", NULL },
        { "DISCARD", NULL },
        { "NOSUCHCMD", "a", "b", NULL },
        { "HGET", "e:s", "f", NULL },
        /* replies compared in depth from here on (explicit ids: the same on both) */
        { "XADD", "e:d", "1-1", "f", "v", NULL },
        { "XADD", "e:d", "1-2", "f", "v", "g", "w", NULL },
        { "XADD", "e:d", "2-0", "f", "x", NULL },
        { "XGROUP", "CREATE", "e:d", "g", "1-1", NULL },
        { "XGROUP", "CREATE", "e:d", "g0", "0", NULL },
        { "XDEL", "e:d", "2-0", "9-9", NULL },
        { "XREADGROUP", "GROUP", "g", "c", "COUNT", "5", "STREAMS", "e:d", ">", NULL },
        { "XREADGROUP", "GROUP", "g", "c", "STREAMS", "e:d", ">", NULL },
        { "XREADGROUP", "GROUP", "g", "c", "STREAMS", "e:d", "0", NULL },
        { "XREADGROUP", "GROUP", "g0", "c", "COUNT", "1", "STREAMS", "e:d", ">", NULL },
        { "XDEL", "e:d", "1-1", NULL },
        { "XREADGROUP", "GROUP", "g0", "c", "STREAMS", "e:d", "0", NULL },
        { "XACK", "e:d", "g0", "1-1", "1-1", "7-7", NULL },
        { "XPENDING", "e:d", "g", NULL },
        { "XPENDING", "e:d", "g", "-", "+", "0", NULL },
        { "XRANGE", "e:d", "-", "+", NULL },
        { "XRANGE", "e:d", "(1-1", "2", "COUNT", "1", NULL },
        { "XREVRANGE", "e:d", "+", "-", "COUNT", "1", NULL },
        { "XREAD", "COUNT", "1", "STREAMS", "e:d", "0-0", NULL },
        { "XREAD", "STREAMS", "e:d", "e:s", "1", "0", NULL },
        { "XLEN", "e:d", NULL },
        { "XGROUP", "CREATECONSUMER", "e:d", "g", "c2", NULL },
        { "XGROUP", "DELCONSUMER", "e:d", "g", "c", NULL },
        { "XPENDING", "e:d", "g", NULL },
        { "XGROUP", "SETID", "e:d", "g", "0", NULL },
        { "XREADGROUP", "GROUP", "g", "c", "STREAMS", "e:d", ">", NULL },
        { "XTRIM", "e:d", "MAXLEN", "0", NULL },
        { "XREADGROUP", "GROUP", "g", "c", "STREAMS", "e:d", "0", NULL },
        { "XGROUP", "DESTROY", "e:d", "g0", NULL },
        { "XGROUP", "DESTROY", "e:d", "g0", NULL },
        { "SET", "e:n", "1", "NX", NULL },
        { "SET", "e:n", "2", "NX", NULL },
        { "MGET", "e:n", "e:none", "e:d", NULL },
        { "HSETNX", "e:h", "f", "1", NULL },
        { "HSETNX", "e:h", "f", "2", NULL },
        { "HGET", "e:h", "f", NULL },
        { "EXISTS", "e:h", "e:none", "e:n", NULL },
        { "DEL", "e:h", "e:n", "e:none", NULL },
        { "PING", NULL },
    };
    size_t deep_from = 0;   /* the first "e:d" row */
    size_t i;
    int differ = 0;
    while (!cmds[deep_from][1] || strcmp(cmds[deep_from][1], "e:d") != 0) deep_from++;
    for (i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        redisReply *r = cmd_on(0, cmds[i]), *m = cmd_on(1, cmds[i]);
        int same;
        REQUIRE(r != NULL && m != NULL);
        same = i >= deep_from ? same_reply(r, m) :
               r->type == m->type && (r->type != REDIS_REPLY_ERROR || strcmp(r->str, m->str) == 0) &&
               (r->type != REDIS_REPLY_INTEGER || r->integer == m->integer) &&
               (r->type != REDIS_REPLY_ARRAY || r->elements == m->elements);
        if (!same || getenv("TEST_MEM_SHOW")) {
            differ += !same;
            fprintf(stderr, "  %s %s %s: redis %d \"%s\", mem %d \"%s\"\n", cmds[i][0], cmds[i][1] ? cmds[i][1] : "",
                    cmds[i][1] && cmds[i][2] ? cmds[i][2] : "", r->type, r->str ? r->str : "", m->type, m->str ? m->str : "");
        }
        freeReplyObject(r);
        freeReplyObject(m);
    }
    CHECK_EQ_INT(differ, 0);
#else
    SKIP("built with RSBUS_NO_MEM");
#endif
}

/* ---- a batch too large for the bus is read again one entry at a time, on both transports ---- */
#ifdef TEST_MEM_RAW
static void big_entries_on(int mem) {
    static char big[15 << 20];
    const char *argv[8];
    rsbus_config c = test_cfg("t:big", "g", "c");
    rsbus *bus;
    redisReply *r;
    int total = 0, refused = 0, i;
    int64_t deadline;
    static const char *const xlen_dlq[] = { "XLEN", "{t:big}:dlq", NULL };
    memset(big, 'x', sizeof big - 1);
    argv[0] = "XADD"; argv[1] = "t:big"; argv[2] = "*"; argv[3] = "type"; argv[4] = "a.b"; argv[5] = "data";
    argv[6] = big; argv[7] = NULL;
    for (i = 0; i < 2; i++) {
        r = cmd_on(mem, argv);
        CHECK(r && r->type == REDIS_REPLY_STRING);
        if (r) freeReplyObject(r);
    }
    c.url = mem ? MEM_TEST_URL : srv.unix_url;
    c.log = NULL;
    c.max_event_bytes = 1000;   /* the reply bound: 24 MiB, under the two entries' 30 MiB */
    c.batch_size = 10;
    bus = open_cfg(&c);
    REQUIRE(bus != NULL);
    CHECK(rsbus_subscribe(bus, "*", wake_handler, NULL) > 0);
    deadline = test_now_ms() + 30000;
    while (total < 2 && test_now_ms() < deadline) {
        int n = rsbus_poll(bus, 0);
        if (n < 0) {
            if (refused < 3) fprintf(stderr, "  %s: poll: %s: %s\n", mem ? "mem" : "redis", rsbus_result_str((rsbus_result)n), rsbus_errmsg(bus));
            CHECK_EQ_INT(n, RSBUS_E_PROTOCOL);
            refused++;
            continue;
        }
        total += n;
    }
    CHECK_EQ_INT(total, 2);
    CHECK_EQ_INT(refused, 1);   /* the first read, cut off */
    r = cmd_on(mem, xlen_dlq);
    CHECK(r && r->type == REDIS_REPLY_INTEGER && r->integer == 2);   /* both over max_event_bytes: dead letters */
    if (r) freeReplyObject(r);
    rsbus_close(bus);
}
#endif
TEST(batch_too_large_read_one_at_a_time_as_on_redis) {
#ifdef TEST_MEM_RAW
    big_entries_on(0);
    big_entries_on(1);
#else
    SKIP("built with RSBUS_NO_MEM");
#endif
}

int main(void) {
    if (test_redis_start(&srv, NULL) != 0) {
        printf("test_mem: 0 passed, 1 failed\n");
        return 1;
    }
    RUN(refuses_what_cannot_apply);
    RUN(same_errors_as_redis);
    RUN(namespaces_apart_and_freed_with_their_last_bus);
    RUN(memory_bounded_by_max_len);
    RUN(engine_out_of_memory_loses_nothing);
    RUN(batch_too_large_read_one_at_a_time_as_on_redis);
    RUN(blocking_read_woken_by_another_thread_and_stopped);
    RUN(threads_share_a_namespace_and_lose_nothing);
    raw_reset();
    test_redis_stop(&srv);
    return test_summary("test_mem");
}
#endif /* RSBUS_NO_MEM */
