/* unit_http.c - the http layer of chat.h: the incremental request head parser, percent-decoding,
   query parameters and comma-separated header token lists. */

#define UH_S(lit) (lit), sizeof(lit) - 1 /* a string literal and its length */

static const char uh_browser_request[] =
    "GET /start_web_socket?username=alice HTTP/1.1\r\n"
    "Host: localhost:8080\r\n"
    "Connection: Upgrade\r\n"
    "Pragma: no-cache\r\n"
    "Cache-Control: no-cache\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36\r\n"
    "Upgrade: websocket\r\n"
    "Origin: http://localhost:8080\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "Accept-Encoding: gzip, deflate, br\r\n"
    "Accept-Language: en-US,en;q=0.9\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
    "\r\n";

/* Does the span hold exactly `lit`, inside buf[0..len)? */
static int uh_span_is(chat_span s, const char *lit, const char *buf, size_t len) {
    return s.p != NULL && s.p >= buf && s.p + s.n <= buf + len && s.n == strlen(lit) && memcmp(s.p, lit, s.n) == 0;
}

/* The first header of that name, as the server looks it up. */
static chat_span uh_header(const chat_http_request *req, const char *name) {
    chat_span v;
    chat_http_header(req, name, &v);
    return v;
}

/* Parses a complete buffer in one call. */
static int uh_parse(const char *buf, size_t len, chat_http_request *req) {
    size_t scanned = 0;
    return chat_http_parse(buf, len, 8192, &scanned, req);
}

typedef struct uh_flags_case {
    const char *req;
    unsigned flags;
} uh_flags_case;

/* Each whole request parses to its end with exactly these flags. */
static void uh_expect_flags(const uh_flags_case *cases, size_t count) {
    size_t i;
    for (i = 0; i < count; i++) {
        chat_http_request req;
        int r = uh_parse(cases[i].req, strlen(cases[i].req), &req);
        CHECKF(r == (int)strlen(cases[i].req), "case %zu: returned %d", i, r);
        CHECKF(req.flags == cases[i].flags, "case %zu: flags %u != %u", i, req.flags, cases[i].flags);
    }
}

static void test_http_parse_browser_upgrade_request(void) {
    const char *b = uh_browser_request;
    size_t n = sizeof uh_browser_request - 1, scanned = 0;
    chat_http_request req;
    CHECK_INT(chat_http_parse(b, n, 8192, &scanned, &req), (int)n);
    CHECK_INT(scanned, 0);
    CHECK(uh_span_is(req.method, "GET", b, n));
    CHECK(uh_span_is(req.target, "/start_web_socket?username=alice", b, n));
    CHECK(uh_span_is(uh_header(&req, "host"), "localhost:8080", b, n));
    CHECK(uh_span_is(uh_header(&req, "upgrade"), "websocket", b, n));
    CHECK(uh_span_is(uh_header(&req, "sec-websocket-key"), "dGhlIHNhbXBsZSBub25jZQ==", b, n));
    CHECK(uh_span_is(uh_header(&req, "sec-websocket-version"), "13", b, n));
    CHECK(uh_span_is(uh_header(&req, "origin"), "http://localhost:8080", b, n));
    CHECK_INT(req.minor, 1);
    CHECK_INT(req.flags, CHAT_HTTP_CONN_UPGRADE);
}

/* A body after the head is not part of the head. */
static void test_http_parse_returns_head_length_only(void) {
    static const char r[] = "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello";
    chat_http_request req;
    CHECK_INT(uh_parse(UH_S(r), &req), (int)(sizeof r - 1 - 5));
    CHECK(uh_span_is(req.method, "POST", r, sizeof r - 1));
    CHECK(uh_span_is(req.target, "/x", r, sizeof r - 1));
}

static void test_http_parse_trims_value_whitespace(void) {
    static const char r[] = "GET / HTTP/1.1\r\nHost: \t example.com \t \r\nOrigin:null\r\nUpgrade:\r\n\r\n";
    chat_http_request req;
    CHECK_INT(uh_parse(UH_S(r), &req), (int)(sizeof r - 1));
    CHECK(uh_span_is(uh_header(&req, "host"), "example.com", r, sizeof r - 1));
    CHECK(uh_span_is(uh_header(&req, "origin"), "null", r, sizeof r - 1));
    CHECK(uh_span_is(uh_header(&req, "upgrade"), "", r, sizeof r - 1)); /* present but empty */
    CHECK(uh_header(&req, "sec-websocket-key").p == NULL);
    CHECK(uh_header(&req, "sec-websocket-version").p == NULL);
}

