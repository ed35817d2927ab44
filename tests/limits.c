/* Bounded memory and fair service under attack (README "Limits and failure behaviour"): each
   test is one way a peer, or one address, could make the server hold too much, work too much,
   or lock the others out. The heap is measured through the CHAT_MALLOC hook of main.c. */
#include <netinet/in.h>
#include <pthread.h>

/* A TCP connection to the server under test from the loopback source address `src`
   (127.0.0.0/8 is all loopback on Linux), optionally with a small receive window. */
static int tcp_from(const char *src, int rcvbuf) {
    struct sockaddr_in a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    if (rcvbuf) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    inet_pton(AF_INET, src, &a.sin_addr);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        close(fd);
        return -1;
    }
    a.sin_port = htons((unsigned short)harness_port);
    inet_pton(AF_INET, harness_host, &a.sin_addr);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Joins as `name` from `src`; returns the HTTP status, -1 when the connection was refused. */
static int join_from(wsc *c, const char *name, const char *src, int rcvbuf) {
    char req[1024], enc[300];
    memset(c, 0, sizeof *c);
    c->seed = (uint32_t)wsc_now_ms() * 2654435761u;
    c->fd = tcp_from(src, rcvbuf);
    if (c->fd < 0) return -1;
    harness_url_encode(name, enc);
    snprintf(req, sizeof req,
             "GET /start_web_socket?username=%s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
             "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
             "Sec-WebSocket-Version: 13\r\n\r\n", enc);
    if (wsc_send_all(c->fd, req, strlen(req)) < 0) return -1;
    c->status = wsc_read_head(c, harness_wait_ms);
    return c->status;
}

/* Sends `unit` again and again without reading, for as long as the socket takes it (the server
   stops reading when it holds back), at most `count` times or `ms` milliseconds. */
