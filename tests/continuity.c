/* Nothing lost, nothing doubled (issue 12): message ids and times, cids and their repeats,
   replays flagged, since=ID, resume=TOKEN taking a name over from a connection that still looks
   alive. Against forked library servers over loopback, with the extension visible
   (wsc_keep_welcome, wsc_keep_extension). The history file (-H) against the example binary:
   kill -9 and a restart, a torn tail, garbage, compaction. */

#include <sys/stat.h>

/* One message as the tests see it: the members they look at, decoded. */
typedef struct cont_msg {
    char event[32];
    char username[80];
    char message[256];
    char cid[80];
    char resume[40];
    unsigned long long id, time;
    int has_id, has_time, has_cid, replay, missing;
    char raw[1024];
} cont_msg;

static void cont_string(const char *s, size_t n, const char *key, char *out, size_t cap, int *has) {
    chat_span v;
    chat_buf b;
    out[0] = '\0';
    if (has) *has = 0;
    if (chat_json_get(s, n, key, &v) != 1 || v.p[0] != '"') return;
    memset(&b, 0, sizeof b);
    if (chat_json_string(v, &b) == 0 && b.len < cap) {
        memcpy(out, b.data, b.len), out[b.len] = '\0';
        if (has) *has = 1;
    }
    chat_buf_free(&b);
}

static unsigned long long cont_number(const char *s, size_t n, const char *key, int *has) {
    chat_span v;
    unsigned long long x = 0;
    size_t i;
    *has = chat_json_get(s, n, key, &v) == 1 && v.p[0] >= '0' && v.p[0] <= '9';
    for (i = 0; *has && i < v.n && v.p[i] >= '0' && v.p[i] <= '9'; i++) x = x * 10 + (unsigned)(v.p[i] - '0');
    return x;
}

/* The next text message that is not update-users; 0 on a timeout, a close or the end. */
static int cont_next(wsc *c, cont_msg *out, int timeout_ms) {
    long long deadline = wsc_now_ms() + timeout_ms;
    memset(out, 0, sizeof *out);
    for (;;) {
        wsc_msg m;
        long long left = deadline - wsc_now_ms();
        int t = wsc_recv(c, &m, left < 0 ? 0 : (int)left), has;
        chat_span v;
        if (t != WSC_TEXT) {
            wsc_msg_free(&m);
            return 0;
        }
        cont_string(m.data, m.len, "event", out->event, sizeof out->event, NULL);
        if (strcmp(out->event, "update-users") == 0) {
            wsc_msg_free(&m);
            continue;
        }
        snprintf(out->raw, sizeof out->raw, "%s", m.data);
        cont_string(m.data, m.len, "username", out->username, sizeof out->username, NULL);
        cont_string(m.data, m.len, "message", out->message, sizeof out->message, NULL);
        cont_string(m.data, m.len, "cid", out->cid, sizeof out->cid, &out->has_cid);
        cont_string(m.data, m.len, "resume", out->resume, sizeof out->resume, NULL);
        out->id = cont_number(m.data, m.len, "id", &out->has_id);
        out->time = cont_number(m.data, m.len, "time", &out->has_time);
        out->replay = chat_json_get(m.data, m.len, "replay", &v) == 1 && v.n == 4 && memcmp(v.p, "true", 4) == 0;
        out->missing = chat_json_get(m.data, m.len, "missing", &v) == 1 && v.n == 4 && memcmp(v.p, "true", 4) == 0;
        (void)has;
        wsc_msg_free(&m);
        return 1;
    }
}

/* Joins with extra query parameters ("&since=5"); on 101 reads the welcome into *welcome. */
static int cont_join(wsc *c, const char *name, const char *extra, cont_msg *welcome) {
    char target[512], enc[256];
    int status;
    harness_url_encode(name, enc);
    snprintf(target, sizeof target, "/start_web_socket?username=%s%s", enc, extra ? extra : "");
    status = wsc_connect(c, harness_host, harness_port, target);
    if (status == 101 && welcome && (!cont_next(c, welcome, harness_wait_ms) || strcmp(welcome->event, "welcome") != 0))
        return -2;
    return status;
}

static void cont_begin(void) { wsc_keep_welcome = 1, wsc_keep_extension = 1; }
static void cont_end(void) { wsc_keep_welcome = 0, wsc_keep_extension = 0; }

/* The next live message (replays skipped). */
static int cont_next_live(wsc *c, cont_msg *out, int timeout_ms) {
    int i;
    for (i = 0; i < 100; i++)
        if (!cont_next(c, out, timeout_ms) || !out->replay) return !out->replay && out->event[0];
    return 0;
}

/* "text" as a send-message event, with a cid unless NULL. */
static int cont_say(wsc *c, const char *text, const char *cid) {
    char event[512];
    if (cid) snprintf(event, sizeof event, "{\"event\":\"send-message\",\"message\":\"%s\",\"cid\":\"%s\"}", text, cid);
    else snprintf(event, sizeof event, "{\"event\":\"send-message\",\"message\":\"%s\"}", text);
    return wsc_send_text(c, event);
}

/* After a restart: a joiner's welcome names `last` as the newest id, and the next message
   said gets last + 1. */
static void cont_expect_ids_go_on(wsc *c, const char *name, unsigned long long last) {
    cont_msg w, m;
    CHECK_INT(cont_join(c, name, NULL, &w), 101);
    CHECK_INT(w.id, last);
    cont_say(c, "next", NULL);
    CHECK(cont_next_live(c, &m, harness_wait_ms) && m.id == last + 1);
}

/* A text of any length (no quotes or backslashes in it) as a send-message event. */
static int cont_say_long(wsc *c, const char *text) {
    size_t n = strlen(text);
    char *event = (char *)malloc(n + 64);
    int r;
    if (!event) return -1;
    snprintf(event, n + 64, "{\"event\":\"send-message\",\"message\":\"%s\"}", text);
    r = wsc_send_text(c, event);
    free(event);
    return r;
}

static unsigned long long cont_wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (unsigned long long)ts.tv_sec * 1000u + (unsigned long long)ts.tv_nsec / 1000000u;
}

