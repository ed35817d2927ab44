/* load.c - the load client of the chat.h benchmark (tests/bench/run.sh).

   One thread, non-blocking sockets, epoll; its own RFC 6455 client (masked frames with a random
   mask each, all three length classes both ways, pings answered, fragmented server messages
   reassembled). Speaks the chat protocol of Deno's WebSocket tutorial:
       GET /start_web_socket?username=NAME        -> 101
       server: {"event":"update-users","usernames":[...]}
               {"event":"send-message","username":"NAME","message":"TEXT"}
       client: {"event":"send-message","message":"TEXT"}

   Build:  cc -std=c99 -Wall -Wextra -pedantic -Werror -O2 -o load tests/bench/load.c
           with -DLOAD_TLS ... -lmbedtls -lmbedx509 -lmbedcrypto, -T speaks wss:// (mbedTLS client,
           certificate not checked: the bench's own self-signed one)
   Run:    load SCENARIO -p PORT [-P SERVER_PID] [options]       (load -h for the options)

   Scenarios:
     fanout    clients join; S senders keep at most W messages of their own in flight (the next
               one leaves when one of their own comes back) for D ms; every delivery is counted
               at the receiving client; then the tail drains (bounded).
     large     the same with 16 KiB messages; afterwards one probe message whose frame payload is
               65536 bytes (64-bit length both ways) must reach every client.
     latency   one sender at a fixed rate (timerfd on CLOCK_MONOTONIC), the send time
               (CLOCK_MONOTONIC ns) in the text; p50/p99 of send -> receipt over all deliveries.
     idle      N clients join (at most C handshakes in flight) and stay idle: the time until
               every client has seen an update-users with all N bench names, server RSS before
               and after (and heap, with -H, from tests/bench/heap_server.c).
     storm     the same with every handshake sent at once (no cap).
     selftest  checks the codec (SHA-1/accept, the three length classes, fragments, pings).

   Every wait has a deadline; a join that does not complete in time is reported as DNF.
   Output: one line "RESULT scenario=... key=value ..." on stdout. Exit 0 (ok), 2 (DNF or
   failure), 1 (usage).

   Names are b00000, b00001, ...: a fresh server is expected (run.sh starts one per scenario). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/timerfd.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>
#ifdef LOAD_TLS
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/ssl.h>
#endif

/* ------------------------------------------------------------------------------------------ */
/* time, randomness                                                                           */

static uint64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t rng_s;
static uint64_t rng_next(void) { /* xorshift64* */
    rng_s ^= rng_s >> 12;
    rng_s ^= rng_s << 25;
    rng_s ^= rng_s >> 27;
    return rng_s * 0x2545F4914F6CDD1DULL;
}
static void rng_seed(void) {
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    uint64_t s = 0;
    if (fd >= 0) {
        if (read(fd, &s, sizeof s) != (ssize_t)sizeof s) s = 0;
        close(fd);
    }
    rng_s = s ^ mono_ns() ^ ((uint64_t)getpid() << 32);
    if (!rng_s) rng_s = 0x9E3779B97F4A7C15ULL;
}

