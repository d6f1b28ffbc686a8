/*
 * The local APIC and the IOAPIC under kvm-unit-tests' names (lib/x86/apic.h
 * and apic-defs.h there), for tests declared with .apic = true or .cpus = N:
 * register access in xAPIC (MMIO at 0xfee00000) or x2APIC (MSRs 0x800 +
 * reg / 16) mode, IPIs, the timer, and the IOAPIC's redirection table with
 * the test device that raises its lines (set_irq_line).
 *
 *     handle_irq(0x40, tick);
 *     apic_setup_timer(0x40, APIC_LVT_TIMER_PERIODIC);
 *     apic_start_timer(1000000);     (1 ms: KVM's APIC timer counts at 1 GHz)
 *     irq_enable();
 *
 * The mode is each CPU's own (enable_x2apic switches only the calling CPU),
 * so every access first reads that CPU's IA32_APIC_BASE. In a test without
 * an interrupt controller these fail the test with a message rather than
 * fault on the unmapped page.
 */
#ifndef KVMTEST_APIC_H
#define KVMTEST_APIC_H

#include <stdbool.h>
#include <stdint.h>

#include <kvmtest/abi.h>
#include <kvmtest/caller.h>
#include <kvmtest/types.h>
#include <kvmtest/x86.h>

/* ---- Addresses and MSRs ------------------------------------------------- */

#define IO_APIC_DEFAULT_PHYS_BASE 0xfec00000
#define APIC_DEFAULT_PHYS_BASE 0xfee00000

#ifndef MSR_IA32_APICBASE
#define MSR_IA32_APICBASE 0x0000001b
#endif
#ifndef MSR_IA32_TSCDEADLINE
#define MSR_IA32_TSCDEADLINE 0x000006e0
#endif

/* IA32_APIC_BASE bits. */
#define APIC_BSP (1UL << 8)
#define APIC_EXTD (1UL << 10) /* x2APIC mode */
#define APIC_EN (1UL << 11)   /* globally enabled */

/* x2APIC register n is MSR APIC_BASE_MSR + n / 16. */
#define APIC_BASE_MSR 0x800

/* ---- Local APIC registers (MMIO offsets) ------------------------------- */

#define APIC_ID 0x20
#define APIC_LVR 0x30
#define GET_APIC_VERSION(x) ((x) & 0xFFu)
#define GET_APIC_MAXLVT(x) (((x) >> 16) & 0xFFu)
#define APIC_TASKPRI 0x80
#define APIC_TPRI_MASK 0xFFu
#define APIC_ARBPRI 0x90
#define APIC_PROCPRI 0xA0
#define APIC_EOI 0xB0
#define APIC_EIO_ACK 0x0
#define APIC_RRR 0xC0
#define APIC_LDR 0xD0
#define APIC_DFR 0xE0
#define APIC_SPIV 0xF0
#define APIC_SPIV_FOCUS_DISABLED (1 << 9)
#define APIC_SPIV_APIC_ENABLED (1 << 8)
#define APIC_ISR 0x100
#define APIC_ISR_NR 0x8
#define APIC_TMR 0x180
#define APIC_IRR 0x200
#define APIC_ESR 0x280
#define APIC_CMCI 0x2F0
#define APIC_ICR 0x300
#define APIC_DEST_SELF 0x40000
#define APIC_DEST_ALLINC 0x80000
#define APIC_DEST_ALLBUT 0xC0000
#define APIC_INT_LEVELTRIG 0x08000
#define APIC_INT_ASSERT 0x04000
#define APIC_ICR_BUSY 0x01000
#define APIC_DEST_LOGICAL 0x00800
#define APIC_DEST_PHYSICAL 0x00000
#define APIC_DM_FIXED 0x00000
#define APIC_DM_LOWEST 0x00100
#define APIC_DM_SMI 0x00200
#define APIC_DM_REMRD 0x00300
#define APIC_DM_NMI 0x00400
#define APIC_DM_INIT 0x00500
#define APIC_DM_STARTUP 0x00600
#define APIC_DM_EXTINT 0x00700
#define APIC_VECTOR_MASK 0x000FF
#define APIC_ICR2 0x310
#define GET_APIC_DEST_FIELD(x) (((x) >> 24) & 0xFF)
#define SET_APIC_DEST_FIELD(x) ((x) << 24)
#define APIC_LVTT 0x320
#define APIC_LVTTHMR 0x330
#define APIC_LVTPC 0x340
#define APIC_LVT0 0x350
#define APIC_LVT_TIMER_MASK (3 << 17)
#define APIC_LVT_TIMER_ONESHOT (0 << 17)
#define APIC_LVT_TIMER_PERIODIC (1 << 17)
#define APIC_LVT_TIMER_TSCDEADLINE (2 << 17)
#define APIC_LVT_MASKED (1 << 16)
#define APIC_LVT_LEVEL_TRIGGER (1 << 15)
#define APIC_LVT_REMOTE_IRR (1 << 14)
#define APIC_INPUT_POLARITY (1 << 13)
#define APIC_SEND_PENDING (1 << 12)
#define APIC_MODE_MASK 0x700
#define APIC_MODE_FIXED 0x0
#define APIC_MODE_NMI 0x4
#define APIC_MODE_EXTINT 0x7
#define APIC_LVT1 0x360
#define APIC_LVTERR 0x370
#define APIC_TMICT 0x380
#define APIC_TMCCT 0x390
#define APIC_TDCR 0x3E0
#define APIC_SELF_IPI 0x3F0
#define APIC_TDR_DIV_TMBASE (1 << 2)
#define APIC_TDR_DIV_1 0xB
#define APIC_TDR_DIV_2 0x0
#define APIC_TDR_DIV_4 0x1
#define APIC_TDR_DIV_8 0x2
#define APIC_TDR_DIV_16 0x3
#define APIC_TDR_DIV_32 0x8
#define APIC_TDR_DIV_64 0x9
#define APIC_TDR_DIV_128 0xA

