/* test_security.c - security properties of rsbus, against a real redis-server this program starts:
   1. least-privilege ACL users: a publisher, a worker and an admin, each created by one line of
      acl_recipe (README "Least-privilege ACL users", line for line), each able to do its job with no
      ACL denial (ACL LOG) and refused (RSBUS_E_AUTH, NOPERM) outside it;
   2. tenants: two tenant-bound buses on one stream name, each with an ACL user confined to
      ~tenant:<name>:*, cannot read, write or replay each other's events;
   3. nothing secret (password, user name, payloads) in any log line, error message, metrics or health
      text of a whole run with failing handlers, dead letters, replays, wrong passwords and a server
      killed mid-run; control characters from Redis or from a caller cannot forge a log line;
   4. untrusted sizes on the consume side: oversize data, too many fields, overlong types go to the DLQ
      without reaching a handler. */
#define _POSIX_C_SOURCE 200809L
#define RSBUS_IMPLEMENTATION
#include "../rsbus.h"
#include "test.h"
#include "redis_server.h"
#include "bus_util.h"

/* ---- the recipe ------------------------------------------------------------------------------- */

/* README "Least-privilege ACL users": the same lines, in this order. Paste them into redis-cli (or,
   without "ACL SETUSER", into an ACL file after "user"). Each begins with "reset", so running a line
   again redefines the user instead of adding to it. */
static const char *const acl_recipe[] = {
    /* publisher: XADD to its stream (MULTI/EXEC for rsbus_publish_batch) */
    "ACL SETUSER orders-publisher reset on >change-me-publisher resetkeys ~orders %R~{orders}:meta resetchannels -@all "
        "+ping +hget +xadd +multi +exec",
    /* worker: consume, retry, claim, dead-letter; its DLQ is write-only (XADD, and XLEN for health) */
    "ACL SETUSER orders-worker reset on >change-me-worker resetkeys ~orders %R~{orders}:meta resetchannels -@all "
        "+ping +hget +xreadgroup +xack +xpending +xclaim +xrange +xinfo|stream +xinfo|groups +multi +exec "
        "(~{orders}:dlq +xadd +xlen)",
    /* admin: groups, dead letters (list, replay, purge), info, health, consumers, tail, trim */
    "ACL SETUSER orders-admin reset on >change-me-admin resetkeys ~orders ~{orders}:* resetchannels -@all "
        "+ping +time +hget +xadd +xrange +xread +xdel +xtrim +xlen +xinfo +xpending +xgroup|create +xgroup|setid "
        "+xgroup|delconsumer +eval +watch +unwatch +multi +exec",
    /* tenants: everything rsbus does, on the tenant's keys only */
    "ACL SETUSER tenant-acme reset on >change-me-acme resetkeys ~tenant:acme:* ~{tenant:acme:* resetchannels -@all "
        "+ping +hget +xadd +xreadgroup +xack +xpending +xclaim +xrange +xlen +xinfo|stream +xinfo|groups "
        "+xgroup|create +xdel +xtrim +watch +unwatch +multi +exec",
    "ACL SETUSER tenant-globex reset on >change-me-globex resetkeys ~tenant:globex:* ~{tenant:globex:* resetchannels -@all "
        "+ping +hget +xadd +xreadgroup +xack +xpending +xclaim +xrange +xlen +xinfo|stream +xinfo|groups "
        "+xgroup|create +xdel +xtrim +watch +unwatch +multi +exec",
};
/* README, the optional additions to the worker (each tested below, then the worker line is run again) */
static const char *const acl_worker_trim_acked = "ACL SETUSER orders-worker +xtrim";
static const char *const acl_worker_create_group = "ACL SETUSER orders-worker +xgroup|create";
static const char *const acl_worker_dedupe = "ACL SETUSER orders-worker (~{orders}:dedupe:* +mget +set)";

enum { R_PUBLISHER, R_WORKER, R_ADMIN, R_ACME, R_GLOBEX };

/* ---- helpers ---------------------------------------------------------------------------------- */

/* Every log line of every bus of this program (and of its children, read back from their files),
   "<level letter> <msg>\n"; lines holding a control character are counted. */
static char slog[1 << 21];
static size_t slog_len;
static int slog_ctrl;
static char slog_ctrl_first[600];
static int slog_fd = -1;            /* a child writes its lines here too */

/* Copies s with control characters shown as \xNN, for a failure message. */
static const char *shown(const char *s) {
    static char out[1200];
    size_t i, j = 0;
    for (i = 0; s[i] && j + 5 < sizeof out; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x20 || ch == 0x7f) j += (size_t)snprintf(out + j, sizeof out - j, "\\x%02x", ch);
        else out[j++] = (char)ch;
    }
    out[j] = 0;
    return out;
}
static int has_ctrl(const char *s, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x20 || ch == 0x7f) return 1;
    }
    return 0;
}
static void slog_append(const char *s, size_t n) {
    if (slog_len + n + 1 < sizeof slog) {
        memcpy(slog + slog_len, s, n);
        slog_len += n;
        slog[slog_len] = 0;
    }
}
static void sec_log(void *user, rsbus_log_level level, const char *msg) {
    static const char letters[] = "?EWID";
    char head[3];
    size_t n = strlen(msg);
    (void)user;
    head[0] = letters[(int)level >= 1 && (int)level <= 4 ? (int)level : 0];
    head[1] = ' ';
    head[2] = 0;
    if (has_ctrl(msg, n)) {
        if (!slog_ctrl) snprintf(slog_ctrl_first, sizeof slog_ctrl_first, "%.500s", msg);
        slog_ctrl++;
    }
    slog_append(head, 2);
    slog_append(msg, n);
    slog_append("\n", 1);
    if (slog_fd >= 0) {
        char buf[1200];
        int k = snprintf(buf, sizeof buf, "%s%s%s\n", has_ctrl(msg, n) ? "CONTROL-CHARACTER-IN-LOG " : "", head, msg);
        if (k > 0 && write(slog_fd, buf, (size_t)k < sizeof buf ? (size_t)k : sizeof buf - 1) < 0) { /* nothing */ }
    }
}
/* Lines of level letter lv ('W', ...; 0: any) logged since offset 'from' that contain needle (NULL: any). */
static int count_log(size_t from, char lv, const char *needle) {
    const char *p = slog + from, *nl;
    int n = 0;
    while (p < slog + slog_len && (nl = strchr(p, '\n')) != NULL) {
        if ((!lv || p[0] == lv)) {
            if (!needle) n++;
            else {
                char line[1200];
                size_t len = (size_t)(nl - p) < sizeof line - 1 ? (size_t)(nl - p) : sizeof line - 1;
                memcpy(line, p, len);
                line[len] = 0;
                if (strstr(line, needle)) n++;
            }
        }
        p = nl + 1;
    }
    return n;
}
/* Prints the warnings since 'from' (to explain a failed check). */
static void show_warnings(size_t from) {
    const char *p = slog + from, *nl;
    while (p < slog + slog_len && (nl = strchr(p, '\n')) != NULL) {
        if (p[0] == 'W' || p[0] == 'E') fprintf(stderr, "    log: %.*s\n", (int)(nl - p), p);
        p = nl + 1;
    }
}

/* Every error message and every text rsbus handed out (errmsg, rsbus_error, metrics, health why). */
static char notes[1 << 21];
static size_t notes_len;
static int notes_ctrl;
static char notes_ctrl_first[600];
static void note(const char *text) {
    size_t n = strlen(text);
    if (notes_len + n + 2 < sizeof notes) {
        memcpy(notes + notes_len, text, n);
        notes_len += n;
        notes[notes_len++] = '\n';
        notes[notes_len] = 0;
    }
}
/* An error message: must also be one line without control characters. */
static void note_err(const char *msg) {
    if (has_ctrl(msg, strlen(msg))) {
        if (!notes_ctrl) snprintf(notes_ctrl_first, sizeof notes_ctrl_first, "%.500s", msg);
        notes_ctrl++;
    }
    note(msg);
}
#define NOTE(bus) note_err(rsbus_errmsg(bus))

/* Runs one recipe line on c, split at spaces as redis-cli would; the reply's text into out. */
static int run_line(redisContext *c, const char *line, char *out, size_t size) {
    char buf[1024], *p;
    const char *argv[64];
    size_t lens[64];
    int argc = 0, ok;
    redisReply *rep;
    snprintf(buf, sizeof buf, "%s", line);
    for (p = strtok(buf, " "); p && argc < 64; p = strtok(NULL, " ")) {
        argv[argc] = p;
        lens[argc] = strlen(p);
        argc++;
    }
    rep = (redisReply *)redisCommandArgv(c, argc, argv, lens);
    ok = rep && rep->type == REDIS_REPLY_STATUS && !strcmp(rep->str, "OK");
    if (out && size) snprintf(out, size, "%s", rep && rep->str ? rep->str : "(no reply)");
    if (rep) freeReplyObject(rep);
    return ok;
}
static int apply(const char *line) {
    char text[300];
    if (!raw_ctx && !(raw_ctx = test_redis_connect(&srv))) return 0;
    if (run_line(raw_ctx, line, text, sizeof text)) return 1;
    fprintf(stderr, "  %s\n  -> %s\n", line, text);
    return 0;
}

/* The user and password of a recipe line ("ACL SETUSER <user> reset on ><password> ..."). */
static void recipe_creds(int role, char *user, size_t usize, char *pw, size_t psize) {
    const char *l = acl_recipe[role] + strlen("ACL SETUSER "), *sp = strchr(l, ' '), *gt = strchr(l, '>');
    const char *end = gt ? strchr(gt, ' ') : NULL;
    snprintf(user, usize, "%.*s", sp ? (int)(sp - l) : 0, l);
    snprintf(pw, psize, "%.*s", gt && end ? (int)(end - gt - 1) : 0, gt ? gt + 1 : "");
}
/* A config for a role: its ACL user over TCP, the test server's timings, every log line to sec_log. */
static char urls[8][256];
static rsbus_config role_cfg(int role, const char *stream, const char *group, const char *consumer) {
    rsbus_config c = test_cfg(stream, group, consumer);
    char user[64], pw[64];
    recipe_creds(role, user, sizeof user, pw, sizeof pw);
    snprintf(urls[role], sizeof urls[role], "redis://%s:%s@127.0.0.1:%d", user, pw, srv.port);
    c.url = urls[role];
    c.log = sec_log;
    return c;
}
static rsbus *open_logged(const rsbus_config *c) {
    rsbus_error err;
    rsbus *bus = rsbus_open(c, &err);
    if (!bus) {
        fprintf(stderr, "  rsbus_open: %s: %s\n", rsbus_result_str(err.code), err.msg);
        note_err(err.msg);
    }
    return bus;
}
static rsbus *open_role(int role, const char *stream, const char *group, const char *consumer, int publish_only) {
    rsbus_config c = role_cfg(role, stream, group, consumer);
    c.publish_only = publish_only;
    return open_logged(&c);
}
/* A raw connection as a role's ACL user. */
static redisContext *role_ctx(int role) {
    char user[64], pw[64];
    struct timeval tv = { 5, 0 };
    redisContext *c = redisConnectUnixWithTimeout(srv.sock, tv);
    redisReply *rep;
    if (!c || c->err) { if (c) redisFree(c); return NULL; }
    recipe_creds(role, user, sizeof user, pw, sizeof pw);
    rep = (redisReply *)redisCommand(c, "AUTH %s %s", user, pw);
    if (!rep || rep->type == REDIS_REPLY_ERROR) { if (rep) freeReplyObject(rep); redisFree(c); return NULL; }
    freeReplyObject(rep);
    return c;
}

