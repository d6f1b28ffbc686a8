/*
 * Skipping a test at run time: kskip formats the reason and hands it to the
 * host with the terminal skip hypercall. The reason lives in a static buffer
 * like report.c's messages, so the host can still read it however the test
 * left its stack.
 */
#include "runtime.h"

#define REASON_BUFFER 1024

static char reason[REASON_BUFFER];

void kt_skip(const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    int full = kvsnprintf(reason, sizeof(reason), fmt, args);
    va_end(args);
    size_t len = full < 0 ? 0 : (size_t)full < sizeof(reason) ? (size_t)full : sizeof(reason) - 1;
    kt_hypercall(KT_HC_SKIP, (uint64_t)(uintptr_t)reason, len);
    /* The host ends the test at the hypercall; should it ever resume the
     * guest, stop here rather than run the rest of a skipped test. */
    for (;;) __asm__ volatile("cli; hlt");
}
