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

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::Result;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode, PhysicalGroupBy};
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::{ExecutionPlan, Partitioning};

/// The aggregates whose partial phase only copies rows.
const ROW_BUFFERING: [&str; 3] = ["wa_conversations", "wa_conversation_count", "wa_messages"];

/// The rule; add it after DataFusion's own (`SessionStateBuilder::with_physical_optimizer_rule`).
#[derive(Debug, Default)]
pub struct SinglePhaseWindowing;

pub fn single_phase_windowing_rule() -> Arc<dyn PhysicalOptimizerRule + Send + Sync> {
    Arc::new(SinglePhaseWindowing)
}

impl PhysicalOptimizerRule for SinglePhaseWindowing {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_down(|plan| {
            Ok(match single_phase(&plan)? {
                Some(rewritten) => Transformed::yes(rewritten),
                None => Transformed::no(plan),
            })
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "SinglePhaseWindowing"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// `FinalPartitioned ← RepartitionExec(Hash) ← Partial` over windowing
/// aggregates only, as `SinglePartitioned ← RepartitionExec(Hash of the
/// grouping expressions) ← the partial's input`.
fn single_phase(plan: &Arc<dyn ExecutionPlan>) -> Result<Option<Arc<dyn ExecutionPlan>>> {
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
            .all(|a| ROW_BUFFERING.contains(&a.fun().name()));
    let group_by = partial.group_expr();
    if *partial.mode() != AggregateMode::Partial
        || !only_windowing
        || !group_by.is_single()
        || group_by.expr().is_empty()
    {
        return Ok(None);
    }
    // Computed keys (`ltrim(customer_id, '+')`) are evaluated once, as
    // columns appended after the input's: the repartition hashes them and
    // the aggregate groups by them, and the input's columns keep their
    // indices, so the aggregate's arguments stay valid.
    let input = partial.input();
    let mut columns: Vec<(Arc<dyn PhysicalExpr>, String)> = input
        .schema()
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| (Arc::new(Column::new(f.name(), i)) as _, f.name().clone()))
        .collect();
    let mut keys = vec![];
    for (n, (expr, name)) in group_by.expr().iter().enumerate() {
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
    let with_keys = Arc::new(ProjectionExec::try_new(columns, Arc::clone(input))?);
    let rows = Arc::new(RepartitionExec::try_new(
        Arc::clone(&with_keys) as _,
        Partitioning::Hash(
            keys.iter().map(|(k, _)| Arc::clone(k)).collect(),
            *partitions,
        ),
    )?);
    let single = AggregateExec::try_new(
        AggregateMode::SinglePartitioned,
        PhysicalGroupBy::new_single(keys),
        partial.aggr_expr().to_vec(),
        partial.filter_expr().to_vec(),
        rows,
        with_keys.schema(),
    )?
    .with_limit_options(last.limit_options());
    if single.schema() != last.schema() {
        return Ok(None);
    }
    Ok(Some(Arc::new(single)))
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

    async fn session(with_rule: bool) -> SessionContext {
        let mut builder = SessionStateBuilder::new()
            .with_config(SessionConfig::new().with_target_partitions(2))
            .with_default_features();
        if with_rule {
            builder = builder.with_physical_optimizer_rule(single_phase_windowing_rule());
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

    #[tokio::test]
    async fn windowing_runs_in_one_phase_with_the_same_answer() {
        let with = session(true).await;
        let plan = text(&with, &format!("EXPLAIN {COUNTS}")).await;
        assert!(plan.contains("mode=SinglePartitioned"), "{plan}");
        assert!(!plan.contains("mode=Partial"), "{plan}");
        // The computed key is evaluated once, below the repartition.
        assert_eq!(plan.matches("ltrim(customer_id@").count(), 1, "{plan}");
        let without = session(false).await;
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
}
