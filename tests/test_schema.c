/* test_schema.c - event schemas (rsbus_schema_register): registration errors, publish refusals naming the
   field by path, batches, versions, replacement, the consume side dead-lettering entries that do not
   match (written with raw XADD, past the publisher's check), and no allocation per event. Against a real
   redis-server; the implementation is included, so the checker is also driven directly on texts that
   end early (no reads past the end under ASan). */
#define _POSIX_C_SOURCE 200809L
#define RSBUS_IMPLEMENTATION
#include "../rsbus.h"
#include "test.h"
#include "redis_server.h"
#include "bus_util.h"

#ifdef RSBUS_NO_SCHEMA
/* Built with -DRSBUS_NO_SCHEMA (make test's switch matrix): rsbus_schema_register answers RSBUS_E_ARG
   naming the switch, and events of any shape are published and consumed as without a schema. */
static rsbus_verdict ack_count(const rsbus_msg *m, void *user) { (void)m; (*(int *)user)++; return RSBUS_ACK; }

TEST(schema_compiled_out) {
    rsbus *bus = open_bus("t:noschema", "g", "c");
    rsbus_event ev;
    int calls = 0;
    REQUIRE(bus != NULL);
    CHECK_EQ_INT(rsbus_schema_register(bus, "order.created", 2, "{\"id\": \"string\"}"), RSBUS_E_ARG);
    CHECK_EQ_STR(rsbus_errmsg(bus), "rsbus_schema_register: compiled out by RSBUS_NO_SCHEMA");
    CHECK_EQ_INT(rsbus_schema_register(NULL, "order.created", 2, "{}"), RSBUS_E_ARG);
    memset(&ev, 0, sizeof ev);
    ev.type = "order.created";
    ev.version = 2;
    ev.data = "{\"id\": 7}";   /* would not match the schema above */
    CHECK_EQ_INT(rsbus_publish(bus, &ev, NULL), RSBUS_OK);
    REQUIRE(rsbus_subscribe(bus, "*", ack_count, &calls) > 0);
    WAIT_UNTIL(rsbus_poll(bus, 20) >= 0 && calls == 1, 5000);
    CHECK_EQ_INT(pending_of("t:noschema", "g"), 0);
    rsbus_close(bus);
}

int main(void) {
    if (test_redis_start(&srv, NULL) != 0) {
        printf("test_schema: 0 passed, 1 failed\n");
        return 1;
    }
    fprintf(stderr, "test_schema: built with RSBUS_NO_SCHEMA: the schema tests are skipped; testing what such a build promises\n");
    RUN(schema_compiled_out);
    raw_reset();
    test_redis_stop(&srv);
    return test_summary("test_schema");
}
#else

/* the schema most tests use: order.created v2 */
static const char *const order_schema =
    "{\"id\": \"string\","
    " \"customer\": {\"id\": \"integer\", \"name?\": \"string\","
    "                \"address\": {\"zip\": \"string\", \"city?\": \"string\"}},"
    " \"items\": [{\"sku\": \"string\", \"qty\": \"integer\", \"price?\": \"number\"}],"
    " \"tags?\": [\"string\"],"
    " \"paid\": \"boolean\","
    " \"meta?\": \"object\", \"extra?\": \"any\", \"notes?\": \"array\","
    " \"matrix?\": [[\"number\"]]}";

#define ORDER_OK "{\"id\":\"o-1\",\"customer\":{\"id\":7,\"address\":{\"zip\":\"75001\"}},\"items\":[],\"paid\":true}"

static rsbus_result pubv(rsbus *bus, const char *type, int version, const char *data) {
    rsbus_event ev;
    memset(&ev, 0, sizeof ev);
    ev.type = type;
    ev.version = version;
    ev.data = data;
    return rsbus_publish(bus, &ev, NULL);
}

/* Publishes data as order.created v2 and checks the result and, when refused, the exact message. */
static void expect_refused(rsbus *bus, const char *data, const char *msg, int line) {
    rsbus_result r = pubv(bus, "order.created", 2, data);
    if (r != RSBUS_E_ARG || strcmp(rsbus_errmsg(bus), msg) != 0) {
        char m[1024];
        snprintf(m, sizeof m, "line %d: %s: got %s \"%s\", expected RSBUS_E_ARG \"%s\"", line, data,
                 rsbus_result_str(r), rsbus_errmsg(bus), msg);
        test__fail(__FILE__, line, m);
    }
}
static void expect_ok(rsbus *bus, const char *data, int line) {
    rsbus_result r = pubv(bus, "order.created", 2, data);
    if (r != RSBUS_OK) {
        char m[1024];
        snprintf(m, sizeof m, "%s: got %s \"%s\", expected RSBUS_OK", data, rsbus_result_str(r), rsbus_errmsg(bus));
        test__fail(__FILE__, line, m);
    }
}
#define REFUSED(bus, data, msg) expect_refused(bus, data, msg, __LINE__)
#define ACCEPTED(bus, data) expect_ok(bus, data, __LINE__)

/* ---- registration ---- */

/* Registers and expects RSBUS_E_ARG with a message containing each of the NULL-terminated needles. */
static void expect_bad_schema(rsbus *bus, const char *schema, int line, ...) {
    rsbus_result r = rsbus_schema_register(bus, "s.bad", 1, schema);
    va_list ap;
    const char *needle;
    if (r != RSBUS_E_ARG) {
        char m[512];
        snprintf(m, sizeof m, "%.200s: got %s, expected RSBUS_E_ARG", schema, rsbus_result_str(r));
        test__fail(__FILE__, line, m);
        return;
    }
    CHECK(strlen(rsbus_errmsg(bus)) < 256);
    va_start(ap, line);
    while ((needle = va_arg(ap, const char *)) != NULL) {
        if (!strstr(rsbus_errmsg(bus), needle)) {
            char m[768];
            snprintf(m, sizeof m, "\"%s\" contains \"%s\"", rsbus_errmsg(bus), needle);
            test__fail(__FILE__, line, m);
        }
    }
    va_end(ap);
}
#define BAD_SCHEMA(bus, schema, ...) expect_bad_schema(bus, schema, __LINE__, __VA_ARGS__, (const char *)NULL)

static int ends_with(const char *s, const char *tail) {
    size_t n = strlen(s), k = strlen(tail);
    return n >= k && strcmp(s + n - k, tail) == 0;
}

/* {"a": {"a": ... "string" ...}} with levels objects in all (the top one included) */
static void nested_schema(char *out, size_t size, int levels) {
    size_t n = 0;
    int i;
    for (i = 1; i < levels; i++) n += (size_t)snprintf(out + n, size - n, "{\"a\": ");
    n += (size_t)snprintf(out + n, size - n, "{\"a\": \"string\"}");
    for (i = 1; i < levels; i++) n += (size_t)snprintf(out + n, size - n, "}");
}

