// kskip: the skip the host gets, and the verdict it turns into whatever the
// test expected.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { judge } from '../../src/runner/verdict.js';
import { guestTest } from '../helpers/kvm.js';
import { buildFixtures, describeResult, FIXTURES, lineOf, TestBinary } from './sdk-helpers.js';

describe('kskip', guestTest(), () => {
  let binary: TestBinary;
  before(() => {
    binary = new TestBinary(buildFixtures('skip.elf', ['skip.c']));
  });

  test('ends the test at once with the formatted reason, keeping what it printed before', async () => {
    const result = await binary.run('skips_with_a_formatted_reason');
    assert.equal(result.outcome, 'skipped', describeResult(result));
    assert.equal(result.message, 'needs x2APIC (CPUID.0x1:ECX bit 21)');
    assert.equal(result.output, 'probing\n');
    assert.deepEqual(judge(binary.test('skips_with_a_formatted_reason'), result), {
      name: 'skips_with_a_formatted_reason',
      binary: binary.path,
      file: `${FIXTURES}skip.c`,
      line: lineOf('skip.c', 'KVMTEST(skips_with_a_formatted_reason)'),
      status: 'skipped',
      outcome: 'skipped',
      durationMs: result.durationMs,
      output: 'probing\n',
      message: 'needs x2APIC (CPUID.0x1:ECX bit 21)',
    });
  });

  test('a .should_panic test that skips is skipped, not failed', async () => {
    const test = binary.test('skips_although_it_should_panic');
    assert.deepEqual(test.expect, { kind: 'panic' });
    const result = await binary.run(test.name);
    assert.equal(result.outcome, 'skipped', describeResult(result));
    const verdict = judge(test, result);
    assert.deepEqual([verdict.status, verdict.message], ['skipped', 'not on this host']);
  });

  test('skips from inside ktry too', async () => {
    const result = await binary.run('skips_from_inside_ktry');
    assert.deepEqual([result.outcome, result.message], ['skipped', 'from inside ktry'], describeResult(result));
  });

  test('a reason is cut at 1023 bytes, as kpanic messages are', async () => {
    const result = await binary.run('skips_with_a_long_reason');
    assert.equal(result.outcome, 'skipped', describeResult(result));
    assert.equal(result.message, 'r'.repeat(1023));
  });
});
