/* test_bus.c - publish, consume, retry, dead letters, claiming, replay, lag and health, all against a
   real redis-server that this program starts on a private unix socket and loopback port. */
#define _POSIX_C_SOURCE 200809L
#define RSBUS_IMPLEMENTATION
#include "../rsbus.h"
#include "test.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include "redis_server.h"
#include "bus_util.h"

/* ---- handlers used by several tests ---- */
typedef struct counter {
    int calls;
    int fail_first;           /* RETRY this many times per event id (by delivery count) */
    int always;               /* 0 ack, 1 retry, 2 dead */
    int64_t deliveries[16];   /* deliveries seen, in order */
    int64_t at_ms[16];        /* when */
    char last_type[130];
    char last_id[64];
    const char *log_path;     /* append handled event ids here */
    rsbus *stop_bus;          /* call rsbus_stop on this after stop_after calls */
    int stop_after;
} counter;

static rsbus_verdict count_handler(const rsbus_msg *m, void *user) {
    counter *c = (counter *)user;
    if (c->calls < 16) { c->deliveries[c->calls] = m->deliveries; c->at_ms[c->calls] = test_now_ms(); }
    c->calls++;
    snprintf(c->last_type, sizeof c->last_type, "%s", m->type);
    snprintf(c->last_id, sizeof c->last_id, "%s", m->id ? m->id : "");
    if (c->stop_bus && c->calls >= c->stop_after) rsbus_stop(c->stop_bus);
    if (c->always == 1) { snprintf(m->reason, RSBUS_REASON_SIZE, "always fails"); return RSBUS_RETRY; }
    if (c->always == 2) { snprintf(m->reason, RSBUS_REASON_SIZE, "poison"); return RSBUS_DEAD; }
    if (m->deliveries <= c->fail_first) return RSBUS_RETRY;
    if (c->log_path && m->id) log_line(c->log_path, m->id);
    return RSBUS_ACK;
}

static rsbus_result pub(rsbus *bus, const char *type, const char *data, char *sid) {
    rsbus_event ev;
    memset(&ev, 0, sizeof ev);
    ev.type = type;
    ev.data = data;
    return rsbus_publish(bus, &ev, sid);
}

/* Runs rsbus_poll until pred holds or the deadline passes. */
#define POLL_UNTIL(bus, cond, ms) do { int64_t pu__dl = test_now_ms() + (ms); \
        while (!(cond) && test_now_ms() < pu__dl) { (void)rsbus_poll((bus), 20); } \
        CHECK(cond); } while (0)

/* ---- rsbus_run reads ahead ---- */
typedef struct ahead {
    const char *stream;
    long long max_pending;    /* the most entries this group had pending while a handler ran */
    int calls, stop_at;
    rsbus *stop_bus;
    char seen[300];           /* how often each event (by its payload number) was handled */
} ahead;
static rsbus_verdict ahead_handler(const rsbus_msg *m, void *user) {
    ahead *a = (ahead *)user;
    long long p = pending_of(a->stream, "g");
    rsbus_jval v;
    int64_t k;
    if (p > a->max_pending) a->max_pending = p;
    if (rsbus_json_get(m->data, m->data_len, "n", &v) == RSBUS_OK && rsbus_jval_int(&v, &k) == RSBUS_OK &&
        k >= 0 && k < 300)
        a->seen[k]++;
    if (++a->calls == a->stop_at && a->stop_bus) rsbus_stop(a->stop_bus);
    return RSBUS_ACK;
}
static void publish_numbered(rsbus *bus, int n) {
    rsbus_event evs[50];
    char data[50][32];
    int i, j;
    for (i = 0; i < n; i += 50) {
        memset(evs, 0, sizeof evs);
        for (j = 0; j < 50 && i + j < n; j++) {
            snprintf(data[j], sizeof data[j], "{\"n\":%d}", i + j);
            evs[j].type = "p.n";
            evs[j].data = data[j];
        }
        CHECK_EQ_INT(rsbus_publish_batch(bus, evs, (size_t)j, NULL), RSBUS_OK);
    }
}

/* rsbus_run keeps one batch ahead: while a handler runs, the group holds at most this batch and the
   next one pending; every entry is handled once. */
TEST(run_reads_one_batch_ahead) {
    rsbus_config c = test_cfg("t:ahead", "g", "c1");
    rsbus *pub_bus, *bus;
    ahead a;
    int i;
    memset(&a, 0, sizeof a);
    c.batch_size = 20;
    bus = open_cfg(&c);
    pub_bus = open_bus("t:ahead", "g", "pub");
    REQUIRE(bus && pub_bus);
    publish_numbered(pub_bus, 200);
    a.stream = "t:ahead"; a.stop_at = 200; a.stop_bus = bus;
    REQUIRE(rsbus_subscribe(bus, "*", ahead_handler, &a) > 0);
    CHECK_EQ_INT(rsbus_run(bus, NULL), RSBUS_OK);
    CHECK_EQ_INT(a.calls, 200);
    for (i = 0; i < 200; i++) CHECK_EQ_INT(a.seen[i], 1);
    /* more than one batch was pending at once (the next one was read ahead), never more than two */
    CHECK(a.max_pending > 20);
    CHECK(a.max_pending <= 40);
    CHECK_EQ_INT(pending_of("t:ahead", "g"), 0);
    rsbus_close(bus);
    rsbus_close(pub_bus);
}

/* A stop in the middle leaves the batch read ahead pending to this consumer; the bus's next rsbus_poll
   re-reads it before new entries, and nothing is handled twice or lost. */
TEST(run_stopped_leaves_the_batch_read_ahead_to_the_next_poll) {
    rsbus_config c = test_cfg("t:ahead2", "g", "c1");
    rsbus *pub_bus, *bus;
    ahead a;
    int i, k, total = 0;
    memset(&a, 0, sizeof a);
    c.batch_size = 20;
    bus = open_cfg(&c);
    pub_bus = open_bus("t:ahead2", "g", "pub");
    REQUIRE(bus && pub_bus);
    publish_numbered(pub_bus, 100);
    a.stream = "t:ahead2"; a.stop_at = 50; a.stop_bus = bus;   /* stop within the third batch */
    REQUIRE(rsbus_subscribe(bus, "*", ahead_handler, &a) > 0);
    CHECK_EQ_INT(rsbus_run(bus, NULL), RSBUS_OK);
    CHECK_EQ_INT(a.calls, 60);                                  /* the batch in hand was finished */
    CHECK_EQ_INT(pending_of("t:ahead2", "g"), 20);              /* the one read ahead is pending */
    while ((k = rsbus_poll(bus, 0)) > 0) total += k;
    CHECK_EQ_INT(k, 0);
    CHECK_EQ_INT(total, 40);
    CHECK_EQ_INT(a.calls, 100);
    for (i = 0; i < 100; i++) CHECK_EQ_INT(a.seen[i], 1);
    CHECK_EQ_INT(pending_of("t:ahead2", "g"), 0);
    rsbus_close(bus);
    rsbus_close(pub_bus);
}

/* ---- connection ---- */
TEST(open_defaults_and_bad_config) {
    rsbus_config c = test_cfg("t:open", "g", NULL);
    rsbus_error err;
    rsbus *bus = open_cfg(&c);
    REQUIRE(bus != NULL);
    CHECK_EQ_STR(rsbus_errmsg(bus), "");
    rsbus_close(bus);
    rsbus_close(NULL);
    c.batch_size = -1;
    CHECK(rsbus_open(&c, &err) == NULL);
    CHECK_EQ_INT(err.code, RSBUS_E_ARG);
    CHECK_CONTAINS(err.msg, "batch_size");
    c = test_cfg("t:open", "g", NULL);
    c.url = "";
    CHECK(rsbus_open(&c, &err) == NULL);
    CHECK_EQ_INT(err.code, RSBUS_E_ARG);
    c = test_cfg("has space", "g", NULL);
    CHECK(rsbus_open(&c, &err) == NULL);
    CHECK_EQ_INT(err.code, RSBUS_E_ARG);
    CHECK_CONTAINS(err.msg, "stream");
    c = test_cfg("t:open", "g", NULL);
    c.url = "redis://:s3cr3t-Pw@127.0.0.1:notaport";
    CHECK(rsbus_open(&c, &err) == NULL);
    CHECK_EQ_INT(err.code, RSBUS_E_ARG);
    CHECK_NOT_CONTAINS(err.msg, "s3cr3t-Pw");
    c = test_cfg("t:open", "g", NULL);
    c.require_tls = 1;
    CHECK(rsbus_open(&c, &err) == NULL);
    CHECK_EQ_INT(err.code, on_mem() ? RSBUS_E_ARG : RSBUS_E_TLS);   /* mem:// refuses what cannot apply: RSBUS_E_ARG */
#ifndef RSBUS_TLS   /* without TLS a rediss:// URL is refused before any connection (test_tls covers TLS builds) */
    c.url = "rediss://127.0.0.1:6379";
    CHECK(rsbus_open(&c, &err) == NULL);
    CHECK_EQ_INT(err.code, RSBUS_E_TLS);
    CHECK_CONTAINS(err.msg, "TLS");
#endif
}

TEST(open_refused_port) {
    rsbus_config c = test_cfg("t:refused", "g", NULL);
    rsbus_error err;
    char url[128];
    int64_t t0;
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = 0;
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    /* a port nobody listens on: bind one, read it, close it */
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 && getsockname(fd, (struct sockaddr *)&a, &len) == 0);
    port = ntohs(a.sin_port);
    close(fd);
    snprintf(url, sizeof url, "redis://:s3cr3t-Pw@127.0.0.1:%d/0", port);
    c.url = url;
    t0 = test_now_ms();
    CHECK(rsbus_open(&c, &err) == NULL);
    CHECK(test_now_ms() - t0 < 2000);
    CHECK_EQ_INT(err.code, RSBUS_E_IO);
    {
        char where[64];
        snprintf(where, sizeof where, "127.0.0.1:%d", port);
        CHECK_CONTAINS(err.msg, where);
    }
    CHECK_NOT_CONTAINS(err.msg, "s3cr3t-Pw");
    CHECK_NOT_CONTAINS(logbuf, "s3cr3t-Pw");
}

TEST(open_timeout_on_silent_server) {
    /* a listener that never answers: the connection is accepted by the kernel, no reply comes */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    rsbus_config c = test_cfg("t:silent", "g", NULL);
    rsbus_error err;
    char url[64];
    int64_t t0, took;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 && listen(fd, 8) == 0);
    REQUIRE(getsockname(fd, (struct sockaddr *)&a, &len) == 0);
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", ntohs(a.sin_port));
    c.url = url;
    c.io_timeout_ms = 300;
    t0 = test_now_ms();
    CHECK(rsbus_open(&c, &err) == NULL);
    took = test_now_ms() - t0;
    CHECK_EQ_INT(err.code, RSBUS_E_TIMEOUT);
    CHECK(took >= 250 && took < 3000);
    CHECK_CONTAINS(err.msg, "timed out");
    close(fd);
}

