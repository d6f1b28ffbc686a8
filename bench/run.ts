// `npm run bench`: what kvmtest costs, measured as ratios within one run on
// one machine (absolute times on a shared machine drift; ratios measured
// side by side hold). Prints:
//   1. one runGuest() of a trivial guest beside a minimal C program doing
//      the same KVM create/run/destroy cycle (bench/c-reference.c);
//   2. the marginal per-test cost through the full CLI, with --isolation
//      snapshot and --isolation vm, against the C reference;
//   3. the throughput with --jobs = the number of CPUs against --jobs 1;
//   4. one run() of a machine kept open (openMachine) beside one runGuest();
//   5. the marginal cost of a port exit served by a TypeScript callback
//      (ports) beside one served by a constant (ioports);
//   6. the marginal cost of a test written in TypeScript (a c`` body whose
//      port read a callback serves) beside the same test in C (.ioport),
//      through the full CLI (bench/test-files.ts);
//   7. mirror mode: one run of a function of a shared object beside one of
//      an image, and the first touch of a page of the process
//      (bench/mirror.ts). `node dist/bench/run.js mirror` runs only this;
//   8. interrupt controllers and a second vCPU: a test that takes one LAPIC
//      timer interrupt (.apic) and one that runs a function on CPU 1
//      (.cpus = 2, on_cpu) beside a plain test, through the full CLI
//      (bench/interrupts.ts). `node dist/bench/run.js interrupts` runs only this.
// Every figure is the median of several rounds, each round interleaving the
// things it compares.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openMachine, type GuestMachine } from '../src/open-machine.js';
import { runGuest, runGuestSync } from '../src/run-guest.js';
import { measureInterrupts } from './interrupts.js';
import { measureMirror } from './mirror.js';
import { measureTestFiles } from './test-files.js';
import { median } from './measure.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const out = join(root, 'bench', 'out');
const cli = join(root, 'bin', 'kvmtest.js');
const ROUNDS = 5;
const SMALL = 200;
const LARGE = 20200;
const LARGE_VM = 1200;
/** Tests in the large test file and binary of section 6. */
const TEST_FILE_TESTS = 8200;

function run(command: string, args: string[], what: string): string {
  const result = spawnSync(command, args, { cwd: root, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (result.status !== 0) {
    throw new Error(`${what} failed (${command} ${args.join(' ')}):\n${result.stderr}${result.error?.message ?? ''}`);
  }
  return result.stdout;
}

/** Microseconds per create/run/destroy cycle of the C reference. */
function cReference(iterations: number): number {
  return Number(run(join(out, 'c-reference'), [String(iterations)], 'the C reference').trim());
}

/**
 * Throughput of `count` C reference processes at once against one: how well
 * this host's KVM itself scales over CPUs, the ceiling for --jobs.
 */
function cReferenceScaling(count: number, iterations: number): number {
  const binary = join(out, 'c-reference');
  const together = Array.from({ length: count }, () => `${binary} ${iterations} >/dev/null &`).join(' ');
  const start = process.hrtime.bigint();
  run('sh', ['-c', `${together} wait`], 'the C reference, in parallel');
  const parallel = Number(process.hrtime.bigint() - start) / 1e6;
  const single = (cReference(iterations) * iterations) / 1e3;
  return (single * count) / parallel;
}

/** Microseconds per runGuest() of a guest that only returns. */
function runGuestCost(iterations: number): number {
  const options = { image: { flat: Uint8Array.of(0xc3), loadAddress: 0x200000 } };
  for (let i = 0; i < iterations / 10; i++) runGuestSync(options);
  const start = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) {
    const r = runGuestSync(options);
    if (r.outcome !== 'returned') throw new Error(`the trivial guest ended as ${r.outcome}: ${r.message}`);
  }
  return Number(process.hrtime.bigint() - start) / 1e3 / iterations;
}

const TRIVIAL = { image: { flat: Uint8Array.of(0xc3), loadAddress: 0x200000 } };

/** Microseconds per runGuest(), awaited as a test awaits it, of a guest that only returns. */
async function runGuestAsyncCost(iterations: number): Promise<number> {
  const start = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) {
    const r = await runGuest(TRIVIAL);
    if (r.outcome !== 'returned') throw new Error(`the trivial guest ended as ${r.outcome}: ${r.message}`);
  }
  return Number(process.hrtime.bigint() - start) / 1e3 / iterations;
}

