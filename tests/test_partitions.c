/* test_partitions.c - the cluster-safe key layout and partitioned streams, against a real redis-server
   (standalone; a second one with cluster-enabled answers CLUSTER KEYSLOT): rsbus_key_slot against the
   CRC16 test vector and Redis's own answers, {K}:dlq / {K}:dedupe / {K}:meta, names with braces refused,
   the RENAME that moves a 0.1 DLQ; partitions 3 and 8: routing and per-key order with two consumers,
   every event handled once, the pinned count, a batch that fails in one partition for real, DLQ ids
   p<i>/<ms-seq> merged oldest first, replay into the same partition, purge of all, numbers summed and
   checked against each partition's own XLEN/XINFO/XPENDING, health naming the partition, metrics
   labels, claims after a consumer process is SIGKILLed, rsbus_run, tenants, dedupe, publish_fields and
   the spool on a partitioned stream. */
#define _POSIX_C_SOURCE 200809L
#define RSBUS_IMPLEMENTATION
#include "../rsbus.h"
#include "test.h"
#include "redis_server.h"
#include "bus_util.h"

#ifdef RSBUS_NO_CLUSTER
/* Built with -DRSBUS_NO_CLUSTER (make test's switch matrix): partitions are refused, naming the switch;
   the key layout and the slot function stay. */
TEST(partitions_compiled_out) {
    rsbus_config c = test_cfg("nc", "g", "c");
    rsbus_error err;
    rsbus *bus;
    c.partitions = 3;
    CHECK(rsbus_open(&c, &err) == NULL);
    CHECK_EQ_INT(err.code, RSBUS_E_ARG);
    CHECK_EQ_STR(err.msg, "rsbus_config.partitions: partitions are compiled out by RSBUS_NO_CLUSTER");
    c.partitions = 1;
    bus = open_cfg(&c);
    REQUIRE(bus != NULL);
    CHECK_EQ_INT(rsbus_key_slot("123456789", 0), 0x31C3 % 16384);
    rsbus_close(bus);
    c.url = "redis+cluster://127.0.0.1:7000,127.0.0.1:7001";   /* refused before anything is sent */
    CHECK(rsbus_open(&c, &err) == NULL);
    CHECK_EQ_INT(err.code, RSBUS_E_ARG);
    CHECK_CONTAINS(err.msg, "compiled out by RSBUS_NO_CLUSTER");
    c.url = "redis+sentinel://127.0.0.1:26379/mymaster";
    CHECK(rsbus_open(&c, &err) == NULL);
    CHECK_EQ_INT(err.code, RSBUS_E_ARG);
    CHECK_CONTAINS(err.msg, "Sentinel support, compiled out by RSBUS_NO_CLUSTER");
}
int main(void) {
    if (test_redis_start(&srv, NULL) != 0) {
        printf("test_partitions: 0 passed, 1 failed\n");
        return 1;
    }
    RUN(partitions_compiled_out);
    raw_reset();
    test_redis_stop(&srv);
    return test_summary("test_partitions");
}
#else

/* ---- helpers ---- */

static rsbus_config part_cfg(const char *stream, int n, const char *consumer) {
    rsbus_config c = test_cfg(stream, "g", consumer);
    c.partitions = n;
    return c;
}
static int part_of(const char *key, int n) { return rsbus_key_slot(key, 0) % n; }
static long long xlen_part(const char *stream, int i) { return raw_int("XLEN %s:p%d", stream, i); }
static long long dlq_len_part(const char *stream, int i) { return raw_int("XLEN {%s:p%d}:dlq", stream, i); }
/* A field of an XINFO GROUPS entry of a stream's group, -1 when absent or nil. */
static long long part_group_field(const char *stream, const char *group, const char *field) {
    long long v = group_field(stream, group, field);
    return v == -2 ? -1 : v;
}

/* What handlers saw, in the order they ran (one process, so one order). */
#define MAXSEEN 4096
typedef struct seen {
    int n;
    char key[MAXSEEN][16];
    int seq[MAXSEEN], part[MAXSEEN];
    char stream[MAXSEEN][64];
    int nparts;
    int bad_route;               /* an entry whose partition is not its key's */
    int dead;                    /* 1: every handler call returns RSBUS_DEAD */
    int stop_after;              /* rsbus_stop after this many */
    rsbus *bus;
} seen;

static rsbus_verdict record(const rsbus_msg *m, void *user) {
    seen *s = (seen *)user;
    rsbus_jval v;
    int64_t seq = -1;
    if (s->n < MAXSEEN) {
        snprintf(s->key[s->n], sizeof s->key[0], "%s", m->key ? m->key : "");
        if (rsbus_json_get(m->data, m->data_len, "seq", &v) == RSBUS_OK) (void)rsbus_jval_int(&v, &seq);
        s->seq[s->n] = (int)seq;
        s->part[s->n] = m->partition;
        snprintf(s->stream[s->n], sizeof s->stream[0], "%s", m->stream);
        if (m->key && s->nparts > 1 && m->partition != part_of(m->key, s->nparts)) s->bad_route++;
        s->n++;
    }
    if (s->stop_after && s->n >= s->stop_after && s->bus) rsbus_stop(s->bus);
    return s->dead ? RSBUS_DEAD : RSBUS_ACK;
}

/* Publishes n events over nkeys keys ("k0".."k<nkeys-1>"), data {"seq":i}, in batches of 50. */
static int publish_keyed(rsbus *bus, int n, int nkeys) {
    rsbus_event evs[50];
    char keys[50][16], data[50][32];
    int i = 0;
    while (i < n) {
        int k, m = n - i < 50 ? n - i : 50;
        memset(evs, 0, sizeof evs);
        for (k = 0; k < m; k++) {
            snprintf(keys[k], sizeof keys[k], "k%d", (i + k) % nkeys);
            snprintf(data[k], sizeof data[k], "{\"seq\":%d}", i + k);
            evs[k].type = "order.created";
            evs[k].key = keys[k];
            evs[k].data = data[k];
        }
        if (rsbus_publish_batch(bus, evs, (size_t)m, NULL) != RSBUS_OK) return -1;
        i += m;
    }
    return 0;
}

