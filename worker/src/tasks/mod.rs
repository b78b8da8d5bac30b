//! Tasks: pre-processing → model → post-processing, one file per task, listed in [`TASKS`].
//! A task turns what a page has (an image, audio, text) into tensors and the model's tensors
//! into what the page wants (a label, boxes, text).

mod digits;

use wick_shared::{TaskInput, TaskKind, TaskOutput};

use crate::engine::Model;
use crate::error::Result;

/// One registry row: a task and the function that runs it on a loaded model.
pub struct TaskDef {
    pub kind: TaskKind,
    pub run: fn(&Model, TaskInput) -> Result<Outcome>,
}

/// A task's answer plus the engine's run statistics.
pub struct Outcome {
    pub output: TaskOutput,
    pub peak_intermediate_bytes: u64,
}

pub static TASKS: &[TaskDef] = &[TaskDef { kind: TaskKind::Digits, run: digits::run }];

/// The kind of a task input.
pub fn kind_of(input: &TaskInput) -> TaskKind {
    match input {
        TaskInput::Digits { .. } => TaskKind::Digits,
    }
}

pub fn run(model: &Model, input: TaskInput) -> Result<Outcome> {
    let kind = kind_of(&input);
    let def = TASKS.iter().find(|t| t.kind == kind).ok_or_else(|| {
        crate::error::WickError::BadTask(format!("task {kind:?} is not available"))
    })?;
    (def.run)(model, input)
}

pub fn kinds() -> Vec<TaskKind> {
    TASKS.iter().map(|t| t.kind).collect()
}
