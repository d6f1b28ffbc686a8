/*
 * run_in_user: calls a function at CPL 3 and comes back (user-entry.S has
 * the way in and out). For the call it loads a copy of the GDT with
 * kvm-unit-tests' user segments, sets the U bit on the page-table entries
 * that map the test image (code, data, the user stack), and points TSS.rsp0
 * below its own frame for gates without IST; it puts the GDT, the segment
 * registers and rsp0 back afterwards. The dispatcher (desc.c) asks
 * kt_user_claims and kt_user_claims_fault about every exception.
 */
#include "runtime.h"

#define USER_STACK_SIZE (8 * 1024)
#define GDT_USER_FIRST 0x38
#define GDT_SIZE 0x50
#define PTE_PRESENT (1ull << 0)
#define PTE_USER (1ull << 2)
#define PTE_LARGE (1ull << 7)
#define PTE_ADDRESS 0x000ffffffffff000ull
#define ACCESSED (1ull << 40)
/* The runtime's hypercall, `out %eax, $KT_HYPERCALL_PORT`. */
#define OUT_EAX_IMM8 0xe7

/* user-entry.S's offsets. */
struct kt_user_frame {
    uint64_t rbx, rbp, r12, r13, r14, r15;
    uint64_t rflags, cs, ss, kernel_rsp, result;
    uint64_t fn, arg1, arg2, arg3, arg4, user_rsp;
    /* C only */
    uint64_t fault_vector;
    bool raised;
    handler ex_handler;
    struct dtr gdt;
    bool loaded_gdt;
    uint16_t ds, es, fs, gs;
    uint64_t fs_base, gs_base;
    uint64_t *rsp0;
    uint64_t old_rsp0;
};

struct kt_user_frame *kt_user_current;
extern char kt_user_exit[], kt_user_landing[];
uint64_t kt_user_enter(struct kt_user_frame *frame);
/* From kvmtest's linker scripts; weak, since a shared object (mirror mode)
 * or a -T script of the user's may not define them. */
extern char __kvmtest_image_start[] __attribute__((weak, visibility("hidden")));
extern char __kvmtest_image_end[] __attribute__((weak, visibility("hidden")));

static uint64_t user_gdt[GDT_SIZE / 8] __attribute__((aligned(16)));
static uint8_t user_stack[USER_STACK_SIZE] __attribute__((aligned(16)));
static uint64_t mapped_cr3;

static const uint64_t user_segments[3] = {
    0x00cffb000000ffffull, /* 0x38 USER_CS32: 32-bit code, DPL 3 */
    0x00cff3000000ffffull, /* 0x40 USER_DS: data, DPL 3 */
    0x00affb000000ffffull, /* 0x48 USER_CS64: 64-bit code, DPL 3 */
};

/* Loads a GDT with the user segments unless the loaded one has them. */
static void load_user_gdt(struct kt_user_frame *f, const char *file, uint32_t line)
{
    sgdt(&f->gdt);
    const uint64_t *gdt = (const uint64_t *)(uintptr_t)f->gdt.base;
    size_t size = (size_t)f->gdt.limit + 1;
    if (size >= GDT_SIZE) {
        for (int i = 0; i < 3; i++)
            if ((gdt[GDT_USER_FIRST / 8 + i] & ~ACCESSED) != user_segments[i])
                kt_panic(file, line, "run_in_user needs kvm-unit-tests' user segments at 0x38-0x48 (USER_CS32, USER_DS, USER_CS64); "
                       "the GDT loaded (base %#lx, limit %#x) has other descriptors there",
                       (unsigned long)f->gdt.base, f->gdt.limit);
        return;
    }
    if (size > GDT_USER_FIRST)
        kt_panic(file, line, "run_in_user needs kvm-unit-tests' user segments at 0x38-0x48; the GDT loaded (base %#lx, limit %#x) "
               "ends inside them",
               (unsigned long)f->gdt.base, f->gdt.limit);
    memset(user_gdt, 0, sizeof(user_gdt));
    memcpy(user_gdt, gdt, size);
    for (int i = 0; i < 3; i++) user_gdt[GDT_USER_FIRST / 8 + i] = user_segments[i];
    struct dtr ours = { .limit = sizeof(user_gdt) - 1, .base = (uint64_t)(uintptr_t)user_gdt };
    lgdt(&ours);
    f->loaded_gdt = true;
}

