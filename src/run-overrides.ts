// What one run of a kept machine (openMachine) may change: where the guest
// starts and with what in its registers, and the ports served by functions.
// Checked as runGuest's options are, then laid over the machine's own for
// that run only. What shapes the machine itself is refused, with what to do.
import { resolveEntry } from './image/image.js';
import { GUEST_OPTIONS, type GuestPlan } from './guest-plan.js';
import { describe, type Hardware, normalizeArgs, normalizePorts, normalizeRegs } from './hardware/normalize.js';
import type { PortHandlers, RegisterValues } from './hardware/types.js';
import { OptionError, validateTimeout } from './options.js';

/** What one run may change on a machine opened with openMachine; everything else stays as opened. */
export interface RunOverrides {
  /** Where this run starts: a symbol (ELF only) or an address. Replaces the machine's entry. */
  entry?: string | bigint | number;
  /** Up to six integer arguments (rdi, rsi, rdx, rcx, r8, r9); in mirror mode Buffers too. Replace the machine's args. */
  args?: ReadonlyArray<bigint | number | ArrayBufferView>;
  /** Register values at entry (after args), each replacing the machine's value for that register. */
  regs?: RegisterValues;
  /** Ports served by functions, each replacing the machine's handlers for that port or adding a port. */
  ports?: Readonly<Record<number, PortHandlers>>;
  /** This run's time limit in milliseconds, in place of the machine's (a slow case among quick ones). */
  timeoutMs?: number;
}

const OVERRIDES: readonly string[] = ['entry', 'args', 'regs', 'ports', 'timeoutMs'] satisfies ReadonlyArray<keyof RunOverrides>;

/**
 * Options the machine is built from: memory, its layout, address ranges
 * without memory (MMIO), the CPUID table, the code. A run cannot change them
 * without a machine of another shape.
 */
const MACHINE_SHAPE: ReadonlySet<string> = new Set(['image', 'ram', 'memory', 'mmio', 'cpuid', 'stackSize', 'maxGuestMemory']);

/** What a run starts from: the entry, the hardware and the time limit for this run. */
export interface RunSetup {
  entry: bigint;
  hardware: Hardware;
  timeoutMs: number;
  /** Mirror mode: the function's name. */
  mirroredFunction?: string;
}

/** The plan's entry and hardware with `overrides` laid over them; throws an OptionError for a bad override. */
export function applyOverrides(plan: GuestPlan, overrides: RunOverrides | undefined): RunSetup {
  const mirrored = plan.mirroredFunction !== undefined;
  const setup: RunSetup = { entry: plan.entry, hardware: plan.hardware, timeoutMs: plan.timeoutMs, ...(mirrored && { mirroredFunction: plan.mirroredFunction }) };
  if (overrides === undefined) return setup;
  if (typeof overrides !== 'object' || overrides === null || Array.isArray(overrides)) {
    throw new OptionError(`run() takes an object of overrides such as { args: [1, 2] } (got ${describe(overrides)})`);
  }
  for (const key of Object.keys(overrides)) {
    if (OVERRIDES.includes(key)) continue;
    if (MACHINE_SHAPE.has(key)) {
      throw new OptionError(
        `run() cannot override "${key}": it shapes the machine itself, which openMachine builds once; ` +
          `open another machine (openMachine) with the ${key} this run needs`,
      );
    }
    if (GUEST_OPTIONS.includes(key)) {
      throw new OptionError(`run() cannot override "${key}": it is set once, for every run, by openMachine; a run may override ${OVERRIDES.join(', ')}`);
    }
    throw new OptionError(`unknown run() override "${key}"; known: ${OVERRIDES.join(', ')}`);
  }
  const base = plan.hardware;
  const hardware: Hardware = { ...base };
  if (overrides.ports !== undefined) hardware.ports = new Map([...base.ports, ...normalizePorts(overrides.ports, base.ioports)]);
  if (overrides.regs !== undefined) hardware.regs = { ...base.regs, ...normalizeRegs(overrides.regs) };
  if (overrides.args !== undefined) {
    hardware.args = normalizeArgs(overrides.args, mirrored);
    if (mirrored) hardware.argArrays = overrides.args.filter((a) => ArrayBuffer.isView(a));
  }
  const timeoutMs = overrides.timeoutMs === undefined ? plan.timeoutMs : validateTimeout(overrides.timeoutMs, 'timeoutMs');
  if (overrides.entry === undefined) return { ...setup, hardware, timeoutMs };
  if (!mirrored) return { entry: resolveEntry(plan.image, overrides.entry), hardware, timeoutMs };
  if (typeof overrides.entry !== 'string') throw new OptionError(`run(): in mirror mode, entry names a function of the library (got ${describe(overrides.entry)})`);
  const symbol = plan.image.symbols.byName(overrides.entry);
  if (symbol?.kind !== 'func') throw new OptionError(`run(): no function "${overrides.entry}" in ${plan.image.source}`);
  return { entry: symbol.value, hardware, timeoutMs, mirroredFunction: overrides.entry };
}
