// The example suite, the way a user first meets kvmtest: `npm start` builds
// examples/*.c and examples/*.S with `kvmtest cc` and runs them with
// `kvmtest run`. Every example passes (or is ignored on purpose), and the
// exit status is 0.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { guestTest } from '../helpers/kvm.js';
import { describeRun, lines, ROOT, runCommand } from './helpers.js';

/** The tests declared in examples/: KVMTEST(...) in C, kvmtest_record in assembly. [name, ignored]. */
function declaredExamples(): Array<[string, boolean]> {
  const dir = join(ROOT, 'examples');
  const found: Array<[string, boolean]> = [];
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.c'))) {
    const source = readFileSync(join(dir, file), 'utf8');
    for (const match of source.matchAll(/^KVMTEST\((\w+)([^)]*(?:\([^)]*\)[^)]*)*)\)/gm)) {
      found.push([match[1]!, /\.ignore\s*=\s*true/.test(match[2]!)]);
    }
  }
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.S'))) {
    const source = readFileSync(join(dir, file), 'utf8');
    for (const match of source.matchAll(/^kvmtest_record (\w+),(.*)$/gm)) {
      found.push([match[1]!, /ignore=1/.test(match[2]!)]);
    }
  }
  return found.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

test('npm start: builds and runs the examples; all pass, exit status 0', guestTest(), async () => {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  assert.match(pkg.scripts['start'] ?? '', /kvmtest\.js cc .*examples\/\*\.c examples\/\*\.S.*kvmtest\.js run /, 'the start script builds and runs the examples');

  const result = await runCommand('npm', ['run', '--silent', 'start'], { cwd: ROOT });
  assert.equal(result.status, 0, describeRun(result));

  const examples = declaredExamples();
  assert.ok(examples.length > 0);
  const out = lines(result.stdout);
  assert.equal(out[0], `running ${examples.length} tests`, result.stdout);
  const reported = out.filter((line) => line.startsWith('test ') && line.includes(' ... '));
  assert.deepEqual(
    reported,
    examples.map(([name, ignored]) => `test ${name} ... ${ignored ? 'ignored' : 'ok'}`),
  );
  const ignored = examples.filter(([, i]) => i).length;
  assert.match(
    out.at(-1)!,
    new RegExp(`^test result: ok\\. ${examples.length - ignored} passed; 0 failed; ${ignored} ignored; 0 measured; 0 filtered out; finished in \\d+\\.\\d\\ds$`),
  );
});
