/* test_unit.c - rsbus's private helpers, without a server: the RESP writer (read back through hiredis's
   own reader), config defaults and their messages, patterns, backoff, the entry decoder fed replies of
   every shape a hostile server could send, event ids, log cleaning, result names. */
#define _POSIX_C_SOURCE 200809L
#define RSBUS_IMPLEMENTATION
#include "../rsbus.h"
#include "test.h"

/* A bus with no connection, for the helpers that only need its buffers and config. */
static rsbus *offline_bus(void) {
    rsbus *bus = (rsbus *)calloc(1, sizeof *bus);
    char msg[256];
    rsbus_config in;
    memset(&in, 0, sizeof in);
    in.stream = "s"; in.group = "g"; in.consumer = "c";
    if (rsbus__config_defaults(&in, &bus->cfg, msg, sizeof msg) != RSBUS_OK) abort();
    bus->rnd_pos = sizeof bus->rnd;
    snprintf(bus->key, sizeof bus->key, "s");
    bus->key_len = 1;
    bus->group_len = 1;
    bus->consumer_len = 1;
    bus->fields = (rsbus_field *)calloc(RSBUS__MAX_FIELDS + RSBUS__DLQ_FIELDS, sizeof *bus->fields);
    bus->cap_fields = RSBUS__MAX_FIELDS + RSBUS__DLQ_FIELDS;
    if (!bus->fields) abort();
    bus->type_field_len = strlen(bus->cfg.type_field);
    bus->id_field_len = strlen(bus->cfg.id_field);
    bus->data_field_len = strlen(bus->cfg.data_field);
    bus->custom_fields = strcmp(bus->cfg.type_field, "type") || strcmp(bus->cfg.id_field, "id") ||
                         strcmp(bus->cfg.data_field, "data");
    rsbus__conn_init(bus, &bus->conn);
    if (rsbus__parts_init(bus) != RSBUS_OK) abort();   /* one partition: the stream "s" */
    return bus;
}
static void offline_free(rsbus *bus) {
    rsbus__parts_free(bus);
    free(bus->fields);
    rsbus__conn_free(&bus->conn);
    free(bus);
}
/* Parses RESP text with hiredis's reader: replies, or commands (an array of bulk strings). */
static redisReply *parse(const char *buf, size_t len) {
    redisReader *r = redisReaderCreate();
    void *rep = NULL;
    redisReaderFeed(r, buf, len);
    if (redisReaderGetReply(r, &rep) != REDIS_OK) rep = NULL;
    redisReaderFree(r);
    return (redisReply *)rep;
}

TEST(resp_writer_round_trips_through_hiredis) {
    rsbus *bus = offline_bus();
    redisReply *rep;
    const char bin[] = { 'a', 0, '\r', '\n', 'b' };
    size_t i;
    rsbus__cmd(&bus->conn);
    rsbus__argz(&bus->conn, "XADD");
    rsbus__arg(&bus->conn, bin, sizeof bin);
    rsbus__argi(&bus->conn, INT64_MIN);
    rsbus__argi(&bus->conn, 0);
    rsbus__argi(&bus->conn, 1234567890123);
    rsbus__arg(&bus->conn, "", 0);
    rsbus__cmd_end(&bus->conn);
    for (i = 0; i < 11; i++) {       /* a command with more than 9 arguments: a 2-digit header */
        if (i == 0) rsbus__cmd(&bus->conn);
        rsbus__argi(&bus->conn, (int64_t)i);
    }
    rsbus__cmd_end(&bus->conn);
    REQUIRE(!bus->conn.oom && bus->conn.nsegs == 2);
    rep = parse(bus->conn.out + bus->conn.segs[0].off, bus->conn.segs[0].len);
    REQUIRE(rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 6);
    CHECK_EQ_STR(rep->element[0]->str, "XADD");
    CHECK_EQ_INT(rep->element[1]->len, sizeof bin);
    CHECK(memcmp(rep->element[1]->str, bin, sizeof bin) == 0);
    CHECK_EQ_STR(rep->element[2]->str, "-9223372036854775808");
    CHECK_EQ_STR(rep->element[3]->str, "0");
    CHECK_EQ_STR(rep->element[4]->str, "1234567890123");
    CHECK_EQ_INT(rep->element[5]->len, 0);
    freeReplyObject(rep);
    rep = parse(bus->conn.out + bus->conn.segs[1].off, bus->conn.segs[1].len);
    REQUIRE(rep && rep->elements == 11);
    CHECK_EQ_STR(rep->element[10]->str, "10");
    freeReplyObject(rep);
    rsbus__reset_cmds(&bus->conn);
    CHECK_EQ_INT(bus->conn.out_len, 0);
    offline_free(bus);
}

