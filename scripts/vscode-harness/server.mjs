// Starts code-server (VS Code server + web workbench, on Node 24) in throwaway folders and a
// headless Debian chromium on it through playwright-core. Every wait has a timeout.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { chromium } from 'playwright-core';

const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
];

export function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${Math.round(ms / 1000)} s: ${what}`)), ms);
    }),
  ]);
}

/**
 * @param {{ paths: ReturnType<import('./setup.mjs').harnessPaths>, smokeDriver?: boolean, workspaceTrust?: boolean, userSettings?: object, extensionsDir?: string, log?: (s: string) => void }} opts
 */
export async function startServer(opts) {
  const log = opts.log ?? (() => {});
  const temp = mkdtempSync(path.join(tmpdir(), 'blocklens-vscode-'));
  const userData = path.join(temp, 'user-data');
  const extensionsDir = opts.extensionsDir ?? path.join(temp, 'extensions');
  mkdirSync(path.join(userData, 'User'), { recursive: true });
  mkdirSync(extensionsDir, { recursive: true });
  writeFileSync(
    path.join(userData, 'User', 'settings.json'),
    JSON.stringify(
      {
        'workbench.startupEditor': 'none',
        'workbench.tips.enabled': false,
        'workbench.enableExperiments': false,
        'telemetry.telemetryLevel': 'off',
        'extensions.autoCheckUpdates': false,
        'extensions.autoUpdate': false,
        // With workspaceTrust, folders open in restricted mode without a prompt.
        'security.workspace.trust.enabled': !!opts.workspaceTrust,
        'security.workspace.trust.startupPrompt': 'never',
        'security.workspace.trust.banner': 'never',
        'update.mode': 'none',
        'chat.disableAIFeatures': true,
        ...(opts.userSettings ?? {}),
      },
      null,
      2,
    ),
  );
  const env = {
    ...process.env,
    XDG_CONFIG_HOME: path.join(temp, 'xdg-config'),
    XDG_DATA_HOME: path.join(temp, 'xdg-data'),
    XDG_CACHE_HOME: path.join(temp, 'xdg-cache'),
    HOME: process.env.HOME,
  };
  const args = [
    opts.paths.codeServerEntry,
    '--bind-addr',
    '127.0.0.1:0',
    '--auth',
    'none',
    '--user-data-dir',
    userData,
    '--extensions-dir',
    extensionsDir,
    '--disable-telemetry',
    '--disable-update-check',
    ...(opts.workspaceTrust ? [] : ['--disable-workspace-trust']),
    '--disable-getting-started-override',
    ...(opts.smokeDriver ? ['--vscode-option', 'enable-smoke-test-driver'] : []),
  ];
  const server = spawn(opts.paths.node24, args, { env, stdio: ['ignore', 'pipe', 'pipe'], detached: false });
  let serverLog = '';
  const port = await withTimeout(
    new Promise((resolve, reject) => {
      const onData = (d) => {
        const s = d.toString();
        serverLog += s;
        const m = serverLog.match(/HTTP server listening on http:\/\/127\.0\.0\.1:(\d+)/);
        if (m) resolve(Number(m[1]));
      };
      server.stdout.on('data', onData);
      server.stderr.on('data', onData);
      server.on('exit', (code) => reject(new Error(`code-server exited with ${code} before listening:\n${serverLog.slice(-2000)}`)));
    }),
    90_000,
    'code-server to listen',
  );
  log(`code-server listening on 127.0.0.1:${port}`);
  const browser = await withTimeout(
    chromium.launch({ executablePath: opts.paths.chromium, headless: true, args: CHROMIUM_ARGS }),
    60_000,
    'chromium to start',
  );
  const stop = async () => {
    await browser.close().catch(() => {});
    if (server.exitCode === null) {
      server.kill('SIGTERM');
      await withTimeout(new Promise((r) => server.once('exit', r)), 10_000, 'code-server to stop').catch(() => server.kill('SIGKILL'));
    }
    rmSync(temp, { recursive: true, force: true, maxRetries: 3 });
  };
  return { port, browser, server, temp, userData, extensionsDir, stop, serverLog: () => serverLog };
}

export function workbenchUrl(port, folder, payload) {
  const q = new URLSearchParams({ folder });
  if (payload) q.set('payload', JSON.stringify(payload));
  return `http://127.0.0.1:${port}/?${q.toString()}`;
}

export const remoteUri = (port, p) => `vscode-remote://127.0.0.1:${port}${p}`;
