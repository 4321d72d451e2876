//! The README written beside the manifests: what each file is, and how
//! to apply them.

use std::{fmt::Write as _, path::PathBuf};

use super::{KSERVE_MODEL, KSERVE_PORT, objects::K8s};
use crate::deploy::{GraphFile, MODELS_DIR, PORT, on_volume};

impl K8s<'_> {
    /// The README for `graph`'s manifests, `files` each with what it is.
    pub(super) fn readme(&self, graph: &GraphFile, files: &[(PathBuf, String)]) -> String {
        let o = self.opts;
        let ns = o
            .namespace
            .as_ref()
            .map_or(String::new(), |n| format!(" -n {n}"));
        let graph_name = graph
            .path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let mut s = format!(
            "# Kubernetes manifests for {graph_name}\n\n\
             Written by `tessera deploy k8s`; run it again after changing the graph (it\n\
             rewrites these files and removes the ones it wrote that no longer belong).\n\n"
        );
        s.push_str("| file | what |\n|---|---|\n");
        for (p, what) in files {
            let _ = writeln!(s, "| `{}` | {what} |", p.display());
        }
        let _ = write!(
            s,
            "\n## Serving\n\n\
             1. Build the image from the repository root and push it where the cluster\n   \
             pulls from: `docker build -t {image} .`\n\
             2. Create the PersistentVolumeClaim `{claim}` (access mode `ReadOnlyMany`, or\n   \
             `ReadWriteMany` if the training Job writes to it too) and copy onto it\n   \
             the files the graph names, at the same paths relative to the graph file:\n\n",
            image = o.image,
            claim = o.models_claim,
        );
        for (key, path, here) in &graph.files {
            let _ = writeln!(
                s,
                "   - `{path}` (`{key}`) -> `{}`{}",
                on_volume(path).unwrap_or_default(),
                if *here {
                    ""
                } else {
                    " (not found where the graph file is)"
                }
            );
        }
        let _ = write!(
            s,
            "\n3. Optionally, the admin token (reload, load, unload), kept out of the\n   \
             ConfigMap: `kubectl{ns} create secret generic {name}-admin --from-literal=token=...`\n\
             4. `kubectl{ns} apply -f DIR` (the folder of this README; sub-folders are not\n   \
             applied by it).\n\
             5. Clients call the Service `{name}` on port {PORT} (in the cluster, or\n   \
             `kubectl{ns} port-forward svc/{name} {PORT}` from outside), e.g.\n   \
             `GET /v2/health/ready` and `POST /v2/models/<output>/infer`.\n\n\
             Each remote node's Service stands for its pods: the graph lists the\n\
             Service's URL once per replica, so the front host's retries and hedging\n\
             (`retries`, `hedge_after_ms`) go through the Service again, and\n\
             kube-proxy spreads the connections over the pods. Changing the graph\n\
             and applying again rolls every Deployment (the pods carry the graph's\n\
             checksum).\n",
            name = o.name,
        );
        if let Some(t) = &o.train {
            let _ = write!(
                s,
                "\n## Training\n\n\
                 The data `{data}` must be on the claim. `train/` trains {n} shards at once\n\
                 (`tessera train --shard I/{n}`) into `{MODELS_DIR}/parts/`; once it has\n\
                 completed, `merge/` joins them into `{out}`:\n\n\
                 ```\n\
                 kubectl{ns} apply -f DIR/train\n\
                 kubectl{ns} wait --for=condition=complete job/{name}-train --timeout=24h\n\
                 kubectl{ns} apply -f DIR/merge\n\
                 kubectl{ns} wait --for=condition=complete job/{name}-merge --timeout=1h\n\
                 ```\n\n\
                 Delete both Jobs before training again (a Job's pods are not re-run).\n",
                data = t.data,
                n = t.shards,
                out = on_volume(&t.out).unwrap_or_default(),
                name = o.name,
            );
        }
        let _ = write!(
            s,
            "\n## KServe\n\n\
             `kserve/` (needs KServe installed): `kubectl{ns} apply -f DIR/kserve`. The\n\
             runtime serves the one model file KServe puts at `{KSERVE_MODEL}`: the\n\
             InferenceService's `storageUri` must name a file `model.tsr` (or a folder\n\
             holding one); the model is served under the InferenceService's name, over\n\
             the Open Inference Protocol v2 on port {KSERVE_PORT}. Edit `storageUri` in\n\
             `kserve/inferenceservice.json` before applying it. A whole graph is served\n\
             by the Deployments above, not by KServe.\n"
        );
        s
    }
}
