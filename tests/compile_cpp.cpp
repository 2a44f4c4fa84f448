// compile_cpp.cpp - rsbus.h with its implementation, compiled as C++: make test builds and links it
// with g++ and clang++ -std=c++11 -Wall -Wextra -Werror. Not run by make test; run by hand as
// `compile_cpp URL` it publishes and consumes one event.
#define RSBUS_IMPLEMENTATION
#include "rsbus.h"

#include <cstdio>
#include <cstring>

namespace {

struct counter { int seen; };

rsbus_verdict on_event(const rsbus_msg *msg, void *user) {
    counter *c = static_cast<counter *>(user);
    std::printf("got %s %s\n", msg->type, msg->stream_id);
    c->seen++;
    return RSBUS_ACK;
}

}  // namespace

int main(int argc, char **argv) {
    char buf[256], stream_id[RSBUS_ID_SIZE];
    size_t len = 0, off = 0;
    rsbus_jw w;
    rsbus_jw_init(&w, buf, sizeof buf);
    rsbus_jw_arr(&w);
    rsbus_jw_num(&w, 0.5);
    rsbus_jw_bool(&w, 1);
    rsbus_jw_null(&w);
    rsbus_jw_arr_end(&w);
    const char *json = rsbus_jw_result(&w, &len);
    if (!json || rsbus_json_validate(json, len, &off) != RSBUS_OK) {
        std::fprintf(stderr, "json: %s at %u\n", rsbus_result_str(RSBUS_E_JSON), unsigned(off));
        return 1;
    }
    if (argc < 2) {
        std::printf("%s %s\n", RSBUS_VERSION_STRING, json);
        return 0;
    }

    rsbus_config cfg = rsbus_config();        // zero: every default
    rsbus_error err;
    cfg.url = argv[1];
    cfg.stream = "rsbus:compile";
    cfg.group_start = "0";
    rsbus *bus = rsbus_open(&cfg, &err);
    if (!bus) {
        std::fprintf(stderr, "rsbus_open: %s: %s\n", rsbus_result_str(err.code), err.msg);
        return 1;
    }
    counter c = { 0 };
    rsbus_event ev = rsbus_event();
    ev.type = "compile.check";
    ev.data = "{\"lang\":\"c++\"}";
    rsbus_result rc = rsbus_subscribe(bus, "compile.*", on_event, &c) > 0 ? RSBUS_OK : RSBUS_E_ARG;
    if (rc == RSBUS_OK) rc = rsbus_publish(bus, &ev, stream_id);
    if (rc == RSBUS_OK && rsbus_poll(bus, 1000) < 0) rc = RSBUS_E_IO;
    if (rc != RSBUS_OK) std::fprintf(stderr, "%s: %s\n", rsbus_result_str(rc), rsbus_errmsg(bus));
    rsbus_close(bus);
    return rc == RSBUS_OK && c.seen > 0 ? 0 : 1;
}