static void test_http_parse_header_names_any_case(void) {
    static const char r[] = "GET /a HTTP/1.1\r\nhOsT: h\r\nUPGRADE: WebSocket\r\nconnection: UPGRADE\r\n"
                            "sec-websocket-key: k\r\nSEC-WEBSOCKET-VERSION: 13\r\noRiGiN: o\r\n\r\n";
    chat_http_request req;
    size_t n = sizeof r - 1;
    CHECK_INT(uh_parse(r, n, &req), (int)n);
    CHECK(uh_span_is(uh_header(&req, "host"), "h", r, n));
    CHECK(uh_span_is(uh_header(&req, "upgrade"), "WebSocket", r, n));
    CHECK(uh_span_is(uh_header(&req, "sec-websocket-key"), "k", r, n));
    CHECK(uh_span_is(uh_header(&req, "sec-websocket-version"), "13", r, n));
    CHECK(uh_span_is(uh_header(&req, "origin"), "o", r, n));
    CHECK_INT(req.flags, CHAT_HTTP_CONN_UPGRADE);
}

static void test_http_parse_connection_tokens(void) {
    static const uh_flags_case cases[] = {
        {"GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\n\r\n", CHAT_HTTP_KEEPALIVE | CHAT_HTTP_CONN_UPGRADE},
        {"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", CHAT_HTTP_CLOSE},
        {"GET / HTTP/1.1\r\nHost: a\r\nConnection: Keep-Alive\r\n\r\n", CHAT_HTTP_KEEPALIVE},
        {"GET / HTTP/1.1\r\nHost: a\r\nConnection: Close, Upgrade\r\n\r\n", CHAT_HTTP_CLOSE | CHAT_HTTP_CONN_UPGRADE},
        {"GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade2, closed, keep-alive-x\r\n\r\n", 0},
        {"GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\nConnection: upgrade\r\n\r\n",
         CHAT_HTTP_KEEPALIVE | CHAT_HTTP_CONN_UPGRADE},
        {"GET / HTTP/1.1\r\nHost: a\r\nX-Connection: close\r\n\r\n", 0},
        {"GET / HTTP/1.1\r\nHost: a\r\n\r\n", 0},
    };
    uh_expect_flags(cases, sizeof cases / sizeof cases[0]);
}

static void test_http_parse_bare_lf_line_endings(void) {
    static const char r[] = "GET /x HTTP/1.1\nHost: a\nUpgrade: websocket\n\n";
    static const char mixed[] = "GET /x HTTP/1.1\r\nHost: a\nOrigin: o\r\n\n";
    static const char mixed2[] = "GET /x HTTP/1.1\nHost: a\n\r\n";
    chat_http_request req;
    CHECK_INT(uh_parse(UH_S(r), &req), (int)(sizeof r - 1));
    CHECK(uh_span_is(uh_header(&req, "host"), "a", r, sizeof r - 1));
    CHECK(uh_span_is(uh_header(&req, "upgrade"), "websocket", r, sizeof r - 1));
    CHECK(uh_span_is(req.target, "/x", r, sizeof r - 1));
    CHECK_INT(uh_parse(UH_S(mixed), &req), (int)(sizeof mixed - 1));
    CHECK(uh_span_is(uh_header(&req, "host"), "a", mixed, sizeof mixed - 1));
    CHECK(uh_span_is(uh_header(&req, "origin"), "o", mixed, sizeof mixed - 1));
    CHECK_INT(uh_parse(UH_S(mixed2), &req), (int)(sizeof mixed2 - 1));
    CHECK(uh_span_is(uh_header(&req, "host"), "a", mixed2, sizeof mixed2 - 1));
}

/* Bytes arrive one at a time: INCOMPLETE until the last one, and `scanned` keeps up so the work
   stays linear (each call looks only at the new bytes and a few before them). */
