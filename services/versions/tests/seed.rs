//! seed-demo and seed-bench are idempotent and make what they promise.

use diesel::prelude::*;
use meridian_platform::testing::TestDb;
use versions::SERVICE;
use versions::demo::{seed_bench_data, seed_demo_data};
use versions::model::Actor;
use versions::schema::{artifacts, versions as versions_table};

fn counts(conn: &mut PgConnection) -> (i64, i64, i64) {
    let versions: i64 = versions_table::table.count().get_result(conn).unwrap();
    let withdrawn: i64 =
        versions_table::table.filter(versions_table::published.eq(false)).count().get_result(conn).unwrap();
    let artifacts: i64 = artifacts::table.count().get_result(conn).unwrap();
    (versions, withdrawn, artifacts)
}

#[core::prelude::v1::test]
fn seed_demo_twice_changes_nothing_the_second_time() {
    let db = TestDb::new(&SERVICE);
    let mut conn = db.conn();
    let actor = Actor { id: uuid::Uuid::new_v4(), fingerprint: "0".repeat(64) };
    assert!(seed_demo_data(&mut conn, &actor).unwrap() > 0);
    let first = counts(&mut conn);
    assert_eq!(first, (7, 1, 35));
    let generation = versions::store::generation(&mut conn).unwrap();
    assert_eq!(seed_demo_data(&mut conn, &actor).unwrap(), 0);
    assert_eq!(counts(&mut conn), first);
    assert_eq!(versions::store::generation(&mut conn).unwrap(), generation, "no write, no reload");
}

#[core::prelude::v1::test]
fn seed_bench_makes_500_versions_and_5000_artifacts_once() {
    let db = TestDb::new(&SERVICE);
    let mut conn = db.conn();
    assert_eq!(seed_bench_data(&mut conn, 500, 10).unwrap(), 5500);
    assert_eq!(counts(&mut conn), (500, 0, 5000));
    assert_eq!(seed_bench_data(&mut conn, 500, 10).unwrap(), 0);
    assert_eq!(counts(&mut conn), (500, 0, 5000));
}
