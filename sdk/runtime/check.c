/*
 * Non-fatal checks (kvmtest/report.h): each failure goes to the host at
 * once with the check hypercall, which keeps the list and fails the test at
 * its end; the guest runs on. The strings are read during the hypercall, so
 * they may live on the stack.
 */
#define KT_NO_CALLER_MACROS
#include "runtime.h"

#define MESSAGE_BUFFER 1024
#define MAX_PREFIXES 8
#define PREFIX_BUFFER 128

static unsigned failures, checks;
static char prefix[PREFIX_BUFFER];
static size_t prefix_ends[MAX_PREFIXES];
static unsigned prefixes;

static uint64_t ptr(const char *s)
{
    return (uint64_t)(uintptr_t)s;
}

static void send(struct kt_report *report)
{
    failures++;
    kt_hypercall(KT_HC_CHECK, ptr((const char *)report), 0);
}

void kt_check_failed(const char *file, uint32_t line, const char *text, const char *fmt, ...)
{
    char condition[MESSAGE_BUFFER], message[MESSAGE_BUFFER];
    kt_condition_text(condition, sizeof(condition), text);
    struct kt_report report = { .kind = KT_REPORT_CHECK, .line = line, .file = ptr(file), .expr = ptr(condition) };
    if (fmt) {
        va_list args;
        va_start(args, fmt);
        kvsnprintf(message, sizeof(message), fmt, args);
        va_end(args);
        report.message = ptr(message);
    }
    checks++;
    send(&report);
}

void kt_check_eq_failed(const char *file, uint32_t line, const char *left_expr, const char *right_expr, uint64_t left,
                        uint64_t right)
{
    struct kt_report report = {
        .kind = KT_REPORT_CHECK_EQ,
        .line = line,
        .file = ptr(file),
        .left_expr = ptr(left_expr),
        .right_expr = ptr(right_expr),
        .left = left,
        .right = right,
    };
    checks++;
    send(&report);
}

/* "PASS: prefix: message" into line; returns where the message starts. */
static const char *format_line(char *line, size_t size, const char *kind, const char *fmt, va_list args)
{
    int n = ksnprintf(line, size, "%s: %s", kind, prefix);
    size_t at = n < 0 ? 0 : (size_t)n < size ? (size_t)n : size - 1;
    kvsnprintf(line + at, size - at, fmt, args);
    return line + at;
}

bool kt_report_check(const char *file, uint32_t line, bool pass, const char *fmt, ...)
{
    char text[MESSAGE_BUFFER];
    va_list args;
    va_start(args, fmt);
    format_line(text, sizeof(text), pass ? "PASS" : "FAIL", fmt, args);
    va_end(args);
    sprintln("%s", text);
    checks++;
    if (!pass) {
        /* The message the host lists: "FAIL: prefix: message". */
        struct kt_report report = { .kind = KT_REPORT_CHECK, .line = line, .file = ptr(file), .message = ptr(text) };
        send(&report);
    }
    return pass;
}

static void print_kind(const char *kind, const char *fmt, va_list args)
{
    char text[MESSAGE_BUFFER];
    format_line(text, sizeof(text), kind, fmt, args);
    sprintln("%s", text);
}

void report_skip(const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    print_kind("SKIP", fmt, args);
    va_end(args);
}

void report_info(const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    print_kind("INFO", fmt, args);
    va_end(args);
}

void report_prefix_push(const char *p)
{
    size_t len = strlen(prefix);
    if (prefixes == MAX_PREFIXES) kt_misuse(__FILE__, __LINE__, "report_prefix_push(\"%s\"): more than %d prefixes", p, MAX_PREFIXES);
    if (len + strlen(p) + 3 > sizeof(prefix)) kt_misuse(__FILE__, __LINE__, "report_prefix_push(\"%s\"): the prefixes pass %d bytes", p, PREFIX_BUFFER);
    prefix_ends[prefixes++] = len;
    ksnprintf(prefix + len, sizeof(prefix) - len, "%s: ", p);
}

void report_prefix_pop(void)
{
    if (!prefixes) kt_misuse(__FILE__, __LINE__, "report_prefix_pop: no prefix to pop");
    prefix[prefix_ends[--prefixes]] = 0;
}

int report_summary(void)
{
    sprintln("SUMMARY: %u tests, %u unexpected failures", checks, failures);
    return (int)failures;
}

unsigned kexpect_failures(void)
{
    return failures;
}

int printf(const char *fmt, ...)
{
    char text[MESSAGE_BUFFER];
    va_list args;
    va_start(args, fmt);
    int n = kvsnprintf(text, sizeof(text), fmt, args);
    va_end(args);
    kt_console_write(text, n < 0 ? 0 : (size_t)n < sizeof(text) ? (size_t)n : sizeof(text) - 1);
    return n;
}
