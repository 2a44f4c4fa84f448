/* compile_c99.c - rsbus.h with its implementation, compiled as C: make test builds and links it with
   gcc and clang, -std=c99 and -std=c11, with and without -DRSBUS_STATIC, under every warning the
   Makefile uses and -Werror. Not run by make test; run by hand as `compile_c99 URL` it publishes and
   consumes one event. */
#define _POSIX_C_SOURCE 200809L
#define RSBUS_IMPLEMENTATION
#include "rsbus.h"
#include "rsbus.h"                              /* a second include is harmless */

#include <stdio.h>
#include <string.h>

static rsbus_verdict on_event(const rsbus_msg *msg, void *user) {
    int *seen = (int *)user;
    rsbus_jval v;
    char name[64];
    if (rsbus_json_get(msg->data, msg->data_len, "name", &v) == RSBUS_OK &&
        rsbus_jval_str(&v, name, sizeof name, NULL) == RSBUS_OK)
        printf("got %s %s: name=%s\n", msg->type, msg->stream_id, name);
    (*seen)++;
    return RSBUS_ACK;
}

int main(int argc, char **argv) {
    char buf[256], stream_id[RSBUS_ID_SIZE];
    const char *json;
    size_t len = 0, off = 0;
    rsbus_jw w;
    rsbus_error err;
    rsbus *bus;
    rsbus_result rc;
    int seen = 0;

    rsbus_jw_init(&w, buf, sizeof buf);
    rsbus_jw_obj(&w);
    rsbus_jw_key(&w, "name");
    rsbus_jw_str(&w, "rsbus");
    rsbus_jw_key(&w, "n");
    rsbus_jw_int(&w, 42);
    rsbus_jw_obj_end(&w);
    json = rsbus_jw_result(&w, &len);
    if (!json || rsbus_json_validate(json, len, &off) != RSBUS_OK) {
        fprintf(stderr, "json: %s at %u\n", rsbus_result_str(RSBUS_E_JSON), (unsigned)off);
        return 1;
    }
    if (argc < 2) {
        printf("%s %s\n", RSBUS_VERSION_STRING, json);
        return 0;
    }

    bus = rsbus_open(&(rsbus_config){ .url = argv[1], .stream = "rsbus:compile", .group_start = "0" }, &err);
    if (!bus) {
        fprintf(stderr, "rsbus_open: %s: %s\n", rsbus_result_str(err.code), err.msg);
        return 1;
    }
    rc = rsbus_subscribe(bus, "*", on_event, &seen) > 0 ? RSBUS_OK : RSBUS_E_ARG;
    if (rc == RSBUS_OK)
        rc = rsbus_publish(bus, &(rsbus_event){ .type = "compile.check", .data = json }, stream_id);
    if (rc == RSBUS_OK && rsbus_poll(bus, 1000) < 0) rc = RSBUS_E_IO;
    if (rc != RSBUS_OK) fprintf(stderr, "%s: %s\n", rsbus_result_str(rc), rsbus_errmsg(bus));
    rsbus_close(bus);
    return rc == RSBUS_OK && seen > 0 ? 0 : 1;
}
