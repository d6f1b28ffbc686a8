// ktry: every exception this machine's KVM delivers, nesting, what survives
// a caught exception; and exceptions nobody catches, which the runtime's
// stubs must hand to the engine exactly as the CPU raised them.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { guestTest } from '../helpers/kvm.js';
import { buildFixtures, describeResult, skipIfUnemulated, TestBinary } from './sdk-helpers.js';

describe('ktry', guestTest(), () => {
  let binary: TestBinary;
  before(() => {
    binary = new TestBinary(buildFixtures('faults.elf', ['faults.c']));
  });

  // Each of these returns normally when ktry gave the expected vector (the
  // fixture checks it with kassert_eq).
  const caught = [
    ['#DE (divide error)', 'catches_divide_error'],
    ['#UD (invalid opcode)', 'catches_invalid_opcode'],
    ['#GP (general protection), with error code and rip', 'catches_general_protection'],
    ['#PF (page fault), with error code and cr2', 'catches_page_fault'],
    ['#NM (device not available)', 'catches_device_not_available'],
    ['#SS (stack-segment fault)', 'catches_stack_segment_fault'],
    ['#NP (segment not present), with the selector as error code', 'catches_segment_not_present'],
    ['#BP (breakpoint, int3)', 'catches_breakpoint'],
  ] as const;
  for (const [what, name] of caught) {
    test(`catches ${what}`, async (t) => {
      const result = await binary.run(name);
      if (skipIfUnemulated(t, result)) return;
      assert.equal(result.outcome, 'returned', describeResult(result));
    });
  }

  test('returns -1 when fn returns', async () => {
    const result = await binary.run('returns_minus_one');
    assert.equal(result.outcome, 'returned', describeResult(result));
  });

  test('nests: an inner ktry catches its own exceptions, the outer one the rest', async () => {
    const result = await binary.run('nests');
    assert.equal(result.outcome, 'returned', describeResult(result));
  });

  test('restores the RFLAGS it was called with', async () => {
    const result = await binary.run('restores_rflags');
    assert.equal(result.outcome, 'returned', describeResult(result));
  });

  test('restores the callee-saved registers', async () => {
    const result = await binary.run('keeps_callee_saved_registers');
    assert.equal(result.outcome, 'returned', describeResult(result));
  });
});

describe('exceptions nobody catches', guestTest(), () => {
  let binary: TestBinary;
  before(() => {
    binary = new TestBinary(buildFixtures('faults.elf', ['faults.c']));
  });

  test('a page fault after a ktry reaches the engine with error code, rip and cr2', async () => {
    const result = await binary.run('uncaught_page_fault_after_ktry');
    assert.equal(result.outcome, 'fault', describeResult(result));
    const fault = result.fault!;
    assert.equal(fault.vector, 14);
    assert.equal(fault.name, '#PF');
    assert.equal(fault.errorCode, 0x2);
    assert.equal(fault.cr2, 0xdead000n);
    assert.match(fault.location, /^kt_test_uncaught_page_fault_after_ktry\+0x[0-9a-f]+ /);
    // The frame the engine saw is the CPU's, not the stub's: rsp is back on the test's stack.
    assert.ok(result.regs.rsp < 0x80000n && result.regs.rsp > 0x70000n, `rsp ${result.regs.rsp.toString(16)}`);
  });

  test('#UD reaches the engine, at the faulting instruction', async () => {
    const result = await binary.run('uncaught_invalid_opcode');
    assert.equal(result.outcome, 'fault', describeResult(result));
    assert.equal(result.fault?.vector, 6);
    assert.equal(result.fault?.errorCode, undefined);
    assert.match(result.fault?.location ?? '', /^kt_test_uncaught_invalid_opcode/);
  });

  test('#GP carries its error code (a selector) to the engine', async () => {
    const result = await binary.run('uncaught_selector_fault');
    assert.equal(result.outcome, 'fault', describeResult(result));
    assert.equal(result.fault?.vector, 13);
    assert.equal(result.fault?.errorCode, 0x1234);
  });

  test('#DE (vector 0) matches .should_fault = FAULT_DE', async () => {
    assert.deepEqual(binary.test('uncaught_divide_error').expect, { kind: 'fault', vector: 0 });
    const result = await binary.run('uncaught_divide_error');
    assert.equal(result.outcome, 'fault', describeResult(result));
    assert.equal(result.fault?.vector, 0);
  });

  test('#GP from wrmsr matches .should_fault = FAULT_GP', async () => {
    assert.deepEqual(binary.test('uncaught_general_protection').expect, { kind: 'fault', vector: 13 });
    const result = await binary.run('uncaught_general_protection');
    assert.equal(result.fault?.vector, 13);
    assert.equal(result.fault?.errorCode, 0);
  });
});

describe('ktry and privilege levels', guestTest(), () => {
  test('an exception raised in ring 3 returns to ktry in ring 0', async () => {
    const binary = new TestBinary(buildFixtures('faults.elf', ['faults.c']));
    const result = await binary.run('catches_fault_in_ring3');
    assert.equal(result.outcome, 'returned', describeResult(result));
    assert.equal(result.output, 'back in ring 0\n');
  });
});
