/* unit_mqtt.c - the MQTT 3.1.1 codec of chat.h (chat_mqtt_*): every packet the bridge sends or
   receives, byte for byte against the standard's layouts; the remaining length at each of its
   size boundaries; a packet fed one byte at a time; and what the parser must refuse. Part of
   tests/run_tests, so it also runs under make cross (mips is big-endian). */

#ifndef CHAT_NO_MQTT

static chat_span um_span(const char *s) {
    chat_span v;
    v.p = s, v.n = s ? strlen(s) : 0;
    return v;
}

static chat_buf um_last; /* the bytes of the last um_put_parse: back's spans point into them */

/* Encodes p and checks the bytes; then parses them back, whole and in every prefix. */
static long um_put_parse(const chat_mqtt_packet *p, const void *want, size_t want_n, chat_mqtt_packet *back) {
    chat_buf *b = &um_last;
    long r;
    size_t k;
    b->len = 0;
    CHECK_INT(chat_mqtt_put(b, p), CHAT_OK);
    CHECK_MEM(b->data, b->len, want, want_n);
    for (k = 0; k < b->len; k++) CHECK_INT(chat_mqtt_parse(b->data, k, CHAT_MQTT_MAX_LENGTH, back), CHAT_MQTT_INCOMPLETE);
    r = chat_mqtt_parse(b->data, b->len, CHAT_MQTT_MAX_LENGTH, back);
    CHECK_INT(r, (long)b->len);
    return r;
}

static void test_mqtt_length_boundaries(void) {
    static const struct {
        size_t n;
        int bytes;
        unsigned char enc[4];
    } v[] = {{0, 1, {0x00}},
             {127, 1, {0x7F}},
             {128, 2, {0x80, 0x01}},
             {16383, 2, {0xFF, 0x7F}},
             {16384, 3, {0x80, 0x80, 0x01}},
             {2097151, 3, {0xFF, 0xFF, 0x7F}},
             {2097152, 4, {0x80, 0x80, 0x80, 0x01}},
             {268435455, 4, {0xFF, 0xFF, 0xFF, 0x7F}}};
    size_t i;
    for (i = 0; i < sizeof v / sizeof v[0]; i++) {
        unsigned char out[4], pkt[5];
        chat_mqtt_packet p;
        size_t k = chat_mqtt_length_put(out, v[i].n);
        CHECK_INT(k, v[i].bytes);
        CHECK_MEM(out, k, v[i].enc, (size_t)v[i].bytes);
        /* a PUBLISH head with this length: the parser reads the same number back (as too large
           for a bound one below it, incomplete for a bound at it) */
        pkt[0] = 0x30;
        memcpy(pkt + 1, out, k);
        if (v[i].n) CHECK_INT(chat_mqtt_parse(pkt, 1 + k, v[i].n - 1, &p), CHAT_MQTT_TOO_LARGE);
        CHECK_INT(chat_mqtt_parse(pkt, 1 + k, v[i].n, &p), v[i].n ? CHAT_MQTT_INCOMPLETE : CHAT_MQTT_BAD);
    }
}

static void test_mqtt_length_fifth_byte_is_bad(void) {
    static const unsigned char five[] = {0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01};
    chat_mqtt_packet p;
    CHECK_INT(chat_mqtt_parse(five, sizeof five, CHAT_MQTT_MAX_LENGTH, &p), CHAT_MQTT_BAD);
    CHECK_INT(chat_mqtt_parse(five, 4, CHAT_MQTT_MAX_LENGTH, &p), CHAT_MQTT_INCOMPLETE);
    CHECK_INT(chat_mqtt_parse(five, 5, CHAT_MQTT_MAX_LENGTH, &p), CHAT_MQTT_BAD);
}

/* CONNECT as the bridge sends it: persistent session, keep-alive, a zero-length retained will,
   user name and password (MQTT-3.1, figure 3.1 onwards). */