TEST(register_refuses_bad_schemas) {
    rsbus *bus = open_bus("s:reg", "g", "c");
    char big[70000], name[130], *p;
    int i, k;
    REQUIRE(bus != NULL);
    CHECK_EQ_INT(rsbus_schema_register(NULL, "t", 1, "{}"), RSBUS_E_ARG);
    BAD_SCHEMA(bus, "{\"a\": \"string\"", "schema_register s.bad v1", "not valid JSON", "at byte 14");
    BAD_SCHEMA(bus, "", "not valid JSON");
    BAD_SCHEMA(bus, "[\"string\"]", "must be a JSON object");
    BAD_SCHEMA(bus, "\"string\"", "must be a JSON object");
    BAD_SCHEMA(bus, "{\"a\": \"strng\"}", "unknown type \"strng\"", "field \"a\"", "byte 6");
    BAD_SCHEMA(bus, "{\"a\": \"String\"}", "unknown type \"String\"");
    BAD_SCHEMA(bus, "{\"a\": \"a-very-long-unknown-type-name-that-goes-on\"}", "unknown type \"a-very-long-unk");
    BAD_SCHEMA(bus, "{\"a\": 1}", "a type must be a type name", "field \"a\"");
    BAD_SCHEMA(bus, "{\"a\": null}", "a type must be a type name");
    BAD_SCHEMA(bus, "{\"a\": true}", "a type must be a type name");
    BAD_SCHEMA(bus, "{\"a\": []}", "exactly one type", "field \"a\"");
    BAD_SCHEMA(bus, "{\"a\": [\"string\", \"number\"]}", "exactly one type");
    BAD_SCHEMA(bus, "{\"a\": [\"strin\"]}", "unknown type", "field \"a[]\"");
    BAD_SCHEMA(bus, "{\"customer\": {\"address\": {\"zip\": \"strin\"}}}", "field \"customer.address.zip\"");
    BAD_SCHEMA(bus, "{\"items\": [{\"qty\": \"int\"}]}", "unknown type \"int\"", "field \"items[].qty\"");
    BAD_SCHEMA(bus, "{\"\": \"string\"}", "field name is empty");
    BAD_SCHEMA(bus, "{\"?\": \"string\"}", "field name is empty");
    BAD_SCHEMA(bus, "{\"a.b\": \"string\"}", "must not hold '.'");
    BAD_SCHEMA(bus, "{\"a[0]\": \"string\"}", "must not hold '.'");
    BAD_SCHEMA(bus, "{\"a\\nb\": \"string\"}", "control character");
    BAD_SCHEMA(bus, "{\"a\": \"string\", \"a?\": \"number\"}", "named twice", "field \"a\"");
    BAD_SCHEMA(bus, "{\"o\": {\"x\": \"any\", \"\\u0078\": \"any\"}}", "named twice", "field \"o.x\"");
    /* a name of 129 bytes; 128 is fine, with or without the '?' */
    memset(name, 'n', 129);
    name[129] = 0;
    snprintf(big, sizeof big, "{\"%s\": \"string\"}", name);
    BAD_SCHEMA(bus, big, "longer than 128 bytes");
    snprintf(big, sizeof big, "{\"%s?\": \"string\"}", name);
    BAD_SCHEMA(bus, big, "longer than 128 bytes");
    name[128] = 0;
    snprintf(big, sizeof big, "{\"%s?\": \"string\", \"x%s\": \"any\"}", name, name + 1);
    CHECK_EQ_INT(rsbus_schema_register(bus, "s.ok", 1, big), RSBUS_OK);
    /* depth: 16 levels are fine, 17 are not; arrays count as levels */
    nested_schema(big, sizeof big, 16);
    CHECK_EQ_INT(rsbus_schema_register(bus, "s.ok", 1, big), RSBUS_OK);
    nested_schema(big, sizeof big, 17);
    BAD_SCHEMA(bus, big, "nested deeper than 16 levels", "field \"a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a\"");
    {
        char arr[256];
        int levels;
        for (levels = 15; levels <= 16; levels++) {                 /* the top object + 15 or 16 arrays */
            size_t n = (size_t)snprintf(arr, sizeof arr, "{\"m\": ");
            for (i = 0; i < levels; i++) arr[n++] = '[';
            n += (size_t)snprintf(arr + n, sizeof arr - n, "\"number\"");
            for (i = 0; i < levels; i++) arr[n++] = ']';
            snprintf(arr + n, sizeof arr - n, "}");
            if (levels == 15) CHECK_EQ_INT(rsbus_schema_register(bus, "s.ok", 1, arr), RSBUS_OK);
            else BAD_SCHEMA(bus, arr, "nested deeper than 16 levels", "field \"m[][][][][][][][][][][][][][][]\"");
        }
    }
    /* 256 fields in an object, not 257; 1024 in all, not 1025 */
    {
        size_t n = (size_t)snprintf(big, sizeof big, "{");
        for (i = 0; i < 257; i++) n += (size_t)snprintf(big + n, sizeof big - n, "%s\"f%d\": \"any\"", i ? "," : "", i);
        snprintf(big + n, sizeof big - n, "}");
        BAD_SCHEMA(bus, big, "more than 256 fields");
        p = strstr(big, ",\"f256\"");
        REQUIRE(p != NULL);
        strcpy(p, "}");
        CHECK_EQ_INT(rsbus_schema_register(bus, "s.ok", 1, big), RSBUS_OK);
        /* 4 objects of 255 fields: 4 + 1020 = 1024 nodes; one more field is too many */
        for (k = 0; k < 2; k++) {
            int o;
            n = (size_t)snprintf(big, sizeof big, "{");
            for (o = 0; o < 4; o++) {
                n += (size_t)snprintf(big + n, sizeof big - n, "%s\"o%d\": {", o ? "," : "", o);
                for (i = 0; i < 255; i++) n += (size_t)snprintf(big + n, sizeof big - n, "%s\"f%d\": \"any\"", i ? "," : "", i);
                n += (size_t)snprintf(big + n, sizeof big - n, "}");
            }
            snprintf(big + n, sizeof big - n, "%s}", k ? ", \"one_more\": \"any\"" : "");
            if (!k) CHECK_EQ_INT(rsbus_schema_register(bus, "s.ok", 1, big), RSBUS_OK);
            else BAD_SCHEMA(bus, big, "more than 1024 fields and array types in all");
        }
    }
    /* 64 KiB of text at most */
    memset(big, ' ', sizeof big);
    memcpy(big, "{\"a\": \"any\"", 11);
    big[65536] = '}';
    big[65537] = 0;
    BAD_SCHEMA(bus, big, "more than 65536");
    big[65535] = '}';
    big[65536] = 0;
    CHECK_EQ_INT(rsbus_schema_register(bus, "s.ok", 1, big), RSBUS_OK);
    /* type and version */
    CHECK_EQ_INT(rsbus_schema_register(bus, "bad type!", 1, "{}"), RSBUS_E_ARG);
    CHECK_CONTAINS(rsbus_errmsg(bus), "type must be 1..128 bytes");
    CHECK_EQ_INT(rsbus_schema_register(bus, NULL, 1, "{}"), RSBUS_E_ARG);
    CHECK_EQ_INT(rsbus_schema_register(bus, "", 1, "{}"), RSBUS_E_ARG);
    CHECK_EQ_INT(rsbus_schema_register(bus, "t", -1, "{}"), RSBUS_E_ARG);
    CHECK_CONTAINS(rsbus_errmsg(bus), "version must be positive");
    CHECK_EQ_INT(rsbus_schema_register(bus, "t", 1, NULL), RSBUS_E_ARG);
    CHECK_CONTAINS(rsbus_errmsg(bus), "schema is NULL");
    /* nothing was registered by the failures: s.bad takes anything */
    CHECK_EQ_INT(pubv(bus, "s.bad", 1, "[1,2]"), RSBUS_OK);
    CHECK_EQ_INT(pubv(bus, "s.bad", 0, "\"x\""), RSBUS_OK);
    /* success clears the message */
    CHECK_EQ_INT(rsbus_schema_register(bus, "s.fine", 0, "{}"), RSBUS_OK);
    CHECK_EQ_STR(rsbus_errmsg(bus), "");
    /* version 0 is version 1; {} asks for an object and nothing else */
    CHECK_EQ_INT(pubv(bus, "s.fine", 1, "[]"), RSBUS_E_ARG);
    CHECK_EQ_STR(rsbus_errmsg(bus), "publish s.fine v1: the payload must be a JSON object");
    CHECK_EQ_INT(pubv(bus, "s.fine", 0, "{\"anything\": [1, {}]}"), RSBUS_OK);
    rsbus_close(bus);
}

