/* test_spool.c - the offline spool (spool_path) against a real redis-server that is killed and
   started again: 10,000 events spooled while it is down arrive once and in order; the next publish,
   rsbus_run and rsbus_spool_flush send the spool; a torn or damaged last record is dropped and
   nothing before it; a publisher SIGKILLed while spooling loses at most the record being written;
   the size bound, the lock, and errors that must not spool. */
#define _POSIX_C_SOURCE 200809L
#define RSBUS_IMPLEMENTATION
#include "../rsbus.h"
#include "test.h"
#include "redis_server.h"
#include "bus_util.h"
#include <sys/stat.h>

#ifdef RSBUS_NO_SPOOL
/* Built with -DRSBUS_NO_SPOOL (make test's switch matrix): spool_path is refused naming the switch,
   nothing is created, the spool calls answer RSBUS_E_ARG, and publishing without a spool works. */
TEST(spool_compiled_out) {
    rsbus_config c = test_cfg("t:nospool", "g", "p");
    rsbus_error err;
    rsbus_event ev;
    rsbus *bus;
    char path[512], sid[RSBUS_ID_SIZE];
    size_t n = 1, bytes = 1;
    struct stat st;
    tmp_path(path, sizeof path, "nospool.spool");
    c.spool_path = path;
    c.publish_only = 1;
    CHECK(rsbus_open(&c, &err) == NULL);
    CHECK_EQ_INT(err.code, RSBUS_E_ARG);
    CHECK_EQ_STR(err.msg, "rsbus_config.spool_path: the spool is compiled out by RSBUS_NO_SPOOL");
    CHECK(stat(path, &st) != 0);
    c.spool_path = NULL;
    bus = open_cfg(&c);
    REQUIRE(bus != NULL);
    CHECK_EQ_INT(rsbus_spool_pending(bus, &n, &bytes), RSBUS_E_ARG);
    CHECK_EQ_INT(n, 0);
    CHECK_EQ_INT(bytes, 0);
    CHECK_EQ_STR(rsbus_errmsg(bus), "rsbus_spool_pending: compiled out by RSBUS_NO_SPOOL");
    CHECK_EQ_INT(rsbus_spool_flush(bus, &n), RSBUS_E_ARG);
    CHECK_EQ_STR(rsbus_errmsg(bus), "rsbus_spool_flush: compiled out by RSBUS_NO_SPOOL");
    memset(&ev, 0, sizeof ev);
    ev.type = "x";
    ev.data = "{\"a\":1}";
    CHECK_EQ_INT(rsbus_publish(bus, &ev, sid), RSBUS_OK);
    CHECK_EQ_INT(raw_int("XLEN t:nospool"), 1);
    rsbus_close(bus);
}

int main(void) {
    if (test_redis_start(&srv, NULL) != 0) {
        printf("test_spool: 0 passed, 1 failed\n");
        return 1;
    }
    fprintf(stderr, "test_spool: built with RSBUS_NO_SPOOL: the spool tests are skipped; testing what such a build promises\n");
    RUN(spool_compiled_out);
    raw_reset();
    test_redis_stop(&srv);
    return test_summary("test_spool");
}
#else

static test_redis down;   /* a server the tests kill and restart (AOF, so a kill loses nothing); srv stays up */

