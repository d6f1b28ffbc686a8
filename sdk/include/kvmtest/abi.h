/*
 * The guest/host protocol of kvmtest, shared by the runtime and by anyone who
 * writes a test binary without it: port numbers, hypercall numbers, the
 * report record a failing test sends, and the test-table record the host
 * reads from the `.kvmtest` section. docs/abi.md and docs/test-table.md
 * describe the same things in prose; the host side lives in
 * src/devices/ports.ts, src/devices/hypercall.ts and src/image/test-table.ts.
 *
 * C99 with fixed-width types (so that other languages can mirror it), and
 * usable from assembly (.S): there it provides the numbers, the record's
 * field offsets and a `kvmtest_record` assembler macro.
 */
#ifndef KVMTEST_ABI_H
#define KVMTEST_ABI_H

/* ---- Ports ------------------------------------------------------------ */

/* COM1: a byte written to the data register is console output. */
#define KT_SERIAL_PORT 0x3f8
/* COM1 line status register: always reads 0x60 (transmitter empty). */
#define KT_SERIAL_LSR 0x3fd
/* A 16-bit write ends the test with one of the KT_EXIT_* codes. */
#define KT_EXIT_PORT 0xf4
/* A 32-bit write of a KT_HC_* number; arguments in rdi and rsi. */
#define KT_HYPERCALL_PORT 0xf5

/* In tests with an APIC (.apic, .cpus): an 8-bit out of 0 or 1 to
 * KT_IRQ_LINE_PORT + line (0 to KT_IRQ_LINES - 1) sets that IOAPIC pin's
 * level, as kvm-unit-tests' pc-testdev does (set_irq_line). */
#define KT_IRQ_LINE_PORT 0x2000
#define KT_IRQ_LINES 24

#define KT_EXIT_RETURNED 0
#define KT_EXIT_ASSERT_FAILED 1
#define KT_EXIT_PANICKED 2
/* Any other exit code: the test panicked with that code. */

/* ---- Hypercalls ------------------------------------------------------- */

/* rdi = pointer to bytes, rsi = length: append them to the console. */
#define KT_HC_WRITE 1
/* rdi = pointer to a struct kt_report: the test failed. Terminal. */
#define KT_HC_REPORT 2
/* rdi = pointer to the reason's bytes, rsi = its length (no NUL needed):
 * the test is skipped, whatever it expected. Terminal. */
#define KT_HC_SKIP 3
/* rdi = pointer to a struct kt_report of kind KT_REPORT_CHECK or
 * KT_REPORT_CHECK_EQ: a non-fatal check failed (kexpect, report). The guest
 * continues; the test fails at its end, listing every such check. */
#define KT_HC_CHECK 4

#define KT_REPORT_ASSERT 1    /* kassert */
#define KT_REPORT_ASSERT_EQ 2 /* kassert_eq: the left/right fields are valid */
#define KT_REPORT_PANIC 3     /* kpanic */
#define KT_REPORT_CHECK 4     /* kexpect, report: with KT_HC_CHECK */
#define KT_REPORT_CHECK_EQ 5  /* kexpect_eq: the left/right fields are valid */
#define KT_REPORT_SIZE 64

/* ---- The test table (section .kvmtest) --------------------------------- */

/* The bytes 'K' 'V' 'M' 'T' read as a little-endian u32. */
#define KVMTEST_MAGIC 0x544d564b
/* Version 2 appends .heap and .cpuid to version 1's 336 bytes, version 3
 * .cpus and .apic to version 2's 504 (docs/test-table.md). */
#define KVMTEST_VERSION 3
#define KVMTEST_RECORD_SIZE 512
#define KVMTEST_RECORD_V1_SIZE 336
#define KVMTEST_RECORD_V2_SIZE 504
#define KVMTEST_MAX_IOPORTS 16
#define KVMTEST_MAX_RAMS 8
#define KVMTEST_MAX_CPUID 8
/* The most CPUs a test may ask for (.cpus). */
#define KVMTEST_MAX_CPUS 16
/* should_fault when the test is not expected to fault. */
#define KVMTEST_NO_FAULT (-1)