TEST(auth_password_and_acl_user) {
    test_redis s2;
    rsbus_config c = test_cfg("t:auth", "g", NULL);
    rsbus_error err;
    rsbus *bus;
    char url[512];
    redisContext *rc;
    redisReply *rep;
    REQUIRE(test_redis_start(&s2, "requirepass s3cr3t-Pw\n") == 0);
    /* password alone */
    snprintf(url, sizeof url, "redis://:s3cr3t-Pw@127.0.0.1:%d", s2.port);
    c.url = url;
    bus = open_cfg(&c);
    CHECK(bus != NULL);
    if (bus) { CHECK_EQ_INT(pub(bus, "a.b", "{}", NULL), RSBUS_OK); rsbus_close(bus); }
    /* wrong password */
    snprintf(url, sizeof url, "redis://:wrong-Pw-123@127.0.0.1:%d", s2.port);
    CHECK(rsbus_open(&c, &err) == NULL);
    CHECK_EQ_INT(err.code, RSBUS_E_AUTH);
    CHECK_NOT_CONTAINS(err.msg, "wrong-Pw-123");
    {
        char where[64];
        snprintf(where, sizeof where, "127.0.0.1:%d", s2.port);
        CHECK_CONTAINS(err.msg, where);
    }
    /* no password at all: NOAUTH on the first command */
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", s2.port);
    CHECK(rsbus_open(&c, &err) == NULL);
    CHECK_EQ_INT(err.code, RSBUS_E_AUTH);
    /* an ACL user with a percent-escaped password */
    rc = test_redis_connect(&s2);
    REQUIRE(rc != NULL);
    rep = (redisReply *)redisCommand(rc, "ACL SETUSER worker on >p@ss:w/rd ~* +@all");
    CHECK(rep && rep->type == REDIS_REPLY_STATUS);
    if (rep) freeReplyObject(rep);
    redisFree(rc);
    snprintf(url, sizeof url, "redis://worker:p%%40ss%%3Aw%%2Frd@127.0.0.1:%d/2", s2.port);
    bus = open_cfg(&c);
    CHECK(bus != NULL);
    if (bus) { CHECK_EQ_INT(pub(bus, "a.b", "{}", NULL), RSBUS_OK); rsbus_close(bus); }
    snprintf(url, sizeof url, "redis://worker:nope-Pw-9@127.0.0.1:%d", s2.port);
    CHECK(rsbus_open(&c, &err) == NULL);
    CHECK_EQ_INT(err.code, RSBUS_E_AUTH);
    CHECK_NOT_CONTAINS(err.msg, "nope-Pw-9");
    CHECK_NOT_CONTAINS(logbuf, "nope-Pw-9");
    CHECK_NOT_CONTAINS(logbuf, "s3cr3t-Pw");
    test_redis_stop(&s2);
}

TEST(select_db_from_url) {
    rsbus_config c = test_cfg("t:db", "g", NULL);
    char url[512];
    rsbus *bus;
    snprintf(url, sizeof url, "%s?db=3", srv.unix_url);
    c.url = url;
    c.publish_only = 1;
    bus = open_cfg(&c);
    REQUIRE(bus != NULL);
    CHECK_EQ_INT(pub(bus, "a.b", "{}", NULL), RSBUS_OK);
    rsbus_close(bus);
    CHECK_EQ_INT(raw_int("EXISTS t:db"), 0);
    CHECK_EQ_INT(raw_int("SELECT 3") , -1);   /* status reply, not an integer */
    CHECK_EQ_INT(raw_int("XLEN t:db"), 1);
    raw_reset();
    snprintf(url, sizeof url, "redis://127.0.0.1:%d/4", srv.port);
    bus = open_cfg(&c);
    REQUIRE(bus != NULL);
    CHECK_EQ_INT(pub(bus, "a.b", "{}", NULL), RSBUS_OK);
    rsbus_close(bus);
    CHECK_EQ_INT(raw_int("SELECT 4"), -1);
    CHECK_EQ_INT(raw_int("XLEN t:db"), 1);
    raw_reset();
}

/* ---- publish ---- */
TEST(publish_wire_format) {
    rsbus *bus = open_bus("t:wire", "g", "c1");
    rsbus_event ev;
    char sid[RSBUS_ID_SIZE];
    redisReply *rep;
    REQUIRE(bus != NULL);
    memset(&ev, 0, sizeof ev);
    ev.type = "order.created";
    ev.data = "{\"n\":1}";
    ev.key = "cust-7";
    ev.source = "shop";
    ev.correlation_id = "corr-1";
    ev.traceparent = "00-abc-def-01";
    ev.version = 2;
    ev.ts_ms = 1700000000123;
    CHECK_EQ_INT(rsbus_publish(bus, &ev, sid), RSBUS_OK);
    rep = raw("XRANGE t:wire - +");
    REQUIRE(rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 1);
    {
        const redisReply *e = rep->element[0], *f = e->element[1];
        static const char *const names[] = { "type", "id", "ts", "v", "data", "key", "src", "corr", "trace" };
        size_t i;
        CHECK_EQ_STR(e->element[0]->str, sid);
        REQUIRE(f->elements == 18);
        for (i = 0; i < 9; i++) CHECK_EQ_STR(f->element[2 * i]->str, names[i]);
        CHECK_EQ_STR(f->element[1]->str, "order.created");
        CHECK_EQ_INT(strlen(f->element[3]->str), 32);
        CHECK_EQ_INT(strspn(f->element[3]->str, "0123456789abcdef"), 32);
        CHECK_EQ_STR(f->element[5]->str, "1700000000123");
        CHECK_EQ_STR(f->element[7]->str, "2");
        CHECK_EQ_STR(f->element[9]->str, "{\"n\":1}");
        CHECK_EQ_STR(f->element[11]->str, "cust-7");
    }
    freeReplyObject(rep);
    /* defaults: data NULL is {}, generated ids differ, a given id is kept */
    memset(&ev, 0, sizeof ev);
    ev.type = "x";
    CHECK_EQ_INT(rsbus_publish(bus, &ev, NULL), RSBUS_OK);
    ev.id = "my-id-1";
    CHECK_EQ_INT(rsbus_publish(bus, &ev, NULL), RSBUS_OK);
    rep = raw("XRANGE t:wire - +");
    REQUIRE(rep && rep->elements == 3);
    CHECK_EQ_STR(rep->element[1]->element[1]->element[9]->str, "{}");
    CHECK(strcmp(rep->element[0]->element[1]->element[3]->str, rep->element[1]->element[1]->element[3]->str) != 0);
    CHECK_EQ_STR(rep->element[2]->element[1]->element[3]->str, "my-id-1");
    freeReplyObject(rep);
    rsbus_close(bus);
}

TEST(publish_refuses_bad_events) {
    rsbus_config c = test_cfg("t:bad", "g", "c1");
    rsbus *bus;
    rsbus_event ev, evs[3];
    char big[2048];
    rsbus_stats st;
    c.max_event_bytes = 1000;
    bus = open_cfg(&c);
    REQUIRE(bus != NULL);
    memset(&ev, 0, sizeof ev);
    CHECK_EQ_INT(rsbus_publish(bus, &ev, NULL), RSBUS_E_ARG);            /* no type */
    ev.type = "bad type";
    CHECK_EQ_INT(rsbus_publish(bus, &ev, NULL), RSBUS_E_ARG);
    CHECK_CONTAINS(rsbus_errmsg(bus), "type");
    ev.type = "ok.type";
    ev.data = "{\"secret-payload\": ";
    CHECK_EQ_INT(rsbus_publish(bus, &ev, NULL), RSBUS_E_ARG);
    CHECK_CONTAINS(rsbus_errmsg(bus), "JSON");
    CHECK_NOT_CONTAINS(rsbus_errmsg(bus), "secret-payload");
    memset(big, ' ', sizeof big - 1); big[0] = '1'; big[sizeof big - 1] = 0;
    ev.data = big;
    CHECK_EQ_INT(rsbus_publish(bus, &ev, NULL), RSBUS_E_ARG);
    CHECK_CONTAINS(rsbus_errmsg(bus), "max_event_bytes");
    ev.data = NULL;
    ev.id = "has space";
    CHECK_EQ_INT(rsbus_publish(bus, &ev, NULL), RSBUS_E_ARG);
    /* a batch with one bad event sends nothing */
    memset(evs, 0, sizeof evs);
    evs[0].type = "a"; evs[1].type = "b"; evs[2].type = "c"; evs[2].data = "nope";
    CHECK_EQ_INT(rsbus_publish_batch(bus, evs, 3, NULL), RSBUS_E_ARG);
    CHECK_CONTAINS(rsbus_errmsg(bus), "event 2");
    CHECK_EQ_INT(raw_int("XLEN t:bad"), 0);
    rsbus_stats_get(bus, &st);
    CHECK_EQ_INT(st.published, 0);
    rsbus_close(bus);
}

TEST(publish_batch_in_order) {
    rsbus *bus = open_bus("t:batch", "g", "c1");
    rsbus_event evs[50];
    char ids[50][RSBUS_ID_SIZE];
    char data[50][32];
    redisReply *rep;
    rsbus_stats st;
    int i;
    REQUIRE(bus != NULL);
    memset(evs, 0, sizeof evs);
    for (i = 0; i < 50; i++) {
        snprintf(data[i], sizeof data[i], "{\"i\":%d}", i);
        evs[i].type = "batch.item";
        evs[i].data = data[i];
    }
    CHECK_EQ_INT(rsbus_publish_batch(bus, evs, 50, ids), RSBUS_OK);
    CHECK_EQ_INT(rsbus_publish_batch(bus, evs, 0, NULL), RSBUS_OK);
    rep = raw("XRANGE t:batch - +");
    REQUIRE(rep && rep->elements == 50);
    for (i = 0; i < 50; i++) {
        CHECK_EQ_STR(rep->element[i]->element[0]->str, ids[i]);
        CHECK_EQ_STR(rep->element[i]->element[1]->element[9]->str, data[i]);
    }
    freeReplyObject(rep);
    rsbus_stats_get(bus, &st);
    CHECK_EQ_INT(st.published, 50);
    rsbus_close(bus);
}

TEST(publish_maxlen_trims_near_bound) {
    rsbus_config c = test_cfg("t:maxlen", "g", "c1");
    rsbus *bus;
    rsbus_event evs[100];
    long long len;
    int i;
    c.max_len = 200;
    c.publish_only = 1;
    bus = open_cfg(&c);
    REQUIRE(bus != NULL);
    memset(evs, 0, sizeof evs);
    for (i = 0; i < 100; i++) evs[i].type = "m";
    for (i = 0; i < 30; i++) CHECK_EQ_INT(rsbus_publish_batch(bus, evs, 100, NULL), RSBUS_OK);
    len = raw_int("XLEN t:maxlen");
    /* '~' trims whole macro nodes (100 entries by default): near the bound, never below it */
    CHECK(len >= 200 && len <= 400);
    rsbus_close(bus);
}

