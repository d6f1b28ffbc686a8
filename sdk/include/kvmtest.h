/*
 * kvmtest: unit tests for x86-64 ring-0 code, each run in guest ring 0 of its
 * own tiny KVM virtual machine.
 *
 *     #include <kvmtest.h>
 *
 *     KVMTEST(check_inw_port_read, .ioport = { 0x1, 0xfe }) {
 *         kassert(inw(0x1) == 0xfe, "`inw` instruction didn't read the correct value");
 *     }
 *
 * Build with `kvmtest cc -o tests.elf tests.c`, run with `kvmtest run tests.elf`.
 * docs/abi.md describes the machine a test runs in.
 */
#ifndef KVMTEST_H
#define KVMTEST_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <kvmtest/abi.h>
#include <kvmtest/x86.h>

/* ---- Declaring tests --------------------------------------------------- */

/*
 * KVMTEST(name, options...) { body }
 *
 * Options are designated initializers of struct kvmtest_options, all optional:
 *   .ioport = { port, value }             a port that reads as value
 *   .ioports = { { port, value }, ... }   up to 16
 *   .ram = { from, to }                   extra RAM [from, to), identity-mapped
 *   .rams = { { from, to }, ... }         up to 8
 *   .should_panic = true                  passes if the test panics (kpanic, a failed kassert)
 *   .should_halt = true                   passes if the test executes hlt
 *   .should_fault = FAULT_GP              passes if this exception reaches the engine
 *   .timeout_ms = 500                     0: the runner's default
 *   .ignore = true                        listed, not run
 *   .heap = 64 * 1024                     bytes of heap for alloc_page (kvmtest/alloc.h)
 *   .cpuid = { { .leaf = 1, .reg = CPUID_ECX, .keep = ~(1u << 26) }, ... }
 *                                         up to 8 CPUID edits: the register reads
 *                                         (value & keep) | set
 *   .apic = true                          a local APIC (0xfee00000) and an IOAPIC
 *                                         (0xfec00000) for interrupts (kvmtest/apic.h)
 *   .cpus = 4                             this many CPUs (up to KVMTEST_MAX_CPUS, 16),
 *                                         with an APIC each (kvmtest/smp.h)
 * An ioport or ram entry that is all zero is unset: port 0 cannot be
 * configured to read 0.
 *
 * The table records go to section .kvmtest (docs/test-table.md). should_fault
 * defaults to -1 ("no fault") through a designated initializer that the
 * user's `.should_fault` overrides, so FAULT_DE (0) works; the pragmas
 * silence the compilers' warning about exactly that override.
 */
#define KVMTEST(...) KT_TEST_(__VA_ARGS__, )

#if defined(__clang__)
#define KT_OVERRIDES_BEGIN_ \
    _Pragma("clang diagnostic push") _Pragma("clang diagnostic ignored \"-Winitializer-overrides\"")
#define KT_OVERRIDES_END_ _Pragma("clang diagnostic pop")
#elif defined(__GNUC__)
#define KT_OVERRIDES_BEGIN_ \
    _Pragma("GCC diagnostic push") _Pragma("GCC diagnostic ignored \"-Woverride-init\"")
#define KT_OVERRIDES_END_ _Pragma("GCC diagnostic pop")
#else
#define KT_OVERRIDES_BEGIN_
#define KT_OVERRIDES_END_
#endif

#define KT_TEST_(kt_name, ...)                                                      \
    static void kt_test_##kt_name(void);                                            \
    KT_OVERRIDES_BEGIN_                                                             \
    __attribute__((used, section(".kvmtest"), aligned(8)))                          \
    static const struct kvmtest_record kt_record_##kt_name = {                      \
        .magic = KVMTEST_MAGIC,                                                     \
        .version = KVMTEST_VERSION,                                                 \
        .size = sizeof(struct kvmtest_record),                                      \
        .name = #kt_name,                                                           \
        .fn = kt_test_##kt_name,                                                    \
        .file = __FILE__,                                                           \
        .line = __LINE__,                                                           \
        .options = { .should_fault = KVMTEST_NO_FAULT, __VA_ARGS__ },               \
    };                                                                              \
    KT_OVERRIDES_END_                                                               \
    static void kt_test_##kt_name(void)

