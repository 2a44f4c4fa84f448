/* Sentinel discovery and replicated publishing through real failovers: real redis-server and
   redis-sentinel processes on free loopback ports, started and stopped by pid.

   - discovery: the first sentinel down, a master no sentinel knows, a wrong sentinel password, a
     sentinel naming a replica (ROLE check, then the next sentinel), the answering sentinel moved first;
   - the demoted master: READONLY makes the next call ask the sentinels again, and a publish that
     returned RSBUS_OK was never written only to the demoted server;
   - failover rounds (master + 2 replicas + 3 sentinels, down-after-milliseconds 1000): a publisher
     with publish_wait_replicas = 1 and a consumer in rsbus_run (its own thread), the master SIGKILLed
     (in other rounds the replicas paused with SIGSTOP first): every publish that returned RSBUS_OK is
     in the new master's stream and consumed (both asserted: 0 lost), RSBUS_E_REPLICAS answers are
     counted and reported, and so are the outages (kill to the first write, the first RSBUS_OK, the
     first consumed event). Rounds without WAIT are measured and reported, not asserted.
   - rediss+sentinel:// (built with RSBUS_TLS, the hiredis 1.x lane): TLS to the sentinel and the master.
   Arguments: --rounds N (default 3: WAIT + kill; no WAIT with both replicas paused and cut off (CLIENT
   KILL TYPE replica) during writes and woken at the kill, so the promoted one lacks those writes (the
   contrast, reported); the same with
   WAIT (lost 0 asserted). More rounds add WAIT with one replica paused, and no WAIT + kill, then
   repeat: make chaos-failover). Under ASan the rounds are WAIT + kill only. */
#define _POSIX_C_SOURCE 200809L
#define RSBUS_IMPLEMENTATION
#include "../rsbus.h"
#include "test.h"
#include "redis_server.h"

#include <pthread.h>
#include <stdlib.h>

#if defined(__SANITIZE_ADDRESS__)
#  define SANITIZED 1
#elif defined(__has_feature)
#  if __has_feature(address_sanitizer)
#    define SANITIZED 1
#  endif
#endif
#ifndef SANITIZED
#  define SANITIZED 0
#endif

/* a failed check that ends the test (REQUIRE of a condition already known false) */
#define GIVE_UP(why) do { test__fail(__FILE__, __LINE__, (why)); return; } while (0)

#define MPW "m4ster-Pw"        /* the data nodes' requirepass */
#define SPW "s3ntinel-Pw"      /* the sentinels' requirepass (discovery topology) */

/* ---- small helpers on raw hiredis connections ---- */

static redisReply *cmd(const test_redis *r, const char *fmt, ...) {
    redisContext *c = test_redis_connect(r);
    redisReply *rep;
    va_list ap;
    if (!c) return NULL;
    va_start(ap, fmt);
    rep = (redisReply *)redisvCommand(c, fmt, ap);
    va_end(ap);
    redisFree(c);
    return rep;
}

/* the value of "key:" in INFO replication, "" if missing */
static void info_repl(const test_redis *r, const char *key, char *out, size_t size) {
    redisReply *rep = cmd(r, "INFO replication");
    size_t kl = strlen(key);
    out[0] = 0;
    if (rep && rep->type == REDIS_REPLY_STRING) {
        const char *p = rep->str;
        while (p && *p) {
            if (!strncmp(p, key, kl) && p[kl] == ':') {
                size_t n = strcspn(p + kl + 1, "\r\n");
                if (n >= size) n = size - 1;
                memcpy(out, p + kl + 1, n);
                out[n] = 0;
                break;
            }
            p = strchr(p, '\n');
            if (p) p++;
        }
    }
    if (rep) freeReplyObject(rep);
}
static int link_up(const test_redis *r) {
    char v[32];
    info_repl(r, "master_link_status", v, sizeof v);
    return !strcmp(v, "up");
}
static int connected_replicas(const test_redis *r) {
    char v[32];
    info_repl(r, "connected_slaves", v, sizeof v);
    return v[0] ? atoi(v) : -1;
}

/* the replicas a master lists in ROLE that acknowledged an offset (a replica that just finished its first
   sync shows offset 0 until its first REPLCONF ACK, and WAIT does not count it yet); -1: not a master */
static int role_replicas(const test_redis *r) {
    redisReply *rep = cmd(r, "ROLE");
    int n = -1;
    size_t i;
    if (rep && rep->type == REDIS_REPLY_ARRAY && rep->elements >= 3 && rep->element[0]->type == REDIS_REPLY_STRING &&
        !strcmp(rep->element[0]->str, "master") && rep->element[2]->type == REDIS_REPLY_ARRAY) {
        n = 0;
        for (i = 0; i < rep->element[2]->elements; i++) {
            const redisReply *e = rep->element[2]->element[i];
            if (e->type == REDIS_REPLY_ARRAY && e->elements >= 3 && e->element[2]->type == REDIS_REPLY_STRING &&
                atol(e->element[2]->str) > 0)
                n++;
        }
    }
    if (rep) freeReplyObject(rep);
    return n;
}

static long long xlen(const test_redis *r, const char *key) {
    redisReply *rep = cmd(r, "XLEN %s", key);
    long long n = rep && rep->type == REDIS_REPLY_INTEGER ? rep->integer : -1;
    if (rep) freeReplyObject(rep);
    return n;
}

/* a field of SENTINEL MASTER name (a flat key/value array), -1 if missing */
static long sentinel_field(const test_redis *s, const char *name, const char *key) {
    redisReply *rep = cmd(s, "SENTINEL MASTER %s", name);
    long v = -1;
    size_t i;
    if (rep && rep->type == REDIS_REPLY_ARRAY)
        for (i = 0; i + 1 < rep->elements; i += 2)
            if (rep->element[i]->type == REDIS_REPLY_STRING && !strcmp(rep->element[i]->str, key) &&
                rep->element[i + 1]->type == REDIS_REPLY_STRING)
                v = atol(rep->element[i + 1]->str);
    if (rep) freeReplyObject(rep);
    return v;
}
/* the master port a sentinel names, -1 when it names none */
static int sentinel_master_port(const test_redis *s, const char *name) {
    redisReply *rep = cmd(s, "SENTINEL get-master-addr-by-name %s", name);
    int port = -1;
    if (rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 && rep->element[1]->type == REDIS_REPLY_STRING)
        port = atoi(rep->element[1]->str);
    if (rep) freeReplyObject(rep);
    return port;
}

