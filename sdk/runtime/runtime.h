/*
 * The runtime's private interface: the hypercalls and the formatter that
 * print.c and report.c share. Not installed for users; <kvmtest.h> is.
 */
#ifndef KVMTEST_RUNTIME_H
#define KVMTEST_RUNTIME_H

#include <kvmtest.h>

/* One hypercall: a 32-bit out of the number, arguments in rdi and rsi. */
static inline void kt_hypercall(uint32_t number, uint64_t rdi, uint64_t rsi)
{
    __asm__ volatile("outl %0, %1" : : "a"(number), "Nd"((uint16_t)KT_HYPERCALL_PORT), "D"(rdi), "S"(rsi)
                     : "memory");
}

/* Where formatted text goes: a buffer that is flushed when full, or cut off
 * (flush == NULL) as snprintf does. */
struct kt_sink {
    char *buf;
    size_t cap;
    size_t len;
    /* Bytes produced in all, flushed or cut off included. */
    size_t total;
    void (*flush)(struct kt_sink *sink);
};

void kt_sink_putc(struct kt_sink *sink, char c);
void kt_format(struct kt_sink *sink, const char *fmt, va_list args);

/* Sends the console bytes in one write hypercall. */
void kt_console_write(const char *bytes, size_t len);

/* report.c: the condition of a "cond, fmt, args" macro argument text, into out. */
void kt_condition_text(char *out, size_t size, const char *text);

/* Ends the test with a report; never returns. */
__attribute__((noreturn)) void kt_report(struct kt_report *report);

/* alloc.c: the heap kvmtest_entry was given ([kt_heap_base, + kt_heap_size), or 0 and 0). */
extern uint64_t kt_heap_base, kt_heap_size;

/* desc.c: what ASM_TRY's exception_vector() & co. read. */
extern unsigned kt_exception_vector;
extern unsigned kt_exception_error_code;
extern bool kt_exception_rf;

/* usermode.c, asked by desc.c's dispatcher. */
bool kt_user_claims(struct ex_regs *regs);
bool kt_user_claims_fault(struct ex_regs *regs);
void kt_user_unwind(void *ktry_frame);

/* smp.c: the test's CPUs when it has several (kvmtest_smp_entry sets it), else 0. */
extern unsigned kt_cpu_count;
/* The calling CPU's number: 0 without touching any APIC in a test with one CPU. */
static inline unsigned kt_this_cpu(void)
{
    return kt_cpu_count > 1 ? apic_id() : 0;
}
/* Panics, naming `what`, on any CPU but 0 (ktry, run_in_user). */
void kt_require_cpu0(const char *what);

/* apic.c: software-enables the calling CPU's APIC if it is not (SPIV bit 8; spurious vector 0xff). */
void kt_apic_sw_enable(void);

/* desc.c: the runtime's IDT as last loaded; the whole of it (256 vectors), loaded. */
extern struct dtr kt_idtr;
void kt_setup_full_idt(void);
/* desc.c: handle_irq without its checks (smp.c's IPI handler). */
void kt_set_irq_handler(unsigned vector, handler fn);

/* smp.c: called from kvmtest_smp_entry (smp-entry.S); where the host enters the other CPUs. */
void kt_smp_start(const struct kvmtest_record *rec, uint64_t cpus_given);
__attribute__((noreturn)) void kvmtest_secondary_entry(unsigned cpu);
/* desc.c: exceptions.S's interrupt dispatcher. */
uint64_t kt_irq_dispatch(struct ex_regs *regs);

#endif /* KVMTEST_RUNTIME_H */
