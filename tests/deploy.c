/* What a deployment needs: the origin policy, history for newcomers, the counters at /stats,
   broadcasting and stopping from another thread, a graceful shutdown that flushes, and
   X-Forwarded-For believed only from the trusted proxy. */
#include <pthread.h>

static int log_fd = -1; /* in a forked library server: where log lines go (the parent reads) */

static void log_to_parent(void *user, int level, const char *line) {
    char buf[600];
    (void)user, (void)level;
    snprintf(buf, sizeof buf, "log %s\n", line);
    if (write(log_fd, buf, strlen(buf)) < 0) {}
}

static int go_pipe[2] = {-1, -1}; /* the parent says "go" to a thread in the child */

/* Waits for a log line containing `needle` from a library server; 1 when seen. */
static int wait_log(harness_server *s, const char *needle) {
    long long deadline = wsc_now_ms() + harness_wait_ms;
    char line[700];
    while (harness_read_line(s->pipe_fd, line, sizeof line, deadline) >= 0)
        if (strncmp(line, "log ", 4) == 0 && strstr(line, needle)) return 1;
    return 0;
}

static int join_with_headers(wsc *c, const char *name, const char *headers) {
    char target[512], enc[300];
    harness_url_encode(name, enc);
    snprintf(target, sizeof target, "/start_web_socket?username=%s", enc);
    return wsc_connect_ex(c, harness_host, harness_port, target, headers);
}

static void test_deploy_origin_policy(void) {
    static const char *const allowed[] = {"https://good.example", NULL};
    chat_config cfg;
    harness_server s;
    wsc c;
    char same[128], name[64];
    int pass;
    for (pass = 0; pass < 2; pass++) {
        memset(&cfg, 0, sizeof cfg);
        if (pass) cfg.origins = allowed;
        CHECK_INT(harness_use_library(&s, &cfg), 0);
        harness_tagged(name, sizeof name, "origin");
        snprintf(same, sizeof same, "Origin: http://%s:%d\r\n", harness_host, harness_port);
        CHECKF(join_with_headers(&c, name, same) == 101, "same origin refused (pass %d)", pass);
        harness_leave(&c);
        CHECKF(join_with_headers(&c, name, NULL) == 101, "no Origin refused (pass %d)", pass);
        harness_leave(&c);
        CHECKF(join_with_headers(&c, name, "Origin: http://evil.example\r\n") == 403, "cross-site allowed (pass %d)", pass);
        wsc_close(&c);
        CHECKF(join_with_headers(&c, name, "Origin: null\r\n") == 403, "Origin null allowed (pass %d)", pass);
        wsc_close(&c);
        /* a look-alike: the Host's name with another port is another origin */
        snprintf(same, sizeof same, "Origin: http://%s:%d\r\n", harness_host, harness_port + 1);
        CHECKF(join_with_headers(&c, name, same) == 403, "another port allowed (pass %d)", pass);
        wsc_close(&c);
        c.status = join_with_headers(&c, name, "Origin: HTTPS://GOOD.example\r\n");
        CHECKF(c.status == (pass ? 101 : 403), "allow-listed origin: %d (pass %d)", c.status, pass);
        if (c.status == 101) harness_leave(&c);
        else wsc_close(&c);
        HARNESS_DONE_SERVER(&s);
    }
}

