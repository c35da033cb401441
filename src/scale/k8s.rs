//! Kubernetes: `chimera k8s manifest` prints an Indexed Job that runs a campaign's shards, one
//! pod each (`chimera run --shard $JOB_COMPLETION_INDEX/N`), beside a ConfigMap that ships the
//! manifests; with `--report`, the Job that reports the campaign once the shards are done.
//! The YAML is written by hand: every string from the user, or that could be misread (the
//! shell command), is a double-quoted JSON string, which YAML reads as it is.

use std::collections::BTreeSet;

use crate::plan::ShardBy;
use crate::plan::shard::MAX_SHARDS;

/// What `chimera k8s manifest` prints.
#[derive(Debug, Clone)]
pub struct K8sOptions {
    /// The manifests: (file name, e.g. `tr114.yaml`, and its full text). They are shipped in a
    /// ConfigMap.
    pub manifests: Vec<(String, String)>,
    /// Campaign name (also names the Kubernetes objects, after sanitising to a DNS-1123 label:
    /// lower-case alphanumerics and '-', at most 63 chars incl. prefix `chimera-`; the campaign
    /// name itself may contain `.`, `_`, `+`).
    pub campaign: String,
    /// Shards (completions and parallelism of the Job), >= 1.
    pub shards: u32,
    /// How the plan is split into shards (`chimera run --shard-by`).
    pub shard_by: ShardBy,
    /// Container image that has `chimera` on PATH (and the servers the manifests manage).
    pub image: String,
    /// PersistentVolumeClaim (ReadWriteMany) mounted at `data_mount` in every pod.
    pub claim: String,
    /// Where the claim is mounted; the campaign lives in `<data_mount>/<campaign>/`. Default
    /// `/data`.
    pub data_mount: String,
    /// GPUs per shard (`nvidia.com/gpu` limit); 0 = none.
    pub gpus: u32,
    /// Namespace, when given.
    pub namespace: Option<String>,
}

/// Why no Kubernetes objects could be written; each message says what to change.
#[derive(Debug, thiserror::Error)]
pub enum K8sError {
    /// The campaign name (as given) is not one the store takes, or cannot name objects: why.
    #[error("campaign name {0:?} {1}: pass --campaign with letters and digits (e.g. `tr114`)")]
    Campaign(String, &'static str),
    /// Zero shards, or more than `chimera run --shard` takes.
    #[error("{0} shards: pass --shards from 1 to {MAX_SHARDS} (one pod each)")]
    Shards(u32),
    /// No manifests.
    #[error("no manifests: pass one or more manifest files (e.g. `experiments/tr114.yaml`)")]
    NoManifests,
    /// A manifest file name that cannot be a ConfigMap key.
    #[error(
        "manifest file name {0:?} cannot be a ConfigMap key: rename it to letters, digits, `._-`"
    )]
    ManifestName(String),
    /// Two manifests with one file name, which would share a ConfigMap key.
    #[error("two manifests are named `{0}` (one ConfigMap key): rename one of the files")]
    DuplicateManifest(String),
    /// An option (`image`, `claim`, `data-mount`, `namespace`) whose value (as given)
    /// Kubernetes, or the pods' shell command, would not take.
    #[error("--{0} {1:?} {fix}", fix = fix(.0))]
    Setting(&'static str, String),
}

/// What [`K8sError::Setting`] says to do.
fn fix(option: &str) -> &'static str {
    match option {
        "image" => "is not a container image: pass one without spaces",
        "claim" => "is not a claim name: pass lower-case letters, digits, `-` and `.`",
        "data-mount" => "cannot be mounted: pass an absolute path of letters, digits, `/._-`",
        _ => "is not a namespace: pass at most 63 lower-case letters, digits and `-`",
    }
}

