/* test_harness.c - the test harness itself: redis_server.h starts, restarts and always stops a real
   redis-server, and leaves nothing behind. */
#define _POSIX_C_SOURCE 200809L
#define RSBUS_IMPLEMENTATION
#include "rsbus.h"
#include "test.h"
#include "redis_server.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* The reply to a command of up to 3 words, as text ("" if none); "ERR:..." for an error reply. */
static const char *cmd(redisContext *c, const char *a, const char *b, const char *d) {
    static char out[256];
    const char *argv[3];
    size_t lens[3];
    int n = 0;
    redisReply *rep;
    argv[n] = a; lens[n++] = strlen(a);
    if (b) { argv[n] = b; lens[n++] = strlen(b); }
    if (d) { argv[n] = d; lens[n++] = strlen(d); }
    out[0] = '\0';
    if (!c) return out;
    rep = (redisReply *)redisCommandArgv(c, n, argv, lens);
    if (!rep) { snprintf(out, sizeof out, "IOERR:%s", c->errstr); return out; }
    if (rep->type == REDIS_REPLY_ERROR) snprintf(out, sizeof out, "ERR:%s", rep->str);
    else if (rep->type == REDIS_REPLY_STATUS || rep->type == REDIS_REPLY_STRING) snprintf(out, sizeof out, "%s", rep->str);
    else if (rep->type == REDIS_REPLY_INTEGER) snprintf(out, sizeof out, "%lld", rep->integer);
    freeReplyObject(rep);
    return out;
}

static int is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}
static int exists(const char *path) {
    struct stat st;
    return lstat(path, &st) == 0;
}
/* The process is gone: no such pid, or (Linux) a zombie nobody has reaped yet. */
static int pid_gone(pid_t pid) {
#ifdef __linux__
    char path[64], buf[256];
    FILE *f;
    snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
    if ((f = fopen(path, "r")) != NULL) {
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        const char *p;
        buf[n] = '\0';
        fclose(f);
        p = strrchr(buf, ')');
        return p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X');
    }
#endif
    return kill(pid, 0) != 0 && errno == ESRCH;
}

TEST(start_ping_stop) {
    test_redis r;
    redisContext *c;
    char dir[256];
    pid_t pid;
    REQUIRE(test_redis_start(&r, NULL) == 0);
    CHECK(r.pid > 0);
    CHECK(r.port > 0 && r.port < 65536);
    CHECK(is_dir(r.dir));
    CHECK(exists(r.sock));
    CHECK(strncmp(r.unix_url, "unix://", 7) == 0 && strcmp(r.unix_url + 7, r.sock) == 0);
    CHECK(strncmp(r.tcp_url, "redis://127.0.0.1:", 18) == 0 && atoi(r.tcp_url + 18) == r.port);

    c = test_redis_connect(&r);
    CHECK(c != NULL);
    CHECK_EQ_STR(cmd(c, "PING", NULL, NULL), "PONG");
    if (c) redisFree(c);

    c = redisConnect("127.0.0.1", r.port);
    CHECK(c != NULL && c->err == 0);
    CHECK_EQ_STR(cmd(c, "PING", NULL, NULL), "PONG");
    if (c) redisFree(c);

    snprintf(dir, sizeof dir, "%s", r.dir);
    pid = r.pid;
    test_redis_stop(&r);
    CHECK_EQ_INT(r.pid, 0);
    CHECK(!exists(dir));
    CHECK(pid_gone(pid));
    test_redis_stop(&r);                      /* twice: harmless */
}