/* ---- publishing ---- */

TEST(publish_checks_fields_by_path) {
    rsbus *bus = open_bus("s:pub", "g", "c");
    long long before;
    REQUIRE(bus != NULL);
    REQUIRE(rsbus_schema_register(bus, "order.created", 2, order_schema) == RSBUS_OK);
    before = raw_int("XLEN s:pub");
    if (before < 0) before = 0;
    ACCEPTED(bus, ORDER_OK);
    ACCEPTED(bus, "{\"id\":\"o-2\",\"customer\":{\"id\":-0,\"name\":\"N\",\"address\":{\"zip\":\"1\",\"city\":\"C\"}},"
                  "\"items\":[{\"sku\":\"a\",\"qty\":1,\"price\":9.5},{\"sku\":\"b\",\"qty\":123456789012345678901234,"
                  "\"price\":1e3}],\"tags\":[\"x\",\"y\"],\"paid\":false,\"meta\":{\"k\":[1]},\"extra\":null,"
                  "\"notes\":[1,\"two\",{}],\"matrix\":[[1,2.5],[],[-3e-2]]}");
    /* extra fields, at every level, of any type */
    ACCEPTED(bus, "{\"zz\":[{\"deep\":[[[[]]]]}],\"id\":\"o-3\",\"customer\":{\"x\":1,\"id\":7,\"address\":{\"zip\":\"1\","
                  "\"extra\":{\"id\":5}}},\"items\":[{\"sku\":\"a\",\"qty\":1,\"more\":\"yes\"}],\"paid\":true,\"p\":null}");
    /* optional fields: absent, or null */
    ACCEPTED(bus, "{\"id\":\"o\",\"customer\":{\"id\":1,\"name\":null,\"address\":{\"zip\":\"1\",\"city\":null}},"
                  "\"items\":[{\"sku\":\"a\",\"qty\":1,\"price\":null}],\"tags\":null,\"paid\":true,\"meta\":null}");
    /* "any" takes null and everything else */
    ACCEPTED(bus, "{\"id\":\"o\",\"customer\":{\"id\":1,\"address\":{\"zip\":\"1\"}},\"items\":[],\"paid\":true,"
                  "\"extra\":{\"a\":[null]}}");
    /* whitespace everywhere; keys with escapes are matched by what they spell */
    ACCEPTED(bus, " { \"\\u0069d\" : \"o\" , \"customer\" : { \"id\" : 1 , \"address\" : { \"z\\u0069p\" : \"1\" } } ,"
                  " \"items\" : [ ] , \"paid\" : true } ");
    CHECK_EQ_INT(raw_int("XLEN s:pub") - before, 6);

    /* wrong types, by path */
    REFUSED(bus, "{\"id\":\"o\",\"customer\":{\"id\":7,\"address\":{\"zip\":75001}},\"items\":[],\"paid\":true}",
            "publish order.created v2: field \"customer.address.zip\" must be a string");
    REFUSED(bus, "{\"id\":\"o\",\"customer\":{\"id\":7,\"address\":{\"zip\":\"1\"}},\"items\":[{\"sku\":\"a\",\"qty\":1},"
                 "{\"sku\":\"b\",\"qty\":2},{\"sku\":\"c\",\"qty\":3},{\"sku\":\"d\",\"qty\":1.5}],\"paid\":true}",
            "publish order.created v2: field \"items.3.qty\" must be an integer");
    REFUSED(bus, "{\"id\":\"o\",\"customer\":{\"id\":7,\"address\":{\"zip\":\"1\"}},\"items\":[{\"sku\":\"a\",\"qty\":1e2}],"
                 "\"paid\":true}",
            "publish order.created v2: field \"items.0.qty\" must be an integer");
    REFUSED(bus, "{\"id\":\"o\",\"customer\":{\"id\":7.0,\"address\":{\"zip\":\"1\"}},\"items\":[],\"paid\":true}",
            "publish order.created v2: field \"customer.id\" must be an integer");
    REFUSED(bus, "{\"id\":\"o\",\"customer\":{\"id\":\"7\",\"address\":{\"zip\":\"1\"}},\"items\":[],\"paid\":true}",
            "publish order.created v2: field \"customer.id\" must be an integer");
    REFUSED(bus, "{\"id\":\"o\",\"customer\":{\"id\":7,\"address\":{\"zip\":\"1\"}},\"items\":[{\"sku\":\"a\",\"qty\":1,"
                 "\"price\":\"9.5\"}],\"paid\":true}",
            "publish order.created v2: field \"items.0.price\" must be a number");
    REFUSED(bus, "{\"id\":\"o\",\"customer\":{\"id\":7,\"address\":{\"zip\":\"1\"}},\"items\":[],\"paid\":\"yes\"}",
            "publish order.created v2: field \"paid\" must be a boolean");
    REFUSED(bus, "{\"id\":\"o\",\"customer\":{\"id\":7,\"address\":{\"zip\":\"1\"}},\"items\":[],\"paid\":1}",
            "publish order.created v2: field \"paid\" must be a boolean");
    REFUSED(bus, "{\"id\":\"o\",\"customer\":{\"id\":7,\"address\":{\"zip\":\"1\"}},\"items\":[],\"paid\":null}",
            "publish order.created v2: field \"paid\" must be a boolean");                 /* required: no null */
    REFUSED(bus, "{\"id\":\"o\",\"customer\":[],\"items\":[],\"paid\":true}",
            "publish order.created v2: field \"customer\" must be an object");
    REFUSED(bus, "{\"id\":\"o\",\"customer\":{\"id\":7,\"address\":{\"zip\":\"1\"}},\"items\":{},\"paid\":true}",
            "publish order.created v2: field \"items\" must be an array");
    REFUSED(bus, "{\"id\":\"o\",\"customer\":{\"id\":7,\"address\":{\"zip\":\"1\"}},\"items\":[{\"sku\":\"a\",\"qty\":1},7],"
                 "\"paid\":true}",
            "publish order.created v2: field \"items.1\" must be an object");
    REFUSED(bus, "{\"id\":null,\"customer\":{\"id\":7,\"address\":{\"zip\":\"1\"}},\"items\":[],\"paid\":true}",
            "publish order.created v2: field \"id\" must be a string");
    /* optional fields present with the wrong type */
    REFUSED(bus, "{\"id\":\"o\",\"customer\":{\"id\":7,\"address\":{\"zip\":\"1\"}},\"items\":[],\"paid\":true,\"tags\":\"x\"}",
            "publish order.created v2: field \"tags\" must be an array");
    REFUSED(bus, "{\"id\":\"o\",\"customer\":{\"id\":7,\"address\":{\"zip\":\"1\"}},\"items\":[],\"paid\":true,"
                 "\"tags\":[\"a\",\"b\",3]}",
            "publish order.created v2: field \"tags.2\" must be a string");
    REFUSED(bus, "{\"id\":\"o\",\"customer\":{\"id\":7,\"address\":{\"zip\":\"1\"}},\"items\":[],\"paid\":true,"
                 "\"tags\":[null]}",
            "publish order.created v2: field \"tags.0\" must be a string");                /* elements: no null */
    REFUSED(bus, "{\"id\":\"o\",\"customer\":{\"id\":7,\"name\":5,\"address\":{\"zip\":\"1\"}},\"items\":[],\"paid\":true}",
            "publish order.created v2: field \"customer.name\" must be a string");
    REFUSED(bus, "{\"id\":\"o\",\"customer\":{\"id\":7,\"address\":{\"zip\":\"1\"}},\"items\":[],\"paid\":true,\"meta\":[]}",
            "publish order.created v2: field \"meta\" must be an object");
    REFUSED(bus, "{\"id\":\"o\",\"customer\":{\"id\":7,\"address\":{\"zip\":\"1\"}},\"items\":[],\"paid\":true,\"notes\":{}}",
            "publish order.created v2: field \"notes\" must be an array");
    REFUSED(bus, "{\"id\":\"o\",\"customer\":{\"id\":7,\"address\":{\"zip\":\"1\"}},\"items\":[],\"paid\":true,"
                 "\"matrix\":[[1,2],[3,\"x\"]]}",
            "publish order.created v2: field \"matrix.1.1\" must be a number");
    REFUSED(bus, "{\"id\":\"o\",\"customer\":{\"id\":7,\"address\":{\"zip\":\"1\"}},\"items\":[],\"paid\":true,"
                 "\"matrix\":[[1],2]}",
            "publish order.created v2: field \"matrix.1\" must be an array");
    /* missing required fields, at the top and nested */
    REFUSED(bus, "{\"customer\":{\"id\":7,\"address\":{\"zip\":\"1\"}},\"items\":[],\"paid\":true}",
            "publish order.created v2: missing required field \"id\"");
    REFUSED(bus, "{\"id\":\"o\",\"customer\":{\"address\":{\"zip\":\"1\"}},\"items\":[],\"paid\":true}",
            "publish order.created v2: missing required field \"customer.id\"");
    REFUSED(bus, "{\"id\":\"o\",\"customer\":{\"id\":7,\"address\":{}},\"items\":[],\"paid\":true}",
            "publish order.created v2: missing required field \"customer.address.zip\"");
    REFUSED(bus, "{\"id\":\"o\",\"customer\":{\"id\":7,\"address\":{\"zip\":\"1\"}},\"items\":[{\"sku\":\"a\",\"qty\":1},"
                 "{\"qty\":2}],\"paid\":true}",
            "publish order.created v2: missing required field \"items.1.sku\"");
    /* a key named twice: every occurrence is checked */
    REFUSED(bus, "{\"id\":\"o\",\"customer\":{\"id\":7,\"address\":{\"zip\":\"1\"}},\"items\":[],\"paid\":true,\"id\":2}",
            "publish order.created v2: field \"id\" must be a string");
    /* the payload must be an object */
    REFUSED(bus, "[1,2]", "publish order.created v2: the payload must be a JSON object");
    REFUSED(bus, "\"o\"", "publish order.created v2: the payload must be a JSON object");
    REFUSED(bus, "null", "publish order.created v2: the payload must be a JSON object");
    REFUSED(bus, NULL, "publish order.created v2: missing required field \"id\"");          /* NULL data is {} */
    /* invalid JSON is still reported as such, before the schema */
    REFUSED(bus, "{\"id\":", "publish order.created: data is not valid JSON (at byte 6)");
    /* nothing refused was sent */
    CHECK_EQ_INT(raw_int("XLEN s:pub") - before, 6);
    /* messages never quote payload values */
    REFUSED(bus, "{\"id\":\"o\",\"customer\":{\"id\":\"secret-value-42\",\"address\":{\"zip\":\"1\"}},\"items\":[],"
                 "\"paid\":true}",
            "publish order.created v2: field \"customer.id\" must be an integer");
    CHECK_NOT_CONTAINS(rsbus_errmsg(bus), "secret-value-42");
    CHECK_NOT_CONTAINS(logbuf, "secret-value-42");
    /* a success after a refusal clears the message */
    ACCEPTED(bus, ORDER_OK);
    CHECK_EQ_STR(rsbus_errmsg(bus), "");
    rsbus_close(bus);
}

