/* RFC 6455 conformance, by Autobahn|Testsuite case class (Autobahn itself needs Python 2, which
   we do not have): the real server, forked as a library server, over loopback, driven by our
   own client (wsclient.h) with frames as odd as each case needs.

   Each test is one case class and runs its own server; each case inside it joins a fresh client
   with a unique name. A "watcher" client sits in the room through the whole test: it sees every
   broadcast, so a case can also prove that nothing was broadcast (the watcher's own sentinel
   message is the next thing it receives).

   Where the server must fail the connection, a case asserts the exact close code AND that the
   server closes the TCP connection by itself, within a bound, without our echo. Where the close
   is ours, the server's close is the echo; we expect it, then the end of the connection. */

#define CONF_N(a) (sizeof(a) / sizeof((a)[0]))
#define CONF_KEY "dGhlIHNhbXBsZSBub25jZQ=="        /* RFC 6455 1.3 */
#define CONF_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" /* its Sec-WebSocket-Accept */

/* {"event":"send-message","message":""}: the shortest event that is broadcast */
#define CONF_EVENT_HEAD "{\"event\":\"send-message\",\"message\":"
#define CONF_EVENT_MIN 37

/* After a case timed out, the test has failed: later waits are shorter, so a server that stopped
   answering fails the test within its time limit rather than hitting the alarm. */
static int conf_timeouts;
static int conf_wait(void) { return conf_timeouts ? harness_wait_ms / 6 : harness_wait_ms; }

typedef struct conf_group {
    harness_server s;
    int saved_port;
    wsc watch;
    char watch_name[64];
    int quiet_seq;
} conf_group;

/* Starts a library server for one case class, and the watcher. */
static void conf_begin(conf_group *g, size_t max_message) {
    chat_config cfg;
    memset(g, 0, sizeof *g);
    memset(&cfg, 0, sizeof cfg);
    conf_timeouts = 0;
    cfg.max_message = max_message;
    cfg.max_backlog = 8 << 20; /* whatever the build's default: a broadcast of max_message fits */
    cfg.history = -1;  /* no replay: a newcomer sees only what happens after it joins */
    cfg.max_rate = -1; /* some cases are bursts; the rate limit has its own tests */
    g->saved_port = harness_port;
    CHECK_INT(harness_start_library(&g->s, &cfg), 0);
    harness_port = g->s.port;
    harness_tagged(g->watch_name, sizeof g->watch_name, "watcher");
    CHECK_INT(harness_join(&g->watch, g->watch_name), 101);
    CHECK(harness_wait_users(&g->watch, g->watch_name));
}

static void conf_end(conf_group *g) {
    harness_leave(&g->watch);
    CHECKF(harness_stop_server(&g->s) == 0, "the server did not exit 0 on SIGTERM");
    harness_port = g->saved_port;
}

/* Joins a fresh client named "<what><i>-<harness_tag>"; the name goes to `name`. */
static int conf_join(wsc *c, char *name, size_t cap, const char *what, int i) {
    char base[48];
    snprintf(base, sizeof base, "%s%d", what, i);
    harness_tagged(name, cap, base);
    return harness_join(c, name);
}

/* An event of exactly `len` bytes (len >= CONF_EVENT_MIN): the message is a-z repeated, so a
   byte lost, doubled or moved shows. malloc'd, NUL-terminated. */
static char *conf_event(size_t len) {
    static const char head[] = CONF_EVENT_HEAD "\"", tail[] = "\"}";
    char *p = (char *)malloc(len + 1);
    size_t i, h = sizeof head - 1, t = sizeof tail - 1;
    memcpy(p, head, h);
    for (i = h; i < len - t; i++) p[i] = (char)('a' + i % 26);
    memcpy(p + len - t, tail, t);
    p[len] = '\0';
    return p;
}

/* What everyone receives when `name` sends `event` (CONF_EVENT_HEAD <json string> "}"), with
   the string as it was sent (the tests use no characters that JSON.stringify escapes). */
static char *conf_want(const char *name, const char *event, size_t len) {
    static const char a[] = "{\"event\":\"send-message\",\"username\":\"", b[] = "\",\"message\":";
    size_t h = sizeof CONF_EVENT_HEAD - 1, jn = len - h - 1, nn = strlen(name), n = 0;
    char *w = (char *)malloc(sizeof a + nn + sizeof b + jn + 2);
    memcpy(w + n, a, sizeof a - 1), n += sizeof a - 1;
    memcpy(w + n, name, nn), n += nn;
    memcpy(w + n, b, sizeof b - 1), n += sizeof b - 1;
    memcpy(w + n, event + h, jn), n += jn;
    w[n++] = '}';
    w[n] = '\0';
    return w;
}

/* The next chat message `c` receives (user lists skipped) must be `want`. */
static void conf_expect_chat(wsc *c, const char *want, const char *who, const char *what) {
    char *got = harness_next_chat(c, conf_wait());
    if (!got) conf_timeouts++;
    CHECKF(got && strcmp(got, want) == 0, "%s: %s expected %.70s (%zu bytes), got %.70s (%zu bytes)", what, who,
           want, strlen(want), got ? got : "nothing", got ? strlen(got) : (size_t)0);
    free(got);
}

/* Sends a whole event and expects its broadcast at the sender and the watcher. */
static void conf_say_and_expect(conf_group *g, wsc *c, const char *name, const char *event, const char *what) {
    char *want = conf_want(name, event, strlen(event));
    wsc_send_text(c, event);
    conf_expect_chat(c, want, "the sender", what);
    conf_expect_chat(&g->watch, want, "the watcher", what);
    free(want);
}

/* Nothing was broadcast since the watcher's last message: its own sentinel comes next. Whatever
   came before it is reported and skipped, so one failed case does not fail the next ones. */
static void conf_quiet(conf_group *g, const char *what) {
    char event[128], *want, *got;
    int first = 1;
    snprintf(event, sizeof event, CONF_EVENT_HEAD "\"quiet %d\"}", ++g->quiet_seq);
    want = conf_want(g->watch_name, event, strlen(event));
    wsc_send_text(&g->watch, event);
    while ((got = harness_next_chat(&g->watch, conf_wait())) && strcmp(got, want) != 0) {
        CHECKF(0, "%s: broadcast %s: %.80s", what, first ? "when nothing should be" : "also", got);
        first = 0;
        free(got);
    }
    if (!got) conf_timeouts++;
    CHECKF(got != NULL, "%s: the watcher's sentinel never came back", what);
    free(got), free(want);
}

static int conf_is_users(const wsc_frame *f) {
    static const char head[] = "{\"event\":\"update-users\"";
    return f->opcode == 1 && f->len >= sizeof head - 1 && memcmp(f->payload, head, sizeof head - 1) == 0;
}