/* Exception vectors, for .should_fault and ktry's result. */
enum kt_fault_vector {
    FAULT_DE = 0,  /* divide error */
    FAULT_DB = 1,  /* debug */
    FAULT_NMI = 2, /* non-maskable interrupt */
    FAULT_BP = 3,  /* breakpoint (int3) */
    FAULT_OF = 4,  /* overflow (into) */
    FAULT_BR = 5,  /* bound range */
    FAULT_UD = 6,  /* invalid opcode */
    FAULT_NM = 7,  /* device not available */
    FAULT_DF = 8,  /* double fault */
    FAULT_TS = 10, /* invalid TSS */
    FAULT_NP = 11, /* segment not present */
    FAULT_SS = 12, /* stack-segment fault */
    FAULT_GP = 13, /* general protection */
    FAULT_PF = 14, /* page fault */
    FAULT_MF = 16, /* x87 floating-point error */
    FAULT_AC = 17, /* alignment check */
    FAULT_MC = 18, /* machine check */
    FAULT_XM = 19, /* SIMD floating-point exception */
    FAULT_VE = 20, /* virtualization exception */
    FAULT_CP = 21, /* control protection */
};

/* ---- Checks ------------------------------------------------------------ */

/*
 * kassert(cond) or kassert(cond, fmt, ...): when cond is false the test fails
 * with the condition's text, file:line and the formatted message. The text is
 * #__VA_ARGS__, taken before any macro in it is expanded, so the report shows
 * the condition as written; with a message it also holds ", fmt, ...", which
 * the runtime cuts off at the first comma outside brackets and quotes.
 */
#define kassert(...) KT_CAT_(KT_KASSERT_, KT_ONE_OR_MORE_(__VA_ARGS__))(#__VA_ARGS__, __VA_ARGS__)
#define KT_KASSERT_ONE(text, cond) ((cond) ? (void)0 : kt_assert_failed(__FILE__, __LINE__, text))
#define KT_KASSERT_MORE(text, cond, ...) \
    ((cond) ? (void)0 : kt_assert_failed_msg(__FILE__, __LINE__, text, __VA_ARGS__))

/*
 * kassert_eq(a, b): fails unless a and b are equal, reporting both
 * expressions and both values. Both are evaluated once and compared as 64-bit
 * values (signed values sign-extended; pointers as addresses).
 */
#define kassert_eq(a, b)                                                            \
    do {                                                                            \
        uint64_t kt_left_ = (uint64_t)(a);                                          \
        uint64_t kt_right_ = (uint64_t)(b);                                         \
        if (kt_left_ != kt_right_)                                                  \
            kt_assert_eq_failed(__FILE__, __LINE__, #a " == " #b, #a, #b, kt_left_, kt_right_); \
    } while (0)

/* kpanic(fmt, ...): the test panics (fails, unless it is .should_panic). */
#define kpanic(...) kt_panic(__FILE__, __LINE__, __VA_ARGS__)

/*
 * kskip(fmt, ...): the test ends at once as skipped, with the formatted
 * reason, whatever it expected (a .should_panic test that calls it is
 * skipped, not failed). For tests that find out at run time that this
 * machine cannot run them: a CPUID bit that is clear, a feature that ktry
 * shows missing.
 */
#define kskip(...) kt_skip(__VA_ARGS__)

/* "ONE" for one argument, "MORE" for 2 to 32. */
#define KT_CAT_(a, b) KT_CAT2_(a, b)
#define KT_CAT2_(a, b) a##b
#define KT_ONE_OR_MORE_(...)                                                        \
    KT_33RD_(__VA_ARGS__, MORE, MORE, MORE, MORE, MORE, MORE, MORE, MORE, MORE, MORE, \
             MORE, MORE, MORE, MORE, MORE, MORE, MORE, MORE, MORE, MORE, MORE, MORE, \
             MORE, MORE, MORE, MORE, MORE, MORE, MORE, MORE, MORE, ONE, ~)
#define KT_33RD_(_1, _2, _3, _4, _5, _6, _7, _8, _9, _10, _11, _12, _13, _14, _15, _16, \
                 _17, _18, _19, _20, _21, _22, _23, _24, _25, _26, _27, _28, _29, _30,  \
                 _31, _32, x, ...) x

#define KT_NORETURN __attribute__((noreturn, cold))
#define KT_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))

