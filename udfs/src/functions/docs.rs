//! Shared pieces of the functions' documentation (`\h`, `SHOW FUNCTIONS`).

use datafusion::logical_expr::{DocSection, Documentation, DocumentationBuilder};

use crate::log::columns::LOG_ARGS;

pub const SECTION: DocSection = DocSection {
    include: true,
    label: "WhatsApp billing functions",
    description: Some("Conversation windowing and pricing by conversation-rules.md"),
};

/// A builder with the eight log arguments described.
pub fn with_log_args(description: &str, syntax: &str) -> DocumentationBuilder {
    let mut b = Documentation::builder(SECTION, description, syntax);
    let explain = [
        "the platform's message id; rows with the same id are one message",
        "'outbound' or 'inbound'",
        "'template' or 'free_form'",
        "template category: 'marketing', 'utility' or 'authentication'",
        "'sent', 'delivered', 'read', 'failed' or 'received'",
        "when the business sent it, or when an inbound message was received",
        "when it was delivered; NULL if never",
        "inbound only: 'ctwa_ad' or 'page_cta' for a free entry point",
    ];
    for (name, text) in LOG_ARGS.iter().zip(explain) {
        b = b.with_argument(*name, text);
    }
    b
}
