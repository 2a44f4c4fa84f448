/* test_alloc_fail.c - every allocation rsbus makes goes through the configured allocator: a counting
   allocator proves each one is freed with its size, and a failing allocator fails the 1st, 2nd, ...
   Nth allocation of an operation in turn. Each run ends in RSBUS_E_NOMEM (or success), never a crash
   or a leak, and no event is lost: what a failed poll or claim did not finish stays pending. */
#define _POSIX_C_SOURCE 200809L
#define RSBUS_IMPLEMENTATION
#include "../rsbus.h"
#include "test.h"
#include "redis_server.h"
#include "bus_util.h"

typedef struct counting {
    long allocs, frees, outstanding;
    long long bytes;
    long fail_at;          /* 0: never; N: the Nth allocation from arming on fails */
    long seen;             /* allocations since arming */
    int size_mismatch;
} counting;
static counting A;

/* Each block carries its size in front, to check that free and realloc get the size rsbus claims. */
static void *c_alloc(void *user, size_t size) {
    counting *c = (counting *)user;
    size_t *p;
    if (c->fail_at && ++c->seen == c->fail_at) return NULL;
    p = (size_t *)malloc(size + sizeof(size_t) * 2);
    if (!p) return NULL;
    p[0] = size;
    c->allocs++; c->outstanding++; c->bytes += (long long)size;
    return p + 2;
}
static void *c_realloc(void *user, void *ptr, size_t old_size, size_t new_size) {
    counting *c = (counting *)user;
    size_t *p = ptr ? (size_t *)ptr - 2 : NULL;
    if (c->fail_at && ++c->seen == c->fail_at) return NULL;
    if (p && p[0] != old_size) c->size_mismatch = 1;
    p = (size_t *)realloc(p, new_size + sizeof(size_t) * 2);
    if (!p) return NULL;
    if (!ptr) { c->allocs++; c->outstanding++; }
    c->bytes += (long long)new_size - (long long)old_size;
    p[0] = new_size;
    return p + 2;
}
static void c_free(void *user, void *ptr, size_t size) {
    counting *c = (counting *)user;
    size_t *p = (size_t *)ptr - 2;
    if (p[0] != size) c->size_mismatch = 1;
    c->frees++; c->outstanding--; c->bytes -= (long long)size;
    free(p);
}
static rsbus_allocator counting_allocator(void) {
    rsbus_allocator a;
    a.alloc_fn = c_alloc; a.realloc_fn = c_realloc; a.free_fn = c_free; a.user = &A;
    return a;
}
static void arm(long n) { A.fail_at = n; A.seen = 0; }

static rsbus *open_counted(const char *stream, const char *group, const char *consumer) {
    rsbus_config c = test_cfg(stream, group, consumer);
    c.allocator = counting_allocator();
    return open_cfg(&c);
}

static int handled;
static rsbus_verdict h_count(const rsbus_msg *m, void *user) { (void)m; (void)user; handled++; return RSBUS_ACK; }
static rsbus_verdict h_dead(const rsbus_msg *m, void *user) { (void)m; (void)user; handled++; return RSBUS_DEAD; }

TEST(counting_allocator_sees_everything_freed) {
    rsbus *bus;
    rsbus_dlq_page page;
    char text[4096];
    memset(&A, 0, sizeof A);
    bus = open_counted("a:count", "g", "c");
    REQUIRE(bus != NULL);
    CHECK(A.allocs > 0);
    CHECK(rsbus_subscribe(bus, "*", h_dead, NULL) > 0);
    CHECK_EQ_INT(rsbus_publish(bus, &(rsbus_event){ .type = "x" }, NULL), RSBUS_OK);
    CHECK(rsbus_poll(bus, 100) >= 0);
    CHECK_EQ_INT(rsbus_dlq_list(bus, NULL, 10, &page), RSBUS_OK);
    rsbus_dlq_page_free(bus, &page);
    (void)rsbus_metrics_text(bus, text, sizeof text);
    rsbus_close(bus);
    CHECK_EQ_INT(A.outstanding, 0);
    CHECK_EQ_INT(A.bytes, 0);
    CHECK_EQ_INT(A.size_mismatch, 0);
    /* a partly-set allocator is refused */
    {
        rsbus_config c = test_cfg("a:count", "g", "c");
        rsbus_error err;
        c.allocator.alloc_fn = c_alloc;
        CHECK(rsbus_open(&c, &err) == NULL);
        CHECK_EQ_INT(err.code, RSBUS_E_ARG);
        CHECK_CONTAINS(err.msg, "allocator");
    }
}

