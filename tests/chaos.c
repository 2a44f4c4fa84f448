/* chaos.c - the chaos run: prove that no event is lost.

       chaos [--seconds N] [--publishers P] [--consumers C] [--seed S] [--rate R] [--handler-us U]
             [--fail-pct F] [--no-freeze] [--trim-acked] [--dedupe] [--spool] [--cluster] [--keep]

   (The default of N is 60, or CHAOS_DEFAULT_SECONDS when compiled with -DCHAOS_DEFAULT_SECONDS=15.)

   One redis-server with appendonly yes / appendfsync always; two consumer groups (g1, g2) created at
   "0" on the stream "chaos" before anything is published. P publisher processes publish events with
   ids "p<idx>-<seq>" (single XADDs and batches of 10) at R events/s each (default 300), and log the id
   of every publish that returned RSBUS_OK (and, apart, of every one that failed). About 1% of the
   events are poison (type "poison.x", a function of seed, publisher and seq): every handler fails them,
   so they must end in the DLQ of each group. Other events fail transiently (RSBUS_RETRY) on their
   first delivery with a probability of F% (default 10): only on the first, so that such an event can
   reach the DLQ only if three more of its deliveries are cut short by faults (API.md: deliveries count
   crashed ones), which would be reported with its details. Handling an event takes U us (default
   500), so that faults catch entries in hand. C consumer processes (split over g1 and g2) run
   rsbus_run with short timings; each handler appends "<event id> <deliveries>" to its process's log
   with one write(2) before it returns RSBUS_ACK, so a consumer killed between handling and
   acknowledging shows up as a duplicate, never as a loss.

   Faults while it runs (none during the drain): a random consumer SIGKILLed every 1-3 s and replaced
   (same group; a fresh name, or one time in three the dead one's name), some client connections
   killed every second (CLIENT KILL ID), the server SIGKILLed and restarted from its AOF twice, and
   (unless --no-freeze) a random consumer frozen (SIGSTOP) for 1.2-2.5 s every 3-6 s, longer than
   claim_idle_ms: the others take its entries over while it holds them; and every 4-7 s a consumer
   stopped with SIGTERM, whatever it is doing, which must exit 0 within 5 s (then replaced).

   Then: publishers stopped (SIGTERM), consumers left to drain (both groups caught up with nothing
   pending), stopped with SIGTERM (they must exit 0), and for each group every event whose publish
   returned RSBUS_OK must have been handled at least once or be in that group's DLQ, and the DLQ must
   hold exactly the poison events. A global deadline (seconds + 60 s for the drain) bounds the run;
   every child is killed and reaped, and checked gone at the end.

   --trim-acked runs everything with trim_policy RSBUS_TRIM_ACKED: the consumers' rsbus_run trims the
   stream to what both groups acknowledged, and the same checks must hold (the stream length printed is
   then what was left).

   --dedupe gives the consumers dedupe_ttl_ms (10 min): the duplicates reported are then the handler
   calls dedupe did not prevent. --spool gives each publisher an offline spool: a publish that returns
   RSBUS_SPOOLED counts as accepted (it is logged with the RSBUS_OK ones) and must arrive like them;
   a publisher sends what is left in its spool before it exits.

   --cluster runs it all on a 3+3 Redis Cluster (redis+cluster://, every node with the AOF) instead of
   one server: the first "restart" SIGKILLs the master that serves the stream's slot, waits for a
   replica to take over and brings the dead node back (as a replica); the second reshards every slot
   of the stream's master to another master under the running publishers and consumers; CLIENT KILLs
   hit the stream's master. Publishers use publish_wait_replicas 1 (WAIT 1 500 after each XADD), so a
   publish that returned RSBUS_OK is on the replica too and must survive the kill: such events missing
   afterwards are counted on a line of their own and fail "lost 0". A publish answered RSBUS_E_REPLICAS
   (the new master has no replica until the old one comes back and syncs) is logged as failed; it is in
   Redis and usually arrives, and is counted with "arrived anyway".

   The last line is "chaos: N passed, N failed"; the exit status is 0 only if nothing failed.
   --keep keeps the log directory (printed) for a look afterwards. */
#define _POSIX_C_SOURCE 200809L
#define RSBUS_IMPLEMENTATION
#include "../rsbus.h"
#include "test.h"
#include "redis_server.h"
#include "redis_cluster.h"
#include "bus_util.h"

#include <errno.h>
#include <inttypes.h>

#ifndef CHAOS_DEFAULT_SECONDS
#define CHAOS_DEFAULT_SECONDS 60   /* the Makefile builds a short form for make test with 15 */
#endif
#define CHAOS_STREAM "chaos"
#define CHAOS_DLQ "{chaos}:dlq"
#define MAX_KIDS 4096
#define DRAIN_MS 60000
#define POISON_TYPE "poison.x"
#define EVENT_TYPE "chaos.ev"

static const char *const group_names[2] = { "g1", "g2" };

/* ---- options ------------------------------------------------------------------------------ */

static struct {
    int seconds, publishers, consumers, rate, fail_pct, handler_us, freezes, trim_acked, keep, dedupe, spool, cluster;
    uint64_t seed;
} opt = { CHAOS_DEFAULT_SECONDS, 3, 4, 300, 10, 500, 1, 0, 0, 0, 0, 0, 0 };

/* --cluster: a 3+3 Redis Cluster; srv is a copy of the master that serves the stream's slot now */
static test_cluster ccl;
static int chaos_slot(void) { return rsbus_key_slot(CHAOS_STREAM, 0); }
static int follow_master(void) {
    int m = test_cluster_master_of(&ccl, chaos_slot());
    if (m < 0) return -1;
    raw_reset();
    srv = ccl.node[m];
    return m;
}

static char logdir[256];

/* ---- random ------------------------------------------------------------------------------- */

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static uint64_t rng;   /* the orchestrator's */
static int rnd_below(int n) { return n <= 1 ? 0 : (int)(splitmix64(&rng) % (uint64_t)n); }

/* Whether event <pub>/<seq> is poison: about 1 in 100, the same in every process of a run. */
static int is_poison(int pub, uint64_t seq) {
    uint64_t s = opt.seed ^ ((uint64_t)(unsigned)pub << 48) ^ (seq * 0x2545F4914F6CDD1Dull);
    return splitmix64(&s) % 100 == 0;
}
/* Parses "p<idx>-<seq>"; 0 if the id is not of that shape. */
static int parse_event_id(const char *id, int *pub, uint64_t *seq) {
    char *end;
    unsigned long p;
    unsigned long long s;
    if (!id || id[0] != 'p' || id[1] < '0' || id[1] > '9') return 0;
    errno = 0;
    p = strtoul(id + 1, &end, 10);
    if (errno || *end != '-' || p > 100000 || end[1] < '0' || end[1] > '9') return 0;
    s = strtoull(end + 1, &end, 10);
    if (errno || *end) return 0;
    *pub = (int)p;
    *seq = (uint64_t)s;
    return 1;
}
static int id_is_poison(const char *id) {
    int p;
    uint64_t s;
    return parse_event_id(id, &p, &s) && is_poison(p, s);
}

/* ---- child processes ---------------------------------------------------------------------- */

enum { KIND_PUB = 1, KIND_CONS = 2 };
typedef struct kid {
    pid_t pid;
    int kind, idx, group;
    int running;           /* started and not reaped yet */
    int killed;            /* SIGKILLed by the fault injector: its exit is expected */
    int stopping;          /* SIGTERM sent at the end */
    int status;            /* waitpid status once reaped */
    int64_t frozen_until;  /* SIGSTOPped by the fault injector until then (0: not frozen) */
    char name[64];         /* consumer name */
    char log[320];         /* handled ids (consumers) or published ids (publishers) */
    char log2[320];        /* transient failures (consumers) or failed publishes (publishers) */
    char log3[320];        /* the library's log lines (consumers) */
} kid;
static kid kids[MAX_KIDS];
static volatile sig_atomic_t nkids;
static pid_t redis_pids[16];
static int nredis_pids;

static volatile sig_atomic_t child_stop;   /* in a child: SIGTERM seen */
static int lib_log_fd = -1;                /* in a child: where the library's log lines go */

