//! A small builder for SQL whose filters depend on the request, with numbered placeholders.
//!
//! sqlx's own `QueryBuilder` ties its arguments to its own lifetime, which the shared SQL
//! cannot hand on; this one keeps text and values apart until the query runs.

use sqlx::query::QueryAs;
use sqlx::{Database, FromRow};

use super::{Db, Query};

/// A value to bind.
#[derive(Debug, Clone)]
pub(super) enum Param {
    Int(i64),
    Text(String),
}

impl From<i64> for Param {
    fn from(v: i64) -> Self {
        Self::Int(v)
    }
}

impl From<String> for Param {
    fn from(v: String) -> Self {
        Self::Text(v)
    }
}

impl From<&str> for Param {
    fn from(v: &str) -> Self {
        Self::Text(v.to_owned())
    }
}

#[derive(Debug, Default)]
pub(super) struct Sql {
    text: String,
    params: Vec<Param>,
}

impl Sql {
    pub fn new(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            params: Vec::new(),
        }
    }

    pub fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Appends a placeholder for `value`.
    pub fn bind(&mut self, value: impl Into<Param>) -> &mut Self {
        self.params.push(value.into());
        self.text.push('$');
        self.text.push_str(&self.params.len().to_string());
        self
    }

    pub fn query(&self) -> Query<'_> {
        let mut query = sqlx::query(&self.text);
        for param in &self.params {
            query = match param {
                Param::Int(v) => query.bind(*v),
                Param::Text(v) => query.bind(v.as_str()),
            };
        }
        query
    }

    pub fn query_as<T>(&self) -> QueryAs<'_, Db, T, <Db as Database>::Arguments<'_>>
    where
        T: for<'r> FromRow<'r, <Db as Database>::Row>,
    {
        let mut query = sqlx::query_as(&self.text);
        for param in &self.params {
            query = match param {
                Param::Int(v) => query.bind(*v),
                Param::Text(v) => query.bind(v.as_str()),
            };
        }
        query
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_placeholders_in_order() {
        let mut sql = Sql::new("SELECT 1 WHERE a = ");
        sql.bind(1).push(" AND b = ").bind("x");
        assert_eq!(sql.text, "SELECT 1 WHERE a = $1 AND b = $2");
        assert_eq!(sql.params.len(), 2);
    }
}
