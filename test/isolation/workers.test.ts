// The runner at scale, through the CLI with fixtures/workers.c: a worker
// killed from outside fails only the test it was running and a new worker
// runs the rest; a hung guest is stopped at its timeout (reporting where it
// was) while the other worker goes on; --jobs N runs N worker processes,
// each running guests; --bail stops early and still writes the report; a
// worker that dies while starting is replaced, and workers that keep dying
// stop the run with exit status 2 after the report of what finished.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { JsonReport } from '../../src/report/json.js';
import { PROGRESS, PROGRESS_FILE_ENV } from '../../src/runner/protocol.js';
import { guestSkipReason, guestTest } from '../helpers/kvm.js';
import {
  buildFixture,
  byName,
  childPids,
  describeFailures,
  environOf,
  holdsKvmVm,
  jsonReport,
  readProgress,
  runCli,
  scratchDir,
  sleep,
} from './helpers.js';

let elf: string;
let signalsElf: string;

before(() => {
  if (guestSkipReason()) return;
  elf = buildFixture('workers.elf', ['workers.c']);
  signalsElf = buildFixture('signals.elf', ['signals.c']);
});

/**
 * True while a worker process cannot have said it is ready: it is not yet
 * running the worker's script, or has not loaded koffi, which the script
 * imports before anything else runs.
 */
function startingUp(pid: number): boolean {
  try {
    const script = readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('worker-main.js');
    return !script || !readFileSync(`/proc/${pid}/maps`, 'utf8').includes('koffi');
  } catch {
    return false;
  }
}

/**
 * Kills up to `count` worker processes of a run, each as soon as it appears
 * and while it is still starting up; resolves to the pids killed.
 */
async function killWhileStarting(child: ChildProcess, count: number): Promise<number[]> {
  const killed: number[] = [];
  const seen = new Set<number>();
  while (child.exitCode === null && child.signalCode === null && killed.length < count) {
    for (const pid of childPids(child.pid!)) {
      if (seen.has(pid)) continue;
      seen.add(pid);
      if (killed.length < count && startingUp(pid)) {
        process.kill(pid, 'SIGKILL');
        killed.push(pid);
      }
    }
    // As often as the event loop allows: a worker takes a few hundred ms to start.
    await new Promise((resolve) => setImmediate(resolve));
  }
  return killed;
}

/** How long a test must have been running before the kill test takes it for the spinning one. */
const RUNNING_FOR_MS = 1000;
const POLL_MS = 20;