static void test_mqtt_connect_with_will_and_credentials(void) {
    static const unsigned char want[] = {
        0x10, 0x2A,                                           /* CONNECT, remaining length 42 */
        0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04,                 /* protocol name and level 4 */
        0xE4,                                                 /* user, password, will retain, will QoS 0... */
        0x00, 0x1E,                                           /* keep-alive 30 s */
        0x00, 0x03, 'b', '-', '1',                            /* client id */
        0x00, 0x0B, 'c', 'h', 'a', 't', '/', 'u', 's', 'e', 'r', 's', '/', /* will topic, 11 bytes */
        0x00, 0x00,                                           /* will message: empty */
        0x00, 0x05, 'a', 'l', 'i', 'c', 'e',                  /* user name */
        0x00, 0x03, 's', '3', 'c'};                           /* password */
    chat_mqtt_packet p, back;
    memset(&p, 0, sizeof p);
    p.type = CHAT_MQTT_CONNECT;
    p.connect.client_id = um_span("b-1");
    p.connect.username = um_span("alice");
    p.connect.password = um_span("s3c");
    p.connect.will_topic = um_span("chat/users/");
    p.connect.will_message.p = "", p.connect.will_message.n = 0;
    p.connect.will_retain = 1;
    p.connect.keep_alive = 30;
    um_put_parse(&p, want, sizeof want, &back);
    CHECK_INT(back.type, CHAT_MQTT_CONNECT);
    CHECK_INT(back.connect.keep_alive, 30);
    CHECK_INT(back.connect.clean_session, 0);
    CHECK_INT(back.connect.will_retain, 1);
    CHECK_INT(back.connect.will_qos, 0);
    CHECK_INT(back.connect.client_id.n, 3);
    CHECK_INT(back.connect.will_topic.n, 11);
    CHECK_INT(back.connect.will_message.n, 0);
    CHECK_INT(back.connect.username.n, 5);
    CHECK_INT(back.connect.password.n, 3);
}

static void test_mqtt_connect_minimal_clean_session(void) {
    static const unsigned char want[] = {0x10, 0x0D, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x02, 0x00, 0x00, 0x00, 0x01, 'x'};
    chat_mqtt_packet p, back;
    memset(&p, 0, sizeof p);
    p.type = CHAT_MQTT_CONNECT;
    p.connect.client_id = um_span("x");
    p.connect.clean_session = 1;
    um_put_parse(&p, want, sizeof want, &back);
    CHECK_INT(back.connect.clean_session, 1);
    CHECK(back.connect.username.p == NULL && back.connect.password.p == NULL && back.connect.will_topic.p == NULL);
}

static void test_mqtt_connect_refusals(void) {
    chat_mqtt_packet p, back;
    chat_buf b;
    unsigned char bad[15] = {0x10, 0x0D, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x02, 0x00, 0x00, 0x00, 0x01, 'x'};
    memset(&b, 0, sizeof b);
    memset(&p, 0, sizeof p);
    p.type = CHAT_MQTT_CONNECT;
    p.connect.client_id = um_span("x");
    p.connect.password = um_span("pw"); /* a password without a user name (MQTT-3.1.2-22) */
    CHECK_INT(chat_mqtt_put(&b, &p), CHAT_EINVAL);
    p.connect.password.p = NULL;
    p.connect.will_topic = um_span("a/+/b"); /* a wildcard in a will topic */
    CHECK_INT(chat_mqtt_put(&b, &p), CHAT_EINVAL);
    p.connect.will_topic = um_span("a/b"), p.connect.will_qos = 3;
    CHECK_INT(chat_mqtt_put(&b, &p), CHAT_EINVAL);
    CHECK_INT(b.len, 0); /* nothing written by a refusal */
    bad[9] = 0x03; /* the reserved flag */
    CHECK_INT(chat_mqtt_parse(bad, sizeof bad, 100, &back), CHAT_MQTT_BAD);
    bad[9] = 0x42; /* password without user name */
    CHECK_INT(chat_mqtt_parse(bad, sizeof bad, 100, &back), CHAT_MQTT_BAD);
    bad[9] = 0x0A; /* will QoS 1 without a will */
    CHECK_INT(chat_mqtt_parse(bad, sizeof bad, 100, &back), CHAT_MQTT_BAD);
    bad[9] = 0x02, bad[8] = 0x03; /* protocol level 3 (MQTT 3.1) */
    CHECK_INT(chat_mqtt_parse(bad, sizeof bad, 100, &back), CHAT_MQTT_BAD);
    bad[8] = 0x04, bad[7] = 'X';
    CHECK_INT(chat_mqtt_parse(bad, sizeof bad, 100, &back), CHAT_MQTT_BAD);
    bad[7] = 'T', bad[1] = 0x0E; /* a byte left over */
    CHECK_INT(chat_mqtt_parse(bad, sizeof bad, 100, &back), CHAT_MQTT_INCOMPLETE);
    chat_buf_free(&b);
}

