// Kept for existing callers: an analysis in the job process (see jobs/run-job.ts).
import type { AnalyzeRequest } from '../../protocol/analyze-request.js';
import type { JobProgress } from '../../protocol/jobs.js';
import { JobError, runJob } from '../jobs/run-job.js';
import type { AnalysisReport } from '../report/schema.js';

export { JobError as WorkerAnalysisError };

export interface WorkerRunOptions {
  /** Path of the bundled job entry (dist/worker.js). */
  workerScript: string;
  signal?: AbortSignal;
  onProgress?: (p: JobProgress) => void;
}

export async function analyzeInWorker(request: AnalyzeRequest, opts: WorkerRunOptions): Promise<AnalysisReport> {
  const result = await runJob({ kind: 'analyze', request }, opts);
  if (result.kind !== 'report') throw new Error('internal: an analyze job without a shard returned a partial');
  return result.report;
}
