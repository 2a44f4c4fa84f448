/* test_cluster.c - rsbus on a real Redis Cluster (3 masters, 3 replicas on loopback ports, started and
   stopped by pid): CLUSTER SLOTS and redirect parsing from canned replies (rsbus_key_slot is checked
   against CLUSTER KEYSLOT in test_partitions.c), then
   publishing and consuming, DLQ moves and replays, a slot moved under a bus (ASK while it migrates,
   MOVED after), a reshard of thousands of slots under a running publisher and two consumers, and a
   master killed under load. RSBUS_CLUSTER_LONG=1 makes the load runs longer (make test-cluster-long). */
#define _POSIX_C_SOURCE 200809L
#define RSBUS_IMPLEMENTATION
#include "../rsbus.h"
#include "test.h"
#include "redis_server.h"
#include "redis_cluster.h"
#include "bus_util.h"

static test_cluster cl;
static int cluster_up;

/* ---- canned replies ---- */
static redisReply *resp(const char *text) {
    redisReader *rd = redisReaderCreate();
    void *rep = NULL;
    redisReaderFeed(rd, text, strlen(text));
    if (redisReaderGetReply(rd, &rep) != REDIS_OK) rep = NULL;
    redisReaderFree(rd);
    return (redisReply *)rep;
}

TEST(cluster_slots_reply_is_read) {
    rsbus__cluster *m = (rsbus__cluster *)calloc(1, sizeof *m);
    rsbus__addr asked;
    redisReply *rep;
    REQUIRE(m);
    snprintf(asked.host, sizeof asked.host, "10.0.0.9");
    asked.port = 7000;
    /* two ranges of one master (a name), one of an IPv6 master, one whose host is unknown (""): the asked node */
    rep = resp("*4\r\n"
               "*3\r\n:0\r\n:99\r\n*3\r\n$15\r\nredis-a.example\r\n:7001\r\n$2\r\nid\r\n"
               "*4\r\n:100\r\n:199\r\n*3\r\n$3\r\n::1\r\n:7002\r\n$2\r\nid\r\n*3\r\n$9\r\n127.0.0.1\r\n:7005\r\n$2\r\nid\r\n"
               "*3\r\n:200\r\n:16383\r\n*3\r\n$0\r\n\r\n:7003\r\n$2\r\nid\r\n"
               "*3\r\n:16380\r\n:16380\r\n*3\r\n$15\r\nredis-a.example\r\n:7001\r\n$2\r\nid\r\n");
    REQUIRE(rep);
    CHECK_EQ_INT(rsbus__slots_parse(m, rep, &asked), 0);
    CHECK_EQ_INT(m->nnodes, 3);
    CHECK_EQ_STR(m->node[m->slot[0] - 1].host, "redis-a.example");
    CHECK_EQ_INT(m->node[m->slot[99] - 1].port, 7001);
    CHECK_EQ_STR(m->node[m->slot[150] - 1].host, "::1");
    CHECK_EQ_STR(m->node[m->slot[5000] - 1].host, "10.0.0.9");
    CHECK_EQ_INT(m->node[m->slot[5000] - 1].port, 7003);
    CHECK_EQ_INT(m->node[m->slot[16380] - 1].port, 7001);
    freeReplyObject(rep);
    /* bad shapes leave the map as it was */
    {
        static const char *const bad[] = {
            "+OK\r\n",
            "*1\r\n*2\r\n:0\r\n:5\r\n",                                              /* no master */
            "*1\r\n*3\r\n:10\r\n:5\r\n*2\r\n$1\r\nh\r\n:1\r\n",                      /* end before start */
            "*1\r\n*3\r\n:0\r\n:16384\r\n*2\r\n$1\r\nh\r\n:1\r\n",                   /* slot out of range */
            "*1\r\n*3\r\n:0\r\n:5\r\n*2\r\n$1\r\nh\r\n:70000\r\n",                   /* port out of range */
            "*1\r\n*3\r\n:0\r\n:5\r\n*2\r\n$3\r\na b\r\n:1\r\n",                     /* a space in the host */
            "*1\r\n*3\r\n$1\r\nx\r\n:5\r\n*2\r\n$1\r\nh\r\n:1\r\n" };                /* not a number */
        size_t i;
        for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            rep = resp(bad[i]);
            REQUIRE(rep);
            CHECK_EQ_INT(rsbus__slots_parse(m, rep, &asked), -1);
            freeReplyObject(rep);
        }
        CHECK_EQ_INT(m->node[m->slot[5000] - 1].port, 7003);
    }
    free(m);
}

