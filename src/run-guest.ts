// runGuest(): load an image into a fresh machine, attach the standard
// devices, run it to the end in a session, and return what happened as a
// plain result.
import { type GuestImage, type ImageSpec, loadImage, resolveEntry } from './image/image.js';
import { Machine } from './machine/machine.js';
import type { RamRange } from './machine/placement.js';
import type { GuestResult } from './result.js';
import { type IoPortSpec, OptionError, normalizeIoPorts, validateMemoryLimit, validateTimeout } from './options.js';
import { standardDevices } from './session/devices.js';
import { getKvm, getRunTimer } from './session/host.js';
import { Session } from './session/session.js';

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
    const session = new Session(machine, standardDevices(ioports), timer);
    const stop = session.run(timeoutMs);
    timer.stop();
    return session.result(stop, Number(process.hrtime.bigint() - started) / 1e6);
  } finally {
    machine.close();
  }
}

export type { GuestImage };
