//! The Flight SQL service over one wausage session: statements and
//! prepared statements (planned read-only, parameters bound as
//! placeholders), the catalog calls, and results streamed as Arrow
//! batches under the server's limits: at most `--max-concurrent-queries`
//! run at once (the rest wait), each cancelled past `--query-timeout` or
//! when its client goes away (dropping the stream drops the query and its
//! memory, all of it counted in the session's one pool).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use arrow::datatypes::{DataType, Field, Schema};
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_server::FlightService;
use arrow_flight::sql::metadata::{SqlInfoData, XdbcTypeInfoData};
use arrow_flight::sql::server::{FlightSqlService, PeekableFlightDataStream};
use arrow_flight::sql::{
    ActionClosePreparedStatementRequest, ActionCreatePreparedStatementRequest,
    ActionCreatePreparedStatementResult, Any, CommandGetCatalogs, CommandGetDbSchemas,
    CommandGetSqlInfo, CommandGetTableTypes, CommandGetTables, CommandGetXdbcTypeInfo,
    CommandPreparedStatementQuery, CommandStatementQuery, DoPutPreparedStatementResult,
    ProstMessageExt, SqlInfo, TicketStatementQuery,
};
use arrow_flight::{
    FlightData, FlightDescriptor, FlightEndpoint, FlightInfo, HandshakeRequest, HandshakeResponse,
    IpcMessage, SchemaAsIpc, Ticket,
};
use datafusion::arrow::ipc::writer::IpcWriteOptions;
use datafusion::common::ParamValues;
use datafusion::error::DataFusionError;
use datafusion::execution::session_state::SessionState;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::{DataFrame, SessionContext};
use futures::{Stream, StreamExt, TryStreamExt};
use prost::Message;
use tokio::sync::Semaphore;
use tonic::metadata::MetadataValue;
use tonic::{Request, Response, Status, Streaming};

use super::auth::Token;
use super::catalog;
use super::prepared::{row_values, PreparedStatements};
use super::query_log::{Outcome, QueryLog};
use super::read_only;
use super::wire::{to_wire, wire_schema};
use crate::engine::saved_functions::{Described, StatementParams};

type ResultStream = Pin<Box<dyn Stream<Item = Result<FlightData, Status>> + Send + 'static>>;

/// The server's limits and credentials.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_concurrent_queries: usize,
    pub query_timeout: Option<Duration>,
}

pub struct WausageFlightSql {
    ctx: SessionContext,
    token: Option<Token>,
    permits: Arc<Semaphore>,
    query_timeout: Option<Duration>,
    prepared: PreparedStatements,
    sql_info: SqlInfoData,
    types: XdbcTypeInfoData,
}

impl WausageFlightSql {
    pub fn new(ctx: SessionContext, token: Option<Token>, limits: &Limits) -> Self {
        Self {
            ctx,
            token,
            permits: Arc::new(Semaphore::new(limits.max_concurrent_queries)),
            query_timeout: limits.query_timeout,
            prepared: PreparedStatements::default(),
            sql_info: catalog::sql_info(),
            types: catalog::xdbc_type_info(),
        }
    }

    /// Plans one read-only statement, its table functions and
    /// placeholders bound to `params`; `Describing` plans it only for its
    /// columns.
    async fn plan(
        &self,
        sql: &str,
        params: Option<&StatementParams>,
    ) -> Result<(SessionState, LogicalPlan), Status> {
        let statement =
            read_only::check(sql).map_err(|r| Status::invalid_argument(r.to_string()))?;
        // A copy of the session's state, for this statement alone.
        let mut state = self.ctx.state();
        if let Some(p) = params {
            state.config_mut().set_extension(Arc::new(p.clone()));
        }
        let plan = state
            .statement_to_plan(statement)
            .await
            .map_err(query_status)?;
        read_only::sql_options()
            .verify_plan(&plan)
            .map_err(|e| Status::invalid_argument(format!("wausage serve is read-only: {e}")))?;
        let plan = match params {
            Some(StatementParams::Bound(p)) => bind(plan, p).map_err(query_status)?,
            _ => plan,
        };
        Ok((state, plan))
    }

