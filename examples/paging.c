/*
 * A test ported the kvm-unit-tests way (x86/access.c, x86/pcid.c style):
 * page-table edits with lib/x86/vm.h's helpers, pages from alloc_page,
 * report() lines and kexpect checks that let the test go on, a CPUID edit
 * and this_cpu_has. Declare a heap (.heap) for alloc_page; whatever a test
 * does to the page tables is gone before the next one.
 */
#include <kvmtest.h>

/* Nothing is mapped here until a test maps it. */
#define TEST_VA ((void *)0x40000000)

static void write_one(void *p)
{
    __asm__ volatile("" ::: "memory");
    *(volatile u64 *)p = 1;
}

static void read_one(void *p)
{
    __asm__ volatile("" ::: "memory");
    (void)*(volatile u64 *)p;
}

KVMTEST(paging_alias_write_protect_and_unmap, .heap = 64 * 1024) {
    pgd_t *cr3 = current_page_table();
    u64 *page = alloc_page();
    page[0] = 0xdeadbeef;

    install_page(cr3, virt_to_phys(page), TEST_VA);
    report(*(volatile u64 *)TEST_VA == 0xdeadbeef, "the alias reads the page");

    update_pte(TEST_VA, PT_WRITABLE_MASK, 0);
    report(ktry(write_one, TEST_VA) == FAULT_PF, "a write through the read-only alias faults");
    kexpect_eq(ktry_last_fault()->error_code, PFERR_PRESENT_MASK | PFERR_WRITE_MASK);

    update_pte(TEST_VA, PT_PRESENT_MASK, 0);
    report(ktry(read_one, TEST_VA) == FAULT_PF, "a read through the unmapped alias faults");
    kexpect_eq(ktry_last_fault()->cr2, (u64)TEST_VA);
    kexpect(get_pte(cr3, TEST_VA) == NULL);
}

/* 2 MiB of heap, 2 MiB-aligned: the engine maps it with one large page. */
KVMTEST(paging_install_page_splits_a_large_page, .heap = 2 * 1024 * 1024) {
    pgd_t *cr3 = current_page_table();
    u64 *a = alloc_page(), *b = alloc_page();
    b[0] = 42;
    kexpect_eq(find_pte_level(cr3, a, 1).level, 2);
    install_page(cr3, virt_to_phys(b), a);
    report(find_pte_level(cr3, a, 1).level == 1, "the 2 MiB page was split");
    report(*(volatile u64 *)a == 42, "a now shows b's page");
}

/* A kernel's clock: rdtscp where CPUID shows it (it also says which CPU), rdtsc otherwise. */
static const char *clock_instruction(void)
{
    return this_cpu_has(X86_FEATURE_RDTSCP) ? "rdtscp" : "rdtsc";
}

/* CPUID.0x80000001:EDX bit 27 hidden, as on a CPU without RDTSCP. */
KVMTEST(cpuid_without_rdtscp, .cpuid = { { .leaf = 0x80000001, .reg = CPUID_EDX, .keep = ~(1u << 27) } }) {
    report(!this_cpu_has(X86_FEATURE_RDTSCP), "RDTSCP is hidden");
    report(strcmp(clock_instruction(), "rdtsc") == 0, "the kernel falls back to %s", clock_instruction());
    kexpect(this_cpu_has(X86_FEATURE_LM), "the other bits of the leaf stay");
}
