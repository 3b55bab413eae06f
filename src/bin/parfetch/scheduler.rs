//! What the job scheduler says about this process: which part of the list
//! it is (`--shard auto`) and which attempt at it (for `--summary-json`).
//!
//! Array jobs start one command line many times and tell each copy its
//! place in variables of their own; reading them here means one command
//! line (one manifest, one script) serves every task. Indexes are 0-based,
//! as Kubernetes, Cloud Run and AWS Batch hand them out; Slurm's array ids
//! start wherever `--array` says, so its index is counted from
//! `SLURM_ARRAY_TASK_MIN` (in steps of `SLURM_ARRAY_TASK_STEP`).
//!
//! The environment is a parameter (`var`), so that every scheduler is
//! tested here without setting variables in the test process.

/// A scheduler that runs array jobs, and the variables it sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scheduler {
    /// An Indexed Job: the index only (the count is the Job's
    /// `completions`, which the pod is not told).
    Kubernetes,
    /// Cloud Run jobs: index and count.
    CloudRun,
    /// AWS Batch array jobs: index and size.
    AwsBatch,
    /// A Slurm job array: its ids, their least, greatest, step and count.
    Slurm,
}

/// Every scheduler `--shard auto` knows, in the order they are looked for.
const ALL: [Scheduler; 4] = [
    Scheduler::Kubernetes,
    Scheduler::CloudRun,
    Scheduler::AwsBatch,
    Scheduler::Slurm,
];

/// The variable with the count of shards where the scheduler gives none.
pub(crate) const SHARDS_VARIABLE: &str = "PARFETCH_SHARDS";

impl Scheduler {
    /// The variable whose presence says this scheduler started us.
    fn index_variable(self) -> &'static str {
        match self {
            Scheduler::Kubernetes => "JOB_COMPLETION_INDEX",
            Scheduler::CloudRun => "CLOUD_RUN_TASK_INDEX",
            Scheduler::AwsBatch => "AWS_BATCH_JOB_ARRAY_INDEX",
            Scheduler::Slurm => "SLURM_ARRAY_TASK_ID",
        }
    }

    /// The variable with the attempt number, where the scheduler sets one:
    /// AWS Batch counts from 1, Cloud Run from 0, Slurm sets its restart
    /// count only once a job was restarted. Kubernetes sets none.
    fn attempt_variable(self) -> Option<&'static str> {
        match self {
            Scheduler::Kubernetes => None,
            Scheduler::CloudRun => Some("CLOUD_RUN_TASK_ATTEMPT"),
            Scheduler::AwsBatch => Some("AWS_BATCH_JOB_ATTEMPT"),
            Scheduler::Slurm => Some("SLURM_RESTART_COUNT"),
        }
    }
}

/// This process's part of the list, as the scheduler gave it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Assignment {
    /// 0-based, below `count`.
    pub(crate) index: usize,
    pub(crate) count: usize,
    /// The scheduler that said so.
    pub(crate) scheduler: Scheduler,
    /// The variable the index came from.
    pub(crate) variable: &'static str,
}

/// The scheduler's attempt number, as it gives it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub(crate) struct Attempt {
    pub(crate) variable: &'static str,
    pub(crate) value: u64,
}

