// Devices written in TypeScript: a memory-mapped one (mmio), model-specific
// registers (msrs) that can refuse an access with #GP (gp()), and a device
// whose answer comes later (a callback that returns a Promise).
import { kvmtest, c, gp } from 'kvmtest';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';

// An HPET at its usual address: each guest access to the region calls read
// or write with the offset into it and the access's size in bytes.
const HPET = 0xfed00000;
const CAPABILITIES = (10_000_000n << 32n) | 0x8086_a201n; // a tick every 10 ns (10^7 fs); vendor 0x8086, 3 timers, 64-bit counter
const hpet = { enabled: false, counter: 0n, configWrites: [] as bigint[] };
kvmtest('the HPET counts once enabled', {
  mmio: [{
    address: HPET,
    size: 0x400,
    name: 'hpet',
    read: (offset) => {
      if (offset === 0x000) return CAPABILITIES;
      if (offset === 0x010) return hpet.enabled ? 1n : 0n; // general configuration
      if (offset === 0x0f0) return hpet.enabled ? (hpet.counter += 100n) : hpet.counter; // main counter
      return 0n;
    },
    write: (offset, value) => {
      if (offset !== 0x010) return;
      hpet.enabled = (value & 1n) !== 0n;
      hpet.configWrites.push(value);
    },
  }],
}, c`
  volatile uint64_t *hpet = (volatile uint64_t *)${HPET};
  kassert_eq(hpet[0] >> 32, 10000000);  /* period in femtoseconds */
  hpet[0x10 / 8] |= 1;                  /* ENABLE_CNF */
  uint64_t first = hpet[0xf0 / 8];
  kassert(hpet[0xf0 / 8] > first, "the main counter stands still");
`, () => {
  assert.deepEqual(hpet.configWrites, [1n]);
});

// MSRs: one that reads as a fixed value, and one served by functions. This
// model of the package power limit keeps bits 0-31 only: a write to any
// other bit raises #GP in the guest (throw gp()), which ktry catches.
let powerLimit = 0n;
kvmtest('the power-limit MSR refuses reserved bits with #GP', {
  msrs: {
    0x606: 0xa0e03n, // MSR_RAPL_POWER_UNIT: power in units of 1/8 W
    0x610: {
      read: () => powerLimit,
      write: (value) => {
        if (value >> 32n !== 0n) throw gp();
        powerLimit = value;
      },
    },
  },
}, c.unit`
  static void write_reserved_bit(void *arg) {
      (void)arg;
      wrmsr(0x610, 1ull << 40);
  }

  void test(void) {
      kassert_eq(rdmsr(0x606) & 0xf, 3);   /* 1/2^3 W */
      wrmsr(0x610, 0x8078);                /* enabled, 120 units: 15 W */
      kassert_eq(rdmsr(0x610), 0x8078);
      kassert_eq(ktry(write_reserved_bit, NULL), FAULT_GP);
      kassert_eq(rdmsr(0x610), 0x8078);    /* the refused write changed nothing */
  }
`, () => {
  assert.equal(powerLimit, 0x8078n);
});

// Uncaught, the #GP ends the test, as shouldFault expects.
kvmtest('reading a missing MSR raises #GP', {
  shouldFault: '#GP',
  msrs: { 0x1234: { read: () => { throw gp(); } } },
}, c`
  rdmsr(0x1234);
`);

// A callback may return a Promise: the vCPU waits at that access until it
// settles (here 20 ms, standing for a file, a socket or another process to
// answer). The test's time limit keeps running meanwhile.
let asked = 0;
kvmtest('a device that answers later', {
  timeoutMs: 2000,
  ports: {
    0x300: {
      read: async () => {
        asked++;
        await sleep(20);
        return 0x42;
      },
    },
  },
}, c`
  kassert_eq(inb(0x300), 0x42);
`, () => {
  assert.equal(asked, 1);
});
