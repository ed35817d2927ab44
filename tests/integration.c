/* Integration tests: real servers on 127.0.0.1, real sockets, our own WebSocket client.
   - contract tests speak only the tutorial's wire contract; they also run against another
     server (tests/run_tests --external HOST:PORT), e.g. the tutorial itself on Deno;
   - the rest check chat.h's own behaviour: refusals, limits, callbacks, the example binary.
   Servers are the example binary (./chat) or a library server forked with a test config. */
#include "harness.h"

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
        CHECK_INT(wsc_http(harness_host, harness_port, req, &c, &body, NULL), 200);
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
        CHECKF(wsc_http(harness_host, harness_port, req, &c, NULL, NULL) == 404, "%s: status %d", paths[i], c.status);
        wsc_close(&c);
    }
}

static void test_contract_join_and_leave_broadcast_users(void) {
    char a[64], b[64], ab[130];
    wsc ca, cb;
    harness_tagged(a, sizeof a, "alice"), harness_tagged(b, sizeof b, "bob");
    snprintf(ab, sizeof ab, "%s|%s", a, b);
    CHECK_INT(harness_join(&ca, a), 101);
    CHECKF(harness_wait_users(&ca, a), "alice did not see herself in the list");
    CHECK_INT(harness_join(&cb, b), 101);
    CHECKF(harness_wait_users(&cb, ab), "bob did not see [alice, bob]");
    CHECKF(harness_wait_users(&ca, ab), "alice did not see [alice, bob]");
    harness_leave(&cb);
    CHECKF(harness_wait_users(&ca, a), "alice did not see bob leave");
    harness_leave(&ca);
}

static void test_contract_message_reaches_everyone_including_sender(void) {
    char a[64], b[64];
    wsc ca, cb;
    harness_join_pair(&ca, a, "alice", &cb, b, "bob");
    CHECK_INT(harness_say(&ca, "\"hello\""), 0);
    HARNESS_EXPECT_CHAT(&ca, a, "\"hello\"");
    HARNESS_EXPECT_CHAT(&cb, a, "\"hello\"");
    harness_leave(&ca), harness_leave(&cb);
}

static void test_contract_one_senders_order_is_kept(void) {
    enum { N = 200 };
    char a[64], b[64], text[64], want[256];
    wsc ca, cb;
    int i, in_order_a = 1, in_order_b = 1;
    harness_join_pair(&ca, a, "alice", &cb, b, "bob");
    for (i = 0; i < N; i++) {
        snprintf(text, sizeof text, "\"message %d\"", i);
        harness_say(&ca, text);
    }
    for (i = 0; i < N && (in_order_a || in_order_b); i++) {
        char *ga = harness_next_chat(&ca, harness_wait_ms), *gb;
        snprintf(text, sizeof text, "\"message %d\"", i);
        harness_chat_json(want, sizeof want, a, text);
        if (!ga || strcmp(ga, want) != 0) in_order_a = 0;
        gb = harness_next_chat(&cb, harness_wait_ms);
        if (!gb || strcmp(gb, want) != 0) in_order_b = 0;
        free(ga), free(gb);
    }
    CHECKF(in_order_a, "the sender saw its messages out of order or missing (at %d)", i);
    CHECKF(in_order_b, "the other client saw them out of order or missing (at %d)", i);
    harness_leave(&ca), harness_leave(&cb);
}

/* A burst of messages of many sizes, more than one turn's output space (chat.h gathers a turn's
   output once and writes it to every client whose queue matches), while one client's own pongs
   sit between the broadcasts in its queue: every client gets every message whole, in order. */
