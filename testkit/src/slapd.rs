//! A real directory for tests: OpenLDAP's `slapd` (Debian packages `slapd` and `ldap-utils`,
//! which `scripts/test` installs) on loopback ports, plain LDAP (for StartTLS) and LDAPS, with a
//! certificate from a CA the test generates, the `memberof` overlay, and the plant's people and
//! groups loaded with `ldapadd` from [`PLANT_LDIF`].
//!
//! The plant: `ana` is in `plant-admins`; `olaf` is in `shift-leads`, which is itself a member of
//! `plant-operators` (a nested group); `vera` is in `plant-viewers`; `nora` is in no group; the
//! service account is `svc-plantwatch`. A group must keep a member: `plant-viewers` also names
//! `cn=nobody`, so that vera can be taken out of it.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{free_port, wait_until};

pub const SUFFIX: &str = "dc=plant,dc=test";
pub const ROOT_DN: &str = "cn=admin,dc=plant,dc=test";
pub const ROOT_PASSWORD: &str = "root-secret-1";
pub const BIND_DN: &str = "uid=svc-plantwatch,ou=people,dc=plant,dc=test";
pub const BIND_PASSWORD: &str = "svc-secret-1";
pub const PEOPLE: &str = "ou=people,dc=plant,dc=test";
pub const GROUPS: &str = "ou=groups,dc=plant,dc=test";
pub const ADMINS: &str = "cn=plant-admins,ou=groups,dc=plant,dc=test";
pub const OPERATORS: &str = "cn=plant-operators,ou=groups,dc=plant,dc=test";
pub const SHIFT_LEADS: &str = "cn=shift-leads,ou=groups,dc=plant,dc=test";
pub const VIEWERS: &str = "cn=plant-viewers,ou=groups,dc=plant,dc=test";
/// Every person's password is their name followed by this.
pub const PASSWORD_SUFFIX: &str = "-pass-1";

/// The plant's directory: people, then groups (so the overlay fills in `memberOf`).
pub const PLANT_LDIF: &str = "\
dn: dc=plant,dc=test
objectClass: dcObject
objectClass: organization
o: Plant
dc: plant

dn: ou=people,dc=plant,dc=test
objectClass: organizationalUnit
ou: people

dn: ou=groups,dc=plant,dc=test
objectClass: organizationalUnit
ou: groups

dn: uid=svc-plantwatch,ou=people,dc=plant,dc=test
objectClass: inetOrgPerson
uid: svc-plantwatch
cn: plantwatch service
sn: service
userPassword: svc-secret-1

dn: uid=ana,ou=people,dc=plant,dc=test
objectClass: inetOrgPerson
uid: ana
cn: Ana Admin
sn: Admin
userPassword: ana-pass-1

dn: uid=olaf,ou=people,dc=plant,dc=test
objectClass: inetOrgPerson
uid: olaf
cn: Olaf Operator
sn: Operator
userPassword: olaf-pass-1

dn: uid=vera,ou=people,dc=plant,dc=test
objectClass: inetOrgPerson
uid: vera
cn: Vera Viewer
sn: Viewer
userPassword: vera-pass-1

dn: uid=nora,ou=people,dc=plant,dc=test
objectClass: inetOrgPerson
uid: nora
cn: Nora Nogroup
sn: Nogroup
userPassword: nora-pass-1

dn: cn=plant-admins,ou=groups,dc=plant,dc=test
objectClass: groupOfNames
cn: plant-admins
member: uid=ana,ou=people,dc=plant,dc=test

dn: cn=shift-leads,ou=groups,dc=plant,dc=test
objectClass: groupOfNames
cn: shift-leads
member: uid=olaf,ou=people,dc=plant,dc=test

dn: cn=plant-operators,ou=groups,dc=plant,dc=test
objectClass: groupOfNames
cn: plant-operators
member: cn=shift-leads,ou=groups,dc=plant,dc=test

dn: cn=plant-viewers,ou=groups,dc=plant,dc=test
objectClass: groupOfNames
cn: plant-viewers
member: uid=vera,ou=people,dc=plant,dc=test
member: cn=nobody,dc=plant,dc=test
";

/// A running `slapd`, killed when dropped.
pub struct Slapd {
    pub child: Child,
    /// `ldap://127.0.0.1:port` (plain; use with StartTLS).
    pub ldap_url: String,
    /// `ldaps://127.0.0.1:port`.
    pub ldaps_url: String,
    /// The CA that issued the server's certificate, PEM.
    pub ca_pem: String,
    /// The server certificate, PEM.
    pub cert_pem: String,
    dir: tempfile::TempDir,
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.resume();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A CA and a certificate it issued for `localhost` and `127.0.0.1`: (CA PEM, cert PEM, key PEM).
pub fn certificate_chain() -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "plantwatch test directory CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let params =
        CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    let cert = params.signed_by(&key, &ca).unwrap();
    (ca.pem(), cert.pem(), key.serialize_pem())
}

