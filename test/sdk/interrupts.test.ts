// The guest side of interrupts, the APIC and several CPUs (kvmtest/isr.h,
// apic.h, smp.h, sdk/runtime/apic.c, smp.c, the interrupt stubs in
// exceptions.S): fixtures/interrupts.c run test by test the way the runner
// runs them (its executor: .apic and .cpus machines, kvmtest_smp_entry),
// each on machines of its own; the stubs' layout read from the ELF.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import { parseElf } from '../../src/image/elf.js';
import { loadImage } from '../../src/image/image.js';
import { BinaryExecutor } from '../../src/runner/executor.js';
import type { TestResult } from '../../src/runner/types.js';
import { getKvm, getRunTimer } from '../../src/session/host.js';
import { guestTest, toolchainTest } from '../helpers/kvm.js';
import { buildFixtures, FIXTURES, lineOf, TestBinary } from './sdk-helpers.js';

const FIXTURE = 'interrupts.c';
const TIMEOUT_MS = 5000;
const FIRST_IRQ_VECTOR = 32;
const IRQ_STUB_SIZE = 16n;

let binary: TestBinary;

before(() => {
  binary = new TestBinary(buildFixtures('interrupts.elf', [FIXTURE]));
});

describe('the interrupt stubs', toolchainTest(), () => {
  test('224 stubs, 16 bytes apart from kt_irq_stubs_start, one per vector 32-255', () => {
    const elf = parseElf(readFileSync(binary.path), binary.path);
    const symbol = (name: string) => elf.symbols.find((s) => s.name === name)?.value;
    const start = symbol('kt_irq_stubs_start');
    assert.ok(start !== undefined && start % IRQ_STUB_SIZE === 0n);
    for (let vector = FIRST_IRQ_VECTOR; vector < 256; vector++) {
      assert.equal(symbol(`kt_irq_stub_${vector}`), start + BigInt(vector - FIRST_IRQ_VECTOR) * IRQ_STUB_SIZE, `vector ${vector}`);
    }
    assert.equal(symbol('kt_irq_stubs_end'), start + 224n * IRQ_STUB_SIZE);
  });
});