/// Where the ConfigMap is mounted in every pod.
const MANIFEST_DIR: &str = "/manifests";
/// Where every pod copies the manifests before running chimera: the mounted files are
/// symlinks into a per-pod timestamped folder, and the campaign records its manifests' real
/// paths (`status`, `analyze` and `report` find `depends_on` siblings there), so every pod, the
/// report's included, reads them from the same plain path.
const LOCAL_DIR: &str = "/tmp/chimera-manifests";

/// `mkdir -p <LOCAL_DIR> && cp -L /manifests/<f>... <LOCAL_DIR>/ && `.
fn copy_manifests(o: &K8sOptions) -> String {
    let mut s = format!("mkdir -p {LOCAL_DIR} && cp -L");
    for (file, _) in &o.manifests {
        s += &format!(" {MANIFEST_DIR}/{file}");
    }
    s + &format!(" {LOCAL_DIR}/ && ")
}
/// Retries of one failed index (pod) before it counts as failed.
const BACKOFF_PER_INDEX: u32 = 2;
/// The longest sanitised campaign name, so that `chimera-<name>-manifests` and the pods'
/// hostnames `chimera-<name>-<index>` fit in a DNS-1123 label (63 characters).
const MAX_NAME: usize = 63 - "chimera-".len() - "-manifests".len();

/// The YAML documents (separated by `---`): a ConfigMap `chimera-<name>-manifests` holding the
/// manifests, and an Indexed Job `chimera-<name>` whose pod `I` runs
/// `chimera run <manifests> --data <mount> --campaign <c> --shard "$JOB_COMPLETION_INDEX/N"
/// --shard-by <by>` (the manifests copied out of the ConfigMap first), after a `#` comment
/// block on how to apply, follow and report it.
pub fn shard_job(o: &K8sOptions) -> Result<String, K8sError> {
    let c = check(o)?;
    let mut script = copy_manifests(o) + "exec chimera run";
    for (file, _) in &o.manifests {
        script += &format!(" {LOCAL_DIR}/{file}");
    }
    let (n, by) = (o.shards, o.shard_by.name());
    script += &format!(" --data {} --campaign {}", o.data_mount, o.campaign);
    script += &format!(" --shard \"$JOB_COMPLETION_INDEX/{n}\" --shard-by {by}");
    let spec = format!(
        "  completionMode: Indexed\n  completions: {n}\n  parallelism: {n}\n  \
         backoffLimitPerIndex: {BACKOFF_PER_INDEX}\n  maxFailedIndexes: {n}\n"
    );
    let (header, configmap) = (shard_header(o, &c), configmap(o, &c));
    let job = job(o, &c, "shard", &spec, &script);
    Ok(format!("{header}---\n{configmap}---\n{job}"))
}

/// The report Job `chimera-<name>-report` (one pod, no GPU, same claim and ConfigMap): runs
/// `chimera status ...; chimera report --data <mount> --campaign <c>`, after a comment block
/// saying to apply it once the shard Job completed.
pub fn report_job(o: &K8sOptions) -> Result<String, K8sError> {
    let c = check(o)?;
    let args = format!("--data {} --campaign {}", o.data_mount, o.campaign);
    let script = format!(
        "{}chimera status {args}; chimera analyze {args}; exec chimera report {args}",
        copy_manifests(o)
    );
    let spec = "  completions: 1\n  parallelism: 1\n  backoffLimit: 2\n";
    let job = job(o, &c, "report", spec, &script);
    Ok(format!("{}---\n{job}", report_header(o, &c)))
}

/// The names derived from checked options: the sanitised campaign name (`label`, the campaign
/// label), the shard Job `chimera-<label>`, the ConfigMap `chimera-<label>-manifests`, and
/// ` -n <namespace>` (or nothing) for the kubectl commands in the comments.
struct Names {
    label: String,
    job: String,
    configmap: String,
    ns: String,
}

