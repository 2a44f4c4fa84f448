/* redis_cluster.h - a private Redis Cluster on loopback ports for a test program (header only, static).

       test_cluster cl;
       REQUIRE(test_cluster_start(&cl, 3, 1) == 0);     3 masters, 1 replica each, every slot served
       ... cl.url ("redis+cluster://127.0.0.1:P1,127.0.0.1:P2"), cl.node[i] (a test_redis each)
       int m = test_cluster_master_of(&cl, slot);        the node index serving a slot (asked of node 0)
       test_cluster_kill(&cl, m);                        SIGKILL; test_cluster_wait_ok(&cl, ms) for a promotion
       test_cluster_stop(&cl);

   Nodes are test_redis servers (redis_server.h: temp dirs, free ports, stopped by pid at exit) with
   "cluster-enabled yes" and a short cluster-node-timeout; the cluster is formed with redis-cli --cluster
   create (redis-cli comes with redis-server). */
#ifndef RSBUS_TEST_REDIS_CLUSTER_H
#define RSBUS_TEST_REDIS_CLUSTER_H

#include "redis_server.h"

#define TEST_CLUSTER_MAX 9

typedef struct test_cluster {
    test_redis node[TEST_CLUSTER_MAX];
    int n, masters;
    int dead[TEST_CLUSTER_MAX];
    char url[512];               /* redis+cluster:// with two seeds */
} test_cluster;

static int test_cluster__run(const char *cmd) {
    int st = system(cmd);
    return st == 0 ? 0 : -1;
}

/* A reply line "name:value" of INFO/CLUSTER INFO, into out; 0 if present. */
static int test_cluster__info(redisContext *c, const char *cmd, const char *name, char *out, size_t size) {
    redisReply *rep = (redisReply *)redisCommand(c, cmd);
    const char *p;
    size_t n = strlen(name);
    int found = -1;
    if (rep && rep->type == REDIS_REPLY_STRING) {
        for (p = rep->str; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
            if (strncmp(p, name, n) == 0 && p[n] == ':') {
                size_t l = strcspn(p + n + 1, "\r\n");
                snprintf(out, size, "%.*s", (int)l, p + n + 1);
                found = 0;
                break;
            }
        }
    }
    if (rep) freeReplyObject(rep);
    return found;
}

/* The index of the live node listening on a port, -1 if none. */
static int test_cluster__by_port(const test_cluster *cl, long port) {
    int i;
    for (i = 0; i < cl->n; i++) if (cl->node[i].port == port) return i;
    return -1;
}

/* The node index of the master serving a slot, asked of a live node; -1 if not known. */
TEST_REDIS__FN int test_cluster_master_of(test_cluster *cl, int slot) {
    int i, found = -1;
    for (i = 0; i < cl->n && found < 0; i++) {
        redisContext *c;
        redisReply *rep;
        size_t k;
        if (cl->dead[i] || !(c = test_redis_connect(&cl->node[i]))) continue;
        rep = (redisReply *)redisCommand(c, "CLUSTER SLOTS");
        for (k = 0; rep && rep->type == REDIS_REPLY_ARRAY && k < rep->elements; k++) {
            redisReply *e = rep->element[k];
            if (e->elements >= 3 && slot >= e->element[0]->integer && slot <= e->element[1]->integer)
                found = test_cluster__by_port(cl, (long)e->element[2]->element[1]->integer);
        }
        if (rep) freeReplyObject(rep);
        redisFree(c);
    }
    return found;
}

/* Whether a live node is a master now. */
TEST_REDIS__FN int test_cluster_is_master(test_cluster *cl, int i) {
    redisContext *c = cl->dead[i] ? NULL : test_redis_connect(&cl->node[i]);
    char v[32];
    int yes;
    if (!c) return 0;
    yes = test_cluster__info(c, "INFO replication", "role", v, sizeof v) == 0 && strcmp(v, "master") == 0;
    redisFree(c);
    return yes;
}