describe('worker processes', () => {
  test('a worker killed while running a test fails only that test; a new worker runs the rest', guestTest({ timeout: 90_000 }), async () => {
    let killed: number | undefined;
    const workers = new Set<number>();
    const watcher: { done?: Promise<void> } = {};
    const run = await runCli(['--jobs', '1', '--filter', 'kill_', '--reporter', 'json', elf], (child) => {
      watcher.done = (async () => {
        // Same test running (heartbeat unchanged) for RUNNING_FOR_MS: it is the spinning one.
        let seen: { pid: number; beat: number; since: number } | undefined;
        const deadline = Date.now() + 30_000;
        while (child.exitCode === null && child.signalCode === null) {
          for (const pid of childPids(child.pid!)) {
            workers.add(pid);
            if (killed !== undefined) continue;
            const path = environOf(pid, PROGRESS_FILE_ENV);
            const progress = path ? readProgress(path) : undefined;
            if (!progress || progress[PROGRESS.index]! < 0) continue;
            const beat = progress[PROGRESS.heartbeat]!;
            if (seen?.pid !== pid || seen.beat !== beat) seen = { pid, beat, since: Date.now() };
            else if (Date.now() - seen.since >= RUNNING_FOR_MS) {
              process.kill(pid, 'SIGKILL');
              killed = pid;
            }
          }
          if (killed === undefined && Date.now() > deadline) {
            child.kill('SIGKILL');
            break;
          }
          await sleep(POLL_MS);
        }
      })();
    });
    await watcher.done;
    assert.ok(killed !== undefined, `never found the worker running the spinning test (workers seen: ${[...workers].join(', ')}); stderr:\n${run.stderr}`);

    const tests = byName(jsonReport(run));
    assert.equal(tests.size, 12, 'every test has a result');
    const victim = tests.get('kill_b_spin_until_killed')!;
    assert.equal(victim.status, 'failed');
    assert.match(victim.message ?? '', /worker process .*killed by signal SIGKILL/, 'the message says the worker was killed');
    const others = [...tests.values()].filter((t) => t.name !== victim.name);
    const failures = describeFailures(others);
    if (failures) assert.fail(`tests other than the one whose worker was killed failed:\n${failures}`);
    // kill_c_quick_01 shared the killed worker's batch, after the spinning test.
    assert.equal(tests.get('kill_c_quick_01')?.status, 'passed');
    assert.ok([...workers].some((pid) => pid !== killed), `no new worker after the kill (workers seen: ${[...workers].join(', ')})`);
    assert.equal(run.status, 1, run.stderr);
  });

  test('a worker killed while idle (its tests done, others still running) loses nothing', guestTest({ timeout: 60_000 }), async () => {
    // hang_a_spin holds one worker for 2 s; the other runs the 40 quick tests, then waits idle.
    let killed: number | undefined;
    const watcher: { done?: Promise<void> } = {};
    const run = await runCli(['--jobs', '2', '--filter', 'hang_', '--reporter', 'json', elf], (child) => {
      watcher.done = (async () => {
        const idleSince = new Map<number, { beat: number; since: number }>();
        while (child.exitCode === null && child.signalCode === null && killed === undefined) {
          for (const pid of childPids(child.pid!)) {
            const path = environOf(pid, PROGRESS_FILE_ENV);
            const progress = path ? readProgress(path) : undefined;
            // Between tests (-1) after running some (heartbeat > 0), and staying so.
            if (!progress || progress[PROGRESS.index] !== -1 || progress[PROGRESS.heartbeat] === 0) {
              idleSince.delete(pid);
              continue;
            }
            const beat = progress[PROGRESS.heartbeat]!;
            const seen = idleSince.get(pid);
            if (seen?.beat !== beat) idleSince.set(pid, { beat, since: Date.now() });
            else if (Date.now() - seen.since >= 300) {
              process.kill(pid, 'SIGKILL');
              killed = pid;
              break;
            }
          }
          await sleep(POLL_MS);
        }
      })();
    });
    await watcher.done;
    assert.ok(killed !== undefined, `never found an idle worker; stderr:\n${run.stderr}`);
    const tests = byName(jsonReport(run));
    assert.equal(tests.size, 41, 'every test has a result');
    assert.equal(tests.get('hang_a_spin')?.outcome, 'timeout');
    const failures = describeFailures([...tests.values()].filter((t) => t.name !== 'hang_a_spin'));
    if (failures) assert.fail(`quick tests failed:\n${failures}`);
    assert.equal(run.status, 1, run.stderr);
  });

  test('a hung guest stops at its timeout with its RIP, and the other worker runs the rest', guestTest({ timeout: 60_000 }), async () => {
    const run = await runCli(['--jobs', '2', '--filter', 'hang_', '--reporter', 'json', elf]);
    const tests = byName(jsonReport(run));
    assert.equal(tests.size, 41, 'every test has a result');
    const hung = tests.get('hang_a_spin')!;
    assert.equal(hung.status, 'failed');
    assert.equal(hung.outcome, 'timeout');
    assert.match(hung.message ?? '', /timed out after 2000 ms/);
    assert.match(hung.message ?? '', /kt_test_hang_a_spin\S*( at \S+:\d+)? \(0x[0-9a-f]+\)/, 'the message gives the RIP, in the spinning function');
    const failures = describeFailures([...tests.values()].filter((t) => t !== hung));
    if (failures) assert.fail(`quick tests failed:\n${failures}`);
    // Generous: the spinning test alone takes 2 s; the watchdog would step in only after 12 s.
    assert.ok(run.elapsedMs < 10_000, `the run took ${Math.round(run.elapsedMs)} ms`);
    assert.equal(run.status, 1, run.stderr);
  });

  for (const jobs of [1, 3]) {
    test(`--jobs ${jobs} runs guests in ${jobs} worker process${jobs > 1 ? 'es' : ''}`, guestTest({ timeout: 60_000 }), async () => {
      // Each jobs_ test holds its worker for 500 ms, then times out.
      const count = 2 * jobs;
      const filters = Array.from({ length: count }, (_, i) => ['--filter', `jobs_hold_0${i + 1}`]).flat();
      const withVm = new Set<number>();
      let mostAtOnce = 0;
      const watcher: { done?: Promise<void> } = {};
      const run = await runCli(['--jobs', String(jobs), ...filters, '--exact', '--reporter', 'json', elf], (child) => {
        watcher.done = (async () => {
          while (child.exitCode === null && child.signalCode === null) {
            const pids = childPids(child.pid!);
            mostAtOnce = Math.max(mostAtOnce, pids.length);
            for (const pid of pids) if (holdsKvmVm(pid)) withVm.add(pid);
            await sleep(POLL_MS);
          }
        })();
      });
      await watcher.done;
      const report = jsonReport(run);
      assert.equal(report.tests.length, count);
      for (const t of report.tests) assert.equal(t.outcome, 'timeout', `${t.name}: ${t.outcome}: ${t.message}`);
      assert.equal(withVm.size, jobs, `worker processes seen running a VM: ${[...withVm].join(', ') || 'none'}`);
      assert.ok(mostAtOnce <= jobs, `${mostAtOnce} worker processes at once with --jobs ${jobs}`);
    });
  }

  test('--bail 2 stops after two failures and still writes the report', guestTest({ timeout: 60_000 }), async () => {
    const total = 24;
    for (const reporter of ['json', 'junit']) {
      const output = join(scratchDir(), `bail.${reporter}`);
      const run = await runCli(['--jobs', '1', '--bail', '2', '--filter', 'bail_', '--reporter', reporter, '--output', output, elf]);
      assert.equal(run.status, 1, run.stderr);
      assert.match(run.stderr, /--bail/, 'says why tests were not run');
      assert.ok(existsSync(output), `--reporter ${reporter}: no report at ${output}`);
      const text = readFileSync(output, 'utf8');
      if (reporter === 'json') {
        const report = JSON.parse(text) as JsonReport;
        assert.ok(report.summary.failed >= 2, `${report.summary.failed} failures reported`);
        assert.ok(report.tests.length < total, `all ${total} tests ran despite --bail`);
        for (const t of report.tests) {
          assert.equal(t.status, t.name.startsWith('bail_a_fail_') ? 'failed' : 'passed', `${t.name}: ${t.message}`);
        }
      } else {
        assert.match(text, /<testsuite[\s>]/);
        assert.match(text, /bail_a_fail_01/);
      }
    }
  });

  test('a worker that dies while starting is replaced, and the run goes on', guestTest({ timeout: 60_000 }), async () => {
    const watcher: { killed?: Promise<number[]> } = {};
    const run = await runCli(['--jobs', '2', '--filter', 'kill_c_quick', '--reporter', 'json', elf], (child) => {
      watcher.killed = killWhileStarting(child, 2);
    });
    const killed = await watcher.killed!;
    assert.equal(killed.length, 2, `killed ${killed.length} workers while they started; stderr:\n${run.stderr}`);
    assert.equal(run.status, 0, run.stderr);
    assert.equal(run.stderr, '');
    const tests = jsonReport(run).tests;
    assert.equal(tests.length, 10);
    const failures = describeFailures(tests);
    if (failures) assert.fail(`tests failed:\n${failures}`);
  });

  test('workers that keep dying while starting stop the run: exit 2, the message, and the report of what finished, marked incomplete', guestTest({ timeout: 60_000 }), async () => {
    const output = join(scratchDir(), 'dying.json');
    const watcher: { killed?: Promise<number[]> } = {};
    const run = await runCli(['--jobs', '1', '--filter', 'run_', '--reporter', 'json', '--output', output, signalsElf], (child) => {
      watcher.killed = killWhileStarting(child, 3);
    });
    assert.equal((await watcher.killed!).length, 3);
    assert.equal(run.status, 2, run.stderr);
    assert.equal(run.stderr, 'kvmtest: worker processes died 3 times outside any test; the last one was killed by signal SIGKILL while starting\n');
    const report = JSON.parse(readFileSync(output, 'utf8')) as JsonReport;
    // Only the ignored test has a result: nothing else ran.
    assert.deepEqual(report.tests.map((t) => [t.name, t.status]), [['run_z_ignored', 'ignored']]);
    assert.equal(report.summary.incomplete, true);
    assert.match(report.summary.incompleteReason!, /^worker processes died 3 times outside any test/);
    assert.equal(report.summary.notRun, 32);
  });
});
