/* test_json.c - the JSON writer and reader: escapes, UTF-8, numbers, buffer overflow at every size,
   nesting errors, allocators (counting and failing), error offsets, the depth limit, paths, the jval
   accessors, and thousands of generated documents written by the writer and read back by the reader. */
#define _POSIX_C_SOURCE 200809L
#define RSBUS_IMPLEMENTATION
#include "../rsbus.h"
#include "test.h"

#include <float.h>
#include <locale.h>
#include <math.h>
#include <stdlib.h>

/* ---- helpers -------------------------------------------------------------------------------- */

static uint64_t rng_state = 0x9E3779B97F4A7C15u;
static uint64_t rng(void) {                        /* xorshift64*: deterministic */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * UINT64_C(2685821657736338717);
}
static unsigned rnd(unsigned n) { return (unsigned)(rng() % n); }

static rsbus_result validate_str(const char *s, size_t *off) { return rsbus_json_validate(s, strlen(s), off); }

/* the writer's text for one string value, or NULL */
static const char *write_one_str(rsbus_jw *w, char *buf, size_t size, const char *s, size_t n) {
    rsbus_jw_init(w, buf, size);
    rsbus_jw_strn(w, s, n);
    return rsbus_jw_result(w, NULL);
}

/* ---- counting / failing allocator --------------------------------------------------------- */

#define TRACK_MAX 64
typedef struct counting {
    void *ptr[TRACK_MAX];
    size_t size[TRACK_MAX];
    long calls;           /* alloc + realloc calls */
    long fail_at;         /* the call number that fails (1-based); 0: never */
    long allocs, reallocs, frees, failures;
    size_t outstanding;   /* bytes */
    int size_mismatch, unknown_ptr;
} counting;

static int track_find(counting *c, void *p) {
    int i;
    for (i = 0; i < TRACK_MAX; i++) if (c->ptr[i] == p && p) return i;
    return -1;
}
static void track_add(counting *c, void *p, size_t size) {
    int i;
    for (i = 0; i < TRACK_MAX; i++) if (!c->ptr[i]) break;
    if (i == TRACK_MAX) { c->unknown_ptr = 1; return; }
    c->ptr[i] = p;
    c->size[i] = size;
    c->outstanding += size;
}
static void *c_alloc(void *user, size_t size) {
    counting *c = (counting *)user;
    void *p;
    c->calls++;
    if (c->fail_at && c->calls == c->fail_at) { c->failures++; return NULL; }
    p = malloc(size);
    if (!p) return NULL;
    c->allocs++;
    track_add(c, p, size);
    return p;
}
static void *c_realloc(void *user, void *ptr, size_t old_size, size_t new_size) {
    counting *c = (counting *)user;
    void *p;
    int i;
    c->calls++;
    if (c->fail_at && c->calls == c->fail_at) { c->failures++; return NULL; }
    i = track_find(c, ptr);
    if (i < 0) { c->unknown_ptr = 1; return NULL; }
    if (c->size[i] != old_size) c->size_mismatch = 1;
    p = realloc(ptr, new_size);
    if (!p) return NULL;
    c->reallocs++;
    c->outstanding -= c->size[i];
    c->ptr[i] = NULL;
    track_add(c, p, new_size);
    return p;
}
static void c_free(void *user, void *ptr, size_t size) {
    counting *c = (counting *)user;
    int i = track_find(c, ptr);
    c->frees++;
    if (i < 0) { c->unknown_ptr = 1; return; }
    if (c->size[i] != size) c->size_mismatch = 1;
    c->outstanding -= c->size[i];
    c->ptr[i] = NULL;
    free(ptr);
}
static rsbus_allocator counting_allocator(counting *c) {
    rsbus_allocator a;
    memset(c, 0, sizeof *c);
    a.alloc_fn = c_alloc;
    a.realloc_fn = c_realloc;
    a.free_fn = c_free;
    a.user = c;
    return a;
}

/* ---- writer --------------------------------------------------------------------------------- */

TEST(writer_basic) {
    rsbus_jw w;
    char buf[256];
    size_t len = 99;
    const char *r;
    rsbus_jw_init(&w, buf, sizeof buf);
    rsbus_jw_obj(&w);
    rsbus_jw_key(&w, "s"); rsbus_jw_str(&w, "hi");
    rsbus_jw_key(&w, "i"); rsbus_jw_int(&w, -42);
    rsbus_jw_key(&w, "d"); rsbus_jw_num(&w, 1.5);
    rsbus_jw_key(&w, "t"); rsbus_jw_bool(&w, 7);
    rsbus_jw_key(&w, "f"); rsbus_jw_bool(&w, 0);
    rsbus_jw_key(&w, "n"); rsbus_jw_null(&w);
    rsbus_jw_key(&w, "a"); rsbus_jw_arr(&w);
    rsbus_jw_int(&w, 1); rsbus_jw_arr(&w); rsbus_jw_arr_end(&w); rsbus_jw_obj(&w); rsbus_jw_obj_end(&w);
    rsbus_jw_strn(&w, "ab", 1);
    rsbus_jw_arr_end(&w);
    rsbus_jw_key(&w, ""); rsbus_jw_strn(&w, NULL, 0);
    rsbus_jw_obj_end(&w);
    r = rsbus_jw_result(&w, &len);
    CHECK_EQ_STR(r, "{\"s\":\"hi\",\"i\":-42,\"d\":1.5,\"t\":true,\"f\":false,\"n\":null,\"a\":[1,[],{},\"a\"],\"\":\"\"}");
    CHECK_EQ_INT(len, strlen(buf));
    CHECK(r == buf);
    CHECK_EQ_INT(rsbus_json_validate(r, len, NULL), RSBUS_OK);
    rsbus_jw_free(&w);                                      /* no-op on a fixed buffer */
    rsbus_jw_free(&w);
    CHECK_EQ_STR(rsbus_jw_result(&w, NULL), "{\"s\":\"hi\",\"i\":-42,\"d\":1.5,\"t\":true,\"f\":false,\"n\":null,\"a\":[1,[],{},\"a\"],\"\":\"\"}");

    /* top-level scalars */
    rsbus_jw_init(&w, buf, sizeof buf); rsbus_jw_int(&w, 0);
    CHECK_EQ_STR(rsbus_jw_result(&w, NULL), "0");
    rsbus_jw_init(&w, buf, sizeof buf); rsbus_jw_str(&w, "");
    CHECK_EQ_STR(rsbus_jw_result(&w, NULL), "\"\"");
    rsbus_jw_init(&w, buf, sizeof buf); rsbus_jw_null(&w);
    CHECK_EQ_STR(rsbus_jw_result(&w, NULL), "null");

    /* NULL writer: every call a no-op */
    rsbus_jw_init(NULL, buf, 1); rsbus_jw_init_alloc(NULL, NULL);
    rsbus_jw_obj(NULL); rsbus_jw_key(NULL, "a"); rsbus_jw_str(NULL, "x"); rsbus_jw_strn(NULL, "x", 1);
    rsbus_jw_int(NULL, 1); rsbus_jw_num(NULL, 1.0); rsbus_jw_bool(NULL, 1); rsbus_jw_null(NULL);
    rsbus_jw_obj_end(NULL); rsbus_jw_arr(NULL); rsbus_jw_arr_end(NULL); rsbus_jw_free(NULL);
    CHECK(rsbus_jw_result(NULL, &len) == NULL);
    CHECK_EQ_INT(len, 0);
}

TEST(writer_escapes) {
    rsbus_jw w;
    char buf[256], tmp[8];
    const char *r;
    unsigned c;
    static const char *const want[32] = {
        "\\u0000", "\\u0001", "\\u0002", "\\u0003", "\\u0004", "\\u0005", "\\u0006", "\\u0007",
        "\\b", "\\t", "\\n", "\\u000b", "\\f", "\\r", "\\u000e", "\\u000f",
        "\\u0010", "\\u0011", "\\u0012", "\\u0013", "\\u0014", "\\u0015", "\\u0016", "\\u0017",
        "\\u0018", "\\u0019", "\\u001a", "\\u001b", "\\u001c", "\\u001d", "\\u001e", "\\u001f" };
    r = write_one_str(&w, buf, sizeof buf, "q\"b\\s/ \x7f" "\xe2\x80\xa8\xe2\x80\xa9", 14);
    CHECK_EQ_STR(r, "\"q\\\"b\\\\s/ \x7f\xe2\x80\xa8\xe2\x80\xa9\"");
    for (c = 0; c < 32; c++) {
        char want_text[16], back[8];
        rsbus_jval v;
        size_t n = 0;
        tmp[0] = 'a'; tmp[1] = (char)c; tmp[2] = 'b';
        r = write_one_str(&w, buf, sizeof buf, tmp, 3);
        snprintf(want_text, sizeof want_text, "\"a%sb\"", want[c]);
        CHECK_EQ_STR(r, want_text);
        REQUIRE(r != NULL);
        CHECK_EQ_INT(rsbus_json_get(r, strlen(r), "", &v), RSBUS_OK);
        CHECK_EQ_INT(rsbus_jval_str(&v, back, sizeof back, &n), RSBUS_OK);
        CHECK_EQ_INT(n, 3);
        CHECK(memcmp(back, tmp, 3) == 0);
    }
    /* keys are escaped the same way */
    rsbus_jw_init(&w, buf, sizeof buf);
    rsbus_jw_obj(&w); rsbus_jw_key(&w, "k\"\n\x01"); rsbus_jw_int(&w, 1); rsbus_jw_obj_end(&w);
    CHECK_EQ_STR(rsbus_jw_result(&w, NULL), "{\"k\\\"\\n\\u0001\":1}");
}

static const char *const utf8_valid[] = {
    "\xc2\x80", "\xdf\xbf", "\xe0\xa0\x80", "\xed\x9f\xbf", "\xee\x80\x80", "\xef\xbf\xbf",
    "\xf0\x90\x80\x80", "\xf4\x8f\xbf\xbf", "\xe2\x80\xa8", "\xc3\xa9t\xc3\xa9", "\xe6\x97\xa5\xe6\x9c\xac",
    "\xf0\x9f\x98\x80" };
/* each invalid sequence, and the offset inside it where it stops being valid */
static const struct { const char *s; size_t bad; } utf8_invalid[] = {
    { "\x80", 0 }, { "\xbf", 0 },                                   /* lone continuation bytes */
    { "\xc0\x80", 0 }, { "\xc1\xbf", 0 },                           /* overlong 2-byte */
    { "\xe0\x80\x80", 1 }, { "\xe0\x9f\xbf", 1 },                   /* overlong 3-byte */
    { "\xf0\x80\x80\x80", 1 }, { "\xf0\x8f\xbf\xbf", 1 },           /* overlong 4-byte */
    { "\xed\xa0\x80", 1 }, { "\xed\xbf\xbf", 1 },                   /* surrogates in UTF-8 */
    { "\xf4\x90\x80\x80", 1 }, { "\xf5\x80\x80\x80", 0 },           /* above U+10FFFF */
    { "\xf8\x88\x80\x80\x80", 0 }, { "\xfe", 0 }, { "\xff", 0 },
    { "\xc3", 1 }, { "\xe2\x82", 2 }, { "\xf0\x9f\x98", 3 },        /* truncated (a quote follows) */
    { "\xc3\x41", 1 }, { "\xe2\x28\xa1", 1 }, { "\xe2\x82\x41", 2 }, { "\xf0\x9f\x98\x41", 3 } };

