// Checks and normalizes the options users give (runGuest, test records, the
// CLI), with messages that say which option is wrong and what would be right.
import { hex } from './devices/device.js';
import { enginePortAt } from './devices/ports.js';

export class OptionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OptionError';
  }
}

export type IoPortSpec =
  | Readonly<Record<number, number>>
  | ReadonlyMap<number, number>
  | ReadonlyArray<readonly [number, number]>;

export function normalizeIoPorts(spec: IoPortSpec): Map<number, number> {
  const entries: Array<readonly [number, number]> = spec instanceof Map
    ? [...spec.entries()]
    : Array.isArray(spec)
      ? spec
      : Object.entries(spec).map(([k, v]) => [Number(k), v as number] as const);
  const ports = new Map<number, number>();
  for (const [port, value] of entries) {
    if (!Number.isInteger(port) || port < 0 || port > 0xffff) {
      throw new OptionError(`ioports: port ${String(port)} is not a port number (0 to 0xffff)`);
    }
    if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
      throw new OptionError(`ioports: the value for port ${hex(port)} must be an integer from 0 to 0xffffffff (got ${String(value)})`);
    }
    const owner = enginePortAt(port)?.owner;
    if (owner) throw new OptionError(`ioports: port ${hex(port)} belongs to ${owner} and cannot be configured`);
    if (ports.has(port)) throw new OptionError(`ioports: port ${hex(port)} is configured twice`);
    ports.set(port, value);
  }
  return ports;
}

export function validateTimeout(ms: number, name: string): number {
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms <= 0) {
    throw new OptionError(`${name} must be a positive number of milliseconds (got ${String(ms)})`);
  }
  return ms;
}

/** A memory limit in bytes: a positive whole number (bigint or a safe integer). */
export function validateMemoryLimit(value: bigint | number, name: string): bigint {
  if (typeof value === 'number' && !Number.isSafeInteger(value)) {
    throw new OptionError(`${name} must be a whole number of bytes (got ${String(value)})`);
  }
  if (typeof value !== 'number' && typeof value !== 'bigint') throw new OptionError(`${name} must be a number of bytes (got ${String(value)})`);
  const bytes = BigInt(value);
  if (bytes < 1n << 20n) throw new OptionError(`${name} must be at least 1 MiB, what the engine itself takes (got ${bytes} bytes)`);
  return bytes;
}
