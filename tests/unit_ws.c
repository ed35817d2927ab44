/* unit_ws.c - the ws layer of chat.h: the handshake key, frame headers, unmasking, and the
   server-side frame decoder fed in one buffer, byte by byte, and in every chunk size. */

#define UW_FIN 0x80u

static const unsigned char uw_mask[4] = {0x37, 0xfa, 0x21, 0x3d};

/* Appends a masked client frame with first byte b0 (FIN | RSV | opcode) and the given payload. */
static void uw_put(chat_buf *s, unsigned b0, const void *payload, size_t n) {
    unsigned char head[CHAT_WS_MAX_HEADER];
    size_t h = chat_ws_header(head, 0, n, uw_mask), i, start;
    head[0] = (unsigned char)b0;
    chat_buf_append(s, head, h);
    start = s->len;
    if (chat_buf_append(s, payload, n) != CHAT_OK) return;
    for (i = 0; i < n; i++) s->data[start + i] ^= uw_mask[i & 3];
}

/* Appends raw bytes (hand-made headers). */
static void uw_raw(chat_buf *s, const char *bytes, size_t n) { chat_buf_append(s, bytes, n); }

/* The decoder driven the way the server drives it: unconsumed bytes are kept and the next input
   is appended to them; decode is called until NEED_MORE or ERROR. Everything is recorded. */
typedef struct uw_run {
    chat_ws_decoder d;
    uint64_t max;
    chat_buf rx;         /* bytes not consumed yet */
    size_t fed;           /* bytes fed so far */
    chat_buf msg;        /* the message being assembled */
    chat_buf done;       /* the last complete message */
    int messages, data_events, headers;
    int cur_opcode, done_opcode, opcode_mismatch; /* of the open / last finished message */
    int pings, pongs, closes;
    chat_buf ping, pong; /* the last payloads */
    size_t ping_at[16];   /* msg.len when each ping arrived */
    int close_code;
    chat_buf close_reason;
    int error;            /* ERROR code, 0 while none */
    size_t error_at;      /* stream index of the last byte fed when the error came */
    int stuck;            /* the decode loop made no progress */
} uw_run;

static void uw_init(uw_run *r, uint64_t max) {
    memset(r, 0, sizeof *r);
    r->max = max;
    chat_buf_reserve(&r->rx, 64);
    chat_buf_reserve(&r->msg, 64);
}

static void uw_free(uw_run *r) {
    chat_buf_free(&r->rx);
    chat_buf_free(&r->msg);
    chat_buf_free(&r->done);
    chat_buf_free(&r->ping);
    chat_buf_free(&r->pong);
    chat_buf_free(&r->close_reason);
}

static void uw_feed(uw_run *r, const unsigned char *p, size_t n) {
    size_t pos = 0, iter, limit;
    if (r->error || chat_buf_append(&r->rx, p, n) != CHAT_OK) return;
    r->fed += n;
    limit = r->rx.len + 2; /* every event but the last consumes at least one byte */
    for (iter = 0;; iter++) {
        chat_ws_event ev;
        if (iter > limit) {
            r->stuck = 1;
            break;
        }
        pos += chat_ws_decode(&r->d, r->rx.data + pos, r->rx.len - pos, r->max, &ev);
        if (ev.type == CHAT_WS_NEED_MORE) break;
        if (ev.type == CHAT_WS_ERROR) {
            r->error = ev.code;
            r->error_at = r->fed - 1;
            break;
        }
        switch (ev.type) {
        case CHAT_WS_NONE: r->headers++; break;
        case CHAT_WS_DATA:
            r->data_events++;
            if (r->cur_opcode == 0) r->cur_opcode = ev.opcode;
            else if (ev.opcode != r->cur_opcode) r->opcode_mismatch++;
            chat_buf_append(&r->msg, ev.data, ev.len);
            if (ev.last) {
                r->done.len = 0;
                chat_buf_append(&r->done, r->msg.data, r->msg.len);
                r->messages++;
                r->msg.len = 0;
                r->done_opcode = r->cur_opcode;
                r->cur_opcode = 0;
            }
            break;
        case CHAT_WS_PING:
            if (r->pings < 16) r->ping_at[r->pings] = r->msg.len;
            r->pings++;
            r->ping.len = 0;
            chat_buf_append(&r->ping, ev.data, ev.len);
            break;
        case CHAT_WS_PONG:
            r->pongs++;
            r->pong.len = 0;
            chat_buf_append(&r->pong, ev.data, ev.len);
            break;
        case CHAT_WS_CLOSE:
            r->closes++;
            r->close_code = ev.code;
            r->close_reason.len = 0;
            chat_buf_append(&r->close_reason, ev.data, ev.len);
            break;
        default: r->stuck = 1; break;
        }
    }
    memmove(r->rx.data, r->rx.data + pos, r->rx.len - pos);
    r->rx.len -= pos;
}

/* Decodes a whole stream fed in chunks of `chunk` bytes (0: all at once). uw_free(r) after. */
static void uw_decode(uw_run *r, const chat_buf *s, uint64_t max, size_t chunk) {
    size_t i;
    uw_init(r, max);
    if (chunk == 0) chunk = s->len ? s->len : 1;
    for (i = 0; i < s->len && !r->error; i += chunk) uw_feed(r, s->data + i, CHAT__MIN(chunk, s->len - i));
}

/* The same message pattern everywhere: printable ASCII, so it is also valid text. */
static unsigned char *uw_pattern(size_t n) {
    unsigned char *p = (unsigned char *)malloc(n ? n : 1);
    size_t i;
    if (p)
        for (i = 0; i < n; i++) p[i] = (unsigned char)('!' + (i * 7 + i / 94) % 94);
    return p;
}

/* --- handshake key, header, unmask --- */

