// KVM's in-kernel interrupt controllers, for machines that ask for them
// (`apic`, `cpus`): a local APIC per vCPU, an IOAPIC with 24 pins and the
// two 8259 PICs. This module sets the state every test starts with, raises
// and lowers interrupt lines for devices, and answers the one question the
// run loop has about a halted machine: can anything still wake it?
import { IRQCHIP, MP_STATE } from '../kvm/constants.js';
import type { Kvm } from '../kvm/kvm.js';
import type { Vcpu } from '../kvm/vcpu.js';
import type { Vm } from '../kvm/vm.js';
import { type PhysSpan, PlacementError } from './placement.js';

export const LAPIC_BASE = 0xfee00000n;
export const IOAPIC_BASE = 0xfec00000n;
/** IOAPIC pins (GSIs 0-23; 0-15 also reach the PICs). */
export const IRQ_LINES = 24;

/** The controllers' pages: mapped into the guest, with no memory behind them (KVM answers). */
export const APIC_MMIO: readonly PhysSpan[] = [
  { name: 'the local APIC', start: LAPIC_BASE, end: LAPIC_BASE + 0x1000n },
  { name: 'the IOAPIC', start: IOAPIC_BASE, end: IOAPIC_BASE + 0x1000n },
];

export const MP_STATE_RUNNABLE = mpState(MP_STATE.RUNNABLE);

function mpState(value: number): Uint8Array {
  const bytes = new Uint8Array(4);
  new DataView(bytes.buffer).setUint32(0, value, true);
  return bytes;
}

/** Local APIC registers (offsets in its page, and in struct kvm_lapic_state). */
const APIC = {
  TPR: 0x80,
  SVR: 0xf0,
  IRR: 0x200,
  LVTT: 0x320,
  LVTTHMR: 0x330,
  LVTPC: 0x340,
  LVT0: 0x350,
  LVT1: 0x360,
  LVTERR: 0x370,
  TMICT: 0x380,
  TMCCT: 0x390,
} as const;
/** The IRR: 256 bits in 8 32-bit words, 16 bytes apart. */
const IRR_WORDS = 8;
const IRR_STRIDE = 16;
const LVT_MASKED = 1 << 16;
const LVT_TIMER_MODE = 3 << 17;
const LVT_TIMER_TSC_DEADLINE = 2 << 17;
/** APIC software-enabled, spurious interrupts on vector 0xff. */
const SVR_ENABLED = 0x1ff;
const IA32_TSC_DEADLINE = 0x6e0;
/** struct kvm_pic_state's imr, in struct kvm_irqchip (after chip_id and pad). */
const PIC_IMR_OFFSET = 8 + 2;
const RFLAGS_IF = 1n << 9n;

/** Why a machine with interrupt controllers (and `cpus` vCPUs) cannot be made on this KVM. */
export class InterruptSupportError extends PlacementError {
  readonly unsupported = true;
}

export function checkInterruptSupport(kvm: Kvm, cpus: number): void {
  if (!kvm.checkExtension('KVM_CAP_IRQCHIP')) {
    throw new InterruptSupportError('this KVM has no in-kernel interrupt controller (KVM_CAP_IRQCHIP), which apic and cpus need');
  }
  const max = kvm.checkExtension('KVM_CAP_MAX_VCPUS') || kvm.checkExtension('KVM_CAP_NR_VCPUS') || 4;
  if (cpus > max) throw new InterruptSupportError(`this KVM allows ${max} vCPUs per machine, fewer than the ${cpus} asked for`);
}

export class InterruptController {
  /** Lines a device (or the test device) left high: lowered before the next test. */
  private readonly raised = new Set<number>();

  private constructor(private readonly vm: Vm) {}

  /**
   * Puts the controllers in the state every test starts with: each local
   * APIC enabled (spurious vector 0xff) with every LVT entry masked (KVM
   * leaves LINT0 of vCPU 0 in ExtINT mode, which would let the PICs in),
   * TPR 0 and the timer stopped; the IOAPIC's entries masked (KVM's reset);
   * the PICs' inputs masked.
   */
  static create(vm: Vm, vcpus: readonly Vcpu[]): InterruptController {
    for (const vcpu of vcpus) {
      const lapic = vcpu.getBlob('lapic');
      const regs = new DataView(lapic.buffer);
      regs.setUint32(APIC.SVR, SVR_ENABLED, true);
      regs.setUint32(APIC.TPR, 0, true);
      for (const lvt of [APIC.LVTT, APIC.LVTTHMR, APIC.LVTPC, APIC.LVT0, APIC.LVT1, APIC.LVTERR]) regs.setUint32(lvt, LVT_MASKED, true);
      regs.setUint32(APIC.TMICT, 0, true);
      vcpu.setBlob('lapic', lapic);
    }
    for (const chip of [IRQCHIP.PIC_MASTER, IRQCHIP.PIC_SLAVE]) {
      const state = vm.getIrqchip(chip);
      state[PIC_IMR_OFFSET] = 0xff;
      vm.setIrqchip(state);
    }
    return new InterruptController(vm);
  }