static int start_sentinel(test_redis *s, const char *name, int master_port, int quorum, int down_ms,
                          const char *extra) {
    char conf[1000];
    snprintf(conf, sizeof conf,
             "sentinel monitor %s 127.0.0.1 %d %d\n"
             "sentinel down-after-milliseconds %s %d\n"
             "sentinel failover-timeout %s 3000\n"
             "sentinel parallel-syncs %s 2\n"
             "sentinel auth-pass %s " MPW "\n%s",
             name, master_port, quorum, name, down_ms, name, name, name, extra ? extra : "");
    return test_redis_start_sentinel(s, conf);
}

#define NODE_CONF "requirepass " MPW "\nmasterauth " MPW "\nrepl-diskless-sync-delay 0\nrepl-ping-replica-period 1\n"

static int start_node(test_redis *r, int master_port) {
    char conf[400];
    if (master_port) snprintf(conf, sizeof conf, NODE_CONF "replicaof 127.0.0.1 %d\n", master_port);
    else snprintf(conf, sizeof conf, NODE_CONF);
    return test_redis_start(r, conf);
}

static void sentinel_url(char *out, size_t size, const int *ports, int n, const char *name, const char *query) {
    int i;
    size_t len = (size_t)snprintf(out, size, "redis+sentinel://:" MPW "@");
    for (i = 0; i < n && len < size; i++) len += (size_t)snprintf(out + len, size - len, "%s127.0.0.1:%d", i ? "," : "", ports[i]);
    if (len < size) snprintf(out + len, size - len, "/%s%s", name, query ? query : "");
}

static rsbus *open_url(const char *url, const char *stream, int wait_replicas, rsbus_error *err) {
    rsbus_config c;
    memset(&c, 0, sizeof c);
    c.url = url;
    c.stream = stream;
    c.publish_only = 1;
    c.connect_timeout_ms = 500;
    c.io_timeout_ms = 1000;
    c.publish_wait_replicas = wait_replicas;
    c.publish_wait_ms = 200;
    return rsbus_open(&c, err);
}

static rsbus_result pub_seq(rsbus *bus, long seq, char id[RSBUS_ID_SIZE]) {
    char data[64];
    rsbus_event ev;
    memset(&ev, 0, sizeof ev);
    snprintf(data, sizeof data, "{\"seq\":%ld}", seq);
    ev.type = "t.seq";
    ev.data = data;
    return rsbus_publish(bus, &ev, id);
}

/* ---- discovery ---- */

