//! The interactive SQL shell: rustyline on a terminal (history under the
//! user's config directory, multi-line statements, completion), or plain
//! line reading when stdin is piped, so `printf 'SELECT 1;' | wausage repl`
//! works. Statements run through `exec` like every other command; an error
//! prints and the session goes on.

mod helper;
mod meta;

use std::io::{BufRead, IsTerminal};

use datafusion::prelude::SessionContext;
use rustyline::error::ReadlineError;
use rustyline::history::DefaultHistory;
use rustyline::Editor;

use crate::config::{config_dir, Config};
use crate::error::Result;
pub use helper::is_complete;
use helper::ReplHelper;

/// The shell's changeable settings.
pub struct Repl {
    pub ctx: SessionContext,
    pub config: Config,
    pub timing: bool,
    /// Set by `\q`.
    pub quit: bool,
    /// Whether any statement failed (for the exit code of piped runs).
    pub failed: bool,
    /// `\\o FILE` holds one result: set by `\\o FILE`, cleared once a
    /// result is written there, so that a second result cannot silently
    /// replace the first.
    pub output_armed: bool,
    /// The signal that ended the shell, if one did.
    pub stopped: Option<crate::error::Signal>,
}

impl Repl {
    pub fn new(ctx: SessionContext, config: Config) -> Self {
        Self {
            ctx,
            timing: false,
            quit: false,
            failed: false,
            output_armed: config.output.is_some(),
            stopped: None,
            config,
        }
    }

    /// Runs one complete input: a meta-command or SQL statements.
    pub async fn handle(&mut self, input: &str) {
        let input = input.trim();
        if input.is_empty() {
            return;
        }
        let result = if input.starts_with('\\') {
            meta::run(self, input).await
        } else {
            self.run_sql(input).await
        };
        match result {
            Ok(()) => {}
            // SIGTERM or SIGHUP during a statement ends the shell too; Ctrl-C
            // only cancels the statement.
            Err(crate::error::WaError::Stopped(signal))
                if signal != crate::error::Signal::Interrupt =>
            {
                self.stopped = Some(signal);
                self.quit = true;
            }
            Err(e) => {
                self.failed = true;
                eprintln!("error: {e}");
            }
        }
    }

    pub async fn run_sql(&mut self, sql: &str) -> Result<()> {
        let config = self.config.clone();
        if let Some(path) = &config.output {
            let returns_rows = crate::engine::parse::parse_statements(sql)?
                .iter()
                .any(crate::engine::exec::returns_rows);
            if returns_rows && !self.output_armed {
                return Err(crate::error::WaError::Usage(format!(
                    "{} already holds the previous result; \\o {0} again to replace it, \\o OTHER \
                     for another file, or \\o for the screen (nothing was run)",
                    path.display()
                )));
            }
        }
        let mut wrote = false;
        let summary = crate::engine::exec::run_sql(
            &self.ctx,
            sql,
            None,
            config.destination().results(),
            &mut |schema| {
                wrote = true;
                config.destination().sink(schema)
            },
        )
        .await?;
        if wrote && config.output.is_some() {
            self.output_armed = false;
        }
        if self.timing {
            eprintln!(
                "{} {} in {:.3} s",
                summary.rows,
                if summary.rows == 1 { "row" } else { "rows" },
                summary.elapsed.as_secs_f64()
            );
        }
        Ok(())
    }

    async fn completion_names(&self) -> Vec<String> {
        let mut names: Vec<String> = wausage_udfs::function_names();
        let state = self.ctx.state();
        names.extend(state.scalar_functions().keys().cloned());
        names.extend(state.aggregate_functions().keys().cloned());
        names.extend(state.window_functions().keys().cloned());
        for table in self
            .ctx
            .catalog("datafusion")
            .and_then(|c| c.schema("public"))
            .map(|s| s.table_names())
            .unwrap_or_default()
        {
            if let Ok(t) = self.ctx.table_provider(table.as_str()).await {
                names.extend(t.schema().fields().iter().map(|f| f.name().clone()));
            }
            names.push(table);
        }
        names.sort();
        names.dedup();
        names
    }
}

/// Runs the shell until `\q`, end of input or Ctrl-D.
pub async fn run(ctx: SessionContext, config: Config) -> Result<()> {
    let mut repl = Repl::new(ctx, config);
    if !std::io::stdin().is_terminal() {
        return run_piped(&mut repl).await;
    }
    let mut editor: Editor<ReplHelper, DefaultHistory> =
        Editor::new().map_err(|e| crate::error::WaError::Usage(format!("terminal: {e}")))?;
    editor.set_helper(Some(ReplHelper {
        names: repl.completion_names().await,
    }));
    let history = config_dir().join("history.txt");
    let _ = editor.load_history(&history);
    eprintln!(
        "wausage {} — SQL over WhatsApp message logs. \\h for help, \\q to quit.",
        env!("CARGO_PKG_VERSION")
    );
    while !repl.quit {
        match editor.readline("wausage> ") {
            Ok(line) => {
                let _ = editor.add_history_entry(line.as_str());
                repl.handle(&line).await;
                if let Some(h) = editor.helper_mut() {
                    h.names = repl.completion_names().await;
                }
            }
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => {
                eprintln!("error: {e}");
                break;
            }
        }
    }
    if let Some(dir) = history.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let _ = editor.save_history(&history);
    Ok(())
}

/// Piped input: statements end at `;`, meta-commands at the end of the line.
async fn run_piped(repl: &mut Repl) -> Result<()> {
    let stdin = std::io::stdin();
    let mut buffer = String::new();
    for line in stdin.lock().lines() {
        let line = line.map_err(|e| crate::error::WaError::io("stdin", e))?;
        if buffer.trim().is_empty() && line.trim_start().starts_with('\\') {
            repl.handle(&line).await;
        } else {
            buffer.push_str(&line);
            buffer.push('\n');
            if is_complete(&buffer) {
                repl.handle(&buffer).await;
                buffer.clear();
            }
        }
        if repl.quit {
            break;
        }
    }
    if !buffer.trim().is_empty() {
        repl.handle(&buffer).await;
    }
    if let Some(signal) = repl.stopped {
        return Err(crate::error::WaError::Stopped(signal));
    }
    if repl.failed {
        return Err(crate::error::WaError::Input(
            "some statements failed (see above)".into(),
        ));
    }
    Ok(())
}
