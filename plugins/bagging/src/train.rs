//! Fitting: creating the base learners through the host, training the
//! members in parallel on their samples, and the out-of-bag score.

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};
use tessera_core::{
    ErrorKind, HostContextRef, MatrixRef, ModelBox, PluginError, Task, TrainData,
    abi_stable::std_types::{ROption, RSlice, RString},
    context::level,
    params::Params,
    plugin::{
        LearnerImpl, ModelImpl,
        members::{BaseLearners, fit_member},
        seeds::entropy_seed,
    },
};

use crate::{
    model::{BaggingModel, Member, Voting, accumulate, argmax, ask_member},
    parallel::for_each_member,
    params::{BaggingParams, LEARNER},
    sample::{self, Sampler},
};

/// Builds the learner from checked parameters.
///
/// # Errors
/// Parameters that do not go together (see [`BaggingParams::from_params`]).
pub fn create(p: Params) -> Result<Box<dyn LearnerImpl>, PluginError> {
    Ok(Box::new(BaggingLearner {
        params: BaggingParams::from_params(&p)?,
    }))
}

/// The bagging learner.
pub struct BaggingLearner {
    /// Its parameters.
    pub params: BaggingParams,
}

/// A member's copy of its rows and columns.
struct Subsample {
    x: Vec<f32>,
    y: Vec<f32>,
    weights: Option<Vec<f32>>,
    names: Vec<RString>,
    rows: usize,
    cols: usize,
}

impl Subsample {
    fn new(data: &TrainData<'_>, rows: Option<&[usize]>, features: Option<&[u32]>) -> Self {
        let pick = |v: &[f32]| -> Vec<f32> {
            match rows {
                None => v.to_vec(),
                Some(rows) => rows.iter().map(|&r| v[r]).collect(),
            }
        };
        let names = match features {
            None => data.feature_names.to_vec(),
            Some(f) => f
                .iter()
                .map(|&c| data.feature_names[c as usize].clone())
                .collect(),
        };
        Self {
            x: sample::gather(data.x, rows, features),
            y: pick(data.y.as_slice()),
            weights: data.weights.into_option().map(|w| pick(w.as_slice())),
            names,
            rows: rows.map_or(data.x.rows(), <[usize]>::len),
            cols: features.map_or(data.x.cols(), <[u32]>::len),
        }
    }

    fn view(&self, task: Task) -> Result<TrainData<'_>, PluginError> {
        Ok(TrainData {
            x: MatrixRef::new(&self.x, self.rows, self.cols)?,
            y: RSlice::from_slice(&self.y),
            weights: match &self.weights {
                Some(w) => ROption::RSome(RSlice::from_slice(w)),
                None => ROption::RNone,
            },
            feature_names: RSlice::from_slice(&self.names),
            task,
            valid: ROption::RNone,
        })
    }
}

/// Whether `model` predicts class probabilities of the right shape, tried
/// on the first row of `x`.
fn predicts_proba(
    ctx: &HostContextRef<'_>,
    model: &ModelBox,
    x: MatrixRef<'_>,
    task: Task,
) -> bool {
    let Some(one) = x.as_slice().get(..x.cols()) else {
        return false;
    };
    let Ok(row) = MatrixRef::new(one, 1, x.cols()) else {
        return false;
    };
    match model.predict_proba(ctx.sabi_reborrow(), row).into_result() {
        Ok(p) => p.rows == 1 && p.cols == u64::from(task.n_classes),
        Err(e) => {
            if e.kind != ErrorKind::UNSUPPORTED {
                ctx.log(
                    level::DEBUG,
                    format!(
                        "{LEARNER}: a member's predict_proba failed ({}), so members vote",
                        e.message
                    )
                    .as_str()
                    .into(),
                );
            }
            false
        }
    }
}