/* ---- key slots ---- */

TEST(key_slot_matches_the_crc16_vector_and_redis) {
    test_redis cs;
    redisContext *c;
    /* the XMODEM check value of "123456789" is 0x31C3; the slot is it mod 16384 */
    static const struct { const char *k; size_t n; } keys[] = {
        { "{}", 2 }, { "{}{x}", 5 }, { "a{b}c", 5 }, { "{a", 2 }, { "a}", 2 }, { "{}x", 3 }, { "x{}", 3 },
        { "{a}{b}", 6 }, { "{{a}}", 5 }, { "}{a}", 4 }, { "orders", 6 }, { "{orders}:dlq", 12 },
        { "{orders}:dedupe:g:x", 19 }, { "orders:dlq", 10 }, { "foo{}{bar}", 10 }, { "", 0 },
        { "\x00\xff{\x01}z", 6 }, { "\x80\x81\x82", 3 }, { "tenant:acme:orders:p7", 21 }, { "a\x00{b}", 6 } };
    size_t i;
    CHECK_EQ_INT(rsbus_key_slot("123456789", 0), 0x31C3 % 16384);
    CHECK_EQ_INT(rsbus_key_slot("123456789", 9), 0x31C3 % 16384);
    CHECK_EQ_INT(rsbus_key_slot("{123456789}abc", 0), 0x31C3 % 16384);   /* the tag is what is hashed */
    CHECK_EQ_INT(rsbus_key_slot("orders", 0), rsbus_key_slot("{orders}:dlq", 0));
    CHECK_EQ_INT(rsbus_key_slot(NULL, 0), 0);
    {   /* the cluster bus port is the port + 10000 unless given: a free one, so a high port cannot break it */
        char conf[128];
        snprintf(conf, sizeof conf, "cluster-enabled yes\ncluster-config-file nodes.conf\ncluster-port %d",
                 test_redis__free_port());
        REQUIRE(test_redis_start(&cs, conf) == 0);
    }
    c = test_redis_connect(&cs);
    REQUIRE(c != NULL);
    for (i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        redisReply *rep = (redisReply *)redisCommand(c, "CLUSTER KEYSLOT %b", keys[i].k, keys[i].n);
        REQUIRE(rep != NULL && rep->type == REDIS_REPLY_INTEGER);
        if (rep->integer != rsbus_key_slot(keys[i].k, keys[i].n) && keys[i].n > 0)
            fprintf(stderr, "  key #%lu: Redis %lld, rsbus %d\n", (unsigned long)i, rep->integer,
                    rsbus_key_slot(keys[i].k, keys[i].n));
        if (keys[i].n > 0) CHECK_EQ_INT(rsbus_key_slot(keys[i].k, keys[i].n), rep->integer);
        else CHECK_EQ_INT(rsbus_key_slot("", 0), rep->integer);   /* len 0: strlen("") */
        freeReplyObject(rep);
    }
    redisFree(c);
    test_redis_stop(&cs);
}

/* ---- key layout ---- */

static rsbus_verdict dead_all(const rsbus_msg *m, void *user) { (void)m; (void)user; return RSBUS_DEAD; }

TEST(key_layout_dlq_dedupe_meta_and_braces_refused) {
    rsbus_config c = test_cfg("kl", "g", "c");
    rsbus_error err;
    rsbus *bus;
    rsbus_event ev;
    static const struct { const char *stream, *group, *consumer, *msg; } bad[] = {
        { "a{b", "g", "c", "rsbus_config.stream: must not contain '{' or '}' (they pick a key's cluster slot)" },
        { "ab}", "g", "c", "rsbus_config.stream: must not contain '{' or '}' (they pick a key's cluster slot)" },
        { "s", "{g}", "c", "rsbus_config.group: must not contain '{' or '}' (they pick a key's cluster slot)" },
        { "s", "g", "c}", "rsbus_config.consumer: must not contain '{' or '}' (they pick a key's cluster slot)" } };
    size_t i;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rsbus_config b = test_cfg(bad[i].stream, bad[i].group, bad[i].consumer);
        CHECK(rsbus_open(&b, &err) == NULL);
        CHECK_EQ_INT(err.code, RSBUS_E_ARG);
        CHECK_EQ_STR(err.msg, bad[i].msg);
    }
    c.dedupe_ttl_ms = 60000;
    bus = open_cfg(&c);
    REQUIRE(bus != NULL);
    memset(&ev, 0, sizeof ev);
    ev.type = "x"; ev.id = "E1";
    CHECK_EQ_INT(rsbus_publish(bus, &ev, NULL), RSBUS_OK);
    ev.type = "y"; ev.id = "E2";
    CHECK_EQ_INT(rsbus_publish(bus, &ev, NULL), RSBUS_OK);
    {
        seen s;
        memset(&s, 0, sizeof s);
        CHECK(rsbus_subscribe(bus, "x", record, &s) > 0);
        CHECK(rsbus_subscribe(bus, "y", dead_all, NULL) > 0);
        WAIT_UNTIL(rsbus_poll(bus, 20) >= 0 && raw_int("XLEN {kl}:dlq") == 1 && pending_of("kl", "g") == 0, 5000);
        CHECK_EQ_INT(s.n, 1);
    }
    CHECK_EQ_INT(raw_int("EXISTS {kl}:dedupe:g:E1"), 1);
    CHECK_EQ_INT(raw_int("EXISTS kl:dlq kl:dedupe:g:E1 {kl}:meta"), 0);   /* no 0.1 keys; no record unpartitioned */
    rsbus_close(bus);
}

