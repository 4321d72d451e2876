//! tessera-core's conformance kit, run on both learners and both split
//! searches.

#[test]
fn random_forest_passes_the_conformance_kit() {
    let plugin = tessera_forest::plugin();
    tessera_core::testkit::check_learner(&plugin, "random_forest", r#"{"n_estimators": 8}"#);
    tessera_core::testkit::check_learner(
        &plugin,
        "random_forest",
        r#"{"n_estimators": 8, "split_algorithm": "exact", "oob_score": true}"#,
    );
    tessera_core::testkit::check_learner(
        &plugin,
        "random_forest",
        r#"{"n_estimators": 8, "splitter": "random", "max_leaf_nodes": 6, "ccp_alpha": 0.001}"#,
    );
}

#[test]
fn decision_tree_passes_the_conformance_kit() {
    let plugin = tessera_forest::plugin();
    tessera_core::testkit::check_learner(&plugin, "decision_tree", "{}");
    tessera_core::testkit::check_learner(
        &plugin,
        "decision_tree",
        r#"{"split_algorithm": "exact", "max_features": "sqrt", "min_samples_leaf": 2}"#,
    );
}
