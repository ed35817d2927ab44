/* unit_room.c - the room layer of chat.h (chat__room) with fake members and a fake outlet: no
   sockets, no forks, no threads, no clock (every `now` is passed explicitly). A fake member
   embeds a chat__member and records the JSON of every frame handed to it; the fake outlet can
   refuse a frame, take a reference to it (released at the end), and mark members to leave from
   inside deliver or left, or speak in the room from inside left. The heap counters of main.c
   (test_heap_bytes, test_heap_blocks) count only chat.h's allocations: what the fakes record is
   plain malloc, so every test can check that the room gives back all it took. */

#include <stddef.h>

#define UR_LOG 16    /* the frames a fake member records (the rest are only counted) */
#define UR_HELD 64   /* the references a fake member can hold */
#define UR_MEMBERS 256

typedef struct ur_member {
    /* behaviour */
    int refuse;              /* deliver answers CHAT_EBUSY (counted, not logged) */
    int keep;                /* deliver takes a reference (released by ur_world_end) */
    struct ur_member *mark_on_deliver; /* chat__room_leave_later on this one (itself too) */
    struct ur_member *mark_on_left;    /* ... on this one from inside its own `left` */
    const char *say_on_left;           /* chat__room_say this, as itself, from inside `left` */
    chat__member m;          /* what the room knows (not the first field: UR_OF is exercised) */
    /* record */
    int delivered;           /* frames handed to it (refused ones too) */
    int refused;
    int users;               /* of the frames it took, user lists */
    char *log[UR_LOG];       /* the JSON of the frames it took, in order */
    int nlog;
    chat__frame *held[UR_HELD];
    int nheld;
    int list_len_at_deliver; /* members linked in the room when the last frame came */
    int count_at_deliver;    /* room.count then */
    int left_calls;
    int gone;                /* `left` has been called: as the server's JOINED flag, cleared */
} ur_member;

typedef struct ur_world {
    chat__room room;
    int copy;                        /* record the JSON of frames (off for very big lists) */
    ur_member *members[UR_MEMBERS];  /* every fake in the test, for ur_world_end */
    int nmembers;
    char departed[4096];             /* the names `left` saw, in order, comma-separated */
    int ndeparted;
    int deliver_outside_loop;        /* deliver was called while room.delivering == 0 */
    int left_while_delivering;       /* left was called while room.delivering != 0 */
    int left_bad;                    /* left saw a member still linked, findable, or nameless */
    size_t heap_bytes, heap_blocks;  /* the baseline */
} ur_world;

#define UR_OF(mp) ((ur_member *)(void *)((char *)(mp) - offsetof(ur_member, m)))

/* The JSON a WebSocket text frame carries (a malloc'ed copy), or NULL when f is no such frame. */
static char *ur_json_of(const chat__frame *f) {
    size_t h = 2, n, i;
    char *s;
    if (f->len < 2 || f->data[0] != 0x81 || (f->data[1] & 0x80)) return NULL; /* FIN|text, unmasked */
    n = f->data[1] & 0x7f;
    if (n == 126) {
        if (f->len < 4) return NULL;
        n = (size_t)f->data[2] << 8 | f->data[3], h = 4;
        if (n < 126) return NULL;
    } else if (n == 127) {
        if (f->len < 10) return NULL;
        for (n = 0, i = 2; i < 10; i++) n = n << 8 | f->data[i];
        h = 10;
        if (n <= 0xffff) return NULL;
    }
    if (h + n != f->len) return NULL;
    s = (char *)malloc(n + 1);
    if (!s) return NULL;
    memcpy(s, f->data + h, n);
    s[n] = 0;
    return s;
}

static int ur_list_len(const chat__room *r) {
    const chat__member *m;
    int n = 0;
    for (m = r->first; m; m = m->next) n++;
    return n;
}

static int ur_deliver(void *user, chat__member *mp, chat__frame *f) {
    ur_world *w = (ur_world *)user;
    ur_member *u = UR_OF(mp);
    if (w->room.delivering <= 0) w->deliver_outside_loop++;
    u->delivered++;
    u->list_len_at_deliver = ur_list_len(&w->room);
    u->count_at_deliver = w->room.count;
    if (u->mark_on_deliver) chat__room_leave_later(&w->room, &u->mark_on_deliver->m);
    if (u->refuse) {
        u->refused++;
        return CHAT_EBUSY;
    }
    if (f->kind == CHAT__FRAME_USERS) u->users++;
    if (u->nlog < UR_LOG) {
        char *s = w->copy ? ur_json_of(f) : NULL;
        if (!s && w->copy && (s = (char *)malloc(sizeof "(bad frame)")) != NULL) strcpy(s, "(bad frame)");
        u->log[u->nlog++] = s;
    }
    if (u->keep && u->nheld < UR_HELD) {
        f->refs++;
        u->held[u->nheld++] = f;
    }
    return CHAT_OK;
}

#define UR_TIME 1000 /* every message is said at this time; ids start at 1 */

/* chat__room_say as the server calls it, without a cid. */
static int ur_say_n(ur_world *w, const char *name, size_t name_len, const char *text, size_t text_len) {
    chat__words words;
    memset(&words, 0, sizeof words);
    words.name = name, words.name_len = name_len, words.text = text, words.text_len = text_len;
    words.time_ms = UR_TIME;
    return chat__room_say(&w->room, &words);
}

static void ur_left(void *user, chat__member *mp) {
    ur_world *w = (ur_world *)user;
    ur_member *u = UR_OF(mp);
    size_t at = strlen(w->departed);
    if (w->room.delivering != 0) w->left_while_delivering++;
    if (!mp->name || mp->next || mp->prev || w->room.first == mp ||
        (mp->name && chat__room_find(&w->room, mp->name, mp->name_len) == mp))
        w->left_bad++;
    if (mp->name && at + mp->name_len + 2 < sizeof w->departed)
        snprintf(w->departed + at, sizeof w->departed - at, "%s%s", at ? "," : "", mp->name);
    w->ndeparted++;
    u->left_calls++;
    u->gone = 1;
    if (u->say_on_left && mp->name) ur_say_n(w, mp->name, mp->name_len, u->say_on_left, strlen(u->say_on_left));
    /* as the server does (its JOINED flag): only a member still in the room is marked */
    if (u->mark_on_left && !u->mark_on_left->gone) chat__room_leave_later(&w->room, &u->mark_on_left->m);
}

/* A room with the fake outlet and `history` messages kept; the heap baseline is taken first. */
static int ur_world_init(ur_world *w, int history) {
    chat__room_outlet out;
    memset(&out, 0, sizeof out); /* no `said`: left as stack garbage, the room would call it */
    memset(w, 0, sizeof *w);
    w->copy = 1;
    w->heap_bytes = test_heap_bytes, w->heap_blocks = test_heap_blocks;
    out.deliver = ur_deliver, out.left = ur_left, out.user = w;
    return chat__room_init(&w->room, &out, history, 1);
}

