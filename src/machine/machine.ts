// A machine: one VM with one vCPU, memory laid out by placement.ts, page
// tables, descriptor tables and stubs, and the vCPU set to enter an image's
// code in long mode. It owns every KVM resource it creates and releases them
// all in close().
import type { GuestImage } from '../image/image.js';
import { MAX_TEST_CPUS } from '../image/test-table.js';
import { KVM_MSR_EXIT_REASON_FILTER } from '../kvm/constants.js';
import type { Kvm } from '../kvm/kvm.js';
import type { CpuidEntry, Sregs } from '../kvm/structs.js';
import type { Vcpu } from '../kvm/vcpu.js';
import type { MsrFilterRange, Vm } from '../kvm/vm.js';
import { cpuHasXsave, encodeXcr0, longModeSregs, RFLAGS_RESERVED, xcr0For } from './cpu-state.js';
import { buildGdt, buildIdt, buildReturnStub, buildStubs, buildTss } from './descriptors.js';
import { DEFAULT_STACK_SIZE, LAYOUT, MAX_STACK_SIZE, PAGE_TABLE_POOL_PAGES } from './layout.js';
import { guestCpuid } from './guest-cpuid.js';
import { APIC_MMIO, checkInterruptSupport, InterruptController, MP_STATE_RUNNABLE } from './interrupt-controller.js';
import { MirrorSpace } from './mirror.js';
import { composeMsrFilter } from './msr-trap.js';
import { GuestMemory, type MemorySlot, ScratchMemory } from './memory.js';
import { PageTableBuilder } from './paging.js';
import { type PhysSpan, type Placement, PlacementError, placeMachine, type RamRange } from './placement.js';

export interface MachineOptions {
  image: GuestImage;
  ram?: readonly RamRange[];
  /** Ranges that must be RAM (placement.ts). */
  preload?: readonly PhysSpan[];
  /** Device ranges mapped with no memory behind them (placement.ts). */
  mmio?: readonly PhysSpan[];
  stackSize?: number;
  /** Log dirty pages in every slot (snapshot restore needs it). */
  logDirty?: boolean;
  /** Most bytes of guest memory allowed (default DEFAULT_MAX_GUEST_MEMORY, placement.ts). */
  maxGuestMemory?: bigint;
  /** The CPUID table to install (default: what the guest really sees, guest-cpuid.ts). */
  cpuid?: readonly CpuidEntry[];
  /** Mirror the process's address space into the guest (mirror.ts), with this FS base (the host thread's). */
  mirror?: { fsBase: bigint };
  /** Bytes of heap for the runtime's page allocator (placement.ts); the machine's placement says where. */
  heap?: bigint;
  /** KVM's in-kernel interrupt controllers: a local APIC per vCPU, an IOAPIC and the PICs (interrupt-controller.ts). */
  apic?: boolean;
  /** vCPUs (default 1); more than one needs `apic`. vCPUs other than 0 run on threads of their own. */
  cpus?: number;
}

/** IA32_APIC_BASE's bootstrap-processor flag. */
const APIC_BASE_BSP = 1n << 8n;

/** The symbol vCPUs other than 0 start at, in an image with the kvmtest runtime (sdk/runtime/smp.c). */
export const SECONDARY_ENTRY = 'kvmtest_secondary_entry';
/** Most vCPUs a machine may have (each is a host thread with a JavaScript context of its own): a test record's limit. */
export const MAX_CPUS = MAX_TEST_CPUS;

/** rsp at entry: the return address is on top, and rsp + 8 is 16-byte aligned (SysV). */
const ENTRY_RSP = LAYOUT.stackTop - 8n;

/** Largest memory slot kvmtest creates; bigger regions are split. */
const MAX_SLOT_BYTES = 1n << 30n;

export class Machine {
  readonly memory: GuestMemory;
  /** vCPU 0: the one the test's function runs on, on the owner's thread. */
  readonly vcpu: Vcpu;
  /** Every vCPU, vCPU 0 first (vcpus[i].id === i). */
  readonly vcpus: readonly Vcpu[];
  /** The special registers each vCPU starts with (vCPU 0's are initialSregs). */
  readonly startSregs: readonly Sregs[];
  /** The interrupt controllers, when the machine has them. */
  interrupts: InterruptController | undefined;
  /** The special registers a guest starts with (long mode, engine tables). */
  readonly initialSregs: Sregs;
  readonly placement: Placement;
  readonly image: GuestImage;
  /** Mirror mode's lazily mapped process memory, when the machine mirrors the process. */
  mirror: MirrorSpace | undefined;
  private closed = false;
  /**
   * Set when a run stopped in the middle of a port or MMIO exit: KVM would
   * finish that access on the next KVM_RUN, over the state staged for the
   * next test (a read's value into its registers, the next fragment of a
   * split access, the rest of the instruction). See completePendingExit().
   */
  exitPending = false;
  /**
   * The first MSR outside the trap's allowed set that the guest wrote (see
   * trapMsrWrites): the machine must not be reused after this run.
   */
  unrestoredMsrWrite: number | undefined;
  /** The MSR filter's parts: the write trap (while it is on) and the MSRs the test serves. */
  private msrTrap: readonly MsrFilterRange[] | undefined;
  private servedMsrs: readonly number[] = [];
  private userSpaceMsrs = false;

