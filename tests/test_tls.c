/* test_tls.c - rediss:// and require_tls. Built in both lanes:

   make test (Debian's hiredis 0.14, no RSBUS_TLS): a rediss:// url fails with RSBUS_E_TLS and a message
   saying how to get TLS, and require_tls = 1 refuses redis:// and unix:// urls with RSBUS_E_TLS; neither
   connects anywhere (a listening socket of this program sees no connection).

   make test-hiredis1 (hiredis 1.2.0 with hiredis_ssl, -DRSBUS_TLS): the same require_tls checks, then
   against real redis-servers on TLS ports ("port 0", "tls-port N") whose CA and certificates this
   program makes with the openssl command at run time, in a private temp dir: a test CA, a server
   certificate for localhost and 127.0.0.1, a client certificate, an unrelated second CA and a client
   certificate of that one. It checks ca=, capath=, sni=, verify=0, cert= and key= against a server
   with tls-auth-clients optional and one with tls-auth-clients yes (and a password), wrong CAs and
   names, a plain server and a silent one behind rediss://, large and batched payloads, rsbus_run,
   and a restart of the server under an open bus (reconnect, no SIGPIPE). */
#define _POSIX_C_SOURCE 200809L
#define RSBUS_IMPLEMENTATION
#include "../rsbus.h"
#include "test.h"
#include "redis_server.h"
#include "redis_cluster.h"
#include "bus_util.h"
#include <sys/un.h>

/* ---- sockets that count connection attempts: "nothing was sent" means nobody even connected ---- */

static int listen_tcp(int *port) {
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 16) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        close(fd);
        return -1;
    }
    *port = ntohs(a.sin_port);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}
static int listen_unix(const char *path) {
    struct sockaddr_un a;
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof a.sun_path) { close(fd); return -1; }
    memcpy(a.sun_path, path, strlen(path) + 1);
    unlink(path);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 16) != 0) {
        close(fd);
        return -1;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}
/* connections waiting on a listening socket (accepted and closed) */
static int connections(int fd) {
    int n = 0, c;
    while ((c = accept(fd, NULL, NULL)) >= 0) { close(c); n++; }
    return n;
}

static rsbus_config cfg_url(const char *url, const char *stream) {
    rsbus_config c = test_cfg(stream, "g", "c1");
    c.url = url;
    c.connect_timeout_ms = 2000;
    c.io_timeout_ms = 3000;
    return c;
}

/* ---- both lanes ---- */

TEST(require_tls_refuses_redis_and_unix_before_connecting) {
    char url[512], path[300];
    int port = 0, fd = listen_tcp(&port), ufd;
    rsbus_config c;
    rsbus_error err;
    REQUIRE(fd >= 0);
    snprintf(url, sizeof url, "redis://:s3cr3t-pw@127.0.0.1:%d", port);
    c = cfg_url(url, "t:req");
    c.require_tls = 1;
    memset(&err, 0, sizeof err);
    CHECK(rsbus_open(&c, &err) == NULL);
    CHECK_EQ_STR(rsbus_result_str(err.code), "RSBUS_E_TLS");
    CHECK_CONTAINS(err.msg, "require_tls");
    CHECK_CONTAINS(err.msg, "rediss://");
    CHECK_NOT_CONTAINS(err.msg, "s3cr3t-pw");
    CHECK_EQ_INT(connections(fd), 0);

    snprintf(path, sizeof path, "%s/rsbus-tls-test-%ld.sock",
             getenv("TMPDIR") && strlen(getenv("TMPDIR")) < 60 ? getenv("TMPDIR") : "/tmp", (long)getpid());
    ufd = listen_unix(path);
    REQUIRE(ufd >= 0);
    snprintf(url, sizeof url, "unix://%s?password=s3cr3t-pw", path);
    c = cfg_url(url, "t:req");
    c.require_tls = 1;
    CHECK(rsbus_open(&c, &err) == NULL);
    CHECK_EQ_STR(rsbus_result_str(err.code), "RSBUS_E_TLS");
    CHECK_CONTAINS(err.msg, "require_tls");
    CHECK_NOT_CONTAINS(err.msg, "s3cr3t-pw");
    CHECK_EQ_INT(connections(ufd), 0);

    /* the same through the environment (RSBUS_REQUIRE_TLS=1) */
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", port);
    setenv("TLSTEST_URL", url, 1);
    setenv("TLSTEST_REQUIRE_TLS", "1", 1);
    c = cfg_url(NULL, "t:req");
    CHECK_EQ_INT(rsbus_config_from_env(&c, "TLSTEST_", &err), RSBUS_OK);
    CHECK_EQ_INT(c.require_tls, 1);
    CHECK(rsbus_open(&c, &err) == NULL);
    CHECK_EQ_STR(rsbus_result_str(err.code), "RSBUS_E_TLS");
    CHECK_EQ_INT(connections(fd), 0);
    unsetenv("TLSTEST_URL");
    unsetenv("TLSTEST_REQUIRE_TLS");

    /* without require_tls the same plain url does connect (so the listener would have seen it) */
    c = cfg_url(url, "t:req");
    c.connect_timeout_ms = 300;
    c.io_timeout_ms = 300;
    CHECK(rsbus_open(&c, &err) == NULL);     /* nobody answers the PING */
    CHECK(connections(fd) >= 1);
    close(fd);
    close(ufd);
    unlink(path);
}

