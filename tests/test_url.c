#define _POSIX_C_SOURCE 200809L
#define RSBUS_IMPLEMENTATION
#include "../rsbus.h"
#include "test.h"

#include <stdlib.h>

/* url parsing (rsbus__url_parse, rsbus__url_redact), rsbus__parse_i64 and rsbus_config_from_env */

#define PW "s3cr3t-Pw"

static rsbus__url U;     /* big (about 3.5 KiB): one shared instance */
static char M[256];

static rsbus_result parse(const char *url) {
    return rsbus__url_parse(url, &U, M, sizeof M);
}

/* ---- rsbus__parse_i64 ---- */

static int pi64(const char *s, int64_t *v) {
    *v = 12345;
    return rsbus__parse_i64(s, strlen(s), v);
}

TEST(i64_valid) {
    int64_t v;
    CHECK(pi64("0", &v) && v == 0);
    CHECK(pi64("-0", &v) && v == 0);
    CHECK(pi64("1", &v) && v == 1);
    CHECK(pi64("-1", &v) && v == -1);
    CHECK(pi64("01", &v) && v == 1);
    CHECK(pi64("000000000000000000000000000042", &v) && v == 42);
    CHECK(pi64("9223372036854775807", &v) && v == INT64_MAX);
    CHECK(pi64("-9223372036854775808", &v) && v == INT64_MIN);
    CHECK(pi64("9223372036854775806", &v) && v == INT64_MAX - 1);
    CHECK(pi64("-9223372036854775807", &v) && v == INT64_MIN + 1);
    CHECK(pi64("1234567890", &v) && v == 1234567890);
    /* explicit length: only the first n bytes count */
    CHECK(rsbus__parse_i64("12345", 3, &v) && v == 123);
    CHECK(rsbus__parse_i64("1-0", 1, &v) && v == 1);
    CHECK(rsbus__parse_i64("7", 1, NULL));   /* out may be NULL */
}

TEST(i64_invalid) {
    int64_t v;
    CHECK(!pi64("9223372036854775808", &v));     /* INT64_MAX + 1 */
    CHECK(!pi64("-9223372036854775809", &v));    /* INT64_MIN - 1 */
    CHECK(!pi64("99999999999999999999", &v));
    CHECK(!pi64("-99999999999999999999", &v));
    CHECK(!pi64("92233720368547758070", &v));
    CHECK(!pi64("", &v));
    CHECK(!pi64("-", &v));
    CHECK(!pi64("+1", &v));
    CHECK(!pi64(" 1", &v));
    CHECK(!pi64("1 ", &v));
    CHECK(!pi64("1\n", &v));
    CHECK(!pi64("--1", &v));
    CHECK(!pi64("-+1", &v));
    CHECK(!pi64("1-", &v));
    CHECK(!pi64("1.0", &v));
    CHECK(!pi64("1e3", &v));
    CHECK(!pi64("0x10", &v));
    CHECK(!pi64("abc", &v));
    CHECK_EQ_INT(v, 12345);                      /* untouched on failure */
    CHECK(!rsbus__parse_i64("1\0" "2", 3, &v));  /* an embedded NUL inside n is not a digit */
    CHECK(!rsbus__parse_i64(NULL, 0, &v));
    CHECK(!rsbus__parse_i64("5", 0, &v));
}

/* ---- redis:// ---- */

TEST(url_defaults) {
    REQUIRE(parse("redis://127.0.0.1") == RSBUS_OK);
    CHECK_EQ_STR(M, "");
    CHECK_EQ_INT(U.kind, RSBUS__URL_TCP);
    CHECK_EQ_STR(U.host, "127.0.0.1");
    CHECK_EQ_INT(U.port, 6379);
    CHECK_EQ_INT(U.db, 0);
    CHECK_EQ_INT(U.verify, 1);
    CHECK_EQ_INT(U.has_user, 0);
    CHECK_EQ_INT(U.has_password, 0);
    CHECK_EQ_STR(U.user, "");
    CHECK_EQ_STR(U.password, "");
    CHECK_EQ_STR(U.path, "");
    CHECK_EQ_STR(U.ca, "");
    CHECK_EQ_STR(U.redacted, "redis://127.0.0.1:6379");

    REQUIRE(parse(NULL) == RSBUS_OK);            /* NULL: the default url */
    CHECK_EQ_INT(U.kind, RSBUS__URL_TCP);
    CHECK_EQ_STR(U.host, "127.0.0.1");
    CHECK_EQ_INT(U.port, 6379);
    CHECK_EQ_STR(U.redacted, "redis://127.0.0.1:6379");

    REQUIRE(parse("redis://localhost/") == RSBUS_OK);   /* trailing '/': db 0 */
    CHECK_EQ_STR(U.host, "localhost");
    CHECK_EQ_INT(U.db, 0);
    REQUIRE(parse("REDIS://Redis-1.example_net") == RSBUS_OK);   /* scheme in any case */
    CHECK_EQ_INT(U.kind, RSBUS__URL_TCP);
    CHECK_EQ_STR(U.host, "Redis-1.example_net");
}

TEST(url_port_db) {
    REQUIRE(parse("redis://h:6380/2") == RSBUS_OK);
    CHECK_EQ_STR(U.host, "h");
    CHECK_EQ_INT(U.port, 6380);
    CHECK_EQ_INT(U.db, 2);
    CHECK_EQ_STR(U.redacted, "redis://h:6380/2");
    REQUIRE(parse("redis://h:1") == RSBUS_OK);
    CHECK_EQ_INT(U.port, 1);
    REQUIRE(parse("redis://h:65535/") == RSBUS_OK);
    CHECK_EQ_INT(U.port, 65535);
    CHECK_EQ_INT(U.db, 0);
    REQUIRE(parse("redis://h:06380/007") == RSBUS_OK);   /* leading zeros are digits too */
    CHECK_EQ_INT(U.port, 6380);
    CHECK_EQ_INT(U.db, 7);
    REQUIRE(parse("redis://h/2147483647") == RSBUS_OK);
    CHECK_EQ_INT(U.db, INT_MAX);
    CHECK_EQ_STR(U.redacted, "redis://h:6379/2147483647");
    REQUIRE(parse("redis://h/0") == RSBUS_OK);
    CHECK_EQ_INT(U.db, 0);
    CHECK_EQ_STR(U.redacted, "redis://h:6379");
}

TEST(url_userinfo) {
    REQUIRE(parse("redis://:" PW "@127.0.0.1:6379/2") == RSBUS_OK);   /* password only */
    CHECK_EQ_INT(U.has_user, 0);
    CHECK_EQ_INT(U.has_password, 1);
    CHECK_EQ_STR(U.user, "");
    CHECK_EQ_STR(U.password, PW);
    CHECK_EQ_STR(U.host, "127.0.0.1");
    CHECK_EQ_INT(U.db, 2);
    CHECK_EQ_STR(U.redacted, "redis://***@127.0.0.1:6379/2");

    REQUIRE(parse("redis://alice:" PW "@h") == RSBUS_OK);             /* ACL user + password */
    CHECK_EQ_INT(U.has_user, 1);
    CHECK_EQ_INT(U.has_password, 1);
    CHECK_EQ_STR(U.user, "alice");
    CHECK_EQ_STR(U.password, PW);
    CHECK_EQ_STR(U.redacted, "redis://***@h:6379");
    CHECK_NOT_CONTAINS(U.redacted, "alice");

    REQUIRE(parse("redis://alice@h:7000") == RSBUS_OK);               /* user, no password */
    CHECK_EQ_INT(U.has_user, 1);
    CHECK_EQ_INT(U.has_password, 0);
    CHECK_EQ_STR(U.user, "alice");
    CHECK_EQ_STR(U.password, "");
    CHECK_EQ_STR(U.redacted, "redis://***@h:7000");

    REQUIRE(parse("redis://alice:@h") == RSBUS_OK);                   /* empty password = none */
    CHECK_EQ_INT(U.has_user, 1);
    CHECK_EQ_INT(U.has_password, 0);

    REQUIRE(parse("redis://:@h") == RSBUS_OK);                        /* both empty: no credentials */
    CHECK_EQ_INT(U.has_user, 0);
    CHECK_EQ_INT(U.has_password, 0);
    CHECK_EQ_STR(U.redacted, "redis://h:6379");
    REQUIRE(parse("redis://@h") == RSBUS_OK);
    CHECK_EQ_INT(U.has_user, 0);
    CHECK_EQ_INT(U.has_password, 0);
    CHECK_EQ_STR(U.host, "h");
}

