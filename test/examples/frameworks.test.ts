// The examples for JavaScript test frameworks, run as their users run them:
// examples/node-test with `node --test`, examples/vitest with Vitest's own
// CLI and the example's config (pool: 'forks'). Every test in them passes; a
// deliberately failing test (test/examples/fixtures) shows the guest's
// failed kassert in each framework's report; and Vitest's worker-thread pool
// fails every guest with kvmtest's message saying to use pool: 'forks' (a
// test's runGuest, and the openMachine in a block's beforeAll).
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { guestTest } from '../helpers/kvm.js';
import { type CommandResult, describeRun, ROOT, runCommand } from '../cli/helpers.js';

const NODE_TEST_EXAMPLE = join(ROOT, 'examples', 'node-test');
const VITEST_EXAMPLE = join(ROOT, 'examples', 'vitest');
const FIXTURES = join(ROOT, 'test', 'examples', 'fixtures');
const VITEST = join(ROOT, 'node_modules', 'vitest', 'vitest.mjs');

/** The failed kassert of checked_div(42, 0) in the examples' guest.c, as runGuest's message has it. */
const KASSERT_MESSAGE = /assertion failed at guest\.c:\d+: b != 0\n\s*message: checked_div\(42, 0\)/;

const work = mkdtempSync(join(tmpdir(), 'kvmtest-frameworks-'));
process.on('exit', () => rmSync(work, { recursive: true, force: true }));

/**
 * This process's environment, less what makes a node:test child of this
 * runner (NODE_TEST_CONTEXT: a nested `node --test` would report to it
 * instead of printing) and colours.
 */
function frameworkEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1' };
  delete env['NODE_TEST_CONTEXT'];
  delete env['FORCE_COLOR'];
  return env;
}

