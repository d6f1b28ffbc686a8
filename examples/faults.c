/*
 * Exceptions: caught in the test with ktry, or expected by the test as a
 * whole with .should_fault; and tests that expect to panic or halt.
 */
#include <kvmtest.h>

static void divide_by_zero(void *arg) {
    volatile uint64_t zero = 0;
    (void)arg;
    __asm__ volatile("divq %0" : : "r"(zero) : "rax", "rdx");
}

static void invalid_opcode(void *arg) {
    (void)arg;
    __asm__ volatile("ud2");
}

static void bad_msr(void *arg) {
    (void)arg;
    wrmsr(0xdeadbeef, 0);
}

static void non_canonical(void *arg) {
    (void)arg;
    *(volatile uint64_t *)0x8000000000000000ull = 1;
}

static void null_read(void *arg) {
    (void)arg;
    (void)*(volatile uint64_t *)0;
}

static void write_to_code(void *arg) {
    (void)arg;
    /* Code pages are mapped read-only: the kernel-style W^X. */
    *(volatile uint8_t *)(uintptr_t)&write_to_code = 0xc3;
}

static void fpu_while_task_switched(void *arg) {
    static uint8_t area[512] __attribute__((aligned(16)));
    (void)arg;
    write_cr0(read_cr0() | CR0_TS);
    __asm__ volatile("fxsave %0" : "=m"(area));
}

static void non_canonical_stack(void *arg) {
    (void)arg;
    /* An rbp-based access goes through SS: a bad address there is #SS, not #GP. */
    __asm__ volatile("mov %%rbp, %%rax\n\t"
                     "movabs $0x8000000000000000, %%rbp\n\t"
                     "mov (%%rbp), %%rbx\n\t"
                     "mov %%rax, %%rbp"
                     : : : "rax", "rbx", "memory");
}

static void single_step(void *arg) {
    (void)arg;
    /* Setting TF traps after the next instruction. */
    __asm__ volatile("pushfq\n\t"
                     "orq $0x100, (%%rsp)\n\t"
                     "popfq\n\t"
                     "nop" : : : "memory", "cc");
}

static void harmless(void *arg) {
    *(int *)arg = 7;
}

KVMTEST(ktry_catches_divide_error) {
    kassert_eq(ktry(divide_by_zero, 0), FAULT_DE);
}

KVMTEST(ktry_catches_invalid_opcode) {
    kassert_eq(ktry(invalid_opcode, 0), FAULT_UD);
}

KVMTEST(ktry_catches_general_protection) {
    kassert_eq(ktry(bad_msr, 0), FAULT_GP);
    kassert_eq(ktry(non_canonical, 0), FAULT_GP);
}

KVMTEST(ktry_catches_page_faults) {
    kassert_eq(ktry(null_read, 0), FAULT_PF);
    kassert_eq(read_cr2(), 0);
    kassert_eq(ktry(write_to_code, 0), FAULT_PF);
}

KVMTEST(ktry_catches_device_not_available) {
    uint64_t cr0 = read_cr0();
    kassert_eq(ktry(fpu_while_task_switched, 0), FAULT_NM);
    write_cr0(cr0);
}

KVMTEST(ktry_catches_stack_segment_fault) {
    kassert_eq(ktry(non_canonical_stack, 0), FAULT_SS);
}

KVMTEST(ktry_catches_single_step_trap) {
    kassert_eq(ktry(single_step, 0), FAULT_DB);
    kassert_eq(read_rflags() & RFLAGS_TF, 0);
}

KVMTEST(ktry_returns_minus_one_without_fault) {
    int value = 0;
    kassert_eq(ktry(harmless, &value), -1);
    kassert_eq(value, 7);
}

KVMTEST(uncaught_page_fault_is_expected, .should_fault = FAULT_PF) {
    null_read(0);
}

KVMTEST(divide_error_is_expected, .should_fault = FAULT_DE) {
    divide_by_zero(0);
}

KVMTEST(panic_test, .should_panic = true) {
    kpanic("failed");
}

KVMTEST(failed_assertion_counts_as_panic, .should_panic = true) {
    kassert_eq(1 + 1, 3);
}

KVMTEST(halts, .should_halt = true) {
    hlt();
}

KVMTEST(needs_real_apic, .ignore = true) {
    /* Ignored (listed, not run): it wants an APIC it does not ask for with .apic = true
     * (examples/interrupts.c does). */
    kassert_eq(rdmsr(IA32_APIC_BASE) & (1ull << 11), 0);
}
