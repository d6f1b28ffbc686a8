// Non-fatal checks through the real `kvmtest run`: kexpect, kexpect_eq and
// report() let the test go on and fail it at its end, every failed check
// listed in order (file, line, condition, values) in each reporter's
// message; a test whose checks all hold passes; report() prints
// kvm-unit-tests' PASS/FAIL/SKIP/INFO lines.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { guestTest } from '../helpers/kvm.js';
import { CAN_BUILD, describeRun, kvmtest, runJson, type JsonReport } from '../cli/helpers.js';
import { parseXml } from '../report/xml.js';
import { buildFixtures, FIXTURES, lineOf } from './sdk-helpers.js';

type JsonTest = JsonReport['tests'][number];
const FILE = `${FIXTURES}guest-checks.c`;
const at = (text: string) => `${FILE}:${lineOf('guest-checks.c', text)}`;

describe('the guest library: kexpect, kexpect_eq, report', guestTest(), () => {
  let elf = '';
  let tests: Map<string, JsonTest>;
  let threeChecks = '';
  before(async () => {
    if (!CAN_BUILD) return;
    elf = buildFixtures('guest-checks.elf', ['guest-checks.c']);
    const { result, report } = await runJson(['-j1', elf]);
    assert.equal(result.status, 1, describeRun(result));
    tests = new Map(report.tests.map((t) => [t.name, t]));
    threeChecks = [
      '4 checks failed:',
      `  1) check failed at ${at('kexpect(1 == 2')}: 1 == 2`,
      '     message: first 1',
      `  2) check failed at ${at('kexpect_eq(x, 5)')}: x == 5`,
      '     left:  x = 0x4 (4)',
      '     right: 5 = 0x5 (5)',
      `  3) check failed at ${at('report(x == 0')}: FAIL: x is 4`,
      `  4) check failed at ${at('kexpect(x != 4)')}: x != 4`,
    ].join('\n');
  });

  function result(name: string): JsonTest {
    const t = tests.get(name);
    assert.ok(t, `no result for ${name}`);
    return t;
  }

  test('failed checks are listed in order, with file, line, condition and values; the test ran to its end', () => {
    const t = result('three_checks_fail_in_order');
    assert.deepEqual([t.status, t.outcome], ['failed', 'returned']);
    assert.equal(t.message, threeChecks);
    assert.equal(t.output, 'FAIL: x is 4\nstill running\n');
  });

  test('a test whose checks all hold passes, and each check returns true', () => {
    const t = result('checks_that_pass');
    assert.deepEqual([t.status, t.message, t.output], ['passed', null, 'PASS: x is positive\n']);
  });

  test('report() prints PASS, SKIP and INFO lines with the prefixes, and a SUMMARY', () => {
    const t = result('report_prints_pass_fail_skip_info');
    assert.equal(t.status, 'passed', t.message ?? '');
    assert.equal(
      t.output,
      [
        'PASS: paging: 4-level: walk 1',
        'INFO: paging: cr3 is 0x80000',
        'SKIP: paging: no LA57',
        'PASS: done',
        'SUMMARY: 2 tests, 0 unexpected failures',
        '',
      ].join('\n'),
    );
  });

  test('failed checks fail the test whatever it did next: a fault, the panic it expected, a skip', () => {
    const fault = result('a_check_then_a_fault');
    assert.deepEqual([fault.status, fault.outcome], ['failed', 'fault']);
    assert.match(
      fault.message ?? '',
      new RegExp(`^1 check failed:\\n  1\\) check failed at ${at('before the fault')}: false\\n     message: before the fault\\nand then #UD \\(invalid opcode\\) at kt_test_a_check_then_a_fault\\+0x[0-9a-f]+ (at \\S+guest-checks\\.c:\\d+ )?\\(0x[0-9a-f]+\\)$`),
    );
    const panic = result('a_check_in_a_should_panic_test');
    assert.deepEqual([panic.status, panic.outcome], ['failed', 'panicked']);
    assert.equal(panic.message, `1 check failed:\n  1) check failed at ${at('kexpect_eq(1, 0)')}: 1 == 0\n     left:  1 = 0x1 (1)\n     right: 0 = 0x0 (0)`);
    const skip = result('a_check_then_a_skip');
    assert.deepEqual([skip.status, skip.outcome], ['failed', 'skipped']);
    assert.equal(skip.message, `1 check failed:\n  1) check failed at ${at('kexpect(false);')}: false\nand then it skipped itself: not here`);
  });

  test('past 100 failed checks the rest are counted, not listed', () => {
    const lines = (result('many_checks_fail').message ?? '').split('\n');
    assert.equal(lines[0], '1003 checks failed:');
    assert.equal(lines[1], `  1) check failed at ${at('i < 0')}: i < 0`);
    assert.equal(lines[2], '     message: i = 0');
    assert.equal(lines.at(-2), '     message: i = 99');
    assert.equal(lines.at(-1), '  ... and 903 more (only the first 100 are kept)');
  });

  test('printf prints, as kvm-unit-tests\' does', () => {
    assert.deepEqual([result('printf_prints').status, result('printf_prints').output], ['passed', 'printf 42\n']);
  });

  test('every reporter shows the list: pretty, TAP, JUnit', async () => {
    const pretty = await kvmtest(['run', elf, 'three_checks']);
    assert.equal(pretty.status, 1, describeRun(pretty));
    assert.ok(pretty.stdout.includes(`---- three_checks_fail_in_order stdout ----\nFAIL: x is 4\nstill running\n${threeChecks}\n`), pretty.stdout);
    const tap = await kvmtest(['run', '--reporter', 'tap', elf, 'three_checks']);
    const quoted = /^ {2}message: (".*")$/m.exec(tap.stdout);
    assert.ok(quoted, tap.stdout);
    assert.equal(JSON.parse(quoted[1]!), threeChecks);
    const junit = await kvmtest(['run', '--reporter', 'junit', elf, 'three_checks']);
    const failure = parseXml(junit.stdout).children[0]!.children[0]!.children.find((c) => c.name === 'failure');
    assert.ok(failure, junit.stdout);
    assert.equal(failure.attributes['message'], '4 checks failed:');
    assert.ok(failure.text.startsWith(threeChecks), failure.text);
  });
});