TEST(kill_and_restart_keeps_aof_data) {
    test_redis r;
    redisContext *c;
    pid_t old;
    int port;
    REQUIRE(test_redis_start(&r, "appendonly yes\n") == 0);
    c = test_redis_connect(&r);
    REQUIRE(c != NULL);
    CHECK_EQ_STR(cmd(c, "SET", "harness:key", "kept"), "OK");
    redisFree(c);

    old = r.pid;
    port = r.port;
    test_redis_kill(&r);
    CHECK_EQ_INT(r.pid, 0);
    CHECK(pid_gone(old));
    CHECK(is_dir(r.dir));                     /* kept for the restart */
    fprintf(stderr, "   (an expected connect failure follows)\n");
    c = test_redis_connect(&r);
    CHECK(c == NULL);                         /* nobody listening */
    if (c) redisFree(c);

    REQUIRE(test_redis_restart(&r) == 0);
    CHECK(r.pid > 0 && r.pid != old);
    CHECK_EQ_INT(r.port, port);
    c = test_redis_connect(&r);
    CHECK(c != NULL);
    CHECK_EQ_STR(cmd(c, "GET", "harness:key", NULL), "kept");
    if (c) redisFree(c);
    c = redisConnect("127.0.0.1", r.port);
    CHECK(c != NULL && c->err == 0);
    CHECK_EQ_STR(cmd(c, "GET", "harness:key", NULL), "kept");
    if (c) redisFree(c);

    old = r.pid;
    REQUIRE(test_redis_restart(&r) == 0);     /* restart of a running server: kill, then start */
    CHECK(pid_gone(old));
    c = test_redis_connect(&r);
    CHECK_EQ_STR(cmd(c, "GET", "harness:key", NULL), "kept");
    if (c) redisFree(c);
    test_redis_stop(&r);
    CHECK(!exists(r.dir));
}

TEST(requirepass) {
    test_redis r;
    redisContext *c;
    REQUIRE(test_redis_start(&r, "requirepass s3cret\n") == 0);
    c = test_redis_connect(&r);                /* authenticated */
    CHECK(c != NULL);
    CHECK_EQ_STR(cmd(c, "PING", NULL, NULL), "PONG");
    if (c) redisFree(c);
    c = redisConnectUnix(r.sock);
    CHECK(c != NULL && c->err == 0);
    CHECK_CONTAINS(cmd(c, "PING", NULL, NULL), "NOAUTH");
    if (c) redisFree(c);
    test_redis_stop(&r);
}

TEST(two_servers) {
    test_redis a, b;
    redisContext *c;
    REQUIRE(test_redis_start(&a, NULL) == 0);
    if (test_redis_start(&b, NULL) != 0) { test_redis_stop(&a); REQUIRE(0); }
    CHECK(a.port != b.port);
    CHECK(strcmp(a.dir, b.dir) != 0);
    c = test_redis_connect(&a);
    CHECK_EQ_STR(cmd(c, "SET", "k", "a"), "OK");
    if (c) redisFree(c);
    c = test_redis_connect(&b);
    CHECK_EQ_STR(cmd(c, "GET", "k", NULL), "");
    if (c) redisFree(c);
    test_redis_stop(&b);
    c = test_redis_connect(&a);                /* stopping b left a alone */
    CHECK_EQ_STR(cmd(c, "GET", "k", NULL), "a");
    if (c) redisFree(c);
    test_redis_stop(&a);
}

TEST(failures_are_reported) {
    test_redis r;
    const char *old = getenv("REDIS_SERVER");
    char saved[512];
    snprintf(saved, sizeof saved, "%s", old ? old : "");
    fprintf(stderr, "   (two expected failure messages follow)\n");
    setenv("REDIS_SERVER", "/nonexistent/redis-server", 1);
    CHECK_EQ_INT(test_redis_start(&r, NULL), -1);
    if (old) setenv("REDIS_SERVER", saved, 1); else unsetenv("REDIS_SERVER");
    CHECK_EQ_INT(r.pid, 0);

    CHECK_EQ_INT(test_redis_start(&r, "no-such-directive yes\n"), -1);   /* redis-server exits at once */
    CHECK_EQ_INT(r.pid, 0);
    CHECK(r.dir[0] && !exists(r.dir));
}