static void test_mqtt_connack(void) {
    static const unsigned char ok[] = {0x20, 0x02, 0x01, 0x00}, refused[] = {0x20, 0x02, 0x00, 0x04};
    static const unsigned char both[] = {0x20, 0x02, 0x01, 0x05}, flags[] = {0x20, 0x02, 0x02, 0x00};
    chat_mqtt_packet p, back;
    memset(&p, 0, sizeof p);
    p.type = CHAT_MQTT_CONNACK, p.session_present = 1;
    um_put_parse(&p, ok, sizeof ok, &back);
    CHECK_INT(back.session_present, 1);
    CHECK_INT(back.return_code, 0);
    p.session_present = 0, p.return_code = 4;
    um_put_parse(&p, refused, sizeof refused, &back);
    CHECK_INT(back.return_code, 4);
    CHECK_STR(chat_mqtt_connack_reason(4), "bad user name or password");
    CHECK_STR(chat_mqtt_connack_reason(5), "not authorized");
    CHECK_INT(chat_mqtt_parse(both, sizeof both, 10, &back), CHAT_MQTT_BAD); /* refused with a session */
    CHECK_INT(chat_mqtt_parse(flags, sizeof flags, 10, &back), CHAT_MQTT_BAD); /* reserved ack flags */
}

static void test_mqtt_publish_qos0_and_qos1_retained(void) {
    static const unsigned char q0[] = {0x30, 0x07, 0x00, 0x03, 'a', '/', 'b', 'h', 'i'};
    static const unsigned char q1r[] = {0x33, 0x09, 0x00, 0x03, 'a', '/', 'b', 0x12, 0x34, 'h', 'i'};
    static const unsigned char dup[] = {0x3A, 0x07, 0x00, 0x01, 't', 0xFF, 0xFF, 'x', 'y'};
    chat_mqtt_packet p, back;
    memset(&p, 0, sizeof p);
    p.type = CHAT_MQTT_PUBLISH, p.topic = um_span("a/b"), p.payload = um_span("hi");
    um_put_parse(&p, q0, sizeof q0, &back);
    CHECK_INT(back.qos, 0);
    CHECK_INT(back.id, 0);
    p.qos = 1, p.retain = 1, p.id = 0x1234;
    um_put_parse(&p, q1r, sizeof q1r, &back);
    CHECK_INT(back.qos, 1);
    CHECK_INT(back.retain, 1);
    CHECK_INT(back.dup, 0);
    CHECK_INT(back.id, 0x1234);
    CHECK_INT(back.topic.n, 3);
    CHECK_INT(back.payload.n, 2);
    p.topic = um_span("t"), p.payload = um_span("xy"), p.retain = 0, p.dup = 1, p.id = 0xFFFF;
    um_put_parse(&p, dup, sizeof dup, &back);
    CHECK_INT(back.dup, 1);
    CHECK_INT(back.id, 0xFFFF);
}

