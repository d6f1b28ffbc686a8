// When a machine that has just run a guest may be restored from its
// snapshot for the next one, rather than closed and built again. The
// runner's executor and openMachine follow the same rule.
import type { Machine } from '../machine/machine.js';
import type { Outcome } from '../result.js';

/**
 * Outcomes after which a machine is not trusted for another run: the vCPU
 * shut down, was stopped wherever it was, or KVM itself gave up on it.
 */
const DISCARD_AFTER: ReadonlySet<Outcome> = new Set(['triple-fault', 'timeout', 'error']);

/** True when the machine, having ended a run with `outcome`, may be restored for another. */
export function reusableAfter(machine: Machine, outcome: Outcome): boolean {
  // A write to an MSR that no restore covers leaves state behind (msr-trap.ts).
  return !DISCARD_AFTER.has(outcome) && machine.unrestoredMsrWrite === undefined;
}