TEST(open_fails_cleanly_at_every_allocation) {
    long n;
    int ok = 0;
    for (n = 1; n < 200 && !ok; n++) {
        rsbus_config c = test_cfg("a:open", "g", "c");
        rsbus_error err;
        rsbus *bus;
        memset(&A, 0, sizeof A);
        c.allocator = counting_allocator();
        arm(n);
        bus = rsbus_open(&c, &err);
        arm(0);
        if (bus) { ok = 1; rsbus_close(bus); }
        else {
            CHECK_EQ_INT(err.code, RSBUS_E_NOMEM);
            CHECK_CONTAINS(err.msg, "out of memory");
        }
        CHECK_EQ_INT(A.outstanding, 0);
        CHECK_EQ_INT(A.size_mismatch, 0);
    }
    CHECK(ok);
    CHECK(n > 2);   /* open made several allocations, and each one failed in turn */
}

/* Runs op with the Nth allocation failing, N = 1, 2, ... until it succeeds. */
#define FAIL_EACH(label, setup, op, expect_ok, teardown) do { \
        long fe__n; int fe__done = 0; \
        for (fe__n = 1; fe__n < 500 && !fe__done; fe__n++) { \
            rsbus_result fe__r; \
            setup; \
            arm(fe__n); \
            fe__r = (op); \
            arm(0); \
            if (expect_ok) fe__done = 1; \
            else if (fe__r != RSBUS_E_NOMEM) { \
                fprintf(stderr, "  %s: allocation %ld failed, got %s\n", label, fe__n, rsbus_result_str(fe__r)); \
                CHECK(fe__r == RSBUS_E_NOMEM); \
            } \
            teardown; \
        } \
        CHECK(fe__done); \
    } while (0)

TEST(publish_and_batch_under_failing_allocations) {
    rsbus *bus = NULL;
    rsbus_event evs[20];
    int i;
    memset(evs, 0, sizeof evs);
    for (i = 0; i < 20; i++) { evs[i].type = "b"; evs[i].data = "{\"k\":[1,2,3]}"; }
    memset(&A, 0, sizeof A);
    FAIL_EACH("publish", bus = open_counted("a:pub", "g", "c"),
              rsbus_publish(bus, &evs[0], NULL), fe__r == RSBUS_OK, rsbus_close(bus));
    CHECK_EQ_INT(A.outstanding, 0);
    FAIL_EACH("publish_batch", bus = open_counted("a:pub", "g", "c"),
              rsbus_publish_batch(bus, evs, 20, NULL), fe__r == RSBUS_OK, rsbus_close(bus));
    CHECK_EQ_INT(A.outstanding, 0);
    CHECK_EQ_INT(A.size_mismatch, 0);
    /* a failed publish sent nothing: every event in the stream came from a successful call */
    CHECK_EQ_INT(raw_int("XLEN a:pub"), 21);
}

