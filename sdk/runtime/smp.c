/*
 * Several CPUs (kvmtest/smp.h). The host enters CPU 0 at kvmtest_smp_entry
 * (smp-entry.S), which calls kt_smp_start here and then kvmtest_entry, and
 * every other CPU at kvmtest_secondary_entry. CPU 0 builds the runtime's
 * whole IDT and loads it; the others wait for it, load the same one, and
 * then wait for work in their mailbox, one per CPU: on_cpu fills it and
 * sends an IPI (KVMTEST_IPI_VECTOR), whose handler only EOIs; the CPU,
 * woken from hlt, runs the work outside any handler. CPU 0 runs the test,
 * so work for it runs in its IPI handler instead.
 */
#include "runtime.h"

unsigned kt_cpu_count;

/* Set (release) once the runtime's IDT is complete and loaded on CPU 0. */
static uint32_t idt_ready;
/* Secondary CPUs that loaded it and wait for work. */
static uint32_t cpus_online;

struct mailbox {
    void (*fn)(void *data);
    void *data;
    /* 1 from when a poster claims the mailbox until its work returned. */
    uint32_t busy;
    /* 1 from when the work is posted until the CPU takes it. */
    uint32_t posted;
} __attribute__((aligned(64)));

static struct mailbox mailboxes[KVMTEST_MAX_CPUS];

int cpu_count(void)
{
    return kt_cpu_count > 1 ? (int)kt_cpu_count : 1;
}

int smp_id(void)
{
    return (int)kt_this_cpu();
}

void kt_require_cpu0(const char *what)
{
    unsigned cpu = kt_this_cpu();
    if (cpu != 0)
        kt_panic(__FILE__, __LINE__, "%s: called on CPU %u; it works on CPU 0 only (the test's CPU)", what, cpu);
}

/* Runs the mailbox's work, if any; true if it did. */
static bool run_mailbox(unsigned cpu)
{
    struct mailbox *m = &mailboxes[cpu];
    if (!__atomic_exchange_n(&m->posted, 0, __ATOMIC_ACQ_REL)) return false;
    void (*fn)(void *) = m->fn;
    void *data = m->data;
    fn(data);
    __atomic_store_n(&m->busy, 0, __ATOMIC_RELEASE);
    return true;
}

static void ipi_handler(struct ex_regs *regs)
{
    (void)regs;
    eoi();
    /* The others run their work from their wait loop; CPU 0 has none. */
    unsigned cpu = kt_this_cpu();
    if (cpu == 0) run_mailbox(cpu);
}

static void post(int cpu, void (*fn)(void *), void *data, bool wait, const char *what)
{
    if (!fn) kt_misuse(__FILE__, __LINE__, "%s: fn is NULL", what);
    if (cpu < 0 || cpu >= cpu_count())
        kt_misuse(__FILE__, __LINE__, "%s: CPU %d does not exist: this test has %d (0-%d; .cpus = N gives more)", what, cpu,
                 cpu_count(), cpu_count() - 1);
    if ((unsigned)cpu == kt_this_cpu()) {
        fn(data);
        return;
    }
    struct mailbox *m = &mailboxes[cpu];
    uint32_t idle = 0;
    while (!__atomic_compare_exchange_n(&m->busy, &idle, 1, false, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
        idle = 0;
        pause();
    }
    m->fn = fn;
    m->data = data;
    __atomic_store_n(&m->posted, 1, __ATOMIC_RELEASE);
    apic_icr_write(APIC_INT_ASSERT | APIC_DEST_PHYSICAL | APIC_DM_FIXED | KVMTEST_IPI_VECTOR, (uint32_t)cpu);
    if (wait)
        while (__atomic_load_n(&m->busy, __ATOMIC_ACQUIRE)) pause();
}

void (on_cpu)(int cpu, void (*fn)(void *data), void *data)
{
    post(cpu, fn, data, true, "on_cpu");
}

void (on_cpu_async)(int cpu, void (*fn)(void *data), void *data)
{
    post(cpu, fn, data, false, "on_cpu_async");
}

void (on_cpus)(void (*fn)(void *data), void *data)
{
    int self = smp_id(), count = cpu_count();
    for (int cpu = 0; cpu < count; cpu++)
        if (cpu != self) post(cpu, fn, data, false, "on_cpus");
    if (!fn) kt_misuse(__FILE__, __LINE__, "on_cpus: fn is NULL");
    fn(data);
    for (int cpu = 0; cpu < count; cpu++)
        if (cpu != self)
            while (__atomic_load_n(&mailboxes[cpu].busy, __ATOMIC_ACQUIRE)) pause();
}

/* CPU 0, from kvmtest_smp_entry, before the test: the IDT, the IPI, and every other CPU waiting.
 * The record says how many CPUs; without one (a TypeScript test's snippet), the host's `cpus`. */
void kt_smp_start(const struct kvmtest_record *rec, uint64_t cpus_given)
{
    unsigned cpus = rec ? (rec->version >= 3 ? rec->options.cpus : 1) : (unsigned)cpus_given;
    if (cpus < 1) cpus = 1;
    if (cpus > KVMTEST_MAX_CPUS) cpus = KVMTEST_MAX_CPUS;
    kt_cpu_count = cpus;
    kt_setup_full_idt();
    kt_apic_sw_enable();
    if (cpus > 1) kt_set_irq_handler(KVMTEST_IPI_VECTOR, ipi_handler);
    __atomic_store_n(&idt_ready, 1, __ATOMIC_RELEASE);
    if (cpus > 1)
        while (__atomic_load_n(&cpus_online, __ATOMIC_ACQUIRE) != cpus - 1) pause();
}

/* CPU `cpu` (1 to cpus - 1), on its own stack, interrupts off: never returns. */
__attribute__((noreturn)) void kvmtest_secondary_entry(unsigned cpu)
{
    while (!__atomic_load_n(&idt_ready, __ATOMIC_ACQUIRE)) pause();
    lidt(&kt_idtr);
    kt_apic_sw_enable();
    unsigned id = apic_id();
    if (id != cpu || cpu >= kt_cpu_count)
        kt_panic(__FILE__, __LINE__, "CPU %u of %u started with APIC ID %u: the host must give CPU n APIC ID n", cpu,
                 kt_cpu_count, id);
    __atomic_add_fetch(&cpus_online, 1, __ATOMIC_RELEASE);
    for (;;) {
        cli();
        if (run_mailbox(cpu)) continue;
        /* sti's shadow covers hlt: an IPI that came after the check wakes it. */
        __asm__ volatile("sti; hlt" : : : "memory");
    }
}