/* Ids go up by one, times are the server's wall clock, the cid comes back; a replay is the same
   message with "replay":true; the welcome holds the newest id. */
static void test_continuity_ids_times_cids_and_replays(void) {
    chat_config cfg;
    harness_server s;
    wsc a, b;
    cont_msg w, m1, m2, m3, r1, wb;
    char na[64], nb[64];
    unsigned long long before = cont_wall_ms(), after;
    memset(&cfg, 0, sizeof cfg);
    CHECK_INT(harness_use_library(&s, &cfg), 0);
    cont_begin();
    harness_tagged(na, sizeof na, "ids");
    harness_tagged(nb, sizeof nb, "late");
    CHECK_INT(cont_join(&a, na, NULL, &w), 101);
    CHECK(w.has_id && strlen(w.resume) == 32);
    cont_say(&a, "one", NULL);
    cont_say(&a, "two", "my-cid-\\u00e9");
    cont_say(&a, "three", NULL);
    CHECK(cont_next(&a, &m1, harness_wait_ms) && cont_next(&a, &m2, harness_wait_ms) && cont_next(&a, &m3, harness_wait_ms));
    after = cont_wall_ms();
    CHECK(m1.has_id && m1.has_time && !m1.replay && !m1.has_cid);
    CHECKF(m1.id == w.id + 1 && m2.id == w.id + 2 && m3.id == w.id + 3, "ids %llu %llu %llu after %llu", m1.id, m2.id,
           m3.id, w.id);
    CHECKF(m1.time >= before && m3.time <= after && m1.time <= m2.time && m2.time <= m3.time, "times %llu..%llu in %llu..%llu",
           m1.time, m3.time, before, after);
    CHECK(m2.has_cid && strcmp(m2.cid, "my-cid-\xc3\xa9") == 0);
    CHECK_STR(m2.message, "two");
    /* a newcomer's history: the same messages, flagged */
    CHECK_INT(cont_join(&b, nb, NULL, &wb), 101);
    CHECK_INT(wb.id, m3.id);
    CHECK(!wb.missing); /* a newcomer asked for nothing in particular */
    CHECK(cont_next(&b, &r1, harness_wait_ms));
    CHECK(r1.replay && r1.id == m1.id && r1.time == m1.time && strcmp(r1.message, "one") == 0);
    CHECK(cont_next(&b, &r1, harness_wait_ms));
    CHECK(r1.replay && r1.id == m2.id && strcmp(r1.cid, m2.cid) == 0);
    CHECK(cont_next(&b, &r1, harness_wait_ms));
    CHECK(r1.replay && r1.id == m3.id);
    { /* the replay is the live message plus "replay":true, byte for byte */
        size_t n = strlen(m3.raw);
        CHECK(strncmp(r1.raw, m3.raw, n - 1) == 0 && strcmp(r1.raw + n - 1, ",\"replay\":true}") == 0);
    }
    cont_end();
    harness_leave(&a), harness_leave(&b);
    HARNESS_DONE_SERVER(&s);
}

/* A cid that is not a string of 1 to 64 bytes is no cid: the message still goes out. */
static void test_continuity_bad_cid_is_ignored_not_the_message(void) {
    chat_config cfg;
    harness_server s;
    wsc a;
    cont_msg w, m;
    char na[64], long_cid[80];
    memset(&cfg, 0, sizeof cfg);
    CHECK_INT(harness_use_library(&s, &cfg), 0);
    cont_begin();
    harness_tagged(na, sizeof na, "badcid");
    CHECK_INT(cont_join(&a, na, NULL, &w), 101);
    memset(long_cid, 'c', 65), long_cid[65] = '\0';
    cont_say(&a, "long", long_cid);
    wsc_send_text(&a, "{\"event\":\"send-message\",\"message\":\"number\",\"cid\":7}");
    cont_say(&a, "empty", "");
    memset(long_cid, 'c', 64), long_cid[64] = '\0';
    cont_say(&a, "just fits", long_cid);
    /* lone surrogates name no character (both would read as U+FFFD, the second a "repeat") */
    cont_say(&a, "lone high", "x\\ud800");
    cont_say(&a, "lone low", "x\\udc00");
    cont_say(&a, "a pair", "x\\ud83d\\ude00");
    CHECK(cont_next(&a, &m, harness_wait_ms) && strcmp(m.message, "long") == 0 && !m.has_cid);
    CHECK(cont_next(&a, &m, harness_wait_ms) && strcmp(m.message, "number") == 0 && !m.has_cid);
    CHECK(cont_next(&a, &m, harness_wait_ms) && strcmp(m.message, "empty") == 0 && !m.has_cid);
    CHECK(cont_next(&a, &m, harness_wait_ms) && strcmp(m.message, "just fits") == 0 && strcmp(m.cid, long_cid) == 0);
    CHECK(cont_next(&a, &m, harness_wait_ms) && strcmp(m.message, "lone high") == 0 && !m.has_cid);
    CHECK(cont_next(&a, &m, harness_wait_ms) && strcmp(m.message, "lone low") == 0 && !m.has_cid);
    CHECK(cont_next(&a, &m, harness_wait_ms) && strcmp(m.message, "a pair") == 0 && strcmp(m.cid, "x\xf0\x9f\x98\x80") == 0);
    cont_end();
    harness_leave(&a);
    HARNESS_DONE_SERVER(&s);
}

/* A message sent again with the same cid is not said again: the sender alone gets the original
   back, flagged. Another user's same cid is a message of its own. Past the history, a cid is
   forgotten. */
