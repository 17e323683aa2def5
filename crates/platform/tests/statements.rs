//! `db::Statement` and `db::Condition` against a real Postgres: their statements are kept
//! prepared per connection (which `sql_query` and `dsl::sql` never are), and binds land in order.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use diesel_migrations::embed_migrations;
use meridian_platform::db::{Condition, Statement};
use meridian_platform::testing::TestDb;
use meridian_platform::{SchemaMigrations, ServiceDef};

static SERVICE: ServiceDef = ServiceDef {
    name: "statementtest",
    version: "0.0.0",
    default_port: 0,
    schema: "platformtest",
    migrations: &[SchemaMigrations {
        schema: "platformtest",
        migrations: embed_migrations!("tests/fixture_migrations"),
    }],
    openapi: utoipa::openapi::OpenApi::default,
};

diesel::table! {
    widgets (id) {
        id -> Int4,
        name -> Text,
    }
}

#[derive(QueryableByName, Debug, PartialEq)]
struct Row {
    #[diesel(sql_type = Text)]
    label: String,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct Prepared {
    #[diesel(sql_type = BigInt)]
    prepared: i64,
}

fn prepared_like(conn: &mut PgConnection, marker: &str) -> i64 {
    diesel::sql_query("SELECT count(*) AS prepared FROM pg_prepared_statements WHERE statement LIKE $1")
        .bind::<Text, _>(format!("%{marker}%"))
        .get_result::<Prepared>(conn)
        .unwrap()
        .prepared
}

#[core::prelude::v1::test]
fn statements_bind_in_order_and_stay_prepared() {
    let db = TestDb::new(&SERVICE);
    let mut conn = db.conn();
    for (label, n) in [("a", 1), ("b", 2), ("c", 3)] {
        let row: Row = Statement::new("SELECT ")
            .text(label)
            .sql("::text AS label, ")
            .bigint(n)
            .sql(" * 10 AS n /* statement-marker */")
            .get_result(&mut conn)
            .unwrap();
        assert_eq!(row, Row { label: label.to_owned(), n: n * 10 });
    }
    assert_eq!(prepared_like(&mut conn, "statement-marker"), 1, "one prepared statement, reused");

    diesel::insert_into(widgets::table).values(widgets::name.eq("kept")).execute(&mut conn).unwrap();
    diesel::insert_into(widgets::table).values(widgets::name.eq("dropped")).execute(&mut conn).unwrap();
    for _ in 0..3 {
        let names: Vec<String> = widgets::table
            .select(widgets::name)
            .filter(Condition("name <> 'dropped' /* condition-marker */"))
            .into_boxed()
            .load(&mut conn)
            .unwrap();
        assert_eq!(names, ["kept"]);
    }
    assert_eq!(prepared_like(&mut conn, "condition-marker"), 1, "a boxed query with a Condition is prepared");
}
