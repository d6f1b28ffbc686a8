// Shared by the SDK's tests: builds test binaries from test/sdk/fixtures (or
// from source text) with `kvmtest cc` into a temporary directory, reads their
// test tables and runs single tests the way the runner does, through the
// runtime's kvmtest_entry.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadTestTable, RUNTIME_ENTRY } from '../../src/image/test-table.js';
import { compileTests } from '../../src/image/toolchain.js';
import type { GuestResult } from '../../src/result.js';
import { runGuest } from '../../src/run-guest.js';
import type { TestCase } from '../../src/runner/types.js';

/** test/sdk/fixtures in the source tree (this file runs from dist/test/sdk). */
export const FIXTURES = fileURLToPath(new URL('../../../test/sdk/fixtures/', import.meta.url));

let workDir: string | undefined;

/** This process's build directory, removed when it exits. */
export function buildDir(): string {
  if (!workDir) {
    const dir = mkdtempSync(join(tmpdir(), 'kvmtest-sdk-'));
    workDir = dir;
    process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  }
  return workDir;
}

/** Builds fixtures (names in test/sdk/fixtures) into `output`; throws with the compiler's stderr on failure. */
export function buildFixtures(output: string, fixtures: readonly string[], ccArgs: readonly string[] = []): string {
  return buildPaths(output, fixtures.map((f) => join(FIXTURES, f)), ccArgs);
}

/** Writes `sources` (file name -> text) to the build directory and builds them into `output`. */
export function buildSources(output: string, sources: Record<string, string>, ccArgs: readonly string[] = []): string {
  const dir = mkdtempSync(join(buildDir(), `${output}-src-`));
  const paths = Object.entries(sources).map(([name, text]) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  });
  return buildPaths(output, paths, ccArgs);
}

function buildPaths(output: string, paths: readonly string[], ccArgs: readonly string[]): string {
  const elf = join(buildDir(), output);
  const result = compileTests([...ccArgs, '-o', elf, ...paths]);
  if (result.status !== 0) throw new Error(`kvmtest cc failed with status ${result.status}:\n${result.stderr}`);
  return elf;
}

/** A built test binary and its table. */
export class TestBinary {
  readonly tests: TestCase[];

  constructor(readonly path: string) {
    this.tests = loadTestTable(path);
  }

  test(name: string): TestCase {
    const found = this.tests.find((t) => t.name === name);
    if (!found) throw new Error(`${this.path} has no test "${name}" (it has ${this.tests.map((t) => t.name).join(', ')})`);
    return found;
  }

  /** Runs one test on a fresh machine, as the runner would. */
  run(name: string): Promise<GuestResult> {
    return runTestCase(this.test(name));
  }
}

export function runTestCase(test: TestCase): Promise<GuestResult> {
  return runGuest({
    image: { elf: test.binary },
    entry: RUNTIME_ENTRY,
    args: [test.fn, test.record],
    ioports: test.ioports,
    ram: test.ram,
    timeoutMs: test.timeoutMs > 0 ? test.timeoutMs : 5000,
  });
}

/**
 * Skips the running test when the guest stopped because this host's KVM
 * cannot emulate one of its instructions (software-assisted KVMs such as PVM
 * lack int3, rdtscp, xgetbv, SSE, ...). Returns true when it skipped.
 */
export function skipIfUnemulated(t: TestContext, result: GuestResult): boolean {
  if (result.outcome === 'error' && result.error?.kind === 'emulation-failure') {
    t.skip(`this host's KVM cannot emulate an instruction the test needs: ${result.message ?? ''}`);
    return true;
  }
  return false;
}

/** The 1-based line of the first line in a fixture that contains `text`. */
export function lineOf(fixture: string, text: string): number {
  const index = readFileSync(join(FIXTURES, fixture), 'utf8').split('\n').findIndex((l) => l.includes(text));
  if (index < 0) throw new Error(`${fixture} has no line containing ${JSON.stringify(text)}`);
  return index + 1;
}

/** "outcome: message" for assertion messages. */
export function describeResult(result: GuestResult): string {
  return `${result.outcome}${result.message ? `: ${result.message}` : ''}${result.output ? `\noutput: ${JSON.stringify(result.output)}` : ''}`;
}