static void test_continuity_repeated_cid_is_not_said_twice(void) {
    chat_config cfg;
    harness_server s;
    wsc a, b;
    cont_msg w, m, again, other;
    char na[64], nb[64];
    memset(&cfg, 0, sizeof cfg);
    cfg.history = 3;
    CHECK_INT(harness_use_library(&s, &cfg), 0);
    cont_begin();
    harness_tagged(na, sizeof na, "rep-a");
    harness_tagged(nb, sizeof nb, "rep-b");
    CHECK_INT(cont_join(&a, na, NULL, &w), 101);
    CHECK_INT(cont_join(&b, nb, NULL, &w), 101);
    cont_say(&a, "ok", "k1");
    CHECK(cont_next(&a, &m, harness_wait_ms) && m.has_cid && !m.replay);
    cont_say(&a, "ok", "k1"); /* the page never saw it come back, and sends it again */
    CHECK(cont_next(&a, &again, harness_wait_ms));
    CHECK(again.replay && again.id == m.id && again.time == m.time && strcmp(again.cid, "k1") == 0);
    cont_say(&b, "ok", "k1"); /* b's own k1 */
    CHECK(cont_next(&b, &other, harness_wait_ms)); /* b's view: a's first, then its own */
    CHECK(other.id == m.id && !other.replay);
    CHECK(cont_next(&b, &other, harness_wait_ms));
    CHECK(other.id == m.id + 1 && !other.replay && strcmp(other.username, nb) == 0);
    CHECK(cont_next(&a, &other, harness_wait_ms) && other.id == m.id + 1); /* a got no second "ok" of its own */
    cont_say(&a, "x", NULL), cont_say(&a, "y", NULL), cont_say(&a, "z", NULL); /* k1 leaves the history */
    CHECK(cont_next(&a, &other, harness_wait_ms) && cont_next(&a, &other, harness_wait_ms) &&
          cont_next(&a, &other, harness_wait_ms) && other.id == m.id + 4);
    cont_say(&a, "ok", "k1");
    CHECK(cont_next(&a, &other, harness_wait_ms) && other.id == m.id + 5 && !other.replay);
    cont_end();
    harness_leave(&a), harness_leave(&b);
    HARNESS_DONE_SERVER(&s);
}

/* since=ID: exactly what came after ID, flagged, then live; "missing" only when the gap cannot
   be filled (gone from the history, or not an id of this server). */
static void test_continuity_since_replays_exactly_what_came_after(void) {
    chat_config cfg;
    harness_server s;
    wsc a, b;
    cont_msg w, m, first;
    memset(&first, 0, sizeof first);
    char na[64], nb[64], extra[64];
    int i;
    memset(&cfg, 0, sizeof cfg);
    cfg.history = 5;
    CHECK_INT(harness_use_library(&s, &cfg), 0);
    cont_begin();
    harness_tagged(na, sizeof na, "since-a");
    harness_tagged(nb, sizeof nb, "since-b");
    CHECK_INT(cont_join(&a, na, NULL, &w), 101);
    for (i = 0; i < 8; i++) {
        char t[16];
        snprintf(t, sizeof t, "m%d", i);
        cont_say(&a, t, NULL);
        CHECK(cont_next(&a, &m, harness_wait_ms));
        if (i == 0) first = m;
    }
    /* since the 6th (m5): m6, m7 and nothing missing */
    snprintf(extra, sizeof extra, "&since=%llu", first.id + 5);
    CHECK_INT(cont_join(&b, nb, extra, &w), 101);
    CHECK(!w.missing);
    CHECK(cont_next(&b, &m, harness_wait_ms) && m.replay && strcmp(m.message, "m6") == 0);
    CHECK(cont_next(&b, &m, harness_wait_ms) && m.replay && strcmp(m.message, "m7") == 0);
    cont_say(&a, "live", NULL);
    CHECK(cont_next(&b, &m, harness_wait_ms) && !m.replay && strcmp(m.message, "live") == 0);
    harness_leave(&b);
    /* since the newest: nothing */
    snprintf(extra, sizeof extra, "&since=%llu", first.id + 8);
    CHECK_INT(cont_join(&b, nb, extra, &w), 101);
    CHECK(!w.missing && w.id == first.id + 8);
    CHECK(!cont_next(&b, &m, 300)); /* nothing comes */
    harness_leave(&b);
    /* since m0: m1 and m2 are gone (the history holds 5: m4..live) */
    snprintf(extra, sizeof extra, "&since=%llu", first.id);
    CHECK_INT(cont_join(&b, nb, extra, &w), 101);
    CHECK(w.missing);
    CHECK(cont_next(&b, &m, harness_wait_ms) && m.replay && strcmp(m.message, "m4") == 0);
    harness_leave(&b);
    /* since m3: exactly the 5 held, nothing missing */
    snprintf(extra, sizeof extra, "&since=%llu", first.id + 3);
    CHECK_INT(cont_join(&b, nb, extra, &w), 101);
    CHECK(!w.missing);
    CHECK(cont_next(&b, &m, harness_wait_ms) && strcmp(m.message, "m4") == 0);
    harness_leave(&b);
    /* an id this server never gave, or garbage: everything held; "missing" only for the former */
    snprintf(extra, sizeof extra, "&since=%llu", first.id + 1000);
    CHECK_INT(cont_join(&b, nb, extra, &w), 101);
    CHECK(w.missing);
    CHECK(cont_next(&b, &m, harness_wait_ms) && strcmp(m.message, "m4") == 0);
    harness_leave(&b);
    CHECK_INT(cont_join(&b, nb, "&since=12x", &w), 101);
    CHECK(!w.missing);
    CHECK(cont_next(&b, &m, harness_wait_ms) && strcmp(m.message, "m4") == 0);
    harness_leave(&b);
    CHECK_INT(cont_join(&b, nb, "&since=99999999999999999999999", &w), 101); /* past 64 bits */
    CHECK(cont_next(&b, &m, harness_wait_ms) && strcmp(m.message, "m4") == 0);
    cont_end();
    harness_leave(&a), harness_leave(&b);
    HARNESS_DONE_SERVER(&s);
}

/* The acceptance case: a client vanishes without a close or a FIN (its socket stays open and
   silent); `missed` messages go by, "ok" twice among them; it comes back with since and resume
   while its ghost still holds the name: it gets exactly what it missed (at most the history),
   in order, once, with no 1008; the ghost is closed with 4001; the others see no leave or join. */
