/* Demonstrates operating rsbus from a shell: rsbusctl reads its connection from the RSBUS_* environment
   (rsbus_config_from_env), opens a publish-only bus that creates nothing in Redis, and calls the admin
   side of the API - stream and group info, consumers and their garbage collection, tail, replay of a
   range of history (rsbus_replay_range), rewinding a group (rsbus_group_rewind), dead letters (list,
   show, replay, purge), a publisher's offline spool (status, flush), health, metrics, a live "top" and
   a Prometheus exporter (rsbus_stream_snapshot served over HTTP by libmicrohttpd) - with tables for
   people and JSON (written with rsbus_jw_*) for scripts. Ages and rates use Redis's clock, never the
   local one. Only "spool" opens its bus with a spool file; every other command has the spool off: an
   admin tool reports failures, it does not spool.

       cc -std=c99 -O2 -I. examples/rsbusctl.c -o rsbusctl -lhiredis -lm
       RSBUS_URL=redis://127.0.0.1:6379 ./rsbusctl info          (./rsbusctl --help for the rest)

   With the exporter (libmicrohttpd; make does this when pkg-config finds it):
       cc -std=c99 -O2 -I. -DRSBUSCTL_EXPORTER $(pkg-config --cflags libmicrohttpd) examples/rsbusctl.c \
          -o rsbusctl -lhiredis -lm $(pkg-config --libs libmicrohttpd)

   Exit status: 0 ok, 1 a runtime failure, 2 a usage error (also: dlq purge or rewind without --yes);
   health exits 0/1/2 for HEALTHY/DEGRADED/UNHEALTHY. */
#define _POSIX_C_SOURCE 200809L
#define RSBUS_IMPLEMENTATION
#include "rsbus.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#ifdef RSBUSCTL_EXPORTER
#  include <microhttpd.h>
#endif

#define EXIT_USAGE 2
#define GO_ON (-1)          /* parse_args: no exit status yet, run the command */
#define PAGE 100            /* dead letters read per rsbus_dlq_list call */
#define HIST 20             /* rates kept for a sparkline in top */

typedef struct ctl {
    rsbus_config cfg;       /* from the environment, then the global options */
    int json;
    int group_given;        /* --group or RSBUS_GROUP: health judges that group even if it is missing */
    int partitions_given;   /* --partitions or RSBUS_PARTITIONS: no looking up the pinned count */
    const char *env_spool;  /* RSBUS_SPOOL_PATH (cfg.spool_path is NULL except for "spool") */
    rsbus *bus;
} ctl;

typedef struct command {
    const char *name;
    int (*fn)(ctl *c, const struct command *cmd, int argc, char **argv);
    const char *synopsis;   /* after "rsbusctl " */
    const char *summary;    /* one line for the tool's --help */
    const char *help;
} command;

/* ---- small helpers ---------------------------------------------------------------------- */

static volatile sig_atomic_t stop_flag;
static void on_signal(int sig) { (void)sig; stop_flag = 1; }
static void catch_signals(void) {   /* no SA_RESTART: a blocking wait returns early */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}
static void nap_ms(int64_t ms) {    /* sleeps up to ms, less once a signal asked us to stop */
    while (ms > 0 && !stop_flag) {
        int64_t slice = ms < 50 ? ms : 50;
        struct timespec ts;
        ts.tv_sec = 0;
        ts.tv_nsec = (long)slice * 1000000L;
        nanosleep(&ts, NULL);
        ms -= slice;
    }
}

static void log_stderr(void *user, rsbus_log_level level, const char *msg) {
    static const char *const names[] = { "", "error", "warning", "info", "debug" };
    (void)user;
    fprintf(stderr, "rsbusctl: rsbus %s: %s\n", names[level >= 1 && level <= 4 ? level : 0], msg);
}