/* The next frame from the server that is not a user list; 1, 0 (timeout) or -1 (EOF). Every
   server frame must be unmasked, with the RSV bits clear. */
static int conf_frame(wsc *c, wsc_frame *f, const char *what) {
    long long deadline = wsc_now_ms() + conf_wait();
    for (;;) {
        long long left = deadline - wsc_now_ms();
        int r = wsc_read_frame(c, f, left < 0 ? 0 : (int)left);
        if (r == 0) conf_timeouts++;
        if (r != 1) return r;
        CHECKF(!f->masked && f->rsv == 0 && f->fin, "%s: a server frame with mask %d, RSV %d, FIN %d", what,
               f->masked, f->rsv, f->fin);
        if (!conf_is_users(f)) return 1;
        free(f->payload);
    }
}

/* Reads the server's close frame: its code (1005 when empty, 1 for a 1-byte payload), -1 when
   the connection ended or timed out first. Any other frame before it is a failure. */
static int conf_read_close(wsc *c, const char *what) {
    for (;;) {
        wsc_frame f;
        int r = conf_frame(c, &f, what), code;
        if (r != 1) {
            CHECKF(0, "%s: %s instead of a close frame", what, r == 0 ? "a timeout" : "EOF");
            return -1;
        }
        if (f.opcode != 8) {
            CHECKF(0, "%s: unexpected frame (opcode %d, %zu bytes: %.60s) before the close", what, f.opcode, f.len,
                   (char *)f.payload);
            free(f.payload);
            continue;
        }
        code = f.len == 0 ? 1005 : f.len == 1 ? 1 : f.payload[0] << 8 | f.payload[1];
        free(f.payload);
        return code;
    }
}

/* The server closes with `code` (1005: an empty close) and then ends the TCP connection by itself,
   without our echo, at once: within a third of harness_wait_ms (1 s), well before the 2 s the server
   allows a peer to finish a close handshake (RFC 6455 7.1.1: the server closes first). Closes the
   client. */
static void conf_expect_close(wsc *c, int code, const char *what) {
    int got = conf_read_close(c, what);
    long long t0 = wsc_now_ms();
    if (got >= 0) CHECKF(got == code, "%s: expected close %d, got close %d", what, code, got);
    CHECKF(wsc_wait_eof(c, conf_wait() / 3), "%s: the TCP connection was still open %lld ms after close %d", what,
           wsc_now_ms() - t0, got);
    wsc_close(c);
}

static int conf_send(wsc *c, int fin, int rsv, int opcode, const void *p, size_t n) {
    return wsc_send_frame_ex(c, fin, rsv, opcode, p, n, 0);
}

/* A close frame with any payload: a 2-byte code (unless code < 0) and `rn` bytes of reason. */
static int conf_send_close(wsc *c, int code, const char *reason, size_t rn) {
    unsigned char p[2 + 125];
    size_t n = 0;
    if (code >= 0) p[0] = (unsigned char)(code >> 8), p[1] = (unsigned char)code, n = 2;
    if (rn) memcpy(p + n, reason, rn), n += rn;
    return conf_send(c, 1, 0, 8, p, n);
}

/* The length of a masked client frame header for an n-byte payload. */
static size_t conf_head_len(size_t n) { return 2 + (n < 126 ? 0 : n <= 0xFFFF ? 2 : 8) + 4; }

/* Sends a built frame in pieces: the header one byte per send(); then the payload one byte per
   send() up to 128 bytes, else in chunks of 1, 7 and 1000 bytes in turn. */
static int conf_send_split(wsc *c, const unsigned char *f, size_t n, size_t head) {
    static const size_t chunks[] = {1, 7, 1000};
    size_t i = 0, k = 0;
    for (; i < head; i++)
        if (wsc_send_all(c->fd, f + i, 1) < 0) return -1;
    while (i < n) {
        size_t m = n - head <= 128 ? 1 : chunks[k++ % 3];
        if (m > n - i) m = n - i;
        if (wsc_send_all(c->fd, f + i, m) < 0) return -1;
        i += m;
    }
    return 0;
}

/* The pong for a ping with this payload comes next. */
static void conf_expect_pong(wsc *c, const void *p, size_t n, const char *what) {
    wsc_frame f;
    int r = conf_frame(c, &f, what);
    CHECKF(r == 1 && f.opcode == 10, "%s: expected a pong, got %s (opcode %d)", what,
           r == 1 ? "a frame" : r == 0 ? "a timeout" : "EOF", r == 1 ? f.opcode : -1);
    if (r == 1 && f.opcode == 10)
        CHECKF(f.len == n && memcmp(f.payload, p, n) == 0, "%s: the pong carries %zu bytes, not the ping's %zu", what,
               f.len, n);
    if (r == 1) free(f.payload);
}

/* 1 when the server has closed its socket entirely: a byte sent now is answered with a reset
   (an open socket in the server's linger state would read and discard it). */
static int conf_fully_closed(wsc *c) {
    long long deadline = wsc_now_ms() + conf_wait();
    int err = 0;
    socklen_t len = sizeof err;
    if (send(c->fd, "x", 1, MSG_NOSIGNAL) < 0) return 1;
    while (wsc_now_ms() < deadline) {
        poll(NULL, 0, 10);
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err) return 1;
    }
    return 0;
}

/* ============================================================================================ */
/* 1. framing                                                                                   */
/* ============================================================================================ */

/* Text messages of every length class, in one write and in pieces; each is an event of exactly
   that length, and its broadcast (at the sender and at the watcher) proves it arrived intact.
   0 and 1 byte cannot be events: they are ignored, and the connection stays. */
static void test_conf_1_framing_text_lengths(void) {
    static const size_t sizes[] = {0, 1, 125, 126, 127, 128, 65535, 65536, 100000};
    conf_group g;
    size_t i;
    int split;
    conf_begin(&g, 1 << 20);
    for (i = 0; i < CONF_N(sizes); i++) {
        for (split = 0; split < 2; split++) {
            size_t n = sizes[i], fn;
            char name[64], what[96], *event = n >= CONF_EVENT_MIN ? conf_event(n) : NULL;
            unsigned char *frame = (unsigned char *)malloc(n + 14);
            wsc c;
            snprintf(what, sizeof what, "text of %zu bytes %s", n, split ? "in pieces" : "in one write");
            CHECK_INT(conf_join(&c, name, sizeof name, split ? "split" : "whole", (int)n), 101);
            fn = wsc_build_frame(&c, frame, 1, 0, 1, event ? event : "1", n, 0);
            CHECKF(fn == conf_head_len(n) + n, "%s: frame of %zu bytes", what, fn);
            CHECKF((split ? conf_send_split(&c, frame, fn, conf_head_len(n)) : wsc_send_all(c.fd, frame, fn)) == 0,
                   "%s: send failed", what);
            if (event) {
                char *want = conf_want(name, event, n);
                conf_expect_chat(&c, want, "the sender", what);
                conf_expect_chat(&g.watch, want, "the watcher", what);
                free(want);
            } else { /* ignored: the sender's next message is the next broadcast */
                char ev[64];
                snprintf(ev, sizeof ev, CONF_EVENT_HEAD "\"after %zu\"}", n);
                conf_say_and_expect(&g, &c, name, ev, what);
            }
            harness_leave(&c);
            free(frame), free(event);
        }
    }
    conf_end(&g);
}