/* ACL LOG: the denials of one user since the last ACL LOG RESET; the commands or keys into what. */
static long long acl_denials(const char *user, char *what, size_t size) {
    redisReply *rep = raw("ACL LOG 100");
    long long n = 0;
    size_t i, k, len = 0;
    if (what && size) what[0] = 0;
    if (!rep || rep->type != REDIS_REPLY_ARRAY) { if (rep) freeReplyObject(rep); return -1; }
    for (i = 0; i < rep->elements; i++) {
        const redisReply *e = rep->element[i];
        const char *name = NULL, *object = "";
        long long count = 1;
        for (k = 0; e->type == REDIS_REPLY_ARRAY && k + 1 < e->elements; k += 2) {
            const redisReply *key = e->element[k], *v = e->element[k + 1];
            if (!key->str) continue;
            if (!strcmp(key->str, "username") && v->str) name = v->str;
            else if (!strcmp(key->str, "object") && v->str) object = v->str;
            else if (!strcmp(key->str, "count") && v->type == REDIS_REPLY_INTEGER) count = v->integer;
        }
        if (!name || strcmp(name, user) != 0) continue;
        n += count;
        if (what && len + strlen(object) + 2 < size) len += (size_t)snprintf(what + len, size - len, "%s ", object);
    }
    freeReplyObject(rep);
    return n;
}
static void acl_log_reset(void) { redisReply *r = raw("ACL LOG RESET"); if (r) freeReplyObject(r); }

/* XADD with arbitrary (binary, large) field values on a context; the new id into id. */
static int xadd_fields(redisContext *c, const char *key, size_t npairs, const char *const *vals, const size_t *lens,
                       char id[RSBUS_ID_SIZE]) {
    const char *argv[2 * 300 + 3];
    size_t alen[2 * 300 + 3], i;
    redisReply *rep;
    int ok;
    if (npairs > 300) return 0;
    argv[0] = "XADD"; alen[0] = 4;
    argv[1] = key; alen[1] = strlen(key);
    argv[2] = "*"; alen[2] = 1;
    for (i = 0; i < 2 * npairs; i++) { argv[3 + i] = vals[i]; alen[3 + i] = lens ? lens[i] : strlen(vals[i]); }
    rep = (redisReply *)redisCommandArgv(c, (int)(3 + 2 * npairs), argv, alen);
    ok = rep && rep->type == REDIS_REPLY_STRING && rep->len < RSBUS_ID_SIZE;
    if (ok && id) memcpy(id, rep->str, rep->len + 1);
    if (!ok) fprintf(stderr, "  XADD %s: %s\n", key, rep && rep->str ? rep->str : "(no reply)");
    if (rep) freeReplyObject(rep);
    return ok;
}

/* The value of a field of the first entry of an XRANGE-style reply whose field 'match' equals 'val'. */
static int dlq_has(const char *dlq_key, const char *field, const char *val, const char *err_field_has) {
    redisReply *rep = raw("XRANGE %s - +", dlq_key);
    size_t i, k;
    int found = 0;
    if (!rep || rep->type != REDIS_REPLY_ARRAY) { if (rep) freeReplyObject(rep); return 0; }
    for (i = 0; i < rep->elements && !found; i++) {
        const redisReply *f = rep->element[i]->element[1];
        int match = 0, err_ok = err_field_has == NULL;
        for (k = 0; k + 1 < f->elements; k += 2) {
            if (!strcmp(f->element[k]->str, field) && !strcmp(f->element[k + 1]->str, val)) match = 1;
            if (err_field_has && !strcmp(f->element[k]->str, "dlq_error") && strstr(f->element[k + 1]->str, err_field_has))
                err_ok = 1;
        }
        found = match && err_ok;
    }
    freeReplyObject(rep);
    return found;
}

static rsbus_result pub_ev(rsbus *bus, const char *type, const char *data, char *sid) {
    rsbus_event ev;
    memset(&ev, 0, sizeof ev);
    ev.type = type;
    ev.data = data;
    return rsbus_publish(bus, &ev, sid);
}

/* rsbus_run's safety net: a stop flag raised by SIGALRM if a test's own stop never comes. */
static volatile sig_atomic_t alarm_stop;
static void on_alarm(int sig) { (void)sig; alarm_stop = 1; }
static void arm_alarm(unsigned seconds) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, NULL);
    alarm_stop = 0;
    alarm(seconds);
}

/* ---- 1. least-privilege ACL users -------------------------------------------------------------- */
/* These run in order on the stream "orders": the admin creates the groups, the worker's dead letters are
   the admin's to list, replay and purge. */

TEST(acl_recipe_applies) {
    size_t i;
    char what[512];
    for (i = 0; i < sizeof acl_recipe / sizeof acl_recipe[0]; i++) CHECK(apply(acl_recipe[i]));
    /* "reset" makes a line idempotent: run again, the worker still has exactly one selector */
    CHECK(apply(acl_recipe[R_WORKER]));
    {
        redisReply *rep = raw("ACL GETUSER orders-worker");
        size_t k;
        long long selectors = -1;
        REQUIRE(rep && rep->type == REDIS_REPLY_ARRAY);
        for (k = 0; k + 1 < rep->elements; k += 2)
            if (rep->element[k]->str && !strcmp(rep->element[k]->str, "selectors") &&
                rep->element[k + 1]->type == REDIS_REPLY_ARRAY)
                selectors = (long long)rep->element[k + 1]->elements;
        CHECK_EQ_INT(selectors, 1);
        freeReplyObject(rep);
    }
    /* the admin provisions the groups (workers cannot create them): rsbus_open of a consumer bus */
    {
        rsbus_config c = role_cfg(R_ADMIN, "orders", "billing", "provisioner");
        rsbus *bus;
        c.group_start = "0";
        bus = open_logged(&c);
        CHECK(bus != NULL);
        rsbus_close(bus);
        c.group = "audit";
        bus = open_logged(&c);
        CHECK(bus != NULL);
        rsbus_close(bus);
    }
    CHECK_EQ_INT(acl_denials("orders-admin", what, sizeof what), 0);
    {
        redisReply *rep = raw("XINFO GROUPS orders");
        CHECK(rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 2);
        if (rep) freeReplyObject(rep);
    }
}

TEST(publisher_publishes_and_nothing_else) {
    rsbus *pub, *other, *cons;
    rsbus_event evs[3];
    char why[256], what[512], nid[RSBUS_ID_SIZE];
    rsbus_dlq_page page;
    rsbus_stream_info si;
    rsbus_claim_stats cs;
    int64_t removed;
    long long len0;
    size_t mark;
    acl_log_reset();
    len0 = raw_int("XLEN orders");
    pub = open_role(R_PUBLISHER, "orders", NULL, "p1", 1);
    REQUIRE(pub != NULL);
    /* its job: publish, one by one and in batches */
    CHECK_EQ_INT(pub_ev(pub, "job.ok", "{\"n\":1}", NULL), RSBUS_OK);
    memset(evs, 0, sizeof evs);
    evs[0].type = evs[1].type = evs[2].type = "job.ok";
    CHECK_EQ_INT(rsbus_publish_batch(pub, evs, 3, NULL), RSBUS_OK);
    CHECK_EQ_INT(raw_int("XLEN orders"), len0 + 4);
    CHECK_EQ_INT(acl_denials("orders-publisher", what, sizeof what), 0);
    if (what[0]) fprintf(stderr, "  denied: %s\n", what);
    /* a readiness probe: Redis answers (the rest of health is not a publisher's business) */
    CHECK_EQ_INT(rsbus_health_check(pub, 1000000, why, sizeof why), RSBUS_HEALTHY);
    /* outside it: consuming and the DLQ */
    mark = slog_len;
    cons = open_role(R_PUBLISHER, "orders", "billing", "p2", 0);   /* XGROUP CREATE refused: tolerated */
    REQUIRE(cons != NULL);
    CHECK(count_log(mark, 0, "NOPERM") >= 1);
    CHECK_EQ_INT(rsbus_poll(cons, -1), RSBUS_E_AUTH);
    CHECK_CONTAINS(rsbus_errmsg(cons), "NOPERM");
    CHECK_CONTAINS(rsbus_errmsg(cons), "XREADGROUP");
    CHECK_EQ_INT(rsbus_claim(cons, 0, 0, &cs), RSBUS_E_AUTH);
    CHECK_EQ_INT(rsbus_dlq_list(cons, NULL, 10, &page), RSBUS_E_AUTH);
    CHECK_EQ_INT(rsbus_dlq_replay(cons, "1-1", nid), RSBUS_E_AUTH);
    CHECK_EQ_INT(rsbus_dlq_purge(cons, 1, &removed), RSBUS_E_AUTH);
    CHECK_EQ_INT(rsbus_stream_info_get(cons, &si), RSBUS_E_AUTH);
    CHECK_EQ_INT(rsbus_group_rewind(cons, NULL, "0"), RSBUS_E_AUTH);
    CHECK_EQ_INT(rsbus_consumers_gc(cons, NULL, 0, &removed), RSBUS_E_AUTH);
    rsbus_close(cons);
    /* another stream's key */
    other = open_role(R_PUBLISHER, "payments", "billing", "p3", 1);
    REQUIRE(other != NULL);
    CHECK_EQ_INT(pub_ev(other, "job.ok", "{}", NULL), RSBUS_E_AUTH);
    CHECK_CONTAINS(rsbus_errmsg(other), "NOPERM");
    CHECK_EQ_INT(rsbus_publish_batch(other, evs, 3, NULL), RSBUS_E_AUTH);
    CHECK_EQ_INT(raw_int("EXISTS payments"), 0);
    rsbus_close(other);
    CHECK_EQ_INT(raw_int("XLEN {orders}:dlq"), 0);
    rsbus_close(pub);
}

/* the worker's handlers: by type */
typedef struct work_log { int calls, ok, flaky, poison, dead, replays; int stop_at; rsbus *bus; char tenant[80]; } work_log;
static rsbus_verdict work_handler(const rsbus_msg *m, void *user) {
    work_log *w = (work_log *)user;
    rsbus_verdict v = RSBUS_ACK;
    w->calls++;
    if (m->tenant) snprintf(w->tenant, sizeof w->tenant, "%s", m->tenant);
    if (m->replay_of) w->replays++;
    else if (!strcmp(m->type, "job.ok")) w->ok++;
    else if (!strcmp(m->type, "job.flaky")) { w->flaky++; if (m->deliveries < 2) v = RSBUS_RETRY; }
    else if (!strcmp(m->type, "job.poison")) { w->poison++; snprintf(m->reason, RSBUS_REASON_SIZE, "always fails"); v = RSBUS_RETRY; }
    else if (!strcmp(m->type, "job.dead")) { w->dead++; snprintf(m->reason, RSBUS_REASON_SIZE, "refused"); v = RSBUS_DEAD; }
    if (w->bus && w->stop_at && w->calls >= w->stop_at) rsbus_stop(w->bus);
    return v;
}