impl BaggingLearner {
    /// Trains member `i` (of the whole ensemble; the `local`-th of this fit)
    /// on its sample; returns it and whether it predicts probabilities.
    fn train_member(
        &self,
        i: usize,
        local: usize,
        ctx: HostContextRef<'_>,
        data: &TrainData<'_>,
        sampler: &Sampler,
        learners: &BaseLearners,
    ) -> Result<(Member, bool), PluginError> {
        let n_features = data.x.cols();
        let features = sampler.features(i);
        let rows = sampler.rows(i);
        let all = sample::is_all(&features, n_features);
        let owned;
        let view = if rows.is_none() && all {
            *data
        } else {
            owned = Subsample::new(data, rows.as_deref(), (!all).then_some(&features[..]));
            owned.view(data.task)?
        };
        let model = fit_member(
            LEARNER,
            i,
            &self.params.estimator.name,
            learners.get(local),
            ctx.sabi_reborrow(),
            view,
        )?;
        let proba =
            data.task.is_classification() && predicts_proba(&ctx, &model, view.x, data.task);
        Ok((Member::new(features, n_features, model), proba))
    }
}

impl LearnerImpl for BaggingLearner {
    fn fit(
        &self,
        ctx: &HostContextRef<'_>,
        data: &TrainData<'_>,
    ) -> Result<Box<dyn ModelImpl>, PluginError> {
        if ctx.is_cancelled() {
            return Err(PluginError::cancelled());
        }
        let p = &self.params;
        let n_rows = data.x.rows();
        let n_features = data.x.cols();
        let sampler = Sampler {
            seed: p.random_state.unwrap_or_else(entropy_seed),
            n_rows,
            n_features,
            k_rows: p.max_samples.resolve(n_rows, "max_samples", "rows")?,
            k_features: p
                .max_features
                .resolve(n_features, "max_features", "feature columns")?,
            bootstrap: p.bootstrap,
            bootstrap_features: p.bootstrap_features,
        };
        // A shard trains the members of its range; every draw and seed comes
        // from a member's index in the whole ensemble.
        let indices = p.members();
        let (first, n) = (indices.start, indices.len());
        let learners = BaseLearners::create(ctx, LEARNER, &p.estimator, n, |i| {
            sampler.learner_seed(first + i)
        })?;
        ctx.log(
            level::DEBUG,
            format!(
                "{LEARNER}: {n} members of `{}` on {} rows x {} columns each, {} threads",
                p.estimator.name,
                sampler.k_rows,
                sampler.k_features,
                ctx.threads()
            )
            .as_str()
            .into(),
        );

        let done = AtomicU64::new(0);
        let mut trained = Vec::with_capacity(n);
        for_each_member(
            ctx,
            n,
            n,
            |i, sub| {
                let out = self.train_member(first + i, i, sub, data, &sampler, &learners)?;
                ctx.progress(done.fetch_add(1, Ordering::Relaxed) + 1, n as u64);
                Ok(out)
            },
            |_, out| {
                trained.push(out);
                Ok(())
            },
        )?;
        let voting = if !data.task.is_classification() {
            Voting::Mean
        } else if trained.iter().all(|(_, proba)| *proba) {
            Voting::Soft
        } else {
            Voting::Hard
        };
        let members: Vec<Member> = trained.into_iter().map(|(m, _)| m).collect();

        let mut info = json!({
            "estimator": p.estimator.name,
            "estimator_params": Value::Object(p.estimator.params.clone()),
            "n_estimators": p.n_estimators,
            "max_samples": p.max_samples.to_json(),
            "max_features": p.max_features.to_json(),
            "samples_per_member": sampler.k_rows,
            "features_per_member": sampler.k_features,
            "bootstrap": p.bootstrap,
            "bootstrap_features": p.bootstrap_features,
            "random_state": sampler.seed,
            "member_seeds": learners.seeded(),
        });
        if let Some(s) = p.shard {
            crate::shards::mark(&mut info, s, indices);
        }
        if p.oob_score {
            let (score, rows) = match oob_score(ctx, data, &sampler, &members, voting)? {
                Some((score, rows)) => (json!(score), rows),
                None => (Value::Null, 0),
            };
            info["oob_score"] = score;
            info["oob_rows"] = json!(rows);
        }
        Ok(Box::new(BaggingModel {
            task: data.task,
            n_features,
            voting,
            info,
            members,
            engine: Default::default(),
        }))
    }
}

