/*
 * Running code in ring 3, as kvm-unit-tests' lib/x86/usermode.h:
 * run_in_user(fn, fault_vector, arg1..arg4, &raised) calls fn(arg1, ..,
 * arg4) at CPL 3 and returns its return value, or 0 with raised = true
 * when fn raised fault_vector (0-31); execution is then back in ring 0,
 * after run_in_user. docs/guide.md ("Ring 3") has what it changes on the
 * machine: a GDT with user segments while fn runs, the U bit on the image's
 * pages, TSS.rsp0.
 */
#ifndef KVMTEST_USERMODE_H
#define KVMTEST_USERMODE_H

#include <stdbool.h>
#include <stdint.h>

#include <kvmtest/desc.h>

/* Called with up to four integer arguments (cast a function that takes them). */
typedef uint64_t (*usermode_func)(void);

/*
 * As run_in_user, and ex_handler (if not NULL) is called with the ex_regs of
 * a fault_vector exception before execution goes back to ring 0.
 */
uint64_t run_in_user_ex(usermode_func func, unsigned int fault_vector, uint64_t arg1, uint64_t arg2,
                        uint64_t arg3, uint64_t arg4, bool *raised_vector, handler ex_handler);

static inline uint64_t run_in_user(usermode_func func, unsigned int fault_vector, uint64_t arg1, uint64_t arg2,
                                   uint64_t arg3, uint64_t arg4, bool *raised_vector)
{
    return run_in_user_ex(func, fault_vector, arg1, arg2, arg3, arg4, raised_vector, NULL);
}

#endif /* KVMTEST_USERMODE_H */
