/* redis_server.h - run a real, private redis-server for a test program (header only, all static).

       test_redis r;
       REQUIRE(test_redis_start(&r, "appendonly yes\n") == 0);   NULL or extra redis.conf lines
       ... r.unix_url ("unix:///tmp/rsbus-redis.XXXXXX/redis.sock"), r.tcp_url ("redis://127.0.0.1:PORT")
       redisContext *c = test_redis_connect(&r);                  raw commands; redisFree(c) when done
       test_redis_kill(&r);  test_redis_restart(&r);               crash it, bring it back (from the AOF)
       test_redis_stop(&r);                                        SIGTERM, wait, remove the dir
       test_redis_start_tls(&r, "tls-cert-file ...\ntls-key-file ...\ntls-ca-cert-file ...\n");
                                   the loopback port speaks TLS only ("port 0", "tls-port N"): r.tls_url
                                   ("rediss://127.0.0.1:N"), r.tcp_url ""; the unix socket stays plain
       test_redis_start_sentinel(&r, "sentinel monitor m 127.0.0.1 6380 2\n...");
                                   a redis-sentinel (REDIS_SENTINEL, default redis-sentinel on PATH: Debian's
                                   redis-sentinel package) on a free loopback port: r.port, r.tcp_url

   Each server runs in its own temp dir (mkdtemp under $TMPDIR, else /tmp) with a unix socket and a free
   loopback TCP port; no persistence unless extra_conf asks for it (later lines override earlier ones).
   Servers are always stopped by pid: at exit, and on SIGINT/SIGTERM/SIGABRT/SIGSEGV, every server this
   process started is killed and its dir removed; on Linux a server also dies (PR_SET_PDEATHSIG) with the
   thread that started it, so even a test killed with SIGKILL leaves no server running.

   The including file must `#define _POSIX_C_SOURCE 200809L` (or _XOPEN_SOURCE 700 / _GNU_SOURCE)
   before its first #include, and link -lhiredis.
   REDIS_SERVER in the environment names the redis-server binary to run (default: redis-server on PATH).
   Caveats: a test must not waitpid(-1, ...) or set SIGCHLD to SIG_IGN (that would reap the servers);
   start servers from the main thread (on Linux a server dies with the thread that started it); a child
   the test forks leaves the parent's servers alone when it exits (only the starting process stops them).
   Redis 7 refuses DEBUG by default: pass "enable-debug-command yes\n" for DEBUG SLEEP, or use
   CLIENT PAUSE to make a server stop answering. */
#ifndef RSBUS_TEST_REDIS_SERVER_H
#define RSBUS_TEST_REDIS_SERVER_H

#if defined(__STRICT_ANSI__) && !defined(_POSIX_C_SOURCE) && !defined(_XOPEN_SOURCE) && !defined(_GNU_SOURCE)
#  error "redis_server.h needs POSIX: #define _POSIX_C_SOURCE 200809L before the first #include"
#endif

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#ifdef __linux__
#  include <sys/prctl.h>
#endif
#include <hiredis/hiredis.h>

#if defined(__GNUC__) || defined(__clang__)
#  define TEST_REDIS__FN static __attribute__((unused))
#else
#  define TEST_REDIS__FN static
#endif

typedef struct test_redis {
    pid_t pid;
    char dir[256];        /* private temp dir (mkdtemp under $TMPDIR or /tmp) */
    char sock[320];       /* dir + "/redis.sock" */
    int  port;            /* a free loopback TCP port */
    char unix_url[400];   /* "unix://" + sock */
    char tcp_url[64];     /* "redis://127.0.0.1:<port>" */
    char extra[1024];     /* extra config lines given at start, kept for restarts */
    int  tls;             /* test_redis_start_tls: port is the tls-port, no plain TCP port */
    char tls_url[64];     /* "rediss://127.0.0.1:<port>" (test_redis_start_tls), else "" */
    int  cluster_port;    /* extra_conf with "cluster-enabled yes": the cluster bus port (a free one) */
    int  sentinel;        /* test_redis_start_sentinel: a redis-sentinel */
} test_redis;

