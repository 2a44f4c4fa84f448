/* test_rsbusctl.c - the admin tool examples/rsbusctl.c, run as a child process against a real
   redis-server (RSBUS_URL set to its unix socket): each command's output and exit status, with the state
   set up through rsbus itself (publishing, consumer groups, handlers that dead-letter).

   The tool is argv[1], else $RSBUSCTL, else the rsbusctl in this program's directory (so that
   build/san/test_rsbusctl runs build/san/rsbusctl when there is one), else build/rsbusctl. */
#define _POSIX_C_SOURCE 200809L
#define RSBUS_IMPLEMENTATION
#include "../rsbus.h"
#include "test.h"
#include <errno.h>
#include <poll.h>
#include "redis_server.h"
#include "bus_util.h"

#define TOOL_TIMEOUT_MS 20000   /* generous: the tool may be an ASan build */

static const char *tool;

/* ---- running the tool ------------------------------------------------------------------------- */

typedef struct proc {
    pid_t pid;
    int fd[2];                   /* read ends of its stdout and stderr; -1 once closed */
    char out[1 << 16], err[1 << 14];
    size_t out_len, err_len;
} proc;

static int proc_start(proc *p, char *const argv[]) {
    int o[2], e[2];
    memset(p, 0, sizeof *p);
    p->fd[0] = p->fd[1] = -1;
    if (pipe(o) != 0) return -1;
    if (pipe(e) != 0) { close(o[0]); close(o[1]); return -1; }
    fflush(stdout); fflush(stderr);
    p->pid = fork();
    if (p->pid == 0) {           /* only async-signal-safe calls until exec */
        dup2(o[1], 1); dup2(e[1], 2);
        close(o[0]); close(o[1]); close(e[0]); close(e[1]);
        execv(argv[0], argv);
        _exit(127);
    }
    close(o[1]); close(e[1]);
    if (p->pid < 0) { close(o[0]); close(e[0]); return -1; }
    if (nchildren < 32) children[nchildren++] = p->pid;
    p->fd[0] = o[0];
    p->fd[1] = e[0];
    fcntl(o[0], F_SETFL, O_NONBLOCK);
    fcntl(e[0], F_SETFL, O_NONBLOCK);
    return 0;
}
/* Reads what the child wrote, waiting up to ms for something; 0 once both pipes are closed. */
static int proc_pump(proc *p, int ms) {
    struct pollfd pf[2];
    int i, n = 0;
    for (i = 0; i < 2; i++) { pf[i].fd = p->fd[i]; pf[i].events = POLLIN; pf[i].revents = 0; if (p->fd[i] >= 0) n++; }
    if (!n) return 0;
    if (poll(pf, 2, ms) <= 0) return 1;
    for (i = 0; i < 2; i++) {
        char *buf = i ? p->err : p->out;
        size_t cap = i ? sizeof p->err : sizeof p->out, *len = i ? &p->err_len : &p->out_len;
        char tmp[4096];
        ssize_t r;
        if (p->fd[i] < 0 || !pf[i].revents) continue;
        r = read(p->fd[i], tmp, sizeof tmp);
        if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        if (r <= 0) { close(p->fd[i]); p->fd[i] = -1; continue; }
        if (*len + (size_t)r < cap) { memcpy(buf + *len, tmp, (size_t)r); *len += (size_t)r; }
        else if (*len + 1 < cap) { memcpy(buf + *len, tmp, cap - 1 - *len); *len = cap - 1; }
        buf[*len] = 0;
    }
    return 1;
}
/* Reads until the child closes its output, then reaps it; its exit status, or -1 (killed, timed out). */
static int proc_finish(proc *p, int timeout_ms) {
    int64_t dl = test_now_ms() + timeout_ms;
    int i;
    while (proc_pump(p, 50) && test_now_ms() < dl) {}
    for (i = 0; i < 2; i++) if (p->fd[i] >= 0) { close(p->fd[i]); p->fd[i] = -1; }
    return reap(p->pid, (int)(dl - test_now_ms() > 1000 ? dl - test_now_ms() : 1000));
}

/* Runs argv (argv[0]: the tool), captures stdout and stderr (NUL-terminated); returns the exit status. */
static int run_tool(char *const argv[], char *out, size_t out_size, char *err, size_t err_size) {
    static proc p;
    int st;
    if (proc_start(&p, argv) != 0) return -1;
    st = proc_finish(&p, TOOL_TIMEOUT_MS);
    snprintf(out, out_size, "%s", p.out);
    snprintf(err, err_size, "%s", p.err);
    return st;
}

static char out[1 << 16], err[1 << 14];
static char argstore[24][1024];
static char *argvec[26];

/* argv for the tool from a NULL-terminated list */
static char *const *args_v(const char *a, va_list ap) {
    int n = 0;
    snprintf(argstore[n], sizeof argstore[n], "%s", tool);
    argvec[n] = argstore[n];
    for (n = 1; a && n < 24; n++, a = va_arg(ap, const char *)) {
        snprintf(argstore[n], sizeof argstore[n], "%s", a);
        argvec[n] = argstore[n];
    }
    argvec[n] = NULL;
    return argvec;
}
/* Runs the tool with these arguments (NULL-terminated); output in out and err; returns the exit status. */
static int ctl(const char *a, ...) {
    va_list ap;
    char *const *v;
    int st;
    va_start(ap, a);
    v = args_v(a, ap);
    va_end(ap);
    st = run_tool(v, out, sizeof out, err, sizeof err);
    if (st < 0) fprintf(stderr, "  %s %s: exit status %d\n  stdout: %.500s\n  stderr: %.500s\n", argvec[1] ? argvec[1] : "", argvec[1] && argvec[2] ? argvec[2] : "", st, out, err);
    return st;
}
static int tool_start(proc *p, const char *a, ...) {
    va_list ap;
    char *const *v;
    va_start(ap, a);
    v = args_v(a, ap);
    va_end(ap);
    return proc_start(p, v);
}

/* ---- helpers ------------------------------------------------------------------------------ */

static int count_of(const char *hay, const char *needle) {
    int n = 0;
    size_t len = strlen(needle);
    for (; (hay = strstr(hay, needle)) != NULL; hay += len) n++;
    return n;
}
static int is_stream_id(const char *s, size_t n) {
    size_t d = 0, i;
    for (i = 0; i < n; i++) {
        if (s[i] == '-' && !d && i > 0) d = i;
        else if (s[i] < '0' || s[i] > '9') return 0;
    }
    return d && d + 1 < n;
}

static rsbus_result pub(rsbus *bus, const char *type, const char *data, char *sid) {
    rsbus_event ev;
    memset(&ev, 0, sizeof ev);
    ev.type = type;
    ev.data = data;
    return rsbus_publish(bus, &ev, sid);
}
/* Polls until a poll finds nothing more. */
static void drain(rsbus *bus) {
    int i;
    for (i = 0; i < 50; i++) if (rsbus_poll(bus, 20) <= 0 && i > 0) break;
}

/* A handler that dead-letters "order.bad" while 'dead' is set, acks the rest, counts its calls. */
typedef struct seen { int calls, dead; } seen;
static rsbus_verdict h_seen(const rsbus_msg *m, void *user) {
    seen *s = (seen *)user;
    s->calls++;
    if (s->dead && !strcmp(m->type, "order.bad")) { snprintf(m->reason, RSBUS_REASON_SIZE, "poison pill"); return RSBUS_DEAD; }
    return RSBUS_ACK;
}

static int has_consumer(const char *stream, const char *group, const char *name) {
    redisReply *rep = raw("XINFO CONSUMERS %s %s", stream, group);
    size_t i, k;
    int found = 0;
    for (i = 0; rep && rep->type == REDIS_REPLY_ARRAY && i < rep->elements; i++)
        for (k = 0; k + 1 < rep->element[i]->elements; k += 2)
            if (!strcmp(rep->element[i]->element[k]->str, "name") && !strcmp(rep->element[i]->element[k + 1]->str, name)) found = 1;
    if (rep) freeReplyObject(rep);
    return found;
}
static long long consumer_idle(const char *stream, const char *group, const char *name) {
    redisReply *rep = raw("XINFO CONSUMERS %s %s", stream, group);
    size_t i, k;
    long long idle = -1;
    for (i = 0; rep && rep->type == REDIS_REPLY_ARRAY && i < rep->elements; i++) {
        const redisReply *c = rep->element[i];
        int mine = 0;
        for (k = 0; k + 1 < c->elements; k += 2) if (!strcmp(c->element[k]->str, "name") && !strcmp(c->element[k + 1]->str, name)) mine = 1;
        for (k = 0; mine && k + 1 < c->elements; k += 2) if (!strcmp(c->element[k]->str, "idle")) idle = c->element[k + 1]->integer;
    }
    if (rep) freeReplyObject(rep);
    return idle;
}
static int64_t server_ms(void) {
    redisReply *rep = raw("TIME");
    int64_t ms = -1;
    if (rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 2)
        ms = (int64_t)strtoll(rep->element[0]->str, NULL, 10) * 1000 + strtoll(rep->element[1]->str, NULL, 10) / 1000;
    if (rep) freeReplyObject(rep);
    return ms;
}

/* Values out of the tool's JSON output (out). */
static int64_t jint(const char *path) {
    rsbus_jval v;
    int64_t n = INT64_MIN;
    if (rsbus_json_get(out, strlen(out), path, &v) == RSBUS_OK) (void)rsbus_jval_int(&v, &n);
    return n;
}
static const char *jstr(const char *path) {
    static char s[4][512];
    static int k;
    rsbus_jval v;
    char *r = s[k++ % 4];
    r[0] = 0;
    if (rsbus_json_get(out, strlen(out), path, &v) != RSBUS_OK || rsbus_jval_str(&v, r, 512, NULL) != RSBUS_OK)
        snprintf(r, 512, "(no %s)", path);
    return r;
}
static rsbus_jtype jtype(const char *path) {
    rsbus_jval v;
    if (rsbus_json_get(out, strlen(out), path, &v) != RSBUS_OK) return RSBUS_JNONE;
    return v.type;
}

/* ---- tests -------------------------------------------------------------------------------- */

