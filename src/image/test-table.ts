// Reads a test binary's table of tests: the records in its `.kvmtest` section
// (layout in docs/test-table.md and sdk/include/kvmtest/abi.h), checked and
// turned into the TestCase objects the runner schedules. Pointers in records
// are guest-virtual; they are read through the ELF's PT_LOAD segments. In a
// shared object (mirror mode) they are link-time addresses, relative to a
// load base of 0, held by R_X86_64_RELATIVE relocations.
import { BinaryFileError, readBinaryFile } from './read-binary.js';
import { hex } from '../devices/device.js';
import { describeRamRange, ramRangeProblem } from '../machine/ram-ranges.js';
import { normalizeIoPorts, OptionError } from '../options.js';
import type { CpuidEdit, Expectation, TestCase } from '../runner/types.js';
import { type ElfFile, findSection, parseElf, PT_LOAD, type SectionHeader } from './elf.js';
import { dynamicRelocations, R_X86_64_RELATIVE, type Relocation, relocationName } from './relocations.js';

export const TEST_TABLE_SECTION = '.kvmtest';
/** The runtime function the runner enters, with args [record.fn, record address]. */
export const RUNTIME_ENTRY = 'kvmtest_entry';
/** The runtime's entry for tests with several vCPUs (.cpus): it brings the others up, then calls kvmtest_entry. */
export const SMP_ENTRY = 'kvmtest_smp_entry';
/** 'K' 'V' 'M' 'T' as a little-endian u32. */
export const TEST_RECORD_MAGIC = 0x544d564b;
export const SUPPORTED_TABLE_VERSIONS: readonly number[] = [1, 2, 3];
/** Bytes of a version 1 record; a larger size field means fields this reader skips. */
export const RECORD_V1_SIZE = 336;
/** Version 2 appends .heap and .cpuid. */
export const RECORD_V2_SIZE = 504;
/** Version 3 appends .cpus and .apic. */
export const RECORD_V3_SIZE = 512;
const RECORD_SIZES: Readonly<Record<number, number>> = { 1: RECORD_V1_SIZE, 2: RECORD_V2_SIZE, 3: RECORD_V3_SIZE };
/** The most CPUs a test may ask for (KVMTEST_MAX_CPUS in abi.h). */
export const MAX_TEST_CPUS = 16;

const SHT_NOBITS = 8;
const STRING_CACHE_SIZE = 256;
const RECORD_ALIGN = 8;
const MAX_IOPORTS = 16;
const MAX_RAMS = 8;
const MAX_CPUID = 8;
const CPUID_ENTRY_SIZE = 20;
/** struct kvmtest_cpuid's reg: CPUID_EAX (1) to CPUID_EDX (4). */
export const CPUID_REGISTER_NAMES = ['eax', 'ebx', 'ecx', 'edx'] as const;
const PAGE_SIZE = 4096n;
const NO_FAULT = -1;
const MAX_VECTOR = 255;

/** Byte offsets in a version 1 record. */
const AT = {
  magic: 0,
  version: 4,
  size: 6,
  name: 8,
  fn: 16,
  file: 24,
  line: 32,
  ioport: 40,
  ioports: 48,
  ram: 176,
  rams: 192,
  shouldFault: 320,
  timeoutMs: 324,
  shouldPanic: 328,
  shouldHalt: 329,
  ignore: 330,
  heap: 336,
  cpuid: 344,
  cpus: 504,
  apic: 508,
} as const;
const IOPORT_SIZE = 8;
const RAM_SIZE = 16;

export class TestTableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TestTableError';
  }
}

/** Reads and parses an ELF file, then its test table. */
export function loadTestTable(path: string): TestCase[] {
  let bytes: Uint8Array;
  try {
    bytes = readBinaryFile(path, `test binary ${path}`);
  } catch (err) {
    if (err instanceof BinaryFileError) throw new TestTableError(err.message);
    throw err;
  }
  return readTestTable(parseElf(bytes, path, { allowShared: true }));
}

/**
 * The tests in `elf`'s `.kvmtest` section, in source order (see sourceOrder).
 * `binary` is how TestCase.binary names the file (default: elf.file). For a
 * shared object, TestCase.record and .fn are link-time addresses: add the
 * load base.
 */