TEST(redirects_are_parsed) {
    static const char *const moved = "MOVED 3999 127.0.0.1:6381";
    rsbus__addr here, to;
    int slot = -1;
    snprintf(here.host, sizeof here.host, "10.1.1.1");
    here.port = 1;
    CHECK_EQ_INT(rsbus__redirect_parse(moved, strlen(moved), &slot, &to, &here), 0);
    CHECK_EQ_INT(slot, 3999);
    CHECK_EQ_STR(to.host, "127.0.0.1");
    CHECK_EQ_INT(to.port, 6381);
    CHECK_EQ_INT(rsbus__redirect_parse("ASK 1 ::1:7000", 14, &slot, &to, &here), 0);
    CHECK_EQ_STR(to.host, "::1");
    CHECK_EQ_INT(to.port, 7000);
    CHECK_EQ_INT(rsbus__redirect_parse("MOVED 16383 :6380", 17, &slot, &to, &here), 0);   /* host unknown: here */
    CHECK_EQ_STR(to.host, "10.1.1.1");
    CHECK_EQ_INT(slot, 16383);
    CHECK_EQ_INT(rsbus__redirect_parse("MOVED 7 redis-b.example:7002", 28, &slot, &to, &here), 0);
    CHECK_EQ_STR(to.host, "redis-b.example");
    CHECK_EQ_INT(rsbus__redirect_parse("MOVED 16384 h:1", 15, &slot, &to, &here), -1);
    CHECK_EQ_INT(rsbus__redirect_parse("MOVED 1 h:0", 11, &slot, &to, &here), -1);
    CHECK_EQ_INT(rsbus__redirect_parse("MOVED 1 h", 9, &slot, &to, &here), -1);
    CHECK_EQ_INT(rsbus__redirect_parse("MOVED x h:1", 11, &slot, &to, &here), -1);
    CHECK_EQ_INT(rsbus__redirect_parse("MOVED", 5, &slot, &to, &here), -1);
    CHECK_EQ_INT(rsbus__redirect_parse("MOVED 1 h:99999999999999999999", 30, &slot, &to, &here), -1);
}

/* ---- on the cluster ---- */
static rsbus_config ccfg(const char *stream, const char *group, const char *consumer) {
    rsbus_config c;
    memset(&c, 0, sizeof c);
    c.url = cl.url;
    c.stream = stream;
    c.group = group;
    c.consumer = consumer;
    c.group_start = "0";
    c.retry_backoff_ms = 50;
    c.claim_interval_ms = 100;
    c.claim_idle_ms = 1000;
    c.block_ms = 100;
    c.connect_timeout_ms = 1000;
    c.io_timeout_ms = 2000;
    c.max_retries = 1;
    c.log = capture_log;
    c.log_level = RSBUS_LOG_DEBUG;
    return c;
}
/* A raw command on the master that serves a key. */
static long long node_int(const char *key, const char *fmt, const char *arg) {
    int m = test_cluster_master_of(&cl, rsbus_key_slot(key, strlen(key)));
    redisContext *c;
    redisReply *rep;
    long long v = -1;
    if (m < 0 || !(c = test_redis_connect(&cl.node[m]))) return -1;
    rep = (redisReply *)redisCommand(c, fmt, arg);
    if (rep && rep->type == REDIS_REPLY_INTEGER) v = rep->integer;
    if (rep) freeReplyObject(rep);
    redisFree(c);
    return v;
}

static int dead_every = 0;
static int handled;
static rsbus_verdict count_handler(const rsbus_msg *m, void *user) {
    (void)user;
    handled++;
    if (dead_every && handled % dead_every == 0) {
        snprintf(m->reason, RSBUS_REASON_SIZE, "refused by the test");
        return RSBUS_DEAD;
    }
    return RSBUS_ACK;
}

TEST(publish_consume_and_dead_letter_on_a_cluster) {
    rsbus_config pc = ccfg("orders", "g", "c1");
    rsbus *pub, *con;
    rsbus_event ev;
    rsbus_dlq_page page;
    char sid[RSBUS_ID_SIZE], ids[10][RSBUS_ID_SIZE];
    int i;
    REQUIRE(cluster_up);
    pc.publish_only = 1;
    REQUIRE((pub = open_cfg(&pc)) != NULL);
    {
        rsbus_config cc = ccfg("orders", "g", "c1");
        REQUIRE((con = open_cfg(&cc)) != NULL);
    }
    memset(&ev, 0, sizeof ev);
    ev.type = "order.created";
    ev.data = "{\"n\":1}";
    for (i = 0; i < 40; i++) CHECK_EQ_INT(rsbus_publish(pub, &ev, sid), RSBUS_OK);
    {
        rsbus_event evs[10];
        for (i = 0; i < 10; i++) evs[i] = ev;
        CHECK_EQ_INT(rsbus_publish_batch(pub, evs, 10, ids), RSBUS_OK);   /* a MULTI/EXEC */
        CHECK(ids[9][0] != 0);
    }
    CHECK_EQ_INT(node_int("orders", "XLEN %s", "orders"), 50);
    dead_every = 10;
    handled = 0;
    REQUIRE(rsbus_subscribe(con, "*", count_handler, NULL) > 0);
    WAIT_UNTIL(rsbus_poll(con, 100) < 0 || handled >= 50, 10000);
    CHECK_EQ_INT(handled, 50);
    CHECK_EQ_INT(node_int("orders", "XLEN %s", "{orders}:dlq"), 5);   /* the DLQ move: one MULTI/EXEC, one slot */
    CHECK_EQ_INT(rsbus_dlq_list(con, NULL, 10, &page), RSBUS_OK);
    CHECK_EQ_INT(page.count, 5);
    if (page.count > 0) {
        char nid[RSBUS_ID_SIZE];
        CHECK_EQ_INT(rsbus_dlq_replay(con, page.entries[0].dlq_id, nid), RSBUS_OK);
        CHECK_EQ_INT(node_int("orders", "XLEN %s", "{orders}:dlq"), 4);
    }
    rsbus_dlq_page_free(con, &page);
    {
        rsbus_stream_info si;
        CHECK_EQ_INT(rsbus_stream_info_get(con, &si), RSBUS_OK);
        CHECK_EQ_INT(si.length, 51);
        CHECK_EQ_INT(si.dlq_length, 4);
    }
    dead_every = 0;
    rsbus_close(pub);
    rsbus_close(con);
}

