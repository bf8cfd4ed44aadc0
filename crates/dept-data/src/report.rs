//! What `dept data` shows, as text: the registry's task table ([`TaskTable`]), a task's metrics, split policy and
//! files per split ([`TaskOverview`]), the table of split statistics ([`SplitTable`]) and one formatted example
//! ([`ShownExample`]). The binary parses arguments, loads splits and prints these.

use std::fmt;
use std::path::Path;

use crate::error::Result;
use crate::example::TextExample;
use crate::load::{find_source, SourceFiles};
use crate::stats::{split_stats, Lengths, SplitStats, PERCENTILES};
use crate::task::{Split, Task};
use crate::tasks::{paper_tasks, transfer_source_tasks};

/// One row of the task table: name, official name, metrics (best first), hub dataset, folders.
pub type TaskRow = [String; 5];

const TASK_HEADER: [&str; 5] = [
    "task",
    "official",
    "metrics (best first)",
    "hub dataset / files",
    "folders",
];

/// The registry as `dept data tasks` lists it: the paper's tasks, then the transfer source tasks, in aligned
/// columns (the last one, the folders, unpadded).
pub struct TaskTable {
    pub paper: Vec<TaskRow>,
    pub sources: Vec<TaskRow>,
}

impl TaskTable {
    /// The table of every task in the registry.
    pub fn of_registry() -> Self {
        TaskTable {
            paper: paper_tasks().map(task_row).collect(),
            sources: transfer_source_tasks().map(task_row).collect(),
        }
    }
}

/// A task's row; its metrics start with the one that picks the best checkpoint.
pub fn task_row(t: &Task) -> TaskRow {
    let best = t.best_metric.name();
    let mut metrics = vec![best];
    metrics.extend(t.metrics.iter().map(|m| m.name()).filter(|m| *m != best));
    [
        t.name.to_string(),
        t.official_name.to_string(),
        metrics.join(", "),
        t.hub_dataset.to_string(),
        t.dirs.join(" | "),
    ]
}

impl fmt::Display for TaskTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let header = TASK_HEADER.map(String::from);
        let mut widths = [0usize; 4];
        for row in std::iter::once(&header)
            .chain(&self.paper)
            .chain(&self.sources)
        {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let line = |f: &mut fmt::Formatter<'_>, row: &TaskRow| {
            for (cell, width) in row.iter().zip(widths) {
                write!(f, "{cell:<width$}  ")?;
            }
            writeln!(f, "{}", row[4])
        };
        writeln!(
            f,
            "The paper's {} tasks (21 NLP tasks, VQA and MSCOCO captions):",
            self.paper.len()
        )?;
        line(f, &header)?;
        self.paper.iter().try_for_each(|row| line(f, row))?;
        writeln!(f)?;
        writeln!(
            f,
            "Transfer source tasks (the paper uses them only as source tasks for transfer):"
        )?;
        self.sources.iter().try_for_each(|row| line(f, row))
    }
}

/// The head of `dept data stats`: the task's names, metrics and split policy, and which source split and file each
/// split is drawn from under `data_dir` (or why none is found).
pub struct TaskOverview<'a> {
    pub task: &'a Task,
    pub data_dir: &'a Path,
    /// The seed the re-splitting shuffles with.
    pub seed: u64,
}

impl<'a> TaskOverview<'a> {
    pub fn new(task: &'a Task, data_dir: &'a Path, seed: u64) -> Self {
        TaskOverview {
            task,
            data_dir,
            seed,
        }
    }
}

