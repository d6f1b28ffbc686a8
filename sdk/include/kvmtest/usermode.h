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
#define run_in_user_ex(func, fault_vector, arg1, arg2, arg3, arg4, raised_vector, ex_handler) \
    kt_run_in_user((func), (fault_vector), (arg1), (arg2), (arg3), (arg4), (raised_vector), (ex_handler), __FILE__, __LINE__)

#define run_in_user(func, fault_vector, arg1, arg2, arg3, arg4, raised_vector) \
    kt_run_in_user((func), (fault_vector), (arg1), (arg2), (arg3), (arg4), (raised_vector), NULL, __FILE__, __LINE__)

/* What the macros call: a mistake is reported at the caller's file and line. */
uint64_t kt_run_in_user(usermode_func func, unsigned int fault_vector, uint64_t arg1, uint64_t arg2, uint64_t arg3,
                        uint64_t arg4, bool *raised_vector, handler ex_handler, const char *file, uint32_t line);

#endif /* KVMTEST_USERMODE_H */
