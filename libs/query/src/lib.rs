//! The query language shared by every List method: `filter` (a subset of
//! AIP-160) and `order_by`, parsed into an AST and compiled to SQL against a
//! per-resource whitelist of fields, with every value bound as a parameter.
//!
//! Pure code: no I/O, no database driver. `itsm-store` runs what this builds.
//!
//! ```
//! use itsm_query::{Field, FieldKind, Schema, SqlBuilder, SqlValue, filter_sql, parse_order_by};
//!
//! static INCIDENT: Schema = Schema {
//!     resource: "incident",
//!     fields: &[
//!         Field { name: "title", column: "title", kind: FieldKind::Text, sortable: false },
//!         Field { name: "priority", column: "priority", kind: FieldKind::Enum(&[("HIGH", 2), ("LOW", 4)]), sortable: true },
//!     ],
//! };
//!
//! let mut sql = SqlBuilder::new("SELECT id FROM incidents WHERE ");
//! filter_sql(r#"title:"vpn" priority = HIGH"#, &INCIDENT, &mut sql)?;
//! assert_eq!(sql.sql(), "SELECT id FROM incidents WHERE (LOWER(title) LIKE $1 ESCAPE '\\' AND priority = $2)");
//! assert_eq!(sql.params(), [SqlValue::Text("%vpn%".into()), SqlValue::Int(2)]);
//!
//! let order = parse_order_by("priority desc", &INCIDENT)?;
//! assert_eq!((order[0].field.column, order[0].descending), ("priority", true));
//! # Ok::<(), itsm_query::QueryError>(())
//! ```

pub mod error;
pub mod filter;
pub mod order;
pub mod schema;
pub mod sql;

pub use error::QueryError;
pub use filter::{Comparison, Expr, Op, Record, RecordValue, Value, filter_sql, parse_filter};
pub use order::{OrderTerm, parse_order_by};
pub use schema::{Field, FieldKind, Schema};
pub use sql::{SqlBuilder, SqlValue};
