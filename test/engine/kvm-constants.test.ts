// Guards for the numbers src/kvm/ copies from <linux/kvm.h>: a C program
// compiled against the system header prints every ioctl number, struct size
// and kvm_run offset, and each must match. A wrong number would otherwise
// show up as a confusing EINVAL or a garbled register far from its cause.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import {
  CAP, EXIT, INTERNAL_ERROR, IOCTL, KVM_API_VERSION, KVM_EXIT_IO_IN, KVM_EXIT_IO_OUT, KVM_MEM_LOG_DIRTY_PAGES,
  KVM_MEM_READONLY, KVM_MSR_EXIT_REASON_FILTER, KVM_MSR_FILTER_DEFAULT_ALLOW, KVM_MSR_FILTER_MAX_BITMAP_SIZE,
  KVM_MSR_FILTER_MAX_RANGES, KVM_MSR_FILTER_WRITE, KVM_SYNC_X86_EVENTS, KVM_SYNC_X86_REGS, KVM_SYNC_X86_SREGS, RUN, SIZEOF,
} from '../../src/kvm/constants.js';
import { decodeRegs, decodeSregs } from '../../src/kvm/structs.js';
import { IN_CI, toolchainUnavailableReason } from '../helpers/kvm.js';
import { compileAndRunC } from '../helpers/toolchain.js';

const HEADER = '/usr/include/linux/kvm.h';

/** Macros whose value the program prints, by name; `#ifdef` so a missing one shows up as missing, not as a build error. */
const MACROS: Record<string, number> = {
  ...IOCTL,
  ...CAP,
  ...EXIT,
  ...INTERNAL_ERROR,
  KVM_API_VERSION,
  KVM_EXIT_IO_IN,
  KVM_EXIT_IO_OUT,
  KVM_SYNC_X86_REGS,
  KVM_SYNC_X86_SREGS,
  KVM_SYNC_X86_EVENTS,
  KVM_MEM_LOG_DIRTY_PAGES,
  KVM_MEM_READONLY,
  KVM_MSR_EXIT_REASON_FILTER,
  KVM_MSR_FILTER_WRITE,
  KVM_MSR_FILTER_DEFAULT_ALLOW,
  KVM_MSR_FILTER_MAX_RANGES,
  KVM_MSR_FILTER_MAX_BITMAP_SIZE,
};

/** kvm_run offsets: RUN's names -> the C member designator. */
const RUN_MEMBERS: Record<keyof typeof RUN, string> = {
  immediate_exit: 'immediate_exit',
  exit_reason: 'exit_reason',
  exit: 'io', // the first member of the per-exit union
  msr_error: 'msr.error',
  msr_index: 'msr.index',
  msr_data: 'msr.data',
  kvm_valid_regs: 'kvm_valid_regs',
  kvm_dirty_regs: 'kvm_dirty_regs',
  sync_regs: 's.regs.regs',
  sync_sregs: 's.regs.sregs',
  sync_events: 's.regs.events',
};

/** Fields the struct decoders read, checked by planting a value at the C offset. */
const REGS_FIELDS = ['rax', 'rsp', 'r8', 'r15', 'rip', 'rflags'] as const;
const SREGS_FIELDS = ['cr0', 'cr2', 'cr3', 'cr4', 'cr8', 'efer', 'apic_base'] as const;

function program(): string {
  const lines = [
    '#include <stdio.h>',
    '#include <stddef.h>',
    '#include <linux/kvm.h>',
    'int main(void) {',
  ];
  for (const name of Object.keys(MACROS)) {
    lines.push(`#ifdef ${name}`, `  printf("macro ${name} %llu\\n", (unsigned long long)(${name}));`, '#endif');
  }
  for (const name of Object.keys(SIZEOF)) lines.push(`  printf("sizeof ${name} %zu\\n", sizeof(struct ${name}));`);
  for (const [name, member] of Object.entries(RUN_MEMBERS)) {
    lines.push(`  printf("run ${name} %zu\\n", offsetof(struct kvm_run, ${member}));`);
  }
  for (const f of REGS_FIELDS) lines.push(`  printf("regs ${f} %zu\\n", offsetof(struct kvm_regs, ${f}));`);
  for (const f of SREGS_FIELDS) lines.push(`  printf("sregs ${f} %zu\\n", offsetof(struct kvm_sregs, ${f}));`);
  for (const seg of ['cs', 'tr']) lines.push(`  printf("sregs ${seg}.selector %zu\\n", offsetof(struct kvm_sregs, ${seg}.selector));`);
  for (const dt of ['gdt', 'idt']) lines.push(`  printf("sregs ${dt}.limit %zu\\n", offsetof(struct kvm_sregs, ${dt}.limit));`);
  lines.push('  return 0;', '}');
  return lines.join('\n');
}