/* Binary messages (every length class) get 1003; an unmasked frame or a non-minimal length is a
   protocol error. Nothing is broadcast. */
static void test_conf_1_framing_binary_and_malformed(void) {
    static const size_t binary[] = {0, 1, 125, 126, 65535, 65536};
    conf_group g;
    size_t i;
    conf_begin(&g, 1 << 20);
    for (i = 0; i < CONF_N(binary); i++) {
        char name[64], what[64], *event = conf_event(binary[i] < CONF_EVENT_MIN ? CONF_EVENT_MIN : binary[i]);
        wsc c;
        snprintf(what, sizeof what, "binary of %zu bytes", binary[i]);
        CHECK_INT(conf_join(&c, name, sizeof name, "binary", (int)binary[i]), 101);
        conf_send(&c, 1, 0, 2, event, binary[i]); /* an event, in case it were taken as text */
        conf_expect_close(&c, 1003, what);
        conf_quiet(&g, what);
        free(event);
    }
    for (i = 0; i < 3; i++) {
        static const char *const whats[] = {"unmasked text frame", "16-bit length for 5 bytes",
                                            "64-bit length for 200 bytes"};
        char name[64], *event = conf_event(200);
        unsigned char f[300];
        wsc c;
        CHECK_INT(conf_join(&c, name, sizeof name, "malformed", (int)i), 101);
        if (i == 0) {
            wsc_send_frame_ex(&c, 1, 0, 1, event, 200, 1);
        } else {
            size_t n = i == 1 ? 5 : 200, k;
            f[0] = 0x81;
            if (i == 1) f[1] = 0x80 | 126, f[2] = 0, f[3] = 5, k = 4;
            else {
                f[1] = 0x80 | 127, k = 10;
                memset(f + 2, 0, 8);
                f[9] = 200;
            }
            memset(f + k, 0, 4); /* a zero mask: the payload as it is */
            memcpy(f + k + 4, i == 1 ? "hello" : event, n);
            wsc_send_all(c.fd, f, k + 4 + n);
        }
        conf_expect_close(&c, 1002, whats[i]);
        conf_quiet(&g, whats[i]);
        free(event);
    }
    conf_end(&g);
}

/* ============================================================================================ */
/* 2. ping / pong                                                                               */
/* ============================================================================================ */

static void test_conf_2_ping_pong(void) {
    unsigned char p125[126];
    char name[64], ev[64];
    conf_group g;
    wsc c;
    int i;
    for (i = 0; i < 126; i++) p125[i] = (unsigned char)i;
    conf_begin(&g, 1 << 20);
    for (i = 0; i < 2; i++) { /* pings of 0 and 125 bytes: pongs with the same payload */
        size_t n = i ? 125 : 0;
        char what[64];
        snprintf(what, sizeof what, "ping of %zu bytes", n);
        CHECK_INT(conf_join(&c, name, sizeof name, "ping", (int)n), 101);
        conf_send(&c, 1, 0, 9, p125, n);
        conf_expect_pong(&c, p125, n, what);
        harness_leave(&c);
    }
    for (i = 0; i < 2; i++) { /* unsolicited pongs: ignored, and the connection stays */
        size_t n = i ? 125 : 0;
        char what[64];
        snprintf(what, sizeof what, "unsolicited pong of %zu bytes", n);
        CHECK_INT(conf_join(&c, name, sizeof name, "pong", (int)n), 101);
        conf_send(&c, 1, 0, 10, p125, n);
        snprintf(ev, sizeof ev, CONF_EVENT_HEAD "\"after pong %zu\"}", n);
        conf_say_and_expect(&g, &c, name, ev, what); /* nothing came before it, not even a frame */
        harness_leave(&c);
    }
    CHECK_INT(conf_join(&c, name, sizeof name, "ping", 126), 101);
    conf_send(&c, 1, 0, 9, p125, 126);
    conf_expect_close(&c, 1002, "ping of 126 bytes");
    CHECK_INT(conf_join(&c, name, sizeof name, "fragping", 0), 101);
    conf_send(&c, 0, 0, 9, "frag", 4);
    conf_send(&c, 1, 0, 0, "ment", 4);
    conf_expect_close(&c, 1002, "fragmented ping (FIN=0)");
    { /* 10 pings in one write: 10 pongs, in order */
        unsigned char buf[10 * 32];
        size_t n = 0;
        char pl[32];
        CHECK_INT(conf_join(&c, name, sizeof name, "tenpings", 0), 101);
        for (i = 0; i < 10; i++) {
            snprintf(pl, sizeof pl, "ping %d", i);
            n += wsc_build_frame(&c, buf + n, 1, 0, 9, pl, strlen(pl), 0);
        }
        wsc_send_all(c.fd, buf, n);
        for (i = 0; i < 10; i++) {
            char what[32];
            snprintf(pl, sizeof pl, "ping %d", i);
            snprintf(what, sizeof what, "10 pings: pong %d", i);
            conf_expect_pong(&c, pl, strlen(pl), what);
        }
        harness_leave(&c);
    }
    conf_quiet(&g, "ping/pong");
    conf_end(&g);
}

/* ============================================================================================ */
/* 3. reserved bits                                                                             */
/* ============================================================================================ */

static void test_conf_3_reserved_bits(void) {
    static const struct { const char *name; int rsv; } bits[] = {{"RSV1", 4}, {"RSV2", 2}, {"RSV3", 1}};
    static const char event[] = CONF_EVENT_HEAD "\"reserved\"}";
    conf_group g;
    size_t i, k;
    conf_begin(&g, 1 << 20);
    for (i = 0; i < CONF_N(bits); i++) {
        for (k = 0; k < 3; k++) {
            static const char *const kinds[] = {"text", "ping", "close"};
            char name[64], what[64];
            wsc c;
            snprintf(what, sizeof what, "%s on %s", bits[i].name, kinds[k]);
            CHECK_INT(conf_join(&c, name, sizeof name, "rsv", (int)(i * 3 + k)), 101);
            if (k == 0) conf_send(&c, 1, bits[i].rsv, 1, event, sizeof event - 1);
            else if (k == 1) conf_send(&c, 1, bits[i].rsv, 9, "ping", 4);
            else conf_send(&c, 1, bits[i].rsv, 8, "\x03\xe8", 2);
            conf_expect_close(&c, 1002, what); /* and no pong, nor an echo of the close */
            conf_quiet(&g, what);
        }
    }
    conf_end(&g);
}