static void uh_byte_by_byte(const char *r, size_t n, const char *what) {
    size_t scanned = 0, len;
    chat_http_request req;
    for (len = 1; len <= n; len++) {
        int got = chat_http_parse(r, len, 8192, &scanned, &req);
        if (len < n) {
            CHECKF(got == CHAT_HTTP_INCOMPLETE, "%s: %d at length %zu of %zu", what, got, len, n);
            CHECKF(scanned + 4 >= len && scanned <= len, "%s: scanned %zu at length %zu", what, scanned, len);
            if (got != CHAT_HTTP_INCOMPLETE) return;
        } else {
            CHECKF(got == (int)n, "%s: %d at the last byte, expected %zu", what, got, n);
            CHECKF(scanned == 0, "%s: scanned %zu after a complete head", what, scanned);
        }
    }
}

static void test_http_parse_byte_by_byte(void) {
    size_t n = sizeof uh_browser_request - 1, scanned = 0;
    chat_http_request req;
    uh_byte_by_byte(uh_browser_request, n, "browser request");
    uh_byte_by_byte(UH_S("GET / HTTP/1.1\nHost: a\n\n"), "bare LF");
    uh_byte_by_byte(UH_S("GET / HTTP/1.1\r\nHost: a\n\r\n"), "mixed");
    /* the spans of the last call are right */
    CHECK_INT(chat_http_parse(uh_browser_request, n - 1, 8192, &scanned, &req), CHAT_HTTP_INCOMPLETE);
    CHECK_INT(chat_http_parse(uh_browser_request, n, 8192, &scanned, &req), (int)n);
    CHECK(uh_span_is(uh_header(&req, "sec-websocket-key"), "dGhlIHNhbXBsZSBub25jZQ==", uh_browser_request, n));
    CHECK(uh_span_is(req.target, "/start_web_socket?username=alice", uh_browser_request, n));
}

/* Growing in chunks that end between the CR and LF of the final empty line. */
static void test_http_parse_split_inside_final_crlf(void) {
    static const char r[] = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    size_t n = sizeof r - 1, scanned = 0;
    chat_http_request req;
    CHECK_INT(chat_http_parse(r, n - 3, 8192, &scanned, &req), CHAT_HTTP_INCOMPLETE); /* ...a\r */
    CHECK_INT(chat_http_parse(r, n - 1, 8192, &scanned, &req), CHAT_HTTP_INCOMPLETE); /* ...\r\n\r */
    CHECK_INT(chat_http_parse(r, n, 8192, &scanned, &req), (int)n);
}

static void test_http_parse_pipelined_requests(void) {
    static const char r[] = "GET /one HTTP/1.1\r\nHost: a\r\n\r\nGET /two HTTP/1.0\r\nHost: b\r\nConnection: close\r\n\r\n";
    size_t n = sizeof r - 1, first = strlen("GET /one HTTP/1.1\r\nHost: a\r\n\r\n"), scanned = 0;
    chat_http_request req;
    CHECK_INT(chat_http_parse(r, n, 8192, &scanned, &req), (int)first);
    CHECK(uh_span_is(req.target, "/one", r, n));
    CHECK(uh_span_is(uh_header(&req, "host"), "a", r, n));
    CHECK_INT(req.flags, 0);
    CHECK_INT(scanned, 0);
    CHECK_INT(chat_http_parse(r + first, n - first, 8192, &scanned, &req), (int)(n - first));
    CHECK(uh_span_is(req.target, "/two", r, n));
    CHECK(uh_span_is(uh_header(&req, "host"), "b", r, n));
    CHECK_INT(req.minor, 0);
    CHECK_INT(req.flags, CHAT_HTTP_CLOSE);
}

