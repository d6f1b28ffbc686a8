// kvm-unit-tests' guest library (<kvmtest/desc.h>, <kvmtest/usermode.h>):
// handlers, exception tables and *_safe, gates, ktry beside them, run_in_user,
// misuse, and exceptions nobody claims, which must reach the engine exactly
// as they do without the runtime. The fixtures run through `kvmtest run
// --reporter json`, as a user runs them.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, test, type TestContext } from 'node:test';
import { parseElf } from '../../src/image/elf.js';
import { SymbolTable } from '../../src/image/symbols.js';
import { LAYOUT } from '../../src/machine/layout.js';
import type { JsonTest } from '../../src/report/json.js';
import { describeRun, kvmtest, runJson, tempDir } from '../cli/helpers.js';
import { guestTest, IN_CI, isSoftwareKvm } from '../helpers/kvm.js';
import { describeResult, FIXTURES, lineOf, TestBinary } from './sdk-helpers.js';

async function build(name: string, ccArgs: readonly string[] = [], env?: NodeJS.ProcessEnv, tag = ''): Promise<string> {
  const elf = join(tempDir(), `${name}${tag}.elf`);
  const result = await kvmtest(['cc', ...ccArgs, '-o', elf, join(FIXTURES, `${name}.c`)], env ? { env } : {});
  if (result.status !== 0) throw new Error(`building ${name}.c failed:\n${describeRun(result)}`);
  return elf;
}

/** Every test of the binary, by name, from one `kvmtest run --reporter json`. */
async function runAll(elf: string): Promise<Map<string, JsonTest>> {
  const { report } = await runJson([elf]);
  return new Map(report.tests.map((t) => [t.name, t]));
}

function show(t: JsonTest): string {
  return `${t.status}/${t.outcome}: ${t.message ?? ''}${t.output ? `\noutput: ${JSON.stringify(t.output)}` : ''}`;
}

/** Skips a test this host's KVM cannot run (an emulation failure), saying why; false when it ran. */
function skippedForHost(t: TestContext, result: JsonTest): boolean {
  if (result.outcome === 'error' && /emulation failure/.test(result.message ?? '')) {
    t.skip(`this host's KVM cannot emulate an instruction the test needs: ${result.message}`);
    return true;
  }
  return false;
}

