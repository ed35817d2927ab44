/* fuzz.h - shared by the libFuzzer targets: chat.h's implementation, and a tiny deterministic
   chunker so every target can also cut its input at arbitrary boundaries. */
#define CHAT_IMPLEMENTATION
#include "../../chat.h"

#include <stdlib.h>

/* Splits [data, data+size) into chunks whose sizes come from the input's first bytes. */
typedef struct fuzz_chunker {
    const unsigned char *p, *end;
    uint32_t state;
} fuzz_chunker;

CHAT__FN void fuzz_chunker_init(fuzz_chunker *k, const unsigned char *data, size_t size) {
    k->state = 2166136261u;
    if (size >= 4) k->state ^= (uint32_t)data[0] | (uint32_t)data[1] << 8 | (uint32_t)data[2] << 16 | (uint32_t)data[3] << 24, data += 4, size -= 4;
    k->p = data, k->end = data + size;
}

/* The next chunk: mostly small (down to single bytes), sometimes everything left. */
CHAT__FN size_t fuzz_next(fuzz_chunker *k, const unsigned char **chunk) {
    size_t left = (size_t)(k->end - k->p), n;
    k->state = k->state * 1103515245u + 12345u;
    switch ((k->state >> 16) & 3) {
    case 0: n = 1; break;
    case 1: n = 1 + ((k->state >> 8) & 15); break;
    case 2: n = 1 + ((k->state >> 4) & 511); break;
    default: n = left; break;
    }
    if (n > left) n = left;
    *chunk = k->p;
    k->p += n;
    return n;
}

#define FUZZ_CHECK(cond) do { if (!(cond)) abort(); } while (0)

/* The unused part of every buffer handed to chat.h is poisoned, so a read past a span (a str*
   call on bytes that are not a string) faults under ASan instead of reading stale zeros. */
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FUZZ_ASAN 1
#endif
#endif
#if !defined(FUZZ_ASAN) && defined(__SANITIZE_ADDRESS__)
#define FUZZ_ASAN 1
#endif
#ifdef FUZZ_ASAN
#include <sanitizer/asan_interface.h>
#define FUZZ_POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define FUZZ_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define FUZZ_POISON(p, n) ((void)(p), (void)(n))
#define FUZZ_UNPOISON(p, n) ((void)(p), (void)(n))
#endif
