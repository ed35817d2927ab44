/* libFuzzer target: the history file's reader. Whatever the bytes, the scan ends (a problem, a
   torn tail or the whole file), hands out only records inside the input whose words are valid
   UTF-8 with ids going up, and `good` covers exactly the header and the whole records. Writing
   the records it read gives a file the scan reads back the same. Restoring them into a room
   keeps the history's ids contiguous. */
#include "fuzz.h"

typedef struct fuzz_hist {
    const unsigned char *data;
    size_t size, records;
    uint64_t last;
    chat_buf again;
    chat__room room;
} fuzz_hist;

static int fuzz_each(void *user, const chat__words *w, uint64_t id) {
    fuzz_hist *h = (fuzz_hist *)user;
    FUZZ_CHECK((const unsigned char *)w->name >= h->data && (const unsigned char *)w->text + w->text_len <= h->data + h->size);
    FUZZ_CHECK(id > h->last && w->name_len > 0 && w->cid_len <= CHAT__CID_MAX);
    FUZZ_CHECK(chat_utf8_valid(w->name, w->name_len) && chat_utf8_valid(w->text, w->text_len));
    h->last = id;
    h->records++;
    FUZZ_CHECK(chat__hrecord_put(&h->again, w, id) == CHAT_OK);
    FUZZ_CHECK(chat__room_restore(&h->room, w, id) == CHAT_OK);
    return CHAT_OK;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    chat__room_outlet out;
    chat__hfile_scan_result r, r2;
    fuzz_hist h;
    int k;
    memset(&h, 0, sizeof h);
    memset(&out, 0, sizeof out);
    h.data = data, h.size = size;
    FUZZ_CHECK(chat__room_init(&h.room, &out, 4, 1) == CHAT_OK);
    chat_buf_append(&h.again, CHAT__HFILE_MAGIC "\1", 8);
    chat__hfile_scan(data, size, 1 << 16, fuzz_each, &h, &r);
    FUZZ_CHECK(r.good <= size && (r.problem || r.records == h.records));
    if (!r.problem) FUZZ_CHECK(r.records == 0 ? r.good <= 8 : r.good == h.again.len);
    if (r.prefix) FUZZ_CHECK(r.records == h.records && r.good == h.again.len); /* the sound records before damage */
    for (k = 1; k < h.room.history_count; k++) /* contiguous ids in the history */
        FUZZ_CHECK(chat__room_held(&h.room, k)->id == chat__room_held(&h.room, k - 1)->id + 1);
    chat__room_free(&h.room);
    if (!r.problem && r.records) { /* what was read, written again, reads the same */
        fuzz_hist h2;
        memset(&h2, 0, sizeof h2);
        h2.data = h.again.data, h2.size = h.again.len;
        FUZZ_CHECK(chat__room_init(&h2.room, &out, 4, 1) == CHAT_OK);
        chat__hfile_scan(h.again.data, h.again.len, 1 << 16, fuzz_each, &h2, &r2);
        FUZZ_CHECK(!r2.problem && !r2.torn && r2.records == r.records && r2.good == h.again.len);
        FUZZ_CHECK(h2.again.len == h.again.len - 8 && memcmp(h2.again.data, h.again.data + 8, h2.again.len) == 0);
        chat__room_free(&h2.room);
        chat_buf_free(&h2.again);
    }
    chat_buf_free(&h.again);
    return 0;
}