static void test_ws_accept_key_rfc6455_example(void) {
    char out[29];
    memset(out, 'X', sizeof out);
    chat_ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", 24, out);
    CHECK_STR(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    chat_ws_accept_key("x3JJHMbDL1EzLkh9GBhXDw==", 24, out); /* RFC 6455 section 4.2.2 example's key */
    CHECK_STR(out, "HSmrc0sMlYUkAGmm5OPpG2HaGWk=");
}

static void test_ws_header_every_length_class(void) {
    static const struct { uint64_t len; size_t n; const char *bytes; } cases[] = {
        {0, 2, "\x81\x00"},
        {125, 2, "\x81\x7d"},
        {126, 4, "\x81\x7e\x00\x7e"},
        {127, 4, "\x81\x7e\x00\x7f"},
        {65535, 4, "\x81\x7e\xff\xff"},
        {65536, 10, "\x81\x7f\x00\x00\x00\x00\x00\x01\x00\x00"},
        {UINT64_C(4294967297), 10, "\x81\x7f\x00\x00\x00\x01\x00\x00\x00\x01"},
    };
    size_t i;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        unsigned char out[CHAT_WS_MAX_HEADER + 2], expect[CHAT_WS_MAX_HEADER];
        size_t n;
        memset(out, 0xEE, sizeof out);
        n = chat_ws_header(out, CHAT_WS_OP_TEXT, cases[i].len, NULL);
        CHECKF(n == cases[i].n && memcmp(out, cases[i].bytes, n) == 0, "length %llu unmasked",
               (unsigned long long)cases[i].len);
        CHECKF(out[n] == 0xEE, "length %llu: wrote past the header", (unsigned long long)cases[i].len);
        memset(out, 0xEE, sizeof out);
        n = chat_ws_header(out, CHAT_WS_OP_TEXT, cases[i].len, uw_mask);
        memcpy(expect, cases[i].bytes, cases[i].n);
        expect[1] |= 0x80;
        memcpy(expect + cases[i].n, uw_mask, 4);
        CHECKF(n == cases[i].n + 4 && memcmp(out, expect, n) == 0, "length %llu masked",
               (unsigned long long)cases[i].len);
        CHECKF(out[n] == 0xEE, "length %llu masked: wrote past the header", (unsigned long long)cases[i].len);
    }
}

static void test_ws_header_opcodes(void) {
    unsigned char out[CHAT_WS_MAX_HEADER];
    CHECK_INT(chat_ws_header(out, CHAT_WS_OP_CLOSE, 2, NULL), 2);
    CHECK_MEM(out, 2, "\x88\x02", 2);
    CHECK_INT(chat_ws_header(out, CHAT_WS_OP_PING, 0, NULL), 2);
    CHECK_MEM(out, 2, "\x89\x00", 2);
    CHECK_INT(chat_ws_header(out, CHAT_WS_OP_PONG, 5, NULL), 2);
    CHECK_MEM(out, 2, "\x8a\x05", 2);
    CHECK_INT(chat_ws_header(out, CHAT_WS_OP_BINARY, 300, NULL), 4);
    CHECK_MEM(out, 4, "\x82\x7e\x01\x2c", 4);
}

static void test_ws_unmask_every_phase_and_length(void) {
    static const unsigned char mask[4] = {0x12, 0x34, 0xab, 0xcd};
    unsigned char buf[40], ref[40];
    unsigned phase;
    size_t len, off, i;
    for (phase = 0; phase < 4; phase++)
        for (off = 0; off < 8; off++) /* every alignment of the 8-byte path */
            for (len = 0; len <= 20; len++) {
                for (i = 0; i < sizeof buf; i++) buf[i] = ref[i] = (unsigned char)(i * 29 + 3);
                for (i = 0; i < len; i++) ref[off + i] ^= mask[(phase + i) & 3];
                chat_ws_unmask(buf + off, len, mask, phase);
                CHECKF(memcmp(buf, ref, sizeof buf) == 0, "phase %u offset %zu length %zu", phase, off, len);
            }
}

/* Unmasking in pieces at any split equals unmasking at once, when the phase is carried. */
static void test_ws_unmask_in_pieces_matches_whole(void) {
    unsigned char whole[50], pieces[50];
    size_t split, i;
    for (split = 0; split <= 50; split++) {
        for (i = 0; i < 50; i++) whole[i] = pieces[i] = (unsigned char)(i ^ 0x5a);
        chat_ws_unmask(whole, 50, uw_mask, 0);
        chat_ws_unmask(pieces, split, uw_mask, 0);
        chat_ws_unmask(pieces + split, 50 - split, uw_mask, (unsigned)(split & 3));
        CHECKF(memcmp(whole, pieces, 50) == 0, "split at %zu", split);
    }
}

/* --- decoder: data --- */

static const size_t uw_lengths[] = {0, 1, 125, 126, 127, 128, 65535, 65536, 100000};

static void uw_check_one_message(size_t len, size_t chunk, int opcode) {
    unsigned char *payload = uw_pattern(len);
    chat_buf s;
    uw_run r;
    memset(&s, 0, sizeof s);
    if (!payload) return;
    uw_put(&s, UW_FIN | (unsigned)opcode, payload, len);
    uw_decode(&r, &s, 1u << 20, chunk);
    CHECKF(r.error == 0 && !r.stuck, "length %zu chunk %zu: error %d stuck %d", len, chunk, r.error, r.stuck);
    CHECKF(r.messages == 1, "length %zu chunk %zu: %d messages", len, chunk, r.messages);
    CHECKF(r.done.len == len && (len == 0 || memcmp(r.done.data, payload, len) == 0),
           "length %zu chunk %zu: payload differs (%zu bytes)", len, chunk, r.done.len);
    CHECKF(r.done_opcode == opcode && r.opcode_mismatch == 0, "length %zu: opcode %d", len, r.done_opcode);
    CHECKF(r.rx.len == 0, "length %zu chunk %zu: %zu bytes left over", len, chunk, r.rx.len);
    CHECKF(r.pings + r.pongs + r.closes == 0, "length %zu: control events", len);
    uw_free(&r);
    chat_buf_free(&s);
    free(payload);
}

static void test_ws_decode_payload_lengths_one_buffer(void) {
    size_t i;
    for (i = 0; i < sizeof uw_lengths / sizeof uw_lengths[0]; i++) uw_check_one_message(uw_lengths[i], 0, CHAT_WS_OP_TEXT);
}

static void test_ws_decode_payload_lengths_byte_by_byte(void) {
    size_t i;
    for (i = 0; i < sizeof uw_lengths / sizeof uw_lengths[0]; i++) uw_check_one_message(uw_lengths[i], 1, CHAT_WS_OP_TEXT);
}

static void test_ws_decode_payload_lengths_odd_chunks(void) {
    static const size_t chunks[] = {2, 3, 5, 7, 13, 4096};
    size_t i, c;
    for (c = 0; c < sizeof chunks / sizeof chunks[0]; c++)
        for (i = 0; i < sizeof uw_lengths / sizeof uw_lengths[0]; i++)
            uw_check_one_message(uw_lengths[i], chunks[c], CHAT_WS_OP_TEXT);
}

/* Builds a text message from `text` cut at the given points (sorted, within the text). */
static void uw_put_fragments(chat_buf *s, const char *text, size_t n, const size_t *cuts, size_t ncuts) {
    size_t i, from = 0;
    for (i = 0; i <= ncuts; i++) {
        size_t to = i < ncuts ? cuts[i] : n;
        unsigned b0 = (i == 0 ? CHAT_WS_OP_TEXT : CHAT_WS_OP_CONT) | (i == ncuts ? UW_FIN : 0);
        uw_put(s, b0, text + from, to - from);
        from = to;
    }
}

