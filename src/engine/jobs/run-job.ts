// Runs a job in a child process (child_process.fork of the bundled job entry, dist/worker.js),
// talking the worker protocol over IPC: start/cancel → progress/result/error. A native crash in
// ONNX Runtime then ends the child, not the caller (the VS Code extension host), and native
// memory the run leaked is returned when the child exits. One child per job, ended after it.
import { fork, type ChildProcess } from 'node:child_process';
import type { JobProgress, JobRequest, JobResult } from '../../protocol/jobs.js';
import type { FromWorkerMessage, ToWorkerMessage } from '../../protocol/worker.js';

export interface JobRunOptions {
  /** Path of the bundled job entry (dist/worker.js). */
  workerScript: string;
  signal?: AbortSignal;
  onProgress?: (p: JobProgress) => void;
  /** Milliseconds a cancelled child gets to exit before it is killed. Default 1000. */
  cancelGraceMs?: number;
  /** Node binary for the child (default: process.execPath, with ELECTRON_RUN_AS_NODE for Electron hosts). */
  execPath?: string;
}

/** An error reported by the job (bad input, cancellation) or by the death of its process. */
export class JobError extends Error {
  constructor(message: string, name: string, readonly file?: string) {
    super(message);
    this.name = name;
  }
}

export function runJob(request: JobRequest, opts: JobRunOptions): Promise<JobResult> {
  return new Promise((resolve, reject) => {
    if (opts.signal?.aborted) {
      reject(new JobError('cancelled', 'AbortError'));
      return;
    }
    let child: ChildProcess;
    try {
      child = fork(opts.workerScript, [], {
        execPath: opts.execPath,
        env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' },
        stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
        serialization: 'json',
      });
    } catch (e) {
      reject(new JobError(`cannot start the job process: ${(e as Error).message}`, 'Error'));
      return;
    }
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-4000);
    });
    let settled = false;
    let killTimer: NodeJS.Timeout | undefined;
    const finish = (fn: () => void) => {
      if (settled) return;
      settled = true;
      opts.signal?.removeEventListener('abort', onAbort);
      if (killTimer) clearTimeout(killTimer);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      fn();
    };
    const post = (m: ToWorkerMessage) => {
      if (child.connected) child.send(m);
    };
    const onAbort = () => {
      post({ type: 'cancel' });
      // The job checks its signal between batches and steps; a native call may not return soon.
      killTimer = setTimeout(() => finish(() => reject(new JobError('cancelled', 'AbortError'))), opts.cancelGraceMs ?? 1000);
    };
    child.on('message', (m: FromWorkerMessage) => {
      switch (m.type) {
        case 'progress':
          if (!settled) opts.onProgress?.(m);
          return;
        case 'result':
          finish(() => resolve(m.result));
          return;
        case 'error':
          finish(() => reject(new JobError(m.message, m.name, m.file)));
          return;
      }
    });
    child.on('error', (e) => finish(() => reject(new JobError(`job process failed: ${e.message}`, 'Error'))));
    child.on('exit', (code, signal) => {
      const tail = stderr.trim().split('\n').slice(-3).join(' | ');
      const how = signal ? `was killed by signal ${signal}` : `exited with code ${code}`;
      finish(() => reject(new JobError(`the analysis process ${how} before it finished${tail ? ` (${tail})` : ''}`, 'JobProcessError')));
    });
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    post({ type: 'start', request });
  });
}