static void test_http_parse_too_large(void) {
    /* "GET / HTTP/1.1\r\nX: " (19) + value + "\r\n\r\n" (4): a head of exactly `size` bytes */
    char buf[200];
    size_t scanned, len;
    chat_http_request req;
    memcpy(buf, "GET / HTTP/1.1\r\nX: ", 19);
    memset(buf + 19, 'v', 64 - 23);
    memcpy(buf + 64 - 4, "\r\n\r\n", 4); /* a 64-byte head */
    scanned = 0;
    CHECK_INT(chat_http_parse(buf, 64, 64, &scanned, &req), 64); /* exactly at the limit */
    scanned = 0;
    CHECK_INT(chat_http_parse(buf, 64, 63, &scanned, &req), CHAT_HTTP_TOO_LARGE);
    for (scanned = 0, len = 1; len <= 64; len++) { /* byte by byte up to the limit */
        int r = chat_http_parse(buf, len, 64, &scanned, &req);
        CHECKF(r == (len < 64 ? CHAT_HTTP_INCOMPLETE : 64), "length %zu: %d", len, r);
    }
    memset(buf + 19, 'v', 65 - 23);
    memcpy(buf + 65 - 4, "\r\n\r\n", 4); /* a 65-byte head */
    for (scanned = 0, len = 1; len <= 65; len++) {
        int r = chat_http_parse(buf, len, 64, &scanned, &req);
        CHECKF(r == (len < 64 ? CHAT_HTTP_INCOMPLETE : CHAT_HTTP_TOO_LARGE), "length %zu: %d", len, r);
    }
    memset(buf, 'x', sizeof buf); /* no line end at all */
    scanned = 0;
    CHECK_INT(chat_http_parse(buf, 63, 64, &scanned, &req), CHAT_HTTP_INCOMPLETE);
    CHECK_INT(chat_http_parse(buf, 64, 64, &scanned, &req), CHAT_HTTP_TOO_LARGE);
    scanned = 0;
    CHECK_INT(chat_http_parse(buf, sizeof buf, 64, &scanned, &req), CHAT_HTTP_TOO_LARGE);
}

static void test_http_parse_malformed_is_bad(void) {
    static const char *const bad[] = {
        "GET /\r\nHost: a\r\n\r\n",                       /* missing version */
        "GET\r\nHost: a\r\n\r\n",                          /* missing target and version */
        "GET / HTTP/2.0\r\nHost: a\r\n\r\n",
        "GET / http/1.1\r\nHost: a\r\n\r\n",
        "GET / HTTP/1.x\r\nHost: a\r\n\r\n",
        "GET / HTTP/1.10\r\nHost: a\r\n\r\n",
        "GET / HTTP/1\r\nHost: a\r\n\r\n",
        "GET / HTTP/1.1 \r\nHost: a\r\n\r\n",
        "GET index.html HTTP/1.1\r\nHost: a\r\n\r\n",      /* target not starting with '/' */
        "GET * HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET ftp://a/ HTTP/1.1\r\nHost: a\r\n\r\n",        /* absolute-form, but not http(s) */
        "GET http:/a HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
        " GET / HTTP/1.1\r\nHost: a\r\n\r\n",
        "GE(T / HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET /a\x01" "b HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET /a\x7f" "b HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET /a\tb HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET / HTTP/1.1\r\nHost : a\r\n\r\n",               /* space before the colon */
        "GET / HTTP/1.1\r\nHost\t: a\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n", /* obs-fold */
        "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n\tc\r\n\r\n",
        "GET / HTTP/1.1\r\n Host: a\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x01" "c\r\n\r\n", /* control characters in a value */
        "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x7f" "c\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nX-A: \x1b[31m\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\rX-A: b\r\n\r\n",         /* bare CR */
        "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\rc\r\n\r\n",
        "GET / HTTP/1.1\rHost: a\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",     /* duplicate Host */
        "GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n",
        "GET / HTTP/1.1\r\nHost:\r\nHost: b\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: abc\r\n\r\n", /* non-numeric Content-Length */
        "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 2\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\n: empty-name\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nBad(Name: x\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nBad/Name: x\r\n\r\n",
        "\r\n GET / HTTP/1.1\r\nHost: a\r\n\r\n",          /* empty lines before it are fine; this is not */
        "\n\rGET / HTTP/1.1\r\nHost: a\r\n\r\n",
    };
    size_t i;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        chat_http_request req;
        int r = uh_parse(bad[i], strlen(bad[i]), &req);
        CHECKF(r == CHAT_HTTP_BAD, "case %zu returned %d: %s", i, r, bad[i]);
    }
}

/* A NUL byte anywhere in the head is a control character. */
static void test_http_parse_nul_byte_is_bad(void) {
    static const char in_value[] = "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\0c\r\n\r\n";
    static const char in_name[] = "GET / HTTP/1.1\r\nHost: a\r\nX\0A: b\r\n\r\n";
    static const char in_target[] = "GET /\0 HTTP/1.1\r\nHost: a\r\n\r\n";
    chat_http_request req;
    CHECK_INT(uh_parse(UH_S(in_value), &req), CHAT_HTTP_BAD);
    CHECK_INT(uh_parse(UH_S(in_name), &req), CHAT_HTTP_BAD);
    CHECK_INT(uh_parse(UH_S(in_target), &req), CHAT_HTTP_BAD);
}

