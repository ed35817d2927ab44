/* attack.c - issue 10, "keep the promise of bounded memory and fair service": every attack of
   the issue at once against one chat server, while a probe acts as a real user and the server's
   memory is measured. A standalone client (its own HTTP/1.1 and RFC 6455 code; it does not
   include chat.h); tests/attack/run.sh starts the servers, runs it and checks its figures.

   Build:  cc -std=c99 -Wall -Wextra -pedantic -Werror -O2 -o attack tests/attack/attack.c
   Run:    attack -p PORT -P SERVER_PID [--option value ...]          (attack -h lists them)

   The attacks, each its own group of connections, all at once for --duration ms. Groups A1-A4
   and A6 are spread round-robin over --addrs source addresses 127.0.0.2, 127.0.0.3, ...:
     A1 pipe      HTTP pipelining: an endless stream of GET /nope (--pipe-page connections:
                  GET /, the page) as fast as the socket takes it; never a read.
     A2 ping      joined WebSockets sending empty (--ping-empty) or 125-byte (--ping-full) pings
                  as fast as possible; never a read.
     A3 slow      joined WebSockets that never read (opened in --slow-waves waves), while the
                  talker, a joined client that reads normally, sends messages of --max-message
                  minus max(512, 1/16) bytes at --talk-rate per second: the server must close
                  them as too slow (the talker sees them leave the user list).
     A4 trickle   one GET /nope every --trickle-ms per connection, answers read, connection held.
     A5 churn     --churn addresses (127.0.0.100, ...) joining and leaving as fast as they can:
                  connect, upgrade, a close frame, close (reset).
     A6 frag      a text message opened with FIN=0, then endless empty continuation frames;
        pong      endless unsolicited pongs; neither reads.
     A7 hoard     --hoard-ws idle joined WebSockets from 127.0.0.200 (they read and answer
                  pings) and --hoard-http half-open HTTP heads from 127.0.0.201.
   A group member that the server closes or refuses comes back (a new connection, a new name)
   after a short pause, so each attack keeps its pressure up.

   The probe is a second process on 127.0.0.250, which no attack uses. Every --step-ms it fetches
   GET / (200 and the whole page, byte for byte as before the attack) and sends a message on its
   WebSocket (joined before the attack) that must come back to it; every --join-ms a new user
   joins from it and must see itself in the user list. Each step must finish within
   --step-timeout-ms, or it counts as failed ("stalled").

   Measurements: the server's VmRSS before and VmHWM at the end of the attack (/proc/PID/status);
   the kernel memory of the server's sockets (every socket whose local port is the server's, all
   states, orphans included) from `ss -tmnH state all '( sport = :PORT )'`: rmem_alloc (r) +
   wmem_queued (w), sampled every --sample-ms (r: what the server has not read yet; w: what it
   queued and the peer has not acknowledged - orphans included, which is where a closed slow
   reader's send buffer stays; wmem_alloc (t) is the part of w already handed to the device, so
   it is reported apart and not added); the system-wide TCP "mem" of /proc/net/sockstat, for
   reference only (it includes this client's own sockets). Then the attack clients close and the
   server's socket memory must fall to --after-kb with no FIN-WAIT-1 socket within --drain-ms;
   then a fresh user must join and hear its own message.

   Output: "measure NAME VALUE" lines (run.sh checks them), "info ..." lines, probe failures on
   stderr. Exit 0 when it ran (whatever it measured), 1 on a usage error. Every loop is bounded
   in time (the phase deadlines) and in count. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define FLOOD_SNDBUF (128 * 1024) /* bytes; the kernel doubles it */

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24 /* Linux 4.2: the port is chosen at connect(), per destination */
#endif

/* ------------------------------------------------------------------------------------------ */
/* options                                                                                    */

enum {
    K_PIPE_NOPE, K_PIPE_PAGE, K_PING_EMPTY, K_PING_FULL, K_SLOW, K_TALKER, K_TRICKLE, K_CHURN, K_FRAG, K_PONG,
    K_HOARD_WS, K_HOARD_HTTP, K_PROBE_HTTP, K_PROBE_WS, K_PROBE_JOIN, K_FRESH, NKINDS
};

static const struct kind_info {
    const char *group, *name;
    int ws;        /* upgrades to a WebSocket */
    int reads;     /* reads once it runs */
    int addr;      /* fixed source address (last octet), 0: spread over the pool */
    int retry_ms;  /* pause before a closed or refused member comes back */
} KI[NKINDS] = {
    {"A1", "pipe-nope", 0, 0, 0, 50},   {"A1", "pipe-page", 0, 0, 0, 50},  {"A2", "ping-empty", 1, 0, 0, 100},
    {"A2", "ping-full", 1, 0, 0, 100},  {"A3", "slow", 1, 0, 0, 500},      {"A3", "talker", 1, 1, 0, 100},
    {"A4", "trickle", 0, 1, 0, 200},    {"A5", "churn", 1, 1, 100, 0},     {"A6", "frag", 1, 0, 0, 100},
    {"A6", "pong", 1, 0, 0, 100},       {"A7", "hoard-ws", 1, 1, 200, 250}, {"A7", "hoard-http", 0, 1, 201, 250},
    {"P", "probe-http", 0, 1, 250, 0},  {"P", "probe-ws", 1, 1, 250, 0},   {"P", "probe-join", 1, 1, 250, 0},
    {"F", "fresh", 1, 1, 249, 0},
};

static struct {
    int port, pid;
    int count[NKINDS];
    int addrs, duration_ms, drain_ms, sample_ms, step_ms, step_timeout_ms, join_ms;
    int slow_waves, slow_wave_ms, talk_rate, max_message, trickle_ms, hoard_delay_ms;
    int after_kb, max_restarts;
} O;

