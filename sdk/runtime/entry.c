/*
 * The runner's way in: kvmtest_entry(fn, record) runs the test function and
 * returns, which ends the run as 'returned'. It does nothing else: on a
 * software-assisted KVM every guest instruction is emulated, so per-test
 * work is kept to what a test asks for. The runtime's IDT is loaded only
 * when a test first needs it (desc.c).
 */
#include "runtime.h"

static const struct kvmtest_record *current;

/* The innermost active ktry's frame, or 0 (ktry.S). */
void *kt_try_current;

/* The one symbol a shared object built with kvmtest cc -shared exports from
 * the runtime (which is compiled with -fvisibility=hidden there, so that its
 * memcpy, strlen and the rest never stand in for the host's libc). */
__attribute__((visibility("default"))) void kvmtest_entry(void (*fn)(void), const struct kvmtest_record *rec, uint64_t heap_base, uint64_t heap_size)
{
    current = rec;
    kt_try_current = 0;
    /* The heap only when its size is the record's: a caller that passes two
     * arguments (a host calling a shared object's tests directly) leaves rdx
     * and rcx undefined. Without one nothing is stored: kt_heap_base and
     * kt_heap_size are in .bss, which every test starts with as loaded (a
     * snapshot restores it; a shared object's tests have no heap). Plain
     * stores, no call: a call would leave its return address on the stack
     * below the test's frame, which the test must find as loaded. */
    if (rec->version >= 2 && rec->options.heap != 0 && heap_size == rec->options.heap) {
        kt_heap_base = heap_base;
        kt_heap_size = heap_size;
    }
    fn();
}

const struct kvmtest_record *kvmtest_current(void)
{
    return current;
}

/* Filled by desc.c's dispatcher when a ktry catches an exception. */
extern struct kt_fault kt_last_fault;

const struct kt_fault *ktry_last_fault(void)
{
    return &kt_last_fault;
}
