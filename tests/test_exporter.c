/* test_exporter.c - "rsbusctl exporter" and "rsbusctl metrics --textfile" (examples/rsbusctl.c) and the
   Prometheus files of examples/prometheus/, against a real redis-server and a real Prometheus:
     - the numbers the exporter serves, each checked against what Redis itself says (XLEN, XINFO, XPENDING)
       and against the state the test built (published, acked, dead-lettered, left pending); lag absent
       (never -1) where Redis cannot tell; one XINFO STREAM, one XLEN and one TIME per stream per scrape;
     - hostile HTTP: slow clients, request lines without an end, huge headers, bodies, methods other than
       GET, unknown paths, more connections than allowed, many scrapes at once - each answered or dropped
       within a bound, and a normal scrape still works meanwhile and afterwards;
     - Redis killed or frozen: a scrape still answers 200, with rsbus_up 0, within the scrape timeout;
     - metrics --textfile: the same numbers, written atomically (a reader never sees half a file);
     - a real Prometheus (Debian's prometheus) on a free loopback port, with examples/prometheus/'s
       scrape config pointed at the exporter: rsbus_group_lag, rsbus_dlq_length and rsbus_up read back
       through its HTTP API, following changes, and rsbus_up 0 once Redis is stopped;
     - promtool check rules / check config / test rules on examples/prometheus/, and promtool check
       metrics on the exposition (group names with quotes, newlines and bytes that are not UTF-8).
   A test that needs the exporter skips when rsbusctl was built without libmicrohttpd; one that needs
   prometheus or promtool skips when they are not installed (tests/deps.sh installs all of them as root).

   The tool is $RSBUSCTL, else the rsbusctl beside this program (build/san/rsbusctl for
   build/san/test_exporter), else build/rsbusctl. examples/prometheus is found from the working
   directory (make runs tests from the repository's root) or $RSBUS_SRCDIR. */
#define _POSIX_C_SOURCE 200809L
#define RSBUS_IMPLEMENTATION
#include "../rsbus.h"
#include "test.h"
#include <errno.h>
#include <poll.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include "redis_server.h"
#include "bus_util.h"

#define START_MS 20000          /* the tool may be an ASan build; Prometheus takes seconds to start */
#define SCRAPE_TIMEOUT_MS 1000  /* the exporter's --timeout in these tests */
#define CLIENT_TIMEOUT_S 2      /* the exporter's --client-timeout in these tests */
#define MAX_CONNS 16            /* the exporter's --max-connections in these tests */

static const char *tool;
static char srcdir[1024] = ".";
static int exporter_built;      /* rsbusctl has the exporter command */
static int exp_port;            /* the running exporter's port, 0 when none runs */
static pid_t exp_pid;
static char exp_log[600];

/* ---- processes ------------------------------------------------------------------------------------ */

/* Starts argv with stdout and stderr appended to log (NULL: /dev/null) and, on Linux, a death signal
   so it never outlives this program; its pid, or -1. Only async-signal-safe calls in the child. */
static pid_t start_proc(char *const argv[], const char *log, const char *cwd) {
    pid_t pid;
    fflush(stdout); fflush(stderr);
    pid = fork();
    if (pid == 0) {
        int fd = open(log ? log : "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0600);
#ifdef __linux__
        prctl(PR_SET_PDEATHSIG, SIGKILL);
#endif
        if (fd >= 0) { dup2(fd, 1); dup2(fd, 2); close(fd); }
        if (cwd && chdir(cwd) != 0) _exit(126);
        execvp(argv[0], argv);
        _exit(127);
    }
    if (pid > 0 && nchildren < 32) children[nchildren++] = pid;
    return pid;
}
/* Runs argv to its end (deadline ms); its exit status, -1 when it had to be killed. */
static int run_proc(char *const argv[], const char *log, const char *cwd, int ms) {
    pid_t pid = start_proc(argv, log, cwd);
    return pid < 0 ? -1 : reap(pid, ms);
}
/* run_proc with the arguments given (NULL-terminated, at most 15), copied. */
static int run(const char *log, const char *cwd, int ms, const char *a, ...) {
    char store[16][1024], *v[17];
    va_list ap;
    int n = 0;
    va_start(ap, a);
    for (; a && n < 16; a = va_arg(ap, const char *), n++) {
        snprintf(store[n], sizeof store[n], "%s", a);
        v[n] = store[n];
    }
    va_end(ap);
    v[n] = NULL;
    return run_proc(v, log, cwd, ms);
}
/* SIGTERM, then SIGKILL after ms; the exit status (-1: killed). */
static int stop_proc(pid_t pid, int ms) {
    if (pid <= 0) return -1;
    kill(pid, SIGTERM);
    return reap(pid, ms);
}
static size_t read_file(const char *path, char *out, size_t size) {
    FILE *f = fopen(path, "rb");
    size_t n = 0;
    out[0] = 0;
    if (!f) return 0;
    n = fread(out, 1, size - 1, f);
    out[n] = 0;
    fclose(f);
    return n;
}
static int write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    fputs(text, f);
    return fclose(f);
}
static int have_cmd(const char *name) {
    char line[600];
    snprintf(line, sizeof line, "command -v %s >/dev/null 2>&1", name);
    return system(line) == 0;
}

/* ---- HTTP, by hand (the server's side is what is tested, so the client is plain sockets) ---------- */

