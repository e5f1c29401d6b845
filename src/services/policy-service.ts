import { createHash } from 'node:crypto';
import { CustosError } from '../domain/errors.js';
import { unifiedDiff } from '../domain/line-diff.js';
import type { Principal } from '../domain/principal.js';
import type { AuditLedger } from '../ports/audit-ledger.js';
import type { Clock } from '../ports/clock.js';
import type { IndexDb } from '../ports/database.js';
import { systemPrincipal } from './auth-service.js';
import type { PolicyProblem, PolicySetSource, PolicyValidator } from '../ports/policy.js';

export interface PolicyVersion {
  version: number;
  text: string;
  sha256: string;
  appliedBy: string;
  appliedAt: string;
  comment: string;
}

const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

export const formatProblems = (file: string, problems: PolicyProblem[]) =>
  problems
    .map(
      (p) =>
        `${file}:${p.line}:${p.column}: ${p.policyId ? `[${p.policyId}] ` : ''}${p.message}${p.help ? ` (${p.help})` : ''}`,
    )
    .join('\n');

/**
 * Policy sets as versioned documents: validated against the schema before they apply, every version kept
 * (the table refuses UPDATE and DELETE), every apply audited in the same transaction. The highest version is
 * active; the decision point reads it through PolicySetSource.
 */
export class PolicyService implements PolicySetSource {
  private readonly listeners: (() => void)[] = [];

  constructor(
    private readonly index: IndexDb,
    private readonly ledger: AuditLedger,
    private readonly validator: PolicyValidator,
    private readonly clock: Clock,
  ) {}

  /** Called after an apply in this process (the decision point re-reads at once instead of within its interval). */
  onApplied(listener: () => void): void {
    this.listeners.push(listener);
  }

  async activeVersion(): Promise<number> {
    const row = await this.index.db
      .selectFrom('policy_versions')
      .select((eb) => eb.fn.max('version').as('v'))
      .executeTakeFirst();
    const v = Number(row?.v ?? 0);
    if (!v) {
      throw new CustosError({
        code: 'policy.none',
        message: 'no policy version is installed: every request is refused',
      });
    }
    return v;
  }

  async text(version: number): Promise<string> {
    return (await this.show(version)).text;
  }

  async show(version?: number): Promise<PolicyVersion> {
    const v = version ?? (await this.activeVersion());
    const row = await this.index.db
      .selectFrom('policy_versions')
      .selectAll()
      .where('version', '=', v)
      .executeTakeFirst();
    if (!row) {
      throw new CustosError({
        code: 'policy.no-such-version',
        message: `there is no policy version ${v}`,
        httpStatus: 404,
      });
    }
    return {
      version: row.version,
      text: row.text,
      sha256: row.sha256,
      appliedBy: row.applied_by,
      appliedAt: row.applied_at,
      comment: row.comment,
    };
  }

  async list(): Promise<Omit<PolicyVersion, 'text'>[]> {
    const rows = await this.index.db
      .selectFrom('policy_versions')
      .select(['version', 'sha256', 'applied_by', 'applied_at', 'comment'])
      .orderBy('version')
      .execute();
    return rows.map((r) => ({
      version: r.version,
      sha256: r.sha256,
      appliedBy: r.applied_by,
      appliedAt: r.applied_at,
      comment: r.comment,
    }));
  }

  validate(text: string): PolicyProblem[] {
    return this.validator.validate(text);
  }

  /** Unified diff of the active version against `text` ('' when they are the same). */
  async diff(text: string, label = 'file'): Promise<{ version: number; diff: string }> {
    const active = await this.show();
    return {
      version: active.version,
      diff: unifiedDiff(active.text, text, [`version ${active.version}`, label]),
    };
  }

  /** First start: install the shipped default policy set as version 1. A no-op once any version exists. */
  async installDefault(): Promise<boolean> {
    const any = await this.index.db
      .selectFrom('policy_versions')
      .select('version')
      .limit(1)
      .executeTakeFirst();
    if (any) return false;
    const text = this.validator.defaultPolicyText();
    const problems = this.validator.validate(text);
    if (problems.length) {
      throw new CustosError({
        code: 'policy.default-invalid',
        message: `the shipped default policy set does not validate:\n${formatProblems('default.cedar', problems)}`,
      });
    }
    try {
      return await this.insert(systemPrincipal('first-start'), text, 'shipped default policy set', 1);
    } catch (err) {
      // Another process sharing the database installed it first.
      if (err instanceof CustosError && err.code === 'policy.conflict') return false;
      throw err;
    }
  }

  /** Validate, then store as a new version and audit it. Refuses invalid text (nothing applied). */
  async apply(
    actor: Principal,
    text: string,
    comment = '',
    file = 'policy',
  ): Promise<{ version: number; sha256: string; unchanged: boolean }> {
    const problems = this.validator.validate(text);
    if (problems.length) {
      throw new CustosError({
        code: 'policy.invalid',
        message: `the policy set does not validate, nothing was applied:\n${formatProblems(file, problems)}`,
        httpStatus: 422,
      });
    }
    const active = await this.show();
    if (active.sha256 === sha256(text))
      return { version: active.version, sha256: active.sha256, unchanged: true };
    const version = active.version + 1;
    await this.insert(actor, text, comment, version);
    for (const l of this.listeners) l();
    return { version, sha256: sha256(text), unchanged: false };
  }

  private async insert(actor: Principal, text: string, comment: string, version: number): Promise<boolean> {
    const hash = sha256(text);
    try {
      await this.index.db.transaction().execute(async (trx) => {
        await trx
          .insertInto('policy_versions')
          .values({
            version,
            text,
            sha256: hash,
            applied_by: actor.name,
            applied_at: this.clock.now().toISOString(),
            comment,
          })
          .execute();
        await this.ledger.appendIn(trx, {
          principal: actor,
          action: 'policy-apply',
          outcome: 'success',
          policy: 'builtin:local-operator',
          objects: { version, sha256: hash, comment },
        });
      });
    } catch (err) {
      // Another process applied (or installed) the same version number first.
      const now = await this.index.db
        .selectFrom('policy_versions')
        .select('version')
        .where('version', '=', version)
        .executeTakeFirst();
      if (now) {
        throw new CustosError({
          code: 'policy.conflict',
          message: `policy version ${version} was applied concurrently by someone else: diff against it and apply again`,
          httpStatus: 409,
          cause: err,
        });
      }
      throw err;
    }
    return true;
  }
}
