/*
 * The runner's way in: kvmtest_entry(fn, record) runs the test function and
 * returns, which ends the run as 'returned'. It does nothing else: on a
 * software-assisted KVM every guest instruction is emulated, so per-test
 * work is kept to what a test asks for. ktry loads the runtime's IDT only
 * while it runs (kt_idt_push / kt_idt_pop, called from ktry.S).
 */
#include "runtime.h"

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

/*
 * While a ktry runs, the IDT is this one: vectors 0-31 point at ktry.S's
 * stubs, with the selector, IST and type of the IDT it replaces. Its limit
 * covers only those 32 vectors (a vector above them raises #GP, which ktry
 * reports), so building it costs 32 gates rather than a 4 KiB copy.
 */
static struct idt_gate idt[CAUGHT_VECTORS] __attribute__((aligned(16)));
static struct dtr saved_idtr;
static const struct kvmtest_record *current;

/* Where ktry.S's stubs send an exception no ktry catches: the replaced
 * IDT's handler for that vector (the engine's, which reports it). */
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

/* Called by the outermost ktry: loads the runtime's IDT over the current one. */
void kt_idt_push(void)
{
    sidt(&saved_idtr);
    const struct idt_gate *old = (const struct idt_gate *)(uintptr_t)saved_idtr.base;
    unsigned count = ((unsigned)saved_idtr.limit + 1) / sizeof(struct idt_gate);
    if (count > CAUGHT_VECTORS) count = CAUGHT_VECTORS;
    for (unsigned vector = 0; vector < count; vector++) {
        idt[vector] = old[vector];
        kt_engine_handlers[vector] = gate_offset(&old[vector]);
        set_gate_offset(&idt[vector], kt_exception_stubs[vector]);
    }
    struct dtr ours = { .limit = (uint16_t)(count * sizeof(struct idt_gate) - 1), .base = (uint64_t)(uintptr_t)idt };
    lidt(&ours);
}

/* Called when the outermost ktry ends: puts the replaced IDT back. */
void kt_idt_pop(void)
{
    lidt(&saved_idtr);
}

/* The one symbol a shared object built with kvmtest cc -shared exports from
 * the runtime (which is compiled with -fvisibility=hidden there, so that its
 * memcpy, strlen and the rest never stand in for the host's libc). */
__attribute__((visibility("default"))) void kvmtest_entry(void (*fn)(void), const struct kvmtest_record *rec, uint64_t heap_base, uint64_t heap_size)
{
    current = rec;
    kt_try_current = 0;
    /* The heap only when its size is the record's: a caller that passes two
     * arguments (a host calling a shared object's tests directly) leaves rdx
     * and rcx undefined. Plain stores, no call: a call would leave its return
     * address on the stack below the test's frame, which the test must find
     * as loaded. */
    uint64_t wanted = rec->version >= 2 ? rec->options.heap : 0;
    bool heap = wanted != 0 && heap_size == wanted;
    kt_heap_base = heap ? heap_base : 0;
    kt_heap_size = heap ? heap_size : 0;
    fn();
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
