// sprint, sprintln and ksnprintf: every conversion, flag and length modifier,
// and messages around and beyond the runtime's buffer.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { guestTest } from '../helpers/kvm.js';
import { buildFixtures, describeResult, TestBinary } from './sdk-helpers.js';

describe('sprint and sprintln', guestTest(), () => {
  let binary: TestBinary;
  before(() => {
    binary = new TestBinary(buildFixtures('format.elf', ['format.c']));
  });

  async function output(name: string): Promise<string> {
    const result = await binary.run(name);
    assert.equal(result.outcome, 'returned', describeResult(result));
    return result.output;
  }

  test('every conversion', async () => {
    assert.equal(await output('conversions'), '-42|17|4000000000|beef|BEEF|k|str|%\n');
  });

  test('width, zero padding, left alignment and * width', async () => {
    assert.equal(
      await output('width_and_padding'),
      '[   42][42   ][00042][-0042][     abc][00000ABC][  a][b  ][ z][   7][7   ]\n',
    );
  });

  test('the l, ll, z, h and hh length modifiers, and #', async () => {
    assert.equal(
      await output('length_modifiers'),
      '-1234567890123 -9223372036854775808 18446744073709551615 18446744073709551615 fedcba9876543210 FEDCBA9876543210\n' +
        '0xab 0XAB 0 0x00001234\n' +
        '123456789012 abcdef 77 -5 250 -300 ffff\n',
    );
  });

  test('%p, NULL strings and string precision', async () => {
    assert.equal(
      await output('pointers_and_strings'),
      '0x200000 0x0 0xffffffff80001234\n[(null)] [abc] [xy] [   he]\n',
    );
  });

  test('sprint and sprintln append to one line; an empty sprintln is a newline', async () => {
    assert.equal(await output('sprint_then_sprintln'), 'ab1c\n\nd\n');
  });

  test('a 200-character line arrives whole', async () => {
    const line = Array.from({ length: 200 }, (_, i) => String.fromCharCode(97 + (i % 26))).join('');
    assert.equal(await output('long_line'), `${line}\n`);
  });

  test('a message longer than the buffer arrives whole, in order', async () => {
    const digits = Array.from({ length: 1500 }, (_, i) => String(i % 10)).join('');
    assert.equal(await output('longer_than_buffer'), `<${digits}>\n`);
  });

  test('ksnprintf cuts off, terminates and returns the full length', async () => {
    assert.equal(await output('ksnprintf_truncates'), '');
  });

  test('an unknown conversion is printed as written', async () => {
    assert.equal(await output('unknown_conversion'), '[%q] [%\n');
  });
});
