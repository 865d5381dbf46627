// Every built-in SuperGLUE task file on the real data: each split file read in full, and model
// inputs built for every example (evaluation rows and training rows) with the BERT tokenizer.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { getPreset } from '@blankglm/model-spec';
import { loadBertTokenizer } from '@blankglm/tokenizer';
import { PreparedCloze, clozeTrainingExamples, loadClozeExamples, loadTask, type ClozeTask } from '../src/index.js';
import { hasSharedData, sharedData } from '../../../test-support/shared-data.js';

const TASKS: Record<string, string> = { boolq: 'BoolQ', cb: 'CB', copa: 'COPA', multirc: 'MultiRC', record: 'ReCoRD', rte: 'RTE', wic: 'WiC', wsc: 'WSC' };

describe.skipIf(!hasSharedData('superglue'))('SuperGLUE task files on the real data', () => {
  const tokenizer = loadBertTokenizer();
  const config = getPreset('glm-large');
  for (const [name, folder] of Object.entries(TASKS)) {
    const dir = sharedData(join('superglue', folder));
    it.skipIf(!existsSync(dir))(`${folder}: every split loads and every example builds`, () => {
      const task = loadTask(name) as ClozeTask;
      const prepared = new PreparedCloze(task, { tokenizer, config, maxLength: task.hyperparameters.maxLength });
      const files = readdirSync(dir).filter((f) => f.endsWith('.jsonl'));
      expect(files.length).toBeGreaterThanOrEqual(2);
      for (const f of files) {
        const examples = loadClozeExamples(task, join(dir, f));
        expect(examples.length).toBeGreaterThan(0);
        for (const ex of examples) {
          const item = prepared.item(ex);
          for (const row of item.rows) {
            expect(row.ids.length).toBeLessThanOrEqual(task.hyperparameters.maxLength);
            expect(row.ids[row.positions[row.sep]!]).toBe(tokenizer.special.mask);
          }
        }
        const training = clozeTrainingExamples(task, examples);
        const batch = prepared.buildBatch(training.slice(0, 64));
        for (const it of batch.items) expect(it.gold).toBeGreaterThanOrEqual(0);
      }
    });
  }
});