TEST(writer_utf8) {
    rsbus_jw w;
    char buf[64], in[32], want[40];
    size_t i;
    for (i = 0; i < sizeof utf8_valid / sizeof utf8_valid[0]; i++) {
        snprintf(want, sizeof want, "\"%s\"", utf8_valid[i]);
        CHECK_EQ_STR(write_one_str(&w, buf, sizeof buf, utf8_valid[i], strlen(utf8_valid[i])), want);
    }
    for (i = 0; i < sizeof utf8_invalid / sizeof utf8_invalid[0]; i++) {
        const char *bad = utf8_invalid[i].s;
        CHECK(write_one_str(&w, buf, sizeof buf, bad, strlen(bad)) == NULL);
        snprintf(in, sizeof in, "ab%scd", bad);                   /* in the middle */
        CHECK(write_one_str(&w, buf, sizeof buf, in, strlen(in)) == NULL);
        rsbus_jw_init(&w, buf, sizeof buf);                       /* as a key */
        rsbus_jw_obj(&w); rsbus_jw_key(&w, in); rsbus_jw_int(&w, 1); rsbus_jw_obj_end(&w);
        CHECK(rsbus_jw_result(&w, NULL) == NULL);
        rsbus_jw_init(&w, buf, sizeof buf);                       /* truncated by strn's length */
    }
    CHECK(write_one_str(&w, buf, sizeof buf, "\xc3\xa9", 1) == NULL);
    CHECK(write_one_str(&w, buf, sizeof buf, "\xf0\x9f\x98\x80", 3) == NULL);
    CHECK(write_one_str(&w, buf, sizeof buf, "\xf0\x9f\x98\x80", 4) != NULL);
}

TEST(writer_int) {
    rsbus_jw w;
    char buf[64];
    static const struct { int64_t v; const char *s; } c[] = {
        { 0, "0" }, { 1, "1" }, { -1, "-1" }, { 42, "42" }, { 1000000007, "1000000007" },
        { INT64_MAX, "9223372036854775807" }, { INT64_MIN, "-9223372036854775808" },
        { INT64_MIN + 1, "-9223372036854775807" } };
    size_t i;
    for (i = 0; i < sizeof c / sizeof c[0]; i++) {
        rsbus_jval v;
        int64_t back = 0;
        rsbus_jw_init(&w, buf, sizeof buf);
        rsbus_jw_int(&w, c[i].v);
        CHECK_EQ_STR(rsbus_jw_result(&w, NULL), c[i].s);
        CHECK_EQ_INT(rsbus_json_get(buf, strlen(buf), "", &v), RSBUS_OK);
        CHECK_EQ_INT(rsbus_jval_int(&v, &back), RSBUS_OK);
        CHECK(back == c[i].v);
    }
}

static int same_double(double a, double b) { return memcmp(&a, &b, sizeof a) == 0; }

/* writes v, reads it back with rsbus_jval_num; the bits must be the same */
static int num_roundtrip(double v, char *text, size_t size) {
    rsbus_jw w;
    rsbus_jval jv;
    double back = 0;
    const char *r;
    size_t len;
    rsbus_jw_init(&w, text, size);
    rsbus_jw_num(&w, v);
    r = rsbus_jw_result(&w, &len);
    if (!r) return 0;
    if (rsbus_json_validate(r, len, NULL) != RSBUS_OK) return 0;
    if (rsbus_json_get(r, len, "", &jv) != RSBUS_OK || jv.type != RSBUS_JNUMBER) return 0;
    if (rsbus_jval_num(&jv, &back) != RSBUS_OK) return 0;
    return same_double(v, back);
}

TEST(writer_num) {
    char t[64];
    rsbus_jw w;
    int i, ok = 1;
    double specials[] = { 0.1, 0.2, 0.3, 1e300, -1e300, 5e-324, -5e-324, 2.2250738585072014e-308,
                          2.2250738585072009e-308, DBL_MAX, -DBL_MAX, DBL_MIN, 1.0, 1e21, 1e22, 123456.789,
                          9007199254740993.0, 0.1 + 0.2, 1.0 / 3.0, 3.141592653589793, -2.5e-5, 4.35 };
    CHECK(num_roundtrip(0.1, t, sizeof t)); CHECK_EQ_STR(t, "0.1");
    CHECK(num_roundtrip(1.5, t, sizeof t)); CHECK_EQ_STR(t, "1.5");
    CHECK(num_roundtrip(-2.25, t, sizeof t)); CHECK_EQ_STR(t, "-2.25");
    CHECK(num_roundtrip(1.0, t, sizeof t)); CHECK(strcmp(t, "1") == 0 || strcmp(t, "1.0") == 0);
    CHECK(num_roundtrip(100.0, t, sizeof t)); CHECK_EQ_STR(t, "100");
    CHECK(num_roundtrip(0.0, t, sizeof t)); CHECK_EQ_STR(t, "0");
    CHECK(num_roundtrip(-0.0, t, sizeof t)); CHECK_EQ_STR(t, "-0");
    CHECK(num_roundtrip(1e300, t, sizeof t)); CHECK_EQ_STR(t, "1e+300");
    CHECK(num_roundtrip(0.1 + 0.2, t, sizeof t)); CHECK_EQ_STR(t, "0.30000000000000004");
    for (i = 0; i < (int)(sizeof specials / sizeof specials[0]); i++) {
        if (!num_roundtrip(specials[i], t, sizeof t)) { ok = 0; fprintf(stderr, "  no round trip: %.17g\n", specials[i]); }
    }
    CHECK(ok);
    for (i = 0; i < 20000 && ok; i++) {                       /* random bit patterns */
        uint64_t bits = rng();
        double d;
        memcpy(&d, &bits, sizeof d);
        if (isnan(d) || isinf(d)) continue;
        if (!num_roundtrip(d, t, sizeof t)) { ok = 0; fprintf(stderr, "  no round trip: %.17g\n", d); }
    }
    CHECK(ok);
    for (i = 0; i < 20000 && ok; i++) {                       /* short decimals */
        double d = (double)((int64_t)(rng() % 2000001) - 1000000) / 1000.0;
        if (!num_roundtrip(d, t, sizeof t)) { ok = 0; fprintf(stderr, "  no round trip: %.17g\n", d); }
    }
    CHECK(ok);
    /* NaN and infinities fail the writer, wherever they are */
    CHECK(!num_roundtrip(NAN, t, sizeof t));
    CHECK(!num_roundtrip(INFINITY, t, sizeof t));
    CHECK(!num_roundtrip(-INFINITY, t, sizeof t));
    rsbus_jw_init(&w, t, sizeof t);
    rsbus_jw_arr(&w); rsbus_jw_int(&w, 1); rsbus_jw_num(&w, NAN); rsbus_jw_int(&w, 2); rsbus_jw_arr_end(&w);
    CHECK(rsbus_jw_result(&w, NULL) == NULL);
    CHECK(w.failed);
}

/* LC_NUMERIC with a ',' decimal separator must change nothing (skipped when no such locale is installed) */
TEST(writer_num_locale) {
    static const char *const names[] = { "de_DE.UTF-8", "de_DE.utf8", "de_DE", "fr_FR.UTF-8", "fr_FR.utf8",
                                         "ru_RU.UTF-8", "nl_NL.UTF-8", "ps_AF.UTF-8", "ps_AF" };
    char t[64];
    size_t i;
    rsbus_jval v;
    double d = 0;
    const char *got = NULL;
    for (i = 0; i < sizeof names / sizeof names[0] && !got; i++) got = setlocale(LC_NUMERIC, names[i]);
    if (!got || strcmp(localeconv()->decimal_point, ".") == 0) {
        setlocale(LC_NUMERIC, "C");
        fprintf(stderr, "  (no locale with another decimal separator installed: locale part skipped)\n");
        return;
    }
    fprintf(stderr, "  locale %s, decimal point '%s'\n", got, localeconv()->decimal_point);
    CHECK(num_roundtrip(0.5, t, sizeof t)); CHECK_EQ_STR(t, "0.5");
    CHECK(num_roundtrip(-1234.125, t, sizeof t)); CHECK_EQ_STR(t, "-1234.125");
    CHECK(num_roundtrip(2.5e-300, t, sizeof t)); CHECK_EQ_STR(t, "2.5e-300");
    CHECK(num_roundtrip(0.1 + 0.2, t, sizeof t));
    CHECK_EQ_INT(rsbus_json_get("[3.25]", 6, "0", &v), RSBUS_OK);
    CHECK_EQ_INT(rsbus_jval_num(&v, &d), RSBUS_OK);
    CHECK(d == 3.25);
    setlocale(LC_NUMERIC, "C");
}

/* a document with every kind of content; the same calls whatever the buffer */
static void build_doc(rsbus_jw *w) {
    rsbus_jw_obj(w);
    rsbus_jw_key(w, "name"); rsbus_jw_str(w, "caf\xc3\xa9 \xf0\x9f\x98\x80 \"q\" \\ \n\t\x01");
    rsbus_jw_key(w, "n"); rsbus_jw_int(w, INT64_MIN);
    rsbus_jw_key(w, "x"); rsbus_jw_num(w, 0.1);
    rsbus_jw_key(w, "list"); rsbus_jw_arr(w);
    rsbus_jw_bool(w, 1); rsbus_jw_null(w); rsbus_jw_obj(w); rsbus_jw_key(w, "k\xe2\x82\xac"); rsbus_jw_arr(w);
    rsbus_jw_arr_end(w); rsbus_jw_obj_end(w); rsbus_jw_num(w, -1e-300);
    rsbus_jw_arr_end(w);
    rsbus_jw_obj_end(w);
}

TEST(writer_overflow_every_size) {
    rsbus_jw w;
    char full[512];
    size_t flen = 0, size, k;
    const char *r;
    int ok = 1;
    rsbus_jw_init(&w, full, sizeof full);
    build_doc(&w);
    r = rsbus_jw_result(&w, &flen);
    REQUIRE(r != NULL);
    CHECK_EQ_INT(rsbus_json_validate(r, flen, NULL), RSBUS_OK);
    for (size = 0; size <= flen + 1; size++) {
        char *guarded = (char *)malloc(size + 16);
        char *exact = size ? (char *)malloc(size) : NULL;    /* ASan sees any write past it */
        size_t len = 12345;
        REQUIRE(guarded != NULL);
        memset(guarded, 0x5A, size + 16);
        rsbus_jw_init(&w, guarded, size);
        build_doc(&w);
        r = rsbus_jw_result(&w, &len);
        if (size <= flen) {
            if (r != NULL || len != 0 || !w.failed) ok = 0;
        } else {
            if (!r || len != flen || memcmp(r, full, flen + 1) != 0) ok = 0;
        }
        for (k = size; k < size + 16; k++) if ((unsigned char)guarded[k] != 0x5A) ok = 0;
        rsbus_jw_init(&w, exact, size);
        build_doc(&w);
        r = rsbus_jw_result(&w, NULL);
        if ((size <= flen) != (r == NULL)) ok = 0;
        rsbus_jw_free(&w);
        if (!ok) { fprintf(stderr, "  size %zu\n", size); break; }
        free(guarded);
        free(exact);
    }
    CHECK(ok);
    /* NULL buffer: size 0 is an empty buffer, a size without a buffer fails at once */
    rsbus_jw_init(&w, NULL, 0); rsbus_jw_int(&w, 1); CHECK(rsbus_jw_result(&w, NULL) == NULL);
    rsbus_jw_init(&w, NULL, 10); CHECK(w.failed); rsbus_jw_int(&w, 1); CHECK(rsbus_jw_result(&w, NULL) == NULL);
    /* exactly fitting: text + NUL */
    {
        char b2[2];
        rsbus_jw_init(&w, b2, 2); rsbus_jw_int(&w, 7); CHECK_EQ_STR(rsbus_jw_result(&w, NULL), "7");
        rsbus_jw_init(&w, b2, 2); rsbus_jw_int(&w, 17); CHECK(rsbus_jw_result(&w, NULL) == NULL);
        rsbus_jw_init(&w, b2, 1); rsbus_jw_int(&w, 7); CHECK(rsbus_jw_result(&w, NULL) == NULL);
    }
}