TEST(config_defaults_and_messages) {
    rsbus_config in, c;
    char msg[256];
    memset(&in, 0, sizeof in);
    CHECK_EQ_INT(rsbus__config_defaults(&in, &c, msg, sizeof msg), RSBUS_OK);
    CHECK_EQ_STR(c.url, "redis://127.0.0.1:6379");
    CHECK_EQ_STR(c.stream, "rsbus:events");
    CHECK_EQ_STR(c.group, "default");
    CHECK_EQ_STR(c.group_start, "$");
    CHECK_EQ_INT(c.max_len, 100000);
    CHECK_EQ_INT(c.dlq_max_len, 10000);
    CHECK_EQ_INT(c.batch_size, 100);
    CHECK_EQ_INT(c.block_ms, 5000);
    CHECK_EQ_INT(c.max_retries, 3);
    CHECK_EQ_INT(c.retry_backoff_ms, 1000);
    CHECK_EQ_INT(c.retry_backoff_max_ms, 60000);
    CHECK_EQ_INT(c.claim_idle_ms, 60000);
    CHECK_EQ_INT(c.claim_interval_ms, 5000);
    CHECK_EQ_INT(c.connect_timeout_ms, 5000);
    CHECK_EQ_INT(c.io_timeout_ms, 5000);
    CHECK_EQ_INT(c.max_event_bytes, 1 << 20);
    CHECK_EQ_INT(c.log_level, RSBUS_LOG_WARN);
    CHECK_EQ_INT(c.publish_wait_replicas, 0);
    CHECK_EQ_INT(c.publish_wait_ms, 100);
    in.publish_wait_replicas = 2; in.publish_wait_ms = 7;
    CHECK_EQ_INT(rsbus__config_defaults(&in, &c, msg, sizeof msg), RSBUS_OK);
    CHECK_EQ_INT(c.publish_wait_replicas, 2);
    CHECK_EQ_INT(c.publish_wait_ms, 7);
    in.publish_wait_replicas = 1001;
    CHECK_EQ_INT(rsbus__config_defaults(&in, &c, msg, sizeof msg), RSBUS_E_ARG);
    CHECK_CONTAINS(msg, "rsbus_config.publish_wait_replicas");
    in.publish_wait_replicas = 1; in.publish_wait_ms = 5000;   /* io_timeout_ms 5000: WAIT must answer within it */
    CHECK_EQ_INT(rsbus__config_defaults(&in, &c, msg, sizeof msg), RSBUS_E_ARG);
    CHECK_CONTAINS(msg, "rsbus_config.publish_wait_ms: must be below io_timeout_ms");
    in.publish_wait_replicas = 0; in.publish_wait_ms = 0;
    in.max_len = -1; in.max_retries = -1;
    CHECK_EQ_INT(rsbus__config_defaults(&in, &c, msg, sizeof msg), RSBUS_OK);
    CHECK_EQ_INT(c.max_len, -1);
    CHECK_EQ_INT(c.max_retries, 0);
    in.batch_size = 10001;
    CHECK_EQ_INT(rsbus__config_defaults(&in, &c, msg, sizeof msg), RSBUS_E_ARG);
    CHECK_CONTAINS(msg, "rsbus_config.batch_size");
    memset(&in, 0, sizeof in);
    in.group = "a\nb";
    CHECK_EQ_INT(rsbus__config_defaults(&in, &c, msg, sizeof msg), RSBUS_E_ARG);
    CHECK_CONTAINS(msg, "rsbus_config.group");
    memset(&in, 0, sizeof in);
    in.tenant = "a:b";
    CHECK_EQ_INT(rsbus__config_defaults(&in, &c, msg, sizeof msg), RSBUS_E_ARG);
    CHECK_CONTAINS(msg, "tenant");
    memset(&in, 0, sizeof in);
    in.io_timeout_ms = -5;
    CHECK_EQ_INT(rsbus__config_defaults(&in, &c, msg, sizeof msg), RSBUS_E_ARG);
    CHECK_EQ_STR(msg, "rsbus_config.io_timeout_ms: must be positive");
}