static void ur_member_init(ur_world *w, ur_member *u) {
    memset(u, 0, sizeof *u);
    if (w->nmembers < UR_MEMBERS) w->members[w->nmembers++] = u;
}

/* Joins u under name (a copy from chat.h's allocator: the room owns and frees it). */
static int ur_join_n(ur_world *w, ur_member *u, const char *name, size_t n) {
    char *copy = (char *)CHAT_MALLOC(n + 1);
    int rc;
    if (!copy) return CHAT_ENOMEM;
    memcpy(copy, name, n);
    copy[n] = 0;
    rc = chat__room_join(&w->room, &u->m, copy, n);
    if (rc != CHAT_OK) CHAT_FREE(copy);
    return rc;
}

static int ur_join(ur_world *w, ur_member *u, const char *name) { return ur_join_n(w, u, name, strlen(name)); }

static void ur_say(ur_world *w, const char *name, const char *text) { ur_say_n(w, name, strlen(name), text, strlen(text)); }

/* What the server replays to a newcomer: the held messages that fit in max_bytes. */
static void ur_replay(ur_world *w, ur_member *u, size_t max_bytes) {
    int missing;
    chat__room_replay(&w->room, &u->m, chat__room_replay_plan(&w->room, 0, max_bytes, &missing));
}

static const char *ur_log(const ur_member *u, int i) {
    if (i < 0 || i >= u->nlog) return "(nothing)";
    return u->log[i] ? u->log[i] : "(not copied)";
}

/* The JSON of the last frame u took, or "(nothing)". */
static const char *ur_last(const ur_member *u) { return ur_log(u, u->nlog - 1); }

static void ur_forget(ur_member *u) {
    int i;
    for (i = 0; i < u->nlog; i++) free(u->log[i]);
    u->nlog = 0;
}

static void ur_drop(ur_member *u) {
    int i;
    for (i = 0; i < u->nheld; i++) chat__frame_release(u->held[i]);
    u->nheld = 0;
}

/* The end of every test: the fakes give back their references, the room is freed, and chat.h's
   heap is where it was before the room was made. */
static void ur_world_end(ur_world *w) {
    int i;
    CHECK_INT(w->room.delivering, 0);
    for (i = 0; i < w->nmembers; i++) ur_drop(w->members[i]), ur_forget(w->members[i]);
    chat__room_free(&w->room);
    CHECK_INT(w->deliver_outside_loop, 0);
    CHECK_INT(w->left_while_delivering, 0);
    CHECK_INT(w->left_bad, 0);
    CHECKF(test_heap_bytes == w->heap_bytes && test_heap_blocks == w->heap_blocks,
           "heap after chat__room_free: %zu bytes in %zu blocks, before the room: %zu in %zu", test_heap_bytes,
           test_heap_blocks, w->heap_bytes, w->heap_blocks);
}

/* The list is linked both ways, first/last right, and holds exactly count + leaving members. */
static int ur_links_ok(const chat__room *r) {
    const chat__member *m, *prev = NULL;
    int n = 0, leaving = 0;
    for (m = r->first; m; prev = m, m = m->next) {
        if (m->prev != prev) return 0;
        n++, leaving += m->leaving != 0;
    }
    return r->last == prev && n == r->count + r->leaving && leaving == r->leaving;
}

/* --- joins and the user list --- */

static void test_room_joins_in_order_and_user_list_json(void) {
    ur_world w;
    ur_member a, b, c, d;
    const char *want = "{\"event\":\"update-users\",\"usernames\":[\"alice\",\"bob\",\"c\\\"d\\\\e\",\"\xc3\xa9t\xc3\xa9\"]}";
    CHECK_INT(ur_world_init(&w, 0), CHAT_OK);
    ur_member_init(&w, &a), ur_member_init(&w, &b), ur_member_init(&w, &c), ur_member_init(&w, &d);
    chat__room_publish_users(&w.room, 0); /* nobody, no change: no list */
    CHECK(w.room.users_frame == NULL);
    CHECK_INT(ur_join(&w, &a, "alice"), CHAT_OK);
    CHECK_INT(ur_join(&w, &b, "bob"), CHAT_OK);
    CHECK_INT(ur_join(&w, &c, "c\"d\\e"), CHAT_OK);
    CHECK_INT(ur_join(&w, &d, "\xc3\xa9t\xc3\xa9"), CHAT_OK); /* été */
    CHECK_INT(w.room.count, 4);
    CHECK_INT(w.room.version, 4);
    CHECK(w.room.first == &a.m && a.m.next == &b.m && b.m.next == &c.m && c.m.next == &d.m && w.room.last == &d.m);
    CHECK(ur_links_ok(&w.room));
    CHECK_INT(a.delivered + b.delivered + c.delivered + d.delivered, 0); /* joining sends nothing */
    chat__room_publish_users(&w.room, 0);
    CHECK_INT(a.users, 1); CHECK_INT(b.users, 1); CHECK_INT(c.users, 1); CHECK_INT(d.users, 1);
    CHECK_STR(ur_last(&a), want);
    CHECK_STR(ur_last(&d), want);
    CHECK(w.room.users_frame != NULL && w.room.users_frame->kind == CHAT__FRAME_USERS);
    CHECK(w.room.users_frame && w.room.users_frame->refs == 1); /* the room's: the fakes took none */
    CHECK(a.m.users_inflight && d.m.users_inflight);
    CHECK_INT(a.m.users_version, 4);
    CHECK_INT(w.room.frame_version, 4);
    ur_world_end(&w);
}

static void test_room_user_list_is_one_frame_shared_by_all(void) {
    ur_world w;
    ur_member u[5];
    static const char *const names[5] = {"n0", "n1", "n2", "n3", "n4"};
    int i;
    CHECK_INT(ur_world_init(&w, 0), CHAT_OK);
    for (i = 0; i < 5; i++) {
        ur_member_init(&w, &u[i]);
        u[i].keep = 1;
        CHECK_INT(ur_join(&w, &u[i], names[i]), CHAT_OK);
    }
    chat__room_publish_users(&w.room, 0);
    for (i = 0; i < 5; i++) {
        CHECK_INT(u[i].nheld, 1);
        CHECK(u[i].nheld == 1 && u[i].held[0] == w.room.users_frame);
        CHECK_STR(ur_last(&u[i]), "{\"event\":\"update-users\",\"usernames\":[\"n0\",\"n1\",\"n2\",\"n3\",\"n4\"]}");
    }
    CHECK(w.room.users_frame && w.room.users_frame->refs == 6); /* the room's and five */
    /* a newer list: the room lets go of the old one, which the holders still have */
    chat__room_leave_later(&w.room, &u[4].m);
    for (i = 0; i < 5; i++) chat__room_users_written(&w.room, &u[i].m);
    chat__room_publish_users(&w.room, 100000);
    CHECK(w.room.users_frame != NULL && w.room.users_frame != u[0].held[0]);
    CHECK_INT(u[0].held[0]->refs, 5);
    CHECK(u[0].nheld == 2 && u[0].held[1] == w.room.users_frame);
    CHECK_INT(u[4].nheld, 1);
    CHECK(w.room.users_frame && w.room.users_frame->refs == 5); /* the room's and four */
    CHECK_STR(ur_last(&u[3]), "{\"event\":\"update-users\",\"usernames\":[\"n0\",\"n1\",\"n2\",\"n3\"]}");
    chat__room_settle(&w.room);
    ur_world_end(&w);
}

