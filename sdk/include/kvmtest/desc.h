/*
 * Exceptions and interrupt gates under kvm-unit-tests' names (lib/x86/desc.h
 * and processor.h there), so that its tests port by search and replace:
 * handle_exception and struct ex_regs, exception tables (ASM_TRY) and the
 * *_safe wrappers built on them, and set_idt_entry & co. on the runtime's
 * IDT. docs/guide.md ("Exception handlers") says how each behaves here.
 *
 * Nothing here costs a test that does not use it: the runtime's IDT is
 * loaded by the first handle_exception, set_idt_*, ASM_TRY (or *_safe), ktry
 * or run_in_user, copied from the IDT loaded at that moment; until then every
 * exception goes straight to the engine's stubs.
 */
#ifndef KVMTEST_DESC_H
#define KVMTEST_DESC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <kvmtest/types.h>
#include <kvmtest/x86.h>

/* ---- Vectors (kvm-unit-tests' names) ------------------------------------ */

#define DE_VECTOR 0
#define DB_VECTOR 1
#define NMI_VECTOR 2
#define BP_VECTOR 3
#define OF_VECTOR 4
#define BR_VECTOR 5
#define UD_VECTOR 6
#define NM_VECTOR 7
#define DF_VECTOR 8
#define TS_VECTOR 10
#define NP_VECTOR 11
#define SS_VECTOR 12
#define GP_VECTOR 13
#define PF_VECTOR 14
#define MF_VECTOR 16
#define AC_VECTOR 17
#define MC_VECTOR 18
#define XM_VECTOR 19
#define XF_VECTOR XM_VECTOR
#define VE_VECTOR 20
#define CP_VECTOR 21
#define HV_VECTOR 28
#define VC_VECTOR 29
#define SX_VECTOR 30

/* #PF error code bits (kvm-unit-tests' names). */
#define PFERR_PRESENT_MASK (1ull << 0)
#define PFERR_WRITE_MASK (1ull << 1)
#define PFERR_USER_MASK (1ull << 2)
#define PFERR_RESERVED_MASK (1ull << 3)
#define PFERR_FETCH_MASK (1ull << 4)
#define PFERR_PK_MASK (1ull << 5)
#define PFERR_SHSTK_MASK (1ull << 6)

/* ---- Selectors ---------------------------------------------------------- */

/*
 * The engine's GDT has null, KERNEL_CS, KERNEL_DS and its TSS (at 0x18, where
 * kvm-unit-tests has TSS_MAIN at 0x80). run_in_user loads a copy of the GDT
 * with kvm-unit-tests' user segments at the same selectors, so STAR values
 * written for kvm-unit-tests work for syscall/sysret:
 * STAR[47:32] = KERNEL_CS, STAR[63:48] = USER_CS32 (sysret: CS = USER_CS64,
 * SS = USER_DS).
 */
#define KERNEL_CS 0x08
#define KERNEL_DS 0x10
#define KVMTEST_TSS_SEL 0x18
#define USER_CS32 0x3b
#define USER_DS 0x43
#define USER_CS64 0x4b
#define KERNEL_CS64 KERNEL_CS
#define KERNEL_DS64 KERNEL_DS
#define KERNEL_DS32 KERNEL_DS
#define USER_CS USER_CS64
#define USER_DS64 USER_DS
#define USER_DS32 USER_DS

/* kvm-unit-tests calls lgdt's operand this; here it is x86.h's struct dtr. */
#define descriptor_table_ptr dtr

static inline void ltr(u16 selector) { __asm__ volatile("ltr %0" : : "rm"(selector) : "memory"); }

static inline u16 str(void)
{
    u16 selector;
    __asm__ volatile("str %0" : "=rm"(selector));
    return selector;
}

/* ---- Exception handlers -------------------------------------------------- */

/*
 * What a handler sees, as kvm-unit-tests lays it out: the general registers
 * at the exception (rsp's own slot is `dummy`: the interrupted rsp is in the
 * frame below), the vector, the error code (0 for vectors without one), and
 * the CPU's frame. A handler may change any field; returning resumes at the
 * frame as changed (rip, cs, rflags, rsp, ss) with the registers as changed.
 */
