// Every command of the `blankglm` CLI, in the order `blankglm --help` lists them.
// A command is a typed value (see ../cli.ts); add new ones here.
import type { Command } from '../cli.js';
import { prepareCommand } from './prepare.js';
import { demoCommand } from './demo.js';
import { corruptCommand } from './corrupt.js';
import { convertCommand } from './convert.js';
import { forwardCommand } from './forward.js';
import { tokenizeCommand } from './tokenize.js';
import { fillCommand } from './fill.js';
import { evalCommand } from './eval.js';
import { doctorCommand } from './doctor.js';
import { exportOnnxCommand } from './export-onnx.js';
import { pretrainCommand } from './pretrain.js';
import { finetuneCommand } from './finetune.js';
import { evaluateCommand } from './evaluate.js';

export const commands: Command[] = [
  // the main job, then training and using models
  demoCommand,
  pretrainCommand,
  fillCommand,
  evalCommand,
  finetuneCommand,
  evaluateCommand,
  // data
  tokenizeCommand,
  corruptCommand,
  prepareCommand,
  // checkpoints and engines
  convertCommand,
  forwardCommand,
  exportOnnxCommand,
  doctorCommand,
];
