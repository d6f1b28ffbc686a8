// npm start's step for the Rust mirror-mode example: builds the cdylib with
// `cargo build --release --offline` (it has no dependencies) into
// build/rust-mirror/, and copies it to build/rust-mirror.so. Where cargo is
// not installed, it says so and skips the example: the rest of npm start
// needs no Rust.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const targetDir = join(root, 'build', 'rust-mirror');
const output = join(root, 'build', 'rust-mirror.so');
const cargo = process.env.CARGO || 'cargo';

const probe = spawnSync(cargo, ['--version'], { encoding: 'utf8' });
if (probe.error || probe.status !== 0) {
  const why = probe.error?.code === 'ENOENT' ? `${cargo} is not installed (https://rustup.rs)` : `\`${cargo} --version\` failed`;
  console.log(`skipping examples/rust-mirror (the Rust mirror-mode example): ${why}`);
  process.exit(0);
}
// In the example's directory, so that cargo reads its .cargo/config.toml (the guest's code flags).
const build = spawnSync(cargo, ['build', '--release', '--offline', '--quiet', '--target-dir', targetDir], { cwd: here, stdio: 'inherit' });
if (build.status !== 0) {
  console.error(`examples/rust-mirror: cargo build failed (status ${build.status ?? build.signal})`);
  process.exit(1);
}
mkdirSync(dirname(output), { recursive: true });
copyFileSync(join(targetDir, 'release', 'libkvmtest_rust_mirror.so'), output);
console.log('built build/rust-mirror.so (examples/rust-mirror)');
