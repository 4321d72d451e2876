//! tessera-core's conformance kit: parameter errors, shapes, probabilities,
//! serialization round-trip, damaged bytes, empty and malformed input. Every
//! plugin should run it on each of its learners.

#[test]
fn linear_passes_the_conformance_kit() {
    tessera_core::testkit::check_learner(&tessera_linear::plugin(), "linear", "{}");
}