/* --- coalescing: one list per version, at most one in flight per member --- */

static void test_room_changes_before_one_publish_make_one_list(void) {
    ur_world w;
    ur_member a, b, c, d, e;
    CHECK_INT(ur_world_init(&w, 0), CHAT_OK);
    ur_member_init(&w, &a), ur_member_init(&w, &b), ur_member_init(&w, &c), ur_member_init(&w, &d), ur_member_init(&w, &e);
    CHECK_INT(ur_join(&w, &a, "a"), CHAT_OK);
    CHECK_INT(ur_join(&w, &b, "b"), CHAT_OK);
    CHECK_INT(ur_join(&w, &c, "c"), CHAT_OK);
    chat__room_leave_later(&w.room, &b.m);
    CHECK_INT(ur_join(&w, &d, "d"), CHAT_OK);
    chat__room_leave_later(&w.room, &d.m);
    CHECK_INT(ur_join(&w, &e, "e"), CHAT_OK);
    CHECK_INT(w.room.version, 7); /* 5 joins, 2 leaves */
    CHECK_INT(w.room.count, 3);
    chat__room_publish_users(&w.room, 0);
    CHECK_INT(a.users, 1); CHECK_INT(c.users, 1); CHECK_INT(e.users, 1);
    CHECK_INT(b.delivered, 0); CHECK_INT(d.delivered, 0); /* leaving: nothing */
    CHECK_STR(ur_last(&a), "{\"event\":\"update-users\",\"usernames\":[\"a\",\"c\",\"e\"]}");
    CHECK_STR(ur_last(&e), "{\"event\":\"update-users\",\"usernames\":[\"a\",\"c\",\"e\"]}");
    /* nothing changed: publishing again hands out nothing, even after the lists are written */
    chat__room_users_written(&w.room, &a.m), chat__room_users_written(&w.room, &c.m), chat__room_users_written(&w.room, &e.m);
    CHECK_INT(w.room.handout, 0);
    chat__room_publish_users(&w.room, 10000);
    CHECK_INT(a.users + c.users + e.users, 3);
    chat__room_settle(&w.room);
    CHECK_INT(b.left_calls, 1); CHECK_INT(d.left_calls, 1);
    CHECK_INT(w.ndeparted, 2);
    ur_world_end(&w);
}

static void test_room_member_with_list_in_flight_gets_only_the_newest_after_written(void) {
    ur_world w;
    ur_member a, b, c, d;
    CHECK_INT(ur_world_init(&w, 0), CHAT_OK);
    ur_member_init(&w, &a), ur_member_init(&w, &b), ur_member_init(&w, &c), ur_member_init(&w, &d);
    CHECK_INT(ur_join(&w, &a, "a"), CHAT_OK);
    CHECK_INT(ur_join(&w, &b, "b"), CHAT_OK);
    chat__room_publish_users(&w.room, 0); /* v2: a and b, both now in flight */
    CHECK_INT(a.users, 1); CHECK_INT(b.users, 1);
    CHECK_INT(ur_join(&w, &c, "c"), CHAT_OK);
    chat__room_publish_users(&w.room, 100000); /* v3: only c, the others have one in flight */
    CHECK_INT(a.users, 1); CHECK_INT(b.users, 1); CHECK_INT(c.users, 1);
    CHECK_STR(ur_last(&c), "{\"event\":\"update-users\",\"usernames\":[\"a\",\"b\",\"c\"]}");
    CHECK_INT(ur_join(&w, &d, "d"), CHAT_OK);
    chat__room_publish_users(&w.room, 200000); /* v4: only d */
    CHECK_INT(a.users, 1); CHECK_INT(b.users, 1); CHECK_INT(c.users, 1); CHECK_INT(d.users, 1);
    CHECK_STR(ur_last(&d), "{\"event\":\"update-users\",\"usernames\":[\"a\",\"b\",\"c\",\"d\"]}");
    /* a's list is written: a is behind, so a handout is asked for, and a gets v4, not v3 */
    chat__room_users_written(&w.room, &a.m);
    CHECK_INT(a.m.users_inflight, 0);
    CHECK_INT(w.room.handout, 1);
    chat__room_publish_users(&w.room, 200000);
    CHECK_INT(a.users, 2); CHECK_INT(b.users, 1); CHECK_INT(c.users, 1); CHECK_INT(d.users, 1);
    CHECK_STR(ur_last(&a), "{\"event\":\"update-users\",\"usernames\":[\"a\",\"b\",\"c\",\"d\"]}");
    CHECK_INT(w.room.handout, 0);
    /* d's is written, and d is up to date: no handout, nothing more for d */
    chat__room_users_written(&w.room, &d.m);
    CHECK_INT(w.room.handout, 0);
    chat__room_publish_users(&w.room, 200000);
    CHECK_INT(d.users, 1);
    /* c and b: written, behind, the newest for both */
    chat__room_users_written(&w.room, &c.m), chat__room_users_written(&w.room, &b.m);
    chat__room_publish_users(&w.room, 200000);
    CHECK_INT(a.users, 2); CHECK_INT(b.users, 2); CHECK_INT(c.users, 2); CHECK_INT(d.users, 1);
    CHECK_STR(ur_last(&b), "{\"event\":\"update-users\",\"usernames\":[\"a\",\"b\",\"c\",\"d\"]}");
    CHECK_STR(ur_last(&c), "{\"event\":\"update-users\",\"usernames\":[\"a\",\"b\",\"c\",\"d\"]}");
    ur_world_end(&w);
}

/* --- spacing: a list waits for the cost of the one before it --- */

/* n members with distinct names of `len` bytes each, joined in order. */
static void ur_join_long(ur_world *w, ur_member *u, int n, size_t len) {
    char *name = (char *)malloc(len);
    int i;
    if (!name) return;
    memset(name, 'x', len);
    for (i = 0; i < n; i++) {
        ur_member_init(w, &u[i]);
        name[0] = (char)('A' + i % 26), name[1] = (char)('A' + i / 26 % 26), name[2] = (char)('A' + i / 676);
        CHECK_INT(ur_join_n(w, &u[i], name, len), CHAT_OK);
    }
    free(name);
}