TEST(versions_are_independent_and_unregistered_types_pass) {
    rsbus *bus = open_bus("s:ver", "g", "c");
    REQUIRE(bus != NULL);
    REQUIRE(rsbus_schema_register(bus, "order.created", 2, order_schema) == RSBUS_OK);
    CHECK_EQ_INT(pubv(bus, "order.created", 0, "[\"v1 has no schema\"]"), RSBUS_OK);
    CHECK_EQ_INT(pubv(bus, "order.created", 1, "{\"x\":1}"), RSBUS_OK);
    CHECK_EQ_INT(pubv(bus, "order.created", 3, "7"), RSBUS_OK);
    CHECK_EQ_INT(pubv(bus, "order.created", 2, "7"), RSBUS_E_ARG);
    CHECK_EQ_INT(pubv(bus, "order.createdX", 2, "7"), RSBUS_OK);
    CHECK_EQ_INT(pubv(bus, "order.create", 2, "7"), RSBUS_OK);
    CHECK_EQ_INT(pubv(bus, "other", 2, "7"), RSBUS_OK);
    /* a v1 schema applies to version 0 (which means 1) and 1, not 2 */
    REQUIRE(rsbus_schema_register(bus, "order.created", 1, "{\"n\": \"integer\"}") == RSBUS_OK);
    CHECK_EQ_INT(pubv(bus, "order.created", 0, "{\"n\": 1}"), RSBUS_OK);
    CHECK_EQ_INT(pubv(bus, "order.created", 0, "{\"n\": \"1\"}"), RSBUS_E_ARG);
    CHECK_EQ_STR(rsbus_errmsg(bus), "publish order.created v1: field \"n\" must be an integer");
    CHECK_EQ_INT(pubv(bus, "order.created", 1, "{}"), RSBUS_E_ARG);
    CHECK_EQ_INT(pubv(bus, "order.created", 2, "{\"n\": 1}"), RSBUS_E_ARG);   /* v2's schema */
    CHECK_EQ_INT(pubv(bus, "order.created", 2, ORDER_OK), RSBUS_OK);
    rsbus_close(bus);
}

