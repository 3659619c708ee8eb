// Runs one JobRequest in this process: the dispatch shared by the CLI and the job process.
import type { JobProgress, JobRequest, JobResult } from '../../protocol/jobs.js';
import { analyzeModel, analyzeShard } from './analyze.js';
import { mergePartials, readPartial } from './merge.js';
import { createOrtMatmul } from '../linalg/index.js';
import { runRba } from '../rba/export.js';
import { runPlan } from '../rba/plan.js';
import { verifyModels } from '../rba/verify.js';

export interface RunOptions {
  signal?: AbortSignal;
  onProgress?: (p: JobProgress) => void;
}

export async function runJobHere(job: JobRequest, opts: RunOptions = {}): Promise<JobResult> {
  switch (job.kind) {
    case 'analyze': {
      const o = { ...job.request, signal: opts.signal, onProgress: opts.onProgress };
      if (job.shard) return { kind: 'partial', partial: await analyzeShard(o, job.shard) };
      return { kind: 'report', report: await analyzeModel(o) };
    }
    case 'merge': {
      const items = [];
      for (const file of job.partials) {
        opts.signal?.throwIfAborted();
        items.push({ file, partial: await readPartial(file) });
      }
      return { kind: 'report', report: await mergePartials(items, { signal: opts.signal, onProgress: opts.onProgress }) };
    }
    case 'rba':
      return { kind: 'rba', result: await runRba({ ...job.request, signal: opts.signal, onProgress: (phase) => opts.onProgress?.({ phase }) }) };
    case 'plan':
      return { kind: 'plan', result: await runPlan({ ...job.request, signal: opts.signal, onProgress: (phase) => opts.onProgress?.({ phase }) }) };
    case 'verify': {
      const matmul = await createOrtMatmul();
      try {
        return { kind: 'verify', result: await verifyModels({ ...job.request, signal: opts.signal }, matmul) };
      } finally {
        await matmul.dispose();
      }
    }
    default: {
      const never: never = job;
      throw new Error(`unknown job ${JSON.stringify(never)}`);
    }
  }
}
