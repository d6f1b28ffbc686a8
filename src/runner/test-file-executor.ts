// Runs the tests of one TypeScript (or JavaScript) test file in a worker:
// the file is loaded here too (its callbacks and checks are functions, which
// cannot cross from the runner), and each test is found by its place in the
// file. A test's guest runs on a machine kept between tests as C tests'
// are (reusable-machines.ts), with its own devices; its callbacks may
// answer later, and its host-side check runs once the guest has ended, with
// the machine's memory as the guest left it. Every failure becomes the
// test's result.
import { ElfError } from '../image/elf.js';
import { flatImage, type GuestImage, ImageError, loadImage, resolveEntry } from '../image/image.js';
import { loadMirrorLibrary, MirrorError, mirrorEntry } from '../mirror/library.js';
import { snippetSymbol } from '../testfile/build.js';
import type { Guest } from '../testfile/guests.js';
import type { LoadedTestFile } from '../testfile/load.js';
import type { TestDeclaration, TestRun } from '../testfile/registry.js';
import { describeUserError } from '../hardware/user-errors.js';
import { devicesFor, hardwareSkipReason, machineKey, machineOptionsFor, prepareRun } from '../hardware/setup.js';
import { hex } from '../devices/device.js';
import type { Kvm } from '../kvm/kvm.js';
import type { Machine } from '../machine/machine.js';
import { readVirtual } from '../machine/paging.js';
import { InterruptSupportError } from '../machine/interrupt-controller.js';
import { PlacementError } from '../machine/placement.js';
import type { RunTimer } from '../machine/timeout.js';
import type { Outcome } from '../result.js';
import { Session } from '../session/session.js';
import type { ExecutionOptions } from './executor.js';
import { type MachineLease, ReusableMachines } from './reusable-machines.js';
import type { StrayErrors } from './stray-errors.js';
import type { TestCase, TestResult } from './types.js';
import { hostFailure, identity, judge } from './verdict.js';

/** Machines kept per file: one per image and machine shape. */
const MACHINE_CACHE_SIZE = 8;

interface Runnable {
  image: GuestImage;
  /** Names the image in the machine cache's keys. */
  imageKey: string;
  entry: bigint;
  /** Mirror mode: the function's name. */
  mirroredFunction?: string;
}

export class TestFileExecutor {
  private readonly machines: ReusableMachines;
  private readonly images = new Map<string, GuestImage>();
  private readonly flatImages = new WeakMap<Guest, GuestImage>();

  constructor(
    private readonly kvm: Kvm,
    private readonly timer: RunTimer,
    private readonly file: LoadedTestFile,
    private readonly options: ExecutionOptions,
    /** The ELF built from the file's snippets (the runner built it), if the file has any. */
    private readonly guestElf: string | undefined,
    private readonly stray: StrayErrors,
  ) {
    this.machines = new ReusableMachines(kvm, options.isolation === 'snapshot', MACHINE_CACHE_SIZE, timer);
  }

  async run(test: TestCase): Promise<TestResult> {
    const started = performance.now();
    const declaration = this.file.tests[Number(test.record)];
    if (!declaration || declaration.name !== test.name) {
      return hostFailure(test, `${this.file.file} declared other tests when loaded again in the worker (at place ${test.record}: ` +
        `${declaration ? `"${declaration.name}"` : 'none'}); declarations must not depend on anything that changes between loads`);
    }
    if (declaration.error !== undefined || !declaration.options || !declaration.guest) return hostFailure(test, declaration.error ?? 'internal: incomplete declaration');
    const { hardware } = declaration.options;
    let runnable: Runnable;
    try {
      runnable = this.runnable(declaration.guest);
    } catch (err) {
      if (err instanceof ImageError || err instanceof ElfError || err instanceof MirrorError) return hostFailure(test, err.message);
      throw err;
    }
    const skip = hardwareSkipReason(this.kvm, hardware);
    if (skip !== undefined) return { ...identity(test), status: 'skipped', outcome: 'skipped', durationMs: 0, output: '', message: skip };

    let lease: MachineLease;
    try {
      lease = this.machines.take(`${runnable.imageKey}|${declaration.options.stackSize ?? ''}|${machineKey(hardware)}`, () => ({
        ...machineOptionsFor(this.kvm, runnable.image, hardware, runnable.mirroredFunction !== undefined),
        stackSize: declaration.options!.stackSize,
        maxGuestMemory: this.options.maxGuestMemory,
      }));
    } catch (err) {
      // What this KVM cannot give (an interrupt controller, so many vCPUs): the test is skipped, saying why.
      if (err instanceof InterruptSupportError) return { ...identity(test), status: 'skipped', outcome: 'skipped', durationMs: 0, output: '', message: err.message };
      if (err instanceof PlacementError) return hostFailure(test, `cannot build this test's machine: ${err.message}`);
      throw err;
    }
    let outcome: Outcome | undefined;
    const watch = this.stray.watch();
    try {
      const { machine } = lease;
      prepareRun(machine, hardware, runnable.entry, runnable.mirroredFunction);
      const session = new Session(machine, devicesFor(hardware), this.timer);
      const timeoutMs = test.timeoutMs > 0 ? test.timeoutMs : this.options.defaultTimeoutMs;
      const stop = await session.runAsync(timeoutMs);
      outcome = stop.outcome;
      const durationMs = performance.now() - started;
      const verdict = judge(test, { ...stop, output: session.devices.console.text(), durationMs });
      await strayErrorsArrive();
      const strayError = watch.errors();
      if (strayError) return { ...verdict, status: 'failed', message: strayError };
      if (verdict.status !== 'passed' || !declaration.check) return verdict;
      const memory = liveMemory(machine, session.result(stop, durationMs).sregs.cr3);
      const checked = await runCheck(declaration, { ...session.result(stop, durationMs), memory: memory.view }, timeoutMs);
      memory.close();
      await strayErrorsArrive();
      const afterCheck = watch.errors();
      if (checked ?? afterCheck) return { ...verdict, status: 'failed', message: (checked ?? afterCheck)! };
      return verdict;
    } catch (err) {
      if (err instanceof PlacementError) return hostFailure(test, err.message);
      throw err;
    } finally {
      watch.end();
      lease.release(outcome);
    }
  }