static void test_ws_decode_fragmented_messages(void) {
    static const char text[] = "The quick brown fox jumps over the lazy dog, 0123456789 times.";
    size_t n = sizeof text - 1, many[60], i, chunk;
    for (i = 0; i < 60; i++) many[i] = i - i % 2; /* 61 fragments, every other one empty */
    for (chunk = 0; chunk <= 1; chunk++) {
        static const size_t two[1] = {20};
        const size_t *cut_sets[3];
        size_t counts[3], k;
        cut_sets[0] = NULL, counts[0] = 0;
        cut_sets[1] = two, counts[1] = 1;
        cut_sets[2] = many, counts[2] = 60;
        for (k = 0; k < 3; k++) {
            chat_buf s;
            uw_run r;
            memset(&s, 0, sizeof s);
            uw_put_fragments(&s, text, n, cut_sets[k], counts[k]);
            uw_decode(&r, &s, 1u << 20, chunk);
            CHECKF(r.error == 0 && r.messages == 1, "%zu fragments, chunk %zu: error %d, %d messages", counts[k] + 1,
                   chunk, r.error, r.messages);
            CHECKF(r.done.len == n && memcmp(r.done.data, text, n) == 0, "%zu fragments: message differs",
                   counts[k] + 1);
            CHECKF(r.done_opcode == CHAT_WS_OP_TEXT && r.opcode_mismatch == 0, "%zu fragments: opcode %d",
                   counts[k] + 1, r.done_opcode);
            CHECK_INT(r.rx.len, 0);
            uw_free(&r);
            chat_buf_free(&s);
        }
    }
}

static void test_ws_decode_pings_between_fragments(void) {
    size_t chunk;
    for (chunk = 0; chunk <= 3; chunk++) {
        chat_buf s;
        uw_run r;
        memset(&s, 0, sizeof s);
        uw_put(&s, CHAT_WS_OP_TEXT, "Hel", 3);
        uw_put(&s, UW_FIN | CHAT_WS_OP_PING, "p1", 2);
        uw_put(&s, CHAT_WS_OP_CONT, "lo ", 3);
        uw_put(&s, UW_FIN | CHAT_WS_OP_PONG, "", 0);
        uw_put(&s, UW_FIN | CHAT_WS_OP_PING, "second", 6);
        uw_put(&s, UW_FIN | CHAT_WS_OP_CONT, "world", 5);
        uw_decode(&r, &s, 1u << 20, chunk);
        CHECKF(r.error == 0, "chunk %zu: error %d", chunk, r.error);
        CHECKF(r.pings == 2 && r.pongs == 1, "chunk %zu: %d pings %d pongs", chunk, r.pings, r.pongs);
        CHECKF(r.ping_at[0] == 3 && r.ping_at[1] == 6, "chunk %zu: pings after %zu and %zu bytes", chunk,
               r.ping_at[0], r.ping_at[1]);
        CHECK_MEM(r.ping.data, r.ping.len, "second", 6);
        CHECK_INT(r.pong.len, 0);
        CHECKF(r.messages == 1 && r.done.len == 11 && memcmp(r.done.data, "Hello world", 11) == 0,
               "chunk %zu: %d messages, \"%.*s\"", chunk, r.messages, (int)r.done.len, (const char *)r.done.data);
        uw_free(&r);
        chat_buf_free(&s);
    }
}

static void test_ws_decode_several_messages_in_one_buffer(void) {
    chat_buf s;
    uw_run r;
    memset(&s, 0, sizeof s);
    uw_put(&s, UW_FIN | CHAT_WS_OP_TEXT, "one", 3);
    uw_put(&s, UW_FIN | CHAT_WS_OP_TEXT, "", 0);
    uw_put(&s, UW_FIN | CHAT_WS_OP_PING, "x", 1);
    uw_put(&s, UW_FIN | CHAT_WS_OP_TEXT, "three", 5);
    uw_put(&s, UW_FIN | CHAT_WS_OP_CLOSE, "\x03\xe8", 2);
    uw_decode(&r, &s, 1u << 20, 0);
    CHECK_INT(r.error, 0);
    CHECK_INT(r.messages, 3);
    CHECK_MEM(r.done.data, r.done.len, "three", 5);
    CHECK_INT(r.pings, 1);
    CHECK_INT(r.ping_at[0], 0);
    CHECK_INT(r.closes, 1);
    CHECK_INT(r.close_code, 1000);
    CHECK_INT(r.rx.len, 0);
    uw_free(&r);
    chat_buf_free(&s);
}

/* Any chunking of a stream of mixed frames gives the same events. */
static void test_ws_decode_every_chunk_size_same_result(void) {
    chat_buf s;
    size_t chunk;
    unsigned char *big = uw_pattern(300);
    memset(&s, 0, sizeof s);
    if (!big) return;
    uw_put(&s, CHAT_WS_OP_TEXT, big, 130);
    uw_put(&s, UW_FIN | CHAT_WS_OP_PING, big, 125);
    uw_put(&s, CHAT_WS_OP_CONT, "", 0);
    uw_put(&s, UW_FIN | CHAT_WS_OP_CONT, big + 130, 170);
    uw_put(&s, UW_FIN | CHAT_WS_OP_PONG, "pong", 4);
    uw_put(&s, UW_FIN | CHAT_WS_OP_CLOSE, "\x0f\xa0" "bye", 5); /* 4000 */
    for (chunk = 0; chunk <= 80; chunk++) {
        uw_run r;
        uw_decode(&r, &s, 1u << 20, chunk);
        CHECKF(r.error == 0 && !r.stuck && r.messages == 1 && r.done.len == 300 && memcmp(r.done.data, big, 300) == 0,
               "chunk %zu: error %d, %d messages of %zu bytes", chunk, r.error, r.messages, r.done.len);
        CHECKF(r.pings == 1 && r.ping.len == 125 && memcmp(r.ping.data, big, 125) == 0 && r.ping_at[0] == 130,
               "chunk %zu: ping", chunk);
        CHECKF(r.pongs == 1 && r.pong.len == 4 && memcmp(r.pong.data, "pong", 4) == 0, "chunk %zu: pong", chunk);
        CHECKF(r.closes == 1 && r.close_code == 4000 && r.close_reason.len == 3 &&
                   memcmp(r.close_reason.data, "bye", 3) == 0,
               "chunk %zu: close %d", chunk, r.close_code);
        CHECKF(r.rx.len == 0, "chunk %zu: %zu bytes left", chunk, r.rx.len);
        uw_free(&r);
    }
    chat_buf_free(&s);
    free(big);
}

