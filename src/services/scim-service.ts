import { randomUUID } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import { accountManageProblem, roleGrantProblem } from '../domain/account-admin-rules.js';
import type { AuditAction } from '../domain/audit-record.js';
import { CustosError } from '../domain/errors.js';
import { ROLES, type Principal } from '../domain/principal.js';
import type { AuditLedger } from '../ports/audit-ledger.js';
import type { Clock } from '../ports/clock.js';
import type { Updateable } from 'kysely';
import type { DatabaseSchema, IndexDb, UsersTable } from '../ports/database.js';
import { revokeCredentials } from './auth-service.js';
import { accountNamedAlike } from './account-service.js';
import type { AccessGate } from './access-gate.js';
import {
  changeWithSeparation,
  refuseForSeparationOfDuties,
  SeparationRefusal,
} from './user-admin-service.js';

export const SCIM_USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
export const SCIM_GROUP = 'urn:ietf:params:scim:schemas:core:2.0:Group';
export const SCIM_ENTERPRISE = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';
export const SCIM_LIST = 'urn:ietf:params:scim:api:messages:2.0:ListResponse';
export const SCIM_PATCH = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
export const SCIM_ERROR = 'urn:ietf:params:scim:api:messages:2.0:Error';

type Json = Record<string, unknown>;

/** A SCIM error (RFC 7644 §3.12): HTTP status plus scimType. */
export const scimError = (status: number, detail: string, scimType?: string) =>
  new CustosError({
    code: `scim.${scimType ?? 'error'}`,
    message: detail,
    httpStatus: status,
    ...(scimType ? { detail: { scimType } } : {}),
  });

// userName is case-insensitive (RFC 7643 §8.7.1): 'JSmith' is taken when 'jsmith' exists.
const userNameTaken = (userName: string, existing: string) =>
  scimError(
    409,
    existing === userName
      ? `a user named '${existing}' already exists`
      : `a user named '${existing}' already exists; userName is case-insensitive, so '${userName}' is the same name`,
    'uniqueness',
  );

interface UserRow {
  pk: number;
  username: string;
  display_name: string;
  role: string;
  active: number;
  created_at: string;
  department: string | null;
  external_id: string | null;
  email: string | null;
  given_name: string | null;
  family_name: string | null;
  updated_at: string | null;
}

const USER_COLUMNS = [
  'pk',
  'username',
  'display_name',
  'role',
  'active',
  'created_at',
  'department',
  'external_id',
  'email',
  'given_name',
  'family_name',
  'updated_at',
] as const;

/** Identity providers send booleans as JSON booleans or, Entra ID for one, as the strings "True"/"False". */
function asBoolean(v: unknown, attr: string): boolean {
  if (typeof v === 'boolean') return v;
  if (typeof v === 'string' && /^(true|false)$/i.test(v)) return v.toLowerCase() === 'true';
  throw scimError(400, `${attr} must be a boolean, got ${JSON.stringify(v)}`, 'invalidValue');
}

/** The account fields a SCIM User document sets. */
interface UserFields {
  userName: string;
  externalId: string | null;
  displayName: string;
  givenName: string | null;
  familyName: string | null;
  email: string | null;
  active: boolean;
  role: string | undefined;
  department: string | null;
}

/**
 * SCIM 2.0 (RFC 7643/7644) for the organisation's identity provider: it creates, changes, deactivates and deletes
 * accounts, and manages groups. Deactivation (`active: false`, or DELETE) takes effect at once: every token of
 * the account is revoked in the same transaction, and every request checks the account is active. Every change
 * is audited; every call needs the `administer` action.
 */
export class ScimService {
  constructor(
    private readonly index: IndexDb,
    private readonly gate: AccessGate,
    private readonly ledger: AuditLedger,
    private readonly clock: Clock,
  ) {}

  /**
   * The decision every Users and Groups call takes, alone: the routes take it before they read the body or
   * the paging parameters, so that a caller who may not administer is refused (403, recorded) whatever it
   * sent, rather than told what is wrong with its request (until 6 Dec 2026).
   */
  async authorize(principal: Principal): Promise<void> {
    await this.allow(principal);
  }

  private async allow(principal: Principal) {
    return this.gate.require(principal, 'administer', { type: 'archive' });
  }