static void test_deploy_history_for_newcomers(void) {
    chat_config cfg;
    harness_server s;
    wsc a, b;
    char na[64], nb[64], text[64], want[256];
    int i;
    memset(&cfg, 0, sizeof cfg);
    cfg.history = 3;
    CHECK_INT(harness_use_library(&s, &cfg), 0);
    harness_tagged(na, sizeof na, "early"), harness_tagged(nb, sizeof nb, "late");
    CHECK_INT(harness_join(&a, na), 101);
    CHECK(harness_wait_users(&a, na));
    for (i = 1; i <= 5; i++) {
        snprintf(text, sizeof text, "\"m%d\"", i);
        harness_say(&a, text);
        free(harness_next_chat(&a, harness_wait_ms));
    }
    CHECK_INT(harness_join(&b, nb), 101);
    for (i = 3; i <= 5; i++) { /* the last three, oldest first, before anything else */
        wsc_msg m;
        snprintf(text, sizeof text, "\"m%d\"", i);
        harness_chat_json(want, sizeof want, na, text);
        CHECK_INT(wsc_recv(&b, &m, harness_wait_ms), WSC_TEXT);
        CHECKF(m.data && strcmp(m.data, want) == 0, "history item %d: %s", i, m.data ? m.data : "(none)");
        wsc_msg_free(&m);
    }
    harness_leave(&b), harness_leave(&a);
    CHECK_INT(harness_stop_server(&s), 0);

    /* disabled: a newcomer's first message is the user list */
    cfg.history = -1;
    CHECK_INT(harness_use_library(&s, &cfg), 0);
    CHECK_INT(harness_join(&a, na), 101);
    CHECK(harness_wait_users(&a, na));
    harness_say(&a, "\"not kept\"");
    free(harness_next_chat(&a, harness_wait_ms));
    CHECK_INT(harness_join(&b, nb), 101);
    {
        wsc_msg m;
        CHECK_INT(wsc_recv(&b, &m, harness_wait_ms), WSC_TEXT);
        CHECKF(m.data && strstr(m.data, "update-users"), "without history, got %s", m.data ? m.data : "(none)");
        wsc_msg_free(&m);
    }
    harness_leave(&b), harness_leave(&a);
    HARNESS_DONE_SERVER(&s);
}

/* Big messages: a newcomer gets only as many of the newest as fit in half its backlog. */
static void test_deploy_history_bounded_by_backlog(void) {
    enum { SIZE = 3000 };
    chat_config cfg;
    harness_server s;
    wsc a, b;
    char na[64], nb[64];
    static char text[SIZE + 8];
    int i, history = 0;
    wsc_msg m;
    memset(&cfg, 0, sizeof cfg);
    cfg.history = 5, cfg.max_backlog = 10000;
    CHECK_INT(harness_use_library(&s, &cfg), 0);
    harness_tagged(na, sizeof na, "big"), harness_tagged(nb, sizeof nb, "newcomer");
    CHECK_INT(harness_join(&a, na), 101);
    CHECK(harness_wait_users(&a, na));
    for (i = 0; i < 5; i++) {
        harness_quoted_run(text, SIZE, (char)('a' + i));
        harness_say(&a, text);
        free(harness_next_chat(&a, harness_wait_ms));
    }
    CHECK_INT(harness_join(&b, nb), 101);
    while (wsc_recv(&b, &m, harness_wait_ms) == WSC_TEXT && !strstr(m.data, "update-users")) {
        CHECKF(history > 0 || strchr(m.data, 'e'), "the replay does not start with the newest that fit");
        history++;
        wsc_msg_free(&m);
    }
    wsc_msg_free(&m);
    CHECKF(history == 1, "%d big messages replayed into a 10000-byte backlog", history);
    harness_leave(&b), harness_leave(&a);
    HARNESS_DONE_SERVER(&s);
}

static long long json_number(const char *json, const char *key) {
    char pattern[64];
    const char *p;
    snprintf(pattern, sizeof pattern, "\"%s\":", key);
    p = strstr(json, pattern);
    return p ? atoll(p + strlen(pattern)) : -1;
}

