/* The core test suite: unit tests of each layer of chat.h, the JSON conformance corpus,
   integration tests against real servers over loopback, and the two-translation-unit link check
   (api_only.c is the second unit). Run from the repository root: tests/run_tests [-v] [FILTER]
   or against another server speaking the same protocol: tests/run_tests --external HOST:PORT */
#define _POSIX_C_SOURCE 200809L /* before any system header: this file includes one before chat.h */
#include <pthread.h>
#include <stdlib.h>

/* Every allocation of chat.h goes through these, so tests can see the heap a server holds. The
   lock is for chat_server_post, which allocates on the poster's thread. */
static size_t test_heap_bytes, test_heap_blocks;
static pthread_mutex_t test_heap_lock = PTHREAD_MUTEX_INITIALIZER;
typedef union test_heap_header {
    size_t size;
    long double align_ld;
    void *align_p;
    long long align_ll;
} test_heap_header;

static void *test_malloc(size_t n) {
    test_heap_header *h = (test_heap_header *)malloc(sizeof *h + n);
    if (!h) return NULL;
    h->size = n;
    pthread_mutex_lock(&test_heap_lock);
    test_heap_bytes += n, test_heap_blocks++;
    pthread_mutex_unlock(&test_heap_lock);
    return h + 1;
}

static void test_free(void *p) {
    test_heap_header *h;
    if (!p) return;
    h = (test_heap_header *)p - 1;
    pthread_mutex_lock(&test_heap_lock);
    test_heap_bytes -= h->size, test_heap_blocks--;
    pthread_mutex_unlock(&test_heap_lock);
    free(h);
}

static void *test_realloc(void *p, size_t n) {
    test_heap_header *h;
    size_t old;
    if (!p) return test_malloc(n);
    h = (test_heap_header *)p - 1;
    old = h->size;
    h = (test_heap_header *)realloc(h, sizeof *h + n);
    if (!h) return NULL;
    h->size = n;
    pthread_mutex_lock(&test_heap_lock);
    test_heap_bytes += n - old;
    pthread_mutex_unlock(&test_heap_lock);
    return h + 1;
}

#define CHAT_MALLOC(n) test_malloc(n)
#define CHAT_REALLOC(p, n) test_realloc(p, n)
#define CHAT_FREE(p) test_free(p)
/* The history file's bound, small enough that continuity.c can pass it in a second */
#define CHAT_HISTORY_FILE_MAX (4u << 20)
#define CHAT_IMPLEMENTATION
#include "../chat.h"

#include "test.h"

static const char *test_root = "."; /* the repository root: data under tests/data, the binary ./chat */

#include "unit_bytes.c"
#include "unit_json.c"
#include "unit_http.c"
#include "unit_ws.c"
#include "unit_room.c"
#include "unit_hfile.c"
#include "unit_mqtt.c"
#include "integration.c"
#include "conformance.c"
#include "faults.c"
#include "deploy.c"
#include "limits.c"
#include "seams.c"
#include "door.c"
#include "continuity.c"
#ifdef CHAT_TLS_MBEDTLS
#include "tls/wss.c" /* make tls: the suite's library servers behind TLS, and TLS's own tests */
#endif

int api_only_check(void); /* api_only.c */

static void test_two_translation_units(void) {
    CHECK_INT(api_only_check(), 0);
}

int main(int argc, char **argv) {
    const char *external = NULL;
    int i;
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-v") == 0) test_verbose = 1;
        else if (strcmp(argv[i], "--external") == 0 && i + 1 < argc) external = argv[++i];
        else test_filter = argv[i];
    }
    if (getenv("CHAT_TEST_ROOT")) test_root = getenv("CHAT_TEST_ROOT");
    setvbuf(stdout, NULL, _IOLBF, 0);
#ifdef CHAT_TLS_MBEDTLS
    if (wss_setup() != 0) return 1;
#endif
    if (external) {
        integration_external_tests(external);
    } else {
        unit_bytes_tests();
        unit_json_tests();
        unit_http_tests();
        unit_ws_tests();
        unit_room_tests();
        unit_hfile_tests();
        unit_mqtt_tests();
        RUN(test_two_translation_units);
        integration_tests();
        conformance_tests();
        fault_tests();
        deploy_tests();
        limits_tests();
        seams_tests();
        door_tests();
        continuity_tests();
#ifdef CHAT_TLS_MBEDTLS
        wss_tests();
#endif
    }
    printf("%d passed, %d failed\n", test_passed, test_failed);
    return test_failed ? 1 : 0;
}