static void cont_resume_after_vanishing(int missed, int history) {
    chat_config cfg;
    harness_server s;
    wsc a, ghost, back, x;
    cont_msg w, m, last;
    char na[64], nb[64], extra[128];
    long long started;
    int i, got = 0, in_order = 1, expect = missed < history ? missed : history;
    memset(&cfg, 0, sizeof cfg);
    cfg.history = history;
    CHECK_INT(harness_use_library(&s, &cfg), 0);
    cont_begin();
    harness_tagged(na, sizeof na, "talker");
    harness_tagged(nb, sizeof nb, "phone");
    CHECK_INT(cont_join(&a, na, NULL, &w), 101);
    CHECK_INT(cont_join(&ghost, nb, NULL, &w), 101);
    cont_say(&a, "before", NULL);
    CHECK(cont_next(&ghost, &last, harness_wait_ms) && strcmp(last.message, "before") == 0);
    CHECK(cont_next(&a, &m, harness_wait_ms));
    /* the phone is gone: from now on nothing reads or writes its socket */
    for (i = 0; i < missed; i++) {
        char t[16];
        snprintf(t, sizeof t, i == 1 || i == 2 ? "ok" : "m%d", i);
        cont_say(&a, t, NULL);
        CHECK(cont_next(&a, &m, harness_wait_ms));
    }
    /* a wrong token does not take the name */
    CHECK_INT(cont_join(&x, nb, "&resume=0123456789abcdef0123456789abcdef", NULL), 101);
    harness_expect_close(&x, 1008, NULL);
    wsc_close(&x);
    started = wsc_now_ms();
    snprintf(extra, sizeof extra, "&since=%llu&resume=%s", last.id, w.resume);
    CHECK_INT(cont_join(&back, nb, extra, &w), 101);
    CHECK(w.missing == (missed > history));
    for (i = 0; i < expect; i++) {
        unsigned long long want = last.id + (unsigned long long)(missed - expect) + 1 + (unsigned long long)i;
        if (!cont_next(&back, &m, harness_wait_ms)) break;
        got++;
        if (m.id != want || !m.replay) in_order = 0;
    }
    CHECKF(got == expect && in_order, "missed %d, history %d: got %d of %d, in order: %d", missed, history, got, expect,
           in_order);
    CHECKF(wsc_now_ms() - started < 1000, "the resume took %lld ms", wsc_now_ms() - started);
    CHECK(!cont_next(&back, &m, 200)); /* nothing twice */
    { /* the ghost's socket holds everything it was sent, then the 4001 */
        wsc_msg gm;
        int t, n = 0;
        while ((t = wsc_recv(&ghost, &gm, harness_wait_ms)) == WSC_TEXT && n++ < missed + 10) wsc_msg_free(&gm);
        CHECKF(t == WSC_CLOSE && gm.code == 4001, "the ghost got %d (code %d), not a 4001 close", t, gm.code);
        wsc_msg_free(&gm);
        wsc_close(&ghost);
    }
    /* the talker saw no leave or join: its next user list (after a newcomer) lists the phone once */
    harness_tagged(extra, sizeof extra, "newcomer");
    CHECK_INT(cont_join(&x, extra, NULL, NULL), 101);
    {
        char want[400];
        snprintf(want, sizeof want, "%s|%s|%s", na, nb, extra);
        cont_end();
        CHECK(harness_wait_users(&a, want));
        cont_begin();
    }
    CHECK_INT(s.pid > 0, 1);
    cont_say(&back, "I am back", NULL);
    CHECK(cont_next(&a, &m, harness_wait_ms) && strcmp(m.message, "I am back") == 0 && strcmp(m.username, nb) == 0);
    cont_end();
    harness_leave(&a), harness_leave(&back), harness_leave(&x);
    HARNESS_DONE_SERVER(&s);
}

static void test_continuity_resume_after_vanishing_5_messages(void) { cont_resume_after_vanishing(5, 50); }
static void test_continuity_resume_after_vanishing_120_messages(void) { cont_resume_after_vanishing(120, 50); }

/* The talker's view of a resume: no user list that leaves the phone out, nor one with it twice. */
static void test_continuity_resume_shows_no_leave_or_join(void) {
    chat_config cfg;
    harness_server s;
    wsc a, ghost, back;
    cont_msg w;
    char na[64], nb[64], both[130], extra[128];
    wsc_msg m;
    int t, lists = 0;
    memset(&cfg, 0, sizeof cfg);
    CHECK_INT(harness_use_library(&s, &cfg), 0);
    harness_tagged(na, sizeof na, "watch");
    harness_tagged(nb, sizeof nb, "flaky");
    snprintf(both, sizeof both, "%s|%s", na, nb);
    cont_begin();
    CHECK_INT(cont_join(&a, na, NULL, &w), 101);
    CHECK_INT(cont_join(&ghost, nb, NULL, &w), 101);
    cont_end();
    CHECK(harness_wait_users(&a, both));
    snprintf(extra, sizeof extra, "&resume=%s", w.resume);
    cont_begin();
    CHECK_INT(cont_join(&back, nb, extra, &w), 101);
    cont_end();
    CHECK(harness_wait_users(&back, both)); /* the newcomer gets the list, like every joiner */
    harness_say(&back, "\"still here\"");
    /* everything the talker gets until the message: no user list at all */
    while ((t = wsc_recv(&a, &m, harness_wait_ms)) == WSC_TEXT && strstr(m.data, "still here") == NULL) {
        if (strstr(m.data, "update-users")) lists++;
        wsc_msg_free(&m);
    }
    CHECK_INT(t, WSC_TEXT);
    wsc_msg_free(&m);
    CHECK_INT(lists, 0);
    wsc_close(&ghost);
    harness_leave(&a), harness_leave(&back);
    HARNESS_DONE_SERVER(&s);
}

/* A resume needs the token of the connection holding the name now: an old token (of a
   connection replaced since) and a missing one get 1008; a resume for a free name is a join. */
