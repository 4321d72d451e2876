//! Members of meta-learners (bagging, boosting): models of a base learner
//! of any loaded plugin, chosen by the user, created and trained through
//! the host, and saved inside the meta-model in their own plugins' formats.
//!
//! * [`Estimator`]: the `estimator` / `estimator_params` pair of parameters
//!   ([`estimator_spec`], [`estimator_params_spec`]), read into a learner
//!   name and its parameters;
//! * [`BaseLearners`]: the members' learners, created through
//!   [`HostContext::create_learner`](crate::HostContext::create_learner),
//!   each with a `random_state` of its own when the base learner takes one
//!   and the user did not set it;
//! * [`fit_member`]: one member's training, with errors that say which;
//! * [`write_member`], [`ByteReader`] and [`load_member`]: a member's model
//!   inside the meta-model's bytes, and reading it back through
//!   [`HostContext::load_model`](crate::HostContext::load_model), never
//!   trusting the bytes.
//!
//! Every message starts with the meta-learner's component name (`owner`).

use serde_json::{Map, Value, json};

use abi_stable::std_types::RSlice;

pub use crate::bytes::{ByteReader, put_u32};

use crate::{
    context::{HostContextRef, level},
    data::{Task, TrainData},
    error::{ErrorKind, PluginError},
    params::{Check, ParamSpec},
    traits::{LearnerBox, ModelBox},
};

/// What `estimator` accepts, for messages and the manifest.
pub const ESTIMATOR_TYPE: &str = "learner name | table {name = learner name, <its parameters>}";

/// The `estimator` parameter: the base learner by name, or a table whose
/// `name` is the learner and whose other keys are its parameters. A `null`
/// default makes `null` legal (the meta-learner's own default learner).
pub fn estimator_spec(default: Value, doc: &'static str) -> ParamSpec {
    if default.is_null() {
        ParamSpec::custom(
            "estimator",
            &format!("{ESTIMATOR_TYPE} | null"),
            default,
            doc,
            check_estimator_or_null,
        )
    } else {
        ParamSpec::custom("estimator", ESTIMATOR_TYPE, default, doc, check_estimator)
    }
}

/// The `estimator_params` parameter: the base learner's parameters.
pub fn estimator_params_spec() -> ParamSpec {
    ParamSpec {
        name: "estimator_params",
        ty: "table".into(),
        default: json!({}),
        doc: "the base learner's parameters, passed to every member as given",
        check: Check::Table,
    }
}

/// Checks an `estimator` value: a learner name, or a table whose `name`
/// (optional) is one.
///
/// # Errors
/// What is wrong with the value.
pub fn check_estimator(v: &Value) -> Result<(), String> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Ok(()),
        Value::Object(m) => match m.get("name") {
            None => Ok(()),
            Some(Value::String(s)) if !s.trim().is_empty() => Ok(()),
            Some(other) => Err(format!(
                "the table's `name` must be a learner name, got {other}"
            )),
        },
        _ => Err(format!("expected {ESTIMATOR_TYPE}, got {v}")),
    }
}

/// As [`check_estimator`], accepting `null` too.
///
/// # Errors
/// What is wrong with the value.
pub fn check_estimator_or_null(v: &Value) -> Result<(), String> {
    match v {
        Value::Null => Ok(()),
        _ => check_estimator(v).map_err(|e| {
            if e.starts_with("expected") {
                format!("expected {ESTIMATOR_TYPE} | null, got {v}")
            } else {
                e
            }
        }),
    }
}

/// The base learner of a meta-learner: its name and parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct Estimator {
    /// The learner's component name.
    pub name: String,
    /// Its parameters, passed as given.
    pub params: Map<String, Value>,
    /// Whether the user named the learner; `false` when it is the
    /// meta-learner's default (`estimator` null, or a table without
    /// `name`), whose own default parameters may then apply.
    pub named: bool,
}

fn bad(owner: &str, key: &str, v: &Value) -> PluginError {
    PluginError::params(format!("`{owner}` parameter `{key}`: unexpected value {v}"))
}