TEST(reregister_replaces) {
    rsbus *bus = open_bus("s:rereg", "g", "c");
    REQUIRE(bus != NULL);
    REQUIRE(rsbus_schema_register(bus, "t", 1, "{\"a\": \"string\"}") == RSBUS_OK);
    CHECK_EQ_INT(pubv(bus, "t", 1, "{\"a\": 1}"), RSBUS_E_ARG);
    CHECK_EQ_INT(pubv(bus, "t", 1, "{\"a\": \"x\"}"), RSBUS_OK);
    REQUIRE(rsbus_schema_register(bus, "t", 1, "{\"a\": \"number\", \"b?\": \"boolean\"}") == RSBUS_OK);
    CHECK_EQ_INT(pubv(bus, "t", 1, "{\"a\": 1}"), RSBUS_OK);
    CHECK_EQ_INT(pubv(bus, "t", 1, "{\"a\": \"x\"}"), RSBUS_E_ARG);
    CHECK_EQ_STR(rsbus_errmsg(bus), "publish t v1: field \"a\" must be a number");
    CHECK_EQ_INT(pubv(bus, "t", 1, "{\"a\": 1, \"b\": 0}"), RSBUS_E_ARG);
    /* a failed registration leaves the registered schema as it was */
    CHECK_EQ_INT(rsbus_schema_register(bus, "t", 1, "{\"a\": \"nope\"}"), RSBUS_E_ARG);
    CHECK_EQ_INT(pubv(bus, "t", 1, "{\"a\": 1}"), RSBUS_OK);
    CHECK_EQ_INT(pubv(bus, "t", 1, "{\"a\": \"x\"}"), RSBUS_E_ARG);
    rsbus_close(bus);
}

TEST(batch_refusal_names_the_event_and_sends_nothing) {
    rsbus *bus = open_bus("s:batch", "g", "c");
    rsbus_event evs[5];
    char ids[5][RSBUS_ID_SIZE];
    int i;
    rsbus_stats st;
    REQUIRE(bus != NULL);
    REQUIRE(rsbus_schema_register(bus, "order.created", 2, order_schema) == RSBUS_OK);
    memset(evs, 0, sizeof evs);
    for (i = 0; i < 5; i++) { evs[i].type = "order.created"; evs[i].version = 2; evs[i].data = ORDER_OK; }
    evs[1].type = "no.schema"; evs[1].data = "[]";
    evs[3].data = "{\"id\":\"o\",\"customer\":{\"id\":7,\"address\":{\"zip\":\"1\"}},\"items\":[{\"sku\":1,\"qty\":1}],"
                  "\"paid\":true}";
    CHECK_EQ_INT(rsbus_publish_batch(bus, evs, 5, ids), RSBUS_E_ARG);
    CHECK_EQ_STR(rsbus_errmsg(bus), "publish order.created v2: field \"items.0.sku\" must be a string (event 3 of the batch)");
    CHECK(raw_int("XLEN s:batch") <= 0);
    rsbus_stats_get(bus, &st);
    CHECK_EQ_INT(st.published, 0);
    /* the connection is still in step: the fixed batch goes through */
    evs[3].data = ORDER_OK;
    CHECK_EQ_INT(rsbus_publish_batch(bus, evs, 5, ids), RSBUS_OK);
    CHECK_EQ_INT(raw_int("XLEN s:batch"), 5);
    rsbus_close(bus);
}

/* Long paths are cut at their start, never past the message buffers; so are long types. */
TEST(long_paths_fit_the_messages) {
    rsbus *bus = open_bus("s:long", "g", "c");
    char schema[8192], data[8192], type[129], name[129];
    size_t n = 0, m = 0, len;
    int i;
    const char *msg;
    REQUIRE(bus != NULL);
    memset(type, 't', 128);
    type[128] = 0;
    memset(name, 'n', 128);
    name[128] = 0;
    name[0] = 'A';                                          /* the first level's name: cut off */
    for (i = 0; i < 15; i++) {
        n += (size_t)snprintf(schema + n, sizeof schema - n, "{\"%s\": ", name);
        m += (size_t)snprintf(data + m, sizeof data - m, "{\"%s\": ", name);
        name[0] = (char)('B' + i);
    }
    n += (size_t)snprintf(schema + n, sizeof schema - n, "{\"last\": \"string\"}");
    m += (size_t)snprintf(data + m, sizeof data - m, "{\"last\": 5}");
    for (i = 0; i < 15; i++) { n += (size_t)snprintf(schema + n, sizeof schema - n, "}"); m += (size_t)snprintf(data + m, sizeof data - m, "}"); }
    REQUIRE(rsbus_schema_register(bus, type, 9, schema) == RSBUS_OK);
    REQUIRE(rsbus_schema_register(bus, "short", 1, schema) == RSBUS_OK);
    CHECK_EQ_INT(pubv(bus, type, 9, data), RSBUS_E_ARG);
    msg = rsbus_errmsg(bus);
    len = strlen(msg);
    CHECK(len < 256);
    CHECK(strncmp(msg, "publish ttt", 11) == 0);
    CHECK_CONTAINS(msg, " v9: field \"...");
    CHECK(ends_with(msg, "nnnn.last\" must be a string"));
    CHECK_NOT_CONTAINS(msg, "Annnn");
    CHECK_EQ_INT(pubv(bus, "short", 1, data), RSBUS_E_ARG);
    msg = rsbus_errmsg(bus);
    CHECK(strlen(msg) < 256);
    CHECK_CONTAINS(msg, "publish short v1: field \"...");
    CHECK(ends_with(msg, ".last\" must be a string"));
    CHECK_NOT_CONTAINS(msg, "Annnn");
    /* in a batch, the " (event N of the batch)" also fits */
    {
        rsbus_event evs[2];
        memset(evs, 0, sizeof evs);
        evs[0].type = "x"; evs[1].type = type; evs[1].version = 9; evs[1].data = data;
        CHECK_EQ_INT(rsbus_publish_batch(bus, evs, 2, NULL), RSBUS_E_ARG);
        msg = rsbus_errmsg(bus);
        CHECK(strlen(msg) < 256);
        CHECK(ends_with(msg, ".last\" must be a string (event 1 of the batch)"));
    }
    /* a missing field deep down, too */
    m = 0;
    name[0] = 'A';
    for (i = 0; i < 15; i++) { m += (size_t)snprintf(data + m, sizeof data - m, "{\"%s\": ", name); name[0] = (char)('B' + i); }
    m += (size_t)snprintf(data + m, sizeof data - m, "{}");
    for (i = 0; i < 15; i++) m += (size_t)snprintf(data + m, sizeof data - m, "}");
    CHECK_EQ_INT(pubv(bus, type, 9, data), RSBUS_E_ARG);
    msg = rsbus_errmsg(bus);
    CHECK(strlen(msg) < 256);
    CHECK_CONTAINS(msg, ": missing required field \"...");
    CHECK(ends_with(msg, "nnnn.last\""));
    rsbus_close(bus);
}