/* The id of a node (CLUSTER MYID). */
static void node_id(int i, char *out, size_t size) {
    redisContext *c = test_redis_connect(&cl.node[i]);
    redisReply *rep = c ? (redisReply *)redisCommand(c, "CLUSTER MYID") : NULL;
    snprintf(out, size, "%s", rep && rep->type == REDIS_REPLY_STRING ? rep->str : "?");
    if (rep) freeReplyObject(rep);
    if (c) redisFree(c);
}
static int node_ok(int i, const char *fmt, ...) {
    redisContext *c = test_redis_connect(&cl.node[i]);
    redisReply *rep;
    va_list ap;
    int ok;
    if (!c) return 0;
    va_start(ap, fmt);
    rep = (redisReply *)redisvCommand(c, fmt, ap);
    va_end(ap);
    ok = rep && rep->type != REDIS_REPLY_ERROR;
    if (!ok) fprintf(stderr, "  node %d: %s\n", i, rep ? rep->str : "no reply");
    if (rep) freeReplyObject(rep);
    redisFree(c);
    return ok;
}

TEST(a_slot_moved_under_a_bus_is_followed) {
    const char *stream = "moving";
    int slot = rsbus_key_slot(stream, strlen(stream)), from, to, i;
    char idf[64], idt[64];
    rsbus_config pc = ccfg(stream, "g", "c1");
    rsbus *bus;
    rsbus_event ev, evs[5];
    char ids[5][RSBUS_ID_SIZE];
    REQUIRE(cluster_up);
    REQUIRE((from = test_cluster_master_of(&cl, slot)) >= 0);
    for (to = 0; to < cl.n; to++) {   /* another master */
        if (to == from || cl.dead[to]) continue;
        if (test_cluster_master_of(&cl, 0) == to || test_cluster_master_of(&cl, 16383) == to ||
            test_cluster_master_of(&cl, 8000) == to) break;
    }
    REQUIRE(to < cl.n);
    REQUIRE((bus = open_cfg(&pc)) != NULL);
    memset(&ev, 0, sizeof ev);
    ev.type = "t";
    CHECK_EQ_INT(rsbus_publish(bus, &ev, NULL), RSBUS_OK);
    node_id(from, idf, sizeof idf);
    node_id(to, idt, sizeof idt);
    /* the slot migrates: the stream (and its DLQ) move to 'to'; 'from' answers ASK for them now */
    REQUIRE(node_ok(to, "CLUSTER SETSLOT %d IMPORTING %s", slot, idf));
    REQUIRE(node_ok(from, "CLUSTER SETSLOT %d MIGRATING %s", slot, idt));
    REQUIRE(node_ok(from, "MIGRATE 127.0.0.1 %d %s 0 5000 KEYS %s", cl.node[to].port, "", stream));
    loglen = 0; logbuf[0] = 0;
    CHECK_EQ_INT(rsbus_publish(bus, &ev, NULL), RSBUS_OK);                 /* ASK, then ASKING + XADD */
    for (i = 0; i < 5; i++) evs[i] = ev;
    CHECK_EQ_INT(rsbus_publish_batch(bus, evs, 5, ids), RSBUS_OK);        /* a MULTI/EXEC sent again whole */
    CHECK_CONTAINS(logbuf, "ASK");
    CHECK_EQ_INT(rsbus_poll(bus, 0), 7);                                   /* XREADGROUP and XACK follow too */
    /* the migration ends: 'from' answers MOVED */
    for (i = 0; i < cl.n; i++)
        if (!cl.dead[i] && test_cluster_is_master(&cl, i)) CHECK(node_ok(i, "CLUSTER SETSLOT %d NODE %s", slot, idt));
    loglen = 0; logbuf[0] = 0;
    CHECK_EQ_INT(rsbus_publish(bus, &ev, NULL), RSBUS_OK);
    CHECK_EQ_INT(rsbus_poll(bus, 0), 1);
    {
        redisContext *c = test_redis_connect(&cl.node[to]);
        redisReply *rep = c ? (redisReply *)redisCommand(c, "XLEN %s", stream) : NULL;
        CHECK(rep && rep->type == REDIS_REPLY_INTEGER && rep->integer == 8);
        if (rep) freeReplyObject(rep);
        if (c) redisFree(c);
    }
    CHECK_EQ_INT(rsbus_publish(bus, &ev, NULL), RSBUS_OK);                 /* straight to the new master now */
    CHECK_NOT_CONTAINS(logbuf, "MOVED 0");   /* no error text reached a caller; the log may name the redirect */
    rsbus_close(bus);
}