static void test_continuity_resume_token_is_per_session(void) {
    chat_config cfg;
    harness_server s;
    wsc one, two, three, x;
    cont_msg w1, w2, w3;
    char nb[64], extra[128];
    memset(&cfg, 0, sizeof cfg);
    CHECK_INT(harness_use_library(&s, &cfg), 0);
    cont_begin();
    harness_tagged(nb, sizeof nb, "sess");
    CHECK_INT(cont_join(&one, nb, NULL, &w1), 101);
    snprintf(extra, sizeof extra, "&resume=%s", w1.resume);
    CHECK_INT(cont_join(&two, nb, extra, &w2), 101);
    CHECK(strcmp(w1.resume, w2.resume) != 0);
    CHECK_INT(cont_join(&x, nb, extra, NULL), 101); /* w1's token again: it is spent */
    harness_expect_close(&x, 1008, NULL);
    wsc_close(&x);
    CHECK_INT(cont_join(&x, nb, NULL, NULL), 101);
    harness_expect_close(&x, 1008, NULL);
    wsc_close(&x);
    harness_expect_close(&one, 4001, "replaced by a new connection");
    wsc_close(&one);
    harness_leave(&two);
    CHECK_INT(cont_join(&three, nb, extra, &w3), 101); /* free now: an ordinary join */
    cont_end();
    harness_leave(&three);
    HARNESS_DONE_SERVER(&s);
}

/* --- the history file (-H) ----------------------------------------------------------------- */

static char cont_dir[256];

