// Declaring tests in a TypeScript test file: kvmtest(name, [options],
// guest, [check]) and describe(name, fn). Declaring only records: the test
// file is loaded by `kvmtest run` (load.ts) with a collector in place, which
// receives the declarations in order; the runner then builds the guests and
// runs the tests in its workers, which load the file again and find each
// test by its place in that order.
//
// A mistake in one declaration (an unknown option, a guest that is not
// one) does not stop the file from loading: that test carries the error and
// fails with it, and the file's other tests run.
import type { GuestResult } from '../result.js';
import { OptionError } from '../options.js';
import { describe as describeValue, normalizeArgs } from '../hardware/normalize.js';
import { type Guest, isGuest } from './guests.js';
import { callerLocation, type SourceLocation } from './location.js';
import { type CheckedOptions, checkTestOptions, type TestOptions } from './options.js';

/** What a host-side check receives: the run's result, and guest memory as the run left it. */
export interface TestRun extends GuestResult {
  memory: {
    /** A copy of `length` bytes at a guest-virtual address (through the page tables the guest ended with). */
    read(address: bigint | number, length: number): Uint8Array;
    /** A copy of `length` bytes at a guest-physical address. */
    readPhysical(address: bigint | number, length: number): Uint8Array;
  };
}

/** A host-side check of a test's result: it may throw, assert or return a Promise. */
export type Check = (run: TestRun) => void | Promise<void>;

/** One declared test, as the collector keeps it. */
export interface TestDeclaration {
  /** "group > name" for a test inside describe('group'). */
  name: string;
  at: SourceLocation;
  guest?: Guest;
  check?: Check;
  options?: CheckedOptions;
  /** Why the declaration is unusable: the test fails with this. */
  error?: string;
}

/** Receives a file's declarations while it loads. */
export interface Collector {
  file: string;
  tests: TestDeclaration[];
}

interface Group {
  name: string;
  skip?: true | string;
  only: boolean;
}

interface CollectorState {
  collector: Collector;
  groups: Group[];
  names: Map<string, SourceLocation>;
}

// On globalThis under a registered symbol: a test file may import another
// copy of kvmtest (its own node_modules) than the runner's, and both must
// reach the same collector.
const STATE = Symbol.for('kvmtest.collector');
type Global = typeof globalThis & { [STATE]?: CollectorState | undefined };

/** Runs `load` with `collector` receiving the declarations it makes; one file at a time. */
export async function collectDeclarations(collector: Collector, load: () => Promise<unknown>): Promise<void> {
  const global = globalThis as Global;
  if (global[STATE]) throw new Error(`internal: ${global[STATE]!.collector.file} is still loading`);
  global[STATE] = { collector, groups: [], names: new Map() };
  try {
    await load();
  } finally {
    global[STATE] = undefined;
  }
}

function state(what: string): CollectorState {
  const current = (globalThis as Global)[STATE];
  if (!current) {
    throw new Error(
      `${what}: tests in a kvmtest test file are run by the kvmtest runner (\`kvmtest run FILE\`), which loads the file; ` +
        'declare them at the top level of the file (or inside describe), not later, and do not import the file from elsewhere',
    );
  }
  return current;
}

type Modifier = { skip?: true; only?: true };

