/*
 * Interrupts, timers and several CPUs, with kvm-unit-tests' names: the
 * local APIC's timer and IPIs, the IOAPIC with the test device that raises
 * its lines, NMIs, and work spread over CPUs. A test asks for an interrupt
 * controller with .apic = true, or for several CPUs with .cpus = N (which
 * gives each an APIC). What this host's KVM lacks (x2APIC, the TSC-deadline
 * timer) is skipped with the reason.
 */
#include <kvmtest.h>

#define TIMER_VECTOR 0x40
#define SELF_IPI_VECTOR 0x50
#define CPU_IPI_VECTOR 0x60
#define EDGE_VECTOR 0x70
#define LEVEL_VECTOR 0x71
#define EDGE_LINE 0x0e
#define LEVEL_LINE 0x0f

static volatile unsigned ticks;

static void tick(isr_regs_t *regs)
{
    (void)regs;
    ticks++;
    eoi();
}

/* Sleeps (safe_halt) until `count` ticks came, with interrupts off between checks. */
static void wait_for_ticks(unsigned count)
{
    irq_disable();
    while (ticks < count) {
        safe_halt();
        irq_disable();
    }
}

/*
 * Takes an interrupt that is pending: sti; hlt wakes for it at once. (A
 * software-assisted KVM takes a pending interrupt only at its next exit, so
 * kvm-unit-tests' sti_nop_cli() may let it by there; hlt always exits.)
 */
static void take_pending_interrupt(void)
{
    safe_halt();
    irq_disable();
}

/* ---- The LAPIC timer ------------------------------------------------------- */

KVMTEST(lapic_timer_counts_periodic_ticks, .apic = true) {
    handle_irq(TIMER_VECTOR, tick);
    apic_setup_timer(TIMER_VECTOR, APIC_LVT_TIMER_PERIODIC);
    apic_start_timer(2000000); /* 2 ms at KVM's 1 GHz APIC clock */
    wait_for_ticks(3);
    apic_cleanup_timer();
    kassert(ticks >= 3, "%u ticks", ticks);
    kassert(apic_read(APIC_LVTT) & APIC_LVT_MASKED);
}

KVMTEST(lapic_one_shot_timer_fires_once, .apic = true) {
    handle_irq(TIMER_VECTOR, tick);
    apic_setup_timer(TIMER_VECTOR, APIC_LVT_TIMER_ONESHOT);
    apic_start_timer(100000);
    wait_for_ticks(1);
    kassert_eq(apic_read(APIC_TMCCT), 0); /* a one-shot timer stops at 0 */
    kassert(!apic_read_bit(APIC_IRR, TIMER_VECTOR), "a second tick is pending");
    kassert_eq(ticks, 1);
}

KVMTEST(tsc_deadline_timer_fires, .apic = true) {
    if (!this_cpu_has(X86_FEATURE_TSC_DEADLINE_TIMER))
        kskip("this CPU has no TSC-deadline timer (CPUID.1:ECX bit 24 clear)");
    handle_irq(TIMER_VECTOR, tick);
    apic_setup_timer(TIMER_VECTOR, APIC_LVT_TIMER_TSCDEADLINE);
    wrmsr(MSR_IA32_TSCDEADLINE, rdtsc() + 100000);
    wait_for_ticks(1);
    kassert_eq(rdmsr(MSR_IA32_TSCDEADLINE), 0); /* the deadline passed: disarmed */
}

/* ---- IPIs ------------------------------------------------------------------- */

static volatile unsigned self_ipis;

static void count_self_ipi(isr_regs_t *regs)
{
    kassert_eq(regs->vector, SELF_IPI_VECTOR);
    self_ipis++;
    eoi();
}

KVMTEST(self_ipi_reaches_its_handler, .apic = true) {
    handle_irq(SELF_IPI_VECTOR, count_self_ipi);
    apic_icr_write(APIC_DEST_SELF | APIC_DM_FIXED | APIC_INT_ASSERT | SELF_IPI_VECTOR, 0);
    kassert_eq(self_ipis, 0); /* pending: interrupts are off */
    kassert(apic_read_bit(APIC_IRR, SELF_IPI_VECTOR));
    take_pending_interrupt();
    kassert_eq(self_ipis, 1);
    kassert(!apic_read_bit(APIC_ISR, SELF_IPI_VECTOR)); /* the handler's eoi() */
}