/** Microseconds per run() of a machine kept open, with the arguments given. */
async function keptRunCost(machine: GuestMachine, iterations: number, args: number[] = []): Promise<number> {
  const start = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) {
    const r = await machine.run({ args });
    if (r.outcome !== 'returned') throw new Error(`the benchmark guest ended as ${r.outcome}: ${r.message}`);
  }
  return Number(process.hrtime.bigint() - start) / 1e3 / iterations;
}

/** `in al, 0x60` rdi times, then ret: test rdi, rdi; jz 1f; 2: in al, 0x60; dec rdi; jnz 2b; 1: ret. */
const PORT_LOOP = Uint8Array.of(0x48, 0x85, 0xff, 0x74, 0x07, 0xe4, 0x60, 0x48, 0xff, 0xcf, 0x75, 0xf9, 0xc3);
const PORT_EXITS = 2000;

/**
 * Microseconds per port exit on `machine` (a PORT_LOOP guest): runs with
 * PORT_EXITS exits less runs with none, so that the run's own cost cancels out.
 */
async function perExitCost(machine: GuestMachine, runs: number): Promise<number> {
  const many = await keptRunCost(machine, runs, [PORT_EXITS]);
  const none = await keptRunCost(machine, runs, [0]);
  return (many - none) / PORT_EXITS;
}

/** A test binary with `count` empty tests. */
function suite(count: number): string {
  const source = join(out, `suite-${count}.c`);
  const binary = join(out, `suite-${count}.elf`);
  if (!existsSync(binary)) {
    const lines = ['#include <kvmtest.h>'];
    for (let i = 0; i < count; i++) lines.push(`KVMTEST(t${String(i).padStart(5, '0')}) {}`);
    writeFileSync(source, `${lines.join('\n')}\n`);
    run('node', [cli, 'cc', '-o', binary, source], `building a ${count}-test suite`);
  }
  return binary;
}

/** Wall-clock milliseconds of `kvmtest run` over a binary. */
function cliRun(binary: string, args: string[]): number {
  const start = process.hrtime.bigint();
  const stdout = run('node', [cli, 'run', '--reporter', 'json', ...args, binary], 'kvmtest run');
  const elapsed = Number(process.hrtime.bigint() - start) / 1e6;
  const report = JSON.parse(stdout) as { summary: { failed: number } };
  if (report.summary.failed > 0) throw new Error(`a benchmark test failed: ${stdout.slice(0, 2000)}`);
  return elapsed;
}

/** Microseconds per test: (large run - small run) / (large - small), so start-up cancels out. */
function marginal(small: string, large: string, count: number, args: string[]): number {
  return ((cliRun(large, args) - cliRun(small, args)) * 1e3) / (count - SMALL);
}

function kvmKind(): string {
  if (existsSync('/sys/module/kvm_pvm')) return "software-assisted KVM (kvm_pvm: ring-0 code runs in KVM's instruction emulator)";
  if (existsSync('/sys/module/kvm_intel')) return 'hardware-virtualized KVM (Intel VT-x)';
  if (existsSync('/sys/module/kvm_amd')) return 'hardware-virtualized KVM (AMD-V)';
  return 'KVM of an unknown kind';
}

