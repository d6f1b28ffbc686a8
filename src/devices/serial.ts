// A write-only 16550 UART at COM1: bytes written to the data register go to
// the console; the line-status register always says the transmitter is empty,
// so a driver polling it never waits. Other registers read as 0 and accept
// writes, so that a real driver's initialization sequence works.
import type { ConsoleBuffer } from './console.js';
import type { AccessSize, PortDevice } from './device.js';
import { SERIAL_BASE } from './ports.js';

const LSR_OFFSET = 5;
/** THRE (transmit holding register empty) and TEMT (transmitter empty). */
const LSR_TRANSMITTER_EMPTY = 0x60;

export class SerialConsole implements PortDevice {
  readonly name = 'the serial console (COM1)';

  constructor(
    private readonly console: ConsoleBuffer,
    private readonly base = SERIAL_BASE,
  ) {}

  read(port: number): number {
    return port - this.base === LSR_OFFSET ? LSR_TRANSMITTER_EMPTY : 0;
  }

  write(port: number, _size: AccessSize, value: number): void {
    if (port === this.base) this.console.pushByte(value & 0xff);
  }
}
