// Shared by the tests of test files (NAME.kvmtest.ts): runs `kvmtest run`
// on the fixtures in test/testfile/fixtures (kept as TypeScript source, as a
// user writes them) with a build cache of its own for each run, so that no
// run finds another's builds.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type CommandResult, describeRun, type JsonReport, kvmtest, ROOT, tempDir } from '../cli/helpers.js';
import type { JsonTest } from '../../src/report/json.js';

export const FIXTURES = join(ROOT, 'test', 'testfile', 'fixtures');

/** A fixture's path, as given to kvmtest run (from the package root, where the runs start). */
export function fixture(name: string): string {
  return join('test', 'testfile', 'fixtures', name);
}

/** A new, empty build cache directory. */
export function freshCache(): string {
  return mkdtempSync(join(tempDir(), 'cache-'));
}

export interface RunFileOptions {
  /** The build cache (default: a new one for this run). */
  cache?: string;
  /** Added to this process's environment. */
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/** `kvmtest ARGS...` with its own build cache, and CI unset unless `env` sets it. */
export function runKvmtest(args: readonly string[], options: RunFileOptions = {}): Promise<CommandResult> {
  const env: NodeJS.ProcessEnv = { ...process.env, KVMTEST_CACHE_DIR: options.cache ?? freshCache(), ...options.env };
  if (options.env?.['CI'] === undefined) delete env['CI'];
  return kvmtest(args, options.cwd === undefined ? { env } : { env, cwd: options.cwd });
}

/** `kvmtest run --reporter json ARGS...`: the exit status, the report, and its tests by name. */
export async function runJsonFile(
  args: readonly string[],
  options: RunFileOptions = {},
): Promise<{ result: CommandResult; report: JsonReport; byName: Map<string, JsonTest> }> {
  const result = await runKvmtest(['run', '--reporter', 'json', ...args], options);
  let report: JsonReport;
  try {
    report = JSON.parse(result.stdout) as JsonReport;
  } catch (err) {
    throw new Error(`the JSON report does not parse (${(err as Error).message}):\n${describeRun(result)}`);
  }
  return { result, report, byName: new Map(report.tests.map((t) => [t.name, t])) };
}

/** The test named `name` in a run's results; fails the test with the whole report when missing. */
export function resultOf(byName: ReadonlyMap<string, JsonTest>, name: string): JsonTest {
  const found = byName.get(name);
  assert.ok(found, `no result for "${name}"; the results are for: ${[...byName.keys()].join(', ')}`);
  return found;
}

/** Asserts a test passed, showing its message and output when it did not. */
export function assertPassed(byName: ReadonlyMap<string, JsonTest>, name: string): void {
  const test = resultOf(byName, name);
  assert.equal(test.status, 'passed', `"${name}" ${test.status} (${test.outcome}): ${test.message}\n${test.output}`);
}

/** Asserts a test failed, and returns its message. */
export function failureOf(byName: ReadonlyMap<string, JsonTest>, name: string): string {
  const test = resultOf(byName, name);
  assert.equal(test.status, 'failed', `"${name}" should have failed but ${test.status}: ${test.message}`);
  assert.ok(test.message !== null, `"${name}" failed without a message`);
  return test.message;
}

/** The 1-based line of a fixture that holds `text` (once), so tests need not count lines. */
export function lineOf(name: string, text: string): number {
  const all = readFileSync(join(FIXTURES, name), 'utf8').split('\n');
  const found = all.flatMap((line, i) => (line.includes(text) ? [i + 1] : []));
  assert.equal(found.length, 1, `${name} should hold ${JSON.stringify(text)} on one line, not ${found.length}`);
  return found[0]!;
}
