/* unit_json.c - the json layer of chat.h: the JSON.stringify-compatible string encoder, the
   strict validator, the send-message event reader, and the JSONTestSuite conformance corpus. */

#include <dirent.h>
#include <time.h>

#define UJ_S(lit) (lit), sizeof(lit) - 1 /* a string literal and its length (NULs included) */

/* chat_json_put_string of (s, n) into a fresh buffer, compared with the exact expected bytes. */
static int uj_put_is(const char *s, size_t n, const char *expect, size_t expect_n) {
    chat_buf b;
    int ok;
    memset(&b, 0, sizeof b);
    ok = chat_json_put_string(&b, s, n) == CHAT_OK && b.len == expect_n && memcmp(b.data, expect, expect_n) == 0;
    if (!ok) printf("  got: %.*s\n", (int)b.len, b.data ? (const char *)b.data : "");
    chat_buf_free(&b);
    return ok;
}

/* --- encoder --- */

static void test_json_put_string_escapes_like_json_stringify(void) {
    CHECK(uj_put_is(UJ_S(""), UJ_S("\"\"")));
    CHECK(uj_put_is(UJ_S("hello"), UJ_S("\"hello\"")));
    CHECK(uj_put_is(UJ_S("a\"b\\c"), UJ_S("\"a\\\"b\\\\c\"")));
    CHECK(uj_put_is(UJ_S("\b\f\n\r\t"), UJ_S("\"\\b\\f\\n\\r\\t\"")));
    CHECK(uj_put_is(UJ_S("x\"\"y"), UJ_S("\"x\\\"\\\"y\"")));
    CHECK(uj_put_is(UJ_S("\\"), UJ_S("\"\\\\\"")));
    CHECK(uj_put_is(UJ_S("a/b"), UJ_S("\"a/b\""))); /* JSON.stringify leaves '/' alone */
    CHECK(uj_put_is(UJ_S("'single' `back`"), UJ_S("\"'single' `back`\"")));
}

static void test_json_put_string_other_c0_as_lowercase_u00xx(void) {
    static const char *const expect[32] = {
        "\\u0000", "\\u0001", "\\u0002", "\\u0003", "\\u0004", "\\u0005", "\\u0006", "\\u0007",
        "\\b",     "\\t",     "\\n",     "\\u000b", "\\f",     "\\r",     "\\u000e", "\\u000f",
        "\\u0010", "\\u0011", "\\u0012", "\\u0013", "\\u0014", "\\u0015", "\\u0016", "\\u0017",
        "\\u0018", "\\u0019", "\\u001a", "\\u001b", "\\u001c", "\\u001d", "\\u001e", "\\u001f",
    };
    char in[3], want[16];
    int c;
    for (c = 0; c < 32; c++) {
        in[0] = 'a', in[1] = (char)c, in[2] = 'z';
        snprintf(want, sizeof want, "\"a%sz\"", expect[c]);
        CHECKF(uj_put_is(in, 3, want, strlen(want)), "control character 0x%02x", c);
    }
}

static void test_json_put_string_keeps_del_and_non_ascii(void) {
    CHECK(uj_put_is(UJ_S("\x7f"), UJ_S("\"\x7f\"")));
    CHECK(uj_put_is(UJ_S("\xc3\xa9t\xc3\xa9"), UJ_S("\"\xc3\xa9t\xc3\xa9\"")));                 /* été */
    CHECK(uj_put_is(UJ_S("\xe4\xbd\xa0\xe5\xa5\xbd"), UJ_S("\"\xe4\xbd\xa0\xe5\xa5\xbd\"")));   /* 你好 */
    CHECK(uj_put_is(UJ_S("\xf0\x9f\xa6\x95!"), UJ_S("\"\xf0\x9f\xa6\x95!\"")));                 /* 🦕 */
    CHECK(uj_put_is(UJ_S("\xe2\x80\xa8\xe2\x80\xa9"), UJ_S("\"\xe2\x80\xa8\xe2\x80\xa9\"")));   /* U+2028/9 */
    CHECK(uj_put_is(UJ_S("\xc2\x80\xc2\x9f"), UJ_S("\"\xc2\x80\xc2\x9f\"")));                   /* C1 */
}

static void test_json_put_string_leaves_script_tag_alone(void) {
    CHECK(uj_put_is(UJ_S("</script><script>alert(1)</script>"), UJ_S("\"</script><script>alert(1)</script>\"")));
    CHECK(uj_put_is(UJ_S("<!-- & -->"), UJ_S("\"<!-- & -->\"")));
}

static void test_json_put_string_embedded_nul(void) {
    CHECK(uj_put_is(UJ_S("a\0b"), UJ_S("\"a\\u0000b\"")));
    CHECK(uj_put_is(UJ_S("\0"), UJ_S("\"\\u0000\"")));
    CHECK(uj_put_is(UJ_S("\0\0"), UJ_S("\"\\u0000\\u0000\"")));
}

/* It appends after what the buffer holds, and works for long inputs that are all escapes. */
static void test_json_put_string_appends_and_grows(void) {
    chat_buf b;
    char in[1000];
    size_t i;
    int ok = 1;
    memset(&b, 0, sizeof b);
    CHECK_INT(chat_buf_append(&b, "{\"k\":", 5), CHAT_OK);
    CHECK_INT(chat_json_put_string(&b, "v", 1), CHAT_OK);
    CHECK_INT(chat_buf_append(&b, "}", 1), CHAT_OK);
    CHECK_MEM(b.data, b.len, "{\"k\":\"v\"}", 9);
    b.len = 0;
    for (i = 0; i < sizeof in; i++) in[i] = (char)(i % 3 == 0 ? 1 : i % 3 == 1 ? '"' : 'x');
    CHECK_INT(chat_json_put_string(&b, in, sizeof in), CHAT_OK);
    /* 334 x "\u0001" (6) + 333 x "\"" (2) + 333 x "x" (1) + 2 quotes */
    CHECK_INT(b.len, 334 * 6 + 333 * 2 + 333 + 2);
    for (i = 0; i < 1000 && ok; i++) {
        static const char *const piece[3] = {"\\u0001", "\\\"", "x"};
        size_t at = 1 + (i / 3) * 9 + (i % 3 == 0 ? 0 : i % 3 == 1 ? 6 : 8);
        ok = memcmp(b.data + at, piece[i % 3], strlen(piece[i % 3])) == 0;
        CHECKF(ok, "piece %zu at offset %zu", i, at);
    }
    CHECK_INT(b.data[0], '"');
    CHECK_INT(b.data[b.len - 1], '"');
    chat_buf_free(&b);
}

