/*
 * The runtime's IDT and the one dispatcher behind it (exceptions.S calls
 * kt_exception_dispatch for every exception that reaches the runtime's
 * stubs). An exception is claimed, in this order, by: run_in_user's return
 * to ring 0; an exception-table entry (ASM_TRY) for the faulting rip;
 * run_in_user's fault_vector; a handle_exception handler; the innermost
 * ktry. Nothing claims it: it goes on to the IDT the runtime's was copied
 * from (the engine's, which reports it), untouched.
 *
 * The IDT is loaded lazily, by the first user of it, so that a test that
 * uses none pays nothing. Interrupts (handle_irq) have a dispatcher of
 * their own, kt_irq_dispatch. In a test with several CPUs the IDT is
 * shared: built whole, all 256 vectors, before the other CPUs load it
 * (smp.c); handlers serve every CPU, and each CPU has its own handler
 * stack and depth.
 */
#include "runtime.h"

#define RUNTIME_VECTORS 32
#define IDT_VECTORS 256
#define GATE_INTERRUPT 0xe
#define GATE_PRESENT 0x80

/* exceptions.S's answers. */
#define ACTION_RESUME 0
#define ACTION_FORWARD 1
#define ACTION_FORWARD_ERROR_CODE 2

/* Deeper handler nesting than this is a handler faulting over and over:
 * the exception goes to the engine, which reports it where it happened. */
#define MAX_HANDLER_DEPTH 8
#define HANDLER_STACK_SIZE (16 * 1024)

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
 * The engine's IDT as abi.md describes it: at 0x2000, 256 interrupt gates,
 * vector v to its stub at 0x3000 + 16 * v, code segment 0x08, IST1. The
 * runtime's IDT starts with vectors 32-255 as those gates, so that a test
 * with several CPUs, which needs them all, finds them there instead of
 * copying 3.5 KiB (slow where every instruction is emulated); it checks
 * first that the engine's IDT is that one.
 */
#define ENGINE_IDT_BASE 0x2000
#define ENGINE_IDT_LIMIT 0xfff
#define ENGINE_STUBS 0x3000
#define ENGINE_STUB_SIZE 16
#define ENGINE_GATE_VALUE(v)                                                                   \
    { .offset_low = ENGINE_STUBS + ENGINE_STUB_SIZE * (v), .selector = KERNEL_CS, .ist = 1, \
      .type = GATE_PRESENT | GATE_INTERRUPT }
#define ENGINE_GATE(v) [v] = ENGINE_GATE_VALUE(v)
#define ENGINE_GATES4(v) ENGINE_GATE(v), ENGINE_GATE(v + 1), ENGINE_GATE(v + 2), ENGINE_GATE(v + 3)
#define ENGINE_GATES16(v) ENGINE_GATES4(v), ENGINE_GATES4(v + 4), ENGINE_GATES4(v + 8), ENGINE_GATES4(v + 12)
#define ENGINE_GATES32(v) ENGINE_GATES16(v), ENGINE_GATES16(v + 16)

/* The runtime's IDT: all 256 gates, with a limit that covers the vectors
 * filled so far (32, unless set_idt_entry or a test with several CPUs asked
 * for more). A page of its own, so that a test that write-protects its own
 * data (update_pte) never write-protects the IDT with it. */
struct idt_gate kt_idt[IDT_VECTORS] __attribute__((aligned(4096))) = {
    ENGINE_GATES32(32), ENGINE_GATES32(64), ENGINE_GATES32(96), ENGINE_GATES32(128),
    ENGINE_GATES32(160), ENGINE_GATES32(192), ENGINE_GATES32(224),
};
static unsigned idt_count;
/* The IDT the runtime's was built from: where vectors above idt_count come from. */
static struct dtr source_idtr;
/* Set by any user that wants the runtime's IDT to stay (all but ktry). */
bool kt_idt_kept;
/* The outermost ktry loaded the runtime's IDT over this one. */
static bool ktry_loaded;
static struct dtr ktry_previous;

/* Where an unclaimed exception or interrupt goes: the copied IDT's handler
 * for it (for an interrupt: the gate's handler before handle_irq's). */
