//! A physical optimizer rule: the windowing aggregates run in one phase.
//!
//! DataFusion plans every grouped aggregate in two phases when it has more
//! than one partition: `Partial` → `RepartitionExec(Hash(keys))` →
//! `FinalPartitioned`. For the windowing aggregates the partial phase does
//! no reducing: a customer's state is all of its rows, so the partial phase
//! only turns rows into list states (`convert_to_state`, once partial
//! aggregation is skipped) that the final phase unpacks again
//! (`merge_batch`). This rule plans such an aggregate as the raw rows
//! hash-repartitioned by the grouping expressions, then one
//! `SinglePartitioned` aggregate per partition, which reads rows with
//! `update_batch` directly. Every key still meets in one partition, so the
//! answer is the same; spilling and the cluster's shuffles work as for any
//! single-phase aggregate.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::Result;
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;
use datafusion::physical_expr::expressions::{CastExpr, Column, Literal};
use datafusion::physical_expr::{PhysicalExpr, ScalarFunctionExpr};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode, PhysicalGroupBy};
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::{ExecutionPlan, Partitioning};

use crate::functions::wa_row_code::wa_row_code_udf;
use crate::functions::windowing::windowing_aggregate;
use crate::log::columns::{COMPACT_ARGS, LOG_ARGS};
use crate::optimizer::by_key_plan::{by_key_plan, with_args};
use crate::physical_plan::bucketed::BucketedWindowingExec;

/// The rule; add it after DataFusion's own (`SessionStateBuilder::with_physical_optimizer_rule`).
#[derive(Debug)]
pub struct SinglePhaseWindowing {
    /// Whether the by-key form may run as one in-process operator
    /// ([`crate::physical_plan::bucketed`]).
    in_process: bool,
}

/// The rule for a session that runs its plans itself.
pub fn single_phase_windowing_rule() -> Arc<dyn PhysicalOptimizerRule + Send + Sync> {
    Arc::new(SinglePhaseWindowing { in_process: true })
}

/// The rule for a cluster's scheduler: plans only of operators that
/// Ballista can ship to its executors.
pub fn single_phase_windowing_rule_for_cluster() -> Arc<dyn PhysicalOptimizerRule + Send + Sync> {
    Arc::new(SinglePhaseWindowing { in_process: false })
}