static void test_ws_decode_binary_frames_are_data(void) {
    unsigned char bin[256];
    chat_buf s;
    uw_run r;
    size_t i, chunk;
    for (i = 0; i < 256; i++) bin[i] = (unsigned char)(255 - i); /* not UTF-8 at all */
    for (chunk = 0; chunk <= 1; chunk++) {
        memset(&s, 0, sizeof s);
        uw_put(&s, UW_FIN | CHAT_WS_OP_BINARY, bin, 256);
        uw_put(&s, CHAT_WS_OP_BINARY, bin, 10);
        uw_put(&s, UW_FIN | CHAT_WS_OP_PING, "", 0);
        uw_put(&s, UW_FIN | CHAT_WS_OP_CONT, bin + 10, 246);
        uw_decode(&r, &s, 1u << 20, chunk);
        CHECKF(r.error == 0 && r.messages == 2, "chunk %zu: error %d, %d messages", chunk, r.error, r.messages);
        CHECK_INT(r.done_opcode, CHAT_WS_OP_BINARY);
        CHECK_INT(r.opcode_mismatch, 0);
        CHECK_MEM(r.done.data, r.done.len, bin, 256);
        uw_free(&r);
        chat_buf_free(&s);
    }
}

/* --- decoder: control frames --- */

static void test_ws_decode_ping_pong_payload_0_and_125(void) {
    static const size_t sizes[] = {0, 1, 124, 125};
    unsigned char *payload = uw_pattern(125);
    size_t i, chunk;
    if (!payload) return;
    for (chunk = 0; chunk <= 1; chunk++)
        for (i = 0; i < 4; i++) {
            chat_buf s;
            uw_run r;
            memset(&s, 0, sizeof s);
            uw_put(&s, UW_FIN | CHAT_WS_OP_PING, payload, sizes[i]);
            uw_put(&s, UW_FIN | CHAT_WS_OP_PONG, payload + 125 - sizes[i], sizes[i]);
            uw_decode(&r, &s, 1u << 20, chunk);
            CHECKF(r.error == 0 && r.pings == 1 && r.pongs == 1, "size %zu: error %d", sizes[i], r.error);
            CHECKF(r.ping.len == sizes[i] && (sizes[i] == 0 || memcmp(r.ping.data, payload, sizes[i]) == 0),
                   "size %zu chunk %zu: ping payload", sizes[i], chunk);
            CHECKF(r.pong.len == sizes[i] && (sizes[i] == 0 || memcmp(r.pong.data, payload + 125 - sizes[i], sizes[i]) == 0),
                   "size %zu chunk %zu: pong payload", sizes[i], chunk);
            CHECK_INT(r.messages, 0);
            uw_free(&r);
            chat_buf_free(&s);
        }
    free(payload);
}

/* A whole control frame is needed before it is reported. */
static void test_ws_decode_control_frame_waits_for_whole_payload(void) {
    chat_buf s;
    uw_run r;
    memset(&s, 0, sizeof s);
    uw_put(&s, UW_FIN | CHAT_WS_OP_PING, "abcdef", 6);
    uw_init(&r, 1000);
    uw_feed(&r, s.data, s.len - 1);
    CHECK_INT(r.pings, 0);
    CHECK_INT(r.rx.len, s.len - 1);
    uw_feed(&r, s.data + s.len - 1, 1);
    CHECK_INT(r.pings, 1);
    CHECK_MEM(r.ping.data, r.ping.len, "abcdef", 6);
    CHECK_INT(r.rx.len, 0);
    uw_free(&r);
    chat_buf_free(&s);
}

static void test_ws_decode_close_without_payload_is_1005(void) {
    chat_buf s;
    uw_run r;
    memset(&s, 0, sizeof s);
    uw_put(&s, UW_FIN | CHAT_WS_OP_CLOSE, "", 0);
    uw_decode(&r, &s, 1000, 0);
    CHECK_INT(r.error, 0);
    CHECK_INT(r.closes, 1);
    CHECK_INT(r.close_code, 1005);
    CHECK_INT(r.close_reason.len, 0);
    uw_free(&r);
    chat_buf_free(&s);
}

static void test_ws_decode_close_with_code_and_reason(void) {
    char big[125];
    chat_buf s;
    uw_run r;
    size_t chunk;
    memset(big, 'r', sizeof big);
    big[0] = 0x0b, big[1] = (char)0xb8; /* 3000 */
    for (chunk = 0; chunk <= 1; chunk++) {
        memset(&s, 0, sizeof s);
        uw_put(&s, UW_FIN | CHAT_WS_OP_CLOSE, "\x03\xe8" "bye", 5);
        uw_decode(&r, &s, 1000, chunk);
        CHECK_INT(r.error, 0);
        CHECK_INT(r.close_code, 1000);
        CHECK_MEM(r.close_reason.data, r.close_reason.len, "bye", 3);
        uw_free(&r);
        chat_buf_free(&s);

        memset(&s, 0, sizeof s);
        uw_put(&s, UW_FIN | CHAT_WS_OP_CLOSE, "\x03\xe9\xe5\x86\x8d\xe8\xa7\x81", 8); /* 1001 "再见" */
        uw_decode(&r, &s, 1000, chunk);
        CHECK_INT(r.error, 0);
        CHECK_INT(r.close_code, 1001);
        CHECK_MEM(r.close_reason.data, r.close_reason.len, "\xe5\x86\x8d\xe8\xa7\x81", 6);
        uw_free(&r);
        chat_buf_free(&s);

        memset(&s, 0, sizeof s);
        uw_put(&s, UW_FIN | CHAT_WS_OP_CLOSE, big, 125);
        uw_decode(&r, &s, 1000, chunk);
        CHECK_INT(r.error, 0);
        CHECK_INT(r.close_code, 3000);
        CHECK_MEM(r.close_reason.data, r.close_reason.len, big + 2, 123);
        uw_free(&r);
        chat_buf_free(&s);
    }
}

/* Runs a stream expected to fail: the ERROR code, and where it came when fed byte by byte. */
static void uw_expect_error(const chat_buf *s, uint64_t max, int code, size_t at, const char *what) {
    uw_run r;
    uw_decode(&r, s, max, 0);
    CHECKF(r.error == code, "%s, one buffer: error %d, expected %d", what, r.error, code);
    uw_free(&r);
    uw_decode(&r, s, max, 1);
    CHECKF(r.error == code, "%s, byte by byte: error %d, expected %d", what, r.error, code);
    if (at != (size_t)-1)
        CHECKF(r.error_at == at, "%s: error at byte %zu, expected %zu", what, r.error_at, at);
    uw_free(&r);
}