/* ---- Local APIC ---------------------------------------------------------- */

/* The register at MMIO offset `reg` (APIC_*) of the calling CPU's APIC. */
uint32_t apic_read(unsigned reg);
void apic_write(unsigned reg, uint32_t val);
/* Bit n of the 256-bit register at reg (APIC_ISR, APIC_TMR, APIC_IRR). */
bool apic_read_bit(unsigned reg, int n);
/*
 * Sends an IPI: val is the ICR's low half (APIC_DEST_* | APIC_DM_* |
 * APIC_INT_ASSERT | vector), dest the destination APIC ID (the CPU number
 * here). xAPIC: waits until the previous IPI left, writes ICR2 then ICR,
 * with interrupts off between; x2APIC: one write of MSR 0x830.
 */
void apic_icr_write(uint32_t val, uint32_t dest);
/* The calling CPU's APIC ID: its CPU number (0 to cpu_count() - 1). */
uint32_t apic_id(void);
/* Software-enables the calling CPU's APIC (SPIV = 0x1ff: spurious vector 0xff). */
void enable_apic(void);
/* Switches the calling CPU to x2APIC mode; false where CPUID.1:ECX.x2APIC is clear. */
bool enable_x2apic(void);
/* Disables the calling CPU's APIC (IA32_APIC_BASE's EN and EXTD clear). */
void disable_apic(void);
/* disable_apic, then enabled again in xAPIC mode and software-enabled. */
void reset_apic(void);
/* The task priority, through CR8. */
uint8_t apic_get_tpr(void);
void apic_set_tpr(uint8_t tpr);
/* EOI to the calling CPU's APIC: what an interrupt handler does before it returns. */
void eoi(void);

static inline bool is_apic_hw_enabled(void) { return (rdmsr(MSR_IA32_APICBASE) & APIC_EN) != 0; }
static inline bool is_x2apic_enabled(void)
{
    return (rdmsr(MSR_IA32_APICBASE) & (APIC_EN | APIC_EXTD)) == (APIC_EN | APIC_EXTD);
}
static inline bool is_xapic_enabled(void) { return (rdmsr(MSR_IA32_APICBASE) & (APIC_EN | APIC_EXTD)) == APIC_EN; }
static inline bool is_apic_sw_enabled(void) { return (apic_read(APIC_SPIV) & APIC_SPIV_APIC_ENABLED) != 0; }
static inline u32 x2apic_msr(u32 reg) { return APIC_BASE_MSR + (reg >> 4); }
static inline u8 task_priority_class(u8 vector) { return vector >> 4; }

