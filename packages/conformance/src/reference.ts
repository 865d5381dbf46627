// The oracle: a fresh reference backend per case, so no state carries over between cases.
import { createReferenceBackend } from '@blankglm/backend-ref';
import type { Backend } from '@blankglm/tensor';

export const defaultReference = (): Backend => createReferenceBackend();