uint64_t kt_engine_handlers[IDT_VECTORS];
extern const uint64_t kt_exception_stubs[RUNTIME_VECTORS];
/* exceptions.S: the stub of interrupt vector v is at kt_irq_stubs_start + 16 * (v - 32). */
extern char kt_irq_stubs_start[];
#define IRQ_STUB_SIZE 16

/* handle_exception's (0-31) and handle_irq's (32-255), for every CPU. */
static handler handlers[IDT_VECTORS];
/* Per CPU (kt_this_cpu): a test with one CPU uses the first only. */
static unsigned handler_depth[KVMTEST_MAX_CPUS];
uint8_t kt_handler_stack[KVMTEST_MAX_CPUS][HANDLER_STACK_SIZE] __attribute__((aligned(16)));
/* The runtime's IDT as loaded, for the other CPUs of a test with several (smp.c). */
struct dtr kt_idtr;

unsigned kt_exception_vector;
unsigned kt_exception_error_code;
bool kt_exception_rf;

struct ex_entry {
    uint64_t rip;
    uint64_t fixup;
};
/* ld defines these for the section kvmtest_extable; weak, so that a binary
 * without any ASM_TRY (no such section) links and has an empty table. */
extern const struct ex_entry __start_kvmtest_extable[] __attribute__((weak, visibility("hidden")));
extern const struct ex_entry __stop_kvmtest_extable[] __attribute__((weak, visibility("hidden")));

/* ktry.S */
extern void *kt_try_current;
extern char kt_try_landing[];
extern struct kt_fault kt_last_fault;
struct kt_try_frame {
    uint64_t rbx, rbp, r12, r13, r14, r15, rflags, prev, fn, arg, result, cs, ss;
};

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

static bool runtime_idt_loaded(void)
{
    struct dtr now;
    sidt(&now);
    return now.base == (uint64_t)(uintptr_t)kt_idt;
}

static void load_runtime_idt(void)
{
    kt_idtr.limit = (uint16_t)(idt_count * sizeof(struct idt_gate) - 1);
    kt_idtr.base = (uint64_t)(uintptr_t)kt_idt;
    lidt(&kt_idtr);
}

/*
 * Builds the runtime's IDT from the one loaded now (`now`, from sidt; vectors
 * 0-31: the same selector, IST and type, the runtime's stub as handler) and
 * loads it. Returns false if it was loaded already. A gate that leads to the
 * runtime's own stub (a test's IDT copied from the runtime's) keeps the
 * target that stub had, so that forwarding never loops.
 */
/*
 * install_idt's common case, in few instructions (each one is emulated on a
 * software-assisted KVM, where the general loop below costs about a
 * millisecond): the source is the engine's IDT with its 32 exception gates
 * as abi.md gives them, and the runtime's stubs lie 16 bytes apart in one
 * 64 KiB stretch. Each gate is then two quadwords that differ from the
 * previous one by 16. Returns false, having checked, where that is not so.
 */
static bool copy_engine_exception_gates(const struct dtr *now)
{
    uint64_t stub0 = kt_exception_stubs[0];
    if (now->base != ENGINE_IDT_BASE || now->limit != ENGINE_IDT_LIMIT) return false;
    if (kt_exception_stubs[RUNTIME_VECTORS - 1] != stub0 + ENGINE_STUB_SIZE * (RUNTIME_VECTORS - 1)) return false;
    if ((stub0 & 0xffff) > 0x10000 - ENGINE_STUB_SIZE * RUNTIME_VECTORS) return false;
    const uint64_t *source = (const uint64_t *)(uintptr_t)now->base;
    uint64_t *ours = (uint64_t *)(uintptr_t)kt_idt;
    uint64_t attributes = (uint64_t)KERNEL_CS << 16 | 1ull << 32 | (uint64_t)(GATE_PRESENT | GATE_INTERRUPT) << 40;
    uint64_t engine_low = ENGINE_STUBS | attributes;
    uint64_t our_low = (stub0 & 0xffff) | attributes | ((stub0 >> 16) & 0xffff) << 48, our_high = stub0 >> 32;
    for (unsigned vector = 0; vector < RUNTIME_VECTORS; vector++) {
        if (source[2 * vector] != engine_low || source[2 * vector + 1] != 0) return false;
        /* On a mismatch the general loop rewrites every gate written so far. */
        ours[2 * vector] = our_low;
        ours[2 * vector + 1] = our_high;
        engine_low += ENGINE_STUB_SIZE;
        our_low += ENGINE_STUB_SIZE;
    }
    for (unsigned vector = 0; vector < RUNTIME_VECTORS; vector++)
        kt_engine_handlers[vector] = (uint64_t)ENGINE_STUBS + ENGINE_STUB_SIZE * vector;
    return true;
}