TEST(rename_moves_an_old_dlq) {
    /* README: a DLQ kept under 0.1's name K:dlq moves with one RENAME on a standalone server */
    rsbus *bus = open_bus("mv", "g", "c");
    rsbus_dlq_page page;
    redisReply *rep;
    REQUIRE(bus != NULL);
    freeReplyObject(raw("XADD mv:dlq * type old data {} dlq_error e dlq_group g"));
    CHECK_EQ_INT(rsbus_dlq_list(bus, NULL, 10, &page), RSBUS_OK);
    CHECK_EQ_INT(page.count, 0);
    rsbus_dlq_page_free(bus, &page);
    {   /* README's line, with the stream orders as mv, run as it stands */
        static char file[1 << 17];
        char line[256] = "", *p;
        const char *argv[8];
        size_t n, lens[8];
        int argc = 0;
        FILE *f = fopen("README.md", "r");
        REQUIRE(f != NULL);
        n = fread(file, 1, sizeof file - 1, f);
        fclose(f);
        file[n] = 0;
        REQUIRE((p = strstr(file, "redis-cli RENAME ")) != NULL);
        for (p += 10; *p && *p != '\n' && strlen(line) + 8 < sizeof line; p++) {
            if (!strncmp(p, "orders", 6)) { strcat(line, "mv"); p += 5; }
            else strncat(line, p, 1);
        }
        CHECK_EQ_STR(line, "RENAME mv:dlq {mv}:dlq");
        for (p = strtok(line, " "); p && argc < 8; p = strtok(NULL, " ")) { argv[argc] = p; lens[argc] = strlen(p); argc++; }
        REQUIRE(argc == 3);
        rep = (redisReply *)redisCommandArgv(raw_ctx, argc, argv, lens);
    }
    REQUIRE(rep != NULL);
    CHECK(rep->type == REDIS_REPLY_STATUS && !strcmp(rep->str, "OK"));
    freeReplyObject(rep);
    CHECK_EQ_INT(rsbus_dlq_list(bus, NULL, 10, &page), RSBUS_OK);
    CHECK_EQ_INT(page.count, 1);
    if (page.count == 1) CHECK_EQ_STR(page.entries[0].msg.type, "old");
    rsbus_dlq_page_free(bus, &page);
    rsbus_close(bus);
}

/* ---- partitions ---- */

/* Two consumers of one group take turns; every event handled once, in per-key order. */
static void order_and_once(const char *stream, int nparts, int n, int nkeys) {
    rsbus_config c1 = part_cfg(stream, nparts, "c1"), c2 = part_cfg(stream, nparts, "c2");
    rsbus *a = open_cfg(&c1), *b = open_cfg(&c2);
    static seen s;
    int i, k, last[64], count[64], handled_once = 1;
    long long total = 0;
    REQUIRE(a != NULL && b != NULL);
    memset(&s, 0, sizeof s);
    s.nparts = nparts;
    CHECK(rsbus_subscribe(a, "*", record, &s) > 0);
    CHECK(rsbus_subscribe(b, "*", record, &s) > 0);
    REQUIRE(publish_keyed(a, n, nkeys) == 0);
    for (i = 0; i < nparts; i++) {
        CHECK(xlen_part(stream, i) > 0);   /* every partition got some */
        total += xlen_part(stream, i);
    }
    CHECK_EQ_INT(total, n);
    CHECK_EQ_INT(raw_int("EXISTS %s", stream), 0);   /* the stream itself is not a key */
    {
        int64_t dl = test_now_ms() + 10000;
        while (s.n < n && test_now_ms() < dl) {
            CHECK(rsbus_poll(a, 10) >= 0);
            CHECK(rsbus_poll(b, 10) >= 0);
        }
    }
    CHECK_EQ_INT(s.n, n);
    CHECK_EQ_INT(s.bad_route, 0);
    for (k = 0; k < nkeys; k++) { last[k] = -1; count[k] = 0; }
    for (i = 0; i < s.n; i++) {
        int key = atoi(s.key[i] + 1);
        char want[64];
        snprintf(want, sizeof want, "%s:p%d", stream, s.part[i]);
        CHECK_EQ_STR(s.stream[i], want);
        if (s.seq[i] <= last[key]) handled_once = 0;   /* out of order, or again */
        last[key] = s.seq[i];
        count[key]++;
    }
    CHECK(handled_once);
    for (k = 0; k < nkeys; k++) CHECK_EQ_INT(count[k], n / nkeys + (k < n % nkeys));
    for (i = 0; i < nparts; i++) {
        char key[64];
        snprintf(key, sizeof key, "%s:p%d", stream, i);
        CHECK_EQ_INT(pending_of(key, "g"), 0);
    }
    rsbus_close(a);
    rsbus_close(b);
}
TEST(partitions_3_order_per_key_and_once) { order_and_once("po3", 3, 600, 20); }
TEST(partitions_8_order_per_key_and_once) { order_and_once("po8", 8, 1200, 40); }

