// Runs seeded fuzz variants (mutate.ts) through child processes (case-runner.ts), each case under
// a time limit. A case is a crash when it throws one of JavaScript's own error types, when the
// child dies (native crash, out of memory) or when it runs past the limit (a hang).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import { makeVariant, type FixtureSource, type Variant } from './mutate';
import type { CaseRequest, CaseResult } from './outcome';

export interface FuzzOptions {
  cases: number;
  /** First seed; case k uses seed firstSeed + k. */
  firstSeed: number;
  workers: number;
  /** Per-case limit; past it the case is a hang (counted as a crash). */
  caseTimeoutMs: number;
  fixtures: FixtureSource[];
  samples?: number;
  batch?: number;
  onCase?: (v: Variant, r: CaseResult) => void;
}

export interface FuzzCase {
  seed: number;
  fixture: string;
  family: Variant['family'];
  detail: string[];
  result: CaseResult;
}

export interface FuzzSummary {
  tried: number;
  ok: number;
  errors: number;
  crashes: number;
  hangs: number;
  /** Clean errors that neither carry a file nor name it. */
  unnamed: number;
  byFamily: Record<string, { tried: number; ok: number; errors: number; crashes: number }>;
  byStage: Record<string, number>;
  crashCases: FuzzCase[];
  /** A few clean errors per stage, for the record. */
  samples: FuzzCase[];
  wallMs: number;
}

const HERE = __dirname;

function mkfifo(p: string): void {
  const r = spawnSync('mkfifo', [p]);
  if (r.status !== 0) writeFileSync(p, 'secret'); // no mkfifo: a plain file still proves nothing leaks
}

function materialize(v: Variant, dir: string, outside: string): void {
  mkdirSync(dir, { recursive: true });
  for (const f of v.files) {
    const p = path.join(dir, f.name);
    if (f.dir) mkdirSync(p, { recursive: true });
    else if (f.symlinkTo !== undefined) symlinkSync(f.symlinkTo.replace(/^@outside/, outside), p);
    else writeFileSync(p, f.bytes!);
  }
}

class Runner {
  child!: ChildProcess;
  pending?: { id: number; resolve: (r: CaseResult) => void; timer: NodeJS.Timeout };
  stderr = '';
  constructor(private timeoutMs: number) {
    this.start();
  }

  start(): void {
    this.stderr = '';
    this.child = spawn(process.execPath, ['--max-old-space-size=2048', '--import', 'tsx', path.join(HERE, 'case-runner.ts')], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, NODE_OPTIONS: '' },
    });
    const child = this.child;
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let r: CaseResult;
      try {
        r = JSON.parse(line) as CaseResult;
      } catch {
        return; // stray output
      }
      const p = this.pending;
      if (p && p.id === r.id) {
        clearTimeout(p.timer);
        this.pending = undefined;
        p.resolve(r);
      }
    });
    child.stderr!.on('data', (d: Buffer) => {
      this.stderr = (this.stderr + d.toString()).slice(-2000);
    });
    child.on('exit', (code, signal) => {
      const p = this.pending;
      if (child !== this.child || !p) return;
      clearTimeout(p.timer);
      this.pending = undefined;
      const tail = this.stderr.trim().split('\n').slice(-3).join(' | ');
      p.resolve({ id: p.id, outcome: 'crash', stage: 'analyze', errorName: 'ChildDied', message: `case runner died (code ${code}, signal ${signal}) ${tail}`.slice(0, 400) });
      this.start();
    });
  }

  run(req: CaseRequest): Promise<CaseResult> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        const p = this.pending;
        if (!p || p.id !== req.id) return;
        this.pending = undefined;
        const old = this.child;
        this.start();
        old.kill('SIGKILL');
        resolve({ id: req.id, outcome: 'crash', stage: 'analyze', errorName: 'Hang', message: `no answer within ${this.timeoutMs} ms` });
      }, this.timeoutMs);
      this.pending = { id: req.id, resolve, timer };
      this.child.stdin!.write(JSON.stringify(req) + '\n');
    });
  }

  stop(): void {
    this.child.stdin!.end();
    const c = this.child;
    setTimeout(() => c.kill('SIGKILL'), 5000).unref();
  }
}

