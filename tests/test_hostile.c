/* test_hostile.c - rsbus against a server that lies: a scripted fake Redis on a loopback port.

   The fake server is a forked child (one process, a poll() loop over its connections). It speaks just
   enough RESP to get rsbus through rsbus_open (PING, XGROUP CREATE) and to answer the commands a call
   sends, and then misbehaves on one command, the target, as the test's script says: a truncated reply
   and then a close or silence, a reply of the wrong type or shape, lengths no server sends, deep
   nesting, garbage, a reply that never ends (flooded or trickled), no reply at all, two replies for one
   command. Every call must come back with RSBUS_E_PROTOCOL, RSBUS_E_TIMEOUT or RSBUS_E_IO (where the
   server closes) and a message, within io_timeout_ms and a margin, without the memory of the process
   exploding; and the next call on the same bus must work again (it reconnects, and the server answers
   normally once its script is done). The program runs plain, under ASan+UBSan and under valgrind, so a
   crash, a leak or a bad read on any of these paths fails it. */
#define _POSIX_C_SOURCE 200809L
#define RSBUS_IMPLEMENTATION
#include "../rsbus.h"
#include "test.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef __linux__
#  include <sys/prctl.h>
#endif

#define IO_TIMEOUT_MS 300
#define CONNECT_TIMEOUT_MS 500
#define MARGIN_MS 1500              /* scheduling, valgrind */
#define BATCH 4
#define MAX_EVENT_BYTES (64 * 1024)
/* A legitimate reply for this configuration is well under 1 MiB; what the process may grow by while a
   server floods it (hiredis's read buffer doubles, and a realloc holds old and new at once). */
/* Under AddressSanitizer every freed block sits in its quarantine, and hiredis 0.14 grows its read buffer
   1 MiB at a time past 1 MiB, so a flood that rsbus cuts off at its reply bound still leaves a trail of
   freed buffers resident. With ASan's default quarantine (256 MiB) that trail alone came within a few
   MiB of any sensible limit, and timing decided; this program keeps a 32 MiB quarantine (its own default,
   which ASAN_OPTIONS can still override) and the limit allows for that. */
#if defined(__SANITIZE_ADDRESS__)
#  define TEST_ASAN 1
#elif defined(__has_feature)
#  if __has_feature(address_sanitizer)
#    define TEST_ASAN 1
#  endif
#endif
#ifdef TEST_ASAN
#  define MEM_GROWTH_LIMIT_KB (160 * 1024)
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "quarantine_size_mb=32"; }
#else
#  define MEM_GROWTH_LIMIT_KB (96 * 1024)
#endif

/* ---- the script ------------------------------------------------------------------------------- */

enum { AFTER_CONTINUE = 0, AFTER_CLOSE, AFTER_SILENCE, AFTER_FLOOD, AFTER_TRICKLE };

typedef struct script {
    const char *target;             /* command name that gets the hostile reply */
    int skip;                       /* answer this many target commands normally first */
    int times;                      /* then misbehave on this many (later ones are answered normally) */
    const char *reply;              /* hostile bytes (NULL: none) */
    size_t reply_len;               /* 0: strlen(reply) */
    int repeat;                     /* send reply this many times (0: once) */
    const char *tail;               /* sent once after the repeats (NULL: nothing) */
    int after;                      /* AFTER_* */
    const char *flood_unit;         /* AFTER_FLOOD sends this again and again (NULL: "x"); its length
                                       divides 65536 */
    const char *ov_name[4];         /* normal replies that differ from the defaults */
    const char *ov_reply[4];
    int ov_limit;                   /* > 0: an override is used this many times, then the default */
} script;

/* ---- the fake server ---------------------------------------------------------------------------- */

#define MAX_CLIENTS 8
#define FLOOD_CAP_BYTES ((unsigned long long)128 << 20)
#define STREAM_CAP_MS 4000          /* a flood or trickle stops (and goes silent) after this long */

typedef struct client {
    int fd;
    int state;                      /* 0 serving, or AFTER_SILENCE / AFTER_FLOOD / AFTER_TRICKLE */
    char in[32768];
    size_t inlen;
    int in_multi, nqueued;
    char queued[4096];
    size_t qlen;
    unsigned long long streamed;
    int64_t started_ms, last_ms;
} client;

static client clients[MAX_CLIENTS];
static const script *sc;
static int targets_seen, xadds_seen, ov_used;
static int log_fd = -1;
static char flood_chunk[65536];

static void srv_log(const char *name, size_t nl, const char *arg, size_t al) {
    char line[160];
    size_t n = 0;
    if (log_fd < 0) return;
    if (nl > 60) nl = 60;
    if (al > 60) al = 60;
    memcpy(line, name, nl); n += nl;
    line[n++] = ' ';
    memcpy(line + n, arg, al); n += al;
    line[n++] = '\n';
    if (write(log_fd, line, n) < 0) { /* nothing to do */ }
}

static void send_all(client *c, const char *p, size_t n) {
    while (n > 0 && c->fd >= 0) {
        ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) { close(c->fd); c->fd = -1; return; }
        p += w; n -= (size_t)w;
    }
}

static int name_is(const char *name, size_t nl, const char *s) {
    size_t i;
    if (strlen(s) != nl) return 0;
    for (i = 0; i < nl; i++) {
        char ch = name[i];
        if (ch >= 'a' && ch <= 'z') ch = (char)(ch - 'a' + 'A');
        if (ch != s[i]) return 0;
    }
    return 1;
}

/* The reply a well-behaved server would give (into out, NUL-terminated). */
static void normal_reply(const char *name, size_t nl, char *out, size_t size) {
    int k;
    for (k = 0; k < 4 && sc->ov_name[k]; k++) {
        if (name_is(name, nl, sc->ov_name[k]) && (sc->ov_limit <= 0 || ov_used < sc->ov_limit)) {
            ov_used++;
            snprintf(out, size, "%s", sc->ov_reply[k]);
            return;
        }
    }
    if (name_is(name, nl, "PING")) snprintf(out, size, "+PONG\r\n");
    else if (name_is(name, nl, "XGROUP")) snprintf(out, size, "+OK\r\n");
    else if (name_is(name, nl, "XADD")) {
        char id[48];
        int il = snprintf(id, sizeof id, "1700000000000-%d", 100 + ++xadds_seen);
        snprintf(out, size, "$%d\r\n%s\r\n", il, id);
    }
    else if (name_is(name, nl, "XREADGROUP")) snprintf(out, size, "*-1\r\n");
    else if (name_is(name, nl, "XPENDING") || name_is(name, nl, "XCLAIM") || name_is(name, nl, "XRANGE"))
        snprintf(out, size, "*0\r\n");
    else if (name_is(name, nl, "XACK")) snprintf(out, size, ":1\r\n");
    else if (name_is(name, nl, "XLEN")) snprintf(out, size, ":0\r\n");
    else if (name_is(name, nl, "XINFO"))
        snprintf(out, size, "*6\r\n$6\r\nlength\r\n:3\r\n$6\r\ngroups\r\n:1\r\n$17\r\nlast-generated-id\r\n$3\r\n1-3\r\n");
    else if (name_is(name, nl, "MULTI")) snprintf(out, size, "+OK\r\n");
    else snprintf(out, size, "-ERR unknown command\r\n");
}