/* Sets U on every level that maps virt; returns the size the leaf maps (0: not mapped). */
static uint64_t allow_user(uint64_t virt)
{
    uint64_t *table = (uint64_t *)(uintptr_t)(read_cr3() & PTE_ADDRESS);
    for (int level = 4; level >= 1; level--) {
        unsigned shift = 12 + 9 * (unsigned)(level - 1);
        uint64_t *entry = &table[(virt >> shift) & 0x1ff];
        if (!(*entry & PTE_PRESENT)) return 0;
        *entry |= PTE_USER;
        if (level == 1 || (*entry & PTE_LARGE)) return 1ull << shift;
        table = (uint64_t *)(uintptr_t)(*entry & PTE_ADDRESS);
    }
    return 0;
}

/* The test image (code, data, user_stack) becomes reachable from ring 3, once per page-table root. */
static void map_image_for_user(void)
{
    uint64_t cr3 = read_cr3();
    if (cr3 == mapped_cr3) return;
    uint64_t at = (uint64_t)(uintptr_t)__kvmtest_image_start, end = (uint64_t)(uintptr_t)__kvmtest_image_end;
    while (at < end) {
        uint64_t size = allow_user(at);
        if (!size) size = 4096;
        at = (at & ~(size - 1)) + size;
    }
    write_cr3(cr3);
    mapped_cr3 = cr3;
}

/* rsp0 of the TSS that TR names, or NULL without one. */
static uint64_t *tss_rsp0(const struct dtr *gdtr)
{
    uint16_t tr = str() & ~7;
    if (!tr || tr + 16u > (unsigned)gdtr->limit + 1) return 0;
    const uint64_t *desc = (const uint64_t *)(uintptr_t)(gdtr->base + tr);
    uint64_t base = ((desc[0] >> 16) & 0xffffff) | (((desc[0] >> 56) & 0xff) << 24) | ((desc[1] & 0xffffffff) << 32);
    return (uint64_t *)(uintptr_t)(base + 4);
}

/* Puts back what run_in_user changed (also when a ktry outside it caught an exception from ring 3). */
static void restore(struct kt_user_frame *f)
{
    kt_user_current = 0;
    if (f->loaded_gdt) lgdt(&f->gdt);
    __asm__ volatile("mov %0, %%ds\n\tmov %1, %%es" : : "r"(f->ds), "r"(f->es) : "memory");
    if (read_fs() != f->fs) {
        __asm__ volatile("mov %0, %%fs" : : "r"(f->fs) : "memory");
        wrmsr(IA32_FS_BASE, f->fs_base);
    }
    if (read_gs() != f->gs) {
        __asm__ volatile("mov %0, %%gs" : : "r"(f->gs) : "memory");
        wrmsr(IA32_GS_BASE, f->gs_base);
    }
    if (f->rsp0) *f->rsp0 = f->old_rsp0;
}

