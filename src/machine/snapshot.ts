// Puts a used machine back into the state it had right after load, so the
// next test sees a pristine machine without paying for a new VM: memory
// (only the pages the guest dirtied, from KVM's dirty log), special
// registers, FPU/XSAVE state, XCRs, MSRs, pending events and debug
// registers. General registers are set per test by the caller.
import type { Kvm } from '../kvm/kvm.js';
import { encodeMsrs, encodeSregs, type Regs } from '../kvm/structs.js';
import type { StateBlob } from '../kvm/vcpu.js';
import type { MsrFilterRange } from '../kvm/vm.js';
import { CR4_OSXSAVE } from './cpu-state.js';
import { msrTrapRanges } from './msr-trap.js';
import { LAYOUT } from './layout.js';
import type { Machine } from './machine.js';
import { PAGE_SIZE, type MemorySlot } from './memory.js';

/**
 * MSRs a snapshot leaves alone: the APIC base and EFER travel in the special
 * registers, and the TSC deadline belongs to a LAPIC the machine does not
 * have. Everything else is restored. The time-stamp counter goes back to its
 * value at load, as in a freshly loaded machine (each test sees it count up
 * from there), so a test that writes IA32_TSC leaves no trace; IA32_TSC_ADJUST
 * follows it (a guest's TSC write moves it; a host write sets only its value).
 * KVM's paravirtual MSRs (kvmclock, steal time...) are restored as well: left
 * enabled, they would have KVM keep writing into the next test's memory.
 */
function skipMsr(index: number): boolean {
  return (
    index === 0x6e0 || // IA32_TSC_DEADLINE
    index === 0x1b || // IA32_APIC_BASE
    index === 0xc0000080 // IA32_EFER
  );
}

/**
 * Guest-writable MSRs that KVM_GET_MSR_INDEX_LIST leaves out (VMMs save them
 * by number): the MTRRs and the machine-check banks (MCi_CTL, STATUS, ADDR,
 * MISC from 0x400, four per bank, as many banks as IA32_MCG_CAP says, and
 * MCi_CTL2 from 0x280). Probed like the listed ones.
 */
function unlistedMsrs(machineCheckBanks: number): number[] {
  return [
    0x2ff, // IA32_MTRR_DEF_TYPE
    ...Array.from({ length: 16 }, (_, i) => 0x200 + i), // IA32_MTRR_PHYSBASE0..PHYSMASK7
    0x250, 0x258, 0x259, // fixed-range MTRRs: 64K, 16K
    ...Array.from({ length: 8 }, (_, i) => 0x268 + i), // fixed-range MTRRs: 4K
    ...Array.from({ length: 4 * machineCheckBanks }, (_, i) => 0x400 + i),
    ...Array.from({ length: machineCheckBanks }, (_, i) => 0x280 + i),
  ];
}

const IA32_MCG_CAP = 0x179;
/** MSRs restored through the special registers rather than KVM_SET_MSRS. */
const RESTORED_WITH_SREGS: readonly number[] = [0x1b, 0xc0000080]; // IA32_APIC_BASE, IA32_EFER

interface MsrPlan {
  /** The MSRs a snapshot saves and restores with KVM_SET_MSRS. */
  restorable: number[];
  /** The MSR filter that traps writes to every other MSR (msr-trap.ts). */
  trap: MsrFilterRange[];
}

/**
 * Per /dev/kvm handle, and apart for machines with and without interrupt
 * controllers: which MSRs a snapshot restores, and the trap for the rest.
 * KVM accepts some MSRs only with its in-kernel local APIC (its PV EOI MSR),
 * so a plan probed on one kind of machine does not fit the other.
 */
const msrPlans = { plain: new WeakMap<Kvm, MsrPlan>(), withApic: new WeakMap<Kvm, MsrPlan>() };

/**
 * Why snapshots cannot be trusted on this KVM, or undefined when they can:
 * without an MSR filter, a write to an MSR that no restore covers would go
 * unnoticed.
 */
