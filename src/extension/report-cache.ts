// Reports already computed, keyed by the model's SHA-256 plus everything else that decides the
// numbers (calibration data fingerprint, analysis settings, engine version). Stored as JSON files
// under the extension's global storage; written to a temp file and renamed. No `vscode` import.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { parseReport } from '../engine/report/validate.js';
import { SCHEMA_VERSION, type AnalysisReport } from '../engine/report/schema.js';
import { TOOL_VERSION } from '../engine/version.js';
import type { AnalyzeRequest } from '../protocol/analyze-request.js';

export function sha256File(file: string, signal?: AbortSignal): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    const s = createReadStream(file, { highWaterMark: 1 << 20, signal });
    s.on('data', (chunk) => h.update(chunk));
    s.on('error', reject);
    s.on('end', () => resolve(h.digest('hex')));
  });
}

/** Size and modification time of a data file, or of every file under a data folder. */
export async function dataFingerprint(p: string | undefined): Promise<string> {
  if (!p) return 'synthetic';
  const parts: string[] = [];
  const walk = async (dir: string, depth: number): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true });
    entries.sort((a, b) => a.name.localeCompare(b.name));
    for (const e of entries) {
      const full = path.join(dir, e.name);
      if (e.isDirectory() && depth < 3) await walk(full, depth + 1);
      else if (e.isFile()) {
        const st = await stat(full);
        parts.push(`${path.relative(p, full)}:${st.size}:${st.mtimeMs}`);
      }
    }
  };
  const st = await stat(p);
  if (st.isDirectory()) await walk(p, 0);
  else parts.push(`${st.size}:${st.mtimeMs}`);
  return createHash('sha256').update(parts.join('\n')).digest('hex');
}

export function cacheKey(modelSha: string, request: AnalyzeRequest, dataPrint: string): string {
  const { model: _model, ...rest } = request;
  const settings = JSON.stringify(Object.keys(rest).sort().map((k) => [k, (rest as Record<string, unknown>)[k]]));
  return createHash('sha256').update([modelSha, dataPrint, settings, TOOL_VERSION, SCHEMA_VERSION].join('\n')).digest('hex').slice(0, 40);
}

export class ReportCache {
  constructor(
    private readonly dir: string,
    private readonly maxEntries = 50,
  ) {}

  private file(key: string): string {
    return path.join(this.dir, `${key}.json`);
  }

  async get(key: string): Promise<AnalysisReport | undefined> {
    try {
      return parseReport(await readFile(this.file(key), 'utf8'));
    } catch {
      return undefined;
    }
  }

  async put(key: string, report: AnalysisReport): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const tmp = `${this.file(key)}.${process.pid}.${Date.now()}.tmp`;
    await writeFile(tmp, JSON.stringify(report));
    await rename(tmp, this.file(key));
    await this.prune();
  }

  /** Keeps the newest `maxEntries` reports. */
  private async prune(): Promise<void> {
    const names = (await readdir(this.dir)).filter((n) => n.endsWith('.json'));
    if (names.length <= this.maxEntries) return;
    const dated = await Promise.all(names.map(async (n) => ({ n, t: (await stat(path.join(this.dir, n))).mtimeMs })));
    dated.sort((a, b) => b.t - a.t);
    for (const { n } of dated.slice(this.maxEntries)) await unlink(path.join(this.dir, n)).catch(() => {});
  }
}
