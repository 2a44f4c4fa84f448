/* test_docs.c - the code in README.md and in rsbus.h's manual works as shown. make test extracts the
   blocks (tests/extract_snippets.sh) into build/snippets and compiles the C ones with the warnings of
   the tests; this program runs them against a private redis-server:
     - every ```c block of README.md, as a program, with RSBUS_URL pointing at the server;
     - every ```sh block, line by line: "make ..." lines are what CI runs (skipped here), "export" lines
       set the variables they name (RSBUS_URL stays the test server's), "cc ... app.c"
       lines are run in a scratch dir holding the first C block as app.c, "rsbusctl ..." lines run the
       built tool (a line that keeps running, like top, must still be running and printing after 2 s). */
#define _POSIX_C_SOURCE 200809L
#define RSBUS_IMPLEMENTATION
#include "../rsbus.h"
#include "test.h"
#include "redis_server.h"
#include "bus_util.h"
#include <sys/stat.h>

static const char *snippets = "build/snippets";

/* Runs a shell command with RSBUS_URL set and PATH including build/, output captured; returns exit status
   (124 when it had to be stopped after timeout_s). */
static int sh(const char *cmd, const char *cwd, int timeout_s, char *out, size_t size) {
    char full[4096], root[1024];
    FILE *p;
    size_t n = 0;
    int st;
    if (!getcwd(root, sizeof root)) return -1;
    snprintf(full, sizeof full, "cd '%s' && PATH='%s/build':\"$PATH\" RSBUS_URL='%s' timeout %d sh -c '%s' 2>&1",
             cwd ? cwd : root, root, srv.unix_url, timeout_s, cmd);
    p = popen(full, "r");
    if (!p) return -1;
    while (n + 1 < size) {
        size_t k = fread(out + n, 1, size - 1 - n, p);
        if (k == 0) break;
        n += k;
    }
    out[n] = 0;
    st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

TEST(readme_c_blocks_run) {
    char path[512], out[8192];
    int i, found = 0;
    for (i = 1; i < 20; i++) {
        struct stat stt;
        snprintf(path, sizeof path, "%s/readme_c_%d", snippets, i);
        if (stat(path, &stt) != 0) break;
        found++;
        CHECK_EQ_INT(sh(path, NULL, 20, out, sizeof out), 0);
        if (i == 1) CHECK_CONTAINS(out, "order.created");
    }
    CHECK(found >= 1);
}

TEST(readme_sh_blocks_run) {
    char path[512], line[2048], out[16384], scratch[512];
    int i, ran = 0;
    snprintf(scratch, sizeof scratch, "%s/app", srv.dir);
    mkdir(scratch, 0700);
    snprintf(line, sizeof line, "cp %s/readme_c_1.c %s/app.c && cp rsbus.h %s/", snippets, scratch, scratch);
    CHECK_EQ_INT(sh(line, NULL, 10, out, sizeof out), 0);
    for (i = 1; i < 20; i++) {
        FILE *f;
        snprintf(path, sizeof path, "%s/readme_sh_%d.sh", snippets, i);
        if (!(f = fopen(path, "r"))) break;
        while (fgets(line, sizeof line, f)) {
            int st;
            char *hash = strstr(line, "  #");
            if (hash) *hash = 0;
            line[strcspn(line, "\n")] = 0;
            while (*line && line[strlen(line) - 1] == ' ') line[strlen(line) - 1] = 0;
            if (!*line || !strncmp(line, "make ", 5)) continue;
            if (!strncmp(line, "export ", 7)) {    /* NAME=VALUE pairs, for the lines after it */
                char *tok = strtok(line + 7, " ");
                for (; tok; tok = strtok(NULL, " ")) {
                    char *eq = strchr(tok, '=');
                    if (!eq) continue;
                    *eq = 0;
                    if (strcmp(tok, "RSBUS_URL") != 0) setenv(tok, eq + 1, 1);
                }
                continue;
            }
            ran++;
            fprintf(stderr, "  $ %s\n", line);
            if (!strncmp(line, "cc ", 3) || strstr(line, "./app")) {   /* the README's example, built there */
                st = sh(line, scratch, 60, out, sizeof out);
                CHECK_EQ_INT(st, 0);
                CHECK_CONTAINS(out, "order.created");
            } else if (!strncmp(line, "rsbusctl top", 12)) {
                st = sh(line, NULL, 2, out, sizeof out);
                CHECK_EQ_INT(st, 124);          /* still refreshing when stopped */
                CHECK(strlen(out) > 0);
            } else if (!strncmp(line, "rsbusctl health", 15)) {
                st = sh(line, NULL, 10, out, sizeof out);
                CHECK(st == 0 || st == 1);      /* a probe's answer: healthy or degraded */
            } else {
                st = sh(line, NULL, 10, out, sizeof out);
                if (st != 0) fprintf(stderr, "  exit %d: %.500s\n", st, out);
                CHECK_EQ_INT(st, 0);
            }
        }
        fclose(f);
    }
    CHECK(ran >= 3);
}

int main(int argc, char **argv) {
    if (argc > 1) snippets = argv[1];
    if (test_redis_start(&srv, NULL) != 0) {
        printf("test_docs: 0 passed, 1 failed\n");
        return 1;
    }
    RUN(readme_c_blocks_run);
    RUN(readme_sh_blocks_run);
    raw_reset();
    test_redis_stop(&srv);
    return test_summary("test_docs");
}
