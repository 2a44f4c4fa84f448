/* test_interop.c - rsbus and services written in other languages on one redis-server, both directions.

   The peers are real clients of other ecosystems: tests/interop/peer.py (Debian's python3-redis) and
   tests/interop/peer.js (ioredis from the npm registry, installed into build/node by make test; the
   Node half is skipped, saying so, when it cannot be had). Each runs with a timeout.
   - They publish entries in rsbus's layout, eventsource-py's, Watermill redisstream's and arbitrary
     fields with binary bytes, printing every field they wrote (hex); rsbus consumes them and each
     handler checks what it got byte for byte, plus the type, id and data it read through the
     configured field names; dead letters (handler verdicts), a retry, and dedupe by a foreign id field
     happen as for rsbus's own entries, and the peers read the dead letters back and check that every
     original field was kept verbatim.
   - rsbus publishes (rsbus_publish with extra fields, rsbus_publish_batch, rsbus_publish_fields in the
     two foreign layouts) and the peers read and check every field (JSON parsed, ids, timestamps,
     msgpack, order); the stream ids they saw are compared with rsbus's.
   - Hostile entries (missing fields, empty and binary names, 256 and 257 fields, non-UTF-8, values at
     and over max_event_bytes, numeric and invalid types, overlong ids, bad ts) consumed by a strict and
     a foreign group of one stream: each gets its stated outcome, nothing is lost.
   - The checks of rsbus_event.extra, rsbus_publish_fields and the field-name config; the spool. */
#define _POSIX_C_SOURCE 200809L
#define RSBUS_IMPLEMENTATION
#include "../rsbus.h"
#include "test.h"
#include "redis_server.h"
#include "bus_util.h"

#include <ctype.h>
#include <sys/stat.h>

/* ---- the peers ---------------------------------------------------------------------------- */

static char python[64];            /* a python3 that can import redis; "" when none */
static int have_node;              /* node and ioredis are there */
static const char *peer_dir = "tests/interop";
static const char *node_path = "build/node/node_modules";

static int sh_ok(const char *cmd) {
    int st = system(cmd);
    return st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static void find_peers(void) {
    static const char *const pys[] = { "python3", "/usr/bin/python3" };
    char cmd[512];
    size_t i;
    const char *e;
    if ((e = getenv("RSBUS_INTEROP_DIR")) != NULL && e[0]) peer_dir = e;
    if ((e = getenv("RSBUS_NODE_PATH")) != NULL && e[0]) node_path = e;
    for (i = 0; i < sizeof pys / sizeof pys[0] && !python[0]; i++) {
        snprintf(cmd, sizeof cmd, "%s -c 'import redis' >/dev/null 2>&1", pys[i]);
        if (sh_ok(cmd)) snprintf(python, sizeof python, "%s", pys[i]);
    }
    snprintf(cmd, sizeof cmd, "NODE_PATH='%s' node -e \"require('ioredis')\" >/dev/null 2>&1", node_path);
    have_node = sh_ok(cmd);
    if (!python[0]) fprintf(stderr, "  no python3 can import redis: install python3-redis (tests/deps.sh does)\n");
    if (!have_node)
        printf("test_interop: SKIP the Node peer: node or ioredis is missing (make test installs ioredis@5 into "
               "build/node with npm; it could not be had here)\n");
}

/* Runs a peer (0: python, 1: node) with "URL args", at most 60 s; its stdout in out (malloc'd). */
static int run_peer(int lang, const char *args, char **out) {
    char cmd[1024];
    size_t len = 0, cap = 1 << 16;
    FILE *p;
    int st;
    *out = (char *)malloc(cap);
    if (!*out) return -1;
    if (lang == 0)
        snprintf(cmd, sizeof cmd, "timeout -k 5 60 %s %s/peer.py %s %s", python, peer_dir, srv.tcp_url, args);
    else
        snprintf(cmd, sizeof cmd, "NODE_PATH='%s' timeout -k 5 60 node %s/peer.js %s %s", node_path, peer_dir,
                 srv.tcp_url, args);
    p = popen(cmd, "r");
    if (!p) return -1;
    for (;;) {
        size_t n;
        if (cap - len < 4096) {
            char *q = (char *)realloc(*out, cap * 2);
            if (!q) break;
            *out = q;
            cap *= 2;
        }
        n = fread(*out + len, 1, cap - len - 1, p);
        if (n == 0) break;
        len += n;
    }
    (*out)[len] = 0;
    st = pclose(p);
    if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "  peer %s %s: exit %d\n%s", lang ? "node" : "python", args,
                st == -1 ? -1 : WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st), *out);
        return -1;
    }
    return 0;
}
static const char *lang_name(int lang) { return lang ? "node" : "python"; }
static int lang_on(int lang) { return lang ? have_node : python[0] != 0; }

/* ---- the manifest of what a peer published ------------------------------------------------- */

#define MAXE 64
#define MAXF 8
typedef struct pentry {
    char kind[8], stream[32], sid[RSBUS_ID_SIZE];
    size_t nf;
    char *name[MAXF], *value[MAXF];
    size_t nlen[MAXF], vlen[MAXF];
    int calls, dead, last_deliveries;
} pentry;
static pentry ents[MAXE];
static size_t nents;