static void test_deploy_stats_endpoint(void) {
    chat_config cfg;
    harness_server s;
    wsc a, h, bad;
    char na[64], type[64], *body = NULL;
    memset(&cfg, 0, sizeof cfg);
    cfg.stats_path = "/stats";
    CHECK_INT(harness_use_library(&s, &cfg), 0);
    harness_tagged(na, sizeof na, "counted");
    CHECK_INT(harness_join(&a, na), 101);
    CHECK(harness_wait_users(&a, na));
    harness_say(&a, "\"one\"");
    free(harness_next_chat(&a, harness_wait_ms));
    CHECK_INT(harness_join(&bad, ""), 101); /* a refused name */
    harness_expect_close(&bad, 1008, NULL);
    wsc_close(&bad);
    CHECK_INT(join_with_headers(&bad, "x", "Origin: http://evil.example\r\n"), 403);
    wsc_close(&bad);
    CHECK_INT(wsc_http(harness_host, harness_port, "GET /stats HTTP/1.1\r\nHost: x\r\n\r\n", &h, &body, NULL), 200);
    CHECK(wsc_header(&h, "content-type", type, sizeof type) && strcmp(type, "application/json") == 0);
    CHECKF(body && chat_json_validate(body, strlen(body)) == 0, "not JSON: %s", body ? body : "");
    CHECK_INT(json_number(body, "clients"), 1);
    CHECK_INT(json_number(body, "messages"), 1);
    CHECK_INT(json_number(body, "name"), 1);
    CHECK_INT(json_number(body, "origin"), 1);
    CHECK(json_number(body, "accepted") >= 4);
    CHECK(json_number(body, "bytes_in") > 0 && json_number(body, "bytes_out") > 0);
    CHECK(json_number(body, "uptime_ms") >= 0);
    free(body);
    wsc_close(&h);
    harness_leave(&a);
    CHECK_INT(harness_stop_server(&s), 0);
    memset(&cfg, 0, sizeof cfg); /* off unless enabled */
    CHECK_INT(harness_use_library(&s, &cfg), 0);
    CHECK_INT(wsc_http(harness_host, harness_port, "GET /stats HTTP/1.1\r\nHost: x\r\n\r\n", &h, NULL, NULL), 404);
    wsc_close(&h);
    HARNESS_DONE_SERVER(&s);
}

enum { POSTS = 200 };

static void *poster(void *arg) {
    chat_server *srv = (chat_server *)arg;
    char go, text[32];
    int i, tries;
    if (read(go_pipe[0], &go, 1) != 1) return NULL;
    for (i = 0; i < POSTS; i++) {
        snprintf(text, sizeof text, "post %d", i);
        for (tries = 0; tries < 100000; tries++) /* EBUSY: the loop has not caught up yet */
            if (chat_server_post(srv, "thread", text, strlen(text)) != CHAT_EBUSY) break;
    }
    chat_server_stop(srv);
    return NULL;
}

static void start_poster_thread(void) {
    pthread_t t;
    sigset_t all, old;
    sigfillset(&all); /* signals go to the loop's thread, which knows when the server is freed */
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_create(&t, NULL, poster, harness_child_server);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_detach(t);
}

/* Another thread broadcasts through chat_server_post and then stops the loop. */
static void test_deploy_post_and_stop_from_another_thread(void) {
    chat_config cfg;
    harness_server s;
    wsc a;
    char na[64], text[64], want[256];
    int i, ok = 1;
    memset(&cfg, 0, sizeof cfg);
    CHECK_INT(pipe(go_pipe), 0);
    harness_child_setup = start_poster_thread;
    CHECK_INT(harness_use_library(&s, &cfg), 0);
    harness_child_setup = NULL;
    close(go_pipe[0]);
    harness_tagged(na, sizeof na, "listener");
    CHECK_INT(harness_join(&a, na), 101);
    CHECK(harness_wait_users(&a, na));
    CHECK_INT(write(go_pipe[1], "g", 1), 1);
    for (i = 0; i < POSTS && ok; i++) {
        char *got = harness_next_chat(&a, harness_wait_ms);
        snprintf(text, sizeof text, "\"post %d\"", i);
        harness_chat_json(want, sizeof want, "thread", text);
        ok = got && strcmp(got, want) == 0;
        free(got);
    }
    CHECKF(ok, "post %d did not arrive in order", i - 1);
    harness_expect_close(&a, 1001, NULL); /* the thread stopped the server */
    wsc_close(&a);
    close(go_pipe[1]);
    HARNESS_DONE_SERVER(&s);
}