/* ---- partitions on the cluster ---- */
typedef struct pseen { int n, bad; char key[2000][8]; int seq[2000], part[2000]; } pseen;
static pseen ps;
static rsbus_verdict precord(const rsbus_msg *m, void *user) {
    rsbus_jval v;
    int64_t seq = -1;
    char want[64];
    (void)user;
    if (ps.n >= 2000) return RSBUS_ACK;
    snprintf(want, sizeof want, "pc:p%d", m->partition);
    if (!m->key || strcmp(m->stream, want) != 0) ps.bad++;
    if (rsbus_json_get(m->data, m->data_len, "seq", &v) == RSBUS_OK) rsbus_jval_int(&v, &seq);
    snprintf(ps.key[ps.n], sizeof ps.key[0], "%s", m->key ? m->key : "?");
    ps.seq[ps.n] = (int)seq;
    ps.part[ps.n] = m->partition;
    ps.n++;
    if (seq % 100 == 7) { snprintf(m->reason, RSBUS_REASON_SIZE, "seq %d refused", (int)seq); return RSBUS_DEAD; }
    return RSBUS_ACK;
}
static int count_cb(const rsbus_msg *m, void *user) { (void)m; (*(int *)user)++; return 0; }

TEST(partitions_spread_over_the_masters) {
    rsbus_config ca = ccfg("pc", "g", "c1"), cb = ccfg("pc", "g", "c2");
    rsbus *a, *b;
    rsbus_partition_info info[8];
    size_t count = 0, i;
    int k, seq = 0, nodes = 0, last[40], ok = 1, replayed = 0;
    long long sum = 0;
    rsbus_dlq_page page;
    REQUIRE(cluster_up);
    ca.partitions = cb.partitions = 8;
    ca.max_retries = cb.max_retries = 0;
    REQUIRE((a = open_cfg(&ca)) != NULL);
    REQUIRE((b = open_cfg(&cb)) != NULL);
    memset(&ps, 0, sizeof ps);
    REQUIRE(rsbus_subscribe(a, "*", precord, NULL) > 0);
    REQUIRE(rsbus_subscribe(b, "*", precord, NULL) > 0);
    while (seq < 800) {   /* batches of 20 (a MULTI/EXEC per partition, on several masters) and single events */
        rsbus_event evs[20];
        char keys[20][8], data[20][32];
        int nb = seq % 200 < 100 ? 20 : 1;
        for (k = 0; k < nb; k++, seq++) {
            memset(&evs[k], 0, sizeof evs[k]);
            snprintf(keys[k], sizeof keys[k], "k%d", seq % 40);
            snprintf(data[k], sizeof data[k], "{\"seq\":%d}", seq);
            evs[k].type = "t"; evs[k].key = keys[k]; evs[k].data = data[k];
        }
        if (nb == 1) CHECK_EQ_INT(rsbus_publish(a, &evs[0], NULL), RSBUS_OK);
        else CHECK_EQ_INT(rsbus_publish_batch(a, evs, 20, NULL), RSBUS_OK);
    }
    CHECK_EQ_INT(rsbus_partitions_list(a, info, 8, &count), RSBUS_OK);
    CHECK_EQ_INT(count, 8);
    for (i = 0; i < count && i < 8; i++) {
        size_t j;
        int seen_before = 0;
        CHECK_EQ_INT(info[i].slot, rsbus_key_slot(info[i].key, 0));
        CHECK_EQ_INT(info[i].length, node_int(info[i].key, "XLEN %s", info[i].key));
        for (j = 0; j < i; j++) seen_before |= strcmp(info[j].node, info[i].node) == 0;
        nodes += !seen_before;
        sum += info[i].length;
    }
    CHECK_EQ_INT(sum, 800);
    CHECK_EQ_INT(nodes, 3);   /* pc:p0..p7 hash to slots of all three masters */
    {
        int64_t dl = test_now_ms() + 20000;
        while (ps.n < 800 && test_now_ms() < dl) {
            CHECK(rsbus_poll(a, 20) >= 0);
            CHECK(rsbus_poll(b, 20) >= 0);
        }
    }
    CHECK_EQ_INT(ps.n, 800);
    CHECK_EQ_INT(ps.bad, 0);
    for (k = 0; k < 40; k++) last[k] = -1;
    for (k = 0; k < ps.n; k++) {   /* per key: in order, once */
        int key = atoi(ps.key[k] + 1);
        if (key < 0 || key >= 40 || ps.seq[k] <= last[key]) ok = 0;
        else last[key] = ps.seq[k];
    }
    CHECK(ok);
    {   /* dead letters: merged, p<i>/ ids, replayed into their own partition */
        rsbus_stream_info si;
        CHECK_EQ_INT(rsbus_stream_info_get(a, &si), RSBUS_OK);
        CHECK_EQ_INT(si.length, 800);
        CHECK_EQ_INT(si.dlq_length, 8);
        CHECK_EQ_INT(rsbus_dlq_list(a, NULL, 100, &page), RSBUS_OK);
        CHECK_EQ_INT(page.count, 8);
        for (i = 0; i < page.count; i++) CHECK(page.entries[i].dlq_id[0] == 'p' && strchr(page.entries[i].dlq_id, '/'));
        if (page.count) {
            char nid[RSBUS_ID_SIZE], key[32];
            int pi = atoi(page.entries[0].dlq_id + 1);
            snprintf(key, sizeof key, "pc:p%d", pi);
            sum = node_int(key, "XLEN %s", key);
            CHECK_EQ_INT(rsbus_dlq_replay(a, page.entries[0].dlq_id, nid), RSBUS_OK);
            CHECK_EQ_INT(node_int(key, "XLEN %s", key), sum + 1);
        }
        rsbus_dlq_page_free(a, &page);
    }
    CHECK_EQ_INT(rsbus_replay_range(a, "-", "+", count_cb, &replayed), RSBUS_OK);   /* no CROSSSLOT */
    CHECK_EQ_INT(replayed, 801);
    {
        char last_id[RSBUS_ID_SIZE] = "0";
        int tailed = 0, got;
        got = rsbus_tail(a, last_id, 200, count_cb, &tailed);
        CHECK(got > 0);
        CHECK_EQ_INT(got, tailed);
    }
    {   /* the count is pinned */
        rsbus_config c3 = ccfg("pc", "g", "c3");
        rsbus_error err;
        c3.partitions = 3;
        CHECK(rsbus_open(&c3, &err) == NULL);
        CHECK_EQ_INT(err.code, RSBUS_E_ARG);
    }
    rsbus_close(a);
    rsbus_close(b);
}

