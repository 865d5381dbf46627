// Registers the generation-style task kinds (imported once by the package index for its effect).
import { registerTaskKind } from '../tasks/registry.js';
import { infillTaskKind } from '../infill/kind.js';
import { seq2seqTaskKind } from '../seq2seq/kind.js';
import { lambadaTaskKind, multichoiceTaskKind, wikitextTaskKind } from './kinds.js';

registerTaskKind(seq2seqTaskKind);
registerTaskKind(infillTaskKind);
registerTaskKind(lambadaTaskKind);
registerTaskKind(wikitextTaskKind);
registerTaskKind(multichoiceTaskKind);
