// Between the tests of one test file in one worker (--jobs 1), in each
// isolation mode: what a test changed (registers, an MSR, CR0, CR4, memory
// written by the guest and by its device's callback, the console, its
// devices) is gone for the next test, while the file's own JavaScript
// objects persist, as JavaScript does. fixtures/isolation.kvmtest.ts
// asserts on what each test starts with; this file runs it.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { describeRun } from '../cli/helpers.js';
import { guestTest } from '../helpers/kvm.js';
import { assertPassed, failureOf, fixture, resultOf, runJsonFile } from './helpers.js';

for (const isolation of ['snapshot', 'vm']) {
  describe(`test files, --isolation ${isolation} --jobs 1: what one test leaves behind`, () => {
    test('registers, LSTAR, CR0, CR4 and RAM written by the guest and by a callback are as the first test saw them', guestTest(), async () => {
      const { result, byName } = await runJsonFile(['--jobs', '1', '--isolation', isolation, fixture('isolation.kvmtest.ts')]);
      assert.equal(result.status, 1, describeRun(result));
      assert.equal(byName.size, 8);
      // Test 2's check asserts that its changes were made; 3 and 8 that none of them remained.
      for (const name of [
        '1 reads the state it starts with',
        '2 changes registers, an MSR, CR0, CR4 and memory, and its device writes memory; then faults',
        '3 sees the state the first test saw',
        '8 sees the state the first test saw, after all of that',
      ]) {
        assertPassed(byName, name);
      }

      // The console and the devices are the test's own.
      assert.equal(resultOf(byName, '4 prints without ending its line').output, 'left over');
      const fresh = resultOf(byName, '5 has neither the console text nor the devices of earlier tests');
      assert.equal(fresh.output, 'fresh\n');
      assert.match(failureOf(byName, '5 has neither the console text nor the devices of earlier tests'), /^unexpected 8-bit write \(out\) of 0x1 to port 0x90: no device is configured there/);

      // The file's objects are the file's: a counter a device callback keeps counts on.
      assertPassed(byName, '6 reads a counter device');
      assertPassed(byName, '7 reads the same counter object, which kept its count');
    });
  });
}
