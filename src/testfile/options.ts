// A TypeScript test's options: its hardware (hardware/types.ts), what it
// expects (shouldPanic, shouldHalt, shouldFault), its time limit and stack,
// and whether it runs (skip, only). Checked when the test is declared; a
// mistake fails that test with a message naming the option, and the file's
// other tests still run.
import { HARDWARE_OPTIONS, type Hardware, normalizeHardware, describe as describeValue } from '../hardware/normalize.js';
import type { HardwareOptions } from '../hardware/types.js';
import { VECTOR_NAMES } from '../machine/descriptors.js';
import { OptionError, validateTimeout } from '../options.js';
import type { Expectation } from '../runner/types.js';

export interface TestOptions extends HardwareOptions {
  /** The test passes only if it panics (kpanic, or a failed kassert). */
  shouldPanic?: boolean;
  /** The test passes only if it executes HLT. */
  shouldHalt?: boolean;
  /** The test passes only if it raises this exception: '#GP', 'GP' or a vector number (13). */
  shouldFault?: string | number;
  /** Stop the guest after this many milliseconds (default: the run's, kvmtest run --timeout). */
  timeoutMs?: number;
  /** Stack size in bytes (default 64 KiB). */
  stackSize?: number;
  /** Do not run this test (reported as ignored, with the reason when one is given). */
  skip?: boolean | string;
  /** Run only the tests of this file that are marked so (refused when CI is set). */
  only?: boolean;
}

const TEST_OPTIONS = new Set<string>([...HARDWARE_OPTIONS, 'shouldPanic', 'shouldHalt', 'shouldFault', 'timeoutMs', 'stackSize', 'skip', 'only']);

export interface CheckedOptions {
  hardware: Hardware;
  expect: Expectation;
  /** 0: the run's default. */
  timeoutMs: number;
  stackSize?: number;
  /** true, or the reason, when the test is not to run. */
  skip?: true | string;
  only: boolean;
}

/** Checks a test's options; throws OptionError naming the option. */
export function checkTestOptions(options: TestOptions): CheckedOptions {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new OptionError(`the options must be an object, such as { ioports: { 0x60: 1 } } (got ${describeValue(options)})`);
  }
  for (const key of Object.keys(options)) {
    if (!TEST_OPTIONS.has(key)) throw new OptionError(`unknown option "${key}"; known: ${[...TEST_OPTIONS].join(', ')}`);
  }
  for (const key of ['shouldPanic', 'shouldHalt', 'only'] as const) {
    if (options[key] !== undefined && typeof options[key] !== 'boolean') throw new OptionError(`${key} must be true or false (got ${describeValue(options[key])})`);
  }
  if (options.skip !== undefined && typeof options.skip !== 'boolean' && typeof options.skip !== 'string') {
    throw new OptionError(`skip must be true, false or the reason as a string (got ${describeValue(options.skip)})`);
  }
  const checked: CheckedOptions = {
    hardware: normalizeHardware(options),
    expect: expectation(options),
    timeoutMs: options.timeoutMs === undefined ? 0 : validateTimeout(options.timeoutMs, 'timeoutMs'),
    only: options.only === true,
  };
  if (options.stackSize !== undefined) checked.stackSize = options.stackSize;
  if (options.skip === true || (typeof options.skip === 'string' && options.skip !== '')) checked.skip = options.skip;
  return checked;
}

function expectation(options: TestOptions): Expectation {
  const given = (['shouldPanic', 'shouldHalt', 'shouldFault'] as const).filter((key) => options[key] !== undefined && options[key] !== false);
  if (given.length > 1) throw new OptionError(`${given.join(' and ')} cannot be combined: a test ends one way`);
  if (options.shouldPanic) return { kind: 'panic' };
  if (options.shouldHalt) return { kind: 'halt' };
  if (options.shouldFault !== undefined) return { kind: 'fault', vector: faultVector(options.shouldFault) };
  return { kind: 'return' };
}

/** '#GP', 'GP', 'gp' or 13. */
export function faultVector(value: string | number): number {
  if (typeof value === 'number') {
    if (Number.isInteger(value) && value >= 0 && value <= 255) return value;
    throw new OptionError(`shouldFault must be an exception name such as '#GP' or a vector number from 0 to 255 (got ${value})`);
  }
  if (typeof value === 'string') {
    const name = `#${value.replace(/^#/, '').toUpperCase()}`;
    const vector = VECTOR_NAMES.indexOf(name);
    if (vector >= 0) return vector;
  }
  const names = VECTOR_NAMES.filter((n) => n.startsWith('#'));
  throw new OptionError(`shouldFault: ${describeValue(value)} is not an exception; give a vector number or one of ${names.join(', ')}`);
}
