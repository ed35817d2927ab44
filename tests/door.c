/* The platform door and the embedder's loop (issue 11), in one process and without timing:
   the whole server driven over socketpair()s it adopted, through a transport that injects
   EAGAIN, EINTR, short writes and ECONNRESET at every step of a chat; and a chat served from an
   epoll loop the test owns, through chat_server_watches / timeout / process. */

#include <ctype.h>
#include <errno.h>
#include <sys/socket.h>
#include <sys/uio.h>
#ifdef __linux__
#include <pthread.h>
#include <sys/epoll.h>
#endif

enum { DOOR_CLEAN, DOOR_READ_EAGAIN, DOOR_READ_EINTR, DOOR_WRITE_EAGAIN, DOOR_WRITE_EINTR, DOOR_WRITE_SHORT,
       DOOR_READ_RESET, DOOR_WRITE_RESET, DOOR_KINDS };
static const char *const door_kind_names[] = {"clean", "read EAGAIN", "read EINTR", "write EAGAIN", "write EINTR",
                                              "short write", "read ECONNRESET", "write ECONNRESET"};

/* The test transport: the socket calls, with one fault at call number `at` (reads and writes
   counted together). */
typedef struct door_io {
    int kind, at, calls, faulted_fd;
    int closes[64]; /* close calls per descriptor */
    int refuse_open;
} door_io;

static int door_fault(door_io *io, int fd, int is_read) {
    int kinds_read = io->kind == DOOR_READ_EAGAIN || io->kind == DOOR_READ_EINTR || io->kind == DOOR_READ_RESET;
    if (io->calls++ != io->at || io->kind == DOOR_CLEAN) return 0;
    if (kinds_read != is_read) { /* this call is of the other kind: fault the next one that fits */
        io->at++;
        return 0;
    }
    io->faulted_fd = fd;
    return 1;
}

static long door_read(void *user, int fd, void *buf, size_t len) {
    door_io *io = (door_io *)user;
    if (door_fault(io, fd, 1)) {
        errno = io->kind == DOOR_READ_EAGAIN ? EAGAIN : io->kind == DOOR_READ_EINTR ? EINTR : ECONNRESET;
        return -1;
    }
    return (long)recv(fd, buf, len, 0);
}

static long door_write(void *user, int fd, const chat_iovec *iov, int count) {
    door_io *io = (door_io *)user;
    struct iovec v[64];
    struct msghdr m;
    int i;
    if (door_fault(io, fd, 0)) {
        if (io->kind == DOOR_WRITE_SHORT) return (long)send(fd, iov[0].base, 1, MSG_NOSIGNAL); /* one byte only */
        errno = io->kind == DOOR_WRITE_EAGAIN ? EAGAIN : io->kind == DOOR_WRITE_EINTR ? EINTR : ECONNRESET;
        return -1;
    }
    for (i = 0; i < count && i < 64; i++) v[i].iov_base = (void *)(uintptr_t)iov[i].base, v[i].iov_len = iov[i].len;
    memset(&m, 0, sizeof m);
    m.msg_iov = v, m.msg_iovlen = (size_t)i;
    return (long)sendmsg(fd, &m, MSG_NOSIGNAL);
}

static int door_open(void *user, int fd) {
    (void)fd;
    return ((door_io *)user)->refuse_open;
}

static void door_close(void *user, int fd, int reset) {
    door_io *io = (door_io *)user;
    (void)reset;
    if (fd >= 0 && fd < 64) io->closes[fd]++;
    close(fd);
}

/* A client: its socket's other end and everything it received (on libc's heap, so that the
   counted heap is the server's alone). */
typedef struct door_bytes {
    unsigned char *data;
    size_t len;
} door_bytes;
typedef struct door_client {
    int fd;     /* the client's end */
    int server; /* the end the server adopted */
    door_bytes got;
} door_client;

static void door_drain(door_client *c) {
    unsigned char buf[4096];
    ssize_t n;
    if (c->fd < 0) return;
    while ((n = recv(c->fd, buf, sizeof buf, MSG_DONTWAIT)) > 0) {
        c->got.data = (unsigned char *)realloc(c->got.data, c->got.len + (size_t)n);
        memcpy(c->got.data + c->got.len, buf, (size_t)n);
        c->got.len += (size_t)n;
    }
}

/* Enough turns for the server to finish whatever the last step asked (it never waits for a
   timer here: user lists for a room of two are due at once). */