TEST(worker_runs_end_to_end) {
    rsbus *pub, *wrk;
    rsbus_config c;
    work_log w;
    rsbus_stats st;
    char what[512], why[256], text[8192];
    size_t mark;
    long long dlq0 = raw_int("XLEN {orders}:dlq");
    pub = open_role(R_PUBLISHER, "orders", "billing", "p1", 1);
    REQUIRE(pub != NULL);
    /* the backlog so far (from the publisher test) is not this test's: skip it */
    freeReplyObject(raw("XGROUP SETID orders billing $"));
    /* an entry a "crashed" consumer took: the worker must claim it */
    CHECK_EQ_INT(pub_ev(pub, "job.ok", "{\"claimed\":true}", NULL), RSBUS_OK);
    freeReplyObject(raw("XREADGROUP GROUP billing ghost COUNT 1 STREAMS orders >"));
    CHECK_EQ_INT(pending_of("orders", "billing"), 1);
    CHECK_EQ_INT(pub_ev(pub, "job.ok", "{}", NULL), RSBUS_OK);
    CHECK_EQ_INT(pub_ev(pub, "job.ok", "{}", NULL), RSBUS_OK);
    CHECK_EQ_INT(pub_ev(pub, "job.flaky", "{}", NULL), RSBUS_OK);
    CHECK_EQ_INT(pub_ev(pub, "job.poison", "{}", NULL), RSBUS_OK);
    CHECK_EQ_INT(pub_ev(pub, "job.dead", "{}", NULL), RSBUS_OK);
    freeReplyObject(raw("XADD orders * type job.ok data %s", "{not json"));   /* malformed */
    rsbus_close(pub);

    c = role_cfg(R_WORKER, "orders", "billing", "w1");
    c.max_retries = 1;
    c.retry_backoff_ms = 20;
    c.claim_idle_ms = 100;
    c.claim_interval_ms = 50;
    c.block_ms = 50;
    mark = slog_len;
    acl_log_reset();
    wrk = open_logged(&c);
    REQUIRE(wrk != NULL);
    /* rsbus_open asks for XGROUP CREATE (refused: the admin made the group) and says so once */
    CHECK(count_log(mark, 'W', NULL) <= 1);
    CHECK(acl_denials("orders-worker", what, sizeof what) <= 1);
    acl_log_reset();
    mark = slog_len;
    memset(&w, 0, sizeof w);
    w.bus = wrk;
    w.stop_at = 8;   /* ok x2, claimed x1, flaky x2, poison x2, dead x1 */
    CHECK(rsbus_subscribe(wrk, "job.*", work_handler, &w) > 0);
    arm_alarm(15);
    CHECK_EQ_INT(rsbus_run(wrk, &alarm_stop), RSBUS_OK);
    alarm(0);
    CHECK(!alarm_stop);
    CHECK_EQ_INT(w.calls, 8);
    CHECK_EQ_INT(w.ok, 3);
    CHECK_EQ_INT(w.flaky, 2);
    CHECK_EQ_INT(w.poison, 2);
    CHECK_EQ_INT(w.dead, 1);
    CHECK_EQ_INT(pending_of("orders", "billing"), 0);
    CHECK_EQ_INT(raw_int("XLEN {orders}:dlq"), dlq0 + 3);   /* poison, dead, malformed */
    rsbus_stats_get(wrk, &st);
    CHECK_EQ_INT(st.dead_lettered, 3);
    CHECK_EQ_INT(st.malformed, 1);
    CHECK(st.claimed >= 1);
    /* quiet: no warning but the dead letters, and not one command outside the ACL */
    CHECK_EQ_INT(count_log(mark, 'W', NULL), count_log(mark, 'W', "dead-lettered entry"));
    CHECK_EQ_INT(count_log(mark, 0, "NOPERM"), 0);
    if (count_log(mark, 'W', NULL) != 3) show_warnings(mark);
    CHECK_EQ_INT(acl_denials("orders-worker", what, sizeof what), 0);
    if (what[0]) fprintf(stderr, "  denied: %s\n", what);
    /* health and metrics from the worker: it sees its group and its DLQ's length */
    CHECK_EQ_INT(rsbus_health_check(wrk, 1000, why, sizeof why), RSBUS_DEGRADED);
    CHECK_CONTAINS(why, "dead-letter stream holds 3 entries");
    CHECK_NOT_CONTAINS(why, "does not exist");
    (void)rsbus_metrics_text(wrk, text, sizeof text);
    CHECK_CONTAINS(text, "rsbus_up 1\n");
    CHECK_CONTAINS(text, "rsbus_dlq_length{stream=\"orders\"} 3\n");
    CHECK_CONTAINS(text, "rsbus_group_pending{stream=\"orders\",group=\"billing\"} 0\n");
    /* the only denial a probe causes: health's CONFIG GET maxmemory-policy (optional, see README) */
    (void)acl_denials("orders-worker", what, sizeof what);
    CHECK(what[0] == 0 || !strcmp(what, "config|get "));
    rsbus_close(wrk);
}

TEST(worker_is_refused_outside_its_job) {
    rsbus *wrk, *other;
    rsbus_config c;
    rsbus_dlq_page page;
    char nid[RSBUS_ID_SIZE], dlq_id[RSBUS_ID_SIZE] = "";
    int64_t removed = -1;
    long long dlq0 = raw_int("XLEN {orders}:dlq"), len0 = raw_int("XLEN orders");
    {
        redisReply *rep = raw("XRANGE {orders}:dlq - + COUNT 1");
        REQUIRE(rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 1);
        snprintf(dlq_id, sizeof dlq_id, "%s", rep->element[0]->element[0]->str);
        freeReplyObject(rep);
    }
    c = role_cfg(R_WORKER, "orders", "billing", "w1");
    wrk = open_logged(&c);
    REQUIRE(wrk != NULL);
    /* the DLQ is write-only for it: no reading, replaying or purging dead letters */
    CHECK_EQ_INT(rsbus_dlq_list(wrk, NULL, 10, &page), RSBUS_E_AUTH);
    CHECK_CONTAINS(rsbus_errmsg(wrk), "NOPERM");
    CHECK_EQ_INT(rsbus_dlq_replay(wrk, dlq_id, nid), RSBUS_E_AUTH);
    CHECK_CONTAINS(rsbus_errmsg(wrk), "NOPERM");
    CHECK_EQ_INT(rsbus_dlq_purge(wrk, INT64_C(9999999999999), &removed), RSBUS_E_AUTH);
    CHECK_CONTAINS(rsbus_errmsg(wrk), "NOPERM");
    CHECK_EQ_INT(removed, 0);
    CHECK_EQ_INT(raw_int("XLEN {orders}:dlq"), dlq0);
    /* no publishing (its handlers would need the publisher's +xadd), no trimming, no group admin */
    CHECK_EQ_INT(pub_ev(wrk, "job.ok", "{}", NULL), RSBUS_E_AUTH);
    CHECK_EQ_INT(rsbus_trim(wrk, &removed), RSBUS_E_AUTH);
    CHECK_EQ_INT(rsbus_group_rewind(wrk, NULL, "0"), RSBUS_E_AUTH);
    CHECK_EQ_INT(rsbus_consumers_gc(wrk, NULL, 0, &removed), RSBUS_E_AUTH);
    CHECK_EQ_INT(raw_int("XLEN orders"), len0);
    rsbus_close(wrk);
    /* another stream: neither consume nor publish */
    c = role_cfg(R_WORKER, "payments", "billing", "w1");
    other = open_logged(&c);
    REQUIRE(other != NULL);
    CHECK_EQ_INT(rsbus_poll(other, -1), RSBUS_E_AUTH);
    CHECK_EQ_INT(pub_ev(other, "job.ok", "{}", NULL), RSBUS_E_AUTH);
    CHECK_EQ_INT(raw_int("EXISTS payments"), 0);
    rsbus_close(other);
}

static int count_cb(const rsbus_msg *m, void *user) { (void)m; ++*(int *)user; return 0; }

TEST(admin_operates_the_dlq_and_the_groups) {
    rsbus *adm, *wrk, *cons, *other;
    rsbus_config c;
    rsbus_dlq_page page;
    rsbus_stream_info si;
    rsbus_group_info gi[4];
    rsbus_consumer_info ci[8];
    size_t n = 0, i;
    char nid[RSBUS_ID_SIZE], dead_id[RSBUS_ID_SIZE] = "", what[512], why[256], text[8192], last[RSBUS_ID_SIZE] = "";
    int64_t removed = -1, now = 0;
    work_log w;
    acl_log_reset();
    c = role_cfg(R_ADMIN, "orders", "billing", "admin");
    c.publish_only = 1;                    /* an operator's bus, like rsbusctl's */
    adm = open_logged(&c);
    REQUIRE(adm != NULL);
    /* info */
    CHECK_EQ_INT(rsbus_stream_info_get(adm, &si), RSBUS_OK);
    CHECK_EQ_INT(si.dlq_length, 3);
    CHECK_EQ_INT(si.groups, 2);
    CHECK_EQ_INT(rsbus_groups_list(adm, gi, 4, &n), RSBUS_OK);
    CHECK_EQ_INT(n, 2);
    CHECK_EQ_INT(rsbus_group_info_get(adm, "billing", &gi[0]), RSBUS_OK);
    CHECK_EQ_INT(gi[0].pending, 0);
    CHECK_EQ_INT(rsbus_consumers_list(adm, "billing", ci, 8, &n), RSBUS_OK);
    CHECK(n >= 2);   /* ghost, w1 */
    CHECK(rsbus_health_check(adm, 1000, why, sizeof why) == RSBUS_DEGRADED);
    CHECK_CONTAINS(why, "dead-letter stream holds 3 entries");
    (void)rsbus_metrics_text(adm, text, sizeof text);
    CHECK_CONTAINS(text, "rsbus_up 1\n");
    CHECK_EQ_INT(rsbus_server_time_ms(adm, &now), RSBUS_OK);
    CHECK(now > INT64_C(1600000000000));
    {
        int seen = 0;
        CHECK(rsbus_tail(adm, last, -1, count_cb, &seen) >= 0);
        CHECK(last[0] != 0);
        CHECK_EQ_INT(rsbus_replay_range(adm, "-", "+", count_cb, &seen), RSBUS_OK);
        CHECK(seen > 0);
    }
    /* the dead letters: list, replay the one a handler refused, purge the rest */
    CHECK_EQ_INT(rsbus_dlq_list(adm, NULL, 10, &page), RSBUS_OK);
    CHECK_EQ_INT(page.count, 3);
    for (i = 0; i < page.count; i++)
        if (page.entries[i].msg.type && !strcmp(page.entries[i].msg.type, "job.dead"))
            snprintf(dead_id, sizeof dead_id, "%s", page.entries[i].dlq_id);
    rsbus_dlq_page_free(adm, &page);
    REQUIRE(dead_id[0] != 0);
    CHECK_EQ_INT(rsbus_dlq_replay(adm, dead_id, nid), RSBUS_OK);
    CHECK_EQ_INT(raw_int("XLEN {orders}:dlq"), 2);
    /* the worker handles the replay */
    c = role_cfg(R_WORKER, "orders", "billing", "w1");
    wrk = open_logged(&c);
    REQUIRE(wrk != NULL);
    memset(&w, 0, sizeof w);
    CHECK(rsbus_subscribe(wrk, "job.*", work_handler, &w) > 0);
    {
        int64_t dl = test_now_ms() + 3000;
        while (w.replays == 0 && test_now_ms() < dl) (void)rsbus_poll(wrk, 20);
    }
    CHECK_EQ_INT(w.replays, 1);
    CHECK_EQ_INT(pending_of("orders", "billing"), 0);
    rsbus_close(wrk);
    CHECK_EQ_INT(rsbus_server_time_ms(adm, &now), RSBUS_OK);
    CHECK_EQ_INT(rsbus_dlq_purge(adm, now + 1000, &removed), RSBUS_OK);
    CHECK_EQ_INT(removed, 2);
    CHECK_EQ_INT(raw_int("XLEN {orders}:dlq"), 0);
    /* groups and consumers: rewind a group, delete an idle consumer (an atomic script: EVAL) */
    CHECK_EQ_INT(rsbus_group_rewind(adm, "audit", "0"), RSBUS_OK);
    test_sleep_ms(60);
    CHECK_EQ_INT(rsbus_consumers_gc(adm, "billing", 50, &removed), RSBUS_OK);
    CHECK(removed >= 1);
    CHECK_EQ_INT(rsbus_consumers_list(adm, "billing", ci, 8, &n), RSBUS_OK);
    for (i = 0; i < n && i < 8; i++) CHECK(strcmp(ci[i].name, "ghost") != 0);
    CHECK_EQ_INT(rsbus_trim(adm, &removed), RSBUS_OK);
    /* all of that without a denial, but health's optional CONFIG GET */
    (void)acl_denials("orders-admin", what, sizeof what);
    CHECK(what[0] == 0 || !strcmp(what, "config|get "));
    if (what[0] && strcmp(what, "config|get ")) fprintf(stderr, "  denied: %s\n", what);
    /* CONFIG GET would show every setting, requirepass and masterauth included: not granted */
    {
        redisContext *ac = role_ctx(R_ADMIN);
        redisReply *rep;
        REQUIRE(ac != NULL);
        rep = (redisReply *)redisCommand(ac, "CONFIG GET requirepass");
        CHECK(rep && rep->type == REDIS_REPLY_ERROR && !strncmp(rep->str, "NOPERM", 6));
        if (rep) freeReplyObject(rep);
        redisFree(ac);
    }
    /* the admin does not consume, nor touch other streams */
    c = role_cfg(R_ADMIN, "orders", "billing", "admin-consumer");
    cons = open_logged(&c);
    REQUIRE(cons != NULL);
    CHECK_EQ_INT(rsbus_poll(cons, -1), RSBUS_E_AUTH);
    CHECK_CONTAINS(rsbus_errmsg(cons), "NOPERM");
    rsbus_close(cons);
    other = open_role(R_ADMIN, "payments", "billing", "admin", 1);
    REQUIRE(other != NULL);
    CHECK_EQ_INT(rsbus_stream_info_get(other, &si), RSBUS_E_AUTH);
    CHECK_EQ_INT(rsbus_dlq_list(other, NULL, 10, &page), RSBUS_E_AUTH);
    CHECK_EQ_INT(pub_ev(other, "job.ok", "{}", NULL), RSBUS_E_AUTH);
    rsbus_close(other);
    rsbus_close(adm);
}

