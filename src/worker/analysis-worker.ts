// Worker-thread entry: runs one analysis off the caller's thread, streams progress, honours
// cancel. Errors travel back as messages (never an uncaught exception in the host).
import { parentPort } from 'node:worker_threads';
import { analyzeModel } from '../engine/analysis/analyze.js';
import type { FromWorkerMessage, ToWorkerMessage } from '../protocol/worker.js';

const port = parentPort;
if (!port) throw new Error('analysis-worker must run in a worker thread');
const controller = new AbortController();
const send = (m: FromWorkerMessage) => port.postMessage(m);

port.on('message', (msg: ToWorkerMessage) => {
  switch (msg.type) {
    case 'cancel':
      controller.abort();
      return;
    case 'start':
      analyzeModel({ ...msg.request, signal: controller.signal, onProgress: (p) => send({ type: 'progress', ...p }) }).then(
        (report) => send({ type: 'result', report }),
        (e: Error & { file?: string }) => send({ type: 'error', file: e.file, message: e.message, name: e.name, stack: e.stack }),
      );
      return;
    default: {
      const never: never = msg;
      throw new Error(`unknown message ${JSON.stringify(never)}`);
    }
  }
});