static chat__ms ur_spacing(const chat__room *r, int recipients) {
    uint64_t sent = (uint64_t)recipients * r->users_frame->len;
    return (chat__ms)CHAT__MIN(sent / CHAT__USERS_BYTES_PER_MS, (uint64_t)CHAT__USERS_MAX_SPACING_MS);
}

static void test_room_user_lists_spaced_by_their_cost(void) {
    enum { N = 32 };
    static ur_member u[N + 1];
    ur_world w;
    chat__frame *first;
    chat__ms spacing;
    int i, lists = 0;
    CHECK_INT(ur_world_init(&w, 0), CHAT_OK);
    ur_join_long(&w, u, N, 2000);
    chat__room_publish_users(&w.room, 1000);
    first = w.room.users_frame;
    CHECK(first != NULL);
    if (!first) {
        ur_world_end(&w);
        return;
    }
    spacing = ur_spacing(&w.room, N);
    CHECKF(spacing >= 20 && spacing < 100, "spacing %lld ms: the test needs a list that costs tens of ms", (long long)spacing);
    CHECK_INT(w.room.not_before, 1000 + spacing);
    for (i = 0; i < N; i++) {
        CHECK_INT(u[i].users, 1);
        chat__room_users_written(&w.room, &u[i].m);
    }
    /* a join: the room changed, but no list before not_before */
    ur_member_init(&w, &u[N]);
    CHECK_INT(ur_join(&w, &u[N], "late"), CHAT_OK);
    chat__room_publish_users(&w.room, 1000);
    chat__room_publish_users(&w.room, 1000 + spacing - 1);
    CHECK(w.room.users_frame == first);
    CHECK_INT(w.room.frame_version, N);
    for (i = 0; i <= N; i++) lists += u[i].users;
    CHECK_INT(lists, N);
    /* at not_before: the new list, to everyone */
    chat__room_publish_users(&w.room, 1000 + spacing);
    CHECK(w.room.users_frame != first);
    CHECK_INT(w.room.frame_version, N + 1);
    for (i = 0; i <= N; i++) CHECKF(u[i].users == (i < N ? 2 : 1), "member %d got %d lists", i, u[i].users);
    CHECK_INT(w.room.not_before, 1000 + spacing + ur_spacing(&w.room, N + 1));
    ur_world_end(&w);
}

static void test_room_user_list_spacing_is_capped(void) {
    enum { N = 160 };
    static ur_member u[N];
    ur_world w;
    int i;
    CHECK_INT(ur_world_init(&w, 0), CHAT_OK);
    w.copy = 0; /* lists of 640 kB: counted, not copied */
    ur_join_long(&w, u, N, 4000);
    chat__room_publish_users(&w.room, 5000);
    CHECK(w.room.users_frame != NULL);
    if (!w.room.users_frame) {
        ur_world_end(&w);
        return;
    }
    /* the cost would be 1.5 s */
    CHECK((uint64_t)N * w.room.users_frame->len / CHAT__USERS_BYTES_PER_MS > CHAT__USERS_MAX_SPACING_MS);
    CHECK_INT(w.room.not_before, 5000 + CHAT__USERS_MAX_SPACING_MS);
    for (i = 0; i < N; i++) chat__room_users_written(&w.room, &u[i].m);
    chat__room_leave_later(&w.room, &u[0].m);
    chat__room_publish_users(&w.room, 5000 + CHAT__USERS_MAX_SPACING_MS - 1);
    CHECK_INT(u[1].users, 1);
    chat__room_publish_users(&w.room, 5000 + CHAT__USERS_MAX_SPACING_MS);
    CHECK_INT(u[1].users, 2); CHECK_INT(u[N - 1].users, 2); CHECK_INT(u[0].users, 1);
    chat__room_settle(&w.room);
    ur_world_end(&w);
}

/* A newcomer who joins while the next list must wait is handed the current one at the next
   handout (it has none). That small handout must not shorten the wait the big list set: the
   next list still waits for the cost of the one before it (chat__room_publish_users: "after one
   that handed out B bytes in all, the next waits B / CHAT__USERS_BYTES_PER_MS"). */
static void test_room_user_list_spacing_holds_after_a_late_handout(void) {
    enum { N = 32 };
    static ur_member u[N + 1];
    ur_world w;
    chat__frame *first;
    chat__ms spacing;
    int i;
    CHECK_INT(ur_world_init(&w, 0), CHAT_OK);
    ur_join_long(&w, u, N, 2000);
    chat__room_publish_users(&w.room, 1000);
    first = w.room.users_frame;
    CHECK(first != NULL);
    if (!first) {
        ur_world_end(&w);
        return;
    }
    spacing = ur_spacing(&w.room, N);
    CHECK(spacing >= 20);
    ur_member_init(&w, &u[N]);
    CHECK_INT(ur_join(&w, &u[N], "late"), CHAT_OK);
    for (i = 0; i < N; i++) chat__room_users_written(&w.room, &u[i].m); /* behind: a handout */
    chat__room_publish_users(&w.room, 1001);
    CHECK_INT(u[N].users, 1); /* the newcomer got the list there is */
    CHECK(w.room.users_frame == first);
    CHECKF(w.room.not_before >= 1000 + spacing, "not_before %lld, the first list set %lld", (long long)w.room.not_before,
           (long long)(1000 + spacing));
    chat__room_publish_users(&w.room, 1002);
    chat__room_publish_users(&w.room, 1000 + spacing - 1);
    CHECK(w.room.users_frame == first);
    CHECK_INT(u[0].users, 1);
    chat__room_publish_users(&w.room, 1000 + spacing);
    CHECK(w.room.users_frame != first);
    CHECK_INT(u[0].users, 2);
    ur_world_end(&w);
}

/* --- names --- */