/* Every field a bad value can be given names that field, and only it, in the message. */
TEST(config_messages_name_the_field) {
    static const struct { const char *field; size_t off; int isint64; } cases[] = {
        { "batch_size", offsetof(rsbus_config, batch_size), 0 },
        { "block_ms", offsetof(rsbus_config, block_ms), 0 },
        { "retry_backoff_ms", offsetof(rsbus_config, retry_backoff_ms), 0 },
        { "retry_backoff_max_ms", offsetof(rsbus_config, retry_backoff_max_ms), 0 },
        { "claim_idle_ms", offsetof(rsbus_config, claim_idle_ms), 0 },
        { "claim_interval_ms", offsetof(rsbus_config, claim_interval_ms), 0 },
        { "connect_timeout_ms", offsetof(rsbus_config, connect_timeout_ms), 0 },
        { "io_timeout_ms", offsetof(rsbus_config, io_timeout_ms), 0 },
        { "dedupe_ttl_ms", offsetof(rsbus_config, dedupe_ttl_ms), 1 },
        { "spool_max_bytes", offsetof(rsbus_config, spool_max_bytes), 1 },
        { "publish_wait_replicas", offsetof(rsbus_config, publish_wait_replicas), 0 },
        { "publish_wait_ms", offsetof(rsbus_config, publish_wait_ms), 0 },
    };
    size_t i;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rsbus_config in, c;
        char msg[256], want[96];
        int v = -7;
        int64_t v64 = -7;
        memset(&in, 0, sizeof in);
        if (cases[i].isint64) memcpy((char *)&in + cases[i].off, &v64, sizeof v64);
        else memcpy((char *)&in + cases[i].off, &v, sizeof v);
        CHECK_EQ_INT(rsbus__config_defaults(&in, &c, msg, sizeof msg), RSBUS_E_ARG);
        snprintf(want, sizeof want, "rsbus_config.%s:", cases[i].field);
        CHECK(strncmp(msg, want, strlen(want)) == 0);
        if (strncmp(msg, want, strlen(want)) != 0) printf("   %s: got \"%s\"\n", cases[i].field, msg);
    }
}

TEST(patterns) {
    rsbus__handler h;
    memset(&h, 0, sizeof h);
    h.kind = RSBUS__PAT_PREFIX; strcpy(h.pattern, "order.*"); h.plen = 6;
    CHECK(rsbus__matches(&h, "order.a", 7));
    CHECK(rsbus__matches(&h, "order.a.b", 9));
    CHECK(!rsbus__matches(&h, "order", 5));
    CHECK(!rsbus__matches(&h, "order.", 6));
    CHECK(!rsbus__matches(&h, "orders.a", 8));
    h.kind = RSBUS__PAT_EXACT; strcpy(h.pattern, "order"); h.plen = 5;
    CHECK(rsbus__matches(&h, "order", 5));
    CHECK(!rsbus__matches(&h, "order.a", 7));
    h.kind = RSBUS__PAT_ALL;
    CHECK(rsbus__matches(&h, "x", 1));
    CHECK(rsbus__type_ok("a.B-9_:z", 8));
    CHECK(!rsbus__type_ok("a b", 3));
    CHECK(!rsbus__type_ok("", 0));
    CHECK(!rsbus__type_ok("\xc3\xa9", 2));
}

TEST(backoff_doubles_and_caps) {
    rsbus *bus = offline_bus();
    bus->cfg.retry_backoff_ms = 100;
    bus->cfg.retry_backoff_max_ms = 1000;
    CHECK_EQ_INT(rsbus__backoff_ms(bus, 1), 100);
    CHECK_EQ_INT(rsbus__backoff_ms(bus, 2), 200);
    CHECK_EQ_INT(rsbus__backoff_ms(bus, 3), 400);
    CHECK_EQ_INT(rsbus__backoff_ms(bus, 5), 1000);
    CHECK_EQ_INT(rsbus__backoff_ms(bus, INT64_MAX), 1000);   /* no overflow, no long loop */
    offline_free(bus);
}