TEST(help_and_usage_errors) {
    CHECK_EQ_INT(ctl("--help", NULL), 0);
    CHECK_CONTAINS(out, "usage: rsbusctl");
    CHECK_CONTAINS(out, "dlq ls");
    CHECK_EQ_INT(ctl("dlq", "--help", NULL), 0);
    CHECK_CONTAINS(out, "purge --before");
    CHECK_EQ_INT(ctl("dlq", "purge", "--help", NULL), 0);
    CHECK_CONTAINS(out, "--yes");
    CHECK_EQ_INT(ctl("top", "--help", NULL), 0);
    CHECK_CONTAINS(out, "--iterations");
    CHECK_EQ_INT(ctl("tail", "-h", NULL), 0);
    CHECK_CONTAINS(out, "--count");
    CHECK_EQ_INT(ctl("help", "health", NULL), 0);
    CHECK_CONTAINS(out, "UNHEALTHY");
    CHECK_EQ_INT(ctl("frobnicate", NULL), 2);
    CHECK_CONTAINS(err, "unknown command");
    CHECK_EQ_INT(strlen(out), 0);
    CHECK_EQ_INT(ctl(NULL), 2);
    CHECK_EQ_INT(ctl("--bogus", "info", NULL), 2);
    CHECK_EQ_INT(ctl("info", "--bogus", NULL), 2);
    CHECK_CONTAINS(err, "unknown option --bogus");
    CHECK_EQ_INT(ctl("pub", "only.type", NULL), 2);
    CHECK_CONTAINS(err, "missing argument");
    CHECK_EQ_INT(ctl("tail", "--count", NULL), 2);
    CHECK_EQ_INT(ctl("tail", "--count", "abc", NULL), 2);
    CHECK_EQ_INT(ctl("tail", "--count", "5x", NULL), 2);
    CHECK_EQ_INT(ctl("tail", "--count", "99999999999999999999", NULL), 2);
    CHECK_EQ_INT(ctl("tail", "--count", "0", NULL), 2);
    CHECK_EQ_INT(ctl("top", "--interval", "-5", NULL), 2);
    CHECK_EQ_INT(ctl("health", "--max-lag", " 5", NULL), 2);
    CHECK_EQ_INT(ctl("dlq", NULL), 2);
    CHECK_EQ_INT(ctl("dlq", "frob", NULL), 2);
    CHECK_EQ_INT(ctl("--url", NULL), 2);
}

TEST(passwords_are_never_printed) {
    /* nothing listens on port 1: the open fails, and neither the message nor anything else shows the password */
    CHECK_EQ_INT(ctl("--url", "redis://:s3cretpw@127.0.0.1:1", "info", NULL), 1);
    CHECK_CONTAINS(err, "RSBUS_E_IO");
    CHECK_NOT_CONTAINS(err, "s3cretpw");
    CHECK_NOT_CONTAINS(out, "s3cretpw");
    CHECK_EQ_INT(ctl("--url=redis://bob:s3cretpw@127.0.0.1:1", "health", NULL), 2);
    CHECK_CONTAINS(out, "UNHEALTHY");
    CHECK_NOT_CONTAINS(out, "s3cretpw");
    CHECK_NOT_CONTAINS(err, "s3cretpw");
    CHECK_EQ_INT(ctl("--urll=redis://:s3cretpw@127.0.0.1:1", "info", NULL), 2);
    CHECK_NOT_CONTAINS(err, "s3cretpw");
}

TEST(pub_then_xlen) {
    redisReply *rep;
    size_t n;
    CHECK_EQ_INT(ctl("--stream", "t:pub", "pub", "order.created", "{\"a\":1}", NULL), 0);
    n = strcspn(out, "\n");
    CHECK(is_stream_id(out, n));
    CHECK_EQ_INT(out[n], '\n');
    CHECK_EQ_INT(raw_int("XLEN t:pub"), 1);
    out[n] = 0;
    rep = raw("XRANGE t:pub %s %s", out, out);
    REQUIRE(rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 1);
    CHECK_EQ_STR(rep->element[0]->element[1]->element[0]->str, "type");
    CHECK_EQ_STR(rep->element[0]->element[1]->element[1]->str, "order.created");
    freeReplyObject(rep);
    /* options after the command work too; a negative number is a positional argument (JSON -5) */
    CHECK_EQ_INT(ctl("pub", "--stream", "t:pub", "n.neg", "-5", NULL), 0);
    CHECK_EQ_INT(raw_int("XLEN t:pub"), 2);
    /* the library refuses: a runtime failure (1) with its result and message */
    CHECK_EQ_INT(ctl("--stream", "t:pub", "pub", "order.created", "{a:1}", NULL), 1);
    CHECK_CONTAINS(err, "RSBUS_E_ARG");
    CHECK_EQ_INT(ctl("--stream", "t:pub", "pub", "bad type!", "{}", NULL), 1);
    CHECK_EQ_INT(raw_int("XLEN t:pub"), 2);
}

TEST(tail_follows_new_entries) {
    static proc p;
    rsbus *bus = open_bus("t:tail", "g", NULL);
    char long_payload[300], sid1[RSBUS_ID_SIZE], sid2[RSBUS_ID_SIZE], *nl;
    int st;
    REQUIRE(bus != NULL);
    CHECK_EQ_INT(pub(bus, "old.event", "{}", NULL), RSBUS_OK);   /* before the tail: not shown */
    REQUIRE(tool_start(&p, "--stream", "t:tail", "tail", "--count", "2", NULL) == 0);
    WAIT_UNTIL((proc_pump(&p, 10), strstr(p.err, "tailing") != NULL), TOOL_TIMEOUT_MS);
    memset(long_payload, 0, sizeof long_payload);
    memcpy(long_payload, "{\"s\":\"", 6);
    memset(long_payload + 6, 'x', 200);
    memcpy(long_payload + 206, "\",\"t\":\"tab\\tctl\\u0001\"}", 23);
    CHECK_EQ_INT(pub(bus, "first.event", long_payload, sid1), RSBUS_OK);
    CHECK_EQ_INT(pub(bus, "second.event", "{\"v\":2}", sid2), RSBUS_OK);
    st = proc_finish(&p, TOOL_TIMEOUT_MS);
    CHECK_EQ_INT(st, 0);
    CHECK_EQ_INT(count_of(p.out, "\n"), 2);
    CHECK_NOT_CONTAINS(p.out, "old.event");
    CHECK_CONTAINS(p.out, sid1);
    CHECK_CONTAINS(p.out, sid2);
    CHECK_CONTAINS(p.out, "first.event");
    CHECK_CONTAINS(p.out, "{\"v\":2}");
    CHECK_CONTAINS(p.out, "ms ");                /* an age, by Redis's clock */
    nl = strchr(p.out, '\n');
    REQUIRE(nl != NULL);
    CHECK(nl - p.out < 200);                     /* the 230-byte payload was cut to ~80 bytes */
    CHECK_CONTAINS(p.out, "xxx...");
    /* SIGTERM ends a tail without --count cleanly */
    REQUIRE(tool_start(&p, "--stream", "t:tail", "tail", NULL) == 0);
    WAIT_UNTIL((proc_pump(&p, 10), strstr(p.err, "tailing") != NULL), TOOL_TIMEOUT_MS);
    kill(p.pid, SIGTERM);
    CHECK_EQ_INT(proc_finish(&p, 5000), 0);
    rsbus_close(bus);
}

TEST(info_text_and_json) {
    rsbus_config c1 = test_cfg("t:info", "g1", "c1");
    rsbus *b1, *b2;
    int i;
    char name[64], path[64];
    c1.batch_size = 3;
    b1 = open_cfg(&c1);
    b2 = open_bus("t:info", "g2", "c2");
    REQUIRE(b1 && b2);
    for (i = 0; i < 5; i++) CHECK_EQ_INT(pub(b1, "info.event", "{}", NULL), RSBUS_OK);
    CHECK_EQ_INT(rsbus_poll(b1, 0), 3);          /* no handler: acked as unhandled; g1's lag is 2, g2's 5 */
    CHECK_EQ_INT(ctl("--stream", "t:info", "info", NULL), 0);
    CHECK_CONTAINS(out, "length          5");
    CHECK_CONTAINS(out, "dead letters    0");
    CHECK_CONTAINS(out, "groups          2");
    CHECK_CONTAINS(out, "(master, 0 replicas)");   /* which server it reached, and its replicas */
    CHECK_CONTAINS(out, "g1");
    CHECK_CONTAINS(out, "g2");
    CHECK_EQ_INT(ctl("--stream", "t:info", "--json", "info", NULL), 0);
    CHECK_EQ_INT(jint("length"), raw_int("XLEN t:info"));
    CHECK_EQ_INT(jint("entries_added"), 5);
    CHECK_EQ_INT(jint("dlq_length"), 0);
    CHECK_EQ_STR(jstr("stream"), "t:info");
    CHECK_EQ_STR(jstr("server.role"), "master");
    CHECK_EQ_INT(jint("server.replicas"), 0);
    for (i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "groups.%d.name", i);
        snprintf(name, sizeof name, "%s", jstr(path));
        snprintf(path, sizeof path, "groups.%d.lag", i);
        CHECK_EQ_INT(jint(path), group_field("t:info", name, "lag"));
        CHECK_EQ_INT(jint(path), !strcmp(name, "g1") ? 2 : 5);
        snprintf(path, sizeof path, "groups.%d.pending", i);
        CHECK_EQ_INT(jint(path), group_field("t:info", name, "pending"));
    }
    CHECK_EQ_INT(jtype("groups.2"), RSBUS_JNONE);
    rsbus_close(b1);
    rsbus_close(b2);

    /* an entry deleted after the group's position: Redis cannot tell the lag */
    b1 = open_bus("t:info2", "g", "c");
    REQUIRE(b1 != NULL);
    {
        char sid[RSBUS_ID_SIZE];
        for (i = 0; i < 5; i++) CHECK_EQ_INT(pub(b1, "info.event", "{}", i == 2 ? sid : NULL), RSBUS_OK);
        CHECK_EQ_INT(raw_int("XDEL t:info2 %s", sid), 1);
    }
    CHECK_EQ_INT(group_field("t:info2", "g", "lag"), -2);
    CHECK_EQ_INT(ctl("--stream", "t:info2", "info", NULL), 0);
    CHECK_CONTAINS(out, "unknown");
    CHECK_EQ_INT(ctl("--stream", "t:info2", "info", "--json", NULL), 0);
    CHECK_EQ_INT(jtype("groups.0.lag"), RSBUS_JNULL);
    rsbus_close(b1);
    /* no such stream: a runtime failure */
    CHECK_EQ_INT(ctl("--stream", "t:nothing", "info", NULL), 1);
    CHECK_CONTAINS(err, "RSBUS_E_NOTFOUND");
    CHECK_EQ_INT(raw_int("EXISTS t:nothing"), 0);
}

