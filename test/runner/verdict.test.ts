// The verdict: what the guest did, against what the test expected, and the
// message that says both when they differ. Pure: no /dev/kvm.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Expectation, TestCase } from '../../src/runner/types.js';
import { hostFailure, judge, type RunForJudging } from '../../src/runner/verdict.js';

function testCase(expect: Expectation): TestCase {
  return { name: 't', binary: 'b.elf', file: 'f.c', line: 1, fn: 0x200000n, record: 0x300000n, expect, ioports: new Map(), ram: [], timeoutMs: 0, ignore: false };
}

const run = (outcome: RunForJudging['outcome'], extra: Partial<RunForJudging> = {}): RunForJudging => ({ outcome, output: '', durationMs: 1, ...extra });
const fault = (vector: number, name: string) => run('fault', { fault: { vector, name, rip: 0x200010n, location: 'f+0x10' }, message: `${name} at f+0x10` });

describe('judge', () => {
  const cases: Array<[Expectation, RunForJudging, 'passed' | 'failed', string?]> = [
    [{ kind: 'return' }, run('returned'), 'passed'],
    [{ kind: 'return' }, run('assert-failed', { message: 'assertion failed at f.c:3: x' }), 'failed', 'assertion failed at f.c:3: x'],
    [{ kind: 'return' }, run('halted'), 'failed', 'it halted'],
    [{ kind: 'panic' }, run('panicked'), 'passed'],
    [{ kind: 'panic' }, run('assert-failed'), 'passed'],
    [{ kind: 'panic' }, run('returned'), 'failed', 'expected the test to panic (should_panic), but it returned'],
    [{ kind: 'halt' }, run('halted'), 'passed'],
    [{ kind: 'halt' }, run('returned'), 'failed', 'expected the test to halt (should_halt), but it returned'],
    [{ kind: 'fault', vector: 13 }, fault(13, '#GP'), 'passed'],
    [{ kind: 'fault', vector: 13 }, fault(6, '#UD'), 'failed', 'expected the test to raise #GP (should_fault = 13), but it raised #UD: #UD at f+0x10'],
    [{ kind: 'fault', vector: 13 }, run('returned'), 'failed', 'expected the test to raise #GP (should_fault = 13), but it returned'],
    [{ kind: 'return' }, run('error', { error: { kind: 'emulation-failure' }, message: 'emulation failure: ...' }), 'failed', 'emulation failure: ...'],
  ];
  for (const [expect, result, status, message] of cases) {
    test(`${expect.kind}${expect.kind === 'fault' ? ` ${expect.vector}` : ''} and ${result.outcome}${result.fault ? ` ${result.fault.name}` : ''}: ${status}`, () => {
      const verdict = judge(testCase(expect), result);
      assert.equal(verdict.status, status);
      assert.equal(verdict.outcome, result.outcome);
      if (message) assert.equal(verdict.message, message);
      else assert.equal(verdict.message, undefined);
    });
  }

  test("a test file's test is told what it expected by its options' names", () => {
    const inFile = (expect: Expectation): TestCase => ({ ...testCase(expect), binary: 'tests/ports.kvmtest.ts', file: 'tests/ports.kvmtest.ts' });
    assert.equal(judge(inFile({ kind: 'panic' }), run('returned')).message, 'expected the test to panic (shouldPanic), but it returned');
    assert.equal(judge(inFile({ kind: 'halt' }), run('returned')).message, 'expected the test to halt (shouldHalt), but it returned');
    assert.equal(
      judge(inFile({ kind: 'fault', vector: 13 }), fault(6, '#UD')).message,
      "expected the test to raise #GP (shouldFault: '#GP'), but it raised #UD: #UD at f+0x10",
    );
  });

  test('the result keeps the output, the duration and the fault', () => {
    const verdict = judge(testCase({ kind: 'fault', vector: 13 }), { ...fault(13, '#GP'), output: 'hi\n', durationMs: 7 });
    assert.equal(verdict.output, 'hi\n');
    assert.equal(verdict.durationMs, 7);
    assert.equal(verdict.fault?.name, '#GP');
  });
});

describe('hostFailure', () => {
  test('a failed test with outcome error and the message given', () => {
    const failure = hostFailure(testCase({ kind: 'return' }), 'the worker died');
    assert.deepEqual(failure, { name: 't', binary: 'b.elf', file: 'f.c', line: 1, status: 'failed', outcome: 'error', durationMs: 0, output: '', message: 'the worker died' });
  });
});

describe('a test that skipped itself', () => {
  const EXPECTATIONS: Expectation[] = [{ kind: 'return' }, { kind: 'panic' }, { kind: 'halt' }, { kind: 'fault', vector: 13 }];

  test('is skipped, with its reason, whatever it expected', () => {
    const skip: RunForJudging = { outcome: 'skipped', output: 'probing\n', message: 'no x2APIC here', durationMs: 2 };
    for (const expect of EXPECTATIONS) {
      const result = judge(testCase(expect), skip);
      assert.deepEqual(
        [result.status, result.outcome, result.message, result.output],
        ['skipped', 'skipped', 'no x2APIC here', 'probing\n'],
        expect.kind,
      );
    }
  });
});

describe('judge: failed non-fatal checks', () => {
  const check = { kind: 'check' as const, file: 'f.c', line: 4, expression: 'x == 1' };
  const eq = { kind: 'check-eq' as const, file: 'f.c', line: 5, expression: 'a == b', left: { expression: 'a', value: 1n }, right: { expression: 'b', value: 2n } };
  const listed = '2 checks failed:\n  1) check failed at f.c:4: x == 1\n  2) check failed at f.c:5: a == b\n     left:  a = 0x1 (1)\n     right: b = 0x2 (2)';

  test('fail a test that returned, listing each check in order', () => {
    const verdict = judge(testCase({ kind: 'return' }), run('returned', { failedChecks: [check, eq] }));
    assert.deepEqual([verdict.status, verdict.outcome, verdict.message], ['failed', 'returned', listed]);
  });

  test('fail a .should_panic test that panicked, and a test that skipped itself (never a pass or a skip)', () => {
    const panicked = judge(testCase({ kind: 'panic' }), run('panicked', { failedChecks: [check, eq], message: 'panicked at f.c:9: boom' }));
    assert.deepEqual([panicked.status, panicked.message], ['failed', listed]);
    const skipped = judge(testCase({ kind: 'return' }), run('skipped', { failedChecks: [check], message: 'no x2APIC' }));
    assert.deepEqual([skipped.status, skipped.message], ['failed', '1 check failed:\n  1) check failed at f.c:4: x == 1\nand then it skipped itself: no x2APIC']);
  });

  test('add how the test ended when that was wrong too; count the checks past those kept', () => {
    const faulted = judge(testCase({ kind: 'return' }), { ...fault(6, '#UD'), failedChecks: [check], failedChecksDropped: 3 });
    assert.equal(faulted.message, '4 checks failed:\n  1) check failed at f.c:4: x == 1\n  ... and 3 more (only the first 1 are kept)\nand then #UD at f+0x10');
  });

  test('a failed report() shows its FAIL line', () => {
    const verdict = judge(testCase({ kind: 'return' }), run('returned', { failedChecks: [{ kind: 'check', file: 'f.c', line: 7, message: 'FAIL: paging: walk' }] }));
    assert.equal(verdict.message, '1 check failed:\n  1) check failed at f.c:7: FAIL: paging: walk');
  });
});
