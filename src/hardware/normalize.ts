// Checks the hardware a test describes (types.ts) and puts it in one shape:
// numbers as bigints where the machine needs them, ports and MSRs by
// number. Every message names the option and what would be right; nothing
// here touches KVM.
import { hex } from '../devices/device.js';
import { enginePortAt } from '../devices/ports.js';
import { REG_NAMES, type Regs } from '../kvm/structs.js';
import { addressOf } from '../kvm/libc.js';
import { LAYOUT } from '../machine/layout.js';
import { MAX_CPUS } from '../machine/machine.js';
import { msrBlocks } from '../machine/msr-trap.js';
import { normalizeIoPorts, OptionError } from '../options.js';
import type { CpuidOverride, HardwareOptions, MmioRegion, MsrHandlers, PortHandlers } from './types.js';

export interface NormalizedMmio {
  name: string;
  start: bigint;
  size: bigint;
  handlers: MmioRegion;
}

export type NormalizedMsr = { kind: 'value'; value: bigint } | { kind: 'handlers'; handlers: MsrHandlers };

/** A test's hardware, checked. */
export interface Hardware {
  ioports: Map<number, number>;
  ports: Map<number, PortHandlers>;
  mmio: NormalizedMmio[];
  msrs: Map<number, NormalizedMsr>;
  cpuid: CpuidOverride[];
  ram: Array<[bigint, bigint]>;
  memory: Array<{ address: bigint; data: Uint8Array }>;
  regs: Partial<Regs>;
  args: bigint[];
  /** Arrays whose addresses are in args (mirror mode): held, so that their memory outlives the run. */
  argArrays?: readonly ArrayBufferView[];
  /** Interrupt controllers (apic, or cpus above 1). */
  apic: boolean;
  /** vCPUs (1 unless asked). */
  cpus: number;
}

export const NO_HARDWARE: Hardware = Object.freeze({
  ioports: new Map(),
  ports: new Map(),
  mmio: [],
  msrs: new Map(),
  cpuid: [],
  ram: [],
  memory: [],
  regs: {},
  args: [],
  apic: false,
  cpus: 1,
}) as Hardware;

/** The option names normalizeHardware reads. */
export const HARDWARE_OPTIONS = ['ioports', 'ports', 'mmio', 'msrs', 'cpuid', 'ram', 'memory', 'regs', 'args', 'apic', 'cpus'] as const;

/** The x2APIC's MSRs, which KVM's MSR filter never covers. */
const X2APIC_MSRS: readonly [number, number] = [0x800, 0x900];
/** The MSR filter ranges left for a test's MSRs once the write trap has its own. */
const MAX_MSR_BLOCKS = 4;
const U64 = (1n << 64n) - 1n;

/** With `mirror`, args may be Buffers and typed arrays, passed as their addresses. */
export function normalizeHardware(options: HardwareOptions, mirror = false): Hardware {
  // A file may declare thousands of tests, most giving one or two of these:
  // what is not given costs nothing (the empty values are shared, never changed).
  const ioports = options.ioports === undefined ? NO_HARDWARE.ioports : normalizeIoPorts(options.ioports);
  return {
    ioports,
    ports: options.ports === undefined ? NO_HARDWARE.ports : normalizePorts(options.ports, ioports),
    mmio: options.mmio === undefined ? NO_HARDWARE.mmio : normalizeMmio(options.mmio),
    msrs: options.msrs === undefined ? NO_HARDWARE.msrs : normalizeMsrs(options.msrs),
    cpuid: options.cpuid === undefined ? NO_HARDWARE.cpuid : normalizeCpuid(options.cpuid),
    ram: options.ram === undefined ? NO_HARDWARE.ram : options.ram.map(([from, to], i) => [integer(from, `ram[${i}][0]`), integer(to, `ram[${i}][1]`)]),
    memory: options.memory === undefined ? NO_HARDWARE.memory : normalizeMemory(options.memory),
    regs: options.regs === undefined ? NO_HARDWARE.regs : normalizeRegs(options.regs),
    args: options.args === undefined ? NO_HARDWARE.args : normalizeArgs(options.args, mirror),
    ...(mirror && Array.isArray(options.args) && { argArrays: options.args.filter((a) => ArrayBuffer.isView(a)) }),
    ...normalizeCpus(options),
  };
}

