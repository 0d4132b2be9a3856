//! Runs a query with a UNION as several cluster jobs, unions in the client.
//!
//! Ballista 55.0.0 can return wrong rows for a UNION planned as one
//! distributed job: each task of a union stage is meant to run one
//! branch's partition, but branches whose partitions cannot be narrowed
//! (a single-partition shuffle reader, a placeholder row) run in every task,
//! and rows of other branches go missing (a per-account count UNION ALL a
//! total comes back as one account and four totals; see
//! apache/datafusion-ballista#2067 and #2184 for the family of bugs). An
//! exact answer matters more than one job, so a plan that contains a UNION
//! is split: every union-free subtree under it runs on the cluster as its
//! own job, and the unions, and whatever is above them, run in the client
//! over those results (in the reports they are a few aggregated rows).
//! Plans without a UNION go to the cluster whole, unchanged.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::{DFSchemaRef, Result};
use datafusion::execution::context::QueryPlanner;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::{
    Expr, Extension, LogicalPlan, UserDefinedLogicalNode, UserDefinedLogicalNodeCore,
};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_planner::{DefaultPhysicalPlanner, ExtensionPlanner, PhysicalPlanner};
use datafusion::prelude::SessionContext;

/// Replaces a Ballista session's query planner with one that splits unions.
pub fn install(remote: SessionContext) -> SessionContext {
    let state = remote.state();
    let cluster = Arc::clone(state.query_planner());
    let state = SessionStateBuilder::new_from_existing(state)
        .with_query_planner(Arc::new(SplitUnionPlanner { cluster }))
        .build();
    SessionContext::new_with_state(state)
}

type Planner = Arc<dyn QueryPlanner + Send + Sync>;

struct SplitUnionPlanner {
    /// Ballista's planner: turns a whole plan into one cluster job.
    cluster: Planner,
}

impl fmt::Debug for SplitUnionPlanner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SplitUnionPlanner")
    }
}

#[async_trait]
impl QueryPlanner for SplitUnionPlanner {
    async fn create_physical_plan(
        &self,
        plan: &LogicalPlan,
        session: &dyn Session,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if !contains_union(plan)? {
            return self.cluster.create_physical_plan(plan, session).await;
        }
        let split = split(plan.clone())?;
        let planner =
            DefaultPhysicalPlanner::with_extension_planners(vec![Arc::new(ClusterJobPlanner {
                cluster: Arc::clone(&self.cluster),
            })]);
        planner.create_physical_plan(&split, session).await
    }
}

/// Whether `plan` (or a subquery in it) has a UNION.
pub(crate) fn contains_union(plan: &LogicalPlan) -> Result<bool> {
    let mut found = false;
    plan.apply_with_subqueries(|p| {
        found |= matches!(p, LogicalPlan::Union(_));
        Ok(if found {
            datafusion::common::tree_node::TreeNodeRecursion::Stop
        } else {
            datafusion::common::tree_node::TreeNodeRecursion::Continue
        })
    })?;
    Ok(found)
}

/// Keeps the nodes that have a UNION at or below them in the client and
/// turns every union-free subtree into one cluster job.
pub(crate) fn split(plan: LogicalPlan) -> Result<LogicalPlan> {
    if !contains_union(&plan)? {
        return Ok(LogicalPlan::Extension(Extension {
            node: Arc::new(ClusterJob { plan }),
        }));
    }
    let inputs = plan
        .inputs()
        .into_iter()
        .cloned()
        .map(split)
        .collect::<Result<Vec<_>>>()?;
    plan.with_new_exprs(plan.expressions(), inputs)
}

/// A subtree that runs on the cluster as one job; a leaf of the client's plan.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Hash)]
pub(crate) struct ClusterJob {
    pub plan: LogicalPlan,
}

impl UserDefinedLogicalNodeCore for ClusterJob {
    fn name(&self) -> &str {
        "ClusterJob"
    }

    fn inputs(&self) -> Vec<&LogicalPlan> {
        vec![]
    }

    fn schema(&self) -> &DFSchemaRef {
        self.plan.schema()
    }

    fn expressions(&self) -> Vec<Expr> {
        vec![]
    }

    fn fmt_for_explain(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "ClusterJob")
    }

    fn with_exprs_and_inputs(&self, _exprs: Vec<Expr>, _inputs: Vec<LogicalPlan>) -> Result<Self> {
        Ok(self.clone())
    }
}

struct ClusterJobPlanner {
    cluster: Planner,
}

#[async_trait]
impl ExtensionPlanner for ClusterJobPlanner {
    async fn plan_extension(
        &self,
        _planner: &dyn PhysicalPlanner,
        node: &dyn UserDefinedLogicalNode,
        _logical_inputs: &[&LogicalPlan],
        _physical_inputs: &[Arc<dyn ExecutionPlan>],
        session: &dyn Session,
        _planning_ctx: &PhysicalPlanningContext,
    ) -> Result<Option<Arc<dyn ExecutionPlan>>> {
        match node.as_any().downcast_ref::<ClusterJob>() {
            Some(job) => Ok(Some(
                self.cluster
                    .create_physical_plan(&job.plan, session)
                    .await?,
            )),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::common::tree_node::TreeNode;

    async fn optimized(sql: &str) -> LogicalPlan {
        let ctx = SessionContext::new();
        ctx.sql("CREATE TABLE t (a VARCHAR, n BIGINT) AS VALUES ('x', 1), ('y', 2)")
            .await
            .unwrap();
        ctx.sql(sql).await.unwrap().into_optimized_plan().unwrap()
    }

    fn jobs(plan: &LogicalPlan) -> usize {
        let mut n = 0;
        plan.apply(|p| {
            if let LogicalPlan::Extension(e) = p {
                assert!(e.node.as_any().is::<ClusterJob>());
                n += 1;
            }
            Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
        })
        .unwrap();
        n
    }

    #[tokio::test]
    async fn a_plan_without_union_is_one_job() {
        let plan = optimized("SELECT a, sum(n) FROM t GROUP BY a ORDER BY a").await;
        assert!(!contains_union(&plan).unwrap());
        let split = split(plan).unwrap();
        assert!(matches!(split, LogicalPlan::Extension(_)));
        assert_eq!(jobs(&split), 1);
    }

    #[tokio::test]
    async fn each_union_branch_is_its_own_job_and_the_union_stays_local() {
        let plan = optimized(
            "SELECT a, sum(n) AS s FROM t GROUP BY a \
             UNION ALL SELECT NULL, sum(n) FROM t ORDER BY 1 NULLS LAST",
        )
        .await;
        assert!(contains_union(&plan).unwrap());
        let split = split(plan.clone()).unwrap();
        assert_eq!(jobs(&split), 2);
        assert_eq!(split.schema(), plan.schema());
        let mut unions = 0;
        split
            .apply(|p| {
                unions += matches!(p, LogicalPlan::Union(_)) as usize;
                Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
            })
            .unwrap();
        assert_eq!(unions, 1);
    }
}
