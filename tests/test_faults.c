/* test_faults.c - real faults against a real redis-server: the server killed and restarted from its
   AOF, the server frozen (SIGSTOP), connections killed with CLIENT KILL, a consumer process killed
   with SIGKILL mid-batch, the group deleted under a running consumer, the server closing the
   socket in the middle of a write. */
#define _POSIX_C_SOURCE 200809L
#define RSBUS_IMPLEMENTATION
#include "../rsbus.h"
#include "test.h"
#include "redis_server.h"
#include "bus_util.h"

typedef struct hctx { const char *log_path; int calls; int block_on; const char *ready_path; } hctx;

static rsbus_verdict log_handler(const rsbus_msg *m, void *user) {
    hctx *h = (hctx *)user;
    h->calls++;
    if (h->block_on && h->calls == h->block_on) {
        /* mid-batch: tell the test we are here, then hang until killed */
        if (h->ready_path) log_line(h->ready_path, "ready");
        for (;;) pause();
    }
    if (h->log_path && m->id) log_line(h->log_path, m->id);
    return RSBUS_ACK;
}

static int publish_n(rsbus *bus, int n, const char *type) {
    rsbus_event ev;
    int i, ok = 0;
    memset(&ev, 0, sizeof ev);
    ev.type = type;
    for (i = 0; i < n; i++) if (rsbus_publish(bus, &ev, NULL) == RSBUS_OK) ok++;
    return ok;
}
/* Every event id in the stream appears in the log at least once. */
static int all_logged(const char *stream, const char *log_path) {
    redisReply *rep = raw("XRANGE %s - +", stream);
    size_t i;
    int missing = 0;
    if (!rep || rep->type != REDIS_REPLY_ARRAY) { if (rep) freeReplyObject(rep); return 0; }
    for (i = 0; i < rep->elements; i++) {
        const redisReply *f = rep->element[i]->element[1];
        if (f->elements >= 4 && count_lines(log_path, f->element[3]->str) < 1) missing++;
    }
    freeReplyObject(rep);
    return missing == 0;
}

typedef struct worker_arg { const char *stream, *group, *name, *log_path, *ready_path; int block_on; int claim_idle_ms; } worker_arg;
static volatile sig_atomic_t worker_stop;
static void on_term(int sig) { (void)sig; worker_stop = 1; }
static void worker_main(void *p) {
    worker_arg *a = (worker_arg *)p;
    rsbus_config c = test_cfg(a->stream, a->group, a->name);
    rsbus *bus;
    hctx h;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_term;
    sigaction(SIGTERM, &sa, NULL);
    if (a->claim_idle_ms) c.claim_idle_ms = a->claim_idle_ms;
    bus = open_cfg(&c);
    if (!bus) _exit(3);
    memset(&h, 0, sizeof h);
    h.log_path = a->log_path; h.block_on = a->block_on; h.ready_path = a->ready_path;
    if (rsbus_subscribe(bus, "*", log_handler, &h) <= 0) _exit(4);
    if (rsbus_run(bus, &worker_stop) != RSBUS_OK) _exit(5);
    rsbus_close(bus);
    _exit(0);
}

TEST(publish_fails_fast_when_redis_is_down) {
    test_redis s2;
    rsbus_config c = test_cfg("f:down", "g", "p");
    rsbus *bus;
    rsbus_result r;
    int64_t t0, took;
    REQUIRE(test_redis_start(&s2, NULL) == 0);
    c.url = s2.tcp_url;
    c.connect_timeout_ms = 500;
    c.publish_only = 1;
    bus = open_cfg(&c);
    REQUIRE(bus != NULL);
    CHECK_EQ_INT(publish_n(bus, 1, "x"), 1);
    test_redis_kill(&s2);
    t0 = test_now_ms();
    r = rsbus_publish(bus, &(rsbus_event){ .type = "x" }, NULL);
    took = test_now_ms() - t0;
    CHECK(r == RSBUS_E_IO || r == RSBUS_E_TIMEOUT);
    CHECK(took < 500 + 1000);
    r = rsbus_publish(bus, &(rsbus_event){ .type = "x" }, NULL);
    CHECK(r == RSBUS_E_IO || r == RSBUS_E_TIMEOUT);
    /* back: the next call reconnects by itself */
    CHECK_EQ_INT(test_redis_restart(&s2), 0);
    CHECK_EQ_INT(publish_n(bus, 1, "x"), 1);
    {
        rsbus_stats st;
        rsbus_stats_get(bus, &st);
        CHECK_EQ_INT(st.publish_errors, 2);
        CHECK(st.reconnects >= 1);
    }
    rsbus_close(bus);
    test_redis_stop(&s2);
}

