// The package as users get it: `npm pack` of this tree, the tarball's files
// and package.json, then `npm install ./kvmtest-0.1.0.tgz` in a fresh project
// outside the repository, where `npx kvmtest` must build and run a test.
// The pack runs in a copy of the tree, so that the build prepack does leaves
// this checkout's dist/ (which the other tests run from) alone.
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { before, describe, test } from 'node:test';
import { guestTest } from '../helpers/kvm.js';
import { type CommandResult, describeRun, lines, ROOT, runCommand } from '../cli/helpers.js';

/** Scripts npm runs when a package is installed (`prepare` too, for a tarball or git dependency). */
const INSTALL_SCRIPTS = ['preinstall', 'install', 'postinstall', 'prepare', 'preprepare', 'postprepare'];
/** Left out of the copy that is packed: what is built or kept by git (and every node_modules/). */
const NOT_COPIED = new Set(['dist', 'build', '.git', join('bench', 'out')]);

interface PackResult {
  filename: string;
  size: number;
  unpackedSize: number;
  entryCount: number;
  files: Array<{ path: string }>;
}

interface Manifest {
  version: string;
  main?: string;
  types?: string;
  exports?: { '.': { types: string; default: string } };
  bin?: Record<string, string>;
  scripts?: Record<string, string>;
  dependencies?: Record<string, string>;
}

interface LockFile {
  packages: Record<string, Record<string, unknown>>;
}

/**
 * The environment for npm run from inside `npm test`: without the npm_*
 * variables of the outer run (npm_config_local_prefix would point the inner
 * npm at this repository) and without its node_modules/.bin on PATH; the
 * same npm cache.
 */
function npmEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!/^npm_/i.test(name) && name !== 'INIT_CWD') env[name] = value;
  }
  if (process.env['npm_config_cache']) env['npm_config_cache'] = process.env['npm_config_cache'];
  env['PATH'] = (process.env['PATH'] ?? '')
    .split(':')
    .filter((dir) => !dir.endsWith('/node_modules/.bin'))
    .join(':');
  return env;
}

function npm(args: readonly string[], cwd: string): Promise<CommandResult> {
  return runCommand('npm', args, { cwd, env: npmEnv() });
}