static int dd_handled;
static rsbus_verdict dd_handler(const rsbus_msg *m, void *user) { (void)m; (void)user; dd_handled++; return RSBUS_ACK; }
TEST(optional_worker_rules) {
    rsbus *wrk;
    rsbus_config c;
    int64_t removed = -1;
    size_t mark;
    char what[256];
    /* trim_policy RSBUS_TRIM_ACKED: the worker trims what every group acknowledged */
    c = role_cfg(R_WORKER, "orders", "billing", "w1");
    c.trim_policy = RSBUS_TRIM_ACKED;
    wrk = open_logged(&c);
    REQUIRE(wrk != NULL);
    CHECK_EQ_INT(rsbus_trim(wrk, &removed), RSBUS_E_AUTH);
    CHECK(apply(acl_worker_trim_acked));
    CHECK_EQ_INT(rsbus_trim(wrk, &removed), RSBUS_OK);
    CHECK(removed >= 0);
    /* ... still not the DLQ: XTRIM is granted on ~orders only */
    CHECK_EQ_INT(rsbus_dlq_purge(wrk, INT64_C(9999999999999), &removed), RSBUS_E_AUTH);
    rsbus_close(wrk);
    /* workers that create their own group: rsbus_open then neither warns nor is denied */
    CHECK(apply(acl_worker_create_group));
    acl_log_reset();
    mark = slog_len;
    c = role_cfg(R_WORKER, "orders", "self-made", "w1");
    c.group_start = "$";
    wrk = open_logged(&c);
    REQUIRE(wrk != NULL);
    CHECK_EQ_INT(count_log(mark, 'W', NULL), 0);
    CHECK_EQ_INT(acl_denials("orders-worker", what, sizeof what), 0);
    CHECK_EQ_INT(rsbus_poll(wrk, -1), 0);
    rsbus_close(wrk);
    freeReplyObject(raw("XGROUP DESTROY orders self-made"));
    /* dedupe_ttl_ms: without its keys the batch is not handled (and stays pending); with them it works */
    freeReplyObject(raw("XGROUP SETID orders billing $"));
    freeReplyObject(raw("XADD orders * type job.dd id dd-1 data {}"));
    freeReplyObject(raw("XADD orders * type job.dd id dd-1 data {}"));
    c = role_cfg(R_WORKER, "orders", "billing", "w1");
    c.dedupe_ttl_ms = 60000;
    wrk = open_logged(&c);
    REQUIRE(wrk != NULL);
    dd_handled = 0;
    CHECK(rsbus_subscribe(wrk, "job.dd", dd_handler, NULL) > 0);
    CHECK_EQ_INT(rsbus_poll(wrk, -1), RSBUS_E_AUTH);
    CHECK_CONTAINS(rsbus_errmsg(wrk), "MGET");
    CHECK_EQ_INT(dd_handled, 0);
    CHECK(apply(acl_worker_dedupe));
    acl_log_reset();
    WAIT_UNTIL(rsbus_claim(wrk, 0, 0, NULL) == RSBUS_OK && pending_of("orders", "billing") == 0, 3000);
    CHECK_EQ_INT(dd_handled, 1);
    CHECK_EQ_INT(raw_int("EXISTS {orders}:dedupe:billing:dd-1"), 1);
    CHECK_EQ_INT(acl_denials("orders-worker", what, sizeof what), 0);
    rsbus_close(wrk);
    /* the worker's line again: back to the base rules */
    CHECK(apply(acl_recipe[R_WORKER]));
    c = role_cfg(R_WORKER, "orders", "billing", "w1");
    c.trim_policy = RSBUS_TRIM_ACKED;
    wrk = open_logged(&c);
    REQUIRE(wrk != NULL);
    CHECK_EQ_INT(rsbus_trim(wrk, &removed), RSBUS_E_AUTH);
    rsbus_close(wrk);
}

/* ---- 2. tenants -------------------------------------------------------------------------------- */

TEST(tenants_are_isolated) {
    rsbus *acme, *globex, *spy, *spy2;
    rsbus_config c;
    rsbus_event ev;
    work_log wa, wg;
    rsbus_dlq_page page;
    rsbus_stream_info si;
    char globex_dlq_id[RSBUS_ID_SIZE] = "", acme_dlq_id[RSBUS_ID_SIZE] = "", nid[RSBUS_ID_SIZE], what[512];
    int64_t removed = -1;
    size_t mark, i;
    long long ga, gd;
    acl_log_reset();
    mark = slog_len;
    c = role_cfg(R_ACME, "orders", "billing", "a1");
    c.tenant = "acme";
    acme = open_logged(&c);
    c = role_cfg(R_GLOBEX, "orders", "billing", "g1");
    c.tenant = "globex";
    globex = open_logged(&c);
    REQUIRE(acme && globex);
    CHECK_EQ_INT(count_log(mark, 'W', NULL), 0);
    memset(&wa, 0, sizeof wa);
    memset(&wg, 0, sizeof wg);
    CHECK(rsbus_subscribe(acme, "*", work_handler, &wa) > 0);
    CHECK(rsbus_subscribe(globex, "*", work_handler, &wg) > 0);
    /* each publishes and consumes its own */
    CHECK_EQ_INT(pub_ev(acme, "job.ok", "{\"who\":\"acme\"}", NULL), RSBUS_OK);
    CHECK_EQ_INT(pub_ev(acme, "job.dead", "{}", NULL), RSBUS_OK);
    CHECK_EQ_INT(pub_ev(globex, "job.ok", "{\"who\":\"globex\"}", NULL), RSBUS_OK);
    CHECK_EQ_INT(pub_ev(globex, "job.dead", "{}", NULL), RSBUS_OK);
    CHECK_EQ_INT(raw_int("XLEN tenant:acme:orders"), 2);
    CHECK_EQ_INT(raw_int("XLEN tenant:globex:orders"), 2);
    CHECK_EQ_INT(rsbus_poll(acme, -1), 2);
    CHECK_EQ_INT(rsbus_poll(globex, -1), 2);
    CHECK_EQ_INT(wa.ok, 1);
    CHECK_EQ_INT(wg.ok, 1);
    CHECK_EQ_STR(wa.tenant, "acme");
    CHECK_EQ_STR(wg.tenant, "globex");
    CHECK_EQ_INT(raw_int("XLEN {tenant:acme:orders}:dlq"), 1);
    CHECK_EQ_INT(raw_int("XLEN {tenant:globex:orders}:dlq"), 1);
    {
        redisReply *rep = raw("XRANGE {tenant:globex:orders}:dlq - +");
        REQUIRE(rep && rep->elements == 1);
        snprintf(globex_dlq_id, sizeof globex_dlq_id, "%s", rep->element[0]->element[0]->str);
        freeReplyObject(rep);
        rep = raw("XRANGE {tenant:acme:orders}:dlq - +");
        REQUIRE(rep && rep->elements == 1);
        snprintf(acme_dlq_id, sizeof acme_dlq_id, "%s", rep->element[0]->element[0]->str);
        freeReplyObject(rep);
    }
    /* each replays its own dead letter */
    CHECK_EQ_INT(rsbus_dlq_replay(acme, acme_dlq_id, nid), RSBUS_OK);
    CHECK_EQ_INT(rsbus_poll(acme, -1), 1);
    CHECK_EQ_INT(wa.replays, 1);
    CHECK_EQ_INT(acl_denials("tenant-acme", what, sizeof what), 0);
    CHECK_EQ_INT(acl_denials("tenant-globex", what, sizeof what), 0);
    /* rsbus's own checks: an event of another tenant is refused before anything is sent ... */
    memset(&ev, 0, sizeof ev);
    ev.type = "job.ok";
    ev.tenant = "globex";
    CHECK_EQ_INT(rsbus_publish(acme, &ev, NULL), RSBUS_E_ARG);
    CHECK_CONTAINS(rsbus_errmsg(acme), "tenant");
    CHECK_EQ_INT(rsbus_publish_batch(acme, &ev, 1, NULL), RSBUS_E_ARG);
    CHECK_EQ_INT(raw_int("XLEN tenant:acme:orders"), 3);
    CHECK_EQ_INT(raw_int("XLEN tenant:globex:orders"), 2);
    /* ... and an entry of another tenant (or of none) in acme's stream reaches no handler */
    freeReplyObject(raw("XADD tenant:acme:orders * type job.ok data {} tenant globex"));
    freeReplyObject(raw("XADD tenant:acme:orders * type job.ok data {}"));
    CHECK_EQ_INT(rsbus_poll(acme, -1), 2);
    CHECK_EQ_INT(wa.ok, 1);
    CHECK_EQ_INT(wg.calls, 2);
    CHECK_EQ_INT(raw_int("XLEN {tenant:acme:orders}:dlq"), 2);
    CHECK(dlq_has("{tenant:acme:orders}:dlq", "tenant", "globex", "tenant"));
    CHECK_EQ_INT(rsbus_poll(globex, -1), 0);
    /* the server's refusal: acme's credentials on globex's keys (rsbus_open tolerates the refused
       XGROUP CREATE, everything after it is refused) */
    ga = raw_int("XLEN tenant:globex:orders");
    gd = raw_int("XLEN {tenant:globex:orders}:dlq");
    mark = slog_len;
    c = role_cfg(R_ACME, "orders", "billing", "spy");
    c.tenant = "globex";
    spy = open_logged(&c);
    REQUIRE(spy != NULL);
    CHECK(count_log(mark, 0, "NOPERM") >= 1);
    CHECK_EQ_INT(pub_ev(spy, "job.ok", "{}", NULL), RSBUS_E_AUTH);
    CHECK_CONTAINS(rsbus_errmsg(spy), "NOPERM");
    CHECK_EQ_INT(rsbus_poll(spy, -1), RSBUS_E_AUTH);
    CHECK_CONTAINS(rsbus_errmsg(spy), "NOPERM");
    CHECK_EQ_INT(rsbus_claim(spy, 0, 0, NULL), RSBUS_E_AUTH);
    CHECK_EQ_INT(rsbus_dlq_list(spy, NULL, 10, &page), RSBUS_E_AUTH);
    CHECK_EQ_INT(rsbus_dlq_replay(spy, globex_dlq_id, nid), RSBUS_E_AUTH);
    CHECK_EQ_INT(rsbus_dlq_purge(spy, INT64_C(9999999999999), &removed), RSBUS_E_AUTH);
    CHECK_EQ_INT(rsbus_stream_info_get(spy, &si), RSBUS_E_AUTH);
    rsbus_close(spy);
    /* without rsbus's tenant option, naming globex's key as the stream: the same */
    c = role_cfg(R_ACME, "tenant:globex:orders", "billing", "spy");
    spy2 = open_logged(&c);
    REQUIRE(spy2 != NULL);
    CHECK_EQ_INT(pub_ev(spy2, "job.ok", "{}", NULL), RSBUS_E_AUTH);
    CHECK_EQ_INT(rsbus_poll(spy2, -1), RSBUS_E_AUTH);
    CHECK_EQ_INT(rsbus_dlq_list(spy2, NULL, 10, &page), RSBUS_E_AUTH);
    rsbus_close(spy2);
    /* ... nor the untenanted stream of the same name */
    c = role_cfg(R_ACME, "orders", "billing", "spy");
    c.publish_only = 1;
    spy2 = open_logged(&c);
    REQUIRE(spy2 != NULL);
    CHECK_EQ_INT(pub_ev(spy2, "job.ok", "{}", NULL), RSBUS_E_AUTH);
    rsbus_close(spy2);
    CHECK_EQ_INT(raw_int("XLEN tenant:globex:orders"), ga);
    CHECK_EQ_INT(raw_int("XLEN {tenant:globex:orders}:dlq"), gd);
    CHECK(dlq_has("{tenant:globex:orders}:dlq", "type", "job.dead", NULL));
    {
        redisReply *rep = raw("XRANGE {tenant:globex:orders}:dlq - +");
        int still = 0;
        for (i = 0; rep && i < rep->elements; i++) still |= !strcmp(rep->element[i]->element[0]->str, globex_dlq_id);
        CHECK(still);
        if (rep) freeReplyObject(rep);
    }
    CHECK_EQ_INT(wg.calls, 2);
    rsbus_close(acme);
    rsbus_close(globex);
}

