/* Demonstrates an embedded gateway: `gateway [DEVICE]` reads readings, one JSON value per line, from
   stdin or from DEVICE (a serial port set up with stty, a FIFO, a file), and publishes each as an event
   of type "reading" (GATEWAY_TYPE overrides it) with the offline spool on: while Redis cannot be
   reached the readings go to the spool file (RSBUS_SPOOL_PATH, default ./gateway.spool) and are sent,
   in order and before anything newer, once Redis is back. A line that is not valid JSON is counted and
   skipped (never printed: it is data). On SIGTERM or SIGINT, or at the end of its input, it stops
   reading, sends what the spool holds if Redis is there (a spool it cannot send stays on disk and the
   next start sends it), says what it did on stderr, closes the bus and exits 0. The connection and
   stream come from the environment: RSBUS_URL (default redis://127.0.0.1:6379), RSBUS_STREAM, ...
   Build it small with -DRSBUS_NO_SCHEMA -DRSBUS_NO_DEDUPE -DRSBUS_NO_ADMIN -DRSBUS_NO_CLUSTER
   -DRSBUS_NO_MEM -Os -ffunction-sections -fdata-sections -Wl,--gc-sections (see make size). */
#define _POSIX_C_SOURCE 200809L
#define RSBUS_IMPLEMENTATION
#include "../rsbus.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LINE_MAX_BYTES 65536   /* a longer line is skipped whole */

static volatile sig_atomic_t stop;
static void on_signal(int sig) { (void)sig; stop = 1; }

static int fail(const char *what, rsbus_result r, const char *msg) {
    fprintf(stderr, "gateway: %s: %s: %s\n", what, rsbus_result_str(r), msg);
    return 1;
}

typedef struct counts { unsigned long lines, published, spooled, refused, too_long; } counts;

/* Publishes one line (without its newline); returns 0, or 1 when the gateway cannot go on. */
static int publish_line(rsbus *bus, const char *type, const char *line, size_t n, counts *k) {
    rsbus_event ev;
    rsbus_result r;
    while (n && (line[n - 1] == '\r' || line[n - 1] == ' ' || line[n - 1] == '\t')) n--;
    if (n == 0) return 0;                      /* blank lines are not readings */
    k->lines++;
    memset(&ev, 0, sizeof ev);
    ev.type = type;
    ev.data = line;
    ev.data_len = n;
    r = rsbus_publish(bus, &ev, NULL);
    if (r == RSBUS_OK) { k->published++; return 0; }
    if (r == RSBUS_SPOOLED) {
        if (k->spooled++ == 0 || k->spooled % 1000 == 0)
            fprintf(stderr, "gateway: Redis cannot be reached: %lu reading%s spooled so far\n", k->spooled,
                    k->spooled == 1 ? "" : "s");
        return 0;
    }
    if (r == RSBUS_E_ARG) {                    /* not valid JSON, too large: this reading only */
        k->refused++;
        fprintf(stderr, "gateway: line %lu refused: %s\n", k->lines, rsbus_errmsg(bus));
        return 0;
    }
    /* anything else (the spool is full, cannot be written): say so, and stop */
    fail("rsbus_publish", r, rsbus_errmsg(bus));
    return 1;
}

