// The CLI's one-line error contract, checked strictly: exit 1, exactly one line
// `blocklens: error: <file>: <message>` where <file> is the given path (or its absolute form), and
// every expected phrase appears in <message> once the file's own name is taken out of it, so a file
// named truncated.onnx cannot satisfy "truncated" and a file in the current folder cannot pass for
// any other.
import assert from 'node:assert/strict';
import * as path from 'node:path';

export interface CliRun {
  code: number | null;
  signal?: string | null;
  stderr: string;
  ms?: number;
}

export function assertCliError(r: CliRun, cwd: string, file: string, says: string[], never: string[] = []): void {
  assert.equal(r.signal ?? null, null, `killed by ${r.signal} after ${r.ms} ms (a hang?)`);
  assert.equal(r.code, 1, `exit ${r.code}: ${r.stderr}`);
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `one line: ${r.stderr}`);
  const line = lines[0]!;
  const prefix = [`blocklens: error: ${file}: `, `blocklens: error: ${path.resolve(cwd, file)}: `].find((p) => line.startsWith(p));
  assert.ok(prefix, `names ${file} first: ${line}`);
  const message = line.slice(prefix.length).split(path.resolve(cwd, file)).join('').split(file).join('').split(path.basename(file)).join('');
  for (const s of says) assert.ok(message.toLowerCase().includes(s.toLowerCase()), `'${s}' in the message (file name aside): ${line}`);
  for (const s of never) assert.ok(!line.includes(s), `'${s}' must not appear: ${line}`);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
}
