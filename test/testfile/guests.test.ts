// Test files' guest code: c`` bodies, c.unit`` translation units, asm``
// in Intel syntax, a function of an ELF built with kvmtest cc, raw bytes();
// what a test starts with (args, regs, preloaded memory) and how it may end
// (shouldPanic, shouldHalt, shouldFault, timeoutMs). One run of
// fixtures/guests.kvmtest.ts, whose checks assert on each guest's result.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import type { JsonTest } from '../../src/report/json.js';
import { buildFixture, CAN_BUILD } from '../cli/helpers.js';
import { guestTest } from '../helpers/kvm.js';
import { assertPassed, failureOf, fixture, lineOf, resultOf, runJsonFile } from './helpers.js';

const FILE = fixture('guests.kvmtest.ts');

describe('test files: guest code and expectations', () => {
  let byName = new Map<string, JsonTest>();
  let status: number | null = null;

  before(async () => {
    if (!CAN_BUILD) return;
    const elf = await buildFixture('elf-guest.elf', ['../../testfile/fixtures/elf-guest.c']);
    const run = await runJsonFile([FILE], { env: { KVMTEST_FIXTURE_ELF: elf } });
    byName = run.byName;
    status = run.result.status;
  });

  test('the run fails (some tests are meant to) with exit status 1, and every test has a result', guestTest(), () => {
    assert.equal(status, 1);
    assert.equal(byName.size, 18);
  });

  test('c``: the statements of a test body, with kvmtest.h; ioports; console output', guestTest(), () => {
    assertPassed(byName, 'c body reads a configured port');
    assert.equal(resultOf(byName, 'c body reads a configured port').output, 'read fe\n');
  });

  test('c``: a failed kassert_eq names the .ts file and the line inside the template, with both values', guestTest(), () => {
    const failed = resultOf(byName, 'c body assertion fails at its TypeScript line');
    assert.equal(failed.outcome, 'assert-failed');
    assert.equal(failed.message, [
      `assertion failed at ${FILE}:${lineOf('guests.kvmtest.ts', 'kassert_eq(three, 4);')}: three == 4`,
      '  left:  three = 0x3 (3)',
      '  right: 4 = 0x4 (4)',
    ].join('\n'));
    // The declaration's own line, for reports that point at it.
    assert.deepEqual([failed.file, failed.line], [FILE, lineOf('guests.kvmtest.ts', "kvmtest('c body assertion fails")]);
  });

  test('c.unit``: helpers beside `void test(void)`', guestTest(), () => {
    assertPassed(byName, 'c.unit with a helper and test()');
  });

  test('asm``: Intel syntax with interpolated numbers; the check sees the registers', guestTest(), () => {
    assertPassed(byName, 'asm in Intel syntax, with an interpolated value');
  });

  test('args and regs: the entry gets its arguments in rdi, rsi, rdx; regs are set (negative values as 64-bit)', guestTest(), () => {
    assertPassed(byName, 'args arrive in rdi, rsi, rdx');
    assertPassed(byName, 'regs are set at entry');
  });

  test('bytes(): code runs from its first byte, at 0x200000 or the loadAddress given', guestTest(), () => {
    assertPassed(byName, 'bytes at the default load address');
    assertPassed(byName, 'bytes at an explicit load address');
  });

  test('elf(path, symbol): a function of an ELF built by kvmtest cc, with args and with kassert', guestTest(), () => {
    assertPassed(byName, 'elf function with arguments');
    assertPassed(byName, 'elf function that asserts');
  });

  test('memory: bytes preloaded before the run; the check reads memory as the guest left it', guestTest(), () => {
    assertPassed(byName, 'memory preloaded, then read by the check');
  });

  test('shouldPanic, shouldHalt, shouldFault by name and by vector pass when met', guestTest(), () => {
    for (const name of ['shouldPanic: kpanic', 'shouldHalt: hlt', 'shouldFault #UD by name', 'shouldFault 13 by vector']) assertPassed(byName, name);
  });

  test('an expectation not met fails with what was expected and what happened', guestTest(), () => {
    assert.match(failureOf(byName, 'shouldPanic: but returns'), /^expected the test to panic \(shouldPanic\), but it returned$/);
    assert.match(failureOf(byName, 'shouldFault #GP but raises #UD'), /^expected the test to raise #GP \(shouldFault: '#GP'\), but it raised #UD: #UD \(invalid opcode\) at /);
  });

  test("a fault in a snippet is reported at the snippet's function and the test file's line", guestTest(), () => {
    const ud = `at test at ${FILE}:${lineOf('guests.kvmtest.ts', "kvmtest('shouldFault #GP but raises #UD'")} (0x`;
    assert.ok(failureOf(byName, 'shouldFault #GP but raises #UD').includes(ud), `${ud} in: ${failureOf(byName, 'shouldFault #GP but raises #UD')}`);
    const spin = `the guest was at test at ${FILE}:${lineOf('guests.kvmtest.ts', '  jmp spin')} (0x`;
    assert.ok(failureOf(byName, 'timeoutMs stops a spinning guest').includes(spin), `${spin} in: ${failureOf(byName, 'timeoutMs stops a spinning guest')}`);
  });

  test('timeoutMs: a spinning guest is stopped after its own time limit', guestTest(), () => {
    const spun = resultOf(byName, 'timeoutMs stops a spinning guest');
    assert.equal(spun.outcome, 'timeout');
    assert.match(failureOf(byName, 'timeoutMs stops a spinning guest'), /^timed out after 100 ms; the guest was at /);
  });
});
