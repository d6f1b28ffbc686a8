/*
 * The runtime's exception entry. While the runtime's IDT is loaded (desc.c),
 * vectors 0-31 point at the stubs below. Each pushes a 0 where the CPU
 * pushes no error code, then the vector, then every general register, so
 * that the stack holds a struct ex_regs (desc.h) over the CPU's own frame,
 * and asks kt_exception_dispatch (desc.c) what to do:
 *  - resume: the frame (maybe rewritten: an exception table's fixup, ktry's
 *    or run_in_user's landing pad) is iretq'd to, with the registers in it;
 *  - forward: no one claims the exception. The registers and the stack are
 *    put back exactly as the CPU left them and the stub jumps to the handler
 *    of the IDT the runtime's was copied from (the engine's, which reports
 *    it). Only RFLAGS' arithmetic flags and DF change; the engine reads
 *    RFLAGS from the frame;
 *  - a handler (handle_exception): the dispatcher has copied the ex_regs to
 *    the runtime's handler stack (below the interrupted handler's, for a
 *    fault inside a handler); the handler runs there, not on IST1, where a
 *    nested exception would land on top of it. Its ex_regs is then restored
 *    and iretq'd to.
 * Global symbols are .hidden, as the C files' are in a shared object.
 */
#include <kvmtest/abi.h>

/* struct ex_regs */
#define R_VECTOR 128
#define R_ERROR 136
#define R_SIZE 184

#define ACTION_RESUME 0
#define ACTION_FORWARD 1
#define ACTION_FORWARD_ERROR_CODE 2

    .text

.macro push_regs
    push %r15
    push %r14
    push %r13
    push %r12
    push %r11
    push %r10
    push %r9
    push %r8
    push %rdi
    push %rsi
    push %rbp
    push $0 /* dummy: rsp's slot */
    push %rbx
    push %rdx
    push %rcx
    push %rax
.endm

.macro pop_regs
    pop %rax
    pop %rcx
    pop %rdx
    pop %rbx
    lea 8(%rsp), %rsp /* dummy; lea keeps the flags */
    pop %rbp
    pop %rsi
    pop %rdi
    pop %r8
    pop %r9
    pop %r10
    pop %r11
    pop %r12
    pop %r13
    pop %r14
    pop %r15
.endm

/* rsp = a struct ex_regs on the exception stack. */
    .type kt_exception_common, @function
kt_exception_common:
    push_regs
    cld
    mov %rsp, %rdi
    sub $8, %rsp /* 16-byte alignment at the call */
    call kt_exception_dispatch
    add $8, %rsp
    cmp $ACTION_FORWARD, %rax
    je kt_forward
    cmp $ACTION_FORWARD_ERROR_CODE, %rax
    je kt_forward_error_code
    cmp $ACTION_RESUME, %rax
    je kt_resume
    /* rax = the ex_regs copy on the handler stack. */
    mov %rax, %rsp
    mov %rax, %rdi
    sub $8, %rsp
    call kt_exception_run_handler
    add $8, %rsp
kt_resume:
    pop_regs
    add $16, %rsp /* vector, error code */
    iretq

/* The dispatcher left the target in the error code's slot (the stub pushed
 * that 0 itself): drop the vector and "return" to it, which drops the 0. */
kt_forward:
    pop_regs
    lea 8(%rsp), %rsp
    ret

/* The target is in the vector's slot; the CPU's error code stays. */
kt_forward_error_code:
    pop_regs
    ret
    .size kt_exception_common, . - kt_exception_common

.macro stub vector
    .balign 16
    .type kt_stub_\vector, @function
kt_stub_\vector:
    .if (\vector != 8) && (\vector != 10) && (\vector != 11) && (\vector != 12) && (\vector != 13) && (\vector != 14) && (\vector != 17) && (\vector != 21) && (\vector != 29) && (\vector != 30)
    pushq $0
    .endif
    pushq $\vector
    jmp kt_exception_common
    .size kt_stub_\vector, . - kt_stub_\vector
