/*
 * run_in_user's way into ring 3 and back (usermode.c has the rest).
 * kt_user_enter(frame) saves the callee-saved registers, RFLAGS, CS, SS and
 * its rsp in the frame, and iretqs to kt_user_trampoline at CPL 3, which
 * calls fn with the four arguments and ends with ud2 at kt_user_exit. The
 * dispatcher (desc.c, usermode.c) takes that #UD, or fault_vector, as the
 * end of the call: it rewrites the exception frame so that iretq resumes
 * at kt_user_landing, in ring 0 on the saved stack, with rdi = the frame.
 */
#include <kvmtest/abi.h>

/* struct kt_user_frame (usermode.c) */
#define U_RBX 0
#define U_RBP 8
#define U_R12 16
#define U_R13 24
#define U_R14 32
#define U_R15 40
#define U_RFLAGS 48
#define U_CS 56
#define U_SS 64
#define U_KERNEL_RSP 72
#define U_RESULT 80
#define U_FN 88
#define U_ARG1 96
#define U_ARG2 104
#define U_ARG3 112
#define U_ARG4 120
#define U_USER_RSP 128

#define USER_CS64 0x4b
#define USER_DS 0x43

    .text

/* uint64_t kt_user_enter(struct kt_user_frame *frame) */
    .globl kt_user_enter
    .hidden kt_user_enter
    .type kt_user_enter, @function
kt_user_enter:
    mov %rbx, U_RBX(%rdi)
    mov %rbp, U_RBP(%rdi)
    mov %r12, U_R12(%rdi)
    mov %r13, U_R13(%rdi)
    mov %r14, U_R14(%rdi)
    mov %r15, U_R15(%rdi)
    pushfq
    pop %rax
    mov %rax, U_RFLAGS(%rdi)
    mov %cs, %eax
    mov %rax, U_CS(%rdi)
    mov %ss, %eax
    mov %rax, U_SS(%rdi)
    mov %rsp, U_KERNEL_RSP(%rdi)
    mov %rdi, kt_user_current(%rip)
    mov $USER_DS, %eax
    mov %eax, %ds
    mov %eax, %es
    pushq $USER_DS
    pushq U_USER_RSP(%rdi)
    pushq U_RFLAGS(%rdi)
    pushq $USER_CS64
    lea kt_user_trampoline(%rip), %rax
    push %rax
    mov U_FN(%rdi), %rax
    mov U_ARG2(%rdi), %rsi
    mov U_ARG3(%rdi), %rdx
    mov U_ARG4(%rdi), %rcx
    mov U_ARG1(%rdi), %rdi
    iretq
    .size kt_user_enter, . - kt_user_enter

/* Ring 3. */
    .type kt_user_trampoline, @function
kt_user_trampoline:
    call *%rax
    .globl kt_user_exit
    .hidden kt_user_exit
kt_user_exit:
    ud2
    .size kt_user_trampoline, . - kt_user_trampoline

/* Ring 0 again: rsp = the saved rsp (our return address), rdi = the frame. */
    .globl kt_user_landing
    .hidden kt_user_landing
    .type kt_user_landing, @function
kt_user_landing:
    mov U_RBX(%rdi), %rbx
    mov U_RBP(%rdi), %rbp
    mov U_R12(%rdi), %r12
    mov U_R13(%rdi), %r13
    mov U_R14(%rdi), %r14
    mov U_R15(%rdi), %r15
    mov U_RESULT(%rdi), %rax
    ret
    .size kt_user_landing, . - kt_user_landing

    .section .note.GNU-stack, "", @progbits
