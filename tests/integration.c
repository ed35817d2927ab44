/* Integration tests: real servers on 127.0.0.1, real sockets, our own WebSocket client.
   - contract tests speak only the tutorial's wire contract; they also run against another
     server (tests/run_tests --external HOST:PORT), e.g. the tutorial itself on Deno;
   - the rest check chat.h's own behaviour: refusals, limits, callbacks, the example binary.
   Servers are the example binary (./chat) or a library server forked with a test config. */
#include "wsclient.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>

/* The most any single expected event may take; CHAT_TEST_SLOW=N multiplies it (valgrind). */
static int WAIT_MS = 3000;

static const char *T_HOST = "127.0.0.1";
static int T_PORT;
static char TAG[16]; /* in every name, so tests on a shared server see only their own users */

/* --- servers under test --- */

typedef struct test_server {
    pid_t pid;
    int port;
    int pipe_fd; /* the child's stdout (binary) or port pipe (library); EOF when it exits */
} test_server;

/* Reads one line from fd into out, waiting until the deadline. Returns its length or -1. */
static int read_line(int fd, char *out, size_t cap, long long deadline) {
    size_t n = 0;
    while (n + 1 < cap) {
        struct pollfd p;
        long long left = deadline - wsc_now_ms();
        char ch;
        p.fd = fd, p.events = POLLIN, p.revents = 0;
        if (left <= 0 || poll(&p, 1, (int)left) <= 0 || read(fd, &ch, 1) != 1) return -1;
        if (ch == '\n') break;
        out[n++] = ch;
    }
    out[n] = '\0';
    return (int)n;
}

static int binary_stderr_to_pipe; /* start_binary: read the log lines too */
static char binary_line[256];     /* the last line start_binary read: the banner, or why it exited */

/* Every test client comes from 127.0.0.1, so the servers under test get no per-address limits
   unless a test asks for them (tests/limits.c does). */
static int binary_address_limits; /* start_binary: keep the per-address defaults */