describe('the npm package', () => {
  const work = mkdtempSync(join(tmpdir(), 'kvmtest-pack-'));
  process.on('exit', () => rmSync(work, { recursive: true, force: true }));
  const project = join(work, 'project');
  /** A copy of this tree without dist/, build/ and node_modules/ (linked to this one's). */
  const tree = join(work, 'tree');
  let pack: PackResult;
  let manifest: Manifest;
  let files: Set<string>;
  let tarball = '';
  let packSeconds = 0;
  /** `kvmtest --version` in the copy before anything built it, as in a fresh clone after `npm ci`. */
  let unbuilt: CommandResult;

  before(async () => {
    cpSync(ROOT, tree, {
      recursive: true,
      filter: (source) => {
        const relative = source.slice(ROOT.length).replace(/^\/+/, '');
        return !NOT_COPIED.has(relative) && !relative.split('/').includes('node_modules');
      },
    });
    symlinkSync(join(ROOT, 'node_modules'), join(tree, 'node_modules'));
    unbuilt = await runCommand(process.execPath, [join(tree, 'bin', 'kvmtest.js'), '--version'], { cwd: tree });
    const started = performance.now();
    const packed = await npm(['pack', '--json', '--pack-destination', work], tree);
    packSeconds = (performance.now() - started) / 1000;
    assert.equal(packed.status, 0, describeRun(packed));
    [pack] = JSON.parse(packed.stdout) as PackResult[];
    tarball = join(work, pack!.filename);
    files = new Set(pack!.files.map((f) => f.path));
    const unpacked = join(work, 'unpacked');
    mkdirSync(unpacked);
    const tar = await runCommand('tar', ['-xzf', tarball, '-C', unpacked]);
    assert.equal(tar.status, 0, describeRun(tar));
    manifest = JSON.parse(readFileSync(join(unpacked, 'package', 'package.json'), 'utf8')) as Manifest;
  });

  test('in a clone that nothing has built yet, the command says to run npm run build', () => {
    assert.equal(unbuilt.status, 2, describeRun(unbuilt));
    assert.match(unbuilt.stderr, /^kvmtest: \S+\/dist\/src\/cli\.js is missing: in a clone of kvmtest, run `npm run build` first\n$/);
    assert.equal(unbuilt.stdout, '');
  });

  test('the tarball holds the compiled library and command, the SDK, the examples and the docs', (t) => {
    t.diagnostic(`npm pack took ${packSeconds.toFixed(1)} s: ${pack.entryCount} files, ${(pack.size / 1024).toFixed(0)} KiB packed, ${(pack.unpackedSize / 1024).toFixed(0)} KiB unpacked`);
    for (const path of [
      'package.json',
      'README.md',
      'bin/kvmtest.js',
      'dist/src/index.js',
      'dist/src/index.d.ts',
      'dist/src/cli.js',
      'dist/src/runner/worker-main.js',
      'sdk/include/kvmtest.h',
      'sdk/include/kvmtest/x86.h',
      'sdk/link/kvmtest.ld',
      'sdk/runtime/start.S',
      'examples/ports.c',
      'examples/in_assembly.S',
      'examples/ports.kvmtest.ts',
      'examples/keyboard.kvmtest.ts',
      'examples/driver/kbd.c',
      'examples/node-test/guest.test.mjs',
      'examples/node-test/guest.c',
      'examples/vitest/guest.test.mjs',
      'examples/vitest/guest.c',
      'examples/vitest/vitest.config.mjs',
      'docs/guide.md',
    ]) {
      assert.ok(files.has(path), `${path} is in the tarball`);
    }
    const outside = [...files].filter((path) => !/^(bin|dist\/src|sdk|examples|docs)\/|^(package\.json|README\.md)$/.test(path));
    assert.deepEqual(outside, [], 'nothing but bin/, dist/src/, sdk/, examples/, docs/, package.json and README.md');
    assert.deepEqual([...files].filter((path) => /^(test|dist\/test|dist\/bench|bench)\//.test(path)), []);
    assert.deepEqual([...files].filter((path) => /(^|\/)node_modules\/|\.(o|elf|tsbuildinfo)$/.test(path)), []);
  });

  test('every source map and sourceMappingURL in the tarball points at a file the tarball has', () => {
    const unpacked = join(work, 'unpacked', 'package');
    const missing: string[] = [];
    for (const path of files) {
      if (path.endsWith('.map')) {
        const map = JSON.parse(readFileSync(join(unpacked, path), 'utf8')) as { sourceRoot?: string; sources: string[] };
        for (const source of map.sources) {
          const target = posix.normalize(posix.join(posix.dirname(path), map.sourceRoot ?? '', source));
          if (!files.has(target)) missing.push(`${path} -> ${target}`);
        }
      } else if (/\.(js|d\.ts)$/.test(path)) {
        const url = /\/\/# sourceMappingURL=(\S+)\s*$/.exec(readFileSync(join(unpacked, path), 'utf8'))?.[1];
        if (url !== undefined && !url.startsWith('data:')) {
          const target = posix.normalize(posix.join(posix.dirname(path), url));
          if (!files.has(target)) missing.push(`${path} -> ${target}`);
        }
      }
    }
    assert.deepEqual(missing, []);
  });

  test('its package.json runs nothing at install time and its entry points exist', () => {
    assert.deepEqual(INSTALL_SCRIPTS.filter((name) => manifest.scripts?.[name] !== undefined), []);
    assert.ok(!files.has('binding.gyp'), 'a binding.gyp would make npm run node-gyp at install');
    // koffi reaches KVM; sucrase strips the types of TypeScript test files. Neither needs an install script.
    assert.deepEqual(Object.keys(manifest.dependencies ?? {}), ['koffi', 'sucrase']);
    const entries = [manifest.main, manifest.types, manifest.exports?.['.'].default, manifest.exports?.['.'].types, manifest.bin?.['kvmtest']];
    assert.deepEqual(entries.map((entry) => entry && posix.normalize(entry)), [
      'dist/src/index.js',
      'dist/src/index.d.ts',
      'dist/src/index.js',
      'dist/src/index.d.ts',
      'bin/kvmtest.js',
    ]);
    for (const entry of entries) assert.ok(files.has(posix.normalize(entry!)), `${entry} is in the tarball`);
  });

  test('npm install of the tarball in a fresh project: no install script of kvmtest; npx kvmtest --version', async () => {
    // The project depends on kvmtest's own dependencies locked as this
    // repository locks them (every package of the lock that is not a
    // development one), so that npm needs only their tarballs, which `npm
    // ci` left in its cache, and no registry: kvmtest's own manifest still
    // comes from the tarball. koffi's install script is denied, as this
    // repository denies it: koffi loads its prebuilt binary without it.
    mkdirSync(project);
    const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as LockFile;
    const dependencies = manifest.dependencies!;
    const packages: LockFile['packages'] = { '': { name: 'project', dependencies } };
    for (const [path, entry] of Object.entries(lock.packages)) {
      if (path !== '' && !(entry as { dev?: boolean }).dev) packages[path] = entry;
    }
    writeFileSync(join(project, 'package.json'), `${JSON.stringify({ name: 'project', private: true, type: 'module', dependencies, allowScripts: { koffi: false } }, null, 2)}\n`);
    writeFileSync(join(project, 'package-lock.json'), `${JSON.stringify({ name: 'project', lockfileVersion: 3, requires: true, packages }, null, 2)}\n`);

    const install = await npm(['install', '--offline', '--no-audit', '--no-fund', tarball], project);
    assert.equal(install.status, 0, describeRun(install));
    assert.doesNotMatch(install.stdout + install.stderr, /install-scripts|kvmtest@\S+ \(/, 'npm lists no install script to review');
    assert.ok(existsSync(join(project, 'node_modules', 'kvmtest', 'dist', 'src', 'index.js')));

    const version = await runCommand('npx', ['--offline', '--no-install', 'kvmtest', '--version'], { cwd: project, env: npmEnv() });
    assert.equal(version.status, 0, describeRun(version));
    assert.equal(version.stdout, `kvmtest ${manifest.version}\n`);
  });

  test('TypeScript finds the types through exports (NodeNext) and through main/types (node10)', async () => {
    assert.ok(existsSync(join(project, 'node_modules', 'kvmtest')), 'the install test ran first');
    writeFileSync(
      join(project, 'check.ts'),
      [
        "import { openMachine, runGuest, type GuestMachine, type GuestResult, type RunOverrides } from 'kvmtest';",
        "const result: Promise<GuestResult> = runGuest({ image: { flat: Uint8Array.of(0xc3), loadAddress: 0x200000 }, timeoutMs: 100 });",
        "const machine: GuestMachine = openMachine({ image: { flat: Uint8Array.of(0xc3), loadAddress: 0x200000 } });",
        'const overrides: RunOverrides = { args: [1], ports: { 0x60: { read: () => 1 } } };',
        'const again: Promise<GuestResult> = machine.run(overrides);',
        'void result, again;',
        '',
      ].join('\n'),
    );
    const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    const settings = [['NodeNext', 'NodeNext'], ['commonjs', 'node10']] as const;
    const results = await Promise.all(
      settings.map(([module, resolution]) =>
        runCommand(process.execPath, [
          tsc, '--noEmit', '--strict', '--skipLibCheck', '--target', 'ES2022',
          '--module', module, '--moduleResolution', resolution,
          '--typeRoots', join(ROOT, 'node_modules', '@types'), '--types', 'node',
          'check.ts',
        ], { cwd: project }),
      ),
    );
    results.forEach((result, i) => assert.equal(result.status, 0, `${settings[i]![1]}: ${describeRun(result)}`));
  });

  test('the installed copy builds and runs a test (npx kvmtest cc, npx kvmtest run); its library and its node:test example run guests', guestTest(), async () => {
    assert.ok(existsSync(join(project, 'node_modules', 'kvmtest')), 'the install test ran first');
    writeFileSync(
      join(project, 'tiny.c'),
      '#include <kvmtest.h>\n\nKVMTEST(reads_its_port, .ioport = { 0x1, 0xfe }) {\n    sprintln("port 1 reads %#x", inw(0x1));\n    kassert_eq(inw(0x1), 0xfe);\n}\n',
    );
    const env = { ...npmEnv(), KVMTEST_CACHE_DIR: join(work, 'cache') };
    const cc = await runCommand('npx', ['--offline', '--no-install', 'kvmtest', 'cc', '-o', 'tiny.elf', 'tiny.c'], { cwd: project, env });
    assert.equal(cc.status, 0, describeRun(cc));
    assert.equal(cc.stdout + cc.stderr, '', 'a successful build prints nothing');
    const run = await runCommand('npx', ['--offline', '--no-install', 'kvmtest', 'run', 'tiny.elf'], { cwd: project, env });
    assert.equal(run.status, 0, describeRun(run));
    const out = lines(run.stdout);
    assert.equal(out[0], 'running 1 test');
    assert.ok(out.includes('test reads_its_port ... ok'), run.stdout);
    assert.match(out.at(-1)!, /^test result: ok\. 1 passed; 0 failed;/);

    // The library, imported by name from the project: in ax, dx; ret, with port 1 reading 0xfe.
    const script = [
      "import { runGuest } from 'kvmtest';",
      'const r = await runGuest({ image: { flat: Uint8Array.of(0x66, 0xed, 0xc3), loadAddress: 0x200000 }, args: [0, 0, 1], ioports: { 1: 0xfe } });',
      "console.log(r.outcome, r.regs.rax.toString(16));",
    ].join('\n');
    const library = await runCommand(process.execPath, ['--input-type=module', '-e', script], { cwd: project, env });
    assert.equal(library.status, 0, describeRun(library));
    assert.equal(library.stdout, 'returned fe\n');

    // The node:test example, run where the package put it, against the package's own library.
    const testEnv: NodeJS.ProcessEnv = { ...env };
    delete testEnv['NODE_TEST_CONTEXT'];
    const example = await runCommand(process.execPath, ['--test', join('node_modules', 'kvmtest', 'examples', 'node-test')], { cwd: project, env: testEnv });
    assert.equal(example.status, 0, describeRun(example));
    assert.match(example.stdout, /^# fail 0$/m);
  });

  test('npm start in a clone that nothing has built: compiles the sources, then builds and runs the examples', guestTest(), async () => {
    rmSync(join(tree, 'dist'), { recursive: true, force: true });
    const start = await runCommand('npm', ['run', '--silent', 'start'], { cwd: tree, env: { ...npmEnv(), KVMTEST_CACHE_DIR: join(work, 'cache') } });
    assert.equal(start.status, 0, describeRun(start));
    assert.match(lines(start.stdout).at(-1)!, /^test result: ok\. \d+ passed; 0 failed;/);
    assert.ok(existsSync(join(tree, 'dist', 'src', 'cli.js')));
  });
});
