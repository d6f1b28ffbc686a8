// What runGuest and openMachine share: their options, checked once into a
// plan (image loaded, entry resolved, hardware normalized) before any VM
// exists, machines built from a plan, and one run of a plan's guest on a
// machine, fresh or just restored.
import { type GuestImage, type ImageSpec, loadImage, resolveEntry } from './image/image.js';
import type { Kvm } from './kvm/kvm.js';
import { Machine } from './machine/machine.js';
import type { RunTimer } from './machine/timeout.js';
import type { GuestResult } from './result.js';
import type { Stop } from './devices/device.js';
import { type Hardware, HARDWARE_OPTIONS, normalizeHardware } from './hardware/normalize.js';
import { devicesFor, hardwareSkipReason, machineOptionsFor, prepareRun } from './hardware/setup.js';
import type { HardwareOptions } from './hardware/types.js';
import { OptionError, validateMemoryLimit, validateTimeout } from './options.js';
import { describe } from './hardware/normalize.js';
import { loadMirrorLibrary, MirrorError, mirrorEntry } from './mirror/library.js';
import { getKvm, getRunTimer } from './session/host.js';
import { Session } from './session/session.js';

/**
 * runGuest's time limit when the caller sets none: 1 s, below the per-test
 * timeouts of Vitest and Jest (5 s) and Mocha (2 s), so that a hung guest is
 * reported by kvmtest, with where it was, not cut off by the framework. The
 * runner's default (kvmtest run --timeout) is its own, DEFAULT_TEST_TIMEOUT_MS.
 */
export const DEFAULT_TIMEOUT_MS = 1_000;

/** Mirror mode: run a function of this process, in a shared object loaded here, with the process's memory shown to the guest. */
export interface MirrorOptions {
  /** The shared object (built with -shared -fPIC); loaded with dlopen, once per process. */
  library: string;
}

export interface RunGuestOptions extends HardwareOptions {
  /** The code to run: an ELF executable (path or bytes) or a flat binary and its load address. Not with mirror. */
  image?: ImageSpec;
  /** Run a function of a shared object loaded into this process instead of an image (mirror mode); entry names it. */
  mirror?: MirrorOptions;
  /** Where to start: a symbol (ELF only) or an address. Default: the ELF entry point or the flat load address. In mirror mode, the function's name. */
  entry?: string | bigint | number;
  /** Stop the guest after this many milliseconds (default 1,000: DEFAULT_TIMEOUT_MS). */
  timeoutMs?: number;
  /** Stack size in bytes (default 64 KiB). */
  stackSize?: number;
  /** Most guest memory the machine may have, in bytes (default 16 GiB): larger RAM ranges or images are refused. */
  maxGuestMemory?: bigint | number;
}

/** Every option name RunGuestOptions has. */
export const GUEST_OPTIONS: readonly string[] = ['image', 'entry', 'timeoutMs', 'stackSize', 'maxGuestMemory', 'mirror', ...HARDWARE_OPTIONS];

/** A guest's options, checked: everything a machine and a run are made from. */
export interface GuestPlan {
  image: GuestImage;
  entry: bigint;
  hardware: Hardware;
  timeoutMs: number;
  stackSize: number | undefined;
  maxGuestMemory: bigint | undefined;
  /** Mirror mode: the function's name (the plan's image is the library's symbols, with no segments). */
  mirroredFunction?: string;
}

/**
 * Checks `options` and loads the image; throws an OptionError (or the
 * image's own error) naming `caller` for anything wrong. Touches no KVM.
 */
export function planGuest(options: RunGuestOptions, caller: string): GuestPlan {
  if (typeof options !== 'object' || options === null) throw new OptionError(`${caller} needs an options object: { image, ... }`);
  for (const key of Object.keys(options)) {
    if (!GUEST_OPTIONS.includes(key)) throw new OptionError(`unknown ${caller} option "${key}"; known: ${GUEST_OPTIONS.join(', ')}`);
  }
  const timeoutMs = validateTimeout(options.timeoutMs ?? DEFAULT_TIMEOUT_MS, 'timeoutMs');
  if (options.mirror !== undefined) return { ...planMirror(options, caller), timeoutMs, ...machineLimits(options) };
  if (options.image === undefined) throw new OptionError(`${caller} needs the code to run: { image: { elf: path } }, or { mirror: { library: path }, entry: 'function' } for a function of this process`);
  const hardware = normalizeHardware(options);
  const image = loadImage(options.image);
  return {
    image,
    entry: resolveEntry(image, options.entry),
    hardware,
    timeoutMs,
    stackSize: options.stackSize,
    maxGuestMemory: options.maxGuestMemory === undefined ? undefined : validateMemoryLimit(options.maxGuestMemory, 'maxGuestMemory'),
  };
}