static int unhex(const char *s, size_t n, char **out, size_t *len) {
    size_t i;
    if (n % 2) return 0;
    *out = (char *)malloc(n / 2 + 1);
    if (!*out) return 0;
    for (i = 0; i < n / 2; i++) {
        unsigned v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1 || !isxdigit((unsigned char)s[2 * i]) || !isxdigit((unsigned char)s[2 * i + 1]))
            return 0;
        (*out)[i] = (char)v;
    }
    (*out)[n / 2] = 0;
    *len = n / 2;
    return 1;
}
/* "E kind stream sid name:value ..." lines into ents[]; returns how many were read. */
static size_t parse_manifest(const char *text) {
    size_t got = 0;
    const char *line = text;
    while (line && *line) {
        const char *end = strchr(line, '\n');
        size_t ll = end ? (size_t)(end - line) : strlen(line);
        if (ll > 2 && line[0] == 'E' && line[1] == ' ' && nents < MAXE) {
            pentry *e = &ents[nents];
            char buf[8192];
            char *tok, *save = NULL;
            int k = 0;
            memset(e, 0, sizeof *e);
            if (ll >= sizeof buf) return got;
            memcpy(buf, line, ll);
            buf[ll] = 0;
            for (tok = strtok_r(buf, " ", &save); tok; tok = strtok_r(NULL, " ", &save), k++) {
                if (k == 1) snprintf(e->kind, sizeof e->kind, "%s", tok);
                else if (k == 2) snprintf(e->stream, sizeof e->stream, "%s", tok);
                else if (k == 3) snprintf(e->sid, sizeof e->sid, "%s", tok);
                else if (k >= 4 && e->nf < MAXF) {
                    char *colon = strchr(tok, ':');
                    if (!colon) return got;
                    if (!unhex(tok, (size_t)(colon - tok), &e->name[e->nf], &e->nlen[e->nf]) ||
                        !unhex(colon + 1, strlen(colon + 1), &e->value[e->nf], &e->vlen[e->nf]))
                        return got;
                    e->nf++;
                }
            }
            nents++;
            got++;
        }
        line = end ? end + 1 : NULL;
    }
    return got;
}
static void free_manifest(void) {
    size_t i, k;
    for (i = 0; i < nents; i++)
        for (k = 0; k < ents[i].nf; k++) { free(ents[i].name[k]); free(ents[i].value[k]); }
    nents = 0;
}
static pentry *find_entry(const char *stream, const char *sid) {
    size_t i;
    for (i = 0; i < nents; i++)
        if (!strcmp(ents[i].stream, stream) && !strcmp(ents[i].sid, sid)) return &ents[i];
    return NULL;
}
/* The value of a field of a manifest entry, or NULL. */
static const char *pvalue(const pentry *e, const char *name, size_t *len) {
    size_t k;
    for (k = 0; k < e->nf; k++)
        if (e->nlen[k] == strlen(name) && !memcmp(e->name[k], name, e->nlen[k])) { *len = e->vlen[k]; return e->value[k]; }
    return NULL;
}
static int same_fields(const pentry *e, const rsbus_field *f, size_t n) {
    size_t k;
    if (n != e->nf) return 0;
    for (k = 0; k < n; k++)
        if (f[k].name_len != e->nlen[k] || memcmp(f[k].name, e->name[k], e->nlen[k]) || f[k].value_len != e->vlen[k] ||
            memcmp(f[k].value, e->value[k], e->vlen[k]) || f[k].name[f[k].name_len] || f[k].value[f[k].value_len])
            return 0;
    return 1;
}

/* ---- consuming what the peers published ---------------------------------------------------- */

static int handler_errors;
#define HCHECK(c) do { if (!(c)) { handler_errors++; fprintf(stderr, "  handler %s: %s:%d: %s\n", m->stream_id, \
                                                                   __FILE__, __LINE__, #c); } } while (0)

static rsbus_verdict peer_handler(const rsbus_msg *m, void *user) {
    const char *kind = (const char *)user;
    pentry *e = find_entry(m->stream, m->stream_id);
    size_t len = 0;
    const char *v;
    HCHECK(e != NULL);
    if (!e) return RSBUS_DEAD;
    HCHECK(!strcmp(e->kind, kind));
    e->calls++;
    e->last_deliveries = (int)m->deliveries;
    HCHECK(same_fields(e, m->fields, m->field_count));   /* every field, byte for byte, in order */
    if (!strcmp(kind, "rsbus")) {
        v = pvalue(e, "type", &len);
        HCHECK(v && m->type && strlen(m->type) == len && !memcmp(m->type, v, len));
        v = pvalue(e, "id", &len);
        HCHECK(v && m->id && !strcmp(m->id, v));
        v = pvalue(e, "ts", &len);
        HCHECK(v && m->ts_ms == strtoll(v, NULL, 10));
        HCHECK(m->version == 2);
        v = pvalue(e, "data", &len);
        HCHECK(v && m->data_len == len && !memcmp(m->data, v, len));
        v = pvalue(e, "key", &len);
        HCHECK(v && m->key && !strcmp(m->key, v));
        v = rsbus_msg_field(m, "x-origin", &len);
        HCHECK(v && len == 2);
        return RSBUS_ACK;
    }
    if (!strcmp(kind, "es")) {
        v = pvalue(e, "event_type", &len);
        HCHECK(v && !strcmp(m->type, v));
        HCHECK(rsbus_msg_field(m, "event_type", NULL) == m->type);
        v = pvalue(e, "event_id", &len);
        HCHECK(v && m->id && !strcmp(m->id, v));
        v = pvalue(e, "payload", &len);
        HCHECK(v && m->data && m->data_len == len && !memcmp(m->data, v, len));
        HCHECK(rsbus_json_validate(m->data, m->data_len, NULL) == RSBUS_OK);
        HCHECK(m->ts_ms == 0 && m->version == 1 && !m->key);
        if (!strcmp(m->type, "OrderRejected")) { snprintf(m->reason, RSBUS_REASON_SIZE, "rejected by the test"); return RSBUS_DEAD; }
        if (!strcmp(m->type, "OrderRetried") && m->deliveries == 1) return RSBUS_RETRY;
        return RSBUS_ACK;
    }
    if (!strcmp(kind, "wm")) {
        HCHECK(m->type && m->type[0] == 0);
        v = pvalue(e, "_watermill_message_uuid", &len);
        HCHECK(v && m->id && !strcmp(m->id, v) && len == 36);
        v = pvalue(e, "payload", &len);
        HCHECK(v && m->data && m->data_len == len && !memcmp(m->data, v, len));
        if (m->data_len == 14 && !memcmp(m->data, "dead letter me", 14)) return RSBUS_DEAD;
        return RSBUS_ACK;
    }
    HCHECK(!strcmp(kind, "raw"));
    HCHECK(m->type && !m->type[0] && !m->id && !m->data && m->data_len == 0);
    v = rsbus_msg_field(m, "empty", &len);
    HCHECK(v && len == 0);
    return RSBUS_ACK;
}

