/* Failure is normal: floods, slow readers, resets, signals, half-closed peers, running out of
   descriptors, and churn. Each test checks that the server neither crashes, nor stalls the other
   clients, nor keeps memory it should have given back. */
#include <sys/resource.h>

/* A client socket whose kernel receive buffer is tiny (set before connect, so the window is
   small from the start), joined as `name`. */
static int join_small_window(wsc *c, const char *name, int rcvbuf) {
    char target[512], enc[300], req[1024];
    struct addrinfo hints, *res;
    char service[16];
    memset(c, 0, sizeof *c);
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    snprintf(service, sizeof service, "%d", harness_port);
    if (getaddrinfo(harness_host, service, &hints, &res) != 0) return -1;
    c->fd = socket(res->ai_family, SOCK_STREAM, 0);
    setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    if (connect(c->fd, res->ai_addr, res->ai_addrlen) < 0) {
        freeaddrinfo(res);
        return -1;
    }
    freeaddrinfo(res);
    harness_url_encode(name, enc);
    snprintf(target, sizeof target, "/start_web_socket?username=%s", enc);
    snprintf(req, sizeof req,
             "GET %s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", target);
    if (wsc_send_all(c->fd, req, strlen(req)) < 0) return -1;
    c->status = wsc_read_head(c, harness_wait_ms);
    return c->status;
}

/* Ends a connection with a TCP reset instead of a FIN. */
static void reset_close(wsc *c) {
    struct linger lg;
    lg.l_onoff = 1, lg.l_linger = 0;
    setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    wsc_close(c);
}

/* utime + stime of a process, in clock ticks, from /proc (Linux). -1 when unavailable. */
static long long cpu_ticks(pid_t pid) {
    char path[64], buf[1024], *p;
    unsigned long long ut, st;
    FILE *f;
    size_t n;
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    if (!(f = fopen(path, "r"))) return -1;
    n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    p = strrchr(buf, ')'); /* the command name may contain spaces */
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2) return -1;
    return (long long)(ut + st);
}

static void test_fault_rate_limit_closes_a_flooder_only(void) {
    chat_config cfg;
    harness_server s;
    wsc flood, calm;
    char a[64], b[64], *got;
    int i;
    memset(&cfg, 0, sizeof cfg);
    cfg.max_rate = 50;
    CHECK_INT(harness_use_library(&s, &cfg), 0);
    harness_join_pair(&flood, a, "flood", &calm, b, "calm");
    for (i = 0; i < 200; i++) harness_say(&flood, "\"spam\"");
    harness_expect_close(&flood, 1008, "too many messages");
    wsc_close(&flood);
    CHECK(harness_wait_users(&calm, b));
    harness_say(&calm, "\"after the flood\"");
    for (i = 0; i < 200; i++) { /* what got through of the flood comes first; at most 2 windows */
        got = harness_next_chat(&calm, harness_wait_ms);
        if (!got || strstr(got, "after the flood")) break;
        free(got);
    }
    CHECKF(got != NULL && i <= 100, "the calm client's message came after %d flood messages", i);
    free(got);
    harness_leave(&calm);
    HARNESS_DONE_SERVER(&s);
}

/* A client that never reads while others chat: it is closed once its queue passes the backlog;
   the others receive everything, in order, and the server's memory stays bounded. */
