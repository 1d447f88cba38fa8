// Maps kept at a cap by dropping their oldest entry: a Map iterates in insertion order, so its first key
// is the oldest.

/** set key as the youngest entry of m (a key already there moves to the young end); at `cap` entries the
 *  oldest is dropped to make room. Returns whether one was dropped. */
export function setYoungest<K, V>(m: Map<K, V>, key: K, value: V, cap: number): boolean {
  let dropped = false;
  if (m.has(key)) m.delete(key);
  else if (m.size >= cap) {
    m.delete(m.keys().next().value as K);
    dropped = true;
  }
  m.set(key, value);
  return dropped;
}