static void on_child_term(int sig) { (void)sig; child_stop = 1; }

static void write_all(int fd, const char *buf, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, buf, n);
        if (w < 0) { if (errno == EINTR) continue; return; }
        buf += w;
        n -= (size_t)w;
    }
}

static void lib_log(void *user, rsbus_log_level level, const char *msg) {
    char line[1200];
    int n;
    (void)user;
    if (lib_log_fd < 0) return;
    n = snprintf(line, sizeof line, "%lld [%d] %s\n", (long long)test_now_ms(), (int)level, msg);
    if (n > 0) write_all(lib_log_fd, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

static rsbus_config base_cfg(void) {
    rsbus_config c;
    memset(&c, 0, sizeof c);
    c.url = opt.cluster ? ccl.url : srv.unix_url;
    c.stream = CHAOS_STREAM;
    c.connect_timeout_ms = 1000;
    c.io_timeout_ms = 1000;
    c.max_len = -1;            /* never trim: the verification reads the whole stream */
    c.dlq_max_len = -1;
    if (opt.trim_acked) c.trim_policy = RSBUS_TRIM_ACKED;   /* consumers trim what both groups acknowledged */
    return c;
}

static int open_append(const char *path) {
    return open(path, O_WRONLY | O_CREAT | O_APPEND, 0600);
}

/* ---- publisher ---------------------------------------------------------------------------- */

static void publisher_main(const kid *k) {
    rsbus_config c = base_cfg();
    rsbus_error err;
    rsbus *bus = NULL;
    uint64_t rs = opt.seed ^ (0xA5A5ull + (uint64_t)k->idx * 7919u), seq = 0;
    int okfd = open_append(k->log), errfd = open_append(k->log2);
    double next;
    char spool[600];
    if (okfd < 0 || errfd < 0) _exit(3);
    c.publish_only = 1;
    if (opt.cluster) {   /* replicated publishing: RSBUS_OK means the master's replica has the event too */
        c.publish_wait_replicas = 1;
        c.publish_wait_ms = 500;
    }
    if (opt.spool) {
        snprintf(spool, sizeof spool, "%s.spool", k->log);
        c.spool_path = spool;
    }
    while (!child_stop && !(bus = rsbus_open(&c, &err))) test_sleep_ms(100);
    if (!bus) _exit(0);
    next = (double)test_now_ms();
    while (!child_stop) {
        rsbus_event evs[10];
        char ids[10][40], data[10][64], lines[10 * 200];
        size_t n = splitmix64(&rs) % 100 < 4 ? 10 : 1, i, len = 0;
        rsbus_result r;
        int64_t now;
        memset(evs, 0, sizeof evs);
        for (i = 0; i < n; i++) {
            seq++;
            snprintf(ids[i], sizeof ids[i], "p%d-%" PRIu64, k->idx, seq);
            snprintf(data[i], sizeof data[i], "{\"p\":%d,\"seq\":%" PRIu64 "}", k->idx, seq);
            evs[i].type = is_poison(k->idx, seq) ? POISON_TYPE : EVENT_TYPE;
            evs[i].id = ids[i];
            evs[i].data = data[i];
            evs[i].key = ids[i] + 1;
        }
        r = n == 1 ? rsbus_publish(bus, &evs[0], NULL) : rsbus_publish_batch(bus, evs, n, NULL);
        if (r == RSBUS_SPOOLED) r = RSBUS_OK;   /* accepted: it must arrive */
        for (i = 0; i < n; i++) {
            int w = r == RSBUS_OK ? snprintf(lines + len, sizeof lines - len, "%s\n", ids[i])
                                  : snprintf(lines + len, sizeof lines - len, "%s %s b%" PRIu64 "/%u %.120s\n",
                                             ids[i], rsbus_result_str(r), seq - n + 1, (unsigned)n,
                                             rsbus_errmsg(bus));
            if (w > 0) len += (size_t)w < sizeof lines - len ? (size_t)w : sizeof lines - len - 1;
        }
        write_all(r == RSBUS_OK ? okfd : errfd, lines, len);   /* one write: the lines are never torn */
        next += (double)n * 1000.0 / opt.rate;
        now = test_now_ms();
        if (next > (double)now) test_sleep_ms((int)(next - (double)now));
        else if ((double)now - next > 1000.0) next = (double)now;   /* after an outage: no burst */
    }
    if (opt.spool) {   /* what is still spooled goes out before the publisher exits */
        int64_t dl = test_now_ms() + 8000;
        size_t left = 0;
        while ((rsbus_spool_pending(bus, &left, NULL), left > 0) && test_now_ms() < dl)
            if (rsbus_spool_flush(bus, NULL) != RSBUS_OK) test_sleep_ms(100);
        if (left > 0) {
            char line[200];
            int w = snprintf(line, sizeof line, "spool: %zu events still spooled at exit\n", left);
            if (w > 0) write_all(errfd, line, (size_t)w);
        }
    }
    rsbus_close(bus);
    close(okfd);
    close(errfd);
    _exit(0);
}

/* ---- consumer ----------------------------------------------------------------------------- */

typedef struct hstate { int fd, failfd; uint64_t rs; } hstate;

static rsbus_verdict chaos_handler(const rsbus_msg *m, void *user) {
    hstate *h = (hstate *)user;
    char line[160];
    int n;
    if (m->type && strcmp(m->type, POISON_TYPE) == 0) {
        if (m->reason) snprintf(m->reason, RSBUS_REASON_SIZE, "poison: always fails");
        return RSBUS_RETRY;
    }
    /* transient failures on the first delivery only: an event that is not poison reaches the DLQ only
       if three more of its deliveries are cut short (see the report) */
    if (m->deliveries <= 1 && (int)(splitmix64(&h->rs) % 100) < opt.fail_pct) {
        n = snprintf(line, sizeof line, "%s %lld\n", m->id ? m->id : "-", (long long)m->deliveries);
        if (n > 0) write_all(h->failfd, line, (size_t)n);
        if (m->reason) snprintf(m->reason, RSBUS_REASON_SIZE, "transient");
        return RSBUS_RETRY;
    }
    if (opt.handler_us > 0) {      /* some work: entries are in hand long enough for the faults to catch them */
        struct timespec ts;
        ts.tv_sec = 0;
        ts.tv_nsec = (long)opt.handler_us * 1000L;
        nanosleep(&ts, NULL);
    }
    n = snprintf(line, sizeof line, "%s %lld\n", m->id ? m->id : "-", (long long)m->deliveries);
    if (n > 0 && write(h->fd, line, (size_t)n) != n) return RSBUS_RETRY;   /* one write(2) per line */
    return RSBUS_ACK;
}

static void consumer_main(const kid *k) {
    rsbus_config c = base_cfg();
    rsbus_error err;
    rsbus *bus = NULL;
    hstate h;
    rsbus_result r;
    h.fd = open_append(k->log);
    h.failfd = open_append(k->log2);
    h.rs = opt.seed ^ ((uint64_t)getpid() << 20) ^ (uint64_t)test_now_ms();
    lib_log_fd = open_append(k->log3);
    if (h.fd < 0 || h.failfd < 0) _exit(3);
    c.group = group_names[k->group];
    c.consumer = k->name;
    c.group_start = "0";
    c.block_ms = 200;
    c.claim_interval_ms = 200;
    c.claim_idle_ms = 1000;
    c.retry_backoff_ms = 50;
    c.max_retries = 3;
    c.log = lib_log;
    c.log_level = RSBUS_LOG_INFO;
    if (opt.dedupe) c.dedupe_ttl_ms = 600000;
    while (!child_stop && !(bus = rsbus_open(&c, &err))) {
        char line[400];
        int n = snprintf(line, sizeof line, "%lld open: %s: %s\n", (long long)test_now_ms(),
                         rsbus_result_str(err.code), err.msg);
        if (n > 0 && lib_log_fd >= 0)
            write_all(lib_log_fd, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
        test_sleep_ms(100);
    }
    if (!bus) _exit(0);
    if (rsbus_subscribe(bus, "*", chaos_handler, &h) <= 0) _exit(4);
    r = rsbus_run(bus, &child_stop);
    rsbus_close(bus);
    _exit(r == RSBUS_OK ? 0 : 5);
}

/* ---- the orchestrator's side of children -------------------------------------------------- */

static pid_t spawn_kid(int kind, int idx, int group, const char *name) {
    kid *k;
    pid_t pid, parent = getpid();
    int n = (int)nkids;
    sigset_t term, old;
    if (n >= MAX_KIDS) return -1;
    k = &kids[n];
    memset(k, 0, sizeof *k);
    k->kind = kind; k->idx = idx; k->group = group;
    if (kind == KIND_PUB) {
        snprintf(k->name, sizeof k->name, "pub%d", idx);
        snprintf(k->log, sizeof k->log, "%s/pub%d.ok", logdir, idx);
        snprintf(k->log2, sizeof k->log2, "%s/pub%d.err", logdir, idx);
    } else {
        snprintf(k->name, sizeof k->name, "%s", name);
        snprintf(k->log, sizeof k->log, "%s/%s-k%d.handled", logdir, group_names[group], n);
        snprintf(k->log2, sizeof k->log2, "%s/%s-k%d.failed", logdir, group_names[group], n);
        snprintf(k->log3, sizeof k->log3, "%s/%s-k%d-%s.lib", logdir, group_names[group], n, name);
    }
    fflush(NULL);
    /* SIGTERM stays blocked until the child's own handler is in place: a stop sent right after the
       fork must end rsbus_run, not the process */
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    sigprocmask(SIG_BLOCK, &term, &old);
    pid = fork();
    if (pid != 0) sigprocmask(SIG_SETMASK, &old, NULL);
    if (pid < 0) { fprintf(stderr, "chaos: fork: %s\n", strerror(errno)); return -1; }
    if (pid == 0) {
        struct sigaction sa;
#ifdef __linux__
        prctl(PR_SET_PDEATHSIG, SIGKILL);    /* dies with the orchestrator, even a SIGKILLed one */
        if (getppid() != parent) _exit(1);
#else
        (void)parent;
#endif
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_child_term;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGTERM, &sa, NULL);
        signal(SIGPIPE, SIG_DFL);            /* rsbus must not raise it: let it kill us if it does */
        signal(SIGALRM, SIG_DFL);
        sigprocmask(SIG_SETMASK, &old, NULL);
        if (kind == KIND_PUB) publisher_main(k); else consumer_main(k);
        _exit(0);
    }
    k->pid = pid;
    k->running = 1;
    nkids = n + 1;
    return pid;
}

static int unexpected_exits;

static const char *describe_status(int st, char *buf, size_t size) {
    if (WIFEXITED(st)) snprintf(buf, size, "exit %d", WEXITSTATUS(st));
    else if (WIFSIGNALED(st)) snprintf(buf, size, "signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
    else snprintf(buf, size, "status %d", st);
    return buf;
}

static void reaped(kid *k, int st) {
    char b[64];
    k->running = 0;
    k->status = st;
    if (k->killed) return;
    if (k->stopping && WIFEXITED(st) && WEXITSTATUS(st) == 0) return;
    unexpected_exits++;
    fprintf(stderr, "chaos: %s %s (pid %ld) ended by itself: %s\n", k->kind == KIND_PUB ? "publisher" : "consumer",
            k->name, (long)k->pid, describe_status(st, b, sizeof b));
}

/* Reaps the children that exited (by pid: never waitpid(-1), which would reap the servers). */
static void reap_exited(void) {
    int i, n = (int)nkids;
    for (i = 0; i < n; i++) {
        int st;
        if (kids[i].running && waitpid(kids[i].pid, &st, WNOHANG) == kids[i].pid) reaped(&kids[i], st);
    }
}

static void kill_kid(kid *k) {
    int st;
    if (!k->running) return;
    k->killed = 1;
    kill(k->pid, SIGKILL);
    while (waitpid(k->pid, &st, 0) < 0 && errno == EINTR) {}
    k->running = 0;
    k->status = st;
}

/* SIGTERM to every running child of a kind, then wait for them (SIGKILL at the deadline).
   Returns how many did not exit 0 in time. */
static int stop_kids(int kind, int timeout_ms) {
    int i, n = (int)nkids, bad = 0;
    int64_t dl = test_now_ms() + timeout_ms;
    for (i = 0; i < n; i++)
        if (kids[i].kind == kind && kids[i].running) { kids[i].stopping = 1; kill(kids[i].pid, SIGTERM); }
    for (i = 0; i < n; i++) {
        kid *k = &kids[i];
        int st;
        if (k->kind != kind || !k->running) continue;
        for (;;) {
            pid_t w = waitpid(k->pid, &st, WNOHANG);
            if (w == k->pid) { reaped(k, st); if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0)) bad++; break; }
            if (test_now_ms() > dl) {
                fprintf(stderr, "chaos: %s (pid %ld) did not exit within %d ms of SIGTERM: SIGKILL\n", k->name,
                        (long)k->pid, timeout_ms);
                kill_kid(k);
                unexpected_exits++;
                bad++;
                break;
            }
            test_sleep_ms(5);
        }
    }
    return bad;
}

static void kill_all_kids(void) {
    int i, n = (int)nkids;
    for (i = 0; i < n; i++) kill_kid(&kids[i]);
}

/* The backstop: the orchestrator itself stuck past the global deadline. Only async-signal-safe calls. */
static void on_watchdog(int sig) {
    static const char msg[] = "chaos: the global deadline passed: killing every child\nchaos: 0 passed, 1 failed\n";
    int i, n = (int)nkids;
    (void)sig;
    if (write(1, msg, sizeof msg - 1) < 0) {}
    for (i = 0; i < n; i++) {
        if (kids[i].running) {
            int st;
            kill(kids[i].pid, SIGKILL);
            while (waitpid(kids[i].pid, &st, 0) < 0 && errno == EINTR) {}
        }
    }
    if (!opt.keep) {     /* the logs: unlink and rmdir are async-signal-safe */
        for (i = 0; i < n; i++) {
            if (kids[i].log[0]) unlink(kids[i].log);
            if (kids[i].log2[0]) unlink(kids[i].log2);
            if (kids[i].log3[0]) unlink(kids[i].log3);
        }
        if (logdir[0]) rmdir(logdir);
    }
    raise(SIGTERM);      /* redis_server.h's handler stops the server, removes its dir, and ends us */
    if (srv.pid > 0) {   /* SIGTERM was ignored or someone else's: at least no server left running */
        int st;
        kill(srv.pid, SIGKILL);
        while (waitpid(srv.pid, &st, 0) < 0 && errno == EINTR) {}
    }
    _exit(1);
}

/* ---- faults ------------------------------------------------------------------------------- */

static struct { int consumer_kills, name_reuses, client_kills, restarts, freezes, stops; } faults;
static int stops_bad;     /* graceful stops that did not exit 0 in time */
static int cons_seq;      /* for fresh consumer names */

static int running_consumers(int *which, int max) {
    int i, n = (int)nkids, m = 0;
    for (i = 0; i < n && m < max; i++)
        if (kids[i].kind == KIND_CONS && kids[i].running) which[m++] = i;
    return m;
}

static void start_consumer(int group, const char *reuse_name) {
    char name[64];
    if (reuse_name) snprintf(name, sizeof name, "%s", reuse_name);
    else snprintf(name, sizeof name, "%s-c%d", group_names[group], ++cons_seq);
    if (spawn_kid(KIND_CONS, 0, group, name) < 0) fprintf(stderr, "chaos: could not start consumer %s\n", name);
}

static void fault_kill_consumer(void) {
    int which[MAX_KIDS], m = running_consumers(which, MAX_KIDS), reuse;
    kid *k;
    char name[64];
    if (m == 0 || (int)nkids >= MAX_KIDS - 1) return;
    k = &kids[which[rnd_below(m)]];
    kill_kid(k);
    faults.consumer_kills++;
    reuse = rnd_below(3) == 0;
    if (reuse) faults.name_reuses++;
    snprintf(name, sizeof name, "%s", k->name);
    start_consumer(k->group, reuse ? name : NULL);
}

/* SIGTERM a consumer mid-run, whatever it is doing (blocked, handling, reconnecting while the server
   is down): rsbus_run must return and the process exit 0 promptly. Its replacement takes its name
   one time in two. */
static void fault_stop_consumer(void) {
    int which[MAX_KIDS], m = running_consumers(which, MAX_KIDS), i, cand[MAX_KIDS], n = 0, st;
    int64_t t, dl;
    kid *k;
    char name[64];
    for (i = 0; i < m; i++) if (!kids[which[i]].frozen_until) cand[n++] = which[i];
    if (n == 0 || (int)nkids >= MAX_KIDS - 1) return;
    k = &kids[cand[rnd_below(n)]];
    k->stopping = 1;
    kill(k->pid, SIGTERM);
    t = test_now_ms();
    dl = t + 5000;
    for (;;) {
        if (waitpid(k->pid, &st, WNOHANG) == k->pid) {
            reaped(k, st);
            if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0)) stops_bad++;
            break;
        }
        if (test_now_ms() > dl) {
            fprintf(stderr, "chaos: consumer %s (pid %ld) did not exit within 5 s of SIGTERM: SIGKILL\n", k->name,
                    (long)k->pid);
            kill_kid(k);
            unexpected_exits++;
            stops_bad++;
            break;
        }
        test_sleep_ms(2);
    }
    faults.stops++;
    snprintf(name, sizeof name, "%s", k->name);
    start_consumer(k->group, rnd_below(2) == 0 ? name : NULL);
}

