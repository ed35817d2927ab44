/* heap_server.c - the example server (example_main.c) with chat.h's heap counted.

   chat.h takes its allocator from CHAT_MALLOC / CHAT_REALLOC / CHAT_FREE. Here they are counting
   wrappers: every block carries a 16-byte header with its requested size (so realloc and free
   know the old size, and the pointer handed out keeps malloc's 16-byte alignment), and two
   counters hold the bytes and blocks chat.h has live. Only chat.h's own allocations are counted
   (not libc's, e.g. stdio buffers), and the bytes are the sizes chat.h asked for, without the
   header or malloc's own overhead.

   kill -USR1 PID  makes the server write one line to stderr:
       heap_bytes=N heap_blocks=M
   from the signal handler, with write() only and numbers formatted by hand (async-signal-safe).
   The counters are plain aligned words updated by the one server thread; the handler runs on
   that thread between instructions, so it sees a value from before or after an update.

   Build (tests/bench/run.sh does):  cc -O2 -o heap_server tests/bench/heap_server.c
   Use: the same command line as the example server. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* chat.h asks for POSIX itself only when it comes before any system header */
#endif
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HEAP_HEADER 16 /* >= sizeof(size_t), and keeps the 16-byte alignment of malloc */

static volatile size_t heap_bytes, heap_blocks;

static void *heap_malloc(size_t n) {
    unsigned char *p;
    if (n > (size_t)-1 - HEAP_HEADER) return NULL;
    p = (unsigned char *)malloc(HEAP_HEADER + n);
    if (!p) return NULL;
    memcpy(p, &n, sizeof n);
    heap_bytes += n;
    heap_blocks++;
    return p + HEAP_HEADER;
}

static void *heap_realloc(void *ptr, size_t n) {
    unsigned char *old, *p;
    size_t was;
    if (!ptr) return heap_malloc(n);
    if (n > (size_t)-1 - HEAP_HEADER) return NULL;
    old = (unsigned char *)ptr - HEAP_HEADER;
    memcpy(&was, old, sizeof was);
    p = (unsigned char *)realloc(old, HEAP_HEADER + n);
    if (!p) return NULL; /* the old block stays valid and counted */
    memcpy(p, &n, sizeof n);
    heap_bytes = heap_bytes - was + n;
    return p + HEAP_HEADER;
}

static void heap_free(void *ptr) {
    unsigned char *old;
    size_t was;
    if (!ptr) return;
    old = (unsigned char *)ptr - HEAP_HEADER;
    memcpy(&was, old, sizeof was);
    heap_bytes -= was;
    heap_blocks--;
    free(old);
}

#define CHAT_MALLOC(n) heap_malloc(n)
#define CHAT_REALLOC(p, n) heap_realloc((p), (n))
#define CHAT_FREE(p) heap_free(p)

#include "../../example_main.c"

static size_t heap_put_str(char *buf, size_t at, const char *s) {
    while (*s) buf[at++] = *s++;
    return at;
}

static size_t heap_put_num(char *buf, size_t at, size_t v) {
    char digits[24];
    size_t n = 0;
    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n) buf[at++] = digits[--n];
    return at;
}

static void heap_report(int sig) {
    char line[96];
    size_t n = 0, bytes = heap_bytes, blocks = heap_blocks, off = 0;
    int saved = errno;
    (void)sig;
    n = heap_put_str(line, n, "heap_bytes=");
    n = heap_put_num(line, n, bytes);
    n = heap_put_str(line, n, " heap_blocks=");
    n = heap_put_num(line, n, blocks);
    line[n++] = '\n';
    while (off < n) { /* stderr is a file or a pipe: a short write is unlikely, but finish it */
        ssize_t w = write(2, line + off, n - off);
        if (w > 0) off += (size_t)w;
        else if (w < 0 && errno == EINTR) continue;
        else break;
    }
    errno = saved;
}

__attribute__((constructor)) static void heap_install(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = heap_report;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR1, &sa, NULL);
}
