/*
 * CPU features by CPUID bit, with kvm-unit-tests' names (lib/x86/processor.h):
 * this_cpu_has(X86_FEATURE_PCID) is true when the guest's CPUID shows it, so
 * a test can kskip cleanly where a feature is absent:
 *
 *     if (!this_cpu_has(X86_FEATURE_SMEP)) kskip("no SMEP");
 *
 * cpu_has() is the same function. A leaf above the CPU's highest one (leaf
 * 0's eax, or 0x80000000's for extended leaves) reads as all zero. The bits
 * are what the guest's cpuid returns, so a test's .cpuid edits show here.
 */
#ifndef KVMTEST_CPU_H
#define KVMTEST_CPU_H

#include <stdbool.h>
#include <kvmtest/abi.h>
#include <kvmtest/types.h>
#include <kvmtest/x86.h>

struct x86_cpu_feature {
    u32 function;
    u32 index;
    u8 reg; /* CPUID_EAX ... CPUID_EDX */
    u8 bit;
};

#define X86_CPU_FEATURE(fn, idx, gpr, bit_) ((struct x86_cpu_feature){ .function = (fn), .index = (idx), .reg = CPUID_##gpr, .bit = (bit_) })

/* Leaf 1, ECX. */
#define X86_FEATURE_SSE3 X86_CPU_FEATURE(0x1, 0, ECX, 0)
#define X86_FEATURE_PCLMULQDQ X86_CPU_FEATURE(0x1, 0, ECX, 1)
#define X86_FEATURE_MWAIT X86_CPU_FEATURE(0x1, 0, ECX, 3)
#define X86_FEATURE_VMX X86_CPU_FEATURE(0x1, 0, ECX, 5)
#define X86_FEATURE_SSSE3 X86_CPU_FEATURE(0x1, 0, ECX, 9)
#define X86_FEATURE_FMA X86_CPU_FEATURE(0x1, 0, ECX, 12)
#define X86_FEATURE_CX16 X86_CPU_FEATURE(0x1, 0, ECX, 13)
#define X86_FEATURE_PDCM X86_CPU_FEATURE(0x1, 0, ECX, 15)
#define X86_FEATURE_PCID X86_CPU_FEATURE(0x1, 0, ECX, 17)
#define X86_FEATURE_SSE4_1 X86_CPU_FEATURE(0x1, 0, ECX, 19)
#define X86_FEATURE_SSE4_2 X86_CPU_FEATURE(0x1, 0, ECX, 20)
#define X86_FEATURE_X2APIC X86_CPU_FEATURE(0x1, 0, ECX, 21)
#define X86_FEATURE_MOVBE X86_CPU_FEATURE(0x1, 0, ECX, 22)
#define X86_FEATURE_POPCNT X86_CPU_FEATURE(0x1, 0, ECX, 23)
#define X86_FEATURE_TSC_DEADLINE_TIMER X86_CPU_FEATURE(0x1, 0, ECX, 24)
#define X86_FEATURE_AES X86_CPU_FEATURE(0x1, 0, ECX, 25)
#define X86_FEATURE_XSAVE X86_CPU_FEATURE(0x1, 0, ECX, 26)
#define X86_FEATURE_OSXSAVE X86_CPU_FEATURE(0x1, 0, ECX, 27)
#define X86_FEATURE_AVX X86_CPU_FEATURE(0x1, 0, ECX, 28)
#define X86_FEATURE_F16C X86_CPU_FEATURE(0x1, 0, ECX, 29)
#define X86_FEATURE_RDRAND X86_CPU_FEATURE(0x1, 0, ECX, 30)
#define X86_FEATURE_HYPERVISOR X86_CPU_FEATURE(0x1, 0, ECX, 31)
/* Leaf 1, EDX. */
#define X86_FEATURE_FPU X86_CPU_FEATURE(0x1, 0, EDX, 0)
#define X86_FEATURE_VME X86_CPU_FEATURE(0x1, 0, EDX, 1)
#define X86_FEATURE_DE X86_CPU_FEATURE(0x1, 0, EDX, 2)
#define X86_FEATURE_PSE X86_CPU_FEATURE(0x1, 0, EDX, 3)
#define X86_FEATURE_TSC X86_CPU_FEATURE(0x1, 0, EDX, 4)
#define X86_FEATURE_MSR X86_CPU_FEATURE(0x1, 0, EDX, 5)
#define X86_FEATURE_PAE X86_CPU_FEATURE(0x1, 0, EDX, 6)
#define X86_FEATURE_MCE X86_CPU_FEATURE(0x1, 0, EDX, 7)
#define X86_FEATURE_CX8 X86_CPU_FEATURE(0x1, 0, EDX, 8)
#define X86_FEATURE_APIC X86_CPU_FEATURE(0x1, 0, EDX, 9)
#define X86_FEATURE_SEP X86_CPU_FEATURE(0x1, 0, EDX, 11)
#define X86_FEATURE_MTRR X86_CPU_FEATURE(0x1, 0, EDX, 12)
#define X86_FEATURE_PGE X86_CPU_FEATURE(0x1, 0, EDX, 13)
#define X86_FEATURE_MCA X86_CPU_FEATURE(0x1, 0, EDX, 14)
#define X86_FEATURE_CMOV X86_CPU_FEATURE(0x1, 0, EDX, 15)
#define X86_FEATURE_PAT X86_CPU_FEATURE(0x1, 0, EDX, 16)
#define X86_FEATURE_PSE36 X86_CPU_FEATURE(0x1, 0, EDX, 17)
#define X86_FEATURE_CLFLUSH X86_CPU_FEATURE(0x1, 0, EDX, 19)
#define X86_FEATURE_MMX X86_CPU_FEATURE(0x1, 0, EDX, 23)
#define X86_FEATURE_FXSR X86_CPU_FEATURE(0x1, 0, EDX, 24)
#define X86_FEATURE_SSE X86_CPU_FEATURE(0x1, 0, EDX, 25)
#define X86_FEATURE_SSE2 X86_CPU_FEATURE(0x1, 0, EDX, 26)
/* Leaf 7, subleaf 0, EBX. */
#define X86_FEATURE_FSGSBASE X86_CPU_FEATURE(0x7, 0, EBX, 0)
#define X86_FEATURE_TSC_ADJUST X86_CPU_FEATURE(0x7, 0, EBX, 1)
#define X86_FEATURE_BMI1 X86_CPU_FEATURE(0x7, 0, EBX, 3)
#define X86_FEATURE_HLE X86_CPU_FEATURE(0x7, 0, EBX, 4)
#define X86_FEATURE_AVX2 X86_CPU_FEATURE(0x7, 0, EBX, 5)
#define X86_FEATURE_SMEP X86_CPU_FEATURE(0x7, 0, EBX, 7)
#define X86_FEATURE_BMI2 X86_CPU_FEATURE(0x7, 0, EBX, 8)
#define X86_FEATURE_ERMS X86_CPU_FEATURE(0x7, 0, EBX, 9)
#define X86_FEATURE_INVPCID X86_CPU_FEATURE(0x7, 0, EBX, 10)
#define X86_FEATURE_RTM X86_CPU_FEATURE(0x7, 0, EBX, 11)
#define X86_FEATURE_MPX X86_CPU_FEATURE(0x7, 0, EBX, 14)
#define X86_FEATURE_AVX512F X86_CPU_FEATURE(0x7, 0, EBX, 16)
#define X86_FEATURE_RDSEED X86_CPU_FEATURE(0x7, 0, EBX, 18)
#define X86_FEATURE_ADX X86_CPU_FEATURE(0x7, 0, EBX, 19)
#define X86_FEATURE_SMAP X86_CPU_FEATURE(0x7, 0, EBX, 20)
#define X86_FEATURE_CLFLUSHOPT X86_CPU_FEATURE(0x7, 0, EBX, 23)
#define X86_FEATURE_CLWB X86_CPU_FEATURE(0x7, 0, EBX, 24)
#define X86_FEATURE_SHA X86_CPU_FEATURE(0x7, 0, EBX, 29)
/* Leaf 7, subleaf 0, ECX and EDX. */
#define X86_FEATURE_UMIP X86_CPU_FEATURE(0x7, 0, ECX, 2)
#define X86_FEATURE_PKU X86_CPU_FEATURE(0x7, 0, ECX, 3)
#define X86_FEATURE_OSPKE X86_CPU_FEATURE(0x7, 0, ECX, 4)
#define X86_FEATURE_LA57 X86_CPU_FEATURE(0x7, 0, ECX, 16)
#define X86_FEATURE_RDPID X86_CPU_FEATURE(0x7, 0, ECX, 22)
#define X86_FEATURE_SPEC_CTRL X86_CPU_FEATURE(0x7, 0, EDX, 26)
#define X86_FEATURE_ARCH_CAPABILITIES X86_CPU_FEATURE(0x7, 0, EDX, 29)
/* Leaf 0xd, subleaf 1, EAX. */
#define X86_FEATURE_XSAVEOPT X86_CPU_FEATURE(0xd, 1, EAX, 0)
#define X86_FEATURE_XSAVEC X86_CPU_FEATURE(0xd, 1, EAX, 1)
#define X86_FEATURE_XSAVES X86_CPU_FEATURE(0xd, 1, EAX, 3)
/* Leaf 0x80000001. */
#define X86_FEATURE_LAHF_LM X86_CPU_FEATURE(0x80000001, 0, ECX, 0)
#define X86_FEATURE_SVM X86_CPU_FEATURE(0x80000001, 0, ECX, 2)
#define X86_FEATURE_SYSCALL X86_CPU_FEATURE(0x80000001, 0, EDX, 11)
#define X86_FEATURE_NX X86_CPU_FEATURE(0x80000001, 0, EDX, 20)
#define X86_FEATURE_GBPAGES X86_CPU_FEATURE(0x80000001, 0, EDX, 26)
#define X86_FEATURE_RDTSCP X86_CPU_FEATURE(0x80000001, 0, EDX, 27)
#define X86_FEATURE_LM X86_CPU_FEATURE(0x80000001, 0, EDX, 29)