/// Checks every option (so that the values need no quoting in the shell command nor in the
/// comments) and derives the object names.
fn check(o: &K8sOptions) -> Result<Names, K8sError> {
    let label = k8s_name(&o.campaign)?;
    if !(1..=MAX_SHARDS).contains(&o.shards) {
        return Err(K8sError::Shards(o.shards));
    }
    check_manifests(&o.manifests)?;
    let image = !o.image.is_empty() && !o.image.contains(|c: char| c.is_whitespace());
    let claim = o.claim.len() <= 253 && o.claim.split('.').all(is_dns_label);
    let ns = o.namespace.as_deref();
    let settings = [
        ("image", &o.image[..], image),
        ("claim", &o.claim, claim),
        ("data-mount", &o.data_mount, is_data_mount(&o.data_mount)),
        (
            "namespace",
            ns.unwrap_or_default(),
            ns.is_none_or(is_dns_label),
        ),
    ];
    if let Some(&(option, value, _)) = settings.iter().find(|s| !s.2) {
        return Err(K8sError::Setting(option, value.to_owned()));
    }
    Ok(Names {
        job: format!("chimera-{label}"),
        configmap: format!("chimera-{label}-manifests"),
        ns: ns.map(|ns| format!(" -n {ns}")).unwrap_or_default(),
        label,
    })
}

/// Checks that the manifests' file names are distinct ConfigMap keys: 1 to 253 of
/// `[-._a-zA-Z0-9]`, not `.` nor starting with `..`.
fn check_manifests(manifests: &[(String, String)]) -> Result<(), K8sError> {
    if manifests.is_empty() {
        return Err(K8sError::NoManifests);
    }
    let mut seen = BTreeSet::new();
    for (name, _) in manifests {
        let key = plain(name, b"-._") && (1..=253).contains(&name.len());
        if !key || name == "." || name.starts_with("..") {
            return Err(K8sError::ManifestName(name.clone()));
        }
        if !seen.insert(name) {
            return Err(K8sError::DuplicateManifest(name.clone()));
        }
    }
    Ok(())
}

/// Whether `s` is only ASCII letters, digits and the bytes of `extra`.
fn plain(s: &str, extra: &[u8]) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || extra.contains(&b))
}

/// The campaign name as a DNS-1123 label part, after checking it as the store does (and for a
/// leading `-`, which the command line would take for an option): lower-cased, each run of
/// other characters one `-`, trimmed of `-`; a name longer than [`MAX_NAME`] is cut and ends
/// in 8 hex digits of a hash (FNV-1a) of the whole campaign name, to keep long names apart.
fn k8s_name(campaign: &str) -> Result<String, K8sError> {
    let why = if campaign.is_empty() || campaign.len() > 200 {
        "is empty or longer than 200 bytes"
    } else if campaign.starts_with(['.', '-']) {
        "starts with `.` or `-`"
    } else if !plain(campaign, b"._-+") {
        "has characters other than letters, digits, `.`, `_`, `-` and `+`"
    } else if !campaign.bytes().any(|b| b.is_ascii_alphanumeric()) {
        "has no letter or digit to name the Kubernetes objects with"
    } else {
        ""
    };
    if !why.is_empty() {
        return Err(K8sError::Campaign(campaign.to_owned(), why));
    }
    let lower = campaign.to_ascii_lowercase();
    let mut words: Vec<&str> = lower.split(|c: char| !c.is_ascii_alphanumeric()).collect();
    words.retain(|w| !w.is_empty());
    let s = words.join("-");
    if s.len() <= MAX_NAME {
        return Ok(s);
    }
    let fnv = |h: u64, b: u8| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    let hash = campaign.bytes().fold(0xcbf2_9ce4_8422_2325, fnv) as u32;
    let head = s[..MAX_NAME - 9].trim_end_matches('-');
    Ok(format!("{head}-{hash:08x}"))
}

/// A DNS-1123 label: 1 to 63 lower-case alphanumerics and `-`, alphanumeric at both ends.
fn is_dns_label(s: &str) -> bool {
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let ends = s.as_bytes().first().is_some_and(alnum) && s.as_bytes().last().is_some_and(alnum);
    ends && s.len() <= 63 && s.bytes().all(|b| alnum(&b) || b == b'-')
}

