// The devices a test writes in TypeScript, as the session's buses see them:
// each access calls the test's function with the guest at that exit, and
// whatever goes wrong there (it throws, its Promise rejects, it answers
// with the wrong type or a value too wide for the access) becomes a Stop
// that names the function and the access. Nothing a callback does reaches
// the runner as an exception.
import { ConfiguredPort } from '../devices/configured-port.js';
import { type AccessSize, type Answer, type GuestAccess, hex, isPromise, type MmioDevice, type MsrDevice, type PortDevice, type Stop } from '../devices/device.js';
import type { DeviceSet } from '../session/devices.js';
import { guestContext } from './guest-context.js';
import { describeUserError } from './user-errors.js';
import { describe, type Hardware, type NormalizedMmio, type NormalizedMsr } from './normalize.js';
import { GeneralProtection, type PortHandlers, type PortSize } from './types.js';

/** Adds a test's own devices to a session's device set. */
export function attachTestDevices(devices: DeviceSet, hardware: Hardware): void {
  for (const [port, value] of hardware.ioports) devices.io.register(new ConfiguredPort(port, value), port);
  for (const [port, handlers] of hardware.ports) devices.io.register(new CallbackPort(port, handlers), port);
  for (const region of hardware.mmio) devices.mmio.register(new CallbackMmio(region), region.start, region.size);
  for (const [index, msr] of hardware.msrs) devices.msrs.register(new CallbackMsr(index, msr), index);
}

/** Where an access happened, for messages: "8-bit in from port 0x60 at test_kbd+0x12". */
function at(guest: GuestAccess): string {
  return `at ${guest.describe(guest.rip())}`;
}

/**
 * The callback and the guest's access, in words: made only for a message,
 * since a callback may serve thousands of exits a run that need none.
 */
type Naming = () => { callback: string; access: string };

function failure(naming: Naming, guest: GuestAccess, err: unknown): Stop {
  const { callback, access } = naming();
  const shown = describeUserError(err);
  return {
    outcome: 'error',
    error: { kind: 'device' },
    message: `${callback} threw during the guest's ${access} ${at(guest)}: ${shown}`,
  };
}

function badAnswer(naming: Naming, guest: GuestAccess, what: string): Stop {
  const { callback, access } = naming();
  return {
    outcome: 'error',
    error: { kind: 'device' },
    message: `${callback} answered the guest's ${access} ${at(guest)} with ${what}`,
  };
}

/**
 * Calls a test's function and hands its answer, now or later, to `accept`;
 * a throw or a rejection becomes a Stop naming the function and the access.
 */
function call<R, T>(
  naming: Naming,
  guest: GuestAccess,
  fn: () => R | Promise<R>,
  accept: (value: R) => T | Stop,
  onThrow?: (err: unknown) => T | Stop,
): Answer<T | Stop> {
  let answer: R | Promise<R>;
  try {
    answer = fn();
  } catch (err) {
    return onThrow ? onThrow(err) : failure(naming, guest, err);
  }
  if (isPromise(answer)) return answer.then(accept, onThrow ?? ((err: unknown) => failure(naming, guest, err)));
  return accept(answer);
}

/** A read's answer as an unsigned integer of `bits`, or a Stop saying what is wrong with it. */
function readValue(value: unknown, bits: number, naming: Naming, guest: GuestAccess): bigint | Stop {
  let n: bigint;
  if (typeof value === 'bigint') n = value;
  else if (typeof value === 'number' && Number.isSafeInteger(value)) n = BigInt(value);
  else return badAnswer(naming, guest, `${describe(value)}; a read must give a whole number or a bigint`);
  if (n < 0n || n >= 1n << BigInt(bits)) {
    return badAnswer(naming, guest, `${describe(value)}, which does not fit ${bits} bits (0 to ${hex((1n << BigInt(bits)) - 1n)})`);
  }
  return n;
}

/** A port read's answer as a number of `size` bytes, or a Stop saying what is wrong with it. */
function portValue(value: unknown, size: AccessSize, naming: Naming, guest: GuestAccess): number | Stop {
  // The common answer, a number that fits, needs no bigint.
  if (typeof value === 'number' && Number.isInteger(value) && value >= 0 && value < 2 ** (size * 8)) return value;
  const n = readValue(value, size * 8, naming, guest);
  return typeof n === 'bigint' ? Number(n) : n;
}

function writeResult(value: unknown, naming: Naming, guest: GuestAccess): Stop | void {
  if (value === undefined) return;
  return badAnswer(naming, guest, `${describe(value)}; a write handler returns nothing (or a Promise of nothing)`);
}

class CallbackPort implements PortDevice {
  readonly name: string;

  constructor(
    port: number,
    private readonly handlers: PortHandlers,
  ) {
    this.name = `ports[${hex(port)}]`;
  }