static void test_contract_burst_of_many_sizes_reaches_every_client_in_order(void) {
    enum { N = 120, CLIENTS = 4 };
    static char text[2100], want[2300];
    char names[CLIENTS][64];
    wsc c[CLIENTS];
    static const char *const bases[CLIENTS] = {"alice", "bob", "carol", "dave"};
    char all[4 * 64 + 4] = "";
    int i, k, bad_at[CLIENTS];
    for (k = 0; k < CLIENTS; k++) {
        harness_tagged(names[k], sizeof names[k], bases[k]);
        CHECK_INT(harness_join(&c[k], names[k]), 101);
        strcat(all, k ? "|" : ""), strcat(all, names[k]);
    }
    for (k = 0; k < CLIENTS; k++) CHECKF(harness_wait_users(&c[k], all), "%s did not see [%s]", names[k], all);
    for (i = 0; i < N; i++) {
        harness_quoted_run(text, (size_t)(3 + (i * 137) % 1900), (char)('a' + i % 26));
        CHECK_INT(harness_say(&c[0], text), 0);
        if (i % 12 == 0) CHECK_INT(wsc_send_frame(&c[3], 1, 9, "ping", 4), 0);
    }
    for (k = 0; k < CLIENTS; k++) {
        bad_at[k] = -1;
        for (i = 0; i < N && bad_at[k] < 0; i++) {
            char *got = harness_next_chat(&c[k], harness_wait_ms);
            harness_quoted_run(text, (size_t)(3 + (i * 137) % 1900), (char)('a' + i % 26));
            harness_chat_json(want, sizeof want, names[0], text);
            if (!got || strcmp(got, want) != 0) bad_at[k] = i;
            free(got);
        }
        CHECKF(bad_at[k] < 0, "%s: message %d missing, cut or out of order", names[k], bad_at[k]);
    }
    for (k = 0; k < CLIENTS; k++) harness_leave(&c[k]);
}

static void test_contract_duplicate_name_closed_1008_first_unaffected(void) {
    char a[64], reason[160];
    wsc ca, dup;
    harness_tagged(a, sizeof a, "alice");
    CHECK_INT(harness_join(&ca, a), 101);
    CHECK(harness_wait_users(&ca, a));
    CHECK_INT(harness_join(&dup, a), 101); /* the upgrade completes; then the refusal */
    snprintf(reason, sizeof reason, "用户名 %s 已被占用", a);
    harness_expect_close(&dup, 1008, reason);
    wsc_close(&dup);
    CHECK_INT(harness_say(&ca, "\"still here\""), 0);
    HARNESS_EXPECT_CHAT(&ca, a, "\"still here\"");
    harness_leave(&ca);
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
    harness_tagged(a, sizeof a, "小明");
    CHECK_INT(harness_join(&ca, a), 101);
    CHECK(harness_wait_users(&ca, a));
    for (i = 0; i < sizeof messages / sizeof messages[0]; i++) {
        harness_say(&ca, messages[i]);
        HARNESS_EXPECT_CHAT(&ca, a, messages[i]);
    }
    harness_leave(&ca);
}

static void test_contract_percent_encoded_names(void) {
    char odd[128], spaced[64], enc[512], target[600], both[300];
    wsc c1, c2;
    harness_tagged(odd, sizeof odd, "a b&c=d#e 名字");
    CHECK_INT(harness_join(&c1, odd), 101); /* harness_join() encodes it as encodeURIComponent does */
    CHECK(harness_wait_users(&c1, odd));
    /* '+' in a query string is a space, as URLSearchParams reads it */
    harness_url_encode(harness_tag, enc);
    snprintf(target, sizeof target, "/start_web_socket?username=x+y-%s", enc);
    harness_tagged(spaced, sizeof spaced, "x y");
    CHECK_INT(wsc_connect(&c2, harness_host, harness_port, target), 101);
    snprintf(both, sizeof both, "%s|%s", odd, spaced);
    CHECKF(harness_wait_users(&c2, both), "expected users '%s'", both);
    harness_leave(&c1), harness_leave(&c2);
}

static void test_contract_other_events_ignored(void) {
    char a[64];
    wsc ca;
    harness_tagged(a, sizeof a, "alice");
    CHECK_INT(harness_join(&ca, a), 101);
    CHECK(harness_wait_users(&ca, a));
    wsc_send_text(&ca, "{\"event\":\"typing\",\"message\":\"x\"}");
    wsc_send_text(&ca, "{\"event\":\"send-message\",\"message\":\"after\"}");
    HARNESS_EXPECT_CHAT(&ca, a, "\"after\"");
    harness_leave(&ca);
}