#define TEST_REDIS__SLOTS 64
#define TEST_REDIS__START_MS 10000     /* deadline for a server to answer PING */
#define TEST_REDIS__STOP_MS 5000       /* deadline for a server to exit after SIGTERM */

/* Every server this process started, as copies (a test_redis may live on a stack that is gone by
   exit time): what the exit and signal handlers stop. pid 0: killed, dir kept for a restart. */
static struct test_redis__slot { pid_t pid, owner; char dir[256]; } test_redis__slots[TEST_REDIS__SLOTS];
static volatile sig_atomic_t test_redis__in_handler;
static int test_redis__installed;
static const int test_redis__sigs[4] = { SIGINT, SIGTERM, SIGABRT, SIGSEGV };
static struct sigaction test_redis__old[4];

static long long test_redis__now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
static void test_redis__sleep_ms(long ms) {
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

static struct test_redis__slot *test_redis__slot_find(const char *dir) {
    int i;
    pid_t me = getpid();
    for (i = 0; i < TEST_REDIS__SLOTS; i++)
        if (test_redis__slots[i].owner == me && test_redis__slots[i].dir[0] &&
            strcmp(test_redis__slots[i].dir, dir) == 0) return &test_redis__slots[i];
    return NULL;
}
static struct test_redis__slot *test_redis__slot_add(const char *dir) {
    int i;
    for (i = 0; i < TEST_REDIS__SLOTS; i++) {
        struct test_redis__slot *s = &test_redis__slots[i];
        if (s->dir[0] && s->owner == getpid()) continue;
        s->pid = 0;
        snprintf(s->dir, sizeof s->dir, "%s", dir);
        s->owner = getpid();
        return s;
    }
    return NULL;
}

/* SIGKILL and reap; async-signal-safe. */
static void test_redis__kill_pid(pid_t pid) {
    int st;
    if (pid <= 0) return;
    kill(pid, SIGKILL);
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
}

/* Removes a dir and everything under it (not async-signal-safe: uses opendir). */
static void test_redis__rmtree(const char *path) {
    DIR *d = opendir(path);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            char p[1024];
            struct stat st;
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
            if (snprintf(p, sizeof p, "%s/%s", path, e->d_name) >= (int)sizeof p) continue;
            if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode)) test_redis__rmtree(p);
            else unlink(p);
        }
        closedir(d);
    }
    rmdir(path);
}

/* The handler's removal: only async-signal-safe calls, so only the names a server leaves behind.
   Anything else (a rewritten AOF) stays, and the handler says so; tests/run_tests.sh runs every test
   program with a private TMPDIR that it removes afterwards. */
static void test_redis__unlink_in(const char *dir, const char *name, int is_dir) {
    char p[512];
    size_t n = strlen(dir), m = strlen(name);
    if (n + 1 + m + 1 > sizeof p) return;
    memcpy(p, dir, n);
    p[n] = '/';
    memcpy(p + n + 1, name, m + 1);
    if (is_dir) rmdir(p); else unlink(p);
}
static void test_redis__rmdir_signal_safe(const char *dir) {
    static const char *const files[] = {
        "redis.conf", "redis.log", "redis.sock", "dump.rdb", "appendonly.aof", "nodes.conf",
        "appendonlydir/appendonly.aof.manifest",
        "appendonlydir/appendonly.aof.1.base.rdb", "appendonlydir/appendonly.aof.1.incr.aof",
        "appendonlydir/appendonly.aof.2.base.rdb", "appendonlydir/appendonly.aof.2.incr.aof",
        "appendonlydir/appendonly.aof.3.base.rdb", "appendonlydir/appendonly.aof.3.incr.aof" };
    size_t i;
    for (i = 0; i < sizeof files / sizeof files[0]; i++) test_redis__unlink_in(dir, files[i], 0);
    test_redis__unlink_in(dir, "appendonlydir", 1);
    if (rmdir(dir) != 0 && errno != ENOENT) {
        static const char msg[] = "test_redis: left a server dir behind: ";
        if (write(2, msg, sizeof msg - 1) < 0 || write(2, dir, strlen(dir)) < 0 || write(2, "\n", 1) < 0) {}
    }
}