/* ---- 3. nothing secret leaks ------------------------------------------------------------------- */

#define PW_MARK "S3cr3t-Marker-Pw"
#define USER_MARK "Marker-User-77"
#define PAYLOAD_MARK "PAYLOAD-MARKER-1234"

static test_redis s2;                 /* the server of the secrets test: ACL user from its config, AOF */
static char s2_url[300], s2_unix_url[600];

/* The worker of the secrets test, in a child process: every log line and error message into a file. */
static volatile sig_atomic_t child_stop;
static void on_child_term(int sig) { (void)sig; child_stop = 1; }
static rsbus_verdict secret_handler(const rsbus_msg *m, void *user) {
    (void)user;
    if (m->replay_of) return RSBUS_ACK;
    if (!strcmp(m->type, "sec.fail")) { snprintf(m->reason, RSBUS_REASON_SIZE, "downstream said no"); return RSBUS_RETRY; }
    if (!strcmp(m->type, "sec.dead")) return RSBUS_DEAD;
    return RSBUS_ACK;
}
/* A text for the parent: an error message or health's why (one line: control characters flagged), or
   the metrics text (lines). */
static void child_note(const char *text, int one_line) {
    static char buf[16384];
    int k;
    if (slog_fd < 0) return;
    k = snprintf(buf, sizeof buf, "%sNOTE %s\n", one_line && has_ctrl(text, strlen(text)) ? "CONTROL-CHARACTER-IN-NOTE " : "",
                 text);
    if (k > 0 && write(slog_fd, buf, (size_t)k < sizeof buf ? (size_t)k : sizeof buf - 1) < 0) { /* nothing */ }
}
static void secret_worker_main(void *arg) {
    const char *path = (const char *)arg;
    rsbus_config c;
    rsbus_error err;
    rsbus *bus;
    struct sigaction sa;
    char text[8192], why[512];
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_child_term;
    sigaction(SIGTERM, &sa, NULL);
    slog_fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (slog_fd < 0) _exit(2);
    c = test_cfg("sec", "g", "sec-worker");
    c.url = s2_url;
    c.log = sec_log;
    c.max_retries = 1;
    c.retry_backoff_ms = 20;
    c.claim_interval_ms = 50;
    c.block_ms = 50;
    bus = rsbus_open(&c, &err);
    if (!bus) { child_note(err.msg, 1); _exit(3); }
    if (rsbus_subscribe(bus, "*", secret_handler, NULL) <= 0) _exit(4);
    if (rsbus_run(bus, &child_stop) != RSBUS_OK) _exit(5);
    child_note(rsbus_errmsg(bus), 1);
    (void)rsbus_metrics_text(bus, text, sizeof text);
    child_note(text, 0);
    (void)rsbus_health_check(bus, 10, why, sizeof why);
    child_note(why, 1);
    child_note(rsbus_errmsg(bus), 1);
    rsbus_close(bus);
    close(slog_fd);
    _exit(0);
}

/* An event with the payload marker everywhere a caller may put data. */
static rsbus_result publish_marked(rsbus *bus, const char *type) {
    rsbus_event ev;
    rsbus_result r;
    memset(&ev, 0, sizeof ev);
    ev.type = type;
    ev.data = "{\"card\":\"" PAYLOAD_MARK "\",\"n\":[1,2,3]}";
    ev.key = PAYLOAD_MARK "-key";
    ev.source = PAYLOAD_MARK "-src";
    ev.correlation_id = PAYLOAD_MARK "-corr";
    ev.traceparent = PAYLOAD_MARK "-trace";
    r = rsbus_publish(bus, &ev, NULL);
    NOTE(bus);
    return r;
}
static long long s2_int(redisContext *c, const char *cmd) {
    redisReply *rep = (redisReply *)redisCommand(c, cmd);
    long long v = -1;
    if (rep && rep->type == REDIS_REPLY_INTEGER) v = rep->integer;
    if (rep) freeReplyObject(rep);
    return v;
}
static redisContext *s2_ctx(void) { return test_redis_connect(&s2); }

/* A field of a flat [k, v, ...] reply. */
static const redisReply *field_of(const redisReply *m, const char *key) {
    size_t i;
    if (!m || m->type != REDIS_REPLY_ARRAY) return NULL;
    for (i = 0; i + 1 < m->elements; i += 2)
        if (m->element[i]->str && !strcmp(m->element[i]->str, key)) return m->element[i + 1];
    return NULL;
}
/* Waits until the secrets test's group g has read every entry of "sec", nothing is pending and the DLQ
   holds dlq entries. */
static int wait_settled(long long dlq, int ms) {
    int64_t dl = test_now_ms() + ms;
    for (;;) {
        redisContext *c = s2_ctx();
        long long got = -1, pend = -1;
        int caught_up = 0;
        if (c) {
            redisReply *rep = (redisReply *)redisCommand(c, "XPENDING sec g");
            redisReply *si = (redisReply *)redisCommand(c, "XINFO STREAM sec");
            redisReply *gs = (redisReply *)redisCommand(c, "XINFO GROUPS sec");
            const redisReply *last = field_of(si, "last-generated-id");
            size_t i;
            got = s2_int(c, "XLEN {sec}:dlq");
            if (rep && rep->type == REDIS_REPLY_ARRAY && rep->elements >= 1 && rep->element[0]->type == REDIS_REPLY_INTEGER)
                pend = rep->element[0]->integer;
            for (i = 0; last && last->str && gs && gs->type == REDIS_REPLY_ARRAY && i < gs->elements; i++) {
                const redisReply *name = field_of(gs->element[i], "name"), *ld = field_of(gs->element[i], "last-delivered-id");
                if (name && name->str && !strcmp(name->str, "g") && ld && ld->str && !strcmp(ld->str, last->str)) caught_up = 1;
            }
            if (rep) freeReplyObject(rep);
            if (si) freeReplyObject(si);
            if (gs) freeReplyObject(gs);
            redisFree(c);
        }
        if (got == dlq && pend == 0 && caught_up) return 1;
        if (test_now_ms() > dl) {
            fprintf(stderr, "  wait_settled: dlq %lld (want %lld), pending %lld, caught up %d\n", got, dlq, pend, caught_up);
            return 0;
        }
        test_sleep_ms(20);
    }
}