static rsbus_config spool_cfg(const char *stream, const char *path) {
    rsbus_config c = test_cfg(stream, "g", "p");
    c.url = down.unix_url;
    c.publish_only = 1;
    c.spool_path = path;
    c.connect_timeout_ms = 300;
    c.io_timeout_ms = 1000;
    return c;
}
static redisReply *down_cmd(const char *fmt, const char *arg) {
    redisContext *ctx = test_redis_connect(&down);
    redisReply *rep;
    if (!ctx) return NULL;
    rep = (redisReply *)redisCommand(ctx, fmt, arg);
    redisFree(ctx);
    return rep;
}
static long long down_xlen(const char *stream) {
    redisReply *rep = down_cmd("XLEN %s", stream);
    long long n = rep && rep->type == REDIS_REPLY_INTEGER ? rep->integer : -1;
    if (rep) freeReplyObject(rep);
    return n;
}
/* The event ids of a stream, in stream order, must be prefix-0 .. prefix-(n-1), each once. */
static int ids_in_order(const char *stream, const char *prefix, long long n) {
    redisReply *rep = down_cmd("XRANGE %s - +", stream);
    long long i;
    int ok = rep && rep->type == REDIS_REPLY_ARRAY && (long long)rep->elements == n;
    for (i = 0; ok && i < n; i++) {
        const redisReply *f = rep->element[i]->element[1];
        char want[64];
        size_t k;
        int found = 0;
        snprintf(want, sizeof want, "%s-%lld", prefix, i);
        for (k = 0; k + 1 < f->elements; k += 2)
            if (!strcmp(f->element[k]->str, "id")) found = !strcmp(f->element[k + 1]->str, want);
        if (!found) { fprintf(stderr, "  entry %lld is not %s\n", i, want); ok = 0; }
    }
    if (rep) freeReplyObject(rep);
    return ok;
}
static rsbus_result pub(rsbus *bus, const char *prefix, long long i) {
    rsbus_event ev;
    char id[64], data[64];
    memset(&ev, 0, sizeof ev);
    snprintf(id, sizeof id, "%s-%lld", prefix, i);
    snprintf(data, sizeof data, "{\"n\":%lld}", i);
    ev.type = "reading";
    ev.id = id;
    ev.data = data;
    ev.ts_ms = 1700000000000 + i;
    return rsbus_publish(bus, &ev, NULL);
}
static long long file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}
static size_t pending_events(rsbus *bus) {
    size_t ev = 0;
    CHECK_EQ_INT(rsbus_spool_pending(bus, &ev, NULL), RSBUS_OK);
    return ev;
}

TEST(crc32_is_the_ieee_one) {
    CHECK_EQ_INT(rsbus__crc32((const unsigned char *)"123456789", 9), 0xCBF43926u);
}

TEST(ten_thousand_offline_then_flush_once_in_order) {
    char path[400];
    rsbus_config c;
    rsbus *bus;
    rsbus_stats st;
    size_t sent = 0, ev = 0, bytes = 0;
    long long i;
    int spooled = 0;
    char sid[RSBUS_ID_SIZE] = "x";
    tmp_path(path, sizeof path, "ten.spool");
    test_redis_kill(&down);
    c = spool_cfg("s:ten", path);
    c.spool_fsync = 1;   /* 10,000 fsyncs would measure the disk, not rsbus */
    bus = open_cfg(&c);  /* opens while Redis is down: a gateway starts offline */
    REQUIRE(bus != NULL);
    for (i = 0; i < 10000; i++) if (pub(bus, "e", i) == RSBUS_SPOOLED) spooled++;
    CHECK_EQ_INT(spooled, 10000);
    CHECK_EQ_INT(rsbus_spool_pending(bus, &ev, &bytes), RSBUS_OK);
    CHECK_EQ_INT(ev, 10000);
    CHECK(bytes > 10000 * 100);
    CHECK_EQ_INT((long long)bytes + 16, file_size(path));
    rsbus_stats_get(bus, &st);
    CHECK_EQ_INT(st.spooled, 10000);
    CHECK_EQ_INT(st.published, 0);
    CHECK_EQ_INT(rsbus_spool_flush(bus, &sent), RSBUS_E_IO);   /* still down: kept */
    CHECK_EQ_INT(pending_events(bus), 10000);
    REQUIRE(test_redis_restart(&down) == 0);
    CHECK_EQ_INT(rsbus_spool_flush(bus, &sent), RSBUS_OK);
    CHECK_EQ_INT(sent, 10000);
    CHECK_EQ_INT(down_xlen("s:ten"), 10000);
    CHECK(ids_in_order("s:ten", "e", 10000));
    CHECK_EQ_INT(pending_events(bus), 0);
    CHECK_EQ_INT(file_size(path), 16);
    CHECK_EQ_INT(rsbus_spool_flush(bus, &sent), RSBUS_OK);
    CHECK_EQ_INT(sent, 0);
    rsbus_stats_get(bus, &st);
    CHECK_EQ_INT(st.published, 10000);
    CHECK_EQ_INT(pub(bus, "e", 10000), RSBUS_OK);            /* online again: straight to Redis */
    {
        rsbus_event e2;
        memset(&e2, 0, sizeof e2);
        e2.type = "reading";
        CHECK_EQ_INT(rsbus_publish(bus, &e2, sid), RSBUS_OK);
        CHECK(sid[0] >= '1' && sid[0] <= '9');
    }
    CHECK_EQ_INT(down_xlen("s:ten"), 10002);
    rsbus_close(bus);
}

