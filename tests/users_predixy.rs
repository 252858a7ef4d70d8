//! predixy's clients keep working after `meridian import-predixy` (issue 9 item 3): a
//! predixy-style config with an Authority block is imported by the real binary, meridian is
//! started with the output in front of a real cluster, and clients that authenticate the
//! predixy way (`AUTH <password>`, and redis-py's `HELLO 3 AUTH default <password>`) get their
//! entry's rights: read-only refused writes with NOPERM, key prefixes enforced, the default
//! entry for clients that send no AUTH. CLIENT INFO names the user. The import output never
//! holds a plaintext password.

mod common;

use std::time::Duration;

use common::gateway::binary;
use common::{Cluster, Gateway, TempDir, wait_until};

/// predixy's main config for `seeds`, with its Authority.
fn predixy_conf(seeds: &[String]) -> String {
    let servers: String = seeds.iter().map(|s| format!("        + {s}\n")).collect();
    format!(
        "Bind 127.0.0.1:0
WorkerThreads 1
ClusterServerPool {{
    Servers {{
{servers}    }}
}}
Authority {{
    Auth {{
        Mode read
        KeyPrefix pub:
    }}
    Auth r3ader-pw {{
        Mode read
        KeyPrefix app:
    }}
    Auth wr1ter-pw {{
        Mode write
        KeyPrefix app:
    }}
    Auth adm1n-pw {{
        Mode admin
    }}
}}
"
    )
}

const SECRETS: [&str; 3] = ["r3ader-pw", "wr1ter-pw", "adm1n-pw"];

fn import(conf: &str) -> String {
    let dir = TempDir::new();
    let file = dir.path().join("predixy.conf");
    std::fs::write(&file, conf).expect("write predixy.conf");
    let out = std::process::Command::new(binary())
        .arg("import-predixy")
        .arg(&file)
        .output()
        .expect("run meridian import-predixy");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 YAML")
}

const NOPERM_SET: &str = "-NOPERM this user has no permissions to run the 'set' command\r\n";
const NOPERM_KEY: &str =
    "-NOPERM this user has no permissions to access one of the keys used as arguments\r\n";

#[test]
fn imported_predixy_users_authenticate_by_password_alone() {
    let cluster = Cluster::start(3, 0);
    let yaml = import(&predixy_conf(&cluster.seeds()));
    for secret in SECRETS {
        assert!(!yaml.contains(secret), "{secret} in the import:\n{yaml}");
    }
    // The admin endpoint's default port would collide between test runs.
    let gw = Gateway::start_config(&format!("{yaml}\nadmin:\n  listen: 127.0.0.1:0\n"), &[]);
    wait_until("the gateway serves", Duration::from_secs(15), || {
        let r = gw.raw().call_text(&["GET", "pub:warmup"]);
        if r == "$-1\r\n" { Ok(()) } else { Err(r) }
    });

    // No AUTH: predixy's password-less entry (read, prefix pub:).
    let mut anon = gw.raw();
    assert_eq!(anon.call_text(&["GET", "pub:1"]), "$-1\r\n");
    assert_eq!(anon.call_text(&["GET", "app:1"]), NOPERM_KEY);
    assert_eq!(anon.call_text(&["SET", "pub:1", "v"]), NOPERM_SET);

    // The writer, the predixy way: AUTH <password>.
    let mut w = gw.raw();
    assert_eq!(w.call_text(&["AUTH", "wr1ter-pw"]), "+OK\r\n");
    assert_eq!(w.call_text(&["SET", "app:1", "v"]), "+OK\r\n");
    assert_eq!(w.call_text(&["SET", "other", "v"]), NOPERM_KEY);
    assert_eq!(w.call_text(&["ACL", "WHOAMI"]), "$6\r\nwrite2\r\n");
    let info = w.call_text(&["CLIENT", "INFO"]);
    assert!(info.contains(" user=write2 "), "{info}");

    // The reader, the redis-py way: HELLO 3 AUTH default <password>.
    let mut r = gw.raw();
    let hello = r.call_text(&["HELLO", "3", "AUTH", "default", "r3ader-pw"]);
    assert!(hello.starts_with("%7\r\n"), "{hello}");
    assert_eq!(r.call_text(&["GET", "app:1"]), "$1\r\nv\r\n");
    assert_eq!(r.call_text(&["SET", "app:1", "w"]), NOPERM_SET);
    assert_eq!(r.call_text(&["GET", "other"]), NOPERM_KEY);
    let info = r.call_text(&["CLIENT", "INFO"]);
    assert!(info.contains(" user=read1 "), "{info}");

    // The admin sees every client's user in CLIENT LIST.
    let mut a = gw.raw();
    assert_eq!(a.call_text(&["AUTH", "adm1n-pw"]), "+OK\r\n");
    let list = a.call_text(&["CLIENT", "LIST"]);
    for user in [
        "user=default ",
        "user=write2 ",
        "user=read1 ",
        "user=admin3 ",
    ] {
        assert!(list.contains(user), "{user} not in {list}");
    }
    // A password of no entry: AUTH is refused; HELLO … AUTH default gives the password-less
    // default entry (Redis' nopass user takes any password), never another entry's rights.
    let wrong = anon.call_text(&["AUTH", "nope"]);
    assert!(
        wrong.starts_with("-ERR AUTH <password> called without"),
        "{wrong}"
    );
    let hello = anon.call_text(&["HELLO", "3", "AUTH", "default", "nope"]);
    assert!(hello.starts_with("%7\r\n"), "{hello}");
    assert_eq!(anon.call_text(&["ACL", "WHOAMI"]), "$7\r\ndefault\r\n");
    assert_eq!(anon.call_text(&["GET", "app:1"]), NOPERM_KEY);
    // Nothing secret reached the log.
    let log = gw.stderr();
    for secret in SECRETS {
        assert!(!log.contains(secret), "{secret} in the log");
    }
}
