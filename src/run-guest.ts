// runGuest(): load an image into a fresh machine with the hardware the
// caller describes (hardware/), run it to the end in a session, and return
// what happened as a plain result. openMachine (open-machine.ts) is the
// form that keeps the machine between runs.
import type { GuestImage } from './image/image.js';
import type { GuestResult } from './result.js';
import type { Stop } from './devices/device.js';
import { buildMachine, finishRun, guestHost, planGuest, type RunGuestOptions, skipStop, startRun } from './guest-plan.js';
import type { Session } from './session/session.js';

export { DEFAULT_TIMEOUT_MS, type RunGuestOptions } from './guest-plan.js';

/**
 * Runs a guest on a fresh machine, waiting for devices that answer with a
 * Promise. Throws only for bad options or an unusable /dev/kvm.
 */
export async function runGuest(options: RunGuestOptions): Promise<GuestResult> {
  // Give the event loop a turn first: the native memory behind a finished
  // machine's views is released from it, so a loop of awaited runs stays flat.
  await new Promise<void>((resolve) => setImmediate(resolve));
  const guest = startGuest(options);
  try {
    return guest.finish(guest.skip ?? (await guest.session.runAsync(guest.timeoutMs)));
  } finally {
    guest.session.machine.close();
  }
}

/** runGuest without waiting: devices must answer at once (a Promise ends the run with an error). */
export function runGuestSync(options: RunGuestOptions): GuestResult {
  const guest = startGuest(options);
  try {
    return guest.finish(guest.skip ?? guest.session.run(guest.timeoutMs));
  } finally {
    guest.session.machine.close();
  }
}

interface StartedGuest {
  session: Session;
  timeoutMs: number;
  /** Set when the run cannot be faithful here (CPUID overrides this KVM ignores): the result without running. */
  skip?: Stop;
  finish(stop: Stop): GuestResult;
}

function startGuest(options: RunGuestOptions): StartedGuest {
  const started = process.hrtime.bigint();
  const plan = planGuest(options, 'runGuest');
  const { kvm, timer } = guestHost();
  const machine = buildMachine(kvm, plan);
  try {
    const session = startRun(machine, plan.hardware, plan.entry, timer, plan.mirroredFunction);
    const skip = skipStop(kvm, plan.hardware);
    return {
      session,
      timeoutMs: plan.timeoutMs,
      ...(skip && { skip }),
      finish: (stop) => finishRun(session, timer, stop, started),
    };
  } catch (err) {
    machine.close();
    throw err;
  }
}

export type { GuestImage };