TEST(partition_count_is_pinned) {
    rsbus_config c = part_cfg("pin", 3, "c");
    rsbus_error err;
    rsbus *bus = open_cfg(&c);
    REQUIRE(bus != NULL);
    rsbus_close(bus);
    {
        redisReply *rep = raw("HGET {pin}:meta partitions");
        REQUIRE(rep != NULL);
        CHECK(rep->type == REDIS_REPLY_STRING && !strcmp(rep->str, "3"));
        freeReplyObject(rep);
    }
    c.partitions = 4;
    CHECK(rsbus_open(&c, &err) == NULL);
    CHECK_EQ_INT(err.code, RSBUS_E_ARG);
    CHECK_EQ_STR(err.msg, "rsbus_config.partitions: 4, but stream pin has 3 partitions (pinned in {pin}:meta)");
    c.partitions = 0;
    CHECK(rsbus_open(&c, &err) == NULL);
    CHECK_EQ_INT(err.code, RSBUS_E_ARG);
    CHECK_CONTAINS(err.msg, "has 3 partitions");
    c.partitions = 1;
    c.publish_only = 1;
    CHECK(rsbus_open(&c, &err) == NULL);
    CHECK_EQ_INT(err.code, RSBUS_E_ARG);
    c.partitions = 257;
    CHECK(rsbus_open(&c, &err) == NULL);
    CHECK_EQ_INT(err.code, RSBUS_E_ARG);
    CHECK_EQ_STR(err.msg, "rsbus_config.partitions: must be 0..256 (0 or 1: one stream)");
    c.partitions = 3;
    bus = open_cfg(&c);
    CHECK(bus != NULL);
    rsbus_close(bus);
    /* an unpartitioned stream's buses need no record, and a partitioned bus cannot take it over */
    c = part_cfg("pin1", 0, "c");
    bus = open_cfg(&c);
    REQUIRE(bus != NULL);
    rsbus_close(bus);
    CHECK_EQ_INT(raw_int("EXISTS {pin1}:meta"), 0);
    /* the env variable */
    setenv("RSBUS_PARTITIONS", "5", 1);
    c = part_cfg("pin", 0, "c");
    CHECK_EQ_INT(rsbus_config_from_env(&c, NULL, &err), RSBUS_OK);
    CHECK_EQ_INT(c.partitions, 5);
    setenv("RSBUS_PARTITIONS", "x", 1);
    CHECK_EQ_INT(rsbus_config_from_env(&c, NULL, &err), RSBUS_E_ARG);
    CHECK_EQ_STR(err.msg, "RSBUS_PARTITIONS: not an integer");
    unsetenv("RSBUS_PARTITIONS");
}

TEST(batch_fails_in_one_partition_only) {
    rsbus_config c = part_cfg("pb", 3, "pub");
    rsbus *bus;
    rsbus_event evs[12];
    char keys[12][8], ids[12][RSBUS_ID_SIZE];
    int i, in1 = 0;
    rsbus_stats st;
    freeReplyObject(raw("SET pb:p1 not-a-stream"));   /* partition 1 fails for real: WRONGTYPE */
    c.publish_only = 1;
    bus = open_cfg(&c);
    REQUIRE(bus != NULL);
    memset(evs, 0, sizeof evs);
    for (i = 0; i < 12; i++) {
        snprintf(keys[i], sizeof keys[i], "b%d", i);
        evs[i].type = "t";
        evs[i].key = keys[i];
        in1 += part_of(keys[i], 3) == 1;
    }
    REQUIRE(in1 > 0 && in1 < 12);
    for (i = 0; i < 12; i++) strcpy(ids[i], "untouched");
    CHECK_EQ_INT(rsbus_publish_batch(bus, evs, 12, ids), RSBUS_E_REDIS);
    CHECK_CONTAINS(rsbus_errmsg(bus), "WRONGTYPE");
    for (i = 0; i < 12; i++) {
        int p = part_of(keys[i], 3);
        if (p == 1) {
            CHECK_EQ_STR(ids[i], "");
        } else {
            redisReply *rep = raw("XRANGE pb:p%d %s %s", p, ids[i], ids[i]);
            CHECK(ids[i][0] != 0);
            CHECK(rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 1);
            if (rep) freeReplyObject(rep);
        }
    }
    CHECK_EQ_INT(xlen_part("pb", 0) + xlen_part("pb", 2), 12 - in1);
    rsbus_stats_get(bus, &st);
    CHECK_EQ_INT(st.published, 12 - in1);
    CHECK_EQ_INT(st.publish_errors, in1);
    /* a single publish to the broken partition fails, to another succeeds */
    for (i = 0; i < 12; i++) {
        char id[RSBUS_ID_SIZE];
        rsbus_result r = rsbus_publish(bus, &evs[i], id);
        CHECK_EQ_INT(r, part_of(keys[i], 3) == 1 ? RSBUS_E_REDIS : RSBUS_OK);
    }
    rsbus_close(bus);
    freeReplyObject(raw("DEL pb:p1"));
}