static rsbus *open_peer_bus(const char *stream, int foreign, const char *tf, const char *idf, const char *df) {
    rsbus_config c = test_cfg(stream, "g", "c1");
    c.accept_foreign = foreign;
    c.type_field = tf; c.id_field = idf; c.data_field = df;
    c.retry_backoff_ms = 10;
    c.dedupe_ttl_ms = 60000;
    return open_cfg(&c);
}

static size_t count_kind(const char *kind) {
    size_t i, n = 0;
    for (i = 0; i < nents; i++) n += !strcmp(ents[i].kind, kind);
    return n;
}

TEST(peers_publish_rsbus_consumes_byte_for_byte) {
    static char kinds[4][8] = { "rsbus", "es", "wm", "raw" };
    static const char *const streams[4] = { "ix:rsbus", "ix:es", "ix:wm", "ix:raw" };
    rsbus *b[4];
    int lang, k, npeers = 0;
    char *out = NULL;
    size_t i;
    rsbus_stats st;
    int64_t deadline;
    free_manifest();
    handler_errors = 0;
    REQUIRE(python[0] != 0);
    for (lang = 0; lang < 2; lang++) {
        char args[64];
        if (!lang_on(lang)) continue;
        snprintf(args, sizeof args, "publish %s", lang ? "js" : "py");
        CHECK(run_peer(lang, args, &out) == 0);
        CHECK_EQ_INT(parse_manifest(out), 12);
        CHECK_CONTAINS(out, "OK published");
        free(out);
        npeers++;
    }
    REQUIRE(nents == (size_t)(12 * npeers));
    b[0] = open_peer_bus("ix:rsbus", 0, NULL, NULL, NULL);
    b[1] = open_peer_bus("ix:es", 1, "event_type", "event_id", "payload");
    b[2] = open_peer_bus("ix:wm", 1, NULL, "_watermill_message_uuid", "payload");
    b[3] = open_peer_bus("ix:raw", 1, NULL, NULL, NULL);
    for (k = 0; k < 4; k++) {
        REQUIRE(b[k] != NULL);
        CHECK(rsbus_subscribe(b[k], "*", peer_handler, kinds[k]) > 0);
    }
    /* poll and claim (the retry) until every group has nothing pending and the retried entry ran twice */
    deadline = test_now_ms() + 15000;
    for (;;) {
        int busy = 0;
        for (k = 0; k < 4; k++) {
            (void)rsbus_poll(b[k], 0);
            (void)rsbus_claim(b[k], 60000, 0, NULL);
            busy |= pending_of(streams[k], "g") != 0;
        }
        for (i = 0; i < nents; i++) if (ents[i].calls == 0 && strcmp(ents[i].kind, "wm") != 0) busy = 1;
        if (!busy || test_now_ms() > deadline) break;
        test_sleep_ms(5);
    }
    CHECK_EQ_INT(handler_errors, 0);
    for (i = 0; i < nents; i++) {
        const pentry *e = &ents[i];
        size_t len;
        const char *et = pvalue(e, "event_type", &len);
        const char *uid = pvalue(e, "_watermill_message_uuid", &len);
        int repeat = 0;
        size_t j;
        for (j = 0; uid && j < i; j++) {   /* a Watermill publisher's retry: the same uuid again */
            size_t ul;
            const char *u2 = pvalue(&ents[j], "_watermill_message_uuid", &ul);
            if (u2 && ul == len && !memcmp(u2, uid, len)) repeat = 1;
        }
        if (et && !strcmp(et, "OrderRetried")) { CHECK_EQ_INT(e->calls, 2); CHECK_EQ_INT(e->last_deliveries, 2); }
        else if (repeat) CHECK_EQ_INT(e->calls, 0);                                       /* deduped */
        else CHECK_EQ_INT(e->calls, 1);
    }
    CHECK_EQ_INT(count_kind("rsbus"), 3 * npeers);
    rsbus_stats_get(b[2], &st);
    CHECK_EQ_INT(st.deduped, npeers);          /* the repeated Watermill uuid, one per peer */
    CHECK_EQ_INT(st.dead_lettered, npeers);
    CHECK_EQ_INT(st.malformed, 0);
    rsbus_stats_get(b[1], &st);
    CHECK_EQ_INT(st.dead_lettered, npeers);
    CHECK_EQ_INT(st.retried, npeers);
    CHECK_EQ_INT(st.acked, 3 * npeers);
    rsbus_stats_get(b[3], &st);
    CHECK_EQ_INT(st.acked, npeers);
    rsbus_stats_get(b[0], &st);
    CHECK_EQ_INT(st.acked, 3 * npeers);
    for (k = 0; k < 4; k++) CHECK_EQ_INT(pending_of(streams[k], "g"), 0);

    /* the dead letters of the foreign entries, read back by every peer: each original field verbatim */
    for (lang = 0; lang < 2; lang++) {
        char args[512];
        if (!lang_on(lang)) continue;
        for (k = 1; k <= 2; k++) {
            snprintf(args, sizeof args, "check-dlq %s '%.300s' g %d", k == 1 ? "ix:es" : "ix:wm", b[k]->dlq_key, npeers);
            CHECK(run_peer(lang, args, &out) == 0);
            {
                char want[32];
                snprintf(want, sizeof want, "OK %d", npeers);
                CHECK_CONTAINS(out, want);
            }
            if (k == 1) CHECK_CONTAINS(out, "rejected by the test");
            else CHECK_CONTAINS(out, "handler returned RSBUS_DEAD");
            free(out);
        }
    }
    /* and by rsbus: the original fields (without the dlq_* ones) and the event read through the names */
    {
        rsbus_dlq_page page;
        CHECK_EQ_INT(rsbus_dlq_list(b[1], NULL, 100, &page), RSBUS_OK);
        CHECK_EQ_INT(page.count, npeers);
        for (i = 0; i < page.count; i++) {
            const rsbus_dlq_entry *d = &page.entries[i];
            const pentry *e = find_entry("ix:es", d->original_stream_id ? d->original_stream_id : "");
            CHECK(e != NULL);
            if (!e) continue;
            CHECK(same_fields(e, d->msg.fields, d->msg.field_count));
            CHECK_EQ_STR(d->msg.type, "OrderRejected");
            CHECK_EQ_STR(d->error, "rejected by the test");
            CHECK(rsbus_msg_field(&d->msg, "dlq_error", NULL) == NULL);
        }
        rsbus_dlq_page_free(b[1], &page);
    }
    for (k = 0; k < 4; k++) rsbus_close(b[k]);
    free_manifest();
}