/* ---- consume ---- */
TEST(subscribe_patterns_and_unhandled) {
    rsbus *bus = open_bus("t:pat", "g", "c1");
    counter exact, all, prefix;
    rsbus_stats st;
    int t1, t2, t3;
    REQUIRE(bus != NULL);
    memset(&exact, 0, sizeof exact); memset(&all, 0, sizeof all); memset(&prefix, 0, sizeof prefix);
    t1 = rsbus_subscribe(bus, "order.created", count_handler, &exact);
    t2 = rsbus_subscribe(bus, "order.*", count_handler, &prefix);
    CHECK(t1 > 0 && t2 > 0 && t1 != t2);
    CHECK(rsbus_subscribe(bus, "bad pattern", count_handler, NULL) < 0);
    CHECK(rsbus_subscribe(bus, "order*", count_handler, NULL) < 0);
    CHECK_EQ_INT(pub(bus, "order.created", "{}", NULL), RSBUS_OK);
    CHECK_EQ_INT(pub(bus, "order.a.b", "{}", NULL), RSBUS_OK);
    CHECK_EQ_INT(pub(bus, "order", "{}", NULL), RSBUS_OK);      /* matches neither: unhandled */
    POLL_UNTIL(bus, exact.calls + prefix.calls >= 3, 3000);
    CHECK_EQ_INT(exact.calls, 1);
    CHECK_EQ_INT(prefix.calls, 2);
    rsbus_stats_get(bus, &st);
    CHECK_EQ_INT(st.unhandled, 1);
    CHECK_EQ_INT(st.acked, 2);
    CHECK_EQ_INT(st.delivered, 3);
    CHECK_EQ_INT(pending_of("t:pat", "g"), 0);
    CHECK_EQ_INT(rsbus_unsubscribe(bus, t1), RSBUS_OK);
    CHECK_EQ_INT(rsbus_unsubscribe(bus, t1), RSBUS_E_NOTFOUND);
    t3 = rsbus_subscribe(bus, "*", count_handler, &all);
    CHECK(t3 > t2);
    CHECK_EQ_INT(pub(bus, "order.created", "{}", NULL), RSBUS_OK);
    CHECK_EQ_INT(pub(bus, "zzz", "{}", NULL), RSBUS_OK);
    POLL_UNTIL(bus, all.calls >= 2, 3000);
    CHECK_EQ_INT(exact.calls, 1);
    CHECK_EQ_INT(prefix.calls, 3);
    rsbus_close(bus);
}

TEST(msg_fields_reach_the_handler) {
    rsbus *bus = open_bus("t:msg", "g", "c1");
    rsbus_event ev;
    counter c;
    char sid[RSBUS_ID_SIZE];
    REQUIRE(bus != NULL);
    memset(&c, 0, sizeof c);
    memset(&ev, 0, sizeof ev);
    ev.type = "user.signed_up"; ev.data = "{\"user\":\"ada\"}"; ev.id = "evt-42"; ev.version = 3;
    CHECK(rsbus_subscribe(bus, "*", count_handler, &c) > 0);
    CHECK_EQ_INT(rsbus_publish(bus, &ev, sid), RSBUS_OK);
    POLL_UNTIL(bus, c.calls == 1, 3000);
    CHECK_EQ_STR(c.last_type, "user.signed_up");
    CHECK_EQ_STR(c.last_id, "evt-42");
    CHECK_EQ_INT(c.deliveries[0], 1);
    rsbus_close(bus);
}

TEST(retry_then_success_respects_backoff) {
    rsbus_config cfg = test_cfg("t:retry", "g", "c1");
    rsbus *bus;
    counter c;
    rsbus_stats st;
    cfg.retry_backoff_ms = 200;
    cfg.max_retries = 3;
    bus = open_cfg(&cfg);
    REQUIRE(bus != NULL);
    memset(&c, 0, sizeof c);
    c.fail_first = 2;
    c.stop_bus = bus;
    c.stop_after = 3;
    CHECK(rsbus_subscribe(bus, "*", count_handler, &c) > 0);
    CHECK_EQ_INT(pub(bus, "flaky", "{}", NULL), RSBUS_OK);
    CHECK_EQ_INT(rsbus_run(bus, NULL), RSBUS_OK);     /* the handler stops it after the 3rd call */
    CHECK_EQ_INT(c.calls, 3);
    CHECK_EQ_INT(c.deliveries[0], 1);
    CHECK_EQ_INT(c.deliveries[1], 2);
    CHECK_EQ_INT(c.deliveries[2], 3);
    /* backoff: 200 ms before the 2nd attempt, 400 ms before the 3rd (Redis counts idle in ms) */
    CHECK(c.at_ms[1] - c.at_ms[0] >= 195);
    CHECK(c.at_ms[2] - c.at_ms[1] >= 395);
    CHECK_EQ_INT(pending_of("t:retry", "g"), 0);
    CHECK_EQ_INT(raw_int("XLEN {t:retry}:dlq"), 0);
    rsbus_stats_get(bus, &st);
    CHECK_EQ_INT(st.retried, 2);
    CHECK_EQ_INT(st.acked, 1);
    CHECK_EQ_INT(st.dead_lettered, 0);
    rsbus_close(bus);
}

TEST(always_failing_goes_to_dlq) {
    rsbus_config cfg = test_cfg("t:fail", "g", "c1");
    rsbus *bus;
    counter c;
    char sid[RSBUS_ID_SIZE];
    redisReply *rep;
    rsbus_stats st;
    cfg.retry_backoff_ms = 20;
    cfg.max_retries = 2;
    bus = open_cfg(&cfg);
    REQUIRE(bus != NULL);
    memset(&c, 0, sizeof c);
    c.always = 1;
    CHECK(rsbus_subscribe(bus, "*", count_handler, &c) > 0);
    CHECK_EQ_INT(pub(bus, "doomed", "{\"x\":1}", sid), RSBUS_OK);
    {
        int64_t dl = test_now_ms() + 5000;
        while (raw_int("XLEN {t:fail}:dlq") < 1 && test_now_ms() < dl) {
            rsbus_claim_stats cs;
            (void)rsbus_poll(bus, 10);
            (void)rsbus_claim(bus, 60000, 0, &cs);
        }
    }
    CHECK_EQ_INT(c.calls, 3);                 /* 1 + max_retries */
    CHECK_EQ_INT(raw_int("XLEN {t:fail}:dlq"), 1);
    CHECK_EQ_INT(pending_of("t:fail", "g"), 0);
    rep = raw("XRANGE {t:fail}:dlq - +");
    REQUIRE(rep && rep->elements == 1);
    {
        const redisReply *f = rep->element[0]->element[1];
        size_t i;
        int seen = 0;
        CHECK_EQ_STR(f->element[0]->str, "type");
        CHECK_EQ_STR(f->element[1]->str, "doomed");
        CHECK_EQ_STR(f->element[8]->str, "data");
        CHECK_EQ_STR(f->element[9]->str, "{\"x\":1}");
        for (i = 0; i + 1 < f->elements; i += 2) {
            const char *k = f->element[i]->str, *v = f->element[i + 1]->str;
            if (!strcmp(k, "dlq_error")) { CHECK_EQ_STR(v, "always fails"); seen++; }
            if (!strcmp(k, "dlq_stream_id")) { CHECK_EQ_STR(v, sid); seen++; }
            if (!strcmp(k, "dlq_stream")) { CHECK_EQ_STR(v, "t:fail"); seen++; }
            if (!strcmp(k, "dlq_group")) { CHECK_EQ_STR(v, "g"); seen++; }
            if (!strcmp(k, "dlq_consumer")) { CHECK_EQ_STR(v, "c1"); seen++; }
            if (!strcmp(k, "dlq_deliveries")) { CHECK_EQ_STR(v, "3"); seen++; }
            if (!strcmp(k, "dlq_failed_at")) seen++;
        }
        CHECK_EQ_INT(seen, 7);
    }
    freeReplyObject(rep);
    rsbus_stats_get(bus, &st);
    CHECK_EQ_INT(st.dead_lettered, 1);
    CHECK_EQ_INT(st.retried, 2);
    rsbus_close(bus);
}

TEST(dead_verdict_goes_at_once) {
    rsbus *bus = open_bus("t:dead", "g", "c1");
    counter c;
    REQUIRE(bus != NULL);
    memset(&c, 0, sizeof c);
    c.always = 2;
    CHECK(rsbus_subscribe(bus, "*", count_handler, &c) > 0);
    CHECK_EQ_INT(pub(bus, "poison", "{}", NULL), RSBUS_OK);
    POLL_UNTIL(bus, c.calls == 1, 3000);
    CHECK_EQ_INT(raw_int("XLEN {t:dead}:dlq"), 1);
    CHECK_EQ_INT(pending_of("t:dead", "g"), 0);
    rsbus_close(bus);
}

TEST(malformed_entries_to_dlq) {
    rsbus *bus = open_bus("t:mal", "g", "c1");
    counter c;
    rsbus_stats st;
    redisReply *rep;
    int i;
    REQUIRE(bus != NULL);
    memset(&c, 0, sizeof c);
    CHECK(rsbus_subscribe(bus, "*", count_handler, &c) > 0);
    freeReplyObject(raw("XADD t:mal * data {}"));                           /* no type */
    freeReplyObject(raw("XADD t:mal * type x data %s", "{not json"));       /* bad JSON */
    freeReplyObject(raw("XADD t:mal * type %s data {}", "bad type!"));      /* bad type */
    freeReplyObject(raw("XADD t:mal * type x data {} v abc"));              /* bad version */
    freeReplyObject(raw("XADD t:mal * type x"));                            /* no data */
    freeReplyObject(raw("XADD t:mal * type ok data {} extra field"));       /* fine: unknown fields ignored */
    {
        int64_t dl = test_now_ms() + 3000;
        while (raw_int("XLEN {t:mal}:dlq") < 5 && test_now_ms() < dl) (void)rsbus_poll(bus, 10);
    }
    CHECK_EQ_INT(c.calls, 1);
    CHECK_EQ_STR(c.last_type, "ok");
    CHECK_EQ_INT(raw_int("XLEN {t:mal}:dlq"), 5);
    rep = raw("XRANGE {t:mal}:dlq - +");
    REQUIRE(rep && rep->elements == 5);
    {
        static const char *const why[] = { "no type", "not valid JSON", "type is not", "v is not", "no data" };
        for (i = 0; i < 5; i++) {
            const redisReply *f = rep->element[i]->element[1];
            size_t k;
            for (k = 0; k + 1 < f->elements; k += 2)
                if (!strcmp(f->element[k]->str, "dlq_error")) CHECK_CONTAINS(f->element[k + 1]->str, why[i]);
        }
    }
    freeReplyObject(rep);
    rsbus_stats_get(bus, &st);
    CHECK_EQ_INT(st.malformed, 5);
    CHECK_EQ_INT(st.dead_lettered, 5);
    CHECK_EQ_INT(pending_of("t:mal", "g"), 0);
    rsbus_close(bus);
}