static void test_ws_decode_close_with_one_byte_is_1002(void) {
    chat_buf s;
    memset(&s, 0, sizeof s);
    uw_put(&s, UW_FIN | CHAT_WS_OP_CLOSE, "\x03", 1);
    uw_expect_error(&s, 1000, 1002, s.len - 1, "close with 1 byte");
    chat_buf_free(&s);
}

static void test_ws_decode_close_codes(void) {
    static const int bad[] = {0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535};
    static const int good[] = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999,
                               4000, 4999};
    size_t i;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        chat_buf s;
        char payload[2];
        char what[40];
        memset(&s, 0, sizeof s);
        payload[0] = (char)(bad[i] >> 8), payload[1] = (char)(bad[i] & 0xFF);
        uw_put(&s, UW_FIN | CHAT_WS_OP_CLOSE, payload, 2);
        snprintf(what, sizeof what, "close code %d", bad[i]);
        uw_expect_error(&s, 1000, 1002, s.len - 1, what);
        chat_buf_free(&s);
    }
    for (i = 0; i < sizeof good / sizeof good[0]; i++) {
        chat_buf s;
        uw_run r;
        char payload[2];
        memset(&s, 0, sizeof s);
        payload[0] = (char)(good[i] >> 8), payload[1] = (char)(good[i] & 0xFF);
        uw_put(&s, UW_FIN | CHAT_WS_OP_CLOSE, payload, 2);
        uw_decode(&r, &s, 1000, 0);
        CHECKF(r.error == 0 && r.closes == 1 && r.close_code == good[i] && r.close_reason.len == 0,
               "close code %d: error %d, code %d", good[i], r.error, r.close_code);
        uw_free(&r);
        chat_buf_free(&s);
    }
    CHECK_INT(chat_ws_close_code_valid(1000), 1);
    CHECK_INT(chat_ws_close_code_valid(1005), 0);
}

static void test_ws_decode_close_reason_invalid_utf8_is_1007(void) {
    static const char *const reasons[] = {"\x03\xe8\xff", ("\x03\xe8" "ab\xc0\x80"), "\x03\xe8\xe5\x86",
                                          "\x03\xe8\xed\xa0\x80"};
    static const size_t lens[] = {3, 6, 4, 5};
    size_t i;
    for (i = 0; i < 4; i++) {
        chat_buf s;
        memset(&s, 0, sizeof s);
        uw_put(&s, UW_FIN | CHAT_WS_OP_CLOSE, reasons[i], lens[i]);
        uw_expect_error(&s, 1000, 1007, s.len - 1, "close reason not UTF-8");
        chat_buf_free(&s);
    }
}

/* --- decoder: protocol errors --- */

/* Errors visible in the first two bytes are reported from those two bytes alone. */
static void uw_expect_early_1002(unsigned b0, unsigned b1, const char *what) {
    chat_buf s;
    unsigned char two[2];
    uw_run r;
    memset(&s, 0, sizeof s);
    two[0] = (unsigned char)b0, two[1] = (unsigned char)b1;
    chat_buf_append(&s, two, 2);
    uw_decode(&r, &s, 1u << 20, 0);
    CHECKF(r.error == 1002 && r.error_at == 1, "%s (%02x %02x): error %d at %zu", what, b0, b1, r.error, r.error_at);
    uw_free(&r);
    chat_buf_free(&s);
}

static void test_ws_decode_rsv_bits_are_1002(void) {
    static const unsigned rsv[] = {0x40, 0x20, 0x10, 0x70};
    size_t i;
    for (i = 0; i < 4; i++) {
        chat_buf s;
        memset(&s, 0, sizeof s);
        uw_put(&s, UW_FIN | rsv[i] | CHAT_WS_OP_TEXT, "hi", 2);
        uw_expect_error(&s, 1000, 1002, 1, "RSV on text");
        s.len = 0;
        uw_put(&s, UW_FIN | rsv[i] | CHAT_WS_OP_PING, "", 0);
        uw_expect_error(&s, 1000, 1002, 1, "RSV on ping");
        s.len = 0;
        uw_put(&s, CHAT_WS_OP_TEXT, "a", 1);
        uw_put(&s, UW_FIN | rsv[i] | CHAT_WS_OP_CONT, "b", 1);
        uw_expect_error(&s, 1000, 1002, 7 + 1, "RSV on continuation");
        chat_buf_free(&s);
    }
}

static void test_ws_decode_reserved_opcodes_are_1002(void) {
    unsigned op;
    for (op = 3; op <= 0xF; op++) {
        chat_buf s;
        char what[32];
        if (op >= CHAT_WS_OP_CLOSE && op <= CHAT_WS_OP_PONG) continue;
        memset(&s, 0, sizeof s);
        uw_put(&s, UW_FIN | op, "x", 1);
        snprintf(what, sizeof what, "opcode 0x%X", op);
        uw_expect_error(&s, 1000, 1002, 1, what);
        uw_expect_early_1002(UW_FIN | op, 0x80, what);
        chat_buf_free(&s);
    }
}

static void test_ws_decode_unmasked_frame_is_1002(void) {
    chat_buf s;
    memset(&s, 0, sizeof s);
    uw_raw(&s, "\x81\x02hi", 4);
    uw_expect_error(&s, 1000, 1002, 1, "unmasked text");
    s.len = 0;
    uw_raw(&s, "\x89\x00", 2);
    uw_expect_error(&s, 1000, 1002, 1, "unmasked ping");
    s.len = 0;
    uw_raw(&s, "\x88\x02\x03\xe8", 4);
    uw_expect_error(&s, 1000, 1002, 1, "unmasked close");
    chat_buf_free(&s);
}

static void test_ws_decode_control_frame_over_125_is_1002(void) {
    unsigned char *big = uw_pattern(200);
    chat_buf s;
    if (!big) return;
    memset(&s, 0, sizeof s);
    uw_put(&s, UW_FIN | CHAT_WS_OP_PING, big, 126);
    uw_expect_error(&s, 1000, 1002, 1, "ping of 126");
    s.len = 0;
    uw_put(&s, UW_FIN | CHAT_WS_OP_PONG, big, 200);
    uw_expect_error(&s, 1000, 1002, 1, "pong of 200");
    s.len = 0;
    uw_put(&s, UW_FIN | CHAT_WS_OP_CLOSE, big, 126);
    uw_expect_error(&s, 1000, 1002, 1, "close of 126");
    chat_buf_free(&s);
    uw_expect_early_1002(UW_FIN | CHAT_WS_OP_PING, 0x80 | 127, "ping with a 64-bit length");
    free(big);
}

