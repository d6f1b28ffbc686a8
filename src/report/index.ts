// Picks a reporter by name. Each reporter lives in its own file; adding one
// means writing that file and listing it here.
import type { Reporter } from '../runner/types.js';
import { jsonReporter } from './json.js';
import { junitReporter } from './junit.js';
import type { ReportOutput } from './output.js';
import { prettyReporter } from './pretty.js';
import { tapReporter } from './tap.js';

export type { ReportOutput } from './output.js';
export { colorEnabled, COLOR_CHOICES, type ColorChoice } from './output.js';
export { prettyReporter, type PrettyOptions } from './pretty.js';
export { tapReporter } from './tap.js';
export { jsonReporter, jsonReport, type JsonReport, type JsonTest, type JsonNotRun, type JsonFault, type JsonSummary } from './json.js';
export { junitReporter, junitDocument, junitClassname, type JunitOptions } from './junit.js';

export interface ReporterOptions {
  /** pretty only: force color on or off (default: a TTY without NO_COLOR). */
  color?: boolean;
  /** pretty only: passing tests' output too (--show-output). */
  showOutput?: boolean;
  /** pretty only: a character per test (--quiet). */
  quiet?: boolean;
  /**
   * junit only: `file` and `line` attributes on each <testcase> (see
   * JunitOptions). Default: KVMTEST_JUNIT_FILE_ATTRIBUTES set to a value
   * other than "" and "0", else off.
   */
  junitFileAttributes?: boolean;
}

/** KVMTEST_JUNIT_FILE_ATTRIBUTES: how `kvmtest run` users ask for JUnit's file and line attributes. */
export function junitFileAttributesFromEnv(env: NodeJS.ProcessEnv = process.env): boolean {
  const value = env['KVMTEST_JUNIT_FILE_ATTRIBUTES'] ?? '';
  return value !== '' && value !== '0';
}

export const REPORTER_NAMES = ['pretty', 'tap', 'json', 'junit'] as const;
export type ReporterName = (typeof REPORTER_NAMES)[number];

const FACTORIES: Record<ReporterName, (out: ReportOutput, options: ReporterOptions) => Reporter> = {
  pretty: (out, options) => prettyReporter(out, options),
  tap: (out) => tapReporter(out),
  json: (out) => jsonReporter(out),
  junit: (out, options) => junitReporter(out, { fileAttributes: options.junitFileAttributes ?? junitFileAttributesFromEnv() }),
};

function isReporterName(name: string): name is ReporterName {
  return (REPORTER_NAMES as readonly string[]).includes(name);
}

/**
 * The reporter called `name`, writing to `out`. `name` is usually a user's
 * --reporter value, so any string is accepted and an unknown one is an Error
 * that lists the valid names.
 */
export function createReporter(
  name: ReporterName | (string & {}),
  out: ReportOutput,
  options: ReporterOptions = {},
): Reporter {
  if (!isReporterName(name)) {
    throw new Error(`unknown reporter ${JSON.stringify(name)}: use one of ${REPORTER_NAMES.join(', ')}`);
  }
  return FACTORIES[name](out, options);
}
