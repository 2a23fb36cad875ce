//! `audit`, `ratelimit` and `lockout`.

use super::{Validator, is_cidr};
use crate::abuse::{RateConfig, parse_pulls};

impl Validator<'_> {
    pub(super) fn abuse(&mut self) {
        let audit = &self.config.audit;
        if let Some(file) = &audit.file {
            if file.path.trim().is_empty() {
                self.err(
                    "audit.file.path",
                    "is empty",
                    "name the audit log's file, such as /var/log/portcullis/audit.log",
                );
            } else {
                let path = self.resolve(std::path::Path::new(&file.path));
                let dir = path.parent().map(std::path::Path::to_owned);
                if let Some(dir) = dir.filter(|d| !d.as_os_str().is_empty() && !d.is_dir()) {
                    self.err(
                        "audit.file.path",
                        format!("its directory {} does not exist", dir.display()),
                        format!("create it: mkdir -p {}", dir.display()),
                    );
                }
            }
            if file.maxbytes == Some(0) {
                self.err(
                    "audit.file.maxbytes",
                    "is 0",
                    "set the size a file may reach before it is rotated, such as 104857600 (100 MiB)",
                );
            }
        }
        if let Some(pulls) = &audit.pulls
            && let Err(e) = parse_pulls(pulls)
        {
            self.err(
                "audit.pulls",
                e,
                "write all, aggregate (one line per identity and repository per minute) or sample:N",
            );
        }
        let rl = &self.config.ratelimit;
        let mut rates: Vec<(String, RateConfig)> = [
            ("pull", rl.pull),
            ("push", rl.push),
            ("token", rl.token),
            ("authfailure", rl.authfailure),
        ]
        .into_iter()
        .filter_map(|(k, r)| r.map(|r| (format!("ratelimit.{k}"), r)))
        .collect();
        for (i, o) in rl.overrides.iter().enumerate() {
            let at = format!("ratelimit.overrides[{i}]");
            if o.users.is_empty() && o.groups.is_empty() && o.cidrs.is_empty() {
                self.err(
                    &at,
                    "names no users, groups or cidrs, so it applies to nobody",
                    "add users: [name], groups: [name] or cidrs: [10.0.0.0/8]",
                );
            }
            for (j, c) in o.cidrs.iter().enumerate() {
                if !is_cidr(c) {
                    self.err(
                        &format!("{at}.cidrs[{j}]"),
                        format!("`{c}` is not an IP address or CIDR"),
                        "write an address or network, such as 10.0.0.5 or 10.0.0.0/8",
                    );
                }
            }
            for (k, r) in [("pull", o.pull), ("push", o.push), ("token", o.token)] {
                if let Some(r) = r {
                    rates.push((format!("{at}.{k}"), r));
                }
            }
        }
        for (key, r) in rates {
            if r.limit == 0 {
                self.err(
                    &format!("{key}.limit"),
                    "is 0, which refuses every request",
                    "set a limit of at least 1, or remove the class to leave it unlimited",
                );
            }
            if r.window.is_zero() {
                self.err(
                    &format!("{key}.window"),
                    "is 0",
                    "set the window the limit counts over, such as 6h (Docker Hub's) or 1m",
                );
            }
        }
        let lo = &self.config.lockout;
        if !lo.disabled {
            if lo.lockafter <= lo.free {
                self.err(
                    "lockout.lockafter",
                    format!(
                        "is {}, not more than lockout.free ({}), so there is no backing off before the lockout",
                        lo.lockafter, lo.free
                    ),
                    "set lockafter above free, such as free: 5 and lockafter: 20",
                );
            }
            if lo.duration.is_zero() {
                self.err(
                    "lockout.duration",
                    "is 0, so a lockout never holds",
                    "set how long a lockout lasts, such as 15m, or set lockout.disabled: true",
                );
            }
            if lo.maxdelay < lo.delay {
                self.err(
                    "lockout.maxdelay",
                    "is shorter than lockout.delay",
                    "set maxdelay at least as long as delay, such as delay: 1s and maxdelay: 1m",
                );
            }
        }
    }
}