TEST(nothing_secret_in_a_whole_run) {
    char path[300], big[6000], why[512], text[8192], url[600];
    rsbus_config c;
    rsbus_error err;
    rsbus *pub, *adm;
    rsbus_event evs[3];
    rsbus_dlq_page page;
    redisContext *rc;
    pid_t child;
    int64_t removed, now = 0;
    size_t i, slog_mark = slog_len, notes_mark = notes_len;
    REQUIRE(test_redis_start(&s2, "appendonly yes\nappendfsync always\n"
                                  "user " USER_MARK " on >" PW_MARK " ~* &* +@all\n") == 0);
    snprintf(s2_url, sizeof s2_url, "redis://" USER_MARK ":" PW_MARK "@127.0.0.1:%d", s2.port);
    snprintf(s2_unix_url, sizeof s2_unix_url, "%s?user=" USER_MARK "&password=" PW_MARK, s2.unix_url);
    tmp_path(path, sizeof path, "secret-worker.log");

    /* the publisher: the password in a unix URL's query */
    c = test_cfg("sec", "g", "sec-pub");
    c.url = s2_unix_url;
    c.log = sec_log;
    c.publish_only = 1;
    c.max_event_bytes = 4096;
    pub = open_logged(&c);
    REQUIRE(pub != NULL);
    /* the worker's group first, so that it sees everything */
    rc = s2_ctx();
    REQUIRE(rc != NULL);
    freeReplyObject(redisCommand(rc, "XGROUP CREATE sec g 0 MKSTREAM"));
    child = spawn(secret_worker_main, path);
    REQUIRE(child > 0);

    /* events carrying the marker: handled, retried and dead-lettered, refused */
    CHECK_EQ_INT(publish_marked(pub, "sec.ok"), RSBUS_OK);
    CHECK_EQ_INT(publish_marked(pub, "sec.fail"), RSBUS_OK);
    CHECK_EQ_INT(publish_marked(pub, "sec.dead"), RSBUS_OK);
    memset(evs, 0, sizeof evs);
    for (i = 0; i < 3; i++) { evs[i].type = "sec.ok"; evs[i].data = "\"" PAYLOAD_MARK "\""; evs[i].key = PAYLOAD_MARK; }
    CHECK_EQ_INT(rsbus_publish_batch(pub, evs, 3, NULL), RSBUS_OK);
    NOTE(pub);
    {
        rsbus_event ev;
        char longkey[1100];
        memset(&ev, 0, sizeof ev);
        ev.type = "sec.ok";
        ev.data = "{\"" PAYLOAD_MARK "\": ";                   /* not JSON */
        CHECK_EQ_INT(rsbus_publish(pub, &ev, NULL), RSBUS_E_ARG);
        NOTE(pub);
        memset(big, ' ', sizeof big - 1);
        big[sizeof big - 1] = 0;
        memcpy(big, "\"" PAYLOAD_MARK "\"", strlen(PAYLOAD_MARK) + 2);   /* over max_event_bytes */
        ev.data = big;
        CHECK_EQ_INT(rsbus_publish(pub, &ev, NULL), RSBUS_E_ARG);
        NOTE(pub);
        ev.data = NULL;
        memset(longkey, 'k', sizeof longkey - 1);
        longkey[sizeof longkey - 1] = 0;
        memcpy(longkey, PAYLOAD_MARK, strlen(PAYLOAD_MARK));
        ev.key = longkey;                                          /* over 1024 bytes */
        CHECK_EQ_INT(rsbus_publish(pub, &ev, NULL), RSBUS_E_ARG);
        NOTE(pub);
        ev.key = NULL;
        ev.tenant = PAYLOAD_MARK;                                  /* fine on an untenanted bus: carried as data */
        CHECK_EQ_INT(rsbus_publish(pub, &ev, NULL), RSBUS_OK);
        NOTE(pub);
        evs[1].data = "[" PAYLOAD_MARK "]";
        CHECK_EQ_INT(rsbus_publish_batch(pub, evs, 3, NULL), RSBUS_E_ARG);
        NOTE(pub);
        evs[1].data = "\"" PAYLOAD_MARK "\"";
    }
    /* malformed entries carrying the marker (written by another client) */
    {
        static const char *const bad_json[] = { "type", "sec.ok", "data", ("{" PAYLOAD_MARK) };
        static const char *const bad_type[] = { "type", (PAYLOAD_MARK "!"), "data", "{}" };
        static const char *many[2 * 270];   /* more than the 256 field pairs a consumed entry may have */
        for (i = 0; i < 270; i++) { many[2 * i] = i == 0 ? "type" : i == 1 ? "data" : PAYLOAD_MARK; many[2 * i + 1] = i == 0 ? "sec.ok" : i == 1 ? "{}" : PAYLOAD_MARK; }
        CHECK(xadd_fields(rc, "sec", 2, bad_json, NULL, NULL));
        CHECK(xadd_fields(rc, "sec", 2, bad_type, NULL, NULL));
        CHECK(xadd_fields(rc, "sec", 270, many, NULL, NULL));
    }
    /* 1 fail + 1 dead + 3 malformed dead-lettered once the worker is through */
    CHECK(wait_settled(5, 10000));

    /* the server dies mid-run: publishing, health, metrics and opening fail; the worker waits */
    redisFree(rc);
    rc = NULL;
    test_redis_kill(&s2);
    CHECK(publish_marked(pub, "sec.ok") != RSBUS_OK);
    CHECK(rsbus_health_check(pub, 10, why, sizeof why) == RSBUS_UNHEALTHY);
    note_err(why);
    (void)rsbus_metrics_text(pub, text, sizeof text);
    note(text);
    c = test_cfg("sec", "g", "sec-late");
    c.url = s2_url;
    c.log = sec_log;
    CHECK(rsbus_open(&c, &err) == NULL);
    CHECK_EQ_INT(err.code, RSBUS_E_IO);
    note_err(err.msg);
    test_sleep_ms(400);   /* the worker logs its reconnect attempts meanwhile */
    REQUIRE(test_redis_restart(&s2) == 0);
    /* back: the publisher reconnects by itself, the worker too */
    CHECK_EQ_INT(publish_marked(pub, "sec.fail"), RSBUS_OK);
    CHECK_EQ_INT(publish_marked(pub, "sec.dead"), RSBUS_OK);
    CHECK_EQ_INT(publish_marked(pub, "sec.ok"), RSBUS_OK);
    CHECK(wait_settled(7, 10000));
    {   /* the marker did flow through rsbus: the dead letters hold it (as they must) */
        redisContext *c2 = s2_ctx();
        redisReply *rep = c2 ? (redisReply *)redisCommand(c2, "XRANGE {sec}:dlq - +") : NULL;
        size_t k, j;
        int held = 0;
        for (k = 0; rep && rep->type == REDIS_REPLY_ARRAY && k < rep->elements; k++) {
            const redisReply *fl = rep->element[k]->element[1];
            for (j = 0; j < fl->elements; j++) held |= fl->element[j]->str && strstr(fl->element[j]->str, PAYLOAD_MARK) != NULL;
        }
        CHECK(held);
        if (rep) freeReplyObject(rep);
        if (c2) redisFree(c2);
    }

    /* an operator: list, replay, purge, info, health, metrics, consumers */
    c = test_cfg("sec", "g", "sec-admin");
    c.url = s2_url;
    c.log = sec_log;
    c.publish_only = 1;
    adm = open_logged(&c);
    REQUIRE(adm != NULL);
    CHECK_EQ_INT(rsbus_dlq_list(adm, NULL, 100, &page), RSBUS_OK);
    NOTE(adm);
    CHECK_EQ_INT(page.count, 7);
    for (i = 0; i < page.count; i++) {
        /* dlq_error is a log of sorts: fixed texts and the handler's reason, never the payload */
        CHECK(page.entries[i].error != NULL);
        if (page.entries[i].error) CHECK_NOT_CONTAINS(page.entries[i].error, PAYLOAD_MARK);
        if (page.entries[i].msg.type && !strcmp(page.entries[i].msg.type, "sec.dead")) {
            char nid[RSBUS_ID_SIZE];
            CHECK_EQ_INT(rsbus_dlq_replay(adm, page.entries[i].dlq_id, nid), RSBUS_OK);
            NOTE(adm);
        }
    }
    CHECK_EQ_INT(rsbus_dlq_replay(adm, "1-1", NULL), RSBUS_E_NOTFOUND);
    NOTE(adm);
    rsbus_dlq_page_free(adm, &page);
    CHECK(wait_settled(5, 10000));    /* the replays are handled */
    {
        rsbus_stream_info si;
        rsbus_group_info gi[4];
        rsbus_consumer_info ci[8];
        size_t n;
        CHECK_EQ_INT(rsbus_stream_info_get(adm, &si), RSBUS_OK);
        NOTE(adm);
        CHECK_EQ_INT(rsbus_groups_list(adm, gi, 4, &n), RSBUS_OK);
        NOTE(adm);
        CHECK_EQ_INT(rsbus_consumers_list(adm, "g", ci, 8, &n), RSBUS_OK);
        NOTE(adm);
        CHECK_EQ_INT(rsbus_consumers_gc(adm, "g", 3600000, &removed), RSBUS_OK);
        NOTE(adm);
    }
    (void)rsbus_health_check(adm, 10, why, sizeof why);
    note_err(why);
    (void)rsbus_metrics_text(adm, text, sizeof text);
    note(text);
    CHECK_EQ_INT(rsbus_server_time_ms(adm, &now), RSBUS_OK);
    CHECK_EQ_INT(rsbus_dlq_purge(adm, now + 1000, &removed), RSBUS_OK);
    NOTE(adm);
    CHECK_EQ_INT(removed, 5);
    (void)rsbus_metrics_text(pub, text, sizeof text);
    note(text);
    (void)rsbus_health_check(pub, 10, why, sizeof why);
    note_err(why);

    /* wrong passwords, and URLs holding the password that do not even parse */
    {
        static const char *const bad_urls[] = {
            "redis://" USER_MARK ":" PW_MARK "-WRONG@127.0.0.1:%d",
            "redis://:" PW_MARK "@127.0.0.1:%d",                 /* the default user has no password */
            "redis://" USER_MARK ":" PW_MARK "@127.0.0.1:%d/notadb",
            "redis://" USER_MARK ":" PW_MARK "%%zz@127.0.0.1:%d",
            "redis://" USER_MARK ":" PW_MARK "@127.0.0.1:99999%d",
            "redis://" USER_MARK ":" PW_MARK "@127.0.0.1:%d?password=x",
            "redis://" USER_MARK ":" PW_MARK " @127.0.0.1:%d",
        };
        for (i = 0; i < sizeof bad_urls / sizeof bad_urls[0]; i++) {
            snprintf(url, sizeof url, bad_urls[i], s2.port);
            c = test_cfg("sec", "g", "sec-bad");
            c.url = url;
            c.log = sec_log;
            CHECK(rsbus_open(&c, &err) == NULL);
            CHECK(err.code == RSBUS_E_AUTH || err.code == RSBUS_E_ARG);
            note_err(err.msg);
        }
        snprintf(url, sizeof url, "%s?user=" USER_MARK "&password=" PW_MARK "-WRONG", s2.unix_url);
        c.url = url;
        CHECK(rsbus_open(&c, &err) == NULL);
        CHECK_EQ_INT(err.code, RSBUS_E_AUTH);
        note_err(err.msg);
        /* from the environment: a bad variable is named, no value is shown */
        setenv("RSBUSSEC_URL", s2_url, 1);
        setenv("RSBUSSEC_BATCH_SIZE", PW_MARK, 1);
        memset(&c, 0, sizeof c);
        CHECK_EQ_INT(rsbus_config_from_env(&c, "RSBUSSEC_", &err), RSBUS_E_ARG);
        CHECK_CONTAINS(err.msg, "RSBUSSEC_BATCH_SIZE");
        note_err(err.msg);
        unsetenv("RSBUSSEC_URL");
        unsetenv("RSBUSSEC_BATCH_SIZE");
    }

    /* the worker's lines: stop it, read its file */
    kill(child, SIGTERM);
    CHECK_EQ_INT(reap(child, 10000), 0);
    {
        FILE *f = fopen(path, "r");
        char buf[4096];
        size_t n;
        REQUIRE(f != NULL);
        while ((n = fread(buf, 1, sizeof buf, f)) > 0) slog_append(buf, n);
        fclose(f);
    }
    rsbus_close(adm);
    rsbus_close(pub);

    /* the capture worked ... */
    CHECK(strstr(slog + slog_mark, "redis://***@127.0.0.1:") != NULL);
    CHECK(strstr(slog + slog_mark, "unix://") != NULL);
    CHECK(strstr(slog + slog_mark, "dead-lettered entry") != NULL);
    CHECK(strstr(slog + slog_mark, "cannot reach Redis") != NULL);
    CHECK(strstr(slog + slog_mark, "NOTE ") != NULL);
    CHECK(strstr(slog + slog_mark, "rsbus_dead_lettered_total") != NULL);
    CHECK(strstr(notes + notes_mark, "rsbus_up 0") != NULL);
    CHECK(strstr(notes + notes_mark, "Redis unreachable") != NULL);
    CHECK(strstr(notes + notes_mark, "AUTH") != NULL);
    /* ... and no secret is in it */
    CHECK_NOT_CONTAINS(slog + slog_mark, PW_MARK);
    CHECK_NOT_CONTAINS(slog + slog_mark, USER_MARK);
    CHECK_NOT_CONTAINS(slog + slog_mark, PAYLOAD_MARK);
    CHECK_NOT_CONTAINS(notes + notes_mark, PW_MARK);
    CHECK_NOT_CONTAINS(notes + notes_mark, USER_MARK);
    CHECK_NOT_CONTAINS(notes + notes_mark, PAYLOAD_MARK);
    CHECK_NOT_CONTAINS(slog + slog_mark, "CONTROL-CHARACTER-IN-");
    CHECK_EQ_INT(slog_ctrl, 0);
    CHECK_EQ_INT(notes_ctrl, 0);
    if (slog_ctrl) fprintf(stderr, "  first log line with a control character: %s\n", shown(slog_ctrl_first));
    if (notes_ctrl) fprintf(stderr, "  first message with a control character: %s\n", shown(notes_ctrl_first));
    test_redis_stop(&s2);
}