TEST(consumers_and_gc) {
    rsbus *bus = open_bus("t:cons", "g", "owner");
    redisReply *rep;
    int i;
    REQUIRE(bus != NULL);
    rsbus_close(bus);            /* the group exists; "owner" never read, so it is no consumer */
    bus = open_bus("t:cons", "other", NULL);
    REQUIRE(bus != NULL);
    for (i = 0; i < 3; i++) CHECK_EQ_INT(pub(bus, "c.event", "{}", NULL), RSBUS_OK);
    /* two consumers that read and acked (idle, nothing pending), one that holds an entry */
    for (i = 0; i < 3; i++) {
        const char *name = i == 0 ? "c-idle1" : i == 1 ? "c-idle2" : "c-busy";
        rep = raw("XREADGROUP GROUP g %s COUNT 1 STREAMS t:cons >", name);
        REQUIRE(rep && rep->type == REDIS_REPLY_ARRAY);
        if (i < 2) CHECK_EQ_INT(raw_int("XACK t:cons g %s", rep->element[0]->element[1]->element[0]->element[0]->str), 1);
        freeReplyObject(rep);
    }
    CHECK_EQ_INT(ctl("--stream", "t:cons", "--group", "g", "consumers", NULL), 0);
    CHECK_CONTAINS(out, "3 consumers");
    CHECK_CONTAINS(out, "c-idle1");
    CHECK_CONTAINS(out, "c-idle2");
    CHECK_CONTAINS(out, "c-busy");
    CHECK_EQ_INT(ctl("--stream", "t:cons", "--group", "g", "--json", "consumers", NULL), 0);
    CHECK_EQ_INT(jtype("consumers.2.name"), RSBUS_JSTRING);
    CHECK_EQ_INT(jtype("consumers.3"), RSBUS_JNONE);
    WAIT_UNTIL(consumer_idle("t:cons", "g", "c-idle2") >= 1100, 5000);
    /* one more, fresh: not idle long enough to go */
    CHECK_EQ_INT(pub(bus, "c.event", "{}", NULL), RSBUS_OK);
    rep = raw("XREADGROUP GROUP g c-fresh COUNT 1 STREAMS t:cons >");
    REQUIRE(rep && rep->type == REDIS_REPLY_ARRAY);
    CHECK_EQ_INT(raw_int("XACK t:cons g %s", rep->element[0]->element[1]->element[0]->element[0]->str), 1);
    freeReplyObject(rep);
    CHECK_EQ_INT(ctl("--stream", "t:cons", "consumers", "--group", "g", "--gc", "1000", NULL), 0);
    CHECK_CONTAINS(out, "removed 2 consumers");
    CHECK(!has_consumer("t:cons", "g", "c-idle1"));
    CHECK(!has_consumer("t:cons", "g", "c-idle2"));
    CHECK(has_consumer("t:cons", "g", "c-busy"));
    CHECK(has_consumer("t:cons", "g", "c-fresh"));
    CHECK_CONTAINS(out, "2 consumers");
    CHECK_EQ_INT(pending_of("t:cons", "g"), 1);
    CHECK_EQ_INT(ctl("--stream", "t:cons", "--group", "g", "consumers", "--gc", "1x", NULL), 2);
    CHECK_EQ_INT(ctl("--stream", "t:cons", "--group", "nosuch", "consumers", NULL), 1);
    CHECK_CONTAINS(err, "RSBUS_E_NOTFOUND");
    rsbus_close(bus);
}

TEST(dlq_ls_show_replay_purge) {
    seen sb, ss;
    rsbus *billing = open_bus("t:dlq", "billing", "b1"), *shipping = open_bus("t:dlq", "shipping", "s1");
    rsbus_dlq_page page;
    char id1[RSBUS_ID_SIZE], id2[RSBUS_ID_SIZE], ev1[RSBUS_ID_SIZE], newid[RSBUS_ID_SIZE], tstr[32], *arrow;
    int64_t t_mid;
    int i;
    REQUIRE(billing && shipping);
    memset(&sb, 0, sizeof sb);
    memset(&ss, 0, sizeof ss);
    sb.dead = 1;
    CHECK(rsbus_subscribe(billing, "*", h_seen, &sb) > 0);
    CHECK(rsbus_subscribe(shipping, "*", h_seen, &ss) > 0);
    CHECK_EQ_INT(pub(billing, "order.bad", "{\"order\":{\"id\":1,\"items\":[1,2]},\"empty\":{}}", NULL), RSBUS_OK);
    CHECK_EQ_INT(pub(billing, "order.ok", "{}", NULL), RSBUS_OK);
    CHECK_EQ_INT(pub(billing, "order.bad", "[3]", NULL), RSBUS_OK);
    drain(billing);
    drain(shipping);
    CHECK_EQ_INT(ss.calls, 3);
    REQUIRE(raw_int("XLEN {t:dlq}:dlq") == 2);
    REQUIRE(rsbus_dlq_list(billing, NULL, 10, &page) == RSBUS_OK && page.count == 2);
    snprintf(id1, sizeof id1, "%s", page.entries[0].dlq_id);
    snprintf(id2, sizeof id2, "%s", page.entries[1].dlq_id);
    snprintf(ev1, sizeof ev1, "%s", page.entries[0].msg.id);
    rsbus_dlq_page_free(billing, &page);

    CHECK_EQ_INT(ctl("--stream", "t:dlq", "dlq", "ls", NULL), 0);
    CHECK_CONTAINS(out, id1);
    CHECK_CONTAINS(out, id2);
    CHECK_CONTAINS(out, ev1);
    CHECK_CONTAINS(out, "billing");
    CHECK_CONTAINS(out, "poison pill");
    CHECK_CONTAINS(out, "order.bad");
    CHECK_CONTAINS(out, "2 dead letters");
    CHECK_EQ_INT(ctl("--stream", "t:dlq", "--json", "dlq", "ls", NULL), 0);
    CHECK_EQ_INT(jint("count"), 2);
    CHECK_EQ_STR(jstr("dead_letters.0.dlq_id"), id1);
    CHECK_EQ_STR(jstr("dead_letters.0.group"), "billing");
    CHECK_EQ_STR(jstr("dead_letters.1.error"), "poison pill");
    CHECK_EQ_INT(jint("dead_letters.1.deliveries"), 1);
    CHECK(jint("dead_letters.0.age_ms") >= 0);
    CHECK_EQ_INT(jint("dead_letters.1.dead_lettered_ms"), strtoll(id2, NULL, 10));   /* Redis's clock: the id */

    CHECK_EQ_INT(ctl("--stream", "t:dlq", "dlq", "show", id1, NULL), 0);
    CHECK_CONTAINS(out, id1);
    CHECK_CONTAINS(out, ev1);
    CHECK_CONTAINS(out, "poison pill");
    CHECK_CONTAINS(out, "b1");                   /* the consumer */
    CHECK_CONTAINS(out, "dead-lettered");
    CHECK_CONTAINS(out, " ago)");
    CHECK_CONTAINS(out, "\"order\": {");         /* indented payload */
    CHECK_CONTAINS(out, "\"empty\": {}");
    CHECK_EQ_INT(ctl("--stream", "t:dlq", "dlq", "show", id1, "--json", NULL), 0);
    CHECK_EQ_STR(jstr("dlq_id"), id1);
    CHECK_EQ_STR(jstr("data"), "{\"order\":{\"id\":1,\"items\":[1,2]},\"empty\":{}}");
    CHECK_EQ_INT(ctl("--stream", "t:dlq", "dlq", "show", "1-1", NULL), 1);
    CHECK_CONTAINS(err, "no dead letter 1-1");
    CHECK_EQ_INT(ctl("--stream", "t:dlq", "dlq", "show", "nonsense", NULL), 2);

    /* replay one: back to billing only */
    CHECK_EQ_INT(ctl("--stream", "t:dlq", "dlq", "replay", NULL), 2);
    CHECK_EQ_INT(ctl("--stream", "t:dlq", "dlq", "replay", id1, "--all", NULL), 2);
    CHECK_EQ_INT(ctl("--stream", "t:dlq", "dlq", "replay", id1, NULL), 0);
    arrow = strstr(out, " -> ");
    REQUIRE(arrow != NULL);
    CHECK(!strncmp(out, id1, strlen(id1)));
    snprintf(newid, sizeof newid, "%.*s", (int)strcspn(arrow + 4, "\n"), arrow + 4);
    CHECK(is_stream_id(newid, strlen(newid)));
    CHECK_EQ_INT(raw_int("XLEN {t:dlq}:dlq"), 1);
    sb.dead = 0;
    sb.calls = ss.calls = 0;
    drain(billing);
    drain(shipping);
    CHECK_EQ_INT(sb.calls, 1);                   /* the group that failed it handles it */
    CHECK_EQ_INT(ss.calls, 0);                   /* the other acknowledges it without dispatch */
    CHECK_EQ_INT(pending_of("t:dlq", "shipping"), 0);
    CHECK_EQ_INT(group_field("t:dlq", "shipping", "lag"), 0);
    CHECK_EQ_INT(ctl("--stream", "t:dlq", "dlq", "replay", id1, NULL), 1);   /* gone now */
    CHECK_CONTAINS(err, "RSBUS_E_NOTFOUND");

    /* replay --all */
    CHECK_EQ_INT(ctl("--stream", "t:dlq", "dlq", "replay", "--all", NULL), 0);
    CHECK_CONTAINS(out, id2);
    CHECK_EQ_INT(count_of(out, " -> "), 1);
    CHECK_EQ_INT(raw_int("XLEN {t:dlq}:dlq"), 0);
    drain(billing);
    drain(shipping);
    CHECK_EQ_INT(sb.calls, 2);
    CHECK_EQ_INT(ss.calls, 0);

    /* purge: two older dead letters, then a newer one */
    sb.dead = 1;
    for (i = 0; i < 2; i++) CHECK_EQ_INT(pub(billing, "order.bad", "{}", NULL), RSBUS_OK);
    drain(billing);
    REQUIRE(raw_int("XLEN {t:dlq}:dlq") == 2);
    REQUIRE(rsbus_dlq_list(billing, NULL, 10, &page) == RSBUS_OK && page.count == 2);
    t_mid = (int64_t)strtoll(page.entries[1].dlq_id, NULL, 10) + 1;   /* after both, by Redis's clock */
    rsbus_dlq_page_free(billing, &page);
    WAIT_UNTIL(server_ms() > t_mid, 2000);
    CHECK_EQ_INT(pub(billing, "order.bad", "{}", NULL), RSBUS_OK);
    drain(billing);
    REQUIRE(raw_int("XLEN {t:dlq}:dlq") == 3);
    snprintf(tstr, sizeof tstr, "%lld", (long long)t_mid);
    CHECK_EQ_INT(ctl("--stream", "t:dlq", "dlq", "purge", "--before", tstr, NULL), 2);
    CHECK_CONTAINS(err, "--yes");
    CHECK_CONTAINS(err, "would delete 2 dead letters");
    CHECK_EQ_INT(raw_int("XLEN {t:dlq}:dlq"), 3);
    CHECK_EQ_INT(ctl("--stream", "t:dlq", "dlq", "purge", "--yes", NULL), 2);
    CHECK_EQ_INT(ctl("--stream", "t:dlq", "dlq", "purge", "--before", "5x", "--yes", NULL), 2);
    CHECK_EQ_INT(ctl("--stream", "t:dlq", "dlq", "purge", "--before", "1h", "--yes", NULL), 0);
    CHECK_CONTAINS(out, "removed 0 dead letters");
    CHECK_EQ_INT(ctl("--stream", "t:dlq", "dlq", "purge", "--before", tstr, "--yes", NULL), 0);
    CHECK_CONTAINS(out, "removed 2 dead letters");
    CHECK_EQ_INT(raw_int("XLEN {t:dlq}:dlq"), 1);
    REQUIRE(rsbus_dlq_list(billing, NULL, 10, &page) == RSBUS_OK && page.count == 1);
    t_mid = (int64_t)strtoll(page.entries[0].dlq_id, NULL, 10);
    rsbus_dlq_page_free(billing, &page);
    WAIT_UNTIL(server_ms() > t_mid + 1, 2000);
    CHECK_EQ_INT(ctl("--stream", "t:dlq", "dlq", "purge", "--before=0s", "--yes", NULL), 0);
    CHECK_CONTAINS(out, "removed 1 dead letters");
    CHECK_EQ_INT(raw_int("XLEN {t:dlq}:dlq"), 0);
    CHECK_EQ_INT(ctl("--stream", "t:dlq", "dlq", "ls", NULL), 0);
    CHECK_CONTAINS(out, "0 dead letters");
    rsbus_close(billing);
    rsbus_close(shipping);
}

