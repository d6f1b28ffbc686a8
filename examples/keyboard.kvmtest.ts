// A C driver against keyboard controllers written in TypeScript: the driver
// (examples/driver/kbd.c) is built into build/driver.elf by `npm start`, and
// each test enters its function test_kbd_reset with elf(path, symbol).
// Paths given to elf() are relative to the directory kvmtest run runs in.
import { kvmtest, elf } from 'kvmtest';
import assert from 'node:assert/strict';

/** i8042 status bits (port 0x64). */
const OUTPUT_FULL = 0x01; // a byte for the guest waits in port 0x60
const INPUT_FULL = 0x02; // the controller has not taken the guest's last byte yet

// The example. Its status, 0x1c, has bit 0 clear, which says that no
// byte ever waits: a driver that waits for the ACK, as this one does, would
// wait forever. 0x1d sets bit 0; the other bits (system flag, command
// written last, keyboard not inhibited) are what a real controller shows.
const kbd = { queue: [0xfa], written: [] as number[] };
kvmtest('driver resets the keyboard', {
  ports: {
    0x60: { read: () => kbd.queue.shift() ?? 0, write: (port, value) => { kbd.written.push(value); } },
    0x64: { read: () => 0x1d },
  },
}, elf('build/driver.elf', 'test_kbd_reset'), () => {
  assert.deepEqual(kbd.written, [0xff]);
});

// A controller closer to the real one: busy for its first three status
// reads, and the keyboard answers only once it has the command. The driver
// must poll both status bits to pass.
const slow = { toGuest: [] as number[], fromGuest: [] as number[], busyReads: 3, statusReads: 0 };
kvmtest('driver waits for a slow controller', {
  ports: {
    0x60: {
      read: () => slow.toGuest.shift() ?? 0,
      write: (_port, value) => {
        slow.fromGuest.push(value);
        if (value === 0xff) slow.toGuest.push(0xfa); // ACK
      },
    },
    0x64: {
      read: () => {
        slow.statusReads++;
        return (slow.busyReads-- > 0 ? INPUT_FULL : 0) | (slow.toGuest.length > 0 ? OUTPUT_FULL : 0);
      },
    },
  },
}, elf('build/driver.elf', 'test_kbd_reset'), () => {
  assert.deepEqual(slow.fromGuest, [0xff]);
  // Three busy reads, one that lets the command through, one that sees the ACK.
  assert.equal(slow.statusReads, 5);
});

// A keyboard that answers RESEND (0xfe): the driver's kassert fails, which
// is what this test expects (shouldPanic), and the check reads the report.
kvmtest('driver reports a keyboard that asks for a resend', {
  shouldPanic: true,
  ports: {
    0x60: { read: () => 0xfe, write: () => {} },
    0x64: { read: () => OUTPUT_FULL },
  },
}, elf('build/driver.elf', 'test_kbd_reset'), (r) => {
  assert.equal(r.outcome, 'assert-failed');
  assert.equal(r.assertion?.message, 'the keyboard answered RESET with 0xfe, not ACK (0xfa)');
});