/* ---- load: a publisher and two consumers in child processes ---- */
typedef struct load_arg { const char *stream, *name; char *log_path; const char *err_path; int count, partitions, wait; } load_arg;
static volatile sig_atomic_t child_stop;
static void on_term(int sig) { (void)sig; child_stop = 1; }
static rsbus_verdict log_id(const rsbus_msg *m, void *user) {
    if (m->id) log_line((const char *)user, m->id);
    return RSBUS_ACK;
}
static void consumer_main(void *p) {
    load_arg *a = (load_arg *)p;
    rsbus_config c = ccfg(a->stream, "workers", a->name);
    struct sigaction sa;
    c.partitions = a->partitions;
    rsbus *bus;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_term;
    sigaction(SIGTERM, &sa, NULL);
    c.log = NULL;
    c.io_timeout_ms = 1000;
    if (!(bus = open_cfg(&c))) _exit(2);
    rsbus_subscribe(bus, "*", log_id, a->log_path);
    if (rsbus_run(bus, &child_stop) != RSBUS_OK) _exit(3);
    rsbus_close(bus);
    _exit(0);
}
static void publisher_main(void *p) {
    load_arg *a = (load_arg *)p;
    rsbus_config c = ccfg(a->stream, "workers", "pub");
    rsbus *bus;
    int i, down = 0;
    char up_path[320];
    snprintf(up_path, sizeof up_path, "%s.up", a->err_path);
    c.partitions = a->partitions;
    c.log = NULL;
    c.publish_only = 1;
    c.io_timeout_ms = 1000;
    if (a->wait) { c.publish_wait_replicas = 1; c.publish_wait_ms = 500; }   /* RSBUS_OK: the replica has it */
    if (!(bus = open_cfg(&c))) _exit(2);
    for (i = 0; i < a->count; i++) {
        char id[32], why[300];
        rsbus_event ev;
        rsbus_result r;
        memset(&ev, 0, sizeof ev);
        ev.type = "load";
        snprintf(id, sizeof id, "e%d", i);
        ev.id = id;
        r = rsbus_publish(bus, &ev, NULL);
        if (r == RSBUS_OK || r == RSBUS_E_REPLICAS) {   /* written (E_REPLICAS: not confirmed by a replica) */
            char line[64];
            if (down) {   /* the first write after an outage: when, and which event (outage_ms reads it) */
                snprintf(line, sizeof line, "%lld %s", (long long)test_now_ms(), id);
                log_line(up_path, line);
                down = 0;
            }
        } else {
            down = 1;
        }
        if (r == RSBUS_OK) log_line(a->log_path, id);
        else {
            snprintf(why, sizeof why, "%s %s", rsbus_result_str(r), rsbus_errmsg(bus));
            log_line(a->err_path, why);
            test_sleep_ms(20);
        }
        if (i % 50 == 0) test_sleep_ms(2);
    }
    rsbus_close(bus);
    _exit(0);
}
/* A set of event ids (e<N>): a bitmap by N. */
#define MAX_IDS 100000
typedef struct idset { unsigned char has[MAX_IDS]; int count; } idset;
static void set_add(idset *s, const char *id) {
    long v;
    char *end;
    if (id[0] != 'e') return;
    v = strtol(id + 1, &end, 10);
    if (*end || v < 0 || v >= MAX_IDS || s->has[v]) return;
    s->has[v] = 1;
    s->count++;
}
static void set_load(idset *s, const char *path) {
    FILE *f = fopen(path, "r");
    char buf[256];
    memset(s, 0, sizeof *s);
    if (!f) return;
    while (fgets(buf, sizeof buf, f)) { buf[strcspn(buf, "\n")] = 0; set_add(s, buf); }
    fclose(f);
}
/* The event ids in a stream (its partitions "<stream>:p<i>" when partitions > 1), each read from the
   master that serves it. */
