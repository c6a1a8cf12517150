//! The tests' directory, started by hand for trying directory sign-in: `cargo run -p
//! plantwatch-testkit --example slapd`. Prints the URLs, the CA file and the people, then serves
//! until interrupted (Ctrl+C reaches slapd too, which shares the terminal's process group).

use plantwatch_testkit::slapd::{self, Slapd};

fn main() {
    let directory = Slapd::start();
    println!("LDAP (StartTLS): {}", directory.ldap_url);
    println!("LDAPS:           {}", directory.ldaps_url);
    println!(
        "CA file:         {}",
        directory.dir().join("ca.pem").display()
    );
    println!(
        "service account: {} / {}",
        slapd::BIND_DN,
        slapd::BIND_PASSWORD
    );
    println!(
        "users under {}, groups under {}",
        slapd::PEOPLE,
        slapd::GROUPS
    );
    println!(
        "people (password: NAME{}): ana → {}, olaf → {} → {}, vera → {}, nora: no group",
        slapd::PASSWORD_SUFFIX,
        slapd::ADMINS,
        slapd::SHIFT_LEADS,
        slapd::OPERATORS,
        slapd::VIEWERS
    );
    println!(
        "slapd pid {}; SIGSTOP it to try a hung directory",
        directory.child.id()
    );
    loop {
        std::thread::park();
    }
}