/* p<i>/<ms-seq> ids, merged oldest first, paging, replay into the same partition, purge of all. */
TEST(dlq_merged_ids_replay_and_purge) {
    rsbus_config c = part_cfg("pd", 3, "c");
    rsbus *bus = open_cfg(&c);
    rsbus_dlq_page page, p1, p2;
    seen s;
    size_t i;
    int64_t removed = -1;
    long long total = 0;
    REQUIRE(bus != NULL);
    memset(&s, 0, sizeof s);
    s.dead = 1;
    s.nparts = 3;
    CHECK(rsbus_subscribe(bus, "*", record, &s) > 0);
    REQUIRE(publish_keyed(bus, 30, 30) == 0);
    WAIT_UNTIL(rsbus_poll(bus, 10) >= 0 && s.n == 30, 5000);
    for (i = 0; i < 3; i++) total += dlq_len_part("pd", (int)i);
    CHECK_EQ_INT(total, 30);
    CHECK_EQ_INT(rsbus_dlq_list(bus, NULL, 1000, &page), RSBUS_OK);
    CHECK_EQ_INT(page.count, 30);
    for (i = 0; i < page.count; i++) {
        const rsbus_dlq_entry *d = &page.entries[i];
        char want[64], *slash;
        int p;
        uint64_t m1, s1, m0, s0;
        REQUIRE(d->dlq_id[0] == 'p' && (slash = strchr(d->dlq_id, '/')) != NULL);
        p = atoi(d->dlq_id + 1);
        CHECK_EQ_INT(p, d->msg.partition);
        CHECK_EQ_INT(p, part_of(d->msg.key, 3));   /* its own partition's DLQ */
        snprintf(want, sizeof want, "pd:p%d", p);
        CHECK_EQ_STR(d->msg.stream, want);
        {   /* the entry is in {pd:p<i>}:dlq under that id */
            redisReply *rep = raw("XRANGE {pd:p%d}:dlq %s %s", p, slash + 1, slash + 1);
            CHECK(rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 1);
            if (rep) freeReplyObject(rep);
        }
        if (i > 0) {   /* oldest first: (id, partition) never goes down */
            const char *prev = strchr(page.entries[i - 1].dlq_id, '/') + 1;
            REQUIRE(rsbus__id_parse(prev, strlen(prev), &m0, &s0) && rsbus__id_parse(slash + 1, strlen(slash + 1), &m1, &s1));
            CHECK(rsbus__id_less(m0, s0, m1, s1) || (m0 == m1 && s0 == s1 && page.entries[i - 1].msg.partition < p));
        }
    }
    /* pages: 11, then after its last id the other 19, the same entries in the same order */
    CHECK_EQ_INT(rsbus_dlq_list(bus, NULL, 11, &p1), RSBUS_OK);
    REQUIRE(p1.count == 11);
    CHECK_EQ_INT(rsbus_dlq_list(bus, p1.entries[10].dlq_id, 1000, &p2), RSBUS_OK);
    CHECK_EQ_INT(p2.count, 19);
    for (i = 0; i < 30 && p2.count == 19; i++)
        CHECK_EQ_STR(i < 11 ? p1.entries[i].dlq_id : p2.entries[i - 11].dlq_id, page.entries[i].dlq_id);
    rsbus_dlq_page_free(bus, &p1);
    rsbus_dlq_page_free(bus, &p2);
    CHECK_EQ_INT(rsbus_dlq_list(bus, "nonsense", 10, &p1), RSBUS_E_ARG);
    CHECK_EQ_INT(rsbus_dlq_list(bus, "p3/1-0", 10, &p1), RSBUS_E_ARG);   /* no partition 3 */
    /* replay one of partition p into p, with replay_of its p<i>/ id */
    {
        const rsbus_dlq_entry *d = &page.entries[7];
        int p = d->msg.partition;
        char nid[RSBUS_ID_SIZE], id[RSBUS_ID_SIZE];
        long long before = dlq_len_part("pd", p), len = xlen_part("pd", p);
        redisReply *rep;
        snprintf(id, sizeof id, "%s", d->dlq_id);
        CHECK_EQ_INT(rsbus_dlq_replay(bus, id, nid), RSBUS_OK);
        CHECK_EQ_INT(dlq_len_part("pd", p), before - 1);
        CHECK_EQ_INT(xlen_part("pd", p), len + 1);
        rep = raw("XRANGE pd:p%d %s %s", p, nid, nid);
        REQUIRE(rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 1);
        {
            const redisReply *f = rep->element[0]->element[1];
            size_t k;
            int found = 0;
            for (k = 0; k + 1 < f->elements; k += 2)
                if (!strcmp(f->element[k]->str, "replay_of")) { CHECK_EQ_STR(f->element[k + 1]->str, id); found = 1; }
            CHECK(found);
        }
        freeReplyObject(rep);
        CHECK_EQ_INT(rsbus_dlq_replay(bus, id, nid), RSBUS_E_NOTFOUND);
        CHECK_EQ_INT(rsbus_dlq_replay(bus, strchr(id, '/') + 1, nid), RSBUS_E_ARG);   /* which partition? */
    }
    rsbus_dlq_page_free(bus, &page);
    CHECK_EQ_INT(rsbus_dlq_purge(bus, INT64_MAX / 2, &removed), RSBUS_OK);
    CHECK_EQ_INT(removed, 29);
    for (i = 0; i < 3; i++) CHECK_EQ_INT(dlq_len_part("pd", (int)i), 0);
    rsbus_close(bus);
}

