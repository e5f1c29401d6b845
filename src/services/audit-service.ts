import { createHash } from 'node:crypto';
import { canonicalJson } from '../domain/canonical-json.js';
import { CustosError } from '../domain/errors.js';
import { asUserId } from '../domain/ids.js';
import {
  ChainVerifier,
  checkpointSignatureValid,
  GENESIS_HASH,
  publicKeyFromPem,
  type VerifyReport,
} from '../domain/ledger-chain.js';
import { KNOWN_AUDIT_ACTIONS, type AuditRecord } from '../domain/audit-record.js';
import type { Principal } from '../domain/principal.js';
import type {
  AuditFilter,
  AuditLedger,
  AuditStore,
  CheckpointSink,
  LedgerSigner,
  SignedCheckpoint,
} from '../ports/audit-ledger.js';
import type { Clock } from '../ports/clock.js';
import type { AccessGate } from './access-gate.js';

/** Actions that disclose a patient's data to someone: what an accounting of disclosures lists. */
export const DISCLOSING_ACTIONS = [
  'query',
  'view-metadata',
  'view-pixels',
  'export-clinical',
  'export-deidentified',
  'print',
  'break-glass',
] as const;

export interface Disclosure {
  actor: string;
  role: string;
  kind: string;
  actions: string[];
  first: string;
  last: string;
  count: number;
  sources: string[];
  breakGlass: boolean;
}

export interface AuditServiceDeps {
  ledger: AuditLedger;
  store: AuditStore;
  gate: AccessGate;
  signer: LedgerSigner;
  sink: CheckpointSink;
  clock: Clock;
  node: string;
  /**
   * The stored name of the account a name given as the `user` filter names (account names ignore letter case,
   * docs/accounts.md); the name itself when no account answers to it (an AE title, an OIDC subject).
   */
  accountName?: (name: string) => Promise<string>;
}

const VERIFY_PAGE = 20_000;

/**
 * Reading the ledger (search, accounting of disclosures, export), proving it (verify) and sealing it
 * (checkpoints). Every read of the ledger is itself recorded, after the policy decision point allowed it.
 */
export class AuditService {
  constructor(private readonly deps: AuditServiceDeps) {}

  /** Newest checkpoint known to be good (signature checked), so each seal verifies only what is new. */
  private sealed: { seq: number; hash: string } | undefined;

  /**
   * Seal the ledger: verify the records appended since the last good checkpoint, sign the newest verified
   * point and ship the checkpoint to the external sink. A ledger that no longer verifies is never signed (that
   * would bless a rewrite): the checkpoint is refused and a security alert recorded instead.
   */
  async checkpoint(): Promise<SignedCheckpoint | undefined> {
    const key = publicKeyFromPem(this.deps.signer.publicKeyPem);
    if (!this.sealed) {
      const [database, external] = await Promise.all([
        this.deps.store.checkpoints(),
        this.deps.sink.readAll(),
      ]);
      const good = [...database, ...external]
        .filter((c) => c.keyId === this.deps.signer.keyId && checkpointSignatureValid(c, key))
        .sort((a, b) => b.seq - a.seq)[0];
      this.sealed = good ? { seq: good.seq, hash: good.hash } : { seq: 0, hash: GENESIS_HASH };
    }
    const verifier = new ChainVerifier(key, [], [], this.sealed);
    let after = this.sealed.seq;
    let last = this.sealed;
    for (;;) {
      const rows = await this.deps.store.rowsAfter(after, VERIFY_PAGE);
      for (const row of rows) {
        if (!verifier.push(row)) break;
        last = { seq: row.seq, hash: row.hash };
      }
      if (verifier.failed || rows.length < VERIFY_PAGE) break;
      after = rows[rows.length - 1]!.seq;
    }
    const report = verifier.finish();
    if (report.problem) {
      await this.deps.ledger.append({
        principal: {
          kind: 'system',
          id: asUserId('system'),
          name: 'system:ledger',
          role: 'system',
          source: this.deps.node,
        },
        action: 'alert',
        outcome: 'failure',
        policy: 'n/a',
        detail: { alert: 'ledger-tampered', problem: report.problem, refused: 'checkpoint' },
      });
      throw new CustosError({
        code: 'audit.tampered',
        message: `the audit ledger does not verify after seq ${this.sealed.seq}, so it was not signed: ${report.problem.message}`,
      });
    }
    if (last.seq === this.sealed.seq) return undefined;
    const c = await this.deps.store.checkpoint(this.deps.signer, this.deps.node, this.deps.clock.now(), last);
    if (c) {
      await this.deps.sink.append(c);
      this.sealed = last;
    }
    return c;
  }

