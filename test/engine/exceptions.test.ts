// Exceptions reach the engine's IDT and come back as a 'fault' with vector,
// name, error code, rip (and cr2 for #PF), and the registers at the faulting
// instruction. Vectors this host cannot raise are skipped with the reason.
// Also: triple faults and emulation failures, which end a run without the IDT.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { runGuest } from '../../src/index.js';
import { guestSkipReason, guestTest, isSoftwareKvm } from '../helpers/kvm.js';
import { addressOf, assemble, flat, symbolTable } from '../helpers/toolchain.js';

/** Vectors raised only with `int $n` in 64-bit mode (no error code is pushed, so the engine reads the frame right). */
const INT_N_VECTORS: ReadonlyArray<{ vector: number; name: string; why: string }> = [
  { vector: 2, name: 'NMI', why: 'there is no NMI source in the machine' },
  { vector: 4, name: '#OF', why: 'INTO is invalid in 64-bit mode' },
  { vector: 5, name: '#BR', why: 'BOUND is invalid in 64-bit mode' },
  { vector: 9, name: 'coprocessor segment overrun', why: 'CPUs after the 386 never raise it' },
  { vector: 15, name: 'reserved (15)', why: 'the vector is reserved' },
  { vector: 18, name: '#MC', why: 'a machine check needs a hardware error' },
  { vector: 20, name: '#VE', why: 'a virtualization exception needs EPT-violation #VE set up by a hypervisor' },
  ...[22, 23, 24, 25, 26, 27].map((vector) => ({ vector, name: `reserved (${vector})`, why: 'the vector is reserved' })),
  { vector: 28, name: '#HV', why: 'hypervisor injection exceptions exist only in AMD SEV-SNP guests' },
  { vector: 31, name: 'reserved (31)', why: 'the vector is reserved' },
  { vector: 0x20, name: 'interrupt 0x20', why: 'the machine has no interrupt controller' },
];

const intN = INT_N_VECTORS.map(({ vector }) => `
int_${vector}:
  int $${vector}
int_${vector}_after:
  ret`).join('\n');

