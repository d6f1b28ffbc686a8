/* cpuid, rdtsc and invlpg. */
#include <kvmtest.h>

KVMTEST(cpuid_reports_a_vendor) {
    uint32_t max, ebx, ecx, edx;
    cpuid(0, 0, &max, &ebx, &ecx, &edx);
    kassert(max >= 1, "cpuid leaf 0 reports %u as the highest leaf", max);
    char vendor[13];
    __builtin_memcpy(vendor, &ebx, 4);
    __builtin_memcpy(vendor + 4, &edx, 4);
    __builtin_memcpy(vendor + 8, &ecx, 4);
    vendor[12] = 0;
    sprintln("vendor: %s, highest leaf %#x", vendor, max);
}

KVMTEST(cpuid_says_long_mode) {
    uint32_t eax, ebx, ecx, edx;
    cpuid(0x80000001, 0, &eax, &ebx, &ecx, &edx);
    kassert(edx & (1u << 29), "CPUID.80000001h:EDX.LM is clear");
}

KVMTEST(rdtsc_counts_up) {
    uint64_t first = rdtsc();
    uint64_t second = rdtsc();
    kassert(second > first, "rdtsc went from %lu to %lu", first, second);
}

/* Maps a page of the RAM range at a second virtual address by editing the
 * live page tables, then checks that invlpg makes a remapping visible. */
#define RAM_START 0x40000000ull
#define ALIAS 0xc0000000ull
#define PTE_P 1ull
#define PTE_W 2ull
#define PTE_ADDR 0x000ffffffffff000ull

static uint64_t next_free = RAM_START;

/* The table an entry points to, creating it (from the RAM range) if absent. */
static uint64_t *next_table(uint64_t *entry) {
    if (!(*entry & PTE_P)) {
        uint64_t page = next_free;
        next_free += 0x1000;
        for (int i = 0; i < 512; i++) ((uint64_t *)page)[i] = 0;
        *entry = page | PTE_P | PTE_W;
    }
    return (uint64_t *)(*entry & PTE_ADDR);
}

KVMTEST(invlpg_after_remap, .ram = { RAM_START, RAM_START + 0x10000 }) {
    volatile uint64_t *data = (volatile uint64_t *)(RAM_START + 0x8000);
    volatile uint64_t *other = (volatile uint64_t *)(RAM_START + 0x9000);
    *data = 0x1111;
    *other = 0x2222;

    uint64_t *pml4 = (uint64_t *)(read_cr3() & PTE_ADDR);
    uint64_t *pdpt = next_table(&pml4[(ALIAS >> 39) & 511]);
    uint64_t *pd = next_table(&pdpt[(ALIAS >> 30) & 511]);
    uint64_t *pt = next_table(&pd[(ALIAS >> 21) & 511]);
    uint64_t *pte = &pt[(ALIAS >> 12) & 511];
    kassert(!(*pte & PTE_P), "the alias address is already mapped");

    volatile uint64_t *alias = (volatile uint64_t *)ALIAS;
    *pte = (uint64_t)data | PTE_P | PTE_W;
    kassert_eq(*alias, 0x1111);

    *pte = (uint64_t)other | PTE_P | PTE_W;
    invlpg((const void *)ALIAS);
    kassert_eq(*alias, 0x2222);
}
