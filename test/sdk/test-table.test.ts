// The `.kvmtest` table: what the reader makes of records from C, from
// assembly and from several files, and the errors it gives for tables it
// cannot use. Reading needs no KVM; running the multi-file binary does.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { before, describe, test } from 'node:test';
import { findSection, parseElf } from '../../src/image/elf.js';
import {
  loadTestTable,
  readTestTable,
  RECORD_V1_SIZE,
  TEST_TABLE_SECTION,
  TestTableError,
} from '../../src/image/test-table.js';
import { guestTest, toolchainTest } from '../helpers/kvm.js';
import { buildFixtures, buildSources, describeResult, FIXTURES, lineOf, TestBinary } from './sdk-helpers.js';

const HEADER = '#include <kvmtest.h>\n';

describe('a table from two C files and an assembly file', toolchainTest(), () => {
  let binary: TestBinary;
  before(() => {
    binary = new TestBinary(buildFixtures('multi.elf', ['multi-a.c', 'multi-b.c', 'multi-asm.S']));
  });

  test('lists every test in source order: files as linked, tests by line', () => {
    assert.deepEqual(
      binary.tests.map((t) => `${t.file.slice(FIXTURES.length)}:${t.line} ${t.name}`),
      [
        `multi-a.c:${lineOf('multi-a.c', 'KVMTEST(alpha_first)')} alpha_first`,
        `multi-a.c:${lineOf('multi-a.c', 'KVMTEST(alpha_second')} alpha_second`,
        `multi-b.c:${lineOf('multi-b.c', 'KVMTEST(beta_divide_error')} beta_divide_error`,
        `multi-b.c:${lineOf('multi-b.c', 'KVMTEST(beta_no_fault)')} beta_no_fault`,
        `multi-b.c:${lineOf('multi-b.c', 'KVMTEST(beta_ignored')} beta_ignored`,
        `multi-asm.S:${lineOf('multi-asm.S', 'kvmtest_record asm_returns')} asm_returns`,
        `multi-asm.S:${lineOf('multi-asm.S', 'kvmtest_record asm_invalid_opcode')} asm_invalid_opcode`,
      ],
    );
  });

  test('reads the options', () => {
    const second = binary.test('alpha_second');
    assert.deepEqual([...second.ioports], [[0x61, 0x20]]);
    assert.equal(second.timeoutMs, 250);
    assert.deepEqual(second.ram, []);
    assert.equal(second.ignore, false);
    const ignored = binary.test('beta_ignored');
    assert.equal(ignored.ignore, true);
    assert.deepEqual(ignored.expect, { kind: 'panic' });
    assert.equal(binary.test('alpha_first').timeoutMs, 0);
    assert.equal(binary.test('alpha_first').binary, binary.path);
  });

  test('tells .should_fault = FAULT_DE (0) from no .should_fault', () => {
    assert.deepEqual(binary.test('beta_divide_error').expect, { kind: 'fault', vector: 0 });
    assert.deepEqual(binary.test('beta_no_fault').expect, { kind: 'return' });
    assert.deepEqual(binary.test('asm_invalid_opcode').expect, { kind: 'fault', vector: 6 });
    assert.deepEqual(binary.test('asm_returns').expect, { kind: 'return' });
  });

  test('fn and record are the symbols the compiler placed', () => {
    const elf = parseElf(readFileSync(binary.path), binary.path);
    const symbol = (name: string) => elf.symbols.find((s) => s.name === name)?.value;
    assert.equal(binary.test('alpha_first').fn, symbol('kt_test_alpha_first'));
    assert.equal(binary.test('alpha_first').record, symbol('kt_record_alpha_first'));
    const table = findSection(elf, TEST_TABLE_SECTION)!;
    for (const t of binary.tests) {
      assert.ok(t.record >= table.addr && t.record + BigInt(RECORD_V1_SIZE) <= table.addr + BigInt(table.size));
    }
  });

  describe('running them', guestTest(), () => {
    test('tests from every file run', async () => {
      const first = await binary.run('alpha_first');
      assert.equal(first.outcome, 'returned', describeResult(first));
      assert.equal(first.output, 'alpha first\n');
      const second = await binary.run('alpha_second');
      assert.equal(second.outcome, 'returned', describeResult(second));
      const divide = await binary.run('beta_divide_error');
      assert.equal(divide.fault?.vector, 0, describeResult(divide));
      const asm = await binary.run('asm_returns');
      assert.equal(asm.outcome, 'returned', describeResult(asm));
      assert.equal(asm.output, 'A');
      const ud = await binary.run('asm_invalid_opcode');
      assert.equal(ud.fault?.vector, 6, describeResult(ud));
    });
  });
});