TEST(url_percent_and_raw) {
    REQUIRE(parse("redis://us%65r:p%40ss%3Aw%2Fd%25%3F%26@h") == RSBUS_OK);
    CHECK_EQ_STR(U.user, "user");
    CHECK_EQ_STR(U.password, "p@ss:w/d%?&");
    REQUIRE(parse("redis://u:%e2%82%ac@h") == RSBUS_OK);               /* lower-case hex, UTF-8 */
    CHECK_EQ_STR(U.password, "\xe2\x82\xac");
    REQUIRE(parse("redis://u:p@ss@w@h:6380/1") == RSBUS_OK);          /* raw '@': the last one splits */
    CHECK_EQ_STR(U.user, "u");
    CHECK_EQ_STR(U.password, "p@ss@w");
    CHECK_EQ_STR(U.host, "h");
    CHECK_EQ_INT(U.port, 6380);
    CHECK_EQ_INT(U.db, 1);
    REQUIRE(parse("redis://u:a:b:c@h") == RSBUS_OK);                  /* raw ':' in the password */
    CHECK_EQ_STR(U.user, "u");
    CHECK_EQ_STR(U.password, "a:b:c");
    REQUIRE(parse("redis://:" PW "@@h") == RSBUS_OK);
    CHECK_EQ_STR(U.password, PW "@");
    REQUIRE(parse("redis://u:#!$*()[]@h") == RSBUS_OK);               /* other raw punctuation */
    CHECK_EQ_STR(U.password, "#!$*()[]");
    REQUIRE(parse("redis://u:%40@[::1]:6380") == RSBUS_OK);
    CHECK_EQ_STR(U.password, "@");
    CHECK_EQ_STR(U.host, "::1");
}

TEST(url_ipv6) {
    REQUIRE(parse("redis://[::1]:6380/0") == RSBUS_OK);
    CHECK_EQ_STR(U.host, "::1");
    CHECK_EQ_INT(U.port, 6380);
    CHECK_EQ_INT(U.db, 0);
    CHECK_EQ_STR(U.redacted, "redis://[::1]:6380");
    REQUIRE(parse("redis://[2001:DB8::a:1]") == RSBUS_OK);
    CHECK_EQ_STR(U.host, "2001:DB8::a:1");
    CHECK_EQ_INT(U.port, 6379);
    REQUIRE(parse("redis://[::ffff:10.0.0.1]:1/3") == RSBUS_OK);
    CHECK_EQ_STR(U.host, "::ffff:10.0.0.1");
    CHECK_EQ_INT(U.db, 3);
    REQUIRE(parse("redis://:" PW "@[fe80::1%25eth0]:6380") == RSBUS_OK);
    CHECK_EQ_STR(U.host, "fe80::1%eth0");
    CHECK_EQ_STR(U.redacted, "redis://***@[fe80::1%25eth0]:6380");
}

/* ---- rediss:// ---- */

TEST(url_rediss) {
    REQUIRE(parse("rediss://h") == RSBUS_OK);
    CHECK_EQ_INT(U.kind, RSBUS__URL_TLS);
    CHECK_EQ_INT(U.port, 6379);
    CHECK_EQ_INT(U.verify, 1);
    CHECK_EQ_STR(U.ca, "");
    CHECK_EQ_STR(U.redacted, "rediss://h:6379");

    REQUIRE(parse("rediss://u:" PW "@redis.example.com:6380/4?ca=/etc/ssl/ca.pem&capath=/etc/ssl/certs"
                  "&cert=/c%20d/client.crt&key=/k/client.key&sni=cache.example.com&verify=0") == RSBUS_OK);
    CHECK_EQ_STR(U.user, "u");
    CHECK_EQ_STR(U.password, PW);
    CHECK_EQ_STR(U.host, "redis.example.com");
    CHECK_EQ_INT(U.port, 6380);
    CHECK_EQ_INT(U.db, 4);
    CHECK_EQ_STR(U.ca, "/etc/ssl/ca.pem");
    CHECK_EQ_STR(U.capath, "/etc/ssl/certs");
    CHECK_EQ_STR(U.cert, "/c d/client.crt");
    CHECK_EQ_STR(U.key, "/k/client.key");
    CHECK_EQ_STR(U.sni, "cache.example.com");
    CHECK_EQ_INT(U.verify, 0);
    CHECK_EQ_STR(U.redacted, "rediss://***@redis.example.com:6380/4?verify=0");

    /* order free, each optional; query right after the host */
    REQUIRE(parse("rediss://h?verify=1&sni=x&ca=%2Fa%3Db") == RSBUS_OK);
    CHECK_EQ_INT(U.verify, 1);
    CHECK_EQ_STR(U.sni, "x");
    CHECK_EQ_STR(U.ca, "/a=b");
    CHECK_EQ_STR(U.capath, "");
    REQUIRE(parse("rediss://h:1/?key=k&cert=c") == RSBUS_OK);
    CHECK_EQ_STR(U.key, "k");
    CHECK_EQ_STR(U.cert, "c");
    REQUIRE(parse("rediss://h?ca=a=b") == RSBUS_OK);                  /* the value runs to '&' */
    CHECK_EQ_STR(U.ca, "a=b");
    REQUIRE(parse("REDISS://[::1]:6390?capath=/d") == RSBUS_OK);
    CHECK_EQ_STR(U.host, "::1");
    CHECK_EQ_STR(U.capath, "/d");
    CHECK_EQ_STR(U.redacted, "rediss://[::1]:6390");
}

/* ---- unix:// ---- */

TEST(url_unix) {
    REQUIRE(parse("unix:///tmp/r.sock") == RSBUS_OK);
    CHECK_EQ_INT(U.kind, RSBUS__URL_UNIX);
    CHECK_EQ_STR(U.path, "/tmp/r.sock");
    CHECK_EQ_INT(U.db, 0);
    CHECK_EQ_INT(U.has_user, 0);
    CHECK_EQ_INT(U.has_password, 0);
    CHECK_EQ_STR(U.host, "");
    CHECK_EQ_STR(U.redacted, "unix:///tmp/r.sock");

    REQUIRE(parse("unix:///tmp/r.sock?db=1") == RSBUS_OK);
    CHECK_EQ_INT(U.db, 1);
    CHECK_EQ_STR(U.redacted, "unix:///tmp/r.sock?db=1");

    REQUIRE(parse("unix:///tmp/r.sock?user=bob") == RSBUS_OK);
    CHECK_EQ_INT(U.has_user, 1);
    CHECK_EQ_INT(U.has_password, 0);
    CHECK_EQ_STR(U.user, "bob");
    CHECK_EQ_STR(U.redacted, "unix:///tmp/r.sock?user=***");

    REQUIRE(parse("unix:///tmp/r.sock?password=" PW) == RSBUS_OK);
    CHECK_EQ_INT(U.has_user, 0);
    CHECK_EQ_INT(U.has_password, 1);
    CHECK_EQ_STR(U.password, PW);
    CHECK_EQ_STR(U.redacted, "unix:///tmp/r.sock?password=***");

    REQUIRE(parse("unix:///var/run/redis/redis.sock?password=p%26w%3D1&db=15&user=b%40b") == RSBUS_OK);
    CHECK_EQ_STR(U.path, "/var/run/redis/redis.sock");
    CHECK_EQ_INT(U.db, 15);
    CHECK_EQ_STR(U.user, "b@b");
    CHECK_EQ_STR(U.password, "p&w=1");
    CHECK_EQ_STR(U.redacted, "unix:///var/run/redis/redis.sock?db=15&user=***&password=***");
    CHECK_NOT_CONTAINS(U.redacted, "b@b");

    REQUIRE(parse("UNIX:///tmp/a%20b%3Fc.sock?db=0") == RSBUS_OK);   /* path percent-decoded */
    CHECK_EQ_STR(U.path, "/tmp/a b?c.sock");
    CHECK_EQ_STR(U.redacted, "unix:///tmp/a%20b%3Fc.sock");
    REQUIRE(parse("unix:///tmp/a%26b%3Dc.sock") == RSBUS_OK);     /* '&' and '=' only escaped */
    CHECK_EQ_STR(U.path, "/tmp/a&b=c.sock");
    CHECK_EQ_STR(U.redacted, "unix:///tmp/a%26b%3Dc.sock");
}