static void misbehave(client *c) {
    size_t n = sc->reply ? (sc->reply_len ? sc->reply_len : strlen(sc->reply)) : 0;
    int i, reps = sc->repeat > 0 ? sc->repeat : 1;
    for (i = 0; i < reps && n && c->fd >= 0; i++) send_all(c, sc->reply, n);
    if (sc->tail && c->fd >= 0) send_all(c, sc->tail, strlen(sc->tail));
    if (c->fd < 0) return;
    switch (sc->after) {
    case AFTER_CLOSE: close(c->fd); c->fd = -1; break;
    case AFTER_CONTINUE: break;
    default:
        c->state = sc->after;
        c->started_ms = c->last_ms = test_now_ms();
        c->streamed = 0;
        break;
    }
}

/* One command: name and args, already parsed. */
static void serve(client *c, const char *name, size_t nl, const char *arg, size_t al) {
    static char rep[65536];
    srv_log(name, nl, arg, al);
    if (sc->target && name_is(name, nl, sc->target)) {
        targets_seen++;
        if (targets_seen > sc->skip && targets_seen <= sc->skip + sc->times) {
            if (name_is(name, nl, "EXEC")) c->in_multi = 0;
            misbehave(c);
            return;
        }
    }
    if (name_is(name, nl, "MULTI")) { c->in_multi = 1; c->nqueued = 0; c->qlen = 0; send_all(c, "+OK\r\n", 5); return; }
    if (name_is(name, nl, "EXEC") && c->in_multi) {
        char hdr[32];
        int hl = snprintf(hdr, sizeof hdr, "*%d\r\n", c->nqueued);
        c->in_multi = 0;
        send_all(c, hdr, (size_t)hl);
        send_all(c, c->queued, c->qlen);
        return;
    }
    normal_reply(name, nl, rep, sizeof rep);
    if (c->in_multi) {
        size_t rl = strlen(rep), k;
        if (rl < sizeof c->queued - c->qlen) {
            for (k = 0; k < rl; k++) c->queued[c->qlen + k] = rep[k];
            c->qlen += rl;
            c->nqueued++;
        }
        send_all(c, "+QUEUED\r\n", 9);
        return;
    }
    send_all(c, rep, strlen(rep));
}

/* Parses a decimal number ending in \r\n at p (within e); returns the byte after it or NULL. */
static const char *parse_num(const char *p, const char *e, long *out) {
    long v = 0;
    if (p >= e) return NULL;
    while (p < e && *p >= '0' && *p <= '9') { v = v * 10 + (*p - '0'); p++; }
    if (e - p < 2) return NULL;
    if (p[0] != '\r' || p[1] != '\n') return (const char *)-1;   /* not RESP: handled by the caller */
    *out = v;
    return p + 2;
}

/* Serves every complete command in the client's buffer (arrays of bulk strings). */
static void process(client *c) {
    for (;;) {
        const char *p = c->in, *e = c->in + c->inlen, *name = NULL, *arg = "";
        size_t nl = 0, al = 0;
        long argc, i, len;
        if (c->fd < 0 || c->state != 0 || c->inlen == 0) return;
        if (*p != '*') { close(c->fd); c->fd = -1; return; }
        p = parse_num(p + 1, e, &argc);
        if (!p) return;
        if (p == (const char *)-1 || argc < 1) { close(c->fd); c->fd = -1; return; }
        for (i = 0; i < argc; i++) {
            if (p >= e) return;
            if (*p != '$') { close(c->fd); c->fd = -1; return; }
            p = parse_num(p + 1, e, &len);
            if (!p) return;
            if (p == (const char *)-1) { close(c->fd); c->fd = -1; return; }
            if (e - p < len + 2) return;
            if (i == 0) { name = p; nl = (size_t)len; }
            if (i == 1) { arg = p; al = (size_t)len; }
            p += len + 2;
        }
        {
            size_t used = (size_t)(p - c->in);
            char cmd_name[64], cmd_arg[64];
            if (nl > sizeof cmd_name) nl = sizeof cmd_name;
            if (al > sizeof cmd_arg) al = sizeof cmd_arg;
            memcpy(cmd_name, name, nl);
            memcpy(cmd_arg, arg, al);
            memmove(c->in, c->in + used, c->inlen - used);
            c->inlen -= used;
            serve(c, cmd_name, nl, cmd_arg, al);
        }
    }
}

static void server_loop(int lfd) {
    struct pollfd pfd[MAX_CLIENTS + 1];
    int idx[MAX_CLIENTS + 1];
    int i;
    {
        const char *u = sc->flood_unit ? sc->flood_unit : "x";
        size_t ul = strlen(u), o;
        for (o = 0; o + ul <= sizeof flood_chunk; o += ul) memcpy(flood_chunk + o, u, ul);
    }
    for (i = 0; i < MAX_CLIENTS; i++) clients[i].fd = -1;
    for (;;) {
        int n = 1, timeout = 1000, k;
        int64_t now;
        pfd[0].fd = lfd; pfd[0].events = POLLIN; pfd[0].revents = 0;
        for (i = 0; i < MAX_CLIENTS; i++) {
            client *c = &clients[i];
            if (c->fd < 0) continue;
            pfd[n].fd = c->fd;
            pfd[n].events = (short)(POLLIN | (c->state == AFTER_FLOOD ? POLLOUT : 0));
            pfd[n].revents = 0;
            idx[n++] = i;
            if (c->state == AFTER_TRICKLE) timeout = 10;
        }
        if (poll(pfd, (nfds_t)n, timeout) < 0 && errno != EINTR) _exit(2);
        now = test_now_ms();
        if (pfd[0].revents & POLLIN) {
            int fd = accept(lfd, NULL, NULL);
            if (fd >= 0) {
                for (i = 0; i < MAX_CLIENTS && clients[i].fd >= 0; i++) {}
                if (i == MAX_CLIENTS) close(fd);
                else { memset(&clients[i], 0, sizeof clients[i]); clients[i].fd = fd; }
            }
        }
        for (k = 1; k < n; k++) {
            client *c = &clients[idx[k]];
            if (c->fd < 0 || pfd[k].fd != c->fd) continue;
            if (pfd[k].revents & (POLLIN | POLLHUP | POLLERR)) {
                char tmp[4096];
                char *dst = c->state == 0 ? c->in + c->inlen : tmp;
                size_t room = c->state == 0 ? sizeof c->in - c->inlen : sizeof tmp;
                ssize_t r;
                if (room == 0) { close(c->fd); c->fd = -1; continue; }
                r = recv(c->fd, dst, room, MSG_DONTWAIT);
                if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
                    close(c->fd); c->fd = -1; continue;
                }
                if (r > 0 && c->state == 0) { c->inlen += (size_t)r; process(c); }
            }
            if (c->fd < 0) continue;
            if (c->state == AFTER_FLOOD && (pfd[k].revents & POLLOUT)) {
                ssize_t w = send(c->fd, flood_chunk, sizeof flood_chunk, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) { close(c->fd); c->fd = -1; continue; }
                if (w > 0) c->streamed += (unsigned long long)w;
                if (c->streamed >= FLOOD_CAP_BYTES || now - c->started_ms > STREAM_CAP_MS) c->state = AFTER_SILENCE;
            }
            if (c->state == AFTER_TRICKLE && now - c->last_ms >= 50) {
                c->last_ms = now;
                if (send(c->fd, "x", 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0 && errno != EAGAIN) { close(c->fd); c->fd = -1; continue; }
                if (now - c->started_ms > STREAM_CAP_MS) c->state = AFTER_SILENCE;
            }
        }
    }
}

/* ---- starting and stopping it ------------------------------------------------------------------ */

static pid_t srv_pid = -1;
static int srv_port;
static char srv_log_path[256];
static char srv_url[64];
static const char *cur_case = "";