TEST(discovery) {
    test_redis m, rep, s[3], rogue;
    int sp[3], i, dead = test_redis__free_port();
    char url[600];
    rsbus_error err;
    rsbus *bus;
    rsbus_server_info sv;
    memset(s, 0, sizeof s);
    REQUIRE(start_node(&m, 0) == 0);
    if (start_node(&rep, m.port) != 0) { test_redis_stop(&m); GIVE_UP("replica started"); }
    WAIT_UNTIL(link_up(&rep) && role_replicas(&m) == 1, 15000);
    for (i = 0; i < 3; i++) {
        /* never fail over here: down-after-milliseconds a minute */
        CHECK(start_sentinel(&s[i], "mm", m.port, 2, 60000, "requirepass " SPW "\nsentinel sentinel-pass " SPW "\n") == 0);
        sp[i] = s[i].port;
    }
    /* a sentinel that names the replica as the master "mm" */
    CHECK(start_sentinel(&rogue, "mm", rep.port, 1, 600000, "requirepass " SPW "\n") == 0);

    /* the first sentinel down (nothing listens on 'dead'): the next one answers and goes first */
    {
        int ports[3];
        ports[0] = dead; ports[1] = sp[1]; ports[2] = sp[2];
        sentinel_url(url, sizeof url, ports, 3, "mm", "?sentinel_password=" SPW);
        bus = open_url(url, "t:disc", 0, &err);
        CHECK(bus != NULL);
        if (!bus) fprintf(stderr, "    open: %s: %s\n", rsbus_result_str(err.code), err.msg);
        if (bus) {
            CHECK_EQ_INT(rsbus_server_info_get(bus, &sv), RSBUS_OK);
            CHECK_EQ_INT(sv.sentinel, 1);
            CHECK_EQ_STR(sv.role, "master");
            CHECK_EQ_INT(sv.replicas, 1);
            {
                char want[64];
                snprintf(want, sizeof want, "127.0.0.1:%d", m.port);
                CHECK_EQ_STR(sv.addr, want);
            }
            CHECK_EQ_INT(bus->url.seeds[0].port, sp[1]);     /* the one that answered, first */
            CHECK_EQ_INT(bus->url.seeds[1].port, dead);   /* the others keep their order */
            CHECK_EQ_INT(bus->url.seeds[2].port, sp[2]);
            CHECK_EQ_INT(pub_seq(bus, 1, NULL), RSBUS_OK);
            rsbus_close(bus);
        }
    }
    /* a master no sentinel knows: RSBUS_E_IO naming it and every sentinel asked */
    sentinel_url(url, sizeof url, sp, 2, "nosuch", "?sentinel_password=" SPW);
    bus = open_url(url, "t:disc", 0, &err);
    CHECK(bus == NULL);
    CHECK_EQ_INT(err.code, RSBUS_E_IO);
    CHECK_CONTAINS(err.msg, "'nosuch'");
    CHECK_CONTAINS(err.msg, "does not know the master");
    {
        char want[64];
        snprintf(want, sizeof want, "127.0.0.1:%d", sp[1]);
        CHECK_CONTAINS(err.msg, want);
    }
    CHECK_NOT_CONTAINS(err.msg, SPW);
    CHECK_NOT_CONTAINS(err.msg, MPW);
    /* a wrong sentinel password, and none at all: RSBUS_E_AUTH, no password in the message */
    sentinel_url(url, sizeof url, sp, 3, "mm", "?sentinel_password=wrong-" SPW);
    bus = open_url(url, "t:disc", 0, &err);
    CHECK(bus == NULL);
    CHECK_EQ_INT(err.code, RSBUS_E_AUTH);
    CHECK_CONTAINS(err.msg, "AUTH refused");
    CHECK_NOT_CONTAINS(err.msg, SPW);
    CHECK_NOT_CONTAINS(err.msg, MPW);
    sentinel_url(url, sizeof url, sp, 1, "mm", NULL);
    bus = open_url(url, "t:disc", 0, &err);
    CHECK(bus == NULL);
    CHECK_EQ_INT(err.code, RSBUS_E_AUTH);
    CHECK_CONTAINS(err.msg, "NOAUTH");
    /* a wrong password for the master: the master's own refusal */
    snprintf(url, sizeof url, "redis+sentinel://:wrong@127.0.0.1:%d/mm?sentinel_password=" SPW, sp[0]);
    bus = open_url(url, "t:disc", 0, &err);
    CHECK(bus == NULL);
    CHECK_EQ_INT(err.code, RSBUS_E_AUTH);
    /* the rogue names the replica: ROLE says so, and the next sentinel is asked */
    {
        int ports[2];
        ports[0] = rogue.port; ports[1] = sp[0];
        sentinel_url(url, sizeof url, ports, 2, "mm", "?sentinel_password=" SPW);
        bus = open_url(url, "t:disc", 0, &err);
        CHECK(bus != NULL);
        if (!bus) fprintf(stderr, "    open: %s: %s\n", rsbus_result_str(err.code), err.msg);
        if (bus) {
            CHECK_EQ_INT(rsbus_server_info_get(bus, &sv), RSBUS_OK);
            CHECK_EQ_STR(sv.role, "master");
            CHECK_EQ_INT(bus->url.seeds[0].port, sp[0]);
            rsbus_close(bus);
        }
        sentinel_url(url, sizeof url, ports, 1, "mm", "?sentinel_password=" SPW);
        bus = open_url(url, "t:disc", 0, &err);
        CHECK(bus == NULL);
        CHECK_EQ_INT(err.code, RSBUS_E_IO);
        CHECK_CONTAINS(err.msg, "a replica");
        CHECK_CONTAINS(err.msg, "'mm'");
    }
    /* health: publish_wait_replicas above the replicas in sync is DEGRADED, and says which master */
    sentinel_url(url, sizeof url, sp, 3, "mm", "?sentinel_password=" SPW);
    bus = open_url(url, "t:disc", 2, &err);
    CHECK(bus != NULL);
    if (bus) {
        char why[300];
        rsbus_stats st;
        CHECK_EQ_INT(rsbus_health_check(bus, 1000, why, sizeof why), RSBUS_DEGRADED);
        CHECK_CONTAINS(why, "1 replica in sync, publish_wait_replicas is 2");
        /* two replicas asked, one there: written, the id filled, RSBUS_E_REPLICAS, counted */
        {
            char id[RSBUS_ID_SIZE] = "";
            CHECK_EQ_INT(pub_seq(bus, 2, id), RSBUS_E_REPLICAS);
            CHECK(id[0] != 0);
            CHECK_CONTAINS(rsbus_errmsg(bus), "1 of 2 replicas");
        }
        rsbus_stats_get(bus, &st);
        CHECK_EQ_INT(st.replica_shortfalls, 1);
        CHECK_EQ_INT(st.published, 1);
        rsbus_close(bus);
    }
    bus = open_url(url, "t:disc", 1, &err);
    CHECK(bus != NULL);
    if (bus) {
        char why[300], id[RSBUS_ID_SIZE] = "";
        rsbus_event evs[3];
        char ids[3][RSBUS_ID_SIZE];
        CHECK_EQ_INT(rsbus_health_check(bus, 1000, why, sizeof why), RSBUS_HEALTHY);
        CHECK_EQ_INT(pub_seq(bus, 3, id), RSBUS_OK);
        memset(evs, 0, sizeof evs);
        for (i = 0; i < 3; i++) { evs[i].type = "t.b"; evs[i].data = "{}"; }
        CHECK_EQ_INT(rsbus_publish_batch(bus, evs, 3, ids), RSBUS_OK);
        rsbus_close(bus);
    }
    test_redis_stop(&rogue);
    for (i = 0; i < 3; i++) test_redis_stop(&s[i]);
    test_redis_stop(&rep);
    test_redis_stop(&m);
}

/* ---- replicated publishing on a standalone master with a replica (no sentinel) ---- */

static rsbus_verdict dead_handler(const rsbus_msg *m, void *user) {
    (void)m;
    ++*(int *)user;
    return RSBUS_DEAD;
}