/* --- validator --- */

typedef struct uj_doc {
    const char *s;
    size_t n;
} uj_doc;

#define UJ_D(lit) {(lit), sizeof(lit) - 1}
#define UJ_COUNT(docs) (sizeof(docs) / sizeof((docs)[0]))

/* chat_json_validate gives `want` (0 or -1) for every document of the table. */
static void uj_validate_all(const uj_doc *docs, size_t count, int want) {
    size_t i;
    for (i = 0; i < count; i++)
        CHECKF(chat_json_validate(docs[i].s, docs[i].n) == want, "case %zu (%s) not %s: %s", i,
               want ? "invalid" : "valid", want ? "accepted" : "rejected", docs[i].s);
}

static void test_json_validate_accepts_valid_documents(void) {
    static const uj_doc ok[] = {
        UJ_D("0"), UJ_D("-0"), UJ_D("1e5"), UJ_D("1E+2"), UJ_D("1e-2"), UJ_D("0.5"), UJ_D("-0.0e0"),
        UJ_D("123456789012345678901234567890"), UJ_D("-1.25E-300"), UJ_D("true"), UJ_D("false"),
        UJ_D("null"), UJ_D("\"\""), UJ_D("\"x\""), UJ_D("[]"), UJ_D("{}"), UJ_D(" [ ] "),
        UJ_D("\t\r\n {\t\r\n}\t\r\n"), UJ_D("[1,2,3]"), UJ_D("[1 , 2 ,3 ]"), UJ_D("{\"a\":1,\"b\":[true,false,null]}"),
        UJ_D("{\"a\" : {\"b\" : {\"c\" : \"d\"}}}"), UJ_D("{\"a\":1,\"a\":2}"), UJ_D("{\"\":\"\"}"),
        UJ_D("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u0000\\u00e9\\uD83E\\uDD95\\uffff\""), UJ_D("\"\\ud800\""),
        UJ_D("\"\x7f\""), UJ_D("\"\xc3\xa9\xe5\x90\x8d\xf0\x9f\xa6\x95\""), UJ_D("[[[[[]]]]]"),
        UJ_D("[{\"a\":[{}]}]"), UJ_D("\"</script>\""),
    };
    uj_validate_all(ok, UJ_COUNT(ok), 0);
}

static void test_json_validate_rejects_invalid_numbers(void) {
    static const uj_doc bad[] = {
        UJ_D("01"), UJ_D("-01"), UJ_D("00"), UJ_D("1."), UJ_D(".5"), UJ_D("+1"), UJ_D("-"), UJ_D("--1"),
        UJ_D("1e"), UJ_D("1e+"), UJ_D("1E-"), UJ_D("1.e5"), UJ_D("0x10"), UJ_D("NaN"), UJ_D("-NaN"),
        UJ_D("Infinity"), UJ_D("-Infinity"), UJ_D("1 2"), UJ_D("1_000"), UJ_D("[1.]"), UJ_D("[.5]"),
        UJ_D("[01]"), UJ_D("[+1]"), UJ_D("1.5e5.5"), UJ_D("\xef\xbc\x91"), /* fullwidth 1 */
    };
    uj_validate_all(bad, UJ_COUNT(bad), -1);
}

static void test_json_validate_rejects_invalid_structure(void) {
    static const uj_doc bad[] = {
        UJ_D(""), UJ_D(" "), UJ_D("\t\r\n"), UJ_D("[1,]"), UJ_D("[,1]"), UJ_D("[1,,2]"), UJ_D("{\"a\":1,}"),
        UJ_D("{,}"), UJ_D("{\"a\"}"), UJ_D("{\"a\":}"), UJ_D("{\"a\" 1}"), UJ_D("{a:1}"), UJ_D("{1:1}"),
        UJ_D("{'a':1}"), UJ_D("['a']"), UJ_D("'a'"), UJ_D("[1 2]"), UJ_D("{\"a\":1 \"b\":2}"), UJ_D("["),
        UJ_D("]"), UJ_D("{"), UJ_D("}"), UJ_D("[}"), UJ_D("{]"), UJ_D("[1]]"), UJ_D("{}}"), UJ_D("[] []"),
        UJ_D("[1] x"), UJ_D("{} 1"), UJ_D("nul"), UJ_D("nulll"), UJ_D("True"), UJ_D("NULL"), UJ_D("tru"),
        UJ_D("[1]/* c */"), UJ_D("/* c */[1]"), UJ_D("[1]// c"), UJ_D("# c\n[1]"), UJ_D("[1]\0"),
        UJ_D("\0[1]"), UJ_D("\xef\xbb\xbf[1]"), UJ_D("\xef\xbb\xbf{}"), UJ_D("[\f]"), UJ_D("[\v1]"),
        UJ_D("\xc2\xa0[1]"), UJ_D("undefined"), UJ_D("{\"a\":1}{\"b\":2}"),
    };
    uj_validate_all(bad, UJ_COUNT(bad), -1);
}