TEST(health_exit_codes) {
    seen s;
    rsbus *bus = open_bus("t:health", "hg", "h1");
    redisReply *rep;
    REQUIRE(bus != NULL);
    memset(&s, 0, sizeof s);
    CHECK(rsbus_subscribe(bus, "*", h_seen, &s) > 0);
    CHECK_EQ_INT(pub(bus, "order.ok", "{}", NULL), RSBUS_OK);
    drain(bus);
    CHECK_EQ_INT(ctl("--stream", "t:health", "--group", "hg", "health", NULL), 0);
    CHECK_CONTAINS(out, "HEALTHY: ok");
    CHECK_CONTAINS(out, "server: ");
    CHECK_CONTAINS(out, "(master, 0 replicas)");
    CHECK_EQ_INT(ctl("--stream", "t:health", "--group", "hg", "--json", "health", NULL), 0);
    CHECK_EQ_STR(jstr("status"), "HEALTHY");
    CHECK_EQ_INT(jint("code"), 0);
    /* lag above --max-lag */
    CHECK_EQ_INT(pub(bus, "order.ok", "{}", NULL), RSBUS_OK);
    CHECK_EQ_INT(pub(bus, "order.ok", "{}", NULL), RSBUS_OK);
    CHECK_EQ_INT(ctl("--stream", "t:health", "--group", "hg", "health", "--max-lag", "1", NULL), 1);
    CHECK_CONTAINS(out, "DEGRADED");
    CHECK_CONTAINS(out, "lag 2 > 1");
    drain(bus);
    /* a group or stream that does not exist is reported, and not created */
    CHECK_EQ_INT(ctl("--stream", "t:health", "--group", "nosuch", "health", NULL), 1);
    CHECK_CONTAINS(out, "DEGRADED");
    CHECK_CONTAINS(out, "group nosuch does not exist");
    CHECK_EQ_INT(group_field("t:health", "nosuch", "pending"), -1);
    rep = raw("XINFO GROUPS t:health");
    CHECK(rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 1);
    if (rep) freeReplyObject(rep);
    CHECK_EQ_INT(ctl("--stream", "t:health-none", "--group", "x", "health", NULL), 1);
    CHECK_CONTAINS(out, "stream t:health-none does not exist");
    CHECK_EQ_INT(raw_int("EXISTS t:health-none"), 0);
    /* a dead letter */
    s.dead = 1;
    CHECK_EQ_INT(pub(bus, "order.bad", "{}", NULL), RSBUS_OK);
    drain(bus);
    CHECK_EQ_INT(ctl("--stream", "t:health", "--group", "hg", "health", NULL), 1);
    CHECK_CONTAINS(out, "DEGRADED");
    CHECK_CONTAINS(out, "dead-letter");
    CHECK_EQ_INT(ctl("--stream", "t:health", "--group", "hg", "health", "--json", NULL), 1);
    CHECK_EQ_STR(jstr("status"), "DEGRADED");
    CHECK_EQ_INT(jint("code"), 1);
    rsbus_close(bus);
}

/* name{labels} value, or name value */
static int metric_line_ok(const char *l) {
    const char *p = l;
    char *end;
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_' || *p == ':')) return 0;
    while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == ':') p++;
    if (*p == '{') {
        for (p++; *p != '}';) {
            while ((*p >= 'a' && *p <= 'z') || *p == '_') p++;
            if (p[0] != '=' || p[1] != '"') return 0;
            for (p += 2; *p && *p != '"'; p++) if (*p == '\\' && p[1]) p++;
            if (*p++ != '"') return 0;
            if (*p == ',') p++;
            else if (*p != '}') return 0;
        }
        p++;
    }
    if (*p++ != ' ') return 0;
    (void)strtod(p, &end);
    return end != p && *end == 0;
}

TEST(metrics_lines_parse) {
    rsbus *bus = open_bus("t:metrics", "mg", "m1");
    char *line, *save = NULL;
    int lines = 0, bad = 0;
    REQUIRE(bus != NULL);
    CHECK_EQ_INT(pub(bus, "m.event", "{}", NULL), RSBUS_OK);
    CHECK_EQ_INT(ctl("--stream", "t:metrics", "metrics", NULL), 0);
    CHECK_CONTAINS(out, "rsbus_up 1\n");
    CHECK_CONTAINS(out, "rsbus_stream_length{stream=\"t:metrics\"} 1\n");
    CHECK_CONTAINS(out, "rsbus_group_lag{stream=\"t:metrics\",group=\"mg\"} 1\n");
    for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '#') continue;
        lines++;
        if (!metric_line_ok(line)) { bad++; fprintf(stderr, "  bad metrics line: %s\n", line); }
    }
    CHECK(lines >= 10);
    CHECK_EQ_INT(bad, 0);
    rsbus_close(bus);
}

TEST(top_prints_frames) {
    rsbus *a = open_bus("t:top", "ta", NULL), *b = open_bus("t:top", "tb", NULL);
    REQUIRE(a && b);
    CHECK_EQ_INT(pub(a, "t.event", "{}", NULL), RSBUS_OK);
    drain(a);
    CHECK_EQ_INT(ctl("--stream", "t:top", "top", "--iterations", "2", "--interval", "200", NULL), 0);
    CHECK_EQ_INT(count_of(out, "rsbusctl top"), 2);
    CHECK_EQ_INT(count_of(out, "\nta "), 2);
    CHECK_EQ_INT(count_of(out, "\ntb "), 2);
    CHECK_CONTAINS(out, "frame 2/2");
    CHECK(strstr(out, "\xe2\x96\x81") || strstr(out, "\xe2\x96\x88"));   /* a sparkline: rates of the second frame */
    CHECK_CONTAINS(out, "ACK/S");
    CHECK_NOT_CONTAINS(out, "\033[");           /* not a terminal: no escapes */
    rsbus_close(a);
    rsbus_close(b);
}

/* ---- replay, rewind, spool ----------------------------------------------------------------- */

