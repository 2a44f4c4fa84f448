/* test_dedupe.c - idempotent consumers (dedupe_ttl_ms) against a real redis-server: repeats of an
   event id are skipped and acknowledged, per group; a failed attempt does not mark; a DLQ replay to
   the failed group is handled even so; the mark expires; and a consumer SIGKILLed between handling an
   event and acknowledging it does not make the event's side effect happen twice. */
#define _POSIX_C_SOURCE 200809L
#define RSBUS_IMPLEMENTATION
#include "../rsbus.h"
#include "test.h"
#include "redis_server.h"
#include "bus_util.h"

#ifdef RSBUS_NO_DEDUPE
/* Built with -DRSBUS_NO_DEDUPE (make test's switch matrix): dedupe_ttl_ms is refused naming the switch,
   and a consumer without dedupe handles a repeated event id every time. */
static rsbus_verdict ack_count(const rsbus_msg *m, void *user) { (void)m; (*(int *)user)++; return RSBUS_ACK; }

TEST(dedupe_compiled_out) {
    rsbus_config c = test_cfg("t:nodedupe", "g", "c");
    rsbus_error err;
    rsbus_event ev;
    rsbus *bus;
    int calls = 0;
    c.dedupe_ttl_ms = 60000;
    CHECK(rsbus_open(&c, &err) == NULL);
    CHECK_EQ_INT(err.code, RSBUS_E_ARG);
    CHECK_EQ_STR(err.msg, "rsbus_config.dedupe_ttl_ms: dedupe is compiled out by RSBUS_NO_DEDUPE");
    c.dedupe_ttl_ms = 0;
    bus = open_cfg(&c);
    REQUIRE(bus != NULL);
    memset(&ev, 0, sizeof ev);
    ev.type = "x";
    ev.id = "same-id";
    CHECK_EQ_INT(rsbus_publish(bus, &ev, NULL), RSBUS_OK);
    CHECK_EQ_INT(rsbus_publish(bus, &ev, NULL), RSBUS_OK);
    REQUIRE(rsbus_subscribe(bus, "*", ack_count, &calls) > 0);
    WAIT_UNTIL(rsbus_poll(bus, 20) >= 0 && calls == 2, 5000);
    CHECK_EQ_INT(pending_of("t:nodedupe", "g"), 0);
    CHECK_EQ_INT(raw_int("EXISTS {t:nodedupe}:dedupe:g:same-id"), 0);
    rsbus_close(bus);
}

int main(void) {
    if (test_redis_start(&srv, NULL) != 0) {
        printf("test_dedupe: 0 passed, 1 failed\n");
        return 1;
    }
    fprintf(stderr, "test_dedupe: built with RSBUS_NO_DEDUPE: the dedupe tests are skipped; testing what such a build promises\n");
    RUN(dedupe_compiled_out);
    raw_reset();
    test_redis_stop(&srv);
    return test_summary("test_dedupe");
}
#else

typedef struct calls {
    int n;                       /* handler calls */
    int fail_first;              /* RSBUS_RETRY on the first call, RSBUS_DEAD when 2 */
    int stop_at;                 /* rsbus_stop after this many calls */
    rsbus *bus;
    char last_id[64];
    const char *effects;         /* a file: one line per side effect */
} calls;

static rsbus_verdict count_handler(const rsbus_msg *m, void *user) {
    calls *c = (calls *)user;
    c->n++;
    snprintf(c->last_id, sizeof c->last_id, "%s", m->id ? m->id : "");
    if (c->effects && m->id) log_line(c->effects, m->id);
    if (c->stop_at && c->n >= c->stop_at) rsbus_stop(c->bus);
    if (c->fail_first && c->n == 1) return c->fail_first == 2 ? RSBUS_DEAD : RSBUS_RETRY;
    return RSBUS_ACK;
}

static rsbus_result pub_id(rsbus *bus, const char *type, const char *id) {
    rsbus_event ev;
    memset(&ev, 0, sizeof ev);
    ev.type = type;
    ev.id = id;
    ev.data = "{\"n\":1}";
    return rsbus_publish(bus, &ev, NULL);
}