static void test_json_validate_rejects_invalid_strings(void) {
    static const uj_doc bad[] = {
        UJ_D("\""), UJ_D("\"abc"), UJ_D("\"abc\\\""), UJ_D("\"\\"), UJ_D("\"a\nb\""), UJ_D("\"a\tb\""),
        UJ_D("\"a\rb\""), UJ_D("\"\x01\""), UJ_D("\"\x1f\""), UJ_D("\"a\0b\""), UJ_D("\"\\x41\""),
        UJ_D("\"\\a\""), UJ_D("\"\\v\""), UJ_D("\"\\'\""), UJ_D("\"\\0\""), UJ_D("\"\\U00e9\""),
        UJ_D("\"\\u\""), UJ_D("\"\\u1\""), UJ_D("\"\\u12\""), UJ_D("\"\\u123\""), UJ_D("\"\\u12g4\""),
        UJ_D("\"\\uzzzz\""), UJ_D("\"\\u 123\""), UJ_D("\"\\u-123\""), UJ_D("\"\\u+123\""), UJ_D("\"\\u12"),
        UJ_D("\"\\ud800\\u\""), UJ_D("\"\\ud800\\uzzzz\""), UJ_D("\"\\\xc3\xa9\""), UJ_D("\"\\\n\""),
        UJ_D("\"\\\t\""),
    };
    uj_validate_all(bad, UJ_COUNT(bad), -1);
}

static void test_json_validate_rejects_invalid_utf8_in_strings(void) {
    static const uj_doc bad[] = {
        UJ_D("\"\x80\""), UJ_D("\"\xc0\x80\""), UJ_D("\"\xc3\""), UJ_D("\"\xc3x\""), UJ_D("\"\xe2\x82\""),
        UJ_D("\"\xed\xa0\x80\""), UJ_D("\"\xf4\x90\x80\x80\""), UJ_D("\"\xff\""), UJ_D("\"\xfe\""),
        UJ_D("\"\xf0\x9f\xa6\""), UJ_D("[\"\xe0\x80\x80\"]"), UJ_D("{\"\xc1\xbf\":1}"),
    };
    uj_validate_all(bad, UJ_COUNT(bad), -1);
}

/* How the server reads a client's event with the JSON layer's walk (chat__conn_message and
   chat__event_text): the last "event" member names it, the last "message" member is its text.
   UJ_INVALID: not JSON; UJ_OTHER: valid but not a send-message with a string message. */
#define UJ_INVALID (-1)
#define UJ_OTHER 0
#define UJ_SEND_MESSAGE 1
static int uj_read_event(const void *s, size_t n, chat_buf *text) {
    chat_span event, message;
    int r = chat_json_get(s, n, "event", &event);
    text->len = 0;
    if (r < 0) return UJ_INVALID;
    if (r == 0 || event.p[0] != '"' || !chat_json_string_is(event, "send-message")) return UJ_OTHER;
    if (chat_json_get(s, n, "message", &message) != 1 || message.p[0] != '"') return UJ_OTHER;
    return chat_json_string(message, text) == 0 ? UJ_SEND_MESSAGE : UJ_INVALID;
}

/* An escape between the bytes of one UTF-8 character must not make the split character valid:
   "\xc3\\n\xa9" is C3, an escaped newline, A9 - two broken sequences, not "é". */
static void test_json_validate_rejects_escape_inside_utf8_sequence(void) {
    chat_buf text;
    CHECK_INT(chat_json_validate(UJ_S("\"\xc3\\n\xa9\"")), -1);
    CHECK_INT(chat_json_validate(UJ_S("\"\xe2\x82\\u0041\xac\"")), -1);
    CHECK_INT(chat_json_validate(UJ_S("[\"\xf0\\\\\x9f\xa6\x95\"]")), -1);
    memset(&text, 0, sizeof text);
    /* read_event would otherwise hand out text that is not UTF-8 (C3 0A A9) */
    CHECK_INT(uj_read_event(UJ_S("{\"event\":\"send-message\",\"message\":\"\xc3\\n\xa9\"}"), &text),
              UJ_INVALID);
    chat_buf_free(&text);
}

/* n nested arrays, or objects {"a":{"a":...}}, around a 0. */
static char *uj_nested(size_t depth, int objects, size_t *len) {
    size_t open = objects ? 5 : 1, i, o = 0;
    char *s = (char *)malloc(depth * (open + 1) + 2);
    if (!s) return NULL;
    for (i = 0; i < depth; i++) {
        if (objects) memcpy(s + o, "{\"a\":", 5);
        else s[o] = '[';
        o += open;
    }
    s[o++] = '0';
    for (i = 0; i < depth; i++) s[o++] = objects ? '}' : ']';
    *len = o;
    return s;
}

static void test_json_validate_depth_limit(void) {
    int objects;
    for (objects = 0; objects < 2; objects++) {
        size_t n;
        char *s = uj_nested(CHAT_JSON_MAX_DEPTH, objects, &n);
        CHECK(s != NULL);
        if (!s) return;
        CHECKF(chat_json_validate(s, n) == 0, "depth %d rejected (objects: %d)", CHAT_JSON_MAX_DEPTH, objects);
        free(s);
        s = uj_nested(CHAT_JSON_MAX_DEPTH + 1, objects, &n);
        CHECK(s != NULL);
        if (!s) return;
        CHECKF(chat_json_validate(s, n) == -1, "depth %d accepted (objects: %d)", CHAT_JSON_MAX_DEPTH + 1, objects);
        free(s);
    }
}

/* Very deep nesting is refused at the limit: no stack overflow, no time spent on the rest. */
static void test_json_validate_very_deep_nesting_rejected_quickly(void) {
    static const size_t depths[] = {10000, 1000000};
    size_t i;
    for (i = 0; i < 2; i++) {
        size_t n;
        char *s = uj_nested(depths[i], i == 1, &n);
        clock_t t0;
        double secs;
        chat_buf text;
        CHECK(s != NULL);
        if (!s) return;
        memset(&text, 0, sizeof text);
        t0 = clock();
        CHECKF(chat_json_validate(s, n) == -1, "depth %zu accepted", depths[i]);
        CHECKF(chat_json_validate(s, depths[i]) == -1, "unclosed depth %zu accepted", depths[i]);
        CHECKF(uj_read_event(s, n, &text) == UJ_INVALID, "read_event: depth %zu not INVALID",
               depths[i]);
        secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
        CHECKF(secs < 1.0, "depth %zu took %.3f s", depths[i], secs);
        chat_buf_free(&text);
        free(s);
    }
}