static void stop_server(void) {
    if (srv_pid > 0) { kill(srv_pid, SIGKILL); waitpid(srv_pid, NULL, 0); }
    srv_pid = -1;
    if (srv_log_path[0]) { unlink(srv_log_path); srv_log_path[0] = 0; }
}

static int start_server(const script *s) {
    struct sockaddr_in a;
    socklen_t al = sizeof a;
    const char *tmp = getenv("TMPDIR");
    int lfd, one = 1;
    stop_server();
    snprintf(srv_log_path, sizeof srv_log_path, "%s/rsbus-hostile-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    log_fd = mkstemp(srv_log_path);
    if (log_fd < 0) { srv_log_path[0] = 0; return -1; }
    lfd = socket(AF_INET, SOCK_STREAM, 0);
    if (lfd < 0) return -1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    if (bind(lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(lfd, 16) != 0 ||
        getsockname(lfd, (struct sockaddr *)&a, &al) != 0) { close(lfd); return -1; }
    srv_port = ntohs(a.sin_port);
    snprintf(srv_url, sizeof srv_url, "redis://127.0.0.1:%d", srv_port);
    fflush(stdout); fflush(stderr);
    srv_pid = fork();
    if (srv_pid < 0) { close(lfd); return -1; }
    if (srv_pid == 0) {
#ifdef __linux__
        prctl(PR_SET_PDEATHSIG, SIGKILL);
#endif
        signal(SIGALRM, SIG_DFL);
        alarm(0);
        sc = s;
        targets_seen = xadds_seen = ov_used = 0;
        server_loop(lfd);
        _exit(0);
    }
    close(lfd);
    close(log_fd);
    log_fd = -1;
    return 0;
}

/* How many lines of the server's log contain needle. */
static int server_saw(const char *needle) {
    static char b[1 << 18];
    size_t n;
    int count = 0;
    const char *p;
    FILE *f = fopen(srv_log_path, "r");
    if (!f) return 0;
    n = fread(b, 1, sizeof b - 1, f);
    fclose(f);
    b[n] = 0;
    for (p = b; (p = strstr(p, needle)) != NULL; p += strlen(needle)) count++;
    return count;
}

/* ---- the client side ----------------------------------------------------------------------------- */

static void on_alarm(int sig) {
    static const char m[] = "FAIL: a call hung (no return within the alarm)\n";
    (void)sig;
    if (write(2, m, sizeof m - 1) < 0) { /* nothing to do */ }
    if (srv_pid > 0) kill(srv_pid, SIGKILL);
    _exit(3);
}

static int io_timeout_ms = IO_TIMEOUT_MS;   /* of the buses opened now */

static rsbus_config hostile_cfg(void) {
    rsbus_config c;
    memset(&c, 0, sizeof c);
    c.url = srv_url;
    c.stream = "s";
    c.group = "g";
    c.consumer = "c";
    c.group_start = "0";
    c.batch_size = BATCH;
    c.block_ms = 100;
    c.connect_timeout_ms = CONNECT_TIMEOUT_MS;
    c.io_timeout_ms = io_timeout_ms;
    c.max_event_bytes = MAX_EVENT_BYTES;
    c.retry_backoff_ms = 10;
    return c;
}
/* Opens a bus on the fake server, whose handshake behaves (a slow machine, valgrind: up to 3 tries). */
static rsbus *open_hostile(void) {
    rsbus_config c = hostile_cfg();
    rsbus_error err;
    rsbus *bus = NULL;
    int i;
    for (i = 0; i < 3 && !bus; i++) {
        bus = rsbus_open(&c, &err);
        if (!bus) fprintf(stderr, "  [%s] rsbus_open: %s: %s\n", cur_case, rsbus_result_str(err.code), err.msg);
    }
    return bus;
}

/* Peak RSS since the last reset (Linux: /proc/self/status VmHWM, reset through clear_refs). */
static long status_kb(const char *key) {
    char line[256];
    long v = -1;
    size_t kl = strlen(key);
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, key, kl) == 0) { v = strtol(line + kl, NULL, 10); break; }
    fclose(f);
    return v;
}
static int reset_peak(void) {
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f) return 0;
    if (fputs("5", f) < 0) { fclose(f); return 0; }
    return fclose(f) == 0;
}

enum { OP_PUBLISH, OP_POLL, OP_CLAIM, OP_DLQ, OP_INFO, OP_OPEN };
static const char *const op_names[] = { "publish", "poll", "claim", "dlq_list", "stream_info_get", "open" };

static int do_op(rsbus **busp, int op, int poll_ms) {
    rsbus *bus = *busp;
    switch (op) {
    case OP_PUBLISH: {
        rsbus_event ev;
        char id[RSBUS_ID_SIZE];
        memset(&ev, 0, sizeof ev);
        ev.type = "t";
        ev.data = "{}";
        return rsbus_publish(bus, &ev, id);
    }
    case OP_POLL: return rsbus_poll(bus, poll_ms);
    case OP_CLAIM: {
        rsbus_claim_stats cs;
        return rsbus_claim(bus, 1000, 0, &cs);
    }
    case OP_DLQ: {
        rsbus_dlq_page page;
        int r = rsbus_dlq_list(bus, NULL, 10, &page);
        if (r == RSBUS_OK) rsbus_dlq_page_free(bus, &page);
        return r;
    }
    case OP_INFO: {
        rsbus_stream_info si;
        return rsbus_stream_info_get(bus, &si);
    }
    default: {
        rsbus_config c = hostile_cfg();
        rsbus_error err;
        rsbus *b = rsbus_open(&c, &err);
        if (b) { *busp = b; return RSBUS_OK; }
        CHECK(err.code < 0);
        CHECK(err.msg[0] != 0);
        return err.code;
    }
    }
}

#define A_PROTO   1u
#define A_TIMEOUT 2u
#define A_IO      4u
#define A_REDIS   8u
#define A_AUTH    16u
#define A_NOMEM   32u
static unsigned bit_of(int r) {
    switch (r) {
    case RSBUS_E_PROTOCOL: return A_PROTO;
    case RSBUS_E_TIMEOUT: return A_TIMEOUT;
    case RSBUS_E_IO: return A_IO;
    case RSBUS_E_REDIS: return A_REDIS;
    case RSBUS_E_AUTH: return A_AUTH;
    case RSBUS_E_NOMEM: return A_NOMEM;
    default: return 0;
    }
}

/* A failing call: its result is one of 'allow', it says why, and it came back in time (and, with
   memcheck, without the process growing by more than MEM_GROWTH_LIMIT_KB). */
typedef struct expect {
    unsigned allow;
    int64_t max_ms;                 /* 0: IO_TIMEOUT_MS + MARGIN_MS */
    int64_t min_ms;                 /* it really waited */
    int memcheck;
    int io_ms;                      /* io_timeout_ms of the bus (0: IO_TIMEOUT_MS) */
} expect;