  close(): void {
    this.machines.close();
  }

  /** The image and entry a guest runs from. Throws ImageError or ElfError with a message for the user. */
  private runnable(guest: Guest): Runnable {
    switch (guest.kind) {
      case 'c':
      case 'c-unit':
      case 'asm': {
        if (!this.guestElf) throw new ImageError(`internal: ${this.file.file} has snippets but no guest ELF was built`);
        const image = this.image(this.guestElf);
        return { image, imageKey: this.guestElf, entry: resolveEntry(image, snippetSymbol(guest)) };
      }
      case 'elf': {
        const image = this.image(guest.path);
        try {
          return { image, imageKey: guest.path, entry: resolveEntry(image, guest.symbol) };
        } catch (err) {
          throw new ImageError(`elf(${JSON.stringify(guest.path)}, ${JSON.stringify(guest.symbol)}): ${(err as Error).message}`);
        }
      }
      case 'mirror': {
        const library = loadMirrorLibrary(guest.path);
        return { image: library.image, imageKey: `mirror:${library.realPath}`, entry: mirrorEntry(library, guest.symbol), mirroredFunction: guest.symbol };
      }
      case 'bytes': {
        let image = this.flatImages.get(guest);
        if (!image) this.flatImages.set(guest, (image = flatImage(guest.data, guest.loadAddress)));
        // Each bytes() guest is a machine of its own: the code is the image.
        return { image, imageKey: `bytes@${hex(guest.loadAddress)}#${flatKey(guest)}`, entry: guest.loadAddress };
      }
    }
  }

  private image(path: string): GuestImage {
    let image = this.images.get(path);
    if (!image) {
      try {
        image = loadImage({ elf: path });
      } catch (err) {
        if (err instanceof ImageError || err instanceof ElfError) {
          throw new ImageError(`${err.message}${path === this.guestElf ? '' : ' (elf() paths are relative to the directory kvmtest run runs in; build it with `kvmtest cc`)'}`);
        }
        throw err;
      }
      this.images.set(path, image);
    }
    return image;
  }
}

/**
 * One turn of the event loop. Node reports a Promise rejected with no
 * handler only once the microtask queue has drained, which a test whose
 * callbacks and check all answer at once never lets happen: without this
 * turn, such a rejection would reach a later test (the next one to wait).
 */
function strayErrorsArrive(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

const flatKeys = new WeakMap<Guest, string>();
let nextFlatKey = 0;

/** A name for one bytes() guest, for the machine cache (two equal arrays may still be two guests). */
function flatKey(guest: Guest): string {
  let key = flatKeys.get(guest);
  if (!key) flatKeys.set(guest, (key = String(nextFlatKey++)));
  return key;
}

/**
 * Guest memory as a check sees it: as the run left it, readable until the
 * check settles (after that the machine serves the next test).
 */
function liveMemory(machine: Machine, cr3: bigint): { view: TestRun['memory']; close(): void } {
  let open = true;
  const check = (what: string, n: number) => {
    if (!open) throw new Error(`${what}: the test's memory is readable only until its check settles`);
    if (!Number.isSafeInteger(n) || n < 0 || n > 1 << 30) throw new RangeError(`${what}: ${String(n)} is not a length in bytes (0 to 1 GiB)`);
    return n;
  };
  return {
    view: {
      read(address, size) {
        const at = BigInt(address);
        const bytes = readVirtual(machine.memory, cr3, at, check('memory.read', size));
        if (bytes.length < size) throw new RangeError(`memory.read: guest-virtual ${hex(at + BigInt(bytes.length))} is not mapped (reading ${size} bytes at ${hex(at)})`);
        return bytes;
      },
      readPhysical(address, size) {
        const at = BigInt(address);
        const view = machine.memory.physView(at, check('memory.readPhysical', size));
        if (!view) throw new RangeError(`memory.readPhysical: ${size} bytes at physical ${hex(at)} are not all in one stretch of guest RAM`);
        return view.slice();
      },
    },
    close: () => (open = false),
  };
}

/** Runs the test's check; its failure (a throw, a rejection, no answer in time) as a message, or undefined. */
async function runCheck(declaration: TestDeclaration, run: TestRun, timeoutMs: number): Promise<string | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      (async () => declaration.check!(run))(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new CheckTimeout(timeoutMs)), timeoutMs);
      }),
    ]);
    return undefined;
  } catch (err) {
    if (err instanceof CheckTimeout) return err.message;
    return `the check failed: ${describeUserError(err)}`;
  } finally {
    clearTimeout(timer);
  }
}

class CheckTimeout extends Error {
  constructor(ms: number) {
    super(`the check did not settle within ${ms} ms (the test's time limit)`);
  }
}