/* ---- rsbus publishes, the peers read ------------------------------------------------------ */

static int ids_match(const char *out, char (*ids)[RSBUS_ID_SIZE], size_t n) {
    size_t i;
    const char *p = out;
    for (i = 0; i < n; i++) {
        char want[RSBUS_ID_SIZE + 8];
        snprintf(want, sizeof want, "ID %s\n", ids[i]);
        p = strstr(p, want);
        if (!p) return 0;
        p += strlen(want);
    }
    return 1;
}

/* msgpack fixmap of fixstr pairs, as Watermill's metadata (n pairs, each shorter than 32 bytes) */
static size_t msgpack_map(char *out, const char *const *kv, size_t n) {
    size_t i, len = 0;
    out[len++] = (char)(0x80 | n);
    for (i = 0; i < 2 * n; i++) {
        size_t l = strlen(kv[i]);
        out[len++] = (char)(0xA0 | l);
        memcpy(out + len, kv[i], l);
        len += l;
    }
    return len;
}

TEST(rsbus_publishes_peers_read_field_by_field) {
    rsbus_config c = test_cfg("ix:out", "g", "p1");
    rsbus *pub, *es, *wm;
    char ids[5][RSBUS_ID_SIZE], esids[3][RSBUS_ID_SIZE], wmids[4][RSBUS_ID_SIZE];
    char data[5][256], corr[5][16], id[5][16], key[5][16];
    rsbus_event evs[5];
    rsbus_field extra[2];
    int lang;
    size_t i;
    char *out = NULL;
    extra[0].name = "x-schema"; extra[0].name_len = 0; extra[0].value = "invoice/v3"; extra[0].value_len = 0;
    extra[1].name = "x-bin"; extra[1].name_len = 0; extra[1].value = "\xff\0\x01"; extra[1].value_len = 3;
    c.publish_only = 1;
    pub = open_cfg(&c);
    REQUIRE(pub != NULL);
    memset(evs, 0, sizeof evs);
    for (i = 0; i < 5; i++) {
        snprintf(data[i], sizeof data[i], "{\"n\":%d,\"text\":\"line\\nbreak \xc3\xa9\xe2\x98\x83\",\"ok\":%s,"
                 "\"nested\":{\"a\":[%d,%d]}}", (int)i, i % 2 ? "false" : "true", (int)i, -(int)i);
        snprintf(id[i], sizeof id[i], "inv-%d", (int)i);
        snprintf(key[i], sizeof key[i], "cust-%d", (int)(i % 3));
        snprintf(corr[i], sizeof corr[i], "c-%d", (int)i);
        evs[i].type = "invoice.issued"; evs[i].data = data[i]; evs[i].id = id[i]; evs[i].key = key[i];
        evs[i].source = "billing"; evs[i].correlation_id = corr[i]; evs[i].version = 3;
        evs[i].ts_ms = 1767225600000LL + 1000 * (int64_t)i;
        evs[i].extra = extra; evs[i].extra_count = 2;
    }
    for (i = 0; i < 3; i++) CHECK_EQ_INT(rsbus_publish(pub, &evs[i], ids[i]), RSBUS_OK);
    CHECK_EQ_INT(rsbus_publish_batch(pub, evs + 3, 2, ids + 3), RSBUS_OK);

    /* eventsource-py's layout, with rsbus_publish_fields */
    c.stream = "ix:es-out";
    es = open_cfg(&c);
    REQUIRE(es != NULL);
    for (i = 0; i < 3; i++) {
        char eid[40], agg[40], occurred[40], payload[512];
        rsbus_field f[7];
        rsbus_jw w;
        snprintf(eid, sizeof eid, "0e5a0000-0000-4000-8000-%012d", (int)i);
        snprintf(agg, sizeof agg, "0a6a0000-0000-4000-8000-%012d", (int)i);
        snprintf(occurred, sizeof occurred, "2026-03-04T05:06:07.%03d000+00:00", (int)i);
        rsbus_jw_init(&w, payload, sizeof payload);
        rsbus_jw_obj(&w);
        rsbus_jw_key(&w, "event_id"); rsbus_jw_str(&w, eid);
        rsbus_jw_key(&w, "event_type"); rsbus_jw_str(&w, "InvoicePaid");
        rsbus_jw_key(&w, "aggregate_id"); rsbus_jw_str(&w, agg);
        rsbus_jw_key(&w, "aggregate_type"); rsbus_jw_str(&w, "Invoice");
        rsbus_jw_key(&w, "occurred_at"); rsbus_jw_str(&w, occurred);
        rsbus_jw_key(&w, "amount"); rsbus_jw_num(&w, (double)i * 10 + 0.5);
        rsbus_jw_obj_end(&w);
        REQUIRE(rsbus_jw_result(&w, NULL) != NULL);
        memset(f, 0, sizeof f);
        f[0].name = "event_id"; f[0].value = eid;
        f[1].name = "event_type"; f[1].value = "InvoicePaid";
        f[2].name = "aggregate_id"; f[2].value = agg;
        f[3].name = "aggregate_type"; f[3].value = "Invoice";
        f[4].name = "tenant_id"; f[4].value = NULL;             /* the empty value, as eventsource-py writes it */
        f[5].name = "occurred_at"; f[5].value = occurred;
        f[6].name = "payload"; f[6].value = payload;
        CHECK_EQ_INT(rsbus_publish_fields(es, "agg-key", f, 7, esids[i]), RSBUS_OK);
    }
    /* Watermill's layout: msgpack metadata (binary) and raw payload bytes */
    c.stream = "ix:wm-out";
    wm = open_cfg(&c);
    REQUIRE(wm != NULL);
    for (i = 0; i < 4; i++) {
        char uuid[40], md[128], payload[64];
        size_t mdl = 0, pl;
        rsbus_field f[3];
        snprintf(uuid, sizeof uuid, "3a000000-0000-4000-8000-%012d", (int)i);
        if (i % 2 == 0) {
            char n[4];
            const char *kv[6];
            snprintf(n, sizeof n, "%d", (int)i);
            kv[0] = "name"; kv[1] = "invoice"; kv[2] = "n"; kv[3] = n; kv[4] = "bin"; kv[5] = "\xc3\xa9";
            mdl = msgpack_map(md, kv, 3);
            pl = (size_t)snprintf(payload, sizeof payload, "{\"invoice\":%d}", (int)i);
        } else {
            payload[0] = 0; payload[1] = (char)0xff;
            pl = 2 + (size_t)snprintf(payload + 2, sizeof payload - 2, "payload-%d\r\n", (int)i);
        }
        memset(f, 0, sizeof f);
        f[0].name = "_watermill_message_uuid"; f[0].value = uuid;
        f[1].name = "metadata"; f[1].value = mdl ? md : ""; f[1].value_len = mdl;
        f[2].name = "payload"; f[2].value = payload; f[2].value_len = pl;
        CHECK_EQ_INT(rsbus_publish_fields(wm, NULL, f, 3, wmids[i]), RSBUS_OK);
    }
    for (lang = 0; lang < 2; lang++) {
        if (!lang_on(lang)) continue;
        fprintf(stderr, "  reading with the %s peer\n", lang_name(lang));
        CHECK(run_peer(lang, "check-rsbus ix:out 5", &out) == 0);
        CHECK(ids_match(out, ids, 5));
        free(out);
        CHECK(run_peer(lang, "check-eventsource ix:es-out 3", &out) == 0);
        CHECK(ids_match(out, esids, 3));
        free(out);
        CHECK(run_peer(lang, "check-watermill ix:wm-out 4", &out) == 0);
        CHECK(ids_match(out, wmids, 4));
        free(out);
    }
    rsbus_close(pub);
    rsbus_close(es);
    rsbus_close(wm);
}

