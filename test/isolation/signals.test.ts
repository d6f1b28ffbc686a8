// What signals do to a run, through the CLI with fixtures/signals.c: SIGINT
// or SIGTERM to the runner, and Ctrl-C (SIGINT to its whole process group),
// stop the run while its workers are inside KVM_RUN. The runner kills its
// workers, writes the report of what finished marked incomplete (through a
// temporary file renamed over the old report), removes its temporary files
// and exits 130 or 143. When the runner itself is killed (SIGKILL), its
// workers die with it and the previous report stays in place.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { JsonReport } from '../../src/report/json.js';
import { PROGRESS, PROGRESS_FILE_ENV } from '../../src/runner/protocol.js';
import { guestSkipReason, guestTest } from '../helpers/kvm.js';
import { parseXmlDocument } from '../report/xml.js';
import { buildFixture, childPids, type CliRun, environOf, holdsKvmVm, isAlive, readProgress, runCli, scratchDir, sleep } from './helpers.js';

let elf: string;

before(() => {
  if (guestSkipReason()) return;
  elf = buildFixture('signals.elf', ['signals.c']);
});

/** Tests selected by --filter run_: 8 quick, 24 that take 300 ms each, 1 ignored. */
const RUN_TESTS = 33;
/** After a worker has sent a batch's results: time for the runner to take them in. */
const SETTLE_MS = 300;
const POLL_MS = 20;

interface Watch {
  /** Every worker process seen. */
  pids: Set<number>;
  /** Resolves once some worker has sent the results of a batch (its progress moved on to a later batch). */
  batchDone: Promise<void>;
  /** Resolves once the runner has exited. */
  finished: Promise<void>;
}

function watchWorkers(child: ChildProcess): Watch {
  const pids = new Set<number>();
  let resolveBatch!: () => void;
  const batchDone = new Promise<void>((resolve) => (resolveBatch = resolve));
  const finished = (async () => {
    const firstBatch = new Map<number, number>();
    while (child.exitCode === null && child.signalCode === null) {
      for (const pid of childPids(child.pid!)) {
        pids.add(pid);
        const path = environOf(pid, PROGRESS_FILE_ENV);
        const progress = path ? readProgress(path) : undefined;
        if (!progress || progress[PROGRESS.index]! < 0) continue;
        const batch = progress[PROGRESS.batch]!;
        if (!firstBatch.has(pid)) firstBatch.set(pid, batch);
        else if (batch !== firstBatch.get(pid)) resolveBatch();
      }
      await sleep(POLL_MS);
    }
  })();
  return { pids, batchDone, finished };
}

interface Interrupted {
  run: CliRun;
  workers: number[];
  /** The run's own TMPDIR, to check that it left nothing there. */
  tmp: string;
}

/**
 * Runs `kvmtest run --jobs 2 --filter run_ ARGS` with a TMPDIR of its own,
 * and `interrupt`s it once some results are in.
 */
async function interruptedRun(args: readonly string[], interrupt: (child: ChildProcess) => void, detached = false): Promise<Interrupted> {
  const tmp = mkdtempSync(join(scratchDir(), 'tmp-'));
  let watch: Watch | undefined;
  const run = await runCli(
    ['--jobs', '2', '--filter', 'run_', ...args, elf],
    (child) => {
      watch = watchWorkers(child);
      void watch.batchDone.then(() => sleep(SETTLE_MS)).then(() => interrupt(child));
    },
    { env: { ...process.env, TMPDIR: tmp }, detached },
  );
  await watch!.finished;
  return { run, workers: [...watch!.pids], tmp };
}

function describeRun(run: CliRun): string {
  return `status ${run.status} (signal ${run.signal})\n--- stderr:\n${run.stderr}\n--- stdout (end):\n${run.stdout.slice(-2000)}`;
}