/* A zero-length retained message: what the will and a clean stop leave (MQTT-3.3.1-10). */
static void test_mqtt_publish_empty_payload(void) {
    static const unsigned char want[] = {0x33, 0x05, 0x00, 0x01, 'u', 0x00, 0x07};
    chat_mqtt_packet p, back;
    memset(&p, 0, sizeof p);
    p.type = CHAT_MQTT_PUBLISH, p.topic = um_span("u"), p.qos = 1, p.retain = 1, p.id = 7;
    um_put_parse(&p, want, sizeof want, &back);
    CHECK_INT(back.payload.n, 0);
}

static void test_mqtt_publish_big_payload_length(void) {
    chat_mqtt_packet p, back;
    chat_buf b;
    static char big[20000];
    long r;
    memset(big, 'z', sizeof big);
    memset(&b, 0, sizeof b);
    memset(&p, 0, sizeof p);
    p.type = CHAT_MQTT_PUBLISH, p.topic = um_span("t/x"), p.qos = 1, p.id = 1;
    p.payload.p = big, p.payload.n = sizeof big;
    CHECK_INT(chat_mqtt_put(&b, &p), CHAT_OK);
    CHECK_INT(b.len, 1 + 3 + 2 + 3 + 2 + sizeof big); /* 20,007 needs three length bytes */
    CHECK_INT(b.data[1], 0x80 | (20007 & 127));
    r = chat_mqtt_parse(b.data, b.len, 20007, &back);
    CHECK_INT(r, (long)b.len);
    CHECK_INT(back.payload.n, sizeof big);
    CHECK(back.payload.p == (const char *)b.data + 11);
    CHECK_INT(chat_mqtt_parse(b.data, 4, 20006, &back), CHAT_MQTT_TOO_LARGE); /* from the head alone */
    chat_buf_free(&b);
}

static void test_mqtt_publish_refusals(void) {
    chat_mqtt_packet p, back;
    chat_buf b;
    static const unsigned char qos3[] = {0x36, 0x05, 0x00, 0x01, 't', 0x00, 0x01};
    static const unsigned char dup0[] = {0x38, 0x03, 0x00, 0x01, 't'};
    static const unsigned char id0[] = {0x32, 0x05, 0x00, 0x01, 't', 0x00, 0x00};
    static const unsigned char wild[] = {0x30, 0x03, 0x00, 0x01, '#'};
    static const unsigned char empty_topic[] = {0x30, 0x02, 0x00, 0x00};
    static const unsigned char nul[] = {0x30, 0x04, 0x00, 0x02, 'a', 0x00};
    static const unsigned char bad_utf8[] = {0x30, 0x04, 0x00, 0x02, 0xC0, 0xAF};
    static const unsigned char short_topic[] = {0x30, 0x03, 0x00, 0x05, 'a'};
    static const unsigned char no_id[] = {0x32, 0x04, 0x00, 0x01, 't', 0x01};
    memset(&b, 0, sizeof b);
    memset(&p, 0, sizeof p);
    p.type = CHAT_MQTT_PUBLISH, p.topic = um_span("a/+");
    CHECK_INT(chat_mqtt_put(&b, &p), CHAT_EINVAL);
    p.topic = um_span("a"), p.qos = 1, p.id = 0;
    CHECK_INT(chat_mqtt_put(&b, &p), CHAT_EINVAL);
    p.qos = 3, p.id = 1;
    CHECK_INT(chat_mqtt_put(&b, &p), CHAT_EINVAL);
    p.qos = 0, p.dup = 1;
    CHECK_INT(chat_mqtt_put(&b, &p), CHAT_EINVAL);
    CHECK_INT(b.len, 0);
    CHECK_INT(chat_mqtt_parse(qos3, sizeof qos3, 100, &back), CHAT_MQTT_BAD);
    CHECK_INT(chat_mqtt_parse(dup0, sizeof dup0, 100, &back), CHAT_MQTT_BAD);
    CHECK_INT(chat_mqtt_parse(id0, sizeof id0, 100, &back), CHAT_MQTT_BAD);
    CHECK_INT(chat_mqtt_parse(wild, sizeof wild, 100, &back), CHAT_MQTT_BAD);
    CHECK_INT(chat_mqtt_parse(empty_topic, sizeof empty_topic, 100, &back), CHAT_MQTT_BAD);
    CHECK_INT(chat_mqtt_parse(nul, sizeof nul, 100, &back), CHAT_MQTT_BAD);
    CHECK_INT(chat_mqtt_parse(bad_utf8, sizeof bad_utf8, 100, &back), CHAT_MQTT_BAD);
    CHECK_INT(chat_mqtt_parse(short_topic, sizeof short_topic, 100, &back), CHAT_MQTT_BAD);
    CHECK_INT(chat_mqtt_parse(no_id, sizeof no_id, 100, &back), CHAT_MQTT_BAD);
    chat_buf_free(&b);
}

