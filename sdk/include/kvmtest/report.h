/*
 * Checks that do not stop the test: kexpect and kexpect_eq record a failure
 * (file, line, the condition's text, the values) and let the test go on;
 * the test then fails at its end, whatever else it did, with every failed
 * check listed in order. report() is kvm-unit-tests' (lib/report.c): it
 * prints a PASS or FAIL line and counts as a kexpect. Each failed check
 * costs one exit (the host keeps the list); passing ones cost none, apart
 * from report()'s line.
 */
#ifndef KVMTEST_REPORT_H
#define KVMTEST_REPORT_H

#include <stdbool.h>
#include <stdint.h>

/*
 * kexpect(cond) or kexpect(cond, fmt, ...): true if cond holds; otherwise
 * records the failure and is false. The condition's text is shown as
 * written, as kassert's is.
 */
#define kexpect(...) KT_CAT_(KT_KEXPECT_, KT_ONE_OR_MORE_(__VA_ARGS__))(#__VA_ARGS__, __VA_ARGS__)
#define KT_KEXPECT_ONE(text, cond)                                         \
    ({                                                                     \
        bool kt_ok_ = (cond);                                              \
        if (!kt_ok_) kt_check_failed(__FILE__, __LINE__, text, NULL);      \
        kt_ok_;                                                            \
    })
#define KT_KEXPECT_MORE(text, cond, ...)                                   \
    ({                                                                     \
        bool kt_ok_ = (cond);                                              \
        if (!kt_ok_) kt_check_failed(__FILE__, __LINE__, text, __VA_ARGS__); \
        kt_ok_;                                                            \
    })

/* kexpect_eq(a, b): true if a == b (as 64-bit values, like kassert_eq); otherwise records both expressions and values. */
#define kexpect_eq(a, b)                                                                            \
    ({                                                                                              \
        uint64_t kt_left_ = (uint64_t)(a);                                                          \
        uint64_t kt_right_ = (uint64_t)(b);                                                         \
        if (kt_left_ != kt_right_) kt_check_eq_failed(__FILE__, __LINE__, #a, #b, kt_left_, kt_right_); \
        kt_left_ == kt_right_;                                                                      \
    })

/*
 * report(pass, fmt, ...): prints "PASS: message" or "FAIL: message" (after
 * the prefixes pushed with report_prefix_push) and returns pass; a FAIL is
 * a failed check, as kexpect's.
 */
#define report(pass, ...) kt_report_check(__FILE__, __LINE__, !!(pass), __VA_ARGS__)
#define report_pass(...) report(true, __VA_ARGS__)
#define report_fail(...) report(false, __VA_ARGS__)
/* Prints "SKIP: message": a part of the test that cannot run here. The test goes on (kskip ends it). */
KT_PRINTF(1, 2) void report_skip(const char *fmt, ...);
/* Prints "INFO: message". */
KT_PRINTF(1, 2) void report_info(const char *fmt, ...);
/* Prefixes for the messages that follow, "outer: inner: message"; at most 8, 128 bytes in all. */
void report_prefix_push(const char *prefix);
void report_prefix_pop(void);
/* Prints "SUMMARY: N tests, M unexpected failures" and returns M (the test fails at its end anyway if M > 0). */
int report_summary(void);

/* kvm-unit-tests' printf: sprint, returning the length. */
KT_PRINTF(1, 2) int printf(const char *fmt, ...);

/* The checks that failed so far in this test. */
unsigned kexpect_failures(void);

/* fmt may be NULL (kexpect without a message); text is "cond[, fmt, ...]" as written. */
KT_PRINTF(4, 5) void kt_check_failed(const char *file, uint32_t line, const char *text, const char *fmt, ...);
void kt_check_eq_failed(const char *file, uint32_t line, const char *left_expr, const char *right_expr, uint64_t left,
                        uint64_t right);
KT_PRINTF(4, 5) bool kt_report_check(const char *file, uint32_t line, bool pass, const char *fmt, ...);

#endif /* KVMTEST_REPORT_H */