/* --- uj_read_event --- */

static int uj_event(const char *s, size_t n, chat_buf *text) { return uj_read_event(s, n, text); }

/* uj_read_event gives `want` for every document of the table. */
static void uj_event_all(const uj_doc *docs, size_t count, int want) {
    size_t i;
    chat_buf t;
    memset(&t, 0, sizeof t);
    for (i = 0; i < count; i++) CHECKF(uj_event(docs[i].s, docs[i].n, &t) == want, "case %zu: %s", i, docs[i].s);
    chat_buf_free(&t);
}

static void test_json_event_send_message(void) {
    chat_buf t;
    memset(&t, 0, sizeof t);
    CHECK_INT(uj_event(UJ_S("{\"event\":\"send-message\",\"message\":\"hi\"}"), &t), UJ_SEND_MESSAGE);
    CHECK_MEM(t.data, t.len, "hi", 2);
    /* the text buffer is replaced, not appended to */
    CHECK_INT(uj_event(UJ_S("{\"event\":\"send-message\",\"message\":\"\"}"), &t), UJ_SEND_MESSAGE);
    CHECK_INT(t.len, 0);
    CHECK_INT(uj_event(UJ_S("{\"event\":\"send-message\",\"message\":\"second\"}"), &t), UJ_SEND_MESSAGE);
    CHECK_MEM(t.data, t.len, "second", 6);
    chat_buf_free(&t);
}

static void test_json_event_keys_in_any_order_with_whitespace_and_extras(void) {
    static const uj_doc docs[] = {
        UJ_D("{\"message\":\"hi\",\"event\":\"send-message\"}"),
        UJ_D(" \t\r\n{ \"message\" : \"hi\" ,\n\"event\"\t:\t\"send-message\" }\r\n "),
        UJ_D("{\"a\":1,\"event\":\"send-message\",\"b\":[1,{\"c\":null}],\"message\":\"hi\",\"d\":\"x\"}"),
        UJ_D("{\"username\":\"bob\",\"message\":\"hi\",\"event\":\"send-message\",\"e\":{}}"),
        UJ_D("{\"events\":1,\"event\":\"send-message\",\"messages\":\"no\",\"message\":\"hi\"}"),
    };
    size_t i;
    chat_buf t;
    memset(&t, 0, sizeof t);
    for (i = 0; i < sizeof docs / sizeof docs[0]; i++) {
        int r = uj_event(docs[i].s, docs[i].n, &t);
        CHECKF(r == UJ_SEND_MESSAGE && t.len == 2 && memcmp(t.data, "hi", 2) == 0,
               "case %zu: %d \"%.*s\"", i, r, (int)t.len, t.data ? (const char *)t.data : "");
    }
    chat_buf_free(&t);
}

static void test_json_event_decodes_escapes(void) {
    chat_buf t;
    memset(&t, 0, sizeof t);
    CHECK_INT(uj_event(UJ_S("{\"event\":\"send-message\",\"message\":\"a\\nb\\\"c\\\\d\\/e\\u00e9\\t\\b\\f\\r\"}"), &t),
              UJ_SEND_MESSAGE);
    CHECK_MEM(t.data, t.len, "a\nb\"c\\d/e\xc3\xa9\t\b\f\r", 15);
    CHECK_INT(uj_event(UJ_S("{\"event\":\"send-message\",\"message\":\"\\u0041\\u00E9\\u4f60\\uFFFF\\u0800\\u07ff\"}"), &t),
              UJ_SEND_MESSAGE);
    CHECK_MEM(t.data, t.len, "A\xc3\xa9\xe4\xbd\xa0\xef\xbf\xbf\xe0\xa0\x80\xdf\xbf", 14);
    chat_buf_free(&t);
}

static void test_json_event_surrogate_pair_becomes_4_byte_utf8(void) {
    chat_buf t;
    memset(&t, 0, sizeof t);
    CHECK_INT(uj_event(UJ_S("{\"event\":\"send-message\",\"message\":\"\\ud83e\\udd95\"}"), &t), UJ_SEND_MESSAGE);
    CHECK_MEM(t.data, t.len, "\xf0\x9f\xa6\x95", 4); /* 🦕 */
    CHECK_INT(uj_event(UJ_S("{\"event\":\"send-message\",\"message\":\"x\\uD834\\uDD1Ey\"}"), &t), UJ_SEND_MESSAGE);
    CHECK_MEM(t.data, t.len, "x\xf0\x9d\x84\x9ey", 6); /* 𝄞 */
    CHECK_INT(uj_event(UJ_S("{\"event\":\"send-message\",\"message\":\"\\udbff\\udfff\\ud800\\udc00\"}"), &t),
              UJ_SEND_MESSAGE);
    CHECK_MEM(t.data, t.len, "\xf4\x8f\xbf\xbf\xf0\x90\x80\x80", 8); /* U+10FFFF U+10000 */
    chat_buf_free(&t);
}

static void test_json_event_escaped_nul_kept_with_length(void) {
    chat_buf t;
    memset(&t, 0, sizeof t);
    CHECK_INT(uj_event(UJ_S("{\"event\":\"send-message\",\"message\":\"a\\u0000b\"}"), &t), UJ_SEND_MESSAGE);
    CHECK_MEM(t.data, t.len, "a\0b", 3);
    CHECK_INT(uj_event(UJ_S("{\"event\":\"send-message\",\"message\":\"\\u0000\"}"), &t), UJ_SEND_MESSAGE);
    CHECK_MEM(t.data, t.len, "\0", 1);
    chat_buf_free(&t);
}