static void set_of_stream(idset *s, const char *stream, int partitions) {
    int pi;
    memset(s, 0, sizeof *s);
    for (pi = 0; pi < (partitions > 1 ? partitions : 1); pi++) {
        char key[128];
        int m;
        redisContext *c;
        redisReply *rep;
        size_t i, k;
        if (partitions > 1) snprintf(key, sizeof key, "%s:p%d", stream, pi);
        else snprintf(key, sizeof key, "%s", stream);
        m = test_cluster_master_of(&cl, rsbus_key_slot(key, 0));
        c = m >= 0 ? test_redis_connect(&cl.node[m]) : NULL;
        rep = c ? (redisReply *)redisCommand(c, "XRANGE %s - +", key) : NULL;
        for (i = 0; rep && rep->type == REDIS_REPLY_ARRAY && i < rep->elements; i++) {
            const redisReply *f = rep->element[i]->element[1];
            for (k = 0; k + 1 < f->elements; k += 2)
                if (strcmp(f->element[k]->str, "id") == 0) set_add(s, f->element[k + 1]->str);
        }
        if (rep) freeReplyObject(rep);
        if (c) redisFree(c);
    }
}
/* How many ids of a (and of b too, when b is given) are not in h. */
static int missing_of(const idset *a, const idset *b, const idset *h) {
    int i, n = 0;
    for (i = 0; i < MAX_IDS; i++) if (a->has[i] && (!b || b->has[i]) && !h->has[i]) n++;
    return n;
}
static idset s_pub, s_hand, s_stream;
static int missing(const char *published, const char *handled_path) {
    set_load(&s_pub, published);
    set_load(&s_hand, handled_path);
    return missing_of(&s_pub, NULL, &s_hand);
}
static void paths(const char *tag, char *pub, char *hand, char *err, size_t size) {
    snprintf(pub, size, "%s/%s.pub", cl.node[0].dir, tag); unlink(pub);
    snprintf(hand, size, "%s/%s.handled", cl.node[0].dir, tag); unlink(hand);
    snprintf(err, size, "%s/%s.err", cl.node[0].dir, tag); unlink(err);
    {
        char up[320];
        snprintf(up, sizeof up, "%s.up", err);
        unlink(up);
    }
}
/* What a publisher and the consumers saw of an outage that began at t0 (monotonic ms): the first write
   after it (tag.err.up, written by the publisher), and when that event was handled (the handled log).
   Waits up to 30 s; -1 where it did not happen. */
static void outage_ms(const char *errp, const char *handp, int64_t t0, long long *pub_ms, long long *con_ms) {
    char up[320], line[128], id[48] = "";
    int64_t dl = test_now_ms() + 30000;
    *pub_ms = *con_ms = -1;
    snprintf(up, sizeof up, "%s.up", errp);
    while (test_now_ms() < dl && *con_ms < 0) {
        if (*pub_ms < 0) {
            FILE *f = fopen(up, "r");
            long long t;
            while (f && fgets(line, sizeof line, f))
                if (sscanf(line, "%lld %47s", &t, id) == 2 && t >= t0) { *pub_ms = t - t0; break; }
            if (f) fclose(f);
        }
        if (*pub_ms >= 0 && count_lines(handp, id) > 0) *con_ms = test_now_ms() - t0;
        test_sleep_ms(10);
    }
}
static int long_run(void) { const char *v = getenv("RSBUS_CLUSTER_LONG"); return v && *v == '1'; }