static rsbus *dedupe_bus(const char *stream, const char *group, const char *consumer, int64_t ttl) {
    rsbus_config c = test_cfg(stream, group, consumer);
    c.dedupe_ttl_ms = ttl;
    return open_cfg(&c);
}

static uint64_t deduped_of(rsbus *bus) {
    rsbus_stats st;
    rsbus_stats_get(bus, &st);
    return st.deduped;
}

TEST(repeats_are_skipped_and_acked) {
    rsbus *bus = dedupe_bus("d:rep", "g", "c1", 60000);
    calls c;
    long long ttl;
    REQUIRE(bus != NULL);
    memset(&c, 0, sizeof c);
    REQUIRE(rsbus_subscribe(bus, "*", count_handler, &c) > 0);
    CHECK_EQ_INT(pub_id(bus, "t", "E1"), RSBUS_OK);
    CHECK_EQ_INT(pub_id(bus, "t", "E1"), RSBUS_OK);   /* the same batch */
    CHECK_EQ_INT(pub_id(bus, "t", "E2"), RSBUS_OK);
    CHECK_EQ_INT(rsbus_poll(bus, 100), 3);
    CHECK_EQ_INT(c.n, 2);
    CHECK_EQ_INT(deduped_of(bus), 1);
    CHECK_EQ_INT(pub_id(bus, "t", "E1"), RSBUS_OK);   /* a later batch */
    CHECK_EQ_INT(rsbus_poll(bus, 100), 1);
    CHECK_EQ_INT(c.n, 2);
    CHECK_EQ_INT(deduped_of(bus), 2);
    CHECK_EQ_INT(pending_of("d:rep", "g"), 0);
    CHECK_EQ_INT(raw_int("EXISTS {d:rep}:dedupe:g:E1"), 1);
    ttl = raw_int("PTTL {d:rep}:dedupe:g:E2");
    CHECK(ttl > 0 && ttl <= 60000);
    rsbus_close(bus);
}

TEST(groups_are_independent) {
    rsbus *a = dedupe_bus("d:grp", "ga", "c1", 60000), *b = dedupe_bus("d:grp", "gb", "c1", 60000);
    calls ca, cb;
    REQUIRE(a != NULL && b != NULL);
    memset(&ca, 0, sizeof ca); memset(&cb, 0, sizeof cb);
    REQUIRE(rsbus_subscribe(a, "*", count_handler, &ca) > 0);
    REQUIRE(rsbus_subscribe(b, "*", count_handler, &cb) > 0);
    CHECK_EQ_INT(pub_id(a, "t", "X"), RSBUS_OK);
    CHECK_EQ_INT(pub_id(a, "t", "X"), RSBUS_OK);
    CHECK_EQ_INT(rsbus_poll(a, 100), 2);
    CHECK_EQ_INT(rsbus_poll(b, 100), 2);
    CHECK_EQ_INT(ca.n, 1);
    CHECK_EQ_INT(cb.n, 1);
    CHECK_EQ_INT(raw_int("EXISTS {d:grp}:dedupe:ga:X {d:grp}:dedupe:gb:X"), 2);
    rsbus_close(a);
    rsbus_close(b);
}

TEST(off_by_default_and_entries_without_id_always_run) {
    rsbus *plain = open_bus("d:off", "g", "c1"), *dd = dedupe_bus("d:off", "g2", "c1", 60000);
    calls cp, cd;
    REQUIRE(plain != NULL && dd != NULL);
    memset(&cp, 0, sizeof cp); memset(&cd, 0, sizeof cd);
    REQUIRE(rsbus_subscribe(plain, "*", count_handler, &cp) > 0);
    REQUIRE(rsbus_subscribe(dd, "*", count_handler, &cd) > 0);
    CHECK_EQ_INT(pub_id(plain, "t", "Y"), RSBUS_OK);
    CHECK_EQ_INT(pub_id(plain, "t", "Y"), RSBUS_OK);
    freeReplyObject(raw("XADD d:off * type t data {}"));   /* written by another client: no id */
    freeReplyObject(raw("XADD d:off * type t data {}"));
    CHECK_EQ_INT(rsbus_poll(plain, 100), 4);
    CHECK_EQ_INT(cp.n, 4);                                  /* no dedupe without dedupe_ttl_ms */
    CHECK_EQ_INT(raw_int("EXISTS {d:off}:dedupe:g:Y"), 0);
    CHECK_EQ_INT(rsbus_poll(dd, 100), 4);
    CHECK_EQ_INT(cd.n, 3);                                  /* Y once, both id-less entries */
    CHECK_EQ_INT(deduped_of(dd), 1);
    rsbus_close(plain);
    rsbus_close(dd);
}