static void test_fault_slow_reader_closed_others_unaffected(void) {
    enum { N = 6000, SIZE = 1000 };
    chat_config cfg;
    harness_server s;
    wsc sender, reader, sloth;
    char a[64], b[64], z[64], text[SIZE + 64];
    long long heap_before, heap_peak = 0, blocks, started;
    int i, received = 0, in_order = 1;
    memset(&cfg, 0, sizeof cfg);
    cfg.max_backlog = 256 * 1024, cfg.max_rate = -1;
    CHECK_INT(harness_use_library(&s, &cfg), 0);
    harness_tagged(a, sizeof a, "sender"), harness_tagged(b, sizeof b, "reader"), harness_tagged(z, sizeof z, "sloth");
    CHECK_INT(join_small_window(&sloth, z, 4096), 101);
    CHECK_INT(harness_join(&sender, a), 101);
    CHECK_INT(harness_join(&reader, b), 101);
    heap_before = harness_server_heap(&s, &blocks);
    started = wsc_now_ms();
    memset(text, 'x', sizeof text);
    for (i = 0; i < N; i++) {
        char *got, want[SIZE + 200];
        snprintf(text, sizeof text, "\"%06d", i);
        text[7] = 'x';
        text[SIZE - 1] = '"', text[SIZE] = '\0';
        harness_say(&sender, text);
        if (i % 500 == 499) { /* the heap the server holds, through the CHAT_MALLOC hook */
            long long h = harness_server_heap(&s, &blocks);
            if (h > heap_peak) heap_peak = h;
        }
        harness_chat_json(want, sizeof want, a, text);
        got = harness_next_chat(&reader, harness_wait_ms);
        if (got) received++;
        if (!got || strcmp(got, want) != 0) in_order = 0;
        free(got);
        if (!in_order) break;
        free(harness_next_chat(&sender, harness_wait_ms));
    }
    CHECKF(received == N && in_order, "the reader got %d of %d in order", received, N);
    CHECKF(wsc_now_ms() - started < 20 * harness_wait_ms, "the exchange took %lld ms", wsc_now_ms() - started);
    CHECKF(wsc_wait_eof(&sloth, harness_wait_ms), "the client that never reads was not closed");
    /* the sloth's queue is capped at the backlog; frames are shared, so it costs at most that */
    CHECKF(heap_before > 0 && heap_peak - heap_before < 2 * 256 * 1024, "server heap grew by %lld bytes",
           heap_peak - heap_before);
    wsc_close(&sloth);
    harness_leave(&sender), harness_leave(&reader);
    HARNESS_DONE_SERVER(&s);
}

static void few_descriptors(void) {
    struct rlimit r;
    r.rlim_cur = r.rlim_max = 24;
    setrlimit(RLIMIT_NOFILE, &r);
}

/* Out of descriptors, accept() fails with EMFILE while the pending connection stays queued: the
   server must wait, not spin, and recover once descriptors are free again. */
static void test_fault_emfile_does_not_spin_and_recovers(void) {
    enum { N = 40 };
    chat_config cfg;
    harness_server s;
    static wsc c[N];
    wsc late;
    char name[64];
    long long t0, t1;
    int i, hz = (int)sysconf(_SC_CLK_TCK);
    memset(&cfg, 0, sizeof cfg);
    harness_child_setup = few_descriptors;
    CHECK_INT(harness_use_library(&s, &cfg), 0);
    harness_child_setup = NULL;
    for (i = 0; i < N; i++) CHECK_INT(wsc_open_tcp(&c[i], harness_host, harness_port), 0); /* queued by the kernel */
    /* the server has taken what it can; measure its CPU over one second of being full */
    t0 = cpu_ticks(s.pid);
    poll(NULL, 0, 1000);
    t1 = cpu_ticks(s.pid);
    CHECKF(t0 >= 0 && t1 >= 0 && (t1 - t0) * 100 < hz * 15, "the server used %lld ticks (of %d per second) while out of descriptors", t1 - t0, hz);
    for (i = 0; i < N; i++) wsc_close(&c[i]);
    harness_tagged(name, sizeof name, "late");
    CHECK_INT(harness_join(&late, name), 101);
    CHECK(harness_wait_users(&late, name));
    harness_leave(&late);
    HARNESS_DONE_SERVER(&s);
}