export async function runFuzz(opts: FuzzOptions): Promise<FuzzSummary> {
  const started = performance.now();
  const root = mkdtempSync(path.join(tmpdir(), 'blocklens-fuzz-'));
  const outside = path.join(root, 'outside');
  mkdirSync(outside);
  mkfifo(path.join(outside, 'fifo'));
  writeFileSync(path.join(outside, 'secret.bin'), new Uint8Array(1 << 16).fill(7));
  writeFileSync(path.join(root, 'outside.bin'), new Uint8Array(1 << 16).fill(7));
  const summary: FuzzSummary = { tried: 0, ok: 0, errors: 0, crashes: 0, hangs: 0, unnamed: 0, byFamily: {}, byStage: {}, crashCases: [], samples: [], wallMs: 0 };
  const runners = Array.from({ length: Math.max(1, opts.workers) }, () => new Runner(opts.caseTimeoutMs));
  let next = 0;
  const perStageSamples = new Map<string, number>();
  try {
    await Promise.all(
      runners.map(async (runner) => {
        for (;;) {
          const k = next++;
          if (k >= opts.cases) return;
          const seed = opts.firstSeed + k;
          const v = makeVariant(seed, opts.fixtures, outside);
          const dir = path.join(root, 'cases', String(seed), 'm');
          materialize(v, dir, outside);
          const r = await runner.run({ id: seed, dir, model: v.model, samples: opts.samples ?? 8, batch: opts.batch ?? 4, seed });
          rmSync(path.dirname(dir), { recursive: true, force: true });
          summary.tried++;
          const fam = (summary.byFamily[v.family] ??= { tried: 0, ok: 0, errors: 0, crashes: 0 });
          fam.tried++;
          const key = `${r.outcome}@${r.stage}`;
          summary.byStage[key] = (summary.byStage[key] ?? 0) + 1;
          const c: FuzzCase = { seed, fixture: v.fixture, family: v.family, detail: v.detail, result: r };
          if (r.outcome === 'ok') {
            summary.ok++;
            fam.ok++;
          } else if (r.outcome === 'error') {
            summary.errors++;
            fam.errors++;
            if (!r.named) summary.unnamed++;
            const n = perStageSamples.get(key) ?? 0;
            if (n < 4) {
              perStageSamples.set(key, n + 1);
              summary.samples.push(c);
            }
          } else {
            summary.crashes++;
            fam.crashes++;
            if (r.errorName === 'Hang') summary.hangs++;
            summary.crashCases.push(c);
          }
          opts.onCase?.(v, r);
        }
      }),
    );
  } finally {
    for (const r of runners) r.stop();
    rmSync(root, { recursive: true, force: true });
  }
  summary.wallMs = Math.round(performance.now() - started);
  return summary;
}

/** The fixture models the fuzzer starts from (small ones more often: they analyse fastest). */
export function fuzzFixtures(fixturesDir: string): FixtureSource[] {
  const read = (rel: string) => new Uint8Array(readFileSync(path.join(fixturesDir, rel)));
  const small = ['linear_blocks', 'noscope_mlp_resnet', 'resnet_tiny'].map((n) => ({ name: n, bytes: read(`models/${n}.onnx`) }));
  const large = ['vit_tiny', 'vit_tiny_op18', 'bert_tiny', 'gpt_tiny'].map((n) => ({ name: n, bytes: read(`models/${n}.onnx`) }));
  const ext: FixtureSource = {
    name: 'vit_external',
    bytes: read('models/vit_external/vit_external.onnx'),
    siblings: { 'weights.bin': read('models/vit_external/weights.bin') },
  };
  return [...small, ...small, ...small, ...large, ext];
}
