// `blankglm tokenize`: text → token ids with GLM's tokenizers (BERT WordPiece or GPT-2 BPE).
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { loadGpt2Tokenizer, loadTokenizer, type GlmTokenizer } from '@blankglm/tokenizer';
import { CliError, type Command, type CommandContext } from '../cli.js';

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}

function pickTokenizer(ctx: CommandContext): GlmTokenizer {
  const o = ctx.options;
  const path = (v: unknown): string | undefined => (typeof v === 'string' ? resolve(ctx.io.cwd, v) : undefined);
  const vocab = path(o.vocab);
  const merges = path(o.merges);
  const tokenizerJson = path(o.tokenizer);
  if (o.gpt2) {
    if (vocab || merges || tokenizerJson) throw new CliError('--gpt2 selects the embedded GPT-2 files; do not combine it with --vocab/--merges/--tokenizer');
    return loadGpt2Tokenizer();
  }
  if (vocab && !merges && /\.json$/i.test(vocab)) {
    throw new CliError(`--vocab ${String(o.vocab)} looks like a BPE vocab.json: give its merges with --merges (a WordPiece vocabulary is a vocab.txt)`);
  }
  try {
    return loadTokenizer({ vocab, merges, tokenizerJson });
  } catch (e) {
    throw new CliError((e as Error).message);
  }
}

export const tokenizeCommand: Command = {
  name: 'tokenize',
  summary: 'Turn text into token ids (BERT WordPiece or GPT-2 BPE, exactly as Hugging Face tokenizers)',
  description: `
Reads the text from the argument, or from stdin when there is none. The tokenizer is the embedded
BERT uncased vocabulary unless --vocab (WordPiece vocab.txt), --vocab + --merges (GPT-2 vocab.json +
merges.txt), --tokenizer (Hugging Face tokenizer.json) or --gpt2 (embedded GPT-2 files) says otherwise.
No [CLS]/[SEP] are added unless --special; literal "[MASK]"-style strings stay text unless --parse-special.

Examples:
  blankglm tokenize "The capital of France is Paris."
  blankglm tokenize --gpt2 --tokens "Hello world"
  cat book.txt | blankglm tokenize --lines --json > ids.jsonl`,
  positionals: [{ name: 'text', description: 'Text to tokenize (default: read stdin)' }],
  options: {
    vocab: { type: 'string', placeholder: 'file', description: 'WordPiece vocab.txt, or BPE vocab.json together with --merges' },
    merges: { type: 'string', placeholder: 'file', description: 'BPE merges.txt (with --vocab vocab.json)' },
    tokenizer: { type: 'string', placeholder: 'file', description: 'Hugging Face tokenizer.json' },
    gpt2: { type: 'boolean', description: 'Use the embedded GPT-2 BPE files' },
    lines: { type: 'boolean', description: 'One text per input line, taken as it is (no trimming)' },
    json: { type: 'boolean', description: 'Print one JSON array per text instead of space-separated ids' },
    tokens: { type: 'boolean', description: 'Print token strings instead of ids' },
    special: { type: 'boolean', description: 'Add the family\'s [CLS] … [SEP] / [CLS] … <|endoftext|>' },
    'parse-special': { type: 'boolean', description: 'Turn literal command-token strings ([MASK], [gMASK], …) into their ids' },
  },
  async run(ctx) {
    const tokenizer = pickTokenizer(ctx);
    const o = ctx.options;
    const input = ctx.positionals[0] ?? (await readAll(ctx.io.stdin));
    let texts: string[];
    if (o.lines) {
      texts = input.split('\n');
      // A final newline ends the last line; it does not start an empty one.
      if (texts.length > 1 && texts[texts.length - 1] === '') texts.pop();
    } else {
      texts = [input];
    }
    const opts = { addSpecialTokens: Boolean(o.special), parseSpecialTokens: Boolean(o['parse-special']) };
    let out = '';
    for (const text of texts) {
      const values: Array<number | string> = o.tokens ? tokenizer.encode(text, opts).tokens : tokenizer.encodeIds(text, opts);
      out += (o.json ? JSON.stringify(values) : values.join(' ')) + '\n';
      if (out.length > 1 << 16) {
        ctx.io.stdout.write(out);
        out = '';
      }
    }
    ctx.io.stdout.write(out);
    return 0;
  },
};