/* Starts ./chat -p 0 -b 127.0.0.1 plus `args`, and waits for its "Listening at" line. */
static int start_binary(test_server *s, const char *const *args) {
    static char wrapper[512];
    const char *argv[24];
    char path[1024], line[256], *word;
    int p[2], n = 0;
    long long deadline = wsc_now_ms() + WAIT_MS;
    snprintf(path, sizeof path, "%s", getenv("CHAT_TEST_BIN") ? getenv("CHAT_TEST_BIN") : "");
    if (!path[0]) snprintf(path, sizeof path, "%s/chat", test_root);
    /* CHAT_TEST_WRAPPER runs the binary under a tool, e.g. "valgrind -q --error-exitcode=99" */
    if (getenv("CHAT_TEST_WRAPPER")) {
        snprintf(wrapper, sizeof wrapper, "%s", getenv("CHAT_TEST_WRAPPER"));
        for (word = strtok(wrapper, " "); word && n < 8; word = strtok(NULL, " ")) argv[n++] = word;
    }
    argv[n++] = path, argv[n++] = "-p", argv[n++] = "0", argv[n++] = "-b", argv[n++] = "127.0.0.1";
    if (!binary_address_limits) argv[n++] = "-a", argv[n++] = "0", argv[n++] = "-j", argv[n++] = "0";
    while (args && *args && n < 23) argv[n++] = *args++;
    argv[n] = NULL;
    if (pipe(p) < 0) return -1;
    fflush(stdout);
    s->pid = fork();
    if (s->pid == 0) {
        dup2(p[1], 1);
        close(p[0]), close(p[1]);
        if (binary_stderr_to_pipe) dup2(1, 2);
        else if (!test_verbose) { /* the server's own log is noise unless asked for */
            int null = open("/dev/null", O_WRONLY);
            if (null >= 0) dup2(null, 2);
        }
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(p[1]);
    s->pipe_fd = p[0];
    while (read_line(s->pipe_fd, line, sizeof line, deadline) >= 0) {
        const char *colon = strrchr(line, ':');
        snprintf(binary_line, sizeof binary_line, "%s", line);
        if (strncmp(line, "Listening at http://", 20) == 0 && colon) {
            s->port = atoi(colon + 1);
            return s->port > 0 ? 0 : -1;
        }
    }
    return -1;
}

static chat_server *volatile child_server;      /* in a forked library server; NULL once freed */
static volatile sig_atomic_t child_heap_wanted; /* SIGUSR2 asks the child for its heap use */
static void (*child_setup)(void);               /* run in the child before the server starts */
static int child_pipe_fd = -1;                  /* in the child: its pipe to the parent */

static void child_on_term(int sig) {
    chat_server *srv = child_server;
    (void)sig;
    if (srv) chat_server_stop(srv);
}

static void child_on_usr2(int sig) {
    (void)sig;
    child_heap_wanted = 1;
}

/* Asks a library server for its heap use (through the CHAT_MALLOC hook of main.c), measured
   between two loop turns. Returns bytes, or -1. */
static long long server_heap(test_server *s, long long *blocks) {
    char line[128];
    long long bytes = -1;
    kill(s->pid, SIGUSR2);
    if (read_line(s->pipe_fd, line, sizeof line, wsc_now_ms() + WAIT_MS) < 0) return -1;
    if (sscanf(line, "heap %lld %lld", &bytes, blocks) != 2) return -1;
    return bytes;
}

/* Forks a server built from the library with `cfg`; it serves "/hello" as a plain asset. */
static int start_library(test_server *s, const chat_config *given) {
    chat_config unlimited, *cfg = &unlimited;
    int p[2];
    char line[64];
    memset(&unlimited, 0, sizeof unlimited);
    if (given) unlimited = *given;
    if (!cfg->max_per_address) cfg->max_per_address = -1; /* see binary_address_limits */
    if (!cfg->max_join_rate) cfg->max_join_rate = -1;
    if (pipe(p) < 0) return -1;
    fflush(stdout);
    s->pid = fork();
    if (s->pid == 0) {
        struct sigaction sa;
        int port;
        close(p[0]);
        child_server = chat_server_create(cfg);
        if (!child_server || chat_server_add_asset(child_server, "/hello", "text/plain", "hello\n", 6) ||
            chat_server_listen(child_server, "127.0.0.1", 0))
            _exit(2);
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = child_on_term;
        sigaction(SIGTERM, &sa, NULL);
        sa.sa_handler = child_on_usr2;
        sigaction(SIGUSR2, &sa, NULL);
        child_pipe_fd = p[1];
        if (child_setup) child_setup();
        port = chat_server_port(child_server);
        snprintf(line, sizeof line, "%d\n", port);
        if (write(p[1], line, strlen(line)) < 0) _exit(2);
        /* a bounded wait, so a SIGUSR2 that lands just before poll() is seen soon */
        while ((port = chat_server_poll(child_server, 100)) > 0) {
            if (child_heap_wanted) {
                child_heap_wanted = 0;
                snprintf(line, sizeof line, "heap %lld %lld\n", (long long)test_heap_bytes,
                         (long long)test_heap_blocks);
                if (write(p[1], line, strlen(line)) < 0) _exit(2);
            }
        }
        {
            chat_server *srv = child_server;
            child_server = NULL; /* a SIGTERM that arrives from now on has nothing to stop */
            chat_server_free(srv);
        }
        _exit(port == 0 ? 0 : 1);
    }
    close(p[1]);
    s->pipe_fd = p[0];
    if (read_line(s->pipe_fd, line, sizeof line, wsc_now_ms() + WAIT_MS) < 0) return -1;
    s->port = atoi(line);
    return s->port > 0 ? 0 : -1;
}

/* SIGTERM, then wait for the child's end (its pipe reaches EOF). Returns the exit status, or -1
   when it had to be killed. */
static int stop_server(test_server *s) {
    long long deadline = wsc_now_ms() + WAIT_MS;
    char buf[256];
    int status = 0, clean = 0;
    if (s->pid <= 0) return -1;
    kill(s->pid, SIGTERM);
    for (;;) {
        struct pollfd p;
        long long left = deadline - wsc_now_ms();
        ssize_t k;
        p.fd = s->pipe_fd, p.events = POLLIN, p.revents = 0;
        if (left <= 0 || poll(&p, 1, (int)left) <= 0) break;
        k = read(s->pipe_fd, buf, sizeof buf);
        if (k <= 0) {
            clean = 1;
            break;
        }
    }
    if (!clean) kill(s->pid, SIGKILL);
    waitpid(s->pid, &status, 0);
    close(s->pipe_fd);
    s->pid = 0;
    return clean && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* --- helpers --- */

/* encodeURIComponent */
static void url_encode(const char *in, char *out) {
    static const char hex[] = "0123456789ABCDEF";
    for (; *in; in++) {
        unsigned char c = (unsigned char)*in;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr("-_.!~*'()", c))
            *out++ = (char)c;
        else
            *out++ = '%', *out++ = hex[c >> 4], *out++ = hex[c & 15];
    }
    *out = '\0';
}

static void tagged(char *out, size_t cap, const char *base) { snprintf(out, cap, "%s-%s", base, TAG); }

/* Joins as `name` (URL-encoded here). Returns the HTTP status. */
static int join(wsc *c, const char *name) {
    char target[1024], enc[900];
    url_encode(name, enc);
    snprintf(target, sizeof target, "/start_web_socket?username=%s", enc);
    return wsc_connect(c, T_HOST, T_PORT, target);
}

/* The names carrying this run's TAG in an update-users message, joined by '|'; NULL if the
   message is not update-users. Test names contain no quote or backslash, so a scan suffices. */
static int our_users(const char *msg, char *out, size_t cap) {
    static const char head[] = "{\"event\":\"update-users\",\"usernames\":[";
    const char *p = msg + sizeof head - 1;
    size_t n = 0;
    if (strncmp(msg, head, sizeof head - 1) != 0) return 0;
    out[0] = '\0';
    while (*p == '"') {
        const char *end = strchr(p + 1, '"');
        size_t k;
        if (!end) return 0;
        k = (size_t)(end - p - 1);
        if (strstr(p + 1, TAG) && strstr(p + 1, TAG) < end && n + k + 2 < cap) {
            if (n) out[n++] = '|';
            memcpy(out + n, p + 1, k);
            n += k;
            out[n] = '\0';
        }
        p = end + 1;
        if (*p == ',') p++;
    }
    return 1;
}

/* Waits until an update-users shows exactly `want` ("a|b", join order) among our names. Other
   messages are skipped. Returns 1 when seen. */
static int wait_users(wsc *c, const char *want) {
    long long deadline = wsc_now_ms() + WAIT_MS;
    for (;;) {
        wsc_msg m;
        char ours[2048];
        long long left = deadline - wsc_now_ms();
        int t = wsc_recv(c, &m, left < 0 ? 0 : (int)left), match = 0;
        if (t == WSC_TEXT && our_users(m.data, ours, sizeof ours)) match = strcmp(ours, want) == 0;
        wsc_msg_free(&m);
        if (match) return 1;
        if (t != WSC_TEXT) return 0;
    }
}

/* The next text message that is not update-users (nor a ping); NULL on timeout/close. */
static char *next_chat(wsc *c, int timeout_ms) {
    long long deadline = wsc_now_ms() + timeout_ms;
    for (;;) {
        wsc_msg m;
        char ours[2048];
        long long left = deadline - wsc_now_ms();
        int t = wsc_recv(c, &m, left < 0 ? 0 : (int)left);
        if (t == WSC_TEXT && !our_users(m.data, ours, sizeof ours)) return m.data;
        wsc_msg_free(&m);
        if (t != WSC_TEXT) return NULL;
    }
}

static void chat_json(char *out, size_t cap, const char *name, const char *message_json) {
    snprintf(out, cap, "{\"event\":\"send-message\",\"username\":\"%s\",\"message\":%s}", name, message_json);
}

/* Sends {"event":"send-message","message":<message_json>} */
static int say(wsc *c, const char *message_json) {
    char buf[70000];
    snprintf(buf, sizeof buf, "{\"event\":\"send-message\",\"message\":%s}", message_json);
    return wsc_send_text(c, buf);
}

/* Fills text with a JSON string of `size` bytes, quotes included: "ccc...c". */
static void quoted_run(char *text, size_t size, char c) {
    memset(text, c, size);
    text[0] = '"', text[size - 1] = '"', text[size] = '\0';
}

/* Tags the two bases into a and b (64 bytes each), joins both users, and checks that each one
   sees the pair in its user list. */
static void join_pair(wsc *ca, char *a, const char *base_a, wsc *cb, char *b, const char *base_b) {
    char ab[130];
    tagged(a, 64, base_a), tagged(b, 64, base_b);
    snprintf(ab, sizeof ab, "%s|%s", a, b);
    CHECK_INT(join(ca, a), 101);
    CHECK_INT(join(cb, b), 101);
    CHECKF(wait_users(ca, ab), "%s did not see [%s]", a, ab);
    CHECKF(wait_users(cb, ab), "%s did not see [%s]", b, ab);
}

/* Closes with 1000 and waits for the server's close and EOF, so the server has seen the leave. */
static void leave(wsc *c) {
    wsc_msg m;
    wsc_send_close(c, 1000, "bye");
    while (wsc_recv(c, &m, WAIT_MS) == WSC_TEXT) wsc_msg_free(&m);
    wsc_msg_free(&m);
    wsc_wait_eof(c, WAIT_MS);
    wsc_close(c);
}

/* Expects a close frame with `code` (and `reason` unless NULL), answers it as a browser does,
   then expects the server to close the TCP connection. */
static void expect_close(wsc *c, int code, const char *reason) {
    wsc_msg m;
    int t;
    do t = wsc_recv(c, &m, WAIT_MS);
    while (t == WSC_TEXT && (wsc_msg_free(&m), 1));
    CHECKF(t == WSC_CLOSE, "expected close %d, got message type %d", code, t);
    if (t == WSC_CLOSE) {
        CHECK_INT(m.code, code);
        if (reason) CHECK_STR(m.data, reason);
        wsc_send_close(c, m.code == 1005 ? 0 : m.code, NULL);
    }
    wsc_msg_free(&m);
    CHECKF(wsc_wait_eof(c, WAIT_MS), "the server did not close the TCP connection after close %d", code);
}

/* The next chat message must be {"event":"send-message","username":FROM,"message":MESSAGE_JSON}
   (update-users in between are skipped). A macro, so a failure names the caller's line. */
#define EXPECT_CHAT(c, from, message_json) \
    do { \
        char want_[70000]; \
        char *got_; \
        chat_json(want_, sizeof want_, (from), (message_json)); \
        got_ = next_chat((c), WAIT_MS); \
        CHECK_STR(got_, want_); \
        free(got_); \
    } while (0)

static int saved_port; /* where the tests pointed before use_library/use_binary */

/* Starts a library server with `cfg` and points the tests (T_PORT) at it. */
static int use_library(test_server *s, const chat_config *cfg) {
    int r = start_library(s, cfg);
    saved_port = T_PORT;
    if (r == 0) T_PORT = s->port;
    return r;
}

/* The same with the example binary and these arguments. */
static int use_binary(test_server *s, const char *const *args) {
    int r = start_binary(s, args);
    saved_port = T_PORT;
    if (r == 0) T_PORT = s->port;
    return r;
}

/* Stops it (it must exit 0) and points the tests back where they were. */
#define DONE_SERVER(s) \
    do { \
        CHECK_INT(stop_server(s), 0); \
        T_PORT = saved_port; \
    } while (0)

/* ============================================================================================ */
/* contract tests: the tutorial's wire contract                                                 */
/* ============================================================================================ */

static void test_contract_static_assets(void) {
    static const struct { const char *path, *type, *needle; } cases[] = {
        {"/", "text/html", "id=\"conversation\""},
        {"/public/app.js", "javascript", "WebSocket"},
        {"/public/style.css", "text/css", "{"},
    };
    size_t i;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char req[256], type[128] = "", *body = NULL;
        wsc c;
        snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", cases[i].path);
        CHECK_INT(wsc_http(T_HOST, T_PORT, req, &c, &body, NULL), 200);
        wsc_header(&c, "content-type", type, sizeof type);
        CHECKF(strstr(type, cases[i].type) != NULL, "%s: content-type '%s'", cases[i].path, type);
        CHECKF(body && strstr(body, cases[i].needle), "%s: body lacks '%s'", cases[i].path, cases[i].needle);
        free(body);
        wsc_close(&c);
    }
}

