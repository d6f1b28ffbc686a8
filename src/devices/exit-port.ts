// The exit port: a guest writes a code to it to end the test, as QEMU's
// isa-debug-exit device lets a guest do. 0 = returned, 1 = assertion failed,
// 2 = panicked, anything else = panicked with that code.
import { type AccessSize, hex, type PortDevice, type Stop } from './device.js';
import { EXIT_CODE } from './ports.js';

export class ExitPort implements PortDevice {
  readonly name = 'the exit port';

  write(port: number, _size: AccessSize, value: number): Stop {
    switch (value) {
      case EXIT_CODE.returned:
        return { outcome: 'returned', exitCode: value };
      case EXIT_CODE.assertFailed:
        return { outcome: 'assert-failed', exitCode: value, message: `assertion failed (exit code 1 written to port ${hex(port)})` };
      case EXIT_CODE.panicked:
        return { outcome: 'panicked', exitCode: value, message: `panicked (exit code 2 written to port ${hex(port)})` };
      default:
        return { outcome: 'panicked', exitCode: value, message: `panicked with exit code ${value} (${hex(value)}) written to port ${hex(port)}` };
    }
  }
}