TEST(frozen_server_times_out_then_recovers) {
    rsbus_config c = test_cfg("f:frozen", "g", "p");
    rsbus *bus;
    int64_t t0, took;
    rsbus_result r;
    c.io_timeout_ms = 300;
    bus = open_cfg(&c);
    REQUIRE(bus != NULL);
    kill(srv.pid, SIGSTOP);
    t0 = test_now_ms();
    r = rsbus_publish(bus, &(rsbus_event){ .type = "x" }, NULL);
    took = test_now_ms() - t0;
    kill(srv.pid, SIGCONT);
    CHECK_EQ_INT(r, RSBUS_E_TIMEOUT);
    CHECK(took >= 250 && took < 2000);
    CHECK_CONTAINS(rsbus_errmsg(bus), "timed out");
    /* the timed-out context is dead: the next call reconnects and works */
    CHECK_EQ_INT(publish_n(bus, 1, "x"), 1);
    rsbus_close(bus);
}

TEST(blocking_read_longer_than_io_timeout) {
    rsbus_config c = test_cfg("f:block", "g", "p");
    rsbus *bus;
    int64_t t0, took;
    int n;
    c.io_timeout_ms = 200;
    bus = open_cfg(&c);
    REQUIRE(bus != NULL);
    t0 = test_now_ms();
    n = rsbus_poll(bus, 700);     /* BLOCK 700 ms: must not be taken for a dead server */
    took = test_now_ms() - t0;
    CHECK_EQ_INT(n, 0);
    CHECK(took >= 650);
    CHECK_EQ_INT(rsbus_poll(bus, 50), 0);   /* same connection still good */
    {
        rsbus_stats st;
        rsbus_stats_get(bus, &st);
        CHECK_EQ_INT(st.reconnects, 0);
    }
    rsbus_close(bus);
}

TEST(run_survives_restart_from_aof) {
    test_redis s2;
    char logp[300];
    worker_arg wa;
    rsbus_config c = test_cfg("f:aof", "g", "p");
    rsbus *bus;
    pid_t w;
    test_redis saved = srv;
    REQUIRE(test_redis_start(&s2, "appendonly yes\nappendfsync always\n") == 0);
    srv = s2;   /* bus_util helpers talk to this server now */
    raw_reset();
    tmp_path(logp, sizeof logp, "aof.log");
    c.url = s2.unix_url;
    c.publish_only = 1;
    bus = open_cfg(&c);
    REQUIRE(bus != NULL);
    memset(&wa, 0, sizeof wa);
    wa.stream = "f:aof"; wa.group = "g"; wa.name = "w1"; wa.log_path = logp;
    w = spawn(worker_main, &wa);
    CHECK_EQ_INT(publish_n(bus, 1, "first"), 1);
    WAIT_UNTIL(count_lines(logp, NULL) == 1, 5000);     /* the worker is connected and running */
    kill(w, SIGSTOP);                                    /* frozen: what follows waits for the restart */
    CHECK_EQ_INT(publish_n(bus, 50, "before"), 50);
    test_redis_kill(&s2);
    raw_reset();
    kill(w, SIGCONT);                                    /* now it finds Redis gone and retries */
    CHECK_EQ_INT(test_redis_restart(&s2), 0);
    srv = s2;
    WAIT_UNTIL(count_lines(logp, NULL) >= 51, 15000);
    CHECK(all_logged("f:aof", logp));
    kill(w, SIGTERM);
    CHECK_EQ_INT(reap(w, 5000), 0);
    CHECK_EQ_INT(pending_of("f:aof", "g"), 0);
    rsbus_close(bus);
    raw_reset();
    test_redis_stop(&s2);
    srv = saved;
}

