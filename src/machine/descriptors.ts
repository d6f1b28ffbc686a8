// The engine's GDT, TSS, IDT and the machine code of its stubs. Every one of
// the 256 IDT vectors lands in a stub that rings the doorbell and touches no
// register and no memory, so the host sees the guest's registers as they
// were when the exception hit; the stub's address says which vector it was.
// Exceptions run on their own stack (IST1), so a guest with a broken stack
// still gets its fault reported.
import { DOORBELL_PORT } from '../devices/ports.js';
import { LAYOUT, SELECTOR, STUB_SIZE } from './layout.js';

/** Flat 64-bit ring-0 code segment: L=1, P=1, DPL=0, type execute/read. */
const GDT_CODE64 = 0x00af9b000000ffffn;
/** Flat data segment: P=1, DPL=0, type read/write, 4 GiB. */
const GDT_DATA = 0x00cf93000000ffffn;
export const TSS_SIZE = 104;
/** 64-bit TSS type in a system descriptor; +2 marks it busy. */
export const TSS_TYPE_AVAILABLE = 0x9;
export const TSS_TYPE_BUSY = 0xb;
const IDT_INTERRUPT_GATE = 0x8e; // P=1, DPL=0, 64-bit interrupt gate (IF cleared on entry)
export const IDT_ENTRIES = 256;
export const GDT_LIMIT = 5 * 8 - 1; // null, code, data, TSS (two slots)
export const IDT_LIMIT = IDT_ENTRIES * 16 - 1;

/** Null, code, data and a 16-byte TSS descriptor. */
export function buildGdt(): Uint8Array {
  const gdt = new Uint8Array(GDT_LIMIT + 1);
  const view = new DataView(gdt.buffer);
  view.setBigUint64(SELECTOR.code, GDT_CODE64, true);
  view.setBigUint64(SELECTOR.data, GDT_DATA, true);
  const base = LAYOUT.tss;
  const limit = BigInt(TSS_SIZE - 1);
  const low =
    (limit & 0xffffn) |
    ((base & 0xffffffn) << 16n) |
    (BigInt(TSS_TYPE_BUSY) << 40n) |
    (1n << 47n) | // present
    (((limit >> 16n) & 0xfn) << 48n) |
    (((base >> 24n) & 0xffn) << 56n);
  view.setBigUint64(SELECTOR.tss, low, true);
  view.setBigUint64(SELECTOR.tss + 8, base >> 32n, true);
  return gdt;
}

/** A 64-bit TSS whose IST1 points at the exception stack; no I/O bitmap. */
export function buildTss(istTop: bigint = LAYOUT.istStackTop): Uint8Array {
  const tss = new Uint8Array(TSS_SIZE);
  const view = new DataView(tss.buffer);
  view.setBigUint64(36, istTop, true); // IST1
  view.setUint16(102, TSS_SIZE, true); // I/O map base beyond the limit: no bitmap
  return tss;
}

/** 256 interrupt gates, each to its stub, all on IST1. */
export function buildIdt(): Uint8Array {
  const idt = new Uint8Array(IDT_LIMIT + 1);
  const view = new DataView(idt.buffer);
  for (let vector = 0; vector < IDT_ENTRIES; vector++) {
    const handler = stubAddress(vector);
    const at = vector * 16;
    view.setUint16(at, Number(handler & 0xffffn), true);
    view.setUint16(at + 2, SELECTOR.code, true);
    view.setUint8(at + 4, 1); // IST index
    view.setUint8(at + 5, IDT_INTERRUPT_GATE);
    view.setUint16(at + 6, Number((handler >> 16n) & 0xffffn), true);
    view.setUint32(at + 8, Number((handler >> 32n) & 0xffffffffn), true);
  }
  return idt;
}

export function stubAddress(vector: number): bigint {
  return LAYOUT.stubs + BigInt(vector * STUB_SIZE);
}

/**
 * `out %al, $DOORBELL_PORT` then `hlt; jmp .-1`. The `out` is the exit: port
 * I/O reads al and writes nothing, and unlike a memory access it does not
 * depend on the page tables loaded at the time. The loop after it only
 * matters if a host resumed the guest.
 */
const DOORBELL_STUB = [0xe6, DOORBELL_PORT, 0xf4, 0xeb, 0xfd];
/** Bytes of the `out` that starts every stub. */
export const DOORBELL_OUT_LENGTH = 2;
const STUBS_END = LAYOUT.stubs + BigInt(IDT_ENTRIES * STUB_SIZE);