static void test_room_find_never_returns_a_leaving_member(void) {
    ur_world w;
    ur_member a, b;
    CHECK_INT(ur_world_init(&w, 0), CHAT_OK);
    ur_member_init(&w, &a), ur_member_init(&w, &b);
    CHECK(chat__room_find(&w.room, "alice", 5) == NULL); /* no index yet */
    CHECK_INT(ur_join(&w, &a, "alice"), CHAT_OK);
    CHECK_INT(ur_join(&w, &b, "bob"), CHAT_OK);
    CHECK(chat__room_find(&w.room, "alice", 5) == &a.m);
    CHECK(chat__room_find(&w.room, "bob", 3) == &b.m);
    CHECK(chat__room_find(&w.room, "ali", 3) == NULL);
    CHECK(chat__room_find(&w.room, "alicea", 6) == NULL);
    CHECK(chat__room_find(&w.room, "Alice", 5) == NULL); /* names are bytes */
    chat__room_leave_later(&w.room, &a.m);
    CHECK(chat__room_find(&w.room, "alice", 5) == NULL); /* free at once */
    CHECK(chat__room_find(&w.room, "bob", 3) == &b.m);
    CHECK_INT(w.room.count, 1);
    CHECK_INT(w.room.leaving, 1);
    CHECK_INT(w.room.version, 3);
    chat__room_leave_later(&w.room, &a.m); /* twice is once */
    CHECK_INT(w.room.count, 1);
    CHECK_INT(w.room.leaving, 1);
    CHECK_INT(w.room.version, 3);
    CHECK(a.m.name != NULL && strcmp(a.m.name, "alice") == 0); /* the name lives until settle */
    CHECK(ur_links_ok(&w.room));
    chat__room_settle(&w.room);
    CHECK_INT(a.left_calls, 1);
    CHECK(a.m.name == NULL);
    CHECK(chat__room_find(&w.room, "alice", 5) == NULL);
    CHECK(chat__room_find(&w.room, "bob", 3) == &b.m);
    CHECK(w.room.first == &b.m && w.room.last == &b.m && ur_links_ok(&w.room));
    ur_world_end(&w);
}

static void test_room_rejoin_with_the_same_name_before_settle(void) {
    ur_world w;
    ur_member old, mid, now, other;
    CHECK_INT(ur_world_init(&w, 0), CHAT_OK);
    ur_member_init(&w, &old), ur_member_init(&w, &mid), ur_member_init(&w, &now), ur_member_init(&w, &other);
    CHECK_INT(ur_join(&w, &old, "alice"), CHAT_OK);
    CHECK_INT(ur_join(&w, &other, "zed"), CHAT_OK);
    chat__room_leave_later(&w.room, &old.m);
    CHECK(chat__room_find(&w.room, "alice", 5) == NULL);
    CHECK_INT(ur_join(&w, &mid, "alice"), CHAT_OK); /* old is still linked */
    CHECK(chat__room_find(&w.room, "alice", 5) == &mid.m);
    chat__room_leave_later(&w.room, &mid.m);
    CHECK_INT(ur_join(&w, &now, "alice"), CHAT_OK);
    CHECK(chat__room_find(&w.room, "alice", 5) == &now.m);
    CHECK_INT(w.room.count, 2);
    CHECK_INT(w.room.leaving, 2);
    CHECK(ur_links_ok(&w.room));
    chat__room_publish_users(&w.room, 0);
    CHECK_STR(ur_last(&now), "{\"event\":\"update-users\",\"usernames\":[\"zed\",\"alice\"]}");
    CHECK_INT(old.delivered + mid.delivered, 0);
    chat__room_settle(&w.room);
    CHECK_INT(old.left_calls, 1); CHECK_INT(mid.left_calls, 1); CHECK_INT(now.left_calls, 0);
    CHECK_INT(w.ndeparted, 2);
    CHECK_INT(w.room.count, 2);
    CHECK_INT(w.room.leaving, 0);
    CHECK(chat__room_find(&w.room, "alice", 5) == &now.m);
    CHECK(now.m.name != NULL && strcmp(now.m.name, "alice") == 0);
    CHECK(w.room.first == &other.m && w.room.last == &now.m && ur_links_ok(&w.room));
    /* the one left is an ordinary member: it can leave and be settled */
    chat__room_leave_later(&w.room, &now.m);
    chat__room_settle(&w.room);
    CHECK_INT(now.left_calls, 1);
    CHECK(chat__room_find(&w.room, "alice", 5) == NULL);
    CHECK(w.room.first == &other.m && w.room.last == &other.m && ur_links_ok(&w.room));
    ur_world_end(&w);
}

/* Past 64 members the index grows while some are marked but still linked: settle must still
   find them in it. */
static void test_room_index_grows_with_members_marked_to_leave(void) {
    enum { N = 200 };
    static ur_member u[N];
    char name[16];
    ur_world w;
    int i, found = 0, wrong = 0;
    CHECK_INT(ur_world_init(&w, 0), CHAT_OK);
    for (i = 0; i < N; i++) {
        ur_member_init(&w, &u[i]);
        snprintf(name, sizeof name, "user%d", i);
        CHECK_INT(ur_join(&w, &u[i], name), CHAT_OK);
        if (i % 3 == 0) chat__room_leave_later(&w.room, &u[i].m);
    }
    CHECK(w.room.nbuckets >= 128);
    CHECK_INT(w.room.count, N - (N + 2) / 3);
    CHECK_INT(w.room.leaving, (N + 2) / 3);
    for (i = 0; i < N; i++) {
        chat__member *m;
        snprintf(name, sizeof name, "user%d", i);
        m = chat__room_find(&w.room, name, strlen(name));
        if (i % 3 == 0) wrong += m != NULL;
        else found += m == &u[i].m;
    }
    CHECK_INT(found, N - (N + 2) / 3);
    CHECK_INT(wrong, 0);
    chat__room_settle(&w.room);
    CHECK_INT(w.ndeparted, (N + 2) / 3);
    CHECK_INT(w.room.leaving, 0);
    for (found = 0, i = 0; i < N; i++) {
        snprintf(name, sizeof name, "user%d", i);
        found += chat__room_find(&w.room, name, strlen(name)) == (i % 3 ? &u[i].m : NULL);
    }
    CHECK_INT(found, N);
    CHECK(ur_links_ok(&w.room));
    ur_world_end(&w);
}

/* --- leaving from inside a delivery loop --- */

