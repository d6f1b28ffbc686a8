// kvmtest run on a shared object built with `kvmtest cc -shared`: the
// worker loads it into its own process and runs each test of its table in
// mirror mode, through the runtime's kvmtest_entry, with the record's ports
// and RAM ranges; results as for a test binary, in both isolation modes.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { CAN_BUILD, describeRun, kvmtest, ROOT, runJson, tempDir } from '../cli/helpers.js';
import { guestTest } from '../helpers/kvm.js';
import type { JsonReport } from '../../src/report/json.js';

const SEED = join(ROOT, 'test', 'mirror', 'fixtures', 'seed.c');

describe('kvmtest run on a shared object (mirror mode)', () => {
  let so = '';
  const reports = new Map<string, JsonReport>();

  before(async () => {
    if (!CAN_BUILD || guestTest().skip) return;
    so = join(tempDir(), 'seed.so');
    const built = await kvmtest(['cc', '-shared', '-o', so, SEED]);
    assert.equal(built.status, 0, describeRun(built));
    for (const isolation of ['snapshot', 'vm']) {
      const { result, report } = await runJson(['--isolation', isolation, so]);
      assert.equal(result.status, 1, `one test fails on purpose:\n${describeRun(result)}`);
      reports.set(isolation, report);
    }
  });

  for (const isolation of ['snapshot', 'vm']) {
    test(`the seed's tests pass from a .so (--isolation ${isolation}): a configured port, sprint with a RAM range, should_panic`, guestTest(), () => {
      const byName = new Map(reports.get(isolation)!.tests.map((t) => [t.name, t]));
      for (const name of ['use_the_port', 'print_works', 'panic_test']) {
        assert.equal(byName.get(name)?.status, 'passed', `${name}: ${JSON.stringify(byName.get(name))}`);
      }
      assert.equal(byName.get('print_works')!.output, 'sprint!, sprintln! works\n');
      assert.equal(byName.get('panic_test')!.outcome, 'panicked');
    });

    test(`a failure is reported with the function and the address (--isolation ${isolation})`, guestTest(), () => {
      const failed = reports.get(isolation)!.tests.find((t) => t.name === 'faults_on_a_stray_pointer')!;
      assert.equal(failed.status, 'failed');
      assert.match(failed.message ?? '', /#PF \(page fault\) at kt_test_faults_on_a_stray_pointer.* \(0x[0-9a-f]+\): supervisor-mode read from a not-present page .*at 0xdead0000/);
      const assertion = reports.get(isolation)!.tests.find((t) => t.name === 'fails_an_assert')!;
      assert.equal(assertion.status, 'failed');
      assert.match(assertion.message ?? '', /assertion failed at .*seed\.c:\d+: \(1 \+ 1\) == 3/);
    });

    test(`a test that asks for a heap fails saying mirror mode has none yet (--isolation ${isolation})`, guestTest(), () => {
      const heap = reports.get(isolation)!.tests.find((t) => t.name === 'wants_a_heap')!;
      assert.equal(heap.status, 'failed');
      assert.match(heap.message ?? '', /^\.heap is not available to a shared object's tests \(mirror mode\) yet: build this test into a test binary/);
    });
  }
});
