// The code a TypeScript test runs in the guest: C statements (c``), a C
// translation unit (c.unit``), Intel-syntax assembly (asm``), a function of
// an ELF built with `kvmtest cc` (elf()), raw machine code (bytes()), or a
// function of a shared object loaded into the test process (mirror()).
// Making one only records it, with the TypeScript file and line it was
// written at: the runner builds them (build.ts) after the file is loaded.
import { bytesOf } from '../hardware/normalize.js';
import { OptionError } from '../options.js';
import { callerLocation, type SourceLocation } from './location.js';

/** Source code kvmtest compiles: C or assembly, written in a template in a test file. */
export interface SnippetGuest {
  readonly kind: 'c' | 'c-unit' | 'asm';
  /** The template's text, interpolations filled in. */
  readonly source: string;
  /** Where the template starts (its first line is this line). */
  readonly at: SourceLocation;
}

export interface ElfGuest {
  readonly kind: 'elf';
  /** As given: relative paths are from the current directory, like the fs module's. */
  readonly path: string;
  readonly symbol: string;
  readonly at: SourceLocation;
}

export interface BytesGuest {
  readonly kind: 'bytes';
  readonly data: Uint8Array;
  readonly loadAddress: bigint;
  readonly at: SourceLocation;
}

/** A function of a shared object, run in mirror mode (the process's memory shown to the guest). */
export interface MirrorGuest {
  readonly kind: 'mirror';
  /** As given: relative paths are from the current directory, like the fs module's. */
  readonly path: string;
  readonly symbol: string;
  /** Up to six: integers, or Buffers and typed arrays (passed as the address of their bytes). */
  readonly args: ReadonlyArray<bigint | number | ArrayBufferView>;
  readonly at: SourceLocation;
}

export type Guest = SnippetGuest | ElfGuest | BytesGuest | MirrorGuest;

/** Where bytes() places code unless told: where kvmtest cc links test code. */
export const DEFAULT_LOAD_ADDRESS = 0x200000n;

const GUEST_BRAND = Symbol.for('kvmtest.guest');

export function isGuest(value: unknown): value is Guest {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[GUEST_BRAND] === true;
}

function brand<T extends Guest>(guest: T): T {
  Object.defineProperty(guest, GUEST_BRAND, { value: true });
  return Object.freeze(guest);
}

type Interpolation = string | number | bigint | boolean;

/**
 * A template's text with its interpolations (numbers, bigints, strings)
 * written in. The raw text: C's escapes ("\n" in a string literal) reach
 * the compiler as written.
 */
function templateText(tag: string, strings: TemplateStringsArray, values: readonly unknown[]): string {
  if (!Array.isArray(strings) || !Array.isArray((strings as { raw?: unknown }).raw)) {
    throw new OptionError(`${tag} is a template tag: write ${tag}\`...\`, not ${tag}(...)`);
  }
  const raw = strings.raw;
  let text = raw[0]!;
  values.forEach((value, i) => {
    if (!['string', 'number', 'bigint', 'boolean'].includes(typeof value)) {
      throw new OptionError(`${tag}\`...\`: interpolation ${i + 1} is ${value === null ? 'null' : typeof value}; only strings, numbers, bigints and booleans can be written into source code`);
    }
    text += String(value as Interpolation) + raw[i + 1]!;
  });
  return text;
}

function snippet(kind: SnippetGuest['kind'], tag: string, strings: TemplateStringsArray, values: unknown[]): SnippetGuest {
  return brand({ kind, source: templateText(tag, strings, values), at: callerLocation() });
}

interface CTag {
  /** The statements of a test body, compiled with the SDK (kvmtest.h included). */
  (strings: TemplateStringsArray, ...values: Interpolation[]): SnippetGuest;
  /** A whole translation unit (kvmtest.h included) whose entry is `void test(void)`; helpers may be defined around it. */
  unit(strings: TemplateStringsArray, ...values: Interpolation[]): SnippetGuest;
}

export const c: CTag = Object.assign(
  (strings: TemplateStringsArray, ...values: Interpolation[]) => snippet('c', 'c', strings, values),
  { unit: (strings: TemplateStringsArray, ...values: Interpolation[]) => snippet('c-unit', 'c.unit', strings, values) },
);

/** Intel-syntax assembly, assembled by the system toolchain; `ret` returns to the engine. */
export function asm(strings: TemplateStringsArray, ...values: Interpolation[]): SnippetGuest {
  return snippet('asm', 'asm', strings, values);
}

/** A function of an ELF executable built with `kvmtest cc`. */
export function elf(path: string | URL, symbol: string): ElfGuest {
  const file = path instanceof URL ? fileFromUrl(path) : path;
  if (typeof file !== 'string' || file === '') throw new OptionError(`elf(path, symbol): the path must be a non-empty string or a file: URL (got ${String(path)})`);
  if (typeof symbol !== 'string' || symbol === '') throw new OptionError(`elf(${JSON.stringify(file)}, symbol): name the function to run (got ${String(symbol)})`);
  return brand({ kind: 'elf', path: file, symbol, at: callerLocation() });
}

/** A shared object whose functions tests run in mirror mode. */
export interface MirroredLibrary {
  /** The guest that runs function `name` with `args` (integers, or Buffers and typed arrays passed as the address of their bytes). */
  fn(name: string, ...args: Array<bigint | number | ArrayBufferView>): MirrorGuest;
}

/**
 * A shared object (built with -shared -fPIC) that the worker loads into its
 * own process: its functions run in guest ring 0 with the process's memory
 * at the same addresses, so a Buffer the test passes is the one its check
 * reads. Loaded when its first test runs.
 */
export function mirror(path: string | URL): MirroredLibrary {
  const file = path instanceof URL ? fileFromUrl(path, 'mirror') : path;
  if (typeof file !== 'string' || file === '') throw new OptionError(`mirror(path): the path must be a non-empty string or a file: URL (got ${String(path)})`);
  return {
    fn(name, ...args) {
      if (typeof name !== 'string' || name === '') throw new OptionError(`mirror(${JSON.stringify(file)}).fn(name, ...args): name the function to run (got ${String(name)})`);
      return brand({ kind: 'mirror', path: file, symbol: name, args, at: callerLocation() });
    },
  };
}

function fileFromUrl(url: URL, caller = 'elf'): string {
  if (url.protocol !== 'file:') throw new OptionError(`${caller}(): ${url.href} is not a file: URL`);
  return decodeURIComponent(url.pathname);
}

export interface BytesOptions {
  /** Guest address of the first byte, where the run starts (default 0x200000). */
  loadAddress?: bigint | number;
}

/** Raw machine code, such as a code generator's output: run from its first byte. */
export function bytes(data: Uint8Array | readonly number[], options: BytesOptions = {}): BytesGuest {
  const code = bytesOf(data, 'bytes(data)');
  if (code.length === 0) throw new OptionError('bytes(data): the code is empty');
  const loadAddress = options.loadAddress === undefined ? DEFAULT_LOAD_ADDRESS : BigInt(options.loadAddress);
  return brand({ kind: 'bytes', data: code, loadAddress, at: callerLocation() });
}
