/* myserver.c - chat.h in your own program: a system name nobody can take, a veto that leaves
   no trace, and greetings once a user is in. (tests/embed_example.c is README.md's example;
   keep the two the same.)
   Build: cc -O2 -o myserver myserver.c      (add -pthread if threads call chat_server_post) */
#define CHAT_IMPLEMENTATION
#include "chat.h" /* first, before any system header (see "Include order") */

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char page[] = "<!doctype html><title>chat</title>..."; /* or the bundled page */
static chat_server *srv;

static void on_signal(int sig) {
    (void)sig;
    chat_server_stop(srv); /* async-signal-safe */
}

/* The veto, before the name is taken: nothing has been said about the user yet, so a refused
   name is never announced and never enters the history. */
static int on_join(void *user, chat_server *s, const char *name, size_t len) {
    (void)user, (void)s, (void)len;
    return strcmp(name, "root") == 0; /* nonzero refuses: close 1008 "username refused" */
}

/* The user is in the room. */
static void on_joined(void *user, chat_server *s, const char *name, size_t len) {
    static const char welcome[] = "welcome! everyone here sees what you write";
    char line[128];
    (void)user;
    chat_server_send(s, name, "server", welcome, sizeof welcome - 1); /* the newcomer only */
    snprintf(line, sizeof line, "%.*s joined", (int)len, name);
    chat_server_broadcast(s, "server", line, strlen(line)); /* everyone, the newcomer too */
}

int main(void) {
    static const char *const reserved[] = {"server", NULL}; /* only the program speaks as these */
    const char *port = getenv("PORT");                      /* 0: any free port */
    chat_config cfg;
    struct sigaction sa;
    memset(&cfg, 0, sizeof cfg); /* every zero field means "the default" */
    cfg.max_clients = 32;
    cfg.reserved_names = reserved;
    cfg.on_join = on_join;
    cfg.on_joined = on_joined;
    srv = chat_server_create(&cfg);
    if (!srv) return 1;
    chat_server_add_asset(srv, "/", "text/html; charset=UTF-8", page, sizeof page - 1);
    if (chat_server_listen(srv, NULL, port ? atoi(port) : 8080) != CHAT_OK) return 1;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    printf("Listening at http://localhost:%d\n", chat_server_port(srv));
    fflush(stdout);
    chat_server_run(srv); /* until a signal stops it: every client gets close 1001 */
    chat_server_free(srv);
    return 0;
}