TEST(the_next_publish_sends_the_spool_first) {
    char path[400];
    rsbus_config c;
    rsbus *bus;
    long long i;
    char sid[RSBUS_ID_SIZE];
    tmp_path(path, sizeof path, "next.spool");
    c = spool_cfg("s:next", path);
    bus = open_cfg(&c);
    REQUIRE(bus != NULL);
    CHECK_EQ_INT(pub(bus, "n", 0), RSBUS_OK);
    test_redis_kill(&down);
    for (i = 1; i <= 5; i++) CHECK_EQ_INT(pub(bus, "n", i), RSBUS_SPOOLED);
    {
        rsbus_event ev;
        memset(&ev, 0, sizeof ev);
        ev.type = "reading"; ev.id = "n-6";
        strcpy(sid, "junk");
        CHECK_EQ_INT(rsbus_publish(bus, &ev, sid), RSBUS_SPOOLED);
        CHECK_EQ_STR(sid, "");                              /* no stream id yet */
    }
    REQUIRE(test_redis_restart(&down) == 0);
    CHECK_EQ_INT(pub(bus, "n", 7), RSBUS_OK);
    CHECK(ids_in_order("s:next", "n", 8));
    CHECK_EQ_INT(pending_events(bus), 0);
    rsbus_close(bus);
}

TEST(a_batch_is_spooled_whole_and_keeps_ids_and_ts) {
    char path[400];
    rsbus_config c;
    rsbus *bus;
    rsbus_event evs[10];
    char ids[10][16], sids[10][RSBUS_ID_SIZE];
    redisReply *rep;
    int i;
    tmp_path(path, sizeof path, "batch.spool");
    test_redis_kill(&down);
    c = spool_cfg("s:batch", path);
    bus = open_cfg(&c);
    REQUIRE(bus != NULL);
    memset(evs, 0, sizeof evs);
    for (i = 0; i < 10; i++) {
        snprintf(ids[i], sizeof ids[i], "b-%d", i);
        evs[i].type = "reading"; evs[i].id = ids[i]; evs[i].ts_ms = 1234 + i; evs[i].key = "dev-7";
        strcpy(sids[i], "junk");
    }
    CHECK_EQ_INT(rsbus_publish_batch(bus, evs, 10, sids), RSBUS_SPOOLED);
    CHECK_EQ_STR(sids[9], "");
    evs[3].type = "bad type";                                /* a bad event is refused, never spooled */
    CHECK_EQ_INT(rsbus_publish_batch(bus, evs, 10, NULL), RSBUS_E_ARG);
    CHECK_CONTAINS(rsbus_errmsg(bus), "event 3 of the batch");
    CHECK_EQ_INT(pending_events(bus), 10);
    REQUIRE(test_redis_restart(&down) == 0);
    CHECK_EQ_INT(rsbus_spool_flush(bus, NULL), RSBUS_OK);
    CHECK(ids_in_order("s:batch", "b", 10));
    rep = down_cmd("XRANGE %s - + COUNT 1", "s:batch");
    REQUIRE(rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 1);
    {
        const redisReply *f = rep->element[0]->element[1];
        size_t k;
        int ts_ok = 0, key_ok = 0;
        for (k = 0; k + 1 < f->elements; k += 2) {
            if (!strcmp(f->element[k]->str, "ts")) ts_ok = !strcmp(f->element[k + 1]->str, "1234");
            if (!strcmp(f->element[k]->str, "key")) key_ok = !strcmp(f->element[k + 1]->str, "dev-7");
        }
        CHECK(ts_ok);
        CHECK(key_ok);
    }
    freeReplyObject(rep);
    rsbus_close(bus);
}