static void test_mqtt_acks(void) {
    static const unsigned char puback[] = {0x40, 0x02, 0x01, 0x02}, pubrel[] = {0x62, 0x02, 0x00, 0x09};
    static const unsigned char unsuback[] = {0xB0, 0x02, 0x00, 0x03};
    static const unsigned char long_ack[] = {0x40, 0x03, 0x00, 0x01, 0x00}, zero_ack[] = {0x40, 0x02, 0x00, 0x00};
    static const unsigned char pubrel_flags[] = {0x60, 0x02, 0x00, 0x01};
    chat_mqtt_packet p, back;
    chat_buf b;
    memset(&b, 0, sizeof b);
    memset(&p, 0, sizeof p);
    p.type = CHAT_MQTT_PUBACK, p.id = 0x0102;
    um_put_parse(&p, puback, sizeof puback, &back);
    CHECK_INT(back.id, 0x0102);
    p.type = CHAT_MQTT_PUBREL, p.id = 9;
    um_put_parse(&p, pubrel, sizeof pubrel, &back);
    p.type = CHAT_MQTT_UNSUBACK, p.id = 3;
    um_put_parse(&p, unsuback, sizeof unsuback, &back);
    p.type = CHAT_MQTT_PUBACK, p.id = 0;
    CHECK_INT(chat_mqtt_put(&b, &p), CHAT_EINVAL);
    CHECK_INT(chat_mqtt_parse(long_ack, sizeof long_ack, 100, &back), CHAT_MQTT_BAD);
    CHECK_INT(chat_mqtt_parse(zero_ack, sizeof zero_ack, 100, &back), CHAT_MQTT_BAD);
    CHECK_INT(chat_mqtt_parse(pubrel_flags, sizeof pubrel_flags, 100, &back), CHAT_MQTT_BAD); /* must be 0010 */
    chat_buf_free(&b);
}

static void test_mqtt_subscribe_and_suback(void) {
    static const unsigned char sub[] = {0x82, 0x18, 0x00, 0x05,                                  /* id 5 */
                                        0x00, 0x08, 'c', 'h', 'a', 't', '/', 'm', '/', '+', 0x01, /* QoS 1 */
                                        0x00, 0x08, 'c', 'h', 'a', 't', '/', 'u', '/', '+', 0x01};
    static const unsigned char suback[] = {0x90, 0x04, 0x00, 0x05, 0x01, 0x80};
    chat_mqtt_packet p, back;
    chat_buf payload;
    chat_span rest, f = {NULL, 0};
    memset(&payload, 0, sizeof payload);
    chat_mqtt_put_string(&payload, "chat/m/+", 8);
    chat_buf_append(&payload, "\1", 1);
    chat_mqtt_put_string(&payload, "chat/u/+", 8);
    chat_buf_append(&payload, "\1", 1);
    memset(&p, 0, sizeof p);
    p.type = CHAT_MQTT_SUBSCRIBE, p.id = 5;
    p.payload.p = (const char *)payload.data, p.payload.n = payload.len;
    um_put_parse(&p, sub, sizeof sub, &back);
    CHECK_INT(back.id, 5);
    rest = back.payload;
    CHECK_INT(chat_mqtt_take_string(&rest, &f), 0);
    CHECK_MEM(f.p, f.n, "chat/m/+", 8);
    CHECK(rest.n == 12 && rest.p[0] == 1);
    chat_buf_free(&payload);
    memset(&p, 0, sizeof p);
    p.type = CHAT_MQTT_SUBACK, p.id = 5, p.payload.p = "\1\x80", p.payload.n = 2;
    um_put_parse(&p, suback, sizeof suback, &back);
    CHECK_INT(back.payload.n, 2);
}