TEST(consumer_killed_mid_batch_is_claimed) {
    char logp[300], readyp[300];
    worker_arg victim, rescuer;
    rsbus_config c = test_cfg("f:kill", "g", "p");
    rsbus *bus;
    pid_t v, r;
    tmp_path(logp, sizeof logp, "kill.log");
    tmp_path(readyp, sizeof readyp, "kill.ready");
    bus = open_cfg(&c);
    REQUIRE(bus != NULL);
    CHECK_EQ_INT(publish_n(bus, 40, "job"), 40);
    rsbus_close(bus);
    memset(&victim, 0, sizeof victim);
    victim.stream = "f:kill"; victim.group = "g"; victim.name = "victim";
    victim.log_path = logp; victim.ready_path = readyp; victim.block_on = 10;
    v = spawn(worker_main, &victim);
    WAIT_UNTIL(count_lines(readyp, NULL) == 1, 5000);
    kill(v, SIGKILL);
    reap(v, 2000);
    CHECK_EQ_INT(count_lines(logp, NULL), 9);     /* 9 handled, none acked yet: the batch was in hand */
    CHECK_EQ_INT(pending_of("f:kill", "g"), 40);
    memset(&rescuer, 0, sizeof rescuer);
    rescuer.stream = "f:kill"; rescuer.group = "g"; rescuer.name = "rescuer"; rescuer.log_path = logp;
    rescuer.claim_idle_ms = 200;
    r = spawn(worker_main, &rescuer);
    WAIT_UNTIL(pending_of("f:kill", "g") == 0, 10000);
    kill(r, SIGTERM);
    CHECK_EQ_INT(reap(r, 5000), 0);
    CHECK(all_logged("f:kill", logp));
    CHECK_EQ_INT(raw_int("XLEN {f:kill}:dlq"), 0);
}

TEST(client_kill_during_run_loses_nothing) {
    char logp[300];
    worker_arg wa;
    rsbus_config c = test_cfg("f:ck", "g", "p");
    rsbus *bus;
    pid_t w;
    int i, kills = 0;
    tmp_path(logp, sizeof logp, "ck.log");
    c.publish_only = 0;
    bus = open_cfg(&c);
    REQUIRE(bus != NULL);
    memset(&wa, 0, sizeof wa);
    wa.stream = "f:ck"; wa.group = "g"; wa.name = "w"; wa.log_path = logp;
    wa.claim_idle_ms = 300;
    w = spawn(worker_main, &wa);
    CHECK_EQ_INT(publish_n(bus, 1, "ck"), 1);
    WAIT_UNTIL(count_lines(logp, NULL) == 1, 5000);     /* the worker is up before the killing starts */
    for (i = 0; i < 10; i++) {
        CHECK_EQ_INT(publish_n(bus, 20, "ck"), 20);
        /* kill every normal client connection but ours (the worker's and the publisher's) */
        {
            long long k = raw_int("CLIENT KILL TYPE normal SKIPME yes");
            if (k > 0) kills += (int)k;
        }
        test_sleep_ms(30);
    }
    CHECK(kills >= 10);
    CHECK_EQ_INT(publish_n(bus, 20, "ck"), 20);     /* the publisher reconnects by itself */
    WAIT_UNTIL(all_logged("f:ck", logp) && pending_of("f:ck", "g") == 0, 15000);
    CHECK_EQ_INT(raw_int("XLEN f:ck"), 221);
    kill(w, SIGTERM);
    CHECK_EQ_INT(reap(w, 5000), 0);
    rsbus_close(bus);
}

TEST(group_deleted_under_a_running_consumer) {
    char logp[300];
    worker_arg wa;
    rsbus_config c = test_cfg("f:nogroup", "g", "p");
    rsbus *bus;
    pid_t w;
    tmp_path(logp, sizeof logp, "nogroup.log");
    bus = open_cfg(&c);
    REQUIRE(bus != NULL);
    memset(&wa, 0, sizeof wa);
    wa.stream = "f:nogroup"; wa.group = "g"; wa.name = "w"; wa.log_path = logp;
    w = spawn(worker_main, &wa);
    CHECK_EQ_INT(publish_n(bus, 5, "a"), 5);
    WAIT_UNTIL(count_lines(logp, NULL) == 5, 5000);
    /* the stream (and its group) deleted: events published after it must still be handled */
    CHECK_EQ_INT(raw_int("DEL f:nogroup"), 1);
    CHECK_EQ_INT(publish_n(bus, 5, "b"), 5);
    WAIT_UNTIL(count_lines(logp, NULL) == 10, 10000);
    CHECK(all_logged("f:nogroup", logp));
    kill(w, SIGTERM);
    CHECK_EQ_INT(reap(w, 5000), 0);
    rsbus_close(bus);
}

