/*
 * Interrupt handlers under kvm-unit-tests' name (lib/x86/isr.h there):
 * handle_irq(vector, fn) for vectors 32-255. Exceptions (0-31, NMI
 * included) take handle_exception (kvmtest/desc.h); eoi() is in
 * kvmtest/apic.h, irq_enable(), irq_disable() and safe_halt() in
 * kvmtest/cpu.h.
 */
#ifndef KVMTEST_ISR_H
#define KVMTEST_ISR_H

#include <stdint.h>

#include <kvmtest/desc.h>

/* What an interrupt handler gets: the same frame as an exception handler's. */
typedef struct ex_regs isr_regs_t;

/*
 * Calls fn for interrupt `vector` (32-255) from now on, on every CPU (the
 * table is shared). fn runs on the interrupted stack (no IST), with
 * interrupts off; it must eoi() for an interrupt from the APIC, and may
 * change the registers in *regs, which are iretq'd to. fn = NULL removes
 * the handler: the vector then reaches the engine, which fails the test
 * with "unexpected interrupt 0x..", as a vector nobody handles does.
 * Vector 0x20 is the runtime's own in a test with several CPUs (on_cpu's
 * IPI, KVMTEST_IPI_VECTOR); asking for it there fails the test.
 */
#define handle_irq(vector, fn) kt_handle_irq((vector), (fn), __FILE__, __LINE__)
void kt_handle_irq(unsigned vector, void (*fn)(isr_regs_t *regs), const char *file, uint32_t line);

#endif /* KVMTEST_ISR_H */