TEST(a_failed_attempt_does_not_mark) {
    rsbus *bus = dedupe_bus("d:fail", "g", "c1", 60000);
    calls c;
    rsbus_claim_stats cs;
    REQUIRE(bus != NULL);
    memset(&c, 0, sizeof c);
    c.fail_first = 1;
    REQUIRE(rsbus_subscribe(bus, "*", count_handler, &c) > 0);
    CHECK_EQ_INT(pub_id(bus, "t", "F"), RSBUS_OK);
    CHECK_EQ_INT(rsbus_poll(bus, 100), 1);
    CHECK_EQ_INT(c.n, 1);
    CHECK_EQ_INT(raw_int("EXISTS {d:fail}:dedupe:g:F"), 0);
    CHECK_EQ_INT(pending_of("d:fail", "g"), 1);
    /* the retry is due after retry_backoff_ms (50): claim until it was handled */
    WAIT_UNTIL(rsbus_claim(bus, 0, 0, &cs) == RSBUS_OK && c.n == 2, 3000);
    CHECK_EQ_INT(raw_int("EXISTS {d:fail}:dedupe:g:F"), 1);
    CHECK_EQ_INT(pending_of("d:fail", "g"), 0);
    CHECK_EQ_INT(deduped_of(bus), 0);
    rsbus_close(bus);
}

TEST(dlq_replay_to_the_failed_group_runs_even_if_marked) {
    rsbus *bus = dedupe_bus("d:rpl", "g", "c1", 60000);
    calls c;
    rsbus_dlq_page page;
    char dlq_id[RSBUS_ID_SIZE], nid[RSBUS_ID_SIZE];
    REQUIRE(bus != NULL);
    memset(&c, 0, sizeof c);
    c.fail_first = 2;                                      /* the first attempt dead-letters */
    REQUIRE(rsbus_subscribe(bus, "*", count_handler, &c) > 0);
    CHECK_EQ_INT(pub_id(bus, "t", "R"), RSBUS_OK);
    CHECK_EQ_INT(rsbus_poll(bus, 100), 1);
    CHECK_EQ_INT(raw_int("XLEN {d:rpl}:dlq"), 1);
    CHECK_EQ_INT(pub_id(bus, "t", "R"), RSBUS_OK);         /* a repeat, handled: R is marked now */
    CHECK_EQ_INT(rsbus_poll(bus, 100), 1);
    CHECK_EQ_INT(c.n, 2);
    CHECK_EQ_INT(raw_int("EXISTS {d:rpl}:dedupe:g:R"), 1);
    CHECK_EQ_INT(pub_id(bus, "t", "R"), RSBUS_OK);         /* a plain repeat is skipped */
    CHECK_EQ_INT(rsbus_poll(bus, 100), 1);
    CHECK_EQ_INT(c.n, 2);
    REQUIRE(rsbus_dlq_list(bus, NULL, 10, &page) == RSBUS_OK);
    REQUIRE(page.count == 1);
    memcpy(dlq_id, page.entries[0].dlq_id, sizeof dlq_id);
    rsbus_dlq_page_free(bus, &page);
    CHECK_EQ_INT(rsbus_dlq_replay(bus, dlq_id, nid), RSBUS_OK);
    CHECK_EQ_INT(rsbus_poll(bus, 100), 1);
    CHECK_EQ_INT(c.n, 3);                                  /* the operator's replay is handled */
    CHECK_EQ_STR(c.last_id, "R");
    CHECK_EQ_INT(deduped_of(bus), 1);
    CHECK_EQ_INT(pending_of("d:rpl", "g"), 0);
    rsbus_close(bus);
}