/* Strict integers: optional '-', digits only, in [lo, hi]. */
static int parse_int_n(const char *s, size_t n, int64_t lo, int64_t hi, int64_t *out) {
    int64_t v = 0;
    size_t i;
    if (n == 0 || n > 18) return 0;
    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return 0;
        v = v * 10 + (s[i] - '0');
    }
    if (v < lo || v > hi) return 0;
    *out = v;
    return 1;
}
static int parse_int(const char *s, int64_t lo, int64_t hi, int64_t *out) {
    char *end;
    long long v;
    if (!s || !((s[0] >= '0' && s[0] <= '9') || (s[0] == '-' && s[1] >= '0' && s[1] <= '9'))) return 0;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno == ERANGE || *end || v < lo || v > hi) return 0;
    *out = (int64_t)v;
    return 1;
}
/* "1500" (plain: *plain = 1), or a duration "250ms", "30s", "15m", "24h", "7d"; in milliseconds. */
static int parse_duration(const char *s, int64_t *ms, int *plain) {
    static const struct { const char *unit; int64_t mul; } units[] = {
        { "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 }, { "d", 86400000 } };
    char num[32];
    size_t n = strspn(s, "0123456789"), k;
    int64_t v;
    if (n == 0 || n >= sizeof num) return 0;
    memcpy(num, s, n);
    num[n] = 0;
    if (!parse_int(num, 0, INT64_MAX, &v)) return 0;
    *plain = s[n] == 0;
    if (*plain) { *ms = v; return 1; }
    for (k = 0; k < sizeof units / sizeof units[0]; k++)
        if (!strcmp(s + n, units[k].unit)) {
            if (v > INT64_MAX / units[k].mul) return 0;
            *ms = v * units[k].mul;
            return 1;
        }
    return 0;
}
static int id_ok(const char *s) {   /* a stream id as the library takes it: "ms" or "ms-seq" */
    size_t n = strlen(s), d = strspn(s, "0123456789");
    if (n == 0 || n >= RSBUS_ID_SIZE || d == 0) return 0;
    return d == n || (s[d] == '-' && s[d + 1] && strspn(s + d + 1, "0123456789") == n - d - 1);
}
static int64_t id_ms(const char *id) {   /* the milliseconds part of a stream id (Redis's clock) */
    int64_t v = 0;
    const char *p;
    for (p = id; p && *p >= '0' && *p <= '9' && v < INT64_MAX / 10 - 9; p++) v = v * 10 + (*p - '0');
    return v;
}
/* A stream id "ms-seq" or "ms" whose parts fit 64 bits: 1 and its parts (seq 0 for "ms"), else 0. */
static int id_parse(const char *s, uint64_t *ms, uint64_t *seq) {
    char *end;
    if (!id_ok(s)) return 0;
    errno = 0;
    *ms = (uint64_t)strtoull(s, &end, 10);
    *seq = 0;
    if (errno == 0 && *end == '-') *seq = (uint64_t)strtoull(end + 1, &end, 10);
    return errno == 0 && *end == 0;
}
static int id_cmp(uint64_t ms1, uint64_t seq1, uint64_t ms2, uint64_t seq2) {
    return ms1 != ms2 ? (ms1 < ms2 ? -1 : 1) : seq1 != seq2 ? (seq1 < seq2 ? -1 : 1) : 0;
}

/* A point of the stream given on the command line: "-" or "+" (the ends, where allowed), a stream id
   "ms-seq", epoch milliseconds "ms" (that whole millisecond), or a duration ("24h") meaning that long
   ago by Redis's clock. */
typedef enum point_kind { POINT_END, POINT_ID, POINT_MS, POINT_AGO } point_kind;
typedef struct point {
    point_kind kind;
    int64_t ms;                     /* POINT_MS: epoch ms; POINT_AGO: the duration */
    char text[RSBUS_ID_SIZE];       /* POINT_END, POINT_ID: as given; POINT_MS once resolved: the ms */
} point;
static int point_parse(const char *s, int ends, point *p) {
    uint64_t ms, seq;
    int plain;
    memset(p, 0, sizeof *p);
    if (ends && (!strcmp(s, "-") || !strcmp(s, "+"))) p->kind = POINT_END;
    else if (strchr(s, '-')) {
        if (!id_parse(s, &ms, &seq)) return 0;
        p->kind = POINT_ID;
    } else {
        if (!parse_duration(s, &p->ms, &plain)) return 0;
        p->kind = plain ? POINT_MS : POINT_AGO;
        return 1;
    }
    snprintf(p->text, sizeof p->text, "%s", s);
    return 1;
}
/* A duration becomes epoch ms by Redis's clock (now); POINT_MS gets its text. */
static void point_resolve(point *p, int64_t now) {
    if (p->kind == POINT_AGO) { p->ms = now > p->ms ? now - p->ms : 0; p->kind = POINT_MS; }
    if (p->kind == POINT_MS) snprintf(p->text, sizeof p->text, "%lld", (long long)p->ms);
}
/* The first (high 0) or last (high 1) id a resolved point covers. */
static void point_bound(const point *p, int high, uint64_t *ms, uint64_t *seq) {
    if (p->kind == POINT_END) { *ms = *seq = p->text[0] == '+' ? UINT64_MAX : 0; return; }
    if (p->kind == POINT_ID) { (void)id_parse(p->text, ms, seq); return; }
    *ms = (uint64_t)p->ms;
    *seq = high ? UINT64_MAX : 0;
}

/* Length of the UTF-8 sequence at p (1..4), or 0 where the bytes are not UTF-8. */
static size_t utf8_len(const unsigned char *p, size_t avail) {
    size_t n, i;
    if (p[0] < 0x80) return 1;
    if (p[0] >= 0xC2 && p[0] <= 0xDF) n = 2;
    else if (p[0] >= 0xE0 && p[0] <= 0xEF) n = 3;
    else if (p[0] >= 0xF0 && p[0] <= 0xF4) n = 4;
    else return 0;
    if (avail < n) return 0;
    for (i = 1; i < n; i++) if ((p[i] & 0xC0) != 0x80) return 0;
    if ((p[0] == 0xE0 && p[1] < 0xA0) || (p[0] == 0xED && p[1] >= 0xA0) ||
        (p[0] == 0xF0 && p[1] < 0x90) || (p[0] == 0xF4 && p[1] >= 0x90)) return 0;
    return n;
}

/* Text for a terminal: at most max bytes of s (then "..."), with control characters (C0, DEL, C1) and
   bytes that are not UTF-8 written as escapes, so that no field can move the cursor or forge a line.
   NULL prints as "-". out needs 4 * max + 8 bytes. */
static const char *esc_n(const char *s, size_t n, size_t max, char *out, size_t size);
static const char *esc(const char *s, size_t max, char *out, size_t size) {
    return s ? esc_n(s, strlen(s), max, out, size) : "-";
}
/* The same for n bytes that may hold NULs (a field of a foreign entry): a NUL is written \x00. */
static const char *esc_n(const char *s, size_t n, size_t max, char *out, size_t size) {
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, j = 0;
    while (i < n && j + 12 < size) {
        size_t len = utf8_len(p + i, n - i);
        if (i + (len ? len : 1) > max) break;
        if (len == 1 && p[i] >= 0x20 && p[i] != 0x7f) out[j++] = (char)p[i];
        else if (len == 1 && (p[i] == '\n' || p[i] == '\t' || p[i] == '\r'))
            j += (size_t)snprintf(out + j, size - j, "\\%c", p[i] == '\n' ? 'n' : p[i] == '\t' ? 't' : 'r');
        else if (len == 2 && p[i] == 0xC2 && p[i + 1] < 0xA0)
            j += (size_t)snprintf(out + j, size - j, "\\u%04x", (unsigned)p[i + 1]);
        else if (len > 1) { memcpy(out + j, p + i, len); j += len; }
        else j += (size_t)snprintf(out + j, size - j, "\\x%02x", (unsigned)p[i]);
        i += len ? len : 1;
    }
    if (i < n) { memcpy(out + j, "...", 3); j += 3; }
    out[j] = 0;
    return out;
}

/* "850ms", "12.3s", "5m03s", "2h05m", "3d04h" */
static const char *fmt_age(int64_t ms, char *out, size_t size) {
    long long s;
    if (ms < 0) ms = 0;
    s = (long long)(ms / 1000);
    if (ms < 1000) snprintf(out, size, "%lldms", (long long)ms);
    else if (ms < 60000) snprintf(out, size, "%.1fs", (double)ms / 1000.0);
    else if (s < 3600) snprintf(out, size, "%lldm%02llds", s / 60, s % 60);
    else if (s < 86400) snprintf(out, size, "%lldh%02lldm", s / 3600, s / 60 % 60);
    else snprintf(out, size, "%lldd%02lldh", s / 86400, s / 3600 % 24);
    return out;
}
static const char *fmt_utc(int64_t ms, char *out, size_t size) {   /* "2024-05-01 12:00:00.123 UTC" */
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    char day[32];
    if (ms < 0 || !gmtime_r(&t, &tm) || !strftime(day, sizeof day, "%Y-%m-%d %H:%M:%S", &tm)) return "?";
    snprintf(out, size, "%s.%03d UTC", day, (int)(ms % 1000));
    return out;
}

/* A string from Redis into JSON: bytes that are not UTF-8 become '?' (the writer refuses them). */
static void jw_text(rsbus_jw *w, const char *s) {
    size_t n, i = 0, len;
    char *copy;
    if (!s) { rsbus_jw_null(w); return; }
    n = strlen(s);
    while (i < n && (len = utf8_len((const unsigned char *)s + i, n - i)) != 0) i += len;
    if (i == n) { rsbus_jw_strn(w, s, n); return; }
    if (!(copy = (char *)malloc(n + 1))) { rsbus_jw_null(w); return; }
    for (i = 0; i < n; i += len) {
        len = utf8_len((const unsigned char *)s + i, n - i);
        if (len) memcpy(copy + i, s + i, len);
        else { copy[i] = '?'; len = 1; }
    }
    rsbus_jw_strn(w, copy, n);
    free(copy);
}
static void jw_kstr(rsbus_jw *w, const char *k, const char *v) { rsbus_jw_key(w, k); jw_text(w, v); }
/* n bytes under key k when they are UTF-8 (NULs and control characters escaped by the writer), else
   their hex digits under k + "_hex": nothing is lost or replaced. */
static void jw_bytes(rsbus_jw *w, const char *k, const char *s, size_t n) {
    size_t i = 0, len;
    char key[32];
    while (i < n && (len = utf8_len((const unsigned char *)s + i, n - i)) != 0) i += len;
    if (i == n) { rsbus_jw_key(w, k); rsbus_jw_strn(w, s, n); return; }
    snprintf(key, sizeof key, "%s_hex", k);
    rsbus_jw_key(w, key);
    {
        static const char hexd[] = "0123456789abcdef";
        char *h = (char *)malloc(2 * n + 1);
        if (!h) { rsbus_jw_null(w); return; }
        for (i = 0; i < n; i++) { h[2 * i] = hexd[(unsigned char)s[i] >> 4]; h[2 * i + 1] = hexd[(unsigned char)s[i] & 15]; }
        rsbus_jw_strn(w, h, 2 * n);
        free(h);
    }
}
static void jw_kint(rsbus_jw *w, const char *k, int64_t v) { rsbus_jw_key(w, k); rsbus_jw_int(w, v); }
/* The fields of an event after its type and id, as tail, replay and dlq show write them. */
static void jw_event_fields(rsbus_jw *w, const rsbus_msg *m) {
    jw_kstr(w, "key", m->key);
    jw_kstr(w, "source", m->source);
    jw_kstr(w, "tenant", m->tenant);
    jw_kstr(w, "correlation_id", m->correlation_id);
    jw_kstr(w, "traceparent", m->traceparent);
    jw_kstr(w, "replay_of", m->replay_of);
    jw_kint(w, "version", m->version);
    jw_kint(w, "ts_ms", m->ts_ms);
    rsbus_jw_key(w, "data");   /* the payload as JSON text in a string; null when it was not valid JSON */
    jw_text(w, m->data);
}
static int jw_print(rsbus_jw *w) {
    size_t n;
    const char *s = rsbus_jw_result(w, &n);
    int rc = 0;
    if (s) { fwrite(s, 1, n, stdout); putchar('\n'); }
    else { fprintf(stderr, "rsbusctl: could not write the JSON output\n"); rc = 1; }
    rsbus_jw_free(w);
    return rc;
}

/* Prints valid JSON indented, two spaces a level, strings kept as they are (C1 controls and DEL
   escaped as \u00XX, which leaves the JSON valid). */
static void print_pretty(const char *s, size_t n, int indent) {
    size_t i, j;
    int depth = 0, in_str = 0;
    for (i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (in_str) {
            if (ch == '\\' && i + 1 < n) { putchar('\\'); putchar(s[++i]); }
            else if (ch == 0x7f) fputs("\\u007f", stdout);
            else if (ch == 0xC2 && i + 1 < n && (unsigned char)s[i + 1] < 0xA0)
                printf("\\u%04x", (unsigned)(unsigned char)s[++i]);
            else { putchar(ch); if (ch == '"') in_str = 0; }
            continue;
        }
        switch (ch) {
        case ' ': case '\t': case '\n': case '\r': break;
        case '"': in_str = 1; putchar('"'); break;
        case '{': case '[':
            for (j = i + 1; j < n && strchr(" \t\r\n", s[j]); j++) {}
            if (j < n && s[j] == (ch == '{' ? '}' : ']')) { printf("%c%c", ch, s[j]); i = j; break; }
            depth++;
            printf("%c\n%*s", ch, indent + 2 * depth, "");
            break;
        case '}': case ']': depth--; printf("\n%*s%c", indent + 2 * depth, "", ch); break;
        case ',': printf(",\n%*s", indent + 2 * depth, ""); break;
        case ':': fputs(": ", stdout); break;
        default: putchar(ch); break;
        }
    }
    putchar('\n');
}

/* ---- arguments, help, errors ------------------------------------------------------------- */

static const char tool_usage[] =
    "usage: rsbusctl [--url URL] [--stream S] [--group G] [--partitions N] [--json] COMMAND [ARGS]\n"
    "\n"
    "Operates an rsbus event bus on Redis Streams. URL, stream and group default to the RSBUS_*\n"
    "environment (RSBUS_URL, RSBUS_STREAM, RSBUS_GROUP, RSBUS_TENANT, RSBUS_CONNECT_TIMEOUT_MS, ...),\n"
    "then to redis://127.0.0.1:6379, stream \"rsbus:events\" and group \"default\". rsbusctl creates no\n"
    "group and no stream (except by publishing: pub, spool flush), and reads without taking entries from\n"
    "any consumer. Only \"spool\" uses a spool file (RSBUS_SPOOL_PATH): the other commands never spool.\n"
    "\n"
    "commands:\n";
static const char tool_options[] =
    "\n"
    "options:\n"
    "  --url URL      redis://[user:pass@]host[:port][/db], rediss://..., unix:///path[?db=N]\n"
    "  --stream S     stream key\n"
    "  --group G      consumer group (consumers, rewind, health)\n"
    "  --partitions N the stream's partition count (default: the count pinned in Redis, if any)\n"
    "  --json         JSON output (info, consumers, tail, replay, rewind, dlq ls, dlq show, spool,\n"
    "                 health)\n"
    "  -h, --help     this text; \"rsbusctl COMMAND --help\" for a command\n"
    "  --version      rsbus version\n"
    "\n"
    "exit status: 0 ok, 1 failure, 2 usage error (also dlq purge, rewind without --yes);\n"
    "health: 0 HEALTHY, 1 DEGRADED, 2 UNHEALTHY\n";

static void print_help(const command *cmd) {
    printf("usage: rsbusctl %s\n\n%s", cmd->synopsis, cmd->help);
}
static int usage_error(const command *cmd, const char *what, const char *arg) {
    char buf[300];
    fprintf(stderr, "rsbusctl %s: %s%s%s\nusage: rsbusctl %s\n(rsbusctl %s --help for more)\n", cmd->name, what,
            arg ? " " : "", arg ? esc(arg, 64, buf, sizeof buf) : "", cmd->synopsis, cmd->name);
    return EXIT_USAGE;
}
static int fail(ctl *c, const char *what, rsbus_result r) {
    fprintf(stderr, "rsbusctl: %s: %s: %s\n", what, rsbus_result_str(r), c->bus ? rsbus_errmsg(c->bus) : "");
    return 1;
}
/* Opens the publish-only bus (after the options: they may name the stream and group). err NULL: a
   failure is printed. */
/* rsbus_open; on a partitioned stream, without --partitions (or RSBUS_PARTITIONS), with the count pinned
   in Redis, which rsbus_open's refusal names ("... has N partitions (pinned in {K}:meta)"). */
static rsbus *open_pinned(const ctl *c, rsbus_config *cfg, rsbus_error *ep) {
    rsbus *bus = rsbus_open(cfg, ep);
    const char *pinned;
    if (!bus && ep->code == RSBUS_E_ARG && !c->partitions_given &&
        (pinned = strstr(ep->msg, " partitions (pinned in ")) != NULL) {
        const char *d = pinned;
        int64_t n;
        while (d > ep->msg && d[-1] >= '0' && d[-1] <= '9') d--;
        if (d < pinned && parse_int_n(d, (size_t)(pinned - d), 2, 256, &n)) {
            cfg->partitions = (int)n;
            bus = rsbus_open(cfg, ep);
        }
    }
    return bus;
}
static rsbus *open_bus(ctl *c, rsbus_error *err) {
    rsbus_error e, *ep = err ? err : &e;
    if (!c->cfg.stream) c->cfg.stream = "rsbus:events";
    if (!c->cfg.group) c->cfg.group = "default";
    c->bus = open_pinned(c, &c->cfg, ep);
    if (!c->bus && !err) fprintf(stderr, "rsbusctl: cannot open the bus: %s: %s\n", rsbus_result_str(e.code), e.msg);
    return c->bus;
}

/* --url, --stream, --group (also "--url=..."), before or after the command: 1 taken (*i moved past its
   value), 0 not one of them, -1 its value is missing. */
static int global_opt(ctl *c, int argc, char **argv, int *i) {
    const char *a = argv[*i], *eq = strchr(a, '=');
    size_t len = eq ? (size_t)(eq - a) : strlen(a);
    const char **dst;
    if (len == 5 && !strncmp(a, "--url", len)) dst = &c->cfg.url;
    else if (len == 8 && !strncmp(a, "--stream", len)) dst = &c->cfg.stream;
    else if (len == 7 && !strncmp(a, "--group", len)) { dst = &c->cfg.group; c->group_given = 1; }
    else if (len == 12 && !strncmp(a, "--partitions", len)) {
        const char *v;
        int64_t n;
        if (eq) v = eq + 1;
        else if (*i + 1 >= argc) return -1;
        else v = argv[++*i];
        if (!parse_int_n(v, strlen(v), 0, 256, &n)) return -2;
        c->cfg.partitions = (int)n;
        c->partitions_given = 1;
        return 1;
    }
    else return 0;
    if (eq) { *dst = eq + 1; return 1; }
    if (*i + 1 >= argc) return -1;
    *dst = argv[++*i];
    return 1;
}

typedef struct optspec {
    const char *name;       /* "--count" */
    const char **value;     /* an option with a value: where it goes */
    int *flag;              /* a flag: set to 1 */
} optspec;

/* Parses a command's arguments: the options in specs (up to a NULL name), --json, --help, and
   min_pos..max_pos positional ones ("--" ends the options). Returns GO_ON, or an exit status. */
static int parse_args(ctl *c, const command *cmd, int argc, char **argv, const optspec *specs,
                      const char **pos, int min_pos, int max_pos) {
    int i, k, n = 0, opts = 1;
    for (i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (opts && a[0] == '-' && a[1] && !(a[1] >= '0' && a[1] <= '9')) {
            if (!strcmp(a, "--")) { opts = 0; continue; }
            if (!strcmp(a, "--help") || !strcmp(a, "-h")) { print_help(cmd); return 0; }
            if (!strcmp(a, "--json")) { c->json = 1; continue; }
            if ((k = global_opt(c, argc, argv, &i)) != 0) {
                if (k == -2) return usage_error(cmd, "--partitions takes 0..256", NULL);
                if (k < 0) return usage_error(cmd, "missing value for", a);
                continue;
            }
            for (k = 0; specs && specs[k].name; k++) {
                size_t len = strlen(specs[k].name);
                if (strncmp(a, specs[k].name, len) != 0 || (a[len] && a[len] != '=')) continue;
                if (specs[k].flag) {
                    if (a[len]) return usage_error(cmd, "this option takes no value:", a);
                    *specs[k].flag = 1;
                } else if (a[len] == '=') *specs[k].value = a + len + 1;
                else if (i + 1 < argc) *specs[k].value = argv[++i];
                else return usage_error(cmd, "missing value for", a);
                break;
            }
            if (!specs || !specs[k].name)   /* the name only: a mistyped --url=... may hold a password */
                return usage_error(cmd, "unknown option", strchr(a, '=') ? "(one with '=')" : a);
            continue;
        }
        if (n >= max_pos) return usage_error(cmd, "unexpected argument", a);
        pos[n++] = a;
    }
    if (n < min_pos) return usage_error(cmd, "missing argument", NULL);
    return GO_ON;
}

/* ---- pub, tail ----------------------------------------------------------------------------- */

/* pub --field NAME=VALUE ...: exactly those fields, in order (rsbus_publish_fields), for a stream whose
   consumers expect another layout. */
static int pub_fields(ctl *c, const command *cmd, int argc, char **argv) {
    rsbus_field *f = (rsbus_field *)calloc((size_t)argc + 1, sizeof *f);
    char **rest = (char **)calloc((size_t)argc + 1, sizeof *rest);
    const char *key = NULL;
    const optspec specs[] = { { "--key", &key, NULL }, { NULL, NULL, NULL } };
    char sid[RSBUS_ID_SIZE];
    size_t nf = 0;
    int i, nrest = 0, rc;
    rsbus_result r;
    if (!f || !rest) { free(f); free((void *)rest); fprintf(stderr, "rsbusctl: out of memory\n"); return 1; }
    for (i = 0; i < argc; i++) {
        const char *a = argv[i], *v, *eq;
        if (!strcmp(a, "--field") || !strncmp(a, "--field=", 8)) {
            if (a[7] == '=') v = a + 8;
            else if (i + 1 < argc) v = argv[++i];
            else { rc = usage_error(cmd, "missing value for", a); goto out; }
            eq = strchr(v, '=');
            if (!eq || eq == v) { rc = usage_error(cmd, "--field takes NAME=VALUE (a non-empty name), not", v); goto out; }
            f[nf].name = v; f[nf].name_len = (size_t)(eq - v);
            f[nf].value = eq + 1; f[nf].value_len = strlen(eq + 1);
            nf++;
        } else {
            rest[nrest++] = argv[i];
        }
    }
    rc = parse_args(c, cmd, nrest, rest, specs, NULL, 0, 0);
    if (rc != GO_ON) goto out;
    rc = 1;
    if (!open_bus(c, NULL)) goto out;
    if ((r = rsbus_publish_fields(c->bus, key, f, nf, sid)) < 0) { rc = fail(c, "pub", r); goto out; }
    printf("%s\n", sid[0] ? sid : "(spooled)");
    rc = 0;
out:
    free(f);
    free((void *)rest);
    return rc;
}

static int cmd_pub(ctl *c, const command *cmd, int argc, char **argv) {
    const char *pos[2];
    rsbus_event ev;
    char sid[RSBUS_ID_SIZE];
    rsbus_result r;
    int i, rc;
    for (i = 0; i < argc && strcmp(argv[i], "--"); i++)
        if (!strcmp(argv[i], "--field") || !strncmp(argv[i], "--field=", 8)) return pub_fields(c, cmd, argc, argv);
    rc = parse_args(c, cmd, argc, argv, NULL, pos, 2, 2);
    if (rc != GO_ON) return rc;
    if (!open_bus(c, NULL)) return 1;
    memset(&ev, 0, sizeof ev);
    ev.type = pos[0];
    ev.data = pos[1];
    if ((r = rsbus_publish(c->bus, &ev, sid)) < 0) return fail(c, "pub", r);
    printf("%s\n", sid);
    return 0;
}

/* ---- events, as tail and replay print them -------------------------------------------------- */

/* --foreign (tail, replay): entries another program wrote are shown too. Such an entry is "foreign"
   when it lacks rsbus's type or JSON payload, or carries fields rsbus does not write; its fields are then
   listed, every one, binary-safe. The names of rsbus's type, id and data fields come from the config
   (RSBUS_TYPE_FIELD, ...). */
static const rsbus_config *foreign_cfg;   /* set by --foreign */
static int own_field(const rsbus_field *f) {
    static const char *const names[] = { "ts", "v", "key", "src", "tenant", "corr", "trace", "replay_of", "replay_for" };
    const char *mine[3];
    size_t k;
    mine[0] = foreign_cfg->type_field ? foreign_cfg->type_field : "type";
    mine[1] = foreign_cfg->id_field ? foreign_cfg->id_field : "id";
    mine[2] = foreign_cfg->data_field ? foreign_cfg->data_field : "data";
    for (k = 0; k < 3; k++) if (f->name_len == strlen(mine[k]) && !memcmp(f->name, mine[k], f->name_len)) return 1;
    for (k = 0; k < sizeof names / sizeof names[0]; k++)
        if (f->name_len == strlen(names[k]) && !memcmp(f->name, names[k], f->name_len)) return 1;
    return 0;
}
static int is_foreign(const rsbus_msg *m) {
    size_t i;
    if (!foreign_cfg) return 0;
    if (!m->type[0] || !m->data || rsbus_json_validate(m->data, m->data_len, NULL) != RSBUS_OK) return 1;
    for (i = 0; i < m->field_count; i++) if (!own_field(&m->fields[i])) return 1;
    return 0;
}

/* One event as a JSON object: its stream id and when it was added (the id's milliseconds: Redis's
   clock), its fields, and the payload as JSON text in a string (as dlq show prints it). A foreign entry
   (--foreign) adds "foreign": true and "fields": every field in order, each {"name", "value"}, with
   "name_hex"/"value_hex" (hex digits) in their place for bytes that are not UTF-8. */
static void jw_event(rsbus_jw *w, const rsbus_msg *m) {
    rsbus_jw_obj(w);
    jw_kstr(w, "stream_id", m->stream_id);
    jw_kint(w, "added_ms", id_ms(m->stream_id));
    jw_kstr(w, "type", m->type);
    jw_kstr(w, "id", m->id);
    jw_event_fields(w, m);
    if (is_foreign(m)) {
        size_t i;
        rsbus_jw_key(w, "foreign");
        rsbus_jw_bool(w, 1);
        rsbus_jw_key(w, "fields");
        rsbus_jw_arr(w);
        for (i = 0; i < m->field_count; i++) {
            rsbus_jw_obj(w);
            jw_bytes(w, "name", m->fields[i].name, m->fields[i].name_len);
            jw_bytes(w, "value", m->fields[i].value, m->fields[i].value_len);
            rsbus_jw_obj_end(w);
        }
        rsbus_jw_arr_end(w);
    }
    rsbus_jw_obj_end(w);
}

/* A foreign entry's row followed by one line per field, "    NAME = VALUE" (each escaped, values cut
   after 200 bytes), malloc'd. */
static char *foreign_text(const rsbus_msg *m, const char *row, size_t n) {
    size_t i, cap = n + 1 + m->field_count * 1800, len = n;
    char *out = (char *)malloc(cap), name[600], value[900];
    if (!out) return NULL;
    memcpy(out, row, n);
    for (i = 0; i < m->field_count; i++)
        len += (size_t)snprintf(out + len, cap - len, "\n      %s = %s",
                                esc_n(m->fields[i].name, m->fields[i].name_len, 128, name, sizeof name),
                                esc_n(m->fields[i].value, m->fields[i].value_len, 200, value, sizeof value));
    out[len] = 0;
    return out;
}

/* An event as text to print later (the message is only valid during the callback), malloc'd, NULL when
   out of memory: the table's columns after the stream id and age - type, event id and the first 80
   bytes of the payload, escaped - or with json the JSON object. */
static char *event_text(const rsbus_msg *m, int json) {
    char b1[600], b2[200], b3[600], line[1500], *copy = NULL;
    const char *s = line;
    size_t n;
    rsbus_jw w;
    if (json) {
        rsbus_jw_init_alloc(&w, NULL);
        jw_event(&w, m);
        s = rsbus_jw_result(&w, &n);
    } else {
        n = (size_t)snprintf(line, sizeof line, "%-24s %-32s %s", m->type[0] ? esc(m->type, 128, b1, sizeof b1) : "(foreign)",
                             esc(m->id, 40, b2, sizeof b2),
                             m->data ? esc_n(m->data, m->data_len, 80, b3, sizeof b3) : "-");
        if (is_foreign(m)) return foreign_text(m, line, n);
    }
    if (s && (copy = (char *)malloc(n + 1)) != NULL) memcpy(copy, s, n + 1);
    if (json) rsbus_jw_free(&w);
    return copy;
}
/* Prints an event_text: a table row "STREAM-ID AGE COLUMNS" (age by Redis's clock: now; 0 unknown) with
   its newline, or the JSON object alone (the caller separates them). */
static void event_print(const char *sid, const char *text, int json, int64_t now) {
    char age[32];
    if (json) fputs(text, stdout);
    else printf("%-20s %9s  %s\n", sid, now ? fmt_age(now - id_ms(sid), age, sizeof age) : "?", text);
}

typedef struct tail_line { char sid[RSBUS_ID_SIZE]; char *text; } tail_line;
typedef struct tail_state { tail_line *lines; size_t n, cap; int64_t want, got; int json, oom; } tail_state;

/* Called by rsbus_tail for each entry: keeps its text (the age is added once the batch is in, with one
   TIME for all of it). Returns 1 to stop once --count entries are there. */
static int tail_collect(const rsbus_msg *m, void *user) {
    tail_state *st = (tail_state *)user;
    tail_line *l;
    if (st->want && st->got >= st->want) return 1;
    if (st->n == st->cap) {
        size_t cap = st->cap ? st->cap * 2 : 16;
        tail_line *p = (tail_line *)realloc(st->lines, cap * sizeof *p);
        if (!p) { st->oom = 1; return 1; }
        st->lines = p;
        st->cap = cap;
    }
    l = &st->lines[st->n];
    if (!(l->text = event_text(m, st->json))) { st->oom = 1; return 1; }
    snprintf(l->sid, sizeof l->sid, "%s", m->stream_id);
    st->n++;
    st->got++;
    return 0;
}

static int cmd_tail(ctl *c, const command *cmd, int argc, char **argv) {
    const char *count = NULL;
    int foreign = 0;
    const optspec specs[] = { { "--count", &count, NULL }, { "--foreign", NULL, &foreign }, { NULL, NULL, NULL } };
    tail_state st;
    rsbus_stream_info si;
    char last[RSBUS_ID_SIZE], buf[900];
    rsbus_result r;
    int down = 0, rc = parse_args(c, cmd, argc, argv, specs, NULL, 0, 0);
    if (rc != GO_ON) return rc;
    memset(&st, 0, sizeof st);
    st.json = c->json;
    if (count && !parse_int(count, 1, INT64_MAX, &st.want)) return usage_error(cmd, "--count must be a positive integer, not", count);
    if (foreign) { c->cfg.accept_foreign = 1; foreign_cfg = &c->cfg; }
    if (!open_bus(c, NULL)) return 1;
    /* start after the newest entry now, and say so: whatever is published after this line is shown */
    r = rsbus_stream_info_get(c->bus, &si);
    if (r == RSBUS_E_NOTFOUND) strcpy(last, "0-0");
    else if (r < 0) return fail(c, "tail", r);
    else snprintf(last, sizeof last, "%s", si.last_id[0] ? si.last_id : "0-0");
    catch_signals();   /* before the banner: a script may signal us as soon as it sees it */
    fprintf(stderr, "tailing %s after %s (Ctrl-C to stop)\n", esc(c->cfg.stream, 200, buf, sizeof buf), last);
    while (!stop_flag && !st.oom && !(st.want && st.got >= st.want)) {
        int64_t now = 0;
        size_t i;
        int n = rsbus_tail(c->bus, last, 1000, tail_collect, &st);
        if (n < 0) {
            if (stop_flag) break;
            if (n != RSBUS_E_IO && n != RSBUS_E_TIMEOUT) { free(st.lines); return fail(c, "tail", (rsbus_result)n); }
            if (!down) fprintf(stderr, "rsbusctl: tail: %s: %s; retrying every second\n",
                               rsbus_result_str((rsbus_result)n), rsbus_errmsg(c->bus));
            down = 1;
            nap_ms(1000);
            continue;
        }
        if (n > (int)st.n && !st.oom && !(st.want && st.got >= st.want))
            fprintf(stderr, "rsbusctl: tail: skipped %d malformed entries%s\n", n - (int)st.n,
                    foreign ? "" : " (--foreign shows entries other programs wrote)");
        if (down) fprintf(stderr, "rsbusctl: tail: connected again\n");
        down = 0;
        if (st.n && !st.json && rsbus_server_time_ms(c->bus, &now) < 0) now = 0;
        for (i = 0; i < st.n; i++) {   /* --json: one object a line */
            event_print(st.lines[i].sid, st.lines[i].text, st.json, now);
            if (st.json) putchar('\n');
            free(st.lines[i].text);
        }
        st.n = 0;
        fflush(stdout);
    }
    free(st.lines);
    if (st.oom) return fail(c, "tail", RSBUS_E_NOMEM);
    return 0;
}

/* ---- replay, rewind --------------------------------------------------------------------------- */

typedef struct replay_ctx { int64_t now, want, got; int json, oom; } replay_ctx;

/* Called by rsbus_replay_range for each entry, oldest first: prints it at once. */
static int replay_one(const rsbus_msg *m, void *user) {
    replay_ctx *x = (replay_ctx *)user;
    char *text = event_text(m, x->json);
    if (!text) { x->oom = 1; return 1; }
    if (x->json) fputs(x->got ? ",\n" : "[\n", stdout);
    event_print(m->stream_id, text, x->json, x->now);
    free(text);
    x->got++;
    return x->want && x->got >= x->want;
}

static int cmd_replay(ctl *c, const command *cmd, int argc, char **argv) {
    const char *from = "-", *to = "+", *count = NULL;
    int foreign = 0;
    const optspec specs[] = { { "--from", &from, NULL }, { "--to", &to, NULL }, { "--count", &count, NULL },
                              { "--foreign", NULL, &foreign }, { NULL, NULL, NULL } };
    point pf, pt;
    replay_ctx x;
    rsbus_stream_info si;
    rsbus_result r;
    uint64_t m1, s1, m2, s2;
    char b1[600];
    int rc = parse_args(c, cmd, argc, argv, specs, NULL, 0, 0);
    if (rc != GO_ON) return rc;
    memset(&x, 0, sizeof x);
    x.json = c->json;
    if (!point_parse(from, 1, &pf))
        return usage_error(cmd, "--from takes -, a stream id, epoch milliseconds or a duration (24h), not", from);
    if (!point_parse(to, 1, &pt))
        return usage_error(cmd, "--to takes +, a stream id, epoch milliseconds or a duration (24h), not", to);
    if (count && !parse_int(count, 1, INT64_MAX, &x.want)) return usage_error(cmd, "--count must be a positive integer, not", count);
    if (foreign) { c->cfg.accept_foreign = 1; foreign_cfg = &c->cfg; }
    if (!open_bus(c, NULL)) return 1;
    if ((r = rsbus_server_time_ms(c->bus, &x.now)) < 0) return fail(c, "replay", r);   /* ages, durations */
    if ((r = rsbus_stream_info_get(c->bus, &si)) < 0) {
        if (r != RSBUS_E_NOTFOUND) return fail(c, "replay", r);
        fprintf(stderr, "rsbusctl: replay: no stream %s\n", esc(c->cfg.stream, 200, b1, sizeof b1));
        return 1;
    }
    point_resolve(&pf, x.now);
    point_resolve(&pt, x.now);
    point_bound(&pf, 0, &m1, &s1);
    point_bound(&pt, 1, &m2, &s2);
    if (id_cmp(m1, s1, m2, s2) > 0)
        fprintf(stderr, "rsbusctl: replay: --from %s is after --to %s: the range is empty\n", pf.text, pt.text);
    r = rsbus_replay_range(c->bus, pf.text, pt.text, replay_one, &x);
    if (x.json && (x.got || r == RSBUS_OK)) fputs(x.got ? "\n]\n" : "[]\n", stdout);
    if (r < 0) return fail(c, "replay", r);
    if (x.oom) return fail(c, "replay", RSBUS_E_NOMEM);
    fprintf(stderr, "%lld events of %s from %s to %s%s\n", (long long)x.got, esc(c->cfg.stream, 200, b1, sizeof b1),
            pf.text, pt.text, x.want && x.got >= x.want ? " (--count reached)" : "");
    return 0;
}

/* The id to give XGROUP SETID for a rewind target: "$", a stream id as given (the group gets the entries
   after it), or for milliseconds the id just before that millisecond (it gets the entries from then on). */
static void rewind_id(const point *p, char out[RSBUS_ID_SIZE]) {
    if (p->kind == POINT_ID || p->kind == POINT_END) snprintf(out, RSBUS_ID_SIZE, "%s", p->text);
    else if (p->ms <= 0) strcpy(out, "0");
    else snprintf(out, RSBUS_ID_SIZE, "%lld-%llu", (long long)(p->ms - 1), (unsigned long long)UINT64_MAX);
}

static int cmd_rewind(ctl *c, const command *cmd, int argc, char **argv) {
    const char *pos[1] = { NULL };
    int yes = 0;
    const optspec specs[] = { { "--yes", NULL, &yes }, { NULL, NULL, NULL } };
    point p;
    rsbus_group_info before, after;
    rsbus_result r;
    int64_t now = 0;
    uint64_t m1, s1, m2, s2;
    char id[RSBUS_ID_SIZE], b1[300], b2[600];
    int rc = parse_args(c, cmd, argc, argv, specs, pos, 1, 1);
    if (rc != GO_ON) return rc;
    if (!strcmp(pos[0], "$")) { memset(&p, 0, sizeof p); p.kind = POINT_END; strcpy(p.text, "$"); }
    else if (!point_parse(pos[0], 0, &p))
        return usage_error(cmd, "rewind takes a stream id, 0, $, epoch milliseconds or a duration (24h), not", pos[0]);
    esc(c->cfg.group ? c->cfg.group : "default", 128, b1, sizeof b1);
    if (!yes) fprintf(stderr, "rsbusctl: rewind: refusing to move group %s without --yes (its consumers would get "
                              "entries again, or skip them)\n", b1);
    /* without --yes the answer is exit 2 whatever happens; with Redis at hand it says what it would do */
    if (!open_bus(c, NULL)) return yes ? 1 : EXIT_USAGE;
    esc(c->cfg.stream, 200, b2, sizeof b2);
    if (p.kind == POINT_AGO && (r = rsbus_server_time_ms(c->bus, &now)) < 0) return yes ? fail(c, "rewind", r) : EXIT_USAGE;
    point_resolve(&p, now);
    rewind_id(&p, id);
    if ((r = rsbus_group_info_get(c->bus, c->cfg.group, &before)) < 0) {
        if (r != RSBUS_E_NOTFOUND) return yes ? fail(c, "rewind", r) : EXIT_USAGE;
        fprintf(stderr, "rsbusctl: rewind: no group %s on stream %s\n", b1, b2);
        return yes ? 1 : EXIT_USAGE;
    }
    if (!yes) {
        fprintf(stderr, "rsbusctl: it would move group %s of %s from %s to %s\n", b1, b2, before.last_delivered_id, id);
        return EXIT_USAGE;
    }
    if ((r = rsbus_group_rewind(c->bus, c->cfg.group, id)) < 0) return fail(c, "rewind", r);
    if ((r = rsbus_group_info_get(c->bus, c->cfg.group, &after)) < 0) return fail(c, "rewind (done; reading it back)", r);
    if (c->json) {
        rsbus_jw w;
        rsbus_jw_init_alloc(&w, NULL);
        rsbus_jw_obj(&w);
        jw_kstr(&w, "stream", c->cfg.stream);
        jw_kstr(&w, "group", c->cfg.group);
        jw_kstr(&w, "from", before.last_delivered_id);
        jw_kstr(&w, "to", after.last_delivered_id);
        jw_kint(&w, "pending", after.pending);
        rsbus_jw_obj_end(&w);
        return jw_print(&w);
    }
    printf("group %s of %s: last delivered id %s -> %s\n", b1, b2, before.last_delivered_id, after.last_delivered_id);
    if (id_parse(before.last_delivered_id, &m1, &s1) && id_parse(after.last_delivered_id, &m2, &s2) &&
        id_cmp(m2, s2, m1, s1) > 0)
        printf("moved forward: the entries in between will not be delivered to this group\n");
    else if (p.kind == POINT_MS && p.ms > 0)
        printf("its consumers get the entries from %s (%lld) on next\n", fmt_utc(p.ms, b2, sizeof b2), (long long)p.ms);
    else
        printf("its consumers get the entries after %s next\n", after.last_delivered_id);
    if (after.pending)
        printf("%lld entries already pending in the group stay pending\n", (long long)after.pending);
    return 0;
}

/* ---- info, consumers ------------------------------------------------------------------------ */

/* All groups of the stream, malloc'd (NULL with *n 0 when there are none). */
static rsbus_result list_groups(ctl *c, rsbus_group_info **out, size_t *n) {
    size_t count = 0, got = 0;
    rsbus_result r;
    *out = NULL;
    *n = 0;
    if ((r = rsbus_groups_list(c->bus, NULL, 0, &count)) < 0 || count == 0) return r;
    if (!(*out = (rsbus_group_info *)calloc(count + 8, sizeof **out))) return RSBUS_E_NOMEM;
    r = rsbus_groups_list(c->bus, *out, count + 8, &got);   /* room for groups created meanwhile */
    *n = got < count + 8 ? got : count + 8;
    return r;
}

/* "127.0.0.1:6380 (master, 2 replicas, found by the sentinels)": which server the bus reached */
static const char *server_text(const rsbus_server_info *sv, char *buf, size_t size) {
    char n[32];
    if (sv->replicas >= 0) snprintf(n, sizeof n, ", %d replica%s", sv->replicas, sv->replicas == 1 ? "" : "s");
    else n[0] = 0;
    snprintf(buf, size, "%s (%s%s%s)", sv->addr, sv->role[0] ? sv->role : "role unknown", n,
             sv->sentinel ? ", found by the sentinels" : "");
    return buf;
}
static void jw_server(rsbus_jw *w, const rsbus_server_info *sv) {
    rsbus_jw_key(w, "server");
    rsbus_jw_obj(w);
    jw_kstr(w, "addr", sv->addr);
    jw_kstr(w, "role", sv->role[0] ? sv->role : NULL);
    rsbus_jw_key(w, "replicas");
    if (sv->replicas >= 0) rsbus_jw_int(w, sv->replicas); else rsbus_jw_null(w);
    rsbus_jw_key(w, "sentinel");
    rsbus_jw_bool(w, sv->sentinel);
    rsbus_jw_obj_end(w);
}

static int cmd_info(ctl *c, const command *cmd, int argc, char **argv) {
    rsbus_server_info sv;
    rsbus_stream_info si;
    rsbus_group_info *g = NULL;
    size_t ng = 0, i;
    rsbus_result r;
    char b1[900], b2[900];
    int rc = parse_args(c, cmd, argc, argv, NULL, NULL, 0, 0);
    if (rc != GO_ON) return rc;
    if (!open_bus(c, NULL)) return 1;
    if ((r = rsbus_stream_info_get(c->bus, &si)) < 0) return fail(c, "info", r);
    if ((r = list_groups(c, &g, &ng)) < 0) { free(g); return fail(c, "info", r); }
    if ((r = rsbus_server_info_get(c->bus, &sv)) < 0) { free(g); return fail(c, "info", r); }
    if (c->json) {
        rsbus_jw w;
        rsbus_jw_init_alloc(&w, NULL);
        rsbus_jw_obj(&w);
        jw_server(&w, &sv);
        jw_kstr(&w, "stream", c->cfg.stream);
        jw_kint(&w, "length", si.length);
        jw_kstr(&w, "first_id", si.first_id[0] ? si.first_id : NULL);
        jw_kstr(&w, "last_id", si.last_id);
        rsbus_jw_key(&w, "entries_added");   /* null before Redis 7.0 */
        if (si.entries_added >= 0) rsbus_jw_int(&w, si.entries_added); else rsbus_jw_null(&w);
        jw_kint(&w, "dlq_length", si.dlq_length);
        rsbus_jw_key(&w, "groups");
        rsbus_jw_arr(&w);
        for (i = 0; i < ng; i++) {
            rsbus_jw_obj(&w);
            jw_kstr(&w, "name", g[i].name);
            rsbus_jw_key(&w, "lag");
            if (g[i].lag >= 0) rsbus_jw_int(&w, g[i].lag); else rsbus_jw_null(&w);
            jw_kint(&w, "pending", g[i].pending);
            jw_kint(&w, "consumers", g[i].consumers);
            jw_kint(&w, "entries_read", g[i].entries_read);
            jw_kstr(&w, "last_delivered_id", g[i].last_delivered_id);
            rsbus_jw_obj_end(&w);
        }
        rsbus_jw_arr_end(&w);
        rsbus_jw_obj_end(&w);
        free(g);
        return jw_print(&w);
    }
    printf("server          %s\n", server_text(&sv, b1, sizeof b1));
    printf("stream          %s\n", esc(c->cfg.stream, 200, b1, sizeof b1));
    printf("length          %lld\n", (long long)si.length);
    printf("first id        %s\n", si.first_id[0] ? si.first_id : "-");
    printf("last id         %s\n", si.last_id[0] ? si.last_id : "-");
    if (si.entries_added >= 0) printf("entries added   %lld\n", (long long)si.entries_added);
    else printf("entries added   unknown\n");
    printf("dead letters    %lld\n", (long long)si.dlq_length);
    printf("groups          %zu\n", ng);
    if (ng) printf("\n  %-24s %10s %10s %10s  %s\n", "GROUP", "LAG", "PENDING", "CONSUMERS", "LAST DELIVERED");
    for (i = 0; i < ng; i++) {
        snprintf(b2, sizeof b2, "%lld", (long long)g[i].lag);
        printf("  %-24s %10s %10lld %10lld  %s\n", esc(g[i].name, 128, b1, sizeof b1), g[i].lag >= 0 ? b2 : "unknown",
               (long long)g[i].pending, (long long)g[i].consumers, g[i].last_delivered_id);
    }
    free(g);
    return 0;
}

static int cmd_consumers(ctl *c, const command *cmd, int argc, char **argv) {
    const char *gc = NULL;
    const optspec specs[] = { { "--gc", &gc, NULL }, { NULL, NULL, NULL } };
    rsbus_consumer_info *list = NULL;
    size_t n = 0, got = 0, i;
    int64_t idle = 0, removed = 0;
    rsbus_result r;
    char b1[600], b2[32], b3[32];
    int plain, rc = parse_args(c, cmd, argc, argv, specs, NULL, 0, 0);
    if (rc != GO_ON) return rc;
    if (gc && !parse_duration(gc, &idle, &plain)) return usage_error(cmd, "--gc takes milliseconds or a duration (30s, 15m), not", gc);
    if (!open_bus(c, NULL)) return 1;
    if (gc) {
        if ((r = rsbus_consumers_gc(c->bus, c->cfg.group, idle, &removed)) < 0) return fail(c, "consumers --gc", r);
        if (!c->json) printf("removed %lld consumers idle at least %s with nothing pending\n", (long long)removed,
                             fmt_age(idle, b2, sizeof b2));
    }
    if ((r = rsbus_consumers_list(c->bus, c->cfg.group, NULL, 0, &n)) < 0) return fail(c, "consumers", r);
    if (n && !(list = (rsbus_consumer_info *)calloc(n + 8, sizeof *list))) return fail(c, "consumers", RSBUS_E_NOMEM);
    if (n && (r = rsbus_consumers_list(c->bus, c->cfg.group, list, n + 8, &got)) < 0) { free(list); return fail(c, "consumers", r); }
    n = got < n + 8 ? got : n + 8;
    if (c->json) {
        rsbus_jw w;
        rsbus_jw_init_alloc(&w, NULL);
        rsbus_jw_obj(&w);
        jw_kstr(&w, "group", c->cfg.group);
        if (gc) jw_kint(&w, "removed", removed);
        rsbus_jw_key(&w, "consumers");
        rsbus_jw_arr(&w);
        for (i = 0; i < n; i++) {
            rsbus_jw_obj(&w);
            jw_kstr(&w, "name", list[i].name);
            jw_kint(&w, "pending", list[i].pending);
            jw_kint(&w, "idle_ms", list[i].idle_ms);
            rsbus_jw_key(&w, "inactive_ms");
            if (list[i].inactive_ms >= 0) rsbus_jw_int(&w, list[i].inactive_ms); else rsbus_jw_null(&w);
            rsbus_jw_obj_end(&w);
        }
        rsbus_jw_arr_end(&w);
        rsbus_jw_obj_end(&w);
        free(list);
        return jw_print(&w);
    }
    printf("group %s: %zu consumers\n", esc(c->cfg.group, 128, b1, sizeof b1), n);
    if (n) printf("  %-40s %10s %10s %10s\n", "CONSUMER", "PENDING", "IDLE", "INACTIVE");
    for (i = 0; i < n; i++)
        printf("  %-40s %10lld %10s %10s\n", esc(list[i].name, 128, b1, sizeof b1), (long long)list[i].pending,
               fmt_age(list[i].idle_ms, b2, sizeof b2),
               list[i].inactive_ms >= 0 ? fmt_age(list[i].inactive_ms, b3, sizeof b3) : "-");
    free(list);
    return 0;
}

/* ---- dlq ------------------------------------------------------------------------------------ */

/* Calls fn for each dead letter, oldest first, a page at a time; fn returns non-zero to stop. */
static rsbus_result dlq_each(ctl *c, int (*fn)(const rsbus_dlq_entry *e, void *user), void *user) {
    char after[RSBUS_ID_SIZE] = "";
    for (;;) {
        rsbus_dlq_page page;
        size_t i;
        int stop = 0;
        rsbus_result r = rsbus_dlq_list(c->bus, after[0] ? after : NULL, PAGE, &page);
        if (r < 0) return r;
        for (i = 0; i < page.count && !stop; i++) stop = fn(&page.entries[i], user);
        if (page.count) snprintf(after, sizeof after, "%s", page.entries[page.count - 1].dlq_id);
        i = page.count;
        rsbus_dlq_page_free(c->bus, &page);
        if (stop || i < PAGE) return RSBUS_OK;
    }
}

static void jw_dlq(rsbus_jw *w, const rsbus_dlq_entry *e, int64_t now, int with_data) {
    const rsbus_msg *m = &e->msg;
    rsbus_jw_obj(w);
    jw_kstr(w, "dlq_id", e->dlq_id);
    jw_kint(w, "dead_lettered_ms", id_ms(e->dlq_id));   /* Redis's clock (the dlq id) */
    jw_kint(w, "age_ms", now - id_ms(e->dlq_id));
    jw_kint(w, "failed_at_ms", e->failed_at_ms);         /* the consumer's clock (dlq_failed_at) */
    jw_kstr(w, "type", m->type);
    jw_kstr(w, "id", m->id);
    jw_kstr(w, "group", e->group);
    jw_kstr(w, "consumer", e->consumer);
    jw_kint(w, "deliveries", e->deliveries);
    jw_kstr(w, "error", e->error);
    jw_kstr(w, "stream", m->stream);
    jw_kstr(w, "stream_id", e->original_stream_id);
    if (with_data) {
        jw_event_fields(w, m);
    }
    rsbus_jw_obj_end(w);
}

typedef struct dlq_ctx {
    int64_t now, count, before;
    rsbus_jw *w;
    const char *want;           /* show: the dlq id looked for */
    ctl *c;
    char (*ids)[RSBUS_ID_SIZE]; /* replay --all: the ids found */
    size_t nids, capids;
    int found;
} dlq_ctx;

static int dlq_ls_one(const rsbus_dlq_entry *e, void *user) {
    dlq_ctx *x = (dlq_ctx *)user;
    char b1[600], b2[200], b3[600], b4[300], age[32];
    x->count++;
    if (x->w) { jw_dlq(x->w, e, x->now, 0); return 0; }
    printf("%-20s %9s  %-24s %-32s %-16s %5lld  %s\n", e->dlq_id, fmt_age(x->now - id_ms(e->dlq_id), age, sizeof age),
           esc(e->msg.type, 128, b1, sizeof b1), esc(e->msg.id, 40, b2, sizeof b2), esc(e->group, 64, b4, sizeof b4),
           (long long)e->deliveries, esc(e->error, 100, b3, sizeof b3));
    return 0;
}

static int dlq_ls(ctl *c, const command *cmd, int argc, char **argv) {
    dlq_ctx x;
    rsbus_jw w;
    rsbus_result r;
    int rc = parse_args(c, cmd, argc, argv, NULL, NULL, 0, 0);
    if (rc != GO_ON) return rc;
    if (!open_bus(c, NULL)) return 1;
    memset(&x, 0, sizeof x);
    if ((r = rsbus_server_time_ms(c->bus, &x.now)) < 0) return fail(c, "dlq ls", r);
    if (c->json) {
        x.w = &w;
        rsbus_jw_init_alloc(&w, NULL);
        rsbus_jw_obj(&w);
        rsbus_jw_key(&w, "dead_letters");
        rsbus_jw_arr(&w);
    } else {
        printf("%-20s %9s  %-24s %-32s %-16s %5s  %s\n", "DLQ ID", "AGE", "TYPE", "EVENT ID", "GROUP", "DELIV", "ERROR");
    }
    r = dlq_each(c, dlq_ls_one, &x);
    if (c->json) {
        rsbus_jw_arr_end(&w);
        jw_kint(&w, "count", x.count);
        rsbus_jw_obj_end(&w);
        if (r < 0) { rsbus_jw_free(&w); return fail(c, "dlq ls", r); }
        return jw_print(&w);
    }
    if (r < 0) return fail(c, "dlq ls", r);
    printf("%lld dead letters\n", (long long)x.count);
    return 0;
}

static int dlq_show_one(const rsbus_dlq_entry *e, void *user) {
    dlq_ctx *x = (dlq_ctx *)user;
    const rsbus_msg *m = &e->msg;
    char b[900], t[64], age[32];
    if (strcmp(e->dlq_id, x->want) != 0) return 0;
    x->found = 1;
    if (x->w) { jw_dlq(x->w, e, x->now, 1); return 1; }
    printf("dlq id          %s\n", e->dlq_id);
    printf("dead-lettered   %s (%s ago)\n", fmt_utc(id_ms(e->dlq_id), t, sizeof t), fmt_age(x->now - id_ms(e->dlq_id), age, sizeof age));
    printf("failed at       %s (the consumer's clock)\n", e->failed_at_ms > 0 ? fmt_utc(e->failed_at_ms, t, sizeof t) : "-");
    printf("error           %s\n", esc(e->error, 256, b, sizeof b));
    printf("group           %s\n", esc(e->group, 128, b, sizeof b));
    printf("consumer        %s\n", esc(e->consumer, 128, b, sizeof b));
    printf("deliveries      %lld\n", (long long)e->deliveries);
    printf("stream          %s\n", esc(m->stream, 200, b, sizeof b));
    printf("stream id       %s\n", esc(e->original_stream_id, 48, b, sizeof b));
    printf("type            %s\n", esc(m->type, 128, b, sizeof b));
    printf("event id        %s\n", esc(m->id, 128, b, sizeof b));
    printf("version         %d\n", m->version);
    printf("published at    %s\n", m->ts_ms ? fmt_utc(m->ts_ms, t, sizeof t) : "-");
    if (m->key) printf("key             %s\n", esc(m->key, 200, b, sizeof b));
    if (m->source) printf("source          %s\n", esc(m->source, 200, b, sizeof b));
    if (m->tenant) printf("tenant          %s\n", esc(m->tenant, 200, b, sizeof b));
    if (m->correlation_id) printf("correlation id  %s\n", esc(m->correlation_id, 200, b, sizeof b));
    if (m->traceparent) printf("traceparent     %s\n", esc(m->traceparent, 200, b, sizeof b));
    if (m->replay_of) printf("replay of       %s\n", esc(m->replay_of, 48, b, sizeof b));
    if (m->data) { printf("payload (%zu bytes):\n  ", m->data_len); print_pretty(m->data, m->data_len, 2); }
    else printf("payload         (missing or not valid JSON)\n");
    return 1;
}

static int dlq_collect(const rsbus_dlq_entry *e, void *user) {
    dlq_ctx *x = (dlq_ctx *)user;
    if (x->nids == x->capids) {
        size_t cap = x->capids ? x->capids * 2 : 64;
        char (*p)[RSBUS_ID_SIZE] = (char (*)[RSBUS_ID_SIZE])realloc(x->ids, cap * sizeof *p);
        if (!p) { x->found = -1; return 1; }
        x->ids = p;
        x->capids = cap;
    }
    memcpy(x->ids[x->nids++], e->dlq_id, RSBUS_ID_SIZE);
    return 0;
}
static int dlq_count_before(const rsbus_dlq_entry *e, void *user) {
    dlq_ctx *x = (dlq_ctx *)user;
    if (id_ms(e->dlq_id) >= x->before) return 1;   /* ids grow with time: the rest are newer */
    x->count++;
    return 0;
}

/* A dead letter's id: "ms-seq", or "p<i>/ms-seq" on a partitioned stream. */
static int dlq_id_ok(const char *s) {
    if (s[0] == 'p' && s[1] >= '0' && s[1] <= '9') {
        s++;
        while (*s >= '0' && *s <= '9') s++;
        if (*s++ != '/') return 0;
    }
    return id_ok(s);
}

static int dlq_show(ctl *c, const command *cmd, int argc, char **argv) {
    const char *pos[1] = { NULL };
    dlq_ctx x;
    rsbus_jw w;
    rsbus_result r;
    int rc = parse_args(c, cmd, argc, argv, NULL, pos, 1, 1);
    if (rc != GO_ON) return rc;
    if (!dlq_id_ok(pos[0])) return usage_error(cmd, "not a dead-letter id (ms-seq, or p<i>/ms-seq):", pos[0]);
    if (!open_bus(c, NULL)) return 1;
    memset(&x, 0, sizeof x);
    if ((r = rsbus_server_time_ms(c->bus, &x.now)) < 0) return fail(c, "dlq show", r);
    x.want = pos[0];
    if (c->json) { x.w = &w; rsbus_jw_init_alloc(&w, NULL); }
    r = dlq_each(c, dlq_show_one, &x);
    if (r == RSBUS_OK && x.found) return x.w ? jw_print(x.w) : 0;
    if (x.w) rsbus_jw_free(x.w);
    if (r < 0) return fail(c, "dlq show", r);
    fprintf(stderr, "rsbusctl: dlq show: no dead letter %s\n", pos[0]);
    return 1;
}

static int dlq_replay(ctl *c, const command *cmd, int argc, char **argv) {
    const char *pos[1] = { NULL };
    int all = 0;
    const optspec specs[] = { { "--all", NULL, &all }, { NULL, NULL, NULL } };
    char nid[RSBUS_ID_SIZE];
    dlq_ctx x;
    rsbus_result r;
    size_t i;
    int rc = parse_args(c, cmd, argc, argv, specs, pos, 0, 1);
    if (rc != GO_ON) return rc;
    if (all == !!pos[0]) return usage_error(cmd, "dlq replay takes one ID or --all", NULL);
    if (pos[0] && !dlq_id_ok(pos[0])) return usage_error(cmd, "not a dead-letter id (ms-seq, or p<i>/ms-seq):", pos[0]);
    if (!open_bus(c, NULL)) return 1;
    if (pos[0]) {
        if ((r = rsbus_dlq_replay(c->bus, pos[0], nid)) < 0) return fail(c, "dlq replay", r);
        printf("%s -> %s\n", pos[0], nid);
        return 0;
    }
    /* the ids first: an entry that fails again while we replay gets a new id and is not replayed twice */
    memset(&x, 0, sizeof x);
    r = dlq_each(c, dlq_collect, &x);
    if (r < 0 || x.found < 0) { free(x.ids); return fail(c, "dlq replay --all", r < 0 ? r : RSBUS_E_NOMEM); }
    for (i = 0; i < x.nids; i++) {
        r = rsbus_dlq_replay(c->bus, x.ids[i], nid);
        if (r == RSBUS_E_NOTFOUND) { fprintf(stderr, "rsbusctl: dlq replay: %s is gone (replayed or purged meanwhile)\n", x.ids[i]); continue; }
        if (r < 0) break;
        printf("%s -> %s\n", x.ids[i], nid);
        x.count++;
    }
    fprintf(stderr, "replayed %lld of %zu dead letters\n", (long long)x.count, x.nids);
    free(x.ids);
    return r < 0 && r != RSBUS_E_NOTFOUND ? fail(c, "dlq replay", r) : 0;
}

static int dlq_purge(ctl *c, const command *cmd, int argc, char **argv) {
    const char *before = NULL;
    int yes = 0, plain = 0;
    const optspec specs[] = { { "--before", &before, NULL }, { "--yes", NULL, &yes }, { NULL, NULL, NULL } };
    dlq_ctx x;
    rsbus_result r;
    int64_t when = 0;
    char t[64], age[32];
    int rc = parse_args(c, cmd, argc, argv, specs, NULL, 0, 0);
    if (rc != GO_ON) return rc;
    if (!before) return usage_error(cmd, "dlq purge needs --before", NULL);
    if (!parse_duration(before, &when, &plain))
        return usage_error(cmd, "--before takes epoch milliseconds or a duration (30s, 15m, 24h, 7d), not", before);
    if (!yes) fprintf(stderr, "rsbusctl: dlq purge: refusing to delete dead letters without --yes (it cannot be undone)\n");
    /* without --yes the answer is exit 2 whatever happens; with Redis at hand it says how many would go */
    if (!open_bus(c, NULL)) return yes ? 1 : EXIT_USAGE;
    memset(&x, 0, sizeof x);
    if (!plain) {   /* a duration: that long before now, by Redis's clock */
        if ((r = rsbus_server_time_ms(c->bus, &x.now)) < 0) return yes ? fail(c, "dlq purge", r) : EXIT_USAGE;
        when = x.now > when ? x.now - when : 0;
    }
    if (!yes) {
        x.before = when;
        if (dlq_each(c, dlq_count_before, &x) == RSBUS_OK)
            fprintf(stderr, "rsbusctl: it would delete %lld dead letters failed before %s\n", (long long)x.count,
                    fmt_utc(when, t, sizeof t));
        return EXIT_USAGE;
    }
    if ((r = rsbus_dlq_purge(c->bus, when, &x.count)) < 0) return fail(c, "dlq purge", r);
    if (!x.now) (void)rsbus_server_time_ms(c->bus, &x.now);
    printf("removed %lld dead letters failed before %s", (long long)x.count, fmt_utc(when, t, sizeof t));
    if (x.now) printf(" (%s ago)", fmt_age(x.now - when, age, sizeof age));
    printf("\n");
    return 0;
}

static int cmd_dlq(ctl *c, const command *cmd, int argc, char **argv) {
    static const struct { const char *name; int (*fn)(ctl *, const command *, int, char **); } subs[] = {
        { "ls", dlq_ls }, { "show", dlq_show }, { "replay", dlq_replay }, { "purge", dlq_purge } };
    size_t i;
    if (argc == 0) return usage_error(cmd, "missing dlq command (ls, show, replay, purge)", NULL);
    if (!strcmp(argv[0], "--help") || !strcmp(argv[0], "-h")) { print_help(cmd); return 0; }
    for (i = 0; i < sizeof subs / sizeof subs[0]; i++)
        if (!strcmp(argv[0], subs[i].name)) return subs[i].fn(c, cmd, argc - 1, argv + 1);
    return usage_error(cmd, "unknown dlq command", argv[0]);
}

/* ---- spool ---------------------------------------------------------------------------------- */

/* The library's log for "spool": its note that a bus with a spool starts offline when Redis cannot be
   reached is not news here (status needs no Redis; flush reports the failure itself). */
static void log_spool(void *user, rsbus_log_level level, const char *msg) {
    if (!strncmp(msg, "cannot reach Redis", 18)) return;
    log_stderr(user, level, msg);
}

/* Opens the bus with the spool file path (which must exist: rsbusctl creates no spool). */
static int spool_open(ctl *c, const char *sub, const char *path) {
    struct stat st;
    rsbus_error e;
    char b[600];
    esc(path, 300, b, sizeof b);
    if (stat(path, &st) != 0) {
        fprintf(stderr, "rsbusctl: spool %s: %s: %s\n", sub, b, errno == ENOENT ? "no such spool file" : strerror(errno));
        return 1;
    }
    c->cfg.spool_path = path;
    c->cfg.log = log_spool;
    if (open_bus(c, &e)) return 0;
    if (e.code == RSBUS_E_IO && strstr(e.msg, "in use"))
        fprintf(stderr, "rsbusctl: spool %s: the spool %s is in use by a running publisher; stop it or ask it "
                        "(it sends its spool itself once Redis can be reached)\n", sub, b);
    else fprintf(stderr, "rsbusctl: spool %s: cannot open the spool: %s: %s\n", sub, rsbus_result_str(e.code), e.msg);
    return 1;
}

static int cmd_spool(ctl *c, const command *cmd, int argc, char **argv) {
    const char *path = NULL;
    const optspec specs[] = { { "--spool", &path, NULL }, { NULL, NULL, NULL } };
    size_t events = 0, bytes = 0, sent = 0;
    rsbus_result r = RSBUS_OK;
    int flush, rc;
    char b1[600], b2[600];
    if (argc == 0) return usage_error(cmd, "missing spool command (status, flush)", NULL);
    if (!strcmp(argv[0], "--help") || !strcmp(argv[0], "-h")) { print_help(cmd); return 0; }
    if (strcmp(argv[0], "status") != 0 && strcmp(argv[0], "flush") != 0)
        return usage_error(cmd, "unknown spool command", argv[0]);
    flush = argv[0][0] == 'f';
    if ((rc = parse_args(c, cmd, argc - 1, argv + 1, specs, NULL, 0, 0)) != GO_ON) return rc;
    if (!path && c->env_spool && c->env_spool[0]) path = c->env_spool;
    if (!path || !path[0]) return usage_error(cmd, "no spool file: give --spool PATH or set RSBUS_SPOOL_PATH", NULL);
    if (spool_open(c, argv[0], path)) return 1;
    esc(path, 300, b1, sizeof b1);
    if (flush) r = rsbus_spool_flush(c->bus, &sent);
    (void)rsbus_spool_pending(c->bus, &events, &bytes);
    if (r < 0) {
        fail(c, "spool flush", r);
        fprintf(stderr, "rsbusctl: spool flush: sent %zu events; %zu events (%zu bytes) stay in the spool %s\n", sent,
                events, bytes, b1);
        return 1;
    }
    if (c->json) {
        rsbus_jw w;
        rsbus_jw_init_alloc(&w, NULL);
        rsbus_jw_obj(&w);
        jw_kstr(&w, "path", path);
        if (flush) { jw_kstr(&w, "stream", c->cfg.stream); jw_kint(&w, "sent", (int64_t)sent); }
        jw_kint(&w, "events", (int64_t)events);
        jw_kint(&w, "bytes", (int64_t)bytes);
        rsbus_jw_obj_end(&w);
        return jw_print(&w);
    }
    if (flush) printf("sent %zu events from the spool %s to %s\n", sent, b1, esc(c->cfg.stream, 200, b2, sizeof b2));
    else printf("spool %s: %zu events, %zu bytes not yet sent\n", b1, events, bytes);
    return 0;
}

/* ---- health, metrics ------------------------------------------------------------------------ */

/* The partitions of the stream: where each one is, its numbers, and whether they are spread. */
static int cmd_partitions(ctl *c, const command *cmd, int argc, char **argv) {
    rsbus_partition_info *p;
    size_t n = 0, i, j, nodes = 0, most = 0;
    const char *most_node = "";
    rsbus_result r;
    char b1[900], b2[64];
    int rc = parse_args(c, cmd, argc, argv, NULL, NULL, 0, 0);
    if (rc != GO_ON) return rc;
    if (!open_bus(c, NULL)) return 1;
    if (!(p = (rsbus_partition_info *)calloc(256, sizeof *p))) return fail(c, "partitions", RSBUS_E_NOMEM);
    if ((r = rsbus_partitions_list(c->bus, p, 256, &n)) < 0) { free(p); return fail(c, "partitions", r); }
    for (i = 0; i < n; i++) {   /* partitions per server: the one holding the most */
        size_t k = 0, seen = 0;
        for (j = 0; j < n; j++) k += !strcmp(p[j].node, p[i].node);
        for (j = 0; j < i; j++) seen |= !strcmp(p[j].node, p[i].node);
        if (!seen) nodes++;
        if (k > most) { most = k; most_node = p[i].node; }
    }
    if (c->json) {
        rsbus_jw w;
        rsbus_jw_init_alloc(&w, NULL);
        rsbus_jw_obj(&w);
        jw_kstr(&w, "stream", c->cfg.stream);
        jw_kint(&w, "nodes", (int64_t)nodes);
        rsbus_jw_key(&w, "partitions");
        rsbus_jw_arr(&w);
        for (i = 0; i < n; i++) {
            rsbus_jw_obj(&w);
            jw_kint(&w, "index", p[i].index);
            jw_kstr(&w, "key", p[i].key);
            jw_kint(&w, "slot", p[i].slot);
            jw_kstr(&w, "node", p[i].node);
            jw_kint(&w, "length", p[i].length);
            rsbus_jw_key(&w, "lag");
            if (p[i].lag >= 0) rsbus_jw_int(&w, p[i].lag); else rsbus_jw_null(&w);
            jw_kint(&w, "pending", p[i].pending);
            jw_kint(&w, "dlq_length", p[i].dlq_length);
            rsbus_jw_obj_end(&w);
        }
        rsbus_jw_arr_end(&w);
        rsbus_jw_obj_end(&w);
        free(p);
        return jw_print(&w);
    }
    printf("stream %s, %zu partition%s on %zu server%s (group %s)\n\n", esc(c->cfg.stream, 200, b1, sizeof b1), n,
           n == 1 ? "" : "s", nodes, nodes == 1 ? "" : "s", esc(c->cfg.group, 128, b2, sizeof b2));
    printf("  %5s %-28s %5s %-22s %10s %10s %10s %8s\n", "#", "KEY", "SLOT", "NODE", "LENGTH", "LAG", "PENDING", "DLQ");
    for (i = 0; i < n; i++) {
        char lag[32], key[300], node[300];
        snprintf(lag, sizeof lag, "%lld", (long long)p[i].lag);
        printf("  %5d %-28s %5d %-22s %10lld %10s %10lld %8lld\n", p[i].index, esc(p[i].key, 256, key, sizeof key),
               p[i].slot, esc(p[i].node, 128, node, sizeof node), (long long)p[i].length, p[i].lag >= 0 ? lag : "unknown",
               (long long)p[i].pending, (long long)p[i].dlq_length);
    }
    /* partitions spread load only over several servers: say so when they pile up on one */
    if (n >= 2 && (nodes == 1 || most > 2 * ((n + nodes - 1) / nodes)))
        printf("\nwarning: %zu of the %zu partitions are on one server (%s): they share its CPU and memory\n",
               most, n, esc(most_node, 128, b1, sizeof b1));
    free(p);
    return 0;
}

static int cmd_health(ctl *c, const command *cmd, int argc, char **argv) {
    static const char *const names[] = { "HEALTHY", "DEGRADED", "UNHEALTHY" };
    const char *max_lag = NULL;
    const optspec specs[] = { { "--max-lag", &max_lag, NULL }, { NULL, NULL, NULL } };
    int64_t lag = 1000;
    rsbus_health h = RSBUS_UNHEALTHY;
    rsbus_error err;
    rsbus_server_info sv;
    int have_sv = 0;
    char why[1024] = "", b1[400];
    size_t len;
    int rc = parse_args(c, cmd, argc, argv, specs, NULL, 0, 0);
    if (rc != GO_ON) return rc;
    if (max_lag && !parse_int(max_lag, 0, INT64_MAX, &lag)) return usage_error(cmd, "--max-lag must be a non-negative integer, not", max_lag);
    /* publish_only: health must create nothing. The library then judges the group only if it exists,
       so a group named with --group / RSBUS_GROUP that does not exist is reported here. */
    if (!open_bus(c, &err)) snprintf(why, sizeof why, "Redis unreachable: %s: %s", rsbus_result_str(err.code), err.msg);
    else h = rsbus_health_check(c->bus, lag, why, sizeof why);
    if (c->bus && h != RSBUS_UNHEALTHY && c->group_given) {
        rsbus_stream_info si;
        rsbus_group_info g;
        const char *extra = NULL;
        if (rsbus_stream_info_get(c->bus, &si) == RSBUS_E_NOTFOUND) extra = "stream";
        else if (rsbus_group_info_get(c->bus, c->cfg.group, &g) == RSBUS_E_NOTFOUND) extra = "group";
        if (extra) {
            if (h == RSBUS_HEALTHY) why[0] = 0;
            h = RSBUS_DEGRADED;
            len = strlen(why);
            snprintf(why + len, sizeof why - len, "%s%s %s does not exist", len ? "; " : "", extra,
                     esc(extra[0] == 's' ? c->cfg.stream : c->cfg.group, 128, b1, sizeof b1));
        }
    }
    if (c->bus && h != RSBUS_UNHEALTHY) have_sv = rsbus_server_info_get(c->bus, &sv) == RSBUS_OK;
    if (c->json) {
        rsbus_jw w;
        rsbus_jw_init_alloc(&w, NULL);
        rsbus_jw_obj(&w);
        if (have_sv) jw_server(&w, &sv);
        jw_kstr(&w, "status", names[h]);
        jw_kint(&w, "code", (int64_t)h);
        jw_kstr(&w, "why", why);
        jw_kstr(&w, "stream", c->cfg.stream);
        jw_kstr(&w, "group", c->cfg.group);
        jw_kint(&w, "max_lag", lag);
        rsbus_jw_obj_end(&w);
        if (jw_print(&w)) return 1;
    } else {
        printf("%s: %s\n", names[h], why);
        if (have_sv) printf("server: %s\n", server_text(&sv, b1, sizeof b1));
    }
    return (int)h;
}

/* ---- exporter, metrics --textfile: the numbers Prometheus scrapes ----------------------------------- */

/* One scrape reads each watched stream with rsbus_stream_snapshot (one pipelined round trip: XINFO STREAM
   FULL COUNT 1, XLEN of its DLQ, TIME) on a publish-only bus of its own, then renders every metric family
   for all streams at once (the text format wants a family's samples together). The DLQ is whatever the
   bus names it (rsbus_open sets it), so this file never spells the DLQ's key. */

#define WATCH_MAX 64            /* streams one exporter watches */
#define GROUPS_MAX 1000         /* groups exported per stream (all are counted) */
#define DOWN_HOLD_MS 1000       /* after a scrape found Redis unreachable, scrapes within this answer 0 at once */

typedef enum snap_state { SNAP_FAILED, SNAP_OK, SNAP_MISSING } snap_state;

typedef struct watched {
    const char *name;           /* the stream, as given */
    rsbus *bus;                 /* opened by the first scrape that reaches Redis */
    snap_state state;
    rsbus_stream_info info;
    rsbus_group_info *groups;   /* malloc'd, cap of them; ngroups valid (<= GROUPS_MAX) */
    size_t ngroups, cap, all_groups;
    char error[256];            /* the last failure said on stderr, to say a new one once */
} watched;

typedef struct scraper {
    ctl *c;
    watched w[WATCH_MAX];
    size_t n;
    int64_t timeout_ms;
    int up, was_up;             /* this scrape, the last one (-1: none yet) */
    int64_t failed_ms;          /* monotonic end of the last scrape that tried Redis and could not reach it; 0 none */
    double seconds;             /* how long the last scrape took */
} scraper;

static int64_t mono_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}
static int64_t mono_ms(void) { return mono_us() / 1000; }

/* Says a stream's failure on stderr when it differs from the last one said (a scrape every 15 s would
   otherwise repeat it forever); "" clears it. */
static void watch_note(watched *w, const char *what, rsbus_result r, const char *msg) {
    char text[sizeof w->error], b1[600];
    if (!what) { w->error[0] = 0; return; }
    snprintf(text, sizeof text, "%s: %s: %s", what, rsbus_result_str(r), msg ? msg : "");
    if (!strcmp(text, w->error)) return;
    snprintf(w->error, sizeof w->error, "%s", text);
    fprintf(stderr, "rsbusctl: stream %s: %s\n", esc(w->name, 200, b1, sizeof b1), text);
}

/* The bus of a watched stream: the tool's config with this stream and the scrape's time limits. */
static rsbus_result watch_open(scraper *s, watched *w) {
    rsbus_config cfg = s->c->cfg;
    rsbus_error e;
    int64_t half = s->timeout_ms / 2 > 50 ? s->timeout_ms / 2 : 50;   /* connect + one reply within the timeout */
    cfg.stream = w->name;
    cfg.connect_timeout_ms = (int)half;
    cfg.io_timeout_ms = (int)half;
    if ((w->bus = open_pinned(s->c, &cfg, &e)) != NULL) return RSBUS_OK;
    watch_note(w, "open", e.code, e.msg);
    return e.code;
}

static int group_cmp(const void *a, const void *b) {
    return strcmp(((const rsbus_group_info *)a)->name, ((const rsbus_group_info *)b)->name);
}

/* Reads one stream into w: its numbers and up to GROUPS_MAX groups (a second try when groups appeared
   after the first read sized the array), sorted by name. Names are cut to fit rsbus_group_info (and at a
   NUL byte), so two groups can end up with one name: the first is kept, or the series would repeat. */
static rsbus_result watch_read(watched *w) {
    rsbus_result r;
    int tries;
    for (tries = 0; tries < 2; tries++) {
        r = rsbus_stream_snapshot(w->bus, &w->info, w->groups, w->cap, &w->all_groups);
        if (r != RSBUS_OK || w->all_groups <= w->cap || w->cap >= GROUPS_MAX) break;
        {
            size_t cap = w->all_groups + 8 < GROUPS_MAX ? w->all_groups + 8 : GROUPS_MAX;
            rsbus_group_info *g = (rsbus_group_info *)realloc(w->groups, cap * sizeof *g);
            if (!g) return RSBUS_E_NOMEM;
            w->groups = g;
            w->cap = cap;
        }
    }
    w->ngroups = r == RSBUS_OK ? (w->all_groups < w->cap ? w->all_groups : w->cap) : 0;
    if (w->ngroups > 1) {
        size_t i, n = 1;
        qsort(w->groups, w->ngroups, sizeof *w->groups, group_cmp);
        for (i = 1; i < w->ngroups; i++)
            if (strcmp(w->groups[i].name, w->groups[n - 1].name) != 0) w->groups[n++] = w->groups[i];
        w->ngroups = n;
    }
    return r;
}

/* One scrape: every stream read, unless Redis stopped answering (then the rest are not tried) or the
   time ran out. rsbus_up says whether Redis answered. */
static void scrape_run(scraper *s) {
    int64_t t0_us = mono_us(), t0 = t0_us / 1000, deadline = t0 + s->timeout_ms;
    int held = s->failed_ms && t0 - s->failed_ms < DOWN_HOLD_MS;   /* it just failed: scrapes queued behind
                                                                      that one do not wait for Redis again */
    size_t i;
    s->up = !held;
    for (i = 0; i < s->n; i++) {
        watched *w = &s->w[i];
        rsbus_result r = RSBUS_OK;
        w->state = SNAP_FAILED;
        w->ngroups = 0;
        if (!s->up) continue;
        if (mono_ms() >= deadline) { watch_note(w, "scrape", RSBUS_E_TIMEOUT, "no time left in this scrape"); continue; }
        if (!w->bus) r = watch_open(s, w);
        if (r == RSBUS_OK) {
            r = watch_read(w);
            if (r == RSBUS_OK) w->state = SNAP_OK;
            else if (r == RSBUS_E_NOTFOUND) w->state = SNAP_MISSING;   /* no stream (yet): length 0 */
            if (w->state != SNAP_FAILED) watch_note(w, NULL, r, NULL);
            else watch_note(w, "read", r, rsbus_errmsg(w->bus));
        }
        if (r == RSBUS_E_IO || r == RSBUS_E_TIMEOUT || r == RSBUS_E_PROTOCOL) s->up = 0;
    }
    if (s->up != s->was_up && (s->was_up != -1 || !s->up))   /* a change, or down from the start */
        fprintf(stderr, "rsbusctl: Redis %s\n", s->up ? "answers" : "cannot be reached (rsbus_up 0)");
    s->was_up = s->up;
    if (!held) s->failed_ms = s->up ? 0 : mono_ms();
    s->seconds = (double)(mono_us() - t0_us) / 1e6;
}

/* ---- the text format -------------------------------------------------------------------------- */

typedef struct textbuf { char *p; size_t len, cap; int oom; } textbuf;

static void tb_put(textbuf *t, const char *s, size_t n) {
    if (t->oom) return;
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 4096;
        char *p;
        while (cap < t->len + n + 1) cap *= 2;
        if (!(p = (char *)realloc(t->p, cap))) { t->oom = 1; return; }
        t->p = p;
        t->cap = cap;
    }
    memcpy(t->p + t->len, s, n);
    t->len += n;
    t->p[t->len] = 0;
}
static void tb_str(textbuf *t, const char *s) { tb_put(t, s, strlen(s)); }
static void tb_int(textbuf *t, int64_t v) {
    char b[32];
    tb_put(t, b, (size_t)snprintf(b, sizeof b, " %lld\n", (long long)v));
}
/* A label value: '\', '"' and newline escaped; other control characters and bytes that are not UTF-8
   become U+FFFD, so that a group name from Redis can never make the exposition unparseable. */
