/*
 * Control registers and RFLAGS in ring 0: the machine starts in long mode
 * with paging on and interrupts off, and the test may change all of it.
 */
#include <kvmtest.h>

KVMTEST(cr0_has_protection_and_paging) {
    uint64_t cr0 = read_cr0();
    kassert(cr0 & CR0_PE, "not in protected mode: cr0 = %#lx", cr0);
    kassert(cr0 & CR0_PG, "paging is off: cr0 = %#lx", cr0);
}

KVMTEST(cr4_has_pae) {
    kassert(read_cr4() & CR4_PAE);
}

KVMTEST(cr0_write_protect_toggles) {
    uint64_t cr0 = read_cr0();
    write_cr0(cr0 & ~CR0_WP);
    kassert_eq(read_cr0() & CR0_WP, 0);
    write_cr0(cr0);
    kassert_eq(read_cr0(), cr0);
}

KVMTEST(cr3_reload_keeps_mappings) {
    static volatile uint64_t value = 41;
    write_cr3(read_cr3());
    value++;
    kassert_eq(value, 42);
}

KVMTEST(runs_in_ring_zero) {
    kassert_eq(read_cs() & 3, 0);
    kassert_eq(read_ss() & 3, 0);
}

KVMTEST(interrupts_start_disabled) {
    kassert_eq(read_rflags() & RFLAGS_IF, 0);
}

KVMTEST(sti_and_cli_change_rflags_if) {
    sti();
    kassert(read_rflags() & RFLAGS_IF, "sti did not set IF");
    cli();
    kassert_eq(read_rflags() & RFLAGS_IF, 0);
}
