// Typed views of the KVM structures kvmtest reads and writes: kvm_regs,
// kvm_sregs (with kvm_segment and kvm_dtable) and memory regions. Encoders
// write into caller-owned buffers so the hot path allocates nothing.
import { SIZEOF } from './constants.js';

/** General-purpose registers, rip and rflags (struct kvm_regs). */
export interface Regs {
  rax: bigint;
  rbx: bigint;
  rcx: bigint;
  rdx: bigint;
  rsi: bigint;
  rdi: bigint;
  rsp: bigint;
  rbp: bigint;
  r8: bigint;
  r9: bigint;
  r10: bigint;
  r11: bigint;
  r12: bigint;
  r13: bigint;
  r14: bigint;
  r15: bigint;
  rip: bigint;
  rflags: bigint;
}

/** kvm_regs field order. */
export const REG_NAMES = [
  'rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rsp', 'rbp',
  'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15',
  'rip', 'rflags',
] as const satisfies readonly (keyof Regs)[];

/** Byte offset of each register in struct kvm_regs. */
export const REG_OFFSET = Object.fromEntries(REG_NAMES.map((name, i) => [name, i * 8])) as Record<keyof Regs, number>;

export function decodeRegs(view: DataView, offset = 0): Regs {
  const regs = {} as Regs;
  for (let i = 0; i < REG_NAMES.length; i++) {
    regs[REG_NAMES[i]!] = view.getBigUint64(offset + i * 8, true);
  }
  return regs;
}

export function encodeRegs(regs: Regs, view: DataView, offset = 0): void {
  for (let i = 0; i < REG_NAMES.length; i++) {
    view.setBigUint64(offset + i * 8, regs[REG_NAMES[i]!], true);
  }
}

/** struct kvm_segment: a segment register's hidden part. */
export interface Segment {
  base: bigint;
  limit: number;
  selector: number;
  type: number;
  present: number;
  dpl: number;
  db: number;
  s: number;
  l: number;
  g: number;
  avl: number;
  unusable: number;
}

/** struct kvm_dtable: GDTR or IDTR. */
export interface DescriptorTable {
  base: bigint;
  limit: number;
}

/** struct kvm_sregs. */
export interface Sregs {
  cs: Segment;
  ds: Segment;
  es: Segment;
  fs: Segment;
  gs: Segment;
  ss: Segment;
  tr: Segment;
  ldt: Segment;
  gdt: DescriptorTable;
  idt: DescriptorTable;
  cr0: bigint;
  cr2: bigint;
  cr3: bigint;
  cr4: bigint;
  cr8: bigint;
  efer: bigint;
  apicBase: bigint;
  /** Pending external interrupt bitmap, 4 x u64. */
  interruptBitmap: [bigint, bigint, bigint, bigint];
}

const SEGMENT_NAMES = ['cs', 'ds', 'es', 'fs', 'gs', 'ss', 'tr', 'ldt'] as const;
const SEGMENT_SIZE = 24;
const DTABLE_OFFSET = SEGMENT_NAMES.length * SEGMENT_SIZE; // 192
const CR_OFFSET = DTABLE_OFFSET + 2 * 16; // 224
const CR_NAMES = ['cr0', 'cr2', 'cr3', 'cr4', 'cr8', 'efer', 'apicBase'] as const;
const BITMAP_OFFSET = CR_OFFSET + CR_NAMES.length * 8; // 280
/** Where cr8 sits in struct kvm_sregs. */
export const SREGS_CR8_OFFSET = CR_OFFSET + CR_NAMES.indexOf('cr8') * 8; // 256
/** Where cr3 sits in struct kvm_sregs. */
export const SREGS_CR3_OFFSET = CR_OFFSET + CR_NAMES.indexOf('cr3') * 8; // 240

function decodeSegment(view: DataView, at: number): Segment {
  return {
    base: view.getBigUint64(at, true),
    limit: view.getUint32(at + 8, true),
    selector: view.getUint16(at + 12, true),
    type: view.getUint8(at + 14),
    present: view.getUint8(at + 15),
    dpl: view.getUint8(at + 16),
    db: view.getUint8(at + 17),
    s: view.getUint8(at + 18),
    l: view.getUint8(at + 19),
    g: view.getUint8(at + 20),
    avl: view.getUint8(at + 21),
    unusable: view.getUint8(at + 22),
  };
}

function encodeSegment(seg: Segment, view: DataView, at: number): void {
  view.setBigUint64(at, seg.base, true);
  view.setUint32(at + 8, seg.limit, true);
  view.setUint16(at + 12, seg.selector, true);
  view.setUint8(at + 14, seg.type);
  view.setUint8(at + 15, seg.present);
  view.setUint8(at + 16, seg.dpl);
  view.setUint8(at + 17, seg.db);
  view.setUint8(at + 18, seg.s);
  view.setUint8(at + 19, seg.l);
  view.setUint8(at + 20, seg.g);
  view.setUint8(at + 21, seg.avl);
  view.setUint8(at + 22, seg.unusable);
  view.setUint8(at + 23, 0);
}

