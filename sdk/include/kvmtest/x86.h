/*
 * Ring-0 x86-64 instructions as C functions, in the spirit of the Rust x86
 * crate: each wrapper is one instruction (or a short fixed sequence) and reads
 * like it. Argument order is the x86 crate's, (port, value) and (msr, value):
 * Linux's outb(value, port) has them the other way round.
 *
 * Everything is static inline and uses general-purpose registers only, so
 * including this header costs nothing and runs on software-assisted KVMs.
 * Note: software-assisted KVMs (PVM) cannot emulate rdtscp or xgetbv; the
 * test then ends with an 'error' outcome ("emulation failure").
 */
#ifndef KVMTEST_X86_H
#define KVMTEST_X86_H

#include <stdint.h>

/* ---- Control register bits ------------------------------------------- */

#define CR0_PE (1ull << 0)  /* protected mode */
#define CR0_MP (1ull << 1)  /* monitor coprocessor */
#define CR0_EM (1ull << 2)  /* x87 emulation */
#define CR0_TS (1ull << 3)  /* task switched */
#define CR0_ET (1ull << 4)  /* extension type */
#define CR0_NE (1ull << 5)  /* numeric error */
#define CR0_WP (1ull << 16) /* write protect (ring 0 honours read-only pages) */
#define CR0_AM (1ull << 18) /* alignment mask */
#define CR0_NW (1ull << 29) /* not write-through */
#define CR0_CD (1ull << 30) /* cache disable */
#define CR0_PG (1ull << 31) /* paging */

#define CR4_VME (1ull << 0)
#define CR4_PVI (1ull << 1)
#define CR4_TSD (1ull << 2)  /* rdtsc is privileged */
#define CR4_DE (1ull << 3)   /* debugging extensions */
#define CR4_PSE (1ull << 4)
#define CR4_PAE (1ull << 5)
#define CR4_MCE (1ull << 6)
#define CR4_PGE (1ull << 7)  /* global pages */
#define CR4_PCE (1ull << 8)
#define CR4_OSFXSR (1ull << 9)
#define CR4_OSXMMEXCPT (1ull << 10)
#define CR4_UMIP (1ull << 11)
#define CR4_LA57 (1ull << 12)
#define CR4_VMXE (1ull << 13)
#define CR4_SMXE (1ull << 14)
#define CR4_FSGSBASE (1ull << 16)
#define CR4_PCIDE (1ull << 17)
#define CR4_OSXSAVE (1ull << 18)
#define CR4_SMEP (1ull << 20)
#define CR4_SMAP (1ull << 21)
#define CR4_PKE (1ull << 22)
#define CR4_CET (1ull << 23)

#define RFLAGS_CF (1ull << 0)
#define RFLAGS_RESERVED1 (1ull << 1) /* always set */
#define RFLAGS_PF (1ull << 2)
#define RFLAGS_AF (1ull << 4)
#define RFLAGS_ZF (1ull << 6)
#define RFLAGS_SF (1ull << 7)
#define RFLAGS_TF (1ull << 8)
#define RFLAGS_IF (1ull << 9)
#define RFLAGS_DF (1ull << 10)
#define RFLAGS_OF (1ull << 11)
#define RFLAGS_IOPL (3ull << 12)
#define RFLAGS_NT (1ull << 14)
#define RFLAGS_RF (1ull << 16)
#define RFLAGS_VM (1ull << 17)
#define RFLAGS_AC (1ull << 18)
#define RFLAGS_VIF (1ull << 19)
#define RFLAGS_VIP (1ull << 20)
#define RFLAGS_ID (1ull << 21)

#define EFER_SCE (1ull << 0)  /* syscall/sysret */
#define EFER_LME (1ull << 8)  /* long mode enable */
#define EFER_LMA (1ull << 10) /* long mode active */
#define EFER_NXE (1ull << 11) /* no-execute pages */
#define EFER_SVME (1ull << 12)
#define EFER_FFXSR (1ull << 14)

/* ---- Model-specific registers ----------------------------------------- */

#define IA32_TSC 0x10
#define IA32_APIC_BASE 0x1b
#define IA32_FEATURE_CONTROL 0x3a
#define IA32_TSC_ADJUST 0x3b
#define IA32_SPEC_CTRL 0x48
#define IA32_MTRRCAP 0xfe
#define IA32_SYSENTER_CS 0x174
#define IA32_SYSENTER_ESP 0x175
#define IA32_SYSENTER_EIP 0x176
#define IA32_MCG_CAP 0x179
#define IA32_MCG_STATUS 0x17a
#define IA32_MISC_ENABLE 0x1a0
#define IA32_DEBUGCTL 0x1d9
#define IA32_PAT 0x277
#define IA32_MTRR_DEF_TYPE 0x2ff
#define IA32_TSC_DEADLINE 0x6e0
#define IA32_XSS 0xda0
#define IA32_EFER 0xc0000080
#define IA32_STAR 0xc0000081
#define IA32_LSTAR 0xc0000082
#define IA32_CSTAR 0xc0000083
#define IA32_FMASK 0xc0000084
#define IA32_FS_BASE 0xc0000100
#define IA32_GS_BASE 0xc0000101
#define IA32_KERNEL_GS_BASE 0xc0000102
#define IA32_TSC_AUX 0xc0000103

/* ---- Port I/O --------------------------------------------------------- */

static inline uint8_t inb(uint16_t port)
{
    uint8_t value;
    __asm__ volatile("inb %w1, %b0" : "=a"(value) : "Nd"(port) : "memory");
    return value;
}

static inline uint16_t inw(uint16_t port)
{
    uint16_t value;
    __asm__ volatile("inw %w1, %w0" : "=a"(value) : "Nd"(port) : "memory");
    return value;
}