static long send_without_reading(int fd, const void *unit, size_t n, long count, int ms) {
    long long deadline = wsc_now_ms() + ms;
    long sent = 0;
    while (sent < count && wsc_now_ms() < deadline) {
        struct pollfd p;
        ssize_t k;
        p.fd = fd, p.events = POLLOUT, p.revents = 0;
        if (poll(&p, 1, 50) <= 0) continue;
        k = send(fd, unit, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (k < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        if (k != (ssize_t)n) break; /* closed, or a partial unit: stop here */
        sent++;
    }
    return sent;
}

/* Reads until the server ends the connection; returns the errno of the end (ECONNRESET for a
   reset), 0 for a FIN, or -1 when it did not end before the deadline. */
static int wait_end(int fd, int ms) {
    long long deadline = wsc_now_ms() + ms;
    char buf[65536];
    int first = 1;
    for (;;) {
        struct pollfd p;
        long long left = deadline - wsc_now_ms();
        ssize_t k;
        if (left <= 0 && !first) return -1;
        first = 0; /* ms = 0: one look at what is there now */
        p.fd = fd, p.events = POLLIN, p.revents = 0;
        if (poll(&p, 1, left < 0 ? 0 : (int)left) <= 0) return -1;
        k = recv(fd, buf, sizeof buf, 0);
        if (k == 0) return 0;
        if (k < 0 && errno != EINTR) return errno;
    }
}

/* --- 1: spans are not strings ------------------------------------------------------------ */

/* The Origin check over a request head that ends exactly at the end of its heap block, as a
   receive buffer does: any search past the Origin value's span reads past the block (ASan). */
static void test_limits_origin_is_read_within_its_span(void) {
    static const char *const heads[] = {
        "GET /start_web_socket HTTP/1.1\r\nHost: h\r\nOrigin: null\r\n\r\n",
        "GET /start_web_socket HTTP/1.1\r\nHost: h\r\nOrigin: http:/\r\n\r\n",
        "GET /start_web_socket HTTP/1.1\r\nOrigin: http://h\r\nHost: h\r\n\r\n",
    };
    static const int allowed[] = {0, 0, 1};
    chat_server *srv = chat_server_create(NULL);
    size_t i;
    CHECK(srv != NULL);
    for (i = 0; srv && i < sizeof heads / sizeof heads[0]; i++) {
        size_t n = strlen(heads[i]), scanned = 0;
        char *block = (char *)malloc(n); /* no NUL after the head */
        chat_http_request req;
        memcpy(block, heads[i], n);
        CHECK_INT(chat_http_parse(block, n, 8192, &scanned, &req), (int)n);
        CHECK_INT(chat__server_origin_allowed(srv, &req), allowed[i]);
        free(block);
    }
    chat_server_free(srv);
}

/* --- 2: posts from another thread cannot hold the loop ---------------------------------- */

static volatile int poster_done; /* set by the main thread; read by the poster */

static void *post_flood(void *arg) {
    chat_server *srv = (chat_server *)arg;
    static char text[4000];
    long i;
    memset(text, 'p', sizeof text);
    for (i = 0; i < 200000 && !__atomic_load_n(&poster_done, __ATOMIC_ACQUIRE); i++)
        (void)chat_server_post(srv, "server", text, sizeof text);
    return NULL;
}

static void test_limits_post_flood_is_bounded_per_turn(void) {
    chat_config cfg;
    chat_server *srv;
    pthread_t t;
    unsigned long long most = 0;
    int turn, r = 1;
    memset(&cfg, 0, sizeof cfg);
    cfg.history = -1;
    srv = chat_server_create(&cfg);
    CHECK(srv != NULL);
    if (!srv) return;
    poster_done = 0;
    CHECK_INT(pthread_create(&t, NULL, post_flood, srv), 0);
    for (turn = 0; turn < 40; turn++) {
        chat_stats st;
        unsigned long long before;
        chat_server_stats(srv, &st);
        before = st.messages;
        CHECK_INT(chat_server_poll(srv, 10), 1);
        chat_server_stats(srv, &st);
        if (st.messages - before > most) most = st.messages - before;
    }
    CHECKF(most <= 256, "one loop turn handled %llu posts", most);
    chat_server_stop(srv); /* while the flood goes on: the stop is honoured at once */
    for (turn = 0; turn < 5 && r > 0; turn++) r = chat_server_poll(srv, 10);
    CHECKF(r == 0, "still running %d turns after the stop", turn);
    __atomic_store_n(&poster_done, 1, __ATOMIC_RELEASE);
    pthread_join(t, NULL);
    chat_server_free(srv);
}

/* --- 3: what a peer makes the server hold is bounded by what it reads -------------------- */

/* The heap a library server holds now, once the attack has reached it (the server's heap only
   stays the same or shrinks once the attacker's socket is full or the server stopped reading). */
static long long settled_heap(harness_server *s) {
    long long blocks, last = -1, h = harness_server_heap(s, &blocks);
    int i;
    for (i = 0; i < 50 && h != last; i++) { /* bounded: the heap settles or the test fails */
        struct pollfd p;
        last = h;
        p.fd = -1, p.events = 0, p.revents = 0;
        poll(&p, 0, 20); /* a turn or two of the server's loop between samples */
        h = harness_server_heap(s, &blocks);
    }
    return h;
}

static void test_limits_pipelined_requests_wait_for_their_reader(void) {
    static const char *const units[] = {"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n", "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"};
    chat_config cfg;
    harness_server s;
    int k;
    memset(&cfg, 0, sizeof cfg);
    cfg.max_rate = -1;
    CHECK_INT(harness_use_library(&s, &cfg), 0);
    for (k = 0; k < 2; k++) {
        long long before = settled_heap(&s), after;
        int fd = tcp_from("127.0.0.1", 4096);
        long sent = send_without_reading(fd, units[k], strlen(units[k]), 40000, 1500);
        after = settled_heap(&s);
        CHECKF(after - before < 64 * 1024, "%ld pipelined '%.10s' requests that were never read: heap +%lld bytes",
               sent, units[k], after - before);
        close(fd);
    }
    HARNESS_DONE_SERVER(&s);
}

static void test_limits_pings_without_reading_are_bounded(void) {
    unsigned char ping[600];
    chat_config cfg;
    harness_server s;
    wsc c;
    char name[64];
    long long before, after;
    long sent;
    int i;
    memset(&cfg, 0, sizeof cfg);
    cfg.max_rate = -1;
    CHECK_INT(harness_use_library(&s, &cfg), 0);
    harness_tagged(name, sizeof name, "pinger");
    CHECK_INT(join_from(&c, name, "127.0.0.1", 4096), 101);
    for (i = 0; i < 100; i++) /* empty pings, masked: each pong costs its queue entry, not 2 bytes */
        ping[6 * i] = 0x89, ping[6 * i + 1] = 0x80, memset(ping + 6 * i + 2, i, 4);
    before = settled_heap(&s);
    sent = 100 * send_without_reading(c.fd, ping, sizeof ping, 20000, 2000);
    after = settled_heap(&s);
    if (test_verbose) printf("pings sent %ld heap %lld -> %lld\n", sent, before, after);
    CHECKF(after - before < 64 * 1024, "%ld pings whose pongs were never read: heap +%lld bytes", sent, after - before);
    wsc_close(&c);
    HARNESS_DONE_SERVER(&s);
}

/* A client closed as too slow is reset, so the kernel frees what was queued for it at once
   (a plain close() leaves an orphan in FIN-WAIT-1 holding its whole send buffer). */
static void test_limits_too_slow_client_is_reset(void) {
    chat_config cfg;
    harness_server s;
    wsc sender, sloth;
    char a[64], z[64], text[1100];
    int i, end = -1;
    memset(&cfg, 0, sizeof cfg);
    cfg.max_backlog = 64 * 1024, cfg.max_rate = -1;
    CHECK_INT(harness_use_library(&s, &cfg), 0);
    harness_tagged(a, sizeof a, "talker"), harness_tagged(z, sizeof z, "sloth");
    CHECK_INT(join_from(&sloth, z, "127.0.0.1", 4096), 101);
    CHECK_INT(harness_join(&sender, a), 101);
    harness_quoted_run(text, 1000, 's');
    for (i = 0; i < 3000 && end < 0; i++) {
        struct pollfd p;
        harness_say(&sender, text);
        free(harness_next_chat(&sender, harness_wait_ms));
        p.fd = sloth.fd, p.events = POLLIN, p.revents = 0;
        if (i % 100 == 99 && poll(&p, 1, 0) == 1 && (p.revents & (POLLERR | POLLHUP))) end = wait_end(sloth.fd, harness_wait_ms);
    }
    if (end < 0) end = wait_end(sloth.fd, harness_wait_ms);
    CHECKF(end == ECONNRESET, "the client closed as too slow saw %s", end == 0 ? "a FIN" : end < 0 ? "nothing" : strerror(end));
    wsc_close(&sloth);
    harness_leave(&sender);
    HARNESS_DONE_SERVER(&s);
}

/* The kernel's buffers of an accepted socket are bounded (Linux doubles what is asked). */
static void test_limits_socket_buffers_are_bounded(void) {
#ifndef TEST_OLD_CHAT_H
    int sv[2], v = 0;
    socklen_t len = sizeof v;
    CHECK_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    chat__socket_tune(sv[0], 16384, 8192);
    CHECK_INT(getsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &v, &len), 0);
    CHECKF(v > 0 && v <= 2 * 16384, "SO_SNDBUF %d", v);
    len = sizeof v;
    CHECK_INT(getsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &v, &len), 0);
    CHECKF(v > 0 && v <= 2 * 8192, "SO_RCVBUF %d", v);
    close(sv[0]), close(sv[1]);
#else
    CHECK(!"chat__socket_tune takes no sizes");
#endif
}

