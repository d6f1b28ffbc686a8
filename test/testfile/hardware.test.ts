// Test files' hardware: ports and MMIO served by callbacks (values, sizes,
// offsets, Promises, the guest context), MSRs as values and handlers with
// gp(), CPUID overrides. One run of fixtures/hardware.kvmtest.ts, whose
// checks assert on what each callback saw.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import type { JsonTest } from '../../src/report/json.js';
import { CAN_BUILD } from '../cli/helpers.js';
import { guestTest, isSoftwareKvm } from '../helpers/kvm.js';
import { assertPassed, failureOf, fixture, resultOf, runJsonFile } from './helpers.js';

describe('test files: hardware served from TypeScript', () => {
  let byName = new Map<string, JsonTest>();

  before(async () => {
    if (CAN_BUILD) ({ byName } = await runJsonFile([fixture('hardware.kvmtest.ts')]));
  });

  test('ports: read and write callbacks get the port, the value and the access size; reads answer each size', guestTest(), () => {
    assertPassed(byName, 'ports: read and write callbacks see the port, value and size');
  });

  test('ports: callbacks may answer with a Promise (read and write)', guestTest(), () => {
    assertPassed(byName, 'ports: callbacks that answer with a Promise');
  });

  test('ports: the guest context gives registers, guest memory (DMA) and setRegs', guestTest(), () => {
    assertPassed(byName, 'ports: a callback reads registers, writes guest memory and sets registers');
  });

  test('mmio: accesses arrive with their offset into the region and their size, 1 to 8 bytes', guestTest(), () => {
    assertPassed(byName, 'mmio: reads and writes arrive with their offset into the region and their size');
  });

  test('msrs: a value reads back and may be written unchanged; handlers keep state; gp() thrown or returned raises #GP', guestTest(), () => {
    assertPassed(byName, 'msrs: a fixed value, and handlers that keep what is written');
    assertPassed(byName, 'msrs: a read handler that throws gp() raises #GP');
    assertPassed(byName, 'msrs: a write handler that returns gp() raises #GP');
  });

  test('msrs: writing another value than the fixed one fails, saying which value may be written', guestTest(), () => {
    assert.equal(resultOf(byName, 'msrs: writing another value than a fixed one is unexpected').outcome, 'unexpected-io');
    assert.equal(
      failureOf(byName, 'msrs: writing another value than a fixed one is unexpected'),
      'unexpected wrmsr of 0x6 to MSR 0x4b564d14: msrs[0x4b564d14] is given as 0x5, so only that value may be written',
    );
  });

  test('cpuid: an override of a leaf this KVM honours is what the guest reads', guestTest(), () => {
    assertPassed(byName, 'cpuid: an override of a leaf KVM honours (0x40000100)');
  });

  test('cpuid: an override PVM ignores (leaf 1 ECX) skips the test there with the reason; hardware KVM applies it', guestTest(), () => {
    const leaf1 = resultOf(byName, 'cpuid: an override of leaf 1 ECX');
    if (isSoftwareKvm()) {
      assert.equal(leaf1.status, 'skipped', `${leaf1.status}: ${leaf1.message}`);
      assert.match(
        leaf1.message ?? '',
        /^this host's KVM does not apply the test's CPUID leaf 0x1 override \(in a guest ecx reads 0x[0-9a-f]+, not 0x80000000\); software-assisted KVMs such as PVM pass parts of CPUID through from the host/,
      );
    } else {
      assertPassed(byName, 'cpuid: an override of leaf 1 ECX');
    }
  });
});