async function mirrorSection(): Promise<void> {
  const costs = await measureMirror(out, ROUNDS);
  console.log('7. mirror mode, on a kept machine (openMachine): a function that returns, and first touches');
  console.log(`   image's function, run()            ${costs.image.toFixed(0).padStart(6)} us`);
  console.log(`   mirrored function, run()           ${costs.mirror.toFixed(0).padStart(6)} us   (${costs.faultsPerRun} fault${costs.faultsPerRun === 1 ? '' : 's'}, ${costs.pagesPerRun} pages mapped per run)`);
  console.log(`   ratio mirror / image               ${costs.mirror / costs.image >= 10 ? (costs.mirror / costs.image).toFixed(1).padStart(6) : (costs.mirror / costs.image).toFixed(2).padStart(6)}`);
  console.log(`   first touch of a 2 MiB chunk       ${costs.firstTouch.toFixed(0).padStart(6)} us   (a #PF exit, the maps, 512 entries)`);
  console.log(`   a further page of a mapped chunk   ${costs.laterTouch.toFixed(2).padStart(6)} us   (no exit)`);
  console.log(`   a chunk new to the machine, more   ${costs.newSlot.toFixed(0).padStart(6)} us   (its memory slot, once per machine)`);
}

/** Tests in the large binaries of section 8 (a test there takes a few hundred microseconds). */
const INTERRUPT_TESTS = 2200;

function interruptsSection(): void {
  const costs = measureInterrupts(root, out, SMALL, INTERRUPT_TESTS, ROUNDS);
  console.log(`8. interrupts and several vCPUs, per test through the full CLI (marginal cost over ${INTERRUPT_TESTS - SMALL} tests, --jobs 1)`);
  console.log(`   plain test                         ${costs.plain.toFixed(0).padStart(6)} us`);
  console.log(`   .apic, one LAPIC timer interrupt   ${costs.timer.toFixed(0).padStart(6)} us   (${costs.timerRatio.toFixed(2)}x a plain test)`);
  console.log(`   .cpus = 2, on_cpu(1, ...) once     ${costs.onCpu.toFixed(0).padStart(6)} us   (${costs.onCpuRatio.toFixed(2)}x a plain test)`);
}