static volatile sig_atomic_t alarm_stop;
static void on_alarm(int sig) { (void)sig; alarm_stop = 1; }

TEST(nogroup_backs_off_and_logs_at_a_bounded_rate) {
    rsbus_config c = test_cfg("f:ng2", "g", "c");
    rsbus *bus;
    char url[512];
    size_t before;
    int warns = 0;
    const char *p;
    long long calls = 0;
    struct sigaction sa;
    redisReply *rep;
    /* a least-privilege worker may not create groups: the group is gone and stays gone */
    rep = raw("ACL SETUSER limited on >lim-pw ~* &* +@all -xgroup");
    CHECK(rep && rep->type == REDIS_REPLY_STATUS);
    if (rep) freeReplyObject(rep);
    snprintf(url, sizeof url, "%s?user=limited&password=lim-pw", srv.unix_url);
    c.url = url;
    before = loglen;
    bus = open_cfg(&c);                 /* cannot create the group: warns and goes on */
    REQUIRE(bus != NULL);
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, NULL);
    alarm_stop = 0;
    alarm(2);                           /* the signal handler's flag ends rsbus_run */
    CHECK_EQ_INT(rsbus_run(bus, &alarm_stop), RSBUS_OK);
    /* every failed attempt leaves one debug line naming NOPERM: few of them means it backed off */
    for (p = logbuf + before; (p = strstr(p, "NOPERM")) != NULL; p++) calls++;
    for (p = logbuf + before; (p = strstr(p, "is missing")) != NULL; p++) warns++;
    CHECK(warns >= 1 && warns <= 1);
    if (calls < 1 || calls > 20) fprintf(stderr, "  failed attempts in 2 s: %lld\n", calls);
    CHECK(calls >= 2 && calls <= 20);   /* backing off, not spinning */
    rsbus_close(bus);
}

TEST(server_closing_mid_write_does_not_raise_sigpipe) {
    rsbus_config c = test_cfg("f:pipe", "g", "p");
    rsbus *bus;
    rsbus_event ev;
    char *big;
    size_t n = 8u << 20, i;
    rsbus_result r;
    c.max_event_bytes = n + 16;
    c.publish_only = 1;
    bus = open_cfg(&c);
    REQUIRE(bus != NULL);
    /* Redis refuses a bulk longer than proto-max-bulk-len and closes the connection while the rest of
       the command is still being written: without MSG_NOSIGNAL this process would die of SIGPIPE. */
    freeReplyObject(raw("CONFIG SET proto-max-bulk-len 1mb"));
    big = (char *)malloc(n + 1);
    REQUIRE(big != NULL);
    big[0] = '"';
    for (i = 1; i < n - 1; i++) big[i] = 'a';
    big[n - 1] = '"'; big[n] = 0;
    memset(&ev, 0, sizeof ev);
    ev.type = "big"; ev.data = big; ev.data_len = n;
    r = rsbus_publish(bus, &ev, NULL);
    CHECK(r == RSBUS_E_IO || r == RSBUS_E_REDIS);
    freeReplyObject(raw("CONFIG SET proto-max-bulk-len 512mb"));
    CHECK_EQ_INT(publish_n(bus, 1, "small"), 1);
    free(big);
    rsbus_close(bus);
}

int main(void) {
    if (test_redis_start(&srv, NULL) != 0) {
        printf("test_faults: 0 passed, 1 failed\n");
        return 1;
    }
    RUN(publish_fails_fast_when_redis_is_down);
    RUN(frozen_server_times_out_then_recovers);
    RUN(blocking_read_longer_than_io_timeout);
    RUN(run_survives_restart_from_aof);
    RUN(consumer_killed_mid_batch_is_claimed);
    RUN(client_kill_during_run_loses_nothing);
    RUN(group_deleted_under_a_running_consumer);
    RUN(nogroup_backs_off_and_logs_at_a_bounded_rate);
    RUN(server_closing_mid_write_does_not_raise_sigpipe);
    kill_children();
    raw_reset();
    test_redis_stop(&srv);
    return test_summary("test_faults");
}
