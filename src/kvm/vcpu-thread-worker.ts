// A vCPU's own host thread (a worker_threads Worker): it does nothing but
// KVM_RUN, when the machine's owner asks, and says when KVM_RUN returned.
// The owner reads and answers the exit itself, in the shared kvm_run page,
// so every device callback still runs on the owner's thread, one at a time.
// Running the vCPU always on this thread matters: KVM re-binds a vCPU that
// moves between threads, at the cost of an RCU grace period.
import { workerData } from 'node:worker_threads';
import koffi from 'koffi';
import { COMMAND, SLOT, STATE, type VcpuThreadData } from './vcpu-thread-shared.js';

const data = workerData as VcpuThreadData;
const control = new Int32Array(data.control);
const libc = koffi.load('libc.so.6');
const ioctl = libc.func('int ioctl(int fd, unsigned long request, unsigned long arg)');
const syscall = libc.func('long syscall(long number)');
const tgkill = libc.func('int tgkill(int tgid, int tid, int sig)');
const SYS_GETTID = 186;
const wake = data.wake && { byte: new Uint8Array(koffi.view(data.wake.immediateExitAddress, 1)), ...data.wake };

try {
  Atomics.store(control, SLOT.tid, Number(syscall(SYS_GETTID)));
  for (;;) {
    Atomics.store(control, SLOT.state, STATE.IDLE);
    Atomics.notify(control, SLOT.state);
    while (Atomics.load(control, SLOT.command) === COMMAND.NONE) Atomics.wait(control, SLOT.command, COMMAND.NONE);
    const command = Atomics.exchange(control, SLOT.command, COMMAND.NONE);
    if (command === COMMAND.QUIT) break;
    Atomics.store(control, SLOT.state, STATE.RUNNING);
    const ret = ioctl(data.fd, data.runRequest, 0) as number;
    Atomics.store(control, SLOT.result, ret === 0 ? 0 : koffi.errno());
    Atomics.store(control, SLOT.state, STATE.EXITED);
    Atomics.notify(control, SLOT.state);
    if (wake) {
      wake.byte[0] = 1;
      tgkill(process.pid, wake.tid, wake.signal);
    }
    Atomics.add(control, SLOT.woken, 1);
    // Wait until the owner has taken the result before going idle.
    while (Atomics.load(control, SLOT.state) === STATE.EXITED) Atomics.wait(control, SLOT.state, STATE.EXITED);
  }
} catch (err) {
  Atomics.store(control, SLOT.state, STATE.FAILED);
  Atomics.notify(control, SLOT.state);
  throw err;
}
