// The `blocklens.*` settings, read with workspace trust in mind: in an untrusted workspace the
// calibration path and the execution providers come from the user's own settings only, never
// from the workspace's `.vscode/settings.json` (package.json also lists them as
// restrictedConfigurations, so VS Code enforces the same).
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { PoolingRequest } from '../engine/report/schema.js';

export const POOLINGS: readonly PoolingRequest[] = ['auto', 'cls', 'mean', 'last', 'gap', 'tokens'];
export const EXECUTION_PROVIDERS = ['cpu', 'cuda'] as const;
export type ExecutionProvider = (typeof EXECUTION_PROVIDERS)[number];

export interface AnalysisSettings {
  samples?: number;
  batch?: number;
  pooling: PoolingRequest;
  /** 'ask' (quick pick), 'synthetic', or an absolute path. */
  defaultData: 'ask' | 'synthetic' | { path: string };
  executionProviders: ExecutionProvider[];
}

/** Settings that an untrusted workspace may not set. */
export const RESTRICTED = ['defaultData', 'executionProviders'] as const;

function userValue<T>(cfg: vscode.WorkspaceConfiguration, key: string): T | undefined {
  const i = cfg.inspect<T>(key);
  return i?.globalValue ?? i?.defaultValue;
}

export function readSettings(scope?: vscode.Uri, log?: (msg: string) => void): AnalysisSettings {
  const cfg = vscode.workspace.getConfiguration('blocklens', scope);
  const trusted = vscode.workspace.isTrusted;
  const restricted = <T>(key: string): T | undefined => (trusted ? cfg.get<T>(key) : userValue<T>(cfg, key));

  const positiveInt = (key: string): number | undefined => {
    const v = cfg.get<number | null>(key);
    if (v === null || v === undefined) return undefined;
    if (!Number.isInteger(v) || v < 1) {
      log?.(`ignoring blocklens.${key} = ${JSON.stringify(v)}: expected a positive integer`);
      return undefined;
    }
    return v;
  };
  const poolingRaw = cfg.get<string>('pooling') ?? 'auto';
  const pooling = (POOLINGS as readonly string[]).includes(poolingRaw) ? (poolingRaw as PoolingRequest) : 'auto';

  const eps = (restricted<unknown>('executionProviders') ?? ['cpu']) as unknown;
  const executionProviders = (Array.isArray(eps) ? eps : []).filter((e): e is ExecutionProvider =>
    (EXECUTION_PROVIDERS as readonly string[]).includes(e as string),
  );
  if (executionProviders.length === 0) executionProviders.push('cpu');

  const dataRaw = (restricted<string>('defaultData') ?? '').trim();
  let defaultData: AnalysisSettings['defaultData'] = 'ask';
  if (dataRaw === 'synthetic') defaultData = 'synthetic';
  else if (dataRaw !== '' && dataRaw !== 'ask') {
    const resolved = resolveSettingPath(dataRaw, scope);
    if (resolved) defaultData = { path: resolved };
    else log?.(`ignoring blocklens.defaultData '${dataRaw}': a relative path needs an open workspace folder`);
  }
  return { samples: positiveInt('samples'), batch: positiveInt('batch'), pooling, defaultData, executionProviders };
}

/** A path from settings, absolute; relative paths are taken from the scope's workspace folder. */
export function resolveSettingPath(value: string, scope?: vscode.Uri): string | undefined {
  const expanded = value.startsWith('~/') ? path.join(process.env.HOME ?? '', value.slice(2)) : value;
  if (path.isAbsolute(expanded)) return path.normalize(expanded);
  const folder = (scope && vscode.workspace.getWorkspaceFolder(scope)) ?? vscode.workspace.workspaceFolders?.[0];
  if (!folder || folder.uri.scheme !== 'file') return undefined;
  return path.resolve(folder.uri.fsPath, expanded);
}
