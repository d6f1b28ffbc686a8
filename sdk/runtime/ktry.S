/*
 * ktry: runs fn(arg) with its frame (below) chained through kt_try_current,
 * so that ktry nests. An exception that nothing more specific claims (see
 * desc.c's dispatcher) while a ktry is active is recorded in kt_last_fault,
 * and the dispatcher rewrites its frame so that iretq resumes at ktry's
 * landing pad, on ktry's stack, with the CS, SS and RFLAGS ktry was called
 * with (so an exception raised in ring 3 returns to ktry's own privilege
 * level); ktry then returns the vector. The outermost ktry makes sure the
 * runtime's IDT is loaded (desc.c's kt_idt_push and kt_idt_pop).
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
    /* CPU 0's only: in a test with several CPUs, make sure (smp.c). */
    cmpl $1, kt_cpu_count(%rip)
    jbe 0f
    lea kt_ktry_name(%rip), %rdi
    call kt_require_cpu0
0:
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

/* The dispatcher's iretq lands here (desc.c, land_in_ktry): rsp = the
 * frame, RFLAGS, CS and SS as ktry was called with. */
    .globl kt_try_landing
    .hidden kt_try_landing
kt_try_landing:
    mov kt_last_fault(%rip), %eax /* .vector */
    jmp kt_try_done
    .size ktry, . - ktry

    .bss
    .balign 8
    .globl kt_last_fault
    .hidden kt_last_fault
kt_last_fault:
    .zero 32

    .section .rodata
kt_ktry_name: .asciz "ktry"

    .section .note.GNU-stack, "", @progbits
