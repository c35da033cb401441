//! Reading the job file, with errors that name the file and the field.

use std::path::Path;

use chimera::workload::protocol::{AgentJob, PROTOCOL_VERSION};
use serde::Deserialize;
use serde_json::Value;

/// Reads and parses the job at `path`; an error names the file and, when it can, the field.
pub(crate) fn load(path: &Path) -> Result<AgentJob, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the job file {}: {e}", path.display()))?;
    let job = parse(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    if job.protocol != PROTOCOL_VERSION {
        return Err(format!(
            "{}: field `protocol`: version {} is not supported (this agent speaks {PROTOCOL_VERSION})",
            path.display(),
            job.protocol
        ));
    }
    Ok(job)
}

/// Parses a job; the error names the field.
fn parse(text: &str) -> Result<AgentJob, String> {
    let mut de = serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize::<_, AgentJob>(&mut de).map_err(|e| {
        let field = e.path().to_string();
        let inner = e.into_inner();
        if field.is_empty() || field == "." {
            return format!("invalid job: {inner}");
        }
        if field == "task"
            && let Some(why) = task_error(text)
        {
            return why;
        }
        format!("invalid job at field `{field}`: {inner}")
    })
}

// serde reads an internally tagged enum (`task`, tagged by `kind`) through a buffer, which
// loses the path inside it. These mirrors of `JobTask`'s variants only name the field of a
// task that `JobTask` refused; the job itself is always parsed as `JobTask`.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct SingleInference {
    kind: String,
    prompts: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct AgentWorkflow {
    kind: String,
    analysis_template: String,
    report_template: String,
    expected_files: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Persona {
    kind: String,
    prompt: String,
}

/// Which field of the job's `task` is wrong, when the mirrors can tell.
fn task_error(text: &str) -> Option<String> {
    let job: Value = serde_json::from_str(text).ok()?;
    let task = job.get("task")?;
    fn named<T: for<'de> Deserialize<'de>>(task: &Value) -> Option<String> {
        serde_path_to_error::deserialize::<_, T>(task)
            .err()
            .map(|e| {
                let field = e.path().to_string();
                let inner = e.into_inner();
                if field.is_empty() || field == "." {
                    format!("invalid job at field `task`: {inner}")
                } else {
                    format!("invalid job at field `task.{field}`: {inner}")
                }
            })
    }
    match task.get("kind").and_then(Value::as_str)? {
        "single_inference" => named::<SingleInference>(task),
        "agent_workflow" => named::<AgentWorkflow>(task),
        "persona" => named::<Persona>(task),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chimera::manifest::Options;
    use chimera::workload::protocol::{JobTask, ProtocolKind};

    fn job(task: JobTask) -> AgentJob {
        AgentJob {
            protocol: PROTOCOL_VERSION,
            cell_id: "c".into(),
            agent: "A".into(),
            role: "collector".into(),
            url: "http://127.0.0.1:1".into(),
            protocol_kind: ProtocolKind::Ollama,
            model: "m".into(),
            api: "generate".into(),
            stream: true,
            keep_alive: None,
            options: Options::default(),
            force_output_tokens: None,
            timeout_s: 5.0,
            task,
            corpus_dir: None,
            records: "/tmp/r".into(),
            seed: 1,
            runtime: None,
            language: None,
        }
    }

    fn tasks() -> [JobTask; 3] {
        [
            JobTask::SingleInference {
                prompts: vec!["a".into()],
            },
            JobTask::AgentWorkflow {
                analysis_template: "a".into(),
                report_template: "r".into(),
                expected_files: Some(3),
            },
            JobTask::Persona { prompt: "p".into() },
        ]
    }

    #[test]
    fn every_task_kind_parses_and_the_mirrors_accept_it() {
        for task in tasks() {
            let text = serde_json::to_string(&job(task.clone())).expect("json");
            assert_eq!(parse(&text).map(|j| j.task), Ok(task));
            // The mirrors agree with `JobTask`: nothing to say about a valid task.
            assert_eq!(task_error(&text), None, "{text}");
        }
    }

    #[test]
    fn errors_name_the_field() {
        let mut v = serde_json::to_value(job(tasks()[1].clone())).expect("json");
        v["task"]["expected_files"] = Value::from("many");
        let e = parse(&v.to_string()).expect_err("refused");
        assert!(e.contains("`task.expected_files`"), "{e}");
        v["task"]["expected_files"] = Value::from(3);
        v["task"]["extra"] = Value::from(1);
        let e = parse(&v.to_string()).expect_err("refused");
        assert!(e.contains("`task.extra`"), "{e}");
        let mut v = serde_json::to_value(job(tasks()[0].clone())).expect("json");
        v["options"]["temperature"] = Value::from("hot");
        let e = parse(&v.to_string()).expect_err("refused");
        assert!(e.contains("`options.temperature`"), "{e}");
        v["options"]["temperature"] = Value::from(0.5);
        v.as_object_mut().expect("object").remove("url");
        let e = parse(&v.to_string()).expect_err("refused");
        assert!(e.contains("url"), "{e}");
        v["task"] = serde_json::json!({"kind": "dance"});
        let e = parse(&v.to_string()).expect_err("refused");
        assert!(e.contains("`task.kind`") && e.contains("dance"), "{e}");
        assert!(parse("{").is_err());
    }
}
