/* libFuzzer target: the WebSocket frame decoder, fed in arbitrary chunks and buffered exactly as
   the server does (message assembled at the front, unconsumed bytes kept after it). Checks that
   every completed text message is valid UTF-8 and no message passes the size limit. */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    enum { MAX_MESSAGE = 4096 };
    fuzz_chunker k;
    const unsigned char *chunk;
    unsigned char *buf = (unsigned char *)malloc(size + 1);
    size_t have = 0, n, msg = 0;
    chat_ws_decoder d;
    int failed = 0;
    memset(&d, 0, sizeof d);
    fuzz_chunker_init(&k, data, size);
    FUZZ_POISON(buf, size + 1);
    while (!failed && (n = fuzz_next(&k, &chunk)) > 0) {
        size_t pos = msg;
        FUZZ_UNPOISON(buf + have, n);
        memcpy(buf + have, chunk, n);
        have += n;
        for (;;) {
            chat_ws_event ev;
            size_t used = chat_ws_decode(&d, buf + pos, have - pos, MAX_MESSAGE, &ev);
            FUZZ_CHECK(used <= have - pos);
            pos += used;
            if (ev.type == CHAT_WS_NEED_MORE) break;
            if (ev.type == CHAT_WS_ERROR) {
                FUZZ_CHECK(ev.code == 1002 || ev.code == 1007 || ev.code == 1009);
                failed = 1;
                break;
            }
            if (ev.type == CHAT_WS_DATA) {
                FUZZ_CHECK(ev.data >= buf + msg && ev.data + ev.len <= buf + pos);
                memmove(buf + msg, ev.data, ev.len);
                msg += ev.len;
                FUZZ_CHECK(msg <= MAX_MESSAGE);
                if (ev.last) {
                    if (ev.opcode == CHAT_WS_OP_TEXT) FUZZ_CHECK(chat_utf8_valid(buf, msg));
                    msg = 0;
                }
            }
            if (ev.type == CHAT_WS_CLOSE) {
                FUZZ_CHECK(ev.len <= 123 && chat_utf8_valid(ev.data, ev.len));
                FUZZ_CHECK(ev.code == 1005 || chat_ws_close_code_valid(ev.code));
            }
            if (ev.type == CHAT_WS_PING || ev.type == CHAT_WS_PONG) FUZZ_CHECK(ev.len <= 125);
        }
        memmove(buf + msg, buf + pos, have - pos);
        have = msg + have - pos;
        FUZZ_POISON(buf + have, size + 1 - have);
        FUZZ_CHECK(failed || msg == d.message_len);
    }
    FUZZ_UNPOISON(buf, size + 1);
    free(buf);
    return 0;
}