/* The checker on its own: prefixes of valid payloads (invalid JSON) never read past the end. Each prefix
   is copied into an allocation of exactly its size, so ASan sees any read beyond it. */
TEST(checker_stays_in_bounds) {
    rsbus *bus = open_bus("s:bounds", "g", "c");
    const rsbus__schema *sc;
    const char *texts[3];
    char msg[256];
    size_t t, n, len;
    int results[2] = { 0, 0 };
    REQUIRE(bus != NULL);
    REQUIRE(rsbus_schema_register(bus, "order.created", 2, order_schema) == RSBUS_OK);
    sc = rsbus__schema_find(bus, "order.created", 2);
    REQUIRE(sc != NULL);
    CHECK(rsbus__schema_find(bus, "order.created", 1) == NULL);
    texts[0] = ORDER_OK;
    texts[1] = "{\"id\":\"o-2\",\"customer\":{\"id\":-0,\"name\":\"N\\u00e9\",\"address\":{\"zip\":\"1\",\"city\":null}},"
               "\"items\":[{\"sku\":\"a\",\"qty\":1,\"price\":9.5e-1},{\"sku\":\"b\",\"qty\":12}],\"tags\":[\"x\",\"y\"],"
               "\"paid\":false,\"meta\":{\"k\":[1,{\"z\":\"]}\"}]},\"extra\":null,\"notes\":[1,\"two\",{}],"
               "\"matrix\":[[1,2.5],[],[-3e-2]],\"zz\":[true,false,null]}";
    texts[2] = "{\"id\":\"o\",\"customer\":{\"id\":7,\"address\":{\"zip\":\"1\"}},\"items\":[],\"paid\":true,\"\\u0069d\":2}";
    for (t = 0; t < 3; t++) {
        len = strlen(texts[t]);
        for (n = 0; n <= len; n++) {
            char *copy = (char *)malloc(n ? n : 1);
            int r;
            REQUIRE(copy != NULL);
            memcpy(copy, texts[t], n);
            r = rsbus__schema_validate(sc, copy, n, msg, sizeof msg);
            free(copy);
            if (n == len && t < 2) CHECK_EQ_INT(r, 0);
            else if (n == len) { CHECK_EQ_INT(r, 1); CHECK_EQ_STR(msg, "field \"id\" must be a string"); }
            else results[r]++;
            CHECK(strlen(msg) < sizeof msg);
        }
    }
    CHECK(results[1] > 0);          /* most prefixes are refused (missing fields or invalid JSON) */
    /* a tiny message buffer is never overrun */
    {
        char tiny[8];
        memset(tiny, 'x', sizeof tiny);
        CHECK_EQ_INT(rsbus__schema_validate(sc, "{\"id\":1}", 8, tiny, sizeof tiny), 1);
        CHECK_EQ_INT(strlen(tiny), 7);
    }
    /* values the schema does not describe may nest as deep as the JSON reader allows: no recursion */
    {
        char deep[1200];
        size_t k = 0;
        int i;
        k += (size_t)snprintf(deep + k, sizeof deep - k, "{\"id\":\"o\",\"customer\":{\"id\":7,\"address\":{\"zip\":\"1\"}},"
                              "\"items\":[],\"paid\":true,\"extra\":");
        for (i = 0; i < 500; i++) deep[k++] = '[';
        for (i = 0; i < 500; i++) deep[k++] = ']';
        deep[k++] = '}';
        deep[k] = 0;
        CHECK_EQ_INT(rsbus_json_validate(deep, k, NULL), RSBUS_OK);
        CHECK_EQ_INT(rsbus__schema_validate(sc, deep, k, msg, sizeof msg), 0);
        CHECK_EQ_INT(pubv(bus, "order.created", 2, deep), RSBUS_OK);
    }
    rsbus_close(bus);
}

TEST(many_schemas) {
    rsbus *bus = open_bus("s:many", "g", "c");
    char type[32];
    int i, bad = 0;
    REQUIRE(bus != NULL);
    for (i = 0; i < 1024; i++) {
        snprintf(type, sizeof type, "t%d", i / 4);
        if (rsbus_schema_register(bus, type, 1 + i % 4, "{\"n\": \"integer\"}") != RSBUS_OK) bad++;
    }
    CHECK_EQ_INT(bad, 0);
    CHECK_EQ_INT(rsbus_schema_register(bus, "one.more", 1, "{}"), RSBUS_E_ARG);
    CHECK_CONTAINS(rsbus_errmsg(bus), "1024 schemas");
    CHECK_EQ_INT(rsbus_schema_register(bus, "t7", 2, "{\"s\": \"string\"}"), RSBUS_OK);   /* replacing is fine */
    CHECK_EQ_INT(pubv(bus, "t7", 2, "{\"s\": \"x\"}"), RSBUS_OK);
    CHECK_EQ_INT(pubv(bus, "t7", 3, "{\"s\": \"x\"}"), RSBUS_E_ARG);
    CHECK_EQ_INT(pubv(bus, "t255", 4, "{\"n\": 1}"), RSBUS_OK);
    CHECK_EQ_INT(pubv(bus, "t255", 4, "{\"n\": 1.5}"), RSBUS_E_ARG);
    CHECK_EQ_INT(pubv(bus, "t256", 1, "{\"n\": 1.5}"), RSBUS_OK);
    for (i = 0, bad = 0; i < 1024; i++) {
        snprintf(type, sizeof type, "t%d", i / 4);
        if (type[1] == '7' && type[2] == 0) continue;
        if (rsbus__schema_find(bus, type, 1 + i % 4) == NULL) bad++;
    }
    CHECK_EQ_INT(bad, 0);
    rsbus_close(bus);
}

/* ---- consuming ---- */

typedef struct seen {
    int calls;
    int versions[16];
    char ids[16][16];
} seen;
static rsbus_verdict on_seen(const rsbus_msg *m, void *user) {
    seen *s = (seen *)user;
    if (s->calls < 16) {
        s->versions[s->calls] = m->version;
        snprintf(s->ids[s->calls], sizeof s->ids[0], "%s", m->id ? m->id : "");
    }
    s->calls++;
    return RSBUS_ACK;
}

/* dlq_error of each DLQ entry of stream, in order; returns how many */
static int dlq_errors(const char *stream, char out[][300], int max) {
    redisReply *rep = raw("XRANGE {%s}:dlq - +", stream);
    int n = 0;
    size_t i, k;
    if (!rep) return -1;
    for (i = 0; rep->type == REDIS_REPLY_ARRAY && i < rep->elements && n < max; i++) {
        const redisReply *f = rep->element[i]->element[1];
        out[n][0] = 0;
        for (k = 0; k + 1 < f->elements; k += 2)
            if (!strcmp(f->element[k]->str, "dlq_error")) snprintf(out[n], 300, "%s", f->element[k + 1]->str);
        n++;
    }
    freeReplyObject(rep);
    return n;
}