/* SIGSTOP a consumer for longer than claim_idle_ms: the others take over its entries while it still
   holds them, and it finishes and acknowledges them when it wakes up (a "zombie" consumer). */
static void fault_freeze_consumer(int64_t now) {
    int which[MAX_KIDS], m = running_consumers(which, MAX_KIDS), i, cand[MAX_KIDS], n = 0;
    kid *k;
    for (i = 0; i < m; i++) if (!kids[which[i]].frozen_until) cand[n++] = which[i];
    if (n == 0) return;
    k = &kids[cand[rnd_below(n)]];
    if (kill(k->pid, SIGSTOP) != 0) return;
    k->frozen_until = now + 1200 + rnd_below(1301);
    faults.freezes++;
}
static void thaw_consumers(int64_t now, int all) {
    int i, n = (int)nkids;
    for (i = 0; i < n; i++) {
        kid *k = &kids[i];
        if (!k->frozen_until || (!all && now < k->frozen_until)) continue;
        if (k->running) kill(k->pid, SIGCONT);
        k->frozen_until = 0;
    }
}

/* CLIENT LIST TYPE normal, and CLIENT KILL ID for about a third of them (at least one): consumers'
   and publishers' connections alike; never our own. */
static void fault_client_kills(void) {
    redisReply *me = raw("CLIENT ID"), *rep;
    long long myid, ids[512];
    int n = 0, i, picked = 0;
    const char *p;
    if (!me) return;
    myid = me->type == REDIS_REPLY_INTEGER ? me->integer : -1;
    freeReplyObject(me);
    rep = raw("CLIENT LIST TYPE normal");
    if (!rep) return;
    if (rep->type == REDIS_REPLY_STRING || rep->type == REDIS_REPLY_STATUS) {
        for (p = rep->str; p && *p && n < 512; ) {
            const char *q = strstr(p, "id=");
            long long id;
            if (!q) break;
            id = strtoll(q + 3, NULL, 10);
            if (id != myid && id > 0) ids[n++] = id;
            p = strchr(q, '\n');
            if (p) p++;
        }
    }
    freeReplyObject(rep);
    for (i = 0; i < n; i++) {
        redisReply *k;
        if (rnd_below(3) != 0 && !(i == n - 1 && picked == 0)) continue;
        picked++;
        k = raw("CLIENT KILL ID %lld", ids[i]);
        if (k && k->type == REDIS_REPLY_INTEGER && k->integer == 1) faults.client_kills++;
        if (k) freeReplyObject(k);
    }
}