static void test_room_leave_later_inside_broadcast_reaches_everyone_else(void) {
    ur_world w;
    ur_member a, b, c, d, e, f;
    int n;
    CHECK_INT(ur_world_init(&w, 0), CHAT_OK);
    ur_member_init(&w, &a), ur_member_init(&w, &b), ur_member_init(&w, &c);
    ur_member_init(&w, &d), ur_member_init(&w, &e), ur_member_init(&w, &f);
    CHECK_INT(ur_join(&w, &a, "a"), CHAT_OK);
    CHECK_INT(ur_join(&w, &b, "b"), CHAT_OK);
    CHECK_INT(ur_join(&w, &c, "c"), CHAT_OK);
    CHECK_INT(ur_join(&w, &d, "d"), CHAT_OK);
    CHECK_INT(ur_join(&w, &e, "e"), CHAT_OK);
    CHECK_INT(ur_join(&w, &f, "f"), CHAT_OK);
    b.refuse = 1, b.mark_on_deliver = &b; /* too slow: refuses and kills itself */
    c.mark_on_deliver = &e;               /* kills one still to come */
    d.mark_on_deliver = &a;               /* kills one already served */
    n = ur_say_n(&w, "a", 1, "hi", 2);
    CHECK_INT(n, 4); /* a, c, d and f took it; b refused; e was gone before its turn */
    CHECK_INT(a.delivered, 1); CHECK_INT(b.delivered, 1); CHECK_INT(c.delivered, 1);
    CHECK_INT(d.delivered, 1); CHECK_INT(e.delivered, 0); CHECK_INT(f.delivered, 1);
    CHECK_STR(ur_last(&f), "{\"event\":\"send-message\",\"username\":\"a\",\"message\":\"hi\",\"id\":1,\"time\":1000}");
    CHECK_INT(b.nlog, 0);
    /* nothing was unlinked mid-loop, the count went down at once */
    CHECK_INT(c.list_len_at_deliver, 6); CHECK_INT(d.list_len_at_deliver, 6); CHECK_INT(f.list_len_at_deliver, 6);
    CHECK_INT(c.count_at_deliver, 5); /* b had marked itself */
    CHECK_INT(f.count_at_deliver, 3);
    CHECK_INT(w.room.count, 3);
    CHECK_INT(w.room.leaving, 3);
    CHECK_INT(w.ndeparted, 0);
    CHECK(ur_links_ok(&w.room));
    /* the next broadcast skips them */
    b.mark_on_deliver = c.mark_on_deliver = d.mark_on_deliver = NULL;
    CHECK_INT(ur_say_n(&w, "c", 1, "again", 5), 3);
    CHECK_INT(a.delivered, 1); CHECK_INT(b.delivered, 1); CHECK_INT(e.delivered, 0);
    CHECK_INT(c.delivered, 2); CHECK_INT(d.delivered, 2); CHECK_INT(f.delivered, 2);
    chat__room_settle(&w.room);
    CHECK_INT(a.left_calls, 1); CHECK_INT(b.left_calls, 1); CHECK_INT(e.left_calls, 1);
    CHECK_INT(c.left_calls + d.left_calls + f.left_calls, 0);
    CHECK_INT(w.room.count, 3);
    CHECK_INT(ur_list_len(&w.room), 3);
    ur_world_end(&w);
}

static void test_room_leave_later_inside_user_list_handout(void) {
    ur_world w;
    ur_member a, b, c;
    CHECK_INT(ur_world_init(&w, 0), CHAT_OK);
    ur_member_init(&w, &a), ur_member_init(&w, &b), ur_member_init(&w, &c);
    CHECK_INT(ur_join(&w, &a, "a"), CHAT_OK);
    CHECK_INT(ur_join(&w, &b, "b"), CHAT_OK);
    CHECK_INT(ur_join(&w, &c, "c"), CHAT_OK);
    a.mark_on_deliver = &b;
    chat__room_publish_users(&w.room, 0);
    CHECK_INT(a.users, 1); CHECK_INT(b.users, 0); CHECK_INT(c.users, 1);
    CHECK_INT(c.list_len_at_deliver, 3);
    CHECK_INT(w.room.count, 2);
    a.mark_on_deliver = NULL;
    chat__room_settle(&w.room);
    CHECK_STR(w.departed, "b");
    chat__room_users_written(&w.room, &a.m), chat__room_users_written(&w.room, &c.m);
    chat__room_publish_users(&w.room, 100000); /* the leave made a new version */
    CHECK_INT(a.users, 2); CHECK_INT(c.users, 2);
    CHECK_STR(ur_last(&c), "{\"event\":\"update-users\",\"usernames\":[\"a\",\"c\"]}");
    ur_world_end(&w);
}

/* --- settle --- */

/* Members marked in one turn leave in the order they joined, whatever the order they were marked
   in: `left` (the server's on_leave) sees them as the user list showed them. */
static void test_room_settle_calls_left_once_in_join_order(void) {
    ur_world w;
    ur_member u[6];
    static const char *const names[6] = {"m0", "m1", "m2", "m3", "m4", "m5"};
    int i;
    CHECK_INT(ur_world_init(&w, 0), CHAT_OK);
    for (i = 0; i < 6; i++) {
        ur_member_init(&w, &u[i]);
        CHECK_INT(ur_join(&w, &u[i], names[i]), CHAT_OK);
    }
    /* marked out of order */
    chat__room_leave_later(&w.room, &u[4].m);
    chat__room_leave_later(&w.room, &u[1].m);
    chat__room_leave_later(&w.room, &u[5].m);
    chat__room_leave_later(&w.room, &u[0].m);
    chat__room_leave_later(&w.room, &u[1].m);
    chat__room_settle(&w.room);
    CHECK_STR(w.departed, "m0,m1,m4,m5");
    for (i = 0; i < 6; i++) CHECKF(u[i].left_calls == (i == 0 || i == 1 || i >= 4), "m%d: left called %d times", i, u[i].left_calls);
    CHECK_INT(w.room.count, 2);
    CHECK_INT(w.room.leaving, 0);
    CHECK(w.room.first == &u[2].m && w.room.last == &u[3].m && ur_links_ok(&w.room));
    chat__room_settle(&w.room); /* nothing left to settle */
    CHECK_INT(w.ndeparted, 4);
    ur_world_end(&w);
}

static void test_room_settle_handles_members_marked_inside_left(void) {
    ur_world w;
    ur_member a, b, c, d, e;
    CHECK_INT(ur_world_init(&w, 0), CHAT_OK);
    ur_member_init(&w, &a), ur_member_init(&w, &b), ur_member_init(&w, &c), ur_member_init(&w, &d), ur_member_init(&w, &e);
    CHECK_INT(ur_join(&w, &a, "a"), CHAT_OK);
    CHECK_INT(ur_join(&w, &b, "b"), CHAT_OK);
    CHECK_INT(ur_join(&w, &c, "c"), CHAT_OK);
    CHECK_INT(ur_join(&w, &d, "d"), CHAT_OK);
    CHECK_INT(ur_join(&w, &e, "e"), CHAT_OK);
    c.mark_on_left = &b; /* c's departure takes b, whose takes a: three rounds */
    b.mark_on_left = &a;
    a.mark_on_left = &c; /* c is gone by then: nothing */
    chat__room_leave_later(&w.room, &c.m);
    chat__room_settle(&w.room);
    CHECK_STR(w.departed, "c,b,a");
    CHECK_INT(a.left_calls, 1); CHECK_INT(b.left_calls, 1); CHECK_INT(c.left_calls, 1);
    CHECK_INT(d.left_calls + e.left_calls, 0);
    CHECK_INT(w.room.leaving, 0);
    CHECK_INT(w.room.count, 2);
    CHECK(w.room.first == &d.m && w.room.last == &e.m && ur_links_ok(&w.room));
    /* marked together, and one's departure marks the other again: still once each */
    d.mark_on_left = &e, e.mark_on_left = &d;
    chat__room_leave_later(&w.room, &d.m);
    chat__room_leave_later(&w.room, &e.m);
    chat__room_settle(&w.room);
    CHECK_INT(d.left_calls, 1); CHECK_INT(e.left_calls, 1);
    CHECK_INT(w.ndeparted, 5);
    CHECK_INT(w.room.count, 0); CHECK_INT(w.room.leaving, 0);
    CHECK(w.room.first == NULL && w.room.last == NULL);
    ur_world_end(&w);
}