/* each case must leave the writer without a result */
TEST(writer_misuse) {
    rsbus_jw w;
    char buf[4096];
    int i;
#define MISUSE(calls) do { rsbus_jw_init(&w, buf, sizeof buf); calls; \
        CHECK(rsbus_jw_result(&w, NULL) == NULL); } while (0)
    MISUSE((void)0);                                                    /* nothing written */
    MISUSE(rsbus_jw_obj(&w));                                           /* unbalanced */
    MISUSE(rsbus_jw_arr(&w); rsbus_jw_arr(&w); rsbus_jw_arr_end(&w));
    MISUSE(rsbus_jw_obj_end(&w));                                       /* end without open */
    MISUSE(rsbus_jw_arr_end(&w));
    MISUSE(rsbus_jw_int(&w, 1); rsbus_jw_arr_end(&w));
    MISUSE(rsbus_jw_obj(&w); rsbus_jw_arr_end(&w));                     /* wrong end */
    MISUSE(rsbus_jw_arr(&w); rsbus_jw_obj_end(&w));
    MISUSE(rsbus_jw_obj(&w); rsbus_jw_int(&w, 1); rsbus_jw_obj_end(&w));  /* value where a key belongs */
    MISUSE(rsbus_jw_obj(&w); rsbus_jw_str(&w, "k"); rsbus_jw_obj_end(&w));
    MISUSE(rsbus_jw_obj(&w); rsbus_jw_key(&w, "a"); rsbus_jw_int(&w, 1); rsbus_jw_arr(&w); rsbus_jw_arr_end(&w);
           rsbus_jw_obj_end(&w));
    MISUSE(rsbus_jw_obj(&w); rsbus_jw_key(&w, "a"); rsbus_jw_obj_end(&w));  /* key without value */
    MISUSE(rsbus_jw_obj(&w); rsbus_jw_key(&w, "a"); rsbus_jw_key(&w, "b"); rsbus_jw_int(&w, 1);
           rsbus_jw_obj_end(&w));                                       /* key where a value belongs */
    MISUSE(rsbus_jw_key(&w, "a"));                                      /* key at the top */
    MISUSE(rsbus_jw_key(&w, "a"); rsbus_jw_int(&w, 1));
    MISUSE(rsbus_jw_arr(&w); rsbus_jw_key(&w, "a"); rsbus_jw_int(&w, 1); rsbus_jw_arr_end(&w));  /* key in array */
    MISUSE(rsbus_jw_obj(&w); rsbus_jw_key(&w, NULL); rsbus_jw_int(&w, 1); rsbus_jw_obj_end(&w));
    MISUSE(rsbus_jw_str(&w, NULL));
    MISUSE(rsbus_jw_strn(&w, NULL, 3));
    MISUSE(rsbus_jw_int(&w, 1); rsbus_jw_int(&w, 2));                   /* two top-level values */
    MISUSE(rsbus_jw_obj(&w); rsbus_jw_obj_end(&w); rsbus_jw_arr(&w); rsbus_jw_arr_end(&w));
    MISUSE(rsbus_jw_null(&w); rsbus_jw_obj_end(&w));
    /* once failed, always failed: valid calls afterwards do not revive it */
    MISUSE(rsbus_jw_arr(&w); rsbus_jw_str(&w, "\xff"); rsbus_jw_int(&w, 1); rsbus_jw_arr_end(&w));
    MISUSE(rsbus_jw_obj(&w); rsbus_jw_int(&w, 1); rsbus_jw_key(&w, "a"); rsbus_jw_int(&w, 1);
           rsbus_jw_obj_end(&w));
#undef MISUSE
    /* the result may be asked for early: NULL, then the text once complete */
    rsbus_jw_init(&w, buf, sizeof buf);
    rsbus_jw_arr(&w);
    CHECK(rsbus_jw_result(&w, NULL) == NULL);
    rsbus_jw_arr_end(&w);
    CHECK_EQ_STR(rsbus_jw_result(&w, NULL), "[]");
    /* 512 levels fit, the 513th does not */
    rsbus_jw_init(&w, buf, sizeof buf);
    for (i = 0; i < 512; i++) { if (i % 2) rsbus_jw_arr(&w); else { rsbus_jw_obj(&w); rsbus_jw_key(&w, "a"); } }
    for (i = 511; i >= 0; i--) { if (i % 2) rsbus_jw_arr_end(&w); else rsbus_jw_obj_end(&w); }
    {
        size_t len = 0;
        const char *r = rsbus_jw_result(&w, &len);
        CHECK(r != NULL);
        if (r) CHECK_EQ_INT(rsbus_json_validate(r, len, NULL), 512 <= RSBUS_JSON_MAX_DEPTH ? RSBUS_OK : RSBUS_E_JSON);
    }
    rsbus_jw_init(&w, buf, sizeof buf);
    for (i = 0; i < 513; i++) rsbus_jw_arr(&w);
    CHECK(w.failed);
    for (i = 0; i < 513; i++) rsbus_jw_arr_end(&w);
    CHECK(rsbus_jw_result(&w, NULL) == NULL);
}

TEST(writer_growing) {
    rsbus_jw w;
    size_t len = 0, i;
    const char *r;
    rsbus_jval v;
    int64_t x = 0;
    rsbus_jw_init_alloc(&w, NULL);
    rsbus_jw_arr(&w);
    for (i = 0; i < 100000; i++) rsbus_jw_int(&w, (int64_t)i);
    rsbus_jw_arr_end(&w);
    r = rsbus_jw_result(&w, &len);
    REQUIRE(r != NULL);
    CHECK_EQ_INT(len, strlen(r));
    CHECK(len > 500000);
    CHECK_EQ_INT(rsbus_json_validate(r, len, NULL), RSBUS_OK);
    CHECK_EQ_INT(rsbus_json_get(r, len, "[99999]", &v), RSBUS_OK);
    CHECK_EQ_INT(rsbus_jval_int(&v, &x), RSBUS_OK);
    CHECK_EQ_INT(x, 99999);
    rsbus_jw_free(&w);
    CHECK(rsbus_jw_result(&w, NULL) == NULL);                  /* freed: no more text */
    rsbus_jw_free(&w);                                          /* twice is fine */
    /* a growing writer that never wrote anything, and a zeroed one, may be freed */
    rsbus_jw_init_alloc(&w, NULL);
    rsbus_jw_free(&w);
    memset(&w, 0, sizeof w);
    rsbus_jw_free(&w);
    /* failed growing writers still free their buffer */
    rsbus_jw_init_alloc(&w, NULL);
    rsbus_jw_arr(&w); rsbus_jw_str(&w, "ok"); rsbus_jw_num(&w, NAN);
    CHECK(rsbus_jw_result(&w, NULL) == NULL);
    rsbus_jw_free(&w);
}

static void build_big(rsbus_jw *w) {
    int i;
    rsbus_jw_obj(w);
    for (i = 0; i < 300; i++) {
        char key[32];
        snprintf(key, sizeof key, "key%d", i);
        rsbus_jw_key(w, key);
        rsbus_jw_arr(w);
        rsbus_jw_str(w, "caf\xc3\xa9\n"); rsbus_jw_num(w, 0.5 * i); rsbus_jw_int(w, -i);
        rsbus_jw_arr_end(w);
    }
    rsbus_jw_obj_end(w);
}

TEST(writer_counting_allocator) {
    counting c;
    rsbus_allocator a = counting_allocator(&c), partial;
    rsbus_jw w;
    size_t len = 0;
    rsbus_jw_init_alloc(&w, &a);
    build_big(&w);
    CHECK(rsbus_jw_result(&w, &len) != NULL);
    CHECK(len > 8000);
    CHECK(c.allocs == 1);
    CHECK(c.reallocs >= 3);
    CHECK(c.outstanding == w.cap);
    rsbus_jw_free(&w);
    CHECK_EQ_INT(c.outstanding, 0);
    CHECK_EQ_INT(c.frees, 1);
    CHECK(!c.size_mismatch);
    CHECK(!c.unknown_ptr);
    rsbus_jw_free(&w);
    CHECK_EQ_INT(c.frees, 1);
    /* nothing written: nothing allocated */
    rsbus_jw_init_alloc(&w, &a);
    rsbus_jw_free(&w);
    CHECK_EQ_INT(c.allocs, 1);
    /* a partly-set allocator makes the writer failed, and nothing is allocated */
    partial = a;
    partial.realloc_fn = NULL;
    rsbus_jw_init_alloc(&w, &partial);
    rsbus_jw_int(&w, 1);
    CHECK(rsbus_jw_result(&w, NULL) == NULL);
    rsbus_jw_free(&w);
    CHECK_EQ_INT(c.calls, 1 + c.reallocs);
}

TEST(writer_failing_allocator) {
    counting c;
    rsbus_allocator a;
    rsbus_jw w;
    long n;
    int finished = 0;
    const char *r;
    for (n = 1; n < 100 && !finished; n++) {
        a = counting_allocator(&c);
        c.fail_at = n;
        rsbus_jw_init_alloc(&w, &a);
        build_big(&w);
        r = rsbus_jw_result(&w, NULL);
        if (c.failures) {
            CHECK(r == NULL);
            CHECK(w.failed);
        } else {
            CHECK(r != NULL);
            finished = 1;                                      /* the Nth allocation was never made */
        }
        rsbus_jw_free(&w);
        CHECK_EQ_INT(c.outstanding, 0);
        CHECK(!c.size_mismatch);
        CHECK(!c.unknown_ptr);
    }
    CHECK(finished);
    CHECK(n > 4);                                              /* several allocations were failed in turn */
}

/* ---- reader --------------------------------------------------------------------------------- */

TEST(reader_valid) {
    static const char *const ok[] = {
        "{}", "[]", "0", "-0", "1", "-1", "123", "1.5", "-1.5", "0.0", "1e5", "1E5", "1e+5", "1e-5", "-0.0e0",
        "1.25E-10", "12345678901234567890123456789", "\"\"", "\"a\"", "true", "false", "null",
        " \t\r\n{ \"a\" : [ 1 , 2 , { } , [ ] ] } \t\r\n", "[1,\"a\",true,false,null,{\"b\":[]}]",
        "\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u0000 \\u00e9 \\uFFFF \\uD83D\\uDE00 \\ud83d\\ude00\"",
        "\"\x7f\"", "\"\xe2\x80\xa8\"", "{\"a\":1,\"a\":2}", "[[[]]]", "{\"\":{\"\":{}}}", "\"\\u002F\"" };
    size_t i;
    for (i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        size_t off = 777;
        rsbus_result r = validate_str(ok[i], &off);
        if (r != RSBUS_OK) fprintf(stderr, "  refused: %s (offset %zu)\n", ok[i], off);
        CHECK_EQ_INT(r, RSBUS_OK);
        CHECK_EQ_INT(off, 777);                                /* untouched on success */
    }
    for (i = 0; i < sizeof utf8_valid / sizeof utf8_valid[0]; i++) {
        char doc[40];
        snprintf(doc, sizeof doc, "[\"%s\"]", utf8_valid[i]);
        CHECK_EQ_INT(validate_str(doc, NULL), RSBUS_OK);
    }
}

