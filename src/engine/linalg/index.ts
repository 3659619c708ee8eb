export { abtSync, atbSync, jsMatmul, type MatmulBackend } from './matmul';
export { createOrtMatmul, matmulModel, type OrtMatmulOptions } from './ort-matmul';
