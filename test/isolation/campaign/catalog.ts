// The hostile operations a destructive campaign test is drawn from, each a
// call to one of fixtures/campaign.h's op_* functions with random
// arguments: one line of C, run under ktry (TRY) or raw. Only the choice of
// operation and its arguments is random; everything runs straight through
// (no loops), so a test stays a few thousand emulated instructions long.
import type { Rng } from './prng.js';
import { enginePortAt, EXIT_PORT, HYPERCALL_PORT, SERIAL_BASE } from '../../../src/devices/ports.js';

/** One operation: a line of C and what it does, in words. */
export interface Op {
  code: string;
  note: string;
}

/** What a test has set up so far, which later operations may use. */
export interface TestContext {
  /** The test's configured ports (.ioports) and their values. */
  ioports: Array<readonly [port: number, value: number]>;
  /** It loaded page tables of its own that map the unbacked window. */
  mapsUnbacked: boolean;
}

/** The engine's ports (its one table of them), which a test may not configure. */
export const isEnginePort = (port: number) => enginePortAt(port) !== undefined;

const U64 = (1n << 64n) - 1n;
/** The RAM range every campaign test has: RAM_PAGES in campaign.h. */
const RAM_BYTES = 8 * 4096;

/** A C literal for a 64-bit value. */
export function c64(value: bigint | number): string {
  const v = BigInt(value) & U64;
  return `0x${v.toString(16)}ull`;
}

/** A C literal for a 32-bit value or smaller. */
const c32 = (value: number) => `0x${(value >>> 0).toString(16)}`;

// ---- MSR indices -----------------------------------------------------------