static double cpu_seconds(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

/* ------------------------------------------------------------------------------------------ */
/* SHA-1 and base64, for Sec-WebSocket-Accept                                                 */

static uint32_t rol32(uint32_t x, int n) { return (x << n) | (x >> (32 - n)); }

static void sha1(const unsigned char *msg, size_t len, unsigned char out[20]) {
    uint32_t h[5] = {0x67452301u, 0xEFCDAB89u, 0x98BADCFEu, 0x10325476u, 0xC3D2E1F0u};
    unsigned char block[64];
    uint64_t bits = (uint64_t)len * 8;
    size_t done = 0, total = ((len + 8) / 64 + 1) * 64, i;
    for (done = 0; done < total; done += 64) {
        uint32_t w[80], a, b, c, d, e, f, k, t;
        for (i = 0; i < 64; i++) {
            size_t p = done + i;
            if (p < len) block[i] = msg[p];
            else if (p == len) block[i] = 0x80;
            else if (p >= total - 8) block[i] = (unsigned char)(bits >> (8 * (total - 1 - p)));
            else block[i] = 0;
        }
        for (i = 0; i < 16; i++)
            w[i] = (uint32_t)block[4 * i] << 24 | (uint32_t)block[4 * i + 1] << 16 | (uint32_t)block[4 * i + 2] << 8 |
                   block[4 * i + 3];
        for (i = 16; i < 80; i++) w[i] = rol32(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
        a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
        for (i = 0; i < 80; i++) {
            if (i < 20) f = (b & c) | (~b & d), k = 0x5A827999u;
            else if (i < 40) f = b ^ c ^ d, k = 0x6ED9EBA1u;
            else if (i < 60) f = (b & c) | (b & d) | (c & d), k = 0x8F1BBCDCu;
            else f = b ^ c ^ d, k = 0xCA62C1D6u;
            t = rol32(a, 5) + f + e + k + w[i];
            e = d, d = c, c = rol32(b, 30), b = a, a = t;
        }
        h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e;
    }
    for (i = 0; i < 20; i++) out[i] = (unsigned char)(h[i / 4] >> (24 - 8 * (i % 4)));
}

static size_t base64(const unsigned char *in, size_t n, char *out) {
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t i, o = 0;
    for (i = 0; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = tab[v >> 18], out[o++] = tab[(v >> 12) & 63], out[o++] = tab[(v >> 6) & 63], out[o++] = tab[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = tab[v >> 18], out[o++] = tab[(v >> 12) & 63], out[o++] = '=', out[o++] = '=';
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = tab[v >> 18], out[o++] = tab[(v >> 12) & 63], out[o++] = tab[(v >> 6) & 63], out[o++] = '=';
    }
    out[o] = 0;
    return o;
}

static void ws_accept_for(const char *key, char out[29]) {
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    unsigned char buf[128], dig[20];
    size_t kl = strlen(key);
    memcpy(buf, key, kl);
    memcpy(buf + kl, guid, sizeof guid - 1);
    sha1(buf, kl + sizeof guid - 1, dig);
    base64(dig, 20, out);
}

/* ------------------------------------------------------------------------------------------ */
/* latency histogram: log-linear, 64 sub-buckets per power of two (< 1.6 % error), in ns      */

#define H_BUCKETS (128 + 57 * 64)
static uint64_t hist[H_BUCKETS], hist_n, hist_max;

static int h_bucket(uint64_t v) {
    int e;
    if (v < 128) return (int)v;
    e = 63 - __builtin_clzll(v); /* >= 7 */
    return 128 + (e - 7) * 64 + (int)((v >> (e - 6)) & 63);
}
static uint64_t h_mid(int b) { /* the middle of bucket b */
    int e, sub;
    uint64_t lo, w;
    if (b < 128) return (uint64_t)b;
    e = (b - 128) / 64 + 7, sub = (b - 128) % 64;
    lo = (uint64_t)(64 + sub) << (e - 6), w = (uint64_t)1 << (e - 6);
    return lo + w / 2;
}
static void h_add(uint64_t v) {
    hist[h_bucket(v)]++, hist_n++;
    if (v > hist_max) hist_max = v;
}
static double h_pct_us(double p) {
    uint64_t want, acc = 0;
    int b;
    if (!hist_n) return -1;
    want = (uint64_t)(p * (double)hist_n + 0.999999);
    if (want < 1) want = 1;
    for (b = 0; b < H_BUCKETS; b++) {
        acc += hist[b];
        if (acc >= want) return (double)h_mid(b) / 1000.0;
    }
    return (double)hist_max / 1000.0;
}

/* ------------------------------------------------------------------------------------------ */
/* /proc readers for the server process                                                       */

/* Reads a small /proc file whole into buf, NUL-terminated. Returns 0, or -1. */
static int read_small_file(const char *path, char *buf, size_t cap) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n;
    if (fd < 0) return -1;
    n = read(fd, buf, cap - 1);
    close(fd);
    if (n <= 0) return -1;
    buf[n] = 0;
    return 0;
}

static long proc_status_kb(int pid, const char *key) { /* VmRSS:, VmHWM: ... ; -1 if unknown */
    char path[64], buf[4096], *p;
    size_t kl = strlen(key);
    if (pid <= 0) return -1;
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    if (read_small_file(path, buf, sizeof buf) < 0) return -1;
    for (p = buf; p && *p; p = strchr(p, '\n')) {
        if (*p == '\n') p++;
        if (!strncmp(p, key, kl)) return strtol(p + kl, NULL, 10);
    }
    return -1;
}

/* The CPU time of every thread of the process in ns, from the scheduler (/proc/PID/task/T/schedstat,
   first field): exact, where utime + stime count whole clock ticks (10 ms: a light-load run of
   0.5 s of CPU moved by 2 % from rounding alone). -1 without schedstats. */
static double proc_sched_s(int pid) {
    char path[64], buf[256];
    DIR *d;
    struct dirent *e;
    double total = 0;
    int n = 0;
    snprintf(path, sizeof path, "/proc/%d/task", pid);
    if (!(d = opendir(path))) return -1;
    while ((e = readdir(d))) {
        char file[320];
        if (e->d_name[0] == '.') continue;
        snprintf(file, sizeof file, "/proc/%d/task/%s/schedstat", pid, e->d_name);
        if (read_small_file(file, buf, sizeof buf) < 0) continue; /* a thread that just ended */
        total += strtod(buf, NULL) / 1e9;
        n++;
    }
    closedir(d);
    return n ? total : -1;
}

static double proc_cpu_s(int pid) { /* CPU seconds of the whole process; -1 if unknown */
    char path[64], buf[2048], *p;
    int field;
    unsigned long long ut, st;
    double sched;
    if (pid <= 0) return -1;
    if ((sched = proc_sched_s(pid)) >= 0) return sched;
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    if (read_small_file(path, buf, sizeof buf) < 0) return -1;
    p = strrchr(buf, ')'); /* the command name may contain anything */
    if (!p) return -1;
    p++;
    for (field = 3; field < 14 && p; field++) { /* skip to field 14 (utime) */
        p = strchr(p + 1, ' ');
    }
    if (!p || sscanf(p, " %llu %llu", &ut, &st) != 2) return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* Time all CPUs spent in processes (user, nice, system), seconds: what is left after the server
   and this client is someone else's work, and makes a run noisy. Interrupt and softirq time
   (which includes the loopback traffic of the benchmark itself) is left out. */
static double sys_busy_s(void) {
    char buf[512];
    unsigned long long v[8] = {0};
    if (read_small_file("/proc/stat", buf, sizeof buf) < 0) return -1;
    if (sscanf(buf, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) != 8)
        return -1;
    return (double)(v[0] + v[1] + v[2]) / (double)sysconf(_SC_CLK_TCK);
}

/* ------------------------------------------------------------------------------------------ */
/* configuration and totals                                                                   */

enum { S_FANOUT, S_LARGE, S_LATENCY, S_IDLE, S_STORM, S_SELFTEST };

static struct {
    int scenario;
    const char *label, *server, *host, *heap_log;
    int port, pid;
    int port2;               /* -q: the clients that do not send join the server on this port (another board) */
    struct sockaddr_in addr2;
    int nclients, nsenders, window, max_pending;
    size_t msg_bytes;
    int duration_ms, join_timeout_ms, drain_ms, rate;
    int probe;
    struct sockaddr_in addr;
    int ep, tfd;
    int poll_cap_ms;
    int tls; /* -T: wss:// */
} G;

static struct {
    uint64_t bytes_in;              /* every byte read from the server, handshakes included */
    uint64_t sent, delivered, bad, order_err, probe_got, lists, other, late_ticks;
    int n_started, n_pending, n_open, n_converged, n_failed, n_closed;
    uint64_t t_first_connect, t_converged, t_last_delivery;
    int sending; /* senders may start new messages */
    char fail_reason[160];
} T;

/* ------------------------------------------------------------------------------------------ */
/* connections                                                                                */

enum { C_IDLE, C_CONNECTING, C_TLS, C_HANDSHAKE, C_OPEN, C_DONE }; /* C_TLS: its handshake (-T) */
enum { K_UNDECIDED, K_USERS, K_CHAT, K_OTHER };
#define PREFIX 256  /* the first bytes of each message are kept for parsing */
#define DECIDE_AT 64 /* bytes after which a message is classified */

typedef struct conn {
    int fd, idx, state;
    unsigned epoll_out : 1, converged : 1, capture : 1, in_msg : 1, frag : 1;
    /* outgoing bytes */
    unsigned char *out;
    size_t out_len, out_off, out_cap;
    /* the handshake */
    char key[32];
    char *hs;
    size_t hs_len;
    /* the frame being read */
    unsigned char fh[14];
    int fh_len;
    uint64_t left; /* payload bytes of the current frame still to come */
    int f_op, f_fin, f_ctl;
    unsigned char ctl[125];
    int ctl_len;
    /* the message being read (data frames, possibly fragmented) */
    int kind;
    uint64_t msg_len;
    unsigned char prefix[PREFIX];
    size_t prefix_len;
    unsigned char *full; /* the whole message, when it may be a complete user list */
    size_t full_len, full_cap;
    /* chat accounting */
    int inflight;
    uint64_t seq;      /* next sequence number this client sends */
    uint32_t *expect;  /* per sender: the next sequence number expected (fanout/large/latency) */
#ifdef LOAD_TLS
    mbedtls_ssl_context *ssl; /* -T */
    size_t tls_held;          /* bytes of a record not sent yet: offered again, as mbedTLS asks */
#endif
} conn;

static conn *conns;
static unsigned char rbuf[256 * 1024];
static unsigned char *namebits; /* scratch bitmap for check_list */

static void name_of(int i, char out[8]) { snprintf(out, 8, "b%05d", i); }

static void fail_conn(conn *c, const char *why);

static int out_reserve(conn *c, size_t more) {
    size_t need;
    if (c->out_off && c->out_off == c->out_len) c->out_off = c->out_len = 0;
    need = c->out_len + more;
    if (need > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap : 512;
        unsigned char *p;
        while (cap < need) cap *= 2;
        p = (unsigned char *)realloc(c->out, cap);
        if (!p) return -1;
        c->out = p, c->out_cap = cap;
    }
    return 0;
}

static void set_epoll_out(conn *c, int on) {
    struct epoll_event ev;
    if (c->fd < 0 || (int)c->epoll_out == on) return;
    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLIN | (on ? EPOLLOUT : 0);
    ev.data.ptr = c;
    if (epoll_ctl(G.ep, EPOLL_CTL_MOD, c->fd, &ev) == 0) c->epoll_out = on ? 1 : 0;
}

/* The socket's bytes, or with -T the TLS session's: like send() and recv() (-1 and errno). */
#ifdef LOAD_TLS
static mbedtls_ssl_config tls_conf;
static mbedtls_entropy_context tls_entropy;
static mbedtls_ctr_drbg_context tls_drbg;

static int tls_errno(int r) {
    errno = r == MBEDTLS_ERR_SSL_WANT_READ || r == MBEDTLS_ERR_SSL_WANT_WRITE ? EAGAIN : EIO;
    return -1;
}

static ssize_t io_send(conn *c, const unsigned char *p, size_t n) {
    int r;
    if (!c->ssl) return send(c->fd, p, n, MSG_NOSIGNAL);
    if (c->tls_held) n = c->tls_held;
    r = mbedtls_ssl_write(c->ssl, p, n > 16384 ? 16384 : n);
    if (r == MBEDTLS_ERR_SSL_WANT_WRITE) c->tls_held = n;
    if (r < 0) return tls_errno(r);
    c->tls_held = 0;
    return r;
}

static ssize_t io_recv(conn *c, unsigned char *p, size_t n) {
    int r;
    if (!c->ssl) return recv(c->fd, p, n, 0);
    r = mbedtls_ssl_read(c->ssl, p, n);
    if (r == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY) return 0;
    return r >= 0 ? r : tls_errno(r);
}

static int tls_setup(void) {
    mbedtls_ssl_config_init(&tls_conf);
    mbedtls_entropy_init(&tls_entropy);
    mbedtls_ctr_drbg_init(&tls_drbg);
    if (mbedtls_ctr_drbg_seed(&tls_drbg, mbedtls_entropy_func, &tls_entropy, NULL, 0) ||
        mbedtls_ssl_config_defaults(&tls_conf, MBEDTLS_SSL_IS_CLIENT, MBEDTLS_SSL_TRANSPORT_STREAM, MBEDTLS_SSL_PRESET_DEFAULT))
        return -1;
    mbedtls_ssl_conf_authmode(&tls_conf, MBEDTLS_SSL_VERIFY_NONE);
    mbedtls_ssl_conf_rng(&tls_conf, mbedtls_ctr_drbg_random, &tls_drbg);
    return 0;
}
#else
#define io_send(c, p, n) send((c)->fd, (p), (n), MSG_NOSIGNAL)
#define io_recv(c, p, n) recv((c)->fd, (p), (n), 0)
#endif

/* Writes as much of the queue as the socket takes; the rest waits for EPOLLOUT. */
static void flush(conn *c) {
    int spins;
    if (c->fd < 0 || c->state == C_CONNECTING || c->state == C_TLS || c->state == C_DONE) return;
    for (spins = 0; spins < 64 && c->out_off < c->out_len; spins++) {
        ssize_t w = io_send(c, c->out + c->out_off, c->out_len - c->out_off);
        if (w > 0) c->out_off += (size_t)w;
        else if (w < 0 && errno == EINTR) continue;
        else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        else {
            fail_conn(c, "send failed");
            return;
        }
    }
    if (c->out_off == c->out_len) {
        c->out_off = c->out_len = 0;
        if (c->out_cap > 65536) { /* do not keep a large buffer around on an idle client */
            free(c->out);
            c->out = NULL, c->out_cap = 0;
        }
        set_epoll_out(c, 0);
    } else {
        set_epoll_out(c, 1);
    }
}

static void mask_bytes(unsigned char *p, size_t n, const unsigned char m[4]) {
    uint64_t m64;
    size_t i = 0;
    unsigned char mm[8];
    memcpy(mm, m, 4), memcpy(mm + 4, m, 4);
    memcpy(&m64, mm, 8);
    for (; i + 8 <= n; i += 8) {
        uint64_t v;
        memcpy(&v, p + i, 8);
        v ^= m64;
        memcpy(p + i, &v, 8);
    }
    for (; i < n; i++) p[i] ^= m[i & 3];
}

/* Reserves a masked frame of n payload bytes in c->out and returns where the payload goes; the
   caller writes the payload there and then calls frame_end() to mask it. */
static unsigned char *frame_begin(conn *c, int opcode, size_t n, unsigned char **mask_at) {
    unsigned char *h;
    size_t hl = n < 126 ? 2 : n <= 0xFFFF ? 4 : 10, i;
    uint32_t m = (uint32_t)(rng_next() >> 32);
    if (out_reserve(c, hl + 4 + n) < 0) return NULL;
    h = c->out + c->out_len;
    h[0] = (unsigned char)(0x80 | opcode);
    if (n < 126) {
        h[1] = (unsigned char)(0x80 | n);
    } else if (n <= 0xFFFF) {
        h[1] = 0x80 | 126, h[2] = (unsigned char)(n >> 8), h[3] = (unsigned char)n;
    } else {
        h[1] = 0x80 | 127;
        for (i = 0; i < 8; i++) h[2 + i] = (unsigned char)((uint64_t)n >> (56 - 8 * i));
    }
    memcpy(h + hl, &m, 4);
    *mask_at = h + hl;
    c->out_len += hl + 4 + n;
    return h + hl + 4;
}

static void frame_end(unsigned char *mask, unsigned char *payload, size_t n) { mask_bytes(payload, n, mask); }

static int send_frame(conn *c, int opcode, const void *data, size_t n) {
    unsigned char *mask, *p = frame_begin(c, opcode, n, &mask);
    if (!p) return -1;
    if (n) memcpy(p, data, n);
    frame_end(mask, p, n);
    return 0;
}

/* Queues {"event":"send-message","message":"<text>"}, text = "<head>" padded with 'x' to
   text_len bytes (or exactly the head if it is longer). */
static int send_chat(conn *c, const char *head, size_t text_len) {
    static const char pre[] = "{\"event\":\"send-message\",\"message\":\"", post[] = "\"}";
    size_t hl = strlen(head), n;
    unsigned char *mask, *p;
    if (text_len < hl) text_len = hl;
    n = sizeof pre - 1 + text_len + sizeof post - 1;
    p = frame_begin(c, 1, n, &mask);
    if (!p) return -1;
    memcpy(p, pre, sizeof pre - 1);
    memcpy(p + sizeof pre - 1, head, hl);
    memset(p + sizeof pre - 1 + hl, 'x', text_len - hl);
    memcpy(p + sizeof pre - 1 + text_len, post, sizeof post - 1);
    frame_end(mask, p, n);
    return 0;
}

/* The text of a measured message: "<sender>:<seq>:<send time, CLOCK_MONOTONIC ns>:" + padding. */
static void send_measured(conn *c) {
    char head[80];
    uint64_t now = mono_ns();
    snprintf(head, sizeof head, "%d:%llu:%llu:", c->idx, (unsigned long long)c->seq, (unsigned long long)now);
    if (send_chat(c, head, G.msg_bytes) < 0) {
        fail_conn(c, "out of memory");
        return;
    }
    c->seq++, c->inflight++, T.sent++;
    flush(c);
}

static void conn_close_fd(conn *c) {
#ifdef LOAD_TLS
    if (c->ssl) mbedtls_ssl_free(c->ssl), free(c->ssl), c->ssl = NULL;
#endif
    if (c->fd >= 0) {
        epoll_ctl(G.ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        c->fd = -1;
    }
}

static void conn_done(conn *c) {
    if (c->state == C_CONNECTING || c->state == C_TLS || c->state == C_HANDSHAKE) T.n_pending--;
    if (c->state == C_OPEN) T.n_open--;
    c->state = C_DONE;
    conn_close_fd(c);
    free(c->full), c->full = NULL, c->full_cap = c->full_len = 0;
    free(c->hs), c->hs = NULL;
}

static void fail_conn(conn *c, const char *why) {
    if (c->state == C_DONE) return;
    if (c->state == C_OPEN) T.n_closed++;
    else T.n_failed++;
    if (!T.fail_reason[0]) snprintf(T.fail_reason, sizeof T.fail_reason, "client %d: %s", c->idx, why);
    conn_done(c);
}

/* ------------------------------------------------------------------------------------------ */
/* what the messages mean                                                                     */

static const unsigned char *find(const unsigned char *h, size_t hl, const char *needle) {
    return (const unsigned char *)memmem(h, hl, needle, strlen(needle));
}

/* Does this update-users message name every one of the N bench clients? */
static int check_list(const unsigned char *m, size_t n) {
    const unsigned char *p = find(m, n, "\"usernames\""), *end = m + n;
    int count = 0, N = G.nclients;
    if (!p) return 0;
    p = (const unsigned char *)memchr(p + 11, '[', (size_t)(end - p - 11));
    if (!p) return 0;
    memset(namebits, 0, ((size_t)N + 7) / 8);
    for (p++; p < end && *p != ']';) {
        if (*p == '"') {
            const unsigned char *s = ++p;
            while (p < end && *p != '"') p += *p == '\\' ? 2 : 1;
            if (p >= end) return 0;
            if (p - s == 6 && s[0] == 'b') {
                int v = 0, k, ok = 1;
                for (k = 1; k < 6; k++) {
                    if (s[k] < '0' || s[k] > '9') ok = 0;
                    v = v * 10 + (s[k] - '0');
                }
                if (ok && v < N && !(namebits[v >> 3] & (1u << (v & 7)))) namebits[v >> 3] |= (unsigned char)(1u << (v & 7)), count++;
            }
            p++;
        } else {
            p++;
        }
    }
    return count == N;
}

static void on_converged(conn *c, uint64_t now) {
    c->converged = 1;
    T.n_converged++;
    T.t_converged = now;
}

static uint64_t parse_u64(const unsigned char **pp, const unsigned char *end, int *ok) {
    const unsigned char *p = *pp;
    uint64_t v = 0;
    int digits = 0;
    while (p < end && *p >= '0' && *p <= '9' && digits < 20) v = v * 10 + (uint64_t)(*p++ - '0'), digits++;
    if (!digits || p >= end || *p != ':') *ok = 0;
    *pp = p + 1;
    return v;
}

static const char chat_head[] = "{\"event\":\"send-message\",\"username\":\"";
static const char users_head[] = "{\"event\":\"update-users\"";

static void on_chat(conn *c, uint64_t now) {
    const unsigned char *pm = c->prefix, *end = c->prefix + c->prefix_len, *u, *m;
    char want[8];
    uint64_t sid, seq, ts;
    int ok = 1, k;
    unsigned v;
    /* the usual layout first (the tutorial's key order, no spaces), then a search */
    if (c->prefix_len > sizeof chat_head + 19 && !memcmp(pm, chat_head, sizeof chat_head - 1) &&
        !memcmp(pm + sizeof chat_head - 1 + 7, ",\"message\":\"", 12)) {
        u = pm + sizeof chat_head - 1 - 12; /* "username":" */
        m = u + 12 + 7 + 1;                 /* "message":" after b00000", */
    } else {
        u = find(pm, c->prefix_len, "\"username\":\"");
        m = find(pm, c->prefix_len, "\"message\":\"");
    }
    if (!m) {
        T.bad++;
        return;
    }
    m += 11;
    if (m < end && *m == 'P') { /* the 64 KiB probe */
        T.probe_got++;
        return;
    }
    sid = parse_u64(&m, end, &ok);
    seq = parse_u64(&m, end, &ok);
    ts = parse_u64(&m, end, &ok);
    if (!ok || sid >= (uint64_t)G.nsenders || c->msg_len < G.msg_bytes) {
        T.bad++;
        return;
    }
    want[0] = 'b', want[6] = '"';
    for (k = 5, v = (unsigned)sid; k >= 1; k--) want[k] = (char)('0' + v % 10), v /= 10;
    if (!u || (size_t)(end - (u + 12)) < 7 || memcmp(u + 12, want, 7)) T.bad++;
    T.delivered++;
    T.t_last_delivery = now;
    if (!G.port2 || c->idx >= G.nsenders) h_add(now >= ts ? now - ts : 0); /* -q: across boards only */
    if (c->expect) {
        if (seq != c->expect[sid]) T.order_err++;
        c->expect[sid] = (uint32_t)seq + 1;
    }
    if ((uint64_t)c->idx == sid) {
        c->inflight--;
        if (T.sending && G.scenario != S_LATENCY)
            while (c->inflight < G.window && c->state == C_OPEN) send_measured(c);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* the frame reader: a byte-stream state machine, no payload copies except what is parsed     */

static void classify(conn *c) {
    if (c->prefix_len >= sizeof chat_head - 1 && !memcmp(c->prefix, chat_head, sizeof chat_head - 1)) c->kind = K_CHAT;
    else if (c->prefix_len >= sizeof users_head - 1 && !memcmp(c->prefix, users_head, sizeof users_head - 1)) c->kind = K_USERS;
    else if (find(c->prefix, c->prefix_len, "\"update-users\"")) c->kind = K_USERS;
    else if (find(c->prefix, c->prefix_len, "\"send-message\"")) c->kind = K_CHAT;
    else c->kind = K_OTHER;
    /* A user list that is long enough to hold all N names, or whose length is not known yet
       (fragmented), is kept whole; anything else is parsed from its first bytes only. */
    if (c->kind == K_USERS && !c->converged && (c->frag || c->msg_len + c->left >= 9u * (uint64_t)G.nclients - 1)) {
        c->capture = 1;
        c->full_len = 0;
    }
}

static int full_append(conn *c, const unsigned char *p, size_t n) {
    if (!n) return 0;
    if (c->full_len + n > c->full_cap) {
        size_t cap = c->full_cap ? c->full_cap : 4096;
        unsigned char *q;
        while (cap < c->full_len + n) cap *= 2;
        if (cap > ((size_t)1 << 30)) return -1;
        q = (unsigned char *)realloc(c->full, cap);
        if (!q) return -1;
        c->full = q, c->full_cap = cap;
    }
    memcpy(c->full + c->full_len, p, n);
    c->full_len += n;
    return 0;
}

static void message_done(conn *c, uint64_t now) {
    if (c->kind == K_UNDECIDED) { /* shorter than DECIDE_AT: all of it is in the prefix */
        classify(c);
        c->capture = 0;
    }
    if (c->kind == K_USERS) {
        T.lists++;
        if (!c->converged) {
            if (c->capture && check_list(c->full, c->full_len)) on_converged(c, now);
            else if (!c->capture && c->msg_len <= PREFIX && check_list(c->prefix, c->prefix_len)) on_converged(c, now);
        }
    } else if (c->kind == K_CHAT) {
        on_chat(c, now);
    } else {
        T.other++;
    }
    c->in_msg = 0, c->capture = 0, c->kind = K_UNDECIDED;
    if (c->full_cap > 65536) {
        free(c->full);
        c->full = NULL, c->full_cap = 0;
    }
    c->full_len = 0;
}

static void data_bytes(conn *c, const unsigned char *p, size_t n) {
    if (c->prefix_len < PREFIX) {
        size_t k = PREFIX - c->prefix_len < n ? PREFIX - c->prefix_len : n;
        memcpy(c->prefix + c->prefix_len, p, k);
        c->prefix_len += k;
        if (c->kind == K_UNDECIDED && c->prefix_len >= DECIDE_AT) {
            classify(c); /* msg_len + left: the whole length of an unfragmented message */
            if (c->capture && full_append(c, c->prefix, c->prefix_len - k) < 0) fail_conn(c, "out of memory");
        }
    }
    if (c->capture && c->state == C_OPEN && full_append(c, p, n) < 0) fail_conn(c, "out of memory");
    c->msg_len += n;
}

static void control_done(conn *c) {
    if (c->f_op == 0x9) { /* ping: pong with the same payload */
        if (send_frame(c, 0xA, c->ctl, (size_t)c->ctl_len) < 0) fail_conn(c, "out of memory");
        else flush(c);
    } else if (c->f_op == 0x8) { /* close: answer with the same code, then stop reading */
        char why[64];
        int code = c->ctl_len >= 2 ? c->ctl[0] << 8 | c->ctl[1] : 1005;
        (void)send_frame(c, 0x8, c->ctl, c->ctl_len >= 2 ? 2 : 0);
        flush(c);
        snprintf(why, sizeof why, "server closed with %d", code);
        fail_conn(c, why);
    } /* pong: nothing */
}

static void feed_frames(conn *c, const unsigned char *p, size_t n, uint64_t now) {
    size_t i = 0;
    while (i < n && c->state == C_OPEN) {
        if (c->fh_len >= 0) { /* reading a header */
            int need = 2;
            c->fh[c->fh_len++] = p[i++];
            if (c->fh_len >= 2) {
                int l7 = c->fh[1] & 0x7F;
                if (c->fh[1] & 0x80) {
                    fail_conn(c, "server sent a masked frame");
                    return;
                }
                need = 2 + (l7 == 126 ? 2 : l7 == 127 ? 8 : 0);
            }
            if (c->fh_len < need) continue;
            {
                int l7 = c->fh[1] & 0x7F, k;
                uint64_t len = (uint64_t)l7;
                if (l7 == 126) len = (uint64_t)c->fh[2] << 8 | c->fh[3];
                if (l7 == 127)
                    for (len = 0, k = 0; k < 8; k++) len = len << 8 | c->fh[2 + k];
                if (l7 == 127 && (len >> 63)) {
                    fail_conn(c, "64-bit length with the top bit set");
                    return;
                }
                if ((l7 == 126 && len < 126) || (l7 == 127 && len <= 0xFFFF)) {
                    fail_conn(c, "length not in its shortest form");
                    return;
                }
                c->f_fin = c->fh[0] >> 7, c->f_op = c->fh[0] & 0x0F, c->f_ctl = c->f_op >= 8;
                if (c->fh[0] & 0x70) {
                    fail_conn(c, "reserved bits set");
                    return;
                }
                c->left = len, c->fh_len = -1;
                if (c->f_ctl) {
                    if (!c->f_fin || len > 125 || (c->f_op != 8 && c->f_op != 9 && c->f_op != 10)) {
                        fail_conn(c, "bad control frame");
                        return;
                    }
                    c->ctl_len = 0;
                } else if (c->f_op == 0) {
                    if (!c->in_msg) {
                        fail_conn(c, "continuation without a message");
                        return;
                    }
                } else if (c->f_op == 1 || c->f_op == 2) {
                    if (c->in_msg) {
                        fail_conn(c, "new message inside a fragmented one");
                        return;
                    }
                    c->in_msg = 1, c->kind = K_UNDECIDED, c->capture = 0, c->frag = !c->f_fin;
                    c->msg_len = 0, c->prefix_len = 0, c->full_len = 0;
                } else {
                    fail_conn(c, "unknown opcode");
                    return;
                }
            }
        } else { /* payload */
            size_t k = n - i;
            if ((uint64_t)k > c->left) k = (size_t)c->left;
            if (c->f_ctl) {
                memcpy(c->ctl + c->ctl_len, p + i, k);
                c->ctl_len += (int)k;
            } else {
                data_bytes(c, p + i, k);
            }
            c->left -= k, i += k;
        }
        if (c->fh_len < 0 && c->left == 0 && c->state == C_OPEN) { /* the frame is complete */
            c->fh_len = 0;
            if (c->f_ctl) control_done(c);
            else if (c->f_fin) message_done(c, now);
        }
    }
}

/* The HTTP response to the upgrade; whatever follows it is frames (a server may send its
   first frames in the same segment as the response). */
static void feed_handshake(conn *c, const unsigned char *p, size_t n, uint64_t now) {
    enum { HS_CAP = 4096 };
    char *end, accept[29], *h;
    size_t take, old, head;
    if (!c->hs) {
        c->hs = (char *)malloc(HS_CAP + 1);
        if (!c->hs) {
            fail_conn(c, "out of memory");
            return;
        }
        c->hs_len = 0;
    }
    old = c->hs_len;
    take = HS_CAP - old < n ? HS_CAP - old : n;
    memcpy(c->hs + old, p, take);
    c->hs_len += take;
    c->hs[c->hs_len] = 0;
    end = strstr(c->hs + (old > 3 ? old - 3 : 0), "\r\n\r\n");
    if (!end) {
        if (c->hs_len == HS_CAP) fail_conn(c, "handshake response too long");
        return;
    }
    head = (size_t)(end + 4 - c->hs); /* bytes of the response head; p[head - old ...] are frames */
    if (strncmp(c->hs, "HTTP/1.1 101", 12)) {
        char why[80];
        snprintf(why, sizeof why, "handshake refused: %.40s", c->hs);
        for (h = why; *h; h++)
            if (*h == '\r' || *h == '\n') *h = ' ';
        fail_conn(c, why);
        return;
    }
    ws_accept_for(c->key, accept);
    for (h = c->hs; h && h < end; h = strstr(h, "\r\n")) {
        h += 2;
        if (!strncasecmp(h, "sec-websocket-accept:", 21)) break;
    }
    if (!h || h >= end) {
        fail_conn(c, "no Sec-WebSocket-Accept");
        return;
    }
    h += 21;
    while (*h == ' ' || *h == '\t') h++;
    if (strncmp(h, accept, 28)) {
        fail_conn(c, "wrong Sec-WebSocket-Accept");
        return;
    }
    c->state = C_OPEN, T.n_pending--, T.n_open++;
    c->fh_len = 0;
    free(c->hs), c->hs = NULL;
    if (n > head - old) feed_frames(c, p + (head - old), n - (head - old), now);
}

static void tls_step(conn *c);

static void on_readable(conn *c) {
    int iter;
    if (c->state == C_TLS) {
        tls_step(c);
        return;
    }
    for (iter = 0; iter < (G.tls ? 64 : 4) && c->state != C_DONE; iter++) { /* TLS: a record a read */
        ssize_t r = io_recv(c, rbuf, sizeof rbuf);
        if (r > 0) {
            uint64_t now = mono_ns();
            T.bytes_in += (uint64_t)r;
            if (c->state == C_HANDSHAKE) feed_handshake(c, rbuf, (size_t)r, now);
            else if (c->state == C_OPEN) feed_frames(c, rbuf, (size_t)r, now);
            if (!G.tls && (size_t)r < sizeof rbuf) break;
        } else if (r == 0) {
            fail_conn(c, "connection closed by the server");
        } else if (errno == EINTR) {
            continue;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            break;
        } else {
            fail_conn(c, "recv failed");
        }
    }
}

static int start_connect(conn *c) {
    struct epoll_event ev;
    unsigned char raw[16];
    char name[8];
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1, i;
    T.n_started++;
    if (T.n_started == 1) T.t_first_connect = mono_ns();
    if (fd < 0) {
        c->state = C_DONE, T.n_failed++;
        if (!T.fail_reason[0]) snprintf(T.fail_reason, sizeof T.fail_reason, "socket: %s", strerror(errno));
        return -1;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)(G.port2 && c->idx >= G.nsenders ? &G.addr2 : &G.addr), sizeof G.addr) < 0 &&
        errno != EINPROGRESS) {
        close(fd);
        c->state = C_DONE, T.n_failed++;
        if (!T.fail_reason[0]) snprintf(T.fail_reason, sizeof T.fail_reason, "connect: %s", strerror(errno));
        return -1;
    }
    c->fd = fd, c->state = C_CONNECTING, T.n_pending++;
    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLIN | EPOLLOUT;
    ev.data.ptr = c;
    c->epoll_out = 1;
    epoll_ctl(G.ep, EPOLL_CTL_ADD, fd, &ev);
    for (i = 0; i < 16; i++) raw[i] = (unsigned char)rng_next();
    base64(raw, 16, c->key);
    name_of(c->idx, name);
    if (out_reserve(c, 512) < 0) return -1;
    c->out_len += (size_t)snprintf((char *)c->out + c->out_len, 512,
                                   "GET /start_web_socket?username=%s HTTP/1.1\r\n"
                                   "Host: %s:%d\r\n"
                                   "Upgrade: websocket\r\n"
                                   "Connection: Upgrade\r\n"
                                   "Sec-WebSocket-Key: %s\r\n"
                                   "Sec-WebSocket-Version: 13\r\n\r\n",
                                   name, G.host, G.port, c->key);
    return 0;
}

/* -T: the TLS handshake, a step each time the socket is ready for what it asked; then the
   upgrade request queued at connect goes out. */
static void tls_step(conn *c) {
#ifdef LOAD_TLS
    int r;
    if (!c->ssl) {
        c->ssl = (mbedtls_ssl_context *)malloc(sizeof *c->ssl);
        if (!c->ssl) {
            fail_conn(c, "out of memory");
            return;
        }
        mbedtls_ssl_init(c->ssl);
        if (mbedtls_ssl_setup(c->ssl, &tls_conf) != 0) {
            fail_conn(c, "TLS setup failed");
            return;
        }
        mbedtls_ssl_set_bio(c->ssl, &c->fd, mbedtls_net_send, mbedtls_net_recv, NULL);
    }
    r = mbedtls_ssl_handshake(c->ssl);
    if (r == MBEDTLS_ERR_SSL_WANT_READ || r == MBEDTLS_ERR_SSL_WANT_WRITE) {
        set_epoll_out(c, r == MBEDTLS_ERR_SSL_WANT_WRITE);
        return;
    }
    if (r != 0) {
        fail_conn(c, "TLS handshake failed");
        return;
    }
    c->state = C_HANDSHAKE;
    flush(c);
#else
    fail_conn(c, "built without LOAD_TLS");
#endif
}

static void on_writable(conn *c) {
    if (c->state == C_CONNECTING) {
        int err = 0;
        socklen_t l = sizeof err;
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l) < 0 || err) {
            char why[96];
            snprintf(why, sizeof why, "connect: %s", strerror(err ? err : errno));
            fail_conn(c, why);
            return;
        }
        c->state = G.tls ? C_TLS : C_HANDSHAKE;
    }
    if (c->state == C_TLS) tls_step(c);
    else flush(c);
}

/* Starts connections up to the cap on handshakes in flight (0: no cap). */
static int next_to_start, connecting;
static void start_more(void) {
    int budget = 4096; /* per turn, so that reading keeps up */
    while (connecting && next_to_start < G.nclients && budget-- > 0 && (G.max_pending <= 0 || T.n_pending < G.max_pending))
        start_connect(&conns[next_to_start++]);
}

/* ------------------------------------------------------------------------------------------ */
/* the event loop                                                                             */

static void on_tick(void); /* latency pacing */

/* Runs until cond() holds (1) or the deadline passes (0). */
static int loop_until(int (*cond)(void), uint64_t deadline) {
    struct epoll_event evs[512];
    for (;;) {
        uint64_t now;
        int n, i, ms;
        start_more();
        if (cond()) return 1;
        now = mono_ns();
        if (now >= deadline) return 0;
        ms = (int)((deadline - now + 999999) / 1000000);
        if (ms > G.poll_cap_ms) ms = G.poll_cap_ms;
        n = epoll_wait(G.ep, evs, 512, ms);
        if (n < 0 && errno != EINTR) {
            perror("load: epoll_wait");
            return 0;
        }
        for (i = 0; i < n; i++) {
            conn *c = (conn *)evs[i].data.ptr;
            if (!c) {
                on_tick();
                continue;
            }
            if (c->state == C_DONE) continue;
            if ((evs[i].events & (EPOLLOUT | EPOLLERR)) || (c->state == C_CONNECTING && (evs[i].events & EPOLLHUP)))
                on_writable(c);
            if (c->state != C_DONE && c->state != C_CONNECTING && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                on_readable(c);
        }
    }
}

static int all_settled(void) { /* every client converged, or nothing left that could */
    return T.n_converged + T.n_failed + T.n_closed >= G.nclients && next_to_start >= G.nclients;
}
static int any_failed(void) { return T.n_failed + T.n_closed > 0; }
static int join_cond(void) { return all_settled() || any_failed(); }
static int drained(void) { return T.delivered >= T.sent * (uint64_t)G.nclients || T.n_open < G.nclients; }
static int never(void) { return 0; }
static int probe_done(void) { return T.probe_got >= (uint64_t)G.nclients || T.n_open < G.nclients; }

static void on_tick(void) {
    uint64_t ticks = 0, k;
    if (read(G.tfd, &ticks, sizeof ticks) != (ssize_t)sizeof ticks) return;
    if (!T.sending) return;
    if (ticks > 1) T.late_ticks += ticks - 1;
    if (ticks > 1000) ticks = 1000; /* bounded catch-up */
    for (k = 0; k < ticks && conns[0].state == C_OPEN; k++) send_measured(&conns[0]);
}

/* ------------------------------------------------------------------------------------------ */
/* heap numbers from heap_server (SIGUSR1 -> "heap_bytes=N heap_blocks=M" on its stderr)      */

static long heap_lines_seen;
static long long heap_last_bytes = -1, heap_last_blocks = -1;

static long heap_scan(void) { /* counts the lines in the log and remembers the last values */
    static char buf[1 << 16];
    int fd = open(G.heap_log, O_RDONLY | O_CLOEXEC);
    long count = 0;
    ssize_t n;
    size_t have = 0;
    if (fd < 0) return -1;
    /* The log is small (a line per query plus the server's own warnings); read its tail. */
    {
        off_t size = lseek(fd, 0, SEEK_END);
        off_t from = size > (off_t)sizeof buf - 1 ? size - (off_t)sizeof buf + 1 : 0;
        lseek(fd, from, SEEK_SET);
        while (have < sizeof buf - 1 && (n = read(fd, buf + have, sizeof buf - 1 - have)) > 0) have += (size_t)n;
    }
    close(fd);
    buf[have] = 0;
    {
        char *p = buf;
        while ((p = strstr(p, "heap_bytes=")) != NULL) {
            long long b = -1, k = -1;
            if (sscanf(p, "heap_bytes=%lld heap_blocks=%lld", &b, &k) == 2) heap_last_bytes = b, heap_last_blocks = k, count++;
            p += 11;
        }
    }
    return count;
}
static int heap_new_line(void) { return heap_scan() > heap_lines_seen; }

static int heap_query(long long *bytes, long long *blocks) {
    int ok, saved = G.poll_cap_ms;
    *bytes = *blocks = -1;
    if (!G.heap_log || G.pid <= 0) return 0;
    heap_lines_seen = heap_scan();
    if (heap_lines_seen < 0) return 0;
    if (kill(G.pid, SIGUSR1) < 0) return 0;
    G.poll_cap_ms = 5; /* re-read the log every few ms while the connections keep being served */
    ok = loop_until(heap_new_line, mono_ns() + 3000000000ull);
    G.poll_cap_ms = saved;
    if (ok) *bytes = heap_last_bytes, *blocks = heap_last_blocks;
    return ok;
}

/* ------------------------------------------------------------------------------------------ */
/* selftest                                                                                   */

static int st_fail;
#define CHECK(cond, what)                                                                                              \
    do {                                                                                                               \
        if (!(cond)) st_fail++, fprintf(stderr, "selftest FAIL: %s (line %d)\n", what, __LINE__);                     \
    } while (0)

static size_t srv_frame(unsigned char *b, int fin, int op, const void *payload, size_t n) {
    size_t h = 0, i;
    b[h++] = (unsigned char)((fin ? 0x80 : 0) | op);
    if (n < 126) b[h++] = (unsigned char)n;
    else if (n <= 0xFFFF) b[h++] = 126, b[h++] = (unsigned char)(n >> 8), b[h++] = (unsigned char)n;
    else {
        b[h++] = 127;
        for (i = 0; i < 8; i++) b[h++] = (unsigned char)((uint64_t)n >> (56 - 8 * i));
    }
    memcpy(b + h, payload, n);
    return h + n;
}

static size_t chat_json(char *out, int sid, int seq, size_t text_len) {
    int k = sprintf(out, "{\"event\":\"send-message\",\"username\":\"b%05d\",\"message\":\"%d:%d:%llu:", sid, sid, seq,
                    (unsigned long long)mono_ns());
    size_t n = (size_t)k;
    while (n < (size_t)k + text_len) out[n++] = 'y';
    memcpy(out + n, "\"}", 2);
    return n + 2;
}

/* Parses the masked client frames in c->out: returns their count, checks each. */
static int st_client_frames(conn *c, int want_op, const unsigned char *want, size_t want_len, int *classes) {
    size_t pos = 0;
    int count = 0;
    while (pos < c->out_len) {
        unsigned char *h = c->out + pos, *m, *pl;
        size_t hl = 2, n = h[1] & 0x7F, i;
        CHECK(h[1] & 0x80, "client frame is masked");
        CHECK(h[0] == (0x80 | want_op), "client frame opcode + FIN");
        if (n == 126) n = (size_t)h[2] << 8 | h[3], hl = 4, classes[1]++;
        else if (n == 127) {
            for (n = 0, i = 0; i < 8; i++) n = n << 8 | h[2 + i];
            hl = 10, classes[2]++;
        } else classes[0]++;
        CHECK((hl == 2 && n < 126) || (hl == 4 && n >= 126 && n <= 0xFFFF) || (hl == 10 && n > 0xFFFF), "shortest length form");
        m = h + hl, pl = m + 4;
        mask_bytes(pl, n, m);
        if (want) CHECK(n == want_len && !memcmp(pl, want, n), "payload round trip");
        pos += hl + 4 + n;
        count++;
    }
    CHECK(pos == c->out_len, "frames fill the buffer exactly");
    return count;
}

static int selftest(void) {
    static unsigned char stream[400000], big[200000];
    static char js[200000];
    char acc[29];
    conn c;
    size_t sizes[] = {0, 1, 125, 126, 127, 1000, 65535, 65536, 70000}, i, n, len, chunk;
    int classes[3] = {0, 0, 0}, round;
    uint32_t expect[4];
    unsigned char m1[4], m2[4];

    ws_accept_for("dGhlIHNhbXBsZSBub25jZQ==", acc); /* RFC 6455, section 1.3 */
    CHECK(!strcmp(acc, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "Sec-WebSocket-Accept of the RFC example");

    G.nclients = 3, G.nsenders = 3, G.msg_bytes = 10, G.window = 1;
    namebits = (unsigned char *)calloc(1, 16);

    /* client frames: every length class, masked, shortest form, random masks */
    memset(&c, 0, sizeof c);
    c.fd = -1;
    for (i = 0; i < sizeof big; i++) big[i] = (unsigned char)(i * 7 + 3);
    for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        c.out_len = c.out_off = 0;
        CHECK(send_frame(&c, 1, big, sizes[i]) == 0, "send_frame");
        CHECK(st_client_frames(&c, 1, big, sizes[i], classes) == 1, "one frame");
    }
    CHECK(classes[0] == 3 && classes[1] == 4 && classes[2] == 2, "7-, 16- and 64-bit lengths used as due");
    c.out_len = 0;
    send_frame(&c, 1, "a", 1);
    memcpy(m1, c.out + 2, 4);
    c.out_len = 0;
    send_frame(&c, 1, "a", 1);
    memcpy(m2, c.out + 2, 4);
    CHECK(memcmp(m1, m2, 4), "a new mask per frame");
    c.out_len = 0;
    CHECK(send_chat(&c, "1:2:3:", 65499) == 0, "send_chat");
    CHECK(c.out[1] == (0x80 | 127), "a 65536-byte payload uses the 64-bit length");
    free(c.out);

    /* server frames: the three length classes, a fragmented message with a ping in between, a
       fragmented user list, a ping; fed in chunks of 1, 7, 4096 bytes and whole */
    n = 0;
    len = (size_t)sprintf(js, "{\"event\":\"update-users\",\"usernames\":[\"b00000\",\"b00001\"]}");
    n += srv_frame(stream + n, 1, 1, js, len); /* 7-bit, incomplete list */
    len = chat_json(js, 0, 0, 200);
    n += srv_frame(stream + n, 1, 1, js, len); /* 16-bit */
    len = chat_json(js, 1, 0, 70000);
    n += srv_frame(stream + n, 1, 1, js, len); /* 64-bit */
    len = chat_json(js, 0, 1, 3000);           /* fragmented in three, a ping after the first */
    n += srv_frame(stream + n, 0, 1, js, 100);
    n += srv_frame(stream + n, 1, 9, "hi", 2);
    n += srv_frame(stream + n, 0, 0, js + 100, 1000);
    n += srv_frame(stream + n, 1, 0, js + 1100, len - 1100);
    len = (size_t)sprintf(js, "{\"event\":\"update-users\",\"usernames\":[\"b00002\",\"other\",\"b00000\",\"b00001\"]}");
    n += srv_frame(stream + n, 0, 1, js, 30); /* the complete list, fragmented */
    n += srv_frame(stream + n, 1, 0, js + 30, len - 30);
    len = chat_json(js, 2, 0, 10);
    n += srv_frame(stream + n, 1, 1, js, len);
    len = (size_t)sprintf(js, "{\"username\":\"b00001\",\"event\":\"send-message\",\"message\":\"1:1:%llu:yyyyyyyyyy\"}",
                          (unsigned long long)mono_ns());
    n += srv_frame(stream + n, 1, 1, js, len); /* another key order: found by searching */
    n += srv_frame(stream + n, 1, 10, "", 0); /* an unsolicited pong: ignored */
    n += srv_frame(stream + n, 1, 9, "", 0);  /* an empty ping */

    for (round = 0; round < 4; round++) {
        memset(&T, 0, sizeof T);
        memset(&c, 0, sizeof c);
        memset(expect, 0, sizeof expect);
        c.fd = -1, c.idx = 2, c.state = C_OPEN, c.expect = expect;
        T.n_open = 1;
        chunk = round == 0 ? 1 : round == 1 ? 7 : round == 2 ? 4096 : n;
        for (i = 0; i < n && c.state == C_OPEN; i += chunk) feed_frames(&c, stream + i, n - i < chunk ? n - i : chunk, mono_ns());
        CHECK(c.state == C_OPEN, "stream parsed without error");
        CHECK(T.delivered == 5 && T.bad == 0, "five chat messages, all well-formed");
        CHECK(T.order_err == 0, "per-sender order");
        CHECK(T.lists == 2 && c.converged, "two lists, the second complete");
        CHECK(hist_n == T.delivered, "a latency sample per delivery");
        {
            int cl[3] = {0, 0, 0};
            size_t pos = 0, frames = 0;
            while (pos < c.out_len) { /* two pongs: "hi" and "" */
                size_t pl = c.out[pos + 1] & 0x7F;
                unsigned char *mk = c.out + pos + 2;
                CHECK(c.out[pos] == 0x8A, "pong opcode");
                mask_bytes(mk + 4, pl, mk);
                CHECK(frames != 0 || (pl == 2 && !memcmp(mk + 4, "hi", 2)), "pong echoes the ping");
                pos += 6 + pl, frames++;
            }
            (void)cl;
            CHECK(frames == 2, "a pong per ping");
        }
        free(c.out), free(c.full);
        memset(hist, 0, sizeof hist), hist_n = 0;
    }
    /* the handshake response with the first frames in the same read, split anywhere */
    for (round = 0; round < 3; round++) {
        char resp[512];
        size_t rl;
        memset(&T, 0, sizeof T);
        memset(&c, 0, sizeof c);
        c.fd = -1, c.idx = 2, c.state = C_HANDSHAKE, T.n_pending = 1;
        strcpy(c.key, "dGhlIHNhbXBsZSBub25jZQ==");
        rl = (size_t)sprintf(resp, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                                   "sec-websocket-accept:  s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n");
        len = (size_t)sprintf(js, "{\"event\":\"update-users\",\"usernames\":[\"b00000\",\"b00001\",\"b00002\"]}");
        rl += srv_frame((unsigned char *)resp + rl, 1, 1, js, len);
        chunk = round == 0 ? 1 : round == 1 ? 5 : rl;
        for (i = 0; i < rl && c.state != C_DONE; i += chunk) {
            size_t k = rl - i < chunk ? rl - i : chunk;
            if (c.state == C_HANDSHAKE) feed_handshake(&c, (unsigned char *)resp + i, k, 0);
            else feed_frames(&c, (unsigned char *)resp + i, k, 0);
        }
        CHECK(c.state == C_OPEN && T.n_open == 1 && T.n_pending == 0, "handshake accepted");
        CHECK(c.converged && T.lists == 1, "the frame right after the response is read");
        free(c.out), free(c.full), free(c.hs);
    }
    memset(&c, 0, sizeof c);
    c.fd = -1, c.state = C_HANDSHAKE;
    strcpy(c.key, "dGhlIHNhbXBsZSBub25jZQ==");
    {
        static const char wrong[] = "HTTP/1.1 101 OK\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo!\r\n\r\n";
        feed_handshake(&c, (const unsigned char *)wrong, sizeof wrong - 1, 0);
    }
    CHECK(c.state == C_DONE, "a wrong accept value is refused");
    /* errors: a masked server frame, a continuation out of nowhere */
    {
        unsigned char bad[8] = {0x81, 0x81, 1, 2, 3, 4, 'x'};
        memset(&c, 0, sizeof c);
        c.fd = -1, c.state = C_OPEN;
        feed_frames(&c, bad, 7, 0);
        CHECK(c.state == C_DONE, "a masked server frame is an error");
        memset(&c, 0, sizeof c);
        c.fd = -1, c.state = C_OPEN;
        bad[0] = 0x80, bad[1] = 0;
        feed_frames(&c, bad, 2, 0);
        CHECK(c.state == C_DONE, "a continuation without a message is an error");
    }
    /* histogram: percentiles within the bucket error */
    memset(hist, 0, sizeof hist), hist_n = 0;
    for (i = 1; i <= 100000; i++) h_add(i * 1000);
    CHECK(h_pct_us(0.5) > 49000 && h_pct_us(0.5) < 51000, "p50 of 1..100000 us");
    CHECK(h_pct_us(0.99) > 97500 && h_pct_us(0.99) < 100500, "p99 of 1..100000 us");
    printf("RESULT scenario=selftest status=%s failures=%d\n", st_fail ? "FAIL" : "ok", st_fail);
    return st_fail ? 2 : 0;
}

/* ------------------------------------------------------------------------------------------ */
/* main                                                                                       */

static void usage(FILE *f) {
    fprintf(f,
            "usage: load fanout|large|latency|idle|storm|selftest -p PORT [options]\n"
            "  -p PORT       server port (host 127.0.0.1, or -a ADDR)\n"
            "  -q PORT       the clients that do not send join this port instead (another board of a\n"
            "                bridged room); latency then counts their deliveries only\n"
            "  -P PID        server process: RSS and CPU time are read from /proc/PID\n"
            "  -H FILE       the server's stderr (heap_server): SIGUSR1 heap numbers are read from it\n"
            "  -L LABEL      scenario name in the RESULT line (default: the scenario)\n"
            "  -S NAME       server name in the RESULT line\n"
            "  -n N          clients              -s S    senders         -w W   window per sender\n"
            "  -m BYTES      message text bytes   -d MS   measured phase  -r R   msgs/s (latency)\n"
            "  -t MS         join timeout (DNF after it)     -D MS  drain timeout\n"
            "  -c C          handshakes in flight at most (idle; 0 = all at once)\n"
            "  -x            skip the 64 KiB probe (large)\n"
            "  -T            wss:// (a build with -DLOAD_TLS and mbedTLS)\n");
}

int main(int argc, char **argv) {
    const char *sc;
    int opt, i, joined, status_ok = 1;
    struct rlimit rl;
    double srv_cpu0 = -1, srv_cpu1 = -1, cli_cpu0, cli_cpu1 = 0, sys0 = -1, sys1 = -1;
    uint64_t t0 = 0, t1 = 0, t_send_end = 0;
    long rss_before = -1, rss_after = -1;
    long long heap_b0 = -1, heap_k0 = -1, heap_b1 = -1, heap_k1 = -1;
    const char *status = "ok", *probe = "-";
    double wall_s, join_ms = -1;

    if (argc < 2) {
        usage(stderr);
        return 1;
    }
    sc = argv[1];
    if (!strcmp(sc, "fanout")) G.scenario = S_FANOUT, G.nclients = 100, G.nsenders = 10, G.msg_bytes = 64, G.window = 8;
    else if (!strcmp(sc, "large")) G.scenario = S_LARGE, G.nclients = 100, G.nsenders = 4, G.msg_bytes = 16384, G.window = 4;
    else if (!strcmp(sc, "latency")) G.scenario = S_LATENCY, G.nclients = 10, G.nsenders = 1, G.msg_bytes = 64, G.rate = 2000;
    else if (!strcmp(sc, "idle")) G.scenario = S_IDLE, G.nclients = 1000, G.max_pending = 256;
    else if (!strcmp(sc, "storm")) G.scenario = S_STORM, G.nclients = 1000, G.max_pending = 0;
    else if (!strcmp(sc, "selftest")) G.scenario = S_SELFTEST;
    else if (!strcmp(sc, "-h") || !strcmp(sc, "--help")) {
        usage(stdout);
        return 0;
    } else {
        usage(stderr);
        return 1;
    }
    rng_seed();
    G.poll_cap_ms = 100;
    if (G.scenario == S_SELFTEST) return selftest();

    G.label = sc, G.server = "-", G.host = "127.0.0.1";
    G.duration_ms = 5000, G.drain_ms = 5000, G.probe = G.scenario == S_LARGE;
    G.join_timeout_ms = G.scenario == S_IDLE || G.scenario == S_STORM ? 20000 : 10000;
    optind = 2;
    while ((opt = getopt(argc, argv, "p:q:a:P:H:L:S:n:s:w:m:d:r:t:D:c:xT")) != -1) {
        switch (opt) {
        case 'p': G.port = atoi(optarg); break;
        case 'q': G.port2 = atoi(optarg); break;
        case 'a': G.host = optarg; break;
        case 'P': G.pid = atoi(optarg); break;
        case 'H': G.heap_log = optarg; break;
        case 'L': G.label = optarg; break;
        case 'S': G.server = optarg; break;
        case 'n': G.nclients = atoi(optarg); break;
        case 's': G.nsenders = atoi(optarg); break;
        case 'w': G.window = atoi(optarg); break;
        case 'm': G.msg_bytes = (size_t)atol(optarg); break;
        case 'd': G.duration_ms = atoi(optarg); break;
        case 'r': G.rate = atoi(optarg); break;
        case 't': G.join_timeout_ms = atoi(optarg); break;
        case 'D': G.drain_ms = atoi(optarg); break;
        case 'c': G.max_pending = atoi(optarg); break;
        case 'x': G.probe = 0; break;
        case 'T': G.tls = 1; break;
        default: usage(stderr); return 1;
        }
    }
    if (G.port <= 0 || G.port > 65535 || G.nclients < 1 || G.nclients > 99999 || G.nsenders < 0 ||
        G.nsenders > G.nclients || G.msg_bytes > 60000 || G.duration_ms < 1 || G.duration_ms > 600000 ||
        G.join_timeout_ms < 1 || G.join_timeout_ms > 600000 || G.drain_ms < 0 || G.drain_ms > 600000 ||
        ((G.scenario == S_FANOUT || G.scenario == S_LARGE) && (G.window < 1 || G.nsenders < 1)) ||
        (G.scenario == S_LATENCY && (G.rate < 1 || G.rate > 1000000))) {
        fprintf(stderr, "load: bad arguments\n");
        usage(stderr);
        return 1;
    }
    if (G.scenario == S_LATENCY) G.nsenders = 1;
    if (G.scenario == S_IDLE || G.scenario == S_STORM) G.nsenders = 0;
    if (G.msg_bytes < 48 && G.nsenders) G.msg_bytes = 48; /* room for "sender:seq:time:" */
    memset(&G.addr, 0, sizeof G.addr);
    G.addr.sin_family = AF_INET;
    G.addr.sin_port = htons((uint16_t)G.port);
    if (inet_pton(AF_INET, G.host, &G.addr.sin_addr) != 1) {
        fprintf(stderr, "load: -a needs an IPv4 address\n");
        return 1;
    }
    G.addr2 = G.addr;
    G.addr2.sin_port = htons((uint16_t)G.port2);

    /* descriptors: as many as the hard limit allows (10k clients need it) */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && (rlim_t)G.nclients + 16 > rl.rlim_cur) {
        fprintf(stderr, "load: %d clients need more descriptors than RLIMIT_NOFILE (%lu)\n", G.nclients,
                (unsigned long)rl.rlim_cur);
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
#ifdef LOAD_TLS
    if (G.tls && tls_setup() != 0) {
        fprintf(stderr, "load: TLS setup failed\n");
        return 1;
    }
#else
    if (G.tls) {
        fprintf(stderr, "load: -T needs a build with -DLOAD_TLS (and mbedTLS)\n");
        return 1;
    }
#endif

    G.ep = epoll_create1(EPOLL_CLOEXEC);
    conns = (conn *)calloc((size_t)G.nclients, sizeof *conns);
    namebits = (unsigned char *)calloc(1, (size_t)G.nclients / 8 + 1);
    if (G.ep < 0 || !conns || !namebits) {
        fprintf(stderr, "load: out of memory or descriptors\n");
        return 1;
    }
    for (i = 0; i < G.nclients; i++) {
        conns[i].fd = -1, conns[i].idx = i;
        if (G.nsenders) {
            conns[i].expect = (uint32_t *)calloc((size_t)G.nsenders, sizeof(uint32_t));
            if (!conns[i].expect) return 1;
        }
    }

    /* ---- join ------------------------------------------------------------------------- */
    rss_before = proc_status_kb(G.pid, "VmRSS:");
    if (G.scenario == S_IDLE || G.scenario == S_STORM) {
        heap_query(&heap_b0, &heap_k0);
        srv_cpu0 = proc_cpu_s(G.pid);
        sys0 = sys_busy_s();
    }
    T.t_first_connect = mono_ns();
    t0 = T.t_first_connect;
    cli_cpu0 = cpu_seconds();
    connecting = 1;
    joined = loop_until(join_cond, T.t_first_connect + (uint64_t)G.join_timeout_ms * 1000000u) && !any_failed();
    if (joined) join_ms = (double)(T.t_converged - T.t_first_connect) / 1e6;

    if (G.scenario == S_IDLE || G.scenario == S_STORM) {
        t1 = mono_ns();
        srv_cpu1 = proc_cpu_s(G.pid);
        cli_cpu1 = cpu_seconds();
        sys1 = sys_busy_s();
        rss_after = proc_status_kb(G.pid, "VmRSS:");
        if (joined) heap_query(&heap_b1, &heap_k1);
        if (!joined) status = any_failed() ? "FAIL" : "DNF", status_ok = 0;
    } else if (!joined) {
        status = any_failed() ? "FAIL" : "DNF", status_ok = 0;
        t1 = mono_ns();
    } else {
        /* ---- measured phase ----------------------------------------------------------- */
        srv_cpu0 = proc_cpu_s(G.pid);
        cli_cpu0 = cpu_seconds();
        sys0 = sys_busy_s();
        t0 = mono_ns();
        T.sending = 1;
        if (G.scenario == S_LATENCY) {
            struct itimerspec its;
            struct epoll_event ev;
            long period = 1000000000L / G.rate;
            G.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
            memset(&its, 0, sizeof its);
            its.it_interval.tv_sec = period / 1000000000L, its.it_interval.tv_nsec = period % 1000000000L;
            its.it_value = its.it_interval;
            memset(&ev, 0, sizeof ev);
            ev.events = EPOLLIN, ev.data.ptr = NULL;
            if (G.tfd < 0 || epoll_ctl(G.ep, EPOLL_CTL_ADD, G.tfd, &ev) < 0 || timerfd_settime(G.tfd, 0, &its, NULL) < 0) {
                perror("load: timerfd");
                return 2;
            }
            send_measured(&conns[0]); /* the first at t0, the rest at t0 + k * period */
        } else {
            for (i = 0; i < G.nsenders; i++)
                while (conns[i].inflight < G.window && conns[i].state == C_OPEN) send_measured(&conns[i]);
        }
        loop_until(never, t0 + (uint64_t)G.duration_ms * 1000000u);
        T.sending = 0;
        t_send_end = mono_ns();
        if (G.tfd > 0) close(G.tfd), G.tfd = -1;
        loop_until(drained, t_send_end + (uint64_t)G.drain_ms * 1000000u);
        /* the rate is over the whole sending window plus the tail, never a shorter span */
        t1 = T.t_last_delivery > t_send_end ? T.t_last_delivery : t_send_end;
        srv_cpu1 = proc_cpu_s(G.pid);
        cli_cpu1 = cpu_seconds();
        sys1 = sys_busy_s();
        if (T.n_open < G.nclients) status = "FAIL", status_ok = 0;
        if (G.probe && T.n_open == G.nclients) {
            /* one message whose frame payload is exactly 65536 bytes: the 64-bit length class
               out, and a broadcast over 65535 bytes back; not part of the numbers above */
            const size_t wrapper = 37; /* {"event":"send-message","message":""} */
            if (send_chat(&conns[0], "P:", 65536 - wrapper) == 0) {
                flush(&conns[0]);
                probe = loop_until(probe_done, mono_ns() + 5000000000ull) && T.probe_got >= (uint64_t)G.nclients ? "ok" : "FAIL";
            } else {
                probe = "FAIL";
            }
        }
    }
    if (rss_after < 0) rss_after = proc_status_kb(G.pid, "VmRSS:");

    /* ---- report --------------------------------------------------------------------------- */
    wall_s = (double)(t1 - t0) / 1e9;
    {
        uint64_t expected = T.sent * (uint64_t)G.nclients;
        long long lost = (long long)(expected - (T.delivered < expected ? T.delivered : expected));
        double dps = wall_s > 0 ? (double)T.delivered / wall_s : 0;
        double ccpu = wall_s > 0 ? (cli_cpu1 - cli_cpu0) / wall_s : 0;
        double scpu = srv_cpu0 >= 0 && srv_cpu1 >= 0 ? srv_cpu1 - srv_cpu0 : -1;
        double other = sys0 >= 0 && sys1 >= 0 && scpu >= 0 && wall_s > 0 ? (sys1 - sys0 - scpu - (cli_cpu1 - cli_cpu0)) / wall_s : -1;
        char rss_pc[32] = "-", heap_pc[32] = "-", jm[32] = "DNF";
        if (joined) snprintf(jm, sizeof jm, "%.1f", join_ms);
        if (joined && rss_before > 0 && rss_after > 0 && (G.scenario == S_IDLE || G.scenario == S_STORM))
            snprintf(rss_pc, sizeof rss_pc, "%.0f", (double)(rss_after - rss_before) * 1024.0 / G.nclients);
        if (heap_b0 >= 0 && heap_b1 >= 0) snprintf(heap_pc, sizeof heap_pc, "%.0f", (double)(heap_b1 - heap_b0) / G.nclients);
        if (T.bad || T.order_err) status_ok = 0, status = "FAIL";
        printf("RESULT scenario=%s server=%s status=%s clients=%d senders=%d msg_bytes=%lu open=%d joined=%d join_ms=%s "
               "sent=%llu delivered=%llu lost=%lld bad=%llu order_err=%llu closed=%d failed=%d dps=%.0f "
               "p50_us=%.1f p99_us=%.1f max_us=%.1f lists=%llu bytes=%llu srv_cpu_s=%.4f wall_s=%.3f client_cpu=%.2f other_cpu=%.2f "
               "late_ticks=%llu rss_before_kb=%ld rss_after_kb=%ld rss_per_conn_b=%s heap_before=%lld heap_after=%lld "
               "heap_blocks_after=%lld heap_per_conn_b=%s probe=%s",
               G.label, G.server, status, G.nclients, G.nsenders, (unsigned long)G.msg_bytes, T.n_open, T.n_converged, jm,
               (unsigned long long)T.sent, (unsigned long long)T.delivered, lost, (unsigned long long)T.bad,
               (unsigned long long)T.order_err, T.n_closed, T.n_failed, dps, h_pct_us(0.50), h_pct_us(0.99),
               hist_n ? (double)hist_max / 1000.0 : -1.0, (unsigned long long)T.lists, (unsigned long long)T.bytes_in,
               scpu, wall_s, ccpu, other, (unsigned long long)T.late_ticks, rss_before, rss_after, rss_pc, heap_b0, heap_b1,
               heap_k1, heap_pc, probe);
        if (T.fail_reason[0]) {
            char *p;
            for (p = T.fail_reason; *p; p++)
                if (*p == ' ') *p = '_';
            printf(" reason=%s", T.fail_reason);
        }
        printf("\n");
        fflush(stdout);
        if (lost) status_ok = 0;
    }
    for (i = 0; i < G.nclients; i++) conn_close_fd(&conns[i]);
    return status_ok ? 0 : 2;
}
