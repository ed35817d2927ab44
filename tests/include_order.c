/* Include order (make test builds this): a system header before chat.h under -std=c99. glibc
   then hides POSIX for the whole file, and chat.h cannot undo that, so it must stop with its own
   #error that says what to do, not with "storage size of 'hints' isn't known". Where the libc
   lets it (musl, macOS), the file simply builds. With _POSIX_C_SOURCE first it always builds. */
#include <stdio.h>
#define CHAT_IMPLEMENTATION
#include "../chat.h"

int main(void) {
    chat_server *srv = chat_server_create(NULL);
    if (!srv) return 1;
    printf("%s\n", chat_strerror(chat_server_listen(srv, "127.0.0.1", 0)));
    chat_server_free(srv);
    return 0;
}
