// Shared by the isolation and worker tests: builds the fixtures in
// test/isolation/fixtures with `kvmtest cc`, runs `kvmtest run` as a child
// process (so that its worker processes can be watched and killed), and
// reads a run's JSON report.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compileTests } from '../../src/image/toolchain.js';
import type { JsonReport, JsonTest } from '../../src/report/json.js';
import type { Outcome } from '../../src/result.js';
import { isSoftwareKvm } from '../helpers/kvm.js';

/** test/isolation/fixtures in the source tree (this file runs from dist/test/isolation). */
export const FIXTURES = fileURLToPath(new URL('../../../test/isolation/fixtures/', import.meta.url));
const CLI = fileURLToPath(new URL('../../../bin/kvmtest.js', import.meta.url));

let workDir: string | undefined;

/** This process's scratch directory, removed when it exits. */
export function scratchDir(): string {
  if (!workDir) {
    const dir = mkdtempSync(join(tmpdir(), 'kvmtest-isolation-'));
    workDir = dir;
    process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  }
  return workDir;
}

/** Builds fixture sources (names in test/isolation/fixtures) into `output`; returns its path. */
export function buildFixture(output: string, sources: readonly string[], ccArgs: readonly string[] = []): string {
  const elf = join(scratchDir(), output);
  const result = compileTests([...ccArgs, '-o', elf, ...sources.map((s) => join(FIXTURES, s))]);
  if (result.status !== 0) throw new Error(`kvmtest cc ${output} failed with status ${result.status}:\n${result.stderr}`);
  return elf;
}

/** The state fixture in both layouts (see fixtures/state.c). */
export const STATE_LAYOUTS = {
  interleaved: [] as string[],
  grouped: ['-DLAYOUT_GROUPED'],
} as const;
export type StateLayout = keyof typeof STATE_LAYOUTS;

export function buildState(layout: StateLayout): string {
  return buildFixture(`state-${layout}.elf`, ['state.c'], STATE_LAYOUTS[layout]);
}

/**
 * fixtures/outcomes.c: each test that ends the way named (undefined: any
 * way), to be followed by its tN_b_after_ test, which must pass.
 */
export function outcomeTests(): Array<[name: string, outcome: Outcome | undefined]> {
  return [
    ['t1_a_timeout', 'timeout'],
    ['t2_a_triple_fault', 'triple-fault'],
    // int3: hardware KVM delivers #BP instead (a fault the test did not expect).
    ['t3_a_emulation_failure', isSoftwareKvm() ? 'error' : undefined],
    ['t4_a_unexpected_in', 'unexpected-io'],
    ['t5_a_mmio_read', 'unexpected-io'],
    ['t6_a_fault_on_broken_stack', 'fault'],
  ];
}

/** The test that follows an outcomes.c test: t1_a_timeout -> t1_b_after_timeout. */
export const afterTest = (name: string) => name.replace('_a_', '_b_after_');

export interface CliRun {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Wall-clock milliseconds from spawn to exit. */
  elapsedMs: number;
}

export interface CliOptions {
  /** Replaces the environment (default: this process's). */
  env?: NodeJS.ProcessEnv;
  /** In a process group of its own (so that a test can signal the group, as Ctrl-C does). */
  detached?: boolean;
}

/**
 * Runs `kvmtest run ARGS` in a child process. `watch` is called once the
 * child is spawned, with the child, and may observe or disturb it.
 */
export function runCli(args: readonly string[], watch?: (child: ChildProcess) => void, options: CliOptions = {}): Promise<CliRun> {
  const started = performance.now();
  const child = spawn(process.execPath, [CLI, 'run', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: options.env ?? process.env,
    detached: options.detached ?? false,
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  watch?.(child);
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (status, signal) => resolve({ status, signal, stdout, stderr, elapsedMs: performance.now() - started }));
  });
}

/** Parses the JSON report a run wrote to standard output; fails with the run's stderr if there is none. */
export function jsonReport(run: CliRun): JsonReport {
  try {
    return JSON.parse(run.stdout) as JsonReport;
  } catch {
    throw new Error(`kvmtest run wrote no JSON report (status ${run.status}, signal ${run.signal}):\n${run.stderr}\n${run.stdout}`);
  }
}

/** The report's tests by name (a name appearing twice is an error). */
export function byName(report: JsonReport): Map<string, JsonTest> {
  const map = new Map<string, JsonTest>();
  for (const t of report.tests) {
    if (map.has(t.name)) throw new Error(`test ${t.name} reported twice`);
    map.set(t.name, t);
  }
  return map;
}

/** "name: status outcome: message" lines for the tests that did not pass: for assertion messages. */
export function describeFailures(tests: readonly JsonTest[]): string {
  return tests
    .filter((t) => t.status !== 'passed')
    .map((t) => `${t.name}: ${t.status} ${t.outcome}: ${t.message ?? ''}${t.output ? `\n  output: ${t.output}` : ''}`)
    .join('\n');
}

/** The pids of a process's children (from /proc; empty once it has exited). */
export function childPids(pid: number): number[] {
  const pids: number[] = [];
  try {
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      const text = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim();
      if (text) pids.push(...text.split(/\s+/).map(Number));
    }
  } catch {
    // The process is gone.
  }
  return pids;
}

/** True while a process exists and is not a zombie (a dead process not yet reaped). */
export function isAlive(pid: number): boolean {
  try {
    // "pid (comm) state ...": the state follows the last ")".
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** True if the process holds a KVM VM open (an anon_inode:kvm-vm descriptor). */
export function holdsKvmVm(pid: number): boolean {
  try {
    return readdirSync(`/proc/${pid}/fd`).some((fd) => {
      try {
        return readlinkSync(`/proc/${pid}/fd/${fd}`) === 'anon_inode:kvm-vm';
      } catch {
        return false;
      }
    });
  } catch {
    return false;
  }
}

/** A worker's progress file: [batch, index in batch (-1 between tests), heartbeat]; undefined if unreadable. */
export function readProgress(path: string): Int32Array | undefined {
  try {
    const bytes = readFileSync(path);
    return new Int32Array(bytes.buffer, bytes.byteOffset, 3);
  } catch {
    return undefined;
  }
}

/** One variable of a process's environment, or undefined (not set, or the process is gone). */
export function environOf(pid: number, name: string): string | undefined {
  try {
    const entries = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
    const entry = entries.find((e) => e.startsWith(`${name}=`));
    return entry?.slice(name.length + 1);
  } catch {
    return undefined;
  }
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