/* On a cluster: first the stream's master SIGKILLed, a replica promoted, the dead one restarted (it
   comes back as a replica); then every slot of the stream's master resharded to another master. */
static int fault_cluster(int64_t t0) {
    int m = follow_master(), to;
    if (m < 0) return -1;
    if (faults.restarts == 0) {
        int64_t t1 = test_now_ms();
        fprintf(stderr, "chaos: %5.1f s: SIGKILL the stream's master (pid %ld)\n", (double)(t1 - t0) / 1000.0,
                (long)ccl.node[m].pid);
        test_cluster_kill(&ccl, m);
        if (test_cluster_wait_ok(&ccl, 30000) != 0) return -1;
        fprintf(stderr, "chaos: %5.1f s: a replica took over after %lld ms\n", (double)(test_now_ms() - t0) / 1000.0,
                (long long)(test_now_ms() - t1));
        if (test_redis_restart(&ccl.node[m]) != 0) return -1;
        if (nredis_pids < 16) redis_pids[nredis_pids++] = ccl.node[m].pid;
        ccl.dead[m] = 0;
        if (test_cluster_wait_ok(&ccl, 30000) != 0) return -1;   /* back, as a replica in sync */
    } else {
        for (to = 0; to < ccl.n; to++)
            if (to != m && test_cluster_is_master(&ccl, to) && test_cluster_slots_of(&ccl, to) > 0) break;
        if (to == ccl.n) return -1;
        fprintf(stderr, "chaos: %5.1f s: resharding %d slots of the stream's master\n", (double)(test_now_ms() - t0) / 1000.0,
                test_cluster_slots_of(&ccl, m));
        if (test_cluster_reshard(&ccl, m, to, test_cluster_slots_of(&ccl, m)) != 0) return -1;
    }
    if (follow_master() < 0) return -1;
    faults.restarts++;
    fprintf(stderr, "chaos: %5.1f s: the stream's master is pid %ld\n", (double)(test_now_ms() - t0) / 1000.0, (long)srv.pid);
    return 0;
}

static int fault_restart(int64_t t0) {
    int down = 200 + rnd_below(800);
    if (opt.cluster) return fault_cluster(t0);
    raw_reset();
    fprintf(stderr, "chaos: %5.1f s: SIGKILL redis-server (pid %ld), down for %d ms\n",
            (double)(test_now_ms() - t0) / 1000.0, (long)srv.pid, down);
    test_redis_kill(&srv);
    test_sleep_ms(down);
    if (test_redis_restart(&srv) != 0) return -1;
    if (nredis_pids < 16) redis_pids[nredis_pids++] = srv.pid;
    faults.restarts++;
    fprintf(stderr, "chaos: %5.1f s: redis-server back (pid %ld)\n", (double)(test_now_ms() - t0) / 1000.0,
            (long)srv.pid);
    return 0;
}

/* ---- drain -------------------------------------------------------------------------------- */

static const redisReply *map_get(const redisReply *m, const char *key) {
    size_t i;
    if (!m || m->type != REDIS_REPLY_ARRAY) return NULL;
    for (i = 0; i + 1 < m->elements; i += 2)
        if (m->element[i]->type == REDIS_REPLY_STRING && strcmp(m->element[i]->str, key) == 0)
            return m->element[i + 1];
    return NULL;
}

typedef struct gstate { long long pending, lag; char last_delivered[64]; int found; } gstate;

/* Reads both groups' state and the stream's last id; 1 if both have nothing pending and have been
   delivered everything (lag 0, or the last delivered id is the stream's last id: Redis 7.0 forgets
   lag after a restart from the AOF). */