TEST(url_mem) {   /* mem://[name]: the in-process bus; a name and nothing else */
    static const char *const bad[] = { "mem://u:" PW "@x", "mem://:" PW "@x", "mem://x:6379", "mem://x/0",
                                       "mem://x?db=1", "mem://x%41", "mem:///x", "mem://[::1]" };
    char name[80];
    size_t i;
    REQUIRE(parse("mem://") == RSBUS_OK);
    CHECK_EQ_INT(U.kind, RSBUS__URL_MEM);
    CHECK_EQ_STR(U.host, "");
    CHECK_EQ_STR(U.redacted, "mem://");
    REQUIRE(parse("MEM://orders.test_1-a") == RSBUS_OK);
    CHECK_EQ_INT(U.kind, RSBUS__URL_MEM);
    CHECK_EQ_STR(U.host, "orders.test_1-a");
    CHECK_EQ_STR(U.redacted, "mem://orders.test_1-a");
    CHECK(!U.has_user && !U.has_password && U.db == 0);
    memset(name, 'n', 64); name[64] = 0;
    {
        char url[100];
        snprintf(url, sizeof url, "mem://%s", name);
        CHECK_EQ_INT(parse(url), RSBUS_OK);   /* 64 bytes: the longest name */
        snprintf(url, sizeof url, "mem://%sn", name);
        CHECK_EQ_INT(parse(url), RSBUS_E_ARG);
        CHECK_CONTAINS(M, "longer than 64");
    }
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_EQ_INT(parse(bad[i]), RSBUS_E_ARG);
        CHECK_CONTAINS(M, "mem://");
        CHECK_NOT_CONTAINS(M, PW);
    }
}

TEST(url_lengths) {
    char url[5000], big[600];
    size_t i;
    /* user: 127 fits, 128 does not */
    memset(big, 'u', 127); big[127] = '\0';
    snprintf(url, sizeof url, "redis://%s:x@h", big);
    CHECK(parse(url) == RSBUS_OK);
    CHECK_EQ_INT((long long)strlen(U.user), 127);
    memset(big, 'u', 128); big[128] = '\0';
    snprintf(url, sizeof url, "redis://%s:x@h", big);
    CHECK(parse(url) == RSBUS_E_ARG);
    CHECK_CONTAINS(M, "user too long");
    /* password: 255 fits, 256 does not; escapes count decoded */
    memset(big, 'p', 255); big[255] = '\0';
    snprintf(url, sizeof url, "redis://:%s@h", big);
    CHECK(parse(url) == RSBUS_OK);
    CHECK_EQ_INT((long long)strlen(U.password), 255);
    url[0] = '\0';
    strcat(url, "redis://:");
    for (i = 0; i < 255; i++) strcat(url, "%41");
    strcat(url, "@h");
    CHECK(parse(url) == RSBUS_OK);
    CHECK_EQ_INT((long long)strlen(U.password), 255);
    memset(big, 'p', 256); big[256] = '\0';
    snprintf(url, sizeof url, "redis://:%s@h", big);
    CHECK(parse(url) == RSBUS_E_ARG);
    CHECK_CONTAINS(M, "password too long");
    CHECK_NOT_CONTAINS(M, "ppp");
    /* host: 255 fits, 256 does not */
    memset(big, 'h', 255); big[255] = '\0';
    snprintf(url, sizeof url, "redis://%s:1", big);
    CHECK(parse(url) == RSBUS_OK);
    CHECK_EQ_INT((long long)strlen(U.host), 255);
    CHECK_CONTAINS(U.redacted, ":1");
    memset(big, 'h', 256); big[256] = '\0';
    snprintf(url, sizeof url, "redis://%s:1", big);
    CHECK(parse(url) == RSBUS_E_ARG);
    CHECK_CONTAINS(M, "host too long");
    /* unix path: 107 fits, 108 does not */
    big[0] = '/'; memset(big + 1, 'p', 106); big[107] = '\0';
    snprintf(url, sizeof url, "unix://%s?db=3", big);
    CHECK(parse(url) == RSBUS_OK);
    CHECK_EQ_INT((long long)strlen(U.path), 107);
    CHECK_EQ_INT(U.db, 3);
    big[107] = 'p'; big[108] = '\0';
    snprintf(url, sizeof url, "unix://%s", big);
    CHECK(parse(url) == RSBUS_E_ARG);
    CHECK_CONTAINS(M, "path too long");
    /* the redacted form of the longest path, percent-encoded, still fits */
    url[0] = '\0';
    strcat(url, "unix:///");
    for (i = 0; i < 106; i++) strcat(url, "%20");
    strcat(url, "?db=2147483647&user=u&password=" PW);
    CHECK(parse(url) == RSBUS_OK);
    CHECK_EQ_INT((long long)strlen(U.path), 107);
    CHECK_CONTAINS(U.redacted, "?db=2147483647&user=***&password=***");
    /* ca: 511 fits, 512 does not */
    memset(big, 'c', 511); big[511] = '\0';
    snprintf(url, sizeof url, "rediss://h?ca=%s", big);
    CHECK(parse(url) == RSBUS_OK);
    CHECK_EQ_INT((long long)strlen(U.ca), 511);
    memset(big, 'c', 512); big[512] = '\0';
    snprintf(url, sizeof url, "rediss://h?ca=%s", big);
    CHECK(parse(url) == RSBUS_E_ARG);
    CHECK_EQ_STR(M, "url: 'ca' too long (at most 511 bytes)");
    memset(big, 's', 256); big[256] = '\0';
    snprintf(url, sizeof url, "rediss://h?sni=%s", big);
    CHECK(parse(url) == RSBUS_E_ARG);
    /* the whole url: 4096 bytes at most */
    memset(url, 'c', sizeof url);
    memcpy(url, "rediss://h?ca=", 14);
    url[4096] = '\0';
    CHECK(parse(url) == RSBUS_E_ARG);       /* 4096: accepted by length, refused as a too long ca */
    CHECK_CONTAINS(M, "'ca' too long");
    url[4096] = 'c';
    url[4097] = '\0';
    CHECK(parse(url) == RSBUS_E_ARG);
    CHECK_EQ_STR(M, "url: longer than 4096 bytes");
    url[4097] = 'c';
    url[4999] = '\0';
    CHECK(parse(url) == RSBUS_E_ARG);
    CHECK_EQ_STR(M, "url: longer than 4096 bytes");
}

