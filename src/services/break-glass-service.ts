import { randomUUID } from 'node:crypto';
import { CustosError } from '../domain/errors.js';
import { accountName } from './account-names.js';
import { isValidUid } from '../domain/ids.js';
import type { Principal } from '../domain/principal.js';
import type { AuditLedger, AuditStore } from '../ports/audit-ledger.js';
import type { Clock } from '../ports/clock.js';
import type { IndexDb } from '../ports/database.js';
import type { AccessGate, BreakGlassWindow, BreakGlassWindowSource } from './access-gate.js';
import { STUDY_FACT_COLUMNS, type StudyFacts } from './study-facts.js';

/** Shortest reason accepted: a word or two is not a reason the privacy officer can review. */
export const MIN_REASON_LENGTH = 10;
const MAX_REASON_LENGTH = 2000;
const MAX_NOTE_LENGTH = 4000;
/** How long a principal's open windows are reused before the table is asked again (ms). */
const WINDOW_CACHE_MS = 2000;

export interface BreakGlassSettings {
  /** Length of a window when the request names none (minutes). */
  minutes: number;
  /** Longest window a request may ask for (minutes). */
  maxMinutes: number;
}

/** One break-glass window as the privacy officer's report shows it. */
export interface BreakGlassItem {
  id: string;
  username: string;
  role: string;
  studyUid: string;
  patientId: string;
  reason: string;
  openedAt: string;
  expiresAt: string;
  /** Audit records of accesses made through this window (queries, metadata, pixels). */
  accesses: number;
  reviewedBy: string | null;
  reviewedAt: string | null;
  reviewNote: string | null;
}

export interface BreakGlassFilter {
  /** Opened at or after (ISO 8601). */
  from?: string;
  /** Opened before (ISO 8601, exclusive). */
  to?: string;
  username?: string;
  reviewed?: boolean;
  limit?: number;
}

/** A refused request; `parameter` names the field it is about (problem+json `parameter`), for a form to mark it. */
const bad = (code: string, message: string, parameter?: string, httpStatus = 400) =>
  new CustosError({ code, message, httpStatus, ...(parameter ? { detail: { parameter } } : {}) });

/**
 * The open windows of an account, as the access gate needs them for every decision: read from the table once
 * per principal (a request) and reused for WINDOW_CACHE_MS, filtered by the clock at every use so that a window
 * ends exactly when it expires.
 */
export class OpenBreakGlassWindows implements BreakGlassWindowSource {
  private readonly cache = new WeakMap<Principal, { at: number; windows: Promise<BreakGlassWindow[]> }>();

  constructor(
    private readonly index: IndexDb,
    private readonly clock: Clock,
  ) {}

  async openFor(principal: Principal): Promise<readonly BreakGlassWindow[]> {
    // DIMSE AEs and system principals have no break-glass: only a person can give a reason.
    if (principal.kind !== 'user' || !/^\d{1,15}$/.test(principal.id)) return [];
    let entry = this.cache.get(principal);
    if (!entry || performance.now() - entry.at > WINDOW_CACHE_MS) {
      entry = { at: performance.now(), windows: this.load(Number(principal.id)) };
      this.cache.set(principal, entry);
      entry.windows.catch(() => this.cache.delete(principal));
    }
    const now = this.clock.now().toISOString();
    return (await entry.windows).filter((w) => w.expiresAt > now);
  }

  /** After an opening: the next decision for this principal reads the table again. */
  forget(principal: Principal): void {
    this.cache.delete(principal);
  }

  private async load(userPk: number): Promise<BreakGlassWindow[]> {
    const rows = await this.index.db
      .selectFrom('break_glass')
      .select(['id', 'study_uid', 'reason', 'expires_at'])
      .where('user_pk', '=', userPk)
      .where('expires_at', '>', this.clock.now().toISOString())
      .execute();
    return rows.map((r) => ({ id: r.id, studyUid: r.study_uid, reason: r.reason, expiresAt: r.expires_at }));
  }
}

/**
 * Break-glass (issue 4, item 4): a clinician opens a study outside their scope in an emergency by giving a
 * reason. Who may is the 'break-glass' action of the policies; the window lasts a limited time, every access
 * through it carries the reason in the ledger, and opening it alerts the privacy officer, who reviews it.
 */
export class BreakGlassService {
  constructor(
    private readonly deps: {
      index: IndexDb;
      gate: AccessGate;
      ledger: AuditLedger;
      store: AuditStore;
      clock: Clock;
      facts: StudyFacts;
      windows: OpenBreakGlassWindows;
      settings: BreakGlassSettings;
      newId?: () => string;
    },
  ) {}

