//! Which changes a running gateway cannot apply: the pure comparison behind "needs restart".

use crate::config::Config;

/// The keys of `new` that differ from `old` and only a restart applies, and `new` with those
/// keys set back to `old`'s values (so the config in force says what really runs).
///
/// Restart-only: the client listener and worker count (sockets and threads are made once),
/// the admin endpoint (its listener, token and whether workers keep request metrics), logging
/// (the subscriber and its file are set up once), the file watch itself and the TLS settings
/// (which files and listener; the certificate files' contents are read again on SIGHUP and
/// when they change, by `tls::reload`) and the name servers (one resolver per process).
/// Latency monitors reload: each worker takes fresh histograms for a changed set between
/// batches (`stats::monitors`).
pub fn split_restart_only(old: &Config, mut new: Config) -> (Config, Vec<&'static str>) {
    let mut keys = Vec::new();
    macro_rules! keep {
        ($($field:ident).+, $name:literal) => {
            if new.$($field).+ != old.$($field).+ {
                keys.push($name);
                new.$($field).+ = old.$($field).+.clone();
            }
        };
    }
    keep!(listen, "listen");
    keep!(workers, "workers");
    keep!(admin.listen, "admin.listen");
    keep!(admin.token_file, "admin.token_file");
    keep!(admin.require_token, "admin.require_token");
    keep!(log, "log");
    keep!(reload, "reload");
    keep!(tls, "tls");
    keep!(cluster.tls, "cluster.tls");
    keep!(dns, "dns");
    (new, keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Config {
        Config::parse(text, "t.yaml").unwrap()
    }

    #[test]
    fn latency_monitors_reload() {
        let old = parse("cluster: { seeds: [127.0.0.1:7001] }\n");
        let new = parse("cluster: { seeds: [127.0.0.1:7001] }\nlatency_monitors: []\n");
        let (applied, keys) = split_restart_only(&old, new);
        assert!(keys.is_empty(), "{keys:?}");
        assert_eq!(applied.latency_monitors, Some(Vec::new()));
    }

    #[test]
    fn restart_only_keys_are_named_and_kept_the_rest_applies() {
        let old = parse("cluster: { seeds: [127.0.0.1:7001] }\nworkers: 1\n");
        let new = parse(
            "cluster: { seeds: [127.0.0.1:7002] }\nworkers: 2\nlisten: 127.0.0.1:9999\nlimits: { max_pipeline: 7 }\n",
        );
        let (applied, keys) = split_restart_only(&old, new);
        assert_eq!(keys, ["listen", "workers"]);
        assert_eq!(applied.workers, 1);
        assert_eq!(applied.listen, old.listen);
        assert_eq!(applied.cluster.seeds, ["127.0.0.1:7002"]);
        assert_eq!(applied.limits.max_pipeline, 7);
        let (same, none) = split_restart_only(&old, old.clone());
        assert!(none.is_empty());
        assert_eq!(same, old);
    }

    #[test]
    fn name_servers_need_a_restart() {
        let old = parse(
            "cluster: { seeds: [127.0.0.1:7001] }
",
        );
        let new = parse(
            "cluster: { seeds: [127.0.0.1:7001] }
dns: { nameservers: [10.0.0.2] }
",
        );
        let (applied, keys) = split_restart_only(&old, new);
        assert_eq!(keys, ["dns"]);
        assert!(applied.dns.nameservers.is_empty());
    }
}