/* A partial message costs what has arrived of it, not that plus a whole read chunk. */
static void test_limits_partial_message_costs_its_size(void) {
    enum { TOTAL = 20000, PART = 10000 };
    chat_config cfg;
    harness_server s;
    wsc c;
    char name[64];
    unsigned char *frame, *payload; /* allocated after the fork, so the server does not own them */
    size_t head;
    long long before, after = 0, blocks;
    int i;
    memset(&cfg, 0, sizeof cfg);
    cfg.max_message = 30000; /* also in the small-board build */
    CHECK_INT(harness_use_library(&s, &cfg), 0);
    harness_tagged(name, sizeof name, "partial");
    CHECK_INT(harness_join(&c, name), 101);
    CHECK(harness_wait_users(&c, name));
    before = settled_heap(&s);
    frame = (unsigned char *)malloc(TOTAL + 14), payload = (unsigned char *)malloc(TOTAL);
    memset(payload, 'x', TOTAL);
    head = wsc_build_frame(&c, frame, 1, 0, 1, payload, TOTAL, 0) - TOTAL;
    CHECK_INT(wsc_send_all(c.fd, frame, head + PART), 0);
    for (i = 0; i < 100 && after - before < PART; i++) after = harness_server_heap(&s, &blocks);
    CHECKF(after - before >= PART && after - before <= PART + 1024, "a %d-byte partial message costs %lld bytes",
           PART, after - before);
    wsc_close(&c);
    free(frame), free(payload);
    HARNESS_DONE_SERVER(&s);
}

/* --- 4: one address, one connection, cannot hold the server ----------------------------- */

static void test_limits_requests_per_connection_are_bounded(void) {
    harness_server s;
    wsc c;
    char value[64];
    int i, closed_at = 0;
    CHECK_INT(harness_use_library(&s, NULL), 0);
    CHECK_INT(wsc_open_tcp(&c, harness_host, harness_port), 0);
    for (i = 1; i <= 150 && !closed_at; i++) {
        static const char req[] = "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n";
        if (wsc_send_all(c.fd, req, sizeof req - 1) < 0 || wsc_read_head(&c, harness_wait_ms) != 200) break;
        wsc_consume(&c, c.len < 6 ? c.len : 6); /* the body, "hello\n" (it may still be on its way) */
        if (wsc_header(&c, "connection", value, sizeof value) && strcmp(value, "close") == 0) closed_at = i;
    }
    CHECKF(closed_at == 100, "the keep-alive connection was closed after request %d", closed_at);
    CHECK(wsc_wait_eof(&c, harness_wait_ms));
    wsc_close(&c);
    HARNESS_DONE_SERVER(&s);
}