struct ex_regs {
    unsigned long rax, rcx, rdx, rbx;
    unsigned long dummy, rbp, rsi, rdi;
    unsigned long r8, r9, r10, r11;
    unsigned long r12, r13, r14, r15;
    unsigned long vector;
    unsigned long error_code;
    unsigned long rip;
    unsigned long cs;
    unsigned long rflags;
    unsigned long rsp;
    unsigned long ss;
};

typedef void (*handler)(struct ex_regs *regs);

/*
 * Calls fn for exception `vector` (0-31) from now on, and returns the
 * previous handler (NULL: none; the exception then goes on to an active
 * ktry, or to the engine, which reports it as a fault). fn = NULL removes
 * the handler. A vector above 31 fails the test with a message: interrupts
 * (32-255) take handle_irq (kvmtest/isr.h). Handlers serve every CPU of a
 * test with several; each CPU runs them on a handler stack of its own.
 */
handler kt_handle_exception(unsigned vector, handler fn, const char *file, uint32_t line);
#define handle_exception(vector, fn) kt_handle_exception((vector), (fn), __FILE__, __LINE__)

/* The exception an ASM_TRY caught last (0 after an ASM_TRY that caught nothing). */
unsigned exception_vector(void);
unsigned exception_error_code(void);
bool exception_rflags_rf(void);

/* "#GP" for 13, "#??" for a vector without a mnemonic. */
const char *exception_mnemonic(int vector);

/* ---- Gates in the runtime's IDT ------------------------------------------ */

/*
 * An interrupt gate for `vec` (0-255) to addr, with the current CS, IST 0
 * and the given DPL (0-3). A handler installed this way is the test's own
 * code (it must save registers and iretq); handle_exception no longer sees
 * that vector.
 */
#define set_idt_entry(vec, addr, dpl) kt_set_idt_entry((vec), (addr), (dpl), __FILE__, __LINE__)
#define set_idt_sel(vec, sel) kt_set_idt_sel((vec), (sel), __FILE__, __LINE__)
#define set_idt_dpl(vec, dpl) kt_set_idt_dpl((vec), (dpl), __FILE__, __LINE__)
/* IST index 0-7 of the gate (0: no stack switch within ring 0). */
#define set_idt_ist(vec, ist) kt_set_idt_ist((vec), (ist), __FILE__, __LINE__)

/* What the macros call: a mistake is reported at the caller's file and line. */
void kt_set_idt_entry(int vec, void *addr, int dpl, const char *file, uint32_t line);
void kt_set_idt_sel(int vec, unsigned sel, const char *file, uint32_t line);
void kt_set_idt_dpl(int vec, unsigned dpl, const char *file, uint32_t line);
void kt_set_idt_ist(int vec, unsigned ist, const char *file, uint32_t line);
/* Loads the runtime's IDT now (the helpers above do it when needed). */
void setup_idt(void);

/* set_idt_entry(vec, addr, 0) on IST1, the engine's exception stack. */
#define set_intr_alt_stack(vec, addr) kt_set_intr_alt_stack((vec), (addr), __FILE__, __LINE__)
void kt_set_intr_alt_stack(int vec, void *addr, const char *file, uint32_t line);
/* kvm-unit-tests gives IST1 a stack here; the engine's TSS has one already. */
static inline void setup_alt_stack(void) {}

/*
 * Calls trigger(data) and returns true if it raised exception `ex` (then
 * trigger's frame is abandoned, as with ktry, which it is built on). Any
 * other exception fails the test, as it would in kvm-unit-tests.
 */
#define test_for_exception(ex, trigger, data) kt_test_for_exception((ex), (trigger), (data), __FILE__, __LINE__)
bool kt_test_for_exception(unsigned ex, void (*trigger)(void *), void *data, const char *file, uint32_t line);

/* ---- Exception tables ----------------------------------------------------- */

/*
 * ASM_TRY("1f") marks the instruction after it as one that may fault: if it
 * raises an exception, execution resumes at the label with the vector and
 * error code in exception_vector() and exception_error_code(). Otherwise
 * exception_vector() is 0. Use it in inline assembly, as kvm-unit-tests
 * does:
 *
 *     asm volatile(ASM_TRY("1f") "wrmsr\n\t" "1:" : : "c"(msr), "a"(0), "d"(0) : "memory");
 *     if (exception_vector() == GP_VECTOR) ...
 *
 * It calls kt_asm_try_arm (which keeps every register and flag, and loads
 * the runtime's IDT if needed) and records the address in the section
 * kvmtest_extable (a C identifier, so that any link defines
 * __start_kvmtest_extable and __stop_kvmtest_extable). In ring 3 it works
 * once the runtime's IDT is loaded (run_in_user loads it).
 */