export function readTestTable(elf: ElfFile, binary: string = elf.file): TestCase[] {
  const table = new TableReader(elf, binary);
  const tests: TestCase[] = [];
  let at = 0;
  while (at < table.length) {
    // The linker may pad between objects' tables: skip zeros up to the next record.
    if (table.zeroAt(at)) {
      at += RECORD_ALIGN;
      continue;
    }
    const { test, size } = table.recordAt(at);
    tests.push(test);
    at = Math.ceil((at + size) / RECORD_ALIGN) * RECORD_ALIGN;
  }
  table.rejectStrayRelocations();
  if (tests.length === 0) {
    throw new TestTableError(
      `${binary} has no kvmtest tests: declare tests with KVMTEST(name) { ... } and link with \`kvmtest cc\``,
    );
  }
  rejectDuplicateNames(tests, binary);
  return sourceOrder(tests);
}

/**
 * One test, by the guest address of its record (TestCase.record): what a
 * worker needs, given records chosen from a table the runner already read.
 */
export function testRecordReader(elf: ElfFile, binary: string = elf.file): (address: bigint) => TestCase {
  const table = new TableReader(elf, binary);
  return (address) => {
    const offset = address - table.address;
    if (offset < 0n || offset >= BigInt(table.length)) {
      throw new TestTableError(`${binary}: no test record at ${hex(address)} (the file may have changed)`);
    }
    return table.recordAt(Number(offset)).test;
  };
}

/** The pointer fields of a record, by offset: the only places a relocation may change. */
const POINTER_FIELDS = new Map<number, string>([
  [AT.name, 'name'],
  [AT.fn, 'fn'],
  [AT.file, 'file'],
]);

/** The `.kvmtest` section of one binary, record by record. */
class TableReader {
  private readonly table: Uint8Array;
  private readonly view: DataView;
  private readonly memory: SegmentReader;
  /** A shared object's relocations in the section, by offset in it (none for an executable). */
  private readonly relocations: ReadonlyMap<number, Relocation>;
  /** The offsets of those that records' pointers used. */
  private readonly used = new Set<number>();
  /** The section's guest address (link-time, for a shared object). */
  readonly address: bigint;

  constructor(
    elf: ElfFile,
    private readonly binary: string,
  ) {
    const section = findSection(elf, TEST_TABLE_SECTION);
    if (!section || section.size === 0 || section.type === SHT_NOBITS) {
      throw new TestTableError(
        `${binary} has no kvmtest tests: declare tests with KVMTEST(name) { ... } and link with \`kvmtest cc\``,
      );
    }
    this.table = elf.bytes.subarray(section.offset, section.offset + section.size);
    this.view = new DataView(this.table.buffer, this.table.byteOffset, this.table.byteLength);
    this.memory = new SegmentReader(elf, binary);
    this.address = section.addr;
    this.relocations = elf.type === 'shared-object' ? relocationsIn(elf, section) : new Map();
  }

  /**
   * The pointer in a record's field at section offset `at + field`: the
   * relocation's value in a shared object, else the bytes. A relocation
   * that needs a symbol's run-time address cannot be read from the file.
   */
  private pointer(at: number, field: number, where: () => string): bigint {
    const inPlace = this.view.getBigUint64(at + field, true);
    const relocation = this.relocations.get(at + field);
    if (!relocation) return inPlace;
    this.used.add(at + field);
    if (relocation.type !== R_X86_64_RELATIVE) {
      throw new TestTableError(
        `${where()}: its ${POINTER_FIELDS.get(field)} pointer is a ${relocationName(relocation.type)} relocation` +
          `${relocation.symbol ? ` against ${relocation.symbol}` : ''}, which the loader resolves only at run time; ` +
          'a record\'s pointers must be addresses inside the object (R_X86_64_RELATIVE): make the symbol static or hidden, ' +
          'or link with `kvmtest cc -shared` (it links with -Bsymbolic)',
      );
    }
    return relocation.addend ?? inPlace;
  }

  /** A relocation anywhere but a pointer field would change a number the reader takes as it is. */
  private strayRelocation(offset: number, relocation: Relocation): TestTableError {
    return new TestTableError(
      `${this.binary}: the ${TEST_TABLE_SECTION} section has a ${relocationName(relocation.type)} relocation at offset ${hex(offset)} ` +
        `(address ${hex(this.address + BigInt(offset))}), outside any record's name, fn and file pointers: ` +
        'the other fields are numbers (ports, RAM ranges, options) and must be constants',
    );
  }