TEST(poll_and_claim_under_failing_allocations_lose_nothing) {
    rsbus *bus = NULL;
    int published = 0;
    memset(&A, 0, sizeof A);
    handled = 0;
    /* each round: one new event, then a poll that may fail; what it did not finish stays pending */
    FAIL_EACH("poll",
              (bus = open_counted("a:poll", "g", "c"), rsbus_subscribe(bus, "*", h_count, NULL),
               published += rsbus_publish(bus, &(rsbus_event){ .type = "p" }, NULL) == RSBUS_OK),
              (rsbus_result)RSBUS__MIN(rsbus_poll(bus, -1), 0), fe__r == RSBUS_OK, rsbus_close(bus));
    CHECK_EQ_INT(A.outstanding, 0);
    /* drain: whatever is left pending is still there to be handled */
    bus = open_bus("a:poll", "g", "c");
    REQUIRE(bus != NULL);
    CHECK(rsbus_subscribe(bus, "*", h_count, NULL) > 0);
    while (rsbus_poll(bus, -1) > 0) {}
    CHECK_EQ_INT(pending_of("a:poll", "g"), 0);
    CHECK(handled >= published);
    rsbus_close(bus);
    /* claim: another consumer's entries, idle */
    freeReplyObject(raw("XADD a:claim * type c data {}"));
    freeReplyObject(raw("XADD a:claim * type c data {}"));
    freeReplyObject(raw("XGROUP CREATE a:claim g 0"));
    freeReplyObject(raw("XREADGROUP GROUP g gone COUNT 10 STREAMS a:claim >"));
    handled = 0;
    FAIL_EACH("claim",
              (bus = open_counted("a:claim", "g", "c"), rsbus_subscribe(bus, "*", h_count, NULL)),
              rsbus_claim(bus, 0, 0, NULL), fe__r == RSBUS_OK, rsbus_close(bus));
    CHECK_EQ_INT(A.outstanding, 0);
    CHECK_EQ_INT(pending_of("a:claim", "g"), 0);
    CHECK(handled >= 2);
}

/* The offline spool: open (which reads the file back), publishing into it and sending it. */
static rsbus *open_spool(const char *url, const char *path) {
    rsbus_config c = test_cfg("a:spool", "g", "c");
    c.url = url;
    c.publish_only = 1;
    c.spool_path = path;
    c.allocator = counting_allocator();
    return open_cfg(&c);
}
static int spool_some(const char *path) {   /* enough that sending them grows the bus's buffers */
    rsbus *bus = open_spool("unix:///nonexistent/rsbus-test.sock", path);
    int i, n = 0;
    if (!bus) return 0;
    for (i = 0; i < 200; i++)
        n += rsbus_publish(bus, &(rsbus_event){ .type = "s", .data = "{\"k\":1}" }, NULL) == RSBUS_SPOOLED;
    rsbus_close(bus);
    return n;
}
static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }
static long distinct_ids(const char *stream) {
    redisReply *rep = raw("XRANGE %s - +", stream);
    char **ids;
    size_t i, k, n = 0;
    long d = 0;
    if (!rep || rep->type != REDIS_REPLY_ARRAY) { if (rep) freeReplyObject(rep); return -1; }
    ids = (char **)calloc(rep->elements + 1, sizeof *ids);
    for (i = 0; ids && i < rep->elements; i++) {
        const redisReply *f = rep->element[i]->element[1];
        for (k = 0; k + 1 < f->elements; k += 2)
            if (!strcmp(f->element[k]->str, "id")) ids[n++] = f->element[k + 1]->str;
    }
    if (ids) qsort(ids, n, sizeof *ids, cmp_str);
    for (i = 0; ids && i < n; i++) if (i == 0 || strcmp(ids[i], ids[i - 1]) != 0) d++;
    free(ids);
    freeReplyObject(rep);
    return d;
}
TEST(spool_under_failing_allocations_loses_nothing) {
    char path[400];
    rsbus *bus = NULL;
    int spooled = 0;
    size_t ev = 0;
    tmp_path(path, sizeof path, "alloc.spool");
    memset(&A, 0, sizeof A);
    FAIL_EACH("publish (spooled)", bus = open_spool("unix:///nonexistent/rsbus-test.sock", path),
              rsbus_publish(bus, &(rsbus_event){ .type = "s" }, NULL), fe__r == RSBUS_SPOOLED,
              (spooled += fe__r == RSBUS_SPOOLED, rsbus_close(bus)));
    CHECK_EQ_INT(spooled, 1);
    CHECK_EQ_INT(A.outstanding, 0);
    {   /* open reads the spool back: every allocation of it fails in turn */
        long n;
        int ok = 0;
        for (n = 1; n < 200 && !ok; n++) {
            rsbus_config c = test_cfg("a:spool", "g", "c");
            rsbus_error err;
            c.url = srv.unix_url; c.publish_only = 1; c.spool_path = path; c.allocator = counting_allocator();
            arm(n);
            bus = rsbus_open(&c, &err);
            arm(0);
            if (bus) { ok = 1; CHECK_EQ_INT(rsbus_spool_pending(bus, &ev, NULL), RSBUS_OK); CHECK_EQ_INT(ev, 1); rsbus_close(bus); }
            else CHECK_EQ_INT(err.code, RSBUS_E_NOMEM);
        }
        CHECK(ok);
        CHECK_EQ_INT(A.outstanding, 0);
    }
    FAIL_EACH("spool_flush", (spooled += spool_some(path), bus = open_spool(srv.unix_url, path)),
              rsbus_spool_flush(bus, NULL), fe__r == RSBUS_OK, rsbus_close(bus));
    CHECK_EQ_INT(A.outstanding, 0);
    CHECK_EQ_INT(A.size_mismatch, 0);
    /* every spooled event arrived; a flush that failed after Redis took the chunk (a reply it could not
       allocate) sends that chunk again: the same event ids, at-least-once */
    CHECK_EQ_INT(distinct_ids("a:spool"), spooled);
    CHECK(spooled > 401);                             /* flush failed at least once, and lost nothing */
}