static void test_ws_decode_fragmented_control_frame_is_1002(void) {
    chat_buf s;
    memset(&s, 0, sizeof s);
    uw_put(&s, CHAT_WS_OP_PING, "p", 1);
    uw_expect_error(&s, 1000, 1002, 1, "FIN=0 ping");
    s.len = 0;
    uw_put(&s, CHAT_WS_OP_PONG, "", 0);
    uw_expect_error(&s, 1000, 1002, 1, "FIN=0 pong");
    s.len = 0;
    uw_put(&s, CHAT_WS_OP_CLOSE, "\x03\xe8", 2);
    uw_expect_error(&s, 1000, 1002, 1, "FIN=0 close");
    s.len = 0;
    uw_put(&s, CHAT_WS_OP_TEXT, "ab", 2); /* inside an open message too */
    uw_put(&s, CHAT_WS_OP_PING, "", 0);
    uw_expect_error(&s, 1000, 1002, 8 + 1, "FIN=0 ping inside a message");
    chat_buf_free(&s);
}

static void test_ws_decode_continuation_without_message_is_1002(void) {
    chat_buf s;
    memset(&s, 0, sizeof s);
    uw_put(&s, UW_FIN | CHAT_WS_OP_CONT, "x", 1);
    uw_expect_error(&s, 1000, 1002, 1, "continuation first");
    s.len = 0;
    uw_put(&s, CHAT_WS_OP_CONT, "x", 1);
    uw_expect_error(&s, 1000, 1002, 1, "non-final continuation first");
    s.len = 0;
    uw_put(&s, UW_FIN | CHAT_WS_OP_TEXT, "done", 4); /* 10 bytes */
    uw_put(&s, UW_FIN | CHAT_WS_OP_CONT, "x", 1);
    uw_expect_error(&s, 1000, 1002, 10 + 1, "continuation after a finished message");
    s.len = 0;
    uw_put(&s, CHAT_WS_OP_TEXT, "", 0); /* 6 bytes */
    uw_put(&s, UW_FIN | CHAT_WS_OP_CONT, "", 0); /* 6 bytes: ends it */
    uw_put(&s, UW_FIN | CHAT_WS_OP_CONT, "", 0);
    uw_expect_error(&s, 1000, 1002, 12 + 1, "continuation after an empty fragmented message");
    chat_buf_free(&s);
}

static void test_ws_decode_new_message_inside_fragmented_message_is_1002(void) {
    chat_buf s;
    memset(&s, 0, sizeof s);
    uw_put(&s, CHAT_WS_OP_TEXT, "ab", 2); /* 8 bytes */
    uw_put(&s, UW_FIN | CHAT_WS_OP_TEXT, "cd", 2);
    uw_expect_error(&s, 1000, 1002, 8 + 1, "text inside text");
    s.len = 0;
    uw_put(&s, CHAT_WS_OP_TEXT, "ab", 2);
    uw_put(&s, UW_FIN | CHAT_WS_OP_BINARY, "cd", 2);
    uw_expect_error(&s, 1000, 1002, 8 + 1, "binary inside text");
    s.len = 0;
    uw_put(&s, CHAT_WS_OP_BINARY, "ab", 2);
    uw_put(&s, CHAT_WS_OP_CONT, "cd", 2);
    uw_put(&s, CHAT_WS_OP_TEXT, "ef", 2);
    uw_expect_error(&s, 1000, 1002, 16 + 1, "text inside binary");
    chat_buf_free(&s);
}

/* Hand-made masked headers: 126 + 16-bit or 127 + 64-bit length, then the mask. The error may
   come once the length is known and at the latest with the last mask byte. */
static void uw_expect_length_error(const unsigned char *head, size_t n, const char *what) {
    chat_buf s;
    uw_run r;
    size_t ext_end = head[1] == (0x80 | 126) ? 4 : 10;
    memset(&s, 0, sizeof s);
    chat_buf_append(&s, head, n);
    chat_buf_append(&s, uw_mask, 4);
    uw_decode(&r, &s, UINT64_MAX, 1);
    CHECKF(r.error == 1002 && r.error_at + 1 >= ext_end && r.error_at < ext_end + 4, "%s: error %d at byte %zu", what,
           r.error, r.error_at);
    uw_free(&r);
    uw_decode(&r, &s, UINT64_MAX, 0);
    CHECKF(r.error == 1002, "%s, one buffer: error %d", what, r.error);
    uw_free(&r);
    chat_buf_free(&s);
}

