//! The records of `DIR/_rejects/`: a line that is not an event, or a
//! message that folds to no row, and why.

use std::path::PathBuf;

use super::buckets::{Source, Sources};
use super::webhook::Rejected;

pub enum Reject {
    Line {
        file: u32,
        line: u64,
        why: Rejected,
        text: String,
    },
    Message {
        id: String,
        reason: &'static str,
        detail: String,
        sources: Sources,
    },
}

impl Reject {
    pub fn reason(&self) -> &'static str {
        match self {
            Reject::Line { why, .. } => why.reason,
            Reject::Message { reason, .. } => reason,
        }
    }

    /// Where the record sorts: lines by file and line, then messages by
    /// their first event and id, so that a run's file does not depend on
    /// how its work was split.
    pub fn order(&self) -> (u8, Source, &str) {
        match self {
            Reject::Line { file, line, .. } => (0, (*file, *line), ""),
            Reject::Message { id, sources, .. } => {
                (1, sources.kept().first().copied().unwrap_or_default(), id)
            }
        }
    }

    pub fn json(&self, files: &[PathBuf]) -> String {
        let name = |f: u32| files[f as usize].display().to_string();
        let value = match self {
            Reject::Line {
                file,
                line,
                why,
                text,
            } => serde_json::json!({
                "file": name(*file),
                "line": line,
                "reason": why.reason,
                "detail": why.detail,
                "text": text,
            }),
            Reject::Message {
                id,
                reason,
                detail,
                sources,
            } => {
                let events: Vec<_> = sources
                    .kept()
                    .iter()
                    .map(|(f, l)| serde_json::json!({"file": name(*f), "line": l}))
                    .collect();
                let mut v = serde_json::json!({
                    "message_id": id,
                    "reason": reason,
                    "detail": detail,
                    "events": events,
                });
                if sources.more() > 0 {
                    v["more_events"] = sources.more().into();
                }
                v
            }
        };
        value.to_string()
    }
}
