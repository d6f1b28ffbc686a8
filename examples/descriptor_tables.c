/* GDT and IDT: store, load a copy, and find the same tables again. */
#include <kvmtest.h>

static uint64_t gdt_copy[8] __attribute__((aligned(16)));

KVMTEST(sgdt_finds_a_long_mode_code_segment) {
    struct dtr gdtr;
    sgdt(&gdtr);
    const uint64_t *gdt = (const uint64_t *)gdtr.base;
    uint64_t code = gdt[read_cs() >> 3];
    kassert(code & (1ull << 53), "CS descriptor %#lx lacks the L bit", code);
}

KVMTEST(lgdt_loads_a_copy) {
    struct dtr old, now;
    sgdt(&old);
    kassert(old.limit + 1u <= sizeof(gdt_copy));
    const uint64_t *gdt = (const uint64_t *)old.base;
    for (unsigned i = 0; i < (old.limit + 1u) / 8; i++) gdt_copy[i] = gdt[i];
    struct dtr copy = { .limit = old.limit, .base = (uint64_t)gdt_copy };
    lgdt(&copy);
    sgdt(&now);
    kassert_eq(now.base, (uint64_t)gdt_copy);
    kassert_eq(now.limit, old.limit);
}

KVMTEST(sidt_lidt_round_trip) {
    struct dtr idtr, again;
    sidt(&idtr);
    kassert(idtr.limit >= 32 * 16 - 1, "the IDT has %u bytes", idtr.limit + 1u);
    lidt(&idtr);
    sidt(&again);
    kassert_eq(again.base, idtr.base);
    kassert_eq(again.limit, idtr.limit);
}