TEST(dlq_calls_under_failing_allocations) {
    rsbus *bus = NULL;
    rsbus_dlq_page page;
    char id[RSBUS_ID_SIZE];
    int64_t removed;
    memset(&A, 0, sizeof A);
    freeReplyObject(raw("XADD {a:dlq}:dlq * type d data {} dlq_group g"));
    freeReplyObject(raw("XADD {a:dlq}:dlq * type d data {} dlq_group g"));
    FAIL_EACH("dlq_list", bus = open_counted("a:dlq", "g", "c"),
              rsbus_dlq_list(bus, NULL, 10, &page), fe__r == RSBUS_OK,
              (rsbus_dlq_page_free(bus, &page), rsbus_close(bus)));
    CHECK_EQ_INT(A.outstanding, 0);
    {
        redisReply *rep = raw("XRANGE {a:dlq}:dlq - + COUNT 1");
        REQUIRE(rep && rep->elements == 1);
        snprintf(id, sizeof id, "%s", rep->element[0]->element[0]->str);
        freeReplyObject(rep);
    }
    FAIL_EACH("dlq_replay", bus = open_counted("a:dlq", "g", "c"),
              rsbus_dlq_replay(bus, id, NULL), fe__r == RSBUS_OK, rsbus_close(bus));
    CHECK_EQ_INT(A.outstanding, 0);
    CHECK_EQ_INT(raw_int("XLEN {a:dlq}:dlq"), 1);
    FAIL_EACH("dlq_purge", bus = open_counted("a:dlq", "g", "c"),
              rsbus_dlq_purge(bus, INT64_C(4102444800000), &removed), fe__r == RSBUS_OK, rsbus_close(bus));
    CHECK_EQ_INT(A.outstanding, 0);
    CHECK_EQ_INT(raw_int("XLEN {a:dlq}:dlq"), 0);
}

TEST(json_writer_under_failing_allocations) {
    long n;
    int ok = 0;
    for (n = 1; n < 200 && !ok; n++) {
        rsbus_jw w;
        rsbus_allocator a = counting_allocator();
        int i;
        memset(&A, 0, sizeof A);
        rsbus_jw_init_alloc(&w, &a);
        arm(n);
        rsbus_jw_arr(&w);
        for (i = 0; i < 2000; i++) rsbus_jw_str(&w, "a string long enough to make the buffer grow");
        rsbus_jw_arr_end(&w);
        ok = rsbus_jw_result(&w, NULL) != NULL;
        arm(0);
        rsbus_jw_free(&w);
        CHECK_EQ_INT(A.outstanding, 0);
        CHECK_EQ_INT(A.size_mismatch, 0);
    }
    CHECK(ok);
    CHECK(n > 3);
}