// One function per way to raise an exception; *_at labels mark the
// instruction the CPU reports.
const ELF = `
  .text
  .type divide_error, @function
divide_error:
  xor %ecx, %ecx
  mov $1, %eax
  xor %edx, %edx
de_at:
  div %ecx
  ret

single_step:
  pushfq
  orq $0x100, (%rsp)        # RFLAGS.TF
  popfq
  nop                       # stepped; #DB is a trap: rip is after it
db_at:
  nop
  ret

breakpoint:
  int3
bp_after:
  ret

invalid_opcode:
ud_at:
  ud2

device_not_available:
  mov %cr0, %rax
  or $8, %rax               # CR0.TS
  mov %rax, %cr0
nm_at:
  fxsave fxsave_area
  ret

double_fault:
  # The #GP gate made not present: a #GP then raises #NP while it is being
  # delivered, and two contributory exceptions make a #DF.
  sub $16, %rsp
  sidt (%rsp)
  mov 2(%rsp), %rax
  add $16, %rsp
  andb $0x7f, 13*16+5(%rax)
  mov $0xdeadbeef, %ecx
  xor %eax, %eax
  xor %edx, %edx
  wrmsr
df_end:
  ret

invalid_tss:
  # A TSS whose limit ends before its IST1 field, and the #TS gate moved to
  # the current stack (IST 0): the next exception through an IST gate cannot
  # load its stack pointer and raises #TS.
  mov $tss, %rax
  mov %ax, gdt+0x20+2
  shr $16, %rax
  mov %al, gdt+0x20+4
  lgdt gdtr
  sub $16, %rsp
  sidt (%rsp)
  mov 2(%rsp), %rax
  add $16, %rsp
  movb $0, 10*16+4(%rax)
  mov $0x20, %ax
  ltr %ax
ts_at:
  ud2

segment_not_present:
  lgdt gdtr
  mov $0x18, %ax            # a data segment with P = 0
np_at:
  mov %ax, %ds
  ret

stack_segment:
  movabs $0x8000000000000000, %rbp
ss_at:
  mov (%rbp), %rax          # non-canonical through rbp: #SS
  ret

gp_msr:
  mov $0xdeadbeef, %ecx     # no such MSR
  xor %eax, %eax
  xor %edx, %edx
gp_msr_at:
  wrmsr
  ret

gp_noncanonical:
  movabs $0x8000000000000000, %rax
gp_nc_at:
  mov (%rax), %rax          # non-canonical, not through rsp/rbp: #GP
  ret

page_fault:
  xor %eax, %eax
pf_at:
  movq $1, (%rax)
  ret

x87_error:
  fninit
  sub $8, %rsp
  fnstcw (%rsp)
  andw $~4, (%rsp)          # unmask divide-by-zero
  fldcw (%rsp)
  add $8, %rsp
  fld1
  fdivl zero                # 1/0: pending, raised by the next waiting instruction
mf_at:
  fwait
  ret

simd_error:
  push $0                   # MXCSR = 0: every SIMD exception unmasked
  ldmxcsr (%rsp)
  add $8, %rsp
  xorps %xmm0, %xmm0
xm_at:
  divss %xmm0, %xmm0        # 0/0: invalid operation
  ret
${intN}

  .data
  .balign 16
fxsave_area: .fill 512, 1, 0
zero: .double 0.0
gdt:
  .quad 0
  .quad 0x00af9b000000ffff  # 0x08: 64-bit code, as in the engine's GDT
  .quad 0x00cf93000000ffff  # 0x10: data
  .quad 0x00cf13000000ffff  # 0x18: data, not present
  .quad 0x0000890000000000 + 0x1f, 0  # 0x20: TSS, limit 0x1f (base filled in)
gdtr:
  .word 47
  .quad gdt
  .balign 16
tss: .fill 104, 1, 0
`;

let elf: string;
let syms: Map<string, bigint>;
let triple: Uint8Array;

before(() => {
  if (guestSkipReason()) return;
  elf = assemble(ELF, { name: 'exceptions' });
  syms = symbolTable(elf);
  // Marks rax, loads an IDT with limit 0 and raises #UD: nothing can be delivered.
  triple = flat(`
    mov $0x7e57, %eax
    sub $16, %rsp
    movw $0, (%rsp)
    movq $0, 2(%rsp)
    lidt (%rsp)
    ud2
  `);
});

const at = (name: string) => addressOf(syms, name);

interface VectorCase {
  vector: number;
  name: string;
  /** How the guest raises it. */
  how: string;
  entry: string;
  /** The reported rip: a symbol, or a range of symbols when the SDM leaves it undefined (#DF). */
  rip: string | { from: string; to: string };
  errorCode?: number | ((code: number) => void);
  cr2?: bigint;
  /** Known to be missing from software KVMs (PVM): skip there unless the vector arrives. */
  softwareKvmGap?: string;
}