/* On stop, output already queued for a client that reads slowly still reaches it, then 1001. */
static void test_deploy_shutdown_flushes_queued_output(void) {
    enum { N = 40, SIZE = 20000 };
    chat_config cfg;
    harness_server s;
    wsc sender, slow;
    char na[64], nb[64], both[130];
    static char text[SIZE + 8], want[SIZE + 200];
    int i, ok = 1;
    memset(&cfg, 0, sizeof cfg);
    cfg.close_timeout_ms = 4000, cfg.max_rate = -1, cfg.max_message = 64 * 1024, cfg.max_backlog = 1024 * 1024;
    CHECK_INT(harness_use_library(&s, &cfg), 0);
    harness_tagged(na, sizeof na, "sender"), harness_tagged(nb, sizeof nb, "slow");
    CHECK_INT(join_small_window(&slow, nb, 4096), 101);
    CHECK_INT(harness_join(&sender, na), 101);
    snprintf(both, sizeof both, "%s|%s", nb, na); /* the slow reader joined first */
    CHECK(harness_wait_users(&sender, both));
    for (i = 0; i < N; i++) {
        harness_quoted_run(text, SIZE, (char)('A' + i % 26));
        harness_say(&sender, text);
        free(harness_next_chat(&sender, harness_wait_ms));
    }
    kill(s.pid, SIGTERM); /* ~800 KB are still queued for the slow reader */
    for (i = 0; i < N && ok; i++) {
        char *got = harness_next_chat(&slow, harness_wait_ms);
        harness_quoted_run(text, SIZE, (char)('A' + i % 26));
        harness_chat_json(want, sizeof want, na, text);
        ok = got && strcmp(got, want) == 0;
        free(got);
    }
    CHECKF(ok, "queued message %d was lost in the shutdown", i - 1);
    harness_expect_close(&slow, 1001, NULL);
    wsc_close(&slow);
    wsc_close(&sender);
    HARNESS_DONE_SERVER(&s);
}

static void log_setup(void) { log_fd = harness_child_pipe_fd; }

static void test_deploy_forwarded_for_only_from_trusted_proxy(void) {
    chat_config cfg;
    harness_server s;
    wsc a;
    char na[64], want[160];
    int pass;
    for (pass = 0; pass < 2; pass++) {
        memset(&cfg, 0, sizeof cfg);
        cfg.on_log = log_to_parent, cfg.log_level = CHAT_LOG_DEBUG;
        if (pass) cfg.trusted_proxy = "127.0.0.1";
        harness_child_setup = log_setup;
        CHECK_INT(harness_use_library(&s, &cfg), 0);
        harness_child_setup = NULL;
        harness_tagged(na, sizeof na, "proxied");
        CHECK_INT(join_with_headers(&a, na, "X-Forwarded-For: 203.0.113.7, 198.51.100.1\r\n"), 101);
        snprintf(want, sizeof want, "join: %s from %s", na, pass ? "198.51.100.1" : "127.0.0.1");
        CHECKF(wait_log(&s, want), "no log line '%s'", want);
        harness_leave(&a);
        /* a forged header cannot put anything but an address into the log: what is not an
           address is not believed, and the proxy's own address stands */
        CHECK_INT(join_with_headers(&a, "", "X-Forwarded-For: 1.2.3.4<script>evil\r\n"), 101);
        snprintf(want, sizeof want, "refused a name from %s:", "127.0.0.1");
        CHECKF(wait_log(&s, want), "no log line '%s'", want);
        harness_expect_close(&a, 1008, NULL);
        wsc_close(&a);
        HARNESS_DONE_SERVER(&s);
    }
}

/* The example's log lines never block its loop. With stdout and stderr a pipe that nobody reads
   any more (64 KiB fill up after a few hundred joins), 1,500 sequential join + leave cycles with
   60-byte names must all still get in; lines are dropped instead, and once the pipe is read
   again the next line of each stream says how many were lost. */