/* Numbers summed over the partitions, against each partition's own. */
TEST(numbers_health_and_metrics) {
    rsbus_config c = part_cfg("pn", 3, "c");
    rsbus *bus = open_cfg(&c);
    rsbus_stream_info si, snap;
    rsbus_group_info gi, gl[4], gs[4];
    rsbus_partition_info pl[8];
    size_t n = 0, i, ng = 0;
    long long len = 0, pend = 0, lag = 0, added = 0;
    char why[512], *text;
    size_t need;
    REQUIRE(bus != NULL);
    REQUIRE(publish_keyed(bus, 90, 9) == 0);
    /* a reader that keeps what it reads pending: raw XREADGROUP of 10 from each partition */
    for (i = 0; i < 3; i++) freeReplyObject(raw("XREADGROUP GROUP g raw COUNT 10 STREAMS pn:p%d >", (int)i));
    freeReplyObject(raw("XADD {pn:p1}:dlq * type x data {}"));
    CHECK_EQ_INT(rsbus_stream_info_get(bus, &si), RSBUS_OK);
    for (i = 0; i < 3; i++) {
        char key[32];
        snprintf(key, sizeof key, "pn:p%d", (int)i);
        len += xlen_part("pn", (int)i);
        pend += pending_of(key, "g");
        lag += part_group_field(key, "g", "lag");
        {
            redisReply *rep = raw("XINFO STREAM %s", key);
            size_t k;
            for (k = 0; rep && k + 1 < rep->elements; k += 2)
                if (!strcmp(rep->element[k]->str, "entries-added")) added += rep->element[k + 1]->integer;
            if (rep) freeReplyObject(rep);
        }
    }
    CHECK_EQ_INT(si.length, len);
    CHECK_EQ_INT(si.length, 90);
    CHECK_EQ_INT(si.dlq_length, 1);
    CHECK_EQ_INT(si.entries_added, added);
    CHECK_EQ_INT(rsbus_group_info_get(bus, NULL, &gi), RSBUS_OK);
    CHECK_EQ_INT(gi.pending, pend);
    CHECK_EQ_INT(gi.pending, 30);
    CHECK_EQ_INT(gi.lag, lag);
    CHECK_EQ_INT(gi.lag, 60);
    CHECK_EQ_INT(gi.consumers, part_group_field("pn:p0", "g", "consumers"));   /* the most of any partition */
    CHECK_EQ_INT(rsbus_groups_list(bus, gl, 4, &ng), RSBUS_OK);
    CHECK_EQ_INT(ng, 1);
    CHECK_EQ_INT(gl[0].pending, 30);
    CHECK_EQ_INT(rsbus_stream_snapshot(bus, &snap, gs, 4, &ng), RSBUS_OK);
    CHECK_EQ_INT(snap.length, 90);
    CHECK_EQ_INT(snap.dlq_length, 1);
    CHECK_EQ_INT(ng, 1);
    CHECK_EQ_INT(gs[0].pending, 30);
    CHECK(gs[0].oldest_idle_ms >= 0);
    CHECK_EQ_INT(rsbus_partitions_list(bus, pl, 8, &n), RSBUS_OK);
    CHECK_EQ_INT(n, 3);
    for (i = 0; i < 3; i++) {
        char key[32];
        snprintf(key, sizeof key, "pn:p%d", (int)i);
        CHECK_EQ_INT(pl[i].index, (int)i);
        CHECK_EQ_STR(pl[i].key, key);
        CHECK_EQ_INT(pl[i].slot, rsbus_key_slot(key, 0));
        CHECK_EQ_STR(pl[i].node, on_mem() ? MEM_TEST_URL : srv.sock);
        CHECK_EQ_INT(pl[i].length, xlen_part("pn", (int)i));
        CHECK_EQ_INT(pl[i].dlq_length, i == 1 ? 1 : 0);
        CHECK_EQ_INT(pl[i].pending, 10);
        CHECK_EQ_INT(pl[i].lag, part_group_field(key, "g", "lag"));
    }
    CHECK_EQ_INT(rsbus_partitions_list(bus, pl, 2, &n), RSBUS_OK);
    CHECK_EQ_INT(n, 3);
    /* health: the worst partition, named */
    CHECK_EQ_INT(rsbus_health_check(bus, 1000, why, sizeof why), RSBUS_DEGRADED);
    CHECK_CONTAINS(why, "partition 1 (pn:p1): dead-letter stream holds 1 entry");
    CHECK_NOT_CONTAINS(why, "partition 0");
    CHECK_EQ_INT(rsbus_health_check(bus, 15, why, sizeof why), RSBUS_DEGRADED);
    CHECK_CONTAINS(why, "partition 0 (pn:p0): lag");
    freeReplyObject(raw("DEL {pn:p1}:dlq"));
    CHECK_EQ_INT(rsbus_health_check(bus, 1000, why, sizeof why), RSBUS_HEALTHY);
    /* metrics: totals, and each partition beside them */
    need = rsbus_metrics_text(bus, NULL, 0);
    text = (char *)malloc(need + 1);
    REQUIRE(text != NULL);
    CHECK_EQ_INT(rsbus_metrics_text(bus, text, need + 1), need);
    CHECK_CONTAINS(text, "rsbus_stream_length{stream=\"pn\"} 90\n");
    for (i = 0; i < 3; i++) {
        char line[128];
        snprintf(line, sizeof line, "rsbus_stream_length{stream=\"pn\",partition=\"%d\"} %lld\n", (int)i,
                 xlen_part("pn", (int)i));
        CHECK_CONTAINS(text, line);
        snprintf(line, sizeof line, "rsbus_group_pending{stream=\"pn\",group=\"g\",partition=\"%d\"} 10\n", (int)i);
        CHECK_CONTAINS(text, line);
    }
    CHECK_CONTAINS(text, "rsbus_group_pending{stream=\"pn\",group=\"g\"} 30\n");
    CHECK_CONTAINS(text, "rsbus_group_lag{stream=\"pn\",group=\"g\"} 60\n");
    free(text);
    rsbus_close(bus);
}

/* A consumer process reads from every partition and is SIGKILLed with the entries pending; another
   claims them back, in each entry's own partition. */
