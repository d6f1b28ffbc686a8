/*
 * Where the host enters CPU 0 of a test with several CPUs, with
 * kvmtest_entry's arguments (fn, record, heap base, heap size) and stack,
 * and the number of CPUs in r8: kt_smp_start (smp.c) readies the IDT and
 * waits for the other CPUs, then this jumps to kvmtest_entry, so the test
 * finds its stack as in a test with one CPU. Without a record (a TypeScript
 * test's snippet, runGuest: kvmtest_smp_entry(fn, 0, 0, 0, cpus)) it jumps
 * to fn itself. Hidden, as the runtime's other symbols (the host finds it
 * in the symbol table).
 */
    .text
    .globl kvmtest_smp_entry
    .hidden kvmtest_smp_entry
    .type kvmtest_smp_entry, @function
kvmtest_smp_entry:
    push %rdi
    push %rsi
    push %rdx
    push %rcx
    sub $8, %rsp /* 16-byte alignment at the call */
    mov %rsi, %rdi
    mov %r8, %rsi
    call kt_smp_start
    add $8, %rsp
    pop %rcx
    pop %rdx
    pop %rsi
    pop %rdi
    test %rsi, %rsi
    jnz 1f
    jmp *%rdi
1:
#ifdef __PIC__
    jmp kvmtest_entry@PLT
#else
    jmp kvmtest_entry
#endif
    .size kvmtest_smp_entry, . - kvmtest_smp_entry

    .section .note.GNU-stack, "", @progbits
