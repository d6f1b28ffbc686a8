// Port I/O from TypeScript: ports that read as a fixed value (ioports), and
// ports served by functions that run while the guest runs (ports).
import { kvmtest, c } from 'kvmtest';
import assert from 'node:assert/strict';

// A c`` guest is the body of a test function, compiled with kvmtest.h.
kvmtest('inw reads the port', { ioports: { 0x1: 0xfe } }, c`
  kassert(inw(0x1) == 0xfe, "inw didn't read the correct value");
`);

// A CMOS clock: the guest selects a register through port 0x70, then reads
// it through 0x71. A c.unit`` guest is a whole C file whose entry is
// `void test(void)`, so it can have helpers of its own.
const cmos = new Map([[0x00, 0x30], [0x02, 0x15], [0x04, 0x09]]); // seconds, minutes, hours (BCD)
let selected = 0;
kvmtest('the clock reads 09:15:30', {
  ports: {
    0x70: { write: (_port, value) => { selected = value & 0x7f; } }, // bit 7 masks NMIs, not a register bit
    0x71: { read: () => cmos.get(selected) ?? 0 },
  },
}, c.unit`
  static uint8_t cmos_read(uint8_t reg) {
      outb(0x70, reg);
      return inb(0x71);
  }

  void test(void) {
      kassert_eq(cmos_read(0x04), 0x09);
      kassert_eq(cmos_read(0x02), 0x15);
      kassert_eq(cmos_read(0x00), 0x30);
  }
`);

// A handler sees the access's size: a 16-bit out reaches it as one write of 2 bytes.
const accesses: string[] = [];
kvmtest('a handler sees each access and its size', {
  ports: {
    0x80: { write: (port, value, size) => { accesses.push(`out ${size} byte(s) of 0x${value.toString(16)} to 0x${port.toString(16)}`); } },
  },
}, c`
  outb(0x80, 0x12);
  outw(0x80, 0x3456);
`, () => {
  assert.deepEqual(accesses, ['out 1 byte(s) of 0x12 to 0x80', 'out 2 byte(s) of 0x3456 to 0x80']);
});
