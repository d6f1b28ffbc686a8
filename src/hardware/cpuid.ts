// CPUID overrides: the registers a test gives replace what KVM reports for
// that leaf, in the table the machine installs. Some KVMs answer parts of
// CPUID from elsewhere whatever the table says (PVM passes the host's leaf
// 1 and 7 through): a probe guest checks that each override is what a
// guest really reads, and when one is not, the test is skipped with the
// reason rather than run on a CPU it did not ask for.
import { hex } from '../devices/device.js';
import type { Kvm } from '../kvm/kvm.js';
import type { CpuidEntry } from '../kvm/structs.js';
import { guestCpuid, probeLeaf } from '../machine/guest-cpuid.js';
import type { CpuidOverride } from './types.js';

/** struct kvm_cpuid_entry2 flags: the entry applies to one subleaf (ECX) only. */
const KVM_CPUID_FLAG_SIGNIFCANT_INDEX = 1;
const REGISTERS = ['eax', 'ebx', 'ecx', 'edx'] as const;

/**
 * Bits that follow the vCPU's state rather than the table (the APIC ID,
 * OSXSAVE, OSPKE, the APIC's presence, XSAVE sizes that follow XCR0):
 * never compared.
 */
function dynamicBits(leaf: number, subleaf: number): Record<(typeof REGISTERS)[number], number> {
  if (leaf === 1) return { eax: 0, ebx: 0xff00_0000, ecx: 1 << 27, edx: 1 << 9 };
  if (leaf === 7 && subleaf === 0) return { eax: 0, ebx: 0, ecx: 1 << 4, edx: 0 };
  if (leaf === 0xb || leaf === 0x1f) return { eax: 0, ebx: 0, ecx: 0, edx: 0xffff_ffff };
  if (leaf === 0xd && subleaf <= 1) return { eax: 0, ebx: 0xffff_ffff, ecx: 0, edx: 0 };
  return { eax: 0, ebx: 0, ecx: 0, edx: 0 };
}

/** The table with the overrides applied (entries added for leaves KVM does not report). */
export function applyCpuidOverrides(table: readonly CpuidEntry[], overrides: readonly CpuidOverride[]): CpuidEntry[] {
  const result = table.map((e) => ({ ...e }));
  for (const o of overrides) {
    const matches = result.filter(
      (e) => e.function === o.leaf && (o.subleaf === undefined || !(e.flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) || e.index === o.subleaf),
    );
    if (matches.length === 0) {
      const added: CpuidEntry = {
        function: o.leaf,
        index: o.subleaf ?? 0,
        flags: o.subleaf === undefined ? 0 : KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
        eax: 0, ebx: 0, ecx: 0, edx: 0,
      };
      result.push(added);
      matches.push(added);
    }
    for (const entry of matches) for (const reg of REGISTERS) if (o[reg] !== undefined) entry[reg] = o[reg];
  }
  return result;
}

const verdicts = new WeakMap<Kvm, Map<string, string | undefined>>();

/**
 * Why these overrides cannot be trusted on this KVM (a guest reads other
 * values than the table gives), or undefined when every one holds. Probed
 * once per distinct set of overrides.
 */
export function cpuidOverridesIgnored(kvm: Kvm, table: readonly CpuidEntry[], overrides: readonly CpuidOverride[]): string | undefined {
  if (overrides.length === 0) return undefined;
  let known = verdicts.get(kvm);
  if (!known) verdicts.set(kvm, (known = new Map()));
  const key = JSON.stringify(overrides);
  if (known.has(key)) return known.get(key);
  let reason: string | undefined;
  for (const o of overrides) {
    const subleaf = o.subleaf ?? 0;
    const seen = probeLeaf(kvm, table, o.leaf, subleaf);
    const where = `CPUID leaf ${hex(o.leaf)}${o.subleaf === undefined ? '' : ` subleaf ${subleaf}`}`;
    if (!seen) {
      reason = `this host's KVM could not run the probe that checks ${where}`;
      break;
    }
    const dynamic = dynamicBits(o.leaf, subleaf);
    const wrong = REGISTERS.flatMap((reg, i) => {
      const wanted = o[reg];
      if (wanted === undefined || ((wanted ^ seen[i]!) & ~dynamic[reg]) >>> 0 === 0) return [];
      return [`${reg} reads ${hex(seen[i]! >>> 0)}, not ${hex(wanted)}`];
    });
    if (wrong.length > 0) {
      reason = `this host's KVM does not apply the test's ${where} override (in a guest ${wrong.join(', ')}); ` +
        'software-assisted KVMs such as PVM pass parts of CPUID through from the host. Hardware-virtualized KVM applies it';
      break;
    }
  }
  known.set(key, reason);
  return reason;
}

/** The fields of a C test's .cpuid entry (runner/types.ts CpuidEdit). */
export interface CpuidEditInput {
  leaf: number;
  subleaf: number;
  register: (typeof REGISTERS)[number];
  keep: number;
  set: number;
}

/**
 * A C test's .cpuid edits as overrides: each register becomes (value & keep)
 * | set, where value is what a guest of this KVM reads without the edit
 * (probed once per leaf; KVM's table where the probe cannot run), edits
 * applying in order. The overrides then go through the same table and
 * probe as a TypeScript test's.
 */
export function cpuidEditOverrides(kvm: Kvm, edits: readonly CpuidEditInput[]): CpuidOverride[] {
  const { table } = guestCpuid(kvm);
  const overrides: CpuidOverride[] = [];
  for (const edit of edits) {
    let override = overrides.find((o) => o.leaf === edit.leaf && o.subleaf === edit.subleaf);
    if (!override) overrides.push((override = { leaf: edit.leaf, subleaf: edit.subleaf }));
    const value = override[edit.register] ?? defaultLeaf(kvm, table, edit.leaf, edit.subleaf)[REGISTERS.indexOf(edit.register)]!;
    override[edit.register] = ((value & edit.keep) | edit.set) >>> 0;
  }
  return overrides;
}

const defaults = new WeakMap<Kvm, Map<string, readonly number[]>>();

/** eax, ebx, ecx, edx of a leaf as a guest with the default table reads them. */
function defaultLeaf(kvm: Kvm, table: readonly CpuidEntry[], leaf: number, subleaf: number): readonly number[] {
  let known = defaults.get(kvm);
  if (!known) defaults.set(kvm, (known = new Map()));
  const key = `${leaf}.${subleaf}`;
  let value = known.get(key);
  if (!value) {
    const entry = table.find((e) => e.function === leaf && (!(e.flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) || e.index === subleaf));
    value = probeLeaf(kvm, table, leaf, subleaf) ?? (entry ? [entry.eax, entry.ebx, entry.ecx, entry.edx] : [0, 0, 0, 0]);
    known.set(key, value);
  }
  return value;
}
