use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// No list endpoint returns more than this many items in one response.
pub const MAX_PAGE_SIZE: i64 = 500;
const DEFAULT_PAGE_SIZE: i64 = 100;

/// `?limit=&offset=` as sent by a client. Values are clamped, never refused: a client asking for
/// more than the maximum gets the maximum.
#[derive(Debug, Clone, Copy, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// How many items to return (1 to 500, default 100).
    pub limit: Option<i64>,
    /// How many items to skip (default 0).
    pub offset: Option<i64>,
}

impl PageQuery {
    pub fn limit(&self) -> i64 {
        self.limit.unwrap_or(DEFAULT_PAGE_SIZE).clamp(1, MAX_PAGE_SIZE)
    }

    pub fn offset(&self) -> i64 {
        self.offset.unwrap_or(0).max(0)
    }
}

/// One page of a list, with what a client needs to fetch the next.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: i64,
    pub limit: i64,
    pub offset: i64,
    /// The offset of the next page, absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_offset: Option<i64>,
}

impl<T> Page<T> {
    pub fn new(items: Vec<T>, total: i64, query: PageQuery) -> Self {
        let (limit, offset) = (query.limit(), query.offset());
        let end = offset + items.len() as i64;
        Page { items, total, limit, offset, next_offset: (end < total).then_some(end) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_clamped_not_refused() {
        let q = PageQuery { limit: Some(10_000), offset: Some(-5) };
        assert_eq!(q.limit(), MAX_PAGE_SIZE);
        assert_eq!(q.offset(), 0);
        assert_eq!(PageQuery::default().limit(), DEFAULT_PAGE_SIZE);
        assert_eq!(PageQuery { limit: Some(0), offset: None }.limit(), 1);
    }

    #[test]
    fn next_offset_only_when_more_remain() {
        let q = PageQuery { limit: Some(2), offset: Some(2) };
        assert_eq!(Page::new(vec![1, 2], 5, q).next_offset, Some(4));
        assert_eq!(Page::new(vec![1], 3, q).next_offset, None);
    }
}
