// Whatever a test changes leaves no trace in the next test, in both
// isolation modes, through the real CLI: fixtures/state.c's dirty tests
// change memory, registers, MSRs, descriptor tables, page tables, XMM and
// debug registers, and its checks (run after them by name order, in the one
// worker that --jobs 1 gives) find everything as at load. Both layouts run:
// every check after every dirty test, and all dirty tests before all checks.
// fixtures/outcomes.c does the same after the outcomes that make the
// executor drop its machine.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { loadTestTable } from '../../src/image/test-table.js';
import { ISOLATION_MODES } from '../../src/runner/executor.js';
import { guestSkipReason, guestTest } from '../helpers/kvm.js';
import {
  afterTest,
  buildFixture,
  buildState,
  byName,
  childPids,
  describeFailures,
  jsonReport,
  outcomeTests,
  runCli,
  sleep,
  STATE_LAYOUTS,
  type StateLayout,
} from './helpers.js';

const LAYOUTS = Object.keys(STATE_LAYOUTS) as StateLayout[];
const binaries = new Map<StateLayout, string>();
let outcomes: string;

before(() => {
  if (guestSkipReason()) return;
  for (const layout of LAYOUTS) binaries.set(layout, buildState(layout));
  outcomes = buildFixture('outcomes.elf', ['outcomes.c']);
});

/** Runs `kvmtest run --jobs 1 ...` and returns the report and the worker pids seen meanwhile. */
async function runInOneWorker(isolation: string, elf: string) {
  const workers = new Set<number>();
  const watcher: { done?: Promise<void> } = {};
  const run = await runCli(['--jobs', '1', '--isolation', isolation, '--reporter', 'json', elf], (child: ChildProcess) => {
    watcher.done = (async () => {
      while (child.exitCode === null && child.signalCode === null) {
        for (const pid of childPids(child.pid!)) workers.add(pid);
        await sleep(20);
      }
    })();
  });
  await watcher.done;
  return { run, report: jsonReport(run), workers };
}

for (const layout of LAYOUTS) {
  describe(`state fixture, ${layout} layout`, () => {
    for (const isolation of ISOLATION_MODES) {
      test(`--isolation ${isolation}: every check finds the machine as at load`, guestTest({ timeout: 120_000 }), async () => {
        const elf = binaries.get(layout)!;
        const expected = loadTestTable(elf).map((t) => t.name).sort();
        const { run, report, workers } = await runInOneWorker(isolation, elf);
        assert.deepEqual(report.tests.map((t) => t.name), expected, 'every test has a result, in name order');
        const failures = describeFailures(report.tests);
        if (failures) assert.fail(`with --isolation ${isolation}, tests failed:\n${failures}`);
        assert.equal(workers.size, 1, 'all tests ran one after another in one worker process');
        // The fault tests pass only if the fault was #UD; it must also be reported where it happened.
        for (const t of report.tests.filter((t) => t.fault)) {
          assert.equal(t.fault!.name, t.name.includes('fault_pf') ? '#PF' : '#UD', t.name);
          assert.match(t.fault!.location, new RegExp(`^kt_test_${t.name}\\b`), `${t.name}: fault reported at ${t.fault!.location}`);
        }
        assert.equal(run.status, 0, run.stderr);
      });
    }
  });
}

describe('outcomes fixture', () => {
  for (const isolation of ISOLATION_MODES) {
    test(`--isolation ${isolation}: after a timeout, triple fault, emulation failure or half-done read, the next test in the worker passes`, guestTest({ timeout: 60_000 }), async () => {
      const { report, workers } = await runInOneWorker(isolation, outcomes);
      const tests = byName(report);
      const firsts = outcomeTests();
      assert.equal(tests.size, 2 * firsts.length);
      for (const [name, outcome] of firsts) {
        const first = tests.get(name)!;
        if (outcome) assert.equal(first.outcome, outcome, `${name}: ${first.message}`);
        const next = tests.get(afterTest(name))!;
        assert.equal(next.status, 'passed', `after ${name} (${first.outcome}): ${next.outcome}: ${next.message}`);
      }
      assert.match(tests.get('t1_a_timeout')!.message ?? '', /timed out after 300 ms; the guest was at kt_test_t1_a_timeout/);
      assert.equal(workers.size, 1, 'all tests ran one after another in one worker process');
    });
  }
});