TEST(standalone_wait) {
    test_redis m, rep;
    rsbus_config c;
    rsbus_error err;
    rsbus *bus, *sp;
    rsbus_event evs[3];
    rsbus_field fl[2];
    rsbus_stats st;
    char ids[3][RSBUS_ID_SIZE], id[RSBUS_ID_SIZE], path[300], metrics[8192];
    size_t sent = 0, pend = 0;
    int i, calls = 0;
    const char *tmp = getenv("TMPDIR");
    redisReply *r;
    /* the master refuses writes without a replica (min-replicas-to-write 1): NOREPLICAS */
    REQUIRE(test_redis_start(&m, NODE_CONF "min-replicas-to-write 1\nmin-replicas-max-lag 10\n") == 0);
    memset(&c, 0, sizeof c);
    c.url = m.tcp_url;
    c.stream = "t:sa";
    c.publish_only = 1;
    c.publish_wait_replicas = 1;
    c.connect_timeout_ms = 500;
    c.io_timeout_ms = 1000;
    {
        static char url[128];
        snprintf(url, sizeof url, "redis://:" MPW "@127.0.0.1:%d", m.port);
        c.url = url;
    }
    bus = rsbus_open(&c, &err);
    if (!bus) fprintf(stderr, "    open: %s\n", err.msg);
    if (!bus) { test_redis_stop(&m); REQUIRE(bus != NULL); }
    /* nothing written: RSBUS_E_IO (transient), Redis's NOREPLICAS text in the message */
    CHECK_EQ_INT(pub_seq(bus, 1, id), RSBUS_E_IO);
    CHECK_CONTAINS(rsbus_errmsg(bus), "NOREPLICAS");
    memset(evs, 0, sizeof evs);
    for (i = 0; i < 3; i++) { evs[i].type = "t.b"; evs[i].data = "{\"b\":1}"; }
    CHECK_EQ_INT(rsbus_publish_batch(bus, evs, 3, ids), RSBUS_E_IO);
    CHECK_EQ_INT(xlen(&m, "t:sa"), 0);
    /* a spool bus spools on NOREPLICAS */
    snprintf(path, sizeof path, "%s/sa.spool", tmp && *tmp ? tmp : "/tmp");
    unlink(path);
    c.spool_path = path;
    sp = rsbus_open(&c, &err);
    CHECK(sp != NULL);
    if (sp) {
        CHECK_EQ_INT(pub_seq(sp, 2, id), RSBUS_SPOOLED);
        CHECK_EQ_INT(rsbus_spool_pending(sp, &pend, NULL), RSBUS_OK);
        CHECK_EQ_INT(pend, 1);
    }
    /* a replica comes: the spool goes out with WAIT met, and publishing works */
    if (start_node(&rep, m.port) != 0) { rsbus_close(bus); rsbus_close(sp); test_redis_stop(&m); GIVE_UP("replica"); }
    WAIT_UNTIL(link_up(&rep) && role_replicas(&m) == 1, 15000);
    if (sp) {
        CHECK_EQ_INT(rsbus_spool_flush(sp, &sent), RSBUS_OK);
        CHECK_EQ_INT(sent, 1);
        rsbus_stats_get(sp, &st);
        CHECK_EQ_INT(st.published, 1);
        CHECK_EQ_INT(st.replica_shortfalls, 0);
    }
    CHECK_EQ_INT(pub_seq(bus, 3, id), RSBUS_OK);
    CHECK_EQ_INT(rsbus_publish_batch(bus, evs, 3, ids), RSBUS_OK);
    rsbus_close(bus);
    /* two replicas asked of one: every path answers RSBUS_E_REPLICAS, ids filled, nothing spooled */
    r = cmd(&m, "CONFIG SET min-replicas-to-write 0");
    if (r) freeReplyObject(r);
    c.spool_path = NULL;
    c.publish_wait_replicas = 2;
    c.publish_wait_ms = 50;
    bus = rsbus_open(&c, &err);
    REQUIRE(bus != NULL);
    memset(ids, 0, sizeof ids);
    CHECK_EQ_INT(rsbus_publish_batch(bus, evs, 3, ids), RSBUS_E_REPLICAS);
    CHECK(ids[0][0] && ids[1][0] && ids[2][0]);
    CHECK_CONTAINS(rsbus_errmsg(bus), "1 of 2 replicas");
    fl[0].name = "a"; fl[0].name_len = 0; fl[0].value = "1"; fl[0].value_len = 0;
    fl[1].name = "b"; fl[1].name_len = 0; fl[1].value = "2"; fl[1].value_len = 0;
    id[0] = 0;
    CHECK_EQ_INT(rsbus_publish_fields(bus, NULL, fl, 2, id), RSBUS_E_REPLICAS);
    CHECK(id[0] != 0);
    rsbus_stats_get(bus, &st);
    CHECK_EQ_INT(st.replica_shortfalls, 2);
    CHECK_EQ_INT(st.published, 4);
    CHECK_EQ_INT(st.publish_errors, 0);
    CHECK(rsbus_metrics_text(bus, metrics, sizeof metrics) < sizeof metrics);
    CHECK_CONTAINS(metrics, "rsbus_replica_shortfalls_total");
    if (sp) {
        rsbus_close(sp);
        c.spool_path = path;
        sp = rsbus_open(&c, &err);
        CHECK(sp != NULL);
        if (sp) {
            CHECK_EQ_INT(pub_seq(sp, 4, id), RSBUS_E_REPLICAS);   /* in Redis: not spooled */
            CHECK_EQ_INT(rsbus_spool_pending(sp, &pend, NULL), RSBUS_OK);
            CHECK_EQ_INT(pend, 0);
            rsbus_close(sp);
        }
    }
    rsbus_close(bus);
    /* the DLQ move is followed by WAIT too: a shortfall is counted and logged, the move stands */
    c.spool_path = NULL;
    c.publish_only = 0;
    c.group = "g";
    c.group_start = "0";
    c.max_retries = -1;
    c.stream = "t:sa-dlq";
    bus = rsbus_open(&c, &err);
    REQUIRE(bus != NULL);
    rsbus_subscribe(bus, "*", dead_handler, &calls);
    c.publish_wait_replicas = 0;
    c.publish_only = 1;
    sp = rsbus_open(&c, &err);
    REQUIRE(sp != NULL);
    CHECK_EQ_INT(pub_seq(sp, 5, id), RSBUS_OK);
    rsbus_close(sp);
    CHECK_EQ_INT(rsbus_poll(bus, 1000), 1);
    CHECK_EQ_INT(calls, 1);
    rsbus_stats_get(bus, &st);
    CHECK_EQ_INT(st.dead_lettered, 1);
    CHECK_EQ_INT(st.replica_shortfalls, 1);
    WAIT_UNTIL(xlen(&rep, "{t:sa-dlq}:dlq") == 1, 5000);   /* the move reached the replica */
    rsbus_close(bus);
    unlink(path);
    test_redis_stop(&rep);
    test_redis_stop(&m);
}

/* ---- the demoted master: READONLY, then the sentinels are asked again ---- */

