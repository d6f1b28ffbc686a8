// How kassert_eq's operands are shown: in parentheses exactly when an
// operator outside brackets and literals would bind differently next to ==.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { asOperand } from '../../src/devices/hypercall.js';

describe('asOperand', () => {
  const cases: Array<[string, string]> = [
    ['efer', 'efer'],
    ['0xfe', '0xfe'],
    ['inw(0x1)', 'inw(0x1)'],
    ['f(a, b + 1)', 'f(a, b + 1)'],
    ['p->field', 'p->field'],
    ['a[i + 1]', 'a[i + 1]'],
    ['(uint8_t)0xff', '(uint8_t)0xff'],
    ['-1', '-1'],
    ['*ptr', '*ptr'],
    ['(a & b)', '(a & b)'],
    ['efer & EFER_SCE', '(efer & EFER_SCE)'],
    ['a + b', '(a + b)'],
    ['x != 0', '(x != 0)'],
    ['c ? 1 : 2', '(c ? 1 : 2)'],
    ['s[0] == \'a\'', "(s[0] == 'a')"],
    ['"a+b"', '"a+b"'],
  ];
  for (const [text, shown] of cases) test(`${text} -> ${shown}`, () => assert.equal(asOperand(text), shown));
});