  /**
   * Record the effective configuration when it differs from the last one recorded (at every start): which
   * settings changed, and the whole (secret-free) configuration, so the ledger answers "what ran when".
   */
  async recordConfiguration(settings: Record<string, unknown>): Promise<string[] | undefined> {
    const fingerprint = createHash('sha256').update(canonicalJson(settings)).digest('hex');
    const last = (await this.deps.store.search({ action: ['config-change'], limit: 1 }))[0];
    if (last?.detail?.fingerprint === fingerprint) return undefined;
    const before = (last?.detail?.settings ?? {}) as Record<string, unknown>;
    const changed = changedPaths(before, settings);
    await this.deps.ledger.append({
      principal: {
        kind: 'system',
        id: asUserId('system'),
        name: 'system:config',
        role: 'system',
        source: this.deps.node,
      },
      action: 'config-change',
      outcome: 'success',
      policy: 'n/a',
      detail: { fingerprint, changed, settings, ...(last ? {} : { first: true }) },
    });
    return changed;
  }

  /**
   * The decision this service's reads take, alone: a route takes it before it reads the request's body or
   * parameters, so that a caller who may not read the ledger is refused (403, recorded) whatever it sent,
   * rather than told what is wrong with its request (400, unrecorded: until 6 Dec 2026).
   */
  async authorize(principal: Principal): Promise<void> {
    await this.deps.gate.require(principal, 'read-audit', { type: 'archive' });
  }

  async search(principal: Principal, filter: AuditFilter, channel?: string): Promise<AuditRecord[]> {
    return (await this.searchPage(principal, filter, channel)).records;
  }

  /**
   * One page of a search, and whether any record matching it lies beyond the page (one record more is read to
   * know). Until 7 Dec 2026 the admin API offered a next page whenever a page came back full, so paging ended on
   * an empty page when the matching records filled the pages exactly.
   */
  async searchPage(
    principal: Principal,
    filter: AuditFilter,
    channel?: string,
  ): Promise<{ records: AuditRecord[]; more: boolean }> {
    const decision = await this.deps.gate.require(principal, 'read-audit', { type: 'archive' });
    await this.requireKnownActions(filter.action);
    const resolved = await this.withStoredActor(filter);
    const found = await this.deps.store.search({ ...resolved, limit: resolved.limit + 1 });
    const records = found.slice(0, resolved.limit);
    await this.recordRead(principal, decision.policy, 'search', resolved, records.length, channel);
    return { records, more: found.length > records.length };
  }

  /**
   * Refuses an action name that Custos never records and the ledger does not hold (a name recorded by an older
   * version is still found). Until 7 Dec 2026 `action=view-pixel` answered 200 with no records, which a privacy
   * officer could read as "nobody viewed the images".
   */
  private async requireKnownActions(actions: readonly string[] | undefined): Promise<void> {
    for (const action of actions ?? []) {
      if (KNOWN_AUDIT_ACTIONS.includes(action)) continue;
      if ((await this.deps.store.search({ action: [action], limit: 1 })).length) continue;
      throw new CustosError({
        code: 'audit.bad-filter',
        message: `action: '${action}' is no action Custos records and none is in the ledger (known: ${KNOWN_AUDIT_ACTIONS.join(', ')})`,
        httpStatus: 400,
        detail: { parameter: 'action' },
      });
    }
  }

  /**
   * The filter with its actor as the ledger names it: 'TECH' finds the records of the account 'tech' (until
   * 6 Dec 2026 the user filter compared letter case, so it found none).
   */
  private async withStoredActor<F extends { actor?: string }>(filter: F): Promise<F> {
    if (filter.actor === undefined || !this.deps.accountName) return filter;
    return { ...filter, actor: await this.deps.accountName(filter.actor) };
  }

