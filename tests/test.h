/* test.h - the smallest test harness that does the job: checks record failures without stopping
   the test, each test passes or fails as a whole, and the last line is "N passed, M failed". */
#ifndef TEST_H
#define TEST_H

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int test_passed, test_failed, test_checks_failed, test_verbose;
static const char *test_current = "", *test_filter;

static void test_fail_at(const char *file, int line, const char *fmt, ...) {
    va_list ap;
    if (!test_checks_failed) printf("FAIL %s\n", test_current);
    test_checks_failed++;
    printf("  %s:%d: ", file, line);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
}

#define CHECK(cond) \
    do { if (!(cond)) test_fail_at(__FILE__, __LINE__, "%s", #cond); } while (0)
/* CHECKF(cond, fmt, ...): with a message that shows the values involved */
#define CHECKF(cond, ...) \
    do { if (!(cond)) test_fail_at(__FILE__, __LINE__, __VA_ARGS__); } while (0)
#define CHECK_INT(a, b) \
    do { long long a_ = (long long)(a), b_ = (long long)(b); \
         if (a_ != b_) test_fail_at(__FILE__, __LINE__, "%s == %s: %lld != %lld", #a, #b, a_, b_); } while (0)
#define CHECK_STR(a, b) \
    do { const char *a_ = (a), *b_ = (b); \
         if (!a_ || !b_ || strcmp(a_, b_) != 0) \
             test_fail_at(__FILE__, __LINE__, "%s == %s: \"%s\" != \"%s\"", #a, #b, a_ ? a_ : "(null)", b_ ? b_ : "(null)"); \
    } while (0)
#define CHECK_MEM(a, an, b, bn) \
    do { size_t an_ = (an), bn_ = (bn); \
         if (an_ != bn_ || memcmp((a), (b), an_) != 0) \
             test_fail_at(__FILE__, __LINE__, "%s (%zu bytes) != %s (%zu bytes)", #a, an_, #b, bn_); } while (0)

static void test_alarm(int sig) {
    static const char msg[] = "FAIL (timeout: the test ran for more than its time limit)\n";
    (void)sig;
    if (write(1, msg, sizeof msg - 1) < 0) {}
    _exit(3);
}

/* Runs one test unless a filter excludes it; a test that hangs is ended by an alarm. */
static void test_run(const char *name, void (*fn)(void), unsigned seconds) {
    if (test_filter && !strstr(name, test_filter)) return;
    test_current = name;
    test_checks_failed = 0;
    signal(SIGALRM, test_alarm);
    alarm(seconds);
    fn();
    alarm(0);
    if (test_checks_failed) test_failed++;
    else {
        test_passed++;
        if (test_verbose) printf("ok   %s\n", name);
    }
    fflush(stdout);
}

#define RUN(fn) test_run(#fn, fn, 60)

#endif