TEST(the_mark_expires_after_the_ttl) {
    rsbus *bus = dedupe_bus("d:ttl", "g", "c1", 150);
    calls c;
    REQUIRE(bus != NULL);
    memset(&c, 0, sizeof c);
    REQUIRE(rsbus_subscribe(bus, "*", count_handler, &c) > 0);
    CHECK_EQ_INT(pub_id(bus, "t", "T"), RSBUS_OK);
    CHECK_EQ_INT(rsbus_poll(bus, 100), 1);
    CHECK_EQ_INT(raw_int("EXISTS {d:ttl}:dedupe:g:T"), 1);
    WAIT_UNTIL(raw_int("EXISTS {d:ttl}:dedupe:g:T") == 0, 3000);
    CHECK_EQ_INT(pub_id(bus, "t", "T"), RSBUS_OK);
    CHECK_EQ_INT(rsbus_poll(bus, 100), 1);
    CHECK_EQ_INT(c.n, 2);                                  /* outside the window: handled again */
    rsbus_close(bus);
}

TEST(run_with_deferred_acks_dedupes_and_acks_everything) {
    rsbus *bus = dedupe_bus("d:run", "g", "c1", 60000);
    calls c;
    int i;
    char id[32];
    REQUIRE(bus != NULL);
    memset(&c, 0, sizeof c);
    c.bus = bus;
    c.stop_at = 40;
    REQUIRE(rsbus_subscribe(bus, "*", count_handler, &c) > 0);
    for (i = 0; i < 50; i++) {   /* 40 ids, 10 of them twice */
        snprintf(id, sizeof id, "run-%d", i < 40 ? i : i - 40);
        CHECK_EQ_INT(pub_id(bus, "t", id), RSBUS_OK);
    }
    CHECK_EQ_INT(rsbus_run(bus, NULL), RSBUS_OK);
    CHECK_EQ_INT(c.n, 40);
    CHECK_EQ_INT(deduped_of(bus), 10);
    WAIT_UNTIL(pending_of("d:run", "g") == 0, 3000);
    {
        redisReply *keys = raw("KEYS {d:run}:dedupe:g:*");
        CHECK(keys && keys->type == REDIS_REPLY_ARRAY && keys->elements == 40);
        if (keys) freeReplyObject(keys);
    }
    rsbus_close(bus);
}

/* A worker that handles "work" events (a side effect: a line in a file) and hangs in the handler of
   a "hang" event until it is killed, with the "work" events of its batch handled and not acked. */
typedef struct victim_arg { const char *stream, *effects, *ready; int64_t ttl; } victim_arg;
static rsbus_verdict victim_handler(const rsbus_msg *m, void *user) {
    victim_arg *a = (victim_arg *)user;
    if (strcmp(m->type, "hang") == 0) {
        log_line(a->ready, "ready");
        for (;;) pause();
    }
    if (m->id) log_line(a->effects, m->id);
    return RSBUS_ACK;
}
static void victim_main(void *p) {
    victim_arg *a = (victim_arg *)p;
    rsbus_config c = test_cfg(a->stream, "g", "victim");
    rsbus *bus;
    c.dedupe_ttl_ms = a->ttl;
    bus = open_cfg(&c);
    if (!bus) _exit(3);
    if (rsbus_subscribe(bus, "*", victim_handler, a) <= 0) _exit(4);
    (void)rsbus_run(bus, NULL);
    _exit(5);
}
/* Runs the scenario; returns how often the side effect of event "w1" happened. */
static int killed_between_handling_and_acking(const char *stream, int64_t ttl) {
    char effects[400], ready[420];
    victim_arg a;
    rsbus_config c = test_cfg(stream, "g", "rescuer");
    rsbus *bus;
    rsbus_claim_stats cs;
    pid_t v;
    int n;
    char name[64];
    snprintf(name, sizeof name, "effects-%s", stream);
    tmp_path(effects, sizeof effects, name);
    snprintf(ready, sizeof ready, "%s.ready", effects);
    unlink(ready);
    c.dedupe_ttl_ms = ttl;
    bus = open_cfg(&c);
    if (!bus) return -1;
    CHECK_EQ_INT(pub_id(bus, "work", "w1"), RSBUS_OK);
    CHECK_EQ_INT(pub_id(bus, "work", "w2"), RSBUS_OK);
    CHECK_EQ_INT(pub_id(bus, "hang", "h1"), RSBUS_OK);
    memset(&a, 0, sizeof a);
    a.stream = stream; a.effects = effects; a.ready = ready; a.ttl = ttl;
    v = spawn(victim_main, &a);
    WAIT_UNTIL(count_lines(ready, NULL) == 1, 5000);
    kill(v, SIGKILL);
    reap(v, 2000);
    CHECK_EQ_INT(count_lines(effects, "w1"), 1);
    CHECK_EQ_INT(pending_of(stream, "g"), 3);              /* handled, not acked: the batch was in hand */
    {
        calls rc;
        memset(&rc, 0, sizeof rc);
        rc.effects = effects;
        CHECK(rsbus_subscribe(bus, "*", count_handler, &rc) > 0);
        WAIT_UNTIL((rsbus_claim(bus, 0, 0, &cs) == RSBUS_OK && pending_of(stream, "g") == 0), 5000);
    }
    n = count_lines(effects, "w1");
    CHECK_EQ_INT(count_lines(effects, "h1"), 1);           /* the hang event was never handled before */
    rsbus_close(bus);
    return n;
}

