// The order in which the clients of one bench cell run, round by round.
//
// Why it matters: a client measured right after another runs slower or faster because of it. With
// two instances of the same warmpool client in one HTTP/2 cell, the one that ran right after undici
// was 4-12 % slower than its twin (four runs of 16-24 rounds; neither a full GC before every round
// nor a 500 ms warm-up removed it). A fixed cyclic order (round r starts at client r and
// goes around) gives every client the same neighbour in front of it every round, so that effect lands
// on one client only. Williams' balanced Latin square instead puts every client right after every
// other client equally often: over n rounds for an even number n of clients, over 2n for an odd n.

/** The clients' indexes in the order they run in round `round` (0-based), for `n` clients. */
export function roundOrder(n: number, round: number): number[] {
  // First row: 0, 1, n-1, 2, n-2, 3, ...; row r adds r to each (mod n).
  const first: number[] = [];
  for (let i = 0, lo = 1, hi = n - 1; i < n; i++) {
    if (i === 0) first.push(0);
    else if (i % 2 === 1) first.push(lo++);
    else first.push(hi--);
  }
  const r = round % (n % 2 === 0 ? n : 2 * n);
  const row = first.map((c) => (c + r) % n);
  // For an odd n the square alone leaves some pairs twice and some never: its mirror image (each
  // row reversed) in the next n rounds balances them.
  return r < n ? row : row.reverse();
}
