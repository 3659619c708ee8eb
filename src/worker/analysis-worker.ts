// Job process entry (bundled to dist/worker.js, started with child_process.fork by runJob):
// runs one job, streams progress, honours cancel. Errors travel back as messages; the process
// exits when the parent disconnects.
import { runJobHere } from '../engine/jobs/run.js';
import type { FromWorkerMessage, ToWorkerMessage } from '../protocol/worker.js';

if (!process.send) throw new Error('the job process must be started with child_process.fork (IPC channel missing)');
const controller = new AbortController();
const send = (m: FromWorkerMessage) => {
  if (process.connected) process.send!(m);
};
let started = false;

process.on('message', (msg: ToWorkerMessage) => {
  switch (msg.type) {
    case 'cancel':
      controller.abort();
      return;
    case 'start':
      if (started) return;
      started = true;
      runJobHere(msg.request, { signal: controller.signal, onProgress: (p) => send({ type: 'progress', ...p }) }).then(
        (result) => send({ type: 'result', result }),
        (e: Error & { file?: string }) => send({ type: 'error', file: e.file, message: e.message ?? String(e), name: e.name ?? 'Error', stack: e.stack }),
      );
      return;
    default: {
      const never: never = msg;
      throw new Error(`unknown message ${JSON.stringify(never)}`);
    }
  }
});
// The parent went away (closed, crashed): nothing is waiting for the result.
process.on('disconnect', () => process.exit(0));
