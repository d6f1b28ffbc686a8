// Finds the tests in test binaries and chooses which to run: filters
// (substring or exact), ignored tests, and a stable shard of the list for CI
// matrices. The order is the report's order: binaries as given, tests by
// name within a binary, the same from run to run.
import { type ElfFile, parseElf } from '../image/elf.js';
import { readBinaryFile } from '../image/read-binary.js';
import { readTestTable } from '../image/test-table.js';
import type { TestCase } from './types.js';

export interface Shard {
  /** 1-based. */
  index: number;
  count: number;
}

export interface Selection {
  filters: readonly string[];
  exact: boolean;
  includeIgnored: boolean;
  shard?: Shard;
}

/** A test binary that cannot be used (exit status 2). */
export class BinaryError extends Error {}

/** A test binary as read from disk: its parsed ELF and its tests, by name. */
export interface TestBinary {
  path: string;
  elf: ElfFile;
  tests: TestCase[];
}

/** Every test of every binary, in report order. Throws BinaryError for an unusable binary. */
export function discoverTests(binaries: readonly string[]): TestCase[] {
  return readBinaries(binaries).flatMap((b) => b.tests);
}

/** Reads and parses each binary once (given twice, it counts once). */
export function readBinaries(binaries: readonly string[]): TestBinary[] {
  const read: TestBinary[] = [];
  for (const binary of new Set(binaries)) {
    try {
      const bytes = readBinaryFile(binary, `test binary ${binary}`);
      const elf = parseElf(bytes, binary);
      const tests = readTestTable(elf, binary).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      read.push({ path: binary, elf, tests });
    } catch (err) {
      throw new BinaryError((err as Error).message);
    }
  }
  return read;
}

/** The tests to report: those matching the filters, then this shard's slice. */
export function selectTests(tests: readonly TestCase[], selection: Selection): TestCase[] {
  const matching = tests.filter((t) => matches(t.name, selection));
  if (!selection.shard) return matching;
  const { index, count } = selection.shard;
  // Round-robin over the stable order: every shard gets a similar mix.
  return matching.filter((_, i) => i % count === index - 1);
}

function matches(name: string, { filters, exact }: Selection): boolean {
  if (filters.length === 0) return true;
  return filters.some((f) => (exact ? name === f : name.includes(f)));
}
