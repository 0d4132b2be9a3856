//! The physical codec of the scheduler and the executors: Ballista's own,
//! plus wausage's windowing operator (`BucketedWindowingExec`), so that the
//! stage after the windowing's shuffle runs that operator on the executors,
//! spilling within each one's memory pool, instead of DataFusion's
//! aggregate.
//!
//! The operator travels as a tag and a postcard record of its parts; its
//! aggregates' arguments as DataFusion's protobuf physical expressions, and
//! the aggregates by name, rebuilt from the executor's function registry.

use std::sync::Arc;

use ballista_core::serde::BallistaPhysicalExtensionCodec;
use datafusion::common::{exec_datafusion_err, Result};
use datafusion::execution::{FunctionRegistry, TaskContext};
use datafusion::physical_expr::aggregate::{AggregateExprBuilder, AggregateFunctionExpr};
use datafusion::physical_plan::ExecutionPlan;
use datafusion_proto::physical_plan::from_proto::parse_physical_expr;
use datafusion_proto::physical_plan::to_proto::serialize_physical_expr;
use datafusion_proto::physical_plan::{PhysicalExtensionCodec, PhysicalProtoConverterExtension};
use datafusion_proto::protobuf::PhysicalExprNode;
use prost::Message;
use serde::{Deserialize, Serialize};
use wausage_udfs::physical_plan::bucketed::{
    BucketedWindowingExec, CodedKeys, Routing, WindowingParts,
};

/// Leads an encoded windowing operator. Ballista's nodes are protobuf
/// messages, whose first byte is a field tag: never these bytes.
const TAG: &[u8] = b"\0wausage.BucketedWindowingExec.1\0";

/// Ballista's codec, and the windowing operator.
#[derive(Debug, Default)]
pub struct WausageCodec {
    ballista: BallistaPhysicalExtensionCodec,
}

#[derive(Serialize, Deserialize)]
struct WireOperator {
    keys: usize,
    plus_stripped: bool,
    per_input: bool,
    partitions: usize,
    fields_read: Vec<Option<Vec<String>>>,
    flat: bool,
    aggregates: Vec<WireAggregate>,
}

#[derive(Serialize, Deserialize)]
struct WireAggregate {
    function: String,
    name: String,
    human_display: Option<String>,
    /// Each argument, a protobuf `PhysicalExprNode`.
    args: Vec<Vec<u8>>,
}

fn codec_error(e: impl std::fmt::Display) -> datafusion::common::DataFusionError {
    exec_datafusion_err!("BucketedWindowingExec on the wire: {e}")
}

impl WausageCodec {
    fn encode_windowing(&self, exec: &BucketedWindowingExec, buf: &mut Vec<u8>) -> Result<()> {
        let (parts, aggr_expr) = exec.parts();
        let mut aggregates = Vec::with_capacity(aggr_expr.len());
        for a in aggr_expr {
            let args = a
                .expressions()
                .iter()
                .map(|e| Ok(serialize_physical_expr(e, self)?.encode_to_vec()))
                .collect::<Result<Vec<_>>>()?;
            aggregates.push(WireAggregate {
                function: a.fun().name().to_string(),
                name: a.name().to_string(),
                human_display: a.human_display().map(str::to_string),
                args,
            });
        }
        let wire = WireOperator {
            keys: parts.keys.keys,
            plus_stripped: parts.keys.plus_stripped,
            per_input: parts.routing == Routing::PerInput,
            partitions: parts.partitions,
            fields_read: parts.fields_read,
            flat: parts.flat,
            aggregates,
        };
        buf.extend_from_slice(TAG);
        *buf = postcard::to_extend(&wire, std::mem::take(buf)).map_err(codec_error)?;
        Ok(())
    }

    fn decode_windowing(
        &self,
        bytes: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        ctx: &TaskContext,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let wire: WireOperator = postcard::from_bytes(bytes).map_err(codec_error)?;
        let [input] = inputs else {
            return Err(codec_error(format!("{} inputs, not one", inputs.len())));
        };
        let schema = input.schema();
        let mut aggr_expr: Vec<Arc<AggregateFunctionExpr>> = vec![];
        for a in wire.aggregates {
            let args = a
                .args
                .iter()
                .map(|bytes| {
                    let node = PhysicalExprNode::decode(bytes.as_slice()).map_err(codec_error)?;
                    parse_physical_expr(&node, ctx, &schema, self)
                })
                .collect::<Result<Vec<_>>>()?;
            let mut builder = AggregateExprBuilder::new(ctx.udaf(&a.function)?, args)
                .schema(Arc::clone(&schema))
                .alias(a.name);
            if let Some(display) = a.human_display {
                builder = builder.human_display(display);
            }
            aggr_expr.push(Arc::new(builder.build()?));
        }
        let parts = WindowingParts {
            keys: CodedKeys {
                keys: wire.keys,
                plus_stripped: wire.plus_stripped,
            },
            routing: if wire.per_input {
                Routing::PerInput
            } else {
                Routing::ByBucket
            },
            partitions: wire.partitions,
            fields_read: wire.fields_read,
            flat: wire.flat,
        };
        Ok(Arc::new(BucketedWindowingExec::from_parts(
            Arc::clone(input),
            parts,
            aggr_expr,
        )?))
    }
}

