/* bus_util.h - helpers shared by the tests that run rsbus against a real redis-server:
   opening buses on the test server, raw commands, captured log lines, handler logs in files. */
#ifndef RSBUS_BUS_UTIL_H
#define RSBUS_BUS_UTIL_H

#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static test_redis srv;               /* the server of this test program */
static char logbuf[1 << 20];         /* every log line of every bus, for redaction checks */
static size_t loglen;

TEST__UNUSED static void capture_log(void *user, rsbus_log_level level, const char *msg) {
    size_t n = strlen(msg);
    (void)user; (void)level;
    if (loglen + n + 2 < sizeof logbuf) {
        memcpy(logbuf + loglen, msg, n);
        loglen += n;
        logbuf[loglen++] = '\n';
        logbuf[loglen] = 0;
    }
}

/* ---- two transports ----
   RSBUS_TEST_TRANSPORT=mem runs a program's tests on mem://test (rsbus's in-process bus) instead of its
   redis-server, with the same expectations: test_cfg gives the mem:// url, raw() runs its command on the
   same namespace, and the tests listed below, which need a real server, are skipped saying why. make
   test runs test_bus, test_dedupe, test_schema, test_interop, test_alloc_fail and test_partitions both
   ways (build/mem/). */
#define MEM_TEST_URL "mem://test"
TEST__UNUSED static int on_mem(void) {
    const char *v = getenv("RSBUS_TEST_TRANSPORT");
    return v && strcmp(v, "mem") == 0;
}
/* The one list of tests that run on Redis only, and why. The programs make test does not run on mem:// at
   all need a server by what they test: test_faults (servers killed, frozen, restarted, CLIENT KILL),
   test_security (ACL users), test_tls, test_spool and test_gateway (the offline spool, which mem:// does
   not have), test_rsbusctl, test_exporter and chaos (other processes on the same data), test_hostile and
   test_harness (a fake server, the test server's own handling), test_docs (README's tools). */
static const char *const redis_only[][2] = {
    { "open_refused_port", "connects to a TCP port nobody listens on" },
    { "open_timeout_on_silent_server", "needs a TCP server that never answers" },
    { "auth_password_and_acl_user", "AUTH and ACL users: mem:// has no server to log in to" },
    { "select_db_from_url", "Redis databases (SELECT): mem:// has namespaces instead" },
    { "reread_own_pending_after_restart", "restarts the redis-server" },
    { "health_unhealthy_when_redis_is_gone", "stops the redis-server" },
    { "two_consumers_share_a_group_and_a_second_group_gets_all", "consumers in forked processes: a mem:// "
      "namespace lives in one process (test_mem runs the threaded equivalent)" },
    { "sigkill_between_handling_and_acking_side_effect_once", "kills a consumer process" },
    { "peers_publish_rsbus_consumes_byte_for_byte", "the peers are Python and Node processes on the server" },
    { "rsbus_publishes_peers_read_field_by_field", "the peers are Python and Node processes on the server" },
    { "publish_fields_goes_through_the_spool", "mem:// has no spool" },
    { "spool_under_failing_allocations_loses_nothing", "mem:// has no spool" },
    { "without_dedupe_the_same_kill_runs_the_side_effect_twice", "kills a consumer process" },
    { "rename_moves_an_old_dlq", "README's RENAME of a 0.1 dead-letter stream, a redis-cli command on a server" },
    { "claims_across_partitions_after_a_kill", "kills a consumer process" },
    { "spool_keeps_the_partition", "mem:// has no spool" },
};
TEST__UNUSED static const char *mem_excluded(const char *name) {
    size_t i;
    if (!on_mem()) return NULL;
    for (i = 0; i < sizeof redis_only / sizeof redis_only[0]; i++)
        if (strcmp(redis_only[i][0], name) == 0) return redis_only[i][1];
    return NULL;
}
#undef TEST_EXCLUDED
#define TEST_EXCLUDED(name) mem_excluded(name)