/* A string field of one group in XINFO GROUPS ("" when absent). */
static const char *xgroup_str(const char *stream, const char *group, const char *field) {
    static char v[128];
    redisReply *rep = raw("XINFO GROUPS %s", stream);
    size_t i, k;
    v[0] = 0;
    for (i = 0; rep && rep->type == REDIS_REPLY_ARRAY && i < rep->elements; i++) {
        const redisReply *g = rep->element[i];
        int mine = 0;
        for (k = 0; k + 1 < g->elements; k += 2)
            if (!strcmp(g->element[k]->str, "name") && !strcmp(g->element[k + 1]->str, group)) mine = 1;
        for (k = 0; mine && k + 1 < g->elements; k += 2)
            if (!strcmp(g->element[k]->str, field) && g->element[k + 1]->type == REDIS_REPLY_STRING)
                snprintf(v, sizeof v, "%s", g->element[k + 1]->str);
    }
    if (rep) freeReplyObject(rep);
    return v;
}
static long long xinfo_groups_count(const char *stream) {
    redisReply *rep = raw("XINFO GROUPS %s", stream);
    long long n = rep && rep->type == REDIS_REPLY_ARRAY ? (long long)rep->elements : -1;
    if (rep) freeReplyObject(rep);
    return n;
}
/* The lines of out that start with a stream id, that id followed by a space (so "1000-1 " is not "1000-10"). */
static int has_row(const char *id) {
    char want[64];
    const char *p = out;
    snprintf(want, sizeof want, "%s ", id);
    for (; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (!strncmp(p, want, strlen(want))) return 1;
    return 0;
}
/* The stream ids of out's rows, in order, joined with ','. */
static const char *row_ids(void) {
    static char ids[4096];
    const char *p = out;
    size_t n = 0;
    ids[0] = 0;
    while (p && *p && n + 64 < sizeof ids) {
        size_t len = strcspn(p, " \n");
        n += (size_t)snprintf(ids + n, sizeof ids - n, "%s%.*s", n ? "," : "", (int)len, p);
        p = strchr(p, '\n');
        if (p) p++;
    }
    return ids;
}

TEST(new_commands_help) {
    CHECK_EQ_INT(ctl("--help", NULL), 0);
    CHECK_CONTAINS(out, "replay [--from FROM] [--to TO] [--count N]");
    CHECK_CONTAINS(out, "rewind ID|WHEN --yes");
    CHECK_CONTAINS(out, "spool status|flush [--spool PATH]");
    CHECK_EQ_INT(ctl("replay", "--help", NULL), 0);
    CHECK_CONTAINS(out, "--from FROM");
    CHECK_CONTAINS(out, "whole millisecond");
    CHECK_EQ_INT(ctl("help", "rewind", NULL), 0);
    CHECK_CONTAINS(out, "XGROUP SETID");
    CHECK_CONTAINS(out, "--yes");
    CHECK_EQ_INT(ctl("rewind", "-h", NULL), 0);
    CHECK_CONTAINS(out, "usage: rsbusctl rewind");
    CHECK_EQ_INT(ctl("spool", "--help", NULL), 0);
    CHECK_CONTAINS(out, "RSBUS_SPOOL_PATH");
    CHECK_EQ_INT(ctl("spool", "status", "--help", NULL), 0);
    CHECK_CONTAINS(out, "--spool PATH");
    CHECK_EQ_INT(ctl("tail", "--help", NULL), 0);
    CHECK_CONTAINS(out, "--json prints one JSON object a line");
}

/* Entries with ids chosen by hand (XADD with an id), so that milliseconds can be tested exactly. */
static void add_ms_entries(void) {
    static const char *const adds[][4] = {
        { "1000-0", "r.a", "e1", "{\"n\":1}" }, { "1000-1", "r.b", "e2", "{\"n\":2}" },
        { "1001-0", "r.c", "e3", "{\"n\":3}" }, { "1002-5", "r.d", "e4", "[1]" } };
    size_t i;
    redisReply *rep;
    for (i = 0; i < 4; i++) {
        rep = raw("XADD t:rms %s type %s id %s ts 1000 v 1 data %s", adds[i][0], adds[i][1], adds[i][2], adds[i][3]);
        CHECK(rep && rep->type == REDIS_REPLY_STRING);
        if (rep) freeReplyObject(rep);
        if (i == 2) {            /* a malformed entry (no type): never printed */
            rep = raw("XADD t:rms 1001-1 foo bar");
            CHECK(rep && rep->type == REDIS_REPLY_STRING);
            if (rep) freeReplyObject(rep);
        }
    }
}

TEST(replay_ranges_by_id_and_ms) {
    redisReply *rep;
    size_t off;
    add_ms_entries();
    REQUIRE(raw_int("XLEN t:rms") == 5);
    rep = raw("XGROUP CREATE t:rms watcher 0");
    CHECK(rep && rep->type == REDIS_REPLY_STATUS);
    if (rep) freeReplyObject(rep);
    REQUIRE(xinfo_groups_count("t:rms") == 1);

    CHECK_EQ_INT(ctl("--stream", "t:rms", "replay", NULL), 0);    /* - .. +, oldest first */
    CHECK_EQ_STR(row_ids(), "1000-0,1000-1,1001-0,1002-5");
    CHECK_CONTAINS(out, "r.b");
    CHECK_CONTAINS(out, "e2");
    CHECK_CONTAINS(out, "{\"n\":2}");
    CHECK_NOT_CONTAINS(out, "1001-1");
    CHECK_CONTAINS(err, "4 events");
    /* ids: both ends included */
    CHECK_EQ_INT(ctl("--stream", "t:rms", "replay", "--from", "1000-1", "--to", "1001-0", NULL), 0);
    CHECK_EQ_STR(row_ids(), "1000-1,1001-0");
    CHECK_EQ_INT(ctl("--stream", "t:rms", "replay", "--from=1002-5", "--to=1002-5", NULL), 0);
    CHECK_EQ_STR(row_ids(), "1002-5");
    /* milliseconds: the whole millisecond at either end */
    CHECK_EQ_INT(ctl("--stream", "t:rms", "replay", "--from", "1000", "--to", "1001", NULL), 0);
    CHECK_EQ_STR(row_ids(), "1000-0,1000-1,1001-0");
    CHECK_EQ_INT(ctl("--stream", "t:rms", "replay", "--from", "1001", "--to", "1001", NULL), 0);
    CHECK_EQ_STR(row_ids(), "1001-0");
    CHECK_EQ_INT(ctl("--stream", "t:rms", "replay", "--from", "1001", NULL), 0);
    CHECK_EQ_STR(row_ids(), "1001-0,1002-5");
    CHECK_EQ_INT(ctl("--stream", "t:rms", "replay", "--to", "1000", NULL), 0);
    CHECK_EQ_STR(row_ids(), "1000-0,1000-1");
    CHECK_EQ_INT(ctl("--stream", "t:rms", "replay", "--from", "1000-1", "--to", "1000", NULL), 0);
    CHECK_EQ_STR(row_ids(), "1000-1");
    CHECK_NOT_CONTAINS(err, "is after");
    /* a range with nothing in it: nothing, or [] */
    CHECK_EQ_INT(ctl("--stream", "t:rms", "replay", "--from", "1000-2", "--to", "1000-99", NULL), 0);
    CHECK_EQ_STR(out, "");
    CHECK_CONTAINS(err, "0 events");
    CHECK_EQ_INT(ctl("--stream", "t:rms", "replay", "--from", "1003", NULL), 0);
    CHECK_EQ_STR(out, "");
    CHECK_EQ_INT(ctl("--stream", "t:rms", "--json", "replay", "--from", "1003", NULL), 0);
    CHECK_EQ_STR(out, "[]\n");
    /* reversed: empty, and said so */
    CHECK_EQ_INT(ctl("--stream", "t:rms", "replay", "--from", "1002", "--to", "1000", NULL), 0);
    CHECK_EQ_STR(out, "");
    CHECK_CONTAINS(err, "is after --to");
    /* durations, by Redis's clock: everything here is from 1970 */
    CHECK_EQ_INT(ctl("--stream", "t:rms", "replay", "--from", "1h", NULL), 0);
    CHECK_EQ_STR(out, "");
    CHECK_EQ_INT(ctl("--stream", "t:rms", "replay", "--to", "1h", NULL), 0);
    CHECK_EQ_STR(row_ids(), "1000-0,1000-1,1001-0,1002-5");
    CHECK_EQ_INT(ctl("--stream", "t:rms", "replay", "--from", "0", "--to", "0s", NULL), 0);
    CHECK_EQ_STR(row_ids(), "1000-0,1000-1,1001-0,1002-5");
    /* --count */
    CHECK_EQ_INT(ctl("--stream", "t:rms", "replay", "--count", "2", NULL), 0);
    CHECK_EQ_STR(row_ids(), "1000-0,1000-1");
    CHECK_CONTAINS(err, "--count reached");
    CHECK_EQ_INT(ctl("--stream", "t:rms", "replay", "--from", "1000-1", "--count", "2", NULL), 0);
    CHECK_EQ_STR(row_ids(), "1000-1,1001-0");
    CHECK_EQ_INT(ctl("--stream", "t:rms", "replay", "--count", "10", NULL), 0);
    CHECK_EQ_STR(row_ids(), "1000-0,1000-1,1001-0,1002-5");
    CHECK_NOT_CONTAINS(err, "--count reached");
    /* JSON: one array of the events */
    CHECK_EQ_INT(ctl("--stream", "t:rms", "--json", "replay", "--from", "1000-1", "--to", "1002", NULL), 0);
    CHECK_EQ_INT(rsbus_json_validate(out, strlen(out), &off), RSBUS_OK);
    CHECK_EQ_INT(out[0], '[');
    CHECK_EQ_STR(jstr("0.stream_id"), "1000-1");
    CHECK_EQ_INT(jint("0.added_ms"), 1000);
    CHECK_EQ_STR(jstr("0.type"), "r.b");
    CHECK_EQ_STR(jstr("0.id"), "e2");
    CHECK_EQ_STR(jstr("0.data"), "{\"n\":2}");
    CHECK_EQ_INT(jint("0.version"), 1);
    CHECK_EQ_INT(jint("0.ts_ms"), 1000);
    CHECK_EQ_INT(jtype("0.key"), RSBUS_JNULL);
    CHECK_EQ_STR(jstr("1.stream_id"), "1001-0");
    CHECK_EQ_STR(jstr("2.stream_id"), "1002-5");
    CHECK_EQ_STR(jstr("2.data"), "[1]");
    CHECK_EQ_INT(jtype("3"), RSBUS_JNONE);
    CHECK_EQ_INT(ctl("--stream", "t:rms", "replay", "--json", "--count", "1", NULL), 0);
    CHECK_EQ_INT(rsbus_json_validate(out, strlen(out), &off), RSBUS_OK);
    CHECK_EQ_STR(jstr("0.stream_id"), "1000-0");
    CHECK_EQ_INT(jtype("1"), RSBUS_JNONE);
    /* it changed nothing */
    CHECK_EQ_INT(raw_int("XLEN t:rms"), 5);
    CHECK_EQ_INT(xinfo_groups_count("t:rms"), 1);
    CHECK_EQ_STR(xgroup_str("t:rms", "watcher", "last-delivered-id"), "0-0");
    CHECK_EQ_INT(pending_of("t:rms", "watcher"), 0);
    /* no such stream: a runtime failure, and not created */
    CHECK_EQ_INT(ctl("--stream", "t:rnone", "replay", NULL), 1);
    CHECK_CONTAINS(err, "no stream t:rnone");
    CHECK_EQ_INT(raw_int("EXISTS t:rnone"), 0);
}

TEST(replay_published_events_and_usage_errors) {
    rsbus *bus = open_bus("t:replay", "rp", NULL);
    char sid[3][RSBUS_ID_SIZE], want[200];
    int i;
    REQUIRE(bus != NULL);
    for (i = 0; i < 3; i++) CHECK_EQ_INT(pub(bus, i == 1 ? "order.paid" : "order.created", "{\"i\":1}", sid[i]), RSBUS_OK);
    snprintf(want, sizeof want, "%s,%s,%s", sid[0], sid[1], sid[2]);
    CHECK_EQ_INT(ctl("--stream", "t:replay", "replay", "--from", sid[0], "--to", sid[2], NULL), 0);
    CHECK_EQ_STR(row_ids(), want);
    CHECK_CONTAINS(out, "order.paid");
    CHECK_EQ_INT(ctl("--stream", "t:replay", "replay", "--from", "1h", NULL), 0);   /* published just now */
    CHECK_EQ_STR(row_ids(), want);
    CHECK_EQ_INT(ctl("--stream", "t:replay", "replay", "--to", "1h", NULL), 0);
    CHECK_EQ_STR(out, "");
    CHECK_EQ_INT(ctl("--stream", "t:replay", "replay", "--from", sid[1], NULL), 0);
    CHECK(!has_row(sid[0]) && has_row(sid[1]) && has_row(sid[2]));
    CHECK_EQ_INT(pending_of("t:replay", "rp"), 0);
    CHECK_EQ_STR(xgroup_str("t:replay", "rp", "last-delivered-id"), "0-0");
    /* usage errors: exit 2, nothing printed on stdout */
    CHECK_EQ_INT(ctl("--stream", "t:replay", "replay", "--from", "abc", NULL), 2);
    CHECK_CONTAINS(err, "--from takes");
    CHECK_EQ_STR(out, "");
    CHECK_EQ_INT(ctl("--stream", "t:replay", "replay", "--to", "12x", NULL), 2);
    CHECK_EQ_INT(ctl("--stream", "t:replay", "replay", "--from", "1-2-3", NULL), 2);
    CHECK_EQ_INT(ctl("--stream", "t:replay", "replay", "--from", "5-", NULL), 2);
    CHECK_EQ_INT(ctl("--stream", "t:replay", "replay", "--from", "99999999999999999999-0", NULL), 2);
    CHECK_EQ_INT(ctl("--stream", "t:replay", "replay", "--from", "1-99999999999999999999", NULL), 2);
    CHECK_EQ_INT(ctl("--stream", "t:replay", "replay", "--from", "+x", NULL), 2);
    CHECK_EQ_INT(ctl("--stream", "t:replay", "replay", "--count", "0", NULL), 2);
    CHECK_EQ_INT(ctl("--stream", "t:replay", "replay", "--count", "x", NULL), 2);
    CHECK_EQ_INT(ctl("--stream", "t:replay", "replay", "--from", NULL), 2);
    CHECK_CONTAINS(err, "missing value");
    CHECK_EQ_INT(ctl("--stream", "t:replay", "replay", "extra", NULL), 2);
    CHECK_EQ_INT(ctl("--stream", "t:replay", "replay", "--bogus", NULL), 2);
    rsbus_close(bus);
}

TEST(tail_json_lines) {
    static proc p;
    rsbus *bus = open_bus("t:tailj", "g", NULL);
    char sid1[RSBUS_ID_SIZE], sid2[RSBUS_ID_SIZE];
    size_t off, n;
    REQUIRE(bus != NULL);
    REQUIRE(tool_start(&p, "--stream", "t:tailj", "--json", "tail", "--count", "2", NULL) == 0);
    WAIT_UNTIL((proc_pump(&p, 10), strstr(p.err, "tailing") != NULL), TOOL_TIMEOUT_MS);
    CHECK_EQ_INT(pub(bus, "j.one", "{\"a\":[1,2]}", sid1), RSBUS_OK);
    CHECK_EQ_INT(pub(bus, "j.two", "{}", sid2), RSBUS_OK);
    CHECK_EQ_INT(proc_finish(&p, TOOL_TIMEOUT_MS), 0);
    CHECK_EQ_INT(count_of(p.out, "\n"), 2);
    n = strcspn(p.out, "\n");
    snprintf(out, sizeof out, "%.*s", (int)n, p.out);      /* the first line: one object */
    CHECK_EQ_INT(rsbus_json_validate(out, strlen(out), &off), RSBUS_OK);
    CHECK_EQ_STR(jstr("stream_id"), sid1);
    CHECK_EQ_STR(jstr("type"), "j.one");
    CHECK_EQ_STR(jstr("data"), "{\"a\":[1,2]}");
    CHECK_EQ_INT(jint("added_ms"), strtoll(sid1, NULL, 10));
    snprintf(out, sizeof out, "%s", p.out + n + 1);
    CHECK_EQ_INT(rsbus_json_validate(out, strlen(out), &off), RSBUS_OK);
    CHECK_EQ_STR(jstr("stream_id"), sid2);
    CHECK_EQ_STR(jstr("type"), "j.two");
    rsbus_close(bus);
}

/* Entries other programs wrote: shown by replay/tail --foreign with every field, binary-safe; pub --field
   writes exactly the fields it is given. */
TEST(foreign_entries_and_pub_fields) {
    static const char *args[] = { "XADD", "t:fx", "*", "event_id", "e-1", "event_type", "OrderCreated",
                                        "payload", "{\"n\":1}", "bin", "\xff\0\x1b[2J" };
    static const size_t lens[] = { 4, 4, 1, 8, 3, 10, 12, 7, 7, 3, 6 };
    static proc p;
    redisReply *rep;
    char sid[RSBUS_ID_SIZE], jv[64];
    rsbus_jval v;
    size_t off, n;
    rep = raw("XADD t:fx * type fx.own id o-1 ts 1 v 1 data {}");
    CHECK(rep && rep->type == REDIS_REPLY_STRING);
    if (rep) freeReplyObject(rep);
    if (!raw_ctx) raw_ctx = test_redis_connect(&srv);
    REQUIRE(raw_ctx != NULL);
    rep = (redisReply *)redisCommandArgv(raw_ctx, 11, args, lens);
    CHECK(rep && rep->type == REDIS_REPLY_STRING);
    if (rep) { snprintf(sid, sizeof sid, "%s", rep->str); freeReplyObject(rep); }
    /* without --foreign: as before, only rsbus's events */
    CHECK_EQ_INT(ctl("--stream", "t:fx", "replay", NULL), 0);
    CHECK_CONTAINS(out, "fx.own");
    CHECK_NOT_CONTAINS(out, "OrderCreated");
    CHECK_CONTAINS(err, "1 events");
    /* --foreign: the foreign entry with every field, escaped (no raw ESC reaches the terminal) */
    CHECK_EQ_INT(ctl("--stream", "t:fx", "replay", "--foreign", NULL), 0);
    CHECK_CONTAINS(out, "(foreign)");
    CHECK_CONTAINS(out, "event_type = OrderCreated");
    CHECK_CONTAINS(out, "payload = {\"n\":1}");
    CHECK_CONTAINS(out, "bin = \\xff\\x00\\x1b[2J");
    CHECK(strchr(out, 0x1b) == NULL);
    CHECK_CONTAINS(err, "2 events");
    /* the field names of another layout: its type, id and payload */
    setenv("RSBUS_TYPE_FIELD", "event_type", 1);
    setenv("RSBUS_ID_FIELD", "event_id", 1);
    setenv("RSBUS_DATA_FIELD", "payload", 1);
    CHECK_EQ_INT(ctl("--stream", "t:fx", "--json", "replay", "--foreign", "--from", sid, NULL), 0);
    unsetenv("RSBUS_TYPE_FIELD"); unsetenv("RSBUS_ID_FIELD"); unsetenv("RSBUS_DATA_FIELD");
    CHECK_EQ_INT(rsbus_json_validate(out, strlen(out), &off), RSBUS_OK);
    CHECK_EQ_STR(jstr("0.type"), "OrderCreated");
    CHECK_EQ_STR(jstr("0.id"), "e-1");
    CHECK_EQ_STR(jstr("0.data"), "{\"n\":1}");
    CHECK(rsbus_json_get(out, strlen(out), "0.foreign", &v) == RSBUS_OK && v.type == RSBUS_JBOOL);
    CHECK_EQ_STR(jstr("0.fields.0.name"), "event_id");
    CHECK_EQ_STR(jstr("0.fields.3.name"), "bin");
    CHECK_EQ_STR(jstr("0.fields.3.value_hex"), "ff001b5b324a");
    /* tail --foreign --json */
    REQUIRE(tool_start(&p, "--stream", "t:fx", "--json", "tail", "--foreign", "--count", "1", NULL) == 0);
    WAIT_UNTIL((proc_pump(&p, 10), strstr(p.err, "tailing") != NULL), TOOL_TIMEOUT_MS);
    rep = raw("XADD t:fx * only one");
    CHECK(rep && rep->type == REDIS_REPLY_STRING);
    if (rep) freeReplyObject(rep);
    CHECK_EQ_INT(proc_finish(&p, TOOL_TIMEOUT_MS), 0);
    n = strcspn(p.out, "\n");
    snprintf(out, sizeof out, "%.*s", (int)n, p.out);
    CHECK_EQ_INT(rsbus_json_validate(out, strlen(out), &off), RSBUS_OK);
    CHECK_EQ_STR(jstr("type"), "");
    CHECK_EQ_STR(jstr("fields.0.name"), "only");
    CHECK_EQ_STR(jstr("fields.0.value"), "one");
    /* pub --field: exactly these fields, in order */
    CHECK_EQ_INT(ctl("--stream", "t:fxp", "pub", "--field", "event_type=OrderShipped", "--field=payload={\"a\":1}",
                     "--field", "empty=", "--key", "k1", NULL), 0);
    rep = raw("XRANGE t:fxp - +");
    CHECK(rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 1);
    if (rep && rep->elements == 1) {
        const redisReply *f = rep->element[0]->element[1];
        CHECK_EQ_INT(f->elements, 6);
        if (f->elements == 6) {
            CHECK_EQ_STR(f->element[0]->str, "event_type");
            CHECK_EQ_STR(f->element[1]->str, "OrderShipped");
            CHECK_EQ_STR(f->element[3]->str, "{\"a\":1}");
            CHECK_EQ_STR(f->element[4]->str, "empty");
            CHECK_EQ_INT(f->element[5]->len, 0);
        }
        snprintf(jv, sizeof jv, "%s\n", rep->element[0]->element[0]->str);
        CHECK_EQ_STR(out, jv);
    }
    if (rep) freeReplyObject(rep);
    CHECK_EQ_INT(ctl("--stream", "t:fxp", "pub", "--field", "noequals", NULL), 2);
    CHECK_EQ_INT(ctl("--stream", "t:fxp", "pub", "--field", "=v", NULL), 2);
    CHECK_EQ_INT(ctl("--stream", "t:fxp", "pub", "--field", "type=x", "extra", NULL), 2);
    CHECK_EQ_INT(raw_int("XLEN t:fxp"), 1);
}

TEST(rewind_needs_yes_and_moves_the_group) {
    seen s;
    rsbus *bus = open_bus("t:rewind", "rg", "rc1");
    char sid[5][RSBUS_ID_SIZE], ms[32], before[RSBUS_ID_SIZE];
    int i, expect;
    REQUIRE(bus != NULL);
    memset(&s, 0, sizeof s);
    CHECK(rsbus_subscribe(bus, "*", h_seen, &s) > 0);
    for (i = 0; i < 4; i++) CHECK_EQ_INT(pub(bus, "rw.event", "{}", sid[i]), RSBUS_OK);
    drain(bus);
    REQUIRE(s.calls == 4);
    REQUIRE(!strcmp(xgroup_str("t:rewind", "rg", "last-delivered-id"), sid[3]));

    /* without --yes: refused (2), says what it would do, moves nothing */
    CHECK_EQ_INT(ctl("--stream", "t:rewind", "--group", "rg", "rewind", sid[1], NULL), 2);
    CHECK_CONTAINS(err, "--yes");
    CHECK_CONTAINS(err, "would move group rg");
    CHECK_CONTAINS(err, sid[1]);
    CHECK_EQ_STR(xgroup_str("t:rewind", "rg", "last-delivered-id"), sid[3]);
    drain(bus);
    CHECK_EQ_INT(s.calls, 4);

    /* a stream id: the group gets the entries after it again */
    CHECK_EQ_INT(ctl("--stream", "t:rewind", "--group", "rg", "rewind", sid[1], "--yes", NULL), 0);
    CHECK_CONTAINS(out, sid[3]);
    CHECK_CONTAINS(out, " -> ");
    CHECK_CONTAINS(out, sid[1]);
    CHECK_EQ_STR(xgroup_str("t:rewind", "rg", "last-delivered-id"), sid[1]);
    s.calls = 0;
    drain(bus);
    CHECK_EQ_INT(s.calls, 2);
    CHECK_EQ_STR(xgroup_str("t:rewind", "rg", "last-delivered-id"), sid[3]);

    /* 0: all of it; --json */
    CHECK_EQ_INT(ctl("--stream", "t:rewind", "--group", "rg", "--json", "rewind", "0", "--yes", NULL), 0);
    CHECK_EQ_STR(jstr("from"), sid[3]);
    CHECK_EQ_STR(jstr("to"), "0-0");
    CHECK_EQ_STR(jstr("group"), "rg");
    CHECK_EQ_STR(jstr("stream"), "t:rewind");
    CHECK_EQ_INT(jint("pending"), 0);
    s.calls = 0;
    drain(bus);
    CHECK_EQ_INT(s.calls, 4);

    /* $: the entries there now are skipped */
    CHECK_EQ_INT(pub(bus, "rw.event", "{}", sid[4]), RSBUS_OK);
    CHECK_EQ_INT(ctl("--stream", "t:rewind", "--group", "rg", "rewind", "$", "--yes", NULL), 0);
    CHECK_EQ_STR(xgroup_str("t:rewind", "rg", "last-delivered-id"), sid[4]);
    CHECK_CONTAINS(out, "moved forward");
    s.calls = 0;
    drain(bus);
    CHECK_EQ_INT(s.calls, 0);

    /* a duration: the entries added since then (all five) */
    CHECK_EQ_INT(ctl("--stream", "t:rewind", "--group", "rg", "rewind", "1h", "--yes", NULL), 0);
    CHECK_CONTAINS(xgroup_str("t:rewind", "rg", "last-delivered-id"), "-18446744073709551615");
    CHECK(strtoll(xgroup_str("t:rewind", "rg", "last-delivered-id"), NULL, 10) < strtoll(sid[0], NULL, 10));
    CHECK_CONTAINS(out, "on next");
    s.calls = 0;
    drain(bus);
    CHECK_EQ_INT(s.calls, 5);

    /* epoch milliseconds: the entries from that whole millisecond on */
    snprintf(ms, sizeof ms, "%lld", strtoll(sid[2], NULL, 10));
    for (expect = 0, i = 0; i < 5; i++) if (strtoll(sid[i], NULL, 10) >= strtoll(ms, NULL, 10)) expect++;
    CHECK_EQ_INT(ctl("--stream", "t:rewind", "--group", "rg", "rewind", ms, "--yes", NULL), 0);
    s.calls = 0;
    drain(bus);
    CHECK_EQ_INT(s.calls, expect);
    CHECK(expect >= 3);

    /* forward over entries not yet read: said so */
    CHECK_EQ_INT(ctl("--stream", "t:rewind", "--group", "rg", "rewind", sid[0], "--yes", NULL), 0);
    snprintf(before, sizeof before, "%s", xgroup_str("t:rewind", "rg", "last-delivered-id"));
    CHECK_EQ_STR(before, sid[0]);
    CHECK_EQ_INT(ctl("--stream", "t:rewind", "--group", "rg", "rewind", sid[3], "--yes", NULL), 0);
    CHECK_CONTAINS(out, "moved forward");
    s.calls = 0;
    drain(bus);
    CHECK_EQ_INT(s.calls, 1);

    /* errors */
    CHECK_EQ_INT(ctl("--stream", "t:rewind", "--group", "rg", "rewind", NULL), 2);
    CHECK_CONTAINS(err, "missing argument");
    CHECK_EQ_INT(ctl("--stream", "t:rewind", "--group", "rg", "rewind", "abc", "--yes", NULL), 2);
    CHECK_EQ_INT(ctl("--stream", "t:rewind", "--group", "rg", "rewind", "1-2-3", "--yes", NULL), 2);
    CHECK_EQ_INT(ctl("--stream", "t:rewind", "--group", "rg", "rewind", "-", "--yes", NULL), 2);
    CHECK_EQ_INT(ctl("--stream", "t:rewind", "--group", "rg", "rewind", "+", "--yes", NULL), 2);
    CHECK_EQ_INT(ctl("--stream", "t:rewind", "--group", "rg", "rewind", "0", "1", "--yes", NULL), 2);
    CHECK_EQ_INT(ctl("--stream", "t:rewind", "--group", "rg", "rewind", "0", "--yes=1", NULL), 2);
    CHECK_EQ_STR(xgroup_str("t:rewind", "rg", "last-delivered-id"), sid[4]);
    CHECK_EQ_INT(ctl("--stream", "t:rewind", "--group", "nosuch", "rewind", "0", "--yes", NULL), 1);
    CHECK_CONTAINS(err, "no group nosuch");
    CHECK_EQ_INT(xinfo_groups_count("t:rewind"), 1);
    CHECK_EQ_INT(ctl("--stream", "t:rewind-none", "--group", "rg", "rewind", "0", "--yes", NULL), 1);
    CHECK_EQ_INT(raw_int("EXISTS t:rewind-none"), 0);
    rsbus_close(bus);
}

/* A bus whose Redis is not there (a unix socket that does not exist), with a spool: it starts offline. */
static char dead_url[600];
static void set_dead_url(void) { snprintf(dead_url, sizeof dead_url, "unix://%s/nobody-here.sock", srv.dir); }
static rsbus *open_spooler(const char *stream, const char *path) {
    rsbus_config c;
    memset(&c, 0, sizeof c);
    set_dead_url();
    c.url = dead_url;
    c.stream = stream;
    c.spool_path = path;
    c.publish_only = 1;
    c.connect_timeout_ms = 1000;
    c.io_timeout_ms = 1000;
    c.log = capture_log;
    c.log_level = RSBUS_LOG_DEBUG;
    return open_cfg(&c);
}

TEST(spool_status_and_flush) {
    char path[512], type[32], num[32];
    rsbus *bus;
    size_t ev = 0, bytes = 0;
    redisReply *rep;
    int i;
    tmp_path(path, sizeof path, "ctl.spool");
    REQUIRE((bus = open_spooler("t:spool", path)) != NULL);
    for (i = 1; i <= 3; i++) {
        snprintf(type, sizeof type, "sp.%d", i);
        CHECK_EQ_INT(pub(bus, type, "{\"k\":1}", NULL), RSBUS_SPOOLED);
    }
    CHECK_EQ_INT(rsbus_spool_pending(bus, &ev, &bytes), RSBUS_OK);
    REQUIRE(ev == 3 && bytes > 0);
    rsbus_close(bus);
    snprintf(num, sizeof num, "%zu bytes", bytes);

    CHECK_EQ_INT(ctl("--stream", "t:spool", "spool", "status", "--spool", path, NULL), 0);
    CHECK_CONTAINS(out, "3 events");
    CHECK_CONTAINS(out, num);
    CHECK_EQ_INT(ctl("--stream", "t:spool", "--json", "spool", "status", NULL), 2);   /* no path at all */
    {
        char opt[600];
        snprintf(opt, sizeof opt, "--spool=%s", path);
        CHECK_EQ_INT(ctl("--json", "spool", "status", opt, NULL), 0);
    }
    CHECK_EQ_INT(jint("events"), 3);
    CHECK_EQ_INT(jint("bytes"), (long long)bytes);
    CHECK_EQ_STR(jstr("path"), path);
    /* RSBUS_SPOOL_PATH */
    setenv("RSBUS_SPOOL_PATH", path, 1);
    CHECK_EQ_INT(ctl("spool", "status", NULL), 0);
    CHECK_CONTAINS(out, "3 events");
    /* Redis unreachable: status still works (quietly), flush fails and keeps them */
    CHECK_EQ_INT(ctl("--url", dead_url, "spool", "status", NULL), 0);
    CHECK_CONTAINS(out, "3 events");
    CHECK_NOT_CONTAINS(err, "rsbus warning");
    CHECK_EQ_INT(ctl("--url", dead_url, "--stream", "t:spool", "spool", "flush", NULL), 1);
    CHECK_CONTAINS(err, "RSBUS_E_IO");
    CHECK_CONTAINS(err, "3 events");
    CHECK_EQ_STR(out, "");
    CHECK_EQ_INT(raw_int("EXISTS t:spool"), 0);
    CHECK_EQ_INT(ctl("spool", "status", NULL), 0);
    CHECK_CONTAINS(out, "3 events");
    unsetenv("RSBUS_SPOOL_PATH");
    /* flush against the live server: in order, then nothing is left */
    CHECK_EQ_INT(ctl("--stream", "t:spool", "spool", "flush", "--spool", path, NULL), 0);
    CHECK_CONTAINS(out, "sent 3 events");
    CHECK_CONTAINS(out, "t:spool");
    CHECK_EQ_INT(raw_int("XLEN t:spool"), 3);
    rep = raw("XRANGE t:spool - +");
    REQUIRE(rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 3);
    for (i = 0; i < 3; i++) {
        snprintf(type, sizeof type, "sp.%d", i + 1);
        CHECK_EQ_STR(rep->element[i]->element[1]->element[1]->str, type);
    }
    freeReplyObject(rep);
    CHECK_EQ_INT(ctl("spool", "status", "--spool", path, NULL), 0);
    CHECK_CONTAINS(out, "0 events");
    CHECK_EQ_INT(ctl("--stream", "t:spool", "--json", "spool", "flush", "--spool", path, NULL), 0);
    CHECK_EQ_INT(jint("sent"), 0);
    CHECK_EQ_INT(jint("events"), 0);
    CHECK_EQ_STR(jstr("stream"), "t:spool");
    CHECK_EQ_INT(raw_int("XLEN t:spool"), 3);
    CHECK_EQ_INT(access(path, F_OK), 0);                   /* the file stays, empty */
}

TEST(spool_in_use_and_usage_errors) {
    char path[512], missing[512];
    rsbus *bus;
    tmp_path(path, sizeof path, "held.spool");
    REQUIRE((bus = open_spooler("t:held", path)) != NULL);
    CHECK_EQ_INT(pub(bus, "held.one", "{}", NULL), RSBUS_SPOOLED);
    /* a running publisher holds the spool: reported, exit 1, nothing sent */
    CHECK_EQ_INT(ctl("--stream", "t:held", "spool", "status", "--spool", path, NULL), 1);
    CHECK_CONTAINS(err, "in use");
    CHECK_CONTAINS(err, "running publisher");
    CHECK_EQ_STR(out, "");
    CHECK_EQ_INT(ctl("--stream", "t:held", "spool", "flush", "--spool", path, NULL), 1);
    CHECK_CONTAINS(err, "in use");
    CHECK_EQ_INT(raw_int("EXISTS t:held"), 0);
    rsbus_close(bus);
    CHECK_EQ_INT(ctl("--stream", "t:held", "spool", "status", "--spool", path, NULL), 0);
    CHECK_CONTAINS(out, "1 events");
    /* usage errors */
    unsetenv("RSBUS_SPOOL_PATH");
    CHECK_EQ_INT(ctl("spool", "status", NULL), 2);
    CHECK_CONTAINS(err, "--spool PATH");
    CHECK_CONTAINS(err, "RSBUS_SPOOL_PATH");
    CHECK_EQ_INT(ctl("spool", "flush", NULL), 2);
    CHECK_EQ_INT(ctl("spool", NULL), 2);
    CHECK_EQ_INT(ctl("spool", "frob", NULL), 2);
    CHECK_CONTAINS(err, "unknown spool command");
    CHECK_EQ_INT(ctl("spool", "status", "--spool", NULL), 2);
    CHECK_EQ_INT(ctl("spool", "status", "--spool", "", NULL), 2);
    CHECK_EQ_INT(ctl("spool", "status", "--spool", path, "extra", NULL), 2);
    setenv("RSBUS_SPOOL_PATH", "", 1);
    CHECK_EQ_INT(ctl("spool", "status", NULL), 2);
    unsetenv("RSBUS_SPOOL_PATH");
    /* a file that does not exist: an error, and rsbusctl does not create it */
    tmp_path(missing, sizeof missing, "missing.spool");
    CHECK_EQ_INT(ctl("spool", "status", "--spool", missing, NULL), 1);
    CHECK_CONTAINS(err, "no such spool file");
    CHECK_EQ_INT(ctl("spool", "flush", "--spool", missing, NULL), 1);
    CHECK(access(missing, F_OK) != 0);
}

TEST(other_commands_never_spool) {
    char path[512];
    tmp_path(path, sizeof path, "never.spool");
    setenv("RSBUS_SPOOL_PATH", path, 1);
    set_dead_url();
    CHECK_EQ_INT(ctl("--url", dead_url, "--stream", "t:nospool", "pub", "x.y", "{}", NULL), 1);
    CHECK_CONTAINS(err, "RSBUS_E_IO");
    CHECK(access(path, F_OK) != 0);
    CHECK_EQ_INT(ctl("--stream", "t:nospool", "pub", "x.y", "{}", NULL), 0);
    CHECK_EQ_INT(raw_int("XLEN t:nospool"), 1);
    CHECK(access(path, F_OK) != 0);
    unsetenv("RSBUS_SPOOL_PATH");
}

/* Last: the server goes away. */
TEST(redis_down) {
    test_redis_kill(&srv);
    raw_reset();
    CHECK_EQ_INT(ctl("--stream", "t:health", "health", NULL), 2);
    CHECK_CONTAINS(out, "UNHEALTHY");
    CHECK_EQ_INT(ctl("--stream", "t:health", "--json", "health", NULL), 2);
    CHECK_EQ_STR(jstr("status"), "UNHEALTHY");
    CHECK_EQ_INT(ctl("--stream", "t:health", "info", NULL), 1);
    CHECK_CONTAINS(err, "RSBUS_E_IO");
    CHECK_EQ_INT(test_redis_restart(&srv), 0);
}

/* A partitioned stream: the tool finds the pinned count itself; partitions lists each one; info, dlq,
   health and metrics cover every partition. */
static rsbus_verdict h_dead(const rsbus_msg *m, void *user) { (void)m; (void)user; return RSBUS_DEAD; }
TEST(partitions_command_and_partition_aware_commands) {
    rsbus_config c = test_cfg("t:parts", "g", "w");
    rsbus *bus;
    rsbus_event ev;
    char keys[12][8];
    int i, p = -1;
    long long total = 0;
    c.partitions = 3;
    bus = open_cfg(&c);
    REQUIRE(bus != NULL);
    memset(&ev, 0, sizeof ev);
    for (i = 0; i < 12; i++) {
        snprintf(keys[i], sizeof keys[i], "k%d", i);
        ev.type = "t"; ev.key = keys[i];
        CHECK_EQ_INT(rsbus_publish(bus, &ev, NULL), RSBUS_OK);
    }
    ev.type = "dead"; ev.key = "k0";
    CHECK_EQ_INT(rsbus_publish(bus, &ev, NULL), RSBUS_OK);
    CHECK(rsbus_subscribe(bus, "dead", h_dead, NULL) > 0);
    WAIT_UNTIL(rsbus_poll(bus, 10) >= 0 && raw_int("XLEN {t:parts:p%d}:dlq", rsbus_key_slot("k0", 0) % 3) == 1, 5000);
    /* the table: every partition, the numbers Redis has, and the warning (all on one server) */
    CHECK_EQ_INT(ctl("--stream", "t:parts", "--group", "g", "partitions", NULL), 0);
    CHECK_CONTAINS(out, "3 partitions on 1 server");
    CHECK_CONTAINS(out, "t:parts:p0");
    CHECK_CONTAINS(out, "t:parts:p2");
    CHECK_CONTAINS(out, "warning: 3 of the 3 partitions are on one server");
    CHECK_EQ_INT(ctl("--stream", "t:parts", "--group", "g", "--json", "partitions", NULL), 0);
    for (i = 0; i < 3; i++) {
        char path[64], key[32];
        snprintf(path, sizeof path, "partitions.%d.length", i);
        snprintf(key, sizeof key, "t:parts:p%d", i);
        CHECK_EQ_INT(jint(path), raw_int("XLEN %s", key));
        total += jint(path);
        snprintf(path, sizeof path, "partitions.%d.slot", i);
        CHECK_EQ_INT(jint(path), rsbus_key_slot(key, 0));
        snprintf(path, sizeof path, "partitions.%d.dlq_length", i);
        if (jint(path) == 1) p = i;
    }
    CHECK_EQ_INT(total, 13);
    CHECK_EQ_INT(p, rsbus_key_slot("k0", 0) % 3);
    /* info sums them; a wrong --partitions is refused naming both counts */
    CHECK_EQ_INT(ctl("--stream", "t:parts", "--json", "info", NULL), 0);
    CHECK_EQ_INT(jint("length"), 13);
    CHECK_EQ_INT(jint("dlq_length"), 1);
    CHECK_EQ_INT(ctl("--stream", "t:parts", "--partitions", "4", "info", NULL), 1);
    CHECK_CONTAINS(err, "4, but stream t:parts has 3 partitions");
    CHECK_EQ_INT(ctl("--stream", "t:parts", "--partitions", "x", "info", NULL), 2);
    /* dead letters: p<i>/ ids, shown and replayed by them */
    CHECK_EQ_INT(ctl("--stream", "t:parts", "--json", "dlq", "ls", NULL), 0);
    {
        char id[64];
        snprintf(id, sizeof id, "%s", jstr("dead_letters.0.dlq_id"));
        CHECK(id[0] == 'p' && id[1] == '0' + p && id[2] == '/');
        CHECK_EQ_INT(ctl("--stream", "t:parts", "dlq", "show", id, NULL), 0);
        CHECK_EQ_INT(ctl("--stream", "t:parts", "health", NULL), 1);
        CHECK_CONTAINS(out, "dead-letter stream holds 1 entry");
        CHECK_CONTAINS(out, "partition ");
        CHECK_EQ_INT(ctl("--stream", "t:parts", "metrics", NULL), 0);
        CHECK_CONTAINS(out, "rsbus_stream_length{stream=\"t:parts\"} 13\n");
        CHECK_CONTAINS(out, "rsbus_stream_length{stream=\"t:parts\",partition=\"0\"}");
        {
            long long before = raw_int("XLEN t:parts:p%d", p);
            CHECK_EQ_INT(ctl("--stream", "t:parts", "dlq", "replay", id, NULL), 0);
            CHECK_EQ_INT(raw_int("XLEN {t:parts:p%d}:dlq", p), 0);
            CHECK_EQ_INT(raw_int("XLEN t:parts:p%d", p), before + 1);   /* back in its own partition */
        }
    }
    rsbus_close(bus);
}

int main(int argc, char **argv) {
    static char sibling[1024];
    const char *slash = strrchr(argv[0], '/');
    /* argv[1], $RSBUSCTL, the rsbusctl beside this program (build/san/rsbusctl for build/san/test_rsbusctl),
       build/rsbusctl */
    snprintf(sibling, sizeof sibling, "%.*srsbusctl", slash ? (int)(slash - argv[0] + 1) : 0, argv[0]);
    tool = argc > 1 ? argv[1] : getenv("RSBUSCTL") ? getenv("RSBUSCTL")
         : access(sibling, X_OK) == 0 ? sibling : "build/rsbusctl";
    fprintf(stderr, "test_rsbusctl: running %s\n", tool);
    if (access(tool, X_OK) != 0) {
        fprintf(stderr, "test_rsbusctl: the tool %s is missing or not executable: build it first (make examples),\n"
                        "or give its path as the first argument or in RSBUSCTL\n", tool);
        test__failed++;
        return test_summary("test_rsbusctl");
    }
    if (test_redis_start(&srv, NULL) != 0) {
        fprintf(stderr, "test_rsbusctl: cannot start redis-server\n");
        test__failed++;
        return test_summary("test_rsbusctl");
    }
    setenv("RSBUS_URL", srv.unix_url, 1);
    unsetenv("RSBUS_STREAM");
    unsetenv("RSBUS_GROUP");
    unsetenv("RSBUS_SPOOL_PATH");
    setenv("RSBUS_CONNECT_TIMEOUT_MS", "2000", 1);
    RUN(help_and_usage_errors);
    RUN(passwords_are_never_printed);
    RUN(pub_then_xlen);
    RUN(tail_follows_new_entries);
    RUN(info_text_and_json);
    RUN(consumers_and_gc);
    RUN(dlq_ls_show_replay_purge);
    RUN(health_exit_codes);
    RUN(metrics_lines_parse);
    RUN(top_prints_frames);
    RUN(new_commands_help);
    RUN(replay_ranges_by_id_and_ms);
    RUN(replay_published_events_and_usage_errors);
    RUN(tail_json_lines);
    RUN(foreign_entries_and_pub_fields);
    RUN(rewind_needs_yes_and_moves_the_group);
    RUN(spool_status_and_flush);
    RUN(spool_in_use_and_usage_errors);
    RUN(other_commands_never_spool);
    RUN(partitions_command_and_partition_aware_commands);
    RUN(redis_down);
    kill_children();
    raw_reset();
    test_redis_stop(&srv);
    return test_summary("test_rsbusctl");
}
