import { CustosError } from '../../domain/errors.js';

export interface MediaType {
  /** Lower-cased `type/subtype`; '' for an empty header (the caller decides whether that is allowed). */
  type: string;
  /** Parameter names lower-cased; quoted values unquoted with their backslash escapes resolved. */
  params: Record<string, string>;
}

export interface AcceptEntry extends MediaType {
  /** RFC 9110 §12.4.2 weight, 0..1; 1 when absent. Not repeated in `params`. */
  q: number;
}

const badContentType = (header: string, why: string) =>
  new CustosError({
    code: 'http.bad-content-type',
    message: `'${header.slice(0, 120)}' is not a valid media type: ${why}`,
    httpStatus: 400,
  });

// RFC 9110 §5.6.2 tchar.
const TCHAR = /[!#$%&'*+.^_`|~0-9A-Za-z-]/;
const isTchar = (ch: string | undefined): boolean => ch !== undefined && TCHAR.test(ch);
const isWs = (ch: string | undefined): boolean => ch === ' ' || ch === '\t';

/**
 * A small cursor parser over one header value, following RFC 9110 §5.6 (tokens, quoted-strings, OWS). Accept
 * and Content-Type share it so that `;` and `,` inside quoted strings never split anything.
 */
class Cursor {
  pos = 0;
  constructor(
    readonly s: string,
    private readonly fail: (why: string) => CustosError,
  ) {}

  get done(): boolean {
    return this.pos >= this.s.length;
  }
  peek(): string | undefined {
    return this.s[this.pos];
  }
  skipWs(): void {
    while (isWs(this.s[this.pos])) this.pos++;
  }
  token(what: string): string {
    const start = this.pos;
    while (isTchar(this.s[this.pos])) this.pos++;
    if (this.pos === start) throw this.fail(`expected ${what} at offset ${start}`);
    return this.s.slice(start, this.pos);
  }
  /** RFC 9110 §5.6.4 quoted-string; the cursor sits on the opening quote. */
  quoted(): string {
    const start = this.pos++;
    let out = '';
    while (this.pos < this.s.length) {
      const ch = this.s[this.pos++]!;
      if (ch === '"') return out;
      if (ch === '\\') {
        if (this.pos >= this.s.length) break;
        out += this.s[this.pos++];
      } else out += ch;
    }
    throw this.fail(`unterminated quoted string at offset ${start}`);
  }

  /**
   * An unquoted parameter value. RFC 9110 allows only a token, but clients send `type=application/dicom` and
   * boundaries with `/`, `:`, `=` or `?` unquoted; accepting any run up to the next separator is unambiguous.
   */
  bareValue(stop: string | undefined): string {
    const start = this.pos;
    for (;;) {
      const ch = this.s[this.pos];
      if (ch === undefined || ch === ';' || ch === stop || ch === '"' || isWs(ch)) break;
      if (ch < ' ' || ch === '\x7f') throw this.fail(`control character at offset ${this.pos}`);
      this.pos++;
    }
    return this.s.slice(start, this.pos);
  }

  /** `type/subtype` (lower-cased). */
  mediaRange(allowBareStar: boolean): string {
    const type = this.token('a media type');
    this.skipWs();
    // Some clients (Java's HttpURLConnection default Accept) send a bare `*`; it can only mean `*/*`.
    if (allowBareStar && type === '*' && this.peek() !== '/') return '*/*';
    if (this.peek() !== '/') throw this.fail(`expected '/' after '${type}'`);
    this.pos++;
    this.skipWs();
    const subtype = this.token('a media subtype');
    return `${type}/${subtype}`.toLowerCase();
  }

  /**
   * `*( OWS ";" OWS [ parameter ] )` up to the end or a top-level `stop` character (`,` in Accept). A parameter
   * without `=` or with an empty value is kept with the value ''. The first occurrence of a name wins.
   */
  parameters(stop: string | undefined, onParam: (name: string, value: string) => void): void {
    for (;;) {
      this.skipWs();
      if (this.done || this.peek() === stop) return;
      if (this.peek() !== ';') throw this.fail(`unexpected '${this.peek()}' at offset ${this.pos}`);
      this.pos++;
      this.skipWs();
      if (this.done || this.peek() === ';' || this.peek() === stop) continue;
      const name = this.token('a parameter name').toLowerCase();
      this.skipWs();
      let value = '';
      if (this.peek() === '=') {
        this.pos++;
        this.skipWs();
        if (this.peek() === '"') value = this.quoted();
        else value = this.bareValue(stop);
      }
      onParam(name, value);
    }
  }
}

/**
 * RFC 9110 §8.3.1 Content-Type: `type/subtype *( OWS ";" OWS parameter )`. An empty (or all-blank) header
 * yields `{ type: '' }` so that handlers can answer 415 with their own wording; anything else that is not a
 * media type, a parameter given twice among it, throws `http.bad-content-type` (400).
 */
export function parseMediaType(header: string): MediaType {
  const c = new Cursor(header, (why) => badContentType(header, why));
  c.skipWs();
  if (c.done) return { type: '', params: {} };
  const type = c.mediaRange(false);
  const params: Record<string, string> = {};
  // RFC 6838 §4.3: a parameter given more than once is an error. Which one counts is anyone's guess (a STOW-RS
  // with `type="application/dicom"; type="application/dicom+json"` was stored by the first, and one with two
  // boundaries failed for "no boundary" naming the first; until 7 Dec 2026 the first was kept silently).
  c.parameters(undefined, (name, value) => {
    if (Object.hasOwn(params, name))
      throw badContentType(header, `the parameter '${name}' is given more than once`);
    params[name] = value;
  });
  return { type, params };
}

/**
 * RFC 9110 §12.4.2 qvalue; leniently also `.5` and more than three decimals, which real clients send. Anything
 * that is not a number in 0..1 makes the header unusable.
 */
function parseQ(raw: string, fail: (why: string) => CustosError): number {
  if (!/^(?:\d+(?:\.\d*)?|\.\d+)$/.test(raw)) throw fail(`q value '${raw}' is not a number`);
  const q = Number(raw);
  if (q < 0 || q > 1) throw fail(`q value '${raw}' is outside 0..1`);
  return q;
}

/**
 * The content codings a Content-Encoding header names (RFC 9110 §8.4), lower case, `identity` and empty members left
 * out: none for a body sent as it is.
 */
export function contentCodings(header: string | undefined): string[] {
  return (header ?? '')
    .split(',')
    .map((c) => c.trim().toLowerCase())
    .filter((c) => c !== '' && c !== 'identity');
}

/**
 * An Accept header (RFC 9110 §12.5.1) as used by DICOMweb (PS3.18 §8.7.3 / §8.7.5), e.g.
 * `multipart/related; type="application/dicom"; transfer-syntax=*, application/dicom+json;q=0.5` and the
 * wildcard ranges (`type/*` and the any-type range).
 * Entries come back ordered by q, highest first; entries of equal q keep the client's order (stable), so a
 * server can fall back on the listing order among equal weights. `q` itself is removed from `params`;
 * parameters after `q` (accept-ext) are kept there too. A missing or blank header yields `[]`. A malformed
 * header throws `http.bad-accept` (400).
 */
export function parseAccept(header: string | undefined): AcceptEntry[] {
  if (header === undefined) return [];
  const fail = (why: string) =>
    new CustosError({
      code: 'http.bad-accept',
      message: `the Accept header '${header.slice(0, 120)}' cannot be parsed: ${why}`,
      httpStatus: 400,
    });
  const c = new Cursor(header, fail);
  const entries: AcceptEntry[] = [];
  for (;;) {
    c.skipWs();
    if (c.done) break;
    // RFC 9110 §5.6.1: empty list elements are allowed and ignored.
    if (c.peek() === ',') {
      c.pos++;
      continue;
    }
    const type = c.mediaRange(true);
    const params: Record<string, string> = {};
    let q: number | undefined;
    c.parameters(',', (name, value) => {
      if (name === 'q') q ??= parseQ(value, fail);
      else if (!(name in params)) params[name] = value;
    });
    entries.push({ type, params, q: q ?? 1 });
  }
  // Array.prototype.sort is stable (ES2019), so equal weights keep the client's order.
  return entries.sort((a, b) => b.q - a.q);
}

/**
 * RFC 9110 §12.5.1: the weight the client gives a media type is that of the most specific range in its Accept that
 * matches it (a type with parameters over the type alone, over `type/*`, over `*\/*`), not that of the first range
 * that does: `image/jpeg;q=0, image/*` takes any image but JPEG. A range matches when each parameter of `params`
 * that it names has the same value (compared ignoring case); parameters the media type does not consider
 * (`charset` on a JSON type, say) are not compared. 0 when no range matches.
 */
export function acceptWeight(
  entries: AcceptEntry[],
  type: string,
  params: Record<string, string> = {},
): number {
  let best: { specificity: number; q: number } | undefined;
  const [major] = type.split('/');
  for (const e of entries) {
    let specificity: number;
    if (e.type === '*/*') specificity = 0;
    else if (e.type === `${major}/*`) specificity = 1;
    else if (e.type === type) {
      const named = Object.entries(e.params).filter(([k]) => k in params);
      if (named.some(([k, v]) => params[k]!.toLowerCase() !== v.toLowerCase())) continue;
      specificity = 2 + named.length;
    } else continue;
    if (!best || specificity > best.specificity) best = { specificity, q: e.q };
  }
  return best?.q ?? 0;
}
