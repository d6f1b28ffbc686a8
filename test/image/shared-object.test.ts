// Reading a shared object's tests as a file (readSharedObject, and kvmtest
// run --list): names, options and link-time addresses as nm and readelf see
// them, with gcc and clang; pointers held only by RELATIVE relocations (the
// bytes zeroed, or packed as RELR); relocations the reader cannot resolve
// from the file refused; and running a shared object refused clearly.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { parseElf } from '../../src/image/elf.js';
import { dynamicRelocations, R_X86_64_RELATIVE } from '../../src/image/relocations.js';
import { readSharedObject, SharedObjectError } from '../../src/image/shared-object.js';
import { guestTest, toolchainTest } from '../helpers/kvm.js';
import { clangSkipReason, symbolTable } from '../helpers/toolchain.js';
import { CAN_BUILD, describeRun, FIXTURES, kvmtest, lines, tempDir } from '../cli/helpers.js';

const nm = symbolTable;

async function buildShared(name: string, cc: string, extra: string[] = []): Promise<string> {
  const so = join(tempDir(), name);
  const built = await kvmtest(['cc', '-shared', ...extra, '-o', so, join(FIXTURES, 'shared.c')], { env: { ...process.env, CC: cc } });
  assert.equal(built.status, 0, describeRun(built));
  return so;
}

/** Links GNU assembly into a shared object with gcc alone (no kvmtest cc, no -Bsymbolic). */
function linkAsm(name: string, source: string): string {
  const dir = mkdtempSync(join(tempDir(), `${name}-`));
  writeFileSync(join(dir, `${name}.s`), source);
  const so = join(dir, `${name}.so`);
  execFileSync('gcc', ['-shared', '-nostdlib', '-Wl,-z,noexecstack', '-o', so, join(dir, `${name}.s`)], { stdio: ['ignore', 'ignore', 'pipe'] });
  return so;
}

/** A hand-written record (docs/test-table.md's layout): `fn` and `ramFrom` are assembly expressions. */
function asmRecord(fn: string, ramFrom = '0'): string {
  return `
    .text
    .globl kvmtest_entry
kvmtest_entry:
    jmp *%rdi
    .globl my_test
my_test:
    ret
    .section .rodata
name: .asciz "my_test"
file: .asciz "my_test.s"
    .section .kvmtest, "aw", @progbits
    .balign 8
    .long 0x544d564b
    .short 1, 336
    .quad name, ${fn}, file
    .long 12, 0
    .zero 136
    .quad ${ramFrom}, 0
    .zero 128
    .long -1, 0
    .zero 8
`;
}

for (const { cc, skip } of [{ cc: 'gcc', skip: undefined }, { cc: 'clang', skip: clangSkipReason() }]) {
  describe(`a shared object's tests, built with ${cc}`, () => {
    let so = '';
    before(async () => {
      if (CAN_BUILD && !skip) so = await buildShared(`read-${cc}.so`, cc);
    });

    test('names, options and link-time addresses match nm; the entry and the symbols are there', toolchainTest({ skip }), () => {
      const shared = readSharedObject(so);
      const symbols = nm(so);
      assert.deepEqual(shared.tests.map((t) => t.name), ['bumps_the_counter', 'panics', 'reads_a_port']);
      for (const t of shared.tests) {
        assert.equal(t.record, symbols.get(`kt_record_${t.name}`), `${t.name}'s record`);
        assert.equal(t.fn, symbols.get(`kt_test_${t.name}`), `${t.name}'s fn`);
        assert.equal(t.binary, so);
        assert.equal(t.file, join(FIXTURES, 'shared.c'));
      }
      const [bumps, panics, reads] = shared.tests;
      assert.deepEqual(bumps!.expect, { kind: 'return' });
      assert.deepEqual(panics!.expect, { kind: 'panic' });
      assert.equal(panics!.timeoutMs, 250);
      assert.deepEqual([...reads!.ioports], [[0x61, 7]]);
      assert.equal(shared.entry, nm(so, true).get('kvmtest_entry'));
      assert.equal(shared.exports.get('shared_bump')?.value, symbols.get('shared_bump'));
      assert.ok(!shared.exports.has('memcpy'), 'the runtime\'s memcpy is not exported');
      assert.equal(shared.symbols.describe(bumps!.fn + 4n), `kt_test_bumps_the_counter+0x4 (0x${(bumps!.fn + 4n).toString(16)})`);
    });

    test('the same tests when the pointers\' bytes in the file are 0 and only the RELATIVE relocations hold them', toolchainTest({ skip }), () => {
      const zeroed = join(tempDir(), `zeroed-${cc}.so`);
      copyFileSync(so, zeroed);
      const bytes = readFileSync(zeroed);
      const elf = parseElf(bytes, zeroed, { allowShared: true });
      const section = elf.sections.find((s) => s.name === '.kvmtest')!;
      const inTable = dynamicRelocations(elf).filter((r) => r.address >= section.addr && r.address < section.addr + BigInt(section.size));
      assert.equal(inTable.length, 9, 'name, fn and file of three records');
      assert.ok(inTable.every((r) => r.type === R_X86_64_RELATIVE));
      for (const r of inTable) bytes.fill(0, section.offset + Number(r.address - section.addr), section.offset + Number(r.address - section.addr) + 8);
      writeFileSync(zeroed, bytes);
      const strip = (t: { binary: string }) => ({ ...t, binary: '' });
      assert.deepEqual(readSharedObject(zeroed).tests.map(strip), readSharedObject(so).tests.map(strip));
    });
  });
}

