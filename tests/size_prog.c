/* size_prog.c - the programs `make size` measures (tests/size.sh): what a publish-only gateway and a
   worker call, nothing more, so that a build with -ffunction-sections -fdata-sections -Wl,--gc-sections
   keeps only the code they reach. -DSIZE_GATEWAY: open a publish-only bus with a spool, publish, flush
   the spool, close. -DSIZE_WORKER: open, subscribe, rsbus_run until SIGTERM, close. Not run by the
   tests; run by hand they work against RSBUS_URL. */
#define _POSIX_C_SOURCE 200809L
#define RSBUS_IMPLEMENTATION
#include "../rsbus.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

#if defined(SIZE_GATEWAY) == defined(SIZE_WORKER)
#  error "define one of SIZE_GATEWAY, SIZE_WORKER"
#endif

static int fail(const char *what, rsbus_result r, const char *msg) {
    fprintf(stderr, "size_prog: %s: %s: %s\n", what, rsbus_result_str(r), msg);
    return 1;
}

#ifdef SIZE_GATEWAY
int main(int argc, char **argv) {
    rsbus_config cfg;
    rsbus_error err;
    rsbus_event ev;
    rsbus *bus;
    rsbus_result r;
    size_t sent = 0;
    memset(&cfg, 0, sizeof cfg);
    if (rsbus_config_from_env(&cfg, NULL, &err) != RSBUS_OK) return fail("configuration", err.code, err.msg);
    cfg.publish_only = 1;
    cfg.spool_path = argc > 1 ? argv[1] : "size_prog.spool";
    if (!(bus = rsbus_open(&cfg, &err))) return fail("rsbus_open", err.code, err.msg);
    memset(&ev, 0, sizeof ev);
    ev.type = "reading";
    ev.data = argc > 2 ? argv[2] : "{\"t\":21.5}";
    r = rsbus_publish(bus, &ev, NULL);
    if (r < 0) fail("rsbus_publish", r, rsbus_errmsg(bus));
    else if ((r = rsbus_spool_flush(bus, &sent)) != RSBUS_OK) fail("rsbus_spool_flush", r, rsbus_errmsg(bus));
    rsbus_close(bus);
    return r < 0;
}
#else
static volatile sig_atomic_t stop;
static void on_term(int sig) { (void)sig; stop = 1; }
static rsbus_verdict on_event(const rsbus_msg *m, void *user) {
    (void)user;
    printf("%s %.*s\n", m->type, (int)m->data_len, m->data);
    return RSBUS_ACK;
}
int main(void) {
    rsbus_config cfg;
    rsbus_error err;
    rsbus *bus;
    rsbus_result r;
    memset(&cfg, 0, sizeof cfg);
    if (rsbus_config_from_env(&cfg, NULL, &err) != RSBUS_OK) return fail("configuration", err.code, err.msg);
    if (!(bus = rsbus_open(&cfg, &err))) return fail("rsbus_open", err.code, err.msg);
    signal(SIGTERM, on_term);
    if (rsbus_subscribe(bus, "*", on_event, NULL) <= 0) return fail("rsbus_subscribe", RSBUS_E_ARG, rsbus_errmsg(bus));
    if ((r = rsbus_run(bus, &stop)) != RSBUS_OK) fail("rsbus_run", r, rsbus_errmsg(bus));
    rsbus_close(bus);
    return r != RSBUS_OK;
}
#endif
