/* libFuzzer target: the MQTT 3.1.1 parser, fed in arbitrary chunks as the bridge reads a broker
   (unconsumed bytes kept, the next chunk appended). Every packet it accepts must lie inside what
   it was given, respect the size bound, and come out of the encoder as the same bytes (so the
   parser accepts nothing the encoder would refuse, and the fields it reports are the packet). */
#include "fuzz.h"

static int fuzz_span_in(chat_span s, const unsigned char *buf, long n) {
    return !s.n || ((const unsigned char *)s.p >= buf && (const unsigned char *)s.p + s.n <= buf + n);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    enum { MAX_LENGTH = 4096 };
    fuzz_chunker k;
    const unsigned char *chunk;
    unsigned char *buf = (unsigned char *)malloc(size + 1);
    size_t have = 0, n;
    chat_buf again = {0};
    int stop = 0;
    fuzz_chunker_init(&k, data, size);
    FUZZ_POISON(buf, size + 1);
    while (!stop && (n = fuzz_next(&k, &chunk)) > 0) {
        long r;
        FUZZ_UNPOISON(buf + have, n);
        memcpy(buf + have, chunk, n);
        have += n;
        while ((r = chat_mqtt_parse(buf, have, MAX_LENGTH, &(chat_mqtt_packet){0})) != 0) {
            chat_mqtt_packet p;
            FUZZ_CHECK(chat_mqtt_parse(buf, have, MAX_LENGTH, &p) == r); /* the same answer twice */
            if (r < 0) {
                FUZZ_CHECK(r == CHAT_MQTT_BAD || r == CHAT_MQTT_TOO_LARGE);
                stop = 1;
                break;
            }
            FUZZ_CHECK((size_t)r <= have && (size_t)r <= MAX_LENGTH + 5);
            FUZZ_CHECK(p.type >= CHAT_MQTT_CONNECT && p.type <= CHAT_MQTT_DISCONNECT);
            FUZZ_CHECK(fuzz_span_in(p.topic, buf, r) && fuzz_span_in(p.payload, buf, r));
            FUZZ_CHECK(fuzz_span_in(p.connect.client_id, buf, r) && fuzz_span_in(p.connect.username, buf, r) &&
                       fuzz_span_in(p.connect.password, buf, r) && fuzz_span_in(p.connect.will_topic, buf, r) &&
                       fuzz_span_in(p.connect.will_message, buf, r));
            if (p.type == CHAT_MQTT_PUBLISH) FUZZ_CHECK(p.topic.n > 0 && chat_utf8_valid(p.topic.p, p.topic.n) && (p.qos == 0) == (p.id == 0));
            /* round trip: a remaining length may be encoded longer than needed on the wire, so
               compare from the variable header on */
            again.len = 0;
            FUZZ_CHECK(chat_mqtt_put(&again, &p) == CHAT_OK);
            {
                size_t head = 1, mine = 1;
                while (buf[head] & 128) head++;
                while (again.data[mine] & 128) mine++;
                FUZZ_CHECK(again.data[0] == buf[0]);
                FUZZ_CHECK(again.len - mine == (size_t)r - head && memcmp(again.data + mine + 1, buf + head + 1, again.len - mine - 1) == 0);
            }
            memmove(buf, buf + r, have - (size_t)r);
            have -= (size_t)r;
            FUZZ_POISON(buf + have, size + 1 - have);
        }
    }
    chat_buf_free(&again);
    FUZZ_UNPOISON(buf, size + 1);
    free(buf);
    return 0;
}