static void door_pump(chat_server *srv, door_client *cs, int n) {
    int turn, i;
    for (turn = 0; turn < 30; turn++) {
        chat_server_poll(srv, 0);
        for (i = 0; i < n; i++) door_drain(&cs[i]);
    }
}

/* A masked frame; fin 0 leaves the message open. */
static void door_send_frame(door_client *c, int fin, int opcode, const char *text) {
    static const unsigned char mask[4] = {0x12, 0x34, 0x56, 0x78};
    unsigned char frame[512];
    size_t n = strlen(text), h = chat_ws_header(frame, opcode, n, mask);
    if (!fin) frame[0] &= 0x7F;
    memcpy(frame + h, text, n);
    chat_ws_unmask(frame + h, n, mask, 0);
    if (c->fd >= 0 && send(c->fd, frame, h + n, MSG_NOSIGNAL) < 0) {}
}

static void door_send_text(door_client *c, const char *text) { door_send_frame(c, 1, CHAT_WS_OP_TEXT, text); }

static void door_send_raw(door_client *c, const void *p, size_t n) {
    if (c->fd >= 0 && send(c->fd, p, n, MSG_NOSIGNAL) < 0) {}
}

static int door_has(const door_client *c, const char *text) {
    size_t n = strlen(text), i;
    for (i = 0; i + n <= c->got.len; i++)
        if (memcmp(c->got.data + i, text, n) == 0) return 1;
    return 0;
}

/* The chat: two joins, a message each way, a ping, a fragmented message, a close by alice.
   Returns the number of transport calls it took. */
static int door_chat(door_io *io, door_client *cs, size_t *heap_after) {
    static const char up[] = "GET /start_web_socket?username=%s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                             "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                             "Sec-WebSocket-Version: 13\r\n\r\n";
    static const unsigned char ping[] = {0x89, 0x82, 1, 2, 3, 4, 'p' ^ 1, 'q' ^ 2};
    static const unsigned char close_frame[] = {0x88, 0x82, 0, 0, 0, 0, 0x03, 0xE8};
    static const chat_transport table = {door_open, door_read, door_write, NULL, door_close, NULL, NULL, NULL};
    chat_transport t = table;
    chat_config cfg;
    chat_server *srv;
    char req[512];
    int i, n;
    memset(&cfg, 0, sizeof cfg);
    cfg.max_per_address = -1, cfg.max_join_rate = -1, cfg.history = -1;
    t.user = io;
    cfg.transport = &t;
    srv = chat_server_create(&cfg);
    if (!srv) return -1;
    for (i = 0; i < 2; i++) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) return -1;
        cs[i].got.data = NULL, cs[i].got.len = 0;
        cs[i].fd = sv[1], cs[i].server = sv[0];
        CHECK_INT(chat_server_adopt(srv, sv[0]), CHAT_OK);
    }
    n = snprintf(req, sizeof req, up, "alice");
    door_send_raw(&cs[0], req, (size_t)n);
    door_pump(srv, cs, 2);
    n = snprintf(req, sizeof req, up, "bob");
    door_send_raw(&cs[1], req, (size_t)n);
    door_pump(srv, cs, 2);
    door_send_text(&cs[0], "{\"event\":\"send-message\",\"message\":\"hello bob\"}");
    door_pump(srv, cs, 2);
    door_send_text(&cs[1], "{\"event\":\"send-message\",\"message\":\"hi alice\"}");
    door_send_raw(&cs[1], ping, sizeof ping);
    door_pump(srv, cs, 2);
    door_send_frame(&cs[1], 0, CHAT_WS_OP_TEXT, "{\"event\":\"s"); /* a message in two frames */
    door_pump(srv, cs, 2);
    door_send_frame(&cs[1], 1, CHAT_WS_OP_CONT, "end-message\",\"message\":\"two parts\"}");
    door_pump(srv, cs, 2);
    door_send_raw(&cs[0], close_frame, sizeof close_frame);
    door_pump(srv, cs, 2);
    door_send_text(&cs[1], "{\"event\":\"send-message\",\"message\":\"the end\"}");
    door_pump(srv, cs, 2);
    *heap_after = test_heap_bytes;
    chat_server_free(srv);
    return io->calls;
}

/* The bytes a client got with what differs from run to run (message ids, times, resume
   tokens) overwritten by 'N', character for character. */
