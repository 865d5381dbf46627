#!/usr/bin/env node
import { runCli } from './index.js';

const code = await runCli(process.argv.slice(2));
// Let pending stdout writes drain before exiting.
process.exitCode = code;
