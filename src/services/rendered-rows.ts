/**
 * QIDO-RS rows as JSON text, remembered by what they were made from: viewers and worklists ask for the same
 * studies again and again, and turning a row into DICOM JSON (parse the stored attributes, apply the patient
 * index, serialise) costs more than the query that found it. An entry is used only when its key, made of every
 * input of the rendering, is equal: a changed row (an instance added, an HL7 update of the patient, other
 * requested fields or base URL) is rendered afresh.
 *
 * Bounded by entries and characters. Once full, only every `admitEvery`-th row rendered anew goes in (in place
 * of the least recently used): a query that sweeps more studies than fit, again and again (a worklist by
 * modality over years), would otherwise push out every row before it is asked for again, so that nothing is
 * ever found and every row is kept only to become garbage. Kept as strings, on the JavaScript heap: as Buffers,
 * evicted rows were malloc'd memory that V8 let pile up by tens of MiB before it collected them.
 */
export class RenderedRows {
  private readonly rows = new Map<string, { key: string; text: string }>();
  private chars = 0;
  private refused = 0;

  constructor(
    private readonly maxEntries = 20_000,
    private readonly maxChars = 16 * 1024 * 1024,
    private readonly admitEvery = 8,
  ) {}

  /** The text of row `id` if it is known as rendered from `key` (then it counts as used), else undefined. */
  peek(id: string, key: string): string | undefined {
    const known = this.rows.get(id);
    if (!known || known.key !== key) return undefined;
    this.rows.delete(id);
    this.rows.set(id, known);
    return known.text;
  }

  /** The text of row `id` rendered from `key`, rendering (and maybe remembering) it when not known. */
  get(id: string, key: string, render: () => string): string {
    const known = this.rows.get(id);
    if (known) {
      this.rows.delete(id);
      if (known.key === key) {
        this.rows.set(id, known);
        return known.text;
      }
      this.chars -= known.text.length;
    }
    const text = render();
    if (text.length > this.maxChars) return text;
    const full = this.rows.size >= this.maxEntries || this.chars + text.length > this.maxChars;
    if (full && ++this.refused % this.admitEvery !== 0) return text;
    this.rows.set(id, { key, text });
    this.chars += text.length;
    while (this.rows.size > this.maxEntries || this.chars > this.maxChars) {
      const [oldest, entry] = this.rows.entries().next().value!;
      this.rows.delete(oldest);
      this.chars -= entry.text.length;
    }
    return text;
  }

  get size(): number {
    return this.rows.size;
  }
}
