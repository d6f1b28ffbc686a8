// The interrupt test device: lets a guest drive its own interrupt lines,
// so that an IOAPIC-routed interrupt can be tested from C alone. A write of
// `level` to port 0x2000 + line sets the line's level, as kvm-unit-tests'
// pc-testdev does for set_irq_line(line, level). Only in machines with
// interrupt controllers.
import { type AccessSize, type GuestAccess, hex, type PortDevice, type Stop } from './device.js';
import { IRQ_LINE_PORT } from './ports.js';

export class IrqLinePort implements PortDevice {
  readonly name = 'the interrupt test device';

  write(port: number, size: AccessSize, value: number, guest: GuestAccess): Stop | void {
    const line = port - IRQ_LINE_PORT;
    if (value !== 0 && value !== 1) {
      return {
        outcome: 'unexpected-io',
        message: `set_irq_line(${line}, ${value}): ${size}-byte write of ${hex(value)} to port ${hex(port)}; the level must be 0 or 1`,
      };
    }
    guest.irq(line, value === 1);
  }

}
