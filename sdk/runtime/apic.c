/*
 * The local APIC and the IOAPIC (kvmtest/apic.h). Every access reads the
 * calling CPU's IA32_APIC_BASE for its mode, since enable_x2apic switches
 * one CPU only and the CPUs share no per-CPU pointer. The registers live
 * where the host maps them (apic.h) only in a test that asked for them, so
 * the first access in any other test fails it with a message.
 */
#include "runtime.h"

#define XAPIC_MMIO ((uintptr_t)APIC_DEFAULT_PHYS_BASE)
#define IOAPIC_MMIO ((uintptr_t)IO_APIC_DEFAULT_PHYS_BASE)
#define IOAPIC_IOREGSEL 0x00
#define IOAPIC_IOWIN 0x10
#define IOAPIC_REDIR_BASE 0x10
/* What reset_apic and enable_apic write to SPIV: enabled, spurious vector 0xff. */
#define SPIV_ENABLED_DEFAULT 0x1ff
#define SPURIOUS_VECTOR 0xff

/* The record said so, or kvmtest_smp_entry ran: the APIC is there (per test: .bss). */
static bool apic_checked;

static bool test_has_apic(void)
{
    if (apic_checked || kt_cpu_count > 1) return true;
    const struct kvmtest_record *rec = kvmtest_current();
    /* No record: a caller that entered a function directly (runGuest); let it try. */
    if (!rec || (rec->version >= 3 && (rec->options.apic || rec->options.cpus > 1))) {
        apic_checked = true;
        return true;
    }
    return false;
}

static void need_apic(const char *what)
{
    if (!test_has_apic())
        kt_panic(__FILE__, __LINE__,
                 "%s: this test has no local APIC or IOAPIC: declare it with .apic = true (or .cpus = N)", what);
}

static bool x2apic_mode(void)
{
    return (rdmsr(MSR_IA32_APICBASE) & APIC_EXTD) != 0;
}

static uint32_t xapic_read(unsigned reg)
{
    return *(volatile uint32_t *)(XAPIC_MMIO + reg);
}

static void xapic_write(unsigned reg, uint32_t val)
{
    *(volatile uint32_t *)(XAPIC_MMIO + reg) = val;
}

uint32_t apic_read(unsigned reg)
{
    need_apic("apic_read");
    return x2apic_mode() ? (uint32_t)rdmsr(x2apic_msr(reg)) : xapic_read(reg);
}

void apic_write(unsigned reg, uint32_t val)
{
    need_apic("apic_write");
    if (x2apic_mode()) wrmsr(x2apic_msr(reg), val);
    else xapic_write(reg, val);
}

bool apic_read_bit(unsigned reg, int n)
{
    reg += (unsigned)(n >> 5) << 4;
    return (apic_read(reg) & (1u << (n & 31))) != 0;
}

void apic_icr_write(uint32_t val, uint32_t dest)
{
    need_apic("apic_icr_write");
    if (x2apic_mode()) {
        __atomic_thread_fence(__ATOMIC_SEQ_CST); /* stores before the IPI are seen by its handler */
        wrmsr(x2apic_msr(APIC_ICR), ((uint64_t)dest << 32) | val);
        return;
    }
    /* An interrupt handler on this CPU that sent an IPI between the two writes would change ICR2 under us. */
    uint64_t rflags = read_rflags();
    cli();
    while (xapic_read(APIC_ICR) & APIC_ICR_BUSY) pause();
    xapic_write(APIC_ICR2, SET_APIC_DEST_FIELD(dest));
    xapic_write(APIC_ICR, val);
    write_rflags(rflags);
}

uint32_t apic_id(void)
{
    need_apic("apic_id");
    return x2apic_mode() ? (uint32_t)rdmsr(x2apic_msr(APIC_ID)) : xapic_read(APIC_ID) >> 24;
}

void eoi(void)
{
    apic_write(APIC_EOI, APIC_EIO_ACK);
}

void kt_apic_sw_enable(void)
{
    uint32_t spiv = apic_read(APIC_SPIV);
    if (!(spiv & APIC_SPIV_APIC_ENABLED)) apic_write(APIC_SPIV, spiv | APIC_SPIV_APIC_ENABLED | SPURIOUS_VECTOR);
}

void enable_apic(void)
{
    apic_write(APIC_SPIV, SPIV_ENABLED_DEFAULT);
}

bool enable_x2apic(void)
{
    need_apic("enable_x2apic");
    uint32_t eax, ebx, ecx, edx;
    cpuid(1, 0, &eax, &ebx, &ecx, &edx);
    if (!(ecx & (1u << 21))) return false;
    wrmsr(MSR_IA32_APICBASE, rdmsr(MSR_IA32_APICBASE) | APIC_EN | APIC_EXTD);
    return true;
}

void disable_apic(void)
{
    need_apic("disable_apic");
    wrmsr(MSR_IA32_APICBASE, rdmsr(MSR_IA32_APICBASE) & ~(uint64_t)(APIC_EN | APIC_EXTD));
}

void reset_apic(void)
{
    disable_apic();
    wrmsr(MSR_IA32_APICBASE, rdmsr(MSR_IA32_APICBASE) | APIC_EN);
    xapic_write(APIC_SPIV, SPIV_ENABLED_DEFAULT);
}

