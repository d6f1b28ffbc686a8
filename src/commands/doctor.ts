// `kvmtest doctor`: says what this host's KVM can do. Opens /dev/kvm, tells
// hardware virtualization from a software-assisted KVM, and probes groups of
// instructions with one-instruction guests, so a user knows before writing a
// test whether its instructions can run here, and what to do if not.
import { existsSync } from 'node:fs';
import { KvmUnavailableError } from '../kvm/errors.js';
import { Kvm, KVM_DEVICE, REQUIRED_CAPS } from '../kvm/kvm.js';
import { vectorName } from '../machine/descriptors.js';
import { MAX_CPUS } from '../machine/machine.js';
import { type CpuidLeafView, guestCpuid } from '../machine/guest-cpuid.js';
import { snapshotUnsupportedReason } from '../machine/snapshot.js';
import type { GuestResult } from '../result.js';
import { runGuestSync } from '../run-guest.js';

interface Probe {
  group: string;
  code: number[];
  /** What a working host does: return (default), halt, or raise this vector. */
  expect?: 'halt' | number;
  /** The probe reads port 0x80 (configured for it). */
  port?: boolean;
}

const SUB_RSP_16 = [0x48, 0x83, 0xec, 0x10];
const ADD_RSP_16 = [0x48, 0x83, 0xc4, 0x10];

export const PROBES: readonly Probe[] = [
  { group: 'port I/O (in, out)', code: [0xe4, 0x80, 0xe6, 0x80], port: true },
  { group: 'cpuid', code: [0x31, 0xc0, 0x0f, 0xa2] },
  { group: 'rdtsc', code: [0x0f, 0x31] },
  { group: 'rdmsr, wrmsr', code: [0xb9, 0x80, 0x00, 0x00, 0xc0, 0x0f, 0x32, 0x0f, 0x30] },
  { group: 'control registers (mov cr0)', code: [0x0f, 0x20, 0xc0, 0x0f, 0x22, 0xc0] },
  { group: 'descriptor tables (sgdt, lgdt)', code: [...SUB_RSP_16, 0x0f, 0x01, 0x04, 0x24, 0x0f, 0x01, 0x14, 0x24, ...ADD_RSP_16] },
  { group: 'invlpg', code: [0x48, 0xc7, 0xc0, 0x00, 0x00, 0x20, 0x00, 0x0f, 0x01, 0x38] },
  { group: 'cli, sti', code: [0xfa, 0xfb, 0xfa] },
  { group: 'wbinvd', code: [0x0f, 0x09] },
  { group: 'swapgs', code: [0x0f, 0x01, 0xf8, 0x0f, 0x01, 0xf8] },
  { group: 'hlt', code: [0xf4], expect: 'halt' },
  { group: 'exceptions through the IDT (ud2 -> #UD)', code: [0x0f, 0x0b], expect: 6 },
  { group: 'int3 (-> #BP)', code: [0xcc], expect: 3 },
  { group: 'int n (int 0x20)', code: [0xcd, 0x20], expect: 0x20 },
  { group: 'SSE loads and stores (movdqu)', code: [...SUB_RSP_16, 0xf3, 0x0f, 0x6f, 0x04, 0x24, 0xf3, 0x0f, 0x7f, 0x04, 0x24, ...ADD_RSP_16] },
  { group: 'fxsave', code: [0x48, 0x89, 0xe0, 0x48, 0x81, 0xec, 0x20, 0x02, 0x00, 0x00, 0x48, 0x83, 0xe4, 0xf0, 0x0f, 0xae, 0x04, 0x24, 0x48, 0x89, 0xc4] },
  { group: 'SSE arithmetic (addps)', code: [0x0f, 0x58, 0xc0] },
  { group: 'SSE2 integer (pxor)', code: [0x66, 0x0f, 0xef, 0xc0] },
  { group: 'moves between XMM and general registers (movq)', code: [0x66, 0x48, 0x0f, 0x6e, 0xc0] },
  { group: 'x87 (fninit, fld1)', code: [0xdb, 0xe3, 0xd9, 0xe8, 0xdd, 0xd8] },
  { group: 'xgetbv', code: [0x31, 0xc9, 0x0f, 0x01, 0xd0] },
  { group: 'AVX (vaddps)', code: [0xc5, 0xfc, 0x58, 0xc0] },
  { group: 'vzeroupper', code: [0xc5, 0xf8, 0x77] },
  { group: 'rdtscp', code: [0x0f, 0x01, 0xf9] },
  { group: 'rdrand', code: [0x48, 0x0f, 0xc7, 0xf0] },
  { group: 'clac, stac (SMAP)', code: [0x0f, 0x01, 0xca, 0x0f, 0x01, 0xcb, 0x0f, 0x01, 0xca] },
  // invpcid type 2 (all contexts): the descriptor on the stack is not read.
  { group: 'invpcid', code: [...SUB_RSP_16, 0xb8, 0x02, 0x00, 0x00, 0x00, 0x66, 0x0f, 0x38, 0x82, 0x04, 0x24, ...ADD_RSP_16] },
  { group: 'clwb', code: [...SUB_RSP_16, 0x66, 0x0f, 0xae, 0x34, 0x24, ...ADD_RSP_16] },
  { group: 'rdpru', code: [0x31, 0xc9, 0x0f, 0x01, 0xfd] },
  { group: 'icebp (int1 -> #DB)', code: [0xf1], expect: 1 },
  // Hypercall 0 does not exist: KVM answers -KVM_ENOSYS in rax and the guest goes on.
  { group: 'vmcall (KVM hypercall)', code: [0x31, 0xc0, 0x0f, 0x01, 0xc1] },
  { group: 'an undefined opcode (0f 04 -> #UD)', code: [0x0f, 0x04], expect: 6 },
];