TEST(demoted_master) {
    test_redis a, b, s;
    char url[300], id[RSBUS_ID_SIZE];
    rsbus_error err;
    rsbus *bus;
    rsbus_result r;
    redisReply *rep;
    rsbus_server_info sv;
    REQUIRE(start_node(&a, 0) == 0);
    if (start_node(&b, a.port) != 0) { test_redis_stop(&a); GIVE_UP("replica started"); }
    WAIT_UNTIL(link_up(&b) && role_replicas(&a) == 1, 15000);
    /* one sentinel that never fails over on its own: the test moves the master itself */
    if (start_sentinel(&s, "dm", a.port, 1, 600000, NULL) != 0) { test_redis_stop(&b); test_redis_stop(&a); GIVE_UP("sentinel"); }
    snprintf(url, sizeof url, "redis+sentinel://:" MPW "@127.0.0.1:%d/dm", s.port);
    bus = open_url(url, "t:dm", 1, &err);
    if (!bus) fprintf(stderr, "    open: %s: %s\n", rsbus_result_str(err.code), err.msg);
    REQUIRE(bus != NULL);
    CHECK_EQ_INT(pub_seq(bus, 1, id), RSBUS_OK);            /* on a, confirmed by b */
    /* b leaves a: a has no replica, so a publish is written to a alone and is not reported OK */
    rep = cmd(&b, "REPLICAOF NO ONE");
    if (rep) freeReplyObject(rep);
    WAIT_UNTIL(connected_replicas(&a) == 0 && role_replicas(&a) == 0, 10000);
    r = pub_seq(bus, 2, id);
    CHECK_EQ_INT(r, RSBUS_E_REPLICAS);
    CHECK(id[0] != 0);
    /* a is demoted under the bus's open connection (no CLIENT KILL): READONLY, an RSBUS_E_IO */
    rep = cmd(&a, "REPLICAOF 127.0.0.1 %d", b.port);
    if (rep) freeReplyObject(rep);
    WAIT_UNTIL(link_up(&a), 15000);
    r = pub_seq(bus, 3, id);
    CHECK_EQ_INT(r, RSBUS_E_IO);
    CHECK_CONTAINS(rsbus_errmsg(bus), "READONLY");
    CHECK_EQ_INT(bus->sentinel_stale, 1);
    /* the sentinel still names a: the next call asks it, finds a replica, and says so */
    r = pub_seq(bus, 4, id);
    CHECK_EQ_INT(r, RSBUS_E_IO);
    CHECK_CONTAINS(rsbus_errmsg(bus), "a replica");
    CHECK_CONTAINS(rsbus_errmsg(bus), "'dm'");
    /* the sentinel moves to b (as after a failover): the next call publishes there */
    rep = cmd(&s, "SENTINEL REMOVE dm");
    if (rep) freeReplyObject(rep);
    rep = cmd(&s, "SENTINEL MONITOR dm 127.0.0.1 %d 1", b.port);
    if (rep) freeReplyObject(rep);
    rep = cmd(&s, "SENTINEL SET dm auth-pass " MPW);
    if (rep) freeReplyObject(rep);
    WAIT_UNTIL(sentinel_master_port(&s, "dm") == b.port, 5000);
    /* b has a as its replica again: WAIT 1 is met */
    WAIT_UNTIL((r = pub_seq(bus, 5, id)) == RSBUS_OK, 10000);
    CHECK_EQ_INT(rsbus_server_info_get(bus, &sv), RSBUS_OK);
    {
        char want[64];
        snprintf(want, sizeof want, "127.0.0.1:%d", b.port);
        CHECK_EQ_STR(sv.addr, want);
    }
    CHECK_EQ_INT(bus->sentinel_stale, 0);
    /* what returned OK is on b: seq 1 (replicated before) and 5; seq 2 (a alone) is gone with a's resync */
    rep = cmd(&b, "XRANGE t:dm - +");
    CHECK(rep && rep->type == REDIS_REPLY_ARRAY);
    if (rep && rep->type == REDIS_REPLY_ARRAY) {
        size_t k, j;
        int have1 = 0, have5 = 0;
        for (k = 0; k < rep->elements; k++) {
            const redisReply *f = rep->element[k]->element[1];
            for (j = 0; j + 1 < f->elements; j += 2)
                if (!strcmp(f->element[j]->str, "data")) {
                    have1 |= !strcmp(f->element[j + 1]->str, "{\"seq\":1}");
                    have5 |= !strcmp(f->element[j + 1]->str, "{\"seq\":5}");
                }
        }
        CHECK(have1 && have5);
    }
    if (rep) freeReplyObject(rep);
    rsbus_close(bus);
    test_redis_stop(&s);
    test_redis_stop(&b);
    test_redis_stop(&a);
}

#ifdef RSBUS_TLS
/* ---- rediss+sentinel:// (hiredis 1.x with TLS): the sentinel and the master speak TLS only ---- */

static char certdir[300];
static void remove_certdir(void) { if (certdir[0]) test_redis__rmtree(certdir); }

static int make_certs(void) {
    char cmd[2400];
    FILE *f;
    const char *base = getenv("TMPDIR");
    snprintf(certdir, sizeof certdir, "%s/rsbus-sentinel-tls.XXXXXX", base && *base && strlen(base) < 200 ? base : "/tmp");
    if (!mkdtemp(certdir)) { certdir[0] = 0; return -1; }
    atexit(remove_certdir);
    snprintf(cmd, sizeof cmd, "%s/ca.cnf", certdir);
    if (!(f = fopen(cmd, "w"))) return -1;
    fputs("[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = rsbus test\n"
          "[v3_ca]\nbasicConstraints = critical,CA:TRUE\nkeyUsage = critical,keyCertSign,cRLSign\n"
          "[v3_server]\nbasicConstraints = CA:FALSE\nkeyUsage = critical,digitalSignature\n"
          "extendedKeyUsage = serverAuth,clientAuth\nsubjectAltName = DNS:localhost,IP:127.0.0.1\n", f);
    if (fclose(f) != 0) return -1;
    snprintf(cmd, sizeof cmd,
             "cd '%s' && { openssl req -x509 -new -config ca.cnf -extensions v3_ca -newkey ec -pkeyopt "
             "ec_paramgen_curve:prime256v1 -nodes -keyout ca.key -out ca.crt -days 2 -subj '/CN=rsbus test CA' && "
             "openssl req -new -config ca.cnf -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
             "-keyout server.key -out server.csr -subj /CN=localhost && "
             "openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -set_serial 2 -days 2 -out server.crt "
             "-extfile ca.cnf -extensions v3_server; } >openssl.log 2>&1", certdir);
    if (system(cmd) != 0) { fprintf(stderr, "    openssl failed (see %s/openssl.log)\n", certdir); return -1; }
    return 0;
}

