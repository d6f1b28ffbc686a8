// A machine with several vCPUs, brought up once before its snapshot: the
// runtime's start (kvmtest_smp_entry) has every other vCPU load the IDT,
// report for work and wait in its idle loop, which on an emulating KVM
// costs some milliseconds of spinning. Run once with a test function that
// returns at once (the return stub), it leaves the other vCPUs waiting for
// work; the snapshot then keeps them so, and each test's own start finds
// them online and goes straight on.
import { SMP_ENTRY } from '../image/test-table.js';
import { LAYOUT } from '../machine/layout.js';
import type { Machine } from '../machine/machine.js';
import { PlacementError } from '../machine/placement.js';
import type { RunTimer } from '../machine/timeout.js';
import { standardDevices } from './devices.js';
import { Session } from './session.js';

/** How long the bring-up may take before the machine is given up. */
const BRING_UP_TIMEOUT_MS = 10_000;

/**
 * Brings the other vCPUs up, if the machine has them and its image has the
 * runtime's entries; afterwards they stay where they wait
 * (Machine.secondariesLive). Throws if they do not come up.
 */
export function bringUpSecondaries(machine: Machine, timer: RunTimer): void {
  if (!machine.secondariesInRuntime) return;
  const entry = machine.image.symbols.byName(SMP_ENTRY);
  if (!entry) return;
  machine.setEntry(entry.value, [LAYOUT.returnStub, 0n, 0n, 0n, BigInt(machine.vcpus.length)]);
  const session = new Session(machine, standardDevices(new Map()), timer);
  const stop = session.run(BRING_UP_TIMEOUT_MS);
  timer.stop();
  // A PlacementError: the executors make it the test's failure ("cannot build this test's machine: ...").
  if (stop.outcome !== 'returned') {
    throw new PlacementError(`its other vCPUs did not come up in the runtime (${stop.outcome}: ${stop.message ?? 'no message'})`);
  }
  if (!machine.completePendingExit()) throw new PlacementError("KVM did not finish the last exit of its vCPUs' bring-up");
  machine.secondariesLive = true;
}