  private constructor(
    private readonly vm: Vm,
    memory: GuestMemory,
    vcpus: readonly Vcpu[],
    startSregs: readonly Sregs[],
    placement: Placement,
    image: GuestImage,
  ) {
    this.memory = memory;
    this.vcpus = vcpus;
    this.vcpu = vcpus[0]!;
    this.startSregs = startSregs;
    this.initialSregs = startSregs[0]!;
    this.placement = placement;
    this.image = image;
  }

  /** Builds a machine ready to enter the image. Throws on bad options; leaks nothing. */
  static create(kvm: Kvm, options: MachineOptions): Machine {
    const stackSize = options.stackSize ?? DEFAULT_STACK_SIZE;
    if (!Number.isInteger(stackSize) || stackSize < 4096 || stackSize % 4096 !== 0 || stackSize > MAX_STACK_SIZE) {
      throw new PlacementError(`stackSize must be a multiple of 4096 between 4096 and ${MAX_STACK_SIZE} bytes (got ${stackSize})`);
    }
    const cpus = options.cpus ?? 1;
    if (!Number.isInteger(cpus) || cpus < 1 || cpus > MAX_CPUS) throw new PlacementError(`cpus must be a whole number from 1 to ${MAX_CPUS} (got ${cpus})`);
    const apic = options.apic === true || cpus > 1;
    if (apic) checkInterruptSupport(kvm, cpus);
    const cpuid = options.cpuid ?? guestCpuid(kvm).table;
    // Everything that can be refused is checked before the VM exists: the
    // placement (sizes, overlaps, the address width, the memory limit) and
    // the page tables (they must fit their pool).
    const placement = placeMachine({
      image: options.image,
      ram: options.ram ?? [],
      preload: options.preload,
      mmio: apic ? [...(options.mmio ?? []), ...APIC_MMIO] : options.mmio,
      stackSize,
      secondaryCpus: cpus - 1,
      maxPhysBits: maxPhysBits(cpuid),
      maxGuestMemory: options.maxGuestMemory,
      mirror: options.mirror !== undefined,
      heapSize: options.heap,
    });
    const tables = pageTablesFor(placement);
    const vm = kvm.createVm();
    const memory = new GuestMemory(vm);
    try {
      for (const region of placement.regions) {
        for (let at = 0n; at < region.size; at += MAX_SLOT_BYTES) {
          const size = region.size - at < MAX_SLOT_BYTES ? region.size - at : MAX_SLOT_BYTES;
          memory.addSlot(region.phys + at, Number(size), { name: region.name, logDirty: options.logDirty ?? false });
        }
      }
      for (const { phys, data } of placement.contents) memory.writePhys(phys, data);
      for (const { phys, data } of engineBytes()) memory.writePhys(phys, data);
      memory.writePhys(LAYOUT.pageTables, tables.bytes);

      // The interrupt controllers come before the vCPUs, which then get a local APIC each.
      if (apic) vm.createIrqchip();
      const vcpus: Vcpu[] = [];
      const startSregs: Sregs[] = [];
      const xsave = cpuHasXsave(cpuid);
      for (let id = 0; id < cpus; id++) {
        const vcpu = vm.createVcpu(id);
        vcpu.setCpuid(cpuid);
        // Staged in kvm_run: KVM loads them with the first KVM_RUN, no ioctl needed.
        let sregs = longModeSregs(resetSregs(vcpu), tables.root, xsave);
        // The reset state is vCPU 0's: only it is the bootstrap processor (IA32_APIC_BASE bit 8).
        if (id > 0) sregs = { ...sregs, apicBase: sregs.apicBase & ~APIC_BASE_BSP };
        // Mirrored code reads its thread's TLS through %fs (the stack protector's canary at %fs:0x28).
        if (options.mirror) sregs = { ...sregs, fs: { ...sregs.fs, base: options.mirror.fsBase } };
        const own = placement.secondaryCpus?.[id - 1];
        if (own) {
          // Same tables, but a TSS (and so an exception stack) of its own.
          memory.writePhys(own.tss, buildTss(own.istTop));
          sregs = { ...sregs, tr: { ...sregs.tr, base: own.tss } };
        }
        vcpu.stageSregs(sregs);
        if (xsave) vcpu.setBlob('xcrs', encodeXcr0(xcr0For(cpuid)));
        vcpus.push(vcpu);
        startSregs.push(sregs);
      }
      const machine = new Machine(vm, memory, vcpus, startSregs, placement, options.image);
      if (apic) machine.interrupts = InterruptController.create(vm, vcpus);
      if (placement.mirror) machine.mirror = new MirrorSpace(memory, placement.mirror, options.image.mirroredFile);
      // The return address every entry function returns through, written
      // once: a snapshot keeps it, and restores it if a test overwrites it.
      memory.writeU64(ENTRY_RSP, LAYOUT.returnStub);
      machine.setEntry(options.image.entry, []);
      machine.startSecondaryCpus();
      return machine;
    } catch (err) {
      vm.close();
      memory.release();
      throw err;
    }
  }