static void test_fault_reset_mid_frame(void) {
    chat_config cfg;
    harness_server s;
    wsc a, b;
    char na[64], nb[64];
    unsigned char frame[200];
    size_t n;
    memset(&cfg, 0, sizeof cfg);
    CHECK_INT(harness_use_library(&s, &cfg), 0);
    harness_join_pair(&a, na, "stays", &b, nb, "resets");
    {
        static const char msg[] = "{\"event\":\"send-message\",\"message\":\"cut short\"}";
        n = wsc_build_frame(&b, frame, 1, 0, 1, msg, sizeof msg - 1, 0);
    }
    wsc_send_all(b.fd, frame, n / 2);
    reset_close(&b);
    CHECKF(harness_wait_users(&a, na), "the reset client is still listed");
    harness_say(&a, "\"still fine\"");
    HARNESS_EXPECT_CHAT(&a, na, "\"still fine\"");
    harness_leave(&a);
    HARNESS_DONE_SERVER(&s);
}

/* A receive window of a few KB makes the server's writes partial; big messages still arrive whole
   and in order. */
static void test_fault_partial_writes_to_a_small_window(void) {
    enum { N = 20, SIZE = 30000 };
    chat_config cfg;
    harness_server s;
    wsc sender, narrow;
    char a[64], b[64];
    static char text[SIZE + 8], want[SIZE + 200];
    int i, ok = 1;
    memset(&cfg, 0, sizeof cfg);
    cfg.max_message = 64 * 1024, cfg.max_backlog = 1024 * 1024;
    CHECK_INT(harness_use_library(&s, &cfg), 0);
    harness_tagged(a, sizeof a, "sender"), harness_tagged(b, sizeof b, "narrow");
    CHECK_INT(join_small_window(&narrow, b, 2048), 101);
    CHECK_INT(harness_join(&sender, a), 101);
    for (i = 0; i < N; i++) {
        harness_quoted_run(text, SIZE, (char)('a' + i));
        harness_say(&sender, text);
    }
    for (i = 0; i < N && ok; i++) {
        char *got = harness_next_chat(&narrow, 4 * harness_wait_ms);
        harness_quoted_run(text, SIZE, (char)('a' + i));
        harness_chat_json(want, sizeof want, a, text);
        ok = got && strcmp(got, want) == 0;
        free(got);
    }
    CHECKF(ok, "message %d arrived damaged or not at all", i - 1);
    harness_leave(&narrow), harness_leave(&sender);
    HARNESS_DONE_SERVER(&s);
}

static void ignore_usr1(int sig) { (void)sig; }

static void interruptible(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = ignore_usr1; /* no SA_RESTART: every signal interrupts the syscall in progress */
    sigaction(SIGUSR1, &sa, NULL);
}

static void test_fault_signals_interrupting_the_loop(void) {
    enum { N = 300 };
    chat_config cfg;
    harness_server s;
    wsc a;
    char na[64], text[64], want[256];
    int i, ok = 1;
    memset(&cfg, 0, sizeof cfg);
    harness_child_setup = interruptible;
    CHECK_INT(harness_use_library(&s, &cfg), 0);
    harness_child_setup = NULL;
    harness_tagged(na, sizeof na, "eintr");
    CHECK_INT(harness_join(&a, na), 101);
    CHECK(harness_wait_users(&a, na));
    for (i = 0; i < N && ok; i++) {
        char *got;
        kill(s.pid, SIGUSR1);
        snprintf(text, sizeof text, "\"n%d\"", i);
        harness_say(&a, text);
        kill(s.pid, SIGUSR1);
        harness_chat_json(want, sizeof want, na, text);
        got = harness_next_chat(&a, harness_wait_ms);
        ok = got && strcmp(got, want) == 0;
        free(got);
    }
    CHECKF(ok, "message %d was lost or changed while signals arrived", i - 1);
    harness_leave(&a);
    HARNESS_DONE_SERVER(&s);
}

