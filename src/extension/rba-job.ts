// Child-process entry for *Replace blocks i→j with linear map*: runs the engine's RBA job (fit →
// surgery → write → verify, the same code as `blocklens rba`) in its own process, so that ONNX
// Runtime's native code never runs in the extension host. Talks over IPC: one `start`, optional
// `cancel`; replies with progress, then a result or an error (never an uncaught exception).
import { runRba, type RbaOptions, type RbaResult } from '../engine/rba/export.js';

export type RbaJobRequest = Omit<RbaOptions, 'signal' | 'onProgress'>;
export type ToRbaJob = { type: 'start'; request: RbaJobRequest } | { type: 'cancel' };
export type FromRbaJob =
  | { type: 'progress'; phase: string }
  | { type: 'result'; result: RbaResult }
  | { type: 'error'; message: string; file?: string; name: string };

if (!process.send) throw new Error('rba-job must run as a child process with an IPC channel');
const controller = new AbortController();
const send = (m: FromRbaJob) => process.send!(m);
process.on('message', (m: ToRbaJob) => {
  if (m.type === 'cancel') controller.abort();
  else if (m.type === 'start') {
    runRba({ ...m.request, signal: controller.signal, onProgress: (phase) => send({ type: 'progress', phase }) }).then(
      (result) => send({ type: 'result', result }),
      (e: Error & { file?: string }) => send({ type: 'error', message: e.message, file: e.file, name: e.name }),
    );
  }
});
// The parent went away: nothing to report to.
process.on('disconnect', () => process.exit(0));
