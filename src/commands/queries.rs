//! `wausage queries`: every saved query with its parameters.

use crate::config::Config;
use crate::engine::saved;
use crate::error::Result;

/// `wausage queries`
pub fn list(config: &Config) -> Result<()> {
    for q in saved::all(config)? {
        println!("{}", q.usage());
    }
    Ok(())
}
