// Routes port I/O, MMIO and MSR exits to the device that owns the address, and
// turns an access nobody owns into an 'unexpected-io' stop naming port or
// address, direction, size and value.
import { type AccessSize, type Answer, type GuestAccess, hex, type MmioDevice, type MsrDevice, type PortDevice, type Stop } from './device.js';

export class IoBus {
  private readonly ports = new Map<number, PortDevice>();

  /** Gives `device` the ports [first, first+count). Throws if one is taken. */
  register(device: PortDevice, first: number, count = 1): this {
    for (let port = first; port < first + count; port++) {
      const owner = this.ports.get(port);
      if (owner) throw new Error(`port ${hex(port)} is used by both ${owner.name} and ${device.name}`);
      this.ports.set(port, device);
    }
    return this;
  }

  /** Gives `device` those of the ports [first, first+count) that no device has yet (a test's own devices win). */
  registerIfFree(device: PortDevice, first: number, count = 1): this {
    for (let port = first; port < first + count; port++) if (!this.ports.has(port)) this.ports.set(port, device);
    return this;
  }

  read(port: number, size: AccessSize, guest: GuestAccess): Answer<number | Stop> {
    const device = this.ports.get(port);
    if (!device?.read) return unexpectedPort('in', port, size, undefined, device);
    return device.read(port, size, guest);
  }

  write(port: number, size: AccessSize, value: number, guest: GuestAccess): Answer<Stop | void> {
    const device = this.ports.get(port);
    if (!device?.write) return unexpectedPort('out', port, size, value, device);
    return device.write(port, size, value, guest);
  }
}

function unexpectedPort(dir: 'in' | 'out', port: number, size: AccessSize, value: number | undefined, device?: PortDevice): Stop {
  const access = dir === 'in'
    ? `${size * 8}-bit read (in) from port ${hex(port)}`
    : `${size * 8}-bit write (out) of ${hex(value!)} to port ${hex(port)}`;
  const why = device
    ? `${device.name} does not accept ${dir === 'in' ? 'reads' : 'writes'}`
    : 'no device is configured there (give the test the port: .ioport/.ioports in KVMTEST, ioports in runGuest)';
  return { outcome: 'unexpected-io', message: `unexpected ${access}: ${why}` };
}

interface MmioRange {
  start: bigint;
  end: bigint;
  device: MmioDevice;
}

export class MmioBus {
  private readonly ranges: MmioRange[] = [];

  /** Gives `device` the guest-physical range [start, start+size). */
  register(device: MmioDevice, start: bigint, size: bigint): this {
    const end = start + size;
    const clash = this.ranges.find((r) => start < r.end && r.start < end);
    if (clash) throw new Error(`MMIO range ${hex(start)} of ${device.name} overlaps ${clash.device.name}`);
    this.ranges.push({ start, end, device });
    return this;
  }

  private find(address: bigint): MmioDevice | undefined {
    for (const r of this.ranges) if (address >= r.start && address < r.end) return r.device;
    return undefined;
  }

  read(address: bigint, size: number, guest: GuestAccess): Answer<bigint | Stop> {
    const device = this.find(address);
    if (!device?.read) return unexpectedMmio('read', address, size, undefined, device);
    return device.read(address, size, guest);
  }

  write(address: bigint, size: number, value: bigint, guest: GuestAccess): Answer<Stop | void> {
    const device = this.find(address);
    if (!device?.write) return unexpectedMmio('write', address, size, value, device);
    return device.write(address, size, value, guest);
  }
}

function unexpectedMmio(dir: 'read' | 'write', address: bigint, size: number, value: bigint | undefined, device?: MmioDevice): Stop {
  const access = dir === 'read'
    ? `${size}-byte MMIO read at physical ${hex(address)}`
    : `${size}-byte MMIO write of ${hex(value!)} at physical ${hex(address)}`;
  const why = device ? `${device.name} does not accept ${dir}s` : 'no memory or device is there';
  return { outcome: 'unexpected-io', message: `unexpected ${access}: ${why}` };
}

/**
 * The MSRs a test serves itself. KVM's MSR filter sends the guest's rdmsr
 * and wrmsr of exactly these indices to user space (Machine.serveMsrs);
 * every other MSR stays KVM's.
 */
export class MsrBus {
  private readonly msrs = new Map<number, MsrDevice>();

  register(device: MsrDevice, index: number): this {
    const owner = this.msrs.get(index);
    if (owner) throw new Error(`MSR ${hex(index)} is served by both ${owner.name} and ${device.name}`);
    this.msrs.set(index, device);
    return this;
  }

  /** The indices served, for the MSR filter. */
  indices(): number[] {
    return [...this.msrs.keys()];
  }

  serves(index: number): boolean {
    return this.msrs.has(index);
  }

  read(index: number, guest: GuestAccess): Answer<bigint | 'gp' | Stop> {
    const device = this.msrs.get(index);
    if (!device?.read) return unexpectedMsr('rdmsr', index, undefined, device);
    return device.read(index, guest);
  }

  write(index: number, value: bigint, guest: GuestAccess): Answer<'gp' | Stop | void> {
    const device = this.msrs.get(index);
    if (!device?.write) return unexpectedMsr('wrmsr', index, value, device);
    return device.write(index, value, guest);
  }
}

function unexpectedMsr(dir: 'rdmsr' | 'wrmsr', index: number, value: bigint | undefined, device?: MsrDevice): Stop {
  const access = dir === 'rdmsr' ? `rdmsr of MSR ${hex(index)}` : `wrmsr of ${hex(value!)} to MSR ${hex(index)}`;
  const why = device ? `${device.name} has no ${dir === 'rdmsr' ? 'read' : 'write'} handler` : 'no device serves it';
  return { outcome: 'unexpected-io', message: `unexpected ${access}: ${why}` };
}