export function snapshotUnsupportedReason(kvm: Kvm): string | undefined {
  const missing = (['KVM_CAP_X86_MSR_FILTER', 'KVM_CAP_X86_USER_SPACE_MSR'] as const).filter((cap) => !kvm.checkExtension(cap));
  if (missing.length === 0) return undefined;
  return `this KVM lacks ${missing.join(' and ')} (Linux 5.10 and later have them), without which a test's write to an ` +
    'MSR that no snapshot restores would go unnoticed';
}

interface SlotSnapshot {
  slot: MemorySlot;
  /** Page index -> the page's bytes at capture time; missing pages were zero. */
  pages: Map<number, Uint8Array>;
}

export interface RestoreStats {
  /** Pages copied back (or zeroed). */
  pagesRestored: number;
  /**
   * Why the machine cannot be trusted with another test, if it cannot: the
   * caller builds a fresh one. Either the guest wrote to the engine's page
   * tables (restoring them from the host side could leave a shadow-paging
   * KVM, like PVM, with stale shadow entries), or KVM would not settle the
   * access the last run stopped in.
   */
  discard: string | undefined;
}

/** What a snapshot keeps of one vCPU. */
interface VcpuSnapshot {
  sregs: Uint8Array;
  /** The general registers, for a vCPU other than 0 kept where it waits (Machine.secondariesLive); vCPU 0's are set per run. */
  regs?: Regs;
  events: Uint8Array;
  blobs: ReadonlyArray<readonly [StateBlob, Uint8Array]>;
  msrs: Uint8Array;
  msrCount: number;
}

export class Snapshot {
  private constructor(
    private readonly slots: SlotSnapshot[],
    private readonly vcpus: readonly VcpuSnapshot[],
    /** The interrupt controllers' chips (PICs, IOAPIC), when the machine has them. */
    private readonly chips: readonly Uint8Array[] | undefined,
  ) {}

  /** Records the machine's state. Call before the machine first runs; its slots must log dirty pages. */
  static capture(machine: Machine): Snapshot {
    const slots = machine.slots.map((slot): SlotSnapshot => {
      if (!slot.dirtyBitmap) throw new Error(`internal: snapshot needs dirty logging on slot "${slot.options.name}"`);
      const pages = hostWrittenPages(slot);
      // A machine that has run already (its other vCPUs brought up): the pages the guest wrote too.
      if (machine.secondariesLive) addGuestWrittenPages(machine, slot, pages);
      return { slot, pages };
    });
    const kvm = machine.kvmVm.kvm;
    // Each vCPU ioctl costs several microseconds on a software-assisted KVM,
    // so restore only what can change: XCR0 only where the guest can run
    // xsetbv, and the FPU through XSAVE when it covers it. Pending events go
    // through the kvm_run sync area, at no cost. With interrupt controllers,
    // each local APIC (its timer included) and the run state (a halted vCPU
    // stays halted otherwise) too.
    const blobNames: StateBlob[] = [kvm.checkExtension('KVM_CAP_XSAVE') ? 'xsave' : 'fpu', 'debugregs'];
    if (machine.initialSregs.cr4 & CR4_OSXSAVE) blobNames.push('xcrs');
    if (machine.interrupts) blobNames.push('lapic', 'mpState');

    const first = machine.vcpu;
    const plans = machine.interrupts ? msrPlans.withApic : msrPlans.plain;
    let plan = plans.get(kvm);
    if (!plan) {
      // Keep only MSRs KVM both reads and accepts back: the list names some
      // that this vCPU's CPUID does not offer. Probed one by one, once.
      const banks = Number((first.getMsrs([IA32_MCG_CAP])[0]?.[1] ?? 0n) & 0xffn);
      const listed = kvm.msrIndexList();
      const restorable = [...new Set([...listed, ...unlistedMsrs(banks)])].filter((index) => {
        if (skipMsr(index)) return false;
        const read = first.getMsrs([index]);
        return read.length === 1 && first.setMsrs(encodeMsrs(read)) === 1;
      });
      plan = { restorable, trap: msrTrapRanges(new Set([...restorable, ...RESTORED_WITH_SREGS]), listed) };
      plans.set(kvm, plan);
    }
    const indices = plan.restorable;
    machine.trapMsrWrites(plan.trap);
    const vcpus = machine.vcpus.map((vcpu, i): VcpuSnapshot => {
      const sregs = new Uint8Array(312);
      // A machine brought up (Machine.secondariesLive) is kept as the bring-up left it: each vCPU's
      // tables (vCPU 0's runtime IDT too, so that each test's start finds it loaded) and, but vCPU 0's,
      // its registers where it waits.
      const live = machine.secondariesLive;
      encodeSregs(live ? vcpu.getSregs() : machine.startSregs[i]!, new DataView(sregs.buffer));
      const blobs = blobNames.map((name) => [name, vcpu.getBlob(name)] as const);
      const values = vcpu.getMsrs(indices);
      if (values.length !== indices.length) throw new Error('internal: KVM_GET_MSRS could not read every restorable MSR');
      return { sregs, events: vcpu.getBlob('events'), blobs, msrs: encodeMsrs(values), msrCount: values.length, ...(live && i > 0 && { regs: vcpu.getRegs() }) };
    });
    return new Snapshot(slots, vcpus, machine.interrupts?.captureChips());
  }