/* rsbus_schema_register: the first schema (the bus's table and the schema), a replacement and the schema
   that grows the table each fail cleanly at every allocation, leaving the schemas as they were. */
static void schema_fail_each(const char *type, const char *check_type) {
    static const char *const schema = "{\"a\": \"integer\", \"o?\": {\"b\": [\"string\"]}}";
    long n;
    int done = 0, i;
    for (n = 1; n < 100 && !done; n++) {
        rsbus *bus = open_counted("a:schema", "g", "c");
        rsbus_result r;
        REQUIRE(bus != NULL);
        for (i = 0; i < 8; i++) {
            char t[8];
            snprintf(t, sizeof t, "t%d", i);
            REQUIRE(rsbus_schema_register(bus, t, 1, schema) == RSBUS_OK);
        }
        arm(n);
        r = rsbus_schema_register(bus, type, 1, "{\"a\": \"string\"}");
        arm(0);
        if (r == RSBUS_OK) {
            done = 1;
            CHECK_EQ_INT(rsbus_publish(bus, &(rsbus_event){ .type = type, .data = "{\"a\": \"x\"}" }, NULL), RSBUS_OK);
            CHECK_EQ_INT(rsbus_publish(bus, &(rsbus_event){ .type = type, .data = "{\"a\": 1}" }, NULL), RSBUS_E_ARG);
        } else {
            CHECK_EQ_INT(r, RSBUS_E_NOMEM);
            CHECK_CONTAINS(rsbus_errmsg(bus), "out of memory");
            /* as before: t0..t7 take {"a": 1}; a new type has no schema */
            CHECK_EQ_INT(rsbus_publish(bus, &(rsbus_event){ .type = type, .data = "{\"a\": 1}" }, NULL), RSBUS_OK);
            CHECK_EQ_INT(rsbus_publish(bus, &(rsbus_event){ .type = type, .data = "{\"a\": \"x\"}" }, NULL),
                         strcmp(type, "t0") == 0 ? RSBUS_E_ARG : RSBUS_OK);
        }
        CHECK_EQ_INT(rsbus_publish(bus, &(rsbus_event){ .type = check_type, .data = "{\"a\": \"x\"}" }, NULL),
                     RSBUS_E_ARG);
        rsbus_close(bus);
        CHECK_EQ_INT(A.outstanding, 0);
        CHECK_EQ_INT(A.size_mismatch, 0);
    }
    CHECK(done);
    CHECK(n > 2);       /* at least one allocation failed before the one that succeeded */
}

TEST(schema_register_under_failing_allocations) {
    rsbus *bus = NULL;
    memset(&A, 0, sizeof A);
    FAIL_EACH("schema_register", bus = open_counted("a:schema", "g", "c"),
              rsbus_schema_register(bus, "t", 1, "{\"a\": \"integer\"}"), fe__r == RSBUS_OK, rsbus_close(bus));
    CHECK_EQ_INT(A.outstanding, 0);
    schema_fail_each("t0", "t1");       /* a replacement */
    schema_fail_each("t8", "t7");       /* the 9th schema: the table grows */
}

/* A partitioned stream: open (its partitions and bigger batch scratch), a batch over several partitions,
   a poll of all of them, the merged DLQ listing, the summed numbers and the metrics. */