TEST(reader_error_offsets) {
    static const struct { const char *s; size_t n; size_t off; } bad[] = {
        { "", 0, 0 }, { "   ", 3, 3 }, { "[1,]", 4, 3 }, { "{\"a\" 1}", 7, 5 }, { "[1 2]", 5, 3 },
        { "01", 2, 1 }, { "-01", 3, 2 }, { "+1", 2, 0 }, { ".5", 2, 0 }, { "1.", 2, 2 }, { "1.e5", 4, 2 },
        { "1e", 2, 2 }, { "1e+", 3, 3 }, { "-", 1, 1 }, { "--1", 3, 1 }, { "0x10", 4, 1 }, { "NaN", 3, 0 },
        { "Infinity", 8, 0 }, { "-Infinity", 9, 1 }, { "\"abc", 4, 4 }, { "\"a\x01\"", 4, 2 }, { "\"a\tb\"", 5, 2 },
        { "tru", 3, 3 }, { "trux", 4, 3 }, { "True", 4, 0 }, { "nul", 3, 3 }, { "fals", 4, 4 },
        { "{}x", 3, 2 }, { "[1,2", 4, 4 }, { "1 2", 3, 2 }, { "\"\\x\"", 4, 2 }, { "\"\\u12G4\"", 8, 5 },
        { "\"\\u12", 5, 5 }, { "\"\\", 2, 2 }, { "nul\0l", 5, 3 }, { "[\"a\"\0]", 6, 4 }, { "\"a\0b\"", 5, 2 },
        { "\"\\uD800\"", 8, 7 }, { "\"\\uD800\\u0041\"", 14, 7 }, { "\"\\uD800x\"", 9, 7 }, { "\"\\uDC00\"", 8, 1 },
        { "\"\\uDE00\\uD83D\"", 14, 1 }, { "\"\\uD800\\", 8, 8 }, { "\"\\uD800\\n\"", 10, 8 },
        { "{\"a\":1,}", 8, 7 }, { "{,}", 3, 1 }, { "{\"a\"}", 5, 4 }, { "{1:2}", 5, 1 }, { "[}", 2, 1 },
        { "{]", 2, 1 }, { "]", 1, 0 }, { "[1]]", 4, 3 }, { "{\"a\":1}}", 8, 7 }, { "[1,,2]", 6, 3 },
        { "\xef\xbb\xbf{}", 5, 0 }, { "{'a':1}", 7, 1 }, { "[1\v]", 4, 2 }, { "[\f]", 3, 1 },
        { "\"\xc3\"", 3, 2 }, { "[\"\xc3\x28\"]", 6, 3 } };
    size_t i;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t off = 777;
        rsbus_result r = rsbus_json_validate(bad[i].s, bad[i].n, &off);
        CHECK_EQ_INT(r, RSBUS_E_JSON);
        if (off != bad[i].off) fprintf(stderr, "  case %zu \"%s\": offset %zu, want %zu\n", i, bad[i].s, off, bad[i].off);
        CHECK_EQ_INT(off, bad[i].off);
        CHECK_EQ_INT(rsbus_json_validate(bad[i].s, bad[i].n, NULL), RSBUS_E_JSON);
        CHECK_EQ_INT(rsbus_json_get(bad[i].s, bad[i].n, "", NULL), RSBUS_E_JSON);
    }
    for (i = 0; i < sizeof utf8_invalid / sizeof utf8_invalid[0]; i++) {
        char doc[40];
        size_t off = 777;
        snprintf(doc, sizeof doc, "[\"%s\"]", utf8_invalid[i].s);
        CHECK_EQ_INT(validate_str(doc, &off), RSBUS_E_JSON);
        CHECK_EQ_INT(off, 2 + utf8_invalid[i].bad);
    }
    /* arguments */
    CHECK_EQ_INT(rsbus_json_validate(NULL, 0, NULL), RSBUS_E_JSON);
    {
        size_t off = 777;
        CHECK_EQ_INT(rsbus_json_validate(NULL, 0, &off), RSBUS_E_JSON);
        CHECK_EQ_INT(off, 0);
    }
    CHECK_EQ_INT(rsbus_json_validate(NULL, 5, NULL), RSBUS_E_ARG);
    /* the length, not a NUL, ends the text */
    CHECK_EQ_INT(rsbus_json_validate("[1]xyz", 3, NULL), RSBUS_OK);
    CHECK_EQ_INT(rsbus_json_validate("[1]", 2, NULL), RSBUS_E_JSON);
}

TEST(reader_control_chars) {
    char doc[8];
    unsigned c;
    for (c = 0; c < 0x20; c++) {                              /* raw control characters in a string */
        size_t off = 0;
        doc[0] = '"'; doc[1] = 'a'; doc[2] = (char)c; doc[3] = '"';
        CHECK_EQ_INT(rsbus_json_validate(doc, 4, &off), RSBUS_E_JSON);
        CHECK_EQ_INT(off, 2);
    }
    for (c = 0; c < 256; c++) {                               /* only space, tab, CR and LF are whitespace */
        size_t off = 0;
        rsbus_result r;
        doc[0] = '['; doc[1] = (char)c; doc[2] = ']';
        r = rsbus_json_validate(doc, 3, &off);
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n' || (c >= '0' && c <= '9')) CHECK_EQ_INT(r, RSBUS_OK);
        else CHECK_EQ_INT(r, RSBUS_E_JSON);
    }
}

TEST(reader_depth) {
    size_t d = RSBUS_JSON_MAX_DEPTH, i, off = 0, big = 100000;
    char *s = (char *)malloc(2 * (d + 1) + 1);
    char *o = (char *)malloc(6 * (d + 1) + 2);
    char *deep = (char *)malloc(big);
    size_t n;
    rsbus_jval v;
    REQUIRE(s && o && deep);
    /* arrays: exactly the limit, then one more */
    for (i = 0; i < d; i++) { s[i] = '['; s[2 * d - 1 - i] = ']'; }
    CHECK_EQ_INT(rsbus_json_validate(s, 2 * d, &off), RSBUS_OK);
    CHECK_EQ_INT(rsbus_json_get(s, 2 * d, "", &v), RSBUS_OK);
    CHECK_EQ_INT(v.len, 2 * d);
    for (i = 0; i <= d; i++) { s[i] = '['; s[2 * d + 1 - i] = ']'; }
    CHECK_EQ_INT(rsbus_json_validate(s, 2 * d + 2, &off), RSBUS_E_JSON);
    CHECK_EQ_INT(off, d);
    CHECK_EQ_INT(rsbus_json_get(s, 2 * d + 2, "", &v), RSBUS_E_JSON);
    /* objects */
    n = 0;
    for (i = 0; i < d; i++) { memcpy(o + n, "{\"a\":", 5); n += 5; }
    o[n++] = '1';
    for (i = 0; i < d; i++) o[n++] = '}';
    CHECK_EQ_INT(rsbus_json_validate(o, n, &off), RSBUS_OK);
    n = 0;
    for (i = 0; i <= d; i++) { memcpy(o + n, "{\"a\":", 5); n += 5; }
    o[n++] = '1';
    for (i = 0; i <= d; i++) o[n++] = '}';
    CHECK_EQ_INT(rsbus_json_validate(o, n, &off), RSBUS_E_JSON);
    CHECK_EQ_INT(off, 5 * d);
    /* 100000 levels: refused at the limit, no crash */
    memset(deep, '[', big);
    CHECK_EQ_INT(rsbus_json_validate(deep, big, &off), RSBUS_E_JSON);
    CHECK_EQ_INT(off, d);
    CHECK_EQ_INT(rsbus_json_get(deep, big, "[0][0]", &v), RSBUS_E_JSON);
    for (i = 0; i < big; i++) deep[i] = (i % 5 == 4) ? '[' : "{\"\":"[i % 5];
    CHECK_EQ_INT(rsbus_json_validate(deep, big, &off), RSBUS_E_JSON);
    free(s);
    free(o);
    free(deep);
}

/* ---- reader fast paths: 8-byte runs of string bytes and digits, lazy whitespace ------------- */

/* Validates (and get "" on) an exactly sized copy of doc, so a sanitizer sees any read past its end.
   want_off is the expected error offset (ignored when want is RSBUS_OK: the offset is then untouched).
   Returns 1 when both agree with want; prints the first few mismatches. */
static int fast_shown;
static int fast_case(const char *doc, size_t n, rsbus_result want, size_t want_off) {
    char *b = (char *)malloc(n ? n : 1);
    size_t off = 777, i;
    rsbus_result r, rg;
    int ok;
    if (!b) return 0;
    memcpy(b, doc, n);
    r = rsbus_json_validate(b, n, &off);
    rg = rsbus_json_get(b, n, "", NULL);
    ok = r == want && rg == want && (want == RSBUS_OK ? off == 777 : off == want_off);
    if (!ok && fast_shown++ < 10) {
        fprintf(stderr, "  validate -> %d at %zu, get -> %d; want %d at %zu: ", (int)r, off, (int)rg, (int)want, want_off);
        for (i = 0; i < n; i++) fprintf(stderr, (unsigned char)b[i] >= 0x20 && (unsigned char)b[i] < 0x7f ? "%c" : "\\x%02x",
                                        (unsigned char)b[i]);
        fputc('\n', stderr);
    }
    free(b);
    return ok;
}

/* strings of 0..40 bytes (8-byte runs and their tails) with one special sequence at every position, in
   every place a string can be: the first bad byte is found at the same offset whatever the alignment */
TEST(reader_string_runs) {
    static const struct { const char *s; size_t n; int ok; size_t bad; } ins[] = {
        { "\"", 1, 0, 1 },               /* ends the string early: the byte after it is unexpected */
        { "\\\\", 2, 1, 0 }, { "\\\"", 2, 1, 0 }, { "\\/", 2, 1, 0 }, { "\\n", 2, 1, 0 }, { "\\u00e9", 6, 1, 0 },
        { "\\uD83D\\uDE00", 12, 1, 0 }, { "\\x", 2, 0, 1 }, { "\\u12G4", 6, 0, 4 }, { "\\uDC00", 6, 0, 0 },
        { "\0", 1, 0, 0 }, { "\x01", 1, 0, 0 }, { "\t", 1, 0, 0 }, { "\n", 1, 0, 0 }, { "\x1f", 1, 0, 0 },
        { " ", 1, 1, 0 }, { "!", 1, 1, 0 }, { "#", 1, 1, 0 }, { "[", 1, 1, 0 }, { "]", 1, 1, 0 }, { "\x7f", 1, 1, 0 },
        { "\x80", 1, 0, 0 }, { "\xa2", 1, 0, 0 }, { "\xdc", 1, 0, 1 }, { "\xff", 1, 0, 0 }, { "\xc0\xaf", 2, 0, 0 },
        { "\xc3\xa9", 2, 1, 0 }, { "\xc3(", 2, 0, 1 }, { "\xdf\xbf", 2, 1, 0 }, { "\xe2\x82\xac", 3, 1, 0 },
        { "\xe2\x82(", 3, 0, 2 }, { "\xe2(\xac", 3, 0, 1 }, { "\xed\x9f\xbf", 3, 1, 0 }, { "\xed\xa0\x80", 3, 0, 1 },
        { "\xe0\x9f\xbf", 3, 0, 1 }, { "\xef\xbf\xbf", 3, 1, 0 }, { "\xf0\x9f\x98\x80", 4, 1, 0 },
        { "\xf4\x90\x80\x80", 4, 0, 1 }, { "\xf0\x9f\x98(", 4, 0, 3 }, { "\xc3\xa9\xc3\xa9\xe2\x82\xac\xc3", 8, 0, 8 } };
    static const struct { const char *pre, *post; } ctx[] = {
        { "\"", "\"" }, { "{\"", "\":1}" }, { "{\"k\":\"", "\"}" }, { "[1,\"", "\"]" }, { "[\"", "\",2]" },
        { "{\"a\":1,\"", "\":2}" }, { " [ \"", "\" ] " } };
    char doc[128];
    size_t len, pos, i, c, bad = 0, cases = 0;
    for (c = 0; c < sizeof ctx / sizeof ctx[0]; c++) {
        size_t pl = strlen(ctx[c].pre), sl = strlen(ctx[c].post);
        for (len = 0; len <= 40; len++) {
            for (pos = 0; pos <= len; pos++) {
                for (i = 0; i < sizeof ins / sizeof ins[0]; i++) {
                    size_t n = 0, k;
                    if (pos == len && i > 0) break;                    /* pos == len: no insertion (once) */
                    memcpy(doc, ctx[c].pre, pl); n = pl;
                    for (k = 0; k < pos; k++) doc[n++] = (char)('a' + k % 26);
                    if (pos < len) { memcpy(doc + n, ins[i].s, ins[i].n); n += ins[i].n; }
                    for (k = pos + 1; k < len; k++) doc[n++] = (char)('A' + k % 26);
                    memcpy(doc + n, ctx[c].post, sl); n += sl;
                    cases++;
                    if (pos == len) bad += !fast_case(doc, n, RSBUS_OK, 0);
                    else bad += !fast_case(doc, n, ins[i].ok ? RSBUS_OK : RSBUS_E_JSON, pl + pos + ins[i].bad);
                    /* cut inside the string (or right after its opening quote): refused at the end */
                    if (pos == len || ins[i].ok) {
                        size_t end = pl + pos + (pos < len ? ins[i].n : 0), t;
                        for (t = pl; t <= end && t < n; t++) { bad += !fast_case(doc, t, RSBUS_E_JSON, t); cases++; }
                    }
                }
            }
        }
    }
    CHECK_EQ_INT(bad, 0);
    CHECK(cases > 10000);
}

