import { distance } from "fastest-levenshtein";

// Edit-distance work left for suggestions in the current check (character comparisons, roughly):
// a file with thousands of typos still checks in bounded time, the first errors keep their hints.
let budget = Infinity;

/** Runs `fn` with at most `work` edit-distance work spent on suggestions. */
export function withSuggestionBudget<T>(work: number, fn: () => T): T {
  const saved = budget;
  budget = work;
  try {
    return fn();
  } finally {
    budget = saved;
  }
}

/** The candidate closest to `word` by edit distance, if close enough to be a plausible typo. */
export function closestName(word: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    budget -= Math.max(1, word.length * c.length);
    if (budget < 0) return undefined;
    const d = distance(word, c);
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return bestDistance <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

/** ` (did you mean "x"?)`, or "" when nothing is close. */
export function didYouMean(word: string, candidates: Iterable<string>): string {
  const best = closestName(word, candidates);
  return best === undefined ? "" : ` (did you mean "${best}"?)`;
}