/* every bad url: RSBUS_E_ARG, "url: " prefix, never the password, never the url */
TEST(url_bad) {
    static const char *const bad[] = {
        "",
        "redis",
        PW,
        ":" PW "@h",
        "redis:/:" PW "@h",
        "http://:" PW "@h",
        "rediss+tls://:" PW "@h",
        "://:" PW "@h",
        "redis://:" PW "@",
        "redis://:" PW "@:6379",
        "redis://:" PW "@/0",
        "redis://",
        "redis://:" PW "@h:0",
        "redis://:" PW "@h:65536",
        "redis://:" PW "@h:99999999999999999999999",
        "redis://:" PW "@h:-1",
        "redis://:" PW "@h:+1",
        "redis://:" PW "@h:1x",
        "redis://:" PW "@h:",
        "redis://:" PW "@h:6379:1",
        "redis://:" PW "@h/x",
        "redis://:" PW "@h/-1",
        "redis://:" PW "@h/+1",
        "redis://:" PW "@h/2147483648",
        "redis://:" PW "@h/1/",
        "redis://:" PW "@h//",
        "redis://:" PW "@h/1#x",
        "redis://:" PW "@h?ca=x",
        "redis://:" PW "@h?verify=0",
        "redis://:" PW "@h/1?db=1",
        "redis://:" PW "@h?password=" PW,
        "redis://:" PW "@h?foo=1",
        "redis://:" PW "@h?",
        "redis://:" PW "@h!",
        "redis://:" PW "@h%41",
        "redis://:" PW "@::1:6379",
        "redis://:" PW "@[::1",
        "redis://:" PW "@[]:1",
        "redis://:" PW "@[::g]",
        "redis://:" PW "@[1:2]",
        "redis://:" PW "@[::1]x",
        "redis://:" PW "@[::1]:",
        "redis://:" PW "@[fe80::1%eth0]",
        "redis://:" PW "@[fe80::1%25]",
        "redis://:" PW "@[fe80::1%25e/h]",
        "redis://:" PW "%@h",
        "redis://:" PW "%4@h",
        "redis://:" PW "%zz@h",
        "redis://:" PW "%00@h",
        "redis://%@h",
        "redis://:" PW "@h\t",
        "redis://:" PW "@h\n",
        "redis://:" PW "@h\r\n",
        "redis://:s3cr3t Pw@h",
        " redis://:" PW "@h",
        "redis://:" PW "\x7f@h",
        "redis://:" PW "\xc3\xa9@h",
        "redis://:" PW "/x@h",
        "rediss://:" PW "@h?verify=2",
        "rediss://:" PW "@h?verify=",
        "rediss://:" PW "@h?verify=01",
        "rediss://:" PW "@h?ca=",
        "rediss://:" PW "@h?ca",
        "rediss://:" PW "@h?ca=a&ca=b",
        "rediss://:" PW "@h?cert=c",
        "rediss://:" PW "@h?key=k",
        "rediss://:" PW "@h?&",
        "rediss://:" PW "@h?ca=a&",
        "rediss://:" PW "@h?&ca=a",
        "rediss://:" PW "@h?ca=a&&sni=b",
        "rediss://:" PW "@h?CA=a",
        "rediss://:" PW "@h?ca=%zz",
        "rediss://:" PW "@h?ca=%00",
        "rediss://:" PW "@h?db=1",
        "rediss://:" PW "@h?user=u",
        "rediss://:" PW "@h?" PW "=1",
        "rediss://:" PW "@h?foo",
        "unix://",
        "unix:///",
        "unix:///tmp/?db=1",
        "unix:///tmp/r.sock&password=" PW,
        "unix:///tmp/r.sock&db=1",
        "unix://?password=" PW,
        "unix://h/tmp/r.sock?password=" PW,
        "unix://:" PW "@/tmp/r.sock",
        "unix:tmp/r.sock?password=" PW,
        "unix://tmp/r.sock?password=" PW,
        "unix:///tmp/r.sock?password=" PW "&ca=x",
        "unix:///tmp/r.sock?password=" PW "&verify=0",
        "unix:///tmp/r.sock?password=" PW "&db=x",
        "unix:///tmp/r.sock?password=" PW "&db=-1",
        "unix:///tmp/r.sock?password=" PW "&db=2147483648",
        "unix:///tmp/r.sock?password=" PW "&db=",
        "unix:///tmp/r.sock?password=" PW "&password=x",
        "unix:///tmp/r.sock?password=" PW "&foo=1",
        "unix:///tmp/r.sock?" PW,
        "unix:///tmp/r.sock?password=" PW "%",
        "unix:///tmp/r.sock?password=" PW "%0",
        "unix:///tmp/r.sock?password=" PW "&user=%00",
        "unix:///tmp/r.sock?password=" PW "&",
        "unix:///tmp/r.sock?",
        "unix:///tmp/r%01.sock?password=" PW,
        "unix:///tmp/r%00.sock?password=" PW,
        "unix:///tmp/r.sock?password=" PW " ",
    };
    size_t i;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rsbus_result r;
        memset(M, 'X', sizeof M);
        r = parse(bad[i]);
        if (r != RSBUS_E_ARG) {
            char w[600];
            snprintf(w, sizeof w, "bad[%u] \"%s\" gave %d", (unsigned)i, bad[i], (int)r);
            test__fail(__FILE__, __LINE__, w);
            continue;
        }
        CHECK(memchr(M, '\0', sizeof M) != NULL);
        CHECK(strncmp(M, "url: ", 5) == 0);
        CHECK(strlen(M) > 6);
        CHECK_NOT_CONTAINS(M, "s3cr3t");
        CHECK_NOT_CONTAINS(M, "Pw");
        if (strlen(bad[i]) > 9) CHECK_NOT_CONTAINS(M, bad[i]);
    }
}

TEST(url_messages) {
    CHECK(parse("") == RSBUS_E_ARG);
    CHECK_EQ_STR(M, "url: empty");
    CHECK(parse("http://h") == RSBUS_E_ARG);
    CHECK_CONTAINS(M, "unknown scheme");
    CHECK(parse("h:6379") == RSBUS_E_ARG);
    CHECK_CONTAINS(M, "no scheme");
    CHECK(parse("redis://:" PW "@h:0") == RSBUS_E_ARG);
    CHECK_CONTAINS(M, "bad port");
    CHECK(parse("redis://h/x") == RSBUS_E_ARG);
    CHECK_CONTAINS(M, "bad db");
    CHECK(parse("redis://:" PW "@") == RSBUS_E_ARG);
    CHECK_CONTAINS(M, "empty host");
    CHECK(parse("redis://h?ca=x") == RSBUS_E_ARG);
    CHECK_EQ_STR(M, "url: 'ca' needs rediss://");
    CHECK(parse("unix:///s?sni=x") == RSBUS_E_ARG);
    CHECK_EQ_STR(M, "url: 'sni' needs rediss://");
    CHECK(parse("redis://h?db=1") == RSBUS_E_ARG);
    CHECK_CONTAINS(M, "'db' is only for unix://");
    CHECK(parse("rediss://h?password=" PW) == RSBUS_E_ARG);
    CHECK_CONTAINS(M, "'password' is only for unix://");
    CHECK(parse("redis://h?x=1") == RSBUS_E_ARG);
    CHECK_EQ_STR(M, "url: redis:// takes no query parameters");
    CHECK(parse("rediss://h?x=1") == RSBUS_E_ARG);
    CHECK_CONTAINS(M, "unknown query parameter");
    CHECK(parse("unix:///s?x=1") == RSBUS_E_ARG);
    CHECK_CONTAINS(M, "unknown query parameter");
    CHECK(parse("unix:///s?db=1&db=2") == RSBUS_E_ARG);
    CHECK_EQ_STR(M, "url: 'db' given twice");
    CHECK(parse("rediss://h?verify=yes") == RSBUS_E_ARG);
    CHECK_EQ_STR(M, "url: 'verify' must be 0 or 1");
    CHECK(parse("rediss://h?cert=c") == RSBUS_E_ARG);
    CHECK_EQ_STR(M, "url: cert and key go together");
    CHECK(parse("redis://:a%zz@h") == RSBUS_E_ARG);
    CHECK_CONTAINS(M, "password has a bad percent-escape");
    CHECK(parse("redis://a b@h") == RSBUS_E_ARG);
    CHECK_CONTAINS(M, "space, control or non-ASCII");
    CHECK(parse("unix://h/s") == RSBUS_E_ARG);
    CHECK_CONTAINS(M, "absolute path");
    /* msg may be NULL or tiny: still refused, still terminated */
    CHECK(rsbus__url_parse("redis://h:0", &U, NULL, 0) == RSBUS_E_ARG);
    M[0] = 'Z';
    CHECK(rsbus__url_parse("redis://h:0", &U, M, 0) == RSBUS_E_ARG);
    CHECK(M[0] == 'Z');
    CHECK(rsbus__url_parse("redis://h:0", &U, M, 6) == RSBUS_E_ARG);
    CHECK_EQ_STR(M, "url: ");
    CHECK(rsbus__url_parse("redis://h", NULL, M, sizeof M) == RSBUS_E_ARG);
    /* success clears msg */
    strcpy(M, "old");
    CHECK(parse("redis://h") == RSBUS_OK);
    CHECK_EQ_STR(M, "");
}

TEST(url_redact_direct) {
    rsbus__url u;
    char out[64];
    memset(&u, 0, sizeof u);
    u.kind = RSBUS__URL_TCP;
    strcpy(u.host, "10.1.2.3");
    u.port = 6379;
    strcpy(u.user, "alice");
    strcpy(u.password, PW);
    u.has_password = 1;
    rsbus__url_redact(&u, out, sizeof out);
    CHECK_EQ_STR(out, "redis://***@10.1.2.3:6379");
    u.has_password = 0;
    rsbus__url_redact(&u, out, sizeof out);     /* has_* decide, not the buffers */
    CHECK_EQ_STR(out, "redis://10.1.2.3:6379");
    u.has_user = 1;
    u.db = 9;
    rsbus__url_redact(&u, out, sizeof out);
    CHECK_EQ_STR(out, "redis://***@10.1.2.3:6379/9");
    rsbus__url_redact(&u, out, 12);             /* truncated, terminated */
    CHECK_EQ_STR(out, "redis://***");
    out[0] = 'Q';
    rsbus__url_redact(&u, out, 0);
    CHECK(out[0] == 'Q');
    u.kind = RSBUS__URL_TLS;
    u.verify = 0;
    u.db = 0;
    rsbus__url_redact(&u, out, sizeof out);
    CHECK_EQ_STR(out, "rediss://***@10.1.2.3:6379?verify=0");
    u.kind = RSBUS__URL_UNIX;
    strcpy(u.path, "/run/r\xc3\xa9.sock");
    rsbus__url_redact(&u, out, sizeof out);
    CHECK_EQ_STR(out, "unix:///run/r%C3%A9.sock?user=***");
}

/* ---- redis+sentinel:// and redis+cluster:// ---- */

