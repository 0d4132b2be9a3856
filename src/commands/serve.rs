//! `wausage serve`: reads the token and TLS files, builds the session
//! `query` would, and serves it over Flight SQL.

use crate::cli::ServeArgs;
use crate::config::Config;
use crate::engine::session;
use crate::error::Result;
use crate::serve::{self, Limits, ServeOptions, Tls, Token};

pub async fn run(config: &Config, args: &ServeArgs) -> Result<()> {
    let token = args
        .token_file
        .as_deref()
        .map(Token::from_file)
        .transpose()?;
    // The loopback rule is a usage error, found before anything is built.
    serve::check_bind(&args.bind, token.as_ref())?;
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(Tls::from_files(cert, key)?),
        _ => None,
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let limits = Limits {
        max_concurrent_queries: args.max_concurrent_queries.unwrap_or(cores),
        query_timeout: args.query_timeout,
    };
    let ctx = session::build_session(config).await?;
    serve::run(
        ctx,
        ServeOptions {
            addr: args.bind,
            token,
            tls,
            limits,
        },
    )
    .await
}
