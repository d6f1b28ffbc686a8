// <kvmtest/x86.h>: every wrapper, run in the guest against the machine the
// engine builds and the ports a test configures.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { LAYOUT } from '../../src/machine/layout.js';
import { guestTest } from '../helpers/kvm.js';
import { buildFixtures, describeResult, skipIfUnemulated, TestBinary } from './sdk-helpers.js';

describe('x86.h', guestTest(), () => {
  let binary: TestBinary;
  before(() => {
    binary = new TestBinary(buildFixtures('x86.elf', ['x86.c']));
  });

  async function returns(name: string): Promise<string> {
    const result = await binary.run(name);
    assert.equal(result.outcome, 'returned', describeResult(result));
    return result.output;
  }

  test('inb, inw and inl read configured ports', async () => {
    assert.deepEqual(
      [...binary.test('port_reads').ioports],
      [[0x1, 0xfe], [0x2, 0xbeef], [0x3, 0xdeadbeef]],
    );
    await returns('port_reads');
  });

  test('outb, outw and outl may write the configured value', async () => {
    await returns('port_writes_of_the_configured_value');
  });

  test('writing another value to a configured port fails the test', async () => {
    const result = await binary.run('port_write_of_another_value');
    assert.equal(result.outcome, 'unexpected-io', describeResult(result));
    assert.match(result.message ?? '', /write \(out\) of 0x34 to port 0x80/);
  });

  test('rdmsr and wrmsr', async () => {
    await returns('msr_round_trip');
  });

  test('read_cr0/3/4 and write_cr0/3/4', async () => {
    const output = await returns('control_registers');
    const cr3 = /cr3=(0x[0-9a-f]+)/.exec(output)?.[1];
    assert.equal(BigInt(cr3 ?? -1), LAYOUT.pageTables, output);
  });

  test('sgdt and sidt see the engine GDT and the runtime IDT', async () => {
    const output = await returns('descriptor_tables');
    // The runtime copies the engine's IDT (256 gates) to hook vectors 0-31 for ktry.
    assert.equal(output, `gdt=${'0x' + LAYOUT.gdt.toString(16)}/0x27 idt_limit=0xfff\n`);
  });

  test('lgdt and lidt round trip', async () => {
    await returns('load_descriptor_tables');
  });

  test('cpuid', async () => {
    const output = await returns('cpuid_vendor');
    assert.match(output, /^vendor=[\x20-\x7e]{12} family=\d+\n$/);
  });

  test('rdtsc advances and matches IA32_TSC', async () => {
    await returns('tsc_advances');
  });

  test('rdtscp reads IA32_TSC_AUX', async (t) => {
    const result = await binary.run('rdtscp_reads_tsc_aux');
    if (skipIfUnemulated(t, result)) return;
    assert.equal(result.outcome, 'returned', describeResult(result));
  });

  test('xgetbv reads XCR0, or raises #UD without CR4.OSXSAVE', async (t) => {
    const result = await binary.run('xgetbv_reads_xcr0');
    if (skipIfUnemulated(t, result)) return;
    assert.equal(result.outcome, 'returned', describeResult(result));
  });

  test('invlpg, wbinvd and pause', async () => {
    await returns('invlpg_and_caches');
  });

  test('cli, sti and RFLAGS.IF; read_rflags and write_rflags', async () => {
    await returns('interrupt_flag');
  });

  test('read_cs, read_ds and read_ss give the engine selectors', async () => {
    assert.equal(await returns('segment_selectors'), 'cs=0x8 ds=0x10 ss=0x10\n');
  });

  test('read_cr8 and write_cr8', async () => {
    await returns('task_priority');
  });

  test('hlt halts (a .should_halt test)', async () => {
    assert.deepEqual(binary.test('halts').expect, { kind: 'halt' });
    const result = await binary.run('halts');
    assert.equal(result.outcome, 'halted', describeResult(result));
  });
});
