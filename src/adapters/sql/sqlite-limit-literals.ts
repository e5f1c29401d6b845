import {
  LimitNode,
  OffsetNode,
  SelectQueryNode,
  ValueNode,
  type KyselyPlugin,
  type OperationNode,
  type PluginTransformQueryArgs,
  type PluginTransformResultArgs,
  type QueryResult,
  type RootOperationNode,
  type UnknownRow,
} from 'kysely';

/** An integer LIMIT or OFFSET value bound as a parameter, as the same value written into the SQL text. */
function literal(node: OperationNode): ValueNode | undefined {
  if (!ValueNode.is(node) || node.immediate) return undefined;
  return Number.isSafeInteger(node.value) && (node.value as number) >= 0
    ? ValueNode.createImmediate(node.value)
    : undefined;
}

/**
 * Writes a query's integer LIMIT and OFFSET into its SQL text instead of binding them (`limit 1`, not `limit ?`).
 *
 * SQLite plans a query with the value of a bound LIMIT, and so marks the prepared statement to be compiled again
 * whenever that parameter is bound anew: a statement with `limit ?` is re-prepared on every run, however often the
 * connection's statement cache hands it out. Two of them ran for every stored object (the audit ledger's head,
 * whether any orders are known) and one for every QIDO-RS page; re-preparing was 15 % of the SQLite time on the
 * event loop during STOW-RS. With the value in the text each distinct query is prepared once and then reused
 * (sqlite-group-commit.ts keeps 500). Only the outer select is rewritten (the index's queries put no LIMIT in a
 * subquery), and only non-negative safe integers: anything else stays a parameter for SQLite to judge.
 */
export const sqliteLimitLiterals: KyselyPlugin = {
  transformQuery({ node }: PluginTransformQueryArgs): RootOperationNode {
    if (!SelectQueryNode.is(node)) return node;
    const limit = node.limit && literal(node.limit.limit);
    const offset = node.offset && literal(node.offset.offset);
    if (!limit && !offset) return node;
    return Object.freeze({
      ...node,
      ...(limit ? { limit: LimitNode.create(limit) } : {}),
      ...(offset ? { offset: OffsetNode.create(offset) } : {}),
    });
  },
  transformResult({ result }: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    return Promise.resolve(result);
  },
};