static void test_fault_half_closed_peers(void) {
    chat_config cfg;
    harness_server s;
    wsc h, a, b;
    char na[64], nb[64];
    static const char req[] = "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n";
    long long deadline;
    memset(&cfg, 0, sizeof cfg);
    CHECK_INT(harness_use_library(&s, &cfg), 0);
    /* HTTP: the request, then FIN; the response must still come, then the server's FIN */
    CHECK_INT(wsc_open_tcp(&h, harness_host, harness_port), 0);
    wsc_send_all(h.fd, req, sizeof req - 1);
    shutdown(h.fd, SHUT_WR);
    CHECK_INT(wsc_read_head(&h, harness_wait_ms), 200);
    deadline = wsc_now_ms() + harness_wait_ms;
    while (h.len < 6 && wsc_fill(&h, deadline) > 0) {}
    CHECK(h.len >= 6 && memcmp(h.buf, "hello\n", 6) == 0);
    CHECK(wsc_wait_eof(&h, harness_wait_ms));
    wsc_close(&h);
    /* WebSocket: a message, then FIN: the message is still delivered, and the sender leaves */
    harness_join_pair(&a, na, "half", &b, nb, "whole");
    harness_say(&a, "\"last words\"");
    shutdown(a.fd, SHUT_WR);
    HARNESS_EXPECT_CHAT(&b, na, "\"last words\"");
    CHECK(harness_wait_users(&b, nb));
    CHECK(wsc_wait_eof(&a, harness_wait_ms));
    wsc_close(&a);
    harness_leave(&b);
    HARNESS_DONE_SERVER(&s);
}

/* One batch of connect / join / leave cycles; every third ends with a reset in the middle of a
   frame, every third with a message and a clean close, the rest with a bare close. */
static int churn(int cycles, int *failures) {
    enum { BATCH = CHAT_MAX_CLIENTS < 50 ? CHAT_MAX_CLIENTS : 50 }; /* a small-board build has fewer */
    static wsc c[BATCH];
    int done = 0, k;
    while (done < cycles) {
        int n = cycles - done < BATCH ? cycles - done : BATCH;
        for (k = 0; k < n; k++) {
            char name[64];
            snprintf(name, sizeof name, "churn%d-%s", done + k, harness_tag);
            if (harness_join(&c[k], name) != 101) (*failures)++;
        }
        for (k = 0; k < n; k++) {
            unsigned char frame[128];
            size_t len;
            switch ((done + k) % 3) {
            case 0:
                len = wsc_build_frame(&c[k], frame, 1, 0, 1, "{\"event\":\"send-message\",\"message\":\"x\"}", 38, 0);
                wsc_send_all(c[k].fd, frame, len / 2);
                reset_close(&c[k]);
                break;
            case 1:
                harness_say(&c[k], "\"bye\"");
                wsc_send_close(&c[k], 1000, NULL);
                wsc_close(&c[k]);
                break;
            default:
                wsc_close(&c[k]);
            }
        }
        done += n;
    }
    return done;
}

static void test_fault_churn_leaves_the_heap_where_it_started(void) {
    chat_config cfg;
    harness_server s;
    wsc observer;
    char name[64];
    long long before, after, blocks_before = 0, blocks_after = 0, deadline;
    int failures = 0, cycles = 10000;
    if (getenv("CHAT_TEST_CHURN")) cycles = atoi(getenv("CHAT_TEST_CHURN"));
    memset(&cfg, 0, sizeof cfg);
    cfg.max_rate = -1, cfg.history = -1; /* the history holds messages on purpose */
    CHECK_INT(harness_use_library(&s, &cfg), 0);
    churn(600, &failures); /* warm up: the server's arrays and scratch buffers reach their size */
    /* The heap is read between loop turns; connections that left may still be finishing their
       close handshake, so ask until it is steady (bounded by the close timeout). */
    deadline = wsc_now_ms() + 2 * harness_wait_ms;
    before = harness_server_heap(&s, &blocks_before);
    while (wsc_now_ms() < deadline && poll(NULL, 0, 50) == 0) {
        long long b2, n2 = 0;
        if ((b2 = harness_server_heap(&s, &n2)) == before && n2 == blocks_before) break;
        before = b2, blocks_before = n2;
    }
    churn(cycles, &failures);
    deadline = wsc_now_ms() + 2 * harness_wait_ms;
    do {
        after = harness_server_heap(&s, &blocks_after);
    } while ((after != before || blocks_after != blocks_before) && wsc_now_ms() < deadline && poll(NULL, 0, 50) == 0);
    CHECK_INT(failures, 0);
    CHECK(before > 0);
    CHECKF(after == before && blocks_after == blocks_before,
           "heap after %d cycles: %lld bytes in %lld blocks; before: %lld bytes in %lld blocks", cycles, after,
           blocks_after, before, blocks_before);
    harness_tagged(name, sizeof name, "observer"); /* and nobody is left in the room */
    CHECK_INT(harness_join(&observer, name), 101);
    {
        wsc_msg m;
        char want[128];
        snprintf(want, sizeof want, "{\"event\":\"update-users\",\"usernames\":[\"%s\"]}", name);
        CHECK_INT(wsc_recv(&observer, &m, harness_wait_ms), WSC_TEXT);
        CHECK_STR(m.data, want);
        wsc_msg_free(&m);
    }
    harness_leave(&observer);
    HARNESS_DONE_SERVER(&s);
}