uint64_t kt_run_in_user(usermode_func func, unsigned int fault_vector, uint64_t arg1, uint64_t arg2, uint64_t arg3,
                        uint64_t arg4, bool *raised_vector, handler ex_handler, const char *file, uint32_t line)
{
    if (!raised_vector) kt_panic(file, line, "run_in_user: raised_vector is NULL; pass a bool * that tells whether fault_vector was raised");
    if (fault_vector > 31) kt_panic(file, line, "run_in_user: fault_vector %u is out of range (0-31)", fault_vector);
    if (!func) kt_panic(file, line, "run_in_user: func is NULL");
    if (kt_this_cpu() != 0)
        kt_panic(file, line, "run_in_user: called on CPU %u; it works on CPU 0 only (its GDT, TSS and stacks are CPU 0's)",
                 kt_this_cpu());
    if (read_cr4() & (CR4_SMEP | CR4_SMAP))
        kt_panic(file, line, "run_in_user: CR4.SMEP or CR4.SMAP is set (cr4 %#lx); run_in_user gives the test image the U bit, "
                             "and ring 0 could then neither run it (SMEP) nor touch its data (SMAP): clear them first",
                 (unsigned long)read_cr4());
    if (kt_user_current) kt_panic(file, line, "run_in_user: called while a run_in_user is running (it does not nest)");
    if (!__kvmtest_image_start || !__kvmtest_image_end)
        kt_panic(file, line, "run_in_user needs the bounds of the test image (__kvmtest_image_start and __kvmtest_image_end, "
                             "from kvmtest's linker scripts) to give its pages the U bit; this binary was linked without them");
    *raised_vector = false;
    setup_idt();

    struct kt_user_frame f = {
        .fn = (uint64_t)(uintptr_t)func, .arg1 = arg1, .arg2 = arg2, .arg3 = arg3, .arg4 = arg4,
        .user_rsp = (uint64_t)(uintptr_t)(user_stack + sizeof(user_stack)),
        .fault_vector = fault_vector, .ex_handler = ex_handler,
        .ds = read_ds(), .es = read_es(), .fs = read_fs(), .gs = read_gs(),
    };
    f.fs_base = rdmsr(IA32_FS_BASE);
    f.gs_base = rdmsr(IA32_GS_BASE);
    load_user_gdt(&f, file, line);
    map_image_for_user();
    f.rsp0 = tss_rsp0(&f.gdt);
    if (f.rsp0) {
        uint64_t here;
        __asm__ volatile("mov %%rsp, %0" : "=r"(here));
        f.old_rsp0 = *f.rsp0;
        *f.rsp0 = (here - 512) & ~15ull; /* below kt_user_enter's frame */
    }
    uint64_t result = kt_user_enter(&f);
    restore(&f);
    *raised_vector = f.raised;
    return result;
}

static void land(struct kt_user_frame *f, struct ex_regs *regs)
{
    regs->rip = (uint64_t)(uintptr_t)kt_user_landing;
    regs->cs = f->cs;
    regs->ss = f->ss;
    regs->rsp = f->kernel_rsp;
    regs->rflags = f->rflags;
    regs->rdi = (uint64_t)(uintptr_t)f;
    kt_user_current = 0;
}

/*
 * The exceptions that only ring 3 raises on the runtime's behalf: the #UD
 * at kt_user_exit (fn returned), and the #GP of a hypercall (sprint, kassert,
 * kpanic, kskip) made in ring 3, which the runtime makes for it from ring 0.
 */
bool kt_user_claims(struct ex_regs *regs)
{
    if ((regs->cs & 3) == 0) return false;
    struct kt_user_frame *f = kt_user_current;
    if (f && regs->vector == UD_VECTOR && regs->rip == (uint64_t)(uintptr_t)kt_user_exit) {
        f->result = regs->rax;
        f->raised = false;
        land(f, regs);
        return true;
    }
    const uint8_t *code = (const uint8_t *)(uintptr_t)regs->rip;
    if (regs->vector == GP_VECTOR && regs->error_code == 0 && code[0] == OUT_EAX_IMM8 && code[1] == KT_HYPERCALL_PORT) {
        kt_hypercall((uint32_t)regs->rax, regs->rdi, regs->rsi);
        regs->rip += 2;
        return true;
    }
    return false;
}

/* fault_vector, in ring 3 or in ring 0 while fn runs (a syscall handler's, say), as kvm-unit-tests. */
bool kt_user_claims_fault(struct ex_regs *regs)
{
    struct kt_user_frame *f = kt_user_current;
    if (!f || regs->vector != f->fault_vector) return false;
    kt_exception_vector = (unsigned)regs->vector;
    kt_exception_error_code = (unsigned)regs->error_code;
    kt_exception_rf = (regs->rflags & RFLAGS_RF) != 0;
    if (f->ex_handler) f->ex_handler(regs);
    f->result = 0;
    f->raised = true;
    land(f, regs);
    return true;
}

/* A ktry whose frame is at `frame` catches an exception: a run_in_user inside it is over. */
void kt_user_unwind(void *frame)
{
    struct kt_user_frame *f = kt_user_current;
    if (f && (uintptr_t)f < (uintptr_t)frame) restore(f);
}