/** apic and cpus: more than one vCPU needs the interrupt controllers (IPIs wake the others). */
function normalizeCpus(options: HardwareOptions): Pick<Hardware, 'apic' | 'cpus'> {
  if (options.apic !== undefined && typeof options.apic !== 'boolean') throw new OptionError(`apic must be true or false (got ${String(options.apic)})`);
  const cpus = options.cpus ?? 1;
  if (typeof cpus !== 'number' || !Number.isInteger(cpus) || cpus < 1 || cpus > MAX_CPUS) {
    throw new OptionError(`cpus must be a whole number from 1 to ${MAX_CPUS} (got ${String(options.cpus)})`);
  }
  if (cpus > 1 && options.apic === false) throw new OptionError(`cpus: ${cpus} needs the interrupt controllers: leave out apic: false`);
  if (cpus > 1 && options.args !== undefined && options.args.length > 0) {
    throw new OptionError(`cpus: ${cpus} with args: the runtime brings the other vCPUs up before it calls the guest, which then takes no arguments; ` +
      'put the values in memory (memory: [...]) or in a global the guest reads');
  }
  return { apic: options.apic === true || cpus > 1, cpus };
}

/** A whole number given as a number or a bigint, as a bigint (0 to 2^64 - 1). */
export function integer(value: unknown, name: string): bigint {
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return BigInt(value);
  if (typeof value === 'bigint' && value >= 0n && value <= U64) return value;
  throw new OptionError(`${name} must be a whole number from 0 to 2^64 - 1, as a number or a bigint (got ${describe(value)})`);
}

/** A register's or argument's value: 64 bits, negative values as two's complement (-1n is all ones). */
function registerValue(value: unknown, name: string): bigint {
  if (typeof value === 'number' && Number.isSafeInteger(value)) return BigInt.asUintN(64, BigInt(value));
  if (typeof value === 'bigint' && value >= -(1n << 63n) && value <= U64) return BigInt.asUintN(64, value);
  throw new OptionError(`${name} must be a 64-bit integer, as a number or a bigint (got ${describe(value)})`);
}

export function describe(value: unknown): string {
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'function') return 'a function';
  if (Array.isArray(value)) return 'an array';
  if (value === null) return 'null';
  if (typeof value === 'object') return 'an object';
  return String(value);
}

/** An object's keys as numbers (ports, MSR indices): "96" and "0x60" both work. */
function numericKeys<T>(record: Readonly<Record<number, T>> | undefined, option: string, max: number): Array<[number, T]> {
  if (record === undefined) return [];
  if (typeof record !== 'object' || record === null || Array.isArray(record)) {
    throw new OptionError(`${option} must be an object keyed by number, such as { 0x60: ... } (got ${describe(record)})`);
  }
  const entries: Array<[number, T]> = [];
  for (const key in record) {
    if (!Object.hasOwn(record, key)) continue;
    const number = Number(key);
    if (!Number.isInteger(number) || number < 0 || number > max || key.trim() === '') {
      throw new OptionError(`${option}: "${key}" is not a number from 0 to ${hex(max)}`);
    }
    entries.push([number, (record as Record<string, T>)[key]!]);
  }
  return entries;
}

/** Refuses keys a handler object should not have (a misspelt "reed"). */
function onlyKeys(value: object, allowed: readonly string[], name: string): void {
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) throw new OptionError(`${name}: unknown key "${key}"; known: ${allowed.join(', ')}`);
  }
}

function handlerFunctions(value: unknown, name: string, allowed: readonly string[], handlers: readonly string[]): void {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new OptionError(`${name} must be an object with ${handlers.join(' and/or ')} functions (got ${describe(value)})`);
  }
  onlyKeys(value, allowed, name);
  for (const key of handlers) {
    const fn = (value as Record<string, unknown>)[key];
    if (fn !== undefined && typeof fn !== 'function') throw new OptionError(`${name}.${key} must be a function (got ${describe(fn)})`);
  }
  if (handlers.every((key) => (value as Record<string, unknown>)[key] === undefined)) {
    throw new OptionError(`${name} has neither ${handlers.join(' nor ')}: give at least one`);
  }
}