TEST__UNUSED static void mem_keep_namespace(void);
/* A config on the test server's unix socket (or mem://test) with short, test-friendly timings. */
TEST__UNUSED static rsbus_config test_cfg(const char *stream, const char *group, const char *consumer) {
    rsbus_config c;
    if (on_mem()) mem_keep_namespace();
    memset(&c, 0, sizeof c);
    c.url = on_mem() ? MEM_TEST_URL : srv.unix_url;
    c.stream = stream;
    c.group = group;
    c.consumer = consumer;
    c.group_start = "0";
    c.retry_backoff_ms = 50;
    c.claim_interval_ms = 50;
    c.claim_idle_ms = 300;
    c.block_ms = 100;
    c.connect_timeout_ms = 1000;
    c.io_timeout_ms = 2000;
    c.log = capture_log;
    c.log_level = RSBUS_LOG_DEBUG;
    return c;
}
TEST__UNUSED static rsbus *open_cfg(const rsbus_config *c) {
    rsbus_error err;
    rsbus *bus = rsbus_open(c, &err);
    if (!bus) fprintf(stderr, "  rsbus_open: %s: %s\n", rsbus_result_str(err.code), err.msg);
    return bus;
}
TEST__UNUSED static rsbus *open_bus(const char *stream, const char *group, const char *consumer) {
    rsbus_config c = test_cfg(stream, group, consumer);
    return open_cfg(&c);
}

/* A raw command on mem://test: formatted by hiredis, run by the in-process engine as another client's
   command, its reply parsed by a plain hiredis reader (freeReplyObject frees it). The bus that runs them
   stays open, so the namespace lives as long as the program, as the server's data would. */
#ifdef RSBUS_IMPLEMENTATION_INCLUDED
#  ifndef RSBUS_NO_MEM
static rsbus *mem_raw_bus;
/* Opens the bus that runs raw commands, before any bus of a test: the namespace then lives (with libc's
   allocator) until raw_reset, as a server's data would outlive the buses. */
TEST__UNUSED static void mem_keep_namespace(void) {
    rsbus_config c;
    rsbus_error err;
    if (mem_raw_bus) return;
    memset(&c, 0, sizeof c);
    c.url = MEM_TEST_URL;
    c.stream = "raw";
    c.publish_only = 1;
    mem_raw_bus = rsbus_open(&c, &err);
}
TEST__UNUSED static redisReply *mem_raw_cmd(char *cmd, long long len) {
    char *rep = NULL;
    size_t n = 0;
    void *out = NULL;
    redisReader *rd;
    if (len < 0) return NULL;
    mem_keep_namespace();
    if (mem_raw_bus && rsbus__mem_command(mem_raw_bus, cmd, (size_t)len, &rep, &n) == 0) {
        rd = redisReaderCreate();
        if (rd && redisReaderFeed(rd, rep, n) == REDIS_OK && redisReaderGetReply(rd, &out) != REDIS_OK) out = NULL;
        if (rd) redisReaderFree(rd);
        rsbus__free(&mem_raw_bus->a, rep, n);
    }
    redisFreeCommand(cmd);
    return (redisReply *)out;
}
TEST__UNUSED static redisReply *mem_raw(const char *fmt, va_list ap) {
    char *cmd = NULL;
    int len = redisvFormatCommand(&cmd, fmt, ap);
    return mem_raw_cmd(cmd, len);
}
#    define TEST_MEM_RAW 1
#  endif
#endif
#ifndef TEST_MEM_RAW
TEST__UNUSED static void mem_keep_namespace(void) {}
#endif