static void test_deploy_binary_log_never_blocks(void) {
    static const char *const verbose[] = {"-v", NULL};
    enum { CYCLES = 1500 };
    harness_server s;
    char name[64], line[700], want_out[128], want_err[128];
    int i, stuck = -1, seen_out = 0, seen_err = 0, dropped_out = 0, dropped_err = 0;
    long long deadline;
    harness_binary_stderr_to_pipe = 1;
    CHECK_INT(harness_use_binary(&s, verbose), 0);
    harness_binary_stderr_to_pipe = 0;
    for (i = 0; i < CYCLES && stuck < 0; i++) {
        wsc c;
        snprintf(name, sizeof name, "%.4s-%055d", harness_tag, i); /* 60 bytes */
        if (harness_join(&c, name) != 101 || !harness_wait_users(&c, name)) {
            stuck = i;
            wsc_close(&c);
        } else
            harness_leave(&c);
    }
    CHECKF(stuck < 0, "join %d of %d did not get in: the server is blocked writing a log line", stuck + 1, CYCLES);
    /* read the pipe again: what it holds now, then the lines of one more join */
    harness_tagged(name, sizeof name, "after");
    snprintf(want_out, sizeof want_out, "新客户端连接：%s", name);
    snprintf(want_err, sizeof want_err, "chat: debug: join: %s from", name);
    while (harness_read_line(s.pipe_fd, line, sizeof line, wsc_now_ms() + 50) >= 0) {
        if (strstr(line, "lines dropped (stdout was full)")) dropped_out = 1;
        if (strstr(line, "lines dropped (stderr was full)") || strstr(line, "log lines dropped")) dropped_err = 1;
    }
    if (stuck < 0) {
        wsc c;
        CHECK_INT(harness_join(&c, name), 101);
        CHECK(harness_wait_users(&c, name));
        harness_leave(&c);
        deadline = wsc_now_ms() + harness_wait_ms;
        while ((!seen_out || !(seen_err || dropped_err)) && harness_read_line(s.pipe_fd, line, sizeof line, deadline) >= 0) {
            if (strstr(line, "lines dropped (stdout was full)")) dropped_out = 1;
            /* chat.h's own rate limit may have dropped them before stderr filled: that counts too */
            if (strstr(line, "lines dropped (stderr was full)") || strstr(line, "log lines dropped")) dropped_err = 1;
            if (strcmp(line, want_out) == 0) seen_out = 1;
            if (strncmp(line, want_err, strlen(want_err)) == 0) seen_err = 1;
        }
        /* stderr's join line may be one that chat.h's log rate limit dropped (and said so) */
        CHECKF(seen_out && (seen_err || dropped_err), "after the pipe was read again: join line on stdout %s, on stderr %s",
               seen_out ? "seen" : "missing", seen_err ? "seen" : "missing");
        CHECKF(dropped_out && dropped_err, "no count of dropped lines for %s%s", dropped_out ? "" : "stdout ",
               dropped_err ? "" : "stderr");
    }
    HARNESS_DONE_SERVER(&s);
}

/* The example's -t takes any spelling of the proxy's address: here the IPv4-mapped form of
   127.0.0.1, which the server compares as plain 127.0.0.1, so X-Forwarded-For is believed. */
static void test_deploy_binary_proxy_address_any_spelling(void) {
    static const char *const args[] = {"-v", "-t", "::ffff:127.0.0.1", NULL};
    harness_server s;
    char name[64], want[160], line[700];
    int seen = 0;
    long long deadline;
    wsc a;
    harness_binary_stderr_to_pipe = 1;
    CHECK_INT(harness_use_binary(&s, args), 0);
    harness_binary_stderr_to_pipe = 0;
    harness_tagged(name, sizeof name, "mapped");
    CHECK_INT(join_with_headers(&a, name, "X-Forwarded-For: 203.0.113.9\r\n"), 101);
    snprintf(want, sizeof want, "chat: debug: join: %s from 203.0.113.9", name);
    deadline = wsc_now_ms() + harness_wait_ms;
    while (!seen && harness_read_line(s.pipe_fd, line, sizeof line, deadline) >= 0)
        seen = strncmp(line, want, strlen(want)) == 0;
    CHECKF(seen, "no log line '%s'", want);
    harness_leave(&a);
    HARNESS_DONE_SERVER(&s);
}

static void deploy_tests(void) {
    RUN(test_deploy_origin_policy);
    RUN(test_deploy_history_for_newcomers);
    RUN(test_deploy_history_bounded_by_backlog);
    RUN(test_deploy_stats_endpoint);
    RUN(test_deploy_post_and_stop_from_another_thread);
    RUN(test_deploy_shutdown_flushes_queued_output);
    RUN(test_deploy_forwarded_for_only_from_trusted_proxy);
    RUN(test_deploy_binary_log_never_blocks);
    RUN(test_deploy_binary_proxy_address_any_spelling);
}
