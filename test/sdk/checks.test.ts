// kassert, kassert_eq and kpanic: the report the host gets from each.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { formatAssertion } from '../../src/devices/hypercall.js';
import { guestTest } from '../helpers/kvm.js';
import { buildFixtures, describeResult, FIXTURES, lineOf, TestBinary } from './sdk-helpers.js';

describe('kassert, kassert_eq and kpanic', guestTest(), () => {
  let binary: TestBinary;
  const file = `${FIXTURES}checks.c`;
  before(() => {
    binary = new TestBinary(buildFixtures('checks.elf', ['checks.c']));
  });

  test('checks that hold let the test go on', async () => {
    const result = await binary.run('assert_passes');
    assert.equal(result.outcome, 'returned', describeResult(result));
    assert.equal(result.output, 'still here\n');
  });

  test('kassert(cond) reports the condition and where it is', async () => {
    const result = await binary.run('assert_fails');
    assert.equal(result.outcome, 'assert-failed', describeResult(result));
    assert.deepEqual(result.assertion, { kind: 'assert', file, line: lineOf('checks.c', 'kassert(value == 0xff);'), expression: 'value == 0xff' });
  });

  test('kassert(cond, fmt, ...) adds the formatted message', async () => {
    const result = await binary.run('assert_fails_with_message');
    assert.equal(result.outcome, 'assert-failed', describeResult(result));
    assert.deepEqual(result.assertion, {
      kind: 'assert',
      file,
      line: lineOf('checks.c', 'kassert(value == 0xff, '),
      expression: 'value == 0xff',
      message: '`inw` read 0xfe, wanted ff (port 1)',
    });
  });

  test('kassert_eq reports both expressions and values, shown in hex and decimal', async () => {
    const result = await binary.run('assert_eq_fails');
    assert.equal(result.outcome, 'assert-failed', describeResult(result));
    assert.deepEqual(result.assertion, {
      kind: 'assert-eq',
      file,
      line: lineOf('checks.c', 'kassert_eq(efer, 0xfe)'),
      expression: 'efer == 0xfe',
      left: { expression: 'efer', value: 0xd00n },
      right: { expression: '0xfe', value: 0xfen },
    });
    assert.match(result.message ?? '', /left: {2}efer = 0xd00 \(3328\)/);
    assert.match(result.message ?? '', /right: 0xfe = 0xfe \(254\)/);
    assert.equal(result.message, formatAssertion(result.assertion!));
  });

  test('kassert_eq puts an operand with an operator in parentheses, so the expression reads as the source meant', async () => {
    const result = await binary.run('assert_eq_with_operators');
    assert.equal(result.assertion?.expression, '(efer & EFER_SCE) == EFER_SCE');
    assert.equal(result.assertion?.left?.expression, 'efer & EFER_SCE');
    assert.match(result.message ?? '', /^assertion failed at \S+checks\.c:\d+: \(efer & EFER_SCE\) == EFER_SCE$/m);
  });

  test('kassert_eq sign-extends negative values', async () => {
    const result = await binary.run('assert_eq_negative');
    assert.equal(result.assertion?.left?.value, 0xffffffffffffffffn);
    assert.match(result.message ?? '', /delta = 0xffffffffffffffff \(18446744073709551615 or -1\)/);
  });

  test('kpanic formats its message', async () => {
    const result = await binary.run('panics');
    assert.equal(result.outcome, 'panicked', describeResult(result));
    assert.deepEqual(result.assertion, { kind: 'panic', file, line: lineOf('checks.c', 'kpanic("gave up'), message: 'gave up after 3 tries on port 0x80' });
  });

  test('kpanic with plain text, in a .should_panic test', async () => {
    const test = binary.test('panics_with_plain_text');
    assert.deepEqual(test.expect, { kind: 'panic' });
    const result = await binary.run('panics_with_plain_text');
    assert.equal(result.outcome, 'panicked');
    assert.equal(result.assertion?.message, 'failed');
  });
});