  async open(
    principal: Principal,
    input: { studyUid: string; reason: string; minutes?: number },
  ): Promise<{ id: string; studyUid: string; openedAt: string; expiresAt: string }> {
    const { settings } = this.deps;
    if (!isValidUid(input.studyUid))
      throw bad(
        'break-glass.bad-request',
        `studyUid: '${input.studyUid}' is not a valid Study Instance UID`,
        'studyUid',
      );
    const reason = input.reason.trim();
    if (reason.length < MIN_REASON_LENGTH)
      throw bad(
        'break-glass.reason-required',
        `reason: say why you need this study (at least ${MIN_REASON_LENGTH} characters); it is recorded and reviewed by the privacy officer`,
        'reason',
      );
    if (reason.length > MAX_REASON_LENGTH)
      throw bad('break-glass.bad-request', `reason: at most ${MAX_REASON_LENGTH} characters`, 'reason');
    const minutes = input.minutes ?? Math.min(settings.minutes, settings.maxMinutes);
    if (!Number.isInteger(minutes) || minutes < 1 || minutes > settings.maxMinutes)
      throw bad(
        'break-glass.bad-request',
        `minutes: must be a whole number from 1 to ${settings.maxMinutes} (breakGlass.maxMinutes)`,
        'minutes',
      );
    if (principal.kind !== 'user' || !/^\d{1,15}$/.test(principal.id))
      throw bad(
        'break-glass.not-a-person',
        'break-glass is for a local account acting in person; this principal has no account to hold a window',
        undefined,
        403,
      );
    const study = await this.deps.index.db
      .selectFrom('studies as st')
      .innerJoin('patients as p', 'p.pk', 'st.patient_pk')
      .select([...STUDY_FACT_COLUMNS, 'st.status'])
      .where('st.study_uid', '=', input.studyUid)
      .executeTakeFirst();
    if (!study || study.status !== 'active') {
      // Whoever may not open a window on every study learns nothing about whether the study exists; whoever may
      // open one on any study is told it is not there.
      await this.deps.gate.requireUnknownStudy(principal, 'break-glass', input.studyUid);
      throw bad(
        'break-glass.no-such-study',
        `there is no study ${input.studyUid} in the archive`,
        undefined,
        404,
      );
    }
    const decision = await this.deps.gate.require(
      principal,
      'break-glass',
      await this.deps.facts.resource(study),
    );
    const now = this.deps.clock.now();
    const openedAt = now.toISOString();
    const expiresAt = new Date(now.getTime() + minutes * 60_000).toISOString();
    const id = (this.deps.newId ?? randomUUID)();
    await this.deps.index.db.transaction().execute(async (trx) => {
      await trx
        .insertInto('break_glass')
        .values({
          id,
          user_pk: Number(principal.id),
          username: principal.name,
          role: principal.role,
          study_uid: study.study_uid,
          patient_id: study.patient_id,
          reason,
          opened_at: openedAt,
          expires_at: expiresAt,
          reviewed_by: null,
          reviewed_at: null,
          review_note: null,
        })
        .execute();
      await this.deps.ledger.appendIn(trx, {
        principal,
        action: 'break-glass',
        outcome: 'success',
        policy: decision.policy,
        patientId: study.patient_id,
        studyUid: study.study_uid,
        breakGlassReason: reason,
        objects: { breakGlassId: id, expiresAt, minutes },
      });
      // The privacy officer's notification: an alert record, like the other alerts (quarantine, fixity).
      await this.deps.ledger.appendIn(trx, {
        principal,
        action: 'alert',
        outcome: 'success',
        policy: decision.policy,
        patientId: study.patient_id,
        studyUid: study.study_uid,
        breakGlassReason: reason,
        detail: { alert: 'break-glass', notify: 'privacy-officer', breakGlassId: id, expiresAt },
      });
    });
    this.deps.windows.forget(principal);
    return { id, studyUid: study.study_uid, openedAt, expiresAt };
  }

  /** The caller's own open windows: no policy decision, they are the caller's own acts. */
  async active(
    principal: Principal,
  ): Promise<{ id: string; studyUid: string; reason: string; expiresAt: string }[]> {
    return (await this.deps.windows.openFor(principal)).map((w) => ({ ...w }));
  }

  /**
   * The decision this service's report and review take, alone: a route takes it before it reads the request's
   * body or parameters, so that a caller who may not review break-glass windows is refused (403, recorded)
   * whatever it sent, rather than told what is wrong with its request (400, unrecorded: until 6 Dec 2026).
   */
  async authorizeReview(principal: Principal): Promise<void> {
    await this.deps.gate.require(principal, 'review-break-glass', { type: 'archive' });
  }