static void test_room_say_from_inside_left_reaches_those_still_in(void) {
    ur_world w;
    ur_member a, b, c;
    CHECK_INT(ur_world_init(&w, 2), CHAT_OK);
    ur_member_init(&w, &a), ur_member_init(&w, &b), ur_member_init(&w, &c);
    CHECK_INT(ur_join(&w, &a, "a"), CHAT_OK);
    CHECK_INT(ur_join(&w, &b, "b"), CHAT_OK);
    CHECK_INT(ur_join(&w, &c, "c"), CHAT_OK);
    b.say_on_left = "bye";
    b.mark_on_left = &c; /* and takes c along: c is marked after the message went out */
    chat__room_leave_later(&w.room, &b.m);
    chat__room_settle(&w.room);
    CHECK_STR(w.departed, "b,c");
    CHECK_INT(a.delivered, 1); CHECK_INT(b.delivered, 0); CHECK_INT(c.delivered, 1);
    CHECK_STR(ur_last(&a), "{\"event\":\"send-message\",\"username\":\"b\",\"message\":\"bye\",\"id\":1,\"time\":1000}");
    CHECK_INT(w.room.history_count, 1);
    CHECK_INT(w.room.messages, 1);
    CHECK_INT(w.room.count, 1);
    CHECK(w.room.first == &a.m && w.room.last == &a.m && ur_links_ok(&w.room));
    ur_world_end(&w);
}

/* --- say and the history --- */

static void test_room_say_encodes_once_and_keeps_the_last_frames(void) {
    ur_world w;
    ur_member a, b, c;
    chat__frame *sent[5];
    char text[32], long_text[300];
    int i, k;
    CHECK_INT(ur_world_init(&w, 3), CHAT_OK);
    ur_member_init(&w, &a), ur_member_init(&w, &b), ur_member_init(&w, &c);
    a.keep = b.keep = 1; /* c takes no reference */
    CHECK_INT(ur_join(&w, &a, "alice"), CHAT_OK);
    CHECK_INT(ur_join(&w, &b, "bob"), CHAT_OK);
    CHECK_INT(ur_join(&w, &c, "c\"q"), CHAT_OK);
    for (i = 0; i < 5; i++) {
        snprintf(text, sizeof text, "m%d \"quoted\"\n", i);
        CHECK_INT(ur_say_n(&w, i % 2 ? "bob" : "alice", i % 2 ? 3 : 5, text, strlen(text)), 3);
        sent[i] = a.held[i];
        CHECK(a.nheld == i + 1 && b.nheld == i + 1 && b.held[i] == sent[i]); /* one frame for all */
    }
    CHECK_STR(ur_log(&c, 0), "{\"event\":\"send-message\",\"username\":\"alice\",\"message\":\"m0 \\\"quoted\\\"\\n\",\"id\":1,\"time\":1000}");
    CHECK_STR(ur_log(&c, 1), "{\"event\":\"send-message\",\"username\":\"bob\",\"message\":\"m1 \\\"quoted\\\"\\n\",\"id\":2,\"time\":1000}");
    CHECK_INT(c.nlog, 5);
    CHECK_INT(w.room.messages, 5);
    CHECK_INT(w.room.history_count, 3);
    for (k = 0; k < 3; k++) /* the newest three, oldest first, the very frames sent */
        CHECKF(chat__room_held(&w.room, k)->live == sent[2 + k], "history[%d]", k);
    for (i = 0; i < 5; i++) {
        CHECK(sent[i]->kind == CHAT__FRAME_SHARED);
        CHECKF(sent[i]->refs == (uint32_t)(i < 2 ? 2 : 3), "message %d: %u references", i, (unsigned)sent[i]->refs);
    }
    /* a name from inside the room, as the server says it */
    CHECK_INT(ur_say_n(&w, c.m.name, c.m.name_len, "", 0), 3);
    CHECK_STR(ur_last(&c), "{\"event\":\"send-message\",\"username\":\"c\\\"q\",\"message\":\"\",\"id\":6,\"time\":1000}");
    CHECK_INT(sent[2]->refs, 2); /* pushed out of the history */
    /* past 125 bytes the frame has a 4-byte header */
    memset(long_text, 'y', sizeof long_text - 1);
    long_text[sizeof long_text - 1] = 0;
    ur_say(&w, "bob", long_text);
    CHECK(a.nheld == 7 && a.held[6]->len == 4 + strlen(ur_last(&a)) && a.held[6]->data[1] == 126);
    {
        static const char head[] = "{\"event\":\"send-message\",\"username\":\"bob\",\"message\":\"";
        const char *got = ur_last(&c);
        size_t k, ys = 0;
        CHECK(strncmp(got, head, sizeof head - 1) == 0);
        for (k = sizeof head - 1; got[k] == 'y'; k++) ys++;
        CHECK_INT(ys, sizeof long_text - 1);
        CHECK_STR(got + k, "\",\"id\":7,\"time\":1000}");
    }
    ur_world_end(&w);
}