/* ---- hostile entries ---------------------------------------------------------------------- */

typedef struct hentry {
    const char *what;
    size_t npairs;                 /* field pairs; built by build_hostile */
    const char *strict;            /* NULL: delivered to the strict group; else a text of its dlq_error */
    const char *foreign;           /* the same for the foreign group */
    char sid[RSBUS_ID_SIZE];
    int calls[2];                  /* handler calls: strict, foreign */
    size_t field_count[2];
    char type[2][160];
    int had_id[2], had_data[2];
} hentry;

#define MAXEV 4096
static char big_ok[MAXEV + 1], big_over[MAXEV + 2];
static hentry hs[] = {
    { "no type", 0, "entry has no type", NULL, "", {0, 0}, {0, 0}, {"", ""}, {0, 0}, {0, 0} },
    { "no data", 0, "entry has no data", NULL, "", {0, 0}, {0, 0}, {"", ""}, {0, 0}, {0, 0} },
    { "empty field name", 0, NULL, NULL, "", {0, 0}, {0, 0}, {"", ""}, {0, 0}, {0, 0} },
    { "256 fields", 0, NULL, NULL, "", {0, 0}, {0, 0}, {"", ""}, {0, 0}, {0, 0} },
    { "257 fields", 0, "too many fields", "too many fields", "", {0, 0}, {0, 0}, {"", ""}, {0, 0}, {0, 0} },
    { "non-UTF-8 data", 0, "not valid JSON", NULL, "", {0, 0}, {0, 0}, {"", ""}, {0, 0}, {0, 0} },
    { "non-UTF-8 other value", 0, NULL, NULL, "", {0, 0}, {0, 0}, {"", ""}, {0, 0}, {0, 0} },
    { "data at max_event_bytes", 0, NULL, NULL, "", {0, 0}, {0, 0}, {"", ""}, {0, 0}, {0, 0} },
    { "data over max_event_bytes", 0, "max_event_bytes", NULL, "", {0, 0}, {0, 0}, {"", ""}, {0, 0}, {0, 0} },
    { "type is a number", 0, NULL, NULL, "", {0, 0}, {0, 0}, {"", ""}, {0, 0}, {0, 0} },
    { "type with a space", 0, "type is not", NULL, "", {0, 0}, {0, 0}, {"", ""}, {0, 0}, {0, 0} },
    { "id of 60 bytes", 0, "longer than rsbus allows", NULL, "", {0, 0}, {0, 0}, {"", ""}, {0, 0}, {0, 0} },
    { "ts not a number", 0, "ts is not", NULL, "", {0, 0}, {0, 0}, {"", ""}, {0, 0}, {0, 0} },
    { "binary field name", 0, NULL, NULL, "", {0, 0}, {0, 0}, {"", ""}, {0, 0}, {0, 0} },
    { "no fields but a foreign one", 0, "entry has no type", NULL, "", {0, 0}, {0, 0}, {"", ""}, {0, 0}, {0, 0} },
};
#define NH (sizeof hs / sizeof hs[0])

static int xadd_argv(const char *key, size_t npairs, const char *const *v, const size_t *l, char sid[RSBUS_ID_SIZE]) {
    const char **argv = (const char **)malloc((3 + 2 * npairs) * sizeof *argv);
    size_t *alen = (size_t *)malloc((3 + 2 * npairs) * sizeof *alen), i;
    redisReply *rep;
    int ok;
    if (!argv || !alen) { free((void *)argv); free(alen); return 0; }
    argv[0] = "XADD"; alen[0] = 4; argv[1] = key; alen[1] = strlen(key); argv[2] = "*"; alen[2] = 1;
    for (i = 0; i < 2 * npairs; i++) { argv[3 + i] = v[i]; alen[3 + i] = l[i]; }
    rep = raw_argv((int)(3 + 2 * npairs), argv, alen);
    ok = rep && rep->type == REDIS_REPLY_STRING && rep->len < RSBUS_ID_SIZE;
    if (ok) memcpy(sid, rep->str, rep->len + 1);
    if (rep) freeReplyObject(rep);
    free((void *)argv);
    free(alen);
    return ok;
}

