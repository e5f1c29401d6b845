import { isIP } from 'node:net';
import { CustosError } from '../domain/errors.js';
import { asUserId } from '../domain/ids.js';
import type { Principal } from '../domain/principal.js';
import type { AuditLedger } from '../ports/audit-ledger.js';
import type { Clock } from '../ports/clock.js';
import type { IndexDb } from '../ports/database.js';
import type { AccessGate } from './access-gate.js';
import { accountName } from './account-names.js';

export interface AeEntry {
  title: string;
  host: string;
  port: number;
  /** SHA-256 of the client certificate (DER), lower-case hex without colons. */
  certSha256: string | null;
  /** Bound account name, or null when the AE has no account (then every action is denied). */
  user: string | null;
  createdAt: string;
}

export interface AddAe {
  title: string;
  host: string;
  port: number;
  certSha256?: string;
  user?: string;
}

/** PS3.5 §6.2 AE: 1-16 characters, no backslash or control characters, not all spaces. */
export function checkAeTitle(title: string): string {
  const t = title.trim();
  if (t.length === 0 || t.length > 16 || t.includes('\\') || !/^[\x20-\x7e]+$/.test(t)) {
    throw new CustosError({
      code: 'ae.bad-title',
      message: `AE title '${title}' must be 1-16 printable ASCII characters without a backslash`,
      httpStatus: 400,
      detail: { title },
    });
  }
  return t;
}

/**
 * RFC 1123 §2.1 host name: dot-separated labels of letters, digits and hyphens, 1-63 characters each, neither
 * starting nor ending with a hyphen, 253 characters in all (a final dot allowed).
 */
