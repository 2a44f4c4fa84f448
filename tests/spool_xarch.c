/* spool_xarch.c - the spool file is the same on every machine (make test-cross runs this across armhf,
   s390x and x86-64, in both directions):
       spool_xarch write PATH N    publishes N known events through a spool while Redis cannot be
                                   reached, so they stay in the file PATH; prints what it wrote
       spool_xarch flush PATH N    starts a real redis-server, opens a bus on PATH, flushes it, and
                                   checks that the stream holds exactly those N events, field by field
   A spool written by one build and flushed by another of a different word size or byte order must
   come out identical. flush ends with "spool_xarch: N passed, N failed" (tests/run_tests.sh counts it). */
#define _POSIX_C_SOURCE 200809L
#define RSBUS_IMPLEMENTATION
#include "../rsbus.h"
#include "test.h"
#include "redis_server.h"
#include "bus_util.h"

#include <stdlib.h>

#define XA_STREAM "xarch"
#define XA_TS0 INT64_C(1700000000000)

/* The i-th event: its id, ts, version, key and payload are all derived from i. */
static void xa_event(int i, rsbus_event *ev, char *id, char *data, size_t data_size) {
    memset(ev, 0, sizeof *ev);
    sprintf(id, "xarch-%06d", i);
    snprintf(data, data_size, "{\"i\":%d,\"big\":%lld,\"f\":%d.25,\"s\":\"\\u00e9\\u4e2d-%d\"}", i,
             (long long)INT64_C(4000000000) * i, i, i);
    ev->type = i % 2 ? "reading.odd" : "reading.even";
    ev->id = id;
    ev->data = data;
    ev->ts_ms = XA_TS0 + i;
    ev->version = 1 + i % 3;
    ev->key = i % 5 ? "sensor-a" : NULL;
}

static int xa_write(const char *path, int n) {
    rsbus_config c;
    rsbus_error err;
    rsbus *bus;
    rsbus_event ev;
    char id[32], data[160];
    size_t events = 0, bytes = 0;
    int i;
    memset(&c, 0, sizeof c);
    c.url = "unix:///nonexistent-rsbus-xarch/redis.sock";   /* never reachable: everything is spooled */
    c.stream = XA_STREAM;
    c.publish_only = 1;
    c.spool_path = path;
    c.connect_timeout_ms = 200;
    if (!(bus = rsbus_open(&c, &err))) {
        fprintf(stderr, "spool_xarch write: rsbus_open: %s: %s\n", rsbus_result_str(err.code), err.msg);
        return 1;
    }
    for (i = 0; i < n; i++) {
        rsbus_result r;
        xa_event(i, &ev, id, data, sizeof data);
        r = rsbus_publish(bus, &ev, NULL);
        if (r != (rsbus_result)RSBUS_SPOOLED) {
            fprintf(stderr, "spool_xarch write: event %d: %s: %s\n", i, rsbus_result_str(r), rsbus_errmsg(bus));
            rsbus_close(bus);
            return 1;
        }
    }
    (void)rsbus_spool_pending(bus, &events, &bytes);
    printf("spool_xarch write: %lu events, %lu bytes spooled in %s (%u-bit, %s-endian)\n", (unsigned long)events,
           (unsigned long)bytes, path, (unsigned)(sizeof(void *) * 8),
           *(const unsigned char *)&(const uint32_t){ 1 } ? "little" : "big");
    rsbus_close(bus);
    return events == (size_t)n ? 0 : 1;
}

static const char *xa_field(const redisReply *f, const char *name) {
    size_t j;
    for (j = 0; j + 1 < f->elements; j += 2)
        if (!strcmp(f->element[j]->str, name)) return f->element[j + 1]->str;
    return NULL;
}

static int xa_n;
static const char *xa_path;

TEST(flush_sends_every_event_as_written) {
    rsbus_config c = test_cfg(XA_STREAM, "g", "c");
    rsbus *bus;
    redisReply *rep;
    size_t sent = 0, events = 1;
    int i;
    c.publish_only = 1;
    c.spool_path = xa_path;
    bus = open_cfg(&c);
    REQUIRE(bus != NULL);
    CHECK_EQ_INT(rsbus_spool_flush(bus, &sent), RSBUS_OK);
    CHECK_EQ_INT(rsbus_spool_pending(bus, &events, NULL), RSBUS_OK);
    CHECK_EQ_INT(events, 0);
    rsbus_close(bus);
    CHECK_EQ_INT(sent, xa_n);
    rep = raw("XRANGE " XA_STREAM " - +");
    REQUIRE(rep && rep->type == REDIS_REPLY_ARRAY);
    CHECK_EQ_INT(rep->elements, xa_n);
    for (i = 0; i < xa_n && (size_t)i < rep->elements; i++) {
        const redisReply *f = rep->element[i]->element[1];
        rsbus_event ev;
        char id[32], data[160], ts[32], v[8];
        xa_event(i, &ev, id, data, sizeof data);
        sprintf(ts, "%lld", (long long)ev.ts_ms);
        sprintf(v, "%d", ev.version);
        CHECK_EQ_STR(xa_field(f, "type"), ev.type);
        CHECK_EQ_STR(xa_field(f, "id"), id);
        CHECK_EQ_STR(xa_field(f, "ts"), ts);
        CHECK_EQ_STR(xa_field(f, "v"), v);
        CHECK_EQ_STR(xa_field(f, "data"), data);
        if (ev.key) CHECK_EQ_STR(xa_field(f, "key"), ev.key);
        else CHECK(xa_field(f, "key") == NULL);
        if (test__cur_failed) break;              /* one event's mismatch says enough */
    }
    freeReplyObject(rep);
}

int main(int argc, char **argv) {
    int n = argc > 3 ? atoi(argv[3]) : 0;
    if (argc != 4 || n < 1 || n > 1000000 || (strcmp(argv[1], "write") != 0 && strcmp(argv[1], "flush") != 0)) {
        fprintf(stderr, "usage: spool_xarch write|flush PATH N\n");
        return 2;
    }
    if (!strcmp(argv[1], "write")) return xa_write(argv[2], n);
    xa_n = n;
    xa_path = argv[2];
    if (test_redis_start(&srv, NULL) != 0) {
        fprintf(stderr, "spool_xarch: cannot start redis-server\n");
        test__failed++;
        return test_summary("spool_xarch");
    }
    RUN(flush_sends_every_event_as_written);
    raw_reset();
    test_redis_stop(&srv);
    return test_summary("spool_xarch");
}
