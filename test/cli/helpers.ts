// Shared by the command-line tests: runs `node bin/kvmtest.js ...` as a
// subprocess (as a user would) and builds fixture binaries from
// test/cli/fixtures with `kvmtest cc` into a temporary directory.
import type { JsonReport } from '../../src/report/json.js';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { toolchainTest } from '../helpers/kvm.js';

/** The package root (this file runs from dist/test/cli). */
export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const BIN = join(ROOT, 'bin', 'kvmtest.js');
export const FIXTURES = join(ROOT, 'test', 'cli', 'fixtures');

export interface CommandResult {
  /** Exit status; null when a signal ended the process. */
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CommandOptions {
  cwd?: string;
  /** Replaces the environment (default: this process's). */
  env?: NodeJS.ProcessEnv;
  /** Runs the command through this one, e.g. ['setpriv', '--reuid=65534', ...]. */
  prefix?: readonly string[];
}

/** Runs any command and collects its exit status and output. */
export function runCommand(command: string, args: readonly string[], options: CommandOptions = {}): Promise<CommandResult> {
  const [file, ...before] = [...(options.prefix ?? []), command];
  return new Promise((resolve, reject) => {
    const child = spawn(file!, [...before, ...args], {
      cwd: options.cwd ?? ROOT,
      env: options.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (status, signal) => resolve({ status, signal, stdout, stderr }));
  });
}

/** `kvmtest ARGS...`, run with this Node from the package's bin/. */
export function kvmtest(args: readonly string[], options: CommandOptions = {}): Promise<CommandResult> {
  return runCommand(process.execPath, [BIN, ...args], options);
}

/** Exit status, stdout and stderr, for assertion messages. */
export function describeRun(result: CommandResult): string {
  return `status ${result.status}${result.signal ? ` (signal ${result.signal})` : ''}\n--- stdout:\n${result.stdout}\n--- stderr:\n${result.stderr}`;
}

let workDir: string | undefined;

/** This process's temporary directory, removed when it exits. */
export function tempDir(): string {
  if (!workDir) {
    const dir = mkdtempSync(join(tmpdir(), 'kvmtest-cli-'));
    workDir = dir;
    process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  }
  return workDir;
}

/** True when fixtures can be built here (or under CI, where a missing toolchain must fail). */
export const CAN_BUILD = toolchainTest().skip === undefined;

/**
 * `kvmtest cc [ccArgs] -o TMP/output FIXTURES/sources...`; resolves to the
 * binary's path, or rejects with the compiler's messages.
 */
export async function buildFixture(output: string, sources: readonly string[], ccArgs: readonly string[] = []): Promise<string> {
  const elf = join(tempDir(), output);
  const result = await kvmtest(['cc', ...ccArgs, '-o', elf, ...sources.map((s) => join(FIXTURES, s))]);
  if (result.status !== 0) throw new Error(`building ${output} failed:\n${describeRun(result)}`);
  return elf;
}

/** Builds several fixtures at once: name -> sources. Resolves to name -> path. */
export async function buildFixtures<K extends string>(
  fixtures: Readonly<Record<K, readonly string[]>>,
  ccArgs: readonly string[] = [],
): Promise<Record<K, string>> {
  const names = Object.keys(fixtures) as K[];
  const paths = await Promise.all(names.map((name) => buildFixture(`${name}.elf`, fixtures[name], ccArgs)));
  return Object.fromEntries(names.map((name, i) => [name, paths[i]!])) as Record<K, string>;
}

/** The JSON reporter's document, as src/report/json.ts writes it. */
export type { JsonReport } from '../../src/report/json.js';

/** `kvmtest run --reporter json ARGS...`: the exit status and the parsed report. */
export async function runJson(args: readonly string[]): Promise<{ result: CommandResult; report: JsonReport }> {
  const result = await kvmtest(['run', '--reporter', 'json', ...args]);
  let report: JsonReport;
  try {
    report = JSON.parse(result.stdout) as JsonReport;
  } catch (err) {
    throw new Error(`the JSON report does not parse (${(err as Error).message}):\n${describeRun(result)}`);
  }
  return { result, report };
}

/** The lines of `text`, without the empty one after a final newline. */
export function lines(text: string): string[] {
  const all = text.split('\n');
  if (all[all.length - 1] === '') all.pop();
  return all;
}
