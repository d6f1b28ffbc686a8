/*
 * The ELF entry point. Tests start at kvmtest_entry (the runner passes the
 * test function and its record); running the binary from its ELF entry just
 * returns, so that doing so by mistake is harmless.
 */
    .text
    .globl _start
    .hidden _start
    .type _start, @function
_start:
    ret
    .size _start, . - _start

    .section .note.GNU-stack, "", @progbits
