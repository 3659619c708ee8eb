// Worker-thread entry for the .onnx editor's summary: decodes the model off the host's thread
// and posts one reply. Errors travel back as a reply, never as an uncaught exception.
import { parentPort, workerData } from 'node:worker_threads';
import { summarizeModel, type SummaryReply } from './model-summary.js';

const port = parentPort;
if (!port) throw new Error('summary-worker must run in a worker thread');
const { model } = workerData as { model: string };
summarizeModel(model).then(
  (summary) => port.postMessage({ ok: true, summary } satisfies SummaryReply),
  (e: Error & { file?: string }) => port.postMessage({ ok: false, message: e.message, file: e.file } satisfies SummaryReply),
);