TEST(reread_own_pending_after_restart) {
    rsbus *bus = open_bus("t:reread", "g", "same-name");
    counter c;
    REQUIRE(bus != NULL);
    memset(&c, 0, sizeof c);
    c.always = 1;   /* RETRY: stays pending */
    CHECK(rsbus_subscribe(bus, "*", count_handler, &c) > 0);
    CHECK_EQ_INT(pub(bus, "p", "{}", NULL), RSBUS_OK);
    CHECK_EQ_INT(pub(bus, "p", "{}", NULL), RSBUS_OK);
    POLL_UNTIL(bus, c.calls == 2, 3000);
    rsbus_close(bus);
    CHECK_EQ_INT(pending_of("t:reread", "g"), 2);
    /* a new process under the same name: the first poll re-reads both, with their delivery counts */
    bus = open_bus("t:reread", "g", "same-name");
    REQUIRE(bus != NULL);
    memset(&c, 0, sizeof c);
    CHECK(rsbus_subscribe(bus, "*", count_handler, &c) > 0);
    CHECK_EQ_INT(rsbus_poll(bus, -1), 2);
    CHECK_EQ_INT(c.calls, 2);
    CHECK_EQ_INT(c.deliveries[0], 2);
    CHECK_EQ_INT(c.deliveries[1], 2);
    CHECK_EQ_INT(pending_of("t:reread", "g"), 0);
    rsbus_close(bus);
}

TEST(deleted_while_pending) {
    rsbus *bus = open_bus("t:del", "g", "holder");
    rsbus *other;
    counter c;
    char sid[3][RSBUS_ID_SIZE];
    rsbus_claim_stats cs;
    rsbus_stats st;
    REQUIRE(bus != NULL);
    memset(&c, 0, sizeof c);
    c.always = 1;
    CHECK(rsbus_subscribe(bus, "*", count_handler, &c) > 0);
    CHECK_EQ_INT(pub(bus, "d", "{}", sid[0]), RSBUS_OK);
    CHECK_EQ_INT(pub(bus, "d", "{}", sid[1]), RSBUS_OK);
    CHECK_EQ_INT(pub(bus, "d", "{}", sid[2]), RSBUS_OK);
    POLL_UNTIL(bus, c.calls == 3, 3000);
    rsbus_close(bus);
    CHECK_EQ_INT(raw_int("XDEL t:del %s", sid[0]), 1);
    /* re-read under the same name: the deleted entry comes back with nil fields: acked and counted */
    bus = open_bus("t:del", "g", "holder");
    REQUIRE(bus != NULL);
    memset(&c, 0, sizeof c);
    c.always = 1;
    CHECK(rsbus_subscribe(bus, "*", count_handler, &c) > 0);
    CHECK_EQ_INT(rsbus_poll(bus, -1), 3);
    CHECK_EQ_INT(c.calls, 2);
    rsbus_stats_get(bus, &st);
    CHECK_EQ_INT(st.deleted_while_pending, 1);
    CHECK_EQ_INT(pending_of("t:del", "g"), 2);
    rsbus_close(bus);
    /* claim by another consumer: one more deleted, one handled */
    CHECK_EQ_INT(raw_int("XDEL t:del %s", sid[1]), 1);
    other = open_bus("t:del", "g", "claimer");
    REQUIRE(other != NULL);
    memset(&c, 0, sizeof c);
    CHECK(rsbus_subscribe(other, "*", count_handler, &c) > 0);
    CHECK_EQ_INT(rsbus_claim(other, 0, 0, &cs), RSBUS_OK);
    CHECK_EQ_INT(cs.checked, 2);
    CHECK_EQ_INT(cs.deleted, 1);
    CHECK_EQ_INT(cs.claimed, 1);
    CHECK_EQ_INT(cs.handled, 1);
    CHECK_EQ_INT(c.calls, 1);
    CHECK_EQ_INT(pending_of("t:del", "g"), 0);
    rsbus_close(other);
}

TEST(claim_dead_letters_poison_without_dispatch) {
    rsbus_config cfg = test_cfg("t:poison", "g", "survivor");
    rsbus *bus;
    counter c;
    rsbus_claim_stats cs;
    int i;
    cfg.max_retries = 2;
    bus = open_cfg(&cfg);
    REQUIRE(bus != NULL);
    memset(&c, 0, sizeof c);
    CHECK(rsbus_subscribe(bus, "*", count_handler, &c) > 0);
    CHECK_EQ_INT(pub(bus, "crashy", "{}", NULL), RSBUS_OK);
    /* three consumers that "crashed" on it: delivered 3 times (= 1 + max_retries), never acked */
    freeReplyObject(raw("XREADGROUP GROUP g dead1 COUNT 10 STREAMS t:poison >"));
    for (i = 0; i < 2; i++) {
        redisReply *p = raw("XPENDING t:poison g - + 1");
        REQUIRE(p && p->elements == 1);
        freeReplyObject(raw("XCLAIM t:poison g dead%d 0 %s", i + 2, p->element[0]->element[0]->str));
        freeReplyObject(p);
    }
    CHECK_EQ_INT(rsbus_claim(bus, 0, 0, &cs), RSBUS_OK);
    CHECK_EQ_INT(cs.claimed, 1);
    CHECK_EQ_INT(cs.dead, 1);
    CHECK_EQ_INT(c.calls, 0);
    CHECK_EQ_INT(raw_int("XLEN {t:poison}:dlq"), 1);
    CHECK_EQ_INT(pending_of("t:poison", "g"), 0);
    rsbus_close(bus);
}

TEST(claim_respects_min_idle_of_others) {
    rsbus *bus = open_bus("t:idle", "g", "me");
    counter c;
    rsbus_claim_stats cs;
    REQUIRE(bus != NULL);
    memset(&c, 0, sizeof c);
    CHECK(rsbus_subscribe(bus, "*", count_handler, &c) > 0);
    CHECK_EQ_INT(pub(bus, "x", "{}", NULL), RSBUS_OK);
    freeReplyObject(raw("XREADGROUP GROUP g someone COUNT 10 STREAMS t:idle >"));
    CHECK_EQ_INT(rsbus_claim(bus, 60000, 0, &cs), RSBUS_OK);   /* not idle long enough */
    CHECK_EQ_INT(cs.claimed, 0);
    CHECK_EQ_INT(c.calls, 0);
    WAIT_UNTIL((rsbus_claim(bus, 100, 0, &cs) == RSBUS_OK && cs.claimed == 1), 3000);
    CHECK_EQ_INT(c.calls, 1);
    CHECK_EQ_INT(c.deliveries[0], 2);
    CHECK_EQ_INT(pending_of("t:idle", "g"), 0);
    rsbus_close(bus);
}

/* ---- two processes, two groups ---- */
typedef struct worker_arg { const char *stream, *group, *name, *log_path; } worker_arg;
static volatile sig_atomic_t worker_stop;
static void on_term(int sig) { (void)sig; worker_stop = 1; }
static void worker_main(void *p) {
    worker_arg *a = (worker_arg *)p;
    rsbus *bus;
    counter c;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_term;
    sigaction(SIGTERM, &sa, NULL);
    bus = open_bus(a->stream, a->group, a->name);
    if (!bus) _exit(3);
    memset(&c, 0, sizeof c);
    c.log_path = a->log_path;
    if (rsbus_subscribe(bus, "*", count_handler, &c) <= 0) _exit(4);
    if (rsbus_run(bus, &worker_stop) != RSBUS_OK) _exit(5);
    rsbus_close(bus);
    _exit(0);
}

TEST(two_consumers_share_a_group_and_a_second_group_gets_all) {
    char la[300], lb[300], lg2[300];
    worker_arg wa = { "t:share", "g1", "wa", NULL }, wb = { "t:share", "g1", "wb", NULL },
               wc = { "t:share", "g2", "wc", NULL };
    rsbus *pubbus;
    rsbus_event evs[100];
    rsbus_config pc = test_cfg("t:share", "g1", "pub");
    pid_t pa, pb, pc2;
    int i, na, nb;
    tmp_path(la, sizeof la, "share-a.log"); tmp_path(lb, sizeof lb, "share-b.log"); tmp_path(lg2, sizeof lg2, "share-g2.log");
    wa.log_path = la; wb.log_path = lb; wc.log_path = lg2;
    /* create both groups before publishing, at the start of the stream */
    pubbus = open_cfg(&pc);
    REQUIRE(pubbus != NULL);
    rsbus_close(pubbus);
    pc.group = "g2";
    pubbus = open_cfg(&pc);
    REQUIRE(pubbus != NULL);
    pa = spawn(worker_main, &wa);
    pb = spawn(worker_main, &wb);
    pc2 = spawn(worker_main, &wc);
    memset(evs, 0, sizeof evs);
    for (i = 0; i < 20; i++) {
        int k;
        for (k = 0; k < 100; k++) evs[k].type = "work.item";
        CHECK_EQ_INT(rsbus_publish_batch(pubbus, evs, 100, NULL), RSBUS_OK);
    }
    WAIT_UNTIL(count_lines(la, NULL) + count_lines(lb, NULL) >= 2000 && count_lines(lg2, NULL) >= 2000, 20000);
    kill(pa, SIGTERM); kill(pb, SIGTERM); kill(pc2, SIGTERM);
    CHECK_EQ_INT(reap(pa, 5000), 0);
    CHECK_EQ_INT(reap(pb, 5000), 0);
    CHECK_EQ_INT(reap(pc2, 5000), 0);
    na = count_lines(la, NULL);
    nb = count_lines(lb, NULL);
    CHECK_EQ_INT(na + nb, 2000);
    CHECK(na > 0 && nb > 0);
    CHECK_EQ_INT(count_lines(lg2, NULL), 2000);
    /* exactly once between the two: no event id in both logs */
    {
        redisReply *rep = raw("XRANGE t:share - + COUNT 5");
        size_t k;
        REQUIRE(rep && rep->elements == 5);
        for (k = 0; k < 5; k++) {
            const char *evid = rep->element[k]->element[1]->element[3]->str;
            CHECK_EQ_INT(count_lines(la, evid) + count_lines(lb, evid), 1);
            CHECK_EQ_INT(count_lines(lg2, evid), 1);
        }
        freeReplyObject(rep);
    }
    CHECK_EQ_INT(pending_of("t:share", "g1"), 0);
    CHECK_EQ_INT(pending_of("t:share", "g2"), 0);
    rsbus_close(pubbus);
    kill_children();
}