/* ============================================================================================ */
/* 4. opcodes                                                                                   */
/* ============================================================================================ */

static void test_conf_4_reserved_opcodes(void) {
    static const int ops[] = {3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF};
    static const char event[] = CONF_EVENT_HEAD "\"opcode\"}";
    conf_group g;
    size_t i;
    int with;
    conf_begin(&g, 1 << 20);
    for (i = 0; i < CONF_N(ops); i++) {
        for (with = 0; with < 2; with++) {
            char name[64], what[64];
            wsc c;
            snprintf(what, sizeof what, "opcode 0x%X %s payload", ops[i], with ? "with" : "without");
            CHECK_INT(conf_join(&c, name, sizeof name, "op", ops[i] * 2 + with), 101);
            conf_send(&c, 1, 0, ops[i], event, with ? sizeof event - 1 : 0);
            conf_expect_close(&c, 1002, what);
            conf_quiet(&g, what);
        }
    }
    conf_end(&g);
}

/* ============================================================================================ */
/* 5. fragmentation                                                                             */
/* ============================================================================================ */

/* Sends `event` as fragments of the given sizes (0 allowed; they must add up), one send each. */
static void conf_send_fragments(wsc *c, const char *event, const size_t *sizes, int count) {
    size_t off = 0;
    int i;
    for (i = 0; i < count; i++) {
        conf_send(c, i == count - 1, 0, i == 0 ? 1 : 0, event + off, sizes[i]);
        off += sizes[i];
    }
}

static void test_conf_5_fragmentation(void) {
    conf_group g;
    char name[64];
    wsc c;
    int i;
    conf_begin(&g, 1 << 20);
    { /* one fragment (FIN on the first), two fragments */
        char *event = conf_event(300);
        size_t one[] = {300}, two[] = {123, 177};
        char *want;
        CHECK_INT(conf_join(&c, name, sizeof name, "frag", 1), 101);
        want = conf_want(name, event, 300);
        conf_send_fragments(&c, event, one, 1);
        conf_expect_chat(&c, want, "the sender", "1 fragment");
        conf_expect_chat(&g.watch, want, "the watcher", "1 fragment");
        conf_send_fragments(&c, event, two, 2);
        conf_expect_chat(&c, want, "the sender", "2 fragments");
        conf_expect_chat(&g.watch, want, "the watcher", "2 fragments");
        harness_leave(&c);
        free(want), free(event);
    }
    { /* 100 fragments; the first, the last and every tenth are empty */
        size_t sizes[100], left = 500, full = 0;
        char *event = conf_event(500), *want;
        for (i = 0; i < 100; i++) full += !(i % 10 == 0 || i == 99);
        for (i = 0; i < 100; i++) {
            sizes[i] = i % 10 == 0 || i == 99 ? 0 : left / full--;
            left -= sizes[i];
        }
        CHECKF(left == 0, "100 fragments: %zu bytes left over", left);
        CHECK_INT(conf_join(&c, name, sizeof name, "frag", 100), 101);
        want = conf_want(name, event, 500);
        conf_send_fragments(&c, event, sizes, 100);
        conf_expect_chat(&c, want, "the sender", "100 fragments");
        conf_expect_chat(&g.watch, want, "the watcher", "100 fragments");
        harness_leave(&c);
        free(want), free(event);
    }
    { /* pings (and a pong) between fragments: the pongs come before the message completes */
        char *event = conf_event(400), *want, pl[32];
        CHECK_INT(conf_join(&c, name, sizeof name, "fragping", 0), 101);
        want = conf_want(name, event, 400);
        for (i = 0; i < 4; i++) {
            conf_send(&c, 0, 0, i ? 0 : 1, event + i * 100, 100);
            conf_send(&c, 1, 0, 10, "unsolicited", 11);
            snprintf(pl, sizeof pl, "between %d", i);
            conf_send(&c, 1, 0, 9, pl, strlen(pl));
        }
        for (i = 0; i < 4; i++) { /* a chat message in between would fail here */
            char what[48];
            snprintf(pl, sizeof pl, "between %d", i);
            snprintf(what, sizeof what, "ping between fragments %d", i);
            conf_expect_pong(&c, pl, strlen(pl), what);
        }
        conf_send(&c, 1, 0, 0, "", 0); /* the empty final fragment completes it */
        conf_expect_chat(&c, want, "the sender", "pings between fragments");
        conf_expect_chat(&g.watch, want, "the watcher", "pings between fragments");
        harness_leave(&c);
        free(want), free(event);
    }
    { /* continuation frames with nothing to continue */
        static const char event[] = CONF_EVENT_HEAD "\"cont\"}";
        char *want;
        CHECK_INT(conf_join(&c, name, sizeof name, "cont", 1), 101);
        conf_send(&c, 1, 0, 0, event, sizeof event - 1);
        conf_expect_close(&c, 1002, "continuation (FIN=1) with nothing to continue");
        conf_quiet(&g, "continuation (FIN=1) with nothing to continue");
        CHECK_INT(conf_join(&c, name, sizeof name, "cont", 0), 101);
        conf_send(&c, 0, 0, 0, event, 10);
        conf_expect_close(&c, 1002, "continuation (FIN=0) with nothing to continue");
        conf_quiet(&g, "continuation (FIN=0) with nothing to continue");
        CHECK_INT(conf_join(&c, name, sizeof name, "cont", 2), 101); /* after a complete message */
        want = conf_want(name, event, sizeof event - 1);
        conf_send(&c, 1, 0, 1, event, sizeof event - 1);
        conf_send(&c, 1, 0, 0, event, sizeof event - 1);
        conf_expect_chat(&c, want, "the sender", "continuation after a complete message");
        conf_expect_close(&c, 1002, "continuation after a complete message");
        conf_expect_chat(&g.watch, want, "the watcher", "continuation after a complete message");
        conf_quiet(&g, "continuation after a complete message");
        free(want);
    }
    { /* a new text frame while a fragmented message is open */
        static const char event[] = CONF_EVENT_HEAD "\"interleaved\"}";
        CHECK_INT(conf_join(&c, name, sizeof name, "newtext", 0), 101);
        conf_send(&c, 0, 0, 1, event, 10);
        conf_send(&c, 1, 0, 1, event, sizeof event - 1);
        conf_expect_close(&c, 1002, "text frame inside a fragmented message");
        conf_quiet(&g, "text frame inside a fragmented message");
    }
    CHECK_INT(conf_join(&c, name, sizeof name, "fragbin", 0), 101);
    conf_send(&c, 0, 0, 2, "\x01\x02", 2);
    conf_send(&c, 1, 0, 0, "\x03\x04", 2);
    conf_expect_close(&c, 1003, "fragmented binary");
    conf_quiet(&g, "fragmented binary");
    { /* a close inside a fragmented message is answered as usual; the partial message is dropped */
        static const char event[] = CONF_EVENT_HEAD "\"half\"}";
        CHECK_INT(conf_join(&c, name, sizeof name, "fragclose", 0), 101);
        conf_send(&c, 0, 0, 1, event, 20);
        conf_send_close(&c, 1000, "", 0);
        conf_expect_close(&c, 1000, "close inside a fragmented message");
        conf_quiet(&g, "close inside a fragmented message");
    }
    conf_end(&g);
}

