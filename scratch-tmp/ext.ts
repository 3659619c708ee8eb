import { loadModelFile, checkExternalData, externalDataRef, allTensors } from '../src/engine/onnx/model-file';
async function main() {
  for (const f of ['test/fixtures/models/vit_external/vit_external.onnx', 'test/fixtures/broken/missing_external/model.onnx', 'test/fixtures/broken/unsafe_external/model.onnx']) {
    const l = await loadModelFile(f);
    const refs = [...allTensors(l.model)].map(externalDataRef).filter(Boolean);
    console.log(f, l.sizeBytes, refs.length, refs.slice(0, 2));
    try { console.log(await checkExternalData(l)); } catch (e) { console.log(String(e)); }
  }
}
main();