static void test_limits_keepalive_lifetime_is_bounded(void) {
    chat_config cfg;
    harness_server s;
    wsc c;
    long long started = wsc_now_ms();
    int requests = 0, open = 1;
    memset(&cfg, 0, sizeof cfg);
    cfg.handshake_timeout_ms = 300; /* the idle time; a connection lives at most 6 times that */
    CHECK_INT(harness_use_library(&s, &cfg), 0);
    CHECK_INT(wsc_open_tcp(&c, harness_host, harness_port), 0);
    while (open && wsc_now_ms() - started < 5000) {
        static const char req[] = "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n";
        struct pollfd p;
        if (wsc_send_all(c.fd, req, sizeof req - 1) < 0 || wsc_read_head(&c, harness_wait_ms) < 0) break;
        requests++;
        wsc_consume(&c, c.len); /* the short body */
        p.fd = c.fd, p.events = POLLIN, p.revents = 0;
        if (poll(&p, 1, 100) == 1) open = wsc_fill(&c, wsc_now_ms() + 100) > 0; /* the attacker's pace */
    }
    CHECKF(wsc_now_ms() - started < 4000, "a connection sending a request every 100 ms lived %lld ms (%d requests)",
           wsc_now_ms() - started, requests);
    wsc_close(&c);
    HARNESS_DONE_SERVER(&s);
}

/* A flood of refusals logs a few lines and how many it left out, not a line per refusal. */
static void test_limits_log_is_rate_limited(void) {
    chat_config cfg;
    harness_server s;
    char line[700];
    int i, lines = 0, dropped_note = 0;
    long long deadline, started;
    memset(&cfg, 0, sizeof cfg);
    cfg.on_log = log_to_parent;
    cfg.max_rate = -1;
    harness_child_setup = log_setup;
    CHECK_INT(harness_use_library(&s, &cfg), 0);
    harness_child_setup = NULL;
    started = wsc_now_ms();
    for (i = 0; i < 300; i++) { /* each one is refused: the name is empty */
        wsc c;
        CHECK_INT(harness_join(&c, ""), 101);
        wsc_close(&c);
    }
    deadline = wsc_now_ms() + 500;
    while (harness_read_line(s.pipe_fd, line, sizeof line, deadline) >= 0) {
        if (strncmp(line, "log ", 4) != 0) continue;
        lines++;
        if (strstr(line, "log lines dropped")) dropped_note = 1;
    }
    /* a burst of 50, then 10 lines a second (the notes of what was dropped count among them) */
    CHECKF(lines <= 51 + 10 * (int)((wsc_now_ms() - started) / 1000 + 1), "300 refusals logged %d lines in %lld ms", lines,
           wsc_now_ms() - started);
    CHECK(dropped_note || lines >= 300);
    HARNESS_DONE_SERVER(&s);
}

/* --- 5: every frame and request counts ------------------------------------------------- */

static void test_limits_every_frame_counts_toward_the_rate(void) {
    static const unsigned char pong[6] = {0x8A, 0x80, 1, 2, 3, 4};
    chat_config cfg;
    harness_server s;
    wsc c;
    char name[64];
    unsigned char frame[64];
    size_t n;
    int i, kind;
    memset(&cfg, 0, sizeof cfg);
    cfg.max_rate = 100;
    CHECK_INT(harness_use_library(&s, &cfg), 0);
    for (kind = 0; kind < 2; kind++) {
        harness_tagged(name, sizeof name, kind ? "ponger" : "fragments");
        CHECK_INT(harness_join(&c, name), 101);
        if (kind == 0) { /* a message that never ends: empty continuation frames */
            n = wsc_build_frame(&c, frame, 0, 0, 1, "{", 1, 0);
            wsc_send_all(c.fd, frame, n);
            for (i = 0; i < 500; i++) {
                n = wsc_build_frame(&c, frame, 0, 0, 0, "", 0, 0);
                if (wsc_send_all(c.fd, frame, n) < 0) break;
            }
        } else {
            for (i = 0; i < 500; i++)
                if (wsc_send_all(c.fd, pong, sizeof pong) < 0) break;
        }
        harness_expect_close(&c, 1008, "too many messages");
        wsc_close(&c);
    }
    HARNESS_DONE_SERVER(&s);
}

static void test_limits_pipelined_requests_count_toward_the_rate(void) {
    static const char req[] = "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n";
    chat_config cfg;
    harness_server s;
    wsc c;
    int i, answered = 0, last = 0;
    memset(&cfg, 0, sizeof cfg);
    cfg.max_rate = 30; /* twice this (a window's edge) is still below a connection's 100 requests */
    CHECK_INT(harness_use_library(&s, &cfg), 0);
    CHECK_INT(wsc_open_tcp(&c, harness_host, harness_port), 0);
    for (i = 0; i < 500; i++)
        if (wsc_send_all(c.fd, req, sizeof req - 1) < 0) break;
    while ((last = wsc_read_head(&c, harness_wait_ms)) > 0) {
        answered++;
        if (last == 429) break;
        wsc_consume(&c, c.len < 14 ? c.len : 14); /* "404 Not Found\n" */
    }
    /* counted in whole seconds: the requests may straddle two of them, so up to 2 x 30 */
    CHECKF(last == 429 && answered <= 62, "500 pipelined requests at 30/s: %d answered, the last %d", answered, last);
    wsc_close(&c);
    HARNESS_DONE_SERVER(&s);
}

