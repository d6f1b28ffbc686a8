// The library-level path: one BinaryExecutor in this process runs each dirty
// test of fixtures/state.c then its check, round after round, in both
// isolation modes, and the outcomes fixture's tests that make it discard a
// machine (timeout, triple fault, emulation failure) or leave a read half
// done, each followed by a test that must pass. Counting Machine.create
// shows that snapshot isolation really ran the checks on reused machines.
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { loadImage } from '../../src/image/image.js';
import { readTestTable } from '../../src/image/test-table.js';
import { guestCpuid } from '../../src/machine/guest-cpuid.js';
import { Machine } from '../../src/machine/machine.js';
import { getKvm, getRunTimer } from '../../src/session/host.js';
import { BinaryExecutor, ISOLATION_MODES, type Isolation } from '../../src/runner/executor.js';
import type { TestCase, TestResult } from '../../src/runner/types.js';
import { guestSkipReason, guestTest } from '../helpers/kvm.js';
import { afterTest, buildFixture, buildState, outcomeTests } from './helpers.js';

const ROUNDS = 3;
const DEFAULT_TIMEOUT_MS = 5000;

/** Counts machines built, to tell reuse from a fresh VM per test. */
let machinesCreated = 0;
const originalCreate = Machine.create;

let grouped: string;
let outcomes: string;

before(() => {
  if (guestSkipReason()) return;
  grouped = buildState('grouped');
  outcomes = buildFixture('outcomes.elf', ['outcomes.c']);
  // The CPUID probe builds machines of its own, once per process: not counted.
  guestCpuid(getKvm());
  Machine.create = (...args: Parameters<typeof Machine.create>) => {
    machinesCreated++;
    return originalCreate.apply(Machine, args);
  };
});

after(() => {
  Machine.create = originalCreate;
  getRunTimer().stop();
});

interface Loaded {
  executor: BinaryExecutor;
  tests: Map<string, TestCase>;
}

/** Loads a binary the way a worker does. */
function load(binary: string, isolation: Isolation): Loaded {
  const image = loadImage({ elfBytes: readFileSync(binary), name: binary });
  const tests = new Map(readTestTable(image.elf!, binary).map((t) => [t.name, t]));
  const executor = new BinaryExecutor(getKvm(), getRunTimer(), image, { isolation, defaultTimeoutMs: DEFAULT_TIMEOUT_MS });
  return { executor, tests };
}

function run({ executor, tests }: Loaded, name: string): TestResult {
  const test = tests.get(name);
  if (!test) throw new Error(`the fixture has no test ${name}`);
  return executor.run(test);
}

function describeResult(r: TestResult): string {
  return `${r.name}: ${r.status} ${r.outcome}: ${r.message ?? ''}${r.output ? `\noutput: ${r.output}` : ''}`;
}

for (const isolation of ISOLATION_MODES) {
  describe(`BinaryExecutor, --isolation ${isolation}`, () => {
    test(`${ROUNDS} rounds of each dirty test then its check, in one process`, guestTest({ timeout: 120_000 }), (t: TestContext) => {
      const loaded = load(grouped, isolation);
      try {
        const dirty = [...loaded.tests.keys()].filter((n) => n.startsWith('a_dirty_')).sort();
        assert.ok(dirty.length >= 25, `the fixture has ${dirty.length} dirty tests`);
        const failures: string[] = [];
        const expectPass = (name: string, after: string) => {
          const r = run(loaded, name);
          if (r.status !== 'passed') failures.push(`${after ? `after ${after}: ` : ''}${describeResult(r)}`);
        };
        const before = machinesCreated;
        let runs = 0;
        for (let round = 0; round < ROUNDS; round++) {
          for (const name of dirty) {
            const item = name.slice('a_dirty_'.length);
            const check = loaded.tests.has(`b_check_${item}`) ? `b_check_${item}` : 'b_check_all';
            expectPass(name, '');
            expectPass(check, name);
            runs += 2;
          }
          expectPass('b_check_all', `round ${round + 1}`);
          expectPass('b_check_fault_ud', `round ${round + 1}`);
          expectPass('b_check_fault_pf', `round ${round + 1}`);
          runs += 3;
        }
        const created = machinesCreated - before;
        t.diagnostic(`${runs} runs on ${created} machines`);
        if (failures.length > 0) assert.fail(`isolation leaks:\n${failures.join('\n')}`);
        if (isolation === 'vm') {
          assert.equal(created, runs, 'vm isolation builds a machine for every test');
        } else {
          // One machine, rebuilt after each round's a_dirty_engine_pt edits the engine's page tables.
          assert.ok(created <= 1 + 2 * ROUNDS, `snapshot isolation built ${created} machines for ${runs} runs: it did not reuse them`);
        }
      } finally {
        loaded.executor.close();
      }
    });

    test('after a timeout, a triple fault, an emulation failure or a half-done read, the next test passes', guestTest({ timeout: 60_000 }), () => {
      const loaded = load(outcomes, isolation);
      try {
        for (let round = 0; round < 2; round++) {
          for (const [name, outcome] of outcomeTests()) {
            const r = run(loaded, name);
            if (outcome) assert.equal(r.outcome, outcome, describeResult(r));
            const next = run(loaded, afterTest(name));
            assert.equal(next.status, 'passed', `after ${name}: ${describeResult(next)}`);
          }
        }
      } finally {
        loaded.executor.close();
      }
    });
  });
}