static const struct option_row {
    const char *name;
    int *value;
    const char *help;
} OPTS[] = {
    {"--pipe-nope", &O.count[K_PIPE_NOPE], "A1: connections pipelining GET /nope"},
    {"--pipe-page", &O.count[K_PIPE_PAGE], "A1: connections pipelining GET / (the page)"},
    {"--ping-empty", &O.count[K_PING_EMPTY], "A2: WebSockets flooding empty pings"},
    {"--ping-full", &O.count[K_PING_FULL], "A2: WebSockets flooding 125-byte pings"},
    {"--slow", &O.count[K_SLOW], "A3: WebSockets that never read"},
    {"--slow-waves", &O.slow_waves, "A3: the slow readers join in this many waves"},
    {"--slow-wave-ms", &O.slow_wave_ms, "A3: ms between two waves"},
    {"--talk-rate", &O.talk_rate, "A3: the talker's messages per second"},
    {"--max-message", &O.max_message, "the server's CHAT_MAX_MESSAGE: the talker's messages are this minus max(512, 1/16)"},
    {"--trickle", &O.count[K_TRICKLE], "A4: keep-alive connections"},
    {"--trickle-ms", &O.trickle_ms, "A4: ms between two requests on one connection"},
    {"--churn", &O.count[K_CHURN], "A5: addresses joining and leaving (one connection each)"},
    {"--frag", &O.count[K_FRAG], "A6: WebSockets sending endless empty continuations"},
    {"--pong", &O.count[K_PONG], "A6: WebSockets sending endless pongs"},
    {"--hoard-ws", &O.count[K_HOARD_WS], "A7: idle joined WebSockets from 127.0.0.200"},
    {"--hoard-http", &O.count[K_HOARD_HTTP], "A7: half-open HTTP requests from 127.0.0.201"},
    {"--hoard-delay-ms", &O.hoard_delay_ms, "A7: starts this long after the others"},
    {"--addrs", &O.addrs, "source addresses for A1-A4 and A6 (127.0.0.2 ...), at most 95"},
    {"--duration", &O.duration_ms, "ms of attack"},
    {"--drain-ms", &O.drain_ms, "ms allowed for the socket memory to fall after the attack clients close"},
    {"--after-kb", &O.after_kb, "socket memory (KiB) that counts as drained"},
    {"--sample-ms", &O.sample_ms, "ms between two samples of the server's socket memory"},
    {"--step-ms", &O.step_ms, "probe: ms between two GET / and between two messages"},
    {"--join-ms", &O.join_ms, "probe: ms between two fresh joins"},
    {"--step-timeout-ms", &O.step_timeout_ms, "probe: a step not done in this time failed (stalled)"},
    {"--max-restarts", &O.max_restarts, "bound on the reconnections of one group"},
};

static void defaults(void) {
    O.count[K_PIPE_NOPE] = 128, O.count[K_PIPE_PAGE] = 32, O.count[K_PING_EMPTY] = 4, O.count[K_PING_FULL] = 4;
    O.count[K_SLOW] = 60, O.count[K_TALKER] = 1, O.count[K_TRICKLE] = 70, O.count[K_CHURN] = 3;
    O.count[K_FRAG] = 1, O.count[K_PONG] = 1, O.count[K_HOARD_WS] = 35, O.count[K_HOARD_HTTP] = 35;
    O.count[K_PROBE_HTTP] = O.count[K_PROBE_WS] = O.count[K_PROBE_JOIN] = 1;
    O.addrs = 40, O.duration_ms = 15000, O.drain_ms = 10000, O.sample_ms = 500, O.step_ms = 1000;
    O.step_timeout_ms = 5000, O.join_ms = 3000, O.slow_waves = 3, O.slow_wave_ms = 2000, O.talk_rate = 20;
    O.max_message = 65536, O.trickle_ms = 2000, O.hoard_delay_ms = 500, O.after_kb = 1024, O.max_restarts = 200000;
}

/* ------------------------------------------------------------------------------------------ */
/* time, randomness, buffers                                                                  */

static long long mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static long long t0; /* the attack's start: the time base of every report */

static uint32_t rng_s = 2463534242u;
static uint32_t rng(void) { /* xorshift32: masks need not be secret here, only varied */
    rng_s ^= rng_s << 13, rng_s ^= rng_s >> 17, rng_s ^= rng_s << 5;
    return rng_s;
}

typedef struct buf {
    unsigned char *p;
    size_t len, cap;
} buf;

static void die(const char *what) {
    fprintf(stderr, "attack: %s\n", what);
    exit(2);
}

static unsigned char *buf_room(buf *b, size_t more) {
    if (b->len + more > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        unsigned char *p;
        while (cap < b->len + more) cap *= 2;
        p = (unsigned char *)realloc(b->p, cap);
        if (!p) die("out of memory");
        b->p = p, b->cap = cap;
    }
    return b->p + b->len;
}

static void buf_add(buf *b, const void *p, size_t n) {
    memcpy(buf_room(b, n), p, n);
    b->len += n;
}

static void buf_consume(buf *b, size_t n) {
    memmove(b->p, b->p + n, b->len - n);
    b->len -= n;
}

static void buf_free(buf *b) {
    free(b->p);
    b->p = NULL, b->len = b->cap = 0;
}

/* A masked client frame (RFC 6455 5.2), appended to b. */
static void frame_add(buf *b, int fin, int opcode, const void *payload, size_t n) {
    unsigned char h[14], *p;
    size_t hl = 2, i;
    uint32_t m = rng();
    h[0] = (unsigned char)((fin ? 0x80 : 0) | opcode);
    if (n < 126) h[1] = (unsigned char)(0x80 | n);
    else if (n <= 0xFFFF) h[1] = 0x80 | 126, h[2] = (unsigned char)(n >> 8), h[3] = (unsigned char)n, hl = 4;
    else {
        h[1] = 0x80 | 127, hl = 10;
        for (i = 0; i < 8; i++) h[2 + i] = (unsigned char)((uint64_t)n >> (56 - 8 * i));
    }
    memcpy(h + hl, &m, 4);
    buf_add(b, h, hl + 4);
    p = buf_room(b, n);
    for (i = 0; i < n; i++) p[i] = ((const unsigned char *)payload)[i] ^ h[hl + (i & 3)];
    b->len += n;
}

/* ------------------------------------------------------------------------------------------ */
/* the endless streams: whole units repeated to about 64 KiB, sent cyclically                 */

enum { P_NOPE, P_PAGE, P_PING0, P_PING125, P_CONT0, P_PONG0, NPATS };
static buf pats[NPATS];
static size_t pat_unit[NPATS]; /* bytes per request or frame */

static void build_patterns(void) {
    static const char nope[] = "GET /nope HTTP/1.1\r\nHost: h\r\n\r\n", page[] = "GET / HTTP/1.1\r\nHost: h\r\n\r\n";
    unsigned char junk[125];
    int i;
    memset(junk, 'p', sizeof junk);
    for (i = 0; i < NPATS; i++) {
        while (pats[i].len < 60000) {
            size_t before = pats[i].len;
            switch (i) {
            case P_NOPE: buf_add(&pats[i], nope, sizeof nope - 1); break;
            case P_PAGE: buf_add(&pats[i], page, sizeof page - 1); break;
            case P_PING0: frame_add(&pats[i], 1, 0x9, NULL, 0); break;
            case P_PING125: frame_add(&pats[i], 1, 0x9, junk, sizeof junk); break;
            case P_CONT0: frame_add(&pats[i], 0, 0x0, NULL, 0); break;
            default: frame_add(&pats[i], 1, 0xA, NULL, 0); break;
            }
            pat_unit[i] = pats[i].len - before;
        }
    }
}

/* ------------------------------------------------------------------------------------------ */
/* connections                                                                                */

enum { S_OFF, S_IDLE, S_CONNECTING, S_HEAD, S_RUN };

typedef struct conn {
    int fd, kind, st, addr, member;
    long long t;        /* the next timed action (start, request, message, step); 0: none */
    long long since;    /* when the current exchange or probe step started */
    long long deadline; /* probe steps: when the step fails; 0: none */
    buf out;            /* bytes that go before any stream */
    size_t out_off;
    int pat;            /* the endless stream once running, or -1 */
    size_t pat_off;
    buf in;             /* received and not yet parsed */
    buf msg;            /* the WebSocket message being assembled */
    int head_done, status;
    size_t body_len;
    int pending;        /* trickle: a request is out; probe: a step is in flight */
    int late_counted;
    unsigned seq;
    char name[40];
} conn;

