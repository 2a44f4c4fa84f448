/* test_gateway.c - the embedded gateway examples/gateway.c, run as a child process fed through a pipe,
   against a real redis-server (AOF, appendfsync always) that the test SIGKILLs and starts again while
   readings keep coming: every reading fed arrives exactly once and in the order fed; a SIGTERM while
   Redis is down leaves the spool on disk and the next start sends it; lines that are not JSON, or too
   long, are counted and skipped without being echoed. The gateway is argv[1], else $GATEWAY, else the
   gateway in this program's directory, else build/gateway. */
#define _POSIX_C_SOURCE 200809L
#define RSBUS_IMPLEMENTATION
#include "../rsbus.h"
#include "test.h"
#include "redis_server.h"
#include "bus_util.h"

static const char *gateway_bin = "build/gateway";

typedef struct gw { pid_t pid; int in; char log[512], spool[512]; } gw;

/* Starts the gateway on stream with its stdin a pipe (or /dev/null when closed_input), stderr to a log. */
static int gw_start(gw *g, const char *stream, const char *spool_name, int closed_input) {
    char env_url[512], env_stream[128], env_spool[600];
    char *envp[5], *argv[2];
    int p[2] = { -1, -1 }, logfd;
    g->in = -1;
    snprintf(g->log, sizeof g->log, "%s/%s.log", srv.dir, spool_name);
    snprintf(g->spool, sizeof g->spool, "%s/%s", srv.dir, spool_name);
    snprintf(env_url, sizeof env_url, "RSBUS_URL=%s", srv.unix_url);
    snprintf(env_stream, sizeof env_stream, "RSBUS_STREAM=%s", stream);
    snprintf(env_spool, sizeof env_spool, "RSBUS_SPOOL_PATH=%s", g->spool);
    envp[0] = env_url; envp[1] = env_stream; envp[2] = env_spool;
    envp[3] = (char *)(uintptr_t)"RSBUS_CONNECT_TIMEOUT_MS=1000"; envp[4] = NULL;
    argv[0] = (char *)(uintptr_t)gateway_bin; argv[1] = NULL;
    logfd = open(g->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (logfd < 0) return -1;
    if (!closed_input && pipe(p) != 0) { close(logfd); return -1; }
    g->pid = fork();
    if (g->pid < 0) { close(logfd); return -1; }
    if (g->pid == 0) {                       /* only async-signal-safe calls until exec */
        int devnull = open("/dev/null", O_RDWR);
        if (closed_input) dup2(devnull, 0); else { dup2(p[0], 0); close(p[0]); close(p[1]); }
        dup2(devnull, 1);
        dup2(logfd, 2);
        execve(argv[0], argv, envp);
        _exit(127);
    }
    close(logfd);
    if (!closed_input) { close(p[0]); g->in = p[1]; }
    return 0;
}

static void gw_feed(gw *g, const char *text) {
    size_t n = strlen(text), off = 0;
    while (off < n) {
        ssize_t w = write(g->in, text + off, n - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) { test__fail(__FILE__, __LINE__, "write to the gateway's stdin failed"); return; }
        off += (size_t)w;
    }
}

static void gw_feed_seq(gw *g, int from, int to) {
    char line[96];
    int i;
    for (i = from; i < to; i++) {
        snprintf(line, sizeof line, "{\"seq\":%d,\"t\":%d.%d}\n", i, 20 + i % 5, i % 10);
        gw_feed(g, line);
    }
}

/* Waits for the gateway to exit; returns its exit status, or -1 (killed, or not within timeout_ms). */
static int gw_wait(gw *g, int timeout_ms) {
    int st = 0;
    int64_t dl = test_now_ms() + timeout_ms;
    pid_t r;
    while ((r = waitpid(g->pid, &st, WNOHANG)) == 0 && test_now_ms() < dl) test_sleep_ms(5);
    if (r != g->pid) { kill(g->pid, SIGKILL); waitpid(g->pid, &st, 0); g->pid = 0; return -1; }
    g->pid = 0;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Records in a spool file (its format: a 16-byte header, then little-endian length, CRC, payload). */
static long spool_records(const char *path) {
    FILE *f = fopen(path, "rb");
    unsigned char h[16];
    long n = 0;
    if (!f) return -1;
    if (fread(h, 1, 16, f) != 16) { fclose(f); return 0; }
    while (fread(h, 1, 8, f) == 8) {
        unsigned long len = (unsigned long)h[0] | (unsigned long)h[1] << 8 | (unsigned long)h[2] << 16 |
                            (unsigned long)h[3] << 24;
        if (fseek(f, (long)len, SEEK_CUR) != 0) break;
        n++;
    }
    fclose(f);
    return n;
}

/* Whether a file holds these bytes (a spool's records hold each reading's JSON verbatim). */
static int file_has(const char *path, const char *what) {
    static char buf[1 << 20];
    FILE *f = fopen(path, "rb");
    size_t n, k = strlen(what), i;
    if (!f) return 0;
    n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    for (i = 0; i + k <= n; i++) if (!memcmp(buf + i, what, k)) return 1;
    return 0;
}

static int log_has(const char *path, const char *what) {
    static char text[1 << 16];
    FILE *f = fopen(path, "rb");
    size_t n;
    if (!f) return 0;
    n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = 0;
    return strstr(text, what) != NULL;
}

/* The stream holds exactly the readings from..to-1, in that order; repeat >= 0: that reading appears twice,
   one after the other, with the same event id (sent again after its reply was lost). */
static void check_stream_seq_repeat(const char *stream, int from, int to, int repeat) {
    redisReply *rep = raw("XRANGE %s - +", stream);
    size_t i;
    int bad = 0, shift = 0;
    const char *prev_id = NULL;
    REQUIRE(rep && rep->type == REDIS_REPLY_ARRAY);
    CHECK_EQ_INT(rep->elements, to - from + (repeat >= 0));
    for (i = 0; i < rep->elements && !bad; i++) {
        const redisReply *f = rep->element[i]->element[1];
        char want[32];
        size_t j;
        const char *data = NULL, *id = NULL;
        for (j = 0; j + 1 < f->elements; j += 2) {
            if (!strcmp(f->element[j]->str, "data")) data = f->element[j + 1]->str;
            if (!strcmp(f->element[j]->str, "id")) id = f->element[j + 1]->str;
        }
        if (repeat >= 0 && (int)i == repeat - from + 1) {   /* the repeat: the same reading, the same event id */
            shift = 1;
            CHECK(id && prev_id && strcmp(id, prev_id) == 0);
        }
        prev_id = id;
        snprintf(want, sizeof want, "{\"seq\":%d,", from + (int)i - shift);
        if (!data || strncmp(data, want, strlen(want)) != 0) {
            char m[160];
            snprintf(m, sizeof m, "entry %lu of %s is %.60s, not %s...", (unsigned long)i, stream,
                     data ? data : "(no data)", want);
            test__fail(__FILE__, __LINE__, m);
            bad = 1;
        }
    }
    freeReplyObject(rep);
}
static void check_stream_seq(const char *stream, int from, int to) { check_stream_seq_repeat(stream, from, to, -1); }

TEST(rides_out_a_redis_restart) {
    gw g;
    long long len;
    REQUIRE(gw_start(&g, "gw:restart", "restart.spool", 0) == 0);
    gw_feed_seq(&g, 0, 500);
    WAIT_UNTIL(raw_int("XLEN gw:restart") == 500, 20000);
    raw_reset();
    test_redis_kill(&srv);
    gw_feed_seq(&g, 500, 800);                     /* Redis is gone: these are spooled */
    WAIT_UNTIL(file_has(g.spool, "{\"seq\":799,"), 30000);   /* the last of them is in the spool */
    REQUIRE(test_redis_restart(&srv) == 0);
    gw_feed_seq(&g, 800, 1000);                    /* sent after the spool, which goes first */
    close(g.in);                                   /* end of input: the gateway sends what is left, exits */
    CHECK_EQ_INT(gw_wait(&g, 30000), 0);
    /* nothing lost, in order; the reading in flight as Redis died (the 500th) may be there twice, with the
       same event id, when Redis took it but its reply was lost (at-least-once) */
    len = raw_int("XLEN gw:restart");
    CHECK(len == 1000 || len == 1001);
    check_stream_seq_repeat("gw:restart", 0, 1000, len == 1001 ? 499 : -1);
    CHECK_EQ_INT(spool_records(g.spool), 0);
    CHECK(log_has(g.log, "Redis cannot be reached"));
    CHECK(log_has(g.log, "end of input: 1000 readings"));
}

TEST(sigterm_while_redis_is_down_keeps_the_spool_for_the_next_start) {
    gw g;
    long rec;
    REQUIRE(gw_start(&g, "gw:term", "term.spool", 0) == 0);
    gw_feed_seq(&g, 0, 100);
    WAIT_UNTIL(raw_int("XLEN gw:term") == 100, 20000);
    raw_reset();
    test_redis_kill(&srv);
    gw_feed_seq(&g, 100, 150);
    WAIT_UNTIL(file_has(g.spool, "{\"seq\":149,"), 30000);   /* the last reading is in the spool */
    kill(g.pid, SIGTERM);                          /* stdin still open: it stops on the signal */
    CHECK_EQ_INT(gw_wait(&g, 20000), 0);
    close(g.in);
    /* nothing lost: 50 readings spooled, or 51 when the reading in flight as Redis died (the 100th) was
       taken but its reply lost: at-least-once sends it again, with the same event id */
    rec = spool_records(g.spool);
    CHECK(rec == 50 || rec == 51);
    CHECK(log_has(g.log, "stopped by a signal"));
    CHECK(log_has(g.log, rec == 51 ? "51 still in" : "50 still in"));
    REQUIRE(test_redis_restart(&srv) == 0);
    REQUIRE(gw_start(&g, "gw:term", "term.spool", 1) == 0);   /* no input: it sends the spool and ends */
    CHECK_EQ_INT(gw_wait(&g, 20000), 0);
    CHECK(log_has(g.log, rec == 51 ? "holds 51 readings from before" : "holds 50 readings from before"));
    CHECK_EQ_INT(raw_int("XLEN gw:term"), 100 + rec);
    check_stream_seq_repeat("gw:term", 0, 150, rec == 51 ? 99 : -1);
    CHECK_EQ_INT(spool_records(g.spool), 0);
}

TEST(bad_lines_are_counted_and_never_echoed) {
    gw g;
    static char big[70001];
    memset(big, 'x', sizeof big - 1);
    REQUIRE(gw_start(&g, "gw:bad", "bad.spool", 0) == 0);
    gw_feed(&g, "{\"seq\":0,\"t\":1}\n");
    gw_feed(&g, "not json: secret-reading-42\n");
    gw_feed(&g, "\n   \r\n");                      /* blank lines are not readings */
    gw_feed(&g, "{\"seq\":1,\"t\":1}\r\n");
    gw_feed(&g, big);                              /* one line over 64 KiB */
    gw_feed(&g, "\n{\"seq\":2,\"t\":1}");         /* the last line has no newline */
    close(g.in);
    CHECK_EQ_INT(gw_wait(&g, 20000), 0);
    check_stream_seq("gw:bad", 0, 3);
    CHECK(log_has(g.log, "line 2 refused"));
    CHECK(log_has(g.log, "skipped"));
    CHECK(log_has(g.log, "4 readings, 3 published at once, 0 spooled, 1 refused, 1 too long"));
    CHECK(!log_has(g.log, "secret-reading-42"));
}

int main(int argc, char **argv) {
    static char sibling[1024];
    const char *slash = strrchr(argv[0], '/');
    snprintf(sibling, sizeof sibling, "%.*sgateway", slash ? (int)(slash - argv[0] + 1) : 0, argv[0]);
    gateway_bin = argc > 1 ? argv[1] : getenv("GATEWAY") ? getenv("GATEWAY")
                : access(sibling, X_OK) == 0 ? sibling : "build/gateway";
    fprintf(stderr, "test_gateway: running %s\n", gateway_bin);
    if (access(gateway_bin, X_OK) != 0) {
        fprintf(stderr, "test_gateway: the gateway %s is missing: build it first (make examples)\n", gateway_bin);
        test__failed++;
        return test_summary("test_gateway");
    }
    signal(SIGPIPE, SIG_IGN);
    if (test_redis_start(&srv, "appendonly yes\nappendfsync always\n") != 0) {
        fprintf(stderr, "test_gateway: cannot start redis-server\n");
        test__failed++;
        return test_summary("test_gateway");
    }
    RUN(rides_out_a_redis_restart);
    RUN(sigterm_while_redis_is_down_keeps_the_spool_for_the_next_start);
    RUN(bad_lines_are_counted_and_never_echoed);
    raw_reset();
    test_redis_stop(&srv);
    return test_summary("test_gateway");
}