/* ============================================================================================ */
/* 6. UTF-8                                                                                     */
/* ============================================================================================ */

static const struct {
    const char *name, *bytes;
    size_t n, fail_at; /* the index of the first byte that makes it invalid; n: only at the end */
} conf_bad_utf8[] = {
    {"overlong C0 AF", "\xC0\xAF", 2, 0},
    {"overlong E0 80 AF", "\xE0\x80\xAF", 3, 1},
    {"overlong F0 80 80 AF", "\xF0\x80\x80\xAF", 4, 1},
    {"surrogate ED A0 80", "\xED\xA0\x80", 3, 1},
    {"surrogate ED BF BF", "\xED\xBF\xBF", 3, 1},
    {"above U+10FFFF F4 90 80 80", "\xF4\x90\x80\x80", 4, 1},
    {"above U+10FFFF F5 80 80 80", "\xF5\x80\x80\x80", 4, 0},
    {"truncated E4 B8 at the end", "\xE4\xB8", 2, 2},
    {"stray continuation 80", "\x80", 1, 0},
    {"stray continuation BF", "\xBF", 1, 0},
    {"FE", "\xFE", 1, 0},
    {"FF", "\xFF", 1, 0},
};

static void test_conf_6_utf8_valid(void) {
    static const struct { const char *name, *text; } valid[] = {
        {"U+00E9 e-acute", "\xC3\xA9"},
        {"U+4E2D (plane 0)", "\xE4\xB8\xAD"},
        {"U+1F995 sauropod (plane 1)", "\xF0\x9F\xA6\x95"},
        {"U+10FFFF (plane 16)", "\xF4\x8F\xBF\xBF"},
        {"U+0080, U+07FF, U+0800", "\xC2\x80\xDF\xBF\xE0\xA0\x80"},
        {"U+D7FF, U+E000, U+FFFD, U+FFFF", "\xED\x9F\xBF\xEE\x80\x80\xEF\xBF\xBD\xEF\xBF\xBF"},
        {"U+10000, U+20000 (plane 2)", "\xF0\x90\x80\x80\xF0\xA0\x80\x80"},
        {"U+E0001 (plane 14), U+F0000 (plane 15)", "\xF3\xA0\x80\x81\xF3\xB0\x80\x80"},
    };
    static const char mixed[] = CONF_EVENT_HEAD "\"\xC3\xA9\xE4\xB8\xAD\xF0\x9F\xA6\x95\"}";
    conf_group g;
    char name[64], event[128], what[96];
    size_t i, k, bad = 0;
    wsc c;
    conf_begin(&g, 1 << 20);
    for (i = 0; i < CONF_N(valid); i++) {
        CHECK_INT(conf_join(&c, name, sizeof name, "utf8ok", (int)i), 101);
        snprintf(event, sizeof event, CONF_EVENT_HEAD "\"%s\"}", valid[i].text);
        conf_say_and_expect(&g, &c, name, event, valid[i].name);
        harness_leave(&c);
    }
    /* "é中🦕" in an event, split into two fragments at every byte position (0 and the end
       included: an empty first or last fragment) */
    CHECK_INT(conf_join(&c, name, sizeof name, "utf8split", 0), 101);
    {
        char *want = conf_want(name, mixed, sizeof mixed - 1);
        for (k = 0; k <= sizeof mixed - 1; k++) {
            char *got;
            conf_send(&c, 0, 0, 1, mixed, k);
            conf_send(&c, 1, 0, 0, mixed + k, sizeof mixed - 1 - k);
            got = harness_next_chat(&c, conf_wait());
            if (!got || strcmp(got, want) != 0) {
                snprintf(what, sizeof what, "split at byte %zu", k);
                CHECKF(0, "%s: got %.80s", what, got ? got : "nothing");
                bad++;
            }
            free(got);
            got = harness_next_chat(&g.watch, conf_wait());
            CHECKF(got && strcmp(got, want) == 0, "split at byte %zu: the watcher got %.80s", k, got ? got : "nothing");
            free(got);
            if (bad > 3) break;
        }
        free(want);
    }
    harness_leave(&c);
    conf_quiet(&g, "valid UTF-8");
    conf_end(&g);
}

static void test_conf_6_utf8_invalid(void) {
    static const char prefix[] = CONF_EVENT_HEAD "\"ok ", suffix[] = " tail\"}";
    conf_group g;
    size_t i;
    conf_begin(&g, 1 << 20);
    for (i = 0; i < CONF_N(conf_bad_utf8); i++) {
        char name[64], what[128], payload[128];
        size_t n = 0, p = sizeof prefix - 1, b = conf_bad_utf8[i].n, at = conf_bad_utf8[i].fail_at;
        int truncated = at == b;
        wsc c;
        memcpy(payload, prefix, p), n += p;
        memcpy(payload + n, conf_bad_utf8[i].bytes, b), n += b;
        if (!truncated) memcpy(payload + n, suffix, sizeof suffix - 1), n += sizeof suffix - 1;

        /* (a) a whole text frame */
        snprintf(what, sizeof what, "%s, in one frame", conf_bad_utf8[i].name);
        CHECK_INT(conf_join(&c, name, sizeof name, "bad", (int)i), 101);
        conf_send(&c, 1, 0, 1, payload, n);
        conf_expect_close(&c, 1007, what);
        conf_quiet(&g, what);

        if (truncated) { /* E4 B8 ending a fragment is not an error yet; ending the message is */
            snprintf(what, sizeof what, "%s of a fragmented message", conf_bad_utf8[i].name);
            CHECK_INT(conf_join(&c, name, sizeof name, "badfrag", (int)i), 101);
            conf_send(&c, 0, 0, 1, payload, n);
            conf_send(&c, 1, 0, 9, "alive", 5);
            conf_expect_pong(&c, "alive", 5, what); /* still open after the incomplete character */
            conf_send(&c, 1, 0, 0, "", 0);
            conf_expect_close(&c, 1007, what);
            conf_quiet(&g, what);
            continue;
        }

        /* (b) mid-message: a valid first fragment, then one holding the invalid bytes, FIN=0;
           the final fragment is never sent */
        snprintf(what, sizeof what, "%s, in the 2nd of 3 fragments (the 3rd never sent)", conf_bad_utf8[i].name);
        CHECK_INT(conf_join(&c, name, sizeof name, "badfrag", (int)i), 101);
        conf_send(&c, 0, 0, 1, payload, p);
        conf_send(&c, 0, 0, 0, payload + p, b + 3);
        conf_expect_close(&c, 1007, what);
        conf_quiet(&g, what);

        /* (c) fail-fast: the header and the payload up to the first invalid byte, no more */
        snprintf(what, sizeof what, "%s, frame cut after the first invalid byte", conf_bad_utf8[i].name);
        CHECK_INT(conf_join(&c, name, sizeof name, "badfast", (int)i), 101);
        {
            unsigned char frame[160];
            size_t fn = wsc_build_frame(&c, frame, 1, 0, 1, payload, n, 0), h = conf_head_len(n);
            CHECK(fn == h + n);
            wsc_send_all(c.fd, frame, h + p + at + 1);
        }
        conf_expect_close(&c, 1007, what);
        conf_quiet(&g, what);
    }
    conf_end(&g);
}

