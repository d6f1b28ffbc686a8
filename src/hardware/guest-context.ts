// The guest as a test's callback sees it (GuestContext): the registers at
// the exit it was called for, register writes applied once it answers, and
// memory it may read and write (DMA). It is only good until the exit is
// over: a callback that keeps it and uses it later (after its Promise
// settled, or after the run ended) gets an error, not the next test's
// machine. One is made for every exit a callback serves, so it is one
// small object whose methods live on its class, its memory made on first use.
import { type GuestAccess, hex } from '../devices/device.js';
import type { Regs } from '../kvm/structs.js';
import type { RegisterDump } from '../result.js';
import { bytesOf, integer, normalizeHardware } from './normalize.js';
import type { GuestContext, GuestMemoryAccess, RegisterValues } from './types.js';

export function guestContext(guest: GuestAccess): GuestContext {
  return new ExitGuest(guest);
}

class ExitGuest implements GuestContext {
  readonly #guest: GuestAccess;
  readonly #epoch: number;
  readonly #run: number;
  #regs: RegisterDump | undefined;
  #memory: GuestMemoryAccess | undefined;

  constructor(guest: GuestAccess) {
    this.#guest = guest;
    this.#epoch = guest.exitEpoch();
    this.#run = guest.runEpoch();
  }

  get cpu(): number {
    return this.#guest.cpu;
  }

  irq(line: number, level?: boolean): void {
    if (level !== undefined && typeof level !== 'boolean') throw new TypeError(`irq(${line}, ${String(level)}): the level is true or false (or left out, for a pulse)`);
    this.#running('irq').irq(line, level);
  }

  msi(address: bigint | number, data: number): void {
    if (!Number.isInteger(data) || data < 0 || data > 0xffffffff) throw new RangeError(`msi(..., ${String(data)}): the data is a 32-bit number`);
    this.#running('msi').msi(integer(address, 'msi: the address'), data);
  }

  /** The guest, while the run this context's exit belongs to lasts. */
  #running(what: string): GuestAccess {
    if (this.#guest.runEpoch() !== this.#run) {
      throw new Error(`${what}(): the run this device served is over; a device may interrupt the guest only while its test runs`);
    }
    return this.#guest;
  }

  get regs(): Readonly<RegisterDump> {
    const guest = this.#live();
    return (this.#regs ??= Object.freeze({ ...guest.regs() }));
  }

  setRegs(values: RegisterValues): void {
    this.#live().setRegs(normalizeHardware({ regs: values }).regs as Partial<Regs>);
  }

  get memory(): GuestMemoryAccess {
    return (this.#memory ??= new ExitMemory(() => this.#live()));
  }

  /** The guest, while this context's exit lasts. */
  #live(): GuestAccess {
    if (this.#guest.exitEpoch() !== this.#epoch) {
      throw new Error('this guest context belongs to an exit that is over: a callback may use it only until it answers');
    }
    return this.#guest;
  }
}

class ExitMemory implements GuestMemoryAccess {
  readonly #live: () => GuestAccess;

  constructor(live: () => GuestAccess) {
    this.#live = live;
  }

  read(address: bigint | number, length: number): Uint8Array {
    const guest = this.#live();
    const at = integer(address, 'memory.read: the address');
    const bytes = guest.readVirtual(at, checkedLength(length));
    if (bytes.length < length) throw new Error(`memory.read: guest-virtual ${hex(at + BigInt(bytes.length))} is not mapped (reading ${length} bytes at ${hex(at)})`);
    return bytes;
  }

  write(address: bigint | number, data: Uint8Array | readonly number[]): void {
    const guest = this.#live();
    const at = integer(address, 'memory.write: the address');
    const bytes = bytesOf(data, 'memory.write: the data');
    const written = guest.writeVirtual(at, bytes);
    if (written < bytes.length) throw new Error(`memory.write: guest-virtual ${hex(at + BigInt(written))} is not mapped to RAM (writing ${bytes.length} bytes at ${hex(at)})`);
  }

  readPhysical(address: bigint | number, length: number): Uint8Array {
    const guest = this.#live();
    const at = integer(address, 'memory.readPhysical: the address');
    const bytes = guest.readPhysical(at, checkedLength(length));
    if (!bytes) throw new Error(`memory.readPhysical: ${length} bytes at physical ${hex(at)} are not all in one stretch of guest RAM`);
    return bytes;
  }

  writePhysical(address: bigint | number, data: Uint8Array | readonly number[]): void {
    const guest = this.#live();
    const at = integer(address, 'memory.writePhysical: the address');
    const bytes = bytesOf(data, 'memory.writePhysical: the data');
    if (!guest.writePhysical(at, bytes)) throw new Error(`memory.writePhysical: ${bytes.length} bytes at physical ${hex(at)} are not all in one stretch of guest RAM`);
  }
}

function checkedLength(length: number): number {
  if (!Number.isSafeInteger(length) || length < 0 || length > 1 << 30) throw new Error(`memory: ${String(length)} is not a length in bytes (0 to 1 GiB)`);
  return length;
}