static int count_replayed(const rsbus_msg *m, void *user) { (void)m; (*(int *)user)++; return 0; }
TEST(consume_dead_letters_entries_that_do_not_match) {
    rsbus *bus = open_bus("s:con", "g", "c");
    seen s;
    rsbus_stats st;
    char errs[8][300];
    REQUIRE(bus != NULL);
    memset(&s, 0, sizeof s);
    REQUIRE(rsbus_schema_register(bus, "order.created", 2, order_schema) == RSBUS_OK);
    CHECK(rsbus_subscribe(bus, "order.*", on_seen, &s) > 0);
    /* written past the publisher's check */
    freeReplyObject(raw("XADD s:con * type order.created id e1 v 2 data %s",
                        "{\"id\":\"o\",\"customer\":{\"id\":7,\"address\":{\"zip\":75001}},\"items\":[],\"paid\":true}"));
    freeReplyObject(raw("XADD s:con * type order.created id e2 v 2 data %s", ORDER_OK));
    freeReplyObject(raw("XADD s:con * type order.created id e3 v 2 data %s",
                        "{\"id\":\"o\",\"customer\":{\"id\":7,\"address\":{\"zip\":\"1\"}},\"items\":[{\"sku\":\"a\"}],"
                        "\"paid\":true}"));
    freeReplyObject(raw("XADD s:con * type order.created id e4 data %s", "[\"no v: version 1, no schema\"]"));
    freeReplyObject(raw("XADD s:con * type order.created id e5 v 2 data %s", "[]"));
    freeReplyObject(raw("XADD s:con * type order.created id e6 v 3 data %s", "{}"));
    freeReplyObject(raw("XADD s:con * type order.created id e7 v 2 data %s",
                        "{\"id\":\"o\",\"customer\":{\"id\":\"secret-value-43\",\"address\":{\"zip\":\"1\"}},\"items\":[],"
                        "\"paid\":true}"));
    {
        int64_t dl = test_now_ms() + 5000;
        while ((raw_int("XLEN {s:con}:dlq") < 4 || s.calls < 3) && test_now_ms() < dl) (void)rsbus_poll(bus, 10);
    }
    CHECK_EQ_INT(s.calls, 3);
    CHECK_EQ_STR(s.ids[0], "e2");
    CHECK_EQ_INT(s.versions[0], 2);
    CHECK_EQ_STR(s.ids[1], "e4");
    CHECK_EQ_INT(s.versions[1], 1);
    CHECK_EQ_STR(s.ids[2], "e6");
    CHECK_EQ_INT(s.versions[2], 3);
    CHECK_EQ_INT(dlq_errors("s:con", errs, 8), 4);
    CHECK_EQ_STR(errs[0], "malformed: schema: order.created v2: field \"customer.address.zip\" must be a string");
    CHECK_EQ_STR(errs[1], "malformed: schema: order.created v2: missing required field \"items.0.qty\"");
    CHECK_EQ_STR(errs[2], "malformed: schema: order.created v2: the payload must be a JSON object");
    CHECK_EQ_STR(errs[3], "malformed: schema: order.created v2: field \"customer.id\" must be an integer");
    CHECK_NOT_CONTAINS(errs[3], "secret-value-43");
    CHECK_NOT_CONTAINS(logbuf, "secret-value-43");
    rsbus_stats_get(bus, &st);
    CHECK_EQ_INT(st.malformed, 4);
    CHECK_EQ_INT(st.dead_lettered, 4);
    CHECK_EQ_INT(st.acked, 3);
    CHECK_EQ_INT(pending_of("s:con", "g"), 0);
    /* the DLQ entry still reads back, with its original data, and a replay is checked again */
    {
        rsbus_dlq_page page;
        char dlq_id[RSBUS_ID_SIZE];
        CHECK_EQ_INT(rsbus_dlq_list(bus, NULL, 10, &page), RSBUS_OK);
        REQUIRE(page.count == 4);
        CHECK_EQ_STR(page.entries[0].msg.id, "e1");
        CHECK_EQ_INT(page.entries[0].msg.version, 2);
        CHECK(page.entries[0].msg.data != NULL);
        CHECK_CONTAINS(page.entries[0].error, "customer.address.zip");
        snprintf(dlq_id, sizeof dlq_id, "%s", page.entries[0].dlq_id);
        rsbus_dlq_page_free(bus, &page);
        CHECK_EQ_INT(rsbus_dlq_replay(bus, dlq_id, NULL), RSBUS_OK);
        {
            int64_t dl = test_now_ms() + 5000;
            while (raw_int("XLEN {s:con}:dlq") < 4 && test_now_ms() < dl) (void)rsbus_poll(bus, 10);
        }
        CHECK_EQ_INT(raw_int("XLEN {s:con}:dlq"), 4);
        CHECK_EQ_INT(s.calls, 3);
        rsbus_stats_get(bus, &st);
        CHECK_EQ_INT(st.malformed, 5);
    }
    /* history is shown as it is: replay_range does not check schemas (the 7 entries and the replay) */
    {
        int n = 0;
        CHECK_EQ_INT(rsbus_replay_range(bus, "-", "+", count_replayed, &n), RSBUS_OK);
        CHECK_EQ_INT(n, 8);
    }
    /* a bus without the schema hands the same entries to its handler */
    {
        rsbus *other = open_bus("s:con", "g2", "c");
        seen s2;
        REQUIRE(other != NULL);
        memset(&s2, 0, sizeof s2);
        CHECK(rsbus_subscribe(other, "*", on_seen, &s2) > 0);
        {
            int64_t dl = test_now_ms() + 5000;
            while (s2.calls < 7 && test_now_ms() < dl) (void)rsbus_poll(other, 10);
        }
        CHECK_EQ_INT(s2.calls, 7);             /* the 7 entries; the replay is addressed to g */
        rsbus_stats_get(other, &st);
        CHECK_EQ_INT(st.malformed, 0);
        rsbus_close(other);
    }
    rsbus_close(bus);
}

/* A long type and a deep path still leave the reason whole: "malformed: " + "schema: ..." fits
   RSBUS_REASON_SIZE and ends with what is wrong. */
