/*
 * The runner's way in: kvmtest_entry(fn, record) installs the runtime's IDT
 * (so that ktry can catch exceptions), runs the test function and returns,
 * which ends the run as 'returned'. Everything else in a test binary is
 * reached from here.
 */
#include "runtime.h"

#define IDT_ENTRIES 256
#define CAUGHT_VECTORS 32

struct idt_gate {
    uint16_t offset_low;
    uint16_t selector;
    uint8_t ist;
    uint8_t type;
    uint16_t offset_mid;
    uint32_t offset_high;
    uint32_t reserved;
};

/* A copy of the engine's IDT with vectors 0-31 pointing at ktry.S's stubs. */
static struct idt_gate idt[IDT_ENTRIES] __attribute__((aligned(4096)));
static struct dtr engine_idtr;
static const struct kvmtest_record *current;

/* Where ktry.S's stubs send an exception no ktry catches: the engine's own
 * handler for that vector, which reports it to the host. */
uint64_t kt_engine_handlers[CAUGHT_VECTORS];
/* The innermost active ktry's frame, or 0 (ktry.S). */
void *kt_try_current;
/* The address of each stub, from ktry.S. */
extern const uint64_t kt_exception_stubs[CAUGHT_VECTORS];

static uint64_t gate_offset(const struct idt_gate *gate)
{
    return (uint64_t)gate->offset_low | ((uint64_t)gate->offset_mid << 16) | ((uint64_t)gate->offset_high << 32);
}

static void set_gate_offset(struct idt_gate *gate, uint64_t offset)
{
    gate->offset_low = (uint16_t)offset;
    gate->offset_mid = (uint16_t)(offset >> 16);
    gate->offset_high = (uint32_t)(offset >> 32);
}

/* Keeps each gate's selector, IST and type: only the handler changes. */
static void install_idt(void)
{
    sidt(&engine_idtr);
    size_t bytes = (size_t)engine_idtr.limit + 1;
    if (bytes > sizeof(idt)) bytes = sizeof(idt);
    memcpy(idt, (const void *)(uintptr_t)engine_idtr.base, bytes);
    for (int vector = 0; vector < CAUGHT_VECTORS && (size_t)(vector + 1) * sizeof(idt[0]) <= bytes; vector++) {
        kt_engine_handlers[vector] = gate_offset(&idt[vector]);
        set_gate_offset(&idt[vector], kt_exception_stubs[vector]);
    }
    struct dtr ours = { .limit = (uint16_t)(bytes - 1), .base = (uint64_t)(uintptr_t)idt };
    lidt(&ours);
}

void kvmtest_entry(void (*fn)(void), const struct kvmtest_record *rec)
{
    current = rec;
    kt_try_current = 0;
    install_idt();
    fn();
    lidt(&engine_idtr);
}

const struct kvmtest_record *kvmtest_current(void)
{
    return current;
}

/* Filled by ktry.S's kt_caught. */
extern struct kt_fault kt_last_fault;

const struct kt_fault *ktry_last_fault(void)
{
    return &kt_last_fault;
}