    /// [`Self::plan`] for a call that announces a statement's columns
    /// (GetFlightInfo, a new prepared statement): a statement refused or
    /// failing here never reaches DoGet, so its log line is written here.
    async fn plan_logged(
        &self,
        sql: &str,
        params: Option<&StatementParams>,
        client: Option<SocketAddr>,
    ) -> Result<LogicalPlan, Status> {
        match self.plan(sql, params).await {
            Ok((_, plan)) => Ok(plan),
            Err(status) => {
                let mut log = QueryLog::new(client, sql);
                log.outcome = Some(Outcome::Failed(status.message().to_string()));
                Err(status)
            }
        }
    }

    /// Runs a statement and streams its batches, under the limits.
    async fn results(
        &self,
        sql: String,
        params: Option<ParamValues>,
        client: Option<SocketAddr>,
    ) -> Result<Response<ResultStream>, Status> {
        let mut log = QueryLog::new(client, &sql);
        // A refused statement does not wait behind running queries.
        if let Err(refused) = read_only::check(&sql) {
            let status = Status::invalid_argument(refused.to_string());
            log.outcome = Some(Outcome::Failed(status.message().to_string()));
            return Err(status);
        }
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| Status::unavailable("the server is stopping"))?;
        let deadline = self.query_timeout.map(|t| tokio::time::Instant::now() + t);
        let started = async {
            let params = params.map(StatementParams::Bound);
            let (state, plan) = self.plan(&sql, params.as_ref()).await?;
            let df = DataFrame::new(state, plan);
            let schema = wire_schema(df.schema().as_arrow());
            let stream = df.execute_stream().await.map_err(query_status)?;
            Ok::<_, Status>((schema, stream))
        };
        let started = match deadline {
            Some(d) => match tokio::time::timeout_at(d, started).await {
                Ok(r) => r,
                Err(_) => Err(timed_out(self.query_timeout)),
            },
            None => started.await,
        };
        let (schema, batches) = match started {
            Ok(s) => s,
            Err(status) => {
                log.outcome = Some(if status.code() == tonic::Code::DeadlineExceeded {
                    Outcome::TimedOut
                } else {
                    Outcome::Failed(status.message().to_string())
                });
                return Err(status);
            }
        };
        let rows = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counted = Arc::clone(&rows);
        let wire = Arc::clone(&schema);
        let batches = batches
            .map_err(|e| FlightError::ExternalError(Box::new(e)))
            .and_then(move |b| {
                counted.fetch_add(b.num_rows() as u64, std::sync::atomic::Ordering::Relaxed);
                futures::future::ready(to_wire(&b, &wire).map_err(FlightError::from))
            });
        let encoded = FlightDataEncoderBuilder::new()
            .with_schema(schema)
            .build(batches);
        let timeout = self.query_timeout;
        let state = ResultState {
            encoded: Box::pin(encoded),
            log,
            rows,
            deadline,
            _permit: permit,
            done: false,
        };
        let stream = futures::stream::unfold(state, move |mut s| async move {
            if s.done {
                return None;
            }
            let next = match s.deadline {
                Some(d) => match tokio::time::timeout_at(d, s.encoded.next()).await {
                    Ok(n) => n,
                    Err(_) => {
                        s.finish(Outcome::TimedOut);
                        return Some((Err(timed_out(timeout)), s));
                    }
                },
                None => s.encoded.next().await,
            };
            match next {
                Some(Ok(data)) => {
                    s.log.bytes += (data.data_header.len() + data.data_body.len()) as u64;
                    Some((Ok(data), s))
                }
                Some(Err(e)) => {
                    let status = flight_status(e);
                    s.finish(Outcome::Failed(status.message().to_string()));
                    Some((Err(status), s))
                }
                None => {
                    s.finish(Outcome::Finished);
                    None
                }
            }
        });
        Ok(Response::new(Box::pin(stream)))
    }

    /// A FlightInfo whose ticket is the command itself (catalog calls,
    /// prepared statements): DoGet is handed the command back.
    fn command_info(
        &self,
        schema: &Schema,
        command: &impl ProstMessageExt,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.info(
            schema,
            command.as_any().encode_to_vec(),
            request.into_inner(),
        )
    }

    /// A FlightInfo whose one endpoint's ticket is `ticket`.
    fn info(
        &self,
        schema: &Schema,
        ticket: Vec<u8>,
        descriptor: FlightDescriptor,
    ) -> Result<Response<FlightInfo>, Status> {
        let endpoint = FlightEndpoint::new().with_ticket(Ticket::new(ticket));
        let info = FlightInfo::new()
            .try_with_schema(schema)
            .map_err(|e| Status::internal(format!("cannot encode the schema: {e}")))?
            .with_endpoint(endpoint)
            .with_descriptor(descriptor);
        Ok(Response::new(info))
    }
}

