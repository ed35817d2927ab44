/* libFuzzer target: the JSON decoder and encoder. The validator and the event reader must agree;
   any text the reader returns is valid UTF-8, and encoding it and reading it back gives it back. */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    chat__buf text = {0}, doc = {0}, again = {0};
    int valid = chat__json_validate(data, size), event = chat__json_read_event(data, size, &text);
    FUZZ_CHECK(valid == 0 || valid == -1);
    FUZZ_CHECK((valid == -1) == (event == CHAT__JSON_INVALID));
    if (event == CHAT__JSON_SEND_MESSAGE) {
        static const char head[] = "{\"event\":\"send-message\",\"message\":";
        FUZZ_CHECK(chat__utf8_valid(text.data, text.len));
        FUZZ_CHECK(chat__buf_append(&doc, head, sizeof head - 1) == 0);
        FUZZ_CHECK(chat__json_put_string(&doc, text.data, text.len) == 0);
        FUZZ_CHECK(chat__buf_append(&doc, "}", 1) == 0);
        FUZZ_CHECK(chat__json_read_event(doc.data, doc.len, &again) == CHAT__JSON_SEND_MESSAGE);
        FUZZ_CHECK(again.len == text.len && (text.len == 0 || memcmp(again.data, text.data, text.len) == 0));
    }
    chat__buf_free(&text);
    chat__buf_free(&doc);
    chat__buf_free(&again);
    return 0;
}