describe('records written by hand', toolchainTest(), () => {
  test('a record larger than version 1 and zero padding between records are skipped over', () => {
    const binary = new TestBinary(buildFixtures('records.elf', ['records.S']));
    assert.deepEqual(
      binary.tests.map((t) => [t.name, t.file, t.line]),
      [['padded', 'records.S', 20], ['plain', 'records.S', 40], ['version_2', 'records.S', 60]],
    );
    assert.deepEqual([...binary.test('padded').ioports], [[0x61, 7]]);
    assert.equal(binary.test('plain').record - binary.test('padded').record, 384n);
  });

  test('version 1 records read as before: no heap, no CPUID edits, whatever follows them', () => {
    const binary = new TestBinary(buildFixtures('records.elf', ['records.S']));
    for (const name of ['padded', 'plain']) {
      assert.equal(binary.test(name).heap, undefined);
      assert.equal(binary.test(name).cpuid, undefined);
    }
  });

  test('C and the assembly macro write version 2 records: .heap, .cpuid, heap=', () => {
    const c = new TestBinary(buildSources('v2-c.elf', {
      'v2.c': `${HEADER}KVMTEST(edits, .heap = 0x20000, .cpuid = { { .leaf = 6, .reg = CPUID_EAX, .keep = 0, .set = 9 }, { .leaf = 0xd, .subleaf = 1, .reg = CPUID_EAX, .keep = ~1u } }) {}\nKVMTEST(plain) {}\n`,
    }));
    assert.equal(c.test('edits').heap, 0x20000n);
    assert.deepEqual(c.test('edits').cpuid, [
      { leaf: 6, subleaf: 0, register: 'eax', keep: 0, set: 9 },
      { leaf: 0xd, subleaf: 1, register: 'eax', keep: 0xfffffffe, set: 0 },
    ]);
    assert.deepEqual([c.test('plain').heap, c.test('plain').cpuid], [undefined, undefined]);
    const asm = new TestBinary(buildSources('v2-asm.elf', {
      'v2.S': '#include <kvmtest/abi.h>\n    .text\nfn:\n    ret\nkvmtest_record with_heap, fn, __FILE__, __LINE__, heap=0x10000\n    .section .note.GNU-stack, "", @progbits\n',
    }));
    assert.equal(asm.test('with_heap').heap, 0x10000n);
  });

  test('a version 2 record written by hand: .heap and .cpuid, one CPU and no APIC', () => {
    const binary = new TestBinary(buildFixtures('records.elf', ['records.S']));
    const v2 = binary.test('version_2');
    assert.equal(v2.heap, 0x4000n);
    assert.deepEqual(v2.cpuid, [{ leaf: 7, subleaf: 0, register: 'ebx', keep: 0xffffff7f, set: 0 }]);
    assert.deepEqual([v2.cpus, v2.apic], [undefined, undefined]);
  });

  test('C and the assembly macro write version 3 records: .cpus, .apic, cpus=, apic=', () => {
    const c = new TestBinary(buildSources('v3-c.elf', {
      'v3.c': `${HEADER}KVMTEST(four, .cpus = 4) {}\nKVMTEST(timer, .apic = true) {}\nKVMTEST(one, .cpus = 1) {}\nKVMTEST(plain) {}\n`,
    }));
    assert.deepEqual([c.test('four').cpus, c.test('four').apic], [4, true]);
    assert.deepEqual([c.test('timer').cpus, c.test('timer').apic], [undefined, true]);
    assert.deepEqual([c.test('one').cpus, c.test('one').apic], [undefined, undefined]);
    assert.deepEqual([c.test('plain').cpus, c.test('plain').apic], [undefined, undefined]);
    const asm = new TestBinary(buildSources('v3-asm.elf', {
      'v3.S': '#include <kvmtest/abi.h>\n    .text\nfn:\n    ret\nkvmtest_record two, fn, __FILE__, __LINE__, cpus=2\n' +
        'kvmtest_record apic_only, fn, __FILE__, __LINE__, apic=1, heap=0x1000\nkvmtest_record none, fn, __FILE__, __LINE__\n' +
        '    .section .note.GNU-stack, "", @progbits\n',
    }));
    assert.deepEqual([asm.test('two').cpus, asm.test('two').apic], [2, true]);
    assert.deepEqual([asm.test('apic_only').cpus, asm.test('apic_only').apic, asm.test('apic_only').heap], [undefined, true, 0x1000n]);
    assert.deepEqual([asm.test('none').cpus, asm.test('none').apic], [undefined, undefined]);
  });
});

