//! tessera-core's conformance kit, run on `random_forest`.

#[test]
fn random_forest_passes_the_conformance_kit() {
    tessera_core::testkit::check_learner(
        &tessera_forest::plugin(),
        "random_forest",
        r#"{"n_estimators": 8}"#,
    );
}
