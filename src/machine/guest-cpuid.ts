// The CPUID a guest really sees. kvmtest gives the vCPU the table KVM reports
// as supported (KVM_GET_SUPPORTED_CPUID), but some KVMs answer parts of it
// from elsewhere: PVM passes the host's own leaf 1 and leaf 7 through,
// whatever KVM_SET_CPUID2 installed, so a guest there sees XSAVE, AVX, SMEP
// and more that KVM's table leaves out. The engine's own set-up (CR4.OSXSAVE
// and XCR0) follows CPUID, so it must follow what the guest sees: a probe
// guest runs `cpuid` once per /dev/kvm handle, and where it sees XSAVE, the
// table installed says XSAVE too (KVM then accepts CR4.OSXSAVE).
import type { Kvm } from '../kvm/kvm.js';
import type { CpuidEntry } from '../kvm/structs.js';
import { flatImage } from '../image/image.js';
import { Machine } from './machine.js';

/** CPUID.1:ECX.XSAVE */
const XSAVE = 1 << 26;
/** Bits that follow the vCPU's state rather than the table: CPUID.1:ECX.OSXSAVE, CPUID.7.0:ECX.OSPKE, the APIC ID. */
const DYNAMIC = new Map<number, { ebx: number; ecx: number; edx: number }>([
  [1, { ebx: 0xff00_0000, ecx: 1 << 27, edx: 0 }],
  [7, { ebx: 0, ecx: 1 << 4, edx: 0 }],
]);
const PROBED_LEAVES = [1, 7] as const;
const LOAD = 0x200000;

export interface CpuidLeafView {
  leaf: number;
  /** eax, ebx, ecx, edx as KVM's table has them, and as the guest reads them. */
  table: [number, number, number, number];
  guest: [number, number, number, number];
}

interface GuestCpuid {
  /** The table to install: KVM's, with XSAVE where the guest sees it. */
  table: CpuidEntry[];
  /** Probed leaves whose guest view differs from the table (dynamic bits aside). */
  differences: CpuidLeafView[];
}

const probed = new WeakMap<Kvm, GuestCpuid>();

const le32 = (n: number) => [n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, n >>> 24];

/** `mov eax, leaf; mov ecx, subleaf; cpuid; hlt` */
function probeCode(leaf: number, subleaf: number): Uint8Array {
  return Uint8Array.of(0xb8, ...le32(leaf), 0xb9, ...le32(subleaf), 0x0f, 0xa2, 0xf4);
}

/**
 * What `cpuid` returns in a guest of this KVM with this table installed,
 * for `leaf` and `subleaf`, or undefined if the probe did not get that far.
 */
export function probeLeaf(kvm: Kvm, table: readonly CpuidEntry[], leaf: number, subleaf = 0): [number, number, number, number] | undefined {
  const machine = Machine.create(kvm, { image: flatImage(probeCode(leaf, subleaf), LOAD), cpuid: table });
  try {
    // Four instructions and a hlt: no timer needed; a signal only retries.
    for (let attempt = 0; attempt < 100; attempt++) {
      const exit = machine.vcpu.run();
      if (exit.reason === 'interrupted') continue;
      if (exit.reason !== 'hlt') return undefined;
      const r = machine.vcpu.syncedRegs();
      return [Number(r.rax & 0xffffffffn), Number(r.rbx & 0xffffffffn), Number(r.rcx & 0xffffffffn), Number(r.rdx & 0xffffffffn)];
    }
    return undefined;
  } finally {
    machine.close();
  }
}

function registers(entry: CpuidEntry | undefined): [number, number, number, number] {
  return entry ? [entry.eax >>> 0, entry.ebx >>> 0, entry.ecx >>> 0, entry.edx >>> 0] : [0, 0, 0, 0];
}

/** The CPUID table to install for this KVM, and where the guest's view differs from KVM's table. */
export function guestCpuid(kvm: Kvm): GuestCpuid {
  const known = probed.get(kvm);
  if (known) return known;
  const supported = kvm.supportedCpuid();
  const differences: CpuidLeafView[] = [];
  let table = supported;
  for (const leaf of PROBED_LEAVES) {
    const entry = supported.find((e) => e.function === leaf && e.index === 0);
    const guest = probeLeaf(kvm, supported, leaf);
    if (!entry || !guest) continue;
    const mine = registers(entry);
    const dynamic = DYNAMIC.get(leaf)!;
    const masks = [0, dynamic.ebx, dynamic.ecx, dynamic.edx];
    if (mine.some((value, i) => ((value ^ guest[i]!) & ~masks[i]!) >>> 0 !== 0)) differences.push({ leaf, table: mine, guest });
    if (leaf === 1 && guest[2] & XSAVE && !(entry.ecx & XSAVE)) {
      table = table.map((e) => (e === entry ? { ...e, ecx: (e.ecx | XSAVE) >>> 0 } : e));
    }
  }
  const result = { table, differences };
  probed.set(kvm, result);
  return result;
}
