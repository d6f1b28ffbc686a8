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

void kt_assert_failed(const char *file, uint32_t line, const char *expr)
{
    struct kt_report report = { .kind = KT_REPORT_ASSERT, .line = line, .file = ptr(file), .expr = ptr(expr) };
    kt_report(&report);
}

static char condition[MESSAGE_BUFFER];

/*
 * The condition out of kassert's "cond, fmt, args" text: everything before
 * the first comma that is outside brackets, string and character literals.
 * Shared with kexpect's check.c.
 */
void kt_condition_text(char *out, size_t size, const char *text)
{
    int depth = 0;
    char quote = 0;
    size_t n = 0;
    for (; text[n] && n + 1 < size; n++) {
        char c = text[n];
        if (quote) {
            if (c == '\\' && text[n + 1]) n++;
            else if (c == quote) quote = 0;
        } else if (c == '"' || c == '\'') {
            quote = c;
        } else if (c == '(' || c == '[' || c == '{') {
            depth++;
        } else if (c == ')' || c == ']' || c == '}') {
            depth--;
        } else if (c == ',' && depth == 0) {
            break;
        }
    }
    memcpy(out, text, n);
    out[n] = 0;
}

static const char *condition_text(const char *text)
{
    kt_condition_text(condition, sizeof(condition), text);
    return condition;
}

void kt_assert_failed_msg(const char *file, uint32_t line, const char *expr, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    const char *text = format_message(fmt, args);
    va_end(args);
    struct kt_report report = {
        .kind = KT_REPORT_ASSERT, .line = line, .file = ptr(file), .expr = ptr(condition_text(expr)), .message = ptr(text),
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