typedef struct victim { const char *stream, *ready; int nparts; } victim;
static rsbus_verdict hang(const rsbus_msg *m, void *user) {
    (void)m;
    log_line(((const victim *)user)->ready, "ready");
    for (;;) pause();
    return RSBUS_ACK;
}
static void victim_main(void *p) {
    victim *v = (victim *)p;
    rsbus_config c = part_cfg(v->stream, v->nparts, "victim");
    rsbus *bus = open_cfg(&c);
    if (!bus) _exit(3);
    if (rsbus_subscribe(bus, "*", hang, v) <= 0) _exit(4);
    (void)rsbus_poll(bus, 1000);
    _exit(5);
}
TEST(claims_across_partitions_after_a_kill) {
    rsbus_config c = part_cfg("pk", 8, "rescuer");
    rsbus *bus = open_cfg(&c);
    char ready[400];
    victim v;
    pid_t pid;
    seen s;
    rsbus_claim_stats cs;
    long long pend = 0;
    int i, parts_pending = 0;
    REQUIRE(bus != NULL);
    REQUIRE(publish_keyed(bus, 80, 16) == 0);
    tmp_path(ready, sizeof ready, "pk.ready");
    v.stream = "pk"; v.ready = ready; v.nparts = 8;
    pid = spawn(victim_main, &v);
    WAIT_UNTIL(count_lines(ready, NULL) == 1, 5000);
    kill(pid, SIGKILL);
    reap(pid, 2000);
    for (i = 0; i < 8; i++) {
        char key[32];
        long long p;
        snprintf(key, sizeof key, "pk:p%d", i);
        p = pending_of(key, "g");
        pend += p;
        parts_pending += p > 0;
    }
    CHECK_EQ_INT(pend, 80);            /* one read took every partition's entries */
    CHECK_EQ_INT(parts_pending, 8);
    memset(&s, 0, sizeof s);
    s.nparts = 8;
    CHECK(rsbus_subscribe(bus, "*", record, &s) > 0);
    CHECK_EQ_INT(rsbus_claim(bus, 0, 0, &cs), RSBUS_OK);
    CHECK_EQ_INT(cs.claimed, 80);
    CHECK_EQ_INT(cs.handled, 80);
    CHECK_EQ_INT(s.n, 80);
    CHECK_EQ_INT(s.bad_route, 0);
    for (i = 0; i < 8; i++) {
        char key[32];
        snprintf(key, sizeof key, "pk:p%d", i);
        CHECK_EQ_INT(pending_of(key, "g"), 0);
    }
    rsbus_close(bus);
}

TEST(run_with_partitions) {
    rsbus_config c = part_cfg("pr", 4, "runner");
    rsbus *bus;
    static seen s;
    int i;
    c.batch_size = 16;
    bus = open_cfg(&c);
    REQUIRE(bus != NULL);
    REQUIRE(publish_keyed(bus, 500, 25) == 0);
    memset(&s, 0, sizeof s);
    s.nparts = 4;
    s.stop_after = 500;
    s.bus = bus;
    CHECK(rsbus_subscribe(bus, "*", record, &s) > 0);
    CHECK_EQ_INT(rsbus_run(bus, NULL), RSBUS_OK);   /* the handler stops it after the 500th */
    CHECK_EQ_INT(s.n, 500);
    CHECK_EQ_INT(s.bad_route, 0);
    for (i = 0; i < 4; i++) {   /* what was read ahead stays pending to this consumer: re-read by a poll */
        char key[32];
        snprintf(key, sizeof key, "pr:p%d", i);
        WAIT_UNTIL(rsbus_poll(bus, 10) >= 0 && pending_of(key, "g") == 0, 3000);
    }
    CHECK_EQ_INT(s.n, 500);
    rsbus_close(bus);
}

/* History of a partitioned stream: every partition's entries, merged in id order. */
typedef struct hist { int n, stop_at, out_of_order, parts[8]; uint64_t ms, seq; int seen[600]; } hist;
static int hist_fn(const rsbus_msg *m, void *user) {
    hist *h = (hist *)user;
    uint64_t ms, seq;
    rsbus_jval v;
    int64_t k = -1;
    if (rsbus__id_parse(m->stream_id, strlen(m->stream_id), &ms, &seq)) {
        if (h->n && rsbus__id_less(ms, seq, h->ms, h->seq)) h->out_of_order++;
        h->ms = ms; h->seq = seq;
    }
    if (rsbus_json_get(m->data, m->data_len, "seq", &v) == RSBUS_OK && rsbus_jval_int(&v, &k) == RSBUS_OK &&
        k >= 0 && k < 600)
        h->seen[k]++;
    if (m->partition >= 0 && m->partition < 8) h->parts[m->partition]++;
    h->n++;
    return h->stop_at && h->n >= h->stop_at;
}
TEST(replay_range_and_tail_merge_the_partitions) {
    rsbus_config c = part_cfg("ph", 4, "c");
    rsbus *bus;
    hist h;
    char last[RSBUS_ID_SIZE] = "";
    int i, once = 1, got = 0;
    int64_t dl;
    c.batch_size = 16;   /* many pages per partition */
    c.publish_only = 1;
    bus = open_cfg(&c);
    REQUIRE(bus != NULL);
    REQUIRE(publish_keyed(bus, 500, 37) == 0);
    memset(&h, 0, sizeof h);
    CHECK_EQ_INT(rsbus_replay_range(bus, "-", "+", hist_fn, &h), RSBUS_OK);
    CHECK_EQ_INT(h.n, 500);
    CHECK_EQ_INT(h.out_of_order, 0);
    for (i = 0; i < 500; i++) once &= h.seen[i] == 1;
    CHECK(once);
    for (i = 0; i < 4; i++) CHECK_EQ_INT(h.parts[i], xlen_part("ph", i));
    memset(&h, 0, sizeof h);
    h.stop_at = 10;
    CHECK_EQ_INT(rsbus_replay_range(bus, "-", "+", hist_fn, &h), RSBUS_OK);
    CHECK_EQ_INT(h.n, 10);
    /* tail: from now on, every partition */
    memset(&h, 0, sizeof h);
    CHECK_EQ_INT(rsbus_tail(bus, last, 0, hist_fn, &h), 0);
    CHECK(last[0] != 0);
    REQUIRE(publish_keyed(bus, 40, 40) == 0);
    dl = test_now_ms() + 5000;
    while (got < 40 && test_now_ms() < dl) {
        int k = rsbus_tail(bus, last, 50, hist_fn, &h);
        CHECK(k >= 0);
        if (k < 0) break;
        got += k;
    }
    CHECK_EQ_INT(got, 40);
    CHECK_EQ_INT(h.n, 40);
    CHECK_EQ_INT(h.out_of_order, 0);
    rsbus_close(bus);
}