/// A result stream's state: the encoder, the query's log line, and the
/// permit it runs under (released when the stream is dropped).
struct ResultState {
    encoded: Pin<Box<dyn Stream<Item = Result<FlightData, FlightError>> + Send>>,
    log: QueryLog,
    rows: Arc<std::sync::atomic::AtomicU64>,
    deadline: Option<tokio::time::Instant>,
    _permit: tokio::sync::OwnedSemaphorePermit,
    done: bool,
}

impl ResultState {
    fn finish(&mut self, outcome: Outcome) {
        self.done = true;
        self.log.outcome = Some(outcome);
    }
}

impl Drop for ResultState {
    fn drop(&mut self) {
        self.log.rows = self.rows.load(std::sync::atomic::Ordering::Relaxed);
    }
}

/// Binds positional values, cast to the types the plan infers for its
/// placeholders (a client's Int64 for an Int32 comparison, say).
fn bind(plan: LogicalPlan, params: &ParamValues) -> datafusion::error::Result<LogicalPlan> {
    let ParamValues::List(values) = params else {
        return plan.with_param_values(params.clone());
    };
    let types = plan.get_parameter_types()?;
    let mut cast = Vec::with_capacity(values.len());
    for (i, v) in values.iter().enumerate() {
        let value = match types.get(&format!("${}", i + 1)) {
            Some(Some(t)) if v.value.data_type() != *t => v.value.cast_to(t)?,
            _ => v.value.clone(),
        };
        cast.push(value);
    }
    plan.with_param_values(ParamValues::from(cast))
}

/// A placeholder schema: `$1`, `$2`, … with the types the plan infers
/// (Utf8 where it infers none), and those saved-query arguments took
/// (`saved_arguments`), typed by their parameters.
fn parameter_schema(
    plan: &LogicalPlan,
    saved_arguments: BTreeMap<String, DataType>,
) -> datafusion::error::Result<Schema> {
    let mut types: BTreeMap<String, DataType> = saved_arguments;
    for (name, t) in plan.get_parameter_types()? {
        types.entry(name).or_insert(t.unwrap_or(DataType::Utf8));
    }
    let mut names: Vec<&String> = types.keys().collect();
    names.sort_by_key(|n| (n.len(), n.to_string()));
    Ok(Schema::new(
        names
            .into_iter()
            .map(|n| Field::new(n.as_str(), types[n].clone(), true))
            .collect::<Vec<_>>(),
    ))
}

fn schema_bytes(schema: &Schema) -> Result<bytes::Bytes, Status> {
    let IpcMessage(bytes) = SchemaAsIpc::new(schema, &IpcWriteOptions::default())
        .try_into()
        .map_err(|e: arrow::error::ArrowError| Status::internal(e.to_string()))?;
    Ok(bytes)
}