#ifndef RSBUS_TLS
TEST(rediss_needs_a_tls_build) {
    char url[512];
    int port = 0, fd = listen_tcp(&port);
    rsbus_config c;
    rsbus_error err;
    REQUIRE(fd >= 0);
    snprintf(url, sizeof url, "rediss://:s3cr3t-pw@127.0.0.1:%d?ca=/nonexistent/ca.crt", port);
    c = cfg_url(url, "t:nobuild");
    CHECK(rsbus_open(&c, &err) == NULL);
    CHECK_EQ_STR(rsbus_result_str(err.code), "RSBUS_E_TLS");
    /* how to get TLS: hiredis 1.x with hiredis_ssl, -DRSBUS_TLS, the libraries to link */
    CHECK_CONTAINS(err.msg, "rediss://");
    CHECK_CONTAINS(err.msg, "hiredis 1");
    CHECK_CONTAINS(err.msg, "RSBUS_TLS");
    CHECK_CONTAINS(err.msg, "-lhiredis_ssl");
    CHECK_NOT_CONTAINS(err.msg, "s3cr3t-pw");
    CHECK_EQ_INT(connections(fd), 0);
    /* require_tls is satisfied by rediss://, the build still is not */
    c.require_tls = 1;
    CHECK(rsbus_open(&c, &err) == NULL);
    CHECK_EQ_STR(rsbus_result_str(err.code), "RSBUS_E_TLS");
    CHECK_CONTAINS(err.msg, "RSBUS_TLS");
    CHECK_EQ_INT(connections(fd), 0);
    close(fd);
}
#endif

#ifdef RSBUS_TLS
/* ---- certificates, made with openssl at run time ---- */

static char certdir[300];                       /* private temp dir, removed at exit */
static test_redis mtls;                         /* tls-auth-clients yes, requirepass */
static int have_second_ip;                      /* 127.0.0.2 can be bound (Linux: all of 127/8) */

static void remove_certdir(void) { if (certdir[0]) test_redis__rmtree(certdir); }

static const char *cpath(const char *name) {    /* certdir/name, 8 at a time */
    static char bufs[8][400];
    static int i;
    char *b = bufs[i++ & 7];
    snprintf(b, sizeof bufs[0], "%s/%s", certdir, name);
    return b;
}

static int write_file(const char *name, const char *text) {
    FILE *f = fopen(cpath(name), "w");
    if (!f) return -1;
    fputs(text, f);
    return fclose(f);
}

/* Runs a shell command in certdir, its output appended to certdir/openssl.log. */
static int sh_in_certdir(const char *cmd) {
    char full[2048];
    int st;
    snprintf(full, sizeof full, "cd '%s' && { %s ; } >>openssl.log 2>&1", certdir, cmd);
    st = system(full);
    if (st != 0) {
        char log[8192];
        FILE *f = fopen(cpath("openssl.log"), "r");
        size_t n = f ? fread(log, 1, sizeof log - 1, f) : 0;
        log[n] = 0;
        if (f) fclose(f);
        fprintf(stderr, "test_tls: failed (status %d): %s\n---- openssl.log ----\n%s---- end ----\n", st, cmd, log);
        return -1;
    }
    return 0;
}

