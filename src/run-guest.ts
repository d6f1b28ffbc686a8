// runGuest(): load an image into a fresh machine with the hardware the
// caller describes (hardware/), run it to the end in a session, and return
// what happened as a plain result.
import { type GuestImage, type ImageSpec, loadImage, resolveEntry } from './image/image.js';
import { Machine } from './machine/machine.js';
import type { GuestResult } from './result.js';
import type { Stop } from './devices/device.js';
import { HARDWARE_OPTIONS, normalizeHardware } from './hardware/normalize.js';
import { devicesFor, hardwareSkipReason, machineOptionsFor, prepareRun } from './hardware/setup.js';
import type { HardwareOptions } from './hardware/types.js';
import { OptionError, validateMemoryLimit, validateTimeout } from './options.js';
import { getKvm, getRunTimer } from './session/host.js';
import { Session } from './session/session.js';

/**
 * runGuest's time limit when the caller sets none: 1 s, below the per-test
 * timeouts of Vitest and Jest (5 s) and Mocha (2 s), so that a hung guest is
 * reported by kvmtest, with where it was, not cut off by the framework. The
 * runner's default (kvmtest run --timeout) is its own, DEFAULT_TEST_TIMEOUT_MS.
 */
export const DEFAULT_TIMEOUT_MS = 1_000;

export interface RunGuestOptions extends HardwareOptions {
  /** The code to run: an ELF executable (path or bytes) or a flat binary and its load address. */
  image: ImageSpec;
  /** Where to start: a symbol (ELF only) or an address. Default: the ELF entry point or the flat load address. */
  entry?: string | bigint | number;
  /** Stop the guest after this many milliseconds (default 1,000: DEFAULT_TIMEOUT_MS). */
  timeoutMs?: number;
  /** Stack size in bytes (default 64 KiB). */
  stackSize?: number;
  /** Most guest memory the machine may have, in bytes (default 16 GiB): larger RAM ranges or images are refused. */
  maxGuestMemory?: bigint | number;
}

const KNOWN_OPTIONS = new Set(['image', 'entry', 'timeoutMs', 'stackSize', 'maxGuestMemory', ...HARDWARE_OPTIONS]);

/**
 * Runs a guest on a fresh machine, waiting for devices that answer with a
 * Promise. Throws only for bad options or an unusable /dev/kvm.
 */
export async function runGuest(options: RunGuestOptions): Promise<GuestResult> {
  // Give the event loop a turn first: the native memory behind a finished
  // machine's views is released from it, so a loop of awaited runs stays flat.
  await new Promise<void>((resolve) => setImmediate(resolve));
  const guest = startGuest(options);
  try {
    return guest.finish(guest.skip ?? (await guest.session.runAsync(guest.timeoutMs)));
  } finally {
    guest.session.machine.close();
  }
}

/** runGuest without waiting: devices must answer at once (a Promise ends the run with an error). */
export function runGuestSync(options: RunGuestOptions): GuestResult {
  const guest = startGuest(options);
  try {
    return guest.finish(guest.skip ?? guest.session.run(guest.timeoutMs));
  } finally {
    guest.session.machine.close();
  }
}

interface StartedGuest {
  session: Session;
  timeoutMs: number;
  /** Set when the run cannot be faithful here (CPUID overrides this KVM ignores): the result without running. */
  skip?: Stop;
  finish(stop: Stop): GuestResult;
}

function startGuest(options: RunGuestOptions): StartedGuest {
  const started = process.hrtime.bigint();
  if (typeof options !== 'object' || options === null) throw new OptionError('runGuest needs an options object: { image, ... }');
  for (const key of Object.keys(options)) {
    if (!KNOWN_OPTIONS.has(key)) throw new OptionError(`unknown runGuest option "${key}"; known: ${[...KNOWN_OPTIONS].join(', ')}`);
  }
  const timeoutMs = validateTimeout(options.timeoutMs ?? DEFAULT_TIMEOUT_MS, 'timeoutMs');
  const hardware = normalizeHardware(options);
  const image = loadImage(options.image);
  const entry = resolveEntry(image, options.entry);
  const maxGuestMemory = options.maxGuestMemory === undefined ? undefined : validateMemoryLimit(options.maxGuestMemory, 'maxGuestMemory');
  // First the timer: in a worker thread it says why guests cannot run there, before any VM exists.
  const timer = getRunTimer();
  const kvm = getKvm();
  const machine = Machine.create(kvm, { ...machineOptionsFor(kvm, image, hardware), stackSize: options.stackSize, maxGuestMemory });
  try {
    prepareRun(machine, hardware, entry);
    const session = new Session(machine, devicesFor(hardware), timer);
    const reason = hardwareSkipReason(kvm, hardware);
    return {
      session,
      timeoutMs,
      ...(reason !== undefined && { skip: { outcome: 'skipped', message: reason } }),
      finish(stop) {
        timer.stop();
        return session.result(stop, Number(process.hrtime.bigint() - started) / 1e6);
      },
    };
  } catch (err) {
    machine.close();
    throw err;
  }
}

export type { GuestImage };
