// `kvmtest cc` from the command line: it builds binaries whose tests the
// runner finds, and says clearly why it cannot build one.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { guestTest, toolchainTest } from '../helpers/kvm.js';
import { buildFixture, CAN_BUILD, describeRun, FIXTURES, kvmtest, lines, runJson, tempDir } from './helpers.js';

/** The "kvmtest cc: " prefix appears once: the command's messages are not prefixed twice. */
function assertOnePrefix(stderr: string): void {
  assert.equal(stderr.match(/kvmtest cc:/g)?.length, 1, `one "kvmtest cc:" prefix in:\n${stderr}`);
}

describe('kvmtest cc', () => {
  let multi = '';
  let higherHalf = '';

  before(async () => {
    if (!CAN_BUILD) return;
    [multi, higherHalf] = await Promise.all([
      buildFixture('multi.elf', ['multi-one.c', 'multi-two.c', 'multi-asm.S']),
      buildFixture('higher-half.elf', ['higher-half.c'], ['--higher-half']),
    ]);
  });

  test('builds one binary from several C files and a .S file; every test in them is found', toolchainTest(), async () => {
    assert.ok(existsSync(multi));
    const list = await kvmtest(['run', '--list', multi]);
    assert.equal(list.status, 0, describeRun(list));
    assert.deepEqual(lines(list.stdout), [
      'asm_prints: test',
      'asm_raises_ud: test',
      'one_prints: test',
      'one_reads_a_port: test',
      'two_calls_a_helper: test',
      '',
      '5 tests',
    ]);
  });

  test('the tests of a multi-source binary run and pass', guestTest(), async () => {
    const { result, report } = await runJson([multi]);
    assert.equal(result.status, 0, describeRun(result));
    assert.deepEqual(
      report.tests.map((t) => [t.name, t.status]),
      [
        ['asm_prints', 'passed'],
        ['asm_raises_ud', 'passed'],
        ['one_prints', 'passed'],
        ['one_reads_a_port', 'passed'],
        ['two_calls_a_helper', 'passed'],
      ],
    );
    assert.equal(report.tests.find((t) => t.name === 'asm_prints')!.output, 'A');
    assert.equal(report.tests.find((t) => t.name === 'one_prints')!.output, 'output of one_prints\n');
  });

  test('--higher-half links the tests at 0xffffffff80000000, where they run', guestTest(), async () => {
    const { result, report } = await runJson([higherHalf]);
    // One test passes in the higher half; the other faults there, and its RIP says where.
    assert.equal(result.status, 1, describeRun(result));
    const passed = report.tests.find((t) => t.name === 'runs_in_the_higher_half')!;
    assert.equal(passed.status, 'passed', passed.message ?? '');
    assert.equal(passed.output, 'output of runs_in_the_higher_half\n');
    const faulted = report.tests.find((t) => t.name === 'faults_in_the_higher_half')!;
    assert.equal(faulted.status, 'failed');
    assert.equal(faulted.fault?.name, '#UD');
    assert.ok(BigInt(faulted.fault!.rip) >= 0xffffffff80000000n, faulted.fault!.rip);
    assert.match(faulted.fault!.location, /^kt_test_faults_in_the_higher_half\b/);
  });

  test('without -o: exit status 2 and a message asking for -o', toolchainTest(), async () => {
    const result = await kvmtest(['cc', join(FIXTURES, 'passing.c')]);
    assert.equal(result.status, 2, describeRun(result));
    assert.match(result.stderr, /^kvmtest cc: no output file: give one with -o/);
    assertOnePrefix(result.stderr);
    assert.equal(result.stdout, '');
  });

  test('-o without a file name: exit status 2 and a message saying so', toolchainTest(), async () => {
    const result = await kvmtest(['cc', join(FIXTURES, 'passing.c'), '-o']);
    assert.equal(result.status, 2, describeRun(result));
    assert.match(result.stderr, /^kvmtest cc: -o needs a value/);
    assertOnePrefix(result.stderr);
  });

  test('without sources: exit status 2 and a message asking for source files', toolchainTest(), async () => {
    const output = join(tempDir(), 'no-sources.elf');
    const result = await kvmtest(['cc', '-o', output]);
    assert.equal(result.status, 2, describeRun(result));
    assert.match(result.stderr, /^kvmtest cc: no source files: give C \(\.c\) or assembly \(\.S\) files/);
    assertOnePrefix(result.stderr);
    assert.ok(!existsSync(output));
  });

  test("a compiler error: a non-zero exit status, the compiler's message on stderr, no binary", toolchainTest(), async () => {
    const output = join(tempDir(), 'bad.elf');
    const result = await kvmtest(['cc', '-o', output, join(FIXTURES, 'bad.c')]);
    assert.notEqual(result.status, 0, describeRun(result));
    // 2 means a usage error; a compiler failure is not one.
    assert.notEqual(result.status, 2, describeRun(result));
    assert.match(result.stderr, /bad\.c:5:\d+: error: .*this_is_not_declared/);
    assert.ok(!existsSync(output), 'no binary is left behind');
  });

  test('a missing compiler (CC=/nonexistent): exit status 2, install gcc or clang, or set CC', toolchainTest(), async () => {
    const output = join(tempDir(), 'no-compiler.elf');
    const result = await kvmtest(['cc', '-o', output, join(FIXTURES, 'passing.c')], { env: { ...process.env, CC: '/nonexistent' } });
    assert.equal(result.status, 2, describeRun(result));
    assert.match(result.stderr, /no C compiler found/);
    assert.match(result.stderr, /install gcc or clang, or set CC/);
    assert.match(result.stderr, /\/nonexistent/);
    assertOnePrefix(result.stderr);
    assert.ok(!existsSync(output));
  });
});

describe('kvmtest cc queries for editors and build systems', () => {
  test('--print-include-dir prints the directory that holds kvmtest.h', async () => {
    const result = await kvmtest(['cc', '--print-include-dir']);
    assert.equal(result.status, 0, describeRun(result));
    const dir = result.stdout.trimEnd();
    assert.ok(existsSync(join(dir, 'kvmtest.h')) && existsSync(join(dir, 'kvmtest', 'x86.h')), dir);
  });

  test('--print-cflags prints the flags kvmtest cc compiles test sources with', async () => {
    const result = await kvmtest(['cc', '--print-cflags']);
    assert.equal(result.status, 0, describeRun(result));
    const flags = result.stdout.trimEnd().split(' ');
    for (const flag of ['-ffreestanding', '-mgeneral-regs-only', '-mno-red-zone']) assert.ok(flags.includes(flag), flag);
    assert.ok(flags.some((f) => f.startsWith('-I') && existsSync(join(f.slice(2), 'kvmtest.h'))));
  });
});