static int failing_call(rsbus **busp, int op, int poll_ms, const expect *x, int line) {
    int64_t t0, dt;
    long rss0 = -1, peak;
    int peak_ok = 0, r;
    char m[512];
    int64_t max_ms = x->max_ms ? x->max_ms : io_timeout_ms + MARGIN_MS;
    if (x->memcheck) { rss0 = status_kb("VmRSS:"); peak_ok = reset_peak(); }
    t0 = test_now_ms();
    r = do_op(busp, op, poll_ms);
    dt = test_now_ms() - t0;
    if (!(bit_of(r) & x->allow)) {
        snprintf(m, sizeof m, "[%s] %s returned %s (%d): %.200s", cur_case, op_names[op],
                 r >= 0 ? "success" : rsbus_result_str((rsbus_result)r), r,
                 op == OP_OPEN ? "" : rsbus_errmsg(*busp));
        test__fail(__FILE__, line, m);
    } else {
        fprintf(stderr, "  [%s] %s: %s in %lld ms: %s\n", cur_case, op_names[op], rsbus_result_str((rsbus_result)r),
                (long long)dt, op == OP_OPEN ? "(rsbus_open returned NULL)" : rsbus_errmsg(*busp));
    }
    if (op != OP_OPEN && r < 0 && !rsbus_errmsg(*busp)[0]) {
        snprintf(m, sizeof m, "[%s] %s: empty rsbus_errmsg", cur_case, op_names[op]);
        test__fail(__FILE__, line, m);
    }
    if (dt > max_ms || dt < x->min_ms) {
        snprintf(m, sizeof m, "[%s] %s took %lld ms (expected %lld..%lld)", cur_case, op_names[op],
                 (long long)dt, (long long)x->min_ms, (long long)max_ms);
        test__fail(__FILE__, line, m);
    }
    if (x->memcheck && peak_ok && rss0 > 0) {
        peak = status_kb("VmHWM:");
        if (peak - rss0 > MEM_GROWTH_LIMIT_KB) {
            snprintf(m, sizeof m, "[%s] %s: the process grew by %ld KiB (limit %d KiB)", cur_case, op_names[op],
                     peak - rss0, MEM_GROWTH_LIMIT_KB);
            test__fail(__FILE__, line, m);
        } else {
            fprintf(stderr, "  [%s] %s: peak growth %ld KiB\n", cur_case, op_names[op], peak - rss0);
        }
    }
    return r;
}
#define FAILING(busp, op, poll_ms, x) failing_call(busp, op, poll_ms, x, __LINE__)

/* The call that must work again: the server answers normally now. */
static void working_call(rsbus **busp, int op, int line) {
    char m[512];
    int r = do_op(busp, op, 0);
    if (r < 0) {
        snprintf(m, sizeof m, "[%s] %s after the hostile replies: %s: %.200s", cur_case, op_names[op],
                 rsbus_result_str((rsbus_result)r), op == OP_OPEN ? "" : rsbus_errmsg(*busp));
        test__fail(__FILE__, line, m);
    }
}
#define WORKING(busp, op) working_call(busp, op, __LINE__)

static const char *const target_of[] = { "XADD", "XREADGROUP", "XPENDING", "XRANGE", "XINFO", "PING" };

/* One hostile script against one operation: 'times' failing calls on the same bus, then a working one.
   For OP_OPEN each call is an rsbus_open (the target is then PING or XGROUP). */
static void run_case(const char *name, int op, script s, const expect *x) {
    rsbus *bus = NULL;
    int i;
    const char *only = getenv("HOSTILE_ONLY");   /* while debugging: only the cases whose name has this */
    if (only && !strstr(name, only)) return;
    cur_case = name;
    io_timeout_ms = x->io_ms ? x->io_ms : IO_TIMEOUT_MS;
    if (!s.target) s.target = target_of[op];
    if (s.times == 0) s.times = 1;
    if (start_server(&s) != 0) { test__fail(__FILE__, __LINE__, "cannot start the fake server"); return; }
    alarm(90);
    if (op != OP_OPEN) {
        bus = open_hostile();
        if (!bus) { test__fail(__FILE__, __LINE__, "rsbus_open on the fake server failed"); stop_server(); return; }
    }
    for (i = 0; i < s.times; i++) {
        rsbus *nb = bus;
        (void)FAILING(&nb, op, 0, x);
        if (op == OP_OPEN && nb) { rsbus_close(nb); }
    }
    if (op == OP_OPEN) {
        WORKING(&bus, op);
        if (bus) rsbus_close(bus);
    } else {
        WORKING(&bus, op);
        rsbus_close(bus);
    }
    alarm(0);
    stop_server();
    io_timeout_ms = IO_TIMEOUT_MS;
}

/* ---- the behaviours every call meets ------------------------------------------------------------- */

typedef struct behaviour {
    const char *name;
    const char *reply;
    int repeat;
    const char *tail;
    int after;
    const char *flood_unit;
    int times;
    expect x;
} behaviour;

static void every_behaviour(int op) {
    static const behaviour bs[] = {
        { "half a bulk string, then close", "$10\r\nhello", 0, NULL, AFTER_CLOSE, NULL, 2, { A_IO, 0, 0, 0, 0 } },
        { "half a bulk string, then silence", "$10\r\nhello", 0, NULL, AFTER_SILENCE, NULL, 2,
          { A_TIMEOUT, 0, IO_TIMEOUT_MS - 50, 0, 0 } },
        { "half an array, then close", "*3\r\n$1\r\na\r\n", 0, NULL, AFTER_CLOSE, NULL, 2, { A_IO, 0, 0, 0, 0 } },
        { "half an array, then silence", "*3\r\n$1\r\na\r\n:1", 0, NULL, AFTER_SILENCE, NULL, 1,
          { A_TIMEOUT, 0, IO_TIMEOUT_MS - 50, 0, 0 } },
        { "bulk length $999999999999, then close", "$999999999999\r\n", 0, NULL, AFTER_CLOSE, NULL, 2,
          { A_IO | A_PROTO, 0, 0, 1, 0 } },
        { "bulk length $999999999999, then silence", "$999999999999\r\n", 0, NULL, AFTER_SILENCE, NULL, 1,
          { A_TIMEOUT | A_PROTO, 0, 0, 1, 0 } },
        { "array length *2147483648", "*2147483648\r\n", 0, NULL, AFTER_SILENCE, NULL, 1,
          { A_PROTO | A_TIMEOUT, 0, 0, 1, 0 } },
        { "array length *100000000 (800 MB of element pointers)", "*100000000\r\n", 0, NULL, AFTER_SILENCE, NULL, 1,
          { A_PROTO | A_TIMEOUT, 0, 0, 1, 0 } },
        { "negative lengths", "$-2\r\n", 0, NULL, AFTER_CONTINUE, NULL, 1, { A_PROTO, 0, 0, 0, 0 } },
        { "negative array length", "*-2\r\n", 0, NULL, AFTER_CONTINUE, NULL, 1, { A_PROTO, 0, 0, 0, 0 } },
        { "bad integer", ":12x\r\n", 0, NULL, AFTER_CONTINUE, NULL, 1, { A_PROTO, 0, 0, 0, 0 } },
        { "5000 levels of *1", "*1\r\n", 5000, ":1\r\n", AFTER_CONTINUE, NULL, 2, { A_PROTO, 0, 0, 0, 0 } },
        { "garbage (not RESP)", "HELLO\r\n", 0, NULL, AFTER_CONTINUE, NULL, 2, { A_PROTO, 0, 0, 0, 0 } },
        { "an endless bulk string, flooded", "$999999999999\r\n", 0, NULL, AFTER_FLOOD, NULL, 1,
          { A_TIMEOUT | A_PROTO, 0, 0, 1, 0 } },
        { "7 nested arrays of 4194304 elements, then silence", "*4194304\r\n", 7, NULL, AFTER_SILENCE, NULL, 1,
          { A_TIMEOUT | A_PROTO, 0, 0, 1, 0 } },
        /* the memory rsbus builds per byte received, for 2 s: a reply's size must be bounded, not just its
           unparsed bytes */
        { "an array of 4194304 integers, flooded for io_timeout_ms 2000", "*4194304\r\n", 0, NULL, AFTER_FLOOD,
          ":1\r\n", 1, { A_TIMEOUT | A_PROTO, 0, 0, 1, 2000 } },
        { "an endless bulk string, trickled (a byte every 50 ms)", "$1000\r\n", 0, NULL, AFTER_TRICKLE, NULL, 1,
          { A_TIMEOUT, 0, 0, 0, 0 } },
        { "no reply at all", NULL, 0, NULL, AFTER_SILENCE, NULL, 2, { A_TIMEOUT, 0, IO_TIMEOUT_MS - 50, 0, 0 } },
        { "close instead of a reply", NULL, 0, NULL, AFTER_CLOSE, NULL, 2, { A_IO, 0, 0, 0, 0 } },
    };
    size_t i;
    char name[200];
    static char names[sizeof bs / sizeof bs[0]][200];
    for (i = 0; i < sizeof bs / sizeof bs[0]; i++) {
        script s;
        memset(&s, 0, sizeof s);
        s.reply = bs[i].reply;
        s.repeat = bs[i].repeat;
        s.tail = bs[i].tail;
        s.after = bs[i].after;
        s.flood_unit = bs[i].flood_unit;
        s.times = bs[i].times;
        snprintf(name, sizeof name, "%s %s: %s", op_names[op], target_of[op], bs[i].name);
        memcpy(names[i], name, sizeof name);
        run_case(names[i], op, s, &bs[i].x);
    }
}

