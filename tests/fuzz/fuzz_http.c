/* libFuzzer target: the HTTP request head parser, fed in arbitrary chunks as a socket would. */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    enum { MAX_HEAD = 2048 };
    static chat_server *srv; /* for the Origin check; its configuration never changes */
    fuzz_chunker k;
    const unsigned char *chunk;
    char *buf = (char *)malloc(size + 1);
    size_t len = 0, scanned = 0, n;
    chat_buf value = {0};
    if (!srv) srv = chat_server_create(NULL);
    fuzz_chunker_init(&k, data, size);
    FUZZ_POISON(buf, size + 1);
    while ((n = fuzz_next(&k, &chunk)) > 0) {
        chat_http_request req;
        int r;
        FUZZ_UNPOISON(buf + len, n);
        memcpy(buf + len, chunk, n);
        len += n;
        for (;;) { /* pipelined requests: parse all complete heads */
            r = chat_http_parse(buf, len, MAX_HEAD, &scanned, &req);
            FUZZ_CHECK(scanned <= len);
            if (r <= 0) break;
            FUZZ_CHECK((size_t)r <= len && (size_t)r <= MAX_HEAD);
            FUZZ_CHECK(req.method.p >= buf && req.method.p + req.method.n <= buf + r);
            /* the target is in the head, or the root "/" that an absolute-form target without
               a path stands for */
            FUZZ_CHECK((req.target.p >= buf && req.target.p + req.target.n <= buf + r) || req.target.n == 1);
            FUZZ_CHECK(req.target.n > 0 && req.target.p[0] == '/');
            FUZZ_CHECK(req.head.p >= buf && req.head.p + req.head.n == buf + r);
            chat__server_origin_allowed(srv, &req);
            if (chat_url_query_param(req.target.p, req.target.n, "username", &value) == 1)
                FUZZ_CHECK(value.len <= req.target.n && value.data[value.len] == '\0');
            { /* every header the server looks up lies inside the head */
                static const char *const names[] = {"host", "upgrade", "origin", "sec-websocket-key", "x-forwarded-for"};
                size_t k;
                for (k = 0; k < sizeof names / sizeof names[0]; k++) {
                    chat_span v;
                    if (chat_http_header(&req, names[k], &v))
                        FUZZ_CHECK(v.p >= req.head.p && v.p + v.n <= req.head.p + req.head.n);
                    if (k == 1) chat_http_token_list_has(v, "websocket");
                }
            }
            memmove(buf, buf + r, len - (size_t)r);
            len -= (size_t)r;
            FUZZ_POISON(buf + len, size + 1 - len);
        }
        if (r < 0) break; /* the server answers 400/431 and closes */
    }
    chat_buf_free(&value);
    FUZZ_UNPOISON(buf, size + 1);
    free(buf);
    return 0;
}