static void test_contract_unknown_path_404(void) {
    static const char *const paths[] = {"/nope", "/public/nope.js", "/favicon.ico"};
    size_t i;
    for (i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        char req[256];
        wsc c;
        snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", paths[i]);
        CHECKF(wsc_http(T_HOST, T_PORT, req, &c, NULL, NULL) == 404, "%s: status %d", paths[i], c.status);
        wsc_close(&c);
    }
}

static void test_contract_join_and_leave_broadcast_users(void) {
    char a[64], b[64], ab[130];
    wsc ca, cb;
    tagged(a, sizeof a, "alice"), tagged(b, sizeof b, "bob");
    snprintf(ab, sizeof ab, "%s|%s", a, b);
    CHECK_INT(join(&ca, a), 101);
    CHECKF(wait_users(&ca, a), "alice did not see herself in the list");
    CHECK_INT(join(&cb, b), 101);
    CHECKF(wait_users(&cb, ab), "bob did not see [alice, bob]");
    CHECKF(wait_users(&ca, ab), "alice did not see [alice, bob]");
    leave(&cb);
    CHECKF(wait_users(&ca, a), "alice did not see bob leave");
    leave(&ca);
}

static void test_contract_message_reaches_everyone_including_sender(void) {
    char a[64], b[64];
    wsc ca, cb;
    join_pair(&ca, a, "alice", &cb, b, "bob");
    CHECK_INT(say(&ca, "\"hello\""), 0);
    EXPECT_CHAT(&ca, a, "\"hello\"");
    EXPECT_CHAT(&cb, a, "\"hello\"");
    leave(&ca), leave(&cb);
}

static void test_contract_one_senders_order_is_kept(void) {
    enum { N = 200 };
    char a[64], b[64], text[64], want[256];
    wsc ca, cb;
    int i, in_order_a = 1, in_order_b = 1;
    join_pair(&ca, a, "alice", &cb, b, "bob");
    for (i = 0; i < N; i++) {
        snprintf(text, sizeof text, "\"message %d\"", i);
        say(&ca, text);
    }
    for (i = 0; i < N && (in_order_a || in_order_b); i++) {
        char *ga = next_chat(&ca, WAIT_MS), *gb;
        snprintf(text, sizeof text, "\"message %d\"", i);
        chat_json(want, sizeof want, a, text);
        if (!ga || strcmp(ga, want) != 0) in_order_a = 0;
        gb = next_chat(&cb, WAIT_MS);
        if (!gb || strcmp(gb, want) != 0) in_order_b = 0;
        free(ga), free(gb);
    }
    CHECKF(in_order_a, "the sender saw its messages out of order or missing (at %d)", i);
    CHECKF(in_order_b, "the other client saw them out of order or missing (at %d)", i);
    leave(&ca), leave(&cb);
}

static void test_contract_duplicate_name_closed_1008_first_unaffected(void) {
    char a[64], reason[160];
    wsc ca, dup;
    tagged(a, sizeof a, "alice");
    CHECK_INT(join(&ca, a), 101);
    CHECK(wait_users(&ca, a));
    CHECK_INT(join(&dup, a), 101); /* the upgrade completes; then the refusal */
    snprintf(reason, sizeof reason, "用户名 %s 已被占用", a);
    expect_close(&dup, 1008, reason);
    wsc_close(&dup);
    CHECK_INT(say(&ca, "\"still here\""), 0);
    EXPECT_CHAT(&ca, a, "\"still here\"");
    leave(&ca);
}