TEST(url_sentinel) {
    REQUIRE(parse("redis+sentinel://10.0.0.1,10.0.0.2:26380,[::1]:5000/mymaster") == RSBUS_OK);
    CHECK_EQ_STR(M, "");
    CHECK_EQ_INT(U.kind, RSBUS__URL_TCP);
    CHECK_EQ_INT(U.sentinel, 1);
    CHECK_EQ_INT(U.cluster, 0);
    CHECK_EQ_INT(U.nseeds, 3);
    CHECK_EQ_STR(U.seeds[0].host, "10.0.0.1");
    CHECK_EQ_INT(U.seeds[0].port, 26379);                 /* a sentinel's default port */
    CHECK_EQ_STR(U.seeds[1].host, "10.0.0.2");
    CHECK_EQ_INT(U.seeds[1].port, 26380);
    CHECK_EQ_STR(U.seeds[2].host, "::1");
    CHECK_EQ_INT(U.seeds[2].port, 5000);
    CHECK_EQ_STR(U.host, "10.0.0.1");                     /* host/port: the first seed */
    CHECK_EQ_INT(U.port, 26379);
    CHECK_EQ_STR(U.master_name, "mymaster");
    CHECK_EQ_INT(U.db, 0);
    CHECK_EQ_INT(U.has_sentinel_user + U.has_sentinel_password + U.has_user + U.has_password, 0);
    CHECK_EQ_STR(U.redacted, "redis+sentinel://10.0.0.1:26379,10.0.0.2:26380,[::1]:5000/mymaster");

    REQUIRE(parse("redis+sentinel://alice:" PW "@h1:1,h2:2/m%2Dx/3?sentinel_user=sent%40x&sentinel_password=S%26P"
                  PW) == RSBUS_OK);
    CHECK_EQ_STR(U.user, "alice");
    CHECK_EQ_STR(U.password, PW);
    CHECK_EQ_STR(U.master_name, "m-x");
    CHECK_EQ_INT(U.db, 3);
    CHECK_EQ_STR(U.sentinel_user, "sent@x");
    CHECK_EQ_STR(U.sentinel_password, "S&P" PW);
    CHECK_EQ_INT(U.has_sentinel_user, 1);
    CHECK_EQ_INT(U.has_sentinel_password, 1);
    CHECK_EQ_STR(U.redacted, "redis+sentinel://***@h1:1,h2:2/m-x/3?sentinel_user=***&sentinel_password=***");
    CHECK(!strstr(U.redacted, PW) && !strstr(U.redacted, "alice") && !strstr(U.redacted, "sent@") && !strstr(U.redacted, "sent%40"));

    /* a password alone, one sentinel, trailing "/" for db 0, scheme in capitals */
    REQUIRE(parse("REDIS+SENTINEL://h/m/?sentinel_password=" PW) == RSBUS_OK);
    CHECK_EQ_INT(U.nseeds, 1);
    CHECK_EQ_INT(U.db, 0);
    CHECK_EQ_INT(U.has_sentinel_user, 0);
    CHECK_EQ_STR(U.redacted, "redis+sentinel://h:26379/m?sentinel_password=***");

    REQUIRE(parse("rediss+sentinel://:" PW "@h:26379/m?sentinel_password=x&ca=/ca.pem&verify=0&sni=redis.example")
            == RSBUS_OK);
    CHECK_EQ_INT(U.kind, RSBUS__URL_TLS);
    CHECK_EQ_INT(U.sentinel, 1);
    CHECK_EQ_STR(U.ca, "/ca.pem");
    CHECK_EQ_STR(U.sni, "redis.example");
    CHECK_EQ_INT(U.verify, 0);
    CHECK_EQ_STR(U.redacted, "rediss+sentinel://***@h:26379/m?verify=0&sentinel_password=***");

    /* sixteen hosts are fine */
    REQUIRE(parse("redis+sentinel://a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p/mm") == RSBUS_OK);
    CHECK_EQ_INT(U.nseeds, 16);
    CHECK_EQ_STR(U.seeds[15].host, "p");
}

TEST(url_cluster) {
    REQUIRE(parse("redis+cluster://:" PW "@127.0.0.1:7000,127.0.0.1:7001,[fe80::1%25eth0]") == RSBUS_OK);
    CHECK_EQ_INT(U.kind, RSBUS__URL_TCP);
    CHECK_EQ_INT(U.cluster, 1);
    CHECK_EQ_INT(U.sentinel, 0);
    CHECK_EQ_INT(U.nseeds, 3);
    CHECK_EQ_INT(U.seeds[1].port, 7001);
    CHECK_EQ_STR(U.seeds[2].host, "fe80::1%eth0");
    CHECK_EQ_INT(U.seeds[2].port, 6379);                  /* a cluster node's default port */
    CHECK_EQ_STR(U.host, "127.0.0.1");
    CHECK_EQ_INT(U.port, 7000);
    CHECK_EQ_STR(U.password, PW);
    CHECK_EQ_STR(U.master_name, "");
    CHECK_EQ_STR(U.redacted, "redis+cluster://***@127.0.0.1:7000,127.0.0.1:7001,[fe80::1%25eth0]:6379");
    REQUIRE(parse("redis+cluster://h:7000/0") == RSBUS_OK);
    CHECK_EQ_INT(U.db, 0);
    CHECK_EQ_STR(U.redacted, "redis+cluster://h:7000");
    REQUIRE(parse("redis+cluster://h/") == RSBUS_OK);
    REQUIRE(parse("rediss+cluster://h:7000,h:7001?ca=/ca.pem&cert=/c&key=/k") == RSBUS_OK);
    CHECK_EQ_INT(U.kind, RSBUS__URL_TLS);
    CHECK_EQ_INT(U.cluster, 1);
    CHECK_EQ_STR(U.cert, "/c");
    CHECK_EQ_STR(U.redacted, "rediss+cluster://h:7000,h:7001");
    /* the plain forms fill one seed */
    REQUIRE(parse("redis://h:6380") == RSBUS_OK);
    CHECK_EQ_INT(U.nseeds, 1);
    CHECK_EQ_STR(U.seeds[0].host, "h");
    CHECK_EQ_INT(U.seeds[0].port, 6380);
    CHECK_EQ_INT(U.cluster + U.sentinel, 0);
    REQUIRE(parse("unix:///tmp/s") == RSBUS_OK);
    CHECK_EQ_INT(U.nseeds, 0);
}

TEST(url_multi_bad) {
    static const struct { const char *url, *why; } bad[] = {
        { "redis+sentinel://h", "needs the master's name" },
        { "redis+sentinel://h/", "empty master name" },
        { "redis+sentinel://h?sentinel_password=x", "needs the master's name" },
        { "redis+sentinel://h//1", "empty master name" },
        { "redis+sentinel://h/m/x", "bad db" },
        { "redis+sentinel://h/m/1/2", "bad db" },
        { "redis+sentinel://h/m%20x", "master name: printable" },
        { "redis+sentinel://h/m%00", "bad percent-escape" },
        { "redis+sentinel://h/msentinel_password=" PW, "'&' or '=' in the master name" },
        { "redis+sentinel://h/m&x", "'&' or '=' in the master name" },
        { "redis+sentinel://h,/m", "empty host in the host list" },
        { "redis+sentinel://,h/m", "empty host in the host list" },
        { "redis+sentinel://h,,h2/m", "empty host in the host list" },
        { "redis+sentinel://h:0/m", "bad port" },
        { "redis+sentinel://h:26379:1/m", "bad port" },
        { "redis+sentinel://[::1/m", "without ']'" },
        { "redis+sentinel://a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q/m", "more than 16 hosts" },
        { "redis+sentinel://h/m?x=1", "unknown query parameter" },
        { "redis+sentinel://h/m?ca=x", "'ca' needs rediss://" },
        { "redis+sentinel://h/m?sentinel_password=", "'sentinel_password' needs a value" },
        { "redis+sentinel://h/m?sentinel_user=a&sentinel_user=b", "'sentinel_user' given twice" },
        { "redis+sentinel://h/m?sentinel_password=%zz", "'sentinel_password' has a bad percent-escape" },
        { "redis+sentinel://h/m?db=1", "'db' is only for unix://" },
        { "redis+cluster://h/1", "has only db 0" },
        { "redis+cluster://h:7000,h:7001/15", "has only db 0" },
        { "redis+cluster://h/m", "bad db" },
        { "redis+cluster://h?x=1", "redis+cluster:// takes no query parameters" },
        { "redis+cluster://h?sentinel_password=" PW, "'sentinel_password' is only for redis+sentinel://" },
        { "rediss+cluster://h?cert=c", "cert and key go together" },
        { "redis://h?sentinel_user=u", "'sentinel_user' is only for redis+sentinel://" },
        { "redis://h1,h2", "bad character in host" },
        { "redis+tls://h", "unknown scheme" },
        { "redis+sentinel:/h/m", "no scheme" },
        { "unix+sentinel:///tmp/s", "unknown scheme" },
    };
    size_t i;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        strcpy(M, "unchanged");
        if (parse(bad[i].url) != RSBUS_E_ARG) { test__fail(__FILE__, __LINE__, bad[i].url); continue; }
        if (strncmp(M, "url: ", 5) != 0 || !strstr(M, bad[i].why)) {
            fprintf(stderr, "    %s: message '%s' lacks '%s'\n", bad[i].url, M, bad[i].why);
            test__fail(__FILE__, __LINE__, bad[i].url);
        }
        CHECK(!strstr(M, PW));
    }
}