TEST(open_ping_hostile) { every_behaviour(OP_OPEN); }
TEST(publish_xadd_hostile) { every_behaviour(OP_PUBLISH); }
TEST(poll_xreadgroup_hostile) { every_behaviour(OP_POLL); }
TEST(claim_xpending_hostile) { every_behaviour(OP_CLAIM); }
TEST(dlq_list_xrange_hostile) { every_behaviour(OP_DLQ); }
TEST(stream_info_xinfo_hostile) { every_behaviour(OP_INFO); }

/* ---- shapes: replies of the wrong type or shape for each command ---------------------------------- */

static const expect proto = { A_PROTO, 0, 0, 0, 0 };

static void shape_case(const char *name, int op, const char *target, const char *reply, const expect *x) {
    script s;
    memset(&s, 0, sizeof s);
    s.target = target;
    s.reply = reply;
    s.after = AFTER_CONTINUE;
    s.times = 1;
    run_case(name, op, s, x);
}

TEST(open_xgroup_hostile) {
    static const expect redis = { A_REDIS, 0, 0, 0, 0 };
    script s;
    rsbus *bus;
    memset(&s, 0, sizeof s);
    s.target = "XGROUP"; s.reply = "+O"; s.after = AFTER_CLOSE; s.times = 1;
    run_case("open XGROUP: half a reply, then close", OP_OPEN, s, &(expect){ A_IO, 0, 0, 0, 0 });
    shape_case("open XGROUP: garbage", OP_OPEN, "XGROUP", "HELLO\r\n", &proto);
    shape_case("open XGROUP: an error", OP_OPEN, "XGROUP", "-ERR no\r\n", &redis);
    memset(&s, 0, sizeof s);
    s.target = "XGROUP"; s.after = AFTER_SILENCE; s.times = 1;
    run_case("open XGROUP: no reply", OP_OPEN, s, &(expect){ A_TIMEOUT, 0, IO_TIMEOUT_MS - 50, 0, 0 });
    /* BUSYGROUP is fine: the group exists */
    memset(&s, 0, sizeof s);
    s.target = "XGROUP"; s.reply = "-BUSYGROUP Consumer Group name already exists\r\n"; s.times = 1;
    cur_case = "open XGROUP: BUSYGROUP";
    REQUIRE(start_server(&s) == 0);
    bus = open_hostile();
    CHECK(bus != NULL);
    rsbus_close(bus);
    stop_server();
}

TEST(publish_xadd_shapes) {
    static const expect redis = { A_REDIS, 0, 0, 0, 0 }, auth = { A_AUTH, 0, 0, 0, 0 };
    shape_case("publish XADD: an integer", OP_PUBLISH, "XADD", ":42\r\n", &proto);
    shape_case("publish XADD: a status", OP_PUBLISH, "XADD", "+OK\r\n", &proto);
    shape_case("publish XADD: an array", OP_PUBLISH, "XADD", "*1\r\n$3\r\n1-1\r\n", &proto);
    shape_case("publish XADD: nil", OP_PUBLISH, "XADD", "$-1\r\n", &proto);
    shape_case("publish XADD: not an id", OP_PUBLISH, "XADD", "$5\r\n1-1-1\r\n", &proto);
    shape_case("publish XADD: an empty string", OP_PUBLISH, "XADD", "$0\r\n\r\n", &proto);
    shape_case("publish XADD: an id too long", OP_PUBLISH, "XADD",
               "$60\r\n123456789012345678901234567890123456789012345678901234567-89\r\n", &proto);
    shape_case("publish XADD: an error", OP_PUBLISH, "XADD", "-ERR boom\r\n", &redis);
    shape_case("publish XADD: NOPERM", OP_PUBLISH, "XADD", "-NOPERM no\r\n", &auth);
}

/* Two replies for one command: the second must never be taken for the reply of the next command. */
TEST(publish_extra_reply_is_not_taken_for_the_next) {
    script s;
    rsbus *bus;
    rsbus_event ev;
    char id[RSBUS_ID_SIZE];
    int r;
    memset(&s, 0, sizeof s);
    s.target = "XADD";
    s.reply = "$15\r\n1700000000000-1\r\n$15\r\n1700000000000-9\r\n";
    s.times = 1;
    cur_case = "publish XADD: two replies in one write";
    REQUIRE(start_server(&s) == 0);
    bus = open_hostile();
    REQUIRE(bus != NULL);
    memset(&ev, 0, sizeof ev);
    ev.type = "t";
    CHECK_EQ_INT(rsbus_publish(bus, &ev, id), RSBUS_OK);
    CHECK_EQ_STR(id, "1700000000000-1");
    r = rsbus_publish(bus, &ev, id);
    /* either an error, or the id the server gave to this XADD: never the stray -9 */
    if (r == RSBUS_OK) CHECK(strcmp(id, "1700000000000-9") != 0);
    if (r == RSBUS_OK) fprintf(stderr, "  second publish: %s\n", id);
    r = rsbus_publish(bus, &ev, id);
    CHECK_EQ_INT(r, RSBUS_OK);
    rsbus_close(bus);
    stop_server();
}

#define XR_HEAD "*1\r\n*2\r\n$1\r\ns\r\n"   /* [[stream, entries]] */
#define ENTRY_OK(id) "*2\r\n$" id "\r\n*4\r\n$4\r\ntype\r\n$1\r\nt\r\n$4\r\ndata\r\n$2\r\n{}\r\n"

