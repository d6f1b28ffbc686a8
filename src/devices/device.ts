// What a device is: an object that serves guest port I/O or MMIO accesses
// during an exit. It may answer (a read's value), accept (a write), or stop
// the guest with an outcome. Devices see the guest only through GuestAccess.
import type { Regs, Sregs } from '../kvm/structs.js';
import type { AssertionInfo, ErrorInfo, FaultInfo, Outcome, RegisterDump } from '../result.js';

/** Ends the run. Devices return it; the run loop turns it into a result. */
export interface Stop {
  outcome: Outcome;
  message?: string;
  fault?: FaultInfo;
  assertion?: AssertionInfo;
  exitCode?: number;
  error?: ErrorInfo;
  /** Registers to report instead of the vCPU's (an exception frame's view). */
  regs?: RegisterDump;
  /**
   * True when KVM has nothing left to finish for the exit that stopped the
   * run (the engine's own doorbell `out`). Any other stop made during a port
   * or MMIO exit leaves the access for KVM to complete before the machine
   * is reused (Machine.completePendingExit).
   */
  settled?: boolean;
}

export function isStop(value: unknown): value is Stop {
  return typeof value === 'object' && value !== null && 'outcome' in value;
}

export type AccessSize = 1 | 2 | 4 | 8;

/** The guest as a device may see it during one exit. */
export interface GuestAccess {
  /** Registers at this exit. */
  regs(): Regs;
  /** rip at this exit (cheaper than regs().rip). */
  rip(): bigint;
  /** Special registers at this exit. */
  sregs(): Sregs;
  /** cr3 at this exit (cheaper than sregs().cr3). */
  cr3(): bigint;
  /** The guest-physical address of a guest-virtual one through the guest's current page tables. */
  translate(address: bigint): bigint | undefined;
  /** Reads guest-virtual memory through the guest's current page tables; may return fewer bytes. */
  readVirtual(address: bigint, length: number): Uint8Array;
  /** A NUL-terminated string at a guest-virtual address (at most `max` bytes), or undefined if unreadable. */
  readCString(address: bigint, max?: number): string | undefined;
  /** Appends to the guest's console output. */
  print(bytes: Uint8Array): void;
  /** How many more bytes the console keeps this run (what print() would take). */
  consoleRoom(): number;
  /** Records that `count` bytes of output were dropped for lack of room. */
  dropOutput(count: number): void;
  /** An address as "symbol+0x12 (0x...)" when the image has symbols. */
  describe(address: bigint): string;
}

export interface PortDevice {
  readonly name: string;
  /** A guest `in`: returns the value (its low `size` bytes are used) or stops the guest. */
  read?(port: number, size: AccessSize, guest: GuestAccess): number | Stop;
  /** A guest `out`: returns a Stop to end the run, nothing to continue. */
  write?(port: number, size: AccessSize, value: number, guest: GuestAccess): Stop | void;
}

export interface MmioDevice {
  readonly name: string;
  read?(address: bigint, size: number, guest: GuestAccess): bigint | Stop;
  write?(address: bigint, size: number, value: bigint, guest: GuestAccess): Stop | void;
}

export const hex = (value: number | bigint): string => `0x${value.toString(16)}`;