static void test_json_event_lone_surrogate_becomes_replacement_char(void) {
    static const struct { uj_doc in; uj_doc out; } cases[] = {
        {UJ_D("\\ud800"), UJ_D("\xef\xbf\xbd")},
        {UJ_D("\\udbff"), UJ_D("\xef\xbf\xbd")},
        {UJ_D("\\udc00"), UJ_D("\xef\xbf\xbd")},
        {UJ_D("\\uDFFF"), UJ_D("\xef\xbf\xbd")},
        {UJ_D("a\\ud83eb"), UJ_D("a\xef\xbf\xbd" "b")},
        {UJ_D("\\ud800\\u0041"), UJ_D("\xef\xbf\xbd" "A")},
        {UJ_D("\\ud800\\ud800"), UJ_D("\xef\xbf\xbd\xef\xbf\xbd")},
        {UJ_D("\\udc00\\ud800"), UJ_D("\xef\xbf\xbd\xef\xbf\xbd")},
        {UJ_D("\\ud800\\n"), UJ_D("\xef\xbf\xbd\n")},
        {UJ_D("\\ud83e\\udd95\\udd95"), UJ_D("\xf0\x9f\xa6\x95\xef\xbf\xbd")},
    };
    char doc[128];
    size_t i;
    chat_buf t;
    memset(&t, 0, sizeof t);
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int r, n = snprintf(doc, sizeof doc, "{\"event\":\"send-message\",\"message\":\"%s\"}", cases[i].in.s);
        r = uj_event(doc, (size_t)n, &t);
        CHECKF(r == UJ_SEND_MESSAGE && t.len == cases[i].out.n && memcmp(t.data, cases[i].out.s, t.len) == 0,
               "case %zu (%s): result %d, %zu bytes", i, cases[i].in.s, r, t.len);
    }
    chat_buf_free(&t);
}

static void test_json_event_escaped_keys_and_values_count(void) {
    chat_buf t;
    memset(&t, 0, sizeof t);
    CHECK_INT(uj_event(UJ_S("{\"\\u0065vent\":\"send-message\",\"m\\u0065ssage\":\"hi\"}"), &t), UJ_SEND_MESSAGE);
    CHECK_MEM(t.data, t.len, "hi", 2);
    CHECK_INT(uj_event(UJ_S("{\"event\":\"send\\u002dmessage\",\"message\":\"hi\"}"), &t), UJ_SEND_MESSAGE);
    CHECK_INT(uj_event(UJ_S("{\"\\u0065\\u0076\\u0065\\u006e\\u0074\":\"\\u0073end-message\",\"message\":\"x\"}"), &t),
              UJ_SEND_MESSAGE);
    CHECK_MEM(t.data, t.len, "x", 1);
    /* the key "event\u0000" is not "event" */
    CHECK_INT(uj_event(UJ_S("{\"event\\u0000\":\"send-message\",\"message\":\"x\"}"), &t), UJ_OTHER);
    chat_buf_free(&t);
}

static void test_json_event_duplicate_keys_last_wins(void) {
    static const struct { uj_doc doc; int expect; const char *text; } cases[] = {
        {UJ_D("{\"event\":\"send-message\",\"message\":\"a\",\"message\":\"b\"}"), UJ_SEND_MESSAGE, "b"},
        {UJ_D("{\"message\":\"a\",\"event\":\"send-message\",\"message\":\"bb\"}"), UJ_SEND_MESSAGE, "bb"},
        {UJ_D("{\"event\":\"send-message\",\"event\":\"other\",\"message\":\"x\"}"), UJ_OTHER, NULL},
        {UJ_D("{\"event\":\"other\",\"event\":\"send-message\",\"message\":\"x\"}"), UJ_SEND_MESSAGE, "x"},
        {UJ_D("{\"event\":\"send-message\",\"message\":\"x\",\"event\":null}"), UJ_OTHER, NULL},
        {UJ_D("{\"event\":1,\"message\":\"x\",\"event\":\"send-message\"}"), UJ_SEND_MESSAGE, "x"},
        {UJ_D("{\"event\":\"send-message\",\"message\":\"a\",\"message\":2}"), UJ_OTHER, NULL},
        {UJ_D("{\"event\":\"send-message\",\"message\":null,\"message\":\"ok\"}"), UJ_SEND_MESSAGE, "ok"},
        {UJ_D("{\"event\":\"send-message\",\"message\":\"long text\",\"message\":\"s\"}"), UJ_SEND_MESSAGE, "s"},
    };
    size_t i;
    chat_buf t;
    memset(&t, 0, sizeof t);
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int r = uj_event(cases[i].doc.s, cases[i].doc.n, &t);
        CHECKF(r == cases[i].expect, "case %zu: %d != %d", i, r, cases[i].expect);
        if (r == UJ_SEND_MESSAGE && cases[i].text)
            CHECKF(t.len == strlen(cases[i].text) && memcmp(t.data, cases[i].text, t.len) == 0,
                   "case %zu: text \"%.*s\" != \"%s\"", i, (int)t.len, (const char *)t.data, cases[i].text);
    }
    chat_buf_free(&t);
}

static void test_json_event_non_string_message_is_other(void) {
    static const uj_doc docs[] = {
        UJ_D("{\"event\":\"send-message\",\"message\":1}"),
        UJ_D("{\"event\":\"send-message\",\"message\":-0.5e3}"),
        UJ_D("{\"event\":\"send-message\",\"message\":null}"),
        UJ_D("{\"event\":\"send-message\",\"message\":true}"),
        UJ_D("{\"event\":\"send-message\",\"message\":false}"),
        UJ_D("{\"event\":\"send-message\",\"message\":{\"text\":\"hi\"}}"),
        UJ_D("{\"event\":\"send-message\",\"message\":[\"hi\"]}"),
        UJ_D("{\"event\":\"send-message\",\"message\":[]}"),
    };
    uj_event_all(docs, UJ_COUNT(docs), UJ_OTHER);
}