KVMTEST(x2apic_self_ipi, .apic = true) {
    if (!enable_x2apic()) kskip("this CPU has no x2APIC (CPUID.1:ECX bit 21 clear)");
    kassert(is_x2apic_enabled());
    kassert_eq(apic_id(), 0);
    handle_irq(SELF_IPI_VECTOR, count_self_ipi);
    apic_icr_write(APIC_DEST_SELF | APIC_DM_FIXED | APIC_INT_ASSERT | SELF_IPI_VECTOR, 0);
    take_pending_interrupt();
    kassert_eq(self_ipis, 1);
}

KVMTEST(tpr_holds_back_a_lower_class, .apic = true) {
    handle_irq(SELF_IPI_VECTOR, count_self_ipi);
    apic_set_tpr(task_priority_class(SELF_IPI_VECTOR)); /* class 5 and below wait */
    apic_icr_write(APIC_DEST_SELF | APIC_DM_FIXED | APIC_INT_ASSERT | SELF_IPI_VECTOR, 0);
    irq_enable();
    inb(KT_SERIAL_LSR); /* an exit, with interrupts on: the IPI could be taken here, but for the TPR */
    irq_disable();
    kassert_eq(self_ipis, 0);
    kassert(apic_read_bit(APIC_IRR, SELF_IPI_VECTOR));
    apic_set_tpr(0);
    take_pending_interrupt();
    kassert_eq(self_ipis, 1);
}

static volatile int ipi_cpu = -1;

static void note_cpu(isr_regs_t *regs)
{
    (void)regs;
    ipi_cpu = smp_id();
    eoi();
}

KVMTEST(ipi_between_two_cpus, .cpus = 2) {
    handle_irq(CPU_IPI_VECTOR, note_cpu);
    apic_icr_write(APIC_DEST_PHYSICAL | APIC_DM_FIXED | APIC_INT_ASSERT | CPU_IPI_VECTOR, 1);
    while (ipi_cpu < 0) pause(); /* CPU 1 waits in sti; hlt: its handler runs at once */
    kassert_eq(ipi_cpu, 1);
}

/* ---- Work on other CPUs ------------------------------------------------------- */

static void store_cpu(void *data)
{
    *(volatile int *)data = smp_id();
}

KVMTEST(on_cpu_runs_on_that_cpu, .cpus = 2) {
    kassert_eq(cpu_count(), 2);
    kassert_eq(smp_id(), 0);
    int where = -1;
    on_cpu(1, store_cpu, &where);
    kassert_eq(where, 1);
    on_cpu(0, store_cpu, &where); /* the calling CPU: a plain call */
    kassert_eq(where, 0);
}

static volatile bool flag;

static void raise_flag(void *data)
{
    (void)data;
    flag = true;
}

KVMTEST(on_cpu_async_returns_at_once, .cpus = 2) {
    on_cpu_async(1, raise_flag, 0);
    while (!flag) pause();
}

#define INCREMENTS 500

struct shared {
    unsigned long atomic_count; /* lock xadd */
    unsigned long locked_count; /* a plain increment under a spinlock */
    int lock;
    unsigned long seen[KVMTEST_MAX_CPUS];
};

static void increment(void *data)
{
    struct shared *s = data;
    for (int i = 0; i < INCREMENTS; i++) {
        __atomic_fetch_add(&s->atomic_count, 1, __ATOMIC_SEQ_CST);
        while (__atomic_exchange_n(&s->lock, 1, __ATOMIC_ACQUIRE)) pause();
        s->locked_count++;
        __atomic_store_n(&s->lock, 0, __ATOMIC_RELEASE);
    }
    s->seen[smp_id()] = 1;
}

KVMTEST(four_cpus_share_a_counter, .cpus = 4) {
    static struct shared s;
    on_cpus(increment, &s);
    kassert_eq(s.atomic_count, 4 * INCREMENTS);
    kassert_eq(s.locked_count, 4 * INCREMENTS);
    for (int cpu = 0; cpu < 4; cpu++) kassert(s.seen[cpu], "CPU %d did not run", cpu);
}