/* How many slots a node serves as a master. */
TEST_REDIS__FN int test_cluster_slots_of(test_cluster *cl, int node) {
    int slot, n = 0;
    redisContext *c = NULL;
    redisReply *rep;
    size_t k;
    for (slot = 0; slot < cl->n && !c; slot++) if (!cl->dead[slot]) c = test_redis_connect(&cl->node[slot]);
    if (!c) return -1;
    rep = (redisReply *)redisCommand(c, "CLUSTER SLOTS");
    for (k = 0; rep && rep->type == REDIS_REPLY_ARRAY && k < rep->elements; k++) {
        redisReply *e = rep->element[k];
        if (test_cluster__by_port(cl, (long)e->element[2]->element[1]->integer) == node)
            n += (int)(e->element[1]->integer - e->element[0]->integer + 1);
    }
    if (rep) freeReplyObject(rep);
    redisFree(c);
    return n;
}

/* 0 once every live node says cluster_state:ok, sees every slot served by a live master (the same one
   on every node), and every live replica's link to its master is up; -1 at the deadline. */
TEST_REDIS__FN int test_cluster_wait_ok(test_cluster *cl, long timeout_ms) {
    long long deadline = test_redis__now_ms() + timeout_ms;
    static unsigned short first[16384], seen[16384];   /* each node's view: slot -> master's port */
    for (;;) {
        int i, ok = 1, views = 0;
        for (i = 0; i < cl->n && ok; i++) {
            redisContext *c;
            char v[64];
            if (cl->dead[i]) continue;
            if (!(c = test_redis_connect(&cl->node[i]))) { ok = 0; break; }
            if (test_cluster__info(c, "CLUSTER INFO", "cluster_state", v, sizeof v) != 0 || strcmp(v, "ok") != 0)
                ok = 0;
            if (ok && test_cluster__info(c, "INFO replication", "role", v, sizeof v) == 0 && strcmp(v, "slave") == 0 &&
                (test_cluster__info(c, "INFO replication", "master_link_status", v, sizeof v) != 0 || strcmp(v, "up") != 0))
                ok = 0;
            if (ok) {
                redisReply *rep = (redisReply *)redisCommand(c, "CLUSTER SLOTS");
                long long covered = 0;
                size_t k;
                memset(seen, 0, sizeof seen);
                for (k = 0; rep && rep->type == REDIS_REPLY_ARRAY && k < rep->elements; k++) {
                    redisReply *e = rep->element[k];
                    int m = test_cluster__by_port(cl, (long)e->element[2]->element[1]->integer);
                    long long sl;
                    if (m < 0 || cl->dead[m]) ok = 0;
                    covered += e->element[1]->integer - e->element[0]->integer + 1;
                    for (sl = e->element[0]->integer; sl <= e->element[1]->integer && sl < 16384; sl++)
                        seen[sl] = (unsigned short)cl->node[m < 0 ? 0 : m].port;
                }
                if (covered != 16384) ok = 0;
                if (views++ == 0) memcpy(first, seen, sizeof first);   /* every node agrees on the map */
                else if (memcmp(first, seen, sizeof first) != 0) ok = 0;
                if (rep) freeReplyObject(rep);
            }
            redisFree(c);
        }
        if (ok) return 0;
        if (test_redis__now_ms() > deadline) return -1;
        test_redis__sleep_ms(50);
    }
}

/* Starts masters * (1 + replicas) nodes (extra: more redis.conf lines, or NULL) and forms the cluster;
   tls_cli: NULL, or the nodes listen on TLS ports only (extra gives the tls-* lines; the cluster bus and
   replication use TLS too) and these are redis-cli's TLS options ("--tls --cacert ca.crt").
   0, or -1 with a message. */