/** `ports` checked (none may be an engine port or one of `ioports`), by port number. */
export function normalizePorts(ports: HardwareOptions['ports'], ioports: ReadonlyMap<number, number>): Map<number, PortHandlers> {
  const result = new Map<number, PortHandlers>();
  for (const [port, handlers] of numericKeys(ports, 'ports', 0xffff)) {
    const name = `ports[${hex(port)}]`;
    const owner = enginePortAt(port)?.owner;
    if (owner) throw new OptionError(`${name}: port ${hex(port)} belongs to ${owner} and cannot be served by the test`);
    if (ioports.has(port)) throw new OptionError(`${name}: port ${hex(port)} is also in ioports; give it one or the other`);
    handlerFunctions(handlers, name, ['read', 'write'], ['read', 'write']);
    result.set(port, handlers);
  }
  return result;
}

function normalizeMmio(regions: HardwareOptions['mmio']): NormalizedMmio[] {
  if (regions === undefined) return [];
  if (!Array.isArray(regions)) throw new OptionError(`mmio must be an array of { address, size, read?, write? } (got ${describe(regions)})`);
  const result = regions.map((region: MmioRegion, i): NormalizedMmio => {
    const where = `mmio[${i}]`;
    handlerFunctions(region, where, ['address', 'size', 'name', 'read', 'write'], ['read', 'write']);
    const start = integer(region.address, `${where}.address`);
    const size = integer(region.size, `${where}.size`);
    if (size === 0n) throw new OptionError(`${where}.size must be above 0`);
    if (region.name !== undefined && typeof region.name !== 'string') throw new OptionError(`${where}.name must be a string`);
    const name = region.name ?? where;
    if (start < LAYOUT.engineEnd) {
      throw new OptionError(
        `${name} at ${hex(start)} lies in the first megabyte, which kvmtest reserves for its own tables and stacks ` +
          `(0x0-${hex(LAYOUT.engineEnd)}); put the device at 0x100000 or above`,
      );
    }
    return { name, start, size, handlers: region };
  });
  const sorted = [...result].sort((a, b) => (a.start < b.start ? -1 : 1));
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1]!;
    if (sorted[i]!.start < prev.start + prev.size) throw new OptionError(`${sorted[i]!.name} overlaps ${prev.name}`);
  }
  return result;
}

function normalizeMsrs(msrs: HardwareOptions['msrs']): Map<number, NormalizedMsr> {
  const result = new Map<number, NormalizedMsr>();
  for (const [index, spec] of numericKeys(msrs, 'msrs', 0xffff_ffff)) {
    const name = `msrs[${hex(index)}]`;
    if (index >= X2APIC_MSRS[0] && index < X2APIC_MSRS[1]) {
      throw new OptionError(`${name}: the x2APIC's MSRs (0x800-0x8ff) cannot be served by a test (KVM's MSR filter never covers them)`);
    }
    if (typeof spec === 'bigint' || typeof spec === 'number') {
      result.set(index, { kind: 'value', value: integer(spec, name) });
    } else {
      handlerFunctions(spec, name, ['read', 'write'], ['read', 'write']);
      result.set(index, { kind: 'handlers', handlers: spec });
    }
  }
  const blocks = msrBlocks([...result.keys()]).length;
  if (blocks > MAX_MSR_BLOCKS) {
    throw new OptionError(
      `msrs: the MSRs lie in ${blocks} blocks more than 12,288 indices apart, and KVM's MSR filter has room for ${MAX_MSR_BLOCKS}; ` +
        'serve fewer, or closer together',
    );
  }
  return result;
}

const CPUID_REGISTERS = ['eax', 'ebx', 'ecx', 'edx'] as const;