/* A raw command on a fresh connection (on mem://test when the tests run there); the reply is the caller's. */
static redisContext *raw_ctx;
TEST__UNUSED static redisReply *raw(const char *fmt, ...) {
    va_list ap;
    void *rep;
#ifdef TEST_MEM_RAW
    if (on_mem()) {
        redisReply *r;
        va_start(ap, fmt);
        r = mem_raw(fmt, ap);
        va_end(ap);
        return r;
    }
#endif
    if (!raw_ctx) raw_ctx = test_redis_connect(&srv);
    if (!raw_ctx) return NULL;
    va_start(ap, fmt);
    rep = redisvCommand(raw_ctx, fmt, ap);
    va_end(ap);
    if (!rep) { redisFree(raw_ctx); raw_ctx = NULL; }
    return (redisReply *)rep;
}
/* A raw command of binary-safe arguments (redisCommandArgv), on mem://test when the tests run there. */
TEST__UNUSED static redisReply *raw_argv(int argc, const char **argv, const size_t *alen) {
#ifdef TEST_MEM_RAW
    if (on_mem()) {
        char *cmd = NULL;
        long long len = redisFormatCommandArgv(&cmd, argc, argv, alen);
        return mem_raw_cmd(cmd, len);
    }
#endif
    if (!raw_ctx) raw_ctx = test_redis_connect(&srv);
    if (!raw_ctx) return NULL;
    return (redisReply *)redisCommandArgv(raw_ctx, argc, argv, alen);
}
/* Closes the raw connection (on mem://, the bus that keeps the namespace: at the end of a program). */
TEST__UNUSED static void raw_reset(void) {
    if (raw_ctx) { redisFree(raw_ctx); raw_ctx = NULL; }
#ifdef TEST_MEM_RAW
    if (mem_raw_bus) { rsbus_close(mem_raw_bus); mem_raw_bus = NULL; }
#endif
}
TEST__UNUSED static long long raw_int(const char *fmt, ...) {
    va_list ap;
    redisReply *rep;
    long long v = -1;
#ifdef TEST_MEM_RAW
    if (on_mem()) {
        va_start(ap, fmt);
        rep = mem_raw(fmt, ap);
        va_end(ap);
        if (!rep) return -1;
    } else
#endif
    {
        if (!raw_ctx) raw_ctx = test_redis_connect(&srv);
        if (!raw_ctx) return -1;
        va_start(ap, fmt);
        rep = (redisReply *)redisvCommand(raw_ctx, fmt, ap);
        va_end(ap);
        if (!rep) { redisFree(raw_ctx); raw_ctx = NULL; return -1; }
    }
    if (rep->type == REDIS_REPLY_INTEGER) v = rep->integer;
    freeReplyObject(rep);
    return v;
}
/* Pending count of a group, from XPENDING's summary. */
TEST__UNUSED static long long pending_of(const char *stream, const char *group) {
    redisReply *rep = raw("XPENDING %s %s", stream, group);
    long long v = -1;
    if (rep && rep->type == REDIS_REPLY_ARRAY && rep->elements >= 1 && rep->element[0]->type == REDIS_REPLY_INTEGER)
        v = rep->element[0]->integer;
    if (rep) freeReplyObject(rep);
    return v;
}