  /** Restores the captured state; returns what it did. */
  restore(machine: Machine): RestoreStats {
    if (!machine.completePendingExit()) {
      return { pagesRestored: 0, discard: 'KVM did not finish the port or MMIO access the last test stopped in' };
    }
    let pagesRestored = 0;
    let pageTablesTouched = false;
    const tableRanges = pageTableRanges(machine);
    for (const { slot, pages } of this.slots) {
      const bitmap = machine.memory.fetchDirtyPages(slot);
      // Page tables the guest wrote (KVM's log: the host's own writes, such
      // as mirror mode's entries, are not the concern, see RestoreStats).
      if (!pageTablesTouched) pageTablesTouched = tableRanges.some(([from, to]) => anyDirty(slot, bitmap, from, to));
      // The host's own writes since the last restore count as dirty too.
      for (const page of slot.hostDirty) bitmap[page >> 5]! |= 1 << (page & 31);
      slot.hostDirty.clear();
      // Pages that were zero at load go back to zero; runs of them are given
      // back to the host (madvise), so a test that filled a large RAM range
      // leaves no resident memory behind and costs no memset.
      let zeroRun = 0;
      let zeroRunStart = 0;
      const endZeroRun = () => {
        if (zeroRun >= DISCARD_RUN_PAGES) slot.discardPages(zeroRunStart, zeroRun);
        else if (zeroRun > 0) slot.bytes.fill(0, zeroRunStart * PAGE_SIZE, (zeroRunStart + zeroRun) * PAGE_SIZE);
        zeroRun = 0;
      };
      for (let word = 0; word < bitmap.length; word++) {
        let bits = bitmap[word]!;
        if (bits === 0 && zeroRun > 0) endZeroRun();
        while (bits !== 0) {
          const bit = 31 - Math.clz32(bits & -bits);
          bits &= bits - 1;
          const page = word * 32 + bit;
          pagesRestored++;
          const pristine = pages.get(page);
          if (pristine) {
            endZeroRun();
            slot.bytes.set(pristine, page * PAGE_SIZE);
          } else if (zeroRun > 0 && zeroRunStart + zeroRun === page) {
            zeroRun++;
          } else {
            endZeroRun();
            zeroRunStart = page;
            zeroRun = 1;
          }
        }
      }
      endZeroRun();
    }
    const interrupts = machine.interrupts;
    if (interrupts) {
      // Lines first: KVM keeps their levels apart from the chips' state.
      interrupts.lowerLines();
      interrupts.restoreChips(this.chips!);
    }
    const vcpus = machine.vcpus;
    for (let i = 0; i < vcpus.length; i++) {
      const vcpu = vcpus[i]!;
      const saved = this.vcpus[i]!;
      if (interrupts) {
        // At once, not staged for the next KVM_RUN: the APIC base in them
        // (x2APIC back to xAPIC) must come before the local APIC's registers.
        vcpu.setRawSregs(saved.sregs);
      } else {
        vcpu.stageRawSregs(saved.sregs);
      }
      vcpu.stageRawEvents(saved.events);
      if (saved.regs) vcpu.stageRegs(saved.regs);
      for (const [name, data] of saved.blobs) vcpu.setBlob(name, data);
      const written = vcpu.setMsrs(saved.msrs);
      if (written !== saved.msrCount) {
        throw new Error(`internal: KVM_SET_MSRS restored ${written} of ${saved.msrCount} MSRs`);
      }
    }
    machine.stageSecondaryCpus();
    return { pagesRestored, discard: pageTablesTouched ? "the test wrote to the engine's page tables" : undefined };
  }
}