static void test_http_parse_body_flag(void) {
    static const uh_flags_case cases[] = {
        {"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", 0},
        {"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 000\r\n\r\n", 0},
        {"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n", CHAT_HTTP_BODY},
        {"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n", CHAT_HTTP_BODY},
        {"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n", CHAT_HTTP_BODY},
        {"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", CHAT_HTTP_BODY},
        {"GET / HTTP/1.1\r\nHost: a\r\ntransfer-encoding: identity\r\n\r\n", CHAT_HTTP_BODY},
        {"GET / HTTP/1.1\r\nHost: a\r\n\r\n", 0},
    };
    uh_expect_flags(cases, sizeof cases / sizeof cases[0]);
}

static void test_http_header_counts_repeats(void) {
    static const char r[] = "GET /ws HTTP/1.1\r\nHost: a\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                            "sec-websocket-key: AAAAAAAAAAAAAAAAAAAAAA==\r\n\r\n";
    static const char one[] = "GET /ws HTTP/1.1\r\nHost: a\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    chat_http_request req;
    chat_span v;
    CHECK_INT(uh_parse(UH_S(r), &req), (int)(sizeof r - 1));
    CHECK_INT(chat_http_header(&req, "sec-websocket-key", &v), 2);
    CHECK(uh_span_is(v, "dGhlIHNhbXBsZSBub25jZQ==", r, sizeof r - 1)); /* the first one */
    CHECK_INT(uh_parse(UH_S(one), &req), (int)(sizeof one - 1));
    CHECK_INT(chat_http_header(&req, "sec-websocket-key", &v), 1);
    CHECK_INT(chat_http_header(&req, "sec-websocket", &v), 0);
    CHECK(v.p == NULL && v.n == 0);
}

static void test_http_parse_http10_and_other_methods(void) {
    static const char r[] = "HEAD /x?y HTTP/1.0\r\n\r\n";
    static const char p[] = "PATCH /p HTTP/1.9\r\nHost: h\r\n\r\n";
    chat_http_request req;
    CHECK_INT(uh_parse(UH_S(r), &req), (int)(sizeof r - 1));
    CHECK(uh_span_is(req.method, "HEAD", r, sizeof r - 1));
    CHECK(uh_span_is(req.target, "/x?y", r, sizeof r - 1));
    CHECK_INT(req.minor, 0);
    CHECK(uh_header(&req, "host").p == NULL);
    CHECK_INT(uh_parse(UH_S(p), &req), (int)(sizeof p - 1));
    CHECK(uh_span_is(req.method, "PATCH", p, sizeof p - 1));
    CHECK_INT(req.minor, 9);
}

/* --- chat_url_decode --- */

static int uh_decodes_to(const char *in, int plus_is_space, const char *expect, size_t expect_n) {
    char out[64];
    size_t n = chat_url_decode(in, strlen(in), out, plus_is_space);
    if (n != expect_n || memcmp(out, expect, n) != 0) {
        printf("  url_decode(\"%s\", %d) = \"%.*s\" (%zu bytes)\n", in, plus_is_space, (int)n, out, n);
        return 0;
    }
    return 1;
}

static void test_url_decode(void) {
    CHECK(uh_decodes_to("", 1, "", 0));
    CHECK(uh_decodes_to("%41", 1, "A", 1));
    CHECK(uh_decodes_to("a%41b", 0, "aAb", 3));
    CHECK(uh_decodes_to("%e5%90%8d", 1, "\xe5\x90\x8d", 3));
    CHECK(uh_decodes_to("%E5%90%8D", 1, "\xe5\x90\x8d", 3));
    CHECK(uh_decodes_to("a+b", 1, "a b", 3));
    CHECK(uh_decodes_to("a+b", 0, "a+b", 3));
    CHECK(uh_decodes_to("%2B", 1, "+", 1));
    CHECK(uh_decodes_to("%20", 0, " ", 1));
    CHECK(uh_decodes_to("%zz", 1, "%zz", 3));
    CHECK(uh_decodes_to("%4g", 1, "%4g", 3));
    CHECK(uh_decodes_to("%g4", 1, "%g4", 3));
    CHECK(uh_decodes_to("%4", 1, "%4", 2));
    CHECK(uh_decodes_to("x%4", 1, "x%4", 3));
    CHECK(uh_decodes_to("%", 1, "%", 1));
    CHECK(uh_decodes_to("100%", 1, "100%", 4));
    CHECK(uh_decodes_to("%%41", 1, "%A", 2));
    CHECK(uh_decodes_to("%00", 1, "\0", 1));
    CHECK(uh_decodes_to("a%00b", 1, "a\0b", 3));
    CHECK(uh_decodes_to("%2541", 1, "%41", 3)); /* decoded once only */
    CHECK(uh_decodes_to("%ff%FF", 1, "\xff\xff", 2));
}