/* Idle ms of a group's oldest pending entry (XPENDING ... - + 1), -1 when none. */
TEST__UNUSED static long long oldest_idle(const char *stream, const char *group) {
    redisReply *rep = raw("XPENDING %s %s - + 1", stream, group);
    long long v = -1;
    if (rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 1 && rep->element[0]->elements == 4)
        v = rep->element[0]->element[2]->integer;
    if (rep) freeReplyObject(rep);
    return v;
}
/* A field of one group in XINFO GROUPS (Redis's own figure): its integer, -2 when nil, -1 when absent. */
TEST__UNUSED static long long group_field(const char *stream, const char *group, const char *field) {
    redisReply *rep = raw("XINFO GROUPS %s", stream);
    long long v = -1;
    size_t i, k;
    for (i = 0; rep && rep->type == REDIS_REPLY_ARRAY && i < rep->elements; i++) {
        const redisReply *g = rep->element[i];
        int mine = 0;
        for (k = 0; k + 1 < g->elements; k += 2)
            if (!strcmp(g->element[k]->str, "name") && g->element[k + 1]->type == REDIS_REPLY_STRING &&
                !strcmp(g->element[k + 1]->str, group)) mine = 1;
        for (k = 0; mine && k + 1 < g->elements; k += 2)
            if (!strcmp(g->element[k]->str, field))
                v = g->element[k + 1]->type == REDIS_REPLY_INTEGER ? g->element[k + 1]->integer : -2;
    }
    if (rep) freeReplyObject(rep);
    return v;
}
/* Calls of a command since CONFIG RESETSTAT ("xinfo|stream", "xlen", "time", ...), from INFO commandstats. */
TEST__UNUSED static long long calls_of(const char *cmd) {
    redisReply *rep = raw("INFO commandstats");
    char key[128];
    const char *p;
    long long v = 0;
    snprintf(key, sizeof key, "cmdstat_%s:calls=", cmd);
    if (rep && rep->type == REDIS_REPLY_STRING && (p = strstr(rep->str, key)) != NULL) v = strtoll(p + strlen(key), NULL, 10);
    if (rep) freeReplyObject(rep);
    return v;
}

/* Handler logs: each handled event id appended as one line to a file (O_APPEND, one write), so that
   several processes can log to one place and a SIGKILL loses nothing already written. */
TEST__UNUSED static void log_line(const char *path, const char *line) {
    char buf[256];
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0600);
    size_t n;
    if (fd < 0) return;
    n = (size_t)snprintf(buf, sizeof buf, "%s\n", line);
    if (write(fd, buf, n) < 0) { /* nothing to do */ }
    close(fd);
}
/* Counts lines of a file equal to 'line' (NULL: all lines). */
TEST__UNUSED static int count_lines(const char *path, const char *line) {
    FILE *f = fopen(path, "r");
    char buf[256];
    int n = 0;
    if (!f) return 0;
    while (fgets(buf, sizeof buf, f)) {
        buf[strcspn(buf, "\n")] = 0;
        if (!line || strcmp(buf, line) == 0) n++;
    }
    fclose(f);
    return n;
}
TEST__UNUSED static void tmp_path(char *out, size_t size, const char *name) {
    snprintf(out, size, "%s/%s", srv.dir, name);
    unlink(out);
}

/* Child processes started by a test, reaped (SIGKILL) at the end whatever happens. */
static pid_t children[32];
static int nchildren;
TEST__UNUSED static void kill_children(void) {
    int i;
    for (i = 0; i < nchildren; i++) {
        if (children[i] > 0) { kill(children[i], SIGKILL); waitpid(children[i], NULL, 0); children[i] = 0; }
    }
    nchildren = 0;
}
TEST__UNUSED static pid_t spawn(void (*fn)(void *), void *arg) {
    pid_t pid;
    fflush(stdout); fflush(stderr);
    pid = fork();
    if (pid == 0) {
        raw_ctx = NULL;   /* the parent's connection is not ours to use */
        fn(arg);
        _exit(0);
    }
    if (pid > 0 && nchildren < 32) children[nchildren++] = pid;
    return pid;
}
/* Waits for a child to exit (deadline); returns its exit status or -1. */
TEST__UNUSED static int reap(pid_t pid, int timeout_ms) {
    int64_t dl = test_now_ms() + timeout_ms;
    int st = 0, i;
    for (;;) {
        pid_t w = waitpid(pid, &st, WNOHANG);
        if (w == pid) break;
        if (test_now_ms() > dl) { kill(pid, SIGKILL); waitpid(pid, &st, 0); return -1; }
        test_sleep_ms(5);
    }
    for (i = 0; i < nchildren; i++) if (children[i] == pid) children[i] = 0;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

#endif