/* ---- The timer ------------------------------------------------------------- */

/*
 * Stops the timer, then sets divide-by-1 and the LVT timer entry to vector
 * | mode (APIC_LVT_TIMER_ONESHOT, _PERIODIC or _TSCDEADLINE), unmasked.
 * In one-shot and periodic mode apic_start_timer(count) starts it; KVM's
 * APIC timer counts at 1 GHz, so a count is nanoseconds (KVM makes a
 * periodic timer's period at least 200 us). In TSC-deadline mode (where
 * this_cpu_has(X86_FEATURE_TSC_DEADLINE_TIMER)),
 * wrmsr(MSR_IA32_TSCDEADLINE, rdtsc() + ticks) arms it and 0 disarms it.
 */
void apic_setup_timer(int vector, u32 mode);
/* Starts the one-shot or periodic timer at `counter` (the initial count, APIC_TMICT). */
void apic_start_timer(u32 counter);
/* Stops it (initial count 0); the LVT entry stays. */
void apic_stop_timer(void);
/* Stops it and masks its LVT entry. An interrupt already pending stays pending. */
void apic_cleanup_timer(void);

/* ---- IOAPIC ------------------------------------------------------------------ */

/* The IOAPIC's pins; set_irq_line's test device covers them all. */
#define IOAPIC_LINES 24

/* One redirection table entry, as kvm-unit-tests lays it out. */
typedef struct {
    uint8_t vector;
    uint8_t delivery_mode : 3; /* 0: fixed */
    uint8_t dest_mode : 1;     /* 0: physical */
    uint8_t delivery_status : 1;
    uint8_t polarity : 1;      /* 0: active high */
    uint8_t remote_irr : 1;
    uint8_t trig_mode : 1;     /* TRIGGER_EDGE or TRIGGER_LEVEL */
    uint8_t mask : 1;
    uint8_t reserve : 7;
    uint8_t reserved[4];
    uint8_t dest_id;           /* the destination APIC ID */
} ioapic_redir_entry_t;

typedef enum trigger_mode {
    TRIGGER_EDGE = 0,
    TRIGGER_LEVEL,
    TRIGGER_MAX,
} trigger_mode_t;

/* The IOAPIC register `reg` through IOREGSEL (+0) and IOWIN (+0x10). */
uint32_t ioapic_read_reg(unsigned reg);
void ioapic_write_reg(unsigned reg, uint32_t value);
ioapic_redir_entry_t ioapic_read_redir(unsigned line);
void ioapic_write_redir(unsigned line, ioapic_redir_entry_t e);
/* Routes pin `line` (0-23) to `vec` on CPU 0, fixed, physical, active high, unmasked. */
void ioapic_set_redir(unsigned line, unsigned vec, trigger_mode_t trig_mode);
/* Masks (mask != 0) or unmasks pin `line`, keeping the rest of its entry. */
void set_mask(unsigned line, int mask);
/*
 * The test device (kvm-unit-tests' pc-testdev): sets IOAPIC pin `line`'s
 * level to val (0 or 1), by an 8-bit out to port 0x2000 + line. For an
 * edge-triggered pin, raise then lower it: set_irq_line(l, 1); set_irq_line(l, 0).
 */
void set_irq_line(unsigned line, int val);

/* A mistake (a pin or vector out of range, a timer mode that does not
 * exist) fails the test at the caller's line (kvmtest/caller.h). */
#define apic_setup_timer(vector, mode) KT_AT_VOID_((apic_setup_timer)((vector), (mode)))
#define ioapic_read_redir(line) KT_AT_((ioapic_read_redir)(line))
#define ioapic_write_redir(line, e) KT_AT_VOID_((ioapic_write_redir)((line), (e)))
#define ioapic_set_redir(line, vec, trig_mode) KT_AT_VOID_((ioapic_set_redir)((line), (vec), (trig_mode)))
#define set_mask(line, mask) KT_AT_VOID_((set_mask)((line), (mask)))
#define set_irq_line(line, val) KT_AT_VOID_((set_irq_line)((line), (val)))

#endif /* KVMTEST_APIC_H */