static int hostile_group;   /* which group's handler is running: 0 strict, 1 foreign */
static rsbus_verdict hostile_handler(const rsbus_msg *m, void *user) {
    size_t i;
    (void)user;
    for (i = 0; i < NH; i++)
        if (!strcmp(hs[i].sid, m->stream_id)) {
            hentry *h = &hs[i];
            h->calls[hostile_group]++;
            h->field_count[hostile_group] = m->field_count;
            snprintf(h->type[hostile_group], sizeof h->type[0], "%s", m->type);
            h->had_id[hostile_group] = m->id != NULL;
            h->had_data[hostile_group] = m->data != NULL;
            if (m->data) HCHECK(m->data[m->data_len] == 0);
            return RSBUS_ACK;
        }
    handler_errors++;
    return RSBUS_ACK;
}

/* The dlq_error of the dead letter of entry sid dead-lettered by group, or NULL. */
static char dlq_reason[512];
static const char *dlq_error_of(const char *dlq, const char *sid, const char *group, size_t *pairs) {
    redisReply *rep = raw("XRANGE %s - +", dlq);
    size_t i, k;
    const char *found = NULL;
    for (i = 0; rep && rep->type == REDIS_REPLY_ARRAY && i < rep->elements && !found; i++) {
        const redisReply *f = rep->element[i]->element[1];
        const char *s = NULL, *g = NULL, *e = NULL;
        for (k = 0; k + 1 < f->elements; k += 2) {
            if (!strcmp(f->element[k]->str, "dlq_stream_id")) s = f->element[k + 1]->str;
            else if (!strcmp(f->element[k]->str, "dlq_group")) g = f->element[k + 1]->str;
            else if (!strcmp(f->element[k]->str, "dlq_error")) e = f->element[k + 1]->str;
        }
        if (s && g && e && !strcmp(s, sid) && !strcmp(g, group)) {
            snprintf(dlq_reason, sizeof dlq_reason, "%s", e);
            if (pairs) *pairs = f->elements / 2;
            found = dlq_reason;
        }
    }
    if (rep) freeReplyObject(rep);
    return found;
}

TEST(hostile_entries_have_a_clear_outcome) {
    static const char *v[2 * 260];
    static size_t l[2 * 260];
    rsbus *b[2];
    rsbus_config c;
    size_t i, k, n;
    int g;
    int64_t deadline;
    char id60[61];
    handler_errors = 0;
    memset(big_ok, ' ', sizeof big_ok);
    big_ok[0] = '"'; big_ok[MAXEV - 1] = '"';
    memset(big_over, ' ', sizeof big_over);
    big_over[0] = '"'; big_over[MAXEV] = '"';
    memset(id60, 'i', 60); id60[60] = 0;
    for (i = 0; i < NH; i++) {
        hentry *h = &hs[i];
        n = 0;
#define F(name, nl, val, vl) do { v[2 * n] = (name); l[2 * n] = (nl); v[2 * n + 1] = (val); l[2 * n + 1] = (vl); n++; } while (0)
#define FZ(name, val) F(name, strlen(name), val, strlen(val))
        switch (i) {
        case 0: FZ("data", "{}"); FZ("other", "x"); break;
        case 1: FZ("type", "a.b"); FZ("id", "e1"); break;
        case 2: F("", 0, "x", 1); FZ("type", "a.b"); FZ("data", "{}"); break;
        case 3: case 4:
            FZ("type", "a.b"); FZ("data", "{}");
            while (n < (i == 3 ? 256u : 257u)) FZ("f", "v");
            break;
        case 5: FZ("type", "a.b"); F("data", 4, "\"\xff\xfe\"", 4); break;
        case 6: FZ("type", "a.b"); FZ("data", "{}"); F("blob", 4, "\xc3\x28\xa0\xa1\x00\xff", 6); break;
        case 7: FZ("type", "a.b"); F("data", 4, big_ok, MAXEV); break;
        case 8: FZ("type", "a.b"); F("data", 4, big_over, MAXEV + 1); break;
        case 9: FZ("type", "42"); FZ("data", "1.5e3"); break;
        case 10: FZ("type", "order created"); FZ("data", "{}"); break;
        case 11: FZ("type", "a.b"); FZ("id", id60); FZ("data", "{}"); break;
        case 12: FZ("type", "a.b"); FZ("ts", "yesterday"); FZ("data", "{}"); break;
        case 13: F("n\0m\xff", 4, "v", 1); FZ("type", "a.b"); FZ("data", "[]"); break;
        default: FZ("_watermill_message_uuid", "u-1"); break;
        }
#undef F
#undef FZ
        h->npairs = n;
        REQUIRE(xadd_argv("ix:hostile", n, v, l, h->sid));
    }
    c = test_cfg("ix:hostile", "strict", "c1");
    c.max_event_bytes = MAXEV;
    b[0] = open_cfg(&c);
    c.group = "foreign";
    c.accept_foreign = 1;
    b[1] = open_cfg(&c);
    REQUIRE(b[0] != NULL && b[1] != NULL);
    for (g = 0; g < 2; g++) CHECK(rsbus_subscribe(b[g], "*", hostile_handler, NULL) > 0);
    deadline = test_now_ms() + 10000;
    for (g = 0; g < 2; g++) {   /* until each group disposed of every entry */
        int total = 0, r;
        hostile_group = g;
        while (total < (int)NH && test_now_ms() < deadline) {
            r = rsbus_poll(b[g], 0);
            CHECK(r >= 0);
            if (r < 0) break;
            total += r;
            if (r == 0) test_sleep_ms(2);
        }
        CHECK_EQ_INT(total, NH);
        CHECK_EQ_INT(pending_of("ix:hostile", g ? "foreign" : "strict"), 0);
    }
    CHECK_EQ_INT(handler_errors, 0);
    for (g = 0; g < 2; g++) {
        rsbus_stats st;
        size_t delivered = 0, dead = 0;
        for (i = 0; i < NH; i++) {
            hentry *h = &hs[i];
            const char *want = g ? h->foreign : h->strict;
            size_t pairs = 0;
            const char *why = dlq_error_of(b[g]->dlq_key, h->sid, g ? "foreign" : "strict", &pairs);
            if (want) {
                if (h->calls[g] != 0 || !why || !strstr(why, want))
                    fprintf(stderr, "  %s, %s group: calls %d, dlq_error \"%s\", expected \"%s\"\n", h->what,
                            g ? "foreign" : "strict", h->calls[g], why ? why : "(none)", want);
                CHECK_EQ_INT(h->calls[g], 0);
                CHECK(why != NULL && strstr(why, want) != NULL);
                CHECK_EQ_INT(pairs, h->npairs + 7);   /* every field kept, then the dlq_* ones */
                dead++;
            } else {
                if (h->calls[g] != 1 || why)
                    fprintf(stderr, "  %s, %s group: calls %d, dlq_error \"%s\", expected a delivery\n", h->what,
                            g ? "foreign" : "strict", h->calls[g], why ? why : "(none)");
                CHECK_EQ_INT(h->calls[g], 1);
                CHECK(why == NULL);
                CHECK_EQ_INT(h->field_count[g], h->npairs);
                delivered++;
            }
        }
        rsbus_stats_get(b[g], &st);
        CHECK_EQ_INT(st.acked, delivered);                 /* nothing lost: every entry acked or dead-lettered */
        CHECK_EQ_INT(st.dead_lettered, dead);
        CHECK_EQ_INT(st.malformed, dead);
        CHECK_EQ_INT(delivered + dead, NH);
    }
    /* what the foreign group read where the strict one refused */
    CHECK_EQ_STR(hs[0].type[1], "");
    CHECK(!hs[1].had_data[1] && hs[1].had_id[1]);
    CHECK_EQ_STR(hs[9].type[0], "42");
    CHECK_EQ_STR(hs[10].type[1], "");
    CHECK(!hs[11].had_id[1]);
    CHECK(hs[8].had_data[1]);
    CHECK_EQ_INT(hs[3].field_count[0], 256);
    for (k = 0; k < 2; k++) rsbus_close(b[k]);
}

