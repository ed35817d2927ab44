/* A wire transcript: a fixed conversation with a chat server binary, every byte it sends back
   written out, so two builds can be compared byte for byte (tests/wire/run.sh compares against
   tests/wire/transcript.golden). Each step waits for exactly the
   frames it expects (or the end of the stream), so the transcript does not depend on timing.
   Usage: transcript ./chat  (the server is started with -p 0 and stopped with SIGTERM). */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <sys/wait.h>
#include "../wsclient.h"

#if defined(__GNUC__) || defined(__clang__)
static void transcript_unused(void) __attribute__((unused));
#endif
static void transcript_unused(void) { /* wsclient.h's helpers that this program does not need */
    (void)wsc_http, (void)wsc_wait_eof, (void)wsc_recv, (void)wsc_msg_free;
}

static int port;

#define HTTP(label, literal) http(label, literal, sizeof literal - 1)

/* Bytes as text: printable ASCII as is, the rest as \xNN; one line per record. */
static void put_bytes(const char *who, const unsigned char *p, size_t n) {
    size_t i;
    printf("%s ", who);
    for (i = 0; i < n; i++) {
        if (p[i] >= 0x20 && p[i] < 0x7F && p[i] != '\\') putchar(p[i]);
        else printf("\\x%02x", p[i]);
    }
    putchar('\n');
}

/* An HTTP exchange on a fresh connection: everything until the server closes. */
static void http(const char *label, const char *request, size_t n) {
    wsc c;
    long long deadline;
    if (wsc_open_tcp(&c, "127.0.0.1", port) < 0 || wsc_send_all(c.fd, request, n) < 0) {
        printf("%s: cannot connect\n", label);
        return;
    }
    shutdown(c.fd, SHUT_WR);
    deadline = wsc_now_ms() + 3000;
    while (wsc_fill(&c, deadline) > 0) {}
    put_bytes(label, c.buf, c.len);
    wsc_close(&c);
}

/* Message ids start from the server's clock and times are its clock, and resume tokens are
   random: the transcript shows ids relative to the first one seen ("id":#2), times as T and
   tokens as R, so it does not change from run to run. The last token seen is kept for a resume. */
static unsigned long long first_id;
static int seen_id;
static char last_token[40];

static size_t unstamp(const unsigned char *p, size_t n, unsigned char *out) {
    size_t i = 0, o = 0;
    while (i < n) {
        if (n - i > 5 && memcmp(p + i, "\"id\":", 5) == 0 && p[i + 5] >= '0' && p[i + 5] <= '9') {
            unsigned long long id = 0;
            for (i += 5; i < n && p[i] >= '0' && p[i] <= '9'; i++) id = id * 10 + (unsigned)(p[i] - '0');
            if (!seen_id) first_id = id, seen_id = 1;
            o += (size_t)sprintf((char *)out + o, "\"id\":#%lld", (long long)(id - first_id));
        } else if (n - i > 7 && memcmp(p + i, "\"time\":", 7) == 0) {
            for (i += 7; i < n && p[i] >= '0' && p[i] <= '9'; i++) {}
            o += (size_t)sprintf((char *)out + o, "\"time\":T");
        } else if (n - i > 10 + 32 && memcmp(p + i, "\"resume\":\"", 10) == 0) {
            memcpy(last_token, p + i + 10, 32);
            last_token[32] = 0;
            i += 10 + 32;
            o += (size_t)sprintf((char *)out + o, "\"resume\":\"R");
        } else {
            out[o++] = p[i++];
        }
    }
    return o;
}

/* The n next frames of a client, or what ended them. */
static void frames(const char *who, wsc *c, int n) {
    while (n-- > 0) {
        wsc_frame f;
        int r = wsc_read_frame(c, &f, 3000);
        unsigned char head[2];
        if (r <= 0) {
            printf("%s %s\n", who, r == 0 ? "(timeout)" : "(end of stream)");
            return;
        }
        head[0] = (unsigned char)(f.fin << 7 | f.opcode), head[1] = (unsigned char)f.masked;
        printf("%s [%02x%s] ", who, head[0], f.masked ? " masked" : "");
        {
            unsigned char *shown = (unsigned char *)malloc(f.len + 1);
            put_bytes("", shown, unstamp(f.payload, f.len, shown));
            free(shown);
        }
        free(f.payload);
    }
}

