//! The plain-text summary of a run (stderr, and `--no-tui`): the per-crate table, the totals,
//! then the findings, at most [`MAX_SHOWN`] of them (every one is in `--report`).
use crate::{
    pipeline::RunReport,
    policy::{Code, Finding, Severity},
};

/// Most findings listed in the text summary.
const MAX_SHOWN: usize = 40;

impl RunReport {
    /// The text summary: per-crate table, totals, then findings.
    pub fn render(&self) -> String {
        let mut out = format!("{}{}", self.activity.render(), self.summary.render(8));
        let shown: Vec<&Finding> = self
            .findings
            .iter()
            .filter(|f| f.code != Code::UnusedAllow)
            .collect();
        if !self.unprofiled.is_empty() {
            out.push_str(&format!(
                "without a profile (checked against the built-in baseline): {}\n",
                crate::pipeline::unprofiled_list(&self.unprofiled)
            ));
        }
        if shown.is_empty() {
            out.push_str("findings: none\n");
        } else {
            out.push_str(&format!("findings: {}\n", shown.len()));
            for f in shown.iter().take(MAX_SHOWN) {
                let tag = match f.severity {
                    Severity::Error => "ERROR",
                    Severity::Warning => "warn ",
                };
                out.push_str(&format!("  {tag} {}\n", f.headline()));
            }
            if shown.len() > MAX_SHOWN {
                out.push_str(&format!(
                    "  ... and {} more (see --report)\n",
                    shown.len() - MAX_SHOWN
                ));
            }
        }
        out
    }
}
