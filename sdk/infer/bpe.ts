/** What merging two adjacent tokens gives: the merged token, and its rank (lower merges first). */
export interface PairMerge {
  rank: number;
  merged: number;
}

/** Looks up the merge of a pair of tokens; undefined when the pair does not merge. */
export type PairLookup = (left: number, right: number) => PairMerge | undefined;

/**
 * Byte-pair merging: while some adjacent pair merges, merges the pair of lowest rank, the leftmost
 * one among equal ranks. That is the rule of llama2.c's encoder (highest score first) and of
 * Hugging Face's BPE model (lowest merge rank first), kept in a heap so that a long text costs
 * O(n log n) rather than a rescan per merge.
 */
export function mergePairs(tokens: readonly number[], lookup: PairLookup): number[] {
  const n = tokens.length;
  if (n < 2) return [...tokens];
  const ids = Int32Array.from(tokens);
  const next = new Int32Array(n);
  const prev = new Int32Array(n);
  const alive = new Uint8Array(n).fill(1);
  for (let i = 0; i < n; i++) {
    next[i] = i + 1 < n ? i + 1 : -1;
    prev[i] = i - 1;
  }
  const heap = new CandidateHeap();
  const propose = (left: number): void => {
    const right = next[left];
    if (right < 0) return;
    const merge = lookup(ids[left], ids[right]);
    if (merge !== undefined) heap.push(merge.rank, left, right, ids[left], ids[right], merge.merged);
  };
  for (let i = 0; i + 1 < n; i++) propose(i);
  while (heap.size > 0) {
    const candidate = heap.pop();
    const { left, right } = candidate;
    // A candidate is stale when either token has since merged with a neighbour.
    if (!alive[left] || !alive[right] || next[left] !== right || ids[left] !== candidate.leftId || ids[right] !== candidate.rightId) continue;
    ids[left] = candidate.merged;
    alive[right] = 0;
    next[left] = next[right];
    if (next[right] >= 0) prev[next[right]] = left;
    if (prev[left] >= 0) propose(prev[left]);
    propose(left);
  }
  const out: number[] = [];
  for (let i = 0; i >= 0; i = next[i]) out.push(ids[i]);
  return out;
}

interface Candidate {
  rank: number;
  left: number;
  right: number;
  leftId: number;
  rightId: number;
  merged: number;
}

/** A binary min-heap of merge candidates by (rank, left position). */
class CandidateHeap {
  private readonly items: Candidate[] = [];

  get size(): number {
    return this.items.length;
  }

  push(rank: number, left: number, right: number, leftId: number, rightId: number, merged: number): void {
    const items = this.items;
    items.push({ rank, left, right, leftId, rightId, merged });
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(items[i], items[parent])) break;
      [items[i], items[parent]] = [items[parent], items[i]];
      i = parent;
    }
  }

  pop(): Candidate {
    const items = this.items;
    const top = items[0];
    const last = items.pop()!;
    if (items.length > 0) {
      items[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let smallest = i;
        if (l < items.length && before(items[l], items[smallest])) smallest = l;
        if (r < items.length && before(items[r], items[smallest])) smallest = r;
        if (smallest === i) break;
        [items[i], items[smallest]] = [items[smallest], items[i]];
        i = smallest;
      }
    }
    return top;
  }
}

function before(a: Candidate, b: Candidate): boolean {
  return a.rank < b.rank || (a.rank === b.rank && a.left < b.left);
}