static void test_json_event_other_events_and_missing_fields_are_other(void) {
    static const uj_doc docs[] = {
        UJ_D("{\"event\":\"update-users\",\"message\":\"hi\"}"),
        UJ_D("{\"event\":\"Send-Message\",\"message\":\"hi\"}"),
        UJ_D("{\"event\":\"send-message \",\"message\":\"hi\"}"),
        UJ_D("{\"event\":\"send_message\",\"message\":\"hi\"}"),
        UJ_D("{\"event\":\"send-messages\",\"message\":\"hi\"}"),
        UJ_D("{\"event\":\"send-messag\",\"message\":\"hi\"}"),
        UJ_D("{\"event\":\"\",\"message\":\"hi\"}"),
        UJ_D("{\"event\":[\"send-message\"],\"message\":\"hi\"}"),
        UJ_D("{\"Event\":\"send-message\",\"message\":\"hi\"}"),
        UJ_D("{\"event\":\"send-message\",\"Message\":\"hi\"}"),
        UJ_D("{\"event\":\"send-message\"}"),
        UJ_D("{\"message\":\"hi\"}"),
        UJ_D("{\"event\":\"send-message\",\"x\":{\"message\":\"hi\"}}"),
        UJ_D("{}"), UJ_D(" { } "),
        UJ_D("null"), UJ_D("[]"), UJ_D("[{\"event\":\"send-message\",\"message\":\"hi\"}]"),
        UJ_D("\"send-message\""), UJ_D("42"), UJ_D("true"), UJ_D(" false "),
    };
    uj_event_all(docs, UJ_COUNT(docs), UJ_OTHER);
}

static void test_json_event_invalid_json_anywhere_is_invalid(void) {
    static const uj_doc docs[] = {
        UJ_D(""), UJ_D("   "), UJ_D("{"), UJ_D("}"), UJ_D("[1,]"), UJ_D("nul"), UJ_D("{\"event\"}"),
        UJ_D("{\"event\":\"send-message\",\"message\":\"hi\"") /* unclosed */,
        UJ_D("{\"event\":\"send-message\",\"message\":\"hi\",}"),
        UJ_D("{\"event\":\"send-message\",\"message\":\"hi\"} x"),
        UJ_D("{\"event\":\"send-message\",\"message\":\"hi\"}{}"),
        UJ_D("{\"event\":\"send-message\",\"message\":\"hi\" \"x\":1}"),
        UJ_D("{\"event\":\"send-message\",\"message\":\"hi\",\"x\":[1,]}"),
        UJ_D("{\"event\":\"send-message\",\"message\":\"hi\",\"x\":{\"a\" 1}}"),
        UJ_D("{\"x\":{\"a\":01},\"event\":\"send-message\",\"message\":\"hi\"}"),
        UJ_D("{\"event\":\"send-message\",\"message\":\"hi\",\"x\":tru}"),
        UJ_D("{\"event\":\"send-message\",\"message\":\"h\\qi\"}"),
        UJ_D("{\"event\":\"send-message\",\"message\":\"h\\u12g4\"}"),
        UJ_D("{\"event\":\"send-message\",\"message\":\"h\ni\"}"),
        UJ_D("{\"event\":\"send-message\",\"message\":\"h\xc3\"}"),
        UJ_D("{\"event\":\"send-message\",\"message\":\"hi}"),
        UJ_D("{\"event\":\"send-\\message\",\"message\":\"hi\"}"),
        UJ_D("{\"ev\\xent\":\"send-message\",\"message\":\"hi\"}"),
        UJ_D("{event:\"send-message\",\"message\":\"hi\"}"),
        UJ_D("{'event':'send-message','message':'hi'}"),
        UJ_D("{\"event\" \"send-message\",\"message\":\"hi\"}"),
        UJ_D("{\"event\":,\"message\":\"hi\"}"),
        UJ_D("{\"event\":\"send-message\",,\"message\":\"hi\"}"),
        UJ_D("{\"event\":\"send-message\";\"message\":\"hi\"}"),
        UJ_D("\xef\xbb\xbf{\"event\":\"send-message\",\"message\":\"hi\"}"),
        UJ_D("{\"event\":\"send-message\",\"message\":\"hi\"}\0"),
        UJ_D("{\"event\":\"send-message\",\"message\":\"hi\"}/**/"),
    };
    uj_event_all(docs, UJ_COUNT(docs), UJ_INVALID);
}

/* Nested values are validated with the same depth limit as chat_json_validate. */
static void test_json_event_nested_depth_matches_validator(void) {
    char doc[512];
    size_t depth;
    chat_buf t;
    memset(&t, 0, sizeof t);
    for (depth = CHAT_JSON_MAX_DEPTH - 2; depth <= CHAT_JSON_MAX_DEPTH + 1; depth++) {
        /* {"x": + (depth-1) arrays: total nesting = depth */
        size_t i, o = 0;
        int r, v;
        o += (size_t)sprintf(doc + o, "{\"event\":\"send-message\",\"message\":\"hi\",\"x\":");
        for (i = 0; i + 1 < depth; i++) doc[o++] = '[';
        for (i = 0; i + 1 < depth; i++) doc[o++] = ']';
        doc[o++] = '}';
        r = uj_event(doc, o, &t);
        v = chat_json_validate(doc, o);
        CHECKF(v == (depth <= CHAT_JSON_MAX_DEPTH ? 0 : -1), "validate at depth %zu: %d", depth, v);
        CHECKF(r == (depth <= CHAT_JSON_MAX_DEPTH ? UJ_SEND_MESSAGE : UJ_INVALID),
               "read_event at depth %zu: %d", depth, r);
    }
    chat_buf_free(&t);
}

/* --- JSONTestSuite (tests/data/JSONTestSuite/test_parsing) --- */