/* Kills every server this process started and removes their dirs. */
static void test_redis__stop_all(int in_signal) {
    int i;
    pid_t me = getpid();
    for (i = 0; i < TEST_REDIS__SLOTS; i++) {
        struct test_redis__slot *s = &test_redis__slots[i];
        if (s->owner != me || !s->dir[0]) continue;
        test_redis__kill_pid(s->pid);
        s->pid = 0;
        if (in_signal) test_redis__rmdir_signal_safe(s->dir);
        else test_redis__rmtree(s->dir);
        s->dir[0] = '\0';
    }
}
static void test_redis__atexit(void) { test_redis__stop_all(0); }

static void test_redis__on_signal(int sig, siginfo_t *info, void *uctx) {
    int saved = errno, i, fault;
    (void)uctx;
    if (!test_redis__in_handler) {
        test_redis__in_handler = 1;
        test_redis__stop_all(1);
    }
    /* Put back what was there before (SIG_DFL, or a sanitizer's handler), then let the signal do what
       it would have done: sent by kill()/raise(), deliver it again; a real fault recurs on return. */
    for (i = 0; i < 4 && test_redis__sigs[i] != sig; i++) {}
    if (i < 4) sigaction(sig, &test_redis__old[i], NULL);
    else signal(sig, SIG_DFL);
    fault = sig == SIGSEGV && info != NULL && (info->si_code == SEGV_MAPERR || info->si_code == SEGV_ACCERR);
    if (!fault) raise(sig);
    errno = saved;
}

static void test_redis__install(void) {
    int i;
    if (test_redis__installed) return;
    test_redis__installed = 1;
    atexit(test_redis__atexit);
    for (i = 0; i < 4; i++) {
        struct sigaction sa;
        if (sigaction(test_redis__sigs[i], NULL, &test_redis__old[i]) != 0) continue;
        /* A signal the process ignores (SIGINT in a background job) stays ignored, and a test's own
           SIGINT/SIGTERM handler stays in charge (the exit handler still stops the servers). SIGABRT and
           SIGSEGV handlers (a sanitizer's) are wrapped: ours runs first, then theirs. */
        if (!(test_redis__old[i].sa_flags & SA_SIGINFO) && test_redis__old[i].sa_handler == SIG_IGN) continue;
        if ((test_redis__sigs[i] == SIGINT || test_redis__sigs[i] == SIGTERM) &&
            ((test_redis__old[i].sa_flags & SA_SIGINFO) || test_redis__old[i].sa_handler != SIG_DFL)) continue;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = test_redis__on_signal;
        sa.sa_flags = SA_SIGINFO;
#ifdef SA_ONSTACK
        sa.sa_flags |= SA_ONSTACK;       /* use the alternate stack if someone (ASan) set one up */
#endif
        sigemptyset(&sa.sa_mask);
        sigaction(test_redis__sigs[i], &sa, NULL);
    }
}