static void tb_label(textbuf *t, const char *s) {
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s), i = 0, len;
    while (i < n) {
        len = utf8_len(p + i, n - i);
        if (len == 1 && p[i] == '\\') tb_str(t, "\\\\");
        else if (len == 1 && p[i] == '"') tb_str(t, "\\\"");
        else if (len == 1 && p[i] == '\n') tb_str(t, "\\n");
        else if (len == 0 || (len == 1 && (p[i] < 0x20 || p[i] == 0x7f))) tb_str(t, "\xef\xbf\xbd");
        else tb_put(t, s + i, len);
        i += len ? len : 1;
    }
}
static void tb_family(textbuf *t, const char *name, const char *type, const char *help) {
    tb_str(t, "# HELP "); tb_str(t, name); tb_str(t, " "); tb_str(t, help);
    tb_str(t, "\n# TYPE "); tb_str(t, name); tb_str(t, " "); tb_str(t, type); tb_str(t, "\n");
}
static void tb_sample(textbuf *t, const char *name, const char *stream, const char *group) {
    tb_str(t, name);
    tb_str(t, "{stream=\"");
    tb_label(t, stream);
    if (group) { tb_str(t, "\",group=\""); tb_label(t, group); }
    tb_str(t, "\"}");
}

/* Where the numbers of one group are, for the table below. */
typedef enum group_metric { GM_LAG, GM_PENDING, GM_CONSUMERS, GM_IDLE } group_metric;