/* A child process that starts a server, reports it through a pipe, then ends as 'how' says. */
struct child_report { pid_t server; char dir[256]; };
static int run_child(const char *how, struct child_report *rep, int *status) {
    int fds[2];
    pid_t child;
    ssize_t n;
    if (pipe(fds) != 0) return -1;
    fflush(NULL);
    child = fork();
    if (child < 0) return -1;
    if (child == 0) {
        test_redis r;
        struct child_report out;
        close(fds[0]);
        memset(&out, 0, sizeof out);
        if (test_redis_start(&r, NULL) == 0) { out.server = r.pid; snprintf(out.dir, sizeof out.dir, "%s", r.dir); }
        if (write(fds[1], &out, sizeof out) < 0) _exit(3);
        close(fds[1]);
        if (strcmp(how, "exit") == 0) exit(0);                /* the atexit handler */
        if (strcmp(how, "abort") == 0) abort();               /* the SIGABRT handler */
        if (strcmp(how, "sigkill") == 0) raise(SIGKILL);      /* nothing runs: PR_SET_PDEATHSIG (Linux) */
        for (;;) test_sleep_ms(100);                          /* "term": wait for the parent's SIGTERM */
    }
    close(fds[1]);
    memset(rep, 0, sizeof *rep);
    n = read(fds[0], rep, sizeof *rep);
    close(fds[0]);
    if (strcmp(how, "term") == 0) kill(child, SIGTERM);
    while (waitpid(child, status, 0) < 0 && errno == EINTR) {}
    return n == (ssize_t)sizeof *rep && rep->server > 0 ? 0 : -1;
}

TEST(exit_stops_servers) {
    struct child_report rep;
    int st;
    REQUIRE(run_child("exit", &rep, &st) == 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    WAIT_UNTIL(pid_gone(rep.server), 5000);
    CHECK(!exists(rep.dir));
}

TEST(sigterm_stops_servers) {
    struct child_report rep;
    int st;
    REQUIRE(run_child("term", &rep, &st) == 0);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM);
    WAIT_UNTIL(pid_gone(rep.server), 5000);
    CHECK(!exists(rep.dir));
}

TEST(abort_stops_servers) {
    struct child_report rep;
    int st;
    REQUIRE(run_child("abort", &rep, &st) == 0);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT);
    WAIT_UNTIL(pid_gone(rep.server), 5000);
    CHECK(!exists(rep.dir));
}

#ifdef __linux__
/* reaps an orphaned grandchild (this process is its subreaper); 1 once it has exited */
static int reaped(pid_t pid) {
    int st;
    return waitpid(pid, &st, WNOHANG) == pid;
}

TEST(sigkill_stops_servers) {
    struct child_report rep;
    int st;
    /* the orphaned server comes to us, not to init (which may never reap it in a container) */
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    if (run_child("sigkill", &rep, &st) != 0) { prctl(PR_SET_CHILD_SUBREAPER, 0); REQUIRE(0); }
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    WAIT_UNTIL(reaped(rep.server), 5000);
    prctl(PR_SET_CHILD_SUBREAPER, 0);
    test_redis__rmtree(rep.dir);              /* nothing could remove it */
}
#endif

TEST(child_exit_leaves_parent_servers) {
    test_redis r;
    pid_t child;
    int st;
    redisContext *c;
    REQUIRE(test_redis_start(&r, NULL) == 0);
    fflush(NULL);
    child = fork();
    if (child == 0) exit(0);                   /* runs the inherited atexit handler */
    REQUIRE(child > 0);
    while (waitpid(child, &st, 0) < 0 && errno == EINTR) {}
    CHECK(!pid_gone(r.pid));
    c = test_redis_connect(&r);
    CHECK_EQ_STR(cmd(c, "PING", NULL, NULL), "PONG");
    if (c) redisFree(c);
    test_redis_stop(&r);
}

TEST(leftover_server_stopped_at_exit) {
    /* started and never stopped: the exit handler of this very program must stop it */
    static test_redis r;
    CHECK(test_redis_start(&r, NULL) == 0);
}

int main(void) {
    RUN(start_ping_stop);
    RUN(kill_and_restart_keeps_aof_data);
    RUN(requirepass);
    RUN(two_servers);
    RUN(failures_are_reported);
    RUN(exit_stops_servers);
    RUN(sigterm_stops_servers);
    RUN(abort_stops_servers);
#ifdef __linux__
    RUN(sigkill_stops_servers);
#endif
    RUN(child_exit_leaves_parent_servers);
    RUN(leftover_server_stopped_at_exit);
    (void)rsbus_result_str(RSBUS_OK);
    return test_summary("test_harness");
}