TEST(poll_xreadgroup_shapes) {
    shape_case("poll XREADGROUP: a status", OP_POLL, NULL, "+OK\r\n", &proto);
    shape_case("poll XREADGROUP: an integer", OP_POLL, NULL, ":1\r\n", &proto);
    shape_case("poll XREADGROUP: two streams", OP_POLL, NULL,
               "*2\r\n*2\r\n$1\r\ns\r\n*0\r\n*2\r\n$1\r\ns\r\n*0\r\n", &proto);
    shape_case("poll XREADGROUP: a stream of one element", OP_POLL, NULL, "*1\r\n*1\r\n$1\r\ns\r\n", &proto);
    shape_case("poll XREADGROUP: entries not an array", OP_POLL, NULL, XR_HEAD "$3\r\nabc\r\n", &proto);
    shape_case("poll XREADGROUP: an entry of 3 elements", OP_POLL, NULL,
               XR_HEAD "*1\r\n*3\r\n$3\r\n1-1\r\n*0\r\n*0\r\n", &proto);
    shape_case("poll XREADGROUP: an entry of 1 element", OP_POLL, NULL, XR_HEAD "*1\r\n*1\r\n$3\r\n1-1\r\n", &proto);
    shape_case("poll XREADGROUP: an id that is not ms-seq", OP_POLL, NULL,
               XR_HEAD "*1\r\n*2\r\n$3\r\nabc\r\n*0\r\n", &proto);
    shape_case("poll XREADGROUP: an integer id", OP_POLL, NULL, XR_HEAD "*1\r\n*2\r\n:5\r\n*0\r\n", &proto);
    shape_case("poll XREADGROUP: fields as an integer", OP_POLL, NULL, XR_HEAD "*1\r\n*2\r\n$3\r\n1-1\r\n:7\r\n",
               &proto);
    shape_case("poll XREADGROUP: an entry that is a string", OP_POLL, NULL, XR_HEAD "*1\r\n$3\r\n1-1\r\n", &proto);
    shape_case("poll XREADGROUP: more entries than COUNT", OP_POLL, NULL,
               XR_HEAD "*5\r\n" ENTRY_OK("3\r\n1-1") ENTRY_OK("3\r\n1-2") ENTRY_OK("3\r\n1-3") ENTRY_OK("3\r\n1-4")
               ENTRY_OK("3\r\n1-5"), &proto);
    shape_case("poll XREADGROUP: an error", OP_POLL, NULL, "-ERR boom\r\n", &(expect){ A_REDIS, 0, 0, 0, 0 });
}

/* Well-shaped entries with fields no publisher writes go to the dead-letter stream, never to a
   handler: the server sees the MULTI / XADD {s}:dlq / XACK / EXEC. */
static int handled;
static rsbus_verdict count_handler(const rsbus_msg *m, void *user) {
    (void)m; (void)user;
    handled++;
    return RSBUS_ACK;
}

static void malformed_case(const char *name, const char *reply) {
    script s;
    rsbus *bus;
    rsbus_stats st;
    int r;
    memset(&s, 0, sizeof s);
    s.target = "XREADGROUP";
    s.reply = reply;
    s.times = 1;
    cur_case = name;
    REQUIRE(start_server(&s) == 0);
    bus = open_hostile();
    REQUIRE(bus != NULL);
    CHECK(rsbus_subscribe(bus, "*", count_handler, NULL) > 0);
    handled = 0;
    r = rsbus_poll(bus, 0);
    CHECK_EQ_INT(r, 1);
    rsbus_stats_get(bus, &st);
    CHECK_EQ_INT(handled, 0);
    CHECK_EQ_INT(st.dead_lettered, 1);
    CHECK_EQ_INT(st.malformed, 1);
    CHECK(server_saw("XADD {s}:dlq") == 1);
    CHECK(server_saw("XACK s") >= 1);
    CHECK(server_saw("EXEC") == 1);
    CHECK(rsbus_poll(bus, 0) >= 0);
    rsbus_close(bus);
    stop_server();
}

TEST(poll_malformed_entries_are_dead_lettered) {
    malformed_case("poll: fields that are integers", XR_HEAD "*1\r\n*2\r\n$3\r\n1-1\r\n*2\r\n:1\r\n:2\r\n");
    malformed_case("poll: an odd number of fields", XR_HEAD "*1\r\n*2\r\n$3\r\n1-1\r\n*3\r\n$4\r\ntype\r\n$1\r\nt\r\n"
                                                     "$4\r\ndata\r\n");
    malformed_case("poll: a nil field value", XR_HEAD "*1\r\n*2\r\n$3\r\n1-1\r\n*4\r\n$4\r\ntype\r\n$-1\r\n"
                                                 "$4\r\ndata\r\n$2\r\n{}\r\n");
    malformed_case("poll: an array field value", XR_HEAD "*1\r\n*2\r\n$3\r\n1-1\r\n*4\r\n$4\r\ntype\r\n$1\r\nt\r\n"
                                                    "$4\r\ndata\r\n*1\r\n$2\r\n{}\r\n");
    malformed_case("poll: data not JSON", XR_HEAD "*1\r\n*2\r\n$3\r\n1-1\r\n*4\r\n$4\r\ntype\r\n$1\r\nt\r\n"
                                             "$4\r\ndata\r\n$1\r\n{\r\n");
}

TEST(poll_deleted_entry_is_acknowledged) {
    script s;
    rsbus *bus;
    rsbus_stats st;
    memset(&s, 0, sizeof s);
    s.target = "XREADGROUP";
    s.reply = XR_HEAD "*1\r\n*2\r\n$3\r\n1-1\r\n$-1\r\n";
    s.times = 1;
    cur_case = "poll: nil fields (deleted while pending)";
    REQUIRE(start_server(&s) == 0);
    bus = open_hostile();
    REQUIRE(bus != NULL);
    CHECK_EQ_INT(rsbus_poll(bus, 0), 1);
    rsbus_stats_get(bus, &st);
    CHECK_EQ_INT(st.deleted_while_pending, 1);
    CHECK_EQ_INT(st.dead_lettered, 0);
    CHECK(server_saw("XACK s") == 1);
    rsbus_close(bus);
    stop_server();
}

/* The dead-letter move's EXEC answered with something else than the transaction's replies: the entry
   is not counted as dead-lettered, and the call fails. */
TEST(poll_dead_letter_exec_hostile) {
    static const char *const execs[] = { "+OK\r\n", "*-1\r\n", ":1\r\n", "HELLO\r\n" };
    size_t i;
    for (i = 0; i < sizeof execs / sizeof execs[0]; i++) {
        script s;
        rsbus *bus;
        rsbus_stats st;
        int r;
        char name[128];
        memset(&s, 0, sizeof s);
        s.target = "EXEC";
        s.reply = execs[i];
        s.times = 1;
        s.ov_name[0] = "XREADGROUP";
        s.ov_reply[0] = XR_HEAD "*1\r\n*2\r\n$3\r\n1-1\r\n*2\r\n:1\r\n:2\r\n";
        s.ov_limit = 1;
        snprintf(name, sizeof name, "poll: the DLQ move's EXEC answered %.*s", (int)strcspn(execs[i], "\r"), execs[i]);
        cur_case = name;
        REQUIRE(start_server(&s) == 0);
        bus = open_hostile();
        REQUIRE(bus != NULL);
        r = FAILING(&bus, OP_POLL, 0, (&(expect){ A_PROTO | A_REDIS, 0, 0, 0, 0 }));
        (void)r;
        rsbus_stats_get(bus, &st);
        CHECK_EQ_INT(st.dead_lettered, 0);
        WORKING(&bus, OP_POLL);
        rsbus_close(bus);
        stop_server();
    }
}

/* A blocking read whose reply never comes: BLOCK + io_timeout_ms, not longer. */
TEST(poll_block_silence) {
    script s;
    rsbus *bus;
    memset(&s, 0, sizeof s);
    s.target = "XREADGROUP";
    s.skip = 1;                     /* the re-read of own pending entries is answered */
    s.times = 1;
    s.after = AFTER_SILENCE;
    cur_case = "poll(200 ms) XREADGROUP BLOCK: no reply";
    REQUIRE(start_server(&s) == 0);
    bus = open_hostile();
    REQUIRE(bus != NULL);
    (void)FAILING(&bus, OP_POLL, 200,
                  (&(expect){ A_TIMEOUT, 200 + IO_TIMEOUT_MS + MARGIN_MS, 200 + IO_TIMEOUT_MS - 50, 0, 0 }));
    WORKING(&bus, OP_POLL);
    rsbus_close(bus);
    stop_server();
}

