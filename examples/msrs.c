/* Model-specific registers: EFER as long mode needs it, and round trips. */
#include <kvmtest.h>

KVMTEST(efer_has_long_mode) {
    uint64_t efer = rdmsr(IA32_EFER);
    kassert(efer & EFER_LME);
    kassert(efer & EFER_LMA);
}

KVMTEST(star_msr_round_trip) {
    uint64_t star = 0x0023001000000000ull;
    wrmsr(IA32_STAR, star);
    kassert_eq(rdmsr(IA32_STAR), star);
}

KVMTEST(lstar_msr_round_trip) {
    wrmsr(IA32_LSTAR, 0xffffffff81000000ull);
    kassert_eq(rdmsr(IA32_LSTAR), 0xffffffff81000000ull);
}

KVMTEST(swapgs_exchanges_gs_base) {
    wrmsr(IA32_GS_BASE, 0x1000);
    wrmsr(IA32_KERNEL_GS_BASE, 0x2000);
    __asm__ volatile("swapgs");
    kassert_eq(rdmsr(IA32_GS_BASE), 0x2000);
    kassert_eq(rdmsr(IA32_KERNEL_GS_BASE), 0x1000);
}

KVMTEST(bad_msr_faults, .should_fault = FAULT_GP) {
    wrmsr(0xdeadbeef, 0);
}