/// Scores each training row with the members that did not draw it:
/// accuracy (classification) or R² (regression), and how many rows had at
/// least one such member. `None` when no row did.
fn oob_score(
    ctx: &HostContextRef<'_>,
    data: &TrainData<'_>,
    sampler: &Sampler,
    members: &[Member],
    voting: Voting,
) -> Result<Option<(f64, usize)>, PluginError> {
    let task = data.task;
    let n_rows = data.x.rows();
    let width = if task.is_classification() {
        task.n_classes as usize
    } else {
        1
    };
    let ask = voting.ask();
    let mut sums = vec![0.0f64; n_rows * width];
    let mut counts = vec![0u32; n_rows];
    let batch = 2 * ctx.threads().max(1) as usize;
    for_each_member(
        ctx,
        members.len(),
        batch,
        |i, sub| {
            let rows = sampler.rows(i);
            let bag = sample::in_bag(rows.as_deref(), n_rows);
            let out_rows: Vec<usize> = (0..n_rows).filter(|&r| !bag[r]).collect();
            if out_rows.is_empty() {
                return Ok((out_rows, Vec::new()));
            }
            let x = sample::gather(data.x, Some(&out_rows), None);
            let x = MatrixRef::new(&x, out_rows.len(), data.x.cols())?;
            let out = ask_member(i, &members[i], sub, x, ask, task)?;
            Ok((out_rows, out))
        },
        |i, (rows, out)| {
            for &r in &rows {
                counts[r] += 1;
            }
            accumulate(&mut sums, Some(&rows), &out, voting, task, i)
        },
    )?;

    let scored: Vec<usize> = (0..n_rows).filter(|&r| counts[r] > 0).collect();
    if scored.len() < n_rows {
        let missing = n_rows - scored.len();
        ctx.log(
            level::WARN,
            format!(
                "{LEARNER}: {missing} of {n_rows} rows were drawn by every member and have no \
                 out-of-bag prediction; oob_score {} (use more estimators)",
                if scored.is_empty() {
                    "cannot be computed".to_string()
                } else {
                    format!("uses the other {}", scored.len())
                }
            )
            .as_str()
            .into(),
        );
    }
    if scored.is_empty() {
        return Ok(None);
    }
    let y = data.y.as_slice();
    let score = if task.is_classification() {
        let right = scored
            .iter()
            .filter(|&&r| argmax(&sums[r * width..(r + 1) * width]) as f32 == y[r])
            .count();
        right as f64 / scored.len() as f64
    } else {
        let pred = |r: usize| sums[r] / f64::from(counts[r]);
        let mean = scored.iter().map(|&r| f64::from(y[r])).sum::<f64>() / scored.len() as f64;
        let ss_res: f64 = scored
            .iter()
            .map(|&r| (f64::from(y[r]) - pred(r)).powi(2))
            .sum();
        let ss_tot: f64 = scored
            .iter()
            .map(|&r| (f64::from(y[r]) - mean).powi(2))
            .sum();
        r_squared(ss_res, ss_tot)
    };
    Ok(Some((score, scored.len())))
}

/// `1 - ss_res / ss_tot`; for a constant target (`ss_tot == 0`), 1 when
/// the predictions are exact and 0 otherwise, as scikit-learn's `r2_score`.
fn r_squared(ss_res: f64, ss_tot: f64) -> f64 {
    if ss_tot > 0.0 {
        1.0 - ss_res / ss_tot
    } else if ss_res == 0.0 {
        1.0
    } else {
        0.0
    }
}
