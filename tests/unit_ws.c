static void unit_ws_tests(void) {}