  /** Sets line `line`'s level (IOAPIC pin; PIC input too below 16). */
  setLine(line: number, level: boolean): void {
    this.vm.irqLine(line, level);
    if (level) this.raised.add(line);
    else this.raised.delete(line);
  }

  /** An edge: the line goes high and low again. */
  pulseLine(line: number): void {
    this.vm.irqLine(line, true);
    this.vm.irqLine(line, false);
    this.raised.delete(line);
  }

  /** A message-signalled interrupt (KVM_SIGNAL_MSI); false when no CPU accepted it. */
  msi(address: bigint, data: number): boolean {
    return this.vm.signalMsi(address, data);
  }

  /** Lowers every line left high, before a restore: KVM remembers line levels outside the chips' saved state. */
  lowerLines(): void {
    for (const line of this.raised) this.vm.irqLine(line, false);
    this.raised.clear();
  }

  /** The three chips' state (PIC master, PIC slave, IOAPIC), for a snapshot. */
  captureChips(): Uint8Array[] {
    return [IRQCHIP.PIC_MASTER, IRQCHIP.PIC_SLAVE, IRQCHIP.IOAPIC].map((chip) => this.vm.getIrqchip(chip));
  }

  restoreChips(chips: readonly Uint8Array[]): void {
    for (const chip of chips) this.vm.setIrqchip(chip);
  }

  /**
   * Whether a halted vCPU could still be woken by something already under
   * way: interrupts enabled and its local APIC timer armed (a count
   * running, or a TSC deadline set). Interrupts from other vCPUs and from
   * devices are the caller's concern.
   */
  static timerArmed(vcpu: Vcpu): boolean {
    const regs = new DataView(vcpu.getBlob('lapic').buffer);
    const lvtt = regs.getUint32(APIC.LVTT, true);
    if (lvtt & LVT_MASKED) return false;
    if ((lvtt & LVT_TIMER_MODE) === LVT_TIMER_TSC_DEADLINE) {
      return (vcpu.getMsrs([IA32_TSC_DEADLINE])[0]?.[1] ?? 0n) !== 0n;
    }
    return regs.getUint32(APIC.TMCCT, true) !== 0;
  }

  /** Any bit set in the local APIC's IRR: an interrupt requested and not yet taken. */
  static interruptRequested(vcpu: Vcpu): boolean {
    const regs = new DataView(vcpu.getBlob('lapic').buffer);
    for (let word = 0; word < IRR_WORDS; word++) if (regs.getUint32(APIC.IRR + IRR_STRIDE * word, true) !== 0) return true;
    return false;
  }

  /** The vCPU's run state, KVM_MP_STATE_*. */
  static mpState(vcpu: Vcpu): number {
    return new DataView(vcpu.getBlob('mpState').buffer).getUint32(0, true);
  }

  /**
   * True when `vcpu` is halted and nothing of its own can wake it:
   * interrupts are disabled, or enabled with no timer armed; or it waits
   * for a start-up IPI. `rflags` is its RFLAGS now.
   */
  static stuckHalted(vcpu: Vcpu, rflags: bigint): boolean {
    const state = InterruptController.mpState(vcpu);
    // Waiting for INIT and a start-up IPI: only another vCPU can wake it.
    if (state === MP_STATE.UNINITIALIZED || state === MP_STATE.INIT_RECEIVED) return true;
    if (state !== MP_STATE.HALTED) return false;
    if ((rflags & RFLAGS_IF) === 0n) return true;
    // An interrupt already requested (a one-shot timer that fired while
    // interrupts were off) wakes it as soon as KVM looks.
    if (InterruptController.interruptRequested(vcpu)) return false;
    return !InterruptController.timerArmed(vcpu);
  }

  get lineCount(): number {
    return IRQ_LINES;
  }
}