/* The exposition of the last scrape; malloc'd, NULL when out of memory. */
static char *scrape_render(const scraper *s, size_t *len) {
    static const struct { const char *name, *help; group_metric m; } gm[] = {
        { "rsbus_group_lag", "Entries of the stream not yet delivered to the group (absent when Redis cannot tell).", GM_LAG },
        { "rsbus_group_pending", "Entries delivered to the group's consumers and not yet acknowledged.", GM_PENDING },
        { "rsbus_group_consumers", "Consumers the group has in Redis.", GM_CONSUMERS },
        { "rsbus_group_oldest_pending_idle_seconds",
          "Seconds since the group's oldest pending entry was last delivered (0 when none is pending).", GM_IDLE } };
    textbuf t;
    char num[64];
    size_t i, k, f;
    memset(&t, 0, sizeof t);
    tb_family(&t, "rsbus_up", "gauge", "Whether Redis answered this scrape (1) or could not be reached in time (0).");
    tb_str(&t, "rsbus_up");
    tb_int(&t, s->up);
    tb_family(&t, "rsbus_scrape_duration_seconds", "gauge", "How long reading Redis took in this scrape.");
    snprintf(num, sizeof num, "rsbus_scrape_duration_seconds %.6f\n", s->seconds);
    tb_str(&t, num);
    tb_family(&t, "rsbus_stream_up", "gauge", "Whether this scrape read the stream's numbers (0: Redis refused or was not reached).");
    for (i = 0; i < s->n; i++) { tb_sample(&t, "rsbus_stream_up", s->w[i].name, NULL); tb_int(&t, s->w[i].state != SNAP_FAILED); }
    tb_family(&t, "rsbus_stream_length", "gauge", "Entries in the stream (0 when it does not exist).");
    for (i = 0; i < s->n; i++)
        if (s->w[i].state != SNAP_FAILED) { tb_sample(&t, "rsbus_stream_length", s->w[i].name, NULL); tb_int(&t, s->w[i].info.length); }
    tb_family(&t, "rsbus_stream_entries_added_total", "counter", "Entries ever added to the stream (Redis 7.0+).");
    for (i = 0; i < s->n; i++)
        if (s->w[i].state == SNAP_OK && s->w[i].info.entries_added >= 0) {
            tb_sample(&t, "rsbus_stream_entries_added_total", s->w[i].name, NULL);
            tb_int(&t, s->w[i].info.entries_added);
        }
    tb_family(&t, "rsbus_dlq_length", "gauge", "Entries in the stream's dead-letter stream.");
    for (i = 0; i < s->n; i++)
        if (s->w[i].state != SNAP_FAILED) { tb_sample(&t, "rsbus_dlq_length", s->w[i].name, NULL); tb_int(&t, s->w[i].info.dlq_length); }
    tb_family(&t, "rsbus_stream_groups", "gauge", "Consumer groups of the stream (the first 1000 are exported).");
    for (i = 0; i < s->n; i++)
        if (s->w[i].state != SNAP_FAILED) { tb_sample(&t, "rsbus_stream_groups", s->w[i].name, NULL); tb_int(&t, (int64_t)s->w[i].all_groups); }
    for (f = 0; f < sizeof gm / sizeof gm[0]; f++) {
        tb_family(&t, gm[f].name, "gauge", gm[f].help);
        for (i = 0; i < s->n; i++) {
            const watched *w = &s->w[i];
            for (k = 0; k < w->ngroups; k++) {
                const rsbus_group_info *g = &w->groups[k];
                int64_t v = gm[f].m == GM_LAG ? g->lag : gm[f].m == GM_PENDING ? g->pending
                          : gm[f].m == GM_CONSUMERS ? g->consumers : g->oldest_idle_ms;
                if (v < 0) continue;   /* unknown: absent, never -1 */
                tb_sample(&t, gm[f].name, w->name, g->name);
                if (gm[f].m == GM_IDLE) {
                    snprintf(num, sizeof num, " %.3f\n", (double)v / 1000.0);
                    tb_str(&t, num);
                } else tb_int(&t, v);
            }
        }
    }
    if (t.oom) { free(t.p); return NULL; }
    *len = t.len;
    return t.p;
}

