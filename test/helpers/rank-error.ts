/** Distance from q to the rank interval [#(< x)/n, #(≤ x)/n] of x among sorted values (0 inside it). */
export function rankError(sorted: number[], x: number, q: number): number {
  let lt = 0;
  let le = 0;
  for (const v of sorted) {
    if (v < x) lt++;
    if (v <= x) le++;
  }
  const n = sorted.length;
  return q < lt / n ? lt / n - q : q > le / n ? q - le / n : 0;
}