/* keys of 0..24 bytes with an escape at every position: rsbus_json_get compares them decoded */
TEST(reader_key_runs) {
    char doc[160], path[64];
    size_t len, pos, k, bad = 0;
    for (len = 1; len <= 24; len++) {
        for (pos = 0; pos < len; pos++) {
            size_t n = 0, pn = 0;
            rsbus_jval v;
            memcpy(doc, "{\"x\":0,\"", 8); n = 8;
            for (k = 0; k < len; k++) {
                char ch = (char)('a' + (k * 7) % 26);
                if (k == pos) { memcpy(doc + n, "\\u0062", 6); n += 6; ch = 'b'; }
                else doc[n++] = ch;
                path[pn++] = ch;
            }
            path[pn] = 0;
            memcpy(doc + n, "\":5,\"", 5); n += 5;
            memcpy(doc + n, path, pn); n += pn;                        /* the same key, unescaped: a duplicate */
            memcpy(doc + n, "\":6}", 4); n += 4;
            if (rsbus_json_get(doc, n, path, &v) != RSBUS_OK || v.len != 1 || v.ptr[0] != '5') bad++;
            path[pos] = 'c';                                           /* a near miss */
            if (rsbus_json_get(doc, n, path, &v) != RSBUS_E_NOTFOUND) bad++;
        }
    }
    CHECK_EQ_INT(bad, 0);
}

/* digit runs of 1..40 in the integer, fraction and exponent, ended by every kind of byte */
TEST(reader_number_runs) {
    static const char *const stop_bad = "a/:x-+\"tn \xb0\xb5\xb9\x80\xff";   /* a space is fine only before ']' */
    char doc[160], digits[48];
    size_t len, k, i, bad = 0;
    for (len = 1; len <= 40; len++) {
        static const char *const forms[] = { "%s", "-%s", "0.%s", "%s.%s", "%se%s", "%sE-%s", "-%s.%se+%s" };
        static const struct { const char *pre, *post; } ctx[] = { { "", "" }, { "[", "]" }, { "{\"a\":", "}" },
                                                                  { "[", ",1]" }, { "[ ", " ]" }, { "{\"a\":", " }" } };
        char num[140];
        size_t f, c;
        for (k = 0; k < len; k++) digits[k] = (char)('1' + k % 9);
        digits[len] = 0;
        for (f = 0; f < sizeof forms / sizeof forms[0]; f++) {
            snprintf(num, sizeof num, forms[f], digits, digits, digits);
            for (c = 0; c < sizeof ctx / sizeof ctx[0]; c++) {
                int n = snprintf(doc, sizeof doc, "%s%s%s", ctx[c].pre, num, ctx[c].post);
                bad += !fast_case(doc, (size_t)n, RSBUS_OK, 0);
            }
        }
        /* a bad byte in place of each digit after the first: the number ends there and the byte is refused */
        for (k = 1; k < len; k++) {
            for (i = 0; stop_bad[i]; i++) {
                int n;
                if (stop_bad[i] == ' ') continue;
                n = snprintf(doc, sizeof doc, "[%s]", digits);
                doc[1 + k] = stop_bad[i];
                bad += !fast_case(doc, (size_t)n, RSBUS_E_JSON, 1 + k);
                n = snprintf(doc, sizeof doc, "[0.%s]", digits);            /* in the fraction */
                doc[3 + k] = stop_bad[i];
                bad += !fast_case(doc, (size_t)n, RSBUS_E_JSON, 3 + k);
                n = snprintf(doc, sizeof doc, "[1e%s]", digits);            /* in the exponent */
                doc[3 + k] = stop_bad[i];
                bad += !fast_case(doc, (size_t)n, RSBUS_E_JSON, 3 + k);
            }
            doc[0] = '['; memcpy(doc + 1, digits, len); doc[1 + k] = ' '; doc[1 + len] = ']';
            if (k + 1 < len) bad += !fast_case(doc, len + 2, RSBUS_E_JSON, 2 + k);   /* "[12 34]": refused at the 3 */
            else bad += !fast_case(doc, len + 2, RSBUS_OK, 0);                         /* "[123 ]" */
        }
        /* a leading zero, and numbers cut before a digit that must follow */
        bad += !fast_case(doc, (size_t)snprintf(doc, sizeof doc, "[0%s]", digits), RSBUS_E_JSON, 2);
        bad += !fast_case(doc, (size_t)snprintf(doc, sizeof doc, "[-0%s]", digits), RSBUS_E_JSON, 3);
        bad += !fast_case(doc, (size_t)snprintf(doc, sizeof doc, "%s.", digits), RSBUS_E_JSON, len + 1);
        bad += !fast_case(doc, (size_t)snprintf(doc, sizeof doc, "%se", digits), RSBUS_E_JSON, len + 1);
        bad += !fast_case(doc, (size_t)snprintf(doc, sizeof doc, "%s.%sE+", digits, digits), RSBUS_E_JSON, 2 * len + 3);
        bad += !fast_case(doc, (size_t)snprintf(doc, sizeof doc, "[%s.]", digits), RSBUS_E_JSON, len + 2);
        bad += !fast_case(doc, (size_t)snprintf(doc, sizeof doc, "[%s.e1]", digits), RSBUS_E_JSON, len + 2);
        bad += !fast_case(doc, (size_t)snprintf(doc, sizeof doc, "[%se]", digits), RSBUS_E_JSON, len + 2);
        bad += !fast_case(doc, (size_t)snprintf(doc, sizeof doc, "[%s.%s.1]", digits, digits), RSBUS_E_JSON, 2 * len + 2);
        bad += !fast_case(doc, (size_t)snprintf(doc, sizeof doc, "[%se1.5]", digits), RSBUS_E_JSON, len + 3);
    }
    CHECK_EQ_INT(bad, 0);
}

/* true/false/null whole, cut at every length, and with each byte changed; whitespace around every token */
TEST(reader_literals_and_whitespace) {
    static const char *const lits[] = { "true", "false", "null" };
    static const char *const ws[] = { "", " ", "\t", "\r\n", "  \n\t \r " };
    char doc[256];
    size_t i, k, w, bad = 0;
    for (i = 0; i < 3; i++) {
        size_t ln = strlen(lits[i]);
        bad += !fast_case(lits[i], ln, RSBUS_OK, 0);
        bad += !fast_case(doc, (size_t)snprintf(doc, sizeof doc, "[%s]", lits[i]), RSBUS_OK, 0);
        bad += !fast_case(doc, (size_t)snprintf(doc, sizeof doc, "{\"a\":%s}", lits[i]), RSBUS_OK, 0);
        bad += !fast_case(doc, (size_t)snprintf(doc, sizeof doc, "[%sx]", lits[i]), RSBUS_E_JSON, ln + 1);
        for (k = 0; k < ln; k++) {
            bad += !fast_case(lits[i], k, RSBUS_E_JSON, k == 0 ? 0 : k);          /* cut: refused at the end */
            snprintf(doc, sizeof doc, "[%s]", lits[i]);
            bad += !fast_case(doc, 1 + k, RSBUS_E_JSON, 1 + k);
            doc[1 + k] = (char)(doc[1 + k] ^ 0x20);                               /* "[tRue]": refused there */
            bad += !fast_case(doc, ln + 2, RSBUS_E_JSON, 1 + k);
            snprintf(doc, sizeof doc, "[%.*s]", (int)k, lits[i]);                 /* "[tru]": at the ']' */
            if (k > 0) bad += !fast_case(doc, k + 2, RSBUS_E_JSON, 1 + k);
        }
    }
    for (w = 0; w < sizeof ws / sizeof ws[0]; w++) {
        const char *s = ws[w];
        int n = snprintf(doc, sizeof doc, "%s{%s\"a\"%s:%s[%s1%s,%s\"b\"%s,%strue%s,%s{%s}%s,%s[%s]%s,%s-0.5e1%s]%s,%s\"c\"%s:%snull%s}%s",
                         s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s);
        size_t wl = strlen(s);
        rsbus_jval v;
        bad += !fast_case(doc, (size_t)n, RSBUS_OK, 0);
        if (rsbus_json_get(doc, (size_t)n, "a[1]", &v) != RSBUS_OK || v.len != 3) bad++;
        if (rsbus_json_get(doc, (size_t)n, "c", &v) != RSBUS_OK || v.type != RSBUS_JNULL) bad++;
        /* the byte after whitespace is judged where it is */
        bad += !fast_case(doc, (size_t)snprintf(doc, sizeof doc, "{%s\"a\"%sx", s, s), RSBUS_E_JSON, 4 + 2 * wl);
        bad += !fast_case(doc, (size_t)snprintf(doc, sizeof doc, "{%s\"a\"%s:%sx", s, s, s), RSBUS_E_JSON, 5 + 3 * wl);
        bad += !fast_case(doc, (size_t)snprintf(doc, sizeof doc, "[1%sx", s), RSBUS_E_JSON, 2 + wl);
        bad += !fast_case(doc, (size_t)snprintf(doc, sizeof doc, "[1%s,%s]", s, s), RSBUS_E_JSON, 3 + 2 * wl);
        bad += !fast_case(doc, (size_t)snprintf(doc, sizeof doc, "{\"a\":1%s,%s}", s, s), RSBUS_E_JSON, 7 + 2 * wl);
        bad += !fast_case(doc, (size_t)snprintf(doc, sizeof doc, "{%s,", s), RSBUS_E_JSON, 1 + wl);
        bad += !fast_case(doc, (size_t)snprintf(doc, sizeof doc, "[1%s", s), RSBUS_E_JSON, 2 + wl);
        bad += !fast_case(doc, (size_t)snprintf(doc, sizeof doc, "{\"a\"%s", s), RSBUS_E_JSON, 4 + wl);
        bad += !fast_case(doc, (size_t)snprintf(doc, sizeof doc, "%s1%s", s, s), RSBUS_OK, 0);
        bad += !fast_case(doc, (size_t)snprintf(doc, sizeof doc, "%s1%s]", s, s), RSBUS_E_JSON, 1 + 2 * wl);
    }
    CHECK_EQ_INT(bad, 0);
}

/* ---- rsbus_json_get ------------------------------------------------------------------------- */

static const char get_doc[] =
    "  {\"customer\":{\"name\":\"Ann\",\"address\":{\"zip\":\"12345\",\"city\":\"Oslo\"}},\n"
    "   \"items\":[{\"sku\":\"A1\",\"qty\":2},{\"sku\":\"B2\",\"qty\":1,\"tags\":[\"x\",\"y\"]}],\n"
    "   \"a\\u0062\":1, \"a.b\":2, \"dup\":1, \"dup\":2, \"0\":\"zero\", \"esc\\\"q\":3, \"e\":[], \"o\":{},\n"
    "   \"n\":null, \"t\":true, \"f\":false, \"num\" : -1.5e3 , \"k\\/\":7, \"\\u00e9t\\u00e9\":8,\n"
    "   \"nested\":[[1,2],[3,[4,5]]], \"d2\":{\"x\":1}, \"d2\":{\"y\":2}, \"long\":\"he said \\\"hi\\\"\\n\" }  ";

static int get_is(const char *path, rsbus_result want, rsbus_jtype type, const char *text) {
    rsbus_jval v;
    rsbus_result r = rsbus_json_get(get_doc, strlen(get_doc), path, &v);
    if (r != want) { fprintf(stderr, "  path '%s': result %d, want %d\n", path, r, want); return 0; }
    if (r != RSBUS_OK) return v.type == RSBUS_JNONE && v.ptr == NULL && v.len == 0;
    if (v.type != type || v.len != strlen(text) || memcmp(v.ptr, text, v.len) != 0) {
        fprintf(stderr, "  path '%s': type %d '%.*s', want %d '%s'\n", path, v.type, (int)v.len, v.ptr, type, text);
        return 0;
    }
    return 1;
}