/* ---- stop ---- */
TEST(stop_from_handler_and_flag) {
    rsbus *bus = open_bus("t:stop", "g", "c1");
    counter c;
    volatile sig_atomic_t flag = 1;
    int64_t t0;
    int i;
    REQUIRE(bus != NULL);
    memset(&c, 0, sizeof c);
    c.stop_bus = bus;
    c.stop_after = 5;
    CHECK(rsbus_subscribe(bus, "*", count_handler, &c) > 0);
    for (i = 0; i < 20; i++) CHECK_EQ_INT(pub(bus, "s", "{}", NULL), RSBUS_OK);
    CHECK_EQ_INT(rsbus_run(bus, NULL), RSBUS_OK);
    /* the batch in hand is finished and acked: whatever was handled is not pending */
    CHECK(c.calls >= 5);
    CHECK_EQ_INT(pending_of("t:stop", "g"), 0);
    /* a set flag returns at once; the stop request was cleared by the previous return */
    t0 = test_now_ms();
    CHECK_EQ_INT(rsbus_run(bus, &flag), RSBUS_OK);
    CHECK(test_now_ms() - t0 < 1000);
    rsbus_close(bus);
}

/* ---- dead letters: list, replay to the failed group only, purge ---- */
typedef struct group_counter { int calls; char replay_of[64]; } group_counter;
static rsbus_verdict fail_unless_replay(const rsbus_msg *m, void *user) {
    group_counter *g = (group_counter *)user;
    g->calls++;
    if (!m->replay_of) { snprintf(m->reason, RSBUS_REASON_SIZE, "first time fails"); return RSBUS_DEAD; }
    snprintf(g->replay_of, sizeof g->replay_of, "%s", m->replay_of);
    return RSBUS_ACK;
}
static rsbus_verdict just_count(const rsbus_msg *m, void *user) {
    (void)m;
    ((group_counter *)user)->calls++;
    return RSBUS_ACK;
}

TEST(dlq_list_replay_purge) {
    rsbus *g1 = open_bus("t:dlq", "g1", "c1"), *g2 = open_bus("t:dlq", "g2", "c2");
    group_counter a, b;
    rsbus_dlq_page page;
    char sid[RSBUS_ID_SIZE], nid[RSBUS_ID_SIZE];
    int64_t removed = -1;
    rsbus_stats st;
    REQUIRE(g1 && g2);
    memset(&a, 0, sizeof a); memset(&b, 0, sizeof b);
    CHECK(rsbus_subscribe(g1, "*", fail_unless_replay, &a) > 0);
    CHECK(rsbus_subscribe(g2, "*", just_count, &b) > 0);
    {
        rsbus_event ev;
        memset(&ev, 0, sizeof ev);
        ev.type = "pay"; ev.data = "[1,2]"; ev.id = "pay-1"; ev.key = "k1";
        CHECK_EQ_INT(rsbus_publish(g1, &ev, sid), RSBUS_OK);
    }
    POLL_UNTIL(g1, a.calls == 1, 3000);
    POLL_UNTIL(g2, b.calls == 1, 3000);
    CHECK_EQ_INT(rsbus_dlq_list(g1, NULL, 10, &page), RSBUS_OK);
    REQUIRE(page.count == 1);
    CHECK_EQ_STR(page.entries[0].msg.type, "pay");
    CHECK_EQ_STR(page.entries[0].msg.id, "pay-1");
    CHECK_EQ_STR(page.entries[0].msg.key, "k1");
    CHECK_EQ_STR(page.entries[0].msg.data, "[1,2]");
    CHECK_EQ_STR(page.entries[0].msg.stream, "t:dlq");
    CHECK_EQ_STR(page.entries[0].original_stream_id, sid);
    CHECK_EQ_STR(page.entries[0].group, "g1");
    CHECK_EQ_STR(page.entries[0].consumer, "c1");
    CHECK_EQ_STR(page.entries[0].error, "first time fails");
    CHECK_EQ_INT(page.entries[0].deliveries, 1);
    CHECK(page.entries[0].failed_at_ms > 0);
    {
        char dlq_id[RSBUS_ID_SIZE];
        rsbus_dlq_page after;
        snprintf(dlq_id, sizeof dlq_id, "%s", page.entries[0].dlq_id);
        CHECK_EQ_INT(rsbus_dlq_list(g1, dlq_id, 10, &after), RSBUS_OK);
        CHECK_EQ_INT(after.count, 0);
        rsbus_dlq_page_free(g1, &after);
        rsbus_dlq_page_free(g1, &page);
        CHECK_EQ_INT(rsbus_dlq_replay(g1, "1-1", nid), RSBUS_E_NOTFOUND);
        CHECK_EQ_INT(rsbus_dlq_replay(g1, dlq_id, nid), RSBUS_OK);
        CHECK_EQ_INT(raw_int("XLEN {t:dlq}:dlq"), 0);
        POLL_UNTIL(g1, a.calls == 2, 3000);
        CHECK_EQ_STR(a.replay_of, dlq_id);
        /* g2 acknowledges the replay without dispatching it */
        {
            int64_t dl = test_now_ms() + 3000;
            int got = 0;
            while (got == 0 && test_now_ms() < dl) { int k = rsbus_poll(g2, 10); if (k > 0) got += k; }
            CHECK_EQ_INT(got, 1);
        }
        CHECK_EQ_INT(b.calls, 1);
        CHECK_EQ_INT(pending_of("t:dlq", "g2"), 0);
        CHECK_EQ_INT(pending_of("t:dlq", "g1"), 0);
        CHECK_EQ_INT(rsbus_dlq_replay(g1, dlq_id, nid), RSBUS_E_NOTFOUND);
    }
    /* the replayed entry keeps the event's fields */
    {
        redisReply *rep = raw("XRANGE t:dlq %s %s", nid, nid);
        REQUIRE(rep && rep->elements == 1);
        CHECK_EQ_STR(rep->element[0]->element[1]->element[3]->str, "pay-1");
        freeReplyObject(rep);
    }
    rsbus_stats_get(g1, &st);
    CHECK_EQ_INT(st.replayed, 1);
    /* purge: three dead letters, all before "now + 1 s" by Redis's clock */
    {
        int i;
        redisReply *t;
        long long now_ms;
        for (i = 0; i < 3; i++) freeReplyObject(raw("XADD {t:dlq}:dlq * type x data {} dlq_error e"));
        t = raw("TIME");
        REQUIRE(t && t->elements == 2);
        now_ms = strtoll(t->element[0]->str, NULL, 10) * 1000 + strtoll(t->element[1]->str, NULL, 10) / 1000;
        freeReplyObject(t);
        CHECK_EQ_INT(rsbus_dlq_purge(g1, 1, &removed), RSBUS_OK);
        CHECK_EQ_INT(removed, 0);
        CHECK_EQ_INT(rsbus_dlq_purge(g1, now_ms + 1000, &removed), RSBUS_OK);
        CHECK_EQ_INT(removed, 3);
        CHECK_EQ_INT(raw_int("XLEN {t:dlq}:dlq"), 0);
    }
    rsbus_close(g1);
    rsbus_close(g2);
}

/* ---- info, lag, health, metrics ---- */
TEST(info_lag_health_metrics) {
    rsbus *bus = open_bus("t:info", "g", "c1");
    rsbus *other = open_bus("t:info", "other", "c2");
    rsbus_stream_info si;
    rsbus_group_info gi, list[4];
    size_t n = 0;
    counter c;
    char why[256], text[8192];
    size_t need;
    int i;
    REQUIRE(bus && other);
    memset(&c, 0, sizeof c);
    CHECK(rsbus_subscribe(bus, "*", count_handler, &c) > 0);
    CHECK_EQ_INT(rsbus_health_check(bus, 5, why, sizeof why), RSBUS_HEALTHY);
    CHECK_EQ_STR(why, "ok");
    for (i = 0; i < 10; i++) CHECK_EQ_INT(pub(bus, "i", "{}", NULL), RSBUS_OK);
    CHECK_EQ_INT(rsbus_stream_info_get(bus, &si), RSBUS_OK);
    CHECK_EQ_INT(si.length, 10);
    CHECK_EQ_INT(si.groups, 2);
    CHECK_EQ_INT(si.entries_added, 10);
    CHECK_EQ_INT(si.dlq_length, 0);
    CHECK(si.first_id[0] && si.last_id[0]);
    CHECK_EQ_INT(rsbus_group_info_get(bus, NULL, &gi), RSBUS_OK);
    CHECK_EQ_STR(gi.name, "g");
    CHECK_EQ_INT(gi.lag, 10);
    CHECK_EQ_INT(gi.pending, 0);
    CHECK_EQ_INT(rsbus_health_check(bus, 5, why, sizeof why), RSBUS_DEGRADED);
    CHECK_CONTAINS(why, "lag 10 > 5");
    CHECK_EQ_INT(rsbus_poll(bus, -1), 10);
    CHECK_EQ_INT(rsbus_group_info_get(bus, NULL, &gi), RSBUS_OK);
    CHECK_EQ_INT(gi.lag, 0);
    CHECK_EQ_INT(gi.entries_read, 10);
    CHECK_EQ_INT(gi.consumers, 1);
    CHECK_EQ_INT(rsbus_group_info_get(bus, "other", &gi), RSBUS_OK);
    CHECK_EQ_INT(gi.lag, 10);
    CHECK_EQ_INT(rsbus_group_info_get(bus, "nope", &gi), RSBUS_E_NOTFOUND);
    CHECK_EQ_INT(rsbus_groups_list(bus, list, 4, &n), RSBUS_OK);
    CHECK_EQ_INT(n, 2);
    CHECK_EQ_INT(rsbus_groups_list(bus, list, 1, &n), RSBUS_OK);
    CHECK_EQ_INT(n, 2);
    CHECK_EQ_INT(rsbus_health_check(bus, 5, why, sizeof why), RSBUS_HEALTHY);
    freeReplyObject(raw("XADD {t:info}:dlq * type x data {}"));
    CHECK_EQ_INT(rsbus_health_check(bus, 5, why, sizeof why), RSBUS_DEGRADED);
    CHECK_CONTAINS(why, "dead-letter");
    freeReplyObject(raw("DEL {t:info}:dlq"));
    freeReplyObject(raw("CONFIG SET maxmemory-policy allkeys-lru"));
    CHECK_EQ_INT(rsbus_health_check(bus, 5, why, 20), RSBUS_DEGRADED);
    CHECK_EQ_INT(strlen(why), 19);
    CHECK_EQ_INT(rsbus_health_check(bus, 5, why, sizeof why), RSBUS_DEGRADED);
    CHECK_CONTAINS(why, "maxmemory-policy allkeys-lru");
    freeReplyObject(raw("CONFIG SET maxmemory-policy noeviction"));
    need = rsbus_metrics_text(bus, NULL, 0);
    CHECK(need > 100 && need < sizeof text);
    CHECK_EQ_INT(rsbus_metrics_text(bus, text, sizeof text), need);
    CHECK_EQ_INT(strlen(text), need);
    CHECK_CONTAINS(text, "rsbus_published_total{stream=\"t:info\",group=\"g\"} 10\n");
    CHECK_CONTAINS(text, "rsbus_group_lag{stream=\"t:info\",group=\"other\"} 10\n");
    CHECK_CONTAINS(text, "rsbus_stream_length{stream=\"t:info\"} 10\n");
    CHECK_CONTAINS(text, "rsbus_up 1\n");
    {   /* every line: a comment (# HELP/# TYPE) or name{labels} value */
        char *line = text, *nl;
        int bad = 0;
        while ((nl = strchr(line, '\n')) != NULL) {
            *nl = 0;
            if (strncmp(line, "# HELP rsbus_", 13) && strncmp(line, "# TYPE rsbus_", 13)) {
                char *sp = strrchr(line, ' ');
                char *end;
                if (strncmp(line, "rsbus_", 6) || !sp) bad++;
                else { (void)strtod(sp + 1, &end); if (*end || end == sp + 1) bad++; }
            }
            line = nl + 1;
        }
        CHECK_EQ_INT(bad, 0);
        CHECK_EQ_INT(*line, 0);
    }
    {   /* truncated: NUL-terminated, same length needed */
        char small[50];
        CHECK_EQ_INT(rsbus_metrics_text(bus, small, sizeof small), need);
        CHECK_EQ_INT(strlen(small), sizeof small - 1);
    }
    rsbus_close(bus);
    rsbus_close(other);
}

