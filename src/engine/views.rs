//! The views every session gets over `messages_raw`, as SQL text (the
//! `.sql` files beside this module), registered in one place so local and
//! cluster sessions share them.

use datafusion::prelude::SessionContext;
use wausage_udfs::rules::RuleChoice;

use crate::engine::logs::REQUIRED;
use crate::error::Result;

const PAIRS: &str = include_str!("views/pairs.sql");
const CONVERSATIONS: &str = include_str!("views/conversations.sql");
const MESSAGE_CONVERSATIONS: &str = include_str!("views/message_conversations.sql");
const MESSAGE_PRICING: &str = include_str!("views/message_pricing.sql");

/// The views users query, with a line each for `\d`.
pub const VIEWS: [(&str, &str); 4] = [
    (
        "messages",
        "one row per distinct message_id, its log rows merged",
    ),
    ("conversations", "24-hour conversations (cbp), one row each"),
    ("message_conversations", "every message with what it opened"),
    (
        "message_pricing",
        "delivered outbound messages priced by --rules",
    ),
];

/// `messages`: one row per distinct `message_id` (spec: the earliest
/// delivery, the furthest status); extra columns keep one row's value.
fn messages_sql(extra_columns: &[String]) -> String {
    let mut extra = String::new();
    for c in extra_columns {
        let q = c.replace('"', "\"\"");
        extra.push_str(&format!(",\n       first_value(\"{q}\") AS \"{q}\""));
    }
    // Rows of one id must agree on account and customer (as they must on
    // direction): a disagreement is an error naming the id, not whichever
    // row the split of the log put first.
    format!(
        "SELECT message_id,
       CASE WHEN min(account_id) = max(account_id) THEN min(account_id)
            ELSE wa_conflict(message_id, 'account_id', min(account_id), max(account_id)) END
         AS account_id,
       '+' || CASE WHEN min(wa_customer_key(customer_id)) = max(wa_customer_key(customer_id))
                   THEN min(wa_customer_key(customer_id))
                   ELSE wa_conflict(message_id, 'customer_id', min(wa_customer_key(customer_id)),
                                    max(wa_customer_key(customer_id))) END AS customer_id,
       phone_country(min(wa_customer_key(customer_id))) AS country,
       first_value(direction) AS direction,
       first_value(message_type) AS message_type,
       first_value(category) AS category,
       CASE max(CASE status WHEN 'sent' THEN 0 WHEN 'failed' THEN 1 WHEN 'delivered' THEN 2
                            WHEN 'read' THEN 3 WHEN 'received' THEN 4 END)
            WHEN 0 THEN 'sent' WHEN 1 THEN 'failed' WHEN 2 THEN 'delivered'
            WHEN 3 THEN 'read' WHEN 4 THEN 'received' END AS status,
       min(sent_at) AS sent_at,
       min(delivered_at) AS delivered_at,
       max(entry_point) AS entry_point,
       count(*) AS log_rows{extra}
FROM messages_raw
GROUP BY message_id"
    )
}

async fn create_view(ctx: &SessionContext, name: &str, sql: &str) -> Result<()> {
    ctx.sql(&format!("CREATE OR REPLACE VIEW {name} AS {sql}"))
        .await?
        .collect()
        .await?;
    Ok(())
}

/// Registers (or replaces) every view over `messages_raw`.
pub async fn register_views(
    ctx: &SessionContext,
    rules: RuleChoice,
    service_allowance: u64,
) -> Result<()> {
    let schema = ctx.table_provider("messages_raw").await?.schema();
    let phone_numbers = if schema.field_with_name(PHONE_NUMBER_ID).is_ok() {
        PHONE_NUMBERS
    } else {
        NO_PHONE_NUMBERS
    };
    create_view(ctx, "wa_phone_numbers", phone_numbers).await?;
    register_settings_view(ctx, service_allowance).await?;
    let extra: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .filter(|n| !REQUIRED.iter().any(|(r, _)| r == n))
        .collect();
    create_view(ctx, "messages", &messages_sql(&extra)).await?;
    create_view(ctx, "conversations", CONVERSATIONS).await?;
    register_pricing_views(ctx, rules).await
}

/// The optional column that names the business phone number of a message.
pub const PHONE_NUMBER_ID: &str = "phone_number_id";

/// `wa_phone_numbers`: the business phone number of each outbound
/// free-form message, the unit of `pmp26`'s service allowance. Internal,
/// read by `cost-estimate`; only free-form messages, so that the join stays
/// small. A log without the column gives no rows, and the allowance falls
/// back to the account.
const PHONE_NUMBERS: &str = "SELECT message_id, max(phone_number_id) AS phone_number_id
FROM messages_raw
WHERE direction = 'outbound' AND message_type = 'free_form' AND phone_number_id IS NOT NULL
GROUP BY message_id";
const NO_PHONE_NUMBERS: &str = "SELECT CAST(NULL AS VARCHAR) AS message_id,
       CAST(NULL AS VARCHAR) AS phone_number_id
WHERE false";

/// `wa_settings`: the `wausage.*` settings that saved queries read, as one
/// row of literals (a view over VALUES travels in a cluster's plans, a
/// session option would not). Re-registered when a setting changes.
pub async fn register_settings_view(ctx: &SessionContext, service_allowance: u64) -> Result<()> {
    create_view(
        ctx,
        "wa_settings",
        &format!("SELECT CAST({service_allowance} AS BIGINT) AS service_allowance"),
    )
    .await
}

/// The views that depend on the rule set; re-run when it changes.
pub async fn register_pricing_views(ctx: &SessionContext, rules: RuleChoice) -> Result<()> {
    // The rule set is one of the fixed rule choice names, never user text.
    create_view(ctx, "wa_pairs", &PAIRS.replace("{rules}", rules.as_str())).await?;
    create_view(ctx, "message_conversations", MESSAGE_CONVERSATIONS).await?;
    create_view(ctx, "message_pricing", MESSAGE_PRICING).await
}
