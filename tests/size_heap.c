/* size_heap.c - what `make size` reports as the heap of a publish-only gateway bus: every byte rsbus
   holds, counted through its allocator hook (rsbus_config.allocator), after rsbus_open and after
   10,000 publishes, and the peak; against a real redis-server it starts itself (tests/redis_server.h).
   Built like the gateway of size_prog.c (a spool on, the other parts switched off). hiredis's own
   allocations (its context and reader buffer) are not counted: hiredis 0.14 has no hook.
   Prints one "heap: ..." line per figure; exits 1 if anything failed. */
#define _POSIX_C_SOURCE 200809L
#define RSBUS_IMPLEMENTATION
#include "../rsbus.h"
#include "redis_server.h"

#include <stdlib.h>

static size_t held, peak, allocs;

static void *count_alloc(void *user, size_t size) {
    void *p = malloc(size);
    (void)user;
    if (p) { held += size; allocs++; if (held > peak) peak = held; }
    return p;
}
static void *count_realloc(void *user, void *ptr, size_t old_size, size_t new_size) {
    void *p = realloc(ptr, new_size);
    (void)user;
    if (p) { held = held - old_size + new_size; allocs++; if (held > peak) peak = held; }
    return p;
}
static void count_free(void *user, void *ptr, size_t size) {
    (void)user;
    if (ptr) held -= size;
    free(ptr);
}

int main(int argc, char **argv) {
    test_redis srv;
    rsbus_config cfg;
    rsbus_error err;
    rsbus_event ev;
    rsbus *bus;
    char spool[512], data[64];
    int i, n = argc > 1 ? atoi(argv[1]) : 10000, bad = 0;
    size_t after_open;
    if (n < 1 || n > 10000000) n = 10000;
    if (test_redis_start(&srv, NULL) != 0) { fprintf(stderr, "size_heap: cannot start redis-server\n"); return 1; }
    snprintf(spool, sizeof spool, "%s/heap.spool", srv.dir);
    memset(&cfg, 0, sizeof cfg);
    cfg.url = srv.unix_url;
    cfg.stream = "heap";
    cfg.publish_only = 1;
    cfg.spool_path = spool;
    cfg.allocator.alloc_fn = count_alloc;
    cfg.allocator.realloc_fn = count_realloc;
    cfg.allocator.free_fn = count_free;
    bus = rsbus_open(&cfg, &err);
    if (!bus) { fprintf(stderr, "size_heap: rsbus_open: %s: %s\n", rsbus_result_str(err.code), err.msg); bad = 1; goto out; }
    after_open = held;
    printf("heap: after rsbus_open: %lu bytes (%lu allocations)\n", (unsigned long)after_open, (unsigned long)allocs);
    memset(&ev, 0, sizeof ev);
    ev.type = "reading";
    for (i = 0; i < n && !bad; i++) {
        snprintf(data, sizeof data, "{\"sensor\":%d,\"t\":%d.%d}", i % 16, 20 + i % 7, i % 10);
        ev.data = data;
        if (rsbus_publish(bus, &ev, NULL) != RSBUS_OK) {
            fprintf(stderr, "size_heap: rsbus_publish: %s\n", rsbus_errmsg(bus));
            bad = 1;
        }
    }
    printf("heap: after %d publishes: %lu bytes held, peak %lu bytes (%lu allocations in all)\n", n,
           (unsigned long)held, (unsigned long)peak, (unsigned long)allocs);
    rsbus_close(bus);
    if (held != 0) { fprintf(stderr, "size_heap: %lu bytes still held after rsbus_close\n", (unsigned long)held); bad = 1; }
out:
    test_redis_stop(&srv);
    return bad;
}
