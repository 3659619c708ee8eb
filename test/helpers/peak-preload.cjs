// Preloaded into a child process (`node -r test/helpers/peak-preload.cjs dist/cli.js …`): at
// exit it writes to $BLOCKLENS_PEAK_FILE, as JSON, the process's peak RSS (VmHWM, all threads)
// and the largest in-memory model buffer handed to ONNX Runtime's InferenceSession.create (a
// model given by path counts 0). The second figure shows that no protobuf with the weights in
// it was assembled: every session of a model with external data is built from a small graph.
'use strict';
const fs = require('node:fs');

const out = process.env.BLOCKLENS_PEAK_FILE;
const seen = { maxModelBuffer: 0, sessions: 0 };
try {
  const ort = require(require.resolve('onnxruntime-node', { paths: [process.cwd(), __dirname] }));
  const create = ort.InferenceSession.create;
  ort.InferenceSession.create = function (model, ...rest) {
    seen.sessions++;
    if (model && typeof model === 'object' && typeof model.byteLength === 'number') seen.maxModelBuffer = Math.max(seen.maxModelBuffer, model.byteLength);
    return create.call(this, model, ...rest);
  };
} catch {
  // onnxruntime-node not found from here: only the peak RSS is recorded.
}

process.on('exit', () => {
  if (!out) return;
  const status = fs.readFileSync('/proc/self/status', 'utf8');
  const kb = Number(/^VmHWM:\s+(\d+) kB/m.exec(status)?.[1] ?? NaN);
  fs.writeFileSync(out, JSON.stringify({ peakRssBytes: kb * 1024, ...seen }));
});