.endm

    .globl kt_stubs_start
    .hidden kt_stubs_start
kt_stubs_start:
    .irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    stub \v
    .endr
    .globl kt_stubs_end
    .hidden kt_stubs_end
kt_stubs_end:

/*
 * Interrupts (vectors 32-255): handle_irq points a vector's gate at its stub
 * here, on IST 0 (an interrupt in ring 0 stays on the interrupted stack).
 * Each stub is 16 bytes, at kt_irq_stubs_start + 16 * (vector - 32): it
 * pushes a 0 for the error code and the vector, then the common part pushes
 * every register (a struct ex_regs) and asks kt_irq_dispatch (desc.c),
 * which runs the vector's handler and returns 0, or returns where the
 * interrupt goes instead (the gate's previous handler: the engine's stub,
 * which reports it), with the registers and the stack as the CPU left
 * them, as kt_forward does for an exception. The CPU aligns rsp to 16
 * before it pushes the frame, so the ex_regs end 8 bytes off alignment.
 */
    .type kt_irq_common, @function
kt_irq_common:
    push_regs
    cld
    mov %rsp, %rdi
    sub $8, %rsp
    call kt_irq_dispatch
    add $8, %rsp
    test %rax, %rax
    jnz 1f
    pop_regs
    add $16, %rsp /* vector, error code */
    iretq
1:
    mov %rax, R_ERROR(%rsp)
    jmp kt_forward
    .size kt_irq_common, . - kt_irq_common

.macro irq_stub vector
    .balign 16
kt_irq_stub_\vector:
    pushq $0
    pushq $\vector
    jmp kt_irq_common /* 12 bytes at most: the next stub starts 16 bytes on */
.endm

    .balign 16
    .globl kt_irq_stubs_start
    .hidden kt_irq_stubs_start
kt_irq_stubs_start:
    .altmacro
    .set kt_irq_vector, 32
    .rept 224
    irq_stub %kt_irq_vector
    .set kt_irq_vector, kt_irq_vector + 1
    .endr
    .noaltmacro
    .balign 16
    .globl kt_irq_stubs_end
    .hidden kt_irq_stubs_end
kt_irq_stubs_end:

/*
 * Called at the start of every ASM_TRY: clears exception_vector() and
 * exception_error_code() and makes sure the runtime's IDT is loaded. Keeps
 * every register and RFLAGS, since it runs inside the caller's inline asm.
 */
    .globl kt_asm_try_arm
    .hidden kt_asm_try_arm
    .type kt_asm_try_arm, @function
kt_asm_try_arm:
    pushfq
    push %rax
    sub $16, %rsp
    sidt 6(%rsp) /* limit at 6(%rsp), base at 8(%rsp) */
    lea kt_idt(%rip), %rax
    cmp 8(%rsp), %rax
    jne 2f
    cmpb $0, kt_idt_kept(%rip)
    je 2f
1:
    add $16, %rsp
    movl $0, kt_exception_vector(%rip)
    movl $0, kt_exception_error_code(%rip)
    movb $0, kt_exception_rf(%rip)
    pop %rax
    popfq
    ret
2:
    push %rcx
    push %rdx
    push %rsi
    push %rdi
    push %r8
    push %r9
    push %r10
    push %r11
    push %rbp
    mov %rsp, %rbp
    and $-16, %rsp
    cld
    call setup_idt
    mov %rbp, %rsp
    pop %rbp
    pop %r11
    pop %r10
    pop %r9
    pop %r8
    pop %rdi
    pop %rsi
    pop %rdx
    pop %rcx
    jmp 1b
    .size kt_asm_try_arm, . - kt_asm_try_arm

    /* Addresses: in a shared object (-fPIC) the loader relocates them, so
     * they go where relocated read-only data goes. */
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

    .section .note.GNU-stack, "", @progbits