TEST(tenant_dedupe_fields_on_partitions) {
    rsbus_config c = part_cfg("orders", 3, "c");
    rsbus *bus;
    rsbus_event ev;
    seen s;
    rsbus_field f[3];
    char id[RSBUS_ID_SIZE];
    int p;
    c.tenant = "acme";
    c.dedupe_ttl_ms = 60000;
    bus = open_cfg(&c);
    REQUIRE(bus != NULL);
    CHECK_EQ_INT(raw_int("EXISTS tenant:acme:orders:p0 tenant:acme:orders:p1 tenant:acme:orders:p2"), 3);
    {
        redisReply *rep = raw("HGET {tenant:acme:orders}:meta partitions");
        CHECK(rep && rep->type == REDIS_REPLY_STRING && !strcmp(rep->str, "3"));
        if (rep) freeReplyObject(rep);
    }
    memset(&ev, 0, sizeof ev);
    ev.type = "x"; ev.id = "same";   /* no key: the event id picks the partition */
    CHECK_EQ_INT(rsbus_publish(bus, &ev, NULL), RSBUS_OK);
    CHECK_EQ_INT(rsbus_publish(bus, &ev, NULL), RSBUS_OK);
    p = part_of("same", 3);
    CHECK_EQ_INT(raw_int("XLEN tenant:acme:orders:p%d", p), 2);
    memset(&s, 0, sizeof s);
    s.nparts = 3;
    CHECK(rsbus_subscribe(bus, "*", record, &s) > 0);
    WAIT_UNTIL(rsbus_poll(bus, 10) >= 0 && pending_of("tenant:acme:orders:p0", "g") == 0 &&
               pending_of("tenant:acme:orders:p1", "g") == 0 && pending_of("tenant:acme:orders:p2", "g") == 0, 5000);
    CHECK_EQ_INT(s.n, 1);             /* the repeat was skipped */
    CHECK_EQ_INT(raw_int("EXISTS {tenant:acme:orders:p%d}:dedupe:g:same", p), 1);
    /* publish_fields: the key picks the partition */
    f[0].name = "type"; f[0].value = "fx"; f[0].name_len = f[0].value_len = 0;
    f[1].name = "data"; f[1].value = "{}"; f[1].name_len = f[1].value_len = 0;
    f[2].name = "tenant"; f[2].value = "acme"; f[2].name_len = f[2].value_len = 0;
    CHECK_EQ_INT(rsbus_publish_fields(bus, "fk", f, 3, id), RSBUS_OK);
    {
        redisReply *rep = raw("XRANGE tenant:acme:orders:p%d %s %s", part_of("fk", 3), id, id);
        CHECK(rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 1);
        if (rep) freeReplyObject(rep);
    }
    rsbus_close(bus);
}

TEST(spool_keeps_the_partition) {
    rsbus_config c = part_cfg("psp", 3, "pub");
    char path[400];
    rsbus *bus;
    size_t sent = 0, i;
    rsbus_event evs[9];
    char keys[9][8];
    long long want[3] = { 0, 0, 0 };
    tmp_path(path, sizeof path, "psp.spool");
    c.publish_only = 1;
    c.spool_path = path;
    bus = open_cfg(&c);
    REQUIRE(bus != NULL);
    memset(evs, 0, sizeof evs);
    for (i = 0; i < 9; i++) {
        snprintf(keys[i], sizeof keys[i], "s%d", (int)i);
        evs[i].type = "t";
        evs[i].key = keys[i];
        want[part_of(keys[i], 3)]++;
    }
    raw_reset();
    test_redis_kill(&srv);
    CHECK_EQ_INT(rsbus_publish_batch(bus, evs, 6, NULL), RSBUS_SPOOLED);
    CHECK_EQ_INT(rsbus_publish(bus, &evs[6], NULL), RSBUS_SPOOLED);
    CHECK_EQ_INT(rsbus_publish(bus, &evs[7], NULL), RSBUS_SPOOLED);
    CHECK_EQ_INT(rsbus_publish(bus, &evs[8], NULL), RSBUS_SPOOLED);
    REQUIRE(test_redis_restart(&srv) == 0);
    CHECK_EQ_INT(rsbus_spool_flush(bus, &sent), RSBUS_OK);
    CHECK_EQ_INT(sent, 9);
    for (i = 0; i < 3; i++) CHECK_EQ_INT(xlen_part("psp", (int)i), want[i]);
    rsbus_close(bus);
}

int main(void) {
    if (test_redis_start(&srv, NULL) != 0) {
        printf("test_partitions: 0 passed, 1 failed\n");
        return 1;
    }
    RUN(key_slot_matches_the_crc16_vector_and_redis);
    RUN(key_layout_dlq_dedupe_meta_and_braces_refused);
    RUN_WITH(ADMIN, rename_moves_an_old_dlq);
    RUN(partitions_3_order_per_key_and_once);
    RUN(partitions_8_order_per_key_and_once);
    RUN(partition_count_is_pinned);
    RUN(batch_fails_in_one_partition_only);
    RUN_WITH(ADMIN, dlq_merged_ids_replay_and_purge);
    RUN(numbers_health_and_metrics);
    RUN(claims_across_partitions_after_a_kill);
    RUN(run_with_partitions);
    RUN_WITH(ADMIN, replay_range_and_tail_merge_the_partitions);
    RUN(tenant_dedupe_fields_on_partitions);
    RUN_WITH(SPOOL, spool_keeps_the_partition);   /* last: it restarts the server */
    kill_children();
    raw_reset();
    test_redis_stop(&srv);
    return test_summary("test_partitions");
}
#endif
