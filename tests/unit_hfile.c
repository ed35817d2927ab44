/* unit_hfile.c - the history file's record format and reader: the exact bytes (little-endian on
   every machine: this runs under qemu on big-endian mips too), torn tails that are dropped, and
   damage that is refused. Pure: buffers in memory, no files. */

typedef struct uf_seen {
    int n;
    uint64_t ids[64];
    char texts[64][32];
} uf_seen;

static int uf_each(void *user, const chat__words *w, uint64_t id) {
    uf_seen *s = (uf_seen *)user;
    if (s->n < 64) {
        s->ids[s->n] = id;
        snprintf(s->texts[s->n], sizeof s->texts[0], "%.*s", (int)w->text_len, (const char *)w->text);
    }
    s->n++;
    return CHAT_OK;
}

static chat__words uf_words(const char *name, const char *text, const char *cid, uint64_t time_ms) {
    chat__words w;
    memset(&w, 0, sizeof w);
    w.name = name, w.name_len = strlen(name), w.text = text, w.text_len = strlen(text);
    w.cid = cid, w.cid_len = cid ? strlen(cid) : 0;
    w.time_ms = time_ms;
    return w;
}

/* A file: the header, then `n` records "m0".."m{n-1}" with ids first_id.. */
static void uf_file(chat_buf *f, int n, uint64_t first_id) {
    int i;
    f->len = 0;
    chat_buf_append(f, CHAT__HFILE_MAGIC "\1", 8);
    for (i = 0; i < n; i++) {
        char text[16];
        chat__words w;
        snprintf(text, sizeof text, "m%d", i);
        w = uf_words("ann", text, i % 2 ? "c" : NULL, 1000 + (uint64_t)i);
        chat__hrecord_put(f, &w, first_id + (uint64_t)i);
    }
}

static void uf_scan(const chat_buf *f, size_t n, uf_seen *seen, chat__hfile_scan_result *r) {
    memset(seen, 0, sizeof *seen);
    chat__hfile_scan(f->data, n, 1 << 20, uf_each, seen, r);
}

/* The bytes of one record, written out: the format is the same on every machine. */
static void test_hfile_record_bytes_are_little_endian(void) {
    static const unsigned char want[] = {
        0x1a, 0, 0, 0,                                   /* payload length 26 */
        0, 0, 0, 0,                                      /* CRC-32, checked below */
        0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, /* id 0x0102030405060708 */
        0xe8, 0x03, 0, 0, 0, 0, 0, 0,                   /* time 1000 */
        2, 0, 2, 0,                                      /* name 2 bytes, cid 2, 0 */
        'a', 'b', 'c', '1', 'h', 'i'};
    chat_buf b;
    chat__words w = uf_words("ab", "hi", "c1", 1000);
    memset(&b, 0, sizeof b);
    CHECK_INT(chat__hrecord_put(&b, &w, 0x0102030405060708ull), CHAT_OK);
    CHECK_INT(b.len, sizeof want);
    CHECK(b.len == sizeof want && memcmp(b.data, want, 4) == 0 && memcmp(b.data + 8, want + 8, sizeof want - 8) == 0);
    /* CRC-32 of "123456789" is CBF43926 (the standard check value); the record's is of its payload */
    CHECK_INT(chat__crc32((const unsigned char *)"123456789", 9), 0xCBF43926u);
    CHECK_INT(chat__le_get(b.data + 4, 4), chat__crc32(b.data + 8, 26));
    CHECK(b.data[4] == (unsigned char)(chat__crc32(b.data + 8, 26) & 0xFF)); /* low byte first */
    chat_buf_free(&b);
}

static void test_hfile_scan_reads_every_record_in_order(void) {
    chat_buf f;
    uf_seen seen;
    chat__hfile_scan_result r;
    chat__words w;
    uint64_t id;
    memset(&f, 0, sizeof f);
    uf_file(&f, 5, 77);
    uf_scan(&f, f.len, &seen, &r);
    CHECK(!r.problem && !r.torn);
    CHECK_INT(r.records, 5);
    CHECK_INT(r.good, f.len);
    CHECK_INT(seen.n, 5);
    CHECK(seen.ids[0] == 77 && seen.ids[4] == 81);
    CHECK_STR(seen.texts[3], "m3");
    /* the fields come back as written, the cid too */
    CHECK(chat__hrecord_parse(f.data + 8, f.len - 8, 1 << 20, &w, &id) > 0);
    CHECK(id == 77 && w.time_ms == 1000 && w.name_len == 3 && memcmp(w.name, "ann", 3) == 0 && !w.cid);
    /* an empty file is a new one */
    uf_scan(&f, 0, &seen, &r);
    CHECK(!r.problem && !r.torn && r.records == 0 && r.good == 0);
    chat_buf_free(&f);
}

/* What a power cut leaves at the end: any prefix of the last record, zeros, a last record whose
   bytes did not all reach the disk. All dropped, the records before kept. */