static void scraper_free(scraper *s) {
    size_t i;
    for (i = 0; i < s->n; i++) { rsbus_close(s->w[i].bus); free(s->w[i].groups); }
    s->n = 0;
}

/* Takes every "--stream S" / "--stream=S" out of argv (they may repeat here, unlike the global option)
   into the scraper; returns argc without them, or -1 (a usage error was said). */
static int take_streams(scraper *s, const command *cmd, int argc, char **argv) {
    int i, out = 0;
    size_t k;
    for (i = 0; i < argc; i++) {
        const char *name = NULL;
        if (!strcmp(argv[i], "--")) { while (i < argc) argv[out++] = argv[i++]; break; }
        if (!strncmp(argv[i], "--stream=", 9)) name = argv[i] + 9;
        else if (!strcmp(argv[i], "--stream")) {
            if (i + 1 >= argc) { usage_error(cmd, "missing value for", "--stream"); return -1; }
            name = argv[++i];
        } else { argv[out++] = argv[i]; continue; }
        for (k = 0; k < s->n && strcmp(s->w[k].name, name); k++) {}
        if (k < s->n) continue;   /* given twice: watched once */
        if (s->n == WATCH_MAX) { usage_error(cmd, "too many streams (at most 64), at", name); return -1; }
        s->w[s->n++].name = name;
    }
    return out;
}