function normalizeCpuid(overrides: HardwareOptions['cpuid']): CpuidOverride[] {
  if (overrides === undefined) return [];
  if (!Array.isArray(overrides)) throw new OptionError(`cpuid must be an array of { leaf, subleaf?, eax?, ebx?, ecx?, edx? } (got ${describe(overrides)})`);
  const seen = new Set<string>();
  return overrides.map((o: CpuidOverride, i) => {
    const where = `cpuid[${i}]`;
    if (typeof o !== 'object' || o === null) throw new OptionError(`${where} must be an object { leaf, subleaf?, eax?, ebx?, ecx?, edx? }`);
    onlyKeys(o, ['leaf', 'subleaf', ...CPUID_REGISTERS], where);
    const u32 = (value: unknown, name: string): number => {
      if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 0xffff_ffff) {
        throw new OptionError(`${where}.${name} must be a 32-bit unsigned integer (got ${describe(value)})`);
      }
      return value;
    };
    const result: CpuidOverride = { leaf: u32(o.leaf, 'leaf') };
    if (o.subleaf !== undefined) result.subleaf = u32(o.subleaf, 'subleaf');
    for (const reg of CPUID_REGISTERS) if (o[reg] !== undefined) result[reg] = u32(o[reg], reg);
    if (CPUID_REGISTERS.every((reg) => result[reg] === undefined)) throw new OptionError(`${where} gives no register: give eax, ebx, ecx and/or edx`);
    const key = `${result.leaf}:${result.subleaf ?? '*'}`;
    if (seen.has(key)) throw new OptionError(`${where}: leaf ${hex(result.leaf)}${result.subleaf === undefined ? '' : ` subleaf ${result.subleaf}`} is given twice`);
    seen.add(key);
    return result;
  });
}

function normalizeMemory(memory: HardwareOptions['memory']): Hardware['memory'] {
  if (memory === undefined) return [];
  if (!Array.isArray(memory)) throw new OptionError(`memory must be an array of { address, data } (got ${describe(memory)})`);
  return memory.map((m, i) => {
    const where = `memory[${i}]`;
    if (typeof m !== 'object' || m === null) throw new OptionError(`${where} must be an object { address, data }`);
    onlyKeys(m, ['address', 'data'], where);
    const address = integer(m.address, `${where}.address`);
    const data = bytesOf(m.data, `${where}.data`);
    if (data.length === 0) throw new OptionError(`${where}.data is empty`);
    if (address < LAYOUT.engineEnd) {
      throw new OptionError(`${where} at ${hex(address)} lies in the first megabyte, which kvmtest reserves (0x0-${hex(LAYOUT.engineEnd)})`);
    }
    return { address, data };
  });
}

/** Bytes from a Uint8Array (copied) or an array of numbers from 0 to 255. */
export function bytesOf(data: unknown, name: string): Uint8Array {
  if (data instanceof Uint8Array) return data.slice();
  if (Array.isArray(data)) {
    data.forEach((b, i) => {
      if (!Number.isInteger(b) || b < 0 || b > 255) throw new OptionError(`${name}[${i}] is not a byte (0 to 255): ${describe(b)}`);
    });
    return Uint8Array.from(data as number[]);
  }
  throw new OptionError(`${name} must be a Uint8Array or an array of bytes (got ${describe(data)})`);
}

export function normalizeRegs(regs: HardwareOptions['regs']): Partial<Regs> {
  if (regs === undefined) return {};
  if (typeof regs !== 'object' || regs === null) throw new OptionError(`regs must be an object such as { rax: 1n } (got ${describe(regs)})`);
  onlyKeys(regs, REG_NAMES, 'regs');
  const result: Partial<Regs> = {};
  for (const [name, value] of Object.entries(regs)) result[name as keyof Regs] = registerValue(value, `regs.${name}`);
  return result;
}

export function normalizeArgs(args: HardwareOptions['args'], mirror = false): bigint[] {
  if (args === undefined) return [];
  if (!Array.isArray(args)) throw new OptionError(`args must be an array of up to six integers (got ${describe(args)})`);
  if (args.length > 6) throw new OptionError(`args: at most 6 register arguments (rdi, rsi, rdx, rcx, r8, r9), got ${args.length}`);
  return args.map((a: unknown, i) => {
    if (!ArrayBuffer.isView(a)) return registerValue(a, `args[${i}]`);
    // Mirror mode shares the process's memory with the guest: an array is passed as the address of its bytes.
    if (mirror) return addressOf(a);
    throw new OptionError(`args[${i}] is a ${a.constructor.name}: only mirrored code (runGuest({ mirror }), mirror(...).fn()) shares the ` +
      "process's memory and can use its address; give an image's guest integers (and its bytes through memory: [...])");
  });
}
