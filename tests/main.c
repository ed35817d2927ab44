/* The core test suite: unit tests of each layer of chat.h, the JSON conformance corpus,
   integration tests against real servers over loopback, and the two-translation-unit link check
   (api_only.c is the second unit). Run from the repository root: tests/run_tests [-v] [FILTER]
   or against another server speaking the same protocol: tests/run_tests --external HOST:PORT */
#define CHAT_IMPLEMENTATION
#include "../chat.h"

#include "test.h"

static const char *test_root = "."; /* the repository root: data under tests/data, the binary ./chat */

#include "unit_bytes.c"
#include "unit_json.c"
#include "unit_http.c"
#include "unit_ws.c"
#include "integration.c"

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
    if (external) {
        integration_external_tests(external);
    } else {
        unit_bytes_tests();
        unit_json_tests();
        unit_http_tests();
        unit_ws_tests();
        RUN(test_two_translation_units);
        integration_tests();
    }
    printf("%d passed, %d failed\n", test_passed, test_failed);
    return test_failed ? 1 : 0;
}