TEST(get_paths) {
    CHECK(get_is("customer.address.zip", RSBUS_OK, RSBUS_JSTRING, "\"12345\""));
    CHECK(get_is("customer.name", RSBUS_OK, RSBUS_JSTRING, "\"Ann\""));
    CHECK(get_is("customer.address", RSBUS_OK, RSBUS_JOBJECT, "{\"zip\":\"12345\",\"city\":\"Oslo\"}"));
    CHECK(get_is("items.0.sku", RSBUS_OK, RSBUS_JSTRING, "\"A1\""));
    CHECK(get_is("items[0].sku", RSBUS_OK, RSBUS_JSTRING, "\"A1\""));
    CHECK(get_is("items[1].qty", RSBUS_OK, RSBUS_JNUMBER, "1"));
    CHECK(get_is("items.1.tags.1", RSBUS_OK, RSBUS_JSTRING, "\"y\""));
    CHECK(get_is("items[1].tags[0]", RSBUS_OK, RSBUS_JSTRING, "\"x\""));
    CHECK(get_is("items[1].tags", RSBUS_OK, RSBUS_JARRAY, "[\"x\",\"y\"]"));
    CHECK(get_is("nested[1][1][0]", RSBUS_OK, RSBUS_JNUMBER, "4"));
    CHECK(get_is("nested.1.1.1", RSBUS_OK, RSBUS_JNUMBER, "5"));
    CHECK(get_is("nested[0]", RSBUS_OK, RSBUS_JARRAY, "[1,2]"));
    CHECK(get_is("ab", RSBUS_OK, RSBUS_JNUMBER, "1"));                 /* key written "a\u0062" */
    CHECK(get_is("a\\u0062", RSBUS_E_NOTFOUND, RSBUS_JNONE, ""));
    CHECK(get_is("esc\"q", RSBUS_OK, RSBUS_JNUMBER, "3"));
    CHECK(get_is("k/", RSBUS_OK, RSBUS_JNUMBER, "7"));
    CHECK(get_is("\xc3\xa9t\xc3\xa9", RSBUS_OK, RSBUS_JNUMBER, "8"));
    CHECK(get_is("dup", RSBUS_OK, RSBUS_JNUMBER, "1"));                /* the first of duplicates */
    CHECK(get_is("d2.x", RSBUS_OK, RSBUS_JNUMBER, "1"));
    CHECK(get_is("d2.y", RSBUS_E_NOTFOUND, RSBUS_JNONE, ""));          /* only the first "d2" is looked at */
    CHECK(get_is("0", RSBUS_OK, RSBUS_JSTRING, "\"zero\""));           /* a number segment names a key */
    CHECK(get_is("e", RSBUS_OK, RSBUS_JARRAY, "[]"));
    CHECK(get_is("o", RSBUS_OK, RSBUS_JOBJECT, "{}"));
    CHECK(get_is("n", RSBUS_OK, RSBUS_JNULL, "null"));
    CHECK(get_is("t", RSBUS_OK, RSBUS_JBOOL, "true"));
    CHECK(get_is("f", RSBUS_OK, RSBUS_JBOOL, "false"));
    CHECK(get_is("num", RSBUS_OK, RSBUS_JNUMBER, "-1.5e3"));
    CHECK(get_is("long", RSBUS_OK, RSBUS_JSTRING, "\"he said \\\"hi\\\"\\n\""));
    /* not found */
    CHECK(get_is("missing", RSBUS_E_NOTFOUND, RSBUS_JNONE, ""));
    CHECK(get_is("customer.missing", RSBUS_E_NOTFOUND, RSBUS_JNONE, ""));
    CHECK(get_is("customer.name.x", RSBUS_E_NOTFOUND, RSBUS_JNONE, ""));   /* into a scalar */
    CHECK(get_is("customer.name[0]", RSBUS_E_NOTFOUND, RSBUS_JNONE, ""));
    CHECK(get_is("customer[0]", RSBUS_E_NOTFOUND, RSBUS_JNONE, ""));       /* index on an object */
    CHECK(get_is("items[2]", RSBUS_E_NOTFOUND, RSBUS_JNONE, ""));
    CHECK(get_is("items.2", RSBUS_E_NOTFOUND, RSBUS_JNONE, ""));
    CHECK(get_is("items.x", RSBUS_E_NOTFOUND, RSBUS_JNONE, ""));           /* key on an array */
    CHECK(get_is("items.00", RSBUS_E_NOTFOUND, RSBUS_JNONE, ""));          /* not an index */
    CHECK(get_is("items[999999999999999999]", RSBUS_E_NOTFOUND, RSBUS_JNONE, ""));
    CHECK(get_is("e[0]", RSBUS_E_NOTFOUND, RSBUS_JNONE, ""));
    CHECK(get_is("o.x", RSBUS_E_NOTFOUND, RSBUS_JNONE, ""));
    CHECK(get_is("a", RSBUS_E_NOTFOUND, RSBUS_JNONE, ""));                 /* "a.b" cannot be named */
    CHECK(get_is("Customer", RSBUS_E_NOTFOUND, RSBUS_JNONE, ""));
    CHECK(get_is("custome", RSBUS_E_NOTFOUND, RSBUS_JNONE, ""));
    CHECK(get_is("customerx", RSBUS_E_NOTFOUND, RSBUS_JNONE, ""));
    /* bad paths */
    {
        static const char *const badp[] = { "a..b", "a[x]", "[", "]", ".", ".a", "a.", "a[]", "a[01]", "a[1",
                                            "a]", "a[0]b", "a.[0]", "a[-1]", "a[ 1]", "[0]]", "a[99999999999999999999]",
                                            "a[1234567890123456789]", "items[0]..sku" };
        size_t i;
        for (i = 0; i < sizeof badp / sizeof badp[0]; i++) CHECK(get_is(badp[i], RSBUS_E_ARG, RSBUS_JNONE, ""));
    }
    /* the whole document, trimmed */
    {
        rsbus_jval v;
        const char *b = strchr(get_doc, '{'), *e = strrchr(get_doc, '}');
        CHECK_EQ_INT(rsbus_json_get(get_doc, strlen(get_doc), "", &v), RSBUS_OK);
        CHECK(v.ptr == b);
        CHECK_EQ_INT(v.len, (size_t)(e - b) + 1);
        CHECK_EQ_INT(v.type, RSBUS_JOBJECT);
        CHECK_EQ_INT(rsbus_json_get(get_doc, strlen(get_doc), "items[1].qty", NULL), RSBUS_OK);
        CHECK_EQ_INT(rsbus_json_get(get_doc, strlen(get_doc), "nope", NULL), RSBUS_E_NOTFOUND);
        CHECK_EQ_INT(rsbus_json_get(get_doc, strlen(get_doc), NULL, &v), RSBUS_E_ARG);
    }
}

TEST(get_other_roots) {
    rsbus_jval v;
    const char *arr = " [10, [20, 30], {\"a\": [40]}] ";
    CHECK_EQ_INT(rsbus_json_get(arr, strlen(arr), "0", &v), RSBUS_OK);
    CHECK(v.len == 2 && memcmp(v.ptr, "10", 2) == 0);
    CHECK_EQ_INT(rsbus_json_get(arr, strlen(arr), "[1][0]", &v), RSBUS_OK);
    CHECK(v.len == 2 && memcmp(v.ptr, "20", 2) == 0);
    CHECK_EQ_INT(rsbus_json_get(arr, strlen(arr), "1.1", &v), RSBUS_OK);
    CHECK(v.len == 2 && memcmp(v.ptr, "30", 2) == 0);
    CHECK_EQ_INT(rsbus_json_get(arr, strlen(arr), "[2].a[0]", &v), RSBUS_OK);
    CHECK(v.len == 2 && memcmp(v.ptr, "40", 2) == 0);
    CHECK_EQ_INT(rsbus_json_get(arr, strlen(arr), "2.a.0", &v), RSBUS_OK);
    CHECK_EQ_INT(rsbus_json_get(arr, strlen(arr), "[3]", &v), RSBUS_E_NOTFOUND);
    CHECK_EQ_INT(rsbus_json_get(arr, strlen(arr), "a", &v), RSBUS_E_NOTFOUND);
    CHECK_EQ_INT(rsbus_json_get(" 42 ", 4, "", &v), RSBUS_OK);
    CHECK(v.ptr && v.len == 2 && memcmp(v.ptr, "42", 2) == 0 && v.type == RSBUS_JNUMBER);
    CHECK_EQ_INT(rsbus_json_get("42", 2, "a", &v), RSBUS_E_NOTFOUND);
    CHECK_EQ_INT(rsbus_json_get("42", 2, "[0]", &v), RSBUS_E_NOTFOUND);
    CHECK_EQ_INT(rsbus_json_get("\"s\"", 3, "", &v), RSBUS_OK);
    CHECK_EQ_INT(v.type, RSBUS_JSTRING);
    /* the document is validated entirely, even past the value */
    CHECK_EQ_INT(rsbus_json_get("{\"a\":1,", 7, "a", &v), RSBUS_E_JSON);
    CHECK_EQ_INT(rsbus_json_get("{\"a\":1} x", 9, "a", &v), RSBUS_E_JSON);
    CHECK_EQ_INT(rsbus_json_get("[1,2,", 5, "[0]", &v), RSBUS_E_JSON);
    CHECK_EQ_INT(v.type, RSBUS_JNONE);
    /* arguments: a bad path wins over a bad document */
    CHECK_EQ_INT(rsbus_json_get(NULL, 0, "", &v), RSBUS_E_JSON);
    CHECK_EQ_INT(rsbus_json_get(NULL, 3, "", &v), RSBUS_E_ARG);
    CHECK_EQ_INT(rsbus_json_get("{", 1, "a..b", &v), RSBUS_E_ARG);
    /* escaped keys against segments of other lengths */
    {
        const char *d = "{\"\\u0061\\u0062c\":1,\"a\\\"\":2,\"x\\u0000\":3,\"\\ud83d\\ude00\":4}";
        CHECK_EQ_INT(rsbus_json_get(d, strlen(d), "abc", &v), RSBUS_OK);
        CHECK_EQ_INT(rsbus_json_get(d, strlen(d), "ab", &v), RSBUS_E_NOTFOUND);
        CHECK_EQ_INT(rsbus_json_get(d, strlen(d), "abcd", &v), RSBUS_E_NOTFOUND);
        CHECK_EQ_INT(rsbus_json_get(d, strlen(d), "a\"", &v), RSBUS_OK);
        CHECK(v.len == 1 && v.ptr[0] == '2');
        CHECK_EQ_INT(rsbus_json_get(d, strlen(d), "x", &v), RSBUS_E_NOTFOUND);
        CHECK_EQ_INT(rsbus_json_get(d, strlen(d), "\xf0\x9f\x98\x80", &v), RSBUS_OK);
        CHECK(v.len == 1 && v.ptr[0] == '4');
    }
}

/* ---- jval accessors ------------------------------------------------------------------------- */

static rsbus_jval jv(rsbus_jtype t, const char *text) {
    rsbus_jval v;
    v.type = t;
    v.ptr = text;
    v.len = text ? strlen(text) : 0;
    return v;
}