/* rsbus_run sends the spool of its bus once Redis is back, and consumes what it sent. */
typedef struct seen { int n, want; rsbus *bus; } seen;
static rsbus_verdict seen_handler(const rsbus_msg *m, void *user) {
    seen *s = (seen *)user;
    (void)m;
    if (++s->n >= s->want) rsbus_stop(s->bus);
    return RSBUS_ACK;
}
TEST(run_sends_the_spool) {
    char path[400];
    rsbus_config c;
    rsbus *bus;
    seen s;
    long long i;
    tmp_path(path, sizeof path, "run.spool");
    test_redis_kill(&down);
    c = spool_cfg("s:run", path);
    c.publish_only = 0;
    bus = open_cfg(&c);
    REQUIRE(bus != NULL);
    for (i = 0; i < 20; i++) CHECK_EQ_INT(pub(bus, "r", i), RSBUS_SPOOLED);
    REQUIRE(test_redis_restart(&down) == 0);
    memset(&s, 0, sizeof s);
    s.want = 20; s.bus = bus;
    REQUIRE(rsbus_subscribe(bus, "*", seen_handler, &s) > 0);
    CHECK_EQ_INT(rsbus_run(bus, NULL), RSBUS_OK);
    CHECK_EQ_INT(s.n, 20);
    CHECK(ids_in_order("s:run", "r", 20));
    CHECK_EQ_INT(pending_events(bus), 0);
    rsbus_close(bus);
}

/* Appends bytes to a file. */
static void append_bytes(const char *path, const void *p, size_t n) {
    int fd = open(path, O_WRONLY | O_APPEND);
    if (fd >= 0) { if (write(fd, p, n) < 0) { /* checked by the caller */ } close(fd); }
}
TEST(a_torn_last_record_is_dropped_and_nothing_before_it) {
    char path[400];
    rsbus_config c;
    rsbus *bus;
    long long good;
    unsigned char torn[40];
    int fd;
    tmp_path(path, sizeof path, "torn.spool");
    test_redis_kill(&down);
    c = spool_cfg("s:torn", path);
    bus = open_cfg(&c);
    REQUIRE(bus != NULL);
    CHECK_EQ_INT(pub(bus, "t", 0), RSBUS_SPOOLED);
    CHECK_EQ_INT(pub(bus, "t", 1), RSBUS_SPOOLED);
    CHECK_EQ_INT(pub(bus, "t", 2), RSBUS_SPOOLED);
    rsbus_close(bus);
    good = file_size(path);
    /* a record cut short by a crash: its header says 200 bytes, 32 made it */
    memset(torn, 'x', sizeof torn);
    torn[0] = 200; torn[1] = torn[2] = torn[3] = 0;
    append_bytes(path, torn, sizeof torn);
    CHECK_EQ_INT(file_size(path), good + 40);
    loglen = 0; logbuf[0] = 0;
    bus = open_cfg(&c);
    REQUIRE(bus != NULL);
    CHECK_EQ_INT(pending_events(bus), 3);
    CHECK_CONTAINS(logbuf, "dropped 40 bytes");
    CHECK_EQ_INT(file_size(path), good);
    rsbus_close(bus);
    /* a whole last record with a wrong CRC (a damaged write): dropped, the two before it kept */
    fd = open(path, O_RDWR);
    REQUIRE(fd >= 0);
    CHECK(pwrite(fd, "Z", 1, (off_t)(good - 3)) == 1);
    close(fd);
    bus = open_cfg(&c);
    REQUIRE(bus != NULL);
    CHECK_EQ_INT(pending_events(bus), 2);
    REQUIRE(test_redis_restart(&down) == 0);
    CHECK_EQ_INT(rsbus_spool_flush(bus, NULL), RSBUS_OK);
    CHECK(ids_in_order("s:torn", "t", 2));
    rsbus_close(bus);
}