TEST(sentinel_tls) {
    test_redis m, s;
    char tls[1200], conf[1800], url[900];
    rsbus_error err;
    rsbus *bus;
    rsbus_server_info sv;
    REQUIRE(make_certs() == 0);
    snprintf(tls, sizeof tls, "tls-cert-file %s/server.crt\ntls-key-file %s/server.key\ntls-ca-cert-file %s/ca.crt\n"
             "tls-auth-clients no\ntls-replication yes\n", certdir, certdir, certdir);
    snprintf(conf, sizeof conf, "%s" NODE_CONF, tls);
    REQUIRE(test_redis_start_tls(&m, conf) == 0);
    snprintf(conf, sizeof conf, "%ssentinel monitor tm 127.0.0.1 %d 1\nsentinel down-after-milliseconds tm 600000\n"
             "sentinel auth-pass tm " MPW "\n", tls, m.port);
    if (test_redis__start(&s, conf, 1, 1) != 0) { test_redis_stop(&m); GIVE_UP("TLS sentinel started"); }
    snprintf(url, sizeof url, "rediss+sentinel://:" MPW "@127.0.0.1:%d/tm?ca=%s/ca.crt", s.port, certdir);
    bus = open_url(url, "t:tls", 0, &err);
    if (!bus) fprintf(stderr, "    open: %s: %s\n", rsbus_result_str(err.code), err.msg);
    CHECK(bus != NULL);
    if (bus) {
        CHECK_EQ_INT(pub_seq(bus, 1, NULL), RSBUS_OK);
        CHECK_EQ_INT(rsbus_server_info_get(bus, &sv), RSBUS_OK);
        CHECK_EQ_STR(sv.role, "master");
        CHECK_EQ_INT(sv.sentinel, 1);
        rsbus_close(bus);
    }
    /* a sentinel url without TLS to a TLS-only sentinel: refused, naming the master and the sentinel */
    snprintf(url, sizeof url, "redis+sentinel://:" MPW "@127.0.0.1:%d/tm", s.port);
    bus = open_url(url, "t:tls", 0, &err);
    CHECK(bus == NULL);
    CHECK_CONTAINS(err.msg, "'tm'");
    CHECK_NOT_CONTAINS(err.msg, MPW);
    test_redis_stop(&s);
    test_redis_stop(&m);
}
#endif

/* ---- failover rounds ---- */

#define MAXSEQ 400000

typedef struct consumer {
    pthread_t th;
    char url[600], stream[64];
    volatile sig_atomic_t stop;
    pthread_mutex_t mu;
    unsigned char *seen;          /* a bit per seq */
    long after_seq;               /* first seq published after the kill (0: not yet) */
    int64_t first_after_ms;       /* when the consumer first handled one of those */
    rsbus_result run_result;
    int opened;
} consumer;

static rsbus_verdict on_event(const rsbus_msg *m, void *user) {
    consumer *c = (consumer *)user;
    rsbus_jval v;
    int64_t seq;
    if (rsbus_json_get(m->data, m->data_len, "seq", &v) != RSBUS_OK || rsbus_jval_int(&v, &seq) != RSBUS_OK ||
        seq < 0 || seq >= MAXSEQ)
        return RSBUS_ACK;
    pthread_mutex_lock(&c->mu);
    c->seen[seq >> 3] = (unsigned char)(c->seen[seq >> 3] | (1u << (seq & 7)));
    if (c->after_seq && seq >= c->after_seq && !c->first_after_ms) c->first_after_ms = test_now_ms();
    pthread_mutex_unlock(&c->mu);
    return RSBUS_ACK;
}

static void *consumer_main(void *arg) {
    consumer *c = (consumer *)arg;
    rsbus_config cfg;
    rsbus_error err;
    rsbus *bus;
    memset(&cfg, 0, sizeof cfg);
    cfg.url = c->url;
    cfg.stream = c->stream;
    cfg.group = "g";
    cfg.consumer = "c1";
    cfg.group_start = "0";
    cfg.connect_timeout_ms = 500;
    cfg.io_timeout_ms = 1000;
    cfg.block_ms = 200;
    bus = rsbus_open(&cfg, &err);
    if (!bus) {
        fprintf(stderr, "    consumer open: %s: %s\n", rsbus_result_str(err.code), err.msg);
        c->opened = -1;
        return NULL;
    }
    rsbus_subscribe(bus, "*", on_event, c);
    c->opened = 1;
    c->run_result = rsbus_run(bus, &c->stop);
    rsbus_close(bus);
    return NULL;
}

static int seen_has(consumer *c, long seq) {
    int v;
    pthread_mutex_lock(&c->mu);
    v = (c->seen[seq >> 3] >> (seq & 7)) & 1;
    pthread_mutex_unlock(&c->mu);
    return v;
}

typedef struct topo {
    test_redis node[3];
    int up[3];
    test_redis s[3];
    char url[600];
} topo;

