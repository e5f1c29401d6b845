/**
 * QIDO-RS rows as UTF-8 JSON, remembered by what they were made from: viewers and worklists ask for the same
 * studies again and again, and turning a row into DICOM JSON (parse the stored attributes, apply the patient
 * index, serialise, encode) costs more than the query that found it. An entry is used only when its key, which
 * holds every input of the rendering, is equal: a changed row (an instance added, an HL7 update of the patient,
 * other requested fields or base URL) is rendered afresh. Bounded by entries and bytes, least recently used out.
 */
export class RenderedRows {
  private readonly rows = new Map<string, { key: string; bytes: Buffer }>();
  private bytes = 0;

  constructor(
    private readonly maxEntries = 5000,
    private readonly maxBytes = 8 * 1024 * 1024,
  ) {}

  /** The bytes for row `id` rendered from `key`, rendering (and remembering) them when not known. */
  get(id: string, key: string, render: () => string): Buffer {
    const known = this.rows.get(id);
    if (known) {
      this.rows.delete(id);
      if (known.key === key) {
        this.rows.set(id, known);
        return known.bytes;
      }
      this.bytes -= known.bytes.length;
    }
    const text = render();
    // A buffer of its own: a small Buffer.from() is a slice of a shared 8 KiB pool, which it would keep alive.
    const bytes = Buffer.allocUnsafeSlow(Buffer.byteLength(text, 'utf8'));
    bytes.write(text, 'utf8');
    this.rows.set(id, { key, bytes });
    this.bytes += bytes.length;
    while (this.rows.size > this.maxEntries || this.bytes > this.maxBytes) {
      const [oldest, entry] = this.rows.entries().next().value!;
      this.rows.delete(oldest);
      this.bytes -= entry.bytes.length;
    }
    return bytes;
  }

  get size(): number {
    return this.rows.size;
  }
}