/* --- chat_url_query_param --- */

/* 1 when found with exactly `expect` (NUL-terminated in the buffer), 0 when absent as expected. */
static int uh_param_is(const char *q, const char *name, const char *expect, size_t expect_n) {
    chat_buf out;
    int r, ok;
    memset(&out, 0, sizeof out);
    chat_buf_append(&out, "junk", 4);
    r = chat_url_query_param(q, strlen(q), name, &out);
    if (!expect) ok = r == 0;
    else ok = r == 1 && out.len == expect_n && memcmp(out.data, expect, expect_n) == 0 && out.data[out.len] == '\0';
    if (!ok) printf("  query_param(\"%s\", \"%s\") = %d, \"%.*s\"\n", q, name, r, (int)out.len, (const char *)out.data);
    chat_buf_free(&out);
    return ok;
}

static void test_query_param(void) {
    CHECK(uh_param_is("username=alice", "username", "alice", 5));
    CHECK(uh_param_is("a=1&username=bob&c=3", "username", "bob", 3));
    CHECK(uh_param_is("username=bob&username=eve", "username", "bob", 3)); /* the first wins */
    CHECK(uh_param_is("user=x&name=y", "username", NULL, 0));
    CHECK(uh_param_is("", "username", NULL, 0));
    CHECK(uh_param_is("usernamex=1&xusername=2", "username", NULL, 0));
    CHECK(uh_param_is("usernam=1", "username", NULL, 0));
    CHECK(uh_param_is("username=", "username", "", 0));
    CHECK(uh_param_is("username", "username", "", 0));
    CHECK(uh_param_is("username&username=x", "username", "", 0));
    CHECK(uh_param_is("a=1&username", "username", "", 0));
    CHECK(uh_param_is("&&username=z&", "username", "z", 1));
    CHECK(uh_param_is("user%6Eame=x", "username", "x", 1));
    CHECK(uh_param_is("%75%73%65%72%6e%61%6d%65=y", "username", "y", 1));
    CHECK(uh_param_is("user+name=x", "user name", "x", 1));
    CHECK(uh_param_is("username=a+b", "username", "a b", 3));
    CHECK(uh_param_is("username=a%2Bb", "username", "a+b", 3));
    CHECK(uh_param_is("username=a=b", "username", "a=b", 3));
    CHECK(uh_param_is("username=%00", "username", "\0", 1));
    CHECK(uh_param_is("=username", "username", NULL, 0));
    /* encodeURIComponent("a b&c=d#e 名字") */
    CHECK(uh_param_is("username=a%20b%26c%3Dd%23e%20%E5%90%8D%E5%AD%97", "username",
                      "a b&c=d#e \xe5\x90\x8d\xe5\xad\x97", 16));
    /* a key longer than the internal key buffer is skipped, not overflowed */
    CHECK(uh_param_is("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa=1&username=ok", "username", "ok", 2));
}

/* --- chat_http_token_list_has --- */

static int uh_has(const char *value, const char *token) {
    chat_span s;
    s.p = value, s.n = strlen(value);
    return chat_http_token_list_has(s, token);
}