static rsbus_result poll_once(rsbus *bus) { int n = rsbus_poll(bus, -1); return n < 0 ? (rsbus_result)n : RSBUS_OK; }
static rsbus *open_parts(const char *stream) {
    rsbus_config c = test_cfg(stream, "g", "c");
    c.allocator = counting_allocator();
    c.partitions = 4;
    return open_cfg(&c);
}
TEST(partitions_under_failing_allocations) {
    rsbus *bus = NULL;
    rsbus_event evs[16];
    char keys[16][8], text[8192];
    rsbus_dlq_page page;
    rsbus_stream_info si;
    long long total = 0;
    int i;
    memset(evs, 0, sizeof evs);
    for (i = 0; i < 16; i++) { snprintf(keys[i], sizeof keys[i], "k%d", i); evs[i].type = "d"; evs[i].key = keys[i]; }
    memset(&A, 0, sizeof A);
    {   /* open: every allocation fails in turn */
        long n;
        int ok = 0;
        for (n = 1; n < 200 && !ok; n++) {
            rsbus_config c = test_cfg("a:parts", "g", "c");
            rsbus_error err;
            c.allocator = counting_allocator();
            c.partitions = 4;
            arm(n);
            bus = rsbus_open(&c, &err);
            arm(0);
            if (bus) { ok = 1; rsbus_close(bus); }
            else CHECK_EQ_INT(err.code, RSBUS_E_NOMEM);
        }
        CHECK(ok);
    }
    FAIL_EACH("publish_batch (partitions)", bus = open_parts("a:parts"),
              rsbus_publish_batch(bus, evs, 16, NULL), fe__r == RSBUS_OK, rsbus_close(bus));
    for (i = 0; i < 4; i++) total += raw_int("XLEN a:parts:p%d", i);
    CHECK_EQ_INT(total, 16);   /* a failed batch sent nothing */
    handled = 0;
    FAIL_EACH("poll (partitions)", (bus = open_parts("a:parts"), rsbus_subscribe(bus, "*", h_dead, NULL)),
              poll_once(bus), fe__r == RSBUS_OK, rsbus_close(bus));
    bus = open_parts("a:parts");   /* drain: whatever is left pending is still there to be handled */
    REQUIRE(bus != NULL);
    CHECK(rsbus_subscribe(bus, "*", h_dead, NULL) > 0);
    while (rsbus_poll(bus, -1) > 0) {}
    rsbus_close(bus);
    for (i = 0, total = 0; i < 4; i++) {   /* nothing lost: every event dead-lettered, nothing left pending */
        char key[32];
        snprintf(key, sizeof key, "a:parts:p%d", i);
        total += raw_int("XLEN {a:parts:p%d}:dlq", i);
        CHECK_EQ_INT(pending_of(key, "g"), 0);
    }
    CHECK(total >= 16);
    FAIL_EACH("dlq_list (partitions)", bus = open_parts("a:parts"),
              rsbus_dlq_list(bus, NULL, 100, &page), fe__r == RSBUS_OK, (rsbus_dlq_page_free(bus, &page), rsbus_close(bus)));
    FAIL_EACH("stream_info (partitions)", bus = open_parts("a:parts"),
              rsbus_stream_info_get(bus, &si), fe__r == RSBUS_OK, rsbus_close(bus));
    CHECK_EQ_INT(si.length, 16);
    FAIL_EACH("metrics (partitions)", bus = open_parts("a:parts"),
              (rsbus_metrics_text(bus, text, sizeof text), RSBUS_E_NOMEM), strstr(text, "partition=\"3\"") != NULL,
              rsbus_close(bus));
    CHECK_EQ_INT(A.outstanding, 0);
    CHECK_EQ_INT(A.size_mismatch, 0);
}

int main(void) {
    if (test_redis_start(&srv, NULL) != 0) {
        printf("test_alloc_fail: 0 passed, 1 failed\n");
        return 1;
    }
    RUN(counting_allocator_sees_everything_freed);
    RUN(open_fails_cleanly_at_every_allocation);
    RUN(publish_and_batch_under_failing_allocations);
    RUN(poll_and_claim_under_failing_allocations_lose_nothing);
    RUN(spool_under_failing_allocations_loses_nothing);
    RUN(dlq_calls_under_failing_allocations);
    RUN(partitions_under_failing_allocations);
    RUN(json_writer_under_failing_allocations);
    RUN(schema_register_under_failing_allocations);
    raw_reset();
    test_redis_stop(&srv);
    return test_summary("test_alloc_fail");
}
