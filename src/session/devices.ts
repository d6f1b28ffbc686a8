// The devices a session's guest talks to: the engine's own ports (one table
// of them, devices/ports.ts), the test's configured ports, and the console
// they write to; a test written in TypeScript adds its own (hardware/).
// A set is made per run, so that no device's state outlives the test it
// served.
import { IoBus, MmioBus, MsrBus } from '../devices/bus.js';
import { ConfiguredPort } from '../devices/configured-port.js';
import { ConsoleBuffer } from '../devices/console.js';
import type { PortDevice } from '../devices/device.js';
import { DoorbellPort } from '../devices/doorbell.js';
import { ExitPort } from '../devices/exit-port.js';
import { type CheckLog, HypercallPort, newCheckLog } from '../devices/hypercall.js';
import { ENGINE_PORTS, type EnginePortRole } from '../devices/ports.js';
import { SerialConsole } from '../devices/serial.js';

export interface DeviceSet {
  console: ConsoleBuffer;
  io: IoBus;
  mmio: MmioBus;
  /** MSRs the test serves (none for C tests). */
  msrs: MsrBus;
  /** The run's failed non-fatal checks (kexpect, report), from the hypercall port. */
  checks: CheckLog;
}

/** The engine's devices, plus a configured port for each of `ioports` (port -> value). */
export function standardDevices(ioports: ReadonlyMap<number, number>): DeviceSet {
  const console = new ConsoleBuffer();
  const checks = newCheckLog();
  const devices: Record<EnginePortRole, PortDevice> = {
    serial: new SerialConsole(console),
    exit: new ExitPort(),
    hypercall: new HypercallPort(checks),
    doorbell: new DoorbellPort(),
  };
  const io = new IoBus();
  for (const { role, first, count } of ENGINE_PORTS) io.register(devices[role], first, count);
  for (const [port, value] of ioports) io.register(new ConfiguredPort(port, value), port);
  return { console, io, mmio: new MmioBus(), msrs: new MsrBus(), checks };
}
