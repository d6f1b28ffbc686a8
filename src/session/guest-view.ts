// What a device sees of the guest during one exit (GuestAccess): the
// registers, decoded at most once per exit, memory read through the guest's
// current page tables, the console, and addresses named by the image's
// symbols.
import type { ConsoleBuffer } from '../devices/console.js';
import type { GuestAccess } from '../devices/device.js';
import type { Regs, Sregs } from '../kvm/structs.js';
import type { Machine } from '../machine/machine.js';
import { readVirtual, translate } from '../machine/paging.js';

const utf8 = new TextDecoder();

export class GuestView implements GuestAccess {
  private regsCache: Regs | undefined;
  private sregsCache: Sregs | undefined;

  constructor(
    private readonly machine: Machine,
    private readonly console: ConsoleBuffer,
  ) {}

  /** Forgets what was decoded: a new exit has different registers. */
  newExit(): void {
    this.regsCache = undefined;
    this.sregsCache = undefined;
  }

  regs(): Regs {
    return (this.regsCache ??= this.machine.vcpu.syncedRegs());
  }

  rip(): bigint {
    return this.regsCache?.rip ?? this.machine.vcpu.syncedRip();
  }

  sregs(): Sregs {
    return (this.sregsCache ??= this.machine.vcpu.syncedSregs());
  }

  cr3(): bigint {
    return this.sregsCache?.cr3 ?? this.machine.vcpu.syncedCr3();
  }

  translate(address: bigint): bigint | undefined {
    return translate(this.machine.memory, this.cr3(), address);
  }

  readVirtual(address: bigint, length: number): Uint8Array {
    return readVirtual(this.machine.memory, this.cr3(), address, length);
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
    return this.machine.image.symbols.describe(address);
  }
}