fn timed_out(limit: Option<Duration>) -> Status {
    let secs = limit.map_or(0.0, |d| d.as_secs_f64());
    Status::deadline_exceeded(format!(
        "the query ran past the server's --query-timeout of {secs} s and was cancelled"
    ))
}

/// A query's error for its client: bad SQL and plan errors are the
/// client's, a query past the memory pool is out of resources.
fn query_status(e: DataFusionError) -> Status {
    let message = e.to_string();
    match e.find_root() {
        DataFusionError::SQL(..)
        | DataFusionError::Plan(_)
        | DataFusionError::SchemaError(..)
        | DataFusionError::NotImplemented(_) => Status::invalid_argument(message),
        DataFusionError::ResourcesExhausted(_) => Status::resource_exhausted(message),
        _ => Status::internal(message),
    }
}

fn flight_status(e: FlightError) -> Status {
    match e {
        FlightError::ExternalError(inner) => match inner.downcast::<DataFusionError>() {
            Ok(df) => query_status(*df),
            Err(other) => Status::internal(other.to_string()),
        },
        other => Status::from(other),
    }
}

/// A metadata call's one batch as a result stream.
fn batch_stream(
    batch: Result<arrow::record_batch::RecordBatch, Status>,
) -> Result<Response<ResultStream>, Status> {
    let batch = batch?;
    let schema = batch.schema();
    let stream = FlightDataEncoderBuilder::new()
        .with_schema(schema)
        .build(futures::stream::once(async { Ok(batch) }))
        .map_err(Status::from);
    Ok(Response::new(Box::pin(stream)))
}

fn decode_params(batches: Vec<arrow::record_batch::RecordBatch>) -> Result<ParamValues, Status> {
    row_values(&batches).map_err(Status::invalid_argument)
}

#[tonic::async_trait]
impl FlightSqlService for WausageFlightSql {
    type FlightService = WausageFlightSql;