/* ============================================================================================ */
/* 7. close handling                                                                            */
/* ============================================================================================ */

static void test_conf_7_close(void) {
    static const int valid[] = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999};
    static const int invalid[] = {0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535};
    conf_group g;
    char name[64], what[96], reason[124];
    wsc c, idle[2];
    long long idle_closed[2];
    size_t i;
    conf_begin(&g, 1 << 20);

    /* Two clients that, after a close, never send anything more nor close their end: one whose
       close the server echoed, one the server failed. Their connections must be ended by the
       server within 3 s; checked at the end, so the other cases run meanwhile. */
    for (i = 0; i < 2; i++) {
        long long t0;
        int code;
        CHECK_INT(conf_join(&idle[i], name, sizeof name, "idle", (int)i), 101);
        if (i == 0) conf_send_close(&idle[i], 1000, "", 0);
        else conf_send(&idle[i], 1, 0, 5, "", 0);
        t0 = wsc_now_ms();
        code = conf_read_close(&idle[i], i ? "silent peer after a failure" : "silent peer after its close");
        CHECK_INT(code, i ? 1002 : 1000);
        CHECKF(wsc_wait_eof(&idle[i], 3000), "silent peer %zu: no FIN within 3 s of the close", i);
        idle_closed[i] = t0;
        CHECKF(wsc_now_ms() - t0 <= 3000, "silent peer %zu: FIN after %lld ms", i, wsc_now_ms() - t0);
    }

    CHECK_INT(conf_join(&c, name, sizeof name, "close", 0), 101);
    conf_send_close(&c, -1, NULL, 0);
    conf_expect_close(&c, 1005, "empty close: echoed empty");

    CHECK_INT(conf_join(&c, name, sizeof name, "close", 1), 101);
    conf_send_close(&c, 1000, "bye", 3);
    conf_expect_close(&c, 1000, "close 1000 \"bye\"");

    for (i = 0; i < CONF_N(valid); i++) {
        snprintf(what, sizeof what, "close %d: echoed", valid[i]);
        CHECK_INT(conf_join(&c, name, sizeof name, "valid", valid[i]), 101);
        conf_send_close(&c, valid[i], "", 0);
        conf_expect_close(&c, valid[i], what);
    }

    CHECK_INT(conf_join(&c, name, sizeof name, "close", 2), 101);
    conf_send(&c, 1, 0, 8, "\x03", 1);
    conf_expect_close(&c, 1002, "close with a 1-byte payload");

    for (i = 0; i < CONF_N(invalid); i++) {
        snprintf(what, sizeof what, "close with invalid code %d", invalid[i]);
        CHECK_INT(conf_join(&c, name, sizeof name, "invalid", invalid[i]), 101);
        conf_send_close(&c, invalid[i], "", 0);
        conf_expect_close(&c, 1002, what);
    }

    for (i = 0; i < 3; i++) {
        static const char *const bad[] = {"\xFF", "ok \xED\xA0\x80", "\xE4\xB8"};
        snprintf(what, sizeof what, "close 1000 with an invalid UTF-8 reason (%zu)", i);
        CHECK_INT(conf_join(&c, name, sizeof name, "badreason", (int)i), 101);
        conf_send_close(&c, 1000, bad[i], strlen(bad[i]));
        conf_expect_close(&c, 1007, what);
    }

    memset(reason, 'r', 123);
    memcpy(reason, "\xF0\x9F\xA6\x95", 4); /* and multi-byte */
    CHECK_INT(conf_join(&c, name, sizeof name, "close", 3), 101);
    conf_send_close(&c, 1000, reason, 123);
    conf_expect_close(&c, 1000, "close 1000 with a 123-byte reason");

    { /* data after our close, in the same write: no broadcast, no pong */
        static const char event[] = CONF_EVENT_HEAD "\"after close\"}";
        unsigned char buf[256];
        size_t n;
        CHECK_INT(conf_join(&c, name, sizeof name, "close", 4), 101);
        n = wsc_build_frame(&c, buf, 1, 0, 8, "\x03\xe8", 2, 0);
        n += wsc_build_frame(&c, buf + n, 1, 0, 1, event, sizeof event - 1, 0);
        n += wsc_build_frame(&c, buf + n, 1, 0, 9, "ping", 4, 0);
        wsc_send_all(c.fd, buf, n);
        CHECK_INT(conf_read_close(&c, "data after close"), 1000);
        {
            wsc_frame f;
            int r = wsc_read_frame(&c, &f, conf_wait());
            CHECKF(r == -1, "data after close: %s after the close", r == 1 ? "a frame" : "no EOF");
            if (r == 1) free(f.payload);
        }
        wsc_close(&c);
        conf_quiet(&g, "data after close");
        /* and data sent later, once the echo is in */
        CHECK_INT(conf_join(&c, name, sizeof name, "close", 5), 101);
        conf_send_close(&c, 1000, "", 0);
        CHECK_INT(conf_read_close(&c, "data after the close handshake"), 1000);
        conf_send(&c, 1, 0, 1, event, sizeof event - 1);
        CHECKF(wsc_wait_eof(&c, conf_wait()), "data after the close handshake: no EOF");
        wsc_close(&c);
        conf_quiet(&g, "data after the close handshake");
    }

    for (i = 0; i < 2; i++) { /* the silent peers: is the server's socket gone within 3 s? */
        long long left = idle_closed[i] + 3000 - wsc_now_ms();
        if (left > 0) poll(NULL, 0, (int)left);
        CHECKF(conf_fully_closed(&idle[i]), "silent peer %zu (%s): the server still holds the connection 3 s after the close", i,
               i ? "failed with 1002" : "after its own close");
        wsc_close(&idle[i]);
    }
    conf_end(&g);
}

