/*
 * Several CPUs under kvm-unit-tests' names (lib/x86/smp.h there), for tests
 * declared with .cpus = N: CPU 0 runs the test function; CPUs 1 to N - 1
 * wait for work, with interrupts enabled between checks (sti; hlt), and run
 * what on_cpu and on_cpus give them. APIC IDs are CPU numbers.
 *
 *     static void bump(void *data) { __atomic_add_fetch((int *)data, 1, __ATOMIC_SEQ_CST); }
 *
 *     KVMTEST(four_cpus_count, .cpus = 4) {
 *         int count = 0;
 *         on_cpus(bump, &count);
 *         kassert_eq(count, 4);
 *     }
 *
 * A function run on another CPU starts with interrupts off, as the test
 * function does on CPU 0; it runs outside any interrupt handler, so it may
 * take interrupts (irq_enable, safe_halt) and call on_cpu itself. It must
 * not wait for a CPU that is waiting for it. CPU 0 runs the test, not a
 * loop: work given to CPU 0 by another CPU runs in CPU 0's IPI handler,
 * once CPU 0 takes interrupts (irq_enable, safe_halt). ktry and run_in_user work on
 * CPU 0 only; handle_exception, handle_irq, ASM_TRY, kassert, kpanic and
 * sprint work on every CPU. ASM_TRY's exception_vector() and kexpect's and
 * report()'s bookkeeping are shared: one CPU at a time.
 */
#ifndef KVMTEST_SMP_H
#define KVMTEST_SMP_H

#include <kvmtest/caller.h>

/* The vector on_cpu's IPIs use (kvm-unit-tests' IPI_VECTOR): the runtime's in tests with several CPUs. */
#define KVMTEST_IPI_VECTOR 0x20

/* The test's CPUs (.cpus; 1 without). */
int cpu_count(void);
/* The calling CPU's number, 0 to cpu_count() - 1; 0 (without touching any APIC) in a test with one CPU. */
int smp_id(void);
/* Runs fn(data) on `cpu` and waits until it returned; on the calling CPU itself, just calls it. */
void on_cpu(int cpu, void (*fn)(void *data), void *data);
/* Hands fn(data) to `cpu` and returns at once (after any earlier work given to that CPU was taken). */
void on_cpu_async(int cpu, void (*fn)(void *data), void *data);
/* Runs fn(data) on every CPU, the calling one included, and waits for all of them. */
void on_cpus(void (*fn)(void *data), void *data);

/* A mistake (a CPU that does not exist, fn NULL) fails the test at the caller's line (kvmtest/caller.h). */
#define on_cpu(cpu, fn, data) KT_AT_VOID_((on_cpu)((cpu), (fn), (data)))
#define on_cpu_async(cpu, fn, data) KT_AT_VOID_((on_cpu_async)((cpu), (fn), (data)))
#define on_cpus(fn, data) KT_AT_VOID_((on_cpus)((fn), (data)))

#endif /* KVMTEST_SMP_H */