const CASES: VectorCase[] = [
  { vector: 0, name: '#DE', how: 'div by zero', entry: 'divide_error', rip: 'de_at' },
  { vector: 1, name: '#DB', how: 'single step (RFLAGS.TF)', entry: 'single_step', rip: 'db_at' },
  { vector: 3, name: '#BP', how: 'int3', entry: 'breakpoint', rip: 'bp_after' },
  { vector: 6, name: '#UD', how: 'ud2', entry: 'invalid_opcode', rip: 'ud_at' },
  { vector: 7, name: '#NM', how: 'fxsave with CR0.TS set', entry: 'device_not_available', rip: 'nm_at' },
  {
    vector: 8, name: '#DF', how: '#GP whose gate is not present', entry: 'double_fault', errorCode: 0,
    // The SDM calls the saved rip of a #DF undefined: only require it inside the function.
    rip: { from: 'double_fault', to: 'df_end' },
  },
  {
    vector: 10, name: '#TS', how: 'an IST stack beyond the TSS limit', entry: 'invalid_tss', rip: 'ts_at',
    // Selector 0x20 (the TSS), with the EXT bit possibly set (the #UD being delivered).
    errorCode: (code) => assert.equal(code & ~1, 0x20, `error code 0x${code.toString(16)} names the TSS selector 0x20`),
    softwareKvmGap: 'does not raise #TS for an IST stack beyond the TSS limit',
  },
  { vector: 11, name: '#NP', how: 'loading ds with a not-present descriptor', entry: 'segment_not_present', rip: 'np_at', errorCode: 0x18 },
  { vector: 12, name: '#SS', how: 'a non-canonical address through rbp', entry: 'stack_segment', rip: 'ss_at', errorCode: 0 },
  { vector: 13, name: '#GP', how: 'wrmsr to a bogus MSR', entry: 'gp_msr', rip: 'gp_msr_at', errorCode: 0 },
  { vector: 14, name: '#PF', how: 'a write to address 0', entry: 'page_fault', rip: 'pf_at', errorCode: 0x2, cr2: 0n },
  { vector: 16, name: '#MF', how: 'an unmasked x87 divide by zero', entry: 'x87_error', rip: 'mf_at' },
  { vector: 19, name: '#XM', how: 'an unmasked SSE 0/0', entry: 'simd_error', rip: 'xm_at' },
  ...INT_N_VECTORS.map(({ vector, name, why }) => ({
    vector, name, how: `int $${vector} (${why})`, entry: `int_${vector}`, rip: `int_${vector}_after`,
    // PVM fails to emulate most `int $n`; some it turns into #GP, and 26 and
    // 27 are its own hypercall vectors that never reach the guest's IDT.
    softwareKvmGap: `does not deliver int $${vector} through the guest's IDT`,
  })),
];

/**
 * Vectors nothing here can raise; each says why. #AC in particular: CR0.AM and
 * RFLAGS.AC only check alignment at CPL 3, and kvmtest guests run in ring 0.
 */
const NOT_RAISABLE: ReadonlyArray<{ vector: number; name: string; why: string }> = [
  { vector: 17, name: '#AC', why: 'alignment checks apply only at CPL 3 (CR0.AM with RFLAGS.AC); guests run in ring 0' },
  { vector: 21, name: '#CP', why: 'control-protection faults need CET shadow stacks, which the machine does not enable; `int $21` would push no error code' },
  { vector: 29, name: '#VC', why: 'VMM communication exceptions exist only in AMD SEV-ES guests; `int $29` would push no error code' },
  { vector: 30, name: '#SX', why: 'security exceptions come only from AMD SVM INIT redirection; `int $30` would push no error code' },
];