/// The part `--shard auto` takes: from the one scheduler whose variables
/// are set. `shards` is `--shards N`; without it, `PARFETCH_SHARDS` is read.
/// The count a scheduler gives and the one given here must agree.
///
/// # Errors
///
/// A message naming the variables: none set, several schedulers' set, a
/// value that is not a number, an index past the count, no count.
pub(crate) fn assignment(
    var: &impl Fn(&str) -> Option<String>,
    shards: Option<usize>,
) -> Result<Assignment, String> {
    let shards = match shards {
        Some(n) => Some((n, "--shards")),
        None => match var(SHARDS_VARIABLE) {
            Some(text) => Some((positive(SHARDS_VARIABLE, &text)?, SHARDS_VARIABLE)),
            None => None,
        },
    };
    let found: Vec<Scheduler> = ALL
        .into_iter()
        .filter(|s| var(s.index_variable()).is_some())
        .collect();
    let scheduler = match found[..] {
        [one] => one,
        [] => {
            return Err(format!(
                "--shard auto found no scheduler's index: none of JOB_COMPLETION_INDEX \
                 (Kubernetes Indexed Job, with --shards N or {SHARDS_VARIABLE}), \
                 CLOUD_RUN_TASK_INDEX (Cloud Run), AWS_BATCH_JOB_ARRAY_INDEX (AWS Batch) or \
                 SLURM_ARRAY_TASK_ID (Slurm) is set: run it as an array job, or say \
                 --shard K/N (0 <= K < N)"
            ))
        }
        _ => {
            let names: Vec<&str> = found.iter().map(|s| s.index_variable()).collect();
            return Err(format!(
                "--shard auto found the indexes of several schedulers ({}): unset the ones \
                 that do not belong to this job, or say --shard K/N",
                names.join(", ")
            ));
        }
    };
    let variable = scheduler.index_variable();
    let (index, given_count) = match scheduler {
        Scheduler::Kubernetes => (number(var, variable)?, None),
        Scheduler::CloudRun => (
            number(var, variable)?,
            Some(count(var, "CLOUD_RUN_TASK_COUNT")?),
        ),
        Scheduler::AwsBatch => (
            number(var, variable)?,
            Some(count(var, "AWS_BATCH_JOB_ARRAY_SIZE")?),
        ),
        Scheduler::Slurm => {
            let (index, count) = slurm(var)?;
            (index, Some(count))
        }
    };
    let count = match (given_count, shards) {
        (Some((count, from)), Some((n, said))) if count != n => {
            return Err(format!(
                "{said} says {n} shards but {from}={count}: leave {said} out, or make them agree"
            ))
        }
        (Some((count, _)), _) => count,
        (None, Some((n, _))) => n,
        (None, None) => {
            return Err(format!(
                "{variable} is set, but Kubernetes does not say how many indexes the Job has: \
                 give --shards N or {SHARDS_VARIABLE}=N, N being the Job's completions"
            ))
        }
    };
    if index >= count {
        return Err(format!(
            "{variable} gives index {index}, not below the count of {count}: the count must be \
             the number of tasks"
        ));
    }
    Ok(Assignment {
        index,
        count,
        scheduler,
        variable,
    })
}

