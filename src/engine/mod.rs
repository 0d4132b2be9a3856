//! The engine every command runs on: the session (settings, the log table,
//! the views), the saved-query catalog and the one statement runner.

pub mod exec;
pub mod log_table;
pub mod logs;
pub mod parse;
pub mod pricing_analytics;
#[cfg(feature = "cluster")]
pub mod remote;
pub mod saved;
pub mod saved_functions;
pub mod session;
pub mod settings;
pub mod signals;
pub mod views;