/** The 256 exception stubs, STUB_SIZE bytes apart. */
export function buildStubs(): Uint8Array {
  const code = new Uint8Array(IDT_ENTRIES * STUB_SIZE).fill(0xcc);
  for (let vector = 0; vector < IDT_ENTRIES; vector++) code.set(DOORBELL_STUB, vector * STUB_SIZE);
  return code;
}

/** Where an entry function returns to. */
export function buildReturnStub(): Uint8Array {
  return Uint8Array.from(DOORBELL_STUB);
}

/** What a stub's doorbell says: the entry function returned, or exception `vector` arrived. */
export type StubSignal = { kind: 'returned' } | { kind: 'exception'; vector: number };

/** The stub whose doorbell `out` starts at `address`, if there is one. */
export function stubAt(address: bigint): StubSignal | undefined {
  if (address === LAYOUT.returnStub) return { kind: 'returned' };
  const offset = address - LAYOUT.stubs;
  if (address < LAYOUT.stubs || address >= STUBS_END || offset % BigInt(STUB_SIZE) !== 0n) return undefined;
  return { kind: 'exception', vector: Number(offset / BigInt(STUB_SIZE)) };
}

/** True for an address inside the engine's stub code. */
export function inEngineStubs(address: bigint): boolean {
  return (
    (address >= LAYOUT.stubs && address < STUBS_END) ||
    (address >= LAYOUT.returnStub && address < LAYOUT.returnStub + BigInt(STUB_SIZE))
  );
}

/**
 * "the engine's exception stub for #GP (0x30d0)", "the engine's return stub
 * (0x4000)": an address in the engine's stub pages (0x3000-0x4fff) by what
 * it is; undefined elsewhere.
 */
export function describeEngineAddress(address: bigint): string | undefined {
  const at = `0x${address.toString(16)}`;
  if (address >= LAYOUT.returnStub && address < LAYOUT.returnStub + BigInt(STUB_SIZE)) {
    const offset = address - LAYOUT.returnStub;
    return `the engine's return stub${offset ? `+0x${offset.toString(16)}` : ''} (${at})`;
  }
  if (address >= LAYOUT.returnStub && address < LAYOUT.istStackBottom) {
    return `the engine's stub page, past its return stub (${at})`;
  }
  if (address < LAYOUT.stubs || address >= STUBS_END) return undefined;
  const vector = Number((address - LAYOUT.stubs) / BigInt(STUB_SIZE));
  const offset = (address - LAYOUT.stubs) % BigInt(STUB_SIZE);
  return `the engine's exception stub for ${vectorName(vector)}${offset ? `+0x${offset.toString(16)}` : ''} (${at})`;
}

/** Vectors for which the CPU pushes an error code. */
export const VECTORS_WITH_ERROR_CODE: ReadonlySet<number> = new Set([8, 10, 11, 12, 13, 14, 17, 21, 29, 30]);

export const VECTOR_NAMES: readonly string[] = [
  '#DE', '#DB', 'NMI', '#BP', '#OF', '#BR', '#UD', '#NM', '#DF', 'coprocessor segment overrun',
  '#TS', '#NP', '#SS', '#GP', '#PF', 'reserved (15)', '#MF', '#AC', '#MC', '#XM', '#VE', '#CP',
  'reserved (22)', 'reserved (23)', 'reserved (24)', 'reserved (25)', 'reserved (26)',
  'reserved (27)', '#HV', '#VC', '#SX', 'reserved (31)',
];

export const VECTOR_DESCRIPTIONS: readonly string[] = [
  'divide error', 'debug', 'non-maskable interrupt', 'breakpoint', 'overflow', 'bound range exceeded',
  'invalid opcode', 'device not available', 'double fault', 'coprocessor segment overrun',
  'invalid TSS', 'segment not present', 'stack-segment fault', 'general protection',
  'page fault', 'reserved', 'x87 floating-point error', 'alignment check', 'machine check',
  'SIMD floating-point exception', 'virtualization exception', 'control protection',
  'reserved', 'reserved', 'reserved', 'reserved', 'reserved', 'reserved',
  'hypervisor injection', 'VMM communication', 'security exception', 'reserved',
];

/** "#GP" for vector 13; "interrupt 0x20" for vectors 32 and up. */
export function vectorName(vector: number): string {
  return VECTOR_NAMES[vector] ?? `interrupt 0x${vector.toString(16)}`;
}