static int drained(gstate gs[2], char *last_id, size_t last_size) {
    redisReply *st = raw("XINFO STREAM %s", CHAOS_STREAM), *gr;
    const redisReply *v;
    size_t i;
    int g, ok = 1;
    memset(gs, 0, 2 * sizeof *gs);
    last_id[0] = 0;
    if (!st) return 0;
    if ((v = map_get(st, "last-generated-id")) != NULL && v->type == REDIS_REPLY_STRING)
        snprintf(last_id, last_size, "%s", v->str);
    freeReplyObject(st);
    if (!(gr = raw("XINFO GROUPS %s", CHAOS_STREAM))) return 0;
    if (gr->type == REDIS_REPLY_ARRAY) {
        for (i = 0; i < gr->elements; i++) {
            const redisReply *m = gr->element[i], *name = map_get(m, "name");
            if (!name || name->type != REDIS_REPLY_STRING) continue;
            for (g = 0; g < 2; g++) {
                if (strcmp(name->str, group_names[g]) != 0) continue;
                gs[g].found = 1;
                v = map_get(m, "pending");
                gs[g].pending = v && v->type == REDIS_REPLY_INTEGER ? v->integer : -1;
                v = map_get(m, "lag");
                gs[g].lag = v && v->type == REDIS_REPLY_INTEGER ? v->integer : -1;
                v = map_get(m, "last-delivered-id");
                if (v && v->type == REDIS_REPLY_STRING)
                    snprintf(gs[g].last_delivered, sizeof gs[g].last_delivered, "%s", v->str);
            }
        }
    }
    freeReplyObject(gr);
    for (g = 0; g < 2; g++)
        if (!gs[g].found || gs[g].pending != 0 || !(gs[g].lag == 0 || strcmp(gs[g].last_delivered, last_id) == 0))
            ok = 0;
    return ok && last_id[0];
}

/* ---- the ledger: every event id seen anywhere --------------------------------------------- */

typedef struct rec {
    char *id;
    unsigned char ok, err, poison;
    unsigned in_stream;    /* entries of the stream that carry this event id */
    char sid[24];          /* its stream entry id, when in the stream */
    unsigned handled[2], dlq[2], failed[2];
    unsigned char pending[2];   /* still pending in the group at the end (not drained) */
} rec;
static rec *tab;
static size_t tabcap, tabn;

static uint64_t hash_str(const char *s) {
    uint64_t h = 1469598103934665603ull;
    while (*s) { h ^= (unsigned char)*s++; h *= 1099511628211ull; }
    return h;
}
static rec *ledger(const char *id) {
    size_t i, mask;
    if (tabn * 2 >= tabcap) {
        size_t ncap = tabcap ? tabcap * 2 : 1u << 16, j;
        rec *nt = (rec *)calloc(ncap, sizeof *nt);
        if (!nt) { fprintf(stderr, "chaos: out of memory\n"); exit(2); }
        for (j = 0; j < tabcap; j++) {
            if (!tab[j].id) continue;
            for (i = hash_str(tab[j].id) & (ncap - 1); nt[i].id; i = (i + 1) & (ncap - 1)) {}
            nt[i] = tab[j];
        }
        free(tab);
        tab = nt;
        tabcap = ncap;
    }
    mask = tabcap - 1;
    for (i = hash_str(id) & mask; tab[i].id; i = (i + 1) & mask)
        if (strcmp(tab[i].id, id) == 0) return &tab[i];
    tab[i].id = (char *)malloc(strlen(id) + 1);
    if (!tab[i].id) { fprintf(stderr, "chaos: out of memory\n"); exit(2); }
    strcpy(tab[i].id, id);
    tab[i].poison = (unsigned char)id_is_poison(id);
    tabn++;
    return &tab[i];
}
static void ledger_free(void) {
    size_t i;
    for (i = 0; i < tabcap; i++) free(tab[i].id);
    free(tab);
    tab = NULL;
    tabcap = tabn = 0;
}

/* Calls fn(first word, rest of the line) for each line of a file; returns the number of lines. */
static long for_each_line(const char *path, void (*fn)(const char *word, const char *rest, void *u), void *u) {
    FILE *f = fopen(path, "r");
    char buf[1024];
    long n = 0;
    if (!f) return 0;
    while (fgets(buf, sizeof buf, f)) {
        char *sp;
        buf[strcspn(buf, "\n")] = 0;
        if (!buf[0]) continue;
        sp = strchr(buf, ' ');
        if (sp) *sp++ = 0;
        fn(buf, sp ? sp : "", u);
        n++;
    }
    fclose(f);
    return n;
}

#define NCODES 12   /* RSBUS_E_ARG (-1) .. RSBUS_E_REPLICAS (-11), then "other" */
static long err_codes[NCODES + 1];
static void on_published(const char *id, const char *rest, void *u) { (void)rest; (void)u; ledger(id)->ok = 1; }
/* Failed batches (publish_batch: "all or none"): each must have arrived entirely or not at all. */
typedef struct fbatch { int pub; uint64_t first; unsigned n; } fbatch;
static fbatch *fbatches;
static size_t nfbatches, capfbatches;

static void on_pub_error(const char *id, const char *rest, void *u) {
    int c, pub;
    uint64_t seq;
    const char *b = strstr(rest, " b");
    unsigned long long first;
    unsigned n;
    (void)u;
    ledger(id)->err = 1;
    if (b && sscanf(b, " b%llu/%u", &first, &n) == 2 && n > 1 && parse_event_id(id, &pub, &seq) && seq == first) {
        if (nfbatches == capfbatches) {
            size_t ncap = capfbatches ? capfbatches * 2 : 64;
            fbatch *nb = (fbatch *)realloc(fbatches, ncap * sizeof *nb);
            if (!nb) { fprintf(stderr, "chaos: out of memory\n"); exit(2); }
            fbatches = nb;
            capfbatches = ncap;
        }
        fbatches[nfbatches].pub = pub;
        fbatches[nfbatches].first = (uint64_t)first;
        fbatches[nfbatches].n = n;
        nfbatches++;
    }
    for (c = 1; c <= NCODES - 1; c++)
        if (strncmp(rest, rsbus_result_str((rsbus_result)-c), strlen(rsbus_result_str((rsbus_result)-c))) == 0 &&
            rest[strlen(rsbus_result_str((rsbus_result)-c))] == ' ') { err_codes[c]++; return; }
    err_codes[NCODES]++;
    if (err_codes[NCODES] <= 5) fprintf(stderr, "chaos: publish error of another kind: %s %s\n", id, rest);
}
static void on_handled(const char *id, const char *rest, void *u) {
    (void)rest;
    ledger(id)->handled[*(int *)u]++;
}
static void on_failed(const char *id, const char *rest, void *u) {
    (void)rest;
    ledger(id)->failed[*(int *)u]++;
}

/* Reads the stream (XRANGE pages) to mark which ids made it into Redis. Returns entries, or -1. */
static long scan_stream(void) {
    char start[80] = "-";
    long total = 0;
    for (;;) {
        redisReply *rep = raw("XRANGE %s %s + COUNT 2000", CHAOS_STREAM, start);
        size_t i;
        if (!rep || rep->type != REDIS_REPLY_ARRAY) { if (rep) freeReplyObject(rep); return -1; }
        if (rep->elements == 0) { freeReplyObject(rep); break; }
        for (i = 0; i < rep->elements; i++) {
            const redisReply *e = rep->element[i], *idv;
            if (e->type != REDIS_REPLY_ARRAY || e->elements < 2) continue;
            idv = map_get(e->element[1], "id");
            if (idv && idv->type == REDIS_REPLY_STRING) {
                rec *x = ledger(idv->str);
                x->in_stream++;
                snprintf(x->sid, sizeof x->sid, "%s", e->element[0]->str);
            }
            snprintf(start, sizeof start, "(%s", e->element[0]->str);
            total++;
        }
        freeReplyObject(rep);
    }
    return total;
}

/* Marks the events still pending in each group (after a drain that did not finish): XPENDING, then
   each entry's event id with a pipelined XRANGE. Returns how many, or -1. */
static long scan_pending(int g) {
    redisReply *rep = raw("XPENDING %s %s - + 1000000", CHAOS_STREAM, group_names[g]);
    size_t i, n;
    long marked = 0;
    if (!rep || rep->type != REDIS_REPLY_ARRAY || !raw_ctx) { if (rep) freeReplyObject(rep); return -1; }
    n = rep->elements;
    for (i = 0; i < n; i++) {
        const redisReply *p = rep->element[i];
        if (p->type == REDIS_REPLY_ARRAY && p->elements >= 1 && p->element[0]->type == REDIS_REPLY_STRING)
            redisAppendCommand(raw_ctx, "XRANGE %s %s %s", CHAOS_STREAM, p->element[0]->str, p->element[0]->str);
        else redisAppendCommand(raw_ctx, "PING");
    }
    freeReplyObject(rep);
    for (i = 0; i < n; i++) {
        void *v = NULL;
        redisReply *e;
        if (redisGetReply(raw_ctx, &v) != REDIS_OK) { raw_reset(); return -1; }
        e = (redisReply *)v;
        if (e->type == REDIS_REPLY_ARRAY && e->elements == 1 && e->element[0]->type == REDIS_REPLY_ARRAY &&
            e->element[0]->elements == 2) {
            const redisReply *idv = map_get(e->element[0]->element[1], "id");
            if (idv && idv->type == REDIS_REPLY_STRING) { ledger(idv->str)->pending[g] = 1; marked++; }
        }
        freeReplyObject(e);
    }
    return marked;
}

