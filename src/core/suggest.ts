/** Did-you-mean support: how far apart two words are. */

/** Optimal string alignment distance: Levenshtein plus adjacent transpositions ("hots" → "host"). */
export function editDistance(a: string, b: string): number {
  const width = b.length + 1;
  const d = new Array<number>((a.length + 1) * width).fill(0);
  for (let i = 0; i <= a.length; i++) {
    for (let j = 0; j <= b.length; j++) {
      if (i === 0 || j === 0) {
        d[i * width + j] = i + j;
        continue;
      }
      const substitution = a[i - 1] === b[j - 1] ? 0 : 1;
      let distance = Math.min(d[(i - 1) * width + j]! + 1, d[i * width + j - 1]! + 1, d[(i - 1) * width + j - 1]! + substitution);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        distance = Math.min(distance, d[(i - 2) * width + j - 2]! + 1);
      }
      d[i * width + j] = distance;
    }
  }
  return d[a.length * width + b.length]!;
}

/** The candidate closest to `word`, when close enough to be a likely typo (case-insensitive). */
export function closest(word: string, candidates: string[]): string | undefined {
  let best: { candidate: string; distance: number } | undefined;
  for (const candidate of candidates) {
    const distance = editDistance(word.toLowerCase(), candidate.toLowerCase());
    const closeEnough = distance <= Math.max(1, Math.min(2, Math.floor(candidate.length / 3)));
    if (closeEnough && (best === undefined || distance < best.distance)) best = { candidate, distance };
  }
  return best?.candidate;
}