impl Estimator {
    /// Reads the base learner of meta-learner `owner` from its `estimator`
    /// and `estimator_params` values (checked by [`estimator_spec`] and
    /// [`estimator_params_spec`]); `default` names the learner used when
    /// none is named.
    ///
    /// # Errors
    /// Parameters given both inside the `estimator` table and as
    /// `estimator_params`, or a value the schema should have refused.
    pub fn from_values(
        owner: &str,
        default: &str,
        estimator: &Value,
        estimator_params: &Value,
    ) -> Result<Self, PluginError> {
        let given = estimator_params
            .as_object()
            .ok_or_else(|| bad(owner, "estimator_params", estimator_params))?;
        match estimator {
            Value::Null => Ok(Self {
                name: default.to_string(),
                params: given.clone(),
                named: false,
            }),
            Value::String(name) => Ok(Self {
                name: name.trim().to_string(),
                params: given.clone(),
                named: true,
            }),
            Value::Object(table) => {
                let (name, named) = match table.get("name") {
                    None => (default.to_string(), false),
                    Some(Value::String(s)) => (s.trim().to_string(), true),
                    Some(_) => return Err(bad(owner, "estimator", estimator)),
                };
                let inline: Map<String, Value> = table
                    .iter()
                    .filter(|(k, _)| k.as_str() != "name")
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                if !inline.is_empty() && !given.is_empty() {
                    let keys: Vec<&str> = inline.keys().map(String::as_str).collect();
                    return Err(PluginError::params(format!(
                        "`{owner}` parameters `estimator` and `estimator_params`: the base \
                         learner's parameters are given both inside the `estimator` table ({}) \
                         and as `estimator_params`; use one or the other",
                        keys.join(", ")
                    )));
                }
                Ok(Self {
                    name,
                    params: if inline.is_empty() {
                        given.clone()
                    } else {
                        inline
                    },
                    named,
                })
            }
            other => Err(bad(owner, "estimator", other)),
        }
    }

    /// `self` with `key` set to `value` unless the user set it.
    pub fn with_default(mut self, key: &str, value: Value) -> Self {
        self.params.entry(key.to_string()).or_insert(value);
        self
    }
}

/// The members' learners of one fit: one shared by every member, or one
/// per member when each gets its own `random_state`.
pub struct BaseLearners {
    learners: Vec<LearnerBox>,
    seeded: bool,
}

fn create_with(
    ctx: &HostContextRef<'_>,
    est: &Estimator,
    params: &Map<String, Value>,
) -> Result<LearnerBox, PluginError> {
    let text = Value::Object(params.clone()).to_string();
    ctx.create_learner(est.name.as_str().into(), text.as_str().into())
        .into_result()
}

impl BaseLearners {
    /// Creates the learners of `n` members of meta-learner `owner`. When the
    /// user did not set the base learner's `random_state`, member `i` gets
    /// `seed(i)`, provided the learner accepts one: creating the first
    /// learner with it tells (a learner without the parameter refuses it),
    /// and otherwise one learner serves every member.
    ///
    /// # Errors
    /// The base learner cannot be created (unknown, bad parameters); the
    /// message names it.
    pub fn create(
        ctx: &HostContextRef<'_>,
        owner: &str,
        est: &Estimator,
        n: usize,
        seed: impl Fn(usize) -> u64,
    ) -> Result<Self, PluginError> {
        let creation_error = |e: PluginError| {
            PluginError::new(
                e.kind,
                format!(
                    "{owner}: cannot create the base learner `{}`: {}",
                    est.name, e.message
                ),
            )
        };
        let shared = || -> Result<Self, PluginError> {
            Ok(Self {
                learners: vec![create_with(ctx, est, &est.params).map_err(creation_error)?],
                seeded: false,
            })
        };
        if est.params.contains_key("random_state") {
            return shared();
        }
        let seeded = |i: usize| {
            let mut p = est.params.clone();
            p.insert("random_state".into(), json!(seed(i)));
            create_with(ctx, est, &p)
        };
        let first = match seeded(0) {
            Ok(l) => l,
            Err(probe) => {
                let base = shared()?;
                ctx.log(
                    level::DEBUG,
                    format!(
                        "{owner}: `{}` takes no random_state ({}), so its members differ only by \
                         their data",
                        est.name, probe.message
                    )
                    .as_str()
                    .into(),
                );
                return Ok(base);
            }
        };
        let mut learners = Vec::with_capacity(n);
        learners.push(first);
        for i in 1..n {
            learners.push(seeded(i).map_err(creation_error)?);
        }
        Ok(Self {
            learners,
            seeded: true,
        })
    }