/* The options exporter and metrics share: streams (or the tool's one stream) and --timeout. Opens what
   it can now, so that a stream name rsbus refuses is a usage error here rather than a scrape failure
   later (with Redis unreachable at start, the ones after the first are only checked by the scrapes).
   Returns GO_ON or an exit status. */
static int scraper_init(scraper *s, ctl *c, const command *cmd, const char *timeout) {
    size_t i;
    int plain;
    s->c = c;
    s->was_up = -1;
    s->timeout_ms = 5000;
    if (timeout && (!parse_duration(timeout, &s->timeout_ms, &plain) || s->timeout_ms < 100 || s->timeout_ms > 600000))
        return usage_error(cmd, "--timeout takes milliseconds (100..600000) or a duration (5s), not", timeout);
    if (!c->cfg.stream) c->cfg.stream = "rsbus:events";
    if (!c->cfg.group) c->cfg.group = "default";
    if (!s->n) { s->w[0].name = c->cfg.stream; s->n = 1; }
    for (i = 0; i < s->n; i++) {
        rsbus_result r = watch_open(s, &s->w[i]);
        if (r == RSBUS_E_ARG) return EXIT_USAGE;
        if (r == RSBUS_E_IO || r == RSBUS_E_TIMEOUT) break;   /* Redis not there (yet): the scrapes open the
                                                                rest, rather than a timeout per stream now */
    }
    return GO_ON;
}

/* metrics --textfile PATH: the scrape written to PATH.tmp.<pid> beside it, flushed, then renamed over
   PATH, so node_exporter's textfile collector never reads half a file. */
static int write_textfile(const char *path, const char *text, size_t len) {
    char tmp[4096];
    int fd, ok;
    size_t done = 0;
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= sizeof tmp) return 0;
    if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0644)) < 0) return 0;
    while (done < len) {
        ssize_t n = write(fd, text + done, len - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        done += (size_t)n;
    }
    ok = done == len && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    if (ok && rename(tmp, path) == 0) return 1;
    ok = errno;
    unlink(tmp);
    errno = ok;
    return 0;
}

static int metrics_textfile(ctl *c, const command *cmd, scraper *s, const char *path, const char *timeout) {
    char *text;
    size_t len = 0;
    int rc = scraper_init(s, c, cmd, timeout);
    if (rc != GO_ON) return rc;
    scrape_run(s);
    if (!(text = scrape_render(s, &len))) { fprintf(stderr, "rsbusctl: metrics: out of memory\n"); return 1; }
    if (!write_textfile(path, text, len)) {
        char b1[600];
        fprintf(stderr, "rsbusctl: metrics: cannot write %s: %s\n", esc(path, 200, b1, sizeof b1), strerror(errno));
        rc = 1;
    } else rc = s->up ? 0 : 1;   /* written either way: rsbus_up 0 is what it should say then */
    free(text);
    return rc;
}