typedef struct dlq_note {
    char dlq_id[48], id[48], consumer[64], error[128];
    int group;
    long long deliveries;
} dlq_note;
static dlq_note odd_dlq[50];
static int nodd_dlq;
static long dlq_total, dlq_per_group[2], dlq_unknown_group, dlq_no_id;

/* Lists the DLQ page by page with rsbus_dlq_list. Returns 0, or -1. */
static int scan_dlq(rsbus *bus) {
    char after[RSBUS_ID_SIZE] = "";
    for (;;) {
        rsbus_dlq_page page;
        size_t i;
        rsbus_result r = rsbus_dlq_list(bus, after[0] ? after : NULL, 500, &page);
        if (r != RSBUS_OK) {
            fprintf(stderr, "chaos: rsbus_dlq_list: %s: %s\n", rsbus_result_str(r), rsbus_errmsg(bus));
            return -1;
        }
        if (page.count == 0) { rsbus_dlq_page_free(bus, &page); break; }
        for (i = 0; i < page.count; i++) {
            const rsbus_dlq_entry *d = &page.entries[i];
            int g = -1;
            rec *x;
            dlq_total++;
            if (d->group) g = strcmp(d->group, "g1") == 0 ? 0 : strcmp(d->group, "g2") == 0 ? 1 : -1;
            if (g < 0) { dlq_unknown_group++; continue; }
            dlq_per_group[g]++;
            if (!d->msg.id) { dlq_no_id++; continue; }
            x = ledger(d->msg.id);
            x->dlq[g]++;
            if (!x->poison && nodd_dlq < 50) {
                dlq_note *o = &odd_dlq[nodd_dlq++];
                snprintf(o->dlq_id, sizeof o->dlq_id, "%s", d->dlq_id);
                snprintf(o->id, sizeof o->id, "%s", d->msg.id);
                snprintf(o->consumer, sizeof o->consumer, "%s", d->consumer ? d->consumer : "?");
                snprintf(o->error, sizeof o->error, "%s", d->error ? d->error : "?");
                o->group = g;
                o->deliveries = (long long)d->deliveries;
            }
        }
        snprintf(after, sizeof after, "%s", page.entries[page.count - 1].dlq_id);
        rsbus_dlq_page_free(bus, &page);
    }
    return 0;
}

/* ---- checks ------------------------------------------------------------------------------- */

/* One line per check on stdout; the tally is test.h's, so the last line is test_summary's. */
static void check_at(int ok, const char *what, int line) {
    printf("%s %s\n", ok ? "ok  " : "FAIL", what);
    test__cur = what;
    test__cur_failed = 0;
    if (ok) test__passed++;
    else { test__fail(__FILE__, line, what); test__failed++; }
}
#define check(ok, what) check_at((ok) != 0, (what), __LINE__)

static int arg_int(const char *s, int lo, int hi, int *out) {
    char *end;
    long v;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || *end || end == s || v < lo || v > hi) return -1;
    *out = (int)v;
    return 0;
}

static void usage(void) {
    fprintf(stderr, "usage: chaos [--seconds N] [--publishers P] [--consumers C] [--seed S] [--rate R]\n"
                    "             [--handler-us U] [--fail-pct F] [--no-freeze] [--trim-acked] [--dedupe] [--spool] [--cluster]\n"
                    "             [--keep]\n"
                    "  defaults: %d s, 3 publishers, 4 consumers (at least 2: split over g1 and g2),\n"
                    "  R = 300 events/s per publisher, U = 500 us of work per handled event,\n"
                    "  F = 10: %% of first deliveries that fail transiently; --trim-acked: trim_policy\n"
                    "  RSBUS_TRIM_ACKED (the stream is trimmed as the groups acknowledge); --dedupe: consumers\n"
                    "  with dedupe_ttl_ms; --spool: publishers with an offline spool\n"
                    "  seed from the clock; --keep keeps the logs\n", CHAOS_DEFAULT_SECONDS);
}