#define PEND(id, consumer, idle, count) "*4\r\n$" id "\r\n$" consumer "\r\n:" idle "\r\n:" count "\r\n"

TEST(claim_xpending_shapes) {
    shape_case("claim XPENDING: a status", OP_CLAIM, NULL, "+OK\r\n", &proto);
    shape_case("claim XPENDING: an element of 3", OP_CLAIM, NULL, "*1\r\n*3\r\n$3\r\n1-1\r\n$1\r\nc\r\n:5\r\n", &proto);
    shape_case("claim XPENDING: an element that is a string", OP_CLAIM, NULL, "*1\r\n$3\r\n1-1\r\n", &proto);
    shape_case("claim XPENDING: an id that is not ms-seq", OP_CLAIM, NULL,
               "*1\r\n" PEND("3\r\nabc", "1\r\nc", "5", "1"), &proto);
    shape_case("claim XPENDING: idle not a number", OP_CLAIM, NULL,
               "*1\r\n*4\r\n$3\r\n1-1\r\n$1\r\nc\r\n$3\r\nabc\r\n:1\r\n", &proto);
    shape_case("claim XPENDING: count an array", OP_CLAIM, NULL,
               "*1\r\n*4\r\n$3\r\n1-1\r\n$1\r\nc\r\n:5\r\n*0\r\n", &proto);
    shape_case("claim XPENDING: consumer an integer", OP_CLAIM, NULL,
               "*1\r\n*4\r\n$3\r\n1-1\r\n:1\r\n:5\r\n:1\r\n", &proto);
}

/* XPENDING offers an entry of another consumer, idle long enough; XCLAIM's reply is hostile. */
TEST(claim_xclaim_shapes) {
    static const struct { const char *name, *reply; int after; expect x; } cs[] = {
        { "claim XCLAIM: a status", "+OK\r\n", AFTER_CONTINUE, { A_PROTO, 0, 0, 0, 0 } },
        { "claim XCLAIM: two entries for one id", "*2\r\n" ENTRY_OK("3\r\n1-1") ENTRY_OK("3\r\n1-1"), AFTER_CONTINUE,
          { A_PROTO, 0, 0, 0, 0 } },
        { "claim XCLAIM: an entry of 3 elements", "*1\r\n*3\r\n$3\r\n1-1\r\n*0\r\n*0\r\n", AFTER_CONTINUE,
          { A_PROTO, 0, 0, 0, 0 } },
        { "claim XCLAIM: an integer entry", "*1\r\n:1\r\n", AFTER_CONTINUE, { A_PROTO, 0, 0, 0, 0 } },
        { "claim XCLAIM: half a reply, then close", "*1\r\n*2\r\n$3\r\n1-", AFTER_CLOSE, { A_IO, 0, 0, 0, 0 } },
        { "claim XCLAIM: no reply", NULL, AFTER_SILENCE, { A_TIMEOUT, 0, IO_TIMEOUT_MS - 50, 0, 0 } },
        { "claim XCLAIM: garbage", "HELLO\r\n", AFTER_CONTINUE, { A_PROTO, 0, 0, 0, 0 } },
    };
    size_t i;
    for (i = 0; i < sizeof cs / sizeof cs[0]; i++) {
        script s;
        memset(&s, 0, sizeof s);
        s.target = "XCLAIM";
        s.reply = cs[i].reply;
        s.after = cs[i].after;
        s.times = 1;
        s.ov_name[0] = "XPENDING";
        s.ov_reply[0] = "*1\r\n" PEND("3\r\n1-1", "5\r\nother", "99999", "1");
        run_case(cs[i].name, OP_CLAIM, s, &cs[i].x);
    }
}

/* A server that answers every XPENDING page with the same full page (1000 entries, none due): the scan
   must notice that the page does not advance, not loop on it. */
TEST(claim_xpending_page_that_never_advances) {
    static char page[64 * 1000 + 64];
    size_t n = 0;
    int i;
    script s;
    rsbus *bus = NULL;
    int pages;
    n += (size_t)snprintf(page + n, sizeof page - n, "*1000\r\n");
    for (i = 0; i < 1000; i++) {
        char id[32];
        int il = snprintf(id, sizeof id, "1-%d", i + 1);
        n += (size_t)snprintf(page + n, sizeof page - n, "*4\r\n$%d\r\n%s\r\n$1\r\nc\r\n:0\r\n:1\r\n", il, id);
    }
    memset(&s, 0, sizeof s);
    s.target = "NONE";
    s.ov_name[0] = "XPENDING";
    s.ov_reply[0] = page;
    s.ov_limit = 300;           /* the fake server gives up after that many pages */
    cur_case = "claim XPENDING: the same full page again and again";
    REQUIRE(start_server(&s) == 0);
    alarm(90);
    bus = open_hostile();
    REQUIRE(bus != NULL);
    {
        rsbus_claim_stats cs;
        int64_t t0 = test_now_ms();
        int r = rsbus_claim(bus, 1000, 0, &cs);
        pages = server_saw("XPENDING");
        fprintf(stderr, "  [%s] claim: %s in %lld ms: %s; XPENDING pages asked for: %d\n", cur_case,
                rsbus_result_str((rsbus_result)r), (long long)(test_now_ms() - t0), rsbus_errmsg(bus), pages);
        CHECK(r == RSBUS_OK || r == RSBUS_E_PROTOCOL);
        CHECK(pages <= 2);
    }
    alarm(0);
    rsbus_close(bus);
    stop_server();
}

TEST(dlq_list_xrange_shapes) {
    shape_case("dlq_list XRANGE: a status", OP_DLQ, NULL, "+OK\r\n", &proto);
    shape_case("dlq_list XRANGE: an integer", OP_DLQ, NULL, ":3\r\n", &proto);
    shape_case("dlq_list XRANGE: nil", OP_DLQ, NULL, "*-1\r\n", &proto);
    shape_case("dlq_list XRANGE: more entries than asked for", OP_DLQ, NULL,
               "*11\r\n" ENTRY_OK("3\r\n1-1") ENTRY_OK("3\r\n1-2") ENTRY_OK("3\r\n1-3") ENTRY_OK("3\r\n1-4")
               ENTRY_OK("3\r\n1-5") ENTRY_OK("3\r\n1-6") ENTRY_OK("3\r\n1-7") ENTRY_OK("3\r\n1-8")
               ENTRY_OK("3\r\n1-9") ENTRY_OK("4\r\n1-10") ENTRY_OK("4\r\n1-11"), &proto);
    shape_case("dlq_list XRANGE: an entry of 3 elements", OP_DLQ, NULL, "*1\r\n*3\r\n$3\r\n1-1\r\n*0\r\n*0\r\n", &proto);
    shape_case("dlq_list XRANGE: an id that is not ms-seq", OP_DLQ, NULL, "*1\r\n*2\r\n$2\r\n1-\r\n*0\r\n", &proto);
    shape_case("dlq_list XRANGE: fields as a string", OP_DLQ, NULL, "*1\r\n*2\r\n$3\r\n1-1\r\n$1\r\nx\r\n", &proto);
}