/** The instructions of `fn` in `elf`, without addresses and bytes. */
function disassemble(elf: string, fn: string): string[] {
  const out = execFileSync('objdump', ['-d', '--no-show-raw-insn', `--disassemble=${fn}`, elf], { encoding: 'utf8' });
  return out
    .split('\n')
    .filter((l) => /^\s+[0-9a-f]+:\t/.test(l))
    .map((l) => l.replace(/^\s+[0-9a-f]+:\t/, '').replace(/\s+#.*$/, '').replace(/0x[0-9a-f]+\(%rip\)/, 'X(%rip)').trim())
    .filter((l) => !/^(nop|data16|xchg\s+%ax,%ax)/.test(l));
}

describe('handle_exception, exception tables and gates', guestTest(), () => {
  let elf: string;
  let results: Map<string, JsonTest>;
  before(async () => {
    elf = await build('exceptions');
    results = await runAll(elf);
  });
  const result = (name: string): JsonTest => {
    const found = results.get(name);
    assert.ok(found, `no result for ${name}`);
    return found;
  };

  const passing = [
    ['a handler resumes at the rip it sets, with vector, error code, rip, cs and ss in its ex_regs', 'handler_resumes_at_the_rip_it_sets'],
    ['a handler sees every general register and rsp, and the code after the fault sees its changes', 'handler_sees_and_changes_every_register'],
    ['#UD, #GP, #DE and #PF handled in one test, each several times', 'several_exceptions_in_one_test'],
    ['handle_exception returns the previous handler; NULL hands the vector back to the engine', 'handle_exception_returns_the_previous_handler'],
    ['a #PF inside a #GP handler goes to the #PF handler, and the #GP handler goes on with its ex_regs intact', 'a_fault_inside_a_handler_goes_to_its_own_handler'],
    ['ASM_TRY resumes at its label with exception_vector() and exception_error_code(); one that catches nothing clears them', 'asm_try_resumes_at_the_label_with_the_vector'],
    ['ASM_TRY catches a #PF with its error code', 'asm_try_catches_a_page_fault_with_its_error_code'],
    ['ASM_TRY("%l[label]") in asm goto, as kvm-unit-tests writes it', 'asm_try_with_asm_goto'],
    ['rdmsr_safe and wrmsr_safe', 'safe_msr_accesses'],
    ['write_cr0_safe, write_cr3_safe and write_cr4_safe', 'safe_control_register_writes'],
    ['lgdt_safe, lidt_safe and ltr_safe, with the selector as error code', 'safe_descriptor_table_loads'],
    ['set_idt_entry installs a gate of the test (selector, type, IST), set_idt_dpl/ist/sel change it', 'set_idt_entry_installs_a_gate_of_the_test'],
    ['set_idt_entry above 31 grows the IDT, the vectors in between keep the engine gates', 'set_idt_entry_above_31_grows_the_idt'],
    ['ktry and handlers share one IDT: the handler takes its vector inside a ktry, ktry the rest; it stays loaded after', 'ktry_and_handlers_share_the_idt'],
    ['ktry alone puts the engine IDT back when it ends, as before', 'ktry_alone_puts_the_engine_idt_back'],
    ['an IDT the test loads inside a ktry stays loaded after it', 'ktry_keeps_an_idt_the_test_loads'],
    ['an IDT copied from the runtime one: rebuilding from it still forwards to the engine (no loop)', 'an_idt_copied_from_the_runtime_one_still_reaches_the_engine'],
    ['a test that uses none of it keeps the engine IDT', 'no_handlers_keep_the_engine_idt'],
    ['test_for_exception says whether the vector was raised', 'test_for_exception_says_whether_the_vector_was_raised'],
    ['set_intr_alt_stack puts a gate of the test on IST1', 'set_intr_alt_stack_puts_the_gate_on_ist1'],
  ] as const;
  for (const [what, name] of passing) {
    test(what, () => {
      assert.equal(result(name).status, 'passed', show(result(name)));
    });
  }

  // Instructions this host's KVM may lack: skipped there, with the reason.
  const hostDependent = [
    ['xgetbv_safe and xsetbv_safe', 'safe_xcr_accesses'],
    ['invpcid_safe (#UD without INVPCID in CPUID)', 'safe_invpcid'],
    ['int $0x80 reaches a gate set with set_idt_entry', 'int_0x80_through_a_gate_of_the_test'],
  ] as const;
  for (const [what, name] of hostDependent) {
    test(what, (t) => {
      const r = result(name);
      if (skippedForHost(t, r)) return;
      if (r.status === 'skipped') return t.skip(r.message ?? '');
      assert.equal(r.status, 'passed', show(r));
    });
  }

  test('an exception nobody claims reaches the engine with the message it has without handlers', () => {
    const without = result('unclaimed_page_fault_without_handlers');
    const beside = result('unclaimed_page_fault_beside_a_handler');
    const expected = (fn: string) =>
      new RegExp(`^#PF \\(page fault\\) at ${fn}(\\+0x[0-9a-f]+)?( at [^ ]+:\\d+)? \\(0x[0-9a-f]+\\): supervisor-mode write to a not-present page \\(error code 0x2\\) at 0xdead000$`);
    assert.match(without.message ?? '', expected('kt_test_unclaimed_page_fault_without_handlers'), show(without));
    assert.match(beside.message ?? '', expected('kt_test_unclaimed_page_fault_beside_a_handler'), show(beside));
    for (const r of [without, beside]) {
      assert.deepEqual([r.status, r.outcome, r.fault?.vector, r.fault?.errorCode, r.fault?.cr2], ['failed', 'fault', 14, 2, '0xdead000']);
    }
    // The rip is the faulting instruction's, not a stub's.
    const at = BigInt(beside.fault!.rip);
    const listing = execFileSync('objdump', ['-d', `--start-address=${at}`, `--stop-address=${at + 16n}`, elf], { encoding: 'utf8' });
    assert.match(listing, new RegExp(`${at.toString(16)}:.*mov.*0xdead000`), listing);
  });

  test('the engine sees the CPU frame of an unclaimed exception: rsp back on the test stack', async () => {
    const r = await new TestBinary(elf).run('unclaimed_page_fault_beside_a_handler');
    assert.equal(r.outcome, 'fault', describeResult(r));
    assert.ok(r.regs.rsp < LAYOUT.stackTop && r.regs.rsp > LAYOUT.stackTop - 0x10000n, `rsp 0x${r.regs.rsp.toString(16)}`);
  });

  test('a stack overflow beside a handler: still reported as the #PF on the guard page', () => {
    const r = result('stack_overflow_beside_a_handler');
    assert.equal(r.fault?.vector, 14, show(r));
    const cr2 = BigInt(r.fault!.cr2!);
    assert.ok(cr2 >= LAYOUT.stackTop - 0x11000n && cr2 < LAYOUT.stackTop - 0x10000n, `cr2 ${r.fault!.cr2} is in the guard page`);
    assert.match(r.message ?? '', /supervisor-mode write to a not-present page/);
  });

  test('an unclaimed exception beside a handler reaches the engine with every register as at the instruction', async () => {
    const r = await new TestBinary(elf).run('unclaimed_fault_keeps_every_register');
    assert.equal(r.outcome, 'fault', describeResult(r));
    assert.equal(r.fault?.vector, 6);
    const expected = {
      rax: 0x1111n, rbx: 0x2222n, rcx: 0x3333n, rdx: 0x4444n, rsi: 0x5555n, rdi: 0x6666n, rbp: 0x7777n, r8: 0x8888n,
      r9: 0x9999n, r10: 0xaaaan, r11: 0xbbbbn, r12: 0xccccn, r13: 0xddddn, r14: 0xeeeen, r15: 0xffffn,
    };
    for (const [reg, value] of Object.entries(expected)) {
      assert.equal(r.regs[reg as keyof typeof expected], value, `${reg} = 0x${r.regs[reg as keyof typeof expected].toString(16)}`);
    }
    assert.match(r.fault!.location, /^kt_test_unclaimed_fault_keeps_every_register\+0x[0-9a-f]+ /);
  });

  test('an unclaimed #GP keeps its error code, which the message reads as an LDT selector', () => {
    const r = result('unclaimed_selector_fault_beside_a_handler');
    assert.equal(r.fault?.errorCode, 0x1234, show(r));
    assert.match(r.message ?? '', /: error code 0x1234 \(LDT selector 0x1234 \(index 582\)\)$/);
  });

  test('a handler that faults with a vector nobody handles: reported where it faulted, inside the handler', () => {
    const r = result('a_handler_that_faults');
    assert.equal(r.fault?.vector, 14, show(r));
    assert.match(r.fault?.location ?? '', /^gp_that_faults(\+0x[0-9a-f]+)? /);
    assert.match(r.message ?? '', /at 0x20 \(inside an exception handler: rsp is on the runtime's handler stack\)$/);
  });

  test('a handler that keeps faulting with its own vector: reported, not a hang or a triple fault', () => {
    const r = result('a_handler_that_faults_with_its_own_vector');
    assert.equal(r.outcome, 'fault', show(r));
    assert.match(r.fault?.location ?? '', /^pf_that_faults(\+0x[0-9a-f]+)? /);
    assert.equal(r.fault?.cr2, '0x28');
    assert.match(r.message ?? '', /inside an exception handler/);
  });

  test("a triple fault's register dump names the function at rip", () => {
    const r = result('triple_fault_names_the_function');
    assert.equal(r.outcome, 'triple-fault', show(r));
    assert.match(r.message ?? '', /\nrip [0-9a-f]{16} rflags [0-9a-f]{16} \(rip at kt_test_triple_fault_names_the_function\+0x[0-9a-f]+( at [^ ]+:\d+)? \(0x[0-9a-f]+\)\)\n/);
  });

  const mistakes = [
    ['handle_exception_vector_out_of_range', 'handle_exception(32', 'handle_exception: vector 32 is an interrupt, not an exception (0-31): use handle_irq'],
    ['set_idt_entry_vector_out_of_range', 'set_idt_entry(256', 'set_idt_entry: vector 256 is out of range (0-255)'],
    ['set_idt_entry_dpl_out_of_range', 'set_idt_entry(6, own_ud_handler, 4)', 'set_idt_entry: dpl 4 is out of range (0-3)'],
    ['set_idt_ist_out_of_range', 'set_idt_ist(6, 8)', 'set_idt_ist: IST index 8 is out of range (0-7)'],
    [
      'test_for_exception_with_another_vector_fails_the_test',
      'test_for_exception(PF_VECTOR',
      'test_for_exception: the trigger raised #GP (vector 13), not #PF',
    ],
  ] as const;
  for (const [name, call, message] of mistakes) {
    test(`misuse: ${message}, at the caller's line`, () => {
      const r = result(name);
      assert.equal(r.outcome, 'panicked', show(r));
      assert.equal(r.message, `panicked at ${join(FIXTURES, 'exceptions.c')}:${lineOf('exceptions.c', call)}: ${message}`);
    });
  }

  test("addresses in the runtime's assembly are named by their symbols", () => {
    const symbols = new SymbolTable(parseElf(readFileSync(elf), elf).symbols);
    for (const name of ['kt_stub_13', 'kt_exception_common', 'kt_asm_try_arm', 'kt_user_enter', 'kt_user_trampoline', 'kt_user_landing', 'ktry']) {
      const symbol = symbols.byName(name);
      assert.ok(symbol, `${name} is in the symbol table`);
      assert.match(symbols.describe(symbol.value + 2n), new RegExp(`^${name}\\+0x2 \\(0x[0-9a-f]+\\)$`));
    }
  });

  test('kvmtest_entry does nothing for the exception library: a test that installs nothing pays nothing', () => {
    // Its whole work: note the record, clear ktry's frame, take the heap
    // (.heap tests only: a version check skips it) and jump to the test.
    const code = disassemble(elf, 'kvmtest_entry');
    assert.deepEqual(code.slice(0, 3), ['cmpw   $0x1,0x4(%rsi)', 'mov    %rsi,X(%rip)', 'movq   $0x0,X(%rip)'], code.join('\n'));
    assert.ok(code.length <= 13, `at most 13 instructions, of which a test without a heap runs 5 to 8:\n${code.join('\n')}`);
    assert.ok(!code.some((line) => /\b(call|lidt|sidt|lgdt)\b/.test(line)), `no call and no descriptor table:\n${code.join('\n')}`);
  });
});

describe('run_in_user', guestTest(), () => {
  let results: Map<string, JsonTest>;
  before(async () => {
    results = await runAll(await build('usermode'));
  });
  const result = (name: string): JsonTest => {
    const found = results.get(name);
    assert.ok(found, `no result for ${name}`);
    return found;
  };

  const passing = [
    ['returns the value of a function run at CPL 3, and leaves the engine GDT, segments and FS/GS bases behind', 'returns_the_value_of_a_function_run_at_cpl3'],
    ['catches #GP raised in user mode', 'catches_gp_in_user_mode'],
    ['catches #PF raised in user mode (a supervisor page), with the user bit in the error code', 'catches_pf_in_user_mode'],
    ['run_in_user_ex calls its handler with the ring-3 frame', 'run_in_user_ex_calls_the_handler_first'],
    ['ASM_TRY works in ring 3', 'asm_try_in_user_mode'],
    ['a ktry around run_in_user catches what run_in_user does not, and puts the machine back', 'ktry_around_run_in_user'],
    ['syscall from ring 3 to an LSTAR handler of the test that returns with iretq', 'syscall_with_an_iretq_return'],
  ] as const;
  for (const [what, name] of passing) {
    test(what, () => {
      assert.equal(result(name).status, 'passed', show(result(name)));
    });
  }

  test('sprintln and kassert work in ring 3', () => {
    const r = result('prints_and_checks_in_user_mode');
    assert.equal(r.status, 'passed', show(r));
    assert.equal(r.output, 'in ring 3 with 7\n');
  });

  test('a failed kassert in ring 3 fails the test (never taken for fault_vector = #GP)', () => {
    const r = result('a_failed_check_in_user_mode_fails_the_test');
    assert.equal(r.outcome, 'assert-failed', show(r));
    assert.match(r.message ?? '', /value == 7/);
  });

  test('another vector in ring 3 reaches the engine, which names the user-mode access', () => {
    const r = result('another_vector_in_user_mode_reaches_the_engine');
    assert.equal(r.outcome, 'fault', show(r));
    assert.match(r.message ?? '', /^#PF \(page fault\) at touch_engine_page(\+0x[0-9a-f]+)?( at [^ ]+:\d+)? \(0x[0-9a-f]+\): user-mode read from a page that does not allow it \(error code 0x5\) at 0x1000$/);
  });

  test('sysretq back to ring 3 (software KVMs raise #GP on it: skipped there)', (t) => {
    const r = result('syscall_with_a_sysretq_return');
    if (isSoftwareKvm() && r.outcome === 'assert-failed' && /#GP \(error code 0\) at (0x[0-9a-f]+) with cs 0x4b; sysretq is at \1/.test(r.message ?? '')) {
      return t.skip(`this host's KVM (PVM) raises #GP on sysretq: ${r.message}`);
    }
    assert.equal(r.status, 'passed', show(r));
  });

  test('int $0x80 from ring 3 through a DPL-3 gate (software KVMs raise #UD on int n: skipped there)', (t) => {
    const r = result('int_0x80_from_user_mode');
    if (isSoftwareKvm() && r.outcome === 'fault' && r.fault?.vector === 6 && /^int_0x80/.test(r.fault.location)) {
      return t.skip(`this host's KVM (PVM) raises #UD on int $0x80 in ring 3: ${r.message}`);
    }
    assert.equal(r.status, 'passed', show(r));
  });

  const mistakes = [
    ['run_in_user_without_raised_vector', 'run_in_user: raised_vector is NULL; pass a bool * that tells whether fault_vector was raised'],
    ['run_in_user_vector_out_of_range', 'run_in_user: fault_vector 32 is out of range (0-31)'],
    [
      'run_in_user_with_other_descriptors_at_the_user_selectors',
      /^run_in_user needs kvm-unit-tests' user segments at 0x38-0x48 \(USER_CS32, USER_DS, USER_CS64\); the GDT loaded \(base 0x[0-9a-f]+, limit 0x7f\) has other descriptors there$/,
    ],
    [
      'run_in_user_with_smep_on',
      /^run_in_user: CR4\.SMEP or CR4\.SMAP is set \(cr4 0x[0-9a-f]+\); run_in_user gives the test image the U bit, and ring 0 could then neither run it \(SMEP\) nor touch its data \(SMAP\): clear them first$/,
    ],
  ] as const;
  for (const [name, message] of mistakes) {
    test(`misuse: ${name.replace(/_/g, ' ')}`, (t) => {
      const r = result(name);
      if (r.status === 'skipped') return t.skip(r.message ?? '');
      assert.equal(r.outcome, 'panicked', show(r));
      const text = (r.message ?? '').replace(/^panicked at [^:]+:\d+: /, '');
      if (typeof message === 'string') assert.equal(text, message);
      else assert.match(text, message);
      assert.match(r.message ?? '', /^panicked at .*usermode\.c:\d+: /, 'reported at the caller');
    });
  }
});

function clangMissing(): string | undefined {
  try {
    execFileSync('clang', ['--version'], { stdio: 'ignore' });
    return undefined;
  } catch {
    return 'clang is not installed (apt-get install clang)';
  }
}

describe('the guest library in other builds', guestTest(), () => {
  /** name -> "status/outcome" for every test of a build. */
  async function verdicts(elf: string): Promise<Record<string, string>> {
    const all = await runAll(elf);
    return Object.fromEntries([...all.values()].map((t) => [t.name, `${t.status}/${t.outcome}`]));
  }

  for (const fixture of ['exceptions', 'usermode']) {
    test(`${fixture}.c linked in the higher half gives every test the same verdict`, async () => {
      const low = await verdicts(await build(fixture));
      const high = await verdicts(await build(fixture, ['--higher-half'], undefined, '-higher-half'));
      assert.deepEqual(high, low);
    });

    test(`${fixture}.c built with clang gives every test the same verdict`, { skip: IN_CI ? undefined : clangMissing() }, async () => {
      const env = { ...process.env, CC: 'clang', KVMTEST_CACHE_DIR: join(tempDir(), 'clang-cache') };
      const low = await verdicts(await build(fixture));
      const clang = await verdicts(await build(fixture, [], env, '-clang'));
      assert.deepEqual(clang, low);
    });
  }
});

describe('the guest library in a shared object, in mirror mode', guestTest(), () => {
  test('ASM_TRY (rdmsr_safe), handle_exception and test_for_exception work in functions of a kvmtest cc -shared library', async () => {
    const so = join(tempDir(), 'guestlib-shared.so');
    const built = await kvmtest(['cc', '-shared', '-o', so, join(FIXTURES, 'guestlib-shared.c')]);
    assert.equal(built.status, 0, describeRun(built));
    const result = await kvmtest(['run', '--reporter', 'json', join(FIXTURES, 'guestlib-mirror.kvmtest.ts')], {
      env: { ...process.env, KVMTEST_GUESTLIB_SO: so },
    });
    const report = JSON.parse(result.stdout) as { tests: JsonTest[] };
    assert.deepEqual(
      report.tests.map((t) => [t.name, t.status]),
      [
        ['rdmsr_safe returns #GP for a missing MSR', 'passed'],
        ['rdmsr_safe returns 0 for EFER', 'passed'],
        ['a handle_exception handler skips a ud2', 'passed'],
        ['test_for_exception sees #GP', 'passed'],
      ],
      describeRun(result),
    );
  });
});
