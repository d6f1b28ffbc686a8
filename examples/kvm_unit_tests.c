/*
 * Tests in kvm-unit-tests' style, with its names: exception handlers
 * (handle_exception), exception tables (ASM_TRY, exception_vector) and the
 * *_safe wrappers, and code run in ring 3 (run_in_user). A kvm-unit-tests
 * test ports by turning its main() into KVMTEST()s; report(), kexpect and
 * the page-table helpers work as there (examples/paging.c shows them).
 */
#include <kvmtest.h>

/* ---- Exceptions ---------------------------------------------------------- */

/* A #DE handler that fixes the divisor: returning reruns the div. */
static void fix_divisor(struct ex_regs *regs)
{
    regs->rcx = 7;
}

KVMTEST(de_handler_fixes_the_divisor) {
    handle_exception(DE_VECTOR, fix_divisor);
    u64 quotient;
    __asm__ volatile("xor %%edx, %%edx\n\t"
                     "divq %%rcx"
                     : "=a"(quotient) : "a"(42ull), "c"(0ull) : "rdx");
    kassert_eq(quotient, 6);
    handle_exception(DE_VECTOR, NULL);
}

/* x86/msr.c style: which MSRs exist, and which values they refuse. */
KVMTEST(reserved_efer_bits_raise_gp) {
    u64 efer;
    kassert_eq(rdmsr_safe(IA32_EFER, &efer), 0);
    kassert_eq(wrmsr_safe(IA32_EFER, efer | (1ull << 63)), GP_VECTOR);
    kassert_eq(rdmsr_safe(0xdeadbeef, &efer), GP_VECTOR);
}

/* x86/cr4.c style: long mode cannot drop PAE. */
KVMTEST(cr4_pae_cannot_be_cleared_in_long_mode) {
    kassert_eq(write_cr4_safe(read_cr4() & ~CR4_PAE), GP_VECTOR);
    kassert_eq(exception_error_code(), 0);
    kassert(read_cr4() & CR4_PAE);
}

/* ASM_TRY around any instruction: the vector, or 0. */
KVMTEST(asm_try_catches_invalid_opcode) {
    __asm__ volatile(ASM_TRY("1f") "ud2\n\t"
                     "1:" ::: "memory");
    kassert_eq(exception_vector(), UD_VECTOR);
    __asm__ volatile(ASM_TRY("1f") "nop\n\t"
                     "1:" ::: "memory");
    kassert_eq(exception_vector(), 0);
}

/* ---- Ring 3 ---------------------------------------------------------------- */

static u64 add(u64 a, u64 b)
{
    return a + b;
}

KVMTEST(user_mode_function_returns_a_value) {
    bool raised;
    kassert_eq(run_in_user((usermode_func)add, GP_VECTOR, 40, 2, 0, 0, &raised), 42);
    kassert(!raised);
}

static u64 disable_interrupts(void)
{
    cli(); /* privileged at CPL 3 with IOPL 0 */
    return 0;
}

KVMTEST(cli_in_user_mode_raises_gp) {
    bool raised;
    run_in_user(disable_interrupts, GP_VECTOR, 0, 0, 0, 0, &raised);
    kassert(raised, "cli at CPL 3 did not raise #GP");
    kassert_eq(read_cs(), KERNEL_CS);
}

static u64 read_supervisor_page(void)
{
    return *(volatile u64 *)0x1000; /* the engine's GDT: no U bit */
}

KVMTEST(user_mode_cannot_read_supervisor_pages) {
    bool raised;
    run_in_user(read_supervisor_page, PF_VECTOR, 0, 0, 0, 0, &raised);
    kassert(raised);
    kassert_eq(exception_error_code(), PFERR_USER_MASK | PFERR_PRESENT_MASK);
}

/* syscall into an LSTAR handler, back to ring 3 with iretq. */
extern char syscall_entry[];
__asm__(".text\n"
        "syscall_entry:\n\t"
        "lea 1(%rdi), %rax\n\t" /* the system call: arg + 1 */
        "mov %rsp, %rdi\n\t"
        "pushq $0x43\n\t"       /* USER_DS */
        "push %rdi\n\t"
        "push %r11\n\t"
        "pushq $0x4b\n\t"       /* USER_CS64 */
        "push %rcx\n\t"
        "iretq\n");

static u64 do_syscall(u64 arg)
{
    u64 result;
    __asm__ volatile("syscall" : "=a"(result), "+D"(arg) : : "rcx", "r11", "memory");
    return result;
}

KVMTEST(syscall_from_user_mode) {
    wrmsr(IA32_EFER, rdmsr(IA32_EFER) | EFER_SCE);
    wrmsr(IA32_STAR, ((u64)(USER_CS32 << 16) | KERNEL_CS) << 32);
    wrmsr(IA32_LSTAR, (u64)(uintptr_t)syscall_entry);
    wrmsr(IA32_FMASK, RFLAGS_IF);
    bool raised;
    kassert_eq(run_in_user((usermode_func)do_syscall, GP_VECTOR, 41, 0, 0, 0, &raised), 42);
    kassert(!raised);
}
