//! Paired, interleaved timing: every implementation of a case timed in turn, round after
//! round, and each ratio taken within a round before the median over rounds.
//!
//! Criterion times one implementation after another, a few seconds each, so on a shared
//! machine whose speed drifts (other tenants' load, frequency changes) the implementations of a
//! row can be measured under different conditions, and a ratio between two of them moves from
//! run to run by more than the difference it measures. Here a round times every implementation
//! once, for a couple of milliseconds each, in an order that rotates from round to round; the
//! ratio of two implementations is computed per round, from samples taken milliseconds apart,
//! and the median over the rounds is reported. A drift slower than a round cancels out of the
//! ratios, and an interrupted sample only spoils the ratios of its round.
//!
//! Selected with `WSCORE_PAIRED` (see `benches/README.md`); times are of the benchmark
//! thread's CPU time, as with criterion here (`benches/clock`). Placement, which differs from
//! process to process, is not cancelled within one: `benches/paired.py` runs several processes
//! and takes the median of each cell.

use crate::clock::BenchClock;
use std::hint::black_box;

/// How long one sample (one implementation, one round) runs.
const SAMPLE_NS: u64 = 2_000_000;

/// Reads the paired mode's settings from the environment: `WSCORE_PAIRED` (comma-separated
/// filters on `group/parameter`; a filter ending in `$` must match the end),
/// `WSCORE_PAIRED_ROUNDS` (default 51) and `WSCORE_PAIRED_SUBJECT` (default `wscore_ref`).
/// `None` when `WSCORE_PAIRED` is not set.
pub(crate) struct Settings {
    filters: Vec<String>,
    pub(crate) rounds: usize,
    pub(crate) subject: String,
}

impl Settings {
    pub(crate) fn from_env() -> Option<Self> {
        let filters = std::env::var("WSCORE_PAIRED").ok()?;
        let rounds = std::env::var("WSCORE_PAIRED_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(51);
        let subject = std::env::var("WSCORE_PAIRED_SUBJECT").unwrap_or_else(|_| "wscore_ref".into());
        let filters = filters.split(',').map(str::trim).filter(|f| !f.is_empty()).map(String::from).collect();
        // Odd, so the median is one round's ratio (and the reciprocal of the inverse ratio's).
        Some(Self { filters, rounds: rounds.max(3) | 1, subject })
    }

    /// Whether the case `id` (`group/parameter`) is selected; no filter selects every case.
    pub(crate) fn selects(&self, id: &str) -> bool {
        self.filters.is_empty()
            || self.filters.iter().any(|filter| match filter.strip_suffix('$') {
                Some(end) => id.ends_with(end),
                None => id.contains(filter.as_str()),
            })
    }
}

/// One implementation: its name and a closure that runs the case once (all its messages).
pub(crate) type Run<'a> = (&'static str, Box<dyn FnMut() + 'a>);

/// The result of one case: per implementation, the median time per message, and the median
/// over rounds of its time divided by the subject's in the same round.
pub(crate) struct Row {
    pub(crate) id: String,
    pub(crate) names: Vec<&'static str>,
    pub(crate) median_ns: Vec<f64>,
    pub(crate) ratio_to_subject: Vec<f64>,
}

/// Times `runs` interleaved for `rounds` rounds; `messages` is how many messages one run
/// decodes. The subject must be one of `runs`.
pub(crate) fn measure(id: &str, messages: usize, runs: &mut [Run<'_>], settings: &Settings) -> Row {
    let clock = BenchClock::from_env();
    let subject = runs
        .iter()
        .position(|(name, _)| *name == settings.subject)
        .unwrap_or_else(|| panic!("{id}: no implementation named {}", settings.subject));
    // How many runs make one sample of about SAMPLE_NS (after one run to warm up).
    let reps: Vec<u64> = runs
        .iter_mut()
        .map(|(_, run)| {
            run();
            let start = clock.now_ns();
            run();
            let once = clock.now_ns().saturating_sub(start).max(1);
            (SAMPLE_NS / once).clamp(1, 1_000_000)
        })
        .collect();
    let mut samples = vec![Vec::with_capacity(settings.rounds); runs.len()];
    for round in 0..settings.rounds {
        for k in 0..runs.len() {
            let i = (k + round) % runs.len();
            let run = &mut runs[i].1;
            let start = clock.now_ns();
            for _ in 0..reps[i] {
                run();
            }
            let ns = clock.now_ns().saturating_sub(start) as f64;
            samples[i].push(black_box(ns) / (reps[i] as f64 * messages as f64));
        }
    }
    let ratio_to_subject = samples
        .iter()
        .map(|own| median(own.iter().zip(&samples[subject]).map(|(own, subject)| own / subject).collect()))
        .collect();
    Row {
        id: id.to_string(),
        names: runs.iter().map(|(name, _)| *name).collect(),
        median_ns: samples.into_iter().map(median).collect(),
        ratio_to_subject,
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 { values[mid] } else { (values[mid - 1] + values[mid]) / 2.0 }
}

/// Prints the rows as a Markdown table: the subject's time per message, each other
/// implementation's time divided by the subject's (above 1: the subject is faster), and the
/// subject's time divided by `baseline`'s (how far it is above the floor).
pub(crate) fn print(rows: &[Row], settings: &Settings) {
    if rows.is_empty() {
        println!("no case matched WSCORE_PAIRED");
        return;
    }
    // Every implementation any row has, in the order they first appear.
    let mut others: Vec<&str> = Vec::new();
    for name in rows.iter().flat_map(|row| &row.names) {
        if *name != settings.subject && *name != "baseline" && !others.contains(name) {
            others.push(name);
        }
    }
    let mut header = format!("| case | {} ns/msg |", settings.subject);
    for name in &others {
        header.push_str(&format!(" {name} ÷ {} |", settings.subject));
    }
    header.push_str(&format!(" {} ÷ baseline |", settings.subject));
    println!("{header}");
    println!("|---|{}", "---:|".repeat(others.len() + 2));
    for row in rows {
        let get = |name: &str| row.names.iter().position(|n| *n == name);
        let subject = get(&settings.subject).expect("the subject was measured");
        let mut line = format!("| {} | {:.1} |", row.id, row.median_ns[subject]);
        for name in &others {
            match get(name) {
                Some(i) => line.push_str(&format!(" {:.2}× |", row.ratio_to_subject[i])),
                None => line.push_str(" – |"),
            }
        }
        match get("baseline") {
            Some(i) => line.push_str(&format!(" {:.2}× |", 1.0 / row.ratio_to_subject[i])),
            None => line.push_str(" – |"),
        }
        println!("{line}");
    }
    println!(
        "\n{} rounds; each cell the median over rounds of a ratio taken within a round (time per message: the median of the subject's samples).",
        settings.rounds
    );
}
