/*
 * Failing a test: kassert, kassert_eq and kpanic fill a struct kt_report and
 * send it with the terminal report hypercall. The host reads the strings
 * through the pointers, so the formatted message lives in a static buffer
 * (the stack would do too, but a static one survives a smashed stack).
 */
#include "runtime.h"

#define MESSAGE_BUFFER 1024

static char message[MESSAGE_BUFFER];

void kt_report(struct kt_report *report)
{
    kt_hypercall(KT_HC_REPORT, (uint64_t)(uintptr_t)report, 0);
    /* The host ends the test at the hypercall; should it ever resume the
     * guest, stop here rather than run on past a failed check. */
    for (;;) __asm__ volatile("cli; hlt");
}

static uint64_t ptr(const char *s)
{
    return (uint64_t)(uintptr_t)s;
}

static const char *format_message(const char *fmt, va_list args)
{
    kvsnprintf(message, sizeof(message), fmt, args);
    return message;
}

void kt_assert_failed_msg(const char *file, uint32_t line, const char *expr, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    /* kassert adds one space in front of the user's format (kvmtest.h); a
     * format that is only that space means kassert(cond) without a message. */
    fmt++;
    const char *text = fmt[0] ? format_message(fmt, args) : 0;
    va_end(args);
    struct kt_report report = {
        .kind = KT_REPORT_ASSERT, .line = line, .file = ptr(file), .expr = ptr(expr), .message = ptr(text),
    };
    kt_report(&report);
}

void kt_assert_eq_failed(const char *file, uint32_t line, const char *expr, const char *left_expr,
                         const char *right_expr, uint64_t left, uint64_t right)
{
    struct kt_report report = {
        .kind = KT_REPORT_ASSERT_EQ,
        .line = line,
        .file = ptr(file),
        .expr = ptr(expr),
        .left_expr = ptr(left_expr),
        .right_expr = ptr(right_expr),
        .left = left,
        .right = right,
    };
    kt_report(&report);
}

void kt_panic(const char *file, uint32_t line, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    const char *text = format_message(fmt, args);
    va_end(args);
    struct kt_report report = { .kind = KT_REPORT_PANIC, .line = line, .file = ptr(file), .message = ptr(text) };
    kt_report(&report);
}