/* rsbus_stream_snapshot: what rsbus_stream_info_get and rsbus_groups_list say, from one round trip (three
   pipelined commands), with each group's oldest_idle_ms between what XPENDING says before and after; the
   DLQ's length also when the stream is gone. */
static rsbus_verdict snap_retry(const rsbus_msg *m, void *user) { (void)m; (void)user; return RSBUS_RETRY; }
static rsbus_verdict snap_dead(const rsbus_msg *m, void *user) { (void)m; (void)user; return RSBUS_DEAD; }
TEST(stream_snapshot) {
    rsbus *bus = open_bus("t:snap", "g", "c1");
    rsbus *other = open_bus("t:snap", "other", "c2");
    rsbus *gone = open_bus("t:snapgone", "g", "c1");
    rsbus_stream_info si, ss;
    rsbus_group_info list[4], snap[4];
    size_t n = 0, m = 0, i, k;
    long long before, after;
    int found = 0;
    REQUIRE(bus && other && gone);
    CHECK(rsbus_subscribe(bus, "*", snap_retry, NULL) > 0);
    for (i = 0; i < 5; i++) CHECK_EQ_INT(pub(bus, "s", "{}", NULL), RSBUS_OK);
    CHECK_EQ_INT(rsbus_poll(bus, -1), 5);   /* 5 pending in g; other has read nothing */
    CHECK_EQ_INT(rsbus_stream_info_get(bus, &si), RSBUS_OK);
    CHECK_EQ_INT(rsbus_groups_list(bus, list, 4, &n), RSBUS_OK);
    REQUIRE(n == 2);
    CHECK_EQ_INT(list[0].oldest_idle_ms, -1);   /* the other calls do not ask */
    raw_int("CONFIG RESETSTAT");
    before = oldest_idle("t:snap", "g");
    CHECK_EQ_INT(rsbus_stream_snapshot(bus, &ss, snap, 4, &m), RSBUS_OK);
    after = oldest_idle("t:snap", "g");
    CHECK_EQ_INT(calls_of("xinfo|stream"), 1);
    CHECK_EQ_INT(calls_of("xlen"), 1);
    CHECK_EQ_INT(calls_of("time"), 1);
    CHECK_EQ_INT(m, 2);
    CHECK_EQ_INT(ss.length, si.length);
    CHECK_EQ_INT(ss.length, 5);
    CHECK_EQ_INT(ss.entries_added, si.entries_added);
    CHECK_EQ_INT(ss.dlq_length, si.dlq_length);
    CHECK_EQ_INT(ss.groups, si.groups);
    CHECK_EQ_STR(ss.first_id, si.first_id);
    CHECK_EQ_STR(ss.last_id, si.last_id);
    for (i = 0; i < m && i < 4; i++)
        for (k = 0; k < n; k++) {
            if (strcmp(snap[i].name, list[k].name)) continue;
            found++;
            CHECK_EQ_INT(snap[i].consumers, list[k].consumers);
            CHECK_EQ_INT(snap[i].pending, list[k].pending);
            CHECK_EQ_INT(snap[i].lag, list[k].lag);
            CHECK_EQ_INT(snap[i].entries_read, list[k].entries_read);
            CHECK_EQ_STR(snap[i].last_delivered_id, list[k].last_delivered_id);
            if (!strcmp(snap[i].name, "g")) {
                CHECK_EQ_INT(snap[i].pending, 5);
                CHECK(before >= 0 && snap[i].oldest_idle_ms >= before && snap[i].oldest_idle_ms <= after);
            } else {
                CHECK_EQ_INT(snap[i].lag, 5);
                CHECK_EQ_INT(snap[i].oldest_idle_ms, 0);   /* nothing pending */
            }
        }
    CHECK_EQ_INT(found, 2);
    /* fewer slots than groups: counted, not written past max; none at all */
    memset(snap, 0x5a, sizeof snap);
    CHECK_EQ_INT(rsbus_stream_snapshot(bus, &ss, snap, 1, &m), RSBUS_OK);
    CHECK_EQ_INT(m, 2);
    CHECK(snap[0].name[0] != 0x5a && snap[1].name[0] == 0x5a);
    CHECK_EQ_INT(rsbus_stream_snapshot(bus, &ss, NULL, 0, &m), RSBUS_OK);
    CHECK_EQ_INT(m, 2);
    CHECK_EQ_INT(rsbus_stream_snapshot(bus, &ss, NULL, 1, &m), RSBUS_E_ARG);
    CHECK_EQ_INT(rsbus_stream_snapshot(NULL, &ss, NULL, 0, &m), RSBUS_E_ARG);
    /* the stream gone, its DLQ not: RSBUS_E_NOTFOUND with the DLQ's length */
    CHECK(rsbus_subscribe(gone, "*", snap_dead, NULL) > 0);
    CHECK_EQ_INT(pub(gone, "s", "{}", NULL), RSBUS_OK);
    CHECK_EQ_INT(rsbus_poll(gone, -1), 1);
    raw_int("DEL t:snapgone");
    CHECK_EQ_INT(rsbus_stream_snapshot(gone, &ss, snap, 4, &m), RSBUS_E_NOTFOUND);
    CHECK_EQ_INT(ss.dlq_length, 1);
    CHECK_EQ_INT(m, 0);
    rsbus_close(bus);
    rsbus_close(other);
    rsbus_close(gone);
}

TEST(health_unhealthy_when_redis_is_gone) {
    test_redis s2;
    rsbus_config c = test_cfg("t:h", "g", "c");
    rsbus *bus;
    char why[256];
    REQUIRE(test_redis_start(&s2, NULL) == 0);
    c.url = s2.unix_url;
    bus = open_cfg(&c);
    REQUIRE(bus != NULL);
    CHECK_EQ_INT(rsbus_health_check(bus, 100, why, sizeof why), RSBUS_HEALTHY);
    test_redis_stop(&s2);
    CHECK_EQ_INT(rsbus_health_check(bus, 100, why, sizeof why), RSBUS_UNHEALTHY);
    CHECK_CONTAINS(why, "unreachable");
    {
        char text[4096];
        (void)rsbus_metrics_text(bus, text, sizeof text);
        CHECK_CONTAINS(text, "rsbus_up 0\n");
    }
    rsbus_close(bus);
}

TEST(tenant_bound_bus) {
    rsbus_config c = test_cfg("orders", "g", "c1");
    rsbus *bus;
    rsbus_event ev;
    counter k;
    c.tenant = "acme";
    bus = open_cfg(&c);
    REQUIRE(bus != NULL);
    memset(&k, 0, sizeof k);
    CHECK(rsbus_subscribe(bus, "*", count_handler, &k) > 0);
    memset(&ev, 0, sizeof ev);
    ev.type = "t";
    CHECK_EQ_INT(rsbus_publish(bus, &ev, NULL), RSBUS_OK);      /* gets the bus's tenant */
    ev.tenant = "other";
    CHECK_EQ_INT(rsbus_publish(bus, &ev, NULL), RSBUS_E_ARG);
    CHECK_EQ_INT(raw_int("XLEN tenant:acme:orders"), 1);
    CHECK_EQ_INT(raw_int("EXISTS orders"), 0);
    freeReplyObject(raw("XADD tenant:acme:orders * type t data {} tenant evil"));
    freeReplyObject(raw("XADD tenant:acme:orders * type t data {}"));
    {
        int64_t dl = test_now_ms() + 3000;
        while (raw_int("XLEN {tenant:acme:orders}:dlq") < 2 && test_now_ms() < dl) (void)rsbus_poll(bus, 10);
    }
    CHECK_EQ_INT(k.calls, 1);
    CHECK_EQ_INT(raw_int("XLEN {tenant:acme:orders}:dlq"), 2);
    rsbus_close(bus);
}


/* ---- operating: consumers, tail, clock, history ---- */
typedef struct seen { int n; char types[16][32]; } seen;
static int collect(const rsbus_msg *m, void *user) {
    seen *s = (seen *)user;
    if (s->n < 16) snprintf(s->types[s->n], sizeof s->types[0], "%s", m->type);
    s->n++;
    return s->n >= 100;   /* a callback may stop the walk */
}

