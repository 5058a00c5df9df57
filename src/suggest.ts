/**
 * "Did you mean" for a mistyped name (a record field, a command): the
 * closest candidate by edit distance, if it is close enough to be the
 * intended one rather than a guess.
 */

/**
 * Optimal string alignment distance: insertions, deletions, substitutions and
 * swaps of two neighbours each cost 1, so "aply" is 1 from "apply" and
 * "tenatnId" 1 from "tenantId" (a swap is the commonest typo).
 */
export function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[][] = Array.from({ length: rows }, (_, i) => Array.from({ length: cols }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, d[i - 2]![j - 2]! + 1);
      d[i]![j] = best;
    }
  }
  return d[a.length]![b.length]!;
}

/**
 * The candidate closest to `word`, ignoring case (`tenantname` means
 * `tenantName`), when within a third of the word's length (at least 1, at
 * most 3): further than that a suggestion is noise. Ties go to the earlier
 * candidate, so callers list the likelier ones first.
 */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  const w = word.toLowerCase();
  const limit = Math.min(3, Math.max(1, Math.floor(w.length / 3)));
  let best: { candidate: string; distance: number } | undefined;
  for (const candidate of candidates) {
    if (candidate === word) continue;
    const distance = editDistance(w, candidate.toLowerCase());
    if (distance <= limit && (best === undefined || distance < best.distance)) best = { candidate, distance };
  }
  return best?.candidate;
}

/** `: did you mean "x"?` or nothing, to append to a message about `word`. */
export function didYouMean(word: string, candidates: readonly string[]): string {
  const hit = closest(word, candidates);
  return hit === undefined ? "" : `: did you mean "${hit}"?`;
}