    /// The learner of member `member`.
    pub fn get(&self, member: usize) -> &LearnerBox {
        &self.learners[member.min(self.learners.len() - 1)]
    }

    /// Whether each member has a `random_state` of its own.
    pub fn seeded(&self) -> bool {
        self.seeded
    }
}

/// Trains member `index` of meta-learner `owner` (base learner `name`) on
/// `data`, and checks that the model is for `data`'s task and columns.
///
/// # Errors
/// The learner's error, saying which member failed, or a model for another
/// task or column count.
pub fn fit_member(
    owner: &str,
    index: usize,
    name: &str,
    learner: &LearnerBox,
    ctx: HostContextRef<'_>,
    data: TrainData<'_>,
) -> Result<ModelBox, PluginError> {
    let model = learner.fit(ctx, data).into_result().map_err(|e| {
        PluginError::new(
            e.kind,
            format!(
                "{owner}: training member {index} (`{name}`) failed: {}",
                e.message
            ),
        )
    })?;
    if model.task() != data.task || model.n_features() != data.x.cols() as u64 {
        return Err(PluginError::internal(format!(
            "{owner}: member {index} (`{name}`) returned a model for a different task or feature \
             count"
        )));
    }
    Ok(model)
}

/// Appends member `index`'s model as [`ByteReader::member`] reads it: the
/// component that trained it (`u32` length + UTF-8), then that component's
/// own bytes (`u64` length + bytes).
///
/// # Errors
/// The member cannot be saved; the message says which.
pub fn write_member(
    out: &mut Vec<u8>,
    owner: &str,
    index: usize,
    model: &ModelBox,
) -> Result<(), PluginError> {
    let component = model.component();
    let bytes = model.to_bytes().into_result().map_err(|e| {
        PluginError::new(
            e.kind,
            format!(
                "{owner}: member {index} (`{component}`) cannot be saved: {}",
                e.message
            ),
        )
    })?;
    put_u32(out, component.len(), owner, "component name length")?;
    out.extend_from_slice(component.as_bytes());
    out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
    out.extend_from_slice(&bytes);
    Ok(())
}

