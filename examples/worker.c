/* Demonstrates a long-running consumer: `worker [PATTERN] [FIELD]` handles the events whose type matches
   PATTERN (default "*": all; "order.*": every type that starts with "order."), printing each with the
   payload field FIELD (default "seq"), until SIGINT or SIGTERM; then it prints its stats and exits 0.
   rsbus_run reads, retries failed entries, takes over ones a dead consumer left, and reconnects
   when Redis goes away. Connection, stream, group and consumer name come from the environment:
   RSBUS_URL, RSBUS_STREAM, RSBUS_GROUP, RSBUS_CONSUMER, ... A new group starts with the events
   published after it was created (RSBUS_GROUP_START=0: from the start of the stream). */
#define _POSIX_C_SOURCE 200809L
#define RSBUS_IMPLEMENTATION
#include "../rsbus.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

typedef struct context {      /* what the handler gets as its user pointer */
    const char *field;
} context;

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig) {
    (void)sig;
    stop_requested = 1;   /* rsbus_run notices it within 100 ms */
}

static void log_stderr(void *user, rsbus_log_level level, const char *msg) {
    static const char *const names[] = { "", "error", "warn", "info", "debug" };
    (void)user;
    fprintf(stderr, "worker: %s: %s\n", names[level], msg);
}

/* Prints the event and one field of its payload; acknowledges it. */
static rsbus_verdict handle(const rsbus_msg *m, void *user) {
    const char *field = ((const context *)user)->field;
    char text[128];
    rsbus_jval v;
    double num;
    rsbus_result r = rsbus_json_get(m->data, m->data_len, field, &v);
    if (r == RSBUS_OK && v.type == RSBUS_JSTRING) r = rsbus_jval_str(&v, text, sizeof text, NULL);
    else if (r == RSBUS_OK && v.type == RSBUS_JNUMBER && (r = rsbus_jval_num(&v, &num)) == RSBUS_OK)
        snprintf(text, sizeof text, "%.15g", num);
    else if (r == RSBUS_OK)   /* any other value: its JSON text */
        snprintf(text, sizeof text, "%.*s", v.len < 100 ? (int)v.len : 100, v.ptr);
    if (r != RSBUS_OK) snprintf(text, sizeof text, "(%s)", r == RSBUS_E_NOTFOUND ? "absent" : rsbus_result_str(r));
    printf("%s  %s  id %s  delivery %lld  %s=%s\n", m->stream_id, m->type, m->id ? m->id : "(none)",
           (long long)m->deliveries, field, text);
    fflush(stdout);
    return RSBUS_ACK;
}

int main(int argc, char **argv) {
    const char *pattern = argc > 1 ? argv[1] : "*";
    context ctx;
    struct sigaction sa;
    rsbus_config cfg;
    rsbus_error err;
    rsbus_stats s;
    rsbus *bus;
    int token;
    rsbus_result r;

    memset(&cfg, 0, sizeof cfg);
    if (rsbus_config_from_env(&cfg, NULL, &err) != RSBUS_OK) {
        fprintf(stderr, "worker: configuration: %s: %s\n", rsbus_result_str(err.code), err.msg);
        return 1;
    }
    cfg.log = log_stderr;
    if (cfg.log_level == RSBUS_LOG_DEFAULT) cfg.log_level = RSBUS_LOG_INFO;   /* unless RSBUS_LOG_LEVEL says */

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGINT, &sa, NULL) != 0 || sigaction(SIGTERM, &sa, NULL) != 0) {
        perror("worker: sigaction");
        return 1;
    }

    bus = rsbus_open(&cfg, &err);   /* Redis must be reachable now; later, rsbus_run rides out outages */
    if (!bus) {
        fprintf(stderr, "worker: rsbus_open: %s: %s\n", rsbus_result_str(err.code), err.msg);
        return 1;
    }
    ctx.field = argc > 2 ? argv[2] : "seq";
    token = rsbus_subscribe(bus, pattern, handle, &ctx);
    if (token < 0) {
        fprintf(stderr, "worker: rsbus_subscribe: %s: %s\n", rsbus_result_str((rsbus_result)token), rsbus_errmsg(bus));
        rsbus_close(bus);
        return 1;
    }
    fprintf(stderr, "worker: handling \"%s\" events of stream %s, group %s; SIGINT or SIGTERM stops\n", pattern,
            cfg.stream ? cfg.stream : "rsbus:events", cfg.group ? cfg.group : "default");
    r = rsbus_run(bus, &stop_requested);
    rsbus_stats_get(bus, &s);
    fprintf(stderr, "worker: stopped: %llu delivered, %llu acked, %llu retried, %llu dead-lettered, %llu unhandled, "
            "%llu claimed, %llu reconnects\n", (unsigned long long)s.delivered, (unsigned long long)s.acked,
            (unsigned long long)s.retried, (unsigned long long)s.dead_lettered, (unsigned long long)s.unhandled,
            (unsigned long long)s.claimed, (unsigned long long)s.reconnects);
    rsbus_close(bus);
    return r == RSBUS_OK ? 0 : 1;
}