static bool install_idt(const struct dtr *now)
{
    if (now->base == (uint64_t)(uintptr_t)kt_idt) return false;
    source_idtr = *now;
    if (copy_engine_exception_gates(now)) {
        idt_count = RUNTIME_VECTORS;
        load_runtime_idt();
        return true;
    }
    const struct idt_gate *old = (const struct idt_gate *)(uintptr_t)now->base;
    unsigned count = ((unsigned)now->limit + 1) / sizeof(struct idt_gate);
    if (count > RUNTIME_VECTORS) count = RUNTIME_VECTORS;
    for (unsigned vector = 0; vector < count; vector++) {
        kt_idt[vector] = old[vector];
        uint64_t target = gate_offset(&old[vector]), stub = kt_exception_stubs[vector];
        if (target != stub) kt_engine_handlers[vector] = target;
        set_gate_offset(&kt_idt[vector], stub);
    }
    idt_count = count;
    load_runtime_idt();
    return true;
}

void setup_idt(void)
{
    struct dtr now;
    sidt(&now);
    install_idt(&now);
    kt_idt_kept = true;
}

/* The outermost ktry: loads the runtime's IDT if it is not loaded. */
void kt_idt_push(void)
{
    sidt(&ktry_previous);
    ktry_loaded = install_idt(&ktry_previous);
}

/*
 * When the outermost ktry ends: if it loaded the runtime's IDT and nothing
 * else has asked for it since, and it is still the IDT loaded, load the
 * previous one again. An IDT the test loaded inside the ktry stays loaded.
 */
void kt_idt_pop(void)
{
    if (!ktry_loaded) return;
    ktry_loaded = false;
    if (kt_idt_kept || !runtime_idt_loaded()) return;
    lidt(&ktry_previous);
}

static void check_vector(const char *what, long vec, int limit, const char *file, uint32_t line)
{
    if (vec < 0 || vec >= limit)
        kt_panic(file, line, "%s: vector %ld is out of range (0-%d)", what, vec, limit - 1);
}

/* The runtime's gate for vec, with the IDT loaded and covering vec. */
static struct idt_gate *runtime_gate(int vec)
{
    setup_idt();
    if ((unsigned)vec >= idt_count) {
        /* Vectors above the ones copied so far: the source IDT's gates, as far as its limit goes. */
        const struct idt_gate *old = (const struct idt_gate *)(uintptr_t)source_idtr.base;
        unsigned source_count = ((unsigned)source_idtr.limit + 1) / sizeof(struct idt_gate);
        unsigned end = (unsigned)vec + 1, copied = source_count < end ? source_count : end;
        /* One rep movsb and one rep stosb: each a single instruction to emulate. */
        if (copied > idt_count) memcpy(&kt_idt[idt_count], &old[idt_count], (copied - idt_count) * sizeof(struct idt_gate));
        else copied = idt_count;
        if (end > copied) memset(&kt_idt[copied], 0, (end - copied) * sizeof(struct idt_gate));
        idt_count = end;
        load_runtime_idt();
    }
    return &kt_idt[vec];
}

void kt_set_idt_entry(int vec, void *addr, int dpl, const char *file, uint32_t line)
{
    check_vector("set_idt_entry", vec, IDT_VECTORS, file, line);
    if (dpl < 0 || dpl > 3) kt_panic(file, line, "set_idt_entry: dpl %d is out of range (0-3)", dpl);
    struct idt_gate *gate = runtime_gate(vec);
    memset(gate, 0, sizeof(*gate));
    set_gate_offset(gate, (uint64_t)(uintptr_t)addr);
    gate->selector = read_cs();
    gate->type = (uint8_t)(GATE_PRESENT | (dpl << 5) | GATE_INTERRUPT);
}