/* Builds an entry reply [id, fields] from RESP text, the way hiredis would receive it. */
#define ENTRY(resp) parse(resp, sizeof(resp) - 1)

TEST(decoder_takes_well_formed_entries) {
    rsbus *bus = offline_bus();
    rsbus_msg m;
    const char *rf;
    redisReply *e = ENTRY("*2\r\n$3\r\n1-1\r\n*12\r\n$4\r\ntype\r\n$1\r\nx\r\n$2\r\nid\r\n$2\r\nab\r\n"
                          "$2\r\nts\r\n$2\r\n17\r\n$1\r\nv\r\n$1\r\n2\r\n$4\r\ndata\r\n$2\r\n[]\r\n"
                          "$10\r\nreplay_for\r\n$1\r\ng\r\n");
    REQUIRE(e && rsbus__entry_ok(e));
    CHECK(rsbus__decode(bus, e, &m, &rf) == NULL);
    CHECK_EQ_STR(m.type, "x");
    CHECK_EQ_STR(m.id, "ab");
    CHECK_EQ_INT(m.ts_ms, 17);
    CHECK_EQ_INT(m.version, 2);
    CHECK_EQ_INT(m.data_len, 2);
    CHECK_EQ_STR(rf, "g");
    CHECK_EQ_STR(m.stream_id, "1-1");
    freeReplyObject(e);
    /* without id, ts, v: still well-formed */
    e = ENTRY("*2\r\n$3\r\n1-2\r\n*4\r\n$4\r\ntype\r\n$1\r\nx\r\n$4\r\ndata\r\n$1\r\n1\r\n");
    REQUIRE(e);
    CHECK(rsbus__decode(bus, e, &m, &rf) == NULL);
    CHECK(m.id == NULL);
    CHECK_EQ_INT(m.ts_ms, 0);
    CHECK_EQ_INT(m.version, 1);
    freeReplyObject(e);
    offline_free(bus);
}

#define HOSTILE(resp, why) { resp, sizeof(resp) - 1, why }
TEST(decoder_refuses_hostile_shapes) {
    static const struct { const char *resp; size_t len; const char *why; } cases[] = {
        HOSTILE("*2\r\n$3\r\n1-1\r\n*1\r\n$4\r\ntype\r\n", "pairs"),                       /* odd count */
        HOSTILE("*2\r\n$3\r\n1-1\r\n*2\r\n:1\r\n$1\r\nx\r\n", "not a string"),              /* integer name */
        HOSTILE("*2\r\n$3\r\n1-1\r\n*2\r\n$4\r\ntype\r\n*0\r\n", "not a string"),           /* array value */
        HOSTILE("*2\r\n$3\r\n1-1\r\n*2\r\n$4\r\ndata\r\n$2\r\n{}\r\n", "no type"),
        HOSTILE("*2\r\n$3\r\n1-1\r\n*2\r\n$4\r\ntype\r\n$1\r\nx\r\n", "no data"),
        HOSTILE("*2\r\n$3\r\n1-1\r\n*4\r\n$4\r\ntype\r\n$3\r\na\0b\r\n$4\r\ndata\r\n$2\r\n{}\r\n", "type"),
        HOSTILE("*2\r\n$3\r\n1-1\r\n*4\r\n$4\r\ntype\r\n$1\r\nx\r\n$4\r\ndata\r\n$2\r\n{\0\r\n", "JSON"),
        HOSTILE("*2\r\n$3\r\n1-1\r\n*6\r\n$4\r\ntype\r\n$1\r\nx\r\n$4\r\ndata\r\n$1\r\n1\r\n"
                "$2\r\nts\r\n$20\r\n99999999999999999999\r\n", "ts"),
        HOSTILE("*2\r\n$3\r\n1-1\r\n*6\r\n$4\r\ntype\r\n$1\r\nx\r\n$4\r\ndata\r\n$1\r\n1\r\n"
                "$1\r\nv\r\n$1\r\n0\r\n", "v is"),
    };
    rsbus *bus = offline_bus();
    size_t i;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        redisReply *e = parse(cases[i].resp, cases[i].len);
        rsbus_msg m;
        const char *rf, *bad;
        CHECK(e != NULL);
        if (!e) continue;
        CHECK(rsbus__entry_ok(e));
        bad = rsbus__decode(bus, e, &m, &rf);
        CHECK(bad != NULL);
        if (bad) CHECK_CONTAINS(bad, cases[i].why);
        freeReplyObject(e);
    }
    /* more field pairs than the bound */
    {
        char buf[16384];
        size_t n = 0;
        int k;
        redisReply *e;
        rsbus_msg m;
        const char *rf;
        n += (size_t)snprintf(buf + n, sizeof buf - n, "*2\r\n$3\r\n1-1\r\n*%d\r\n", 2 * (RSBUS__MAX_FIELDS + 1));
        for (k = 0; k < RSBUS__MAX_FIELDS + 1; k++) n += (size_t)snprintf(buf + n, sizeof buf - n, "$1\r\nf\r\n$1\r\nv\r\n");
        e = parse(buf, n);
        REQUIRE(e != NULL);
        CHECK_CONTAINS(rsbus__decode(bus, e, &m, &rf), "too many fields");
        freeReplyObject(e);
    }
    offline_free(bus);
}