export interface ProbeResult {
  group: string;
  works: boolean;
  /** Why not, when it does not work. */
  why?: string;
}

export function runProbe(probe: Probe): ProbeResult {
  const code = Uint8Array.from([...probe.code, 0xc3]);
  const result = runGuestSync({
    image: { flat: code, loadAddress: 0x200000 },
    timeoutMs: 2000,
    ...(probe.port && { ioports: { 0x80: 0 } }),
  });
  return { group: probe.group, ...classify(probe, result) };
}

function classify(probe: Probe, r: GuestResult): { works: boolean; why?: string } {
  if (probe.expect === undefined && r.outcome === 'returned') return { works: true };
  if (probe.expect === 'halt' && r.outcome === 'halted') return { works: true };
  if (typeof probe.expect === 'number' && r.outcome === 'fault' && r.fault?.vector === probe.expect) return { works: true };
  if (r.outcome === 'error' && r.error?.kind === 'emulation-failure') {
    return { works: false, why: "emulation failure: this KVM's instruction emulator cannot run it" };
  }
  if (r.outcome === 'fault' && r.fault) {
    const hint = r.fault.vector === 6 ? ' (the vCPU does not offer the instruction or its feature is off)' : '';
    return { works: false, why: `raised ${vectorName(r.fault.vector)}${hint}` };
  }
  return { works: false, why: `${r.outcome}: ${r.message ?? ''}`.trim() };
}

const REGISTER_NAMES = ['eax', 'ebx', 'ecx', 'edx'] as const;

/** Where the guest's CPUID differs from the table kvmtest installs (KVM's). */
function describeCpuid(differences: readonly CpuidLeafView[]): string {
  if (differences.length === 0) return 'ok: the guest sees the table KVM reports as supported';
  const h = (n: number) => `0x${n.toString(16)}`;
  const parts = differences.flatMap(({ leaf, table, guest }) =>
    REGISTER_NAMES.flatMap((name, i) => (table[i] === guest[i] ? [] : [`leaf ${leaf} ${name} ${h(guest[i]!)} (KVM's table: ${h(table[i]!)})`])),
  );
  return `DIFFERS: the guest reads ${parts.join(', ')}. This KVM answers those leaves itself, whatever kvmtest ` +
    'installs; kvmtest sets up XSAVE (CR4.OSXSAVE, XCR0) as the guest sees it, but features only the guest sees ' +
    'may not work (the probes below say which instructions do)';
}

type Virtualization = { kind: 'hardware' | 'software' | 'unknown'; detail: string };

function detectVirtualization(): Virtualization {
  const module = (name: string) => existsSync(`/sys/module/${name}`);
  if (module('kvm_pvm')) {
    return {
      kind: 'software',
      detail: "software-assisted KVM (kvm_pvm): ring-0 guest code runs in KVM's instruction emulator, so it is slow (about 1.5 million instructions per second) and lacks some instructions",
    };
  }
  if (module('kvm_intel')) return { kind: 'hardware', detail: 'hardware-virtualized KVM (Intel VT-x, kvm_intel)' };
  if (module('kvm_amd')) return { kind: 'hardware', detail: 'hardware-virtualized KVM (AMD-V, kvm_amd)' };
  return { kind: 'unknown', detail: 'KVM of an unknown kind (no kvm_intel, kvm_amd or kvm_pvm module found)' };
}