  /** Refuses relocations in the 8-byte words of the record at `at` other than its pointers (before its fields are read). */
  private rejectRelocationsIn(at: number, size: number): void {
    if (this.relocations.size === 0) return;
    for (let word = at; word < at + size; word += RECORD_ALIGN) {
      const relocation = this.relocations.get(word);
      if (relocation && !POINTER_FIELDS.has(word - at)) throw this.strayRelocation(word, relocation);
    }
  }

  /** After reading every record: any relocation left over (between records, or not 8-aligned). */
  rejectStrayRelocations(): void {
    for (const [offset, relocation] of this.relocations) {
      if (!this.used.has(offset)) throw this.strayRelocation(offset, relocation);
    }
  }

  get length(): number {
    return this.table.length;
  }

  /** True for alignment padding at `at`. */
  zeroAt(at: number): boolean {
    return isZero(this.table, at, Math.min(RECORD_ALIGN, this.table.length - at));
  }

  /** The record at byte offset `at` of the section, checked. */
  recordAt(at: number): { test: TestCase; size: number } {
    const { table, view, binary } = this;
    // Built only for messages: formatting it for every record would cost more than reading the record.
    const where = () => `${binary}: the ${TEST_TABLE_SECTION} record at offset ${hex(at)} (address ${hex(this.address + BigInt(at))})`;
    if (table.length - at < 8) throw new TestTableError(`${where()} is cut short (${table.length - at} bytes left in the section)`);
    const magic = view.getUint32(at + AT.magic, true);
    if (magic !== TEST_RECORD_MAGIC) {
      throw new TestTableError(
        `${where()} has bad magic ${hex(magic)} (expected ${hex(TEST_RECORD_MAGIC)}, "KVMT"): ` +
          `the section holds something other than kvmtest records`,
      );
    }
    const version = view.getUint16(at + AT.version, true);
    const size = view.getUint16(at + AT.size, true);
    if (!SUPPORTED_TABLE_VERSIONS.includes(version)) {
      throw new TestTableError(
        `${where()} has version ${version}; this kvmtest reads version${SUPPORTED_TABLE_VERSIONS.length > 1 ? 's' : ''} ` +
          `${SUPPORTED_TABLE_VERSIONS.join(', ')}: build the tests with the SDK that comes with this kvmtest, or upgrade kvmtest`,
      );
    }
    const least = RECORD_SIZES[version]!;
    if (size < least) {
      throw new TestTableError(`${where()} says it is ${size} bytes, too small: a version ${version} record has at least ${least}`);
    }
    if (at + size > table.length) {
      throw new TestTableError(`${where()} is ${size} bytes, but the section ends ${table.length - at} bytes after its start`);
    }
    this.rejectRelocationsIn(at, size);
    const record = new DataView(table.buffer, table.byteOffset + at, size);
    const pointers = { name: this.pointer(at, AT.name, where), fn: this.pointer(at, AT.fn, where), file: this.pointer(at, AT.file, where) };
    return { test: readRecord(record, version, pointers, this.address + BigInt(at), this.memory, binary, where), size };
  }
}

/**
 * Tests in the order they were written: source files in link order, tests
 * by line. (Compilers may emit a file's records in any order; gcc at -O2
 * emits them backwards.)
 */
function sourceOrder(tests: TestCase[]): TestCase[] {
  const fileRank = new Map<string, number>();
  for (const t of tests) if (!fileRank.has(t.file)) fileRank.set(t.file, fileRank.size);
  return [...tests].sort((a, b) => fileRank.get(a.file)! - fileRank.get(b.file)! || a.line - b.line);
}

/** The relocation-dependent fields of a record, as its reader resolved them. */
interface RecordPointers {
  name: bigint;
  fn: bigint;
  file: bigint;
}

function readRecord(
  view: DataView,
  version: number,
  pointers: RecordPointers,
  address: bigint,
  memory: SegmentReader,
  binary: string,
  where: () => string,
): TestCase {
  const name = memory.string(pointers.name, () => `${where()}: its name`);
  const file = memory.string(pointers.file, () => `${where()} ("${name}"): its file name`);
  const line = view.getUint32(AT.line, true);
  const fn = pointers.fn;
  const test = () => `${binary}: test "${name}" (${file}:${line})`;
  if (name === '') throw new TestTableError(`${where()} has an empty name`);
  if (fn === 0n) throw new TestTableError(`${test()} has no test function (its fn pointer is 0)`);

  const options = {
    shouldFault: view.getInt32(AT.shouldFault, true),
    shouldPanic: view.getUint8(AT.shouldPanic) !== 0,
    shouldHalt: view.getUint8(AT.shouldHalt) !== 0,
  };
  return {
    name,
    binary,
    file,
    line,
    fn,
    record: address,
    expect: expectation(options, test),
    ioports: ioPorts(view, test),
    ram: ramRanges(view, test),
    timeoutMs: view.getUint32(AT.timeoutMs, true),
    ignore: view.getUint8(AT.ignore) !== 0,
    // Version 1 records end before these: no heap, no CPUID edits.
    ...(version >= 2 && versionTwoOptions(view, test)),
    ...(version >= 3 && versionThreeOptions(view, test)),
  };
}