async function main(): Promise<void> {
  mkdirSync(out, { recursive: true });
  if (process.argv[2] === 'mirror') return mirrorSection();
  if (process.argv[2] === 'interrupts') return interruptsSection();
  run('cc', ['-O2', '-o', join(out, 'c-reference'), join(root, 'bench', 'c-reference.c')], 'building the C reference');
  const cpus = availableParallelism();
  const small = suite(SMALL);
  const large = suite(LARGE);
  const largeVm = suite(LARGE_VM);
  console.log(`kvmtest bench: ${kvmKind()}, ${cpus} CPUs, Node ${process.version}`);
  console.log(`medians of ${ROUNDS} rounds; each round measures its pair side by side\n`);

  const engine = { c: [] as number[], js: [] as number[], ratio: [] as number[] };
  for (let round = 0; round < ROUNDS; round++) {
    const c = cReference(500);
    const js = runGuestCost(500);
    engine.c.push(c);
    engine.js.push(js);
    engine.ratio.push(js / c);
  }
  console.log('1. one VM per guest: create, run a guest that returns, destroy');
  console.log(`   runGuest()                         ${median(engine.js).toFixed(0).padStart(6)} us`);
  console.log(`   C reference (bench/c-reference.c)  ${median(engine.c).toFixed(0).padStart(6)} us`);
  console.log(`   ratio runGuest / C                 ${median(engine.ratio).toFixed(2).padStart(6)}   (target <= 1.5)\n`);

  const snapshot: number[] = [];
  const vm: number[] = [];
  const cPerTest: number[] = [];
  const speedup: number[] = [];
  const parallel: number[] = [];
  const hostScaling: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const c = cReference(300);
    const one = marginal(small, large, LARGE, ['--isolation', 'snapshot', '--jobs', '1']);
    const many = marginal(small, large, LARGE, ['--isolation', 'snapshot', '--jobs', String(cpus)]);
    const fresh = marginal(small, largeVm, LARGE_VM, ['--isolation', 'vm', '--jobs', '1']);
    cPerTest.push(c);
    snapshot.push(one);
    vm.push(fresh);
    speedup.push(c / one);
    parallel.push(one / many);
    hostScaling.push(cReferenceScaling(cpus, 300));
  }
  console.log(`2. per test, through the full CLI (marginal cost: (run of ${LARGE} tests - run of ${SMALL}) / ${LARGE - SMALL})`);
  console.log(`   --isolation snapshot --jobs 1      ${median(snapshot).toFixed(0).padStart(6)} us`);
  console.log(`   --isolation vm --jobs 1            ${median(vm).toFixed(0).padStart(6)} us   (over ${LARGE_VM - SMALL} tests)`);
  console.log(`   C reference, one VM per test       ${median(cPerTest).toFixed(0).padStart(6)} us`);
  console.log(`   C reference / snapshot             ${median(speedup).toFixed(1).padStart(6)}x  (target >= 10x)\n`);
  console.log(`3. throughput, --jobs ${cpus} against --jobs 1 (snapshot isolation)`);
  console.log(`   speed-up                           ${median(parallel).toFixed(2).padStart(6)}x  (target >= 1.7x on 2 CPUs)`);
  console.log(`   for scale: ${cpus} C references at once    ${median(hostScaling).toFixed(2).padStart(6)}x  (how this host's KVM itself scales)\n`);

  const fresh: number[] = [];
  const kept: number[] = [];
  const keptSpeedup: number[] = [];
  const machine = openMachine(TRIVIAL);
  for (let i = 0; i < 1000; i++) await machine.run();
  for (let round = 0; round < ROUNDS; round++) {
    const one = await runGuestAsyncCost(300);
    const again = await keptRunCost(machine, 3000);
    fresh.push(one);
    kept.push(again);
    keptSpeedup.push(one / again);
  }
  machine.close();
  console.log('4. a machine kept between runs (openMachine) against a fresh one per run, a guest that returns');
  console.log(`   runGuest()                         ${median(fresh).toFixed(0).padStart(6)} us`);
  console.log(`   openMachine(...).run()             ${median(kept).toFixed(0).padStart(6)} us`);
  console.log(`   runGuest / run()                   ${median(keptSpeedup).toFixed(1).padStart(6)}x  (target >= 10x)\n`);

  const callbackExit: number[] = [];
  const constantExit: number[] = [];
  const exitRatio: number[] = [];
  const image = { flat: PORT_LOOP, loadAddress: 0x200000 };
  const callbacks = openMachine({ image, ports: { 0x60: { read: () => 1 } } });
  const constant = openMachine({ image, ioports: { 0x60: 1 } });
  await perExitCost(callbacks, 5);
  await perExitCost(constant, 5);
  for (let round = 0; round < ROUNDS; round++) {
    // Each round measures both, in turn first, so that neither always runs on a warmer host.
    const [first, second] = round % 2 === 0 ? [callbacks, constant] : [constant, callbacks];
    const a = await perExitCost(first, 20);
    const b = await perExitCost(second, 20);
    const [viaCallback, viaConstant] = first === callbacks ? [a, b] : [b, a];
    callbackExit.push(viaCallback);
    constantExit.push(viaConstant);
    exitRatio.push(viaCallback / viaConstant);
  }
  callbacks.close();
  constant.close();
  console.log(`5. one port exit (in from port 0x60; marginal cost: (run with ${PORT_EXITS} exits - run with none) / ${PORT_EXITS})`);
  console.log(`   served by a callback (ports)       ${median(callbackExit).toFixed(1).padStart(6)} us`);
  console.log(`   served by a constant (ioports)     ${median(constantExit).toFixed(1).padStart(6)} us`);
  console.log(`   ratio callback / constant          ${median(exitRatio).toFixed(2).padStart(6)}   (target <= 1.3)\n`);

  const files = measureTestFiles(root, out, SMALL, TEST_FILE_TESTS, ROUNDS);
  console.log(`6. per test, a test file's test against a test binary's, through the full CLI (marginal cost over ${TEST_FILE_TESTS - SMALL} tests)`);
  console.log(`   TypeScript (c\`\` body, ports callback) ${files.typescript.toFixed(0).padStart(4)} us`);
  console.log(`   C (KVMTEST, .ioport)               ${files.c.toFixed(0).padStart(6)} us`);
  console.log(`   ratio TypeScript / C               ${files.ratio.toFixed(2).padStart(6)}   (target <= 1.5)\n`);
  await mirrorSection();
  console.log('');
  interruptsSection();
}

await main();