static int make_certs(void) {
    static const char *const cmds[] = {
        /* the test CA and an unrelated one */
        "openssl req -x509 -new -config ca.cnf -extensions v3_ca -newkey ec -pkeyopt ec_paramgen_curve:prime256v1"
        " -nodes -keyout ca.key -out ca.crt -days 2 -subj '/CN=rsbus test CA'",
        "openssl req -x509 -new -config ca.cnf -extensions v3_ca -newkey ec -pkeyopt ec_paramgen_curve:prime256v1"
        " -nodes -keyout other-ca.key -out other-ca.crt -days 2 -subj '/CN=rsbus unrelated CA'",
        /* the server: CN localhost, SAN DNS:localhost, IP:127.0.0.1 */
        "openssl req -new -config ca.cnf -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
        " -keyout server.key -out server.csr -subj /CN=localhost",
        "openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -set_serial 2 -days 2 -out server.crt"
        " -extfile ca.cnf -extensions v3_server",
        /* a client of the test CA, and one of the unrelated CA */
        "openssl req -new -config ca.cnf -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
        " -keyout client.key -out client.csr -subj /CN=rsbus-client",
        "openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -set_serial 3 -days 2 -out client.crt"
        " -extfile ca.cnf -extensions v3_client",
        "openssl req -new -config ca.cnf -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
        " -keyout other-client.key -out other-client.csr -subj /CN=rsbus-client",
        "openssl x509 -req -in other-client.csr -CA other-ca.crt -CAkey other-ca.key -set_serial 4 -days 2"
        " -out other-client.crt -extfile ca.cnf -extensions v3_client",
        /* capath: hashed directories, one with the test CA, one with the other CA */
        "mkdir capath other-capath && cp ca.crt capath/test-ca.pem && cp other-ca.crt other-capath/other-ca.pem",
        "openssl rehash capath other-capath || c_rehash capath other-capath",
        "ls capath | grep -q '[.]0$' && ls other-capath | grep -q '[.]0$'",
    };
    size_t i;
    if (write_file("ca.cnf",
                   "[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = rsbus test\n"
                   "[v3_ca]\nbasicConstraints = critical,CA:TRUE\nkeyUsage = critical,keyCertSign,cRLSign\n"
                   "subjectKeyIdentifier = hash\n"
                   "[v3_server]\nbasicConstraints = CA:FALSE\nkeyUsage = critical,digitalSignature\n"
                   "extendedKeyUsage = serverAuth\nsubjectAltName = DNS:localhost,IP:127.0.0.1\n"
                   "authorityKeyIdentifier = keyid\n"
                   "[v3_client]\nbasicConstraints = CA:FALSE\nkeyUsage = critical,digitalSignature\n"
                   "extendedKeyUsage = clientAuth\nauthorityKeyIdentifier = keyid\n") != 0) {
        fprintf(stderr, "test_tls: cannot write %s\n", cpath("ca.cnf"));
        return -1;
    }
    for (i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        if (sh_in_certdir(cmds[i]) != 0) return -1;
    return 0;
}

static int second_ip_bindable(void) {
    struct sockaddr_in a;
    int ok, fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return 0;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(0x7f000002);
    ok = bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

static int start_servers(void) {
    char conf[1024];
    snprintf(conf, sizeof conf,
             "tls-cert-file \"%s\"\ntls-key-file \"%s\"\ntls-ca-cert-file \"%s\"\ntls-auth-clients optional\n%s",
             cpath("server.crt"), cpath("server.key"), cpath("ca.crt"),
             have_second_ip ? "bind 127.0.0.1 127.0.0.2\n" : "");
    if (test_redis_start_tls(&srv, conf) != 0) return -1;
    snprintf(conf, sizeof conf,
             "tls-cert-file \"%s\"\ntls-key-file \"%s\"\ntls-ca-cert-file \"%s\"\ntls-auth-clients yes\n"
             "requirepass tls-pw\n",
             cpath("server.crt"), cpath("server.key"), cpath("ca.crt"));
    return test_redis_start_tls(&mtls, conf);
}

/* ---- helpers ---- */

static const char *url_fmt(const char *fmt, ...) {   /* 8 at a time */
    static char bufs[8][1200];
    static int i;
    char *b = bufs[i++ & 7];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b, sizeof bufs[0], fmt, ap);
    va_end(ap);
    return b;
}

typedef struct seen { int calls; size_t last_len; char last_type[64]; rsbus *stop_bus; int stop_after; } seen;
static rsbus_verdict on_msg(const rsbus_msg *m, void *user) {
    seen *s = (seen *)user;
    s->calls++;
    s->last_len = m->data_len;
    snprintf(s->last_type, sizeof s->last_type, "%s", m->type);
    if (s->stop_bus && s->calls >= s->stop_after) rsbus_stop(s->stop_bus);
    return RSBUS_ACK;
}

static rsbus_result pub(rsbus *bus, const char *type, const char *data) {
    rsbus_event ev;
    char sid[RSBUS_ID_SIZE];
    memset(&ev, 0, sizeof ev);
    ev.type = type;
    ev.data = data;
    return rsbus_publish(bus, &ev, sid);
}

/* Opens a bus on url (stream per call), publishes one event and consumes it: 1 when all that worked. */
static int roundtrip(const char *url, int require_tls, rsbus_error *err) {
    static int n;
    char stream[64];
    rsbus_config c;
    rsbus *bus;
    seen s;
    int64_t dl;
    rsbus_result r;
    memset(&s, 0, sizeof s);
    snprintf(stream, sizeof stream, "t:rt%d", ++n);
    c = cfg_url(url, stream);
    c.require_tls = require_tls;
    memset(err, 0, sizeof *err);
    if (!(bus = rsbus_open(&c, err))) {
        fprintf(stderr, "  rsbus_open %s: %s: %s\n", url, rsbus_result_str(err->code), err->msg);
        return 0;
    }
    if (rsbus_subscribe(bus, "*", on_msg, &s) <= 0 || (r = pub(bus, "tls.ping", "{\"n\":1}")) != RSBUS_OK) {
        fprintf(stderr, "  publish over %s: %s\n", url, rsbus_errmsg(bus));
        rsbus_close(bus);
        return 0;
    }
    dl = test_now_ms() + 5000;
    while (s.calls < 1 && test_now_ms() < dl)
        if (rsbus_poll(bus, 100) < 0) { fprintf(stderr, "  poll: %s\n", rsbus_errmsg(bus)); break; }
    rsbus_close(bus);
    return s.calls == 1 && strcmp(s.last_type, "tls.ping") == 0;
}

/* rsbus_open that must fail: its result code, err filled */
static rsbus_result open_fails(const char *url, rsbus_error *err) {
    rsbus_config c = cfg_url(url, "t:fail");
    rsbus *bus;
    memset(err, 0, sizeof *err);
    bus = rsbus_open(&c, err);
    if (bus) { rsbus_close(bus); return RSBUS_OK; }
    fprintf(stderr, "  (expected) %s: %s\n", rsbus_result_str(err->code), err->msg);
    return err->code;
}

/* ---- TLS lane ---- */

TEST(tls_publish_and_consume_with_ca) {
    rsbus_error err;
    CHECK(roundtrip(url_fmt("%s?ca=%s", srv.tls_url, cpath("ca.crt")), 0, &err));
    CHECK_EQ_INT(raw_int("XLEN t:rt1"), 1);
    /* by name (SAN DNS:localhost) and with sni= naming the server when connecting by address */
    CHECK(roundtrip(url_fmt("rediss://localhost:%d?ca=%s", srv.port, cpath("ca.crt")), 0, &err));
    CHECK(roundtrip(url_fmt("%s?ca=%s&sni=localhost", srv.tls_url, cpath("ca.crt")), 0, &err));
    /* require_tls is satisfied by rediss:// */
    CHECK(roundtrip(url_fmt("%s?ca=%s", srv.tls_url, cpath("ca.crt")), 1, &err));
    /* capath: a hashed directory holding the CA */
    CHECK(roundtrip(url_fmt("%s?capath=%s", srv.tls_url, cpath("capath")), 0, &err));
}

TEST(tls_wrong_ca_fails_verification) {
    rsbus_error err;
    CHECK_EQ_STR(rsbus_result_str(open_fails(url_fmt("%s?ca=%s", srv.tls_url, cpath("other-ca.crt")), &err)),
                 "RSBUS_E_TLS");
    CHECK_CONTAINS(err.msg, "verif");                /* says why: the certificate did not verify */
    /* no ca=: the system's CAs, which do not know the test CA */
    CHECK_EQ_STR(rsbus_result_str(open_fails(srv.tls_url, &err)), "RSBUS_E_TLS");
    CHECK_CONTAINS(err.msg, "verif");
    CHECK_EQ_STR(rsbus_result_str(open_fails(url_fmt("%s?capath=%s", srv.tls_url, cpath("other-capath")), &err)),
                 "RSBUS_E_TLS");
    CHECK_CONTAINS(err.msg, "verif");
    /* a password is never in the message */
    CHECK_EQ_STR(rsbus_result_str(open_fails(url_fmt("rediss://:s3cr3t-pw@127.0.0.1:%d?ca=%s", srv.port,
                                                     cpath("other-ca.crt")), &err)), "RSBUS_E_TLS");
    CHECK_NOT_CONTAINS(err.msg, "s3cr3t-pw");
    /* unreadable CA file: a TLS error naming the parameter */
    CHECK_EQ_STR(rsbus_result_str(open_fails(url_fmt("%s?ca=%s", srv.tls_url, cpath("missing.crt")), &err)),
                 "RSBUS_E_TLS");
    CHECK_CONTAINS(err.msg, "ca");
}

TEST(tls_wrong_name_fails_verification) {
    rsbus_error err;
    CHECK_EQ_STR(rsbus_result_str(open_fails(url_fmt("%s?ca=%s&sni=wrong.example", srv.tls_url, cpath("ca.crt")),
                                             &err)), "RSBUS_E_TLS");
    CHECK_CONTAINS(err.msg, "verif");
    if (have_second_ip) {    /* an address the certificate does not name */
        CHECK_EQ_STR(rsbus_result_str(open_fails(url_fmt("rediss://127.0.0.2:%d?ca=%s", srv.port, cpath("ca.crt")),
                                                 &err)), "RSBUS_E_TLS");
        CHECK_CONTAINS(err.msg, "verif");
    } else {
        fprintf(stderr, "  (127.0.0.2 cannot be bound here: the address-mismatch check is skipped)\n");
    }
}

TEST(tls_verify_0_connects_anyway) {
    rsbus_error err;
    CHECK(roundtrip(url_fmt("%s?ca=%s&verify=0", srv.tls_url, cpath("other-ca.crt")), 0, &err));
    CHECK(roundtrip(url_fmt("%s?verify=0", srv.tls_url), 0, &err));
    CHECK(roundtrip(url_fmt("%s?ca=%s&sni=wrong.example&verify=0", srv.tls_url, cpath("ca.crt")), 0, &err));
    if (have_second_ip)
        CHECK(roundtrip(url_fmt("rediss://127.0.0.2:%d?ca=%s&verify=0", srv.port, cpath("ca.crt")), 0, &err));
}

TEST(tls_client_certificate) {
    rsbus_error err;
    rsbus_result r;
    /* the server requires one: without it, refused, as a TLS error */
    r = open_fails(url_fmt("rediss://:tls-pw@127.0.0.1:%d?ca=%s", mtls.port, cpath("ca.crt")), &err);
    CHECK(r != RSBUS_OK);
    CHECK_EQ_STR(rsbus_result_str(r), "RSBUS_E_TLS");
    CHECK_NOT_CONTAINS(err.msg, "tls-pw");
    /* with the client's certificate and key: in, and AUTH works over TLS */
    CHECK(roundtrip(url_fmt("rediss://:tls-pw@127.0.0.1:%d?ca=%s&cert=%s&key=%s", mtls.port, cpath("ca.crt"),
                            cpath("client.crt"), cpath("client.key")), 0, &err));
    /* a wrong password over TLS is an AUTH error, not a TLS one */
    CHECK_EQ_STR(rsbus_result_str(open_fails(url_fmt("rediss://:nope@127.0.0.1:%d?ca=%s&cert=%s&key=%s", mtls.port,
                                                     cpath("ca.crt"), cpath("client.crt"), cpath("client.key")),
                                             &err)), "RSBUS_E_AUTH");
    /* a certificate of a CA the server does not trust: refused */
    r = open_fails(url_fmt("rediss://:tls-pw@127.0.0.1:%d?ca=%s&cert=%s&key=%s", mtls.port, cpath("ca.crt"),
                           cpath("other-client.crt"), cpath("other-client.key")), &err);
    CHECK_EQ_STR(rsbus_result_str(r), "RSBUS_E_TLS");
    /* local mistakes, found before connecting: a key that is not the certificate's, a missing file */
    CHECK_EQ_STR(rsbus_result_str(open_fails(url_fmt("rediss://:tls-pw@127.0.0.1:%d?ca=%s&cert=%s&key=%s", mtls.port,
                                                     cpath("ca.crt"), cpath("client.crt"), cpath("server.key")),
                                             &err)), "RSBUS_E_TLS");
    CHECK_CONTAINS(err.msg, "key");
    CHECK_EQ_STR(rsbus_result_str(open_fails(url_fmt("rediss://:tls-pw@127.0.0.1:%d?ca=%s&cert=%s&key=%s", mtls.port,
                                                     cpath("ca.crt"), cpath("missing.crt"), cpath("client.key")),
                                             &err)), "RSBUS_E_TLS");
    CHECK_CONTAINS(err.msg, "cert");
    /* the optional server takes a client certificate too */
    CHECK(roundtrip(url_fmt("%s?ca=%s&cert=%s&key=%s", srv.tls_url, cpath("ca.crt"), cpath("client.crt"),
                            cpath("client.key")), 0, &err));
}

/* A child opens the bus and exits with -result (its message in certdir/child.msg); the parent waits up
   to 15 s (reap: -1 when it had to kill it). */
static const char *child_url;
static void child_open(void *arg) {
    rsbus_config c = cfg_url(child_url, "t:child");
    rsbus_error err;
    rsbus *bus;
    FILE *f;
    (void)arg;
    c.connect_timeout_ms = 500;
    c.io_timeout_ms = 500;
    bus = rsbus_open(&c, &err);
    if (bus) { rsbus_close(bus); _exit(0); }
    if ((f = fopen(cpath("child.msg"), "w")) != NULL) { fputs(err.msg, f); fclose(f); }
    _exit(-(int)err.code);
}
static int open_in_child(const char *url, char *msg, size_t size, int64_t *took_ms) {
    int64_t t0 = test_now_ms();
    int st;
    FILE *f;
    child_url = url;
    unlink(cpath("child.msg"));
    st = reap(spawn(child_open, NULL), 15000);
    *took_ms = test_now_ms() - t0;
    msg[0] = 0;
    if ((f = fopen(cpath("child.msg"), "r")) != NULL) {
        size_t n = fread(msg, 1, size - 1, f);
        msg[n] = 0;
        fclose(f);
    }
    fprintf(stderr, "  (expected) %s after %lld ms: %s\n", st > 0 ? rsbus_result_str((rsbus_result)-st) : "?",
            (long long)*took_ms, msg);
    return st;
}

TEST(tls_to_a_plain_or_silent_server_fails_in_time) {
    test_redis plain;
    char msg[300];
    int port = 0, fd, st;
    int64_t took;
    /* a plain redis-server behind rediss://: it waits for a line that the ClientHello never ends, so
       the handshake fails on the io timeout (500 ms here), with a message that says something */
    REQUIRE(test_redis_start(&plain, NULL) == 0);
    st = open_in_child(url_fmt("rediss://127.0.0.1:%d?ca=%s", plain.port, cpath("ca.crt")), msg, sizeof msg, &took);
    CHECK(st == -(int)RSBUS_E_TLS || st == -(int)RSBUS_E_TIMEOUT);
    CHECK(took < 5000);
    CHECK_CONTAINS(msg, "TLS");
    CHECK_NOT_CONTAINS(msg, "(null)");
    test_redis_stop(&plain);
    /* a listener that accepts and never answers: bounded by the timeouts, not a hang */
    fd = listen_tcp(&port);
    REQUIRE(fd >= 0);
    st = open_in_child(url_fmt("rediss://127.0.0.1:%d?ca=%s", port, cpath("ca.crt")), msg, sizeof msg, &took);
    if (st < 0) fprintf(stderr, "  rsbus_open on a silent TLS port did not return within 15 s\n");
    CHECK(st == -(int)RSBUS_E_TLS || st == -(int)RSBUS_E_TIMEOUT);
    CHECK(took < 5000);
    CHECK_NOT_CONTAINS(msg, "(null)");
    close(fd);
}

TEST(tls_large_batched_and_run) {
    rsbus_config c = cfg_url(url_fmt("%s?ca=%s", srv.tls_url, cpath("ca.crt")), "t:big");
    rsbus_event evs[200];
    char (*ids)[RSBUS_ID_SIZE] = (char (*)[RSBUS_ID_SIZE])malloc(200 * RSBUS_ID_SIZE);
    char *big = (char *)malloc(600 * 1024);
    rsbus *bus;
    seen s;
    size_t i;
    int64_t dl;
    REQUIRE(ids && big);
    memset(&s, 0, sizeof s);
    c.max_event_bytes = 1 << 20;
    c.batch_size = 64;
    bus = open_cfg(&c);
    if (!bus) { free(ids); free(big); REQUIRE(bus != NULL); }
    REQUIRE(rsbus_subscribe(bus, "*", on_msg, &s) > 0);
    /* a 600 KB event: many TLS records each way */
    big[0] = '"';
    for (i = 1; i < 600 * 1024 - 2; i++) big[i] = (char)('a' + (char)(i % 26));
    big[i] = '"';
    big[i + 1] = 0;
    CHECK_EQ_INT(pub(bus, "tls.big", big), RSBUS_OK);
    /* 200 small ones in one round trip */
    memset(evs, 0, sizeof evs);
    for (i = 0; i < 200; i++) { evs[i].type = "tls.small"; evs[i].data = "{\"k\":[1,2,3]}"; }
    CHECK_EQ_INT(rsbus_publish_batch(bus, evs, 200, ids), RSBUS_OK);
    dl = test_now_ms() + 10000;
    while (s.calls < 201 && test_now_ms() < dl) if (rsbus_poll(bus, 100) < 0) break;
    CHECK_EQ_INT(s.calls, 201);
    CHECK_EQ_INT(pending_of("t:big", "g"), 0);
    /* an empty stream: a blocking poll waits, then returns 0 */
    dl = test_now_ms();
    CHECK_EQ_INT(rsbus_poll(bus, 300), 0);
    CHECK(test_now_ms() - dl >= 250);
    /* rsbus_run over TLS (XREADGROUP BLOCK), stopped by the handler after 3 events */
    for (i = 0; i < 3; i++) CHECK_EQ_INT(pub(bus, "tls.run", "{}"), RSBUS_OK);
    s.calls = 0;
    s.stop_bus = bus;
    s.stop_after = 3;
    CHECK_EQ_INT(rsbus_run(bus, NULL), RSBUS_OK);
    CHECK_EQ_INT(s.calls, 3);
    CHECK_EQ_STR(s.last_type, "tls.run");
    rsbus_close(bus);
    free(ids);
    free(big);
}

/* rediss+cluster://: three TLS-only masters (tls-cluster yes; the nodes present the client certificate to
   each other, the server one has serverAuth only), the CA given once for every node */
TEST(tls_cluster_publish_and_consume) {
    test_cluster tc;
    char conf[2048], cli[600];
    rsbus_config c;
    rsbus *bus;
    seen s;
    int i, handled = 0;
    snprintf(conf, sizeof conf, "tls-cert-file \"%s\"\ntls-key-file \"%s\"\ntls-ca-cert-file \"%s\"\n"
             "tls-auth-clients optional\ntls-client-cert-file \"%s\"\ntls-client-key-file \"%s\"\n",
             cpath("server.crt"), cpath("server.key"), cpath("ca.crt"), cpath("client.crt"), cpath("client.key"));
    snprintf(cli, sizeof cli, "--tls --cacert '%s'", cpath("ca.crt"));
    REQUIRE(test_cluster__start(&tc, 3, 0, conf, cli) == 0);
    c = cfg_url(url_fmt("rediss+cluster://127.0.0.1:%d,127.0.0.1:%d?ca=%s", tc.node[0].port, tc.node[1].port,
                        cpath("ca.crt")), "tls-orders");
    c.group = "g";
    c.group_start = "0";
    bus = rsbus_open(&c, NULL);
    CHECK(bus != NULL);
    if (bus) {
        rsbus_event evs[10];
        memset(evs, 0, sizeof evs);
        for (i = 0; i < 10; i++) { evs[i].type = "t"; evs[i].data = "{\"n\":1}"; }
        CHECK_EQ_INT(rsbus_publish_batch(bus, evs, 10, NULL), RSBUS_OK);
        CHECK_EQ_INT(pub(bus, "t", "{}"), RSBUS_OK);
        memset(&s, 0, sizeof s);
        CHECK(rsbus_subscribe(bus, "*", on_msg, &s) > 0);
        while (handled < 11) {
            int n = rsbus_poll(bus, 500);
            if (n <= 0) break;
            handled += n;
        }
        CHECK_EQ_INT(s.calls, 11);
        rsbus_close(bus);
    }
    c.url = url_fmt("rediss+cluster://127.0.0.1:%d?ca=%s", tc.node[2].port, cpath("other-ca.crt"));   /* wrong CA */
    {
        rsbus_error e;
        CHECK_EQ_INT(open_fails(c.url, &e), RSBUS_E_TLS);
    }
    test_cluster_stop(&tc);
}

static volatile sig_atomic_t run_stop;
static void on_alarm(int sig) { (void)sig; run_stop = 1; }

TEST(tls_reconnect_after_restart_without_sigpipe) {
    rsbus_config c = cfg_url(url_fmt("%s?ca=%s", srv.tls_url, cpath("ca.crt")), "t:restart");
    rsbus *bus;
    rsbus_stats st;
    rsbus_result r = RSBUS_E_IO;
    seen s;
    int i;
    memset(&s, 0, sizeof s);
    c.connect_timeout_ms = 500;
    c.io_timeout_ms = 1000;
    bus = open_cfg(&c);
    REQUIRE(bus != NULL);
    REQUIRE(rsbus_subscribe(bus, "*", on_msg, &s) > 0);
    CHECK_EQ_INT(pub(bus, "tls.before", "{}"), RSBUS_OK);
    raw_reset();
    test_redis_kill(&srv);
    /* writes to a dead TLS peer: errors, and no SIGPIPE (which would end this program) */
    for (i = 0; i < 3; i++) CHECK(pub(bus, "tls.during", "{}") != RSBUS_OK);
    REQUIRE(test_redis_restart(&srv) == 0);
    for (i = 0; i < 20 && r != RSBUS_OK; i++) {
        r = pub(bus, "tls.after", "{}");
        if (r != RSBUS_OK) test_sleep_ms(100);
    }
    CHECK_EQ_INT(r, RSBUS_OK);
    /* the server came back empty: rsbus_run recreates the group and gets tls.after (alarm: a bound) */
    s.stop_bus = bus;
    s.stop_after = 1;
    run_stop = 0;
    signal(SIGALRM, on_alarm);
    alarm(15);
    CHECK_EQ_INT(rsbus_run(bus, &run_stop), RSBUS_OK);
    alarm(0);
    CHECK_EQ_INT(run_stop, 0);
    CHECK_EQ_INT(s.calls, 1);
    CHECK_EQ_STR(s.last_type, "tls.after");
    rsbus_stats_get(bus, &st);
    CHECK(st.reconnects >= 1);
    rsbus_close(bus);
}
#endif /* RSBUS_TLS */

int main(void) {
#ifdef RSBUS_TLS
    const char *base = getenv("TMPDIR");
    char tmpl[300];
    signal(SIGPIPE, SIG_DFL);     /* a SIGPIPE must end the program, so the restart test sees it */
    if (!base || !*base || strlen(base) > 200 || strpbrk(base, "\"'\\ \n")) base = "/tmp";
    snprintf(tmpl, sizeof tmpl, "%s/rsbus-tls.XXXXXX", base);
    if (!mkdtemp(tmpl)) {
        fprintf(stderr, "test_tls: mkdtemp %s: %s\n", tmpl, strerror(errno));
        printf("test_tls: 0 passed, 1 failed\n");
        return 1;
    }
    snprintf(certdir, sizeof certdir, "%s", tmpl);
    atexit(remove_certdir);
    have_second_ip = second_ip_bindable();
    if (make_certs() != 0) {
        fprintf(stderr, "test_tls: cannot make the test certificates with openssl (apt-get install openssl)\n");
        printf("test_tls: 0 passed, 1 failed\n");
        return 1;
    }
    if (start_servers() != 0) {
        fprintf(stderr, "test_tls: cannot start redis-server with a TLS port (is it built with TLS?)\n");
        printf("test_tls: 0 passed, 1 failed\n");
        return 1;
    }
    fprintf(stderr, "test_tls: %s (tls-auth-clients optional), rediss://127.0.0.1:%d (tls-auth-clients yes)\n",
            srv.tls_url, mtls.port);
#endif
    RUN(require_tls_refuses_redis_and_unix_before_connecting);
#ifndef RSBUS_TLS
    RUN(rediss_needs_a_tls_build);
#else
    RUN(tls_publish_and_consume_with_ca);
    RUN(tls_wrong_ca_fails_verification);
    RUN(tls_wrong_name_fails_verification);
    RUN(tls_verify_0_connects_anyway);
    RUN(tls_client_certificate);
    RUN(tls_to_a_plain_or_silent_server_fails_in_time);
    RUN(tls_large_batched_and_run);
    RUN(tls_reconnect_after_restart_without_sigpipe);
    RUN(tls_cluster_publish_and_consume);
    raw_reset();
    test_redis_stop(&mtls);
    test_redis_stop(&srv);
#endif
    return test_summary("test_tls");
}