/** .cpus and .apic (version 3): several CPUs imply an APIC. */
function versionThreeOptions(view: DataView, test: () => string): Pick<TestCase, 'cpus' | 'apic'> {
  const cpus = view.getUint32(AT.cpus, true);
  if (cpus > MAX_TEST_CPUS) {
    throw new TestTableError(`${test()}: .cpus = ${cpus} is more than kvmtest runs (at most ${MAX_TEST_CPUS} CPUs)`);
  }
  const apic = view.getUint8(AT.apic) !== 0 || cpus > 1;
  return { ...(cpus > 1 && { cpus }), ...(apic && { apic }) };
}

/** .heap and .cpuid (version 2). */
function versionTwoOptions(view: DataView, test: () => string): Pick<TestCase, 'heap' | 'cpuid'> {
  const heap = view.getBigUint64(AT.heap, true);
  if (heap % PAGE_SIZE !== 0n) {
    throw new TestTableError(`${test()}: .heap = ${heap} is not a multiple of 4096 bytes (4 KiB pages); round it up`);
  }
  const cpuid: CpuidEdit[] = [];
  if (!allZero(view, AT.cpuid, MAX_CPUID * CPUID_ENTRY_SIZE)) {
    for (let i = 0; i < MAX_CPUID; i++) {
      const at = AT.cpuid + i * CPUID_ENTRY_SIZE;
      if (allZero(view, at, CPUID_ENTRY_SIZE)) continue;
      const [leaf, subleaf, reg, keep, set] = [0, 4, 8, 12, 16].map((o) => view.getUint32(at + o, true)) as [number, number, number, number, number];
      const register = CPUID_REGISTER_NAMES[reg - 1];
      if (register === undefined) {
        throw new TestTableError(
          `${test()}: .cpuid[${i}] (leaf ${hex(leaf)}) has .reg = ${reg}; give CPUID_EAX, CPUID_EBX, CPUID_ECX or CPUID_EDX`,
        );
      }
      cpuid.push({ leaf, subleaf, register, keep, set });
    }
  }
  return { ...(heap > 0n && { heap }), ...(cpuid.length > 0 && { cpuid }) };
}

function expectation(o: { shouldFault: number; shouldPanic: boolean; shouldHalt: boolean }, test: () => string): Expectation {
  // Most tests expect nothing special; the checks below are for the rest.
  if (o.shouldFault === NO_FAULT && !o.shouldPanic && !o.shouldHalt) return { kind: 'return' };
  if (o.shouldFault !== NO_FAULT && (o.shouldFault < 0 || o.shouldFault > MAX_VECTOR)) {
    throw new TestTableError(
      `${test()}: .should_fault = ${o.shouldFault} is not an exception vector (0 to ${MAX_VECTOR}, e.g. FAULT_GP; -1 means none)`,
    );
  }
  const set = [
    o.shouldPanic && '.should_panic',
    o.shouldHalt && '.should_halt',
    o.shouldFault !== NO_FAULT && '.should_fault',
  ].filter((x): x is string => x !== false);
  if (set.length > 1) {
    throw new TestTableError(`${test()} sets ${set.join(' and ')}; a test expects one outcome, so set at most one of them`);
  }
  if (o.shouldPanic) return { kind: 'panic' };
  if (o.shouldHalt) return { kind: 'halt' };
  if (o.shouldFault !== NO_FAULT) return { kind: 'fault', vector: o.shouldFault };
  return { kind: 'return' };
}