/* The compiled-in limits (e.g. the small-board build of `make test-small`) are refused
   gracefully: 1013 when full while pages are still served, 1009 when a message is too big, and a
   message of exactly the limit still goes through. */
static void test_fault_compiled_limits_refused_gracefully(void) {
    enum { FILL = CHAT_MAX_CLIENTS <= 64 ? CHAT_MAX_CLIENTS : 0 }; /* default builds: 1024, too many to open here */
    chat_config cfg;
    harness_server s;
    static wsc c[FILL > 0 ? FILL : 1];
    wsc extra, h;
    char name[64], *body = NULL, *got;
    static char text[CHAT_MAX_MESSAGE + 64];
    size_t head = strlen("{\"event\":\"send-message\",\"message\":\"\"}");
    int i;
    memset(&cfg, 0, sizeof cfg);
    cfg.max_rate = -1;
    CHECK_INT(harness_use_library(&s, &cfg), 0);
    for (i = 0; i < FILL; i++) {
        snprintf(name, sizeof name, "full%d-%s", i, harness_tag);
        CHECK_INT(harness_join(&c[i], name), 101);
    }
    if (FILL) {
        CHECK_INT(harness_join(&extra, "one-too-many"), 101);
        harness_expect_close(&extra, 1013, "room is full");
        wsc_close(&extra);
        CHECK_INT(wsc_http(harness_host, harness_port, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", &h, &body, NULL), 200);
        free(body);
        wsc_close(&h);
        for (i = 1; i < FILL; i++) wsc_close(&c[i]);
    } else {
        harness_tagged(name, sizeof name, "limits");
        CHECK_INT(harness_join(&c[0], name), 101);
    }
    /* exactly CHAT_MAX_MESSAGE bytes of JSON: accepted and broadcast */
    memcpy(text, "{\"event\":\"send-message\",\"message\":\"", head - 2);
    memset(text + head - 2, 'm', CHAT_MAX_MESSAGE - head);
    memcpy(text + CHAT_MAX_MESSAGE - 2, "\"}", 2);
    wsc_send_frame(&c[0], 1, 1, text, CHAT_MAX_MESSAGE);
    got = harness_next_chat(&c[0], harness_wait_ms);
    CHECKF(got && strlen(got) > CHAT_MAX_MESSAGE - head, "a message of exactly CHAT_MAX_MESSAGE bytes did not go through");
    free(got);
    /* one byte more: 1009 */
    wsc_send_frame(&c[0], 1, 1, text, CHAT_MAX_MESSAGE + 1);
    harness_expect_close(&c[0], 1009, NULL);
    wsc_close(&c[0]);
    HARNESS_DONE_SERVER(&s);
}

/* A stop with nobody connected is immediate: no waiting out the close timeout in poll(). */
static void test_fault_stop_without_clients_is_immediate(void) {
    chat_server *srv = chat_server_create(NULL);
    long long t0;
    CHECK(srv != NULL);
    CHECK_INT(chat_server_listen(srv, "127.0.0.1", 0), CHAT_OK);
    chat_server_stop(srv);
    t0 = wsc_now_ms();
    CHECK_INT(chat_server_poll(srv, -1), 0);
    CHECKF(wsc_now_ms() - t0 < 500, "stopping an empty server took %lld ms", wsc_now_ms() - t0);
    chat_server_free(srv);
}

/* A stop while the posts' pipe is full (chat_server_post said CHAT_EBUSY) does not wait behind
   them (it has a pipe of its own): the server stops, and the posts left in the pipe are freed. */
static void test_fault_stop_with_a_full_wakeup_pipe(void) {
    size_t heap_before = test_heap_bytes;
    chat_server *srv = chat_server_create(NULL);
    int posts = 0, turns = 0, r;
    CHECK(srv != NULL);
    CHECK_INT(chat_server_listen(srv, "127.0.0.1", 0), CHAT_OK);
    while (posts < 1000000 && chat_server_post(srv, "poster", "hi", 2) == CHAT_OK) posts++;
    CHECKF(posts > 0 && posts < 1000000, "the pipe took %d posts", posts);
    CHECK_INT(chat_server_post(srv, "poster", "hi", 2), CHAT_EBUSY);
    chat_server_stop(srv);
    while ((r = chat_server_poll(srv, 10)) > 0 && ++turns < 50) {}
    CHECKF(r == 0, "still running after %d turns", turns);
    chat_server_free(srv);
    CHECK_INT((long long)test_heap_bytes, (long long)heap_before);
}

/* One message whose broadcast frame is bigger than a client's whole backlog is still delivered
   (max_message may be close to max_backlog, and JSON escaping makes frames longer). */
static void test_fault_message_bigger_than_backlog_delivered(void) {
    enum { SIZE = 100000 };
    chat_config cfg;
    harness_server s;
    wsc a, b;
    char na[64], nb[64];
    static char text[SIZE + 64];
    size_t head = strlen("{\"event\":\"send-message\",\"message\":\"");
    int k;
    memset(&cfg, 0, sizeof cfg);
    cfg.max_message = 1 << 20, cfg.max_backlog = 65536, cfg.history = -1;
    CHECK_INT(harness_use_library(&s, &cfg), 0);
    harness_join_pair(&a, na, "big", &b, nb, "other");
    memcpy(text, "{\"event\":\"send-message\",\"message\":\"", head);
    memset(text + head, 'z', SIZE - head - 2);
    memcpy(text + SIZE - 2, "\"}", 2);
    wsc_send_frame(&a, 1, 1, text, SIZE);
    for (k = 0; k < 2; k++) {
        char *got = harness_next_chat(k ? &b : &a, harness_wait_ms);
        CHECKF(got && strlen(got) > SIZE - head && strstr(got, "zzzz"), "%s did not get the big message", k ? "the other" : "the sender");
        free(got);
    }
    harness_leave(&a), harness_leave(&b);
    HARNESS_DONE_SERVER(&s);
}

static void fault_tests(void) {
    RUN(test_fault_stop_without_clients_is_immediate);
    RUN(test_fault_stop_with_a_full_wakeup_pipe);
    RUN(test_fault_message_bigger_than_backlog_delivered);
    RUN(test_fault_compiled_limits_refused_gracefully);
    RUN(test_fault_rate_limit_closes_a_flooder_only);
    RUN(test_fault_slow_reader_closed_others_unaffected);
    RUN(test_fault_emfile_does_not_spin_and_recovers);
    RUN(test_fault_reset_mid_frame);
    RUN(test_fault_partial_writes_to_a_small_window);
    RUN(test_fault_signals_interrupting_the_loop);
    RUN(test_fault_half_closed_peers);
    RUN(test_fault_churn_leaves_the_heap_where_it_started);
}