/// A mount path for the claim: absolute, of characters that need no quoting, not `/`, not
/// [`MANIFEST_DIR`] nor inside it, without `..`.
fn is_data_mount(s: &str) -> bool {
    let manifests = s.trim_end_matches('/') == MANIFEST_DIR || s.starts_with("/manifests/");
    let root = s.trim_matches('/').is_empty();
    plain(s, b"/._-") && s.starts_with('/') && !root && !manifests && !s.contains("..")
}

/// A double-quoted YAML scalar: the JSON string of `s`, with the characters that YAML does not
/// take raw (DEL, C1 controls, U+FEFF, U+FFFE, U+FFFF) or that YAML 1.1 readers take for line
/// breaks (U+0085, U+2028, U+2029) escaped too, as `\uXXXX`.
fn q(s: &str) -> String {
    let json = serde_json::Value::String(s.to_owned()).to_string();
    let escape = |c: char| match u32::from(c) {
        0x20..=0x7e | 0xa0..=0x2027 | 0x202a..=0xd7ff | 0xe000..=0xfefe => c.to_string(),
        0xff00..=0xfffd | 0x10000.. => c.to_string(),
        n => format!("\\u{n:04x}"),
    };
    json.chars().map(escape).collect()
}

/// `metadata:` at `indent`: the name and namespace (unless `name` is empty: a pod template's
/// metadata), and the labels.
fn metadata(o: &K8sOptions, c: &Names, name: &str, role: &str, indent: usize) -> String {
    let mut id = String::new();
    if !name.is_empty() {
        id = format!("  name: {}\n", q(name));
        if let Some(ns) = &o.namespace {
            id += &format!("  namespace: {}\n", q(ns));
        }
    }
    let text = format!(
        "metadata:\n{id}  labels:\n    app.kubernetes.io/name: chimera\n    \
         chimera.dev/campaign: {}\n    chimera.dev/role: {role}\n",
        q(&c.label)
    );
    let pad = " ".repeat(indent);
    text.lines().map(|l| format!("{pad}{l}\n")).collect()
}

/// The ConfigMap holding the manifests, keyed by file name.
fn configmap(o: &K8sOptions, c: &Names) -> String {
    let mut out = "apiVersion: v1\nkind: ConfigMap\n".to_owned();
    out += &metadata(o, c, &c.configmap, "manifests", 0);
    out += "data:\n";
    for (name, text) in &o.manifests {
        out += &format!("  {}: {}\n", q(name), q(text));
    }
    out
}

/// A Job (`role` "shard" or "report"): `spec` lines atop its spec, a container running `script`
/// with `sh -c`, the ConfigMap read-only at `/manifests`, the claim at the data mount; a shard
/// gets the GPUs, and then a RAM-backed `/dev/shm` (inference servers' GPU workers share
/// tensors there; a container's default one is 64 MiB).
fn job(o: &K8sOptions, c: &Names, role: &str, spec: &str, script: &str) -> String {
    let (name, gpus) = match role {
        "shard" => (c.job.clone(), o.gpus),
        _ => (format!("{}-{role}", c.job), 0),
    };
    let (mut limits, mut shm_mount, mut shm_volume) = (String::new(), "", "");
    if gpus > 0 {
        limits = format!(
            "{:10}resources:\n{:12}limits:\n{:14}nvidia.com/gpu: {gpus}\n",
            "", "", ""
        );
        shm_mount = "            - name: dshm\n              mountPath: \"/dev/shm\"\n";
        shm_volume = "        - name: dshm\n          emptyDir:\n            medium: Memory\n";
    }
    format!(
        "apiVersion: batch/v1\n\
         kind: Job\n\
         {meta}\
         spec:\n\
         {spec}\
         \x20 template:\n\
         {pod_meta}\
         \x20   spec:\n\
         \x20     restartPolicy: Never\n\
         \x20     containers:\n\
         \x20       - name: chimera\n\
         \x20         image: {image}\n\
         \x20         command: [\"sh\", \"-c\", {script}]\n\
         {limits}\
         \x20         volumeMounts:\n\
         \x20           - name: manifests\n\
         \x20             mountPath: {dir}\n\
         \x20             readOnly: true\n\
         \x20           - name: data\n\
         \x20             mountPath: {mount}\n\
         {shm_mount}\
         \x20     volumes:\n\
         \x20       - name: manifests\n\
         \x20         configMap:\n\
         \x20           name: {cm}\n\
         \x20       - name: data\n\
         \x20         persistentVolumeClaim:\n\
         \x20           claimName: {claim}\n\
         {shm_volume}",
        meta = metadata(o, c, &name, role, 0),
        pod_meta = metadata(o, c, "", role, 4),
        image = q(&o.image),
        script = q(script),
        dir = q(MANIFEST_DIR),
        mount = q(&o.data_mount),
        cm = q(&c.configmap),
        claim = q(&o.claim),
    )
}

