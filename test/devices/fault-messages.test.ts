// The words of fault reports, from error codes alone (no KVM needed): #PF's
// bits, selector error codes, and the engine's stub addresses by name.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { describeFault, describePageFault, describeSelectorError } from '../../src/devices/doorbell.js';
import { describeEngineAddress } from '../../src/machine/descriptors.js';

describe('#PF error codes', () => {
  const cases: Array<[number, string]> = [
    [0x0, 'supervisor-mode read from a not-present page (error code 0x0)'],
    [0x2, 'supervisor-mode write to a not-present page (error code 0x2)'],
    [0x3, 'supervisor-mode write to a page that does not allow it (error code 0x3)'],
    [0x5, 'user-mode read from a page that does not allow it (error code 0x5)'],
    [0x7, 'user-mode write to a page that does not allow it (error code 0x7)'],
    [0x11, 'supervisor-mode instruction fetch from a page that does not allow it (error code 0x11)'],
    [0x14, 'user-mode instruction fetch from a not-present page (error code 0x14)'],
    [0x9, 'supervisor-mode read from a page-table entry with reserved bits set (error code 0x9)'],
    [0x27, 'user-mode write to a page its protection key forbids (PKRU/PKRS) (error code 0x27)'],
    [0x43, 'supervisor-mode shadow-stack access to a page that does not allow it (error code 0x43)'],
    [0x8001, 'supervisor-mode read from a page that does not allow it, an SGX access-control violation (error code 0x8001)'],
  ];
  for (const [code, text] of cases) {
    test(`0x${code.toString(16)}: ${text}`, () => assert.equal(describePageFault(code), text));
  }
});

describe('selector error codes', () => {
  test('the IDT bit names the vector', () => assert.equal(describeSelectorError(0x80 * 8 + 2), 'IDT vector 0x80'));
  test('TI names an LDT selector', () => assert.equal(describeSelectorError(0x1234), 'LDT selector 0x1234 (index 582)'));
  test('otherwise a GDT selector', () => assert.equal(describeSelectorError(0x28), 'GDT selector 0x28 (index 5)'));
  test('EXT says an external event was being delivered', () =>
    assert.equal(describeSelectorError(0x21), 'GDT selector 0x20 (index 4), during the delivery of an external event'));
  test('#GP, #NP, #SS and #TS read their error code this way', () => {
    for (const [vector, name] of [[13, '#GP'], [11, '#NP'], [12, '#SS'], [10, '#TS']] as const) {
      const text = describeFault({ vector, name, rip: 0x200000n, location: 'f (0x200000)', errorCode: 0x402 });
      assert.match(text, /: error code 0x402 \(IDT vector 0x80\)$/, text);
    }
  });
  test('#GP(0) shows its error code only', () =>
    assert.equal(describeFault({ vector: 13, name: '#GP', rip: 0x200000n, location: 'f (0x200000)', errorCode: 0 }), '#GP (general protection) at f (0x200000): error code 0x0'));
});

describe("the engine's stubs by name", () => {
  test('an exception stub', () => assert.equal(describeEngineAddress(0x30d0n), "the engine's exception stub for #GP (0x30d0)"));
  test('inside one', () => assert.equal(describeEngineAddress(0x30e2n), "the engine's exception stub for #PF+0x2 (0x30e2)"));
  test('above 31', () => assert.equal(describeEngineAddress(0x3800n), "the engine's exception stub for interrupt 0x80 (0x3800)"));
  test('the return stub', () => assert.equal(describeEngineAddress(0x4002n), "the engine's return stub+0x2 (0x4002)"));
  test('the rest of the return stub page', () =>
    assert.equal(describeEngineAddress(0x4010n), "the engine's stub page, past its return stub (0x4010)"));
  test('anything else is not the engine', () => {
    assert.equal(describeEngineAddress(0x2fffn), undefined);
    assert.equal(describeEngineAddress(0x5000n), undefined);
    assert.equal(describeEngineAddress(0x200000n), undefined);
  });
});
