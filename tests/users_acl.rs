//! Gateway users and permissions (issue 9 item 1) against a real 3-master cluster. Every error
//! text is compared byte for byte with a standalone redis-server 7.0.15 given the equivalent
//! ACL (`ACL SETUSER`): NOAUTH, WRONGPASS (unknown user, wrong password, disabled user), the
//! AUTH and HELLO forms, ACL WHOAMI, NOPERM for a command outside the role, a key outside the
//! patterns (GET, an MGET/MSET split, EVAL, inside MULTI) and a channel outside the patterns
//! (SUBSCRIBE), and RESET back to the default user.

mod common;

use common::raw::Raw;
use common::{Cluster, Gateway, Standalone, TempDir, wait_until};
use std::time::Duration;

/// The default user's password.
const DEF_PW: &str = "defpw";

/// `echo -n TEXT | sha256sum`, as the README tells operators to compute a digest.
fn sha256_hex(text: &str) -> String {
    let out = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child
                .stdin
                .take()
                .expect("stdin is piped")
                .write_all(text.as_bytes())?;
            child.wait_with_output()
        })
        .expect("sha256sum runs");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .expect("sha256sum prints a digest")
        .to_string()
}

/// The gateway's `users:` section; the writer's password comes from a file.
fn users_yaml(writer_file: &std::path::Path) -> String {
    format!(
        "users:
  - name: default
    passwords: [{def}]
    role: admin
    keys: ['*']
    channels: ['*']
  - name: reader
    passwords: [{reader}]
    role: read
    keys: ['app:*']
    channels: ['news.*']
  - name: writer
    password_file: {file}
    role: write
    keys: ['app:*']
    read_keys: ['shared:*']
  - name: off
    enabled: false
    passwords: [{off}]
    role: admin
    keys: ['*']
",
        def = sha256_hex(DEF_PW),
        reader = sha256_hex("rpw"),
        off = sha256_hex("offpw"),
        file = writer_file.display(),
    )
}

/// The same users on a standalone redis-server.
fn setup_standalone(sa: &Standalone) {
    let node = sa.node();
    // meridian's roles: `read` also refuses the scripts that may write, both refuse the
    // flush/kill of every client's scripts.
    #[rustfmt::skip]
    node.ok(&[
        "ACL", "SETUSER", "reader", "on", ">rpw", "~app:*", "&news.*", "+@all", "-@write",
        "-@admin", "-eval", "-evalsha", "-fcall", "-script|flush", "-script|kill",
        "-function|kill",
    ]);
    #[rustfmt::skip]
    node.ok(&[
        "ACL", "SETUSER", "writer", "on", ">wpw", "~app:*", "%R~shared:*", "+@all", "-@admin",
        "-script|flush", "-script|kill", "-function|kill",
    ]);
    node.ok(&["ACL", "SETUSER", "off", "off", ">offpw", "~*", "+@all"]);
    // Last: from here on the default user needs its password.
    node.ok(&[
        "ACL",
        "SETUSER",
        "default",
        "resetpass",
        ">defpw",
        "~*",
        "&*",
        "+@all",
    ]);
}

/// Sends the same request to both and asserts the same reply bytes; returns them.
fn same(gw: &mut Raw, sa: &mut Raw, args: &[&str]) -> String {
    let got = gw.call_text(args);
    let want = sa.call_text(args);
    assert_eq!(got, want, "{args:?}: meridian vs redis-server");
    got
}