interface MsrSet {
  name: string;
  from: number;
  to: number;
  /** Indices that exist on common hosts: drawn more often than the range's others. */
  known: readonly number[];
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

/**
 * Where the campaign's wrmsr indices come from. Fixed lists, not this
 * host's: a seed must give the same tests everywhere.
 */
export const MSR_SETS: readonly MsrSet[] = [
  {
    name: 'architectural',
    from: 0x0,
    to: 0x1fff,
    known: [
      0x10, 0x1b, 0x3a, 0x3b, 0x48, 0x49, 0x8b, 0xc1, 0xc2, 0xe7, 0xe8, 0xfe, 0x10a, 0x10b, 0x122, 0x140,
      0x174, 0x175, 0x176, 0x179, 0x17a, 0x17b, 0x186, 0x187, 0x1a0, 0x1d9, 0x1db, 0x1dc, 0x200, 0x201, 0x202,
      0x203, 0x20e, 0x20f, 0x250, 0x258, 0x259, 0x268, 0x26f, 0x277, 0x2ff, 0x38d, 0x38f, 0x390, 0x6a0,
      0x6a2, 0x6a4, 0x6e0, 0xda0, 0x11, 0x12,
    ],
  },
  { name: 'machine-check bank', from: 0x400, to: 0x47f, known: [0x179, 0x17a, 0x17b, ...range(0x400, 0x41f)] },
  {
    name: 'KVM/PVM',
    from: 0x4b564d00,
    to: 0x4b564dff,
    // KVM's paravirtual MSRs, then PVM's (0x4b564d10 is one that KVM accepts but does not list).
    known: [...range(0x4b564d00, 0x4b564d08), ...range(0x4b564d10, 0x4b564d13)],
  },
  {
    name: 'x86-64',
    from: 0xc0000080,
    to: 0xc0000103,
    known: [0xc0000080, 0xc0000081, 0xc0000082, 0xc0000083, 0xc0000084, 0xc0000100, 0xc0000101, 0xc0000102, 0xc0000103],
  },
  {
    name: 'AMD',
    from: 0xc0010000,
    to: 0xc001ffff,
    known: [
      ...range(0xc0010000, 0xc0010007), 0xc0010010, 0xc0010015, 0xc001001f, 0xc0010055, 0xc0010058, 0xc0010114,
      0xc0010115, 0xc0010117, 0xc001011f, 0xc0010131, 0xc0010140, 0xc0010141, ...range(0xc0010200, 0xc001020b),
      0xc0011020, 0xc0011022, 0xc0011023, 0xc0011029,
    ],
  },
  { name: 'any', from: 0, to: 0xffffffff, known: [] },
];

/** The MSR indices the probe tries (campaign-probe.h): where the canaries look. */
export const PROBE_MSR_RANGES: ReadonlyArray<readonly [from: number, to: number]> = [
  [0x0, 0x1fff],
  [0x40000000, 0x400000ff],
  [0x4b564d00, 0x4b564dff],
  [0xc0000000, 0xc0000103],
  [0xc0010000, 0xc00103ff],
  [0xc0011000, 0xc00110ff],
];

/**
 * MSRs never written: each makes KVM write the time into guest memory
 * (kvmclock's wall clock and system time, steal time) or report host page
 * faults (async PF), so the test's outcome would depend on when it ran.
 * fixtures/state.c checks that they do not outlive a test.
 */
export const TIME_MSRS: ReadonlySet<number> = new Set([0x11, 0x12, 0x4b564d00, 0x4b564d01, 0x4b564d02, 0x4b564d03]);

function msrIndex(rng: Rng): { index: number; set: string } {
  for (;;) {
    const drawn = drawMsrIndex(rng);
    if (!TIME_MSRS.has(drawn.index)) return drawn;
  }
}

function drawMsrIndex(rng: Rng): { index: number; set: string } {
  const set = rng.weighted<MsrSet>([
    [3, MSR_SETS[0]!],
    [3, MSR_SETS[1]!],
    [3, MSR_SETS[2]!],
    [2, MSR_SETS[3]!],
    [1.5, MSR_SETS[4]!],
    [0.5, MSR_SETS[5]!],
  ]);
  const index = set.known.length > 0 && rng.chance(0.75) ? rng.pick(set.known) : rng.int(set.from, set.to);
  return { index, set: set.name };
}

// ---- Values ------------------------------------------------------------------

const bit = (rng: Rng, from = 0, to = 63) => 1n << BigInt(rng.int(from, to));

function value64(rng: Rng): bigint {
  return rng.weighted<() => bigint>([
    [2, () => 0n],
    [2, () => U64],
    [1, () => 1n],
    // Small values: what enable and mode MSRs accept.
    [3, () => BigInt(rng.int(1, 7))],
    [2, () => BigInt(rng.int(0, 0xffff))],
    [3, () => rng.u64()],
    [2, () => 0xffff800000000000n | (rng.u64() & 0x7ffffffff000n)],
    [1, () => 0x10000000n + BigInt(rng.int(0, 7) * 0x1000)],
    [2, () => bit(rng)],
    [1, () => 0x8000000000000000n | BigInt(rng.u32())],
  ])();
}

// ---- Addresses -----------------------------------------------------------------

/** An address (a C expression) of some kind of memory, for stores and loads. */
function address(rng: Rng, context: TestContext): { expr: string; where: string; wp?: boolean } {
  return rng.weighted<() => { expr: string; where: string; wp?: boolean }>([
    [3, () => ({ expr: `(uint64_t)&data_area[${rng.int(0, 63)}]`, where: '.data' })],
    [3, () => ({ expr: `(uint64_t)&bss_area[${rng.int(0, 63)}]`, where: '.bss' })],
    [2, () => ({ expr: `RAM_FROM + ${c32(rng.int(0, RAM_BYTES - 8))}`, where: 'the RAM range' })],
    [1, () => ({ expr: c64(0x1000 + rng.int(0, 0x27)), where: "the engine's GDT", wp: true })],
    [1, () => ({ expr: c64(0x1080 + rng.int(0, 0x67)), where: "the engine's TSS", wp: true })],
    [2, () => ({ expr: c64(0x2000 + 16 * rng.int(0, 255) + rng.int(0, 15)), where: "the engine's IDT", wp: true })],
    [1, () => ({ expr: c64(0x3000 + 16 * rng.int(0, 255) + rng.int(0, 15)), where: "the engine's stubs", wp: true })],
    [1, () => ({ expr: c64(0x4000 + rng.int(0, 31)), where: "the engine's return stub", wp: true })],
    [1, () => ({ expr: c64(0x5000 + 8 * rng.int(0, 2047)), where: 'the exception stack', wp: true })],
    [2, () => ({ expr: c64(0x80000 + 8 * rng.int(0, 8 * 512 - 1)), where: "the engine's page tables" })],
    [
      0.5,
      () => ({
        expr: `(uint64_t)${rng.pick(['kvmtest_entry', 'ktry', 'sprintln', 'kt_assert_failed', 'op_trampoline'])} + ${rng.int(0, 24)}`,
        where: 'code',
        wp: true,
      }),
    ],
    [1, () => ({ expr: c64(0x9000 + rng.int(0, 0x65fff)), where: 'unmapped low memory' })],
    [1, () => ({ expr: c64(rng.u64() & 0x7fffffffffffn), where: 'a random address' })],
    [0.5, () => ({ expr: c64(0x8000000000000000n | rng.u64()), where: 'a non-canonical address' })],
    [context.mapsUnbacked ? 3 : 0.3, () => ({ expr: `UNBACKED + ${c32(rng.int(0, 0x1fffff))}`, where: 'the unbacked window' })],
    [0.5, () => ({ expr: `DOORBELL + ${c32(rng.int(0, 0xfff))}`, where: 'the doorbell page' })],
  ])();
}

/** A virtual address whose page-table entries are worth editing. */
const PT_TARGETS = [
  '(uint64_t)data_area', '(uint64_t)bss_area', '(uint64_t)op_trampoline', '0x7f000', '0x1000', '0x2000', '0x3000',
  '0x4000', '0x5000', 'DOORBELL', 'RAM_FROM', '0x80000', '0x0', '0x6f000',
];

// ---- The operations ------------------------------------------------------------

type Maker = (rng: Rng, context: TestContext) => { call: [fn: string, a: string, b: string, c: string]; note: string };

const sizes = [1, 2, 4, 8] as const;

const wrmsr: Maker = (rng) => {
  const { index, set } = msrIndex(rng);
  if (rng.chance(0.3)) {
    const mask = rng.chance(0.5) ? bit(rng, 0, 7) : bit(rng);
    return { call: ['op_wrmsr_xor', c32(index), c64(mask), '0'], note: `flip a bit of ${set} MSR ${c32(index)}` };
  }
  return { call: ['op_wrmsr', c32(index), c64(value64(rng)), '0'], note: `wrmsr ${set} MSR ${c32(index)}` };
};

const CR0_BITS = [0, 1, 2, 3, 4, 5, 16, 18, 29, 30, 31];

const writeCr: Maker = (rng) => {
  const n = rng.weighted<number>([[3, 0], [0.5, 2], [2, 3], [3, 4], [1.5, 8]]);
  let xor = rng.chance(0.7);
  let value: bigint;
  if (n === 0) value = xor ? 1n << BigInt(rng.pick(CR0_BITS)) : value64(rng);
  else if (n === 3) {
    value = xor
      ? rng.pick([0xfffn, 0x1000n, 0x8000000000000000n, bit(rng, 12, 51)])
      : rng.pick([0x10000000n, 0x80000n + BigInt(rng.int(1, 8) * 0x1000), value64(rng)]);
  } else if (n === 4) value = xor ? bit(rng, 0, 24) : value64(rng);
  else if (n === 8) {
    value = BigInt(rng.int(0, 15));
    if (rng.chance(0.1)) value = value64(rng);
  } else value = value64(rng);
  if (n === 8 && value > 15n) xor = false;
  return { call: ['op_write_cr', String(n), c64(value), xor ? '1' : '0'], note: `${xor ? 'flip bits of' : 'write'} CR${n}` };
};

const writeDr: Maker = (rng) => {
  const n = rng.int(0, 7);
  let value: bigint | string;
  if (n <= 3) {
    value = rng.chance(0.5)
      ? `(uint64_t)${rng.pick(['kvmtest_entry', 'ktry', 'sprintln', 'check_state', 'kt_assert_failed', 'data_area'])}`
      : value64(rng);
  } else if (n === 7 || n === 5) {
    value = rng.chance(0.7) ? BigInt(rng.int(0, 0xff)) | (BigInt(rng.int(0, 0xffff)) << 16n) | (rng.chance(0.2) ? 1n << 13n : 0n) : value64(rng);
  } else value = value64(rng);
  const expr = typeof value === 'string' ? value : c64(value);
  const xor = typeof value !== 'string' && rng.chance(0.3);
  return { call: ['op_write_dr', String(n), expr, xor ? '1' : '0'], note: `${xor ? 'flip bits of' : 'write'} DR${n}` };
};

const loadDtr: Maker = (rng) => {
  const idt = rng.chance(0.5);
  const base = rng.weighted<string>([
    [2, '(uint64_t)data_area'],
    [1, '(uint64_t)bss_area'],
    [1, 'RAM_FROM'],
    [1, c64(idt ? 0x1000 : 0x2000)],
    [2, c64(rng.u64() & 0x7fffffffffffn)],
    [1, c64(rng.u64())],
    [1, '0x0'],
  ]);
  const limit = rng.pick([0, 0xf, 0x27, 0xfff, 0xffff, rng.int(0, 0xffff)]);
  return { call: ['op_load_dtr', base, c32(limit), idt ? '1' : '0'], note: `${idt ? 'lidt' : 'lgdt'} with a garbage table` };
};

const SELECTORS = [0, 0x8, 0x10, 0x18, 0x20, 0x28, 0x3, 0xb, 0x13, 0x1b, 0x23, 0x2b, 0x4, 0xc, 0xffff];

const loadSegment: Maker = (rng) => {
  const which = rng.int(0, 6);
  const selector = rng.chance(0.8) ? rng.pick(SELECTORS) : rng.int(0, 0xffff);
  const names = ['ds', 'es', 'fs', 'gs', 'ss', 'ltr', 'lldt'];
  return { call: ['op_load_segment', String(which), c32(selector), '0'], note: `load ${c32(selector)} into ${names[which]}` };
};

const store: Maker = (rng, context) => {
  const size = rng.pick(sizes);
  if (rng.chance(0.2)) {
    // Below the frame, or (negative offsets) on the frames of the callers.
    const below = rng.chance(0.85) ? rng.int(16, 8192) : -rng.int(1, 12) * 8;
    return {
      call: ['op_store_stack', below >= 0 ? c32(below) : `(uint64_t)${below}`, c64(value64(rng)), String(size)],
      note: below >= 0 ? 'store below the stack frame' : "store over a caller's frame",
    };
  }
  const at = address(rng, context);
  return { call: [at.wp ? 'op_store_wp' : 'op_store', at.expr, c64(value64(rng)), String(size)], note: `store to ${at.where}` };
};

const load: Maker = (rng, context) => {
  const at = address(rng, context);
  return { call: ['op_load', at.expr, String(rng.pick(sizes)), '0'], note: `load from ${at.where}` };
};

const ptEdit: Maker = (rng) => {
  const how = rng.int(0, 7);
  const hows = ['clear P of', 'clear RW of', 'set NX in', 'set US in', 'set a reserved bit in', 'flip PS of', 'redirect', 'zero'];
  const level = rng.int(1, 4);
  const target = rng.pick(PT_TARGETS);
  return { call: ['op_pt_edit', target, String(level), String(how)], note: `${hows[how]} the level-${level} entry for ${target}` };
};

function unconfiguredPort(rng: Rng, context: TestContext): number {
  for (;;) {
    const port = rng.chance(0.5) ? rng.int(0, 0x3ff) : rng.int(0, 0xffff);
    if (!isEnginePort(port) && !context.ioports.some(([p]) => p === port)) return port;
  }
}

const portIo: Maker = (rng, context) => {
  const size = rng.pick([1, 2, 4]);
  const configured = context.ioports.length > 0 && rng.chance(0.6) ? rng.pick(context.ioports) : undefined;
  if (configured) {
    const [port, value] = configured;
    const mask = size === 4 ? 0xffffffff : (1 << (8 * size)) - 1;
    if (rng.chance(0.5)) return { call: ['op_in', c32(port), String(size), '0'], note: `in from configured port ${c32(port)}` };
    const same = rng.chance(0.6);
    const written = same ? value & mask : rng.u32() & mask;
    return { call: ['op_out', c32(port), c32(written), String(size)], note: `out ${same ? 'its value' : 'another value'} to configured port ${c32(port)}` };
  }
  return rng.weighted<() => ReturnType<Maker>>([
    [2, () => ({ call: ['op_out', c32(unconfiguredPort(rng, context)), c32(rng.u32()), String(size)], note: 'out to an unconfigured port' })],
    [1, () => ({ call: ['op_in', c32(unconfiguredPort(rng, context)), String(size), '0'], note: 'in from an unconfigured port' })],
    [1, () => ({ call: ['op_out', c32(rng.int(0x3f8, 0x3ff)), c32(rng.u32()), String(size)], note: 'out to the serial port' })],
    [0.5, () => ({ call: ['op_in', c32(rng.int(0x3f8, 0x3ff)), String(size), '0'], note: 'in from the serial port' })],
    [1, () => ({ call: ['op_out', c32(EXIT_PORT), c32(rng.pick([0, 1, 2, 7, rng.u32()])), String(size)], note: 'out to the exit port' })],
    [0.5, () => ({ call: ['op_in', c32(rng.pick([EXIT_PORT, HYPERCALL_PORT])), String(size), '0'], note: "in from the engine's port" })],
    [0.5, () => ({ call: ['op_out', c32(HYPERCALL_PORT), c32(rng.u32()), String(rng.pick([1, 2]))], note: 'a narrow write to the hypercall port' })],
  ])();
};

const outs: Maker = (rng, context) => {
  const port = rng.weighted<number>([
    [2, HYPERCALL_PORT],
    [1, EXIT_PORT],
    [1, SERIAL_BASE],
    [context.ioports.length > 0 ? 1 : 0, context.ioports[0]?.[0] ?? 0x80],
    [1, unconfiguredPort(rng, context)],
  ]);
  const size = rng.pick([1, 2, 4]);
  return { call: ['op_outs', c32(port), String(rng.int(1, 8)), String(size)], note: `rep outs${['b', 'w', '', 'l'][size - 1]} to port ${c32(port)}` };
};

const hypercall: Maker = (rng) => {
  const nr = rng.weighted<number>([[3, 1], [3, 2], [1, 0], [1, 3], [1, rng.u32()]]);
  const pointer = rng.weighted<string>([
    [2, '(uint64_t)data_area'],
    [1, '(uint64_t)outs_data'],
    [1, 'RAM_FROM'],
    [2, c64(rng.u64() & 0x7fffffffffffn)],
    [2, c64(0x8000000000000000n | (rng.u64() & 0xffffffffn))],
    [1, c64(0x0000800000000000n + BigInt(rng.int(0, 0xffff) * 8))],
    [1, 'DOORBELL'],
    [1, '0x0'],
  ]);
  const length = rng.weighted<bigint>([[1, 0n], [3, BigInt(rng.int(1, 64))], [1, 0x1000n], [0.5, 1n << 40n], [0.5, U64]]);
  return { call: ['op_hypercall', c32(nr), pointer, c64(length)], note: `hypercall ${nr} with garbage arguments` };
};

const access16: Maker = (rng, context) => {
  const kind = rng.weighted<number>([[3, 0], [3, 1], [3, 2], [1, 3], [1, 4], [1, 5]]);
  const kinds = ['movdqu load from', 'movdqu store to', 'lock cmpxchg16b on', '8-byte load from', '8-byte store to', '1-byte store to'];
  const offset = rng.weighted<number>([[3, 0], [2, 8], [1, 0x10], [1, 16 * rng.int(0, 255)], [1, rng.int(0, 0xff0)]]);
  const unbacked = context.mapsUnbacked ? rng.chance(0.6) : rng.chance(0.05);
  const base = unbacked ? 'UNBACKED' : 'DOORBELL';
  const value = (BigInt(kind) << 56n) | (rng.u64() & 0x00ffffffffffffffn);
  return {
    call: ['op_access', `${base} + ${c32(offset)}`, c64(value), '0'],
    note: `${kinds[kind]} ${unbacked ? 'unbacked memory' : 'the doorbell page'}`,
  };
};

const FLAGS = [0x100, 0x200, 0x400, 0x3000, 0x4000, 0x10000, 0x20000, 0x40000, 0x80000, 0x100000, 0x200000];

const garbageFlags = (rng: Rng) => FLAGS.reduce((flags, f) => (rng.chance(0.15) ? flags | f : flags), 0x2);

const garbageRip = (rng: Rng) =>
  rng.pick(['0x4000', c64(0x3000 + 16 * rng.int(0, 255)), '0x0', c64(rng.u64() & 0x7fffffffffffn), c64(rng.u64()), '(uint64_t)op_trampoline']);

const iretq: Maker = (rng) => {
  const cs = rng.chance(0.5) ? 0x08 : rng.chance(0.8) ? rng.pick(SELECTORS) : rng.int(0, 0xffff);
  const ss = rng.chance(0.5) ? 0x10 : rng.chance(0.8) ? rng.pick(SELECTORS) : rng.int(0, 0xffff);
  const flags = rng.chance(0.4) ? 0x2 : garbageFlags(rng);
  const rip = rng.chance(0.7) ? '0' : garbageRip(rng);
  return {
    call: ['op_iretq', c32(cs | (ss << 16)), c64(flags), rip],
    note: `iretq to ${c32(cs)}:${rip === '0' ? 'next' : rip} with ss ${c32(ss)}, rflags ${c32(flags)}`,
  };
};

const far: Maker = (rng) => {
  const kind = rng.int(0, 3);
  const selector = rng.chance(0.3) ? 0x08 : rng.chance(0.8) ? rng.pick(SELECTORS) : rng.int(0, 0xffff);
  const offset = rng.chance(0.7) ? '0' : garbageRip(rng);
  const kinds = ['ljmp', 'lcall', 'lretq', 'ljmp m16:32'];
  return { call: ['op_far', String(kind), c32(selector), offset], note: `${kinds[kind]} through selector ${c32(selector)}` };
};

const MISC = [
  'swapgs', 'cli', 'sti', 'hlt', 'std', 'popfq', 'wbinvd', 'invlpg', 'cpuid', 'ud2', 'sti; hlt', 'clts', 'fxrstor',
  'fxrstor with a garbage MXCSR', 'load XMM registers', 'lidt null; ud2 (triple fault)', 'rsp at garbage; push',
];

const misc: Maker = (rng) => {
  const kind = rng.weighted<number>([
    [2, 0], [2, 1], [2, 2], [0.7, 3], [1.5, 4], [2, 5], [0.5, 6], [1, 7], [1, 8], [1, 9], [0.5, 10], [1, 11], [1, 12],
    [1, 13], [1.5, 14], [0.5, 15], [0.7, 16],
  ]);
  let operand = '0';
  if (kind === 5) operand = c64(garbageFlags(rng));
  else if (kind === 7) operand = rng.pick(['(uint64_t)data_area', '0x1000', 'DOORBELL', c64(rng.u64())]);
  else if (kind === 8) operand = c32(rng.pick([0, 1, 7, 0xb, 0xd, 0x40000000, 0x40000001, 0x80000000, 0x80000001, rng.u32()]));
  else if (kind === 13) operand = c32(rng.chance(0.5) ? 0x1f80 | (1 << rng.int(16, 31)) : rng.u32());
  else if (kind === 16) operand = rng.pick(['0x0', '0x9000', 'DOORBELL + 0x100', c64(rng.u64()), '0x6f010']);
  return { call: ['op_misc', String(kind), operand, '0'], note: MISC[kind]! };
};

const UNEMULATED = ['int3', 'int $0x80', 'xgetbv', 'rdtscp', 'vzeroupper', 'stac; clac', 'invpcid', 'movq %xmm0, %rax'];

const unemulated: Maker = (rng) => {
  const kind = rng.int(0, UNEMULATED.length - 1);
  return { call: ['op_unemulated', String(kind), '0', '0'], note: UNEMULATED[kind]! };
};

const OWN_PT = ['2 MiB pages, virtual 0xff000 as ordinary memory', '0xff000 and page 0 unmapped', 'plus an unbacked window'];

const ownPt: Maker = (rng, context) => {
  const variant = rng.weighted<number>([[2, 0], [1, 1], [2, 2]]);
  if (variant === 2) context.mapsUnbacked = true;
  return { call: ['op_own_pt', String(variant), '0', '0'], note: `load identity-mapped page tables of its own (${OWN_PT[variant]})` };
};

const enginePt: Maker = () => ({ call: ['op_engine_pt', '0', '0', '0'], note: "back to the engine's page tables" });

/** The catalog, with how often each is drawn. */
const CATALOG: ReadonlyArray<readonly [weight: number, make: Maker]> = [
  [10, wrmsr],
  [4, writeCr],
  [3, writeDr],
  [2, loadDtr],
  [2, loadSegment],
  [6, store],
  [2, load],
  [2, ptEdit],
  [3, portIo],
  [1, outs],
  [1.5, hypercall],
  [3, access16],
  [2, iretq],
  [2, far],
  [4, misc],
  [0.4, unemulated],
  [1.5, ownPt],
  [0.5, enginePt],
];

/** One operation, under ktry (TRY) with probability `tryChance`, raw otherwise. */
export function drawOp(rng: Rng, context: TestContext, tryChance: number): Op {
  const made = rng.weighted(CATALOG)(rng, context);
  const [fn, a, b, c] = made.call;
  const raw = !rng.chance(tryChance);
  const code = raw ? `${fn}(${a}, ${b}, ${c});` : `TRY(${fn}, ${a}, ${b}, ${c});`;
  return { code, note: raw ? `${made.note} (raw)` : made.note };
}

/** How a test may end after its operations, as a line of C (or none: it returns). */
export function drawEnding(rng: Rng): Op | undefined {
  return rng.weighted<() => Op | undefined>([
    [10, () => undefined],
    [1, () => ({ code: 'UD2();', note: 'an uncaught #UD' })],
    [1, () => ({ code: 'hlt();', note: 'halt' })],
    [1, () => ({ code: 'kassert(0, "the destructive test fails an assertion");', note: 'a failed assertion' })],
    [0.5, () => ({ code: 'kpanic("the destructive test panics");', note: 'a panic' })],
    [0.5, () => ({ code: `outw(0xf4, ${c32(rng.pick([0, 1, 2, 9]))});`, note: 'an exit code' })],
    [0.5, () => ({ code: `outb(0xf6, ${c32(rng.pick([0, 6, 13, 14]))});`, note: "the engine's doorbell port, rung by the test" })],
    [1.5, () => ({ code: `op_access(DOORBELL, ${c64(BigInt(rng.int(0, 2)) << 56n)}, 0);`, note: 'a 16-byte access to the doorbell' })],
  ])();
}

/** Ports for a test's .ioports: none of the engine's, each once. */
export function drawIoports(rng: Rng): Array<readonly [number, number]> {
  const ports: Array<readonly [number, number]> = [];
  const count = rng.weighted<number>([[3, 0], [2, 1], [1, 2], [1, 3]]);
  while (ports.length < count) {
    const port = rng.chance(0.5) ? rng.int(1, 0x3ff) : rng.int(0x400, 0xffff);
    if (isEnginePort(port) || ports.some(([p]) => p === port)) continue;
    ports.push([port, rng.pick([rng.int(1, 0xff), rng.int(1, 0xffff), rng.u32() || 1])]);
  }
  return ports;
}