/// Reads back member `index` of a model of meta-learner `owner` through
/// the host, from the plugin of `component` that trained it, and checks
/// that it is a model of `task` over `n_features` columns.
///
/// # Errors
/// The member's plugin is absent (the message names the learner,
/// [`ErrorKind::UNSUPPORTED`]), its bytes are refused, or it is a model of
/// another task or width ([`ErrorKind::CORRUPT_MODEL`]).
pub fn load_member(
    ctx: &HostContextRef<'_>,
    owner: &str,
    index: usize,
    component: &str,
    bytes: &[u8],
    task: Task,
    n_features: usize,
) -> Result<ModelBox, PluginError> {
    let model = ctx
        .load_model(component.into(), RSlice::from_slice(bytes))
        .into_result()
        .map_err(|e| {
            let message = if e.kind == ErrorKind::UNSUPPORTED {
                format!(
                    "{owner} member {index} needs learner `{component}` (its plugin must be \
                     loaded): {}",
                    e.message
                )
            } else {
                format!(
                    "{owner} member {index} (learner `{component}`) cannot be loaded: {}",
                    e.message
                )
            };
            PluginError::new(e.kind, message)
        })?;
    if model.task() != task || model.n_features() != n_features as u64 {
        return Err(PluginError::corrupt(format!(
            "{owner} model: member {index} (`{component}`) is a model of another task or \
             feature count"
        )));
    }
    Ok(model)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(e: Value, p: Value) -> Result<Estimator, PluginError> {
        Estimator::from_values("meta", "decision_tree", &e, &p)
    }

    #[test]
    fn estimator_forms() {
        let e = read(json!("linear"), json!({"C": 2.0})).unwrap();
        assert_eq!((e.name.as_str(), e.named), ("linear", true));
        assert_eq!(Value::Object(e.params), json!({"C": 2.0}));

        let e = read(json!({"max_depth": 3}), json!({})).unwrap();
        assert_eq!((e.name.as_str(), e.named), ("decision_tree", false));
        assert_eq!(Value::Object(e.params), json!({"max_depth": 3}));

        let e = read(Value::Null, json!({"max_depth": 2})).unwrap();
        assert_eq!((e.name.as_str(), e.named), ("decision_tree", false));
        let e = e.with_default("max_depth", json!(1));
        assert_eq!(Value::Object(e.params), json!({"max_depth": 2}));

        let e = read(json!({"name": "random_forest"}), json!({"n_estimators": 3})).unwrap();
        assert_eq!((e.name.as_str(), e.named), ("random_forest", true));
        assert_eq!(Value::Object(e.params), json!({"n_estimators": 3}));

        let err = read(json!({"max_depth": 3}), json!({"max_depth": 4})).unwrap_err();
        assert!(
            err.message
                .starts_with("`meta` parameters `estimator` and `estimator_params`"),
            "{err}"
        );
        assert!(err.message.contains("(max_depth)"), "{err}");
        assert_eq!(err.kind, ErrorKind::INVALID_PARAMS);
    }

    #[test]
    fn estimator_check() {
        assert!(check_estimator(&json!("decision_tree")).is_ok());
        assert!(check_estimator(&json!({"name": "linear", "C": 1})).is_ok());
        assert!(check_estimator(&json!({"max_depth": 2})).is_ok());
        assert!(check_estimator(&json!("")).is_err());
        assert!(check_estimator(&json!(3)).is_err());
        assert!(check_estimator(&json!({"name": 3})).is_err());
        assert!(check_estimator(&json!({"name": " "})).is_err());
        assert!(check_estimator(&Value::Null).is_err());
        assert!(check_estimator_or_null(&Value::Null).is_ok());
        assert_eq!(
            check_estimator_or_null(&json!(3)).unwrap_err(),
            format!("expected {ESTIMATOR_TYPE} | null, got 3")
        );
        assert!(
            check_estimator_or_null(&json!({"name": 3}))
                .unwrap_err()
                .contains("`name`")
        );
    }

    #[test]
    fn the_reader_refuses_truncation_and_leftovers() {
        let mut out = Vec::new();
        put_u32(&mut out, 7, "meta", "count").unwrap();
        out.extend_from_slice(&2.5f64.to_le_bytes());
        put_u32(&mut out, 3, "meta", "name length").unwrap();
        out.extend_from_slice(b"abc");
        let mut r = ByteReader::new(&out, "meta");
        assert_eq!(r.u32("count").unwrap(), 7);
        assert_eq!(r.f64("weight").unwrap(), 2.5);
        assert_eq!(r.text("name").unwrap(), "abc");
        r.finish().unwrap();
        let e = r.u8("more").unwrap_err();
        assert_eq!(e.kind, ErrorKind::CORRUPT_MODEL);
        assert_eq!(e.message, "meta model: truncated while reading more");

        let mut r = ByteReader::new(&out[..5], "meta");
        r.u32("count").unwrap();
        assert!(
            r.finish()
                .unwrap_err()
                .message
                .contains("1 unexpected bytes")
        );
        let huge = u64::MAX.to_le_bytes();
        let e = ByteReader::new(&huge, "meta").blob("blob").unwrap_err();
        assert_eq!(e.kind, ErrorKind::CORRUPT_MODEL);
        let e = ByteReader::new(&u32::MAX.to_le_bytes(), "meta")
            .count(8, "nodes")
            .unwrap_err();
        assert!(
            e.message.contains("more than the bytes left"),
            "{}",
            e.message
        );
        assert_eq!(
            ByteReader::new(&1.5f32.to_le_bytes(), "meta")
                .f32("x")
                .unwrap(),
            1.5
        );
        assert!(put_u32(&mut Vec::new(), usize::MAX, "meta", "count").is_err());
    }
}
