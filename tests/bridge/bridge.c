/* bridge.c - make bridge: one room across boards through a real mosquitto (Debian's), started
   here on a loopback port the OS picked, with its own configuration and persistence in a
   temporary directory (never the system service). Each board is ./chat -m mqtt://... -n NODE;
   each user a WebSocket client of tests/wsclient.h. Scenarios: three boards, every message
   exactly once in each sender's order, lists the same set within a second; one name joined on two
   boards at the same instant; kill -9 of a board (its will); the broker restarted mid-chat; two
   brokers bridged to each other; a broker that wants a password. Last line "N passed, M failed".
   Run from the repository root: tests/bridge/run_bridge [-v] [FILTER] */
#define _POSIX_C_SOURCE 200809L
#define CHAT_IMPLEMENTATION
#include "../../chat.h"

#include "../test.h"

#include <dirent.h>
#include <sys/stat.h>
#include <sys/wait.h>

static const char *test_root = ".";
static size_t test_heap_bytes, test_heap_blocks; /* harness.h's heap probe is for library servers: unused here */
#if defined(__GNUC__) || defined(__clang__)
#pragma GCC diagnostic ignored "-Wunused-function" /* harness.h has more than these tests use */
#endif
#include "../harness.h"

/* --- the broker ------------------------------------------------------------------------------ */

static char bt_dir[256]; /* the run's temporary directory */

typedef struct bt_broker {
    pid_t pid;
    int port;
    char conf[600];
} bt_broker;

/* A free loopback port: bound with port 0, then let go (mosquitto binds it right after). */
static int bt_free_port(void) {
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = 0;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 && getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0) close(fd);
    return port;
}

/* Waits until something accepts on 127.0.0.1:port (1) or the deadline passes (0). */
static int bt_wait_port(int port, int up, int ms) {
    long long deadline = wsc_now_ms() + ms;
    while (wsc_now_ms() < deadline) {
        int fd = wsc_tcp_connect("127.0.0.1", port);
        if (fd >= 0) close(fd);
        if ((fd >= 0) == up) return 1;
        poll(NULL, 0, 20);
    }
    return 0;
}

/* Writes NAME.conf (with `extra` lines) and starts mosquitto on it. */
static int bt_broker_start(bt_broker *b, const char *name, const char *extra) {
    FILE *f;
    char dir[512];
    snprintf(dir, sizeof dir, "%s/%s", bt_dir, name);
    mkdir(dir, 0700);
    if (!b->port) b->port = bt_free_port();
    snprintf(b->conf, sizeof b->conf, "%s/mosquitto.conf", dir);
    f = fopen(b->conf, "w");
    if (!f) return -1;
    /* as root, mosquitto would become user mosquitto, who cannot write in this directory */
    fprintf(f, "listener %d 127.0.0.1\npersistence true\npersistence_location %s/\nmax_queued_messages 100000\n"
               "log_dest file %s/log\nlog_type all\n%s%s\n",
            b->port, dir, dir, geteuid() == 0 ? "user root\n" : "", extra ? extra : "allow_anonymous true");
    fclose(f);
    fflush(stdout);
    b->pid = fork();
    if (b->pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0) dup2(null, 1), dup2(null, 2);
        execlp("mosquitto", "mosquitto", "-c", b->conf, (char *)NULL);
        _exit(127);
    }
    return b->pid > 0 && bt_wait_port(b->port, 1, harness_wait_ms) ? 0 : -1;
}

/* SIGTERM (mosquitto saves its persistence file on the way out) and wait. */
static void bt_broker_stop(bt_broker *b) {
    int status;
    if (b->pid <= 0) return;
    kill(b->pid, SIGTERM);
    waitpid(b->pid, &status, 0);
    b->pid = 0;
}

/* --- boards and users ------------------------------------------------------------------------- */

typedef struct bt_board {
    harness_server s;
    char node[32];
} bt_board;

static int bt_prefix_n; /* each test its own topic prefix, so retained lists of others stay out */
static char bt_prefix[32];

static void bt_new_prefix(void) { snprintf(bt_prefix, sizeof bt_prefix, "room%d", ++bt_prefix_n); }

/* ./chat -m mqtt://[auth@]127.0.0.1:PORT/PREFIX -n NODE -s [more], its log in its pipe when `logs`. */
static const char *bt_more_args[4]; /* more options for the next boards, NULL-terminated */

static int bt_board_start(bt_board *b, const bt_broker *k, const char *node, const char *auth, int logs) {
    static char url[8][256];
    static int turn;
    const char *args[12];
    int n;
    char *u = url[turn++ % 8];
    int r;
    snprintf(b->node, sizeof b->node, "%s", node);
    snprintf(u, 256, "mqtt://%s%s127.0.0.1:%d/%s", auth ? auth : "", auth ? "@" : "", k->port, bt_prefix);
    args[0] = "-m", args[1] = u, args[2] = "-n", args[3] = b->node, args[4] = "-s";
    for (n = 5; n < 9 && bt_more_args[n - 5]; n++) args[n] = bt_more_args[n - 5];
    args[n] = NULL;
    harness_binary_stderr_to_pipe = logs;
    r = harness_start_binary(&b->s, args);
    harness_binary_stderr_to_pipe = 0;
    return r;
}