/* --- 7: RFC 9112 details ---------------------------------------------------------------- */

static void test_limits_request_line_rfc9112(void) {
    static const struct { const char *head, *target; int ok; } cases[] = {
        {"GET http://example.org:8080/x?y=1 HTTP/1.1\r\nHost: h\r\n\r\n", "/x?y=1", 1}, /* absolute-form */
        {"GET http://example.org HTTP/1.1\r\nHost: h\r\n\r\n", "/", 1},
        {"\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", "/", 1},   /* an empty line before the request */
        {"\n\r\nGET /a HTTP/1.1\r\nHost: h\r\n\r\n", "/a", 1},
        {"GET ftp:/x HTTP/1.1\r\nHost: h\r\n\r\n", NULL, 0},
        {"GET example.org/x HTTP/1.1\r\nHost: h\r\n\r\n", NULL, 0},
    };
    size_t i;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        chat_http_request req;
        size_t scanned = 0, n = strlen(cases[i].head);
        int r = chat_http_parse(cases[i].head, n, 8192, &scanned, &req);
        if (!cases[i].ok) {
            CHECKF(r == CHAT_HTTP_BAD, "case %zu: %d", i, r);
            continue;
        }
        CHECKF(r == (int)n, "case %zu: %d", i, r);
        if (r > 0) CHECK_MEM(req.target.p, req.target.n, cases[i].target, strlen(cases[i].target));
    }
}

static void test_limits_methods_are_case_sensitive(void) {
    harness_server s;
    wsc c;
    CHECK_INT(harness_use_library(&s, NULL), 0);
    CHECK_INT(wsc_http(harness_host, harness_port, "get /hello HTTP/1.1\r\nHost: x\r\n\r\n", &c, NULL, NULL), 501);
    wsc_close(&c);
    CHECK_INT(wsc_http(harness_host, harness_port, "POST /hello HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", &c, NULL, NULL), 405);
    wsc_close(&c);
    CHECK_INT(wsc_http(harness_host, harness_port, "GET http://x/hello HTTP/1.1\r\nHost: x\r\n\r\n", &c, NULL, NULL), 200);
    wsc_close(&c);
    HARNESS_DONE_SERVER(&s);
}

/* --- caps on connections of every kind, per address, and on joins ----------------------- */