/**
 * What to do about the groups that cannot run here. kvmtest run has two
 * ways to keep such tests from failing: --skip PATTERN leaves them out, and
 * kskip() lets a test skip itself. A test cannot catch an emulation
 * failure (it ends the run), so it must check before it uses the
 * instruction: a CPUID bit where the vCPU truly lacks the feature, and a
 * timing probe on a software-assisted KVM, whose CPUID shows features its
 * emulator cannot run.
 */
export function closingAdvice(missing: number, kind: Virtualization['kind']): string {
  if (missing === 0) return 'Everything probed works here.\n';
  if (kind === 'software') {
    return (
      `${missing} group(s) cannot run on this host. Tests that use them end in an emulation failure\n` +
      'here and run normally on a hardware-virtualized KVM (Intel VT-x or AMD-V, with kvm_intel or kvm_amd):\n' +
      'run such tests there. Here, leave them out with --skip PATTERN, or let each skip itself: a test cannot\n' +
      'catch an emulation failure, but it can check first and call kskip("reason") (this KVM\'s CPUID shows\n' +
      'features its emulator cannot run; a timing probe shows the emulator, about a thousand times slower).\n' +
      'Build test code with `kvmtest cc`: it keeps the compiler from emitting SSE on its own\n' +
      '(-mgeneral-regs-only) unless you pass --allow-simd.\n'
    );
  }
  return (
    `${missing} group(s) are not available: the vCPU lacks them (see the reasons above). kvmtest gives the guest\n` +
    'the CPUID that KVM reports as supported; a newer CPU or kernel may offer more. Tests that need them can\n' +
    'check CPUID and call kskip("reason") where the feature is missing, or be left out with --skip PATTERN.\n'
  );
}

/** What .apic and .cpus get here: the in-kernel controllers, how many vCPUs, which timer modes and APIC modes the CPUID offers. */
function describeInterrupts(kvm: Kvm): string {
  if (!kvm.checkExtension('KVM_CAP_IRQCHIP')) return 'NO in-kernel interrupt controller (KVM_CAP_IRQCHIP): tests with .apic or .cpus are skipped';
  const max = Math.min(kvm.checkExtension('KVM_CAP_MAX_VCPUS') || kvm.checkExtension('KVM_CAP_NR_VCPUS') || 4, MAX_CPUS);
  const leaf1 = guestCpuid(kvm).table.find((e) => e.function === 1);
  const offers = (bit: number) => ((leaf1?.ecx ?? 0) >>> bit) & 1;
  const extras = [offers(21) ? 'x2APIC' : 'no x2APIC (enable_x2apic() returns false)', offers(24) ? 'TSC-deadline timer' : 'no TSC-deadline timer'];
  return `ok: LAPIC, IOAPIC and PICs in the kernel; up to ${max} vCPUs per test (.cpus); ${extras.join(', ')}`;
}

export async function doctorCommand(out: NodeJS.WritableStream = process.stdout): Promise<number> {
  const line = (label: string, text: string) => out.write(`${label.padEnd(18)}${text}\n`);
  out.write('kvmtest doctor\n\n');
  let kvm: Kvm;
  try {
    kvm = Kvm.open();
  } catch (err) {
    if (!(err instanceof KvmUnavailableError)) throw err;
    line(KVM_DEVICE, `NOT USABLE: ${err.message}`);
    return 2;
  }
  line(KVM_DEVICE, 'ok: opens read-write, KVM API version 12');
  const virt = detectVirtualization();
  line('virtualization', virt.detail);
  line('capabilities', `ok: ${REQUIRED_CAPS.map((c) => c.replace('KVM_CAP_', '').toLowerCase()).join(', ')}`);
  const snapshot = [
    kvm.checkExtension('KVM_CAP_XSAVE') ? 'XSAVE state' : 'FPU state (no XSAVE)',
    'dirty-page logging',
    'MSR write traps',
  ];
  const unsupported = snapshotUnsupportedReason(kvm);
  line('snapshots', unsupported ? `OFF: ${unsupported}; every test gets a fresh VM (slower)` : `ok: ${snapshot.join(', ')}`);
  line('cpuid', describeCpuid(guestCpuid(kvm).differences));
  line('interrupts', describeInterrupts(kvm));
  kvm.close();

  out.write('\ninstruction groups, each probed with a one-instruction guest:\n');
  const results = PROBES.map(runProbe);
  for (const r of results) out.write(`  ${r.works ? 'ok ' : 'no '}  ${r.group}${r.works ? '' : `: ${r.why}`}\n`);
  const missing = results.filter((r) => !r.works);
  out.write(`\n${closingAdvice(missing.length, virt.kind)}`);
  return 0;
}
