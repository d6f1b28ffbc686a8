// What a device sees of the guest during one exit (GuestAccess): the
// registers, decoded at most once per exit, memory read and written through
// the guest's current page tables, the console, and addresses named by the
// image's symbols. Register writes wait until the exit is answered (the
// session applies them, see takeRegisterWrites).
import type { ConsoleBuffer } from '../devices/console.js';
import type { GuestAccess } from '../devices/device.js';
import type { Regs, Sregs } from '../kvm/structs.js';
import type { Machine } from '../machine/machine.js';
import type { Vcpu } from '../kvm/vcpu.js';
import type { InterruptController } from '../machine/interrupt-controller.js';
import { describeEngineAddress } from '../machine/descriptors.js';
import { readVirtual, translate } from '../machine/paging.js';

const utf8 = new TextDecoder();

export class GuestView implements GuestAccess {
  private regsCache: Regs | undefined;
  private sregsCache: Sregs | undefined;
  private registerWrites: Partial<Regs> | undefined;
  /** Bumped at every exit and at the end of a run: what a device holds of an earlier exit is stale. */
  private epoch = 0;
  /** Bumped at the end of a run. */
  private run = 0;

  constructor(
    private readonly machine: Machine,
    private readonly console: ConsoleBuffer,
    /** The vCPU whose exit this is (machines with several vCPUs have a view per vCPU). */
    private readonly vcpu: Vcpu = machine.vcpu,
  ) {}

  /** The vCPU's number (its APIC ID). */
  get cpu(): number {
    return this.vcpu.id;
  }

  irq(line: number, level?: boolean): void {
    const interrupts = this.interruptController('irq');
    if (!Number.isInteger(line) || line < 0 || line >= interrupts.lineCount) {
      throw new RangeError(`irq(${String(line)}): the line must be an IOAPIC pin, 0 to ${interrupts.lineCount - 1}`);
    }
    if (level === undefined) interrupts.pulseLine(line);
    else interrupts.setLine(line, level);
  }

  msi(address: bigint, data: number): void {
    const interrupts = this.interruptController('msi');
    if (typeof address !== 'bigint' || (address >> 20n) !== 0xfeen) {
      throw new RangeError(`msi(${String(address)}, ...): an MSI's address is 0xfeeXXXXX (a bigint), with the destination APIC ID in bits 12-19`);
    }
    interrupts.msi(address, data);
  }

  private interruptController(what: string): InterruptController {
    const interrupts = this.machine.interrupts;
    if (!interrupts) throw new Error(`${what}() needs interrupt controllers: give the test apic: true (or cpus)`);
    return interrupts;
  }

  /** Forgets what was decoded: a new exit has different registers. */
  newExit(): void {
    this.epoch++;
    this.regsCache = undefined;
    this.sregsCache = undefined;
    this.registerWrites = undefined;
  }

  regs(): Regs {
    return (this.regsCache ??= this.vcpu.syncedRegs());
  }

  rip(): bigint {
    return this.regsCache?.rip ?? this.vcpu.syncedRip();
  }

  sregs(): Sregs {
    return (this.sregsCache ??= this.vcpu.syncedSregs());
  }

  cr3(): bigint {
    return this.sregsCache?.cr3 ?? this.vcpu.syncedCr3();
  }

  translate(address: bigint): bigint | undefined {
    const phys = translate(this.machine.memory, this.cr3(), address);
    // Mirror mode: process memory the guest has not touched yet is mapped
    // for the host's reads too (a hypercall's string in a Buffer).
    if (phys !== undefined || this.mapOnDemand(address, 0) !== 'mapped') return phys;
    return translate(this.machine.memory, this.cr3(), address);
  }

  readVirtual(address: bigint, length: number): Uint8Array {
    let bytes = readVirtual(this.machine.memory, this.cr3(), address, length);
    while (bytes.length < length && this.mapOnDemand(address + BigInt(bytes.length), 0) === 'mapped') {
      bytes = readVirtual(this.machine.memory, this.cr3(), address, length);
    }
    return bytes;
  }

  writeVirtual(address: bigint, data: Uint8Array): number {
    let done = 0;
    while (done < data.length) {
      const at = address + BigInt(done);
      const phys = this.translate(at);
      if (phys === undefined) break;
      const inPage = Math.min(data.length - done, 4096 - Number(at & 0xfffn));
      if (!this.machine.memory.writeAtRuntime(phys, data.subarray(done, done + inPage))) break;
      done += inPage;
    }
    return done;
  }

  readPhysical(address: bigint, length: number): Uint8Array | undefined {
    return this.machine.memory.physView(address, length)?.slice();
  }

  writePhysical(address: bigint, data: Uint8Array): boolean {
    return this.machine.memory.writeAtRuntime(address, data);
  }

  setRegs(values: Partial<Regs>): void {
    this.registerWrites = { ...this.registerWrites, ...values };
    if (this.regsCache) Object.assign(this.regsCache, values);
  }

  /** The run is over: a device that kept the guest of its last exit can no longer use it. */
  endRun(): void {
    this.epoch++;
    this.run++;
    this.registerWrites = undefined;
  }

  /** Which run this is (see GuestAccess.runEpoch). */
  runEpoch(): number {
    return this.run;
  }

  /** Which exit this is (see GuestAccess.exitEpoch). */
  exitEpoch(): number {
    return this.epoch;
  }

  /** The register writes devices asked for during this exit, once (then forgotten). */
  takeRegisterWrites(): Partial<Regs> | undefined {
    const writes = this.registerWrites;
    this.registerWrites = undefined;
    return writes;
  }

  readCString(address: bigint, max = 4096): string | undefined {
    const bytes = this.readVirtual(address, max);
    const end = bytes.indexOf(0);
    if (end < 0 && bytes.length < max) return undefined;
    return utf8.decode(bytes.subarray(0, end < 0 ? bytes.length : end));
  }

  print(bytes: Uint8Array): void {
    this.console.push(bytes);
  }

  consoleRoom(): number {
    return this.console.room;
  }

  dropOutput(count: number): void {
    this.console.drop(count);
  }

  describe(address: bigint): string {
    return describeEngineAddress(address) ?? this.machine.image.symbols.describe(address);
  }

  mapOnDemand(address: bigint, errorCode: number): 'mapped' | undefined | { error: string } {
    return this.machine.mirror?.fault(address, errorCode, this.cr3());
  }

  mirroredFunction(): string | undefined {
    return this.machine.mirror?.entryName;
  }
}