describe('a shared object\'s relocations', () => {
  test('RELR-packed RELATIVE relocations (-z pack-relative-relocs) read the same', toolchainTest(), async () => {
    const [plain, packed] = await Promise.all([buildShared('plain.so', 'gcc'), buildShared('relr.so', 'gcc', ['-Wl,-z,pack-relative-relocs'])]);
    assert.match(execFileSync('readelf', ['-d', packed], { encoding: 'utf8' }), /\(RELR\)/, 'the linker packed them');
    const strip = (t: { binary: string }) => ({ ...t, binary: '' });
    assert.deepEqual(readSharedObject(packed).tests.map(strip), readSharedObject(plain).tests.map(strip));
  });

  test('a record\'s fn bound to an exported symbol at load time (R_X86_64_64) is refused with what to do', toolchainTest(), () => {
    const so = linkAsm('symbolic-fn', asmRecord('my_test'));
    assert.throws(() => readSharedObject(so), (err: Error) => {
      assert.ok(err instanceof SharedObjectError);
      assert.match(err.message, /the \.kvmtest record at offset 0x0 .*: its fn pointer is a R_X86_64_64 relocation against my_test, which the loader resolves only at run time; a record's pointers must be addresses inside the object \(R_X86_64_RELATIVE\): make the symbol static or hidden, or link with `kvmtest cc -shared`/);
      return true;
    });
  });

  test('a relocation outside the pointer fields (an address as a RAM range) is refused', toolchainTest(), () => {
    const so = linkAsm('stray', asmRecord('my_test_local', 'name').replace('my_test:', 'my_test:\nmy_test_local:'));
    assert.throws(() => readSharedObject(so), /the \.kvmtest section has a R_X86_64_RELATIVE relocation at offset 0xb0 \(address 0x[0-9a-f]+\), outside any record's name, fn and file pointers: the other fields are numbers/);
  });

  test('a stripped object still has its entry and its tests, from the dynamic symbols', toolchainTest(), async () => {
    const so = await buildShared('to-strip.so', 'gcc');
    const stripped = join(tempDir(), 'stripped.so');
    execFileSync('strip', ['--strip-all', '-o', stripped, so]);
    const shared = readSharedObject(stripped);
    assert.equal(shared.entry, nm(so, true).get('kvmtest_entry'));
    assert.equal(shared.tests.length, 3);
    assert.ok(shared.symbols.byName('shared_bump'));
  });

  test('an executable is not a shared object', toolchainTest(), async () => {
    const elf = join(tempDir(), 'not-shared.elf');
    const built = await kvmtest(['cc', '-o', elf, join(FIXTURES, 'shared.c')]);
    assert.equal(built.status, 0, describeRun(built));
    assert.throws(() => readSharedObject(elf), /not-shared\.elf is an executable, not a shared object: build one with `kvmtest cc -shared`/);
  });
});

describe('kvmtest run and a shared object', () => {
  let so = '';
  before(async () => {
    if (CAN_BUILD) so = await buildShared('run.so', 'gcc');
  });

  test('--list lists its tests', toolchainTest(), async () => {
    const listed = await kvmtest(['run', '--list', so]);
    assert.equal(listed.status, 0, describeRun(listed));
    assert.deepEqual(lines(listed.stdout), ['bumps_the_counter: test', 'panics: test', 'reads_a_port: test', '', '3 tests']);
  });

  test('running it runs its tests in mirror mode', guestTest(), async () => {
    const ran = await kvmtest(['run', so]);
    assert.equal(ran.status, 0, describeRun(ran));
    assert.match(ran.stdout, /test bumps_the_counter \.\.\. ok\ntest panics \.\.\. ok\ntest reads_a_port \.\.\. ok\n/);
  });
});