int main(int argc, char **argv) {
    rsbus_config cfg;
    rsbus_error err;
    rsbus *bus;
    counts k;
    struct sigaction sa;
    const char *type = getenv("GATEWAY_TYPE");
    char *buf;
    size_t len = 0, events = 0, bytes = 0, sent = 0;
    int fd = 0, skipping = 0, status = 0, eof = 0;
    rsbus_result r;

    if (argc > 2 || (argc == 2 && argv[1][0] == '-' && argv[1][1])) {
        fprintf(stderr, "usage: gateway [DEVICE]   (JSON lines; RSBUS_URL, RSBUS_SPOOL_PATH, ... from the environment)\n");
        return 1;
    }
    if (!type || !*type) type = "reading";
    memset(&k, 0, sizeof k);
    memset(&cfg, 0, sizeof cfg);
    if (rsbus_config_from_env(&cfg, NULL, &err) != RSBUS_OK) return fail("configuration", err.code, err.msg);
    cfg.publish_only = 1;
    if (!cfg.spool_path) cfg.spool_path = "gateway.spool";
    if (argc == 2 && strcmp(argv[1], "-") != 0) {
        fd = open(argv[1], O_RDONLY | O_NOCTTY);
        if (fd < 0) { fprintf(stderr, "gateway: %s: %s\n", argv[1], strerror(errno)); return 1; }
    }
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;          /* no SA_RESTART: a signal ends a blocked read or poll */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    bus = rsbus_open(&cfg, &err);       /* with a spool it opens even while Redis is down */
    if (!bus) return fail("rsbus_open", err.code, err.msg);
    if (rsbus_spool_pending(bus, &events, NULL) == RSBUS_OK && events)
        fprintf(stderr, "gateway: %s holds %lu readings from before; they go first\n", cfg.spool_path,
                (unsigned long)events);
    buf = (char *)malloc(LINE_MAX_BYTES + 1);
    if (!buf) { rsbus_close(bus); fprintf(stderr, "gateway: out of memory\n"); return 1; }

    while (!stop && !eof && status == 0) {
        struct pollfd pfd;
        ssize_t got;
        size_t i, start;
        int ready;
        pfd.fd = fd;
        pfd.events = POLLIN;
        pfd.revents = 0;
        ready = poll(&pfd, 1, 1000);
        if (ready < 0) {
            if (errno == EINTR) continue;          /* a signal: the loop looks at stop */
            fprintf(stderr, "gateway: poll: %s\n", strerror(errno));
            status = 1;
            break;
        }
        /* idle for a second with readings in the spool: try to send them (Redis may be back) */
        if (ready == 0) {
            if (rsbus_spool_pending(bus, &events, NULL) == RSBUS_OK && events &&
                rsbus_spool_flush(bus, &sent) == RSBUS_OK)
                fprintf(stderr, "gateway: Redis is back: sent %lu spooled readings\n", (unsigned long)sent);
            continue;
        }
        got = read(fd, buf + len, LINE_MAX_BYTES - len);
        if (got < 0) {
            if (errno == EINTR || errno == EAGAIN) continue;
            fprintf(stderr, "gateway: read: %s\n", strerror(errno));
            status = 1;
            break;
        }
        if (got == 0) { eof = 1; buf[len++] = '\n'; }   /* the last line may lack its newline */
        else len += (size_t)got;
        for (i = 0, start = 0; i < len && status == 0; i++) {
            if (buf[i] != '\n') continue;
            if (!skipping) status = publish_line(bus, type, buf + start, i - start, &k);
            skipping = 0;
            start = i + 1;
        }
        memmove(buf, buf + start, len - start);
        len -= start;
        if (len == LINE_MAX_BYTES) {               /* no newline in 64 KiB: drop it up to the next one */
            if (!skipping) { k.too_long++; fprintf(stderr, "gateway: a line over %d bytes skipped\n", LINE_MAX_BYTES); }
            skipping = 1;
            len = 0;
        }
    }
    free(buf);
    if (fd != 0) close(fd);

    /* stopping: send what the spool holds if Redis is there; what cannot be sent stays in the file */
    sent = 0;
    r = rsbus_spool_flush(bus, &sent);
    if (r != RSBUS_OK) fprintf(stderr, "gateway: the spool stays on disk for the next start: %s\n", rsbus_errmsg(bus));
    (void)rsbus_spool_pending(bus, &events, &bytes);
    fprintf(stderr, "gateway: %s: %lu readings, %lu published at once, %lu spooled, %lu refused, %lu too long; "
            "%lu still in %s\n", stop ? "stopped by a signal" : eof ? "end of input" : "stopped by an error",
            k.lines, k.published, k.spooled, k.refused, k.too_long, (unsigned long)events, cfg.spool_path);
    rsbus_close(bus);
    return status;
}