/* ---- The IOAPIC ----------------------------------------------------------------- */

static volatile unsigned edges, levels;
static volatile bool level_in_service;

static void count_edge(isr_regs_t *regs)
{
    (void)regs;
    edges++;
    eoi();
}

/* A level-triggered line stays asserted until its device lowers it: lower it first. */
static void lower_and_count(isr_regs_t *regs)
{
    (void)regs;
    levels++;
    level_in_service = apic_read_bit(APIC_ISR, LEVEL_VECTOR);
    set_irq_line(LEVEL_LINE, 0);
    eoi();
}

KVMTEST(ioapic_routes_an_edge, .apic = true) {
    handle_irq(EDGE_VECTOR, count_edge);
    ioapic_set_redir(EDGE_LINE, EDGE_VECTOR, TRIGGER_EDGE);
    ioapic_redir_entry_t e = ioapic_read_redir(EDGE_LINE);
    kassert_eq(e.vector, EDGE_VECTOR);
    kassert_eq(e.mask, 0);
    set_irq_line(EDGE_LINE, 1);
    set_irq_line(EDGE_LINE, 0);
    take_pending_interrupt();
    kassert_eq(edges, 1);
}

KVMTEST(ioapic_routes_a_level, .apic = true) {
    handle_irq(LEVEL_VECTOR, lower_and_count);
    ioapic_set_redir(LEVEL_LINE, LEVEL_VECTOR, TRIGGER_LEVEL);
    set_irq_line(LEVEL_LINE, 1);
    take_pending_interrupt();
    kassert_eq(levels, 1);
    kassert(apic_read_bit(APIC_TMR, LEVEL_VECTOR)); /* the APIC took it as level-triggered */
}

KVMTEST(level_eoi_clears_remote_irr, .apic = true) {
    handle_irq(LEVEL_VECTOR, lower_and_count);
    ioapic_set_redir(LEVEL_LINE, LEVEL_VECTOR, TRIGGER_LEVEL);
    set_irq_line(LEVEL_LINE, 1);
    take_pending_interrupt();
    kassert_eq(levels, 1);
    /* The EOI reaches the IOAPIC through the in-service vector, which some KVMs (PVM) never set on delivery. */
    if (!level_in_service)
        kskip("this KVM does not set the in-service bit (ISR) when it delivers an interrupt, so an EOI never reaches the IOAPIC");
    kassert_eq(ioapic_read_redir(LEVEL_LINE).remote_irr, 0);
}

KVMTEST(masked_ioapic_line_waits, .apic = true) {
    handle_irq(EDGE_VECTOR, count_edge);
    ioapic_set_redir(EDGE_LINE, EDGE_VECTOR, TRIGGER_LEVEL);
    set_mask(EDGE_LINE, true);
    set_irq_line(EDGE_LINE, 1);
    irq_enable();
    inb(KT_SERIAL_LSR); /* an exit, with interrupts on */
    irq_disable();
    kassert_eq(edges, 0);
    set_mask(EDGE_LINE, false); /* the line is still high: now it comes */
    take_pending_interrupt();
    kassert_eq(edges, 1);
    set_irq_line(EDGE_LINE, 0);
}

/* ---- NMIs ---------------------------------------------------------------------- */

static volatile int nmi_cpu = -1;

static void note_nmi(struct ex_regs *regs)
{
    kassert_eq(regs->vector, NMI_VECTOR);
    nmi_cpu = smp_id();
}

KVMTEST(self_nmi_reaches_the_nmi_handler, .apic = true) {
    handle_exception(NMI_VECTOR, note_nmi);
    apic_icr_write(APIC_DEST_PHYSICAL | APIC_DM_NMI | APIC_INT_ASSERT, apic_id());
    while (nmi_cpu < 0) pause(); /* interrupts off: an NMI comes anyway */
    kassert_eq(nmi_cpu, 0);
}

KVMTEST(nmi_ipi_reaches_the_other_cpu, .cpus = 2) {
    handle_exception(NMI_VECTOR, note_nmi);
    apic_icr_write(APIC_DEST_PHYSICAL | APIC_DM_NMI | APIC_INT_ASSERT, 1);
    while (nmi_cpu < 0) pause();
    kassert_eq(nmi_cpu, 1);
}