TEST(consumers_list_and_gc) {
    rsbus *bus = open_bus("t:cons", "g", "me");
    rsbus_consumer_info list[8];
    size_t n = 0, i;
    int64_t removed = -1;
    REQUIRE(bus != NULL);
    CHECK_EQ_INT(pub(bus, "x", "{}", NULL), RSBUS_OK);
    /* "holder" holds an entry; "idle1" and "idle2" hold nothing */
    freeReplyObject(raw("XREADGROUP GROUP g holder COUNT 1 STREAMS t:cons >"));
    freeReplyObject(raw("XGROUP CREATECONSUMER t:cons g idle1"));
    freeReplyObject(raw("XGROUP CREATECONSUMER t:cons g idle2"));
    CHECK_EQ_INT(rsbus_poll(bus, -1), 0);      /* registers "me" */
    CHECK_EQ_INT(rsbus_consumers_list(bus, NULL, list, 8, &n), RSBUS_OK);
    CHECK_EQ_INT(n, 4);
    for (i = 0; i < n && i < 8; i++) {
        if (!strcmp(list[i].name, "holder")) CHECK_EQ_INT(list[i].pending, 1);
        else CHECK_EQ_INT(list[i].pending, 0);
        CHECK(list[i].idle_ms >= 0);
    }
    CHECK_EQ_INT(rsbus_consumers_gc(bus, NULL, 3600000, &removed), RSBUS_OK);   /* none idle that long */
    CHECK_EQ_INT(removed, 0);
    test_sleep_ms(60);
    CHECK_EQ_INT(rsbus_consumers_gc(bus, NULL, 50, &removed), RSBUS_OK);
    CHECK_EQ_INT(removed, 2);                 /* idle1, idle2; never "holder" (pending) nor "me" */
    CHECK_EQ_INT(rsbus_consumers_list(bus, NULL, list, 8, &n), RSBUS_OK);
    CHECK_EQ_INT(n, 2);
    CHECK_EQ_INT(pending_of("t:cons", "g"), 1);
    CHECK_EQ_INT(rsbus_consumers_list(bus, "nope", list, 8, &n), RSBUS_E_NOTFOUND);
    rsbus_close(bus);
}

TEST(tail_replay_range_rewind_and_clock) {
    rsbus *bus = open_bus("t:hist", "g", "c");
    char last[RSBUS_ID_SIZE] = "";
    char sid[3][RSBUS_ID_SIZE];
    seen s;
    int64_t ms = 0;
    counter c;
    REQUIRE(bus != NULL);
    CHECK_EQ_INT(rsbus_server_time_ms(bus, &ms), RSBUS_OK);
    CHECK(ms > INT64_C(1600000000000));
    memset(&s, 0, sizeof s);
    CHECK_EQ_INT(rsbus_tail(bus, last, -1, collect, &s), 0);   /* resolves "$": nothing new yet */
    CHECK(last[0] != 0);
    CHECK_EQ_INT(pub(bus, "h.one", "{}", sid[0]), RSBUS_OK);
    CHECK_EQ_INT(pub(bus, "h.two", "{}", sid[1]), RSBUS_OK);
    freeReplyObject(raw("XADD t:hist * data {}"));                   /* malformed: read, not passed on */
    CHECK_EQ_INT(pub(bus, "h.three", "{}", sid[2]), RSBUS_OK);
    CHECK_EQ_INT(rsbus_tail(bus, last, 100, collect, &s), 4);
    CHECK_EQ_INT(s.n, 3);
    CHECK_EQ_STR(s.types[0], "h.one");
    CHECK_EQ_STR(last, sid[2]);
    /* history: inclusive ends, bare milliseconds, paging with a small batch */
    memset(&s, 0, sizeof s);
    CHECK_EQ_INT(rsbus_replay_range(bus, sid[1], "+", collect, &s), RSBUS_OK);
    CHECK_EQ_INT(s.n, 2);
    CHECK_EQ_STR(s.types[0], "h.two");
    memset(&s, 0, sizeof s);
    CHECK_EQ_INT(rsbus_replay_range(bus, "-", "+", collect, &s), RSBUS_OK);
    CHECK_EQ_INT(s.n, 3);
    CHECK_EQ_INT(rsbus_replay_range(bus, "bad", "+", collect, &s), RSBUS_E_ARG);
    {
        char msonly[32];
        snprintf(msonly, sizeof msonly, "%lld", (long long)rsbus__id_ms(sid[0]));
        memset(&s, 0, sizeof s);
        CHECK_EQ_INT(rsbus_replay_range(bus, msonly, msonly, collect, &s), RSBUS_OK);
        CHECK(s.n >= 1);
        CHECK_EQ_STR(s.types[0], "h.one");
    }
    /* rewind: the group handles everything again */
    memset(&c, 0, sizeof c);
    CHECK(rsbus_subscribe(bus, "h.*", count_handler, &c) > 0);
    while (rsbus_poll(bus, -1) > 0) {}
    CHECK_EQ_INT(c.calls, 3);
    CHECK_EQ_INT(rsbus_group_rewind(bus, NULL, "0"), RSBUS_OK);
    while (rsbus_poll(bus, -1) > 0) {}
    CHECK_EQ_INT(c.calls, 6);
    CHECK_EQ_INT(rsbus_group_rewind(bus, "nope", "0"), RSBUS_E_NOTFOUND);
    rsbus_close(bus);
}

/* ---- trimming ---- */
static rsbus_verdict ack_all(const rsbus_msg *m, void *user) { (void)m; ++*(int *)user; return RSBUS_ACK; }
static rsbus_verdict retry_all(const rsbus_msg *m, void *user) { (void)m; ++*(int *)user; return RSBUS_RETRY; }

static void publish_many(rsbus *bus, int n) {
    rsbus_event evs[100];
    int i;
    memset(evs, 0, sizeof evs);
    for (i = 0; i < 100; i++) evs[i].type = "t";
    for (i = 0; i < n; i += 100) CHECK_EQ_INT(rsbus_publish_batch(bus, evs, 100, NULL), RSBUS_OK);
}

TEST(maxlen_trimming_reports_what_it_dropped) {
    rsbus_config c = test_cfg("t:trim1", "slow", "c");
    rsbus *bus;
    rsbus_stats st;
    long long len;
    size_t before = loglen;
    c.max_len = 100;
    bus = open_cfg(&c);
    REQUIRE(bus != NULL);
    publish_many(bus, 1000);
    len = raw_int("XLEN t:trim1");
    CHECK(len < 1000);
    CHECK_EQ_INT(rsbus_trim(bus, NULL), RSBUS_OK);
    rsbus_stats_get(bus, &st);
    CHECK_EQ_INT(st.trimmed_unread, 1000 - len);     /* the group had read nothing */
    CHECK(strstr(logbuf + before, "trimmed before group slow read them") != NULL);
    CHECK_EQ_INT(rsbus_trim(bus, NULL), RSBUS_OK);   /* counted once, not again */
    rsbus_stats_get(bus, &st);
    CHECK_EQ_INT(st.trimmed_unread, 1000 - len);
    rsbus_close(bus);
}

TEST(acked_trimming_never_drops_unread) {
    rsbus_config c1 = test_cfg("t:trim2", "fast", "c1"), c2 = test_cfg("t:trim2", "slow", "c2");
    rsbus *fast, *slow;
    int nf = 0, ns = 0, retried = 0, k, tok;
    int64_t removed = -1;
    rsbus_stats st;
    c1.trim_policy = c2.trim_policy = RSBUS_TRIM_ACKED;
    c1.max_len = c2.max_len = 100;                    /* not used by this policy */
    fast = open_cfg(&c1);
    slow = open_cfg(&c2);
    REQUIRE(fast && slow);
    publish_many(fast, 1000);
    CHECK_EQ_INT(raw_int("XLEN t:trim2"), 1000);      /* no MAXLEN on XADD */
    CHECK_EQ_INT(rsbus_trim(fast, &removed), RSBUS_OK);
    CHECK_EQ_INT(removed, 0);                          /* nobody acknowledged anything */
    CHECK(rsbus_subscribe(fast, "*", ack_all, &nf) > 0);
    while (rsbus_poll(fast, -1) > 0) {}
    CHECK_EQ_INT(nf, 1000);
    tok = rsbus_subscribe(slow, "*", ack_all, &ns);
    for (k = 0; k < 3; k++) CHECK_EQ_INT(rsbus_poll(slow, -1), 100);
    CHECK_EQ_INT(rsbus_trim(fast, &removed), RSBUS_OK);
    CHECK(removed >= 0 && removed <= 300);             /* never past what "slow" still needs */
    CHECK(raw_int("XLEN t:trim2") >= 700);
    /* one entry stays pending in "slow": trimming keeps it */
    CHECK_EQ_INT(rsbus_unsubscribe(slow, tok), RSBUS_OK);
    CHECK(rsbus_subscribe(slow, "*", retry_all, &retried) > 0);
    {
        rsbus_config one = c2;
        rsbus *s1;
        one.batch_size = 1;
        one.consumer = "c3";
        s1 = open_cfg(&one);
        REQUIRE(s1 != NULL);
        CHECK(rsbus_subscribe(s1, "*", retry_all, &retried) > 0);
        CHECK_EQ_INT(rsbus_poll(s1, -1), 1);
        rsbus_close(s1);
    }
    rsbus_close(slow);
    c2.consumer = "c2b";
    slow = open_cfg(&c2);
    REQUIRE(slow != NULL);
    CHECK(rsbus_subscribe(slow, "*", ack_all, &ns) > 0);
    while (rsbus_poll(slow, -1) > 0) {}
    CHECK_EQ_INT(ns, 300 + 699);                       /* every entry but the pending one: nothing lost */
    CHECK_EQ_INT(pending_of("t:trim2", "slow"), 1);
    CHECK_EQ_INT(rsbus_trim(fast, &removed), RSBUS_OK);
    {
        redisReply *p = raw("XPENDING t:trim2 slow - + 1");
        REQUIRE(p && p->elements == 1);
        {
            redisReply *e = raw("XRANGE t:trim2 %s %s", p->element[0]->element[0]->str, p->element[0]->element[0]->str);
            CHECK(e && e->elements == 1);              /* the pending entry is still in the stream */
            if (e) freeReplyObject(e);
        }
        freeReplyObject(p);
    }
    /* once everything is acknowledged, the stream is bounded again */
    {
        rsbus_claim_stats cs;
        int acked = 0;
        rsbus_close(slow);
        c2.consumer = "c4";
        slow = open_cfg(&c2);
        REQUIRE(slow != NULL);
        CHECK(rsbus_subscribe(slow, "*", ack_all, &acked) > 0);
        CHECK_EQ_INT(rsbus_claim(slow, 0, 0, &cs), RSBUS_OK);
        CHECK_EQ_INT(acked, 1);
    }
    CHECK_EQ_INT(pending_of("t:trim2", "slow"), 0);
    CHECK_EQ_INT(rsbus_trim(fast, &removed), RSBUS_OK);
    CHECK(raw_int("XLEN t:trim2") <= 100);             /* "~": whole nodes of 100 entries at most remain */
    rsbus_stats_get(fast, &st);
    CHECK_EQ_INT(st.trimmed + (uint64_t)raw_int("XLEN t:trim2"), 1000);
    CHECK_EQ_INT(st.trimmed_unread, 0);
    rsbus_close(fast);
    rsbus_close(slow);
}