static void rm_logdir(void) {
    DIR *d;
    struct dirent *e;
    if (!logdir[0]) return;
    if ((d = opendir(logdir)) != NULL) {
        while ((e = readdir(d)) != NULL) {
            char p[600];
            if (e->d_name[0] == '.') continue;
            snprintf(p, sizeof p, "%s/%s", logdir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(logdir);
}

int main(int argc, char **argv) {
    int i, g, nseed = 0, drain_ok = 0, pubs_bad, cons_bad, leftovers = 0, server_failed = 0;
    int64_t t0, t_faults_end, t_deadline, next_kill, next_ckill, next_freeze, next_stop, next_report, restart_at[2];
    const char *base = getenv("TMPDIR");
    char tmpl[256], last_id[64] = "";
    gstate gs[2];
    long published = 0, pub_errors = 0, poison_published = 0, stream_len, errs_arrived = 0;
    long handled_lines[2] = { 0, 0 }, failed_lines[2] = { 0, 0 };
    long handled_unique[2] = { 0, 0 }, dups[2] = { 0, 0 }, lost[2] = { 0, 0 }, dead[2] = { 0, 0 };
    long nonpoison_dead[2] = { 0, 0 }, poison_missing[2] = { 0, 0 }, poison_handled[2] = { 0, 0 };
    long dead_twice[2] = { 0, 0 }, phantoms = 0, lost_not_in_stream = 0, lost_repl[2] = { 0, 0 };
    long still_pending[2] = { 0, 0 }, stuck[2] = { 0, 0 }, batches_arrived = 0, batches_torn = 0, in_stream_twice = 0;
    rsbus *admin;
    rsbus_error err;
    struct sigaction sa;
    size_t j;

    for (i = 1; i < argc; i++) {
        int bad = 0;
        if (i + 1 < argc && strcmp(argv[i], "--seconds") == 0) bad = arg_int(argv[++i], 1, 86400, &opt.seconds);
        else if (i + 1 < argc && strcmp(argv[i], "--publishers") == 0) bad = arg_int(argv[++i], 1, 64, &opt.publishers);
        else if (i + 1 < argc && strcmp(argv[i], "--consumers") == 0) bad = arg_int(argv[++i], 2, 64, &opt.consumers);
        else if (i + 1 < argc && strcmp(argv[i], "--rate") == 0) bad = arg_int(argv[++i], 1, 100000, &opt.rate);
        else if (i + 1 < argc && strcmp(argv[i], "--handler-us") == 0)
            bad = arg_int(argv[++i], 0, 999999, &opt.handler_us);
        else if (i + 1 < argc && strcmp(argv[i], "--seed") == 0) {
            char *end;
            errno = 0;
            opt.seed = (uint64_t)strtoull(argv[++i], &end, 10);
            bad = errno || *end || end == argv[i];
            nseed = 1;
        } else if (strcmp(argv[i], "--keep") == 0) opt.keep = 1;
        else if (strcmp(argv[i], "--no-freeze") == 0) opt.freezes = 0;
        else if (strcmp(argv[i], "--trim-acked") == 0) opt.trim_acked = 1;
        else if (strcmp(argv[i], "--dedupe") == 0) opt.dedupe = 1;
        else if (strcmp(argv[i], "--spool") == 0) opt.spool = 1;
        else if (strcmp(argv[i], "--cluster") == 0) opt.cluster = 1;
        else if (i + 1 < argc && strcmp(argv[i], "--fail-pct") == 0) bad = arg_int(argv[++i], 0, 100, &opt.fail_pct);
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) { usage(); return 0; }
        else bad = 1;
        if (bad) { usage(); return 2; }
    }
    if (!nseed) opt.seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 16);
    rng = opt.seed;
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("chaos: seed %" PRIu64 ", %d s, %d publishers at %d events/s, %d consumers%s%s%s\n", opt.seed,
           opt.seconds, opt.publishers, opt.rate, opt.consumers, opt.trim_acked ? ", trim_policy RSBUS_TRIM_ACKED" : "",
           opt.dedupe ? ", dedupe" : "", opt.spool ? ", offline spool" : "");

    /* the orchestrator writes to sockets a restart may have closed: EPIPE, not death (children reset it) */
    signal(SIGPIPE, SIG_IGN);

    if (!base || !*base || strlen(base) > 200) base = "/tmp";
    snprintf(tmpl, sizeof tmpl, "%s/rsbus-chaos.XXXXXX", base);
    if (!mkdtemp(tmpl)) {
        fprintf(stderr, "chaos: mkdtemp %s: %s\n", tmpl, strerror(errno));
        printf("chaos: 0 passed, 1 failed\n");
        return 1;
    }
    snprintf(logdir, sizeof logdir, "%s", tmpl);

    if (opt.cluster) {
        if (test_cluster_start_conf(&ccl, 3, 1, "appendonly yes\nappendfsync always\n") != 0 || follow_master() < 0) {
            test_cluster_stop(&ccl);
            rm_logdir();
            printf("chaos: 0 passed, 1 failed\n");
            return 1;
        }
        for (i = 0; i < ccl.n; i++) redis_pids[nredis_pids++] = ccl.node[i].pid;
    } else if (test_redis_start(&srv, "appendonly yes\nappendfsync always\n") != 0) {
        rm_logdir();
        printf("chaos: 0 passed, 1 failed\n");
        return 1;
    } else {
        redis_pids[nredis_pids++] = srv.pid;
    }

    /* the global backstop: the deadline plus time to verify */
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_watchdog;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
    alarm((unsigned)opt.seconds + DRAIN_MS / 1000 + 60);

    /* both groups at "0" before anything is published */
    for (g = 0; g < 2; g++) {
        rsbus_config c = base_cfg();
        rsbus *b;
        c.group = group_names[g];
        c.group_start = "0";
        c.consumer = "setup";
        if (!(b = rsbus_open(&c, &err))) {
            fprintf(stderr, "chaos: rsbus_open (%s): %s: %s\n", group_names[g], rsbus_result_str(err.code), err.msg);
            if (opt.cluster) test_cluster_stop(&ccl);
            else test_redis_stop(&srv);
            rm_logdir();
            printf("chaos: 0 passed, 1 failed\n");
            return 1;
        }
        rsbus_close(b);
    }
    raw_reset();
    freeReplyObject(raw("XGROUP DELCONSUMER %s g1 setup", CHAOS_STREAM));
    freeReplyObject(raw("XGROUP DELCONSUMER %s g2 setup", CHAOS_STREAM));

    t0 = test_now_ms();
    for (i = 0; i < opt.consumers; i++) start_consumer(i % 2, NULL);
    for (i = 0; i < opt.publishers; i++) spawn_kid(KIND_PUB, i, 0, NULL);

    /* ---- the faults ---- */
    t_faults_end = t0 + (int64_t)opt.seconds * 1000;
    t_deadline = t_faults_end + DRAIN_MS;
    next_kill = t0 + 1000 + rnd_below(2000);
    next_ckill = t0 + 1000;
    next_freeze = t0 + 2000 + rnd_below(3000);
    next_stop = t0 + 4000 + rnd_below(3000);
    next_report = t0 + 5000;
    restart_at[0] = t0 + (int64_t)opt.seconds * 1000 / 3 + rnd_below(500);
    restart_at[1] = t0 + (int64_t)opt.seconds * 2000 / 3 + rnd_below(500);
    while (test_now_ms() < t_faults_end) {
        int64_t now = test_now_ms();
        int which[MAX_KIDS], m, per_group[2] = { 0, 0 };
        reap_exited();
        /* a consumer that died by itself is replaced (and was counted as a failure) */
        m = running_consumers(which, MAX_KIDS);
        for (i = 0; i < m; i++) per_group[kids[which[i]].group]++;
        for (g = 0; g < 2; g++)
            while (per_group[g] < opt.consumers / 2 + (g == 0 ? opt.consumers % 2 : 0) && (int)nkids < MAX_KIDS - 1) {
                start_consumer(g, NULL);
                per_group[g]++;
            }
        if (faults.restarts < 2 && now >= restart_at[faults.restarts]) {
            if (fault_restart(t0) != 0) { server_failed = 1; break; }
            continue;
        }
        if (now >= next_kill) {
            fault_kill_consumer();
            next_kill = now + 1000 + rnd_below(2001);
        }
        if (now >= next_ckill) {
            fault_client_kills();
            next_ckill = now + 1000;
        }
        if (now >= next_stop) {
            fault_stop_consumer();
            next_stop = now + 4000 + rnd_below(3001);
        }
        thaw_consumers(now, 0);
        if (opt.freezes && now >= next_freeze) {
            fault_freeze_consumer(now);
            next_freeze = now + 3000 + rnd_below(3001);
        }
        if (now >= next_report) {
            fprintf(stderr, "chaos: %5.1f s: consumer kills %d, client kills %d, server restarts %d, freezes %d, "
                    "stops %d\n", (double)(now - t0) / 1000.0, faults.consumer_kills, faults.client_kills,
                    faults.restarts, faults.freezes, faults.stops);
            next_report = now + 5000;
        }
        test_sleep_ms(20);
    }

    /* ---- the drain: no faults from here on ---- */
    thaw_consumers(test_now_ms(), 1);
    fprintf(stderr, "chaos: %5.1f s: stopping the publishers, draining\n", (double)(test_now_ms() - t0) / 1000.0);
    pubs_bad = stop_kids(KIND_PUB, 10000);
    if (!server_failed) {
        int64_t t_drain = test_now_ms();
        while (test_now_ms() < t_deadline) {
            reap_exited();
            if (drained(gs, last_id, sizeof last_id)) { drain_ok = 1; break; }
            test_sleep_ms(100);
        }
        if (drain_ok) fprintf(stderr, "chaos: drained in %.1f s\n", (double)(test_now_ms() - t_drain) / 1000.0);
        else
            fprintf(stderr, "chaos: not drained by the deadline: last id %s; g1 pending %lld lag %lld last %s; "
                    "g2 pending %lld lag %lld last %s\n", last_id, gs[0].pending, gs[0].lag, gs[0].last_delivered,
                    gs[1].pending, gs[1].lag, gs[1].last_delivered);
    }
    cons_bad = stop_kids(KIND_CONS, 10000);
    kill_all_kids();

    /* ---- verification ---- */
    for (i = 0; i < (int)nkids; i++) {
        kid *k = &kids[i];
        if (k->kind == KIND_PUB) {
            published += for_each_line(k->log, on_published, NULL);
            pub_errors += for_each_line(k->log2, on_pub_error, NULL);
        } else {
            g = k->group;
            handled_lines[g] += for_each_line(k->log, on_handled, &g);
            failed_lines[g] += for_each_line(k->log2, on_failed, &g);
        }
    }
    stream_len = server_failed ? -1 : scan_stream();
    if (!server_failed && !drain_ok)
        for (g = 0; g < 2; g++) still_pending[g] = scan_pending(g);
    admin = NULL;
    if (!server_failed) {
        rsbus_config c = base_cfg();
        c.publish_only = 1;
        admin = rsbus_open(&c, &err);
        if (!admin) fprintf(stderr, "chaos: rsbus_open (verify): %s: %s\n", rsbus_result_str(err.code), err.msg);
    }
    if (!admin || scan_dlq(admin) != 0) server_failed = 1;
    if (admin) {
        long long xlen;
        raw_reset();
        xlen = raw_int("XLEN %s", CHAOS_DLQ);
        if (xlen != dlq_total) {
            fprintf(stderr, "chaos: rsbus_dlq_list listed %ld entries, XLEN says %lld\n", dlq_total, xlen);
            server_failed = 1;
        }
        rsbus_close(admin);
    }

    for (j = 0; j < tabcap; j++) {
        rec *x = &tab[j];
        if (!x->id) continue;
        if (x->ok && x->poison) poison_published++;
        if (x->in_stream > 1 && ++in_stream_twice <= 5)
            fprintf(stderr, "chaos: event %s is %u times in the stream (published once)\n", x->id, x->in_stream);
        if (x->err && !x->ok && (x->in_stream || x->handled[0] || x->handled[1] || x->dlq[0] || x->dlq[1]))
            errs_arrived++;
        if (!x->ok && !x->err && ++phantoms <= 10) fprintf(stderr, "chaos: event %s was never published\n", x->id);
        for (g = 0; g < 2; g++) {
            if (x->handled[g]) { handled_unique[g]++; dups[g] += (long)x->handled[g] - 1; }
            if (x->dlq[g]) { dead[g]++; if (x->dlq[g] > 1) dead_twice[g]++; }
            if (x->ok && !x->handled[g] && !x->dlq[g] && x->pending[g]) {
                stuck[g]++;        /* not lost: still pending when the deadline came (the drain check fails) */
                if (stuck[g] <= 5)
                    fprintf(stderr, "chaos: still pending in %s at the deadline: %s (stream id %s, poison %d)\n",
                            group_names[g], x->id, x->sid, x->poison);
            } else if (x->ok && !x->handled[g] && !x->dlq[g] && opt.cluster && !x->in_stream) {
                lost_repl[g]++;    /* confirmed by WAIT, yet gone with the killed master: must not happen */
                if (lost_repl[g] <= 20)
                    fprintf(stderr, "chaos: LOST in %s with the killed master: %s (its publish returned RSBUS_OK "
                            "after WAIT 1)\n", group_names[g], x->id);
            } else if (x->ok && !x->handled[g] && !x->dlq[g]) {
                lost[g]++;
                if (!x->in_stream) lost_not_in_stream++;
                if (lost[g] <= 20)
                    fprintf(stderr, "chaos: LOST in %s: %s (stream id %s, poison %d, transient failures %u, "
                            "handled by the other group %u)\n", group_names[g], x->id,
                            x->in_stream ? x->sid : opt.trim_acked ? "none (trimmed, or never added)"
                                                                   : "none: not in the stream",
                            x->poison, x->failed[g], x->handled[1 - g]);
            }
            if (x->dlq[g] && !x->poison) nonpoison_dead[g]++;
            if (x->poison && x->ok && !x->dlq[g] && !x->pending[g] && !(opt.cluster && !x->in_stream)) {
                poison_missing[g]++;
                if (poison_missing[g] <= 10)
                    fprintf(stderr, "chaos: poison %s not in the DLQ of %s\n", x->id, group_names[g]);
            }
            if (x->poison && x->handled[g]) poison_handled[g]++;
        }
    }
    for (j = 0; j < nfbatches; j++) {
        unsigned k, arrived = 0;
        for (k = 0; k < fbatches[j].n; k++) {
            char id[48];
            rec *x;
            snprintf(id, sizeof id, "p%d-%" PRIu64, fbatches[j].pub, fbatches[j].first + k);
            x = ledger(id);
            if (x->in_stream || x->handled[0] || x->handled[1] || x->dlq[0] || x->dlq[1]) arrived++;
        }
        if (arrived) batches_arrived++;
        if (arrived && arrived < fbatches[j].n) {
            batches_torn++;
            fprintf(stderr, "chaos: failed batch p%d-%" PRIu64 " (+%u): %u of its events arrived\n", fbatches[j].pub,
                    fbatches[j].first, fbatches[j].n, arrived);
        }
    }
    free(fbatches);
    for (i = 0; i < nodd_dlq; i++) {
        rec *x = ledger(odd_dlq[i].id);
        fprintf(stderr, "chaos: not poison, yet in the DLQ of %s: %s (dlq id %s, consumer %s, deliveries %lld, "
                "error \"%s\"; transient failures logged %u, handled %u times)\n", group_names[odd_dlq[i].group],
                odd_dlq[i].id, odd_dlq[i].dlq_id, odd_dlq[i].consumer, odd_dlq[i].deliveries, odd_dlq[i].error,
                x->failed[odd_dlq[i].group], x->handled[odd_dlq[i].group]);
    }

    raw_reset();
    if (opt.cluster) test_cluster_stop(&ccl);
    else test_redis_stop(&srv);
    for (i = 0; i < (int)nkids; i++)
        if (kids[i].pid > 0 && (kill(kids[i].pid, 0) == 0 || errno != ESRCH)) {
            leftovers++;
            fprintf(stderr, "chaos: child pid %ld (%s) is still there\n", (long)kids[i].pid, kids[i].name);
        }
    for (i = 0; i < nredis_pids; i++)
        if (kill(redis_pids[i], 0) == 0 || errno != ESRCH) {
            leftovers++;
            fprintf(stderr, "chaos: redis-server pid %ld is still there\n", (long)redis_pids[i]);
        }

    printf("published %ld (poison %ld), publish errors %ld (", published, poison_published, pub_errors);
    for (i = 1; i < NCODES; i++)
        if (err_codes[i]) printf("%s %ld, ", rsbus_result_str((rsbus_result)-i), err_codes[i]);
    printf("other %ld), of which arrived anyway %ld; stream length %ld\n", err_codes[NCODES], errs_arrived, stream_len);
    printf("failed batches %zu, of which arrived anyway %ld (entirely), torn %ld; events in the stream more than "
           "once %ld\n", nfbatches, batches_arrived - batches_torn, batches_torn, in_stream_twice);
    for (g = 0; g < 2; g++) {
        printf("%s: handled %ld (%ld handler calls acked, %ld duplicates), transient failures %ld, dead-lettered %ld "
               "(%ld entries; non-poison %ld, twice %ld), lost %ld", group_names[g], handled_unique[g],
               handled_lines[g], dups[g], failed_lines[g], dead[g], dlq_per_group[g], nonpoison_dead[g], dead_twice[g],
               lost[g]);
        if (!drain_ok)
            printf("; still pending at the deadline %ld, of them never handled %ld", still_pending[g], stuck[g]);
        printf("\n");
    }
    printf("faults: consumer kills %d (%d reusing the name), client kills %d, server restarts %d, "
           "consumer freezes %d, graceful consumer stops %d\n", faults.consumer_kills, faults.name_reuses,
           faults.client_kills, faults.restarts, faults.freezes, faults.stops);
    if (lost_not_in_stream) printf("lost events that are not in the stream at all: %ld\n", lost_not_in_stream);
    if (opt.cluster)
        printf("confirmed publishes (WAIT 1) missing after the failover: g1 %ld, g2 %ld\n", lost_repl[0], lost_repl[1]);
    if (dlq_unknown_group || dlq_no_id) printf("DLQ entries with an unknown group %ld, without an event id %ld\n",
                                               dlq_unknown_group, dlq_no_id);

    check(!server_failed, "server and verification reads worked");
    check(faults.restarts == 2 && faults.client_kills > 0 && (opt.seconds < 4 || faults.consumer_kills > 0),
          "faults injected");
    check(pubs_bad == 0, "publishers exit 0 on SIGTERM");
    check(drain_ok, "drained before the deadline");
    check(cons_bad == 0 && stops_bad == 0, "consumers exit 0 on SIGTERM");
    check(unexpected_exits == 0, "no child died by itself");
    check(published > 0 && handled_unique[0] > 0 && handled_unique[1] > 0, "events flowed");
    for (g = 0; g < 2; g++) {
        char what[64];
        snprintf(what, sizeof what, "%s lost 0", group_names[g]);
        check(!server_failed && lost[g] == 0 && lost_repl[g] == 0, what);
        snprintf(what, sizeof what, "%s dlq exact", group_names[g]);
        check(!server_failed && nonpoison_dead[g] == 0 && poison_missing[g] == 0 && poison_handled[g] == 0, what);
    }
    check(phantoms == 0 && dlq_unknown_group == 0 && dlq_no_id == 0, "no unknown events");
    check(batches_torn == 0, "failed batches all or none");
    check(leftovers == 0, "no leftover processes");

    ledger_free();
    if (opt.keep || (test__failed && getenv("CHAOS_KEEP"))) fprintf(stderr, "chaos: logs kept in %s\n", logdir);
    else rm_logdir();
    return test_summary("chaos");
}