static conn *conns;
static int nconns;
static int attacking;   /* members come back after a close only while this is set */
static struct sockaddr_in server;

static struct gstat {
    long long opened, connect_fail, joined, refused, dropped, bytes_out, answers, late, max_answer_ms;
    int held, held_max, restarts;
} ST[NKINDS];

/* probe results */
static struct pstat {
    long long ok, fail, max_ms;
} PR[NKINDS];
static buf page;              /* GET / as served before the attack */
static int page_known;

/* A3: slow-reader instances as the talker sees them in the user lists */
#define MAX_SLOW_IDS 65536
static unsigned char slow_seen[MAX_SLOW_IDS], slow_gone[MAX_SLOW_IDS];
static long long slow_seen_n, slow_gone_n, talk_sent, talk_skipped;
static unsigned name_counter[NKINDS];

static int fresh_done = -1; /* the final join: -1 running, 0 failed, 1 ok */

static long long rel_ms(void) { return mono_ms() - t0; }

static void probe_fail(conn *c, const char *what) {
    PR[c->kind].fail++;
    fprintf(stderr, "probe: +%.1f s: %s %s\n", (double)rel_ms() / 1000.0, KI[c->kind].name, what);
}

static void probe_ok(conn *c) {
    long long ms = mono_ms() - c->since;
    PR[c->kind].ok++;
    if (ms > PR[c->kind].max_ms) PR[c->kind].max_ms = ms;
}

static void set_held(conn *c, int on) {
    struct gstat *g = &ST[c->kind];
    g->held += on ? 1 : -1;
    if (g->held > g->held_max) g->held_max = g->held;
}

static void conn_close_fd(conn *c) {
    if (c->fd >= 0) close(c->fd);
    if (c->st == S_RUN) set_held(c, 0);
    c->fd = -1;
    buf_free(&c->in), buf_free(&c->msg), buf_free(&c->out);
    c->out_off = 0, c->pat = -1, c->pat_off = 0, c->head_done = 0, c->pending = 0;
}

/* A probe step is over (done, failed or cut short): when the next one starts. */
static void probe_next(conn *c) {
    long long now = mono_ms();
    c->pending = 0, c->deadline = 0;
    if (c->kind == K_FRESH) {
        c->t = 0;
        return;
    }
    c->t = c->since + (c->kind == K_PROBE_JOIN ? O.join_ms : O.step_ms);
    if (c->t < now) c->t = now;
}

/* The member stops; it comes back after its group's pause while the attack lasts (the probe:
   at its next step). */
static void conn_drop(conn *c, int extra_ms) {
    int was_running = c->st == S_RUN;
    conn_close_fd(c);
    c->st = S_OFF, c->t = 0;
    if (c->kind >= K_PROBE_HTTP) {
        c->st = c->kind == K_FRESH ? S_OFF : S_IDLE;
        probe_next(c);
        return;
    }
    ST[c->kind].dropped += was_running;
    if (attacking && ST[c->kind].restarts < O.max_restarts) {
        ST[c->kind].restarts++;
        c->st = S_IDLE;
        c->t = mono_ms() + KI[c->kind].retry_ms + extra_ms;
    }
}

static void queue(conn *c, const void *p, size_t n) { buf_add(&c->out, p, n); }

static void queue_upgrade(conn *c) {
    char req[512];
    int n;
    snprintf(c->name, sizeof c->name, "%s-%u", KI[c->kind].name, name_counter[c->kind]++);
    n = snprintf(req, sizeof req,
                 "GET /start_web_socket?username=%s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
                 c->name, O.port);
    queue(c, req, (size_t)n);
}

static void conn_start(conn *c) {
    struct sockaddr_in src;
    int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    ST[c->kind].opened++;
    c->since = mono_ms();
    if (fd < 0) {
        ST[c->kind].connect_fail++;
        if (c->kind >= K_PROBE_HTTP) probe_fail(c, "no socket");
        conn_drop(c, 200);
        return;
    }
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (c->kind <= K_PING_FULL || c->kind == K_FRAG || c->kind == K_PONG) {
        /* A flood's own send queue would autotune to megabytes on this machine (whose TCP
           memory the server's sockets share); what the server sees does not depend on it. */
        int sndbuf = FLOOD_SNDBUF;
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    }
    memset(&src, 0, sizeof src);
    src.sin_family = AF_INET;
    src.sin_addr.s_addr = htonl(0x7F000000u | (uint32_t)c->addr);
    c->fd = fd;
    if (bind(fd, (struct sockaddr *)&src, sizeof src) < 0 ||
        (connect(fd, (struct sockaddr *)&server, sizeof server) < 0 && errno != EINPROGRESS)) {
        ST[c->kind].connect_fail++;
        if (c->kind >= K_PROBE_HTTP) probe_fail(c, "connect failed");
        if (c->kind == K_FRESH) fresh_done = 0;
        conn_drop(c, 200);
        return;
    }
    c->st = S_CONNECTING;
}

/* Connected: what each kind sends first. */
static void conn_connected(conn *c) {
    static const char nope[] = "GET /nope HTTP/1.1\r\nHost: h\r\n\r\n";
    char req[256];
    int n;
    switch (c->kind) {
    case K_PIPE_NOPE: c->pat = P_NOPE, c->st = S_RUN, set_held(c, 1); break;
    case K_PIPE_PAGE: c->pat = P_PAGE, c->st = S_RUN, set_held(c, 1); break;
    case K_TRICKLE:
        c->st = S_RUN, set_held(c, 1);
        queue(c, nope, sizeof nope - 1);
        c->pending = 1, c->late_counted = 0, c->since = mono_ms(), c->t = c->since + O.trickle_ms;
        break;
    case K_HOARD_HTTP: /* a request head that never ends */
        c->st = S_RUN, set_held(c, 1);
        n = snprintf(req, sizeof req, "GET / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUser-Agent: hoard\r\n", O.port);
        queue(c, req, (size_t)n);
        break;
    case K_PROBE_HTTP:
        c->st = S_RUN;
        n = snprintf(req, sizeof req, "GET / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n", O.port);
        queue(c, req, (size_t)n);
        break;
    default: /* every WebSocket */
        c->st = S_HEAD;
        queue_upgrade(c);
        break;
    }
}

static void send_probe_message(conn *c) {
    char text[128];
    int n = snprintf(text, sizeof text, "{\"event\":\"send-message\",\"message\":\"probe:%u\"}", c->seq);
    frame_add(&c->out, 1, 0x1, text, (size_t)n);
}