/* One register of a CPUID leaf, 0 above the highest leaf of its range. */
static inline u32 kt_cpuid_reg(u32 function, u32 index, u8 reg)
{
    u32 regs[4];
    cpuid(function & 0x80000000u, 0, &regs[0], NULL, NULL, NULL);
    if (function > regs[0]) return 0;
    cpuid(function, index, &regs[0], &regs[1], &regs[2], &regs[3]);
    return reg >= CPUID_EAX && reg <= CPUID_EDX ? regs[reg - CPUID_EAX] : 0;
}

static inline bool this_cpu_has(struct x86_cpu_feature feature)
{
    return (kt_cpuid_reg(feature.function, feature.index, feature.reg) >> feature.bit) & 1;
}

static inline bool cpu_has(struct x86_cpu_feature feature)
{
    return this_cpu_has(feature);
}

/* ---- Interrupts (kvm-unit-tests' processor.h) -------------------------- */

static inline void irq_enable(void) { __asm__ volatile("sti" : : : "memory"); }
static inline void irq_disable(void) { __asm__ volatile("cli" : : : "memory"); }
/* sti; hlt: waits for the next interrupt, which cannot slip in between (sti's shadow covers hlt). */
static inline void safe_halt(void) { __asm__ volatile("sti; hlt" : : : "memory"); }
/* Lets an interrupt that is pending in at the instruction after sti, then turns interrupts off. */
static inline void sti_nop_cli(void) { __asm__ volatile("sti; nop; cli" : : : "memory"); }

#endif /* KVMTEST_CPU_H */