describe('tables the reader refuses', toolchainTest(), () => {
  function thrown(fn: () => unknown): string {
    try {
      fn();
    } catch (err) {
      assert.ok(err instanceof TestTableError, `expected a TestTableError, got ${String(err)}`);
      return err.message;
    }
    assert.fail('expected a TestTableError');
  }

  test('a binary without tests', () => {
    const path = buildSources('no-tests.elf', { 'helper.c': 'int helper(void) { return 1; }\n' });
    assert.equal(
      thrown(() => loadTestTable(path)),
      `${path} has no kvmtest tests: declare tests with KVMTEST(name) { ... } and link with \`kvmtest cc\``,
    );
  });

  test('the same name twice names both places', () => {
    const path = buildSources('twins.elf', {
      'a.c': `${HEADER}KVMTEST(twin) {}\n`,
      'b.c': `${HEADER}\n\nKVMTEST(twin) {}\n`,
    });
    const message = thrown(() => loadTestTable(path));
    assert.match(message, /the test name "twin" is given twice, at \S+\/a\.c:2 and at \S+\/b\.c:4/);
  });

  test('a port that belongs to the engine', () => {
    const path = buildSources('serial.elf', { 'serial.c': `${HEADER}KVMTEST(serial, .ioport = { 0x3f8, 1 }) {}\n` });
    assert.match(thrown(() => loadTestTable(path)), /test "serial" \(\S+serial\.c:2\): ioports: port 0x3f8 belongs to the serial console/);
  });

  test('a port number above 0xffff', () => {
    const path = buildSources('wide.elf', { 'wide.c': `${HEADER}KVMTEST(wide, .ioports = { { 1, 1 }, { 0x10000, 1 } }) {}\n` });
    assert.match(thrown(() => loadTestTable(path)), /ioports: port 65536 is not a port number \(0 to 0xffff\)/);
  });

  test('RAM ranges that are unaligned, reversed, in the first MiB or overlapping', () => {
    const cases: Array<[string, RegExp]> = [
      ['.ram = { 0x30000800, 0x30001000 }', /RAM range \[0x30000800, 0x30001000\): both ends must be multiples of 4 KiB/],
      ['.ram = { 0x30001000, 0x30000000 }', /the end must be above the start/],
      ['.ram = { 0x1000, 0x2000 }', /overlaps the first megabyte/],
      ['.rams = { { 0x30000000, 0x30002000 }, { 0x30001000, 0x30003000 } }', /overlaps RAM range \[0x30000000, 0x30002000\)/],
    ];
    cases.forEach(([option, expected], i) => {
      const path = buildSources(`ram${i}.elf`, { 'ram.c': `${HEADER}KVMTEST(ram_test, ${option}) {}\n` });
      assert.match(thrown(() => loadTestTable(path)), expected);
    });
  });

  test('two expectations at once, or a vector that does not exist', () => {
    const both = buildSources('both.elf', {
      'both.c': `${HEADER}KVMTEST(both, .should_panic = true, .should_fault = FAULT_GP) {}\n`,
    });
    assert.match(thrown(() => loadTestTable(both)), /sets \.should_panic and \.should_fault; a test expects one outcome/);
    const vector = buildSources('vector.elf', { 'vector.c': `${HEADER}KVMTEST(vector, .should_fault = 300) {}\n` });
    assert.match(thrown(() => loadTestTable(vector)), /\.should_fault = 300 is not an exception vector/);
  });

  describe('damaged records', () => {
    let bytes: Uint8Array;
    let tableOffset: number;
    before(() => {
      const path = buildSources('one.elf', { 'one.c': `${HEADER}KVMTEST(one) {}\n` });
      bytes = new Uint8Array(readFileSync(path));
      tableOffset = findSection(parseElf(bytes, path), TEST_TABLE_SECTION)!.offset;
    });

    function patched(at: number, write: (view: DataView) => void): string {
      const copy = bytes.slice();
      write(new DataView(copy.buffer, tableOffset + at));
      return thrown(() => readTestTable(parseElf(copy, 'one.elf')));
    }

    test('bad magic', () => {
      assert.match(
        patched(0, (v) => v.setUint32(0, 0x12345678, true)),
        /one\.elf: the \.kvmtest record at offset 0x0 \(address 0x[0-9a-f]+\) has bad magic 0x12345678 \(expected 0x544d564b, "KVMT"\)/,
      );
    });

    test('a version this kvmtest does not read', () => {
      assert.match(patched(4, (v) => v.setUint16(0, 4, true)), /has version 4; this kvmtest reads versions 1, 2, 3:/);
    });

    test('a record size smaller than its version\'s', () => {
      assert.match(patched(6, (v) => v.setUint16(0, 64, true)), /says it is 64 bytes, too small: a version 3 record has at least 512/);
      assert.match(patched(6, (v) => v.setUint16(0, 504, true)), /says it is 504 bytes, too small: a version 3 record has at least 512/);
    });

    test('a version 1 record may be as small as 336 bytes', () => {
      const copy = bytes.slice();
      const view = new DataView(copy.buffer, tableOffset);
      view.setUint16(4, 1, true);
      view.setUint16(6, 336, true);
      const [test] = readTestTable(parseElf(copy, 'one.elf'));
      assert.deepEqual([test!.name, test!.heap, test!.cpuid], ['one', undefined, undefined]);
    });

    test('a version 2 record may be as small as 504 bytes (the 8 zero bytes after it are padding)', () => {
      const copy = bytes.slice();
      const view = new DataView(copy.buffer, tableOffset);
      view.setUint16(4, 2, true);
      view.setUint16(6, 504, true);
      const [test] = readTestTable(parseElf(copy, 'one.elf'));
      assert.deepEqual([test!.name, test!.cpus, test!.apic], ['one', undefined, undefined]);
    });

    test('a record size beyond the section', () => {
      assert.match(patched(6, (v) => v.setUint16(0, 600, true)), /is 600 bytes, but the section ends 512 bytes after its start/);
    });

    test('more CPUs than kvmtest runs', () => {
      assert.match(patched(504, (v) => v.setUint32(0, 17, true)), /test "one" \(\S+one\.c:2\): \.cpus = 17 is more than kvmtest runs \(at most 16 CPUs\)/);
    });

    test('.heap that is not whole pages, a .cpuid entry without a register', () => {
      assert.match(patched(336, (v) => v.setBigUint64(0, 100n, true)), /\.heap = 100 is not a multiple of 4096 bytes/);
      assert.match(patched(344 + 20, (v) => v.setUint32(0, 0xd, true)), /\.cpuid\[1\] \(leaf 0xd\) has \.reg = 0; give CPUID_EAX, CPUID_EBX, CPUID_ECX or CPUID_EDX/);
    });

    test('a name pointer outside the image', () => {
      assert.match(
        patched(8, (v) => v.setBigUint64(0, 0x10n, true)),
        /its name points at 0x10, which is not in any loadable segment/,
      );
    });
  });
});
