/* codec_client.c - a WebSocket chat client built on chat.h's codec tier alone (CHAT_CODECS_ONLY:
   no server code is compiled in). It starts the example server, upgrades with the http layer
   (chat_http_parse_response, chat_http_header, chat_ws_accept_key), reads the server's frames
   with the decoder in client mode (unmasked = 1), sends masked frames built with chat_ws_header,
   and reads events with chat_json_get. It proves the codec tier is enough for a real client, and
   that the server answers it right: the user list, the echo of a message, pong, close.

   usage: tests/codec_client [./chat]     exit 0 and "codec client: ok ..." when every step holds */
#define _POSIX_C_SOURCE 200809L
#define CHAT_CODECS_ONLY
#define CHAT_IMPLEMENTATION
#include "../chat.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <arpa/inet.h>

#define CC_STEP_MS 5000 /* the longest wait for any one reply */

static pid_t cc_server = -1;

static void cc_fail(const char *fmt, const char *detail) {
    printf("FAIL codec client: ");
    printf(fmt, detail);
    printf("\n");
    if (cc_server > 0) kill(cc_server, SIGKILL);
    exit(1);
}

/* Starts the server on a free loopback port and returns the port from its "Listening at" line. */
static int cc_start_server(const char *bin) {
    char line[256];
    int out[2], port = 0;
    FILE *f;
    if (pipe(out) != 0) cc_fail("pipe: %s", strerror(errno));
    cc_server = fork();
    if (cc_server < 0) cc_fail("fork: %s", strerror(errno));
    if (cc_server == 0) {
        dup2(out[1], 1);
        close(out[0]);
        close(out[1]);
        execl(bin, bin, "-p", "0", "-b", "127.0.0.1", "-q", (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    f = fdopen(out[0], "r");
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "Listening at http://127.0.0.1:%d", &port) == 1) break;
    if (port <= 0) cc_fail("%s printed no \"Listening at\" line", bin);
    return port; /* the pipe stays open: the server may log more */
}

/* Reads what the socket has, waiting at most CC_STEP_MS; 0 on EOF. */
static ssize_t cc_read(int fd, unsigned char *p, size_t cap) {
    struct pollfd pfd;
    ssize_t n;
    pfd.fd = fd;
    pfd.events = POLLIN;
    if (poll(&pfd, 1, CC_STEP_MS) != 1) cc_fail("%s", "no reply within 5 s");
    do n = read(fd, p, cap);
    while (n < 0 && errno == EINTR);
    if (n < 0) cc_fail("read: %s", strerror(errno));
    return n;
}

static void cc_write_all(int fd, const void *p, size_t n) {
    const char *c = (const char *)p;
    while (n > 0) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) cc_fail("write: %s", strerror(errno));
        c += w;
        n -= (size_t)w;
    }
}

/* A masked client frame, as RFC 6455 5.3 requires (a fixed mask is enough for a test). */
static void cc_send_frame(int fd, int opcode, const void *payload, size_t n) {
    static const unsigned char mask[4] = {0x11, 0x7e, 0xa3, 0x05};
    unsigned char frame[CHAT_WS_MAX_HEADER + 256];
    size_t h = chat_ws_header(frame, opcode, n, mask);
    if (n > sizeof frame - h) cc_fail("%s", "frame too long for this client");
    memcpy(frame + h, payload, n);
    chat_ws_unmask(frame + h, n, mask, 0);
    cc_write_all(fd, frame, h + n);
}

/* The connection: received bytes not decoded yet, and the message being put together. */
typedef struct cc_conn {
    int fd;
    chat_ws_decoder dec;
    unsigned char rx[1 << 16];
    size_t rx_len;
    chat_buf message;
} cc_conn;

/* The next whole event from the server: a text message (in c->message), a pong or a close. */
static chat_ws_event cc_next_event(cc_conn *c) {
    for (;;) {
        size_t pos = 0;
        while (pos <= c->rx_len) {
            chat_ws_event ev;
            pos += chat_ws_decode(&c->dec, c->rx + pos, c->rx_len - pos, 1 << 20, &ev);
            if (ev.type == CHAT_WS_NEED_MORE) break;
            if (ev.type == CHAT_WS_ERROR) cc_fail("%s", "the server sent a frame a client must fail");
            if (ev.type == CHAT_WS_DATA && chat_buf_append(&c->message, ev.data, ev.len) != CHAT_OK)
                cc_fail("%s", "out of memory");
            if ((ev.type == CHAT_WS_DATA && ev.last) || ev.type == CHAT_WS_PONG || ev.type == CHAT_WS_CLOSE ||
                ev.type == CHAT_WS_PING) {
                memmove(c->rx, c->rx + pos, c->rx_len - pos);
                c->rx_len -= pos;
                return ev; /* PONG/CLOSE data points at bytes the next read may overwrite: use it now */
            }
        }
        memmove(c->rx, c->rx + pos, c->rx_len - pos);
        c->rx_len -= pos;
        if (c->rx_len == sizeof c->rx) cc_fail("%s", "receive buffer full");
        {
            ssize_t n = cc_read(c->fd, c->rx + c->rx_len, sizeof c->rx - c->rx_len);
            if (n == 0) cc_fail("%s", "the server closed the connection early");
            c->rx_len += (size_t)n;
        }
    }
}