static inline uint32_t inl(uint16_t port)
{
    uint32_t value;
    __asm__ volatile("inl %w1, %k0" : "=a"(value) : "Nd"(port) : "memory");
    return value;
}

static inline void outb(uint16_t port, uint8_t value)
{
    __asm__ volatile("outb %b0, %w1" : : "a"(value), "Nd"(port) : "memory");
}

static inline void outw(uint16_t port, uint16_t value)
{
    __asm__ volatile("outw %w0, %w1" : : "a"(value), "Nd"(port) : "memory");
}

static inline void outl(uint16_t port, uint32_t value)
{
    __asm__ volatile("outl %k0, %w1" : : "a"(value), "Nd"(port) : "memory");
}

/* ---- MSRs, TSC, CPUID ------------------------------------------------- */

static inline uint64_t rdmsr(uint32_t msr)
{
    uint32_t lo, hi;
    __asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr) : "memory");
    return ((uint64_t)hi << 32) | lo;
}

static inline void wrmsr(uint32_t msr, uint64_t value)
{
    __asm__ volatile("wrmsr" : : "c"(msr), "a"((uint32_t)value), "d"((uint32_t)(value >> 32)) : "memory");
}

static inline uint64_t rdtsc(void)
{
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return ((uint64_t)hi << 32) | lo;
}

/* The TSC, and IA32_TSC_AUX in *aux (if aux is not NULL). */
static inline uint64_t rdtscp(uint32_t *aux)
{
    uint32_t lo, hi, a;
    __asm__ volatile("rdtscp" : "=a"(lo), "=d"(hi), "=c"(a));
    if (aux) *aux = a;
    return ((uint64_t)hi << 32) | lo;
}

static inline void cpuid(uint32_t leaf, uint32_t subleaf, uint32_t *eax, uint32_t *ebx, uint32_t *ecx, uint32_t *edx)
{
    uint32_t a, b, c, d;
    __asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(leaf), "c"(subleaf));
    if (eax) *eax = a;
    if (ebx) *ebx = b;
    if (ecx) *ecx = c;
    if (edx) *edx = d;
}

/* Extended control register `index` (0 = XCR0). Needs CR4.OSXSAVE. */
static inline uint64_t xgetbv(uint32_t index)
{
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(index));
    return ((uint64_t)hi << 32) | lo;
}

/* ---- Control registers and flags -------------------------------------- */

#define KT_READ_CR(n)                                               \
    static inline uint64_t read_cr##n(void)                         \
    {                                                               \
        uint64_t value;                                             \
        __asm__ volatile("mov %%cr" #n ", %0" : "=r"(value) : : "memory"); \
        return value;                                               \
    }
#define KT_WRITE_CR(n)                                              \
    static inline void write_cr##n(uint64_t value)                  \
    {                                                               \
        __asm__ volatile("mov %0, %%cr" #n : : "r"(value) : "memory"); \
    }
KT_READ_CR(0)
KT_READ_CR(2)
KT_READ_CR(3)
KT_READ_CR(4)
KT_READ_CR(8)
KT_WRITE_CR(0)
KT_WRITE_CR(2)
KT_WRITE_CR(3)
KT_WRITE_CR(4)
KT_WRITE_CR(8)
#undef KT_READ_CR
#undef KT_WRITE_CR

static inline uint64_t read_rflags(void)
{
    uint64_t value;
    __asm__ volatile("pushfq; popq %0" : "=r"(value) : : "memory");
    return value;
}

static inline void write_rflags(uint64_t value)
{
    __asm__ volatile("pushq %0; popfq" : : "r"(value) : "memory", "cc");
}

static inline void cli(void) { __asm__ volatile("cli" : : : "memory"); }
static inline void sti(void) { __asm__ volatile("sti" : : : "memory"); }
static inline void hlt(void) { __asm__ volatile("hlt" : : : "memory"); }
static inline void pause(void) { __asm__ volatile("pause" : : : "memory"); }
static inline void wbinvd(void) { __asm__ volatile("wbinvd" : : : "memory"); }

/* Drops the TLB entry for the page holding `address`. */
static inline void invlpg(const volatile void *address)
{
    __asm__ volatile("invlpg (%0)" : : "r"(address) : "memory");
}

/* ---- Descriptor tables and segments ------------------------------------ */

/* The operand of lgdt/sgdt/lidt/sidt. */
struct dtr {
    uint16_t limit;
    uint64_t base;
} __attribute__((packed));

static inline void lgdt(const struct dtr *dtr) { __asm__ volatile("lgdt %0" : : "m"(*dtr) : "memory"); }
static inline void lidt(const struct dtr *dtr) { __asm__ volatile("lidt %0" : : "m"(*dtr) : "memory"); }
static inline void sgdt(struct dtr *dtr) { __asm__ volatile("sgdt %0" : "=m"(*dtr) : : "memory"); }
static inline void sidt(struct dtr *dtr) { __asm__ volatile("sidt %0" : "=m"(*dtr) : : "memory"); }

#define KT_READ_SEG(seg)                                            \
    static inline uint16_t read_##seg(void)                         \
    {                                                               \
        uint16_t selector;                                          \
        __asm__ volatile("mov %%" #seg ", %0" : "=r"(selector));    \
        return selector;                                            \
    }
KT_READ_SEG(cs)
KT_READ_SEG(ds)
KT_READ_SEG(es)
KT_READ_SEG(fs)
KT_READ_SEG(gs)
KT_READ_SEG(ss)
#undef KT_READ_SEG

#endif /* KVMTEST_X86_H */