#[test]
fn users_and_permissions_match_redis() {
    let cluster = Cluster::start(3, 0);
    let dir = TempDir::new();
    let writer_file = dir.path().join("writer.pw");
    std::fs::write(&writer_file, "wpw\n").expect("write the password file");
    let gw = Gateway::start(&cluster, &users_yaml(&writer_file));
    let sa = Standalone::start(&[]);
    setup_standalone(&sa);

    // The gateway knows the cluster once an authenticated GET gets an answer.
    wait_until("the gateway serves", Duration::from_secs(15), || {
        let mut c = gw.raw();
        c.call_text(&["AUTH", DEF_PW]);
        let r = c.call_text(&["GET", "app:warmup"]);
        if r == "$-1\r\n" { Ok(()) } else { Err(r) }
    });

    // Not authenticated: NOAUTH, and the failed AUTH forms.
    let (mut g, mut s) = (gw.raw(), Raw::connect(&sa.addr()));
    let noauth = same(&mut g, &mut s, &["GET", "app:1"]);
    assert_eq!(noauth, "-NOAUTH Authentication required.\r\n");
    same(&mut g, &mut s, &["PING"]);
    same(&mut g, &mut s, &["ACL", "WHOAMI"]);
    assert!(same(&mut g, &mut s, &["HELLO", "3"]).starts_with("-NOAUTH HELLO must be called"));
    let wrongpass = same(&mut g, &mut s, &["AUTH", "nope"]);
    assert_eq!(
        wrongpass,
        "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    );
    same(&mut g, &mut s, &["AUTH", "reader", "nope"]);
    same(&mut g, &mut s, &["AUTH", "nobody", "rpw"]);
    same(&mut g, &mut s, &["AUTH", "off", "offpw"]);
    same(&mut g, &mut s, &["HELLO", "3", "AUTH", "reader", "nope"]);
    same(&mut g, &mut s, &["AUTH", "a", "b", "c"]);
    same(&mut g, &mut s, &["GET", "app:1"]);

    // The reader: reads inside its patterns, nothing else.
    assert_eq!(same(&mut g, &mut s, &["AUTH", "reader", "rpw"]), "+OK\r\n");
    same(&mut g, &mut s, &["ACL", "WHOAMI"]);
    let noperm_set = same(&mut g, &mut s, &["SET", "app:1", "v"]);
    assert_eq!(
        noperm_set,
        "-NOPERM this user has no permissions to run the 'set' command\r\n"
    );
    same(&mut g, &mut s, &["GET", "app:1"]);
    let noperm_key = same(&mut g, &mut s, &["GET", "other"]);
    assert_eq!(
        noperm_key,
        "-NOPERM this user has no permissions to access one of the keys used as arguments\r\n"
    );
    same(
        &mut g,
        &mut s,
        &["MGET", "app:{a}1", "app:{b}2", "app:{c}3"],
    );
    same(&mut g, &mut s, &["MGET", "app:{a}1", "app:{b}2", "other"]);
    // EVAL may write (meridian cannot see a script's commands): a reader gets the _ro forms.
    same(&mut g, &mut s, &["EVAL", "return 1", "1", "app:1"]);
    same(&mut g, &mut s, &["EVAL_RO", "return 1", "1", "app:1"]);
    same(&mut g, &mut s, &["EVAL_RO", "return 1", "1", "other"]);
    same(&mut g, &mut s, &["SCRIPT", "FLUSH"]);
    same(&mut g, &mut s, &["EXISTS", "app:1", "other"]);
    let noperm_channel = same(&mut g, &mut s, &["SUBSCRIBE", "news.1", "sports"]);
    assert_eq!(
        noperm_channel,
        "-NOPERM this user has no permissions to access one of the channels used as arguments\r\n"
    );
    same(&mut g, &mut s, &["PUBLISH", "sports", "x"]);
    same(&mut g, &mut s, &["PUBLISH", "news.2", "x"]);
    same(&mut g, &mut s, &["SSUBSCRIBE", "sports"]);
    same(&mut g, &mut s, &["SPUBLISH", "sports", "x"]);
    // A pattern subscription must name one of the user's patterns literally.
    same(&mut g, &mut s, &["PSUBSCRIBE", "news.1*"]);
    same(&mut g, &mut s, &["BLPOP", "app:list", "0.01"]);
    same(&mut g, &mut s, &["SUBSCRIBE", "news.1"]);
    // RESET: back to the default user, which needs its password.
    same(&mut g, &mut s, &["RESET"]);
    same(&mut g, &mut s, &["GET", "app:1"]);

    // The writer (password from a file), through HELLO 3 AUTH.
    let (mut g, mut s) = (gw.raw(), Raw::connect(&sa.addr()));
    let hello = g.call_text(&["HELLO", "3", "AUTH", "writer", "wpw"]);
    assert!(hello.starts_with("%7\r\n"), "{hello}");
    assert!(
        s.call_text(&["HELLO", "3", "AUTH", "writer", "wpw"])
            .starts_with("%7\r\n")
    );
    same(&mut g, &mut s, &["ACL", "WHOAMI"]);
    same(&mut g, &mut s, &["SET", "app:1", "v"]);
    same(&mut g, &mut s, &["SET", "shared:1", "v"]);
    same(&mut g, &mut s, &["GET", "shared:1"]);
    same(&mut g, &mut s, &["INCR", "shared:n"]);
    same(&mut g, &mut s, &["CLIENT", "KILL", "ID", "999999"]);
    same(&mut g, &mut s, &["SCRIPT", "FLUSH"]);
    same(&mut g, &mut s, &["BLPOP", "other", "0.01"]);
    // Per key spec, as Redis: COPY reads its source and writes its destination; LMOVE also
    // writes (pops) its source.
    same(&mut g, &mut s, &["SET", "app:{t}src", "v"]);
    same(&mut g, &mut s, &["COPY", "shared:{t}1", "app:{t}c"]);
    same(&mut g, &mut s, &["COPY", "app:{t}src", "shared:{t}1"]);
    same(&mut g, &mut s, &["COPY", "app:{t}src", "app:{t}c"]);
    same(
        &mut g,
        &mut s,
        &["LMOVE", "shared:{t}l", "app:{t}l", "LEFT", "LEFT"],
    );
    same(
        &mut g,
        &mut s,
        &["LMOVE", "app:{t}l", "app:{t}m", "LEFT", "LEFT"],
    );
    same(&mut g, &mut s, &["DEL", "app:{t}src", "app:{t}c"]);
    same(&mut g, &mut s, &["BLPOP", "app:list", "0.01"]);
    same(
        &mut g,
        &mut s,
        &["EVAL", "return redis.call('get', KEYS[1])", "1", "shared:1"],
    );
    // A split MSET with one key outside the patterns writes no part.
    same(
        &mut g,
        &mut s,
        &["MSET", "app:{a}x", "1", "app:{b}x", "2", "shared:{c}x", "3"],
    );
    same(&mut g, &mut s, &["EXISTS", "app:{a}x", "app:{b}x"]);
    same(&mut g, &mut s, &["DEL", "app:{a}x", "other"]);
    // Inside MULTI the refused command fails the transaction, as in Redis.
    same(&mut g, &mut s, &["MULTI"]);
    same(&mut g, &mut s, &["SET", "app:2", "x"]);
    same(&mut g, &mut s, &["SET", "other", "x"]);
    same(&mut g, &mut s, &["EXEC"]);
    same(&mut g, &mut s, &["EXISTS", "app:2"]);
    // AUTH <password> is the default user.
    same(&mut g, &mut s, &["AUTH", DEF_PW]);
    same(&mut g, &mut s, &["ACL", "WHOAMI"]);
    same(&mut g, &mut s, &["SET", "other", "x"]);
    same(&mut g, &mut s, &["DEL", "other", "app:1", "shared:n"]);

    // Failed AUTHs are counted.
    let info = g.call_text(&["INFO", "stats"]);
    let failures: u64 = info
        .lines()
        .find_map(|l| l.strip_prefix("AuthFailures:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no AuthFailures in {info}"));
    assert!(failures >= 5, "{info}");
    // The log names no password.
    // Five failures of one client within 10 s: one log line.
    assert_eq!(
        gw.stderr().matches("AUTH failed").count(),
        1,
        "{}",
        gw.stderr()
    );
    assert!(!gw.stderr().contains("nope") && !gw.stderr().contains("wpw"));
}

#[test]
fn without_users_meridian_stays_open() {
    let cluster = Cluster::start(3, 0);
    let gw = Gateway::start(&cluster, "");
    let mut g = gw.raw();
    assert_eq!(g.call_text(&["ACL", "WHOAMI"]), "$7\r\ndefault\r\n");
    assert_eq!(g.call_text(&["AUTH", "default", "x"]), "+OK\r\n");
    assert!(
        g.call_text(&["AUTH", "x"])
            .starts_with("-ERR AUTH <password> called without")
    );
    assert!(
        g.call_text(&["ACL", "SETUSER", "x"])
            .contains("not supported through meridian")
    );
}