/** The names given to test('...') in a test file, in order. */
function declaredTests(file: string): string[] {
  return [...readFileSync(file, 'utf8').matchAll(/^\s*test\('([^']+)'/gm)].map((m) => m[1]!);
}

function nodeTest(dir: string): Promise<CommandResult> {
  return runCommand(process.execPath, ['--test', '--test-reporter=spec', dir], { cwd: ROOT, env: frameworkEnv() });
}

interface VitestReport {
  success: boolean;
  numPassedTests: number;
  numFailedTests: number;
  testResults: Array<{ assertionResults: Array<{ title: string; ancestorTitles: string[]; status: string; failureMessages: string[] }> }>;
}

let reports = 0;

/** `vitest run` with Vitest's CLI in `root`, the example's config and a JSON report. */
async function vitest(root: string, extra: readonly string[] = []): Promise<{ result: CommandResult; report: VitestReport }> {
  const output = join(work, `vitest-${++reports}.json`);
  const result = await runCommand(
    process.execPath,
    [VITEST, 'run', '--root', root, '--config', join(VITEST_EXAMPLE, 'vitest.config.mjs'), '--reporter=json', `--outputFile=${output}`, ...extra],
    { cwd: root, env: frameworkEnv() },
  );
  let report: VitestReport;
  try {
    report = JSON.parse(readFileSync(output, 'utf8')) as VitestReport;
  } catch (err) {
    throw new Error(`no JSON report from Vitest (${(err as Error).message}):\n${describeRun(result)}`);
  }
  return { result, report };
}

const results = (report: VitestReport) => report.testResults.flatMap((file) => file.assertionResults);

/** The examples' describe block whose tests share one machine (openMachine, opened in beforeAll). */
const KEPT_MACHINE_BLOCK = 'on one machine kept open (openMachine)';
/** How kvmtest's error in a worker thread begins. */
const WORKER_THREAD_MESSAGE =
  /kvmtest runs guests on a process's main thread only \(its timeouts are a signal aimed at that thread\), not in a worker thread\. Under Vitest, set pool: 'forks' in vitest\.config/;

const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

function partition<T>(items: readonly T[], test: (item: T) => boolean): [T[], T[]] {
  return [items.filter(test), items.filter((item) => !test(item))];
}

describe('node:test', () => {
  test('examples/node-test: node --test passes every test in it', guestTest(), async () => {
    const result = await nodeTest(NODE_TEST_EXAMPLE);
    assert.equal(result.status, 0, describeRun(result));
    const names = declaredTests(join(NODE_TEST_EXAMPLE, 'guest.test.mjs'));
    assert.ok(names.length >= 4, names.join('\n'));
    for (const name of names) assert.ok(result.stdout.includes(`✔ ${name} (`), `"${name}" passed:\n${result.stdout}`);
    assert.match(result.stdout, new RegExp(`^ℹ pass ${names.length}$`, 'm'));
    assert.match(result.stdout, /^ℹ fail 0$/m);
  });

  test("a guest's failed kassert fails the node:test test with kvmtest's message", guestTest(), async () => {
    const result = await nodeTest(join(FIXTURES, 'node-test'));
    assert.equal(result.status, 1, describeRun(result));
    assert.match(result.stdout, /✖ checked_div: 42 \/ 0 \(/);
    assert.match(result.stdout, new RegExp(`AssertionError \\[ERR_ASSERTION\\]: assert-failed: ${KASSERT_MESSAGE.source}`));
    assert.match(result.stdout, /^ℹ fail 1$/m);
  });
});

describe('Vitest', () => {
  test("examples/vitest: Vitest's CLI with the example's config (pool: 'forks') passes every test in it", guestTest(), async () => {
    const config = readFileSync(join(VITEST_EXAMPLE, 'vitest.config.mjs'), 'utf8');
    assert.match(config, /pool: 'forks'/);
    const { result, report } = await vitest(VITEST_EXAMPLE);
    assert.equal(result.status, 0, describeRun(result));
    const names = declaredTests(join(VITEST_EXAMPLE, 'guest.test.mjs'));
    assert.ok(names.length >= 4, names.join('\n'));
    assert.deepEqual(
      results(report).map((t) => [t.title, t.status]),
      names.map((name) => [name, 'passed']),
    );
    assert.equal(report.success, true);
  });

  test("a guest's failed kassert fails the Vitest test with kvmtest's message", guestTest(), async () => {
    const { result, report } = await vitest(join(FIXTURES, 'vitest'));
    assert.equal(result.status, 1, describeRun(result));
    const [failed, ...others] = results(report);
    assert.deepEqual(others, []);
    assert.equal(failed?.title, 'checked_div: 42 / 0');
    assert.equal(failed.status, 'failed');
    assert.match(failed.failureMessages.join('\n'), new RegExp(`^AssertionError: ${KASSERT_MESSAGE.source}: expected 'assert-failed' to be 'returned'`));
  });

  test("Vitest's threads pool: every guest fails with kvmtest's error, which says to use pool: 'forks'", guestTest(), async () => {
    // The default reporter as well, for the failed beforeAll (the JSON report leaves suites' errors out).
    const { result, report } = await vitest(VITEST_EXAMPLE, ['--pool', 'threads', '--reporter=default']);
    assert.equal(result.status, 1, describeRun(result));
    const all = results(report);
    const [kept, single] = partition(all, (t) => t.ancestorTitles.includes(KEPT_MACHINE_BLOCK));
    assert.ok(single.length >= 4);
    for (const t of single) {
      assert.equal(t.status, 'failed', t.title);
      assert.match(t.failureMessages.join('\n'), new RegExp(`^Error: ${WORKER_THREAD_MESSAGE.source}`), t.title);
    }
    // openMachine throws in the block's beforeAll: Vitest fails the block with the error and skips its tests.
    assert.ok(kept.length >= 2);
    for (const t of kept) assert.equal(t.status, 'skipped', t.title);
    assert.match(result.stderr, new RegExp(`FAIL  guest\\.test\\.mjs > ${escape(KEPT_MACHINE_BLOCK)}\nError: ${WORKER_THREAD_MESSAGE.source}`));
  });
});