impl fmt::Display for TaskOverview<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.task;
        writeln!(
            f,
            "task      {} (official `{}`, hub `{}`)",
            t.name, t.official_name, t.hub_dataset
        )?;
        let names: Vec<&str> = t.metrics.iter().map(|m| m.name()).collect();
        writeln!(
            f,
            "metrics   {} (best checkpoint by {})",
            names.join(", "),
            t.best_metric.name()
        )?;
        writeln!(
            f,
            "splits    {}; shuffle seed {}",
            t.split_policy, self.seed
        )?;
        for split in Split::ALL {
            let source = t.source_split(split);
            let place = match find_source(t, self.data_dir, source) {
                Ok(SourceFiles::Original(p)) => p.display().to_string(),
                Ok(SourceFiles::Parquet(ps)) => match ps.first() {
                    Some(first) => {
                        format!("{} parquet shard(s) from {}", ps.len(), first.display())
                    }
                    None => "no parquet shards".to_string(),
                },
                Err(e) => format!("MISSING: {e}"),
            };
            writeln!(f, "  {split:<10} <- {:<22} {place}", source.hub_name())?;
        }
        Ok(())
    }
}

/// The split table of `dept data stats`, a row per split as it loads: its size, label balance, input length
/// percentiles and how many inputs are longer than `max_len`, or why it could not be loaded.
pub struct SplitTable<'a> {
    task: &'a Task,
    lengths: &'a Lengths,
    max_len: usize,
    loaded: usize,
}

impl<'a> SplitTable<'a> {
    /// A table for `task`'s splits, inputs measured with `lengths`.
    pub fn new(task: &'a Task, lengths: &'a Lengths, max_len: usize) -> Self {
        SplitTable {
            task,
            lengths,
            max_len,
            loaded: 0,
        }
    }

    /// The header row.
    pub fn header(&self) -> String {
        split_header(self.lengths.unit(), self.max_len)
    }

    /// One split's row, from its examples or from why they could not be loaded.
    pub fn row<E: fmt::Display>(
        &mut self,
        split: Split,
        examples: std::result::Result<&[TextExample], E>,
    ) -> Result<String> {
        let examples = match examples {
            Ok(examples) => examples,
            Err(why) => return Ok(format!("{split:<11} unavailable: {why}")),
        };
        let with_labels = self.task.labels.is_some();
        let stats = split_stats(examples, with_labels, self.lengths, self.max_len)?;
        self.loaded += 1;
        Ok(split_row(split, &stats))
    }

    /// True while no split has loaded.
    pub fn nothing_loaded(&self) -> bool {
        self.loaded == 0
    }
}

/// The header of the split table, inputs measured in `unit` (`words`, `tokens`).
pub fn split_header(unit: &str, max_len: usize) -> String {
    let percentiles: Vec<String> = PERCENTILES.iter().map(|p| format!("p{p}")).collect();
    format!(
        "{:<11} {:>8}  {:<40} input {unit} ({}) ; longer than {max_len}",
        "split",
        "examples",
        "targets",
        percentiles.join("/"),
    )
}

/// One split's row: size, label balance, input length percentiles and how many inputs are too long.
pub fn split_row(split: Split, s: &SplitStats) -> String {
    let lengths: Vec<String> = s
        .input_percentiles
        .iter()
        .map(|(_, v)| v.to_string())
        .collect();
    format!(
        "{:<11} {:>8}  {:<40} {} ; {}",
        split.name(),
        s.examples,
        label_balance(s),
        lengths.join(" / "),
        s.over_max_len
    )
}

/// Each target's share (`0: 120 (48.0%)  1: 130 (52.0%)`), or a count where there are more than six, `free text`
/// for tasks without labels, `-` for an empty split.
fn label_balance(s: &SplitStats) -> String {
    if s.examples == 0 {
        "-".to_string()
    } else if s.labels.is_empty() {
        "free text".to_string()
    } else if s.labels.len() > 6 {
        format!("{} distinct", s.labels.len())
    } else {
        s.labels
            .iter()
            .map(|(l, n)| format!("{l}: {n} ({:.1}%)", 100.0 * *n as f64 / s.examples as f64))
            .collect::<Vec<_>>()
            .join("  ")
    }
}

/// One example as `dept data show` prints it: id, input and target, then what scoring needs besides, if any.
pub struct ShownExample<'a>(pub &'a TextExample);