static char *uj_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    char *data = NULL;
    size_t cap = 0, n = 0;
    if (!f) return NULL;
    for (;;) {
        size_t got;
        if (n == cap) {
            char *p;
            cap = cap ? cap * 2 : 4096;
            p = (char *)realloc(data, cap);
            if (!p) {
                free(data);
                fclose(f);
                return NULL;
            }
            data = p;
        }
        got = fread(data + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    fclose(f);
    *len = n;
    return data;
}

typedef struct uj_suite {
    int files;          /* files with the prefix */
    int accepted;       /* chat_json_validate == 0 */
    int rejected;       /* chat_json_validate == -1 */
    int event_invalid;  /* uj_read_event == INVALID */
    int disagree;       /* read_event INVALID but validate accepted, or the other way round */
    int unreadable;
    char wrong[4096];   /* names of files on the wrong side (for y/n), or disagreeing (for i) */
} uj_suite;

static void uj_note(char *list, const char *name) {
    size_t n = strlen(list);
    if (n + strlen(name) + 2 < 4096) sprintf(list + n, "%s%s", n ? " " : "", name);
}

/* Runs chat_json_validate and uj_read_event on every file whose name starts with
   `prefix`; `want` is 0 (must accept), -1 (must reject) or 1 (either). Returns 0 when the
   directory cannot be opened. */
static int uj_run_suite(char prefix, int want, uj_suite *s) {
    char dir[1024], path[2048];
    DIR *d;
    struct dirent *e;
    chat_buf text;
    memset(s, 0, sizeof *s);
    memset(&text, 0, sizeof text);
    snprintf(dir, sizeof dir, "%s/tests/data/JSONTestSuite/test_parsing", test_root);
    d = opendir(dir);
    if (!d) return 0;
    while ((e = readdir(d)) != NULL) {
        size_t len = 0, nlen = strlen(e->d_name);
        char *data;
        int v, r;
        if (e->d_name[0] != prefix || e->d_name[1] != '_' || nlen < 5 || strcmp(e->d_name + nlen - 5, ".json") != 0)
            continue;
        s->files++;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        data = uj_read_file(path, &len);
        if (!data) {
            s->unreadable++;
            uj_note(s->wrong, e->d_name);
            continue;
        }
        v = chat_json_validate(data, len);
        r = uj_read_event(data, len, &text);
        if (v == 0) s->accepted++;
        else s->rejected++;
        if (r == UJ_INVALID) s->event_invalid++;
        if ((r == UJ_INVALID) != (v != 0)) {
            s->disagree++;
            uj_note(s->wrong, e->d_name);
        } else if (want != 1 && v != want) {
            uj_note(s->wrong, e->d_name);
        }
        free(data);
    }
    closedir(d);
    chat_buf_free(&text);
    return 1;
}

static void test_json_suite_y_files_accepted(void) {
    uj_suite s;
    CHECKF(uj_run_suite('y', 0, &s), "cannot open %s/tests/data/JSONTestSuite/test_parsing", test_root);
    CHECKF(s.files == 95, "%d y_ files, expected 95", s.files);
    CHECKF(s.accepted == s.files && s.event_invalid == 0 && s.disagree == 0 && s.unreadable == 0,
           "%d of %d y_ files accepted, %d INVALID from read_event, %d disagree, %d unreadable; wrong: %s",
           s.accepted, s.files, s.event_invalid, s.disagree, s.unreadable, s.wrong);
    if (test_verbose) printf("     y_: %d files, %d accepted\n", s.files, s.accepted);
}

static void test_json_suite_n_files_rejected(void) {
    uj_suite s;
    CHECKF(uj_run_suite('n', -1, &s), "cannot open %s/tests/data/JSONTestSuite/test_parsing", test_root);
    CHECKF(s.files == 188, "%d n_ files, expected 188", s.files);
    CHECKF(s.rejected == s.files && s.event_invalid == s.files && s.disagree == 0 && s.unreadable == 0,
           "%d of %d n_ files rejected, %d INVALID from read_event, %d unreadable; wrong: %s",
           s.rejected, s.files, s.event_invalid, s.unreadable, s.wrong);
    if (test_verbose) printf("     n_: %d files, %d rejected\n", s.files, s.rejected);
}

/* Implementation-defined: either answer is fine, but no crash, and both functions agree. */
static void test_json_suite_i_files_do_not_crash(void) {
    uj_suite s;
    CHECKF(uj_run_suite('i', 1, &s), "cannot open %s/tests/data/JSONTestSuite/test_parsing", test_root);
    CHECKF(s.files == 35, "%d i_ files, expected 35", s.files);
    CHECKF(s.accepted + s.rejected == s.files && s.unreadable == 0, "%d unreadable: %s", s.unreadable, s.wrong);
    CHECKF(s.disagree == 0, "%d i_ files where read_event and validate disagree: %s", s.disagree, s.wrong);
    if (test_verbose) printf("     i_: %d files, %d accepted, %d rejected\n", s.files, s.accepted, s.rejected);
}

/* --- the generic walk (the codec tier) --- */

/* Each member in document order, key and value as raw tokens; nested values are one token. */
static void test_json_walk_hands_out_members_in_order(void) {
    static const char doc[] = " {\"a\":1, \"b\" : [1,{\"x\":2}], \"c\":{\"d\":\"e\"},\"\\u0066\":true,\"g\":null,\"h\":-0.5e3} ";
    static const char *const keys[] = {"\"a\"", "\"b\"", "\"c\"", "\"\\u0066\"", "\"g\"", "\"h\""};
    static const char *const values[] = {"1", "[1,{\"x\":2}]", "{\"d\":\"e\"}", "true", "null", "-0.5e3"};
    chat_json_walk w;
    chat_span k, v;
    int i;
    CHECK_INT(chat_json_walk_begin(&w, UJ_S(doc)), 0);
    for (i = 0; i < 6; i++) {
        CHECK_INT(chat_json_walk_next(&w, &k, &v), 1);
        CHECKF(k.n == strlen(keys[i]) && memcmp(k.p, keys[i], k.n) == 0, "key %d: %.*s", i, (int)k.n, k.p);
        CHECKF(v.n == strlen(values[i]) && memcmp(v.p, values[i], v.n) == 0, "value %d: %.*s", i, (int)v.n, v.p);
    }
    CHECK_INT(chat_json_walk_next(&w, &k, &v), 0);
    CHECK_INT(chat_json_walk_next(&w, &k, &v), 0); /* done stays done */
    CHECK_INT(chat_json_walk_begin(&w, UJ_S("{}")), 0);
    CHECK_INT(chat_json_walk_next(&w, &k, &v), 0);
}

/* Not an object, or broken anywhere (also after members already handed out): -1. */
static void test_json_walk_rejects_what_is_not_one_object(void) {
    static const char *const not_objects[] = {"[1]", "\"s\"", "1", "", "  "};
    static const char *const broken[] = {"{\"a\":1,}", "{\"a\":1} x", "{\"a\":1,\"b\":}", "{\"a\":1", "{\"a\":1}}",
                                         "{\"a\" 1}", "{a:1}", "{\"a\":1,\"b\":[1,}"};
    chat_json_walk w;
    chat_span k, v;
    size_t i;
    for (i = 0; i < sizeof not_objects / sizeof not_objects[0]; i++)
        CHECKF(chat_json_walk_begin(&w, not_objects[i], strlen(not_objects[i])) == -1, "%s", not_objects[i]);
    for (i = 0; i < sizeof broken / sizeof broken[0]; i++) {
        int r, steps = 0;
        CHECK_INT(chat_json_walk_begin(&w, broken[i], strlen(broken[i])), 0);
        while ((r = chat_json_walk_next(&w, &k, &v)) == 1 && steps < 10) steps++;
        CHECKF(r == -1, "%s: walk ended with %d", broken[i], r);
    }
}

/* get: the last member of that name (JSON.parse keeps the last), found by its decoded key. */
static void test_json_get_last_key_wins_and_keys_are_decoded(void) {
    chat_span v;
    CHECK_INT(chat_json_get(UJ_S("{\"k\":1,\"k\":\"two\"}"), "k", &v), 1);
    CHECK(v.n == 5 && memcmp(v.p, "\"two\"", 5) == 0);
    CHECK(chat_json_string_is(v, "two"));
    CHECK_INT(chat_json_get(UJ_S("{\"\\u006b\":true}"), "k", &v), 1);
    CHECK(v.n == 4 && memcmp(v.p, "true", 4) == 0);
    CHECK_INT(chat_json_get(UJ_S("{\"kk\":1,\"o\":{\"k\":2}}"), "k", &v), 0); /* nested keys do not count */
    CHECK_INT(chat_json_get(UJ_S("[{\"k\":1}]"), "k", &v), 0);                 /* valid, not an object */
    CHECK_INT(chat_json_get(UJ_S("{\"k\":1,}"), "k", &v), -1);
    CHECK_INT(chat_json_get(UJ_S("{\"k\":1} {\"k\":2}"), "k", &v), -1);
}

/* string_is compares the decoded text, whole: escapes count as what they mean. */
static void test_json_string_is_compares_decoded_text(void) {
    chat_span t;
    t.p = "\"a\\u00e9\\n\"";
    t.n = strlen(t.p);
    CHECK(chat_json_string_is(t, "a\xc3\xa9\n"));
    CHECK(!chat_json_string_is(t, "a\xc3\xa9"));
    CHECK(!chat_json_string_is(t, "a\xc3\xa9\nx"));
    t.p = "\"\"";
    t.n = 2;
    CHECK(chat_json_string_is(t, ""));
    CHECK(!chat_json_string_is(t, "x"));
    t.p = "12";
    CHECK(!chat_json_string_is(t, "12")); /* a number token is not a string */
}

static void unit_json_tests(void) {
    RUN(test_json_put_string_escapes_like_json_stringify);
    RUN(test_json_put_string_other_c0_as_lowercase_u00xx);
    RUN(test_json_put_string_keeps_del_and_non_ascii);
    RUN(test_json_put_string_leaves_script_tag_alone);
    RUN(test_json_put_string_embedded_nul);
    RUN(test_json_put_string_appends_and_grows);
    RUN(test_json_validate_accepts_valid_documents);
    RUN(test_json_validate_rejects_invalid_numbers);
    RUN(test_json_validate_rejects_invalid_structure);
    RUN(test_json_validate_rejects_invalid_strings);
    RUN(test_json_validate_rejects_invalid_utf8_in_strings);
    RUN(test_json_validate_rejects_escape_inside_utf8_sequence);
    RUN(test_json_validate_depth_limit);
    RUN(test_json_validate_very_deep_nesting_rejected_quickly);
    RUN(test_json_event_send_message);
    RUN(test_json_event_keys_in_any_order_with_whitespace_and_extras);
    RUN(test_json_event_decodes_escapes);
    RUN(test_json_event_surrogate_pair_becomes_4_byte_utf8);
    RUN(test_json_event_escaped_nul_kept_with_length);
    RUN(test_json_event_lone_surrogate_becomes_replacement_char);
    RUN(test_json_event_escaped_keys_and_values_count);
    RUN(test_json_event_duplicate_keys_last_wins);
    RUN(test_json_event_non_string_message_is_other);
    RUN(test_json_event_other_events_and_missing_fields_are_other);
    RUN(test_json_event_invalid_json_anywhere_is_invalid);
    RUN(test_json_event_nested_depth_matches_validator);
    RUN(test_json_suite_y_files_accepted);
    RUN(test_json_suite_n_files_rejected);
    RUN(test_json_suite_i_files_do_not_crash);
    RUN(test_json_walk_hands_out_members_in_order);
    RUN(test_json_walk_rejects_what_is_not_one_object);
    RUN(test_json_get_last_key_wins_and_keys_are_decoded);
    RUN(test_json_string_is_compares_decoded_text);
}