  /** The privacy officer's report: windows opened in a period, with how often each was used. */
  async list(principal: Principal, filter: BreakGlassFilter, channel?: string): Promise<BreakGlassItem[]> {
    const decision = await this.deps.gate.require(principal, 'review-break-glass', { type: 'archive' });
    let q = this.deps.index.db.selectFrom('break_glass').selectAll();
    if (filter.from) q = q.where('opened_at', '>=', filter.from);
    if (filter.to) q = q.where('opened_at', '<', filter.to);
    // Account names are case-insensitive (docs/accounts.md): 'TECH' finds the windows of 'tech' (until 6 Dec 2026
    // it found none).
    if (filter.username) q = q.where('username', '=', await accountName(this.deps.index.db, filter.username));
    if (filter.reviewed === true) q = q.where('reviewed_at', 'is not', null);
    if (filter.reviewed === false) q = q.where('reviewed_at', 'is', null);
    const rows = await q
      .orderBy('opened_at', 'desc')
      .orderBy('id')
      .limit(filter.limit ?? 1000)
      .execute();
    const items: BreakGlassItem[] = [];
    for (const r of rows) items.push({ ...itemOf(r), accesses: await this.accesses(r) });
    await this.deps.ledger.append({
      principal,
      action: 'review-break-glass',
      outcome: 'success',
      policy: decision.policy,
      ...(channel ? { channel } : {}),
      objects: {
        what: 'list',
        filter: { ...filter },
        count: items.length,
        breakGlassIds: items.map((i) => i.id),
      },
    });
    return items;
  }

  async review(principal: Principal, id: string, note: string, channel?: string): Promise<BreakGlassItem> {
    const decision = await this.deps.gate.require(principal, 'review-break-glass', { type: 'archive' });
    const text = note.trim();
    if (!text) throw bad('break-glass.bad-request', 'note: say what the review found (required)', 'note');
    if (text.length > MAX_NOTE_LENGTH)
      throw bad('break-glass.bad-request', `note: at most ${MAX_NOTE_LENGTH} characters`, 'note');
    const reviewedAt = this.deps.clock.now().toISOString();
    const row = await this.deps.index.db.transaction().execute(async (trx) => {
      const current = await trx.selectFrom('break_glass').selectAll().where('id', '=', id).executeTakeFirst();
      if (!current)
        throw bad('break-glass.not-found', `there is no break-glass window ${id}`, undefined, 404);
      if (current.reviewed_at)
        throw bad(
          'break-glass.already-reviewed',
          `break-glass window ${id} was reviewed by ${current.reviewed_by} at ${current.reviewed_at}`,
          undefined,
          409,
        );
      await trx
        .updateTable('break_glass')
        .set({ reviewed_by: principal.name, reviewed_at: reviewedAt, review_note: text })
        .where('id', '=', id)
        .where('reviewed_at', 'is', null)
        .execute();
      await this.deps.ledger.appendIn(trx, {
        principal,
        action: 'review-break-glass',
        outcome: 'success',
        policy: decision.policy,
        patientId: current.patient_id,
        studyUid: current.study_uid,
        ...(channel ? { channel } : {}),
        objects: { what: 'review', breakGlassId: id, openedBy: current.username },
        detail: { note: text },
      });
      return { ...current, reviewed_by: principal.name, reviewed_at: reviewedAt, review_note: text };
    });
    return { ...itemOf(row), accesses: await this.accesses(row) };
  }

  /** Access records that went through the window (the gate marks them with its id). */
  private async accesses(r: { id: string; username: string; opened_at: string; expires_at: string }) {
    let count = 0;
    let afterSeq: number | undefined;
    // Records are stamped when they become durable, which may be a moment after the decision.
    const until = new Date(Date.parse(r.expires_at) + 5 * 60_000).toISOString();
    for (;;) {
      const page = await this.deps.store.search({
        actor: r.username,
        action: ['query', 'view-metadata', 'view-pixels'],
        outcome: 'success',
        since: r.opened_at,
        until,
        order: 'asc',
        limit: 5000,
        ...(afterSeq !== undefined ? { afterSeq } : {}),
      });
      for (const rec of page) {
        const ids = rec.detail?.breakGlass;
        if (Array.isArray(ids) && ids.includes(r.id)) count++;
      }
      if (page.length < 5000) return count;
      afterSeq = page[page.length - 1]!.seq;
    }
  }
}

function itemOf(r: {
  id: string;
  username: string;
  role: string;
  study_uid: string;
  patient_id: string;
  reason: string;
  opened_at: string;
  expires_at: string;
  reviewed_by: string | null;
  reviewed_at: string | null;
  review_note: string | null;
}): Omit<BreakGlassItem, 'accesses'> {
  return {
    id: r.id,
    username: r.username,
    role: r.role,
    studyUid: r.study_uid,
    patientId: r.patient_id,
    reason: r.reason,
    openedAt: r.opened_at,
    expiresAt: r.expires_at,
    reviewedBy: r.reviewed_by,
    reviewedAt: r.reviewed_at,
    reviewNote: r.review_note,
  };
}