  read(port: number, size: AccessSize, guest: GuestAccess): Answer<number | Stop> {
    const read = this.handlers.read;
    if (!read) return unhandled(`${size * 8}-bit read (in) from port ${hex(port)}`, `${this.name} has no read handler`);
    const naming = () => ({ callback: `${this.name}.read`, access: `${size * 8}-bit in from port ${hex(port)}` });
    return call(naming, guest, () => read(port, size as PortSize, guestContext(guest)), (value) => portValue(value, size, naming, guest));
  }

  write(port: number, size: AccessSize, value: number, guest: GuestAccess): Answer<Stop | void> {
    const write = this.handlers.write;
    if (!write) return unhandled(`${size * 8}-bit write (out) of ${hex(value)} to port ${hex(port)}`, `${this.name} has no write handler`);
    const naming = () => ({ callback: `${this.name}.write`, access: `${size * 8}-bit out of ${hex(value)} to port ${hex(port)}` });
    return call(naming, guest, () => write(port, value, size as PortSize, guestContext(guest)), (r) => writeResult(r, naming, guest));
  }
}

class CallbackMmio implements MmioDevice {
  readonly name: string;

  constructor(private readonly region: NormalizedMmio) {
    this.name = region.name;
  }

  read(address: bigint, size: number, guest: GuestAccess): Answer<bigint | Stop> {
    const read = this.region.handlers.read;
    const offset = Number(address - this.region.start);
    if (!read) return unhandled(`${size}-byte MMIO read at physical ${hex(address)}`, `${this.name} has no read handler`);
    const naming = () => ({
      callback: `${this.name}.read`,
      access: `${size}-byte read at ${this.name} offset ${hex(offset)} (physical ${hex(address)})`,
    });
    return call(naming, guest, () => read(offset, size, guestContext(guest)), (value) => readValue(value, size * 8, naming, guest));
  }

  write(address: bigint, size: number, value: bigint, guest: GuestAccess): Answer<Stop | void> {
    const write = this.region.handlers.write;
    const offset = Number(address - this.region.start);
    if (!write) return unhandled(`${size}-byte MMIO write of ${hex(value)} at physical ${hex(address)}`, `${this.name} has no write handler`);
    const naming = () => ({
      callback: `${this.name}.write`,
      access: `${size}-byte write of ${hex(value)} at ${this.name} offset ${hex(offset)} (physical ${hex(address)})`,
    });
    return call(naming, guest, () => write(offset, value, size, guestContext(guest)), (r) => writeResult(r, naming, guest));
  }
}

class CallbackMsr implements MsrDevice {
  readonly name: string;

  constructor(
    index: number,
    private readonly msr: NormalizedMsr,
  ) {
    this.name = `msrs[${hex(index)}]`;
  }

  read(index: number, guest: GuestAccess): Answer<bigint | 'gp' | Stop> {
    const { msr } = this;
    if (msr.kind === 'value') return msr.value;
    const read = msr.handlers.read;
    if (!read) return unhandled(`rdmsr of MSR ${hex(index)}`, `${this.name} has no read handler`);
    const naming = () => ({ callback: `${this.name}.read`, access: `rdmsr of MSR ${hex(index)}` });
    return call(
      naming, guest, () => read(guestContext(guest)),
      (value): bigint | 'gp' | Stop => ((value as unknown) instanceof GeneralProtection ? 'gp' : readValue(value, 64, naming, guest)),
      (err) => (err instanceof GeneralProtection ? 'gp' : failure(naming, guest, err)),
    );
  }

  write(index: number, value: bigint, guest: GuestAccess): Answer<'gp' | Stop | void> {
    const { msr } = this;
    if (msr.kind === 'value') {
      if (value === msr.value) return;
      return unhandled(`wrmsr of ${hex(value)} to MSR ${hex(index)}`, `${this.name} is given as ${hex(msr.value)}, so only that value may be written`);
    }
    const write = msr.handlers.write;
    if (!write) return unhandled(`wrmsr of ${hex(value)} to MSR ${hex(index)}`, `${this.name} has no write handler`);
    const naming = () => ({ callback: `${this.name}.write`, access: `wrmsr of ${hex(value)} to MSR ${hex(index)}` });
    return call(
      naming, guest, () => write(value, guestContext(guest)),
      (r): 'gp' | Stop | void => ((r as unknown) instanceof GeneralProtection ? 'gp' : writeResult(r, naming, guest)),
      (err) => (err instanceof GeneralProtection ? 'gp' : failure(naming, guest, err)),
    );
  }
}

function unhandled(access: string, why: string): Stop {
  return { outcome: 'unexpected-io', message: `unexpected ${access}: ${why}` };
}
