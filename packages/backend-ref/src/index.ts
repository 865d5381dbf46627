// @blankglm/backend-ref: the reference backend, the oracle every other backend is checked against.
export { ReferenceBackend, createReferenceBackend, type ReferenceBackendOptions } from './backend.js';
export { REFERENCE_OPS, type OpImplementation, type OpContext } from './ops/index.js';
export { erf, erfc } from './math/erf.js';
export { geluTanh, geluTanhDerivative, geluErf, geluErfDerivative, activate, activationDerivative } from './math/gelu.js';
export { roundToBf16, roundArrayToBf16 } from './math/bf16.js';
export { describeTensor, type Storage } from './memory.js';