static void test_contract_unicode_and_escapes_round_trip(void) {
    /* as JSON.stringify writes them, which is also what comes back */
    static const char *const messages[] = {
        "\"quotes \\\" and backslash \\\\ and </script><img src=x onerror=alert(1)>\"",
        "\"你好，世界 🦕 é ñ ü\"",
        "\"nul \\u0000 inside, and \\n\\t\\r\\b\\f and \\u001f\"",
        "\"\"",
    };
    char a[64];
    wsc ca;
    size_t i;
    tagged(a, sizeof a, "小明");
    CHECK_INT(join(&ca, a), 101);
    CHECK(wait_users(&ca, a));
    for (i = 0; i < sizeof messages / sizeof messages[0]; i++) {
        say(&ca, messages[i]);
        EXPECT_CHAT(&ca, a, messages[i]);
    }
    leave(&ca);
}

static void test_contract_percent_encoded_names(void) {
    char odd[128], spaced[64], enc[512], target[600], both[300];
    wsc c1, c2;
    tagged(odd, sizeof odd, "a b&c=d#e 名字");
    CHECK_INT(join(&c1, odd), 101); /* join() encodes it as encodeURIComponent does */
    CHECK(wait_users(&c1, odd));
    /* '+' in a query string is a space, as URLSearchParams reads it */
    url_encode(TAG, enc);
    snprintf(target, sizeof target, "/start_web_socket?username=x+y-%s", enc);
    tagged(spaced, sizeof spaced, "x y");
    CHECK_INT(wsc_connect(&c2, T_HOST, T_PORT, target), 101);
    snprintf(both, sizeof both, "%s|%s", odd, spaced);
    CHECKF(wait_users(&c2, both), "expected users '%s'", both);
    leave(&c1), leave(&c2);
}

static void test_contract_other_events_ignored(void) {
    char a[64];
    wsc ca;
    tagged(a, sizeof a, "alice");
    CHECK_INT(join(&ca, a), 101);
    CHECK(wait_users(&ca, a));
    wsc_send_text(&ca, "{\"event\":\"typing\",\"message\":\"x\"}");
    wsc_send_text(&ca, "{\"event\":\"send-message\",\"message\":\"after\"}");
    EXPECT_CHAT(&ca, a, "\"after\"");
    leave(&ca);
}

static void contract_tests(void) {
    RUN(test_contract_static_assets);
    RUN(test_contract_unknown_path_404);
    RUN(test_contract_join_and_leave_broadcast_users);
    RUN(test_contract_message_reaches_everyone_including_sender);
    RUN(test_contract_one_senders_order_is_kept);
    RUN(test_contract_duplicate_name_closed_1008_first_unaffected);
    RUN(test_contract_unicode_and_escapes_round_trip);
    RUN(test_contract_percent_encoded_names);
    RUN(test_contract_other_events_ignored);
}

/* ============================================================================================ */
/* chat.h's own behaviour, against the example binary                                           */
/* ============================================================================================ */

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    char *data;
    long n;
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    data = (char *)malloc((size_t)n + 1);
    if (fread(data, 1, (size_t)n, f) != (size_t)n) n = 0;
    fclose(f);
    data[n] = '\0';
    *len = (size_t)n;
    return data;
}

/* The page embedded in example_main.c must be public/ byte for byte. */
static void test_binary_serves_public_exactly(void) {
    static const char *const files[][2] = {
        {"/", "public/index.html"}, {"/public/index.html", "public/index.html"},
        {"/public/app.js", "public/app.js"}, {"/public/style.css", "public/style.css"},
    };
    size_t i;
    for (i = 0; i < sizeof files / sizeof files[0]; i++) {
        char req[256], path[1024], *body = NULL, *want;
        size_t n = 0, wn = 0;
        wsc c;
        snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", files[i][0]);
        snprintf(path, sizeof path, "%s/%s", test_root, files[i][1]);
        want = read_file(path, &wn);
        CHECKF(want != NULL, "cannot read %s", path);
        CHECK_INT(wsc_http(T_HOST, T_PORT, req, &c, &body, &n), 200);
        CHECKF(want && body && n == wn && memcmp(body, want, n) == 0,
               "%s differs from %s: run 'make embed'", files[i][0], files[i][1]);
        free(body), free(want);
        wsc_close(&c);
    }
}

static void test_binary_embed_block_is_current(void) {
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "sh '%s/tests/embed.sh' --check >/dev/null", test_root);
    CHECKF(system(cmd) == 0, "example_main.c's embedded block differs from public/: run 'make embed'");
}