/* ============================================================================================ */
/* 9. limits                                                                                    */
/* ============================================================================================ */

static void test_conf_9_limits(void) {
    enum { MAX = 4096, SMALL = 1000 };
    conf_group g;
    char name[64], *event, *want;
    unsigned char head[16];
    wsc c;
    size_t i;
    conf_begin(&g, MAX);

    event = conf_event(MAX);
    CHECK_INT(conf_join(&c, name, sizeof name, "max", 0), 101);
    conf_say_and_expect(&g, &c, name, event, "a message of exactly max_message bytes");
    { /* and in 4 fragments */
        size_t sizes[] = {1000, 1000, 1000, MAX - 3000};
        want = conf_want(name, event, MAX);
        conf_send_fragments(&c, event, sizes, 4);
        conf_expect_chat(&c, want, "the sender", "max_message bytes in 4 fragments");
        conf_expect_chat(&g.watch, want, "the watcher", "max_message bytes in 4 fragments");
        free(want);
    }
    harness_leave(&c);

    /* max_message + 1 in one frame: refused from the header alone (no payload sent) */
    CHECK_INT(conf_join(&c, name, sizeof name, "max", 1), 101);
    {
        unsigned char *f = (unsigned char *)calloc(MAX + 1 + 14, 1);
        size_t fn = wsc_build_frame(&c, f, 1, 0, 1, f + 14, MAX + 1, 0);
        CHECK(fn == conf_head_len(MAX + 1) + MAX + 1);
        wsc_send_all(c.fd, f, conf_head_len(MAX + 1));
        free(f);
    }
    conf_expect_close(&c, 1009, "max_message + 1 bytes, header only");
    conf_quiet(&g, "max_message + 1 bytes, header only");

    /* huge 64-bit lengths: too big (1009), or with the most significant bit set (1002) */
    for (i = 0; i < 2; i++) {
        CHECK_INT(conf_join(&c, name, sizeof name, "huge", (int)i), 101);
        head[0] = 0x81, head[1] = 0x80 | 127;
        memset(head + 2, 0, 8);
        head[2] = i ? 0x80 : 0x40;
        memset(head + 10, 0x5A, 4);
        wsc_send_all(c.fd, head, 14);
        conf_expect_close(&c, i ? 1002 : 1009, i ? "64-bit length with the MSB set" : "a 2^62-byte frame header");
    }

    /* fragments adding up to more: 1009 at the header of the one that passes max_message */
    CHECK_INT(conf_join(&c, name, sizeof name, "max", 2), 101);
    for (i = 0; i < 4; i++) conf_send(&c, 0, 0, i ? 0 : 1, event + i * SMALL, SMALL);
    conf_send(&c, 1, 0, 9, "4000", 4);
    conf_expect_pong(&c, "4000", 4, "4 fragments of 1000 under max_message 4096"); /* not closed yet */
    {
        unsigned char f[SMALL + 14];
        wsc_build_frame(&c, f, 1, 0, 0, event, SMALL, 0);
        wsc_send_all(c.fd, f, conf_head_len(SMALL));
    }
    conf_expect_close(&c, 1009, "the 5th fragment of 1000 bytes, header only");
    conf_quiet(&g, "fragments over max_message");
    free(event);

    { /* 1000 messages with a 10-byte text, in one write: all broadcast, in order */
        enum { N = 1000 };
        unsigned char *buf = (unsigned char *)malloc(N * 64);
        size_t n = 0;
        int k, bad_c = -1, bad_w = -1;
        CHECK_INT(conf_join(&c, name, sizeof name, "burst", 0), 101);
        for (k = 0; k < N; k++) {
            char ev[64];
            snprintf(ev, sizeof ev, CONF_EVENT_HEAD "\"m%09d\"}", k);
            n += wsc_build_frame(&c, buf + n, 1, 0, 1, ev, strlen(ev), 0);
        }
        CHECK_INT(wsc_send_all(c.fd, buf, n), 0);
        for (k = 0; k < N && (bad_c < 0 || bad_w < 0); k++) {
            char ev[64], *w, *got;
            snprintf(ev, sizeof ev, CONF_EVENT_HEAD "\"m%09d\"}", k);
            w = conf_want(name, ev, strlen(ev));
            if (bad_c < 0) {
                got = harness_next_chat(&c, conf_wait());
                if (!got || strcmp(got, w) != 0) bad_c = k;
                free(got);
            }
            if (bad_w < 0) {
                got = harness_next_chat(&g.watch, conf_wait());
                if (!got || strcmp(got, w) != 0) bad_w = k;
                free(got);
            }
            free(w);
        }
        CHECKF(bad_c < 0, "1000 messages in one write: the sender's copy is wrong or missing at %d", bad_c);
        CHECKF(bad_w < 0, "1000 messages in one write: the watcher's copy is wrong or missing at %d", bad_w);
        harness_leave(&c);
        free(buf);
    }
    conf_quiet(&g, "limits");
    conf_end(&g);
}

/* ============================================================================================ */
/* handshake                                                                                    */
/* ============================================================================================ */

/* Sends `req` (plus `extra` bytes) on a new connection; returns the response status. */
static int conf_raw(wsc *c, const char *req, const void *extra, size_t extra_len) {
    size_t n = strlen(req);
    char *buf = (char *)malloc(n + extra_len);
    int r;
    memcpy(buf, req, n);
    if (extra_len) memcpy(buf + n, extra, extra_len);
    r = wsc_open_tcp(c, harness_host, harness_port) < 0 || wsc_send_all(c->fd, buf, n + extra_len) < 0 ? -1 : 0;
    free(buf);
    return r < 0 ? -1 : (c->status = wsc_read_head(c, conf_wait()));
}