/* ---- checks of what is published, the config, the spool ----------------------------------- */

static rsbus_result pub_extra(rsbus *bus, const rsbus_field *x, size_t n) {
    rsbus_event ev;
    memset(&ev, 0, sizeof ev);
    ev.type = "t.x";
    ev.extra = x;
    ev.extra_count = n;
    return rsbus_publish(bus, &ev, NULL);
}

TEST(publishing_fields_is_checked) {
    rsbus_config c = test_cfg("ix:chk", "g", "p1");
    rsbus *bus, *tb;
    rsbus_field f[300];
    char name1025[1026], big[600];
    rsbus_error err;
    size_t i;
    redisReply *rep;
    c.publish_only = 1;
    c.max_event_bytes = 512;
    c.type_field = "event_type";
    bus = open_cfg(&c);
    REQUIRE(bus != NULL);
    memset(f, 0, sizeof f);
    for (i = 0; i < 300; i++) { f[i].name = "n"; f[i].value = "v"; }
    f[0].name = "a"; f[1].name = "b";
    CHECK_EQ_INT(pub_extra(bus, f, 2), RSBUS_OK);
    f[1].name = "type";
    CHECK_EQ_INT(pub_extra(bus, f, 2), RSBUS_E_ARG);
    CHECK_CONTAINS(rsbus_errmsg(bus), "field 1: the name is one of rsbus's own fields");
    f[1].name = "dlq_error";
    CHECK_EQ_INT(pub_extra(bus, f, 2), RSBUS_E_ARG);
    f[1].name = "event_type";                       /* this bus's type_field */
    CHECK_EQ_INT(pub_extra(bus, f, 2), RSBUS_E_ARG);
    f[1].name = "a";
    CHECK_EQ_INT(pub_extra(bus, f, 2), RSBUS_E_ARG);
    CHECK_CONTAINS(rsbus_errmsg(bus), "same name");
    f[1].name = "";
    CHECK_EQ_INT(pub_extra(bus, f, 2), RSBUS_E_ARG);
    CHECK_CONTAINS(rsbus_errmsg(bus), "name must be 1..1024 bytes");
    memset(name1025, 'n', 1025); name1025[1025] = 0;
    f[1].name = name1025;
    CHECK_EQ_INT(pub_extra(bus, f, 2), RSBUS_E_ARG);
    f[1].name = "b";
    memset(big, 'v', sizeof big - 1); big[sizeof big - 1] = 0;
    f[1].value = big;                               /* 599 bytes: more than max_event_bytes */
    CHECK_EQ_INT(pub_extra(bus, f, 2), RSBUS_E_ARG);
    CHECK_CONTAINS(rsbus_errmsg(bus), "max_event_bytes");
    CHECK_NOT_CONTAINS(rsbus_errmsg(bus), "vvvv");
    f[1].value = "v";
    for (i = 2; i < 300; i++) { static char names[300][8]; snprintf(names[i], sizeof names[i], "n%d", (int)i); f[i].name = names[i]; }
    CHECK_EQ_INT(pub_extra(bus, f, 244), RSBUS_OK);
    CHECK_EQ_INT(pub_extra(bus, f, 245), RSBUS_E_ARG);
    /* rsbus_publish_fields */
    CHECK_EQ_INT(rsbus_publish_fields(bus, NULL, f, 0, NULL), RSBUS_E_ARG);
    CHECK_EQ_INT(rsbus_publish_fields(bus, NULL, NULL, 1, NULL), RSBUS_E_ARG);
    CHECK_EQ_INT(rsbus_publish_fields(bus, NULL, f, 257, NULL), RSBUS_E_ARG);
    CHECK_EQ_INT(rsbus_publish_fields(bus, name1025, f, 2, NULL), RSBUS_E_ARG);   /* key over 1024 bytes */
    {
        char sid[RSBUS_ID_SIZE];
        f[0].name = "type"; f[0].value = "raw"; f[1].name = "dlq_error"; f[1].value = "\0x"; f[1].value_len = 2;
        CHECK_EQ_INT(rsbus_publish_fields(bus, "k", f, 256, sid), RSBUS_OK);   /* any names, 256 fields */
        rep = raw("XRANGE ix:chk %s %s", sid, sid);
        CHECK(rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 1 && rep->element[0]->element[1]->elements == 512);
        if (rep && rep->elements == 1) {
            const redisReply *fl = rep->element[0]->element[1];
            CHECK_EQ_STR(fl->element[0]->str, "type");
            CHECK(fl->element[3]->len == 2 && !memcmp(fl->element[3]->str, "\0x", 2));
            CHECK_EQ_STR(fl->element[510]->str, "n255");
        }
        if (rep) freeReplyObject(rep);
    }
    rsbus_close(bus);
    /* a tenant-bound bus: the tenant key, and a different tenant field is refused */
    c.tenant = "acme";
    tb = open_cfg(&c);
    REQUIRE(tb != NULL);
    f[0].name = "tenant"; f[0].value = "other"; f[0].value_len = 0;
    f[1].name = "x"; f[1].value = "1"; f[1].value_len = 0;
    CHECK_EQ_INT(rsbus_publish_fields(tb, NULL, f, 2, NULL), RSBUS_E_ARG);
    f[0].value = "acme";
    CHECK_EQ_INT(rsbus_publish_fields(tb, NULL, f, 2, NULL), RSBUS_OK);
    CHECK_EQ_INT(raw_int("XLEN tenant:acme:ix:chk"), 1);
    rsbus_close(tb);
    /* the config: names, and the environment */
    c = test_cfg("ix:chk", "g", "p1");
    c.type_field = "ts";
    CHECK(rsbus_open(&c, &err) == NULL);
    CHECK_CONTAINS(err.msg, "type_field");
    c.type_field = "event_id"; c.id_field = "event_id";
    CHECK(rsbus_open(&c, &err) == NULL);
    CHECK_CONTAINS(err.msg, "must differ");
    c.type_field = "a b"; c.id_field = NULL;
    CHECK(rsbus_open(&c, &err) == NULL);
    c.type_field = NULL; c.accept_foreign = 2;
    CHECK(rsbus_open(&c, &err) == NULL);
    CHECK_CONTAINS(err.msg, "accept_foreign");
    {
        rsbus_config e;
        memset(&e, 0, sizeof e);
        setenv("IXT_ACCEPT_FOREIGN", "yes", 1);
        setenv("IXT_TYPE_FIELD", "event_type", 1);
        setenv("IXT_ID_FIELD", "event_id", 1);
        setenv("IXT_DATA_FIELD", "payload", 1);
        CHECK_EQ_INT(rsbus_config_from_env(&e, "IXT_", &err), RSBUS_OK);
        CHECK_EQ_INT(e.accept_foreign, 1);
        CHECK_EQ_STR(e.type_field, "event_type");
        CHECK_EQ_STR(e.id_field, "event_id");
        CHECK_EQ_STR(e.data_field, "payload");
        setenv("IXT_ACCEPT_FOREIGN", "maybe", 1);
        CHECK_EQ_INT(rsbus_config_from_env(&e, "IXT_", &err), RSBUS_E_ARG);
        CHECK_CONTAINS(err.msg, "IXT_ACCEPT_FOREIGN");
        unsetenv("IXT_ACCEPT_FOREIGN"); unsetenv("IXT_TYPE_FIELD"); unsetenv("IXT_ID_FIELD"); unsetenv("IXT_DATA_FIELD");
    }
}

