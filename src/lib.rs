//! wausage: SQL analytics over WhatsApp Business message logs.
//!
//! The binary (`main.rs`) is a thin shell over these modules; integration
//! tests drive the binary itself.

pub mod alert;
pub mod app;
pub mod bench;
pub mod cli;
#[cfg(feature = "cluster")]
pub mod cluster;
pub mod config;
pub mod error;
pub mod exec;
pub mod generate;
pub mod log_table;
pub mod logs;
pub mod output;
pub mod repl;
pub mod report;
pub mod saved;
pub mod session;
pub mod views;