/** .ioport and .ioports[16]; an all-zero entry is unset. */
function ioPorts(view: DataView, test: () => string): Map<number, number> {
  if (allZero(view, AT.ioport, (MAX_IOPORTS + 1) * IOPORT_SIZE)) return new Map();
  const entries: Array<[number, number]> = [];
  for (let i = 0; i <= MAX_IOPORTS; i++) {
    const at = i === 0 ? AT.ioport : AT.ioports + (i - 1) * IOPORT_SIZE;
    const port = view.getUint32(at, true);
    const value = view.getUint32(at + 4, true);
    if (port !== 0 || value !== 0) entries.push([port, value]);
  }
  try {
    return normalizeIoPorts(entries);
  } catch (err) {
    if (err instanceof OptionError) throw new TestTableError(`${test()}: ${err.message}`);
    throw err;
  }
}

/** .ram and .rams[8]; an all-zero entry is unset. */
function ramRanges(view: DataView, test: () => string): Array<[bigint, bigint]> {
  if (allZero(view, AT.ram, (MAX_RAMS + 1) * RAM_SIZE)) return [];
  const ranges: Array<[bigint, bigint]> = [];
  for (let i = 0; i <= MAX_RAMS; i++) {
    const at = i === 0 ? AT.ram : AT.rams + (i - 1) * RAM_SIZE;
    const from = view.getBigUint64(at, true);
    const to = view.getBigUint64(at + 8, true);
    if (from === 0n && to === 0n) continue;
    const problem = ramRangeProblem(from, to, ranges);
    if (problem) throw new TestTableError(`${test()}: ${describeRamRange(from, to)}${problem}`);
    ranges.push([from, to]);
  }
  return ranges;
}

function rejectDuplicateNames(tests: readonly TestCase[], binary: string): void {
  const seen = new Map<string, TestCase>();
  for (const t of tests) {
    const first = seen.get(t.name);
    if (first) {
      throw new TestTableError(
        `${binary}: the test name "${t.name}" is given twice, at ${first.file}:${first.line} and at ${t.file}:${t.line}; ` +
          'test names must be unique within a binary',
      );
    }
    seen.set(t.name, t);
  }
}

/** A shared object's relocations inside `section`, by offset in it. */
function relocationsIn(elf: ElfFile, section: SectionHeader): Map<number, Relocation> {
  const end = section.addr + BigInt(section.size);
  const inside = new Map<number, Relocation>();
  for (const r of dynamicRelocations(elf)) {
    if (r.address >= section.addr && r.address < end) inside.set(Number(r.address - section.addr), r);
  }
  return inside;
}

/** True when `length` bytes (a multiple of 4) at `at` are all zero: the common case of no ports or RAM. */
function allZero(view: DataView, at: number, length: number): boolean {
  for (let i = at; i < at + length; i += 4) if (view.getUint32(i, true) !== 0) return false;
  return true;
}

function isZero(bytes: Uint8Array, at: number, length: number): boolean {
  for (let i = at; i < at + length; i++) if (bytes[i] !== 0) return false;
  return true;
}

/** Reads NUL-terminated strings at guest-virtual addresses from the file's loadable segments. */
class SegmentReader {
  /**
   * Strings already read, by address: every test of a file shares its file
   * name. Bounded, since a worker reads test after test for as long as it
   * runs and each test's name is a string of its own.
   */
  private readonly cache = new Map<bigint, string>();

  /** The file's bytes as a Buffer (no copy), for its fast native search and decoding. */
  private readonly bytes: Buffer;

  constructor(
    private readonly elf: ElfFile,
    private readonly binary: string,
  ) {
    this.bytes = Buffer.from(elf.bytes.buffer, elf.bytes.byteOffset, elf.bytes.byteLength);
  }

  string(address: bigint, what: () => string): string {
    const cached = this.cache.get(address);
    if (cached !== undefined) return cached;
    const segment = this.elf.segments.find(
      (s) => s.type === PT_LOAD && address >= s.vaddr && address < s.vaddr + BigInt(s.filesz),
    );
    if (!segment) {
      throw new TestTableError(
        `${what()} points at ${hex(address)}, which is not in any loadable segment of ${this.binary} with file contents`,
      );
    }
    const start = segment.offset + Number(address - segment.vaddr);
    const end = segment.offset + segment.filesz;
    const nul = this.bytes.indexOf(0, start);
    if (nul < 0 || nul >= end) throw new TestTableError(`${what()} at ${hex(address)} runs to the end of its segment without a terminating NUL`);
    const text = this.bytes.toString('utf8', start, nul);
    if (this.cache.size >= STRING_CACHE_SIZE) this.cache.clear();
    this.cache.set(address, text);
    return text;
  }
}