void kt_set_idt_sel(int vec, unsigned sel, const char *file, uint32_t line)
{
    check_vector("set_idt_sel", vec, IDT_VECTORS, file, line);
    if (sel > 0xffff) kt_panic(file, line, "set_idt_sel: selector %#x is not 16-bit", sel);
    runtime_gate(vec)->selector = (uint16_t)sel;
}

void kt_set_idt_dpl(int vec, unsigned dpl, const char *file, uint32_t line)
{
    check_vector("set_idt_dpl", vec, IDT_VECTORS, file, line);
    if (dpl > 3) kt_panic(file, line, "set_idt_dpl: dpl %u is out of range (0-3)", dpl);
    struct idt_gate *gate = runtime_gate(vec);
    gate->type = (uint8_t)((gate->type & ~0x60) | (dpl << 5));
}

void kt_set_idt_ist(int vec, unsigned ist, const char *file, uint32_t line)
{
    check_vector("set_idt_ist", vec, IDT_VECTORS, file, line);
    if (ist > 7) kt_panic(file, line, "set_idt_ist: IST index %u is out of range (0-7)", ist);
    runtime_gate(vec)->ist = (uint8_t)ist;
}

void kt_set_intr_alt_stack(int vec, void *addr, const char *file, uint32_t line)
{
    kt_set_idt_entry(vec, addr, 0, file, line);
    kt_idt[vec].ist = 1;
}

bool kt_test_for_exception(unsigned ex, void (*trigger)(void *), void *data, const char *file, uint32_t line)
{
    check_vector("test_for_exception", (long)ex, RUNTIME_VECTORS, file, line);
    int vector = ktry(trigger, data);
    if (vector >= 0 && (unsigned)vector != ex)
        kt_panic(file, line, "test_for_exception: the trigger raised %s (vector %d), not %s", exception_mnemonic(vector),
                 vector, exception_mnemonic((int)ex));
    return vector >= 0;
}

handler kt_handle_exception(unsigned vector, handler fn, const char *file, uint32_t line)
{
    if (vector >= RUNTIME_VECTORS && vector < IDT_VECTORS)
        kt_panic(file, line, "handle_exception: vector %u is an interrupt, not an exception (0-31): use handle_irq", vector);
    check_vector("handle_exception", (long)vector, RUNTIME_VECTORS, file, line);
    setup_idt();
    return __atomic_exchange_n(&handlers[vector], fn, __ATOMIC_ACQ_REL);
}

/*
 * Points the gate of interrupt `vector` at its stub (IST 0: the handler
 * runs on the interrupted stack), remembering where the gate led before,
 * where the vector goes while it has no handler. The handler is set first,
 * so that another CPU that takes the vector meanwhile finds it.
 */
void kt_set_irq_handler(unsigned vector, handler fn)
{
    __atomic_store_n(&handlers[vector], fn, __ATOMIC_RELEASE);
    struct idt_gate *gate = runtime_gate((int)vector);
    uint64_t stub = (uint64_t)(uintptr_t)kt_irq_stubs_start + (vector - RUNTIME_VECTORS) * IRQ_STUB_SIZE;
    if ((gate->type & GATE_PRESENT) && gate_offset(gate) == stub && gate->ist == 0) return;
    kt_engine_handlers[vector] = (gate->type & GATE_PRESENT) ? gate_offset(gate) : 0;
    struct idt_gate ours = { .selector = read_cs(), .type = GATE_PRESENT | GATE_INTERRUPT };
    set_gate_offset(&ours, stub);
    *gate = ours;
}

void kt_handle_irq(unsigned vector, handler fn, const char *file, uint32_t line)
{
    if (vector < RUNTIME_VECTORS || vector >= IDT_VECTORS)
        kt_panic(file, line, "handle_irq: vector %u is not an interrupt vector (32-255)%s", vector,
                 vector < RUNTIME_VECTORS ? ": exceptions take handle_exception" : "");
    if (vector == KVMTEST_IPI_VECTOR && kt_cpu_count > 1)
        kt_panic(file, line,
                 "handle_irq: vector %#x is the runtime's own in a test with several CPUs (on_cpu's IPIs, "
                 "KVMTEST_IPI_VECTOR): use another vector",
                 vector);
    kt_set_irq_handler(vector, fn);
}

