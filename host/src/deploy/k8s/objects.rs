//! The Kubernetes objects, as JSON: what every pod shares (labels,
//! probes, volumes, security), then one builder per kind.

use std::fmt::Write as _;

use serde_json::{Value as Json, json};

use super::{
    K8sOptions, KSERVE_MODEL, KSERVE_PORT, LIVE_PATH, MANAGED_BY, READY_PATH, TrainJob, UID,
    sh_quote,
};
use crate::deploy::{BINARY, CONFIG_DIR, CONFIG_FILE, MODELS_DIR, PORT, on_volume};

/// The manifests' builder.
pub(super) struct K8s<'o> {
    pub(super) opts: &'o K8sOptions,
    /// How long a stopping pod may take: the server's drain and some
    /// slack, at least Kubernetes' default 30 s.
    pub(super) grace_s: u64,
}

impl K8s<'_> {
    pub(super) fn config_name(&self) -> String {
        format!("{}-graph", self.opts.name)
    }

    /// The in-cluster URL of Service `name`.
    pub(super) fn url(&self, name: &str) -> String {
        match &self.opts.namespace {
            Some(ns) => format!("http://{name}.{ns}.svc:{PORT}"),
            None => format!("http://{name}:{PORT}"),
        }
    }

    /// The labels that select `component`'s pods.
    fn selector(&self, component: &str) -> Json {
        json!({
            "app.kubernetes.io/name": "tessera",
            "app.kubernetes.io/instance": self.opts.name,
            "app.kubernetes.io/component": component,
        })
    }

    /// Every object's labels: the selector's and who manages it.
    fn labels(&self, component: &str) -> Json {
        let mut l = self.selector(component);
        l["app.kubernetes.io/managed-by"] = json!(MANAGED_BY);
        l
    }

    fn metadata(&self, name: &str, component: &str) -> Json {
        let mut m = json!({ "name": name, "labels": self.labels(component) });
        if let Some(ns) = &self.opts.namespace {
            m["namespace"] = json!(ns);
        }
        m
    }

    fn requests(&self) -> Json {
        json!({ "requests": { "cpu": self.opts.cpu, "memory": self.opts.memory } })
    }

    fn models_volume(&self, read_only: bool) -> Json {
        json!({
            "name": "models",
            "persistentVolumeClaim": { "claimName": self.opts.models_claim, "readOnly": read_only },
        })
    }

    /// The pod security every container gets: the image's unprivileged
    /// user, whose group may write the models volume (training does).
    fn pod_security(&self) -> Json {
        json!({ "runAsNonRoot": true, "runAsUser": UID, "runAsGroup": UID, "fsGroup": UID })
    }

    pub(super) fn config_map(&self, toml: &str) -> Json {
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": self.metadata(&self.config_name(), "graph"),
            "data": { CONFIG_FILE: toml },
        })
    }

    /// A Deployment of `replicas` servers with `args`; `checksum` is the
    /// graph's, so that a changed graph rolls the pods.
    pub(super) fn deployment(
        &self,
        name: &str,
        component: &str,
        replicas: u32,
        args: Vec<String>,
        checksum: &str,
    ) -> Json {
        let probe = |path: &str, period: u32, failures: u32| {
            json!({
                "httpGet": { "path": path, "port": PORT },
                "periodSeconds": period,
                "failureThreshold": failures,
            })
        };
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": self.metadata(name, component),
            "spec": {
                "replicas": replicas,
                "selector": { "matchLabels": self.selector(component) },
                "template": {
                    "metadata": {
                        "labels": self.labels(component),
                        "annotations": { "tessera/graph-checksum": checksum },
                    },
                    "spec": {
                        "securityContext": self.pod_security(),
                        "terminationGracePeriodSeconds": self.grace_s,
                        "containers": [{
                            "name": "tessera",
                            "image": self.opts.image,
                            "args": args,
                            "ports": [{ "name": "http", "containerPort": PORT, "protocol": "TCP" }],
                            "env": [{
                                "name": "TESSERA_ADMIN_TOKEN",
                                "valueFrom": { "secretKeyRef": {
                                    "name": format!("{}-admin", self.opts.name),
                                    "key": "token",
                                    "optional": true,
                                } },
                            }],
                            // Models load before the server listens: the
                            // startup probe gives that 5 minutes.
                            "startupProbe": probe(LIVE_PATH, 5, 60),
                            "livenessProbe": probe(LIVE_PATH, 10, 3),
                            "readinessProbe": probe(READY_PATH, 5, 2),
                            "resources": self.requests(),
                            "volumeMounts": [
                                { "name": "graph", "mountPath": CONFIG_DIR, "readOnly": true },
                                { "name": "models", "mountPath": MODELS_DIR, "readOnly": true },
                            ],
                            "securityContext": { "allowPrivilegeEscalation": false },
                        }],
                        "volumes": [
                            { "name": "graph", "configMap": { "name": self.config_name() } },
                            self.models_volume(true),
                        ],
                    },
                },
            },
        })
    }

    pub(super) fn service(&self, name: &str, component: &str) -> Json {
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": self.metadata(name, component),
            "spec": {
                "selector": self.selector(component),
                "ports": [{ "name": "http", "port": PORT, "targetPort": PORT, "protocol": "TCP" }],
            },
        })
    }

    /// A Job whose one container runs `command` with the models volume
    /// writable.
    fn job(&self, name: &str, component: &str, spec: Json, command: Vec<String>) -> Json {
        let mut job = json!({
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": self.metadata(name, component),
            "spec": {
                "template": {
                    "metadata": { "labels": self.labels(component) },
                    "spec": {
                        "restartPolicy": "Never",
                        "securityContext": self.pod_security(),
                        "containers": [{
                            "name": component,
                            "image": self.opts.image,
                            "command": command,
                            "resources": self.requests(),
                            "volumeMounts": [{ "name": "models", "mountPath": MODELS_DIR }],
                            "securityContext": { "allowPrivilegeEscalation": false },
                        }],
                        "volumes": [self.models_volume(false)],
                    },
                },
            },
        });
        if let (Some(s), Json::Object(extra)) = (job["spec"].as_object_mut(), spec) {
            s.extend(extra);
        }
        job
    }

    /// Shard `I` of `N` is pod `I - 1` of an Indexed Job (Kubernetes
    /// numbers them from 0, `--shard` from 1).
    pub(super) fn train_job(&self, t: &TrainJob) -> Json {
        let mut cmd = format!(
            "mkdir -p {MODELS_DIR}/parts && exec {BINARY} train --learner {} --data {}",
            sh_quote(&t.learner),
            sh_quote(&on_volume(&t.data).unwrap_or_default())
        );
        for target in &t.target {
            let _ = write!(cmd, " --target {}", sh_quote(target));
        }
        for s in &t.set {
            let _ = write!(cmd, " --set {}", sh_quote(s));
        }
        if let Some(seed) = t.seed {
            let _ = write!(cmd, " --seed {seed}");
        }
        let _ = write!(
            cmd,
            " --shard \"$((JOB_COMPLETION_INDEX + 1))/{n}\" \
             --out \"{MODELS_DIR}/parts/part-$((JOB_COMPLETION_INDEX + 1)).tsr\"",
            n = t.shards
        );
        self.job(
            &format!("{}-train", self.opts.name),
            "train",
            json!({
                "completionMode": "Indexed",
                "completions": t.shards,
                "parallelism": t.shards,
            }),
            vec!["/bin/sh".into(), "-c".into(), cmd],
        )
    }

    pub(super) fn merge_job(&self, t: &TrainJob) -> Json {
        let mut cmd = vec![BINARY.to_string(), "merge".into()];
        cmd.extend((1..=t.shards).map(|i| format!("{MODELS_DIR}/parts/part-{i}.tsr")));
        cmd.extend(["--out".into(), on_volume(&t.out).unwrap_or_default()]);
        self.job(
            &format!("{}-merge", self.opts.name),
            "merge",
            json!({ "backoffLimit": 2 }),
            cmd,
        )
    }

    /// KServe runs the container with the model its `storageUri` names
    /// at `/mnt/models`, sends requests to port 8080, and puts the
    /// InferenceService's name in for `{{.Name}}`.
    pub(super) fn serving_runtime(&self) -> Json {
        json!({
            "apiVersion": "serving.kserve.io/v1alpha1",
            "kind": "ServingRuntime",
            "metadata": self.metadata(&format!("{}-runtime", self.opts.name), "runtime"),
            "spec": {
                "annotations": {
                    "prometheus.kserve.io/port": KSERVE_PORT.to_string(),
                    "prometheus.kserve.io/path": "/metrics",
                },
                "supportedModelFormats": [{ "name": "tessera", "autoSelect": true }],
                "protocolVersions": ["v2"],
                "containers": [{
                    "name": "kserve-container",
                    "image": self.opts.image,
                    "args": [
                        "serve",
                        "--model",
                        format!("{{{{.Name}}}}={KSERVE_MODEL}"),
                        "--listen",
                        format!("0.0.0.0:{KSERVE_PORT}"),
                    ],
                    "ports": [{ "containerPort": KSERVE_PORT, "protocol": "TCP" }],
                    "resources": self.requests(),
                }],
            },
        })
    }

    pub(super) fn inference_service(&self) -> Json {
        let model = self
            .opts
            .train
            .as_ref()
            .map_or("model.tsr".to_string(), |t| {
                on_volume(&t.out)
                    .unwrap_or_default()
                    .trim_start_matches(&format!("{MODELS_DIR}/"))
                    .to_string()
            });
        json!({
            "apiVersion": "serving.kserve.io/v1beta1",
            "kind": "InferenceService",
            "metadata": self.metadata(&format!("{}-model", self.opts.name), "inference"),
            "spec": {
                "predictor": {
                    "model": {
                        "modelFormat": { "name": "tessera" },
                        "protocolVersion": "v2",
                        "runtime": format!("{}-runtime", self.opts.name),
                        "storageUri": format!("pvc://{}/{model}", self.opts.models_claim),
                    },
                },
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deploy::k8s::{
        TrainJob, manifests,
        tests::{GRAPH, find, graph},
    };

    #[test]
    fn training_shards_are_one_based() {
        let g = graph(GRAPH);
        let opts = K8sOptions {
            train: Some(TrainJob {
                shards: 4,
                learner: "random_forest".into(),
                data: "data/train.csv".into(),
                target: vec!["label".into()],
                set: vec!["n_estimators=100".into(), "name=it's".into()],
                seed: Some(7),
                out: "forest.tsr".into(),
            }),
            ..K8sOptions::default()
        };
        let out = manifests(&g, &opts).unwrap();
        let job = find(&out, "train/train-job.json");
        assert_eq!(job["spec"]["completionMode"], "Indexed");
        assert_eq!(job["spec"]["completions"], 4);
        assert_eq!(job["spec"]["parallelism"], 4);
        let cmd = job["spec"]["template"]["spec"]["containers"][0]["command"][2]
            .as_str()
            .unwrap();
        assert!(
            cmd.contains("--data /models/data/train.csv --target label"),
            "{cmd}"
        );
        assert!(cmd.contains(r"--set 'name=it'\''s' --seed 7"), "{cmd}");
        assert!(
            cmd.contains("--shard \"$((JOB_COMPLETION_INDEX + 1))/4\""),
            "{cmd}"
        );
        let merge = find(&out, "merge/merge-job.json");
        let cmd = merge["spec"]["template"]["spec"]["containers"][0]["command"]
            .as_array()
            .unwrap();
        assert_eq!(cmd[2], "/models/parts/part-1.tsr");
        assert_eq!(cmd[5], "/models/parts/part-4.tsr");
        assert_eq!(cmd[7], "/models/forest.tsr");
        let isvc = find(&out, "kserve/inferenceservice.json");
        assert_eq!(
            isvc["spec"]["predictor"]["model"]["storageUri"],
            "pvc://tessera-models/forest.tsr"
        );
    }

    #[test]
    fn the_kserve_runtime_takes_the_model_name_from_kserve() {
        let out = manifests(&graph(GRAPH), &K8sOptions::default()).unwrap();
        let rt = find(&out, "kserve/servingruntime.json");
        let args = &rt["spec"]["containers"][0]["args"];
        assert_eq!(args[2], "{{.Name}}=/mnt/models/model.tsr");
        assert_eq!(args[4], "0.0.0.0:8080");
        assert_eq!(rt["spec"]["protocolVersions"], json!(["v2"]));
    }
}
