// Finds the tests in test binaries and test files, and chooses which to run: filters and
// skips (substring or exact, optionally BINARY::NAME), ignored tests, and a
// stable shard of the list for CI matrices. The order is the report's
// order: binaries as given, tests by name within a binary, the same from
// run to run.
import { resolve } from 'node:path';
import { type ElfFile, parseElf } from '../image/elf.js';
import { readBinaryFile } from '../image/read-binary.js';
import { readTestTable } from '../image/test-table.js';
import { TestFileError } from '../testfile/load.js';
import { collectTestFiles } from './collect.js';
import type { TestInput } from './inputs.js';
import type { TestCase } from './types.js';

export interface Shard {
  /** 1-based. */
  index: number;
  count: number;
}

export interface Selection {
  /** A test runs if its name matches any of these (all, when there are none). */
  filters: readonly string[];
  /** A test does not run if its name matches any of these. */
  skips?: readonly string[];
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

export interface Discovered {
  /** The test binaries read (for preflight checks). */
  binaries: TestBinary[];
  /** Every test of every input, in report order. */
  tests: TestCase[];
  /** What the compiler said about test files' snippets that built. */
  warnings: string[];
}

/**
 * Reads the test binaries and loads the test files (in a child process),
 * in the inputs' order. Throws BinaryError for an unusable binary and
 * TestFileError for a test file that cannot be loaded.
 */
export async function discoverInputs(inputs: readonly TestInput[]): Promise<Discovered> {
  const binaries = readBinaries(inputs.filter((i) => i.kind === 'binary').map((i) => i.path));
  const files = await collectTestFiles([...new Set(inputs.filter((i) => i.kind === 'test-file').map((i) => i.path))]);
  const byBinary = new Map(binaries.map((b) => [b.path, b.tests]));
  const seen = new Set<string>();
  const tests: TestCase[] = [];
  for (const input of inputs) {
    if (seen.has(input.path)) continue;
    seen.add(input.path);
    tests.push(...(input.kind === 'binary' ? (byBinary.get(input.path) ?? []) : (files.get(input.path)?.tests ?? [])));
  }
  return { binaries, tests, warnings: [...files.values()].flatMap((f) => f.warnings) };
}

export { TestFileError };

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
      // A shared object (kvmtest cc -shared, for mirror mode) lists like an executable.
      const elf = parseElf(bytes, binary, { allowShared: true });
      const tests = readTestTable(elf, binary).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      read.push({ path: binary, elf, tests });
    } catch (err) {
      throw new BinaryError((err as Error).message);
    }
  }
  return read;
}

/** The tests to report: those matching the filters and no skip, then this shard's slice. */
export function selectTests(tests: readonly TestCase[], selection: Selection): TestCase[] {
  const matching = matchingTests(tests, selection);
  if (!selection.shard) return matching;
  const { index, count } = selection.shard;
  // Round-robin over the stable order: every shard gets a similar mix.
  return matching.filter((_, i) => i % count === index - 1);
}

/** The tests that the filters and skips select, before sharding. */
export function matchingTests(tests: readonly TestCase[], selection: Selection): TestCase[] {
  const filters = selection.filters.map(parsePattern);
  const skips = (selection.skips ?? []).map(parsePattern);
  return tests.filter(
    (t) => (filters.length === 0 || filters.some((p) => p(t, selection.exact))) && !skips.some((p) => p(t, selection.exact)),
  );
}

type Pattern = (test: TestCase, exact: boolean) => boolean;

/**
 * A filter or skip pattern: a name (substring, or whole with --exact), or
 * BINARY::NAME as failure lists print it, which matches in that binary only.
 */
function parsePattern(text: string): Pattern {
  const split = text.lastIndexOf('::');
  const binary = split > 0 ? text.slice(0, split) : undefined;
  const name = split > 0 ? text.slice(split + 2) : text;
  const inBinary = binary === undefined ? () => true : (t: TestCase) => t.binary === binary || resolve(t.binary) === resolve(binary);
  return (test, exact) => inBinary(test) && (exact ? test.name === name : test.name.includes(name));
}