TEST(entry_shape_checks) {
    redisReply *e;
    e = ENTRY("*2\r\n$3\r\n1-1\r\n$-1\r\n");           /* nil fields: a deleted entry, well-shaped */
    CHECK(e && rsbus__entry_ok(e));
    if (e) freeReplyObject(e);
    e = ENTRY("*2\r\n$3\r\nabc\r\n*0\r\n");            /* id not ms-seq */
    CHECK(e && !rsbus__entry_ok(e));
    if (e) freeReplyObject(e);
    e = ENTRY("*3\r\n$3\r\n1-1\r\n*0\r\n*0\r\n");      /* three elements */
    CHECK(e && !rsbus__entry_ok(e));
    if (e) freeReplyObject(e);
    e = ENTRY("*2\r\n:5\r\n*0\r\n");                   /* integer id */
    CHECK(e && !rsbus__entry_ok(e));
    if (e) freeReplyObject(e);
    {
        char id[RSBUS_ID_SIZE];
        redisReply r;
        memset(&r, 0, sizeof r);
        r.type = REDIS_REPLY_STRING;
        r.str = (char *)(uintptr_t)"123456789012345678901234567890123456789012345678-1";
        r.len = strlen(r.str);
        CHECK(!rsbus__copy_id(&r, id));                /* too long for RSBUS_ID_SIZE */
        r.str = (char *)(uintptr_t)"1-"; r.len = 2;
        CHECK(!rsbus__copy_id(&r, id));
        r.str = (char *)(uintptr_t)"-1"; r.len = 2;
        CHECK(!rsbus__copy_id(&r, id));
        r.str = (char *)(uintptr_t)"1700000000000-42"; r.len = strlen(r.str);
        CHECK(rsbus__copy_id(&r, id));
        CHECK_EQ_STR(id, "1700000000000-42");
        CHECK_EQ_INT(rsbus__id_ms(id), INT64_C(1700000000000));
    }
}

TEST(event_ids_are_random_hex) {
    rsbus *bus = offline_bus();
    char a[33], b[33];
    int i;
    for (i = 0; i < 100; i++) {
        CHECK_EQ_INT(rsbus__event_id(bus, a), 0);
        CHECK_EQ_INT(rsbus__event_id(bus, b), 0);
        CHECK_EQ_INT(strlen(a), 32);
        CHECK_EQ_INT(strspn(a, "0123456789abcdef"), 32);
        CHECK(strcmp(a, b) != 0);
    }
    offline_free(bus);
}