/* The redis-server binary: $REDIS_SERVER, else redis-server on PATH. */
static int test_redis__find_server(char *out, size_t size, int sentinel) {
    const char *env = getenv(sentinel ? "REDIS_SENTINEL" : "REDIS_SERVER"), *path = getenv("PATH"), *p;
    const char *name = env && *env ? env : sentinel ? "redis-sentinel" : "redis-server";
    if (strchr(name, '/')) {
        if (access(name, X_OK) == 0 && (size_t)snprintf(out, size, "%s", name) < size) return 0;
    } else {
        for (p = path && *path ? path : "/usr/local/bin:/usr/bin:/bin"; *p; ) {
            size_t n = strcspn(p, ":");
            if (n > 0 && (size_t)snprintf(out, size, "%.*s/%s", (int)n, p, name) < size && access(out, X_OK) == 0)
                return 0;
            p += n;
            if (*p == ':') p++;
        }
    }
    fprintf(stderr, "%s not found: install it (apt-get install %s)\n", name, sentinel ? "redis-sentinel" : "redis-server");
    return -1;
}

static int test_redis__free_port(void) {
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    int port = -1, fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 && getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

/* The requirepass value of the extra config (the last one wins), "" if none. */
static void test_redis__password(const test_redis *r, char *out, size_t size) {
    const char *line = r->extra;
    out[0] = '\0';
    while (*line) {
        size_t n = strcspn(line, "\n");
        const char *p = line, *end = line + n;
        while (p < end && (*p == ' ' || *p == '\t')) p++;
        if ((size_t)(end - p) > 12 && strncmp(p, "requirepass", 11) == 0 && (p[11] == ' ' || p[11] == '\t')) {
            p += 12;
            while (p < end && (*p == ' ' || *p == '\t')) p++;
            while (end > p && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r')) end--;
            if (end - p >= 2 && (*p == '"' || *p == '\'') && end[-1] == *p) { p++; end--; }
            snprintf(out, size, "%.*s", (int)(end - p), p);
        }
        line += n;
        if (*line) line++;
    }
}

static redisContext *test_redis__connect(const test_redis *r, long timeout_ms, int quiet) {
    struct timeval tv;
    redisContext *c;
    char pw[256];
    tv.tv_sec = timeout_ms / 1000;
    tv.tv_usec = (timeout_ms % 1000) * 1000;
    c = redisConnectUnixWithTimeout(r->sock, tv);
    if (!c || c->err) {
        if (!quiet) fprintf(stderr, "test_redis: connect %s: %s\n", r->sock, c ? c->errstr : "out of memory");
        if (c) redisFree(c);
        return NULL;
    }
    tv.tv_sec = 10;
    tv.tv_usec = 0;
    redisSetTimeout(c, tv);
    test_redis__password(r, pw, sizeof pw);
    if (pw[0]) {
        const char *argv[2];
        size_t lens[2];
        redisReply *rep;
        argv[0] = "AUTH"; lens[0] = 4;
        argv[1] = pw; lens[1] = strlen(pw);
        rep = (redisReply *)redisCommandArgv(c, 2, argv, lens);
        if (!rep || rep->type == REDIS_REPLY_ERROR) {
            if (!quiet) fprintf(stderr, "test_redis: AUTH on %s: %s\n", r->sock, rep ? rep->str : c->errstr);
            if (rep) freeReplyObject(rep);
            redisFree(c);
            return NULL;
        }
        freeReplyObject(rep);
    }
    return c;
}

static void test_redis__print_log(const test_redis *r) {
    char path[300], buf[2049];
    size_t n;
    long size;
    FILE *f;
    snprintf(path, sizeof path, "%s/redis.log", r->dir);
    f = fopen(path, "r");
    if (!f) { fprintf(stderr, "test_redis: no log at %s\n", path); return; }
    fseek(f, 0, SEEK_END);
    size = ftell(f);
    fseek(f, size > 2048 ? size - 2048 : 0, SEEK_SET);
    n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    fprintf(stderr, "---- tail of %s ----\n%s---- end of log ----\n", path, buf);
}
static int test_redis__log_contains(const test_redis *r, const char *what) {
    char path[300], buf[4097];
    size_t n;
    FILE *f;
    snprintf(path, sizeof path, "%s/redis.log", r->dir);
    if (!(f = fopen(path, "r"))) return 0;
    n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return strstr(buf, what) != NULL;
}

static int test_redis__write_conf(const test_redis *r) {
    char path[300];
    FILE *f;
    snprintf(path, sizeof path, "%s/redis.conf", r->dir);
    if (!(f = fopen(path, "w"))) {
        fprintf(stderr, "test_redis: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (r->tls) fprintf(f, "port 0\ntls-port %d\n", r->port);
    else fprintf(f, "port %d\n", r->port);
    if (strstr(r->extra, "cluster-enabled yes")) {   /* a cluster node: its bus port and state file */
        fprintf(f, "cluster-port %d\ncluster-config-file nodes.conf\n", r->cluster_port);
    }
    fprintf(f, "bind 127.0.0.1\nunixsocket \"%s\"\nunixsocketperm 700\ndir \"%s\"\n"
               "save \"\"\nappendonly no\ndaemonize no\nlogfile \"%s/redis.log\"\nprotected-mode no\n%s\n",
            r->sock, r->dir, r->dir, r->extra);
    if (fclose(f) != 0) return -1;
    snprintf(path, sizeof path, "%s/redis.log", r->dir);   /* a fresh log for each start */
    if ((f = fopen(path, "w")) != NULL) fclose(f);
    return 0;
}

/* fork + exec redis-server <dir>/redis.conf, its output into the log */
static pid_t test_redis__spawn(const test_redis *r, const char *bin) {
    char prog[512], conf[300], logp[300];
    char *argv[3];
    pid_t parent = getpid(), pid;
    snprintf(prog, sizeof prog, "%s", bin);
    snprintf(conf, sizeof conf, "%s/redis.conf", r->dir);
    snprintf(logp, sizeof logp, "%s/redis.log", r->dir);
    argv[0] = prog; argv[1] = conf; argv[2] = NULL;
    fflush(NULL);
    pid = fork();
    if (pid < 0) { fprintf(stderr, "test_redis: fork: %s\n", strerror(errno)); return -1; }
    if (pid == 0) {
        sigset_t none;
        long fd, max = sysconf(_SC_OPEN_MAX);
        int in = open("/dev/null", O_RDONLY), out = open(logp, O_WRONLY | O_CREAT | O_APPEND, 0600);
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
#ifdef __linux__
        prctl(PR_SET_PDEATHSIG, SIGKILL);     /* dies with the test, even a SIGKILLed one */
        if (getppid() != parent) _exit(127);
#else
        (void)parent;
#endif
        if (in >= 0) dup2(in, 0);
        if (out >= 0) { dup2(out, 1); dup2(out, 2); }
        /* no copies of the test's sockets in the server: a client the test closes must look closed */
        if (max < 0 || max > 4096) max = 4096;
        for (fd = 3; fd < max; fd++) close((int)fd);
        execv(prog, argv);
        if (write(2, "test_redis: exec failed\n", 24) < 0) {}
        _exit(127);
    }
    return pid;
}

/* 0 once the server answers (anything but LOADING); -1 if it exited (*exited = 1) or the deadline passed */
static int test_redis__wait_ready(const test_redis *r, pid_t pid, int *exited) {
    long long deadline = test_redis__now_ms() + TEST_REDIS__START_MS;
    *exited = 0;
    for (;;) {
        int st;
        redisContext *c;
        pid_t w = waitpid(pid, &st, WNOHANG);
        if (w == pid) { *exited = 1; return -1; }
        if ((c = test_redis__connect(r, 500, 1)) != NULL) {
            redisReply *rep = (redisReply *)redisCommand(c, "PING");
            int ok = rep && !(rep->type == REDIS_REPLY_ERROR && strncmp(rep->str, "LOADING", 7) == 0);
            if (rep) freeReplyObject(rep);
            redisFree(c);
            if (ok) return 0;
        }
        if (test_redis__now_ms() > deadline) {
            fprintf(stderr, "test_redis: redis-server (pid %ld) did not answer PING within %d ms\n",
                    (long)pid, TEST_REDIS__START_MS);
            return -1;
        }
        test_redis__sleep_ms(10);
    }
}

/* Spawns the server for r (dir, port and config already set) and waits for it; r->pid on success. */
static int test_redis__launch(test_redis *r, const char *bin, int *bind_failed) {
    int exited;
    pid_t pid;
    *bind_failed = 0;
    unlink(r->sock);
    if ((pid = test_redis__spawn(r, bin)) < 0) return -1;
    if (test_redis__wait_ready(r, pid, &exited) == 0) { r->pid = pid; return 0; }
    if (!exited) test_redis__kill_pid(pid);
    if (exited && test_redis__log_contains(r, "in use")) { *bind_failed = 1; return -1; }
    fprintf(stderr, "test_redis: redis-server %s failed to start\n", exited ? "exited:" : "hangs:");
    test_redis__print_log(r);
    return -1;
}

TEST_REDIS__FN int test_redis__start(test_redis *r, const char *extra_conf, int tls, int sentinel) {
    char bin[512], tmpl[sizeof r->dir];
    const char *base = getenv("TMPDIR");
    struct test_redis__slot *slot;
    int attempt;
    memset(r, 0, sizeof *r);
    r->tls = tls;
    r->sentinel = sentinel;
    if (extra_conf && strlen(extra_conf) >= sizeof r->extra) {
        fprintf(stderr, "test_redis_start: extra_conf is longer than %u bytes\n", (unsigned)sizeof r->extra - 1);
        return -1;
    }
    snprintf(r->extra, sizeof r->extra, "%s", extra_conf ? extra_conf : "");
    if (test_redis__find_server(bin, sizeof bin, sentinel) != 0) return -1;
    /* a unix socket path has to fit in sun_path (104 bytes on some systems): long TMPDIRs are skipped,
       and so are those the config file could not quote */
    if (!base || !*base || strlen(base) > 60 || strpbrk(base, "\"\\\n\r'") != NULL) base = "/tmp";
    snprintf(tmpl, sizeof tmpl, "%s/rsbus-redis.XXXXXX", base);
    if (!mkdtemp(tmpl)) {
        fprintf(stderr, "test_redis_start: mkdtemp %s: %s\n", tmpl, strerror(errno));
        return -1;
    }
    snprintf(r->dir, sizeof r->dir, "%s", tmpl);
    snprintf(r->sock, sizeof r->sock, "%s/redis.sock", r->dir);
    snprintf(r->unix_url, sizeof r->unix_url, "unix://%s", r->sock);
    test_redis__install();
    if (!(slot = test_redis__slot_add(r->dir))) {
        fprintf(stderr, "test_redis_start: more than %d servers at once\n", TEST_REDIS__SLOTS);
        test_redis__rmtree(r->dir);
        return -1;
    }
    for (attempt = 0; attempt < 5; attempt++) {   /* another process may take the port first: pick again */
        int bind_failed;
        if ((r->port = test_redis__free_port()) < 0) {
            fprintf(stderr, "test_redis_start: no free TCP port: %s\n", strerror(errno));
            break;
        }
        if (strstr(r->extra, "cluster-enabled yes") && (r->cluster_port = test_redis__free_port()) < 0) break;
        if (tls) snprintf(r->tls_url, sizeof r->tls_url, "rediss://127.0.0.1:%d", r->port);
        else snprintf(r->tcp_url, sizeof r->tcp_url, "redis://127.0.0.1:%d", r->port);
        if (test_redis__write_conf(r) != 0) break;
        if (test_redis__launch(r, bin, &bind_failed) == 0) {
            slot->pid = r->pid;
            return 0;
        }
        if (!bind_failed) break;
    }
    test_redis__rmtree(r->dir);
    slot->dir[0] = '\0';
    r->pid = 0;
    return -1;
}

/* Starts a private redis-server; 0, or -1 with a message on stderr. */
TEST_REDIS__FN int test_redis_start(test_redis *r, const char *extra_conf) {
    return test_redis__start(r, extra_conf, 0, 0);
}

/* Starts a private redis-sentinel: extra_conf gives its "sentinel monitor ..." and other sentinel lines
   (the sentinel rewrites its config file in the temp dir). */
TEST_REDIS__FN int test_redis_start_sentinel(test_redis *r, const char *extra_conf) {
    return test_redis__start(r, extra_conf, 0, 1);
}

/* The same, but the loopback port is a TLS port ("port 0", "tls-port N", bound to 127.0.0.1): extra_conf
   gives tls-cert-file, tls-key-file, tls-ca-cert-file (or tls-ca-cert-dir) and any other tls-* line
   (tls-auth-clients). r->port is the TLS port, r->tls_url "rediss://127.0.0.1:N", r->tcp_url "". The
   unix socket stays plain, so test_redis_connect and the readiness check need no TLS. Needs a
   redis-server built with TLS (Debian's is); one without fails to start, and its log says why. */
TEST_REDIS__FN int test_redis_start_tls(test_redis *r, const char *extra_conf) {
    return test_redis__start(r, extra_conf, 1, 0);
}

/* SIGTERM by pid, wait up to 5 s, then SIGKILL; removes the dir. */
TEST_REDIS__FN void test_redis_stop(test_redis *r) {
    struct test_redis__slot *slot = test_redis__slot_find(r->dir);
    if (r->pid > 0) {
        long long deadline = test_redis__now_ms() + TEST_REDIS__STOP_MS;
        int st;
        pid_t w = 0;
        kill(r->pid, SIGTERM);
        while ((w = waitpid(r->pid, &st, WNOHANG)) == 0 && test_redis__now_ms() < deadline) test_redis__sleep_ms(5);
        if (w == 0) {
            fprintf(stderr, "test_redis_stop: pid %ld ignored SIGTERM for %d ms: SIGKILL\n", (long)r->pid,
                    TEST_REDIS__STOP_MS);
            test_redis__kill_pid(r->pid);
        }
        r->pid = 0;
    }
    if (slot) {                          /* only a dir this process made and has not removed yet */
        test_redis__rmtree(slot->dir);
        slot->pid = 0;
        slot->dir[0] = '\0';
    }
}

/* SIGKILL by pid and reap; the dir stays for test_redis_restart. */
TEST_REDIS__FN void test_redis_kill(test_redis *r) {
    struct test_redis__slot *slot = test_redis__slot_find(r->dir);
    test_redis__kill_pid(r->pid);
    r->pid = 0;
    if (slot) slot->pid = 0;
}

/* Starts the server again in the same dir, on the same port and socket, with the same config. */
TEST_REDIS__FN int test_redis_restart(test_redis *r) {
    struct test_redis__slot *slot = test_redis__slot_find(r->dir);
    char bin[512];
    int bind_failed;
    if (!slot) {
        fprintf(stderr, "test_redis_restart: %s is not a server dir of this process (stopped already?)\n", r->dir);
        return -1;
    }
    if (r->pid > 0) test_redis_kill(r);
    if (test_redis__find_server(bin, sizeof bin, r->sentinel) != 0) return -1;
    if (test_redis__launch(r, bin, &bind_failed) != 0) {
        if (bind_failed) {
            fprintf(stderr, "test_redis_restart: port %d is taken now\n", r->port);
            test_redis__print_log(r);
        }
        return -1;
    }
    slot->pid = r->pid;
    return 0;
}

/* A plain hiredis connection over the unix socket, authenticated with extra_conf's requirepass if any;
   NULL (and a message) on failure. Commands time out after 10 s. Free it with redisFree. */
TEST_REDIS__FN redisContext *test_redis_connect(const test_redis *r) {
    return test_redis__connect(r, 2000, 0);
}

#endif /* RSBUS_TEST_REDIS_SERVER_H */