static void test_http_methods_head_and_keepalive(void) {
    char type[64], allow[64], *body = NULL;
    size_t n = 0;
    wsc c;
    long long deadline;
    int i;
    CHECK_INT(wsc_http(T_HOST, T_PORT, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", &c, NULL, NULL), 405);
    CHECK(wsc_header(&c, "allow", allow, sizeof allow) && strstr(allow, "GET"));
    wsc_close(&c);
    CHECK_INT(wsc_http(T_HOST, T_PORT, "HEAD /public/app.js HTTP/1.1\r\nHost: x\r\n\r\n", &c, NULL, NULL), 200);
    CHECK(wsc_header(&c, "content-length", type, sizeof type) && atoi(type) > 100);
    /* HEAD has no body: the next bytes are the response to a second request (keep-alive) */
    {
        static const char second[] = "GET /public/style.css HTTP/1.1\r\nHost: x\r\n\r\n";
        wsc_send_all(c.fd, second, sizeof second - 1);
    }
    CHECK_INT(wsc_read_head(&c, WAIT_MS), 200);
    CHECK(wsc_header(&c, "content-type", type, sizeof type) && strstr(type, "text/css"));
    wsc_close(&c);
    /* pipelined: three requests in one write, three responses in order */
    CHECK_INT(wsc_open_tcp(&c, T_HOST, T_PORT), 0);
    {
        static const char three[] = "GET /nope HTTP/1.1\r\nHost: x\r\n\r\nHEAD / HTTP/1.1\r\nHost: x\r\n\r\n"
                                    "GET /public/../public/app.js HTTP/1.1\r\nHost: x\r\n\r\n";
        wsc_send_all(c.fd, three, sizeof three - 1);
    }
    CHECK_INT(wsc_read_head(&c, WAIT_MS), 404);
    CHECK(wsc_header(&c, "content-length", type, sizeof type));
    n = (size_t)atoi(type);
    deadline = wsc_now_ms() + WAIT_MS;
    while (c.len < n && wsc_fill(&c, deadline) > 0) {}
    wsc_consume(&c, n);
    CHECK_INT(wsc_read_head(&c, WAIT_MS), 200);
    CHECK_INT(wsc_read_head(&c, WAIT_MS), 404); /* paths are never resolved: /public/../ is not / */
    wsc_close(&c);
    for (i = 0; i < 2; i++) { /* dot segments, encoded or not, never reach a file */
        const char *req = i ? "GET /%2e%2e/%2e%2e/etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n"
                            : "GET /../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n";
        CHECK_INT(wsc_http(T_HOST, T_PORT, req, &c, &body, NULL), 404);
        free(body);
        wsc_close(&c);
    }
}

static void test_http_handshake_errors(void) {
    wsc c;
    char v[64];
    CHECK_INT(wsc_http(T_HOST, T_PORT, "GET /start_web_socket?username=x HTTP/1.1\r\nHost: x\r\n\r\n", &c, NULL, NULL), 426);
    wsc_close(&c);
    CHECK_INT(wsc_http(T_HOST, T_PORT,
                       "GET /start_web_socket?username=x HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                       "Connection: Upgrade\r\nSec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n\r\n",
                       &c, NULL, NULL), 400);
    wsc_close(&c);
    CHECK_INT(wsc_http(T_HOST, T_PORT,
                       "GET /start_web_socket?username=x HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                       "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                       "Sec-WebSocket-Version: 8\r\n\r\n", &c, NULL, NULL), 426);
    CHECK(wsc_header(&c, "sec-websocket-version", v, sizeof v) && strcmp(v, "13") == 0);
    wsc_close(&c);
    CHECK_INT(wsc_http(T_HOST, T_PORT, "GARBAGE\r\n\r\n", &c, NULL, NULL), 400);
    wsc_close(&c);
}

static void test_handshake_browser_style_headers(void) {
    char ext[128], accept[64], a[64], enc[256], target[400], headers[512];
    wsc c;
    tagged(a, sizeof a, "chrome");
    url_encode(a, enc);
    snprintf(target, sizeof target, "/start_web_socket?username=%s", enc);
    snprintf(headers, sizeof headers,
             "Origin: http://%s:%d\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
             "Connection: keep-alive, Upgrade\r\nUser-Agent: test\r\n", T_HOST, T_PORT); /* same origin */
    CHECK_INT(wsc_connect_ex(&c, T_HOST, T_PORT, target, headers), 101);
    CHECK(wsc_header(&c, "sec-websocket-accept", accept, sizeof accept));
    CHECK_STR(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="); /* RFC 6455 1.3 */
    CHECKF(!wsc_header(&c, "sec-websocket-extensions", ext, sizeof ext), "an extension was accepted: %s", ext);
    CHECK(wait_users(&c, a));
    leave(&c);
}

static void test_frame_in_same_packet_as_request(void) {
    char a[64], enc[256], req[1024], want[256], *got;
    unsigned char frame[128];
    size_t n, fn;
    wsc c;
    tagged(a, sizeof a, "eager");
    url_encode(a, enc);
    CHECK_INT(wsc_open_tcp(&c, T_HOST, T_PORT), 0);
    n = (size_t)snprintf(req, sizeof req,
                         "GET /start_web_socket?username=%s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                         "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                         "Sec-WebSocket-Version: 13\r\n\r\n", enc);
    {
        static const char early[] = "{\"event\":\"send-message\",\"message\":\"early\"}";
        fn = wsc_build_frame(&c, frame, 1, 0, 1, early, sizeof early - 1, 0);
    }
    memcpy(req + n, frame, fn);
    wsc_send_all(c.fd, req, n + fn);
    CHECK_INT(wsc_read_head(&c, WAIT_MS), 101);
    chat_json(want, sizeof want, a, "\"early\"");
    got = next_chat(&c, WAIT_MS);
    while (got && strcmp(got, want) != 0 && strstr(got, TAG)) { /* the history of earlier tests comes first */
        free(got);
        got = next_chat(&c, WAIT_MS);
    }
    CHECK_STR(got, want);
    free(got);
    leave(&c);
}

static void test_refused_names_get_1008_with_reason(void) {
    static const char *const cases[][2] = {
        {"/start_web_socket", "username is missing"},
        {"/start_web_socket?username=", "username is empty"},
        {"/start_web_socket?username=%01bell", "username contains control characters"},
        {"/start_web_socket?username=a%C2%85b", "username contains control characters"},
        {"/start_web_socket?username=%FF%FE", "username is not valid UTF-8"},
        {"/start_web_socket?username=%ED%A0%80", "username is not valid UTF-8"},
        {"/start_web_socket?username=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
         "username is too long (max 64 bytes)"},
    };
    size_t i;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        wsc c;
        CHECKF(wsc_connect(&c, T_HOST, T_PORT, cases[i][0]) == 101, "%s: status %d", cases[i][0], c.status);
        expect_close(&c, 1008, cases[i][1]);
        wsc_close(&c);
    }
}

static void test_invalid_json_ignored_connection_stays(void) {
    static const char *const junk[] = {"not json", "{\"event\":\"send-message\",\"message\":\"x\"", "null",
                                       "[1,2]", "{\"event\":\"send-message\",\"message\":5}",
                                       "{\"event\":\"send-message\"}", "{\"message\":\"no event\"}"};
    char a[64], want[256], *got;
    size_t i;
    wsc c;
    tagged(a, sizeof a, "junk");
    CHECK_INT(join(&c, a), 101);
    CHECK(wait_users(&c, a));
    for (i = 0; i < sizeof junk / sizeof junk[0]; i++) wsc_send_text(&c, junk[i]);
    { /* nesting 10,000 deep (less where messages are smaller) inside a send-message event */
        enum { DEPTH = CHAT_MAX_MESSAGE / 2 - 100 < 10000 ? CHAT_MAX_MESSAGE / 2 - 100 : 10000 };
        static char deep[2 * DEPTH + 100];
        size_t n = (size_t)snprintf(deep, sizeof deep, "{\"event\":\"send-message\",\"message\":\"x\",\"a\":");
        memset(deep + n, '[', DEPTH);
        memset(deep + n + DEPTH, ']', DEPTH);
        deep[n + 2 * DEPTH] = '}';
        wsc_send_frame(&c, 1, 1, deep, n + 2 * DEPTH + 1);
    }
    say(&c, "\"fine\"");
    chat_json(want, sizeof want, a, "\"fine\"");
    got = next_chat(&c, WAIT_MS);
    CHECK_STR(got, want); /* nothing before it: the junk produced no broadcast */
    free(got);
    leave(&c);
}

static void test_binary_frame_closed_1003(void) {
    char a[64];
    wsc c;
    tagged(a, sizeof a, "binary");
    CHECK_INT(join(&c, a), 101);
    CHECK(wait_users(&c, a));
    wsc_send_frame(&c, 1, 2, "\x01\x02", 2);
    expect_close(&c, 1003, NULL);
    wsc_close(&c);
}

static void test_client_close_is_echoed(void) {
    char a[64];
    wsc c;
    tagged(a, sizeof a, "closer");
    CHECK_INT(join(&c, a), 101);
    CHECK(wait_users(&c, a));
    wsc_send_close(&c, 4000, "done");
    expect_close(&c, 4000, NULL);
    wsc_close(&c);
}

static void test_sigterm_closes_clients_1001_and_exits_0(void) {
    test_server s;
    wsc c1, c2;
    char a[64], b[64];
    CHECK_INT(use_binary(&s, NULL), 0);
    join_pair(&c1, a, "alice", &c2, b, "bob");
    kill(s.pid, SIGTERM);
    expect_close(&c1, 1001, NULL);
    expect_close(&c2, 1001, NULL);
    DONE_SERVER(&s);
    wsc_close(&c1), wsc_close(&c2);
}

/* -v logs every join with the client's address; -q keeps info lines out. */
static void test_binary_log_levels(void) {
    static const char *const verbose[] = {"-v", NULL}, *const quiet[] = {"-q", NULL};
    const char *const *args[2];
    int pass;
    args[0] = verbose, args[1] = quiet;
    for (pass = 0; pass < 2; pass++) {
        test_server s;
        char a[64], line[512], want[128];
        wsc c;
        int seen_join = 0, seen_info = 0;
        long long deadline;
        binary_stderr_to_pipe = 1;
        CHECK_INT(use_binary(&s, args[pass]), 0);
        binary_stderr_to_pipe = 0;
        tagged(a, sizeof a, "logged");
        CHECK_INT(join(&c, a), 101);
        CHECK(wait_users(&c, a));
        leave(&c);
        snprintf(want, sizeof want, "chat: debug: join: %s from 127.0.0.1", a);
        kill(s.pid, SIGTERM);
        deadline = wsc_now_ms() + WAIT_MS;
        while (read_line(s.pipe_fd, line, sizeof line, deadline) >= 0) {
            if (strncmp(line, want, strlen(want)) == 0) seen_join = 1;
            if (strncmp(line, "chat: info: ", 12) == 0) seen_info = 1;
        }
        CHECKF(seen_join == !pass, "-%s: join line %s", pass ? "q" : "v", seen_join ? "present" : "missing");
        CHECKF(seen_info == !pass, "-%s: info lines %s", pass ? "q" : "v", seen_info ? "present" : "missing");
        DONE_SERVER(&s);
    }
}

static void test_binary_logs_joins_and_leaves_like_the_tutorial(void) {
    static const char *const quiet_off[] = {NULL};
    test_server s;
    char a[64], line[256], want[128];
    wsc c;
    int seen_join = 0, seen_leave = 0;
    long long deadline;
    CHECK_INT(use_binary(&s, quiet_off), 0);
    tagged(a, sizeof a, "logged");
    CHECK_INT(join(&c, a), 101);
    CHECK(wait_users(&c, a));
    leave(&c);
    deadline = wsc_now_ms() + WAIT_MS;
    while ((!seen_join || !seen_leave) && read_line(s.pipe_fd, line, sizeof line, deadline) >= 0) {
        snprintf(want, sizeof want, "新客户端连接：%s", a);
        if (strcmp(line, want) == 0) seen_join = 1;
        snprintf(want, sizeof want, "客户端 %s 已断开连接", a);
        if (strcmp(line, want) == 0) seen_leave = 1;
    }
    CHECK(seen_join);
    CHECK(seen_leave);
    DONE_SERVER(&s);
}

static int has_ipv6_loopback(void) {
    struct sockaddr_in6 a;
    int fd = socket(AF_INET6, SOCK_STREAM, 0), ok;
    memset(&a, 0, sizeof a);
    a.sin6_family = AF_INET6, a.sin6_addr = in6addr_loopback;
    ok = fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
    if (fd >= 0) close(fd);
    return ok;
}

/* The banner names addresses people can open: the bound one (IPv6 in brackets), or on every
   interface each non-loopback address of the machine and then localhost, all with the port. */
static void test_binary_banner_names_openable_addresses(void) {
    static const char *const v6[] = {"-b", "::1", NULL}, *const any[] = {"-b", "", NULL}, *const v4[] = {NULL};
    test_server s;
    char want[128], line[256], a[64], host[64];
    unsigned char bin[16];
    int lines = 0, last_local = 0;
    wsc c;
    long long deadline;
    CHECK_INT(use_binary(&s, v4), 0);
    snprintf(want, sizeof want, "Listening at http://127.0.0.1:%d", s.port);
    CHECK_STR(binary_line, want);
    DONE_SERVER(&s);
    if (has_ipv6_loopback()) { /* machines without it skip this part */
        CHECK_INT(use_binary(&s, v6), 0);
        snprintf(want, sizeof want, "Listening at http://[::1]:%d", s.port);
        CHECK_STR(binary_line, want);
        DONE_SERVER(&s);
    }
    /* every interface: lines until the join line of a client that comes after the banner */
    CHECK_INT(use_binary(&s, any), 0);
    tagged(a, sizeof a, "banner");
    CHECK_INT(join(&c, a), 101);
    CHECK(wait_users(&c, a));
    snprintf(want, sizeof want, "新客户端连接：%s", a);
    snprintf(line, sizeof line, "%s", binary_line);
    deadline = wsc_now_ms() + WAIT_MS;
    do {
        const char *h = line + 20, *colon = strrchr(line, ':');
        size_t n = colon ? (size_t)(colon - h) : 0;
        CHECKF(strncmp(line, "Listening at http://", 20) == 0 && colon && atoi(colon + 1) == s.port && !last_local,
               "banner line '%s' (port %d)", line, s.port);
        if (!colon || n < 1 || n >= sizeof host) continue;
        lines++;
        if (h[0] == '[' && h[n - 1] == ']') memcpy(host, h + 1, n - 2), host[n - 2] = '\0';
        else memcpy(host, h, n), host[n] = '\0';
        last_local = strcmp(host, "localhost") == 0;
        if (last_local) continue;
        CHECKF(h[0] == '[' ? inet_pton(AF_INET6, host, bin) == 1 && strcmp(host, "::1") != 0
                           : inet_pton(AF_INET, host, bin) == 1 && strncmp(host, "127.", 4) != 0,
               "banner address '%s' is not an IPv4 or [IPv6] address other than loopback", host);
    } while (read_line(s.pipe_fd, line, sizeof line, deadline) >= 0 && strcmp(line, want) != 0);
    CHECK(lines >= 1);
    CHECKF(last_local, "the banner does not end with localhost");
    leave(&c);
    DONE_SERVER(&s);
}

/* A -t that is not an IP address would never match a peer: it is refused, not ignored. */
static void test_binary_refuses_bad_proxy_address(void) {
    static const char *const bad[] = {"-t", "notanip", NULL};
    test_server s;
    int status = -1;
    binary_stderr_to_pipe = 1;
    binary_line[0] = '\0';
    if (start_binary(&s, bad) == 0) {
        CHECKF(0, "started anyway: '%s'", binary_line);
        stop_server(&s);
    } else {
        CHECKF(strstr(binary_line, "-t needs the proxy's IPv4 or IPv6 address") && strstr(binary_line, "'notanip'"),
               "message: '%s'", binary_line);
        kill(s.pid, SIGKILL); /* only matters if it hangs instead of exiting */
        waitpid(s.pid, &status, 0);
        close(s.pipe_fd);
        CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 2, "exit status %d, not 2", status);
    }
    binary_stderr_to_pipe = 0;
}

/* ============================================================================================ */
/* library servers with a test configuration                                                    */
/* ============================================================================================ */

static int veto_join(void *user, chat_server *srv, const char *name, size_t len) {
    (void)user, (void)len;
    if (strncmp(name, "banned", 6) == 0) return 1;
    chat_server_broadcast(srv, "server", name, strlen(name)); /* reaches those already in */
    return 0;
}

static int veto_message(void *user, chat_server *srv, const char *name, size_t nl, const char *text, size_t len) {
    (void)user, (void)srv, (void)name, (void)nl;
    return len >= 4 && memcmp(text, "drop", 4) == 0;
}

static void announce_leave(void *user, chat_server *srv, const char *name, size_t len) {
    char text[200];
    (void)user, (void)len;
    snprintf(text, sizeof text, "bye %s", name);
    chat_server_broadcast(srv, "server", text, strlen(text));
}

static void test_callbacks_veto_and_broadcast(void) {
    chat_config cfg;
    test_server s;
    wsc ca, cb, cx;
    char a[64], b[64], banned[64], want[256], text[128], *got;
    memset(&cfg, 0, sizeof cfg);
    cfg.on_join = veto_join, cfg.on_message = veto_message, cfg.on_leave = announce_leave;
    CHECK_INT(use_library(&s, &cfg), 0);
    tagged(a, sizeof a, "alice"), tagged(b, sizeof b, "bob"), tagged(banned, sizeof banned, "banned");
    CHECK_INT(join(&ca, a), 101);
    CHECK(wait_users(&ca, a));
    CHECK_INT(join(&cx, banned), 101);
    expect_close(&cx, 1008, "username refused");
    wsc_close(&cx);
    CHECK_INT(join(&cb, b), 101);
    snprintf(text, sizeof text, "\"%s\"", b);
    chat_json(want, sizeof want, "server", text); /* from on_join, before bob is in */
    got = next_chat(&ca, WAIT_MS);
    CHECK_STR(got, want);
    free(got);
    say(&cb, "\"drop this\"");
    say(&cb, "\"keep this\"");
    EXPECT_CHAT(&ca, b, "\"keep this\"");
    leave(&cb);
    snprintf(text, sizeof text, "\"bye %s\"", b);
    EXPECT_CHAT(&ca, "server", text);
    leave(&ca);
    DONE_SERVER(&s);
}

static void test_limits_message_size_and_clients(void) {
    chat_config cfg;
    test_server s;
    wsc c1, c2, c3, h;
    char a[64], b[64], big[1100], *body = NULL;
    memset(&cfg, 0, sizeof cfg);
    cfg.max_message = 1000, cfg.max_clients = 2;
    CHECK_INT(use_library(&s, &cfg), 0);
    tagged(a, sizeof a, "one"), tagged(b, sizeof b, "two");
    CHECK_INT(join(&c1, a), 101);
    CHECK_INT(join(&c2, b), 101);
    CHECK_INT(join(&c3, "three"), 101); /* full: a browser learns it from the close */
    expect_close(&c3, 1013, "room is full");
    wsc_close(&c3);
    CHECK_INT(wsc_http(T_HOST, T_PORT, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", &h, &body, NULL), 200);
    CHECK_STR(body, "hello\n"); /* pages are still served */
    free(body);
    wsc_close(&h);
    memset(big, 'x', sizeof big);
    wsc_send_frame(&c1, 1, 1, big, 1001);
    expect_close(&c1, 1009, NULL);
    wsc_close(&c1);
    wsc_send_frame(&c2, 1, 1, big, 1000); /* at the limit: fine (and ignored: not JSON) */
    say(&c2, "\"ok\"");
    body = next_chat(&c2, WAIT_MS);
    CHECK(body && strstr(body, "\"ok\""));
    free(body);
    leave(&c2);
    DONE_SERVER(&s);
}

/* A burst of joins: every client's last list is complete and the same, and nobody gets one
   list per join (the lists are latest-state, not a queue). */
static void test_join_burst_coalesces_user_lists(void) {
    enum { N = CHAT_MAX_CLIENTS < 40 ? CHAT_MAX_CLIENTS : 40 }; /* a small-board build has fewer */
    chat_config cfg;
    test_server s;
    static wsc c[N];
    char names[N][32], want[N * 32 + 1] = "", req[512], enc[128];
    int i, most_lists = 0, complete = 0;
    memset(&cfg, 0, sizeof cfg);
    CHECK_INT(use_library(&s, &cfg), 0);
    for (i = 0; i < N; i++) { /* all handshakes go out before any response is read */
        snprintf(names[i], sizeof names[i], "u%02d-%s", i, TAG);
        url_encode(names[i], enc);
        CHECK_INT(wsc_open_tcp(&c[i], T_HOST, T_PORT), 0);
        snprintf(req, sizeof req,
                 "GET /start_web_socket?username=%s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                 "Sec-WebSocket-Version: 13\r\n\r\n", enc);
        wsc_send_all(c[i].fd, req, strlen(req));
    }
    for (i = 0; i < N; i++) CHECK_INT(wsc_read_head(&c[i], WAIT_MS), 101);
    for (i = 0; i < N; i++) {
        char last[N * 32 + 1] = "", ours[N * 32 + 1];
        int lists = 0;
        wsc_msg m;
        /* lists until one names all N; the join order is the server's, so compare as a set */
        while (wsc_recv(&c[i], &m, WAIT_MS) == WSC_TEXT) {
            int n = 1;
            const char *p;
            if (our_users(m.data, ours, sizeof ours)) lists++, strcpy(last, ours);
            wsc_msg_free(&m);
            for (p = last; *p; p++) n += *p == '|';
            if (n == N) break;
        }
        wsc_msg_free(&m);
        if (i == 0) strcpy(want, last);
        else if (strcmp(last, want) == 0) complete++;
        if (lists > most_lists) most_lists = lists;
    }
    CHECKF(complete == N - 1, "%d of %d clients ended with the same list as the first", complete, N - 1);
    for (i = 0; i < N; i++) CHECKF(strstr(want, names[i]) != NULL, "the final list lacks %s", names[i]);
    CHECKF(most_lists < N / 2, "a client received %d lists for %d joins", most_lists, N);
    for (i = 0; i < N; i++) wsc_close(&c[i]);
    DONE_SERVER(&s);
}

static void test_ping_and_idle_close(void) {
    chat_config cfg;
    test_server s;
    wsc quiet, lively;
    char a[64], b[64], *got;
    int pinged = 0, close_code = 0, eof = 0, lively_events = 0;
    long long deadline;
    memset(&cfg, 0, sizeof cfg);
    cfg.ping_interval_ms = 300;
    CHECK_INT(use_library(&s, &cfg), 0);
    tagged(a, sizeof a, "quiet"), tagged(b, sizeof b, "lively");
    CHECK_INT(join(&quiet, a), 101);
    CHECK_INT(join(&lively, b), 101);
    /* The quiet client reads but never answers: a ping, then close 1001, then EOF. The lively
       one answers every ping (wsc_recv does) and must still be there afterwards. */
    deadline = wsc_now_ms() + 4 * WAIT_MS;
    while (!eof && wsc_now_ms() < deadline) {
        wsc_frame f;
        wsc_msg m;
        int t = wsc_read_frame(&quiet, &f, 20);
        if (t < 0) eof = 1;
        if (t == 1 && f.opcode == 9) pinged = 1;
        if (t == 1 && f.opcode == 8 && f.len >= 2) close_code = f.payload[0] << 8 | f.payload[1];
        if (t == 1) free(f.payload);
        t = wsc_recv(&lively, &m, 20);
        if (t != WSC_TIMEOUT && t != WSC_TEXT) lively_events++;
        wsc_msg_free(&m);
    }
    CHECK(pinged);
    CHECK_INT(close_code, 1001);
    CHECK(eof);
    CHECKF(lively_events == 0, "the client that answers pings was closed");
    wsc_close(&quiet);
    say(&lively, "\"alive\"");
    got = next_chat(&lively, WAIT_MS);
    CHECK(got && strstr(got, "alive"));
    free(got);
    leave(&lively);
    DONE_SERVER(&s);
}

static void test_listen_dual_stack_and_ipv6(void) {
    chat_server *srv = chat_server_create(NULL);
    wsc c;
    int fd, port;
    CHECK(srv != NULL);
    CHECK_INT(chat_server_listen(srv, NULL, 0), CHAT_OK);
    port = chat_server_port(srv);
    CHECK(port > 0);
    CHECK_INT(chat_server_listen(srv, NULL, 0), CHAT_ESTATE);
    /* connect() completes in the kernel's backlog without the loop running */
    CHECK_INT(wsc_open_tcp(&c, "127.0.0.1", port), 0);
    wsc_close(&c);
    fd = wsc_tcp_connect("::1", port);
    if (fd >= 0) close(fd); /* machines without IPv6 loopback skip this half */
    chat_server_free(srv);
    srv = chat_server_create(NULL);
    CHECK_INT(chat_server_listen(srv, "no-such-host.invalid", 0), CHAT_EADDR);
    CHECK_INT(chat_server_listen(srv, "127.0.0.1", 70000), CHAT_EINVAL);
    chat_server_free(srv);
}

/* ============================================================================================ */

static void make_tag(void) {
    if (getenv("CHAT_TEST_SLOW")) WAIT_MS *= atoi(getenv("CHAT_TEST_SLOW")) > 0 ? atoi(getenv("CHAT_TEST_SLOW")) : 1;
    snprintf(TAG, sizeof TAG, "%04x", (unsigned)(wsc_now_ms() ^ getpid()) & 0xFFFF);
}

static void integration_tests(void) {
    static const char *const quiet[] = {"-q", NULL};
    test_server bin;
    make_tag();
    RUN(test_binary_embed_block_is_current);
    if (start_binary(&bin, quiet) != 0) {
        printf("FAIL cannot start %s/chat (run 'make' first)\n", test_root);
        test_failed++;
        return;
    }
    T_PORT = bin.port;
    contract_tests();
    RUN(test_binary_serves_public_exactly);
    RUN(test_http_methods_head_and_keepalive);
    RUN(test_http_handshake_errors);
    RUN(test_handshake_browser_style_headers);
    RUN(test_frame_in_same_packet_as_request);
    RUN(test_refused_names_get_1008_with_reason);
    RUN(test_invalid_json_ignored_connection_stays);
    RUN(test_binary_frame_closed_1003);
    RUN(test_client_close_is_echoed);
    {
        int status = stop_server(&bin);
        if (status != 0) {
            printf("FAIL the example binary did not exit 0 on SIGTERM (status %d)\n", status);
            test_failed++;
        }
    }
    RUN(test_sigterm_closes_clients_1001_and_exits_0);
    RUN(test_binary_logs_joins_and_leaves_like_the_tutorial);
    RUN(test_binary_log_levels);
    RUN(test_binary_banner_names_openable_addresses);
    RUN(test_binary_refuses_bad_proxy_address);
    RUN(test_callbacks_veto_and_broadcast);
    RUN(test_limits_message_size_and_clients);
    RUN(test_join_burst_coalesces_user_lists);
    RUN(test_ping_and_idle_close);
    RUN(test_listen_dual_stack_and_ipv6);
}

/* Only the wire contract, against a server someone else started. */
static void integration_external_tests(const char *target) {
    static char host[256];
    const char *colon = strrchr(target, ':');
    size_t n = colon ? (size_t)(colon - target) : 0;
    if (!colon || n >= sizeof host) {
        printf("FAIL --external needs HOST:PORT\n");
        test_failed++;
        return;
    }
    memcpy(host, target, n);
    host[n] = '\0';
    T_HOST = host;
    T_PORT = atoi(colon + 1);
    make_tag();
    contract_tests();
}