TEST(consume_reason_fits) {
    rsbus *bus = open_bus("s:conlong", "g", "c");
    seen s;
    char errs[2][300], type[129], schema[4096], data[4096], name[101];
    size_t n = 0, m = 0, len;
    int i;
    REQUIRE(bus != NULL);
    memset(&s, 0, sizeof s);
    memset(type, 'T', 128);
    type[128] = 0;
    memset(name, 'k', 100);
    name[100] = 0;
    for (i = 0; i < 10; i++) {
        n += (size_t)snprintf(schema + n, sizeof schema - n, "{\"%s\": ", name);
        m += (size_t)snprintf(data + m, sizeof data - m, "{\"%s\": ", name);
    }
    n += (size_t)snprintf(schema + n, sizeof schema - n, "{\"flag\": \"boolean\"}");
    m += (size_t)snprintf(data + m, sizeof data - m, "{\"flag\": 0}");
    for (i = 0; i < 10; i++) { n += (size_t)snprintf(schema + n, sizeof schema - n, "}"); m += (size_t)snprintf(data + m, sizeof data - m, "}"); }
    REQUIRE(rsbus_schema_register(bus, type, 2147483647, schema) == RSBUS_OK);
    CHECK(rsbus_subscribe(bus, "*", on_seen, &s) > 0);
    freeReplyObject(raw("XADD s:conlong * type %s v 2147483647 data %s", type, data));
    {
        int64_t dl = test_now_ms() + 5000;
        while (raw_int("XLEN {s:conlong}:dlq") < 1 && test_now_ms() < dl) (void)rsbus_poll(bus, 10);
    }
    CHECK_EQ_INT(s.calls, 0);
    REQUIRE(dlq_errors("s:conlong", errs, 2) == 1);
    len = strlen(errs[0]);
    CHECK(len <= RSBUS_REASON_SIZE - 1);
    CHECK(strncmp(errs[0], "malformed: schema: TTTT", 23) == 0);
    CHECK_CONTAINS(errs[0], " v2147483647: field \"...");
    CHECK(ends_with(errs[0], "kkkk.flag\" must be a boolean"));
    rsbus_close(bus);
}

/* ---- allocations ---- */

typedef struct counting { long allocs, frees, reallocs; long long outstanding; int size_mismatch; } counting;
static counting A;
static void *c_alloc(void *user, size_t size) {
    size_t *p = (size_t *)malloc(size + 2 * sizeof(size_t));
    (void)user;
    if (!p) return NULL;
    p[0] = size;
    A.allocs++;
    A.outstanding++;
    return p + 2;
}
static void *c_realloc(void *user, void *ptr, size_t old_size, size_t new_size) {
    size_t *p = ptr ? (size_t *)ptr - 2 : NULL;
    (void)user;
    if (p && p[0] != old_size) A.size_mismatch = 1;
    p = (size_t *)realloc(p, new_size + 2 * sizeof(size_t));
    if (!p) return NULL;
    if (!ptr) A.outstanding++;
    A.reallocs++;
    p[0] = new_size;
    return p + 2;
}
static void c_free(void *user, void *ptr, size_t size) {
    size_t *p = (size_t *)ptr - 2;
    (void)user;
    if (p[0] != size) A.size_mismatch = 1;
    A.frees++;
    A.outstanding--;
    free(p);
}

static int acked_count;
static rsbus_verdict on_ack(const rsbus_msg *m, void *user) { (void)m; (void)user; acked_count++; return RSBUS_ACK; }

TEST(no_allocation_per_event_in_steady_state) {
    rsbus_config c = test_cfg("s:alloc", "g", "c");
    rsbus *bus;
    rsbus_event ok, bad, plain;
    char sid[RSBUS_ID_SIZE];
    int i, round, errors = 0;
    long allocs = 0, reallocs = 0;
    rsbus_stats st;
    memset(&A, 0, sizeof A);
    c.allocator.alloc_fn = c_alloc;
    c.allocator.realloc_fn = c_realloc;
    c.allocator.free_fn = c_free;
    c.log = NULL;
    bus = open_cfg(&c);
    REQUIRE(bus != NULL);
    REQUIRE(rsbus_schema_register(bus, "order.created", 2, "{\"x\": \"any\"}") == RSBUS_OK);
    REQUIRE(rsbus_schema_register(bus, "order.created", 2, order_schema) == RSBUS_OK);   /* replaces, frees */
    for (i = 0; i < 40; i++) {                              /* enough to grow the table a few times */
        char type[16];
        snprintf(type, sizeof type, "other.%d", i);
        REQUIRE(rsbus_schema_register(bus, type, 1, "{\"a\": [{\"b\": \"integer\"}]}") == RSBUS_OK);
    }
    CHECK(rsbus_subscribe(bus, "*", on_ack, NULL) > 0);
    memset(&ok, 0, sizeof ok);
    ok.type = "order.created"; ok.version = 2;
    ok.data = "{\"id\":\"o-2\",\"customer\":{\"id\":7,\"name\":\"N\",\"address\":{\"zip\":\"1\",\"city\":\"C\"}},"
              "\"items\":[{\"sku\":\"a\",\"qty\":1,\"price\":9.5},{\"sku\":\"b\",\"qty\":2}],\"tags\":[\"x\",\"y\"],"
              "\"paid\":false,\"meta\":{\"k\":[1]},\"matrix\":[[1,2.5],[],[-3e-2]]}";
    bad = ok;
    bad.data = "{\"id\":\"o\",\"customer\":{\"id\":7,\"address\":{\"zip\":\"1\"}},\"items\":[{\"sku\":\"a\",\"qty\":1.5}],\"paid\":true}";
    plain = ok;
    plain.type = "no.schema";
    for (round = 0; round < 2; round++) {                   /* round 0 warms up, round 1 counts */
        if (round == 1) { allocs = A.allocs; reallocs = A.reallocs; }
        for (i = 0; i < 200; i++) {
            if (rsbus_publish(bus, &ok, sid) != RSBUS_OK) errors++;
            if (rsbus_publish(bus, &plain, sid) != RSBUS_OK) errors++;
            if (rsbus_publish(bus, &bad, sid) != RSBUS_E_ARG) errors++;
        }
        /* the consume side: matching entries, and ones written past the check (dead-lettered) */
        for (i = 0; i < 20; i++) freeReplyObject(raw("XADD s:alloc * type order.created v 2 data %s", bad.data));
        while (rsbus_poll(bus, -1) > 0) {}
    }
    CHECK_EQ_INT(errors, 0);
    CHECK_EQ_INT(A.allocs - allocs, 0);
    CHECK_EQ_INT(A.reallocs - reallocs, 0);
    rsbus_stats_get(bus, &st);
    CHECK_EQ_INT(st.malformed, 40);
    CHECK_EQ_INT(acked_count, 800);
    rsbus_close(bus);
    CHECK_EQ_INT(A.outstanding, 0);
    CHECK_EQ_INT(A.size_mismatch, 0);
}

int main(void) {
    if (test_redis_start(&srv, NULL) != 0) {
        fprintf(stderr, "cannot start redis-server\n");
        printf("test_schema: 0 passed, 1 failed\n");
        return 1;
    }
    RUN(register_refuses_bad_schemas);
    RUN(publish_checks_fields_by_path);
    RUN(versions_are_independent_and_unregistered_types_pass);
    RUN(reregister_replaces);
    RUN(batch_refusal_names_the_event_and_sends_nothing);
    RUN(long_paths_fit_the_messages);
    RUN(checker_stays_in_bounds);
    RUN(many_schemas);
    RUN(consume_dead_letters_entries_that_do_not_match);
    RUN(consume_reason_fits);
    RUN(no_allocation_per_event_in_steady_state);
    raw_reset();
    test_redis_stop(&srv);
    return test_summary("test_schema");
}
#endif /* RSBUS_NO_SCHEMA */