/* The next text message whose "event" is `event`; earlier other events are skipped. */
static void cc_expect_event(cc_conn *c, const char *event) {
    int i;
    for (i = 0; i < 20; i++) {
        chat_span name;
        chat_ws_event ev;
        c->message.len = 0;
        ev = cc_next_event(c);
        if (ev.type != CHAT_WS_DATA) cc_fail("expected the %s event, got a control frame", event);
        if (chat_json_validate(c->message.data, c->message.len) != 0) cc_fail("%s", "the server sent invalid JSON");
        if (chat_json_get(c->message.data, c->message.len, "event", &name) == 1 && chat_json_string_is(name, event))
            return;
    }
    cc_fail("no %s event in 20 messages", event);
}

/* The decoded string value of `key` in the current message is `want`. */
static void cc_expect_string(cc_conn *c, const char *key, const char *want) {
    chat_span v;
    chat_buf got;
    memset(&got, 0, sizeof got);
    if (chat_json_get(c->message.data, c->message.len, key, &v) != 1 || chat_json_string(v, &got) != 0 ||
        got.len != strlen(want) || memcmp(got.data, want, got.len) != 0)
        cc_fail("the message has not the expected \"%s\"", key);
    chat_buf_free(&got);
}

/* GET /start_web_socket with a fresh key; checks the 101 and its accept key; keeps what follows. */
static void cc_upgrade(cc_conn *c, int port, const char *username) {
    static const char key[] = "Y29kZWMtdGllci1rZXkhIQ==";
    char req[512], accept[29];
    chat_http_request resp;
    chat_span v;
    size_t scanned = 0;
    int head = CHAT_HTTP_INCOMPLETE, n;
    n = snprintf(req, sizeof req,
                 "GET /start_web_socket?username=%s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
                 username, port, key);
    cc_write_all(c->fd, req, (size_t)n);
    while (head == CHAT_HTTP_INCOMPLETE) {
        ssize_t got = cc_read(c->fd, c->rx + c->rx_len, sizeof c->rx - c->rx_len);
        if (got == 0) cc_fail("%s", "closed during the upgrade");
        c->rx_len += (size_t)got;
        head = chat_http_parse_response((const char *)c->rx, c->rx_len, 8192, &scanned, &resp);
    }
    if (head < 0) cc_fail("%s", "the server's answer is not an HTTP response");
    if (resp.status != 101) cc_fail("%s", "the upgrade was not answered with 101");
    if (!chat_http_header(&resp, "upgrade", &v) || !chat_http_token_list_has(v, "websocket"))
        cc_fail("%s", "no Upgrade: websocket");
    if (!(resp.flags & CHAT_HTTP_CONN_UPGRADE)) cc_fail("%s", "no Connection: Upgrade");
    chat_ws_accept_key(key, sizeof key - 1, accept);
    if (chat_http_header(&resp, "sec-websocket-accept", &v) != 1 || v.n != 28 || memcmp(v.p, accept, 28) != 0)
        cc_fail("%s", "a wrong Sec-WebSocket-Accept");
    memmove(c->rx, c->rx + head, c->rx_len - (size_t)head); /* frames may follow the head at once */
    c->rx_len -= (size_t)head;
    c->dec.unmasked = 1; /* a server's frames are not masked */
}

int main(int argc, char **argv) {
    static const char event[] = "{\"event\":\"send-message\",\"message\":\"caf\\u00e9 from the codec tier\"}";
    static cc_conn c;
    struct sockaddr_in sa;
    chat_ws_event ev;
    chat_span users;
    unsigned char close_payload[2] = {0x03, 0xe8}; /* 1000 */
    int port, steps = 0, status;
    signal(SIGPIPE, SIG_IGN);
    port = cc_start_server(argc > 1 ? argv[1] : "./chat");

    c.fd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (c.fd < 0 || connect(c.fd, (struct sockaddr *)&sa, sizeof sa) != 0) cc_fail("connect: %s", strerror(errno));

    cc_upgrade(&c, port, "codec");
    steps++;
    cc_expect_event(&c, "update-users");
    if (chat_json_get(c.message.data, c.message.len, "usernames", &users) != 1 || users.n != 9 ||
        memcmp(users.p, "[\"codec\"]", 9) != 0)
        cc_fail("%s", "the user list is not [\"codec\"]");
    steps++;

    cc_send_frame(c.fd, CHAT_WS_OP_TEXT, event, sizeof event - 1);
    cc_expect_event(&c, "send-message");
    cc_expect_string(&c, "username", "codec");
    cc_expect_string(&c, "message", "caf\xc3\xa9 from the codec tier");
    steps++;

    cc_send_frame(c.fd, CHAT_WS_OP_PING, "p1", 2);
    ev = cc_next_event(&c);
    if (ev.type != CHAT_WS_PONG || ev.len != 2 || memcmp(ev.data, "p1", 2) != 0) cc_fail("%s", "no pong with \"p1\"");
    steps++;

    cc_send_frame(c.fd, CHAT_WS_OP_CLOSE, close_payload, 2);
    c.message.len = 0;
    ev = cc_next_event(&c);
    if (ev.type != CHAT_WS_CLOSE || ev.code != 1000) cc_fail("%s", "the close was not answered with 1000");
    if (cc_read(c.fd, c.rx, sizeof c.rx) != 0) cc_fail("%s", "the server sent more after its close");
    steps++;

    close(c.fd);
    chat_buf_free(&c.message);
    kill(cc_server, SIGTERM);
    if (waitpid(cc_server, &status, 0) != cc_server || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        cc_fail("%s", "the server did not stop cleanly on SIGTERM");
    printf("codec client: ok (%d steps: upgrade, user list, message echo, pong, close)\n", steps);
    return 0;
}