impl PhysicalOptimizerRule for SinglePhaseWindowing {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let plan = plan
            .transform_down(|plan| {
                Ok(match single_phase(&plan, config, self)? {
                    Some(rewritten) => Transformed::yes(rewritten),
                    None => Transformed::no(plan),
                })
            })?
            .data;
        share_the_pool(crate::optimizer::used_fields::keep_used_fields(plan)?)
    }

    fn name(&self) -> &str {
        "SinglePhaseWindowing"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// Marks every windowing operator of a plan that holds more than one as
/// sharing the memory pool, so that each holds a quarter of it rather than
/// most ([`BucketedWindowingExec::sharing_the_pool`]).
fn share_the_pool(plan: Arc<dyn ExecutionPlan>) -> Result<Arc<dyn ExecutionPlan>> {
    let mut windowings = 0;
    plan.apply(|p| {
        if p.downcast_ref::<BucketedWindowingExec>().is_some() {
            windowings += 1;
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    if windowings < 2 {
        return Ok(plan);
    }
    Ok(plan
        .transform_up(|p| {
            Ok(match p.downcast_ref::<BucketedWindowingExec>() {
                Some(w) => Transformed::yes(Arc::new(w.sharing_the_pool()?) as _),
                None => Transformed::no(p),
            })
        })?
        .data)
}

/// `FinalPartitioned ← RepartitionExec(Hash) ← Partial` over windowing
/// aggregates only, as `SinglePartitioned ← RepartitionExec(Hash of the
/// grouping expressions) ← the partial's input`.
fn single_phase(
    plan: &Arc<dyn ExecutionPlan>,
    config: &ConfigOptions,
    rule: &SinglePhaseWindowing,
) -> Result<Option<Arc<dyn ExecutionPlan>>> {
    let Some(last) = plan.downcast_ref::<AggregateExec>() else {
        return Ok(None);
    };
    if *last.mode() != AggregateMode::FinalPartitioned {
        return Ok(None);
    }
    let Some(shuffle) = last.input().downcast_ref::<RepartitionExec>() else {
        return Ok(None);
    };
    let Partitioning::Hash(_, partitions) = shuffle.partitioning() else {
        return Ok(None);
    };
    let Some(partial) = shuffle.input().downcast_ref::<AggregateExec>() else {
        return Ok(None);
    };
    let only_windowing = !partial.aggr_expr().is_empty()
        && partial
            .aggr_expr()
            .iter()
            .all(|a| windowing_aggregate(a.fun().name()).is_some());
    let group_by = partial.group_expr();
    if *partial.mode() != AggregateMode::Partial
        || !only_windowing
        || !group_by.is_single()
        || group_by.expr().is_empty()
    {
        return Ok(None);
    }
    let (with_keys, keys, aggr_expr, compact) = match compact_rows(partial, config)? {
        Some((projection, keys, aggr_expr)) => (projection, keys, aggr_expr, true),
        None => {
            let (projection, keys) = all_columns_and_keys(partial)?;
            (projection, keys, partial.aggr_expr().to_vec(), false)
        }
    };
    if compact {
        let by_key = by_key_plan(
            Arc::clone(&with_keys) as _,
            &keys,
            &aggr_expr,
            &last.schema(),
            *partitions,
            config,
            rule.in_process,
        )?;
        if let Some(plan) = by_key.filter(|p| p.schema() == last.schema()) {
            return Ok(Some(plan));
        }
    }
    let rows = Arc::new(RepartitionExec::try_new(
        Arc::clone(&with_keys) as _,
        Partitioning::Hash(
            keys.iter().map(|(k, _)| Arc::clone(k)).collect(),
            *partitions,
        ),
    )?);
    let (input, viewed) = match keys_as_views(Arc::clone(&rows) as _, &keys)? {
        Some(viewed) => (viewed, true),
        None => (rows as _, false),
    };
    let single: Arc<dyn ExecutionPlan> = Arc::new(
        AggregateExec::try_new(
            AggregateMode::SinglePartitioned,
            PhysicalGroupBy::new_single(keys),
            aggr_expr,
            partial.filter_expr().to_vec(),
            Arc::clone(&input),
            input.schema(),
        )?
        .with_limit_options(last.limit_options()),
    );
    let planned = if viewed {
        cast_back(single, &last.schema())?
    } else {
        single
    };
    if planned.schema() != last.schema() {
        return Ok(None);
    }
    Ok(Some(planned))
}

/// Plain-string grouping keys as `Utf8View`, after the repartition. A
/// cluster's scans read plain strings (Ballista keeps views out of its
/// shuffle files), and grouping compares plain strings with a `memcmp`
/// each, where the view of a short key (an account, a phone number) is
/// compared as one integer. `None`
/// when no key is a plain string (a local session reads views already).
fn keys_as_views(
    rows: Arc<dyn ExecutionPlan>,
    keys: &[Key],
) -> Result<Option<Arc<dyn ExecutionPlan>>> {
    let schema = rows.schema();
    let plain = |i: usize| {
        matches!(
            schema.field(i).data_type(),
            DataType::Utf8 | DataType::LargeUtf8
        )
    };
    let plain_keys: Vec<usize> = keys
        .iter()
        .filter_map(|(k, _)| k.downcast_ref::<Column>().map(Column::index))
        .filter(|&i| plain(i))
        .collect();
    if plain_keys.is_empty() {
        return Ok(None);
    }
    let columns = schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let column: Arc<dyn PhysicalExpr> = Arc::new(Column::new(f.name(), i));
            let expr: Arc<dyn PhysicalExpr> = if plain_keys.contains(&i) {
                Arc::new(CastExpr::new(column, DataType::Utf8View, None))
            } else {
                column
            };
            (expr, f.name().clone())
        })
        .collect::<Vec<_>>();
    Ok(Some(Arc::new(ProjectionExec::try_new(columns, rows)?)))
}

/// The aggregate's output with its keys cast back to the types the rest of
/// the plan was planned with.
fn cast_back(aggregate: Arc<dyn ExecutionPlan>, want: &Schema) -> Result<Arc<dyn ExecutionPlan>> {
    let have = aggregate.schema();
    let columns = have
        .fields()
        .iter()
        .zip(want.fields())
        .enumerate()
        .map(|(i, (h, w))| {
            let column: Arc<dyn PhysicalExpr> = Arc::new(Column::new(h.name(), i));
            let expr: Arc<dyn PhysicalExpr> = if h.data_type() == w.data_type() {
                column
            } else {
                Arc::new(CastExpr::new(column, w.data_type().clone(), None))
            };
            (expr, w.name().clone())
        })
        .collect::<Vec<_>>();
    Ok(Arc::new(ProjectionExec::try_new(columns, aggregate)?))
}

/// A grouping key and its output name.
type Key = (Arc<dyn PhysicalExpr>, String);

/// The general form: the input's columns, then the computed keys
/// (`ltrim(customer_id, '+')`), evaluated once: the repartition hashes them
/// and the aggregate groups by them, and the input's columns keep their
/// indices, so the aggregates' arguments stay valid.
fn all_columns_and_keys(partial: &AggregateExec) -> Result<(Arc<ProjectionExec>, Vec<Key>)> {
    let input = partial.input();
    let mut columns: Vec<(Arc<dyn PhysicalExpr>, String)> = input
        .schema()
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| (Arc::new(Column::new(f.name(), i)) as _, f.name().clone()))
        .collect();
    let mut keys = vec![];
    for (n, (expr, name)) in partial.group_expr().expr().iter().enumerate() {
        let key: Arc<dyn PhysicalExpr> = if expr.downcast_ref::<Column>().is_some() {
            Arc::clone(expr)
        } else {
            let alias = format!("__wa_group_key_{n}");
            let key = Arc::new(Column::new(&alias, columns.len()));
            columns.push((Arc::clone(expr), alias));
            key
        };
        keys.push((key, name.clone()));
    }
    let projection = ProjectionExec::try_new(columns, Arc::clone(input))?;
    Ok((Arc::new(projection), keys))
}

/// `CAST(x AS Utf8View)` of a plain string `x`, as `x`. A cluster's scans
/// read plain strings: the classifier reads them in place, and a message id
/// travels through the shuffle files as offsets and bytes, smaller than
/// views; the aggregate views it again in place.
fn without_view_cast(expr: &Arc<dyn PhysicalExpr>, schema: &Schema) -> Arc<dyn PhysicalExpr> {
    if let Some(cast) = expr.downcast_ref::<CastExpr>() {
        let plain = matches!(
            cast.expr().data_type(schema),
            Ok(DataType::Utf8 | DataType::LargeUtf8)
        );
        if plain && cast.cast_type() == &DataType::Utf8View {
            return Arc::clone(cast.expr());
        }
    }
    Arc::clone(expr)
}

/// The compact form, when every aggregate reads the same eight log columns
/// (plus constants): only the keys, the message id, the row's code
/// (`wa_row_code`), `sent_at` and `delivered_at` are repartitioned, and the
/// aggregates take `(message_id, code, sent_at, delivered_at, ...)`. Five
/// string columns become one byte, classified once, before the rows are
/// copied between partitions (or written to a cluster's shuffle files).
#[allow(clippy::type_complexity)]
fn compact_rows(
    partial: &AggregateExec,
    config: &ConfigOptions,
) -> Result<
    Option<(
        Arc<ProjectionExec>,
        Vec<Key>,
        Vec<Arc<AggregateFunctionExpr>>,
    )>,
> {
    let aggregates = partial.aggr_expr();
    let log_args: Vec<Arc<dyn PhysicalExpr>> = aggregates[0].expressions();
    if log_args.len() < LOG_ARGS.len() || partial.filter_expr().iter().any(Option::is_some) {
        return Ok(None);
    }
    let log_args = log_args[..LOG_ARGS.len()].to_vec();
    for a in aggregates {
        let args = a.expressions();
        let same_log_args = args.len() >= LOG_ARGS.len()
            && args[..LOG_ARGS.len()]
                .iter()
                .zip(&log_args)
                .all(|(x, y)| x.as_ref() == y.as_ref());
        let constants = args[LOG_ARGS.len().min(args.len())..]
            .iter()
            .all(|e| e.downcast_ref::<Literal>().is_some());
        if !same_log_args || !constants || a.is_distinct() || !a.order_bys().is_empty() {
            return Ok(None);
        }
    }
    let input = partial.input();
    let mut columns: Vec<(Arc<dyn PhysicalExpr>, String)> = vec![];
    let mut keys = vec![];
    for (n, (expr, name)) in partial.group_expr().expr().iter().enumerate() {
        let alias = format!("__wa_group_key_{n}");
        keys.push((Arc::new(Column::new(&alias, n)) as _, name.clone()));
        columns.push((Arc::clone(expr), alias));
    }
    let plain_args: Vec<_> = log_args
        .iter()
        .map(|a| without_view_cast(a, &input.schema()))
        .collect();
    let code = ScalarFunctionExpr::try_new(
        wa_row_code_udf(),
        plain_args.clone(),
        &input.schema(),
        Arc::new(config.clone()),
    )?;
    let first = columns.len();
    columns.push((Arc::clone(&plain_args[0]), "__wa_message_id".into()));
    columns.push((Arc::new(code), "__wa_row_code".into()));
    columns.push((Arc::clone(&log_args[5]), "__wa_sent_at".into()));
    columns.push((Arc::clone(&log_args[6]), "__wa_delivered_at".into()));
    let projection = Arc::new(ProjectionExec::try_new(columns, Arc::clone(input))?);
    let schema = projection.schema();
    let mut aggr_expr = vec![];
    for a in aggregates {
        let mut args: Vec<Arc<dyn PhysicalExpr>> = (0..COMPACT_ARGS)
            .map(|i| {
                let name = schema.field(first + i).name();
                Arc::new(Column::new(name, first + i)) as _
            })
            .collect();
        args.extend(a.expressions().into_iter().skip(LOG_ARGS.len()));
        aggr_expr.push(with_args(a, args, &schema)?);
    }
    Ok(Some((projection, keys, aggr_expr)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::execution::session_state::SessionStateBuilder;
    use datafusion::prelude::{SessionConfig, SessionContext};

    const LOG: &str = "CREATE TABLE log AS SELECT * FROM (VALUES
        ('m1', 'a', '+62811', 'outbound', 'template', 'marketing', 'delivered',
         TIMESTAMP '2024-02-01T00:00:00Z', TIMESTAMP '2024-02-01T00:00:00Z', CAST(NULL AS VARCHAR)),
        ('m2', 'a', '62811', 'outbound', 'template', 'utility', 'delivered',
         TIMESTAMP '2024-02-01T01:00:00Z', TIMESTAMP '2024-02-01T01:00:00Z', NULL),
        ('m3', 'a', '+62812', 'outbound', 'template', 'marketing', 'delivered',
         TIMESTAMP '2024-02-01T00:00:00Z', TIMESTAMP '2024-02-01T00:00:00Z', NULL),
        ('m4', 'a', '+62812', 'outbound', 'template', 'marketing', 'delivered',
         TIMESTAMP '2024-02-02T01:00:00Z', TIMESTAMP '2024-02-02T01:00:00Z', NULL))
        AS t(message_id, account_id, customer_id, direction, message_type, category,
             status, sent_at, delivered_at, entry_point)";

    const COUNTS: &str = "SELECT ltrim(customer_id, '+') AS c,
        wa_conversation_count(message_id, direction, message_type, category, status,
                              sent_at, delivered_at, entry_point) AS n
        FROM log GROUP BY ltrim(customer_id, '+') ORDER BY c";
    const COUNTS_BY_LENGTH: &str = "SELECT ltrim(customer_id, '+') AS c, length(message_id) AS l,
        wa_conversation_count(message_id, direction, message_type, category, status,
                              sent_at, delivered_at, entry_point) AS n
        FROM log GROUP BY ltrim(customer_id, '+'), length(message_id) ORDER BY c, l";

    async fn session(with_rule: bool) -> SessionContext {
        session_with(with_rule.then(single_phase_windowing_rule)).await
    }

    async fn session_with(
        rule: Option<Arc<dyn PhysicalOptimizerRule + Send + Sync>>,
    ) -> SessionContext {
        let mut builder = SessionStateBuilder::new()
            .with_config(SessionConfig::new().with_target_partitions(2))
            .with_default_features();
        if let Some(rule) = rule {
            builder = builder.with_physical_optimizer_rule(rule);
        }
        let ctx = SessionContext::new_with_state(builder.build());
        crate::register_all(&ctx);
        ctx.sql(LOG).await.unwrap().collect().await.unwrap();
        ctx
    }

    async fn text(ctx: &SessionContext, sql: &str) -> String {
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        datafusion::arrow::util::pretty::pretty_format_batches(&batches)
            .unwrap()
            .to_string()
    }

    /// Each windowing operator's `shares_pool`, in plan order.
    async fn pool_sharing(ctx: &SessionContext, sql: &str) -> Vec<bool> {
        let plan = ctx
            .sql(sql)
            .await
            .unwrap()
            .create_physical_plan()
            .await
            .unwrap();
        let mut shares = vec![];
        plan.apply(|p| {
            if let Some(w) = p.downcast_ref::<BucketedWindowingExec>() {
                shares.push(w.shares_pool());
            }
            Ok(TreeNodeRecursion::Continue)
        })
        .unwrap();
        shares
    }

    #[tokio::test]
    async fn windowings_of_one_plan_share_the_pool_and_one_alone_does_not() {
        let ctx = session(true).await;
        assert_eq!(pool_sharing(&ctx, COUNTS).await, [false]);
        let two = format!(
            "SELECT a.c, a.n, b.n FROM ({COUNTS}) a JOIN ({}) b ON a.c = b.c",
            COUNTS.replace("wa_conversation_count", "wa_conversations")
        );
        assert_eq!(pool_sharing(&ctx, &two).await, [true, true]);
    }

    #[tokio::test]
    async fn windowing_runs_in_one_phase_with_the_same_answer() {
        let with = session(true).await;
        let plan = text(&with, &format!("EXPLAIN {COUNTS}")).await;
        // In one process the by-key form's repartition and aggregate are
        // one operator.
        assert!(plan.contains("BucketedWindowingExec"), "{plan}");
        assert!(!plan.contains("mode=Partial"), "{plan}");
        // The computed key is evaluated once, below the repartition.
        assert_eq!(plan.matches("ltrim(customer_id@").count(), 1, "{plan}");
        // Rows are classified before the repartition: one byte travels
        // instead of the five string columns.
        assert_eq!(plan.matches("wa_row_code(").count(), 1, "{plan}");
        assert!(plan.contains("as __wa_row_code"), "{plan}");
        let classify = &plan[plan.find("wa_row_code(").unwrap()..];
        let classify = &classify[..classify.find(" as __wa_row_code").unwrap()];
        assert!(!classify.contains("Utf8View"), "{classify}");
        // The log's plain strings travel as they are, not cast to views;
        // the plain-string key is grouped as a view after the repartition
        // and cast back above the aggregate.
        assert!(plan.contains("message_id@0 as __wa_message_id"), "{plan}");
        // One string key: the by-key form, coded and bucketed by the
        // operator.
        assert!(
            plan.contains("BucketedWindowingExec: keys=[__wa_group_key_0@0]"),
            "{plan}"
        );
        assert!(!plan.contains("wa_key_bucket"), "{plan}");
        let without = session(false).await;
        // A key that is not a string: grouped by the keys themselves, the
        // plain-string key as a view after the repartition, cast back above.
        let plan = text(&with, &format!("EXPLAIN {COUNTS_BY_LENGTH}")).await;
        assert!(!plan.contains("wa_key_bucket"), "{plan}");
        assert!(
            plan.contains("CAST(__wa_group_key_0@0 AS Utf8View) as __wa_group_key_0"),
            "{plan}"
        );
        assert!(plan.contains("AS Utf8) as ltrim(log.customer_id"), "{plan}");
        assert_eq!(
            text(&with, COUNTS_BY_LENGTH).await,
            text(&without, COUNTS_BY_LENGTH).await
        );
        let two_phase = text(&without, &format!("EXPLAIN {COUNTS}")).await;
        assert!(two_phase.contains("mode=Partial"), "{two_phase}");
        let answer = text(&with, COUNTS).await;
        assert_eq!(answer, text(&without, COUNTS).await);
        assert!(
            answer.contains("62811 | 2") && answer.contains("62812 | 2"),
            "{answer}"
        );
    }

    #[tokio::test]
    async fn other_aggregates_keep_two_phases() {
        let ctx = session(true).await;
        let plan = text(
            &ctx,
            "EXPLAIN SELECT account_id, count(*) FROM log GROUP BY account_id",
        )
        .await;
        assert!(plan.contains("mode=Partial"), "{plan}");
    }

    /// Rows of many accounts and customers, keys of every shape: phone
    /// numbers with and without '+', a leading zero, a letter, NULL.
    const MIXED_LOG: &str = "CREATE TABLE mixed AS SELECT
        'm' || CAST(i AS VARCHAR) AS message_id,
        'acct-' || CAST(i % 3 AS VARCHAR) AS account_id,
        CASE i % 9 WHEN 0 THEN NULL WHEN 1 THEN 'cust-x' WHEN 2 THEN '0' || CAST(i % 5 AS VARCHAR)
             WHEN 3 THEN CAST(i % 5 AS VARCHAR) ELSE '+62811' || CAST(i % 7 AS VARCHAR) END AS customer_id,
        CASE WHEN i % 4 = 0 THEN 'inbound' ELSE 'outbound' END AS direction,
        CASE WHEN i % 4 = 3 THEN 'free_form' ELSE 'template' END AS message_type,
        CASE i % 3 WHEN 0 THEN 'marketing' WHEN 1 THEN 'utility' ELSE 'authentication' END AS category,
        CASE WHEN i % 4 = 0 THEN 'received' ELSE 'delivered' END AS status,
        to_timestamp(1706745600 + i * 2220) AS sent_at,
        to_timestamp(1706745600 + i * 2220) AS delivered_at,
        CAST(NULL AS VARCHAR) AS entry_point
        FROM generate_series(0, 599) AS t(i)";

    #[tokio::test]
    async fn two_keys_group_by_bucket_and_split_by_key_with_the_same_answer() {
        let query = "SELECT account_id, ltrim(customer_id, '+') AS c,
            wa_conversation_count(message_id, direction, message_type, category, status,
                                  sent_at, delivered_at, entry_point) AS n,
            wa_messages(message_id, direction, message_type, category, status,
                        sent_at, delivered_at, entry_point) AS m
            FROM mixed GROUP BY account_id, ltrim(customer_id, '+') ORDER BY 1, 2";
        let with = session(true).await;
        let without = session(false).await;
        for ctx in [&with, &without] {
            ctx.sql(MIXED_LOG).await.unwrap().collect().await.unwrap();
        }
        let plan = text(&with, &format!("EXPLAIN {query}")).await;
        // `ltrim` is not `wa_customer_key`: the operator codes its result.
        assert!(
            plan.contains("BucketedWindowingExec: keys=[__wa_group_key_0@0, __wa_group_key_1@1]"),
            "{plan}"
        );
        assert!(plan.contains("ltrim(customer_id@"), "{plan}");
        assert!(
            !plan.contains("RepartitionExec: partitioning=Hash([__wa_bucket@"),
            "{plan}"
        );
        assert!(plan.contains("UnnestExec"), "{plan}");
        let answer = text(&with, query).await;
        assert_eq!(answer, text(&without, query).await);
        // A cluster's plan: the bucket repartitioned (the shuffle), then the
        // operator per partition.
        let cluster = session_with(Some(single_phase_windowing_rule_for_cluster())).await;
        cluster
            .sql(MIXED_LOG)
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let plan = text(&cluster, &format!("EXPLAIN {query}")).await;
        assert!(plan.contains("Hash([__wa_bucket@"), "{plan}");
        assert!(plan.contains(", per_input"), "{plan}");
        assert!(!plan.contains("mode=SinglePartitioned"), "{plan}");
        assert_eq!(text(&cluster, query).await, answer);
        // Every (account, customer) is one row, the NULL customer too.
        let rows = answer.lines().filter(|l| l.starts_with("| acct-")).count();
        let distinct = text(
            &without,
            "SELECT count(*) AS pairs FROM (SELECT DISTINCT account_id, ltrim(customer_id, '+') FROM mixed)",
        )
        .await;
        assert!(
            distinct.contains(&format!("| {rows} ")),
            "{rows} rows, {distinct}"
        );
        assert!(answer.contains("| cust-x "), "{answer}");
    }
}
