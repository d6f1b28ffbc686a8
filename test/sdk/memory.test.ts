// The loaded image (.data, .bss, RAM ranges), the runtime's mem* functions,
// and the higher-half link.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { before, describe, test } from 'node:test';
import { parseElf, PF_W, PF_X, PT_LOAD } from '../../src/image/elf.js';
import { guestTest } from '../helpers/kvm.js';
import { buildFixtures, describeResult, FIXTURES, TestBinary } from './sdk-helpers.js';

describe('memory', guestTest(), () => {
  let binary: TestBinary;
  before(() => {
    binary = new TestBinary(buildFixtures('memory.elf', ['memory.c']));
  });

  async function returns(name: string): Promise<string> {
    const result = await binary.run(name);
    assert.equal(result.outcome, 'returned', describeResult(result));
    return result.output;
  }

  test('.data is initialized', async () => {
    assert.equal(await returns('data_is_initialized'), 'Hello from .data read-only\n');
  });

  test('.bss is zeroed', async () => {
    await returns('bss_is_zeroed');
  });

  test('memset, memcpy, memmove (both overlaps), memcmp and strlen', async () => {
    await returns('string_functions');
  });

  test('struct copies the compiler turns into memcpy/memset calls', async () => {
    await returns('compiler_generated_copies');
  });

  test('.ram and .rams map extra RAM; without them the address faults', async () => {
    assert.deepEqual(binary.test('ram_range').ram, [[0x30000000n, 0x30010000n]]);
    assert.deepEqual(binary.test('ram_ranges').ram, [[0x30000000n, 0x30001000n], [0x40000000n, 0x40002000n]]);
    await returns('ram_range');
    await returns('ram_ranges');
    const result = await binary.run('unmapped_ram');
    assert.equal(result.outcome, 'fault', describeResult(result));
    assert.equal(result.fault?.cr2, 0x30000000n);
  });

  test('kvmtest_current() is the record the runner passed', async () => {
    assert.equal(await returns('current_record'), 'current_record 1234 -1\n');
  });

  test('the link gives code, read-only data, the table and data separate page-aligned segments, none W+X', () => {
    const elf = parseElf(readFileSync(binary.path), binary.path);
    const loads = elf.segments.filter((s) => s.type === PT_LOAD);
    assert.deepEqual(loads.map((s) => s.flags), [5, 4, 4, 6]);
    assert.equal(loads[0]!.vaddr, 0x200000n);
    for (const s of loads) {
      assert.equal(s.vaddr % 0x1000n, 0n);
      assert.ok((s.flags & (PF_W | PF_X)) !== (PF_W | PF_X));
    }
  });
});

describe('the higher-half link', guestTest(), () => {
  let binary: TestBinary;
  before(() => {
    binary = new TestBinary(buildFixtures('higher-half.elf', ['higher-half.c'], ['--higher-half']));
  });

  test('records, code and data live at 0xffffffff80000000 and up', () => {
    for (const t of binary.tests) {
      assert.ok(t.fn >= 0xffffffff80000000n, t.fn.toString(16));
      assert.ok(t.record >= 0xffffffff80000000n, t.record.toString(16));
    }
  });

  test('tests run: data, bss, ktry and sprintln', async () => {
    const result = await binary.run('runs_in_the_higher_half');
    assert.equal(result.outcome, 'returned', describeResult(result));
    assert.match(result.output, /^code=0xffffffff8[0-9a-f]{7} counter=42\n$/);
  });

  test('an assertion reports strings from higher-half addresses', async () => {
    const result = await binary.run('higher_half_assertion');
    assert.equal(result.outcome, 'assert-failed', describeResult(result));
    assert.equal(result.assertion?.file, `${FIXTURES}higher-half.c`);
    assert.equal(result.assertion?.expression, 'counter == 7');
    assert.equal(result.assertion?.left?.value, 41n);
  });

  test('an uncaught fault reaches the engine with a higher-half rip', async () => {
    const result = await binary.run('higher_half_uncaught_fault');
    assert.equal(result.outcome, 'fault', describeResult(result));
    assert.equal(result.fault?.vector, 6);
    assert.ok(result.fault!.rip >= 0xffffffff80000000n);
    assert.match(result.fault!.location, /^invalid_opcode|^kt_test_higher_half_uncaught_fault/);
  });
});