static void test_mqtt_subscribe_refusals(void) {
    static const unsigned char flags[] = {0x80, 0x06, 0x00, 0x01, 0x00, 0x01, 'a', 0x00};
    static const unsigned char none[] = {0x82, 0x02, 0x00, 0x01};
    static const unsigned char qos3[] = {0x82, 0x06, 0x00, 0x01, 0x00, 0x01, 'a', 0x03};
    static const unsigned char hash_mid[] = {0x82, 0x08, 0x00, 0x01, 0x00, 0x03, '#', '/', 'a', 0x00};
    static const unsigned char plus_in[] = {0x82, 0x08, 0x00, 0x01, 0x00, 0x03, 'a', '+', 'b', 0x00};
    static const unsigned char ok_wild[] = {0x82, 0x08, 0x00, 0x01, 0x00, 0x03, '+', '/', '#', 0x00};
    static const unsigned char suback_bad[] = {0x90, 0x03, 0x00, 0x01, 0x03};
    static const unsigned char unsub[] = {0xA2, 0x05, 0x00, 0x01, 0x00, 0x01, 'a'};
    chat_mqtt_packet back;
    CHECK_INT(chat_mqtt_parse(flags, sizeof flags, 100, &back), CHAT_MQTT_BAD);
    CHECK_INT(chat_mqtt_parse(none, sizeof none, 100, &back), CHAT_MQTT_BAD);
    CHECK_INT(chat_mqtt_parse(qos3, sizeof qos3, 100, &back), CHAT_MQTT_BAD);
    CHECK_INT(chat_mqtt_parse(hash_mid, sizeof hash_mid, 100, &back), CHAT_MQTT_BAD);
    CHECK_INT(chat_mqtt_parse(plus_in, sizeof plus_in, 100, &back), CHAT_MQTT_BAD);
    CHECK_INT(chat_mqtt_parse(ok_wild, sizeof ok_wild, 100, &back), (long)sizeof ok_wild);
    CHECK_INT(chat_mqtt_parse(suback_bad, sizeof suback_bad, 100, &back), CHAT_MQTT_BAD);
    CHECK_INT(chat_mqtt_parse(unsub, sizeof unsub, 100, &back), (long)sizeof unsub);
    CHECK_INT(back.type, CHAT_MQTT_UNSUBSCRIBE);
}

static void test_mqtt_ping_and_disconnect(void) {
    static const unsigned char req[] = {0xC0, 0x00}, resp[] = {0xD0, 0x00}, disc[] = {0xE0, 0x00};
    static const unsigned char long_ping[] = {0xC0, 0x01, 0x00}, reserved0[] = {0x00, 0x00}, reserved15[] = {0xF0, 0x00};
    chat_mqtt_packet p, back;
    memset(&p, 0, sizeof p);
    p.type = CHAT_MQTT_PINGREQ;
    um_put_parse(&p, req, sizeof req, &back);
    p.type = CHAT_MQTT_PINGRESP;
    um_put_parse(&p, resp, sizeof resp, &back);
    p.type = CHAT_MQTT_DISCONNECT;
    um_put_parse(&p, disc, sizeof disc, &back);
    CHECK_INT(back.type, CHAT_MQTT_DISCONNECT);
    CHECK_INT(chat_mqtt_parse(long_ping, sizeof long_ping, 100, &back), CHAT_MQTT_BAD);
    CHECK_INT(chat_mqtt_parse(reserved0, sizeof reserved0, 100, &back), CHAT_MQTT_BAD);
    CHECK_INT(chat_mqtt_parse(reserved15, sizeof reserved15, 100, &back), CHAT_MQTT_BAD);
}