static void test_ws_decode_non_minimal_lengths_are_1002(void) {
    static const unsigned char l16_0[] = {0x81, 0x80 | 126, 0x00, 0x00};
    static const unsigned char l16_125[] = {0x81, 0x80 | 126, 0x00, 0x7d};
    static const unsigned char l64_0[] = {0x81, 0x80 | 127, 0, 0, 0, 0, 0, 0, 0, 0};
    static const unsigned char l64_125[] = {0x81, 0x80 | 127, 0, 0, 0, 0, 0, 0, 0, 125};
    static const unsigned char l64_126[] = {0x81, 0x80 | 127, 0, 0, 0, 0, 0, 0, 0, 126};
    static const unsigned char l64_ffff[] = {0x81, 0x80 | 127, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    uw_expect_length_error(l16_0, 4, "16-bit length 0");
    uw_expect_length_error(l16_125, 4, "16-bit length 125");
    uw_expect_length_error(l64_0, 10, "64-bit length 0");
    uw_expect_length_error(l64_125, 10, "64-bit length 125");
    uw_expect_length_error(l64_126, 10, "64-bit length 126");
    uw_expect_length_error(l64_ffff, 10, "64-bit length 65535");
}

static void test_ws_decode_64bit_length_top_bit_is_1002(void) {
    static const unsigned char top[] = {0x82, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 0};
    static const unsigned char all[] = {0x82, 0x80 | 127, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    uw_expect_length_error(top, 10, "64-bit length 2^63");
    uw_expect_length_error(all, 10, "64-bit length 2^64-1");
}

/* The smallest lengths of each class are fine (the positive side of the minimal-length rule). */
static void test_ws_decode_minimal_lengths_accepted(void) {
    static const unsigned char l16[] = {0x81, 0x80 | 126, 0x00, 0x7e};
    static const unsigned char l64[] = {0x82, 0x80 | 127, 0, 0, 0, 0, 0, 1, 0, 0};
    chat_buf s;
    uw_run r;
    memset(&s, 0, sizeof s);
    chat_buf_append(&s, l16, 4);
    chat_buf_append(&s, uw_mask, 4);
    uw_decode(&r, &s, UINT64_MAX, 0);
    CHECK_INT(r.error, 0);
    CHECK_INT(r.headers, 1);
    uw_free(&r);
    s.len = 0;
    chat_buf_append(&s, l64, 10);
    chat_buf_append(&s, uw_mask, 4);
    uw_decode(&r, &s, UINT64_MAX, 0);
    CHECK_INT(r.error, 0);
    CHECK_INT(r.headers, 1);
    uw_free(&r);
    chat_buf_free(&s);
}

/* --- decoder: max_message --- */

static void test_ws_decode_max_message_single_frame_1009_from_header(void) {
    static const size_t over[] = {101, 300, 70000};
    unsigned char *payload = uw_pattern(70000);
    size_t i;
    if (!payload) return;
    for (i = 0; i < 3; i++) {
        chat_buf s;
        uw_run r;
        size_t head, max = over[i] - 1;
        memset(&s, 0, sizeof s);
        uw_put(&s, UW_FIN | CHAT_WS_OP_TEXT, payload, over[i]);
        head = s.len - over[i];
        uw_init(&r, max);
        uw_feed(&r, s.data, head); /* only the header */
        CHECKF(r.error == 1009, "length %zu over %zu: error %d after the header", over[i], max, r.error);
        CHECK_INT(r.data_events, 0);
        uw_free(&r);
        uw_decode(&r, &s, max, 1);
        CHECKF(r.error == 1009 && r.error_at == head - 1, "length %zu byte by byte: error %d at %zu", over[i], r.error,
               r.error_at);
        uw_free(&r);
        /* exactly at the limit is fine */
        uw_decode(&r, &s, over[i], 0);
        CHECKF(r.error == 0 && r.messages == 1 && r.done.len == over[i], "length %zu at the limit: error %d", over[i],
               r.error);
        uw_free(&r);
        chat_buf_free(&s);
    }
    free(payload);
}

static void test_ws_decode_max_message_fragments_1009_at_limit(void) {
    unsigned char *p = uw_pattern(101);
    chat_buf s;
    uw_run r;
    if (!p) return;
    memset(&s, 0, sizeof s);
    uw_put(&s, CHAT_WS_OP_TEXT, p, 40);                /* 46 bytes */
    uw_put(&s, UW_FIN | CHAT_WS_OP_PING, "x", 1);      /* 7: control frames do not count */
    uw_put(&s, CHAT_WS_OP_CONT, p + 40, 40);           /* 46 */
    uw_put(&s, UW_FIN | CHAT_WS_OP_CONT, p + 80, 21);  /* 27: 101 > 100 */
    uw_decode(&r, &s, 100, 1);
    CHECKF(r.error == 1009 && r.error_at == 46 + 7 + 46 + 6 - 1, "error %d at %zu", r.error, r.error_at);
    CHECKF(r.msg.len == 80 && memcmp(r.msg.data, p, 80) == 0, "%zu bytes delivered before the error", r.msg.len);
    uw_free(&r);
    uw_decode(&r, &s, 100, 0);
    CHECK_INT(r.error, 1009);
    uw_free(&r);
    s.len = 0; /* exactly the limit, then a second message of the full limit: each counts alone */
    uw_put(&s, CHAT_WS_OP_TEXT, p, 40);
    uw_put(&s, CHAT_WS_OP_CONT, p + 40, 40);
    uw_put(&s, UW_FIN | CHAT_WS_OP_CONT, p + 80, 20);
    uw_put(&s, UW_FIN | CHAT_WS_OP_TEXT, p, 100);
    uw_decode(&r, &s, 100, 0);
    CHECKF(r.error == 0 && r.messages == 2 && r.done.len == 100, "at the limit: error %d, %d messages", r.error,
           r.messages);
    uw_free(&r);
    uw_decode(&r, &s, 100, 1);
    CHECKF(r.error == 0 && r.messages == 2 && r.done.len == 100, "at the limit byte by byte: error %d", r.error);
    uw_free(&r);
    chat_buf_free(&s);
    free(p);
}

/* --- decoder: UTF-8 of text messages --- */

/* Fed byte by byte, 1007 comes with the first invalid byte (its index in the stream), in the
   first fragment or a later one. */
static void test_ws_decode_invalid_utf8_1007_at_the_byte(void) {
    chat_buf s;
    memset(&s, 0, sizeof s);
    uw_put(&s, UW_FIN | CHAT_WS_OP_TEXT, "hello \xc0\x80 world", 14);
    uw_expect_error(&s, 1000, 1007, 6 + 6, "overlong in a single frame");
    s.len = 0;
    uw_put(&s, UW_FIN | CHAT_WS_OP_TEXT, "\xff", 1);
    uw_expect_error(&s, 1000, 1007, 6, "0xFF first");
    s.len = 0;
    uw_put(&s, UW_FIN | CHAT_WS_OP_TEXT, "abcdefghijklmnopqrstuvwxyz\xed\xa0\x80", 29);
    uw_expect_error(&s, 1000, 1007, 6 + 27, "surrogate after an ASCII run");
    s.len = 0;
    uw_put(&s, CHAT_WS_OP_TEXT, "abc", 3);                     /* 9 bytes */
    uw_put(&s, UW_FIN | CHAT_WS_OP_CONT, "de\xf5" "f", 4);     /* header 6 */
    uw_expect_error(&s, 1000, 1007, 9 + 6 + 2, "F5 in the second fragment");
    s.len = 0;
    uw_put(&s, CHAT_WS_OP_TEXT, "ab\xe2\x82", 4);              /* 10 bytes: a character left open */
    uw_put(&s, UW_FIN | CHAT_WS_OP_PING, "", 0);               /* 6 */
    uw_put(&s, UW_FIN | CHAT_WS_OP_CONT, "Axyz", 4);           /* 'A' cannot continue it */
    uw_expect_error(&s, 1000, 1007, 10 + 6 + 6, "character broken across fragments");
    chat_buf_free(&s);
}

static void test_ws_decode_text_truncated_at_fin_is_1007(void) {
    chat_buf s;
    memset(&s, 0, sizeof s);
    uw_put(&s, UW_FIN | CHAT_WS_OP_TEXT, "ab\xe2\x82", 4);
    uw_expect_error(&s, 1000, 1007, s.len - 1, "cut in a single frame");
    s.len = 0;
    uw_put(&s, CHAT_WS_OP_TEXT, "ab\xf0\x9f\xa6", 5);
    uw_put(&s, UW_FIN | CHAT_WS_OP_CONT, "", 0);              /* an empty final fragment ends it */
    uw_expect_error(&s, 1000, 1007, s.len - 1, "cut before an empty final fragment");
    s.len = 0;
    uw_put(&s, UW_FIN | CHAT_WS_OP_TEXT, "\xc3", 1);
    uw_expect_error(&s, 1000, 1007, s.len - 1, "lone lead byte");
    chat_buf_free(&s);
}

static void test_ws_decode_multibyte_text_split_across_fragments(void) {
    static const char text[] = "\xc3\xa9\xe2\x82\xac\xf0\x9d\x84\x9e\xf0\x9f\xa6\x95\xe5\x90\x8d!";
    size_t n = sizeof text - 1, k, j, chunk;
    for (chunk = 0; chunk <= 1; chunk++)
        for (k = 0; k <= n; k++)
            for (j = k; j <= n; j++) { /* three fragments: [0,k) [k,j) [j,n) */
                size_t cuts[2];
                chat_buf s;
                uw_run r;
                cuts[0] = k, cuts[1] = j;
                memset(&s, 0, sizeof s);
                uw_put_fragments(&s, text, n, cuts, 2);
                uw_decode(&r, &s, 1000, chunk);
                CHECKF(r.error == 0 && r.messages == 1 && r.done.len == n && memcmp(r.done.data, text, n) == 0,
                       "cuts %zu,%zu chunk %zu: error %d", k, j, chunk, r.error);
                uw_free(&r);
                chat_buf_free(&s);
            }
}

static void test_ws_decode_zero_length_text_message(void) {
    chat_buf s;
    uw_run r;
    memset(&s, 0, sizeof s);
    uw_put(&s, UW_FIN | CHAT_WS_OP_TEXT, "", 0);
    uw_decode(&r, &s, 0, 0); /* even with max_message 0 */
    CHECK_INT(r.error, 0);
    CHECK_INT(r.messages, 1);
    CHECK_INT(r.done.len, 0);
    CHECK_INT(r.done_opcode, CHAT_WS_OP_TEXT);
    uw_free(&r);
    chat_buf_free(&s);
}

/* --- the client side: decoding a server's frames (unmasked = 1) --- */

static void test_ws_decode_unmasked_mode_reads_server_frames(void) {
    unsigned char big_head[CHAT_WS_MAX_HEADER];
    unsigned char *big = uw_pattern(70000);
    chat_buf s;
    uw_run r;
    size_t h, chunk;
    if (!big) return;
    memset(&s, 0, sizeof s);
    uw_raw(&s, "\x81\x02hi", 4);
    uw_raw(&s, "\x89\x01p", 3);
    h = chat_ws_header(big_head, CHAT_WS_OP_TEXT, 70000, NULL);
    chat_buf_append(&s, big_head, h);
    chat_buf_append(&s, big, 70000);
    uw_raw(&s, "\x88\x02\x03\xe8", 4);
    for (chunk = 0; chunk <= 7; chunk += 7) {
        uw_init(&r, 1 << 20);
        r.d.unmasked = 1;
        { size_t i, c = chunk ? chunk : s.len;
          for (i = 0; i < s.len && !r.error; i += c) uw_feed(&r, s.data + i, CHAT__MIN(c, s.len - i)); }
        CHECKF(r.error == 0, "chunk %zu: error %d", chunk, r.error);
        CHECK_INT(r.messages, 2);
        CHECK_INT(r.pings, 1);
        CHECK_INT(r.closes, 1);
        CHECK_INT(r.close_code, 1000);
        CHECK(r.done.len == 70000 && memcmp(r.done.data, big, 70000) == 0);
        uw_free(&r);
    }
    chat_buf_free(&s);
    free(big);
}

/* A client must fail a masked frame from the server (RFC 6455 5.1). */
static void test_ws_decode_unmasked_mode_fails_masked_frames(void) {
    chat_buf s;
    uw_run r;
    memset(&s, 0, sizeof s);
    uw_put(&s, UW_FIN | CHAT_WS_OP_TEXT, "hi", 2);
    uw_init(&r, 1000);
    r.d.unmasked = 1;
    uw_feed(&r, s.data, s.len);
    CHECK_INT(r.error, 1002);
    CHECK_INT(r.messages, 0);
    uw_free(&r);
    chat_buf_free(&s);
}

static void unit_ws_tests(void) {
    RUN(test_ws_accept_key_rfc6455_example);
    RUN(test_ws_header_every_length_class);
    RUN(test_ws_header_opcodes);
    RUN(test_ws_unmask_every_phase_and_length);
    RUN(test_ws_unmask_in_pieces_matches_whole);
    RUN(test_ws_decode_payload_lengths_one_buffer);
    RUN(test_ws_decode_payload_lengths_byte_by_byte);
    RUN(test_ws_decode_payload_lengths_odd_chunks);
    RUN(test_ws_decode_fragmented_messages);
    RUN(test_ws_decode_pings_between_fragments);
    RUN(test_ws_decode_several_messages_in_one_buffer);
    RUN(test_ws_decode_every_chunk_size_same_result);
    RUN(test_ws_decode_binary_frames_are_data);
    RUN(test_ws_decode_ping_pong_payload_0_and_125);
    RUN(test_ws_decode_control_frame_waits_for_whole_payload);
    RUN(test_ws_decode_close_without_payload_is_1005);
    RUN(test_ws_decode_close_with_code_and_reason);
    RUN(test_ws_decode_close_with_one_byte_is_1002);
    RUN(test_ws_decode_close_codes);
    RUN(test_ws_decode_close_reason_invalid_utf8_is_1007);
    RUN(test_ws_decode_rsv_bits_are_1002);
    RUN(test_ws_decode_reserved_opcodes_are_1002);
    RUN(test_ws_decode_unmasked_frame_is_1002);
    RUN(test_ws_decode_control_frame_over_125_is_1002);
    RUN(test_ws_decode_fragmented_control_frame_is_1002);
    RUN(test_ws_decode_continuation_without_message_is_1002);
    RUN(test_ws_decode_new_message_inside_fragmented_message_is_1002);
    RUN(test_ws_decode_non_minimal_lengths_are_1002);
    RUN(test_ws_decode_64bit_length_top_bit_is_1002);
    RUN(test_ws_decode_minimal_lengths_accepted);
    RUN(test_ws_decode_max_message_single_frame_1009_from_header);
    RUN(test_ws_decode_max_message_fragments_1009_at_limit);
    RUN(test_ws_decode_invalid_utf8_1007_at_the_byte);
    RUN(test_ws_decode_text_truncated_at_fin_is_1007);
    RUN(test_ws_decode_multibyte_text_split_across_fragments);
    RUN(test_ws_decode_zero_length_text_message);
    RUN(test_ws_decode_unmasked_mode_reads_server_frames);
    RUN(test_ws_decode_unmasked_mode_fails_masked_frames);
}
