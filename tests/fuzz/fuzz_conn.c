/* libFuzzer target: a whole server connection path without the poll loop. Two connections on
   socketpairs get the input in alternating chunks (HTTP requests, upgrades, frames, JSON), and
   each chunk ends with what a loop turn does after reading: user lists, flushing, reaping, and
   now and then the timers, with the clock moved on. Everything is freed at the end, so leaks
   show. */
#include "fuzz.h"

#include <sys/socket.h>

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    chat_config cfg;
    chat_server *srv;
    chat__conn *c[2];
    int peer[2], i, turn = 0;
    fuzz_chunker k;
    const unsigned char *chunk;
    size_t n;
    memset(&cfg, 0, sizeof cfg);
    cfg.max_message = 2048, cfg.max_header = 1024, cfg.max_backlog = 64 * 1024, cfg.max_clients = 2;
    srv = chat_server_create(&cfg);
    if (!srv) return 0;
    chat_server_add_asset(srv, "/", "text/html", "<p>hi</p>", 9);
    srv->now = 1000000;
    for (i = 0; i < 2; i++) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) abort();
        chat__set_nonblock_cloexec(sv[0]);
        chat__set_nonblock_cloexec(sv[1]);
        c[i] = chat__conn_new(srv, sv[0]);
        if (!c[i]) abort();
        peer[i] = sv[1];
    }
    fuzz_chunker_init(&k, data, size);
    while ((n = fuzz_next(&k, &chunk)) > 0) {
        chat__conn *conn = c[turn & 1];
        char sink[4096];
        if (conn->state != CHAT__DEAD) {
            size_t room;
            unsigned char *space = chat__conn_rx_space(srv, &room);
            if (n > room) n = room;
            if (!space) abort();
            FUZZ_UNPOISON(space, room);
            memcpy(space, chunk, n);
            FUZZ_POISON(space + n, room - n); /* what a read did not fill is not input */
            if (chunk[0] == 0xFF && n == 1) chat__conn_eof(srv, conn); /* sometimes the peer hangs up */
            else chat__conn_received(srv, conn, n);
        }
        if ((k.state & 7) == 0) { /* time passes: deadlines, pings */
            srv->now += (k.state >> 8) & 0xFFFF;
            chat__sweep(srv);
        }
        FUZZ_UNPOISON(srv->rxbuf, CHAT_READ_CHUNK);
        if (srv->resume_pending) chat__resume_held(srv); /* input held back behind a reply */
        chat__room_publish_users(&srv->room, srv->now);
        chat__flush_all(srv);
        chat__room_settle(&srv->room); /* the end of a turn, short of freeing the dead */
        for (i = 0; i < 2; i++)
            while (read(peer[i], sink, sizeof sink) > 0) {}
        turn++;
    }
    /* the loop's own reaping would move slots; freeing the server frees every connection */
    for (i = 0; i < 2; i++) close(peer[i]);
    chat_server_free(srv);
    return 0;
}