static void test_hfile_scan_drops_a_torn_tail(void) {
    chat_buf f;
    uf_seen seen;
    chat__hfile_scan_result r;
    size_t whole, cut;
    memset(&f, 0, sizeof f);
    uf_file(&f, 3, 1);
    whole = f.len;
    uf_file(&f, 4, 1); /* the 4th is the one torn */
    for (cut = whole + 1; cut < f.len; cut++) {
        uf_scan(&f, cut, &seen, &r);
        CHECKF(!r.problem && r.torn && r.records == 3 && r.good == whole, "cut at %zu of %zu: problem %s torn %d records %zu",
               cut, f.len, r.problem ? r.problem : "-", r.torn, r.records);
    }
    /* the whole length there, but the last bytes are zeros (the data never reached the disk) */
    memset(f.data + f.len - 3, 0, 3);
    uf_scan(&f, f.len, &seen, &r);
    CHECK(!r.problem && r.torn && r.records == 3 && r.good == whole);
    /* zeros after the last record */
    uf_file(&f, 3, 1);
    chat_buf_append(&f, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 20);
    uf_scan(&f, f.len, &seen, &r);
    CHECK(!r.problem && r.torn && r.records == 3 && r.good == whole);
    /* a file cut inside its header */
    uf_scan(&f, 5, &seen, &r);
    CHECK(!r.problem && r.torn && r.records == 0 && r.good == 0);
    chat_buf_free(&f);
}

/* Damage that a power cut does not explain: refused as a whole (the server sets the file aside). */
static void test_hfile_scan_refuses_what_is_not_a_history(void) {
    chat_buf f;
    uf_seen seen;
    chat__hfile_scan_result r;
    memset(&f, 0, sizeof f);
    chat_buf_append(&f, "hello, this is not a history file at all", 40);
    uf_scan(&f, f.len, &seen, &r);
    CHECK(r.problem && strstr(r.problem, "not a chat.h history file"));
    uf_file(&f, 2, 1);
    f.data[7] = 2; /* a newer format */
    uf_scan(&f, f.len, &seen, &r);
    CHECK(r.problem && strstr(r.problem, "newer"));
    uf_file(&f, 4, 1);
    f.data[8 + 30] ^= 0x40; /* a bit flipped in the first record, three more follow */
    uf_scan(&f, f.len, &seen, &r);
    CHECK(r.problem && strstr(r.problem, "damaged"));
    CHECK_INT(seen.n, 0);
    CHECK(r.prefix && r.good == 8 && r.records == 0); /* nothing before it to keep */
    { /* a torn batch (one write of a turn): a hole in one record, a whole one after it; the
         records before the damage are sound and handed over, the file says where they end */
        size_t whole;
        uf_file(&f, 5, 100);
        whole = f.len;
        uf_file(&f, 7, 100);
        memset(f.data + whole + 12, 0, 10);
        uf_scan(&f, f.len, &seen, &r);
        CHECK(r.problem && strstr(r.problem, "damaged"));
        CHECK(r.prefix && r.good == whole && r.records == 5);
        CHECK_INT(seen.n, 5);
        CHECK_INT(seen.ids[4], 104);
    }
    { /* ids that go back */
        chat__words w = uf_words("ann", "x", NULL, 1);
        uf_file(&f, 2, 10);
        chat__hrecord_put(&f, &w, 5);
        chat__hrecord_put(&f, &w, 20);
        uf_scan(&f, f.len, &seen, &r);
        CHECK(r.problem && strstr(r.problem, "order"));
        CHECK(r.prefix && r.records == 2 && seen.n == 2); /* the two before it are kept */
    }
    { /* a record that says it is huge, with more after it */
        uf_file(&f, 2, 1);
        f.data[8] = 0xff, f.data[9] = 0xff, f.data[10] = 0xff, f.data[11] = 0x7f;
        uf_scan(&f, f.len, &seen, &r);
        CHECK(r.problem != NULL);
    }
    chat_buf_free(&f);
}

/* A record whose text or name is not UTF-8, or whose name is empty, is not one a server wrote. */
static void test_hfile_parse_checks_what_a_server_would(void) {
    chat_buf b;
    chat__words w, got;
    uint64_t id;
    memset(&b, 0, sizeof b);
    w = uf_words("ann", "\xff", NULL, 1);
    chat__hrecord_put(&b, &w, 1);
    CHECK_INT(chat__hrecord_parse(b.data, b.len, 1 << 20, &got, &id), -1);
    b.len = 0;
    w = uf_words("", "x", NULL, 1);
    chat__hrecord_put(&b, &w, 1);
    CHECK_INT(chat__hrecord_parse(b.data, b.len, 1 << 20, &got, &id), -1);
    b.len = 0;
    w = uf_words("ann", "x", NULL, 1);
    chat__hrecord_put(&b, &w, 1);
    CHECK_INT(chat__hrecord_parse(b.data, b.len, 5, &got, &id), -1); /* over the payload limit */
    CHECK(chat__hrecord_parse(b.data, b.len, 1 << 20, &got, &id) == (long)b.len);
    CHECK_INT(chat__hrecord_parse(b.data, b.len - 1, 1 << 20, &got, &id), 0);
    chat_buf_free(&b);
}

static void unit_hfile_tests(void) {
    RUN(test_hfile_record_bytes_are_little_endian);
    RUN(test_hfile_scan_reads_every_record_in_order);
    RUN(test_hfile_scan_drops_a_torn_tail);
    RUN(test_hfile_scan_refuses_what_is_not_a_history);
    RUN(test_hfile_parse_checks_what_a_server_would);
}
