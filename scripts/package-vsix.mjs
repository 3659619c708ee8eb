// Builds one VSIX per platform (vsce --target), each carrying only that platform's ONNX Runtime
// and sharp binaries. For each target it stages the built extension in .cache/vsix/<target>,
// installs the production dependencies for that os/cpu from the lockfile (npm ci --os --cpu, so
// sharp's optional @img/* packages are the target's), drops ONNX Runtime's other platforms, and
// packs with .vscodeignore. Run after `npm run build` (the `package` script does both).
//   node scripts/package-vsix.mjs [--target linux-x64,win32-x64,...]
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
// onnxruntime-node 1.30 ships binaries for these (no darwin-x64).
const ALL_TARGETS = ['linux-x64', 'linux-arm64', 'darwin-arm64', 'win32-x64', 'win32-arm64'];
const argv = process.argv.slice(2);
const targets = argv.includes('--target') ? argv[argv.indexOf('--target') + 1].split(',') : ALL_TARGETS;
const outDir = path.join(root, 'vsix');

function run(cmd, args, cwd, env = process.env) {
  const r = spawnSync(cmd, args, { cwd, stdio: 'inherit', env, timeout: 600_000 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.error?.message})`);
}

function dirSize(p) {
  const st = statSync(p);
  if (!st.isDirectory()) return st.size;
  return readdirSync(p).reduce((n, e) => n + dirSize(path.join(p, e)), 0);
}

for (const f of ['dist/extension.js', 'dist/worker.js', 'dist/summary-worker.js', 'dist/webview.js']) {
  if (!existsSync(path.join(root, f))) throw new Error(`${f} is missing: run \`npm run build\` first`);
}
mkdirSync(outDir, { recursive: true });
const vsce = path.join(root, 'node_modules', '@vscode', 'vsce', 'vsce');

for (const target of targets) {
  if (!ALL_TARGETS.includes(target)) throw new Error(`unknown target ${target} (one of ${ALL_TARGETS.join(', ')})`);
  const [os, cpu] = target.split('-');
  const stage = path.join(root, '.cache', 'vsix', target);
  rmSync(stage, { recursive: true, force: true });
  mkdirSync(stage, { recursive: true });
  for (const f of ['package.json', 'package-lock.json', '.vscodeignore', 'dist', 'media']) {
    if (existsSync(path.join(root, f))) cpSync(path.join(root, f), path.join(stage, f), { recursive: true });
  }
  // The extension's page: the README's "VS Code extension" section (the rest is about the CLI and
  // the repository, with links relative to it).
  const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
  const section = readme.match(/^## VS Code extension\n[\s\S]*?(?=^## )/m)?.[0];
  if (!section) throw new Error('README.md has no "## VS Code extension" section');
  writeFileSync(path.join(stage, 'README.md'), `# BlockLens\n\nFinds the redundant blocks of an ONNX model and replaces them with linear maps.\n\n${section.replace(/^## VS Code extension\n/, '')}`);
  // `files` is the npm package's list (the CLI); the VSIX uses .vscodeignore, and vsce refuses both.
  const pkg = JSON.parse(readFileSync(path.join(stage, 'package.json'), 'utf8'));
  delete pkg.files;
  writeFileSync(path.join(stage, 'package.json'), `${JSON.stringify(pkg, null, 2)}\n`);
  // The walkthrough's example model.
  mkdirSync(path.join(stage, 'test', 'fixtures', 'models'), { recursive: true });
  cpSync(path.join(root, 'test/fixtures/models/vit_tiny.onnx'), path.join(stage, 'test/fixtures/models/vit_tiny.onnx'));
  rmSync(path.join(stage, 'dist', 'test'), { recursive: true, force: true });
  if (!existsSync(path.join(stage, 'LICENSE'))) writeFileSync(path.join(stage, 'LICENSE'), 'MIT License. See the BlockLens repository.\n');

  const env = { ...process.env, npm_config_onnxruntime_node_install: 'skip' };
  run('npm', ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', `--os=${os}`, `--cpu=${cpu}`, ...(os === 'linux' ? ['--libc=glibc'] : [])], stage, env);
  // ONNX Runtime ships every platform in one package: keep the target's.
  const napi = path.join(stage, 'node_modules', 'onnxruntime-node', 'bin', 'napi-v6');
  for (const o of readdirSync(napi)) {
    if (o !== os) rmSync(path.join(napi, o), { recursive: true, force: true });
    else for (const a of readdirSync(path.join(napi, o))) if (a !== cpu) rmSync(path.join(napi, o, a), { recursive: true, force: true });
  }
  if (!existsSync(path.join(napi, os, cpu))) throw new Error(`onnxruntime-node has no binary for ${target}`);
  const out = path.join(outDir, `blocklens-${target}.vsix`);
  run(process.execPath, [vsce, 'package', '--target', target, '--out', out, '--skip-license', '--allow-missing-repository', '--allow-star-activation'], stage);
  console.log(`package: ${path.relative(root, out)} ${(statSync(out).size / 2 ** 20).toFixed(1)} MiB (unpacked node_modules ${(dirSize(path.join(stage, 'node_modules')) / 2 ** 20).toFixed(0)} MiB)`);
}