/// The comment block above the shard Job: what it is, how to apply, follow and report it.
fn shard_header(o: &K8sOptions, c: &Names) -> String {
    let (job, ns, camp, mount, claim) = (&c.job, &c.ns, &o.campaign, &o.data_mount, &o.claim);
    let (n, by, gpus, cm, label) = (o.shards, o.shard_by.name(), o.gpus, &c.configmap, &c.label);
    format!(
        "# chimera: campaign `{camp}` as a Kubernetes Indexed Job: {n} shard(s), one pod each\n\
         # (--shard-by {by}, {gpus} GPU(s) per pod). Pod I runs `chimera run ... --shard I/{n}`\n\
         # into {mount}/{camp}/ on the ReadWriteMany claim {claim}; the manifests ship in the\n\
         # ConfigMap {cm}, read-only at {MANIFEST_DIR}. Written by `chimera k8s manifest`.\n\
         #\n\
         # Apply:   kubectl apply{ns} -f FILE  (or pipe `chimera k8s manifest ...` into `-f -`)\n\
         # Follow:  kubectl get pods{ns} -l chimera.dev/campaign={label}\n\
         #          kubectl logs{ns} -l chimera.dev/campaign={label} --prefix --tail=20\n\
         # Status:  no kubectl exec needed: in any pod that mounts the claim {claim}, run\n\
         #          chimera status --data {mount} --campaign {camp}\n\
         # Retries: a failed shard (index) is retried alone, up to {BACKOFF_PER_INDEX} times\n\
         #          (backoffLimitPerIndex; Kubernetes 1.29+), while the others go on. To rerun\n\
         #          shards that failed for good: kubectl delete{ns} job {job}, then apply again.\n\
         # Report:  kubectl wait{ns} --for=condition=complete --timeout=-1s job/{job}\n\
         #          chimera k8s manifest <the same arguments> --report | kubectl apply{ns} -f -\n\
         #          (if shards failed for good, the Job ends Failed and the wait goes on; see\n\
         #          kubectl get{ns} job {job} -o jsonpath='{{.status.failedIndexes}}')\n"
    )
}