export function decodeSregs(view: DataView, offset = 0): Sregs {
  const sregs = {} as Sregs;
  SEGMENT_NAMES.forEach((name, i) => {
    sregs[name] = decodeSegment(view, offset + i * SEGMENT_SIZE);
  });
  sregs.gdt = {
    base: view.getBigUint64(offset + DTABLE_OFFSET, true),
    limit: view.getUint16(offset + DTABLE_OFFSET + 8, true),
  };
  sregs.idt = {
    base: view.getBigUint64(offset + DTABLE_OFFSET + 16, true),
    limit: view.getUint16(offset + DTABLE_OFFSET + 24, true),
  };
  CR_NAMES.forEach((name, i) => {
    sregs[name] = view.getBigUint64(offset + CR_OFFSET + i * 8, true);
  });
  const at = offset + BITMAP_OFFSET;
  sregs.interruptBitmap = [0, 1, 2, 3].map((i) => view.getBigUint64(at + i * 8, true)) as Sregs['interruptBitmap'];
  return sregs;
}

export function encodeSregs(sregs: Sregs, view: DataView, offset = 0): void {
  SEGMENT_NAMES.forEach((name, i) => encodeSegment(sregs[name], view, offset + i * SEGMENT_SIZE));
  for (const [table, at] of [[sregs.gdt, DTABLE_OFFSET], [sregs.idt, DTABLE_OFFSET + 16]] as const) {
    view.setBigUint64(offset + at, table.base, true);
    view.setUint16(offset + at + 8, table.limit, true);
    for (let pad = 10; pad < 16; pad++) view.setUint8(offset + at + pad, 0);
  }
  CR_NAMES.forEach((name, i) => view.setBigUint64(offset + CR_OFFSET + i * 8, sregs[name], true));
  sregs.interruptBitmap.forEach((word, i) =>
    view.setBigUint64(offset + BITMAP_OFFSET + i * 8, word, true),
  );
}

/** struct kvm_userspace_memory_region. */
export interface MemoryRegion {
  slot: number;
  flags: number;
  guestPhysAddr: bigint;
  memorySize: bigint;
  userspaceAddr: bigint;
}

export function encodeMemoryRegion(region: MemoryRegion): Uint8Array {
  const buf = new Uint8Array(SIZEOF.kvm_userspace_memory_region);
  const view = new DataView(buf.buffer);
  view.setUint32(0, region.slot, true);
  view.setUint32(4, region.flags, true);
  view.setBigUint64(8, region.guestPhysAddr, true);
  view.setBigUint64(16, region.memorySize, true);
  view.setBigUint64(24, region.userspaceAddr, true);
  return buf;
}

/** struct kvm_cpuid_entry2. */
export interface CpuidEntry {
  function: number;
  index: number;
  flags: number;
  eax: number;
  ebx: number;
  ecx: number;
  edx: number;
}

export function decodeCpuid2(buf: Uint8Array): CpuidEntry[] {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const count = view.getUint32(0, true);
  const entries: CpuidEntry[] = [];
  for (let i = 0; i < count; i++) {
    const at = SIZEOF.kvm_cpuid2 + i * SIZEOF.kvm_cpuid_entry2;
    entries.push({
      function: view.getUint32(at, true),
      index: view.getUint32(at + 4, true),
      flags: view.getUint32(at + 8, true),
      eax: view.getUint32(at + 12, true),
      ebx: view.getUint32(at + 16, true),
      ecx: view.getUint32(at + 20, true),
      edx: view.getUint32(at + 24, true),
    });
  }
  return entries;
}

export function encodeCpuid2(entries: readonly CpuidEntry[]): Uint8Array {
  const buf = new Uint8Array(SIZEOF.kvm_cpuid2 + entries.length * SIZEOF.kvm_cpuid_entry2);
  const view = new DataView(buf.buffer);
  view.setUint32(0, entries.length, true);
  entries.forEach((e, i) => {
    const at = SIZEOF.kvm_cpuid2 + i * SIZEOF.kvm_cpuid_entry2;
    view.setUint32(at, e.function, true);
    view.setUint32(at + 4, e.index, true);
    view.setUint32(at + 8, e.flags, true);
    view.setUint32(at + 12, e.eax, true);
    view.setUint32(at + 16, e.ebx, true);
    view.setUint32(at + 20, e.ecx, true);
    view.setUint32(at + 24, e.edx, true);
  });
  return buf;
}

/** struct kvm_msrs with its entries: index -> value. */
export function encodeMsrs(entries: ReadonlyArray<readonly [number, bigint]>): Uint8Array {
  const buf = new Uint8Array(SIZEOF.kvm_msrs + entries.length * SIZEOF.kvm_msr_entry);
  const view = new DataView(buf.buffer);
  view.setUint32(0, entries.length, true);
  entries.forEach(([index, value], i) => {
    const at = SIZEOF.kvm_msrs + i * SIZEOF.kvm_msr_entry;
    view.setUint32(at, index, true);
    view.setBigUint64(at + 8, value, true);
  });
  return buf;
}

export function decodeMsrs(buf: Uint8Array, count: number): Array<[number, bigint]> {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const out: Array<[number, bigint]> = [];
  for (let i = 0; i < count; i++) {
    const at = SIZEOF.kvm_msrs + i * SIZEOF.kvm_msr_entry;
    out.push([view.getUint32(at, true), view.getBigUint64(at + 8, true)]);
  }
  return out;
}
