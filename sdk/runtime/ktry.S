/*
 * ktry and the exception stubs behind it. While a ktry runs, IDT vectors 0-31
 * point at the stubs below (entry.c's kt_idt_push). A stub first checks for
 * an active ktry:
 *  - none: it jumps to the engine's handler for its vector with the stack,
 *    the exception frame and every general register exactly as the CPU left
 *    them (only RFLAGS' arithmetic flags change), so the engine reports the
 *    fault as if the stub were not there;
 *  - one: it records the fault in kt_last_fault, rewrites the frame so that
 *    iretq resumes at ktry's landing pad, on ktry's stack, with the CS, SS
 *    and RFLAGS ktry was called with (so an exception raised in ring 3
 *    returns to ktry's own privilege level), and ktry returns the vector.
 * Frames are chained through kt_try_current, so ktry nests.
 * Its symbols are .hidden, as the C files' are (-fvisibility=hidden): in a
 * shared object (kvmtest cc -shared) the runtime exports kvmtest_entry only.
 */

/* ktry's frame on its own stack (kt_try_current points at it). An odd
 * number of quadwords keeps the stack 16-byte aligned at each call. */
#define F_RBX 0
#define F_RBP 8
#define F_R12 16
#define F_R13 24
#define F_R14 32
#define F_R15 40
#define F_RFLAGS 48
#define F_PREV 56
#define F_FN 64
#define F_ARG 72
#define F_RESULT 80
#define F_CS 88
#define F_SS 96
#define F_SIZE 104

/* The stub's uniform frame: vector, error code, then the CPU's frame. */
#define X_VECTOR 0
#define X_ERROR 8
#define X_RIP 16
#define X_CS 24
#define X_RFLAGS 32
#define X_RSP 40
#define X_SS 48

    .text

/* int ktry(void (*fn)(void *), void *arg) */
    .globl ktry
    .hidden ktry
    .type ktry, @function
ktry:
    sub $F_SIZE, %rsp
    mov %rbx, F_RBX(%rsp)
    mov %rbp, F_RBP(%rsp)
    mov %r12, F_R12(%rsp)
    mov %r13, F_R13(%rsp)
    mov %r14, F_R14(%rsp)
    mov %r15, F_R15(%rsp)
    mov %rdi, F_FN(%rsp)
    mov %rsi, F_ARG(%rsp)
    pushfq
    pop %rax
    mov %rax, F_RFLAGS(%rsp)
    mov %cs, %eax
    mov %rax, F_CS(%rsp)
    mov %ss, %eax
    mov %rax, F_SS(%rsp)
    mov kt_try_current(%rip), %rax
    mov %rax, F_PREV(%rsp)
    /* The outermost ktry loads the runtime's IDT (entry.c). */
    test %rax, %rax
    jnz 1f
    call kt_idt_push
1:
    mov %rsp, kt_try_current(%rip)
    mov F_FN(%rsp), %rax
    mov F_ARG(%rsp), %rdi
    call *%rax
    mov $-1, %eax
kt_try_done:
    /* eax = the result; rsp = the frame. */
    mov F_PREV(%rsp), %rcx
    mov %rcx, kt_try_current(%rip)
    test %rcx, %rcx
    jnz 2f
    mov %eax, F_RESULT(%rsp)
    call kt_idt_pop
    mov F_RESULT(%rsp), %eax
2:
    mov F_RBX(%rsp), %rbx
    mov F_RBP(%rsp), %rbp
    mov F_R12(%rsp), %r12
    mov F_R13(%rsp), %r13
    mov F_R14(%rsp), %r14
    mov F_R15(%rsp), %r15
    add $F_SIZE, %rsp
    ret

/* iretq from kt_caught lands here: rsp = the frame, RFLAGS restored. */
kt_try_landing:
    mov kt_last_fault(%rip), %eax /* .vector */
    jmp kt_try_done
    .size ktry, . - ktry

/* On the exception stack, with the uniform frame (X_*) pushed. */
kt_caught:
    mov X_VECTOR(%rsp), %rax
    mov %rax, kt_last_fault+0(%rip)
    mov X_ERROR(%rsp), %rax
    mov %rax, kt_last_fault+8(%rip)
    mov X_RIP(%rsp), %rax
    mov %rax, kt_last_fault+16(%rip)
    mov %cr2, %rax
    mov %rax, kt_last_fault+24(%rip)
    mov kt_try_current(%rip), %rcx
    lea kt_try_landing(%rip), %rax
    mov %rax, X_RIP(%rsp)
    mov F_RFLAGS(%rcx), %rax
    mov %rax, X_RFLAGS(%rsp)
    mov F_CS(%rcx), %rax
    mov %rax, X_CS(%rsp)
    mov F_SS(%rcx), %rax
    mov %rax, X_SS(%rsp)
    mov %rcx, X_RSP(%rsp)
    add $16, %rsp
    iretq

/* Vectors for which the CPU pushes an error code (the stub pushes a 0 for
 * the others, so that kt_caught sees one frame layout). */
.macro stub vector
    .balign 16
kt_stub_\vector:
    cmpq $0, kt_try_current(%rip)
    jne 1f
    jmp *kt_engine_handlers + 8 * \vector(%rip)
1:
    .if (\vector != 8) && (\vector != 10) && (\vector != 11) && (\vector != 12) && (\vector != 13) && (\vector != 14) && (\vector != 17) && (\vector != 21) && (\vector != 29) && (\vector != 30)
    pushq $0
    .endif
    pushq $\vector
    jmp kt_caught
.endm

    .irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    stub \v
    .endr

    /* Addresses: in a shared object (-fPIC) the loader relocates them, so
     * they go where relocated read-only data goes rather than into .rodata,
     * which would make the shared object need text relocations. */
#ifdef __PIC__
    .section .data.rel.ro, "aw"
#else
    .section .rodata
#endif
    .balign 8
    .globl kt_exception_stubs
    .hidden kt_exception_stubs
kt_exception_stubs:
    .irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    .quad kt_stub_\v
    .endr

    .bss
    .balign 8
    .globl kt_last_fault
    .hidden kt_last_fault
kt_last_fault:
    .zero 32

    .section .note.GNU-stack, "", @progbits