/// Slurm's index and count, with the variable the count came from. Array
/// ids are `MIN, MIN + STEP, ... MAX`; a list that is not such a range
/// (`--array=1,4,9`) cannot be numbered 0, 1, 2... from the variables alone.
fn slurm(var: &impl Fn(&str) -> Option<String>) -> Result<(usize, (usize, &'static str)), String> {
    let id = number(var, "SLURM_ARRAY_TASK_ID")?;
    let min = optional(var, "SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
    let step = optional(var, "SLURM_ARRAY_TASK_STEP")?.unwrap_or(1);
    let max = optional(var, "SLURM_ARRAY_TASK_MAX")?;
    let listed = optional(var, "SLURM_ARRAY_TASK_COUNT")?;
    let uneven = || {
        format!(
            "the Slurm array's ids are not an even range (SLURM_ARRAY_TASK_ID={id}, MIN={min}, \
             STEP={step}, MAX={}, COUNT={}): submit it as --array=A-B or A-B:S, or say \
             --shard K/N",
            max.map_or("unset".to_owned(), |m| m.to_string()),
            listed.map_or("unset".to_owned(), |c| c.to_string()),
        )
    };
    if step == 0 || id < min || (id - min) % step != 0 {
        return Err(uneven());
    }
    let index = (id - min) / step;
    let from_range = match max {
        Some(max) if max < min => return Err(uneven()),
        Some(max) => Some((max - min) / step + 1),
        None => None,
    };
    let count = match (listed, from_range) {
        (Some(listed), Some(range)) if listed != range => return Err(uneven()),
        (Some(listed), _) => (listed, "SLURM_ARRAY_TASK_COUNT"),
        (None, Some(range)) => (range, "SLURM_ARRAY_TASK_MAX"),
        (None, None) => {
            return Err(
                "SLURM_ARRAY_TASK_ID is set, but neither SLURM_ARRAY_TASK_COUNT nor \
                 SLURM_ARRAY_TASK_MAX: say --shard K/N"
                    .to_owned(),
            )
        }
    };
    Ok((index, count))
}

/// The attempt number the scheduler gives, if it gives one: `scheduler`'s
/// own variable, else the first of them that is set (so `--shard K/N` under
/// a scheduler reports it too). A value that is not a number is left out:
/// it is for the record only.
pub(crate) fn attempt(
    var: &impl Fn(&str) -> Option<String>,
    scheduler: Option<Scheduler>,
) -> Option<Attempt> {
    let mut names: Vec<&'static str> = scheduler
        .and_then(Scheduler::attempt_variable)
        .into_iter()
        .collect();
    names.extend(ALL.into_iter().filter_map(Scheduler::attempt_variable));
    names.into_iter().find_map(|variable| {
        let value = var(variable)?.trim().parse().ok()?;
        Some(Attempt { variable, value })
    })
}

/// The whole number in `variable`.
fn number(var: &impl Fn(&str) -> Option<String>, variable: &str) -> Result<usize, String> {
    let text = var(variable).ok_or_else(|| format!("{variable} is not set"))?;
    text.trim()
        .parse()
        .map_err(|_| format!("{variable}={text:?} is not a whole number of 0 or more"))
}

/// The count in `variable`, with its name.
fn count(
    var: &impl Fn(&str) -> Option<String>,
    variable: &'static str,
) -> Result<(usize, &'static str), String> {
    match var(variable) {
        Some(text) => Ok((positive(variable, &text)?, variable)),
        None => Err(format!(
            "{variable} is not set, yet the scheduler sets it with the index: say --shard K/N"
        )),
    }
}

/// The number in `variable`, if it is set.
fn optional(
    var: &impl Fn(&str) -> Option<String>,
    variable: &str,
) -> Result<Option<usize>, String> {
    match var(variable) {
        Some(_) => number(var, variable).map(Some),
        None => Ok(None),
    }
}

/// A count of 1 or more, from `variable`'s `text`.
fn positive(variable: &str, text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!(
            "{variable}={text:?} is not a whole number of 1 or more"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect();
        move |name| {
            pairs
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        }
    }

    /// Variables, as a test sets them.
    type Vars<'a> = &'a [(&'a str, &'a str)];

    fn part(pairs: Vars<'_>, shards: Option<usize>) -> Result<(usize, usize), String> {
        assignment(&env(pairs), shards).map(|a| (a.index, a.count))
    }

    #[test]
    fn each_scheduler() {
        let cases: [(Vars<'_>, Option<usize>, (usize, usize)); 9] = [
            (&[("JOB_COMPLETION_INDEX", "2")], Some(4), (2, 4)),
            (
                &[("JOB_COMPLETION_INDEX", "0"), ("PARFETCH_SHARDS", "3")],
                None,
                (0, 3),
            ),
            // The flag wins over the variable.
            (
                &[("JOB_COMPLETION_INDEX", "4"), ("PARFETCH_SHARDS", "3")],
                Some(5),
                (4, 5),
            ),
            (
                &[("CLOUD_RUN_TASK_INDEX", "1"), ("CLOUD_RUN_TASK_COUNT", "2")],
                None,
                (1, 2),
            ),
            (
                &[
                    ("AWS_BATCH_JOB_ARRAY_INDEX", "9"),
                    ("AWS_BATCH_JOB_ARRAY_SIZE", "10"),
                ],
                None,
                (9, 10),
            ),
            (
                &[
                    ("SLURM_ARRAY_TASK_ID", "0"),
                    ("SLURM_ARRAY_TASK_COUNT", "3"),
                ],
                None,
                (0, 3),
            ),
            // --array=5-8: ids from 5.
            (
                &[
                    ("SLURM_ARRAY_TASK_ID", "7"),
                    ("SLURM_ARRAY_TASK_MIN", "5"),
                    ("SLURM_ARRAY_TASK_MAX", "8"),
                ],
                None,
                (2, 4),
            ),
            // --array=1-9:4 (1, 5, 9).
            (
                &[
                    ("SLURM_ARRAY_TASK_ID", "9"),
                    ("SLURM_ARRAY_TASK_MIN", "1"),
                    ("SLURM_ARRAY_TASK_MAX", "9"),
                    ("SLURM_ARRAY_TASK_STEP", "4"),
                    ("SLURM_ARRAY_TASK_COUNT", "3"),
                ],
                None,
                (2, 3),
            ),
            // A count that agrees with --shards is fine.
            (
                &[("CLOUD_RUN_TASK_INDEX", "0"), ("CLOUD_RUN_TASK_COUNT", "2")],
                Some(2),
                (0, 2),
            ),
        ];
        for (pairs, shards, want) in cases {
            assert_eq!(part(pairs, shards), Ok(want), "{pairs:?}");
        }
    }

    #[test]
    fn errors_name_the_variables() {
        let cases: [(Vars<'_>, Option<usize>, &str); 10] = [
            (&[], None, "JOB_COMPLETION_INDEX"),
            (
                &[("JOB_COMPLETION_INDEX", "1")],
                None,
                "--shards N or PARFETCH_SHARDS",
            ),
            (
                &[("JOB_COMPLETION_INDEX", "x")],
                Some(2),
                "JOB_COMPLETION_INDEX=\"x\"",
            ),
            (
                &[("JOB_COMPLETION_INDEX", "2")],
                Some(2),
                "not below the count of 2",
            ),
            (
                &[("CLOUD_RUN_TASK_INDEX", "0")],
                None,
                "CLOUD_RUN_TASK_COUNT is not set",
            ),
            (
                &[
                    ("AWS_BATCH_JOB_ARRAY_INDEX", "0"),
                    ("AWS_BATCH_JOB_ARRAY_SIZE", "4"),
                ],
                Some(3),
                "--shards says 3 shards but AWS_BATCH_JOB_ARRAY_SIZE=4",
            ),
            (
                &[("JOB_COMPLETION_INDEX", "0"), ("SLURM_ARRAY_TASK_ID", "0")],
                Some(2),
                "several schedulers (JOB_COMPLETION_INDEX, SLURM_ARRAY_TASK_ID)",
            ),
            // --array=1,4,9: not a range.
            (
                &[
                    ("SLURM_ARRAY_TASK_ID", "4"),
                    ("SLURM_ARRAY_TASK_MIN", "1"),
                    ("SLURM_ARRAY_TASK_MAX", "9"),
                    ("SLURM_ARRAY_TASK_COUNT", "3"),
                ],
                None,
                "not an even range",
            ),
            (
                &[("SLURM_ARRAY_TASK_ID", "4")],
                None,
                "SLURM_ARRAY_TASK_COUNT nor",
            ),
            (
                &[("JOB_COMPLETION_INDEX", "0"), ("PARFETCH_SHARDS", "0")],
                None,
                "PARFETCH_SHARDS=\"0\" is not a whole number of 1 or more",
            ),
        ];
        for (pairs, shards, want) in cases {
            let message = part(pairs, shards).unwrap_err();
            assert!(message.contains(want), "{pairs:?}: {message}");
        }
        let none = part(&[], None).unwrap_err();
        for name in [
            "JOB_COMPLETION_INDEX",
            "CLOUD_RUN_TASK_INDEX",
            "AWS_BATCH_JOB_ARRAY_INDEX",
            "SLURM_ARRAY_TASK_ID",
            "--shard K/N",
        ] {
            assert!(none.contains(name), "{none}");
        }
    }

    #[test]
    fn attempts() {
        let vars = env(&[
            ("AWS_BATCH_JOB_ATTEMPT", "2"),
            ("CLOUD_RUN_TASK_ATTEMPT", "0"),
        ]);
        let got = |scheduler| attempt(&vars, scheduler).map(|a| (a.variable, a.value));
        assert_eq!(
            got(Some(Scheduler::CloudRun)),
            Some(("CLOUD_RUN_TASK_ATTEMPT", 0))
        );
        assert_eq!(got(None), Some(("CLOUD_RUN_TASK_ATTEMPT", 0)));
        assert_eq!(
            got(Some(Scheduler::AwsBatch)),
            Some(("AWS_BATCH_JOB_ATTEMPT", 2))
        );
        assert_eq!(
            attempt(
                &env(&[("SLURM_RESTART_COUNT", "1")]),
                Some(Scheduler::Slurm)
            ),
            Some(Attempt {
                variable: "SLURM_RESTART_COUNT",
                value: 1
            })
        );
        assert_eq!(attempt(&env(&[("SLURM_RESTART_COUNT", "x")]), None), None);
        assert_eq!(attempt(&env(&[]), Some(Scheduler::Kubernetes)), None);
    }
}
