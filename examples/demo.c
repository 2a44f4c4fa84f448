/* Demonstrates rsbus from end to end in one process: publishing (a batch and single events), two
   workers sharing the consumer group "billing", a second group "audit" that gets every event, retries
   with backoff, a poison event that ends in the dead-letter stream and is replayed after a fix, lag,
   health and stats. `make demo` runs it against a throwaway redis-server (RSBUS_URL points at it);
   against your own Redis it leaves a small stream "demo:orders:<time>-<pid>" behind. */
#define _POSIX_C_SOURCE 200809L
#define RSBUS_IMPLEMENTATION
#include "../rsbus.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct worker {          /* the user pointer a handler gets */
    const char *name;
    int handled;                 /* events it acknowledged */
} worker;

static int doge_supported;       /* set in step 5: the "fix" of the billing handler */

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms) {
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    nanosleep(&ts, NULL);
}

/* Any failure ends the demo. r: an rsbus_result, or what rsbus_poll/rsbus_subscribe return. */
static void check(int r, rsbus *bus, const char *what) {
    if (r >= 0) return;
    fprintf(stderr, "demo: %s: %s: %s\n", what, rsbus_result_str((rsbus_result)r), bus ? rsbus_errmsg(bus) : "");
    exit(1);
}

static void give_up(const char *why) {
    fprintf(stderr, "demo: %s\n", why);
    exit(1);
}

/* The "order" number of a payload such as {"order":1001,...}; -1 if it has none. */
static long long order_of(const rsbus_msg *m) {
    rsbus_jval v;
    int64_t n;
    if (rsbus_json_get(m->data, m->data_len, "order", &v) != RSBUS_OK || rsbus_jval_int(&v, &n) != RSBUS_OK)
        return -1;
    return (long long)n;
}

/* Billing charges each order. A payment fails twice (the gateway times out) before it goes through;
   an order in DOGE fails every time until doge_supported is set. */
static rsbus_verdict billing(const rsbus_msg *m, void *user) {
    worker *w = user;
    rsbus_jval v;
    char currency[16] = "";
    const char *fail = NULL;
    if (rsbus_json_get(m->data, m->data_len, "currency", &v) == RSBUS_OK &&
        rsbus_jval_str(&v, currency, sizeof currency, NULL) != RSBUS_OK)
        currency[0] = 0;
    if (strcmp(m->type, "order.paid") == 0 && m->deliveries < 3) fail = "payment gateway timed out";
    else if (strcmp(currency, "DOGE") == 0 && !doge_supported) fail = "unsupported currency DOGE";
    printf("   %s  %-13s order %lld  delivery %lld  %s%s%s\n", w->name, m->type, order_of(m),
           (long long)m->deliveries, fail ? "failed: " : "ok", fail ? fail : "", m->replay_of ? " (a replay)" : "");
    if (fail) {
        snprintf(m->reason, RSBUS_REASON_SIZE, "%s", fail);   /* becomes dlq_error if it ends there */
        return RSBUS_RETRY;
    }
    w->handled++;
    return RSBUS_ACK;
}

static rsbus_verdict audit(const rsbus_msg *m, void *user) {
    (void)m;
    ((worker *)user)->handled++;
    return RSBUS_ACK;
}

/* group NULL: a publish-only bus. */
static rsbus *open_bus(rsbus_config cfg, const char *group, const char *consumer, int batch_size) {
    rsbus_error err;
    rsbus *bus;
    cfg.group = group;
    cfg.consumer = consumer;
    cfg.batch_size = batch_size;
    cfg.publish_only = group == NULL;
    bus = rsbus_open(&cfg, &err);
    if (!bus) {
        fprintf(stderr, "demo: rsbus_open: %s: %s\n", rsbus_result_str(err.code), err.msg);
        exit(1);
    }
    return bus;
}

/* Polls the buses in turn, without blocking, until none of them gets anything. */
static void drain(rsbus *const *bus, size_t n) {
    int64_t deadline = now_ms() + 5000;
    int got = 1;
    size_t i;
    while (got) {
        for (got = 0, i = 0; i < n; i++) {
            int r = rsbus_poll(bus[i], -1);
            check(r, bus[i], "rsbus_poll");
            got += r;
        }
        if (now_ms() > deadline) give_up("the workers are still busy after 5 s");
    }
}

