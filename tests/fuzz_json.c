/* fuzz_json.c - libFuzzer target for rsbus's JSON reader and writer.

   The input is used twice:
   1. as a JSON text: rsbus_json_validate, then rsbus_json_get with paths derived from the input (keys
      found in it, indexes, and the input's own tail as a raw path), and rsbus_jval_* on every value
      found. Cross-checks: validate and get agree; get("") is the whole text without its surrounding
      whitespace; every value found is a slice of the text that is valid JSON by itself; rsbus_jval_str
      agrees between a small and a large buffer and its result written back by the writer reads back the
      same; rsbus_jval_int and rsbus_jval_num agree with each other and with strtod.
   2. as a program for the writer, run on a growing writer and on fixed buffers (small and large): a
      non-NULL result always validates, a fixed buffer's result is the growing writer's result, and
      strings, integers and doubles written alone read back exactly.

   clang -g -O1 -fsanitize=fuzzer,address,undefined -I. tests/fuzz_json.c -lhiredis -lm
   ./fuzz_json -max_len=4096 tests/corpus/json */
#define _POSIX_C_SOURCE 200809L
#define RSBUS_IMPLEMENTATION
#include "../rsbus.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(c) do { if (!(c)) { \
        fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #c); abort(); } } while (0)

static int is_ws(unsigned char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

static rsbus_jtype type_of(char c) {
    switch (c) {
    case '{': return RSBUS_JOBJECT;
    case '[': return RSBUS_JARRAY;
    case '"': return RSBUS_JSTRING;
    case 't': case 'f': return RSBUS_JBOOL;
    case 'n': return RSBUS_JNULL;
    default: return RSBUS_JNUMBER;
    }
}

/* A string written alone by the writer reads back as the same bytes. */
static void string_round_trip(const char *s, size_t n) {
    rsbus_jw w;
    const char *txt;
    size_t tl = 0, got = 0;
    rsbus_jval v;
    char *back;
    rsbus_jw_init_alloc(&w, NULL);
    rsbus_jw_strn(&w, s, n);
    txt = rsbus_jw_result(&w, &tl);
    if (txt) {
        FUZZ_CHECK(rsbus_json_validate(txt, tl, NULL) == RSBUS_OK);
        FUZZ_CHECK(rsbus_json_get(txt, tl, "", &v) == RSBUS_OK);
        FUZZ_CHECK(v.type == RSBUS_JSTRING && v.ptr == txt && v.len == tl);
        back = (char *)malloc(n + 1);
        FUZZ_CHECK(back != NULL);
        FUZZ_CHECK(rsbus_jval_str(&v, back, n + 1, &got) == RSBUS_OK);
        FUZZ_CHECK(got == n && memcmp(back, s, n) == 0);
        free(back);
    }
    rsbus_jw_free(&w);
}

static void check_number(const rsbus_jval *v) {
    int64_t i = 0;
    double d = 0, ref;
    char *copy;
    rsbus_result ri = rsbus_jval_int(v, &i), rd = rsbus_jval_num(v, &d);
    FUZZ_CHECK(ri == RSBUS_OK || ri == RSBUS_E_ARG);
    FUZZ_CHECK(rd == RSBUS_OK || rd == RSBUS_E_ARG);
    copy = (char *)malloc(v->len + 1);
    FUZZ_CHECK(copy != NULL);
    memcpy(copy, v->ptr, v->len);
    copy[v->len] = 0;
    ref = strtod(copy, NULL);             /* the C locale: '.' is the decimal separator */
    free(copy);
    /* jval_num is strtod on the same text, bit for bit (also -0.0, underflow to 0, overflow to inf) */
    FUZZ_CHECK(memcmp(&d, &ref, sizeof d) == 0);
    FUZZ_CHECK((rd == RSBUS_OK) == !isinf(ref));
    if (ri == RSBUS_OK) {
        /* both are correctly rounded conversions of the same integer */
        FUZZ_CHECK(rd == RSBUS_OK);
        FUZZ_CHECK((double)i == d);
    }
}

static void check_value(const char *s, size_t n, const rsbus_jval *v) {
    char small[8], big[4096];
    size_t ls = 0, lb = 0;
    rsbus_result rs, rb;
    int b = -1;
    FUZZ_CHECK(v->ptr >= s && v->len > 0 && v->len <= n && (size_t)(v->ptr - s) <= n - v->len);
    FUZZ_CHECK(v->type == type_of(v->ptr[0]));
    FUZZ_CHECK(!is_ws((unsigned char)v->ptr[0]) && !is_ws((unsigned char)v->ptr[v->len - 1]));
    /* a value of a valid document is a valid document by itself */
    FUZZ_CHECK(rsbus_json_validate(v->ptr, v->len, NULL) == RSBUS_OK);
    switch (v->type) {
    case RSBUS_JSTRING:
        rs = rsbus_jval_str(v, small, sizeof small, &ls);
        rb = rsbus_jval_str(v, big, sizeof big, &lb);
        FUZZ_CHECK(ls == lb);
        FUZZ_CHECK((rs == RSBUS_OK) == (ls < sizeof small));
        FUZZ_CHECK((rb == RSBUS_OK) == (lb < sizeof big));
        if (rs == RSBUS_OK) FUZZ_CHECK(memcmp(small, big, ls) == 0 && small[ls] == 0);
        else FUZZ_CHECK(rs == RSBUS_E_ARG && small[0] == 0);
        if (rb == RSBUS_OK) {
            FUZZ_CHECK(big[lb] == 0);
            string_round_trip(big, lb);
        }
        FUZZ_CHECK(rsbus_jval_str(v, NULL, 0, &ls) == RSBUS_E_ARG && ls == lb);
        FUZZ_CHECK(rsbus_jval_int(v, NULL) == RSBUS_E_ARG);
        break;
    case RSBUS_JNUMBER:
        check_number(v);
        FUZZ_CHECK(rsbus_jval_bool(v, &b) == RSBUS_E_ARG);
        FUZZ_CHECK(rsbus_jval_str(v, big, sizeof big, &lb) == RSBUS_E_ARG);
        break;
    case RSBUS_JBOOL:
        FUZZ_CHECK(rsbus_jval_bool(v, &b) == RSBUS_OK);
        FUZZ_CHECK(b == (v->ptr[0] == 't'));
        break;
    case RSBUS_JNULL:
        FUZZ_CHECK(v->len == 4 && memcmp(v->ptr, "null", 4) == 0);
        FUZZ_CHECK(rsbus_jval_bool(v, &b) == RSBUS_E_ARG);
        break;
    default:
        FUZZ_CHECK(v->ptr[v->len - 1] == (v->type == RSBUS_JOBJECT ? '}' : ']'));
        FUZZ_CHECK(rsbus_jval_num(v, NULL) == RSBUS_E_ARG);
        break;
    }
}

/* Looks path up; when found, checks the value. */
static void try_path(const char *s, size_t n, const char *path, int valid) {
    rsbus_jval v;
    rsbus_result r = rsbus_json_get(s, n, path, &v);
    FUZZ_CHECK(r == RSBUS_OK || r == RSBUS_E_NOTFOUND || r == RSBUS_E_ARG || r == RSBUS_E_JSON);
    if (!valid) FUZZ_CHECK(r == RSBUS_E_JSON || r == RSBUS_E_ARG);
    if (valid) FUZZ_CHECK(r != RSBUS_E_JSON);
    if (r != RSBUS_OK) {
        FUZZ_CHECK(v.type == RSBUS_JNONE && v.ptr == NULL && v.len == 0);
        return;
    }
    check_value(s, n, &v);
    /* looking up with a NULL out gives the same answer */
    FUZZ_CHECK(rsbus_json_get(s, n, path, NULL) == RSBUS_OK);
}

static void reader(const char *s, size_t n) {
    size_t off = (size_t)-1, lead = 0, trail = 0, i, nkeys = 0;
    rsbus_result r = rsbus_json_validate(s, n, &off);
    rsbus_jval v;
    char keys[8][25], path[160];
    int valid = r == RSBUS_OK;

    FUZZ_CHECK(r == RSBUS_OK || r == RSBUS_E_JSON);
    if (!valid) FUZZ_CHECK(off <= n);
    FUZZ_CHECK(rsbus_json_validate(s, n, NULL) == r);

    /* get("") is the whole text, trimmed */
    r = rsbus_json_get(s, n, "", &v);
    if (valid) {
        while (lead < n && is_ws((unsigned char)s[lead])) lead++;
        while (trail < n - lead && is_ws((unsigned char)s[n - 1 - trail])) trail++;
        FUZZ_CHECK(r == RSBUS_OK);
        FUZZ_CHECK(v.ptr == s + lead && v.len == n - lead - trail);
        check_value(s, n, &v);
    } else {
        FUZZ_CHECK(r == RSBUS_E_JSON);
    }

    /* keys: quoted runs without escapes or path syntax */
    for (i = 0; i < n && nkeys < 8; i++) {
        size_t j;
        if (s[i] != '"') continue;
        for (j = i + 1; j < n && j - i - 1 < 24; j++) {
            char c = s[j];
            if (c == '"' || c == '\\' || c == '.' || c == '[' || c == ']' || c == 0) break;
        }
        if (j < n && s[j] == '"' && j > i + 1) {
            memcpy(keys[nkeys], s + i + 1, j - i - 1);
            keys[nkeys][j - i - 1] = 0;
            nkeys++;
        }
        i = j;
    }
    try_path(s, n, "0", valid);
    try_path(s, n, "[0]", valid);
    try_path(s, n, "[1]", valid);
    try_path(s, n, "[0][0]", valid);
    try_path(s, n, "1.0", valid);
    for (i = 0; i < nkeys; i++) {
        try_path(s, n, keys[i], valid);
        snprintf(path, sizeof path, "%s[0]", keys[i]);
        try_path(s, n, path, valid);
        snprintf(path, sizeof path, "[0].%s", keys[i]);
        try_path(s, n, path, valid);
        snprintf(path, sizeof path, "%s.%s", keys[i], keys[(i + 1) % nkeys]);
        try_path(s, n, path, valid);
        snprintf(path, sizeof path, "%s.0.%s", keys[i], keys[(i + 1) % nkeys]);
        try_path(s, n, path, valid);
    }
    /* the input's tail as a raw path (anything: bad syntax must be RSBUS_E_ARG, never a crash) */
    {
        size_t pl = n < 40 ? n : 40;
        char raw[41];
        memcpy(raw, s + n - pl, pl);
        raw[pl] = 0;
        r = rsbus_json_get(s, n, raw, &v);
        FUZZ_CHECK(r == RSBUS_OK || r == RSBUS_E_NOTFOUND || r == RSBUS_E_ARG || r == RSBUS_E_JSON);
        if (r == RSBUS_OK) check_value(s, n, &v);
    }
}

/* ---- writer ---- */

typedef struct prog { const unsigned char *p, *e; } prog;
static unsigned next_byte(prog *g) { return g->p < g->e ? *g->p++ : 0u; }
static size_t take(prog *g, size_t want, const char **out) {
    size_t left = (size_t)(g->e - g->p), n = want < left ? want : left;
    *out = (const char *)g->p;
    g->p += n;
    return n;
}

#define NWRITERS 4
static void writer(const unsigned char *data, size_t size) {
    rsbus_jw w[NWRITERS];
    char small[24], mid[200], large[8192];
    const char *res[NWRITERS];
    size_t len[NWRITERS];
    prog g;
    int k, ops = 0;
    g.p = data;
    g.e = data + size;
    rsbus_jw_init_alloc(&w[0], NULL);
    rsbus_jw_init(&w[1], small, sizeof small);
    rsbus_jw_init(&w[2], mid, sizeof mid);
    rsbus_jw_init(&w[3], large, sizeof large);
    while (g.p < g.e && ops++ < 2000) {
        unsigned op = next_byte(&g) % 13u;
        const char *s = NULL;
        char key[33];
        size_t n;
        int64_t iv;
        double dv;
        unsigned char raw[8];
        switch (op) {
        case 0: for (k = 0; k < NWRITERS; k++) rsbus_jw_obj(&w[k]); break;
        case 1: for (k = 0; k < NWRITERS; k++) rsbus_jw_obj_end(&w[k]); break;
        case 2: for (k = 0; k < NWRITERS; k++) rsbus_jw_arr(&w[k]); break;
        case 3: for (k = 0; k < NWRITERS; k++) rsbus_jw_arr_end(&w[k]); break;
        case 4:
            n = take(&g, next_byte(&g) % 33u, &s);
            memcpy(key, s, n);
            key[n] = 0;
            for (k = 0; k < NWRITERS; k++) rsbus_jw_key(&w[k], key);
            break;
        case 5:
            n = take(&g, next_byte(&g) % 64u, &s);
            for (k = 0; k < NWRITERS; k++) rsbus_jw_strn(&w[k], s, n);
            string_round_trip(s, n);
            break;
        case 6:
        case 7:
            memset(raw, 0, sizeof raw);
            n = take(&g, 8, &s);
            memcpy(raw, s, n);
            if (op == 6) {
                memcpy(&iv, raw, sizeof iv);
                for (k = 0; k < NWRITERS; k++) rsbus_jw_int(&w[k], iv);
                {   /* alone: reads back exactly */
                    rsbus_jw one;
                    char buf[32];
                    const char *t;
                    size_t tl;
                    rsbus_jval v;
                    int64_t back = 0;
                    rsbus_jw_init(&one, buf, sizeof buf);
                    rsbus_jw_int(&one, iv);
                    t = rsbus_jw_result(&one, &tl);
                    FUZZ_CHECK(t != NULL);
                    FUZZ_CHECK(rsbus_json_get(t, tl, "", &v) == RSBUS_OK && v.type == RSBUS_JNUMBER);
                    FUZZ_CHECK(rsbus_jval_int(&v, &back) == RSBUS_OK && back == iv);
                }
            } else {
                memcpy(&dv, raw, sizeof dv);
                for (k = 0; k < NWRITERS; k++) rsbus_jw_num(&w[k], dv);
                {
                    rsbus_jw one;
                    char buf[64];
                    const char *t;
                    size_t tl;
                    rsbus_jval v;
                    double back = 0;
                    rsbus_jw_init(&one, buf, sizeof buf);
                    rsbus_jw_num(&one, dv);
                    t = rsbus_jw_result(&one, &tl);
                    FUZZ_CHECK((t != NULL) == !(isnan(dv) || isinf(dv)));
                    if (t) {
                        FUZZ_CHECK(rsbus_json_get(t, tl, "", &v) == RSBUS_OK && v.type == RSBUS_JNUMBER);
                        FUZZ_CHECK(rsbus_jval_num(&v, &back) == RSBUS_OK);
                        FUZZ_CHECK(memcmp(&back, &dv, sizeof dv) == 0);   /* -0.0 included */
                    }
                }
            }
            break;
        case 8: n = next_byte(&g) & 1u; for (k = 0; k < NWRITERS; k++) rsbus_jw_bool(&w[k], (int)n); break;
        case 9: for (k = 0; k < NWRITERS; k++) rsbus_jw_null(&w[k]); break;
        case 10:   /* a NUL-terminated string from the input */
            n = take(&g, next_byte(&g) % 33u, &s);
            memcpy(key, s, n);
            key[n] = 0;
            for (k = 0; k < NWRITERS; k++) rsbus_jw_str(&w[k], key);
            break;
        case 11: for (k = 0; k < NWRITERS; k++) rsbus_jw_strn(&w[k], NULL, 0); break;
        default:   /* misuse: NULL arguments fail the writer, never crash it */
            if (next_byte(&g) & 1u) for (k = 0; k < NWRITERS; k++) rsbus_jw_str(&w[k], NULL);
            else for (k = 0; k < NWRITERS; k++) rsbus_jw_key(&w[k], NULL);
            break;
        }
    }
    for (k = 0; k < NWRITERS; k++) res[k] = rsbus_jw_result(&w[k], &len[k]);
    if (res[0]) FUZZ_CHECK(rsbus_json_validate(res[0], len[0], NULL) == RSBUS_OK);
    for (k = 1; k < NWRITERS; k++) {
        if (!res[k]) { FUZZ_CHECK(len[k] == 0); continue; }
        /* a fixed buffer fails only where the growing writer succeeds or fails for the same reason */
        FUZZ_CHECK(res[0] != NULL);
        FUZZ_CHECK(len[k] == len[0] && memcmp(res[k], res[0], len[0]) == 0);
        FUZZ_CHECK(res[k][len[k]] == 0);
    }
    /* a fixed buffer large enough for the text succeeds whenever the growing writer does */
    if (res[0] && len[0] < sizeof large) FUZZ_CHECK(res[3] != NULL);
    if (res[0]) {
        rsbus_jval v;
        FUZZ_CHECK(rsbus_json_get(res[0], len[0], "", &v) == RSBUS_OK && v.len == len[0]);
    }
    /* the result is stable: asking twice gives the same text */
    for (k = 0; k < NWRITERS; k++) {
        size_t l2;
        const char *r2 = rsbus_jw_result(&w[k], &l2);
        FUZZ_CHECK(r2 == res[k] && (!r2 || l2 == len[k]));
    }
    for (k = 0; k < NWRITERS; k++) rsbus_jw_free(&w[k]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *s;
    if (size == 0) {
        FUZZ_CHECK(rsbus_json_validate("", 0, NULL) == RSBUS_E_JSON);
        return 0;
    }
    /* an exact-size heap copy, so ASan sees any read past the end */
    s = (char *)malloc(size);
    if (!s) return 0;
    memcpy(s, data, size);
    reader(s, size);
    free(s);
    writer(data, size);
    return 0;
}
