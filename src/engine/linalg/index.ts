export { abtSync, atbSync, jsMatmul, type MatmulBackend } from './matmul.js';
export { createOrtMatmul, matmulModel, type OrtMatmulOptions } from './ort-matmul.js';