/* A fresh directory for this run's files (removed with its files by cont_cleanup). */
static const char *cont_path(const char *name, char *out, size_t cap) {
    if (!cont_dir[0]) {
        snprintf(cont_dir, sizeof cont_dir, "%s/chat-test-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
        if (!mkdtemp(cont_dir)) cont_dir[0] = '\0';
    }
    snprintf(out, cap, "%s/%s", cont_dir, name);
    return out;
}

static void cont_cleanup(void) {
    static const char *const names[] = {"h.db", "h.db.bad", "h.db.bad.2", "h.db.tmp", "g.db", "g.db.bad", "n.db", "n.db.bad",
                                         "b.db", "b.db.bad", "b.db.tmp", "f.db", "f.db.tmp/x", "f.db.tmp", "t.db", "t.db.bad",
                                         "s.db", "card/s.db", "card/s.db.tmp", "d.db", "d.db.tmp"};
    char path[400];
    size_t i;
    if (!cont_dir[0]) return;
    for (i = 0; i < sizeof names / sizeof names[0]; i++) unlink(cont_path(names[i], path, sizeof path));
    rmdir(cont_path("f.db.tmp", path, sizeof path)), rmdir(cont_path("card", path, sizeof path));
    rmdir(cont_dir);
    cont_dir[0] = '\0';
}

static void cont_kill9(harness_server *s) {
    int status;
    kill(s->pid, SIGKILL);
    waitpid(s->pid, &status, 0);
    close(s->pipe_fd);
    s->pid = 0;
}

static long long cont_file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

/* A newcomer's replay on the server at harness_port: up to `max` messages, or until 300 ms of quiet. */
static int cont_replay(const char *name, cont_msg *out, int max) {
    wsc c;
    cont_msg w;
    int n = 0;
    if (cont_join(&c, name, NULL, &w) != 101) return -1;
    while (n < max && cont_next(&c, &out[n], 300)) n++;
    harness_leave(&c);
    return n;
}

/* What a restarted server replays of 20 messages: the newest its history holds (10 on the small
   board build). */
#define CONT_KEPT (CHAT_HISTORY < 20 ? CHAT_HISTORY : 20)

/* 20 messages acknowledged to their sender, kill -9, restart: the newest CONT_KEPT come back
   with their ids, times and texts, and the ids go on above them. */
static void test_continuity_history_file_survives_kill_9(void) {
    static cont_msg sent[20], back[60];
    const char *args[] = {"-H", NULL, NULL};
    char path[400], na[64], nb[64];
    harness_server s;
    wsc a;
    cont_msg w, m;
    int i, n, same = 1;
    args[1] = cont_path("h.db", path, sizeof path);
    unlink(path);
    CHECK_INT(harness_use_binary(&s, args), 0);
    cont_begin();
    harness_tagged(na, sizeof na, "durable");
    harness_tagged(nb, sizeof nb, "after");
    CHECK_INT(cont_join(&a, na, NULL, &w), 101);
    for (i = 0; i < 20; i++) {
        char t[32];
        snprintf(t, sizeof t, "kept %d", i);
        cont_say(&a, t, NULL);
        CHECK(cont_next(&a, &sent[i], harness_wait_ms)); /* acknowledged: its own broadcast came back */
    }
    cont_kill9(&s); /* no goodbye: what was acknowledged must be in the file already */
    harness_port = harness_saved_port;
    wsc_close(&a);
    CHECK_INT(harness_use_binary(&s, args), 0);
    n = cont_replay(nb, back, 60);
    CHECK_INT(n, CONT_KEPT);
    for (i = 0; i < n && i < CONT_KEPT; i++) {
        const cont_msg *was = &sent[20 - CONT_KEPT + i];
        if (back[i].id != was->id || back[i].time != was->time || strcmp(back[i].message, was->message) != 0 ||
            !back[i].replay)
            same = 0;
    }
    CHECKF(same, "the replay after the restart differs from what was sent");
    CHECK_INT(cont_join(&a, na, NULL, &w), 101);
    CHECK_INT(w.id, sent[19].id);
    cont_say(&a, "after the restart", NULL);
    CHECK(cont_next_live(&a, &m, harness_wait_ms) && m.id == sent[19].id + 1);
    cont_end();
    harness_leave(&a);
    HARNESS_DONE_SERVER(&s);
    unlink(path);
}

/* A torn last record is dropped (the file cut back to its whole records); a file of garbage or
   of a newer format is set aside, never overwritten, and the server starts afresh. */
static void test_continuity_history_file_torn_tail_and_garbage(void) {
    static cont_msg back[20];
    static const unsigned char torn[] = {0x40, 0, 0, 0, 1, 2, 3, 4, 5}; /* a record cut after 9 of 72 bytes */
    const char *args[] = {"-H", NULL, NULL};
    char path[400], aside[400], name[64];
    harness_server s;
    wsc a;
    cont_msg w, m;
    long long whole;
    FILE *f;
    int i;
    args[1] = cont_path("g.db", path, sizeof path);
    unlink(path);
    CHECK_INT(harness_use_binary(&s, args), 0);
    cont_begin();
    harness_tagged(name, sizeof name, "torn");
    CHECK_INT(cont_join(&a, name, NULL, &w), 101);
    for (i = 0; i < 3; i++) {
        cont_say(&a, "x", NULL);
        CHECK(cont_next(&a, &m, harness_wait_ms));
    }
    harness_leave(&a);
    HARNESS_DONE_SERVER(&s);
    whole = cont_file_size(path);
    f = fopen(path, "ab");
    CHECK(f && fwrite(torn, 1, sizeof torn, f) == sizeof torn);
    if (f) fclose(f);
    CHECK_INT(harness_use_binary(&s, args), 0);
    CHECK_INT(cont_replay(name, back, 20), 3);
    CHECK_INT(cont_file_size(path), whole);
    HARNESS_DONE_SERVER(&s);
    /* garbage */
    f = fopen(path, "wb");
    CHECK(f && fputs("this is not a history file\n", f) >= 0);
    if (f) fclose(f);
    CHECK_INT(harness_use_binary(&s, args), 0);
    CHECK_INT(cont_replay(name, back, 20), 0);
    cont_path("g.db.bad", aside, sizeof aside);
    CHECK_INT(cont_file_size(aside), 27); /* kept as it was */
    CHECK_INT(cont_file_size(path), 8);   /* a new, empty one */
    HARNESS_DONE_SERVER(&s);
    cont_end();
    unlink(path), unlink(aside);
}

/* Many messages: the file is compacted to the newest ones and stays small; nothing the history
   holds is lost by it, and the ids go on. */
static void test_continuity_history_file_stays_bounded(void) {
    static cont_msg back[20];
    const char *args[] = {"-H", NULL, "-q", NULL};
    char path[400], name[64];
    harness_server s;
    wsc a;
    cont_msg w, last;
    long long biggest = 0;
    int i, compacted = 0;
    args[1] = cont_path("n.db", path, sizeof path);
    unlink(path);
    CHECK_INT(harness_use_binary(&s, args), 0);
    cont_begin();
    harness_tagged(name, sizeof name, "bounded");
    CHECK_INT(cont_join(&a, name, NULL, &w), 101);
    memset(&last, 0, sizeof last);
    for (i = 0; i < 2 * (2 * CHAT_HISTORY + CHAT__HFILE_SLACK) + 10; i++) {
        long long size;
        cont_say(&a, "a message of some length, to make the file grow past its bound", NULL);
        CHECK(cont_next(&a, &last, harness_wait_ms));
        size = cont_file_size(path);
        if (size > biggest) biggest = size;
        if (size < biggest) compacted = 1;
    }
    /* at most 2 x history + the slack records of ~100 bytes, plus this turn's */
    CHECKF(biggest < (2 * CHAT_HISTORY + CHAT__HFILE_SLACK + 8) * 110, "the file grew to %lld bytes", biggest);
    CHECK(compacted);
    harness_leave(&a);
    HARNESS_DONE_SERVER(&s);
    CHECK_INT(harness_use_binary(&s, args), 0);
    CHECK_INT(cont_replay(name, back, 20), CONT_KEPT);
    cont_expect_ids_go_on(&a, name, last.id);
    cont_end();
    harness_leave(&a);
    HARNESS_DONE_SERVER(&s);
    unlink(path);
    cont_cleanup();
}

/* --- the history file's failures: its byte bound, a compaction that cannot replace it, damage,
   a symlink (library servers: their log lines come back through the harness's pipe) --- */

/* In the forked server: each log line to the parent, as "log LINE". */
static void cont_log_line(void *user, int level, const char *line) {
    char out[320];
    int n = snprintf(out, sizeof out, "log %s\n", line);
    (void)user, (void)level;
    if (harness_child_pipe_fd >= 0 && n > 0 && write(harness_child_pipe_fd, out, (size_t)n) < 0) {}
}

/* Log lines the server has written so far (they come before the frames of their turn) that
   hold `needle`. */
static int cont_log_count(harness_server *s, const char *needle) {
    char line[320];
    int n = 0, lines = 0;
    while (lines++ < 10000 && harness_read_line(s->pipe_fd, line, sizeof line, wsc_now_ms() + 100) >= 0)
        if (strstr(line, needle)) n++;
    return n;
}

static chat_config cont_file_config(const char *path, int history) {
    chat_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.history_file = path, cfg.history = history;
    cfg.max_rate = -1, cfg.max_byte_rate = -1;
    cfg.on_log = cont_log_line, cfg.log_level = CHAT_LOG_INFO;
    return cfg;
}

/* Messages of 16 KB: 356 of them (2 x history + 256) are more than the CHAT_HISTORY_FILE_MAX
   (4 MiB) of the test build. The file is compacted by bytes too, never passes the bound, and a
   restart brings the whole history back (a file over the bound would be set aside). */
static void test_continuity_history_file_bound_in_bytes(void) {
    static char event[16200];
    static cont_msg back[60];
    char path[400], name[64];
    chat_config cfg;
    harness_server s;
    wsc a;
    cont_msg w, m;
    long long biggest = 0;
    int i;
    cfg = cont_file_config(cont_path("b.db", path, sizeof path), 50);
    cfg.max_message = 16384, cfg.max_backlog = 4 << 20; /* a replay is at most half the backlog */
    unlink(path);
    CHECK_INT(harness_use_library(&s, &cfg), 0);
    cont_begin();
    harness_tagged(name, sizeof name, "big");
    CHECK_INT(cont_join(&a, name, NULL, &w), 101);
    for (i = 0; i < 300; i++) {
        int k = snprintf(event, sizeof event, "{\"event\":\"send-message\",\"message\":\"%d ", i);
        memset(event + k, 'x', 16000), memcpy(event + k + 16000, "\"}", 3);
        CHECK_INT(wsc_send_text(&a, event), 0);
        if (!cont_next(&a, &m, harness_wait_ms)) break;
        if (cont_file_size(path) > biggest) biggest = cont_file_size(path);
    }
    CHECK_INT(i, 300);
    CHECKF(biggest <= (long long)CHAT_HISTORY_FILE_MAX, "the file grew to %lld bytes", biggest);
    harness_leave(&a);
    HARNESS_DONE_SERVER(&s);
    CHECK_INT(harness_use_library(&s, &cfg), 0);
    CHECK_INT(cont_replay(name, back, 60), 50);
    cont_end();
    HARNESS_DONE_SERVER(&s);
    unlink(path);
}

/* A compaction that cannot replace the file (here a directory is in the way of FILE.tmp; in the
   field EBUSY on a bind-mounted file, EACCES, EXDEV): said in the log, not every turn, and the
   file stays within its bound (it starts again with the turn's messages) while the chat goes
   on. After a restart the newest message is there and ids go on from it. */
static void test_continuity_history_file_compaction_fails(void) {
    static cont_msg back[60];
    char path[400], tmp[400], inside[400], name[64];
    chat_config cfg;
    harness_server s;
    wsc a;
    cont_msg w, m;
    long long biggest = 0;
    int i, failed, n = 2 * (2 * CHAT_HISTORY + CHAT__HFILE_SLACK) + 10;
    FILE *f;
    cfg = cont_file_config(cont_path("f.db", path, sizeof path), 0);
    unlink(path);
    cont_path("f.db.tmp", tmp, sizeof tmp), cont_path("f.db.tmp/x", inside, sizeof inside);
    CHECK_INT(mkdir(tmp, 0700), 0);
    f = fopen(inside, "w"); /* not empty: no one removes it in passing */
    if (f) fclose(f);
    CHECK_INT(harness_use_library(&s, &cfg), 0);
    cont_begin();
    harness_tagged(name, sizeof name, "stuck");
    CHECK_INT(cont_join(&a, name, NULL, &w), 101);
    for (i = 0; i < n; i++) {
        cont_say(&a, "a message of some length, to make the file grow past its bound", NULL);
        if (!cont_next(&a, &m, harness_wait_ms)) break; /* the chat goes on */
        if (cont_file_size(path) > biggest) biggest = cont_file_size(path);
    }
    CHECK_INT(i, n);
    CHECKF(biggest < (2 * CHAT_HISTORY + CHAT__HFILE_SLACK + 8) * 110, "the file grew to %lld bytes", biggest);
    failed = cont_log_count(&s, "compaction failed");
    CHECKF(failed >= 1 && failed <= 3, "'compaction failed' logged %d times", failed); /* once each time it is over */
    harness_leave(&a);
    HARNESS_DONE_SERVER(&s);
    CHECK_INT(harness_use_library(&s, &cfg), 0);
    CHECK(cont_replay(name, back, 60) >= 1 && back[0].id > 0);
    cont_expect_ids_go_on(&a, name, m.id); /* the newest message is in the file */
    cont_end();
    harness_leave(&a);
    HARNESS_DONE_SERVER(&s);
    unlink(inside), rmdir(tmp), unlink(path);
}

/* A disk that is full (here RLIMIT_FSIZE in the server: EFBIG; in the field ENOSPC): messages
   still go out, and no id they were given is given again after a restart. A turn that does not
   fit even alone leaves the file empty (ids go on from the clock); one that fits once the file
   is cut back is kept, and ids go on from it. */
static size_t cont_fsize_limit;
static void cont_limit_files(void) {
    struct rlimit r;
    signal(SIGXFSZ, SIG_IGN);
    r.rlim_cur = r.rlim_max = (rlim_t)cont_fsize_limit;
    setrlimit(RLIMIT_FSIZE, &r);
}

static void test_continuity_history_file_full_disk_gives_no_id_twice(void) {
    static char big[5200];
    static cont_msg back[60];
    unsigned long long given[8], top = 0;
    char path[400], name[64];
    chat_config cfg;
    harness_server s;
    wsc a;
    cont_msg w, m;
    int i, k = 0, again = 0;
    cfg = cont_file_config(cont_path("d.db", path, sizeof path), 0);
    cfg.max_message = 8192; /* the small-board build's is 4096 */
    unlink(path);
    cont_fsize_limit = 4096, harness_child_setup = cont_limit_files;
    CHECK_INT(harness_use_library(&s, &cfg), 0);
    harness_child_setup = NULL;
    cont_begin();
    harness_tagged(name, sizeof name, "full");
    CHECK_INT(cont_join(&a, name, NULL, &w), 101);
    memset(big, '.', sizeof big - 1);
    for (i = 0; i < 5; i++) { /* two kept, then three that no file of 4 KiB holds */
        memcpy(big, "lost", 4);
        if (i < 2) cont_say(&a, "kept", NULL);
        else CHECK_INT(cont_say_long(&a, big), 0);
        CHECK(cont_next(&a, &m, harness_wait_ms) && m.id > 0);
        given[k++] = m.id, top = m.id;
    }
    CHECK(cont_log_count(&s, "it is emptied") >= 1);
    harness_leave(&a);
    HARNESS_DONE_SERVER(&s);
    CHECK_INT(cont_file_size(path), 8);
    CHECK_INT(harness_use_library(&s, &cfg), 0);
    CHECK_INT(cont_join(&a, name, NULL, &w), 101);
    for (i = 0; i < 3; i++) {
        int j;
        cont_say(&a, "new", NULL);
        CHECK(cont_next_live(&a, &m, harness_wait_ms));
        for (j = 0; j < k; j++) again += m.id == given[j];
        CHECKF(m.id > top, "id %llu after a restart, %llu was given before it", m.id, top);
    }
    CHECK_INT(again, 0);
    harness_leave(&a);
    HARNESS_DONE_SERVER(&s);
    /* small messages until the file is full: that turn is kept alone, ids go on from it */
    harness_child_setup = cont_limit_files;
    CHECK_INT(harness_use_library(&s, &cfg), 0);
    harness_child_setup = NULL;
    CHECK_INT(cont_join(&a, name, NULL, &w), 101);
    for (i = 0; i < 60; i++) {
        cont_say(&a, "a message of some length, to fill the file up to its limit", NULL);
        CHECK(cont_next_live(&a, &m, harness_wait_ms));
    }
    CHECK_INT(cont_log_count(&s, "starts again with this turn"), 1);
    harness_leave(&a);
    HARNESS_DONE_SERVER(&s);
    CHECK_INT(harness_use_library(&s, &cfg), 0);
    CHECK(cont_replay(name, back, 60) >= 1);
    cont_expect_ids_go_on(&a, name, m.id);
    cont_end();
    harness_leave(&a);
    HARNESS_DONE_SERVER(&s);
    unlink(path);
}

/* A power cut tears a turn's write anywhere: a hole in one record with a whole one after it.
   The records before the damage come back; the file as it was is kept as FILE.bad. */
static void test_continuity_history_file_damage_keeps_what_came_before(void) {
    static cont_msg back[20];
    char path[400], aside[400], name[64];
    chat_config cfg;
    chat_buf b;
    harness_server s;
    FILE *f;
    int i, n;
    size_t whole = 0, total;
    cfg = cont_file_config(cont_path("t.db", path, sizeof path), 0);
    harness_tagged(name, sizeof name, "torn");
    memset(&b, 0, sizeof b);
    chat_buf_append(&b, CHAT__HFILE_MAGIC "\1", 8);
    for (i = 0; i < 7; i++) {
        chat__words wd;
        char text[32];
        if (i == 5) whole = b.len;
        snprintf(text, sizeof text, i < 5 ? "acknowledged %d" : "the torn batch %d", i);
        memset(&wd, 0, sizeof wd);
        wd.name = name, wd.name_len = strlen(name), wd.text = text, wd.text_len = strlen(text), wd.time_ms = 1000;
        chat__hrecord_put(&b, &wd, 1000 + (uint64_t)i);
    }
    memset(b.data + whole + 30, 0, 8); /* a page that never reached the disk */
    f = fopen(path, "wb");
    CHECK(f && fwrite(b.data, 1, b.len, f) == b.len);
    if (f) fclose(f);
    total = b.len;
    chat_buf_free(&b); /* before the fork */
    CHECK_INT(harness_use_library(&s, &cfg), 0);
    cont_begin();
    n = cont_replay(name, back, 20);
    CHECK_INT(n, 5);
    CHECK(n == 5 && strcmp(back[4].message, "acknowledged 4") == 0 && back[4].id == 1004);
    CHECK_INT(cont_file_size(cont_path("t.db.bad", aside, sizeof aside)), (long long)total); /* kept as it was */
    CHECK_INT(cont_file_size(path), (long long)whole);
    cont_end();
    HARNESS_DONE_SERVER(&s);
    unlink(path), unlink(aside);
}

/* -H a symlink (/etc/chat.hist -> /mnt/sd/chat.hist): the file it points to is appended to and
   compacted in its own directory; the link stays a link. */
static void test_continuity_history_file_symlink_stays(void) {
    char path[400], card[400], target[400], name[64], raw[64];
    chat_config cfg;
    harness_server s;
    wsc a;
    cont_msg w, m;
    struct stat st;
    int i, n = 2 * 2 + CHAT__HFILE_SLACK + 20;
    FILE *f;
    cfg = cont_file_config(cont_path("s.db", path, sizeof path), 2);
    CHECK_INT(mkdir(cont_path("card", card, sizeof card), 0700), 0);
    CHECK_INT(symlink(cont_path("card/s.db", target, sizeof target), path), 0);
    CHECK_INT(harness_use_library(&s, &cfg), 0);
    cont_begin();
    harness_tagged(name, sizeof name, "linked");
    CHECK_INT(cont_join(&a, name, NULL, &w), 101);
    for (i = 0; i < n; i++) {
        char t[32];
        snprintf(t, sizeof t, "m%d", i);
        cont_say(&a, t, NULL);
        if (!cont_next(&a, &m, harness_wait_ms)) break;
    }
    CHECK_INT(i, n);
    harness_leave(&a);
    HARNESS_DONE_SERVER(&s);
    cont_end();
    CHECK(lstat(path, &st) == 0 && S_ISLNK(st.st_mode));
    CHECKF(cont_file_size(target) < 40 * 100, "the target is %lld bytes: not compacted", cont_file_size(target));
    f = fopen(target, "rb");
    memset(raw, 0, sizeof raw);
    if (f) {
        CHECK(fseek(f, -4, SEEK_END) == 0 && fread(raw, 1, 4, f) == 4);
        fclose(f);
    }
    snprintf(name, sizeof name, "m%d", n - 1);
    CHECKF(strstr(raw, name + 1) != NULL, "the target's last record ends in '%s', not '%s'", raw, name);
    unlink(path), unlink(target), rmdir(card);
}

static void continuity_tests(void) {
    RUN(test_continuity_ids_times_cids_and_replays);
    RUN(test_continuity_bad_cid_is_ignored_not_the_message);
    RUN(test_continuity_repeated_cid_is_not_said_twice);
    RUN(test_continuity_since_replays_exactly_what_came_after);
    RUN(test_continuity_resume_after_vanishing_5_messages);
    RUN(test_continuity_resume_after_vanishing_120_messages);
    RUN(test_continuity_resume_shows_no_leave_or_join);
    RUN(test_continuity_resume_token_is_per_session);
    RUN(test_continuity_history_file_survives_kill_9);
    RUN(test_continuity_history_file_torn_tail_and_garbage);
    RUN(test_continuity_history_file_stays_bounded);
    RUN(test_continuity_history_file_bound_in_bytes);
    RUN(test_continuity_history_file_compaction_fails);
    RUN(test_continuity_history_file_full_disk_gives_no_id_twice);
    RUN(test_continuity_history_file_damage_keeps_what_came_before);
    RUN(test_continuity_history_file_symlink_stays);
    cont_cleanup();
}