/** No worker outlived the run, and the run left nothing in its TMPDIR. */
function assertCleanedUp({ workers, tmp, run }: Interrupted): void {
  assert.ok(workers.length >= 2, `worker processes seen: ${workers.join(', ')}`);
  const alive = workers.filter(isAlive);
  for (const pid of alive) process.kill(pid, 'SIGKILL');
  assert.deepEqual(alive, [], `worker processes still alive after the runner exited; ${describeRun(run)}`);
  assert.deepEqual(readdirSync(tmp), [], 'temporary files left behind');
}

/** A directory with a report from an earlier run in it. */
function previousReport(name: string): { dir: string; file: string } {
  const dir = mkdtempSync(join(scratchDir(), 'out-'));
  const file = join(dir, name);
  writeFileSync(file, 'the previous report\n');
  return { dir, file };
}

describe('signals', () => {
  test('SIGINT to the runner: exit 130, the JSON report of what finished, marked incomplete, in place of the old one', guestTest({ timeout: 60_000 }), async () => {
    const { dir, file } = previousReport('report.json');
    const result = await interruptedRun(['--reporter', 'json', '--output', file], (child) => child.kill('SIGINT'));
    const { run } = result;
    assert.equal(run.status, 130, describeRun(run));
    const report = JSON.parse(readFileSync(file, 'utf8')) as JsonReport;
    assert.equal(report.summary.incomplete, true);
    assert.equal(report.summary.incompleteReason, 'interrupted by SIGINT');
    assert.ok(report.tests.length >= 4 && report.tests.length < RUN_TESTS, `${report.tests.length} tests reported`);
    assert.equal(report.tests.length + report.summary.notRun!, RUN_TESTS);
    for (const t of report.tests) {
      const expected = t.name.startsWith('run_a_') ? 'returned' : t.name.startsWith('run_b_') ? 'timeout' : null;
      assert.equal(t.outcome, expected, `${t.name}: ${t.outcome} ${t.message}`);
    }
    assert.equal(run.stderr, `kvmtest: interrupted by SIGINT; ${report.summary.notRun} test(s) not run\n`);
    assert.deepEqual(readdirSync(dir), ['report.json'], 'no temporary report file left');
    assertCleanedUp(result);
  });

  test('SIGTERM to the runner: exit 143, and TAP ends with "Bail out!"', guestTest({ timeout: 60_000 }), async () => {
    const result = await interruptedRun(['--reporter', 'tap'], (child) => child.kill('SIGTERM'));
    const { run } = result;
    assert.equal(run.status, 143, describeRun(run));
    const lines = run.stdout.trimEnd().split('\n');
    const points = lines.filter((line) => /^(not )?ok \d+ - /.test(line));
    assert.ok(points.length >= 4 && points.length < RUN_TESTS, `${points.length} test points`);
    assert.equal(lines.find((line) => line.startsWith('Bail out!')), `Bail out! interrupted by SIGTERM; ${RUN_TESTS - points.length} of ${RUN_TESTS} tests not run`);
    const count = (match: (point: string) => boolean) => points.filter(match).length;
    assert.deepEqual(lines.slice(-4, -1), [
      `# pass ${count((p) => p.startsWith('ok') && !p.includes(' # SKIP'))}`,
      `# fail ${count((p) => p.startsWith('not ok'))}`,
      `# skip ${count((p) => p.includes(' # SKIP'))}`,
    ]);
    assertCleanedUp(result);
  });

  test('Ctrl-C (SIGINT to the whole process group): exit 130, JUnit says the run is incomplete', guestTest({ timeout: 60_000 }), async () => {
    const { file } = previousReport('junit.xml');
    const result = await interruptedRun(['--reporter', 'junit', '--output', file], (child) => process.kill(-child.pid!, 'SIGINT'), true);
    const { run } = result;
    assert.equal(run.status, 130, describeRun(run));
    const { root, comments } = parseXmlDocument(readFileSync(file, 'utf8'));
    const cases = root.children.flatMap((suite) => suite.children.filter((c) => c.name === 'testcase'));
    assert.equal(cases.length, RUN_TESTS, 'every selected test is a test case, those without a result too');
    assert.equal(root.attributes.tests, String(cases.length), 'the counts are those of the test cases written');
    const notRun = cases.filter((c) => c.children.some((k) => k.name === 'skipped' && k.attributes.message === 'not run: interrupted by SIGINT'));
    const ran = cases.length - notRun.length;
    assert.ok(ran >= 4 && ran < RUN_TESTS, `${ran} tests got a result`);
    const note = `interrupted by SIGINT; ${notRun.length} of ${RUN_TESTS} tests did not run`;
    assert.deepEqual(comments, [` kvmtest: incomplete run: ${note} `]);
    for (const suite of root.children) {
      const property = suite.children.find((c) => c.name === 'properties')?.children[0];
      assert.deepEqual(property?.attributes, { name: 'kvmtest.incomplete', value: note });
    }
    assertCleanedUp(result);
  });

  test('pretty: the summary so far, then a line saying how many tests did not run', guestTest({ timeout: 60_000 }), async () => {
    const result = await interruptedRun([], (child) => child.kill('SIGINT'));
    const { run } = result;
    assert.equal(run.status, 130, describeRun(run));
    const lines = run.stdout.trimEnd().split('\n');
    const ran = lines.filter((line) => /^test \S+ \.\.\. /.test(line)).length;
    const summary = /^test result: (ok|FAILED)\. (\d+) passed; (\d+) failed; (\d+) ignored; 0 measured; \d+ filtered out; finished in \d+\.\d\ds$/.exec(lines.at(-2)!);
    assert.ok(summary, lines.at(-2));
    assert.equal(Number(summary[2]) + Number(summary[3]) + Number(summary[4]), ran);
    assert.equal(lines.at(-1), `test run incomplete: interrupted by SIGINT; ${RUN_TESTS - ran} of ${RUN_TESTS} tests did not run`);
    assert.equal(run.stderr, '', 'the report says it all');
    assertCleanedUp(result);
  });

  test('SIGKILL of the runner: its workers die at once, inside KVM_RUN, and the previous report stays', guestTest({ timeout: 60_000 }), async () => {
    const { file } = previousReport('report.json');
    const workers = new Set<number>();
    let killedAt = 0;
    const watcher: { done?: Promise<void> } = {};
    // A killed runner leaves its workers' directory: in a TMPDIR of its own, removed with the scratch directory.
    const env = { ...process.env, TMPDIR: mkdtempSync(join(scratchDir(), 'tmp-')) };
    // Not awaited yet: the run's output pipes stay open as long as a worker lives.
    const run = runCli(['--jobs', '2', '--filter', 'hold_', '--reporter', 'json', '--output', file, elf], (child) => {
      watcher.done = (async () => {
        // Both workers inside a 5 s test: then kill the runner.
        const deadline = Date.now() + 30_000;
        while (child.exitCode === null && child.signalCode === null && Date.now() < deadline) {
          const pids = childPids(child.pid!);
          for (const pid of pids) workers.add(pid);
          const running = pids.filter((pid) => {
            const path = environOf(pid, PROGRESS_FILE_ENV);
            const progress = path ? readProgress(path) : undefined;
            return holdsKvmVm(pid) && progress !== undefined && progress[PROGRESS.index]! >= 0;
          });
          if (running.length === 2) {
            await sleep(SETTLE_MS);
            killedAt = Date.now();
            child.kill('SIGKILL');
            return;
          }
          await sleep(POLL_MS);
        }
      })();
    }, { env });
    await watcher.done;
    assert.ok(killedAt > 0, `never saw both workers running a test (workers: ${[...workers].join(', ')})`);
    // A worker left alone would spin on for seconds; the parent-death signal ends it at once.
    let alive = [...workers].filter(isAlive);
    while (alive.length > 0 && Date.now() - killedAt < 2000) {
      await sleep(POLL_MS);
      alive = alive.filter(isAlive);
    }
    for (const pid of alive) process.kill(pid, 'SIGKILL');
    assert.equal((await run).signal, 'SIGKILL');
    assert.deepEqual(alive, [], 'worker processes outlived their runner by 2 s');
    assert.equal(readFileSync(file, 'utf8'), 'the previous report\n');
  });
});