/* ---- the HTTP side (libmicrohttpd) ------------------------------------------------------------- */
#ifdef RSBUSCTL_EXPORTER

#if MHD_VERSION >= 0x00097002
typedef enum MHD_Result mhd_result;
#else
typedef int mhd_result;
#endif

static const char index_page[] =
    "<!DOCTYPE html>\n<html><head><title>rsbus exporter</title></head><body>\n"
    "<h1>rsbus exporter</h1>\n<p>Lag, pending, consumers and dead letters of rsbus streams on Redis, for "
    "Prometheus: <a href=\"/metrics\">/metrics</a>.</p>\n</body></html>\n";

/* Queues the answer; body is malloc'd and becomes libmicrohttpd's (NULL: out of memory, connection closed). */
static mhd_result answer(struct MHD_Connection *conn, unsigned status, const char *type, char *body, size_t len) {
    struct MHD_Response *resp = body ? MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE) : NULL;
    mhd_result r;
    if (!resp) { free(body); return MHD_NO; }   /* MHD_NO: the connection is closed */
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED) MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    r = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return r;
}
/* A fixed text as an answer (copied: the library's buffer call takes a non-const pointer). */
static mhd_result answer_text(struct MHD_Connection *conn, unsigned status, const char *type, const char *text) {
    size_t len = strlen(text);
    char *copy = (char *)malloc(len + 1);
    if (copy) memcpy(copy, text, len + 1);
    return answer(conn, status, type, copy, len);
}
#define TEXT_PLAIN "text/plain; charset=utf-8"

/* Called by libmicrohttpd (on its one thread, so the buses are used by one thread) once the request
   line and headers are in: answers at once, before any body (a request with a body is answered and
   its connection closed). Header size, idle clients and the number of connections are the daemon's
   limits, set in cmd_exporter. */
static mhd_result on_request(void *user, struct MHD_Connection *conn, const char *url, const char *method,
                             const char *version, const char *upload_data, size_t *upload_size, void **state) {
    scraper *s = (scraper *)user;
    (void)version; (void)upload_data; (void)upload_size; (void)state;
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return answer_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, TEXT_PLAIN, "only GET and HEAD\n");
    if (!strcmp(url, "/metrics")) {
        size_t len = 0;
        char *text;
        scrape_run(s);
        text = scrape_render(s, &len);
        return answer(conn, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", text, len);
    }
    if (!strcmp(url, "/")) return answer_text(conn, MHD_HTTP_OK, "text/html; charset=utf-8", index_page);
    return answer_text(conn, MHD_HTTP_NOT_FOUND, TEXT_PLAIN, "not found: try /metrics\n");
}

/* "PORT", "ADDR:PORT" or "[ADDR6]:PORT"; ADDR a numeric address or "localhost"; no address: 127.0.0.1. */
static int parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *sslen) {
    char host[64];
    const char *colon = strrchr(s, ':'), *port = colon ? colon + 1 : s;
    size_t hl = colon ? (size_t)(colon - s) : 0;
    int64_t p;
    memset(ss, 0, sizeof *ss);
    if (!parse_int(port, 0, 65535, &p) || hl >= sizeof host) return 0;
    memcpy(host, s, hl);
    host[hl] = 0;
    if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
        host[hl - 1] = 0;
        if (inet_pton(AF_INET6, host + 1, &a->sin6_addr) != 1) return 0;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)p);
        *sslen = sizeof *a;
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)ss;
        if (!hl || !strcmp(host, "localhost")) strcpy(host, "127.0.0.1");
        if (inet_pton(AF_INET, host, &a->sin_addr) != 1) return 0;
        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)p);
        *sslen = sizeof *a;
    }
    return 1;
}

static int cmd_exporter(ctl *c, const command *cmd, int argc, char **argv) {
    static scraper s;           /* large (64 streams' numbers); one per process */
    const char *listen = "127.0.0.1:9478", *timeout = NULL, *client_timeout = NULL, *max_conn = NULL;
    const optspec specs[] = { { "--listen", &listen, NULL }, { "--timeout", &timeout, NULL },
                              { "--client-timeout", &client_timeout, NULL }, { "--max-connections", &max_conn, NULL },
                              { NULL, NULL, NULL } };
    struct sockaddr_storage ss;
    socklen_t sslen = 0;
    struct MHD_Daemon *d;
    const union MHD_DaemonInfo *info;
    int64_t idle_s = 10, conns = 64;
    int rc;
    char where[128] = "?", b1[600];
    if ((argc = take_streams(&s, cmd, argc, argv)) < 0) return EXIT_USAGE;
    if ((rc = parse_args(c, cmd, argc, argv, specs, NULL, 0, 0)) != GO_ON) return rc;
    if (!parse_listen(listen, &ss, &sslen)) return usage_error(cmd, "--listen takes PORT, ADDR:PORT or [ADDR6]:PORT, not", listen);
    if (client_timeout && !parse_int(client_timeout, 1, 3600, &idle_s))
        return usage_error(cmd, "--client-timeout takes seconds (1..3600), not", client_timeout);
    if (max_conn && !parse_int(max_conn, 1, 1000, &conns))
        return usage_error(cmd, "--max-connections takes 1..1000, not", max_conn);
    if ((rc = scraper_init(&s, c, cmd, timeout)) != GO_ON) { scraper_free(&s); return rc; }
    signal(SIGPIPE, SIG_IGN);   /* a scraper that hangs up mid-answer must not end the exporter */
    errno = 0;
    d = MHD_start_daemon(MHD_USE_AUTO | MHD_USE_INTERNAL_POLLING_THREAD | (ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0),
                         0, NULL, NULL, on_request, &s,
                         MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                         MHD_OPTION_CONNECTION_LIMIT, (unsigned int)conns,
                         MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)idle_s,
                         MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)16384,   /* request line + headers */
                         MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "rsbusctl: exporter: cannot listen on %s: %s\n", esc(listen, 64, b1, sizeof b1),
                errno ? strerror(errno) : "libmicrohttpd refused");
        scraper_free(&s);
        return 1;
    }
    if ((info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_LISTEN_FD)) != NULL) {   /* the port, also for port 0 */
        struct sockaddr_storage got;
        socklen_t gl = sizeof got;
        char host[64];
        if (getsockname(info->listen_fd, (struct sockaddr *)&got, &gl) == 0) {
            if (got.ss_family == AF_INET6) {
                struct sockaddr_in6 *a = (struct sockaddr_in6 *)&got;
                snprintf(where, sizeof where, "[%s]:%u", inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host) ? host : "?",
                         (unsigned)ntohs(a->sin6_port));
            } else {
                struct sockaddr_in *a = (struct sockaddr_in *)&got;
                snprintf(where, sizeof where, "%s:%u", inet_ntop(AF_INET, &a->sin_addr, host, sizeof host) ? host : "?",
                         (unsigned)ntohs(a->sin_port));
            }
        }
    }
    catch_signals();
    fprintf(stderr, "rsbusctl: exporter: serving http://%s/metrics for %zu stream%s (Ctrl-C or SIGTERM stops it)\n",
            where, s.n, s.n == 1 ? "" : "s");
    while (!stop_flag) nap_ms(1000);
    MHD_stop_daemon(d);   /* waits for a scrape in progress */
    scraper_free(&s);
    return 0;
}

#else   /* built without libmicrohttpd */