  /**
   * Separation of duties holds for the identity provider's channel as for user administration
   * (domain/account-admin-rules.ts): a caller that is not the administrator may not create or give an account an
   * administering role, nor change or delete an account that holds one. Until 6 Dec 2026 SCIM did not check it,
   * so a sysadmin's token could create administrators, or make itself one, through /scim/v2.
   */
  private checkChange(principal: Principal, before: UserRow, role: string | undefined | null): void {
    const problem =
      accountManageProblem(principal, { name: before.username, role: before.role }) ??
      (role && role !== before.role ? roleGrantProblem(principal, role) : undefined);
    if (problem !== undefined) throw new SeparationRefusal(before.username, problem);
  }

  /** A change's transaction; a separation-of-duties refusal in it is recorded as denied and answered 403. */
  private changing<T>(
    principal: Principal,
    action: AuditAction,
    work: (trx: Kysely<DatabaseSchema>) => Promise<T>,
  ): Promise<T> {
    return changeWithSeparation(this.index.db, this.ledger, principal, action, work, 'scim');
  }

  userResource(r: UserRow, base: string): Json {
    return {
      schemas: [SCIM_USER, SCIM_ENTERPRISE],
      id: String(r.pk),
      ...(r.external_id ? { externalId: r.external_id } : {}),
      userName: r.username,
      name: {
        ...(r.family_name ? { familyName: r.family_name } : {}),
        ...(r.given_name ? { givenName: r.given_name } : {}),
        formatted: [r.given_name, r.family_name].filter(Boolean).join(' ') || r.display_name,
      },
      displayName: r.display_name,
      active: !!r.active,
      ...(r.email ? { emails: [{ value: r.email, type: 'work', primary: true }] } : {}),
      roles: [{ value: r.role, primary: true }],
      [SCIM_ENTERPRISE]: r.department ? { department: r.department } : {},
      meta: {
        resourceType: 'User',
        created: r.created_at,
        lastModified: r.updated_at ?? r.created_at,
        location: `${base}/Users/${r.pk}`,
      },
    };
  }

  private fieldsOf(doc: Json): UserFields {
    const userName = doc.userName;
    if (typeof userName !== 'string' || !/^[A-Za-z0-9._@-]{1,64}$/.test(userName))
      throw scimError(400, 'userName is required: 1-64 letters, digits and . _ @ -', 'invalidValue');
    const name = (doc.name ?? {}) as Json;
    const emails = Array.isArray(doc.emails) ? (doc.emails as Json[]) : [];
    const email = (emails.find((e) => e.primary) ?? emails[0])?.value;
    const roles = Array.isArray(doc.roles) ? (doc.roles as Json[]) : [];
    const roleValue = (roles.find((r) => r.primary) ?? roles[0])?.value;
    let role: string | undefined;
    if (roleValue !== undefined) {
      if (typeof roleValue !== 'string' || !(ROLES as readonly string[]).includes(roleValue))
        throw scimError(
          400,
          `roles: unknown role ${JSON.stringify(roleValue)} (one of ${ROLES.join(', ')})`,
          'invalidValue',
        );
      role = roleValue;
    }
    const ent = (doc[SCIM_ENTERPRISE] ?? {}) as Json;
    const str = (v: unknown) => (typeof v === 'string' && v.trim() !== '' ? v.trim() : null);
    return {
      userName,
      externalId: str(doc.externalId),
      displayName:
        str(doc.displayName) ??
        ([str(name.givenName), str(name.familyName)].filter(Boolean).join(' ') || userName),
      givenName: str(name.givenName),
      familyName: str(name.familyName),
      email: str(email),
      active: doc.active === undefined ? true : asBoolean(doc.active, 'active'),
      role,
      department: str(ent.department),
    };
  }

  private async userRow(db: Kysely<DatabaseSchema>, id: string): Promise<UserRow> {
    const row = /^\d+$/.test(id)
      ? await db
          .selectFrom('users')
          .select(USER_COLUMNS)
          .where('pk', '=', Number(id))
          .where('deleted_at', 'is', null)
          .executeTakeFirst()
      : undefined;
    if (!row) throw scimError(404, `User ${id} not found`);
    return row as UserRow;
  }