static void door_unstamp(door_bytes *b) {
    static const char *const keys[] = {"\"id\":", "\"time\":", "\"resume\":\""};
    size_t i, k;
    for (i = 0; i < b->len; i++)
        for (k = 0; k < 3; k++) {
            size_t n = strlen(keys[k]), j;
            if (i + n > b->len || memcmp(b->data + i, keys[k], n) != 0) continue;
            for (j = i + n; j < b->len && isxdigit(b->data[j]); j++) b->data[j] = 'N';
        }
}

static void test_door_faults_at_every_step_of_a_chat(void) {
    door_io io;
    door_client clean[2], cs[2];
    size_t heap, base = test_heap_bytes, clean_heap;
    int total, kind, at, i, runs = 0;
    memset(&io, 0, sizeof io);
    total = door_chat(&io, clean, &clean_heap);
    CHECKF(total >= 16, "the clean chat took %d transport calls", total);
    CHECK(door_has(&clean[0], "\"usernames\":[\"alice\",\"bob\"]") && door_has(&clean[1], "\"message\":\"hello bob\""));
    CHECK(door_has(&clean[0], "\"message\":\"two parts\"") && door_has(&clean[1], "\"message\":\"the end\""));
    CHECK(door_has(&clean[1], "\x8a\x02pq"));                   /* the pong */
    CHECK(door_has(&clean[1], "\"usernames\":[\"bob\"]"));      /* alice left */
    CHECK_INT(test_heap_bytes, base);
    for (i = 0; i < 2; i++) close(clean[i].fd), door_unstamp(&clean[i].got);
    for (kind = DOOR_READ_EAGAIN; kind < DOOR_KINDS; kind++) {
        int injected = 0;
        for (at = 0; at < total; at++) {
            int j, fd_closes = 1;
            memset(&io, 0, sizeof io);
            io.kind = kind, io.at = at, io.faulted_fd = -1;
            door_chat(&io, cs, &heap);
            runs++;
            injected += io.faulted_fd >= 0;
            for (j = 0; j < 64; j++)
                if (io.closes[j] > 1) fd_closes = 0;
            CHECKF(fd_closes, "%s at call %d: a descriptor was closed twice", door_kind_names[kind], at);
            CHECKF(test_heap_bytes == base, "%s at call %d: the heap is %zu bytes above its start",
                   door_kind_names[kind], at, test_heap_bytes - base);
            if (kind < DOOR_READ_RESET) { /* not a failure: the same bytes, only later */
                for (j = 0; j < 2; j++) door_unstamp(&cs[j].got);
                for (j = 0; j < 2; j++)
                    CHECKF(cs[j].got.len == clean[j].got.len && memcmp(cs[j].got.data, clean[j].got.data, cs[j].got.len) == 0,
                           "%s at call %d: client %d got %zu bytes, %zu in the clean chat", door_kind_names[kind], at, j,
                           cs[j].got.len, clean[j].got.len);
            } else if (io.faulted_fd == cs[0].server) { /* alice lost: bob goes on, alone in the room */
                CHECKF(door_has(&cs[1], "\"message\":\"the end\"") && door_has(&cs[1], "\"usernames\":[\"bob\"]"),
                       "%s at call %d: after alice was lost, bob did not go on", door_kind_names[kind], at);
            } else if (io.faulted_fd == cs[1].server) { /* bob lost: alice sees him go, if she was there */
                CHECKF(!door_has(&cs[0], "\"usernames\":[\"alice\",\"bob\"]") ||
                       door_has(&cs[0], "\"usernames\":[\"alice\"]}\x88") || door_has(&cs[0], "\x88\x02\x03\xe8"),
                       "%s at call %d: alice did not see bob go", door_kind_names[kind], at);
                CHECKF(!door_has(&cs[1], "\"message\":\"the end\""), "%s at call %d: bob was served after he was lost",
                       door_kind_names[kind], at);
            }
            for (j = 0; j < 2; j++) {
                close(cs[j].fd);
                free(cs[j].got.data);
            }
            if (test_checks_failed > 5) return;
        }
        CHECKF(injected >= total / 4, "%s: only %d of %d runs met their fault", door_kind_names[kind], injected, total);
    }
    for (i = 0; i < 2; i++) free(clean[i].got.data);
    CHECK(runs >= (DOOR_KINDS - 1) * 20);
}

