//! One SQL function per file, each with its documentation (`\\h NAME`).

pub mod docs;
pub mod literal;
pub mod phone_country;
pub mod wa_conflict;
pub mod wa_conversation_count;
pub mod wa_conversations;
pub mod wa_customer_key;
pub mod wa_key_bucket;
pub mod wa_label;
pub mod wa_messages;
pub mod wa_row_code;
pub mod windowing;