static void test_conf_handshake(void) {
    static const struct { const char *what, *head; int status; } refused[] = {
        {"no Sec-WebSocket-Key", "Host: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n", 400},
        {"Sec-WebSocket-Key not base64",
         "Host: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: !!not*base64!!!!!!!!!==\r\n"
         "Sec-WebSocket-Version: 13\r\n", 400},
        {"Sec-WebSocket-Key of 15 bytes",
         "Host: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: MDEyMzQ1Njc4OWFiY2Rl\r\n"
         "Sec-WebSocket-Version: 13\r\n", 400},
        {"Sec-WebSocket-Key of 17 bytes",
         "Host: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: MDEyMzQ1Njc4OWFiY2RlZmc=\r\n"
         "Sec-WebSocket-Version: 13\r\n", 400},
        {"Sec-WebSocket-Version: 12",
         "Host: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " CONF_KEY "\r\n"
         "Sec-WebSocket-Version: 12\r\n", 426},
    };
    static const struct { const char *what, *head; } accepted[] = {
        {"header names in upper case",
         "HOST: x\r\nUPGRADE: WEBSOCKET\r\nCONNECTION: UPGRADE\r\nSEC-WEBSOCKET-KEY: " CONF_KEY "\r\n"
         "SEC-WEBSOCKET-VERSION: 13\r\n"},
        {"header names in lower case",
         "host: x\r\nupgrade: websocket\r\nconnection: upgrade\r\nsec-websocket-key: " CONF_KEY "\r\n"
         "sec-websocket-version: 13\r\n"},
        {"header names in mixed case",
         "hOsT: x\r\nuPgRaDe: WebSocket\r\ncOnNeCtIoN: uPgRaDe\r\nSeC-wEbSoCkEt-KeY: " CONF_KEY "\r\n"
         "sEc-WeBsOcKeT-vErSiOn: 13\r\n"},
        {"Connection: keep-alive, Upgrade",
         "Host: x\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Key: " CONF_KEY "\r\n"
         "Sec-WebSocket-Version: 13\r\n"},
        {"Sec-WebSocket-Extensions: permessage-deflate",
         "Host: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " CONF_KEY "\r\n"
         "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"},
        {"a masked text frame in the same write as the request",
         "Host: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " CONF_KEY "\r\n"
         "Sec-WebSocket-Version: 13\r\n"},
    };
    conf_group g;
    char name[64], enc[200], req[1024], v[128];
    wsc c;
    size_t i;
    conf_begin(&g, 1 << 20);
    for (i = 0; i < CONF_N(refused); i++) {
        snprintf(req, sizeof req, "GET /start_web_socket?username=refused%zu HTTP/1.1\r\n%s\r\n", i, refused[i].head);
        CHECKF(conf_raw(&c, req, NULL, 0) == refused[i].status, "%s: status %d, expected %d", refused[i].what,
               c.status, refused[i].status);
        if (refused[i].status == 426)
            CHECKF(wsc_header(&c, "sec-websocket-version", v, sizeof v) && strcmp(v, "13") == 0,
                   "%s: no Sec-WebSocket-Version: 13 in the 426", refused[i].what);
        CHECKF(!wsc_header(&c, "sec-websocket-accept", v, sizeof v), "%s: an accept key in a refusal", refused[i].what);
        CHECKF(wsc_wait_eof(&c, conf_wait()), "%s: the connection stayed open after %d", refused[i].what, c.status);
        wsc_close(&c);
    }
    for (i = 0; i < CONF_N(accepted); i++) {
        static const char early[] = CONF_EVENT_HEAD "\"early\"}";
        unsigned char frame[128];
        size_t fn = 0;
        char base[32], *want;
        int same_write = i == CONF_N(accepted) - 1;
        snprintf(base, sizeof base, "hs%zu", i);
        harness_tagged(name, sizeof name, base);
        harness_url_encode(name, enc);
        snprintf(req, sizeof req, "GET /start_web_socket?username=%s HTTP/1.1\r\n%s\r\n", enc, accepted[i].head);
        memset(&c, 0, sizeof c);
        c.seed = 0x9E3779B9u; /* for the frame's mask: conf_raw opens the connection afterwards */
        if (same_write) fn = wsc_build_frame(&c, frame, 1, 0, 1, early, sizeof early - 1, 0);
        CHECKF(conf_raw(&c, req, frame, fn) == 101, "%s: status %d", accepted[i].what, c.status);
        CHECKF(wsc_header(&c, "sec-websocket-accept", v, sizeof v) && strcmp(v, CONF_ACCEPT) == 0,
               "%s: Sec-WebSocket-Accept '%s'", accepted[i].what, v);
        CHECKF(!wsc_header(&c, "sec-websocket-extensions", v, sizeof v), "%s: an extension was accepted: %s",
               accepted[i].what, v);
        if (same_write) {
            want = conf_want(name, early, sizeof early - 1);
            conf_expect_chat(&c, want, "the sender", accepted[i].what);
            conf_expect_chat(&g.watch, want, "the watcher", accepted[i].what);
            free(want);
        } else {
            char ev[64];
            snprintf(ev, sizeof ev, CONF_EVENT_HEAD "\"hello %zu\"}", i);
            conf_say_and_expect(&g, &c, name, ev, accepted[i].what);
        }
        harness_leave(&c);
    }
    { /* a request head over CHAT_MAX_HEADER: 431, and the connection is closed */
        static char big[CHAT_MAX_HEADER + 1024];
        size_t n = 0;
        n += (size_t)sprintf(big, "GET /start_web_socket?username=big HTTP/1.1\r\nHost: x\r\nX-Pad: ");
        memset(big + n, 'p', CHAT_MAX_HEADER), n += CHAT_MAX_HEADER;
        strcpy(big + n, "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " CONF_KEY
                        "\r\nSec-WebSocket-Version: 13\r\n\r\n");
        CHECK_INT(conf_raw(&c, big, NULL, 0), 431);
        CHECKF(wsc_wait_eof(&c, conf_wait()), "a head over %d bytes: the connection stayed open after 431", CHAT_MAX_HEADER);
        wsc_close(&c);
    }
    { /* slowloris: 100 half-sent requests do not keep a normal client out */
        enum { N = 100 };
        static const char half[] = "GET / HTTP/1.1\r\nHo";
        int fds[N], k, open = 0;
        for (k = 0; k < N; k++) {
            fds[k] = wsc_tcp_connect(harness_host, harness_port);
            if (fds[k] >= 0 && wsc_send_all(fds[k], half, sizeof half - 1) == 0) open++;
        }
        CHECK_INT(open, N);
        CHECK_INT(conf_join(&c, name, sizeof name, "slowloris", 0), 101);
        conf_say_and_expect(&g, &c, name, CONF_EVENT_HEAD "\"despite 100 stalled requests\"}", "slowloris");
        harness_leave(&c);
        for (k = 0; k < N; k++)
            if (fds[k] >= 0) close(fds[k]);
    }
    conf_quiet(&g, "handshake");
    conf_end(&g);
}

static void conformance_tests(void) {
    RUN(test_conf_1_framing_text_lengths);
    RUN(test_conf_1_framing_binary_and_malformed);
    RUN(test_conf_2_ping_pong);
    RUN(test_conf_3_reserved_bits);
    RUN(test_conf_4_reserved_opcodes);
    RUN(test_conf_5_fragmentation);
    RUN(test_conf_6_utf8_valid);
    RUN(test_conf_6_utf8_invalid);
    RUN(test_conf_7_close);
    RUN(test_conf_9_limits);
    RUN(test_conf_handshake);
}