static void test_room_replay_gives_the_newest_that_fit_oldest_first(void) {
    ur_world w;
    ur_member a, n1, n2, n3, n4, n5;
    size_t len[5], all;
    int i;
    char text[64];
    CHECK_INT(ur_world_init(&w, 5), CHAT_OK);
    ur_member_init(&w, &a), ur_member_init(&w, &n1), ur_member_init(&w, &n2);
    ur_member_init(&w, &n3), ur_member_init(&w, &n4), ur_member_init(&w, &n5);
    CHECK_INT(ur_join(&w, &a, "a"), CHAT_OK);
    for (i = 0; i < 5; i++) {
        snprintf(text, sizeof text, "message %d%.*s", i, i * 3, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
        ur_say(&w, "a", text);
        len[i] = chat__room_held(&w.room, i)->live->len + 14; /* its replay: ,"replay":true */
    }
    all = len[0] + len[1] + len[2] + len[3] + len[4];
    CHECK_INT(ur_join(&w, &n1, "n1"), CHAT_OK);
    ur_replay(&w, &n1, len[2] + len[3] + len[4]); /* exactly three */
    CHECK_INT(n1.delivered, 3);
    CHECK_STR(ur_log(&n1, 0), "{\"event\":\"send-message\",\"username\":\"a\",\"message\":\"message 2xxxxxx\",\"id\":3,\"time\":1000,\"replay\":true}");
    CHECK_STR(ur_log(&n1, 1), "{\"event\":\"send-message\",\"username\":\"a\",\"message\":\"message 3xxxxxxxxx\",\"id\":4,\"time\":1000,\"replay\":true}");
    CHECK_STR(ur_log(&n1, 2), "{\"event\":\"send-message\",\"username\":\"a\",\"message\":\"message 4xxxxxxxxxxxx\",\"id\":5,\"time\":1000,\"replay\":true}");
    CHECK_INT(ur_join(&w, &n2, "n2"), CHAT_OK);
    ur_replay(&w, &n2, len[2] + len[3] + len[4] - 1); /* a byte short: two */
    CHECK_INT(n2.delivered, 2);
    CHECK_STR(ur_log(&n2, 0), ur_log(&n1, 1));
    CHECK_INT(ur_join(&w, &n3, "n3"), CHAT_OK);
    ur_replay(&w, &n3, all); /* everything, in order */
    CHECK_INT(n3.delivered, 5);
    CHECK_STR(ur_log(&n3, 0), "{\"event\":\"send-message\",\"username\":\"a\",\"message\":\"message 0\",\"id\":1,\"time\":1000,\"replay\":true}");
    CHECK_STR(ur_log(&n3, 4), ur_log(&n1, 2));
    ur_replay(&w, &n3, len[4] - 1); /* not even the newest: nothing */
    ur_replay(&w, &n3, 0);
    CHECK_INT(n3.delivered, 5);
    /* a refusal ends it; so does leaving from inside it; a leaving member gets nothing */
    CHECK_INT(ur_join(&w, &n4, "n4"), CHAT_OK);
    n4.refuse = 1;
    ur_replay(&w, &n4, all);
    CHECK_INT(n4.delivered, 1);
    CHECK_INT(ur_join(&w, &n5, "n5"), CHAT_OK);
    n5.mark_on_deliver = &n5;
    ur_replay(&w, &n5, all);
    CHECK_INT(n5.delivered, 1);
    ur_replay(&w, &n5, all);
    CHECK_INT(n5.delivered, 1);
    CHECK_INT(a.delivered, 5); /* replay is for one member only */
    CHECK_INT(w.room.messages, 5);
    chat__room_settle(&w.room);
    ur_world_end(&w);
}

static void test_room_history_zero_keeps_nothing(void) {
    ur_world w;
    ur_member a, b, c;
    size_t bytes, blocks;
    CHECK_INT(ur_world_init(&w, 0), CHAT_OK);
    ur_member_init(&w, &a), ur_member_init(&w, &b), ur_member_init(&w, &c);
    CHECK(w.room.history == NULL);
    CHECK_INT(ur_join(&w, &a, "a"), CHAT_OK);
    ur_say(&w, "a", "one"); /* the first grows the room's scratch buffer */
    bytes = test_heap_bytes, blocks = test_heap_blocks;
    ur_say(&w, "a", "two"); /* nobody keeps it: the frame is gone once said */
    CHECK_INT(test_heap_bytes, bytes);
    CHECK_INT(test_heap_blocks, blocks);
    CHECK_INT(a.delivered, 2);
    CHECK_STR(ur_last(&a), "{\"event\":\"send-message\",\"username\":\"a\",\"message\":\"two\",\"id\":2,\"time\":1000}");
    CHECK_INT(w.room.history_count, 0);
    CHECK_INT(w.room.messages, 2);
    c.keep = 1;
    CHECK_INT(ur_join(&w, &c, "c"), CHAT_OK);
    ur_say(&w, "c", "three");
    CHECK(c.nheld == 1 && c.held[0]->refs == 1); /* c's only */
    CHECK_INT(ur_join(&w, &b, "b"), CHAT_OK);
    ur_replay(&w, &b, (size_t)-1);
    CHECK_INT(b.delivered, 0);
    ur_world_end(&w);
    /* a negative history is none too */
    CHECK_INT(ur_world_init(&w, -3), CHAT_OK);
    CHECK_INT(w.room.history_cap, 0);
    CHECK(w.room.history == NULL);
    ur_member_init(&w, &a);
    CHECK_INT(ur_join(&w, &a, "a"), CHAT_OK);
    ur_say(&w, "a", "x");
    CHECK_INT(w.room.history_count, 0);
    CHECK_INT(a.delivered, 1);
    ur_world_end(&w);
}

/* --- freeing --- */

static void test_room_free_releases_everything(void) {
    ur_world w;
    ur_member u[8];
    static const char *const names[8] = {"a", "b", "c", "d", "e", "f", "g", "h"};
    int i;
    CHECK_INT(ur_world_init(&w, 4), CHAT_OK);
    CHECK(test_heap_blocks > w.heap_blocks); /* the history */
    for (i = 0; i < 8; i++) {
        ur_member_init(&w, &u[i]);
        u[i].keep = i % 2;
        CHECK_INT(ur_join(&w, &u[i], names[i]), CHAT_OK);
    }
    for (i = 0; i < 6; i++) ur_say(&w, names[i], "some words");
    chat__room_publish_users(&w.room, 0);
    chat__room_leave_later(&w.room, &u[2].m); /* marked, never settled: freed with the room */
    chat__room_leave_later(&w.room, &u[5].m);
    CHECK(test_heap_bytes > w.heap_bytes);
    ur_world_end(&w); /* the fakes drop their references, then chat__room_free: all back */
    CHECK_INT(w.ndeparted, 0); /* freeing is not leaving */
    CHECK(w.room.first == NULL && w.room.history == NULL && w.room.users_frame == NULL && w.room.count == 0);
}

static void unit_room_tests(void) {
    RUN(test_room_joins_in_order_and_user_list_json);
    RUN(test_room_user_list_is_one_frame_shared_by_all);
    RUN(test_room_changes_before_one_publish_make_one_list);
    RUN(test_room_member_with_list_in_flight_gets_only_the_newest_after_written);
    RUN(test_room_user_lists_spaced_by_their_cost);
    RUN(test_room_user_list_spacing_is_capped);
    RUN(test_room_user_list_spacing_holds_after_a_late_handout);
    RUN(test_room_find_never_returns_a_leaving_member);
    RUN(test_room_rejoin_with_the_same_name_before_settle);
    RUN(test_room_index_grows_with_members_marked_to_leave);
    RUN(test_room_leave_later_inside_broadcast_reaches_everyone_else);
    RUN(test_room_leave_later_inside_user_list_handout);
    RUN(test_room_settle_calls_left_once_in_join_order);
    RUN(test_room_settle_handles_members_marked_inside_left);
    RUN(test_room_say_from_inside_left_reaches_those_still_in);
    RUN(test_room_say_encodes_once_and_keeps_the_last_frames);
    RUN(test_room_replay_gives_the_newest_that_fit_oldest_first);
    RUN(test_room_history_zero_keeps_nothing);
    RUN(test_room_free_releases_everything);
}
