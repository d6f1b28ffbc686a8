// What a process that runs guests holds once: its /dev/kvm handle (opened
// and checked on first use) and its run timer (one per thread that runs
// guests: timeouts are signals aimed at that thread).
import { Kvm } from '../kvm/kvm.js';
import { RunTimer } from '../machine/timeout.js';

let sharedKvm: Kvm | undefined;
let sharedTimer: RunTimer | undefined;

/** The process's /dev/kvm handle, opened (and checked) on first use. */
export function getKvm(): Kvm {
  return (sharedKvm ??= Kvm.open());
}

/** The process's guest timer. */
export function getRunTimer(): RunTimer {
  return (sharedTimer ??= new RunTimer());
}
