/*
 * Console output: sprint and sprintln format into a stack buffer and hand
 * the whole message to the host in one write hypercall, because every exit
 * costs far more than formatting does (a byte-per-exit serial port would cost
 * one exit per character). Messages longer than the buffer go out in pieces.
 */
#include "runtime.h"

#define PRINT_BUFFER 512

void kt_console_write(const char *bytes, size_t len)
{
    if (len) kt_hypercall(KT_HC_WRITE, (uint64_t)(uintptr_t)bytes, len);
}

static void flush_to_console(struct kt_sink *sink)
{
    kt_console_write(sink->buf, sink->len);
    sink->len = 0;
}

static void print(const char *fmt, va_list args, bool newline)
{
    char buf[PRINT_BUFFER];
    struct kt_sink sink = { .buf = buf, .cap = sizeof(buf), .len = 0, .total = 0, .flush = flush_to_console };
    kt_format(&sink, fmt, args);
    if (newline) kt_sink_putc(&sink, '\n');
    flush_to_console(&sink);
}

void sprint(const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    print(fmt, args, false);
    va_end(args);
}

void sprintln(const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    print(fmt, args, true);
    va_end(args);
}