static int tcp_connect(int port) {
    struct sockaddr_in a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) { close(fd); return -1; }
    return fd;
}
/* Writes all of buf; 0, or -1 when the peer closed or ms passed. */
static int send_all(int fd, const char *buf, size_t n, int ms) {
    int64_t dl = test_now_ms() + ms;
    size_t done = 0;
    while (done < n) {
        struct pollfd p;
        ssize_t w;
        p.fd = fd; p.events = POLLOUT; p.revents = 0;
        if (test_now_ms() > dl || poll(&p, 1, 50) < 0) return -1;
        if (!(p.revents & POLLOUT)) { if (p.revents & (POLLERR | POLLHUP)) return -1; continue; }
        w = send(fd, buf + done, n - done, MSG_NOSIGNAL);
        if (w < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        if (w <= 0) return -1;
        done += (size_t)w;
    }
    return 0;
}
/* Reads until the peer closes (or resets) the connection: bytes read, or -1 when ms passed first. */
static long read_to_close(int fd, char *out, size_t size, int ms) {
    int64_t dl = test_now_ms() + ms;
    size_t n = 0;
    for (;;) {
        struct pollfd p;
        char tmp[8192];
        ssize_t r;
        int left = (int)(dl - test_now_ms());
        if (left <= 0) { out[n < size ? n : size - 1] = 0; return -1; }
        p.fd = fd; p.events = POLLIN; p.revents = 0;
        if (poll(&p, 1, left) <= 0) continue;
        r = recv(fd, tmp, sizeof tmp, 0);
        if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        if (r <= 0) break;
        if (n + (size_t)r < size) { memcpy(out + n, tmp, (size_t)r); n += (size_t)r; }
    }
    out[n] = 0;
    return (long)n;
}
/* Sends a raw request and reads the whole answer: the HTTP status, 0 when the connection was closed
   without one, -1 when nothing happened in ms. */
static int http_raw(int port, const char *req, size_t len, char *out, size_t size, int ms) {
    int fd = tcp_connect(port), status = 0;
    long n;
    out[0] = 0;
    if (fd < 0) return 0;
    if (send_all(fd, req, len, ms) != 0) { /* closed on us: see what it said */ }
    n = read_to_close(fd, out, size, ms);
    close(fd);
    if (n < 0) return -1;
    if (!strncmp(out, "HTTP/1.", 7) && strlen(out) > 12) status = atoi(out + 9);
    return status;
}
static int http_get(int port, const char *path, char *out, size_t size) {
    char req[2048];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", path);
    return http_raw(port, req, (size_t)n, out, size, 20000);
}
static const char *http_body(const char *resp) {
    const char *p = strstr(resp, "\r\n\r\n");
    return p ? p + 4 : "";
}

/* ---- the exposition --------------------------------------------------------------------------- */

/* The value of the sample "name{labels}" (exactly that series) in an exposition: 1 found, 0 absent. */
static int sample(const char *text, const char *series, double *v) {
    size_t n = strlen(series);
    const char *p = text;
    while ((p = strstr(p, series)) != NULL) {
        if ((p == text || p[-1] == '\n') && p[n] == ' ') { *v = strtod(p + n + 1, NULL); return 1; }
        p += n;
    }
    return 0;
}
static double sample_or(const char *text, const char *series, double dflt) {
    double v;
    return sample(text, series, &v) ? v : dflt;
}
static char scraped[1 << 18];
/* GET /metrics from the running exporter into scraped; the body, or "" when it did not answer 200. */
static const char *scrape(void) {
    int st = http_get(exp_port, "/metrics", scraped, sizeof scraped);
    if (st != 200) { fprintf(stderr, "  scrape: HTTP status %d\n", st); return ""; }
    return http_body(scraped);
}

/* ---- the exporter ------------------------------------------------------------------------------ */

static char *exp_argv[40];
static char exp_args[40][256];
/* Starts "rsbusctl exporter --listen 127.0.0.1:0 ..." watching the streams given (NULL-terminated) and
   reads its port from its first line. 0, or -1. */
static int exporter_start(const char *stream, ...) {
    va_list ap;
    int n = 0, i;
    int64_t dl;
    const char *fixed[] = { "exporter", "--listen", "127.0.0.1:0", "--timeout", "1000", "--client-timeout", "2",
                            "--max-connections", "16" };
    char text[4096];
    snprintf(exp_args[n++], sizeof exp_args[0], "%s", tool);
    for (i = 0; i < (int)(sizeof fixed / sizeof fixed[0]); i++) snprintf(exp_args[n++], sizeof exp_args[0], "%s", fixed[i]);
    va_start(ap, stream);
    for (; stream && n < 36; stream = va_arg(ap, const char *)) {
        snprintf(exp_args[n++], sizeof exp_args[0], "--stream");
        snprintf(exp_args[n++], sizeof exp_args[0], "%s", stream);
    }
    va_end(ap);
    for (i = 0; i < n; i++) exp_argv[i] = exp_args[i];
    exp_argv[n] = NULL;
    snprintf(exp_log, sizeof exp_log, "%s/exporter.log", srv.dir);
    unlink(exp_log);
    if ((exp_pid = start_proc(exp_argv, exp_log, NULL)) < 0) return -1;
    for (dl = test_now_ms() + START_MS; test_now_ms() < dl; test_sleep_ms(10)) {
        const char *p;
        read_file(exp_log, text, sizeof text);
        if ((p = strstr(text, "serving http://127.0.0.1:")) != NULL) {
            exp_port = atoi(p + strlen("serving http://127.0.0.1:"));
            return exp_port > 0 ? 0 : -1;
        }
        if (waitpid(exp_pid, NULL, WNOHANG) == exp_pid) break;
    }
    fprintf(stderr, "  the exporter did not start: %.1000s\n", text);
    return -1;
}
static void exporter_stop(void) {
    if (exp_pid > 0) CHECK_EQ_INT(stop_proc(exp_pid, 10000), 0);   /* SIGTERM: a clean exit 0 */
    exp_pid = 0;
    exp_port = 0;
}

/* ---- the state the numbers are about -------------------------------------------------------------- */

static rsbus_verdict h_billing(const rsbus_msg *m, void *user) {   /* acks, dead-letters order.bad */
    (void)user;
    if (!strcmp(m->type, "order.bad")) { snprintf(m->reason, RSBUS_REASON_SIZE, "bad order"); return RSBUS_DEAD; }
    return RSBUS_ACK;
}
static rsbus_verdict h_retry(const rsbus_msg *m, void *user) { (void)m; (void)user; return RSBUS_RETRY; }

#define ODD_GROUP "we\"ird\\na\nme\x01\xff\xfe"
static rsbus *publisher;
static int published;
static void publish(const char *type, int n) {
    int i;
    for (i = 0; i < n; i++) {
        rsbus_event ev;
        memset(&ev, 0, sizeof ev);
        ev.type = type;
        ev.data = "{\"n\":1}";
        if (rsbus_publish(publisher, &ev, NULL) == RSBUS_OK) published++;
    }
}
/* Every group's consumer reads what is there: billing acks all but order.bad (dead-lettered), mail
   reads at most 3 and leaves them pending (RETRY; nobody claims them). */
static rsbus *billing, *mail;
static void consume(void) {
    int i;
    for (i = 0; i < 100 && rsbus_poll(billing, 20) > 0; i++) {}
}
/* t:exp with groups billing (all handled, 2 dead letters), mail (3 pending, 4 lagging) and idle (no
   consumers); t:gaps with a group whose lag Redis cannot tell (an entry deleted mid-stream). */
static int setup_done;
/* After Redis was killed (it keeps nothing: no persistence) the state is built again. */
static void reset_state(void) {
    rsbus_close(publisher); rsbus_close(billing); rsbus_close(mail);
    publisher = billing = mail = NULL;
    published = 0;
    setup_done = 0;
    raw_reset();
}
static void setup_state(void) {
    rsbus_config c;
    redisContext *rc;
    redisReply *rep;
    if (setup_done) return;
    setup_done = 1;
    c = test_cfg("t:exp", "pub", "p1");
    c.publish_only = 1;
    publisher = open_cfg(&c);
    c = test_cfg("t:exp", "billing", "b1");
    billing = open_cfg(&c);
    c = test_cfg("t:exp", "mail", "m1");
    c.batch_size = 3;
    mail = open_cfg(&c);
    if (!publisher || !billing || !mail) return;
    rsbus_subscribe(billing, "*", h_billing, NULL);
    rsbus_subscribe(mail, "*", h_retry, NULL);
    publish("order.ok", 5);
    publish("order.bad", 2);
    consume();
    rsbus_poll(mail, 20);   /* 3 of 7 delivered, none acked */
    raw_int("XGROUP CREATE t:exp idle $");
    raw_int("XADD t:gaps 1-0 a 1"); raw_int("XADD t:gaps 5-0 a 2"); raw_int("XADD t:gaps 7-0 a 3");
    raw_int("XDEL t:gaps 5-0");
    raw_int("XGROUP CREATE t:gaps unknown 0");
    /* t:odd: a group named with a quote, a backslash, a newline, a control character and bytes that
       are not UTF-8 */
    raw_int("XADD t:odd * a 1");
    if ((rc = test_redis_connect(&srv)) != NULL) {
        rep = (redisReply *)redisCommand(rc, "XGROUP CREATE t:odd %b 0", ODD_GROUP, sizeof ODD_GROUP - 1);
        if (rep) freeReplyObject(rep);
        redisFree(rc);
    }
}

/* Every call Redis counted since CONFIG RESETSTAT but INFO's and CONFIG's own. */
static long long calls_total(void) {
    redisReply *rep = raw("INFO commandstats");
    const char *p;
    long long v = 0;
    for (p = rep && rep->type == REDIS_REPLY_STRING ? rep->str : ""; (p = strstr(p, "cmdstat_")) != NULL; p++) {
        const char *c = strstr(p, ":calls=");
        if (!c) break;
        if (strncmp(p, "cmdstat_info:", 13) && strncmp(p, "cmdstat_config", 14)) v += atoll(c + 7);
    }
    if (rep) freeReplyObject(rep);
    return v;
}

/* ---- tests ------------------------------------------------------------------------------------- */

TEST(exporter_serves_what_redis_says) {
    const char *m;
    rsbus_stream_info si;
    long long before, after;
    double v;
    if (!exporter_built) SKIP("rsbusctl was built without libmicrohttpd (install libmicrohttpd-dev)");
    setup_state();
    REQUIRE(publisher && billing && mail);
    REQUIRE(rsbus_stream_info_get(publisher, &si) == RSBUS_OK);
    REQUIRE(si.dlq_length == 2);                             /* the state this test reads back */
    REQUIRE(group_field("t:gaps", "unknown", "lag") == -2);  /* Redis cannot tell this group's lag */
    REQUIRE(exporter_start("t:exp", "t:gaps", "t:none", NULL) == 0);
    before = oldest_idle("t:exp", "mail");
    m = scrape();
    after = oldest_idle("t:exp", "mail");
    CHECK_CONTAINS(scraped, "Content-Type: text/plain; version=0.0.4");
    CHECK_EQ_INT(sample_or(m, "rsbus_up", -1), 1);
    CHECK(sample(m, "rsbus_scrape_duration_seconds", &v) && v >= 0 && v < SCRAPE_TIMEOUT_MS / 1000.0);
    CHECK_EQ_INT(sample_or(m, "rsbus_stream_up{stream=\"t:exp\"}", -1), 1);
    CHECK_EQ_INT(sample_or(m, "rsbus_stream_length{stream=\"t:exp\"}", -1), raw_int("XLEN t:exp"));
    CHECK_EQ_INT(sample_or(m, "rsbus_stream_length{stream=\"t:exp\"}", -1), published);
    CHECK_EQ_INT(sample_or(m, "rsbus_stream_entries_added_total{stream=\"t:exp\"}", -1), published);
    CHECK_EQ_INT(sample_or(m, "rsbus_dlq_length{stream=\"t:exp\"}", -1), si.dlq_length);
    CHECK_EQ_INT(sample_or(m, "rsbus_stream_groups{stream=\"t:exp\"}", -1), 3);
    /* billing handled everything; mail holds 3 pending and has 4 more to read; idle has no consumer */
    CHECK_EQ_INT(sample_or(m, "rsbus_group_lag{stream=\"t:exp\",group=\"billing\"}", -1), 0);
    CHECK_EQ_INT(sample_or(m, "rsbus_group_pending{stream=\"t:exp\",group=\"billing\"}", -1), 0);
    CHECK_EQ_INT(sample_or(m, "rsbus_group_consumers{stream=\"t:exp\",group=\"billing\"}", -1), 1);
    CHECK_EQ_INT(sample_or(m, "rsbus_group_oldest_pending_idle_seconds{stream=\"t:exp\",group=\"billing\"}", -1), 0);
    CHECK_EQ_INT(sample_or(m, "rsbus_group_lag{stream=\"t:exp\",group=\"mail\"}", -1), published - 3);
    CHECK_EQ_INT(sample_or(m, "rsbus_group_lag{stream=\"t:exp\",group=\"mail\"}", -1), group_field("t:exp", "mail", "lag"));
    CHECK_EQ_INT(sample_or(m, "rsbus_group_pending{stream=\"t:exp\",group=\"mail\"}", -1), 3);
    CHECK_EQ_INT(sample_or(m, "rsbus_group_pending{stream=\"t:exp\",group=\"mail\"}", -1), pending_of("t:exp", "mail"));
    CHECK_EQ_INT(sample_or(m, "rsbus_group_consumers{stream=\"t:exp\",group=\"idle\"}", -1), 0);
    CHECK_EQ_INT(sample_or(m, "rsbus_group_pending{stream=\"t:exp\",group=\"idle\"}", -1), 0);
    /* the oldest pending entry's idle time, between what XPENDING said just before and just after */
    REQUIRE(before >= 0 && after >= before);
    CHECK(sample(m, "rsbus_group_oldest_pending_idle_seconds{stream=\"t:exp\",group=\"mail\"}", &v));
    CHECK(v * 1000 >= (double)before - 1 && v * 1000 <= (double)after + 1);
    /* lag Redis cannot tell: absent, never -1; the group's other numbers are there */
    CHECK(!sample(m, "rsbus_group_lag{stream=\"t:gaps\",group=\"unknown\"}", &v));
    CHECK_NOT_CONTAINS(m, " -1\n");
    CHECK_EQ_INT(sample_or(m, "rsbus_group_pending{stream=\"t:gaps\",group=\"unknown\"}", -1), 0);
    /* a stream that does not exist: read (up), empty, no groups */
    CHECK_EQ_INT(sample_or(m, "rsbus_stream_up{stream=\"t:none\"}", -1), 1);
    CHECK_EQ_INT(sample_or(m, "rsbus_stream_length{stream=\"t:none\"}", -1), 0);
    CHECK_EQ_INT(sample_or(m, "rsbus_dlq_length{stream=\"t:none\"}", -1), 0);
    /* one XINFO STREAM, one XLEN and one TIME per stream per scrape, and nothing else */
    raw_int("CONFIG RESETSTAT");
    m = scrape();
    CHECK_EQ_INT(sample_or(m, "rsbus_up", -1), 1);
    CHECK_EQ_INT(calls_of("xinfo|stream"), 3);
    CHECK_EQ_INT(calls_of("xlen"), 3);
    CHECK_EQ_INT(calls_of("time"), 3);
    CHECK_EQ_INT(calls_total(), 9);
    /* it follows changes */
    publish("order.ok", 2);
    m = scrape();
    CHECK_EQ_INT(sample_or(m, "rsbus_group_lag{stream=\"t:exp\",group=\"billing\"}", -1), 2);
    CHECK_EQ_INT(sample_or(m, "rsbus_stream_length{stream=\"t:exp\"}", -1), published);
    consume();
    m = scrape();
    CHECK_EQ_INT(sample_or(m, "rsbus_group_lag{stream=\"t:exp\",group=\"billing\"}", -1), 0);
    /* the page at / links to /metrics */
    CHECK_EQ_INT(http_get(exp_port, "/", scraped, sizeof scraped), 200);
    CHECK_CONTAINS(http_body(scraped), "href=\"/metrics\"");
    exporter_stop();
}

/* A group name from Redis with a quote, a backslash, a newline, a control character and bytes that are
   not UTF-8: the exposition stays valid (promtool check metrics; Prometheus itself reads it below). */
TEST(label_values_are_escaped) {
    const char *m;
    char path[600], log[600], out[1 << 14];
    if (!exporter_built) SKIP("rsbusctl was built without libmicrohttpd (install libmicrohttpd-dev)");
    setup_state();
    {   /* two groups whose names differ only after the 127 bytes rsbus_group_info keeps: one series */
        char name[200];
        memset(name, 'g', 127);
        strcpy(name + 127, "-one");
        raw_int("XADD t:long * a 1");
        freeReplyObject(raw("XGROUP CREATE t:long %s 0", name));
        strcpy(name + 127, "-two");
        freeReplyObject(raw("XGROUP CREATE t:long %s 0", name));
    }
    REQUIRE(exporter_start("t:odd", "t:long", NULL) == 0);
    m = scrape();
    CHECK_EQ_INT(sample_or(m, "rsbus_stream_groups{stream=\"t:long\"}", -1), 2);
    {
        const char *p = m;
        int n = 0;
        while ((p = strstr(p, "rsbus_group_pending{stream=\"t:long\"")) != NULL) { n++; p++; }
        CHECK_EQ_INT(n, 1);
    }
    CHECK_EQ_INT(sample_or(m, "rsbus_stream_groups{stream=\"t:odd\"}", -1), 1);
    CHECK_CONTAINS(m, "rsbus_group_pending{stream=\"t:odd\",group=\"we\\\"ird\\\\na\\nme\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"} 0\n");
    exporter_stop();
    if (!have_cmd("promtool")) SKIP("promtool is not installed (Debian/Ubuntu: apt-get install prometheus)");
    snprintf(path, sizeof path, "%s/odd.prom", srv.dir);
    snprintf(log, sizeof log, "%s/promtool-metrics.log", srv.dir);
    REQUIRE(write_file(path, m) == 0);
    /* promtool check metrics reads stdin: through sh, with the file as its stdin */
    snprintf(out, sizeof out, "promtool check metrics < '%s'", path);
    unlink(log);
    CHECK_EQ_INT(run(log, NULL, 60000, "sh", "-c", out, NULL), 0);
    read_file(log, out, sizeof out);
    if (out[0]) fprintf(stderr, "  promtool check metrics: %.2000s\n", out);
    CHECK(out[0] == 0);   /* not even a lint warning */
}

/* Bad and hostile HTTP: each answered or dropped within a bound, and scrapes keep working. */
TEST(hostile_http) {
    char big[70000], buf[1 << 16];
    int fds[3 * MAX_CONNS], i, n, st, slow[4];
    int64_t t0;
    long got;
    if (!exporter_built) SKIP("rsbusctl was built without libmicrohttpd (install libmicrohttpd-dev)");
    REQUIRE(exporter_start("t:exp", NULL) == 0);
    /* paths it does not serve, methods other than GET and HEAD */
    CHECK_EQ_INT(http_get(exp_port, "/nothing", buf, sizeof buf), 404);
    CHECK_EQ_INT(http_get(exp_port, "/metrics/../etc/passwd", buf, sizeof buf), 404);
    {
        static const char *const methods[] = { "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "BREW" };
        for (i = 0; i < (int)(sizeof methods / sizeof methods[0]); i++) {
            char req[256];
            n = snprintf(req, sizeof req, "%s /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", methods[i]);
            st = http_raw(exp_port, req, (size_t)n, buf, sizeof buf, 10000);
            CHECK_EQ_INT(st, 405);
            CHECK_CONTAINS(buf, "Allow: GET, HEAD");
        }
    }
    /* HEAD: the headers of a scrape, no body */
    st = http_raw(exp_port, "HEAD /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 55, buf, sizeof buf, 10000);
    CHECK_EQ_INT(st, 200);
    CHECK_EQ_STR(http_body(buf), "");
    /* a POST with a large body: answered at once (the body is not read) or dropped */
    memset(big, 'x', sizeof big);
    n = snprintf(big, 200, "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", (int)sizeof big - 200);
    big[n] = 'x';
    st = http_raw(exp_port, big, sizeof big, buf, sizeof buf, 10000);
    CHECK(st == 405 || st == 0);
    /* garbage and an HTTP/0.9-style line */
    st = http_raw(exp_port, "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 15, buf, sizeof buf, 10000);
    CHECK(st == 400 || st == 0);
    st = http_raw(exp_port, "GET /metrics\r\n\r\n", 16, buf, sizeof buf, 10000);
    CHECK(st >= 0 && st != 200);
    /* huge headers: refused (431, 413 or 400) or dropped, never read without bound */
    n = snprintf(big, 200, "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: ");
    memset(big + n, 'a', sizeof big - (size_t)n - 4);
    memcpy(big + sizeof big - 4, "\r\n\r\n", 4);
    st = http_raw(exp_port, big, sizeof big, buf, sizeof buf, 10000);
    CHECK(st == 431 || st == 413 || st == 400 || st == 0);
    /* many headers, each small */
    for (n = snprintf(big, sizeof big, "GET /metrics HTTP/1.1\r\n"); n < (int)sizeof big - 40;)
        n += snprintf(big + n, sizeof big - (size_t)n, "X-H%d: v\r\n", n);
    n += snprintf(big + n, sizeof big - (size_t)n, "\r\n");
    st = http_raw(exp_port, big, (size_t)n, buf, sizeof buf, 10000);
    CHECK(st == 431 || st == 413 || st == 400 || st == 0);
    CHECK_EQ_INT(sample_or(scrape(), "rsbus_up", -1), 1);
    /* slow clients: a request line without an end, a request dribbled a byte at a time, a connection
       that sends nothing. A scrape meanwhile is answered at once; the idle ones are dropped after the
       client timeout. */
    for (i = 0; i < 4; i++) REQUIRE((slow[i] = tcp_connect(exp_port)) >= 0);
    CHECK_EQ_INT(send_all(slow[0], "GET /metrics HTTP/1.1", 21, 1000), 0);
    memset(big, 'A', 60000);
    (void)send_all(slow[1], big, 60000, 1000);   /* a request line 60000 bytes long, without an end */
    CHECK_EQ_INT(send_all(slow[2], "G", 1, 1000), 0);
    t0 = test_now_ms();
    CHECK_EQ_INT(sample_or(scrape(), "rsbus_up", -1), 1);
    CHECK(test_now_ms() - t0 < CLIENT_TIMEOUT_S * 1000);   /* not held up by the slow ones */
    CHECK_EQ_INT(send_all(slow[2], "E", 1, 1000), 0);
    got = read_to_close(slow[0], buf, sizeof buf, CLIENT_TIMEOUT_S * 1000 + 5000);
    CHECK(got >= 0);                                       /* dropped, within the client timeout */
    got = read_to_close(slow[1], buf, sizeof buf, CLIENT_TIMEOUT_S * 1000 + 5000);
    CHECK(got >= 0);
    CHECK(got == 0 || !strncmp(buf, "HTTP/1.1 4", 10));   /* dropped or refused, never served */
    got = read_to_close(slow[3], buf, sizeof buf, CLIENT_TIMEOUT_S * 1000 + 5000);
    CHECK_EQ_INT(got, 0);                                  /* sent nothing, got nothing, dropped */
    got = read_to_close(slow[2], buf, sizeof buf, CLIENT_TIMEOUT_S * 1000 + 5000);
    CHECK(got >= 0);
    for (i = 0; i < 4; i++) close(slow[i]);
    /* more connections than allowed: the ones over the limit are closed at once, the rest after the
       client timeout; then scrapes work again */
    for (i = 0; i < 3 * MAX_CONNS; i++) fds[i] = tcp_connect(exp_port);
    for (i = 0, n = 0; i < 3 * MAX_CONNS; i++) {
        if (fds[i] < 0) { n++; continue; }
        got = read_to_close(fds[i], buf, sizeof buf, CLIENT_TIMEOUT_S * 1000 + 5000);
        CHECK_EQ_INT(got, 0);
        close(fds[i]);
    }
    CHECK_EQ_INT(sample_or(scrape(), "rsbus_up", -1), 1);
    /* many scrapes at once, each on its own connection: every one answered in full */
    for (i = 0; i < MAX_CONNS - 2; i++) {
        fds[i] = tcp_connect(exp_port);
        CHECK(fds[i] >= 0);
        if (fds[i] >= 0) CHECK_EQ_INT(send_all(fds[i], "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 53, 5000), 0);
    }
    for (i = 0, n = 0; i < MAX_CONNS - 2; i++) {
        if (fds[i] < 0) continue;
        got = read_to_close(fds[i], buf, sizeof buf, 20000);
        close(fds[i]);
        if (got > 0 && !strncmp(buf, "HTTP/1.1 200", 12) && sample_or(http_body(buf), "rsbus_up", -1) == 1 &&
            strstr(buf, "rsbus_group_oldest_pending_idle_seconds{stream=\"t:exp\",group=\"mail\"}")) n++;
    }
    CHECK_EQ_INT(n, MAX_CONNS - 2);
    CHECK_EQ_INT(sample_or(scrape(), "rsbus_up", -1), 1);
    CHECK(waitpid(exp_pid, NULL, WNOHANG) == 0);   /* still running */
    exporter_stop();
}

/* Redis killed, then frozen: every scrape answers 200 with rsbus_up 0 within the scrape timeout (and a
   margin for an ASan build), and rsbus_up is 1 again once Redis is back. */
TEST(redis_down_answers_up_0) {
    const char *m;
    int64_t t0;
    if (!exporter_built) SKIP("rsbusctl was built without libmicrohttpd (install libmicrohttpd-dev)");
    REQUIRE(exporter_start("t:exp", "t:gaps", NULL) == 0);
    CHECK_EQ_INT(sample_or(scrape(), "rsbus_up", -1), 1);
    test_redis_kill(&srv);
    raw_reset();
    t0 = test_now_ms();
    m = scrape();
    CHECK(test_now_ms() - t0 < SCRAPE_TIMEOUT_MS * 2 + 2000);
    CHECK_EQ_INT(sample_or(m, "rsbus_up", -1), 0);
    CHECK_EQ_INT(sample_or(m, "rsbus_stream_up{stream=\"t:exp\"}", -1), 0);
    CHECK(!strstr(m, "rsbus_stream_length{"));   /* no numbers that are not Redis's */
    CHECK(!strstr(m, "rsbus_group_lag{"));
    REQUIRE(test_redis_restart(&srv) == 0);
    reset_state();
    WAIT_UNTIL(sample_or(scrape(), "rsbus_up", -1) == 1, 20000);
    /* frozen: accepts nothing, answers nothing */
    REQUIRE(srv.pid > 0 && kill(srv.pid, SIGSTOP) == 0);
    t0 = test_now_ms();
    m = scrape();
    CHECK(test_now_ms() - t0 < SCRAPE_TIMEOUT_MS * 2 + 2000);
    CHECK_EQ_INT(sample_or(m, "rsbus_up", -1), 0);
    t0 = test_now_ms();
    m = scrape();   /* right after: at once, not another timeout */
    CHECK(test_now_ms() - t0 < SCRAPE_TIMEOUT_MS);
    CHECK_EQ_INT(sample_or(m, "rsbus_up", -1), 0);
    kill(srv.pid, SIGCONT);
    WAIT_UNTIL(sample_or(scrape(), "rsbus_up", -1) == 1, 20000);
    exporter_stop();
    /* started while Redis is down: it serves rsbus_up 0, then the numbers once Redis is there */
    test_redis_kill(&srv);
    REQUIRE(exporter_start("t:exp", "t:gaps", NULL) == 0);
    CHECK_EQ_INT(sample_or(scrape(), "rsbus_up", -1), 0);
    REQUIRE(test_redis_restart(&srv) == 0);
    reset_state();
    setup_state();
    WAIT_UNTIL(sample_or(scrape(), "rsbus_up", -1) == 1, 20000);
    CHECK_EQ_INT(sample_or(scrape(), "rsbus_stream_length{stream=\"t:exp\"}", -1), raw_int("XLEN t:exp"));
    exporter_stop();
    raw_reset();
}

/* The numbers a line of an exposition carries, without the ones that change by themselves (scrape
   duration, idle time), for comparing two expositions. */
static void stable_lines(const char *text, char *out, size_t size) {
    size_t n = 0;
    out[0] = 0;
    while (*text) {
        const char *nl = strchr(text, '\n');
        size_t len = nl ? (size_t)(nl - text) + 1 : strlen(text);
        if (strncmp(text, "rsbus_scrape_duration_seconds", 29) && strncmp(text, "rsbus_group_oldest_pending_idle_seconds{", 40) &&
            n + len < size) {
            memcpy(out + n, text, len);
            n += len;
            out[n] = 0;
        }
        text += len;
    }
}

TEST(textfile_same_numbers_atomically) {
    static char file[1 << 18], a[1 << 18], b[1 << 18];
    char path[600], log[600], dirpath[600];
    int st, i, reads = 0, torn = 0;
    pid_t pid;
    DIR *d;
    struct dirent *e;
    setup_state();
    REQUIRE(publisher != NULL);
    snprintf(path, sizeof path, "%s/rsbus.prom", srv.dir);
    snprintf(log, sizeof log, "%s/textfile.log", srv.dir);
#define TEXTFILE(p) run(log, NULL, START_MS, tool, "metrics", "--textfile", p, "--stream", "t:exp", "--stream", "t:gaps", \
                           "--timeout", "1000", NULL)
    CHECK_EQ_INT(TEXTFILE(path), 0);
    REQUIRE(read_file(path, file, sizeof file) > 0);
    CHECK_EQ_INT(sample_or(file, "rsbus_up", -1), 1);
    CHECK_EQ_INT(sample_or(file, "rsbus_stream_length{stream=\"t:exp\"}", -1), raw_int("XLEN t:exp"));
    CHECK_EQ_INT(sample_or(file, "rsbus_group_pending{stream=\"t:exp\",group=\"mail\"}", -1), pending_of("t:exp", "mail"));
    CHECK(sample_or(file, "rsbus_group_lag{stream=\"t:gaps\",group=\"unknown\"}", -1) == -1);   /* absent */
    /* the same numbers as the exporter serves */
    if (exporter_built) {
        REQUIRE(exporter_start("t:exp", "t:gaps", NULL) == 0);
        stable_lines(scrape(), a, sizeof a);
        exporter_stop();
        stable_lines(file, b, sizeof b);
        CHECK_EQ_STR(a, b);
    }
    /* nothing but the file is left in its directory */
    REQUIRE((d = opendir(srv.dir)) != NULL);
    while ((e = readdir(d)) != NULL) CHECK(!strstr(e->d_name, ".tmp."));
    closedir(d);
    /* atomic: while it is rewritten again and again, every read sees a whole file */
    pid = fork();
    if (pid == 0) {
        for (i = 0; i < 15; i++) if (TEXTFILE(path) != 0) _exit(1);
        _exit(0);
    }
    REQUIRE(pid > 0);
    children[nchildren++] = pid;
    while (waitpid(pid, &st, WNOHANG) == 0) {
        read_file(path, file, sizeof file);   /* missing or empty counts as torn too */
        reads++;
        if (!strstr(file, "rsbus_group_oldest_pending_idle_seconds{stream=\"t:gaps\",group=\"unknown\"} 0.000\n")) torn++;
    }
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK(reads > 0);
    CHECK_EQ_INT(torn, 0);
    /* a directory it cannot write to: exit 1, the old file stays */
    snprintf(dirpath, sizeof dirpath, "%s/nodir/x.prom", srv.dir);
    CHECK_EQ_INT(TEXTFILE(dirpath), 1);
    read_file(log, file, sizeof file);
    CHECK_CONTAINS(file, "cannot write");
    /* Redis down: the file says rsbus_up 0, and the exit status says it failed */
    test_redis_kill(&srv);
    raw_reset();
    CHECK_EQ_INT(TEXTFILE(path), 1);
    read_file(path, file, sizeof file);
    CHECK_EQ_INT(sample_or(file, "rsbus_up", -1), 0);
    REQUIRE(test_redis_restart(&srv) == 0);
    reset_state();
    /* usage errors */
    CHECK_EQ_INT(run(log, NULL, START_MS, tool, "metrics", "--stream", "a", "--stream", "b", NULL), 2);   /* several: --textfile */
#undef TEXTFILE
}

/* The Redis user README.md gives the exporter is enough for every number of its streams; a stream
   outside its keys is refused (rsbus_stream_up 0) while Redis still answers (rsbus_up 1). */
TEST(monitor_user_is_enough) {
    static char file[1 << 16], line[1024];
    char path[1200], log[600], url[900], *p;
    const char *argv[40];
    size_t lens[40];
    int argc = 0;
    redisContext *c;
    redisReply *rep;
    setup_state();
    REQUIRE(publisher != NULL);
    /* README's line, with the stream orders as t:exp: run as it stands */
    snprintf(path, sizeof path, "%s/README.md", srcdir);
    REQUIRE(read_file(path, file, sizeof file) > 0);
    REQUIRE((p = strstr(file, "ACL SETUSER orders-monitor ")) != NULL);
    for (; *p && *p != '\n' && strlen(line) + 8 < sizeof line; p++) {
        if (!strncmp(p, "orders", 6)) { strcat(line, "t:exp"); p += 5; }
        else strncat(line, p, 1);
    }
    for (p = strtok(line, " "); p && argc < 40; p = strtok(NULL, " ")) { argv[argc] = p; lens[argc] = strlen(p); argc++; }
    REQUIRE(argc > 3 && !strcmp(argv[2], "t:exp-monitor") && !strcmp(argv[5], ">change-me-monitor"));
    REQUIRE((c = test_redis_connect(&srv)) != NULL);
    rep = (redisReply *)redisCommandArgv(c, argc, argv, lens);
    CHECK(rep && rep->type == REDIS_REPLY_STATUS);
    if (rep) freeReplyObject(rep);
    redisFree(c);
    snprintf(url, sizeof url, "%s?user=t:exp-monitor&password=change-me-monitor", srv.unix_url);
    snprintf(path, sizeof path, "%s/monitor.prom", srv.dir);
    snprintf(log, sizeof log, "%s/monitor.log", srv.dir);
    CHECK_EQ_INT(run(log, NULL, START_MS, tool, "--url", url, "metrics", "--textfile", path, "--stream", "t:exp",
                     "--stream", "t:gaps", NULL), 0);
    read_file(path, file, sizeof file);
    CHECK_EQ_INT(sample_or(file, "rsbus_up", -1), 1);
    CHECK_EQ_INT(sample_or(file, "rsbus_stream_up{stream=\"t:exp\"}", -1), 1);
    CHECK_EQ_INT(sample_or(file, "rsbus_dlq_length{stream=\"t:exp\"}", -1), 2);
    CHECK_EQ_INT(sample_or(file, "rsbus_group_pending{stream=\"t:exp\",group=\"mail\"}", -1), pending_of("t:exp", "mail"));
    CHECK_EQ_INT(sample_or(file, "rsbus_stream_up{stream=\"t:gaps\"}", -1), 0);   /* not its keys */
    CHECK(!strstr(file, "rsbus_stream_length{stream=\"t:gaps\"}"));
    read_file(log, file, sizeof file);
    CHECK_CONTAINS(file, "NOPERM");          /* said on stderr, once */
    CHECK_NOT_CONTAINS(file, "change-me-monitor");  /* never the password */
    freeReplyObject(raw("ACL DELUSER t:exp-monitor"));
}

TEST(exporter_usage) {
    char log[600], text[4096];
    snprintf(log, sizeof log, "%s/usage.log", srv.dir);
    unlink(log);
    CHECK_EQ_INT(run(log, NULL, START_MS, tool, "exporter", "--help", NULL), 0);
    read_file(log, text, sizeof text);
    CHECK_CONTAINS(text, "rsbus_group_lag");
    if (!exporter_built) SKIP("rsbusctl was built without libmicrohttpd (install libmicrohttpd-dev)");
    CHECK_EQ_INT(run(log, NULL, START_MS, tool, "exporter", "--listen", "example.com:80", NULL), 2);
    CHECK_EQ_INT(run(log, NULL, START_MS, tool, "exporter", "--listen", "127.0.0.1:99999", NULL), 2);
    CHECK_EQ_INT(run(log, NULL, START_MS, tool, "exporter", "--listen", "127.0.0.1:0", "--timeout", "forever", NULL), 2);
    CHECK_EQ_INT(run(log, NULL, START_MS, tool, "exporter", "--listen", "127.0.0.1:0", "--stream", "has space", NULL), 2);
    /* a port in use: says so, exit 1 */
    REQUIRE(exporter_start("t:exp", NULL) == 0);
    {
        char addr[64];
        snprintf(addr, sizeof addr, "127.0.0.1:%d", exp_port);
        unlink(log);
        CHECK_EQ_INT(run(log, NULL, START_MS, tool, "exporter", "--listen", addr, NULL), 1);
        read_file(log, text, sizeof text);
        CHECK_CONTAINS(text, "cannot listen");
    }
    exporter_stop();
}

/* ---- Prometheus ---------------------------------------------------------------------------------- */

static int prom_port;
static char prom_dir[600];

static void url_encode(const char *s, char *out, size_t size) {
    size_t n = 0;
    for (; *s && n + 4 < size; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || strchr("-_.~", ch))
            out[n++] = (char)ch;
        else n += (size_t)snprintf(out + n, size - n, "%%%02X", ch);
    }
    out[n] = 0;
}
/* An instant query through Prometheus's HTTP API: 1 and the value of its one series, 0 when it has no
   series, -1 on anything else. */
static int prom_query(const char *query, double *v) {
    char path[2048], enc[1500], text[1 << 15], num[64];
    const char *body;
    rsbus_jval jv;
    url_encode(query, enc, sizeof enc);
    snprintf(path, sizeof path, "/api/v1/query?query=%s", enc);
    if (http_get(prom_port, path, text, sizeof text) != 200) return -1;
    body = http_body(text);
    if (rsbus_json_get(body, strlen(body), "status", &jv) != RSBUS_OK || rsbus_jval_str(&jv, num, sizeof num, NULL) != RSBUS_OK ||
        strcmp(num, "success")) return -1;
    if (rsbus_json_get(body, strlen(body), "data.result[0]", &jv) == RSBUS_E_NOTFOUND) return 0;
    if (rsbus_json_get(body, strlen(body), "data.result[1]", &jv) != RSBUS_E_NOTFOUND) return -1;
    if (rsbus_json_get(body, strlen(body), "data.result[0].value[1]", &jv) != RSBUS_OK ||
        rsbus_jval_str(&jv, num, sizeof num, NULL) != RSBUS_OK) return -1;
    *v = strtod(num, NULL);
    return 1;
}
static int prom_is(const char *query, double want) {
    double v;
    return prom_query(query, &v) == 1 && v == want;
}

/* examples/prometheus/prometheus.yml with its target pointed at the exporter and every interval 1s,
   beside a copy of the rules it loads. */
static int write_prom_config(void) {
    static char in[1 << 14], out[1 << 14];
    char path[1200], line[1024], target[64];
    const char *p = in;
    size_t n = 0;
    int replaced = 0;
    snprintf(path, sizeof path, "%s/examples/prometheus/prometheus.yml", srcdir);
    if (!read_file(path, in, sizeof in)) return -1;
    snprintf(target, sizeof target, "127.0.0.1:%d", exp_port);
    while (*p) {
        const char *nl = strchr(p, '\n');
        char *key;
        size_t len = nl ? (size_t)(nl - p) + 1 : strlen(p);
        snprintf(line, sizeof line, "%.*s", (int)len, p);
        p += len;
        if ((key = strstr(line, "scrape_interval:")) || (key = strstr(line, "evaluation_interval:")) ||
            (key = strstr(line, "scrape_timeout:"))) {
            if (line[0] != '#') { snprintf(strchr(key, ':') + 1, 8, " 1s\n"); replaced++; }
        } else if ((key = strstr(line, "127.0.0.1:9478")) && line[strspn(line, " ")] != '#') {
            char rest[512];
            snprintf(rest, sizeof rest, "%s", key + 14);
            snprintf(key, sizeof line - (size_t)(key - line), "%s%s", target, rest);
            replaced++;
        }
        n += (size_t)snprintf(out + n, sizeof out - n, "%s", line);
    }
    if (replaced != 4) { fprintf(stderr, "  prometheus.yml: %d of 4 settings found\n", replaced); return -1; }
    snprintf(path, sizeof path, "%s/prometheus.yml", prom_dir);
    if (write_file(path, out) != 0) return -1;
    snprintf(path, sizeof path, "%s/examples/prometheus/rsbus-alerts.yml", srcdir);
    if (!read_file(path, in, sizeof in)) return -1;
    snprintf(path, sizeof path, "%s/rsbus-alerts.yml", prom_dir);
    return write_file(path, in);
}

TEST(promtool_checks_and_unit_tests) {
    char path[1200], cfg[1200], log[600], text[1 << 14], dir[1200];
    if (!have_cmd("promtool")) SKIP("promtool is not installed (Debian/Ubuntu: apt-get install prometheus)");
    snprintf(log, sizeof log, "%s/promtool.log", srv.dir);
    snprintf(path, sizeof path, "%s/examples/prometheus/rsbus-alerts.yml", srcdir);
    unlink(log);
    CHECK_EQ_INT(run(log, NULL, 60000, "promtool", "check", "rules", path, NULL), 0);
    read_file(log, text, sizeof text);
    CHECK_CONTAINS(text, "SUCCESS: 7 rules found");
    snprintf(cfg, sizeof cfg, "%s/examples/prometheus/prometheus.yml", srcdir);
    CHECK_EQ_INT(run(log, NULL, 60000, "promtool", "check", "config", cfg, NULL), 0);
    /* the unit tests: every alert fires when it should and stays quiet when it should not */
    snprintf(dir, sizeof dir, "%s/examples/prometheus", srcdir);
    unlink(log);
    CHECK_EQ_INT(run(log, dir, 60000, "promtool", "test", "rules", "rsbus-alerts.test.yml", NULL), 0);
    read_file(log, text, sizeof text);
    CHECK_CONTAINS(text, "SUCCESS");
    {   /* and they are not vacuous: every alert is tested, both ways */
        static const char *const alerts[] = { "RsbusRedisUnreachable", "RsbusExporterDown", "RsbusGroupLagHigh",
            "RsbusDeadLetters", "RsbusDeadLettersGrowing", "RsbusGroupWithoutConsumers", "RsbusPendingIdle" };
        static char tests[1 << 15];
        size_t i;
        snprintf(path, sizeof path, "%s/examples/prometheus/rsbus-alerts.test.yml", srcdir);
        REQUIRE(read_file(path, tests, sizeof tests) > 0);
        for (i = 0; i < sizeof alerts / sizeof alerts[0]; i++) {
            char quiet[128], fires[128], *p;
            int q = 0, f = 0;
            snprintf(quiet, sizeof quiet, "alertname: %s\n        exp_alerts: []", alerts[i]);
            snprintf(fires, sizeof fires, "alertname: %s\n        exp_alerts:\n", alerts[i]);
            for (p = tests; (p = strstr(p, quiet)) != NULL; p++) q++;
            for (p = tests; (p = strstr(p, fires)) != NULL; p++) f++;
            if (!q || !f) fprintf(stderr, "  %s: %d quiet, %d firing cases\n", alerts[i], q, f);
            CHECK(q > 0 && f > 0);
        }
    }
}

TEST(prometheus_reads_it_back) {
    char tmpl[600], log[700], text[4096], cfgarg[800], dbarg[800], listen[128], prog[16];
    char *argv[5];
    pid_t prom;
    int64_t dl;
    int ready = 0;
    double lag0 = -1;
    const char *tmp = getenv("TMPDIR");
    if (!exporter_built) SKIP("rsbusctl was built without libmicrohttpd (install libmicrohttpd-dev)");
    if (!have_cmd("prometheus")) SKIP("prometheus is not installed (Debian/Ubuntu: apt-get install prometheus)");
    setup_state();
    REQUIRE(publisher && billing && mail);
    REQUIRE(exporter_start("t:exp", "t:gaps", "t:odd", NULL) == 0);
    snprintf(tmpl, sizeof tmpl, "%s/rsbus-prom.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    REQUIRE(mkdtemp(tmpl) != NULL);
    snprintf(prom_dir, sizeof prom_dir, "%s", tmpl);
    REQUIRE(write_prom_config() == 0);
    REQUIRE((prom_port = test_redis__free_port()) > 0);
    snprintf(cfgarg, sizeof cfgarg, "--config.file=%s/prometheus.yml", prom_dir);
    snprintf(dbarg, sizeof dbarg, "--storage.tsdb.path=%s/data", prom_dir);
    snprintf(listen, sizeof listen, "--web.listen-address=127.0.0.1:%d", prom_port);
    snprintf(log, sizeof log, "%s/prometheus.log", prom_dir);
    snprintf(prog, sizeof prog, "prometheus");
    argv[0] = prog; argv[1] = cfgarg; argv[2] = dbarg; argv[3] = listen; argv[4] = NULL;
    prom = start_proc(argv, log, prom_dir);
    REQUIRE(prom > 0);
    /* Debian's prometheus takes a few seconds to start: poll /-/ready */
    for (dl = test_now_ms() + 60000; test_now_ms() < dl && !ready; test_sleep_ms(100)) {
        ready = http_get(prom_port, "/-/ready", text, sizeof text) == 200;
        if (waitpid(prom, NULL, WNOHANG) == prom) break;
    }
    if (!ready) { read_file(log, text, sizeof text); fprintf(stderr, "  prometheus did not get ready: %.2000s\n", text); }
    CHECK(ready);
    if (ready) {
        /* the numbers, read back through Prometheus, as Redis has them */
        WAIT_UNTIL(prom_is("rsbus_up", 1), 30000);
        WAIT_UNTIL(prom_is("up{job=\"rsbus\"}", 1), 30000);
        WAIT_UNTIL(prom_is("rsbus_dlq_length{stream=\"t:exp\"}", 2), 30000);
        WAIT_UNTIL(prom_query("rsbus_group_lag{stream=\"t:exp\",group=\"mail\"}", &lag0) == 1 &&
                   lag0 == (double)group_field("t:exp", "mail", "lag"), 30000);
        CHECK(lag0 > 0);
        WAIT_UNTIL(prom_is("rsbus_group_pending{stream=\"t:exp\",group=\"mail\"}", (double)pending_of("t:exp", "mail")), 30000);
        WAIT_UNTIL(prom_is("rsbus_group_lag{stream=\"t:exp\",group=\"billing\"}", 0), 30000);
        WAIT_UNTIL(prom_is("count(rsbus_group_pending{stream=\"t:odd\"})", 1), 30000);   /* the odd name got in */
        CHECK_EQ_INT(prom_query("rsbus_group_lag{stream=\"t:gaps\"}", &lag0), 0);     /* absent, not -1 */
        CHECK(prom_is("rsbus_group_pending{stream=\"t:gaps\",group=\"unknown\"}", 0));
        /* it follows: 3 more published, mail's lag grows by 3, billing's drops back to 0 once consumed */
        lag0 = (double)group_field("t:exp", "mail", "lag");
        publish("order.ok", 3);
        WAIT_UNTIL(prom_is("rsbus_group_lag{stream=\"t:exp\",group=\"mail\"}", lag0 + 3), 30000);
        WAIT_UNTIL(prom_is("rsbus_group_lag{stream=\"t:exp\",group=\"billing\"}", 3), 30000);
        publish("order.bad", 1);
        consume();
        WAIT_UNTIL(prom_is("rsbus_dlq_length{stream=\"t:exp\"}", 3), 30000);
        WAIT_UNTIL(prom_is("rsbus_group_lag{stream=\"t:exp\",group=\"billing\"}", 0), 30000);
        /* the example's rules are loaded and evaluated: with Redis stopped, rsbus_up becomes 0 and
           RsbusRedisUnreachable is pending (it fires after its "for") */
        test_redis_kill(&srv);
        raw_reset();
        WAIT_UNTIL(prom_is("rsbus_up", 0), 30000);
        CHECK(prom_is("up{job=\"rsbus\"}", 1));   /* the exporter still answers */
        WAIT_UNTIL(prom_is("ALERTS{alertname=\"RsbusRedisUnreachable\",alertstate=\"pending\"}", 1), 30000);
        CHECK_EQ_INT(test_redis_restart(&srv), 0);
        reset_state();
        WAIT_UNTIL(prom_is("rsbus_up", 1), 30000);
    }
    CHECK_EQ_INT(stop_proc(prom, 20000), 0);
    exporter_stop();
    snprintf(text, sizeof text, "rm -rf '%s'", prom_dir);
    CHECK_EQ_INT(system(text), 0);
}

int main(int argc, char **argv) {
    static char sibling[1024], out[4096], log[600];
    const char *slash = strrchr(argv[0], '/'), *src = getenv("RSBUS_SRCDIR");
    struct stat st;
    (void)argc;
    snprintf(sibling, sizeof sibling, "%.*srsbusctl", slash ? (int)(slash - argv[0] + 1) : 0, argv[0]);
    tool = getenv("RSBUSCTL") ? getenv("RSBUSCTL") : access(sibling, X_OK) == 0 ? sibling : "build/rsbusctl";
    if (src) snprintf(srcdir, sizeof srcdir, "%s", src);
    fprintf(stderr, "test_exporter: running %s, examples in %s/examples/prometheus\n", tool, srcdir);
    snprintf(out, sizeof out, "%s/examples/prometheus/prometheus.yml", srcdir);
    if (access(tool, X_OK) != 0 || stat(out, &st) != 0) {
        fprintf(stderr, "test_exporter: the tool %s or %s is missing: build it first (make examples) and run\n"
                        "from the repository's root (or set RSBUSCTL and RSBUS_SRCDIR)\n", tool, out);
        test__failed++;
        return test_summary("test_exporter");
    }
    if (test_redis_start(&srv, NULL) != 0) {
        fprintf(stderr, "test_exporter: cannot start redis-server\n");
        test__failed++;
        return test_summary("test_exporter");
    }
    setenv("RSBUS_URL", srv.unix_url, 1);
    unsetenv("RSBUS_STREAM"); unsetenv("RSBUS_GROUP"); unsetenv("RSBUS_SPOOL_PATH"); unsetenv("RSBUS_TENANT");
    /* built with the exporter? one without it says so and exits 1 */
    snprintf(log, sizeof log, "%s/probe.log", srv.dir);
    run(log, NULL, START_MS, tool, "exporter", "--listen=127.0.0.1:99999", NULL);
    read_file(log, out, sizeof out);
    exporter_built = !strstr(out, "built without libmicrohttpd");
    if (!exporter_built) fprintf(stderr, "test_exporter: %s has no exporter command: %s", tool, out);
    RUN(exporter_usage);
    RUN(exporter_serves_what_redis_says);
    RUN(label_values_are_escaped);
    RUN(hostile_http);
    RUN(monitor_user_is_enough);
    RUN(redis_down_answers_up_0);
    RUN(textfile_same_numbers_atomically);
    RUN(promtool_checks_and_unit_tests);
    RUN(prometheus_reads_it_back);
    if (exp_pid > 0) stop_proc(exp_pid, 5000);
    kill_children();
    raw_reset();
    if (publisher) rsbus_close(publisher);
    if (billing) rsbus_close(billing);
    if (mail) rsbus_close(mail);
    test_redis_stop(&srv);
    return test_summary("test_exporter");
}
