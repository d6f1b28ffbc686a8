// The vCPU state a guest starts in: 64-bit long mode, ring 0, paging on,
// interrupts off, SSE enabled, and XSAVE features where the CPU has them.
import type { CpuidEntry, Segment, Sregs } from '../kvm/structs.js';
import { GDT_LIMIT, IDT_LIMIT, TSS_SIZE, TSS_TYPE_BUSY } from './descriptors.js';
import { LAYOUT, SELECTOR } from './layout.js';

export const CR0_PE = 1n << 0n;
export const CR0_MP = 1n << 1n;
export const CR0_ET = 1n << 4n;
export const CR0_NE = 1n << 5n;
export const CR0_WP = 1n << 16n;
export const CR0_PG = 1n << 31n;
export const CR4_PAE = 1n << 5n;
export const CR4_OSFXSR = 1n << 9n;
export const CR4_OSXMMEXCPT = 1n << 10n;
export const CR4_OSXSAVE = 1n << 18n;
export const EFER_LME = 1n << 8n;
export const EFER_LMA = 1n << 10n;
export const EFER_NXE = 1n << 11n;
/** RFLAGS bit 1 is always set; IF (bit 9) is clear: interrupts off at entry. */
export const RFLAGS_RESERVED = 0x2n;

const CPUID_XSAVE_ECX = 1 << 26;
/** XCR0 bits kvmtest enables when supported: x87, SSE, AVX, and AVX-512's three. */
const XCR0_WANTED = 0b1110_0111n;

function flatSegment(selector: number, code: boolean): Segment {
  return {
    base: 0n,
    limit: 0xffffffff,
    selector,
    type: code ? 0xb : 0x3, // execute/read accessed; read/write accessed
    present: 1,
    dpl: 0,
    db: code ? 0 : 1,
    s: 1,
    l: code ? 1 : 0,
    g: 1,
    avl: 0,
    unusable: 0,
  };
}

/** Control registers, segments and descriptor tables for long mode. */
export function longModeSregs(base: Sregs, pml4: bigint, xsave: boolean): Sregs {
  const data = flatSegment(SELECTOR.data, false);
  return {
    ...base,
    cs: flatSegment(SELECTOR.code, true),
    ds: data,
    es: data,
    fs: data,
    gs: data,
    ss: data,
    tr: {
      base: LAYOUT.tss,
      limit: TSS_SIZE - 1,
      selector: SELECTOR.tss,
      type: TSS_TYPE_BUSY,
      present: 1,
      dpl: 0,
      db: 0,
      s: 0,
      l: 0,
      g: 0,
      avl: 0,
      unusable: 0,
    },
    ldt: { ...base.ldt, selector: 0, present: 0, unusable: 1 },
    gdt: { base: LAYOUT.gdt, limit: GDT_LIMIT },
    idt: { base: LAYOUT.idt, limit: IDT_LIMIT },
    cr0: CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_PG,
    cr2: 0n,
    cr3: pml4,
    cr4: CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT | (xsave ? CR4_OSXSAVE : 0n),
    cr8: 0n,
    efer: EFER_LME | EFER_LMA | EFER_NXE,
  };
}

export function cpuHasXsave(cpuid: readonly CpuidEntry[]): boolean {
  const leaf1 = cpuid.find((e) => e.function === 1);
  return leaf1 !== undefined && (leaf1.ecx & CPUID_XSAVE_ECX) !== 0;
}

/** The XCR0 value to load: the wanted features the CPU supports (x87 always). */
export function xcr0For(cpuid: readonly CpuidEntry[]): bigint {
  const leafD = cpuid.find((e) => e.function === 0xd && e.index === 0);
  const supported = leafD ? BigInt(leafD.eax) : 0b11n;
  return (supported & XCR0_WANTED) | 1n;
}

/** struct kvm_xcrs holding only XCR0. */
export function encodeXcr0(value: bigint): Uint8Array {
  const buf = new Uint8Array(392);
  const view = new DataView(buf.buffer);
  view.setUint32(0, 1, true); // nr_xcrs
  view.setUint32(8, 0, true); // xcrs[0].xcr = XCR0
  view.setBigUint64(16, value, true); // xcrs[0].value
  return buf;
}
