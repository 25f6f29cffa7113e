//! Keyset pagination. A page is read with `WHERE (sort key) > (last key seen)
//! ORDER BY sort key LIMIT n+1`, so page 1,000 costs what page 1 costs and a
//! row inserted meanwhile neither repeats nor hides another row.
//!
//! The page token carries the last key seen, bound to the query it came from
//! (resource, filter, order_by) and signed with HMAC-SHA256: a token from
//! another query, or one that was altered or forged, is INVALID_ARGUMENT.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use itsm_platform::ApiError;
use itsm_query::{SqlBuilder, SqlValue};
use sha2::{Digest, Sha256};

/// Page size when the caller asks for none.
pub const DEFAULT_PAGE_SIZE: usize = 50;
/// Largest page served; larger requests are served this many (AIP-158).
pub const MAX_PAGE_SIZE: usize = 1000;

const VERSION: u8 = 1;
const FINGERPRINT_LEN: usize = 8;
const MAC_LEN: usize = 16;

/// The page size to serve for a request's `page_size`.
pub fn page_size(requested: i32) -> Result<usize, ApiError> {
    match requested {
        0 => Ok(DEFAULT_PAGE_SIZE),
        n if n < 0 => Err(ApiError::invalid_field("page_size", "must not be negative")),
        n => Ok(usize::try_from(n)
            .unwrap_or(MAX_PAGE_SIZE)
            .min(MAX_PAGE_SIZE)),
    }
}

/// Issues and checks page tokens with one secret. Every replica of a service
/// must use the same secret, or a token issued by one is refused by another.
#[derive(Clone)]
pub struct PageTokens {
    key: [u8; 32],
}

impl std::fmt::Debug for PageTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PageTokens([redacted])")
    }
}

impl PageTokens {
    pub fn new(secret: &[u8]) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(b"itsm page tokens v1\0");
        hasher.update(secret);
        Self {
            key: hasher.finalize().into(),
        }
    }

    fn mac(&self) -> Hmac<Sha256> {
        // HMAC takes keys of any length; this cannot fail.
        <Hmac<Sha256> as Mac>::new_from_slice(&self.key).unwrap_or_else(|_| unreachable!())
    }

    /// The page tokens of a service's database, signed with a key made on
    /// first use and kept in that database (`platform_state`), so every
    /// replica serving the database shares it and a token issued by one is
    /// honoured by another.
    pub async fn of_database(db: &crate::Db) -> Result<Self, crate::StoreError> {
        const KEY: &str = "page_token_key";
        let fresh = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let mut conn = db.pool().acquire().await?;
        // First writer wins; a concurrent first use reads the winner's key.
        sqlx::query("INSERT INTO platform_state (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
            .bind(KEY)
            .bind(&fresh)
            .execute(&mut *conn)
            .await?;
        let secret = crate::outbox::get_state(&mut conn, KEY)
            .await?
            .unwrap_or(fresh);
        Ok(Self::new(secret.as_bytes()))
    }

    /// A token for the page after the row whose sort key is `after`, for `query`
    /// (anything that identifies the list: resource, filter and order_by).
    pub fn encode(&self, query: &str, after: &[SqlValue]) -> String {
        let mut bytes = vec![VERSION];
        bytes.extend_from_slice(&fingerprint(query));
        for value in after {
            encode_value(&mut bytes, value);
        }
        let mut mac = self.mac();
        mac.update(&bytes);
        bytes.extend_from_slice(&mac.finalize().into_bytes()[..MAC_LEN]);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The sort key a token carries, if it was issued by us for this query.
    pub fn decode(&self, token: &str, query: &str) -> Result<Vec<SqlValue>, ApiError> {
        let invalid = || {
            ApiError::invalid_field(
                "page_token",
                "is not a token this list issued for this filter and order_by; \
                 start again without a page_token",
            )
        };
        let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
        if bytes.len() < 1 + FINGERPRINT_LEN + MAC_LEN || bytes[0] != VERSION {
            return Err(invalid());
        }
        let (body, tag) = bytes.split_at(bytes.len() - MAC_LEN);
        let mut mac = self.mac();
        mac.update(body);
        mac.verify_truncated_left(tag).map_err(|_| invalid())?;
        if body[1..=FINGERPRINT_LEN] != fingerprint(query) {
            return Err(invalid());
        }
        let mut rest = &body[1 + FINGERPRINT_LEN..];
        let mut values = Vec::new();
        while !rest.is_empty() {
            values.push(decode_value(&mut rest).ok_or_else(invalid)?);
        }
        Ok(values)
    }
}

fn fingerprint(query: &str) -> [u8; FINGERPRINT_LEN] {
    let digest = Sha256::digest(query.as_bytes());
    let mut out = [0; FINGERPRINT_LEN];
    out.copy_from_slice(&digest[..FINGERPRINT_LEN]);
    out
}

fn encode_value(out: &mut Vec<u8>, value: &SqlValue) {
    match value {
        SqlValue::Null => out.push(0),
        SqlValue::Bool(v) => out.extend_from_slice(&[1, u8::from(*v)]),
        SqlValue::Int(v) => {
            out.push(2);
            out.extend_from_slice(&v.to_be_bytes());
        }
        SqlValue::Float(v) => {
            out.push(3);
            out.extend_from_slice(&v.to_be_bytes());
        }
        SqlValue::Text(v) => {
            out.push(4);
            encode_bytes(out, v.as_bytes());
        }
        SqlValue::Bytes(v) => {
            out.push(5);
            encode_bytes(out, v);
        }
    }
}

fn encode_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&bytes[..len as usize]);
}