describe('every exception vector arrives through the IDT', () => {
  for (const c of CASES) {
    test(`vector ${c.vector} ${c.name} (${c.how})`, guestTest(), async (t) => {
      const r = await runGuest({ image: { elf }, entry: c.entry });
      if (isSoftwareKvm() && r.outcome === 'error' && r.error?.kind === 'emulation-failure') {
        const bytes = (r.error.instructionBytes ?? []).slice(0, 4).map((b) => b.toString(16).padStart(2, '0')).join(' ');
        t.skip(`this software KVM cannot emulate an instruction needed to raise ${c.name} (emulation failure on ${bytes}...)`);
        return;
      }
      if (c.softwareKvmGap && isSoftwareKvm() && r.fault?.vector !== c.vector) {
        t.skip(`this software KVM ${c.softwareKvmGap} (the run ended as ${r.outcome}${r.fault ? ` with ${r.fault.name}` : ''})`);
        return;
      }
      assert.equal(r.outcome, 'fault', r.message);
      const f = r.fault!;
      assert.equal(f.vector, c.vector);
      assert.equal(f.name, c.name);
      if (typeof c.errorCode === 'function') {
        assert.notEqual(f.errorCode, undefined, 'an error code');
        c.errorCode(f.errorCode!);
      } else {
        assert.equal(f.errorCode, c.errorCode);
      }
      if (typeof c.rip === 'string') {
        assert.equal(f.rip, at(c.rip), `rip at ${c.rip}`);
      } else {
        assert.ok(f.rip >= at(c.rip.from) && f.rip < at(c.rip.to), `rip 0x${f.rip.toString(16)} inside ${c.rip.from}`);
      }
      assert.equal(f.cr2, c.cr2);
      assert.equal(r.regs.rip, f.rip, 'the register dump shows the faulting rip');
      assert.ok(r.message?.includes(c.name), `the message names ${c.name}: ${r.message}`);
    });
  }

  for (const { vector, name, why } of NOT_RAISABLE) {
    test(`vector ${vector} ${name}`, { skip: `cannot be raised here: ${why}` }, () => {});
  }

  test('#GP from a non-canonical address', guestTest(), async () => {
    const r = await runGuest({ image: { elf }, entry: 'gp_noncanonical' });
    assert.equal(r.outcome, 'fault', r.message);
    assert.equal(r.fault?.vector, 13);
    assert.equal(r.fault?.name, '#GP');
    assert.equal(r.fault?.errorCode, 0);
    assert.equal(r.fault?.rip, at('gp_nc_at'));
    assert.equal(r.regs.rip, at('gp_nc_at'));
    assert.equal(r.regs.rax, 0x8000000000000000n, 'registers as they were at the fault');
  });

  test('a fault names the function it happened in', guestTest(), async () => {
    const r = await runGuest({ image: { elf }, entry: 'divide_error' });
    const rip = at('de_at');
    const offset = rip - at('divide_error');
    assert.equal(r.fault?.location, `divide_error+0x${offset.toString(16)} (0x${rip.toString(16)})`);
    assert.match(r.message ?? '', /#DE \(divide error\) at divide_error\+0x/);
  });
});

describe('runs that end without the IDT', () => {
  test('an IDT with limit 0 turns #UD into a triple fault, with a register dump', guestTest(), async () => {
    const r = await runGuest({ image: { flat: triple, loadAddress: 0x100000 } });
    assert.equal(r.outcome, 'triple-fault', r.message);
    const m = r.message ?? '';
    assert.match(m, /triple fault/);
    assert.match(m, /rax 0000000000007e57\b/, 'the dump shows the guest registers');
    for (const reg of ['rbx', 'rsp', 'r15', 'rflags', 'cr0', 'cr3', 'efer']) assert.match(m, new RegExp(`\\b${reg}\\s+[0-9a-f]{16}\\b`));
    assert.match(m, new RegExp(`rip ${r.regs.rip.toString(16).padStart(16, '0')}\\b`), 'the dump agrees with r.regs');
    assert.equal(r.regs.rax, 0x7e57n);
  });

  test('int3: an emulation failure on a software KVM, #BP on hardware; never lost', guestTest(), async () => {
    const r = await runGuest({ image: { elf }, entry: 'breakpoint' });
    if (r.outcome === 'error') {
      assert.equal(r.error?.kind, 'emulation-failure', r.message);
      assert.equal(r.error?.instructionBytes?.[0], 0xcc, 'the bytes at rip start with int3');
      assert.match(r.message ?? '', /emulation failure/);
      assert.equal(r.regs.rip, at('breakpoint'));
    } else {
      assert.equal(isSoftwareKvm(), false, `a software KVM ran int3 (outcome ${r.outcome}): ${r.message}`);
      assert.equal(r.outcome, 'fault', r.message);
      assert.equal(r.fault?.vector, 3);
      assert.equal(r.fault?.rip, at('bp_after'));
    }
    if (isSoftwareKvm()) assert.equal(r.outcome, 'error', 'PVM cannot emulate int3');
  });
});
