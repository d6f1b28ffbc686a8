// The verdict: which outcomes pass which expectations, and a test that
// skipped itself, which is skipped whatever it expected.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { RunForJudging } from '../../src/runner/verdict.js';
import { judge } from '../../src/runner/verdict.js';
import type { Expectation } from '../../src/runner/types.js';
import { caseFor, passed } from '../report/fixtures.js';

const EXPECTATIONS: Expectation[] = [{ kind: 'return' }, { kind: 'panic' }, { kind: 'halt' }, { kind: 'fault', vector: 13 }];

function testExpecting(expect: Expectation) {
  return { ...caseFor(passed(`expects_${expect.kind}`)), expect };
}

describe('verdict', () => {
  test('a test that skipped itself is skipped, with its reason, whatever it expected', () => {
    const run: RunForJudging = { outcome: 'skipped', output: 'probing\n', message: 'no x2APIC here', durationMs: 2 };
    for (const expect of EXPECTATIONS) {
      const result = judge(testExpecting(expect), run);
      assert.deepEqual(
        [result.status, result.outcome, result.message, result.output],
        ['skipped', 'skipped', 'no x2APIC here', 'probing\n'],
        expect.kind,
      );
    }
  });

  test('each expectation passes on its own outcome only; a skip is never a pass or a failure', () => {
    const outcomes: Array<[RunForJudging['outcome'], Expectation['kind'] | undefined]> = [
      ['returned', 'return'],
      ['panicked', 'panic'],
      ['assert-failed', 'panic'],
      ['halted', 'halt'],
      ['timeout', undefined],
    ];
    for (const [outcome, passesFor] of outcomes) {
      for (const expect of EXPECTATIONS) {
        const { status } = judge(testExpecting(expect), { outcome, output: '', durationMs: 1, message: 'why' });
        assert.equal(status, expect.kind === passesFor ? 'passed' : 'failed', `${outcome} against ${expect.kind}`);
      }
    }
  });
});