KT_NORETURN void kt_assert_failed(const char *file, uint32_t line, const char *expr);
/* expr is the condition followed by ", fmt, ..." as written (see kassert). */
KT_NORETURN KT_PRINTF(4, 5) void kt_assert_failed_msg(const char *file, uint32_t line, const char *expr, const char *fmt, ...);
KT_NORETURN void kt_assert_eq_failed(const char *file, uint32_t line, const char *expr, const char *left_expr,
                                     const char *right_expr, uint64_t left, uint64_t right);
KT_NORETURN KT_PRINTF(3, 4) void kt_panic(const char *file, uint32_t line, const char *fmt, ...);
/* Not cold: a skip is a normal end, not a failure path. */
__attribute__((noreturn)) KT_PRINTF(1, 2) void kt_skip(const char *fmt, ...);

/* ---- Output -------------------------------------------------------------- */

/*
 * A printf subset: %d %i %u %x %X %c %s %p %%, the flags 0, - and # (0x
 * before %x), a width (or *), a precision for %s, and the length modifiers
 * hh h l ll z. %p prints 0x and lowercase hex digits. Each call reaches the
 * host in one exit (longer messages in 512-byte pieces).
 */
KT_PRINTF(1, 2) void sprint(const char *fmt, ...);
/* sprint, then a newline. */
KT_PRINTF(1, 2) void sprintln(const char *fmt, ...);
/* Formats into buf (always NUL-terminated if size > 0); returns the full length. */
KT_PRINTF(3, 4) int ksnprintf(char *buf, size_t size, const char *fmt, ...);
KT_PRINTF(3, 0) int kvsnprintf(char *buf, size_t size, const char *fmt, va_list args);

/* ---- Catching exceptions ------------------------------------------------- */

/*
 * ktry(fn, arg) runs fn(arg). Returns -1 if fn returned, or the vector of the
 * exception (0-31) it raised: execution then continues after ktry, with the
 * callee-saved registers and RFLAGS as they were when ktry was called. ktry
 * nests. Exceptions outside any ktry fail the test as usual.
 *
 * The compiler does not know that an instruction may fault: it may move
 * ordinary stores in fn past a faulting plain memory access. The x86.h
 * wrappers are barriers ("memory" clobbers); elsewhere put
 * `__asm__ volatile("" ::: "memory")` before the access that should fault.
 *
 * The outermost ktry loads the runtime's IDT (vectors 0-31, built from the
 * IDT loaded at that moment) and puts the previous IDT back when it ends.
 * While it runs, a vector above 31 raises #GP, which ktry returns.
 */
int ktry(void (*fn)(void *), void *arg);

/* The exception ktry caught last (all zero before the first). */
struct kt_fault {
    uint64_t vector;
    uint64_t error_code; /* 0 for vectors without one */
    uint64_t rip;        /* the faulting instruction */
    uint64_t cr2;        /* the faulting address, for #PF */
};
const struct kt_fault *ktry_last_fault(void);

/* ---- Runtime ---------------------------------------------------------------- */

/*
 * What the runner calls: runs the test function and returns. `rec` is the
 * test's record (kvmtest_current() returns it); the heap the host placed
 * for `.heap` is [heap_base, heap_base + heap_size) (0 and 0 without one).
 */
void kvmtest_entry(void (*fn)(void), const struct kvmtest_record *rec, uint64_t heap_base, uint64_t heap_size);

/* The record of the running test. */
const struct kvmtest_record *kvmtest_current(void);

/* The compiler may emit calls to these; the runtime provides them. */
void *memset(void *dst, int c, size_t n);
void *memcpy(void *restrict dst, const void *restrict src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);

/*
 * The guest library (kvm-unit-tests' names: u8..u64, alloc_page, get_pte,
 * report, this_cpu_has, setjmp, strcmp...). A file whose own names clash
 * with it defines KVMTEST_NO_GUEST_LIBRARY before including kvmtest.h and
 * includes the parts it wants itself.
 */
#ifndef KVMTEST_NO_GUEST_LIBRARY
#include <kvmtest/types.h>
#include <kvmtest/desc.h>
#include <kvmtest/usermode.h>
#include <kvmtest/alloc.h>
#include <kvmtest/cpu.h>
#include <kvmtest/libc.h>
#include <kvmtest/report.h>
#include <kvmtest/vm.h>
#include <kvmtest/isr.h>
#include <kvmtest/apic.h>
#include <kvmtest/smp.h>
#endif

#endif /* KVMTEST_H */
