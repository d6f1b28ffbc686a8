// runGuest(): load an image into a fresh machine, attach the standard
// devices, run it to the end, and return what happened as a plain result.
import { IoBus, MmioBus } from './devices/bus.js';
import { ConsoleBuffer } from './devices/console.js';
import { ConfiguredPort } from './devices/configured-port.js';
import type { PortDevice, Stop } from './devices/device.js';
import { DoorbellPort } from './devices/doorbell.js';
import { ExitPort } from './devices/exit-port.js';
import { HypercallPort } from './devices/hypercall.js';
import { ENGINE_PORTS, type EnginePortRole } from './devices/ports.js';
import { SerialConsole } from './devices/serial.js';
import { type GuestImage, type ImageSpec, loadImage, resolveEntry } from './image/image.js';
import { Kvm } from './kvm/kvm.js';
import { Machine } from './machine/machine.js';
import type { RamRange } from './machine/placement.js';
import { runUntilStop } from './machine/run-loop.js';
import { RunTimer } from './machine/timeout.js';
import type { GuestResult } from './result.js';
import { type IoPortSpec, OptionError, normalizeIoPorts, validateMemoryLimit, validateTimeout } from './options.js';

/**
 * runGuest's time limit when the caller sets none: 1 s, below the per-test
 * timeouts of Vitest and Jest (5 s) and Mocha (2 s), so that a hung guest is
 * reported by kvmtest, with where it was, not cut off by the framework. The
 * runner's default (kvmtest run --timeout) is its own, DEFAULT_TEST_TIMEOUT_MS.
 */
export const DEFAULT_TIMEOUT_MS = 1_000;

export interface RunGuestOptions {
  /** The code to run: an ELF executable (path or bytes) or a flat binary and its load address. */
  image: ImageSpec;
  /** Where to start: a symbol (ELF only) or an address. Default: the ELF entry point or the flat load address. */
  entry?: string | bigint | number;
  /** Up to six integer arguments for the entry function (rdi, rsi, rdx, rcx, r8, r9). */
  args?: ReadonlyArray<bigint | number>;
  /** Ports that read as a fixed value: { 0x1: 0xfe } or [[0x1, 0xfe]]. */
  ioports?: IoPortSpec;
  /** Extra guest RAM, [from, to) physical ranges, identity-mapped. */
  ram?: readonly RamRange[];
  /** Stop the guest after this many milliseconds (default 1,000: DEFAULT_TIMEOUT_MS). */
  timeoutMs?: number;
  /** Stack size in bytes (default 64 KiB). */
  stackSize?: number;
  /** Most guest memory the machine may have, in bytes (default 16 GiB): larger RAM ranges or images are refused. */
  maxGuestMemory?: bigint | number;
}

const KNOWN_OPTIONS = new Set(['image', 'entry', 'args', 'ioports', 'ram', 'timeoutMs', 'stackSize', 'maxGuestMemory']);

let sharedKvm: Kvm | undefined;
let sharedTimer: RunTimer | undefined;

/** The process's /dev/kvm handle, opened (and checked) on first use. */
export function getKvm(): Kvm {
  return (sharedKvm ??= Kvm.open());
}

/** The process's guest timer (one per thread that runs guests). */
export function getRunTimer(): RunTimer {
  return (sharedTimer ??= new RunTimer());
}

/** Runs a guest on a fresh machine. Throws only for bad options or an unusable /dev/kvm. */
export async function runGuest(options: RunGuestOptions): Promise<GuestResult> {
  // Give the event loop a turn first: the native memory behind a finished
  // machine's views is released from it, so a loop of awaited runs stays flat.
  await new Promise<void>((resolve) => setImmediate(resolve));
  return runGuestSync(options);
}

export function runGuestSync(options: RunGuestOptions): GuestResult {
  const started = process.hrtime.bigint();
  for (const key of Object.keys(options)) {
    if (!KNOWN_OPTIONS.has(key)) throw new OptionError(`unknown runGuest option "${key}"; known: ${[...KNOWN_OPTIONS].join(', ')}`);
  }
  const timeoutMs = validateTimeout(options.timeoutMs ?? DEFAULT_TIMEOUT_MS, 'timeoutMs');
  const ioports = normalizeIoPorts(options.ioports ?? {});
  const args = (options.args ?? []).map((a) => BigInt(a));
  if (args.length > 6) throw new OptionError(`args: at most 6 register arguments, got ${args.length}`);
  const image = loadImage(options.image);
  const entry = resolveEntry(image, options.entry);

  const maxGuestMemory = options.maxGuestMemory === undefined ? undefined : validateMemoryLimit(options.maxGuestMemory, 'maxGuestMemory');
  // First the timer: in a worker thread it says why guests cannot run there, before any VM exists.
  const timer = getRunTimer();
  const machine = Machine.create(getKvm(), { image, ram: options.ram ?? [], stackSize: options.stackSize, maxGuestMemory });
  try {
    machine.setEntry(entry, args);
    const console = new ConsoleBuffer();
    const { io, mmio } = standardBuses(console, ioports);
    const stop = runUntilStop({ machine, io, mmio, console, timer, timeoutMs });
    timer.stop();
    return toResult(stop, machine, console, started);
  } finally {
    machine.close();
  }
}

/** The devices every machine has (the engine's ports), plus the test's configured ports. */
export function standardBuses(console: ConsoleBuffer, ioports: ReadonlyMap<number, number>): { io: IoBus; mmio: MmioBus } {
  const devices: Record<EnginePortRole, PortDevice> = {
    serial: new SerialConsole(console),
    exit: new ExitPort(),
    hypercall: new HypercallPort(),
    doorbell: new DoorbellPort(),
  };
  const io = new IoBus();
  for (const { role, first, count } of ENGINE_PORTS) io.register(devices[role], first, count);
  for (const [port, value] of ioports) io.register(new ConfiguredPort(port, value), port);
  return { io, mmio: new MmioBus() };
}

export function toResult(stop: Stop, machine: Machine, console: ConsoleBuffer, started: bigint): GuestResult {
  const vcpu = machine.vcpu;
  // After a timeout the sync area may be stale; the stop then carries the registers.
  const regs = stop.regs ?? vcpu.syncedRegs();
  const sregs = stop.outcome === 'timeout' ? vcpu.getSregs() : vcpu.syncedSregs();
  const result: GuestResult = {
    outcome: stop.outcome,
    output: console.text(),
    regs: { ...regs },
    sregs: { cr0: sregs.cr0, cr2: sregs.cr2, cr3: sregs.cr3, cr4: sregs.cr4, cr8: sregs.cr8, efer: sregs.efer },
    durationMs: Number(process.hrtime.bigint() - started) / 1e6,
  };
  if (stop.message !== undefined) result.message = stop.message;
  if (stop.fault) result.fault = stop.fault;
  if (stop.assertion) result.assertion = stop.assertion;
  if (stop.exitCode !== undefined) result.exitCode = stop.exitCode;
  if (stop.error) result.error = stop.error;
  return result;
}

export type { GuestImage };
