// The merge job: partial files of one sharded analysis → the report a single run would give.
// Every consumer is rebuilt fresh (the identity of its merge), every shard's snapshot is folded
// in, and the result goes through the same finishReport as a single run.
import { open, readFile } from 'node:fs/promises';
import { createOrtMatmul, jsMatmul, type MatmulBackend } from '../linalg/index.js';
import type { AnalysisReport } from '../report/schema.js';
import { analysisConsumers, finishReport, type Progress } from './analyze.js';
import { isPartialContainer, PARTIAL_MAGIC, PartialFileError, readPartialFile } from './partial-file.js';
import { PARTIAL_FORMAT, PARTIAL_VERSION, type AnalysisPartial } from './partial.js';

export interface MergeOptions {
  jsLinalg?: boolean;
  signal?: AbortSignal;
  onProgress?: (p: Progress) => void;
}

export class MergeError extends Error {
  constructor(message: string, readonly file?: string) {
    super(message);
    this.name = 'MergeError';
  }
}

/** Reads and checks the format of one partial file. */
export async function readPartial(file: string): Promise<AnalysisPartial> {
  let p: AnalysisPartial;
  try {
    const head = Buffer.alloc(PARTIAL_MAGIC.length);
    const fh = await open(file, 'r');
    try {
      await fh.read(head, 0, head.length, 0);
    } finally {
      await fh.close();
    }
    if (isPartialContainer(head)) p = (await readPartialFile(file)) as AnalysisPartial;
    else {
      // Not the binary container: a JSON partial of an older blocklens (refused by version below) or not a partial.
      const text = await readFile(file, 'utf8');
      try {
        p = JSON.parse(text) as AnalysisPartial;
      } catch {
        throw new MergeError('not a BlockLens partial (neither a partial container nor JSON)', file);
      }
    }
  } catch (e) {
    if (e instanceof MergeError) throw e;
    if (e instanceof PartialFileError) throw new MergeError(e.reason, file);
    throw new MergeError(`cannot read the partial: ${(e as Error).message}`, file);
  }
  if (!p || typeof p !== 'object' || p.format !== PARTIAL_FORMAT) throw new MergeError('not a BlockLens partial (no "format": "blocklens-partial")', file);
  if (p.version !== PARTIAL_VERSION) throw new MergeError(`partial format version ${String(p.version)}; this blocklens reads version ${PARTIAL_VERSION}`, file);
  return p;
}

function stable(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stable).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${stable((v as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

/** Refuses partials that do not make up one analysis: other model or settings, missing or overlapping shards. */
export function checkPartials(items: { file: string; partial: AnalysisPartial }[]): void {
  if (items.length === 0) throw new MergeError('no partial files given');
  const [first, ...rest] = items;
  const f = first!.partial;
  for (const { file, partial: p } of rest) {
    if (p.modelIdentity !== f.modelIdentity) {
      throw new MergeError(`made from a different model than ${first!.file} (model identity ${p.modelIdentity.slice(0, 12)}… vs ${f.modelIdentity.slice(0, 12)}…, covering external data)`, file);
    }
    for (const key of new Set([...Object.keys(f.settings), ...Object.keys(p.settings)])) {
      const a = stable(f.settings[key]);
      const b = stable(p.settings[key]);
      if (a !== b) throw new MergeError(`made with different settings than ${first!.file}: ${key} is ${b} here and ${a} there`, file);
    }
    if (p.totalSamples !== f.totalSamples) throw new MergeError(`covers a calibration set of ${p.totalSamples} samples, ${first!.file} one of ${f.totalSamples}`, file);
    if (p.shard.count !== f.shard.count) throw new MergeError(`is shard ${p.shard.index + 1}/${p.shard.count}, ${first!.file} is of ${f.shard.count} shards`, file);
    if (p.meta.pooling.used !== f.meta.pooling.used) throw new MergeError(`used pooling ${p.meta.pooling.used}, ${first!.file} ${f.meta.pooling.used}`, file);
  }
  const sorted = [...items].sort((a, b) => a.partial.range.start - b.partial.range.start || a.partial.range.end - b.partial.range.end);
  let at = 0;
  let prev: { file: string; partial: AnalysisPartial } | undefined;
  const missing: string[] = [];
  for (const it of sorted) {
    const r = it.partial.range;
    if (r.start < at) {
      throw new MergeError(`overlaps ${prev!.file}: both cover sample ids ${r.start}..${Math.min(at, r.end) - 1} (shards ${it.partial.shard.index + 1}/${it.partial.shard.count} and ${prev!.partial.shard.index + 1}/${prev!.partial.shard.count})`, it.file);
    }
    if (r.start > at) missing.push(`ids ${at}..${r.start - 1}`);
    at = Math.max(at, r.end);
    prev = it;
  }
  if (at < f.totalSamples) missing.push(`ids ${at}..${f.totalSamples - 1}`);
  if (missing.length) {
    const have = new Set(items.map((i) => i.partial.shard.index));
    const absent = Array.from({ length: f.shard.count }, (_, k) => k).filter((k) => !have.has(k)).map((k) => `${k + 1}/${f.shard.count}`);
    throw new MergeError(`missing shards${absent.length ? ` ${absent.join(', ')}` : ''}: no partial covers ${missing.join(', ')} of ${f.totalSamples} samples`);
  }
}

export async function mergePartials(items: { file: string; partial: AnalysisPartial }[], opts: MergeOptions = {}): Promise<AnalysisReport> {
  const started = performance.now();
  checkPartials(items);
  const f = items[0]!.partial;
  const matmul: MatmulBackend = opts.jsLinalg ? jsMatmul : await createOrtMatmul();
  try {
    const consumers = analysisConsumers(
      {
        blocks: f.meta.blocks.length, totalSamples: f.totalSamples, seed: f.meta.seed, drBlock: f.meta.drBlock, labels: f.labels, inputs: f.meta.calibration.inputs,
        fitSpans: (f.settings.fitSpans as { from: number; to: number }[] | null | undefined) ?? undefined,
      },
      matmul,
    );
    for (const { file, partial } of items) {
      opts.signal?.throwIfAborted();
      for (const c of consumers.all) {
        const snap = partial.consumers[c.name];
        if (!snap) throw new MergeError(`has no state for '${c.name}'`, file);
        try {
          await c.merge(snap);
        } catch (e) {
          throw new MergeError(`cannot merge '${c.name}': ${(e as Error).message}`, file);
        }
      }
    }
    const timings: Record<string, number> = {};
    for (const key of ['forward', 'inference'] as const) timings[key] = items.reduce((s, i) => s + (i.partial.timings[key] ?? 0), 0);
    timings.shards = items.length;
    const meta = { ...f.meta, warnings: [...f.meta.warnings, `merged from ${items.length} partial analyses (shards of ${f.shard.count})`] };
    return await finishReport(meta, consumers, matmul, timings, { signal: opts.signal, onProgress: opts.onProgress, started });
  } finally {
    await matmul.dispose();
  }
}
