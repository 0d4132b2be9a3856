//! `wausage query "SQL"` / `query -f FILE`: statements run once, for
//! scripts.

use std::path::PathBuf;

use crate::config::Config;
use crate::engine::{exec, session};
use crate::error::{Result, WaError};

pub async fn run(config: &Config, file: Option<PathBuf>, sql: Option<String>) -> Result<()> {
    let sql = match (file, sql) {
        (Some(f), None) => {
            std::fs::read_to_string(&f).map_err(|e| WaError::io(f.display().to_string(), e))?
        }
        (None, Some(s)) => s,
        _ => return Err(WaError::Usage("query takes SQL text or -f FILE".into())),
    };
    let ctx = session::build_session(config).await?;
    let destination = config.destination();
    exec::run_sql(&ctx, &sql, None, destination.results(), &mut |schema| {
        destination.sink(schema)
    })
    .await?;
    Ok(())
}
