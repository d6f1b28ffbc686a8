// Numbers from <linux/kvm.h> (x86-64): ioctl requests, capabilities, exit
// reasons and flags. Each has its C name so that api.rst can be searched.

const KVMIO = 0xae;
const IOC_WRITE = 1;
const IOC_READ = 2;

function ioc(dir: number, nr: number, size: number): number {
  // Computed in floating point: dir << 30 would overflow a signed 32-bit int.
  return dir * 2 ** 30 + size * 2 ** 16 + KVMIO * 2 ** 8 + nr;
}
const io = (nr: number) => ioc(0, nr, 0);
const ior = (nr: number, size: number) => ioc(IOC_READ, nr, size);
const iow = (nr: number, size: number) => ioc(IOC_WRITE, nr, size);
const iowr = (nr: number, size: number) => ioc(IOC_READ | IOC_WRITE, nr, size);

/** Sizes of the structures the ioctls below carry. */
export const SIZEOF = {
  kvm_regs: 144,
  kvm_sregs: 312,
  kvm_fpu: 416,
  kvm_msrs: 8,
  kvm_msr_entry: 16,
  kvm_cpuid2: 8,
  kvm_cpuid_entry2: 40,
  kvm_userspace_memory_region: 32,
  kvm_dirty_log: 16,
  kvm_clear_dirty_log: 24,
  kvm_vcpu_events: 64,
  kvm_debugregs: 128,
  kvm_xsave: 4096,
  kvm_xcrs: 392,
  kvm_msr_list: 4,
  kvm_enable_cap: 104,
  kvm_msr_filter: 392,
  kvm_msr_filter_range: 24,
  kvm_irq_level: 8,
  kvm_irqchip: 520,
  kvm_lapic_state: 1024,
  kvm_mp_state: 4,
  kvm_msi: 32,
} as const;

export const IOCTL = {
  KVM_GET_API_VERSION: io(0x00),
  KVM_CREATE_VM: io(0x01),
  KVM_GET_MSR_INDEX_LIST: iowr(0x02, SIZEOF.kvm_msr_list),
  KVM_CHECK_EXTENSION: io(0x03),
  KVM_GET_VCPU_MMAP_SIZE: io(0x04),
  KVM_GET_SUPPORTED_CPUID: iowr(0x05, SIZEOF.kvm_cpuid2),
  KVM_CREATE_VCPU: io(0x41),
  KVM_GET_DIRTY_LOG: iow(0x42, SIZEOF.kvm_dirty_log),
  KVM_SET_USER_MEMORY_REGION: iow(0x46, SIZEOF.kvm_userspace_memory_region),
  KVM_RUN: io(0x80),
  KVM_GET_REGS: ior(0x81, SIZEOF.kvm_regs),
  KVM_SET_REGS: iow(0x82, SIZEOF.kvm_regs),
  KVM_GET_SREGS: ior(0x83, SIZEOF.kvm_sregs),
  KVM_SET_SREGS: iow(0x84, SIZEOF.kvm_sregs),
  KVM_GET_MSRS: iowr(0x88, SIZEOF.kvm_msrs),
  KVM_SET_MSRS: iow(0x89, SIZEOF.kvm_msrs),
  KVM_GET_FPU: ior(0x8c, SIZEOF.kvm_fpu),
  KVM_SET_FPU: iow(0x8d, SIZEOF.kvm_fpu),
  KVM_SET_CPUID2: iow(0x90, SIZEOF.kvm_cpuid2),
  KVM_GET_VCPU_EVENTS: ior(0x9f, SIZEOF.kvm_vcpu_events),
  KVM_SET_VCPU_EVENTS: iow(0xa0, SIZEOF.kvm_vcpu_events),
  KVM_GET_DEBUGREGS: ior(0xa1, SIZEOF.kvm_debugregs),
  KVM_SET_DEBUGREGS: iow(0xa2, SIZEOF.kvm_debugregs),
  KVM_ENABLE_CAP: iow(0xa3, SIZEOF.kvm_enable_cap),
  KVM_GET_XSAVE: ior(0xa4, SIZEOF.kvm_xsave),
  KVM_SET_XSAVE: iow(0xa5, SIZEOF.kvm_xsave),
  KVM_GET_XCRS: ior(0xa6, SIZEOF.kvm_xcrs),
  KVM_SET_XCRS: iow(0xa7, SIZEOF.kvm_xcrs),
  KVM_CLEAR_DIRTY_LOG: iowr(0xc0, SIZEOF.kvm_clear_dirty_log),
  KVM_X86_SET_MSR_FILTER: iow(0xc6, SIZEOF.kvm_msr_filter),
  KVM_CREATE_IRQCHIP: io(0x60),
  KVM_IRQ_LINE: iow(0x61, SIZEOF.kvm_irq_level),
  KVM_GET_IRQCHIP: iowr(0x62, SIZEOF.kvm_irqchip),
  // api.rst: KVM_SET_IRQCHIP is _IOR, as <linux/kvm.h> has always defined it.
  KVM_SET_IRQCHIP: ior(0x63, SIZEOF.kvm_irqchip),
  KVM_GET_LAPIC: ior(0x8e, SIZEOF.kvm_lapic_state),
  KVM_SET_LAPIC: iow(0x8f, SIZEOF.kvm_lapic_state),
  KVM_GET_MP_STATE: ior(0x98, SIZEOF.kvm_mp_state),
  KVM_SET_MP_STATE: iow(0x99, SIZEOF.kvm_mp_state),
  KVM_SIGNAL_MSI: iow(0xa5, SIZEOF.kvm_msi),
} as const;