static void send_talk(conn *c) {
    static const char pre[] = "{\"event\":\"send-message\",\"message\":\"", post[] = "\"}";
    size_t total = (size_t)O.max_message - ((size_t)O.max_message / 16 > 512 ? (size_t)O.max_message / 16 : 512);
    size_t text = total - (sizeof pre - 1) - (sizeof post - 1);
    buf m = {NULL, 0, 0};
    char head[32];
    int hn = snprintf(head, sizeof head, "talk:%lld:", talk_sent);
    buf_add(&m, pre, sizeof pre - 1);
    buf_add(&m, head, (size_t)hn);
    memset(buf_room(&m, text - (size_t)hn), 't', text - (size_t)hn);
    m.len += text - (size_t)hn;
    buf_add(&m, post, sizeof post - 1);
    frame_add(&c->out, 1, 0x1, m.p, m.len);
    buf_free(&m);
    talk_sent++;
}

/* The upgrade answered 101: the member runs. */
static void conn_upgraded(conn *c) {
    c->st = S_RUN;
    set_held(c, 1);
    ST[c->kind].joined++;
    switch (c->kind) {
    case K_PING_EMPTY: c->pat = P_PING0; break;
    case K_PING_FULL: c->pat = P_PING125; break;
    case K_FRAG:
        frame_add(&c->out, 0, 0x1, "{\"event\":\"send-message\",\"message\":\"", 36); /* FIN=0: never finished */
        c->pat = P_CONT0;
        break;
    case K_PONG: c->pat = P_PONG0; break;
    case K_TALKER: c->t = mono_ms(); break;
    case K_CHURN: { /* leave at once: a close frame, then a reset (no TIME-WAIT on either side) */
        struct linger lg;
        unsigned char code[2] = {0x03, 0xE8};
        frame_add(&c->out, 1, 0x8, code, 2);
        (void)send(c->fd, c->out.p, c->out.len, MSG_NOSIGNAL);
        lg.l_onoff = 1, lg.l_linger = 0;
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        c->st = S_HEAD; /* so that the drop below does not count a running member */
        set_held(c, 0);
        conn_drop(c, 0);
        break;
    }
    case K_PROBE_WS:
    case K_FRESH:
        c->seq++;
        send_probe_message(c);
        break;
    default: break;
    }
}

/* ------------------------------------------------------------------------------------------ */
/* what the server says                                                                       */

static int has(const unsigned char *p, size_t n, const char *needle) {
    return memmem(p, n, needle, strlen(needle)) != NULL;
}

/* The talker: which slow readers are in this user list, and which have gone since. */
static void track_slow(const unsigned char *m, size_t n) {
    static unsigned char present[MAX_SLOW_IDS];
    static const char key[] = "\"slow-";
    const unsigned char *p = m, *end = m + n;
    unsigned i;
    memset(present, 0, sizeof present);
    while (p < end) {
        const unsigned char *q = (const unsigned char *)memmem(p, (size_t)(end - p), key, sizeof key - 1);
        unsigned long v = 0;
        int digits = 0;
        if (!q) break;
        p = q + sizeof key - 1;
        while (p < end && *p >= '0' && *p <= '9' && digits < 6) v = v * 10 + (unsigned long)(*p++ - '0'), digits++;
        if (digits && p < end && *p == '"' && v < MAX_SLOW_IDS) present[v] = 1;
    }
    for (i = 0; i < MAX_SLOW_IDS && i < name_counter[K_SLOW]; i++) {
        if (present[i] && !slow_seen[i]) slow_seen[i] = 1, slow_seen_n++;
        if (!present[i] && slow_seen[i] && !slow_gone[i]) slow_gone[i] = 1, slow_gone_n++;
    }
}

static void on_message(conn *c, const unsigned char *m, size_t n) {
    char want[96];
    int users = has(m, n < 64 ? n : 64, "\"update-users\"");
    switch (c->kind) {
    case K_TALKER:
        if (users) track_slow(m, n);
        break;
    case K_PROBE_WS:
    case K_FRESH:
        if (!c->pending || users) break;
        snprintf(want, sizeof want, "\"username\":\"%s\"", c->name);
        if (!has(m, n, want)) break;
        snprintf(want, sizeof want, "\"message\":\"probe:%u\"", c->seq);
        if (!has(m, n, want)) break;
        c->pending = 0, c->deadline = 0;
        if (c->kind == K_FRESH) {
            fresh_done = 1;
            conn_close_fd(c);
            c->st = S_OFF;
            return;
        }
        probe_ok(c);
        probe_next(c);
        break;
    case K_PROBE_JOIN:
        snprintf(want, sizeof want, "\"%s\"", c->name);
        if (!c->pending || !users || !has(m, n, want)) break;
        probe_ok(c);
        probe_next(c);
        conn_close_fd(c);
        c->st = S_IDLE;
        break;
    default: break;
    }
}

/* Complete server frames at the front of c->in. 0, or -1 when the server closed or broke the
   protocol (the member is dropped by the caller). */
static int ws_parse(conn *c) {
    size_t pos = 0;
    int keep = c->kind == K_TALKER || c->kind >= K_PROBE_HTTP;
    while (c->in.len - pos >= 2 && c->fd >= 0) {
        const unsigned char *h = c->in.p + pos;
        size_t hl = 2, i;
        uint64_t n = h[1] & 0x7F;
        int op = h[0] & 0x0F, fin = h[0] >> 7;
        if (h[1] & 0x80) return -1; /* a server never masks */
        if (n == 126) hl = 4;
        else if (n == 127) hl = 10;
        if (c->in.len - pos < hl) break;
        if (n == 126) n = (uint64_t)h[2] << 8 | h[3];
        else if (n == 127)
            for (n = 0, i = 0; i < 8; i++) n = n << 8 | h[2 + i];
        if (n > (1u << 24)) return -1;
        if (c->in.len - pos - hl < n) break;
        if (op == 0x8) return -1;
        if (op == 0x9) frame_add(&c->out, 1, 0xA, h + hl, (size_t)n);
        else if (op != 0xA && keep) {
            if (op != 0) c->msg.len = 0;
            buf_add(&c->msg, h + hl, (size_t)n);
            if (fin) {
                on_message(c, c->msg.p, c->msg.len);
                if (c->fd < 0) return 0; /* done with it (a probe step) */
                c->msg.len = 0;
            }
        }
        pos += hl + (size_t)n;
    }
    buf_consume(&c->in, pos);
    return 0;
}

/* An HTTP response head at the front of c->in: its length, 0 if incomplete, -1 if malformed.
   Sets c->status and c->body_len (Content-Length). */
static long http_head(conn *c) {
    unsigned char *end = (unsigned char *)memmem(c->in.p, c->in.len, "\r\n\r\n", 4);
    const char *p;
    size_t hl;
    if (!end) return c->in.len > 16384 ? -1 : 0;
    hl = (size_t)(end - c->in.p) + 4;
    if (c->in.len < 12 || memcmp(c->in.p, "HTTP/1.", 7) != 0) return -1;
    c->status = atoi((const char *)c->in.p + 9);
    c->body_len = 0;
    for (p = (const char *)c->in.p; p && p < (const char *)end; p = (const char *)memchr(p, '\n', (size_t)((const char *)end - p))) {
        if (*p == '\n') p++;
        if (strncasecmp(p, "content-length:", 15) == 0) c->body_len = (size_t)strtoul(p + 15, NULL, 10);
    }
    return (long)hl;
}