static int cmd_exporter(ctl *c, const command *cmd, int argc, char **argv) {
    int i;
    (void)c;
    for (i = 0; i < argc && strcmp(argv[i], "--"); i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { print_help(cmd); return 0; }
    fprintf(stderr, "rsbusctl: exporter: this rsbusctl was built without libmicrohttpd (make defines RSBUSCTL_EXPORTER\n"
                    "when pkg-config finds it: Debian/Ubuntu libmicrohttpd-dev, Fedora libmicrohttpd-devel, macOS\n"
                    "brew libmicrohttpd). \"rsbusctl metrics --textfile PATH\" writes the same numbers without it.\n");
    return 1;
}

#endif

static int cmd_metrics(ctl *c, const command *cmd, int argc, char **argv) {
    static scraper s;
    const char *textfile = NULL, *timeout = NULL;
    const optspec specs[] = { { "--textfile", &textfile, NULL }, { "--timeout", &timeout, NULL }, { NULL, NULL, NULL } };
    char *buf = NULL;
    size_t size = 0, need;
    int rc;
    if ((argc = take_streams(&s, cmd, argc, argv)) < 0) return EXIT_USAGE;
    if ((rc = parse_args(c, cmd, argc, argv, specs, NULL, 0, 0)) != GO_ON) return rc;
    if (textfile) {
        rc = metrics_textfile(c, cmd, &s, textfile, timeout);
        scraper_free(&s);
        return rc;
    }
    if (s.n > 1 || timeout) return usage_error(cmd, "several --stream and --timeout go with --textfile", NULL);
    if (s.n == 1) c->cfg.stream = s.w[0].name;
    if (!open_bus(c, NULL)) return 1;
    need = rsbus_metrics_text(c->bus, NULL, 0);
    while (need >= size) {   /* a group may appear between the two calls: size again */
        char *p = (char *)realloc(buf, need + 256);
        if (!p) { free(buf); return fail(c, "metrics", RSBUS_E_NOMEM); }
        buf = p;
        size = need + 256;
        need = rsbus_metrics_text(c->bus, buf, size);
    }
    fwrite(buf, 1, need, stdout);
    free(buf);
    return 0;
}

/* ---- top ------------------------------------------------------------------------------------ */

typedef struct top_series { double v[HIST]; int n; } top_series;
typedef struct top_group {
    char name[128];
    int64_t acked;          /* entries_read - pending, -1 unknown */
    double rate;            /* acks per second, < 0 unknown */
    top_series hist;
    int seen;
} top_group;

static void series_push(top_series *s, double v) {
    if (s->n == HIST) { memmove(s->v, s->v + 1, (HIST - 1) * sizeof s->v[0]); s->n--; }
    s->v[s->n++] = v < 0 ? 0 : v;
}
static void print_spark(const top_series *s) {
    static const char *const blocks[8] = { "\xe2\x96\x81", "\xe2\x96\x82", "\xe2\x96\x83", "\xe2\x96\x84",
                                           "\xe2\x96\x85", "\xe2\x96\x86", "\xe2\x96\x87", "\xe2\x96\x88" };
    double max = 0;
    int i;
    for (i = 0; i < s->n; i++) if (s->v[i] > max) max = s->v[i];
    for (i = 0; i < s->n; i++) fputs(blocks[max > 0 ? (int)(s->v[i] / max * 7.0 + 0.5) : 0], stdout);
}
static const char *fmt_rate(double r, char *out, size_t size) {
    if (r < 0) return "-";
    snprintf(out, size, "%.1f", r);
    return out;
}

static int cmd_top(ctl *c, const command *cmd, int argc, char **argv) {
    const char *iters = NULL, *interval = NULL;
    const optspec specs[] = { { "--iterations", &iters, NULL }, { "--interval", &interval, NULL }, { NULL, NULL, NULL } };
    int64_t max_frames = 0, every = 1000, frame, prev_t = 0, prev_added = -1;
    top_group *tg = NULL;
    top_series pub_hist;
    size_t ntg = 0, i, k;
    int tty = isatty(STDOUT_FILENO), plain, rc = parse_args(c, cmd, argc, argv, specs, NULL, 0, 0);
    char b1[600], b2[32], b3[32];
    if (rc != GO_ON) return rc;
    if (iters && !parse_int(iters, 1, INT64_MAX, &max_frames)) return usage_error(cmd, "--iterations must be a positive integer, not", iters);
    if (interval && (!parse_duration(interval, &every, &plain) || every < 10 || every > 86400000))
        return usage_error(cmd, "--interval takes milliseconds (10..86400000) or a duration, not", interval);
    if (!open_bus(c, NULL)) return 1;
    memset(&pub_hist, 0, sizeof pub_hist);
    catch_signals();
    for (frame = 1; !stop_flag && (!max_frames || frame <= max_frames); frame++) {
        rsbus_stream_info si;
        rsbus_group_info *g = NULL;
        size_t ng = 0;
        int64_t now = 0;
        double dt, pub_rate = -1;
        rsbus_result r = rsbus_server_time_ms(c->bus, &now);
        if (r == RSBUS_OK) r = rsbus_stream_info_get(c->bus, &si);
        if (r == RSBUS_OK) r = list_groups(c, &g, &ng);
        if (tty) fputs("\033[H\033[2J", stdout);
        else if (frame > 1) putchar('\n');
        printf("rsbusctl top  %s  every %lld ms  frame %lld", esc(c->cfg.stream, 200, b1, sizeof b1), (long long)every,
               (long long)frame);
        if (max_frames) printf("/%lld", (long long)max_frames);
        printf("%s\n", tty ? "  (Ctrl-C to quit)" : "");
        if (r < 0) {   /* keep going: a live view outlives a blip */
            printf("error: %s: %s\n", rsbus_result_str(r), rsbus_errmsg(c->bus));
            prev_t = 0;
            free(g);
        } else {
            dt = prev_t && now > prev_t ? (double)(now - prev_t) / 1000.0 : 0;
            if (dt > 0 && prev_added >= 0 && si.entries_added >= 0) pub_rate = (double)(si.entries_added - prev_added) / dt;
            if (dt > 0) series_push(&pub_hist, pub_rate);
            printf("stream   length %lld   dead letters %lld   publish/s %s  ", (long long)si.length,
                   (long long)si.dlq_length, fmt_rate(pub_rate, b2, sizeof b2));
            print_spark(&pub_hist);
            printf("\n\n%-24s %10s %10s %10s %5s  %s\n", "GROUP", "ACK/S", "LAG", "PENDING", "CONS", "ACK RATE (last 20)");
            for (k = 0; k < ntg; k++) tg[k].seen = 0;
            for (i = 0; i < ng; i++) {
                int64_t acked = g[i].entries_read >= 0 ? g[i].entries_read - g[i].pending : -1;
                top_group *t = NULL;
                for (k = 0; k < ntg && !t; k++) if (!strcmp(tg[k].name, g[i].name)) t = &tg[k];
                if (!t) {
                    top_group *p = (top_group *)realloc(tg, (ntg + 1) * sizeof *tg);
                    if (!p) continue;
                    tg = p;
                    t = &tg[ntg++];
                    memset(t, 0, sizeof *t);
                    snprintf(t->name, sizeof t->name, "%s", g[i].name);
                    t->acked = -1;
                }
                t->seen = 1;
                t->rate = dt > 0 && acked >= 0 && t->acked >= 0 ? (double)(acked - t->acked) / dt : -1;
                if (dt > 0) series_push(&t->hist, t->rate);
                t->acked = acked;
                snprintf(b3, sizeof b3, "%lld", (long long)g[i].lag);
                printf("%-24s %10s %10s %10lld %5lld  ", esc(g[i].name, 128, b1, sizeof b1), fmt_rate(t->rate, b2, sizeof b2),
                       g[i].lag >= 0 ? b3 : "unknown", (long long)g[i].pending, (long long)g[i].consumers);
                print_spark(&t->hist);
                putchar('\n');
            }
            if (!ng) printf("(no consumer groups)\n");
            for (k = 0; k < ntg;) {   /* forget deleted groups */
                if (tg[k].seen) k++;
                else tg[k] = tg[--ntg];
            }
            free(g);
            prev_t = now;
            prev_added = si.entries_added;
        }
        fflush(stdout);
        if (!max_frames || frame < max_frames) nap_ms(every);
    }
    free(tg);
    return 0;
}

/* ---- the table of commands, main -------------------------------------------------------------- */

static int cmd_help(ctl *c, const command *cmd, int argc, char **argv);

static const command commands[] = {
    { "pub", cmd_pub, "pub TYPE JSON | pub --field NAME=VALUE ... [--key K]", "publish one event; prints its stream id",
      "Publishes one event of type TYPE ([A-Za-z0-9._:-], 1..128 bytes) whose payload is the JSON text\n"
      "JSON, with a generated event id, and prints its stream id.\n"
      "With --field (repeated, in order) it adds an entry of exactly those fields instead (no type, id or\n"
      "ts of rsbus's), for consumers that expect another layout, e.g. eventsource-py's:\n"
      "  rsbusctl pub --field event_id=$(uuidgen) --field event_type=OrderCreated --field payload='{...}'\n"
      "Names are 1..1024 bytes, up to 256 fields. --key K is the ordering key: it picks the partition.\n" },
    { "tail", cmd_tail, "tail [--count N]", "follow new entries as they arrive",
      "Follows the stream: one line per entry added from now on, with its stream id, its age by Redis's\n"
      "clock, type, event id and the first 80 bytes of the payload (control characters escaped). Reads\n"
      "without a consumer group, so it takes nothing from any consumer. Ctrl-C or SIGTERM ends it.\n"
      "--json prints one JSON object a line: stream_id, added_ms (Redis's clock), type, id, key, source,\n"
      "tenant, correlation_id, traceparent, replay_of, version, ts_ms, and data (the payload as a string).\n"
      "Entries rsbus cannot read as events (no type, payload not JSON) are skipped, unless --foreign:\n"
      "then they are shown too, type \"(foreign)\" when they have none, each followed by every one of\n"
      "their fields (NAME = VALUE, escaped); with --json they add \"foreign\": true and \"fields\": [{\"name\",\n"
      "\"value\"}, ...] (\"name_hex\"/\"value_hex\" instead for bytes that are not UTF-8). RSBUS_TYPE_FIELD,\n"
      "RSBUS_ID_FIELD and RSBUS_DATA_FIELD name the fields read as type, id and payload.\n"
      "  --count N     exit after N entries\n"
      "  --foreign     show entries other programs wrote, with all their fields\n" },
    { "replay", cmd_replay, "replay [--from FROM] [--to TO] [--count N]", "print the events of a range of history, oldest first",
      "Prints the stream's entries from FROM to TO, both included, oldest first, as tail prints them:\n"
      "stream id, age by Redis's clock, type, event id and the first 80 bytes of the payload. It only\n"
      "reads (XRANGE): nothing is acknowledged, published or changed, and no consumer group is involved -\n"
      "for looking at history, or feeding a projection that is being rebuilt. FROM and TO are each:\n"
      "  - or +                    the oldest or the newest entry (the defaults)\n"
      "  1700000000000-0           a stream id\n"
      "  1700000000000             epoch milliseconds: the whole millisecond, at either end\n"
      "  30s, 15m, 24h, 7d         that long ago by Redis's clock\n"
      "Malformed entries (no type, payload not JSON) are skipped, unless --foreign: then entries other\n"
      "programs wrote are shown with all their fields, as tail --foreign shows them. A summary goes to\n"
      "stderr. --json prints one JSON array of the objects tail --json prints ([] when the range holds\n"
      "nothing).\n"
      "  --from FROM   the first entry (default -)\n"
      "  --to TO       the last entry (default +)\n"
      "  --count N     stop after N events\n"
      "  --foreign     show entries other programs wrote, with all their fields\n" },
    { "info", cmd_info, "info", "server, length, ids, dead letters, each group's lag and pending",
      "Prints the server reached (address, role, replicas in sync; with a redis+sentinel:// URL the master\n"
      "the sentinels named), the stream's length, first and last ids, entries added, the dead-letter\n"
      "count, and for every consumer group its lag (\"unknown\" when Redis cannot tell), pending entries,\n"
      "consumers and last delivered id. --json prints one JSON object.\n" },
    { "partitions", cmd_partitions, "partitions", "each partition: key, slot, server, length, lag, pending, dead letters",
      "Lists the partitions of the stream (one, the stream itself, when it is not partitioned): index,\n"
      "key, cluster slot, the server that holds it, length, the group's lag (--group) and pending\n"
      "entries, and dead letters. Warns when the partitions pile up on one server (on a single Redis\n"
      "they always do: partitions spread load only over a cluster's masters). The count comes from\n"
      "--partitions / RSBUS_PARTITIONS, else from the record the stream's first bus pinned in Redis.\n"
      "--json prints one JSON object.\n" },
    { "consumers", cmd_consumers, "consumers [--gc IDLE]", "the group's consumers; --gc deletes idle ones holding nothing",
      "Lists the consumers of the group (--group): pending entries, idle time, and inactive time where\n"
      "Redis (7.2+) reports it. --json prints JSON.\n"
      "  --gc IDLE     first delete the consumers idle at least IDLE (milliseconds, or 30s, 15m, 24h, 7d)\n"
      "                that hold nothing pending, and say how many\n" },
    { "rewind", cmd_rewind, "rewind ID|WHEN --yes", "move the group's position so it handles entries again",
      "Moves the position of the consumer group (--group) with XGROUP SETID, so that its consumers get the\n"
      "entries after it again: to redo work after a fix, or rebuild what a group computes. It changes what\n"
      "the consumers will read, so without --yes it changes nothing, says what it would do, and exits 2.\n"
      "  1700000000000-5     a stream id: the group next gets the entries after it\n"
      "  0                   from the beginning of the stream\n"
      "  '$'                 the end: the entries there now are not delivered (skips them)\n"
      "  1700000000000       epoch milliseconds: the entries from that millisecond on\n"
      "  30s, 15m, 24h, 7d   that long ago by Redis's clock: the entries added since\n"
      "Prints the old and new last delivered id. Entries pending in the group stay pending (each consumer\n"
      "re-reads its own when it restarts). --json prints a JSON object.\n"
      "  --yes         really move it\n" },
    { "dlq", cmd_dlq, "dlq ls | show ID | replay ID|--all | purge --before WHEN --yes", "inspect, replay and purge dead letters",
      "Dead letters (the stream's {STREAM}:dlq stream; of every partition, merged oldest first, with ids\n"
      "p<i>/<ms-seq>, on a partitioned stream):\n"
      "  dlq ls                  every dead letter: id, age by Redis's clock, type, event id, group,\n"
      "                          deliveries, error (--json: an object with a dead_letters array)\n"
      "  dlq show ID             every field of one dead letter, the payload indented (--json too)\n"
      "  dlq replay ID           put it back on the stream for the group that failed it; prints\n"
      "                          \"DLQ_ID -> NEW_STREAM_ID\"\n"
      "  dlq replay --all        the same for every dead letter there now\n"
      "  dlq purge --before WHEN --yes\n"
      "                          delete the dead letters that failed before WHEN: epoch milliseconds, or\n"
      "                          a duration (30s, 15m, 24h, 7d) meaning that long ago by Redis's clock.\n"
      "                          Without --yes it deletes nothing, says how many it would, and exits 2.\n" },
    { "spool", cmd_spool, "spool status|flush [--spool PATH]", "a publisher's offline spool: count it, send it",
      "The offline spool of a publisher (spool_path): the events it published while Redis could not be\n"
      "reached, kept in a local file until they are sent. The file is --spool PATH, else RSBUS_SPOOL_PATH;\n"
      "it must exist. A running bus holds a lock on its spool: while its publisher runs, rsbusctl says the\n"
      "spool is in use and exits 1 (the publisher sends it itself once Redis can be reached).\n"
      "  spool status    the events and bytes not yet sent; needs no Redis\n"
      "  spool flush     send them now, in order, and print how many were sent. They go to the stream of\n"
      "                  --stream / RSBUS_STREAM (and RSBUS_TENANT): use the publisher's. If Redis cannot\n"
      "                  be reached it exits 1 and they stay in the spool.\n"
      "Opening the spool checks it as the publisher's bus does: a record torn by a crash is cut off, with\n"
      "a warning. --json prints a JSON object.\n"
      "  --spool PATH  the spool file\n" },
    { "health", cmd_health, "health [--max-lag N]", "HEALTHY / DEGRADED / UNHEALTHY, exit 0 / 1 / 2",
      "Prints HEALTHY, DEGRADED or UNHEALTHY and why, and exits 0, 1 or 2. UNHEALTHY: Redis cannot be\n"
      "reached. DEGRADED: the group's lag or pending above N, dead letters present, an evicting\n"
      "maxmemory-policy, or a group named with --group / RSBUS_GROUP that does not exist; with\n"
      "RSBUS_PUBLISH_WAIT_REPLICAS or a sentinel URL also fewer replicas in sync than that, or a server\n"
      "that is not a master. Then a line says which server it reached and its replicas. Creates\n"
      "nothing. --json prints JSON.\n"
      "  --max-lag N   lag and pending allowed (default 1000)\n" },
    { "metrics", cmd_metrics, "metrics [--textfile PATH [--stream S]... [--timeout MS]]", "Prometheus text exposition",
      "Prints the Prometheus text exposition of the stream and its groups (rsbus_metrics_text).\n"
      "With --textfile it writes what the exporter serves instead - rsbus_up, and per stream (--stream,\n"
      "repeatable; default the tool's stream) its length, entries added, dead letters, and per group lag,\n"
      "pending, consumers and the idle time of the oldest pending entry - to PATH, atomically (a temporary\n"
      "file beside it, then a rename), for node_exporter's textfile collector (PATH ending in .prom in its\n"
      "--collector.textfile.directory; run it from cron). Exits 1 when Redis could not be reached (the\n"
      "file then says rsbus_up 0) or PATH could not be written.\n"
      "  --textfile PATH   the file to write\n"
      "  --timeout MS      give up on Redis after about this long (milliseconds or 5s; default 5000)\n" },
    { "exporter", cmd_exporter, "exporter [--listen ADDR:PORT] [--stream S]... [--timeout MS]",
      "serve the numbers of streams and groups to Prometheus",
      "Serves GET /metrics in the Prometheus text format (and a short page at /) until Ctrl-C or SIGTERM.\n"
      "Each scrape reads every stream from Redis in one round trip (XINFO STREAM FULL COUNT 1, the DLQ's\n"
      "XLEN, TIME) and reports:\n"
      "  rsbus_up                               Redis answered (0: unreachable or too slow; still HTTP 200)\n"
      "  rsbus_scrape_duration_seconds          how long reading Redis took\n"
      "  rsbus_stream_up{stream}                the stream's numbers were read (0: refused, e.g. NOPERM)\n"
      "  rsbus_stream_length{stream}            entries (0 when the stream does not exist)\n"
      "  rsbus_stream_entries_added_total{stream}  entries ever added (Redis 7.0+)\n"
      "  rsbus_dlq_length{stream}               dead letters\n"
      "  rsbus_stream_groups{stream}            consumer groups (the first 1000 are exported)\n"
      "  rsbus_group_lag{stream,group}          entries not yet delivered; absent when Redis cannot tell\n"
      "  rsbus_group_pending{stream,group}      delivered, not yet acknowledged\n"
      "  rsbus_group_consumers{stream,group}    consumers in Redis\n"
      "  rsbus_group_oldest_pending_idle_seconds{stream,group}  since the oldest pending entry was\n"
      "                                         last delivered (0 when none is pending)\n"
      "It takes nothing from any consumer and creates nothing. examples/prometheus/ has a scrape config\n"
      "and alert rules. Needs libmicrohttpd at build time (make finds it with pkg-config).\n"
      "  --listen ADDR:PORT   where to listen: PORT, ADDR:PORT or [ADDR6]:PORT (default 127.0.0.1:9478;\n"
      "                       port 0 picks a free one, printed on stderr)\n"
      "  --stream S           a stream to watch; repeat for more (up to 64; default the tool's stream)\n"
      "  --timeout MS         a scrape gives up on Redis after about this long (default 5000)\n"
      "  --client-timeout S   drop a client idle this many seconds mid-request (default 10)\n"
      "  --max-connections N  HTTP connections at once (default 64)\n" },
    { "top", cmd_top, "top [--iterations N] [--interval MS]", "live publish and ack rates, lag and pending per group",
      "A live view, refreshed every interval: the stream's length, dead letters and publish rate, and\n"
      "per group the ack rate, lag, pending, consumers and a sparkline of the last 20 ack rates. Rates\n"
      "use Redis's clock. Clears the screen on a terminal; otherwise prints one frame after another.\n"
      "  --iterations N   stop after N frames\n"
      "  --interval MS    time between frames in milliseconds, or a duration (2s); default 1000\n" },
    { "help", cmd_help, "help [COMMAND]", "this text, or a command's", "Prints the usage of rsbusctl or of one command.\n" },
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static const command *find_command(const char *name) {
    size_t i;
    for (i = 0; i < NCOMMANDS; i++) if (!strcmp(commands[i].name, name)) return &commands[i];
    return NULL;
}
static void print_usage(void) {
    size_t i;
    fputs(tool_usage, stdout);
    for (i = 0; i < NCOMMANDS; i++) {
        if (strlen(commands[i].synopsis) < 38) printf("  %-38s %s\n", commands[i].synopsis, commands[i].summary);
        else printf("  %s\n  %-38s %s\n", commands[i].synopsis, "", commands[i].summary);
    }
    fputs(tool_options, stdout);
}
static int cmd_help(ctl *c, const command *cmd, int argc, char **argv) {
    const char *pos[1] = { NULL };
    const command *target;
    int rc = parse_args(c, cmd, argc, argv, NULL, pos, 0, 1);
    if (rc != GO_ON) return rc;
    if (!pos[0]) { print_usage(); return 0; }
    if (!(target = find_command(pos[0]))) return usage_error(cmd, "unknown command", pos[0]);
    print_help(target);
    return 0;
}

int main(int argc, char **argv) {
    ctl c;
    rsbus_error err;
    const command *cmd;
    char buf[300];
    int i, rc;
    memset(&c, 0, sizeof c);
    /* the environment first, so that the options override it; its errors only matter for a command */
    if (rsbus_config_from_env(&c.cfg, NULL, &err) != RSBUS_OK) c.cfg.url = NULL;
    else err.code = RSBUS_OK;
    c.env_spool = c.cfg.spool_path;
    c.group_given = c.cfg.group != NULL;
    c.partitions_given = getenv("RSBUS_PARTITIONS") != NULL;
    for (i = 1; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { print_usage(); return 0; }
        if (!strcmp(a, "--version")) { printf("rsbusctl (rsbus %s)\n", RSBUS_VERSION_STRING); return 0; }
        if (!strcmp(a, "--json")) { c.json = 1; continue; }
        if ((rc = global_opt(&c, argc, argv, &i)) == -2) {
            fprintf(stderr, "rsbusctl: --partitions takes 0..256\n");
            return EXIT_USAGE;
        }
        if (rc < 0) { fprintf(stderr, "rsbusctl: %s needs a value\n", a); return EXIT_USAGE; }
        if (rc) continue;
        /* never echo what might be a mistyped --url=... with a password in it */
        fprintf(stderr, "rsbusctl: unknown option %s\n(rsbusctl --help for usage)\n",
                strchr(a, '=') ? "(one with '=')" : esc(a, 64, buf, sizeof buf));
        return EXIT_USAGE;
    }
    if (i >= argc) { fprintf(stderr, "rsbusctl: missing command\n(rsbusctl --help for usage)\n"); return EXIT_USAGE; }
    if (!(cmd = find_command(argv[i]))) {
        fprintf(stderr, "rsbusctl: unknown command %s\n(rsbusctl --help for usage)\n", esc(argv[i], 64, buf, sizeof buf));
        return EXIT_USAGE;
    }
    if (err.code != RSBUS_OK && cmd->fn != cmd_help) {
        fprintf(stderr, "rsbusctl: environment: %s: %s\n", rsbus_result_str(err.code), err.msg);
        return EXIT_USAGE;
    }
    c.cfg.publish_only = 1;   /* create no group, ever; the calls that need one are given its name */
    c.cfg.spool_path = NULL;  /* an admin tool reports failures, it does not spool ("spool" sets its own) */
    c.cfg.log = log_stderr;   /* level: RSBUS_LOG_LEVEL, else warnings */
    rc = cmd->fn(&c, cmd, argc - i - 1, argv + i + 1);
    rsbus_close(c.bus);
    return rc;
}
