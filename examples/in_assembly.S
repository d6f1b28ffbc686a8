/*
 * Tests written in assembly: each is a function and a record made by the
 * kvmtest_record macro from <kvmtest/abi.h> (name, function, file, line,
 * then optional should_fault=, should_panic=, should_halt=, timeout_ms=,
 * ignore=). They link into the same binary as the C tests. Records made
 * this way take no ports or RAM ranges; docs/test-table.md shows a record
 * laid out by hand for that.
 */
#include <kvmtest/abi.h>

    .text

/* swapgs exchanges GS.base with IA32_KERNEL_GS_BASE: check it from asm. */
asm_swapgs_fn:
    mov $0xc0000102, %ecx           /* IA32_KERNEL_GS_BASE */
    mov $0x1234, %eax
    xor %edx, %edx
    wrmsr
    swapgs
    mov $0xc0000101, %ecx           /* IA32_GS_BASE */
    rdmsr
    cmp $0x1234, %eax
    jne 1f
    ret
1:  /* End the test as an assertion failure through the exit port. */
    mov $KT_EXIT_PORT, %dx
    mov $1, %ax
    out %ax, %dx

/* A test that must raise #UD. */
asm_ud2_fn:
    ud2

/* A test that must halt. */
asm_hlt_fn:
    hlt

kvmtest_record asm_swapgs_exchanges_gs_base, asm_swapgs_fn, __FILE__, __LINE__
kvmtest_record asm_ud2_raises_ud, asm_ud2_fn, __FILE__, __LINE__, should_fault=6
kvmtest_record asm_hlt_halts, asm_hlt_fn, __FILE__, __LINE__, should_halt=1

    .section .note.GNU-stack, "", @progbits
