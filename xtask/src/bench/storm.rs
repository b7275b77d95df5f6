//! `cargo xtask bench`: storm.
use super::*;

#[derive(Clone, Debug)]
pub(super) struct StormRun {
    /// Requested rate (operations/s), None: as fast as possible.
    pub(super) target: Option<f64>,
    pub(super) procs: u32,
    pub(super) ops: u64,
    /// Rate the storm achieved (operations/s).
    pub(super) rate: f64,
    pub(super) counted: Counted,
}

pub(super) struct Storm {
    /// Unwatched, as fast as possible: opens/s with 1 and 2 processes, connects/s.
    pub(super) bare_open: Vec<(u32, f64)>,
    pub(super) bare_connect: f64,
    /// Under buildwatch, as fast as possible.
    pub(super) open_flat_out: Vec<StormRun>,
    pub(super) connect_flat_out: Vec<StormRun>,
    /// Under buildwatch, throttled at increasing rates.
    pub(super) ladder: Vec<StormRun>,
    /// Seconds each ladder step lasts.
    pub(super) step_secs: f64,
}

impl Storm {
    /// The highest achieved event rate without loss, among every storm run.
    pub(super) fn zero_loss_rate(&self) -> Option<f64> {
        self.ladder
            .iter()
            .chain(&self.open_flat_out)
            .filter(|r| r.counted.lost == 0)
            .map(|r| r.rate)
            .max_by(f64::total_cmp)
    }

    /// The highest achieved rate without loss on the throttled ladder (two producers).
    pub(super) fn ladder_zero_loss(&self) -> Option<f64> {
        self.ladder
            .iter()
            .filter(|r| r.counted.lost == 0)
            .map(|r| r.rate)
            .max_by(f64::total_cmp)
    }

    /// The lowest achieved rate at which the throttled ladder lost events.
    pub(super) fn first_loss(&self) -> Option<&StormRun> {
        self.ladder
            .iter()
            .filter(|r| r.counted.lost > 0)
            .min_by(|a, b| a.rate.total_cmp(&b.rate))
    }

    /// What the sensor adds to one open in the kernel (µs), from one producer's rate unwatched
    /// and watched, as fast as it can: the storm spends its time in the syscall and the
    /// programs attached to it.
    pub(super) fn open_cost_us(&self) -> Option<f64> {
        let bare = self.bare_open.iter().find(|(p, _)| *p == 1)?.1;
        let watched = self.open_flat_out.iter().find(|r| r.procs == 1)?.rate;
        (bare > 0.0 && watched > 0.0).then(|| (1.0 / watched - 1.0 / bare) * 1e6)
    }
}

/// A loopback listener that accepts and drops connections until the bench ends. Its backlog is
/// the kernel's maximum (std's `TcpListener::bind` asks for 128): a full accept queue drops
/// SYNs, and the storm's connects would then wait out one-second retransmissions.
pub(super) fn loopback_listener() -> Result<u16> {
    // SAFETY: plain socket calls on a descriptor this function owns; `addr` outlives the call.
    let fd = unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            bail!(
                "cannot create the storm's listening socket: {}",
                std::io::Error::last_os_error()
            );
        }
        let mut addr: libc::sockaddr_in = std::mem::zeroed();
        addr.sin_family = libc::AF_INET as libc::sa_family_t;
        addr.sin_addr.s_addr = u32::from_be_bytes([127, 0, 0, 1]).to_be();
        let bound = libc::bind(
            fd,
            (&raw const addr).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        );
        if bound != 0 || libc::listen(fd, 65535) != 0 {
            let e = std::io::Error::last_os_error();
            libc::close(fd);
            bail!("cannot listen on 127.0.0.1 for the storm: {e}");
        }
        fd
    };
    // SAFETY: `fd` is a listening socket owned by nothing else.
    let listener = unsafe { <TcpListener as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let port = listener.local_addr()?.port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            drop(stream);
        }
    });
    Ok(port)
}

impl Bench {
    /// The storm command: `procs` storm processes (under one `sh`) sharing `total` operations
    /// and the rate `target`.
    pub(super) fn storm_command(
        &self,
        op: &StormOp,
        total: u64,
        target: Option<f64>,
        procs: u32,
    ) -> Vec<String> {
        let per_proc = total / u64::from(procs);
        let rate = target.map_or(0.0, |r| r / f64::from(procs));
        let one = match op {
            StormOp::Open => format!(
                "{} open {} {STORM_FILES} {per_proc} {rate:.0}",
                self.storm.display(),
                self.storm_files.display()
            ),
            StormOp::Connect(port) => {
                format!(
                    "{} connect {port} {per_proc} {rate:.0}",
                    self.storm.display()
                )
            }
        };
        if procs == 1 {
            return one.split(' ').map(str::to_owned).collect();
        }
        // Several processes: started together, their lines summed by `storm_sum` below.
        let script = format!(
            "{} & wait",
            std::iter::repeat_n(one.as_str(), procs as usize)
                .collect::<Vec<_>>()
                .join(" & ")
        );
        vec!["sh".into(), "-c".into(), script]
    }