/* exceptions.S's kt_irq_common: 0 when the handler ran, else where the interrupt goes. */
uint64_t kt_irq_dispatch(struct ex_regs *regs)
{
    handler fn = __atomic_load_n(&handlers[regs->vector], __ATOMIC_ACQUIRE);
    if (fn) {
        fn(regs);
        return 0;
    }
    uint64_t target = kt_engine_handlers[regs->vector];
    if (!target)
        kt_panic(__FILE__, __LINE__, "unexpected interrupt vector %lu at %#lx: it has no handler, and its gate had none before handle_irq",
                 regs->vector, regs->rip);
    return target;
}

/* Whether vectors 32-255 of the IDT the runtime's was built from are the
 * engine's, as kt_idt starts: its place, its size and three of its gates. */
static bool source_is_engine_idt(void)
{
    if (source_idtr.base != ENGINE_IDT_BASE || source_idtr.limit != ENGINE_IDT_LIMIT) return false;
    const struct idt_gate *old = (const struct idt_gate *)(uintptr_t)source_idtr.base;
    static const struct idt_gate first = ENGINE_GATE_VALUE(32), second = ENGINE_GATE_VALUE(33), last = ENGINE_GATE_VALUE(255);
    return !memcmp(&old[32], &first, sizeof(first)) && !memcmp(&old[33], &second, sizeof(second)) &&
           !memcmp(&old[255], &last, sizeof(last));
}

/* The whole IDT, 256 vectors, loaded: what every CPU of a test with several loads. */
void kt_setup_full_idt(void)
{
    setup_idt();
    if (idt_count == RUNTIME_VECTORS && source_is_engine_idt()) {
        /* kt_idt's vectors 32-255 are those gates already (a test starts with its .data as loaded). */
        idt_count = IDT_VECTORS;
        load_runtime_idt();
        return;
    }
    runtime_gate(IDT_VECTORS - 1);
}

unsigned exception_vector(void) { return kt_exception_vector; }
unsigned exception_error_code(void) { return kt_exception_error_code; }
bool exception_rflags_rf(void) { return kt_exception_rf; }

const char *exception_mnemonic(int vector)
{
    static const char *const names[RUNTIME_VECTORS] = {
        [DE_VECTOR] = "#DE", [DB_VECTOR] = "#DB", [NMI_VECTOR] = "#NMI", [BP_VECTOR] = "#BP",
        [OF_VECTOR] = "#OF", [BR_VECTOR] = "#BR", [UD_VECTOR] = "#UD", [NM_VECTOR] = "#NM",
        [DF_VECTOR] = "#DF", [TS_VECTOR] = "#TS", [NP_VECTOR] = "#NP", [SS_VECTOR] = "#SS",
        [GP_VECTOR] = "#GP", [PF_VECTOR] = "#PF", [MF_VECTOR] = "#MF", [AC_VECTOR] = "#AC",
        [MC_VECTOR] = "#MC", [XM_VECTOR] = "#XM", [VE_VECTOR] = "#VE", [CP_VECTOR] = "#CP",
        [HV_VECTOR] = "#HV", [VC_VECTOR] = "#VC", [SX_VECTOR] = "#SX",
    };
    if (vector < 0 || vector >= RUNTIME_VECTORS || !names[vector]) return "#??";
    return names[vector];
}

static void record(const struct ex_regs *regs)
{
    kt_exception_vector = (unsigned)regs->vector;
    kt_exception_error_code = (unsigned)regs->error_code;
    kt_exception_rf = (regs->rflags & RFLAGS_RF) != 0;
}

static const struct ex_entry *extable_entry(uint64_t rip)
{
    for (const struct ex_entry *e = __start_kvmtest_extable; e < __stop_kvmtest_extable; e++)
        if (e->rip == rip) return e;
    return 0;
}

