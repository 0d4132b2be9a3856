//! wausage: SQL analytics over WhatsApp Business message logs.
//!
//! The binary (`main.rs`) is a thin shell over these modules, whose imports
//! run one way: `app` (the dispatcher) → `commands` → `engine` and
//! `output` → `config`, `error`. Integration tests drive the binary itself.

pub mod app;
pub mod cli;
#[cfg(feature = "cluster")]
pub mod cluster;
pub mod commands;
pub mod config;
pub mod engine;
pub mod error;
pub mod ingest;
pub mod memory;
pub mod output;
pub mod serve;
pub mod storage;