/* A publisher that spools as fast as it can and logs each RSBUS_SPOOLED, until it is killed. */
typedef struct spooler_arg { const char *path, *acked; } spooler_arg;
static void spooler_main(void *p) {
    spooler_arg *a = (spooler_arg *)p;
    rsbus_config c = spool_cfg("s:kill", a->path);
    rsbus *bus = open_cfg(&c);
    long long i;
    if (!bus) _exit(3);
    for (i = 0;; i++) {
        char line[32];
        if (pub(bus, "k", i) != RSBUS_SPOOLED) _exit(4);
        snprintf(line, sizeof line, "%lld", i);
        log_line(a->acked, line);
    }
}
TEST(sigkill_while_spooling_loses_at_most_the_record_being_written) {
    char path[400], acked[400];
    spooler_arg a;
    rsbus_config c;
    rsbus *bus;
    pid_t pid;
    int n_acked;
    size_t ev;
    tmp_path(path, sizeof path, "kill.spool");
    tmp_path(acked, sizeof acked, "kill.acked");
    test_redis_kill(&down);
    a.path = path; a.acked = acked;
    pid = spawn(spooler_main, &a);
    WAIT_UNTIL(count_lines(acked, NULL) >= 300, 20000);
    kill(pid, SIGKILL);
    CHECK_EQ_INT(reap(pid, 2000), -1);
    n_acked = count_lines(acked, NULL);
    c = spool_cfg("s:kill", path);
    bus = open_cfg(&c);
    REQUIRE(bus != NULL);
    ev = pending_events(bus);
    CHECK((long long)ev >= n_acked && (long long)ev <= n_acked + 1);
    REQUIRE(test_redis_restart(&down) == 0);
    CHECK_EQ_INT(rsbus_spool_flush(bus, NULL), RSBUS_OK);
    CHECK(ids_in_order("s:kill", "k", (long long)ev));
    rsbus_close(bus);
}

TEST(a_full_spool_refuses_with_a_clear_error) {
    char path[400];
    rsbus_config c;
    rsbus *bus;
    rsbus_result r = RSBUS_OK;
    rsbus_stats st;
    long long i;
    size_t before;
    tmp_path(path, sizeof path, "full.spool");
    test_redis_kill(&down);
    c = spool_cfg("s:full", path);
    c.spool_max_bytes = 4096;
    bus = open_cfg(&c);
    REQUIRE(bus != NULL);
    for (i = 0; i < 1000 && (r = pub(bus, "f", i)) == RSBUS_SPOOLED; i++) {}
    CHECK_EQ_INT(r, RSBUS_E_IO);
    CHECK(i > 5 && i < 100);
    CHECK_CONTAINS(rsbus_errmsg(bus), "is full");
    CHECK(file_size(path) <= 4096);
    before = pending_events(bus);
    CHECK_EQ_INT((long long)before, i);
    CHECK_EQ_INT(pub(bus, "f", i), RSBUS_E_IO);
    CHECK_EQ_INT(pending_events(bus), before);
    rsbus_stats_get(bus, &st);
    CHECK_EQ_INT(st.publish_errors, 2);
    REQUIRE(test_redis_restart(&down) == 0);
    CHECK_EQ_INT(pub(bus, "f", i), RSBUS_OK);                /* back: the spool goes first, then this */
    CHECK(ids_in_order("s:full", "f", i + 1));
    rsbus_close(bus);
}

TEST(errors_from_a_reachable_redis_are_not_spooled) {
    char path[400];
    rsbus_config c;
    rsbus *bus;
    redisReply *rep;
    tmp_path(path, sizeof path, "werr.spool");
    c = spool_cfg("s:wrongtype", path);
    bus = open_cfg(&c);
    REQUIRE(bus != NULL);
    rep = down_cmd("SET %s x", "s:wrongtype");
    if (rep) freeReplyObject(rep);
    CHECK_EQ_INT(pub(bus, "w", 0), RSBUS_E_REDIS);
    CHECK_CONTAINS(rsbus_errmsg(bus), "WRONGTYPE");
    CHECK_EQ_INT(pending_events(bus), 0);
    rsbus_close(bus);
}

