// The buses send each access to the device that owns the port or address,
// and turn an access nobody owns into a stop that names it. Pure: the
// guest is a stub that the devices here never look at.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { IoBus, MmioBus } from '../../src/devices/bus.js';
import type { GuestAccess, MmioDevice, PortDevice } from '../../src/devices/device.js';

const guest = {} as GuestAccess;

describe('IoBus', () => {
  test('routes reads and writes by port, and a range of ports to one device', () => {
    const writes: Array<[number, number]> = [];
    const device: PortDevice = { name: 'dev', read: (port) => port + 1, write: (port, _size, value) => void writes.push([port, value]) };
    const bus = new IoBus().register(device, 0x60, 4);
    assert.equal(bus.read(0x61, 1, guest), 0x62);
    assert.equal(bus.write(0x63, 2, 0x1234, guest), undefined);
    assert.deepEqual(writes, [[0x63, 0x1234]]);
  });

  test('an unowned port, or a direction the device lacks, is unexpected-io naming the access', () => {
    const bus = new IoBus().register({ name: 'a reader', read: () => 0 }, 0x80);
    assert.deepEqual(bus.read(0x99, 4, guest), {
      outcome: 'unexpected-io',
      message: 'unexpected 32-bit read (in) from port 0x99: no device is configured there (give the test the port: .ioport/.ioports in KVMTEST, ioports in runGuest)',
    });
    assert.deepEqual(bus.write(0x80, 1, 0x42, guest), { outcome: 'unexpected-io', message: 'unexpected 8-bit write (out) of 0x42 to port 0x80: a reader does not accept writes' });
  });

  test('a port given to two devices is an error', () => {
    const bus = new IoBus().register({ name: 'first' }, 0x10, 2);
    assert.throws(() => bus.register({ name: 'second' }, 0x11), /port 0x11 is used by both first and second/);
  });
});

describe('MmioBus', () => {
  test('routes by range and refuses overlapping ranges', () => {
    const device: MmioDevice = { name: 'regs', read: (address) => address - 0x1000n };
    const bus = new MmioBus().register(device, 0x1000n, 0x100n);
    assert.equal(bus.read(0x1010n, 4, guest), 0x10n);
    assert.throws(() => bus.register({ name: 'other' }, 0x10f0n, 0x20n), /MMIO range 0x10f0 of other overlaps regs/);
    assert.deepEqual(bus.write(0x2000n, 8, 5n, guest), { outcome: 'unexpected-io', message: 'unexpected 8-byte MMIO write of 0x5 at physical 0x2000: no memory or device is there' });
  });
});