TEST(log_cleaning_and_result_names) {
    char out[16];
    rsbus__clean("a\nb\x1b[31mc\xff", 12, out, sizeof out);
    CHECK_EQ_STR(out, "a?b?[31mc?");
    rsbus__clean("abcdefghijklmnopqrstuvwxyz", 26, out, sizeof out);
    CHECK_EQ_INT(strlen(out), 15);
    CHECK_EQ_STR(rsbus_result_str(RSBUS_OK), "RSBUS_OK");
    CHECK_EQ_STR(rsbus_result_str(RSBUS_E_NOTFOUND), "RSBUS_E_NOTFOUND");
    CHECK_EQ_STR(rsbus_result_str(RSBUS_E_REPLICAS), "RSBUS_E_REPLICAS");
    CHECK_EQ_INT(RSBUS_E_REPLICAS, -11);
    CHECK_EQ_STR(rsbus_result_str(RSBUS_E_PROTOCOL), "RSBUS_E_PROTOCOL");
    CHECK_EQ_STR(rsbus_result_str((rsbus_result)-99), "RSBUS_E_UNKNOWN");
    CHECK_EQ_STR(rsbus_errmsg(NULL), "");
}

TEST(null_bus_is_refused_not_crashed) {
    rsbus_stats st;
    rsbus_dlq_page page;
    CHECK_EQ_INT(rsbus_publish(NULL, NULL, NULL), RSBUS_E_ARG);
    CHECK_EQ_INT(rsbus_publish_batch(NULL, NULL, 1, NULL), RSBUS_E_ARG);
    CHECK_EQ_INT(rsbus_poll(NULL, 0), RSBUS_E_ARG);
    CHECK_EQ_INT(rsbus_run(NULL, NULL), RSBUS_E_ARG);
    CHECK_EQ_INT(rsbus_claim(NULL, 0, 0, NULL), RSBUS_E_ARG);
    CHECK_EQ_INT(rsbus_subscribe(NULL, "*", NULL, NULL), RSBUS_E_ARG);
    CHECK_EQ_INT(rsbus_dlq_list(NULL, NULL, 1, &page), RSBUS_E_ARG);
    CHECK_EQ_INT(rsbus_health_check(NULL, 0, NULL, 0), RSBUS_UNHEALTHY);
    CHECK_EQ_INT(rsbus_metrics_text(NULL, NULL, 0), 0);
    rsbus_stats_get(NULL, &st);
    CHECK_EQ_INT(st.published, 0);
    rsbus_stop(NULL);
}

/* The queue of owed replies is a ring: it keeps its order when it wraps and when it grows while wrapped. */
TEST(owed_replies_keep_their_order) {
    rsbus *bus = offline_bus();
    rsbus__conn *cn = &bus->conn;
    size_t i;
    for (i = 0; i < 10; i++) { rsbus__cmd(cn); rsbus__lit(cn, "PING"); rsbus__cmd_end_owing(cn, RSBUS__OWE_ACK, i, 0); }
    cn->owe_sent = cn->owe_len;          /* as if sent ... */
    rsbus__owe_drop_sent(cn);            /* ... and lost with the connection */
    rsbus__reset_cmds(cn);
    CHECK_EQ_INT(cn->owe_len, 0);
    for (i = 0; i < 40; i++) { rsbus__cmd(cn); rsbus__lit(cn, "PING"); rsbus__cmd_end_owing(cn, RSBUS__OWE_MARK, 100 + i, 0); }
    REQUIRE(!cn->oom);
    CHECK_EQ_INT(cn->owe_len, 40);
    CHECK_EQ_INT(cn->nsegs, 40);
    for (i = 0; i < 40; i++) CHECK_EQ_INT(rsbus__owe_at(cn, i)->acked, 100 + i);
    CHECK(rsbus__owes(cn, RSBUS__OWE_MARK) && !rsbus__owes(cn, RSBUS__OWE_READ));
    offline_free(bus);
}

int main(void) {
    RUN(resp_writer_round_trips_through_hiredis);
    RUN(owed_replies_keep_their_order);
    RUN(config_defaults_and_messages);
    RUN(config_messages_name_the_field);
    RUN(patterns);
    RUN(backoff_doubles_and_caps);
    RUN(decoder_takes_well_formed_entries);
    RUN(decoder_refuses_hostile_shapes);
    RUN(entry_shape_checks);
    RUN(event_ids_are_random_hex);
    RUN(log_cleaning_and_result_names);
    RUN(null_bus_is_refused_not_crashed);
    return test_summary("test_unit");
}