  async listUsers(
    principal: Principal,
    filter: string | undefined,
    startIndex: number,
    count: number,
    base: string,
  ) {
    await this.allow(principal);
    let q = this.index.db.selectFrom('users').select(USER_COLUMNS).where('deleted_at', 'is', null);
    if (filter !== undefined) {
      // What identity providers send to find an account before creating it (RFC 7644 §3.4.2.2).
      const m = /^\s*(userName|externalId)\s+eq\s+"((?:[^"\\]|\\.)*)"\s*$/i.exec(filter);
      if (!m)
        throw scimError(
          400,
          `unsupported filter '${filter}': use userName eq "…" or externalId eq "…"`,
          'invalidFilter',
        );
      const value = m[2]!.replace(/\\(.)/g, '$1');
      q =
        m[1]!.toLowerCase() === 'username'
          ? q.where(sql<string>`lower(username)`, '=', value.toLowerCase())
          : q.where('external_id', '=', value);
    }
    const rows = (await q.orderBy('pk').execute()) as UserRow[];
    const page = rows.slice(startIndex - 1, startIndex - 1 + count);
    return {
      schemas: [SCIM_LIST],
      totalResults: rows.length,
      startIndex,
      itemsPerPage: page.length,
      Resources: page.map((r) => this.userResource(r, base)),
    };
  }

  async getUser(principal: Principal, id: string, base: string) {
    await this.allow(principal);
    return this.userResource(await this.userRow(this.index.db, id), base);
  }

  async createUser(principal: Principal, doc: Json, base: string) {
    const decision = await this.allow(principal);
    const f = this.fieldsOf(doc);
    const problem = roleGrantProblem(principal, f.role ?? 'none');
    if (problem !== undefined)
      await refuseForSeparationOfDuties(
        this.ledger,
        principal,
        'account-create',
        f.userName,
        problem,
        'scim',
      );
    const now = this.clock.now().toISOString();
    const pk = await this.index.db.transaction().execute(async (trx) => {
      const exists = await accountNamedAlike(trx, f.userName);
      if (exists !== undefined) throw userNameTaken(f.userName, exists);
      const created = await trx
        .insertInto('users')
        .values({
          username: f.userName,
          display_name: f.displayName,
          // No role given: an account that authenticates but that no policy lets do anything.
          role: f.role ?? 'none',
          password_hash: null,
          active: f.active ? 1 : 0,
          created_at: now,
          updated_at: now,
          department: f.department,
          external_id: f.externalId,
          email: f.email,
          given_name: f.givenName,
          family_name: f.familyName,
        })
        .returning('pk')
        .executeTakeFirstOrThrow();
      await this.ledger.appendIn(trx, {
        principal,
        action: 'account-create',
        outcome: 'success',
        policy: decision.policy,
        channel: 'scim',
        objects: { user: f.userName, userPk: created.pk, role: f.role ?? 'none', active: f.active },
      });
      return created.pk;
    });
    return this.userResource(await this.userRow(this.index.db, String(pk)), base);
  }

  /** PUT: the document replaces every attribute Custos keeps. */
  async replaceUser(principal: Principal, id: string, doc: Json, base: string) {
    const decision = await this.allow(principal);
    const f = this.fieldsOf(doc);
    await this.changing(principal, 'account-change', async (trx) => {
      const before = await this.userRow(trx, id);
      this.checkChange(principal, before, f.role);
      await this.write(trx, principal, decision.policy, before, {
        username: f.userName,
        display_name: f.displayName,
        role: f.role ?? before.role,
        active: f.active ? 1 : 0,
        department: f.department,
        external_id: f.externalId,
        email: f.email,
        given_name: f.givenName,
        family_name: f.familyName,
      });
    });
    return this.userResource(await this.userRow(this.index.db, id), base);
  }

  /** PATCH (RFC 7644 §3.5.2) in the shapes Entra ID and Okta send: add/replace/remove, with or without path. */
  async patchUser(principal: Principal, id: string, doc: Json, base: string) {
    const decision = await this.allow(principal);
    if (!Array.isArray(doc.schemas) || !doc.schemas.includes(SCIM_PATCH))
      throw scimError(400, `a PATCH body needs schemas [${SCIM_PATCH}]`, 'invalidSyntax');
    const ops = doc.Operations;
    if (!Array.isArray(ops) || ops.length === 0)
      throw scimError(400, 'Operations must be a non-empty array', 'invalidSyntax');
    await this.changing(principal, 'account-change', async (trx) => {
      const before = await this.userRow(trx, id);
      const change: Updateable<UsersTable> = {};
      const set = (path: string, value: unknown, remove: boolean) => {
        const v = remove ? null : value;
        const text = (x: unknown) => (x === null ? null : typeof x === 'string' ? x : String(x));
        switch (path.toLowerCase()) {
          case 'active':
            change.active = remove ? 0 : asBoolean(value, 'active') ? 1 : 0;
            return;
          case 'username':
            if (typeof v !== 'string' || !/^[A-Za-z0-9._@-]{1,64}$/.test(v))
              throw scimError(400, 'userName is 1-64 letters, digits and . _ @ -', 'invalidValue');
            change.username = v;
            return;
          case 'displayname':
            change.display_name = text(v) ?? '';
            return;
          case 'externalid':
            change.external_id = text(v);
            return;
          case 'name.givenname':
            change.given_name = text(v);
            return;
          case 'name.familyname':
            change.family_name = text(v);
            return;
          case 'name':
            change.given_name = text((v as Json | null)?.givenName ?? null);
            change.family_name = text((v as Json | null)?.familyName ?? null);
            return;
          case 'emails':
          case 'emails[type eq "work"].value':
            change.email = Array.isArray(v) ? text((v[0] as Json)?.value ?? null) : text(v);
            return;
          case 'roles': {
            const first = Array.isArray(v) ? (v[0] as Json)?.value : v;
            if (remove) change.role = 'none';
            else if (typeof first === 'string' && (ROLES as readonly string[]).includes(first))
              change.role = first;
            else throw scimError(400, `roles: unknown role ${JSON.stringify(first)}`, 'invalidValue');
            return;
          }
          case `${SCIM_ENTERPRISE}:department`.toLowerCase():
          case 'department':
            change.department = text(v);
            return;
          default:
            throw scimError(400, `attribute '${path}' cannot be patched`, 'invalidPath');
        }
      };
      for (const op of ops as Json[]) {
        const kind = String(op.op ?? '').toLowerCase();
        if (!['add', 'replace', 'remove'].includes(kind))
          throw scimError(
            400,
            `op must be add, replace or remove, got ${JSON.stringify(op.op)}`,
            'invalidSyntax',
          );
        if (typeof op.path === 'string') set(op.path, op.value, kind === 'remove');
        else if (op.value && typeof op.value === 'object' && !Array.isArray(op.value)) {
          for (const [k, v] of Object.entries(op.value as Json)) {
            if (k === SCIM_ENTERPRISE && v && typeof v === 'object')
              for (const [ek, ev] of Object.entries(v as Json)) set(`${SCIM_ENTERPRISE}:${ek}`, ev, false);
            else set(k, v, false);
          }
        } else throw scimError(400, 'an operation without path needs an object value', 'invalidSyntax');
      }
      this.checkChange(principal, before, change.role);
      await this.write(trx, principal, decision.policy, before, change);
    });
    return this.userResource(await this.userRow(this.index.db, id), base);
  }

  /** DELETE: the account can never sign in again; its row stays, because the audit trail names it. */
  async deleteUser(principal: Principal, id: string): Promise<void> {
    const decision = await this.allow(principal);
    await this.changing(principal, 'account-change', async (trx) => {
      const before = await this.userRow(trx, id);
      this.checkChange(principal, before, undefined);
      const now = this.clock.now().toISOString();
      await trx
        .updateTable('users')
        .set({ active: 0, deleted_at: now, updated_at: now })
        .where('pk', '=', before.pk)
        .execute();
      await this.revokeTokens(trx, before.pk, now);
      await trx.deleteFrom('scim_group_members').where('user_pk', '=', before.pk).execute();
      await this.ledger.appendIn(trx, {
        principal,
        action: 'account-change',
        outcome: 'success',
        policy: decision.policy,
        channel: 'scim',
        objects: { user: before.username, userPk: before.pk },
        detail: { deleted: true, tokensRevoked: true },
      });
    });
  }

  /** Tokens and console sessions alike (ARCHITECTURE.md: deactivation revokes sessions at once). */
  private async revokeTokens(db: Kysely<DatabaseSchema>, userPk: number, now: string) {
    await revokeCredentials(db, userPk, now);
  }

  private async write(
    trx: Kysely<DatabaseSchema>,
    principal: Principal,
    policy: string,
    before: UserRow,
    change: Updateable<UsersTable>,
  ): Promise<void> {
    if (change.username !== undefined && change.username !== before.username) {
      const clash = await accountNamedAlike(trx, change.username, before.pk);
      if (clash !== undefined) throw userNameTaken(change.username, clash);
    }
    const now = this.clock.now().toISOString();
    const changed = Object.entries(change)
      .filter(([k, v]) => (before as unknown as Json)[k] !== v)
      .map(([k]) => k);
    await trx
      .updateTable('users')
      .set({ ...change, updated_at: now })
      .where('pk', '=', before.pk)
      .execute();
    const deactivated = before.active === 1 && change.active === 0;
    if (deactivated) await this.revokeTokens(trx, before.pk, now);
    await this.ledger.appendIn(trx, {
      principal,
      action: 'account-change',
      outcome: 'success',
      policy,
      channel: 'scim',
      objects: { user: before.username, userPk: before.pk },
      detail: {
        changed,
        ...(change.role !== undefined && change.role !== before.role
          ? { role: { from: before.role, to: change.role } }
          : {}),
        ...(change.active !== undefined && change.active !== before.active
          ? { active: !!change.active }
          : {}),
        ...(deactivated ? { tokensRevoked: true } : {}),
      },
    });
  }

  // Groups: kept so identity providers can push them (membership lists, display names).

  private async groupResource(db: Kysely<DatabaseSchema>, id: string, base: string): Promise<Json> {
    const g = await db.selectFrom('scim_groups').selectAll().where('id', '=', id).executeTakeFirst();
    if (!g) throw scimError(404, `Group ${id} not found`);
    const members = await db
      .selectFrom('scim_group_members as m')
      .innerJoin('users as u', 'u.pk', 'm.user_pk')
      .select(['u.pk', 'u.username'])
      .where('m.group_id', '=', id)
      .orderBy('u.pk')
      .execute();
    return {
      schemas: [SCIM_GROUP],
      id: g.id,
      ...(g.external_id ? { externalId: g.external_id } : {}),
      displayName: g.display_name,
      members: members.map((m) => ({
        value: String(m.pk),
        display: m.username,
        $ref: `${base}/Users/${m.pk}`,
      })),
      meta: {
        resourceType: 'Group',
        created: g.created_at,
        lastModified: g.updated_at,
        location: `${base}/Groups/${g.id}`,
      },
    };
  }

  private async setMembers(
    trx: Kysely<DatabaseSchema>,
    groupId: string,
    values: unknown[],
    mode: 'add' | 'remove' | 'replace',
  ) {
    const pks = values.map((m) => {
      const v = (m as Json)?.value;
      if (typeof v !== 'string' || !/^\d+$/.test(v))
        throw scimError(400, `members: bad member ${JSON.stringify(m)}`, 'invalidValue');
      return Number(v);
    });
    if (mode === 'replace')
      await trx.deleteFrom('scim_group_members').where('group_id', '=', groupId).execute();
    for (const pk of pks) {
      if (mode === 'remove') {
        await trx
          .deleteFrom('scim_group_members')
          .where('group_id', '=', groupId)
          .where('user_pk', '=', pk)
          .execute();
        continue;
      }
      const u = await trx
        .selectFrom('users')
        .select('pk')
        .where('pk', '=', pk)
        .where('deleted_at', 'is', null)
        .executeTakeFirst();
      if (!u) throw scimError(400, `members: no user ${pk}`, 'invalidValue');
      await trx
        .insertInto('scim_group_members')
        .values({ group_id: groupId, user_pk: pk })
        .onConflict((oc) => oc.columns(['group_id', 'user_pk']).doNothing())
        .execute();
    }
  }

  async listGroups(
    principal: Principal,
    filter: string | undefined,
    startIndex: number,
    count: number,
    base: string,
  ) {
    await this.allow(principal);
    let q = this.index.db.selectFrom('scim_groups').select('id');
    if (filter !== undefined) {
      const m = /^\s*displayName\s+eq\s+"((?:[^"\\]|\\.)*)"\s*$/i.exec(filter);
      if (!m) throw scimError(400, `unsupported filter '${filter}': use displayName eq "…"`, 'invalidFilter');
      q = q.where('display_name', '=', m[1]!.replace(/\\(.)/g, '$1'));
    }
    const ids = await q.orderBy('created_at').orderBy('id').execute();
    const resources = [];
    for (const { id } of ids.slice(startIndex - 1, startIndex - 1 + count))
      resources.push(await this.groupResource(this.index.db, id, base));
    return {
      schemas: [SCIM_LIST],
      totalResults: ids.length,
      startIndex,
      itemsPerPage: resources.length,
      Resources: resources,
    };
  }

  async getGroup(principal: Principal, id: string, base: string) {
    await this.allow(principal);
    return this.groupResource(this.index.db, id, base);
  }

  async createGroup(principal: Principal, doc: Json, base: string) {
    const decision = await this.allow(principal);
    if (typeof doc.displayName !== 'string' || doc.displayName.trim() === '')
      throw scimError(400, 'displayName is required', 'invalidValue');
    const displayName = doc.displayName.trim();
    const id = randomUUID();
    await this.index.db.transaction().execute(async (trx) => {
      const clash = await trx
        .selectFrom('scim_groups')
        .select('id')
        .where('display_name', '=', displayName)
        .executeTakeFirst();
      if (clash) throw scimError(409, `a group named '${displayName}' already exists`, 'uniqueness');
      const now = this.clock.now().toISOString();
      await trx
        .insertInto('scim_groups')
        .values({
          id,
          display_name: displayName,
          external_id: typeof doc.externalId === 'string' ? doc.externalId : null,
          created_at: now,
          updated_at: now,
        })
        .execute();
      if (Array.isArray(doc.members)) await this.setMembers(trx, id, doc.members, 'add');
      await this.ledger.appendIn(trx, {
        principal,
        action: 'account-change',
        outcome: 'success',
        policy: decision.policy,
        channel: 'scim',
        objects: { group: displayName, groupId: id },
        detail: { groupCreated: true, members: Array.isArray(doc.members) ? doc.members.length : 0 },
      });
    });
    return this.groupResource(this.index.db, id, base);
  }

  async patchGroup(principal: Principal, id: string, doc: Json, base: string) {
    const decision = await this.allow(principal);
    const ops = doc.Operations;
    if (!Array.isArray(ops) || ops.length === 0)
      throw scimError(400, 'Operations must be a non-empty array', 'invalidSyntax');
    await this.index.db.transaction().execute(async (trx) => {
      await this.groupResource(trx, id, base);
      for (const op of ops as Json[]) {
        const kind = String(op.op ?? '').toLowerCase();
        const path = typeof op.path === 'string' ? op.path : undefined;
        // Entra removes one member with path 'members[value eq "42"]'.
        const one = path ? /^members\[value eq "(\d+)"\]$/i.exec(path) : null;
        if (one && kind === 'remove') await this.setMembers(trx, id, [{ value: one[1] }], 'remove');
        else if (path?.toLowerCase() === 'members' || (!path && (op.value as Json)?.members)) {
          const list = (path ? op.value : (op.value as Json).members) as unknown[];
          await this.setMembers(
            trx,
            id,
            Array.isArray(list) ? list : [],
            kind === 'remove' ? 'remove' : kind === 'replace' ? 'replace' : 'add',
          );
        } else if (
          path?.toLowerCase() === 'displayname' ||
          (!path && typeof (op.value as Json)?.displayName === 'string')
        ) {
          const name = path ? op.value : (op.value as Json).displayName;
          if (typeof name !== 'string' || !name.trim())
            throw scimError(400, 'displayName must be a non-empty string', 'invalidValue');
          await trx
            .updateTable('scim_groups')
            .set({ display_name: name.trim() })
            .where('id', '=', id)
            .execute();
        } else throw scimError(400, `unsupported group operation ${JSON.stringify(op)}`, 'invalidPath');
      }
      await trx
        .updateTable('scim_groups')
        .set({ updated_at: this.clock.now().toISOString() })
        .where('id', '=', id)
        .execute();
      await this.ledger.appendIn(trx, {
        principal,
        action: 'account-change',
        outcome: 'success',
        policy: decision.policy,
        channel: 'scim',
        objects: { groupId: id },
        detail: { groupPatched: ops.length },
      });
    });
    return this.groupResource(this.index.db, id, base);
  }

  async deleteGroup(principal: Principal, id: string): Promise<void> {
    const decision = await this.allow(principal);
    await this.index.db.transaction().execute(async (trx) => {
      await this.groupResource(trx, id, '');
      await trx.deleteFrom('scim_group_members').where('group_id', '=', id).execute();
      await trx.deleteFrom('scim_groups').where('id', '=', id).execute();
      await this.ledger.appendIn(trx, {
        principal,
        action: 'account-change',
        outcome: 'success',
        policy: decision.policy,
        channel: 'scim',
        objects: { groupId: id },
        detail: { groupDeleted: true },
      });
    });
  }
}