/* Whole responses at the front of c->in (trickle, probe GET /). 0, or -1: drop the member. */
static int http_parse(conn *c) {
    while (c->fd >= 0) {
        if (!c->head_done) {
            long hl = http_head(c);
            if (hl < 0) return -1;
            if (hl == 0) break;
            buf_consume(&c->in, (size_t)hl);
            c->head_done = 1;
        }
        if (c->in.len < c->body_len) break;
        c->head_done = 0;
        if (c->kind == K_TRICKLE) {
            long long ms = mono_ms() - c->since;
            ST[c->kind].answers++;
            if (ms > ST[c->kind].max_answer_ms) ST[c->kind].max_answer_ms = ms;
            c->pending = 0;
        } else if (c->kind == K_PROBE_HTTP) {
            char why[96];
            int full = page_known && c->body_len == page.len && memcmp(c->in.p, page.p, page.len) == 0;
            c->pending = 0, c->deadline = 0;
            if (!page_known && c->status == 200 && c->body_len > 0) { /* the reference, before the attack */
                buf_add(&page, c->in.p, c->body_len);
                page_known = 1, full = 1;
            }
            if (c->status == 200 && full) probe_ok(c);
            else {
                snprintf(why, sizeof why, "GET / answered %d with %lu bytes (want 200 with %lu)", c->status,
                         (unsigned long)c->body_len, (unsigned long)page.len);
                probe_fail(c, why);
            }
            probe_next(c);
            conn_close_fd(c);
            c->st = S_IDLE;
            return 0;
        }
        buf_consume(&c->in, c->body_len);
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* the event loop                                                                             */

static void on_readable(conn *c) {
    ssize_t n;
    int r = 0;
    unsigned char *room = buf_room(&c->in, 65536);
    n = recv(c->fd, room, 65536, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
    if (n <= 0) {
        if (c->kind >= K_PROBE_HTTP) probe_fail(c, n == 0 ? "closed by the server" : "reset by the server");
        if (c->kind == K_FRESH) fresh_done = 0;
        conn_drop(c, 0);
        return;
    }
    c->in.len += (size_t)n;
    if (c->st == S_HEAD) {
        long hl = http_head(c);
        if (hl == 0) return;
        if (hl < 0 || c->status != 101) {
            ST[c->kind].refused++;
            if (c->kind >= K_PROBE_HTTP) {
                char why[64];
                snprintf(why, sizeof why, "join answered %d, not 101", hl < 0 ? -1 : c->status);
                probe_fail(c, why);
                if (c->kind == K_FRESH) fresh_done = 0;
            }
            conn_drop(c, c->kind == K_CHURN ? 10 : 0);
            return;
        }
        buf_consume(&c->in, (size_t)hl);
        conn_upgraded(c);
        if (c->fd < 0) return;
        if (!KI[c->kind].reads) {
            buf_free(&c->in);
            return;
        }
    }
    if (c->st != S_RUN) return;
    if (c->kind == K_HOARD_HTTP) r = -1; /* an answer means the server gave up on the head */
    else if (KI[c->kind].ws) r = ws_parse(c);
    else r = http_parse(c);
    if (r < 0) {
        if (c->kind >= K_PROBE_HTTP) probe_fail(c, "closed by the server (close frame or bad data)");
        if (c->kind == K_FRESH) fresh_done = 0;
        conn_drop(c, 0);
    }
}

static void on_writable(conn *c) {
    int i;
    if (c->st == S_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err) {
            ST[c->kind].connect_fail++;
            if (c->kind >= K_PROBE_HTTP) probe_fail(c, "connect failed");
            if (c->kind == K_FRESH) fresh_done = 0;
            conn_drop(c, 200);
            return;
        }
        conn_connected(c);
    }
    for (i = 0; i < 8 && c->fd >= 0; i++) {
        const unsigned char *p;
        size_t n;
        ssize_t k;
        int from_out = c->out_off < c->out.len;
        if (from_out) p = c->out.p + c->out_off, n = c->out.len - c->out_off;
        else if (c->pat >= 0 && c->st == S_RUN) p = pats[c->pat].p + c->pat_off, n = pats[c->pat].len - c->pat_off;
        else break;
        k = send(c->fd, p, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        if (k < 0) {
            if (c->kind >= K_PROBE_HTTP) probe_fail(c, "send failed (reset by the server)");
            if (c->kind == K_FRESH) fresh_done = 0;
            conn_drop(c, 0);
            return;
        }
        ST[c->kind].bytes_out += k;
        if (from_out) {
            c->out_off += (size_t)k;
            if (c->out_off == c->out.len) c->out.len = c->out_off = 0;
        } else {
            c->pat_off = (c->pat_off + (size_t)k) % pats[c->pat].len;
        }
        if ((size_t)k < n) break;
    }
}

static short want_events(const conn *c) {
    short ev = 0;
    if (c->fd < 0) return 0;
    if (c->st == S_CONNECTING) return POLLOUT;
    if (c->out_off < c->out.len || (c->st == S_RUN && c->pat >= 0)) ev |= POLLOUT;
    if (c->st == S_HEAD || (c->st == S_RUN && KI[c->kind].reads)) ev |= POLLIN;
    return ev;
}

/* Timed actions: starts, requests, messages, probe steps and their deadlines. */
static void on_time(conn *c, long long now) {
    if (c->deadline && now >= c->deadline && c->pending) {
        char why[96];
        snprintf(why, sizeof why, "stalled: step not done in %d ms (state %s)", O.step_timeout_ms,
                 c->st == S_CONNECTING ? "connecting" : c->st == S_HEAD ? "waiting for 101" : "waiting for the answer");
        c->pending = 0, c->deadline = 0;
        if (c->kind == K_FRESH) {
            fresh_done = 0;
            conn_close_fd(c);
            c->st = S_OFF;
            fprintf(stderr, "attack: the fresh join after the attack %s\n", why);
            return;
        }
        probe_fail(c, why);
        if (c->kind != K_PROBE_WS || c->st != S_RUN) { /* a connected WebSocket stays: the next step uses it */
            conn_close_fd(c);
            c->st = S_IDLE;
        }
        probe_next(c);
    }
    if (!c->t || now < c->t) return;
    switch (c->st) {
    case S_IDLE:
        c->t = 0;
        conn_start(c);
        if (c->kind >= K_PROBE_HTTP && c->fd >= 0) c->pending = 1, c->deadline = c->since + O.step_timeout_ms;
        break;
    case S_RUN:
        if (c->kind == K_TALKER) {
            if (c->out_off < c->out.len) talk_skipped++; /* the last one is not out yet */
            else send_talk(c);
            c->t += O.talk_rate >= 1000 ? 1 : 1000 / (O.talk_rate > 0 ? O.talk_rate : 1);
            if (c->t < now) c->t = now;
        } else if (c->kind == K_TRICKLE) {
            static const char nope[] = "GET /nope HTTP/1.1\r\nHost: h\r\n\r\n";
            if (c->pending && !c->late_counted && now - c->since > O.step_timeout_ms) ST[c->kind].late++, c->late_counted = 1;
            if (!c->pending) {
                queue(c, nope, sizeof nope - 1);
                c->pending = 1, c->late_counted = 0, c->since = now;
            }
            c->t = now + O.trickle_ms;
        } else if (c->kind == K_PROBE_WS && !c->pending) {
            c->seq++;
            send_probe_message(c);
            c->pending = 1, c->since = now, c->deadline = now + O.step_timeout_ms, c->t = 0;
        } else {
            c->t = 0;
        }
        break;
    default: break;
    }
}

static struct pollfd *pfds;
static int *pmap;

/* One turn: poll every live member (at most max_wait ms), then handle what is ready and due. */
static void loop_turn(int max_wait) {
    long long now = mono_ms(), due = now + max_wait;
    int i, n = 0, r;
    for (i = 0; i < nconns; i++) {
        conn *c = &conns[i];
        if (c->t && c->t < due) due = c->t;
        if (c->deadline && c->deadline < due) due = c->deadline;
        if (c->fd < 0) continue;
        pfds[n].fd = c->fd, pfds[n].events = want_events(c), pfds[n].revents = 0;
        pmap[n++] = i;
    }
    r = poll(pfds, (nfds_t)n, due > now ? (int)(due - now) : 0);
    if (r < 0 && errno != EINTR) die("poll failed");
    for (i = 0; r > 0 && i < n; i++) {
        conn *c = &conns[pmap[i]];
        short re = pfds[i].revents;
        if (!re || c->fd != pfds[i].fd) continue;
        if (re & (POLLERR | POLLHUP) && !(re & POLLIN)) {
            if (c->st == S_CONNECTING) on_writable(c); /* SO_ERROR says why */
            else {
                if (c->kind >= K_PROBE_HTTP) probe_fail(c, "reset by the server");
                if (c->kind == K_FRESH) fresh_done = 0;
                conn_drop(c, 0);
            }
            continue;
        }
        if (re & POLLIN) on_readable(c);
        if (c->fd >= 0 && (re & POLLOUT || (c->out_off < c->out.len && c->st != S_CONNECTING))) on_writable(c);
    }
    now = mono_ms();
    for (i = 0; i < nconns; i++) on_time(&conns[i], now);
}

/* ------------------------------------------------------------------------------------------ */
/* measurements                                                                               */

static long proc_kb(const char *key) { /* VmRSS:, VmHWM: of the server; -1 if unknown */
    char path[64], line[256];
    long v = -1;
    size_t kl = strlen(key);
    FILE *f;
    snprintf(path, sizeof path, "/proc/%d/status", O.pid);
    if (O.pid <= 0 || !(f = fopen(path, "r"))) return -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, key, kl) == 0) v = strtol(line + kl, NULL, 10);
    fclose(f);
    return v;
}

static long sockstat_tcp_kb(void) { /* system-wide TCP memory, pages -> KiB; -1 if unknown */
    char line[256];
    long v = -1;
    FILE *f = fopen("/proc/net/sockstat", "r");
    if (!f) return -1;
    while (fgets(line, sizeof line, f)) {
        const char *m = strstr(line, " mem ");
        if (strncmp(line, "TCP:", 4) == 0 && m) v = strtol(m + 5, NULL, 10) * (sysconf(_SC_PAGESIZE) / 1024);
    }
    fclose(f);
    return v;
}

typedef struct sample {
    long long r, w, t, fw1_rw;
    int ok, sockets, fw1;
} sample;

/* The kernel memory of the server's sockets, from ss (skmem on the socket's own line or the next). */
static sample ss_sample(void) {
    char cmd[160], line[1024], state[32] = "";
    int orphan = 0; /* closed by the server and so no longer its own: what a plain close() leaves */
    sample s;
    FILE *f;
    memset(&s, 0, sizeof s);
    snprintf(cmd, sizeof cmd, "ss -tmnpH state all '( sport = :%d )' 2>/dev/null", O.port);
    if (!(f = popen(cmd, "r"))) return s;
    while (fgets(line, sizeof line, f)) {
        const char *m;
        if (line[0] != ' ' && line[0] != '\t' && line[0] != '\n') {
            if (sscanf(line, "%31s", state) == 1) s.sockets++;
            orphan = strcmp(state, "FIN-WAIT-1") == 0 && !strstr(line, "users:(");
            if (orphan) s.fw1++;
        }
        if ((m = strstr(line, "skmem:(")) != NULL) {
            long long r = 0, t = 0, w = 0;
            const char *p;
            if ((p = strstr(m, "(r")) != NULL) r = strtoll(p + 2, NULL, 10);
            if ((p = strstr(m, ",t")) != NULL) t = strtoll(p + 2, NULL, 10);
            if ((p = strstr(m, ",w")) != NULL) w = strtoll(p + 2, NULL, 10);
            s.r += r, s.t += t, s.w += w;
            if (orphan) s.fw1_rw += r + w;
        }
    }
    s.ok = pclose(f) == 0;
    return s;
}

static void measure(const char *name, long long v, const char *what) {
    printf("measure %-26s %12lld   %s\n", name, v, what);
}

/* ------------------------------------------------------------------------------------------ */
/* setup                                                                                      */

static conn *add_conn(int kind, int addr, int member, long long start) {
    conn *c = &conns[nconns++];
    memset(c, 0, sizeof *c);
    c->fd = -1, c->kind = kind, c->addr = addr, c->member = member, c->pat = -1;
    c->st = S_IDLE, c->t = start;
    return c;
}

static void usage(FILE *f) {
    size_t i;
    fprintf(f, "usage: attack -p PORT -P SERVER_PID [--option value ...]\n"
               "  the server listens on 127.0.0.1:PORT; SERVER_PID is for /proc/PID/status\n");
    for (i = 0; i < sizeof OPTS / sizeof OPTS[0]; i++) fprintf(f, "  %-18s %s (%d)\n", OPTS[i].name, OPTS[i].help, *OPTS[i].value);
}

static int parse_args(int argc, char **argv) {
    int i;
    for (i = 1; i < argc; i++) {
        char *end;
        long v;
        size_t k;
        int *target = NULL;
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            exit(0);
        }
        if (!strcmp(argv[i], "-p")) target = &O.port;
        else if (!strcmp(argv[i], "-P")) target = &O.pid;
        for (k = 0; !target && k < sizeof OPTS / sizeof OPTS[0]; k++)
            if (!strcmp(argv[i], OPTS[k].name)) target = OPTS[k].value;
        if (!target || i + 1 >= argc) return -1;
        v = strtol(argv[++i], &end, 10);
        if (*end || v < 0 || v > 100000000) return -1;
        *target = (int)v;
    }
    if (O.port <= 0 || O.port > 65535 || O.addrs < 1 || O.addrs > 95 || O.max_message < 1024 || O.step_ms < 1 ||
        O.slow_waves < 1 || O.count[K_CHURN] > 90)
        return -1;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* the probe: a second process, a real user throughout the attack                             */

static void probe_main(int ready_fd, int ctl_fd) {
    long long start = mono_ms(), hard_end = start + O.duration_ms + 60000, now;
    conn *ws, *join;
    int ready = 0, turns = 0;
    nconns = 0;
    add_conn(K_PROBE_HTTP, KI[K_PROBE_HTTP].addr, 0, start);
    ws = add_conn(K_PROBE_WS, KI[K_PROBE_WS].addr, 0, 0);
    join = add_conn(K_PROBE_JOIN, KI[K_PROBE_JOIN].addr, 0, 0);
    /* Before the attack: the reference page, then the WebSocket joined and heard once. The
       results of these first steps count like any other. */
    while ((now = mono_ms()) < hard_end && turns++ < 10000000) {
        struct pollfd ctl;
        if (!ready && (page_known || PR[K_PROBE_HTTP].fail) && !ws->t && !ws->pending && ws->st == S_IDLE) {
            ws->t = now; /* the page is done (or failed): now the WebSocket */
        } else if (!ready && ws->st == S_RUN && !ws->pending) {
            ready = 1;
            join->t = now;
            if (write(ready_fd, "R", 1) != 1) break;
        } else if (!ready && now - start > 2 * O.step_timeout_ms + 1000) {
            ready = 1; /* it could not get going: the attack starts anyway, the failures are counted */
            join->t = now;
            if (write(ready_fd, "R", 1) != 1) break;
        }
        ctl.fd = ctl_fd, ctl.events = POLLIN, ctl.revents = 0;
        if (poll(&ctl, 1, 0) > 0) break; /* "stop", or the parent is gone */
        if (ready == 1) t0 = mono_ms(), ready = 2; /* the parent's time base, near enough */
        loop_turn(50);
    }
    /* A step still running when the attack ends is not counted either way. */
    measure("probe_http_ok", PR[K_PROBE_HTTP].ok, "probe GET / with the whole page");
    measure("probe_http_fail", PR[K_PROBE_HTTP].fail, "probe GET / failed or stalled");
    measure("probe_http_max_ms", PR[K_PROBE_HTTP].max_ms, "slowest probe GET /");
    measure("probe_ws_ok", PR[K_PROBE_WS].ok, "probe messages heard back");
    measure("probe_ws_fail", PR[K_PROBE_WS].fail, "probe messages not heard back in time, or its WebSocket closed");
    measure("probe_ws_max_ms", PR[K_PROBE_WS].max_ms, "slowest probe message round trip");
    measure("probe_join_ok", PR[K_PROBE_JOIN].ok, "new users joined during the attack");
    measure("probe_join_fail", PR[K_PROBE_JOIN].fail, "joins refused or stalled during the attack");
    measure("probe_join_max_ms", PR[K_PROBE_JOIN].max_ms, "slowest join");
    fflush(stdout);
    fflush(stderr);
    _exit(0);
}

/* ------------------------------------------------------------------------------------------ */

int main(int argc, char **argv) {
    int ready_pipe[2], ctl_pipe[2], i, k, spread = 0, probe_ready = 0, total = 0;
    long long now, end, next_sample, drained_at = -1, turns = 0;
    long rss_before, hwm, tcp_before, tcp_peak, v;
    sample s0, s, peak, last;
    pid_t probe;
    char c;

    defaults();
    if (parse_args(argc, argv) < 0) {
        usage(stderr);
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    rng_s ^= (uint32_t)getpid() * 2654435761u ^ (uint32_t)mono_ms();
    build_patterns();
    memset(&server, 0, sizeof server);
    server.sin_family = AF_INET;
    server.sin_port = htons((uint16_t)O.port);
    server.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (k = 0; k < K_PROBE_HTTP; k++) total += O.count[k];
    conns = (conn *)calloc((size_t)total + 8, sizeof *conns);
    pfds = (struct pollfd *)calloc((size_t)total + 8, sizeof *pfds);
    pmap = (int *)calloc((size_t)total + 8, sizeof *pmap);
    if (!conns || !pfds || !pmap) die("out of memory");

    /* before */
    rss_before = proc_kb("VmRSS:");
    s0 = ss_sample();
    tcp_before = tcp_peak = sockstat_tcp_kb();

    /* the probe first, so that it is in the room before the attack */
    if (pipe(ready_pipe) < 0 || pipe(ctl_pipe) < 0) die("pipe failed");
    fflush(stdout);
    fflush(stderr);
    t0 = mono_ms();
    probe = fork();
    if (probe < 0) die("fork failed");
    if (probe == 0) {
        close(ready_pipe[0]), close(ctl_pipe[1]);
        rng_s ^= 0x9E3779B9u;
        probe_main(ready_pipe[1], ctl_pipe[0]);
    }
    close(ready_pipe[1]), close(ctl_pipe[0]);
    {
        struct pollfd p;
        p.fd = ready_pipe[0], p.events = POLLIN, p.revents = 0;
        if (poll(&p, 1, 4 * O.step_timeout_ms) > 0 && read(ready_pipe[0], &c, 1) == 1 && c == 'R') probe_ready = 1;
    }

    /* the attack */
    t0 = now = mono_ms();
    for (k = 0; k < K_PROBE_HTTP; k++) {
        for (i = 0; i < O.count[k]; i++) {
            int addr = KI[k].addr ? KI[k].addr : 2 + spread++ % O.addrs;
            long long start = now;
            if (k == K_CHURN) addr = KI[k].addr + i;
            if (k == K_SLOW) start = now + (long long)(i % O.slow_waves) * O.slow_wave_ms;
            if (k == K_TRICKLE) start = now + (long long)i * O.trickle_ms / (O.count[k] ? O.count[k] : 1);
            if (k == K_HOARD_WS || k == K_HOARD_HTTP) start = now + O.hoard_delay_ms;
            add_conn(k, addr, i, start);
        }
    }
    printf("info attack: %d connections (A1 %d, A2 %d, A3 %d + talker, A4 %d, A5 %d, A6 %d, A7 %d + %d) from %d + %d + 2 "
           "addresses against 127.0.0.1:%d (pid %d) for %d ms; probe %s\n",
           total, O.count[K_PIPE_NOPE] + O.count[K_PIPE_PAGE], O.count[K_PING_EMPTY] + O.count[K_PING_FULL],
           O.count[K_SLOW], O.count[K_TRICKLE], O.count[K_CHURN], O.count[K_FRAG] + O.count[K_PONG],
           O.count[K_HOARD_WS], O.count[K_HOARD_HTTP], O.addrs, O.count[K_CHURN], O.port, O.pid, O.duration_ms,
           probe_ready ? "joined" : "NOT ready");
    fflush(stdout);
    attacking = 1;
    memset(&peak, 0, sizeof peak);
    last = peak;
    end = now + O.duration_ms;
    next_sample = now;
    while ((now = mono_ms()) < end && turns++ < 100000000) {
        if (now >= next_sample) {
            s = ss_sample();
            if (s.ok) {
                if (s.r + s.w > peak.r + peak.w) peak.r = s.r, peak.w = s.w, peak.t = s.t;
                if (s.fw1 > peak.fw1) peak.fw1 = s.fw1;
                if (s.fw1_rw > peak.fw1_rw) peak.fw1_rw = s.fw1_rw;
                if (s.sockets > peak.sockets) peak.sockets = s.sockets;
                peak.ok++;
            }
            v = sockstat_tcp_kb();
            if (v > tcp_peak) tcp_peak = v;
            next_sample = now + O.sample_ms;
        }
        loop_turn((int)((next_sample < end ? next_sample : end) - now));
    }
    hwm = proc_kb("VmHWM:");
    attacking = 0;

    /* the probe stops (its lines come first) */
    if (write(ctl_pipe[1], "S", 1) != 1) fprintf(stderr, "attack: cannot stop the probe\n");
    {
        struct pollfd p;
        int stopped = 1;
        p.fd = ready_pipe[0], p.events = POLLIN, p.revents = 0;
        for (i = 0; i < 3; i++) { /* EOF: it has reported and exited (skip a late "ready") */
            if (poll(&p, 1, 5000) <= 0) break;
            if (read(ready_pipe[0], &c, 1) <= 0) break;
        }
        if (i == 3 || p.revents == 0) stopped = 0;
        if (!stopped) kill(probe, SIGKILL);
        waitpid(probe, NULL, 0);
        measure("probe_stopped", stopped, "the probe reported and exited when told to (1 ok)");
    }

    /* the attack clients close; the server's socket memory must fall */
    for (i = 0; i < nconns; i++) {
        conn_close_fd(&conns[i]);
        conns[i].st = S_OFF, conns[i].t = 0;
    }
    now = mono_ms();
    end = now + O.drain_ms;
    for (turns = 0; turns < 100000; turns++) {
        last = ss_sample();
        now = mono_ms();
        if (last.ok && last.r + last.w <= (long long)O.after_kb * 1024 && last.fw1 == 0) {
            drained_at = now - (end - O.drain_ms);
            break;
        }
        if (now >= end) break;
        (void)poll(NULL, 0, 250); /* paced sampling: no event says "the kernel freed it" */
    }

    /* a fresh user joins and hears its own message */
    nconns = 0;
    {
        conn *f = add_conn(K_FRESH, KI[K_FRESH].addr, 0, mono_ms());
        long long fend = mono_ms() + O.step_timeout_ms + 1000;
        on_time(f, mono_ms());
        f->pending = 1, f->deadline = f->since + O.step_timeout_ms;
        for (turns = 0; fresh_done < 0 && mono_ms() < fend && turns < 1000000; turns++) loop_turn(50);
        if (fresh_done < 0) fresh_done = 0;
        conn_close_fd(f);
    }

    measure("rss_before_kb", rss_before, "server VmRSS before the attack");
    measure("rss_peak_kb", hwm, "server VmHWM at the end of the attack");
    measure("sock_mem_before_kb", s0.ok ? (s0.r + s0.w) / 1024 : -1, "server sockets r+w before");
    measure("sock_mem_peak_kb", peak.ok ? (peak.r + peak.w) / 1024 : -1, "server sockets r+w, max over the samples");
    measure("sock_mem_peak_r_kb", peak.ok ? peak.r / 1024 : -1, "  of which unread input (r)");
    measure("sock_mem_peak_w_kb", peak.ok ? peak.w / 1024 : -1, "  of which queued output (w)");
    measure("sock_mem_peak_t_kb", peak.ok ? peak.t / 1024 : -1, "  wmem_alloc (t) at that sample, not added");
    measure("sock_finwait1_peak", peak.ok ? peak.fw1 : -1, "orphaned server sockets in FIN-WAIT-1, max");
    measure("sock_finwait1_mem_peak_kb", peak.ok ? peak.fw1_rw / 1024 : -1, "their r+w, max");
    measure("sock_count_peak", peak.ok ? peak.sockets : -1, "server sockets (all states), max");
    measure("sock_samples", peak.ok, "samples taken during the attack");
    measure("tcp_mem_before_kb", tcp_before, "system-wide TCP mem before (reference: includes the attackers)");
    measure("tcp_mem_peak_kb", tcp_peak, "system-wide TCP mem, max (reference)");
    measure("sock_mem_after_kb", last.ok ? (last.r + last.w) / 1024 : -1, "server sockets r+w after the attack clients closed");
    measure("sock_finwait1_after", last.ok ? last.fw1 : -1, "server sockets in FIN-WAIT-1 then");
    measure("drain_ms", drained_at, "until r+w <= after-kb with no FIN-WAIT-1 (-1: not within drain-ms)");
    measure("slow_joined", ST[K_SLOW].joined, "A3 slow readers that joined");
    measure("slow_seen", slow_seen_n, "A3 slow readers the talker saw in the user list");
    measure("slow_closed", slow_gone_n, "A3 slow readers seen, then gone from the list (closed by the server)");
    measure("fresh_join", fresh_done, "a new user joins after the attack and hears itself (1 ok)");
    measure("probe_ready", probe_ready, "the probe was in the room before the attack");
    for (k = 0; k < K_PROBE_HTTP; k++) {
        struct gstat *g = &ST[k];
        if (!O.count[k]) continue;
        printf("info %s %-10s n=%d connects=%lld failed=%lld joined=%lld refused=%lld closed=%lld held_max=%d sent=%lldKiB",
               KI[k].group, KI[k].name, O.count[k], g->opened, g->connect_fail, g->joined, g->refused, g->dropped,
               g->held_max, g->bytes_out / 1024);
        if (k == K_PIPE_NOPE) printf(" requests=%lld", g->bytes_out / (long long)pat_unit[P_NOPE]);
        if (k == K_PIPE_PAGE) printf(" requests=%lld", g->bytes_out / (long long)pat_unit[P_PAGE]);
        if (k == K_PING_EMPTY) printf(" pings=%lld", g->bytes_out / (long long)pat_unit[P_PING0]);
        if (k == K_PING_FULL) printf(" pings=%lld", g->bytes_out / (long long)pat_unit[P_PING125]);
        if (k == K_FRAG) printf(" frames=%lld", g->bytes_out / (long long)pat_unit[P_CONT0]);
        if (k == K_PONG) printf(" pongs=%lld", g->bytes_out / (long long)pat_unit[P_PONG0]);
        if (k == K_TALKER) printf(" messages=%lld skipped=%lld", talk_sent, talk_skipped);
        if (k == K_TRICKLE) printf(" answers=%lld late=%lld max_ms=%lld", g->answers, g->late, g->max_answer_ms);
        printf("\n");
    }
    for (i = k = 0; k < K_PROBE_HTTP; k++) i += ST[k].restarts;
    printf("info restarts=%d (bound %d per group)\n", i, O.max_restarts);
    return 0;
}
