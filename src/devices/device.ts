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
  /** The vCPU the stop came from, when not vCPU 0 (machines with several vCPUs). */
  cpu?: number;
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
  /** A number that changes when the run ends (interrupts may be raised until then, see irq()). */
  runEpoch(): number;
  /** The vCPU that exited: its number, which is its APIC ID (0 in a one-vCPU machine). */
  readonly cpu: number;
  /**
   * Drives interrupt line `line` (an IOAPIC pin, 0-23; below 16 a PIC input
   * too): without `level`, a pulse (high, then low: an edge); with it, the
   * line's new level (level-triggered lines stay high until lowered).
   * Throws unless the machine has interrupt controllers (`apic`).
   */
  irq(line: number, level?: boolean): void;
  /** A message-signalled interrupt: `data` written to `address` (0xfeexxxxx). Throws without `apic`. */
  msi(address: bigint, data: number): void;
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
  /**
   * Writes guest-virtual memory through the guest's current page tables (a
   * device's DMA); returns how many bytes were written, up to the first
   * unmapped page. The pages are restored with the machine's snapshot.
   */
  writeVirtual(address: bigint, data: Uint8Array): number;
  /** A copy of guest-physical memory, or undefined unless one RAM slot holds it all. */
  readPhysical(address: bigint, length: number): Uint8Array | undefined;
  /** Writes guest-physical memory (restored with the snapshot); false unless one RAM slot holds it all. */
  writePhysical(address: bigint, data: Uint8Array): boolean;
  /**
   * Changes registers once this exit is answered (KVM first completes the
   * access: an `in` still lands in rax, then these apply).
   */
  setRegs(values: Partial<Regs>): void;
  /**
   * A number that changes at every exit and when the run ends: a device
   * that hands the guest to code that may keep it (a TypeScript callback)
   * refuses access once it has changed.
   */
  exitEpoch(): number;
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
  /**
   * Mirror mode, after a #PF on a not-present page at `address`: backs the
   * process's memory there ('mapped': the guest may retry the access),
   * undefined when the address is not the process's to show (the fault is
   * the test's), or why it could not.
   */
  mapOnDemand(address: bigint, errorCode: number): 'mapped' | undefined | { error: string };
  /** Mirror mode: the name of the process's function the run entered; undefined for an image. */
  mirroredFunction(): string | undefined;
}

/**
 * What a device may answer: at once, or later (a device model written in
 * TypeScript may await). A run that can wait (Session.runAsync) waits at
 * that exit; one that cannot fails with a clear message.
 */
export type Answer<T> = T | Promise<T>;

export interface PortDevice {
  readonly name: string;
  /** A guest `in`: returns the value (its low `size` bytes are used) or stops the guest. */
  read?(port: number, size: AccessSize, guest: GuestAccess): Answer<number | Stop>;
  /** A guest `out`: returns a Stop to end the run, nothing to continue. */
  write?(port: number, size: AccessSize, value: number, guest: GuestAccess): Answer<Stop | void>;
}

export interface MmioDevice {
  readonly name: string;
  read?(address: bigint, size: number, guest: GuestAccess): Answer<bigint | Stop>;
  write?(address: bigint, size: number, value: bigint, guest: GuestAccess): Answer<Stop | void>;
}

/** An MSR a test serves itself (KVM's MSR filter sends its accesses to user space). */
export interface MsrDevice {
  readonly name: string;
  /** A guest rdmsr: the value, `'gp'` to raise #GP, or a Stop. */
  read?(index: number, guest: GuestAccess): Answer<bigint | 'gp' | Stop>;
  /** A guest wrmsr: nothing to accept it, `'gp'` to raise #GP, or a Stop. */
  write?(index: number, value: bigint, guest: GuestAccess): Answer<'gp' | Stop | void>;
}

export function isPromise<T>(value: Answer<T>): value is Promise<T> {
  return typeof (value as { then?: unknown } | null)?.then === 'function';
}

export const hex = (value: number | bigint): string => `0x${value.toString(16)}`;