describe('interrupts, the APIC and several CPUs, on KVM', guestTest(), () => {
  let executor: BinaryExecutor;
  before(() => {
    const image = loadImage({ elfBytes: readFileSync(binary.path), name: binary.path });
    executor = new BinaryExecutor(getKvm(), getRunTimer(), image, { isolation: 'snapshot', defaultTimeoutMs: TIMEOUT_MS });
  });
  after(() => {
    executor.close();
    getRunTimer().stop();
  });

  /** One test of the fixture, as a worker runs it (machines reused between tests, restored from their snapshots). */
  function run(name: string): TestResult {
    return executor.run(binary.test(name));
  }

  const show = (r: TestResult) => `${r.status} ${r.outcome ?? ''}: ${r.message ?? ''}${r.output ? `\noutput: ${r.output}` : ''}`;
  const at = (text: string) => `${join(FIXTURES, FIXTURE)}:${lineOf(FIXTURE, text)}`;

  function passes(t: TestContext, name: string): void {
    const r = run(name);
    if (r.status === 'skipped') {
      t.skip(r.message ?? 'skipped');
      return;
    }
    assert.equal(r.status, 'passed', show(r));
  }

  function panics(name: string, message: string): void {
    const r = run(name);
    assert.equal(r.outcome, 'panicked', show(r));
    assert.ok(r.message?.includes(message), show(r));
  }

  test('in a test with neither option: one CPU, smp_id() 0, on_cpu and on_cpus call the function', (t) => {
    passes(t, 'one_cpu_without_an_apic');
  });

  test('an APIC access in a test without an APIC fails it with what to declare', () => {
    panics('apic_read_without_an_apic', 'apic_read: this test has no local APIC or IOAPIC: declare it with .apic = true (or .cpus = N)');
  });

  test('handle_irq refuses exception vectors and vectors above 255, at the caller\'s line', () => {
    panics('handle_irq_with_an_exception_vector',
      `panicked at ${at('handle_irq(14')}: handle_irq: vector 14 is not an interrupt vector (32-255): exceptions take handle_exception`);
    panics('handle_irq_above_255', `panicked at ${at('handle_irq(256')}: handle_irq: vector 256 is not an interrupt vector (32-255)`);
  });

  test('vector 0x20 is the test\'s with one CPU, the runtime\'s (on_cpu\'s IPIs) with several', (t) => {
    passes(t, 'the_ipi_vector_is_free_with_one_cpu');
    panics('the_ipi_vector_is_the_runtimes_with_several_cpus',
      `panicked at ${at("/* on_cpu's */")}: handle_irq: vector 0x20 is the runtime's own in a test with several CPUs (on_cpu's IPIs, KVMTEST_IPI_VECTOR): use another vector`);
  });

  test('an interrupt without a handler, or whose handler was removed, reaches the engine as unexpected', () => {
    for (const [name, vector] of [['a_vector_without_a_handler_reaches_the_engine', 0x90], ['a_removed_handler_forwards_to_the_engine', 0x91]] as const) {
      const r = run(name);
      assert.equal(r.outcome, 'fault', show(r));
      assert.equal(r.fault?.vector, vector, show(r));
      assert.match(r.message ?? '', new RegExp(`unexpected interrupt 0x${vector.toString(16)} at kt_test_${name}\\+0x`), show(r));
    }
  });

  test('a handler sees the vector and the frame, and the registers it changes are the interrupted code\'s', (t) => {
    passes(t, 'a_handler_sees_the_frame_and_changes_registers');
  });

  test('the timer helpers set the LVT entry, the divider and the counts', (t) => {
    passes(t, 'timer_registers');
  });

  test('IOAPIC redirection entries read back as written; set_mask keeps the rest', (t) => {
    passes(t, 'ioapic_redirection_entries');
  });

  test('set_irq_line refuses a pin the IOAPIC does not have, at the caller\'s line', () => {
    panics('set_irq_line_beyond_the_pins', `panicked at ${at('set_irq_line(IOAPIC_LINES')}: set_irq_line: line 24 is not an IOAPIC pin (0-23)`);
  });

  test('CPU n has APIC ID n, and on_cpus runs on every CPU', (t) => {
    passes(t, 'apic_ids_are_cpu_numbers');
  });

  test('handle_exception\'s handlers serve other CPUs, on their own handler stacks', (t) => {
    passes(t, 'exception_handlers_serve_other_cpus');
  });

  test('four CPUs take NMIs at once, each on its own handler stack', (t) => {
    passes(t, 'nmis_on_four_cpus_at_once');
  });

  test('ktry and run_in_user on another CPU than 0 fail the test, naming it', () => {
    panics('ktry_on_another_cpu', 'ktry: called on CPU 1; it works on CPU 0 only');
    panics('run_in_user_on_another_cpu', `panicked at ${at('run_in_user((usermode_func)')}: run_in_user: called on CPU 1; it works on CPU 0 only`);
  });

  test('work for CPU 0 from another CPU runs when CPU 0 takes interrupts', (t) => {
    passes(t, 'work_for_cpu0_runs_when_it_takes_interrupts');
  });

  test('x2APIC mode is per CPU: CPU 1 in x2APIC mode sends an IPI to CPU 0 in xAPIC mode', (t) => {
    passes(t, 'x2apic_on_one_cpu_only');
  });

  test('on_cpu to a CPU the test does not have fails at the caller\'s line', () => {
    panics('on_cpu_to_a_cpu_that_does_not_exist',
      `panicked at ${at('on_cpu(2,')}: on_cpu: CPU 2 does not exist: this test has 2 (0-1; .cpus = N gives more)`);
  });
});