/* Well-shaped dead letters whose fields are anything: listed, with NULL where they are malformed. */
TEST(dlq_list_hostile_fields) {
    script s;
    rsbus *bus;
    rsbus_dlq_page page;
    size_t i;
    memset(&s, 0, sizeof s);
    s.target = "NONE";
    s.ov_name[0] = "XRANGE";
    s.ov_reply[0] =
        "*5\r\n"
        "*2\r\n$3\r\n1-1\r\n*2\r\n:1\r\n:2\r\n"                                    /* integer fields */
        "*2\r\n$3\r\n1-2\r\n*3\r\n$4\r\ntype\r\n$1\r\nt\r\n$9\r\ndlq_error\r\n"    /* odd count */
        "*2\r\n$3\r\n1-3\r\n$-1\r\n"                                               /* nil fields */
        "*2\r\n$3\r\n1-4\r\n*8\r\n$4\r\ntype\r\n$1\r\nt\r\n$4\r\ndata\r\n$1\r\n{\r\n"  /* bad JSON, odd dlq_* */
        "$14\r\ndlq_deliveries\r\n$3\r\nabc\r\n$13\r\ndlq_failed_at\r\n*0\r\n"
        "*2\r\n$3\r\n1-5\r\n*6\r\n$4\r\ntype\r\n$1\r\nt\r\n$4\r\ndata\r\n$2\r\n{}\r\n"
        "$9\r\ndlq_error\r\n$4\r\nboom\r\n";
    cur_case = "dlq_list: dead letters with hostile fields";
    REQUIRE(start_server(&s) == 0);
    bus = open_hostile();
    REQUIRE(bus != NULL);
    REQUIRE(rsbus_dlq_list(bus, NULL, 10, &page) == RSBUS_OK);
    CHECK_EQ_INT(page.count, 5);
    for (i = 0; i < page.count; i++) CHECK(strlen(page.entries[i].dlq_id) == 3);
    if (page.count == 5) {
        CHECK(page.entries[0].msg.type == NULL && page.entries[0].error == NULL);
        CHECK(page.entries[2].msg.type == NULL && page.entries[2].msg.data == NULL);
        CHECK(page.entries[3].msg.data == NULL);      /* not valid JSON: not handed out */
        CHECK_EQ_INT(page.entries[3].deliveries, 0);
        CHECK_EQ_STR(page.entries[4].msg.type, "t");
        CHECK_EQ_STR(page.entries[4].error, "boom");
    }
    rsbus_dlq_page_free(bus, &page);
    rsbus_close(bus);
    stop_server();
}

TEST(stream_info_shapes) {
    script s;
    rsbus *bus;
    rsbus_stream_info si;
    shape_case("stream_info XINFO: a status", OP_INFO, "XINFO", "+OK\r\n", &proto);
    shape_case("stream_info XINFO: an integer", OP_INFO, "XINFO", ":1\r\n", &proto);
    shape_case("stream_info XLEN: a status", OP_INFO, "XLEN", "+OK\r\n", &proto);
    shape_case("stream_info XLEN: an array", OP_INFO, "XLEN", "*0\r\n", &proto);
    shape_case("stream_info XLEN: garbage", OP_INFO, "XLEN", "HELLO\r\n", &proto);
    /* a map of odd length, values of the wrong types, an id far too long: defaults, no crash */
    memset(&s, 0, sizeof s);
    s.target = "NONE";
    s.ov_name[0] = "XINFO";
    s.ov_reply[0] = "*9\r\n$6\r\nlength\r\n*0\r\n$6\r\ngroups\r\n$3\r\nabc\r\n$11\r\nfirst-entry\r\n:1\r\n"
                    "$17\r\nlast-generated-id\r\n$70\r\n"
                    "1234567890123456789012345678901234567890123456789012345678901234567890\r\n"
                    "$13\r\nentries-added\r\n";
    cur_case = "stream_info XINFO: odd map, wrong types";
    REQUIRE(start_server(&s) == 0);
    bus = open_hostile();
    REQUIRE(bus != NULL);
    CHECK_EQ_INT(rsbus_stream_info_get(bus, &si), RSBUS_OK);
    CHECK_EQ_INT(si.length, 0);
    CHECK_EQ_INT(si.groups, 0);
    CHECK(strlen(si.last_id) < RSBUS_ID_SIZE);
    CHECK(si.first_id[0] == 0);
    rsbus_close(bus);
    stop_server();
}

/* rsbus_run on a server that answers every XREADGROUP with garbage: each failure drops the connection,
   and rsbus_run must back off before it reconnects (100 ms doubling), not reconnect in a tight loop. */
static volatile sig_atomic_t run_stop;
static void stop_run(int sig) { (void)sig; run_stop = 1; }

TEST(run_backs_off_from_a_server_that_always_fails) {
    static const struct { const char *name, *reply; int after; } cs[] = {
        { "rsbus_run: XREADGROUP always answered with garbage", "HELLO\r\n", AFTER_CONTINUE },
        { "rsbus_run: XREADGROUP always answered with a wrong shape", "+OK\r\n", AFTER_CONTINUE },
        { "rsbus_run: the connection always closed at XREADGROUP", NULL, AFTER_CLOSE },
    };
    size_t i;
    for (i = 0; i < sizeof cs / sizeof cs[0]; i++) {
        script s;
        rsbus *bus;
        int pings;
        int64_t t0, dt;
        memset(&s, 0, sizeof s);
        s.target = "XREADGROUP";
        s.reply = cs[i].reply;
        s.after = cs[i].after;
        s.times = 1000000;
        cur_case = cs[i].name;
        REQUIRE(start_server(&s) == 0);
        bus = open_hostile();
        REQUIRE(bus != NULL);
        run_stop = 0;
        signal(SIGALRM, stop_run);
        alarm(2);
        t0 = test_now_ms();
        CHECK_EQ_INT(rsbus_run(bus, &run_stop), RSBUS_OK);
        dt = test_now_ms() - t0;
        alarm(0);
        signal(SIGALRM, on_alarm);
        pings = server_saw("PING");
        fprintf(stderr, "  [%s] %d connections in %lld ms\n", cur_case, pings, (long long)dt);
        /* 100 + 200 + 400 + 800 ms of backoff fit in 2 s: 5 connections, 10 with jitter and slack */
        CHECK(pings <= 10);
        CHECK(dt < 2000 + MARGIN_MS);
        rsbus_close(bus);
        stop_server();
    }
}

int main(void) {
    signal(SIGPIPE, SIG_DFL);       /* rsbus must not need SIGPIPE ignored */
    signal(SIGALRM, on_alarm);
    RUN(open_ping_hostile);
    RUN(open_xgroup_hostile);
    RUN(publish_xadd_hostile);
    RUN(publish_xadd_shapes);
    RUN(publish_extra_reply_is_not_taken_for_the_next);
    RUN(poll_xreadgroup_hostile);
    RUN(poll_xreadgroup_shapes);
    RUN(poll_malformed_entries_are_dead_lettered);
    RUN(poll_deleted_entry_is_acknowledged);
    RUN(poll_dead_letter_exec_hostile);
    RUN(poll_block_silence);
    RUN(claim_xpending_hostile);
    RUN(claim_xpending_shapes);
    RUN(claim_xclaim_shapes);
    RUN(claim_xpending_page_that_never_advances);
    RUN(dlq_list_xrange_hostile);
    RUN(dlq_list_xrange_shapes);
    RUN(dlq_list_hostile_fields);
    RUN(stream_info_xinfo_hostile);
    RUN(stream_info_shapes);
    RUN(run_backs_off_from_a_server_that_always_fails);
    stop_server();
    return test_summary("test_hostile");
}