  /**
   * Points the vCPU at `entry` with the SysV argument registers set, and the
   * stack holding the return address to the return stub. Stages the
   * registers in kvm_run (no system call); KVM loads them on the next KVM_RUN.
   */
  setEntry(entry: bigint, args: readonly bigint[]): void {
    this.vcpu.stageEntry(entry, ENTRY_RSP, RFLAGS_RESERVED, args);
  }

  /**
   * Sets vCPUs other than 0 to start where the runtime wants them
   * (SECONDARY_ENTRY, with their own stack and the vCPU number in rdi), and
   * starts their threads. In an image without the runtime they stay as KVM
   * made them, waiting for an INIT and a start-up IPI, as on real hardware.
   */
  private startSecondaryCpus(): void {
    if (this.vcpus.length === 1) return;
    this.secondaryEntry = this.image.symbols.byName(SECONDARY_ENTRY)?.value;
    if (this.secondaryEntry !== undefined) {
      for (const vcpu of this.vcpus.slice(1)) vcpu.setBlob('mpState', MP_STATE_RUNNABLE);
    }
    this.stageSecondaryCpus();
    for (const vcpu of this.vcpus.slice(1)) vcpu.startThread(this.vcpu.runAreaAddress);
  }

  /** Where vCPUs other than 0 start (SECONDARY_ENTRY), when the image has the runtime. */
  private secondaryEntry: bigint | undefined;

  /** True when vCPUs other than 0 start in the runtime (SECONDARY_ENTRY) rather than waiting for a start-up IPI. */
  get secondariesInRuntime(): boolean {
    return this.secondaryEntry !== undefined;
  }

  /**
   * Set once the other vCPUs have been brought up and wait for work in the
   * runtime (session/bring-up.ts): a snapshot then keeps them there, and
   * they are not sent to SECONDARY_ENTRY again.
   */
  secondariesLive = false;

  /** Stages each vCPU other than 0's entry registers (SECONDARY_ENTRY), for the next run. */
  stageSecondaryCpus(): void {
    const entry = this.secondaryEntry;
    if (entry === undefined || this.secondariesLive) return;
    for (let id = 1; id < this.vcpus.length; id++) {
      const own = this.placement.secondaryCpus![id - 1]!;
      this.vcpus[id]!.stageEntry(entry, own.stackTop - 8n, RFLAGS_RESERVED, [BigInt(id)]);
    }
  }

  /**
   * Lets KVM finish an interrupted port or MMIO access without running the
   * guest, so that it cannot later act on the state a snapshot restores.
   * Returns false when KVM would not settle: the machine must not be reused.
   */
  completePendingExit(): boolean {
    let settled = true;
    if (this.exitPending) {
      this.exitPending = false;
      settled = this.vcpu.settlePendingExit();
    }
    for (const vcpu of this.secondaryExitsPending) settled = vcpu.settlePendingExit() && settled;
    this.secondaryExitsPending.clear();
    return settled;
  }

  /** vCPUs other than 0 whose run stopped in the middle of an exit (see exitPending). */
  private readonly secondaryExitsPending = new Set<Vcpu>();

  /** A run stopped in the middle of `vcpu`'s port, MMIO or MSR exit (see exitPending). */
  markExitPending(vcpu: Vcpu): void {
    if (vcpu === this.vcpu) this.exitPending = true;
    else this.secondaryExitsPending.add(vcpu);
  }

  /**
   * Makes guest writes to MSRs outside the ranges' allowed bits exit to the
   * host (msr-trap.ts), where letTrappedMsrWriteThrough() handles them.
   */
  trapMsrWrites(ranges: readonly MsrFilterRange[]): void {
    this.msrTrap = ranges;
    this.applyMsrFilter();
  }

