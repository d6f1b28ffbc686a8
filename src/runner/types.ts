// What the runner knows about tests and what it reports: plain data shared
// by discovery, scheduling, workers and reporters.
import type { FaultInfo, Outcome } from '../result.js';

/** What a test expects to happen (from its record's options). */
export type Expectation =
  | { kind: 'return' }
  | { kind: 'panic' }
  | { kind: 'halt' }
  | { kind: 'fault'; vector: number };

/** One of a C test's .cpuid entries: `register` of leaf/subleaf reads (value & keep) | set. */
export interface CpuidEdit {
  leaf: number;
  subleaf: number;
  register: 'eax' | 'ebx' | 'ecx' | 'edx';
  keep: number;
  set: number;
}

/** One test found in a test binary's table. */
export interface TestCase {
  name: string;
  /** The test binary (path as given on the command line). */
  binary: string;
  /** Source location of the KVMTEST() declaration. */
  file: string;
  line: number;
  /** Address of the test function. */
  fn: bigint;
  /** Address of the test's record in the table (passed to the runtime). */
  record: bigint;
  expect: Expectation;
  ioports: Map<number, number>;
  ram: Array<[bigint, bigint]>;
  /** Bytes of heap the host places for the runtime's page allocator (.heap); absent: none. */
  heap?: bigint;
  /** CPUID edits (.cpuid), in record order; absent: none. */
  cpuid?: CpuidEdit[];
  /** vCPUs (.cpus), when more than one. */
  cpus?: number;
  /** In-kernel interrupt controllers (.apic, or .cpus above 1). */
  apic?: boolean;
  /** 0 = the run's default. */
  timeoutMs: number;
  ignore: boolean;
  /** Why an ignored test does not run, when it says (a TypeScript test's skip: 'reason'). */
  ignoreReason?: string;
  /** Set when the test cannot run at all (a mistake in its declaration, a guest that did not build): it fails with this. */
  setupError?: string;
  /** A TypeScript test file's guest ELF (its snippets, built by the runner). */
  guestElf?: string;
}

/**
 * 'ignored': not run (.ignore). 'skipped': ran, and skipped itself at run
 * time (kskip), whatever it expected.
 */
export type TestStatus = 'passed' | 'failed' | 'ignored' | 'skipped';

export interface TestResult {
  name: string;
  binary: string;
  /** Source location of the KVMTEST() declaration (TestCase.file, TestCase.line), for reports that link to it. */
  file: string;
  line: number;
  status: TestStatus;
  /** runGuest's outcome; absent for a test that did not run (ignored). */
  outcome?: Outcome;
  durationMs: number;
  /** Console text the guest wrote. */
  output: string;
  /** For failures: what was expected and what happened. For ignored and skipped tests: why. */
  message?: string;
  fault?: FaultInfo;
}

export interface RunSummary {
  passed: number;
  failed: number;
  ignored: number;
  /** Tests that skipped themselves at run time (kskip); not among `ignored`. */
  skipped: number;
  /** Tests of the binaries that filters, --skip or --shard left out. */
  filteredOut: number;
  /** Wall-clock time of the whole run. */
  durationMs: number;
  /** Selected tests without a result: never started (--bail, an interrupted run) or cut off while running. */
  notRun: number;
  /**
   * Set when the run stopped before its end for a reason other than --bail:
   * why ("interrupted by SIGINT", a worker problem). The report then holds
   * what finished.
   */
  incomplete?: string;
}

/**
 * Reporters are event callbacks over plain results; they never touch KVM.
 * A callback may return a promise when its output is full: the runner waits
 * for it before the next event, so a slow output holds back the run instead
 * of filling memory. A reporter keeps what it needs of a result; the runner
 * keeps nothing once every reporter has seen it.
 */
export interface Reporter {
  /** Before any test runs. `tests` is the filtered list, in report order. */
  onRunStart?(info: { tests: readonly TestCase[]; binaries: readonly string[] }): void | Promise<void>;
  /** After each test, in report order (stable from run to run). */
  onTestResult?(result: TestResult): void | Promise<void>;
  /** Once, at the end. Resolves when the report is written. */
  onRunEnd?(summary: RunSummary): void | Promise<void>;
}