impl PhysicalExtensionCodec for WausageCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        ctx: &TaskContext,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        match buf.strip_prefix(TAG) {
            Some(bytes) => self.decode_windowing(bytes, inputs, ctx),
            None => self.ballista.try_decode(buf, inputs, ctx, proto_converter),
        }
    }

    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<()> {
        match node.downcast_ref::<BucketedWindowingExec>() {
            Some(exec) => self.encode_windowing(exec, buf),
            None => self.ballista.try_encode(node, buf, proto_converter),
        }
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::util::pretty::pretty_format_batches;
    use datafusion::physical_plan::{collect, displayable};
    use datafusion::prelude::SessionContext;
    use datafusion_proto::bytes::{
        physical_plan_from_bytes_with_extension_codec, physical_plan_to_bytes_with_extension_codec,
    };

    use super::*;
    use crate::cluster::server::{cluster_config, cluster_state};

    /// 2,000 rows of two accounts and 29 customers, ids past the inline 16 bytes.
    const LOG: &str = "CREATE TABLE log AS SELECT
        'wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI5QTND' || CAST(i AS VARCHAR) AS message_id,
        'acct-' || CAST(i % 2 AS VARCHAR) AS account_id,
        '+6281' || CAST(i % 29 AS VARCHAR) AS customer_id,
        CASE WHEN i % 4 = 0 THEN 'inbound' ELSE 'outbound' END AS direction,
        CASE WHEN i % 4 = 3 THEN 'free_form' ELSE 'template' END AS message_type,
        CASE i % 3 WHEN 0 THEN 'marketing' WHEN 1 THEN 'utility' ELSE 'authentication' END AS category,
        CASE WHEN i % 4 = 0 THEN 'received' ELSE 'delivered' END AS status,
        to_timestamp(1706745600 + i * 620) AS sent_at,
        to_timestamp(1706745600 + i * 620 + 5) AS delivered_at,
        CAST(NULL AS VARCHAR) AS entry_point
        FROM generate_series(0, 1999) AS t(i)";

    /// A scheduler's plan of a windowing query has the windowing operator
    /// after the shuffle; the codec carries it to an executor whole: the
    /// same plan, text for text, and the same answer.
    #[tokio::test]
    async fn the_windowing_operator_crosses_the_wire_whole() {
        let config = cluster_config().with_target_partitions(3);
        let ctx = SessionContext::new_with_state(cluster_state(config).unwrap());
        ctx.sql(LOG).await.unwrap().collect().await.unwrap();
        let sql = "SELECT account_id, wa_customer_key(customer_id) AS c,
            wa_conversation_count(message_id, direction, message_type, category, status,
                                  sent_at, delivered_at, entry_point) AS n
            FROM log GROUP BY 1, 2 ORDER BY 1, 2";
        let plan = ctx
            .sql(sql)
            .await
            .unwrap()
            .create_physical_plan()
            .await
            .unwrap();
        let text = displayable(plan.as_ref()).indent(false).to_string();
        assert!(
            text.contains("BucketedWindowingExec") && text.contains("per_input"),
            "{text}"
        );

        let codec = WausageCodec::default();
        let bytes = physical_plan_to_bytes_with_extension_codec(Arc::clone(&plan), &codec).unwrap();
        let task = ctx.task_ctx();
        let decoded = physical_plan_from_bytes_with_extension_codec(&bytes, &task, &codec).unwrap();
        assert_eq!(
            displayable(decoded.as_ref()).indent(false).to_string(),
            text
        );
        let answer = |batches: Vec<datafusion::arrow::array::RecordBatch>| {
            pretty_format_batches(&batches).unwrap().to_string()
        };
        let want = answer(collect(plan, ctx.task_ctx()).await.unwrap());
        assert!(want.contains("| acct-1     | 628128 |"), "{want}");
        assert_eq!(answer(collect(decoded, task).await.unwrap()), want);
    }

    #[test]
    fn other_nodes_go_to_ballista_s_codec() {
        let codec = WausageCodec::default();
        let e = codec
            .try_decode(
                b"not a plan",
                &[],
                &SessionContext::new().task_ctx(),
                &datafusion_proto::physical_plan::DefaultPhysicalProtoConverter {},
            )
            .unwrap_err();
        assert!(e.to_string().contains("BallistaPhysicalPlanNode"), "{e}");
    }
}