/// The comment block above the report Job.
fn report_header(o: &K8sOptions, c: &Names) -> String {
    let (job, ns, camp, mount, claim) = (&c.job, &c.ns, &o.campaign, &o.data_mount, &o.claim);
    let (n, cm) = (o.shards, &c.configmap);
    format!(
        "# chimera: the report of campaign `{camp}` as a Kubernetes Job (one pod, no GPU): runs\n\
         # `chimera status`, then `chimera report --data {mount} --campaign {camp}`, on the\n\
         # claim {claim}, which holds the union of the {n} shard(s). It mounts the ConfigMap\n\
         # {cm}, applied with the shard Job. Apply it after the shard Job completed:\n\
         #   kubectl wait{ns} --for=condition=complete --timeout=-1s job/{job}\n\
         #   kubectl apply{ns} -f FILE  (or pipe `chimera k8s manifest ... --report` into `-f -`)\n\
         #   kubectl logs{ns} -f job/{job}-report\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    /// Quotes, colons, `#`, `${VAR}`, `---`, tab, backslash, CRLF, ü, DEL, NEL, U+2028, NUL.
    const TRICKY: &str = "name: \"tr114\" # no comment\nurl: 'http://h:8000/v1'\nenv: ${HF_TOKEN}\
                          \n---\n\tkey: a\\b\r\nü \u{2028} \u{7f} \u{85} \u{0}: |\n";

    /// The options of the tests, changed by `f`.
    fn with(f: impl FnOnce(&mut K8sOptions)) -> K8sOptions {
        let manifests = vec![
            ("tr114.yaml".into(), TRICKY.into()),
            ("b.yml".into(), "".into()),
        ];
        let mut o = K8sOptions {
            manifests,
            campaign: "TR114_v2+demo".into(),
            shards: 4,
            shard_by: ShardBy::Configuration,
            image: "ghcr.io/org/chimera:1.0".into(),
            claim: "bench-data".into(),
            data_mount: "/data".into(),
            gpus: 2,
            namespace: None,
        };
        f(&mut o);
        o
    }

    /// The documents of `yaml`, parsed back.
    fn docs(yaml: &Result<String, K8sError>) -> Vec<Value> {
        let yaml = yaml.as_ref().expect("valid options");
        serde_saphyr::from_multiple(yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"))
    }

    /// The documents of the shard and the report Jobs of `o`.
    fn both(o: &K8sOptions) -> Vec<Value> {
        [docs(&shard_job(o)), docs(&report_job(o))].concat()
    }

    /// The labels of the test campaign's objects.
    fn labels(role: &str) -> Value {
        json!({"app.kubernetes.io/name": "chimera", "chimera.dev/campaign": "tr114-v2-demo",
               "chimera.dev/role": role})
    }

    /// The pod spec of the test campaign's Jobs, with the command `sh -c <script>`.
    fn pod(script: &str, gpus: bool) -> Value {
        let mut pod = json!({
            "restartPolicy": "Never",
            "containers": [{
                "name": "chimera", "image": "ghcr.io/org/chimera:1.0",
                "command": ["sh", "-c", script],
                "volumeMounts": [{"name": "manifests", "mountPath": "/manifests", "readOnly": true},
                                 {"name": "data", "mountPath": "/data"}]
            }],
            "volumes": [
                {"name": "manifests", "configMap": {"name": "chimera-tr114-v2-demo-manifests"}},
                {"name": "data", "persistentVolumeClaim": {"claimName": "bench-data"}}
            ]
        });
        if gpus {
            let c = &mut pod["containers"][0];
            c["resources"] = json!({"limits": {"nvidia.com/gpu": 2}});
            let mounts = c["volumeMounts"].as_array_mut().expect("mounts");
            mounts.push(json!({"name": "dshm", "mountPath": "/dev/shm"}));
            let volumes = pod["volumes"].as_array_mut().expect("volumes");
            volumes.push(json!({"name": "dshm", "emptyDir": {"medium": "Memory"}}));
        }
        pod
    }

    #[test]
    fn shard_job_is_a_configmap_and_an_indexed_job() {
        let cm = json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "chimera-tr114-v2-demo-manifests", "labels": labels("manifests")},
            "data": {"tr114.yaml": TRICKY, "b.yml": ""}
        });
        let run = "mkdir -p /tmp/chimera-manifests && cp -L /manifests/tr114.yaml /manifests/b.yml \
                   /tmp/chimera-manifests/ && exec chimera run /tmp/chimera-manifests/tr114.yaml \
                   /tmp/chimera-manifests/b.yml --data /data --campaign TR114_v2+demo --shard \
                   \"$JOB_COMPLETION_INDEX/4\" --shard-by configuration";
        let job = json!({
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "chimera-tr114-v2-demo", "labels": labels("shard")},
            "spec": {
                "completionMode": "Indexed", "completions": 4, "parallelism": 4,
                "backoffLimitPerIndex": 2, "maxFailedIndexes": 4,
                "template": {"metadata": {"labels": labels("shard")}, "spec": pod(run, true)}
            }
        });
        assert_eq!(docs(&shard_job(&with(|_| {}))), [cm, job]);
        let one = with(|o| (o.shards, o.shard_by) = (1, ShardBy::Comparison));
        let spec = &docs(&shard_job(&one))[1]["spec"];
        let cmd = &spec["template"]["spec"]["containers"][0]["command"][2];
        let tail = " --shard \"$JOB_COMPLETION_INDEX/1\" --shard-by comparison";
        assert!(cmd.as_str().is_some_and(|s| s.ends_with(tail)), "{cmd}");
        assert_eq!(spec["completions"], 1);
        assert_eq!(spec["parallelism"], 1);
    }

    #[test]
    fn report_job_runs_status_then_report_without_gpus() {
        let args = "--data /data --campaign TR114_v2+demo";
        let script = format!(
            "mkdir -p /tmp/chimera-manifests && cp -L /manifests/tr114.yaml /manifests/b.yml \
             /tmp/chimera-manifests/ && chimera status {args}; chimera analyze {args}; exec \
             chimera report {args}"
        );
        let job = json!({
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "chimera-tr114-v2-demo-report", "labels": labels("report")},
            "spec": {
                "completions": 1, "parallelism": 1, "backoffLimit": 2,
                "template": {"metadata": {"labels": labels("report")}, "spec": pod(&script, false)}
            }
        });
        assert_eq!(docs(&report_job(&with(|_| {}))), [job]);
    }

    #[test]
    fn gpus_namespace_and_mount_change_only_their_part() {
        let o = with(|o| (o.gpus, o.namespace) = (0, Some("ns".into())));
        let mut want = both(&with(|_| {}));
        want.iter_mut()
            .for_each(|d| d["metadata"]["namespace"] = json!("ns"));
        let run = want[1]["spec"]["template"]["spec"]["containers"][0]["command"][2].take();
        want[1]["spec"]["template"]["spec"] = pod(run.as_str().expect("a script"), false);
        assert_eq!(both(&o), want);
        let text = [shard_job(&o), report_job(&o), shard_job(&with(|_| {}))].map(Result::unwrap);
        let ns = text.map(|t| (t.contains("kubectl apply -n ns -f"), t.contains(" -n ")));
        assert_eq!(ns, [(true, true), (true, true), (false, false)]);
        let d = docs(&report_job(&with(|o| o.data_mount = "/mnt/b".into())));
        let container = &d[0]["spec"]["template"]["spec"]["containers"][0];
        let data = json!({"name": "data", "mountPath": "/mnt/b"});
        assert_eq!(container["volumeMounts"][1], data);
        let cmd = container["command"][2].to_string();
        assert!(cmd.contains("status --data /mnt/b --") && cmd.contains("report --data /mnt/b --"));
    }

    #[test]
    fn configmap_round_trips_the_manifest_texts() {
        let more = [("null".into(), "1".into()), ("-".into(), TRICKY.repeat(3))];
        let o = with(|o| o.manifests.extend(more));
        let d = docs(&shard_job(&o));
        let data = d[0]["data"].as_object().expect("a mapping");
        assert_eq!(data.len(), o.manifests.len());
        for (name, text) in &o.manifests {
            assert_eq!(data[name], json!(text), "{name}");
        }
    }

    #[test]
    fn names_are_sanitised_to_dns_labels() {
        let name = |c: &str| k8s_name(c).expect("a name");
        let names = ["TR114_v2+demo", "a..b__c+", "_.X"].map(name);
        assert_eq!(names, ["tr114-v2-demo", "a-b-c", "x"]);
        let long = |end| format!("{}{end}", "Long_".repeat(39));
        assert_ne!(name(&long('a')), name(&long('b')));
        let d = both(&with(|o| o.campaign = long('a')));
        let label = d[1]["metadata"]["labels"]["chimera.dev/campaign"].as_str();
        assert!(label.is_some_and(|l| l.len() <= MAX_NAME && is_dns_label(l)));
        for d in &d {
            let name = d["metadata"]["name"].as_str().expect("a name");
            assert!(name.len() <= 63 && is_dns_label(name) && name.starts_with("chimera-"));
        }
    }

    #[test]
    fn headers_say_how_to_apply_follow_and_report() {
        let yaml = [shard_job(&with(|_| {})), report_job(&with(|_| {}))].map(Result::unwrap);
        let again = shard_job(&with(|_| {})).expect("valid");
        assert_eq!(yaml[0], again, "deterministic");
        let wait = "kubectl wait --for=condition=complete --timeout=-1s job/chimera-tr114-v2-demo";
        let shard = "kubectl apply -f;kubectl get pods -l chimera.dev/campaign=tr114-v2-demo;\
                     chimera status --data /data --campaign TR114_v2+demo;retried alone;\
                     (backoffLimitPerIndex;--report | kubectl apply -f -";
        let needles: Vec<&str> = shard.split(';').chain([wait]).collect();
        let report_needles = [wait, "after the shard Job completed"];
        for (yaml, needles) in yaml.iter().zip([&needles[..], &report_needles]) {
            let (header, _) = yaml.split_once("\n---\n").expect("documents");
            assert!(header.lines().all(|l| l.starts_with('#')), "{header}");
            for needle in needles {
                assert!(header.contains(needle), "{needle} not in\n{header}");
            }
        }
    }

    #[test]
    fn errors_say_what_to_change() {
        let err = |o: K8sOptions| {
            let e = shard_job(&o).expect_err("invalid");
            let report = report_job(&o).err().map(|e| e.to_string());
            assert_eq!(Some(e.to_string()), report);
            e
        };
        let mount = |m: &str| with(|o| o.data_mount = m.into());
        let dup = with(|o| o.manifests[1].0 = "tr114.yaml".into());
        let ns = with(|o| o.namespace = Some("NS".into()));
        let long = with(|o| o.campaign = "x".repeat(201));
        let cases = [
            ("0 shards: pass --shards", with(|o| o.shards = 0)),
            ("10001 shards", with(|o| o.shards = MAX_SHARDS + 1)),
            ("no manifests: pass", with(|o| o.manifests.clear())),
            ("two manifests are named `tr114.yaml`", dup),
            ("campaign name \"xxx", long),
            ("--claim \"C\" is not", with(|o| o.claim = "C".into())),
            ("--image \"a b\" is not", with(|o| o.image = "a b".into())),
            ("--data-mount \"data\" cannot", mount("data")),
            ("--data-mount \"/manifests/x\"", mount("/manifests/x")),
            ("--data-mount \"/my data\"", mount("/my data")),
            ("--namespace \"NS\" is not", ns),
        ];
        for (want, o) in cases {
            let e = err(o).to_string();
            assert!(e.starts_with(want), "{e}");
        }
        for bad in ["_+_", "a b", "", ".x", "-x", "tr/114", "é"] {
            let e = err(with(|o| o.campaign = bad.into()));
            let fix = "pass --campaign with letters and digits";
            assert!(matches!(e, K8sError::Campaign(..)) && e.to_string().contains(fix));
        }
        for bad in ["sub/tr114.yaml", "..x", ".", "a b.yaml", ""] {
            let e = err(with(|o| o.manifests[1].0 = bad.into()));
            assert!(matches!(e, K8sError::ManifestName(_)), "{bad}: {e}");
        }
    }
}
