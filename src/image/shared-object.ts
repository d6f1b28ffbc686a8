// A shared object built with `kvmtest cc -shared`, as a file: its tests, its
// runtime entry and its symbols, for mirror mode, which dlopens the object
// into the worker and runs its functions at the addresses the loader chose.
// Every address here is link-time (the object loaded at 0): add the load
// base to call or read something, subtract it to symbolize an address.
import { BinaryFileError, readBinaryFile } from './read-binary.js';
import { type ElfFile, type ElfSymbol, findSection, parseElf, symbolsIn } from './elf.js';
import { SymbolTable } from './symbols.js';
import { readTestTable, RUNTIME_ENTRY, TEST_TABLE_SECTION, TestTableError } from './test-table.js';
import type { TestCase } from '../runner/types.js';

const SHT_DYNSYM = 11;

export interface SharedObject {
  /** The path it was read from, as given. */
  path: string;
  elf: ElfFile;
  /**
   * Its tests in source order, with `record` (the record's address, for
   * kvmtest_entry's second argument) and `fn` as link-time addresses;
   * empty for an object without a .kvmtest section (plain functions, such
   * as a Rust cdylib's).
   */
  tests: TestCase[];
  /** kvmtest_entry's link-time address; undefined where the object does not export it (then it has no tests). */
  entry: bigint | undefined;
  /** Every symbol (.symtab, else .dynsym) by link-time address: `symbols.describe(address - base)` says "fn+0x12". */
  symbols: SymbolTable;
  /** The functions and data it exports (what dlsym finds), by name: link-time addresses. */
  exports: ReadonlyMap<string, ElfSymbol>;
}

/** Why a file cannot be used as a shared object of tests; the message says what to do. */
export class SharedObjectError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SharedObjectError';
  }
}

/** True for an ELF that is a shared object (ET_DYN without an interpreter); parseElf needs allowShared for one. */
export function isSharedObject(elf: ElfFile): boolean {
  return elf.type === 'shared-object';
}

/** Reads `path` as a shared object built with `kvmtest cc -shared`. Throws SharedObjectError, ElfError or TestTableError. */
export function readSharedObject(path: string): SharedObject {
  let bytes: Uint8Array;
  try {
    bytes = readBinaryFile(path, `shared object ${path}`);
  } catch (err) {
    if (err instanceof BinaryFileError) throw new SharedObjectError(err.message);
    throw err;
  }
  return sharedObjectFromElf(parseElf(bytes, path, { allowShared: true }), path);
}

/** The tests, entry and symbols of a parsed shared object. */
export function sharedObjectFromElf(elf: ElfFile, path: string = elf.file): SharedObject {
  if (!isSharedObject(elf)) {
    throw new SharedObjectError(`${path} is an executable, not a shared object: build one with \`kvmtest cc -shared\``);
  }
  const exports = exportedSymbols(elf);
  const entry = exports.get(RUNTIME_ENTRY)?.value;
  const hasTable = findSection(elf, TEST_TABLE_SECTION) !== undefined;
  if (hasTable && entry === undefined) {
    throw new SharedObjectError(
      `${path} has kvmtest tests but does not export ${RUNTIME_ENTRY}, through which they are run: ` +
        'build it with `kvmtest cc -shared`, which adds the kvmtest runtime and exports its entry',
    );
  }
  let tests: TestCase[] = [];
  try {
    if (hasTable) tests = readTestTable(elf, path);
  } catch (err) {
    if (err instanceof TestTableError) throw new SharedObjectError(err.message);
    throw err;
  }
  return { path, elf, tests, entry, symbols: new SymbolTable(elf.symbols), exports };
}

/** The defined symbols of .dynsym: what the loader exports. */
function exportedSymbols(elf: ElfFile): Map<string, ElfSymbol> {
  const dynsym = elf.sections.find((s) => s.type === SHT_DYNSYM);
  return new Map(dynsym ? symbolsIn(elf, dynsym).map((s) => [s.name, s]) : []);
}