/* Several packets in one buffer, then the same stream fed in every chunk size as a client reads
   it (keep what was not consumed, append the next chunk): the same packets each time. */
static void test_mqtt_stream_in_every_chunk_size(void) {
    chat_buf s, rx;
    chat_mqtt_packet p;
    size_t chunk;
    int want[] = {CHAT_MQTT_CONNACK, CHAT_MQTT_PUBLISH, CHAT_MQTT_PUBACK, CHAT_MQTT_SUBACK, CHAT_MQTT_PINGRESP, CHAT_MQTT_PUBLISH};
    memset(&s, 0, sizeof s);
    memset(&p, 0, sizeof p);
    p.type = CHAT_MQTT_CONNACK, chat_mqtt_put(&s, &p);
    p.type = CHAT_MQTT_PUBLISH, p.topic = um_span("chat/msg/b"), p.qos = 1, p.id = 1, p.payload = um_span("{\"x\":1}");
    chat_mqtt_put(&s, &p);
    memset(&p, 0, sizeof p);
    p.type = CHAT_MQTT_PUBACK, p.id = 2, chat_mqtt_put(&s, &p);
    p.type = CHAT_MQTT_SUBACK, p.payload.p = "\1", p.payload.n = 1, chat_mqtt_put(&s, &p);
    memset(&p, 0, sizeof p);
    p.type = CHAT_MQTT_PINGRESP, chat_mqtt_put(&s, &p);
    p.type = CHAT_MQTT_PUBLISH, p.topic = um_span("chat/users/a"), p.retain = 1, chat_mqtt_put(&s, &p);
    for (chunk = 1; chunk <= s.len; chunk++) {
        size_t fed = 0;
        int got = 0, ok = 1;
        memset(&rx, 0, sizeof rx);
        while (fed < s.len && ok) {
            size_t n = CHAT__MIN(chunk, s.len - fed);
            long r;
            chat_buf_append(&rx, s.data + fed, n);
            fed += n;
            while ((r = chat_mqtt_parse(rx.data, rx.len, 1000, &p)) > 0) {
                if (got >= 6 || p.type != want[got]) ok = 0;
                got++;
                memmove(rx.data, rx.data + r, rx.len - (size_t)r);
                rx.len -= (size_t)r;
            }
            if (r < 0) ok = 0;
        }
        CHECKF(ok && got == 6 && rx.len == 0, "chunk %zu: %d packets, ok %d, %zu left", chunk, got, ok, rx.len);
        chat_buf_free(&rx);
    }
    chat_buf_free(&s);
}

static void unit_mqtt_tests(void) {
    RUN(test_mqtt_length_boundaries);
    RUN(test_mqtt_length_fifth_byte_is_bad);
    RUN(test_mqtt_connect_with_will_and_credentials);
    RUN(test_mqtt_connect_minimal_clean_session);
    RUN(test_mqtt_connect_refusals);
    RUN(test_mqtt_connack);
    RUN(test_mqtt_publish_qos0_and_qos1_retained);
    RUN(test_mqtt_publish_empty_payload);
    RUN(test_mqtt_publish_big_payload_length);
    RUN(test_mqtt_publish_refusals);
    RUN(test_mqtt_acks);
    RUN(test_mqtt_subscribe_and_suback);
    RUN(test_mqtt_subscribe_refusals);
    RUN(test_mqtt_ping_and_disconnect);
    RUN(test_mqtt_stream_in_every_chunk_size);
    chat_buf_free(&um_last);
}

#else
static void unit_mqtt_tests(void) {}
#endif