  /**
   * Sends the guest's rdmsr and wrmsr of these MSRs to user space, for the
   * test's own devices (and no others: the last call decides).
   */
  serveMsrs(indices: readonly number[]): void {
    const sorted = [...indices].sort((a, b) => a - b);
    if (sorted.length === this.servedMsrs.length && sorted.every((index, i) => index === this.servedMsrs[i])) return;
    this.servedMsrs = sorted;
    this.applyMsrFilter();
  }

  private applyMsrFilter(): void {
    if (!this.userSpaceMsrs) {
      // User-space exits must be on before the filter, or KVM injects #GP instead.
      this.vm.enableCap('KVM_CAP_X86_USER_SPACE_MSR', KVM_MSR_EXIT_REASON_FILTER);
      this.userSpaceMsrs = true;
    }
    this.vm.setMsrFilter(composeMsrFilter(this.msrTrap, this.servedMsrs));
  }

  /**
   * A trapped WRMSR: the guest must see exactly what an untrapped write
   * does (success or #GP, with KVM's own checks), so the write is not
   * emulated here. The trap is switched off (the MSRs the test serves stay
   * served), the exit completed without running the guest, and the
   * registers and pending events put back as they were at the WRMSR, which
   * the guest then executes again, for real. The machine remembers the
   * MSR, so that it is not reused. Returns false if KVM would not settle
   * the exit.
   */
  letTrappedMsrWriteThrough(vcpu: Vcpu = this.vcpu): boolean {
    this.unrestoredMsrWrite ??= vcpu.msrExit().index;
    const regs = vcpu.syncedRegs();
    const events = vcpu.syncedEvents();
    this.msrTrap = undefined;
    this.applyMsrFilter();
    vcpu.setMsrExitError(0);
    if (!vcpu.settlePendingExit()) return false;
    vcpu.stageRegs(regs);
    vcpu.stageRawEvents(events);
    return true;
  }

  get slots(): readonly MemorySlot[] {
    return this.memory.slots;
  }

  get kvmVm(): Vm {
    return this.vm;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    // Their threads end first (Vm.close closes each vCPU, which stops its thread).
    this.vm.close();
    this.memory.release();
  }
}

let engineBytesCache: Array<{ phys: bigint; data: Uint8Array }> | undefined;

/** The descriptor tables and stubs: the same bytes in every machine. */
function engineBytes(): Array<{ phys: bigint; data: Uint8Array }> {
  return (engineBytesCache ??= [
    { phys: LAYOUT.gdt, data: buildGdt() },
    { phys: LAYOUT.tss, data: buildTss() },
    { phys: LAYOUT.idt, data: buildIdt() },
    { phys: LAYOUT.stubs, data: buildStubs() },
    { phys: LAYOUT.returnStub, data: buildReturnStub() },
  ]);
}

let resetSregsCache: Sregs | undefined;

/** A new vCPU's special registers (the fields long mode setup leaves alone). */
function resetSregs(vcpu: Vcpu): Sregs {
  return (resetSregsCache ??= vcpu.getSregs());
}

/** Built page tables: the pool's used bytes and the PML4's address. */
interface PageTableImage {
  bytes: Uint8Array;
  root: bigint;
}

const pageTableCache = new Map<string, PageTableImage>();
const PAGE_TABLE_CACHE_LIMIT = 64;

/**
 * Page tables for a placement, built once per distinct set of mappings and
 * then copied: building them walks every page, copying is one memcpy.
 */
function pageTablesFor(placement: Placement): PageTableImage {
  const key = placement.mappings
    .map((m) => `${m.virt}:${m.phys}:${m.size}:${m.writable ? 'w' : ''}${m.executable ? 'x' : ''}`)
    .join(',');
  const cached = pageTableCache.get(key);
  if (cached) return cached;
  const scratch = new ScratchMemory(LAYOUT.pageTables, PAGE_TABLE_POOL_PAGES * 4096);
  const builder = new PageTableBuilder(scratch, LAYOUT.pageTables, PAGE_TABLE_POOL_PAGES);
  for (const m of placement.mappings) {
    try {
      builder.map(m.virt, m.phys, m.size, m);
    } catch (err) {
      throw new PlacementError(`cannot map ${m.name}: ${(err as Error).message}`);
    }
  }
  const image = { bytes: scratch.bytes.slice(0, builder.pagesUsed * 4096), root: builder.root };
  if (pageTableCache.size >= PAGE_TABLE_CACHE_LIMIT) pageTableCache.clear();
  pageTableCache.set(key, image);
  return image;
}

/** MAXPHYADDR from CPUID 0x80000008 (36 if the leaf is missing, as the SDM says). */
export function maxPhysBits(cpuid: readonly CpuidEntry[]): number {
  const leaf = cpuid.find((e) => e.function === 0x80000008);
  return leaf ? leaf.eax & 0xff : 36;
}