/* A fake Redis that answers rsbus's commands with error texts no real Redis sends (hiredis passes a lone
   "\n" or "\r" inside an error line through), so that cleaning can be tested. */
TEST__UNUSED static const char *fake_reply(const char *cmd, const char *sub, char *buf, size_t size) {
    static const char policy[] = "allkeys-\033[2J\nFORGED LINE\r\n";
    if (!strcmp(cmd, "PING")) return "+PONG\r\n";
    if (!strcmp(cmd, "AUTH")) return "-WRONGPASS " PW_MARK " echoed\nFORGED\033[31m\r\n";
    if (!strcmp(cmd, "XADD")) return "-ERR evil\nFORGED LOG LINE\033[2J\007\177\r\n";
    if (!strcmp(cmd, "XGROUP")) return "+OK\r\n";
    if (!strcmp(cmd, "XREADGROUP")) return "-NOPERM no\nFORGED\r\n";
    if (!strcmp(cmd, "XLEN")) return ":0\r\n";
    if (!strcmp(cmd, "XINFO") && !strcmp(sub, "GROUPS")) return "*0\r\n";
    if (!strcmp(cmd, "CONFIG")) {
        snprintf(buf, size, "*2\r\n$16\r\nmaxmemory-policy\r\n$%u\r\n%s", (unsigned)(sizeof policy - 3), policy);
        return buf;
    }
    return "-ERR no such thing\r\tFORGED\r\n";
}
TEST__UNUSED static void fake_serve(int fd) {
    static char in[1 << 16];
    size_t len = 0;
    for (;;) {
        ssize_t got = read(fd, in + len, sizeof in - len);
        if (got <= 0) return;
        len += (size_t)got;
        for (;;) {   /* every complete command in the buffer: *N\r\n then N times $L\r\n<L bytes>\r\n */
            size_t pos = 0, argc, k;
            char cmd[32] = "", sub[32] = "", out[512];
            const char *rep;
            char *end = (char *)memchr(in, '\n', len);
            if (!len || in[0] != '*' || !end) break;
            argc = (size_t)strtoul(in + 1, NULL, 10);
            pos = (size_t)(end - in) + 1;
            for (k = 0; k < argc; k++) {
                size_t l;
                char *e2;
                if (pos >= len || in[pos] != '$' || !(e2 = (char *)memchr(in + pos, '\n', len - pos))) break;
                l = (size_t)strtoul(in + pos + 1, NULL, 10);
                pos = (size_t)(e2 - in) + 1;
                if (pos + l + 2 > len) break;
                if (k < 2) {
                    char *dst = k == 0 ? cmd : sub;
                    size_t j, m = l < 31 ? l : 31;
                    for (j = 0; j < m; j++) dst[j] = (char)(in[pos + j] >= 'a' && in[pos + j] <= 'z' ? in[pos + j] - 32 : in[pos + j]);
                    dst[m] = 0;
                }
                pos += l + 2;
            }
            if (k < argc) break;   /* incomplete: read more */
            rep = fake_reply(cmd, sub, out, sizeof out);
            if (write(fd, rep, strlen(rep)) < 0) return;
            memmove(in, in + pos, len - pos);
            len -= pos;
        }
        if (len == sizeof in) return;
    }
}
TEST__UNUSED static void fake_main(void *arg) {
    int lfd = *(int *)arg;
    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0) continue;
        fake_serve(fd);
        close(fd);
    }
}

TEST(control_characters_cannot_forge_a_log_line) {
    static const char *const bad_names[] = { "a\nb", "a\rb", "a\033[2Jb", "a\tb", "a\177b", "a b", "a\bb" };
    rsbus_config c;
    rsbus_error err;
    rsbus *bus;
    size_t i, mark;
    int ctrl0 = slog_ctrl, notes0 = notes_ctrl;
    /* 1. caller-supplied names: refused by config validation, and the message does not echo them */
    for (i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++) {
        int field;
        for (field = 0; field < 5; field++) {
            c = test_cfg("t:ctl", "g", "c");
            c.log = sec_log;
            if (field == 0) c.stream = bad_names[i];
            if (field == 1) c.group = bad_names[i];
            if (field == 2) c.consumer = bad_names[i];
            if (field == 3) c.tenant = bad_names[i];
            if (field == 4) c.group_start = bad_names[i];
            CHECK(rsbus_open(&c, &err) == NULL);
            CHECK_EQ_INT(err.code, RSBUS_E_ARG);
            CHECK_CONTAINS(err.msg, field == 0 ? "stream" : field == 1 ? "group" : field == 2 ? "consumer" :
                                    field == 3 ? "tenant" : "group_start");
            note_err(err.msg);
        }
    }
    /* 2. error texts from the server: kept, but cleaned; and never an AUTH reply's text. (hiredis 1.x
       refuses a status or error line holding a bare newline itself: there it is RSBUS_E_PROTOCOL, and
       the texts never reach rsbus; tests/test_hostile.c covers protocol errors.) */
#if HIREDIS_MAJOR < 1
    {
        int lfd = socket(AF_INET, SOCK_STREAM, 0), one = 1, port;
        struct sockaddr_in a;
        socklen_t alen = sizeof a;
        char url[128], why[512];
        pid_t fake;
        memset(&a, 0, sizeof a);
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        REQUIRE(lfd >= 0 && bind(lfd, (struct sockaddr *)&a, sizeof a) == 0 && listen(lfd, 16) == 0);
        REQUIRE(getsockname(lfd, (struct sockaddr *)&a, &alen) == 0);
        port = ntohs(a.sin_port);
        fake = spawn(fake_main, &lfd);
        close(lfd);
        REQUIRE(fake > 0);
        mark = slog_len;
        snprintf(url, sizeof url, "redis://127.0.0.1:%d", port);
        c = test_cfg("t:ctl", "g", "c");
        c.url = url;
        c.log = sec_log;
        c.publish_only = 1;
        bus = open_logged(&c);
        REQUIRE(bus != NULL);
        CHECK_EQ_INT(pub_ev(bus, "x", "{}", NULL), RSBUS_E_REDIS);
        CHECK_CONTAINS(rsbus_errmsg(bus), "ERR evil");
        CHECK_CONTAINS(rsbus_errmsg(bus), "FORGED LOG LINE");
        NOTE(bus);
        CHECK(rsbus_health_check(bus, 10, why, sizeof why) == RSBUS_DEGRADED);
        CHECK_CONTAINS(why, "maxmemory-policy allkeys-");
        note_err(why);
        rsbus_close(bus);
        c.publish_only = 0;
        bus = open_logged(&c);
        REQUIRE(bus != NULL);
        CHECK_EQ_INT(rsbus_poll(bus, -1), RSBUS_E_AUTH);      /* "NOPERM ..." */
        CHECK_CONTAINS(rsbus_errmsg(bus), "NOPERM no");
        NOTE(bus);
        rsbus_close(bus);
        snprintf(url, sizeof url, "redis://" USER_MARK ":" PW_MARK "@127.0.0.1:%d", port);
        c.url = url;
        CHECK(rsbus_open(&c, &err) == NULL);
        CHECK_EQ_INT(err.code, RSBUS_E_AUTH);
        CHECK_CONTAINS(err.msg, "WRONGPASS");
        CHECK_NOT_CONTAINS(err.msg, PW_MARK);
        CHECK_NOT_CONTAINS(err.msg, "echoed");
        note_err(err.msg);
        CHECK(count_log(mark, 0, "FORGED") > 0);     /* the lines were logged, cleaned */
        CHECK_NOT_CONTAINS(slog + mark, PW_MARK);
        kill(fake, SIGKILL);
        reap(fake, 5000);
    }
#endif
    /* 3. names a real Redis hands back (anyone may create them): in logs cleaned, in metrics escaped */
    {
        char text[16384], *line, *nl;
        rsbus_consumer_info ci[8];
        size_t n;
        int64_t removed = -1;
        int bad = 0;
        c = test_cfg("t:ctl", "g", "me");
        c.log = sec_log;
        bus = open_logged(&c);
        REQUIRE(bus != NULL);
        CHECK_EQ_INT(rsbus_poll(bus, -1), 0);        /* registers "me" */
        freeReplyObject(raw("XGROUP CREATE t:ctl %s $", "evil\ngroup\"} 1\nrsbus_up{x=\"1"));
        freeReplyObject(raw("XGROUP CREATECONSUMER t:ctl g %s", "bad\nconsumer\033[2J"));
        mark = slog_len;
        (void)rsbus_metrics_text(bus, text, sizeof text);
        for (line = text; (nl = strchr(line, '\n')) != NULL; line = nl + 1) {
            *nl = 0;
            if (!strncmp(line, "# HELP rsbus_", 13) || !strncmp(line, "# TYPE rsbus_", 13)) continue;
            if (strncmp(line, "rsbus_", 6) != 0) { bad++; fprintf(stderr, "  metrics line: %s\n", line); continue; }
            {   /* name{label="value",...} number: quotes balanced, only \\ \" \n escapes */
                const char *p = strchr(line, '{'), *q;
                if (p) {
                    for (q = p + 1; *q && *q != '}';) {
                        while (*q && *q != '=') q++;
                        if (q[0] != '=' || q[1] != '"') { bad++; break; }
                        for (q += 2; *q && *q != '"'; q++)
                            if (*q == '\\') { if (q[1] != '\\' && q[1] != '"' && q[1] != 'n') { bad++; break; } q++; }
                        if (*q != '"') { bad++; break; }
                        q++;
                        if (*q == ',') q++;
                    }
                    if (*q != '}') { bad++; fprintf(stderr, "  metrics line: %s\n", line); }
                }
            }
        }
        CHECK_EQ_INT(bad, 0);
        CHECK_EQ_INT(*line, 0);
        test_sleep_ms(30);
        CHECK_EQ_INT(rsbus_consumers_gc(bus, NULL, 10, &removed), RSBUS_OK);
        CHECK_EQ_INT(removed, 1);
        CHECK_EQ_INT(count_log(mark, 0, "deleted idle consumer"), 1);
        CHECK_EQ_INT(rsbus_consumers_list(bus, NULL, ci, 8, &n), RSBUS_OK);
        CHECK_EQ_INT(n, 1);                          /* the odd name was really deleted */
        rsbus_close(bus);
    }
    CHECK_EQ_INT(slog_ctrl, ctrl0);
    CHECK_EQ_INT(notes_ctrl, notes0);
    if (slog_ctrl != ctrl0) fprintf(stderr, "  first log line with a control character: %s\n", shown(slog_ctrl_first));
    if (notes_ctrl != notes0) fprintf(stderr, "  first message with a control character: %s\n", shown(notes_ctrl_first));
}