/* Waits for a log line containing `text` in a board started with logs. */
static int bt_board_log(bt_board *b, const char *text, char *line, size_t cap) {
    long long deadline = wsc_now_ms() + harness_wait_ms;
    while (harness_read_line(b->s.pipe_fd, line, cap, deadline) >= 0)
        if (strstr(line, text)) return 1;
    return 0;
}

static void bt_board_kill9(bt_board *b) {
    int status;
    kill(b->s.pid, SIGKILL);
    waitpid(b->s.pid, &status, 0);
    close(b->s.pipe_fd);
    b->s.pid = 0;
}

/* /stats of a board, into out. */
static int bt_stats(const bt_board *b, char *out, size_t cap) {
    wsc c;
    char *body = NULL;
    size_t n = 0;
    int status = wsc_http("127.0.0.1", b->s.port, "GET /stats HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &c, &body, &n);
    snprintf(out, cap, "%s", body ? body : "");
    free(body);
    return status;
}

/* Waits until the board's link to the broker is up (its /stats says so). */
static int bt_connected(const bt_board *b) {
    long long deadline = wsc_now_ms() + harness_wait_ms;
    char text[2048];
    while (wsc_now_ms() < deadline) {
        bt_stats(b, text, sizeof text);
        if (strstr(text, "\"connected\":true")) return 1;
        poll(NULL, 0, 20);
    }
    return 0;
}

static unsigned long long bt_stat(const bt_board *b, const char *key) {
    char text[2048], pat[64];
    const char *p;
    bt_stats(b, text, sizeof text);
    snprintf(pat, sizeof pat, "\"%s\":", key);
    p = strstr(text, pat);
    return p ? strtoull(p + strlen(pat), NULL, 10) : 0;
}

typedef struct bt_user {
    wsc c;
    char name[64];
    char users[4096]; /* the last update-users it got */
    int closed;       /* a close frame came: its code */
    char reason[160];
} bt_user;

static int bt_join(bt_user *u, const bt_board *b, const char *name) {
    memset(u, 0, sizeof *u);
    snprintf(u->name, sizeof u->name, "%s", name);
    harness_port = b->s.port;
    return harness_join(&u->c, name) == 101 ? 0 : -1;
}

/* Is `name` in the update-users JSON `list` exactly `times` times? */
static int bt_listed(const char *list, const char *name, int times) {
    char quoted[80];
    const char *p = list;
    int n = 0;
    snprintf(quoted, sizeof quoted, "\"%s\"", name);
    while ((p = strstr(p, quoted)) != NULL) n++, p += strlen(quoted);
    return n == times;
}

/* How many names the last list holds. */
static int bt_list_size(const char *list) {
    const char *p = strchr(list, '[');
    int n = 0;
    if (!p) return -1;
    for (p++; *p && *p != ']'; p++)
        if (*p == '"') n++, p = wsc_string_end(p) - 1;
    return n;
}

/* Reads what has come for u (until a quiet `ms`): lists are kept, closes noted; chat messages
   are handed to `each` (when not NULL). Returns the number of chat messages. */
static int bt_pump(bt_user *u, int ms, void (*each)(bt_user *u, const char *json, void *arg), void *arg) {
    int got = 0;
    while (!u->closed) {
        wsc_msg m;
        int t = wsc_recv(&u->c, &m, ms);
        if (t == WSC_TEXT) {
            if (strncmp(m.data, "{\"event\":\"update-users\"", 23) == 0) {
                snprintf(u->users, sizeof u->users, "%s", m.data);
            } else if (strncmp(m.data, "{\"event\":\"send-message\"", 23) == 0) {
                got++;
                if (each) each(u, m.data, arg);
            }
        } else if (t == WSC_CLOSE) {
            u->closed = m.code;
            snprintf(u->reason, sizeof u->reason, "%s", m.data);
        }
        wsc_msg_free(&m);
        if (t != WSC_TEXT) break;
    }
    return got;
}

/* Waits until u's list holds `name` `times` times (and, with size >= 0, `size` names). */
static int bt_wait_list(bt_user *u, const char *name, int times, int size, int ms) {
    long long deadline = wsc_now_ms() + ms;
    for (;;) {
        if ((!name || bt_listed(u->users, name, times)) && (size < 0 || bt_list_size(u->users) == size)) return 1;
        if (wsc_now_ms() >= deadline || u->closed) return 0;
        bt_pump(u, 50, NULL, NULL);
    }
}

static void bt_say(bt_user *u, const char *text) {
    char json[256];
    snprintf(json, sizeof json, "\"%s\"", text);
    harness_say(&u->c, json);
}

/* Publishes as a board of the test's own (QoS 0, over a connection of its own): CONNECT,
   PUBLISH, DISCONNECT, then waits for the broker to close, so the publish has been handled. */
static int bt_publish(const bt_broker *k, const char *topic, const char *payload, size_t n, int retain) {
    chat_buf out = {0};
    chat_mqtt_packet p;
    char in[256];
    long long deadline = wsc_now_ms() + harness_wait_ms;
    int fd = wsc_tcp_connect("127.0.0.1", k->port), ok;
    if (fd < 0) return -1;
    memset(&p, 0, sizeof p);
    p.type = CHAT_MQTT_CONNECT;
    p.connect.client_id.p = "bt-rogue", p.connect.client_id.n = 8, p.connect.clean_session = 1;
    ok = chat_mqtt_put(&out, &p) == CHAT_OK;
    memset(&p, 0, sizeof p);
    p.type = CHAT_MQTT_PUBLISH, p.retain = retain;
    p.topic.p = topic, p.topic.n = strlen(topic), p.payload.p = payload, p.payload.n = n;
    ok = ok && chat_mqtt_put(&out, &p) == CHAT_OK;
    memset(&p, 0, sizeof p);
    p.type = CHAT_MQTT_DISCONNECT;
    ok = ok && chat_mqtt_put(&out, &p) == CHAT_OK && wsc_send_all(fd, out.data, out.len) == 0;
    while (ok && wsc_now_ms() < deadline) { /* the CONNACK, then the broker's close */
        struct pollfd pfd;
        pfd.fd = fd, pfd.events = POLLIN;
        if (poll(&pfd, 1, 50) == 1 && recv(fd, in, sizeof in, 0) <= 0) break;
    }
    close(fd);
    chat_buf_free(&out);
    return ok ? 0 : -1;
}

/* --- what every user must see: each message once, each sender's in order --- */

#define BT_SENDERS 8
typedef struct bt_seen {
    char sender[BT_SENDERS][64];
    int next[BT_SENDERS]; /* the number expected next from each */
    int bad;              /* repeats or messages out of order */
    char first_bad[256];
} bt_seen;

/* Messages are "SENDER#K"; K counts from 0 for each sender. */
static void bt_check(bt_user *u, const char *json, void *arg) {
    bt_seen *s = (bt_seen *)arg;
    chat_span v;
    chat_buf text = {0};
    const char *hash;
    int i, k;
    if (chat_json_get(json, strlen(json), "message", &v) != 1 || chat_json_string(v, &text) < 0 || chat_buf_append(&text, "", 1))
        return;
    hash = strchr((const char *)text.data, '#');
    if (hash) {
        size_t n = (size_t)(hash - (const char *)text.data);
        k = atoi(hash + 1);
        for (i = 0; i < BT_SENDERS && s->sender[i][0]; i++)
            if (strlen(s->sender[i]) == n && memcmp(s->sender[i], text.data, n) == 0) break;
        if (i < BT_SENDERS && !s->sender[i][0]) memcpy(s->sender[i], text.data, n);
        if (i < BT_SENDERS) {
            if (k != s->next[i] && !s->bad++) snprintf(s->first_bad, sizeof s->first_bad, "%s got %s, wanted #%d", u->name, (char *)text.data, s->next[i]);
            s->next[i] = k + 1;
        }
    }
    chat_buf_free(&text);
}

/* Every user got `per` messages from each of the `senders`, each once and in order. */
static void bt_expect_all(bt_user *users, int n, int senders, int per, int ms) {
    int i, j;
    for (i = 0; i < n; i++) {
        bt_seen s;
        long long deadline = wsc_now_ms() + ms;
        int got = 0, total = senders * per;
        memset(&s, 0, sizeof s);
        while (got < total && wsc_now_ms() < deadline && !users[i].closed) got += bt_pump(&users[i], 200, bt_check, &s);
        got += bt_pump(&users[i], 300, bt_check, &s); /* nothing more may come: a repeat would */
        CHECKF(got == total, "%s got %d messages, wanted %d", users[i].name, got, total);
        CHECKF(!s.bad, "%s: %d out of order or repeated (first: %s)", users[i].name, s.bad, s.first_bad);
        for (j = 0; j < senders; j++) CHECKF(s.next[j] == per, "%s: sender %s reached #%d of %d", users[i].name, s.sender[j], s.next[j], per);
    }
}

/* --- scenarios --------------------------------------------------------------------------------- */

static bt_broker bt_main; /* the broker most scenarios share */

/* Three boards, two users on each; every user says 20 things. Everyone gets all 120 once, in
   each sender's order, and the lists on every board hold the same 6 names within a second. */
static void test_bridge_three_boards_exactly_once_in_order(void) {
    bt_board b[3];
    bt_user u[6];
    static const char *const nodes[] = {"alpha", "bravo", "charlie"};
    char name[32], text[64];
    int i, k, ok = 1;
    long long joined, converged;
    bt_new_prefix();
    for (i = 0; i < 3; i++) CHECK(bt_board_start(&b[i], &bt_main, nodes[i], NULL, 0) == 0);
    for (i = 0; i < 3; i++) CHECK(bt_connected(&b[i]));
    for (i = 0; i < 6; i++) {
        snprintf(name, sizeof name, "u%d-%s", i, nodes[i % 3]);
        ok &= bt_join(&u[i], &b[i % 3], name) == 0;
    }
    CHECK(ok);
    joined = wsc_now_ms();
    for (i = 0; i < 6; i++) ok &= bt_wait_list(&u[i], NULL, 0, 6, 1000 + 200);
    converged = wsc_now_ms();
    CHECKF(ok && converged - joined <= 1000, "lists of 6 on every board after %lld ms (ok %d)", converged - joined, ok);
    for (i = 0; i < 6; i++) {
        int j;
        for (j = 0; j < 6; j++) CHECKF(bt_listed(u[i].users, u[j].name, 1), "%s's list %s lacks %s", u[i].name, u[i].users, u[j].name);
    }
    for (k = 0; k < 20; k++)
        for (i = 0; i < 6; i++) {
            snprintf(text, sizeof text, "%s#%d", u[i].name, k);
            bt_say(&u[i], text);
        }
    bt_expect_all(u, 6, 6, 20, 5000);
    for (i = 0; i < 3; i++) CHECKF(bt_stat(&b[i], "received") == 80, "board %s said %llu from others, wanted 80", nodes[i], bt_stat(&b[i], "received"));
    for (i = 0; i < 6; i++) wsc_close(&u[i].c);
    for (i = 0; i < 3; i++) CHECK_INT(harness_stop_server(&b[i].s), 0);
}

static void bt_count_small(bt_user *u, const char *json, void *arg) {
    (void)u;
    if (strstr(json, "\"message\":\"small\"")) ++*(int *)arg;
}

/* What a board would not take from its own users it does not take from another board either:
   a message over this board's max_message is dropped with a log line; the next one comes. */
static void test_bridge_remote_message_over_the_local_limit_is_dropped(void) {
    static char big[CHAT_MAX_MESSAGE + 256];
    char topic[96], json[256], line[512];
    bt_board b;
    bt_user u;
    int got, small = 0;
    bt_new_prefix();
    CHECK(bt_board_start(&b, &bt_main, "alpha", NULL, 1) == 0);
    CHECK(bt_connected(&b));
    CHECK(bt_join(&u, &b, "ursula") == 0);
    snprintf(topic, sizeof topic, "%s/users/rogue", bt_prefix);
    snprintf(json, sizeof json, "{\"node\":\"rogue\",\"run\":\"r1\",\"serial\":1,\"users\":[\"mallory\"]}");
    CHECK(bt_publish(&bt_main, topic, json, strlen(json), 1) == 0);
    CHECKF(bt_wait_list(&u, "mallory", 1, 2, harness_wait_ms), "ursula's list: %s", u.users);
    snprintf(topic, sizeof topic, "%s/msg/rogue", bt_prefix);
    snprintf(big, sizeof big, "{\"node\":\"rogue\",\"id\":1,\"time\":1765000000000,\"username\":\"mallory\",\"message\":\"");
    memset(big + strlen(big), 'x', CHAT_MAX_MESSAGE + 1);
    strcpy(big + strlen(big), "\"}");
    CHECK(bt_publish(&bt_main, topic, big, strlen(big), 0) == 0);
    snprintf(json, sizeof json, "{\"node\":\"rogue\",\"id\":2,\"time\":1765000000001,\"username\":\"mallory\",\"message\":\"small\"}");
    CHECK(bt_publish(&bt_main, topic, json, strlen(json), 0) == 0);
    got = bt_pump(&u, 500, bt_count_small, &small);
    CHECKF(got == 1 && small == 1, "ursula got %d messages (%d the small one), wanted only the small one", got, small);
    CHECKF(bt_board_log(&b, "max_message", line, sizeof line), "no log line for the message over the limit");
    wsc_close(&u.c);
    CHECK_INT(harness_stop_server(&b.s), 0);
}

/* A process's resident memory in KB (Linux's /proc), 0 when it cannot be read. */
static long long bt_rss_kb(pid_t pid) {
    char path[64], line[256];
    long long kb = 0;
    FILE *f;
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    if (!(f = fopen(path, "r"))) return 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %lld", &kb) == 1) break;
    fclose(f);
    return kb;
}

/* A broker that sends and never reads: every QoS 1 PUBLISH wants a PUBACK from the board, which
   has nowhere to go. The board must give up on such a broker (and try again later), not pile up
   acknowledgements without end. The broker here is the test itself, on a listener of its own. */
static void test_bridge_broker_that_never_reads_is_dropped(void) {
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    bt_broker fake;
    bt_board b;
    chat_buf out = {0};
    chat_mqtt_packet p;
    char topic[64], status[64], in[4096];
    long long sent = 0, deadline, rss_kb = 0, first_kb = 0;
    int lfd = socket(AF_INET, SOCK_STREAM, 0), fd = -1, dropped = 0, id = 0;
    struct pollfd pfd;
    memset(&a, 0, sizeof a), memset(&fake, 0, sizeof fake);
    a.sin_family = AF_INET, a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(lfd >= 0 && bind(lfd, (struct sockaddr *)&a, sizeof a) == 0 && listen(lfd, 4) == 0 &&
          getsockname(lfd, (struct sockaddr *)&a, &len) == 0);
    fake.port = ntohs(a.sin_port);
    bt_new_prefix();
    CHECK(bt_board_start(&b, &fake, "alpha", NULL, 0) == 0);
    pfd.fd = lfd, pfd.events = POLLIN;
    if (poll(&pfd, 1, harness_wait_ms) == 1) fd = accept(lfd, NULL, NULL);
    CHECK(fd >= 0);
    if (fd >= 0) { /* its CONNECT (and whatever follows) is read once; then never again */
        pfd.fd = fd;
        CHECK(poll(&pfd, 1, harness_wait_ms) == 1 && recv(fd, in, sizeof in, 0) > 0);
    }
    memset(&p, 0, sizeof p);
    p.type = CHAT_MQTT_CONNACK;
    CHECK(chat_mqtt_put(&out, &p) == CHAT_OK);
    snprintf(topic, sizeof topic, "%s/users/x", bt_prefix); /* an empty list: board x has gone */
    deadline = wsc_now_ms() + 10000;
    while (fd >= 0 && !dropped && sent < (64 << 20) && wsc_now_ms() < deadline) {
        int i;
        for (i = 0; i < 1000; i++) {
            memset(&p, 0, sizeof p);
            p.type = CHAT_MQTT_PUBLISH, p.qos = 1, p.id = (unsigned)(id++ % 65535 + 1);
            p.topic.p = topic, p.topic.n = strlen(topic);
            if (chat_mqtt_put(&out, &p) != CHAT_OK) break;
        }
        pfd.fd = fd, pfd.events = POLLOUT;
        if (poll(&pfd, 1, 100) == 1) {
            ssize_t n = send(fd, out.data, out.len, MSG_NOSIGNAL);
            if (n < 0 && errno != EAGAIN && errno != EINTR) dropped = 1;
            if (n > 0) sent += n;
        }
        out.len = 0;
        if (!first_kb && sent > (1 << 20)) first_kb = bt_rss_kb(b.s.pid);
    }
    rss_kb = bt_rss_kb(b.s.pid);
    snprintf(status, sizeof status, "%lld KB -> %lld KB", first_kb, rss_kb);
    CHECKF(dropped, "the board still takes publishes after %lld MB it cannot acknowledge (RSS %s)", sent >> 20, status);
    CHECKF(rss_kb - first_kb < 4096, "the board's RSS grew %s", status);
    if (fd >= 0) close(fd);
    close(lfd);
    chat_buf_free(&out);
    CHECK_INT(harness_stop_server(&b.s), 0);
}

/* The same name joined on two boards at the same instant: exactly one holds it, everywhere. */
static void test_bridge_same_name_at_once_one_holder(void) {
    bt_board b[3];
    bt_user watch, x, y;
    int round, i;
    bt_new_prefix();
    CHECK(bt_board_start(&b[0], &bt_main, "node-a", NULL, 0) == 0);
    CHECK(bt_board_start(&b[1], &bt_main, "node-b", NULL, 0) == 0);
    CHECK(bt_board_start(&b[2], &bt_main, "node-c", NULL, 0) == 0);
    for (i = 0; i < 3; i++) CHECK(bt_connected(&b[i]));
    CHECK(bt_join(&watch, &b[2], "watcher") == 0);
    for (round = 0; round < 5; round++) {
        char name[32];
        bt_user *holder;
        int xs, ys;
        snprintf(name, sizeof name, "twin%d", round);
        /* both requests go out before either answer is read */
        memset(&x, 0, sizeof x), memset(&y, 0, sizeof y);
        snprintf(x.name, sizeof x.name, "%s", name), snprintf(y.name, sizeof y.name, "%s", name);
        {
            char req[512], enc[96];
            harness_url_encode(name, enc);
            snprintf(req, sizeof req, "GET /start_web_socket?username=%s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                                      "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", enc);
            CHECK(wsc_open_tcp(&x.c, "127.0.0.1", b[0].s.port) == 0 && wsc_open_tcp(&y.c, "127.0.0.1", b[1].s.port) == 0);
            wsc_send_all(x.c.fd, req, strlen(req));
            wsc_send_all(y.c.fd, req, strlen(req));
            CHECK(wsc_read_head(&x.c, harness_wait_ms) == 101 && wsc_read_head(&y.c, harness_wait_ms) == 101);
        }
        /* within a second one of them is closed with the tutorial's words, and stays so */
        {
            long long deadline = wsc_now_ms() + 1500;
            while (!x.closed && !y.closed && wsc_now_ms() < deadline) bt_pump(&x, 30, NULL, NULL), bt_pump(&y, 30, NULL, NULL);
        }
        bt_pump(&x, 300, NULL, NULL), bt_pump(&y, 300, NULL, NULL);
        xs = x.closed, ys = y.closed;
        CHECKF((xs == 1008) != (ys == 1008), "round %d: closes %d and %d (one 1008 wanted)", round, xs, ys);
        holder = xs ? &y : &x;
        CHECKF(strstr((xs ? x.reason : y.reason), "已被占用") != NULL, "reason: %s", xs ? x.reason : y.reason);
        /* every board lists the name once: the holder's own list, the loser's board (a fresh
           user), and the watcher's */
        CHECKF(bt_wait_list(&watch, name, 1, -1, 1000), "watcher's list %s", watch.users);
        CHECKF(bt_wait_list(holder, name, 1, -1, 1000), "holder's list %s", holder->users);
        {
            bt_user probe;
            CHECK(bt_join(&probe, &b[xs ? 0 : 1], "probe") == 0);
            CHECKF(bt_wait_list(&probe, name, 1, -1, 1000), "the loser's board lists %s", probe.users);
            wsc_close(&probe.c);
        }
        /* ... and refuses it to a newcomer there */
        {
            bt_user again;
            CHECK(bt_join(&again, &b[xs ? 0 : 1], name) == 0);
            bt_pump(&again, 1000, NULL, NULL);
            CHECKF(again.closed == 1008, "a second try on the loser's board: close %d", again.closed);
            wsc_close(&again.c);
        }
        wsc_close(&x.c), wsc_close(&y.c);
        CHECK(bt_wait_list(&watch, name, 0, -1, 1500));
    }
    i = (int)(bt_stat(&b[0], "conflicts") + bt_stat(&b[1], "conflicts"));
    printf("  same name at once: %d of 5 rounds were admitted on both boards and resolved by node id\n", i);
    CHECK_INT(bt_stat(&b[0], "conflicts"), 0); /* node-a is the lower id: it never gives way */
    wsc_close(&watch.c);
    for (i = 0; i < 3; i++) CHECK_INT(harness_stop_server(&b[i].s), 0);
}

/* kill -9 of a board: its will clears its list, so its users leave every other board's list. */
static void test_bridge_kill9_board_users_leave_elsewhere(void) {
    bt_board b[3];
    bt_user a, c1, c2, bb;
    long long t0;
    bt_new_prefix();
    CHECK(bt_board_start(&b[0], &bt_main, "k-a", NULL, 0) == 0);
    CHECK(bt_board_start(&b[1], &bt_main, "k-b", NULL, 0) == 0);
    CHECK(bt_board_start(&b[2], &bt_main, "k-c", NULL, 0) == 0);
    CHECK(bt_connected(&b[0]) && bt_connected(&b[1]) && bt_connected(&b[2]));
    CHECK(bt_join(&a, &b[0], "ann") == 0);
    CHECK(bt_join(&bb, &b[1], "ben") == 0);
    CHECK(bt_join(&c1, &b[2], "cid") == 0);
    CHECK(bt_join(&c2, &b[2], "cy") == 0);
    CHECK(bt_wait_list(&a, NULL, 0, 4, 2000) && bt_wait_list(&bb, NULL, 0, 4, 2000));
    bt_board_kill9(&b[2]);
    t0 = wsc_now_ms();
    CHECKF(bt_wait_list(&a, "cid", 0, 2, 3000) && bt_listed(a.users, "cy", 0), "ann's list %s", a.users);
    CHECKF(bt_wait_list(&bb, "cid", 0, 2, 3000) && bt_listed(bb.users, "cy", 0), "ben's list %s", bb.users);
    printf("  kill -9: its users left the other boards' lists after %lld ms\n", wsc_now_ms() - t0);
    /* a clean stop clears its list too */
    CHECK_INT(harness_stop_server(&b[1].s), 0);
    CHECKF(bt_wait_list(&a, "ben", 0, 1, 3000), "after a clean stop: %s", a.users);
    wsc_close(&a.c), wsc_close(&bb.c), wsc_close(&c1.c), wsc_close(&c2.c);
    CHECK_INT(harness_stop_server(&b[0].s), 0);
}

/* The broker stops and comes back mid-chat: local chat goes on, the boards reconnect (with
   backoff), subscribe again and republish; nothing said meanwhile is lost or doubled. */
static void test_bridge_broker_restart_nothing_lost_or_doubled(void) {
    bt_broker k;
    bt_board b[2];
    bt_user u[4];
    char text[64];
    int i, step;
    memset(&k, 0, sizeof k);
    bt_new_prefix();
    CHECK(bt_broker_start(&k, "restart", NULL) == 0);
    CHECK(bt_board_start(&b[0], &k, "r-a", NULL, 0) == 0);
    CHECK(bt_board_start(&b[1], &k, "r-b", NULL, 0) == 0);
    CHECK(bt_connected(&b[0]) && bt_connected(&b[1]));
    CHECK(bt_join(&u[0], &b[0], "ra1") == 0 && bt_join(&u[1], &b[0], "ra2") == 0);
    CHECK(bt_join(&u[2], &b[1], "rb1") == 0 && bt_join(&u[3], &b[1], "rb2") == 0);
    for (i = 0; i < 4; i++) CHECK(bt_wait_list(&u[i], NULL, 0, 4, 2000));
    for (step = 0; step < 30; step++) {
        if (step == 10) bt_broker_stop(&k); /* messages 10.. wait on their boards */
        if (step == 20) CHECK(bt_broker_start(&k, "restart", NULL) == 0);
        snprintf(text, sizeof text, "ra1#%d", step), bt_say(&u[0], text);
        snprintf(text, sizeof text, "rb1#%d", step), bt_say(&u[2], text);
        poll(NULL, 0, 50);
    }
    bt_expect_all(u, 4, 2, 30, 10000);
    CHECK(bt_stat(&b[0], "connects") >= 2 && bt_stat(&b[1], "connects") >= 2);
    for (i = 0; i < 4; i++) CHECKF(bt_wait_list(&u[i], NULL, 0, 4, 2000), "%s's list after: %s", u[i].name, u[i].users);
    for (i = 0; i < 4; i++) wsc_close(&u[i].c);
    for (i = 0; i < 2; i++) CHECK_INT(harness_stop_server(&b[i].s), 0);
    bt_broker_stop(&k);
}

/* While the broker is away a board keeps what its users say, at most CHAT_MQTT_QUEUE (1,000)
   messages: the 100 past the bound are counted and logged; the 1,000 go out in order once the
   broker is back, and the other board (whose persistent session the broker kept) gets each once. */
static void test_bridge_queue_bound_while_the_broker_is_away(void) {
    bt_broker k;
    bt_board a, b;
    bt_user ua, ub;
    char text[64], line[512];
    int i;
    memset(&k, 0, sizeof k);
    bt_new_prefix();
    CHECK(bt_broker_start(&k, "queue", NULL) == 0);
    bt_more_args[0] = "-r", bt_more_args[1] = "0"; /* 1,100 messages in a burst */
    CHECK(bt_board_start(&a, &k, "q-a", NULL, 1) == 0);
    CHECK(bt_board_start(&b, &k, "q-b", NULL, 0) == 0);
    bt_more_args[0] = NULL;
    CHECK(bt_connected(&a) && bt_connected(&b));
    CHECK(bt_join(&ua, &a, "qa") == 0 && bt_join(&ub, &b, "qb") == 0);
    CHECK(bt_wait_list(&ub, "qa", 1, 2, 2000));
    bt_broker_stop(&k);
    CHECK(bt_board_log(&a, "lost the broker", line, sizeof line));
    for (i = 0; i < 1100; i++) snprintf(text, sizeof text, "qa#%d", i), bt_say(&ua, text);
    CHECKF(bt_board_log(&a, "wait for the broker", line, sizeof line), "no log line of the full queue");
    printf("  %s\n", line);
    {
        long long deadline = wsc_now_ms() + harness_wait_ms;
        while (bt_stat(&a, "dropped") < 100 && wsc_now_ms() < deadline) poll(NULL, 0, 20);
    }
    CHECK_INT(bt_stat(&a, "dropped"), 100);
    CHECK_INT(bt_stat(&a, "queued"), 1000);
    bt_pump(&ua, 200, NULL, NULL); /* its own board said all 1,100 to it */
    CHECK(bt_broker_start(&k, "queue", NULL) == 0);
    bt_expect_all(&ub, 1, 1, 1000, 15000);
    CHECK_INT(bt_stat(&a, "queued"), 0);
    wsc_close(&ua.c), wsc_close(&ub.c);
    CHECK_INT(harness_stop_server(&a.s), 0);
    CHECK_INT(harness_stop_server(&b.s), 0);
    bt_broker_stop(&k);
}

/* Two brokers joined by mosquitto's own bridge, a board on each: the room works end to end. */
static void test_bridge_two_bridged_brokers(void) {
    bt_broker k1, k2;
    bt_board b[2];
    bt_user u[2];
    char extra[512], text[64];
    int i;
    memset(&k1, 0, sizeof k1), memset(&k2, 0, sizeof k2);
    bt_new_prefix();
    CHECK(bt_broker_start(&k2, "far", NULL) == 0);
    snprintf(extra, sizeof extra, "allow_anonymous true\nconnection to-far\naddress 127.0.0.1:%d\ntopic %s/# both 1\n"
                                  "bridge_protocol_version mqttv311\ncleansession false\nrestart_timeout 1\n", k2.port, bt_prefix);
    CHECK(bt_broker_start(&k1, "near", extra) == 0);
    CHECK(bt_board_start(&b[0], &k1, "near-board", NULL, 0) == 0);
    CHECK(bt_board_start(&b[1], &k2, "far-board", NULL, 0) == 0);
    CHECK(bt_connected(&b[0]) && bt_connected(&b[1]));
    CHECK(bt_join(&u[0], &b[0], "nora") == 0 && bt_join(&u[1], &b[1], "fred") == 0);
    for (i = 0; i < 2; i++) CHECKF(bt_wait_list(&u[i], NULL, 0, 2, 3000), "%s's list %s", u[i].name, u[i].users);
    for (i = 0; i < 10; i++) {
        snprintf(text, sizeof text, "nora#%d", i), bt_say(&u[0], text);
        snprintf(text, sizeof text, "fred#%d", i), bt_say(&u[1], text);
    }
    bt_expect_all(u, 2, 2, 10, 5000);
    for (i = 0; i < 2; i++) wsc_close(&u[i].c);
    for (i = 0; i < 2; i++) CHECK_INT(harness_stop_server(&b[i].s), 0);
    bt_broker_stop(&k1), bt_broker_stop(&k2);
}

/* A broker that wants a password: wrong ones get a clear log line; right ones chat. */
static void test_bridge_password_broker(void) {
    bt_broker k;
    bt_board bad, good[2];
    bt_user u[2];
    char extra[600], line[512], cmd[700];
    int i;
    memset(&k, 0, sizeof k);
    bt_new_prefix();
    snprintf(extra, sizeof extra, "%s/secure", bt_dir);
    mkdir(extra, 0700);
    snprintf(cmd, sizeof cmd, "mosquitto_passwd -c -b %s/secure/passwd board 'p@ss w:rd' >/dev/null 2>&1", bt_dir);
    CHECK(system(cmd) == 0);
    snprintf(extra, sizeof extra, "allow_anonymous false\npassword_file %s/secure/passwd\n", bt_dir);
    CHECK(bt_broker_start(&k, "secure", extra) == 0);
    CHECK(bt_board_start(&bad, &k, "wrong", "board:guess", 1) == 0);
    CHECKF(bt_board_log(&bad, "mqtt: the broker", line, sizeof line) &&
               (strstr(line, "bad user name or password") || strstr(line, "not authorized")),
           "log: %s", line);
    printf("  refused: %s\n", line);
    CHECK(bt_board_start(&good[0], &k, "right-1", "board:p%40ss%20w%3Ard", 0) == 0);
    CHECK(bt_board_start(&good[1], &k, "right-2", "board:p%40ss%20w%3Ard", 0) == 0);
    CHECK(bt_connected(&good[0]) && bt_connected(&good[1]));
    CHECK(bt_join(&u[0], &good[0], "pia") == 0 && bt_join(&u[1], &good[1], "pat") == 0);
    for (i = 0; i < 2; i++) CHECK(bt_wait_list(&u[i], NULL, 0, 2, 3000));
    bt_say(&u[0], "pia#0"), bt_say(&u[1], "pat#0");
    bt_expect_all(u, 2, 2, 1, 3000);
    CHECK_INT(bt_stat(&bad, "connected"), 0);
    for (i = 0; i < 2; i++) wsc_close(&u[i].c);
    CHECK_INT(harness_stop_server(&bad.s), 0);
    for (i = 0; i < 2; i++) CHECK_INT(harness_stop_server(&good[i].s), 0);
    bt_broker_stop(&k);
}

static void bt_rmtree(const char *path) {
    DIR *d = opendir(path);
    struct dirent *e;
    char sub[1024];
    struct stat st;
    if (!d) {
        unlink(path);
        return;
    }
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
        if (lstat(sub, &st) == 0 && S_ISDIR(st.st_mode)) bt_rmtree(sub);
        else unlink(sub);
    }
    closedir(d);
    rmdir(path);
}

int main(int argc, char **argv) {
    const char *tmp = getenv("TMPDIR");
    int i;
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-v") == 0) test_verbose = 1;
        else test_filter = argv[i];
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    snprintf(harness_tag, sizeof harness_tag, "b");
    snprintf(bt_dir, sizeof bt_dir, "%s/chat-bridge-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(bt_dir) || bt_broker_start(&bt_main, "main", NULL) != 0) {
        printf("FAIL cannot start mosquitto (apt-get install mosquitto) in %s\n0 passed, 1 failed\n", bt_dir);
        return 1;
    }
    RUN(test_bridge_three_boards_exactly_once_in_order);
    RUN(test_bridge_remote_message_over_the_local_limit_is_dropped);
    RUN(test_bridge_broker_that_never_reads_is_dropped);
    RUN(test_bridge_same_name_at_once_one_holder);
    RUN(test_bridge_kill9_board_users_leave_elsewhere);
    RUN(test_bridge_broker_restart_nothing_lost_or_doubled);
    RUN(test_bridge_queue_bound_while_the_broker_is_away);
    RUN(test_bridge_two_bridged_brokers);
    RUN(test_bridge_password_broker);
    bt_broker_stop(&bt_main);
    if (test_failed && getenv("CHAT_BRIDGE_KEEP")) printf("kept %s\n", bt_dir);
    else bt_rmtree(bt_dir);
    printf("%d passed, %d failed\n", test_passed, test_failed);
    return test_failed ? 1 : 0;
}
