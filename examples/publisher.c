/* Demonstrates publishing: `publisher TYPE [COUNT] [JSON]` publishes COUNT events (default 1) of type TYPE
   and prints the stream id of each. Without JSON, each payload is built with the JSON writer, such as
   {"seq":1,"of":3,"sent_by":"publisher","pid":4242}. The connection and stream come from the environment:
   RSBUS_URL (default redis://127.0.0.1:6379), RSBUS_STREAM (default rsbus:events), ... */
#define _POSIX_C_SOURCE 200809L
#define RSBUS_IMPLEMENTATION
#include "../rsbus.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int usage(void) {
    fprintf(stderr, "usage: publisher TYPE [COUNT] [JSON]   (RSBUS_URL, RSBUS_STREAM, ... from the environment)\n");
    return 1;
}

/* Says whether a failure means that Redis could not be reached, or something else. */
static int fail(const char *what, rsbus_result r, const char *msg) {
    if (r == RSBUS_E_IO || r == RSBUS_E_TIMEOUT)
        fprintf(stderr, "publisher: cannot reach Redis: %s: %s: %s\n", what, rsbus_result_str(r), msg);
    else
        fprintf(stderr, "publisher: %s: %s: %s\n", what, rsbus_result_str(r), msg);
    return 1;
}

int main(int argc, char **argv) {
    rsbus_config cfg;
    rsbus_error err;
    rsbus *bus;
    rsbus_event ev;
    rsbus_result r = RSBUS_OK;
    char stream_id[RSBUS_ID_SIZE], buf[256], *end = NULL;
    long count = 1, i;

    if (argc < 2 || argc > 4) return usage();
    if (argc > 2) {
        count = strtol(argv[2], &end, 10);
        if (*end || count < 1 || count > 1000000) return usage();
    }
    memset(&cfg, 0, sizeof cfg);
    if (rsbus_config_from_env(&cfg, NULL, &err) != RSBUS_OK) return fail("configuration", err.code, err.msg);
    cfg.publish_only = 1;           /* no consumer group is created */
    bus = rsbus_open(&cfg, &err);
    if (!bus) return fail("rsbus_open", err.code, err.msg);

    for (i = 0; i < count && r == RSBUS_OK; i++) {
        memset(&ev, 0, sizeof ev);  /* NULL id: a random event id; ts 0: now */
        ev.type = argv[1];
        if (argc > 3) {
            ev.data = argv[3];      /* validated by rsbus_publish: invalid JSON is RSBUS_E_ARG */
        } else {
            rsbus_jw w;
            rsbus_jw_init(&w, buf, sizeof buf);
            rsbus_jw_obj(&w);
            rsbus_jw_key(&w, "seq");     rsbus_jw_int(&w, i + 1);
            rsbus_jw_key(&w, "of");      rsbus_jw_int(&w, count);
            rsbus_jw_key(&w, "sent_by"); rsbus_jw_str(&w, "publisher");
            rsbus_jw_key(&w, "pid");     rsbus_jw_int(&w, (int64_t)getpid());
            rsbus_jw_obj_end(&w);
            ev.data = rsbus_jw_result(&w, NULL);   /* NULL if it did not fit */
            if (!ev.data) {
                fprintf(stderr, "publisher: the JSON writer failed\n");
                r = RSBUS_E_ARG;
                break;
            }
        }
        r = rsbus_publish(bus, &ev, stream_id);
        if (r == RSBUS_OK) printf("%s\n", stream_id);
        else (void)fail("rsbus_publish", r, rsbus_errmsg(bus));
    }
    if (r == RSBUS_OK)
        fprintf(stderr, "publisher: published %ld %s event%s to %s\n", count, argv[1], count == 1 ? "" : "s",
                cfg.stream ? cfg.stream : "rsbus:events");
    rsbus_close(bus);
    return r == RSBUS_OK ? 0 : 1;
}