static const char *flip_id;
static void flip_main(void *arg) {   /* g1's pending count: 1, 0, 1, 0, ... one round trip each */
    redisContext *x = test_redis_connect(&srv);
    (void)arg;
    if (!x) _exit(1);
    for (;;) {
        void *r;
        if (!(r = redisCommand(x, "XACK t:trimrace g1 %s", flip_id))) _exit(0);
        freeReplyObject(r);
        if (!(r = redisCommand(x, "XCLAIM t:trimrace g1 c 0 %s FORCE JUSTID", flip_id))) _exit(0);
        freeReplyObject(r);
    }
}
static pid_t spawn_flipper(const char *id) { flip_id = id; return spawn(flip_main, NULL); }

/* A group whose pending count drops to 0 between the two round trips of a trim keeps its floor:
   a second process flips g1's only pending entry between acked and pending while trims run. */
TEST(acked_trimming_race_with_a_lagging_group) {
    rsbus_config c = test_cfg("t:trimrace", "g1", "c");
    rsbus *tr;
    redisReply *rep;
    char e1[64];
    int i, lost = 0;
    pid_t flipper;
    freeReplyObject(raw("XGROUP CREATE t:trimrace g1 0 MKSTREAM"));
    freeReplyObject(raw("XGROUP CREATE t:trimrace g2 0"));
    for (i = 0; i < 1000; i++) freeReplyObject(raw("XADD t:trimrace * type t id e%d data {}", i));
    rep = raw("XREADGROUP GROUP g2 c COUNT 1000 STREAMS t:trimrace >");          /* g2 read everything */
    REQUIRE(rep && rep->elements == 1);
    for (i = 0; i < 1000; i++)
        freeReplyObject(raw("XACK t:trimrace g2 %s", rep->element[0]->element[1]->element[i]->element[0]->str));
    freeReplyObject(rep);
    rep = raw("XREADGROUP GROUP g1 c COUNT 1 STREAMS t:trimrace >");             /* g1 read one */
    REQUIRE(rep && rep->elements == 1);
    snprintf(e1, sizeof e1, "%s", rep->element[0]->element[1]->element[0]->element[0]->str);
    freeReplyObject(rep);
    flipper = spawn_flipper(e1);
    c.publish_only = 1;
    c.trim_policy = RSBUS_TRIM_ACKED;
    tr = open_cfg(&c);
    REQUIRE(tr != NULL);
    for (i = 0; i < 500 && !lost; i++) {
        CHECK_EQ_INT(rsbus_trim(tr, NULL), RSBUS_OK);
        if (raw_int("XLEN t:trimrace") < 999) lost = 1;   /* g1 has not read entries 2..1000 */
    }
    kill(flipper, SIGKILL);
    reap(flipper, 2000);
    CHECK_EQ_INT(lost, 0);
    rsbus_close(tr);
}

/* Build switches (make test runs this program built with all of them too): a compiled-out call answers
   RSBUS_E_ARG naming its switch and rsbus_open refuses a config that needs a compiled-out part; a part
   that is built answers as usual. */
static void check_switch(rsbus *bus, rsbus_result got, int have, rsbus_result want, const char *msg, int line) {
    char m[160];
    if (!have) want = RSBUS_E_ARG;
    if (got != want) {
        snprintf(m, sizeof m, "%s, not %s", rsbus_result_str(got), rsbus_result_str(want));
        test__fail(__FILE__, line, m);
    }
    if (have) CHECK_NOT_CONTAINS(rsbus_errmsg(bus), "compiled out");
    else CHECK_EQ_STR(rsbus_errmsg(bus), msg);
}
#define SWITCH(call, part, want, msg) check_switch(bus, (call), TEST_HAVE_##part, (want), (msg), __LINE__)

static int stop_at_once(const rsbus_msg *m, void *user) { (void)m; (void)user; return 1; }

TEST(build_switches) {
    rsbus *bus = open_bus("t:switch", "g", "me");
    rsbus_config c;
    rsbus_error err;
    rsbus_dlq_page page;
    rsbus_consumer_info ci[2];
    char id[RSBUS_ID_SIZE], path[512];
    size_t n, bytes;
    int64_t removed;
    rsbus *b2;
    REQUIRE(bus != NULL);
    SWITCH(rsbus_spool_pending(bus, &n, &bytes), SPOOL, RSBUS_OK, "rsbus_spool_pending: compiled out by RSBUS_NO_SPOOL");
    SWITCH(rsbus_spool_flush(bus, &n), SPOOL, RSBUS_OK, "rsbus_spool_flush: compiled out by RSBUS_NO_SPOOL");
    SWITCH(rsbus_schema_register(bus, "sw.x", 1, "{\"a\":\"string\"}"), SCHEMA, RSBUS_OK,
           "rsbus_schema_register: compiled out by RSBUS_NO_SCHEMA");
    SWITCH(rsbus_dlq_list(bus, NULL, 10, &page), ADMIN, RSBUS_OK, "rsbus_dlq_list: compiled out by RSBUS_NO_ADMIN");
    CHECK_EQ_INT(page.count, 0);
    rsbus_dlq_page_free(bus, &page);
    SWITCH(rsbus_dlq_replay(bus, "1-1", id), ADMIN, RSBUS_E_NOTFOUND, "rsbus_dlq_replay: compiled out by RSBUS_NO_ADMIN");
    SWITCH(rsbus_dlq_purge(bus, 1, &removed), ADMIN, RSBUS_OK, "rsbus_dlq_purge: compiled out by RSBUS_NO_ADMIN");
    SWITCH(rsbus_consumers_list(bus, NULL, ci, 2, &n), ADMIN, RSBUS_OK, "rsbus_consumers_list: compiled out by RSBUS_NO_ADMIN");
    SWITCH(rsbus_consumers_gc(bus, NULL, 3600000, &removed), ADMIN, RSBUS_OK,
           "rsbus_consumers_gc: compiled out by RSBUS_NO_ADMIN");
    SWITCH((rsbus_result)rsbus_tail(bus, strcpy(id, "$"), -1, stop_at_once, NULL), ADMIN, RSBUS_OK,
           "rsbus_tail: compiled out by RSBUS_NO_ADMIN");
    SWITCH(rsbus_replay_range(bus, "-", "+", stop_at_once, NULL), ADMIN, RSBUS_OK,
           "rsbus_replay_range: compiled out by RSBUS_NO_ADMIN");
    SWITCH(rsbus_group_rewind(bus, NULL, "0"), ADMIN, RSBUS_OK, "rsbus_group_rewind: compiled out by RSBUS_NO_ADMIN");
    SWITCH(rsbus_trim(bus, &removed), ADMIN, RSBUS_OK, "rsbus_trim: compiled out by RSBUS_NO_ADMIN");
    rsbus_close(bus);

    c = test_cfg("t:switch", "g", "me");
    tmp_path(path, sizeof path, "switch.spool");
    c.spool_path = path;
    b2 = rsbus_open(&c, &err);
    if (TEST_HAVE_SPOOL && !on_mem()) { CHECK(b2 != NULL); rsbus_close(b2); remove(path); }
    else if (TEST_HAVE_SPOOL) {   /* mem:// has no spool: refused as a config that cannot apply */
        CHECK(b2 == NULL);
        CHECK_EQ_INT(err.code, RSBUS_E_ARG);
        CHECK_CONTAINS(err.msg, "spool_path: mem:// has no spool");
    } else {
        CHECK(b2 == NULL);
        CHECK_EQ_INT(err.code, RSBUS_E_ARG);
        CHECK_EQ_STR(err.msg, "rsbus_config.spool_path: the spool is compiled out by RSBUS_NO_SPOOL");
    }
    c = test_cfg("t:switch", "g", "me");
    c.dedupe_ttl_ms = 60000;
    b2 = rsbus_open(&c, &err);
    if (TEST_HAVE_DEDUPE) { CHECK(b2 != NULL); rsbus_close(b2); }
    else {
        CHECK(b2 == NULL);
        CHECK_EQ_INT(err.code, RSBUS_E_ARG);
        CHECK_EQ_STR(err.msg, "rsbus_config.dedupe_ttl_ms: dedupe is compiled out by RSBUS_NO_DEDUPE");
    }
    /* a NULL bus is RSBUS_E_ARG either way */
    CHECK_EQ_INT(rsbus_dlq_purge(NULL, 1, NULL), RSBUS_E_ARG);
    CHECK_EQ_INT(rsbus_spool_flush(NULL, NULL), RSBUS_E_ARG);
}

TEST(nothing_secret_in_logs) {
    CHECK_NOT_CONTAINS(logbuf, "s3cr3t-Pw");
    CHECK_NOT_CONTAINS(logbuf, "secret-payload");
    CHECK_NOT_CONTAINS(logbuf, "p@ss");
}

int main(void) {
    if (test_redis_start(&srv, NULL) != 0) {
        fprintf(stderr, "cannot start redis-server\n");
        printf("test_bus: 0 passed, 1 failed\n");
        return 1;
    }
    RUN(open_defaults_and_bad_config);
    RUN(open_refused_port);
    RUN(open_timeout_on_silent_server);
    RUN(auth_password_and_acl_user);
    RUN(select_db_from_url);
    RUN(publish_wire_format);
    RUN(publish_refuses_bad_events);
    RUN(publish_batch_in_order);
    RUN(publish_maxlen_trims_near_bound);
    RUN(subscribe_patterns_and_unhandled);
    RUN(msg_fields_reach_the_handler);
    RUN(retry_then_success_respects_backoff);
    RUN(always_failing_goes_to_dlq);
    RUN(dead_verdict_goes_at_once);
    RUN(malformed_entries_to_dlq);
    RUN(reread_own_pending_after_restart);
    RUN(deleted_while_pending);
    RUN(claim_dead_letters_poison_without_dispatch);
    RUN(claim_respects_min_idle_of_others);
    RUN(two_consumers_share_a_group_and_a_second_group_gets_all);
    RUN(stop_from_handler_and_flag);
    RUN(run_reads_one_batch_ahead);
    RUN(run_stopped_leaves_the_batch_read_ahead_to_the_next_poll);
    RUN_WITH(ADMIN, dlq_list_replay_purge);
    RUN(info_lag_health_metrics);
    RUN(stream_snapshot);
    RUN(health_unhealthy_when_redis_is_gone);
    RUN(tenant_bound_bus);
    RUN_WITH(ADMIN, consumers_list_and_gc);
    RUN_WITH(ADMIN, tail_replay_range_rewind_and_clock);
    RUN_WITH(ADMIN, maxlen_trimming_reports_what_it_dropped);
    RUN_WITH(ADMIN, acked_trimming_never_drops_unread);
    RUN_WITH(ADMIN, acked_trimming_race_with_a_lagging_group);
    RUN(build_switches);
    RUN(nothing_secret_in_logs);
    kill_children();
    raw_reset();
    test_redis_stop(&srv);
    return test_summary("test_bus");
}
