// A port the test configured with a value (the seed's ioport(port, value)):
// reads return the value's low bytes for the access size; writing exactly
// that value is accepted; writing anything else fails the test.
import { type AccessSize, hex, type PortDevice, type Stop } from './device.js';

export class ConfiguredPort implements PortDevice {
  readonly name: string;

  constructor(
    readonly port: number,
    readonly value: number,
  ) {
    this.name = `configured port ${hex(port)}`;
  }

  read(_port: number, size: AccessSize): number {
    return lowBytes(this.value, size);
  }

  write(port: number, size: AccessSize, value: number): Stop | void {
    const expected = lowBytes(this.value, size);
    if (value === expected) return;
    return {
      outcome: 'unexpected-io',
      message: `unexpected ${size * 8}-bit write (out) of ${hex(value)} to port ${hex(port)}: ` +
        `the port is configured with ${hex(this.value)}, so only ${hex(expected)} may be written at this size`,
    };
  }
}

export function lowBytes(value: number, size: AccessSize): number {
  return size >= 4 ? value >>> 0 : value & ((1 << (size * 8)) - 1);
}