static void test_limits_connections_of_every_kind_are_capped(void) {
    enum { CAP = 8, TRY = 20 };
    chat_config cfg;
    harness_server s;
    wsc c;
    int fd[TRY], i, reset = 0;
    memset(&cfg, 0, sizeof cfg);
    cfg.max_connections = CAP;
    CHECK_INT(harness_use_library(&s, &cfg), 0);
    long long deadline;
    for (i = 0; i < TRY; i++) fd[i] = tcp_from("127.0.0.1", 0);
    /* which ones end is the server's choice (a newcomer may take the place of an idle one): count
       them until the surplus has ended; the ones left open wait for their handshake timeout */
    deadline = wsc_now_ms() + harness_wait_ms;
    while (reset < TRY - CAP && wsc_now_ms() < deadline) {
        struct pollfd p[TRY];
        for (i = 0; i < TRY; i++) p[i].fd = fd[i], p[i].events = POLLIN, p[i].revents = 0;
        if (poll(p, TRY, 100) <= 0) continue;
        for (i = 0; i < TRY; i++)
            if (p[i].revents && fd[i] >= 0 && wait_end(fd[i], 0) >= 0) close(fd[i]), fd[i] = -1, reset++;
    }
    CHECKF(reset == TRY - CAP, "%d of the %d connections over the cap were ended", reset, TRY - CAP);
    CHECK_INT(wsc_http(harness_host, harness_port, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", &c, NULL, NULL), 200);
    wsc_close(&c); /* a newcomer still gets in: it took the place of the longest-waiting one */
    for (i = 0; i < TRY; i++)
        if (fd[i] >= 0) reset += wait_end(fd[i], 0) >= 0;
    CHECKF(reset == TRY - CAP + 1, "after one more: %d ended", reset);
    for (i = 0; i < TRY; i++)
        if (fd[i] >= 0) close(fd[i]);
    HARNESS_DONE_SERVER(&s);
}

static void test_limits_connections_per_address(void) {
    chat_config cfg;
    harness_server s;
    wsc c[4], other;
    char name[64];
    int i;
    memset(&cfg, 0, sizeof cfg);
    cfg.max_per_address = 3;
    CHECK_INT(harness_use_library(&s, &cfg), 0);
    for (i = 0; i < 3; i++) {
        char base[24]; /* room for any int */
        snprintf(base, sizeof base, "hoard%d", i);
        harness_tagged(name, sizeof name, base);
        CHECK_INT(join_from(&c[i], name, "127.0.0.1", 0), 101);
    }
    harness_tagged(name, sizeof name, "hoard3");
    CHECK_INT(join_from(&c[3], name, "127.0.0.1", 0), -1); /* reset before any answer */
    wsc_close(&c[3]);
    harness_tagged(name, sizeof name, "elsewhere");
    CHECK_INT(join_from(&other, name, "127.0.0.2", 0), 101); /* another address is not affected */
    harness_leave(&other);
    harness_leave(&c[0]); /* a slot of the first address is free again */
    harness_tagged(name, sizeof name, "hoard4");
    CHECK_INT(join_from(&c[0], name, "127.0.0.1", 0), 101);
    for (i = 0; i < 3; i++) harness_leave(&c[i]);
    HARNESS_DONE_SERVER(&s);
}

static void test_limits_joins_per_minute_per_address(void) {
    chat_config cfg;
    harness_server s;
    wsc c;
    char name[64];
    int i;
    memset(&cfg, 0, sizeof cfg);
    cfg.max_join_rate = 5;
    CHECK_INT(harness_use_library(&s, &cfg), 0);
    harness_tagged(name, sizeof name, "churn");
    /* counted in whole minutes: if one ends among these joins, the next allows 5 more */
    for (i = 0; i < 11 && join_from(&c, name, "127.0.0.1", 0) == 101; i++) harness_leave(&c);
    CHECKF(i >= 5 && i <= 10 && c.status == 429, "%d joins got in, then %d", i, c.status);
    CHECK(strstr(c.head, "Retry-After: 60") != NULL);
    wsc_close(&c);
    CHECK_INT(join_from(&c, name, "127.0.0.3", 0), 101);
    harness_leave(&c);
    HARNESS_DONE_SERVER(&s);
}

/* Behind the trusted proxy, the per-address limit counts the forwarded address. */
static void test_limits_per_address_behind_the_proxy(void) {
    chat_config cfg;
    harness_server s;
    wsc c[3];
    char name[64];
    memset(&cfg, 0, sizeof cfg);
    cfg.max_per_address = 1, cfg.trusted_proxy = "127.0.0.1";
    CHECK_INT(harness_use_library(&s, &cfg), 0);
    harness_tagged(name, sizeof name, "fwd-a");
    CHECK_INT(join_with_headers(&c[0], name, "X-Forwarded-For: 198.51.100.1\r\n"), 101);
    harness_tagged(name, sizeof name, "fwd-b");
    CHECK_INT(join_with_headers(&c[1], name, "X-Forwarded-For: 198.51.100.1\r\n"), 429);
    wsc_close(&c[1]);
    CHECK_INT(join_with_headers(&c[2], name, "X-Forwarded-For: 198.51.100.2\r\n"), 101);
    harness_leave(&c[0]), harness_leave(&c[2]);
    HARNESS_DONE_SERVER(&s);
}

/* The byte rate delays a fast sender (TCP pushes back on it); it loses nothing and the readers
   are not flooded. */
static void test_limits_byte_rate_holds_a_fast_sender_back(void) {
    enum { N = 12, SIZE = 50000 };
    chat_config cfg;
    harness_server s;
    wsc sender, reader;
    char a[64], b[64], *text; /* allocated after the fork, so the server does not own it */
    long long started;
    int i, early = 0, got = 0;
    memset(&cfg, 0, sizeof cfg);
    cfg.max_byte_rate = 100000, cfg.max_message = 65536, cfg.max_backlog = 1024 * 1024;
    CHECK_INT(harness_use_library(&s, &cfg), 0);
    harness_join_pair(&sender, a, "bytes", &reader, b, "watcher");
    text = (char *)malloc(SIZE + 1);
    harness_quoted_run(text, SIZE, 'b');
    started = wsc_now_ms();
    for (i = 0; i < N; i++) CHECK_INT(harness_say(&sender, text), 0); /* the kernel's buffers take them all */
    for (got = 0; got < N; got++) {
        char *m = harness_next_chat(&reader, 3 * harness_wait_ms);
        if (!m) break;
        if (wsc_now_ms() - started < 500) early++;
        free(m);
    }
    CHECKF(got == N, "the reader got %d of %d", got, N);
    /* 100,000 bytes a second, counted in whole seconds, each overshot by at most one read: half a
       second can span two of them, 2 x 116,384 bytes, at most 5 of the 50,000-byte messages
       (unthrottled, all 12 arrive at once) */
    CHECKF(early <= 5, "%d messages of %d bytes went through in the first half second", early, SIZE);
    free(text);
    harness_leave(&sender), harness_leave(&reader);
    HARNESS_DONE_SERVER(&s);
}

/* Join churn against a big room: user lists are spaced by what they cost (64 MB/s of lists in
   all), not handed out at memcpy speed. */
static void test_limits_join_churn_costs_few_user_lists(void) {
    enum { MEMBERS = 200, CYCLES = 3000 };
    static wsc members[MEMBERS];
    chat_config cfg;
    harness_server s;
    char name[64];
    long long started, ms;
    long lists = 0, bytes = 0;
    int i, cycles;
    memset(&cfg, 0, sizeof cfg);
    cfg.max_clients = 2 * MEMBERS; /* also in the small-board build */
    CHECK_INT(harness_use_library(&s, &cfg), 0);
    for (i = 0; i < MEMBERS; i++) {
        char base[32];
        snprintf(base, sizeof base, "member%03d-padding", i);
        harness_tagged(name, sizeof name, base);
        CHECK_INT(harness_join(&members[i], name), 101);
    }
    {
        wsc_frame f; /* settle: the joins' lists are read */
        while (wsc_read_frame(&members[0], &f, 300) == 1) free(f.payload);
    }
    started = wsc_now_ms();
    for (cycles = 0; cycles < CYCLES && wsc_now_ms() - started < 2000; cycles++) {
        wsc churn;
        wsc_frame f;
        harness_tagged(name, sizeof name, "churner");
        if (harness_join(&churn, name) == 101) wsc_send_close(&churn, 1000, NULL);
        wsc_close(&churn);
        while (wsc_read_frame(&members[0], &f, 0) == 1) { /* count what the room is sent */
            if (strstr((char *)f.payload, "update-users")) lists++, bytes += (long)f.len;
            free(f.payload);
        }
        for (i = 1; i < MEMBERS; i++) { /* the others read too: every member can take every list */
            char sink[65536];
            while (recv(members[i].fd, sink, sizeof sink, MSG_DONTWAIT) > 0) {}
        }
    }
    ms = wsc_now_ms() - started;
    /* a list handed to all costs MEMBERS x its size; at 64 KiB per ms, the next waits that long
       (the bound allows a quarter more, and the first list and one at the end) */
    CHECKF(lists > 0, "the member saw none of %d join/leave cycles", cycles);
    if (lists) {
        long long allowed = 2 + ms * 65536 * 5 / 4 / ((long long)MEMBERS * (bytes / lists));
        CHECKF(lists <= allowed, "%d join/leave cycles in %lld ms sent a member %ld user lists (%ld bytes; at most %lld)",
               cycles, ms, lists, bytes, allowed);
    }
    for (i = 0; i < MEMBERS; i++) wsc_close(&members[i]);
    HARNESS_DONE_SERVER(&s);
}

/* --- who may connect: on_upgrade, reserved names, the welcome, on_joined ------------------ */

static int upgrade_verdict(void *user, chat_server *srv, chat_request *req) {
    size_t n;
    const char *name = chat_request_username(req, &n), *cookie = chat_request_header(req, "cookie", NULL);
    const char *target = chat_request_target(req, NULL), *addr = chat_request_address(req);
    (void)user, (void)srv;
    if (!target || strncmp(target, "/start_web_socket", 17) != 0 || !addr) return 403;
    if (!name) return 401;
    if (strstr(name, "please-wait")) return 429;
    if (strstr(name, "anyone")) return 0;
    if (cookie && strcmp(cookie, "session=s3cret") == 0) {
        char real[128];
        snprintf(real, sizeof real, "carol-from-cookie-%s", addr);
        chat_request_set_username(req, real, strlen(real));
        return 0;
    }
    return 403;
}

static void test_limits_on_upgrade_decides_who_joins(void) {
    chat_config cfg;
    harness_server s;
    wsc c;
    char name[64], want[128];
    memset(&cfg, 0, sizeof cfg);
    cfg.on_upgrade = upgrade_verdict;
    CHECK_INT(harness_use_library(&s, &cfg), 0);
    harness_tagged(name, sizeof name, "anyone");
    CHECK_INT(harness_join(&c, name), 101);
    CHECK(harness_wait_users(&c, name));
    harness_leave(&c);
    CHECK_INT(wsc_connect(&c, harness_host, harness_port, "/start_web_socket"), 401);
    wsc_close(&c);
    harness_tagged(name, sizeof name, "please-wait");
    CHECK_INT(harness_join(&c, name), 429);
    wsc_close(&c);
    harness_tagged(name, sizeof name, "mallory");
    CHECK_INT(harness_join(&c, name), 403);
    wsc_close(&c);
    CHECK_INT(join_with_headers(&c, name, "Cookie:   session=s3cret  \r\n"), 101); /* the value is trimmed */
    harness_leave(&c);
    CHECK_INT(join_with_headers(&c, name, "Cookie: session=s3cret\r\n"), 101);
    snprintf(want, sizeof want, "carol-from-cookie-%s", "127.0.0.1");
    {
        wsc_msg m;
        int seen = 0, i;
        for (i = 0; i < 5 && !seen && wsc_recv(&c, &m, harness_wait_ms) == WSC_TEXT; i++) {
            seen = strstr(m.data, want) != NULL;
            wsc_msg_free(&m);
        }
        CHECKF(seen, "the name set by on_upgrade (%s) is not in the user list", want);
    }
    harness_leave(&c);
    HARNESS_DONE_SERVER(&s);
}

static void test_limits_reserved_names(void) {
    static const char *const reserved[] = {"server", "Admin", NULL};
    chat_config cfg;
    harness_server s;
    wsc c;
    memset(&cfg, 0, sizeof cfg);
    cfg.reserved_names = reserved;
    CHECK_INT(harness_use_library(&s, &cfg), 0);
    CHECK_INT(harness_join(&c, "server"), 101);
    harness_expect_close(&c, 1008, "username is reserved");
    wsc_close(&c);
    CHECK_INT(harness_join(&c, "ADMIN"), 101); /* ASCII case does not matter */
    harness_expect_close(&c, 1008, "username is reserved");
    wsc_close(&c);
    HARNESS_DONE_SERVER(&s);
}

static void greet(void *user, chat_server *srv, const char *name, size_t len) {
    (void)user, (void)len;
    chat_server_send(srv, name, "server", "welcome, you", 12);
}

static void test_limits_welcome_then_history_then_on_joined(void) {
    chat_config cfg;
    harness_server s;
    wsc a, b;
    wsc_msg m;
    char na[64], nb[64];
    memset(&cfg, 0, sizeof cfg);
    cfg.on_joined = greet, cfg.max_message = 5000, cfg.max_rate = 7;
    CHECK_INT(harness_use_library(&s, &cfg), 0);
    wsc_keep_welcome = 1;
    harness_tagged(na, sizeof na, "first");
    CHECK_INT(harness_join(&a, na), 101);
    CHECK_INT(wsc_recv(&a, &m, harness_wait_ms), WSC_TEXT);
    { /* the newest id (none said yet: one below the first), a token, the limits */
        unsigned long long id = 0;
        char token[40] = "", rest[128] = "";
        CHECKF(sscanf(m.data, "{\"event\":\"welcome\",\"id\":%llu,\"resume\":\"%39[0-9a-f]\",%127s", &id, token, rest) == 3,
               "welcome: %s", m.data);
        CHECK(id > 1000000000000000ull); /* from the clock in microseconds */
        CHECK_INT(strlen(token), 32);
        CHECK_STR(rest, "\"limits\":{\"max_message\":5000,\"max_name\":64,\"max_rate\":7}}");
    }
    wsc_msg_free(&m);
    wsc_keep_welcome = 0;
    HARNESS_EXPECT_CHAT(&a, "server", "\"welcome, you\"");
    harness_say(&a, "\"before b\"");
    HARNESS_EXPECT_CHAT(&a, na, "\"before b\"");
    harness_tagged(nb, sizeof nb, "second");
    CHECK_INT(harness_join(&b, nb), 101);
    HARNESS_EXPECT_CHAT(&b, na, "\"before b\""); /* the history, then the greeting: to b only */
    HARNESS_EXPECT_CHAT(&b, "server", "\"welcome, you\"");
    harness_say(&b, "\"hi\"");
    HARNESS_EXPECT_CHAT(&a, nb, "\"hi\""); /* a got no second greeting before this */
    harness_leave(&a), harness_leave(&b);
    HARNESS_DONE_SERVER(&s);
}

static void limits_tests(void) {
    RUN(test_limits_origin_is_read_within_its_span);
    RUN(test_limits_post_flood_is_bounded_per_turn);
    RUN(test_limits_pipelined_requests_wait_for_their_reader);
    RUN(test_limits_pings_without_reading_are_bounded);
    RUN(test_limits_too_slow_client_is_reset);
    RUN(test_limits_socket_buffers_are_bounded);
    RUN(test_limits_partial_message_costs_its_size);
    RUN(test_limits_requests_per_connection_are_bounded);
    RUN(test_limits_keepalive_lifetime_is_bounded);
    RUN(test_limits_log_is_rate_limited);
    RUN(test_limits_every_frame_counts_toward_the_rate);
    RUN(test_limits_pipelined_requests_count_toward_the_rate);
    RUN(test_limits_request_line_rfc9112);
    RUN(test_limits_methods_are_case_sensitive);
    RUN(test_limits_connections_of_every_kind_are_capped);
    RUN(test_limits_connections_per_address);
    RUN(test_limits_joins_per_minute_per_address);
    RUN(test_limits_per_address_behind_the_proxy);
    RUN(test_limits_byte_rate_holds_a_fast_sender_back);
    RUN(test_limits_join_churn_costs_few_user_lists);
    RUN(test_limits_on_upgrade_decides_who_joins);
    RUN(test_limits_reserved_names);
    RUN(test_limits_welcome_then_history_then_on_joined);
}