/* Writable in a shared object (-fPIC), where the loader relocates the entries. */
#ifdef __PIC__
#define KT_EXTABLE_FLAGS "\"aw\""
#else
#define KT_EXTABLE_FLAGS "\"a\""
#endif

#define ASM_EX_ENTRY(src, dst)                         \
    ".pushsection kvmtest_extable, " KT_EXTABLE_FLAGS "\n\t" \
    ".balign 8\n\t"                                    \
    ".quad " src ", " dst "\n\t"                       \
    ".popsection\n\t"

#define ASM_TRY(catch)                                 \
    "call kt_asm_try_arm\n\t"                          \
    ASM_EX_ENTRY("1111f", catch)                       \
    "1111:"

#define asm_safe(insn, ...)                      \
    __extension__({                                    \
        __asm__ volatile(ASM_TRY("1f") insn "\n\t"     \
                         "1:\n\t"                      \
                         :                             \
                         : __VA_ARGS__                 \
                         : "memory");                  \
        exception_vector();                            \
    })

#define asm_safe_out1(insn, output, ...)         \
    __extension__({                                    \
        __asm__ volatile(ASM_TRY("1f") insn "\n\t"     \
                         "1:\n\t"                      \
                         : output                      \
                         : __VA_ARGS__                 \
                         : "memory");                  \
        exception_vector();                            \
    })

#define asm_safe_out2(insn, output1, output2, ...) \
    __extension__({                                    \
        __asm__ volatile(ASM_TRY("1f") insn "\n\t"     \
                         "1:\n\t"                      \
                         : output1, output2            \
                         : __VA_ARGS__                 \
                         : "memory");                  \
        exception_vector();                            \
    })

/* ---- Instructions that may fault: the vector, or 0 -------------------------- */

static inline int rdmsr_safe(u32 index, uint64_t *val)
{
    u32 lo = 0, hi = 0;
    int vector = asm_safe_out2("rdmsr", "+a"(lo), "+d"(hi), "c"(index));
    *val = ((u64)hi << 32) | lo;
    return vector;
}

static inline int wrmsr_safe(u32 index, u64 val)
{
    return asm_safe("wrmsr", "c"(index), "a"((u32)val), "d"((u32)(val >> 32)));
}

static inline int write_cr0_safe(ulong val) { return asm_safe("mov %0, %%cr0", "r"(val)); }
static inline int write_cr3_safe(ulong val) { return asm_safe("mov %0, %%cr3", "r"(val)); }
static inline int write_cr4_safe(ulong val) { return asm_safe("mov %0, %%cr4", "r"(val)); }
static inline int lgdt_safe(const struct dtr *ptr) { return asm_safe("lgdt %0", "m"(*ptr)); }
static inline int lidt_safe(const struct dtr *ptr) { return asm_safe("lidt %0", "m"(*ptr)); }
static inline int ltr_safe(u16 val) { return asm_safe("ltr %0", "rm"(val)); }

/* xgetbv/xsetbv by their bytes, for assemblers without XSAVE. */
static inline int xgetbv_safe(u32 index, u64 *result)
{
    u32 lo = 0, hi = 0;
    int vector = asm_safe_out2(".byte 0x0f, 0x01, 0xd0", "+a"(lo), "+d"(hi), "c"(index));
    *result = ((u64)hi << 32) | lo;
    return vector;
}

static inline int xsetbv_safe(u32 index, u64 value)
{
    return asm_safe(".byte 0x0f, 0x01, 0xd1", "c"(index), "a"((u32)value), "d"((u32)(value >> 32)));
}

/* The invpcid descriptor: a PCID and a linear address. */
struct invpcid_desc {
    u64 pcid; /* bits 12-63 must be 0 */
    u64 addr;
};

/* invpcid (%rax), %rbx, by its bytes. */
static inline int invpcid_safe(unsigned long type, struct invpcid_desc *desc)
{
    return asm_safe(".byte 0x66, 0x0f, 0x38, 0x82, 0x18", "a"(desc), "b"(type));
}

#endif /* KVMTEST_DESC_H */