TEST(one_spool_per_bus_and_only_spool_files) {
    char path[400], other[400];
    rsbus_config c;
    rsbus *a, *b;
    rsbus_error err;
    tmp_path(path, sizeof path, "lock.spool");
    c = spool_cfg("s:lock", path);
    a = open_cfg(&c);
    REQUIRE(a != NULL);
    b = rsbus_open(&c, &err);
    CHECK(b == NULL);
    CHECK_EQ_INT(err.code, RSBUS_E_IO);
    CHECK_CONTAINS(err.msg, "in use");
    rsbus_close(a);
    b = open_cfg(&c);                                       /* the lock went with the first bus */
    CHECK(b != NULL);
    rsbus_close(b);
    tmp_path(other, sizeof other, "notes.txt");
    log_line(other, "these are someone's notes, not a spool");
    c.spool_path = other;
    CHECK(rsbus_open(&c, &err) == NULL);
    CHECK_EQ_INT(err.code, RSBUS_E_ARG);
    CHECK_CONTAINS(err.msg, "not an rsbus spool file");
    CHECK_EQ_INT(count_lines(other, "these are someone's notes, not a spool"), 1);   /* untouched */
    c.spool_path = "";
    CHECK(rsbus_open(&c, &err) == NULL);
    CHECK_EQ_INT(err.code, RSBUS_E_ARG);
    c.spool_path = path;
    c.spool_fsync = 2;
    CHECK(rsbus_open(&c, &err) == NULL);
    CHECK_CONTAINS(err.msg, "spool_fsync");
}

TEST(without_a_spool_nothing_changes) {
    rsbus_config c = spool_cfg("s:none", NULL);
    rsbus *bus = open_cfg(&c);
    size_t ev = 9, bytes = 9, sent = 9;
    REQUIRE(bus != NULL);
    CHECK_EQ_INT(rsbus_spool_pending(bus, &ev, &bytes), RSBUS_OK);
    CHECK_EQ_INT(ev, 0);
    CHECK_EQ_INT(bytes, 0);
    CHECK_EQ_INT(rsbus_spool_flush(bus, &sent), RSBUS_OK);
    CHECK_EQ_INT(sent, 0);
    test_redis_kill(&down);
    CHECK_EQ_INT(pub(bus, "x", 0), RSBUS_E_IO);
    REQUIRE(test_redis_restart(&down) == 0);
    rsbus_close(bus);
}

/* every test finds the server up, whatever the one before it did */
#define RUN_UP(name) do { RUN(name); if (down.pid <= 0 && test_redis_restart(&down) != 0) test__failed++; } while (0)

int main(void) {
    if (test_redis_start(&srv, NULL) != 0 || test_redis_start(&down, "appendonly yes\nappendfsync always\n") != 0) {
        printf("test_spool: 0 passed, 1 failed\n");
        return 1;
    }
    RUN_UP(crc32_is_the_ieee_one);
    RUN_UP(ten_thousand_offline_then_flush_once_in_order);
    RUN_UP(the_next_publish_sends_the_spool_first);
    RUN_UP(a_batch_is_spooled_whole_and_keeps_ids_and_ts);
    RUN_UP(run_sends_the_spool);
    RUN_UP(a_torn_last_record_is_dropped_and_nothing_before_it);
    RUN_UP(sigkill_while_spooling_loses_at_most_the_record_being_written);
    RUN_UP(a_full_spool_refuses_with_a_clear_error);
    RUN_UP(errors_from_a_reachable_redis_are_not_spooled);
    RUN_UP(one_spool_per_bus_and_only_spool_files);
    RUN_UP(without_a_spool_nothing_changes);
    kill_children();
    raw_reset();
    test_redis_stop(&down);
    test_redis_stop(&srv);
    return test_summary("test_spool");
}
#endif /* RSBUS_NO_SPOOL */