  /** Everyone who accessed a patient's studies: one line per person, with what they did and when. */
  async disclosures(
    principal: Principal,
    patientId: string,
    range: { since?: string; until?: string } = {},
    channel?: string,
  ): Promise<{ patientId: string; disclosures: Disclosure[]; records: number }> {
    const decision = await this.deps.gate.require(principal, 'read-audit', { type: 'archive', patientId });
    const byActor = new Map<string, Disclosure>();
    let records = 0;
    let beforeSeq: number | undefined;
    for (;;) {
      const page = await this.deps.store.search({
        patientId,
        action: [...DISCLOSING_ACTIONS],
        outcome: 'success',
        ...range,
        ...(beforeSeq !== undefined ? { beforeSeq } : {}),
        order: 'desc',
        limit: 5000,
      });
      for (const r of page) {
        records += 1;
        const key = `${r.actor.kind}:${r.actor.name}`;
        const d = byActor.get(key) ?? {
          actor: r.actor.name,
          role: r.actor.role,
          kind: r.actor.kind,
          actions: [],
          first: r.ts,
          last: r.ts,
          count: 0,
          sources: [],
          breakGlass: false,
        };
        d.count += 1;
        if (!d.actions.includes(r.action)) d.actions.push(r.action);
        if (!d.sources.includes(r.source)) d.sources.push(r.source);
        if (r.ts < d.first) d.first = r.ts;
        if (r.ts > d.last) d.last = r.ts;
        if (r.breakGlassReason || r.action === 'break-glass') d.breakGlass = true;
        byActor.set(key, d);
      }
      if (page.length < 5000) break;
      beforeSeq = page[page.length - 1]!.seq;
    }
    const disclosures = [...byActor.values()].sort((a, b) => (a.last < b.last ? 1 : -1));
    await this.recordRead(
      principal,
      decision.policy,
      'disclosures',
      { patientId, ...range },
      records,
      channel,
      patientId,
    );
    return { patientId, disclosures, records };
  }

  /** Every record matching the filter, oldest first, streamed in pages; the export itself is recorded first. */
  async *export(
    principal: Principal,
    filter: Omit<AuditFilter, 'limit' | 'order' | 'beforeSeq'>,
    format: string,
    channel?: string,
  ): AsyncGenerator<AuditRecord> {
    const decision = await this.deps.gate.require(principal, 'read-audit', { type: 'archive' });
    await this.requireKnownActions(filter.action);
    const resolved = await this.withStoredActor(filter);
    await this.recordRead(principal, decision.policy, 'export', { ...resolved, format }, undefined, channel);
    let afterSeq = resolved.afterSeq ?? 0;
    for (;;) {
      const page = await this.deps.store.search({ ...resolved, afterSeq, order: 'asc', limit: 5000 });
      for (const r of page) yield r;
      if (page.length < 5000) return;
      afterSeq = page[page.length - 1]!.seq;
    }
  }

  /**
   * Recompute the whole chain, check every checkpoint's signature (from the database and from the external
   * sink) and that the chain passes through each, and name the first place it departs.
   */
  async verify(principal: Principal, channel?: string): Promise<VerifyReport> {
    const decision = await this.deps.gate.require(principal, 'read-audit', { type: 'archive' });
    const [database, external] = await Promise.all([this.deps.store.checkpoints(), this.deps.sink.readAll()]);
    const verifier = new ChainVerifier(publicKeyFromPem(this.deps.signer.publicKeyPem), database, external);
    let after = 0;
    for (;;) {
      const rows = await this.deps.store.rowsAfter(after, VERIFY_PAGE);
      let going = true;
      for (const row of rows) {
        going = verifier.push(row);
        if (!going) break;
      }
      if (!going || rows.length < VERIFY_PAGE) break;
      after = rows[rows.length - 1]!.seq;
    }
    const report = verifier.finish();
    await this.deps.ledger.append({
      principal,
      action: 'read-audit',
      outcome: 'success',
      policy: decision.policy,
      ...(channel ? { channel } : {}),
      detail: {
        operation: 'verify',
        ok: report.ok,
        records: report.records,
        ...(report.problem ? { problem: report.problem } : {}),
      },
    });
    return report;
  }

  private async recordRead(
    principal: Principal,
    policy: string,
    operation: string,
    filter: object,
    count: number | undefined,
    channel: string | undefined,
    patientId?: string,
  ): Promise<void> {
    await this.deps.ledger.append({
      principal,
      action: 'read-audit',
      outcome: 'success',
      policy,
      ...(patientId ? { patientId } : {}),
      ...(channel ? { channel } : {}),
      objects: { query: { operation, ...filter }, ...(count !== undefined ? { count } : {}) },
    });
  }
}

/** Dotted paths whose values differ between two settings objects (added, removed or changed). */
export function changedPaths(a: Record<string, unknown>, b: Record<string, unknown>, prefix = ''): string[] {
  const out: string[] = [];
  for (const k of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) {
    const x = a[k];
    const y = b[k];
    const isObj = (v: unknown) => typeof v === 'object' && v !== null && !Array.isArray(v);
    if (isObj(x) && isObj(y))
      out.push(...changedPaths(x as Record<string, unknown>, y as Record<string, unknown>, `${prefix}${k}.`));
    else if (canonicalJson(x ?? null) !== canonicalJson(y ?? null)) out.push(`${prefix}${k}`);
  }
  return out;
}