TEST(sigkill_between_handling_and_acking_side_effect_once) {
    CHECK_EQ_INT(killed_between_handling_and_acking("d:kill", 60000), 1);
    CHECK_EQ_INT(raw_int("EXISTS {d:kill}:dedupe:g:w1 {d:kill}:dedupe:g:w2 {d:kill}:dedupe:g:h1"), 3);
}

TEST(without_dedupe_the_same_kill_runs_the_side_effect_twice) {
    /* the contrast: this is the duplicate the feature exists to prevent */
    CHECK_EQ_INT(killed_between_handling_and_acking("d:kill0", 0), 2);
}

TEST(config_rejects_negative_ttl) {
    rsbus_config c = test_cfg("d:cfg", "g", "c1");
    rsbus_error err;
    c.dedupe_ttl_ms = -1;
    CHECK(rsbus_open(&c, &err) == NULL);
    CHECK_EQ_INT(err.code, RSBUS_E_ARG);
    CHECK_CONTAINS(err.msg, "dedupe_ttl_ms");
}

TEST(metrics_count_deduped) {
    rsbus *bus = dedupe_bus("d:met", "g", "c1", 60000);
    calls c;
    char text[8192];
    REQUIRE(bus != NULL);
    memset(&c, 0, sizeof c);
    REQUIRE(rsbus_subscribe(bus, "*", count_handler, &c) > 0);
    CHECK_EQ_INT(pub_id(bus, "t", "M"), RSBUS_OK);
    CHECK_EQ_INT(pub_id(bus, "t", "M"), RSBUS_OK);
    CHECK_EQ_INT(rsbus_poll(bus, 100), 2);
    CHECK(rsbus_metrics_text(bus, text, sizeof text) < sizeof text);
    CHECK_CONTAINS(text, "rsbus_deduped_total{stream=\"d:met\",group=\"g\"} 1\n");
    rsbus_close(bus);
}

int main(void) {
    if (test_redis_start(&srv, NULL) != 0) {
        printf("test_dedupe: 0 passed, 1 failed\n");
        return 1;
    }
    RUN(repeats_are_skipped_and_acked);
    RUN(groups_are_independent);
    RUN(off_by_default_and_entries_without_id_always_run);
    RUN(a_failed_attempt_does_not_mark);
    RUN(dlq_replay_to_the_failed_group_runs_even_if_marked);
    RUN(the_mark_expires_after_the_ttl);
    RUN(run_with_deferred_acks_dedupes_and_acks_everything);
    RUN(sigkill_between_handling_and_acking_side_effect_once);
    RUN(without_dedupe_the_same_kill_runs_the_side_effect_twice);
    RUN(config_rejects_negative_ttl);
    RUN(metrics_count_deduped);
    kill_children();
    raw_reset();
    test_redis_stop(&srv);
    return test_summary("test_dedupe");
}
#endif /* RSBUS_NO_DEDUPE */
