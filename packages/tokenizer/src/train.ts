export interface WordPieceTrainerOptions { vocabSize: number }
export interface TrainedWordPiece { vocab: string[] }
export function trainWordPiece(_texts: Iterable<string>, _opts: WordPieceTrainerOptions): TrainedWordPiece {
  throw new Error('not yet');
}
