/* wss:// on the board itself (issue 16): the suite built with the mbedTLS adapter (make tls
   builds tests/run_tests-wss with -DCHAT_TLS_MBEDTLS and runs the conformance cases and these).

   Every library server the suite starts speaks TLS only. The tests' own plain clients reach it
   through a relay in the server's process (a thread per connection, an mbedTLS client each,
   FIN and reset passed on as they come), so tests/conformance.c runs unchanged over wss and
   must give the same verdicts as over ws. The tests below talk TLS to a server directly:
   handshakes that stall, garbage, a plain client on the TLS port, stalled handshakes giving way
   at max_connections, TLS versions, the memory an idle TLS client costs. Needs CHAT_TEST_CERT and
   CHAT_TEST_KEY (PEM files; make tls makes them). */

#include <malloc.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/ssl.h>
#include <netinet/tcp.h>
#include <pthread.h>

static const char *wss_cert, *wss_key;
static chat_tls *wss_server_tls; /* in a library server's process */

/* --- a TLS client (mbedTLS), for the relay and the direct tests --- */

typedef struct wss_client {
    mbedtls_net_context net;
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
    mbedtls_ssl_config conf;
    mbedtls_ssl_context ssl;
} wss_client;

/* The relay resumes TLS sessions (tickets), as browsers do: a hundred relayed connections at
   once then cost the server a hundred short handshakes, not a hundred key exchanges. */
static mbedtls_ssl_session wss_session;
static int wss_session_held;
static pthread_mutex_t wss_session_lock = PTHREAD_MUTEX_INITIALIZER;

#define WSS_BLOCKING 1 /* the handshake is done in wss_client_open */
#define WSS_RESUME 2   /* ... resuming the last session, and keeping the new one */

/* Sets up a client on a connected socket; minor 0: TLS 1.2 (the default), 1 or 2: only TLS 1.0
   or 1.1. Returns 0 or mbedTLS's error. */
static int wss_client_open(wss_client *c, int fd, int minor, int mode) {
    int r;
    mbedtls_net_init(&c->net);
    c->net.fd = fd;
    mbedtls_entropy_init(&c->entropy);
    mbedtls_ctr_drbg_init(&c->drbg);
    mbedtls_ssl_config_init(&c->conf);
    mbedtls_ssl_init(&c->ssl);
    if ((r = mbedtls_ctr_drbg_seed(&c->drbg, mbedtls_entropy_func, &c->entropy, NULL, 0)) ||
        (r = mbedtls_ssl_config_defaults(&c->conf, MBEDTLS_SSL_IS_CLIENT, MBEDTLS_SSL_TRANSPORT_STREAM,
                                         MBEDTLS_SSL_PRESET_DEFAULT)))
        return r;
    mbedtls_ssl_conf_authmode(&c->conf, MBEDTLS_SSL_VERIFY_NONE); /* the test's self-signed certificate */
    mbedtls_ssl_conf_rng(&c->conf, mbedtls_ctr_drbg_random, &c->drbg);
    if (minor) {
        mbedtls_ssl_conf_min_version(&c->conf, MBEDTLS_SSL_MAJOR_VERSION_3, minor);
        mbedtls_ssl_conf_max_version(&c->conf, MBEDTLS_SSL_MAJOR_VERSION_3, minor);
    }
    if ((r = mbedtls_ssl_setup(&c->ssl, &c->conf))) return r;
    mbedtls_ssl_set_bio(&c->ssl, &c->net, mbedtls_net_send, mbedtls_net_recv, NULL);
    if (!(mode & WSS_BLOCKING)) return mbedtls_net_set_nonblock(&c->net);
    if (mode & WSS_RESUME) {
        pthread_mutex_lock(&wss_session_lock);
        if (wss_session_held) (void)mbedtls_ssl_set_session(&c->ssl, &wss_session);
        pthread_mutex_unlock(&wss_session_lock);
    }
    while ((r = mbedtls_ssl_handshake(&c->ssl)) == MBEDTLS_ERR_SSL_WANT_READ || r == MBEDTLS_ERR_SSL_WANT_WRITE) {}
    if (r == 0 && (mode & WSS_RESUME)) {
        pthread_mutex_lock(&wss_session_lock);
        mbedtls_ssl_session_free(&wss_session);
        mbedtls_ssl_session_init(&wss_session);
        wss_session_held = mbedtls_ssl_get_session(&c->ssl, &wss_session) == 0;
        pthread_mutex_unlock(&wss_session_lock);
    }
    return r;
}

