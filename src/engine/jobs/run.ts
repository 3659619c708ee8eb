// Runs one JobRequest in this process: the dispatch shared by the CLI and the job process.
import type { JobProgress, JobRequest, JobResult } from '../../protocol/jobs.js';
import { analyzeModel, analyzeShard } from './analyze.js';
import { mergePartials, readPartial } from './merge.js';

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
    default: {
      const never: never = job;
      throw new Error(`unknown job ${JSON.stringify(never)}`);
    }
  }
}