/** Guest-physical [from, to) ranges that hold the engine's page tables (its pool; mirror mode's region). */
function pageTableRanges(machine: Machine): Array<readonly [bigint, bigint]> {
  const ranges: Array<readonly [bigint, bigint]> = [[LAYOUT.pageTables, LAYOUT.pageTablesEnd]];
  const mirror = machine.placement.mirror;
  if (mirror) ranges.push([mirror.tables, mirror.tables + mirror.tablesSize]);
  return ranges;
}

/** True when the dirty bitmap of `slot` has a page of [from, to) set. */
function anyDirty(slot: MemorySlot, bitmap: Uint32Array, from: bigint, to: bigint): boolean {
  const start = from > slot.guestPhys ? from : slot.guestPhys;
  const end = to < slot.end ? to : slot.end;
  if (start >= end) return false;
  const first = Number((start - slot.guestPhys) / BigInt(PAGE_SIZE));
  const last = Number((end - slot.guestPhys - 1n) / BigInt(PAGE_SIZE));
  for (let page = first; page <= last; page++) {
    if ((page & 31) === 0 && page + 31 <= last && bitmap[page >> 5] === 0) {
      page += 31;
      continue;
    }
    if (bitmap[page >> 5]! & (1 << (page & 31))) return true;
  }
  return false;
}

/** Adds copies of the pages the guest wrote since load (KVM's dirty log, which this clears) and those the host wrote since. */
function addGuestWrittenPages(machine: Machine, slot: MemorySlot, pages: Map<number, Uint8Array>): void {
  const bitmap = machine.memory.fetchDirtyPages(slot);
  for (const page of slot.hostDirty) bitmap[page >> 5]! |= 1 << (page & 31);
  slot.hostDirty.clear();
  for (let word = 0; word < bitmap.length; word++) {
    let bits = bitmap[word]!;
    while (bits !== 0) {
      const bit = 31 - Math.clz32(bits & -bits);
      bits &= bits - 1;
      const page = word * 32 + bit;
      pages.set(page, slot.bytes.slice(page * PAGE_SIZE, (page + 1) * PAGE_SIZE));
    }
  }
}

/** Runs of at least this many zero pages are discarded rather than zeroed. */
const DISCARD_RUN_PAGES = 16;

/**
 * The pages the host wrote at load, copied: every other page of a fresh
 * slot is zero, so the snapshot costs what was loaded, not the slot's size.
 */
function hostWrittenPages(slot: MemorySlot): Map<number, Uint8Array> {
  const pages = new Map<number, Uint8Array>();
  for (const page of slot.hostWritten) pages.set(page, slot.bytes.slice(page * PAGE_SIZE, (page + 1) * PAGE_SIZE));
  return pages;
}
