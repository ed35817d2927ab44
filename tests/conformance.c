/* RFC 6455 conformance, by Autobahn|Testsuite case class: placeholder until written */
static void conformance_tests(void) {}
