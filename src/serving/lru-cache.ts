// A bounded cache of values that are expensive to load and hold memory (adapters on the GPU or
// in tfjs memory). Least recently used entries are evicted past `capacity`, but an entry is only
// disposed once no request holds it: eviction marks it, the last release frees it. Concurrent
// loads of one key share a single load.
//
//   const cache = new RefCountedLru<string, Adapter>(8, (a) => a.dispose());
//   const lease = await cache.acquire(key, () => loadAdapter(key));
//   try { use(lease.value) } finally { lease.release() }

export interface Lease<V> {
  readonly value: V;
  /** give the value back; call exactly once */
  release(): void;
}

interface Entry<V> {
  value: V;
  users: number;
  evicted: boolean;
}

export class RefCountedLru<K, V> {
  /** Map iteration order is insertion order: the first key is the least recently used. */
  private readonly entries = new Map<K, Entry<V>>();
  private readonly loading = new Map<K, Promise<Entry<V>>>();

  constructor(
    readonly capacity: number,
    private readonly dispose: (value: V, key: K) => void,
  ) {
    if (!Number.isInteger(capacity) || capacity < 1)
      throw new RangeError(`cache capacity must be an integer >= 1, got ${capacity}`);
  }

  get size(): number {
    return this.entries.size;
  }

  has(key: K): boolean {
    return this.entries.has(key);
  }

  /** Keys from least to most recently used. */
  keys(): K[] {
    return [...this.entries.keys()];
  }

  async acquire(key: K, load: () => Promise<V>): Promise<Lease<V>> {
    let entry = this.entries.get(key);
    if (entry) {
      this.entries.delete(key);
      this.entries.set(key, entry);
    } else {
      let pending = this.loading.get(key);
      if (!pending) {
        pending = load().then(
          (value) => {
            const loaded: Entry<V> = { value, users: 0, evicted: false };
            this.entries.set(key, loaded);
            this.loading.delete(key);
            return loaded;
          },
          (err: unknown) => {
            this.loading.delete(key);
            throw err;
          },
        );
        this.loading.set(key, pending);
      }
      entry = await pending;
    }
    entry.users += 1;
    // Evict only after taking our reference, so the entry just acquired is never the victim.
    this.evictOverflow();
    const held = entry;
    let released = false;
    return {
      value: held.value,
      release: () => {
        if (released) return;
        released = true;
        held.users -= 1;
        if (held.users === 0 && held.evicted) this.dispose(held.value, key);
      },
    };
  }

  private evictOverflow(): void {
    for (const [key, entry] of this.entries) {
      if (this.entries.size <= this.capacity) break;
      this.entries.delete(key);
      entry.evicted = true;
      if (entry.users === 0) this.dispose(entry.value, key);
    }
  }

  /** Drop every entry; values still held are disposed when released. */
  clear(): void {
    for (const [key, entry] of this.entries) {
      entry.evicted = true;
      if (entry.users === 0) this.dispose(entry.value, key);
    }
    this.entries.clear();
  }
}
