// The check hypercall (kexpect, report) on a fake guest: each failed check
// is kept in order and the guest goes on; records it cannot read or of the
// wrong kind end the run as an error, never as a pass. No /dev/kvm.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { GuestAccess } from '../../src/devices/device.js';
import { HypercallPort, MAX_KEPT_CHECKS, newCheckLog } from '../../src/devices/hypercall.js';
import { HYPERCALL, HYPERCALL_PORT } from '../../src/devices/ports.js';

const RECORD = 0x1000n;
const FILE = 0x2000n;
const EXPR = 0x3000n;

/** A guest with one report record at RECORD and two strings. */
function guest(kind: number, rdi = RECORD): GuestAccess {
  const record = new DataView(new ArrayBuffer(64));
  record.setUint32(0, kind, true);
  record.setUint32(4, 12, true);
  record.setBigUint64(8, FILE, true);
  record.setBigUint64(16, EXPR, true);
  const strings = new Map([[FILE, 'f.c'], [EXPR, 'x == 1']]);
  const fake: Partial<GuestAccess> = {
    regs: () => ({ rdi, rsi: 0n }) as ReturnType<GuestAccess['regs']>,
    readVirtual: (address, length) => (address === RECORD ? new Uint8Array(record.buffer).subarray(0, length) : new Uint8Array(0)),
    readCString: (address) => strings.get(address),
  };
  return fake as GuestAccess;
}

describe('the check hypercall', () => {
  test('keeps each failed check in order and lets the guest go on', () => {
    const log = newCheckLog();
    const port = new HypercallPort(log);
    assert.equal(port.write(HYPERCALL_PORT, 4, HYPERCALL.check, guest(4)), undefined);
    assert.equal(port.write(HYPERCALL_PORT, 4, HYPERCALL.check, guest(4)), undefined);
    assert.deepEqual(log.failed, [
      { kind: 'check', file: 'f.c', line: 12, expression: 'x == 1' },
      { kind: 'check', file: 'f.c', line: 12, expression: 'x == 1' },
    ]);
  });

  test(`keeps ${MAX_KEPT_CHECKS} and counts the rest`, () => {
    const log = newCheckLog();
    const port = new HypercallPort(log);
    for (let i = 0; i < MAX_KEPT_CHECKS + 5; i++) port.write(HYPERCALL_PORT, 4, HYPERCALL.check, guest(4));
    assert.deepEqual([log.failed.length, log.dropped], [MAX_KEPT_CHECKS, 5]);
  });

  test('a record it cannot read, or of another kind, ends the run as an error', () => {
    const port = new HypercallPort();
    assert.deepEqual(port.write(HYPERCALL_PORT, 4, HYPERCALL.check, guest(4, 0x9000n)), {
      outcome: 'error', error: { kind: 'host' }, message: 'check hypercall: the record at 0x9000 is not mapped',
    });
    const assertion = port.write(HYPERCALL_PORT, 4, HYPERCALL.check, guest(1));
    assert.equal(assertion && 'outcome' in assertion ? assertion.outcome : undefined, 'error');
    const checkAsReport = port.write(HYPERCALL_PORT, 4, HYPERCALL.report, guest(4));
    assert.equal(checkAsReport && 'outcome' in checkAsReport ? checkAsReport.outcome : undefined, 'error');
  });
});
