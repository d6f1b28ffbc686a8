/*
 * Where a library call was made from, for the runtime's messages: the
 * functions in kvmtest/alloc.h and kvmtest/vm.h are also macros of the same
 * name that note the caller's file and line around the call, so that a
 * misuse (the heap used up, a page freed twice) panics at the test's line,
 * not inside the runtime. Taking a function's address, or calling it as
 * (alloc_page)(), bypasses the macro; the message then names the runtime.
 */
#ifndef KVMTEST_CALLER_H
#define KVMTEST_CALLER_H

#include <stdint.h>

struct kt_caller {
    const char *file;
    uint32_t line;
};
/* Notes file:line, returning what was noted before (nested calls: an argument that is itself such a call). */
struct kt_caller kt_caller_set(const char *file, uint32_t line);
void kt_caller_restore(struct kt_caller previous);
/* kpanic at the noted caller's line, or at file:line when none is noted. */
__attribute__((noreturn, cold, format(printf, 3, 4))) void kt_misuse(const char *file, uint32_t line, const char *fmt, ...);

#define KT_AT_(call)                                                    \
    ({                                                                  \
        struct kt_caller kt_saved_ = kt_caller_set(__FILE__, __LINE__); \
        __auto_type kt_result_ = (call);                                \
        kt_caller_restore(kt_saved_);                                   \
        kt_result_;                                                     \
    })
#define KT_AT_VOID_(call)                                               \
    do {                                                                \
        struct kt_caller kt_saved_ = kt_caller_set(__FILE__, __LINE__); \
        (call);                                                         \
        kt_caller_restore(kt_saved_);                                   \
    } while (0)

#endif /* KVMTEST_CALLER_H */