impl Slapd {
    /// Starts `slapd` with the plant loaded.
    pub fn start() -> Slapd {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path();
        let (ca_pem, cert_pem, key_pem) = certificate_chain();
        std::fs::write(path.join("ca.pem"), &ca_pem).unwrap();
        std::fs::write(path.join("cert.pem"), &cert_pem).unwrap();
        std::fs::write(path.join("key.pem"), key_pem).unwrap();
        std::fs::create_dir(path.join("db")).unwrap();
        let d = path.display();
        let conf = format!(
            "include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/nis.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload memberof
pidfile {d}/slapd.pid
argsfile {d}/slapd.args
TLSCACertificateFile {d}/ca.pem
TLSCertificateFile {d}/cert.pem
TLSCertificateKeyFile {d}/key.pem
database mdb
maxsize 16777216
suffix \"{SUFFIX}\"
rootdn \"{ROOT_DN}\"
rootpw {ROOT_PASSWORD}
directory {d}/db
overlay memberof
"
        );
        std::fs::write(path.join("slapd.conf"), conf).unwrap();
        let (plain, tls) = (free_port(), free_port());
        let ldap_url = format!("ldap://127.0.0.1:{plain}");
        let ldaps_url = format!("ldaps://127.0.0.1:{tls}");
        let log = std::fs::File::create(path.join("slapd.log")).unwrap();
        let child = Command::new(slapd_binary())
            .arg("-f")
            .arg(path.join("slapd.conf"))
            .arg("-h")
            .arg(format!("{ldap_url}/ {ldaps_url}/"))
            // Foreground, logging each operation (`conn=… op=… BIND dn=…`) to the log file.
            .args(["-d", "stats"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("slapd (Debian package slapd; scripts/test installs it)");
        let slapd = Slapd {
            child,
            ldap_url,
            ldaps_url,
            ca_pem,
            cert_pem,
            dir,
        };
        wait_until(Duration::from_secs(20), "slapd to answer", || {
            slapd.answers().then_some(())
        });
        slapd.apply("ldapadd", PLANT_LDIF);
        slapd
    }

    fn answers(&self) -> bool {
        Command::new("ldapsearch")
            .args([
                "-x",
                "-H",
                &self.ldap_url,
                "-b",
                "",
                "-s",
                "base",
                "-o",
                "nettimeout=1",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Runs `ldapadd` or `ldapmodify` as the directory's root with `ldif`.
    pub fn apply(&self, tool: &str, ldif: &str) {
        let mut command = Command::new(tool);
        command.args([
            "-x",
            "-H",
            &self.ldap_url,
            "-D",
            ROOT_DN,
            "-w",
            ROOT_PASSWORD,
        ]);
        let output = crate::run_with_input(command, ldif);
        assert!(
            output.status.success(),
            "{tool} failed: {}\n{}",
            crate::stderr(&output),
            self.log()
        );
    }

    /// Removes `member_dn` from the group `group_dn`.
    pub fn remove_member(&self, group_dn: &str, member_dn: &str) {
        self.apply(
            "ldapmodify",
            &format!("dn: {group_dn}\nchangetype: modify\ndelete: member\nmember: {member_dn}\n"),
        );
    }

    /// Adds `member_dn` to the group `group_dn`.
    pub fn add_member(&self, group_dn: &str, member_dn: &str) {
        self.apply(
            "ldapmodify",
            &format!("dn: {group_dn}\nchangetype: modify\nadd: member\nmember: {member_dn}\n"),
        );
    }

    /// Freezes the directory (SIGSTOP): connections are accepted by the kernel, nothing answers.
    pub fn pause(&self) {
        signal(&self.child, "-STOP");
    }

    /// Thaws a paused directory.
    pub fn resume(&self) {
        signal(&self.child, "-CONT");
    }

    /// The directory's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("slapd.log")).unwrap_or_default()
    }

    /// How many binds as `dn` the directory has logged.
    pub fn binds_as(&self, dn: &str) -> usize {
        self.log().matches(&format!("BIND dn=\"{dn}\"")).count()
    }

    /// The data directory (for a test that writes files beside it).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

fn signal(child: &Child, which: &str) {
    let _ = Command::new("kill")
        .args([which, &child.id().to_string()])
        .stderr(Stdio::null())
        .status();
}

/// `slapd` lives in /usr/sbin, which is not on every user's PATH.
fn slapd_binary() -> &'static str {
    if Path::new("/usr/sbin/slapd").exists() {
        "/usr/sbin/slapd"
    } else {
        "slapd"
    }
}

/// The DN of person `name`.
pub fn person(name: &str) -> String {
    format!("uid={name},{PEOPLE}")
}

/// The password of person `name`.
pub fn password(name: &str) -> String {
    format!("{name}{PASSWORD_SUFFIX}")
}