static bool has_error_code(uint64_t vector)
{
    return vector < 32 && ((1u << vector) & ((1u << 8) | (1u << 10) | (1u << 11) | (1u << 12) | (1u << 13) |
                                              (1u << 14) | (1u << 17) | (1u << 21) | (1u << 29) | (1u << 30)));
}

/* ktry returns the vector: the frame now iretqs to its landing pad, on its stack, at its CS, SS and RFLAGS. */
static void land_in_ktry(struct ex_regs *regs)
{
    struct kt_try_frame *frame = kt_try_current;
    kt_last_fault.vector = regs->vector;
    kt_last_fault.error_code = regs->error_code;
    kt_last_fault.rip = regs->rip;
    kt_last_fault.cr2 = read_cr2();
    kt_user_unwind(frame);
    regs->rip = (uint64_t)(uintptr_t)kt_try_landing;
    regs->cs = frame->cs;
    regs->ss = frame->ss;
    regs->rflags = frame->rflags;
    regs->rsp = (uint64_t)(uintptr_t)frame;
}

/* Where a handler's copy of the ex_regs goes: below the interrupted
 * handler's stack, or at the top of the CPU's handler stack. */
static bool on_handler_stack(const struct ex_regs *regs, unsigned cpu)
{
    uint64_t bottom = (uint64_t)(uintptr_t)kt_handler_stack[cpu], top = bottom + HANDLER_STACK_SIZE;
    return (regs->cs & 3) == 0 && regs->rsp > bottom && regs->rsp <= top;
}

static struct ex_regs *handler_frame(const struct ex_regs *regs, unsigned cpu)
{
    uint64_t bottom = (uint64_t)(uintptr_t)kt_handler_stack[cpu], top = bottom + HANDLER_STACK_SIZE;
    uint64_t base = on_handler_stack(regs, cpu) ? regs->rsp & ~15ull : top;
    if (base - bottom < 2048 + sizeof(struct ex_regs)) return 0;
    struct ex_regs *copy = (struct ex_regs *)(uintptr_t)(base - sizeof(struct ex_regs));
    *copy = *regs;
    return copy;
}

uint64_t kt_exception_dispatch(struct ex_regs *regs)
{
    uint64_t vector = regs->vector;
    /* run_in_user and ktry are CPU 0's: another CPU's exception is never theirs. */
    unsigned cpu = kt_this_cpu();
    if (cpu == 0 && kt_user_claims(regs)) return ACTION_RESUME;
    const struct ex_entry *entry = extable_entry(regs->rip);
    if (entry) {
        record(regs);
        regs->rip = entry->fixup;
        return ACTION_RESUME;
    }
    if (cpu == 0 && kt_user_claims_fault(regs)) return ACTION_RESUME;
    if (vector < RUNTIME_VECTORS && __atomic_load_n(&handlers[vector], __ATOMIC_ACQUIRE)) {
        /* Not inside a handler: any count left by a handler that never returned is stale. */
        if (!on_handler_stack(regs, cpu)) handler_depth[cpu] = 0;
        struct ex_regs *copy = handler_depth[cpu] < MAX_HANDLER_DEPTH ? handler_frame(regs, cpu) : 0;
        if (copy) return (uint64_t)(uintptr_t)copy;
    }
    if (cpu == 0 && kt_try_current) {
        land_in_ktry(regs);
        return ACTION_RESUME;
    }
    uint64_t target = kt_engine_handlers[vector];
    if (has_error_code(vector)) {
        regs->vector = target;
        return ACTION_FORWARD_ERROR_CODE;
    }
    regs->error_code = target;
    return ACTION_FORWARD;
}

/* On the handler stack, with regs the copy kt_exception_dispatch made: which
 * CPU's stack it is on says whose depth to count. */
void kt_exception_run_handler(struct ex_regs *regs)
{
    unsigned cpu = (unsigned)(((uintptr_t)regs - (uintptr_t)kt_handler_stack) / HANDLER_STACK_SIZE);
    handler fn = __atomic_load_n(&handlers[regs->vector], __ATOMIC_ACQUIRE);
    if (!fn) return; /* removed meanwhile, by another CPU: the exception comes again, unclaimed */
    handler_depth[cpu]++;
    fn(regs);
    handler_depth[cpu]--;
}