TEST(reshard_under_load_loses_nothing) {
    char pubp[300], handp[300], errp[300];
    const char *stream = "resharded";
    int slot = rsbus_key_slot(stream, strlen(stream)), from, to, n = long_run() ? 20000 : 3000, miss = -1;
    load_arg pa, ca, cb;
    pid_t p, c1, c2;
    REQUIRE(cluster_up);
    paths("reshard", pubp, handp, errp, sizeof pubp);
    REQUIRE((from = test_cluster_master_of(&cl, slot)) >= 0);
    to = test_cluster_master_of(&cl, (slot + 8192) % 16384);
    if (to == from) to = test_cluster_master_of(&cl, (slot + 5000) % 16384);
    REQUIRE(to >= 0 && to != from);
    memset(&pa, 0, sizeof pa);
    pa.stream = stream; pa.log_path = pubp; pa.err_path = errp; pa.count = n;
    ca = pa; ca.name = "w1"; ca.log_path = handp;
    cb = ca; cb.name = "w2";
    c1 = spawn(consumer_main, &ca);
    c2 = spawn(consumer_main, &cb);
    p = spawn(publisher_main, &pa);
    WAIT_UNTIL(count_lines(handp, NULL) >= 100, 20000);
    /* every slot of the stream's master goes to another master, under the running buses */
    CHECK_EQ_INT(test_cluster_reshard(&cl, from, to, test_cluster_slots_of(&cl, from)), 0);
    CHECK_EQ_INT(test_cluster_master_of(&cl, slot), to);
    /* and as many back (a master without slots has no vote in a failover: the next test needs three) */
    CHECK_EQ_INT(test_cluster_reshard(&cl, to, from, test_cluster_slots_of(&cl, to) / 2), 0);
    CHECK_EQ_INT(reap(p, 120000), 0);
    WAIT_UNTIL((miss = missing(pubp, handp)) == 0, 30000);
    printf("  reshard: %d of %d published, %d publish errors, %d handled lines, %d not handled\n",
           count_lines(pubp, NULL), n, count_lines(errp, NULL), count_lines(handp, NULL), miss);
    CHECK_EQ_INT(count_lines(errp, NULL), 0);        /* no error reached the publisher */
    CHECK_EQ_INT(count_lines(pubp, NULL), n);
    kill(c1, SIGTERM); kill(c2, SIGTERM);
    CHECK_EQ_INT(reap(c1, 10000), 0);                 /* rsbus_run returned RSBUS_OK: no error stopped it */
    CHECK_EQ_INT(reap(c2, 10000), 0);
    CHECK_EQ_INT(node_int(stream, "XLEN %s", stream), n);
    {
        int m = test_cluster_master_of(&cl, slot);
        redisContext *c = m >= 0 ? test_redis_connect(&cl.node[m]) : NULL;
        redisReply *rep = c ? (redisReply *)redisCommand(c, "XPENDING %s workers", stream) : NULL;
        CHECK(rep && rep->type == REDIS_REPLY_ARRAY && rep->element[0]->integer == 0);   /* the PEL moved intact */
        if (rep) freeReplyObject(rep);
        if (c) redisFree(c);
    }
}