export type IoctlName = keyof typeof IOCTL;

export const KVM_API_VERSION = 12;

export const CAP = {
  KVM_CAP_USER_MEMORY: 3,
  KVM_CAP_SET_TSS_ADDR: 4,
  KVM_CAP_EXT_CPUID: 7,
  KVM_CAP_NR_MEMSLOTS: 10,
  KVM_CAP_VCPU_EVENTS: 41,
  KVM_CAP_DEBUGREGS: 50,
  KVM_CAP_XSAVE: 55,
  KVM_CAP_XCRS: 56,
  KVM_CAP_IMMEDIATE_EXIT: 136,
  KVM_CAP_SYNC_REGS: 74,
  KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2: 168,
  KVM_CAP_X86_USER_SPACE_MSR: 188,
  KVM_CAP_X86_MSR_FILTER: 189,
  KVM_CAP_IRQCHIP: 0,
  KVM_CAP_NR_VCPUS: 9,
  KVM_CAP_MAX_VCPUS: 66,
  KVM_CAP_TSC_DEADLINE_TIMER: 72,
  KVM_CAP_SIGNAL_MSI: 77,
} as const;

/** struct kvm_irqchip's chip_id. */
export const IRQCHIP = { PIC_MASTER: 0, PIC_SLAVE: 1, IOAPIC: 2 } as const;

/** struct kvm_mp_state's values (x86). */
export const MP_STATE = { RUNNABLE: 0, UNINITIALIZED: 1, INIT_RECEIVED: 2, HALTED: 3, SIPI_RECEIVED: 4 } as const;

export type CapName = keyof typeof CAP;

export const EXIT = {
  KVM_EXIT_UNKNOWN: 0,
  KVM_EXIT_EXCEPTION: 1,
  KVM_EXIT_IO: 2,
  KVM_EXIT_HYPERCALL: 3,
  KVM_EXIT_DEBUG: 4,
  KVM_EXIT_HLT: 5,
  KVM_EXIT_MMIO: 6,
  KVM_EXIT_IRQ_WINDOW_OPEN: 7,
  KVM_EXIT_SHUTDOWN: 8,
  KVM_EXIT_FAIL_ENTRY: 9,
  KVM_EXIT_INTR: 10,
  KVM_EXIT_SET_TPR: 11,
  KVM_EXIT_TPR_ACCESS: 12,
  KVM_EXIT_NMI: 16,
  KVM_EXIT_INTERNAL_ERROR: 17,
  KVM_EXIT_SYSTEM_EVENT: 24,
  KVM_EXIT_X86_RDMSR: 29,
  KVM_EXIT_X86_WRMSR: 30,
} as const;

/** Exit reason number -> C name, for messages. */
export const EXIT_NAMES: ReadonlyMap<number, string> = new Map(
  Object.entries(EXIT).map(([name, value]) => [value, name]),
);

export const KVM_EXIT_IO_IN = 0;
export const KVM_EXIT_IO_OUT = 1;

export const INTERNAL_ERROR = {
  KVM_INTERNAL_ERROR_EMULATION: 1,
  KVM_INTERNAL_ERROR_SIMUL_EX: 2,
  KVM_INTERNAL_ERROR_DELIVERY_EV: 3,
  KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON: 4,
} as const;

/** kvm_run.s sync-register groups (KVM_CAP_SYNC_REGS). */
export const KVM_SYNC_X86_REGS = 1;
export const KVM_SYNC_X86_SREGS = 2;
export const KVM_SYNC_X86_EVENTS = 4;

/** KVM_CAP_X86_USER_SPACE_MSR: exit to user space on MSR accesses the filter denies. */
export const KVM_MSR_EXIT_REASON_FILTER = 4;
/** struct kvm_msr_filter_range flags, and the filter's default action. */
export const KVM_MSR_FILTER_READ = 1;
export const KVM_MSR_FILTER_WRITE = 2;
export const KVM_MSR_FILTER_DEFAULT_ALLOW = 0;
export const KVM_MSR_FILTER_MAX_RANGES = 16;
export const KVM_MSR_FILTER_MAX_BITMAP_SIZE = 0x600;

export const KVM_MEM_LOG_DIRTY_PAGES = 1;
export const KVM_MEM_READONLY = 2;

export const KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE = 1;
export const KVM_DIRTY_LOG_INITIALLY_SET = 2;

/** kvm_run.cr8: without an in-kernel local APIC, KVM_RUN loads CR8 from here (after the synced sregs). */
export const RUN_CR8 = 16;

/** kvm_run field offsets (x86-64). */
export const RUN = {
  immediate_exit: 1,
  exit_reason: 8,
  /** Start of the per-exit-reason union. */
  exit: 32,
  /** KVM_EXIT_X86_RDMSR / KVM_EXIT_X86_WRMSR: the union's msr member. */
  msr_error: 32,
  msr_index: 44,
  msr_data: 48,
  kvm_valid_regs: 288,
  kvm_dirty_regs: 296,
  /** struct kvm_sync_regs: regs (144), sregs (312), events (64). */
  sync_regs: 304,
  sync_sregs: 304 + 144,
  sync_events: 304 + 144 + 312,
} as const;