static int topo_master(const topo *t) {
    int port = sentinel_master_port(&t->s[0], "fo"), i;
    for (i = 0; i < 3; i++) if (t->up[i] && t->node[i].port == port) return i;
    return -1;
}
/* every node up and in sync, the sentinels agreeing on the master and knowing both replicas */
static int topo_ready(topo *t) {
    int m = topo_master(t), i;
    if (m < 0) return 0;
    for (i = 0; i < 3; i++) if (i != m && (!t->up[i] || !link_up(&t->node[i]))) return 0;
    for (i = 0; i < 3; i++) {
        if (sentinel_master_port(&t->s[i], "fo") != t->node[m].port) return 0;
        if (sentinel_field(&t->s[i], "fo", "num-other-sentinels") != 2) return 0;
        if (sentinel_field(&t->s[i], "fo", "num-slaves") < 2) return 0;
        if (sentinel_field(&t->s[i], "fo", "flags") == -1) return 0;
    }
    return connected_replicas(&t->node[m]) == 2 && role_replicas(&t->node[m]) == 2;
}

static int topo_start(topo *t) {
    int i, ports[3];
    memset(t, 0, sizeof *t);
    if (start_node(&t->node[0], 0) != 0) return -1;
    t->up[0] = 1;
    for (i = 1; i < 3; i++) {
        if (start_node(&t->node[i], t->node[0].port) != 0) return -1;
        t->up[i] = 1;
    }
    for (i = 0; i < 3; i++) {
        if (start_sentinel(&t->s[i], "fo", t->node[0].port, 2, 1000, NULL) != 0) return -1;
        ports[i] = t->s[i].port;
    }
    sentinel_url(t->url, sizeof t->url, ports, 3, "fo", NULL);
    return 0;
}
static void topo_stop(topo *t) {
    int i;
    for (i = 0; i < 3; i++) if (t->s[i].dir[0]) test_redis_stop(&t->s[i]);
    for (i = 0; i < 3; i++) if (t->node[i].dir[0]) test_redis_stop(&t->node[i]);
}

typedef struct round_result {
    long ok, replicas, failed, lost, gone;   /* lost: OK but never consumed; gone: OK but not in the new
                                               master's stream (a consumer may have read it from the old one) */
    int64_t pub_outage_ms, written_outage_ms, consume_outage_ms;
} round_result;


/* One round: consumer up, publish ~1 s, (pause a replica), SIGKILL the master, publish until 1.5 s after
   the first success after the kill, then check every publish that returned RSBUS_OK was consumed. */
