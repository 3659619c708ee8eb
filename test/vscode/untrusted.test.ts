// Limited mode: the workspace is untrusted and its .vscode/settings.json names calibration data
// and the CUDA provider. BlockLens must ignore those two (user settings only) and still work.
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { BlockLensApi } from '../../src/extension/extension.js';
import type { AnalyzeOutcome } from '../../src/extension/analysis.js';

describe('BlockLens in an untrusted workspace', () => {
  it('is untrusted, and activates in limited mode', async () => {
    assert.equal(vscode.workspace.isTrusted, false);
    const api = await vscode.extensions.getExtension<BlockLensApi>('blocklens.blocklens')!.activate();
    assert.ok(api.analysis);
  });

  it('takes neither calibration paths nor execution providers from workspace settings', async () => {
    const api = await vscode.extensions.getExtension<BlockLensApi>('blocklens.blocklens')!.activate();
    const file = vscode.Uri.file(path.join(vscode.workspace.workspaceFolders![0]!.uri.fsPath, 'models', 'linear_blocks.onnx'));
    // The workspace's settings file is read (samples = 48 below), but the two restricted
    // settings it names (data/evil.npy, ["cuda"]) are not used.
    const s = api.settings(file);
    assert.equal(s.defaultData, 'ask');
    assert.deepEqual(s.executionProviders, ['cpu']);
    // Settings that cannot point anywhere still apply.
    assert.equal(s.samples, 48);
  });

  it('analyses with explicit synthetic data on the CPU', async () => {
    const file = path.join(vscode.workspace.workspaceFolders![0]!.uri.fsPath, 'models', 'linear_blocks.onnx');
    const o = await vscode.commands.executeCommand<AnalyzeOutcome>('blocklens.analyze', vscode.Uri.file(file), { data: 'synthetic', noPanel: true });
    assert.equal(o?.status, 'done');
    assert.equal(o?.status === 'done' && o.request.device, 'cpu');
    assert.equal(o?.status === 'done' && o.report.calibration.samples, 48);
  });
});
