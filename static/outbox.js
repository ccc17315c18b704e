// The outbox: clinical writes (notes, amendments, requests, outcomes) kept in Web Storage with their
// op_id until the server acknowledges them, so that neither a dropped network nor a reload loses
// what a clinician wrote. No DOM: the storage is handed in (localStorage in the page, a Map-backed
// object in Node's tests), and every change is written through at once.
//
// An entry: { op_id, event, payload, queued_at, attempts }. The list is read from the storage on
// every call, so two tabs of one user see the same outbox (the server's op_id makes a write sent
// by both of them count once).

export class Outbox {
  constructor(storage, key) {
    this.storage = storage;
    this.key = key;
    // Used when the storage refuses (private mode, quota): the writes still go out, but would not
    // survive a reload.
    this.memory = null;
  }

  pending() {
    return this.#read();
  }

  get(opId) {
    return this.#read().find((e) => e.op_id === opId) ?? null;
  }

  forConsult(consultId) {
    return this.#read().filter((e) => e.payload?.consult_id === consultId);
  }

  // Adds the entry, or replaces the one with the same op_id in place (order is send order).
  add(entry) {
    const entries = this.#read();
    const at = entries.findIndex((e) => e.op_id === entry.op_id);
    if (at >= 0) entries[at] = entry;
    else entries.push(entry);
    this.#write(entries);
    return entry;
  }

  remove(opId) {
    const entries = this.#read();
    const kept = entries.filter((e) => e.op_id !== opId);
    if (kept.length !== entries.length) this.#write(kept);
    return kept.length !== entries.length;
  }

  // One more try at sending it: counted, so a write that keeps failing can be told apart.
  attempted(opId) {
    const entry = this.get(opId);
    if (!entry) return null;
    entry.attempts = (entry.attempts || 0) + 1;
    entry.last_attempt_at = new Date().toISOString();
    return this.add(entry);
  }

  // Moves every entry to another key (the outbox is per user; see Connection).
  moveTo(key) {
    if (key === this.key) return;
    const entries = this.#read();
    try {
      this.storage.removeItem(this.key);
    } catch {
      /* nothing kept there */
    }
    this.key = key;
    for (const entry of entries) this.add(entry);
  }

  #read() {
    if (this.memory) return this.memory.map((e) => structuredClone(e));
    try {
      const text = this.storage.getItem(this.key);
      const entries = text ? JSON.parse(text) : [];
      return Array.isArray(entries) ? entries : [];
    } catch {
      return [];
    }
  }

  #write(entries) {
    if (!this.memory) {
      try {
        if (entries.length) this.storage.setItem(this.key, JSON.stringify(entries));
        else this.storage.removeItem(this.key);
        return;
      } catch {
        this.memory = [];
      }
    }
    this.memory = entries.map((e) => structuredClone(e));
  }
}

export function outboxKey(userId) {
  return `telerounds.outbox.${userId}`;
}