uint8_t apic_get_tpr(void)
{
    return (uint8_t)read_cr8();
}

void apic_set_tpr(uint8_t tpr)
{
    write_cr8(tpr);
}

/* ---- The timer ------------------------------------------------------------ */

void apic_stop_timer(void)
{
    apic_write(APIC_TMICT, 0);
}

void apic_cleanup_timer(void)
{
    uint32_t lvtt = apic_read(APIC_LVTT);
    apic_stop_timer();
    apic_write(APIC_LVTT, lvtt | APIC_LVT_MASKED);
}

void (apic_setup_timer)(int vector, u32 mode)
{
    if ((mode & APIC_LVT_TIMER_MASK) != mode || mode == APIC_LVT_TIMER_MASK)
        kt_misuse(__FILE__, __LINE__, "apic_setup_timer: mode %#x is not APIC_LVT_TIMER_ONESHOT, _PERIODIC or _TSCDEADLINE", mode);
    if (vector < 32 || vector > 255) kt_misuse(__FILE__, __LINE__, "apic_setup_timer: vector %d is not an interrupt vector (32-255)", vector);
    apic_cleanup_timer();
    if (mode == APIC_LVT_TIMER_TSCDEADLINE) wrmsr(MSR_IA32_TSCDEADLINE, 0);
    apic_write(APIC_TDCR, APIC_TDR_DIV_1);
    apic_write(APIC_LVTT, (uint32_t)vector | mode);
}

void apic_start_timer(u32 counter)
{
    apic_write(APIC_TMICT, counter);
}

/* ---- IOAPIC -------------------------------------------------------------------- */

/* IOREGSEL then IOWIN is two accesses: one CPU at a time, and no interrupt handler in between. */
static uint32_t ioapic_lock;

static uint64_t ioapic_acquire(void)
{
    uint64_t rflags = read_rflags();
    cli();
    while (__atomic_exchange_n(&ioapic_lock, 1, __ATOMIC_ACQUIRE)) pause();
    return rflags;
}

static void ioapic_release(uint64_t rflags)
{
    __atomic_store_n(&ioapic_lock, 0, __ATOMIC_RELEASE);
    write_rflags(rflags);
}

static uint32_t ioapic_access(unsigned reg, const uint32_t *value)
{
    need_apic(value ? "ioapic_write_reg" : "ioapic_read_reg");
    uint64_t rflags = ioapic_acquire();
    *(volatile uint32_t *)(IOAPIC_MMIO + IOAPIC_IOREGSEL) = reg;
    uint32_t result = 0;
    if (value) *(volatile uint32_t *)(IOAPIC_MMIO + IOAPIC_IOWIN) = *value;
    else result = *(volatile uint32_t *)(IOAPIC_MMIO + IOAPIC_IOWIN);
    ioapic_release(rflags);
    return result;
}

uint32_t ioapic_read_reg(unsigned reg)
{
    return ioapic_access(reg, 0);
}

void ioapic_write_reg(unsigned reg, uint32_t value)
{
    ioapic_access(reg, &value);
}

static void check_line(const char *what, unsigned line)
{
    if (line >= IOAPIC_LINES) kt_misuse(__FILE__, __LINE__, "%s: line %u is not an IOAPIC pin (0-%d)", what, line, IOAPIC_LINES - 1);
}

ioapic_redir_entry_t (ioapic_read_redir)(unsigned line)
{
    check_line("ioapic_read_redir", line);
    uint32_t half[2] = { ioapic_read_reg(IOAPIC_REDIR_BASE + line * 2), ioapic_read_reg(IOAPIC_REDIR_BASE + line * 2 + 1) };
    ioapic_redir_entry_t e;
    memcpy(&e, half, sizeof(e));
    return e;
}

void (ioapic_write_redir)(unsigned line, ioapic_redir_entry_t e)
{
    check_line("ioapic_write_redir", line);
    uint32_t half[2];
    memcpy(half, &e, sizeof(half));
    /* The high half (the destination) first: the low half may unmask the pin. */
    ioapic_write_reg(IOAPIC_REDIR_BASE + line * 2 + 1, half[1]);
    ioapic_write_reg(IOAPIC_REDIR_BASE + line * 2, half[0]);
}

void (ioapic_set_redir)(unsigned line, unsigned vec, trigger_mode_t trig_mode)
{
    if (vec < 32 || vec > 255) kt_misuse(__FILE__, __LINE__, "ioapic_set_redir: vector %u is not an interrupt vector (32-255)", vec);
    ioapic_redir_entry_t e = { .vector = (uint8_t)vec, .trig_mode = (uint8_t)(trig_mode == TRIGGER_LEVEL) };
    (ioapic_write_redir)(line, e);
}

void (set_mask)(unsigned line, int mask)
{
    ioapic_redir_entry_t e = (ioapic_read_redir)(line);
    e.mask = mask != 0;
    (ioapic_write_redir)(line, e);
}

void (set_irq_line)(unsigned line, int val)
{
    check_line("set_irq_line", line);
    need_apic("set_irq_line");
    outb((uint16_t)(KT_IRQ_LINE_PORT + line), (uint8_t)val);
}

_Static_assert(sizeof(ioapic_redir_entry_t) == 8, "an IOAPIC redirection entry is 8 bytes");
