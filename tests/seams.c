/* The seams of issue 11 that no other file covers: one rule for every limit and the effective
   configuration read back; scratch buffers given back after a big message. In one process,
   over a socketpair adopted by the server: no fork, no timing. */

#include <sys/socket.h>

static void test_seams_config_one_rule(void) {
    static const char *const origins[] = {"https://a.example", NULL};
    chat_config cfg, got;
    chat_server *srv;
    memset(&cfg, 0, sizeof cfg);
    srv = chat_server_create(&cfg);
    CHECK(srv != NULL);
    if (!srv) return;
    chat_server_config(srv, &got);
    CHECK_INT(got.max_clients, CHAT_MAX_CLIENTS);
    CHECK_INT(got.max_rate, CHAT_MAX_RATE);
    CHECK_INT(got.history, CHAT_HISTORY);
    CHECK_INT((long long)got.max_message, CHAT_MAX_MESSAGE);
    CHECK_INT(got.max_connections, CHAT_MAX_CLIENTS / 4 * 5 + 16);
    CHECK(got.transport != NULL && got.transport->read != NULL); /* the sockets' own */
    chat_server_free(srv);
    /* negative: none, where a limit can be lifted */
    cfg.max_rate = -5, cfg.history = -1, cfg.max_per_address = -2, cfg.origins = origins;
    srv = chat_server_create(&cfg);
    CHECK(srv != NULL);
    if (!srv) return;
    chat_server_config(srv, &got);
    CHECK_INT(got.max_rate, -1);
    CHECK_INT(got.history, -1);
    CHECK_INT(got.max_per_address, -1);
    CHECK(got.origins != origins && got.origins[0] && strcmp(got.origins[0], origins[0]) == 0 && !got.origins[1]);
    chat_server_free(srv);
    /* ... and an error where it cannot */
    memset(&cfg, 0, sizeof cfg);
    cfg.max_clients = -1;
    CHECK(chat_server_create(&cfg) == NULL);
    memset(&cfg, 0, sizeof cfg);
    cfg.handshake_timeout_ms = -1;
    CHECK(chat_server_create(&cfg) == NULL);
}

/* Runs the server's turns until the client end has `want` bytes or more to read (bounded). */
static size_t seams_pump(chat_server *srv, int fd, unsigned char *buf, size_t cap, size_t want) {
    size_t got = 0;
    int turn;
    for (turn = 0; turn < 200 && got < want; turn++) {
        ssize_t n;
        chat_server_poll(srv, 0);
        while (got < cap && (n = recv(fd, buf + got, cap - got, MSG_DONTWAIT)) > 0) got += (size_t)n;
    }
    return got;
}