/* random edits of sentinel and cluster urls: no crash, no password in a message or the redacted form */
TEST(url_multi_mutations) {
    static const char *const seeds[] = {
        "redis+sentinel://u:" PW "@[::1]:26379,10.0.0.2/master-a/2?sentinel_user=su&sentinel_password=" PW,
        "rediss+sentinel://:" PW "@h:1,h:2/mm?sentinel_password=" PW "&ca=/c&verify=0",
        "redis+cluster://:" PW "@h1:7000,h2:7001,[::1]:7002",
    };
    static const char alphabet[] = "%@:/?&=[],#0123456789aAfFzZ.-_+ \x01\xff";
    uint32_t rng = 777u;
    int i, bad = 0;
    for (i = 0; i < 30000; i++) {
        char url[300];
        int k, edits;
        rsbus_result r;
        strcpy(url, seeds[i % 3]);
        rng = rng * 1103515245u + 12345u;
        edits = 1 + (int)((rng >> 16) % 3);
        for (k = 0; k < edits; k++) {
            size_t len = strlen(url), pos;
            rng = rng * 1103515245u + 12345u;
            pos = (size_t)((rng >> 8) % len);
            rng = rng * 1103515245u + 12345u;
            if ((rng >> 16) % 2) url[pos] = alphabet[(rng >> 4) % (sizeof alphabet - 1)];
            else memmove(url + pos, url + pos + 1, len - pos);
        }
        memset(M, 'X', sizeof M);
        r = parse(url);
        if (r != RSBUS_OK && r != RSBUS_E_ARG) bad++;
        if (!memchr(M, '\0', sizeof M)) { bad++; continue; }
        if (r == RSBUS_E_ARG && strstr(M, PW)) { bad++; fprintf(stderr, "    msg: %s\n", url); }
        if (r == RSBUS_OK) {
            int s, was = bad, pw_host = 0;
            for (s = 0; s < U.nseeds && s < RSBUS__MAX_SEEDS; s++) pw_host |= strstr(U.seeds[s].host, "3cr3t") != NULL;
            if (pw_host) continue;   /* an edit made the password part of a host name: a host is shown */
            if (U.has_password && strlen(U.password) >= 6 && strstr(U.redacted, U.password)) bad++;
            if (U.has_sentinel_password && strlen(U.sentinel_password) >= 6 && strstr(U.redacted, U.sentinel_password))
                bad++;
            if (U.nseeds < 1 || U.nseeds > RSBUS__MAX_SEEDS) bad++;
            for (s = 0; s < U.nseeds && s < RSBUS__MAX_SEEDS; s++)
                if (U.seeds[s].port < 1 || U.seeds[s].port > 65535 || !U.seeds[s].host[0]) bad++;
            if (U.sentinel && !U.master_name[0]) bad++;
            if (U.cluster && U.db != 0) bad++;
            if (bad != was) fprintf(stderr, "    %s -> %s\n", url, U.redacted);
        }
    }
    CHECK_EQ_INT(bad, 0);
}

/* ---- rsbus_config_from_env ---- */

static const char *const FIELDS[] = {
    "URL", "STREAM", "GROUP", "CONSUMER", "GROUP_START", "TENANT", "MAX_LEN", "DLQ_MAX_LEN", "BATCH_SIZE",
    "BLOCK_MS", "MAX_RETRIES", "RETRY_BACKOFF_MS", "RETRY_BACKOFF_MAX_MS", "CLAIM_IDLE_MS", "CLAIM_INTERVAL_MS",
    "CONNECT_TIMEOUT_MS", "IO_TIMEOUT_MS", "REQUIRE_TLS", "PUBLISH_ONLY", "MAX_EVENT_BYTES", "LOG_LEVEL",
    "DEDUPE_TTL_MS", "SPOOL_PATH", "SPOOL_MAX_BYTES", "SPOOL_FSYNC", "PUBLISH_WAIT_REPLICAS", "PUBLISH_WAIT_MS",
};

static void env_clear(const char *prefix) {
    size_t i;
    char name[128];
    for (i = 0; i < sizeof FIELDS / sizeof FIELDS[0]; i++) {
        snprintf(name, sizeof name, "%s%s", prefix, FIELDS[i]);
        unsetenv(name);
    }
}

static void env_set(const char *name, const char *value) {
    setenv(name, value, 1);
}

/* a config with every scalar field set to something recognisable */
static void cfg_fill(rsbus_config *c) {
    memset(c, 0, sizeof *c);
    c->url = "redis://orig";
    c->stream = "orig-stream";
    c->group = "orig-group";
    c->consumer = "orig-consumer";
    c->group_start = "0";
    c->tenant = "orig-tenant";
    c->max_len = 11;
    c->dlq_max_len = 12;
    c->batch_size = 13;
    c->block_ms = 14;
    c->max_retries = 15;
    c->retry_backoff_ms = 16;
    c->retry_backoff_max_ms = 17;
    c->claim_idle_ms = 18;
    c->claim_interval_ms = 19;
    c->connect_timeout_ms = 20;
    c->io_timeout_ms = 21;
    c->require_tls = 1;
    c->publish_only = 1;
    c->max_event_bytes = 22;
    c->log_level = RSBUS_LOG_INFO;
    c->dedupe_ttl_ms = 23;
    c->spool_path = "/orig/spool";
    c->spool_max_bytes = 24;
    c->spool_fsync = 1;
    c->publish_wait_replicas = 25;
    c->publish_wait_ms = 26;
}

TEST(env_unset_leaves_fields) {
    rsbus_config c, before;
    rsbus_error err;
    env_clear("RSBUS_");
    cfg_fill(&c);
    before = c;
    err.code = RSBUS_E_IO;
    strcpy(err.msg, "stale");
    CHECK_EQ_INT(rsbus_config_from_env(&c, NULL, &err), RSBUS_OK);
    CHECK(memcmp(&c, &before, sizeof c) == 0);
    CHECK_EQ_INT(err.code, RSBUS_OK);
    CHECK_EQ_STR(err.msg, "");
    memset(&c, 0, sizeof c);
    memset(&before, 0, sizeof before);
    CHECK_EQ_INT(rsbus_config_from_env(&c, NULL, NULL), RSBUS_OK);   /* err may be NULL */
    CHECK(memcmp(&c, &before, sizeof c) == 0);
}

