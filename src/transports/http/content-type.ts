import { CustosError } from '../../domain/errors.js';

export interface MediaType {
  /** Lower-cased type/subtype; '' for an empty header. */
  type: string;
  /** Parameter names lower-cased, quoted values unquoted. */
  params: Record<string, string>;
}

export interface AcceptEntry extends MediaType {
  q: number;
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+\/[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const badHeader = (header: string) =>
  new CustosError({
    code: 'http.bad-content-type',
    message: `'${header.slice(0, 100)}' is not a media type`,
    httpStatus: 400,
  });

/** Split on `sep` outside double-quoted strings (RFC 9110 §5.6.4 quoted-string with backslash escapes). */
function splitOutsideQuotes(s: string, sep: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < s.length; i++) {
    const ch = s[i]!;
    if (quoted && ch === '\\' && i + 1 < s.length) {
      cur += ch + s[++i];
      continue;
    }
    if (ch === '"') quoted = !quoted;
    if (ch === sep && !quoted) {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  out.push(cur);
  return out;
}

function unquote(v: string): string {
  const t = v.trim();
  if (t.length >= 2 && t.startsWith('"') && t.endsWith('"')) return t.slice(1, -1).replace(/\\(.)/g, '$1');
  return t;
}

/** RFC 9110 §8.3.1 media type with parameters. */
export function parseMediaType(header: string): MediaType {
  const [typePart = '', ...paramParts] = splitOutsideQuotes(header, ';');
  const type = typePart.trim().toLowerCase();
  if (type === '' && paramParts.length === 0) return { type: '', params: {} };
  if (!TOKEN.test(type)) throw badHeader(header);
  const params: Record<string, string> = {};
  for (const p of paramParts) {
    if (p.trim() === '') continue;
    const eq = p.indexOf('=');
    if (eq <= 0) continue;
    params[p.slice(0, eq).trim().toLowerCase()] = unquote(p.slice(eq + 1));
  }
  return { type, params };
}

/** An Accept header (RFC 9110 §12.5.1) as entries ordered by q, highest first, stable otherwise. */
export function parseAccept(header: string | undefined): AcceptEntry[] {
  if (!header || header.trim() === '') return [];
  const entries: AcceptEntry[] = [];
  for (const part of splitOutsideQuotes(header, ',')) {
    if (part.trim() === '') continue;
    const mt = parseMediaType(part);
    const qRaw = mt.params.q;
    delete mt.params.q;
    const q = qRaw === undefined ? 1 : Number(qRaw);
    entries.push({ ...mt, q: Number.isFinite(q) ? Math.min(1, Math.max(0, q)) : 1 });
  }
  return entries
    .map((e, i) => ({ e, i }))
    .sort((a, b) => b.e.q - a.e.q || a.i - b.i)
    .map(({ e }) => e);
}