static void show_groups(rsbus *bus) {
    rsbus_stream_info si;
    rsbus_group_info g[4];
    size_t n, i;
    check(rsbus_stream_info_get(bus, &si), bus, "rsbus_stream_info_get");
    check(rsbus_groups_list(bus, g, 4, &n), bus, "rsbus_groups_list");
    printf("   stream: %lld entries; dead letters: %lld", (long long)si.length, (long long)si.dlq_length);
    for (i = 0; i < n; i++)
        printf("; %s: lag %lld, pending %lld", g[i].name, (long long)g[i].lag, (long long)g[i].pending);
    printf("\n");
}

static void show_health(rsbus *bus) {
    static const char *const names[] = { "HEALTHY", "DEGRADED", "UNHEALTHY" };
    char why[256];
    rsbus_health h = rsbus_health_check(bus, 100, why, sizeof why);
    printf("   health (billing): %s, %s\n", names[h], why);
}

static void show_stats(rsbus *bus, const char *name) {
    rsbus_stats s;
    rsbus_stats_get(bus, &s);
    printf("   %-10s %9llu %9llu %5llu %7llu %12llu %8llu %8llu\n", name, (unsigned long long)s.published,
           (unsigned long long)s.delivered, (unsigned long long)s.acked, (unsigned long long)s.retried,
           (unsigned long long)s.dead_lettered, (unsigned long long)s.claimed, (unsigned long long)s.replayed);
}