function declare(modifier: Modifier, name: unknown, ...rest: unknown[]): void {
  const current = state('kvmtest()');
  const at = callerLocation();
  const ownName = typeof name === 'string' ? name : String(name);
  const fullName = current.groups.length === 0 ? ownName : `${current.groups.map((g) => g.name).join(' > ')} > ${ownName}`;
  const declaration: TestDeclaration = { name: fullName, at };
  current.collector.tests.push(declaration);
  try {
    if (typeof name !== 'string' || name.trim() === '') throw new OptionError(`kvmtest(name, ...): the name must be a non-empty string (got ${describeValue(name)})`);
    const earlier = current.names.get(fullName);
    if (earlier) throw new OptionError(`another test is named "${fullName}" (line ${earlier.line}); names must be unique in a file`);
    current.names.set(fullName, at);
    const withOptions = !isGuest(rest[0]);
    const options = withOptions ? rest[0] : {};
    const guest = rest[withOptions ? 1 : 0];
    const check = rest[withOptions ? 2 : 1];
    const extra = rest.length - (withOptions ? 3 : 2);
    if (extra > 0) throw new OptionError(`kvmtest("${name}", ...) takes [options,] guest [, check]: ${extra} argument${extra > 1 ? 's' : ''} too many`);
    if (!isGuest(guest)) {
      throw new OptionError(`kvmtest("${name}", ...): the guest must be c\`...\`, c.unit\`...\`, asm\`...\`, elf(path, symbol), bytes(data) or mirror(path).fn(name) (got ${describeValue(guest)})`);
    }
    if (check !== undefined && typeof check !== 'function') throw new OptionError(`kvmtest("${name}", ...): the last argument, the check, must be a function (got ${describeValue(check)})`);
    const checked = checkTestOptions((options ?? {}) as TestOptions);
    // describe.skip / describe.only and kvmtest.skip / kvmtest.only apply as the options would.
    const skip = modifier.skip ?? (current.groups.length > 0 ? current.groups.find((g) => g.skip)?.skip : undefined);
    if (skip && !checked.skip) checked.skip = skip;
    if (modifier.only || (current.groups.length > 0 && current.groups.some((g) => g.only))) checked.only = true;
    if (guest.kind === 'mirror') {
      if (checked.hardware.args.length > 0) throw new OptionError(`kvmtest("${name}", ...): give a mirrored function's arguments to fn(name, ...args), not as the args option`);
      if (checked.hardware.apic) throw new OptionError(`kvmtest("${name}", ...): mirror mode has no interrupt controllers or second vCPU yet (apic, cpus): use a c\`\` or elf() guest`);
      checked.hardware = { ...checked.hardware, args: normalizeArgs(guest.args, true), argArrays: guest.args.filter((a) => ArrayBuffer.isView(a)) };
    }
    declaration.guest = guest;
    if (check) declaration.check = check as Check;
    declaration.options = checked;
  } catch (err) {
    if (!(err instanceof OptionError)) throw err;
    declaration.error = err.message;
  }
}

function group(modifier: Modifier, name: unknown, body: unknown): void {
  const current = state('describe()');
  if (typeof name !== 'string' || name.trim() === '') throw new OptionError(`describe(name, fn): the name must be a non-empty string (got ${describeValue(name)})`);
  if (typeof body !== 'function') throw new OptionError(`describe("${name}", fn): fn must be a function that declares the group's tests`);
  current.groups.push({ name, only: modifier.only === true, ...(modifier.skip && { skip: modifier.skip }) });
  try {
    const result = (body as () => unknown)();
    if (typeof (result as { then?: unknown } | undefined)?.then === 'function') {
      throw new OptionError(`describe("${name}", fn): fn returned a Promise; declare the group's tests synchronously (an async fn would declare them after the file has loaded)`);
    }
  } finally {
    current.groups.pop();
  }
}

type TestFunction = {
  (name: string, guest: Guest, check?: Check): void;
  (name: string, options: TestOptions, guest: Guest, check?: Check): void;
};

export interface KvmtestApi extends TestFunction {
  /** Declares a test that does not run (reported as ignored). */
  skip: TestFunction;
  /** Declares a test that runs while the file's tests not marked only do not. */
  only: TestFunction;
}

export interface DescribeApi {
  (name: string, fn: () => void): void;
  skip(name: string, fn: () => void): void;
  only(name: string, fn: () => void): void;
}

/** Declares a test: its name, its options (hardware, expectations), its guest code and a host-side check. */
export const kvmtest: KvmtestApi = Object.assign((name: string, ...rest: unknown[]) => declare({}, name, ...rest), {
  skip: (name: string, ...rest: unknown[]) => declare({ skip: true }, name, ...rest),
  only: (name: string, ...rest: unknown[]) => declare({ only: true }, name, ...rest),
}) as KvmtestApi;

/** Groups tests: their names read "group > test" in every report. */
export const describe: DescribeApi = Object.assign((name: string, fn: () => void) => group({}, name, fn), {
  skip: (name: string, fn: () => void) => group({ skip: true }, name, fn),
  only: (name: string, fn: () => void) => group({ only: true }, name, fn),
});