static void wss_reset(int fd) {
    struct linger lg;
    lg.l_onoff = 1, lg.l_linger = 0;
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
}

/* Frees the client and closes its socket (with a reset: the peer sees it at once). */
static void wss_client_free(wss_client *c, int reset) {
    if (reset && c->net.fd >= 0) wss_reset(c->net.fd);
    mbedtls_ssl_free(&c->ssl);
    mbedtls_ssl_config_free(&c->conf);
    mbedtls_ctr_drbg_free(&c->drbg);
    mbedtls_entropy_free(&c->entropy);
    mbedtls_net_free(&c->net);
}

/* A blocking socket that gives up after a silence of twice the harness's wait, so no test waits
   for ever. */
static int wss_connect(int port) {
    struct timeval tv;
    int fd = wsc_tcp_connect("127.0.0.1", port);
    tv.tv_sec = harness_wait_ms * 2 / 1000, tv.tv_usec = 0;
    if (fd >= 0) setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

/* --- the relay: plain in front, TLS to the server --- */

typedef struct wss_relay_job {
    int plain, port;
} wss_relay_job;

static void *wss_relay_conn(void *arg) {
    wss_relay_job job = *(wss_relay_job *)arg;
    unsigned char up[16384], down[16384];
    size_t up_len = 0, up_off = 0;
    int plain_eof = 0, tls_eof = 0, closed = 0, failed = 0, tcp;
    wss_client c;
    free(arg);
    tcp = wss_connect(job.port);
    if (tcp < 0) {
        wss_reset(job.plain);
        close(job.plain);
        return NULL;
    }
    if (wss_client_open(&c, tcp, 0, WSS_BLOCKING | WSS_RESUME) != 0 || mbedtls_net_set_nonblock(&c.net) != 0) failed = 1;
    while (!failed && !(plain_eof && tls_eof)) {
        struct pollfd p[2];
        int avail = mbedtls_ssl_get_bytes_avail(&c.ssl) > 0;
        p[0].fd = job.plain, p[0].events = !plain_eof && up_off == up_len ? POLLIN : 0, p[0].revents = 0;
        p[1].fd = tcp, p[1].events = (short)((tls_eof ? 0 : POLLIN) | (up_off < up_len ? POLLOUT : 0)), p[1].revents = 0;
        if (poll(p, 2, avail ? 0 : 1000) < 0 && errno != EINTR) break;
        if (!tls_eof && (avail || (p[1].revents & (POLLIN | POLLHUP | POLLERR)))) { /* server -> client */
            for (;;) {
                int n = mbedtls_ssl_read(&c.ssl, down, sizeof down);
                if (n > 0 && wsc_send_all(job.plain, down, (size_t)n) == 0) continue;
                if (n == MBEDTLS_ERR_SSL_WANT_READ) break;
                if (n == 0 || n == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY) {
                    tls_eof = 1;
                    shutdown(job.plain, SHUT_WR);
                } else {
                    failed = 1; /* a reset is passed on as one */
                }
                break;
            }
        }
        if (!failed && !plain_eof && up_off == up_len && (p[0].revents & (POLLIN | POLLHUP | POLLERR))) {
            ssize_t n = recv(job.plain, up, sizeof up, 0);
            if (n > 0) up_off = 0, up_len = (size_t)n;
            else if (n == 0) plain_eof = 1;
            else if (errno != EINTR && errno != EAGAIN) failed = 1;
        }
        while (!failed && up_off < up_len) { /* client -> server; the same bytes again after WANT_WRITE */
            int n = mbedtls_ssl_write(&c.ssl, up + up_off, up_len - up_off);
            if (n > 0) up_off += (size_t)n;
            else if (n == MBEDTLS_ERR_SSL_WANT_WRITE || n == MBEDTLS_ERR_SSL_WANT_READ) break;
            else failed = 1;
        }
        if (plain_eof && up_off == up_len && !closed) {
            (void)mbedtls_ssl_close_notify(&c.ssl);
            shutdown(tcp, SHUT_WR);
            closed = 1;
        }
    }
    if (failed) wss_reset(job.plain);
    close(job.plain);
    wss_client_free(&c, failed);
    return NULL;
}

static int wss_relay_listen_fd = -1, wss_relay_target;

static void *wss_relay_main(void *arg) {
    (void)arg;
    for (;;) {
        pthread_t t;
        wss_relay_job *job;
        int fd = accept(wss_relay_listen_fd, NULL, NULL), one = 1;
        if (fd < 0 && errno == EINTR) continue;
        if (fd < 0) return NULL;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        job = (wss_relay_job *)malloc(sizeof *job);
        job->plain = fd, job->port = wss_relay_target;
        if (pthread_create(&t, NULL, wss_relay_conn, job) == 0) pthread_detach(t);
        else close(fd), free(job);
    }
}

/* harness_library_front: a relay on a port of its own; its threads leave signals to the loop. */
static int wss_front(int port) {
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    sigset_t all, old;
    pthread_t t;
    wss_relay_target = port;
    wss_relay_listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET, a.sin_addr.s_addr = htonl(INADDR_LOOPBACK), a.sin_port = 0;
    if (wss_relay_listen_fd < 0 || bind(wss_relay_listen_fd, (struct sockaddr *)&a, sizeof a) < 0 ||
        listen(wss_relay_listen_fd, 256) < 0 || getsockname(wss_relay_listen_fd, (struct sockaddr *)&a, &len) < 0)
        _exit(2);
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    if (pthread_create(&t, NULL, wss_relay_main, NULL) != 0) _exit(2);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return ntohs(a.sin_port);
}

/* harness_library_config: the server speaks TLS only. */
static void wss_library_config(chat_config *cfg) {
    char why[256];
    if (!wss_server_tls) wss_server_tls = chat_tls_create(wss_cert, wss_key, why, sizeof why);
    if (!wss_server_tls) {
        fprintf(stderr, "wss: %s\n", why);
        _exit(2);
    }
    cfg->transport = chat_tls_transport(wss_server_tls);
}

static int wss_setup(void) {
    wss_cert = getenv("CHAT_TEST_CERT"), wss_key = getenv("CHAT_TEST_KEY");
    if (!wss_cert || !wss_key) {
        fprintf(stderr, "run_tests-wss: CHAT_TEST_CERT and CHAT_TEST_KEY must name a PEM certificate and key\n");
        return -1;
    }
    harness_library_config = wss_library_config;
    harness_library_front = wss_front;
    return 0;
}

/* --- the direct tests --- */

/* A library server without the relay: its own port speaks TLS. */
static int wss_start_direct(harness_server *s, chat_config *cfg) {
    int (*front)(int) = harness_library_front, r;
    harness_library_front = NULL;
    r = harness_start_library(s, cfg);
    harness_library_front = front;
    return r;
}

/* Milliseconds until the server ends the connection (EOF or reset), or -1 after `bound_ms`. */
static long long wss_ms_to_end(int fd, long long since, int bound_ms) {
    for (;;) {
        struct pollfd p;
        char buf[256];
        long long left = since + bound_ms - wsc_now_ms();
        ssize_t n;
        p.fd = fd, p.events = POLLIN, p.revents = 0;
        if (left <= 0 || poll(&p, 1, (int)left) <= 0) return -1;
        n = recv(fd, buf, sizeof buf, 0);
        if (n <= 0) return wsc_now_ms() - since;
    }
}

/* GET /hello over TLS (the library server's asset): 1 when "hello" came back. */
static int wss_get_hello(int port) {
    static const char req[] = "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    char buf[1024];
    size_t got = 0;
    wss_client c;
    long long t0 = wsc_now_ms();
    int fd = wss_connect(port), ok = 0, r;
    if (fd < 0) return 0;
    if ((r = wss_client_open(&c, fd, 0, WSS_BLOCKING)) != 0) /* says why, should a test fail on it */
        printf("  wss: a TLS handshake failed after %lld ms: -0x%04x\n", wsc_now_ms() - t0, (unsigned)-r);
    if (r == 0 && mbedtls_ssl_write(&c.ssl, (const unsigned char *)req, sizeof req - 1) > 0)
        while (got < sizeof buf - 1 && (r = mbedtls_ssl_read(&c.ssl, (unsigned char *)buf + got, sizeof buf - 1 - got)) > 0) {
            got += (size_t)r;
            buf[got] = '\0';
            if ((ok = strstr(buf, "\r\n\r\nhello\n") != NULL)) break;
        }
    wss_client_free(&c, 0);
    return ok;
}

static void test_wss_handshakes_stalled_garbage_and_plain(void) {
    /* the first bytes of a ClientHello: a record header and a handshake header, then nothing */
    static const unsigned char half_hello[] = {0x16, 0x03, 0x01, 0x00, 0xc8, 0x01, 0x00, 0x00, 0xc4, 0x03, 0x03, 1, 2, 3};
    static const unsigned char bad_record[] = {0x16, 0x03, 0x03, 0x00, 0x06, 0x01, 0x00, 0x00, 0x02, 0xff, 0xff};
    static const char plain[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    harness_server s;
    chat_config cfg;
    long long t0, ms[4];
    int fd[4], i, timeout = harness_wait_ms / 3; /* 1 s; longer under valgrind, where a good handshake is slow */
    memset(&cfg, 0, sizeof cfg);
    cfg.handshake_timeout_ms = timeout;
    CHECK_INT(wss_start_direct(&s, &cfg), 0);
    for (i = 0; i < 4; i++) fd[i] = wss_connect(s.port);
    t0 = wsc_now_ms();
    /* 0: silent, 1: half a ClientHello -- both for the handshake timer; 2: a plain HTTP client,
       3: a handshake message that is not a ClientHello -- both failed at once */
    wsc_send_all(fd[1], half_hello, sizeof half_hello);
    wsc_send_all(fd[2], plain, sizeof plain - 1);
    wsc_send_all(fd[3], bad_record, sizeof bad_record);
    for (i = 3; i >= 0; i--) ms[i] = wss_ms_to_end(fd[i], t0, harness_wait_ms * 2);
    CHECKF(ms[2] >= 0 && ms[2] < timeout * 9 / 10, "a plain HTTP client was dropped after %lld ms (at once expected)", ms[2]);
    CHECKF(ms[3] >= 0 && ms[3] < timeout * 9 / 10, "a bad handshake record was dropped after %lld ms (at once expected)", ms[3]);
    CHECKF(ms[0] >= timeout * 9 / 10, "a silent peer was dropped after %lld ms (the handshake timeout is %d ms)", ms[0], timeout);
    CHECKF(ms[1] >= timeout * 9 / 10, "half a ClientHello was dropped after %lld ms (the handshake timeout is %d ms)", ms[1], timeout);
    for (i = 0; i < 4; i++) close(fd[i]);
    CHECKF(wss_get_hello(s.port), "a TLS client was not served after the bad ones");
    CHECK_INT(harness_stop_server(&s), 0);
}

static void test_wss_versions(void) {
    harness_server s;
    wss_client c;
    int minor, r;
    CHECK_INT(wss_start_direct(&s, NULL), 0);
    for (minor = MBEDTLS_SSL_MINOR_VERSION_1; minor <= MBEDTLS_SSL_MINOR_VERSION_3; minor++) {
        int fd = wss_connect(s.port);
        r = wss_client_open(&c, fd, minor, WSS_BLOCKING);
        if (minor < MBEDTLS_SSL_MINOR_VERSION_3)
            CHECKF(r != 0, "TLS 1.%d was accepted", minor - 1);
        else
            CHECKF(r == 0 && strcmp(mbedtls_ssl_get_version(&c.ssl), "TLSv1.2") == 0, "TLS 1.2: -0x%04x %s", -r,
                   mbedtls_ssl_get_version(&c.ssl));
        wss_client_free(&c, 0);
    }
    CHECK_INT(harness_stop_server(&s), 0);
}

/* Stalled handshakes (half a ClientHello each, more than max_connections of them) do not keep a
   TLS client out: a stalled handshake is an HTTP connection, the first to give way at the cap.
   In one process over socketpairs, turn by turn, so nothing depends on timing. */
static void test_wss_stalled_handshakes_give_way(void) {
    static const unsigned char half_hello[] = {0x16, 0x03, 0x01, 0x00, 0xc8, 0x01, 0x00, 0x00, 0xc4, 0x03, 0x03};
    static const char req[] = "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n";
    enum { CAP = 8, STUCK = 12 };
    char why[256], got[512] = "";
    chat_tls *tls = chat_tls_create(wss_cert, wss_key, why, sizeof why);
    chat_config cfg;
    chat_server *srv;
    int stuck[STUCK], i, turn, r = 0, n = 0, sv[2];
    wss_client c;
    CHECKF(tls != NULL, "%s", why);
    if (!tls) return;
    memset(&cfg, 0, sizeof cfg);
    cfg.max_per_address = -1, cfg.max_connections = CAP;
    cfg.transport = chat_tls_transport(tls);
    srv = chat_server_create(&cfg);
    CHECK_INT(chat_server_add_asset(srv, "/hello", "text/plain", "hello\n", 6), CHAT_OK);
    for (i = 0; i < STUCK; i++) {
        CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
        chat_server_adopt(srv, sv[0]); /* past the cap, the oldest stalled one gives way */
        stuck[i] = sv[1];
        wsc_send_all(stuck[i], half_hello, sizeof half_hello);
        chat_server_poll(srv, 0);
    }
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    CHECK_INT(chat_server_adopt(srv, sv[0]), CHAT_OK);
    CHECK_INT(wss_client_open(&c, sv[1], 0, 0), 0);
    for (turn = 0; turn < 200; turn++) {
        r = mbedtls_ssl_handshake(&c.ssl);
        if (r != MBEDTLS_ERR_SSL_WANT_READ && r != MBEDTLS_ERR_SSL_WANT_WRITE) break;
        chat_server_poll(srv, 0);
    }
    CHECKF(r == 0, "a TLS client behind %d stalled handshakes failed its own: -0x%04x", STUCK, -r);
    if (r == 0 && mbedtls_ssl_write(&c.ssl, (const unsigned char *)req, sizeof req - 1) == (int)sizeof req - 1)
        for (turn = 0; turn < 200 && !strstr(got, "\r\n\r\nhello\n"); turn++) {
            chat_server_poll(srv, 0);
            got[n] = '\0';
            r = mbedtls_ssl_read(&c.ssl, (unsigned char *)got + n, sizeof got - 1 - (size_t)n);
            if (r > 0) n += r, got[n] = '\0';
        }
    got[n] = '\0';
    CHECKF(strstr(got, "\r\n\r\nhello\n") != NULL, "no answer over TLS: %s", got);
    wss_client_free(&c, 0);
    chat_server_free(srv);
    chat_tls_free(tls);
    for (i = 0; i < STUCK; i++) close(stuck[i]);
}

/* What an idle TLS client costs the server: heap (every allocator: chat.h's and mbedTLS's, from
   malloc's own count) and RSS, with N clients joined and silent. The clients live in a child
   process so that only the server's memory is in this one. */
static long wss_rss_kb(void) {
    char line[256];
    long kb = -1;
    FILE *f = fopen("/proc/self/status", "r");
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1) break;
    if (f) fclose(f);
    return kb;
}

static void test_wss_memory_per_idle_client(void) {
    enum { N = 40 };
    char why[256];
    chat_tls *tls = chat_tls_create(wss_cert, wss_key, why, sizeof why);
    chat_config cfg;
    chat_server *srv;
    struct mallinfo2 before, after;
    long rss_before, rss_after;
    long long deadline;
    int p[2], port, ready = 0, k;
    pid_t pid;
    CHECKF(tls != NULL, "%s", why);
    if (!tls) return;
    memset(&cfg, 0, sizeof cfg);
    cfg.max_per_address = -1, cfg.max_join_rate = -1, cfg.history = -1;
    cfg.transport = chat_tls_transport(tls);
    srv = chat_server_create(&cfg);
    CHECK_INT(chat_server_listen(srv, "127.0.0.1", 0), CHAT_OK);
    port = chat_server_port(srv);
    for (k = 0; k < 3; k++) chat_server_poll(srv, 0);
    malloc_trim(0);
    before = mallinfo2(), rss_before = wss_rss_kb();
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, p) == 0); /* ready ->, and <- done (EOF) */
    fflush(stdout);
    pid = fork();
    if (pid == 0) { /* N clients: handshake, join, then silence until the parent closes the pipe */
        static wss_client cs[N];
        char req[256], c;
        int i;
        close(p[0]);
        chat_server_free(srv); /* the parent's: this process's copies of its descriptors and memory */
        chat_tls_free(tls);
        for (i = 0; i < N; i++) {
            unsigned char buf[4096];
            int n = snprintf(req, sizeof req,
                             "GET /start_web_socket?username=idle%d HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                             "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                             "Sec-WebSocket-Version: 13\r\n\r\n", i);
            if (wss_client_open(&cs[i], wss_connect(port), 0, WSS_BLOCKING) != 0 ||
                mbedtls_ssl_write(&cs[i].ssl, (const unsigned char *)req, (size_t)n) != n ||
                mbedtls_ssl_read(&cs[i].ssl, buf, sizeof buf) <= 0) /* the 101 */
                _exit(1);
        }
        if (write(p[1], "r", 1) != 1 || read(p[1], &c, 1) < 0) _exit(1); /* read: EOF when the parent is done */
        for (i = 0; i < N; i++) wss_client_free(&cs[i], 0);
        _exit(0);
    }
    close(p[1]);
    deadline = wsc_now_ms() + harness_wait_ms * 7;
    while (!ready && wsc_now_ms() < deadline) {
        struct pollfd q;
        char c;
        chat_server_poll(srv, 10);
        q.fd = p[0], q.events = POLLIN, q.revents = 0;
        if (poll(&q, 1, 0) == 1) {
            ready = read(p[0], &c, 1) == 1;
            if (!ready) break;
        }
    }
    CHECKF(ready, "%d TLS clients did not join", N);
    for (k = 0; k < 20; k++) chat_server_poll(srv, 5); /* the lists go out */
    CHECK_INT(chat_server_user_count(srv), N);
    malloc_trim(0);
    after = mallinfo2(), rss_after = wss_rss_kb();
    if (after.uordblks == 0) { /* a sanitizer's allocator: malloc's count says nothing here */
        printf("  wss: heap per idle TLS client: not measured under this allocator\n");
        after = before;
    } else
        printf("  wss: per idle TLS client: heap %zu B, RSS %ld B (%d clients; mbedTLS %s, record content %d + %d B)\n",
           (after.uordblks - before.uordblks) / N, (rss_after - rss_before) * 1024 / N, N, MBEDTLS_VERSION_STRING,
           MBEDTLS_SSL_IN_CONTENT_LEN, MBEDTLS_SSL_OUT_CONTENT_LEN);
    /* its two record buffers (content, plus ~400 B of header and padding room each), its keys and
       little more: the handshake's state is gone */
    CHECKF((after.uordblks - before.uordblks) / N < MBEDTLS_SSL_IN_CONTENT_LEN + MBEDTLS_SSL_OUT_CONTENT_LEN + 6144,
           "an idle TLS client holds %zu bytes of heap", (after.uordblks - before.uordblks) / N);
    close(p[0]);
    waitpid(pid, NULL, 0);
    chat_server_free(srv);
    chat_tls_free(tls);
}

static void wss_tests(void) {
    RUN(test_wss_handshakes_stalled_garbage_and_plain);
    RUN(test_wss_versions);
    RUN(test_wss_stalled_handshakes_give_way);
    RUN(test_wss_memory_per_idle_client);
}