enum { PAUSE_NONE = 0, PAUSE_ONE = 1, PAUSE_BOTH = 2 };
static void failover_round(topo *t, int round, int wait_replicas, int pause, round_result *res) {
    consumer c;
    rsbus_error err;
    rsbus *pub;
    rsbus_stats st;
    unsigned char *okbits;
    long seq = 0, i;
    int m, paused = -1, paused2 = -1, killed = 0;
    int64_t t0, t_kill = 0, t_ok_after = 0, t_written_after = 0, t_checked = 0, deadline;
    char label[96];
    memset(res, 0, sizeof *res);
    snprintf(label, sizeof label, "round %d (%s%s)", round, wait_replicas ? "WAIT 1" : "no WAIT",
             pause == PAUSE_ONE ? ", a replica paused" : pause == PAUSE_BOTH ? ", both replicas paused and cut off, woken at the kill" : "");
    /* the node killed last round comes back (no persistence: empty); the sentinels make it a replica */
    for (i = 0; i < 3; i++)
        if (!t->up[i]) {
            if (test_redis_restart(&t->node[i]) != 0) { GIVE_UP("restart of the old master"); }
            t->up[i] = 1;
        }
    WAIT_UNTIL(topo_ready(t), 30000);
    m = topo_master(t);
    REQUIRE(m >= 0);
    memset(&c, 0, sizeof c);
    pthread_mutex_init(&c.mu, NULL);
    c.seen = (unsigned char *)calloc(MAXSEQ / 8 + 1, 1);
    okbits = (unsigned char *)calloc(MAXSEQ / 8 + 1, 1);
    REQUIRE(c.seen && okbits);
    snprintf(c.url, sizeof c.url, "%s", t->url);
    snprintf(c.stream, sizeof c.stream, "fo:%d", round);
    pub = open_url(t->url, c.stream, wait_replicas, &err);
    if (!pub) fprintf(stderr, "    open: %s: %s\n", rsbus_result_str(err.code), err.msg);
    REQUIRE(pub != NULL);
    REQUIRE(pthread_create(&c.th, NULL, consumer_main, &c) == 0);
    WAIT_UNTIL(c.opened != 0, 10000);
    t0 = test_now_ms();
    deadline = t0 + 30000;
    while (test_now_ms() < deadline && seq < MAXSEQ - 1) {
        int64_t now = test_now_ms();
        rsbus_result r;
        if (!killed && pause != PAUSE_NONE && paused < 0 && now - t0 >= 200) {
            paused = (m + 1) % 3;
            kill(t->node[paused].pid, SIGSTOP);
            if (pause == PAUSE_BOTH) {
                /* both stopped, and their links cut by the master: what it takes from now on stays on the
                   master alone (a stopped replica would still find the stream in its socket buffer) */
                redisReply *k;
                paused2 = (m + 2) % 3;
                kill(t->node[paused2].pid, SIGSTOP);
                k = cmd(&t->node[m], "CLIENT KILL TYPE replica");
                CHECK(k && k->type == REDIS_REPLY_INTEGER && k->integer == 2);
                if (k) freeReplyObject(k);
            }
        }
        if (!killed && now - t0 >= 1200) {
            t_kill = test_now_ms();
            test_redis_kill(&t->node[m]);
            t->up[m] = 0;
            killed = 1;
            /* both paused: they wake now, behind the master by the writes of the pause; one of them is
               promoted without those writes (what returned RSBUS_OK without WAIT then is lost) */
            if (paused2 >= 0) {
                kill(t->node[paused].pid, SIGCONT);
                kill(t->node[paused2].pid, SIGCONT);
                paused = paused2 = -1;
            }
            pthread_mutex_lock(&c.mu);
            c.after_seq = seq + 1;
            pthread_mutex_unlock(&c.mu);
        }
        if (killed && t_ok_after && now - t_ok_after >= 1500) break;
        /* the paused replica wakes once the sentinels named a new master (it was passed over) */
        if (killed && paused >= 0 && now - t_checked >= 100) {
            int nm = topo_master(t);
            t_checked = now;
            if (nm >= 0 && nm != m) {
                CHECK(nm != paused);
                kill(t->node[paused].pid, SIGCONT);
                paused = -1;
            }
        }
        seq++;
        r = pub_seq(pub, seq, NULL);
        if (killed && !t_written_after && (r == RSBUS_OK || r == RSBUS_E_REPLICAS)) t_written_after = test_now_ms();
        if (r == RSBUS_OK) {
            okbits[seq >> 3] = (unsigned char)(okbits[seq >> 3] | (1u << (seq & 7)));
            res->ok++;
            if (killed && !t_ok_after) t_ok_after = test_now_ms();
            test_sleep_ms(1);   /* pace: about 1000 publishes a second */
        } else {
            if (r == RSBUS_E_REPLICAS) res->replicas++;
            else res->failed++;
            test_sleep_ms(20);  /* the master is away: do not hammer the sentinels */
        }
    }
    if (paused >= 0) kill(t->node[paused].pid, SIGCONT);
    if (paused2 >= 0) kill(t->node[paused2].pid, SIGCONT);
    CHECK(killed && t_ok_after);
    rsbus_stats_get(pub, &st);
    CHECK_EQ_INT(st.replica_shortfalls, res->replicas);
    rsbus_close(pub);
    /* every publish that returned RSBUS_OK is consumed */
    {
        int64_t dl = test_now_ms() + 20000;
        for (;;) {
            res->lost = 0;
            for (i = 1; i <= seq; i++)
                if ((okbits[i >> 3] >> (i & 7)) & 1 && !seen_has(&c, i)) res->lost++;
            if (res->lost == 0 || test_now_ms() > dl) break;
            test_sleep_ms(50);
        }
    }
    c.stop = 1;
    pthread_join(c.th, NULL);
    /* every publish that returned RSBUS_OK survived the failover: it is in the new master's stream */
    {
        int nm = topo_master(t);
        unsigned char *in = (unsigned char *)calloc(MAXSEQ / 8 + 1, 1);
        redisReply *x = nm >= 0 ? cmd(&t->node[nm], "XRANGE %s - +", c.stream) : NULL;
        size_t k, j;
        CHECK(in && x && x->type == REDIS_REPLY_ARRAY);
        for (k = 0; in && x && x->type == REDIS_REPLY_ARRAY && k < x->elements; k++) {
            const redisReply *f = x->element[k]->element[1];
            for (j = 0; j + 1 < f->elements; j += 2)
                if (!strcmp(f->element[j]->str, "data")) {
                    long v = -1;
                    if (sscanf(f->element[j + 1]->str, "{\"seq\":%ld}", &v) == 1 && v > 0 && v < MAXSEQ)
                        in[v >> 3] = (unsigned char)(in[v >> 3] | (1u << (v & 7)));
                }
        }
        res->gone = 0;
        for (i = 1; in && i <= seq; i++)
            if ((okbits[i >> 3] >> (i & 7)) & 1 && !((in[i >> 3] >> (i & 7)) & 1)) res->gone++;
        if (x) freeReplyObject(x);
        free(in);
    }
    res->pub_outage_ms = t_ok_after ? t_ok_after - t_kill : -1;
    res->written_outage_ms = t_written_after ? t_written_after - t_kill : -1;
    res->consume_outage_ms = c.first_after_ms ? c.first_after_ms - t_kill : -1;
    fprintf(stderr, "    %s: %ld published OK, %ld RSBUS_E_REPLICAS, %ld failed; of the OK ones %ld not in the "
                    "new master's stream, %ld never consumed; outage (from the kill): first write %lld ms, first "
                    "RSBUS_OK %lld ms, first consumed %lld ms\n",
            label, res->ok, res->replicas, res->failed, res->gone, res->lost, (long long)res->written_outage_ms,
            (long long)res->pub_outage_ms, (long long)res->consume_outage_ms);
    if (wait_replicas) {
        /* WAIT 1 is one copy: with a replica paused, the other one confirms alone, and when Sentinel then
           promotes the paused one (woken, behind) those confirmed writes are gone. Measured and reported,
           not asserted (README, Failover: wait for every replica Sentinel may promote) */
        if (pause != PAUSE_ONE) CHECK_EQ_INT(res->gone, 0);
        CHECK_EQ_INT(res->lost, 0);
    }
    CHECK(res->ok > 500);
    pthread_mutex_destroy(&c.mu);
    free(c.seen);
    free(okbits);
}

static int g_rounds = 3;

TEST(failover_rounds) {
    topo t;
    int r;
    round_result res;
    if (topo_start(&t) != 0) { topo_stop(&t); GIVE_UP("topology started"); }
    for (r = 0; r < g_rounds; r++) {
        /* 0: WAIT + kill; 1: no WAIT, both replicas paused (the contrast, reported); 2: WAIT, both paused;
           3: WAIT, one replica paused (Sentinel wakes it late: the slow one); 4: no WAIT + kill */
        static const int waits[5] = { 1, 0, 1, 1, 0 }, pauses[5] = { PAUSE_NONE, PAUSE_BOTH, PAUSE_BOTH, PAUSE_ONE, PAUSE_NONE };
        int kind = SANITIZED ? 0 : r % 5;
        failover_round(&t, r, waits[kind], pauses[kind], &res);
        if (test__cur_failed) break;
    }
    topo_stop(&t);
}

int main(int argc, char **argv) {
    int i;
    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--rounds") && i + 1 < argc) g_rounds = atoi(argv[++i]);
        else { fprintf(stderr, "usage: %s [--rounds N]\n", argv[0]); return 2; }
    }
    if (g_rounds < 1) g_rounds = 1;
    if (SANITIZED && g_rounds > 1) g_rounds = 1;
    RUN(standalone_wait);
    RUN(discovery);
    RUN(demoted_master);
#ifdef RSBUS_TLS
    RUN(sentinel_tls);
#endif
    RUN(failover_rounds);
    return test_summary("test_sentinel");
}
