// Guest memory from the host: bytes placed before the test runs (memory),
// devices that read and write guest memory while it runs (DMA, through the
// guest context every callback gets), and checks that read it afterwards.
import { kvmtest, c } from 'kvmtest';
import assert from 'node:assert/strict';

/** An ACPI RSDP (revision 0): 20 bytes whose sum is 0 modulo 256. */
function rsdp(oemId: string, rsdtAddress: number): Uint8Array {
  const table = Buffer.alloc(20);
  table.write('RSD PTR ', 0, 'latin1');
  table.write(oemId, 9, 'latin1');
  table.writeUInt32LE(rsdtAddress, 16);
  table[8] = (256 - (table.reduce((sum, b) => sum + b, 0) % 256)) % 256;
  return table;
}

// memory places bytes at a guest-physical address (mapped at the same
// virtual address) before the guest starts; the pages become RAM.
kvmtest('the firmware table the test preloads checks out', {
  memory: [{ address: 0x1000000, data: rsdp('KVMTST', 0x1001000) }],
}, c.unit`
  static bool checksum_ok(const uint8_t *table, size_t length) {
      uint8_t sum = 0;
      for (size_t i = 0; i < length; i++) sum += table[i];
      return sum == 0;
  }

  void test(void) {
      const uint8_t *rsdp = (const uint8_t *)0x1000000;
      kassert(memcmp(rsdp, "RSD PTR ", 8) == 0);
      kassert(checksum_ok(rsdp, 20));
      kassert_eq(*(const uint32_t *)(rsdp + 16), 0x1001000);
  }
`);

// A disk controller's doorbell: the guest writes a buffer's address to port
// 0x500, and the device copies a sector there (DMA). The check reads the
// buffer as the guest left it.
const sector = new TextEncoder().encode('hello from the disk');
kvmtest('a device writes into guest memory (DMA)', {
  ram: [[0x1000000, 0x1001000]],
  ports: {
    0x500: { write: (_port, address, _size, guest) => { guest.memory.write(address, sector); } },
  },
}, c`
  char *buffer = (char *)0x1000000;
  outl(0x500, 0x1000000);
  kassert(memcmp(buffer, "hello from the disk", 19) == 0, "the buffer holds \"%.19s\"", buffer);
  for (int i = 0; i < 5; i++) buffer[i] -= 'a' - 'A';
`, (r) => {
  assert.equal(new TextDecoder().decode(r.memory.read(0x1000000, 19)), 'HELLO from the disk');
});

// A network card's transmit: the guest writes the address of a frame (a
// length byte, then the bytes) to port 0x510, and the device reads it from
// guest memory, by the guest's virtual address.
const sent: string[] = [];
kvmtest('a device reads from guest memory', {
  ports: {
    0x510: {
      write: (_port, address, _size, guest) => {
        const [length] = guest.memory.read(address, 1);
        sent.push(new TextDecoder().decode(guest.memory.read(address + 1, length!)));
      },
    },
  },
}, c`
  static const char frame[] = "\x05hello";
  outl(0x510, (uint32_t)(uintptr_t)frame);
`, () => {
  assert.deepEqual(sent, ['hello']);
});