const HOST_NAME =
  /^(?=.{1,253}\.?$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;

/**
 * The host an AE calls from and listens on: a host name (RFC 1123) or an IPv4 or IPv6 address, nothing else.
 * Until 6 Dec 2026 only white space was refused, so 'h\u0000x', 'a/b?c#d' or '-oProxyCommand=x' were registered
 * (and `custos ae list` printed a NUL inside its tab-separated lines).
 */
export function checkAeHost(host: string): string {
  const h = host.trim();
  // RFC 1123 §2.1: a name is never all digits and dots, which only an address may be.
  if (isIP(h) || (HOST_NAME.test(h) && !/^[\d.]+$/.test(h))) return h;
  throw new CustosError({
    code: 'ae.bad-host',
    message: `host '${JSON.stringify(host).slice(1, -1).slice(0, 100)}' must be a host name (RFC 1123) or an IPv4 or IPv6 address`,
    httpStatus: 400,
    detail: { parameter: 'host' },
  });
}

const notFound = (title: string) =>
  new CustosError({
    code: 'ae.not-found',
    message: `no application entity with the title '${title}' is registered`,
    httpStatus: 404,
    detail: { title },
  });

/** Where an association comes from: the authenticated facts the registry checks a calling AE against. */
export interface CallingPeer {
  callingAe: string;
  address: string;
  /** SHA-256 of the TLS client certificate, when the association came over TLS with one. */
  certSha256?: string;
  /** The validity period of that certificate (X.509 notBefore and notAfter). */
  certValidity?: { notBefore: Date; notAfter: Date };
  tls: boolean;
}

export type AeAdmission =
  { admitted: true; principal: Principal; entry: AeEntry } | { admitted: false; reason: string };

/** Normalise an IPv4-mapped IPv6 address so '::ffff:127.0.0.1' and '127.0.0.1' compare equal. */
export const plainAddress = (a: string) => (a.startsWith('::ffff:') ? a.slice(7) : a);

/**
 * The registry of DICOM application entities: who may associate, from where, with which certificate, and as
 * which account. Changes need the 'administer' action and are recorded in the ledger with the change.
 */
export class AeRegistry {
  constructor(
    private readonly index: IndexDb,
    private readonly gate: AccessGate,
    private readonly ledger: AuditLedger,
    private readonly clock: Clock,
  ) {}

  /**
   * The decision this service's changes take, alone: a route takes it before it reads the request's body or
   * parameters, so that a caller who may not administer the registry is refused (403, recorded) whatever it
   * sent, rather than told what is wrong with its request (400, unrecorded: until 6 Dec 2026).
   */
  async authorize(actor: Principal): Promise<void> {
    await this.gate.require(actor, 'administer', { type: 'archive' });
  }

  async list(actor: Principal): Promise<AeEntry[]> {
    await this.gate.require(actor, 'administer', { type: 'archive' });
    const rows = await this.rows().orderBy('ae.title').execute();
    return rows.map(toEntry);
  }

  async add(actor: Principal, input: AddAe): Promise<AeEntry> {
    const decision = await this.gate.require(actor, 'administer', { type: 'archive' });
    const title = checkAeTitle(input.title);
    const host = checkAeHost(input.host);
    if (!Number.isInteger(input.port) || input.port < 1 || input.port > 65535)
      throw new CustosError({
        code: 'ae.bad-port',
        message: `port must be 1..65535, got '${input.port}'`,
        httpStatus: 400,
      });
    const cert = input.certSha256?.toLowerCase().replace(/:/g, '');
    if (cert !== undefined && !/^[0-9a-f]{64}$/.test(cert))
      throw new CustosError({
        code: 'ae.bad-certificate',
        message: 'the certificate fingerprint must be a SHA-256 (64 hex digits)',
        httpStatus: 400,
      });
    let userPk: number | null = null;
    if (input.user) {
      const u = await this.index.db
        .selectFrom('users')
        .select(['pk', 'active'])
        .where('username', '=', await accountName(this.index.db, input.user))
        .executeTakeFirst();
      if (!u || !u.active)
        throw new CustosError({
          code: 'ae.no-such-user',
          message: `no active account named '${input.user}' to bind the AE to`,
          httpStatus: 400,
        });
      userPk = u.pk;
    }
    const existing = await this.index.db
      .selectFrom('application_entities')
      .select('pk')
      .where('title', '=', title)
      .executeTakeFirst();
    if (existing)
      throw new CustosError({
        code: 'ae.exists',
        message: `an application entity with the title '${title}' is already registered`,
        httpStatus: 409,
        detail: { title },
      });
    const now = this.clock.now().toISOString();
    await this.index.db.transaction().execute(async (trx) => {
      await trx
        .insertInto('application_entities')
        .values({
          title,
          host,
          port: input.port,
          cert_sha256: cert ?? null,
          user_pk: userPk,
          created_at: now,
        })
        .execute();
      await this.ledger.appendIn(trx, {
        principal: actor,
        action: 'ae-add',
        outcome: 'success',
        policy: decision.policy,
        objects: { title, host, port: input.port, cert: cert ?? null, user: input.user ?? null },
      });
    });
    return (await this.find(title))!;
  }

  /** Removes the AE and returns its title as registered (trimmed). */
  async remove(actor: Principal, given: string): Promise<string> {
    const decision = await this.gate.require(actor, 'administer', { type: 'archive' });
    // Trimmed as add() trims it (until 6 Dec 2026 ' T5 ' was registered as 'T5' and then not found to remove).
    const title = checkAeTitle(given);
    await this.index.db.transaction().execute(async (trx) => {
      const res = await trx.deleteFrom('application_entities').where('title', '=', title).executeTakeFirst();
      if (Number(res.numDeletedRows) === 0) throw notFound(title);
      await this.ledger.appendIn(trx, {
        principal: actor,
        action: 'ae-remove',
        outcome: 'success',
        policy: decision.policy,
        objects: { title },
      });
    });
    return title;
  }

  /** Registry lookup for the DIMSE transport (a destination AE for C-MOVE, a requester for commitment). */
  async find(title: string): Promise<AeEntry | undefined> {
    const row = await this.rows().where('ae.title', '=', title.trim()).executeTakeFirst();
    return row ? toEntry(row) : undefined;
  }

  /**
   * Admit or refuse a calling AE (deny by default): it must be registered, call from its registered host and,
   * when a certificate is registered, present that certificate over TLS. A refusal is audited here.
   */
  async admit(peer: CallingPeer): Promise<AeAdmission> {
    const row = await this.rows().where('ae.title', '=', peer.callingAe.trim()).executeTakeFirst();
    const address = plainAddress(peer.address);
    let reason: string | undefined;
    if (!row) reason = `calling AE title '${peer.callingAe}' is not registered`;
    else if (!(await hostMatches(row.host, address)))
      reason = `AE '${row.title}' is registered for host ${row.host}, the call came from ${address}`;
    else if (row.cert_sha256 && (!peer.tls || peer.certSha256 !== row.cert_sha256))
      reason = peer.certSha256
        ? `AE '${row.title}' presented a client certificate other than the registered one`
        : `AE '${row.title}' must present its registered TLS client certificate`;
    else if (row.cert_sha256 && peer.certValidity && !validNow(peer.certValidity, this.clock.now()))
      // The registered certificate is the AE's identity only while it is valid, as a certificate Custos calls out to
      // is (until 5 Dec 2026 an expired one was taken here while refused there).
      reason = `AE '${row.title}' presented its registered client certificate, which is valid from ${peer.certValidity.notBefore.toISOString()} to ${peer.certValidity.notAfter.toISOString()} only`;
    const principal: Principal = {
      kind: 'ae',
      id: asUserId(row?.user_pk != null ? String(row.user_pk) : `ae:${peer.callingAe}`),
      name: peer.callingAe.trim(),
      role: row?.role && row.active ? row.role : 'none',
      source: address,
      channel: 'dimse',
      // The account's facts go with its role, so that a policy scoped to a department (or to a physician's own
      // patients) decides for the AE as for the account; until 5 Dec 2026 only the role did, and an AE bound to a
      // radiologist's account stored but found nothing.
      ...(row?.active && row.department ? { department: row.department } : {}),
      ...(row?.active && row.physician_name ? { physicianName: row.physician_name } : {}),
      ...(row?.active && row.physician_id ? { physicianId: row.physician_id } : {}),
    };
    if (reason || !row) {
      await this.ledger.append({
        principal,
        action: 'dicom-associate',
        outcome: 'denied',
        policy: 'builtin:ae-registry',
        detail: { reason: reason ?? 'unknown', tls: peer.tls },
      });
      return { admitted: false, reason: reason ?? 'unknown' };
    }
    return { admitted: true, principal, entry: toEntry(row) };
  }

  private rows() {
    return this.index.db
      .selectFrom('application_entities as ae')
      .leftJoin('users as u', 'u.pk', 'ae.user_pk')
      .select([
        'ae.title',
        'ae.host',
        'ae.port',
        'ae.cert_sha256',
        'ae.user_pk',
        'ae.created_at',
        'u.username',
        'u.role',
        'u.active',
        'u.department',
        'u.physician_name',
        'u.physician_id',
      ]);
  }
}

interface Row {
  title: string;
  host: string;
  port: number;
  cert_sha256: string | null;
  user_pk: number | null;
  created_at: string;
  username: string | null;
  role: string | null;
  active: number | null;
  department: string | null;
  physician_name: string | null;
  physician_id: string | null;
}

const toEntry = (r: Row): AeEntry => ({
  title: r.title,
  host: r.host,
  port: Number(r.port),
  certSha256: r.cert_sha256,
  user: r.username,
  createdAt: r.created_at,
});

/** A registered host matches the peer address itself or any address the name resolves to. */
async function hostMatches(host: string, address: string): Promise<boolean> {
  if (plainAddress(host) === address) return true;
  if (host === 'localhost' && (address === '127.0.0.1' || address === '::1')) return true;
  try {
    const { lookup } = await import('node:dns/promises');
    const all = await lookup(host, { all: true });
    return all.some((a) => plainAddress(a.address) === address);
  } catch {
    return false;
  }
}

function validNow(v: { notBefore: Date; notAfter: Date }, now: Date): boolean {
  return now.getTime() >= v.notBefore.getTime() && now.getTime() <= v.notAfter.getTime();
}