let values: Map<string, number>;

function skipReason(): string | undefined {
  if (IN_CI) return undefined;
  return toolchainUnavailableReason() ?? (existsSync(HEADER) ? undefined : `${HEADER} is missing (install the Linux UAPI headers)`);
}

const options = () => {
  const reason = skipReason();
  return reason ? { skip: reason } : {};
};

before(() => {
  if (skipReason()) return;
  values = new Map();
  for (const line of compileAndRunC(program(), 'kvm-constants').split('\n')) {
    const m = /^(\S+ \S+) (\d+)$/.exec(line);
    if (m) values.set(m[1]!, Number(m[2]));
  }
});

function fromHeader(key: string): number {
  const value = values.get(key);
  assert.notEqual(value, undefined, `${key.split(' ')[1]} is not defined in ${HEADER}`);
  return value!;
}

describe('KVM constants agree with <linux/kvm.h>', () => {
  test('ioctl request numbers (IOCTL)', options(), () => {
    for (const [name, value] of Object.entries(IOCTL)) {
      assert.equal(value.toString(16), fromHeader(`macro ${name}`).toString(16), name);
    }
  });

  test('capabilities, exit reasons and flags', options(), () => {
    for (const [name, value] of Object.entries(MACROS)) {
      if (name in IOCTL) continue;
      assert.equal(value, fromHeader(`macro ${name}`), name);
    }
  });

  test('struct sizes (SIZEOF)', options(), () => {
    for (const [name, value] of Object.entries(SIZEOF)) assert.equal(value, fromHeader(`sizeof ${name}`), `sizeof(struct ${name})`);
  });

  test('kvm_run offsets (RUN)', options(), () => {
    for (const [name, value] of Object.entries(RUN)) {
      assert.equal(value, fromHeader(`run ${name}`), `offsetof(struct kvm_run, ${RUN_MEMBERS[name as keyof typeof RUN]})`);
    }
  });

  test('the register decoders read the fields at their C offsets', options(), () => {
    const regs = new DataView(new ArrayBuffer(SIZEOF.kvm_regs));
    REGS_FIELDS.forEach((f, i) => regs.setBigUint64(fromHeader(`regs ${f}`), 0x1000n + BigInt(i), true));
    const decoded = decodeRegs(regs);
    REGS_FIELDS.forEach((f, i) => assert.equal(decoded[f], 0x1000n + BigInt(i), `kvm_regs.${f}`));

    const sregs = new DataView(new ArrayBuffer(SIZEOF.kvm_sregs));
    SREGS_FIELDS.forEach((f, i) => sregs.setBigUint64(fromHeader(`sregs ${f}`), 0x2000n + BigInt(i), true));
    sregs.setUint16(fromHeader('sregs cs.selector'), 0x08, true);
    sregs.setUint16(fromHeader('sregs tr.selector'), 0x18, true);
    sregs.setUint16(fromHeader('sregs gdt.limit'), 0x27, true);
    sregs.setUint16(fromHeader('sregs idt.limit'), 0xfff, true);
    const s = decodeSregs(sregs);
    const names = { cr0: 'cr0', cr2: 'cr2', cr3: 'cr3', cr4: 'cr4', cr8: 'cr8', efer: 'efer', apic_base: 'apicBase' } as const;
    SREGS_FIELDS.forEach((f, i) => assert.equal(s[names[f]], 0x2000n + BigInt(i), `kvm_sregs.${f}`));
    assert.equal(s.cs.selector, 0x08, 'kvm_sregs.cs.selector');
    assert.equal(s.tr.selector, 0x18, 'kvm_sregs.tr.selector');
    assert.equal(s.gdt.limit, 0x27, 'kvm_sregs.gdt.limit');
    assert.equal(s.idt.limit, 0xfff, 'kvm_sregs.idt.limit');
  });
});