static void contract_tests(void) {
    RUN(test_contract_static_assets);
    RUN(test_contract_unknown_path_404);
    RUN(test_contract_join_and_leave_broadcast_users);
    RUN(test_contract_message_reaches_everyone_including_sender);
    RUN(test_contract_one_senders_order_is_kept);
    RUN(test_contract_burst_of_many_sizes_reaches_every_client_in_order);
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
        CHECK_INT(wsc_http(harness_host, harness_port, req, &c, &body, &n), 200);
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
    CHECK_INT(wsc_http(harness_host, harness_port, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", &c, NULL, NULL), 405);
    CHECK(wsc_header(&c, "allow", allow, sizeof allow) && strstr(allow, "GET"));
    wsc_close(&c);
    CHECK_INT(wsc_http(harness_host, harness_port, "HEAD /public/app.js HTTP/1.1\r\nHost: x\r\n\r\n", &c, NULL, NULL), 200);
    CHECK(wsc_header(&c, "content-length", type, sizeof type) && atoi(type) > 100);
    /* HEAD has no body: the next bytes are the response to a second request (keep-alive) */
    {
        static const char second[] = "GET /public/style.css HTTP/1.1\r\nHost: x\r\n\r\n";
        wsc_send_all(c.fd, second, sizeof second - 1);
    }
    CHECK_INT(wsc_read_head(&c, harness_wait_ms), 200);
    CHECK(wsc_header(&c, "content-type", type, sizeof type) && strstr(type, "text/css"));
    wsc_close(&c);
    /* pipelined: three requests in one write, three responses in order */
    CHECK_INT(wsc_open_tcp(&c, harness_host, harness_port), 0);
    {
        static const char three[] = "GET /nope HTTP/1.1\r\nHost: x\r\n\r\nHEAD / HTTP/1.1\r\nHost: x\r\n\r\n"
                                    "GET /public/../public/app.js HTTP/1.1\r\nHost: x\r\n\r\n";
        wsc_send_all(c.fd, three, sizeof three - 1);
    }
    CHECK_INT(wsc_read_head(&c, harness_wait_ms), 404);
    CHECK(wsc_header(&c, "content-length", type, sizeof type));
    n = (size_t)atoi(type);
    deadline = wsc_now_ms() + harness_wait_ms;
    while (c.len < n && wsc_fill(&c, deadline) > 0) {}
    wsc_consume(&c, n);
    CHECK_INT(wsc_read_head(&c, harness_wait_ms), 200);
    CHECK_INT(wsc_read_head(&c, harness_wait_ms), 404); /* paths are never resolved: /public/../ is not / */
    wsc_close(&c);
    for (i = 0; i < 2; i++) { /* dot segments, encoded or not, never reach a file */
        const char *req = i ? "GET /%2e%2e/%2e%2e/etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n"
                            : "GET /../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n";
        CHECK_INT(wsc_http(harness_host, harness_port, req, &c, &body, NULL), 404);
        free(body);
        wsc_close(&c);
    }
}

static void test_http_handshake_errors(void) {
    wsc c;
    char v[64];
    CHECK_INT(wsc_http(harness_host, harness_port, "GET /start_web_socket?username=x HTTP/1.1\r\nHost: x\r\n\r\n", &c, NULL, NULL), 426);
    wsc_close(&c);
    CHECK_INT(wsc_http(harness_host, harness_port,
                       "GET /start_web_socket?username=x HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                       "Connection: Upgrade\r\nSec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n\r\n",
                       &c, NULL, NULL), 400);
    wsc_close(&c);
    CHECK_INT(wsc_http(harness_host, harness_port,
                       "GET /start_web_socket?username=x HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                       "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                       "Sec-WebSocket-Version: 8\r\n\r\n", &c, NULL, NULL), 426);
    CHECK(wsc_header(&c, "sec-websocket-version", v, sizeof v) && strcmp(v, "13") == 0);
    wsc_close(&c);
    CHECK_INT(wsc_http(harness_host, harness_port, "GARBAGE\r\n\r\n", &c, NULL, NULL), 400);
    wsc_close(&c);
}

static void test_handshake_browser_style_headers(void) {
    char ext[128], accept[64], a[64], enc[256], target[400], headers[512];
    wsc c;
    harness_tagged(a, sizeof a, "chrome");
    harness_url_encode(a, enc);
    snprintf(target, sizeof target, "/start_web_socket?username=%s", enc);
    snprintf(headers, sizeof headers,
             "Origin: http://%s:%d\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
             "Connection: keep-alive, Upgrade\r\nUser-Agent: test\r\n", harness_host, harness_port); /* same origin */
    CHECK_INT(wsc_connect_ex(&c, harness_host, harness_port, target, headers), 101);
    CHECK(wsc_header(&c, "sec-websocket-accept", accept, sizeof accept));
    CHECK_STR(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="); /* RFC 6455 1.3 */
    CHECKF(!wsc_header(&c, "sec-websocket-extensions", ext, sizeof ext), "an extension was accepted: %s", ext);
    CHECK(harness_wait_users(&c, a));
    harness_leave(&c);
}

static void test_frame_in_same_packet_as_request(void) {
    char a[64], enc[256], req[1024], want[256], *got;
    unsigned char frame[128];
    size_t n, fn;
    wsc c;
    harness_tagged(a, sizeof a, "eager");
    harness_url_encode(a, enc);
    CHECK_INT(wsc_open_tcp(&c, harness_host, harness_port), 0);
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
    CHECK_INT(wsc_read_head(&c, harness_wait_ms), 101);
    harness_chat_json(want, sizeof want, a, "\"early\"");
    got = harness_next_chat(&c, harness_wait_ms);
    while (got && strcmp(got, want) != 0 && strstr(got, harness_tag)) { /* the history of earlier tests comes first */
        free(got);
        got = harness_next_chat(&c, harness_wait_ms);
    }
    CHECK_STR(got, want);
    free(got);
    harness_leave(&c);
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
        CHECKF(wsc_connect(&c, harness_host, harness_port, cases[i][0]) == 101, "%s: status %d", cases[i][0], c.status);
        harness_expect_close(&c, 1008, cases[i][1]);
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
    harness_tagged(a, sizeof a, "junk");
    CHECK_INT(harness_join(&c, a), 101);
    CHECK(harness_wait_users(&c, a));
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
    harness_say(&c, "\"fine\"");
    harness_chat_json(want, sizeof want, a, "\"fine\"");
    got = harness_next_chat(&c, harness_wait_ms);
    CHECK_STR(got, want); /* nothing before it: the junk produced no broadcast */
    free(got);
    harness_leave(&c);
}

static void test_binary_frame_closed_1003(void) {
    char a[64];
    wsc c;
    harness_tagged(a, sizeof a, "binary");
    CHECK_INT(harness_join(&c, a), 101);
    CHECK(harness_wait_users(&c, a));
    wsc_send_frame(&c, 1, 2, "\x01\x02", 2);
    harness_expect_close(&c, 1003, NULL);
    wsc_close(&c);
}

static void test_client_close_is_echoed(void) {
    char a[64];
    wsc c;
    harness_tagged(a, sizeof a, "closer");
    CHECK_INT(harness_join(&c, a), 101);
    CHECK(harness_wait_users(&c, a));
    wsc_send_close(&c, 4000, "done");
    harness_expect_close(&c, 4000, NULL);
    wsc_close(&c);
}

static void test_sigterm_closes_clients_1001_and_exits_0(void) {
    harness_server s;
    wsc c1, c2;
    char a[64], b[64];
    CHECK_INT(harness_use_binary(&s, NULL), 0);
    harness_join_pair(&c1, a, "alice", &c2, b, "bob");
    kill(s.pid, SIGTERM);
    harness_expect_close(&c1, 1001, NULL);
    harness_expect_close(&c2, 1001, NULL);
    HARNESS_DONE_SERVER(&s);
    wsc_close(&c1), wsc_close(&c2);
}

/* -v logs every join with the client's address; -q keeps info lines out. */
static void test_binary_log_levels(void) {
    static const char *const verbose[] = {"-v", NULL}, *const quiet[] = {"-q", NULL};
    const char *const *args[2];
    int pass;
    args[0] = verbose, args[1] = quiet;
    for (pass = 0; pass < 2; pass++) {
        harness_server s;
        char a[64], line[512], want[128];
        wsc c;
        int seen_join = 0, seen_info = 0;
        long long deadline;
        harness_binary_stderr_to_pipe = 1;
        CHECK_INT(harness_use_binary(&s, args[pass]), 0);
        harness_binary_stderr_to_pipe = 0;
        harness_tagged(a, sizeof a, "logged");
        CHECK_INT(harness_join(&c, a), 101);
        CHECK(harness_wait_users(&c, a));
        harness_leave(&c);
        snprintf(want, sizeof want, "chat: debug: join: %s from 127.0.0.1", a);
        kill(s.pid, SIGTERM);
        deadline = wsc_now_ms() + harness_wait_ms;
        while (harness_read_line(s.pipe_fd, line, sizeof line, deadline) >= 0) {
            if (strncmp(line, want, strlen(want)) == 0) seen_join = 1;
            if (strncmp(line, "chat: info: ", 12) == 0) seen_info = 1;
        }
        CHECKF(seen_join == !pass, "-%s: join line %s", pass ? "q" : "v", seen_join ? "present" : "missing");
        CHECKF(seen_info == !pass, "-%s: info lines %s", pass ? "q" : "v", seen_info ? "present" : "missing");
        HARNESS_DONE_SERVER(&s);
    }
}

static void test_binary_logs_joins_and_leaves_like_the_tutorial(void) {
    static const char *const quiet_off[] = {NULL};
    harness_server s;
    char a[64], line[256], want[128];
    wsc c;
    int seen_join = 0, seen_leave = 0;
    long long deadline;
    CHECK_INT(harness_use_binary(&s, quiet_off), 0);
    harness_tagged(a, sizeof a, "logged");
    CHECK_INT(harness_join(&c, a), 101);
    CHECK(harness_wait_users(&c, a));
    harness_leave(&c);
    deadline = wsc_now_ms() + harness_wait_ms;
    while ((!seen_join || !seen_leave) && harness_read_line(s.pipe_fd, line, sizeof line, deadline) >= 0) {
        snprintf(want, sizeof want, "新客户端连接：%s", a);
        if (strcmp(line, want) == 0) seen_join = 1;
        snprintf(want, sizeof want, "客户端 %s 已断开连接", a);
        if (strcmp(line, want) == 0) seen_leave = 1;
    }
    CHECK(seen_join);
    CHECK(seen_leave);
    HARNESS_DONE_SERVER(&s);
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
    harness_server s;
    char want[128], line[256], a[64], host[64];
    unsigned char bin[16];
    int lines = 0, last_local = 0;
    wsc c;
    long long deadline;
    CHECK_INT(harness_use_binary(&s, v4), 0);
    snprintf(want, sizeof want, "Listening at http://127.0.0.1:%d", s.port);
    CHECK_STR(harness_binary_line, want);
    HARNESS_DONE_SERVER(&s);
    if (has_ipv6_loopback()) { /* machines without it skip this part */
        CHECK_INT(harness_use_binary(&s, v6), 0);
        snprintf(want, sizeof want, "Listening at http://[::1]:%d", s.port);
        CHECK_STR(harness_binary_line, want);
        HARNESS_DONE_SERVER(&s);
    }
    /* every interface: lines until the join line of a client that comes after the banner */
    CHECK_INT(harness_use_binary(&s, any), 0);
    harness_tagged(a, sizeof a, "banner");
    CHECK_INT(harness_join(&c, a), 101);
    CHECK(harness_wait_users(&c, a));
    snprintf(want, sizeof want, "新客户端连接：%s", a);
    snprintf(line, sizeof line, "%s", harness_binary_line);
    deadline = wsc_now_ms() + harness_wait_ms;
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
    } while (harness_read_line(s.pipe_fd, line, sizeof line, deadline) >= 0 && strcmp(line, want) != 0);
    CHECK(lines >= 1);
    CHECKF(last_local, "the banner does not end with localhost");
    harness_leave(&c);
    HARNESS_DONE_SERVER(&s);
}

/* A -t that is not an IP address would never match a peer: it is refused, not ignored. */
static void test_binary_refuses_bad_proxy_address(void) {
    static const char *const bad[] = {"-t", "notanip", NULL};
    harness_server s;
    int status = -1;
    harness_binary_stderr_to_pipe = 1;
    harness_binary_line[0] = '\0';
    if (harness_start_binary(&s, bad) == 0) {
        CHECKF(0, "started anyway: '%s'", harness_binary_line);
        harness_stop_server(&s);
    } else {
        CHECKF(strstr(harness_binary_line, "-t needs the proxy's IPv4 or IPv6 address") && strstr(harness_binary_line, "'notanip'"),
               "message: '%s'", harness_binary_line);
        kill(s.pid, SIGKILL); /* only matters if it hangs instead of exiting */
        waitpid(s.pid, &status, 0);
        close(s.pipe_fd);
        CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 2, "exit status %d, not 2", status);
    }
    harness_binary_stderr_to_pipe = 0;
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
    harness_server s;
    wsc ca, cb, cx;
    char a[64], b[64], banned[64], want[256], text[128], *got;
    memset(&cfg, 0, sizeof cfg);
    cfg.on_join = veto_join, cfg.on_message = veto_message, cfg.on_leave = announce_leave;
    CHECK_INT(harness_use_library(&s, &cfg), 0);
    harness_tagged(a, sizeof a, "alice"), harness_tagged(b, sizeof b, "bob"), harness_tagged(banned, sizeof banned, "banned");
    CHECK_INT(harness_join(&ca, a), 101);
    CHECK(harness_wait_users(&ca, a));
    CHECK_INT(harness_join(&cx, banned), 101);
    harness_expect_close(&cx, 1008, "username refused");
    wsc_close(&cx);
    CHECK_INT(harness_join(&cb, b), 101);
    snprintf(text, sizeof text, "\"%s\"", b);
    harness_chat_json(want, sizeof want, "server", text); /* from on_join, before bob is in */
    got = harness_next_chat(&ca, harness_wait_ms);
    CHECK_STR(got, want);
    free(got);
    harness_say(&cb, "\"drop this\"");
    harness_say(&cb, "\"keep this\"");
    HARNESS_EXPECT_CHAT(&ca, b, "\"keep this\"");
    harness_leave(&cb);
    snprintf(text, sizeof text, "\"bye %s\"", b);
    HARNESS_EXPECT_CHAT(&ca, "server", text);
    harness_leave(&ca);
    HARNESS_DONE_SERVER(&s);
}

static void test_limits_message_size_and_clients(void) {
    chat_config cfg;
    harness_server s;
    wsc c1, c2, c3, h;
    char a[64], b[64], big[1100], *body = NULL;
    memset(&cfg, 0, sizeof cfg);
    cfg.max_message = 1000, cfg.max_clients = 2;
    CHECK_INT(harness_use_library(&s, &cfg), 0);
    harness_tagged(a, sizeof a, "one"), harness_tagged(b, sizeof b, "two");
    CHECK_INT(harness_join(&c1, a), 101);
    CHECK_INT(harness_join(&c2, b), 101);
    CHECK_INT(harness_join(&c3, "three"), 101); /* full: a browser learns it from the close */
    harness_expect_close(&c3, 1013, "room is full");
    wsc_close(&c3);
    CHECK_INT(wsc_http(harness_host, harness_port, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", &h, &body, NULL), 200);
    CHECK_STR(body, "hello\n"); /* pages are still served */
    free(body);
    wsc_close(&h);
    memset(big, 'x', sizeof big);
    wsc_send_frame(&c1, 1, 1, big, 1001);
    harness_expect_close(&c1, 1009, NULL);
    wsc_close(&c1);
    wsc_send_frame(&c2, 1, 1, big, 1000); /* at the limit: fine (and ignored: not JSON) */
    harness_say(&c2, "\"ok\"");
    body = harness_next_chat(&c2, harness_wait_ms);
    CHECK(body && strstr(body, "\"ok\""));
    free(body);
    harness_leave(&c2);
    HARNESS_DONE_SERVER(&s);
}

/* A burst of joins: every client's last list is complete and the same, and nobody gets one
   list per join (the lists are latest-state, not a queue). */
static void test_join_burst_coalesces_user_lists(void) {
    enum { N = CHAT_MAX_CLIENTS < 40 ? CHAT_MAX_CLIENTS : 40 }; /* a small-board build has fewer */
    chat_config cfg;
    harness_server s;
    static wsc c[N];
    char names[N][32], want[N * 32 + 1] = "", req[512], enc[128];
    int i, most_lists = 0, complete = 0;
    memset(&cfg, 0, sizeof cfg);
    CHECK_INT(harness_use_library(&s, &cfg), 0);
    for (i = 0; i < N; i++) { /* all handshakes go out before any response is read */
        snprintf(names[i], sizeof names[i], "u%02d-%s", i, harness_tag);
        harness_url_encode(names[i], enc);
        CHECK_INT(wsc_open_tcp(&c[i], harness_host, harness_port), 0);
        snprintf(req, sizeof req,
                 "GET /start_web_socket?username=%s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                 "Sec-WebSocket-Version: 13\r\n\r\n", enc);
        wsc_send_all(c[i].fd, req, strlen(req));
    }
    for (i = 0; i < N; i++) CHECK_INT(wsc_read_head(&c[i], harness_wait_ms), 101);
    for (i = 0; i < N; i++) {
        char last[N * 32 + 1] = "", ours[N * 32 + 1];
        int lists = 0;
        wsc_msg m;
        /* lists until one names all N; the join order is the server's, so compare as a set */
        while (wsc_recv(&c[i], &m, harness_wait_ms) == WSC_TEXT) {
            int n = 1;
            const char *p;
            if (harness_our_users(m.data, ours, sizeof ours)) lists++, strcpy(last, ours);
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
    HARNESS_DONE_SERVER(&s);
}

static void test_ping_and_idle_close(void) {
    chat_config cfg;
    harness_server s;
    wsc quiet, lively;
    char a[64], b[64], *got;
    int pinged = 0, close_code = 0, eof = 0, lively_events = 0;
    long long deadline;
    memset(&cfg, 0, sizeof cfg);
    cfg.ping_interval_ms = 300;
    CHECK_INT(harness_use_library(&s, &cfg), 0);
    harness_tagged(a, sizeof a, "quiet"), harness_tagged(b, sizeof b, "lively");
    CHECK_INT(harness_join(&quiet, a), 101);
    CHECK_INT(harness_join(&lively, b), 101);
    /* The quiet client reads but never answers: a ping, then close 1001, then EOF. The lively
       one answers every ping (wsc_recv does) and must still be there afterwards. */
    deadline = wsc_now_ms() + 4 * harness_wait_ms;
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
    harness_say(&lively, "\"alive\"");
    got = harness_next_chat(&lively, harness_wait_ms);
    CHECK(got && strstr(got, "alive"));
    free(got);
    harness_leave(&lively);
    HARNESS_DONE_SERVER(&s);
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
    if (getenv("CHAT_TEST_SLOW")) harness_wait_ms *= atoi(getenv("CHAT_TEST_SLOW")) > 0 ? atoi(getenv("CHAT_TEST_SLOW")) : 1;
    snprintf(harness_tag, sizeof harness_tag, "%04x", (unsigned)(wsc_now_ms() ^ getpid()) & 0xFFFF);
}

static void integration_tests(void) {
    static const char *const quiet[] = {"-q", NULL};
    harness_server bin;
    make_tag();
    RUN(test_binary_embed_block_is_current);
    if (harness_start_binary(&bin, quiet) != 0) {
        printf("FAIL cannot start %s/chat (run 'make' first)\n", test_root);
        test_failed++;
        return;
    }
    harness_port = bin.port;
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
        int status = harness_stop_server(&bin);
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
    harness_host = host;
    harness_port = atoi(colon + 1);
    make_tag();
    contract_tests();
}