fn take<'a>(rest: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if rest.len() < n {
        return None;
    }
    let (head, tail) = rest.split_at(n);
    *rest = tail;
    Some(head)
}

fn decode_value(rest: &mut &[u8]) -> Option<SqlValue> {
    let tag = take(rest, 1)?[0];
    Some(match tag {
        0 => SqlValue::Null,
        1 => SqlValue::Bool(take(rest, 1)?[0] != 0),
        2 => SqlValue::Int(i64::from_be_bytes(take(rest, 8)?.try_into().ok()?)),
        3 => SqlValue::Float(f64::from_be_bytes(take(rest, 8)?.try_into().ok()?)),
        4 | 5 => {
            let len = u32::from_be_bytes(take(rest, 4)?.try_into().ok()?) as usize;
            let bytes = take(rest, len)?.to_vec();
            if tag == 4 {
                SqlValue::Text(String::from_utf8(bytes).ok()?)
            } else {
                SqlValue::Bytes(bytes)
            }
        }
        _ => return None,
    })
}

/// One column of a sort key. The last one must be unique (the primary key),
/// so the order is total and no row is skipped or repeated between pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SortColumn<'a> {
    pub column: &'a str,
    pub descending: bool,
}

/// Appends `ORDER BY c1 [DESC], c2 ...`.
pub fn push_order_by(sql: &mut SqlBuilder, key: &[SortColumn<'_>]) {
    sql.push(" ORDER BY ");
    for (i, part) in key.iter().enumerate() {
        if i > 0 {
            sql.push(", ");
        }
        sql.push(part.column);
        if part.descending {
            sql.push(" DESC");
        }
    }
}

/// Appends the predicate "after this sort key" (without a leading AND/WHERE).
/// With one direction throughout it is a row comparison, which PostgreSQL and
/// SQLite answer from an index on the key; mixed directions expand to ORs.
pub fn push_after(sql: &mut SqlBuilder, key: &[SortColumn<'_>], after: &[SqlValue]) {
    let uniform = key.iter().all(|k| k.descending == key[0].descending);
    if uniform && key.len() > 1 {
        sql.push("(");
        push_columns(sql, key);
        sql.push(if key[0].descending { ") < (" } else { ") > (" });
        for (i, value) in after.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            sql.push_bind(value.clone());
        }
        sql.push(")");
        return;
    }
    sql.push("(");
    for i in 0..key.len() {
        if i > 0 {
            sql.push(" OR ");
        }
        sql.push("(");
        for j in 0..i {
            sql.push(key[j].column)
                .push(" = ")
                .push_bind(after[j].clone())
                .push(" AND ");
        }
        sql.push(key[i].column)
            .push(if key[i].descending { " < " } else { " > " })
            .push_bind(after[i].clone());
        sql.push(")");
    }
    sql.push(")");
}

fn push_columns(sql: &mut SqlBuilder, key: &[SortColumn<'_>]) {
    for (i, part) in key.iter().enumerate() {
        if i > 0 {
            sql.push(", ");
        }
        sql.push(part.column);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> PageTokens {
        PageTokens::new(b"secret")
    }

    #[test]
    fn round_trips_every_value_kind() {
        let after = vec![
            SqlValue::Int(-7),
            SqlValue::Text("naïve ✓".into()),
            SqlValue::Bool(true),
            SqlValue::Float(2.5),
            SqlValue::Bytes(vec![0, 255]),
            SqlValue::Null,
        ];
        let token = tokens().encode("incidents|state = NEW|", &after);
        assert_eq!(
            tokens().decode(&token, "incidents|state = NEW|").unwrap(),
            after
        );
    }

    #[test]
    fn refuses_tokens_of_other_queries_and_keys() {
        let token = tokens().encode("incidents|a|", &[SqlValue::Int(1)]);
        assert!(tokens().decode(&token, "incidents|b|").is_err());
        assert!(
            PageTokens::new(b"other")
                .decode(&token, "incidents|a|")
                .is_err()
        );
    }

    #[test]
    fn refuses_altered_and_garbage_tokens() {
        let token = tokens().encode("q", &[SqlValue::Int(1)]);
        let mut bytes = URL_SAFE_NO_PAD.decode(&token).unwrap();
        bytes[10] ^= 1;
        let altered = URL_SAFE_NO_PAD.encode(bytes);
        for bad in [
            altered.as_str(),
            "",
            "!!!",
            "AAAA",
            &token[..token.len() - 2],
        ] {
            let error = tokens().decode(bad, "q").unwrap_err();
            assert_eq!(error.field_violations()[0].field, "page_token", "{bad:?}");
        }
    }

    #[test]
    fn page_sizes_default_cap_and_refuse_negatives() {
        assert_eq!(page_size(0).unwrap(), 50);
        assert_eq!(page_size(10).unwrap(), 10);
        assert_eq!(page_size(5000).unwrap(), 1000);
        assert!(page_size(-1).is_err());
    }

    #[test]
    fn uniform_keys_use_row_comparison() {
        let key = [
            SortColumn {
                column: "priority",
                descending: false,
            },
            SortColumn {
                column: "id",
                descending: false,
            },
        ];
        let mut sql = SqlBuilder::new("");
        push_after(&mut sql, &key, &[SqlValue::Int(2), SqlValue::Int(9)]);
        assert_eq!(sql.sql(), "(priority, id) > ($1, $2)");
    }

    #[test]
    fn mixed_directions_expand() {
        let key = [
            SortColumn {
                column: "create_time",
                descending: true,
            },
            SortColumn {
                column: "id",
                descending: false,
            },
        ];
        let mut sql = SqlBuilder::new("");
        push_after(&mut sql, &key, &[SqlValue::Int(5), SqlValue::Int(9)]);
        assert_eq!(
            sql.sql(),
            "((create_time < $1) OR (create_time = $2 AND id > $3))"
        );
        let mut order = SqlBuilder::new("");
        push_order_by(&mut order, &key);
        assert_eq!(order.sql(), " ORDER BY create_time DESC, id");
    }
}