    /// Basic auth (already checked by the interceptor) is answered with
    /// the bearer token, which clients send on later calls.
    async fn do_handshake(
        &self,
        _request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<
        Response<Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send>>>,
        Status,
    > {
        let payload = self
            .token
            .as_ref()
            .map(|t| bytes::Bytes::from(t.as_str().as_bytes().to_vec()))
            .unwrap_or_default();
        let output = futures::stream::iter(vec![Ok(HandshakeResponse {
            protocol_version: 0,
            payload,
        })]);
        let mut response: Response<Pin<Box<dyn Stream<Item = _> + Send>>> =
            Response::new(Box::pin(output));
        if let Some(token) = &self.token {
            let value = MetadataValue::try_from(format!("Bearer {}", token.as_str()))
                .map_err(|_| Status::internal("the token is not a header value"))?;
            response.metadata_mut().insert("authorization", value);
        }
        Ok(response)
    }

    async fn get_flight_info_statement(
        &self,
        query: CommandStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let client = request.remote_addr();
        let plan = self.plan_logged(&query.query, None, client).await?;
        let schema = wire_schema(plan.schema().as_arrow());
        let ticket = TicketStatementQuery {
            statement_handle: query.query.into_bytes().into(),
        };
        self.info(
            &schema,
            ticket.as_any().encode_to_vec(),
            request.into_inner(),
        )
    }

    async fn do_get_statement(
        &self,
        ticket: TicketStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let sql = String::from_utf8(ticket.statement_handle.to_vec())
            .map_err(|_| Status::invalid_argument("the ticket is not SQL text"))?;
        self.results(sql, None, request.remote_addr()).await
    }

    async fn do_action_create_prepared_statement(
        &self,
        query: ActionCreatePreparedStatementRequest,
        request: Request<arrow_flight::Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        let described = Described::default();
        let describing = StatementParams::Describing(described.clone());
        let plan = self
            .plan_logged(&query.query, Some(&describing), request.remote_addr())
            .await?;
        let dataset = schema_bytes(&wire_schema(plan.schema().as_arrow()))?;
        let parameters = parameter_schema(&plan, described.placeholders()).map_err(query_status)?;
        let parameters = schema_bytes(&parameters)?;
        let handle = self.prepared.open(query.query);
        Ok(ActionCreatePreparedStatementResult {
            prepared_statement_handle: handle.into(),
            dataset_schema: dataset,
            parameter_schema: parameters,
        })
    }

    async fn do_put_prepared_statement_query(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<DoPutPreparedStatementResult, Status> {
        let stream = request.into_inner().map_err(FlightError::from);
        let batches: Vec<_> =
            arrow_flight::decode::FlightRecordBatchStream::new_from_flight_data(stream)
                .try_collect()
                .await
                .map_err(|e| Status::invalid_argument(format!("bad parameter batch: {e}")))?;
        let params = decode_params(batches)?;
        if !self.prepared.bind(&query.prepared_statement_handle, params) {
            return Err(unknown_handle());
        }
        Ok(DoPutPreparedStatementResult {
            prepared_statement_handle: Some(query.prepared_statement_handle),
        })
    }

    async fn get_flight_info_prepared_statement(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let prepared = self
            .prepared
            .get(&query.prepared_statement_handle)
            .ok_or_else(unknown_handle)?;
        let params = prepared.params.map(StatementParams::Bound);
        let plan = self
            .plan_logged(&prepared.sql, params.as_ref(), request.remote_addr())
            .await?;
        let schema = wire_schema(plan.schema().as_arrow());
        self.command_info(&schema, &query, request)
    }

    async fn do_get_prepared_statement(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let prepared = self
            .prepared
            .get(&query.prepared_statement_handle)
            .ok_or_else(unknown_handle)?;
        self.results(prepared.sql, prepared.params, request.remote_addr())
            .await
    }

    async fn do_action_close_prepared_statement(
        &self,
        query: ActionClosePreparedStatementRequest,
        _request: Request<arrow_flight::Action>,
    ) -> Result<(), Status> {
        self.prepared.close(&query.prepared_statement_handle);
        Ok(())
    }

    async fn get_flight_info_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder().schema();
        self.command_info(&schema, &query, request)
    }

    async fn do_get_catalogs(
        &self,
        query: CommandGetCatalogs,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        batch_stream(catalog::catalogs(&self.ctx, query))
    }

    async fn get_flight_info_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder().schema();
        self.command_info(&schema, &query, request)
    }

    async fn do_get_schemas(
        &self,
        query: CommandGetDbSchemas,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        batch_stream(catalog::schemas(&self.ctx, query))
    }

    async fn get_flight_info_tables(
        &self,
        query: CommandGetTables,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder().schema();
        self.command_info(&schema, &query, request)
    }

    async fn do_get_tables(
        &self,
        query: CommandGetTables,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        batch_stream(catalog::tables(&self.ctx, query).await)
    }

    async fn get_flight_info_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder().schema();
        self.command_info(&schema, &query, request)
    }

    async fn do_get_table_types(
        &self,
        query: CommandGetTableTypes,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        batch_stream(catalog::table_types(query))
    }

    async fn get_flight_info_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder(&self.sql_info).schema();
        self.command_info(&schema, &query, request)
    }

    async fn do_get_sql_info(
        &self,
        query: CommandGetSqlInfo,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        batch_stream(
            query
                .into_builder(&self.sql_info)
                .build()
                .map_err(Status::from),
        )
    }

    async fn get_flight_info_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder(&self.types).schema();
        self.command_info(&schema, &query, request)
    }

    async fn do_get_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        batch_stream(
            query
                .into_builder(&self.types)
                .build()
                .map_err(Status::from),
        )
    }

    async fn do_get_fallback(
        &self,
        _request: Request<Ticket>,
        message: Any,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        Err(Status::unimplemented(format!(
            "wausage serve does not answer {}",
            message.type_url
        )))
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}

fn unknown_handle() -> Status {
    Status::not_found("no such prepared statement (closed, or from an earlier run of the server)")
}
