import {
  createQueryId,
  type Compilable,
  type CompiledQuery,
  type Kysely,
  type QueryResult,
  type RootOperationNode,
} from 'kysely';
import type { DatabaseSchema, SqlDialectName } from '../ports/database.js';

/** A named argument's stand-in while the query is built (only then are parameters matched against it). */
const placeholder = (name: string) => `\uE000custos-arg:${name}\uE001`;
const PLACEHOLDER = /^\uE000custos-arg:(.+)\uE001$/;

interface Template {
  sql: string;
  query: RootOperationNode;
  /** Each bound parameter: the name of the argument that fills it, or a value fixed when the query was built. */
  slots: ({ arg: string } | { value: unknown })[];
}

/**
 * A query whose shape never changes, built with Kysely once per dialect and afterwards run with new arguments: the
 * per-object statements of an ingest (about 20 of them) spent ~0.4 ms of the event loop per object building and
 * compiling Kysely's immutable query trees (bench/README.md), the same trees every time.
 *
 * `build` receives `p`, whose every property is a stand-in for the argument of that name; it must use each one
 * only as a value Kysely binds as a parameter (a compared value, an inserted or updated value), never to choose
 * the query's shape, since it runs once. A stand-in is a string even where its argument is a number; each run
 * binds the argument's own value. A stand-in that ends up in the SQL text instead of among the parameters is an
 * error when the query is first built. Values written in `build` itself are fixed. An argument missing at run time
 * is an error, not an omitted column.
 */
export class PreparedQuery<A extends Record<string, unknown>, R> {
  private readonly templates = new Map<SqlDialectName, Template>();

  constructor(private readonly build: (db: Kysely<DatabaseSchema>, p: A) => Compilable<R>) {}

  private template(db: Kysely<DatabaseSchema>, dialect: SqlDialectName): Template {
    let t = this.templates.get(dialect);
    if (!t) {
      const p = new Proxy({} as A, { get: (_, name) => placeholder(String(name)) });
      const compiled = this.build(db, p).compile();
      if (compiled.sql.includes(placeholder('')[0]!))
        throw new Error(
          `prepared query: an argument was written into the SQL text, not bound: ${compiled.sql}`,
        );
      t = {
        sql: compiled.sql,
        query: compiled.query,
        slots: compiled.parameters.map((v) => {
          const m = typeof v === 'string' ? PLACEHOLDER.exec(v) : null;
          return m ? { arg: m[1]! } : { value: v };
        }),
      };
      this.templates.set(dialect, t);
    }
    return t;
  }

  /** Runs the query on `db` (a transaction or the database) with `args`. */
  async execute(db: Kysely<DatabaseSchema>, dialect: SqlDialectName, args: A): Promise<QueryResult<R>> {
    const t = this.template(db, dialect);
    const parameters = t.slots.map((s) => {
      if ('value' in s) return s.value;
      const v = args[s.arg];
      if (v === undefined) throw new Error(`prepared query: no value for argument '${s.arg}'`);
      return v;
    });
    const compiled: CompiledQuery<R> = {
      sql: t.sql,
      query: t.query,
      parameters,
      queryId: createQueryId(),
    };
    return db.executeQuery(compiled);
  }

  async rows(db: Kysely<DatabaseSchema>, dialect: SqlDialectName, args: A): Promise<R[]> {
    return (await this.execute(db, dialect, args)).rows;
  }

  async first(db: Kysely<DatabaseSchema>, dialect: SqlDialectName, args: A): Promise<R | undefined> {
    return (await this.execute(db, dialect, args)).rows[0];
  }
}