TEST_REDIS__FN int test_cluster__start(test_cluster *cl, int masters, int replicas, const char *extra,
                                       const char *tls_cli) {
    char cmd[2048], conf[1024];
    size_t len;
    int i;
    memset(cl, 0, sizeof *cl);
    cl->masters = masters;
    cl->n = masters * (1 + replicas);
    if (cl->n > TEST_CLUSTER_MAX || masters < 1) return -1;
    snprintf(conf, sizeof conf, "cluster-enabled yes\ncluster-node-timeout 2000\ncluster-require-full-coverage yes\n"
             "cluster-allow-replica-migration no\n%s%.800s", tls_cli ? "tls-cluster yes\ntls-replication yes\n" : "",
             extra ? extra : "");
    for (i = 0; i < cl->n; i++)
        if ((tls_cli ? test_redis_start_tls(&cl->node[i], conf) : test_redis_start(&cl->node[i], conf)) != 0) return -1;
    len = (size_t)snprintf(cmd, sizeof cmd, "timeout 60 redis-cli %.600s --cluster create", tls_cli ? tls_cli : "");
    for (i = 0; i < cl->n; i++) len += (size_t)snprintf(cmd + len, sizeof cmd - len, " 127.0.0.1:%d", cl->node[i].port);
    snprintf(cmd + len, sizeof cmd - len, " --cluster-replicas %d --cluster-yes >/dev/null 2>&1", replicas);
    if (test_cluster__run(cmd) != 0) { fprintf(stderr, "test_cluster: %s failed\n", cmd); return -1; }
    if (test_cluster_wait_ok(cl, 30000) != 0) { fprintf(stderr, "test_cluster: not ok within 30 s\n"); return -1; }
    snprintf(cl->url, sizeof cl->url, "redis+cluster://127.0.0.1:%d,127.0.0.1:%d", cl->node[0].port,
             cl->node[cl->n > 1 ? 1 : 0].port);
    return 0;
}

TEST_REDIS__FN int test_cluster_start_conf(test_cluster *cl, int masters, int replicas, const char *extra) {
    return test_cluster__start(cl, masters, replicas, extra, NULL);
}
TEST_REDIS__FN int test_cluster_start(test_cluster *cl, int masters, int replicas) {
    return test_cluster__start(cl, masters, replicas, NULL, NULL);
}

/* SIGKILL of one node. */
TEST_REDIS__FN void test_cluster_kill(test_cluster *cl, int i) {
    test_redis_kill(&cl->node[i]);
    cl->dead[i] = 1;
}

/* Moves count slots from one master to another with redis-cli --cluster reshard (keys move with them). */
TEST_REDIS__FN int test_cluster_reshard(test_cluster *cl, int from, int to, int count) {
    char cmd[1024], idf[64], idt[64];
    redisContext *c;
    redisReply *rep;
    int k;
    for (k = 0; k < 2; k++) {
        if (!(c = test_redis_connect(&cl->node[k ? to : from]))) return -1;
        rep = (redisReply *)redisCommand(c, "CLUSTER MYID");
        if (!rep || rep->type != REDIS_REPLY_STRING) { if (rep) freeReplyObject(rep); redisFree(c); return -1; }
        snprintf(k ? idt : idf, sizeof idf, "%s", rep->str);
        freeReplyObject(rep);
        redisFree(c);
    }
    snprintf(cmd, sizeof cmd, "redis-cli --cluster reshard 127.0.0.1:%d --cluster-from %s --cluster-to %s "
             "--cluster-slots %d --cluster-yes >%s/reshard.out 2>&1 || { tail -n 15 %s/reshard.out >&2; exit 1; }",
             cl->node[from].port, idf, idt, count, cl->node[0].dir, cl->node[0].dir);
    if (test_cluster__run(cmd) != 0) return -1;
    return test_cluster_wait_ok(cl, 30000);   /* every node knows the new map before anything else moves */
}

TEST_REDIS__FN void test_cluster_stop(test_cluster *cl) {
    int i;
    for (i = 0; i < cl->n; i++) test_redis_stop(&cl->node[i]);
}

#endif /* RSBUS_TEST_REDIS_CLUSTER_H */
