/* libFuzzer target: the JSON layer. The validator and the object walk must agree; every key and
   value the walk hands out lies inside the document and is a valid document on its own; every
   string it decodes is valid UTF-8, and encoding it and reading it back gives it back. */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    chat_buf text = {0}, doc = {0}, again = {0};
    chat_json_walk w;
    chat_span key, value;
    int valid = chat_json_validate(data, size), r = 0, got;
    FUZZ_CHECK(valid == 0 || valid == -1);
    if (chat_json_walk_begin(&w, data, size) == 0) {
        while ((r = chat_json_walk_next(&w, &key, &value)) == 1) {
            FUZZ_CHECK(key.p >= (const char *)data && key.p + key.n <= (const char *)data + size);
            FUZZ_CHECK(value.p >= (const char *)data && value.p + value.n <= (const char *)data + size);
            FUZZ_CHECK(chat_json_validate(key.p, key.n) == 0 && chat_json_validate(value.p, value.n) == 0);
            text.len = 0;
            FUZZ_CHECK(chat_json_string(key, &text) == 0 && chat_utf8_valid(text.data, text.len));
        }
        FUZZ_CHECK((valid == -1) == (r == -1));
    }
    got = chat_json_get(data, size, "message", &value);
    FUZZ_CHECK((valid == -1) == (got == -1));
    text.len = 0;
    if (got == 1 && value.p[0] == '"' && chat_json_string(value, &text) == 0) {
        static const char head[] = "{\"event\":\"send-message\",\"message\":";
        chat_span back;
        FUZZ_CHECK(chat_utf8_valid(text.data, text.len));
        FUZZ_CHECK(chat_buf_append(&doc, head, sizeof head - 1) == 0);
        FUZZ_CHECK(chat_json_put_string(&doc, text.data, text.len) == 0);
        FUZZ_CHECK(chat_buf_append(&doc, "}", 1) == 0);
        FUZZ_CHECK(chat_json_get(doc.data, doc.len, "message", &back) == 1 && chat_json_string(back, &again) == 0);
        FUZZ_CHECK(again.len == text.len && (text.len == 0 || memcmp(again.data, text.data, text.len) == 0));
    }
    chat_buf_free(&text);
    chat_buf_free(&doc);
    chat_buf_free(&again);
    return 0;
}
