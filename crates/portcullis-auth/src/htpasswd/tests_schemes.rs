//! Every hash scheme against the real tools that write it: Apache's
//! `htpasswd` (-B, -2, -5, -r, -m, and the refused -s, -d, -p), `openssl
//! passwd` (-5, -6, -apr1) and glibc's crypt(3) through perl (`rounds=`).

use std::path::Path;
use std::process::Command;

use super::tests::{COST, TempDir, auth, run, secret, tool};
use super::*;

/// `user:hash` as printed by `htpasswd -nb FLAGS user password`.
fn apache(tool: &Path, flags: &[&str], user: &str, password: &str) -> String {
    let mut args = vec!["-nb"];
    args.extend_from_slice(flags);
    let out = run(Command::new(tool).args(&args).args([user, password]));
    String::from_utf8(out.stdout).unwrap().trim().to_owned() + "\n"
}

/// The hash printed by `openssl passwd FLAG password`.
fn openssl(tool: &Path, flag: &str, password: &str) -> String {
    let out = run(Command::new(tool).args(["passwd", flag, password]));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[test]
fn apache_htpasswd_schemes_load_and_verify() {
    let Some(htpasswd) = tool("/usr/bin/htpasswd", "apache2-utils") else {
        return;
    };
    let cost = COST.to_string();
    let users: &[(&str, &[&str])] = &[
        ("bcrypt", &["-B", "-C", &cost]),
        ("sha256", &["-2"]),
        ("sha512", &["-5"]),
        ("sha512r", &["-5", "-r", "7000"]),
        ("md5", &["-m"]),
    ];
    let refused: &[(&str, &[&str], &str)] = &[
        ("sha1", &["-s"], "SHA-1"),
        ("des", &["-d"], "DES"),
        ("plain", &["-p"], "plain text"),
    ];
    let dir = TempDir::new();
    let path = dir.file("htpasswd");
    let mut text = String::new();
    for (user, flags) in users {
        text.push_str(&apache(htpasswd, flags, user, &format!("{user}-pw")));
    }
    for (user, flags, _) in refused {
        text.push_str(&apache(htpasswd, flags, user, &format!("{user}-pw")));
    }
    assert!(text.contains("sha512r:$6$rounds=7000$"), "{text}");
    std::fs::write(&path, text).unwrap();

    let h = Htpasswd::load(&path).unwrap();
    for (user, _) in users {
        assert_eq!(auth(&h, user, &format!("{user}-pw")).unwrap(), *user);
        assert_eq!(auth(&h, user, "wrong"), Err(AuthError::InvalidCredentials));
    }
    for (user, _, scheme) in refused {
        assert_eq!(
            auth(&h, user, &format!("{user}-pw")),
            Err(AuthError::InvalidCredentials)
        );
        let why = h.disabled(user).unwrap().to_string();
        assert!(why.contains(scheme) && why.contains("refuses"), "{why}");
    }
    let warnings: Vec<String> = h.warnings().iter().map(ToString::to_string).collect();
    assert_eq!(warnings.len(), 4, "{warnings:#?}");
    assert!(
        warnings[0].contains("line 5")
            && warnings[0].contains("\"md5\"")
            && warnings[0].contains("weak")
            && warnings[0].contains(&format!("htpasswd -B {} md5", path.display())),
        "{}",
        warnings[0]
    );

    // Cached verification works whatever the scheme.
    let before = h.stats();
    for (user, _) in users {
        auth(&h, user, &format!("{user}-pw")).unwrap();
        assert!(
            h.authenticate_cached(user, &secret(&format!("{user}-pw")))
                .is_some()
        );
    }
    let after = h.stats();
    assert_eq!(after.bcrypt_verifications, before.bcrypt_verifications);
    assert_eq!(after.cache_hits, before.cache_hits + 2 * users.len() as u64);
}

#[test]
fn openssl_and_glibc_crypt_hashes_verify() {
    let Some(openssl_tool) = tool("/usr/bin/openssl", "openssl") else {
        return;
    };
    let mut hashes = vec![
        ("s5", openssl(openssl_tool, "-5", "pässwörd")),
        ("s6", openssl(openssl_tool, "-6", "pässwörd")),
        ("apr", openssl(openssl_tool, "-apr1", "pässwörd")),
        ("apr_empty", openssl(openssl_tool, "-apr1", "")),
    ];
    if let Some(perl) = tool("/usr/bin/perl", "perl") {
        for (user, setting) in [
            ("r5", "$5$rounds=1500$saltsaltsaltsalt$"),
            ("r6", "$6$rounds=2500$shortsalt$"),
            ("r6long", "$6$rounds=1000$thissaltislongerthan16$"),
        ] {
            let script = format!("print crypt('pässwörd', '{setting}')");
            let out = run(Command::new(perl).arg("-e").arg(&script));
            let hash = String::from_utf8(out.stdout).unwrap();
            assert!(hash.starts_with(&setting[..10]), "{hash}");
            hashes.push((user, hash));
        }
    }
    let dir = TempDir::new();
    let path = dir.file("htpasswd");
    let text: String = hashes.iter().map(|(u, h)| format!("{u}:{h}\n")).collect();
    std::fs::write(&path, text).unwrap();
    let h = Htpasswd::load(&path).unwrap();
    assert_eq!(h.user_count(), hashes.len());
    for (user, _) in &hashes {
        let password = if *user == "apr_empty" {
            ""
        } else {
            "pässwörd"
        };
        assert_eq!(auth(&h, user, password).as_deref(), Ok(*user), "{user}");
        assert_eq!(
            auth(&h, user, "passwörd"),
            Err(AuthError::InvalidCredentials)
        );
    }
}

#[test]
fn unknown_users_cost_a_verification_in_the_files_scheme() {
    let dir = TempDir::new();
    let path = dir.file("htpasswd");
    let sha = sha_crypt::sha512_simple("pw", &sha_crypt::Sha512Params::new(1000).unwrap()).unwrap();
    std::fs::write(&path, format!("alice:{sha}\nbob:{sha}\n")).unwrap();
    let h = Htpasswd::load(&path).unwrap();
    assert_eq!(auth(&h, "nobody", "pw"), Err(AuthError::InvalidCredentials));
    assert_eq!(h.stats().bcrypt_verifications, 1);
    let dummy = &h.state.read().entries.dummy;
    assert_eq!((dummy.scheme(), dummy.cost()), (Scheme::Sha512Crypt, 1000));
}
