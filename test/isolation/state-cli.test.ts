// Whatever a test changes leaves no trace in the next test, in both
// isolation modes, through the real CLI: fixtures/state.c's dirty tests
// change memory, registers, MSRs, descriptor tables, page tables, XMM and
// debug registers, and its checks (run after them by name order, in the one
// worker that --jobs 1 gives) find everything as at load. Both layouts run:
// every check after every dirty test, and all dirty tests before all checks.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { loadTestTable } from '../../src/image/test-table.js';
import { ISOLATION_MODES } from '../../src/runner/executor.js';
import { guestSkipReason, guestTest } from '../helpers/kvm.js';
import { buildState, describeFailures, jsonReport, runCli, STATE_LAYOUTS, type StateLayout } from './helpers.js';

const LAYOUTS = Object.keys(STATE_LAYOUTS) as StateLayout[];
const binaries = new Map<StateLayout, string>();

before(() => {
  if (guestSkipReason()) return;
  for (const layout of LAYOUTS) binaries.set(layout, buildState(layout));
});

for (const layout of LAYOUTS) {
  describe(`state fixture, ${layout} layout`, () => {
    for (const isolation of ISOLATION_MODES) {
      test(`--isolation ${isolation}: every check finds the machine as at load`, guestTest({ timeout: 120_000 }), async () => {
        const elf = binaries.get(layout)!;
        const expected = loadTestTable(elf).map((t) => t.name).sort();
        const run = await runCli(['--jobs', '1', '--isolation', isolation, '--reporter', 'json', elf]);
        const report = jsonReport(run);
        assert.deepEqual(report.tests.map((t) => t.name), expected, 'every test has a result, in name order');
        const failures = describeFailures(report.tests);
        if (failures) assert.fail(`with --isolation ${isolation}, tests failed:\n${failures}`);
        assert.equal(run.status, 0, run.stderr);
      });
    }
  });
}