TEST(publish_fields_goes_through_the_spool) {
    rsbus_config c = test_cfg("ix:spool", "g", "p1");
    char path[512], down[64];
    rsbus *bus;
    rsbus_field f[3];
    char sid[RSBUS_ID_SIZE];
    size_t sent = 0, events = 0;
    redisReply *rep;
    tmp_path(path, sizeof path, "interop.spool");
    unlink(path);
    snprintf(down, sizeof down, "redis://127.0.0.1:%d", test_redis__free_port());   /* nothing listens */
    c.url = down;
    c.publish_only = 1;
    c.spool_path = path;
    c.connect_timeout_ms = 300;
    bus = open_cfg(&c);
    REQUIRE(bus != NULL);
    memset(f, 0, sizeof f);
    f[0].name = "_watermill_message_uuid"; f[0].value = "3a000000-0000-4000-8000-000000000009";
    f[1].name = "metadata"; f[1].value = "";
    f[2].name = "payload"; f[2].value = "\0\1\2"; f[2].value_len = 3;
    CHECK_EQ_INT(rsbus_publish_fields(bus, NULL, f, 3, sid), RSBUS_SPOOLED);
    CHECK_EQ_STR(sid, "");
    CHECK_EQ_INT(rsbus_spool_pending(bus, &events, NULL), RSBUS_OK);
    CHECK_EQ_INT(events, 1);
    rsbus_close(bus);
    c.url = srv.unix_url;
    bus = open_cfg(&c);
    REQUIRE(bus != NULL);
    CHECK_EQ_INT(rsbus_spool_flush(bus, &sent), RSBUS_OK);
    CHECK_EQ_INT(sent, 1);
    rep = raw("XRANGE ix:spool - +");
    CHECK(rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 1);
    if (rep && rep->elements == 1) {
        const redisReply *fl = rep->element[0]->element[1];
        CHECK_EQ_INT(fl->elements, 6);
        if (fl->elements == 6) {
            CHECK_EQ_STR(fl->element[0]->str, "_watermill_message_uuid");
            CHECK_EQ_INT(fl->element[3]->len, 0);
            CHECK(fl->element[5]->len == 3 && !memcmp(fl->element[5]->str, "\0\1\2", 3));
        }
    }
    if (rep) freeReplyObject(rep);
    rsbus_close(bus);
    unlink(path);
}

int main(void) {
    if (test_redis_start(&srv, NULL) != 0) {
        printf("test_interop: 0 passed, 1 failed\n");
        return 1;
    }
    find_peers();
    RUN(peers_publish_rsbus_consumes_byte_for_byte);
    RUN(rsbus_publishes_peers_read_field_by_field);
    RUN(hostile_entries_have_a_clear_outcome);
    RUN(publishing_fields_is_checked);
    RUN(publish_fields_goes_through_the_spool);
    raw_reset();
    test_redis_stop(&srv);
    return test_summary("test_interop");
}