static void test_seams_scratch_shrinks_after_a_big_message(void) {
    static const char upgrade[] = "GET /start_web_socket?username=big HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                                  "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                  "Sec-WebSocket-Version: 13\r\n\r\n";
    static const unsigned char mask[4] = {1, 2, 3, 4};
    enum { TEXT = 60000 };
    chat_config cfg;
    chat_server *srv;
    chat_buf msg = {NULL, 0, 0};
    unsigned char head[CHAT_WS_MAX_HEADER], *in = (unsigned char *)malloc(1 << 20);
    size_t before, after, i, got = 0;
    int sv[2];
    memset(&cfg, 0, sizeof cfg);
    cfg.max_per_address = -1, cfg.max_join_rate = -1, cfg.history = -1;
    cfg.max_message = 1 << 20, cfg.max_backlog = 4 << 20, cfg.max_byte_rate = -1;
    srv = chat_server_create(&cfg);
    CHECK(srv && in && socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    if (!srv || !in) {
        chat_server_free(srv);
        free(in);
        return;
    }
    CHECK_INT(chat_server_adopt(srv, sv[0]), CHAT_OK);
    CHECK(send(sv[1], upgrade, sizeof upgrade - 1, 0) == (ssize_t)(sizeof upgrade - 1));
    seams_pump(srv, sv[1], in, 1 << 20, 200); /* the 101, the welcome, the user list */
    /* a message of control characters: escaped as \u00XX, six bytes each */
    chat_buf_append(&msg, "{\"event\":\"send-message\",\"message\":\"", 35);
    for (i = 0; i < TEXT; i++) chat_buf_append(&msg, "\\u0001", 6);
    chat_buf_append(&msg, "\"}", 2);
    chat_ws_unmask(msg.data, msg.len, mask, 0);
    i = chat_ws_header(head, CHAT_WS_OP_TEXT, msg.len, mask);
    before = test_heap_bytes; /* msg is on the counted heap too */
    CHECK(send(sv[1], head, i, 0) == (ssize_t)i);
    for (i = 0; i < msg.len;) { /* the server reads as the client writes */
        ssize_t n = send(sv[1], msg.data + i, msg.len - i, MSG_DONTWAIT), r;
        if (n > 0) i += (size_t)n;
        chat_server_poll(srv, 0);
        while ((r = recv(sv[1], in, 1 << 20, MSG_DONTWAIT)) > 0) got += (size_t)r;
    }
    got += seams_pump(srv, sv[1], in, 1 << 20, TEXT * 6 - got); /* the broadcast back: 6 bytes a character */
    CHECKF(got >= TEXT * 6, "the broadcast came back with %zu bytes", got);
    after = test_heap_bytes;
    CHECKF(after < before + 4096, "after a %d-byte message the server keeps %zu bytes more", TEXT * 6, after - before);
    chat_server_free(srv);
    close(sv[1]);
    chat_buf_free(&msg);
    free(in);
}

/* A member that cannot keep up is closed by a broadcast; its on_leave must not run inside that
   broadcast (where it could change the room the loop walks), but after it, at the end of a turn. */
static int seams_inside_broadcast, seams_leaves, seams_left_inside;
static void seams_on_leave(void *user, chat_server *srv, const char *name, size_t len) {
    (void)user, (void)name, (void)len;
    seams_leaves++;
    if (seams_inside_broadcast) seams_left_inside++;
    chat_server_broadcast(srv, "server", "someone left", 12); /* speaking from on_leave is allowed */
}

static void test_seams_no_callback_inside_a_broadcast(void) {
    static const char upgrade[] = "GET /start_web_socket?username=%s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                                  "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                  "Sec-WebSocket-Version: 13\r\n\r\n";
    chat_config cfg;
    chat_server *srv;
    unsigned char *in = (unsigned char *)malloc(1 << 16);
    char req[512], text[1024];
    int fast[2], slow[2], i, sent = 0, n;
    memset(&cfg, 0, sizeof cfg);
    cfg.max_per_address = -1, cfg.max_join_rate = -1, cfg.history = -1, cfg.max_backlog = 16384;
    cfg.sndbuf = 4096, cfg.rcvbuf = 4096, cfg.on_leave = seams_on_leave;
    seams_inside_broadcast = seams_leaves = seams_left_inside = 0;
    srv = chat_server_create(&cfg);
    CHECK(srv && in && socketpair(AF_UNIX, SOCK_STREAM, 0, fast) == 0 && socketpair(AF_UNIX, SOCK_STREAM, 0, slow) == 0);
    if (!srv || !in) {
        chat_server_free(srv);
        free(in);
        return;
    }
    CHECK_INT(chat_server_adopt(srv, fast[0]), CHAT_OK);
    CHECK_INT(chat_server_adopt(srv, slow[0]), CHAT_OK);
    n = snprintf(req, sizeof req, upgrade, "fast");
    CHECK(send(fast[1], req, (size_t)n, 0) == n);
    n = snprintf(req, sizeof req, upgrade, "slow");
    CHECK(send(slow[1], req, (size_t)n, 0) == n);
    for (i = 0; i < 50 && chat_server_user_count(srv) < 2; i++) chat_server_poll(srv, 0);
    CHECK_INT(chat_server_user_count(srv), 2);
    memset(text, 'x', sizeof text);
    /* slow never reads: its socket fills, then its backlog, and a broadcast closes it */
    for (i = 0; i < 2000 && seams_leaves == 0; i++) {
        seams_inside_broadcast = 1;
        if (chat_server_broadcast(srv, "server", text, sizeof text) > 0) sent++;
        seams_inside_broadcast = 0;
        chat_server_poll(srv, 0);
        while (recv(fast[1], in, 1 << 16, MSG_DONTWAIT) > 0) {}
    }
    CHECKF(seams_leaves == 1, "on_leave ran %d times (after %d broadcasts)", seams_leaves, sent);
    CHECKF(seams_left_inside == 0, "on_leave ran inside a broadcast %d times", seams_left_inside);
    CHECK_INT(chat_server_user_count(srv), 1);
    chat_server_free(srv);
    close(fast[1]);
    close(slow[1]);
    free(in);
}

/* One turn's output is gathered once in the read buffer and shared (chat__conn_gather): a
   queue gets the shared bytes only where they are exactly its frames, in its order; a read or a
   full buffer makes every earlier copy stale. */
static int seams_gathered(chat_server *srv, chat__frame **q, unsigned n, unsigned off, const unsigned char **at) {
    chat__conn c;
    unsigned char want[2 * CHAT_READ_CHUNK];
    size_t len = 0, i;
    memset(&c, 0, sizeof c);
    c.q = q, c.q_cap = 8, c.q_count = n, c.q_off = off;
    for (i = 0; i < n; i++) memcpy(want + len, q[i]->data, q[i]->len), len += q[i]->len;
    *at = chat__conn_gather(srv, &c, n);
    return memcmp(*at + off, want + off, len - off) == 0;
}

static void test_seams_gathered_output_is_shared_only_where_it_matches(void) {
    static unsigned char big[CHAT_READ_CHUNK / 2];
    chat_config cfg;
    chat_server *srv;
    chat__frame *f[4], *g[4], *q[8];
    const unsigned char *first, *again;
    size_t room;
    int i;
    memset(&cfg, 0, sizeof cfg);
    srv = chat_server_create(&cfg);
    CHECK(srv != NULL);
    if (!srv) return;
    for (i = 0; i < 4; i++) {
        char text[32];
        snprintf(text, sizeof text, "frame number %d", i);
        f[i] = chat__frame_ws(CHAT_WS_OP_TEXT, text, strlen(text), CHAT__FRAME_SHARED);
        memset(big, 'a' + i, sizeof big);
        g[i] = chat__frame_ws(CHAT_WS_OP_TEXT, big, sizeof big - 16, CHAT__FRAME_SHARED);
    }
    q[0] = f[0], q[1] = f[1], q[2] = f[2];
    CHECK(seams_gathered(srv, q, 3, 0, &first));
    CHECK(seams_gathered(srv, q, 3, 0, &again)); /* the same frames: the same bytes, no copy */
    CHECK(again == first);
    q[0] = f[1], q[1] = f[2];
    CHECK(seams_gathered(srv, q, 2, 3, &again) && again == first + f[0]->len); /* a tail of them */
    q[0] = f[0], q[1] = f[2];
    CHECK(seams_gathered(srv, q, 2, 0, &again) && again != first); /* not adjacent there: a copy */
    q[0] = f[0], q[1] = f[3], q[2] = f[1];
    CHECK(seams_gathered(srv, q, 3, 0, &again)); /* one never gathered between them */
    q[0] = f[0], q[1] = f[1], q[2] = f[2];
    CHECK(seams_gathered(srv, q, 3, 0, &again));
    chat__conn_rx_space(srv, &room); /* a read overwrites the buffer: nothing there is theirs now */
    memset(srv->rxbuf, '#', CHAT_READ_CHUNK);
    CHECK(seams_gathered(srv, q, 3, 0, &again));
    q[0] = g[0], q[1] = g[1];
    CHECK(seams_gathered(srv, q, 2, 0, &first)); /* fills the buffer... */
    q[0] = g[2], q[1] = g[3];
    CHECK(seams_gathered(srv, q, 2, 0, &again)); /* ...so this starts it over */
    q[0] = g[0], q[1] = g[1];
    CHECK(seams_gathered(srv, q, 2, 0, &again));
    q[0] = f[0], q[1] = f[1], q[2] = f[2];
    CHECK(seams_gathered(srv, q, 3, 0, &again));
    for (i = 0; i < 4; i++) chat__frame_release(f[i]), chat__frame_release(g[i]);
    chat_server_free(srv);
}

static void seams_tests(void) {
    RUN(test_seams_no_callback_inside_a_broadcast);
    RUN(test_seams_config_one_rule);
    RUN(test_seams_scratch_shrinks_after_a_big_message);
    RUN(test_seams_gathered_output_is_shared_only_where_it_matches);
}