int main(void) {
    static const char *const customers[5] = { "ada", "bob", "cy", "dee", "eve" };
    rsbus_config cfg;
    rsbus_error err;
    rsbus *ops, *w[2], *aud, *all[3];
    worker billing_w[2] = { { "worker-1", 0 }, { "worker-2", 0 } }, audit_w = { "audit", 0 };
    rsbus_event evs[5], ev;
    char stream[64], data[7][96], ids[5][RSBUS_ID_SIZE], id[RSBUS_ID_SIZE], dlq_id[RSBUS_ID_SIZE];
    rsbus_group_info g;
    rsbus_dlq_page page;
    int64_t deadline;
    int audit_before;
    size_t i;

    /* Connection from RSBUS_URL (and the other RSBUS_* variables); what the story needs is set here. */
    memset(&cfg, 0, sizeof cfg);
    if (rsbus_config_from_env(&cfg, NULL, &err) != RSBUS_OK) {
        fprintf(stderr, "demo: %s: %s\n", rsbus_result_str(err.code), err.msg);
        return 1;
    }
    snprintf(stream, sizeof stream, "demo:orders:%lld-%ld", (long long)time(NULL), (long)getpid());
    cfg.stream = stream;
    cfg.group_start = "0";          /* a new group starts at the beginning of the stream */
    cfg.max_retries = 2;            /* so at most 3 attempts */
    cfg.retry_backoff_ms = 100;     /* retry after 100 ms, then 200 ms, ... */
    cfg.retry_backoff_max_ms = 1000;

    ops = open_bus(cfg, NULL, NULL, 0);                 /* publishes and manages dead letters */
    w[0] = open_bus(cfg, "billing", "worker-1", 2);     /* batch_size 2, so that both get work */
    w[1] = open_bus(cfg, "billing", "worker-2", 2);
    aud = open_bus(cfg, "audit", "auditor", 100);
    all[0] = w[0]; all[1] = w[1]; all[2] = aud;
    for (i = 0; i < 2; i++) check(rsbus_subscribe(w[i], "order.*", billing, &billing_w[i]), w[i], "rsbus_subscribe");
    check(rsbus_subscribe(aud, "*", audit, &audit_w), aud, "rsbus_subscribe");
    printf("rsbus %s demo on stream %s\n", RSBUS_VERSION_STRING, stream);

    printf("\n1. Publish five orders in one round trip (rsbus_publish_batch), then a payment and an order in DOGE\n");
    memset(evs, 0, sizeof evs);
    for (i = 0; i < 5; i++) {
        snprintf(data[i], sizeof data[i], "{\"order\":%d,\"customer\":\"%s\",\"amount\":%d.50,\"currency\":\"EUR\"}",
                 1001 + (int)i, customers[i], 10 + 7 * (int)i);
        evs[i].type = "order.created";
        evs[i].data = data[i];
    }
    check(rsbus_publish_batch(ops, evs, 5, ids), ops, "rsbus_publish_batch");
    for (i = 0; i < 5; i++) printf("   %s  order.created %s\n", ids[i], data[i]);
    memset(&ev, 0, sizeof ev);
    ev.type = "order.paid";
    ev.data = "{\"order\":1001,\"amount\":10.50}";
    check(rsbus_publish(ops, &ev, id), ops, "rsbus_publish");
    printf("   %s  order.paid    %s\n", id, ev.data);
    ev.type = "order.created";
    ev.data = "{\"order\":1006,\"customer\":\"fay\",\"amount\":99,\"currency\":\"DOGE\"}";
    check(rsbus_publish(ops, &ev, id), ops, "rsbus_publish");
    printf("   %s  order.created %s\n", id, ev.data);
    show_groups(ops);

    printf("\n2. Two workers share group \"billing\" (each poll reads up to 2); \"audit\" gets every event\n");
    drain(all, 3);
    check(rsbus_group_info_get(w[0], NULL, &g), w[0], "rsbus_group_info_get");
    printf("   worker-1 handled %d, worker-2 handled %d; %lld failed and are pending; audit saw %d events\n",
           billing_w[0].handled, billing_w[1].handled, (long long)g.pending, audit_w.handled);

    printf("\n3. Retries: rsbus_claim hands a failed entry out again once its backoff is over (rsbus_run does\n"
           "   this by itself); after 1 + max_retries failed attempts it goes to the dead-letter stream\n");
    for (deadline = now_ms() + 5000;; sleep_ms(20)) {
        for (i = 0; i < 2; i++)   /* 60000: other consumers' entries only when idle a minute; ours when due */
            check(rsbus_claim(w[i], 60000, 0, NULL), w[i], "rsbus_claim");
        check(rsbus_group_info_get(w[0], NULL, &g), w[0], "rsbus_group_info_get");
        if (g.pending == 0) break;
        if (now_ms() > deadline) give_up("entries still pending after 5 s of retries");
    }
    show_groups(ops);
    show_health(w[0]);

    printf("\n4. The dead-letter stream (rsbus_dlq_list)\n");
    check(rsbus_dlq_list(ops, NULL, 10, &page), ops, "rsbus_dlq_list");
    if (page.count != 1) give_up("expected exactly one dead letter");
    for (i = 0; i < page.count; i++) {
        const rsbus_dlq_entry *e = &page.entries[i];
        printf("   %s  %s order %lld  failed in group %s after %lld deliveries: \"%s\"\n", e->dlq_id,
               e->msg.type, order_of(&e->msg), e->group, (long long)e->deliveries, e->error);
    }
    memcpy(dlq_id, page.entries[0].dlq_id, sizeof dlq_id);
    rsbus_dlq_page_free(ops, &page);

    printf("\n5. Fix billing (it now takes DOGE) and replay the dead letter (rsbus_dlq_replay)\n");
    doge_supported = 1;
    check(rsbus_dlq_replay(ops, dlq_id, id), ops, "rsbus_dlq_replay");
    printf("   replayed as %s; only the group that failed it handles it again:\n", id);
    audit_before = audit_w.handled;
    drain(all, 3);
    printf("   audit saw %d new events (it had handled this one already)\n", audit_w.handled - audit_before);
    show_groups(ops);
    show_health(w[0]);

    printf("\n6. Stats (rsbus_stats_get)\n");
    printf("   %-10s %9s %9s %5s %7s %12s %8s %8s\n", "bus", "published", "delivered", "acked", "retried",
           "dead-letters", "claimed", "replayed");
    show_stats(ops, "publisher");
    show_stats(w[0], "worker-1");
    show_stats(w[1], "worker-2");
    show_stats(aud, "audit");
    printf("   worker-1 handled %d orders, worker-2 %d\n", billing_w[0].handled, billing_w[1].handled);
    if (billing_w[0].handled + billing_w[1].handled != 7 || audit_w.handled != 7)
        give_up("expected billing and audit to handle 7 events each");

    rsbus_close(aud);
    rsbus_close(w[1]);
    rsbus_close(w[0]);
    rsbus_close(ops);
    return 0;
}