/* Byte offsets in a version 1 record (docs/test-table.md). */
#define KT_REC_MAGIC 0
#define KT_REC_VERSION 4
#define KT_REC_SIZE 6
#define KT_REC_NAME 8
#define KT_REC_FN 16
#define KT_REC_FILE 24
#define KT_REC_LINE 32
#define KT_REC_IOPORT 40
#define KT_REC_IOPORTS 48
#define KT_REC_RAM 176
#define KT_REC_RAMS 192
#define KT_REC_SHOULD_FAULT 320
#define KT_REC_TIMEOUT_MS 324
#define KT_REC_SHOULD_PANIC 328
#define KT_REC_SHOULD_HALT 329
#define KT_REC_IGNORE 330
/* Version 2. */
#define KT_REC_HEAP 336
#define KT_REC_CPUID 344
#define KT_CPUID_ENTRY_SIZE 20
/* Version 3. */
#define KT_REC_CPUS 504
#define KT_REC_APIC 508

/* struct kvmtest_cpuid's reg: which register an entry edits (0: unset). */
#define CPUID_EAX 1
#define CPUID_EBX 2
#define CPUID_ECX 3
#define CPUID_EDX 4

#ifndef __ASSEMBLER__

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What a failing test hands the host: 64 bytes, pointers are guest-virtual. */
struct kt_report {
    uint32_t kind;       /* KT_REPORT_* */
    uint32_t line;
    uint64_t file;       /* const char *, never 0 */
    uint64_t expr;       /* const char * condition text, or 0 */
    uint64_t message;    /* const char * formatted message, or 0 */
    uint64_t left_expr;  /* kassert_eq only */
    uint64_t right_expr; /* kassert_eq only */
    uint64_t left;       /* kassert_eq only */
    uint64_t right;      /* kassert_eq only */
};

/* A port that reads as `value`. All zero means unset, so port 0 cannot be
 * configured to read 0. Field order matches `.ioport = { port, value }`. */
struct kvmtest_ioport {
    uint32_t port; /* 0 to 0xffff; wider so that the host can reject bad values */
    uint32_t value;
};

/* Extra guest RAM: the physical range [from, to), identity-mapped, both ends
 * 4 KiB-aligned and at or above 1 MiB. All zero means unset. */
struct kvmtest_ram {
    uint64_t from;
    uint64_t to;
};

/* One CPUID edit: in leaf/subleaf, register `reg` (CPUID_EAX..CPUID_EDX)
 * reads (value & keep) | set, where value is what the machine would give
 * otherwise. keep = ~(1u << 26) hides bit 26; keep = 0 replaces the value
 * with set. All zero means unset. */
struct kvmtest_cpuid {
    uint32_t leaf;
    uint32_t subleaf;
    uint32_t reg;
    uint32_t keep;
    uint32_t set;
};

/* The options of KVMTEST(name, ...); every field may be left out. */
struct kvmtest_options {
    struct kvmtest_ioport ioport;
    struct kvmtest_ioport ioports[KVMTEST_MAX_IOPORTS];
    struct kvmtest_ram ram;
    struct kvmtest_ram rams[KVMTEST_MAX_RAMS];
    int32_t should_fault; /* an exception vector, or KVMTEST_NO_FAULT */
    uint32_t timeout_ms;  /* 0: the runner's default */
    bool should_panic;
    bool should_halt;
    bool ignore;
    uint8_t reserved[5];
    /* Version 2. */
    uint64_t heap; /* bytes of heap for alloc_page (a multiple of 4 KiB); 0: none */
    struct kvmtest_cpuid cpuid[KVMTEST_MAX_CPUID];
    /* Version 3. */
    uint32_t cpus; /* 0 or 1: one CPU; up to KVMTEST_MAX_CPUS (implies .apic) */
    bool apic;     /* a local APIC per CPU and an IOAPIC (KVM's in-kernel irqchip) */
    uint8_t reserved3[3];
};

