/*
 * The caller noted by kvmtest/caller.h's macros, and the panic that names
 * it: a library misuse is reported at the test's line.
 */
#define KT_NO_CALLER_MACROS
#include "runtime.h"

static struct kt_caller caller;

struct kt_caller kt_caller_set(const char *file, uint32_t line)
{
    struct kt_caller previous = caller;
    caller = (struct kt_caller){ file, line };
    return previous;
}

void kt_caller_restore(struct kt_caller previous)
{
    caller = previous;
}

void kt_misuse(const char *file, uint32_t line, const char *fmt, ...)
{
    static char message[1024];
    va_list args;
    va_start(args, fmt);
    kvsnprintf(message, sizeof(message), fmt, args);
    va_end(args);
    if (caller.file) kt_panic(caller.file, caller.line, "%s", message);
    kt_panic(file, line, "%s", message);
}