TEST(env_every_field) {
    rsbus_config c;
    rsbus_error err;
    env_clear("RSBUS_");
    env_set("RSBUS_URL", "redis://:" PW "@10.0.0.5:6380/3");
    env_set("RSBUS_STREAM", "orders");
    env_set("RSBUS_GROUP", "billing");
    env_set("RSBUS_CONSUMER", "worker-1");
    env_set("RSBUS_GROUP_START", "$");
    env_set("RSBUS_TENANT", "acme");
    env_set("RSBUS_MAX_LEN", "-1");
    env_set("RSBUS_DLQ_MAX_LEN", "9223372036854775807");
    env_set("RSBUS_BATCH_SIZE", "250");
    env_set("RSBUS_BLOCK_MS", "0");
    env_set("RSBUS_MAX_RETRIES", "-2147483648");
    env_set("RSBUS_RETRY_BACKOFF_MS", "2147483647");
    env_set("RSBUS_RETRY_BACKOFF_MAX_MS", "007");
    env_set("RSBUS_CLAIM_IDLE_MS", "1000");
    env_set("RSBUS_CLAIM_INTERVAL_MS", "2000");
    env_set("RSBUS_CONNECT_TIMEOUT_MS", "3000");
    env_set("RSBUS_IO_TIMEOUT_MS", "4000");
    env_set("RSBUS_REQUIRE_TLS", "TRUE");
    env_set("RSBUS_PUBLISH_ONLY", "on");
    env_set("RSBUS_MAX_EVENT_BYTES", "1048576");
    env_set("RSBUS_LOG_LEVEL", "debug");
    env_set("RSBUS_DEDUPE_TTL_MS", "-9223372036854775808");
    env_set("RSBUS_SPOOL_PATH", "/var/spool/rsbus");
    env_set("RSBUS_SPOOL_MAX_BYTES", "67108864");
    env_set("RSBUS_SPOOL_FSYNC", "1");
    env_set("RSBUS_PUBLISH_WAIT_REPLICAS", "2");
    env_set("RSBUS_PUBLISH_WAIT_MS", "250");
    memset(&c, 0, sizeof c);
    REQUIRE(rsbus_config_from_env(&c, NULL, &err) == RSBUS_OK);
    CHECK_EQ_STR(c.url, "redis://:" PW "@10.0.0.5:6380/3");
    CHECK(c.url == getenv("RSBUS_URL"));                  /* points into the environment */
    CHECK_EQ_STR(c.stream, "orders");
    CHECK(c.stream == getenv("RSBUS_STREAM"));
    CHECK_EQ_STR(c.group, "billing");
    CHECK_EQ_STR(c.consumer, "worker-1");
    CHECK_EQ_STR(c.group_start, "$");
    CHECK_EQ_STR(c.tenant, "acme");
    CHECK(c.max_len == -1);
    CHECK(c.dlq_max_len == INT64_MAX);
    CHECK_EQ_INT(c.batch_size, 250);
    CHECK_EQ_INT(c.block_ms, 0);
    CHECK_EQ_INT(c.max_retries, INT_MIN);
    CHECK_EQ_INT(c.retry_backoff_ms, INT_MAX);
    CHECK_EQ_INT(c.retry_backoff_max_ms, 7);
    CHECK_EQ_INT(c.claim_idle_ms, 1000);
    CHECK_EQ_INT(c.claim_interval_ms, 2000);
    CHECK_EQ_INT(c.connect_timeout_ms, 3000);
    CHECK_EQ_INT(c.io_timeout_ms, 4000);
    CHECK_EQ_INT(c.require_tls, 1);
    CHECK_EQ_INT(c.publish_only, 1);
    CHECK(c.max_event_bytes == 1048576u);
    CHECK_EQ_INT(c.log_level, RSBUS_LOG_DEBUG);
    CHECK(c.dedupe_ttl_ms == INT64_MIN);
    CHECK_EQ_STR(c.spool_path, "/var/spool/rsbus");
    CHECK(c.spool_max_bytes == 67108864);
    CHECK_EQ_INT(c.spool_fsync, 1);
    CHECK_EQ_INT(c.publish_wait_replicas, 2);
    CHECK_EQ_INT(c.publish_wait_ms, 250);
    CHECK(c.allocator.alloc_fn == NULL && c.log == NULL);   /* non-scalar fields untouched */
    env_clear("RSBUS_");
}

TEST(env_strings_empty) {
    rsbus_config c;
    cfg_fill(&c);
    env_clear("RSBUS_");
    env_set("RSBUS_STREAM", "");
    env_set("RSBUS_URL", "");            /* kept as ""; rsbus_open refuses it */
    env_set("RSBUS_SPOOL_PATH", "");
    REQUIRE(rsbus_config_from_env(&c, NULL, NULL) == RSBUS_OK);
    CHECK_EQ_STR(c.stream, "");
    CHECK_EQ_STR(c.url, "");
    CHECK_EQ_STR(c.spool_path, "");
    CHECK_EQ_STR(c.group, "orig-group");
    env_clear("RSBUS_");
}

TEST(env_booleans_and_levels) {
    static const char *const yes[] = { "1", "true", "TRUE", "True", "yes", "YES", "on", "On" };
    static const char *const no[] = { "0", "false", "FALSE", "no", "No", "off", "OFF" };
    static const struct { const char *v; rsbus_log_level l; } levels[] = {
        { "0", RSBUS_LOG_DEFAULT }, { "1", RSBUS_LOG_ERROR }, { "2", RSBUS_LOG_WARN }, { "3", RSBUS_LOG_INFO },
        { "4", RSBUS_LOG_DEBUG }, { "error", RSBUS_LOG_ERROR }, { "WARN", RSBUS_LOG_WARN },
        { "Info", RSBUS_LOG_INFO }, { "DEBUG", RSBUS_LOG_DEBUG },
    };
    rsbus_config c;
    size_t i;
    env_clear("RSBUS_");
    for (i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        memset(&c, 0, sizeof c);
        env_set("RSBUS_PUBLISH_ONLY", yes[i]);
        CHECK(rsbus_config_from_env(&c, NULL, NULL) == RSBUS_OK);
        CHECK_EQ_INT(c.publish_only, 1);
    }
    for (i = 0; i < sizeof no / sizeof no[0]; i++) {
        c.require_tls = 1;
        env_set("RSBUS_REQUIRE_TLS", no[i]);
        CHECK(rsbus_config_from_env(&c, NULL, NULL) == RSBUS_OK);
        CHECK_EQ_INT(c.require_tls, 0);
    }
    env_clear("RSBUS_");
    for (i = 0; i < sizeof levels / sizeof levels[0]; i++) {
        c.log_level = RSBUS_LOG_WARN;
        env_set("RSBUS_LOG_LEVEL", levels[i].v);
        CHECK(rsbus_config_from_env(&c, NULL, NULL) == RSBUS_OK);
        CHECK_EQ_INT(c.log_level, levels[i].l);
    }
    env_clear("RSBUS_");
}

/* bad values: RSBUS_E_ARG, the message starts with the variable's name, never echoes the value,
   and the config is unchanged although other variables were fine */
TEST(env_bad_values) {
    static const struct { const char *var, *value, *why; } bad[] = {
        { "RSBUS_BATCH_SIZE", "12abc", "not an integer" },
        { "RSBUS_BATCH_SIZE", "", "not an integer" },
        { "RSBUS_BATCH_SIZE", " 12", "not an integer" },
        { "RSBUS_BATCH_SIZE", "12 ", "not an integer" },
        { "RSBUS_BATCH_SIZE", "+12", "not an integer" },
        { "RSBUS_BATCH_SIZE", "-", "not an integer" },
        { "RSBUS_BATCH_SIZE", "1.5", "not an integer" },
        { "RSBUS_BATCH_SIZE", "0x10", "not an integer" },
        { "RSBUS_BATCH_SIZE", "2147483648", "out of range" },
        { "RSBUS_MAX_RETRIES", "-2147483649", "out of range" },
        { "RSBUS_IO_TIMEOUT_MS", "99999999999999999999999", "out of range" },
        { "RSBUS_SPOOL_FSYNC", "yes", "not an integer" },
        { "RSBUS_MAX_LEN", "9223372036854775808", "out of range" },
        { "RSBUS_DLQ_MAX_LEN", "-9223372036854775809", "out of range" },
        { "RSBUS_DEDUPE_TTL_MS", "1h", "not an integer" },
        { "RSBUS_SPOOL_MAX_BYTES", "64MiB", "not an integer" },
        { "RSBUS_MAX_EVENT_BYTES", "-1", "negative" },
        { "RSBUS_MAX_EVENT_BYTES", "99999999999999999999999", "out of range" },
        { "RSBUS_MAX_EVENT_BYTES", "1k", "not an integer" },
        { "RSBUS_REQUIRE_TLS", "2", "not a boolean" },
        { "RSBUS_REQUIRE_TLS", "maybe", "not a boolean" },
        { "RSBUS_PUBLISH_ONLY", "", "not a boolean" },
        { "RSBUS_PUBLISH_ONLY", "true ", "not a boolean" },
        { "RSBUS_LOG_LEVEL", "5", "not a log level" },
        { "RSBUS_LOG_LEVEL", "verbose", "not a log level" },
        { "RSBUS_LOG_LEVEL", "-1", "not a log level" },
        { "RSBUS_LOG_LEVEL", "", "not a log level" },
        { "RSBUS_URL", "redis://:" PW "@h:0", "bad port" },
        { "RSBUS_URL", "http://:" PW "@h", "unknown scheme" },
        { "RSBUS_URL", "redis://u:" PW "@h?ca=x", "needs rediss://" },
    };
    rsbus_config c, before;
    rsbus_error err;
    size_t i;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char want[128];
        env_clear("RSBUS_");
        /* fields read before and after the bad one are fine */
        env_set("RSBUS_STREAM", "new-stream");
        env_set("RSBUS_SPOOL_FSYNC", "0");
        env_set("RSBUS_TENANT", "new-tenant");
        env_set(bad[i].var, bad[i].value);
        cfg_fill(&c);
        before = c;
        memset(&err, 0, sizeof err);
        CHECK_EQ_INT(rsbus_config_from_env(&c, NULL, &err), RSBUS_E_ARG);
        CHECK_EQ_INT(err.code, RSBUS_E_ARG);
        snprintf(want, sizeof want, "%s: ", bad[i].var);
        if (strncmp(err.msg, want, strlen(want)) != 0) {
            char w[512];
            snprintf(w, sizeof w, "message \"%s\" for %s", err.msg, bad[i].var);
            test__fail(__FILE__, __LINE__, w);
        }
        CHECK_CONTAINS(err.msg, bad[i].why);
        if (strlen(bad[i].value) > 1) CHECK_NOT_CONTAINS(err.msg + strlen(want), bad[i].value);
        CHECK_NOT_CONTAINS(err.msg, PW);
        CHECK(memcmp(&c, &before, sizeof c) == 0);
        CHECK(rsbus_config_from_env(&c, NULL, NULL) == RSBUS_E_ARG);   /* err may be NULL */
        CHECK(memcmp(&c, &before, sizeof c) == 0);
    }
    env_clear("RSBUS_");
}