static void test_door_open_refused_and_close_once(void) {
    static const chat_transport table = {door_open, door_read, door_write, NULL, door_close, NULL, NULL, NULL};
    chat_transport t = table;
    chat_config cfg;
    chat_server *srv;
    door_io io;
    int sv[2], fd;
    memset(&cfg, 0, sizeof cfg);
    memset(&io, 0, sizeof io);
    io.kind = DOOR_CLEAN, io.refuse_open = 1;
    t.user = &io;
    cfg.transport = &t, cfg.max_per_address = -1;
    srv = chat_server_create(&cfg);
    CHECK(srv != NULL && socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    if (!srv) return;
    fd = sv[0];
    CHECK_INT(chat_server_adopt(srv, fd), CHAT_EBUSY);
    chat_server_poll(srv, 0); /* the refused one is closed at the end of the turn */
    CHECK_INT(io.closes[fd], 1);
    CHECK(recv(sv[1], &fd, 1, 0) == 0 || errno == ECONNRESET); /* the peer sees the end */
    CHECK_INT(chat_server_adopt(srv, -1), CHAT_EINVAL);
    chat_server_free(srv);
    CHECK_INT(io.closes[sv[0]], 1);
    close(sv[1]);
}

/* A transport shaped like a TLS library (issue 16): a handshake that must read the peer's
   "HELLO\n" and then wants to write ("OK\n") before it is done; after it, read drains the socket
   into the transport but hands out at most 5 bytes a call, so the rest is pending: a server that
   waited for the socket to say more would stall with the request inside the transport. */
#define DOOR_HELD_FDS 64
typedef struct door_held {
    int stage[DOOR_HELD_FDS]; /* 0: reading the hello, 1: wants to write, 2: done */
    size_t hello[DOOR_HELD_FDS], len[DOOR_HELD_FDS], off[DOOR_HELD_FDS];
    unsigned char buf[DOOR_HELD_FDS][4096];
    int handshakes;
} door_held;

static int door_held_open(void *user, int fd) {
    door_held *h = (door_held *)user;
    if (fd < 0 || fd >= DOOR_HELD_FDS) return -1;
    h->stage[fd] = 0, h->hello[fd] = h->len[fd] = h->off[fd] = 0;
    return 0;
}

static int door_held_handshake(void *user, int fd) {
    door_held *h = (door_held *)user;
    h->handshakes++;
    if (h->stage[fd] == 0) {
        while (h->hello[fd] < 6) {
            char ch;
            ssize_t n = recv(fd, &ch, 1, 0);
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return CHAT_WATCH_READ;
            if (n <= 0 || ch != "HELLO\n"[h->hello[fd]]) {
                errno = EPROTO;
                return -1;
            }
            h->hello[fd]++;
        }
        h->stage[fd] = 1;
        return CHAT_WATCH_WRITE;
    }
    if (send(fd, "OK\n", 3, MSG_NOSIGNAL) != 3) return -1;
    h->stage[fd] = 2;
    return 0;
}

static long door_held_read(void *user, int fd, void *buf, size_t len) {
    door_held *h = (door_held *)user;
    size_t give;
    CHECK(h->stage[fd] == 2); /* nothing is read before the handshake is done */
    if (h->off[fd] == h->len[fd]) {
        ssize_t n = recv(fd, h->buf[fd], sizeof h->buf[fd], 0);
        if (n <= 0) return (long)n;
        h->off[fd] = 0, h->len[fd] = (size_t)n;
    }
    give = h->len[fd] - h->off[fd];
    if (give > 5) give = 5;
    if (give > len) give = len;
    memcpy(buf, h->buf[fd] + h->off[fd], give);
    h->off[fd] += give;
    return (long)give;
}

static size_t door_held_pending(void *user, int fd) {
    door_held *h = (door_held *)user;
    return h->len[fd] - h->off[fd];
}

/* Turns until `client` has received `text`, at most `turns`. */
static int door_pump_until(chat_server *srv, door_client *cs, int n, int who, const char *text, int turns) {
    while (turns-- > 0) {
        int i;
        chat_server_poll(srv, 0);
        for (i = 0; i < n; i++) door_drain(&cs[i]);
        if (door_has(&cs[who], text)) return 1;
    }
    return 0;
}

static void test_door_handshake_and_pending_input(void) {
    static const char up[] = "GET /start_web_socket?username=%s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                             "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                             "Sec-WebSocket-Version: 13\r\n\r\n";
    static door_held held; /* 256 KiB: not on the stack */
    chat_transport t;
    chat_config cfg;
    chat_server *srv;
    chat_stats st;
    door_client cs[4];
    char req[512];
    unsigned char byte;
    long long start, waited;
    int i, n, r;
    memset(&held, 0, sizeof held);
    memset(&t, 0, sizeof t);
    t.open = door_held_open, t.read = door_held_read, t.handshake = door_held_handshake, t.pending = door_held_pending;
    t.user = &held;
    memset(&cfg, 0, sizeof cfg);
    cfg.max_per_address = -1, cfg.max_join_rate = -1, cfg.history = -1, cfg.handshake_timeout_ms = 300;
    cfg.transport = &t;
    srv = chat_server_create(&cfg);
    CHECK(srv != NULL);
    if (!srv) return;
    for (i = 0; i < 4; i++) {
        int sv[2];
        CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
        cs[i].got.data = NULL, cs[i].got.len = 0;
        cs[i].fd = sv[1], cs[i].server = sv[0];
        CHECK_INT(chat_server_adopt(srv, sv[0]), CHAT_OK);
    }
    /* the request before the hello: nothing is answered, the handshake reads only its bytes */
    n = snprintf(req, sizeof req, up, "alice");
    door_send_raw(&cs[0], "HEL", 3);
    door_pump(srv, cs, 4);
    CHECK_INT(cs[0].got.len, 0);
    CHECK(chat_server_timeout(srv) != 0); /* waiting for the peer: no busy turn */
    door_send_raw(&cs[0], "LO\n", 3);
    door_send_raw(&cs[0], req, (size_t)n); /* arrives with the end of the handshake */
    CHECKF(door_pump_until(srv, cs, 4, 0, "\"usernames\":[\"alice\"]", 500), "alice was not served (got %zu bytes)",
           cs[0].got.len);
    CHECK(cs[0].got.len > 3 && memcmp(cs[0].got.data, "OK\n", 3) == 0); /* the handshake's bytes first */
    n = snprintf(req, sizeof req, up, "bob");
    door_send_raw(&cs[1], "HELLO\n", 6);
    door_send_raw(&cs[1], req, (size_t)n);
    CHECK(door_pump_until(srv, cs, 4, 1, "\"usernames\":[\"alice\",\"bob\"]", 500));
    door_send_text(&cs[0], "{\"event\":\"send-message\",\"message\":\"held, then read\"}");
    CHECK(door_pump_until(srv, cs, 4, 1, "\"message\":\"held, then read\"", 500));
    CHECK(chat_server_timeout(srv) != 0); /* all read: nothing left to do at once */
    /* garbage instead of a hello: reset at once, counted as a protocol error */
    door_send_raw(&cs[2], "GET / HTTP/1.1\r\n\r\n", 18);
    door_pump(srv, cs, 4);
    r = (int)recv(cs[2].fd, &byte, 1, MSG_DONTWAIT);
    CHECKF(r == 0 || (r < 0 && errno == ECONNRESET), "garbage: recv %d (errno %d)", r, errno);
    chat_server_stats(srv, &st);
    CHECK_INT(st.closed_protocol, 1);
    /* a stalled hello: reset by the handshake timer, as a stalled request head is */
    start = wsc_now_ms();
    for (;;) {
        chat_server_poll(srv, 50);
        r = (int)recv(cs[3].fd, &byte, 1, MSG_DONTWAIT);
        waited = wsc_now_ms() - start;
        if (r >= 0 || errno != EAGAIN || waited > 3000) break;
    }
    CHECKF(r == 0 || errno == ECONNRESET, "a stalled handshake was not dropped (recv %d, errno %d)", r, errno);
    CHECKF(waited >= 200 && waited < 2000, "dropped after %lld ms, the timeout is 300 ms", waited);
    chat_server_stats(srv, &st);
    CHECK_INT(st.closed_idle, 1);
    CHECK(door_has(&cs[1], "\"usernames\":[\"alice\",\"bob\"]"));
    chat_server_free(srv);
    for (i = 0; i < 4; i++) {
        close(cs[i].fd);
        free(cs[i].got.data);
    }
}

#ifdef __linux__
/* The embedder's loop: epoll, kept in step with chat_server_watches every turn. */
typedef struct door_epoll_loop {
    chat_server *srv;
    int result, turns;
} door_epoll_loop;

static void *door_epoll_main(void *arg) {
    door_epoll_loop *L = (door_epoll_loop *)arg;
    int ep = epoll_create1(EPOLL_CLOEXEC), cap = 4, known_cap = 0, *known = NULL, r = 1, i;
    chat_watch *w = (chat_watch *)malloc((size_t)cap * sizeof *w), ready[64];
    struct epoll_event evs[64];
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL); /* the harness's alarm is for the main thread */
    while (r > 0 && L->turns < 100000) {
        int n = chat_server_watches(L->srv, w, cap), k, got;
        if (n > cap) {
            cap = n * 2;
            w = (chat_watch *)realloc(w, (size_t)cap * sizeof *w);
            continue;
        }
        /* known[fd]: the events registered for fd + 1 (0: not registered) */
        for (k = 0; k < n; k++) {
            struct epoll_event ev;
            int fd = w[k].fd, want = (w[k].events & CHAT_WATCH_READ ? EPOLLIN : 0) | (w[k].events & CHAT_WATCH_WRITE ? EPOLLOUT : 0);
            if (fd >= known_cap) {
                int old = known_cap;
                known_cap = fd + 64;
                known = (int *)realloc(known, (size_t)known_cap * sizeof *known);
                for (i = old; i < known_cap; i++) known[i] = 0;
            }
            ev.events = (uint32_t)want, ev.data.fd = fd;
            if (!known[fd]) epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
            else if (known[fd] - 1 != want) epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
            known[fd] = want + 1;
            known[fd] |= 0x10000; /* seen this turn */
        }
        for (i = 0; i < known_cap; i++) { /* descriptors the server no longer has */
            if (known[i] & 0x10000) known[i] &= 0xFFFF;
            else if (known[i]) {
                epoll_ctl(ep, EPOLL_CTL_DEL, i, NULL); /* may be closed already: then epoll forgot it */
                known[i] = 0;
            }
        }
        got = epoll_wait(ep, evs, 64, chat_server_timeout(L->srv));
        for (k = 0; k < got; k++) {
            ready[k].fd = evs[k].data.fd;
            ready[k].events = (evs[k].events & EPOLLIN ? CHAT_WATCH_READ : 0) | (evs[k].events & EPOLLOUT ? CHAT_WATCH_WRITE : 0) |
                              (evs[k].events & (EPOLLERR | EPOLLHUP) ? CHAT_WATCH_ERROR : 0);
        }
        r = chat_server_process(L->srv, ready, got < 0 ? 0 : got);
        L->turns++;
    }
    L->result = r;
    free(w);
    free(known);
    close(ep);
    return NULL;
}