/* (a stream in 8 partitions: the killed master held some of them, the others kept being read) */
TEST(a_master_killed_under_load_is_survived) {
    char pubp[300], handp[300], errp[300];
    const char *stream = "failover";
    int slot = rsbus_key_slot(stream, strlen(stream)), m, n = long_run() ? 20000 : 4000, miss = -1;
    int64_t t0;
    load_arg pa, ca, cb;
    pid_t p, c1, c2;
    REQUIRE(cluster_up);
    paths("failover", pubp, handp, errp, sizeof pubp);
    REQUIRE((m = test_cluster_master_of(&cl, slot)) >= 0);
    memset(&pa, 0, sizeof pa);
    pa.stream = stream; pa.log_path = pubp; pa.err_path = errp; pa.count = n; pa.partitions = 8; pa.wait = 1;
    ca = pa; ca.name = "w1"; ca.log_path = handp;
    cb = ca; cb.name = "w2";
    c1 = spawn(consumer_main, &ca);
    c2 = spawn(consumer_main, &cb);
    p = spawn(publisher_main, &pa);
    WAIT_UNTIL(count_lines(handp, NULL) >= 300, 20000);
    test_cluster_kill(&cl, m);
    t0 = test_now_ms();
    {
        long long pub_ms, con_ms;
        outage_ms(errp, handp, t0, &pub_ms, &con_ms);
        printf("  failover: outage from the kill: first write %lld ms, that event handled %lld ms\n", pub_ms, con_ms);
        CHECK(pub_ms >= 0 && con_ms >= 0);
    }
    CHECK_EQ_INT(test_cluster_wait_ok(&cl, 30000), 0);     /* a replica took over */
    printf("  failover: cluster ok again %lld ms after the kill\n", (long long)(test_now_ms() - t0));
    /* the dead master comes back as the new master's replica: until it syncs, publishes answer
       RSBUS_E_REPLICAS (WAIT 1 finds no replica) */
    CHECK_EQ_INT(test_redis_restart(&cl.node[m]), 0);
    cl.dead[m] = 0;
    CHECK_EQ_INT(test_cluster_wait_ok(&cl, 30000), 0);
    CHECK_EQ_INT(reap(p, 180000), 0);
    /* publishes returned RSBUS_OK only once WAIT 1 confirmed them: none may be missing after the failover
       (without WAIT, a write the dead master had not replicated could be); every one is handled */
    set_of_stream(&s_stream, stream, 8);
    set_load(&s_pub, pubp);
    WAIT_UNTIL((set_load(&s_hand, handp), (miss = missing_of(&s_pub, &s_stream, &s_hand)) == 0), 30000);
    printf("  failover: %d published OK (WAIT 1), %d publish errors or RSBUS_E_REPLICAS (during the outage), %d of the "
           "OK ones not in the stream after the failover, %d in it but not handled\n", s_pub.count,
           count_lines(errp, NULL), missing_of(&s_pub, NULL, &s_stream), miss);
    CHECK(s_pub.count > n / 2);
    CHECK_EQ_INT(missing_of(&s_pub, NULL, &s_stream), 0);
    kill(c1, SIGTERM); kill(c2, SIGTERM);
    CHECK_EQ_INT(reap(c1, 10000), 0);                       /* rsbus_run kept going through the failover */
    CHECK_EQ_INT(reap(c2, 10000), 0);
}

/* A master stops answering (SIGSTOP) until a replica takes its place, while a bus publishes to a stream
   another master serves: with cluster-require-full-coverage no every publish succeeds; with yes the
   cluster refuses all slots until the promotion, and the failures are counted (printed). */
static int outage_failures(const char *stream, int full_coverage) {
    int slot = rsbus_key_slot(stream, strlen(stream)), a, b, i, fails = 0, published = 0;
    rsbus_config c = ccfg(stream, "g", "c1");
    rsbus *bus;
    rsbus_event ev;
    int64_t until;
    if ((a = test_cluster_master_of(&cl, slot)) < 0) return -1;
    for (b = 0; b < cl.n; b++)
        if (b != a && !cl.dead[b] && test_cluster_is_master(&cl, b) && test_cluster_slots_of(&cl, b) > 0) break;
    if (b == cl.n) return -1;
    for (i = 0; i < cl.n; i++)
        if (!cl.dead[i]) node_ok(i, "CONFIG SET cluster-require-full-coverage %s", full_coverage ? "yes" : "no");
    c.publish_only = 1;
    c.log = NULL;
    c.io_timeout_ms = 500;
    if (!(bus = open_cfg(&c))) return -1;
    memset(&ev, 0, sizeof ev);
    ev.type = "t";
    kill(cl.node[b].pid, SIGSTOP);
    cl.dead[b] = 1;   /* skipped by the helpers while it does not answer */
    until = test_now_ms() + 30000;
    while (test_now_ms() < until) {   /* until a replica has taken over b's slots */
        rsbus_result r = rsbus_publish(bus, &ev, NULL);
        published++;
        if (r != RSBUS_OK) fails++;
        if (published % 50 == 0 && test_cluster_wait_ok(&cl, 1) == 0) break;
        test_sleep_ms(10);
    }
    kill(cl.node[b].pid, SIGCONT);
    cl.dead[b] = 0;
    printf("  full coverage %s: %d of %d publishes failed while a master was down\n", full_coverage ? "yes" : "no",
           fails, published);
    rsbus_close(bus);
    if (test_cluster_wait_ok(&cl, 30000) != 0) return -1;   /* the stopped node is back, as a replica */
    return fails;
}
TEST(full_coverage_off_keeps_other_masters_serving) {
    REQUIRE(cluster_up);
    CHECK_EQ_INT(outage_failures("coverage", 0), 0);
    CHECK(outage_failures("coverage", 1) >= 0);
}

int main(void) {
    RUN(cluster_slots_reply_is_read);
    RUN(redirects_are_parsed);
    cluster_up = test_cluster_start(&cl, 3, 1) == 0;
    if (!cluster_up) fprintf(stderr, "test_cluster: could not start a cluster (redis-server, redis-cli)\n");
    RUN(publish_consume_and_dead_letter_on_a_cluster);
    RUN(a_slot_moved_under_a_bus_is_followed);
    RUN(partitions_spread_over_the_masters);
    RUN(reshard_under_load_loses_nothing);
    RUN(full_coverage_off_keeps_other_masters_serving);
    RUN(a_master_killed_under_load_is_survived);
    test_cluster_stop(&cl);
    return test_summary("test_cluster");
}
