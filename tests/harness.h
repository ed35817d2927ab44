/* harness.h - what the integration-level tests share: servers under test (the example binary or
   a forked library server), and a chat user's steps over wsclient.h (join, say, wait for a user
   list, expect a close). Every name here starts with harness_ (HARNESS_ for macros). */
#ifndef HARNESS_H
#define HARNESS_H
#include "wsclient.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>

/* The most any single expected event may take; CHAT_TEST_SLOW=N multiplies it (valgrind). */
static int harness_wait_ms = 3000;

static const char *harness_host = "127.0.0.1";
static int harness_port;
static char harness_tag[16]; /* in every name, so tests on a shared server see only their own users */

/* --- servers under test --- */

typedef struct harness_server {
    pid_t pid;
    int port;
    int pipe_fd; /* the child's stdout (binary) or port pipe (library); EOF when it exits */
} harness_server;

/* Reads one line from fd into out, waiting until the deadline. Returns its length or -1. */
static int harness_read_line(int fd, char *out, size_t cap, long long deadline) {
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

static int harness_binary_stderr_to_pipe; /* harness_start_binary: read the log lines too */
static char harness_binary_line[256];     /* the last line harness_start_binary read: the banner, or why it exited */

/* Every test client comes from 127.0.0.1, so the servers under test get no per-address limits
   unless a test asks for them (tests/limits.c does). */
static int harness_binary_address_limits; /* harness_start_binary: keep the per-address defaults */

/* Starts ./chat -p 0 -b 127.0.0.1 plus `args`, and waits for its "Listening at" line. */
static int harness_start_binary(harness_server *s, const char *const *args) {
    static char wrapper[512];
    const char *argv[24];
    char path[1024], line[256], *word;
    int p[2], n = 0;
    long long deadline = wsc_now_ms() + harness_wait_ms;
    snprintf(path, sizeof path, "%s", getenv("CHAT_TEST_BIN") ? getenv("CHAT_TEST_BIN") : "");
    if (!path[0]) snprintf(path, sizeof path, "%s/chat", test_root);
    /* CHAT_TEST_WRAPPER runs the binary under a tool, e.g. "valgrind -q --error-exitcode=99" */
    if (getenv("CHAT_TEST_WRAPPER")) {
        snprintf(wrapper, sizeof wrapper, "%s", getenv("CHAT_TEST_WRAPPER"));
        for (word = strtok(wrapper, " "); word && n < 8; word = strtok(NULL, " ")) argv[n++] = word;
    }
    argv[n++] = path, argv[n++] = "-p", argv[n++] = "0", argv[n++] = "-b", argv[n++] = "127.0.0.1";
    if (!harness_binary_address_limits) argv[n++] = "-a", argv[n++] = "0", argv[n++] = "-j", argv[n++] = "0";
    while (args && *args && n < 23) argv[n++] = *args++;
    argv[n] = NULL;
    if (pipe(p) < 0) return -1;
    fflush(stdout);
    s->pid = fork();
    if (s->pid == 0) {
        dup2(p[1], 1);
        close(p[0]), close(p[1]);
        if (harness_binary_stderr_to_pipe) dup2(1, 2);
        else if (!test_verbose) { /* the server's own log is noise unless asked for */
            int null = open("/dev/null", O_WRONLY);
            if (null >= 0) dup2(null, 2);
        }
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(p[1]);
    s->pipe_fd = p[0];
    while (harness_read_line(s->pipe_fd, line, sizeof line, deadline) >= 0) {
        const char *colon = strrchr(line, ':');
        snprintf(harness_binary_line, sizeof harness_binary_line, "%s", line);
        if (strncmp(line, "Listening at http://", 20) == 0 && colon) {
            s->port = atoi(colon + 1);
            return s->port > 0 ? 0 : -1;
        }
    }
    return -1;
}

static chat_server *volatile harness_child_server;      /* in a forked library server; NULL once freed */
static volatile sig_atomic_t harness_child_heap_wanted; /* SIGUSR2 asks the child for its heap use */
static void (*harness_child_setup)(void);               /* run in the child before the server starts */
static int harness_child_pipe_fd = -1;                  /* in the child: its pipe to the parent */
/* Another transport under every library server (tests/tls/wss.c: TLS, issue 16), in the child:
   `config` adds it before the server is created; `front` starts what the tests' plain clients
   reach it through (a TLS relay) and returns that port instead of the server's. */
static void (*harness_library_config)(chat_config *cfg);
static int (*harness_library_front)(int port);

static void harness_child_on_term(int sig) {
    chat_server *srv = harness_child_server;
    (void)sig;
    if (srv) chat_server_stop(srv);
}

static void harness_child_on_usr2(int sig) {
    (void)sig;
    harness_child_heap_wanted = 1;
}

/* Asks a library server for its heap use (through the CHAT_MALLOC hook of main.c), measured
   between two loop turns. Returns bytes, or -1. */
static long long harness_server_heap(harness_server *s, long long *blocks) {
    char line[128];
    long long bytes = -1;
    kill(s->pid, SIGUSR2);
    if (harness_read_line(s->pipe_fd, line, sizeof line, wsc_now_ms() + harness_wait_ms) < 0) return -1;
    if (sscanf(line, "heap %lld %lld", &bytes, blocks) != 2) return -1;
    return bytes;
}

/* Forks a server built from the library with `cfg`; it serves "/hello" as a plain asset. */
static int harness_start_library(harness_server *s, const chat_config *given) {
    chat_config unlimited, *cfg = &unlimited;
    int p[2];
    char line[64];
    memset(&unlimited, 0, sizeof unlimited);
    if (given) unlimited = *given;
    if (!cfg->max_per_address) cfg->max_per_address = -1; /* see harness_binary_address_limits */
    if (!cfg->max_join_rate) cfg->max_join_rate = -1;
    if (pipe(p) < 0) return -1;
    fflush(stdout);
    s->pid = fork();
    if (s->pid == 0) {
        struct sigaction sa;
        int port;
        close(p[0]);
        if (harness_library_config) harness_library_config(cfg);
        harness_child_server = chat_server_create(cfg);
        if (!harness_child_server || chat_server_add_asset(harness_child_server, "/hello", "text/plain", "hello\n", 6) ||
            chat_server_listen(harness_child_server, "127.0.0.1", 0))
            _exit(2);
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = harness_child_on_term;
        sigaction(SIGTERM, &sa, NULL);
        sa.sa_handler = harness_child_on_usr2;
        sigaction(SIGUSR2, &sa, NULL);
        harness_child_pipe_fd = p[1];
        if (harness_child_setup) harness_child_setup();
        port = chat_server_port(harness_child_server);
        if (harness_library_front) port = harness_library_front(port);
        snprintf(line, sizeof line, "%d\n", port);
        if (write(p[1], line, strlen(line)) < 0) _exit(2);
        /* a bounded wait, so a SIGUSR2 that lands just before poll() is seen soon */
        while ((port = chat_server_poll(harness_child_server, 100)) > 0) {
            if (harness_child_heap_wanted) {
                harness_child_heap_wanted = 0;
                snprintf(line, sizeof line, "heap %lld %lld\n", (long long)test_heap_bytes,
                         (long long)test_heap_blocks);
                if (write(p[1], line, strlen(line)) < 0) _exit(2);
            }
        }
        {
            chat_server *srv = harness_child_server;
            harness_child_server = NULL; /* a SIGTERM that arrives from now on has nothing to stop */
            chat_server_free(srv);
        }
        _exit(port == 0 ? 0 : 1);
    }
    close(p[1]);
    s->pipe_fd = p[0];
    if (harness_read_line(s->pipe_fd, line, sizeof line, wsc_now_ms() + harness_wait_ms) < 0) return -1;
    s->port = atoi(line);
    return s->port > 0 ? 0 : -1;
}

/* SIGTERM, then wait for the child's end (its pipe reaches EOF). Returns the exit status, or -1
   when it had to be killed. */
static int harness_stop_server(harness_server *s) {
    long long deadline = wsc_now_ms() + harness_wait_ms;
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
static void harness_url_encode(const char *in, char *out) {
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

static void harness_tagged(char *out, size_t cap, const char *base) { snprintf(out, cap, "%s-%s", base, harness_tag); }

/* Joins as `name` (URL-encoded here). Returns the HTTP status. */
static int harness_join(wsc *c, const char *name) {
    char target[1024], enc[900];
    harness_url_encode(name, enc);
    snprintf(target, sizeof target, "/start_web_socket?username=%s", enc);
    return wsc_connect(c, harness_host, harness_port, target);
}

/* The names carrying this run's harness_tag in an update-users message, joined by '|'; NULL if the
   message is not update-users. Test names contain no quote or backslash, so a scan suffices. */
static int harness_our_users(const char *msg, char *out, size_t cap) {
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
        if (strstr(p + 1, harness_tag) && strstr(p + 1, harness_tag) < end && n + k + 2 < cap) {
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
static int harness_wait_users(wsc *c, const char *want) {
    long long deadline = wsc_now_ms() + harness_wait_ms;
    for (;;) {
        wsc_msg m;
        char ours[2048];
        long long left = deadline - wsc_now_ms();
        int t = wsc_recv(c, &m, left < 0 ? 0 : (int)left), match = 0;
        if (t == WSC_TEXT && harness_our_users(m.data, ours, sizeof ours)) match = strcmp(ours, want) == 0;
        wsc_msg_free(&m);
        if (match) return 1;
        if (t != WSC_TEXT) return 0;
    }
}

/* The next text message that is not update-users (nor a ping); NULL on timeout/close. */
static char *harness_next_chat(wsc *c, int timeout_ms) {
    long long deadline = wsc_now_ms() + timeout_ms;
    for (;;) {
        wsc_msg m;
        char ours[2048];
        long long left = deadline - wsc_now_ms();
        int t = wsc_recv(c, &m, left < 0 ? 0 : (int)left);
        if (t == WSC_TEXT && !harness_our_users(m.data, ours, sizeof ours)) return m.data;
        wsc_msg_free(&m);
        if (t != WSC_TEXT) return NULL;
    }
}

static void harness_chat_json(char *out, size_t cap, const char *name, const char *message_json) {
    snprintf(out, cap, "{\"event\":\"send-message\",\"username\":\"%s\",\"message\":%s}", name, message_json);
}

/* Sends {"event":"send-message","message":<message_json>} */
static int harness_say(wsc *c, const char *message_json) {
    char buf[70000];
    snprintf(buf, sizeof buf, "{\"event\":\"send-message\",\"message\":%s}", message_json);
    return wsc_send_text(c, buf);
}

/* Fills text with a JSON string of `size` bytes, quotes included: "ccc...c". */
static void harness_quoted_run(char *text, size_t size, char c) {
    memset(text, c, size);
    text[0] = '"', text[size - 1] = '"', text[size] = '\0';
}

/* Tags the two bases into a and b (64 bytes each), joins both users, and checks that each one
   sees the pair in its user list. */
static void harness_join_pair(wsc *ca, char *a, const char *base_a, wsc *cb, char *b, const char *base_b) {
    char ab[130];
    harness_tagged(a, 64, base_a), harness_tagged(b, 64, base_b);
    snprintf(ab, sizeof ab, "%s|%s", a, b);
    CHECK_INT(harness_join(ca, a), 101);
    CHECK_INT(harness_join(cb, b), 101);
    CHECKF(harness_wait_users(ca, ab), "%s did not see [%s]", a, ab);
    CHECKF(harness_wait_users(cb, ab), "%s did not see [%s]", b, ab);
}

/* Closes with 1000 and waits for the server's close and EOF, so the server has seen the leave. */
static void harness_leave(wsc *c) {
    wsc_msg m;
    wsc_send_close(c, 1000, "bye");
    while (wsc_recv(c, &m, harness_wait_ms) == WSC_TEXT) wsc_msg_free(&m);
    wsc_msg_free(&m);
    wsc_wait_eof(c, harness_wait_ms);
    wsc_close(c);
}

/* Expects a close frame with `code` (and `reason` unless NULL), answers it as a browser does,
   then expects the server to close the TCP connection. */
static void harness_expect_close(wsc *c, int code, const char *reason) {
    wsc_msg m;
    int t;
    do t = wsc_recv(c, &m, harness_wait_ms);
    while (t == WSC_TEXT && (wsc_msg_free(&m), 1));
    CHECKF(t == WSC_CLOSE, "expected close %d, got message type %d", code, t);
    if (t == WSC_CLOSE) {
        CHECK_INT(m.code, code);
        if (reason) CHECK_STR(m.data, reason);
        wsc_send_close(c, m.code == 1005 ? 0 : m.code, NULL);
    }
    wsc_msg_free(&m);
    CHECKF(wsc_wait_eof(c, harness_wait_ms), "the server did not close the TCP connection after close %d", code);
}

/* The next chat message must be {"event":"send-message","username":FROM,"message":MESSAGE_JSON}
   (update-users in between are skipped). A macro, so a failure names the caller's line. */
#define HARNESS_EXPECT_CHAT(c, from, message_json) \
    do { \
        char want_[70000]; \
        char *got_; \
        harness_chat_json(want_, sizeof want_, (from), (message_json)); \
        got_ = harness_next_chat((c), harness_wait_ms); \
        CHECK_STR(got_, want_); \
        free(got_); \
    } while (0)

static int harness_saved_port; /* where the tests pointed before harness_use_library/harness_use_binary */

/* Starts a library server with `cfg` and points the tests (harness_port) at it. */
static int harness_use_library(harness_server *s, const chat_config *cfg) {
    int r = harness_start_library(s, cfg);
    harness_saved_port = harness_port;
    if (r == 0) harness_port = s->port;
    return r;
}

/* The same with the example binary and these arguments. */
static int harness_use_binary(harness_server *s, const char *const *args) {
    int r = harness_start_binary(s, args);
    harness_saved_port = harness_port;
    if (r == 0) harness_port = s->port;
    return r;
}

/* Stops it (it must exit 0) and points the tests back where they were. */
#define HARNESS_DONE_SERVER(s) \
    do { \
        CHECK_INT(harness_stop_server(s), 0); \
        harness_port = harness_saved_port; \
    } while (0)

#endif /* HARNESS_H */