impl fmt::Display for ShownExample<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = self.0;
        writeln!(f, "id      {}", e.id)?;
        writeln!(f, "input   {}", e.input)?;
        writeln!(f, "target  {}", e.target)?;
        if let Some(group) = &e.extra.group {
            writeln!(f, "group   {group}")?;
        }
        if let Some(image) = &e.extra.image {
            writeln!(f, "image   {image}")?;
        }
        if !e.extra.answers.is_empty() {
            writeln!(f, "answers {:?}", e.extra.answers)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::tasks::task;

    fn stats(labels: &[(&str, usize)], examples: usize) -> SplitStats {
        SplitStats {
            examples,
            labels: labels.iter().map(|(l, n)| (l.to_string(), *n)).collect(),
            input_percentiles: PERCENTILES.iter().map(|&p| (p, usize::from(p))).collect(),
            over_max_len: 2,
        }
    }

    #[test]
    fn split_rows_show_balance_lengths_and_overflow() {
        let row = split_row(Split::Train, &stats(&[("0", 1), ("1", 3)], 4));
        assert_eq!(
            row,
            format!(
                "train              4  {:<40} 0 / 50 / 90 / 95 / 99 / 100 ; 2",
                "0: 1 (25.0%)  1: 3 (75.0%)"
            )
        );
        let free = split_row(Split::Test, &stats(&[], 4));
        assert!(
            free.starts_with("test               4  free text "),
            "{free}"
        );
        let many: Vec<(String, usize)> = (0..7).map(|i| (i.to_string(), 1)).collect();
        let many = SplitStats {
            labels: many.into_iter().collect::<BTreeMap<_, _>>(),
            ..stats(&[], 7)
        };
        assert!(split_row(Split::Validation, &many).contains("  7 distinct "));
        let empty = SplitStats {
            input_percentiles: Vec::new(),
            ..stats(&[], 0)
        };
        assert_eq!(
            split_row(Split::Train, &empty),
            format!("train              0  {:<40}  ; 2", "-")
        );
        assert_eq!(
            split_header("words", 256),
            format!(
                "split       examples  {:<40} input words (p0/p50/p90/p95/p99/p100) ; longer than 256",
                "targets"
            )
        );
    }

    #[test]
    fn a_split_table_counts_the_splits_that_loaded() {
        let rte = task("rte").unwrap();
        let lengths = Lengths::Words;
        let mut table = SplitTable::new(rte, &lengths, 3);
        assert_eq!(table.header(), split_header("words", 3));
        let missing = table
            .row(Split::Train, Err::<&[TextExample], _>("no file"))
            .unwrap();
        assert_eq!(missing, "train       unavailable: no file");
        assert!(table.nothing_loaded());
        let example = TextExample {
            id: "0".into(),
            input: "one two three four".into(),
            target: "1".into(),
            extra: Default::default(),
        };
        let row = table
            .row(Split::Test, Ok::<_, &str>(&[example][..]))
            .unwrap();
        assert!(
            row.starts_with("test               1  1: 1 (100.0%) "),
            "{row}"
        );
        assert!(row.ends_with(" 4 / 4 / 4 / 4 / 4 / 4 ; 1"), "{row}");
        assert!(!table.nothing_loaded());
    }

    #[test]
    fn the_task_table_aligns_every_row_and_puts_the_best_metric_first() {
        let table = TaskTable::of_registry();
        assert_eq!((table.paper.len(), table.sources.len()), (23, 2));
        let mrpc = task_row(task("mrpc").unwrap());
        assert_eq!(mrpc[2], "accuracy, f1");
        assert_eq!(mrpc[4], "MRPC | mrpc");
        let text = table.to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("The paper's 23 tasks"), "{text}");
        let folders = lines[1].find("folders").unwrap();
        for line in lines[1..25].iter().chain(&lines[27..]) {
            assert_eq!(line.chars().nth(folders - 1), Some(' '), "{line}");
            assert_ne!(line.chars().nth(folders), Some(' '), "{line}");
        }
        assert_eq!(lines.len(), 1 + 1 + 23 + 1 + 1 + 2);
    }
}
