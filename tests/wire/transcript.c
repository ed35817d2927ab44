/* A wire transcript: a fixed conversation with a chat server binary, every byte it sends back
   written out, so two builds can be compared byte for byte (tests/wire/run.sh compares against
   tests/wire/transcript.golden, recorded from chat.h 0.2.0). Each step waits for exactly the
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
        put_bytes("", f.payload, f.len);
        free(f.payload);
    }
}

static void eof(const char *who, wsc *c) {
    wsc_frame f;
    int r = wsc_read_frame(c, &f, 3000);
    if (r > 0) free(f.payload);
    printf("%s %s\n", who, r < 0 ? "(end of stream)" : r == 0 ? "(timeout)" : "(more frames)");
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
    wsc a, b, c, d;
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

    /* a stop closes everyone with 1001 */
    join("e", &c, "/start_web_socket?username=eve");
    frames("e", &c, 3); /* welcome, the history (two), */
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
