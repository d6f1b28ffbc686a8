// The hardware a test describes in TypeScript: ports, MMIO, MSRs, CPUID,
// memory and registers, as values or as functions that run while the guest
// runs. These are the public option types; normalize.ts checks them and
// setup.ts turns them into a machine and its devices.
import type { RegisterDump } from '../result.js';
import type { IoPortSpec } from '../options.js';
import type { RamRange } from '../machine/placement.js';

/** A value given now, or a Promise of it (the vCPU waits at that exit until it settles). */
export type MaybePromise<T> = T | Promise<T>;

export type PortSize = 1 | 2 | 4;

/** The guest as a callback sees it: at the exit it was called for, and only until it answers. */
export interface GuestContext {
  /** The registers at this exit (a copy). */
  readonly regs: Readonly<RegisterDump>;
  /**
   * Changes registers once this exit is answered: KVM first completes the
   * access (an `in` still lands in rax), then these apply.
   */
  setRegs(values: RegisterValues): void;
  /** Guest memory, through the guest's current page tables (virtual addresses), or physical. */
  readonly memory: GuestMemoryAccess;
  /** The vCPU that made the access: its number, which is its APIC ID (0 unless the test has cpus). */
  readonly cpu: number;
  /**
   * Drives interrupt line `line` (an IOAPIC pin, 0-23; below 16 a PIC
   * input too), as a device's interrupt pin: without `level` a pulse (for
   * edge-triggered lines), with it the line's new level (a level-triggered
   * line stays high until lowered). Needs apic (or cpus). Unlike the
   * registers and memory, this works until the run ends, so that a device
   * may interrupt later (from a timer or a Promise).
   */
  irq(line: number, level?: boolean): void;
  /** A message-signalled interrupt: `data` written to `address` (0xfee00000 | APIC ID << 12). Needs apic; works until the run ends. */
  msi(address: bigint | number, data: number): void;
}

export interface GuestMemoryAccess {
  /** `length` bytes at a guest-virtual address; throws if any of them is not mapped. */
  read(address: bigint | number, length: number): Uint8Array;
  /** Writes bytes at a guest-virtual address (a device's DMA); throws if any page is not mapped. */
  write(address: bigint | number, data: Uint8Array | readonly number[]): void;
  /** `length` bytes at a guest-physical address; throws outside guest RAM. */
  readPhysical(address: bigint | number, length: number): Uint8Array;
  /** Writes bytes at a guest-physical address; throws outside guest RAM. */
  writePhysical(address: bigint | number, data: Uint8Array | readonly number[]): void;
}

/** A port served by functions. A direction without a handler fails the test as unexpected I/O. */
export interface PortHandlers {
  /** A guest `in`: the value (its low `size` bytes; wider values fail the test). */
  read?(port: number, size: PortSize, guest: GuestContext): MaybePromise<number | bigint>;
  /** A guest `out`. */
  write?(port: number, value: number, size: PortSize, guest: GuestContext): MaybePromise<void>;
}

/** A range of guest-physical addresses with no memory behind it: every access calls these. */
export interface MmioRegion {
  address: bigint | number;
  /** Bytes; the region must not share a 4 KiB page with RAM, the image or the engine. */
  size: bigint | number;
  /** For messages (default: "mmio[i]"). */
  name?: string;
  /** A guest read of `size` bytes (1, 2, 4 or 8) at `offset` into the region. */
  read?(offset: number, size: number, guest: GuestContext): MaybePromise<number | bigint>;
  write?(offset: number, value: bigint, size: number, guest: GuestContext): MaybePromise<void>;
}

/** An MSR served by functions; throw gp() (or return it) to raise #GP in the guest. */
export interface MsrHandlers {
  read?(guest: GuestContext): MaybePromise<bigint | number>;
  write?(value: bigint, guest: GuestContext): MaybePromise<void>;
}

/** An MSR that reads as a value (writes must write that value), or one served by functions. */
export type MsrSpec = bigint | number | MsrHandlers;

/** Registers of CPUID `leaf` (and `subleaf`) that replace what KVM reports. */
export interface CpuidOverride {
  leaf: number;
  /** For leaves with subleaves (ECX input), such as 4, 7, 0xb, 0xd. Default: all subleaves of the leaf. */
  subleaf?: number;
  eax?: number;
  ebx?: number;
  ecx?: number;
  edx?: number;
}

/** Bytes placed in guest memory before the test runs; the range becomes RAM if it is not already. */
export interface MemoryPreload {
  /** Guest-physical address (RAM is mapped at virtual = physical). */
  address: bigint | number;
  data: Uint8Array | readonly number[];
}

export type RegisterName = keyof RegisterDump;
export type RegisterValues = Partial<Record<RegisterName, bigint | number>>;

/** What a test may say about the machine it runs on, besides its code and expectations. */
export interface HardwareOptions {
  /** Ports that read as a fixed value (writes must write that value): { 0x1: 0xfe }. */
  ioports?: IoPortSpec;
  /** Ports served by functions: { 0x60: { read: () => 0xfa } }. */
  ports?: Readonly<Record<number, PortHandlers>>;
  mmio?: readonly MmioRegion[];
  /** { [index]: value or { read, write } }: served through KVM's user-space MSR exits. */
  msrs?: Readonly<Record<number, MsrSpec>>;
  cpuid?: readonly CpuidOverride[];
  /** Extra guest RAM, [from, to) physical ranges, identity-mapped. */
  ram?: readonly RamRange[];
  memory?: readonly MemoryPreload[];
  /** Register values at entry (after args). */
  regs?: RegisterValues;
  /**
   * Up to six integer arguments for the entry function (rdi, rsi, rdx, rcx,
   * r8, r9). In mirror mode a Buffer or typed array is passed as the
   * address of its bytes.
   */
  args?: ReadonlyArray<bigint | number | ArrayBufferView>;
  /** KVM's in-kernel interrupt controllers: a local APIC per vCPU, an IOAPIC, the PICs. */
  apic?: boolean;
  /** vCPUs, 1 to 16 (more than one implies apic); the test's function runs on vCPU 0. */
  cpus?: number;
}

/** Thrown (or returned) by an MSR handler: the guest's rdmsr or wrmsr raises #GP. */
export class GeneralProtection extends Error {
  constructor() {
    super('#GP');
    this.name = 'GeneralProtection';
  }
}

/** `throw gp()` in an MSR handler raises #GP in the guest. */
export function gp(): GeneralProtection {
  return new GeneralProtection();
}
