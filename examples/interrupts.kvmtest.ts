// Devices that interrupt the guest, written in TypeScript: a callback's
// guest context can raise an IOAPIC line (guest.irq) or send a
// message-signalled interrupt (guest.msi), at once or later, as real
// hardware does; guest.cpu says which vCPU made the access. The guest side
// uses the kvm-unit-tests names (handle_irq, ioapic_set_redir, eoi, ...).
import { kvmtest, c } from 'kvmtest';
import assert from 'node:assert/strict';

// A DMA engine at port 0x100: the guest writes a length to 0x101, then the
// command 1 (copy) to 0x100; the device fills the guest's buffer (at the
// address the guest wrote to 0x102, low 32 bits) and, 2 ms later, raises
// its interrupt on IOAPIC line 10. The guest sleeps in hlt until it comes.
const dma = { length: 0, buffer: 0, commands: 0 };
kvmtest('a device raises its interrupt after the guest writes a command', {
  apic: true,
  ports: {
    0x101: { write: (_port, value) => { dma.length = value; } },
    0x102: { write: (_port, value) => { dma.buffer = value; } },
    0x100: {
      write: (_port, value, _size, guest) => {
        assert.equal(value, 1, 'the only command is 1 (copy)');
        dma.commands++;
        guest.memory.write(dma.buffer, new Uint8Array(dma.length).fill(0xab));
        setTimeout(() => guest.irq(10), 2); // an edge on line 10
      },
    },
  },
}, c.unit`
  static volatile int done;
  static uint8_t buffer[64];

  static void dma_done(isr_regs_t *regs) {
      (void)regs;
      done = 1;
      eoi();
  }

  void test(void) {
      handle_irq(0x60, dma_done);
      ioapic_set_redir(10, 0x60, TRIGGER_EDGE);
      outl(0x102, (uint32_t)(uintptr_t)buffer);
      outb(0x101, sizeof(buffer));
      outb(0x100, 1);
      while (!done) safe_halt();    /* sti; hlt: the interrupt wakes it */
      irq_disable();
      for (unsigned i = 0; i < sizeof(buffer); i++) kassert_eq(buffer[i], 0xab);
  }
`, () => {
  assert.equal(dma.commands, 1);
});

// A message-signalled interrupt straight to CPU 1's local APIC: the
// address names the destination APIC ID (bits 12-19), the data the vector.
// The port's callback sees that CPU 1 made the access.
const callers: number[] = [];
kvmtest('an MSI to CPU 1, from a device CPU 1 talked to', {
  cpus: 2,
  ports: {
    0x200: { write: (_port, _value, _size, guest) => { callers.push(guest.cpu); guest.msi(0xfee00000n | (1n << 12n), 0x61); } },
  },
}, c.unit`
  static volatile int where = -1;

  static void msi_handler(isr_regs_t *regs) {
      (void)regs;
      where = smp_id();
      eoi();
  }

  static void ring(void *data) {
      (void)data;
      outb(0x200, 1);
      while (where < 0) safe_halt();
      irq_disable();
  }

  void test(void) {
      handle_irq(0x61, msi_handler);
      on_cpu(1, ring, 0);
      kassert_eq(where, 1);
  }
`, () => {
  assert.deepEqual(callers, [1]);
});