TEST(env_prefix) {
    rsbus_config c;
    rsbus_error err;
    char prefix[80];
    env_clear("RSBUS_");
    env_clear("MYAPP_");
    env_set("RSBUS_STREAM", "from-rsbus");
    env_set("RSBUS_BATCH_SIZE", "oops");              /* not read with another prefix */
    env_set("MYAPP_STREAM", "from-myapp");
    env_set("MYAPP_BATCH_SIZE", "42");
    env_set("MYAPP_URL", "unix:///tmp/app.sock?db=2");
    memset(&c, 0, sizeof c);
    REQUIRE(rsbus_config_from_env(&c, "MYAPP_", &err) == RSBUS_OK);
    CHECK_EQ_STR(c.stream, "from-myapp");
    CHECK_EQ_INT(c.batch_size, 42);
    CHECK_EQ_STR(c.url, "unix:///tmp/app.sock?db=2");
    env_set("MYAPP_MAX_RETRIES", "x");
    CHECK(rsbus_config_from_env(&c, "MYAPP_", &err) == RSBUS_E_ARG);
    CHECK_EQ_STR(err.msg, "MYAPP_MAX_RETRIES: not an integer");
    env_clear("MYAPP_");
    /* "" is a prefix too */
    unsetenv("STREAM");
    setenv("GROUP", "bare", 1);
    memset(&c, 0, sizeof c);
    CHECK(rsbus_config_from_env(&c, "", &err) == RSBUS_OK);
    CHECK_EQ_STR(c.group, "bare");
    unsetenv("GROUP");
    /* 64 bytes fit, 65 do not */
    memset(prefix, 'P', 64);
    prefix[64] = '\0';
    CHECK(rsbus_config_from_env(&c, prefix, &err) == RSBUS_OK);
    prefix[64] = 'P';
    prefix[65] = '\0';
    CHECK(rsbus_config_from_env(&c, prefix, &err) == RSBUS_E_ARG);
    CHECK_EQ_INT(err.code, RSBUS_E_ARG);
    CHECK_CONTAINS(err.msg, "prefix");
    CHECK(rsbus_config_from_env(&c, "MY=APP_", &err) == RSBUS_E_ARG);
    CHECK_CONTAINS(err.msg, "prefix");
    CHECK(rsbus_config_from_env(&c, "MY APP_", &err) == RSBUS_E_ARG);
    /* a long prefix names the whole variable */
    memset(prefix, 'Q', 64);
    strcpy(prefix + 60, "_ZZ_");
    {
        char var[128];
        snprintf(var, sizeof var, "%sRETRY_BACKOFF_MAX_MS", prefix);
        env_set(var, "bad");
        CHECK(rsbus_config_from_env(&c, prefix, &err) == RSBUS_E_ARG);
        CHECK_CONTAINS(err.msg, var);
        CHECK_CONTAINS(err.msg, "not an integer");
        unsetenv(var);
    }
    env_clear("RSBUS_");
}

/* random byte edits of valid urls (run under ASan/UBSan too): only OK or RSBUS_E_ARG, messages terminated
   and shaped "url: ...", no password in any message or redacted form */
TEST(url_mutations) {
    static const char *const seeds[] = {
        "redis://alice:" PW "@[::1]:6380/2",
        "rediss://:" PW "@h.example:6390/1?ca=/a%20b&capath=/c&cert=/d&key=/e&sni=x&verify=0",
        "unix:///tmp/r.sock?db=3&user=bob&password=" PW,
        "redis://u:" PW "%40x@10.0.0.1",
    };
    static const char alphabet[] = "%@:/?&=[]#0123456789aAfFzZ.-_ \t\x01\x7f\xff";
    uint32_t rng = 12345u;
    int i, bad = 0;
    for (i = 0; i < 40000; i++) {
        char url[300];
        rsbus_result r;
        int k, edits;
        size_t len;
        strcpy(url, seeds[i % 4]);
        rng = rng * 1103515245u + 12345u;
        edits = 1 + (int)((rng >> 16) % 3);
        for (k = 0; k < edits; k++) {
            size_t pos;
            len = strlen(url);
            rng = rng * 1103515245u + 12345u;
            pos = (size_t)((rng >> 8) % len);
            rng = rng * 1103515245u + 12345u;
            switch ((rng >> 16) % 3) {
            case 0: url[pos] = alphabet[(rng >> 4) % (sizeof alphabet - 1)]; break;   /* replace */
            case 1: memmove(url + pos, url + pos + 1, len - pos); break;               /* delete */
            default:                                                                   /* insert */
                if (len + 2 < sizeof url) {
                    memmove(url + pos + 1, url + pos, len - pos + 1);
                    url[pos] = alphabet[(rng >> 4) % (sizeof alphabet - 1)];
                }
            }
        }
        memset(M, 'X', sizeof M);
        memset(&U, 'Y', sizeof U);
        r = parse(url);
        if (r != RSBUS_OK && r != RSBUS_E_ARG) bad++;
        if (!memchr(M, '\0', sizeof M)) { bad++; continue; }
        if (r == RSBUS_E_ARG && (strncmp(M, "url: ", 5) != 0 || strstr(M, PW))) bad++;
        if (r == RSBUS_OK) {
            if (M[0] != '\0' || !memchr(U.redacted, '\0', sizeof U.redacted)) { bad++; continue; }
            /* PW may survive as a user name or, after several edits, as part of a path: only a parsed
               password is a password */
            if (U.has_password && strlen(U.password) >= 6 && strstr(U.redacted, U.password)) bad++;
            if (strstr(U.redacted, PW) && U.kind != RSBUS__URL_UNIX) bad++;
            if (U.port < 1 || U.port > 65535 || U.db < 0 || (U.verify != 0 && U.verify != 1)) bad++;
        }
    }
    CHECK_EQ_INT(bad, 0);
}

/* the parser is linear and bounded: many worst-case urls take no time */
TEST(url_speed) {
    static char url[RSBUS__URL_MAX + 1];
    int64_t t0 = test_now_ms();
    int i;
    memset(url, '@', RSBUS__URL_MAX);
    memcpy(url, "redis://", 8);
    for (i = 0; i < 2000; i++) CHECK(parse(url) == RSBUS_E_ARG);
    memset(url, '%', RSBUS__URL_MAX);
    memcpy(url, "redis://:", 9);
    url[RSBUS__URL_MAX - 2] = '@';
    url[RSBUS__URL_MAX - 1] = 'h';
    for (i = 0; i < 2000; i++) CHECK(parse(url) == RSBUS_E_ARG);
    CHECK(test_now_ms() - t0 < 5000);
    (void)test_sleep_ms;     /* part of the harness, not needed here */
}

TEST(env_null_cfg) {
    rsbus_error err;
    memset(&err, 0, sizeof err);
    CHECK(rsbus_config_from_env(NULL, NULL, &err) == RSBUS_E_ARG);
    CHECK_EQ_INT(err.code, RSBUS_E_ARG);
    CHECK_CONTAINS(err.msg, "cfg");
    CHECK(rsbus_config_from_env(NULL, NULL, NULL) == RSBUS_E_ARG);
}

int main(void) {
    RUN(i64_valid);
    RUN(i64_invalid);
    RUN(url_defaults);
    RUN(url_port_db);
    RUN(url_userinfo);
    RUN(url_percent_and_raw);
    RUN(url_ipv6);
    RUN(url_rediss);
    RUN(url_unix);
    RUN(url_mem);
    RUN(url_lengths);
    RUN(url_bad);
    RUN(url_messages);
    RUN(url_redact_direct);
    RUN(url_sentinel);
    RUN(url_cluster);
    RUN(url_multi_bad);
    RUN(url_multi_mutations);
    RUN(url_mutations);
    RUN(url_speed);
    RUN(env_unset_leaves_fields);
    RUN(env_every_field);
    RUN(env_strings_empty);
    RUN(env_booleans_and_levels);
    RUN(env_bad_values);
    RUN(env_prefix);
    RUN(env_null_cfg);
    return test_summary("test_url");
}