static void test_token_list_has(void) {
    CHECK_INT(uh_has("upgrade", "upgrade"), 1);
    CHECK_INT(uh_has("Upgrade", "upgrade"), 1);
    CHECK_INT(uh_has("UPGRADE", "upgrade"), 1);
    CHECK_INT(uh_has("keep-alive, Upgrade", "upgrade"), 1);
    CHECK_INT(uh_has("keep-alive, Upgrade", "keep-alive"), 1);
    CHECK_INT(uh_has("keep-alive,Upgrade", "upgrade"), 1);
    CHECK_INT(uh_has(" \tupgrade\t ", "upgrade"), 1);
    CHECK_INT(uh_has("a ,\t upgrade \t, b", "upgrade"), 1);
    CHECK_INT(uh_has(",,upgrade,,", "upgrade"), 1);
    CHECK_INT(uh_has("a,,upgrade", "upgrade"), 1);
    CHECK_INT(uh_has("x, , ,upgrade", "upgrade"), 1);
    CHECK_INT(uh_has("upgrade2", "upgrade"), 0);
    CHECK_INT(uh_has("xupgrade", "upgrade"), 0);
    CHECK_INT(uh_has("upgrade-x, keep", "upgrade"), 0);
    CHECK_INT(uh_has("upgrad", "upgrade"), 0);
    CHECK_INT(uh_has("up grade", "upgrade"), 0);
    CHECK_INT(uh_has("upgrade x", "upgrade"), 0);
    CHECK_INT(uh_has("", "upgrade"), 0);
    CHECK_INT(uh_has(",, ,\t", "upgrade"), 0);
    CHECK_INT(uh_has("websocket", "websocket"), 1);
    CHECK_INT(uh_has("WebSocket, h2c", "websocket"), 1);
    CHECK_INT(uh_has("h2c", "websocket"), 0);
}

/* --- responses (the codec tier: a client reading the server's answer) --- */

static void test_http_parse_response_reads_status_and_headers(void) {
    static const char r[] = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                            "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n\x81\x02hi";
    chat_http_request resp;
    size_t scanned = 0;
    CHECK_INT(chat_http_parse_response(r, sizeof r - 1, 8192, &scanned, &resp), (int)(sizeof r - 1 - 4));
    CHECK_INT(resp.status, 101);
    CHECK_INT(resp.minor, 1);
    CHECK(resp.flags & CHAT_HTTP_CONN_UPGRADE);
    CHECK(uh_span_is(uh_header(&resp, "sec-websocket-accept"), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", r, sizeof r - 1));
    CHECK(uh_span_is(uh_header(&resp, "upgrade"), "websocket", r, sizeof r - 1));
}

static void test_http_parse_response_incremental_and_bad(void) {
    static const char ok[] = "HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n";
    static const char *const bad[] = {"HTTP/1.1 1x1 Odd\r\n\r\n", "HTTP/1.1 99 Low\r\n\r\n", "HTTP/2 200 OK\r\n\r\n",
                                      "GET / HTTP/1.1\r\n\r\n", "HTTP/1.1 200 OK\r\nBad Header\r\n\r\n"};
    chat_http_request resp;
    size_t scanned = 0, i;
    int r = CHAT_HTTP_INCOMPLETE;
    for (i = 1; i <= sizeof ok - 1 && r == CHAT_HTTP_INCOMPLETE; i++) r = chat_http_parse_response(ok, i, 8192, &scanned, &resp);
    CHECK_INT(r, (int)(sizeof ok - 1));
    CHECK_INT(i - 1, sizeof ok - 1); /* complete only with its last byte */
    CHECK_INT(resp.status, 404);
    CHECK_INT(resp.minor, 0);
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        scanned = 0;
        CHECKF(chat_http_parse_response(bad[i], strlen(bad[i]), 8192, &scanned, &resp) == CHAT_HTTP_BAD, "%s", bad[i]);
    }
    scanned = 0;
    CHECK_INT(chat_http_parse_response(UH_S("HTTP/1.1 200 OK\r\nX: aaaaaaaaaaaaaaaaaaaa"), 16, &scanned, &resp),
              CHAT_HTTP_TOO_LARGE);
}

static void unit_http_tests(void) {
    RUN(test_http_parse_browser_upgrade_request);
    RUN(test_http_parse_returns_head_length_only);
    RUN(test_http_parse_trims_value_whitespace);
    RUN(test_http_parse_header_names_any_case);
    RUN(test_http_parse_connection_tokens);
    RUN(test_http_parse_bare_lf_line_endings);
    RUN(test_http_parse_byte_by_byte);
    RUN(test_http_parse_split_inside_final_crlf);
    RUN(test_http_parse_pipelined_requests);
    RUN(test_http_parse_too_large);
    RUN(test_http_parse_malformed_is_bad);
    RUN(test_http_parse_nul_byte_is_bad);
    RUN(test_http_parse_body_flag);
    RUN(test_http_header_counts_repeats);
    RUN(test_http_parse_http10_and_other_methods);
    RUN(test_url_decode);
    RUN(test_query_param);
    RUN(test_token_list_has);
    RUN(test_http_parse_response_reads_status_and_headers);
    RUN(test_http_parse_response_incremental_and_bad);
}