/* ---- 4. untrusted sizes on the consume side ---------------------------------------------------- */

typedef struct size_seen { int calls; size_t max_type, max_data; } size_seen;
static rsbus_verdict size_handler(const rsbus_msg *m, void *user) {
    size_seen *s = (size_seen *)user;
    s->calls++;
    if (strlen(m->type) > s->max_type) s->max_type = strlen(m->type);
    if (m->data_len > s->max_data) s->max_data = m->data_len;
    return RSBUS_ACK;
}

TEST(oversize_and_overlong_entries_go_to_the_dlq) {
    rsbus_config c = test_cfg("t:size", "g", "c1");
    rsbus *bus;
    size_seen s;
    rsbus_stats st;
    redisContext *rc;
    char *data, type200[201], type128[129], type129[130], id[RSBUS_ID_SIZE];
    char ids[8][RSBUS_ID_SIZE];
    const char *f[2 * 262];
    size_t fl[2 * 262], i, big = (size_t)2 << 20;
    c.log = sec_log;
    c.max_event_bytes = 1000;
    c.batch_size = 10;
    bus = open_logged(&c);
    REQUIRE(bus != NULL);
    memset(&s, 0, sizeof s);
    CHECK(rsbus_subscribe(bus, "*", size_handler, &s) > 0);
    rc = test_redis_connect(&srv);
    REQUIRE(rc != NULL);
    data = (char *)malloc(big);
    REQUIRE(data != NULL);
    memset(data, 'x', big);
    data[0] = '"';
    memset(type200, 'a', 200); type200[200] = 0;
    memset(type128, 'b', 128); type128[128] = 0;
    memset(type129, 'c', 129); type129[129] = 0;
    /* well-formed at the bounds: data of exactly max_event_bytes, a 128-byte type, 256 field pairs */
    f[0] = "type"; f[1] = "ok"; f[2] = "data"; f[3] = data; fl[0] = 4; fl[1] = 2; fl[2] = 4; fl[3] = 1000;
    data[999] = '"';
    CHECK(xadd_fields(rc, "t:size", 2, f, fl, id));
    data[999] = 'x';
    f[1] = type128; fl[1] = 128; f[3] = "{}"; fl[3] = 2;
    CHECK(xadd_fields(rc, "t:size", 2, f, fl, id));
    for (i = 2; i < 256; i++) { f[2 * i] = i % 2 ? "x-extra" : "y-extra"; f[2 * i + 1] = "v"; fl[2 * i] = 7; fl[2 * i + 1] = 1; }
    f[1] = "ok"; fl[1] = 2;
    CHECK(xadd_fields(rc, "t:size", 256, f, fl, id));
    /* malformed: each to the DLQ, none to a handler */
    data[1000] = '"';                                               /* 1001 bytes */
    f[3] = data; fl[3] = 1001;
    CHECK(xadd_fields(rc, "t:size", 2, f, fl, ids[0]));
    data[1000] = 'x';
    data[big - 1] = '"';                                            /* 2 MiB */
    fl[3] = big;
    CHECK(xadd_fields(rc, "t:size", 2, f, fl, ids[1]));
    f[3] = "{}"; fl[3] = 2;
    for (i = 2; i < 257; i++) { f[2 * i] = "extra"; f[2 * i + 1] = "v"; fl[2 * i] = 5; fl[2 * i + 1] = 1; }
    CHECK(xadd_fields(rc, "t:size", 257, f, fl, ids[2]));          /* 257 pairs */
    for (i = 2; i < 262; i++) { f[2 * i] = "extra"; f[2 * i + 1] = "v"; fl[2 * i] = 5; fl[2 * i + 1] = 1; }
    CHECK(xadd_fields(rc, "t:size", 262, f, fl, ids[3]));          /* 262 pairs */
    f[1] = type200; fl[1] = 200;
    CHECK(xadd_fields(rc, "t:size", 2, f, fl, ids[4]));             /* a 200-byte type */
    f[1] = type129; fl[1] = 129;
    CHECK(xadd_fields(rc, "t:size", 2, f, fl, ids[5]));             /* 129 bytes */
    f[1] = "ok\0hidden"; fl[1] = 9;
    CHECK(xadd_fields(rc, "t:size", 2, f, fl, ids[6]));             /* a NUL inside the type */
    f[1] = "ok"; fl[1] = 2; f[3] = "{}\0{}"; fl[3] = 5;
    CHECK(xadd_fields(rc, "t:size", 2, f, fl, ids[7]));             /* a NUL inside the data */
    {
        int64_t dl = test_now_ms() + 5000;
        while (raw_int("XLEN {t:size}:dlq") < 8 && test_now_ms() < dl) (void)rsbus_poll(bus, 10);
    }
    CHECK_EQ_INT(s.calls, 3);
    CHECK_EQ_INT(s.max_type, 128);
    CHECK_EQ_INT(s.max_data, 1000);
    CHECK_EQ_INT(raw_int("XLEN {t:size}:dlq"), 8);
    CHECK_EQ_INT(pending_of("t:size", "g"), 0);
    CHECK(dlq_has("{t:size}:dlq", "dlq_stream_id", ids[0], "max_event_bytes"));
    CHECK(dlq_has("{t:size}:dlq", "dlq_stream_id", ids[1], "max_event_bytes"));
    CHECK(dlq_has("{t:size}:dlq", "dlq_stream_id", ids[2], "too many fields"));
    CHECK(dlq_has("{t:size}:dlq", "dlq_stream_id", ids[3], "too many fields"));
    CHECK(dlq_has("{t:size}:dlq", "dlq_stream_id", ids[4], "type"));
    CHECK(dlq_has("{t:size}:dlq", "dlq_stream_id", ids[5], "type"));
    CHECK(dlq_has("{t:size}:dlq", "dlq_stream_id", ids[6], "type"));
    CHECK(dlq_has("{t:size}:dlq", "dlq_stream_id", ids[7], "JSON"));
    rsbus_stats_get(bus, &st);
    CHECK_EQ_INT(st.malformed, 8);
    CHECK_EQ_INT(st.acked, 3);
    free(data);
    redisFree(rc);
    rsbus_close(bus);
}

/* An entry bigger than any reply rsbus accepts (max_event_bytes * batch_size * 2 + 16 MiB) must not
   wedge the group: it is malformed like any entry over max_event_bytes, and what follows is handled. */
TEST(entry_beyond_the_reply_bound_does_not_stall_the_group) {
    rsbus_config c = test_cfg("t:huge", "g", "c1");
    rsbus *bus;
    size_seen s;
    rsbus_stats st;
    redisContext *rc;
    char *data, huge_id[RSBUS_ID_SIZE], ok_id[RSBUS_ID_SIZE];
    const char *f[4];
    size_t fl[4], big = (size_t)17 << 20;
    c.log = sec_log;
    c.max_event_bytes = 1024;
    c.batch_size = 1;
    bus = open_logged(&c);
    REQUIRE(bus != NULL);
    memset(&s, 0, sizeof s);
    CHECK(rsbus_subscribe(bus, "*", size_handler, &s) > 0);
    rc = test_redis_connect(&srv);
    REQUIRE(rc != NULL);
    data = (char *)malloc(big);
    REQUIRE(data != NULL);
    memset(data, 'x', big);
    data[0] = '"';
    data[big - 1] = '"';
    f[0] = "type"; f[1] = "huge"; f[2] = "data"; f[3] = data; fl[0] = 4; fl[1] = 4; fl[2] = 4; fl[3] = big;
    CHECK(xadd_fields(rc, "t:huge", 2, f, fl, huge_id));
    free(data);
    f[1] = "ok"; fl[1] = 2; f[3] = "{}"; fl[3] = 2;
    CHECK(xadd_fields(rc, "t:huge", 2, f, fl, ok_id));
    redisFree(rc);
    {
        int64_t dl = test_now_ms() + 4000;
        while (s.calls == 0 && test_now_ms() < dl) {
            rsbus_claim_stats cs;
            (void)rsbus_poll(bus, 10);
            (void)rsbus_claim(bus, 0, 0, &cs);
        }
    }
    CHECK_EQ_INT(s.calls, 1);                        /* the small entry behind it, not the huge one */
    CHECK(s.max_data < 1024);
    CHECK(dlq_has("{t:huge}:dlq", "dlq_stream_id", huge_id, NULL));
    CHECK_EQ_INT(pending_of("t:huge", "g"), 0);
    rsbus_stats_get(bus, &st);
    if (s.calls == 0)
        fprintf(stderr, "  stuck: %llu reconnects; last error: %s\n", (unsigned long long)st.reconnects, rsbus_errmsg(bus));
    rsbus_close(bus);
    freeReplyObject(raw("DEL t:huge"));
}

/* The README's recipe is this one: every line of acl_recipe stands in README.md verbatim. */
TEST(readme_shows_the_tested_recipe) {
    FILE *f = fopen("README.md", "r");
    static char readme[1 << 17];
    size_t n, i;
    REQUIRE(f != NULL);
    n = fread(readme, 1, sizeof readme - 1, f);
    fclose(f);
    readme[n] = 0;
    for (i = 0; i < sizeof acl_recipe / sizeof acl_recipe[0]; i++) CHECK_CONTAINS(readme, acl_recipe[i]);
    CHECK_CONTAINS(readme, acl_worker_trim_acked);
    CHECK_CONTAINS(readme, acl_worker_create_group);
    CHECK_CONTAINS(readme, acl_worker_dedupe);
}

int main(void) {
    if (test_redis_start(&srv, NULL) != 0) {
        fprintf(stderr, "cannot start redis-server\n");
        printf("test_security: 0 passed, 1 failed\n");
        return 1;
    }
    RUN(readme_shows_the_tested_recipe);
    RUN(acl_recipe_applies);
    RUN(publisher_publishes_and_nothing_else);
    RUN(worker_runs_end_to_end);
    RUN(worker_is_refused_outside_its_job);
    RUN(admin_operates_the_dlq_and_the_groups);
    RUN(optional_worker_rules);
    RUN(tenants_are_isolated);
    RUN(nothing_secret_in_a_whole_run);
    RUN(control_characters_cannot_forge_a_log_line);
    RUN(oversize_and_overlong_entries_go_to_the_dlq);
    RUN(entry_beyond_the_reply_bound_does_not_stall_the_group);
    kill_children();
    raw_reset();
    test_redis_stop(&srv);
    return test_summary("test_security");
}