static void test_door_chat_from_an_epoll_loop(void) {
    chat_config cfg;
    door_epoll_loop L;
    pthread_t t;
    wsc a, b;
    wsc_msg m;
    int port;
    memset(&cfg, 0, sizeof cfg);
    cfg.max_per_address = -1, cfg.max_join_rate = -1, cfg.history = -1;
    memset(&L, 0, sizeof L);
    L.srv = chat_server_create(&cfg);
    CHECK(L.srv != NULL);
    if (!L.srv) return;
    CHECK_INT(chat_server_listen(L.srv, "127.0.0.1", 0), CHAT_OK);
    port = chat_server_port(L.srv);
    CHECK_INT(pthread_create(&t, NULL, door_epoll_main, &L), 0);
    CHECK_INT(wsc_connect(&a, "127.0.0.1", port, "/start_web_socket?username=ep-a"), 101);
    CHECK_INT(wsc_connect(&b, "127.0.0.1", port, "/start_web_socket?username=ep-b"), 101);
    wsc_send_text(&a, "{\"event\":\"send-message\",\"message\":\"over epoll\"}");
    for (;;) { /* b: the lists, then the message */
        int r = wsc_recv(&b, &m, 3000);
        int found = r == WSC_TEXT && strstr(m.data, "\"message\":\"over epoll\"") != NULL;
        wsc_msg_free(&m);
        if (found || r != WSC_TEXT) {
            CHECKF(found, "b did not get the message (%d)", r);
            break;
        }
    }
    chat_server_stop(L.srv);
    for (;;) { /* a: what was queued, then 1001 going away */
        int r = wsc_recv(&a, &m, 3000), code = m.code;
        wsc_msg_free(&m);
        if (r != WSC_TEXT) {
            CHECKF(r == WSC_CLOSE && code == 1001, "a got %d (code %d), not a close 1001", r, code);
            break;
        }
    }
    pthread_join(t, NULL);
    CHECK_INT(L.result, 0); /* chat_server_process said: stopped */
    wsc_close(&a);
    wsc_close(&b);
    chat_server_free(L.srv);
}
#endif

static void door_tests(void) {
    RUN(test_door_faults_at_every_step_of_a_chat);
    RUN(test_door_open_refused_and_close_once);
    RUN(test_door_handshake_and_pending_input);
#ifdef __linux__
    RUN(test_door_chat_from_an_epoll_loop);
#endif
}