    /// Runs a storm (watched by buildwatch or not) and returns its operations and rate.
    pub(super) fn run_storm(
        &self,
        op: &StormOp,
        total: u64,
        target: Option<f64>,
        procs: u32,
        watched: bool,
    ) -> Result<StormRun> {
        let argv = self.storm_command(op, total, target, procs);
        let log = self.work.join("storm.log");
        let report = self.work.join("storm-report.json");
        let _ = std::fs::remove_file(&report);
        let mut cmd = if watched {
            let mut cmd = Command::new(&self.buildwatch);
            cmd.args(["ci", "--no-tui", "--report"])
                .arg(&report)
                .arg("--")
                .args(&argv);
            cmd
        } else {
            let mut cmd = Command::new(&argv[0]);
            cmd.args(&argv[1..]);
            cmd
        };
        let (_, status) = measure(&mut cmd, &log, false)?;
        let ok = if watched {
            buildwatch_ran(status)
        } else {
            status.success()
        };
        if !ok {
            bail!("storm run failed ({status}):\n{}", tail(&log));
        }
        let (ops, rate) = storm_sum(&log)?;
        let counted = if watched {
            read_report(&report)?
        } else {
            Counted::default()
        };
        let run = StormRun {
            target,
            procs,
            ops,
            rate,
            counted,
        };
        eprintln!(
            "xtask: bench: storm {} x{procs} target {} -> {ops} ops at {:.0}/s{}",
            op.name(),
            target.map_or("max".to_owned(), |t| format!("{t:.0}/s")),
            rate,
            if watched {
                format!(", {} events, {} lost", run.counted.events, run.counted.lost)
            } else {
                String::new()
            }
        );
        Ok(run)
    }

    pub(super) fn storm(&self) -> Result<Storm> {
        eprintln!("xtask: bench: storm");
        let port = loopback_listener()?;
        let connect = StormOp::Connect(port);
        let scale = if self.quick { 5 } else { 1 };
        let flat_total = 4_000_000 / scale;
        let connect_total = 200_000 / scale;
        let mut storm = Storm {
            bare_open: Vec::new(),
            bare_connect: 0.0,
            open_flat_out: Vec::new(),
            connect_flat_out: Vec::new(),
            ladder: Vec::new(),
            step_secs: if self.quick { 2.0 } else { 5.0 },
        };
        for procs in [1, 2] {
            let bare = self.run_storm(&StormOp::Open, flat_total, None, procs, false)?;
            storm.bare_open.push((procs, bare.rate));
            storm.open_flat_out.push(self.run_storm(
                &StormOp::Open,
                flat_total,
                None,
                procs,
                true,
            )?);
        }
        storm.bare_connect = self
            .run_storm(&connect, connect_total, None, 1, false)?
            .rate;
        for procs in [1, 2] {
            storm.connect_flat_out.push(self.run_storm(
                &connect,
                connect_total,
                None,
                procs,
                true,
            )?);
        }
        // The ladder: 2 processes, so that the storm is not capped by one CPU's syscall rate;
        // stops once events are lost twice or the storm cannot reach its target any more.
        let mut target = 100_000.0;
        let mut losses = 0;
        while losses < 2 {
            let total = (target * storm.step_secs) as u64;
            let run = self.run_storm(&StormOp::Open, total, Some(target), 2, true)?;
            let saturated = run.rate < 0.9 * target;
            if run.counted.lost > 0 {
                losses += 1;
            }
            storm.ladder.push(run);
            if saturated {
                break;
            }
            target *= if target < 400_000.0 { 1.5 } else { 1.25 };
        }
        // Refine between the highest clean step and the first lossy one.
        if let (Some(clean), Some(lossy)) = (storm.ladder_zero_loss(), storm.first_loss()) {
            let lossy = lossy.target.unwrap_or(lossy.rate);
            if clean < lossy {
                let mid = (clean + lossy) / 2.0;
                let total = (mid * storm.step_secs) as u64;
                let run = self.run_storm(&StormOp::Open, total, Some(mid), 2, true)?;
                storm.ladder.push(run);
            }
        }
        storm
            .ladder
            .sort_by(|a, b| a.target.unwrap_or(0.0).total_cmp(&b.target.unwrap_or(0.0)));
        Ok(storm)
    }
}

pub(super) enum StormOp {
    Open,
    Connect(u16),
}

impl StormOp {
    pub(super) fn name(&self) -> &'static str {
        match self {
            StormOp::Open => "open",
            StormOp::Connect(_) => "connect",
        }
    }
}

/// Sums the `ops=` lines of every storm process in `log`; the rate is the total over the longest
/// process's time.
pub(super) fn storm_sum(log: &Path) -> Result<(u64, f64)> {
    let text = std::fs::read_to_string(log)?;
    let mut ops = 0;
    let mut secs: f64 = 0.0;
    let mut any = false;
    for line in text.lines().filter(|l| l.starts_with("ops=")) {
        let field = |name: &str| {
            line.split_whitespace()
                .find_map(|f| f.strip_prefix(name))
                .and_then(|v| v.parse::<f64>().ok())
        };
        if field("failed=").unwrap_or(0.0) > 0.0 {
            bail!("the storm's operations failed: {line}");
        }
        ops += field("ops=").context("storm line without ops")? as u64;
        secs = secs.max(field("secs=").context("storm line without secs")?);
        any = true;
    }
    if !any {
        // Fall back to the single-line parser for its error message.
        return storm_line(log);
    }
    Ok((ops, if secs > 0.0 { ops as f64 / secs } else { 0.0 }))
}
