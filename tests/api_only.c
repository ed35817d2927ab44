/* A second translation unit that includes chat.h without CHAT_IMPLEMENTATION: it must see the
   declarations only, and link against the implementation compiled in main.c. */
#include "../chat.h"

#include <string.h>

#ifdef CHAT_IMPLEMENTATION_ONCE
#error "the implementation leaked into a file that did not ask for it"
#endif

int api_only_check(void) {
    chat_config config;
    chat_server *srv;
    int failures = 0;
    memset(&config, 0, sizeof config);
    config.max_clients = 3;
    srv = chat_server_create(&config);
    if (!srv) return 1;
    if (chat_server_port(srv) != 0) failures++;
    if (chat_server_user_count(srv) != 0) failures++;
    if (chat_server_add_asset(srv, "/x", "text/plain", "x", 1) != CHAT_OK) failures++;
    if (chat_server_add_asset(srv, "no-slash", "text/plain", "x", 1) != CHAT_EINVAL) failures++;
    if (strcmp(chat_strerror(CHAT_ENOMEM), "out of memory") != 0) failures++;
    chat_server_free(srv);
    return failures;
}