TEST(jval_str_cases) {
    char out[64];
    size_t len = 0;
    rsbus_jval v = jv(RSBUS_JSTRING, "\"a\\\"b\\\\c\\/d\\be\\ff\\ng\\rh\\ti\"");
    CHECK_EQ_INT(rsbus_jval_str(&v, out, sizeof out, &len), RSBUS_OK);
    CHECK_EQ_STR(out, "a\"b\\c/d\be\ff\ng\rh\ti");
    CHECK_EQ_INT(len, 17);
    v = jv(RSBUS_JSTRING, "\"\\u00e9\\u20AC\\ud83d\\ude00\\uFFFF x\"");
    CHECK_EQ_INT(rsbus_jval_str(&v, out, sizeof out, &len), RSBUS_OK);
    CHECK_EQ_STR(out, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xef\xbf\xbf x");
    CHECK_EQ_INT(len, 14);
    v = jv(RSBUS_JSTRING, "\"a\\u0000b\"");                    /* an escaped NUL: len tells */
    CHECK_EQ_INT(rsbus_jval_str(&v, out, sizeof out, &len), RSBUS_OK);
    CHECK_EQ_INT(len, 3);
    CHECK(memcmp(out, "a\0b", 4) == 0);
    v = jv(RSBUS_JSTRING, "\"\"");
    CHECK_EQ_INT(rsbus_jval_str(&v, out, 1, &len), RSBUS_OK);
    CHECK_EQ_STR(out, "");
    CHECK_EQ_INT(len, 0);
    /* too small: the length needed, and "" */
    v = jv(RSBUS_JSTRING, "\"hello\"");
    memset(out, 'z', sizeof out);
    CHECK_EQ_INT(rsbus_jval_str(&v, out, 5, &len), RSBUS_E_ARG);
    CHECK_EQ_INT(len, 5);
    CHECK_EQ_STR(out, "");
    CHECK_EQ_INT(out[5], 'z');
    CHECK_EQ_INT(rsbus_jval_str(&v, out, 6, &len), RSBUS_OK);
    CHECK_EQ_STR(out, "hello");
    CHECK_EQ_INT(rsbus_jval_str(&v, NULL, 0, &len), RSBUS_E_ARG);
    CHECK_EQ_INT(len, 5);
    CHECK_EQ_INT(rsbus_jval_str(&v, out, sizeof out, NULL), RSBUS_OK);
    CHECK_EQ_INT(rsbus_jval_str(&v, NULL, 3, &len), RSBUS_E_ARG);
    v = jv(RSBUS_JSTRING, "\"\\ud83d\\ude00\"");
    CHECK_EQ_INT(rsbus_jval_str(&v, out, 4, &len), RSBUS_E_ARG);
    CHECK_EQ_INT(len, 4);
    CHECK_EQ_INT(rsbus_jval_str(&v, out, 5, &len), RSBUS_OK);
    /* wrong type, bad text */
    v = jv(RSBUS_JNUMBER, "1");
    CHECK_EQ_INT(rsbus_jval_str(&v, out, sizeof out, &len), RSBUS_E_ARG);
    CHECK_EQ_INT(rsbus_jval_str(NULL, out, sizeof out, &len), RSBUS_E_ARG);
    v = jv(RSBUS_JSTRING, "abc");
    CHECK_EQ_INT(rsbus_jval_str(&v, out, sizeof out, &len), RSBUS_E_JSON);
    v = jv(RSBUS_JSTRING, "\"");
    CHECK_EQ_INT(rsbus_jval_str(&v, out, sizeof out, &len), RSBUS_E_JSON);
    v = jv(RSBUS_JSTRING, "\"\\\"");
    CHECK_EQ_INT(rsbus_jval_str(&v, out, sizeof out, &len), RSBUS_E_JSON);
    v = jv(RSBUS_JSTRING, "\"\\ud800\"");
    CHECK_EQ_INT(rsbus_jval_str(&v, out, sizeof out, &len), RSBUS_E_JSON);
    v = jv(RSBUS_JSTRING, NULL);
    CHECK_EQ_INT(rsbus_jval_str(&v, out, sizeof out, &len), RSBUS_E_ARG);
}

TEST(jval_int_cases) {
    static const struct { const char *s; rsbus_result r; int64_t v; } c[] = {
        { "0", RSBUS_OK, 0 }, { "-0", RSBUS_OK, 0 }, { "7", RSBUS_OK, 7 }, { "-12", RSBUS_OK, -12 },
        { "9223372036854775807", RSBUS_OK, INT64_MAX }, { "-9223372036854775808", RSBUS_OK, INT64_MIN },
        { "9223372036854775808", RSBUS_E_ARG, 0 }, { "-9223372036854775809", RSBUS_E_ARG, 0 },
        { "18446744073709551616", RSBUS_E_ARG, 0 }, { "99999999999999999999999", RSBUS_E_ARG, 0 },
        { "1.0", RSBUS_E_ARG, 0 }, { "1e3", RSBUS_E_ARG, 0 }, { "1E3", RSBUS_E_ARG, 0 }, { "-0.5", RSBUS_E_ARG, 0 },
        { "01", RSBUS_E_JSON, 0 }, { "", RSBUS_E_JSON, 0 }, { "1x", RSBUS_E_JSON, 0 }, { "+1", RSBUS_E_JSON, 0 } };
    size_t i;
    rsbus_jval v;
    int64_t x;
    for (i = 0; i < sizeof c / sizeof c[0]; i++) {
        x = 99;
        v = jv(RSBUS_JNUMBER, c[i].s);
        CHECK_EQ_INT(rsbus_jval_int(&v, &x), c[i].r);
        if (c[i].r == RSBUS_OK) CHECK(x == c[i].v);
        else CHECK_EQ_INT(x, 99);
        CHECK_EQ_INT(rsbus_jval_int(&v, NULL), c[i].r);
    }
    v = jv(RSBUS_JSTRING, "\"1\"");
    CHECK_EQ_INT(rsbus_jval_int(&v, &x), RSBUS_E_ARG);
    CHECK_EQ_INT(rsbus_jval_int(NULL, &x), RSBUS_E_ARG);
}

TEST(jval_num_cases) {
    static const struct { const char *s; double v; } c[] = {
        { "0", 0.0 }, { "1", 1.0 }, { "0.1", 0.1 }, { "-2.5", -2.5 }, { "1e300", 1e300 }, { "1E-300", 1e-300 },
        { "5e-324", 5e-324 }, { "4.9406564584124654e-324", 5e-324 }, { "2.2250738585072014e-308", 2.2250738585072014e-308 },
        { "1.7976931348623157e308", DBL_MAX }, { "123456789012345678901234567890", 1.2345678901234568e29 },
        { "9007199254740993", 9007199254740992.0 }, { "9223372036854775807", 9223372036854775807.0 },
        { "1e-400", 0.0 }, { "0.000001e6", 1.0 }, { "100e-2", 1.0 }, { "-0.0e+0", -0.0 } };
    size_t i;
    rsbus_jval v;
    double d;
    char *big = (char *)malloc(4096);
    int n;
    REQUIRE(big != NULL);
    for (i = 0; i < sizeof c / sizeof c[0]; i++) {
        d = 99;
        v = jv(RSBUS_JNUMBER, c[i].s);
        CHECK_EQ_INT(rsbus_jval_num(&v, &d), RSBUS_OK);
        if (!same_double(d, c[i].v)) fprintf(stderr, "  %s: %.17g\n", c[i].s, d);
        CHECK(same_double(d, c[i].v));
        CHECK_EQ_INT(rsbus_jval_num(&v, NULL), RSBUS_OK);
    }
    v = jv(RSBUS_JNUMBER, "-0");
    CHECK_EQ_INT(rsbus_jval_num(&v, &d), RSBUS_OK);
    CHECK(d == 0 && signbit(d));
    v = jv(RSBUS_JNUMBER, "1e400");                            /* beyond a double */
    CHECK_EQ_INT(rsbus_jval_num(&v, &d), RSBUS_E_ARG);
    CHECK(isinf(d) && d > 0);
    v = jv(RSBUS_JNUMBER, "-1e99999999999999999999");
    CHECK_EQ_INT(rsbus_jval_num(&v, &d), RSBUS_E_ARG);
    CHECK(isinf(d) && d < 0);
    v = jv(RSBUS_JNUMBER, "1e-99999999999999999999");
    CHECK_EQ_INT(rsbus_jval_num(&v, &d), RSBUS_OK);
    CHECK(d == 0);
    /* long texts: 1000 leading zeros, then a correctly rounded halfway case decided by a far digit */
    n = snprintf(big, 4096, "0.");
    memset(big + n, '0', 1000); n += 1000;
    n += snprintf(big + n, (size_t)(4096 - n), "1e1005");
    v = jv(RSBUS_JNUMBER, big);
    CHECK_EQ_INT(rsbus_jval_num(&v, &d), RSBUS_OK);
    CHECK(d == 10000.0);
    n = snprintf(big, 4096, "9007199254740993.");              /* halfway between two doubles ... */
    memset(big + n, '0', 1500); n += 1500;
    big[n] = '\0';
    v = jv(RSBUS_JNUMBER, big);
    CHECK_EQ_INT(rsbus_jval_num(&v, &d), RSBUS_OK);
    CHECK(d == 9007199254740992.0);                            /* ... ties to even */
    big[n++] = '1'; big[n] = '\0';                             /* ... a 1 far away rounds up */
    v = jv(RSBUS_JNUMBER, big);
    CHECK_EQ_INT(rsbus_jval_num(&v, &d), RSBUS_OK);
    CHECK(d == 9007199254740994.0);
    n = snprintf(big, 4096, "9007199254740993");               /* the same with integer digits */
    memset(big + n, '0', 1500); n += 1500;
    n += snprintf(big + n, (size_t)(4096 - n), "1e-1501");
    v = jv(RSBUS_JNUMBER, big);
    CHECK_EQ_INT(rsbus_jval_num(&v, &d), RSBUS_OK);
    CHECK(d == 9007199254740994.0);
    free(big);
    /* wrong type, bad text */
    v = jv(RSBUS_JSTRING, "\"1\"");
    CHECK_EQ_INT(rsbus_jval_num(&v, &d), RSBUS_E_ARG);
    v = jv(RSBUS_JNUMBER, "1.");
    CHECK_EQ_INT(rsbus_jval_num(&v, &d), RSBUS_E_JSON);
    v = jv(RSBUS_JNUMBER, "");
    CHECK_EQ_INT(rsbus_jval_num(&v, &d), RSBUS_E_JSON);
    v = jv(RSBUS_JNUMBER, "nan");
    CHECK_EQ_INT(rsbus_jval_num(&v, &d), RSBUS_E_JSON);
}

TEST(jval_bool_cases) {
    rsbus_jval v = jv(RSBUS_JBOOL, "true");
    int b = 5;
    CHECK_EQ_INT(rsbus_jval_bool(&v, &b), RSBUS_OK); CHECK_EQ_INT(b, 1);
    v = jv(RSBUS_JBOOL, "false");
    CHECK_EQ_INT(rsbus_jval_bool(&v, &b), RSBUS_OK); CHECK_EQ_INT(b, 0);
    CHECK_EQ_INT(rsbus_jval_bool(&v, NULL), RSBUS_OK);
    v = jv(RSBUS_JNULL, "null");
    CHECK_EQ_INT(rsbus_jval_bool(&v, &b), RSBUS_E_ARG);
    v = jv(RSBUS_JNUMBER, "1");
    CHECK_EQ_INT(rsbus_jval_bool(&v, &b), RSBUS_E_ARG);
    v = jv(RSBUS_JBOOL, "tru");
    CHECK_EQ_INT(rsbus_jval_bool(&v, &b), RSBUS_E_JSON);
    CHECK_EQ_INT(rsbus_jval_bool(NULL, &b), RSBUS_E_ARG);
    CHECK_EQ_INT(rsbus_json_get("[false]", 7, "0", &v), RSBUS_OK);
    b = 5;
    CHECK_EQ_INT(rsbus_jval_bool(&v, &b), RSBUS_OK); CHECK_EQ_INT(b, 0);
}

/* ---- generated documents -------------------------------------------------------------------- */

#define GEN_MAX_REC 8
typedef struct gen_rec {
    char path[1024];
    rsbus_jtype type;
    char str[128]; size_t slen;
    int64_t i; int is_int;
    double d;
    int b;
} gen_rec;
typedef struct gen {
    gen_rec rec[GEN_MAX_REC];
    int nrec;
    int maxdepth;
} gen;

/* random text: ASCII, specials, control characters, multibyte UTF-8 (never a surrogate) */
static size_t rand_text(char *out, size_t max, int for_key) {
    size_t n = 0, want = rnd(12);
    while (n < want && n + 4 < max) {
        unsigned kind = rnd(10);
        uint32_t cp;
        if (kind < 4) { out[n++] = (char)(' ' + rnd(95)); }
        else if (kind == 4) { out[n++] = "\"\\/'"[rnd(4)]; }
        else if (kind == 5) { out[n++] = (char)(for_key ? 1 + rnd(31) : rnd(32)); }
        else {
            unsigned char u[4];
            size_t k;
            if (kind == 6) cp = 0x80 + rnd(0x780);
            else if (kind == 7) { do cp = 0x800 + rnd(0xF800); while (cp >= 0xD800 && cp <= 0xDFFF); }
            else if (kind == 8) cp = 0x10000 + rnd(0x100000);
            else cp = 0x2028 + rnd(2);
            k = rsbus__json_utf8_put(cp, u);
            memcpy(out + n, u, k);
            n += k;
        }
        if (for_key && n && (out[n - 1] == '.' || out[n - 1] == '[' || out[n - 1] == ']')) out[n - 1] = '_';
    }
    return n;
}

static void gen_value(rsbus_jw *w, gen *g, int depth, char *path, size_t plen);

static void gen_record(gen *g, const char *path, size_t plen, rsbus_jtype t, gen_rec **out) {
    *out = NULL;
    if (g->nrec >= GEN_MAX_REC || plen >= sizeof g->rec[0].path || rnd(6) != 0) return;
    *out = &g->rec[g->nrec++];
    memcpy((*out)->path, path, plen);
    (*out)->path[plen] = '\0';
    (*out)->type = t;
}

static void gen_value(rsbus_jw *w, gen *g, int depth, char *path, size_t plen) {
    unsigned kind = rnd(depth < g->maxdepth ? (depth < 3 ? 10u : 8u) : 6u);
    if (depth == 0 && rnd(8) != 0) kind = rnd(2) ? 6u : 9u;     /* mostly a container at the top */
    gen_rec *r;
    unsigned i, n;
    switch (kind) {
    case 0: {
        char s[128];
        size_t sl = rand_text(s, sizeof s, 0);
        rsbus_jw_strn(w, s, sl);
        gen_record(g, path, plen, RSBUS_JSTRING, &r);
        if (r) { memcpy(r->str, s, sl); r->slen = sl; }
        break;
    }
    case 1: {
        int64_t x = (int64_t)rng();
        if (rnd(2)) x %= 1000;
        if (rnd(20) == 0) x = rnd(2) ? INT64_MIN : INT64_MAX;
        rsbus_jw_int(w, x);
        gen_record(g, path, plen, RSBUS_JNUMBER, &r);
        if (r) { r->i = x; r->is_int = 1; }
        break;
    }
    case 2: {
        double d;
        if (rnd(2)) { uint64_t bits = rng(); memcpy(&d, &bits, sizeof d); if (isnan(d) || isinf(d)) d = 0.25; }
        else d = (double)((int64_t)rnd(2000000) - 1000000) / 100.0;
        rsbus_jw_num(w, d);
        gen_record(g, path, plen, RSBUS_JNUMBER, &r);
        if (r) { r->d = d; r->is_int = 0; }
        break;
    }
    case 3: {
        int b = (int)rnd(2);
        rsbus_jw_bool(w, b);
        gen_record(g, path, plen, RSBUS_JBOOL, &r);
        if (r) r->b = b;
        break;
    }
    case 4: case 5:
        rsbus_jw_null(w);
        gen_record(g, path, plen, RSBUS_JNULL, &r);
        break;
    case 6: case 8:
        gen_record(g, path, plen, RSBUS_JARRAY, &r);
        rsbus_jw_arr(w);
        n = rnd(depth < 2 ? 9u : 6u);
        for (i = 0; i < n; i++) {
            char seg[32];
            int k = (rnd(2) || plen == 0) ? snprintf(seg, sizeof seg, "[%u]", i) : snprintf(seg, sizeof seg, ".%u", i);
            if (plen + (size_t)k < 1024) memcpy(path + plen, seg, (size_t)k);
            gen_value(w, g, depth + 1, path, plen + (size_t)k < 1024 ? plen + (size_t)k : 1024);
        }
        rsbus_jw_arr_end(w);
        break;
    default:
        gen_record(g, path, plen, RSBUS_JOBJECT, &r);
        rsbus_jw_obj(w);
        n = rnd(depth < 2 ? 9u : 6u);
        for (i = 0; i < n; i++) {
            char key[128];
            size_t kl = rand_text(key, 100, 1), np = plen;
            kl += (size_t)snprintf(key + kl, sizeof key - kl, "_%u", i);   /* unique within the object */
            rsbus_jw_key(w, key);
            if (plen + 1 + kl < 1024) {
                if (plen) path[np++] = '.';
                memcpy(path + np, key, kl);
                np += kl;
            } else {
                np = 1024;
            }
            gen_value(w, g, depth + 1, path, np);
        }
        rsbus_jw_obj_end(w);
        break;
    }
}

static int check_record(const char *doc, size_t len, const gen_rec *r) {
    rsbus_jval v;
    char s[160];
    size_t sl = 0;
    int64_t x = 0;
    double d = 0;
    int b = 0;
    if (rsbus_json_get(doc, len, r->path, &v) != RSBUS_OK || v.type != r->type) return 0;
    switch (r->type) {
    case RSBUS_JSTRING:
        return rsbus_jval_str(&v, s, sizeof s, &sl) == RSBUS_OK && sl == r->slen && memcmp(s, r->str, sl) == 0;
    case RSBUS_JNUMBER:
        if (r->is_int) return rsbus_jval_int(&v, &x) == RSBUS_OK && x == r->i;
        return rsbus_jval_num(&v, &d) == RSBUS_OK && same_double(d, r->d);
    case RSBUS_JBOOL: return rsbus_jval_bool(&v, &b) == RSBUS_OK && b == r->b;
    default: return 1;
    }
}

TEST(generated_documents) {
    int doc, k, bad_valid = 0, bad_get = 0, bad_rec = 0, bad_prefix = 0, bad_fixed = 0, bad_mut = 0, records = 0;
    size_t total = 0;
    for (doc = 0; doc < 3000; doc++) {
        rsbus_jw w, wf;
        gen g;
        char path[1040];
        uint64_t seed = rng_state;
        const char *text;
        size_t len = 0, off;
        rsbus_jval v;
        memset(&g, 0, sizeof g);
        g.maxdepth = RSBUS_JSON_MAX_DEPTH < 10 ? RSBUS_JSON_MAX_DEPTH : 10;
        rsbus_jw_init_alloc(&w, NULL);
        if (doc % 4 == 0) { rsbus_jw_obj(&w); rsbus_jw_obj_end(&w); rsbus_jw_free(&w); rsbus_jw_init_alloc(&w, NULL); }
        gen_value(&w, &g, 0, path, 0);
        text = rsbus_jw_result(&w, &len);
        if (!text) { bad_valid++; rsbus_jw_free(&w); continue; }
        total += len;
        if (rsbus_json_validate(text, len, &off) != RSBUS_OK) {
            if (bad_valid++ < 3) fprintf(stderr, "  refused at %zu: %.200s\n", off, text);
        }
        if (rsbus_json_get(text, len, "", &v) != RSBUS_OK || v.ptr != text || v.len != len) bad_get++;
        for (k = 0; k < g.nrec; k++) {
            records++;
            if (!check_record(text, len, &g.rec[k])) {
                if (bad_rec++ < 3) fprintf(stderr, "  record '%s' type %d in %.300s\n", g.rec[k].path, g.rec[k].type, text);
            }
        }
        /* the same calls into a fixed buffer: one byte short fails, exact fits */
        if (doc % 10 == 0) {
            char *fb = (char *)malloc(len + 1);
            uint64_t after = rng_state;
            gen g2;
            int pass;
            if (!fb) { bad_fixed++; rsbus_jw_free(&w); continue; }
            for (pass = 0; pass < 2; pass++) {
                memset(&g2, 0, sizeof g2);
                g2.maxdepth = g.maxdepth;
                rng_state = seed;
                rsbus_jw_init(&wf, fb, len + (size_t)pass);
                gen_value(&wf, &g2, 0, path, 0);
                if (pass == 0 && rsbus_jw_result(&wf, NULL) != NULL) bad_fixed++;
                if (pass == 1 && (!rsbus_jw_result(&wf, NULL) || memcmp(fb, text, len + 1) != 0)) bad_fixed++;
            }
            rng_state = after;
            free(fb);
        }
        /* every strict prefix of a container is invalid, and stops exactly at its end */
        if (doc < 200 && (text[0] == '{' || text[0] == '[')) {
            size_t p;
            for (p = 0; p < len; p++) {
                off = 0;
                if (rsbus_json_validate(text, p, &off) != RSBUS_E_JSON || off != p) {
                    if (bad_prefix++ < 3) fprintf(stderr, "  prefix %zu (offset %zu) of %.200s\n", p, off, text);
                }
            }
        }
        /* mutated copies: validate and get agree and never crash */
        if (len > 0) {
            char *m = (char *)malloc(len);
            int t;
            if (!m) { bad_mut++; rsbus_jw_free(&w); continue; }
            for (t = 0; t < 4; t++) {
                rsbus_result rv, rg;
                int j, nm = 1 + (int)rnd(3);
                memcpy(m, text, len);
                for (j = 0; j < nm; j++) {
                    size_t at = rnd((unsigned)len);
                    static const char pick[] = "{}[],:\"\\ 0-.eE1tfnu\x01\x80\xc3\xed\xf4";
                    m[at] = rnd(2) ? pick[rnd(sizeof pick - 1)] : (char)rnd(256);
                }
                rv = rsbus_json_validate(m, len, &off);
                if (rv == RSBUS_E_JSON && off > len) bad_mut++;
                rg = rsbus_json_get(m, len, "", &v);
                if ((rv == RSBUS_OK) != (rg == RSBUS_OK)) bad_mut++;
                if (g.nrec) {
                    rg = rsbus_json_get(m, len, g.rec[0].path, &v);
                    if (rv != RSBUS_OK && rg != RSBUS_E_JSON) bad_mut++;
                    if (rg == RSBUS_OK && (v.ptr < m || v.ptr + v.len > m + len)) bad_mut++;
                }
            }
            free(m);
        }
        rsbus_jw_free(&w);
    }
    fprintf(stderr, "  3000 documents, %zu bytes, %d values read back\n", total, records);
    CHECK_EQ_INT(bad_valid, 0);
    CHECK_EQ_INT(bad_get, 0);
    CHECK_EQ_INT(bad_rec, 0);
    CHECK_EQ_INT(bad_fixed, 0);
    CHECK_EQ_INT(bad_prefix, 0);
    CHECK_EQ_INT(bad_mut, 0);
    CHECK(records > 1000);
}

/* random bytes from a JSON-ish alphabet: no crash, offsets inside the text */
TEST(random_garbage) {
    char buf[64];
    int i, bad = 0, ok = 0;
    static const char alpha[] = "{}[],:\"\\ \t\n0123-+.eEtrufalsn\x01\x7f\x80\xbf\xc2\xe0\xed\xf0\xf4\xff";
    for (i = 0; i < 200000; i++) {
        size_t n = rnd(sizeof buf), j, off = 0;
        rsbus_result r;
        rsbus_jval v;
        for (j = 0; j < n; j++) buf[j] = alpha[rnd(sizeof alpha - 1)];
        r = rsbus_json_validate(buf, n, &off);
        if (r == RSBUS_OK) ok++;
        else if (r != RSBUS_E_JSON || off > n) bad++;
        if ((rsbus_json_get(buf, n, "", &v) == RSBUS_OK) != (r == RSBUS_OK)) bad++;
    }
    CHECK_EQ_INT(bad, 0);
    CHECK(ok > 0);
}

int main(void) {
    RUN(writer_basic);
    RUN(writer_escapes);
    RUN(writer_utf8);
    RUN(writer_int);
    RUN(writer_num);
    RUN(writer_num_locale);
    RUN(writer_overflow_every_size);
    RUN(writer_misuse);
    RUN(writer_growing);
    RUN(writer_counting_allocator);
    RUN(writer_failing_allocator);
    RUN(reader_valid);
    RUN(reader_error_offsets);
    RUN(reader_control_chars);
    RUN(reader_depth);
    RUN(reader_string_runs);
    RUN(reader_key_runs);
    RUN(reader_number_runs);
    RUN(reader_literals_and_whitespace);
    RUN(get_paths);
    RUN(get_other_roots);
    RUN(jval_str_cases);
    RUN(jval_int_cases);
    RUN(jval_num_cases);
    RUN(jval_bool_cases);
    RUN(generated_documents);
    RUN(random_garbage);
    return test_summary("test_json");
}
