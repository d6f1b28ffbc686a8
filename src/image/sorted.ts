// One search for the two address indexes (symbols, source lines): both ask
// which entry is the last at or below an address.

/** The index of the last item whose key is <= `key` in `items` sorted by key, or -1 when there is none. */
export function lastAtOrBelow<T>(items: readonly T[], key: bigint, keyOf: (item: T) => bigint): number {
  let lo = 0;
  let hi = items.length - 1;
  let best = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (keyOf(items[mid]!) <= key) {
      best = mid;
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  return best;
}