/* One test in the table. */
struct kvmtest_record {
    uint32_t magic;   /* KVMTEST_MAGIC */
    uint16_t version; /* KVMTEST_VERSION */
    uint16_t size;    /* sizeof(struct kvmtest_record); readers skip fields they don't know */
    const char *name;
    void (*fn)(void);
    const char *file;
    uint32_t line;
    uint32_t reserved;
    struct kvmtest_options options;
};

/* The layout is the contract with the host: fail the build if it drifts. */
#define KT_ABI_CHECK(cond, what) typedef char kt_abi_check_##what[(cond) ? 1 : -1]
KT_ABI_CHECK(sizeof(struct kt_report) == KT_REPORT_SIZE, report_size);
KT_ABI_CHECK(sizeof(struct kvmtest_record) == KVMTEST_RECORD_SIZE, record_size);
KT_ABI_CHECK(offsetof(struct kvmtest_record, options.ioports) == KT_REC_IOPORTS, ioports_offset);
KT_ABI_CHECK(offsetof(struct kvmtest_record, options.rams) == KT_REC_RAMS, rams_offset);
KT_ABI_CHECK(offsetof(struct kvmtest_record, options.should_fault) == KT_REC_SHOULD_FAULT, fault_offset);
KT_ABI_CHECK(offsetof(struct kvmtest_record, options.ignore) == KT_REC_IGNORE, ignore_offset);
KT_ABI_CHECK(offsetof(struct kvmtest_record, options.heap) == KT_REC_HEAP, heap_offset);
KT_ABI_CHECK(offsetof(struct kvmtest_record, options.cpuid) == KT_REC_CPUID, cpuid_offset);
KT_ABI_CHECK(sizeof(struct kvmtest_cpuid) == KT_CPUID_ENTRY_SIZE, cpuid_entry_size);
KT_ABI_CHECK(offsetof(struct kvmtest_record, options.cpus) == KT_REC_CPUS, cpus_offset);
KT_ABI_CHECK(offsetof(struct kvmtest_record, options.apic) == KT_REC_APIC, apic_offset);
#undef KT_ABI_CHECK

#else /* __ASSEMBLER__ */

/*
 * A test record from assembly (GNU as, in a .S file):
 *
 *     kvmtest_record my_test, my_test_fn, __FILE__, __LINE__
 *     kvmtest_record faults, faults_fn, __FILE__, __LINE__, should_fault=13
 *
 *     kvmtest_record pages, pages_fn, __FILE__, __LINE__, heap=0x10000
 *     kvmtest_record timer, timer_fn, __FILE__, __LINE__, apic=1
 *     kvmtest_record smp, smp_fn, __FILE__, __LINE__, cpus=4
 *
 * Ports, RAM ranges and CPUID edits are not configurable here; write the
 * record by hand (docs/test-table.md) when a test needs them.
 */
.macro kvmtest_record name:req, fn:req, file:req, line:req, should_fault=-1, should_panic=0, should_halt=0, timeout_ms=0, ignore=0, heap=0, cpus=0, apic=0
    .pushsection .rodata, "a", @progbits
.Lkt_name_\@: .asciz "\name"
.Lkt_file_\@: .asciz "\file"
    .popsection
    .pushsection .kvmtest, "a", @progbits
    .balign 8
    .long KVMTEST_MAGIC
    .short KVMTEST_VERSION, KVMTEST_RECORD_SIZE
    .quad .Lkt_name_\@, \fn, .Lkt_file_\@
    .long \line, 0
    .zero KT_REC_SHOULD_FAULT - KT_REC_IOPORT /* no ports, no RAM */
    .long \should_fault, \timeout_ms
    .byte \should_panic, \should_halt, \ignore
    .zero 5
    .quad \heap
    .zero KT_REC_CPUS - KT_REC_CPUID /* no CPUID edits */
    .long \cpus
    .byte \apic
    .zero KVMTEST_RECORD_SIZE - KT_REC_APIC - 1
    .popsection
.endm

#endif /* __ASSEMBLER__ */

#endif /* KVMTEST_ABI_H */