static void eof(const char *who, wsc *c) {
    wsc_frame f;
    int r = wsc_read_frame(c, &f, 3000);
    if (r > 0) free(f.payload);
    printf("%s %s\n", who, r < 0 ? "(end of stream)" : r == 0 ? "(timeout)" : "(more frames)");
}

/* Closes with 1000 and shows the server's answer; user lists on the way are not shown (whether
   one comes before the answer depends on timing). */
static void leave(const char *who, wsc *c) {
    wsc_frame f;
    int r, skipped = 0;
    wsc_send_close(c, 1000, NULL);
    while ((r = wsc_read_frame(c, &f, 3000)) > 0 && f.opcode == 1 && skipped++ < 10) free(f.payload);
    if (r > 0) printf("%s [%02x] leaves\n", who, f.opcode), free(f.payload);
    else printf("%s %s\n", who, r == 0 ? "(timeout)" : "(end of stream)");
    wsc_close(c);
}

static void join(const char *who, wsc *c, const char *target) {
    int status = wsc_connect(c, "127.0.0.1", port, target);
    printf("%s upgrade %d\n", who, status);
    put_bytes(who, (const unsigned char *)c->head, strlen(c->head));
}

int main(int argc, char **argv) {
    static const char big_head[] = "GET / HTTP/1.1\r\nHost: h\r\nX-Big: ";
    char line[256], *big;
    int out[2], status;
    pid_t pid;
    FILE *banner;
    wsc a, b, c, d, e;
    char target[256], gil_token[sizeof last_token];
    if (argc < 2) return 2;
    wsc_keep_welcome = 1;
    if (pipe(out) < 0) return 2;
    pid = fork();
    if (pid == 0) {
        dup2(out[1], 1);
        close(out[0]);
        execl(argv[1], argv[1], "-p", "0", "-a", "0", "-j", "0", (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    banner = fdopen(out[0], "r");
    while (fgets(line, sizeof line, banner))
        if (sscanf(line, "Listening at http://localhost:%d", &port) == 1) break;
    if (!port) return 2;

    /* HTTP: assets, errors, pipelining */
    HTTP("get /", "GET /nope HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
    HTTP("head", "HEAD /nope HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
    HTTP("post", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n");
    HTTP("lower", "get / HTTP/1.1\r\nHost: h\r\n\r\n");
    HTTP("no host", "GET / HTTP/1.1\r\n\r\n");
    HTTP("http/1.0", "GET /nope HTTP/1.0\r\n\r\n");
    HTTP("pipelined", "GET /nope HTTP/1.1\r\nHost: h\r\n\r\nGET /nope2 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
    HTTP("absolute", "GET http://h/nope HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
    HTTP("no upgrade", "GET /start_web_socket?username=x HTTP/1.1\r\nHost: h\r\n\r\n");
    HTTP("version", "GET /start_web_socket?username=x HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 12\r\n\r\n");
    HTTP("bad key", "GET /start_web_socket?username=x HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    "Sec-WebSocket-Key: abc\r\nSec-WebSocket-Version: 13\r\n\r\n");
    HTTP("origin", "GET /start_web_socket?username=x HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Origin: http://evil.example\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
    big = (char *)malloc(9000);
    memcpy(big, big_head, sizeof big_head - 1);
    memset(big + sizeof big_head - 1, 'x', 9000 - (sizeof big_head - 1));
    http("too large", big, 9000);
    free(big);

    /* the room */
    join("a", &a, "/start_web_socket?username=alice");
    frames("a", &a, 2); /* welcome, users */
    join("b", &b, "/start_web_socket?username=b%C3%B6b");
    frames("b", &b, 2);
    frames("a", &a, 1);
    wsc_send_text(&a, "{\"event\":\"send-message\",\"message\":\"hi \\\"x\\\" \\u00e9\\n\\u0001 </script>\"}");
    frames("a", &a, 1);
    frames("b", &b, 1);
    wsc_send_text(&b, "{\"event\":\"other\"}");
    wsc_send_text(&b, "not json");
    wsc_send_frame(&b, 1, 9, "p", 1); /* a ping */
    frames("b", &b, 1);
    wsc_send_frame(&b, 0, 1, "{\"event\":\"send-message\",", 24); /* fragmented */
    wsc_send_frame(&b, 1, 0, "\"message\":\"two parts\"}", 22);
    frames("a", &a, 1);
    frames("b", &b, 1);
    join("c", &c, "/start_web_socket?username=alice"); /* taken */
    frames("c", &c, 1);
    wsc_send_close(&c, 1000, NULL);
    eof("c", &c);
    wsc_close(&c);
    join("c", &c, "/start_web_socket?username="); /* empty */
    frames("c", &c, 1);
    wsc_close(&c);
    join("c", &c, "/start_web_socket"); /* missing */
    frames("c", &c, 1);
    wsc_close(&c);
    join("d", &d, "/start_web_socket?username=dora"); /* gets the history */
    frames("d", &d, 4);
    frames("a", &a, 1);
    frames("b", &b, 1);
    wsc_send_frame(&d, 1, 2, "bin", 3); /* binary: 1003 */
    frames("d", &d, 1);
    wsc_send_close(&d, 1003, NULL);
    eof("d", &d);
    wsc_close(&d);
    frames("a", &a, 1);
    frames("b", &b, 1);
    wsc_send_frame(&b, 1, 1, "\xff", 1); /* invalid UTF-8: 1007 */
    frames("b", &b, 1);
    wsc_close(&b);
    frames("a", &a, 1);
    wsc_send_close(&a, 4000, "bye"); /* echoed */
    frames("a", &a, 1);
    eof("a", &a);
    wsc_close(&a);

    /* our extension: a cid and its repeat, since, resume */
    join("f", &a, "/start_web_socket?username=fay");
    frames("f", &a, 4); /* welcome, the history (two), users */
    wsc_send_text(&a, "{\"event\":\"send-message\",\"message\":\"once\",\"cid\":\"c-1\"}");
    frames("f", &a, 1);
    wsc_send_text(&a, "{\"event\":\"send-message\",\"message\":\"once\",\"cid\":\"c-1\"}"); /* a repeat */
    frames("f", &a, 1); /* the original again, flagged: to f only, not said again */
    snprintf(target, sizeof target, "/start_web_socket?username=gil&since=%llu", first_id + 2);
    join("g", &b, target);
    frames("g", &b, 3); /* welcome, what came after "two parts", users */
    memcpy(gil_token, last_token, sizeof gil_token);
    frames("f", &a, 1);
    join("h", &c, "/start_web_socket?username=hal&since=1"); /* long gone: "missing" */
    frames("h", &c, 5);
    frames("f", &a, 1);
    frames("g", &b, 1);
    snprintf(target, sizeof target, "/start_web_socket?username=gil&since=%llu&resume=%s", first_id + 3, gil_token);
    join("g2", &d, target); /* takes the name over from g */
    frames("g", &b, 1);     /* 4001 */
    frames("g2", &d, 2);    /* welcome, users; the others see no change */
    wsc_send_text(&d, "{\"event\":\"send-message\",\"message\":\"back\"}");
    frames("f", &a, 1);
    frames("h", &c, 1);
    frames("g2", &d, 1);
    join("x", &e, "/start_web_socket?username=gil&resume=00000000000000000000000000000000"); /* wrong */
    frames("x", &e, 1);
    wsc_close(&e);
    wsc_close(&b);
    leave("f", &a);
    leave("h", &c);
    leave("g2", &d);

    /* a stop closes everyone with 1001 */
    join("e", &c, "/start_web_socket?username=eve");
    frames("e", &c, 5); /* welcome, the history (four), */
    frames("e", &c, 1); /* ... users */
    kill(pid, SIGTERM);
    frames("e", &c, 1);
    wsc_send_close(&c, 1001, NULL);
    eof("e", &c);
    wsc_close(&c);
    waitpid(pid, &status, 0);
    printf("server exit %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    return 0;
}