function machineLimits(options: RunGuestOptions): Pick<GuestPlan, 'stackSize' | 'maxGuestMemory'> {
  return {
    stackSize: options.stackSize,
    maxGuestMemory: options.maxGuestMemory === undefined ? undefined : validateMemoryLimit(options.maxGuestMemory, 'maxGuestMemory'),
  };
}

/** Mirror mode's plan: the library loaded into this process, the function found, Buffer args as addresses. */
function planMirror(options: RunGuestOptions, caller: string): Pick<GuestPlan, 'image' | 'entry' | 'hardware' | 'mirroredFunction'> {
  const { mirror } = options;
  if (typeof mirror !== 'object' || mirror === null || typeof mirror.library !== 'string') {
    throw new OptionError(`${caller}: mirror must be { library: 'path/to/lib.so' } (got ${describe(mirror)})`);
  }
  for (const key of Object.keys(mirror)) if (key !== 'library') throw new OptionError(`${caller}: unknown mirror option "${key}"; known: library`);
  if (options.image !== undefined) throw new OptionError(`${caller}: give image or mirror, not both: mirror runs a function of this process, not an image`);
  if (typeof options.entry !== 'string' || options.entry === '') {
    throw new OptionError(`${caller}: in mirror mode, entry names the function of ${mirror.library} to run (got ${describe(options.entry)})`);
  }
  const hardware = normalizeHardware(options, true);
  if (hardware.apic) throw new OptionError(`${caller}: mirror mode has no interrupt controllers or second vCPU yet (apic, cpus): run an image instead`);
  try {
    const library = loadMirrorLibrary(mirror.library);
    return { image: library.image, entry: mirrorEntry(library, options.entry), hardware, mirroredFunction: options.entry };
  } catch (err) {
    if (err instanceof MirrorError) throw new OptionError(err.message);
    throw err;
  }
}

/** What running guests takes from this process: its /dev/kvm handle and its run timer. */
export interface GuestHost {
  kvm: Kvm;
  timer: RunTimer;
}

export function guestHost(): GuestHost {
  // First the timer: in a worker thread it says why guests cannot run there, before /dev/kvm is opened.
  const timer = getRunTimer();
  return { kvm: getKvm(), timer };
}

/** A machine for a plan's guest; `logDirty` for one that a snapshot will restore. */
export function buildMachine(kvm: Kvm, plan: GuestPlan, logDirty = false): Machine {
  return Machine.create(kvm, {
    ...machineOptionsFor(kvm, plan.image, plan.hardware, plan.mirroredFunction !== undefined),
    stackSize: plan.stackSize,
    maxGuestMemory: plan.maxGuestMemory,
    logDirty,
  });
}

/** The result of every run of this hardware here, when it cannot run faithfully (CPUID overrides this KVM ignores). */
export function skipStop(kvm: Kvm, hardware: Hardware): Stop | undefined {
  const reason = hardwareSkipReason(kvm, hardware);
  return reason === undefined ? undefined : { outcome: 'skipped', message: reason };
}

/**
 * Sets up one run from `entry` on a machine that is as loaded (fresh, or
 * restored from its snapshot): the run's registers and preloaded bytes, and
 * devices of its own, so that no device state outlives the run.
 */
export function startRun(machine: Machine, hardware: Hardware, entry: bigint, timer: RunTimer, mirroredFunction?: string): Session {
  prepareRun(machine, hardware, entry, mirroredFunction);
  return new Session(machine, devicesFor(hardware), timer);
}

/** The run's plain result, its durationMs counted from `started` (a process.hrtime.bigint()). */
export function finishRun(session: Session, timer: RunTimer, stop: Stop, started: bigint): GuestResult {
  // No run is known to follow soon: stop the timer's ticks, so that the process gets no signals between runs.
  timer.stop();
  return session.result(stop, Number(process.hrtime.bigint() - started) / 1e6);
}
