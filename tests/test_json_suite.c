/* test_json_suite.c - rsbus_json_validate against JSONTestSuite's test_parsing directory
   (https://github.com/nst/JSONTestSuite): every y_ file accepted (and rsbus_json_get with path ""
   returning the whole trimmed value), every n_ file rejected, every i_ file run (either answer, no crash).
   The directory is argv[1], else $JSONTESTSUITE; when neither names an existing directory the run is
   skipped with 0 passed, 0 failed. */
#define _POSIX_C_SOURCE 200809L
#define RSBUS_IMPLEMENTATION
#include "../rsbus.h"
#include "test.h"

#include <dirent.h>
#include <stdlib.h>
#include <sys/stat.h>

#define SUITE_MAX_FILE (64u * 1024u * 1024u)

/* the whole file into *out (malloc'd, *n bytes); 0 on failure or when larger than SUITE_MAX_FILE */
static int read_file(const char *path, char **out, size_t *n) {
    FILE *f = fopen(path, "rb");
    char *buf = NULL, *nb;
    size_t len = 0, cap = 0, got;
    if (!f) return 0;
    for (;;) {
        if (cap - len < 4096) {
            cap = cap ? cap * 2 : 65536;
            if (cap > SUITE_MAX_FILE + 4096) { free(buf); fclose(f); return 0; }
            nb = (char *)realloc(buf, cap);
            if (!nb) { free(buf); fclose(f); return 0; }
            buf = nb;
        }
        got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) break;
        if (len > SUITE_MAX_FILE) { free(buf); fclose(f); return 0; }
    }
    if (ferror(f)) { free(buf); fclose(f); return 0; }
    fclose(f);
    *out = buf;
    *n = len;
    return 1;
}

static int is_ws(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

static int cmp_names(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : getenv("JSONTESTSUITE");
    struct stat sb;
    DIR *d;
    struct dirent *de;
    char **names = NULL, **failed = NULL;
    size_t nnames = 0, capnames = 0, nfailed = 0, i;
    int y_total = 0, y_ok = 0, n_total = 0, n_ok = 0, i_ran = 0, i_acc = 0;

    if (!dir || !*dir || stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode) || !(d = opendir(dir))) {
        printf("json conformance: skipped (JSONTestSuite test_parsing directory not found at '%s'; "
               "pass JSONTESTSUITE=<dir> to make)\n", dir ? dir : "");
        return test_summary("test_json_suite");
    }
    while ((de = readdir(d)) != NULL) {
        const char *nm = de->d_name;
        if (!((nm[0] == 'y' || nm[0] == 'n' || nm[0] == 'i') && nm[1] == '_')) continue;
        if (nnames == capnames) {
            char **nn;
            capnames = capnames ? capnames * 2 : 512;
            nn = (char **)realloc(names, capnames * sizeof *names);
            if (!nn) { fprintf(stderr, "out of memory\n"); closedir(d); return 1; }
            names = nn;
        }
        names[nnames] = (char *)malloc(strlen(nm) + 1);
        if (!names[nnames]) { fprintf(stderr, "out of memory\n"); closedir(d); return 1; }
        memcpy(names[nnames], nm, strlen(nm) + 1);
        nnames++;
    }
    closedir(d);
    if (nnames == 0) {   /* e.g. a 32-bit build without -D_FILE_OFFSET_BITS=64 whose readdir fails on a 64-bit hash */
        fprintf(stderr, "json conformance: no y_/n_/i_ files could be read in %s\n", dir);
        test__failed++;
        return test_summary("test_json_suite");
    }
    qsort(names, nnames, sizeof *names, cmp_names);
    failed = (char **)calloc(nnames ? nnames : 1, sizeof *failed);
    if (!failed) { fprintf(stderr, "out of memory\n"); return 1; }

    for (i = 0; i < nnames; i++) {
        const char *nm = names[i];
        char *path, *text = NULL;
        size_t plen = strlen(dir) + strlen(nm) + 2, n = 0, off = 0;
        rsbus_result r;
        int pass;
        path = (char *)malloc(plen);
        if (!path) { fprintf(stderr, "out of memory\n"); return 1; }
        snprintf(path, plen, "%s/%s", dir, nm);
        if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) { free(path); continue; }
        if (nm[0] == 'y') y_total++;
        else if (nm[0] == 'n') n_total++;
        if (!read_file(path, &text, &n)) {
            fprintf(stderr, "cannot read %s\n", path);
            if (nm[0] != 'i') { failed[nfailed++] = names[i]; test__failed++; }
            free(path);
            continue;
        }
        r = rsbus_json_validate(text, n, &off);
        if (nm[0] == 'y') {
            rsbus_jval v;
            size_t b = 0, e = n;
            while (b < e && is_ws(text[b])) b++;
            while (e > b && is_ws(text[e - 1])) e--;
            pass = r == RSBUS_OK;
            if (pass && (rsbus_json_get(text, n, "", &v) != RSBUS_OK || v.ptr != text + b || v.len != e - b)) {
                fprintf(stderr, "%s: accepted, but rsbus_json_get(\"\") did not return the whole value\n", nm);
                pass = 0;
            }
            if (r != RSBUS_OK) fprintf(stderr, "%s: refused at byte %zu\n", nm, off);
            if (pass) y_ok++;
        } else if (nm[0] == 'n') {
            pass = r == RSBUS_E_JSON && off <= n;
            if (!pass) fprintf(stderr, "%s: accepted\n", nm);
            if (pass) n_ok++;
        } else {
            i_ran++;
            if (r == RSBUS_OK) i_acc++;
            pass = 1;
        }
        if (nm[0] != 'i') {
            test__cur = nm;
            test__cur_failed = 0;
            if (!pass) test__fail(__FILE__, __LINE__, nm[0] == 'y' ? "must be accepted" : "must be rejected");
            if (pass) test__passed++;
            else { test__failed++; failed[nfailed++] = names[i]; }
        }
        free(text);
        free(path);
    }
    printf("json conformance: y %d/%d accepted, n %d/%d rejected, i %d ran\n", y_ok, y_total, n_ok, n_total, i_ran);
    fprintf(stderr, "  (i_ files accepted: %d of %d)\n", i_acc, i_ran);
    for (i = 0; i < nfailed; i++) printf("  failed: %s\n", failed[i]);
    for (i = 0; i < nnames; i++) free(names[i]);
    free(names);
    free(failed);
    return test_summary("test_json_suite");
}
